/*
 * config: the command line and the config file, into one typed struct config.
 *
 * Contract: every long option has a config-file key of the same name
 * ("listen 127.0.0.1:0"); the file is read first and the command line
 * overrides it (repeatable options such as --allow accumulate from both).
 * Parsing is pure: the caller reads the file (through sys_fs) and passes its
 * text.  Errors are reported in err as "FILE:LINE: problem" or
 * "--option: problem", and the functions return -EINVAL; nothing is printed.
 *
 * The result is typed: every value is checked and converted when it is read
 * (addresses, host and port, port ranges, enums, durations, sizes), so no
 * code after parsing looks at option text again.  A value that ends up in a
 * header field (via-name, the parent proxy's host) must be a token or a host
 * name: a CR or LF can never become a header line.
 *
 * One table in config.c describes every option (name, short letter, type,
 * default, whether a running proxy can take a new value, help); --help, the
 * file parser, getopt_long, --check-config's printout and a reload's list of
 * changes all come from it, so they cannot drift apart.
 */
#ifndef GLASSPROXY_CONFIG_H
#define GLASSPROXY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "glassproxy/proxy.h"
#include "glassproxy/sys.h"

#define CONFIG_ERR_MAX 512
/* via-name: a token of at most 63 characters (fits proxy_settings). */
#define CONFIG_TOKEN_MAX 64
#define CONFIG_HOST_MAX	 256

/* A repeatable option's values, in the order given. */
struct config_list {
	char **items;
	size_t count;
};

/* CONNECT ports: inclusive ranges, 1..65535, lo <= hi. */
struct config_port_range {
	uint16_t lo, hi;
};

struct config_ports {
	struct config_port_range *ranges;
	size_t count; /* at least 1 once parsed */
};

/* A host (name or IP literal, IPv6 without brackets) and a port. */
struct config_host_port {
	char host[CONFIG_HOST_MAX]; /* "": not set */
	uint16_t port;
	bool ipv6; /* written as "[...]": brackets again when printed */
};

struct config {
	struct sys_addr listen; /* 127.0.0.1:8080 */
	char *config_file;	/* -c FILE, or NULL */
	char *hosts_file;
	char *log_file;	  /* NULL: standard error */
	char *access_log; /* NULL: into the event log */
	int verbosity;	  /* 0 warn, 1 info (default), 2 debug */
	/* Observability (issue #12). */
	int access_log_format; /* enum log_format; squid by default */
	int log_level;	       /* enum log_level, or -1: from verbosity */
	bool serial;	     /* one connection at a time, on the main thread */
	bool reuse_port;     /* SO_REUSEPORT on the listening socket */
	int max_connections; /* concurrent clients; over it: 503 */
	/* timeouts, milliseconds */
	int connect_timeout_ms;
	int response_timeout_ms;
	int request_timeout_ms;
	int client_idle_timeout_ms;
	int shutdown_grace_ms;
	int upstream_idle_timeout_ms;
	int max_idle_upstream;
	/* limits */
	long long max_request_body; /* bytes; 0 = unlimited */
	/* forwarding */
	enum proxy_forwarded forwarded_for;
	char via_name[CONFIG_TOKEN_MAX];      /* a token (RFC 9110 tchar) */
	struct config_host_port parent_proxy; /* host "" when not set */
	struct config_list direct;
	/* filter */
	struct config_list allow, block, allow_file, block_file, allow_client;
	struct config_ports connect_ports;
	int tunnel_idle_timeout_ms;
	/* the cache (issue #10) */
	char *cache_dir;
	long long cache_size, max_object_size; /* bytes */
	bool no_cache;
	int default_ttl;	  /* seconds; 0: no heuristic freshness */
	int max_stale_on_failure; /* seconds */
	/* issue 15: security */
	int request_body_timeout_ms;
	int min_body_rate, min_send_rate; /* bytes per second; 0: none */
	int max_connections_per_client;	  /* 0: no limit */
	/* Issue 13: the worker pool and its queue (0 workers: 16 per core). */
	int workers;
	int queue_size;
	int queue_timeout_ms;
	int worker_idle_timeout_ms; /* 0: idle workers never end */
	struct config_ports http_ports;
	int server_tokens; /* 1 on, 0 off */
	char *auth_file;   /* NULL: no authentication */
	char *auth_realm;
	int auth_max_failures;
	int auth_failure_window_ms;
	/* fault injection (issue #11, docs/faults.md) */
	struct config_list fault; /* specs, in order */
	char *fault_seed;	  /* decimal text, or NULL: a random seed */
	/* modes that stop after parsing */
	bool check_config, help, version;
};

/* Defaults, owned by cfg; free with config_free. */
int config_init(struct config *cfg);
void config_free(struct config *cfg);

/*
 * Find "-c FILE" / "--config FILE" / "--config=FILE" in argv without
 * parsing the rest, so the file can be read before the command line is
 * applied on top of it.  Returns the path or NULL.
 */
const char *config_find_file_arg(int argc, char **argv);

/* Apply config-file text; path is only used in messages. */
int config_apply_file(struct config *cfg, const char *text, size_t len,
		      const char *path, char *err, size_t errlen);

/* Apply the command line (getopt_long; resets getopt's state first). */
int config_apply_args(struct config *cfg, int argc, char **argv, char *err,
		      size_t errlen);

/* Check values that depend on each other; fills err. */
int config_validate(const struct config *cfg, char *err, size_t errlen);

/* True when s (len bytes) is a non-empty RFC 9110 token: only tchar. */
bool config_is_token(const char *s, size_t len);

/* ---- reloading ---- */

/*
 * One option whose value differs between two configurations.  The values
 * are as config_dump writes them (several lines for a repeated option).
 * needs_restart: a running proxy cannot take the new value (listen,
 * serial, max-connections).
 */
struct config_change {
	const char *name;
	bool needs_restart;
	const char *old_value, *new_value;
};

typedef void config_change_fn(void *arg, const struct config_change *c);

/*
 * Call fn for every option whose value differs between old and fresh, in
 * table order.  Returns the number of differences, or -ENOMEM.
 */
int config_diff(const struct config *old, const struct config *fresh,
		config_change_fn *fn, void *arg);

/*
 * Give fresh the old value of every option that needs a restart, so that
 * the configuration in force says what is really in effect.
 */
void config_keep_restart_options(struct config *fresh,
				 const struct config *old);

/*
 * Write the effective configuration in config-file syntax (so it can be
 * saved and read back), or the --help text, into a fresh heap string.
 */
char *config_dump(const struct config *cfg);
char *config_help(const char *program);

#endif
