/*
 * Unit tests of the cache policy and key: pure functions, so every test is
 * a table of plain values and times (no disk, no sockets, no clock).
 *
 * Header sets are written as text, one "Name: value" per line, where
 * "{N}" stands for the IMF-fixdate of BASE + N seconds; rows come from
 * the RFCs' rules and examples and from the checks of the HTTP cache
 * conformance suite (cache-tests.fyi), named after them where they match.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cache/cache_int.h"
#include "glassproxy/cache.h"
#include "glassproxy/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The tables below leave trailing fields zero (false, 0) on purpose. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

/* 2001-09-09T01:46:40Z */
#define BASE ((int64_t)1000000000)

static unsigned rows_checked;

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond))                                                   \
			fail_msg(__VA_ARGS__);                                 \
	} while (0)

/* ---- header sets from text ---- */

#define MSG_TEXT 4096
#define MSG_MAX	 32

struct msg {
	char text[MSG_TEXT];
	struct http_header h[MSG_MAX];
	size_t n;
};

/* Expand "{N}" into the HTTP-date of BASE + N. */
static void expand(const char *tmpl, char *out, size_t cap)
{
	size_t k = 0;

	while (*tmpl) {
		if (*tmpl == '{') {
			char *end;
			long off = strtol(tmpl + 1, &end, 10);
			assert_true(*end == '}');
			assert_true(cap - k > CACHE_DATE_LEN);
			k += (size_t)cache_format_http_date(BASE + off, out + k,
							    cap - k);
			tmpl = end + 1;
			continue;
		}
		assert_true(k + 1 < cap);
		out[k++] = *tmpl++;
	}
	out[k] = '\0';
}

static void build(struct msg *m, const char *tmpl)
{
	char *p = m->text;

	expand(tmpl ? tmpl : "", m->text, sizeof(m->text));
	m->n = 0;
	while (*p) {
		char *nl = strchr(p, '\n');
		char *colon = strchr(p, ':');
		size_t line = nl ? (size_t)(nl - p) : strlen(p);
		const char *v;
		size_t vlen;

		assert_non_null(colon);
		assert_true((size_t)(colon - p) < line);
		assert_true(m->n < MSG_MAX);
		v = colon + 1;
		vlen = line - (size_t)(colon - p) - 1;
		util_trim(&v, &vlen);
		m->h[m->n].name = (struct http_slice){p, (size_t)(colon - p)};
		m->h[m->n].value = (struct http_slice){v, vlen};
		m->n++;
		p += line + (nl ? 1 : 0);
	}
}

static struct http_slice sl(const char *s)
{
	return (struct http_slice){s, strlen(s)};
}

static bool slice_is(struct http_slice s, const char *lit)
{
	return s.len == strlen(lit) && memcmp(s.ptr, lit, s.len) == 0;
}

static struct cache_entry entry(const struct msg *m, int status,
				int64_t req_time, int64_t resp_time)
{
	struct cache_entry e = {m->h, m->n, status, BASE + req_time,
				BASE + resp_time};
	return e;
}

/* ---- HTTP-date ---- */

struct date_row {
	const char *text;
	int64_t want; /* -1: invalid */
};

static const struct date_row http_date_parse_rows[] = {
	{"Sun, 06 Nov 1994 08:49:37 GMT", 784111777},
	{"Sunday, 06-Nov-94 08:49:37 GMT", 784111777},
	{"Sun Nov  6 08:49:37 1994", 784111777},
	{"Wed Nov 16 08:49:37 1994", 784111777 + 10 * 86400},
	{"Thu, 01 Jan 1970 00:00:00 GMT", 0},
	{"Wed, 31 Dec 1969 23:59:59 GMT", -1},
	{"Tue, 29 Feb 2000 12:00:00 GMT", 951825600},
	{"Sat, 01 Jan 2000 00:00:00 GMT", 946684800},
	{"Fri, 31 Dec 9999 23:59:59 GMT", 253402300799},
	{"Thu, 18 Aug 2050 02:01:18 GMT", 2544400878},
	{"Sun, 06 Nov 1994 08:49:60 GMT", 784111777 + 23},
	/* invalid: each a check of the cache-tests expires-parse set */
	{"THU, 18 Aug 2050 02:01:18 GMT", -2},
	{"Thu, 18 AUG 2050 02:01:18 GMT", -2},
	{"Thu, 18 Aug 2050 02:01:18 gMT", -2},
	{"Thu, 18 Aug 2050 02:01:18 UTC", -2},
	{"Thu, 18 Aug 50 02:01:18 GMT", -2},
	{"Thu 18 Aug 2050 02:01:18 GMT", -2},
	{"Thu, 18  Aug  2050 02:01:18 GMT", -2},
	{"Thu, 18-Aug-2050 02:01:18 GMT", -2},
	{"Thu, 18 Aug 2050 02.01.18 GMT", -2},
	{"Thu, 18 Aug 2050 2:01:18 GMT", -2},
	{"Thu, 8 Aug 2050 02:01:18 GMT", -2},
	{"Thu, 30 Feb 2050 02:01:18 GMT", -2},
	{"Tue, 29 Feb 2100 12:00:00 GMT", -2},
	{"Thu, 18 Aug 2050 24:00:00 GMT", -2},
	{"Thu, 18 Aug 2050 23:60:00 GMT", -2},
	{"Thu, 18 Aug 2050 02:01:18 GMT ", -2},
	{"Thu, 18 Aug 2050 02:01:18", -2},
	{"Thu, 00 Aug 2050 02:01:18 GMT", -2},
	{"Xyz, 18 Aug 2050 02:01:18 GMT", -2},
	{"Thu, 18 Foo 2050 02:01:18 GMT", -2},
	{"0", -2},
	{"", -2},
	{"-1", -2},
	{"Sunday, 06-Nov-1994 08:49:37 GMT", -2},
	{"Sun Nov 6 08:49:37 1994", -2},
	{"Sun Nov  6 08:49:37 94", -2},
};

static void test_http_date_parse(void **state)
{
	for (size_t i = 0; i < UTIL_ARRAY_LEN(http_date_parse_rows); i++) {
		int64_t t = 12345;
		int rc = cache_parse_http_date(
			http_date_parse_rows[i].text,
			strlen(http_date_parse_rows[i].text), BASE, &t);
		if (http_date_parse_rows[i].want == -2)
			CHECK(rc == -EINVAL, "accepted \"%s\"",
			      http_date_parse_rows[i].text);
		else
			CHECK(rc == 0 && t == http_date_parse_rows[i].want,
			      "\"%s\": rc %d t %lld",
			      http_date_parse_rows[i].text, rc, (long long)t);
		rows_checked++;
	}
}

static const struct {
	const char *text;
	int64_t year_start; /* 1 Jan of the expected year */
} http_date_rfc850_years_rows[] = {
	{"Wednesday, 01-Jan-76 00:00:00 GMT", 3345062400}, /* 2076 */
	{"Saturday, 01-Jan-77 00:00:00 GMT", 220924800},   /* 1977 */
	{"Saturday, 01-Jan-00 00:00:00 GMT", 946684800},   /* 2000 */
	{"Friday, 01-Jan-99 00:00:00 GMT", 915148800},	   /* 1999 */
};

static void test_http_date_rfc850_years(void **state)
{
	int64_t now = 1796083200; /* 2026-12-01 */

	for (size_t i = 0; i < UTIL_ARRAY_LEN(http_date_rfc850_years_rows);
	     i++) {
		int64_t t = 0;
		int rc = cache_parse_http_date(
			http_date_rfc850_years_rows[i].text,
			strlen(http_date_rfc850_years_rows[i].text), now, &t);
		CHECK(rc == 0 && t == http_date_rfc850_years_rows[i].year_start,
		      "%s: %d %lld", http_date_rfc850_years_rows[i].text, rc,
		      (long long)t);
		rows_checked++;
	}
}

static void test_http_date_format_roundtrip(void **state)
{
	char buf[CACHE_DATE_LEN];
	int64_t back;

	assert_int_equal(cache_format_http_date(784111777, buf, sizeof(buf)),
			 29);
	assert_string_equal(buf, "Sun, 06 Nov 1994 08:49:37 GMT");
	assert_int_equal(cache_format_http_date(0, buf, 10), -ENOSPC);
	/* Every 7 hours and 13 seconds over two centuries round-trips. */
	for (int64_t t = -2208988800; t < 4102444800; t += 25213) {
		assert_true(cache_format_http_date(t, buf, sizeof(buf)) == 29);
		assert_int_equal(cache_parse_http_date(buf, 29, t, &back), 0);
		if (back != t)
			fail_msg("%s: %lld != %lld", buf, (long long)back,
				 (long long)t);
	}
	assert_int_equal(cache_days_from_civil(1970, 1, 1), 0);
	assert_int_equal(cache_days_from_civil(2000, 3, 1), 11017);
}

/* ---- Cache-Control ---- */

static void test_cc_response_directives(void **state)
{
	struct cache_control cc;
	struct msg m;

	build(&m, "Cache-Control: Public, MUST-revalidate, proxy-revalidate\n"
		  "Cache-Control: no-store , must-understand,immutable\n"
		  "Cache-Control: no-transform, stale-while-revalidate=30, "
		  "stale-if-error=\"60\", foo=\"bar, max-age=5\"");
	cache_cc_parse_response(m.h, m.n, &cc);
	assert_true(cc.public_ && cc.must_revalidate && cc.proxy_revalidate);
	assert_true(cc.no_store && cc.must_understand && cc.immutable);
	assert_true(cc.no_transform);
	assert_int_equal(cc.stale_while_revalidate, 30);
	assert_int_equal(cc.stale_if_error, 60);
	assert_int_equal(cc.max_age, -1);
	assert_int_equal(cc.s_maxage, -1);
	assert_false(cc.no_cache || cc.private_ || cc.max_age_invalid);
}

static void test_cc_field_lists(void **state)
{
	struct cache_control cc;
	struct msg m;

	build(&m, "Cache-Control: no-cache=\"Set-Cookie, X-A\", "
		  "private=\"X-B\"\nCache-Control: no-cache=\"x-c\"");
	cache_cc_parse_response(m.h, m.n, &cc);
	assert_false(cc.no_cache);
	assert_false(cc.private_);
	assert_int_equal(cc.n_no_cache_fields, 2);
	assert_int_equal(cc.n_private_fields, 1);
	assert_true(cache_cc_lists(cc.no_cache_fields, cc.n_no_cache_fields,
				   sl("set-cookie")));
	assert_true(cache_cc_lists(cc.no_cache_fields, cc.n_no_cache_fields,
				   sl("X-C")));
	assert_false(cache_cc_lists(cc.no_cache_fields, cc.n_no_cache_fields,
				    sl("X-B")));
	assert_true(cache_cc_lists(cc.private_fields, cc.n_private_fields,
				   sl("x-b")));

	/* An unqualified occurrence anywhere is the strict form. */
	build(&m, "Cache-Control: no-cache=\"a\", no-cache, private=\"b\"\n"
		  "Cache-Control: private");
	cache_cc_parse_response(m.h, m.n, &cc);
	assert_true(cc.no_cache);
	assert_true(cc.private_);

	/* More lists than tracked: treated as unqualified. */
	build(&m, "Cache-Control: no-cache=\"a\", no-cache=\"b\", "
		  "no-cache=\"c\", no-cache=\"d\", no-cache=\"e\"");
	cache_cc_parse_response(m.h, m.n, &cc);
	assert_true(cc.no_cache);
}

struct cc_req_row {
	const char *fields;
	int64_t max_age, max_stale, min_fresh, sie;
	bool max_stale_any, no_cache, no_store, only_if_cached;
};

