/*
 * Unit tests of log over the mock sys: the event and access line formats on
 * the fake clock, level filtering, escaping of bytes that could forge a
 * line, truncation, write errors counted and swallowed, every log_open
 * failure path releasing what it took, log_reopen, and log_reconfigure
 * (a reload's new paths and level: all or nothing).
 */
#include "sys_mock.h"

#include <errno.h>
#include <string.h>

#include "glassproxy/log.h"
#include "glassproxy/util.h"

#define EVENT_PATH  "/var/log/glassproxy/events.log"
#define ACCESS_PATH "/var/log/glassproxy/access.log"
#define EVENT_FD    10
#define ACCESS_FD   11
#define STAMP	    "2023-11-14T22:13:20.123Z "

/*
 * The mock's write captures bytes but not descriptors; wrap it so a test
 * can tell which file each line went to.
 */
static const struct sys_fs_ops *mock_fs;
static struct sys_fs_ops recording_fs;
static struct sys recording_sys;
static int write_fds[64];
static size_t n_writes;

static ssize_t recording_write(void *ctx, int fd, const void *buf, size_t len)
{
	assert_true(n_writes < UTIL_ARRAY_LEN(write_fds));
	write_fds[n_writes++] = fd;
	return mock_fs->write(ctx, fd, buf, len);
}

/* The mock sys with its wall clock at 2023-11-14T22:13:20.123Z. */
static struct sys *log_sys(void)
{
	struct sys *mock = sys_mock();

	sys_mock_set_clock(123, 1700000000);
	mock_fs = mock->fs;
	recording_fs = *mock->fs;
	recording_fs.write = recording_write;
	recording_sys = *mock;
	recording_sys.fs = &recording_fs;
	n_writes = 0;
	return &recording_sys;
}

static void will_open(const char *path, int rc)
{
	expect_string(mock_open, path, path);
	will_return(mock_open, rc);
}

/* Both files open at EVENT_FD and ACCESS_FD (access_path may be NULL). */
static struct log *open_logs(struct sys *sys, const char *access_path,
			     enum log_level level)
{
	struct log *log = NULL;

	will_open(EVENT_PATH, EVENT_FD);
	if (access_path)
		will_open(access_path, ACCESS_FD);
	assert_int_equal(log_open(sys, EVENT_PATH, access_path, level, &log),
			 0);
	assert_non_null(log);
	/* The tests written before the other formats use glassproxy's. */
	log_set_format(log, LOG_FORMAT_GLASSPROXY);
	return log;
}

/* Everything written since log_sys(), as a NUL-terminated string. */
static const char *written(void)
{
	static char copy[1 << 16];
	size_t len;
	const char *bytes = sys_mock_written(&len);

	assert_true(len < sizeof(copy));
	memcpy(copy, bytes, len);
	copy[len] = '\0';
	return copy;
}

static size_t written_len(void)
{
	size_t len;

	sys_mock_written(&len);
	return len;
}

/* ---- formats ---- */

static void test_event_line_format(void **state)
{
	struct sys *sys = log_sys();
	struct log *log = open_logs(sys, NULL, LOG_DEBUG);

	(void)state;
	will_write(SYS_MOCK_ALL);
	log_event(log, LOG_ERROR, "upstream %s refused", "127.0.0.1:9");
	assert_string_equal(written(),
			    STAMP "error upstream 127.0.0.1:9 refused\n");
	assert_int_equal(n_writes, 1);
	assert_int_equal(write_fds[0], EVENT_FD);
	log_close(log);
	assert_true(sys_mock_is_closed(EVENT_FD));
}

static void test_event_line_uses_the_clock_at_each_call(void **state)
{
	struct sys *sys = log_sys();
	struct log *log = open_logs(sys, NULL, LOG_INFO);

	(void)state;
	will_write(SYS_MOCK_ALL);
	log_event(log, LOG_INFO, "first");
	sys_mock_advance_ms(3600 * 1000 + 877); /* 23:13:21.000 */
	will_write(SYS_MOCK_ALL);
	log_event(log, LOG_WARN, "second %d", 2);
	assert_string_equal(written(), STAMP "info first\n"
					     "2023-11-14T23:13:21.000Z warn "
					     "second 2\n");
	log_close(log);
}

static void test_level_names(void **state)
{
	(void)state;
	assert_string_equal(log_level_name(LOG_ERROR), "error");
	assert_string_equal(log_level_name(LOG_WARN), "warn");
	assert_string_equal(log_level_name(LOG_INFO), "info");
	assert_string_equal(log_level_name(LOG_DEBUG), "debug");
	assert_string_equal(log_level_name((enum log_level)4), "?");
	assert_string_equal(log_level_name((enum log_level) - 1), "?");
}

static void test_level_filtering(void **state)
{
	static const struct {
		enum log_level level;
		const char *want;
	} cases[] = {
		{LOG_ERROR, STAMP "error e\n"},
		{LOG_WARN, STAMP "error e\n" STAMP "warn w\n"},
		{LOG_INFO, STAMP "error e\n" STAMP "warn w\n" STAMP "info i\n"},
		{LOG_DEBUG, STAMP "error e\n" STAMP "warn w\n" STAMP
				  "info i\n" STAMP "debug d\n"},
	};

	(void)state;
	for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++) {
		struct sys *sys = log_sys();
		struct log *log = open_logs(sys, NULL, cases[i].level);

		/* one write queued per line that must pass the filter */
		for (size_t j = 0; j <= (size_t)cases[i].level; j++)
			will_write(SYS_MOCK_ALL);
		log_event(log, LOG_ERROR, "e");
		log_event(log, LOG_WARN, "w");
		log_event(log, LOG_INFO, "i");
		log_event(log, LOG_DEBUG, "d");
		log_close(log);
		assert_string_equal(written(), cases[i].want);
	}
}

static void test_access_line_fields(void **state)
{
	struct sys *sys = log_sys();
	struct log *log = open_logs(sys, ACCESS_PATH, LOG_ERROR);
	struct log_access e = {
		.client = "127.0.0.1:40000",
		.method = "GET",
		.url = "http://h/p?q=1",
		.status = 200,
		.bytes_sent = 512,
		.bytes_received = 78,
		.duration_ms = 3,
		.outcome = "MISS",
	};

	(void)state;
	/* the access log is written whatever the event log's level */
	will_write(SYS_MOCK_ALL);
	log_access(log, &e);
	assert_string_equal(written(), STAMP "127.0.0.1:40000 GET "
					     "http://h/p?q=1 200 512 78 3ms "
					     "MISS\n");
	assert_int_equal(n_writes, 1);
	assert_int_equal(write_fds[0], ACCESS_FD);
	log_close(log);
	assert_true(sys_mock_is_closed(EVENT_FD));
	assert_true(sys_mock_is_closed(ACCESS_FD));
}

