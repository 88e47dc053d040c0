/*
 * config: the command line and the config file, into one struct config.
 *
 * Contract: every long option has a config-file key of the same name
 * ("listen 127.0.0.1:0"); the file is read first and the command line
 * overrides it (repeatable options such as --allow accumulate from both).
 * Parsing is pure: the caller reads the file (through sys_fs) and passes its
 * text.  Errors are reported in err as "FILE:LINE: problem" or
 * "--option: problem", and the functions return -EINVAL; nothing is printed.
 *
 * One table in config.c describes every option (name, short letter, type,
 * default, help); --help, the file parser, getopt_long and --check-config's
 * printout all come from it, so they cannot drift apart.
 */
#ifndef GLASSPROXY_CONFIG_H
#define GLASSPROXY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define CONFIG_ERR_MAX 512

/* A repeatable option's values, in the order given. */
struct config_list {
	char **items;
	size_t count;
};

struct config {
	char *listen;	   /* "127.0.0.1:8080" */
	char *config_file; /* -c FILE, or NULL */
	char *hosts_file;
	char *log_file;	     /* NULL: standard error */
	char *access_log;    /* NULL: into the event log */
	int verbosity;	     /* 0 warn, 1 info (default), 2 debug */
	bool serial;	     /* one connection at a time, on the main thread */
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
	char *forwarded_for; /* "off", "on", "delete" */
	char *via_name;
	char *parent_proxy; /* "HOST:PORT" or NULL */
	struct config_list direct;
	/* filter */
	struct config_list allow, block, allow_file, block_file, allow_client;
	char *connect_ports;
	int tunnel_idle_timeout_ms;
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

/*
 * Write the effective configuration in config-file syntax (so it can be
 * saved and read back), or the --help text, into a fresh heap string.
 */
char *config_dump(const struct config *cfg);
char *config_help(const char *program);

#endif
