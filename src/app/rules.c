/*
 * From a typed configuration to what the proxy runs on: the rules snapshot
 * (hosts file, filter, direct patterns) and the live settings.  The files
 * are read here, through sys; the filter and the hosts parser stay pure.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "app/app_int.h"
#include "glassproxy/auth.h"
#include "glassproxy/filter.h"
#include "glassproxy/net.h"
#include "glassproxy/util.h"

#define MAX_HOSTS_FILE (16 << 20)
#define MAX_LIST_FILE  (64 << 20)

/* FNV-1a, 64 bits: enough to tell "this file changed" (not security). */
#define DIGEST_START 0xcbf29ce484222325ULL

static uint64_t digest_add(uint64_t h, const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)p[i];
		h *= 0x100000001b3ULL;
	}
	/* The length too, so that file boundaries count. */
	for (int i = 0; i < 8; i++) {
		h ^= (unsigned char)(len >> (8 * i));
		h *= 0x100000001b3ULL;
	}
	return h;
}

static void report_filter_diag(void *arg, const struct filter_diag *d)
{
	app_report(arg, d->severity == FILTER_DIAG_ERROR ? LOG_ERROR : LOG_WARN,
		   "%s", d->text);
}

static int read_hosts(struct app *app, const char *path, struct net_hosts **out,
		      uint64_t *digest)
{
	unsigned skipped = 0;
	char *text;
	size_t len;
	int rc;

	rc = sys_read_file(app->sys, path, MAX_HOSTS_FILE, &text, &len);
	if (rc < 0) {
		app_report(app, LOG_ERROR, "hosts file %s: %s", path,
			   strerror(-rc));
		return rc;
	}
	*digest = digest_add(DIGEST_START, text, len) | 1; /* never 0 */
	rc = net_hosts_parse(text, len, out, &skipped);
	free(text);
	if (rc == 0 && skipped)
		app_report(app, LOG_WARN,
			   "hosts file %s: %u lines without an IP address "
			   "were skipped",
			   path, skipped);
	return rc;
}

