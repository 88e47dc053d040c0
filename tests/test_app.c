/*
 * Unit tests of the app module over the mock sys: the rules snapshot and
 * proxy settings built from a typed configuration; a reload that applies a
 * changed timeout, keeps a changed listen address with a warning, tells a
 * changed hosts file, and keeps the whole old configuration when anything
 * is wrong; and the server's wait at a stop, whose deadline follows the
 * monotonic clock however the wall clock jumps.
 *
 * Files come from a small in-memory file system laid over the mock's fs
 * ops (a test "edits" a file by replacing its text); what is written to
 * descriptor 2 (the event log on stderr) is kept for the test to read.
 */
#include "sys_mock.h"

#include <errno.h>
#include <string.h>

#include "app/app_int.h"
#include "app/server_int.h"
#include "glassproxy/util.h"

/* ---- an in-memory file system, and stderr captured ---- */

#define MAX_FILES 8
#define FIRST_FD  100

static struct {
	const char *path;
	const char *text;
	size_t at; /* read position while open */
} files[MAX_FILES];
static char stderr_text[1 << 14];
static size_t stderr_len;
static const struct sys_fs_ops *mock_fs;
static struct sys_fs_ops fake_fs;
static struct sys fake_sys;

static int fake_open(void *ctx, const char *path, int flags, mode_t mode)
{
	(void)ctx, (void)flags, (void)mode;
	for (int i = 0; i < MAX_FILES; i++)
		if (files[i].path && strcmp(files[i].path, path) == 0) {
			files[i].at = 0;
			return FIRST_FD + i;
		}
	return -ENOENT;
}

static ssize_t fake_read(void *ctx, int fd, void *buf, size_t len)
{
	size_t left;

	(void)ctx;
	assert_in_range(fd, FIRST_FD, FIRST_FD + MAX_FILES - 1);
	left = strlen(files[fd - FIRST_FD].text) - files[fd - FIRST_FD].at;
	if (len > left)
		len = left;
	memcpy(buf, files[fd - FIRST_FD].text + files[fd - FIRST_FD].at, len);
	files[fd - FIRST_FD].at += len;
	return (ssize_t)len;
}

static ssize_t fake_write(void *ctx, int fd, const void *buf, size_t len)
{
	(void)ctx;
	if (fd == 2) {
		assert_true(stderr_len + len < sizeof(stderr_text));
		memcpy(stderr_text + stderr_len, buf, len);
		stderr_len += len;
		stderr_text[stderr_len] = '\0';
		return (ssize_t)len;
	}
	return mock_fs->write(ctx, fd, buf, len);
}

static void put_file(const char *path, const char *text)
{
	for (int i = 0; i < MAX_FILES; i++)
		if (!files[i].path || strcmp(files[i].path, path) == 0) {
			files[i].path = path;
			files[i].text = text;
			return;
		}
	fail_msg("too many files");
}

static void remove_file(const char *path)
{
	for (int i = 0; i < MAX_FILES; i++)
		if (files[i].path && strcmp(files[i].path, path) == 0)
			files[i].path = NULL;
}

static struct sys *fake(void)
{
	struct sys *mock = sys_mock();

	memset(files, 0, sizeof(files));
	stderr_len = 0;
	stderr_text[0] = '\0';
	mock_fs = mock->fs;
	fake_fs = *mock->fs;
	fake_fs.open = fake_open;
	fake_fs.read = fake_read;
	fake_fs.write = fake_write;
	fake_sys = *mock;
	fake_sys.fs = &fake_fs;
	return &fake_sys;
}

/* ---- an app with its configuration loaded, logging to stderr ---- */

static char *conf_argv[] = {"glassproxy", "-c", "/etc/gp.conf", NULL};

struct fixture {
	struct app app;
};

static int setup(void **state)
{
	static struct fixture f;

	memset(&f, 0, sizeof(f));
	f.app.sys = fake();
	f.app.os = f.app.sys;
	f.app.argc = 3;
	f.app.argv = conf_argv;
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	config_free(&f->app.cfg);
	log_close(f->app.log);
	return 0;
}

/* Load the config file's current text as the configuration in force. */
static void start(struct app *app)
{
	struct proxy_rules_spec spec;

	assert_int_equal(app_load_config(app, &app->cfg), 0);
	assert_int_equal(log_open(app->sys, NULL, NULL, LOG_INFO, &app->log),
			 0);
	assert_int_equal(app_build_rules(app, &app->cfg, &spec, &app->digests),
			 0);
	app_rules_free(&spec);
	stderr_len = 0;
	stderr_text[0] = '\0';
}

static void assert_logged(const char *text)
{
	if (!strstr(stderr_text, text))
		fail_msg("no '%s' in the log:\n%s", text, stderr_text);
}

/* ---- rules and settings ---- */

static void test_settings_come_from_the_typed_config(void **state)
{
	struct fixture *f = *state;
	struct proxy_settings set;

	put_file("/etc/gp.conf", "connect-timeout 2s\n"
				 "response-timeout 3s\n"
				 "request-timeout 4s\n"
				 "client-idle-timeout 5s\n"
				 "tunnel-idle-timeout 6s\n"
				 "upstream-idle-timeout 7s\n"
				 "max-idle-upstream 8\n"
				 "max-request-body 9k\n"
				 "forwarded-for delete\n"
				 "via-name edge.9\n"
				 "parent-proxy [::1]:3128\n");
	start(&f->app);
	app_settings_from_config(&f->app.cfg, &set);
	assert_int_equal(set.connect_timeout_ms, 2000);
	assert_int_equal(set.response_timeout_ms, 3000);
	assert_int_equal(set.request_timeout_ms, 4000);
	assert_int_equal(set.client_idle_timeout_ms, 5000);
	assert_int_equal(set.tunnel_idle_timeout_ms, 6000);
	assert_int_equal(set.upstream_idle_timeout_ms, 7000);
	assert_int_equal(set.max_idle_upstream, 8);
	assert_int_equal(set.max_request_body, 9216);
	assert_int_equal(set.forwarded, PROXY_FORWARDED_DELETE);
	assert_string_equal(set.via_name, "edge.9");
	assert_string_equal(set.parent_host, "::1");
	assert_int_equal(set.parent_port, 3128);
}

