/*
 * The cache in the request path: the glue between forward.c and the cache
 * module's policy and store.
 *
 *   proxy_cache_before     PURGE; the key; a lookup (Vary picks the
 *                          variant); cache_decide: serve it (hit.c),
 *                          revalidate (every variant's ETag goes with the
 *                          request), forward, or 504; a miss joins the
 *                          fill of its URL (collapsed forwarding) and may
 *                          wait for it
 *   proxy_cache_response   the final head: a 304 freshens the stored
 *                          response it selects and its body is served (one
 *                          that selects nothing: proxy_cache_refetch); a
 *                          HEAD's 200 or a 304 to the client's own
 *                          conditional freshens the entry; a 5xx or a
 *                          failure may serve it stale; a storable response
 *                          starts a store writer; unsafe methods invalidate
 *   proxy_cache_sink       the client's sink, teed with the store writer
 *   proxy_cache_body_done  commit only a body that ended well framed
 *   proxy_cache_end        count (stats), release the reader, the
 *                          writer, the fill
 *
 * The store never disturbs the client: a store-side failure (ENOSPC, EIO,
 * --max-object-size) only drops the write; the client's stream goes on.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "glassproxy/util.h"
#include "proxy_int.h"

#define STORED_FIELDS_MAX PROXY_HEAD_MAX
#define VARY_TEXT_MAX	  8192

void proxy_set_cache(struct proxy *px, struct cache_store *store)
{
	px->cache = store;
}

static int64_t wall_now(struct client *cl)
{
	struct timespec ts;

	if (sys_now_wall(cl->px->sys, &ts) < 0)
		return 0;
	return (int64_t)ts.tv_sec;
}

const char *proxy_cache_status_value(struct exchange *x)
{
	if (cache_status_format(PROXY_NAME, &x->cache.status,
				x->cache.status_line,
				sizeof(x->cache.status_line)) < 0)
		util_format(x->cache.status_line, sizeof(x->cache.status_line),
			    "%s", PROXY_NAME);
	return x->cache.status_line;
}

int proxy_cache_parse_fields(const char *text, size_t len,
			     struct http_header *h, size_t cap)
{
	const char *p = text, *end = text + len;
	size_t n = 0;

	while (p < end) {
		const char *eol = memchr(p, '\r', (size_t)(end - p));
		const char *colon = memchr(p, ':', (size_t)(end - p));

		if (!eol || eol + 1 >= end || eol[1] != '\n' || !colon ||
		    colon > eol || n == cap)
			return -EINVAL;
		const char *v = colon + 1;
		while (v < eol && (*v == ' ' || *v == '\t'))
			v++;
		h[n].name = (struct http_slice){p, (size_t)(colon - p)};
		h[n].value = (struct http_slice){v, (size_t)(eol - v)};
		n++;
		p = eol + 2;
	}
	return (int)n;
}

/* The fields as stored: "Name: value\r\n" lines; <0 when too big. */
static int serialize_fields(const struct http_header *h, size_t n, char *dst,
			    size_t cap)
{
	struct head_writer w = {dst, cap, 0, false};

	for (size_t i = 0; i < n; i++)
		proxy_head_add_header(&w, &h[i]);
	return w.overflow ? -ENOSPC : (int)w.len;
}

static void entry_of(const struct proxy_cache_x *c, struct cache_entry *e)
{
	const struct cache_store_entry *se =
		cache_store_reader_entry(c->reader);

	/* The times are c->meta's: a 304 may have just renewed them. */
	*e = (struct cache_entry){c->fields, c->n_fields, se->meta.status,
				  c->meta.request_time, c->meta.response_time};
}

static void close_entry(struct proxy_cache_x *c)
{
	cache_store_reader_close(c->reader);
	c->reader = NULL;
	c->entry = false;
	c->revalidating = false;
}

/* Open variant id of this key into c (reader, fields, meta). */
static bool open_id(struct client *cl, struct proxy_cache_x *c, uint64_t id)
{
	const struct cache_store_entry *e;
	int n;

	if (cache_store_open(cl->px->cache, c->key, c->hash, id, &c->reader) <
	    0) {
		c->reader = NULL;
		return false;
	}
	e = cache_store_reader_entry(c->reader);
	n = proxy_cache_parse_fields(e->fields, e->fields_len, c->fields,
				     PROXY_MAX_HEADERS);
	if (n < 0) {
		close_entry(c);
		return false;
	}
	c->n_fields = (size_t)n;
	c->meta = e->meta;
	c->entry = true;
	return true;
}

/* The ETag line of stored fields ("Name: value\r\n" text), if any. */
static bool stored_etag(const char *text, size_t len, struct http_slice *out)
{
	const char *p = text, *end = text + len;

	while (p < end) {
		const char *eol = memchr(p, '\r', (size_t)(end - p));

		if (!eol)
			return false;
		if (eol - p > 5 && util_ieq(p, 5, "etag:", 5)) {
			const char *v = p + 5;
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			*out = (struct http_slice){v, (size_t)(eol - v)};
			return true;
		}
		p = eol + 2;
	}
	return false;
}

