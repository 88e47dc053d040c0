/*
 * The cache key and its hash.
 *
 * The key is the target URI a response belongs to (RFC 9111 section 2),
 * the same for every method: "scheme://host[:port]path?query".  Only what
 * RFC 9110 section 4.2.3 makes equivalent by definition is normalised
 * (scheme and host case, the default port, an empty path).  The path and
 * query stay as sent: percent-decoding or dot-segment removal could merge
 * two URIs an origin tells apart ("%2F" and "/" are different paths to
 * most servers), and a missed equivalence only costs a miss.  Userinfo is
 * dropped: it never reaches the origin, so it cannot select a different
 * response.
 *
 * The file name is a 128-bit hash of the key in hex, fanned out as
 * "ab/cd/<hash>": no byte of the URL ever reaches a path, so there is no
 * traversal and no length limit to hit.  The full key is kept in the
 * entry and compared on every read, so a collision costs a miss, never a
 * wrong response.
 */
#include "cache_int.h"

#include <errno.h>

static uint16_t default_port(struct http_slice scheme)
{
	return http_name_is(scheme, "https") ? 443 : 80;
}

struct kbuf {
	char *dst;
	size_t cap, len;
	bool full;
};

static void put(struct kbuf *b, const char *s, size_t n, bool lower)
{
	for (size_t i = 0; i < n; i++) {
		if (b->len + 1 >= b->cap) {
			b->full = true;
			return;
		}
		b->dst[b->len++] = lower ? util_lower(s[i]) : s[i];
	}
}

/* "scheme://host[:port]" of url. */
static void put_origin(struct kbuf *b, const struct http_url *url)
{
	struct http_slice scheme = url->scheme;
	char port[8];
	int n;

	if (scheme.len == 0)
		scheme = cache_lit("http");
	put(b, scheme.ptr, scheme.len, true);
	put(b, "://", 3, false);
	if (url->host_is_ipv6)
		put(b, "[", 1, false);
	put(b, url->host.ptr, url->host.len, true);
	if (url->host_is_ipv6)
		put(b, "]", 1, false);
	if (url->port != default_port(scheme)) {
		n = util_format_u64(port, sizeof(port), url->port);
		put(b, ":", 1, false);
		put(b, port, n > 0 ? (size_t)n : 0, false);
	}
}

static int finish(struct kbuf *b)
{
	if (b->cap == 0)
		return -ENOSPC;
	b->dst[b->len < b->cap ? b->len : b->cap - 1] = '\0';
	return b->full ? -ENOSPC : (int)b->len;
}

int cache_key_build(const struct http_url *url, char *dst, size_t cap)
{
	struct kbuf b = {dst, cap, 0, false};

	if (url->host.len == 0)
		return -EINVAL;
	put_origin(&b, url);
	if (url->path.len == 0)
		put(&b, "/", 1, false);
	else
		put(&b, url->path.ptr, url->path.len, false);
	return finish(&b);
}

/* ---- hash ---- */