static void test_rules_report_every_bad_list_and_fail(void **state)
{
	struct fixture *f = *state;
	struct proxy_rules_spec spec;

	put_file("/etc/gp.conf", "block-file /etc/block.txt\n"
				 "allow-file /etc/missing.txt\n"
				 "hosts-file /etc/hosts.lab\n");
	put_file("/etc/block.txt", "good.example\na..b\n");
	put_file("/etc/hosts.lab", "127.0.0.1 lab.example\n");
	assert_int_equal(app_load_config(&f->app, &f->app.cfg), 0);
	assert_int_equal(app_build_rules(&f->app, &f->app.cfg, &spec, NULL),
			 -EINVAL);
	assert_null(spec.filter);
	assert_null(spec.hosts);
	assert_logged(
		"glassproxy: /etc/missing.txt: No such file or directory");
	assert_logged("glassproxy: /etc/block.txt:2: ");
	put_file("/etc/block.txt", "good.example\n");
	put_file("/etc/missing.txt", "# empty\n");
	assert_int_equal(app_build_rules(&f->app, &f->app.cfg, &spec, NULL), 0);
	assert_non_null(spec.filter);
	assert_non_null(spec.hosts);
	assert_null(spec.direct);
	assert_false(spec.hosts_changed);
	app_rules_free(&spec);
}

static void test_rules_carry_the_parsed_connect_ports(void **state)
{
	struct fixture *f = *state;
	struct proxy_rules_spec spec;

	put_file("/etc/gp.conf", "connect-ports 443, 8000-8002\n");
	start(&f->app);
	assert_int_equal(app_build_rules(&f->app, &f->app.cfg, &spec, NULL), 0);
	assert_true(filter_check_port(spec.filter, 443));
	assert_true(filter_check_port(spec.filter, 8000));
	assert_true(filter_check_port(spec.filter, 8002));
	assert_false(filter_check_port(spec.filter, 8003));
	assert_false(filter_check_port(spec.filter, 444));
	app_rules_free(&spec);
}

/* ---- reload ---- */

static void test_reload_applies_a_changed_timeout_and_keeps_listen(void **state)
{
	struct fixture *f = *state;
	struct app_reload r;
	char addr[NET_ADDR_TEXT_MAX];

	put_file("/etc/gp.conf", "listen 127.0.0.1:8080\n"
				 "response-timeout 60s\n");
	start(&f->app);
	put_file("/etc/gp.conf", "listen 127.0.0.1:9090\n"
				 "response-timeout 5s\n");
	assert_int_equal(app_reload_prepare(&f->app, &r), 0);
	/* what proxy_set_rules would be given */
	assert_int_equal(r.spec.settings.response_timeout_ms, 5000);
	assert_int_equal(r.spec.settings.connect_timeout_ms, 10000);
	assert_false(r.spec.hosts_changed);
	assert_non_null(r.spec.filter);
	/* listen needs a restart: the old value stays, with a warning */
	net_format_addr(&r.cfg.listen, addr, sizeof(addr));
	assert_string_equal(addr, "127.0.0.1:8080");
	assert_logged("warn reload: 'listen' changed; needs a restart, keeping "
		      "127.0.0.1:8080\n");
	assert_string_equal(r.changed, "response-timeout");
	assert_int_equal(r.changes, 1);
	app_reload_discard(&r);
	/* the configuration in force is untouched until applied */
	assert_int_equal(f->app.cfg.response_timeout_ms, 60000);
}

static void test_reload_warns_once_per_restart_option(void **state)
{
	struct fixture *f = *state;
	struct app_reload r;

	put_file("/etc/gp.conf", "max-connections 10\n");
	start(&f->app);
	put_file("/etc/gp.conf", "max-connections 20\nserial yes\n"
				 "shutdown-grace 1s\nverbose 2\n");
	assert_int_equal(app_reload_prepare(&f->app, &r), 0);
	assert_logged(
		"reload: 'serial' changed; needs a restart, keeping no\n");
	assert_logged("reload: 'max-connections' changed; needs a restart, "
		      "keeping 10\n");
	assert_int_equal(r.cfg.max_connections, 10);
	assert_false(r.cfg.serial);
	/* these two are live */
	assert_string_equal(r.changed, "verbose, shutdown-grace");
	assert_int_equal(r.cfg.shutdown_grace_ms, 1000);
	assert_int_equal(r.cfg.verbosity, 2);
	app_reload_discard(&r);
}

static void test_reload_with_any_error_keeps_everything(void **state)
{
	static const char *const bad_configs[] = {
		"response-timeout soon\n",     "via-name a,b\n",
		"block-file /etc/block.txt\n", /* a bad line in the list */
		"allow-file /etc/none.txt\n",  /* an unreadable list */
		"hosts-file /etc/none.txt\n",  /* an unreadable hosts file */
		"direct lan.example\n",	       /* direct without a parent */
	};
	struct fixture *f = *state;
	static char text[256]; /* the file's text outlives the loop */

	put_file("/etc/gp.conf", "response-timeout 60s\n");
	put_file("/etc/block.txt", "a..b\n");
	start(&f->app);
	for (size_t i = 0; i < UTIL_ARRAY_LEN(bad_configs); i++) {
		struct app_reload r;

		util_format(text, sizeof(text), "response-timeout 1s\n%s",
			    bad_configs[i]);
		put_file("/etc/gp.conf", text);
		if (app_reload_prepare(&f->app, &r) != -EINVAL)
			fail_msg("case %zu was accepted", i);
		assert_int_equal(f->app.cfg.response_timeout_ms, 60000);
	}
	/* app_reload says so, and there is nothing to install */
	stderr_len = 0;
	app_reload(&f->app);
	assert_logged("error SIGHUP: reload failed, keeping the old "
		      "configuration\n");
	assert_int_equal(f->app.cfg.response_timeout_ms, 60000);
}

