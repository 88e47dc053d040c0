/*
 * The program: configuration, logs, rules, the proxy and the server wired
 * together; one thread takes the signals (sigwait) while the main thread
 * runs the accept loop.  See include/glassproxy/app.h.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpsl.h>

#include "app/app_int.h"
#include "glassproxy/stats.h"
#include "glassproxy/util.h"

#define MAX_CONFIG_FILE (1 << 20)

/* Standard error through sys: the only OS path there is. */
static void vsay(struct sys *sys, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

static void vsay(struct sys *sys, const char *fmt, va_list ap)
{
	char text[1024], line[1100];

	vsnprintf(text, sizeof(text), fmt, ap);
	util_format(line, sizeof(line), "glassproxy: %s\n", text);
	sys_write_all(sys, 2, line, strlen(line));
}

/* On standard error whatever the log is: where a user starting us looks. */
static void say(struct app *app, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void say(struct app *app, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(app->os, fmt, ap);
	va_end(ap);
}

void app_report(struct app *app, enum log_level level, const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	if (app->log) {
		vsnprintf(text, sizeof(text), fmt, ap);
		log_event(app->log, level, "%s", text);
	} else {
		vsay(app->sys, fmt, ap);
	}
	va_end(ap);
}

static void say_text(struct sys *sys, int fd, const char *text)
{
	if (text)
		sys_write_all(sys, fd, text, strlen(text));
}

enum log_level app_log_level(const struct config *cfg)
{
	static const enum log_level levels[] = {LOG_WARN, LOG_INFO, LOG_DEBUG};

	if (cfg->log_level >= 0) /* --log-level wins over -v and -q */
		return (enum log_level)cfg->log_level;
	return levels[cfg->verbosity];
}

static int apply_config_file(struct app *app, struct config *cfg,
			     const char *path)
{
	char err[CONFIG_ERR_MAX], *text;
	size_t len;
	int rc;

	rc = sys_read_file(app->sys, path, MAX_CONFIG_FILE, &text, &len);
	if (rc < 0) {
		app_report(app, LOG_ERROR, "%s: %s", path, strerror(-rc));
		return APP_EXIT_USAGE;
	}
	rc = config_apply_file(cfg, text, len, path, err, sizeof(err));
	free(text);
	if (rc < 0) {
		app_report(app, LOG_ERROR, "%s", err);
		return APP_EXIT_USAGE;
	}
	return 0;
}

int app_load_config(struct app *app, struct config *cfg)
{
	const char *path = config_find_file_arg(app->argc, app->argv);
	char err[CONFIG_ERR_MAX];
	int rc;

	if (config_init(cfg) < 0) {
		app_report(app, LOG_ERROR, "out of memory");
		return EXIT_FAILURE;
	}
	if (path) {
		rc = apply_config_file(app, cfg, path);
		if (rc != 0)
			return rc;
	}
	if (config_apply_args(cfg, app->argc, app->argv, err, sizeof(err)) <
		    0 ||
	    config_validate(cfg, err, sizeof(err)) < 0) {
		app_report(app, LOG_ERROR, "%s (try --help)", err);
		return APP_EXIT_USAGE;
	}
	return 0;
}

/* Observability (issue #12): the effective configuration on one event
 * line ("config: listen 127.0.0.1:8080; serial no; ..."), so a log shows
 * what the proxy ran with. */
static void app_log_config(struct app *app)
{
	char *dump = config_dump(&app->cfg), line[LOG_LINE_MAX];
	size_t len = 0;

	if (!dump)
		return;
	/* Options that are set; "# name (not set)" lines are left out. */
	for (char *p = dump, *nl; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
		int n = p[0] == '#'
				? 0
				: util_format(line + len, sizeof(line) - len,
					      "%s%.*s", len ? "; " : "",
					      (int)(nl - p), p);
		if (n > 0)
			len += (size_t)n;
	}
	free(dump);
	line[len] = '\0';
	log_event(app->log, LOG_INFO, "config: %s", line);
}

/* At exit: the counters, and the log's own lost lines. */
static void app_log_counters(struct app *app)
{
	struct stats_snapshot s;
	char text[1024];

	stats_snapshot(app->stats, &s);
	if (stats_render_summary(&s, text, sizeof(text)) > 0)
		log_event(app->log, LOG_INFO, "%s, log lines lost %llu", text,
			  (unsigned long long)log_write_errors(app->log));
}

/* --check-config: the lists are part of the configuration, check them. */
static int check_config(struct app *app)
{
	struct proxy_rules_spec rules;
	char *dump;

	if (app_build_rules(app, &app->cfg, &rules, NULL) < 0)
		return APP_EXIT_USAGE;
	app_rules_free(&rules);
	dump = config_dump(&app->cfg);
	say_text(app->sys, 1, dump);
	free(dump);
	return EXIT_SUCCESS;
}

static void *signal_thread(void *arg)
{
	struct app *app = arg;

	for (;;) {
		int sig = sys_signals_wait();

		if (atomic_load(&app->finished))
			return NULL;
		if (sig == SIGINT || sig == SIGTERM) {
			log_event(app->log, LOG_INFO, "signal %d: stopping",
				  sig);
			server_stop(app->srv);
			return NULL;
		}
		if (sig == SIGHUP) {
			app_reload(app);
		} else if (sig == SIGUSR1) {
			int rc = log_reopen(app->log);
			log_event(app->log, rc < 0 ? LOG_ERROR : LOG_INFO,
				  "SIGUSR1: %s",
				  rc < 0 ? "log reopen failed"
					 : "logs reopened");
		}
	}
}

/*
 * server_run returned: make sure the signal thread ends too, even when no
 * signal stopped the server, so the join cannot wait for ever.  A SIGTERM
 * aimed at that thread wakes its sigwait (every thread blocks the signal);
 * if it has ended already the signal goes nowhere.
 */
static void end_signal_thread(struct app *app)
{
	atomic_store(&app->finished, true);
	sys_signals_wake(app->signals, SIGTERM);
	pthread_join(app->signals, NULL);
}

int app_cache_open(struct app *app)
{
	struct cache_store_opts o;
	int rc;

	if (app->cfg.no_cache)
		return 0;
	cache_store_opts_default(&o);
	o.dir = app->cfg.cache_dir;
	o.max_size = (uint64_t)app->cfg.cache_size;
	o.max_object_size = (uint64_t)app->cfg.max_object_size;
	rc = cache_store_open_dir(app->sys, &o, &app->cache);
	if (rc < 0) {
		app_report(app, LOG_ERROR, "cannot open the cache in %s: %s",
			   o.dir, strerror(-rc));
		return rc;
	}
	struct cache_store_stats st;
	cache_store_get_stats(app->cache, &st);
	log_event(app->log, LOG_INFO,
		  "cache %s: %llu entries, %llu bytes (%llu leftovers removed)",
		  o.dir, (unsigned long long)st.entries,
		  (unsigned long long)st.bytes,
		  (unsigned long long)st.tmp_removed);
	return 0;
}

void app_cache_limits(struct app *app, const struct config *cfg)
{
	if (app->cache)
		cache_store_set_limits(app->cache, (uint64_t)cfg->cache_size,
				       (uint64_t)cfg->max_object_size);
}

/* Logs, then the proxy with its first rules; an exit status on failure. */
static int start_proxy(struct app *app)
{
	struct proxy_rules_spec rules;
	int rc;

	rc = log_open(app->sys, app->cfg.log_file, app->cfg.access_log,
		      app_log_level(&app->cfg), &app->log);
	if (rc < 0) {
		app_report(app, LOG_ERROR, "cannot open logs: %s",
			   strerror(-rc));
		return EXIT_FAILURE;
	}
	log_set_format(app->log, (enum log_format)app->cfg.access_log_format);
	app_log_config(app);
	if (app_build_rules(app, &app->cfg, &rules, &app->digests) < 0) {
		/* The problems are in the event log, which may be a file. */
		say(app, "the rules have errors; see %s",
		    app->cfg.log_file ? app->cfg.log_file : "above");
		return APP_EXIT_USAGE;
	}
	if (app_cache_open(app) < 0 || stats_new(app->sys, &app->stats) < 0 ||
	    proxy_new(app->sys, app->log, &rules.settings, &app->px) < 0) {
		app_rules_free(&rules);
		return EXIT_FAILURE;
	}
	proxy_set_cache(app->px, app->cache);
	proxy_set_stats(app->px, app->stats);
	if (proxy_set_rules(app->px, &rules) < 0)
		return EXIT_FAILURE;
	return 0;
}

static int start_server(struct app *app)
{
	struct server_options sopts = {
		.listen = app->cfg.listen,
		.max_connections = app->cfg.max_connections,
		.serial = app->cfg.serial,
		.grace_ms = app->cfg.shutdown_grace_ms,
		.max_per_client = app->cfg.max_connections_per_client,
		.workers = app->cfg.workers,
		.queue_size = app->cfg.queue_size,
		.queue_timeout_ms = app->cfg.queue_timeout_ms,
		.worker_idle_timeout_ms = app->cfg.worker_idle_timeout_ms,
		.reuse_port = app->cfg.reuse_port,
	};
	char addr[NET_ADDR_TEXT_MAX];
	int rc;

	/* Before any thread exists, so every thread inherits the mask. */
	rc = sys_signals_block();
	if (rc < 0)
		return rc;
	rc = server_open(app->sys, app->log, app->px, &sopts, &app->srv);
	if (rc < 0) {
		net_format_addr(&app->cfg.listen, addr, sizeof(addr));
		say(app, "cannot listen on %s: %s", addr, strerror(-rc));
	}
	return rc;
}

static int serve(struct app *app)
{
	struct log *log;
	int status = app_faults_start(app);

	if (status != 0)
		return status;
	status = start_proxy(app);
	log = app->log;
	app_faults_log(app, "FAULT INJECTION ACTIVE");
	if (status != 0)
		goto free_proxy;
	status = EXIT_FAILURE;
	if (start_server(app) < 0)
		goto free_proxy;
	/* Before the signal thread exists, which may replace app->cfg (a
	 * signal sent meanwhile waits: every thread blocks them). */
	log_event(log, LOG_INFO, "listening on %s%s", server_address(app->srv),
		  app->cfg.serial ? " (serial)" : "");
	/* The ready line tests and scripts wait for, with the real port. */
	say(app, "listening on %s", server_address(app->srv));
	if (pthread_create(&app->signals, NULL, signal_thread, app) != 0) {
		say(app, "cannot start the signal thread");
		goto close_server;
	}
	server_run(app->srv);
	end_signal_thread(app);
	app_log_counters(app);
	log_event(log, LOG_INFO, "stopped");
	status = EXIT_SUCCESS;
close_server:
	server_close(app->srv);
free_proxy:
	proxy_free(app->px);
	cache_store_close(app->cache);
	stats_free(app->stats);
	app_faults_log(app, "faults injected:");
	log_close(log);
	app_faults_stop(app);
	return status;
}

/* -V: the version and what this binary was built with, for bug reports. */
static void print_version(struct sys *sys)
{
	char text[512];

	util_format(text, sizeof(text),
		    PROXY_NAME
		    " " PROXY_VERSION "\n"
		    "fault injection: compiled in (src/sys/sys_fault.c)\n"
		    "splice: %s\n"
		    "libpsl: %s\n"
		    "compiler: %s\n",
#ifdef __linux__
		    "yes (zero-copy tunnels)",
#else
		    "no (tunnels copy through a buffer)",
#endif
		    psl_get_version(), __VERSION__);
	say_text(sys, 1, text);
}

int app_main(struct sys *sys, int argc, char **argv)
{
	struct app app = {.sys = sys, .os = sys, .argc = argc, .argv = argv};
	int status;

	atomic_init(&app.finished, false);
	status = app_load_config(&app, &app.cfg);
	if (status == 0 && app.cfg.help) {
		char *help = config_help("glassproxy");
		say_text(sys, 1, help);
		free(help);
	} else if (status == 0 && app.cfg.version) {
		print_version(sys);
	} else if (status == 0 && app.cfg.check_config) {
		status = check_config(&app);
	} else if (status == 0) {
		status = serve(&app);
	}
	config_free(&app.cfg);
	return status;
}