static void test_access_line_large_numbers_and_missing_fields(void **state)
{
	struct sys *sys = log_sys();
	struct log *log = open_logs(sys, ACCESS_PATH, LOG_INFO);
	struct log_access empty = {0};
	struct log_access big = {
		.client = "[::1]:65535",
		.method = "CONNECT",
		.url = "example.com:443",
		.status = 0,
		.bytes_sent = UINT64_MAX,
		.bytes_received = 1ULL << 40,
		.duration_ms = 86400000LL * 365,
		.outcome = "TUNNEL",
	};

	(void)state;
	will_write(SYS_MOCK_ALL);
	log_access(log, &empty);
	will_write(SYS_MOCK_ALL);
	log_access(log, &big);
	assert_string_equal(written(),
			    STAMP "- - - 0 0 0 0ms -\n" STAMP
				  "[::1]:65535 CONNECT example.com:443 0 "
				  "18446744073709551615 1099511627776 "
				  "31536000000ms TUNNEL\n");
	log_close(log);
}

static void test_access_goes_to_event_log_without_access_path(void **state)
{
	struct sys *sys = log_sys();
	struct log *log = open_logs(sys, NULL, LOG_INFO);
	struct log_access e = {.client = "127.0.0.1:40000",
			       .method = "CONNECT",
			       .url = "example.com:443",
			       .status = 200,
			       .bytes_sent = 10,
			       .bytes_received = 20,
			       .duration_ms = 1500,
			       .outcome = "TUNNEL"};

	(void)state;
	will_write(SYS_MOCK_ALL);
	log_access(log, &e);
	assert_string_equal(written(),
			    STAMP "info CONNECT example.com:443 -> 200 10B "
				  "1500ms NONE_NONE TUNNEL\n");
	assert_int_equal(n_writes, 1);
	assert_int_equal(write_fds[0], EVENT_FD);
	log_close(log);
}

static void test_access_in_event_log_is_info_level(void **state)
{
	struct sys *sys = log_sys();
	struct log *log = open_logs(sys, NULL, LOG_WARN);
	struct log_access e = {.method = "GET", .status = 200};

	(void)state;
	log_access(log, &e); /* nothing queued: a write would fail */
	assert_int_equal(written_len(), 0);
	log_close(log);
}

static void test_event_log_on_stderr_when_no_path(void **state)
{
	struct sys *sys = log_sys();
	struct log *log = NULL;

	(void)state;
	assert_int_equal(log_open(sys, NULL, NULL, LOG_INFO, &log), 0);
	will_write(SYS_MOCK_ALL);
	log_event(log, LOG_INFO, "to stderr");
	assert_int_equal(write_fds[0], 2);
	assert_string_equal(written(), STAMP "info to stderr\n");
	log_close(log);
	assert_int_equal(sys_mock_close_count(), 0); /* stderr stays open */
}

/* log_enabled says what log_event would write, and follows a reconfigure. */
static void test_enabled_follows_the_level(void **state)
{
	struct sys *sys = log_sys();
	struct log *log = NULL;

	(void)state;
	assert_false(log_enabled(NULL, LOG_ERROR));
	assert_int_equal(log_open(sys, NULL, NULL, LOG_INFO, &log), 0);
	assert_true(log_enabled(log, LOG_ERROR));
	assert_true(log_enabled(log, LOG_INFO));
	assert_false(log_enabled(log, LOG_DEBUG));
	assert_int_equal(log_reconfigure(log, NULL, NULL, LOG_DEBUG), 0);
	assert_true(log_enabled(log, LOG_DEBUG));
	log_close(log);
}

/* ---- escaping ---- */

static void test_escapes_control_backslash_and_high_bytes(void **state)
{
	struct sys *sys = log_sys();
	struct log *log = open_logs(sys, ACCESS_PATH, LOG_INFO);
	struct log_access e = {
		.client = "127.0.0.1:40000",
		.method = "G\tT",
		.url = "http://h/a\r\n" STAMP "error forged\\\x7f\xff\x01",
		.status = 400,
		.outcome = "BAD\x1b[0m",
	};

	(void)state;
	will_write(SYS_MOCK_ALL);
	log_access(log, &e);
	assert_string_equal(written(), STAMP
			    "127.0.0.1:40000 G\\x09T "
			    "http://h/a\\x0d\\x0a" STAMP
			    "error forged\\x5c\\x7f\\xff\\x01 400 0 0 0ms "
			    "BAD\\x1b[0m\n");
	assert_ptr_equal(strchr(written(), '\n'),
			 written() + written_len() - 1);

	will_write(SYS_MOCK_ALL);
	log_event(log, LOG_WARN, "bad header %s", "X: a\nSet-Cookie: b");
	assert_non_null(strstr(written(), STAMP "warn bad header "
						"X: a\\x0aSet-Cookie: b\n"));
	log_close(log);
}

static void test_printable_ascii_passes_unchanged(void **state)
{
	struct sys *sys = log_sys();
	struct log *log = open_logs(sys, NULL, LOG_INFO);
	char all[96], want[256];
	size_t n = 0;

	(void)state;
	for (int c = 0x20; c < 0x7f; c++)
		if (c != '\\')
			all[n++] = (char)c;
	all[n] = '\0';
	util_format(want, sizeof(want), STAMP "info %s\n", all);
	will_write(SYS_MOCK_ALL);
	log_event(log, LOG_INFO, "%s", all);
	assert_string_equal(written(), want);
	log_close(log);
}

/* ---- truncation ---- */

/* A line of at most LOG_LINE_MAX bytes: prefix, filler, "...\n". */
static void assert_cut_line(const char *line, size_t len, const char *prefix,
			    char filler)
{
	size_t plen = strlen(prefix);

	assert_in_range(len, LOG_LINE_MAX - 8, LOG_LINE_MAX);
	assert_memory_equal(line, prefix, plen);
	for (size_t i = plen; i < len - 4; i++)
		if (line[i] != filler)
			fail_msg("byte %zu is 0x%02x", i,
				 (unsigned char)line[i]);
	assert_memory_equal(line + len - 4, "...\n", 4);
}

