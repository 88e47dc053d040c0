/*
 * The option table and everything derived from it: defaults, --help, the
 * config-file parser, getopt_long's option array, --check-config's printout
 * and the list of changes a reload reports.
 */
#include "glassproxy/config.h"

#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "glassproxy/auth.h"
#include "glassproxy/log.h"
#include "glassproxy/net.h"
#include "glassproxy/parse.h"
#include "glassproxy/util.h"

enum opt_type {
	OPT_STRING,    /* char *, a path */
	OPT_INT,       /* int within [min, max] */
	OPT_DURATION,  /* int milliseconds: "10" or "10s", "500ms", "2m" */
	OPT_SIZE,      /* long long bytes: "100", "64k", "10M", "1G" */
	OPT_BOOL,      /* bool: a flag; "yes/no/on/off/true/false" in files */
	OPT_LIST,      /* struct config_list: repeatable */
	OPT_VERBOSE,   /* -v: one more level of detail */
	OPT_QUIET,     /* -q: warnings and errors only */
	OPT_CLI_ONLY,  /* bool modes: --help, --version, --check-config */
	OPT_ADDR,      /* struct sys_addr: "ADDR:PORT", "[v6]:PORT" */
	OPT_ENUM,      /* an int-sized enum, one of names[] */
	OPT_TOKEN,     /* char[max + 1]: RFC 9110 token, at most max chars */
	OPT_HOST_PORT, /* struct config_host_port: "HOST:PORT" */
	OPT_PORTS,     /* struct config_ports: "443,8443,9000-9100" */
};

struct opt_name {
	const char *name;
	int value;
};

struct opt {
	const char *name;
	char short_name; /* 0: none */
	enum opt_type type;
	size_t offset, size;
	const char *def; /* default as text, applied by config_init */
	long long min, max;
	const char *arg; /* metavariable in --help */
	const char *help;
	/* A running proxy keeps its old value: a reload warns instead. */
	bool restart;
	const struct opt_name *names; /* OPT_ENUM, NULL-terminated */
};

#define OFF(member) offsetof(struct config, member)
#define F(member)   OFF(member), sizeof(((struct config *)0)->member)
#define DAY_MS	    (24LL * 3600 * 1000)
#define LIVE	    false, NULL /* a reload applies a new value */
#define RESTART	    true, NULL

static const struct opt_name forwarded_names[] = {
	{"off", PROXY_FORWARDED_OFF},
	{"on", PROXY_FORWARDED_ON},
	{"delete", PROXY_FORWARDED_DELETE},
	{NULL, 0},
};

static const struct opt_name on_off_names[] = {
	{"on", 1},
	{"off", 0},
	{NULL, 0},
};
/* Observability (issue #12). */
static const struct opt_name access_format_names[] = {
	{"squid", LOG_FORMAT_SQUID},
	{"combined", LOG_FORMAT_COMBINED},
	{"json", LOG_FORMAT_JSON},
	{"glassproxy", LOG_FORMAT_GLASSPROXY},
	{NULL, 0},
};
static const struct opt_name log_level_names[] = {
	{"auto", -1},	    {"error", LOG_ERROR}, {"warn", LOG_WARN},
	{"info", LOG_INFO}, {"debug", LOG_DEBUG}, {NULL, 0},
};

