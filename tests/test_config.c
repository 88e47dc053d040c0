/*
 * Unit tests of config: the defaults, the config-file parser (good text and
 * every error with its exact "PATH:LINE: ..." message), durations and sizes,
 * typed values (addresses, host and port, port lists, enums, tokens) and
 * their errors, nothing but tchar in values that become header fields, the
 * command line over the file, getopt run twice in one process, finding -c
 * before parsing, the dump read back to the same dump, and the changes a
 * reload reports.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "glassproxy/config.h"
#include "glassproxy/net.h"
#include "glassproxy/util.h"

#define ARGC(argv) ((int)UTIL_ARRAY_LEN(argv) - 1)
/* A literal with its exact length, for text holding a NUL byte. */
#define BIN(s) s, sizeof(s) - 1

/* A fresh config per test, freed by the teardown whatever the outcome. */
static int setup(void **state)
{
	static struct config cfg;

	if (config_init(&cfg) < 0)
		return -1;
	*state = &cfg;
	return 0;
}

static int teardown(void **state)
{
	config_free(*state);
	return 0;
}

static int apply_text(struct config *cfg, const char *text, char *err)
{
	err[0] = '\0';
	return config_apply_file(cfg, text, strlen(text), "t.conf", err,
				 CONFIG_ERR_MAX);
}

static void assert_list(const struct config_list *list, size_t count, ...)
{
	va_list ap;

	assert_int_equal(list->count, count);
	va_start(ap, count);
	for (size_t i = 0; i < count; i++)
		assert_string_equal(list->items[i], va_arg(ap, const char *));
	va_end(ap);
}

/* The parsed listen address, printed back. */
static void assert_listen(const struct config *cfg, const char *want)
{
	char text[NET_ADDR_TEXT_MAX];

	assert_true(net_format_addr(&cfg->listen, text, sizeof(text)) > 0);
	assert_string_equal(text, want);
}

/* The parsed CONNECT port ranges as "lo-hi,lo-hi". */
static void assert_ports(const struct config *cfg, const char *want)
{
	char text[256] = "";
	size_t at = 0;

	for (size_t i = 0; i < cfg->connect_ports.count; i++) {
		const struct config_port_range *r =
			&cfg->connect_ports.ranges[i];
		int n = util_format(text + at, sizeof(text) - at, "%s%u-%u",
				    i ? "," : "", (unsigned)r->lo,
				    (unsigned)r->hi);
		assert_true(n > 0);
		at += (size_t)n;
	}
	assert_string_equal(text, want);
}

/* ---- defaults ---- */

static void test_init_sets_documented_defaults(void **state)
{
	struct config *cfg = *state;

	assert_listen(cfg, "127.0.0.1:8080");
	assert_null(cfg->config_file);
	assert_null(cfg->hosts_file);
	assert_null(cfg->log_file);
	assert_null(cfg->access_log);
	assert_int_equal(cfg->verbosity, 1);
	assert_false(cfg->serial);
	assert_int_equal(cfg->max_connections, 10000);
	assert_int_equal(cfg->connect_timeout_ms, 10000);
	assert_int_equal(cfg->response_timeout_ms, 60000);
	assert_int_equal(cfg->request_timeout_ms, 30000);
	assert_int_equal(cfg->client_idle_timeout_ms, 15000);
	assert_int_equal(cfg->shutdown_grace_ms, 10000);
	assert_int_equal(cfg->max_request_body, 0);
	assert_int_equal(cfg->allow.count, 0);
	assert_int_equal(cfg->block.count, 0);
	assert_int_equal(cfg->allow_file.count, 0);
	assert_int_equal(cfg->block_file.count, 0);
	assert_int_equal(cfg->allow_client.count, 0);
	assert_ports(cfg, "443-443");
	assert_int_equal(cfg->tunnel_idle_timeout_ms, 300000);
	assert_false(cfg->check_config);
	assert_false(cfg->help);
	assert_false(cfg->version);
}

static void test_free_twice_is_safe(void **state)
{
	struct config *cfg = *state;

	config_free(cfg);
	assert_null(cfg->hosts_file);
	assert_null(cfg->connect_ports.ranges);
	assert_null(cfg->allow.items);
	/* the teardown frees again */
}

/* ---- the config file ---- */

static void test_file_good_text_with_comments_crlf_tabs(void **state)
{
	static const char text[] =
		"# glassproxy test configuration\r\n"
		"\r\n"
		"listen 0.0.0.0:3128   # trailing comment\r\n"
		"\tmax-connections\t\t42\t\r\n"
		"   \n"
		"\n"
		"   # indented comment\n"
		"serial yes\n"
		"hosts-file /etc/hosts.test\n"
		"log-file\t/var/log/gp events.log\n"
		"allow example.com#no space before the comment\n"
		"allow *.example.org\r\n"
		"connect-ports 443,8443,9000-9100\n"
		"connect-timeout 500ms"; /* no final newline */
	struct config *cfg = *state;
	char err[CONFIG_ERR_MAX];

	assert_int_equal(apply_text(cfg, text, err), 0);
	assert_string_equal(err, "");
	assert_listen(cfg, "0.0.0.0:3128");
	assert_int_equal(cfg->max_connections, 42);
	assert_true(cfg->serial);
	assert_string_equal(cfg->hosts_file, "/etc/hosts.test");
	assert_string_equal(cfg->log_file, "/var/log/gp events.log");
	assert_list(&cfg->allow, 2, "example.com", "*.example.org");
	assert_ports(cfg, "443-443,8443-8443,9000-9100");
	assert_int_equal(cfg->connect_timeout_ms, 500);
	/* untouched keys keep their defaults */
	assert_int_equal(cfg->response_timeout_ms, 60000);
	assert_null(cfg->access_log);
}

static void test_file_empty_and_comment_only_text_changes_nothing(void **state)
{
	struct config *cfg = *state;
	char err[CONFIG_ERR_MAX];

	assert_int_equal(
		config_apply_file(cfg, "", 0, "t.conf", err, sizeof(err)), 0);
	assert_int_equal(apply_text(cfg, "# only\n#comments\r\n\n", err), 0);
	assert_listen(cfg, "127.0.0.1:8080");
}

static void test_file_later_line_replaces_string(void **state)
{
	struct config *cfg = *state;
	char err[CONFIG_ERR_MAX];

	assert_int_equal(
		apply_text(cfg, "listen 1.1.1.1:1\nlisten [::1]:2\n", err), 0);
	assert_listen(cfg, "[::1]:2");
}

