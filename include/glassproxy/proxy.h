/*
 * proxy: the per-connection request loop.
 *
 * Contract: proxy_serve() owns one client connection from its first byte
 * to its close: read a request head -> check it -> forward it (or tunnel
 * it, or answer it here) -> relay the response -> write the access log ->
 * next request on the same connection while both sides allow keep-alive.
 * It runs on the calling thread with blocking calls, so gdb can follow one
 * request top to bottom; many threads may run proxy_serve() at once on one
 * struct proxy.  It orchestrates the domain modules and makes no OS call
 * of its own (everything goes through the struct sys it was given).
 *
 * The rules and settings that can change while running (hosts file,
 * filter, timeouts, limits, Via name...) form one immutable snapshot: each
 * request takes a reference to the current one when its first byte
 * arrives and drops it when it ends, so a reload applies from the next
 * request on (on an open keep-alive connection too) and never changes the
 * rules under a request in flight.
 *
 * Every request or tunnel ends in exactly one enum proxy_outcome; one table
 * gives each its status code and the word the access log shows.
 */
#ifndef GLASSPROXY_PROXY_H
#define GLASSPROXY_PROXY_H

#include <stdbool.h>
#include <stdint.h>

#include "glassproxy/cache.h"
#include "glassproxy/auth.h"
#include "glassproxy/filter.h"
#include "glassproxy/log.h"
#include "glassproxy/net.h"
#include "glassproxy/sys.h"

#define PROXY_VERSION "0.1.0"
#define PROXY_NAME    "glassproxy"

/* What to do with X-Forwarded-For and Forwarded (RFC 7239). */
enum proxy_forwarded {
	PROXY_FORWARDED_OFF,	/* pass on what the client sent, add nothing */
	PROXY_FORWARDED_ON,	/* append the client's address to both */
	PROXY_FORWARDED_DELETE, /* strip both: the origin learns nothing */
};

struct proxy_settings {
	int connect_timeout_ms;	      /* connecting to an origin: 504 after */
	int response_timeout_ms;      /* origin silent this long: 504 */
	int request_timeout_ms;	      /* a client's whole request head: 408 */
	int client_idle_timeout_ms;   /* between keep-alive requests */
	int tunnel_idle_timeout_ms;   /* CONNECT tunnel without traffic */
	uint64_t max_request_body;    /* 0: no limit; else 413 above it */
	int upstream_idle_timeout_ms; /* pooled idle origin connections */
	size_t max_idle_upstream;     /* pooled idle connections, all origins */
	enum proxy_forwarded forwarded;
	/* The received-by name in Via; a request already naming it is a loop. */
	char via_name[64];
	/* A parent proxy for everything not matched by a direct pattern. */
	char parent_host[256]; /* empty: go direct */
	uint16_t parent_port;
	/* The cache's freshness rules (--default-ttl...); live. */
	struct cache_policy cache_policy;
	/* Issue 15 (security): slow bodies, error pages, authentication. */
	int request_body_timeout_ms; /* a request body's base allowance */
	unsigned min_body_rate;	     /* bytes/s extending it; 0: no rate */
	unsigned min_send_rate;	     /* same for a client reading a body */
	bool server_tokens;	     /* the version on error pages */
	char auth_realm[AUTH_REALM_MAX + 1];
	unsigned auth_max_failures; /* throttle: failures per window */
	int auth_window_ms; /* (at start only: the table is made once) */
};

/*
 * How a request or a tunnel ended: one member per way, one row each in the
 * table behind proxy_outcome_word() and proxy_outcome_status().  The access
 * log shows the word; counters and Cache-Status will derive from it too.
 */
