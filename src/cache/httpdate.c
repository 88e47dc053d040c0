/*
 * HTTP-date (RFC 9110 section 5.6.7): the three forms a recipient must
 * accept, parsed strictly, with civil-date arithmetic of our own (no
 * gmtime, timegm or strptime: they consult the process's time zone).
 */
#include "cache_int.h"

#include <errno.h>

static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
				   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
static const char days_short[7][4] = {"Mon", "Tue", "Wed", "Thu",
				      "Fri", "Sat", "Sun"};
static const char *const days_long[7] = {"Monday",   "Tuesday", "Wednesday",
					 "Thursday", "Friday",	"Saturday",
					 "Sunday"};

/* Howard Hinnant's days_from_civil: exact for the proleptic calendar. */
int64_t cache_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + (int64_t)doe - 719468;
}

/* The year of a time (the inverse, reduced to what RFC 850 needs). */
static int64_t year_of(int64_t t)
{
	int64_t z = (t >= 0 ? t / 86400 : (t - 86399) / 86400) + 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;

	return (int64_t)yoe + era * 400 + (mp >= 10);
}

static bool is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* A cursor over the text; every reader fails softly by clearing ok. */
struct scan {
	const char *s;
	size_t len, pos;
	bool ok;
};

static void expect_lit(struct scan *c, const char *lit)
{
	size_t n = strlen(lit);

	if (!c->ok || c->len - c->pos < n || memcmp(c->s + c->pos, lit, n))
		c->ok = false;
	else
		c->pos += n;
}

static unsigned digits(struct scan *c, size_t n)
{
	unsigned v = 0;

	if (!c->ok || c->len - c->pos < n) {
		c->ok = false;
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		char ch = c->s[c->pos + i];
		if (!cache_is_digit(ch)) {
			c->ok = false;
			return 0;
		}
		v = v * 10 + (unsigned)(ch - '0');
	}
	c->pos += n;
	return v;
}

/* Which of names[count] starts at the cursor (exactly, case-sensitive). */
static int name_of(struct scan *c, const char *const *names, size_t count)
{
	for (size_t i = 0; c->ok && i < count; i++) {
		size_t n = strlen(names[i]);
		if (c->len - c->pos >= n &&
		    !memcmp(c->s + c->pos, names[i], n)) {
			c->pos += n;
			return (int)i;
		}
	}
	c->ok = false;
	return -1;
}

/*
 * Which of count three-letter names starts at the cursor: its index, or -1
 * (and the scan failed).  A fixed-size compare each, no strlen: a cache
 * hit parses a stored date.
 */
static int three_of(struct scan *c, const char (*names)[4], int count)
{
	if (c->ok && c->len - c->pos >= 3)
		for (int i = 0; i < count; i++)
			if (memcmp(c->s + c->pos, names[i], 3) == 0) {
				c->pos += 3;
				return i;
			}
	c->ok = false;
	return -1;
}

/* 1-12; 0 (and the scan failed) for no month name. */
static unsigned month(struct scan *c)
{
	return (unsigned)(three_of(c, months, 12) + 1);
}

struct civil {
	int64_t year;
	unsigned mon, day, hour, min, sec;
};

static void time_of_day(struct scan *c, struct civil *v)
{
	v->hour = digits(c, 2);
	expect_lit(c, ":");
	v->min = digits(c, 2);
	expect_lit(c, ":");
	v->sec = digits(c, 2);
}

static int to_time(const struct scan *c, const struct civil *v, int64_t *out)
{
	static const unsigned mdays[12] = {31, 29, 31, 30, 31, 30,
					   31, 31, 30, 31, 30, 31};

	if (!c->ok || c->pos != c->len || v->mon < 1 || v->mon > 12 ||
	    v->day < 1 || v->day > mdays[v->mon - 1] ||
	    (v->mon == 2 && v->day == 29 && !is_leap(v->year)) ||
	    v->hour > 23 || v->min > 59 || v->sec > 60)
		return -EINVAL;
	*out = cache_days_from_civil(v->year, v->mon, v->day) * 86400 +
	       v->hour * 3600 + v->min * 60 + v->sec;
	return 0;
}

/* "Sun, 06 Nov 1994 08:49:37 GMT" */
static int imf_fixdate(struct scan *c, int64_t *out)
{
	struct civil v = {0};

	three_of(c, days_short, 7);
	expect_lit(c, ", ");
	v.day = digits(c, 2);
	expect_lit(c, " ");
	v.mon = month(c);
	expect_lit(c, " ");
	v.year = digits(c, 4);
	expect_lit(c, " ");
	time_of_day(c, &v);
	expect_lit(c, " GMT");
	return to_time(c, &v, out);
}

/* "Sunday, 06-Nov-94 08:49:37 GMT" */
static int rfc850_date(struct scan *c, int64_t now, int64_t *out)
{
	struct civil v = {0};
	int64_t this_year = year_of(now);

	name_of(c, days_long, 7);
	expect_lit(c, ", ");
	v.day = digits(c, 2);
	expect_lit(c, "-");
	v.mon = month(c);
	expect_lit(c, "-");
	v.year = this_year - this_year % 100 + digits(c, 2);
	/* More than 50 years ahead means the century before. */
	if (v.year > this_year + 50)
		v.year -= 100;
	expect_lit(c, " ");
	time_of_day(c, &v);
	expect_lit(c, " GMT");
	return to_time(c, &v, out);
}

/* "Sun Nov  6 08:49:37 1994" */
static int asctime_date(struct scan *c, int64_t *out)
{
	struct civil v = {0};

	three_of(c, days_short, 7);
	expect_lit(c, " ");
	v.mon = month(c);
	expect_lit(c, " ");
	if (c->ok && c->pos < c->len && c->s[c->pos] == ' ') {
		c->pos++;
		v.day = digits(c, 1);
	} else {
		v.day = digits(c, 2);
	}
	expect_lit(c, " ");
	time_of_day(c, &v);
	expect_lit(c, " ");
	v.year = digits(c, 4);
	return to_time(c, &v, out);
}

int cache_parse_http_date(const char *s, size_t len, int64_t now, int64_t *out)
{
	struct scan c = {s, len, 0, true};
	size_t comma = 0;

	while (comma < len && s[comma] != ',' && s[comma] != ' ')
		comma++;
	if (comma == len)
		return -EINVAL;
	/* The day name's length and what follows it tell the forms apart. */
	if (s[comma] == ' ')
		return asctime_date(&c, out);
	if (comma == 3)
		return imf_fixdate(&c, out);
	return rfc850_date(&c, now, out);
}

int cache_format_http_date(int64_t t, char *dst, size_t cap)
{
	return util_format_http_date((time_t)t, dst, cap);
}