static const struct cc_req_row cc_request_directives_rows[] = {
	{"Cache-Control: max-age=5", 5, -1, -1, -1},
	{"Cache-Control: max-age=5, max-age=3", 3, -1, -1, -1},
	{"Cache-Control: max-age=3\nCache-Control: max-age=5", 3, -1, -1, -1},
	{"Cache-Control: max-age=abc", 0, -1, -1, -1},
	{"Cache-Control: max-stale", -1, -1, -1, -1, true},
	{"Cache-Control: max-stale=10", -1, 10, -1, -1},
	{"Cache-Control: max-stale, max-stale=10", -1, 10, -1, -1},
	{"Cache-Control: max-stale=10, max-stale=4", -1, 4, -1, -1},
	{"Cache-Control: max-stale=x", -1, -1, -1, -1},
	{"Cache-Control: min-fresh=10, min-fresh=20", -1, -1, 20, -1},
	{"Cache-Control: min-fresh=-1", -1, -1, -1, -1},
	{"Cache-Control: stale-if-error=30", -1, -1, -1, 30},
	{"Cache-Control: NO-CACHE", -1, -1, -1, -1, false, true},
	{"Cache-Control: no-store", -1, -1, -1, -1, false, false, true},
	{"Cache-Control: only-if-cached", -1, -1, -1, -1, false, false, false,
	 true},
	{"Pragma: no-cache", -1, -1, -1, -1, false, true},
	{"Pragma: foo, No-Cache", -1, -1, -1, -1, false, true},
	{"Pragma: no-cache\nCache-Control: max-age=9", 9, -1, -1, -1},
	{"Pragma: nocache", -1, -1, -1, -1},
	{"Cache-Control: max-age=99999999999999999999", CACHE_DELTA_MAX, -1, -1,
	 -1},
	{"Cache-Control: max-age=2147483649", CACHE_DELTA_MAX, -1, -1, -1},
	{"Cache-Control: max-age=\"7\"", 7, -1, -1, -1},
};

static void test_cc_request_directives(void **state)
{
	for (size_t i = 0; i < UTIL_ARRAY_LEN(cc_request_directives_rows);
	     i++) {
		const struct cc_req_row *r = &cc_request_directives_rows[i];
		struct cache_control cc;
		struct msg m;

		build(&m, r->fields);
		cache_cc_parse_request(m.h, m.n, &cc);
		CHECK(cc.max_age == r->max_age &&
			      cc.max_stale == r->max_stale &&
			      cc.min_fresh == r->min_fresh &&
			      cc.stale_if_error == r->sie &&
			      cc.max_stale_any == r->max_stale_any &&
			      cc.no_cache == r->no_cache &&
			      cc.no_store == r->no_store &&
			      cc.only_if_cached == r->only_if_cached,
		      "row %zu (%s): max-age %lld max-stale %lld min-fresh "
		      "%lld",
		      i, r->fields, (long long)cc.max_age,
		      (long long)cc.max_stale, (long long)cc.min_fresh);
		rows_checked++;
	}
}

/* ---- freshness and age ---- */

struct fresh_row {
	const char *name;
	const char *fields;
	int status;
	int64_t req_time, resp_time, now; /* relative to BASE */
	int64_t ttl_policy;
	int64_t lifetime, age;
	bool fresh, heuristic;
};

static const struct fresh_row freshness_table_rows[] = {
	{"max-age", "Cache-Control: max-age=3600\nDate: {0}", 200, 0, 0, 0, 0,
	 3600, 0, true},
	{"max-age at its end", "Cache-Control: max-age=3600\nDate: {0}", 200, 0,
	 0, 3600, 0, 3600, 3600, false},
	{"max-age a second before", "Cache-Control: max-age=3600\nDate: {0}",
	 200, 0, 0, 3599, 0, 3600, 3599, true},
	{"freshness-max-age-0", "Cache-Control: max-age=0\nDate: {0}", 200, 0,
	 0, 0, 0, 0, 0, false},
	{"freshness-max-age-age",
	 "Cache-Control: max-age=10\nDate: {0}\nAge: 15", 200, 0, 0, 0, 0, 10,
	 15, false},
	{"s-maxage beats max-age", "Cache-Control: max-age=10, s-maxage=100",
	 200, 0, 0, 5, 0, 100, 5, true},
	{"s-maxage=0 beats max-age", "Cache-Control: s-maxage=0, max-age=100",
	 200, 0, 0, 0, 0, 0, 0, false},
	{"max-age beats Expires",
	 "Cache-Control: max-age=3600\nDate: {0}\nExpires: {-10000}", 200, 0, 0,
	 0, 0, 3600, 0, true},
	{"max-age with invalid Expires",
	 "Cache-Control: max-age=3600\nDate: {0}\nExpires: 0", 200, 0, 0, 0, 0,
	 3600, 0, true},
	{"Expires - Date", "Date: {0}\nExpires: {100}", 200, 0, 0, 50, 60, 100,
	 50, true},
	{"Expires in the past", "Date: {0}\nExpires: {-10}", 200, 0, 0, 0, 60,
	 0, 0, false},
	{"Expires = Date", "Date: {0}\nExpires: {0}", 200, 0, 0, 0, 60, 0, 0,
	 false},
	{"invalid Expires is stale, no heuristic",
	 "Date: {0}\nExpires: 0\nLast-Modified: {-100000}", 200, 0, 0, 0, 60, 0,
	 0, false},
	{"conflicting Expires lines",
	 "Date: {0}\nExpires: {100}\nExpires: {200}", 200, 0, 0, 0, 60, 0, 0,
	 false},
	{"equal Expires lines", "Date: {0}\nExpires: {100}\nExpires: {100}",
	 200, 0, 0, 0, 60, 100, 0, true},
	{"Expires without Date uses response time", "Expires: {100}", 200, 5, 5,
	 5, 0, 95, 0, true},
	{"heuristic 10% of Date - Last-Modified",
	 "Date: {0}\nLast-Modified: {-1000}", 200, 0, 0, 0, 3600, 100, 0, true,
	 true},
	{"heuristic capped", "Date: {0}\nLast-Modified: {-100000}", 200, 0, 0,
	 0, 60, 60, 0, true, true},
	{"heuristic without Last-Modified: default TTL", "Date: {0}", 200, 0, 0,
	 0, 60, 60, 0, true, true},
	{"heuristic off", "Date: {0}\nLast-Modified: {-100000}", 200, 0, 0, 0,
	 0, 0, 0, false, true},
	{"Last-Modified after Date", "Date: {0}\nLast-Modified: {100}", 200, 0,
	 0, 0, 60, 0, 0, false, true},
	{"302 is not heuristically cacheable",
	 "Date: {0}\nLast-Modified: {-1000}", 302, 0, 0, 0, 3600, 0, 0, false},
	{"302 with public may be heuristic",
	 "Cache-Control: public\nDate: {0}\nLast-Modified: {-1000}", 302, 0, 0,
	 0, 3600, 100, 0, true, true},
	{"404 heuristic", "Date: {0}", 404, 0, 0, 0, 60, 60, 0, true, true},
	{"500 not heuristic", "Date: {0}", 500, 0, 0, 0, 60, 0, 0, false},
	{"freshness-max-age-100a", "Cache-Control: max-age=3600a", 200, 0, 0, 0,
	 60, 0, 0, false},
	{"freshness-max-age-a100", "Cache-Control: max-age=a3600", 200, 0, 0, 0,
	 60, 0, 0, false},
	{"max-age decimal is invalid", "Cache-Control: max-age=3600.0", 200, 0,
	 0, 0, 60, 0, 0, false},
	{"negative max-age is invalid", "Cache-Control: max-age=-1", 200, 0, 0,
	 0, 60, 0, 0, false},
	{"empty max-age is invalid", "Cache-Control: max-age=", 200, 0, 0, 0,
	 60, 0, 0, false},
	{"two-fresh-stale-sameline", "Cache-Control: max-age=1800, max-age=1",
	 200, 0, 0, 10, 60, 0, 10, false},
	{"two-stale-fresh-sepline",
	 "Cache-Control: max-age=1\nCache-Control: max-age=1800", 200, 0, 0, 10,
	 60, 0, 10, false},
	{"duplicate equal max-age", "Cache-Control: max-age=60, max-age=60",
	 200, 0, 0, 10, 0, 60, 10, true},
	{"freshness-max-age-quoted", "Cache-Control: max-age=\"3600\"", 200, 0,
	 0, 10, 0, 3600, 10, true},
	{"freshness-max-age-single-quoted", "Cache-Control: max-age='3600'",
	 200, 0, 0, 10, 0, 0, 10, false},
	{"freshness-max-age-space-before-equals",
	 "Cache-Control: max-age =3600", 200, 0, 0, 10, 0, 0, 10, false, true},
	{"freshness-max-age-space-after-equals", "Cache-Control: max-age= 3600",
	 200, 0, 0, 10, 0, 0, 10, false, true},
	{"freshness-max-age-leading-zero", "Cache-Control: max-age=003600", 200,
	 0, 0, 10, 0, 3600, 10, true},
	{"freshness-max-age-ignore-quoted",
	 "Cache-Control: extension=\"max-age=3600\", max-age=1", 200, 0, 0, 10,
	 0, 1, 10, false},
	{"freshness-max-age-ignore-quoted-rev",
	 "Cache-Control: max-age=1, extension=\"max-age=3600\"", 200, 0, 0, 10,
	 0, 1, 10, false},
	{"upper-case directive", "Cache-Control: MAX-AGE=3600", 200, 0, 0, 10,
	 0, 3600, 10, true},
	{"huge max-age clamps to 2^31", "Cache-Control: max-age=99999999999999",
	 200, 0, 0, 10, 0, CACHE_DELTA_MAX, 10, true},
	{"invalid s-maxage is stale", "Cache-Control: s-maxage=x, max-age=100",
	 200, 0, 0, 10, 0, 0, 10, false},
	/* Section 4.2.3 arithmetic: apparent 10, delay 2, corrected
	   age 5 + 2, initial 10, resident 10. */
	{"current_age from Date",
	 "Cache-Control: max-age=100\n"
	 "Date: {0}\nAge: 5",
	 200, 8, 10, 20, 0, 100, 20, true},
	/* Age larger than apparent age: corrected 30 + 2 = 32. */
	{"current_age from Age",
	 "Cache-Control: max-age=100\n"
	 "Date: {9}\nAge: 30",
	 200, 8, 10, 20, 0, 100, 42, true},
	{"Date ahead of the response time",
	 "Cache-Control: max-age=100\nDate: {100}", 200, 0, 0, 0, 0, 100, 0,
	 true},
	{"invalid Date: response time",
	 "Cache-Control: max-age=100\nDate: yesterday", 200, 0, 0, 30, 0, 100,
	 30, true},
	{"RFC 850 Date",
	 "Cache-Control: max-age=100\nDate: Sunday, 09-Sep-01 01:46:30 "
	 "GMT",
	 200, 0, 0, 0, 0, 100, 10, true},
	{"asctime Date",
	 "Cache-Control: max-age=100\nDate: Sun Sep  9 01:46:20 2001", 200, 0,
	 0, 0, 0, 100, 20, true},
	{"age-parse-nonnumeric",
	 "Cache-Control: max-age=3600\nDate: {0}\nAge: abc", 200, 0, 0, 0, 0,
	 3600, 0, true},
	{"age-parse-negative",
	 "Cache-Control: max-age=3600\nDate: {0}\nAge: -7200", 200, 0, 0, 0, 0,
	 3600, 0, true},
	{"age-parse-float",
	 "Cache-Control: max-age=3600\nDate: {0}\nAge: 7200.0", 200, 0, 0, 0, 0,
	 3600, 0, true},
	{"age-parse-large-minus-one",
	 "Cache-Control: max-age=3600\nDate: {0}\nAge: 2147483647", 200, 0, 0,
	 0, 0, 3600, 2147483647, false},
	{"age-parse-larger",
	 "Cache-Control: max-age=3600\nDate: {0}\nAge: 2147483649", 200, 0, 0,
	 0, 0, 3600, CACHE_DELTA_MAX, false},
	{"age-parse-suffix",
	 "Cache-Control: max-age=3600\nDate: {0}\nAge: 7200, 0", 200, 0, 0, 0,
	 0, 3600, 7200, false},
	{"age-parse-prefix",
	 "Cache-Control: max-age=3600\nDate: {0}\nAge: 0, 7200", 200, 0, 0, 0,
	 0, 3600, 0, true},
	{"age-parse-suffix-twoline",
	 "Cache-Control: max-age=3600\nDate: {0}\nAge: 7200\nAge: 0", 200, 0, 0,
	 0, 0, 3600, 7200, false},
	{"age-parse-prefix-twoline",
	 "Cache-Control: max-age=3600\nDate: {0}\nAge: 0\nAge: 7200", 200, 0, 0,
	 0, 0, 3600, 0, true},
	{"age-parse-parameter",
	 "Cache-Control: max-age=3600\nDate: {0}\nAge: 7200;foo=bar", 200, 0, 0,
	 0, 0, 3600, 7200, false},
	{"resident time only", "Cache-Control: max-age=3600\nDate: {0}", 200, 0,
	 0, 100000, 0, 3600, 100000, false},
	{"no-cache keeps its lifetime",
	 "Cache-Control: no-cache, max-age=100\nDate: {0}", 200, 0, 0, 10, 0,
	 100, 10, true},
};

