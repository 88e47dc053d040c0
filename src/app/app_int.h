/*
 * The app module's internals: the running program's state, the build of a
 * rules snapshot and proxy settings from a struct config, and a reload in
 * two steps (prepare: read and check everything, change nothing; apply:
 * install it) so tests/test_app.c can check what a reload would install.
 */
#ifndef GLASSPROXY_APP_INT_H
#define GLASSPROXY_APP_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "glassproxy/app.h"
#include "glassproxy/cache.h"
#include "glassproxy/config.h"
#include "glassproxy/log.h"
#include "glassproxy/proxy.h"
#include "glassproxy/server.h"

/* Digests of the files a configuration was built from: a reload tells a
 * changed hosts file (drop pooled connections) and names changed lists. */
struct app_digests {
	uint64_t hosts; /* 0: no hosts file */
	uint64_t lists; /* every allow/block list file, in order */
};

struct app {
	struct sys *sys; /* what every module uses: os, or fault over it */
	struct sys *os;	 /* the sys app_main was given; the app's stderr */
	struct sys *fault; /* the fault sys (issue #11), or NULL: no faults */
	int argc;
	char **argv;
	struct config cfg; /* the configuration in force */
	struct app_digests digests;
	struct log *log; /* NULL until open: messages go to stderr */
	struct proxy *px;
	struct cache_store *cache; /* NULL with --no-cache */
	struct stats *stats; /* counters (issue #12) */
	struct server *srv; /* NULL until listening */
	pthread_t signals;
	atomic_bool finished; /* server_run returned: the signal thread ends */
};

/* A reload read and checked, not yet installed. */
struct app_reload {
	struct config cfg; /* restart-only options already the old ones */
	struct proxy_rules_spec spec; /* settings and hosts_changed filled */
	struct app_digests digests;
	int changes;	   /* how many things changed (options, files) */
	char changed[512]; /* their names: "response-timeout, hosts file" */
};

/* Log a line (to stderr as "glassproxy: ..." until the log is open). */
void app_report(struct app *app, enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The config file, then the command line, into cfg (always initialised:
 * config_free it).  Returns 0 or an exit status, the problem reported. */
int app_load_config(struct app *app, struct config *cfg);

/* The log level --verbose/--quiet asked for. */
enum log_level app_log_level(const struct config *cfg);

/*
 * Read the hosts file and the list files of cfg and build a complete rules
 * snapshot (settings included; hosts_changed false).  Every problem is
 * reported with its file and line and makes it fail (-EINVAL, -ENOMEM)
 * with nothing left to free.  digests may be NULL.
 */
int app_build_rules(struct app *app, const struct config *cfg,
		    struct proxy_rules_spec *spec, struct app_digests *digests);
void app_rules_free(struct proxy_rules_spec *spec);
void app_settings_from_config(const struct config *cfg,
			      struct proxy_settings *set);

/*
 * Read and check a new configuration against app->cfg: 0 with r filled
 * (warnings logged for restart-only options that changed), or -EINVAL with
 * the problems logged and nothing to free.
 */
int app_reload_prepare(struct app *app, struct app_reload *r);
/* Install r (logs, rules and settings, grace); r is consumed either way. */
int app_reload_apply(struct app *app, struct app_reload *r);
void app_reload_discard(struct app_reload *r);
/* Open the cache store cfg asks for (none with --no-cache): 0 or <0. */
int app_cache_open(struct app *app);
/* --cache-size and --max-object-size of cfg, live. */
void app_cache_limits(struct app *app, const struct config *cfg);

/* SIGHUP: prepare, apply, and one line saying what happened. */
void app_reload(struct app *app);

/*
 * Fault injection (src/app/faults.c, docs/faults.md).  start: gather the
 * specs (--fault, config key fault, GLASSPROXY_FAULTS) and, if there are
 * any, build app->fault over app->os, point app->sys at it and print the
 * banner; 0 or an exit status (2 for a bad spec, its caret line printed).
 * log: a headline and the rules with their counters in the event log.  stop: the counters on
 * stderr, then the fault sys freed (after every thread has stopped).
 */
int app_faults_start(struct app *app);
void app_faults_log(struct app *app, const char *headline);
void app_faults_stop(struct app *app);

#endif