static const struct opt options[] = {
	{"listen", 'l', OPT_ADDR, F(listen), "127.0.0.1:8080", 0, 0,
	 "ADDR:PORT", "address to listen on; [v6]:port; port 0 picks one",
	 RESTART},
	{"config", 'c', OPT_STRING, F(config_file), NULL, 0, 0, "FILE",
	 "read 'key value' lines from FILE first", LIVE},
	{"check-config", 0, OPT_CLI_ONLY, F(check_config), NULL, 0, 0, NULL,
	 "validate, print the effective configuration and exit", LIVE},
	{"hosts-file", 0, OPT_STRING, F(hosts_file), NULL, 0, 0, "FILE",
	 "hosts(5)-format file consulted before DNS", LIVE},
	{"log-file", 0, OPT_STRING, F(log_file), NULL, 0, 0, "FILE",
	 "event log (default: standard error)", LIVE},
	{"access-log", 0, OPT_STRING, F(access_log), NULL, 0, 0, "FILE",
	 "one line per request (default: into the event log)", LIVE},
	{"verbose", 'v', OPT_VERBOSE, F(verbosity), "1", 0, 2, NULL,
	 "log more (repeat for debug)", LIVE},
	{"quiet", 'q', OPT_QUIET, F(verbosity), NULL, 0, 2, NULL,
	 "log warnings and errors only", LIVE},
	{"serial", 0, OPT_BOOL, F(serial), "no", 0, 0, NULL,
	 "serve one connection at a time on the main thread (for gdb)",
	 RESTART},
	{"max-connections", 0, OPT_INT, F(max_connections), "10000", 1, 65536,
	 "N",
	 "open client connections (capped by the descriptor limit); more "
	 "are answered 503",
	 RESTART},
	{"connect-timeout", 0, OPT_DURATION, F(connect_timeout_ms), "10s", 1,
	 DAY_MS, "TIME", "connecting to an origin (504 after)", LIVE},
	{"response-timeout", 0, OPT_DURATION, F(response_timeout_ms), "60s", 1,
	 DAY_MS, "TIME", "waiting for an origin's response (504 after)", LIVE},
	{"request-timeout", 0, OPT_DURATION, F(request_timeout_ms), "30s", 1,
	 DAY_MS, "TIME", "a client's whole request head (408 after)", LIVE},
	{"client-idle-timeout", 0, OPT_DURATION, F(client_idle_timeout_ms),
	 "15s", 1, DAY_MS, "TIME", "idle client keep-alive connections", LIVE},
	{"upstream-idle-timeout", 0, OPT_DURATION, F(upstream_idle_timeout_ms),
	 "30s", 1, DAY_MS, "TIME", "idle pooled connections to origins", LIVE},
	{"max-idle-upstream", 0, OPT_INT, F(max_idle_upstream), "64", 0, 65536,
	 "N", "idle origin connections kept for reuse (0: none)", LIVE},
	{"shutdown-grace", 0, OPT_DURATION, F(shutdown_grace_ms), "10s", 0,
	 DAY_MS, "TIME", "how long in-flight requests may finish at exit",
	 LIVE},
	{"max-request-body", 0, OPT_SIZE, F(max_request_body), "0", 0,
	 INT64_MAX, "SIZE", "largest request body (413 above; 0: no limit)",
	 LIVE},
	{"forwarded-for", 0, OPT_ENUM, F(forwarded_for), "off", 0, 0, "MODE",
	 "X-Forwarded-For/Forwarded: off, on (append), delete", false,
	 forwarded_names},
	{"via-name", 0, OPT_TOKEN, F(via_name), "glassproxy", 1,
	 CONFIG_TOKEN_MAX - 1, "NAME",
	 "this proxy's name in Via (distinct per proxy in a chain)", LIVE},
	{"parent-proxy", 0, OPT_HOST_PORT, F(parent_proxy), NULL, 0, 0,
	 "HOST:PORT", "send requests and CONNECTs through this proxy", LIVE},
	{"direct", 0, OPT_LIST, F(direct), NULL, 0, 0, "PATTERN",
	 "hosts that bypass the parent proxy (repeatable)", LIVE},
	{"allow", 0, OPT_LIST, F(allow), NULL, 0, 0, "PATTERN",
	 "serve only hosts matching an allow pattern (repeatable)", LIVE},
	{"block", 0, OPT_LIST, F(block), NULL, 0, 0, "PATTERN",
	 "refuse hosts matching PATTERN (repeatable)", LIVE},
	{"allow-file", 0, OPT_LIST, F(allow_file), NULL, 0, 0, "FILE",
	 "allow patterns, one a line (repeatable)", LIVE},
	{"block-file", 0, OPT_LIST, F(block_file), NULL, 0, 0, "FILE",
	 "block patterns, one a line (repeatable)", LIVE},
	{"allow-client", 0, OPT_LIST, F(allow_client), NULL, 0, 0, "CIDR",
	 "clients served (default: loopback only; repeatable)", LIVE},
	{"connect-ports", 0, OPT_PORTS, F(connect_ports), "443", 0, 0, "LIST",
	 "ports CONNECT may reach, e.g. 443,8443,9000-9100", LIVE},
	{"tunnel-idle-timeout", 0, OPT_DURATION, F(tunnel_idle_timeout_ms),
	 "300s", 1, DAY_MS, "TIME", "a CONNECT tunnel with no traffic", LIVE},
	/* The cache (issue #10). */
	{"cache-dir", 0, OPT_STRING, F(cache_dir), "cache", 0, 0, "DIR",
	 "where the cache keeps its entries", RESTART},
	{"cache-size", 0, OPT_SIZE, F(cache_size), "256M", 0, INT64_MAX, "SIZE",
	 "most bytes the cache keeps on disk (LRU eviction)", LIVE},
	{"max-object-size", 0, OPT_SIZE, F(max_object_size), "16M", 0,
	 INT64_MAX, "SIZE", "largest body stored (larger ones stream only)",
	 LIVE},
	{"no-cache", 0, OPT_BOOL, F(no_cache), "no", 0, 0, NULL,
	 "run without a cache: every request goes to the origin", RESTART},
	{"default-ttl", 0, OPT_INT, F(default_ttl), "60", 0, 2147483647,
	 "SECONDS", "heuristic freshness cap and default (0: no heuristics)",
	 LIVE},
	{"max-stale-on-failure", 0, OPT_INT, F(max_stale_on_failure), "0", 0,
	 2147483647, "SECONDS",
	 "serve entries this stale when the origin is unreachable", LIVE},
	/* ---- issue 15: security (slow bodies, ports, authentication) ---- */
	{"request-body-timeout", 0, OPT_DURATION, F(request_body_timeout_ms),
	 "20s", 1, DAY_MS, "TIME",
	 "a whole request body, plus 1 s per min-body-rate bytes (408)", LIVE},
	{"min-body-rate", 0, OPT_INT, F(min_body_rate), "500", 0, 1000000000,
	 "BYTES", "bytes/s extending request-body-timeout (0: no limit)", LIVE},
	{"min-send-rate", 0, OPT_INT, F(min_send_rate), "500", 0, 1000000000,
	 "BYTES", "bytes/s a client must read a response body at (0: no limit)",
	 LIVE},
	/* Issue 13: the worker pool and the queue in front of it. */
	{"workers", 0, OPT_INT, F(workers), "0", 0, 4096, "N",
	 "requests served at once (0: 16 per core)", RESTART},
	{"queue-size", 0, OPT_INT, F(queue_size), "4096", 1, 1000000, "N",
	 "requests waiting for a worker; more are answered 503", RESTART},
	{"queue-timeout", 0, OPT_DURATION, F(queue_timeout_ms), "30s", 1,
	 DAY_MS, "TIME", "longest wait for a worker (503 after)", RESTART},
	{"worker-idle-timeout", 0, OPT_DURATION, F(worker_idle_timeout_ms),
	 "30s", 0, DAY_MS, "TIME",
	 "an idle worker thread ends after this, down to 2 per core (0: never)",
	 RESTART},
	{"reuse-port", 0, OPT_BOOL, F(reuse_port), "no", 0, 0, NULL,
	 "SO_REUSEPORT: several instances share the listen port "
	 "(docs/scaling.md)",
	 RESTART},
	{"max-connections-per-client", 0, OPT_INT,
	 F(max_connections_per_client), "0", 0, 65536, "N",
	 "connections from one address (0: no limit; 503)", RESTART},
	{"http-ports", 0, OPT_PORTS, F(http_ports),
	 "80,21,443,70,210,280,488,591,777,1025-65535", 0, 0, "LIST",
	 "ports plain http:// may reach (403 otherwise)", LIVE},
	{"server-tokens", 0, OPT_ENUM, F(server_tokens), "on", 0, 0, "MODE",
	 "on, or off: no version on error pages", false, on_off_names},
	{"auth-file", 0, OPT_STRING, F(auth_file), NULL, 0, 0, "FILE",
	 "require Proxy-Authorization: Basic against this htpasswd file", LIVE},
	{"auth-realm", 0, OPT_STRING, F(auth_realm), "glassproxy", 0, 0, "TEXT",
	 "the realm in Proxy-Authenticate", LIVE},
	{"auth-max-failures", 0, OPT_INT, F(auth_max_failures), "10", 1,
	 1000000, "N", "failed logins from one address before 429", RESTART},
	{"auth-failure-window", 0, OPT_DURATION, F(auth_failure_window_ms),
	 "60s", 1, DAY_MS, "TIME", "how long failed logins are counted",
	 RESTART},
	/* ---- end of issue 15's block ---- */
	/* Observability (issue #12). */
	{"access-log-format", 0, OPT_ENUM, F(access_log_format), "squid", 0, 0,
	 "FORMAT", "access log format: squid, combined, json, glassproxy", true,
	 access_format_names},
	{"log-level", 0, OPT_ENUM, F(log_level), "auto", 0, 0, "LEVEL",
	 "event log level: error, warn, info, debug (auto: -v/-q)", false,
	 log_level_names},
	/* Issue #11: fault injection (docs/faults.md); the fault sys is
	 * built once at start, so a reload keeps the faults in force. */
	{"fault", 0, OPT_LIST, F(fault), NULL, 0, 0, "SPEC",
	 "inject a fault, e.g. net.recv[origin]=ECONNRESET@2 (repeatable; "
	 "see docs/faults.md)",
	 RESTART},
	{"fault-seed", 0, OPT_STRING, F(fault_seed), NULL, 0, 0, "N",
	 "seed of the @p faults (default: random, printed at start)", RESTART},
	{"help", 'h', OPT_CLI_ONLY, F(help), NULL, 0, 0, NULL,
	 "show this help and exit", LIVE},
	{"version", 'V', OPT_CLI_ONLY, F(version), NULL, 0, 0, NULL,
	 "show the version and exit", LIVE},
};

