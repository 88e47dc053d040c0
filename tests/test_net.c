/*
 * Unit tests of net over the mock sys: address text both ways, the hosts
 * file, resolution order (literal, hosts file, resolver), connecting with a
 * timeout and falling through to the next address, receiving with a
 * deadline on the fake clock, sending, and listening; vetting resolved
 * addresses with the filter before connecting (as the proxy does), and the
 * upstream pool (readable idle connections closed, a loop over dead ones).
 */
#include "sys_mock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "glassproxy/filter.h"
#include "glassproxy/net.h"
#include "glassproxy/util.h"

/* ---- helpers ---- */

/* The address as text, for exact comparisons in messages. */
static const char *text_of(const struct sys_addr *a, char *buf)
{
	if (net_format_addr(a, buf, NET_ADDR_TEXT_MAX) < 0)
		return "(unformattable)";
	return buf;
}

static void assert_addr_text(const struct sys_addr *a, const char *want)
{
	char buf[NET_ADDR_TEXT_MAX];

	assert_string_equal(text_of(a, buf), want);
}

/* socket() then set_nonblocking(fd, 1), as net_connect_addr starts. */
static void will_open_socket(int fd)
{
	will_return(mock_socket, fd);
	will_return(mock_set_nonblocking, 0);
}

/* ---- net_parse_addr / net_format_addr ---- */

static void test_parse_addr_table(void **state)
{
	static const struct {
		const char *text;
		int rc;
		int family;
		const char *formatted; /* when rc == 0 */
	} cases[] = {
		{"127.0.0.1:8080", 0, AF_INET, "127.0.0.1:8080"},
		{"0.0.0.0:0", 0, AF_INET, "0.0.0.0:0"},
		{"255.255.255.255:65535", 0, AF_INET, "255.255.255.255:65535"},
		{"1.2.3.4:080", 0, AF_INET, "1.2.3.4:80"},
		{"[::1]:0", 0, AF_INET6, "[::1]:0"},
		{"[::1]:8080", 0, AF_INET6, "[::1]:8080"},
		{"[0:0:0:0:0:0:0:1]:80", 0, AF_INET6, "[::1]:80"},
		{"[2001:DB8::1]:443", 0, AF_INET6, "[2001:db8::1]:443"},
		{"[::ffff:1.2.3.4]:1", 0, AF_INET6, "[::ffff:1.2.3.4]:1"},
		{"[::1]", -EINVAL, 0, NULL},
		{"[::1]:", -EINVAL, 0, NULL},
		{"[::1]:65536", -EINVAL, 0, NULL},
		{"[::1]x80", -EINVAL, 0, NULL},
		{"[::1:80", -EINVAL, 0, NULL},
		{"[1.2.3.4]:80", -EINVAL, 0, NULL},
		{"[]:80", -EINVAL, 0, NULL},
		{"1.2.3.4", -EINVAL, 0, NULL},
		{"1.2.3.4:", -EINVAL, 0, NULL},
		{"1.2.3.4:65536", -EINVAL, 0, NULL},
		{"1.2.3.4:-1", -EINVAL, 0, NULL},
		{"1.2.3.4:80x", -EINVAL, 0, NULL},
		{"1.2.3.4: 80", -EINVAL, 0, NULL},
		{"1.2.3:80", -EINVAL, 0, NULL},
		{"256.1.1.1:80", -EINVAL, 0, NULL},
		{"host:80", -EINVAL, 0, NULL},
		{"localhost:80", -EINVAL, 0, NULL},
		{":80", -EINVAL, 0, NULL},
		{"::1:80", -EINVAL, 0, NULL},
		{"::1", -EINVAL, 0, NULL},
		{"", -EINVAL, 0, NULL},
		{"1111111111111111111111111111111111111111111111111111111111111"
		 "111111111:80",
		 -EINVAL, 0, NULL},
	};

	(void)state;
	for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++) {
		struct sys_addr a;
		char buf[NET_ADDR_TEXT_MAX];
		int rc = net_parse_addr(cases[i].text, &a);

		if (rc != cases[i].rc)
			fail_msg("'%s': rc %d, want %d", cases[i].text, rc,
				 cases[i].rc);
		if (rc != 0)
			continue;
		if (a.ss.ss_family != cases[i].family ||
		    a.len != (cases[i].family == AF_INET
				      ? sizeof(struct sockaddr_in)
				      : sizeof(struct sockaddr_in6)))
			fail_msg("'%s': family %d len %u", cases[i].text,
				 a.ss.ss_family, (unsigned)a.len);
		if (strcmp(text_of(&a, buf), cases[i].formatted) != 0)
			fail_msg("'%s' formats as '%s', want '%s'",
				 cases[i].text, buf, cases[i].formatted);
	}
}

static void test_parse_addr_fills_address_and_port(void **state)
{
	struct sys_addr a;
	const struct sockaddr_in *in = (const struct sockaddr_in *)&a.ss;
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&a.ss;
	static const unsigned char loopback6[16] = {[15] = 1};

	(void)state;
	assert_int_equal(net_parse_addr("127.0.0.1:8080", &a), 0);
	assert_int_equal(ntohl(in->sin_addr.s_addr), 0x7f000001);
	assert_int_equal(ntohs(in->sin_port), 8080);
	assert_int_equal(net_addr_port(&a), 8080);
	assert_int_equal(net_parse_addr("[::1]:443", &a), 0);
	assert_memory_equal(&in6->sin6_addr, loopback6, 16);
	assert_int_equal(ntohs(in6->sin6_port), 443);
	assert_int_equal(net_addr_port(&a), 443);
}

