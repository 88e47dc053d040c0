/*
 * server internals shared by server.c (the listener, the connection
 * records, the stop), waitroom.c (the poller and the ready queue) and
 * workers.c (the worker pool), and driven directly by tests/test_app.c,
 * so the shutdown wait, the waiting room's state machine and the pool's
 * rules can be tested on the mock sys without threads.  Not part of the
 * public API.
 */
#ifndef GLASSPROXY_APP_SERVER_INT_H
#define GLASSPROXY_APP_SERVER_INT_H

#include <pthread.h>
#include <stdint.h>

#include "glassproxy/server.h"

/*
 * Where an open connection is (worker_slot.where).  Atomic: a worker
 * parks a slot (-> WAITING) under server.lock, the poller queues it and a
 * worker takes it under server.pool_lock, and the poller's look for
 * expired waits reads every slot's under server.lock.
 */
enum slot_where {
	SLOT_CLAIMED, /* accepted, not yet in the waiting room */
	SLOT_WAITING, /* in the waiting room: armed in epoll, or expiring */
	SLOT_QUEUED,  /* a request head is here: waits for a worker */
	SLOT_SERVING, /* a worker runs its requests */
};

/* One open client connection: --max-connections bounds how many exist. */
struct worker_slot {
	struct server *srv;
	int fd;
	struct sys_addr peer;
	char ip[NET_ADDR_TEXT_MAX]; /* the peer's address, for per-client */
	struct worker_slot *prev, *next; /* server.slots, under the lock */
	/* The waiting room (waitroom.c). */
	struct proxy_client *pc;
	_Atomic(enum slot_where) where;
	bool head_begun;     /* the current wait's deadline is the head's */
	bool registered;     /* in the epoll set (ADD done, no DEL since) */
	int64_t deadline_ms; /* SLOT_WAITING: when the wait ends */
	int64_t queued_ms;   /* SLOT_QUEUED: since when */
	struct worker_slot *queue_next;
};

struct server {
	struct sys *sys;
	struct log *log;
	struct proxy *px;
	struct server_options opts; /* workers etc. resolved in server_open */
	long nofile;		    /* RLIMIT_NOFILE after raising, or <0 */
	int listen_fd;
	char address[NET_ADDR_TEXT_MAX];

	/* Readable once no connection is left after a stop (wake_waiter). */
	int wake[2];

	pthread_mutex_t lock; /* guards everything down to pool_lock */
	struct worker_slot *slots; /* every open connection */
	int active;		   /* how many */
	bool stopping;
	int grace_ms; /* a reload may change it */

	/* The waiting room: -1 / not started in --serial mode. */
	int epfd;
	int room_wake[2]; /* a stop wakes the poller through it */
	bool poller_started;
	pthread_t poller;
	int64_t next_expiry_ms; /* the poller's own: when it next looks */

	/*
	 * The ready queue and the pool, under a lock of their own: the
	 * hand-over from poller to worker then never waits for a park, an
	 * accept or a look for expired waits, which take the one above.
	 */
	pthread_mutex_t pool_lock; /* guards everything below */
	struct worker_slot *queue_head, *queue_tail;
	_Atomic int queued; /* read without the lock by server_pool_set_away */
	pthread_cond_t threads_cv; /* a worker thread ended */
	int threads;		   /* worker threads alive (tunnels too) */
	int idle_workers;	   /* of them, on the idle stack */
	int tunnels;		   /* of them, relaying a tunnel */
	bool pool_open;	  /* workers may start (not in unit tests) */
	bool pool_ending;
	/*
	 * How many workers serve at once (workers.c, "The active few"):
	 * active_base (ACTIVE_PER_CORE per core), plus one for each worker
	 * stuck in its connection, up to --workers; those away at an origin
	 * do not count against it.
	 */
	int working;		     /* workers serving a slot now */
	int starting;		     /* threads started, not yet idle */
	int waking;		     /* idle workers woken, not yet running */
	_Atomic int away;	     /* workers waiting on an origin */
	int active_base, active_cap; /* active_cap: how many may */
	struct pool_member *members; /* the live workers' records */
	struct pool_member *spares;  /* records of ended threads, reused */
	struct pool_member *idle_top; /* the idle stack, last idle on top */
	int retiring;	     /* idle workers told to end, not yet gone */
	int64_t next_cap_ms; /* the poller's own: when it next looks */
	int64_t next_retire_ms; /* the poller's own: its next spare look */
};

/*
 * A pool worker's record, under pool_lock.  Records live until the pool
 * stops (an ended thread's is kept in server.spares for the next), so a
 * wake signalled after the unlock never reaches a destroyed condition.
 */
struct pool_member {
	struct pool_member *prev, *next;	   /* members or spares */
	struct pool_member *idle_up, *idle_down; /* on the idle stack */
	pthread_cond_t wake; /* its own: each wake goes to one chosen worker */
	bool idle;	     /* on the idle stack */
	bool serving;	     /* it holds a slot (counted in working) */
	bool starting;	     /* counted in server.starting */
	bool woken;	     /* counted in server.waking */
	bool retire;	     /* told to end (counted in server.retiring) */
	_Atomic bool away;   /* counted in server.away (set by its thread) */
	int64_t since_ms;    /* serving since (monotonic) */
	int64_t idle_ms;     /* idle since (monotonic), while idle */
};

