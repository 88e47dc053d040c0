/*
 * The upstream connection pool: a small array of idle connections under
 * one mutex.  A linear scan is the right tool at this size (tens of idle
 * connections, one short critical section per request); the bound keeps it
 * that way.
 *
 * An idle HTTP/1.1 connection has nothing to say until it is sent a
 * request.  One that has become readable holds either an end of stream (the
 * origin closed it) or stray bytes: an extra response, or the rest of a
 * body the proxy framed differently.  Handing it to the next client would
 * give that client someone else's bytes (issue 15, finding 5), so it is
 * closed instead: by net_pool_take before handing it out, and by
 * net_pool_sweep while it waits.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "glassproxy/util.h"
#include "net_int.h"

struct idle_conn {
	char key[NET_POOL_KEY_MAX];
	int fd;
	int64_t since_ms; /* when it became idle */
};

struct net_pool {
	struct sys *sys;
	pthread_mutex_t lock; /* guards idle[], count, pfds[] and dead[] */
	struct idle_conn *idle;
	size_t count, max_idle;
	/* net_pool_sweep's scratch, max_idle each, made once */
	struct pollfd *pfds;
	int *dead;
	int idle_timeout_ms;
};

int net_pool_new(struct sys *sys, size_t max_idle, int idle_timeout_ms,
		 struct net_pool **out)
{
	struct net_pool *pool = calloc(1, sizeof(*pool));

	if (!pool)
		return -ENOMEM;
	size_t n = max_idle ? max_idle : 1;

	pool->idle = calloc(n, sizeof(*pool->idle));
	pool->pfds = calloc(n, sizeof(*pool->pfds));
	pool->dead = calloc(n, sizeof(*pool->dead));
	if (!pool->idle || !pool->pfds || !pool->dead) {
		free(pool->idle);
		free(pool->pfds);
		free(pool->dead);
		free(pool);
		return -ENOMEM;
	}
	pool->sys = sys;
	pool->max_idle = max_idle;
	pool->idle_timeout_ms = idle_timeout_ms;
	pthread_mutex_init(&pool->lock, NULL);
	*out = pool;
	return 0;
}

void net_pool_free(struct net_pool *pool)
{
	if (!pool)
		return;
	for (size_t i = 0; i < pool->count; i++)
		sys_close(pool->sys, pool->idle[i].fd);
	pthread_mutex_destroy(&pool->lock);
	free(pool->idle);
	free(pool->pfds);
	free(pool->dead);
	free(pool);
}

/* Remove entry i (order does not matter: age is in since_ms). */
static int remove_at(struct net_pool *pool, size_t i)
{
	int fd = pool->idle[i].fd;

	pool->idle[i] = pool->idle[--pool->count];
	return fd;
}

/* Quiet: no bytes, no end of stream, no error since it was parked. */
static bool still_usable(struct sys *sys, int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return sys_poll(sys, &p, 1, 0) == 0;
}

/*
 * Under the lock: remove an idle connection for key and return it (or
 * -ENOENT).  With sweep, also move up to cap expired ones into stale[];
 * without, stop at the first match, so that a run of dead connections
 * costs one short scan each, not one of the whole pool.
 */
static int take_locked(struct net_pool *pool, const char *key, bool sweep,
		       int *stale, size_t *n_stale, size_t cap)
{
	int64_t now = sys_now_mono_ms(pool->sys);
	int found = -ENOENT;

	for (size_t i = pool->count; i-- > 0;) {
		struct idle_conn *c = &pool->idle[i];
		bool expired = now - c->since_ms >= pool->idle_timeout_ms;

		if (expired && sweep && *n_stale < cap) {
			stale[(*n_stale)++] = remove_at(pool, i);
			continue;
		}
		if (found < 0 && !expired && strcmp(c->key, key) == 0) {
			found = remove_at(pool, i);
			if (!sweep)
				break;
		}
	}
	return found;
}

/*
 * A loop, not a recursion per dead connection: with --max-idle-upstream
 * 65536 a recursion could overflow a worker's stack in a build that does
 * not turn the tail call into a jump (-O0, -O1).
 */
int net_pool_take(struct net_pool *pool, const char *key)
{
	for (bool first = true;; first = false) {
		int stale[16], found;
		size_t n_stale = 0;

		pthread_mutex_lock(&pool->lock);
		found = take_locked(pool, key, first, stale, &n_stale,
				    UTIL_ARRAY_LEN(stale));
		pthread_mutex_unlock(&pool->lock);

		/* Close outside the lock: close() can take a while on a busy
		 * socket. */
		for (size_t i = 0; i < n_stale; i++)
			sys_close(pool->sys, stale[i]);
		if (found < 0 || still_usable(pool->sys, found))
			return found;
		sys_close(pool->sys, found); /* then try the next one */
	}
}