static void test_format_addr_both_families_and_limits(void **state)
{
	struct sys_addr a = sys_mock_addr4("192.0.2.1", 80);
	struct sys_addr b = sys_mock_addr6(
		"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535);
	struct sys_addr none;
	char buf[NET_ADDR_TEXT_MAX];

	(void)state;
	assert_int_equal(net_format_addr(&a, buf, sizeof(buf)), 12);
	assert_string_equal(buf, "192.0.2.1:80");
	assert_int_equal(net_format_addr(&b, buf, sizeof(buf)), 47);
	assert_string_equal(buf,
			    "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
	/* the longest text still fits NET_ADDR_TEXT_MAX */
	b = sys_mock_addr6("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255",
			   65535);
	assert_in_range(net_format_addr(&b, buf, sizeof(buf)), 1,
			NET_ADDR_TEXT_MAX - 1);
	/* too small: -ENOSPC */
	assert_int_equal(net_format_addr(&a, buf, 12), -ENOSPC);
	assert_int_equal(net_format_addr(&a, buf, 13), 12);
	memset(&none, 0, sizeof(none));
	none.ss.ss_family = AF_UNIX;
	assert_int_equal(net_format_addr(&none, buf, sizeof(buf)), 7);
	assert_string_equal(buf, "unknown");
	assert_int_equal(net_addr_port(&none), 0);
}

/* ---- the hosts file ---- */

static const char hosts_text[] =
	"# /etc/hosts for tests\r\n"
	"127.0.0.1 localhost loopback # trailing comment words\r\n"
	"\r\n"
	"10.0.0.1\tOrigin.Test  alias.test\n"
	"10.0.0.2 origin.test\n"
	"::1 v6.test\n"
	"not-an-ip bad.test\n"
	"999.1.1.1 bad2.test\n"
	"fe80::1%eth0 scoped.test\n"
	"   \t\n"
	"10.0.0.3\n"
	"   # indented comment\n"
	"10.0.0.4#glued comment\n"
	"2001:db8::5 Multi.test\r\n"
	"192.0.2.7 multi.test"; /* no final newline */

static struct net_hosts *parse_hosts(unsigned *skipped)
{
	struct net_hosts *hosts = NULL;

	assert_int_equal(net_hosts_parse(hosts_text, strlen(hosts_text), &hosts,
					 skipped),
			 0);
	assert_non_null(hosts);
	return hosts;
}

static void test_hosts_parse_counts_skipped_lines(void **state)
{
	unsigned skipped = 99;
	struct net_hosts *hosts = parse_hosts(&skipped);

	(void)state;
	/* not-an-ip, 999.1.1.1 and the scoped fe80::1%eth0 */
	assert_int_equal(skipped, 3);
	net_hosts_free(hosts);
	/* skipped may be NULL */
	net_hosts_free(parse_hosts(NULL));
}

static void test_hosts_lookup_table(void **state)
{
	static const struct {
		const char *name;
		int n;
		const char *addrs[2];
	} cases[] = {
		{"localhost", 1, {"127.0.0.1:80"}},
		{"loopback", 1, {"127.0.0.1:80"}},
		{"origin.test", 2, {"10.0.0.1:80", "10.0.0.2:80"}},
		{"ORIGIN.test", 2, {"10.0.0.1:80", "10.0.0.2:80"}},
		{"origin.test.", 2, {"10.0.0.1:80", "10.0.0.2:80"}},
		{"Alias.Test", 1, {"10.0.0.1:80"}},
		{"v6.test", 1, {"[::1]:80"}},
		{"multi.test", 2, {"[2001:db8::5]:80", "192.0.2.7:80"}},
		{"origin.test..", 0, {NULL}},
		{"origin", 0, {NULL}},
		{"test", 0, {NULL}},
		{"bad.test", 0, {NULL}},
		{"bad2.test", 0, {NULL}},
		{"scoped.test", 0, {NULL}},
		{"trailing", 0, {NULL}},
		{"comment", 0, {NULL}},
		{"glued", 0, {NULL}},
		{"10.0.0.3", 0, {NULL}},
		{"", 0, {NULL}},
		{".", 0, {NULL}},
	};
	struct net_hosts *hosts = parse_hosts(NULL);

	(void)state;
	for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++) {
		struct sys_addr out[4];
		char buf[NET_ADDR_TEXT_MAX];
		int n = net_hosts_lookup(hosts, cases[i].name, 80, out, 4);

		if (n != cases[i].n) {
			net_hosts_free(hosts);
			fail_msg("'%s': %d addresses, want %d", cases[i].name,
				 n, cases[i].n);
		}
		for (int j = 0; j < n; j++)
			if (strcmp(text_of(&out[j], buf), cases[i].addrs[j])) {
				net_hosts_free(hosts);
				fail_msg("'%s'[%d] = %s, want %s",
					 cases[i].name, j, buf,
					 cases[i].addrs[j]);
			}
	}
	net_hosts_free(hosts);
}

static void test_hosts_lookup_respects_max_and_port(void **state)
{
	struct net_hosts *hosts = parse_hosts(NULL);
	struct sys_addr out[2];

	(void)state;
	assert_int_equal(net_hosts_lookup(hosts, "origin.test", 8443, out, 1),
			 1);
	assert_addr_text(&out[0], "10.0.0.1:8443");
	assert_int_equal(net_hosts_lookup(hosts, "origin.test", 1, out, 0), 0);
	net_hosts_free(hosts);
	assert_int_equal(net_hosts_lookup(NULL, "origin.test", 80, out, 2), 0);
}

static void test_hosts_empty_and_over_long_names(void **state)
{
	char text[400], name[300];
	struct net_hosts *hosts = NULL;
	struct sys_addr out[1];
	unsigned skipped = 99;

	(void)state;
	assert_int_equal(net_hosts_parse("", 0, &hosts, &skipped), 0);
	assert_int_equal(skipped, 0);
	assert_int_equal(net_hosts_lookup(hosts, "a", 80, out, 1), 0);
	net_hosts_free(hosts);
	net_hosts_free(NULL);

	/* a 254-character name can never be looked up; its line is kept */
	memset(name, 'a', 254);
	name[254] = '\0';
	util_format(text, sizeof(text), "10.0.0.9 %s short\n", name);
	assert_int_equal(net_hosts_parse(text, strlen(text), &hosts, &skipped),
			 0);
	assert_int_equal(skipped, 0);
	assert_int_equal(net_hosts_lookup(hosts, name, 80, out, 1), 0);
	assert_int_equal(net_hosts_lookup(hosts, "short", 80, out, 1), 1);
	assert_addr_text(&out[0], "10.0.0.9:80");
	net_hosts_free(hosts);
}

static void test_hosts_many_entries_grow(void **state)
{
	char text[64 * 40];
	size_t len = 0;
	struct net_hosts *hosts = NULL;
	struct sys_addr out[1];

	(void)state;
	for (int i = 0; i < 40; i++)
		len += (size_t)util_format(text + len, sizeof(text) - len,
					   "10.1.0.%d host%d\n", i, i);
	assert_int_equal(net_hosts_parse(text, len, &hosts, NULL), 0);
	for (int i = 0; i < 40; i++) {
		char name[16], want[32];

		util_format(name, sizeof(name), "HOST%d", i);
		util_format(want, sizeof(want), "10.1.0.%d:1", i);
		assert_int_equal(net_hosts_lookup(hosts, name, 1, out, 1), 1);
		assert_addr_text(&out[0], want);
	}
	net_hosts_free(hosts);
}

/* ---- net_resolve ---- */

static void test_resolve_ip_literal_never_asks_resolver(void **state)
{
	struct sys *sys = sys_mock();
	struct net_hosts *hosts = parse_hosts(NULL);
	struct sys_addr out[4];

	(void)state;
	/* nothing is queued for mock_resolve: a call would fail the test */
	assert_int_equal(net_resolve(sys, hosts, "192.0.2.9", 80, out, 4), 1);
	assert_addr_text(&out[0], "192.0.2.9:80");
	assert_int_equal(net_resolve(sys, NULL, "2001:db8::1", 443, out, 4), 1);
	assert_addr_text(&out[0], "[2001:db8::1]:443");
	net_hosts_free(hosts);
}

static void test_resolve_hosts_file_before_resolver(void **state)
{
	struct sys *sys = sys_mock();
	struct net_hosts *hosts = parse_hosts(NULL);
	struct sys_addr out[4];
	struct sys_addr answer[2] = {sys_mock_addr4("203.0.113.5", 80),
				     sys_mock_addr6("2001:db8::7", 80)};

	(void)state;
	assert_int_equal(net_resolve(sys, hosts, "origin.test", 80, out, 4), 2);
	assert_addr_text(&out[0], "10.0.0.1:80");
	assert_addr_text(&out[1], "10.0.0.2:80");
	assert_int_equal(net_resolve(sys, hosts, "v6.test", 80, out, 4), 1);
	assert_addr_text(&out[0], "[::1]:80");

	expect_string(mock_resolve, host, "elsewhere.example");
	will_return(mock_resolve, 2);
	will_return(mock_resolve, answer);
	assert_int_equal(
		net_resolve(sys, hosts, "elsewhere.example", 80, out, 4), 2);
	assert_addr_text(&out[0], "203.0.113.5:80");
	assert_addr_text(&out[1], "[2001:db8::7]:80");
	net_hosts_free(hosts);
}

static void test_resolve_passes_resolver_errors(void **state)
{
	struct sys *sys = sys_mock();
	struct sys_addr out[4];

	(void)state;
	expect_string(mock_resolve, host, "nx.example");
	will_return(mock_resolve, -ENOENT);
	assert_int_equal(net_resolve(sys, NULL, "nx.example", 80, out, 4),
			 -ENOENT);
	expect_string(mock_resolve, host, "flaky.example");
	will_return(mock_resolve, -EAGAIN);
	assert_int_equal(net_resolve(sys, NULL, "flaky.example", 80, out, 4),
			 -EAGAIN);
}

/* ---- net_connect_addr ---- */

static void test_connect_immediate_success(void **state)
{
	struct sys *sys = sys_mock();
	struct sys_addr a = sys_mock_addr4("192.0.2.1", 80);

	(void)state;
	will_open_socket(5);
	will_return(mock_connect, 0);
	will_return(mock_set_nonblocking, 0);
	assert_int_equal(net_connect_addr(sys, &a, 3000), 5);
	assert_string_equal(sys_mock_trace(),
			    "set_nonblocking(5,1)=0 set_nonblocking(5,0)=0");
	assert_int_equal(sys_mock_close_count(), 0);
}

static void test_connect_in_progress_then_writable_then_so_error_0(void **state)
{
	struct sys *sys = sys_mock();
	struct sys_addr a = sys_mock_addr6("2001:db8::1", 443);

	(void)state;
	will_open_socket(5);
	will_return(mock_connect, -EINPROGRESS);
	will_poll1(1, POLLOUT);
	will_return(mock_getsockopt, 0);
	will_return(mock_getsockopt, 0); /* SO_ERROR */
	will_return(mock_set_nonblocking, 0);
	assert_int_equal(net_connect_addr(sys, &a, 3000), 5);
	assert_string_equal(sys_mock_trace(),
			    "set_nonblocking(5,1)=0 poll(5:o;3000)=1 "
			    "set_nonblocking(5,0)=0");
	assert_int_equal(sys_mock_close_count(), 0);
}

static void test_connect_poll_timeout_is_etimedout_and_closes(void **state)
{
	struct sys *sys = sys_mock();
	struct sys_addr a = sys_mock_addr4("192.0.2.1", 80);
	int64_t before = sys_now_mono_ms(sys);

	(void)state;
	will_open_socket(5);
	will_return(mock_connect, -EINPROGRESS);
	will_poll1(0, 0);
	assert_int_equal(net_connect_addr(sys, &a, 2500), -ETIMEDOUT);
	assert_true(sys_mock_is_closed(5));
	assert_int_equal(sys_mock_close_count(), 1);
	assert_int_equal(sys_now_mono_ms(sys) - before, 2500);
	assert_string_equal(sys_mock_trace(), "set_nonblocking(5,1)=0 "
					      "poll(5:o;2500)=0 close(5)");
}

static void test_connect_so_error_refused_closes(void **state)
{
	struct sys *sys = sys_mock();
	struct sys_addr a = sys_mock_addr4("192.0.2.1", 80);

	(void)state;
	will_open_socket(5);
	will_return(mock_connect, -EINPROGRESS);
	will_poll1(1, POLLOUT | POLLERR);
	will_return(mock_getsockopt, 0);
	will_return(mock_getsockopt, ECONNREFUSED);
	assert_int_equal(net_connect_addr(sys, &a, 3000), -ECONNREFUSED);
	assert_true(sys_mock_is_closed(5));
	assert_int_equal(sys_mock_close_count(), 1);
}

static void test_connect_failures_close_the_socket(void **state)
{
	static const struct {
		const char *what;
		int connect_rc, poll_rc, getsockopt_rc, nonblock_off_rc;
		int want;
	} cases[] = {
		{"refused at once", -ECONNREFUSED, 0, 0, 0, -ECONNREFUSED},
		{"unreachable", -ENETUNREACH, 0, 0, 0, -ENETUNREACH},
		{"poll fails", -EINPROGRESS, -ENOMEM, 0, 0, -ENOMEM},
		{"getsockopt fails", -EINPROGRESS, 1, -EBADF, 0, -EBADF},
		{"blocking again fails", 0, 0, 0, -EBADF, -EBADF},
	};

	(void)state;
	for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++) {
		struct sys *sys = sys_mock();
		struct sys_addr a = sys_mock_addr4("192.0.2.1", 80);
		int rc;

		will_open_socket(9);
		will_return(mock_connect, cases[i].connect_rc);
		if (cases[i].connect_rc == -EINPROGRESS) {
			will_poll1(cases[i].poll_rc, POLLOUT);
			if (cases[i].poll_rc > 0)
				will_return(mock_getsockopt,
					    cases[i].getsockopt_rc);
		}
		if (cases[i].connect_rc == 0)
			will_return(mock_set_nonblocking,
				    cases[i].nonblock_off_rc);
		rc = net_connect_addr(sys, &a, 1000);
		if (rc != cases[i].want || !sys_mock_is_closed(9) ||
		    sys_mock_close_count() != 1)
			fail_msg("%s: rc %d, closed %d", cases[i].what, rc,
				 sys_mock_close_count());
	}
}