static void test_freshness_table(void **state)
{
	for (size_t i = 0; i < UTIL_ARRAY_LEN(freshness_table_rows); i++) {
		const struct fresh_row *r = &freshness_table_rows[i];
		struct cache_policy p = {r->ttl_policy, true};
		struct cache_freshness f;
		struct cache_entry e;
		struct msg m;

		build(&m, r->fields);
		e = entry(&m, r->status, r->req_time, r->resp_time);
		cache_freshness(&e, &p, BASE + r->now, &f);
		CHECK(f.lifetime == r->lifetime && f.current_age == r->age &&
			      f.fresh == r->fresh &&
			      f.heuristic == r->heuristic,
		      "%s: lifetime %lld age %lld fresh %d heuristic %d",
		      r->name, (long long)f.lifetime, (long long)f.current_age,
		      f.fresh, f.heuristic);
		rows_checked++;
	}
}

static void test_heuristic_without_lm_off(void **state)
{
	struct cache_policy p = {60, false};
	struct cache_freshness f;
	struct cache_entry e;
	struct msg m;

	build(&m, "Date: {0}");
	e = entry(&m, 200, 0, 0);
	cache_freshness(&e, &p, BASE, &f);
	assert_int_equal(f.lifetime, 0);
	build(&m, "Date: {0}\nLast-Modified: {-300}");
	e = entry(&m, 200, 0, 0);
	cache_freshness(&e, &p, BASE, &f);
	assert_int_equal(f.lifetime, 30);
}

/* The arithmetic of section 4.2.3 on its own, with clamping. */
static const struct {
	struct cache_age_input in;
	int64_t want;
} current_age_arithmetic_rows[] = {
	{{0, 0, 0, 0, 0}, 0},
	{{90, 0, 95, 100, 100}, 10},  /* apparent age 10 */
	{{100, 7, 95, 100, 100}, 12}, /* age 7 + delay 5 */
	{{100, 7, 95, 100, 160}, 72}, /* plus 60 resident */
	{{200, 0, 100, 100, 100}, 0}, /* Date in the future */
	{{100, 0, 120, 100, 100}, 0}, /* request after response */
	{{100, 0, 100, 100, 50}, 0},  /* clock went backwards */
	{{0, CACHE_DELTA_MAX, 0, 100, 1000}, CACHE_DELTA_MAX},
	{{-4000000000, 0, 0, 0, 0}, CACHE_DELTA_MAX},
};

static void test_current_age_arithmetic(void **state)
{
	for (size_t i = 0; i < UTIL_ARRAY_LEN(current_age_arithmetic_rows);
	     i++) {
		int64_t age =
			cache_current_age(&current_age_arithmetic_rows[i].in);
		CHECK(age == current_age_arithmetic_rows[i].want,
		      "row %zu: %lld", i, (long long)age);
		rows_checked++;
	}
}

/* ---- using a stored response ---- */

struct decide_row {
	const char *name;
	const char *request;
	const char *response;
	int64_t now;
	enum cache_action action;
	bool stale_forbidden;
};

static const struct decide_row decide_table_rows[] = {
	{"fresh", "", "Cache-Control: max-age=100\nDate: {0}", 10,
	 CACHE_SERVE_FRESH},
	{"stale, no validator", "", "Cache-Control: max-age=5\nDate: {0}", 10,
	 CACHE_FORWARD},
	{"stale, ETag", "", "Cache-Control: max-age=5\nDate: {0}\nETag: \"a\"",
	 10, CACHE_REVALIDATE},
	{"stale, Last-Modified", "",
	 "Cache-Control: max-age=5\nDate: {0}\nLast-Modified: {-10}", 10,
	 CACHE_REVALIDATE},
	{"ccreq-ma0", "Cache-Control: max-age=0",
	 "Cache-Control: max-age=100\nDate: {0}", 10, CACHE_FORWARD},
	{"request max-age below age", "Cache-Control: max-age=5",
	 "Cache-Control: max-age=100\nDate: {0}", 10, CACHE_FORWARD},
	{"request max-age above age", "Cache-Control: max-age=20",
	 "Cache-Control: max-age=100\nDate: {0}", 10, CACHE_SERVE_FRESH},
	{"request max-age equal to age", "Cache-Control: max-age=10",
	 "Cache-Control: max-age=100\nDate: {0}", 10, CACHE_SERVE_FRESH},
	{"request max-age=0 at age 0", "Cache-Control: max-age=0",
	 "Cache-Control: max-age=100\nDate: {0}", 0, CACHE_SERVE_FRESH},
	{"request min-fresh too much", "Cache-Control: min-fresh=95",
	 "Cache-Control: max-age=100\nDate: {0}", 10, CACHE_FORWARD},
	{"request min-fresh met", "Cache-Control: min-fresh=90",
	 "Cache-Control: max-age=100\nDate: {0}", 10, CACHE_SERVE_FRESH},
	{"request max-stale any", "Cache-Control: max-stale",
	 "Cache-Control: max-age=5\nDate: {0}", 1000, CACHE_SERVE_STALE},
	{"request max-stale within", "Cache-Control: max-stale=5",
	 "Cache-Control: max-age=5\nDate: {0}", 10, CACHE_SERVE_STALE},
	{"request max-stale exceeded", "Cache-Control: max-stale=4",
	 "Cache-Control: max-age=5\nDate: {0}", 10, CACHE_FORWARD},
	{"max-stale on a fresh response", "Cache-Control: max-stale=4",
	 "Cache-Control: max-age=50\nDate: {0}", 10, CACHE_SERVE_FRESH},
	{"max-stale with must-revalidate", "Cache-Control: max-stale",
	 "Cache-Control: max-age=5, must-revalidate\nDate: {0}", 10,
	 CACHE_FORWARD, true},
	{"max-stale with proxy-revalidate", "Cache-Control: max-stale",
	 "Cache-Control: max-age=5, proxy-revalidate\nDate: {0}", 10,
	 CACHE_FORWARD, true},
	{"max-stale with s-maxage", "Cache-Control: max-stale",
	 "Cache-Control: s-maxage=5\nDate: {0}", 10, CACHE_FORWARD, true},
	{"must-revalidate while fresh", "",
	 "Cache-Control: max-age=50, must-revalidate\nDate: {0}", 10,
	 CACHE_SERVE_FRESH, true},
	{"response no-cache", "",
	 "Cache-Control: no-cache, max-age=100\nETag: \"x\"\nDate: {0}", 10,
	 CACHE_REVALIDATE, true},
	{"response no-cache, no validator", "",
	 "Cache-Control: no-cache\nDate: {0}", 0, CACHE_FORWARD, true},
	{"response no-cache=field does not revalidate", "",
	 "Cache-Control: no-cache=\"X-A\", max-age=100\nDate: {0}", 10,
	 CACHE_SERVE_FRESH},
	{"request no-cache", "Cache-Control: no-cache",
	 "Cache-Control: max-age=100\nETag: \"x\"\nDate: {0}", 10,
	 CACHE_REVALIDATE},
	{"Pragma: no-cache", "Pragma: no-cache",
	 "Cache-Control: max-age=100\nETag: \"x\"\nDate: {0}", 10,
	 CACHE_REVALIDATE},
	{"Pragma ignored beside Cache-Control",
	 "Pragma: no-cache\nCache-Control: max-age=1000",
	 "Cache-Control: max-age=100\nDate: {0}", 10, CACHE_SERVE_FRESH},
	{"ccreq-no-store", "Cache-Control: no-store",
	 "Cache-Control: max-age=100\nDate: {0}\nETag: \"a\"", 10,
	 CACHE_FORWARD},
	{"ccreq-magreaterage", "Cache-Control: max-age=600",
	 "Cache-Control: max-age=3600\nAge: 1800", 0, CACHE_FORWARD},
	{"ccreq-max-stale-age", "Cache-Control: max-stale=1000",
	 "Cache-Control: max-age=1500\nAge: 2000", 0, CACHE_SERVE_STALE},
	{"ccreq-min-fresh", "Cache-Control: min-fresh=2000",
	 "Cache-Control: max-age=1500", 0, CACHE_FORWARD},
	{"ccreq-min-fresh-age", "Cache-Control: min-fresh=1000",
	 "Cache-Control: max-age=1500\nAge: 1000", 0, CACHE_FORWARD},
	{"only-if-cached, fresh", "Cache-Control: only-if-cached",
	 "Cache-Control: max-age=100\nDate: {0}", 10, CACHE_SERVE_FRESH},
	{"only-if-cached, stale", "Cache-Control: only-if-cached",
	 "Cache-Control: max-age=5\nDate: {0}", 10, CACHE_GATEWAY_TIMEOUT},
	{"only-if-cached, max-stale",
	 "Cache-Control: only-if-cached, max-stale",
	 "Cache-Control: max-age=5\nDate: {0}", 10, CACHE_SERVE_STALE},
	{"only-if-cached, no-cache response", "Cache-Control: only-if-cached",
	 "Cache-Control: no-cache\nDate: {0}", 0, CACHE_GATEWAY_TIMEOUT, true},
	{"stale-while-revalidate window", "",
	 "Cache-Control: max-age=1, stale-while-revalidate=60\n"
	 "Date: {0}\nETag: \"a\"",
	 10, CACHE_SERVE_STALE_REVALIDATE},
	{"stale-while-revalidate edge", "",
	 "Cache-Control: max-age=1, stale-while-revalidate=9\nDate: "
	 "{0}",
	 10, CACHE_SERVE_STALE_REVALIDATE},
	{"stale-while-revalidate passed", "",
	 "Cache-Control: max-age=1, stale-while-revalidate=5\nDate: "
	 "{0}",
	 10, CACHE_FORWARD},
	{"stale-while-revalidate, must-revalidate", "",
	 "Cache-Control: max-age=1, stale-while-revalidate=60, "
	 "must-revalidate\nDate: {0}",
	 10, CACHE_FORWARD, true},
	{"stale-while-revalidate, request max-age", "Cache-Control: max-age=5",
	 "Cache-Control: max-age=1, stale-while-revalidate=60\nDate: "
	 "{0}",
	 10, CACHE_FORWARD},
	{"immutable, conditional reload", "Cache-Control: max-age=0",
	 "Cache-Control: max-age=100, immutable\nDate: {0}", 10,
	 CACHE_SERVE_FRESH},
	{"immutable, forced reload", "Cache-Control: no-cache",
	 "Cache-Control: max-age=100, immutable\nDate: {0}\nETag: "
	 "\"i\"",
	 10, CACHE_REVALIDATE},
	{"immutable, stale", "Cache-Control: max-age=0",
	 "Cache-Control: max-age=5, immutable\nDate: {0}", 10, CACHE_FORWARD},
	{"request max-age invalid counts as 0", "Cache-Control: max-age=x",
	 "Cache-Control: max-age=100\nDate: {0}", 10, CACHE_FORWARD},
	{"max-stale value beats bare max-stale",
	 "Cache-Control: max-stale, max-stale=2",
	 "Cache-Control: max-age=5\nDate: {0}", 10, CACHE_FORWARD},
	{"heuristic freshness", "", "Date: {0}\nLast-Modified: {-1000}", 50,
	 CACHE_SERVE_FRESH},
	{"heuristic expired", "", "Date: {0}\nLast-Modified: {-1000}", 100,
	 CACHE_REVALIDATE},
};

