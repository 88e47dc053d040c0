/*
 * Internals of the proxy module, shared by its files (and its tests).
 * Nothing here is visible to other modules.
 */
#ifndef GLASSPROXY_PROXY_INT_H
#define GLASSPROXY_PROXY_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "glassproxy/cache.h"
#include "glassproxy/parse.h"
#include "glassproxy/proxy.h"
#include "glassproxy/stats.h"
#include "sink.h"

#define PROXY_HEAD_MAX	  (64 * 1024) /* request or response head */
#define PROXY_MAX_HEADERS 100
#define PROXY_URL_MAX	  8192

/*
 * The immutable, reference-counted rules and live settings a request runs
 * with.  Each request holds one reference (client.rules) from its first
 * byte to its end; a reload installs a new snapshot for the next ones.
 */
struct proxy_rules {
	int refs; /* guarded by proxy.lock */
	struct net_hosts *hosts;
	struct filter *filter;
	struct filter *direct;
	struct auth *auth; /* NULL: no authentication */
	struct proxy_settings set;
};

struct proxy {
	struct sys *sys;
	struct cache_store *cache; /* NULL: no cache */
	struct log *log;
	/* The settings at start, for what cannot change live (none of the
	 * request path reads it: requests use their snapshot's). */
	struct proxy_settings set;
	struct net_pool *pool; /* idle upstream connections */
	/* Guards rules, stopping and the active list. */
	pthread_mutex_t lock;
	struct proxy_rules *rules;
	struct client *active; /* clients being served, for proxy_cut() */
	/*
	 * A pipe nobody reads: proxy_stop() writes one byte to it, after which
	 * it polls readable for ever, waking every idle connection at once.
	 */
	int stop_pipe[2];
	int stopping; /* guarded by lock */
	/* Failed logins per client address (made once, kept over reloads),
	 * and their count for proxy_auth_failures() (guarded by lock). */
	struct auth_throttle *throttle;
	uint64_t auth_failures;
	/* Observability (issue #12): the counters (may be NULL) and the
	 * next connection id, numbered from 1. */
	struct stats *stats;
	atomic_uint_fast64_t next_conn_id;
	/* The store's eviction totals already added to stats (guarded by
	 * lock): proxy_cache_count_store() adds the difference. */
	uint64_t evictions_counted, evicted_bytes_counted;
	/* Issue 13: what the server is told of a request (proxy.h). */
	struct proxy_hooks hooks;
};

/*
 * One side of a connection with its receive buffer: bytes [start, start +
 * len) of buf have arrived but are not consumed yet.  The buffer is fixed
 * (cap bytes): bodies stream through it, so memory per connection is
 * bounded whatever the body size.
 */
struct conn {
	struct sys *sys;
	int fd;
	char *buf;
	size_t cap, start, len;
	bool eof;
};

/* The steps of a request the access log's timing shows (issue #12). */
enum proxy_mark {
	PROXY_MARK_HEAD,       /* the whole request head arrived */
	PROXY_MARK_FILTER,     /* the filter gave its verdict */
	PROXY_MARK_RESOLVE,    /* the upstream name resolved */
	PROXY_MARK_CONNECT,    /* connected upstream (or took a pooled one) */
	PROXY_MARK_FIRST_BYTE, /* the response head arrived from upstream */
	PROXY_MARK_LAST_BYTE,  /* the last byte went to the client */
	PROXY_MARK_COUNT
};

/* What a connection is doing, for the status page. */
enum proxy_state {
	PROXY_STATE_WAITING, /* for a request head */
	PROXY_STATE_SERVING, /* a request: forwarding or answering */
	PROXY_STATE_TUNNEL,  /* relaying a CONNECT tunnel */
};