static void test_connect_socket_failure_closes_nothing(void **state)
{
	struct sys *sys = sys_mock();
	struct sys_addr a = sys_mock_addr4("192.0.2.1", 80);

	(void)state;
	will_return(mock_socket, -EMFILE);
	assert_int_equal(net_connect_addr(sys, &a, 1000), -EMFILE);
	assert_int_equal(sys_mock_close_count(), 0);

	will_return(mock_socket, 5);
	will_return(mock_set_nonblocking, -EBADF);
	assert_int_equal(net_connect_addr(sys, &a, 1000), -EBADF);
	assert_true(sys_mock_is_closed(5));
}

/* ---- net_connect_host ---- */

static void test_connect_host_tries_next_address_after_refusal(void **state)
{
	struct sys *sys = sys_mock();
	struct sys_addr answer[3] = {sys_mock_addr4("192.0.2.1", 80),
				     sys_mock_addr6("2001:db8::2", 80),
				     sys_mock_addr4("192.0.2.3", 80)};
	struct sys_addr connected;

	(void)state;
	memset(&connected, 0, sizeof(connected));
	expect_string(mock_resolve, host, "origin.example");
	will_return(mock_resolve, 3);
	will_return(mock_resolve, answer);
	will_open_socket(5);
	will_return(mock_connect, -ECONNREFUSED);
	will_open_socket(6);
	will_return(mock_connect, 0);
	will_return(mock_set_nonblocking, 0);
	assert_int_equal(net_connect_host(sys, NULL, "origin.example", 80, 1000,
					  &connected),
			 6);
	assert_addr_text(&connected, "[2001:db8::2]:80");
	assert_true(sys_mock_is_closed(5));
	assert_false(sys_mock_is_closed(6));
	assert_int_equal(sys_mock_close_count(), 1);
}

