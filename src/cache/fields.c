/*
 * Field helpers shared by the policy files: list elements across field
 * lines, delta-seconds, hop-by-hop names.
 */
#include "cache_int.h"

#include <errno.h>

bool cache_split_next(struct http_slice value, size_t *pos,
		      struct http_slice *elem)
{
	while (*pos < value.len) {
		size_t start = *pos, i = *pos;
		bool quoted = false;
		const char *s;
		size_t len;

		for (; i < value.len; i++) {
			char c = value.ptr[i];
			if (quoted && c == '\\' && i + 1 < value.len)
				i++;
			else if (c == '"')
				quoted = !quoted;
			else if (c == ',' && !quoted)
				break;
		}
		*pos = i < value.len ? i + 1 : i;
		s = value.ptr + start;
		len = i - start;
		util_trim(&s, &len);
		if (len > 0) {
			elem->ptr = s;
			elem->len = len;
			return true;
		}
	}
	return false;
}

void cache_list_init(struct cache_list *it, const struct http_header *h,
		     size_t n, const char *name)
{
	it->headers = h;
	it->n = n;
	it->name = name;
	it->line = -1;
	it->pos = 0;
}

bool cache_list_next(struct cache_list *it, struct http_slice *elem)
{
	for (;;) {
		if (it->line >= 0 &&
		    cache_split_next(it->headers[it->line].value, &it->pos,
				     elem))
			return true;
		it->line = http_find_header(it->headers, it->n, it->name,
					    (size_t)(it->line + 1));
		if (it->line < 0)
			return false;
		it->pos = 0;
	}
}

bool cache_field(const struct http_header *h, size_t n, const char *name,
		 struct http_slice *value)
{
	ssize_t i = http_find_header(h, n, name, 0);

	if (i < 0)
		return false;
	*value = h[i].value;
	return true;
}

int cache_delta_seconds(struct http_slice s, int64_t *out)
{
	uint64_t v;
	int rc;

	if (s.len == 0)
		return -EINVAL;
	for (size_t i = 0; i < s.len; i++)
		if (!cache_is_digit(s.ptr[i]))
			return -EINVAL;
	rc = util_parse_u64(s.ptr, s.len, (uint64_t)CACHE_DELTA_MAX, &v);
	/* Section 1.2.2: too large to represent is 2^31. */
	*out = rc == -ERANGE ? CACHE_DELTA_MAX : (int64_t)v;
	return 0;
}

bool cache_is_hop_by_hop_name(struct http_slice name)
{
	static const char *const fixed[] = {
		"Connection",
		"Keep-Alive",
		"Proxy-Connection",
		"TE",
		"Trailer",
		"Transfer-Encoding",
		"Upgrade",
		"Proxy-Authorization",
		"Proxy-Authenticate",
	};

	for (size_t i = 0; i < UTIL_ARRAY_LEN(fixed); i++)
		if (http_name_is(name, fixed[i]))
			return true;
	return false;
}

bool cache_entry_date(const struct cache_entry *e, const char *name,
		      int64_t now, int64_t *out)
{
	struct http_slice v;

	if (!cache_field(e->headers, e->num_headers, name, &v))
		return false;
	return cache_parse_http_date(v.ptr, v.len, now, out) == 0;
}