static void test_long_event_message_is_cut_with_dots(void **state)
{
	static char message[3 * LOG_LINE_MAX];
	struct sys *sys = log_sys();
	struct log *log = open_logs(sys, NULL, LOG_INFO);

	(void)state;
	for (size_t len = LOG_LINE_MAX - 40; len < sizeof(message) - 1;
	     len += len < LOG_LINE_MAX + 8 ? 1 : 1000) {
		memset(message, 'a', len);
		message[len] = '\0';
		sys = log_sys();
		will_write(SYS_MOCK_ALL);
		log_event(log, LOG_INFO, "%s", message);
		if (strlen(STAMP "info ") + len + 1 <= LOG_LINE_MAX - 1) {
			/* still fits whole */
			assert_int_equal(written_len(),
					 strlen(STAMP "info ") + len + 1);
			continue;
		}
		assert_cut_line(written(), written_len(), STAMP "info ", 'a');
	}
	log_close(log);
}

static void test_long_url_access_line_is_cut_with_dots(void **state)
{
	static char url[5000];
	struct sys *sys = log_sys();
	struct log *log = open_logs(sys, ACCESS_PATH, LOG_INFO);
	struct log_access e = {.client = "127.0.0.1:40000",
			       .method = "GET",
			       .url = url,
			       .status = 414,
			       .outcome = "ERROR"};

	(void)state;
	memset(url, 'u', sizeof(url) - 1);
	will_write(SYS_MOCK_ALL);
	log_access(log, &e);
	assert_cut_line(written(), written_len(), STAMP "127.0.0.1:40000 GET ",
			'u');
	log_close(log);
}

static void test_cut_in_escapes_still_ends_with_dots(void **state)
{
	static char message[1100];
	struct log *log;
	const char *line;
	size_t len;

	(void)state;
	log = open_logs(log_sys(), NULL, LOG_INFO);
	memset(message, '\n', 1000);
	message[1000] = '\0';
	will_write(SYS_MOCK_ALL);
	log_event(log, LOG_INFO, "%s", message);
	line = written();
	len = written_len();
	assert_in_range(len, LOG_LINE_MAX - 8, LOG_LINE_MAX);
	assert_memory_equal(line + len - 4, "...\n", 4);
	log_close(log);
}

static void test_long_client_field_stays_in_the_line_buffer(void **state)
{
	static char client[LOG_LINE_MAX + 100];
	struct log_access e = {.client = client, .method = "GET", .url = "/"};
	struct log *log;

	(void)state;
	log = open_logs(log_sys(), ACCESS_PATH, LOG_INFO);
	memset(client, 'c', sizeof(client) - 1);
	will_write(SYS_MOCK_ALL);
	log_access(log, &e);
	assert_cut_line(written(), written_len(), STAMP, 'c');
	log_close(log);
}

/* ---- write errors ---- */

static void test_write_errors_are_counted_not_returned(void **state)
{
	struct sys *sys = log_sys();
	struct log *log = open_logs(sys, ACCESS_PATH, LOG_INFO);
	struct log_access e = {.method = "GET"};

	(void)state;
	assert_int_equal(log_write_errors(log), 0);
	will_fail(mock_write, -ENOSPC);
	will_write(SYS_MOCK_ALL); /* the first failure is reported at once */
	log_event(log, LOG_ERROR, "disk full");
	assert_int_equal(log_write_errors(log), 1);
	assert_int_equal(write_fds[1], ACCESS_FD); /* on the other log */
	assert_string_equal(written(),
			    STAMP "error log: writing the event log failed: "
				  "ENOSPC (1 lines lost so far; said at most "
				  "once a minute)\n");
	/* within the minute: counted, not reported again */
	will_fail(mock_write, -EIO);
	log_access(log, &e);
	assert_int_equal(log_write_errors(log), 2);
	will_write(0); /* no progress: an error too */
	log_event(log, LOG_ERROR, "stuck");
	assert_int_equal(log_write_errors(log), 3);
	will_write(5); /* a short write, then the rest */
	will_write(SYS_MOCK_ALL);
	log_event(log, LOG_ERROR, "short");
	assert_int_equal(log_write_errors(log), 3);
	assert_non_null(
		strstr(written(), "once a minute)\n" STAMP "error short\n"));
	will_write(3); /* a short write, then a failure: one error */
	will_fail(mock_write, -EIO);
	log_event(log, LOG_ERROR, "half");
	assert_int_equal(log_write_errors(log), 4);
	log_close(log);
}

/* ---- the access formats (issue #12) ---- */

/* A served request with every field set, as the proxy fills it. */
static const struct log_access full_entry = {
	.client = "127.0.0.1:40000",
	.method = "GET",
	.url = "http://example.com/p?q=1",
	.status = 200,
	.bytes_sent = 1532,
	.bytes_received = 78,
	.duration_ms = 12,
	.outcome = "DIRECT",
	.conn_id = 7,
	.request_no = 2,
	.result = "TCP_MISS",
	.hierarchy = "HIER_DIRECT",
	.peer = "93.184.215.14",
	.content_type = "text/html",
	.version = "HTTP/1.1",
	.referer = "http://example.com/",
	.user_agent = "curl/8.0",
	.timing = {0, 0, 1, 3, 10, 12},
};

/* The one access line a format writes for e (without the stamp check). */
static const char *access_line(enum log_format f, const struct log_access *e)
{
	struct sys *sys = log_sys();
	struct log *log = open_logs(sys, ACCESS_PATH, LOG_INFO);

	log_set_format(log, f);
	will_write(SYS_MOCK_ALL);
	log_access(log, e);
	assert_int_equal(n_writes, 1);
	assert_int_equal(write_fds[0], ACCESS_FD);
	log_close(log);
	return written();
}

static void test_squid_format_line(void **state)
{
	(void)state;
	assert_string_equal(access_line(LOG_FORMAT_SQUID, &full_entry),
			    "1700000000.123     12 127.0.0.1 TCP_MISS/200 1532 "
			    "GET http://example.com/p?q=1 - "
			    "HIER_DIRECT/93.184.215.14 text/html\n");
}

static void test_squid_format_defaults_and_ipv6(void **state)
{
	struct log_access e = {
		.client = "[::1]:40000",
		.method = "GET",
		.url = "/",
		.status = 400,
		.bytes_sent = 395,
	};

	(void)state;
	/* an unparsable request: nothing but the status is known */
	assert_string_equal(
		access_line(LOG_FORMAT_SQUID, &e),
		"1700000000.123      0 ::1 NONE_NONE/400 395 GET / - "
		"HIER_NONE/- -\n");
}