#define N_OPTIONS UTIL_ARRAY_LEN(options)

static void *member(struct config *cfg, const struct opt *o)
{
	return (char *)cfg + o->offset;
}

static const void *cmember(const struct config *cfg, const struct opt *o)
{
	return (const char *)cfg + o->offset;
}

static char *dup_text(const char *s, size_t len)
{
	char *copy = malloc(len + 1);

	if (copy) {
		memcpy(copy, s, len);
		copy[len] = '\0';
	}
	return copy;
}

/*
 * A value as it may appear in a message: control bytes and bytes above
 * 0x7e become \xHH, so a rejected "a\r\nX: 1" cannot forge a line either.
 */
static const char *shown(const char *value, char *buf, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	size_t at = 0;

	for (const unsigned char *p = (const unsigned char *)value;
	     *p && at + 5 < cap; p++) {
		if (*p >= 0x20 && *p < 0x7f) {
			buf[at++] = (char)*p;
			continue;
		}
		buf[at++] = '\\';
		buf[at++] = 'x';
		buf[at++] = hex[*p >> 4];
		buf[at++] = hex[*p & 15];
	}
	buf[at] = '\0';
	return buf;
}

/* ---- parsing one value of each type ---- */

/* Number with an optional unit suffix from units[]; -EINVAL/-ERANGE. */
struct unit {
	const char *suffix;
	long long factor;
};

