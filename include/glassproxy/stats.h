/*
 * stats: the proxy's counters, for the status page, /metrics and the
 * summary the event log gets at exit.
 *
 * Contract: every counter is an atomic updated with relaxed ordering, so
 * the request path takes no lock to count; a snapshot reads each counter
 * once (the counters of one snapshot may be a few requests apart from
 * each other, never torn).  Every function accepts a NULL struct stats
 * and does nothing, so code that counts needs no "is there one?" test.
 * The renderers are pure: a snapshot in, text out.
 *
 * Who calls what:
 *   proxy      stats_connection_open/close, stats_request (once per
 *              access line), stats_tunnel_open/close, stats_denied,
 *              stats_upstream_error
 *   cache glue stats_cache_hit, stats_cache_miss, stats_cache_revalidated
 *              (a 304 from the origin refreshed a stored entry),
 *              stats_cache_stored(bytes) (an entry committed),
 *              stats_cache_evicted(bytes) (an entry removed to make room),
 *              stats_cache_size(bytes, entries) (the store's totals now)
 *   faults     read from the fault sys (sys_fault_hits) at each snapshot.
 */
#ifndef GLASSPROXY_STATS_H
#define GLASSPROXY_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "glassproxy/sys.h"

enum stats_method {
	STATS_GET,
	STATS_HEAD,
	STATS_POST,
	STATS_PUT,
	STATS_DELETE,
	STATS_OPTIONS,
	STATS_TRACE,
	STATS_CONNECT,
	STATS_PATCH,
	STATS_OTHER,
	STATS_METHOD_COUNT
};

/* Why a request was refused by policy. */
enum stats_deny {
	STATS_DENY_HOST,   /* the domain filter */
	STATS_DENY_CLIENT, /* --allow-client */
	STATS_DENY_PORT,   /* --connect-ports / --http-ports */
	STATS_DENY_AUTH,   /* authentication */
	STATS_DENY_COUNT
};

/* How reaching or reading the origin (or the parent) failed. */
enum stats_upstream {
	STATS_UP_UNRESOLVED,
	STATS_UP_REFUSED,
	STATS_UP_CONNECT_TIMEOUT,
	STATS_UP_UNREACHABLE,
	STATS_UP_TIMEOUT,
	STATS_UP_RESET,
	STATS_UP_BAD_RESPONSE,
	STATS_UP_TRUNCATED,
	STATS_UP_COUNT
};

/* The request-rate history: STATS_RATE_SLOTS slots of STATS_RATE_SLOT_S
 * seconds, the last ten minutes. */
#define STATS_RATE_SLOTS  60
#define STATS_RATE_SLOT_S 10

/* Status classes: [0] nothing sent, [1..5] 1xx..5xx. */
#define STATS_CLASSES 6

struct stats;

/* sys gives the clock (uptime, the rate history) and, when it is a fault
 * sys, the faults injected. */
int stats_new(struct sys *sys, struct stats **out);
void stats_free(struct stats *st);

void stats_connection_open(struct stats *st);
void stats_connection_close(struct stats *st);
/* One finished request or tunnel: its method, the status the client got
 * (0: none) and the bytes from and to the client. */
void stats_request(struct stats *st, const char *method, int status,
		   uint64_t bytes_in, uint64_t bytes_out);
void stats_tunnel_open(struct stats *st);
void stats_tunnel_close(struct stats *st);
void stats_denied(struct stats *st, enum stats_deny why);
void stats_upstream_error(struct stats *st, enum stats_upstream kind);

void stats_cache_hit(struct stats *st);
void stats_cache_miss(struct stats *st);
void stats_cache_revalidated(struct stats *st);
void stats_cache_stored(struct stats *st, uint64_t bytes);
void stats_cache_evicted(struct stats *st, uint64_t bytes);
void stats_cache_size(struct stats *st, uint64_t bytes, uint64_t entries);

struct stats_snapshot {
	uint64_t uptime_s;
	uint64_t connections_total, connections_active;
	uint64_t requests_total;
	uint64_t requests[STATS_METHOD_COUNT];
	uint64_t responses[STATS_CLASSES];
	uint64_t bytes_in, bytes_out;
	uint64_t tunnels_total, tunnels_active;
	uint64_t denied[STATS_DENY_COUNT];
	uint64_t upstream_errors[STATS_UP_COUNT];
	uint64_t cache_hits, cache_misses, cache_revalidations;
	uint64_t cache_stores, cache_evictions;
	uint64_t cache_bytes_stored, cache_bytes_evicted;
	uint64_t cache_size_bytes, cache_entries;
	uint64_t faults_injected;
	/* Requests per slot, oldest first; the last is the current one. */
	uint64_t rate[STATS_RATE_SLOTS];
};

void stats_snapshot(const struct stats *st, struct stats_snapshot *out);

/* The label values: "GET".."PATCH", "other"; "host", "client"...; "refused"... */
const char *stats_method_name(enum stats_method m);
const char *stats_deny_name(enum stats_deny d);
const char *stats_upstream_name(enum stats_upstream u);
enum stats_method stats_method_of(const char *method);

/*
 * The snapshot as text, into buf (NUL-terminated); the length, or
 * -ENOSPC when it does not fit.
 *   prometheus  the text exposition format 0.0.4: glassproxy_ names,
 *               counters ending in _total, HELP and TYPE lines
 *   json        one JSON object
 *   summary     one line for the event log at exit
 */
int stats_render_prometheus(const struct stats_snapshot *s, char *buf,
			    size_t cap);
int stats_render_json(const struct stats_snapshot *s, char *buf, size_t cap);
int stats_render_summary(const struct stats_snapshot *s, char *buf, size_t cap);

#endif
