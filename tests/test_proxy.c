/*
 * Unit tests of the proxy module: proxy_serve() driven end to end over the
 * mock sys.
 *
 * Each test scripts, in call order, the whole OS conversation one client
 * connection has: the socket options set on the client, the request bytes
 * arriving (net_recv polls first), name resolution and the non-blocking
 * connect to the origin, what the origin answers, and every send.  The
 * mock fails a test on any call that was not scripted and on any scripted
 * answer left unused, so "no socket, no resolve, no connect" is proved by
 * scripting none.  Afterwards a test checks the bytes each side got
 * (sys_mock_sent_on), the transcript of descriptor calls (sys_mock_trace),
 * which descriptors were closed, and the access and event log lines.
 *
 * Descriptors: the client is 5, origin connections 7 and 8, the stop pipe
 * 10/11, the event and access logs 20/21.  The logs are opened on the mock
 * (mock_open) and their writes captured per file by a wrapped fs.write, so
 * the log lines can be compared exactly (without their timestamps).
 */
#include "sys_mock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "glassproxy/filter.h"
#include "glassproxy/log.h"
#include "glassproxy/net.h"
#include "glassproxy/parse.h"
#include "glassproxy/proxy.h"
#include "proxy/proxy_int.h"

#define CLIENT	  5
#define ORIGIN	  7
#define ORIGIN2	  8
#define STOP_RD	  10
#define STOP_WR	  11
#define EVENT_FD  20
#define ACCESS_FD 21

static const struct proxy_settings settings = {
	.connect_timeout_ms = 5000,
	.response_timeout_ms = 7000,
	.request_timeout_ms = 3000,
	.client_idle_timeout_ms = 15000,
	.tunnel_idle_timeout_ms = 60000,
	.max_request_body = 0,
	.upstream_idle_timeout_ms = 30000,
	.max_idle_upstream = 4,
	.forwarded = PROXY_FORWARDED_OFF,
	.via_name = "glassproxy",
};

/* ---- the fixture: mock sys with captured log files, log, proxy ---- */

struct log_file {
	char bytes[16384];
	size_t len;
};

static struct log_file event_log, access_log;
static struct sys_fs_ops capturing_fs;
static struct sys_net_ops hooked_net;
static const struct sys_net_ops *mock_net;
static struct sys test_sys;
static size_t stop_bytes;
static int stop_on_recv_fd; /* proxy_stop() just before this fd's recv */
static struct log *logger;
static struct proxy *px;
static struct sys_addr peer, origin_addr;
static size_t trace_start; /* the trace before it is the setup's */

static ssize_t capture_write(void *ctx, int fd, const void *buf, size_t len)
{
	struct log_file *f = fd == EVENT_FD    ? &event_log
			     : fd == ACCESS_FD ? &access_log
					       : NULL;

	(void)ctx;
	if (fd == STOP_WR) { /* proxy_stop() wakes the idle connections */
		stop_bytes += len;
		return (ssize_t)len;
	}
	if (!f)
		fail_msg("write(%d) is not a log write", fd);
	assert_true(f->len + len < sizeof(f->bytes));
	memcpy(f->bytes + f->len, buf, len);
	f->len += len;
	f->bytes[f->len] = '\0';
	return (ssize_t)len;
}

/* A recv that can begin a graceful stop while a request is in flight. */
static ssize_t hooked_recv(void *ctx, int fd, void *buf, size_t len, int flags)
{
	if (fd == stop_on_recv_fd) {
		stop_on_recv_fd = -1;
		proxy_stop(px);
	}
	return mock_net->recv(ctx, fd, buf, len, flags);
}

static int setup(void **state)
{
	struct sys *mock = sys_mock();

	(void)state;
	test_sys = *mock;
	capturing_fs = *mock->fs;
	capturing_fs.write = capture_write;
	test_sys.fs = &capturing_fs;
	mock_net = mock->net;
	hooked_net = *mock->net;
	hooked_net.recv = hooked_recv;
	test_sys.net = &hooked_net;
	stop_bytes = 0;
	stop_on_recv_fd = -1;
	event_log.len = access_log.len = 0;
	event_log.bytes[0] = access_log.bytes[0] = '\0';
	peer = sys_mock_addr4("127.0.0.1", 40000);
	origin_addr = sys_mock_addr4("192.0.2.80", 8080);

	expect_string(mock_open, path, "event.log");
	will_return(mock_open, EVENT_FD);
	expect_string(mock_open, path, "access.log");
	will_return(mock_open, ACCESS_FD);
	assert_int_equal(log_open(&test_sys, "event.log", "access.log",
				  LOG_INFO, &logger),
			 0);
	will_return(mock_pipe, 0);
	will_return(mock_pipe, STOP_RD);
	will_return(mock_pipe, STOP_WR);
	assert_int_equal(proxy_new(&test_sys, logger, &settings, &px), 0);
	trace_start = strlen(sys_mock_trace());
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	proxy_free(px);
	log_close(logger);
	px = NULL;
	logger = NULL;
	return 0;
}

/* ---- scripting the OS ---- */

/* proxy_serve() bounds sends to the client and turns Nagle off. */
static void will_accept_client(void)
{
	will_return(mock_setsockopt, 0); /* SO_SNDTIMEO */
	will_return(mock_setsockopt, 0); /* TCP_NODELAY */
}

