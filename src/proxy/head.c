/*
 * Writing the heads this proxy sends: requests towards the origin (or the
 * parent proxy) and responses towards the client.
 *
 * Heads are rewritten on the way (RFC 9110 section 7.6): hop-by-hop fields
 * are dropped in both directions, Host comes from the request target, and
 * a Via field names this proxy.  The framing fields are never copied: they
 * are written anew from the framing the body will really leave with, so
 * no odd spelling, duplicate or "Connection: content-length" can make the
 * next hop find the end of a body anywhere but where this proxy puts it.
 */
#include <errno.h>
#include <string.h>

#include "glassproxy/util.h"
#include "proxy_int.h"

void proxy_head_add(struct head_writer *w, const char *s, size_t len)
{
	if (w->overflow || w->len + len > w->cap) {
		w->overflow = true;
		return;
	}
	memcpy(w->buf + w->len, s, len);
	w->len += len;
}

void proxy_head_add_str(struct head_writer *w, const char *s)
{
	proxy_head_add(w, s, strlen(s));
}

void proxy_head_add_header(struct head_writer *w, const struct http_header *h)
{
	proxy_head_add(w, h->name.ptr, h->name.len);
	proxy_head_add(w, ": ", 2);
	proxy_head_add(w, h->value.ptr, h->value.len);
	proxy_head_add(w, "\r\n", 2);
}

bool proxy_method_is(const struct http_request *r, const char *m)
{
	return r->method.len == strlen(m) &&
	       memcmp(r->method.ptr, m, r->method.len) == 0;
}

static bool is_framing(const struct http_header *h)
{
	return http_name_is(h->name, "content-length") ||
	       http_name_is(h->name, "transfer-encoding");
}

/* End-to-end fields are copied; hop-by-hop and framing ones are not. */
static bool copy_field(const struct http_header *h,
		       const struct http_header *all, size_t n)
{
	return !is_framing(h) && !http_is_hop_by_hop(h->name, all, n);
}

/* One transfer coding, lower-cased, after a ", " unless it is the first. */
static void add_coding(struct head_writer *w, const char *tok, size_t len,
		       bool *first)
{
	proxy_head_add_str(w, *first ? "" : ", ");
	for (size_t j = 0; j < len; j++) {
		char c = util_lower(tok[j]);
		proxy_head_add(w, &c, 1);
	}
	*first = false;
}

/* The transfer codings of a message, tidied: "gzip, chunked". */
static void add_codings(struct head_writer *w, const struct http_header *h,
			size_t n)
{
	bool first = true;

	for (ssize_t i = http_find_header(h, n, "transfer-encoding", 0); i >= 0;
	     i = http_find_header(h, n, "transfer-encoding", (size_t)i + 1)) {
		const char *p = h[i].value.ptr, *end = p + h[i].value.len;

		while (p < end) {
			const char *comma = memchr(p, ',', (size_t)(end - p));
			const char *tok = p;
			size_t len = (size_t)((comma ? comma : end) - p);

			util_trim(&tok, &len);
			if (len > 0)
				add_coding(w, tok, len, &first);
			p = comma ? comma + 1 : end;
		}
	}
}

int proxy_bodiless_length(int status, const struct http_header *h, size_t n,
			  uint64_t *out)
{
	bool any = false;
	uint64_t v;

	/* RFC 9110 section 8.6: never on 1xx or 204. */
	if (status < 200 || status == 204)
		return 0;
	for (ssize_t i = http_find_header(h, n, "content-length", 0); i >= 0;
	     i = http_find_header(h, n, "content-length", (size_t)i + 1)) {
		const char *p = h[i].value.ptr;
		size_t len = h[i].value.len;

		util_trim(&p, &len);
		if (util_parse_u64(p, len, UINT64_MAX, &v) < 0 ||
		    (any && v != *out))
			return -EINVAL;
		*out = v;
		any = true;
	}
	return any ? 1 : 0;
}

/* "Content-Length: v" and its CRLF. */
static void add_content_length(struct head_writer *w, uint64_t v)
{
	char num[24];

	util_format_u64(num, sizeof(num), v);
	proxy_head_add_str(w, "Content-Length: ");
	proxy_head_add_str(w, num);
	proxy_head_add_str(w, "\r\n");
}

/*
 * A bodiless response (to HEAD, a 304) keeps the origin's Content-Length,
 * which then describes the representation, not a body: one validated
 * value, never a list or two that differ (those are dropped: there is no
 * body for them to mis-frame, and a 502 would punish the client for
 * metadata).  A 1xx or 204 gets none.
 */