/* Claim a connection record for fd; NULL when all are busy or a stop has
 * begun. */
struct worker_slot *server_slot_claim(struct server *srv, int fd,
				      const struct sys_addr *peer);

/* server_slot_claim, or a 503 (and a log line) when none is free. */
struct worker_slot *server_claim_or_refuse(struct server *srv, int fd,
					   const struct sys_addr *peer);

/* Give a slot back (its connection closed); wakes a stop waiting for the
 * last. */
void server_slot_end(struct server *srv, struct worker_slot *slot);

/*
 * Wait until no slot is in use, or until the monotonic clock reaches
 * deadline_ms (a negative deadline: no limit).  Returns 0 when none is
 * left, -ETIMEDOUT when the deadline passed first.
 */
int server_wait_workers(struct server *srv, int64_t deadline_ms);

/* ---- waitroom.c ---- */

/* The epoll descriptor and the poller's wake pipe (no thread). */
int server_room_open(struct server *srv);
void server_room_close(struct server *srv);
/* An accepted connection: its record, the ACL, into the waiting room.
 * Closes fd itself when it cannot. */
void server_admit(struct server *srv, int fd, const struct sys_addr *peer);
/* One round of the poller: wait up to timeout_ms, take what arrived,
 * expire waits; false once a stop has emptied the room. */
bool server_room_round(struct server *srv, int timeout_ms);
/* The ready queue: take its oldest slot (NULL: empty); its length. */
struct worker_slot *server_queue_take(struct server *srv);
int server_queue_length(struct server *srv);
/* What a worker does with a slot it took from the queue. */
void server_serve_slot(struct server *srv, struct worker_slot *slot,
		       struct proxy_worker *w);
/* Start the poller and the pool; stop and join them (after the wait). */
int server_room_start(struct server *srv);
void server_room_stop(struct server *srv);
/* The oldest queued slot, now SERVING (NULL: none); under pool_lock. */
struct worker_slot *server_queue_pop_locked(struct server *srv);

/* ---- workers.c: the pool ---- */

/* How often the poller looks at the pool while requests wait. */
#define SERVER_POOL_LOOK_MS 2

/* What to do, after the unlock, for work that a worker could now take. */
struct pool_call {
	struct pool_member *wake; /* this idle worker */
	bool spawn;		  /* start one more (counted already) */
};

/*
 * Under pool_lock, after a change that may let one more worker serve (a
 * slot queued, a worker that stopped counting): whom to wake, or whether
 * to start a worker.  server_pool_answer acts on it after the unlock: a
 * worker woken under the lock would at once block on it again (a futex
 * call each way, per request).
 */
struct pool_call server_pool_call_locked(struct server *srv);
void server_pool_answer(struct server *srv, struct pool_call call);

/*
 * The poller's look at the pool: the number of workers that may serve at
 * once becomes active_base plus those stuck in one connection; queued
 * requests get the workers that allows.  Looks at most once per
 * SERVER_POOL_LOOK_MS (false: too soon, nothing looked at).
 */
bool server_pool_adjust(struct server *srv);
/*
 * Should the poller look again within SERVER_POOL_LOOK_MS, even if
 * nothing arrives?  While requests wait, and while the few that may serve
 * are all serving: the accept thread can queue a head without waking the
 * poller, and those workers may all be stuck.
 */
bool server_pool_wants_look(struct server *srv);

/*
 * The poller's look for spare workers (workers.c, "Spare workers end"):
 * idle ones past --worker-idle-timeout are told to end, the coldest first,
 * down to active_base threads besides tunnels.  At most once per
 * SERVER_RETIRE_LOOK_MS; returns how many it told.
 */
#define SERVER_RETIRE_LOOK_MS 250
int server_pool_retire(struct server *srv);

/*
 * A worker's hold on the pool: its record (NULL: out of memory), a queued
 * slot if it may take one (member->serving then), away at an origin or
 * back, the slot let go, the record given back.  Tests call them without
 * threads; server_pool_free frees the kept records once no thread is left.
 */
struct pool_member *server_pool_join(struct server *srv);
struct worker_slot *server_pool_try_take(struct server *srv,
					 struct pool_member *m);
void server_pool_set_away(struct server *srv, struct pool_member *m,
			  bool away);
void server_pool_release(struct server *srv, struct pool_member *m);
void server_pool_leave(struct server *srv, struct pool_member *m);
/* What a worker with nothing to serve does before it sleeps: onto the idle
 * stack (next_slot's first half, for the tests). */
void server_pool_rest(struct server *srv, struct pool_member *m);
void server_pool_free(struct server *srv);

/* active_base from the cores (at room open); the proxy's hooks and the
 * first workers allowed (at start); the end: every worker thread gone. */
void server_pool_size(struct server *srv);
void server_pool_open(struct server *srv);
void server_pool_end(struct server *srv);

#endif