enum proxy_outcome {
	PROXY_OUTCOME_UNSET = 0, /* nothing recorded (a bug if logged) */
	/* Served: the status is what the origin sent. */
	PROXY_OUTCOME_DIRECT,	      /* relayed from the origin itself */
	PROXY_OUTCOME_PARENT,	      /* relayed through the parent proxy */
	PROXY_OUTCOME_EARLY_RESPONSE, /* the origin answered mid-upload */
	PROXY_OUTCOME_ANSWERED_HERE,  /* TRACE/OPTIONS, Max-Forwards: 0 */
	/* Tunnels (200 was sent), by how they ended. */
	PROXY_OUTCOME_TUNNEL,		   /* both sides closed */
	PROXY_OUTCOME_TUNNEL_CLIENT_RESET, /* error on the client side */
	PROXY_OUTCOME_TUNNEL_ORIGIN_RESET, /* error on the origin side */
	PROXY_OUTCOME_TUNNEL_IDLE_TIMEOUT, /* nothing moved for too long */
	PROXY_OUTCOME_TUNNEL_INTERNAL,	   /* poll, memory or splice failed */
	/* The client. */
	PROXY_OUTCOME_CLIENT_CLOSED,	   /* went away mid-request or answer */
	PROXY_OUTCOME_CLIENT_TIMEOUT,	   /* request head too slow: 408 */
	PROXY_OUTCOME_CLIENT_BODY_TIMEOUT, /* request body too slow: 408 */
	PROXY_OUTCOME_BAD_REQUEST,	   /* the head did not parse */
	PROXY_OUTCOME_BAD_REQUEST_BODY,	   /* bad chunked framing: 400 */
	PROXY_OUTCOME_HEAD_TOO_LARGE,	   /* 431 */
	PROXY_OUTCOME_METHOD_TOO_LONG,	   /* 501 */
	PROXY_OUTCOME_HOST_TOO_LONG,	   /* 400 */
	PROXY_OUTCOME_NOT_A_PROXY_REQUEST, /* origin-form or "*": 400 */
	PROXY_OUTCOME_UNSUPPORTED_SCHEME,  /* not http://: 501 */
	PROXY_OUTCOME_USERINFO,		   /* user@host in the URL: 400 */
	PROXY_OUTCOME_TOO_LARGE,	   /* body over the limit: 413 */
	PROXY_OUTCOME_LOOP,		   /* Via names us: 508 */
	/* Policy. */
	PROXY_OUTCOME_DENIED_HOST,   /* the filter: 403 */
	PROXY_OUTCOME_INVALID_HOST,  /* a host the filter cannot judge */
	PROXY_OUTCOME_DENIED_CLIENT, /* --allow-client: 403 */
	PROXY_OUTCOME_DENIED_PORT,   /* --connect-ports: 403 */
	PROXY_OUTCOME_BUSY,	     /* --max-connections: 503 */
	PROXY_OUTCOME_NO_MEMORY,     /* 500 */
	/* The origin (or the parent proxy on its way). */
	PROXY_OUTCOME_ORIGIN_UNRESOLVED,      /* no address for the name */
	PROXY_OUTCOME_ORIGIN_REFUSED,	      /* connection refused */
	PROXY_OUTCOME_ORIGIN_CONNECT_TIMEOUT, /* connecting took too long */
	PROXY_OUTCOME_ORIGIN_UNREACHABLE,     /* any other connect failure */
	PROXY_OUTCOME_ORIGIN_TIMEOUT,	      /* no whole head in time: 504 */
	PROXY_OUTCOME_ORIGIN_RESET,	      /* closed before a whole head */
	PROXY_OUTCOME_BAD_ORIGIN_RESPONSE,    /* malformed or too large head */
	PROXY_OUTCOME_TOO_MANY_INTERIM,	      /* endless 1xx */
	PROXY_OUTCOME_UNASKED_SWITCH,	      /* 101 we never asked for */
	PROXY_OUTCOME_ORIGIN_TRUNCATED,	      /* body ended early or badly */
	PROXY_OUTCOME_ORIGIN_STOPPED_READING, /* upload not taken: 502 */
	PROXY_OUTCOME_PARENT_REFUSED,	      /* parent said no to CONNECT */
	/* The cache (issue #10). */
	PROXY_OUTCOME_HIT,		  /* fresh, from the cache */
	PROXY_OUTCOME_MISS,		  /* cacheable, nothing usable stored */
	PROXY_OUTCOME_REFRESH_UNMODIFIED, /* revalidated: 304, stored body */
	PROXY_OUTCOME_REFRESH_MODIFIED,	  /* revalidated: a new response */
	PROXY_OUTCOME_REFRESH_FAIL_OLD,	  /* revalidation failed: stale sent */
	PROXY_OUTCOME_REFRESH_FAIL_504,	  /* stale forbidden, no origin: 504 */
	PROXY_OUTCOME_STALE,		  /* served stale (max-stale, swr) */
	PROXY_OUTCOME_NOT_MODIFIED_HERE,  /* client's conditional: 304 here */
	PROXY_OUTCOME_ONLY_IF_CACHED,	  /* nothing stored: 504 */
	PROXY_OUTCOME_PURGED,		  /* PURGE removed something: 200 */
	PROXY_OUTCOME_PURGE_NONE,	  /* PURGE found nothing: 404 */
	PROXY_OUTCOME_PURGE_DENIED,	  /* PURGE from a remote client: 405 */
	/* Issue 15: authentication and slow readers. */
	PROXY_OUTCOME_AUTH_REQUIRED,	  /* no or bad credentials: 407 */
	PROXY_OUTCOME_AUTH_THROTTLED,	  /* too many failures: 429 */
	PROXY_OUTCOME_AUTH_ERROR,	  /* crypt(3) or memory failed: 500 */
	PROXY_OUTCOME_CLIENT_SLOW_READER, /* below --min-send-rate: closed */
	PROXY_OUTCOME_COUNT
};