static void test_reload_tells_a_changed_hosts_file(void **state)
{
	struct fixture *f = *state;
	struct app_reload r;

	put_file("/etc/gp.conf", "hosts-file /etc/hosts.a\n");
	put_file("/etc/hosts.a", "127.0.0.1 lab.example\n");
	put_file("/etc/hosts.b", "127.0.0.1 lab.example\n");
	start(&f->app);
	/* the same file, the same text: pooled connections stay */
	assert_int_equal(app_reload_prepare(&f->app, &r), 0);
	assert_false(r.spec.hosts_changed);
	assert_string_equal(r.changed, "");
	app_reload_discard(&r);
	/* new contents */
	put_file("/etc/hosts.a", "127.0.0.2 lab.example\n");
	assert_int_equal(app_reload_prepare(&f->app, &r), 0);
	assert_true(r.spec.hosts_changed);
	assert_string_equal(r.changed, "hosts file contents");
	app_reload_discard(&r);
	/* another path, even with the same text */
	put_file("/etc/hosts.a", "127.0.0.1 lab.example\n");
	put_file("/etc/gp.conf", "hosts-file /etc/hosts.b\n");
	assert_int_equal(app_reload_prepare(&f->app, &r), 0);
	assert_true(r.spec.hosts_changed);
	assert_string_equal(r.changed, "hosts-file");
	app_reload_discard(&r);
	/* no hosts file any more */
	put_file("/etc/gp.conf", "# none\n");
	assert_int_equal(app_reload_prepare(&f->app, &r), 0);
	assert_true(r.spec.hosts_changed);
	app_reload_discard(&r);
}

static void test_reload_names_changed_list_contents(void **state)
{
	struct fixture *f = *state;
	struct app_reload r;

	put_file("/etc/gp.conf", "block-file /etc/block.txt\n");
	put_file("/etc/block.txt", "a.example\n");
	start(&f->app);
	put_file("/etc/block.txt", "a.example\nb.example\n");
	assert_int_equal(app_reload_prepare(&f->app, &r), 0);
	assert_string_equal(r.changed, "list file contents");
	assert_false(r.spec.hosts_changed);
	assert_int_equal(filter_pattern_count(r.spec.filter, FILTER_LIST_BLOCK),
			 2);
	app_reload_discard(&r);
}

static void test_reload_apply_installs_the_new_configuration(void **state)
{
	struct fixture *f = *state;
	struct proxy_settings set;

	put_file("/etc/gp.conf", "response-timeout 60s\n");
	start(&f->app);
	app_settings_from_config(&f->app.cfg, &set);
	will_return(mock_pipe, 0);
	will_return(mock_pipe, 40);
	will_return(mock_pipe, 41);
	assert_int_equal(proxy_new(f->app.sys, f->app.log, &set, &f->app.px),
			 0);
	put_file("/etc/gp.conf", "response-timeout 5s\nlisten 127.0.0.1:1\n");
	app_reload(&f->app);
	assert_logged("info SIGHUP: configuration and lists reloaded; changed: "
		      "response-timeout\n");
	assert_int_equal(f->app.cfg.response_timeout_ms, 5000);
	assert_int_equal(net_addr_port(&f->app.cfg.listen), 8080);
	/* the same again, without the listen line: nothing changed */
	put_file("/etc/gp.conf", "response-timeout 5s\n");
	stderr_len = 0;
	app_reload(&f->app);
	assert_logged("reloaded; changed: nothing\n");
	assert_null(strstr(stderr_text, "warn"));
	proxy_free(f->app.px);
	remove_file("/etc/gp.conf");
}

/* ---- the server's wait at a stop ---- */

/*
 * A clock whose monotonic readings the test queues (so it can jump) and
 * whose wall clock fails the test if anything asks it: the deadline must
 * not depend on it.
 */
static int64_t scripted_mono(void *ctx)
{
	(void)ctx;
	return mock_type(int64_t);
}

static int no_wall_clock(void *ctx, struct timespec *out)
{
	(void)ctx, (void)out;
	fail_msg("the wall clock was read during the wait");
	return -ENOSYS;
}

static const struct sys_clock_ops scripted_clock = {
	.now_mono_ms = scripted_mono,
	.now_wall = no_wall_clock,
};

static struct server *open_server(struct sys *sys, struct proxy *px)
{
	static struct sys_addr bound;
	/* serial: these tests drive the slots and the wait, not the room. */
	struct server_options opts = {
		.max_connections = 2, .grace_ms = 10000, .serial = true};
	struct server *srv = NULL;

	bound = sys_mock_addr4("127.0.0.1", 8080);
	opts.listen = bound;
	will_return(mock_socket, 5);
	will_return(mock_setsockopt, 0);
	will_return(mock_bind, 0);
	will_return(mock_listen, 0);
	will_return(mock_getsockname, 0);
	will_return(mock_getsockname, &bound);
	will_return(mock_pipe, 0);
	will_return(mock_pipe, 7);
	will_return(mock_pipe, 8);
	assert_int_equal(server_open(sys, NULL, px, &opts, &srv), 0);
	assert_string_equal(server_address(srv), "127.0.0.1:8080");
	return srv;
}

static struct sys clock_sys;

static struct sys *scripted_sys(void)
{
	clock_sys = *sys_mock();
	clock_sys.clock = &scripted_clock;
	return &clock_sys;
}

static void test_wait_deadline_follows_the_monotonic_clock(void **state)
{
	struct sys *sys = scripted_sys();
	struct server *srv = open_server(sys, NULL);
	struct sys_addr peer = sys_mock_addr4("127.0.0.1", 40000);

	(void)state;
	assert_non_null(server_slot_claim(srv, 9, &peer));
	/* deadline 11000: slices of at most a second, then the rest */
	will_return(scripted_mono, (int64_t)1000);
	will_poll1(0, 0);
	will_return(scripted_mono, (int64_t)2000);
	will_poll1(0, 0);
	/* the clock jumps 8.5 s ahead (a stall): only 500 ms are left */
	will_return(scripted_mono, (int64_t)10500);
	will_poll1(0, 0);
	will_return(scripted_mono, (int64_t)11000);
	assert_int_equal(server_wait_workers(srv, 11000), -ETIMEDOUT);
	assert_string_equal(sys_mock_trace(), "pipe=0[7,8] "
					      "poll(7:i;1000)=0 "
					      "poll(7:i;1000)=0 "
					      "poll(7:i;500)=0");
	server_close(srv);
}

static void test_wait_ends_when_the_clock_jumps_past_the_deadline(void **state)
{
	struct sys *sys = scripted_sys();
	struct server *srv = open_server(sys, NULL);
	struct sys_addr peer = sys_mock_addr4("127.0.0.1", 40000);

	struct worker_slot *slot;

	(void)state;
	slot = server_slot_claim(srv, 9, &peer);
	assert_non_null(slot);
	will_return(scripted_mono, (int64_t)1000);
	will_poll1(0, 0);
	will_return(scripted_mono, (int64_t)500000); /* far past 11000 */
	assert_int_equal(server_wait_workers(srv, 11000), -ETIMEDOUT);
	assert_string_equal(sys_mock_trace(), "pipe=0[7,8] poll(7:i;1000)=0");
	/* once nobody is left, no wait: no poll, no clock reading */
	server_slot_end(srv, slot);
	assert_int_equal(server_wait_workers(srv, 11000), 0);
	assert_int_equal(server_wait_workers(srv, -1), 0);
	assert_string_equal(sys_mock_trace(), "pipe=0[7,8] poll(7:i;1000)=0");
	server_close(srv);
}