static int parse_scaled(const char *s, const struct unit *units, long long max,
			long long *out)
{
	size_t digits = 0, len = strlen(s);
	uint64_t v;

	while (digits < len && s[digits] >= '0' && s[digits] <= '9')
		digits++;
	if (util_parse_u64(s, digits, (uint64_t)max, &v) < 0)
		return -EINVAL;
	for (const struct unit *u = units; u->suffix; u++) {
		if (strcmp(s + digits, u->suffix) == 0) {
			if (v > (uint64_t)max / (uint64_t)u->factor)
				return -ERANGE;
			*out = (long long)v * u->factor;
			return 0;
		}
	}
	return -EINVAL;
}

static const struct unit plain_units[] = {{"", 1}, {NULL, 0}};
static const struct unit duration_units[] = {{"", 1000},     {"s", 1000},
					     {"ms", 1},	     {"m", 60000},
					     {"h", 3600000}, {NULL, 0}};
static const struct unit size_units[] = {
	{"", 1},	{"k", 1024},	  {"K", 1024},	    {"m", 1 << 20},
	{"M", 1 << 20}, {"g", 1LL << 30}, {"G", 1LL << 30}, {NULL, 0}};

static int parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"yes", "on", "true", "1"};
	static const char *const no[] = {"no", "off", "false", "0"};

	for (size_t i = 0; i < UTIL_ARRAY_LEN(yes); i++) {
		if (util_ieq(s, strlen(s), yes[i], strlen(yes[i]))) {
			*out = true;
			return 0;
		}
		if (util_ieq(s, strlen(s), no[i], strlen(no[i]))) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

static int list_append(struct config_list *list, const char *value)
{
	char **bigger =
		realloc(list->items, (list->count + 1) * sizeof(*list->items));
	char *copy;

	if (!bigger)
		return -ENOMEM;
	list->items = bigger;
	copy = dup_text(value, strlen(value));
	if (!copy)
		return -ENOMEM;
	list->items[list->count++] = copy;
	return 0;
}

static void list_free(struct config_list *list)
{
	for (size_t i = 0; i < list->count; i++)
		free(list->items[i]);
	free(list->items);
	list->items = NULL;
	list->count = 0;
}

static int set_string(char **m, const char *value)
{
	char *copy = dup_text(value, strlen(value));

	if (!copy)
		return -ENOMEM;
	free(*m);
	*m = copy;
	return 0;
}

static int set_number(const struct opt *o, void *m, const char *value,
		      char *why, size_t whylen)
{
	const struct unit *units = o->type == OPT_DURATION ? duration_units
				   : o->type == OPT_SIZE   ? size_units
							   : plain_units;
	long long n;
	int rc = parse_scaled(value, units, o->max, &n);

	if (rc == 0 && n >= o->min && n <= o->max) {
		if (o->type == OPT_SIZE)
			*(long long *)m = n;
		else
			*(int *)m = (int)n;
		return 0;
	}
	if (o->type == OPT_DURATION)
		util_format(why, whylen,
			    "'%s' is not a duration (like 10s, 500ms, 2m) "
			    "from %lldms to %lldms",
			    value, o->min, o->max);
	else if (o->type == OPT_SIZE)
		util_format(why, whylen,
			    "'%s' is not a size (like 100, 64k, 10M)", value);
	else
		util_format(why, whylen,
			    "'%s' is not a number from %lld to %lld", value,
			    o->min, o->max);
	return -EINVAL;
}

static int set_bool(bool *m, const char *value, char *why, size_t whylen)
{
	if (!value) {
		*m = true;
		return 0;
	}
	if (parse_bool(value, m) < 0) {
		util_format(why, whylen, "'%s' is not yes or no", value);
		return -EINVAL;
	}
	return 0;
}

/* -v with no value counts up, "verbose N" sets; -q / "quiet yes" sets 0. */
static int set_verbosity(const struct opt *o, int *m, const char *value,
			 char *why, size_t whylen)
{
	long long n;
	bool quiet = true;

	if (o->type == OPT_QUIET) {
		if (value && parse_bool(value, &quiet) < 0) {
			util_format(why, whylen, "'%s' is not yes or no",
				    value);
			return -EINVAL;
		}
		if (quiet)
			*m = 0;
		return 0;
	}
	if (!value) {
		if (*m < 2)
			(*m)++;
		return 0;
	}
	if (parse_scaled(value, plain_units, 2, &n) < 0) {
		util_format(why, whylen, "'%s' is not 0, 1 or 2", value);
		return -EINVAL;
	}
	*m = (int)n;
	return 0;
}

static int set_addr(struct sys_addr *m, const char *value, char *why,
		    size_t whylen)
{
	char v[128];

	if (net_parse_addr(value, m) == 0)
		return 0;
	util_format(why, whylen, "'%s' is not ADDR:PORT (IPv4, or [IPv6]:PORT)",
		    shown(value, v, sizeof(v)));
	return -EINVAL;
}

static int set_enum(const struct opt *o, void *m, const char *value, char *why,
		    size_t whylen)
{
	char names[128] = "";
	size_t at = 0;

	for (const struct opt_name *n = o->names; n->name; n++) {
		if (strcmp(value, n->name) == 0 && o->size == sizeof(int)) {
			memcpy(m, &n->value, sizeof(int));
			return 0;
		}
		int w = util_format(names + at, sizeof(names) - at, "%s%s",
				    n == o->names ? "" : ", ", n->name);
		if (w > 0)
			at += (size_t)w;
	}
	util_format(why, whylen, "'%s' is not one of %s",
		    shown(value, (char[128]){0}, 128), names);
	return -EINVAL;
}

bool config_is_token(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') ||
		      (c != 0 && strchr("!#$%&'*+-.^_`|~", c))))
			return false;
	}
	return true;
}