/* The status an outcome answers with: 0 means "as sent" (by the origin,
 * or by the parser's verdict). */
#define PROXY_STATUS_AS_SENT 0
int proxy_outcome_status(enum proxy_outcome outcome);
/* The access log's word for it ("DIRECT", "BLOCKED"...); never NULL. */
const char *proxy_outcome_word(enum proxy_outcome outcome);

struct proxy;
struct stats;

int proxy_new(struct sys *sys, struct log *log,
	      const struct proxy_settings *settings, struct proxy **out);
void proxy_free(struct proxy *px);

/* What a rules snapshot holds; the proxy takes ownership of all of it. */
struct proxy_rules_spec {
	struct net_hosts *hosts; /* the hosts file; may be NULL */
	struct filter *filter;	 /* allow/block, clients, CONNECT ports */
	struct filter *direct;	 /* hosts that bypass the parent; may be NULL */
	struct auth *auth;	 /* --auth-file; NULL: no authentication */
	/* The settings that can change live; taken with the rules. */
	struct proxy_settings settings;
	/* The hosts file changed: idle pooled upstream connections made
	 * under the old one are dropped. */
	bool hosts_changed;
};

/*
 * Install a new rules snapshot.  Connections already running keep the
 * snapshot they started with; the old one is freed when the last of them
 * ends.  On failure (-ENOMEM) the spec's contents are freed.
 */
int proxy_set_rules(struct proxy *px, struct proxy_rules_spec *spec);

/*
 * Failed authentication attempts (wrong user or password, and attempts
 * refused by the throttle) since proxy_new.  Safe from any thread.
 */
uint64_t proxy_auth_failures(struct proxy *px);

/*
 * Housekeeping for a periodic caller (the server's accept loop): close
 * idle pooled upstream connections that became readable (stray bytes, a
 * close) or timed out.  Returns how many were closed.
 */
size_t proxy_housekeeping(struct proxy *px);

/*
 * Begin a graceful stop: connections idle between requests close at once,
 * requests in flight finish and then close their connections.
 */
void proxy_stop(struct proxy *px);

/*
 * End of a stop's grace period: shut down every client and upstream socket
 * still in use, so that each remaining request fails at once and its
 * thread ends.  Safe from any thread.
 */
void proxy_cut(struct proxy *px);

/*
 * Use store as the cache (NULL: none), before serving; the caller keeps
 * ownership and closes it after proxy_free().
 */
void proxy_set_cache(struct proxy *px, struct cache_store *store);

/*
 * Observability (issue #12).  The counters the proxy updates (NULL: none);
 * call before serving.  Squid's result code for an outcome, given the
 * cache's word for the request (NULL: none; "HIT", "MEM_HIT",
 * "REVALIDATED", "MODIFIED", "STALE", "NEGATIVE_HIT"), and the Squid
 * hierarchy code is the proxy's own (HIER_DIRECT, FIRSTUP_PARENT,
 * HIER_NONE).
 */
