/*
 * Freshening stored responses (RFC 9111 sections 3.2, 4.3.3 - 4.3.5) and
 * invalidation (section 4.4).
 */
#include "cache_int.h"

#include <errno.h>

/*
 * Fields a 304 or HEAD response does not update (section 3.2): the
 * framing of the stored body (Content-Length; Transfer-Encoding and the
 * other hop-by-hop fields never reach the store) and the fields that
 * describe the stored bytes themselves (Content-Encoding: relabelling the
 * coding of bytes we keep would corrupt what a client decodes;
 * Content-Range: we store whole bodies).
 */
static bool not_updated(struct http_slice name, const struct http_header *nv,
			size_t nnv)
{
	return http_name_is(name, "Content-Length") ||
	       http_name_is(name, "Content-Encoding") ||
	       http_name_is(name, "Content-Range") ||
	       http_is_hop_by_hop(name, nv, nnv);
}

/* Does fresh[] replace the stored lines named name? */
static bool replaced(struct http_slice name, const struct http_header *fresh,
		     size_t nf)
{
	if (not_updated(name, fresh, nf))
		return false;
	/* The new response's times replace the stored ones, with or
	   without the field (section 4.2.3 takes them from the newest). */
	if (http_name_is(name, "Age") || http_name_is(name, "Date"))
		return true;
	for (size_t i = 0; i < nf; i++)
		if (cache_slice_ieq(fresh[i].name, name))
			return true;
	return false;
}

int cache_merge_fields(const struct http_header *stored, size_t ns,
		       const struct http_header *fresh, size_t nf,
		       struct http_header *out, size_t cap)
{
	size_t k = 0;

	for (size_t i = 0; i < ns; i++) {
		if (replaced(stored[i].name, fresh, nf))
			continue;
		if (k >= cap)
			return -ENOSPC;
		out[k++] = stored[i];
	}
	for (size_t i = 0; i < nf; i++) {
		if (not_updated(fresh[i].name, fresh, nf))
			continue;
		if (k >= cap)
			return -ENOSPC;
		out[k++] = fresh[i];
	}
	return (int)k;
}

static bool strong_etag(struct http_slice v)
{
	return cache_etag_strong_eq(v, v);
}

bool cache_304_selects(const struct cache_entry *e,
		       const struct http_header *nv, size_t nnv,
		       bool only_candidate)
{
	struct http_slice netag, setag, nlm, slm;
	bool has_netag = cache_field(nv, nnv, "ETag", &netag);
	bool has_setag =
		cache_field(e->headers, e->num_headers, "ETag", &setag);
	bool has_nlm = cache_field(nv, nnv, "Last-Modified", &nlm);
	bool has_slm =
		cache_field(e->headers, e->num_headers, "Last-Modified", &slm);

	if (has_netag && strong_etag(netag))
		return has_setag && cache_etag_strong_eq(netag, setag);
	if (has_netag)
		return has_setag && cache_etag_weak_eq(netag, setag);
	if (has_nlm)
		return has_slm && nlm.len == slm.len &&
		       !memcmp(nlm.ptr, slm.ptr, nlm.len);
	/* No validator in the 304: it answers the one conditional request
	   we made, from the one entry it was built from. */
	return only_candidate;
}

bool cache_head_updates(const struct cache_entry *e,
			const struct http_header *head, size_t nhead,
			uint64_t stored_body_length)
{
	static const char *const validators[] = {"ETag", "Last-Modified"};
	struct http_slice hv, sv;
	uint64_t cl;

	for (size_t i = 0; i < UTIL_ARRAY_LEN(validators); i++) {
		if (!cache_field(head, nhead, validators[i], &hv))
			continue;
		if (!cache_field(e->headers, e->num_headers, validators[i],
				 &sv) ||
		    hv.len != sv.len || memcmp(hv.ptr, sv.ptr, hv.len))
			return false;
	}
	if (cache_field(head, nhead, "Content-Length", &hv) &&
	    (util_parse_u64(hv.ptr, hv.len, UINT64_MAX, &cl) < 0 ||
	     cl != stored_body_length))
		return false;
	return true;
}

bool cache_invalidates(struct http_slice method, int status)
{
	static const char *const safe[] = {"GET", "HEAD", "OPTIONS", "TRACE"};

	if (status < 200 || status >= 400)
		return false;
	for (size_t i = 0; i < UTIL_ARRAY_LEN(safe); i++)
		if (cache_method_is(method, safe[i]))
			return false;
	return true;
}
