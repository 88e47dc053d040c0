/*
 * The waiting room (issue 13), after Apache httpd's event MPM: a
 * connection that is idle between requests, or still sending its request
 * head, holds no thread.  One poller thread watches all of them with epoll
 * and reads what arrives (proxy_client_receive); when a whole head is
 * here it puts the connection on a bounded ready queue, and a worker of
 * the pool (workers.c) serves it with the plain blocking request path,
 * then parks it again.
 *
 *   accept -> WAITING --(whole head)--> QUEUED --(a worker)--> SERVING
 *                ^  \--(idle timeout, close)--> closed            |
 *                |   \--(head timeout)--> QUEUED, 408             |
 *                +----------------(keep-alive)-----------------------+
 *
 * The invariant that keeps the poller's pointers valid: a connection is
 * armed in epoll (EPOLLONESHOT) only while it is SLOT_WAITING, and only the
 * poller moves it out of SLOT_WAITING, so every event it reads names a
 * live slot.  A worker parks a connection by setting it WAITING, then
 * re-arming it.
 *
 * Two locks, neither held across a system call that can wait: server.lock
 * guards the connection records and the WAITING state (an accept, a park,
 * the look for expired waits), server.pool_lock the ready queue and the
 * pool's counts (the hand-over itself).  A request takes each once or
 * twice, and a worker never queues behind the poller's look for expired
 * waits, which walks every connection.
 *
 * Limits: the queue holds at most --queue-size connections, a request
 * that waited there past --queue-timeout gets 503 from the worker that
 * takes it, and one more than the queue holds gets 503 from the poller.
 * A CONNECT tunnel keeps the worker thread it started on for its whole
 * life (its relay is the blocking two-socket loop of src/tunnel, which
 * the tunnel issue measured and tuned; moving it into the poller would
 * make it a second, callback-shaped relay); the pool starts a new worker
 * in its place, and the thread ends with its tunnel.
 *
 * After each round the poller also looks at the pool (server_pool_adjust:
 * are workers stuck, may more serve?), every SERVER_POOL_LOOK_MS while
 * requests wait or the few that may serve are all serving; and for spare
 * workers idle past --worker-idle-timeout (server_pool_retire), every
 * SERVER_RETIRE_LOOK_MS.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "app/server_int.h"

#define ROOM_EVENTS 256
/* How often the poller looks for waits that ran out. */
#define EXPIRE_MS 250
#define ARMED	  (EPOLLIN | EPOLLRDHUP | EPOLLONESHOT)

int server_room_open(struct server *srv)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	int wake[2], rc;

	srv->epfd = sys_epoll_create(srv->sys);
	if (srv->epfd < 0)
		return srv->epfd;
	rc = sys_pipe(srv->sys, wake);
	if (rc < 0)
		goto close_epoll;
	/* Under the lock: server_stop reads it from the signal thread. */
	pthread_mutex_lock(&srv->lock);
	srv->room_wake[0] = wake[0];
	srv->room_wake[1] = wake[1];
	pthread_mutex_unlock(&srv->lock);
	/* data.ptr NULL: the wake pipe, not a connection. */
	rc = sys_epoll_ctl(srv->sys, srv->epfd, EPOLL_CTL_ADD,
			   srv->room_wake[0], &ev);
	if (rc < 0)
		goto close_pipe;
	server_pool_size(srv);
	return 0;

close_pipe:
	sys_close(srv->sys, srv->room_wake[0]);
	sys_close(srv->sys, srv->room_wake[1]);
	srv->room_wake[0] = srv->room_wake[1] = -1;
close_epoll:
	sys_close(srv->sys, srv->epfd);
	srv->epfd = -1;
	return rc;
}

void server_room_close(struct server *srv)
{
	if (srv->epfd < 0)
		return;
	sys_close(srv->sys, srv->room_wake[0]);
	sys_close(srv->sys, srv->room_wake[1]);
	sys_close(srv->sys, srv->epfd);
	srv->epfd = -1;
	/* Under the lock, as server_stop reads it: no write to a closed
	 * (or reused) descriptor after a fall-back to --serial. */
	pthread_mutex_lock(&srv->lock);
	srv->room_wake[0] = srv->room_wake[1] = -1;
	pthread_mutex_unlock(&srv->lock);
}

/* The connection is done: its proxy record, its socket, its slot. */
static void slot_close(struct server *srv, struct worker_slot *slot)
{
	proxy_client_close(slot->pc);
	sys_close(srv->sys, slot->fd);
	server_slot_end(srv, slot);
}

/*
 * Into the waiting room (or closed: a stop has begun, epoll failed).  Armed
 * under the lock, so the poller's take_waiting never sees a connection
 * that is WAITING but not yet armed (a stop would free it under us).
 */