static void test_decide_table(void **state)
{
	for (size_t i = 0; i < UTIL_ARRAY_LEN(decide_table_rows); i++) {
		const struct decide_row *r = &decide_table_rows[i];
		struct cache_policy p = {3600, true};
		struct cache_control req;
		struct cache_decision d;
		struct cache_entry e;
		struct msg mq, ms;

		build(&mq, r->request);
		build(&ms, r->response);
		cache_cc_parse_request(mq.h, mq.n, &req);
		e = entry(&ms, 200, 0, 0);
		cache_decide(&req, &e, &p, BASE + r->now, &d);
		CHECK(d.action == r->action &&
			      d.stale_forbidden == r->stale_forbidden,
		      "%s: action %d (%s) forbidden %d", r->name, d.action,
		      cache_why_str(d.why), d.stale_forbidden);
		assert_int_equal(d.ttl, d.f.lifetime - d.f.current_age);
		rows_checked++;
	}
}

static void test_decide_reasons(void **state)
{
	struct cache_policy p = {60, true};
	struct cache_control req;
	struct cache_decision d;
	struct cache_entry e;
	struct msg mq, ms;

	build(&mq, "Cache-Control: min-fresh=1000");
	build(&ms, "Cache-Control: max-age=100\nDate: {0}");
	cache_cc_parse_request(mq.h, mq.n, &req);
	e = entry(&ms, 200, 0, 0);
	cache_decide(&req, &e, &p, BASE + 40, &d);
	assert_int_equal(d.why, CACHE_WHY_REQUEST_MIN_FRESH);
	assert_int_equal(d.ttl, 60);
	assert_string_equal(cache_why_str(d.why), "request-min-fresh");
	assert_string_equal(cache_why_str((enum cache_why)99), "unknown");

	build(&mq, "");
	cache_cc_parse_request(mq.h, mq.n, &req);
	assert_int_equal(cache_decide_miss(&req), CACHE_FORWARD);
	build(&mq, "Cache-Control: only-if-cached");
	cache_cc_parse_request(mq.h, mq.n, &req);
	assert_int_equal(cache_decide_miss(&req), CACHE_GATEWAY_TIMEOUT);
}

struct sie_row {
	const char *request;
	const char *response;
	int64_t now;
	int status;
	bool want;
	int64_t on_failure; /* policy max_stale_on_failure */
};

static const char stale_if_error_sie[] =
	"Cache-Control: max-age=1, stale-if-error=60\nDate: {0}";
static const struct sie_row stale_if_error_rows[] = {
	{"", stale_if_error_sie, 10, 503, true},
	{"", stale_if_error_sie, 10, 500, true},
	{"", stale_if_error_sie, 10, 502, true},
	{"", stale_if_error_sie, 10, 504, true},
	{"", stale_if_error_sie, 10, 0, true},
	{"", stale_if_error_sie, 10, 501, false},
	{"", stale_if_error_sie, 10, 404, false},
	{"", stale_if_error_sie, 10, 505, false},
	{"", stale_if_error_sie, 100, 503, false},
	{"", stale_if_error_sie, 61, 503, true},
	{"", stale_if_error_sie, 62, 503, false},
	{"", "Cache-Control: max-age=1\nDate: {0}", 10, 503, false},
	{"Cache-Control: stale-if-error=60",
	 "Cache-Control: max-age=1\nDate: {0}", 10, 503, true},
	{"Cache-Control: stale-if-error=5",
	 "Cache-Control: max-age=1\nDate: {0}", 10, 503, false},
	{"",
	 "Cache-Control: max-age=1, stale-if-error=60, "
	 "must-revalidate\nDate: {0}",
	 10, 503, false},
	{"", "Cache-Control: no-cache, stale-if-error=60\nDate: {0}", 10, 503,
	 false},
	{"", "Cache-Control: s-maxage=1, stale-if-error=60\nDate: {0}", 10, 503,
	 false},
	{"Cache-Control: no-cache",
	 "Cache-Control: max-age=100, stale-if-error=60\nDate: {0}", 10, 0,
	 true},
	/* stale-close: a disconnected cache may serve stale. */
	{"", "Cache-Control: max-age=1\nDate: {0}", 10, 0, true, 3600},
	{"", "Cache-Control: max-age=1\nDate: {0}", 5000, 0, false, 3600},
	{"", "Cache-Control: max-age=1\nDate: {0}", 10, 503, false, 3600},
	{"", stale_if_error_sie, 1000, 0, true, 3600},
	{"", "Cache-Control: max-age=1, must-revalidate\nDate: {0}", 10, 0,
	 false, 3600},
	{"", "Cache-Control: max-age=1, proxy-revalidate\nDate: {0}", 10, 0,
	 false, 3600},
	{"", "Cache-Control: no-cache\nDate: {0}", 10, 0, false, 3600},
	{"", "Cache-Control: s-maxage=1\nDate: {0}", 10, 0, false, 3600},
};

static void test_stale_if_error(void **state)
{
	for (size_t i = 0; i < UTIL_ARRAY_LEN(stale_if_error_rows); i++) {
		const struct sie_row *r = &stale_if_error_rows[i];
		struct cache_policy p = {0, true, r->on_failure};
		struct cache_control req;
		struct cache_decision d;
		struct cache_entry e;
		struct msg mq, ms;
		bool got;

		build(&mq, r->request);
		build(&ms, r->response);
		cache_cc_parse_request(mq.h, mq.n, &req);
		e = entry(&ms, 200, 0, 0);
		cache_decide(&req, &e, &p, BASE + r->now, &d);
		got = cache_stale_if_error(&req, &d, &p, r->status);
		CHECK(got == r->want, "row %zu: %d", i, got);
		rows_checked++;
	}
}

/* ---- storing ---- */

struct store_row {
	const char *name;
	const char *method;
	const char *request;
	int status;
	const char *response;
	int64_t ttl;
	enum cache_reason reason;
};

static const struct store_row storable_table_rows[] = {
	{"200 max-age", "GET", "", 200, "Cache-Control: max-age=60", 0,
	 CACHE_STORE_OK},
	{"HEAD only refreshes", "HEAD", "", 200, "Cache-Control: max-age=60", 0,
	 CACHE_STORE_METHOD},
	{"POST", "POST", "", 200, "Cache-Control: max-age=60", 0,
	 CACHE_STORE_METHOD},
	{"get is not GET", "get", "", 200, "Cache-Control: max-age=60", 0,
	 CACHE_STORE_METHOD},
	{"206", "GET", "", 206, "Cache-Control: max-age=60", 0,
	 CACHE_STORE_STATUS},
	{"304", "GET", "", 304, "Cache-Control: max-age=60", 0,
	 CACHE_STORE_STATUS},
	{"1xx", "GET", "", 103, "Cache-Control: max-age=60", 0,
	 CACHE_STORE_STATUS},
	{"no-store", "GET", "", 200, "Cache-Control: no-store, max-age=60", 0,
	 CACHE_STORE_NO_STORE},
	{"NO-STORE", "GET", "", 200,
	 "Cache-Control: max-age=60\n"
	 "Cache-Control: NO-STORE",
	 0, CACHE_STORE_NO_STORE},
	{"request no-store", "GET", "Cache-Control: no-store", 200,
	 "Cache-Control: max-age=60", 0, CACHE_STORE_REQUEST_NO_STORE},
	{"private", "GET", "", 200, "Cache-Control: private, max-age=60", 0,
	 CACHE_STORE_PRIVATE},
	{"private=field is stored", "GET", "", 200,
	 "Cache-Control: private=\"X-A\", max-age=60", 0, CACHE_STORE_OK},
	{"Authorization", "GET", "Authorization: Basic eDp5", 200,
	 "Cache-Control: max-age=60", 0, CACHE_STORE_AUTHORIZATION},
	{"Authorization + public", "GET", "Authorization: Basic eDp5", 200,
	 "Cache-Control: public, max-age=60", 0, CACHE_STORE_OK},
	{"Authorization + s-maxage", "GET", "Authorization: Basic eDp5", 200,
	 "Cache-Control: s-maxage=60", 0, CACHE_STORE_OK},
	{"Authorization + must-revalidate", "GET", "Authorization: Basic eDp5",
	 200, "Cache-Control: must-revalidate, max-age=60", 0, CACHE_STORE_OK},
	{"Vary: *", "GET", "", 200, "Cache-Control: max-age=60\nVary: *", 0,
	 CACHE_STORE_VARY_STAR},
	{"Vary: a, *", "GET", "", 200,
	 "Cache-Control: max-age=60\nVary: Accept, *", 0,
	 CACHE_STORE_VARY_STAR},
	{"Vary: Accept", "GET", "", 200,
	 "Cache-Control: max-age=60\nVary: Accept", 0, CACHE_STORE_OK},
	{"302 without freshness", "GET", "", 302, "Location: /x", 60,
	 CACHE_STORE_NOT_CACHEABLE},
	{"302 with max-age", "GET", "", 302,
	 "Location: /x\nCache-Control: max-age=60", 0, CACHE_STORE_OK},
	{"302 with Expires", "GET", "", 302, "Location: /x\nExpires: {100}", 0,
	 CACHE_STORE_OK},
	{"302 with public", "GET", "", 302,
	 "Location: /x\nCache-Control: public", 0, CACHE_STORE_OK},
	{"200 bare, heuristic off, no validator", "GET", "", 200,
	 "Content-Type: text/plain", 0, CACHE_STORE_USELESS},
	{"200 bare, heuristic off, ETag", "GET", "", 200, "ETag: \"a\"", 0,
	 CACHE_STORE_OK},
	{"200 bare, default TTL", "GET", "", 200, "Content-Type: text/plain",
	 60, CACHE_STORE_OK},
	{"404 bare", "GET", "", 404, "", 60, CACHE_STORE_OK},
	{"203 bare", "GET", "", 203, "", 60, CACHE_STORE_OK},
	{"204 bare", "GET", "", 204, "", 60, CACHE_STORE_OK},
	{"300 bare", "GET", "", 300, "", 60, CACHE_STORE_OK},
	{"301 bare", "GET", "", 301, "", 60, CACHE_STORE_OK},
	{"308 bare", "GET", "", 308, "", 60, CACHE_STORE_OK},
	{"405 bare", "GET", "", 405, "", 60, CACHE_STORE_OK},
	{"410 bare", "GET", "", 410, "", 60, CACHE_STORE_OK},
	{"414 bare", "GET", "", 414, "", 60, CACHE_STORE_OK},
	{"501 bare", "GET", "", 501, "", 60, CACHE_STORE_OK},
	{"201 bare", "GET", "", 201, "", 60, CACHE_STORE_NOT_CACHEABLE},
	{"500 bare", "GET", "", 500, "", 60, CACHE_STORE_NOT_CACHEABLE},
	{"503 bare", "GET", "", 503, "", 60, CACHE_STORE_NOT_CACHEABLE},
	{"500 with max-age", "GET", "", 500, "Cache-Control: max-age=60", 0,
	 CACHE_STORE_OK},
	{"599 with max-age", "GET", "", 599, "Cache-Control: max-age=60", 0,
	 CACHE_STORE_OK},
	{"must-understand overrides no-store", "GET", "", 200,
	 "Cache-Control: must-understand, no-store, max-age=60", 0,
	 CACHE_STORE_OK},
	{"must-understand, unknown status", "GET", "", 299,
	 "Cache-Control: must-understand, no-store, max-age=60", 0,
	 CACHE_STORE_MUST_UNDERSTAND},
	{"must-understand, 206", "GET", "", 206,
	 "Cache-Control: must-understand, max-age=60", 0, CACHE_STORE_STATUS},
	{"must-understand, request no-store", "GET", "Cache-Control: no-store",
	 200, "Cache-Control: must-understand, no-store, max-age=60", 0,
	 CACHE_STORE_REQUEST_NO_STORE},
	{"no-cache is stored", "GET", "", 200,
	 "Cache-Control: no-cache\nETag: \"a\"", 0, CACHE_STORE_OK},
	{"no-cache without validator is useless", "GET", "", 200,
	 "Cache-Control: no-cache", 0, CACHE_STORE_USELESS},
	{"Pragma: no-cache request", "GET", "Pragma: no-cache", 200,
	 "Cache-Control: max-age=60", 0, CACHE_STORE_OK},
	{"Set-Cookie is stored without it", "GET", "", 200,
	 "Cache-Control: max-age=60\nSet-Cookie: a=b", 0, CACHE_STORE_OK},
	{"quoted no-store is not no-store", "GET", "", 200,
	 "Cache-Control: foo=\"no-store\", max-age=60", 0, CACHE_STORE_OK},
};

