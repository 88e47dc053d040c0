/* Pure helpers: see include/glassproxy/util.h for the contract. */
#include "glassproxy/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int util_copy(char *dst, size_t cap, const char *src, size_t len)
{
	if (cap == 0 || len >= cap) {
		if (cap > 0)
			dst[0] = '\0';
		return -ENOSPC;
	}
	memcpy(dst, src, len);
	dst[len] = '\0';
	return (int)len;
}

int util_format(char *dst, size_t cap, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(dst, cap, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= cap)
		return -ENOSPC;
	return n;
}

/*
 * Two digits per division, from a table of the hundred pairs (as Redis's
 * ull2string does), written from the end: every access line has half a
 * dozen numbers, the timestamp ten digits of them.
 */
static const char digit_pairs[] = "00010203040506070809"
				  "10111213141516171819"
				  "20212223242526272829"
				  "30313233343536373839"
				  "40414243444546474849"
				  "50515253545556575859"
				  "60616263646566676869"
				  "70717273747576777879"
				  "80818283848586878889"
				  "90919293949596979899";

int util_format_u64(char *dst, size_t cap, uint64_t v)
{
	char digits[20];
	size_t at = sizeof(digits), n;

	while (v >= 100) {
		const char *pair = digit_pairs + (v % 100) * 2;

		v /= 100;
		digits[--at] = pair[1];
		digits[--at] = pair[0];
	}
	if (v >= 10) {
		digits[--at] = digit_pairs[v * 2 + 1];
		digits[--at] = digit_pairs[v * 2];
	} else {
		digits[--at] = (char)('0' + v);
	}
	n = sizeof(digits) - at;
	if (n >= cap)
		return -ENOSPC;
	memcpy(dst, digits + at, n);
	dst[n] = '\0';
	return (int)n;
}

int util_format_i64(char *dst, size_t cap, int64_t v)
{
	int n;

	if (v >= 0)
		return util_format_u64(dst, cap, (uint64_t)v);
	if (cap < 2)
		return -ENOSPC;
	dst[0] = '-';
	n = util_format_u64(dst + 1, cap - 1, 0 - (uint64_t)v);
	return n < 0 ? n : n + 1;
}

int util_format_hex64(char *dst, size_t cap, uint64_t v)
{
	static const char hex[] = "0123456789abcdef";

	if (cap < 17)
		return -ENOSPC;
	for (int i = 15; i >= 0; i--, v >>= 4)
		dst[i] = hex[v & 0xf];
	dst[16] = '\0';
	return 16;
}

int util_parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		unsigned d;
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		d = (unsigned)(s[i] - '0');
		if (d > max || v > (max - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

bool util_ieq_bytes(const char *a, const char *b, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (util_lower(a[i]) != util_lower(b[i]))
			return false;
	return true;
}

void util_trim(const char **s, size_t *len)
{
	while (*len > 0 && (**s == ' ' || **s == '\t')) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
		(*len)--;
}

/*
 * Days since 1970-01-01 to a civil date, after Howard Hinnant's
 * days_from_civil inverse: exact for the proleptic Gregorian calendar, and
 * free of gmtime_r's reliance on global time-zone state.
 */
static void civil_from_days(int64_t z, int *year, unsigned *month,
			    unsigned *day)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;

	*day = doy - (153 * mp + 2) / 5 + 1;
	*month = mp < 10 ? mp + 3 : mp - 9;
	*year = (int)(yoe + era * 400 + (*month <= 2));
}

struct civil_time {
	int year;
	unsigned month, day, hour, minute, second, weekday;
};

static void civil_from_time(time_t t, struct civil_time *c)
{
	int64_t secs = (int64_t)t;
	int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
	int64_t rem = secs - days * 86400;

	civil_from_days(days, &c->year, &c->month, &c->day);
	c->hour = (unsigned)(rem / 3600);
	c->minute = (unsigned)(rem % 3600 / 60);
	c->second = (unsigned)(rem % 60);
	/* 1970-01-01 was a Thursday (weekday 4, Sunday = 0). */
	c->weekday = (unsigned)(((days % 7) + 11) % 7);
}

/* Two and four digits of v at p; the end of them. */
static char *put2(char *p, unsigned v)
{
	p[0] = (char)('0' + v / 10 % 10);
	p[1] = (char)('0' + v % 10);
	return p + 2;
}

static char *put4(char *p, unsigned v)
{
	return put2(put2(p, v / 100), v % 100);
}

/* "hh:mm:ss" of c at p; the end of it. */
static char *put_time_of_day(char *p, const struct civil_time *c)
{
	p = put2(p, c->hour);
	*p++ = ':';
	p = put2(p, c->minute);
	*p++ = ':';
	return put2(p, c->second);
}

/*
 * The two timestamps are written digit by digit: every access line and
 * every event line has one, and vsnprintf for them was a tenth of a
 * cache hit's instructions (issue 13).  Years outside 0..9999 (which no
 * clock of ours shows) go through util_format, as before.
 */
int util_format_time_iso(const struct timespec *t, char *dst, size_t cap)
{
	struct civil_time c;
	long ms = t->tv_nsec / 1000000;
	char *p = dst;

	civil_from_time(t->tv_sec, &c);
	if (c.year < 0 || c.year > 9999 || ms < 0 || ms > 999)
		return util_format(
			dst, cap, "%04d-%02u-%02uT%02u:%02u:%02u.%03ldZ",
			c.year, c.month, c.day, c.hour, c.minute, c.second, ms);
	if (cap < 25)
		return -ENOSPC;
	p = put4(p, (unsigned)c.year);
	*p++ = '-';
	p = put2(p, c.month);
	*p++ = '-';
	p = put2(p, c.day);
	*p++ = 'T';
	p = put_time_of_day(p, &c);
	*p++ = '.';
	*p++ = (char)('0' + ms / 100);
	p = put2(p, (unsigned)(ms % 100));
	*p++ = 'Z';
	*p = '\0';
	return (int)(p - dst);
}

int util_format_http_date(time_t t, char *dst, size_t cap)
{
	static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed",
					"Thu", "Fri", "Sat"};
	static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr",
					   "May", "Jun", "Jul", "Aug",
					   "Sep", "Oct", "Nov", "Dec"};
	struct civil_time c;
	char *p = dst;

	civil_from_time(t, &c);
	if (c.year < 0 || c.year > 9999)
		return util_format(dst, cap,
				   "%s, %02u %s %04d %02u:%02u:%02u GMT",
				   days[c.weekday], c.day, months[c.month - 1],
				   c.year, c.hour, c.minute, c.second);
	if (cap < 30)
		return -ENOSPC;
	memcpy(p, days[c.weekday], 3);
	p += 3;
	*p++ = ',';
	*p++ = ' ';
	p = put2(p, c.day);
	*p++ = ' ';
	memcpy(p, months[c.month - 1], 3);
	p += 3;
	*p++ = ' ';
	p = put4(p, (unsigned)c.year);
	*p++ = ' ';
	p = put_time_of_day(p, &c);
	memcpy(p, " GMT", 5);
	return (int)(p + 4 - dst);
}