static void add_bodiless_length(struct head_writer *w, int status,
				const struct http_header *h, size_t n)
{
	uint64_t v = 0;

	if (proxy_bodiless_length(status, h, n, &v) <= 0)
		return;
	add_content_length(w, v);
}

/* Write a message's framing exactly as the relay will produce it. */
static void add_framing(struct head_writer *w, int status, enum http_body kind,
			uint64_t length, const struct http_header *h, size_t n,
			enum proxy_framing out)
{
	if (kind == HTTP_BODY_NONE) {
		add_bodiless_length(w, status, h, n);
		return;
	}
	if (out == PROXY_FRAME_LENGTH) {
		add_content_length(w, length);
		return;
	}
	/*
	 * Chunked or close-delimited: the codings go on as they are (gzip
	 * included), except that a body decoded for an HTTP/1.0 client has
	 * none left to announce.
	 */
	if (kind == HTTP_BODY_CHUNKED && out == PROXY_FRAME_CLOSE)
		return;
	if (http_find_header(h, n, "transfer-encoding", 0) >= 0) {
		proxy_head_add_str(w, "Transfer-Encoding: ");
		add_codings(w, h, n);
		proxy_head_add_str(w, "\r\n");
	}
}

static void add_via(const struct proxy_settings *set, struct head_writer *w,
		    int minor_version)
{
	proxy_head_add_str(w, minor_version == 0 ? "Via: 1.0 " : "Via: 1.1 ");
	proxy_head_add_str(w, set->via_name);
	proxy_head_add_str(w, "\r\n");
}

/* Does one Via element ("1.1 name [comment]") name us? */
static bool via_element_is(const char *p, const char *end, const char *us)
{
	const char *sp = memchr(p, ' ', (size_t)(end - p));
	const char *name, *name_end;

	if (!sp)
		return false;
	name = name_end = sp + 1;
	while (name_end < end && *name_end != ' ')
		name_end++;
	return util_ieq(name, (size_t)(name_end - name), us, strlen(us));
}

bool proxy_via_names_us(const char *us, const struct http_header *h, size_t n)
{
	for (ssize_t i = http_find_header(h, n, "via", 0); i >= 0;
	     i = http_find_header(h, n, "via", (size_t)i + 1)) {
		const char *p = h[i].value.ptr, *end = p + h[i].value.len;

		while (p < end) {
			const char *comma = memchr(p, ',', (size_t)(end - p));

			if (via_element_is(p, comma ? comma : end, us))
				return true;
			p = comma ? comma + 1 : end;
			while (p < end && (*p == ' ' || *p == '\t'))
				p++;
		}
	}
	return false;
}

/* "host", "[v6]" or either with ":port" when it is not the default. */
static void add_authority(struct head_writer *w, const struct http_url *u,
			  const char *host)
{
	char port[16];

	if (u->host_is_ipv6)
		proxy_head_add_str(w, "[");
	proxy_head_add_str(w, host);
	if (u->host_is_ipv6)
		proxy_head_add_str(w, "]");
	if (u->port_explicit && u->port != 80) {
		util_format_u64(port, sizeof(port), u->port);
		proxy_head_add_str(w, ":");
		proxy_head_add_str(w, port);
	}
}

long long proxy_max_forwards(const struct http_request *r)
{
	ssize_t i;
	uint64_t v;

	if (!proxy_method_is(r, "TRACE") && !proxy_method_is(r, "OPTIONS"))
		return -1;
	i = http_find_header(r->headers, r->num_headers, "max-forwards", 0);
	if (i < 0 || util_parse_u64(r->headers[i].value.ptr,
				    r->headers[i].value.len, 1u << 30, &v) < 0)
		return -1;
	return (long long)v;
}

/*
 * "http://host" has an empty path: the parser gives "/" from outside the
 * target, so the path's bytes are not the target's.
 */
static bool path_is_empty(const struct http_request *r)
{
	const char *p = r->url.path.ptr;

	return p < r->target.ptr || p >= r->target.ptr + r->target.len;
}

/*
 * The request line.  A proxy is asked in absolute-form (RFC 9112 section
 * 3.2.2), an origin in origin-form; OPTIONS for a URL without a path asks
 * about the server itself, "OPTIONS *" (RFC 9112 section 3.2.4).
 */