static void test_storable_table(void **state)
{
	for (size_t i = 0; i < UTIL_ARRAY_LEN(storable_table_rows); i++) {
		const struct store_row *r = &storable_table_rows[i];
		struct cache_policy p = {r->ttl, true};
		struct cache_store_decision d;
		struct http_request req = {0};
		struct http_response res = {0};
		struct msg mq, ms;

		build(&mq, r->request);
		build(&ms, r->response);
		req.method = sl(r->method);
		req.headers = mq.h;
		req.num_headers = mq.n;
		res.status = r->status;
		res.headers = ms.h;
		res.num_headers = ms.n;
		cache_storable(&req, &res, &p, &d);
		CHECK(d.reason == r->reason &&
			      d.store == (r->reason == CACHE_STORE_OK),
		      "%s: %s", r->name, cache_reason_str(d.reason));
		rows_checked++;
	}
}

static const char *const store_drops_fields_kept[] = {"Cache-Control", "c",
						      "Content-Type", "Date"};

static void test_store_drops_fields(void **state)
{
	struct cache_policy p = {0, true};
	struct cache_store_decision d;
	struct http_request req = {0};
	struct http_response res = {0};
	struct http_header out[MSG_MAX];
	struct msg mq, ms;
	int n;

	build(&mq, "");
	build(&ms, "Cache-Control: max-age=60, no-cache=\"X-A, x-b\", "
		   "private=\"X-P\"\nConnection: a, B\na: 1\nb: 2\nc: 3\n"
		   "Content-Type: text/plain\nSet-Cookie: s=1\n"
		   "Set-Cookie2: s=2\nKeep-Alive: timeout=5\nX-A: 1\nX-B: 2\n"
		   "X-P: 3\nTransfer-Encoding: chunked\nUpgrade: h2c\n"
		   "Proxy-Authenticate: Basic\nTrailer: x\nTE: trailers\n"
		   "Proxy-Connection: keep-alive\nDate: {0}");
	req.method = sl("GET");
	req.headers = mq.h;
	res.status = 200;
	res.headers = ms.h;
	res.num_headers = ms.n;
	cache_storable(&req, &res, &p, &d);
	assert_true(d.store);
	assert_true(cache_store_drops(&d, sl("set-cookie")));
	assert_true(cache_store_drops(&d, sl("x-p")));
	assert_false(cache_store_drops(&d, sl("Content-Type")));
	n = cache_store_fields(&d, ms.h, ms.n, out, MSG_MAX);
	assert_int_equal(n, (int)UTIL_ARRAY_LEN(store_drops_fields_kept));
	for (int i = 0; i < n; i++)
		assert_true(slice_is(out[i].name, store_drops_fields_kept[i]));
	assert_int_equal(cache_store_fields(&d, ms.h, ms.n, out, 2), -ENOSPC);
	assert_string_equal(cache_reason_str(CACHE_STORE_NO_STORE), "no-store");
	assert_string_equal(cache_reason_str((enum cache_reason)77), "unknown");
}

static void test_store_too_many_drops(void **state)
{
	struct cache_policy p = {0, true};
	struct cache_store_decision d;
	struct http_request req = {0};
	struct http_response res = {0};
	char conn[2048];
	struct msg mq, ms;
	size_t k;

	k = (size_t)util_format(conn, sizeof(conn),
				"Cache-Control: max-age=60\nConnection: ");
	for (int i = 0; i < 60; i++)
		k += (size_t)util_format(conn + k, sizeof(conn) - k, "f%d, ",
					 i);
	build(&mq, "");
	build(&ms, conn);
	req.method = sl("GET");
	res.status = 200;
	res.headers = ms.h;
	res.num_headers = ms.n;
	cache_storable(&req, &res, &p, &d);
	assert_false(d.store);
	assert_int_equal(d.reason, CACHE_STORE_TOO_MANY);
}

/* ---- Vary ---- */

struct vary_row {
	const char *name;
	const char *response;
	const char *stored;
	const char *incoming;
	bool match;
};

static const struct vary_row vary_table_rows[] = {
	{"no Vary", "", "Accept: a", "Accept: b", true},
	{"vary-match", "Vary: Accept-Language", "Accept-Language: en",
	 "Accept-Language: en", true},
	{"vary-no-match", "Vary: Accept-Language", "Accept-Language: en",
	 "Accept-Language: fr", false},
	{"vary-omit-stored", "Vary: Foo", "", "Foo: 1", false},
	{"vary-omit", "Vary: Foo", "Foo: 1", "", false},
	{"absent in both", "Vary: Foo", "", "", true},
	{"empty vs absent", "Vary: Foo", "Foo:", "", false},
	{"empty vs empty", "Vary: Foo", "Foo:", "Foo:", true},
	{"whitespace after comma", "Vary: Accept-Encoding",
	 "Accept-Encoding: gzip,br", "Accept-Encoding: gzip, br", true},
	{"whitespace around elements", "Vary: X-Foo", "X-Foo: a , b",
	 "X-Foo: a,b", true},
	{"two lines vs one", "Vary: Accept-Encoding",
	 "Accept-Encoding: gzip\nAccept-Encoding: br",
	 "Accept-Encoding: gzip, br", true},
	{"empty elements", "Vary: Accept-Encoding", "Accept-Encoding: gzip,,br",
	 "Accept-Encoding: gzip, br", true},
	{"codings are case-insensitive", "Vary: Accept-Encoding",
	 "Accept-Encoding: GZIP", "Accept-Encoding: gzip", true},
	{"language tags are case-insensitive", "Vary: Accept-Language",
	 "Accept-Language: en-US", "Accept-Language: en-us", true},
	{"other values are case-sensitive", "Vary: X-Foo", "X-Foo: A",
	 "X-Foo: a", false},
	{"field name case", "Vary: accept-language", "ACCEPT-LANGUAGE: en",
	 "Accept-Language: en", true},
	{"coding order does not matter", "Vary: Accept-Encoding",
	 "Accept-Encoding: br, gzip", "Accept-Encoding: gzip, br", true},
	{"vary-normalise-lang-order", "Vary: Accept-Language",
	 "Accept-Language: en, de", "Accept-Language: de, en", true},
	{"vary-normalise-lang-case", "Vary: Accept-Language",
	 "Accept-Language: en, de", "Accept-Language: eN, De", true},
	{"vary-normalise-lang-space", "Vary: Accept-Language",
	 "Accept-Language: en, de", "Accept-Language:  en ,   de", true},
	{"q-values stay on their elements", "Vary: Accept-Language",
	 "Accept-Language: en;q=0.5, de", "Accept-Language: en, de;q=0.5",
	 false},
	{"vary-normalise-combine", "Vary: Foo", "Foo: 1, 2", "Foo: 1\nFoo: 2",
	 true},
	{"vary-normalise-space", "Vary: Foo", "Foo: 1,2", "Foo:  1, 2 ", true},
	{"other fields keep their order", "Vary: Foo", "Foo: 1, 2", "Foo: 2, 1",
	 false},
	{"vary-3-order", "Vary: Foo, Bar, Baz", "Foo: 1\nBar: abc\nBaz: 789",
	 "Foo: 1\nBaz: 789\nBar: abcde", false},
	{"vary-3-omit", "Vary: Foo, Bar, Baz", "Foo: 1\nBaz: 789",
	 "Foo: 1\nBaz: 789", true},
	{"vary-two: both match", "Vary: Foo, Bar", "Foo: 1\nBar: 2",
	 "Bar: 2\nFoo: 1", true},
	{"vary-two: one differs", "Vary: Foo, Bar", "Foo: 1\nBar: 2",
	 "Foo: 1\nBar: 3", false},
	{"vary-two-lines", "Vary: Foo\nVary: Bar", "Foo: 1\nBar: 2",
	 "Foo: 1\nBar: 3", false},
	{"vary-two-lines match", "Vary: Foo\nVary: Bar", "Foo: 1\nBar: 2",
	 "Foo: 1\nBar: 2", true},
	{"vary-cache-key: unlisted field ignored", "Vary: Foo",
	 "Foo: 1\nOther: a", "Foo: 1\nOther: b", true},
	{"quoted commas stay", "Vary: X-Q", "X-Q: \"a,b\", c", "X-Q: \"a,b\",c",
	 true},
	{"prefix is not a match", "Vary: Foo", "Foo: 12", "Foo: 1", false},
	{"longer is not a match", "Vary: Foo", "Foo: 1", "Foo: 12", false},
	{"duplicate names in Vary", "Vary: Foo, foo", "Foo: 1", "Foo: 1", true},
};

static void test_vary_table(void **state)
{
	for (size_t i = 0; i < UTIL_ARRAY_LEN(vary_table_rows); i++) {
		const struct vary_row *r = &vary_table_rows[i];
		struct msg ms, mst, mi;
		char text[1024];
		int n;
		bool got;

		build(&ms, r->response);
		build(&mst, r->stored);
		build(&mi, r->incoming);
		n = cache_vary_serialize(ms.h, ms.n, mst.h, mst.n, text,
					 sizeof(text));
		assert_true(n >= 0);
		got = cache_vary_match(text, (size_t)n, mi.h, mi.n);
		CHECK(got == r->match, "%s: got %d, stored text \"%s\"",
		      r->name, got, text);
		/* A request always matches its own serialisation. */
		assert_true(cache_vary_match(text, (size_t)n, mst.h, mst.n));
		rows_checked++;
	}
}

static void test_vary_serialize(void **state)
{
	struct msg ms, mq;
	char text[256];

	build(&ms, "Vary: Accept-Encoding, X-Foo\nVary: Missing");
	build(&mq, "accept-encoding: GZip , br\nX-Foo: Mixed, Case");
	assert_int_equal(cache_vary_serialize(ms.h, ms.n, mq.h, mq.n, text,
					      sizeof(text)),
			 49);
	assert_string_equal(text, "accept-encoding:br,gzip\n"
				  "x-foo:Mixed,Case\nmissing\n");
	assert_int_equal(cache_vary_serialize(ms.h, ms.n, mq.h, mq.n, text, 10),
			 -ENOSPC);
	build(&ms, "Vary: *");
	assert_int_equal(cache_vary_serialize(ms.h, ms.n, mq.h, mq.n, text,
					      sizeof(text)),
			 -EINVAL);
	build(&ms, "");
	assert_int_equal(cache_vary_serialize(ms.h, ms.n, mq.h, mq.n, text,
					      sizeof(text)),
			 0);
	assert_string_equal(text, "");
	assert_true(cache_vary_match(text, 0, mq.h, mq.n));
}

/* ---- conditional requests ---- */

struct cond_row {
	const char *name;
	const char *method;
	const char *request;
	const char *stored;
	enum cache_cond want;
};

#define STORED_V "ETag: \"abc\"\nLast-Modified: {-1000}\nDate: {0}"