/* The padded numbers as printf's %6lld and %03d wrote them. */
static void test_squid_format_pads_as_printf_did(void **state)
{
	struct log_access e = {.client = "127.0.0.1:1", .status = 7};

	(void)state;
	e.duration_ms = 1234567; /* wider than the field */
	assert_string_equal(access_line(LOG_FORMAT_SQUID, &e),
			    "1700000000.123 1234567 127.0.0.1 NONE_NONE/007 0 "
			    "- - - HIER_NONE/- -\n");
	e.duration_ms = -3;
	e.status = -5;
	assert_string_equal(access_line(LOG_FORMAT_SQUID, &e),
			    "1700000000.123     -3 127.0.0.1 NONE_NONE/-05 0 "
			    "- - - HIER_NONE/- -\n");
}

static void test_squid_result_codes_pass_through(void **state)
{
	static const char *const codes[] = {
		"TCP_HIT",
		"TCP_MEM_HIT",
		"TCP_REFRESH_UNMODIFIED",
		"TCP_REFRESH_MODIFIED",
		"TCP_REFRESH_FAIL_OLD",
		"TCP_DENIED",
		"TCP_TUNNEL",
		"TCP_MISS_ABORTED",
		"TCP_NEGATIVE_HIT",
	};
	char want[128];

	(void)state;
	for (size_t i = 0; i < UTIL_ARRAY_LEN(codes); i++) {
		struct log_access e = full_entry;

		e.result = codes[i];
		e.user = "alice";
		e.hierarchy = "FIRSTUP_PARENT";
		util_format(want, sizeof(want), " %s/200 1532 GET ", codes[i]);
		const char *line = access_line(LOG_FORMAT_SQUID, &e);
		assert_non_null(strstr(line, want));
		assert_non_null(
			strstr(line, " alice FIRSTUP_PARENT/93.184.215.14 "));
	}
}

static void test_combined_format_line(void **state)
{
	(void)state;
	assert_string_equal(access_line(LOG_FORMAT_COMBINED, &full_entry),
			    "127.0.0.1 - - [14/Nov/2023:22:13:20 +0000] \"GET "
			    "http://example.com/p?q=1 HTTP/1.1\" 200 1532 "
			    "\"http://example.com/\" \"curl/8.0\"\n");
}

static void test_combined_format_empty_fields(void **state)
{
	struct log_access e = {.client = "127.0.0.1:1", .method = "GET"};

	(void)state;
	assert_string_equal(
		access_line(LOG_FORMAT_COMBINED, &e),
		"127.0.0.1 - - [14/Nov/2023:22:13:20 +0000] \"GET - "
		"HTTP/1.1\" - - \"-\" \"-\"\n");
}

static void test_json_format_line(void **state)
{
	(void)state;
	assert_string_equal(
		access_line(LOG_FORMAT_JSON, &full_entry),
		"{\"time\":\"2023-11-14T22:13:20.123Z\",\"duration_ms\":12,"
		"\"client\":\"127.0.0.1\",\"method\":\"GET\",\"url\":"
		"\"http://example.com/p?q=1\",\"status\":200,\"bytes_in\":78,"
		"\"bytes_out\":1532,\"result\":\"TCP_MISS\",\"hierarchy\":"
		"\"HIER_DIRECT\",\"cache\":null,\"stored\":false,\"upstream\":"
		"\"93.184.215.14\",\"content_type\":\"text/"
		"html\",\"user\":null,"
		"\"outcome\":\"DIRECT\",\"conn\":7,\"request\":2,\"head_ms\":0,"
		"\"filter_ms\":0,\"resolve_ms\":1,\"connect_ms\":3,"
		"\"first_byte_ms\":10,\"last_byte_ms\":12}\n");
}

static void test_json_unreached_marks_are_null(void **state)
{
	struct log_access e = full_entry;

	(void)state;
	e.timing = (struct log_timing){0, -1, -1, -1, -1, -1};
	e.cache_result = "HIT";
	e.stored = true;
	const char *line = access_line(LOG_FORMAT_JSON, &e);
	assert_non_null(strstr(line, "\"cache\":\"HIT\",\"stored\":true"));
	assert_non_null(strstr(line, "\"filter_ms\":null,\"resolve_ms\":null"));
	assert_non_null(strstr(line, "\"last_byte_ms\":null}\n"));
}

/* A URL no client should be able to log as it is. */
static const char hostile[] = "http://h/a\r\n1 2 \"x\" \\ \x1b[31mred\x01\xe9";

static void test_hostile_url_in_each_format(void **state)
{
	struct log_access e = full_entry;
	const char *line;

	(void)state;
	e.url = hostile;
	line = access_line(LOG_FORMAT_SQUID, &e);
	assert_non_null(strstr(line, " http://h/a%0d%0a1%202%20\"x\"%20%5c%20"
				     "%1b[31mred%01%e9 "));
	line = access_line(LOG_FORMAT_COMBINED, &e);
	assert_non_null(strstr(line, "GET http://h/a\\x0d\\x0a1 2 \\\"x\\\" "
				     "\\\\ \\x1b[31mred\\x01\\xe9 HTTP/1.1"));
	line = access_line(LOG_FORMAT_JSON, &e);
	assert_non_null(strstr(line, "\"url\":\"http://h/a\\r\\n1 2 \\\"x\\\" "
				     "\\\\ \\u001b[31mred\\u0001\\u00e9\""));
	line = access_line(LOG_FORMAT_GLASSPROXY, &e);
	assert_non_null(strstr(line, " http://h/a\\x0d\\x0a1 2 \"x\" \\x5c "
				     "\\x1b[31mred\\x01\\xe9 "));
}

/* Whatever the format and the input, one line, nothing below 0x20 but
 * its "\n", nothing above 0x7e: no forged line, no terminal escape. */
static void test_every_format_writes_one_clean_line(void **state)
{
	char evil[256];
	struct log_access e = full_entry;

	(void)state;
	for (int i = 1; i < 256; i++)
		evil[i - 1] = (char)i; /* every byte but NUL, which ends it */
	evil[255] = '\0';
	e.url = e.method = e.user_agent = e.referer = e.content_type = evil;
	e.user = e.peer = evil;
	for (int f = 0; f < LOG_FORMAT_COUNT; f++) {
		const char *line = access_line((enum log_format)f, &e);
		size_t len = strlen(line);

		assert_true(len > 1 && line[len - 1] == '\n');
		for (size_t i = 0; i + 1 < len; i++)
			assert_true(line[i] >= 0x20 && line[i] < 0x7f);
	}
}

