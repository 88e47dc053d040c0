/*
 * Unit tests of util: bounded copies and formatting, strict decimal parsing,
 * case-insensitive comparison, trimming, and the two time formats against
 * timestamps whose text is known (leap days, 2038, 2100, before 1970).
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "glassproxy/util.h"

/* ---- util_copy ---- */

static void test_copy_fits_and_terminates(void **state)
{
	char dst[8];

	(void)state;
	memset(dst, 'x', sizeof(dst));
	assert_int_equal(util_copy(dst, sizeof(dst), "abc", 3), 3);
	assert_string_equal(dst, "abc");
}

static void test_copy_takes_len_bytes_of_unterminated_source(void **state)
{
	char dst[8];

	(void)state;
	assert_int_equal(util_copy(dst, sizeof(dst), "abcdef", 2), 2);
	assert_string_equal(dst, "ab");
	assert_int_equal(util_copy(dst, sizeof(dst), "abc", 0), 0);
	assert_string_equal(dst, "");
}

static void test_copy_largest_fit_is_cap_minus_one(void **state)
{
	char dst[4];

	(void)state;
	assert_int_equal(util_copy(dst, sizeof(dst), "abc", 3), 3);
	assert_string_equal(dst, "abc");
}

static void test_copy_exact_fit_fails_enospc_and_empties_dst(void **state)
{
	char dst[3] = {'x', 'x', 'x'};

	(void)state;
	assert_int_equal(util_copy(dst, sizeof(dst), "abc", 3), -ENOSPC);
	assert_int_equal(dst[0], '\0');
}

static void test_copy_cap_zero_fails_without_writing(void **state)
{
	char dst[1] = {'x'};

	(void)state;
	assert_int_equal(util_copy(dst, 0, "", 0), -ENOSPC);
	assert_int_equal(dst[0], 'x');
}

/* ---- util_format ---- */

static void test_format_fits_returns_length(void **state)
{
	char dst[16];

	(void)state;
	assert_int_equal(util_format(dst, sizeof(dst), "hello %d", 42), 8);
	assert_string_equal(dst, "hello 42");
}

static void test_format_exact_fit_with_nul(void **state)
{
	char dst[9];

	(void)state;
	assert_int_equal(util_format(dst, sizeof(dst), "hello %d", 42), 8);
	assert_string_equal(dst, "hello 42");
}

static void test_format_truncation_is_enospc_and_terminated(void **state)
{
	char dst[8];

	(void)state;
	assert_int_equal(util_format(dst, sizeof(dst), "hello %d", 42),
			 -ENOSPC);
	assert_string_equal(dst, "hello 4");
}

static void test_format_cap_zero_is_enospc(void **state)
{
	char dst[1] = {'x'};

	(void)state;
	assert_int_equal(util_format(dst, 0, "%s", "a"), -ENOSPC);
	assert_int_equal(dst[0], 'x');
}

/* ---- util_parse_u64 ---- */

struct u64_case {
	const char *text;
	uint64_t max;
	int rc;
	uint64_t value; /* when rc == 0 */
};

static void test_parse_u64_table(void **state)
{
	static const struct u64_case cases[] = {
		{"0", UINT64_MAX, 0, 0},
		{"7", UINT64_MAX, 0, 7},
		{"1234567890", UINT64_MAX, 0, 1234567890ULL},
		{"000000000000000000000000042", UINT64_MAX, 0, 42},
		{"0000", 0, 0, 0},
		{"18446744073709551615", UINT64_MAX, 0, UINT64_MAX},
		{"018446744073709551615", UINT64_MAX, 0, UINT64_MAX},
		{"18446744073709551616", UINT64_MAX, -ERANGE, 0},
		{"18446744073709551620", UINT64_MAX, -ERANGE, 0},
		{"99999999999999999999", UINT64_MAX, -ERANGE, 0},
		{"184467440737095516150", UINT64_MAX, -ERANGE, 0},
		{"65535", 65535, 0, 65535},
		{"65536", 65535, -ERANGE, 0},
		{"65540", 65535, -ERANGE, 0},
		{"100000", 65535, -ERANGE, 0},
		{"10", 10, 0, 10},
		{"11", 10, -ERANGE, 0},
		{"", UINT64_MAX, -EINVAL, 0},
		{"a", UINT64_MAX, -EINVAL, 0},
		{"12a", UINT64_MAX, -EINVAL, 0},
		{"-1", UINT64_MAX, -EINVAL, 0},
		{"+1", UINT64_MAX, -EINVAL, 0},
		{" 1", UINT64_MAX, -EINVAL, 0},
		{"1 ", UINT64_MAX, -EINVAL, 0},
		{"0x10", UINT64_MAX, -EINVAL, 0},
		{"1.5", UINT64_MAX, -EINVAL, 0},
	};

	(void)state;
	for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++) {
		const struct u64_case *c = &cases[i];
		uint64_t out = 0xdeadbeef;
		int rc = util_parse_u64(c->text, strlen(c->text), c->max, &out);

		if (rc != c->rc)
			fail_msg("'%s' max %llu: rc %d, want %d", c->text,
				 (unsigned long long)c->max, rc, c->rc);
		if (c->rc == 0 && out != c->value)
			fail_msg("'%s': %llu, want %llu", c->text,
				 (unsigned long long)out,
				 (unsigned long long)c->value);
		if (c->rc != 0 && out != 0xdeadbeef)
			fail_msg("'%s': *out written on failure", c->text);
	}
}