/*
 * The entity-tags of every stored variant of the key, joined into c->inm
 * (RFC 9111 section 4.3.1), and the variants they came from in c->cand.
 * The entry open in c (if any) stays open.  Returns inm's length.
 */
static int join_etags(struct client *cl, struct proxy_cache_x *c,
		      const struct cache_store_variants *vars)
{
	struct http_slice tags[CACHE_STORE_MAX_VARIANTS], v;
	char text[PROXY_INM_MAX];
	size_t used = 0, n = 0;

	c->n_cand = 0;
	for (size_t i = 0; i < vars->n; i++) {
		struct cache_store_reader *r;
		const struct cache_store_entry *e;

		c->cand[c->n_cand++] = vars->v[i].id;
		if (cache_store_open(cl->px->cache, c->key, c->hash,
				     vars->v[i].id, &r) < 0)
			continue;
		e = cache_store_reader_entry(r);
		if (stored_etag(e->fields, e->fields_len, &v) &&
		    v.len <= sizeof(text) - used) {
			memcpy(text + used, v.ptr, v.len);
			tags[n++] = (struct http_slice){text + used, v.len};
			used += v.len;
		}
		cache_store_reader_close(r);
	}
	return cache_join_etags(tags, n, c->inm, sizeof(c->inm));
}

/*
 * Our validators for a revalidation: the open entry's Last-Modified, and
 * If-None-Match with the entity-tags of all the key's variants, so the
 * origin may say which one is current.  Without an entry (a Vary miss)
 * only the tags.  True when there is something to validate with.
 */
static bool set_validators(struct client *cl, struct exchange *x,
			   const struct cache_store_variants *vars)
{
	struct proxy_cache_x *c = &x->cache;
	struct cache_entry e;
	size_t n = 0;
	int len = join_etags(cl, c, vars);

	if (len > 0)
		c->validators[n++] = (struct http_header){
			{"If-None-Match", 13}, {c->inm, (size_t)len}};
	if (c->entry) {
		struct http_header own[2];
		size_t k;

		entry_of(c, &e);
		k = cache_validators(&e, own);
		for (size_t i = 0; i < k; i++)
			if (!http_name_is(own[i].name, "if-none-match") ||
			    len <= 0)
				c->validators[n++] = own[i];
	}
	c->n_validators = n;
	c->revalidating = n > 0;
	return c->revalidating;
}

/* Revalidate: every variant's validators (they are few; each is opened). */
static bool revalidate_all(struct client *cl, struct exchange *x)
{
	struct proxy_cache_x *c = &x->cache;
	struct cache_store_variants vars;
	bool ok;

	if (cache_store_lookup(cl->px->cache, c->key, c->hash, &vars) < 0) {
		vars.n = 0;
		vars.blob = NULL;
	}
	ok = set_validators(cl, x, &vars);
	cache_store_variants_free(&vars);
	return ok;
}

/* Open the variant whose stored request fields match this request. */
static bool open_variant(struct client *cl, struct exchange *x, bool *vary_miss)
{
	struct proxy_cache_x *c = &x->cache;
	struct cache_store_variants vars;
	const struct cache_store_variant *best = NULL;
	uint64_t id = 0;

	*vary_miss = false;
	if (cache_store_lookup(cl->px->cache, c->key, c->hash, &vars) < 0)
		return false;
	for (size_t i = 0; i < vars.n; i++)
		if (cache_vary_match(vars.v[i].vary, vars.v[i].vary_len,
				     x->req.headers, x->req.num_headers) &&
		    (!best ||
		     vars.v[i].meta.response_time > best->meta.response_time))
			best = &vars.v[i];
	*vary_miss = vars.n > 0 && !best;
	if (best)
		id = best->id;
	cache_store_variants_free(&vars);
	return best && open_id(cl, c, id);
}

/* The fields a cache-made 304 carries (RFC 9110 section 15.4.5). */
static size_t fields_304(const struct proxy_cache_x *c, struct http_header *out)
{
	size_t n = 0;

	for (size_t i = 0; i < c->n_fields; i++)
		if (cache_304_keeps_field(c->fields[i].name))
			out[n++] = c->fields[i];
	return n;
}

/* Range on the stored body: false when it is not ours to answer. */
static bool apply_range(struct client *cl, struct exchange *x,
			const struct cache_entry *e, uint64_t len,
			struct proxy_hit *h, char *cr, size_t cap)
{
	uint64_t start, count;

