/*
 * Unit tests of stats over the mock sys (its fake monotonic clock): the
 * counters, NULL safety, the request-rate history as the clock moves,
 * and the renderers: the Prometheus text validated line by line against
 * the exposition grammar (HELP, TYPE, samples, names, _total), the JSON
 * and the summary, and -ENOSPC when a buffer is too small.
 */
#include "sys_mock.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "glassproxy/stats.h"
#include "glassproxy/util.h"

static struct stats *new_stats(void)
{
	struct stats *st = NULL;

	sys_mock_set_clock(1000, 1700000000);
	assert_int_equal(stats_new(sys_mock(), &st), 0);
	return st;
}

static void test_counters_count(void **state)
{
	struct stats *st = new_stats();
	struct stats_snapshot s;

	(void)state;
	stats_connection_open(st);
	stats_connection_open(st);
	stats_connection_close(st);
	stats_request(st, "GET", 200, 78, 512);
	stats_request(st, "GET", 404, 70, 100);
	stats_request(st, "CONNECT", 200, 10, 20);
	stats_request(st, "BREW", 0, 5, 0);
	stats_request(st, NULL, 400, 5, 300);
	stats_tunnel_open(st);
	stats_tunnel_open(st);
	stats_tunnel_close(st);
	stats_denied(st, STATS_DENY_HOST);
	stats_denied(st, STATS_DENY_COUNT); /* out of range: ignored */
	stats_upstream_error(st, STATS_UP_REFUSED);
	stats_cache_hit(st);
	stats_cache_miss(st);
	stats_cache_miss(st);
	stats_cache_revalidated(st);
	stats_cache_stored(st, 4096);
	stats_cache_evicted(st, 1024);
	stats_cache_size(st, 3072, 1);
	sys_mock_advance_ms(2500);
	stats_snapshot(st, &s);
	assert_int_equal(s.uptime_s, 2);
	assert_int_equal(s.connections_total, 2);
	assert_int_equal(s.connections_active, 1);
	assert_int_equal(s.requests_total, 5);
	assert_int_equal(s.requests[STATS_GET], 2);
	assert_int_equal(s.requests[STATS_CONNECT], 1);
	assert_int_equal(s.requests[STATS_OTHER], 2);
	assert_int_equal(s.responses[0], 1);
	assert_int_equal(s.responses[2], 2);
	assert_int_equal(s.responses[4], 2);
	assert_int_equal(s.bytes_in, 168);
	assert_int_equal(s.bytes_out, 932);
	assert_int_equal(s.tunnels_total, 2);
	assert_int_equal(s.tunnels_active, 1);
	assert_int_equal(s.denied[STATS_DENY_HOST], 1);
	assert_int_equal(s.upstream_errors[STATS_UP_REFUSED], 1);
	assert_int_equal(s.cache_hits, 1);
	assert_int_equal(s.cache_misses, 2);
	assert_int_equal(s.cache_revalidations, 1);
	assert_int_equal(s.cache_stores, 1);
	assert_int_equal(s.cache_bytes_stored, 4096);
	assert_int_equal(s.cache_evictions, 1);
	assert_int_equal(s.cache_bytes_evicted, 1024);
	assert_int_equal(s.cache_size_bytes, 3072);
	assert_int_equal(s.cache_entries, 1);
	assert_int_equal(s.faults_injected, 0); /* no fault sys */
	stats_free(st);
}

static void test_null_stats_is_a_no_op(void **state)
{
	struct stats_snapshot s;

	(void)state;
	stats_connection_open(NULL);
	stats_request(NULL, "GET", 200, 1, 1);
	stats_cache_stored(NULL, 1);
	stats_cache_size(NULL, 1, 1);
	stats_snapshot(NULL, &s);
	assert_int_equal(s.requests_total, 0);
	stats_free(NULL);
}

static void test_method_names(void **state)
{
	(void)state;
	for (int i = 0; i < STATS_OTHER; i++)
		assert_int_equal(stats_method_of(stats_method_name(
					 (enum stats_method)i)),
				 i);
	assert_int_equal(stats_method_of("get"), STATS_OTHER); /* exact */
	assert_int_equal(stats_method_of(NULL), STATS_OTHER);
}