static void test_parse_u64_reads_only_len_bytes(void **state)
{
	uint64_t out = 0;

	(void)state;
	assert_int_equal(util_parse_u64("123x", 3, UINT64_MAX, &out), 0);
	assert_int_equal(out, 123);
	assert_int_equal(util_parse_u64("123", 0, UINT64_MAX, &out), -EINVAL);
}

static void test_parse_u64_single_digit_above_small_max_is_erange(void **state)
{
	uint64_t out = 0xdeadbeef;

	(void)state;
	assert_int_equal(util_parse_u64("9", 1, 5, &out), -ERANGE);
	assert_int_equal(util_parse_u64("1", 1, 0, &out), -ERANGE);
	assert_int_equal(util_parse_u64("3", 1, 2, &out), -ERANGE);
	assert_int_equal(out, 0xdeadbeef);
	assert_int_equal(util_parse_u64("2", 1, 2, &out), 0);
	assert_int_equal(out, 2);
}

/* ---- util_ieq ---- */

static void test_ieq_table(void **state)
{
	static const struct {
		const char *a, *b;
		bool equal;
	} cases[] = {
		{"", "", true},
		{"abc", "abc", true},
		{"Host", "hOST", true},
		{"CONTENT-LENGTH", "content-length", true},
		{"a1-_Z", "A1-_z", true},
		{"abc", "abd", false},
		{"abc", "ab", false},
		{"ab", "abc", false},
		{"", "a", false},
		/* only ASCII letters fold: '@' is not '`', '[' is not '{' */
		{"@", "`", false},
		{"[", "{", false},
		{"\xc3\x84", "\xc3\xa4", false},
	};

	(void)state;
	for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++) {
		bool eq = util_ieq(cases[i].a, strlen(cases[i].a), cases[i].b,
				   strlen(cases[i].b));
		if (eq != cases[i].equal)
			fail_msg("ieq('%s', '%s') = %d", cases[i].a, cases[i].b,
				 eq);
	}
}

static void test_ieq_compares_only_given_lengths(void **state)
{
	(void)state;
	assert_true(util_ieq("abcX", 3, "ABCY", 3));
	assert_false(util_ieq("abc", 3, "abc", 2));
}

static void test_lower_is_ascii_only(void **state)
{
	(void)state;
	assert_int_equal(util_lower('A'), 'a');
	assert_int_equal(util_lower('Z'), 'z');
	assert_int_equal(util_lower('a'), 'a');
	assert_int_equal(util_lower('@'), '@');
	assert_int_equal(util_lower('['), '[');
	assert_int_equal(util_lower((char)0xc4), (char)0xc4);
}

/* ---- util_trim ---- */

static void test_trim_table(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"", ""},
		{"a", "a"},
		{"  a", "a"},
		{"a  ", "a"},
		{" \t a b \t ", "a b"},
		{"\t\t", ""},
		{"   ", ""},
		{"a\n", "a\n"},
		{"\ra\r", "\ra\r"},
	};

	(void)state;
	for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++) {
		const char *s = cases[i].in;
		size_t len = strlen(s);

		util_trim(&s, &len);
		if (len != strlen(cases[i].out) ||
		    memcmp(s, cases[i].out, len) != 0)
			fail_msg("trim('%s') = '%.*s', want '%s'", cases[i].in,
				 (int)len, s, cases[i].out);
		if (len > 0 && (s < cases[i].in ||
				s + len > cases[i].in + strlen(cases[i].in)))
			fail_msg("trim('%s') left the input", cases[i].in);
	}
}

/* ---- time formats ---- */

struct time_case {
	long long sec;
	long nsec;
	const char *iso, *http;
};

