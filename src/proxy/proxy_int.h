/*
 * Internals of the proxy module, shared by its files (and its tests).
 * Nothing here is visible to other modules.
 */
#ifndef GLASSPROXY_PROXY_INT_H
#define GLASSPROXY_PROXY_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

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
	struct proxy_settings set;
};

struct proxy {
	struct sys *sys;
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
	/* Observability (issue #12): the counters (may be NULL) and the
	 * next connection id, numbered from 1. */
	struct stats *stats;
	atomic_uint_fast64_t next_conn_id;
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

/* One request and its answer, for the access log. */
struct exchange {
	struct http_request req;
	struct http_header headers[PROXY_MAX_HEADERS];
	struct http_parse_state head_state; /* resumes the head's scan */
	size_t head_len;
	char url[PROXY_URL_MAX]; /* what the access log shows */
	char method[64];	 /* a copy: see describe_target() */
	int status;		 /* sent to the client, 0 before */
	uint64_t bytes_sent, bytes_received;
	int64_t start_ms;
	enum proxy_outcome outcome;
	bool client_keep_alive; /* the client may send another request */
	/* Observability (issue #12): when the request reached each step
	 * (monotonic ms, 0: never), where it went and what came back. */
	int64_t mark[PROXY_MARK_COUNT];
	const char *hierarchy;	/* "HIER_DIRECT", "FIRSTUP_PARENT"; NULL */
	char peer[256];		/* the upstream host, "" when none */
	char content_type[128]; /* of the response sent, "" when none */
	char referer[256], user_agent[256];
};

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
	/* For the status page and the event log (issue #12): the id, what
	 * it does and since when, and its current target (under
	 * proxy.lock). */
	uint64_t id;
	atomic_int state; /* enum proxy_state */
	int64_t opened_ms;
	char target[200];
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
};
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
/* proxy_answer() for an outcome with a fixed status. */
int proxy_refuse(struct client *cl, struct exchange *x, enum proxy_outcome o,
		 const char *message);

/* proxy.c */
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