static void test_connect_host_returns_last_error_when_all_fail(void **state)
{
	struct sys *sys = sys_mock();
	struct sys_addr answer[2] = {sys_mock_addr4("192.0.2.1", 80),
				     sys_mock_addr4("192.0.2.2", 80)};

	(void)state;
	expect_string(mock_resolve, host, "down.example");
	will_return(mock_resolve, 2);
	will_return(mock_resolve, answer);
	will_open_socket(5);
	will_return(mock_connect, -ECONNREFUSED);
	will_open_socket(6);
	will_return(mock_connect, -EINPROGRESS);
	will_poll1(0, 0);
	assert_int_equal(
		net_connect_host(sys, NULL, "down.example", 80, 1000, NULL),
		-ETIMEDOUT);
	assert_true(sys_mock_is_closed(5));
	assert_true(sys_mock_is_closed(6));

	/* the other order: the refusal is the last error */
	sys = sys_mock();
	expect_string(mock_resolve, host, "down.example");
	will_return(mock_resolve, 2);
	will_return(mock_resolve, answer);
	will_open_socket(5);
	will_return(mock_connect, -EINPROGRESS);
	will_poll1(0, 0);
	will_open_socket(6);
	will_return(mock_connect, -ECONNREFUSED);
	assert_int_equal(
		net_connect_host(sys, NULL, "down.example", 80, 1000, NULL),
		-ECONNREFUSED);
	assert_int_equal(sys_mock_close_count(), 2);
}

static void test_connect_host_resolution_failure_opens_nothing(void **state)
{
	struct sys *sys = sys_mock();
	struct sys_addr connected;

	(void)state;
	expect_string(mock_resolve, host, "nx.example");
	will_return(mock_resolve, -ENOENT);
	assert_int_equal(
		net_connect_host(sys, NULL, "nx.example", 80, 1000, &connected),
		-ENOENT);
	assert_string_equal(sys_mock_trace(), "");
}

static void test_connect_host_uses_hosts_file_and_literals(void **state)
{
	struct sys *sys = sys_mock();
	struct net_hosts *hosts = parse_hosts(NULL);
	struct sys_addr connected;

	(void)state;
	/* origin.test is 10.0.0.1 then 10.0.0.2; no resolver call */
	will_open_socket(5);
	will_return(mock_connect, -ECONNREFUSED);
	will_open_socket(6);
	will_return(mock_connect, 0);
	will_return(mock_set_nonblocking, 0);
	assert_int_equal(net_connect_host(sys, hosts, "Origin.Test", 8080, 1000,
					  &connected),
			 6);
	assert_addr_text(&connected, "10.0.0.2:8080");

	will_open_socket(7);
	will_return(mock_connect, 0);
	will_return(mock_set_nonblocking, 0);
	assert_int_equal(
		net_connect_host(sys, hosts, "::1", 8080, 1000, &connected), 7);
	assert_addr_text(&connected, "[::1]:8080");
	net_hosts_free(hosts);
}

/* ---- net_connect_vetted: resolved addresses judged before connecting ---- */

/* What the proxy's callback keeps: the filter, and the verdict of the
 * address it refused (for the 403 page). */
struct vet_ctx {
	const struct filter *filter;
	struct filter_verdict verdict;
	struct sys_addr refused;
	unsigned calls;
};

static bool vet_by_filter(void *arg, const struct sys_addr *a)
{
	struct vet_ctx *c = arg;

	c->calls++;
	if (filter_check_addr(c->filter, (const struct sockaddr *)&a->ss,
			      &c->verdict) == FILTER_ALLOW)
		return true;
	c->refused = *a;
	return false;
}

static struct filter *block_filter(void)
{
	static const char *block[] = {"127.0.0.0/8", "::1", "10.0.0.0/8",
				      "fc00::/7", "localhost"};
	struct filter *f = filter_new();

	assert_non_null(f);
	for (size_t i = 0; i < UTIL_ARRAY_LEN(block); i++)
		assert_int_equal(filter_add_pattern(f, FILTER_LIST_BLOCK,
						    block[i], "--block", 0,
						    NULL, NULL),
				 0);
	/* An allow list of names does not bear on addresses. */
	assert_int_equal(filter_add_pattern(f, FILTER_LIST_ALLOW, "example",
					    "--allow", 0, NULL, NULL),
			 0);
	return f;
}

static struct sys_addr addr_any(const char *ip)
{
	return strchr(ip, ':') ? sys_mock_addr6(ip, 80)
			       : sys_mock_addr4(ip, 80);
}

static void test_connect_vetted_table(void **state)
{
	static const struct {
		const char *name;
		const char *addrs[3]; /* what the mock resolver answers */
		const char *refused;  /* NULL: allowed, connects to addrs[0] */
		const char *rule;
	} cases[] = {
		{"public.example", {"192.0.2.1"}, NULL, NULL},
		{"public6.example", {"2001:db8::1", "192.0.2.2"}, NULL, NULL},
		{"mapped-ok.example", {"::ffff:192.0.2.3"}, NULL, NULL},
		{"loop.example", {"127.0.0.1"}, "127.0.0.1:80", "127.0.0.0/8"},
		{"loop6.example", {"::1"}, "[::1]:80", "::1"},
		{"mapped.example",
		 {"::ffff:127.0.0.1"},
		 "[::ffff:127.0.0.1]:80",
		 "127.0.0.0/8"},
		{"zero.example", {"0.0.0.0"}, "0.0.0.0:80", "0.0.0.0/8"},
		{"zero6.example", {"::"}, "[::]:80", "::"},
		{"zeromap.example",
		 {"::ffff:0.0.0.0"},
		 "[::ffff:0.0.0.0]:80",
		 "0.0.0.0/8"},
		{"ula.example", {"fd12::5"}, "[fd12::5]:80", "fc00::/7"},
		/* one bad address among good ones refuses the name */
		{"mixed.example",
		 {"192.0.2.9", "2001:db8::9", "10.9.9.9"},
		 "10.9.9.9:80",
		 "10.0.0.0/8"},
	};
	struct filter *f = block_filter();

	(void)state;
	for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++) {
		struct sys *sys = sys_mock();
		struct sys_addr answer[3], connected;
		struct vet_ctx vc = {.filter = f};
		int n = 0;

		while (n < 3 && cases[i].addrs[n]) {
			answer[n] = addr_any(cases[i].addrs[n]);
			n++;
		}
		expect_string(mock_resolve, host, cases[i].name);
		will_return(mock_resolve, n);
		will_return(mock_resolve, answer);
		if (cases[i].refused == NULL) {
			will_open_socket(5);
			will_return(mock_connect, 0);
			will_return(mock_set_nonblocking, 0);
		}
		int rc = net_connect_vetted(sys, NULL, cases[i].name, 80, 1000,
					    vet_by_filter, &vc, &connected);
		if (cases[i].refused == NULL) {
			assert_int_equal(rc, 5);
			assert_int_equal(vc.calls, (unsigned)n);
			continue;
		}
		assert_int_equal(rc, -EACCES);
		/* refused before any socket was opened */
		assert_string_equal(sys_mock_trace(), "");
		assert_addr_text(&vc.refused, cases[i].refused);
		assert_int_equal(vc.verdict.result, FILTER_BLOCK);
		assert_string_equal(vc.verdict.pattern, cases[i].rule);
	}
	filter_free(f);
}

