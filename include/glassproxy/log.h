/*
 * log: the event log (what the proxy did and what went wrong) and the
 * access log (one line per request or tunnel), both through sys_fs.
 *
 * Contract: a struct log is shared by every thread; each line is formatted
 * in the caller's stack buffer and written with one write(2) on a file
 * opened O_APPEND, so lines from different threads never interleave.
 * Lines are at most LOG_LINE_MAX bytes (longer ones are cut and end in
 * "..."), and every byte from the network is escaped the way its format
 * wants (see docs/logging.md), so nobody can forge a log line with a CR or
 * LF in a URL or send escape sequences to a terminal.  Logging never fails
 * a request: write errors are counted, not returned, and reported at most
 * once a minute (to the other log, or standard error).
 *
 * Event lines (UTC, ISO 8601 with milliseconds; "Z" is the zero offset):
 *   2026-11-29T04:22:24.123Z warn conn=7 req=2 upstream 127.0.0.1:9: ...
 * The "conn=N req=M" tag comes from the calling thread's context
 * (log_set_context()): the proxy sets it while a thread serves a request,
 * so `grep 'conn=7 '` follows one connection across the file.
 *
 * Access lines, one format per log (log_set_format()):
 *   squid (default)  1764648452.474      3 127.0.0.1 TCP_MISS/200 512 GET
 *                    http://h/p - HIER_DIRECT/127.0.0.1 text/html
 *   combined         127.0.0.1 - - [02/Dec/2025:04:07:32 +0000] "GET
 *                    http://h/p HTTP/1.1" 200 512 "-" "curl/8.0"
 *   json             {"time":"...","duration_ms":3,"client":...}
 *   glassproxy       2026-11-29T04:22:24.123Z 127.0.0.1:40000 GET http://h/p
 *                    200 512 78 3ms DIRECT  (the format before 0.2, kept
 *                    because its fields are fixed: the harness reads it)
 * Without an access file the lines go to the event log at info level in a
 * short form for people watching a console:
 *   2026-11-29T04:22:24.123Z info conn=7 req=1 GET http://h/p -> 200
 *   512B 3ms TCP_MISS
 * An access path of "-" is standard output.
 */
#ifndef GLASSPROXY_LOG_H
#define GLASSPROXY_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "glassproxy/sys.h"

#define LOG_LINE_MAX 2048

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

enum log_format {
	LOG_FORMAT_SQUID, /* Squid's native format: calamaris, sarg, GoAccess */
	LOG_FORMAT_COMBINED,   /* Apache's Combined Log Format */
	LOG_FORMAT_JSON,       /* one JSON object per line */
	LOG_FORMAT_GLASSPROXY, /* glassproxy's own fixed fields */
	LOG_FORMAT_COUNT
};

/*
 * Where one request's time went: milliseconds from its first byte to each
 * mark, or -1 when the request never got there (a tunnel has no first
 * byte from the origin, a refused one no connect).
 */
struct log_timing {
	int64_t head;	    /* the whole request head arrived */
	int64_t filter;	    /* the filter's verdict */
	int64_t resolve;    /* the origin's name resolved */
	int64_t connect;    /* connected upstream (or took a pooled one) */
	int64_t first_byte; /* first byte of the response from upstream */
	int64_t last_byte;  /* last byte to the client */
};

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
	/* The connection (numbered from 1 at start) and the request's number
	 * on it (from 1); 0 when unknown. */
	uint64_t conn_id;
	unsigned request_no;
	/* Squid's words, from the proxy's outcome table: the result code
	 * ("TCP_MISS", "TCP_DENIED"; NULL: "NONE_NONE") and the hierarchy
	 * code ("HIER_DIRECT", "FIRSTUP_PARENT"; NULL: "HIER_NONE"). */
	const char *result;
	const char *hierarchy;
	const char *peer;	  /* the upstream host asked; NULL: "-" */
	const char *content_type; /* of the response; NULL: "-" */
	const char *version;	  /* "HTTP/1.1"; NULL: "HTTP/1.1" */
	const char *referer;	  /* request fields for combined; NULL: "-" */
	const char *user_agent;
	/* Filled by the cache glue and the authentication: the cache's word
	 * ("HIT", "MISS", "REVALIDATED"...; NULL: none), whether the
	 * response was stored, the authenticated user (NULL: "-"). */
	const char *cache_result;
	bool stored;
	const char *user;
	struct log_timing timing;
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

/*
 * Would a line at this level be written?  For a caller whose arguments cost
 * something to make (a debug line that formats a header value): it asks
 * first, and makes them only when the line will be written.
 */
bool log_enabled(const struct log *log, enum log_level level);

void log_event(struct log *log, enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void log_access(struct log *log, const struct log_access *entry);

/* Choose the access log's format (the default is LOG_FORMAT_SQUID);
 * safe while other threads log. */
void log_set_format(struct log *log, enum log_format format);

/* "squid", "combined", "json", "glassproxy"; -EINVAL for anything else. */
int log_format_from_name(const char *name, enum log_format *out);
const char *log_format_name(enum log_format format);

/*
 * The calling thread's connection id and request number, shown on each
 * of its event lines as "conn=N req=M" (req omitted while 0) until
 * log_clear_context().  Thread-local: no lock, no sharing.
 */
void log_set_context(uint64_t conn_id, unsigned request_no);
void log_clear_context(void);

/* "ECONNREFUSED" for ECONNREFUSED (either sign); "E?" when unknown. */
const char *log_errno_name(int err);

/* How many lines could not be written (disk full, I/O error). */
uint64_t log_write_errors(const struct log *log);

/* The level's name as it appears in the event log ("error", ...). */
const char *log_level_name(enum log_level level);

#endif