/* The history: the newest slot last, old ones rolling off the left. */
static void test_rate_history_follows_the_clock(void **state)
{
	struct stats *st = new_stats();
	struct stats_snapshot s;

	(void)state;
	stats_request(st, "GET", 200, 0, 0);
	stats_request(st, "GET", 200, 0, 0);
	stats_snapshot(st, &s);
	assert_int_equal(s.rate[STATS_RATE_SLOTS - 1], 2);
	sys_mock_advance_ms(STATS_RATE_SLOT_S * 1000);
	stats_request(st, "GET", 200, 0, 0);
	stats_snapshot(st, &s);
	assert_int_equal(s.rate[STATS_RATE_SLOTS - 1], 1);
	assert_int_equal(s.rate[STATS_RATE_SLOTS - 2], 2);
	/* a whole history later the old counts are gone, not wrapped in */
	sys_mock_advance_ms((int64_t)STATS_RATE_SLOTS * STATS_RATE_SLOT_S *
			    1000);
	stats_snapshot(st, &s);
	for (int i = 0; i < STATS_RATE_SLOTS; i++)
		assert_int_equal(s.rate[i], 0);
	stats_request(st, "GET", 200, 0, 0);
	stats_snapshot(st, &s);
	assert_int_equal(s.rate[STATS_RATE_SLOTS - 1], 1);
	stats_free(st);
}

/* ---- the Prometheus text exposition format, line by line ---- */

static bool metric_name(const char *p, size_t len)
{
	if (len == 0 ||
	    !(isalpha((unsigned char)p[0]) || p[0] == '_' || p[0] == ':'))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!(isalnum((unsigned char)p[i]) || p[i] == '_' ||
		      p[i] == ':'))
			return false;
	return true;
}

/* {name="value",...}: true when well formed; *end after the '}'. */
static bool labels(const char *p, const char **end)
{
	p++; /* '{' */
	while (*p != '}') {
		const char *eq = strchr(p, '=');

		if (!eq || !metric_name(p, (size_t)(eq - p)) || eq[1] != '"')
			return false;
		for (p = eq + 2; *p != '"'; p++)
			if (*p == '\0' || *p == '\n' ||
			    (*p == '\\' && p[1] == '\0'))
				return false;
			else if (*p == '\\')
				p++;
		p++;
		if (*p == ',')
			p++;
		else if (*p != '}')
			return false;
	}
	*end = p + 1;
	return true;
}

static bool number(const char *p)
{
	if (*p == '\0')
		return false;
	for (; *p; p++)
		if (!isdigit((unsigned char)*p) && *p != '.' && *p != 'e' &&
		    *p != '-' && *p != '+')
			return false;
	return true;
}

struct family {
	char name[128];
	char type[16];
	bool help;
};

/* One line against the grammar and the family it belongs to. */
static void check_line(char *line, struct family *fam, int *samples)
{
	char name[128], type[16];

	if (strncmp(line, "# HELP ", 7) == 0) {
		assert_int_equal(sscanf(line + 7, "%127s", name), 1);
		assert_true(metric_name(name, strlen(name)));
		assert_true(strlen(line + 7) > strlen(name) + 1); /* a text */
		memset(fam, 0, sizeof(*fam));
		util_format(fam->name, sizeof(fam->name), "%s", name);
		fam->help = true;
		return;
	}
	if (strncmp(line, "# TYPE ", 7) == 0) {
		assert_int_equal(sscanf(line + 7, "%127s %15s", name, type), 2);
		assert_string_equal(name, fam->name); /* HELP came first */
		assert_true(strcmp(type, "counter") == 0 ||
			    strcmp(type, "gauge") == 0);
		util_format(fam->type, sizeof(fam->type), "%s", type);
		return;
	}
	assert_true(line[0] != '#');
	size_t n = strcspn(line, "{ ");
	const char *rest = line + n;
	assert_true(metric_name(line, n));
	assert_true(fam->help && fam->type[0]); /* HELP and TYPE first */
	assert_int_equal(n, strlen(fam->name));
	assert_memory_equal(line, fam->name, n);
	if (*rest == '{')
		assert_true(labels(rest, &rest));
	assert_true(*rest == ' ');
	assert_true(number(rest + 1));
	(*samples)++;
}