/* Bytes arriving on fd: net_recv polls, then receives. */
static void will_arrive(const char *bytes)
{
	will_poll1(1, POLLIN);
	will_recv_str(bytes);
}

/* The peer on fd closes: readable, then end of stream. */
static void will_eof(void)
{
	will_poll1(1, POLLIN);
	will_recv(NULL, 0);
}

/* The client speaks again after a response: idle wait, then net_recv. */
static void will_arrive_after_idle(const char *bytes)
{
	will_poll2(1, POLLIN, 0);
	if (bytes)
		will_arrive(bytes);
	else
		will_eof();
}

/* The client stays silent for the whole keep-alive idle timeout. */
static void will_stay_idle(void)
{
	will_poll2(0, 0, 0);
}

/* The resolver answers for host: rc < 0 an error, else origin_addr. */
static void will_resolve(const char *host, int rc)
{
	expect_string(mock_resolve, host, host);
	will_return(mock_resolve, rc);
	if (rc > 0)
		will_return(mock_resolve, &origin_addr);
}

/*
 * net_connect_addr up to its wait: socket, non-blocking, connect in
 * progress; the test scripts how the wait ends.
 */
static void will_start_connect(int fd)
{
	will_return(mock_socket, fd);
	will_return(mock_set_nonblocking, 0);
	will_return(mock_connect, -EINPROGRESS);
}

/* The connect completes (SO_ERROR err) after the socket became writable. */
static void will_finish_connect(int err)
{
	will_poll1(1, POLLOUT);
	will_return(mock_getsockopt, 0);
	will_return(mock_getsockopt, err);
	if (err == 0)
		will_return(mock_set_nonblocking, 0);
}

/* A fresh origin connection the way proxy_forward() makes one. */
static void will_connect_origin(const char *host, int fd)
{
	will_resolve(host, 1);
	will_start_connect(fd);
	will_finish_connect(0);
	will_return(mock_setsockopt, 0); /* SO_SNDTIMEO */
	will_return(mock_setsockopt, 0); /* TCP_NODELAY */
}

/* n sends accepted whole (an error page is two: head, body). */
static void will_send_n(int n)
{
	while (n-- > 0)
		will_send(SYS_MOCK_ALL);
}

/* ---- checking what happened ---- */

/*
 * The trace since setup, with the byte counts of successful sends and
 * receives left out ("send(5)", but "recv(5)=0"): the scripts fix those,
 * and the bytes themselves are compared separately.
 */
static const char *trace(void)
{
	static char out[1 << 16];
	const char *t = sys_mock_trace() + trace_start;
	size_t o = 0;

	while (*t == ' ')
		t++;
	while (*t && o + 1 < sizeof(out)) {
		if ((strncmp(t, "send(", 5) == 0 ||
		     strncmp(t, "recv(", 5) == 0) &&
		    (t == sys_mock_trace() || t[-1] == ' ')) {
			const char *eq = strchr(t, '=');
			if (eq && eq[1] >= '1' && eq[1] <= '9') {
				while (t < eq && o + 1 < sizeof(out))
					out[o++] = *t++;
				while (*t && *t != ' ')
					t++;
				continue;
			}
		}
		out[o++] = *t++;
	}
	out[o] = '\0';
	return out;
}

static void assert_contains(const char *haystack, const char *needle)
{
	if (!strstr(haystack, needle))
		fail_msg("expected to find\n  \"%s\"\nin\n  \"%s\"", needle,
			 haystack);
}

/* What was sent on fd, NUL-terminated. */
static const char *sent_to(int fd)
{
	static char copies[2][1 << 16];
	static int which;
	char *copy = copies[which++ % 2];
	size_t len;
	const char *bytes = sys_mock_sent_on(fd, &len);

	assert_true(len < sizeof(copies[0]));
	memcpy(copy, bytes, len);
	copy[len] = '\0';
	return copy;
}

static size_t sent_len(int fd)
{
	size_t len;

	sys_mock_sent_on(fd, &len);
	return len;
}

static void assert_sent(int fd, const char *want)
{
	assert_string_equal(sent_to(fd), want);
}

/*
 * The client got exactly one error page made by the proxy: this status
 * line, Connection: close, and a body of exactly Content-Length bytes that
 * repeats the status and says message.
 */
static void assert_error_page(const char *status_line, const char *message)
{
	const char *got = sent_to(CLIENT);
	const char *end = strstr(got, "\r\n\r\n");
	char head[1024], h1[128];
	const char *cl;
	size_t head_len;
	unsigned long length;

	if (strncmp(got, status_line, strlen(status_line)) != 0 ||
	    strncmp(got + strlen(status_line), "\r\n", 2) != 0)
		fail_msg("status line: want \"%s\", got:\n%s", status_line,
			 got);
	assert_non_null(end);
	head_len = (size_t)(end - got) + 4;
	assert_true(head_len < sizeof(head));
	memcpy(head, got, head_len);
	head[head_len] = '\0';
	assert_contains(head, "\r\nConnection: close\r\n");
	assert_contains(head, "\r\nContent-Type: text/html; charset=utf-8\r\n");
	cl = strstr(head, "\r\nContent-Length: ");
	assert_non_null(cl);
	length = strtoul(cl + 18, NULL, 10);
	assert_int_equal(length, strlen(got) - head_len);
	/* "HTTP/1.1 403 Forbidden" -> "<h1>403 Forbidden</h1>" */
	snprintf(h1, sizeof(h1), "<h1>%s</h1>", status_line + 9);
	assert_contains(got + head_len, h1);
	assert_contains(got + head_len, message);
}

