/*
 * server internals that tests/test_app.c drives directly (the worker slots
 * and the wait at a stop), so the shutdown wait can be tested on the mock
 * clock without threads.  Not part of the public API.
 */
#ifndef GLASSPROXY_APP_SERVER_INT_H
#define GLASSPROXY_APP_SERVER_INT_H

#include <stdint.h>

#include "glassproxy/server.h"

struct worker_slot;

/* Claim a free slot for fd; NULL when all are busy or a stop has begun. */
struct worker_slot *server_slot_claim(struct server *srv, int fd,
				      const struct sys_addr *peer);

/* Give a slot back (its worker ended); wakes a stop waiting for the last. */
void server_slot_end(struct server *srv, struct worker_slot *slot);

/*
 * Wait until no slot is in use, or until the monotonic clock reaches
 * deadline_ms (a negative deadline: no limit).  Returns 0 when none is
 * left, -ETIMEDOUT when the deadline passed first.
 */
int server_wait_workers(struct server *srv, int64_t deadline_ms);

#endif