static void test_format_names(void **state)
{
	enum log_format f;

	(void)state;
	for (int i = 0; i < LOG_FORMAT_COUNT; i++) {
		assert_int_equal(
			log_format_from_name(
				log_format_name((enum log_format)i), &f),
			0);
		assert_int_equal(f, i);
	}
	assert_int_equal(log_format_from_name("apache", &f), -EINVAL);
	assert_int_equal(log_format_from_name(NULL, &f), -EINVAL);
	assert_string_equal(log_format_name(LOG_FORMAT_COUNT), "?");
}

static void test_console_form_carries_ids_and_result(void **state)
{
	struct sys *sys = log_sys();
	struct log *log = open_logs(sys, NULL, LOG_INFO);

	(void)state;
	will_write(SYS_MOCK_ALL);
	log_access(log, &full_entry);
	assert_string_equal(written(), STAMP "info conn=7 req=2 GET "
					     "http://example.com/p?q=1 -> 200 "
					     "1532B 12ms TCP_MISS DIRECT\n");
	log_close(log);
}

static void test_access_log_dash_is_stdout(void **state)
{
	struct sys *sys = log_sys();
	struct log *log = NULL;

	(void)state;
	will_open(EVENT_PATH, EVENT_FD);
	assert_int_equal(log_open(sys, EVENT_PATH, "-", LOG_INFO, &log), 0);
	will_write(SYS_MOCK_ALL);
	log_access(log, &full_entry);
	assert_int_equal(write_fds[0], 1);
	will_open(EVENT_PATH, EVENT_FD + 2); /* "-" is not reopened */
	assert_int_equal(log_reopen(log), 0);
	assert_true(sys_mock_is_closed(EVENT_FD));
	log_close(log);
	assert_false(sys_mock_is_closed(1));
}

/* ---- the event log's context ---- */

static void test_event_lines_carry_the_threads_context(void **state)
{
	struct sys *sys = log_sys();
	struct log *log = open_logs(sys, NULL, LOG_DEBUG);

	(void)state;
	log_set_context(7, 0);
	will_write(SYS_MOCK_ALL);
	log_event(log, LOG_DEBUG, "accepted");
	log_set_context(7, 3);
	will_write(SYS_MOCK_ALL);
	log_event(log, LOG_WARN, "upstream: %s", log_errno_name(-ECONNREFUSED));
	log_clear_context();
	will_write(SYS_MOCK_ALL);
	log_event(log, LOG_INFO, "stopped");
	assert_string_equal(written(), STAMP
			    "debug conn=7 accepted\n" STAMP
			    "warn conn=7 req=3 upstream: ECONNREFUSED\n" STAMP
			    "info stopped\n");
	log_close(log);
}

static void test_errno_names(void **state)
{
	(void)state;
	assert_string_equal(log_errno_name(ECONNREFUSED), "ECONNREFUSED");
	assert_string_equal(log_errno_name(-ETIMEDOUT), "ETIMEDOUT");
	assert_string_equal(log_errno_name(-ENOSPC), "ENOSPC");
	assert_string_equal(log_errno_name(0), "E?");
	assert_string_equal(log_errno_name(99999), "E?");
}

/* ---- write failures are reported at most once a minute ---- */

static void test_write_failure_reported_once_a_minute(void **state)
{
	struct sys *sys = log_sys();
	struct log *log = open_logs(sys, ACCESS_PATH, LOG_INFO);

	(void)state;
	will_fail(mock_write, -ENOSPC);
	will_write(SYS_MOCK_ALL); /* the report, on the event log */
	log_access(log, &full_entry);
	assert_int_equal(write_fds[1], EVENT_FD);
	assert_non_null(strstr(written(), "writing the access log failed: "
					  "ENOSPC (1 lines lost"));
	for (int i = 0; i < 10; i++) { /* 50 s of failures: silent */
		sys_mock_advance_ms(5000);
		will_fail(mock_write, -ENOSPC);
		log_access(log, &full_entry);
	}
	assert_int_equal(log_write_errors(log), 11);
	sys_mock_advance_ms(10001); /* 60.001 s after the report */
	will_fail(mock_write, -ENOSPC);
	will_write(SYS_MOCK_ALL);
	log_access(log, &full_entry);
	assert_non_null(strstr(written(), "(12 lines lost"));
	/* and the log goes on when the disk does */
	will_write(SYS_MOCK_ALL);
	log_access(log, &full_entry);
	assert_int_equal(log_write_errors(log), 12);
	log_close(log);
}

static void test_failing_stderr_alone_is_not_reported(void **state)
{
	struct sys *sys = log_sys();
	struct log *log = NULL;

	(void)state;
	assert_int_equal(log_open(sys, NULL, NULL, LOG_INFO, &log), 0);
	will_fail(mock_write, -EIO); /* nowhere else to say it: no write */
	log_event(log, LOG_ERROR, "lost");
	assert_int_equal(log_write_errors(log), 1);
	log_close(log);
}

/* ---- open, close, reopen ---- */

static void test_open_event_failure_returns_error(void **state)
{
	struct sys *sys = log_sys();
	struct log *log = NULL;

	(void)state;
	will_open(EVENT_PATH, -EACCES);
	/* the access log is not even tried: nothing queued for it */
	assert_int_equal(log_open(sys, EVENT_PATH, ACCESS_PATH, LOG_INFO, &log),
			 -EACCES);
	assert_null(log);
	assert_int_equal(sys_mock_close_count(), 0);
}

static void test_open_access_failure_closes_event_log(void **state)
{
	struct sys *sys = log_sys();
	struct log *log = NULL;

	(void)state;
	will_open(EVENT_PATH, EVENT_FD);
	will_open(ACCESS_PATH, -ENOENT);
	assert_int_equal(log_open(sys, EVENT_PATH, ACCESS_PATH, LOG_INFO, &log),
			 -ENOENT);
	assert_null(log);
	assert_true(sys_mock_is_closed(EVENT_FD));
	assert_int_equal(sys_mock_close_count(), 1);
}

static void test_open_access_failure_with_stderr_closes_nothing(void **state)
{
	struct sys *sys = log_sys();
	struct log *log = NULL;

	(void)state;
	will_open(ACCESS_PATH, -EROFS);
	assert_int_equal(log_open(sys, NULL, ACCESS_PATH, LOG_INFO, &log),
			 -EROFS);
	assert_null(log);
	assert_int_equal(sys_mock_close_count(), 0);
}