/* cache_glue.c: how far the cache got with one exchange. */
#define PROXY_CACHE_KEY_MAX (PROXY_URL_MAX + 16)
#define PROXY_INM_MAX	    1024
struct proxy_cache_x {
	bool active; /* a cache is in use for this request */
	bool entry;  /* a stored response is open in reader */
	bool revalidating; /* our validators go upstream */
	bool stored;	   /* the response was committed to the cache */
	bool committed;	   /* a new entry of committed_len body bytes */
	uint64_t committed_len;
	bool hit;	   /* answered from the cache */
	bool swr;	   /* served stale: revalidate in the background */
	bool background;   /* that revalidation: nothing goes to the client */
	int64_t request_time; /* wall seconds: the request went upstream */
	struct cache_control req_cc;
	struct cache_status status; /* what Cache-Status will say */
	struct cache_store_reader *reader;
	struct cache_store_meta meta; /* the reader's, or renewed by a 304 */
	struct cache_decision decision;
	size_t n_fields;
	struct http_header validators[2];
	size_t n_validators;
	struct cache_store_writer *writer;
	struct cache_store_fill *fill; /* we are the filler */
	/* An entry is open, but the request went upstream as the client
	 * sent it (a Range, a conditional the entry cannot answer): a 304
	 * or a HEAD's 200 to it may still freshen the entry. */
	bool passed;
	bool refetch;	    /* a 304 selected nothing: forward once more */
	bool unconditional; /* ... without any conditional field */
	/* The variants whose entity-tags went upstream in If-None-Match. */
	uint64_t cand[CACHE_STORE_MAX_VARIANTS];
	size_t n_cand;
	/* ---- buffers: written before they are read, never zeroed (see
	 * proxy_exchange_reset); key[0] == '\0' means "no key" ---- */
	char key[PROXY_CACHE_KEY_MAX];
	char hash[CACHE_HASH_HEX];
	char status_line[256];			      /* Cache-Status, formatted */
	char inm[PROXY_INM_MAX]; /* If-None-Match: the variants' ETags */
	struct http_header fields[PROXY_MAX_HEADERS]; /* the reader's */
};

/*
 * One request and its answer, for the access log.  The fields before
 * `headers` (and the cache's before its buffers) are zeroed for every
 * request; the big buffers after them are not: zeroing the whole 20 KB on
 * every request was a third of a miss's instructions (make bench-check).
 */
struct exchange {
	struct http_request req;
	struct http_parse_state head_state; /* resumes the head's scan */
	size_t head_len;
	int status; /* sent to the client, 0 before */
	uint64_t bytes_sent, bytes_received;
	int64_t start_ms;
	enum proxy_outcome outcome;
	bool client_keep_alive; /* the client may send another request */
	/* Observability (issue #12): when the request reached each step
	 * (monotonic ms, 0: never) and the hierarchy code. */
	int64_t mark[PROXY_MARK_COUNT];
	const char *hierarchy; /* "HIER_DIRECT", "FIRSTUP_PARENT"; NULL */
	char user[AUTH_USER_MAX + 1]; /* authenticated user, "" when none */
	struct proxy_cache_x cache;
	/* ---- buffers: written before they are read ("" before) ---- */
	struct http_header headers[PROXY_MAX_HEADERS];
	char url[PROXY_URL_MAX]; /* what the access log shows */
	char method[64];	 /* a copy: see describe_target() */
	char peer[256];		 /* the upstream host */
	char content_type[128];	 /* of the response sent */
	char referer[256], user_agent[256];
};

/* Ready x for a new request without zeroing its buffers. */
void proxy_exchange_reset(struct exchange *x);

struct client {
	struct proxy *px;
	/* The current request's snapshot (between requests: the last one's,
	 * or the one current when the connection opened). */
	struct proxy_rules *rules;
	struct conn conn;
	char addr[NET_ADDR_TEXT_MAX]; /* "127.0.0.1:40000" */
	char ip[NET_ADDR_TEXT_MAX];   /* "127.0.0.1", "::1" */
	unsigned requests;
	char *upstream_buf; /* PROXY_UPSTREAM_BUF bytes, made on first use */
	char *head_buf;	    /* PROXY_HEAD_OUT_MAX bytes, made on first use:
			       outgoing heads are rewritten into it */
	/* On proxy.active (under proxy.lock), with the upstream socket in use:
	 * proxy_cut() shuts both down to end a stop that ran out of grace. */
	struct client *prev, *next;
	int upstream_fd; /* -1 when none */
	struct sys_addr peer;
	/* Credentials verified on this connection: made when --auth-file is
	 * in force and the first request needs it (1.6 KiB an idle
	 * connection without auth does not pay); freed at close. */
	struct auth_session *auth;
	/* For the status page and the event log (issue #12): the id, what
	 * it does and since when, and its current target (under
	 * proxy.lock). */
	uint64_t id;
	atomic_int state; /* enum proxy_state */
	int64_t opened_ms;
	char target[200];
	/* Issue 13: resumed from the server's waiting room (not proxy_serve):
	 * a head that is not all here parks the connection instead of
	 * blocking; expired: its wait ran out (408, or a quiet close). */
	bool resumable, expired;
	int64_t head_started_ms; /* the waiting head's first byte, 0: none */
};