static const struct time_case time_cases[] = {
	{0, 0, "1970-01-01T00:00:00.000Z", "Thu, 01 Jan 1970 00:00:00 GMT"},
	{951782400, 0, "2000-02-29T00:00:00.000Z",
	 "Tue, 29 Feb 2000 00:00:00 GMT"},
	{951868800, 0, "2000-03-01T00:00:00.000Z",
	 "Wed, 01 Mar 2000 00:00:00 GMT"},
	{1700000000, 123000000, "2023-11-14T22:13:20.123Z",
	 "Tue, 14 Nov 2023 22:13:20 GMT"},
	{2147483647, 0, "2038-01-19T03:14:07.000Z",
	 "Tue, 19 Jan 2038 03:14:07 GMT"},
	{2147483648LL, 0, "2038-01-19T03:14:08.000Z",
	 "Tue, 19 Jan 2038 03:14:08 GMT"},
	/* 2100 is not a leap year: 28 February is followed by 1 March */
	{4107542399LL, 999999999, "2100-02-28T23:59:59.999Z",
	 "Sun, 28 Feb 2100 23:59:59 GMT"},
	{4107542400LL, 0, "2100-03-01T00:00:00.000Z",
	 "Mon, 01 Mar 2100 00:00:00 GMT"},
	{-1, 0, "1969-12-31T23:59:59.000Z", "Wed, 31 Dec 1969 23:59:59 GMT"},
	{-1, 500000000, "1969-12-31T23:59:59.500Z",
	 "Wed, 31 Dec 1969 23:59:59 GMT"},
	{-86400, 0, "1969-12-31T00:00:00.000Z",
	 "Wed, 31 Dec 1969 00:00:00 GMT"},
	{-86401, 0, "1969-12-30T23:59:59.000Z",
	 "Tue, 30 Dec 1969 23:59:59 GMT"},
	{-2208988800LL, 0, "1900-01-01T00:00:00.000Z",
	 "Mon, 01 Jan 1900 00:00:00 GMT"},
	{253402300799LL, 1000000, "9999-12-31T23:59:59.001Z",
	 "Fri, 31 Dec 9999 23:59:59 GMT"},
};

static void test_format_time_iso_known_timestamps(void **state)
{
	char buf[64];

	(void)state;
	for (size_t i = 0; i < UTIL_ARRAY_LEN(time_cases); i++) {
		const struct time_case *c = &time_cases[i];
		struct timespec t = {.tv_sec = (time_t)c->sec,
				     .tv_nsec = c->nsec};
		int n = util_format_time_iso(&t, buf, sizeof(buf));

		if (n != (int)strlen(c->iso) || strcmp(buf, c->iso) != 0)
			fail_msg("%lld.%09ld: '%s' (%d), want '%s'", c->sec,
				 c->nsec, buf, n, c->iso);
	}
}

static void test_format_http_date_known_timestamps(void **state)
{
	char buf[64];

	(void)state;
	for (size_t i = 0; i < UTIL_ARRAY_LEN(time_cases); i++) {
		const struct time_case *c = &time_cases[i];
		int n = util_format_http_date((time_t)c->sec, buf, sizeof(buf));

		if (n != (int)strlen(c->http) || strcmp(buf, c->http) != 0)
			fail_msg("%lld: '%s' (%d), want '%s'", c->sec, buf, n,
				 c->http);
	}
}

static void test_format_time_iso_every_day_of_a_leap_year(void **state)
{
	/* 2024: walk day by day and check month lengths add up. */
	static const int month_days[12] = {31, 29, 31, 30, 31, 30,
					   31, 31, 30, 31, 30, 31};
	const long long jan1 = 1704067200LL; /* 2024-01-01 */
	char buf[32], want[32];
	long long day = 0;

	(void)state;
	for (int m = 0; m < 12; m++) {
		for (int d = 1; d <= month_days[m]; d++, day++) {
			struct timespec t = {
				.tv_sec = (time_t)(jan1 + day * 86400 + 43200)};
			util_format_time_iso(&t, buf, sizeof(buf));
			util_format(want, sizeof(want),
				    "2024-%02d-%02dT12:00:00.000Z", m + 1, d);
			assert_string_equal(buf, want);
		}
	}
	assert_int_equal(day, 366);
}

static void test_format_time_small_buffer_is_enospc(void **state)
{
	struct timespec t = {.tv_sec = 0};
	char buf[32];

	(void)state;
	/* "1970-01-01T00:00:00.000Z" is 24 characters */
	assert_int_equal(util_format_time_iso(&t, buf, 25), 24);
	assert_int_equal(util_format_time_iso(&t, buf, 24), -ENOSPC);
	/* "Thu, 01 Jan 1970 00:00:00 GMT" is 29 characters */
	assert_int_equal(util_format_http_date(0, buf, 30), 29);
	assert_int_equal(util_format_http_date(0, buf, 29), -ENOSPC);
}