/* A value that becomes part of a header field: tchar only (RFC 9110). */
static int set_token(const struct opt *o, char *m, const char *value, char *why,
		     size_t whylen)
{
	size_t len = strlen(value);
	char v[128];

	if (config_is_token(value, len) && len <= (size_t)o->max &&
	    len < o->size) {
		memcpy(m, value, len + 1);
		return 0;
	}
	util_format(why, whylen,
		    "'%s' must be one token of at most %lld characters "
		    "(letters, digits and !#$%%&'*+-.^_`|~)",
		    shown(value, v, sizeof(v)), o->max);
	return -EINVAL;
}

/*
 * The parse module's authority rules: a host name of letters, digits, '.',
 * '-' and '_', an IPv4 literal or a bracketed IPv6 one, and a port 1..65535
 * (so nothing that could break a request line or a header).
 */
static int set_host_port(struct config_host_port *m, const char *value,
			 char *why, size_t whylen)
{
	struct http_url u;
	char v[128];

	if (http_parse_authority(value, strlen(value), &u) == 0 &&
	    util_copy(m->host, sizeof(m->host), u.host.ptr, u.host.len) >= 0) {
		m->port = u.port;
		m->ipv6 = u.host_is_ipv6;
		return 0;
	}
	util_format(why, whylen,
		    "'%s' is not HOST:PORT (a host name or IP literal, "
		    "and a port 1-65535)",
		    shown(value, v, sizeof(v)));
	return -EINVAL;
}

/* One "N" or "LO-HI" item of a port list; blanks around it allowed. */
static int parse_port_item(const char *s, size_t len,
			   struct config_port_range *out)
{
	const char *dash;
	uint64_t lo, hi;

	util_trim(&s, &len);
	dash = memchr(s, '-', len);
	if (util_parse_u64(s, dash ? (size_t)(dash - s) : len, 65535, &lo) <
		    0 ||
	    (dash && util_parse_u64(dash + 1, len - (size_t)(dash - s) - 1,
				    65535, &hi) < 0))
		return -EINVAL;
	if (!dash)
		hi = lo;
	if (lo == 0 || hi < lo)
		return -EINVAL;
	out->lo = (uint16_t)lo;
	out->hi = (uint16_t)hi;
	return 0;
}

static int set_ports(struct config_ports *m, const char *value, char *why,
		     size_t whylen)
{
	size_t items = 1, n = 0, len = strlen(value);
	struct config_port_range *ranges;
	const char *p = value, *end = value + len;
	char v[128];

	for (size_t i = 0; i < len; i++)
		items += value[i] == ',';
	ranges = calloc(items, sizeof(*ranges));
	if (!ranges)
		return -ENOMEM;
	while (n < items) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *stop = comma ? comma : end;

		if (parse_port_item(p, (size_t)(stop - p), &ranges[n]) < 0) {
			free(ranges);
			util_format(why, whylen,
				    "'%s' is not a list of ports and ranges "
				    "(like 443,8443,9000-9100; 1-65535)",
				    shown(value, v, sizeof(v)));
			return -EINVAL;
		}
		n++;
		p = stop + 1;
	}
	free(m->ranges);
	m->ranges = ranges;
	m->count = n;
	return 0;
}

/*
 * Set one option from text.  value is NULL for flags given on the command
 * line.  On failure fills why with the problem (without location).
 */
static int set_option(struct config *cfg, const struct opt *o,
		      const char *value, char *why, size_t whylen)
{
	void *m = member(cfg, o);

	switch (o->type) {
	case OPT_STRING:
		return set_string(m, value);
	case OPT_INT:
	case OPT_DURATION:
	case OPT_SIZE:
		return set_number(o, m, value, why, whylen);
	case OPT_BOOL:
		return set_bool(m, value, why, whylen);
	case OPT_LIST:
		return list_append(m, value);
	case OPT_VERBOSE:
	case OPT_QUIET:
		return set_verbosity(o, m, value, why, whylen);
	case OPT_CLI_ONLY:
		*(bool *)m = true;
		return 0;
	case OPT_ADDR:
		return set_addr(m, value, why, whylen);
	case OPT_ENUM:
		return set_enum(o, m, value, why, whylen);
	case OPT_TOKEN:
		return set_token(o, m, value, why, whylen);
	case OPT_HOST_PORT:
		return set_host_port(m, value, why, whylen);
	case OPT_PORTS:
		return set_ports(m, value, why, whylen);
	}
	return -EINVAL;
}