static const struct cond_row conditional_table_rows[] = {
	{"no conditionals", "GET", "", STORED_V, CACHE_COND_FULL},
	{"INM match", "GET", "If-None-Match: \"abc\"", STORED_V,
	 CACHE_COND_NOT_MODIFIED},
	{"INM weak request tag", "GET", "If-None-Match: W/\"abc\"", STORED_V,
	 CACHE_COND_NOT_MODIFIED},
	{"INM weak stored tag", "GET", "If-None-Match: \"abc\"",
	 "ETag: W/\"abc\"", CACHE_COND_NOT_MODIFIED},
	{"INM list", "GET", "If-None-Match: \"x\", \"abc\"", STORED_V,
	 CACHE_COND_NOT_MODIFIED},
	{"INM list over lines", "GET",
	 "If-None-Match: \"x\"\nIf-None-Match: \"abc\"", STORED_V,
	 CACHE_COND_NOT_MODIFIED},
	{"INM no match", "GET", "If-None-Match: \"x\"", STORED_V,
	 CACHE_COND_FULL},
	{"INM case matters", "GET", "If-None-Match: \"ABC\"", STORED_V,
	 CACHE_COND_FULL},
	{"INM unquoted never matches", "GET", "If-None-Match: abc", STORED_V,
	 CACHE_COND_FULL},
	{"INM star", "GET", "If-None-Match: *", STORED_V,
	 CACHE_COND_NOT_MODIFIED},
	{"INM without stored ETag", "GET", "If-None-Match: \"abc\"",
	 "Date: {0}", CACHE_COND_FULL},
	{"INM star without stored ETag", "GET", "If-None-Match: *", "Date: {0}",
	 CACHE_COND_NOT_MODIFIED},
	{"INM beats IMS", "GET", "If-None-Match: \"x\"\nIf-Modified-Since: {0}",
	 STORED_V, CACHE_COND_FULL},
	{"IMS after Last-Modified", "GET", "If-Modified-Since: {0}", STORED_V,
	 CACHE_COND_NOT_MODIFIED},
	{"IMS equal to Last-Modified", "GET", "If-Modified-Since: {-1000}",
	 STORED_V, CACHE_COND_NOT_MODIFIED},
	{"IMS before Last-Modified", "GET", "If-Modified-Since: {-2000}",
	 STORED_V, CACHE_COND_FULL},
	{"IMS invalid date", "GET", "If-Modified-Since: yesterday", STORED_V,
	 CACHE_COND_FULL},
	{"IMS RFC 850", "GET",
	 "If-Modified-Since: Sunday, 09-Sep-01 01:46:40 GMT", STORED_V,
	 CACHE_COND_NOT_MODIFIED},
	{"IMS against Date", "GET", "If-Modified-Since: {0}", "Date: {0}",
	 CACHE_COND_NOT_MODIFIED},
	{"IMS before Date", "GET", "If-Modified-Since: {-1}", "Date: {0}",
	 CACHE_COND_FULL},
	{"IMS against response time", "GET", "If-Modified-Since: {5}",
	 "Content-Type: x", CACHE_COND_NOT_MODIFIED},
	{"IMS before response time", "GET", "If-Modified-Since: {4}",
	 "Content-Type: x", CACHE_COND_FULL},
	{"HEAD INM", "HEAD", "If-None-Match: \"abc\"", STORED_V,
	 CACHE_COND_NOT_MODIFIED},
	{"POST passes", "POST", "If-None-Match: \"abc\"", STORED_V,
	 CACHE_COND_PASS},
	{"If-Match strong match", "GET",
	 "If-Match: \"abc\"\nIf-None-Match: \"abc\"", STORED_V,
	 CACHE_COND_NOT_MODIFIED},
	{"If-Match no match passes", "GET", "If-Match: \"x\"", STORED_V,
	 CACHE_COND_PASS},
	{"If-Match weak never matches", "GET", "If-Match: W/\"abc\"", STORED_V,
	 CACHE_COND_PASS},
	{"If-Match against weak stored", "GET", "If-Match: \"abc\"",
	 "ETag: W/\"abc\"", CACHE_COND_PASS},
	{"If-Match star", "GET", "If-Match: *", STORED_V, CACHE_COND_FULL},
	{"IUS holds", "GET", "If-Unmodified-Since: {0}", STORED_V,
	 CACHE_COND_FULL},
	{"IUS fails", "GET", "If-Unmodified-Since: {-2000}", STORED_V,
	 CACHE_COND_PASS},
	{"IUS without Last-Modified", "GET", "If-Unmodified-Since: {0}",
	 "Date: {0}", CACHE_COND_PASS},
	{"IUS invalid is ignored", "GET", "If-Unmodified-Since: soon", STORED_V,
	 CACHE_COND_FULL},
	{"If-Match beats IUS", "GET",
	 "If-Match: \"abc\"\nIf-Unmodified-Since: {-2000}", STORED_V,
	 CACHE_COND_FULL},
};

static void test_conditional_table(void **state)
{
	for (size_t i = 0; i < UTIL_ARRAY_LEN(conditional_table_rows); i++) {
		const struct cond_row *r = &conditional_table_rows[i];
		struct cache_entry e;
		struct msg mq, ms;
		enum cache_cond got;

		build(&mq, r->request);
		build(&ms, r->stored);
		e = entry(&ms, 200, 5, 5);
		got = cache_conditional(sl(r->method), mq.h, mq.n, &e, BASE);
		CHECK(got == r->want, "%s: got %d", r->name, got);
		rows_checked++;
	}
}

struct if_range_row {
	const char *request;
	const char *stored;
	bool want;
};

static const struct if_range_row if_range_rows[] = {
	{"", STORED_V, true},
	{"If-Range: \"abc\"", STORED_V, true},
	{"If-Range: \"x\"", STORED_V, false},
	{"If-Range: W/\"abc\"", STORED_V, false},
	{"If-Range: \"abc\"", "ETag: W/\"abc\"", false},
	{"If-Range: {-1000}", STORED_V, true},
	{"If-Range: {-999}", STORED_V, false},
	{"If-Range: {-1000}", "Last-Modified: {-1000}\nDate: {-970}", false},
	{"If-Range: {-1000}", "Last-Modified: {-1000}", false},
	{"If-Range: garbage", STORED_V, false},
	{"If-Range: \"abc\"", "Date: {0}", false},
};

static void test_if_range(void **state)
{
	for (size_t i = 0; i < UTIL_ARRAY_LEN(if_range_rows); i++) {
		struct cache_entry e;
		struct msg mq, ms;
		bool got;

		build(&mq, if_range_rows[i].request);
		build(&ms, if_range_rows[i].stored);
		e = entry(&ms, 200, 0, 0);
		got = cache_if_range(mq.h, mq.n, &e, BASE);
		CHECK(got == if_range_rows[i].want, "row %zu: %d", i, got);
		rows_checked++;
	}
}

static void test_etag_comparison(void **state)
{
	/* RFC 9110 section 8.8.3.2's table. */
	assert_false(cache_etag_strong_eq(sl("W/\"1\""), sl("W/\"1\"")));
	assert_true(cache_etag_weak_eq(sl("W/\"1\""), sl("W/\"1\"")));
	assert_false(cache_etag_strong_eq(sl("W/\"1\""), sl("W/\"2\"")));
	assert_false(cache_etag_weak_eq(sl("W/\"1\""), sl("W/\"2\"")));
	assert_false(cache_etag_strong_eq(sl("W/\"1\""), sl("\"1\"")));
	assert_true(cache_etag_weak_eq(sl("W/\"1\""), sl("\"1\"")));
	assert_true(cache_etag_strong_eq(sl("\"1\""), sl("\"1\"")));
	assert_true(cache_etag_weak_eq(sl("\"1\""), sl("\"1\"")));
	assert_false(cache_etag_weak_eq(sl("\"1"), sl("\"1")));
	assert_false(cache_etag_weak_eq(sl("w/\"1\""), sl("\"1\"")));
	assert_true(cache_etag_strong_eq(sl("\"\""), sl("\"\"")));
	assert_false(cache_etag_strong_eq(sl("\"a\"b\""), sl("\"a\"b\"")));
	rows_checked += 12;
}

static void test_validators_and_304_fields(void **state)
{
	struct http_header v[2];
	struct cache_entry e;
	struct msg m;

	build(&m, "ETag: \"abc\"\nLast-Modified: Sat, 01 Jan 2000 00:00:00 "
		  "GMT\nDate: {0}");
	e = entry(&m, 200, 0, 0);
	assert_int_equal(cache_validators(&e, v), 2);
	assert_true(slice_is(v[0].name, "If-None-Match"));
	assert_true(slice_is(v[0].value, "\"abc\""));
	assert_true(slice_is(v[1].name, "If-Modified-Since"));
	assert_true(slice_is(v[1].value, "Sat, 01 Jan 2000 00:00:00 GMT"));
	build(&m, "Last-Modified: {0}");
	e = entry(&m, 200, 0, 0);
	assert_int_equal(cache_validators(&e, v), 1);
	assert_true(slice_is(v[0].name, "If-Modified-Since"));
	build(&m, "Date: {0}");
	e = entry(&m, 200, 0, 0);
	assert_int_equal(cache_validators(&e, v), 0);

	assert_true(cache_304_keeps_field(sl("etag")));
	assert_true(cache_304_keeps_field(sl("Cache-Control")));
	assert_true(cache_304_keeps_field(sl("Vary")));
	assert_true(cache_304_keeps_field(sl("Content-Location")));
	assert_false(cache_304_keeps_field(sl("Content-Length")));
	assert_false(cache_304_keeps_field(sl("Content-Type")));
}