void proxy_set_stats(struct proxy *px, struct stats *stats);
const char *proxy_outcome_squid(enum proxy_outcome outcome,
				const char *cache_result);

/* The status page's addresses: http://PROXY_STATUS_HOST/ through the
 * proxy, and PROXY_STATUS_PATH on the proxy's own address. */
#define PROXY_STATUS_HOST "glassproxy.status"
#define PROXY_STATUS_PATH "/glassproxy/status"

/* Serve one accepted client until it is done; the caller closes client_fd. */
void proxy_serve(struct proxy *px, int client_fd, const struct sys_addr *peer);

/*
 * Issue 13: a connection that a waiting room holds between requests and
 * any worker thread resumes.  One proxy_client is one client connection;
 * one proxy_worker is the big buffers (64 KiB client buffer, upstream
 * buffer, outgoing head, the exchange) a worker thread lends to whichever
 * connection it serves, so an idle connection keeps none of them.
 *
 *  - proxy_client_open(): the connection's record and the client ACL
 *    (NULL when refused with 403, or out of memory; either way the caller
 *    closes fd).  No byte is read.
 *  - proxy_client_receive(): the waiting room's non-blocking read.  READY
 *    when a whole request head is here (or the head cannot become one:
 *    it is malformed, fills the buffer, or the client closed mid-head),
 *    MORE while it is incomplete, GONE when the client left while idle.
 *  - proxy_client_wait_ms(): how long the current wait may last (the
 *    idle timeout between requests, the request timeout for a head).
 *  - proxy_client_expire(): that wait ran out; the next run answers 408
 *    for a partial head, or closes an idle connection quietly.
 *  - proxy_client_run(): on a worker, serve every request whose head is
 *    here, with plain blocking calls; true: park it again (idle, or the
 *    next head is partial), false: it is done; call proxy_client_close()
 *    and close fd.
 *  - proxy_client_refuse_busy(): 503 for a request no worker took in time.
 */
struct proxy_client;
struct proxy_worker;
enum proxy_wait { PROXY_WAIT_MORE, PROXY_WAIT_READY, PROXY_WAIT_GONE };

int proxy_worker_new(struct proxy_worker **out);
void proxy_worker_free(struct proxy_worker *w);
struct proxy_client *proxy_client_open(struct proxy *px, int fd,
				       const struct sys_addr *peer);
enum proxy_wait proxy_client_receive(struct proxy_client *pc);
int proxy_client_wait_ms(const struct proxy_client *pc);
void proxy_client_expire(struct proxy_client *pc);
bool proxy_client_run(struct proxy_client *pc, struct proxy_worker *w);
void proxy_client_refuse_busy(struct proxy_client *pc);
void proxy_client_close(struct proxy_client *pc);
/* Bytes an idle connection holds in the proxy (for the measurements). */
size_t proxy_client_idle_bytes(void);

/*
 * What the server wants to know of a request, called on the serving
 * thread (set before serving; a NULL member: not told):
 *  - tunnel_begins: just before a request becomes a CONNECT tunnel, which
 *    then holds the thread for its whole life (the server starts another
 *    worker so the pool keeps its size);
 *  - upstream(arg, true) before a request goes to its origin or parent
 *    (or waits for another request's fetch of the same URL), and
 *    upstream(arg, false) when that is over: a thread waiting on an origin
 *    uses no core, so the server lets another worker serve in the
 *    meantime (workers.c, "The active few").  Always in pairs.  The pair
 *    spans the whole exchange, the bodies' relay included: a relay mostly
 *    waits on one socket or the other (and splices), so it is counted as
 *    waiting; --workers still bounds it.
 */
struct proxy_hooks {
	void (*tunnel_begins)(void *arg);
	void (*upstream)(void *arg, bool begins);
	void *arg;
};
void proxy_set_hooks(struct proxy *px, const struct proxy_hooks *hooks);

/*
 * Answer a client that cannot be served right now (too many connections)
 * with 503 and close it, without reading its request.
 */
void proxy_refuse_busy(struct proxy *px, int client_fd,
		       const struct sys_addr *peer);

#endif