	if (!proxy_method_is(&x->req, "GET") ||
	    http_find_header(x->req.headers, x->req.num_headers, "range", 0) <
		    0 ||
	    !cache_if_range(x->req.headers, x->req.num_headers, e,
			    wall_now(cl)))
		return true;
	switch (cache_range(x->req.headers, x->req.num_headers, len, &start,
			    &count)) {
	case CACHE_RANGE_NONE:
		return true;
	case CACHE_RANGE_IGNORE:
		return false;
	case CACHE_RANGE_OK:
		h->status = 206;
		h->start = start;
		h->count = count;
		break;
	case CACHE_RANGE_UNSATISFIABLE:
		h->status = 416;
		h->count = 0;
		h->send_body = false;
		break;
	}
	cache_format_content_range(start, h->status == 206 ? count : 0, len, cr,
				   cap);
	h->content_range = cr;
	return true;
}

/*
 * Serve the open entry (fresh, allowed stale, or just freshened),
 * answering the client's own conditional and Range requests from it.
 * known: its freshness as cache_decide just computed it (a hit: computing
 * it again was a tenth of a hit's instructions), or NULL to compute it
 * now (the entry was freshened, or time passed upstream).  False when the
 * request is not for the cache to answer (go upstream).
 */
static bool serve_entry(struct client *cl, struct exchange *x,
			enum proxy_outcome outcome,
			const struct cache_freshness *known)
{
	struct proxy_cache_x *c = &x->cache;
	const struct cache_store_entry *se =
		cache_store_reader_entry(c->reader);
	struct http_header f304[PROXY_MAX_HEADERS];
	struct cache_entry e;
	struct cache_freshness now_f;
	const struct cache_freshness *f = known ? known : &now_f;
	struct proxy_hit h = {0};
	int64_t now = wall_now(cl);
	char cr[96];

	entry_of(c, &e);
	if (!known)
		cache_freshness(&e, &proxy_live(cl)->cache_policy, now, &now_f);
	h = (struct proxy_hit){se->meta.status,
			       c->fields,
			       c->n_fields,
			       f->current_age,
			       NULL,
			       !proxy_method_is(&x->req, "HEAD"),
			       true,
			       0,
			       se->body_len};
	switch (cache_conditional(x->req.method, x->req.headers,
				  x->req.num_headers, &e, now)) {
	case CACHE_COND_NOT_MODIFIED:
		h.status = 304;
		h.fields = f304;
		h.n_fields = fields_304(c, f304);
		h.send_body = h.has_body = false;
		outcome = outcome == PROXY_OUTCOME_HIT
				  ? PROXY_OUTCOME_NOT_MODIFIED_HERE
				  : outcome;
		break;
	case CACHE_COND_FULL:
		if (!apply_range(cl, x, &e, se->body_len, &h, cr, sizeof(cr)))
			return false;
		break;
	case CACHE_COND_PRECONDITION_FAILED:
	case CACHE_COND_PASS:
		return false;
	}
	c->status.hit = c->status.fwd == CACHE_FWD_NONE;
	c->status.has_ttl = true;
	c->status.ttl = f->lifetime - f->current_age;
	x->outcome = outcome;
	/* On failure it says CLIENT_CLOSED itself. */
	proxy_hit_send(cl, x, c->reader, &h);
	return true;
}

/* PURGE <absolute-url>: loopback clients only (405 otherwise). */
static void purge(struct client *cl, struct exchange *x)
{
	struct proxy_cache_x *c = &x->cache;
	int removed = 0;

	if (strcmp(cl->ip, "127.0.0.1") != 0 && strcmp(cl->ip, "::1") != 0) {
		proxy_refuse(cl, x, PROXY_OUTCOME_PURGE_DENIED,
			     "PURGE is accepted from the proxy's own host "
			     "only.");
		return;
	}
	if (cl->px->cache && c->key[0])
		removed = cache_store_remove(cl->px->cache, c->key, c->hash);
	if (removed > 0)
		proxy_refuse(cl, x, PROXY_OUTCOME_PURGED, "Purged.");
	else
		proxy_refuse(cl, x, PROXY_OUTCOME_PURGE_NONE,
			     "Nothing stored for that URL.");
}

/* The key and its hash; false when the URL is too long to be a key. */
static bool make_key(struct exchange *x)
{
	struct proxy_cache_x *c = &x->cache;
	struct cache_hash hv;
	int n = cache_key_build(&x->req.url, c->key, sizeof(c->key));

	if (n < 0) {
		c->key[0] = '\0';
		return false;
	}
	cache_key_hash(c->key, (size_t)n, &hv);
	cache_hash_hex(&hv, c->hash, sizeof(c->hash));
	return true;
}

static bool use_entry(struct client *cl, struct exchange *x);

/* May several clients share one origin fetch of this request? */
static bool collapsible(const struct exchange *x)
{
	const struct cache_control *cc = &x->cache.req_cc;

	return proxy_method_is(&x->req, "GET") && !cc->no_store &&
	       !cc->no_cache &&
	       http_find_header(x->req.headers, x->req.num_headers, "range",
				0) < 0 &&
	       http_find_header(x->req.headers, x->req.num_headers,
				"authorization", 0) < 0;
}

/*
 * A miss: become the filler of this URL, or wait for the one there is
 * and then try the store again.  True when that served the request.
 */