static void test_reopen_swaps_descriptors(void **state)
{
	struct sys *sys = log_sys();
	struct log *log = open_logs(sys, ACCESS_PATH, LOG_INFO);
	struct log_access e = {.method = "GET"};

	(void)state;
	will_open(EVENT_PATH, 20);
	will_open(ACCESS_PATH, 21);
	assert_int_equal(log_reopen(log), 0);
	assert_true(sys_mock_is_closed(EVENT_FD));
	assert_true(sys_mock_is_closed(ACCESS_FD));
	assert_int_equal(sys_mock_close_count(), 2);
	will_write(SYS_MOCK_ALL);
	log_event(log, LOG_INFO, "after");
	will_write(SYS_MOCK_ALL);
	log_access(log, &e);
	assert_int_equal(n_writes, 2);
	assert_int_equal(write_fds[0], 20);
	assert_int_equal(write_fds[1], 21);
	log_close(log);
	assert_true(sys_mock_is_closed(20));
	assert_true(sys_mock_is_closed(21));
	assert_int_equal(sys_mock_close_count(), 4);
}

static void test_reopen_failure_keeps_the_old_descriptor(void **state)
{
	struct sys *sys = log_sys();
	struct log *log = open_logs(sys, ACCESS_PATH, LOG_INFO);

	(void)state;
	/* the event log cannot be reopened: both stay as they were */
	will_open(EVENT_PATH, -EMFILE);
	assert_int_equal(log_reopen(log), -EMFILE);
	assert_int_equal(sys_mock_close_count(), 0);
	will_write(SYS_MOCK_ALL);
	log_event(log, LOG_INFO, "still here");
	assert_int_equal(write_fds[0], EVENT_FD);
	assert_string_equal(written(), STAMP "info still here\n");

	/* the event log moves, the access log cannot: it keeps its fd */
	will_open(EVENT_PATH, 20);
	will_open(ACCESS_PATH, -EACCES);
	assert_int_equal(log_reopen(log), -EACCES);
	assert_true(sys_mock_is_closed(EVENT_FD));
	assert_false(sys_mock_is_closed(ACCESS_FD));
	log_close(log);
	assert_true(sys_mock_is_closed(20));
	assert_true(sys_mock_is_closed(ACCESS_FD));
}

static void test_reopen_with_stderr_opens_nothing(void **state)
{
	struct sys *sys = log_sys();
	struct log *log = NULL;

	(void)state;
	assert_int_equal(log_open(sys, NULL, NULL, LOG_INFO, &log), 0);
	assert_int_equal(log_reopen(log), 0); /* no open queued */
	assert_int_equal(sys_mock_close_count(), 0);
	log_close(log);
	assert_int_equal(sys_mock_close_count(), 0);
}

/* ---- log_reconfigure (a reload) ---- */

#define NEW_EVENT_PATH	"/var/log/glassproxy/new-events.log"
#define NEW_ACCESS_PATH "/var/log/glassproxy/new-access.log"

static void test_reconfigure_same_paths_switches_only_the_level(void **state)
{
	struct sys *sys = log_sys();
	struct log *log = open_logs(sys, ACCESS_PATH, LOG_INFO);

	(void)state;
	/* no open queued: an unchanged path keeps its descriptor */
	assert_int_equal(
		log_reconfigure(log, EVENT_PATH, ACCESS_PATH, LOG_WARN), 0);
	assert_int_equal(sys_mock_close_count(), 0);
	log_event(log, LOG_INFO, "dropped now");
	assert_int_equal(written_len(), 0);
	assert_int_equal(
		log_reconfigure(log, EVENT_PATH, ACCESS_PATH, LOG_DEBUG), 0);
	will_write(SYS_MOCK_ALL);
	log_event(log, LOG_DEBUG, "shown now");
	assert_string_equal(written(), STAMP "debug shown now\n");
	assert_int_equal(write_fds[0], EVENT_FD);
	log_close(log);
}

static void test_reconfigure_moves_changed_files_only(void **state)
{
	struct sys *sys = log_sys();
	struct log *log = open_logs(sys, ACCESS_PATH, LOG_INFO);
	struct log_access e = {.method = "GET"};

	(void)state;
	will_open(NEW_ACCESS_PATH, 21);
	assert_int_equal(
		log_reconfigure(log, EVENT_PATH, NEW_ACCESS_PATH, LOG_INFO), 0);
	assert_true(sys_mock_is_closed(ACCESS_FD));
	assert_false(sys_mock_is_closed(EVENT_FD));
	will_write(SYS_MOCK_ALL);
	log_access(log, &e);
	will_write(SYS_MOCK_ALL);
	log_event(log, LOG_INFO, "event");
	assert_int_equal(n_writes, 2);
	assert_int_equal(write_fds[0], 21);
	assert_int_equal(write_fds[1], EVENT_FD);
	/* a later reopen uses the new path */
	will_open(EVENT_PATH, 22);
	will_open(NEW_ACCESS_PATH, 23);
	assert_int_equal(log_reopen(log), 0);
	assert_true(sys_mock_is_closed(21));
	log_close(log);
	assert_true(sys_mock_is_closed(22));
	assert_true(sys_mock_is_closed(23));
}

static void test_reconfigure_failure_changes_nothing(void **state)
{
	struct sys *sys = log_sys();
	struct log *log = open_logs(sys, ACCESS_PATH, LOG_INFO);

	(void)state;
	/* the event file opens, the access file cannot: all or nothing */
	will_open(NEW_EVENT_PATH, 20);
	will_open(NEW_ACCESS_PATH, -EACCES);
	assert_int_equal(log_reconfigure(log, NEW_EVENT_PATH, NEW_ACCESS_PATH,
					 LOG_DEBUG),
			 -EACCES);
	assert_true(sys_mock_is_closed(20));
	assert_false(sys_mock_is_closed(EVENT_FD));
	assert_false(sys_mock_is_closed(ACCESS_FD));
	log_event(log, LOG_DEBUG, "level unchanged: dropped");
	assert_int_equal(written_len(), 0);
	will_write(SYS_MOCK_ALL);
	log_event(log, LOG_INFO, "old file");
	assert_int_equal(write_fds[0], EVENT_FD);
	log_close(log);
}

