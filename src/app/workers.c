/*
 * The worker pool (issue 13): the threads that serve the requests the
 * waiting room (waitroom.c) queues, each with the plain blocking request
 * path, and the rule for how many serve at once.
 *
 * The active few.  A keep-alive hit costs the proxy some 20 us of CPU, and
 * when each request wakes a sleeping worker (a futex call each way and a
 * context switch) the hand-over costs about as much again.  With only a
 * few workers serving at once, each finds the next request already queued
 * when it finishes and never sleeps: on the 2-core bench machine, 4
 * serving workers gave 70-80k hits/s at 0.17 CPU s per 10k, 32 gave 44k
 * at 0.29.  So at most active_cap workers serve at once: ACTIVE_PER_CORE
 * per core (active_base), plus one for each worker that cannot use a core
 * just now, up to --workers:
 *
 *   - a worker waiting on its origin or parent is "away" (the proxy's
 *     upstream hook says when, proxy.h) and does not count;
 *   - a worker that has held one connection for STUCK_MS or more (a slow
 *     client, a big body, a collapsed cache fill) is counted by the
 *     poller's look (server_pool_adjust), which lets one more serve for
 *     each.  Go's scheduler does the same for a thread stuck in a system
 *     call.
 *
 * Idle workers wait on an idle stack, each on a condition of its own, and
 * a wake goes to the one that went idle last: its stack and caches are
 * the warmest, and the others stay asleep.  A worker is woken only for a
 * free place (working - away + waking < active_cap), so a burst does not
 * wake the whole stack for one request each.
 *
 * Spare workers end.  After a burst (many slow origins at once, a wave of
 * new clients) the pool may hold up to --workers threads, each with its
 * buffers and the stack pages it touched.  A worker idle for
 * --worker-idle-timeout ends, down to active_base threads besides tunnels,
 * as Apache's MaxSpareThreads trims its pool; the next burst starts new
 * ones (a thread costs tens of microseconds to start).  The coldest goes
 * first: the bottom of the idle stack, which LIFO wakes reach last.
 *
 * A CONNECT tunnel keeps the thread it started on for its whole life (its
 * relay is src/tunnel's blocking two-socket loop): the thread leaves the
 * pool's count when the tunnel begins, the pool may start another, and
 * the thread ends with its tunnel if the pool is whole without it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "app/server_int.h"

#define WORKER_STACK	(512 * 1024) /* big buffers are on the heap */
#define ACTIVE_PER_CORE 2
#define STUCK_MS	20

/* This thread's pool record, if it is a pool worker (see tunnel_begins). */
static _Thread_local struct pool_member *my_member;
static _Thread_local bool tunnel_thread;

static void spawn_worker(struct server *srv);

/* ---- counting (all under pool_lock) ---- */

/* Workers that hold a slot and could use a core now. */
static int active_workers(const struct server *srv)
{
	return srv->working - srv->away;
}

/*
 * Is there a place for one more worker (woken ones counted)?  Both
 * bounds: the active few, and --workers for all requests in progress,
 * those away included.
 */
static bool has_place(const struct server *srv, int waking)
{
	return active_workers(srv) + waking < srv->active_cap &&
	       srv->working + waking < srv->opts.workers;
}

/* May one more worker take a queued slot? */
static bool may_serve(const struct server *srv)
{
	return srv->queue_head && has_place(srv, 0);
}

/*
 * The pool grows on demand, as Apache's does: one more thread when more
 * requests wait than workers are idle, woken or starting, up to active_cap
 * threads besides those in tunnels or away, and never past --workers
 * besides those in tunnels.  The new thread is counted now (so two callers
 * never both start one) and started by the caller, after the unlock.
 */
static bool want_worker(struct server *srv)
{
	if (!srv->pool_open || srv->pool_ending ||
	    srv->queued <= srv->idle_workers + srv->starting + srv->waking ||
	    srv->threads - srv->retiring - srv->tunnels - srv->away >=
		    srv->active_cap ||
	    srv->threads - srv->tunnels >= srv->opts.workers)
		return false;
	srv->threads++;
	srv->starting++;
	return true;
}

/* m takes the oldest queued slot (NULL: none). */
static struct worker_slot *member_take(struct server *srv,
				       struct pool_member *m)
{
	struct worker_slot *slot = server_queue_pop_locked(srv);

	if (slot) {
		m->serving = true;
		m->since_ms = sys_now_mono_ms(srv->sys);
		srv->working++;
	}
	return slot;
}