static bool join_fill(struct client *cl, struct exchange *x)
{
	struct proxy_cache_x *c = &x->cache;
	struct cache_store_fill *f;
	bool vary_miss;
	int rc;

	if (!collapsible(x))
		return false;
	rc = cache_store_fill_begin(cl->px->cache, c->hash, 0, &f);
	if (rc == CACHE_STORE_FILL_FILLER) {
		c->fill = f;
		return false;
	}
	if (rc != CACHE_STORE_FILL_WAITER)
		return false;
	log_event(cl->px->log, LOG_INFO,
		  "%s %s: waits for the fill in progress", cl->addr, x->url);
	proxy_upstream_hook(cl, true); /* waits on the origin, as the filler */
	rc = cache_store_fill_wait(cl->px->cache, f,
				   proxy_live(cl)->response_timeout_ms);
	proxy_upstream_hook(cl, false);
	if (rc != CACHE_STORE_FILL_STORED || !open_variant(cl, x, &vary_miss))
		return false;
	c->status.collapsed = true;
	return use_entry(cl, x);
}

/* Nothing usable stored: 504 for only-if-cached, else forward. */
static bool miss(struct client *cl, struct exchange *x, bool vary_miss)
{
	struct proxy_cache_x *c = &x->cache;

	c->status.fwd = vary_miss ? CACHE_FWD_VARY_MISS : CACHE_FWD_URI_MISS;
	if (cache_decide_miss(&c->req_cc) == CACHE_GATEWAY_TIMEOUT) {
		proxy_refuse(cl, x, PROXY_OUTCOME_ONLY_IF_CACHED,
			     "Nothing suitable is cached (only-if-cached).");
		return true;
	}
	if (join_fill(cl, x))
		return true;
	/* Other variants are stored: the origin may say one of them is
	 * also this request's (RFC 9111 section 4.1, a 304 naming it). */
	if (vary_miss && !c->req_cc.no_store)
		revalidate_all(cl, x);
	return false;
}

/* An entry is open: what cache_decide says to do with it. */
static bool use_entry(struct client *cl, struct exchange *x)
{
	struct proxy_cache_x *c = &x->cache;
	struct cache_entry e;

	entry_of(c, &e);
	cache_decide(&c->req_cc, &e, &proxy_live(cl)->cache_policy,
		     wall_now(cl), &c->decision);
	switch (c->decision.action) {
	case CACHE_SERVE_FRESH:
		if (serve_entry(cl, x, PROXY_OUTCOME_HIT, &c->decision.f))
			return true;
		break;
	case CACHE_SERVE_STALE:
	case CACHE_SERVE_STALE_REVALIDATE:
		if (serve_entry(cl, x, PROXY_OUTCOME_STALE, &c->decision.f)) {
			c->swr = c->decision.action ==
				 CACHE_SERVE_STALE_REVALIDATE;
			return true;
		}
		break;
	case CACHE_REVALIDATE:
		revalidate_all(cl, x);
		c->status.fwd = CACHE_FWD_STALE;
		return false;
	case CACHE_FORWARD:
		c->status.fwd =
			c->decision.why == CACHE_WHY_REQUEST_NO_CACHE ||
					c->decision.why ==
						CACHE_WHY_REQUEST_NO_STORE
				? CACHE_FWD_REQUEST
				: CACHE_FWD_STALE;
		return false;
	case CACHE_GATEWAY_TIMEOUT:
		proxy_refuse(cl, x, PROXY_OUTCOME_ONLY_IF_CACHED,
			     "The cached response is not usable "
			     "(only-if-cached).");
		return true;
	}
	/* The cache cannot answer this one (a Range, a conditional): it
	 * goes as sent, and the entry stays open for what comes back. */
	c->status.fwd = CACHE_FWD_REQUEST;
	c->passed = true;
	return false;
}

bool proxy_cache_before(struct client *cl, struct exchange *x)
{
	struct proxy_cache_x *c = &x->cache;
	bool vary_miss;

	if (c->background)
		return false; /* set up by proxy_cache_background() */
	make_key(x);
	if (proxy_method_is(&x->req, "PURGE")) {
		purge(cl, x);
		return true;
	}
	if (!cl->px->cache || !c->key[0])
		return false;
	c->active = true;
	c->request_time = wall_now(cl);
	cache_cc_parse_request(x->req.headers, x->req.num_headers, &c->req_cc);
	if (!proxy_method_is(&x->req, "GET") &&
	    !proxy_method_is(&x->req, "HEAD")) {
		c->status.fwd = CACHE_FWD_METHOD;
		return false;
	}
	if (!open_variant(cl, x, &vary_miss))
		return miss(cl, x, vary_miss);
	return use_entry(cl, x);
}

bool proxy_cache_skip_request_field(const struct exchange *x,
				    struct http_slice name)
{
	if (!x->cache.revalidating && !x->cache.unconditional)
		return false;
	/* Our validators replace the client's: its own are evaluated
	 * here, against the freshened entry. */
	return http_name_is(name, "if-none-match") ||
	       http_name_is(name, "if-modified-since") ||
	       http_name_is(name, "if-match") ||
	       http_name_is(name, "if-unmodified-since") ||
	       http_name_is(name, "if-range") || http_name_is(name, "range");
}

