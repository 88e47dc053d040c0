/*
 * cache internals shared by the files of src/cache/ and reachable by
 * tests/test_cache.c; not part of the public API.
 */
#ifndef GLASSPROXY_CACHE_INT_H
#define GLASSPROXY_CACHE_INT_H

#include "glassproxy/cache.h"
#include "glassproxy/util.h"

#include <string.h>

/* RFC 9110 section 5.6.2: the characters of a token. */
static inline bool cache_is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static inline bool cache_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static inline struct http_slice cache_lit(const char *s)
{
	struct http_slice sl = {s, strlen(s)};
	return sl;
}

static inline bool cache_slice_ieq(struct http_slice a, struct http_slice b)
{
	return util_ieq(a.ptr, a.len, b.ptr, b.len);
}

/* Methods are case-sensitive (RFC 9110 section 9.1): "get" is not GET. */
static inline bool cache_method_is(struct http_slice m, const char *lit)
{
	return m.len == strlen(lit) && memcmp(m.ptr, lit, m.len) == 0;
}

/*
 * Walks the elements of a comma-separated list field (RFC 9110 section
 * 5.6.1) over every field line of one name, as if the lines were joined
 * with commas.  Commas inside quoted strings do not split; elements come
 * back trimmed, empty ones skipped.
 */
struct cache_list {
	const struct http_header *headers;
	size_t n;
	const char *name;
	ssize_t line; /* current field line, -1 before the first */
	size_t pos;   /* offset in its value */
};

void cache_list_init(struct cache_list *it, const struct http_header *h,
		     size_t n, const char *name);
bool cache_list_next(struct cache_list *it, struct http_slice *elem);

/* Split one value (not a field) the same way: *pos is the cursor. */
bool cache_split_next(struct http_slice value, size_t *pos,
		      struct http_slice *elem);

/* The value of the first field line named name; false when absent. */
bool cache_field(const struct http_header *h, size_t n, const char *name,
		 struct http_slice *value);

/* Days since 1970-01-01 of a proleptic Gregorian date. */
int64_t cache_days_from_civil(int64_t y, unsigned m, unsigned d);

/*
 * A delta-seconds value (RFC 9111 section 1.2.2): digits only, clamped to
 * CACHE_DELTA_MAX.  Returns 0 or -EINVAL.
 */
int cache_delta_seconds(struct http_slice s, int64_t *out);

/* The fixed hop-by-hop fields (RFC 9110 section 7.6.1). */
bool cache_is_hop_by_hop_name(struct http_slice name);

/* The entry's Last-Modified / Date as times; false when absent/invalid. */
bool cache_entry_date(const struct cache_entry *e, const char *name,
		      int64_t now, int64_t *out);

#endif