static void slot_park(struct server *srv, struct worker_slot *slot)
{
	struct epoll_event ev = {.events = ARMED, .data.ptr = slot};
	/* Added once (a connection served straight from its accept is not
	 * yet), then re-armed. */
	int op = slot->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	bool parked = false;

	pthread_mutex_lock(&srv->lock);
	if (!srv->stopping) {
		slot->where = SLOT_WAITING;
		slot->head_begun = false;
		slot->deadline_ms = sys_now_mono_ms(srv->sys) +
				    proxy_client_wait_ms(slot->pc);
		parked = sys_epoll_ctl(srv->sys, srv->epfd, op, slot->fd,
				       &ev) == 0;
		slot->registered = parked;
		if (!parked)
			slot->where = SLOT_CLAIMED;
	}
	pthread_mutex_unlock(&srv->lock);
	if (!parked)
		slot_close(srv, slot);
}

/* A whole head (or an expired wait) for the workers; false: queue full. */
static bool enqueue(struct server *srv, struct worker_slot *slot)
{
	struct pool_call call = {.wake = NULL, .spawn = false};
	bool ok;

	pthread_mutex_lock(&srv->pool_lock);
	ok = srv->queued < srv->opts.queue_size;
	if (ok) {
		slot->where = SLOT_QUEUED;
		slot->queued_ms = sys_now_mono_ms(srv->sys);
		slot->queue_next = NULL;
		if (srv->queue_tail)
			srv->queue_tail->queue_next = slot;
		else
			srv->queue_head = slot;
		srv->queue_tail = slot;
		srv->queued++;
		call = server_pool_call_locked(srv);
	}
	pthread_mutex_unlock(&srv->pool_lock);
	server_pool_answer(srv, call);
	return ok;
}

/* Ready for a worker; when the queue is full, 503 here and now. */
static void hand_over(struct server *srv, struct worker_slot *slot)
{
	if (enqueue(srv, slot))
		return;
	log_event(srv->log, LOG_WARN,
		  "%d requests wait for a worker (--queue-size): 503",
		  srv->opts.queue_size);
	proxy_client_refuse_busy(slot->pc);
	slot_close(srv, slot);
}

/*
 * Take what has arrived: a whole head goes to the workers, a client that
 * left is let go (true: the slot is no longer the caller's); false: the
 * head is not all here yet.
 */
static bool receive_settles(struct server *srv, struct worker_slot *slot)
{
	switch (proxy_client_receive(slot->pc)) {
	case PROXY_WAIT_READY:
		hand_over(srv, slot);
		return true;
	case PROXY_WAIT_GONE:
		slot_close(srv, slot);
		return true;
	case PROXY_WAIT_MORE:
		break;
	}
	return false;
}

void server_admit(struct server *srv, int fd, const struct sys_addr *peer)
{
	struct worker_slot *slot = server_claim_or_refuse(srv, fd, peer);

	if (!slot)
		return; /* answered 503 and closed */
	slot->pc = proxy_client_open(srv->px, fd, peer);
	if (!slot->pc) {
		sys_close(srv->sys, fd);
		server_slot_end(srv, slot);
		return;
	}
	/*
	 * A client sends its request with, or right after, its connection:
	 * look once before parking it, and a head already here goes to the
	 * queue without a round through epoll and the poller (the noka-1k
	 * bench's new connection per request saves an epoll_ctl, a wake of
	 * the poller and its epoll_wait).  Nothing here yet: one recv that
	 * said EAGAIN.
	 */
	if (!receive_settles(srv, slot))
		slot_park(srv, slot);
}

/* Bytes (or a close) arrived on a waiting connection. */
static void on_readable(struct server *srv, struct worker_slot *slot)
{
	if (receive_settles(srv, slot))
		return;
	pthread_mutex_lock(&srv->lock);
	if (!slot->head_begun) {
		/* The head's own deadline runs from its first byte. */
		slot->head_begun = true;
		slot->deadline_ms = sys_now_mono_ms(srv->sys) +
				    proxy_client_wait_ms(slot->pc);
	}
	pthread_mutex_unlock(&srv->lock);
	struct epoll_event ev = {.events = ARMED, .data.ptr = slot};
	if (sys_epoll_ctl(srv->sys, srv->epfd, EPOLL_CTL_MOD, slot->fd, &ev) <
	    0)
		slot_close(srv, slot);
}

/*
 * Take the waiting slots that match (their wait ran out, or all of them
 * at a stop) off the room, disarmed; the caller deals with each.
 */
static struct worker_slot *take_waiting(struct server *srv, int64_t now,
					bool all)
{
	struct worker_slot *taken = NULL;

	pthread_mutex_lock(&srv->lock);
	for (struct worker_slot *s = srv->slots; s; s = s->next) {
		if (s->where != SLOT_WAITING || (!all && s->deadline_ms > now))
			continue;
		s->where = SLOT_CLAIMED; /* the poller's now */
		s->queue_next = taken;
		taken = s;
	}
	pthread_mutex_unlock(&srv->lock);
	for (struct worker_slot *s = taken; s; s = s->queue_next) {
		sys_epoll_ctl(srv->sys, srv->epfd, EPOLL_CTL_DEL, s->fd, NULL);
		s->registered = false;
	}
	return taken;
}

/*
 * Waits that ran out: a worker answers 408 or closes quietly.  The look
 * walks every open connection, so it runs once per EXPIRE_MS, not once
 * per round: with 2,000 idle connections and a busy poller, a walk per
 * round cost the busy clients a fifth of their throughput (issue 13).
 * A wait therefore ends up to EXPIRE_MS after its deadline.
 */