static void test_connect_vetted_hosts_file_and_literals(void **state)
{
	struct sys *sys = sys_mock();
	struct net_hosts *hosts = parse_hosts(NULL);
	struct filter *f = block_filter();
	struct vet_ctx vc = {.filter = f};
	char text[FILTER_REASON_MAX + 100];

	(void)state;
	/* origin.test is 10.0.0.1 and 10.0.0.2 in the hosts file: refused
	 * without asking the resolver or opening a socket */
	assert_int_equal(net_connect_vetted(sys, hosts, "origin.test", 80, 1000,
					    vet_by_filter, &vc, NULL),
			 -EACCES);
	assert_addr_text(&vc.refused, "10.0.0.1:80");
	filter_verdict_format(&vc.verdict, text, sizeof(text));
	assert_string_equal(
		text, "blocked by --block (10.0.0.0/8): address 10.0.0.1");
	/* v6.test is ::1 */
	assert_int_equal(net_connect_vetted(sys, hosts, "v6.test", 80, 1000,
					    vet_by_filter, &vc, NULL),
			 -EACCES);
	/* a literal is vetted too */
	assert_int_equal(net_connect_vetted(sys, hosts, "0.0.0.0", 80, 1000,
					    vet_by_filter, &vc, NULL),
			 -EACCES);
	assert_string_equal(sys_mock_trace(), "");
	/* multi.test is 2001:db8::5 and 192.0.2.7: fine */
	will_open_socket(7);
	will_return(mock_connect, -ECONNREFUSED);
	will_open_socket(8);
	will_return(mock_connect, 0);
	will_return(mock_set_nonblocking, 0);
	vc.calls = 0;
	assert_int_equal(net_connect_vetted(sys, hosts, "multi.test", 80, 1000,
					    vet_by_filter, &vc, NULL),
			 8);
	assert_int_equal(vc.calls, 2);
	/* no vet: net_connect_host's behaviour */
	will_open_socket(9);
	will_return(mock_connect, 0);
	will_return(mock_set_nonblocking, 0);
	assert_int_equal(net_connect_vetted(sys, hosts, "origin.test", 80, 1000,
					    NULL, NULL, NULL),
			 9);
	/* resolution errors pass through before any vetting */
	expect_string(mock_resolve, host, "nx.example");
	will_return(mock_resolve, -ENOENT);
	vc.calls = 0;
	assert_int_equal(net_connect_vetted(sys, hosts, "nx.example", 80, 1000,
					    vet_by_filter, &vc, NULL),
			 -ENOENT);
	assert_int_equal(vc.calls, 0);
	filter_free(f);
	net_hosts_free(hosts);
}

/* ---- the upstream pool ---- */

static struct net_pool *new_pool(struct sys *sys, size_t max, int timeout)
{
	struct net_pool *pool;

	assert_int_equal(net_pool_new(sys, max, timeout, &pool), 0);
	return pool;
}

static void
test_pool_readable_idle_connection_is_closed_not_reused(void **state)
{
	struct sys *sys = sys_mock();
	struct net_pool *pool = new_pool(sys, 8, 60000);

	(void)state;
	net_pool_put(pool, "http://o:80", 5);
	net_pool_put(pool, "http://o:80", 6);
	net_pool_put(pool, "http://other:80", 7);
	/* 6 has stray bytes (or an end of stream): closed; 5 is quiet */
	will_poll1(1, POLLIN);
	will_poll1(0, 0);
	assert_int_equal(net_pool_take(pool, "http://o:80"), 5);
	assert_string_equal(sys_mock_trace(),
			    "poll(6:i;0)=1 close(6) poll(5:i;0)=0");
	assert_false(sys_mock_is_closed(5));
	assert_int_equal(net_pool_idle(pool), 1);
	/* a hang-up or an error counts as readable too */
	net_pool_put(pool, "http://o:80", 5);
	will_poll1(1, POLLHUP);
	assert_int_equal(net_pool_take(pool, "http://o:80"), -ENOENT);
	assert_true(sys_mock_is_closed(5));
	/* a failing poll does not hand the connection out either */
	net_pool_put(pool, "http://other:80", 9);
	will_return(mock_poll, -EBADF);
	will_poll1(0, 0);
	assert_int_equal(net_pool_take(pool, "http://other:80"), 7);
	assert_true(sys_mock_is_closed(9));
	assert_int_equal(net_pool_idle(pool), 0);
	assert_int_equal(net_pool_take(pool, "http://o:80"), -ENOENT);
	net_pool_free(pool);
}

static void test_pool_take_sweeps_expired_and_skips_other_keys(void **state)
{
	struct sys *sys = sys_mock();
	struct net_pool *pool = new_pool(sys, 8, 1000);

	(void)state;
	sys_mock_set_clock(10000, 0);
	net_pool_put(pool, "http://a:80", 5);
	net_pool_put(pool, "http://b:80", 6);
	sys_mock_advance_ms(600);
	net_pool_put(pool, "http://a:80", 7);
	sys_mock_advance_ms(500); /* 5 and 6 have waited 1100 ms */
	will_poll1(0, 0);
	assert_int_equal(net_pool_take(pool, "http://a:80"), 7);
	assert_true(sys_mock_is_closed(5));
	assert_true(sys_mock_is_closed(6));
	assert_int_equal(net_pool_idle(pool), 0);
	net_pool_free(pool);
}

static void test_pool_sweep_closes_readable_and_expired(void **state)
{
	struct sys *sys = sys_mock();
	struct net_pool *pool = new_pool(sys, 8, 1000);

	(void)state;
	sys_mock_set_clock(0, 0);
	assert_int_equal(net_pool_sweep(pool), 0); /* empty: no poll */
	net_pool_put(pool, "http://a:80", 5);
	sys_mock_advance_ms(900);
	net_pool_put(pool, "http://a:80", 6);
	net_pool_put(pool, "http://b:80", 7);
	net_pool_put(pool, "http://c:80", 8);
	sys_mock_advance_ms(200); /* 5 expired */
	/* one poll over all four: 7 got stray bytes, the rest are quiet */
	will_return(mock_poll, 1);
	will_return(mock_poll, 0);
	will_return(mock_poll, 0);
	will_return(mock_poll, POLLIN);
	will_return(mock_poll, 0);
	assert_int_equal(net_pool_sweep(pool), 2);
	assert_true(sys_mock_trace_has("poll(5:i,6:i,7:i,8:i;0)=1"));
	assert_true(sys_mock_is_closed(5));
	assert_true(sys_mock_is_closed(7));
	assert_int_equal(net_pool_idle(pool), 2);
	/* a failed poll still closes the expired ones, and nothing else */
	sys_mock_advance_ms(850); /* 6 and 8 have waited 1050 ms */
	net_pool_put(pool, "http://d:80", 9);
	will_return(mock_poll, -ENOMEM);
	assert_int_equal(net_pool_sweep(pool), 2);
	assert_false(sys_mock_is_closed(9));
	assert_int_equal(net_pool_idle(pool), 1);
	net_pool_free(pool);
	assert_true(sys_mock_is_closed(9));
}