static void test_reconfigure_to_and_from_stderr(void **state)
{
	struct sys *sys = log_sys();
	struct log *log = open_logs(sys, ACCESS_PATH, LOG_INFO);
	struct log_access e = {.method = "GET", .outcome = "MISS"};

	(void)state;
	/* no paths: events to stderr, access lines into the event log */
	assert_int_equal(log_reconfigure(log, NULL, NULL, LOG_INFO), 0);
	assert_true(sys_mock_is_closed(EVENT_FD));
	assert_true(sys_mock_is_closed(ACCESS_FD));
	will_write(SYS_MOCK_ALL);
	log_access(log, &e);
	assert_int_equal(write_fds[0], 2);
	assert_non_null(
		strstr(written(), " info GET - -> 0 0B 0ms NONE_NONE MISS"));
	/* and back to files; stderr is never closed */
	will_open(NEW_EVENT_PATH, 30);
	will_open(NEW_ACCESS_PATH, 31);
	assert_int_equal(
		log_reconfigure(log, NEW_EVENT_PATH, NEW_ACCESS_PATH, LOG_INFO),
		0);
	assert_false(sys_mock_is_closed(2));
	will_write(SYS_MOCK_ALL);
	log_access(log, &e);
	assert_int_equal(write_fds[1], 31);
	log_close(log);
	assert_true(sys_mock_is_closed(30));
	assert_true(sys_mock_is_closed(31));
	assert_false(sys_mock_is_closed(2));
}

static void test_null_log_is_a_no_op(void **state)
{
	struct log_access e = {.method = "GET"};

	(void)state;
	log_sys();
	log_event(NULL, LOG_ERROR, "nowhere %d", 1);
	log_access(NULL, &e);
	log_close(NULL);
	assert_int_equal(written_len(), 0);
	assert_int_equal(n_writes, 0);
}

/*
 * ---- two workers log at once ----
 *
 * A write that returns only when a second write has begun (or after 10 s,
 * the failure bound, never reached when the log lets both in).  Under a
 * lock held across write(2) the second line waits for the first and both
 * writes time out alone.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

static pthread_mutex_t meet_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t meet_cond = PTHREAD_COND_INITIALIZER;
static int meet_inside, meet_most;

static ssize_t meeting_write(void *ctx, int fd, const void *buf, size_t len)
{
	struct timespec until;
	int rc = 0;

	(void)ctx, (void)fd, (void)buf;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&meet_lock);
	if (++meet_inside > meet_most)
		meet_most = meet_inside;
	pthread_cond_broadcast(&meet_cond);
	while (meet_most < 2 && rc == 0)
		rc = pthread_cond_timedwait(&meet_cond, &meet_lock, &until);
	meet_inside--;
	pthread_mutex_unlock(&meet_lock);
	return (ssize_t)len;
}

static void *log_one_access(void *arg)
{
	struct log_access e = {.method = "GET", .url = "http://a.test/"};

	log_access(arg, &e);
	return NULL;
}

static void test_two_threads_write_lines_at_the_same_time(void **state)
{
	struct sys *sys = log_sys();
	struct log *log = open_logs(sys, ACCESS_PATH, LOG_INFO);
	pthread_t th[2];

	(void)state;
	recording_fs.write = meeting_write;
	meet_inside = meet_most = 0;
	for (int i = 0; i < 2; i++)
		assert_int_equal(
			pthread_create(&th[i], NULL, log_one_access, log), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(meet_most, 2);
	assert_int_equal(log_write_errors(log), 0);
	recording_fs.write = recording_write;
	log_close(log);
}

/*
 * A reopen gets in while workers log without a pause: glibc's read-write
 * lock prefers readers, and without the gate (struct log) the reopens
 * below never finished.  The loggers run until the reopens are done or
 * 60 s have passed (the failure bound, never near: a few ms here, three
 * reopens up to 5.4 s in valgrind, which runs one thread at a time), so
 * a failure fails here instead of hanging.
 */
static atomic_bool loggers_stop;

static ssize_t counting_write(void *ctx, int fd, const void *buf, size_t len)
{
	(void)ctx, (void)fd, (void)buf;
	return (ssize_t)len;
}

static void *log_until_stopped(void *arg)
{
	struct log_access e = {.method = "GET", .url = "http://a.test/"};

	while (!atomic_load(&loggers_stop))
		log_access(arg, &e);
	return NULL;
}

/* Stops the loggers after 60 s unless told the reopens are done. */
static int reopens_done;
static bool watchdog_fired;

static void *watchdog(void *arg)
{
	struct timespec until;
	int rc = 0;

	(void)arg;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 60;
	pthread_mutex_lock(&meet_lock);
	while (!reopens_done && rc == 0)
		rc = pthread_cond_timedwait(&meet_cond, &meet_lock, &until);
	watchdog_fired = !reopens_done;
	pthread_mutex_unlock(&meet_lock);
	atomic_store(&loggers_stop, true);
	return NULL;
}

static void test_a_reopen_gets_in_while_workers_log(void **state)
{
	struct sys *sys = log_sys();
	struct log *log = open_logs(sys, ACCESS_PATH, LOG_INFO);
	pthread_t loggers[4], dog;

	(void)state;
	recording_fs.write = counting_write;
	atomic_store(&loggers_stop, false);
	reopens_done = 0;
	watchdog_fired = false;
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&loggers[i], NULL,
						log_until_stopped, log),
				 0);
	assert_int_equal(pthread_create(&dog, NULL, watchdog, NULL), 0);
	for (int i = 0; i < 3; i++) {
		will_open(EVENT_PATH, 20 + 2 * i);
		will_open(ACCESS_PATH, 21 + 2 * i);
		assert_int_equal(log_reopen(log), 0);
	}
	pthread_mutex_lock(&meet_lock);
	reopens_done = 1;
	pthread_cond_broadcast(&meet_cond);
	pthread_mutex_unlock(&meet_lock);
	pthread_join(dog, NULL);
	for (int i = 0; i < 4; i++)
		pthread_join(loggers[i], NULL);
	assert_false(watchdog_fired); /* the reopens did not need the stop */
	recording_fs.write = recording_write;
	log_close(log);
}

/*
 * ---- torture: open, write, reopen and close with each call failing ----
 *
 * On real files in a fresh directory under /tmp (the log's path changes
 * after a failure, which a mock script could not follow).  Included here,
 * not at the top, to keep this section self-contained.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "torture.h"

struct log_torture {
	char dir[64], event[96], access[96];
	bool opened, persistent;
	uint64_t write_errors;
};

static struct sys *log_torture_setup(void *arg)
{
	struct log_torture *lt = arg;

	snprintf(lt->dir, sizeof(lt->dir), "/tmp/glassproxy-test-log-XXXXXX");
	assert_non_null(mkdtemp(lt->dir));
	snprintf(lt->event, sizeof(lt->event), "%s/events.log", lt->dir);
	snprintf(lt->access, sizeof(lt->access), "%s/access.log", lt->dir);
	lt->opened = false;
	lt->write_errors = 0;
	return sys_posix();
}

static int log_torture_run(struct sys *sys, void *arg)
{
	static const struct log_access entry = {.client = "127.0.0.1:40000",
						.method = "GET",
						.url = "http://h/p",
						.status = 200,
						.bytes_sent = 5,
						.bytes_received = 7,
						.duration_ms = 3,
						.outcome = "MISS",
						.user = "-"};
	struct log_torture *lt = arg;
	struct log *log;
	int rc = log_open(sys, lt->event, lt->access, LOG_INFO, &log);

	if (rc < 0)
		return rc;
	lt->opened = true;
	log_set_format(log, LOG_FORMAT_GLASSPROXY);
	log_event(log, LOG_INFO, "one");
	rc = log_reopen(log);
	log_event(log, LOG_INFO, "two");
	log_access(log, &entry);
	lt->write_errors = log_write_errors(log);
	log_close(log);
	return rc;
}

/* The whole file (it is small), NUL-terminated; "" if it does not exist. */
static size_t slurp(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY);
	ssize_t n = fd < 0 ? 0 : read(fd, buf, cap - 1);

	if (fd >= 0)
		close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	return (size_t)n;
}

