/*
 * server: the listening socket and the threads that serve clients.
 *
 * Contract: server_open() binds and listens (so the caller can announce the
 * real address, port 0 included); server_run() accepts on the calling
 * thread until server_stop() is called from another thread, giving each
 * client its own detached worker thread (or, in serial mode, serving it
 * inline, one at a time, for step-through debugging).  At most
 * max_connections clients are served at once; one more is answered 503 and
 * closed.  After a stop, server_run() lets requests in flight finish for up
 * to grace_ms (measured on the monotonic clock: a wall-clock step changes
 * nothing), then cuts the remaining connections and waits for their
 * threads, so no thread outlives it.  All OS access goes through sys.
 */
#ifndef GLASSPROXY_SERVER_H
#define GLASSPROXY_SERVER_H

#include <stdbool.h>

#include "glassproxy/log.h"
#include "glassproxy/net.h"
#include "glassproxy/proxy.h"
#include "glassproxy/sys.h"

struct server_options {
	struct sys_addr listen;
	int max_connections;
	bool serial;
	int grace_ms;
	/* Slots one client address may hold; 0: no limit (issue 15). */
	int max_per_client;
	/* Issue 13: requests served at once (0: 16 per core), requests
	 * waiting for a worker at most, and for how long (503 after). */
	int workers;
	int queue_size;
	int queue_timeout_ms;
	/* A worker idle this long ends, down to the active few (0: never). */
	int worker_idle_timeout_ms;
	/* SO_REUSEPORT: other processes may listen on the same address and
	 * the kernel spreads new connections over them (docs/scaling.md). */
	bool reuse_port;
};

struct server;

int server_open(struct sys *sys, struct log *log, struct proxy *px,
		const struct server_options *opts, struct server **out);
/* The address actually bound, e.g. "127.0.0.1:40123". */
const char *server_address(const struct server *srv);
int server_run(struct server *srv);
void server_stop(struct server *srv);
/* A reload's new --shutdown-grace; the next stop uses it. */
void server_set_grace_ms(struct server *srv, int grace_ms);
void server_close(struct server *srv);

#endif
