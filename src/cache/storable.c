/*
 * What a shared cache may store (RFC 9111 section 3, 3.5, 5.2.2) and
 * which fields it must leave out (section 3.1, 5.2.2.4, 5.2.2.7; RFC 9110
 * section 7.6.1 for hop-by-hop fields).
 */
#include "cache_int.h"

#include <errno.h>

const char *cache_reason_str(enum cache_reason r)
{
	static const char *const names[] = {
		[CACHE_STORE_OK] = "stored",
		[CACHE_STORE_METHOD] = "method",
		[CACHE_STORE_STATUS] = "status",
		[CACHE_STORE_REQUEST_NO_STORE] = "request-no-store",
		[CACHE_STORE_NO_STORE] = "no-store",
		[CACHE_STORE_PRIVATE] = "private",
		[CACHE_STORE_AUTHORIZATION] = "authorization",
		[CACHE_STORE_MUST_UNDERSTAND] = "must-understand",
		[CACHE_STORE_VARY_STAR] = "vary-star",
		[CACHE_STORE_NOT_CACHEABLE] = "not-cacheable",
		[CACHE_STORE_USELESS] = "no-freshness-no-validator",
		[CACHE_STORE_TOO_MANY] = "too-many-fields",
	};

	if ((size_t)r >= UTIL_ARRAY_LEN(names) || !names[r])
		return "unknown";
	return names[r];
}

/*
 * The status codes whose requirements glassproxy implements, for
 * must-understand (section 5.2.2.3): those of RFC 9110 section 15 but 206
 * (partial content is not stored) and 304 (a validation answer).
 */
static bool status_understood(int status)
{
	static const int codes[] = {200, 201, 202, 203, 204, 205, 300, 301,
				    302, 303, 305, 307, 308, 400, 401, 402,
				    403, 404, 405, 406, 407, 408, 409, 410,
				    411, 412, 413, 414, 415, 416, 417, 421,
				    422, 426, 500, 501, 502, 503, 504, 505};

	for (size_t i = 0; i < UTIL_ARRAY_LEN(codes); i++)
		if (codes[i] == status)
			return true;
	return false;
}

static bool drop_add(struct cache_store_decision *d, struct http_slice name)
{
	if (cache_store_drops(d, name))
		return true;
	if (d->n_drop >= CACHE_MAX_DROP)
		return false;
	d->drop[d->n_drop++] = name;
	return true;
}

static bool drop_lists(struct cache_store_decision *d,
		       const struct http_slice *lists, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t pos = 0;
		struct http_slice e;

		while (cache_split_next(lists[i], &pos, &e))
			if (!drop_add(d, e))
				return false;
	}
	return true;
}

/* Every field the stored copy must not carry; false on overflow. */
static bool collect_drops(const struct http_response *res,
			  const struct cache_control *cc,
			  struct cache_store_decision *d)
{
	static const char *const fixed[] = {
		"Connection",
		"Keep-Alive",
		"Proxy-Connection",
		"TE",
		"Trailer",
		"Transfer-Encoding",
		"Upgrade",
		"Proxy-Authenticate",
		"Proxy-Authorization",
		"Set-Cookie",
		"Set-Cookie2",
	};
	struct cache_list it;
	struct http_slice e;

	for (size_t i = 0; i < UTIL_ARRAY_LEN(fixed); i++)
		drop_add(d, cache_lit(fixed[i]));
	cache_list_init(&it, res->headers, res->num_headers, "Connection");
	while (cache_list_next(&it, &e))
		if (!drop_add(d, e))
			return false;
	return drop_lists(d, cc->no_cache_fields, cc->n_no_cache_fields) &&
	       drop_lists(d, cc->private_fields, cc->n_private_fields);
}

static bool explicit_freshness(const struct http_response *res,
			       const struct cache_control *cc)
{
	return cc->public_ || cc->max_age >= 0 || cc->s_maxage >= 0 ||
	       http_find_header(res->headers, res->num_headers, "Expires", 0) >=
		       0;
}

static bool has_validator(const struct http_response *res)
{
	return http_find_header(res->headers, res->num_headers, "ETag", 0) >=
		       0 ||
	       http_find_header(res->headers, res->num_headers, "Last-Modified",
				0) >= 0;
}

static bool vary_star(const struct http_response *res)
{
	struct cache_list it;
	struct http_slice e;

	cache_list_init(&it, res->headers, res->num_headers, "Vary");
	while (cache_list_next(&it, &e))
		if (e.len == 1 && e.ptr[0] == '*')
			return true;
	return false;
}

/* Section 3 in order; CACHE_STORE_OK when nothing forbids storing. */
static enum cache_reason why_not(const struct http_request *req,
				 const struct http_response *res,
				 const struct cache_control *cc,
				 const struct cache_control *rq,
				 const struct cache_policy *p)
{
	if (!cache_method_is(req->method, "GET"))
		return CACHE_STORE_METHOD;
	if (res->status < 200 || res->status == 206 || res->status == 304)
		return CACHE_STORE_STATUS;
	if (cc->must_understand && !status_understood(res->status))
		return CACHE_STORE_MUST_UNDERSTAND;
	if (rq->no_store)
		return CACHE_STORE_REQUEST_NO_STORE;
	/* Section 5.2.2.3: must-understand with a known status overrides
	   no-store. */
	if (cc->no_store && !cc->must_understand)
		return CACHE_STORE_NO_STORE;
	if (cc->private_)
		return CACHE_STORE_PRIVATE;
	if (http_find_header(req->headers, req->num_headers, "Authorization",
			     0) >= 0 &&
	    !cc->public_ && !cc->must_revalidate && cc->s_maxage < 0)
		return CACHE_STORE_AUTHORIZATION;
	if (vary_star(res))
		return CACHE_STORE_VARY_STAR;
	if (explicit_freshness(res, cc))
		return CACHE_STORE_OK;
	if (!cache_status_heuristic(res->status))
		return CACHE_STORE_NOT_CACHEABLE;
	if ((p->default_ttl <= 0 || !p->heuristic_without_lm) &&
	    !has_validator(res))
		return CACHE_STORE_USELESS;
	return CACHE_STORE_OK;
}

void cache_storable(const struct http_request *req,
		    const struct http_response *res,
		    const struct cache_policy *p,
		    struct cache_store_decision *d)
{
	struct cache_control cc, rq;

	memset(d, 0, sizeof(*d));
	cache_cc_parse_response(res->headers, res->num_headers, &cc);
	cache_cc_parse_request(req->headers, req->num_headers, &rq);
	d->reason = why_not(req, res, &cc, &rq, p);
	if (d->reason == CACHE_STORE_OK && !collect_drops(res, &cc, d))
		d->reason = CACHE_STORE_TOO_MANY;
	d->store = d->reason == CACHE_STORE_OK;
}

bool cache_store_drops(const struct cache_store_decision *d,
		       struct http_slice name)
{
	for (size_t i = 0; i < d->n_drop; i++)
		if (cache_slice_ieq(d->drop[i], name))
			return true;
	return false;
}

int cache_store_fields(const struct cache_store_decision *d,
		       const struct http_header *in, size_t n,
		       struct http_header *out, size_t cap)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		if (cache_store_drops(d, in[i].name))
			continue;
		if (k >= cap)
			return -ENOSPC;
		out[k++] = in[i];
	}
	return (int)k;
}