size_t net_pool_sweep(struct net_pool *pool)
{
	int64_t now = sys_now_mono_ms(pool->sys);
	size_t n_dead = 0;
	int ready;

	pthread_mutex_lock(&pool->lock);
	/* One zero-timeout poll over every idle connection.  Under the lock,
	 * because a connection taken meanwhile could be closed and its number
	 * reused by another socket; the poll does not wait. */
	for (size_t i = 0; i < pool->count; i++)
		pool->pfds[i] = (struct pollfd){.fd = pool->idle[i].fd,
						.events = POLLIN};
	ready = pool->count ? sys_poll(pool->sys, pool->pfds,
				       (nfds_t)pool->count, 0)
			    : 0;
	for (size_t i = pool->count; i-- > 0;) {
		bool expired =
			now - pool->idle[i].since_ms >= pool->idle_timeout_ms;
		bool readable = ready > 0 && pool->pfds[i].revents != 0;

		if (expired || readable)
			pool->dead[n_dead++] = remove_at(pool, i);
	}
	pthread_mutex_unlock(&pool->lock);
	for (size_t i = 0; i < n_dead; i++)
		sys_close(pool->sys, pool->dead[i]);
	return n_dead;
}

void net_pool_put(struct net_pool *pool, const char *key, int fd)
{
	int evicted = -1;
	size_t slot;

	if (strlen(key) >= NET_POOL_KEY_MAX) {
		sys_close(pool->sys, fd);
		return;
	}
	pthread_mutex_lock(&pool->lock);
	/* max_idle under the lock: a reload may change it meanwhile. */
	if (pool->max_idle == 0) {
		pthread_mutex_unlock(&pool->lock);
		sys_close(pool->sys, fd);
		return;
	}
	if (pool->count == pool->max_idle) {
		size_t oldest = 0;
		for (size_t i = 1; i < pool->count; i++)
			if (pool->idle[i].since_ms <
			    pool->idle[oldest].since_ms)
				oldest = i;
		evicted = remove_at(pool, oldest);
	}
	slot = pool->count++;
	util_copy(pool->idle[slot].key, sizeof(pool->idle[slot].key), key,
		  strlen(key));
	pool->idle[slot].fd = fd;
	pool->idle[slot].since_ms = sys_now_mono_ms(pool->sys);
	pthread_mutex_unlock(&pool->lock);
	if (evicted >= 0)
		sys_close(pool->sys, evicted);
}

size_t net_pool_idle(struct net_pool *pool)
{
	size_t n;

	pthread_mutex_lock(&pool->lock);
	n = pool->count;
	pthread_mutex_unlock(&pool->lock);
	return n;
}

void net_pool_flush(struct net_pool *pool)
{
	/* Rare (a reload), so closing under the lock costs nobody much. */
	pthread_mutex_lock(&pool->lock);
	for (size_t i = 0; i < pool->count; i++)
		sys_close(pool->sys, pool->idle[i].fd);
	pool->count = 0;
	pthread_mutex_unlock(&pool->lock);
}

int net_pool_set_limits(struct net_pool *pool, size_t max_idle,
			int idle_timeout_ms)
{
	/* The idle list and net_pool_sweep's scratch grow or shrink as one. */
	size_t n = max_idle ? max_idle : 1;
	struct idle_conn *idle = calloc(n, sizeof(*idle));
	struct pollfd *pfds = calloc(n, sizeof(*pfds));
	int *dead = calloc(n, sizeof(*dead));

	if (!idle || !pfds || !dead) {
		free(idle);
		free(pfds);
		free(dead);
		return -ENOMEM;
	}
	pthread_mutex_lock(&pool->lock);
	/* Over the new bound: close the oldest, as net_pool_put() would. */
	while (pool->count > max_idle) {
		size_t oldest = 0;
		for (size_t i = 1; i < pool->count; i++)
			if (pool->idle[i].since_ms <
			    pool->idle[oldest].since_ms)
				oldest = i;
		sys_close(pool->sys, remove_at(pool, oldest));
	}
	memcpy(idle, pool->idle, pool->count * sizeof(*idle));
	free(pool->idle);
	free(pool->pfds);
	free(pool->dead);
	pool->idle = idle;
	pool->pfds = pfds;
	pool->dead = dead;
	pool->max_idle = max_idle;
	pool->idle_timeout_ms = idle_timeout_ms;
	pthread_mutex_unlock(&pool->lock);
	return 0;
}
