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
 * Parse an unsigned decimal number made only of digits (no sign, no
 * whitespace), at most max.  Returns 0, -EINVAL or -ERANGE.
 */
int util_parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out);

/* ASCII case-insensitive equality of two byte strings. */
bool util_ieq(const char *a, size_t alen, const char *b, size_t blen);

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
