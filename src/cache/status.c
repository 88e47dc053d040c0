/*
 * The Cache-Status field (RFC 9211): one member naming this cache, with
 * its parameters in the order the RFC lists them.
 */
#include "cache_int.h"

#include <errno.h>

static const char *fwd_name(enum cache_fwd f)
{
	static const char *const names[] = {
		[CACHE_FWD_NONE] = NULL,
		[CACHE_FWD_BYPASS] = "bypass",
		[CACHE_FWD_METHOD] = "method",
		[CACHE_FWD_URI_MISS] = "uri-miss",
		[CACHE_FWD_VARY_MISS] = "vary-miss",
		[CACHE_FWD_MISS] = "miss",
		[CACHE_FWD_REQUEST] = "request",
		[CACHE_FWD_STALE] = "stale",
		[CACHE_FWD_PARTIAL] = "partial",
	};

	return (size_t)f < UTIL_ARRAY_LEN(names) ? names[f] : NULL;
}

/* An sf-token starts with ALPHA or "*" and goes on with tchar, ":", "/". */
static bool is_sf_token(const char *s)
{
	if (!(((*s | 0x20) >= 'a' && (*s | 0x20) <= 'z') || *s == '*'))
		return false;
	for (; *s; s++)
		if (!cache_is_tchar((unsigned char)*s) && *s != ':' &&
		    *s != '/')
			return false;
	return true;
}

struct out {
	char *dst;
	size_t cap, len;
	int err;
};

static void add(struct out *o, const char *s, size_t n)
{
	if (o->err)
		return;
	if (o->len + n >= o->cap) {
		o->err = -ENOSPC;
		return;
	}
	memcpy(o->dst + o->len, s, n);
	o->len += n;
	o->dst[o->len] = '\0';
}

static void add_str(struct out *o, const char *s)
{
	add(o, s, strlen(s));
}

static void add_num(struct out *o, const char *param, int64_t v)
{
	char num[24];
	int n = util_format_i64(num, sizeof(num), v);

	add_str(o, "; ");
	add_str(o, param);
	add_str(o, "=");
	if (n > 0)
		add(o, num, (size_t)n);
}

/* detail= as an sf-token when it is one, else an sf-string. */
static void add_detail(struct out *o, const char *d)
{
	add_str(o, "; detail=");
	if (*d && is_sf_token(d)) {
		add_str(o, d);
		return;
	}
	add_str(o, "\"");
	for (; *d; d++) {
		if (*d == '"' || *d == '\\')
			add(o, "\\", 1);
		if (*d >= 0x20 && *d < 0x7f)
			add(o, d, 1);
	}
	add_str(o, "\"");
}

int cache_status_format(const char *cache_name, const struct cache_status *s,
			char *dst, size_t cap)
{
	struct out o = {dst, cap, 0, 0};
	const char *fwd = fwd_name(s->fwd);

	if (cap == 0)
		return -ENOSPC;
	dst[0] = '\0';
	add_str(&o, cache_name);
	if (s->hit)
		add_str(&o, "; hit");
	if (fwd) {
		add_str(&o, "; fwd=");
		add_str(&o, fwd);
	}
	if (s->fwd_status > 0)
		add_num(&o, "fwd-status", s->fwd_status);
	if (s->has_ttl)
		add_num(&o, "ttl", s->ttl);
	if (s->stored)
		add_str(&o, "; stored");
	if (s->collapsed)
		add_str(&o, "; collapsed");
	if (s->detail)
		add_detail(&o, s->detail);
	return o.err ? o.err : (int)o.len;
}
