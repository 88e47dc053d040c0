/*
 * SIGHUP: a whole new configuration or none.  Prepare reads the config
 * file, the command line, the hosts file and the lists and builds the new
 * rules and settings without touching what runs; apply installs them
 * (logs first, the only step that can fail for a reason other than
 * memory, then the rules snapshot, then the shutdown grace).
 */
#include <errno.h>
#include <string.h>

#include "app/app_int.h"
#include "glassproxy/util.h"

static bool same_path(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* Add one name to the "what changed" list of the info line. */
static void note_change(struct app_reload *r, const char *what)
{
	size_t len = strlen(r->changed);

	util_format(r->changed + len, sizeof(r->changed) - len, "%s%s",
		    len ? ", " : "", what);
	r->changes++;
}

struct diff_ctx {
	struct app *app;
	struct app_reload *r;
};

static void on_change(void *arg, const struct config_change *c)
{
	struct diff_ctx *d = arg;

	if (c->needs_restart)
		app_report(d->app, LOG_WARN,
			   "reload: '%s' changed; needs a restart, keeping %s",
			   c->name, c->old_value);
	else
		note_change(d->r, c->name);
}

/* Name what changed, warn about what cannot, and keep those old values. */
static int compare(struct app *app, struct app_reload *r)
{
	struct diff_ctx d = {app, r};

	if (config_diff(&app->cfg, &r->cfg, on_change, &d) < 0)
		return -ENOMEM;
	config_keep_restart_options(&r->cfg, &app->cfg);
	if (r->digests.hosts != app->digests.hosts &&
	    same_path(r->cfg.hosts_file, app->cfg.hosts_file))
		note_change(r, "hosts file contents");
	if (r->digests.lists != app->digests.lists)
		note_change(r, "list file contents");
	/* Pooled connections were made to addresses the old file gave. */
	r->spec.hosts_changed =
		!same_path(r->cfg.hosts_file, app->cfg.hosts_file) ||
		r->digests.hosts != app->digests.hosts;
	return 0;
}

int app_reload_prepare(struct app *app, struct app_reload *r)
{
	memset(r, 0, sizeof(*r));
	if (app_load_config(app, &r->cfg) != 0)
		goto free_config;
	if (app_build_rules(app, &r->cfg, &r->spec, &r->digests) < 0)
		goto free_config;
	if (compare(app, r) < 0) {
		app_rules_free(&r->spec);
		goto free_config;
	}
	return 0;

free_config:
	config_free(&r->cfg);
	return -EINVAL;
}

void app_reload_discard(struct app_reload *r)
{
	app_rules_free(&r->spec);
	config_free(&r->cfg);
}

int app_reload_apply(struct app *app, struct app_reload *r)
{
	const struct config *now = &app->cfg;
	int rc;

	rc = log_reconfigure(app->log, r->cfg.log_file, r->cfg.access_log,
			     app_log_level(&r->cfg));
	if (rc < 0) {
		app_report(app, LOG_ERROR, "reload: cannot open the logs: %s",
			   strerror(-rc));
		app_reload_discard(r);
		return rc;
	}
	rc = proxy_set_rules(app->px, &r->spec); /* takes the spec */
	memset(&r->spec, 0, sizeof(r->spec));
	if (rc < 0) {
		log_reconfigure(app->log, now->log_file, now->access_log,
				app_log_level(now));
		config_free(&r->cfg);
		return rc;
	}
	if (app->srv)
		server_set_grace_ms(app->srv, r->cfg.shutdown_grace_ms);
	app_cache_limits(app, &r->cfg);
	config_free(&app->cfg);
	app->cfg = r->cfg;
	app->digests = r->digests;
	memset(&r->cfg, 0, sizeof(r->cfg));
	return 0;
}

void app_reload(struct app *app)
{
	struct app_reload r;
	int rc;

	rc = app_reload_prepare(app, &r);
	if (rc == 0) {
		char changed[sizeof(r.changed)];
		memcpy(changed, r.changed, sizeof(changed));
		rc = app_reload_apply(app, &r);
		if (rc == 0) {
			log_event(app->log, LOG_INFO,
				  "SIGHUP: configuration and lists reloaded; "
				  "changed: %s",
				  changed[0] ? changed : "nothing");
			return;
		}
	}
	log_event(app->log, LOG_ERROR,
		  "SIGHUP: reload failed, keeping the old configuration");
}