static void test_file_bool_spellings(void **state)
{
	static const struct {
		const char *value;
		bool on;
	} cases[] = {
		{"yes", true},	{"no", false},	{"on", true},
		{"off", false}, {"true", true}, {"false", false},
		{"1", true},	{"0", false},	{"YES", true},
		{"Off", false}, {"TRUE", true},
	};
	struct config *cfg = *state;
	char text[64], err[CONFIG_ERR_MAX];

	for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++) {
		cfg->serial = !cases[i].on;
		util_format(text, sizeof(text), "serial %s\n", cases[i].value);
		assert_int_equal(apply_text(cfg, text, err), 0);
		if (cfg->serial != cases[i].on)
			fail_msg("serial %s gave %d", cases[i].value,
				 cfg->serial);
	}
}

static void test_file_verbose_and_quiet(void **state)
{
	struct config *cfg = *state;
	char err[CONFIG_ERR_MAX];

	assert_int_equal(apply_text(cfg, "verbose 2\n", err), 0);
	assert_int_equal(cfg->verbosity, 2);
	assert_int_equal(apply_text(cfg, "quiet\n", err), 0);
	assert_int_equal(cfg->verbosity, 0);
	assert_int_equal(apply_text(cfg, "verbose\n", err), 0);
	assert_int_equal(cfg->verbosity, 1);
	assert_int_equal(apply_text(cfg, "verbose 0\n", err), 0);
	assert_int_equal(cfg->verbosity, 0);
}

struct error_case {
	const char *text;
	size_t len; /* 0: strlen(text) */
	const char *err;
};

static void test_file_errors_name_path_line_and_problem(void **state)
{
	static const struct error_case cases[] = {
		{"nope 1\n", 0, "t.conf:1: unknown key 'nope'"},
		{"# c\r\n\r\nlisten 1.2.3.4:5\r\nbogus-key\tx\r\n", 0,
		 "t.conf:4: unknown key 'bogus-key'"},
		{"Listen 1.2.3.4:5\n", 0, "t.conf:1: unknown key 'Listen'"},
		{"--listen 1.2.3.4:5\n", 0, "t.conf:1: unknown key '--listen'"},
		{"listen\n", 0, "t.conf:1: 'listen' needs a value"},
		{"\n\nlisten   \t # nothing\r\n", 0,
		 "t.conf:3: 'listen' needs a value"},
		{"serial\n", 0, "t.conf:1: 'serial' needs a value"},
		{"allow\n", 0, "t.conf:1: 'allow' needs a value"},
		{"connect-timeout soon\n", 0,
		 "t.conf:1: connect-timeout: 'soon' is not a duration (like "
		 "10s, 500ms, 2m) from 1ms to 86400000ms"},
		{"shutdown-grace 1d\n", 0,
		 "t.conf:1: shutdown-grace: '1d' is not a duration (like 10s, "
		 "500ms, 2m) from 0ms to 86400000ms"},
		{"max-connections lots\n", 0,
		 "t.conf:1: max-connections: 'lots' is not a number from 1 to "
		 "65536"},
		{"max-connections -5\n", 0,
		 "t.conf:1: max-connections: '-5' is not a number from 1 to "
		 "65536"},
		{"max-connections 0\n", 0,
		 "t.conf:1: max-connections: '0' is not a number from 1 to "
		 "65536"},
		{"max-connections 65537\n", 0,
		 "t.conf:1: max-connections: '65537' is not a number from 1 to "
		 "65536"},
		{"max-connections 99999999999999999999999\n", 0,
		 "t.conf:1: max-connections: '99999999999999999999999' is not "
		 "a number from 1 to 65536"},
		{"max-request-body 10X\n", 0,
		 "t.conf:1: max-request-body: '10X' is not a size (like 100, "
		 "64k, 10M)"},
		{"serial yse\n", 0, "t.conf:1: serial: 'yse' is not yes or no"},
		{"verbose loud\n", 0,
		 "t.conf:1: verbose: 'loud' is not 0, 1 or 2"},
		{BIN("listen 1.2.3.4:5\nlis\0ten x\n"),
		 "t.conf:2: NUL byte in line"},
		{BIN("# a comment with a NUL \0 still counts\n"),
		 "t.conf:1: NUL byte in line"},
		{"help\n", 0, "t.conf:1: unknown key 'help'"},
		{"version yes\n", 0, "t.conf:1: unknown key 'version'"},
		{"check-config\n", 0, "t.conf:1: unknown key 'check-config'"},
		{"config other.conf\n", 0, "t.conf:1: unknown key 'config'"},
	};
	char err[CONFIG_ERR_MAX];

	for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++) {
		struct config cfg;
		const struct error_case *c = &cases[i];
		size_t len = c->len ? c->len : strlen(c->text);
		int rc;

		assert_int_equal(config_init(&cfg), 0);
		err[0] = '\0';
		rc = config_apply_file(&cfg, c->text, len, "t.conf", err,
				       sizeof(err));
		config_free(&cfg);
		if (rc != -EINVAL || strcmp(err, c->err) != 0)
			fail_msg("case %zu: rc %d err '%s', want '%s'", i, rc,
				 err, c->err);
	}
}

static void test_file_error_message_is_bounded_by_errlen(void **state)
{
	struct config *cfg = *state;
	char err[16];

	memset(err, 'x', sizeof(err));
	assert_int_equal(config_apply_file(cfg, "nope 1\n", 7, "t.conf", err,
					   sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "t.conf:1: unkno");
}

static void test_file_verbose_value_above_two_is_rejected(void **state)
{
	struct config *cfg = *state;
	char err[CONFIG_ERR_MAX];

	assert_int_equal(apply_text(cfg, "verbose 3\n", err), -EINVAL);
	assert_string_equal(err, "t.conf:1: verbose: '3' is not 0, 1 or 2");
	assert_int_equal(apply_text(cfg, "verbose 9\n", err), -EINVAL);
	assert_string_equal(err, "t.conf:1: verbose: '9' is not 0, 1 or 2");
	assert_int_equal(cfg->verbosity, 1);
}

/* ---- durations and sizes ---- */

static void test_durations(void **state)
{
	static const struct {
		const char *text;
		int ms; /* -1: rejected */
	} cases[] = {
		{"10", 10000},
		{"10s", 10000},
		{"500ms", 500},
		{"2m", 120000},
		{"1h", 3600000},
		{"1ms", 1},
		{"24h", 86400000},
		{"1440m", 86400000},
		{"86400s", 86400000},
		{"86400000ms", 86400000},
		{"0010s", 10000},
		{"0", -1},
		{"0ms", -1},
		{"25h", -1},
		{"86401s", -1},
		{"86400001ms", -1},
		{"soon", -1},
		{"s", -1},
		{"10S", -1},
		{"10 s", -1},
		{"1.5s", -1},
		{"-1s", -1},
		{"10sec", -1},
		{"1d", -1},
		{"99999999999999999999s", -1},
	};
	char text[64], err[CONFIG_ERR_MAX];

	(void)state;
	for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++) {
		struct config cfg;
		int rc, got;

		assert_int_equal(config_init(&cfg), 0);
		util_format(text, sizeof(text), "connect-timeout %s\n",
			    cases[i].text);
		rc = apply_text(&cfg, text, err);
		got = cfg.connect_timeout_ms;
		config_free(&cfg);
		if (cases[i].ms < 0 ? rc != -EINVAL
				    : rc != 0 || got != cases[i].ms)
			fail_msg("'%s': rc %d, %d ms, want %d (%s)",
				 cases[i].text, rc, got, cases[i].ms, err);
	}
}