static void test_last_worker_of_a_stop_wakes_the_wait(void **state)
{
	struct sys *sys = sys_mock();
	struct sys_addr peer = sys_mock_addr4("127.0.0.1", 40000);
	struct proxy_settings set = {.max_idle_upstream = 1};
	struct worker_slot *a, *b;
	struct proxy *px;
	struct server *srv;

	(void)state;
	will_return(mock_pipe, 0);
	will_return(mock_pipe, 40);
	will_return(mock_pipe, 41);
	assert_int_equal(proxy_new(sys, NULL, &set, &px), 0);
	srv = open_server(sys, px);
	a = server_slot_claim(srv, 9, &peer);
	b = server_slot_claim(srv, 10, &peer);
	assert_non_null(a);
	assert_non_null(b);
	assert_null(server_slot_claim(srv, 11, &peer)); /* 2 at most */
	will_pipe_write(1);				/* proxy_stop's byte */
	will_return(mock_shutdown, 0);			/* the listener */
	server_stop(srv);
	assert_true(sys_mock_trace_has("pipe_write(41)=1"));
	assert_null(server_slot_claim(srv, 11, &peer)); /* stopping */
	server_slot_end(srv, a);
	/* one left: no wake yet */
	assert_false(sys_mock_trace_has("pipe_write(8)=1"));
	will_pipe_write(1);
	server_slot_end(srv, b);
	assert_true(sys_mock_trace_has("pipe_write(8)=1"));
	/* nobody left: returns without polling or reading the clock */
	assert_int_equal(server_wait_workers(srv, 11000), 0);
	assert_int_equal(server_wait_workers(srv, -1), 0);
	assert_false(sys_mock_trace_has("poll(7:i;1000)=0"));
	server_close(srv);
	assert_true(sys_mock_is_closed(7));
	assert_true(sys_mock_is_closed(8));
	proxy_free(px);
}

/* ---- issue 15: --max-connections-per-client ---- */

static void test_slots_per_client_address_are_limited(void **state)
{
	struct sys *sys = sys_mock();
	static struct sys_addr bound;
	struct server_options opts = {.max_connections = 4,
				      .grace_ms = 10000,
				      .max_per_client = 2,
				      .serial = true};
	struct sys_addr a1 = sys_mock_addr4("127.0.0.1", 40000);
	struct sys_addr a2 = sys_mock_addr4("127.0.0.1", 40001);
	struct sys_addr a3 = sys_mock_addr4("127.0.0.1", 40002);
	struct sys_addr other = sys_mock_addr4("127.0.0.2", 40000);
	struct worker_slot *first;
	struct server *srv = NULL;

	(void)state;
	bound = sys_mock_addr4("127.0.0.1", 8080);
	opts.listen = bound;
	will_return(mock_socket, 5);
	will_return(mock_setsockopt, 0);
	will_return(mock_bind, 0);
	will_return(mock_listen, 0);
	will_return(mock_getsockname, 0);
	will_return(mock_getsockname, &bound);
	will_return(mock_pipe, 0);
	will_return(mock_pipe, 7);
	will_return(mock_pipe, 8);
	assert_int_equal(server_open(sys, NULL, NULL, &opts, &srv), 0);
	first = server_slot_claim(srv, 9, &a1);
	assert_non_null(first);
	assert_non_null(server_slot_claim(srv, 10, &a2));
	/* A third from the same address, whatever its port: refused. */
	assert_null(server_slot_claim(srv, 11, &a3));
	/* Another address still gets a slot. */
	assert_non_null(server_slot_claim(srv, 12, &other));
	/* A slot given back makes room for that address again. */
	server_slot_end(srv, first);
	assert_non_null(server_slot_claim(srv, 11, &a3));
	server_close(srv);
}

/* ---- issue 13: the waiting room's state machine (src/app/waitroom.c) ---- */

#include <stdio.h>

#define ROOM_EPFD 6
#define ROOM_WAKE 12 /* the poller's wake pipe: 12 (read), 13 (write) */

struct room {
	struct proxy *px;
	struct server *srv;
	struct proxy_worker *w;
	struct sys_addr peer;
};

/* A proxy and a non-serial server over the mock: the room, no threads. */
static void room_open(struct room *r, int queue_size, int queue_timeout_ms)
{
	struct sys *sys = sys_mock();
	static struct sys_addr bound;
	struct proxy_settings set = {.max_idle_upstream = 1,
				     .request_timeout_ms = 5000,
				     .client_idle_timeout_ms = 2000,
				     .response_timeout_ms = 1000};
	struct server_options opts = {.max_connections = 4,
				      .grace_ms = 10000,
				      .workers = 1,
				      .queue_size = queue_size,
				      .queue_timeout_ms = queue_timeout_ms};

	memset(r, 0, sizeof(*r));
	r->peer = sys_mock_addr4("127.0.0.1", 40000);
	will_return(mock_pipe, 0);
	will_return(mock_pipe, 40);
	will_return(mock_pipe, 41);
	assert_int_equal(proxy_new(sys, NULL, &set, &r->px), 0);
	bound = sys_mock_addr4("127.0.0.1", 8080);
	opts.listen = bound;
	will_return(mock_socket, 5);
	will_return(mock_setsockopt, 0);
	will_return(mock_bind, 0);
	will_return(mock_listen, 0);
	will_return(mock_getsockname, 0);
	will_return(mock_getsockname, &bound);
	will_return(mock_pipe, 0);
	will_return(mock_pipe, 7);
	will_return(mock_pipe, 8);
	will_return(mock_epoll_create, ROOM_EPFD);
	will_return(mock_pipe, 0);
	will_return(mock_pipe, ROOM_WAKE);
	will_return(mock_pipe, ROOM_WAKE + 1);
	assert_int_equal(server_open(sys, NULL, r->px, &opts, &r->srv), 0);
	assert_int_equal(proxy_worker_new(&r->w), 0);
}

static void room_close(struct room *r)
{
	server_close(r->srv);
	proxy_worker_free(r->w);
	proxy_free(r->px);
	assert_true(sys_mock_is_closed(ROOM_EPFD));
}