/* m no longer holds a slot (done, or a tunnel now). */
static void member_release(struct server *srv, struct pool_member *m)
{
	if (m->serving) {
		m->serving = false;
		srv->working--;
	}
}

/* m, woken, runs (no longer counted in waking). */
static void member_awake(struct server *srv, struct pool_member *m)
{
	if (m->woken) {
		m->woken = false;
		srv->waking--;
	}
}

/* ---- the idle stack ---- */

static void idle_push(struct server *srv, struct pool_member *m)
{
	m->idle = true;
	m->idle_ms = sys_now_mono_ms(srv->sys);
	m->idle_up = NULL;
	m->idle_down = srv->idle_top;
	if (m->idle_down)
		m->idle_down->idle_up = m;
	srv->idle_top = m;
	srv->idle_workers++;
}

static void idle_remove(struct server *srv, struct pool_member *m)
{
	if (!m->idle)
		return;
	m->idle = false;
	if (m->idle_up)
		m->idle_up->idle_down = m->idle_down;
	else
		srv->idle_top = m->idle_down;
	if (m->idle_down)
		m->idle_down->idle_up = m->idle_up;
	srv->idle_workers--;
}

struct pool_call server_pool_call_locked(struct server *srv)
{
	struct pool_call c = {.wake = NULL, .spawn = want_worker(srv)};

	if (srv->queue_head && has_place(srv, srv->waking)) {
		c.wake = srv->idle_top; /* the last to go idle */
		if (c.wake) {
			idle_remove(srv, c.wake);
			c.wake->woken = true;
			srv->waking++;
		}
	}
	return c;
}

void server_pool_answer(struct server *srv, struct pool_call c)
{
	/* Safe after the unlock: records outlive their threads. */
	if (c.wake)
		pthread_cond_signal(&c.wake->wake);
	if (c.spawn)
		spawn_worker(srv);
}

/* Under no lock: wake or start workers while there is room for them. */
static void call_workers(struct server *srv)
{
	for (int i = 0; i < srv->opts.workers; i++) {
		struct pool_call call;

		pthread_mutex_lock(&srv->pool_lock);
		call = server_pool_call_locked(srv);
		pthread_mutex_unlock(&srv->pool_lock);
		if (!call.wake && !call.spawn)
			return;
		server_pool_answer(srv, call);
	}
}

/* ---- the records ---- */

struct pool_member *server_pool_join(struct server *srv)
{
	struct pool_member *m;

	pthread_mutex_lock(&srv->pool_lock);
	m = srv->spares;
	if (m)
		srv->spares = m->next;
	pthread_mutex_unlock(&srv->pool_lock);
	if (!m) {
		m = calloc(1, sizeof(*m));
		if (!m)
			return NULL;
		pthread_cond_init(&m->wake, NULL);
	}
	m->prev = NULL;
	m->serving = m->starting = m->idle = m->woken = m->retire = false;
	m->away = false;
	pthread_mutex_lock(&srv->pool_lock);
	m->next = srv->members;
	if (m->next)
		m->next->prev = m;
	srv->members = m;
	pthread_mutex_unlock(&srv->pool_lock);
	return m;
}

void server_pool_leave(struct server *srv, struct pool_member *m)
{
	pthread_mutex_lock(&srv->pool_lock);
	member_release(srv, m);
	idle_remove(srv, m);
	member_awake(srv, m);
	if (m->away)
		srv->away--;
	m->away = false;
	if (m->starting)
		srv->starting--;
	m->starting = false;
	if (m->retire)
		srv->retiring--;
	m->retire = false;
	if (m->prev)
		m->prev->next = m->next;
	else
		srv->members = m->next;
	if (m->next)
		m->next->prev = m->prev;
	m->next = srv->spares;
	srv->spares = m;
	pthread_mutex_unlock(&srv->pool_lock);
}

void server_pool_free(struct server *srv)
{
	while (srv->spares) {
		struct pool_member *next = srv->spares->next;

		pthread_cond_destroy(&srv->spares->wake);
		free(srv->spares);
		srv->spares = next;
	}
}

struct worker_slot *server_pool_try_take(struct server *srv,
					 struct pool_member *m)
{
	struct worker_slot *slot = NULL;

	pthread_mutex_lock(&srv->pool_lock);
	if (may_serve(srv))
		slot = member_take(srv, m);
	pthread_mutex_unlock(&srv->pool_lock);
	return slot;
}

void server_pool_rest(struct server *srv, struct pool_member *m)
{
	pthread_mutex_lock(&srv->pool_lock);
	idle_push(srv, m);
	pthread_mutex_unlock(&srv->pool_lock);
}