/* A sys whose poll calls every idle connection readable but one, counts
 * closes and notes how deep the stack is at each poll. */
#define DEAD_RUN 10000
#define LIVE_FD	 100

static struct sys_net_ops dead_ops;
static struct sys dead_sys;
static unsigned dead_polls, dead_closes;
static uintptr_t stack_lo, stack_hi;

static int dead_poll(void *ctx, struct pollfd *fds, nfds_t n, int timeout)
{
	volatile char here = 0;
	uintptr_t at = (uintptr_t)&here;

	(void)ctx, (void)timeout;
	assert_int_equal(n, 1);
	dead_polls++;
	if (stack_lo == 0 || at < stack_lo)
		stack_lo = at;
	if (at > stack_hi)
		stack_hi = at;
	fds[0].revents = fds[0].fd == LIVE_FD ? 0 : POLLIN;
	return fds[0].revents ? 1 : 0;
}

static int dead_close(void *ctx, int fd)
{
	(void)ctx;
	assert_int_not_equal(fd, LIVE_FD);
	dead_closes++;
	return 0;
}

static void test_pool_ten_thousand_dead_connections_take_a_loop(void **state)
{
	struct net_pool *pool;

	(void)state;
	dead_sys = *sys_mock();
	dead_ops = *dead_sys.net;
	dead_ops.poll = dead_poll;
	dead_ops.close = dead_close;
	dead_sys.net = &dead_ops;
	dead_polls = dead_closes = 0;
	stack_lo = stack_hi = 0;
	assert_int_equal(net_pool_new(&dead_sys, DEAD_RUN + 1, 60000, &pool),
			 0);
	/* The one live connection is parked first, so it is tried last. */
	net_pool_put(pool, "http://o:80", LIVE_FD);
	for (int i = 0; i < DEAD_RUN; i++)
		net_pool_put(pool, "http://o:80", 1000 + i);
	assert_int_equal(net_pool_take(pool, "http://o:80"), LIVE_FD);
	assert_int_equal(dead_closes, DEAD_RUN);
	assert_int_equal(dead_polls, DEAD_RUN + 1);
	assert_int_equal(net_pool_idle(pool), 0);
	/* A recursion would be 10,000 frames deep by the last poll (about a
	 * megabyte at -O0); a loop polls from the same frame every time. */
	print_message("stack spread over %u polls: %lu bytes\n", dead_polls,
		      (unsigned long)(stack_hi - stack_lo));
	assert_true(stack_hi - stack_lo < 1024);
	net_pool_free(pool);
}

/* ---- net_recv / net_send_all ---- */

static void test_recv_data_ready(void **state)
{
	struct sys *sys = sys_mock();
	char buf[16];

	(void)state;
	will_poll1(1, POLLIN);
	will_recv_str("hello");
	assert_int_equal(net_recv(sys, 4, buf, sizeof(buf), 500), 5);
	assert_memory_equal(buf, "hello", 5);
	assert_string_equal(sys_mock_trace(), "poll(4:i;500)=1 recv(4)=5");
}

static void test_recv_times_out_on_the_fake_clock(void **state)
{
	struct sys *sys = sys_mock();
	int64_t before = sys_now_mono_ms(sys);
	char buf[16];

	(void)state;
	will_poll1(0, 0);
	assert_int_equal(net_recv(sys, 4, buf, sizeof(buf), 500), -ETIMEDOUT);
	assert_int_equal(sys_now_mono_ms(sys) - before, 500);
	assert_string_equal(sys_mock_trace(), "poll(4:i;500)=0");
}

static void test_recv_negative_timeout_does_not_poll(void **state)
{
	struct sys *sys = sys_mock();
	char buf[16];

	(void)state;
	will_recv_str("abc");
	assert_int_equal(net_recv(sys, 4, buf, sizeof(buf), -1), 3);
	assert_memory_equal(buf, "abc", 3);
	assert_string_equal(sys_mock_trace(), "recv(4)=3");
}

static void test_recv_passes_errors_up(void **state)
{
	struct sys *sys = sys_mock();
	char buf[16];

	(void)state;
	will_poll1(1, POLLIN | POLLERR);
	will_fail(mock_recv, -ECONNRESET);
	assert_int_equal(net_recv(sys, 4, buf, sizeof(buf), 500), -ECONNRESET);
	will_poll1(-ENOMEM, 0);
	assert_int_equal(net_recv(sys, 4, buf, sizeof(buf), 500), -ENOMEM);
}

static void test_send_all_sends_everything(void **state)
{
	struct sys *sys = sys_mock();
	const char *sent;
	size_t len;

	(void)state;
	will_send(4);
	will_send(SYS_MOCK_ALL);
	assert_int_equal(net_send_all(sys, 4, "GET / HTTP/1.1\r\n", 16), 0);
	sent = sys_mock_sent(&len);
	assert_int_equal(len, 16);
	assert_memory_equal(sent, "GET / HTTP/1.1\r\n", 16);
}

static void test_send_all_maps_eagain_to_etimedout(void **state)
{
	struct sys *sys = sys_mock();

	(void)state;
	will_send(2);
	will_fail(mock_send, -EAGAIN);
	assert_int_equal(net_send_all(sys, 4, "hello", 5), -ETIMEDOUT);
	will_fail(mock_send, -EWOULDBLOCK);
	assert_int_equal(net_send_all(sys, 4, "hello", 5), -ETIMEDOUT);
	will_fail(mock_send, -EPIPE);
	assert_int_equal(net_send_all(sys, 4, "hello", 5), -EPIPE);
	will_fail(mock_send, -ECONNRESET);
	assert_int_equal(net_send_all(sys, 4, "hello", 5), -ECONNRESET);
}

static void test_socket_options_return_the_os_result(void **state)
{
	struct sys *sys = sys_mock();

	(void)state;
	will_return(mock_setsockopt, 0);
	assert_int_equal(net_set_send_timeout(sys, 4, 1500), 0);
	will_return(mock_setsockopt, -EBADF);
	assert_int_equal(net_set_send_timeout(sys, 4, 1500), -EBADF);
	will_return(mock_setsockopt, 0);
	assert_int_equal(net_set_nodelay(sys, 4), 0);
	will_return(mock_setsockopt, -ENOPROTOOPT);
	assert_int_equal(net_set_nodelay(sys, 4), -ENOPROTOOPT);
}

/* ---- net_listen / net_accept ---- */