static void test_shutdown_grace_may_be_zero(void **state)
{
	struct config *cfg = *state;
	char err[CONFIG_ERR_MAX];

	assert_int_equal(apply_text(cfg, "shutdown-grace 0\n", err), 0);
	assert_int_equal(cfg->shutdown_grace_ms, 0);
}

static void test_sizes(void **state)
{
	static const struct {
		const char *text;
		long long bytes; /* -1: rejected */
	} cases[] = {
		{"0", 0},
		{"100", 100},
		{"64k", 65536},
		{"64K", 65536},
		{"10M", 10485760},
		{"10m", 10485760},
		{"1G", 1073741824LL},
		{"1g", 1073741824LL},
		{"9223372036854775807", INT64_MAX},
		{"8589934591G", 9223372035781033984LL},
		{"9223372036854775808", -1},
		{"8589934592G", -1},
		{"9007199254740992k", -1},
		{"1T", -1},
		{"k", -1},
		{"64 k", -1},
		{"64kb", -1},
		{"-1", -1},
	};
	char text[64], err[CONFIG_ERR_MAX];

	(void)state;
	for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++) {
		struct config cfg;
		long long got;
		int rc;

		assert_int_equal(config_init(&cfg), 0);
		util_format(text, sizeof(text), "max-request-body %s\n",
			    cases[i].text);
		rc = apply_text(&cfg, text, err);
		got = cfg.max_request_body;
		config_free(&cfg);
		if (cases[i].bytes < 0 ? rc != -EINVAL
				       : rc != 0 || got != cases[i].bytes)
			fail_msg("'%s': rc %d, %lld bytes, want %lld (%s)",
				 cases[i].text, rc, got, cases[i].bytes, err);
	}
}

/* ---- the command line ---- */

static void test_args_short_long_and_equals_forms(void **state)
{
	char *argv[] = {"glassproxy",
			"-l",
			"1.2.3.4:5",
			"--hosts-file",
			"/h",
			"--log-file=/l",
			"--access-log",
			"/a",
			"--serial",
			"--max-connections=9",
			"--connect-timeout",
			"2m",
			"--response-timeout=500ms",
			"--request-timeout=7",
			"--client-idle-timeout",
			"1h",
			"--shutdown-grace=0",
			"--max-request-body=64k",
			"--connect-ports",
			"80,443",
			"--tunnel-idle-timeout=5s",
			"-cmy.conf",
			"--check-config",
			"-h",
			"-V",
			NULL};
	struct config *cfg = *state;
	char err[CONFIG_ERR_MAX] = "";

	assert_int_equal(
		config_apply_args(cfg, ARGC(argv), argv, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_listen(cfg, "1.2.3.4:5");
	assert_string_equal(cfg->hosts_file, "/h");
	assert_string_equal(cfg->log_file, "/l");
	assert_string_equal(cfg->access_log, "/a");
	assert_true(cfg->serial);
	assert_int_equal(cfg->max_connections, 9);
	assert_int_equal(cfg->connect_timeout_ms, 120000);
	assert_int_equal(cfg->response_timeout_ms, 500);
	assert_int_equal(cfg->request_timeout_ms, 7000);
	assert_int_equal(cfg->client_idle_timeout_ms, 3600000);
	assert_int_equal(cfg->shutdown_grace_ms, 0);
	assert_int_equal(cfg->max_request_body, 65536);
	assert_ports(cfg, "80-80,443-443");
	assert_int_equal(cfg->tunnel_idle_timeout_ms, 5000);
	assert_string_equal(cfg->config_file, "my.conf");
	assert_true(cfg->check_config);
	assert_true(cfg->help);
	assert_true(cfg->version);
}

static void test_args_attached_short_value(void **state)
{
	char *argv[] = {"glassproxy", "-l[::1]:0", NULL};
	struct config *cfg = *state;
	char err[CONFIG_ERR_MAX];

	assert_int_equal(
		config_apply_args(cfg, ARGC(argv), argv, err, sizeof(err)), 0);
	assert_listen(cfg, "[::1]:0");
}

static void test_args_lists_repeat(void **state)
{
	char *argv[] = {"glassproxy",	     "--allow",	   "a.example",
			"--block=b.example", "--allow",	   "c.example",
			"--allow-file",	     "af",	   "--block-file=bf",
			"--allow-client",    "10.0.0.0/8", NULL};
	struct config *cfg = *state;
	char err[CONFIG_ERR_MAX];

	assert_int_equal(
		config_apply_args(cfg, ARGC(argv), argv, err, sizeof(err)), 0);
	assert_list(&cfg->allow, 2, "a.example", "c.example");
	assert_list(&cfg->block, 1, "b.example");
	assert_list(&cfg->allow_file, 1, "af");
	assert_list(&cfg->block_file, 1, "bf");
	assert_list(&cfg->allow_client, 1, "10.0.0.0/8");
}

static void test_args_verbosity(void **state)
{
	static const struct {
		const char *args[5];
		int verbosity;
	} cases[] = {
		{{NULL}, 1},
		{{"-v"}, 2},
		{{"-v", "-v"}, 2},
		{{"-vv"}, 2},
		{{"-v", "-v", "-v"}, 2},
		{{"--verbose", "--verbose"}, 2},
		{{"-q"}, 0},
		{{"--quiet"}, 0},
		{{"-v", "-q"}, 0},
		{{"-q", "-v"}, 1},
		{{"-q", "-v", "-v"}, 2},
		{{"-qv"}, 1},
	};

	(void)state;
	for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++) {
		char *argv[7] = {"glassproxy"};
		char err[CONFIG_ERR_MAX] = "";
		struct config cfg;
		int argc = 1, rc;

		for (int j = 0; cases[i].args[j]; j++)
			argv[argc++] = (char *)cases[i].args[j];
		assert_int_equal(config_init(&cfg), 0);
		rc = config_apply_args(&cfg, argc, argv, err, sizeof(err));
		config_free(&cfg); /* verbosity is a plain int: still there */
		if (rc != 0 || cfg.verbosity != cases[i].verbosity)
			fail_msg("case %zu: rc %d verbosity %d, want %d (%s)",
				 i, rc, cfg.verbosity, cases[i].verbosity, err);
	}
}

static void test_args_errors(void **state)
{
	static const struct {
		const char *args[4];
		const char *err;
	} cases[] = {
		{{"--listen"}, "--listen: needs a value"},
		{{"-v", "-l"}, "-l: needs a value"},
		{{"--allow"}, "--allow: needs a value"},
		{{"--nope"}, "--nope: unknown option"},
		{{"--nope=1"}, "--nope=1: unknown option"},
		{{"-x"}, "-x: unknown option"},
		{{"-vx"}, "-x: unknown option"},
		{{"extra"}, "unexpected argument 'extra'"},
		{{"extra", "-v"}, "unexpected argument 'extra'"},
		{{"--", "-v"}, "unexpected argument '-v'"},
		{{"--connect-timeout", "soon"},
		 "--connect-timeout: 'soon' is not a duration (like 10s, "
		 "500ms, 2m) from 1ms to 86400000ms"},
		{{"--max-connections=0"},
		 "--max-connections: '0' is not a number from 1 to 65536"},
		{{"--max-request-body", "1T"},
		 "--max-request-body: '1T' is not a size (like 100, 64k, 10M)"},
		{{"--listen="},
		 "--listen: '' is not ADDR:PORT (IPv4, or [IPv6]:PORT)"},
		{{"--via-name="},
		 "--via-name: '' must be one token of at most 63 characters "
		 "(letters, digits and !#$%&'*+-.^_`|~)"},
		{{"--forwarded-for", "yes"},
		 "--forwarded-for: 'yes' is not one of off, on, delete"},
		{{"--connect-ports", "0"},
		 "--connect-ports: '0' is not a list of ports and ranges (like "
		 "443,8443,9000-9100; 1-65535)"},
	};

	(void)state;
	for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++) {
		char *argv[6] = {"glassproxy"};
		char err[CONFIG_ERR_MAX] = "";
		struct config cfg;
		int argc = 1, rc;

		for (int j = 0; cases[i].args[j]; j++)
			argv[argc++] = (char *)cases[i].args[j];
		assert_int_equal(config_init(&cfg), 0);
		rc = config_apply_args(&cfg, argc, argv, err, sizeof(err));
		config_free(&cfg);
		if (rc != -EINVAL || strcmp(err, cases[i].err) != 0)
			fail_msg("case %zu: rc %d err '%s', want '%s'", i, rc,
				 err, cases[i].err);
	}
}