void server_pool_release(struct server *srv, struct pool_member *m)
{
	pthread_mutex_lock(&srv->pool_lock);
	member_release(srv, m);
	pthread_mutex_unlock(&srv->pool_lock);
}

/*
 * Twice per request that goes upstream, so without the lock: the counts
 * are atomic.  Only a worker going away while requests wait takes it, to
 * give its place to one of them at once (call_workers); taking pool_lock
 * on every call cost a miss 1.4 more futex calls.
 */
void server_pool_set_away(struct server *srv, struct pool_member *m, bool away)
{
	if (m->away == away)
		return;
	m->away = away;
	srv->away += away ? 1 : -1;
	if (away && srv->queued > 0)
		call_workers(srv); /* its place, to a queued request */
}

/* ---- the poller's look ---- */

/* Under pool_lock: how many may serve now (see "The active few"). */
static int active_cap_at(struct server *srv, int64_t now)
{
	int cap = srv->active_base;

	for (struct pool_member *m = srv->members; m; m = m->next)
		if (m->serving && !m->away && now - m->since_ms >= STUCK_MS)
			cap++;
	return cap < srv->opts.workers ? cap : srv->opts.workers;
}

bool server_pool_wants_look(struct server *srv)
{
	bool wants;

	pthread_mutex_lock(&srv->pool_lock);
	wants = srv->queued > 0 || active_workers(srv) >= srv->active_cap;
	pthread_mutex_unlock(&srv->pool_lock);
	return wants;
}

bool server_pool_adjust(struct server *srv)
{
	int64_t now = sys_now_mono_ms(srv->sys);
	bool waiting;

	if (now < srv->next_cap_ms)
		return false;
	srv->next_cap_ms = now + SERVER_POOL_LOOK_MS;
	pthread_mutex_lock(&srv->pool_lock);
	srv->active_cap = active_cap_at(srv, now);
	waiting = srv->queue_head != NULL;
	pthread_mutex_unlock(&srv->pool_lock);
	if (waiting)
		call_workers(srv);
	return true;
}

/* ---- spare workers end (see the top) ---- */

/* Threads that serve or may serve: not tunnels, not told to end. */
static int pool_threads(const struct server *srv)
{
	return srv->threads - srv->tunnels - srv->retiring;
}

/* Under pool_lock: tell the idle past the timeout to end, coldest first.
 * Rare, so the signal goes under the lock. */
static int retire_spares_locked(struct server *srv, int64_t now)
{
	struct pool_member *m = srv->idle_top, *up;
	int told = 0;

	while (m && m->idle_down)
		m = m->idle_down; /* the bottom: idle the longest */
	for (; m && pool_threads(srv) > srv->active_base &&
	       now - m->idle_ms >= srv->opts.worker_idle_timeout_ms;
	     m = up) {
		up = m->idle_up;
		idle_remove(srv, m);
		m->retire = true;
		srv->retiring++;
		pthread_cond_signal(&m->wake);
		told++;
	}
	return told;
}

int server_pool_retire(struct server *srv)
{
	int64_t now = sys_now_mono_ms(srv->sys);
	int told;

	if (srv->opts.worker_idle_timeout_ms <= 0 || now < srv->next_retire_ms)
		return 0;
	srv->next_retire_ms = now + SERVER_RETIRE_LOOK_MS;
	pthread_mutex_lock(&srv->pool_lock);
	told = retire_spares_locked(srv, now);
	pthread_mutex_unlock(&srv->pool_lock);
	return told;
}

/* ---- the threads ---- */

/*
 * Let the last slot go and wait for a queued one this worker may serve;
 * NULL when the pool ends or this worker is told to (a spare).
 */
static struct worker_slot *next_slot(struct server *srv, struct pool_member *me)
{
	struct worker_slot *slot = NULL;

	pthread_mutex_lock(&srv->pool_lock);
	member_release(srv, me);
	if (me->starting) {
		me->starting = false;
		srv->starting--;
	}
	while (!may_serve(srv) && !srv->pool_ending && !me->retire) {
		idle_push(srv, me);
		pthread_cond_wait(&me->wake, &srv->pool_lock);
		idle_remove(srv, me); /* woken by itself: still on the stack */
		member_awake(srv, me);
	}
	if (may_serve(srv)) {
		if (me->retire) {
			/* Work came while it was leaving: it stays and
			 * serves, rather than end while the request waits
			 * for a thread to start. */
			me->retire = false;
			srv->retiring--;
		}
		slot = member_take(srv, me);
	}
	pthread_mutex_unlock(&srv->pool_lock);
	return slot;
}

