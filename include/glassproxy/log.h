/*
 * log: the event log (what the proxy did and what went wrong) and the
 * access log (one line per request or tunnel), both through sys_fs.
 *
 * Contract: a struct log is shared by every thread; each line is formatted
 * in the caller's stack buffer and written with one write(2) on a file
 * opened O_APPEND, so lines from different threads never interleave.
 * Lines are at most LOG_LINE_MAX bytes (longer ones are cut and end in
 * "..."), and control bytes from the network are escaped so that nobody can
 * forge a log line with a CR or LF in a URL.  Logging never fails a
 * request: write errors are counted, not returned.
 *
 * Formats (UTC timestamps, ISO 8601 with milliseconds):
 *   event:  2026-11-29T04:22:24.123Z error upstream 127.0.0.1:9 refused
 *   access: 2026-11-29T04:22:24.123Z 127.0.0.1:40000 GET http://h/p 200 512 78 3ms MISS
 *           (client, method, URL, status, bytes sent to the client, bytes
 *           received from it, duration, outcome)
 */
#ifndef GLASSPROXY_LOG_H
#define GLASSPROXY_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "glassproxy/sys.h"

#define LOG_LINE_MAX 2048

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

struct log;

/* One completed request or tunnel, as the access log records it. */
struct log_access {
	const char *client;	 /* "127.0.0.1:40000" */
	const char *method;	 /* "GET", "CONNECT" */
	const char *url;	 /* absolute URL or "host:port" */
	int status;		 /* what the client got; 0 if nothing */
	uint64_t bytes_sent;	 /* to the client, head and body */
	uint64_t bytes_received; /* from the client, head and body */
	int64_t duration_ms;
	/* The outcome's word from the proxy's one table of outcomes
	 * (proxy_outcome_word(): "DIRECT", "TUNNEL", "BLOCKED"...). */
	const char *outcome;
	/* What the cache did: "HIT", "MISS", "REFRESH", "STALE", "BYPASS",
	 * "NONE" (no cache involved); NULL is "NONE".  stored: the response
	 * was written into the cache. */
	const char *cache_result;
	bool stored;
	/* The authenticated user (--auth-file), "-" when none (issue 15). */
	const char *user;
};

/*
 * Open the logs.  event_path NULL means standard error; access_path NULL
 * means access lines go to the event log at info level.  Messages above
 * level are dropped.
 */
int log_open(struct sys *sys, const char *event_path, const char *access_path,
	     enum log_level level, struct log **out);
void log_close(struct log *log);

/* Reopen both files by name (SIGUSR1, after a log rotation). */
int log_reopen(struct log *log);

/*
 * Switch to new paths and a new level (a reload).  A path that differs
 * from the one in use (NULL: standard error / into the event log) is
 * opened first; if any open fails nothing changes and the error is
 * returned.  Unchanged paths keep their descriptors.  Safe while other
 * threads log: a line goes wholly to the old file or wholly to the new.
 */
int log_reconfigure(struct log *log, const char *event_path,
		    const char *access_path, enum log_level level);

void log_event(struct log *log, enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void log_access(struct log *log, const struct log_access *entry);

/* How many lines could not be written (disk full, I/O error). */
uint64_t log_write_errors(const struct log *log);

/* The level's name as it appears in the event log ("error", ...). */
const char *log_level_name(enum log_level level);

#endif