/* Add our Cache-Status to a response from the origin, if there is room. */
static void add_status_field(struct exchange *x, struct http_response *res)
{
	const char *v = proxy_cache_status_value(x);

	if (res->num_headers >= PROXY_MAX_HEADERS)
		return;
	res->headers[res->num_headers++] =
		(struct http_header){{"Cache-Status", 12}, {v, strlen(v)}};
}

/* RFC 9111 section 4.4: the target and same-origin Location fields. */
static void invalidate(struct client *cl, struct exchange *x,
		       const struct http_response *res)
{
	static const char *const names[] = {"location", "content-location"};
	struct proxy_cache_x *c = &x->cache;
	char key[PROXY_CACHE_KEY_MAX], hash[CACHE_HASH_HEX];
	struct cache_hash hv;

	if (!cache_invalidates(x->req.method, res->status))
		return;
	cache_store_remove(cl->px->cache, c->key, c->hash);
	for (size_t i = 0; i < UTIL_ARRAY_LEN(names); i++) {
		ssize_t at = http_find_header(res->headers, res->num_headers,
					      names[i], 0);
		int n = at < 0 ? -1
			       : cache_invalidation_key(&x->req.url,
							res->headers[at].value,
							key, sizeof(key));
		if (n <= 0)
			continue;
		cache_key_hash(key, (size_t)n, &hv);
		cache_hash_hex(&hv, hash, sizeof(hash));
		cache_store_remove(cl->px->cache, key, hash);
	}
}

/* A transfer coding other than chunked stays on the bytes: not ours. */
static bool identity_body(const struct http_response *res)
{
	ssize_t i = http_find_header(res->headers, res->num_headers,
				     "transfer-encoding", 0);

	if (res->body == HTTP_BODY_UNTIL_CLOSE)
		return false; /* its end cannot be told from a reset */
	return i < 0 ||
	       (http_find_header(res->headers, res->num_headers,
				 "transfer-encoding", (size_t)i + 1) < 0 &&
		util_ieq(res->headers[i].value.ptr, res->headers[i].value.len,
			 "chunked", 7));
}

/*
 * A Content-Length past --max-object-size: decided here, before the store
 * write begins, so nothing of it touches the disk (the writer would drop
 * it anyway, but only after writing max_object_size bytes), and the body
 * is free to take the relay's zero-copy path (body.c: splice needs the
 * body to go to the client alone, with no store tee).  A chunked body's
 * length is unknown until its end: the writer's own limit still applies.
 */
static bool too_large(struct client *cl, const struct http_response *res)
{
	return res->body == HTTP_BODY_LENGTH &&
	       !cache_store_fits(cl->px->cache, res->content_length);
}

/*
 * RFC 9110 section 6.6.1: a stored response without Date gets one, the
 * time it arrived.  kept[] has room for one more; date[CACHE_DATE_LEN].
 */
static size_t ensure_date(struct http_header *kept, size_t n, int64_t now,
			  char *date)
{
	if (http_find_header(kept, n, "date", 0) >= 0)
		return n;
	cache_format_http_date(now, date, CACHE_DATE_LEN);
	kept[n] = (struct http_header){{"Date", 4}, {date, strlen(date)}};
	return n + 1;
}

/* The stored copy's fields and meta; then the writer.  0 or <0. */
static int begin_store(struct client *cl, struct exchange *x,
		       const struct http_response *res,
		       const struct cache_store_decision *sd)
{
	struct proxy_cache_x *c = &x->cache;
	struct http_header kept[PROXY_MAX_HEADERS + 1];
	char vary[VARY_TEXT_MAX], date[CACHE_DATE_LEN];
	int64_t now = wall_now(cl);
	struct cache_store_meta meta = {c->request_time, now, 0, 0,
					(uint16_t)res->status};
	int n = cache_store_fields(sd, res->headers, res->num_headers, kept,
				   PROXY_MAX_HEADERS);
	int vlen = cache_vary_serialize(res->headers, res->num_headers,
					x->req.headers, x->req.num_headers,
					vary, sizeof(vary));
	char *text;
	int len, rc;

	if (n < 0 || vlen < 0)
		return n < 0 ? n : vlen;
	n = (int)ensure_date(kept, (size_t)n, now, date);
	text = malloc(STORED_FIELDS_MAX);
	if (!text)
		return -ENOMEM;
	len = serialize_fields(kept, (size_t)n, text, STORED_FIELDS_MAX);
	rc = len < 0 ? len
		     : cache_store_write_begin(cl->px->cache, c->key, c->hash,
					       vary, (size_t)vlen, &meta, text,
					       (size_t)len, &c->writer);
	free(text);
	return rc;
}