static void test_args_unknown_short_option_first_in_cluster(void **state)
{
	char *argv[] = {"glassproxy", "-xv", NULL};
	struct config *cfg = *state;
	char err[CONFIG_ERR_MAX] = "";

	assert_int_equal(
		config_apply_args(cfg, ARGC(argv), argv, err, sizeof(err)),
		-EINVAL);
	assert_string_equal(err, "-x: unknown option");
}

static void test_args_twice_in_one_process_resets_getopt(void **state)
{
	/* The first run stops inside a cluster, leaving getopt mid-word. */
	char *first[] = {"glassproxy", "-xv", "-l", "9.9.9.9:9", NULL};
	char *second[] = {"glassproxy", "-q", "--listen", "1.2.3.4:5", NULL};
	char *third[] = {"glassproxy", "-v", NULL};
	struct config *cfg = *state;
	char err[CONFIG_ERR_MAX];

	assert_int_equal(
		config_apply_args(cfg, ARGC(first), first, err, sizeof(err)),
		-EINVAL);
	assert_int_equal(
		config_apply_args(cfg, ARGC(second), second, err, sizeof(err)),
		0);
	assert_int_equal(cfg->verbosity, 0);
	assert_listen(cfg, "1.2.3.4:5");
	assert_int_equal(
		config_apply_args(cfg, ARGC(third), third, err, sizeof(err)),
		0);
	assert_int_equal(cfg->verbosity, 1);
	assert_listen(cfg, "1.2.3.4:5");
}

static void test_args_override_file_scalars_and_lists_accumulate(void **state)
{
	static const char text[] = "listen 1.1.1.1:1\n"
				   "max-connections 5\n"
				   "connect-timeout 3s\n"
				   "serial yes\n"
				   "allow from-file-1\n"
				   "allow from-file-2\n"
				   "block blocked-by-file\n";
	char *argv[] = {"glassproxy", "--listen",  "2.2.2.2:2",
			"--allow",    "from-args", "--connect-timeout=4s",
			NULL};
	struct config *cfg = *state;
	char err[CONFIG_ERR_MAX];

	assert_int_equal(apply_text(cfg, text, err), 0);
	assert_int_equal(
		config_apply_args(cfg, ARGC(argv), argv, err, sizeof(err)), 0);
	assert_listen(cfg, "2.2.2.2:2");
	assert_int_equal(cfg->connect_timeout_ms, 4000);
	assert_int_equal(cfg->max_connections, 5); /* from the file */
	assert_true(cfg->serial);		   /* from the file */
	assert_list(&cfg->allow, 3, "from-file-1", "from-file-2", "from-args");
	assert_list(&cfg->block, 1, "blocked-by-file");
}

static void test_validate(void **state)
{
	char *direct[] = {"glassproxy", "--direct", "lan.example", NULL};
	char *parent[] = {"glassproxy", "--parent-proxy", "10.0.0.1:3128",
			  NULL};
	struct config *cfg = *state;
	char err[CONFIG_ERR_MAX] = "";

	assert_int_equal(config_validate(cfg, err, sizeof(err)), 0);
	assert_int_equal(
		config_apply_args(cfg, ARGC(direct), direct, err, sizeof(err)),
		0);
	assert_int_equal(config_validate(cfg, err, sizeof(err)), -EINVAL);
	assert_string_equal(err,
			    "direct: patterns need a parent-proxy to bypass");
	assert_int_equal(
		config_apply_args(cfg, ARGC(parent), parent, err, sizeof(err)),
		0);
	assert_int_equal(config_validate(cfg, err, sizeof(err)), 0);
}

/* ---- typed values ---- */

