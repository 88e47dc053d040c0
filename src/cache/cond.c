/*
 * Conditional requests against a stored response (RFC 9110 section 13,
 * RFC 9111 section 4.3.2), entity-tag comparison (RFC 9110 8.8.3.2), the
 * validators for revalidation (RFC 9111 4.3.1), and single byte ranges
 * (RFC 9110 section 14).
 */
#include "cache_int.h"

#include <errno.h>
#include <inttypes.h>

/* Split an entity-tag into weakness and opaque-tag; false if malformed. */
static bool etag_parse(struct http_slice t, bool *weak, struct http_slice *op)
{
	*weak = t.len >= 2 && t.ptr[0] == 'W' && t.ptr[1] == '/';
	if (*weak) {
		t.ptr += 2;
		t.len -= 2;
	}
	if (t.len < 2 || t.ptr[0] != '"' || t.ptr[t.len - 1] != '"')
		return false;
	for (size_t i = 1; i + 1 < t.len; i++) {
		unsigned char c = (unsigned char)t.ptr[i];
		/* etagc: %x21 / %x23-7E / obs-text */
		if (c == '"' || c < 0x21 || c == 0x7f)
			return false;
	}
	*op = t;
	return true;
}

bool cache_etag_strong_eq(struct http_slice a, struct http_slice b)
{
	struct http_slice oa, ob;
	bool wa, wb;

	return etag_parse(a, &wa, &oa) && etag_parse(b, &wb, &ob) && !wa &&
	       !wb && oa.len == ob.len && !memcmp(oa.ptr, ob.ptr, oa.len);
}

bool cache_etag_weak_eq(struct http_slice a, struct http_slice b)
{
	struct http_slice oa, ob;
	bool wa, wb;

	return etag_parse(a, &wa, &oa) && etag_parse(b, &wb, &ob) &&
	       oa.len == ob.len && !memcmp(oa.ptr, ob.ptr, oa.len);
}

/* Does the If-Match / If-None-Match list hold "*" or a matching tag? */
static bool list_matches(const struct http_header *req, size_t nreq,
			 const char *field, const struct http_slice *etag,
			 bool strong)
{
	struct cache_list it;
	struct http_slice e;

	cache_list_init(&it, req, nreq, field);
	while (cache_list_next(&it, &e)) {
		if (e.len == 1 && e.ptr[0] == '*')
			return true;
		if (etag && (strong ? cache_etag_strong_eq(e, *etag)
				    : cache_etag_weak_eq(e, *etag)))
			return true;
	}
	return false;
}

/* A request date field with one valid HTTP-date; false otherwise. */
static bool request_date(const struct http_header *req, size_t nreq,
			 const char *field, int64_t now, int64_t *out)
{
	struct http_slice v;

	if (!cache_field(req, nreq, field, &v))
		return false;
	return cache_parse_http_date(v.ptr, v.len, now, out) == 0;
}

/* Section 13.2.2 steps 1 and 2: false sends the request upstream. */
static bool origin_preconditions_hold(const struct http_header *req,
				      size_t nreq, const struct cache_entry *e,
				      const struct http_slice *etag,
				      int64_t now)
{
	int64_t ius, lm;

	if (http_find_header(req, nreq, "If-Match", 0) >= 0)
		return list_matches(req, nreq, "If-Match", etag, true);
	if (request_date(req, nreq, "If-Unmodified-Since", now, &ius))
		return cache_entry_date(e, "Last-Modified", now, &lm) &&
		       lm <= ius;
	return true;
}

/* Last-Modified, else Date, else the response time (section 4.3.2). */
static int64_t modified_at(const struct cache_entry *e, int64_t now)
{
	int64_t t;

	if (cache_entry_date(e, "Last-Modified", now, &t) ||
	    cache_entry_date(e, "Date", now, &t))
		return t;
	return e->response_time;
}

enum cache_cond cache_conditional(struct http_slice method,
				  const struct http_header *req, size_t nreq,
				  const struct cache_entry *e, int64_t now)
{
	struct http_slice etag;
	bool has_etag = cache_field(e->headers, e->num_headers, "ETag", &etag);
	const struct http_slice *tag = has_etag ? &etag : NULL;
	int64_t ims;

	if (!cache_method_is(method, "GET") && !cache_method_is(method, "HEAD"))
		return CACHE_COND_PASS;
	if (!origin_preconditions_hold(req, nreq, e, tag, now))
		return CACHE_COND_PASS;
	if (http_find_header(req, nreq, "If-None-Match", 0) >= 0)
		return list_matches(req, nreq, "If-None-Match", tag, false)
			       ? CACHE_COND_NOT_MODIFIED
			       : CACHE_COND_FULL;
	if (request_date(req, nreq, "If-Modified-Since", now, &ims) &&
	    modified_at(e, now) <= ims)
		return CACHE_COND_NOT_MODIFIED;
	return CACHE_COND_FULL;
}