int config_init(struct config *cfg)
{
	char why[CONFIG_ERR_MAX];

	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < N_OPTIONS; i++) {
		const struct opt *o = &options[i];
		if (o->def &&
		    set_option(cfg, o, o->def, why, sizeof(why)) < 0) {
			config_free(cfg);
			return -ENOMEM; /* the table's defaults are valid */
		}
	}
	return 0;
}

void config_free(struct config *cfg)
{
	for (size_t i = 0; i < N_OPTIONS; i++) {
		const struct opt *o = &options[i];
		if (o->type == OPT_STRING) {
			free(*(char **)member(cfg, o));
			*(char **)member(cfg, o) = NULL;
		} else if (o->type == OPT_LIST) {
			list_free((struct config_list *)member(cfg, o));
		} else if (o->type == OPT_PORTS) {
			struct config_ports *p = member(cfg, o);
			free(p->ranges);
			p->ranges = NULL;
			p->count = 0;
		}
	}
}

/* ---- the config file ---- */

static const struct opt *find_option(const char *name, size_t len)
{
	for (size_t i = 0; i < N_OPTIONS; i++)
		if (strlen(options[i].name) == len &&
		    memcmp(options[i].name, name, len) == 0)
			return &options[i];
	return NULL;
}

/* One line's "key value" (comment and blanks already cut away). */
static int apply_line(struct config *cfg, const char *line, size_t line_len,
		      const char *where, char *err, size_t errlen)
{
	const char *key = line, *value;
	size_t key_len = 0, value_len;
	const struct opt *o;
	char why[CONFIG_ERR_MAX], *value_text;
	int rc;

	while (key_len < line_len && key[key_len] != ' ' &&
	       key[key_len] != '\t')
		key_len++;
	value = key + key_len;
	value_len = line_len - key_len;
	util_trim(&value, &value_len);
	o = find_option(key, key_len);
	if (!o || o->type == OPT_CLI_ONLY || o->offset == OFF(config_file)) {
		util_format(err, errlen, "%s: unknown key '%.*s'", where,
			    (int)key_len, key);
		return -EINVAL;
	}
	if (value_len == 0 && o->type != OPT_VERBOSE && o->type != OPT_QUIET) {
		util_format(err, errlen, "%s: '%s' needs a value", where,
			    o->name);
		return -EINVAL;
	}
	value_text = dup_text(value, value_len);
	if (!value_text)
		return -ENOMEM;
	why[0] = '\0';
	rc = set_option(cfg, o, value_len ? value_text : NULL, why,
			sizeof(why));
	free(value_text);
	if (rc < 0)
		util_format(err, errlen, "%s: %s: %s", where, o->name,
			    why[0] ? why : strerror(-rc));
	return rc;
}

int config_apply_file(struct config *cfg, const char *text, size_t len,
		      const char *path, char *err, size_t errlen)
{
	const char *p = text, *end = text + len;
	unsigned line_no = 0;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *line = p, *hash;
		size_t line_len = (size_t)((eol ? eol : end) - p);
		char where[CONFIG_ERR_MAX];
		int rc;

		p = eol ? eol + 1 : end;
		line_no++;
		util_format(where, sizeof(where), "%s:%u", path, line_no);
		if (memchr(line, '\0', line_len)) {
			util_format(err, errlen, "%s: NUL byte in line", where);
			return -EINVAL;
		}
		/* A '#' starts a comment anywhere: values never contain one. */
		hash = memchr(line, '#', line_len);
		if (hash)
			line_len = (size_t)(hash - line);
		if (line_len > 0 && line[line_len - 1] == '\r')
			line_len--;
		util_trim(&line, &line_len);
		if (line_len == 0)
			continue;
		rc = apply_line(cfg, line, line_len, where, err, errlen);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* ---- the command line ---- */

const char *config_find_file_arg(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if ((strcmp(argv[i], "-c") == 0 ||
		     strcmp(argv[i], "--config") == 0) &&
		    i + 1 < argc)
			return argv[i + 1];
		if (strncmp(argv[i], "--config=", 9) == 0)
			return argv[i] + 9;
		if (argv[i][0] == '-' && argv[i][1] != '-') {
			/* A group of short flags may end in c: "-vc FILE",
			 * "-qcFILE".  Only flags without values can come first. */
			for (const char *p = argv[i] + 1; *p; p++) {
				if (*p == 'c')
					return p[1] ? p + 1
						    : (i + 1 < argc
							       ? argv[i + 1]
							       : NULL);
				if (*p != 'v' && *p != 'q' && *p != 'h' &&
				    *p != 'V')
					break;
			}
		}
	}
	return NULL;
}

static int takes_argument(const struct opt *o)
{
	return o->type != OPT_BOOL && o->type != OPT_VERBOSE &&
	       o->type != OPT_QUIET && o->type != OPT_CLI_ONLY;
}

/* getopt_long's tables from ours; long options return 256 + index. */
static void getopt_tables(struct option *longopts, char *shortopts)
{
	char *s = shortopts;

	*s++ = ':'; /* report a missing argument as ':' */
	for (size_t i = 0; i < N_OPTIONS; i++) {
		const struct opt *o = &options[i];
		longopts[i] = (struct option){
			o->name,
			takes_argument(o) ? required_argument : no_argument,
			NULL, 256 + (int)i};
		if (o->short_name) {
			*s++ = o->short_name;
			if (takes_argument(o))
				*s++ = ':';
		}
	}
	*s = '\0';
	memset(&longopts[N_OPTIONS], 0, sizeof(longopts[0]));
}