static void test_listen_ipv4_sets_reuseaddr_binds_listens(void **state)
{
	struct sys *sys = sys_mock();
	struct sys_addr a = sys_mock_addr4("127.0.0.1", 0);

	(void)state;
	will_return(mock_socket, 3);
	will_return(mock_setsockopt, 0); /* SO_REUSEADDR */
	will_return(mock_bind, 0);
	will_return(mock_listen, 0);
	assert_int_equal(net_listen(sys, &a, 128, 0), 3);
	assert_int_equal(sys_mock_close_count(), 0);
}

static void test_listen_reuseport_only_when_asked(void **state)
{
	struct sys *sys = sys_mock();
	struct sys_addr a = sys_mock_addr4("127.0.0.1", 0);

	(void)state;
	will_return(mock_socket, 3);
	will_return(mock_setsockopt, 0); /* SO_REUSEADDR */
	will_return(mock_setsockopt, 0); /* SO_REUSEPORT */
	will_return(mock_bind, 0);
	will_return(mock_listen, 0);
	assert_int_equal(net_listen(sys, &a, 128, NET_LISTEN_REUSEPORT), 3);
	assert_int_equal(sys_mock_sockopt_count(SOL_SOCKET, SYS_SO_REUSEPORT),
			 1);
	sys = sys_mock();
	will_return(mock_socket, 3);
	will_return(mock_setsockopt, 0); /* SO_REUSEADDR only */
	will_return(mock_bind, 0);
	will_return(mock_listen, 0);
	assert_int_equal(net_listen(sys, &a, 128, 0), 3);
	assert_int_equal(sys_mock_sockopt_count(SOL_SOCKET, SYS_SO_REUSEPORT),
			 0);
}

static void test_listen_ipv6_also_sets_v6only(void **state)
{
	struct sys *sys = sys_mock();
	struct sys_addr a = sys_mock_addr6("::1", 8080);

	(void)state;
	will_return(mock_socket, 3);
	will_return(mock_setsockopt, 0); /* SO_REUSEADDR */
	will_return(mock_setsockopt, 0); /* IPV6_V6ONLY */
	will_return(mock_bind, 0);
	will_return(mock_listen, 0);
	assert_int_equal(net_listen(sys, &a, 128, 0), 3);
	assert_int_equal(sys_mock_close_count(), 0);
}

static void test_listen_failures_close_the_socket(void **state)
{
	struct sys *sys = sys_mock();
	struct sys_addr a = sys_mock_addr4("127.0.0.1", 8080);

	(void)state;
	will_return(mock_socket, 3);
	will_return(mock_setsockopt, 0);
	will_return(mock_bind, -EADDRINUSE);
	assert_int_equal(net_listen(sys, &a, 128, 0), -EADDRINUSE);
	assert_true(sys_mock_is_closed(3));

	sys = sys_mock();
	will_return(mock_socket, 4);
	will_return(mock_setsockopt, -EINVAL);
	assert_int_equal(net_listen(sys, &a, 128, 0), -EINVAL);
	assert_true(sys_mock_is_closed(4));

	sys = sys_mock();
	will_return(mock_socket, 5);
	will_return(mock_setsockopt, 0);
	will_return(mock_bind, 0);
	will_return(mock_listen, -EOPNOTSUPP);
	assert_int_equal(net_listen(sys, &a, 128, 0), -EOPNOTSUPP);
	assert_true(sys_mock_is_closed(5));
	assert_int_equal(sys_mock_close_count(), 1);

	sys = sys_mock();
	will_return(mock_socket, -EAFNOSUPPORT);
	assert_int_equal(net_listen(sys, &a, 128, 0), -EAFNOSUPPORT);
	assert_int_equal(sys_mock_close_count(), 0);
}

static void test_accept_returns_fd_and_peer(void **state)
{
	struct sys *sys = sys_mock();
	struct sys_addr peer;

	(void)state;
	will_return(mock_accept, 8);
	assert_int_equal(net_accept(sys, 3, &peer), 8);
	assert_addr_text(&peer, "127.0.0.1:40000");
	will_return(mock_accept, -EMFILE);
	assert_int_equal(net_accept(sys, 3, &peer), -EMFILE);
}

/* ---- the pool: flush, new limits, many dead connections ---- */

static void test_pool_flush_closes_every_idle_connection(void **state)
{
	struct sys *sys = sys_mock();
	struct net_pool *pool;

	(void)state;
	assert_int_equal(net_pool_new(sys, 4, 30000, &pool), 0);
	net_pool_put(pool, "http:a:80", 7);
	net_pool_put(pool, "http:b:80", 8);
	net_pool_flush(pool);
	assert_int_equal(net_pool_idle(pool), 0);
	assert_true(sys_mock_is_closed(7));
	assert_true(sys_mock_is_closed(8));
	/* Nothing left to hand out: no poll, no close. */
	assert_int_equal(net_pool_take(pool, "http:a:80"), -ENOENT);
	net_pool_free(pool);
	assert_int_equal(sys_mock_close_count(), 2);
}

static void
test_pool_set_limits_closes_the_oldest_beyond_the_bound(void **state)
{
	struct sys *sys = sys_mock();
	struct net_pool *pool;

	(void)state;
	assert_int_equal(net_pool_new(sys, 4, 30000, &pool), 0);
	net_pool_put(pool, "k", 7);
	sys_mock_advance_ms(10);
	net_pool_put(pool, "k", 8);
	sys_mock_advance_ms(10);
	net_pool_put(pool, "k", 9);
	assert_int_equal(net_pool_set_limits(pool, 1, 100), 0);
	assert_int_equal(net_pool_idle(pool), 1);
	assert_true(sys_mock_is_closed(7));
	assert_true(sys_mock_is_closed(8));
	assert_false(sys_mock_is_closed(9));
	/* The new idle timeout applies to what is already waiting. */
	sys_mock_advance_ms(100);
	assert_int_equal(net_pool_take(pool, "k"), -ENOENT);
	assert_true(sys_mock_is_closed(9));
	/* And a bigger bound holds more again. */
	assert_int_equal(net_pool_set_limits(pool, 3, 30000), 0);
	net_pool_put(pool, "k", 10);
	net_pool_put(pool, "k", 11);
	assert_int_equal(net_pool_idle(pool), 2);
	net_pool_free(pool);
}

static void test_pool_take_skips_many_dead_connections(void **state)
{
	struct sys *sys = sys_mock();
	struct net_pool *pool;

	(void)state;
	assert_int_equal(net_pool_new(sys, 64, 30000, &pool), 0);
	for (int fd = 100; fd < 140; fd++)
		net_pool_put(pool, "k", fd);
	/* All readable (closed by the peer) but the oldest. */
	for (int i = 0; i < 39; i++)
		will_poll1(1, POLLIN);
	will_poll1(0, 0);
	assert_int_equal(net_pool_take(pool, "k"), 100);
	assert_int_equal(sys_mock_close_count(), 39);
	net_pool_free(pool);
}

/*
 * ---- torture: connect, send_all and recv with each call failing ----
 *
 * On a real loopback listener (port 0): after a failure the path changes
 * (close, no retry, no send), which a mock script could not follow.  The
 * listener side is plain libc, outside the injector.
 */
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "torture.h"