static bool log_torture_check(void *arg, int rc, const char *failed)
{
	struct log_torture *lt = arg;
	char ev[4096], ac[4096];
	size_t evn = slurp(lt->event, ev, sizeof(ev));
	size_t acn = slurp(lt->access, ac, sizeof(ac));

	/* Whatever failed, the files hold whole lines only. */
	assert_true(evn == 0 || ev[evn - 1] == '\n');
	assert_true(acn == 0 || ac[acn - 1] == '\n');
	if (!failed) {
		assert_int_equal(rc, 0);
		assert_non_null(strstr(ev, "Z info one\n"));
		assert_non_null(strstr(ev, "Z info two\n"));
		assert_non_null(
			strstr(ac, " GET http://h/p 200 5 7 3ms MISS\n"));
		assert_int_equal(lt->write_errors, 0);
		return false;
	}
	/* A reopen that failed keeps logging to the files it had. */
	if (lt->opened && rc < 0 && !lt->persistent)
		assert_non_null(strstr(ev, "Z info two\n"));
	/* Write errors are counted, never returned; close errors ignored. */
	if (!strcmp(failed, "write"))
		return lt->write_errors > 0;
	return !strcmp(failed, "file_close");
}

static void log_torture_teardown(void *arg)
{
	struct log_torture *lt = arg;

	unlink(lt->event);
	unlink(lt->access);
	assert_int_equal(rmdir(lt->dir), 0);
}

static void test_torture_log_open_write_reopen(void **state)
{
	struct log_torture lt = {0};
	struct torture_op op = {
		.name = "log open/write/reopen",
		.set = TORTURE_FS | TORTURE_FS_CLOSE | TORTURE_ALLOC,
		.err = -EIO,
		.setup = log_torture_setup,
		.run = log_torture_run,
		.check = log_torture_check,
		.teardown = log_torture_teardown,
	};

	long n;

	(void)state;
	/* 3 allocations, 2 opens, 2 reopens and 2 closes, 3 writes, 2 closes */
	n = torture_run(&op, &lt);
	print_message("log: %ld calls failed in turn (transient)\n", n);
	assert_int_equal(n, 14);
	op.err = -ENOSPC;
	op.persistent = lt.persistent = true;
	assert_int_equal(torture_run(&op, &lt), n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_event_line_format),
		cmocka_unit_test(test_event_line_uses_the_clock_at_each_call),
		cmocka_unit_test(test_level_names),
		cmocka_unit_test(test_level_filtering),
		cmocka_unit_test(test_access_line_fields),
		cmocka_unit_test(
			test_access_line_large_numbers_and_missing_fields),
		cmocka_unit_test(
			test_access_goes_to_event_log_without_access_path),
		cmocka_unit_test(test_access_in_event_log_is_info_level),
		cmocka_unit_test(test_event_log_on_stderr_when_no_path),
		cmocka_unit_test(test_enabled_follows_the_level),
		cmocka_unit_test(test_escapes_control_backslash_and_high_bytes),
		cmocka_unit_test(test_printable_ascii_passes_unchanged),
		cmocka_unit_test(test_long_event_message_is_cut_with_dots),
		cmocka_unit_test(test_long_url_access_line_is_cut_with_dots),
		cmocka_unit_test(test_cut_in_escapes_still_ends_with_dots),
		cmocka_unit_test(
			test_long_client_field_stays_in_the_line_buffer),
		cmocka_unit_test(test_write_errors_are_counted_not_returned),
		cmocka_unit_test(test_open_event_failure_returns_error),
		cmocka_unit_test(test_open_access_failure_closes_event_log),
		cmocka_unit_test(
			test_open_access_failure_with_stderr_closes_nothing),
		cmocka_unit_test(test_reopen_swaps_descriptors),
		cmocka_unit_test(test_reopen_failure_keeps_the_old_descriptor),
		cmocka_unit_test(test_reopen_with_stderr_opens_nothing),
		cmocka_unit_test(
			test_reconfigure_same_paths_switches_only_the_level),
		cmocka_unit_test(test_reconfigure_moves_changed_files_only),
		cmocka_unit_test(test_reconfigure_failure_changes_nothing),
		cmocka_unit_test(test_reconfigure_to_and_from_stderr),
		cmocka_unit_test(test_null_log_is_a_no_op),
		cmocka_unit_test(test_two_threads_write_lines_at_the_same_time),
		cmocka_unit_test(test_a_reopen_gets_in_while_workers_log),
		cmocka_unit_test(test_torture_log_open_write_reopen),
		cmocka_unit_test(test_squid_format_line),
		cmocka_unit_test(test_squid_format_defaults_and_ipv6),
		cmocka_unit_test(test_squid_format_pads_as_printf_did),
		cmocka_unit_test(test_squid_result_codes_pass_through),
		cmocka_unit_test(test_combined_format_line),
		cmocka_unit_test(test_combined_format_empty_fields),
		cmocka_unit_test(test_json_format_line),
		cmocka_unit_test(test_json_unreached_marks_are_null),
		cmocka_unit_test(test_hostile_url_in_each_format),
		cmocka_unit_test(test_every_format_writes_one_clean_line),
		cmocka_unit_test(test_format_names),
		cmocka_unit_test(test_console_form_carries_ids_and_result),
		cmocka_unit_test(test_access_log_dash_is_stdout),
		cmocka_unit_test(test_event_lines_carry_the_threads_context),
		cmocka_unit_test(test_errno_names),
		cmocka_unit_test(test_write_failure_reported_once_a_minute),
		cmocka_unit_test(test_failing_stderr_alone_is_not_reported),
	};
	return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