/* getopt_long's result c as our option, or NULL after filling err. */
static const struct opt *getopt_option(int c, char **argv, char *err,
				       size_t errlen)
{
	if (c == '?' || c == ':') {
		/* optopt names a bad short option; argv a long one. */
		if (optopt > 0 && optopt < 256)
			util_format(err, errlen, "-%c: %s", optopt,
				    c == ':' ? "needs a value"
					     : "unknown option");
		else
			util_format(err, errlen, "%s: %s", argv[optind - 1],
				    c == ':' ? "needs a value"
					     : "unknown option");
		return NULL;
	}
	if (c >= 256)
		return &options[c - 256];
	for (size_t i = 0; i < N_OPTIONS; i++)
		if (options[i].short_name == c)
			return &options[i];
	util_format(err, errlen, "-%c: unknown option", c);
	return NULL;
}

int config_apply_args(struct config *cfg, int argc, char **argv, char *err,
		      size_t errlen)
{
	struct option longopts[N_OPTIONS + 1];
	char shortopts[2 * N_OPTIONS + 2];
	int index, c;

	getopt_tables(longopts, shortopts);
	optind = 0; /* glibc: full reset, so the parser can run twice */
	opterr = 0;
	while ((c = getopt_long(argc, argv, shortopts, longopts, &index)) !=
	       -1) {
		const struct opt *o = getopt_option(c, argv, err, errlen);
		char why[CONFIG_ERR_MAX];
		int rc;

		if (!o)
			return -EINVAL;
		why[0] = '\0';
		rc = set_option(cfg, o, takes_argument(o) ? optarg : NULL, why,
				sizeof(why));
		if (rc < 0) {
			util_format(err, errlen, "--%s: %s", o->name,
				    why[0] ? why : strerror(-rc));
			return rc;
		}
	}
	if (optind < argc) {
		util_format(err, errlen, "unexpected argument '%s'",
			    argv[optind]);
		return -EINVAL;
	}
	return 0;
}

int config_validate(const struct config *cfg, char *err, size_t errlen)
{
	if (cfg->direct.count > 0 && !cfg->parent_proxy.host[0]) {
		util_format(err, errlen,
			    "direct: patterns need a parent-proxy to bypass");
		return -EINVAL;
	}
	/* It goes into a quoted-string of Proxy-Authenticate. */
	if (!cfg->auth_realm || !auth_realm_valid(cfg->auth_realm)) {
		util_format(err, errlen,
			    "auth-realm: 1 to %d bytes without '\"', '\\' or "
			    "control characters",
			    AUTH_REALM_MAX);
		return -EINVAL;
	}
	return 0;
}

/* ---- printing: --check-config, reload changes, --help ---- */

/* A growing text buffer; on ENOMEM it stays NULL with cap 1. */
struct text {
	char *s;
	size_t len, cap;
};

static void text_add(struct text *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void text_add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!t->s && t->cap)
		return; /* an earlier allocation failed */
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (t->len + (size_t)n + 1 > t->cap) {
		size_t cap = (t->len + (size_t)n + 1) * 2;
		char *bigger = realloc(t->s, cap);
		if (!bigger) {
			free(t->s);
			t->s = NULL;
			t->cap = 1;
			return;
		}
		t->s = bigger;
		t->cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
	va_end(ap);
	t->len += (size_t)n;
}

static void add_duration(struct text *t, int ms)
{
	if (ms % 1000 == 0)
		text_add(t, "%ds", ms / 1000);
	else
		text_add(t, "%dms", ms);
}

static void add_ports(struct text *t, const struct config_ports *p)
{
	for (size_t i = 0; i < p->count; i++) {
		const struct config_port_range *r = &p->ranges[i];

		text_add(t, "%s%u", i ? "," : "", (unsigned)r->lo);
		if (r->hi != r->lo)
			text_add(t, "-%u", (unsigned)r->hi);
	}
}

static void add_enum(struct text *t, const struct opt *o, const void *m)
{
	int v;

	memcpy(&v, m, sizeof(v));
	for (const struct opt_name *n = o->names; n->name; n++)
		if (n->value == v)
			text_add(t, "%s", n->name);
}

static void add_host_port(struct text *t, const struct config_host_port *hp)
{
	text_add(t, hp->ipv6 ? "[%s]:%u" : "%s:%u", hp->host,
		 (unsigned)hp->port);
}

/*
 * Append an option's value in config-file syntax (a list's items joined
 * by ", ").  False when the option is not set (nothing appended).
 */