static void test_join_etags(void **state)
{
	const struct http_slice tags[] = {sl("\"a\""), sl("W/\"b\""), sl("bad"),
					  sl("\"a\""), sl("\"c\"")};
	char buf[64];

	assert_int_equal(cache_join_etags(tags, 5, buf, sizeof(buf)), 15);
	assert_string_equal(buf, "\"a\", W/\"b\", \"c\"");
	assert_int_equal(cache_join_etags(tags + 2, 1, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	assert_int_equal(cache_join_etags(tags, 5, buf, 10), -ENOSPC);
	assert_int_equal(cache_join_etags(tags, 5, buf, 0), -ENOSPC);
}

/*
 * Random bytes through every parser: nothing crashes or reads out of
 * bounds (ASan and valgrind watch), and the results stay in range.
 */
static const char random_input_alphabet[] =
	"0123456789 ,;=\"-/:*WGMTabcdefgimnorstuvxyz"
	"\tACDEFHIJKLNOPQRSUVXYZ\\'";

static void test_random_input(void **state)
{
	uint64_t seed = 0x9e3779b97f4a7c15ULL;
	struct http_header h[3];
	char buf[3][48];

	for (int round = 0; round < 20000; round++) {
		struct cache_control cc;
		uint64_t start, count;
		int64_t t;
		char text[256];

		for (int f = 0; f < 3; f++) {
			size_t len;
			seed = seed * 6364136223846793005ULL +
			       1442695040888963407ULL;
			len = (size_t)(seed >> 59) + (size_t)(seed >> 61);
			for (size_t i = 0; i < len; i++) {
				seed = seed * 6364136223846793005ULL + 1;
				buf[f][i] = random_input_alphabet
					[(seed >> 33) %
					 (sizeof(random_input_alphabet) - 1)];
			}
			h[f].value = (struct http_slice){buf[f], len};
		}
		h[0].name = sl("Cache-Control");
		h[1].name = round % 2 ? sl("Age") : sl("Range");
		h[2].name = round % 3 ? sl("Vary") : sl("If-None-Match");
		cache_cc_parse_response(h, 3, &cc);
		assert_true(cc.max_age >= -1 && cc.max_age <= CACHE_DELTA_MAX);
		cache_cc_parse_request(h, 3, &cc);
		assert_true(cc.min_fresh >= -1 &&
			    cc.min_fresh <= CACHE_DELTA_MAX);
		assert_true(cache_age_value(h, 3) <= CACHE_DELTA_MAX);
		if (cache_range(h, 3, 50, &start, &count) == CACHE_RANGE_OK)
			assert_true(count > 0 && start + count <= 50);
		(void)cache_parse_http_date(buf[0], h[0].value.len, BASE, &t);
		(void)cache_vary_serialize(h, 3, h, 3, text, sizeof(text));
		(void)cache_etag_weak_eq(h[1].value, h[2].value);
	}
}

/* ---- Range ---- */

struct range_row {
	const char *request;
	uint64_t length;
	enum cache_range want;
	uint64_t start, count;
};

static const struct range_row range_table_rows[] = {
	{"", 100, CACHE_RANGE_NONE},
	{"Range: bytes=0-9", 100, CACHE_RANGE_OK, 0, 10},
	{"Range: bytes=0-0", 100, CACHE_RANGE_OK, 0, 1},
	{"Range: bytes=90-", 100, CACHE_RANGE_OK, 90, 10},
	{"Range: bytes=99-", 100, CACHE_RANGE_OK, 99, 1},
	{"Range: bytes=-10", 100, CACHE_RANGE_OK, 90, 10},
	{"Range: bytes=-200", 100, CACHE_RANGE_OK, 0, 100},
	{"Range: bytes=50-1000", 100, CACHE_RANGE_OK, 50, 50},
	{"Range: bytes=0-99999999999999999999999", 100, CACHE_RANGE_OK, 0, 100},
	{"Range: BYTES=1-2", 100, CACHE_RANGE_OK, 1, 2},
	{"Range: bytes= 1-2 ", 100, CACHE_RANGE_OK, 1, 2},
	{"Range: bytes=100-", 100, CACHE_RANGE_UNSATISFIABLE},
	{"Range: bytes=100-200", 100, CACHE_RANGE_UNSATISFIABLE},
	{"Range: bytes=-0", 100, CACHE_RANGE_UNSATISFIABLE},
	{"Range: bytes=0-", 0, CACHE_RANGE_UNSATISFIABLE},
	{"Range: bytes=-5", 0, CACHE_RANGE_UNSATISFIABLE},
	{"Range: bytes=99999999999999999999999-", 100,
	 CACHE_RANGE_UNSATISFIABLE},
	{"Range: bytes=5-3", 100, CACHE_RANGE_IGNORE},
	{"Range: bytes=0-1,5-6", 100, CACHE_RANGE_IGNORE},
	{"Range: bytes=0-1, 5-6", 100, CACHE_RANGE_IGNORE},
	{"Range: items=0-1", 100, CACHE_RANGE_IGNORE},
	{"Range: bytes=a-b", 100, CACHE_RANGE_IGNORE},
	{"Range: bytes=-", 100, CACHE_RANGE_IGNORE},
	{"Range: bytes=1 - 2", 100, CACHE_RANGE_IGNORE},
	{"Range: bytes=", 100, CACHE_RANGE_IGNORE},
	{"Range: bytes=5", 100, CACHE_RANGE_IGNORE},
	{"Range: bytes=0-1\nRange: bytes=2-3", 100, CACHE_RANGE_IGNORE},
};

static void test_range_table(void **state)
{
	for (size_t i = 0; i < UTIL_ARRAY_LEN(range_table_rows); i++) {
		const struct range_row *r = &range_table_rows[i];
		uint64_t start = 777, count = 777;
		enum cache_range got;
		struct msg m;

		build(&m, r->request);
		got = cache_range(m.h, m.n, r->length, &start, &count);
		CHECK(got == r->want &&
			      (got != CACHE_RANGE_OK ||
			       (start == r->start && count == r->count)),
		      "\"%s\": %d %llu+%llu", r->request, got,
		      (unsigned long long)start, (unsigned long long)count);
		rows_checked++;
	}
}

static void test_content_range(void **state)
{
	char buf[64];

	assert_int_equal(
		cache_format_content_range(0, 10, 100, buf, sizeof(buf)), 13);
	assert_string_equal(buf, "bytes 0-9/100");
	cache_format_content_range(0, 0, 100, buf, sizeof(buf));
	assert_string_equal(buf, "bytes */100");
	assert_int_equal(cache_format_content_range(0, 1, 1, buf, 5), -ENOSPC);
}

/* ---- freshening ---- */

static const char *const merge_304_want[][2] = {
	{"Content-Length", "10"},
	{"ETag", "\"1\""},
	{"Content-Encoding", "gzip"},
	{"X-Keep", "k"},
	{"X-A", "new"},
	{"Date", NULL},
	{"Cache-Control", "max-age=3600"},
	{"Set-Cookie", "a=c"},
	{"Content-Type", "text/html"},
};

static void test_merge_304(void **state)
{
	struct http_header out[MSG_MAX];
	struct msg ms, mf;
	int n;

	build(&ms, "Content-Type: text/plain\nContent-Length: 10\n"
		   "ETag: \"1\"\nX-A: old\nX-A: older\nDate: {0}\nAge: 5\n"
		   "Content-Encoding: gzip\nX-Keep: k\n"
		   "Cache-Control: max-age=1");
	build(&mf, "X-A: new\nContent-Length: 0\nDate: {100}\n"
		   "Content-Encoding: br\nConnection: close, X-Hop\n"
		   "X-Hop: 1\nCache-Control: max-age=3600\nSet-Cookie: a=c\n"
		   "Content-Type: text/html\nTransfer-Encoding: chunked");
	n = cache_merge_fields(ms.h, ms.n, mf.h, mf.n, out, MSG_MAX);
	assert_int_equal(n, (int)UTIL_ARRAY_LEN(merge_304_want));
	for (int i = 0; i < n; i++) {
		CHECK(slice_is(out[i].name, merge_304_want[i][0]), "field %d",
		      i);
		if (merge_304_want[i][1])
			CHECK(slice_is(out[i].value, merge_304_want[i][1]),
			      "value %d", i);
	}
	/* The 304's Date, not the stored one. */
	assert_ptr_equal(out[5].value.ptr, mf.h[2].value.ptr);
	assert_int_equal(cache_merge_fields(ms.h, ms.n, mf.h, mf.n, out, 3),
			 -ENOSPC);
	assert_int_equal(cache_merge_fields(ms.h, ms.n, mf.h, mf.n, out, 5),
			 -ENOSPC);
}

static void test_merge_keeps_stored_when_omitted(void **state)
{
	struct http_header out[MSG_MAX];
	struct msg ms, mf;
	int n;

	/* 304-lm-use-stored-Test-Header; a 304 without Date drops ours. */
	build(&ms, "Test-Header: A\nDate: {0}\nAge: 3\n"
		   "Last-Modified: {-100}\nCache-Control: max-age=1");
	build(&mf, "Cache-Control: max-age=3600\nLast-Modified: {-100}\n"
		   "Age: 1");
	n = cache_merge_fields(ms.h, ms.n, mf.h, mf.n, out, MSG_MAX);
	assert_int_equal(n, 4);
	assert_true(slice_is(out[0].name, "Test-Header"));
	assert_true(slice_is(out[0].value, "A"));
	assert_true(slice_is(out[1].name, "Cache-Control"));
	assert_true(slice_is(out[2].name, "Last-Modified"));
	assert_true(slice_is(out[3].name, "Age"));
	assert_true(slice_is(out[3].value, "1"));
}

struct select_row {
	const char *stored;
	const char *fresh;
	bool only;
	bool want;
};

static const struct select_row selects_304_rows[] = {
	{"ETag: \"a\"", "ETag: \"a\"", false, true},
	{"ETag: \"a\"", "ETag: \"b\"", true, false},
	{"ETag: W/\"a\"", "ETag: \"a\"", true, false},
	{"ETag: W/\"a\"", "ETag: W/\"a\"", false, true},
	{"ETag: \"a\"", "ETag: W/\"a\"", false, true},
	{"Last-Modified: {0}", "ETag: \"a\"", true, false},
	{"Last-Modified: {0}", "Last-Modified: {0}", false, true},
	{"Last-Modified: {0}", "Last-Modified: {1}", true, false},
	{"ETag: \"a\"\nLast-Modified: {0}", "Last-Modified: {0}", false, true},
	{"ETag: \"a\"", "Date: {0}", true, true},
	{"ETag: \"a\"", "Date: {0}", false, false},
	{"Date: {0}", "Date: {0}", true, true},
};

static void test_304_selects(void **state)
{
	for (size_t i = 0; i < UTIL_ARRAY_LEN(selects_304_rows); i++) {
		struct cache_entry e;
		struct msg ms, mf;
		bool got;

		build(&ms, selects_304_rows[i].stored);
		build(&mf, selects_304_rows[i].fresh);
		e = entry(&ms, 200, 0, 0);
		got = cache_304_selects(&e, mf.h, mf.n,
					selects_304_rows[i].only);
		CHECK(got == selects_304_rows[i].want, "row %zu: %d", i, got);
		rows_checked++;
	}
}

static const struct {
	const char *head;
	bool want;
} head_updates_rows[] = {
	{"ETag: \"a\"\nContent-Length: 10", true},
	{"ETag: \"a\"", true},
	{"", true},
	{"ETag: \"b\"", false},
	{"ETag: \"a\"\nContent-Length: 11", false},
	{"Content-Length: x", false},
	{"Last-Modified: {0}", true},
	{"Last-Modified: {1}", false},
};

static void test_head_updates(void **state)
{
	struct cache_entry e;
	struct msg ms, mh;

	build(&ms, "ETag: \"a\"\nLast-Modified: {0}\nContent-Length: 10");
	e = entry(&ms, 200, 0, 0);
	for (size_t i = 0; i < UTIL_ARRAY_LEN(head_updates_rows); i++) {
		build(&mh, head_updates_rows[i].head);
		CHECK(cache_head_updates(&e, mh.h, mh.n, 10) ==
			      head_updates_rows[i].want,
		      "row %zu", i);
		rows_checked++;
	}
}

/* ---- invalidation ---- */

static const struct {
	const char *method;
	int status;
	bool want;
} invalidates_rows[] = {
	{"POST", 200, true},	 {"POST", 201, true},	{"POST", 303, true},
	{"POST", 304, true},	 {"POST", 404, false},	{"POST", 500, false},
	{"POST", 100, false},	 {"PUT", 201, true},	{"DELETE", 204, true},
	{"PATCH", 200, true},	 {"PURGEX", 200, true}, {"M-SEARCH", 200, true},
	{"post", 200, true},	 {"GET", 200, false},	{"HEAD", 200, false},
	{"OPTIONS", 200, false}, {"TRACE", 200, false},
};

static void test_invalidates(void **state)
{
	for (size_t i = 0; i < UTIL_ARRAY_LEN(invalidates_rows); i++) {
		bool got = cache_invalidates(sl(invalidates_rows[i].method),
					     invalidates_rows[i].status);
		CHECK(got == invalidates_rows[i].want, "%s %d",
		      invalidates_rows[i].method, invalidates_rows[i].status);
		rows_checked++;
	}
}

static const struct {
	const char *ref;
	int rc; /* 0: want the key */
	const char *key;
} invalidation_keys_rows[] = {
	{"/x", 0, "http://example.com:8080/x"},
	{"/x?y#frag", 0, "http://example.com:8080/x?y"},
	{"http://example.com:8080/y", 0, "http://example.com:8080/y"},
	{"HTTP://EXAMPLE.com:8080/y", 0, "http://example.com:8080/y"},
	{"http://example.com/y", -EXDEV, NULL},
	{"https://example.com:8080/y", -EXDEV, NULL},
	{"http://other.example:8080/y", -EXDEV, NULL},
	{"//example.com:8080/z", 0, "http://example.com:8080/z"},
	{"//other:8080/z", -EXDEV, NULL},
	{"c", 0, "http://example.com:8080/a/c"},
	{"c/d?e", 0, "http://example.com:8080/a/c/d?e"},
	{"?r", 0, "http://example.com:8080/a/b?r"},
	{"#f", 0, "http://example.com:8080/a/b?q=/z"},
	{"../x", -EINVAL, NULL},
	{"/a/./x", -EINVAL, NULL},
	{"mailto:a@example.com", -EINVAL, NULL},
};

static void test_invalidation_keys(void **state)
{
	struct http_url target;
	const char *t = "http://Example.com:8080/a/b?q=/z";
	char key[256];

	assert_int_equal(http_parse_url(t, strlen(t), &target), 0);
	for (size_t i = 0; i < UTIL_ARRAY_LEN(invalidation_keys_rows); i++) {
		int rc = cache_invalidation_key(
			&target, sl(invalidation_keys_rows[i].ref), key,
			sizeof(key));
		if (invalidation_keys_rows[i].rc == 0)
			CHECK(rc > 0 && strcmp(key,
					       invalidation_keys_rows[i].key) ==
						0,
			      "%s: %d %s", invalidation_keys_rows[i].ref, rc,
			      key);
		else
			CHECK(rc == invalidation_keys_rows[i].rc, "%s: %d",
			      invalidation_keys_rows[i].ref, rc);
		rows_checked++;
	}
}

/* ---- key ---- */

static const struct {
	const char *url;
	const char *key;
} key_table_rows[] = {
	{"http://Example.COM/a", "http://example.com/a"},
	{"HTTP://example.com:80/a", "http://example.com/a"},
	{"http://example.com:8080/a", "http://example.com:8080/a"},
	{"https://example.com:443/", "https://example.com/"},
	{"https://example.com:80/", "https://example.com:80/"},
	{"http://example.com:443/", "http://example.com:443/"},
	{"http://example.com", "http://example.com/"},
	{"http://example.com#frag", "http://example.com/"},
	{"http://example.com/A/B?C=D", "http://example.com/A/B?C=D"},
	{"http://example.com/a%2Fb", "http://example.com/a%2Fb"},
	{"http://example.com/a/../b", "http://example.com/a/../b"},
	{"http://[::1]:8080/x", "http://[::1]:8080/x"},
	{"http://[::1]/x", "http://[::1]/x"},
	{"http://user:pw@example.com/", "http://example.com/"},
	{"http://127.0.0.1:8000/p?q", "http://127.0.0.1:8000/p?q"},
};

static void test_key_table(void **state)
{
	char key[256];

	for (size_t i = 0; i < UTIL_ARRAY_LEN(key_table_rows); i++) {
		struct http_url url;
		int rc;

		assert_int_equal(http_parse_url(key_table_rows[i].url,
						strlen(key_table_rows[i].url),
						&url),
				 0);
		rc = cache_key_build(&url, key, sizeof(key));
		CHECK(rc == (int)strlen(key_table_rows[i].key) &&
			      strcmp(key, key_table_rows[i].key) == 0,
		      "%s: %d %s", key_table_rows[i].url, rc, key);
		rows_checked++;
	}
}

static void test_key_errors(void **state)
{
	struct http_url url;
	char key[8];

	assert_int_equal(http_parse_url("http://example.com/long", 23, &url),
			 0);
	assert_int_equal(cache_key_build(&url, key, sizeof(key)), -ENOSPC);
	assert_int_equal(key[7], '\0');
	assert_int_equal(cache_key_build(&url, key, 0), -ENOSPC);
	memset(&url, 0, sizeof(url));
	assert_int_equal(cache_key_build(&url, key, sizeof(key)), -EINVAL);
}

static void hash_of(const char *key, char *hex)
{
	struct cache_hash h;

	cache_key_hash(key, strlen(key), &h);
	assert_int_equal(cache_hash_hex(&h, hex, CACHE_HASH_HEX), 32);
}

static const char *const key_hash_and_path_keys[] = {
	"http://h/a/b_c",
	"http://h/a/b/c",
	"http://h/a/b.c",
	"http://h/a/b_c/",
	"http://h:81/a/b_c",
	"https://h/a/b_c",
	"",
	"a",
	"b",
};

static void test_key_hash_and_path(void **state)
{
	char hex[9][CACHE_HASH_HEX], path[CACHE_PATH_LEN];
	struct cache_hash h;

	for (size_t i = 0; i < UTIL_ARRAY_LEN(key_hash_and_path_keys); i++) {
		hash_of(key_hash_and_path_keys[i], hex[i]);
		for (size_t j = 0; j < i; j++)
			CHECK(strcmp(hex[i], hex[j]) != 0, "%s ~ %s",
			      key_hash_and_path_keys[i],
			      key_hash_and_path_keys[j]);
		rows_checked++;
	}
	/* The on-disk names depend on it: it must never change. */
	hash_of("http://example.com/", hex[0]);
	cache_key_hash("http://example.com/", 19, &h);
	assert_int_equal(cache_key_path(&h, path, sizeof(path)), 38);
	assert_memory_equal(path, hex[0], 2);
	assert_int_equal(path[2], '/');
	assert_memory_equal(path + 3, hex[0] + 2, 2);
	assert_int_equal(path[5], '/');
	assert_string_equal(path + 6, hex[0]);
	for (size_t i = 0; path[i]; i++)
		assert_true(strchr("0123456789abcdef/", path[i]) != NULL);
	assert_int_equal(cache_key_path(&h, path, 10), -ENOSPC);
	hash_of("http://example.com/", hex[1]);
	assert_string_equal(hex[0], hex[1]);
	assert_string_equal(hex[0], "f239f15c74e4aff126560bdb797d85b4");
}

/* Flipping one input bit flips about half of the 128 output bits. */
static void test_key_hash_avalanche(void **state)
{
	char key[] = "http://example.com/some/path?query=1";
	size_t len = sizeof(key) - 1;
	struct cache_hash a, b;
	unsigned long total = 0, trials = 0;

	cache_key_hash(key, len, &a);
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			key[i] ^= (char)(1 << bit);
			cache_key_hash(key, len, &b);
			key[i] ^= (char)(1 << bit);
			int d = __builtin_popcountll(a.hi ^ b.hi) +
				__builtin_popcountll(a.lo ^ b.lo);
			assert_true(d >= 24); /* never a weak flip */
			total += (unsigned long)d;
			trials++;
		}
	}
	assert_in_range(total / trials, 58, 70);
}

