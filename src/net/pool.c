/*
 * The upstream connection pool: a small array of idle connections under
 * one mutex.  A linear scan is the right tool at this size (tens of idle
 * connections, one short critical section per request); the bound keeps it
 * that way.
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
	pthread_mutex_t lock; /* guards idle[] and count */
	struct idle_conn *idle;
	size_t count, max_idle;
	int idle_timeout_ms;
};

int net_pool_new(struct sys *sys, size_t max_idle, int idle_timeout_ms,
		 struct net_pool **out)
{
	struct net_pool *pool = calloc(1, sizeof(*pool));

	if (!pool)
		return -ENOMEM;
	pool->idle = calloc(max_idle ? max_idle : 1, sizeof(*pool->idle));
	if (!pool->idle) {
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
	free(pool);
}

/* Remove entry i (order does not matter: age is in since_ms). */
static int remove_at(struct net_pool *pool, size_t i)
{
	int fd = pool->idle[i].fd;

	pool->idle[i] = pool->idle[--pool->count];
	return fd;
}

/*
 * An idle HTTP connection has nothing to say: if it is readable, the peer
 * closed it (or broke protocol), so it is no use to anyone.
 */
static bool still_usable(struct sys *sys, int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return sys_poll(sys, &p, 1, 0) == 0;
}

/*
 * Take the newest live entry for key out of the pool, closing the expired
 * ones met on the way (up to a handful, outside the lock).
 */
static int take_one(struct net_pool *pool, const char *key)
{
	int64_t now = sys_now_mono_ms(pool->sys);
	int stale[16], found = -ENOENT;
	size_t n_stale = 0;

	pthread_mutex_lock(&pool->lock);
	for (size_t i = pool->count; i-- > 0;) {
		struct idle_conn *c = &pool->idle[i];
		bool expired = now - c->since_ms >= pool->idle_timeout_ms;

		if (expired && n_stale < UTIL_ARRAY_LEN(stale)) {
			stale[n_stale++] = remove_at(pool, i);
			continue;
		}
		if (found < 0 && !expired && strcmp(c->key, key) == 0)
			found = remove_at(pool, i);
	}
	pthread_mutex_unlock(&pool->lock);

	/* Close outside the lock: close() can take a while on a busy socket. */
	for (size_t i = 0; i < n_stale; i++)
		sys_close(pool->sys, stale[i]);
	return found;
}

int net_pool_take(struct net_pool *pool, const char *key)
{
	/* A loop, not a recursion: the pool may hold thousands of dead ones. */
	for (;;) {
		int fd = take_one(pool, key);

		if (fd < 0 || still_usable(pool->sys, fd))
			return fd;
		sys_close(pool->sys, fd);
	}
}

void net_pool_put(struct net_pool *pool, const char *key, int fd)
{
	int evicted = -1;
	size_t slot;

	if (pool->max_idle == 0 || strlen(key) >= NET_POOL_KEY_MAX) {
		sys_close(pool->sys, fd);
		return;
	}
	pthread_mutex_lock(&pool->lock);
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
	struct idle_conn *fresh =
		calloc(max_idle ? max_idle : 1, sizeof(*fresh));

	if (!fresh)
		return -ENOMEM;
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
	memcpy(fresh, pool->idle, pool->count * sizeof(*fresh));
	free(pool->idle);
	pool->idle = fresh;
	pool->max_idle = max_idle;
	pool->idle_timeout_ms = idle_timeout_ms;
	pthread_mutex_unlock(&pool->lock);
	return 0;
}