/*
 * Which stored response a 304 to our revalidation selects (RFC 9111
 * section 4.3.4): the open entry or another variant whose ETag went
 * upstream, by a strong validator, else a weak one or Last-Modified; a
 * 304 without validators the one entry there is.  Leaves the selected one
 * open in c; false (nothing open) when none is.
 */
static bool select_304(struct client *cl, struct proxy_cache_x *c,
		       const struct http_response *res)
{
	bool only = c->n_cand <= 1;
	uint64_t open = 0;
	struct cache_entry e;

	if (c->entry) {
		entry_of(c, &e);
		if (cache_304_selects(&e, res->headers, res->num_headers, only))
			return true;
		open = cache_store_reader_entry(c->reader)->variant;
		close_entry(c);
	}
	for (size_t i = 0; i < c->n_cand; i++) {
		if (c->cand[i] == open || !open_id(cl, c, c->cand[i]))
			continue;
		entry_of(c, &e);
		if (cache_304_selects(&e, res->headers, res->num_headers,
				      false))
			return true;
		close_entry(c);
	}
	return false;
}

/*
 * The open entry updated with the fields of a 304 or of a HEAD's 200
 * (RFC 9111 section 3.2): merged into merged[PROXY_MAX_HEADERS] (date
 * gives room for a Date), the store updated when the result may still be
 * stored, the new times in *meta.  Returns the merged count or <0.
 */
static int update_entry(struct client *cl, struct exchange *x,
			const struct http_response *res,
			struct http_header *merged, char *date,
			struct cache_store_meta *meta)
{
	struct proxy_cache_x *c = &x->cache;
	struct http_header kept[PROXY_MAX_HEADERS];
	const struct cache_store_entry *se =
		cache_store_reader_entry(c->reader);
	struct cache_store_decision sd;
	struct http_response as_stored = *res;
	struct http_request as_get = x->req;
	char *text;
	int n, k, len;

	/* One place left for a Date (c->fields takes the result). */
	n = cache_merge_fields(c->fields, c->n_fields, res->headers,
			       res->num_headers, merged, PROXY_MAX_HEADERS - 1);
	if (n < 0)
		return n;
	*meta = se->meta;
	meta->request_time = c->request_time;
	meta->response_time = wall_now(cl);
	n = (int)ensure_date(merged, (size_t)n, meta->response_time, date);
	as_stored.status = se->meta.status;
	as_stored.headers = merged;
	as_stored.num_headers = (size_t)n;
	/* A HEAD refreshes what was stored for a GET. */
	as_get.method = (struct http_slice){"GET", 3};
	cache_storable(&as_get, &as_stored, &proxy_live(cl)->cache_policy, &sd);
	k = cache_store_fields(&sd, merged, (size_t)n, kept, PROXY_MAX_HEADERS);
	text = malloc(STORED_FIELDS_MAX);
	if (text && k >= 0 && sd.store) {
		len = serialize_fields(kept, (size_t)k, text,
				       STORED_FIELDS_MAX);
		if (len >= 0 &&
		    cache_store_update(cl->px->cache, c->reader, meta, text,
				       (size_t)len) == 0)
			c->stored = c->status.stored = true;
	}
	free(text);
	return n;
}

/* A 304 to our conditional request: freshen the entry, serve it. */
static bool freshen(struct client *cl, struct exchange *x,
		    const struct http_response *res)
{
	struct proxy_cache_x *c = &x->cache;
	struct http_header merged[PROXY_MAX_HEADERS];
	char date[CACHE_DATE_LEN];
	struct cache_store_meta meta;
	int n;

	if (!select_304(cl, c, res))
		return false;
	n = update_entry(cl, x, res, merged, date, &meta);
	if (n < 0)
		return false;
	/* What this client gets: the merged fields, new times. */
	memcpy(c->fields, merged, sizeof(merged[0]) * (size_t)n);
	c->n_fields = (size_t)n;
	c->meta = meta;
	c->status.fwd_status = 304;
	serve_entry(cl, x, PROXY_OUTCOME_REFRESH_UNMODIFIED, NULL);
	return true;
}

/*
 * The answer to a request that went upstream as the client sent it while
 * an entry was open (c->passed): a 304 to the client's own conditional
 * that matches the entry, or a HEAD's 200 with the entry's validators
 * (RFC 9111 sections 4.3.4, 4.3.5), freshens it.  The response itself
 * goes on to the client.
 */
static void freshen_passed(struct client *cl, struct exchange *x,
			   const struct http_response *res)
{
	struct proxy_cache_x *c = &x->cache;
	struct http_header merged[PROXY_MAX_HEADERS];
	char date[CACHE_DATE_LEN];
	struct cache_store_meta meta;
	struct cache_entry e;
	bool head = proxy_method_is(&x->req, "HEAD") && res->status == 200;

	entry_of(c, &e);
	if (c->req_cc.no_store) {
		close_entry(c);
		return;
	}
	if ((res->status == 304 &&
	     cache_304_selects(&e, res->headers, res->num_headers, false)) ||
	    (head &&
	     cache_head_updates(&e, res->headers, res->num_headers,
				cache_store_reader_entry(c->reader)->body_len)))
		update_entry(cl, x, res, merged, date, &meta);
	close_entry(c);
}

