/*
 * May a stored response answer this request?  RFC 9111 sections 4.2.4
 * (serving stale), 5.2.1 (request directives) and 5.2.2 (response
 * directives), RFC 5861 (stale-while-revalidate, stale-if-error) and
 * RFC 8246 (immutable).
 */
#include "cache_int.h"

const char *cache_why_str(enum cache_why why)
{
	static const char *const names[] = {
		[CACHE_WHY_FRESH] = "fresh",
		[CACHE_WHY_STALE] = "stale",
		[CACHE_WHY_MAX_STALE] = "max-stale",
		[CACHE_WHY_SWR] = "stale-while-revalidate",
		[CACHE_WHY_RESPONSE_NO_CACHE] = "response-no-cache",
		[CACHE_WHY_REQUEST_NO_CACHE] = "request-no-cache",
		[CACHE_WHY_REQUEST_NO_STORE] = "request-no-store",
		[CACHE_WHY_REQUEST_MAX_AGE] = "request-max-age",
		[CACHE_WHY_REQUEST_MIN_FRESH] = "request-min-fresh",
		[CACHE_WHY_MUST_REVALIDATE] = "must-revalidate",
		[CACHE_WHY_ONLY_IF_CACHED] = "only-if-cached",
	};

	if ((size_t)why >= UTIL_ARRAY_LEN(names) || !names[why])
		return "unknown";
	return names[why];
}

static bool has_validator(const struct cache_entry *e)
{
	return http_find_header(e->headers, e->num_headers, "ETag", 0) >= 0 ||
	       http_find_header(e->headers, e->num_headers, "Last-Modified",
				0) >= 0;
}

/* Going upstream: conditional when the entry has a validator. */
static void upstream(const struct cache_entry *e, struct cache_decision *d,
		     enum cache_why why)
{
	d->action = has_validator(e) ? CACHE_REVALIDATE : CACHE_FORWARD;
	d->why = why;
}

/*
 * The request's own limits (section 5.2.1): max-age bounds the age,
 * min-fresh asks for freshness left.  RFC 8246: a fresh immutable response
 * ignores the max-age of a conditional reload, not a forced no-cache one.
 */
static bool request_refuses(const struct cache_control *req,
			    const struct cache_decision *d, enum cache_why *why)
{
	const struct cache_freshness *f = &d->f;
	bool immutable = f->cc.immutable && f->fresh;

	if (req->no_cache) {
		*why = CACHE_WHY_REQUEST_NO_CACHE;
		return true;
	}
	if (req->max_age >= 0 && f->current_age > req->max_age && !immutable) {
		*why = CACHE_WHY_REQUEST_MAX_AGE;
		return true;
	}
	if (req->min_fresh >= 0 && d->ttl < req->min_fresh) {
		*why = CACHE_WHY_REQUEST_MIN_FRESH;
		return true;
	}
	return false;
}

/* A stale response that may be served anyway, and why. */
static bool stale_allowed(const struct cache_control *req,
			  const struct cache_decision *d, enum cache_action *a,
			  enum cache_why *why)
{
	int64_t staleness = -d->ttl;

	if (d->stale_forbidden)
		return false;
	if (req->max_stale_any ||
	    (req->max_stale >= 0 && staleness <= req->max_stale)) {
		*a = CACHE_SERVE_STALE;
		*why = CACHE_WHY_MAX_STALE;
		return true;
	}
	if (d->f.cc.stale_while_revalidate >= 0 &&
	    staleness <= d->f.cc.stale_while_revalidate) {
		*a = CACHE_SERVE_STALE_REVALIDATE;
		*why = CACHE_WHY_SWR;
		return true;
	}
	return false;
}

static void decide_use(const struct cache_control *req,
		       const struct cache_entry *e, struct cache_decision *d)
{
	const struct cache_control *rc = &d->f.cc;
	enum cache_why why;

	/* Sections 5.2.2.2, 5.2.2.8, 5.2.2.10: never stale; no-cache never
	   without revalidation. */
	d->stale_forbidden = rc->must_revalidate || rc->proxy_revalidate ||
			     rc->s_maxage >= 0 || rc->no_cache;
	if (req->no_store) {
		d->action = CACHE_FORWARD;
		d->why = CACHE_WHY_REQUEST_NO_STORE;
	} else if (rc->no_cache) {
		upstream(e, d, CACHE_WHY_RESPONSE_NO_CACHE);
	} else if (request_refuses(req, d, &why)) {
		upstream(e, d, why);
	} else if (d->f.fresh) {
		d->action = CACHE_SERVE_FRESH;
		d->why = CACHE_WHY_FRESH;
	} else if (!stale_allowed(req, d, &d->action, &d->why)) {
		upstream(e, d,
			 d->stale_forbidden ? CACHE_WHY_MUST_REVALIDATE
					    : CACHE_WHY_STALE);
	}
}

void cache_decide(const struct cache_control *req, const struct cache_entry *e,
		  const struct cache_policy *p, int64_t now,
		  struct cache_decision *out)
{
	memset(out, 0, sizeof(*out));
	cache_freshness(e, p, now, &out->f);
	out->ttl = out->f.lifetime - out->f.current_age;
	decide_use(req, e, out);
	/* Section 5.2.1.7: what would need the origin is a 504 instead. */
	if (req->only_if_cached &&
	    (out->action == CACHE_REVALIDATE || out->action == CACHE_FORWARD)) {
		out->action = CACHE_GATEWAY_TIMEOUT;
		out->why = CACHE_WHY_ONLY_IF_CACHED;
	}
}

enum cache_action cache_decide_miss(const struct cache_control *req)
{
	return req->only_if_cached ? CACHE_GATEWAY_TIMEOUT : CACHE_FORWARD;
}

static bool error_status(int status)
{
	return status == 500 || status == 502 || status == 503 || status == 504;
}

bool cache_stale_if_error(const struct cache_control *req,
			  const struct cache_decision *d,
			  const struct cache_policy *p, int upstream_status)
{
	int64_t staleness = -d->ttl, window = d->f.cc.stale_if_error;

	if (d->stale_forbidden)
		return false;
	if (upstream_status != 0 && !error_status(upstream_status))
		return false;
	/* RFC 5861 section 4: the request may widen the window too. */
	if (req->stale_if_error > window)
		window = req->stale_if_error;
	if (upstream_status == 0 && p->max_stale_on_failure > window)
		window = p->max_stale_on_failure;
	return window >= 0 && staleness <= window;
}
