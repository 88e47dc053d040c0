/*
 * util: small pure helpers shared by every module — bounded strings,
 * number parsing, time formatting.
 *
 * Contract: no OS calls, no globals, no allocation unless a function says
 * so.  Functions that produce text take the destination size and never
 * write past it; they return the length they wrote (excluding the NUL) or a
 * negative errno value (-ENOSPC when the text does not fit).
 */
#ifndef GLASSPROXY_UTIL_H
#define GLASSPROXY_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define UTIL_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Copy src (len bytes, need not be NUL-terminated) into dst of size cap. */
int util_copy(char *dst, size_t cap, const char *src, size_t len);

/* Bounded formatted output into dst[cap]; -ENOSPC when truncated. */
int util_format(char *dst, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * v in decimal, and as 16 lower-case hex digits, into dst[cap] with a
 * NUL: the length, or -ENOSPC.  The request path writes a number or two
 * per request (Content-Length, a port, a status, the cache key's hash),
 * where vsnprintf's generality cost about a tenth of a miss's
 * instructions (bench/profile.py).
 */
int util_format_u64(char *dst, size_t cap, uint64_t v);
int util_format_hex64(char *dst, size_t cap, uint64_t v);
/* v in decimal with a '-' when negative, as util_format_u64. */
int util_format_i64(char *dst, size_t cap, int64_t v);

/*
 * Parse an unsigned decimal number made only of digits (no sign, no
 * whitespace), at most max.  Returns 0, -EINVAL or -ERANGE.
 */
int util_parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out);

/* ASCII case-insensitive equality of len bytes at a and b. */
bool util_ieq_bytes(const char *a, const char *b, size_t len);

/*
 * ASCII case-insensitive equality of two byte strings.  The length check
 * is inline: header-name lookups call this for every field they pass, and
 * most names differ in length.
 */
static inline bool util_ieq(const char *a, size_t alen, const char *b,
			    size_t blen)
{
	return alen == blen && util_ieq_bytes(a, b, alen);
}

/* ASCII lower-case of c (locale independent). */
static inline char util_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c + ('a' - 'A')) : c;
}

/*
 * Format a wall-clock time as "2026-11-29T04:22:24.123Z" (UTC, ISO 8601,
 * milliseconds) without touching the time zone database.
 */
int util_format_time_iso(const struct timespec *t, char *dst, size_t cap);

/* Format a wall-clock time as an HTTP date (RFC 9110 section 5.6.7). */
int util_format_http_date(time_t t, char *dst, size_t cap);

/* Trim ASCII spaces and tabs from both ends of [*s, *s + *len). */
void util_trim(const char **s, size_t *len);

#endif