static void test_typed_values_from_the_file(void **state)
{
	static const char text[] = "listen [::1]:3128\n"
				   "forwarded-for delete\n"
				   "via-name edge-1.lab\n"
				   "parent-proxy [2001:db8::1]:8080\n"
				   "connect-ports  443 , 8000-8100,9443\n";
	struct config *cfg = *state;
	char err[CONFIG_ERR_MAX];

	assert_int_equal(apply_text(cfg, text, err), 0);
	assert_listen(cfg, "[::1]:3128");
	assert_int_equal(cfg->forwarded_for, PROXY_FORWARDED_DELETE);
	assert_string_equal(cfg->via_name, "edge-1.lab");
	assert_string_equal(cfg->parent_proxy.host, "2001:db8::1");
	assert_int_equal(cfg->parent_proxy.port, 8080);
	assert_true(cfg->parent_proxy.ipv6);
	assert_ports(cfg, "443-443,8000-8100,9443-9443");
	assert_int_equal(apply_text(cfg,
				    "forwarded-for on\nparent-proxy "
				    "up.example:3128\n",
				    err),
			 0);
	assert_int_equal(cfg->forwarded_for, PROXY_FORWARDED_ON);
	assert_string_equal(cfg->parent_proxy.host, "up.example");
	assert_int_equal(cfg->parent_proxy.port, 3128);
	assert_false(cfg->parent_proxy.ipv6);
}

static void test_defaults_are_typed(void **state)
{
	struct config *cfg = *state;

	assert_int_equal(cfg->forwarded_for, PROXY_FORWARDED_OFF);
	assert_string_equal(cfg->via_name, "glassproxy");
	assert_string_equal(cfg->parent_proxy.host, "");
	assert_int_equal(cfg->parent_proxy.port, 0);
}

static void test_typed_errors_in_the_file(void **state)
{
	static const struct error_case cases[] = {
		{"listen nowhere\n", 0,
		 "t.conf:1: listen: 'nowhere' is not ADDR:PORT (IPv4, or "
		 "[IPv6]:PORT)"},
		{"listen 127.0.0.1\n", 0,
		 "t.conf:1: listen: '127.0.0.1' is not ADDR:PORT (IPv4, or "
		 "[IPv6]:PORT)"},
		{"listen localhost:80\n", 0,
		 "t.conf:1: listen: 'localhost:80' is not ADDR:PORT (IPv4, or "
		 "[IPv6]:PORT)"},
		{"forwarded-for maybe\n", 0,
		 "t.conf:1: forwarded-for: 'maybe' is not one of off, on, "
		 "delete"},
		{"forwarded-for ON\n", 0,
		 "t.conf:1: forwarded-for: 'ON' is not one of off, on, delete"},
		{"via-name two words\n", 0,
		 "t.conf:1: via-name: 'two words' must be one token of at most "
		 "63 characters (letters, digits and !#$%&'*+-.^_`|~)"},
		{"via-name a\rX-Injected: 1\n", 0,
		 "t.conf:1: via-name: 'a\\x0dX-Injected: 1' must be one token "
		 "of at most 63 characters (letters, digits and "
		 "!#$%&'*+-.^_`|~)"},
		{"parent-proxy up.example\n", 0,
		 "t.conf:1: parent-proxy: 'up.example' is not HOST:PORT (a "
		 "host name or IP literal, and a port 1-65535)"},
		{"parent-proxy up.example:0\n", 0,
		 "t.conf:1: parent-proxy: 'up.example:0' is not HOST:PORT (a "
		 "host name or IP literal, and a port 1-65535)"},
		{"parent-proxy a\rb:80\n", 0,
		 "t.conf:1: parent-proxy: 'a\\x0db:80' is not HOST:PORT (a "
		 "host name or IP literal, and a port 1-65535)"},
		{"connect-ports 443,\n", 0,
		 "t.conf:1: connect-ports: '443,' is not a list of ports and "
		 "ranges (like 443,8443,9000-9100; 1-65535)"},
		{"connect-ports 9100-9000\n", 0,
		 "t.conf:1: connect-ports: '9100-9000' is not a list of ports "
		 "and ranges (like 443,8443,9000-9100; 1-65535)"},
	};
	char err[CONFIG_ERR_MAX];

	(void)state;
	for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++) {
		struct config cfg;
		const struct error_case *c = &cases[i];
		int rc;

		assert_int_equal(config_init(&cfg), 0);
		err[0] = '\0';
		rc = config_apply_file(&cfg, c->text, strlen(c->text), "t.conf",
				       err, sizeof(err));
		config_free(&cfg);
		if (rc != -EINVAL || strcmp(err, c->err) != 0)
			fail_msg("case %zu: rc %d err '%s', want '%s'", i, rc,
				 err, c->err);
	}
}

/* One character more than a via-name may have. */
#define SIXTY_FOUR_CHARS                                                       \
	"0123456789012345678901234567890123456789012345678901234567890123"

/* Issue #15 finding 7: nothing but tchar reaches a Via field. */
static void test_via_name_and_parent_host_refuse_header_breakers(void **state)
{
	static const char *const bad_via[] = {
		"",
		"a\r\nX-Injected: 1",
		"a\nb",
		"a b",
		"a\tb",
		"a,b",
		"a;b",
		"(comment)",
		"\"q\"",
		"a/b",
		"a:b",
		"a@b",
		"[v6]",
		"a=b",
		"a\\b",
		"a{b}",
		"\x7f",
		"caf\xc3\xa9",
		SIXTY_FOUR_CHARS,
	};
	static const char *const bad_parent[] = {
		"a\r\nX-Injected: 1:80",
		"a b:80",
		"a,b:80",
		"user@h:80",
		"h:80/x",
		"[::1:80",
		"h:",
		":80",
		"h:65536",
		"%41:80",
		"a\x80:80",
	};
	char err[CONFIG_ERR_MAX];

	(void)state;
	for (size_t i = 0; i < UTIL_ARRAY_LEN(bad_via); i++) {
		char *argv[] = {"glassproxy", "--via-name", (char *)bad_via[i],
				NULL};
		struct config cfg;
		int rc;

		assert_int_equal(config_init(&cfg), 0);
		rc = config_apply_args(&cfg, ARGC(argv), argv, err,
				       sizeof(err));
		config_free(&cfg);
		if (rc != -EINVAL || strncmp(err, "--via-name: '", 13) != 0 ||
		    strpbrk(err, "\r\n"))
			fail_msg("via-name %zu accepted or bad message: %s", i,
				 err);
	}
	for (size_t i = 0; i < UTIL_ARRAY_LEN(bad_parent); i++) {
		char *argv[] = {"glassproxy", "--parent-proxy",
				(char *)bad_parent[i], NULL};
		struct config cfg;
		int rc;

		assert_int_equal(config_init(&cfg), 0);
		rc = config_apply_args(&cfg, ARGC(argv), argv, err,
				       sizeof(err));
		config_free(&cfg);
		if (rc != -EINVAL ||
		    strncmp(err, "--parent-proxy: '", 17) != 0 ||
		    strpbrk(err, "\r\n"))
			fail_msg("parent %zu accepted or bad message: %s", i,
				 err);
	}
}

