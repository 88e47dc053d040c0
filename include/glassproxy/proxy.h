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
 * The rules that can change while running (hosts file, filter) form one
 * immutable snapshot: each connection takes a reference to the current one
 * when it starts and keeps it to the end, so a reload never changes the
 * rules under a request in flight.
 */
#ifndef GLASSPROXY_PROXY_H
#define GLASSPROXY_PROXY_H

#include <stdbool.h>
#include <stdint.h>

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
};

struct proxy;

int proxy_new(struct sys *sys, struct log *log,
	      const struct proxy_settings *settings, struct proxy **out);
void proxy_free(struct proxy *px);

/* What a rules snapshot holds; the proxy takes ownership of all of it. */
struct proxy_rules_spec {
	struct net_hosts *hosts; /* the hosts file; may be NULL */
	struct filter *filter;	 /* allow/block, clients, CONNECT ports */
	struct filter *direct;	 /* hosts that bypass the parent; may be NULL */
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

/* Serve one accepted client until it is done; the caller closes client_fd. */
void proxy_serve(struct proxy *px, int client_fd, const struct sys_addr *peer);

/*
 * Answer a client that cannot be served right now (too many connections)
 * with 503 and close it, without reading its request.
 */
void proxy_refuse_busy(struct proxy *px, int client_fd,
		       const struct sys_addr *peer);

#endif