static void test_prometheus_output_follows_the_grammar(void **state)
{
	struct stats *st = new_stats();
	struct stats_snapshot s;
	static char text[64 * 1024];
	struct family fam = {0};
	char *line, *nl;
	int samples = 0, types = 0;

	(void)state;
	stats_request(st, "GET", 200, 1, 2);
	stats_snapshot(st, &s);
	assert_true(stats_render_prometheus(&s, text, sizeof(text)) > 0);
	assert_true(text[strlen(text) - 1] == '\n');
	for (line = text; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
		*nl = '\0';
		assert_true(line[0] != '\0'); /* no blank lines */
		assert_int_equal(strncmp(line + (line[0] == '#' ? 7 : 0),
					 "glassproxy_", 11),
				 0);
		if (strncmp(line, "# TYPE ", 7) == 0) {
			types++;
			if (strstr(line, " counter"))
				assert_non_null(strstr(line, "_total counter"));
		}
		check_line(line, &fam, &samples);
	}
	assert_true(types >= 20);
	assert_true(samples > types);
	stats_free(st);
}

static void test_prometheus_values(void **state)
{
	struct stats *st = new_stats();
	struct stats_snapshot s;
	static char text[64 * 1024];

	(void)state;
	stats_request(st, "GET", 200, 1, 2);
	stats_request(st, "GET", 503, 1, 2);
	stats_denied(st, STATS_DENY_PORT);
	stats_snapshot(st, &s);
	stats_render_prometheus(&s, text, sizeof(text));
	assert_non_null(strstr(
		text, "\nglassproxy_requests_total{method=\"GET\"} 2\n"));
	assert_non_null(strstr(
		text, "\nglassproxy_responses_total{class=\"5xx\"} 1\n"));
	assert_non_null(strstr(
		text, "\nglassproxy_denials_total{reason=\"port\"} 1\n"));
	assert_non_null(strstr(text, "\nglassproxy_sent_bytes_total 4\n"));
	stats_free(st);
}

static void test_json_and_summary(void **state)
{
	struct stats *st = new_stats();
	struct stats_snapshot s;
	char text[8192];

	(void)state;
	stats_connection_open(st);
	stats_request(st, "POST", 201, 10, 20);
	stats_snapshot(st, &s);
	assert_true(stats_render_json(&s, text, sizeof(text)) > 0);
	assert_int_equal(text[0], '{');
	assert_int_equal(text[strlen(text) - 1], '}');
	assert_non_null(strstr(text, "\"requests_total\":1,"));
	assert_non_null(strstr(text, "\"POST\":1"));
	assert_non_null(strstr(text, "\"2xx\":1"));
	assert_non_null(strstr(text, ",1]}"));
	assert_true(stats_render_summary(&s, text, sizeof(text)) > 0);
	assert_non_null(strstr(text, "1 connections, 1 requests (2xx 1,"));
	stats_free(st);
}

static void test_small_buffers_say_enospc(void **state)
{
	struct stats *st = new_stats();
	struct stats_snapshot s;
	char text[64];

	(void)state;
	stats_snapshot(st, &s);
	assert_int_equal(stats_render_prometheus(&s, text, sizeof(text)),
			 -ENOSPC);
	assert_true(strlen(text) < sizeof(text));
	assert_int_equal(stats_render_json(&s, text, sizeof(text)), -ENOSPC);
	assert_int_equal(stats_render_summary(&s, text, 10), -ENOSPC);
	assert_int_equal(stats_render_summary(&s, text, 0), -ENOSPC);
	stats_free(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counters_count),
		cmocka_unit_test(test_null_stats_is_a_no_op),
		cmocka_unit_test(test_method_names),
		cmocka_unit_test(test_rate_history_follows_the_clock),
		cmocka_unit_test(test_prometheus_output_follows_the_grammar),
		cmocka_unit_test(test_prometheus_values),
		cmocka_unit_test(test_json_and_summary),
		cmocka_unit_test(test_small_buffers_say_enospc),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