static void expire_waits(struct server *srv)
{
	int64_t now = sys_now_mono_ms(srv->sys);
	struct worker_slot *s;

	if (now < srv->next_expiry_ms)
		return;
	srv->next_expiry_ms = now + EXPIRE_MS;
	s = take_waiting(srv, now, false);
	while (s) {
		struct worker_slot *next = s->queue_next;

		proxy_client_expire(s->pc);
		if (!enqueue(srv, s))
			slot_close(srv, s);
		s = next;
	}
}

/*
 * A stop: every connection in the room closes at once, and so do queued
 * ones when no worker thread is left to take them (every start of one
 * failed): the stop would wait for them for ever.
 */
static void close_room(struct server *srv)
{
	struct worker_slot *s = take_waiting(srv, 0, true);
	struct worker_slot *orphans = NULL;

	while (s) {
		struct worker_slot *next = s->queue_next;

		slot_close(srv, s);
		s = next;
	}
	pthread_mutex_lock(&srv->pool_lock);
	while (srv->threads == 0 && srv->queue_head) {
		s = server_queue_pop_locked(srv);
		s->queue_next = orphans;
		orphans = s;
	}
	pthread_mutex_unlock(&srv->pool_lock);
	while (orphans) {
		s = orphans->queue_next;
		slot_close(srv, orphans);
		orphans = s;
	}
}

bool server_room_round(struct server *srv, int timeout_ms)
{
	struct epoll_event ev[ROOM_EVENTS];
	bool woken = false;
	int n = sys_epoll_wait(srv->sys, srv->epfd, ev, ROOM_EVENTS,
			       timeout_ms);

	/*
	 * Taken after the wait, the lock orders everything below after the
	 * parks that armed these connections (each unlocked it before its
	 * epoll_ctl): epoll is a synchronisation that TSan cannot see.
	 */
	pthread_mutex_lock(&srv->lock);
	woken = srv->stopping;
	pthread_mutex_unlock(&srv->lock);
	for (int i = 0; i < n; i++) {
		if (ev[i].data.ptr == NULL)
			woken = true;
		else if (!woken)
			on_readable(srv, ev[i].data.ptr);
	}
	if (woken) {
		close_room(srv);
		return false;
	}
	expire_waits(srv);
	server_pool_adjust(srv);
	server_pool_retire(srv);
	return true;
}

struct worker_slot *server_queue_pop_locked(struct server *srv)
{
	struct worker_slot *slot = srv->queue_head;

	if (slot) {
		srv->queue_head = slot->queue_next;
		if (!srv->queue_head)
			srv->queue_tail = NULL;
		srv->queued--;
		slot->where = SLOT_SERVING;
	}
	return slot;
}

struct worker_slot *server_queue_take(struct server *srv)
{
	struct worker_slot *slot;

	pthread_mutex_lock(&srv->pool_lock);
	slot = server_queue_pop_locked(srv);
	pthread_mutex_unlock(&srv->pool_lock);
	return slot;
}

int server_queue_length(struct server *srv)
{
	int n;

	pthread_mutex_lock(&srv->pool_lock);
	n = srv->queued;
	pthread_mutex_unlock(&srv->pool_lock);
	return n;
}

void server_serve_slot(struct server *srv, struct worker_slot *slot,
		       struct proxy_worker *w)
{
	int64_t waited = sys_now_mono_ms(srv->sys) - slot->queued_ms;

	if (srv->opts.queue_timeout_ms > 0 &&
	    waited > srv->opts.queue_timeout_ms) {
		log_event(srv->log, LOG_WARN,
			  "a request waited %lld ms for a worker "
			  "(--queue-timeout): 503",
			  (long long)waited);
		proxy_client_refuse_busy(slot->pc);
		slot_close(srv, slot);
		return;
	}
	if (proxy_client_run(slot->pc, w))
		slot_park(srv, slot);
	else
		slot_close(srv, slot);
}

/* The pool may want a look soon (server_pool_wants_look), else 250 ms. */
static int room_timeout(struct server *srv)
{
	return server_pool_wants_look(srv) ? SERVER_POOL_LOOK_MS : EXPIRE_MS;
}

static void *poller_main(void *arg)
{
	struct server *srv = arg;

	while (server_room_round(srv, room_timeout(srv)))
		;
	return NULL;
}

int server_room_start(struct server *srv)
{
	if (srv->epfd < 0)
		return -EBADF;
	server_pool_open(srv);
	if (pthread_create(&srv->poller, NULL, poller_main, srv) != 0) {
		server_room_close(srv);
		return -EAGAIN;
	}
	srv->poller_started = true;
	return 0; /* workers start with the first requests (want_worker) */
}

void server_room_stop(struct server *srv)
{
	if (!srv->poller_started)
		return;
	/* server_stop woke the poller; it ends once the room is empty. */
	pthread_join(srv->poller, NULL);
	srv->poller_started = false;
	server_pool_end(srv);
}