/* After a tunnel: its thread ends when the pool is whole without it. */
static bool tunnel_thread_ends(struct server *srv)
{
	bool ends;

	if (!tunnel_thread)
		return false;
	tunnel_thread = false;
	pthread_mutex_lock(&srv->pool_lock);
	srv->tunnels--;
	/* The same two bounds as want_worker's. */
	ends = srv->threads - srv->tunnels > srv->opts.workers ||
	       srv->threads - srv->retiring - srv->tunnels - srv->away >
		       srv->active_cap;
	pthread_mutex_unlock(&srv->pool_lock);
	return ends;
}

/* A worker thread is gone: its record back, the stop told. */
static void worker_ends(struct server *srv, struct pool_member *me)
{
	my_member = NULL;
	if (me)
		server_pool_leave(srv, me);
	pthread_mutex_lock(&srv->pool_lock);
	if (!me)
		srv->starting--; /* want_worker counted it */
	srv->threads--;
	pthread_cond_broadcast(&srv->threads_cv);
	pthread_mutex_unlock(&srv->pool_lock);
}

static void *worker_main(void *arg)
{
	struct server *srv = arg;
	struct proxy_worker *w = NULL;
	struct pool_member *me = server_pool_join(srv);
	bool ending = false;

	if (me) {
		me->starting = true; /* counted by want_worker */
		my_member = me;
	}
	if (!me || proxy_worker_new(&w) < 0)
		log_event(srv->log, LOG_ERROR, "a worker is out of memory");
	while (w && !ending) {
		struct worker_slot *slot = next_slot(srv, me);

		if (!slot)
			break; /* the pool ends, or this spare */
		server_serve_slot(srv, slot, w);
		ending = tunnel_thread_ends(srv);
	}
	proxy_worker_free(w);
	worker_ends(srv, me);
	return NULL;
}

/* Start a worker want_worker() counted. */
static void spawn_worker(struct server *srv)
{
	pthread_attr_t attr;
	pthread_t thread;
	int rc;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, WORKER_STACK);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&thread, &attr, worker_main, srv);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		pthread_mutex_lock(&srv->pool_lock);
		srv->threads--;
		srv->starting--;
		pthread_cond_broadcast(&srv->threads_cv);
		pthread_mutex_unlock(&srv->pool_lock);
		log_event(srv->log, LOG_ERROR, "cannot start a worker: %s",
			  strerror(rc));
	}
}

/* ---- what the proxy tells (its hooks) ---- */

/*
 * This worker becomes the tunnel's thread and leaves the pool's count, so
 * the pool may start another for queued requests.
 */
static void tunnel_begins(void *arg)
{
	struct server *srv = arg;
	struct pool_call call;

	if (!my_member || tunnel_thread)
		return;
	tunnel_thread = true;
	pthread_mutex_lock(&srv->pool_lock);
	member_release(srv, my_member); /* a tunnel is not a stuck worker */
	srv->tunnels++;
	call = server_pool_call_locked(srv);
	pthread_mutex_unlock(&srv->pool_lock);
	server_pool_answer(srv, call);
}

/* This worker waits on an origin (away), or is back from it. */
static void upstream_wait(void *arg, bool begins)
{
	if (my_member && !tunnel_thread)
		server_pool_set_away(arg, my_member, begins);
}

void server_pool_open(struct server *srv)
{
	const struct proxy_hooks hooks = {
		.tunnel_begins = tunnel_begins,
		.upstream = upstream_wait,
		.arg = srv,
	};

	proxy_set_hooks(srv->px, &hooks);
	pthread_mutex_lock(&srv->pool_lock);
	srv->pool_open = true;
	pthread_mutex_unlock(&srv->pool_lock);
}

void server_pool_size(struct server *srv)
{
	srv->active_base = ACTIVE_PER_CORE * sys_cpu_count();
	if (srv->active_base > srv->opts.workers)
		srv->active_base = srv->opts.workers;
	srv->active_cap = srv->active_base;
}

void server_pool_end(struct server *srv)
{
	pthread_mutex_lock(&srv->pool_lock);
	srv->pool_ending = true;
	for (struct pool_member *m = srv->idle_top; m; m = m->idle_down)
		pthread_cond_signal(&m->wake);
	while (srv->threads > 0)
		pthread_cond_wait(&srv->threads_cv, &srv->pool_lock);
	pthread_mutex_unlock(&srv->pool_lock);
}