/* Accept fd: its send timeout and TCP_NODELAY, one look for a head (not
 * here yet), then armed in epoll. */
static void room_admit(struct room *r, int fd)
{
	char armed[40];

	will_return(mock_setsockopt, 0);
	will_return(mock_setsockopt, 0);
	will_recv(NULL, -EAGAIN);
	server_admit(r->srv, fd, &r->peer);
	snprintf(armed, sizeof(armed), "epoll_ctl(%d,ADD,%d)=0", ROOM_EPFD, fd);
	assert_true(sys_mock_trace_has(armed));
}

/* One poller round in which fd is readable and recv returns text. */
static bool room_receive(struct room *r, int fd, const char *text)
{
	will_return(mock_epoll_wait, 1);
	will_epoll_event(fd, EPOLLIN);
	if (text)
		will_recv_str(text);
	else
		will_recv(NULL, 0);
	return server_room_round(r->srv, 250);
}

/* An error page: its head, then its body. */
static void will_answer(void)
{
	will_send(SYS_MOCK_ALL);
	will_send(SYS_MOCK_ALL);
}

/* The lingering close after an error answer: shut, then the client's EOF. */
static void will_linger(void)
{
	will_return(mock_shutdown, 0);
	will_poll1(1, POLLIN);
	will_recv(NULL, 0);
}

static void test_room_a_head_in_pieces_waits_without_a_worker(void **state)
{
	struct room r;
	struct worker_slot *slot;
	size_t len;

	(void)state;
	room_open(&r, 4, 30000);
	room_admit(&r, 9);
	assert_true(room_receive(&r, 9, "GET / HT"));
	assert_int_equal(server_queue_length(r.srv), 0);
	assert_true(sys_mock_trace_has("epoll_ctl(6,MOD,9)=0")); /* again */
	assert_true(room_receive(&r, 9, "TP/1.1\r\nHost: a\r\n"));
	assert_int_equal(server_queue_length(r.srv), 0);
	/* The last piece completes it: now, and only now, it is queued. */
	assert_true(room_receive(&r, 9, "\r\n"));
	assert_int_equal(server_queue_length(r.srv), 1);
	slot = server_queue_take(r.srv);
	assert_non_null(slot);
	/* The worker finds the head in its buffer: no recv before the
	 * answer (an origin-form request: 400 here). */
	will_answer();
	will_linger();
	server_serve_slot(r.srv, slot, r.w);
	assert_non_null(strstr(sys_mock_sent_on(9, &len), "HTTP/1.1 400 "));
	assert_true(sys_mock_is_closed(9));
	assert_int_equal(server_wait_workers(r.srv, -1), 0);
	room_close(&r);
}

static void test_room_a_partial_head_times_out_with_408(void **state)
{
	struct room r;
	size_t len;

	(void)state;
	room_open(&r, 4, 30000);
	room_admit(&r, 9);
	assert_true(room_receive(&r, 9, "GET http://a/ HTTP/1.1\r\n"));
	/* Not yet: a round before the request timeout expires nothing. */
	sys_mock_advance_ms(4000);
	will_return(mock_epoll_wait, 0);
	assert_true(server_room_round(r.srv, 250));
	assert_int_equal(server_queue_length(r.srv), 0);
	sys_mock_advance_ms(1000);
	will_return(mock_epoll_wait, 0);
	assert_true(server_room_round(r.srv, 250));
	assert_true(sys_mock_trace_has("epoll_ctl(6,DEL,9)=0"));
	assert_int_equal(server_queue_length(r.srv), 1);
	will_answer();
	will_linger();
	server_serve_slot(r.srv, server_queue_take(r.srv), r.w);
	assert_non_null(strstr(sys_mock_sent_on(9, &len), "HTTP/1.1 408 "));
	assert_true(sys_mock_is_closed(9));
	room_close(&r);
}

static void test_room_an_idle_connection_times_out_quietly(void **state)
{
	struct room r;
	size_t len = 0;

	(void)state;
	room_open(&r, 4, 30000);
	room_admit(&r, 9);
	sys_mock_advance_ms(6000);
	will_return(mock_epoll_wait, 0);
	assert_true(server_room_round(r.srv, 250));
	server_serve_slot(r.srv, server_queue_take(r.srv), r.w);
	sys_mock_sent_on(9, &len);
	assert_int_equal(len, 0); /* nothing to answer */
	assert_true(sys_mock_is_closed(9));
	assert_int_equal(server_wait_workers(r.srv, -1), 0);
	room_close(&r);
}

/*
 * The look for waits that ran out walks every connection, so it runs once
 * per 250 ms however busy the poller is: a wait may end up to 250 ms late,
 * never early.
 */
static void test_room_looks_for_expired_waits_once_per_interval(void **state)
{
	struct room r;

	(void)state;
	room_open(&r, 4, 30000);
	/* Rounds that wait 0 ms: the mock clock moves only when told. */
	room_admit(&r, 9); /* a new connection: 5,000 ms for its head */
	sys_mock_advance_ms(4900);
	will_return(mock_epoll_wait, 0);
	assert_true(server_room_round(r.srv, 0)); /* looks: not yet */
	sys_mock_advance_ms(150);		  /* now past the deadline */
	will_return(mock_epoll_wait, 0);
	assert_true(server_room_round(r.srv, 0)); /* too soon to look */
	assert_int_equal(server_queue_length(r.srv), 0);
	assert_false(sys_mock_trace_has("epoll_ctl(6,DEL,9)=0"));
	sys_mock_advance_ms(100);
	will_return(mock_epoll_wait, 0);
	assert_true(server_room_round(r.srv, 0)); /* 250 ms on: looks */
	assert_true(sys_mock_trace_has("epoll_ctl(6,DEL,9)=0"));
	assert_int_equal(server_queue_length(r.srv), 1);
	server_serve_slot(r.srv, server_queue_take(r.srv), r.w);
	assert_true(sys_mock_is_closed(9));
	room_close(&r);
}