/* The live settings of the client's current request. */
static inline const struct proxy_settings *proxy_live(const struct client *cl)
{
	return &cl->rules->set;
}

#define PROXY_UPSTREAM_BUF (64 * 1024)
#define PROXY_HEAD_OUT_MAX (PROXY_HEAD_MAX + 1024)

/* body.c */
void proxy_conn_init(struct conn *c, struct sys *sys, int fd, char *buf,
		     size_t cap);
/* Receive more into the buffer (compacting first); 0 at EOF, <0 error. */
ssize_t proxy_conn_fill(struct conn *c, int timeout_ms);
void proxy_conn_consume(struct conn *c, size_t n);
static inline const char *proxy_conn_data(const struct conn *c)
{
	return c->buf + c->start;
}

/* A body being relayed: how its sender frames it, and how far it got. */
struct body {
	enum http_body kind;
	uint64_t remaining; /* HTTP_BODY_LENGTH */
	struct http_chunked chunked;
	uint64_t limit;	   /* 0, or the most payload bytes (413 above) */
	uint64_t moved;	   /* bytes read from the sender, framing included */
	int framing_error; /* the enum http_error behind an -EPROTO */
	bool done;
	bool over_limit;
	/* Also wait on this descriptor (-1: none): see proxy_body_relay(). */
	int watch_fd;
	struct proxy_sink *sink;
	/*
	 * Whole-body allowances (issue 15, finding 4; Apache mod_reqtimeout):
	 * the sender must have delivered the body by start_ms + base_ms plus
	 * one second per min_rate bytes moved; the sink (a slow reader) may
	 * spend base_ms plus one second per min_send_rate bytes written.
	 * A rate of 0 leaves that side to the per-wait timeout alone.
	 */
	int64_t start_ms;
	int base_ms;
	unsigned min_rate, min_send_rate;
	int send_fd;	       /* the sink's socket, for its send timeout */
	int64_t send_spent_ms; /* time spent writing to the sink */
	bool send_slow;	       /* the sink ran out of its allowance */
	bool send_timeout_cut; /* send_fd's SO_SNDTIMEO was lowered */
	/* Zero copy (issue 13, body.c): payload bytes that went through a
	 * pipe with splice(2); no_splice: this body copies (its socket
	 * cannot splice, or no pipe could be made). */
	uint64_t spliced;
	bool no_splice;
};
/*
 * A Content-Length body with at least this much left moves socket ->
 * pipe -> socket (body.c); below it, through the buffer.
 */
#ifndef PROXY_SPLICE_MIN
#define PROXY_SPLICE_MIN (64 * 1024)
#endif
/*
 * The allowance for a body of `bytes` so far: base_ms, plus one second
 * per min_rate bytes (0: no rate, INT64_MAX), saturating.  Pure.
 */
int64_t proxy_rate_allowance_ms(int base_ms, unsigned min_rate,
				uint64_t bytes);
/* Set the allowances of b from the live settings, starting at now_ms. */
void proxy_body_set_rates(struct body *b, const struct proxy_settings *set,
			  int64_t now_ms, bool source_rate, int send_fd);
void proxy_body_init(struct body *b, enum http_body kind, uint64_t length);
/*
 * Move a body from a conn into a sink: first what is buffered, then what
 * arrives, decoding the sender's framing into payload.  Stops exactly at
 * the end of the body, leaving whatever follows in `from`, and finishes
 * the sink (its end framing).  Returns 0 or a negative errno: -EPROTO for
 * bad chunked framing (b->framing_error says which), -EFBIG past
 * b->limit (nothing past it is written), -ETIMEDOUT, -ECONNABORTED when
 * `from` closed before the body ended, -EALREADY when b->watch_fd became
 * readable first, or what `from` said.  A failure of the sink itself
 * shows as to->error != 0 (and is what is returned).
 */
int proxy_body_relay(struct body *b, struct conn *from, struct proxy_sink *to,
		     int timeout_ms);

/* respond.c */
const char *proxy_status_reason(int status);
/*
 * Send a complete small response made here (error pages) and record it
 * in x, with outcome o and the status the outcome table gives it (status
 * is used only for the outcomes whose status is "as sent").  message is
 * plain text; it is HTML-escaped.
 */