/* Add every list file of one kind; -EINVAL when any could not be read. */
static int add_list_files(struct app *app, struct filter *f,
			  enum filter_list list,
			  const struct config_list *files, uint64_t *digest)
{
	int failed = 0;

	for (size_t i = 0; i < files->count; i++) {
		char *text;
		size_t len;
		int rc = sys_read_file(app->sys, files->items[i], MAX_LIST_FILE,
				       &text, &len);
		if (rc < 0) {
			app_report(app, LOG_ERROR, "%s: %s", files->items[i],
				   strerror(-rc));
			failed = 1;
			continue;
		}
		*digest = digest_add(*digest, text, len);
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

/* filter_add_connect_ports or filter_add_http_ports. */
typedef int port_list_fn(struct filter *f, const char *spec, const char *source,
			 unsigned line, filter_report_fn *report, void *arg);

/* The filter takes port lists as text: hand it the parsed ranges so. */
static void add_ports(struct app *app, struct filter *f,
		      const struct config_ports *ports, port_list_fn *add,
		      const char *source)
{
	for (size_t i = 0; i < ports->count; i++) {
		char spec[16];

		util_format(spec, sizeof(spec), "%u-%u",
			    (unsigned)ports->ranges[i].lo,
			    (unsigned)ports->ranges[i].hi);
		add(f, spec, source, 0, report_filter_diag, app);
	}
}

static void report_auth_diag(void *arg, const struct auth_diag *d)
{
	app_report(arg, LOG_ERROR, "%s", d->text);
}

/* --auth-file: every bad line is reported; NULL when none is set. */
static int build_auth(struct app *app, const struct config *cfg,
		      struct auth **out)
{
	*out = NULL;
	if (!cfg->auth_file)
		return 0;
	int rc =
		auth_load(app->sys, cfg->auth_file, report_auth_diag, app, out);
	return rc < 0 ? rc : 0;
}

/* The allow/block filter; NULL after reporting every problem. */
static int build_filter(struct app *app, const struct config *cfg,
			struct filter **out, uint64_t *lists_digest)
{
	struct filter *f = filter_new();
	int allow_files, block_files;

	*out = NULL;
	if (!f)
		return -ENOMEM;
	if (add_patterns(app, f, FILTER_LIST_ALLOW, &cfg->allow, "--allow") <
		    0 ||
	    add_patterns(app, f, FILTER_LIST_BLOCK, &cfg->block, "--block") < 0)
		goto nomem;
	/* An unreadable list file is an error like a bad line in one. */
	allow_files = add_list_files(app, f, FILTER_LIST_ALLOW,
				     &cfg->allow_file, lists_digest);
	block_files = add_list_files(app, f, FILTER_LIST_BLOCK,
				     &cfg->block_file, lists_digest);
	if (allow_files == -ENOMEM || block_files == -ENOMEM)
		goto nomem;
	for (size_t i = 0; i < cfg->allow_client.count; i++)
		filter_add_client(f, cfg->allow_client.items[i],
				  "--allow-client", 0, report_filter_diag, app);
	add_ports(app, f, &cfg->connect_ports, filter_add_connect_ports,
		  "--connect-ports");
	/* Plain http:// ports (issue 15, finding 11). */
	add_ports(app, f, &cfg->http_ports, filter_add_http_ports,
		  "--http-ports");
	if (allow_files < 0 || block_files < 0 || filter_error_count(f) > 0) {
		filter_free(f);
		return -EINVAL;
	}
	*out = f;
	return 0;

nomem:
	filter_free(f);
	return -ENOMEM;
}

/* Hosts that bypass the parent proxy; NULL when there are none. */
static int build_direct(struct app *app, const struct config *cfg,
			struct filter **out)
{
	struct filter *f;

	*out = NULL;
	if (cfg->direct.count == 0)
		return 0;
	f = filter_new();
	if (!f)
		return -ENOMEM;
	if (add_patterns(app, f, FILTER_LIST_ALLOW, &cfg->direct, "--direct") <
	    0) {
		filter_free(f);
		return -ENOMEM;
	}
	if (filter_error_count(f) > 0) {
		filter_free(f);
		return -EINVAL;
	}
	*out = f;
	return 0;
}

void app_rules_free(struct proxy_rules_spec *spec)
{
	net_hosts_free(spec->hosts);
	filter_free(spec->filter);
	filter_free(spec->direct);
	auth_free(spec->auth);
	memset(spec, 0, sizeof(*spec));
}

int app_build_rules(struct app *app, const struct config *cfg,
		    struct proxy_rules_spec *spec, struct app_digests *digests)
{
	struct app_digests d = {0, DIGEST_START};
	int rc = 0;

	memset(spec, 0, sizeof(*spec));
	if (cfg->hosts_file)
		rc = read_hosts(app, cfg->hosts_file, &spec->hosts, &d.hosts);
	/* Every part is built (and its problems reported) even after one
	 * failed, so one run names every mistake. */
	int frc = build_filter(app, cfg, &spec->filter, &d.lists);
	int drc = build_direct(app, cfg, &spec->direct);
	int arc = build_auth(app, cfg, &spec->auth);
	if (rc == 0)
		rc = frc < 0 ? frc : drc < 0 ? drc : arc;
	if (rc < 0) {
		app_rules_free(spec);
		return rc;
	}
	app_settings_from_config(cfg, &spec->settings);
	if (digests)
		*digests = d;
	return 0;
}

void app_settings_from_config(const struct config *cfg,
			      struct proxy_settings *set)
{
	memset(set, 0, sizeof(*set));
	/* Both were checked when parsed (a token, a host name or IP). */
	util_copy(set->via_name, sizeof(set->via_name), cfg->via_name,
		  strlen(cfg->via_name));
	util_copy(set->parent_host, sizeof(set->parent_host),
		  cfg->parent_proxy.host, strlen(cfg->parent_proxy.host));
	set->parent_port = cfg->parent_proxy.port;
	set->forwarded = cfg->forwarded_for;
	set->upstream_idle_timeout_ms = cfg->upstream_idle_timeout_ms;
	set->max_idle_upstream = (size_t)cfg->max_idle_upstream;
	set->connect_timeout_ms = cfg->connect_timeout_ms;
	set->response_timeout_ms = cfg->response_timeout_ms;
	set->request_timeout_ms = cfg->request_timeout_ms;
	set->client_idle_timeout_ms = cfg->client_idle_timeout_ms;
	set->tunnel_idle_timeout_ms = cfg->tunnel_idle_timeout_ms;
	set->max_request_body = (uint64_t)cfg->max_request_body;
	/* The cache's policy (issue #10); the store itself is app.c's. */
	set->cache_policy.default_ttl = cfg->default_ttl;
	set->cache_policy.heuristic_without_lm = cfg->default_ttl > 0;
	set->cache_policy.max_stale_on_failure = cfg->max_stale_on_failure;
	set->request_body_timeout_ms = cfg->request_body_timeout_ms;
	set->min_body_rate = (unsigned)cfg->min_body_rate;
	set->min_send_rate = (unsigned)cfg->min_send_rate;
	set->server_tokens = cfg->server_tokens != 0;
	if (cfg->auth_realm)
		util_copy(set->auth_realm, sizeof(set->auth_realm),
			  cfg->auth_realm, strlen(cfg->auth_realm));
	set->auth_max_failures = (unsigned)cfg->auth_max_failures;
	set->auth_window_ms = cfg->auth_failure_window_ms;
}