static void test_via_name_accepts_every_tchar(void **state)
{
	char *argv[] = {"glassproxy", "--via-name", "!#$%&'*+-.^_`|~09azAZ",
			NULL};
	char sixty_three[] = SIXTY_FOUR_CHARS;
	char *longest[] = {"glassproxy", "--via-name", sixty_three, NULL};
	struct config *cfg = *state;
	char err[CONFIG_ERR_MAX];

	sixty_three[63] = '\0';
	assert_int_equal(
		config_apply_args(cfg, ARGC(argv), argv, err, sizeof(err)), 0);
	assert_string_equal(cfg->via_name, "!#$%&'*+-.^_`|~09azAZ");
	assert_int_equal(config_apply_args(cfg, ARGC(longest), longest, err,
					   sizeof(err)),
			 0);
	assert_int_equal(strlen(cfg->via_name), 63);
}

static void test_is_token_is_exactly_tchar(void **state)
{
	static const char tchar_specials[] = "!#$%&'*+-.^_`|~";

	(void)state;
	for (int c = 0; c < 256; c++) {
		char s[1] = {(char)c};
		bool want = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
			    (c >= 'A' && c <= 'Z') ||
			    (c != 0 && strchr(tchar_specials, c));
		if (config_is_token(s, 1) != want)
			fail_msg("byte 0x%02x: %d", c, !want);
	}
	assert_false(config_is_token("", 0));
}

/* ---- changes between two configurations (reload) ---- */

struct seen {
	char text[1024];
	int restart;
};

static void record_change(void *arg, const struct config_change *c)
{
	struct seen *s = arg;
	size_t len = strlen(s->text);

	util_format(s->text + len, sizeof(s->text) - len, "%s%s: %s -> %s",
		    len ? "; " : "", c->name, c->old_value, c->new_value);
	s->restart += c->needs_restart;
}

static void test_diff_names_each_change_and_flags_restart_ones(void **state)
{
	static const char text[] = "listen 127.0.0.1:9\n"
				   "response-timeout 5s\n"
				   "block a.example\n"
				   "block b.example\n"
				   "forwarded-for on\n"
				   "parent-proxy up:3128\n"
				   "connect-ports 443,8443\n"
				   "serial yes\n";
	struct config *old = *state, fresh;
	struct seen seen = {"", 0};
	char err[CONFIG_ERR_MAX];

	assert_int_equal(config_init(&fresh), 0);
	assert_int_equal(config_diff(old, &fresh, record_change, &seen), 0);
	assert_int_equal(apply_text(&fresh, text, err), 0);
	assert_int_equal(config_diff(old, &fresh, record_change, &seen), 7);
	assert_string_equal(seen.text,
			    "listen: 127.0.0.1:8080 -> 127.0.0.1:9; "
			    "serial: no -> yes; "
			    "response-timeout: 60s -> 5s; "
			    "forwarded-for: off -> on; "
			    "parent-proxy: (not set) -> up:3128; "
			    "block: (not set) -> a.example, b.example; "
			    "connect-ports: 443 -> 443,8443");
	assert_int_equal(seen.restart, 2);
	config_keep_restart_options(&fresh, old);
	assert_listen(&fresh, "127.0.0.1:8080");
	assert_false(fresh.serial);
	assert_int_equal(fresh.response_timeout_ms, 5000); /* live: kept new */
	assert_int_equal(config_diff(old, &fresh, NULL, NULL), 5);
	config_free(&fresh);
}

/* ---- config_find_file_arg ---- */ /* ---- config_find_file_arg ---- */

static void test_find_file_arg_forms(void **state)
{
	static const struct {
		const char *args[6]; /* NULL-terminated */
		const char *want;
	} cases[] = {
		{{"-c", "F"}, "F"},
		{{"-cF"}, "F"},
		{{"--config", "F"}, "F"},
		{{"--config=F"}, "F"},
		{{"-v", "--listen", "x:1", "-c", "G"}, "G"},
		{{NULL}, NULL},
		{{"-v", "--listen", "x:1"}, NULL},
		{{"--", "-c", "F"}, NULL},
		{{"-v", "--", "--config=F"}, NULL},
		{{"-c"}, NULL},
		{{"--config"}, NULL},
		{{"--check-config"}, NULL},
	};

	(void)state;
	for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++) {
		char *argv[8] = {"glassproxy"};
		int argc = 1;
		const char *got;

		for (int j = 0; cases[i].args[j]; j++)
			argv[argc++] = (char *)cases[i].args[j];
		got = config_find_file_arg(argc, argv);
		if (cases[i].want ? !got || strcmp(got, cases[i].want) != 0
				  : got != NULL)
			fail_msg("case %zu: '%s', want '%s'", i,
				 got ? got : "(null)",
				 cases[i].want ? cases[i].want : "(null)");
	}
}

static void test_find_file_arg_agrees_with_getopt_on_clusters(void **state)
{
	char *argv[] = {"glassproxy", "-vc", "my.conf", NULL};
	struct config *cfg = *state;
	char err[CONFIG_ERR_MAX];

	assert_int_equal(
		config_apply_args(cfg, ARGC(argv), argv, err, sizeof(err)), 0);
	assert_string_equal(cfg->config_file, "my.conf");
	assert_non_null(config_find_file_arg(ARGC(argv), argv));
	assert_string_equal(config_find_file_arg(ARGC(argv), argv), "my.conf");
}

/* ---- dump and help ---- */

static void assert_dump_round_trips(const struct config *cfg)
{
	struct config fresh;
	char err[CONFIG_ERR_MAX] = "";
	char *first = config_dump(cfg), *second;

	assert_non_null(first);
	assert_int_equal(config_init(&fresh), 0);
	if (config_apply_file(&fresh, first, strlen(first), "dump", err,
			      sizeof(err)) < 0) {
		config_free(&fresh);
		free(first);
		fail_msg("dump does not parse: %s", err);
	}
	second = config_dump(&fresh);
	config_free(&fresh);
	assert_non_null(second);
	if (strcmp(first, second) != 0) {
		print_error("first:\n%s\nsecond:\n%s\n", first, second);
		free(first);
		free(second);
		fail_msg("dump differs after a round trip");
	}
	free(first);
	free(second);
}

