/*
 * Cache-Control (RFC 9111 section 5.2) and Pragma (section 5.4).
 *
 * Every Cache-Control field line is one list; directives are matched
 * case-insensitively, values may be tokens or quoted strings (section 5.2:
 * a recipient accepts both forms).  Anything that does not follow
 * `token [ "=" ( token / quoted-string ) ]` is ignored, so "max-age =5" and
 * "max-age='5'" do not give a lifetime, and a max-age inside another
 * directive's quoted value is never seen.
 */
#include "cache_int.h"

struct directive {
	struct http_slice name;
	struct http_slice value; /* without the quotes */
	bool has_value;
};

/* Split one list element into name and value; false when malformed. */
static bool split_directive(struct http_slice e, struct directive *d)
{
	size_t i = 0;

	while (i < e.len && cache_is_tchar((unsigned char)e.ptr[i]))
		i++;
	d->name.ptr = e.ptr;
	d->name.len = i;
	d->has_value = false;
	if (i == 0)
		return false;
	if (i == e.len)
		return true;
	if (e.ptr[i] != '=')
		return false;
	d->has_value = true;
	d->value.ptr = e.ptr + i + 1;
	d->value.len = e.len - i - 1;
	if (d->value.len > 0 && d->value.ptr[0] == '"') {
		if (d->value.len < 2 || d->value.ptr[d->value.len - 1] != '"')
			return false;
		d->value.ptr++;
		d->value.len -= 2;
		return true;
	}
	for (size_t k = 0; k < d->value.len; k++)
		if (!cache_is_tchar((unsigned char)d->value.ptr[k]))
			return false;
	return true;
}

static bool is(const struct directive *d, const char *lit)
{
	return http_name_is(d->name, lit);
}

/* -1 absent, -2 present but not a delta-seconds, else the value. */
static int64_t delta(const struct directive *d)
{
	int64_t v;

	if (!d->has_value || cache_delta_seconds(d->value, &v) < 0)
		return -2;
	return v;
}

static void keep_min(int64_t *slot, int64_t v)
{
	if (v >= 0 && (*slot < 0 || v < *slot))
		*slot = v;
}

/* A response lifetime given twice with different values is unusable. */
static void response_lifetime(int64_t *slot, bool *invalid, int64_t v)
{
	if (v < 0 || (*slot >= 0 && *slot != v))
		*invalid = true;
	if (*slot < 0)
		*slot = v < 0 ? 0 : v;
}

static void add_list(struct http_slice *lists, size_t *n, bool *all,
		     const struct directive *d)
{
	if (!d->has_value) {
		*all = true;
	} else if (*n < CACHE_CC_MAX_LISTS) {
		lists[(*n)++] = d->value;
	} else {
		*all = true; /* too many lists to track: the strict form */
	}
}

static bool response_flag(struct cache_control *cc, const struct directive *d)
{
	struct {
		const char *name;
		bool *flag;
	} flags[] = {
		{"no-store", &cc->no_store},
		{"public", &cc->public_},
		{"must-revalidate", &cc->must_revalidate},
		{"proxy-revalidate", &cc->proxy_revalidate},
		{"must-understand", &cc->must_understand},
		{"immutable", &cc->immutable},
		{"no-transform", &cc->no_transform},
	};

	for (size_t i = 0; i < UTIL_ARRAY_LEN(flags); i++) {
		if (is(d, flags[i].name)) {
			*flags[i].flag = true;
			return true;
		}
	}
	return false;
}

static void response_directive(struct cache_control *cc,
			       const struct directive *d)
{
	if (response_flag(cc, d))
		return;
	if (is(d, "max-age"))
		response_lifetime(&cc->max_age, &cc->max_age_invalid, delta(d));
	else if (is(d, "s-maxage"))
		response_lifetime(&cc->s_maxage, &cc->s_maxage_invalid,
				  delta(d));
	else if (is(d, "no-cache"))
		add_list(cc->no_cache_fields, &cc->n_no_cache_fields,
			 &cc->no_cache, d);
	else if (is(d, "private"))
		add_list(cc->private_fields, &cc->n_private_fields,
			 &cc->private_, d);
	else if (is(d, "stale-while-revalidate"))
		keep_min(&cc->stale_while_revalidate, delta(d));
	else if (is(d, "stale-if-error"))
		keep_min(&cc->stale_if_error, delta(d));
}

static void request_directive(struct cache_control *cc,
			      const struct directive *d)
{
	int64_t v = delta(d);

	if (is(d, "max-age"))
		keep_min(&cc->max_age, v == -2 ? 0 : v);
	else if (is(d, "max-stale") && !d->has_value)
		cc->max_stale_any = true;
	else if (is(d, "max-stale"))
		keep_min(&cc->max_stale, v);
	else if (is(d, "min-fresh") && v > cc->min_fresh)
		cc->min_fresh = v;
	else if (is(d, "no-cache"))
		cc->no_cache = true;
	else if (is(d, "no-store"))
		cc->no_store = true;
	else if (is(d, "no-transform"))
		cc->no_transform = true;
	else if (is(d, "only-if-cached"))
		cc->only_if_cached = true;
	else if (is(d, "stale-if-error"))
		keep_min(&cc->stale_if_error, v);
}

static void cc_reset(struct cache_control *cc)
{
	memset(cc, 0, sizeof(*cc));
	cc->max_age = -1;
	cc->s_maxage = -1;
	cc->max_stale = -1;
	cc->min_fresh = -1;
	cc->stale_while_revalidate = -1;
	cc->stale_if_error = -1;
}

/* Returns how many directives were seen. */
static size_t cc_parse(const struct http_header *h, size_t n,
		       struct cache_control *cc, bool response)
{
	struct cache_list it;
	struct http_slice e;
	struct directive d;
	size_t seen = 0;

	cc_reset(cc);
	cache_list_init(&it, h, n, "Cache-Control");
	while (cache_list_next(&it, &e)) {
		seen++;
		if (!split_directive(e, &d))
			continue;
		if (response)
			response_directive(cc, &d);
		else
			request_directive(cc, &d);
	}
	return seen;
}

void cache_cc_parse_response(const struct http_header *h, size_t n,
			     struct cache_control *cc)
{
	cc_parse(h, n, cc, true);
}

void cache_cc_parse_request(const struct http_header *h, size_t n,
			    struct cache_control *cc)
{
	struct cache_list it;
	struct http_slice e;

	cc_parse(h, n, cc, false);
	/* A value alongside "max-stale" is the stricter limit. */
	if (cc->max_stale >= 0)
		cc->max_stale_any = false;
	if (http_find_header(h, n, "Cache-Control", 0) >= 0)
		return;
	cache_list_init(&it, h, n, "Pragma");
	while (cache_list_next(&it, &e))
		if (http_name_is(e, "no-cache"))
			cc->no_cache = true;
}

bool cache_cc_lists(const struct http_slice *lists, size_t n,
		    struct http_slice name)
{
	for (size_t i = 0; i < n; i++) {
		size_t pos = 0;
		struct http_slice e;

		while (cache_split_next(lists[i], &pos, &e))
			if (cache_slice_ieq(e, name))
				return true;
	}
	return false;
}