bool cache_if_range(const struct http_header *req, size_t nreq,
		    const struct cache_entry *e, int64_t now)
{
	struct http_slice v, etag;
	int64_t when, lm, date;

	if (!cache_field(req, nreq, "If-Range", &v))
		return true;
	if (v.len > 0 && (v.ptr[0] == '"' ||
			  (v.len > 1 && v.ptr[0] == 'W' && v.ptr[1] == '/')))
		return cache_field(e->headers, e->num_headers, "ETag", &etag) &&
		       cache_etag_strong_eq(v, etag);
	/* RFC 9110 8.8.2.2: a cache's Last-Modified is strong when Date is
	   at least 60 seconds later. */
	return cache_parse_http_date(v.ptr, v.len, now, &when) == 0 &&
	       cache_entry_date(e, "Last-Modified", now, &lm) &&
	       cache_entry_date(e, "Date", now, &date) && lm == when &&
	       date - lm >= 60;
}

bool cache_304_keeps_field(struct http_slice name)
{
	static const char *const keep[] = {"Cache-Control", "Content-Location",
					   "Date",	    "ETag",
					   "Expires",	    "Vary"};

	for (size_t i = 0; i < UTIL_ARRAY_LEN(keep); i++)
		if (http_name_is(name, keep[i]))
			return true;
	return false;
}

size_t cache_validators(const struct cache_entry *e, struct http_header *out)
{
	size_t n = 0;

	if (cache_field(e->headers, e->num_headers, "ETag", &out[n].value))
		out[n++].name = cache_lit("If-None-Match");
	if (cache_field(e->headers, e->num_headers, "Last-Modified",
			&out[n].value))
		out[n++].name = cache_lit("If-Modified-Since");
	return n;
}

int cache_join_etags(const struct http_slice *etags, size_t n, char *dst,
		     size_t cap)
{
	size_t len = 0;

	if (cap == 0)
		return -ENOSPC;
	dst[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		bool dup = false;
		size_t need = etags[i].len + (len ? 2 : 0);

		for (size_t j = 0; j < i && !dup; j++)
			dup = etags[j].len == etags[i].len &&
			      !memcmp(etags[j].ptr, etags[i].ptr, etags[i].len);
		if (dup || !cache_etag_weak_eq(etags[i], etags[i]))
			continue;
		if (len + need >= cap)
			return -ENOSPC;
		if (len) {
			memcpy(dst + len, ", ", 2);
			len += 2;
		}
		memcpy(dst + len, etags[i].ptr, etags[i].len);
		len += etags[i].len;
		dst[len] = '\0';
	}
	return (int)len;
}

/* Digits to a number; too many digits saturate (only order matters). */
static bool range_num(struct http_slice s, uint64_t *out)
{
	int rc = util_parse_u64(s.ptr, s.len, UINT64_MAX, out);

	if (rc == -ERANGE)
		*out = UINT64_MAX;
	return rc == 0 || rc == -ERANGE;
}

static enum cache_range range_spec(struct http_slice spec, uint64_t length,
				   uint64_t *start, uint64_t *count)
{
	const char *dash = memchr(spec.ptr, '-', spec.len);
	struct http_slice a, b;
	uint64_t first, last;

	if (!dash)
		return CACHE_RANGE_IGNORE;
	a = (struct http_slice){spec.ptr, (size_t)(dash - spec.ptr)};
	b = (struct http_slice){dash + 1, spec.len - a.len - 1};
	if (a.len == 0) { /* suffix-range "-n" */
		if (!range_num(b, &last))
			return CACHE_RANGE_IGNORE;
		if (last == 0 || length == 0)
			return CACHE_RANGE_UNSATISFIABLE;
		*count = last < length ? last : length;
		*start = length - *count;
		return CACHE_RANGE_OK;
	}
	if (!range_num(a, &first) || (b.len > 0 && !range_num(b, &last)))
		return CACHE_RANGE_IGNORE;
	if (b.len == 0)
		last = UINT64_MAX;
	if (last < first)
		return CACHE_RANGE_IGNORE; /* invalid, so the field is ignored */
	if (first >= length)
		return CACHE_RANGE_UNSATISFIABLE;
	*start = first;
	*count = (last < length - 1 ? last : length - 1) - first + 1;
	return CACHE_RANGE_OK;
}

enum cache_range cache_range(const struct http_header *req, size_t nreq,
			     uint64_t length, uint64_t *start, uint64_t *count)
{
	ssize_t i = http_find_header(req, nreq, "Range", 0);
	struct http_slice v, spec, more;
	size_t pos;

	if (i < 0)
		return CACHE_RANGE_NONE;
	if (http_find_header(req, nreq, "Range", (size_t)i + 1) >= 0)
		return CACHE_RANGE_IGNORE;
	v = req[i].value;
	if (v.len < 6 || !util_ieq(v.ptr, 6, "bytes=", 6))
		return CACHE_RANGE_IGNORE;
	v.ptr += 6;
	v.len -= 6;
	pos = 0;
	if (!cache_split_next(v, &pos, &spec) ||
	    cache_split_next(v, &pos, &more))
		return CACHE_RANGE_IGNORE; /* none, or several ranges */
	return range_spec(spec, length, start, count);
}

int cache_format_content_range(uint64_t start, uint64_t count, uint64_t length,
			       char *dst, size_t cap)
{
	if (count == 0)
		return util_format(dst, cap, "bytes */%" PRIu64, length);
	return util_format(dst, cap, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64,
			   start, start + count - 1, length);
}