static void test_dump_of_defaults(void **state)
{
	struct config *cfg = *state;
	char *dump = config_dump(cfg);

	assert_non_null(dump);
	assert_non_null(strstr(dump, "# effective configuration\n"));
	assert_non_null(strstr(dump, "\nlisten 127.0.0.1:8080\n"));
	assert_non_null(strstr(dump, "\n# hosts-file (not set)\n"));
	assert_non_null(strstr(dump, "\n# log-file (not set)\n"));
	assert_non_null(strstr(dump, "\nverbose 1\n"));
	assert_non_null(strstr(dump, "\nserial no\n"));
	assert_non_null(strstr(dump, "\nmax-connections 10000\n"));
	assert_non_null(strstr(dump, "\nconnect-timeout 10s\n"));
	assert_non_null(strstr(dump, "\nresponse-timeout 60s\n"));
	assert_non_null(strstr(dump, "\nmax-request-body 0\n"));
	assert_non_null(strstr(dump, "\nconnect-ports 443\n"));
	assert_non_null(strstr(dump, "\nforwarded-for off\n"));
	assert_non_null(strstr(dump, "\nvia-name glassproxy\n"));
	assert_non_null(strstr(dump, "\n# parent-proxy (not set)\n"));
	assert_null(strstr(dump, "config "));
	assert_null(strstr(dump, "help"));
	assert_null(strstr(dump, "quiet"));
	assert_null(strstr(dump, "\nallow"));
	free(dump);
	assert_dump_round_trips(cfg);
}

static void test_dump_round_trips_every_kind_of_option(void **state)
{
	static const char text[] = "listen [::1]:3128\n"
				   "hosts-file /etc/hosts.lab\n"
				   "log-file /var/log/gp.log\n"
				   "access-log /var/log/gp access.log\n"
				   "verbose 0\n"
				   "serial yes\n"
				   "max-connections 7\n"
				   "connect-timeout 1500ms\n"
				   "response-timeout 2m\n"
				   "request-timeout 1\n"
				   "client-idle-timeout 1h\n"
				   "shutdown-grace 0\n"
				   "max-request-body 64k\n"
				   "allow a.example\n"
				   "allow *.b.example\n"
				   "block c.example\n"
				   "allow-file /etc/allow.txt\n"
				   "block-file /etc/block.txt\n"
				   "allow-client 10.0.0.0/8\n"
				   "allow-client ::1/128\n"
				   "connect-ports 443,8443,9000-9100\n"
				   "tunnel-idle-timeout 1ms\n"
				   "forwarded-for delete\n"
				   "via-name edge.1\n"
				   "parent-proxy [::1]:3129\n"
				   "direct lan.example\n";
	struct config *cfg = *state;
	char err[CONFIG_ERR_MAX];
	char *dump;

	assert_int_equal(apply_text(cfg, text, err), 0);
	cfg->config_file = strdup("never-dumped.conf");
	assert_non_null(cfg->config_file);
	dump = config_dump(cfg);
	assert_non_null(dump);
	assert_non_null(strstr(dump, "\nlisten [::1]:3128\n"));
	assert_non_null(strstr(dump, "\naccess-log /var/log/gp access.log\n"));
	assert_non_null(strstr(dump, "\nverbose 0\n"));
	assert_non_null(strstr(dump, "\nserial yes\n"));
	assert_non_null(strstr(dump, "\nconnect-timeout 1500ms\n"));
	assert_non_null(strstr(dump, "\nresponse-timeout 120s\n"));
	assert_non_null(strstr(dump, "\nrequest-timeout 1s\n"));
	assert_non_null(strstr(dump, "\nclient-idle-timeout 3600s\n"));
	assert_non_null(strstr(dump, "\nshutdown-grace 0s\n"));
	assert_non_null(strstr(dump, "\nmax-request-body 65536\n"));
	assert_non_null(strstr(dump, "\nallow a.example\nallow *.b.example\n"));
	assert_non_null(strstr(
		dump, "\nallow-client 10.0.0.0/8\nallow-client ::1/128\n"));
	assert_non_null(strstr(dump, "\ntunnel-idle-timeout 1ms\n"));
	assert_non_null(strstr(dump, "\nforwarded-for delete\n"));
	assert_non_null(strstr(dump, "\nvia-name edge.1\n"));
	assert_non_null(strstr(dump, "\nparent-proxy [::1]:3129\n"));
	assert_non_null(strstr(dump, "\ndirect lan.example\n"));
	assert_non_null(strstr(dump, "\nconnect-ports 443,8443,9000-9100\n"));
	assert_null(strstr(dump, "never-dumped"));
	free(dump);
	assert_dump_round_trips(cfg);
}

static void test_help_mentions_every_option(void **state)
{
	static const char *const lines[] = {
		"-l, --listen ADDR:PORT",
		"-c, --config FILE",
		"    --check-config ",
		"    --hosts-file FILE",
		"    --log-file FILE",
		"    --access-log FILE",
		"-v, --verbose ",
		"-q, --quiet ",
		"    --serial ",
		"    --max-connections N",
		"    --connect-timeout TIME",
		"    --response-timeout TIME",
		"    --request-timeout TIME",
		"    --client-idle-timeout TIME",
		"    --shutdown-grace TIME",
		"    --max-request-body SIZE",
		"    --allow PATTERN",
		"    --block PATTERN",
		"    --allow-file FILE",
		"    --block-file FILE",
		"    --allow-client CIDR",
		"    --connect-ports LIST",
		"    --tunnel-idle-timeout TIME",
		"-h, --help ",
		"-V, --version ",
		"[127.0.0.1:8080]",
		"[10s]",
		"[443]",
	};
	char *help = config_help("gp-test");

	(void)state;
	assert_non_null(help);
	assert_memory_equal(help, "Usage: gp-test [OPTION]...\n", 27);
	for (size_t i = 0; i < UTIL_ARRAY_LEN(lines); i++)
		if (!strstr(help, lines[i])) {
			print_error("%s", help);
			free(help);
			fail_msg("help lacks '%s'", lines[i]);
		}
	free(help);
}

static void test_every_help_option_is_accepted_by_the_parser(void **state)
{
	/* Every "--name" in --help is known to getopt: one table. */
	char *help = config_help("gp");
	const char *p;
	int seen = 0;

	(void)state;
	assert_non_null(help);
	for (p = strstr(help, " --"); p; p = strstr(p, " --")) {
		char name[64], *argv[3] = {"gp", name, NULL};
		char err[CONFIG_ERR_MAX] = "";
		struct config cfg;
		size_t n = 0;
		int rc;

		p += 1;
		while (p[n] && p[n] != ' ' && p[n] != '\n')
			n++;
		assert_in_range(n, 3, sizeof(name) - 3);
		memcpy(name, p, n);
		name[n] = '\0';
		p += n;
		/* an upper-case metavariable follows options taking a value */
		if (p[0] == ' ' && p[1] >= 'A' && p[1] <= 'Z')
			memcpy(name + n, "=1", 3);
		assert_int_equal(config_init(&cfg), 0);
		rc = config_apply_args(&cfg, 2, argv, err, sizeof(err));
		config_free(&cfg);
		/* "=1" may be a bad value for some; it must not be unknown */
		if (rc < 0 && (strstr(err, "unknown option") ||
			       strstr(err, "needs a value") || !err[0])) {
			free(help);
			fail_msg("%s: rc %d: %s", name, rc, err);
		}
		seen++;
	}
	free(help);
	/* the 25 options listed above, and any added since */
	assert_in_range(seen, 25, 100);
}