/* The origin failed or said 5xx: serve the entry stale, or 504. */
static bool stale_on_error(struct client *cl, struct exchange *x, int status)
{
	struct proxy_cache_x *c = &x->cache;

	if (!c->entry)
		return false;
	c->status.fwd = CACHE_FWD_STALE;
	c->status.fwd_status = status;
	if (cache_stale_if_error(&c->req_cc, &c->decision,
				 &proxy_live(cl)->cache_policy, status)) {
		c->status.detail = "stale-if-error";
		return serve_entry(cl, x, PROXY_OUTCOME_REFRESH_FAIL_OLD, NULL);
	}
	if (status == 0 && c->decision.stale_forbidden) {
		c->status.detail = "must-revalidate";
		proxy_refuse(cl, x, PROXY_OUTCOME_REFRESH_FAIL_504,
			     "The cached response must be revalidated and "
			     "the origin cannot be reached.");
		return true;
	}
	return false;
}

/*
 * A 304 for none of what we hold (RFC 9111 section 4.3.4): the client
 * asked for a whole response, so ask once more without conditionals; a
 * second such 304 (an origin ignoring that) is an error.
 */
static bool refetch(struct client *cl, struct exchange *x)
{
	struct proxy_cache_x *c = &x->cache;

	if (c->entry)
		close_entry(c);
	c->revalidating = false;
	if (!c->unconditional) {
		log_event(cl->px->log, LOG_INFO,
			  "%s %s: the 304 selects no stored response; "
			  "asking again unconditionally",
			  cl->addr, x->url);
		c->unconditional = c->refetch = true;
		c->status.detail = "304-selected-nothing";
		return true;
	}
	proxy_refuse(cl, x, PROXY_OUTCOME_BAD_ORIGIN_RESPONSE,
		     "The origin answered 304 to an unconditional request.");
	return true;
}

bool proxy_cache_refetch(struct exchange *x)
{
	bool again = x->cache.refetch;

	x->cache.refetch = false;
	return again;
}

bool proxy_cache_failed(struct client *cl, struct exchange *x)
{
	return x->cache.active && stale_on_error(cl, x, 0);
}

bool proxy_cache_response(struct client *cl, struct exchange *x,
			  struct http_response *res)
{
	struct proxy_cache_x *c = &x->cache;
	struct cache_store_decision sd;

	if (!c->active) {
		c->status.fwd = CACHE_FWD_BYPASS;
		if (cl->px->cache)
			add_status_field(x, res);
		return false;
	}
	invalidate(cl, x, res);
	if (c->revalidating && res->status == 304) {
		if (freshen(cl, x, res))
			return true;
		return refetch(cl, x);
	}
	if (c->entry && !c->passed && res->status >= 500 &&
	    stale_on_error(cl, x, res->status))
		return true;
	/* A HEAD's answer is not stored, but may freshen the GET's. */
	if (c->passed || (c->entry && proxy_method_is(&x->req, "HEAD"))) {
		freshen_passed(cl, x, res);
		c->status.fwd_status = res->status;
		add_status_field(x, res);
		return false;
	}
	if (c->entry) {
		x->outcome = PROXY_OUTCOME_REFRESH_MODIFIED;
		close_entry(c);
	}
	c->status.fwd_status = res->status;
	cache_storable(&x->req, res, &proxy_live(cl)->cache_policy, &sd);
	if (sd.store && too_large(cl, res))
		c->status.detail = "too-large";
	else if (sd.store && identity_body(res) &&
		 begin_store(cl, x, res, &sd) == 0)
		c->status.stored = true;
	else if (!sd.store && proxy_method_is(&x->req, "GET"))
		c->status.detail = cache_reason_str(sd.reason);
	if (c->status.stored && x->outcome != PROXY_OUTCOME_REFRESH_MODIFIED)
		x->outcome = PROXY_OUTCOME_MISS;
	add_status_field(x, res);
	return false;
}

struct proxy_sink *proxy_cache_sink(struct exchange *x,
				    struct proxy_sink *client,
				    struct proxy_tee_sink *tee,
				    struct proxy_store_sink *store)
{
	if (!x->cache.writer)
		return client;
	return proxy_sink_tee(tee, client,
			      proxy_sink_store(store, x->cache.writer));
}

void proxy_cache_body_done(struct exchange *x, bool ok, uint64_t len)
{
	struct proxy_cache_x *c = &x->cache;
	struct cache_store_writer *w = c->writer;

	if (!w)
		return;
	c->writer = NULL;
	if (!ok) {
		cache_store_write_abort(w);
		return;
	}
	c->stored = c->committed = cache_store_write_commit(w, len) == 0;
	c->committed_len = len;
}