int proxy_answer(struct client *cl, struct exchange *x, enum proxy_outcome o,
		 int status, const char *message);
/* proxy_answer() with extra header lines ("Name: value\r\n"...). */
int proxy_answer_extra(struct client *cl, struct exchange *x,
		       enum proxy_outcome o, int status, const char *message,
		       const char *extra);
/* proxy_answer() for an outcome with a fixed status. */
int proxy_refuse(struct client *cl, struct exchange *x, enum proxy_outcome o,
		 const char *message);

/* proxy.c */
/* The server's upstream hook (proxy.h): this thread waits on upstream
 * (true) or is back (false); always in pairs. */
void proxy_upstream_hook(struct client *cl, bool begins);
/* Record the upstream socket this client now uses (-1: none). */
void proxy_track_upstream(struct client *cl, int fd);
/* Stop tracking an upstream socket, then close it. */
void proxy_close_upstream(struct client *cl, int fd);
/* Where a request goes next: the parent proxy, or the host itself. */
struct route {
	const char *host;
	uint16_t port;
	bool via_parent;
};
/*
 * Route a request for host:port (the parent proxy unless a --direct
 * pattern matches) and make sure the client's upstream buffer exists.
 * False when it could not be made: a 500 has been sent.
 */
bool proxy_route(struct client *cl, struct exchange *x, const char *host,
		 uint16_t port, struct route *out);
/*
 * The client's buffer for rewriting a head, made once per connection and
 * reused for every response on it; NULL (a 500 has been sent) when it
 * could not be made.
 */
char *proxy_head_buf(struct client *cl, struct exchange *x);

/* True when CONNECT may reach this port. */
bool proxy_connect_port_allowed(struct client *cl, unsigned port);

/* auth.c */
/*
 * --auth-file: does this request carry valid Proxy-Authorization?  True
 * when it may go on (or no file is configured); otherwise a 407 (with
 * Proxy-Authenticate), a 429 (throttled, with Retry-After) or a 500 has
 * been sent.
 */
bool proxy_auth_check(struct client *cl, struct exchange *x);
/* Wipe and free the connection's auth session, if it has one. */
void proxy_auth_end(struct client *cl);

/* vet.c */
/*
 * Connect to a resolved name the way the filter allows: every address it
 * resolves to is vetted by filter_check_addr first (not for a parent
 * proxy, which resolves names itself).  Returns the socket, or -1 after
 * answering (403 naming the rule, or 502/504 for the connect error).
 */
int proxy_connect_vetted(struct client *cl, struct exchange *x,
			 const struct route *route);
/* Plain http only to --http-ports; false after a 403. */
bool proxy_http_port_allowed(struct client *cl, struct exchange *x,
			     unsigned port);

/* head.c */
/* Headers written into an outgoing head buffer. */
struct head_writer {
	char *buf;
	size_t cap, len;
	bool overflow;
};
void proxy_head_add(struct head_writer *w, const char *s, size_t len);
void proxy_head_add_str(struct head_writer *w, const char *s);
void proxy_head_add_header(struct head_writer *w, const struct http_header *h);
bool proxy_method_is(const struct http_request *r, const char *m);
/* The Max-Forwards value of a TRACE or OPTIONS request, or -1. */
long long proxy_max_forwards(const struct http_request *r);
/* True when a Via field already names us: a forwarding loop. */
bool proxy_via_names_us(const char *us, const struct http_header *h, size_t n);
/* The request head for the origin (or the parent); -ENOBUFS if too big. */
int proxy_build_request_head(const struct client *cl, const struct exchange *x,
			     const char *host, bool to_parent,
			     struct head_writer *w);
/*
 * The Content-Length a bodiless response may carry on (issue 15, finding
 * 6): 0 for none (1xx, 204, or absent), 1 with *out for one valid value
 * (repeated identically is one), -EINVAL for a malformed or differing one.
 */
int proxy_bodiless_length(int status, const struct http_header *h, size_t n,
			  uint64_t *out);
/* A response head for the client, framed as `out` says. */
int proxy_build_response_head(const struct proxy_settings *set,
			      const struct http_response *res,
			      const struct exchange *x, enum proxy_framing out,
			      struct head_writer *w);