static bool add_value(struct text *t, const struct opt *o,
		      const struct config *cfg)
{
	const void *m = cmember(cfg, o);
	char addr[NET_ADDR_TEXT_MAX];

	switch (o->type) {
	case OPT_STRING:
		if (!*(char *const *)m)
			return false;
		text_add(t, "%s", *(char *const *)m);
		return true;
	case OPT_INT:
	case OPT_VERBOSE:
		text_add(t, "%d", *(const int *)m);
		return true;
	case OPT_DURATION:
		add_duration(t, *(const int *)m);
		return true;
	case OPT_SIZE:
		text_add(t, "%lld", *(const long long *)m);
		return true;
	case OPT_BOOL:
		text_add(t, "%s", *(const bool *)m ? "yes" : "no");
		return true;
	case OPT_LIST: {
		const struct config_list *l = m;
		for (size_t j = 0; j < l->count; j++)
			text_add(t, "%s%s", j ? ", " : "", l->items[j]);
		return l->count > 0;
	}
	case OPT_ADDR:
		if (net_format_addr(m, addr, sizeof(addr)) < 0)
			return false;
		text_add(t, "%s", addr);
		return true;
	case OPT_ENUM:
		add_enum(t, o, m);
		return true;
	case OPT_TOKEN:
		text_add(t, "%s", (const char *)m);
		return true;
	case OPT_HOST_PORT:
		if (!((const struct config_host_port *)m)->host[0])
			return false;
		add_host_port(t, m);
		return true;
	case OPT_PORTS:
		add_ports(t, m);
		return true;
	case OPT_QUIET:
	case OPT_CLI_ONLY:
		break;
	}
	return false;
}

/* Options that belong in a dump and a diff: not -c, -q and the modes. */
static bool has_value(const struct opt *o)
{
	return o->type != OPT_QUIET && o->type != OPT_CLI_ONLY &&
	       o->offset != OFF(config_file);
}

static void dump_option(struct text *t, const struct opt *o,
			const struct config *cfg)
{
	size_t mark = t->len;

	if (o->type == OPT_LIST) {
		const struct config_list *l = cmember(cfg, o);
		for (size_t j = 0; j < l->count; j++)
			text_add(t, "%s %s\n", o->name, l->items[j]);
		return;
	}
	text_add(t, "%s ", o->name);
	if (add_value(t, o, cfg)) {
		text_add(t, "\n");
	} else if (t->s) {
		t->len = mark;
		text_add(t, "# %s (not set)\n", o->name);
	}
}

char *config_dump(const struct config *cfg)
{
	struct text t = {0};

	text_add(&t, "# effective configuration\n");
	for (size_t i = 0; i < N_OPTIONS; i++)
		if (has_value(&options[i]))
			dump_option(&t, &options[i], cfg);
	return t.s;
}

/* An option's value as text for a change report; "(not set)" if unset. */
static void value_text(struct text *t, const struct opt *o,
		       const struct config *cfg)
{
	if (!add_value(t, o, cfg))
		text_add(t, "(not set)");
}

int config_diff(const struct config *old, const struct config *fresh,
		config_change_fn *fn, void *arg)
{
	int changes = 0;

	for (size_t i = 0; i < N_OPTIONS; i++) {
		const struct opt *o = &options[i];
		struct text a = {0}, b = {0};
		bool differ;

		if (!has_value(o))
			continue;
		value_text(&a, o, old);
		value_text(&b, o, fresh);
		if (!a.s || !b.s) {
			free(a.s);
			free(b.s);
			return -ENOMEM;
		}
		differ = strcmp(a.s, b.s) != 0;
		if (differ && fn)
			fn(arg, &(struct config_change){o->name, o->restart,
							a.s, b.s});
		changes += differ;
		free(a.s);
		free(b.s);
	}
	return changes;
}

void config_keep_restart_options(struct config *fresh, const struct config *old)
{
	for (size_t i = 0; i < N_OPTIONS; i++) {
		const struct opt *o = &options[i];

		/* The table marks only plain values (no heap storage). */
		if (o->restart && o->type != OPT_STRING &&
		    o->type != OPT_LIST && o->type != OPT_PORTS)
			memcpy(member(fresh, o), cmember(old, o), o->size);
	}
}

char *config_help(const char *program)
{
	struct text t = {0};

	text_add(&t,
		 "Usage: %s [OPTION]...\n"
		 "A caching HTTP/HTTPS forward proxy built to be read, tested "
		 "and stepped through.\n\n",
		 program);
	for (size_t i = 0; i < N_OPTIONS; i++) {
		const struct opt *o = &options[i];
		char left[64];

		if (o->short_name)
			util_format(left, sizeof(left), "-%c, --%s%s%s",
				    o->short_name, o->name, o->arg ? " " : "",
				    o->arg ? o->arg : "");
		else
			util_format(left, sizeof(left), "    --%s%s%s", o->name,
				    o->arg ? " " : "", o->arg ? o->arg : "");
		text_add(&t, "  %-34s %s", left, o->help);
		if (o->def && o->type != OPT_BOOL && o->type != OPT_VERBOSE)
			text_add(&t, " [%s]", o->def);
		text_add(&t, "%s\n", o->restart ? " (restart to change)" : "");
	}
	text_add(&t,
		 "\nEvery long option is also a config-file key: "
		 "'listen 127.0.0.1:0'.\n"
		 "The command line overrides the file; repeatable options "
		 "accumulate.\n"
		 "Signals: INT/TERM stop gracefully, HUP reloads the "
		 "configuration and lists\n"
		 "(every option but those marked 'restart to change'), USR1 "
		 "reopens logs.\n");
	return t.s;
}