static uint64_t rotl(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

/* MurmurHash3's 64-bit finaliser: every input bit reaches every output. */
static uint64_t fmix(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ULL;
	k ^= k >> 33;
	return k;
}

static uint64_t load64(const unsigned char *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/*
 * Two 64-bit lanes fed 8 bytes at a time and cross-mixed, in the manner
 * of MurmurHash3 x64/128; the byte order is fixed (little-endian loads by
 * hand), so file names are the same on every machine.
 */
void cache_key_hash(const char *key, size_t len, struct cache_hash *out)
{
	const uint64_t c1 = 0x87c37b91114253d5ULL, c2 = 0x4cf5ad432745937fULL;
	const unsigned char *p = (const unsigned char *)key;
	uint64_t h1 = 0x9e3779b97f4a7c15ULL, h2 = 0x6a09e667f3bcc909ULL;

	for (size_t i = 0; i < len; i += 8) {
		uint64_t k = load64(p + i, len - i < 8 ? len - i : 8);
		h1 ^= rotl(k * c1, 31) * c2;
		h1 = rotl(h1, 27) + h2;
		h1 = h1 * 5 + 0x52dce729;
		h2 ^= rotl(k * c2, 33) * c1;
		h2 = rotl(h2, 31) + h1;
		h2 = h2 * 5 + 0x38495ab5;
	}
	h1 ^= (uint64_t)len;
	h2 ^= (uint64_t)len;
	h1 += h2;
	h2 += h1;
	h1 = fmix(h1);
	h2 = fmix(h2);
	h1 += h2;
	h2 += h1;
	out->hi = h1;
	out->lo = h2;
}

int cache_hash_hex(const struct cache_hash *h, char *dst, size_t cap)
{
	if (cap < 2 * 16 + 1)
		return -ENOSPC;
	util_format_hex64(dst, cap, h->hi);
	util_format_hex64(dst + 16, cap - 16, h->lo);
	return 2 * 16;
}

int cache_key_path(const struct cache_hash *h, char *dst, size_t cap)
{
	char hex[CACHE_HASH_HEX];

	cache_hash_hex(h, hex, sizeof(hex));
	return util_format(dst, cap, "%.2s/%.2s/%s", hex, hex + 2, hex);
}

/* ---- invalidation targets (RFC 9111 section 4.4) ---- */

/* Does the reference start with a scheme ("x+y:")? */
static bool has_scheme(struct http_slice r)
{
	size_t i = 0;

	if (r.len == 0 ||
	    !((r.ptr[0] | 0x20) >= 'a' && (r.ptr[0] | 0x20) <= 'z'))
		return false;
	while (i < r.len && r.ptr[i] != ':' && r.ptr[i] != '/' &&
	       r.ptr[i] != '?' && r.ptr[i] != '#')
		i++;
	return i < r.len && r.ptr[i] == ':';
}

static bool same_origin(const struct http_url *a, const struct http_url *b)
{
	struct http_slice sa = a->scheme.len ? a->scheme : cache_lit("http");
	struct http_slice sb = b->scheme.len ? b->scheme : cache_lit("http");

	return cache_slice_ieq(sa, sb) && cache_slice_ieq(a->host, b->host) &&
	       a->port == b->port;
}

/* An absolute URI, or "//authority/..." taking the target's scheme. */
static int absolute_key(const struct http_url *target, struct http_slice r,
			char *dst, size_t cap)
{
	char buf[4096];
	struct http_url url;
	struct kbuf b = {buf, sizeof(buf), 0, false};

	if (!has_scheme(r)) {
		struct http_slice s =
			target->scheme.len ? target->scheme : cache_lit("http");
		put(&b, s.ptr, s.len, true);
		put(&b, ":", 1, false);
	}
	put(&b, r.ptr, r.len, false);
	if (finish(&b) < 0 || http_parse_url(buf, b.len, &url) < 0)
		return -EINVAL;
	if (!same_origin(target, &url))
		return -EXDEV;
	return cache_key_build(&url, dst, cap);
}

/* Dot segments would need RFC 3986 5.2.4; such references are skipped. */
static bool has_dot_segment(struct http_slice r)
{
	for (size_t i = 0; i < r.len; i++) {
		bool start = i == 0 || r.ptr[i - 1] == '/';
		if (start && r.ptr[i] == '.' &&
		    (i + 1 == r.len || r.ptr[i + 1] == '/' ||
		     r.ptr[i + 1] == '.'))
			return true;
		if (r.ptr[i] == '?')
			break;
	}
	return false;
}

int cache_invalidation_key(const struct http_url *target, struct http_slice r,
			   char *dst, size_t cap)
{
	struct kbuf b = {dst, cap, 0, false};
	const char *hash = memchr(r.ptr, '#', r.len);
	size_t dir = target->path.len;
	const char *q;

	if (hash)
		r.len = (size_t)(hash - r.ptr);
	if (r.len == 0)
		return cache_key_build(target, dst, cap);
	if (has_scheme(r) || (r.len > 1 && r.ptr[0] == '/' && r.ptr[1] == '/'))
		return absolute_key(target, r, dst, cap);
	if (has_dot_segment(r))
		return -EINVAL;
	q = memchr(target->path.ptr, '?', target->path.len);
	if (q)
		dir = (size_t)(q - target->path.ptr);
	if (r.ptr[0] == '/')
		dir = 0;
	else if (r.ptr[0] != '?')
		while (dir > 0 && target->path.ptr[dir - 1] != '/')
			dir--;
	put_origin(&b, target);
	put(&b, target->path.ptr, dir, false);
	put(&b, r.ptr, r.len, false);
	return finish(&b);
}