/* The hand-made number formatters agree with printf, edges included. */
static void test_format_u64_and_hex64_match_printf(void **state)
{
	static const uint64_t values[] = {
		0,	   1,	  9,	      10,	  99,
		100,	   65535, 1000000007, UINT32_MAX, UINT64_MAX - 1,
		UINT64_MAX};
	char got[32], want[32];

	(void)state;
	for (size_t i = 0; i < UTIL_ARRAY_LEN(values); i++) {
		int n = snprintf(want, sizeof(want), "%llu",
				 (unsigned long long)values[i]);

		assert_int_equal(util_format_u64(got, sizeof(got), values[i]),
				 n);
		assert_string_equal(got, want);
		snprintf(want, sizeof(want), "%016llx",
			 (unsigned long long)values[i]);
		assert_int_equal(util_format_hex64(got, sizeof(got), values[i]),
				 16);
		assert_string_equal(got, want);
	}
	/* Exactly the digits and the NUL fit; one byte less does not. */
	assert_int_equal(util_format_u64(got, 4, 999), 3);
	assert_int_equal(util_format_u64(got, 3, 999), -ENOSPC);
	assert_int_equal(util_format_u64(got, 1, 0), -ENOSPC);
	assert_int_equal(util_format_hex64(got, 17, 1), 16);
	assert_int_equal(util_format_hex64(got, 16, 1), -ENOSPC);
}

static void test_format_i64_matches_printf(void **state)
{
	static const int64_t values[] = {
		0,	  1,	  -1,	     9,		-10,
		99,	  -65535, INT32_MIN, INT64_MAX, INT64_MIN + 1,
		INT64_MIN};
	char got[32], want[32];

	(void)state;
	for (size_t i = 0; i < UTIL_ARRAY_LEN(values); i++) {
		int n = snprintf(want, sizeof(want), "%lld",
				 (long long)values[i]);

		assert_int_equal(util_format_i64(got, sizeof(got), values[i]),
				 n);
		assert_string_equal(got, want);
	}
	assert_int_equal(util_format_i64(got, 3, -9), 2);
	assert_int_equal(util_format_i64(got, 2, -9), -ENOSPC);
	assert_int_equal(util_format_i64(got, 1, -9), -ENOSPC);
}

/* The two-digit table's edges: every number to 100,000, each power of ten
 * and its neighbours, and the largest. */
static void test_format_u64_matches_printf(void **state)
{
	char got[32], want[32];
	uint64_t p = 1;

	(void)state;
	for (uint64_t v = 0; v <= 100000; v++) {
		snprintf(want, sizeof(want), "%llu", (unsigned long long)v);
		assert_int_equal(util_format_u64(got, sizeof(got), v),
				 (int)strlen(want));
		assert_string_equal(got, want);
	}
	for (int i = 0; i < 20; i++, p *= 10)
		for (uint64_t v = p - 1; v <= p + 1; v++) {
			snprintf(want, sizeof(want), "%llu",
				 (unsigned long long)v);
			util_format_u64(got, sizeof(got), v);
			assert_string_equal(got, want);
		}
	assert_int_equal(util_format_u64(got, sizeof(got), UINT64_MAX), 20);
	assert_string_equal(got, "18446744073709551615");
	assert_int_equal(util_format_u64(got, 3, 99), 2);
	assert_int_equal(util_format_u64(got, 2, 99), -ENOSPC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_copy_fits_and_terminates),
		cmocka_unit_test(
			test_copy_takes_len_bytes_of_unterminated_source),
		cmocka_unit_test(test_copy_largest_fit_is_cap_minus_one),
		cmocka_unit_test(
			test_copy_exact_fit_fails_enospc_and_empties_dst),
		cmocka_unit_test(test_copy_cap_zero_fails_without_writing),
		cmocka_unit_test(test_format_fits_returns_length),
		cmocka_unit_test(test_format_exact_fit_with_nul),
		cmocka_unit_test(
			test_format_truncation_is_enospc_and_terminated),
		cmocka_unit_test(test_format_cap_zero_is_enospc),
		cmocka_unit_test(test_parse_u64_table),
		cmocka_unit_test(test_parse_u64_reads_only_len_bytes),
		cmocka_unit_test(
			test_parse_u64_single_digit_above_small_max_is_erange),
		cmocka_unit_test(test_ieq_table),
		cmocka_unit_test(test_ieq_compares_only_given_lengths),
		cmocka_unit_test(test_lower_is_ascii_only),
		cmocka_unit_test(test_trim_table),
		cmocka_unit_test(test_format_time_iso_known_timestamps),
		cmocka_unit_test(test_format_http_date_known_timestamps),
		cmocka_unit_test(test_format_time_iso_every_day_of_a_leap_year),
		cmocka_unit_test(test_format_time_small_buffer_is_enospc),
		cmocka_unit_test(test_format_u64_and_hex64_match_printf),
		cmocka_unit_test(test_format_i64_matches_printf),
		cmocka_unit_test(test_format_u64_matches_printf),
	};
	return cmocka_run_group_tests_name("util", tests, NULL, NULL);
}