static void add_request_line(struct head_writer *w,
			     const struct http_request *r, const char *host,
			     bool to_parent)
{
	bool asterisk = proxy_method_is(r, "OPTIONS") && path_is_empty(r);

	proxy_head_add(w, r->method.ptr, r->method.len);
	proxy_head_add(w, " ", 1);
	if (to_parent) {
		proxy_head_add_str(w, "http://");
		add_authority(w, &r->url, host);
		if (!asterisk)
			proxy_head_add(w, r->url.path.ptr, r->url.path.len);
	} else if (asterisk) {
		proxy_head_add_str(w, "*");
	} else {
		proxy_head_add(w, r->url.path.ptr, r->url.path.len);
	}
	proxy_head_add_str(w, " HTTP/1.1\r\nHost: ");
	add_authority(w, &r->url, host);
	proxy_head_add_str(w, "\r\n");
}

/* X-Forwarded-For and Forwarded naming the client (--forwarded-for on). */
static void add_forwarded(struct head_writer *w, const char *ip)
{
	char line[NET_ADDR_TEXT_MAX + 32];
	bool v6 = strchr(ip, ':') != NULL;

	util_format(line, sizeof(line), "X-Forwarded-For: %s\r\n", ip);
	proxy_head_add_str(w, line);
	/* RFC 7239 section 6: an IPv6 node is a quoted "[v6]". */
	util_format(line, sizeof(line), "Forwarded: for=%s%s%s\r\n",
		    v6 ? "\"[" : "", ip, v6 ? "]\"" : "");
	proxy_head_add_str(w, line);
}

/* The client's fields as the origin gets them. */
static void add_request_fields(struct head_writer *w, const struct exchange *x,
			       const struct proxy_settings *set)
{
	const struct http_request *r = &x->req;
	long long hops = proxy_max_forwards(r);
	char line[64];

	for (size_t i = 0; i < r->num_headers; i++) {
		const struct http_header *h = &r->headers[i];

		if (http_name_is(h->name, "host") ||
		    !copy_field(h, r->headers, r->num_headers) ||
		    proxy_cache_skip_request_field(x, h->name))
			continue;
		if (hops > 0 && http_name_is(h->name, "max-forwards")) {
			util_format(line, sizeof(line),
				    "Max-Forwards: %lld\r\n", hops - 1);
			proxy_head_add_str(w, line);
			continue;
		}
		if (set->forwarded == PROXY_FORWARDED_DELETE &&
		    (http_name_is(h->name, "x-forwarded-for") ||
		     http_name_is(h->name, "forwarded")))
			continue;
		proxy_head_add_header(w, h);
	}
}

int proxy_build_request_head(const struct client *cl, const struct exchange *x,
			     const char *host, bool to_parent,
			     struct head_writer *w)
{
	const struct proxy_settings *set = &cl->rules->set;
	const struct http_request *r = &x->req;

	add_request_line(w, r, host, to_parent);
	add_request_fields(w, x, set);
	/* Revalidating a stored response: its validators (cache_glue.c). */
	if (x->cache.revalidating)
		for (size_t i = 0; i < x->cache.n_validators; i++)
			proxy_head_add_header(w, &x->cache.validators[i]);
	if (set->forwarded == PROXY_FORWARDED_ON)
		add_forwarded(w, cl->ip);
	if (r->body != HTTP_BODY_NONE)
		add_framing(w, 0, r->body, r->content_length, r->headers,
			    r->num_headers,
			    r->body == HTTP_BODY_CHUNKED ? PROXY_FRAME_CHUNKED
							 : PROXY_FRAME_LENGTH);
	add_via(set, w, r->minor_version);
	proxy_head_add_str(w, "\r\n");
	return w->overflow ? -ENOBUFS : 0;
}

int proxy_build_response_head(const struct proxy_settings *set,
			      const struct http_response *res,
			      const struct exchange *x, enum proxy_framing out,
			      struct head_writer *w)
{
	char status[24];

	util_format_u64(status, sizeof(status), (uint64_t)res->status);
	proxy_head_add_str(w, "HTTP/1.1 ");
	proxy_head_add_str(w, status);
	proxy_head_add_str(w, " ");
	proxy_head_add(w, res->reason.ptr, res->reason.len);
	proxy_head_add_str(w, "\r\n");
	for (size_t i = 0; i < res->num_headers; i++)
		if (copy_field(&res->headers[i], res->headers,
			       res->num_headers))
			proxy_head_add_header(w, &res->headers[i]);
	add_framing(w, res->status, res->body, res->content_length,
		    res->headers, res->num_headers, out);
	add_via(set, w, res->minor_version);
	if (res->status >= 200) {
		if (!x->client_keep_alive)
			proxy_head_add_str(w, "Connection: close\r\n");
		else if (x->req.minor_version == 0)
			proxy_head_add_str(w, "Connection: keep-alive\r\n");
	}
	proxy_head_add_str(w, "\r\n");
	return w->overflow ? -ENOBUFS : 0;
}