/* A head that came with the connection is queued at once: no epoll. */
static void
test_room_a_head_sent_with_the_connection_skips_the_poller(void **state)
{
	struct room r;

	(void)state;
	room_open(&r, 4, 30000);
	will_return(mock_setsockopt, 0);
	will_return(mock_setsockopt, 0);
	will_recv_str("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
	server_admit(r.srv, 9, &r.peer);
	assert_int_equal(server_queue_length(r.srv), 1);
	assert_false(sys_mock_trace_has("epoll_ctl(6,ADD,9)=0"));
	will_answer(); /* origin-form: 400, no origin needed */
	will_linger();
	server_serve_slot(r.srv, server_queue_take(r.srv), r.w);
	assert_true(sys_mock_is_closed(9));
	/* And one that closed at once is let go there and then. */
	will_return(mock_setsockopt, 0);
	will_return(mock_setsockopt, 0);
	will_recv(NULL, 0);
	server_admit(r.srv, 10, &r.peer);
	assert_true(sys_mock_is_closed(10));
	assert_false(sys_mock_trace_has("epoll_ctl(6,ADD,10)=0"));
	room_close(&r);
}

static void test_room_a_client_that_closes_while_waiting_is_let_go(void **state)
{
	struct room r;

	(void)state;
	room_open(&r, 4, 30000);
	room_admit(&r, 9);
	room_admit(&r, 10);
	assert_true(room_receive(&r, 9, NULL)); /* EOF, no head begun */
	assert_true(sys_mock_is_closed(9));
	assert_false(sys_mock_is_closed(10));
	assert_int_equal(server_queue_length(r.srv), 0);
	/* A stop closes the rest of the room at once, and the poller ends. */
	will_pipe_write(1); /* proxy_stop's byte */
	will_return(mock_shutdown, 0);
	will_pipe_write(1); /* the poller's */
	server_stop(r.srv);
	will_pipe_write(1); /* the last connection wakes the stop's wait */
	will_return(mock_epoll_wait, 1);
	will_epoll_event(ROOM_WAKE, EPOLLIN);
	assert_false(server_room_round(r.srv, 250));
	assert_true(sys_mock_is_closed(10));
	assert_int_equal(server_wait_workers(r.srv, -1), 0);
	room_close(&r);
}

static void test_room_a_stop_with_no_worker_left_closes_the_queue(void **state)
{
	struct room r;

	(void)state;
	room_open(&r, 4, 30000);
	room_admit(&r, 9);
	assert_true(room_receive(&r, 9, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
	assert_int_equal(server_queue_length(r.srv), 1);
	/* No worker thread exists (none could be started): at the stop the
	 * queued connection is closed, else the stop would wait for it. */
	will_pipe_write(1); /* proxy_stop's byte */
	will_return(mock_shutdown, 0);
	will_pipe_write(1); /* the poller's */
	server_stop(r.srv);
	will_pipe_write(1); /* the last connection wakes the stop's wait */
	will_return(mock_epoll_wait, 1);
	will_epoll_event(ROOM_WAKE, EPOLLIN);
	assert_false(server_room_round(r.srv, 250));
	assert_true(sys_mock_is_closed(9));
	assert_int_equal(server_queue_length(r.srv), 0);
	assert_int_equal(server_wait_workers(r.srv, -1), 0);
	room_close(&r);
}

static void test_room_a_full_queue_answers_503(void **state)
{
	struct room r;
	size_t len;

	(void)state;
	room_open(&r, 1, 30000);
	room_admit(&r, 9);
	room_admit(&r, 10);
	will_return(mock_epoll_wait, 2);
	will_epoll_event(9, EPOLLIN);
	will_epoll_event(10, EPOLLIN);
	will_recv_str("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
	will_recv_str("GET / HTTP/1.1\r\nHost: b\r\n\r\n");
	will_return(mock_setsockopt, 0); /* the 503's send timeout */
	will_answer();
	assert_true(server_room_round(r.srv, 250));
	assert_int_equal(server_queue_length(r.srv), 1); /* the bound */
	assert_non_null(strstr(sys_mock_sent_on(10, &len), "HTTP/1.1 503 "));
	assert_true(sys_mock_is_closed(10));
	assert_false(sys_mock_is_closed(9));
	will_answer();
	will_linger();
	server_serve_slot(r.srv, server_queue_take(r.srv), r.w);
	assert_true(sys_mock_is_closed(9));
	room_close(&r);
}

static void test_room_a_request_queued_too_long_gets_503(void **state)
{
	struct room r;
	size_t len;

	(void)state;
	room_open(&r, 4, 1000);
	room_admit(&r, 9);
	assert_true(room_receive(&r, 9, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
	sys_mock_advance_ms(1001);
	will_return(mock_setsockopt, 0);
	will_answer();
	server_serve_slot(r.srv, server_queue_take(r.srv), r.w);
	assert_non_null(strstr(sys_mock_sent_on(9, &len), "HTTP/1.1 503 "));
	assert_true(sys_mock_is_closed(9));
	room_close(&r);
}

/* ---- the pool's active few (src/app/workers.c) ---- */

/* The pool allows `workers` threads, of which `active` serve at once. */
static void room_pool(struct room *r, int workers, int active)
{
	r->srv->opts.workers = workers;
	r->srv->active_base = r->srv->active_cap = active;
}

/* n whole heads queued, on fds 9, 10, ... (the fixture allows 4). */
static void room_queue_heads(struct room *r, int n)
{
	for (int i = 0; i < n; i++) {
		room_admit(r, 9 + i);
		assert_true(room_receive(r, 9 + i,
					 "GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
	}
	assert_int_equal(server_queue_length(r->srv), n);
}

/* The pool's records of n workers, joined and given back. */
static void pool_join(struct room *r, struct pool_member **m, int n)
{
	for (int i = 0; i < n; i++)
		m[i] = server_pool_join(r->srv);
}

static void pool_leave(struct room *r, struct pool_member **m, int n)
{
	for (int i = 0; i < n; i++)
		server_pool_leave(r->srv, m[i]);
}

/* A room whose pool allows `workers`, `active` of them at once, with n
 * heads queued and n workers' records in m. */
static void pool_room(struct room *r, struct pool_member **m, int workers,
		      int active, int n)
{
	room_open(r, 4, 30000);
	room_pool(r, workers, active);
	room_queue_heads(r, n);
	pool_join(r, m, n);
}

/* A member serves the slot it took (an origin-form request: 400). */
static void pool_serve(struct room *r, struct pool_member *m,
		       struct worker_slot *slot)
{
	will_answer();
	will_linger();
	server_serve_slot(r->srv, slot, r->w);
	server_pool_release(r->srv, m);
}

static void test_pool_serves_with_the_active_few_only(void **state)
{
	struct room r;
	struct pool_member *m[2], *a, *b;
	struct worker_slot *slot;

	(void)state;
	pool_room(&r, m, 4, 1, 2);
	a = m[0], b = m[1];
	slot = server_pool_try_take(r.srv, a);
	assert_non_null(slot);
	/* One serves: the second waits although a request does. */
	assert_null(server_pool_try_take(r.srv, b));
	pool_serve(&r, a, slot);
	slot = server_pool_try_take(r.srv, b);
	assert_non_null(slot);
	pool_serve(&r, b, slot);
	assert_int_equal(server_queue_length(r.srv), 0);
	pool_leave(&r, m, 2);
	room_close(&r);
}

static void test_pool_a_worker_away_at_an_origin_frees_its_place(void **state)
{
	struct room r;
	struct pool_member *m[3], *a, *b, *c;
	struct worker_slot *sa, *sb;

	(void)state;
	pool_room(&r, m, 4, 1, 3);
	a = m[0], b = m[1], c = m[2];
	sa = server_pool_try_take(r.srv, a);
	assert_null(server_pool_try_take(r.srv, b));
	server_pool_set_away(r.srv, a, true); /* waits on its origin */
	sb = server_pool_try_take(r.srv, b);
	assert_non_null(sb);
	/* Both away: the few have room, --workers (2 here) has not. */
	r.srv->opts.workers = 2;
	server_pool_set_away(r.srv, b, true);
	assert_null(server_pool_try_take(r.srv, c));
	server_pool_set_away(r.srv, b, false);
	r.srv->opts.workers = 4;
	/* Back from the origin, a counts again: two serve, one may. */
	server_pool_set_away(r.srv, a, false);
	server_pool_release(r.srv, b);
	assert_null(server_pool_try_take(r.srv, c));
	pool_serve(&r, a, sa);
	pool_serve(&r, c, server_pool_try_take(r.srv, c));
	will_answer();
	will_linger();
	server_serve_slot(r.srv, sb, r.w);
	pool_leave(&r, m, 3);
	room_close(&r);
}

static void test_pool_a_stuck_worker_lets_one_more_serve(void **state)
{
	struct room r;
	struct pool_member *m[3], *a, *b, *c;
	struct worker_slot *sa, *sb;

	(void)state;
	pool_room(&r, m, 2, 1, 3);
	a = m[0], b = m[1], c = m[2];
	sa = server_pool_try_take(r.srv, a);
	assert_non_null(sa);
	sys_mock_advance_ms(19);
	assert_true(server_pool_adjust(r.srv));
	assert_false(server_pool_adjust(r.srv)); /* too soon to look again */
	assert_null(server_pool_try_take(r.srv, b)); /* 19 ms: not stuck */
	sys_mock_advance_ms(2);
	assert_true(server_pool_adjust(r.srv)); /* 21 ms: stuck */
	sb = server_pool_try_take(r.srv, b);
	assert_non_null(sb);
	/* Both stuck now, but --workers 2 is the bound. */
	sys_mock_advance_ms(25);
	assert_true(server_pool_adjust(r.srv));
	assert_null(server_pool_try_take(r.srv, c));
	/* Once they are done, the few are one again. */
	pool_serve(&r, a, sa);
	pool_serve(&r, b, sb);
	sys_mock_advance_ms(2);
	assert_true(server_pool_adjust(r.srv));
	assert_int_equal(r.srv->active_cap, 1);
	pool_serve(&r, c, server_pool_try_take(r.srv, c));
	pool_leave(&r, m, 3);
	room_close(&r);
}

/*
 * Spare workers end: idle past --worker-idle-timeout, the coldest first,
 * down to active_base threads.  The four records stand for four threads.
 */
static void test_pool_spare_idle_workers_end_coldest_first(void **state)
{
	struct room r;
	struct pool_member *m[4];

	(void)state;
	room_open(&r, 4, 30000);
	room_pool(&r, 8, 2);
	r.srv->opts.worker_idle_timeout_ms = 1000;
	r.srv->threads = 4;
	pool_join(&r, m, 4);
	for (int i = 0; i < 4; i++) { /* idle 100 ms apart, m[0] first */
		server_pool_rest(r.srv, m[i]);
		sys_mock_advance_ms(100);
	}
	sys_mock_advance_ms(599); /* m[0] idle 999 ms: none yet */
	assert_int_equal(server_pool_retire(r.srv), 0);
	sys_mock_advance_ms(100);
	assert_int_equal(server_pool_retire(r.srv), 0); /* too soon to look */
	sys_mock_advance_ms(150);			/* 1,249 ms .. 949 ms */
	assert_int_equal(server_pool_retire(r.srv), 2);
	assert_true(m[0]->retire && m[1]->retire);
	assert_false(m[2]->retire || m[3]->retire); /* the two kept */
	assert_ptr_equal(r.srv->idle_top, m[3]);
	assert_int_equal(r.srv->retiring, 2);
	/* Gone: the next look keeps the two that are left. */
	server_pool_leave(r.srv, m[0]);
	server_pool_leave(r.srv, m[1]);
	r.srv->threads = 2;
	assert_int_equal(r.srv->retiring, 0);
	sys_mock_advance_ms(5000);
	assert_int_equal(server_pool_retire(r.srv), 0);
	/* --worker-idle-timeout 0: never, whatever the count. */
	r.srv->threads = 8;
	r.srv->opts.worker_idle_timeout_ms = 0;
	sys_mock_advance_ms(5000);
	assert_int_equal(server_pool_retire(r.srv), 0);
	r.srv->threads = 0;
	server_pool_leave(r.srv, m[2]);
	server_pool_leave(r.srv, m[3]);
	room_close(&r);
}

/* ---- fault injection at start (src/app/faults.c) ---- */

#include <stdio.h>
#include <stdlib.h>

static void test_faults_from_file_and_environment_build_one_sys(void **state)
{
	struct fixture *f = *state;
	struct app *app = &f->app;

	put_file("/etc/gp.conf", "fault net.recv[origin]=ECONNRESET@2\n"
				 "fault-seed 42\n");
	assert_int_equal(
		setenv("GLASSPROXY_FAULTS", "net.send=short; clock.freeze", 1),
		0);
	assert_int_equal(app_load_config(app, &app->cfg), 0);
	assert_int_equal(app_faults_start(app), 0);
	unsetenv("GLASSPROXY_FAULTS");
	assert_non_null(app->fault);
	assert_ptr_equal(app->sys, app->fault); /* every module gets it */
	assert_ptr_not_equal(app->os, app->fault);
	assert_int_equal(sys_fault_rule_count(app->fault), 3);
	assert_int_equal(sys_fault_seed(app->fault), 42);
	assert_logged("glassproxy: FAULT INJECTION ACTIVE\nseed=42\n"
		      "net.recv[origin]=ECONNRESET@2 hits=0 calls=0\n"
		      "net.send=short hits=0 calls=0\n"
		      "clock.freeze hits=0 calls=0\n");
	app_faults_stop(app);
	assert_null(app->fault);
	assert_ptr_equal(app->sys, app->os);
	assert_logged("glassproxy: faults injected:\nseed=42\n");
}

static void test_no_fault_spec_means_no_fault_sys(void **state)
{
	struct fixture *f = *state;
	struct app *app = &f->app;

	put_file("/etc/gp.conf", "fault-seed 42\n");
	unsetenv("GLASSPROXY_FAULTS");
	assert_int_equal(app_load_config(app, &app->cfg), 0);
	assert_int_equal(app_faults_start(app), 0);
	assert_null(app->fault);
	assert_ptr_equal(app->sys, app->os);
	assert_int_equal(stderr_len, 0);
	app_faults_stop(app); /* nothing to do */
	assert_int_equal(stderr_len, 0);
}

static void test_bad_fault_spec_exits_2_with_its_caret_line(void **state)
{
	struct fixture *f = *state;
	struct app *app = &f->app;

	put_file("/etc/gp.conf", "fault net.recv=ECONNRSET@3\n");
	assert_int_equal(app_load_config(app, &app->cfg), 0);
	assert_int_equal(app_faults_start(app), APP_EXIT_USAGE);
	assert_null(app->fault);
	assert_ptr_equal(app->sys, app->os);
	assert_logged("glassproxy: bad --fault spec:\n"
		      "net.recv=ECONNRSET@3\n"
		      "         ^ unknown error name\n");
}

static void test_bad_fault_seed_exits_2(void **state)
{
	struct fixture *f = *state;
	struct app *app = &f->app;

	put_file("/etc/gp.conf", "fault net.send=short\nfault-seed 12ab\n");
	assert_int_equal(app_load_config(app, &app->cfg), 0);
	assert_int_equal(app_faults_start(app), APP_EXIT_USAGE);
	assert_null(app->fault);
	assert_logged("--fault-seed: '12ab' is not a number");
}

static void test_seed_nobody_chose_comes_from_urandom(void **state)
{
	struct fixture *f = *state;
	struct app *app = &f->app;
	uint64_t want;
	char line[64];

	put_file("/etc/gp.conf", "fault net.accept=EMFILE@p0.5\n");
	put_file("/dev/urandom", "ABCDEFGH");
	memcpy(&want, "ABCDEFGH", sizeof(want));
	assert_int_equal(app_load_config(app, &app->cfg), 0);
	assert_int_equal(app_faults_start(app), 0);
	assert_int_equal(sys_fault_seed(app->fault), want);
	/* printed, so the run can be replayed */
	snprintf(line, sizeof(line), "\nseed=%llu\n", (unsigned long long)want);
	assert_logged(line);
	app_faults_stop(app);
}

static void test_fault_rules_reach_the_event_log(void **state)
{
	struct fixture *f = *state;
	struct app *app = &f->app;

	put_file("/etc/gp.conf", "fault fs.write[/var/cache/]=ENOSPC\n"
				 "fault-seed 9\n");
	start(app);
	assert_int_equal(app_faults_start(app), 0);
	app_faults_log(app, "FAULT INJECTION ACTIVE");
	assert_logged("warn FAULT INJECTION ACTIVE\n");
	assert_logged("warn fault: seed=9\n");
	assert_logged("warn fault: fs.write[/var/cache/]=ENOSPC hits=0 "
		      "calls=0\n");
	/* The log keeps the sys it was opened on; a log opened after start
	 * would write through the fault sys. */
	app_faults_stop(app);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_settings_come_from_the_typed_config),
		T(test_rules_report_every_bad_list_and_fail),
		T(test_rules_carry_the_parsed_connect_ports),
		T(test_reload_applies_a_changed_timeout_and_keeps_listen),
		T(test_reload_warns_once_per_restart_option),
		T(test_reload_with_any_error_keeps_everything),
		T(test_reload_tells_a_changed_hosts_file),
		T(test_reload_names_changed_list_contents),
		T(test_reload_apply_installs_the_new_configuration),
		T(test_faults_from_file_and_environment_build_one_sys),
		T(test_no_fault_spec_means_no_fault_sys),
		T(test_bad_fault_spec_exits_2_with_its_caret_line),
		T(test_bad_fault_seed_exits_2),
		T(test_seed_nobody_chose_comes_from_urandom),
		T(test_fault_rules_reach_the_event_log),
#undef T
		cmocka_unit_test(
			test_wait_deadline_follows_the_monotonic_clock),
		cmocka_unit_test(
			test_wait_ends_when_the_clock_jumps_past_the_deadline),
		cmocka_unit_test(test_last_worker_of_a_stop_wakes_the_wait),
		cmocka_unit_test(test_slots_per_client_address_are_limited),
		cmocka_unit_test(
			test_room_a_head_in_pieces_waits_without_a_worker),
		cmocka_unit_test(test_room_a_partial_head_times_out_with_408),
		cmocka_unit_test(
			test_room_an_idle_connection_times_out_quietly),
		cmocka_unit_test(
			test_room_looks_for_expired_waits_once_per_interval),
		cmocka_unit_test(
			test_room_a_head_sent_with_the_connection_skips_the_poller),
		cmocka_unit_test(
			test_room_a_client_that_closes_while_waiting_is_let_go),
		cmocka_unit_test(
			test_room_a_stop_with_no_worker_left_closes_the_queue),
		cmocka_unit_test(test_room_a_full_queue_answers_503),
		cmocka_unit_test(test_room_a_request_queued_too_long_gets_503),
		cmocka_unit_test(test_pool_serves_with_the_active_few_only),
		cmocka_unit_test(
			test_pool_a_worker_away_at_an_origin_frees_its_place),
		cmocka_unit_test(test_pool_a_stuck_worker_lets_one_more_serve),
		cmocka_unit_test(
			test_pool_spare_idle_workers_end_coldest_first),
	};
	return cmocka_run_group_tests_name("app", tests, NULL, NULL);
}