struct net_torture {
	int listener;
	uint16_t port;
	bool served;
};

static void net_torture_listen(struct net_torture *nt)
{
	struct sockaddr_in in = {.sin_family = AF_INET};
	socklen_t len = sizeof(in);

	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	nt->listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	assert_true(nt->listener >= 0);
	assert_int_equal(bind(nt->listener, (struct sockaddr *)&in, len), 0);
	assert_int_equal(listen(nt->listener, 16), 0);
	assert_int_equal(
		getsockname(nt->listener, (struct sockaddr *)&in, &len), 0);
	nt->port = ntohs(in.sin_port);
}

/* Connections a failed run left in the backlog are dropped first. */
static struct sys *net_torture_setup(void *arg)
{
	struct net_torture *nt = arg;
	int fd;

	while ((fd = accept(nt->listener, NULL, NULL)) >= 0)
		close(fd);
	nt->served = false;
	return sys_posix();
}

/* The origin's side: take "ping", answer "pong", close. */
static int net_torture_serve(struct net_torture *nt)
{
	struct pollfd p = {.fd = nt->listener, .events = POLLIN};
	char buf[4];
	int fd;

	assert_int_equal(poll(&p, 1, 5000), 1);
	fd = accept(nt->listener, NULL, NULL);
	assert_true(fd >= 0);
	assert_int_equal(recv(fd, buf, 4, MSG_WAITALL), 4);
	assert_memory_equal(buf, "ping", 4);
	assert_int_equal(send(fd, "pong", 4, MSG_NOSIGNAL), 4);
	close(fd);
	nt->served = true;
	return 0;
}

static int net_torture_run(struct sys *sys, void *arg)
{
	struct net_torture *nt = arg;
	struct sys_addr peer;
	char buf[16];
	ssize_t n;
	int fd, rc;

	fd = net_connect_host(sys, NULL, "127.0.0.1", nt->port, 5000, &peer);
	if (fd < 0)
		return fd;
	rc = net_set_send_timeout(sys, fd, 5000);
	if (rc == 0)
		rc = net_send_all(sys, fd, "ping", 4);
	if (rc == 0)
		rc = net_torture_serve(nt);
	if (rc == 0) {
		n = net_recv(sys, fd, buf, sizeof(buf), 5000);
		rc = n < 0 ? (int)n : 0;
		if (n >= 0) /* loopback hands 4 bytes over in one piece */
			assert_int_equal(n, 4);
	}
	sys_close(sys, fd);
	return rc;
}

static bool net_torture_check(void *arg, int rc, const char *failed)
{
	struct net_torture *nt = arg;

	if (!failed) {
		assert_int_equal(rc, 0);
		assert_true(nt->served);
		return false;
	}
	/* The one failure the caller cannot see: closing after the exchange. */
	return !strcmp(failed, "close") && nt->served;
}

static void test_torture_net_connect_send_recv(void **state)
{
	struct net_torture nt;
	struct torture_op op = {
		.name = "net connect/send_all/recv",
		.set = TORTURE_SYS | TORTURE_ALLOC,
		.err = -EIO,
		.setup = net_torture_setup,
		.run = net_torture_run,
		.check = net_torture_check,
	};
	long n;

	(void)state;
	net_torture_listen(&nt);
	/* socket, set_nonblocking, connect, poll, getsockopt, set_nonblocking,
	 * setsockopt, send, poll, recv, close (poll and getsockopt only when
	 * connect says EINPROGRESS, as it does on Linux) */
	n = torture_run(&op, &nt);
	print_message("net: %ld calls failed in turn (transient)\n", n);
	assert_in_range(n, 9, 11);
	op.err = -ECONNRESET;
	op.persistent = true;
	assert_in_range(torture_run(&op, &nt), 9, 11);
	close(nt.listener);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_addr_table),
		cmocka_unit_test(test_pool_flush_closes_every_idle_connection),
		cmocka_unit_test(
			test_pool_set_limits_closes_the_oldest_beyond_the_bound),
		cmocka_unit_test(test_pool_take_skips_many_dead_connections),
		cmocka_unit_test(test_parse_addr_fills_address_and_port),
		cmocka_unit_test(test_format_addr_both_families_and_limits),
		cmocka_unit_test(test_hosts_parse_counts_skipped_lines),
		cmocka_unit_test(test_hosts_lookup_table),
		cmocka_unit_test(test_hosts_lookup_respects_max_and_port),
		cmocka_unit_test(test_hosts_empty_and_over_long_names),
		cmocka_unit_test(test_hosts_many_entries_grow),
		cmocka_unit_test(test_resolve_ip_literal_never_asks_resolver),
		cmocka_unit_test(test_resolve_hosts_file_before_resolver),
		cmocka_unit_test(test_resolve_passes_resolver_errors),
		cmocka_unit_test(test_connect_immediate_success),
		cmocka_unit_test(
			test_connect_in_progress_then_writable_then_so_error_0),
		cmocka_unit_test(
			test_connect_poll_timeout_is_etimedout_and_closes),
		cmocka_unit_test(test_connect_so_error_refused_closes),
		cmocka_unit_test(test_connect_failures_close_the_socket),
		cmocka_unit_test(test_connect_socket_failure_closes_nothing),
		cmocka_unit_test(
			test_connect_host_tries_next_address_after_refusal),
		cmocka_unit_test(
			test_connect_host_returns_last_error_when_all_fail),
		cmocka_unit_test(
			test_connect_host_resolution_failure_opens_nothing),
		cmocka_unit_test(
			test_connect_host_uses_hosts_file_and_literals),
		cmocka_unit_test(test_connect_vetted_table),
		cmocka_unit_test(test_connect_vetted_hosts_file_and_literals),
		cmocka_unit_test(
			test_pool_readable_idle_connection_is_closed_not_reused),
		cmocka_unit_test(
			test_pool_take_sweeps_expired_and_skips_other_keys),
		cmocka_unit_test(test_pool_sweep_closes_readable_and_expired),
		cmocka_unit_test(
			test_pool_ten_thousand_dead_connections_take_a_loop),
		cmocka_unit_test(test_recv_data_ready),
		cmocka_unit_test(test_recv_times_out_on_the_fake_clock),
		cmocka_unit_test(test_recv_negative_timeout_does_not_poll),
		cmocka_unit_test(test_recv_passes_errors_up),
		cmocka_unit_test(test_send_all_sends_everything),
		cmocka_unit_test(test_send_all_maps_eagain_to_etimedout),
		cmocka_unit_test(test_socket_options_return_the_os_result),
		cmocka_unit_test(test_listen_ipv4_sets_reuseaddr_binds_listens),
		cmocka_unit_test(test_listen_reuseport_only_when_asked),
		cmocka_unit_test(test_listen_ipv6_also_sets_v6only),
		cmocka_unit_test(test_listen_failures_close_the_socket),
		cmocka_unit_test(test_accept_returns_fd_and_peer),
		cmocka_unit_test(test_torture_net_connect_send_recv),
	};
	return cmocka_run_group_tests_name("net", tests, NULL, NULL);
}