/* forward.c */
/* Forward an HTTP request to its origin and relay the answer. */
void proxy_forward(struct client *cl, struct exchange *x);
/* The outcome (its status: 502/504) and message for a failed connect. */
enum proxy_outcome proxy_connect_error(int err, const char *host, char *msg,
				       size_t cap);

/* cache_glue.c: the cache in the request path (see its header comment) */
/* Before forwarding: true when the cache answered (or refused). */
bool proxy_cache_before(struct client *cl, struct exchange *x);
/* The final head arrived: true when the cache answered instead. */
bool proxy_cache_response(struct client *cl, struct exchange *x,
			  struct http_response *res);
/* The origin failed before a final head: true when the cache answered. */
bool proxy_cache_failed(struct client *cl, struct exchange *x);
/* The sink for the response body: the client's, or a tee with the store. */
struct proxy_sink *proxy_cache_sink(struct exchange *x,
				    struct proxy_sink *client,
				    struct proxy_tee_sink *tee,
				    struct proxy_store_sink *store);
/* The body relay ended: commit len bytes when ok (complete, well framed,
 * nothing failed on the store's side), else drop the write. */
void proxy_cache_body_done(struct exchange *x, bool ok, uint64_t len);
/* After a stale-while-revalidate answer: the one revalidation, through
 * forward, logged through log (proxy.c's). */
void proxy_cache_background(struct client *cl, struct exchange *x,
			    void (*forward)(struct client *, struct exchange *),
			    void (*log)(struct client *, struct exchange *));
/* The exchange is over: release what the cache still holds. */
void proxy_cache_end(struct client *cl, struct exchange *x);
/* Validators to add to the request head (revalidation), and whether the
 * client's own conditional fields are replaced by them. */
bool proxy_cache_skip_request_field(const struct exchange *x,
				    struct http_slice name);
/* The stored fields text ("Name: value\r\n" lines) into h[cap]. */
int proxy_cache_parse_fields(const char *text, size_t len,
			     struct http_header *h, size_t cap);
/* The access log's cache word: "HIT", "MISS", "REFRESH", "STALE",
 * "BYPASS", "NONE". */
const char *proxy_cache_result(const struct exchange *x);
/* A 304 selected no stored response (RFC 9111 section 4.3.4): true once,
 * and the caller forwards the request again, now unconditionally. */
bool proxy_cache_refetch(struct exchange *x);
/* The store's size and new evictions into the counters (cheap: one lock). */
void proxy_cache_count_store(struct proxy *px);
/* Cache-Status for the exchange, into x->cache.status_line. */
const char *proxy_cache_status_value(struct exchange *x);

/* hit.c: sending a stored response */
struct proxy_hit {
	int status;
	const struct http_header *fields; /* stored fields, as served */
	size_t n_fields;
	int64_t age;
	const char *content_range; /* NULL: none */
	bool send_body;		   /* false: HEAD, 304, 416 */
	bool has_body;		   /* false: 304 (no Content-Length) */
	uint64_t start, count;	   /* body bytes to send */
};
/* Send h from reader r (its body from the entry's fd); 0 or <0. */
int proxy_hit_send(struct client *cl, struct exchange *x,
		   struct cache_store_reader *r, const struct proxy_hit *h);
/* status.c (issue #12) */
/* Record that the request reached step m now (the first time only). */
void proxy_mark(struct client *cl, struct exchange *x, enum proxy_mark m);
/* The request head's fields the access log keeps, and the status page's
 * view of the connection, once the head is parsed. */
void proxy_observe_request(struct client *cl, struct exchange *x);
/* Connected upstream: the hierarchy code and peer for the access log. */
void proxy_observe_upstream(struct client *cl, struct exchange *x,
			    const char *host, bool via_parent);
/* The response head going to the client: its Content-Type. */
void proxy_observe_response(struct exchange *x, const struct http_header *h,
			    size_t n);
void proxy_set_state(struct client *cl, enum proxy_state state);
/* A connection's start and end: its id, the counters, the event log. */
void proxy_connection_opened(struct client *cl);
void proxy_connection_closed(struct client *cl);
/* Count a finished exchange (stats) after its access line. */
void proxy_count_exchange(struct client *cl, const struct exchange *x);
/* True when the request asks for the status page; then it is answered. */
bool proxy_status_request(struct client *cl, struct exchange *x);

/* connect.c */
/* Open a CONNECT tunnel and relay it until both sides are done. */
void proxy_connect(struct client *cl, struct exchange *x);

#endif