void proxy_cache_count_store(struct proxy *px)
{
	struct cache_store_stats s;
	uint64_t n, bytes;

	if (!px->cache || !px->stats)
		return;
	cache_store_get_stats(px->cache, &s);
	stats_cache_size(px->stats, s.bytes, s.entries);
	pthread_mutex_lock(&px->lock);
	n = s.evictions - px->evictions_counted;
	bytes = s.evicted_bytes - px->evicted_bytes_counted;
	px->evictions_counted = s.evictions;
	px->evicted_bytes_counted = s.evicted_bytes;
	pthread_mutex_unlock(&px->lock);
	/* One call per eviction; their bytes go with the first. */
	for (uint64_t i = 0; i < n; i++)
		stats_cache_evicted(px->stats, i == 0 ? bytes : 0);
}

/* The counters of one exchange (issue #12): what the cache did for it. */
static void count_exchange(struct client *cl, const struct exchange *x)
{
	const struct proxy_cache_x *c = &x->cache;
	struct stats *st = cl->px->stats;

	if (x->outcome == PROXY_OUTCOME_REFRESH_UNMODIFIED)
		stats_cache_revalidated(st);
	if (c->committed) {
		stats_cache_stored(st, c->committed_len);
		proxy_cache_count_store(cl->px);
	}
	if (!c->active || c->background || c->status.fwd == CACHE_FWD_METHOD)
		return;
	switch (x->outcome) {
	case PROXY_OUTCOME_HIT:
	case PROXY_OUTCOME_NOT_MODIFIED_HERE:
	case PROXY_OUTCOME_STALE:
	case PROXY_OUTCOME_REFRESH_FAIL_OLD:
	case PROXY_OUTCOME_REFRESH_UNMODIFIED:
		stats_cache_hit(st);
		break;
	default:
		stats_cache_miss(st);
		break;
	}
}

void proxy_cache_end(struct client *cl, struct exchange *x)
{
	struct proxy_cache_x *c = &x->cache;

	if (c->writer) {
		cache_store_write_abort(c->writer);
		c->writer = NULL;
	}
	/* What the cache did and why, for `grep conn=N` (debug level): the
	 * Cache-Status value carries the reason (fwd=, detail=, stored). */
	if (c->active && log_enabled(cl->px->log, LOG_DEBUG))
		log_event(cl->px->log, LOG_DEBUG, "%s %s: cache %s: %s",
			  cl->addr, x->url, proxy_cache_result(x),
			  proxy_cache_status_value(x));
	count_exchange(cl, x);
	if (c->reader)
		close_entry(c);
	if (c->fill) {
		cache_store_fill_end(cl->px->cache, c->fill, c->stored);
		c->fill = NULL;
	}
}

const char *proxy_cache_result(const struct exchange *x)
{
	const struct proxy_cache_x *c = &x->cache;

	switch (x->outcome) {
	case PROXY_OUTCOME_HIT:
	case PROXY_OUTCOME_NOT_MODIFIED_HERE:
		return "HIT";
	case PROXY_OUTCOME_REFRESH_UNMODIFIED:
	case PROXY_OUTCOME_REFRESH_MODIFIED:
		return "REFRESH";
	case PROXY_OUTCOME_STALE:
	case PROXY_OUTCOME_REFRESH_FAIL_OLD:
		return "STALE";
	default:
		break;
	}
	if (!c->active)
		return "NONE";
	return c->status.fwd == CACHE_FWD_METHOD ? "BYPASS" : "MISS";
}

/*
 * stale-while-revalidate (RFC 5861 section 3): the stale response has
 * been sent; now, on the same thread and before the client's next request
 * is read, one revalidation with the client's request.  Nothing of it
 * reaches the client (x->cache.background silences every send); a 304
 * freshens the entry, a storable 200 replaces it.  It has its own
 * access-log line.
 */
void proxy_cache_background(struct client *cl, struct exchange *x,
			    void (*forward)(struct client *, struct exchange *),
			    void (*log)(struct client *, struct exchange *))
{
	struct exchange *bx;
	bool vary_miss;

	if (!x->cache.swr || !cl->px->cache)
		return;
	bx = malloc(sizeof(*bx));
	if (!bx)
		return;
	memcpy(bx, x, sizeof(*bx));
	memset(&bx->cache, 0, sizeof(bx->cache));
	memcpy(bx->cache.key, x->cache.key, sizeof(bx->cache.key));
	memcpy(bx->cache.hash, x->cache.hash, sizeof(bx->cache.hash));
	bx->cache.req_cc = x->cache.req_cc;
	bx->cache.active = bx->cache.background = true;
	bx->cache.request_time = wall_now(cl);
	bx->status = 0;
	bx->bytes_sent = 0;
	bx->outcome = PROXY_OUTCOME_UNSET;
	bx->cache.status.fwd = CACHE_FWD_STALE;
	bx->cache.status.detail = "background";
	if (open_variant(cl, bx, &vary_miss)) {
		revalidate_all(cl, bx);
		forward(cl, bx);
		log(cl, bx);
	}
	proxy_cache_end(cl, bx);
	free(bx);
}