/* ---- Cache-Status ---- */

static const struct {
	struct cache_status s;
	const char *want;
} cache_status_rows[] = {
	{{.hit = true, .has_ttl = true, .ttl = 3540},
	 "glassproxy; hit; ttl=3540"},
	{{.fwd = CACHE_FWD_STALE, .fwd_status = 304},
	 "glassproxy; fwd=stale; fwd-status=304"},
	{{.fwd = CACHE_FWD_URI_MISS, .stored = true},
	 "glassproxy; fwd=uri-miss; stored"},
	{{.fwd = CACHE_FWD_BYPASS}, "glassproxy; fwd=bypass"},
	{{.fwd = CACHE_FWD_VARY_MISS}, "glassproxy; fwd=vary-miss"},
	{{.fwd = CACHE_FWD_MISS, .detail = "no-store"},
	 "glassproxy; fwd=miss; detail=no-store"},
	{{.fwd = CACHE_FWD_MISS, .detail = "two words"},
	 "glassproxy; fwd=miss; detail=\"two words\""},
	{{.fwd = CACHE_FWD_MISS, .detail = "9lives"},
	 "glassproxy; fwd=miss; detail=\"9lives\""},
	{{.fwd = CACHE_FWD_MISS, .detail = "q\"b\\"},
	 "glassproxy; fwd=miss; detail=\"q\\\"b\\\\\""},
	{{.hit = true, .has_ttl = true, .ttl = -5}, "glassproxy; hit; ttl=-5"},
	{{.fwd = CACHE_FWD_METHOD}, "glassproxy; fwd=method"},
	{{.fwd = CACHE_FWD_REQUEST, .fwd_status = 200, .stored = true},
	 "glassproxy; fwd=request; fwd-status=200; stored"},
	{{.fwd = CACHE_FWD_MISS, .collapsed = true},
	 "glassproxy; fwd=miss; collapsed"},
	{{.fwd = CACHE_FWD_PARTIAL}, "glassproxy; fwd=partial"},
};

static void test_cache_status(void **state)
{
	char buf[128];

	for (size_t i = 0; i < UTIL_ARRAY_LEN(cache_status_rows); i++) {
		int n = cache_status_format("glassproxy",
					    &cache_status_rows[i].s, buf,
					    sizeof(buf));
		CHECK(n == (int)strlen(cache_status_rows[i].want) &&
			      strcmp(buf, cache_status_rows[i].want) == 0,
		      "want %s got %s", cache_status_rows[i].want, buf);
		rows_checked++;
	}
	assert_int_equal(cache_status_format("glassproxy",
					     &cache_status_rows[0].s, buf, 12),
			 -ENOSPC);
	assert_int_equal(cache_status_format("glassproxy",
					     &cache_status_rows[0].s, buf, 0),
			 -ENOSPC);
}

static void test_list_helpers(void **state)
{
	struct cache_list it;
	struct http_slice e;
	struct msg m;
	int64_t v;
	const char *want[] = {"a", "\"b, c\"", "d", "e"};
	size_t k = 0;

	build(&m, "X: a, \"b, c\",, \nY: z\nX: d,e");
	cache_list_init(&it, m.h, m.n, "x");
	while (cache_list_next(&it, &e)) {
		assert_true(k < 4);
		assert_true(slice_is(e, want[k]));
		k++;
	}
	assert_int_equal(k, 4);
	assert_int_equal(cache_delta_seconds(sl("0"), &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(cache_delta_seconds(sl("2147483648"), &v), 0);
	assert_int_equal(v, CACHE_DELTA_MAX);
	assert_int_equal(cache_delta_seconds(sl("2147483647"), &v), 0);
	assert_int_equal(v, 2147483647);
	assert_int_equal(cache_delta_seconds(sl(""), &v), -EINVAL);
	assert_int_equal(cache_delta_seconds(sl("+1"), &v), -EINVAL);
	assert_true(cache_is_hop_by_hop_name(sl("keep-alive")));
	assert_false(cache_is_hop_by_hop_name(sl("Age")));
}

static void test_rows_total(void **state)
{
	print_message("cache: %u table rows checked\n", rows_checked);
	assert_true(rows_checked >= 150);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_http_date_parse),
		cmocka_unit_test(test_http_date_rfc850_years),
		cmocka_unit_test(test_http_date_format_roundtrip),
		cmocka_unit_test(test_cc_response_directives),
		cmocka_unit_test(test_cc_field_lists),
		cmocka_unit_test(test_cc_request_directives),
		cmocka_unit_test(test_freshness_table),
		cmocka_unit_test(test_heuristic_without_lm_off),
		cmocka_unit_test(test_current_age_arithmetic),
		cmocka_unit_test(test_decide_table),
		cmocka_unit_test(test_decide_reasons),
		cmocka_unit_test(test_stale_if_error),
		cmocka_unit_test(test_storable_table),
		cmocka_unit_test(test_store_drops_fields),
		cmocka_unit_test(test_store_too_many_drops),
		cmocka_unit_test(test_vary_table),
		cmocka_unit_test(test_vary_serialize),
		cmocka_unit_test(test_conditional_table),
		cmocka_unit_test(test_if_range),
		cmocka_unit_test(test_etag_comparison),
		cmocka_unit_test(test_validators_and_304_fields),
		cmocka_unit_test(test_join_etags),
		cmocka_unit_test(test_random_input),
		cmocka_unit_test(test_range_table),
		cmocka_unit_test(test_content_range),
		cmocka_unit_test(test_merge_304),
		cmocka_unit_test(test_merge_keeps_stored_when_omitted),
		cmocka_unit_test(test_304_selects),
		cmocka_unit_test(test_head_updates),
		cmocka_unit_test(test_invalidates),
		cmocka_unit_test(test_invalidation_keys),
		cmocka_unit_test(test_key_table),
		cmocka_unit_test(test_key_errors),
		cmocka_unit_test(test_key_hash_and_path),
		cmocka_unit_test(test_key_hash_avalanche),
		cmocka_unit_test(test_cache_status),
		cmocka_unit_test(test_list_helpers),
		cmocka_unit_test(test_rows_total),
	};

	return cmocka_run_group_tests_name("cache", tests, NULL, NULL);
}