/* A log's lines without their timestamps (the first word). */
static const char *lines_of(const struct log_file *f)
{
	static char out[sizeof(f->bytes)];
	const char *p = f->bytes;
	size_t o = 0;

	while (*p) {
		const char *sp = strchr(p, ' ');
		const char *nl = strchr(p, '\n');
		assert_non_null(nl);
		if (sp && sp < nl)
			p = sp + 1;
		memcpy(out + o, p, (size_t)(nl - p) + 1);
		o += (size_t)(nl - p) + 1;
		p = nl + 1;
	}
	out[o] = '\0';
	return out;
}

/* The access log holds exactly this one line (printf-style). */
__attribute__((format(printf, 1, 2))) static void
assert_access_log(const char *fmt, ...)
{
	char want[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(want, sizeof(want), fmt, ap);
	va_end(ap);
	assert_string_equal(lines_of(&access_log), want);
}

static struct filter *new_filter(void)
{
	struct filter *f = filter_new();

	assert_non_null(f);
	return f;
}

static void install_filter(struct filter *f)
{
	struct proxy_rules_spec spec = {
		.hosts = NULL, .filter = f, .direct = NULL};

	assert_int_equal(filter_error_count(f), 0);
	assert_int_equal(proxy_set_rules(px, &spec), 0);
}

/*
 * After an error answer the proxy stops sending and drains what the
 * client may still send (a lingering close); here the client is done.
 */
static void will_linger(void)
{
	will_return(mock_shutdown, 0);
	will_poll1(1, POLLIN);
	will_recv(NULL, 0);
}

/* ---- requests refused before any origin is involved ---- */

static void test_malformed_request_gets_400_and_close(void **state)
{
	static const char req[] = "GET http://origin.example/ HTTP/1.1\r\n"
				  "Host: origin.example\r\n"
				  "X-Folded: a\r\n"
				  " b\r\n"
				  "\r\n";

	(void)state;
	will_accept_client();
	will_arrive(req);
	will_send_n(2);

	will_linger();
	proxy_serve(px, CLIENT, &peer);

	assert_error_page("HTTP/1.1 400 Bad Request",
			  http_error_reason(HTTP_E_OBS_FOLD));
	assert_string_equal(trace(),
			    "poll(5:i;3000)=1 recv(5) send(5) "
			    "send(5)"
			    " shutdown(5,WR)=0 poll(5:i;2000)=1 recv(5)=0");
	assert_int_equal(sys_mock_close_count(), 0); /* the caller closes */
	assert_string_equal(lines_of(&event_log),
			    "info 127.0.0.1:40000 bad request: "
			    "obs-fold header line\n");
	assert_access_log("127.0.0.1:40000 - - 400 %zu 0 0ms BAD-REQUEST\n",
			  sent_len(CLIENT));
}

static void
test_origin_form_request_gets_400_saying_this_is_a_proxy(void **state)
{
	static const char req[] = "GET / HTTP/1.1\r\nHost: origin.example\r\n"
				  "\r\n";

	(void)state;
	will_accept_client();
	will_arrive(req);
	will_send_n(2);

	will_linger();
	proxy_serve(px, CLIENT, &peer);

	assert_error_page("HTTP/1.1 400 Bad Request",
			  "This is a proxy: ask it for an absolute URL "
			  "(http://host/path)");
	assert_string_equal(trace(),
			    "poll(5:i;3000)=1 recv(5) send(5) "
			    "send(5)"
			    " shutdown(5,WR)=0 poll(5:i;2000)=1 recv(5)=0");
	assert_access_log("127.0.0.1:40000 GET / 400 %zu %zu 0ms "
			  "NOT-A-PROXY-REQUEST\n",
			  sent_len(CLIENT), strlen(req));
}

static void test_blocked_host_gets_403_without_any_lookup(void **state)
{
	static const char req[] =
		"GET http://ads.blocked.example/x HTTP/1.1\r\n"
		"Host: ads.blocked.example\r\n\r\n";
	struct filter *f = new_filter();

	(void)state;
	assert_int_equal(filter_add_pattern(f, FILTER_LIST_BLOCK,
					    "blocked.example", "--block", 0,
					    NULL, NULL),
			 0);
	install_filter(f);
	will_accept_client();
	will_arrive(req);
	will_send_n(2);
	/* No resolve, socket or connect is scripted: one would fail here. */

	will_linger();
	proxy_serve(px, CLIENT, &peer);

	assert_error_page("HTTP/1.1 403 Forbidden",
			  "does not serve the host ads.blocked.example here: "
			  "blocked by --block (blocked.example).");
	assert_string_equal(trace(),
			    "poll(5:i;3000)=1 recv(5) send(5) "
			    "send(5)"
			    " shutdown(5,WR)=0 poll(5:i;2000)=1 recv(5)=0");
	assert_string_equal(lines_of(&event_log),
			    "info 127.0.0.1:40000 GET "
			    "http://ads.blocked.example/x: refused: blocked "
			    "by --block (blocked.example)\n");
	assert_access_log("127.0.0.1:40000 GET http://ads.blocked.example/x "
			  "403 %zu %zu 0ms BLOCKED\n",
			  sent_len(CLIENT), strlen(req));
}

static void test_client_outside_allowed_networks_gets_403_unread(void **state)
{
	struct filter *f = new_filter();

	(void)state;
	assert_int_equal(filter_add_client(f, "10.0.0.0/8", "--allow-client", 0,
					   NULL, NULL),
			 0);
	install_filter(f);
	peer = sys_mock_addr4("192.0.2.1", 40000);
	will_accept_client();
	will_send_n(2);
	/* No poll or recv is scripted: the request is never read. */

	proxy_serve(px, CLIENT, &peer);

	assert_error_page("HTTP/1.1 403 Forbidden",
			  "Your address is not allowed to use this proxy.");
	assert_string_equal(trace(), "send(5) send(5)");
	assert_string_equal(lines_of(&event_log),
			    "warn 192.0.2.1:40000: client address not allowed "
			    "(--allow-client)\n");
	assert_access_log("192.0.2.1:40000 - - 403 %zu 0 0ms CLIENT-REFUSED\n",
			  sent_len(CLIENT));
}

static void test_client_inside_allowed_networks_is_served(void **state)
{
	static const char req[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
	struct filter *f = new_filter();

	(void)state;
	assert_int_equal(filter_add_client(f, "10.0.0.0/8", "--allow-client", 0,
					   NULL, NULL),
			 0);
	install_filter(f);
	peer = sys_mock_addr4("10.9.8.7", 40000);
	will_accept_client();
	will_arrive(req); /* read this time: the 400 proves it was parsed */
	will_send_n(2);

	will_linger();
	proxy_serve(px, CLIENT, &peer);

	assert_error_page("HTTP/1.1 400 Bad Request", "This is a proxy");
	assert_string_equal(trace(),
			    "poll(5:i;3000)=1 recv(5) send(5) "
			    "send(5)"
			    " shutdown(5,WR)=0 poll(5:i;2000)=1 recv(5)=0");
}

static void test_connect_to_port_outside_list_gets_403_unconnected(void **state)
{
	static const char req[] = "CONNECT origin.example:25 HTTP/1.1\r\n"
				  "Host: origin.example:25\r\n\r\n";
	struct filter *f = new_filter();

	(void)state;
	assert_int_equal(filter_add_connect_ports(f, "443,8443", "--ports", 0,
						  NULL, NULL),
			 2);
	install_filter(f);
	will_accept_client();
	will_arrive(req);
	will_send_n(2);
	/* No resolve, socket or connect is scripted. */

	will_linger();
	proxy_serve(px, CLIENT, &peer);

	assert_error_page("HTTP/1.1 403 Forbidden",
			  "CONNECT to port 25 is not allowed here.");
	assert_string_equal(trace(),
			    "poll(5:i;3000)=1 recv(5) send(5) "
			    "send(5)"
			    " shutdown(5,WR)=0 poll(5:i;2000)=1 recv(5)=0");
	assert_string_equal(lines_of(&event_log),
			    "info 127.0.0.1:40000 CONNECT origin.example:25: "
			    "CONNECT to port 25 is not allowed here.\n");
	assert_access_log("127.0.0.1:40000 CONNECT origin.example:25 403 %zu "
			  "%zu 0ms BLOCKED-PORT\n",
			  sent_len(CLIENT), strlen(req));
}

/* ---- reaching the origin fails ---- */

static const char get_req[] = "GET http://nx.example/ HTTP/1.1\r\n"
			      "Host: nx.example\r\n\r\n";

static void test_unresolvable_host_gets_502(void **state)
{
	(void)state;
	will_accept_client();
	will_arrive(get_req);
	will_resolve("nx.example", -ENOENT);
	will_send_n(2);

	will_linger();
	proxy_serve(px, CLIENT, &peer);

	assert_error_page("HTTP/1.1 502 Bad Gateway",
			  "The host nx.example could not be resolved.");
	assert_string_equal(trace(),
			    "poll(5:i;3000)=1 recv(5) send(5) "
			    "send(5)"
			    " shutdown(5,WR)=0 poll(5:i;2000)=1 recv(5)=0");
	assert_string_equal(lines_of(&event_log),
			    "warn 127.0.0.1:40000 http://nx.example/: The host "
			    "nx.example could not be resolved.\n");
	assert_access_log("127.0.0.1:40000 GET http://nx.example/ 502 %zu %zu "
			  "0ms ERROR\n",
			  sent_len(CLIENT), strlen(get_req));
}

static void test_temporary_resolver_failure_gets_502(void **state)
{
	(void)state;
	will_accept_client();
	will_arrive(get_req);
	will_resolve("nx.example", -EAGAIN);
	will_send_n(2);

	will_linger();
	proxy_serve(px, CLIENT, &peer);

	assert_error_page("HTTP/1.1 502 Bad Gateway",
			  "The name of nx.example could not be looked up "
			  "right now (temporary resolver failure).");
	assert_string_equal(trace(),
			    "poll(5:i;3000)=1 recv(5) send(5) "
			    "send(5)"
			    " shutdown(5,WR)=0 poll(5:i;2000)=1 recv(5)=0");
}

static void test_connection_refused_gets_502(void **state)
{
	(void)state;
	will_accept_client();
	will_arrive(get_req);
	will_resolve("nx.example", 1);
	will_start_connect(ORIGIN);
	will_finish_connect(ECONNREFUSED);
	will_send_n(2);

	will_linger();
	proxy_serve(px, CLIENT, &peer);

	assert_error_page("HTTP/1.1 502 Bad Gateway",
			  "nx.example refused the connection.");
	assert_string_equal(trace(),
			    "poll(5:i;3000)=1 recv(5) set_nonblocking(7,1)=0 "
			    "poll(7:o;5000)=1 close(7) send(5) send(5)"
			    " shutdown(5,WR)=0 poll(5:i;2000)=1 recv(5)=0");
	assert_true(sys_mock_is_closed(ORIGIN));
	assert_int_equal(sent_len(ORIGIN), 0);
}

static void test_connect_timeout_gets_504(void **state)
{
	(void)state;
	will_accept_client();
	will_arrive(get_req);
	will_resolve("nx.example", 1);
	will_start_connect(ORIGIN);
	will_poll1(0, 0); /* never writable: the fake clock jumps 5 s */
	will_send_n(2);

	will_linger();
	proxy_serve(px, CLIENT, &peer);

	assert_error_page("HTTP/1.1 504 Gateway Timeout",
			  "Connecting to nx.example timed out.");
	assert_string_equal(trace(),
			    "poll(5:i;3000)=1 recv(5) set_nonblocking(7,1)=0 "
			    "poll(7:o;5000)=0 close(7) send(5) send(5)"
			    " shutdown(5,WR)=0 poll(5:i;2000)=1 recv(5)=0");
	assert_true(sys_mock_is_closed(ORIGIN));
	assert_access_log("127.0.0.1:40000 GET http://nx.example/ 504 %zu %zu "
			  "5000ms ERROR\n",
			  sent_len(CLIENT), strlen(get_req));
}

/* ---- forwarding ---- */

static const char fwd_req[] =
	"GET http://origin.example:8080/path?q HTTP/1.1\r\n"
	"Host: origin.example:8080\r\n"
	"User-Agent: test/1.0\r\n"
	"Proxy-Connection: keep-alive\r\n"
	"Connection: keep-alive, X-Trace\r\n"
	"X-Trace: for-this-hop-only\r\n"
	"Accept: */*\r\n"
	"\r\n";

/* fwd_req as the origin must get it: origin-form, hop-by-hop gone, Via. */
static const char fwd_upstream[] = "GET /path?q HTTP/1.1\r\n"
				   "Host: origin.example:8080\r\n"
				   "User-Agent: test/1.0\r\n"
				   "Accept: */*\r\n"
				   "Via: 1.1 glassproxy\r\n"
				   "\r\n";

static const char ok_keep_alive[] = "HTTP/1.1 200 OK\r\n"
				    "Content-Type: text/plain\r\n"
				    "Content-Length: 5\r\n"
				    "Keep-Alive: timeout=5\r\n"
				    "Connection: keep-alive\r\n"
				    "\r\n"
				    "hello";

/* ok_keep_alive as the client must get it. */
static const char ok_relayed[] = "HTTP/1.1 200 OK\r\n"
				 "Content-Type: text/plain\r\n"
				 "Content-Length: 5\r\n"
				 "Via: 1.1 glassproxy\r\n"
				 "\r\n"
				 "hello";

/* fwd_req goes out on a fresh connection and the origin answers it. */
static void will_forward_fresh(int fd, const char *response)
{
	will_connect_origin("origin.example", fd);
	will_send(SYS_MOCK_ALL); /* the request head */
	will_arrive(response);
	will_send_n(2); /* response head, then body */
}

static void test_get_is_rewritten_relayed_and_connection_pooled(void **state)
{
	(void)state;
	will_accept_client();
	will_arrive(fwd_req);
	will_forward_fresh(ORIGIN, ok_keep_alive);
	will_arrive_after_idle(NULL); /* the client closes */

	proxy_serve(px, CLIENT, &peer);

	assert_sent(ORIGIN, fwd_upstream);
	assert_sent(CLIENT, ok_relayed);
	assert_string_equal(trace(),
			    "poll(5:i;3000)=1 recv(5) set_nonblocking(7,1)=0 "
			    "poll(7:o;5000)=1 set_nonblocking(7,0)=0 send(7) "
			    "poll(7:i;7000)=1 recv(7) send(5) send(5) "
			    "poll(5:i,10:i;15000)=1 poll(5:i;3000)=1 "
			    "recv(5)=0");
	assert_false(sys_mock_is_closed(ORIGIN));
	assert_int_equal(net_pool_idle(px->pool), 1);
	assert_string_equal(lines_of(&event_log), "");
	assert_access_log("127.0.0.1:40000 GET "
			  "http://origin.example:8080/path?q 200 %zu %zu 0ms "
			  "DIRECT\n",
			  sent_len(CLIENT), strlen(fwd_req));
}

static void test_origin_connection_close_is_closed_not_pooled(void **state)
{
	static const char res[] = "HTTP/1.1 200 OK\r\n"
				  "Content-Length: 2\r\n"
				  "Connection: close\r\n"
				  "\r\n"
				  "ok";

	(void)state;
	will_accept_client();
	will_arrive(fwd_req);
	will_forward_fresh(ORIGIN, res);
	will_arrive_after_idle(NULL);

	proxy_serve(px, CLIENT, &peer);

	assert_sent(ORIGIN, fwd_upstream);
	/* The client's own connection stays open: no Connection: close. */
	assert_sent(CLIENT, "HTTP/1.1 200 OK\r\n"
			    "Content-Length: 2\r\n"
			    "Via: 1.1 glassproxy\r\n"
			    "\r\n"
			    "ok");
	assert_string_equal(trace(),
			    "poll(5:i;3000)=1 recv(5) set_nonblocking(7,1)=0 "
			    "poll(7:o;5000)=1 set_nonblocking(7,0)=0 send(7) "
			    "poll(7:i;7000)=1 recv(7) send(5) send(5) close(7) "
			    "poll(5:i,10:i;15000)=1 poll(5:i;3000)=1 "
			    "recv(5)=0");
	assert_true(sys_mock_is_closed(ORIGIN));
	assert_int_equal(net_pool_idle(px->pool), 0);
}

static void test_second_request_reuses_pooled_connection(void **state)
{
	static const char req2[] = "GET http://origin.example:8080/two "
				   "HTTP/1.1\r\n"
				   "Host: origin.example:8080\r\n\r\n";
	static const char res2[] = "HTTP/1.1 204 No Content\r\n\r\n";

	(void)state;
	will_accept_client();
	will_arrive(fwd_req);
	will_forward_fresh(ORIGIN, ok_keep_alive);
	will_arrive_after_idle(req2);
	will_poll1(0, 0); /* the pool checks the idle connection is quiet */
	will_send(SYS_MOCK_ALL);
	will_arrive(res2);
	will_send(SYS_MOCK_ALL); /* a head without a body: one send */
	will_stay_idle();

	proxy_serve(px, CLIENT, &peer);

	assert_sent(ORIGIN, "GET /path?q HTTP/1.1\r\n"
			    "Host: origin.example:8080\r\n"
			    "User-Agent: test/1.0\r\n"
			    "Accept: */*\r\n"
			    "Via: 1.1 glassproxy\r\n"
			    "\r\n"
			    "GET /two HTTP/1.1\r\n"
			    "Host: origin.example:8080\r\n"
			    "Via: 1.1 glassproxy\r\n"
			    "\r\n");
	assert_string_equal(sent_to(CLIENT) + strlen(ok_relayed),
			    "HTTP/1.1 204 No Content\r\n"
			    "Via: 1.1 glassproxy\r\n"
			    "\r\n");
	assert_string_equal(trace(),
			    "poll(5:i;3000)=1 recv(5) set_nonblocking(7,1)=0 "
			    "poll(7:o;5000)=1 set_nonblocking(7,0)=0 send(7) "
			    "poll(7:i;7000)=1 recv(7) send(5) send(5) "
			    "poll(5:i,10:i;15000)=1 poll(5:i;3000)=1 recv(5) "
			    "poll(7:i;0)=0 send(7) poll(7:i;7000)=1 recv(7) "
			    "send(5) poll(5:i,10:i;15000)=0");
	assert_false(sys_mock_is_closed(ORIGIN));
	assert_int_equal(net_pool_idle(px->pool), 1);
}

static void test_dead_pooled_connection_is_retried_on_a_fresh_one(void **state)
{
	(void)state;
	will_accept_client();
	will_arrive(fwd_req);
	will_forward_fresh(ORIGIN, ok_keep_alive);
	will_arrive_after_idle(fwd_req);
	will_poll1(0, 0);	 /* quiet in the pool ... */
	will_send(SYS_MOCK_ALL); /* ... takes the request ... */
	will_eof();		 /* ... and turns out closed */
	will_forward_fresh(ORIGIN2, ok_keep_alive);
	will_stay_idle();

	proxy_serve(px, CLIENT, &peer);

	assert_sent(ORIGIN2, fwd_upstream);
	assert_string_equal(sent_to(CLIENT) + strlen(ok_relayed), ok_relayed);
	assert_true(sys_mock_is_closed(ORIGIN));
	assert_false(sys_mock_is_closed(ORIGIN2));
	assert_int_equal(net_pool_idle(px->pool), 1);
	assert_true(sys_mock_trace_has("recv(7)=0"));
}

static void test_response_timeout_gets_504_and_closes_origin(void **state)
{
	(void)state;
	will_accept_client();
	will_arrive(fwd_req);
	will_connect_origin("origin.example", ORIGIN);
	will_send(SYS_MOCK_ALL);
	will_poll1(0, 0); /* the origin stays silent: the clock jumps 7 s */
	will_send_n(2);

	will_linger();
	proxy_serve(px, CLIENT, &peer);

	assert_sent(ORIGIN, fwd_upstream);
	assert_error_page("HTTP/1.1 504 Gateway Timeout",
			  "The origin did not answer within 7000 ms.");
	assert_string_equal(trace(),
			    "poll(5:i;3000)=1 recv(5) set_nonblocking(7,1)=0 "
			    "poll(7:o;5000)=1 set_nonblocking(7,0)=0 send(7) "
			    "poll(7:i;7000)=0 send(5) send(5) close(7)"
			    " shutdown(5,WR)=0 poll(5:i;2000)=1 recv(5)=0");
	assert_true(sys_mock_is_closed(ORIGIN));
	assert_int_equal(net_pool_idle(px->pool), 0);
	assert_access_log("127.0.0.1:40000 GET "
			  "http://origin.example:8080/path?q 504 %zu %zu "
			  "7000ms ERROR\n",
			  sent_len(CLIENT), strlen(fwd_req));
}

static void test_post_body_is_streamed_to_the_origin(void **state)
{
	static const char req[] = "POST http://origin.example:8080/form "
				  "HTTP/1.1\r\n"
				  "Host: origin.example:8080\r\n"
				  "Content-Type: text/plain\r\n"
				  "Content-Length: 11\r\n"
				  "\r\n"
				  "hello";
	static const char res[] = "HTTP/1.1 201 Created\r\n"
				  "Content-Length: 0\r\n\r\n";

	(void)state;
	will_accept_client();
	will_arrive(req); /* the head and the first 5 bytes of the body */
	will_connect_origin("origin.example", ORIGIN);
	will_send_n(2); /* the head, then the body bytes that came with it */
	will_arrive(" world");
	will_send(SYS_MOCK_ALL);
	will_arrive(res);
	will_send(SYS_MOCK_ALL);
	will_arrive_after_idle(NULL);

	proxy_serve(px, CLIENT, &peer);

	assert_sent(ORIGIN, "POST /form HTTP/1.1\r\n"
			    "Host: origin.example:8080\r\n"
			    "Content-Type: text/plain\r\n"
			    "Content-Length: 11\r\n"
			    "Via: 1.1 glassproxy\r\n"
			    "\r\n"
			    "hello world");
	assert_sent(CLIENT, "HTTP/1.1 201 Created\r\n"
			    "Content-Length: 0\r\n"
			    "Via: 1.1 glassproxy\r\n"
			    "\r\n");
	/* The rest of the body is waited for with the request timeout. */
	assert_string_equal(trace(),
			    "poll(5:i;3000)=1 recv(5) set_nonblocking(7,1)=0 "
			    "poll(7:o;5000)=1 set_nonblocking(7,0)=0 send(7) "
			    "send(7) poll(5:i;3000)=1 recv(5) send(7) "
			    "poll(7:i;7000)=1 recv(7) send(5) "
			    "poll(5:i,10:i;15000)=1 poll(5:i;3000)=1 "
			    "recv(5)=0");
	assert_int_equal(net_pool_idle(px->pool), 1);
	assert_access_log(
		"127.0.0.1:40000 POST http://origin.example:8080/form "
		"201 %zu %zu 0ms DIRECT\n",
		sent_len(CLIENT), strlen(req) + 6);
}

static void test_ip_literal_host_is_connected_without_resolver(void **state)
{
	static const char req[] = "GET http://[2001:db8::1]:8080/ HTTP/1.1\r\n"
				  "Host: [2001:db8::1]:8080\r\n\r\n";

	(void)state;
	will_accept_client();
	will_arrive(req);
	/* will_connect_origin() without the resolver */
	will_start_connect(ORIGIN);
	will_finish_connect(0);
	will_return(mock_setsockopt, 0);
	will_return(mock_setsockopt, 0);
	will_send(SYS_MOCK_ALL);
	will_arrive("HTTP/1.1 204 No Content\r\n\r\n");
	will_send(SYS_MOCK_ALL);
	will_arrive_after_idle(NULL);

	proxy_serve(px, CLIENT, &peer);

	assert_sent(ORIGIN, "GET / HTTP/1.1\r\n"
			    "Host: [2001:db8::1]:8080\r\n"
			    "Via: 1.1 glassproxy\r\n"
			    "\r\n");
	assert_sent(CLIENT, "HTTP/1.1 204 No Content\r\n"
			    "Via: 1.1 glassproxy\r\n"
			    "\r\n");
}

/* ---- a graceful stop ---- */

static void test_stop_during_a_request_finishes_it_with_close(void **state)
{
	(void)state;
	stop_on_recv_fd = CLIENT; /* the stop begins as the request arrives */
	will_accept_client();
	will_arrive(fwd_req);
	will_forward_fresh(ORIGIN, ok_keep_alive);
	/* No idle wait follows: the connection ends after this exchange. */

	proxy_serve(px, CLIENT, &peer);

	assert_int_equal(stop_bytes, 1);
	assert_sent(ORIGIN, fwd_upstream);
	assert_sent(CLIENT, "HTTP/1.1 200 OK\r\n"
			    "Content-Type: text/plain\r\n"
			    "Content-Length: 5\r\n"
			    "Via: 1.1 glassproxy\r\n"
			    "Connection: close\r\n"
			    "\r\n"
			    "hello");
	assert_string_equal(trace(),
			    "poll(5:i;3000)=1 recv(5) set_nonblocking(7,1)=0 "
			    "poll(7:o;5000)=1 set_nonblocking(7,0)=0 send(7) "
			    "poll(7:i;7000)=1 recv(7) send(5) send(5)");
}

static void
test_stop_during_a_request_with_interim_response_says_close(void **state)
{
	static const char res[] = "HTTP/1.1 103 Early Hints\r\n"
				  "Link: </style.css>; rel=preload\r\n"
				  "\r\n"
				  "HTTP/1.1 200 OK\r\n"
				  "Content-Length: 0\r\n"
				  "\r\n";

	(void)state;
	stop_on_recv_fd = CLIENT;
	will_accept_client();
	will_arrive(fwd_req);
	will_connect_origin("origin.example", ORIGIN);
	will_send(SYS_MOCK_ALL);
	will_arrive(res);
	will_send(SYS_MOCK_ALL); /* the 103 */
	will_send(SYS_MOCK_ALL); /* the 200 head; no body */

	proxy_serve(px, CLIENT, &peer);

	assert_sent(CLIENT, "HTTP/1.1 103 Early Hints\r\n"
			    "Link: </style.css>; rel=preload\r\n"
			    "Via: 1.1 glassproxy\r\n"
			    "\r\n"
			    "HTTP/1.1 200 OK\r\n"
			    "Content-Length: 0\r\n"
			    "Via: 1.1 glassproxy\r\n"
			    "Connection: close\r\n"
			    "\r\n");
}

/* ---- the client's side of the connection ---- */

static void test_client_idle_timeout_closes_quietly(void **state)
{
	/* Answered by the proxy itself, keeping the connection alive. */
	static const char req[] = "OPTIONS http://origin.example/ HTTP/1.1\r\n"
				  "Host: origin.example\r\n"
				  "Max-Forwards: 0\r\n\r\n";
	const char *first;

	(void)state;
	will_accept_client();
	will_arrive(req);
	will_send(SYS_MOCK_ALL);
	will_stay_idle();

	proxy_serve(px, CLIENT, &peer);

	first = sent_to(CLIENT);
	assert_true(strncmp(first, "HTTP/1.1 200 OK\r\n", 17) == 0);
	assert_null(strstr(first, "Connection: close"));
	/* One response and nothing more: the timeout itself sends nothing. */
	assert_string_equal(trace(), "poll(5:i;3000)=1 recv(5) send(5) "
				     "poll(5:i,10:i;15000)=0");
	assert_non_null(strstr(first, "\r\n\r\n"));
	assert_int_equal(strlen(strstr(first, "\r\n\r\n")), 4);
	assert_int_equal(sys_mock_close_count(), 0);
	assert_access_log("127.0.0.1:40000 OPTIONS http://origin.example/ 200 "
			  "%zu %zu 0ms ANSWERED-HERE\n",
			  sent_len(CLIENT), strlen(req));
}

static void test_incomplete_request_head_gets_408(void **state)
{
	(void)state;
	will_accept_client();
	will_arrive("GET http://origin.example/ HTTP/1.1\r\n");
	will_poll1(0, 0); /* the rest never comes: the clock jumps 3 s */
	will_send_n(2);

	will_linger();
	proxy_serve(px, CLIENT, &peer);

	assert_error_page("HTTP/1.1 408 Request Timeout",
			  "The request head did not arrive in time.");
	assert_string_equal(trace(),
			    "poll(5:i;3000)=1 recv(5) "
			    "poll(5:i;3000)=0 send(5) send(5)"
			    " shutdown(5,WR)=0 poll(5:i;2000)=1 recv(5)=0");
}

static void test_silent_client_closes_quietly(void **state)
{
	(void)state;
	will_accept_client();
	will_poll1(0, 0); /* connects and never speaks */

	proxy_serve(px, CLIENT, &peer);

	assert_int_equal(sent_len(CLIENT), 0);
	assert_string_equal(trace(), "poll(5:i;3000)=0");
	assert_string_equal(lines_of(&access_log), "");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_malformed_request_gets_400_and_close),
		T(test_origin_form_request_gets_400_saying_this_is_a_proxy),
		T(test_blocked_host_gets_403_without_any_lookup),
		T(test_client_outside_allowed_networks_gets_403_unread),
		T(test_client_inside_allowed_networks_is_served),
		T(test_connect_to_port_outside_list_gets_403_unconnected),
		T(test_unresolvable_host_gets_502),
		T(test_temporary_resolver_failure_gets_502),
		T(test_connection_refused_gets_502),
		T(test_connect_timeout_gets_504),
		T(test_get_is_rewritten_relayed_and_connection_pooled),
		T(test_origin_connection_close_is_closed_not_pooled),
		T(test_second_request_reuses_pooled_connection),
		T(test_dead_pooled_connection_is_retried_on_a_fresh_one),
		T(test_response_timeout_gets_504_and_closes_origin),
		T(test_post_body_is_streamed_to_the_origin),
		T(test_ip_literal_host_is_connected_without_resolver),
		T(test_stop_during_a_request_finishes_it_with_close),
		T(test_stop_during_a_request_with_interim_response_says_close),
		T(test_client_idle_timeout_closes_quietly),
		T(test_incomplete_request_head_gets_408),
		T(test_silent_client_closes_quietly),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