/* ---- issue 15: the security options ---- */

static void test_security_defaults(void **state)
{
	struct config *cfg = *state;
	char err[CONFIG_ERR_MAX];

	assert_int_equal(cfg->request_body_timeout_ms, 20000);
	assert_int_equal(cfg->min_body_rate, 500);
	assert_int_equal(cfg->min_send_rate, 500);
	assert_int_equal(cfg->max_connections_per_client, 0);
	assert_int_equal(cfg->server_tokens, 1);
	assert_null(cfg->auth_file);
	assert_string_equal(cfg->auth_realm, "glassproxy");
	assert_int_equal(cfg->auth_max_failures, 10);
	assert_int_equal(cfg->auth_failure_window_ms, 60000);
	/* Squid's Safe_ports. */
	assert_int_equal(cfg->http_ports.count, 10);
	assert_int_equal(cfg->http_ports.ranges[9].lo, 1025);
	assert_int_equal(cfg->http_ports.ranges[9].hi, 65535);
	assert_int_equal(config_validate(cfg, err, sizeof(err)), 0);
}

static void test_security_options_parse_and_realm_is_checked(void **state)
{
	struct config *cfg = *state;
	char err[CONFIG_ERR_MAX];
	char *argv[] = {"gp",
			"--request-body-timeout=2s",
			"--min-body-rate=0",
			"--server-tokens=off",
			"--http-ports=80,8000-9000",
			"--auth-realm=a \"quoted\" realm",
			NULL};

	assert_int_equal(config_apply_args(cfg, 6, argv, err, sizeof(err)), 0);
	assert_int_equal(cfg->request_body_timeout_ms, 2000);
	assert_int_equal(cfg->min_body_rate, 0);
	assert_int_equal(cfg->server_tokens, 0);
	assert_int_equal(cfg->http_ports.count, 2);
	/* A quote would end the quoted-string of Proxy-Authenticate. */
	assert_int_equal(config_validate(cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "auth-realm"));
}

/* ---- fault injection (issue #11) ---- */

static void count_restart(void *arg, const struct config_change *c)
{
	assert_string_equal(c->name, "fault");
	*(int *)arg += c->needs_restart;
}

static void test_fault_specs_accumulate_from_file_and_args(void **state)
{
	struct config *cfg = *state;
	char err[CONFIG_ERR_MAX];
	char *argv[] = {"glassproxy",
			"--fault",
			"net.send[origin]=short",
			"--fault=clock.step=+10s@5",
			"--fault-seed",
			"42",
			NULL};

	assert_null(cfg->fault_seed);
	assert_int_equal(cfg->fault.count, 0);
	assert_int_equal(apply_text(cfg,
				    "fault net.recv[origin]=ECONNRESET@2\n"
				    "fault-seed 7\n",
				    err),
			 0);
	assert_int_equal(
		config_apply_args(cfg, ARGC(argv), argv, err, sizeof(err)), 0);
	/* The file's first, in order; the seed from the command line. */
	assert_list(&cfg->fault, 3, "net.recv[origin]=ECONNRESET@2",
		    "net.send[origin]=short", "clock.step=+10s@5");
	assert_string_equal(cfg->fault_seed, "42");
}

static void test_fault_options_are_dumped_and_need_a_restart(void **state)
{
	struct config *cfg = *state, fresh;
	char err[CONFIG_ERR_MAX], *dump;
	char *argv[] = {"glassproxy", "--fault", "net.accept=EMFILE@p0.1",
			NULL};
	int restart = 0;

	assert_int_equal(
		config_apply_args(cfg, ARGC(argv), argv, err, sizeof(err)), 0);
	dump = config_dump(cfg);
	assert_non_null(strstr(dump, "\nfault net.accept=EMFILE@p0.1\n"));
	free(dump);
	/* A reload names the change and says it needs a restart: the fault
	 * sys is built once, at start. */
	assert_int_equal(config_init(&fresh), 0);
	assert_int_equal(config_diff(cfg, &fresh, count_restart, &restart), 1);
	assert_int_equal(restart, 1);
	config_free(&fresh);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_init_sets_documented_defaults),
		T(test_free_twice_is_safe),
		T(test_file_good_text_with_comments_crlf_tabs),
		T(test_file_empty_and_comment_only_text_changes_nothing),
		T(test_file_later_line_replaces_string),
		T(test_file_bool_spellings),
		T(test_file_verbose_and_quiet),
		T(test_file_errors_name_path_line_and_problem),
		T(test_file_error_message_is_bounded_by_errlen),
		T(test_file_verbose_value_above_two_is_rejected),
		T(test_durations),
		T(test_shutdown_grace_may_be_zero),
		T(test_sizes),
		T(test_args_short_long_and_equals_forms),
		T(test_args_attached_short_value),
		T(test_args_lists_repeat),
		T(test_args_verbosity),
		T(test_args_errors),
		T(test_args_unknown_short_option_first_in_cluster),
		T(test_args_twice_in_one_process_resets_getopt),
		T(test_args_override_file_scalars_and_lists_accumulate),
		T(test_validate),
		T(test_typed_values_from_the_file),
		T(test_defaults_are_typed),
		T(test_typed_errors_in_the_file),
		T(test_via_name_and_parent_host_refuse_header_breakers),
		T(test_via_name_accepts_every_tchar),
		T(test_is_token_is_exactly_tchar),
		T(test_diff_names_each_change_and_flags_restart_ones),
		T(test_find_file_arg_forms),
		T(test_find_file_arg_agrees_with_getopt_on_clusters),
		T(test_dump_of_defaults),
		T(test_dump_round_trips_every_kind_of_option),
		T(test_help_mentions_every_option),
		T(test_every_help_option_is_accepted_by_the_parser),
		T(test_security_defaults),
		T(test_security_options_parse_and_realm_is_checked),
		T(test_fault_specs_accumulate_from_file_and_args),
		T(test_fault_options_are_dumped_and_need_a_restart),
#undef T
	};
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
