/*
 * glassproxy: a caching HTTP/HTTPS forward proxy built as a glass box.
 *
 * main() wires the modules together: configuration, logs, rules, the
 * proxy, the server; then one thread takes the signals (sigwait) while the
 * main thread runs the accept loop.  To follow one request in gdb:
 *   make debug && gdb --args build/debug/glassproxy --serial -l 127.0.0.1:0
 *   (gdb) break proxy_forward
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "glassproxy/config.h"
#include "glassproxy/filter.h"
#include "glassproxy/log.h"
#include "glassproxy/net.h"
#include "glassproxy/parse.h"
#include "glassproxy/proxy.h"
#include "glassproxy/server.h"
#include "glassproxy/sys.h"
#include "glassproxy/util.h"

#define EXIT_USAGE	2
#define MAX_CONFIG_FILE (1 << 20)
#define MAX_HOSTS_FILE	(16 << 20)
#define MAX_LIST_FILE	(64 << 20)

struct app {
	struct sys *sys;
	int argc;
	char **argv;
	struct config cfg;
	struct log *log;
	struct proxy *px;
	struct server *srv;
};

/* Print to standard error through sys (the only OS path we have). */
static void say(struct sys *sys, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void say(struct sys *sys, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	sys_write_all(sys, 2, line, (size_t)n);
}

static void say_text(struct sys *sys, int fd, const char *text)
{
	if (text)
		sys_write_all(sys, fd, text, strlen(text));
}

/* Where diagnostics go: the event log once it is open, else stderr. */
static void report(struct app *app, enum log_level level, const char *text)
{
	if (app->log)
		log_event(app->log, level, "%s", text);
	else
		say(app->sys, "glassproxy: %s\n", text);
}

/*
 * Read the config file, then the command line on top, into cfg.  Returns 0
 * or an exit code; cfg is initialised either way (config_free it).
 */
static int load_config(struct app *app, struct config *cfg)
{
	char err[CONFIG_ERR_MAX], line[CONFIG_ERR_MAX + 64];
	const char *path = config_find_file_arg(app->argc, app->argv);
	int rc;

	if (config_init(cfg) < 0) {
		report(app, LOG_ERROR, "out of memory");
		return EXIT_FAILURE;
	}
	if (path) {
		char *text;
		size_t len;

		rc = sys_read_file(app->sys, path, MAX_CONFIG_FILE, &text,
				   &len);
		if (rc < 0) {
			util_format(line, sizeof(line), "%s: %s", path,
				    strerror(-rc));
			report(app, LOG_ERROR, line);
			return EXIT_USAGE;
		}
		rc = config_apply_file(cfg, text, len, path, err, sizeof(err));
		free(text);
		if (rc < 0) {
			report(app, LOG_ERROR, err);
			return EXIT_USAGE;
		}
	}
	if (config_apply_args(cfg, app->argc, app->argv, err, sizeof(err)) <
		    0 ||
	    config_validate(cfg, err, sizeof(err)) < 0) {
		util_format(line, sizeof(line), "%s (try --help)", err);
		report(app, LOG_ERROR, line);
		return EXIT_USAGE;
	}
	return 0;
}

static void report_filter_diag(void *arg, const struct filter_diag *d)
{
	report(arg, d->severity == FILTER_DIAG_ERROR ? LOG_ERROR : LOG_WARN,
	       d->text);
}

/* Add every list file of one kind; -EINVAL when any could not be read. */
static int add_list_files(struct app *app, struct filter *f,
			  enum filter_list list,
			  const struct config_list *files)
{
	int failed = 0;

	for (size_t i = 0; i < files->count; i++) {
		char *text, line[1024];
		size_t len;
		int rc = sys_read_file(app->sys, files->items[i], MAX_LIST_FILE,
				       &text, &len);
		if (rc < 0) {
			util_format(line, sizeof(line), "%s: %s",
				    files->items[i], strerror(-rc));
			report(app, LOG_ERROR, line);
			failed = 1;
			continue;
		}
		rc = filter_add_list_text(f, list, text, len, files->items[i],
					  report_filter_diag, app);
		free(text);
		if (rc == -ENOMEM)
			return rc;
	}
	return failed ? -EINVAL : 0;
}

static int add_patterns(struct app *app, struct filter *f,
			enum filter_list list, const struct config_list *l,
			const char *source)
{
	for (size_t i = 0; i < l->count; i++)
		if (filter_add_pattern(f, list, l->items[i], source, 0,
				       report_filter_diag, app) == -ENOMEM)
			return -ENOMEM;
	return 0;
}

/*
 * Build a complete rules snapshot from cfg: hosts file, filter, direct
 * patterns.  Every problem is reported (file and line) and makes it fail:
 * a reload that fails keeps the old rules.
 */
static int build_rules(struct app *app, const struct config *cfg,
		       struct proxy_rules_spec *spec)
{
	int rc = 0, allow_files, block_files;

	memset(spec, 0, sizeof(*spec));
	if (cfg->hosts_file) {
		char *text, line[1024];
		size_t len;
		unsigned skipped = 0;

		rc = sys_read_file(app->sys, cfg->hosts_file, MAX_HOSTS_FILE,
				   &text, &len);
		if (rc < 0) {
			util_format(line, sizeof(line), "hosts file %s: %s",
				    cfg->hosts_file, strerror(-rc));
			report(app, LOG_ERROR, line);
			goto fail;
		}
		rc = net_hosts_parse(text, len, &spec->hosts, &skipped);
		free(text);
		if (rc < 0)
			goto fail;
		if (skipped) {
			util_format(line, sizeof(line),
				    "hosts file %s: %u lines without an IP "
				    "address were skipped",
				    cfg->hosts_file, skipped);
			report(app, LOG_WARN, line);
		}
	}
	spec->filter = filter_new();
	if (!spec->filter) {
		rc = -ENOMEM;
		goto fail;
	}
	if (add_patterns(app, spec->filter, FILTER_LIST_ALLOW, &cfg->allow,
			 "--allow") < 0 ||
	    add_patterns(app, spec->filter, FILTER_LIST_BLOCK, &cfg->block,
			 "--block") < 0) {
		rc = -ENOMEM;
		goto fail;
	}
	/* An unreadable list file is an error like a bad line in one. */
	allow_files = add_list_files(app, spec->filter, FILTER_LIST_ALLOW,
				     &cfg->allow_file);
	block_files = add_list_files(app, spec->filter, FILTER_LIST_BLOCK,
				     &cfg->block_file);
	if (allow_files == -ENOMEM || block_files == -ENOMEM) {
		rc = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < cfg->allow_client.count; i++)
		filter_add_client(spec->filter, cfg->allow_client.items[i],
				  "--allow-client", 0, report_filter_diag, app);
	filter_add_connect_ports(spec->filter, cfg->connect_ports,
				 "--connect-ports", 0, report_filter_diag, app);
	if (allow_files < 0 || block_files < 0 ||
	    filter_error_count(spec->filter) > 0) {
		rc = -EINVAL;
		goto fail;
	}
	if (cfg->direct.count > 0) {
		spec->direct = filter_new();
		if (!spec->direct) {
			rc = -ENOMEM;
			goto fail;
		}
		add_patterns(app, spec->direct, FILTER_LIST_ALLOW, &cfg->direct,
			     "--direct");
		if (filter_error_count(spec->direct) > 0) {
			rc = -EINVAL;
			goto fail;
		}
	}
	return 0;

fail:
	net_hosts_free(spec->hosts);
	filter_free(spec->filter);
	filter_free(spec->direct);
	memset(spec, 0, sizeof(*spec));
	return rc < 0 ? rc : -EINVAL;
}

/* Fill the proxy's settings; an exit code (usage) on a bad value. */
static int settings_from_config(struct sys *sys, const struct config *cfg,
				struct proxy_settings *set)
{
	memset(set, 0, sizeof(*set));
	if (cfg->parent_proxy) {
		struct http_url parent;
		const char *spec = cfg->parent_proxy;

		if (http_parse_authority(spec, strlen(spec), &parent) < 0 ||
		    util_copy(set->parent_host, sizeof(set->parent_host),
			      parent.host.ptr, parent.host.len) < 0) {
			say(sys,
			    "glassproxy: --parent-proxy: '%s' is not "
			    "HOST:PORT\n",
			    spec);
			return EXIT_USAGE;
		}
		set->parent_port = parent.port;
	}
	util_copy(set->via_name, sizeof(set->via_name), cfg->via_name,
		  strlen(cfg->via_name));
	set->forwarded = strcmp(cfg->forwarded_for, "on") == 0
				 ? PROXY_FORWARDED_ON
			 : strcmp(cfg->forwarded_for, "delete") == 0
				 ? PROXY_FORWARDED_DELETE
				 : PROXY_FORWARDED_OFF;
	set->upstream_idle_timeout_ms = cfg->upstream_idle_timeout_ms;
	set->max_idle_upstream = (size_t)cfg->max_idle_upstream;
	set->connect_timeout_ms = cfg->connect_timeout_ms;
	set->response_timeout_ms = cfg->response_timeout_ms;
	set->request_timeout_ms = cfg->request_timeout_ms;
	set->client_idle_timeout_ms = cfg->client_idle_timeout_ms;
	set->tunnel_idle_timeout_ms = cfg->tunnel_idle_timeout_ms;
	set->max_request_body = (uint64_t)cfg->max_request_body;
	return 0;
}

/* SIGHUP: re-read the config file and every list; keep the old on error. */
static void reload_rules(struct app *app)
{
	struct proxy_rules_spec spec;
	struct config fresh;
	int rc;

	rc = load_config(app, &fresh);
	if (rc == 0)
		rc = build_rules(app, &fresh, &spec) < 0 ? -EINVAL : 0;
	if (rc == 0 &&
	    settings_from_config(app->sys, &fresh, &spec.settings) != 0) {
		net_hosts_free(spec.hosts);
		filter_free(spec.filter);
		filter_free(spec.direct);
		rc = -EINVAL;
	}
	if (rc == 0)
		rc = proxy_set_rules(app->px, &spec);
	config_free(&fresh);
	log_event(app->log, rc ? LOG_ERROR : LOG_INFO, "SIGHUP: %s",
		  rc ? "reload failed, keeping the old rules"
		     : "configuration and lists reloaded");
}

static void *signal_thread(void *arg)
{
	struct app *app = arg;

	for (;;) {
		int sig = sys_signals_wait();

		if (sig == SIGINT || sig == SIGTERM) {
			log_event(app->log, LOG_INFO, "signal %d: stopping",
				  sig);
			server_stop(app->srv);
			return NULL;
		}
		if (sig == SIGHUP) {
			reload_rules(app);
		} else if (sig == SIGUSR1) {
			int rc = log_reopen(app->log);
			log_event(app->log, rc < 0 ? LOG_ERROR : LOG_INFO,
				  "SIGUSR1: %s",
				  rc < 0 ? "log reopen failed"
					 : "logs reopened");
		}
	}
}

int main(int argc, char **argv)
{
	static const enum log_level levels[] = {LOG_WARN, LOG_INFO, LOG_DEBUG};
	struct app app = {.sys = sys_posix(), .argc = argc, .argv = argv};
	struct proxy_rules_spec rules;
	struct server_options sopts;
	struct proxy_settings set;
	pthread_t signals;
	int rc, status = EXIT_FAILURE;

	rc = load_config(&app, &app.cfg);
	if (rc != 0) {
		status = rc;
		goto free_config;
	}
	if (app.cfg.help) {
		char *help = config_help("glassproxy");
		say_text(app.sys, 1, help);
		free(help);
		status = EXIT_SUCCESS;
		goto free_config;
	}
	if (app.cfg.version) {
		say_text(app.sys, 1, PROXY_NAME " " PROXY_VERSION "\n");
		status = EXIT_SUCCESS;
		goto free_config;
	}
	memset(&sopts, 0, sizeof(sopts));
	if (net_parse_addr(app.cfg.listen, &sopts.listen) < 0) {
		say(app.sys,
		    "glassproxy: --listen: '%s' is not ADDR:PORT "
		    "(IPv4, or [IPv6]:PORT)\n",
		    app.cfg.listen);
		status = EXIT_USAGE;
		goto free_config;
	}
	rc = settings_from_config(app.sys, &app.cfg, &set);
	if (rc != 0) {
		status = rc;
		goto free_config;
	}
	if (app.cfg.check_config) {
		/* The lists are part of the configuration: check them too. */
		if (build_rules(&app, &app.cfg, &rules) < 0) {
			status = EXIT_USAGE;
			goto free_config;
		}
		net_hosts_free(rules.hosts);
		filter_free(rules.filter);
		filter_free(rules.direct);
		char *dump = config_dump(&app.cfg);
		say_text(app.sys, 1, dump);
		free(dump);
		status = EXIT_SUCCESS;
		goto free_config;
	}

	rc = log_open(app.sys, app.cfg.log_file, app.cfg.access_log,
		      levels[app.cfg.verbosity], &app.log);
	if (rc < 0) {
		say(app.sys, "glassproxy: cannot open logs: %s\n",
		    strerror(-rc));
		goto free_config;
	}
	if (proxy_new(app.sys, app.log, &set, &app.px) < 0)
		goto close_log;
	if (build_rules(&app, &app.cfg, &rules) < 0 ||
	    (rules.settings = set, proxy_set_rules(app.px, &rules) < 0)) {
		say(app.sys, "glassproxy: the rules have errors; see %s\n",
		    app.cfg.log_file ? app.cfg.log_file : "above");
		status = EXIT_USAGE;
		goto free_proxy;
	}

	/* Before any thread exists, so every thread inherits the mask. */
	rc = sys_signals_block();
	if (rc < 0)
		goto free_proxy;
	sopts.max_connections = app.cfg.max_connections;
	sopts.serial = app.cfg.serial;
	sopts.grace_ms = app.cfg.shutdown_grace_ms;
	rc = server_open(app.sys, app.log, app.px, &sopts, &app.srv);
	if (rc < 0) {
		say(app.sys, "glassproxy: cannot listen on %s: %s\n",
		    app.cfg.listen, strerror(-rc));
		goto free_proxy;
	}
	rc = pthread_create(&signals, NULL, signal_thread, &app);
	if (rc != 0) {
		say(app.sys, "glassproxy: cannot start the signal thread\n");
		goto close_server;
	}
	log_event(app.log, LOG_INFO, "listening on %s%s",
		  server_address(app.srv), app.cfg.serial ? " (serial)" : "");
	/* The ready line tests and scripts wait for, with the real port. */
	say(app.sys, "glassproxy: listening on %s\n", server_address(app.srv));

	server_run(app.srv);
	pthread_join(signals, NULL);
	log_event(app.log, LOG_INFO, "stopped");
	status = EXIT_SUCCESS;

close_server:
	server_close(app.srv);
free_proxy:
	proxy_free(app.px);
close_log:
	log_close(app.log);
free_config:
	config_free(&app.cfg);
	return status;
}
