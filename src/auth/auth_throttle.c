/*
 * Failed-attempt throttle: a fixed-size, 4-way set-associative table of
 * (client key -> failures in the current window) under one mutex.  Fixed
 * size because the clients are remote: a table that grew per address
 * would be a memory attack of its own.  When a set is full, the entry
 * whose window began longest ago gives way.
 */
#include "auth_int.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define WAYS 4

struct entry {
	uint8_t key[16];
	bool used;
	unsigned failures;
	int64_t window_start;
};

struct auth_throttle {
	pthread_mutex_t lock; /* guards entries[] */
	struct entry *entries;
	size_t nsets;
	unsigned max_failures;
	int64_t window_ms;
	uint64_t seed;
};

int auth_throttle_key(const struct sockaddr *sa, uint8_t key[16])
{
	memset(key, 0, 16);
	if (sa == NULL)
		return -EINVAL;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &in->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};
		const uint8_t *a =
			((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		/* v4-mapped: the IPv4 address; otherwise the /64, which
		 * one host may own entirely. */
		memcpy(key, a, memcmp(a, mapped, 12) == 0 ? 16 : 8);
		return 0;
	}
	return -EINVAL;
}

int auth_throttle_new(unsigned max_failures, int64_t window_ms, size_t slots,
		      uint64_t seed, struct auth_throttle **out)
{
	struct auth_throttle *t;

	*out = NULL;
	if (max_failures == 0 || window_ms <= 0 || slots == 0 ||
	    slots > (1u << 24))
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return -ENOMEM;
	t->nsets = (slots + WAYS - 1) / WAYS;
	t->entries = calloc(t->nsets * WAYS, sizeof(*t->entries));
	if (t->entries == NULL) {
		free(t);
		return -ENOMEM;
	}
	t->max_failures = max_failures;
	t->window_ms = window_ms;
	t->seed = seed;
	pthread_mutex_init(&t->lock, NULL);
	*out = t;
	return 0;
}

void auth_throttle_free(struct auth_throttle *t)
{
	if (t == NULL)
		return;
	pthread_mutex_destroy(&t->lock);
	free(t->entries);
	free(t);
}

/* The first way of key's set: FNV-1a over the seed and the key. */
static struct entry *set_of(struct auth_throttle *t, const uint8_t key[16])
{
	uint64_t h = 14695981039346656037ull ^ t->seed;

	for (unsigned i = 0; i < 16; i++) {
		h ^= key[i];
		h *= 1099511628211ull;
	}
	h ^= h >> 29;
	return &t->entries[(h % t->nsets) * WAYS];
}

/* Under the lock: key's live entry, or NULL.  An expired one is freed. */
static struct entry *find(struct auth_throttle *t, const uint8_t key[16],
			  int64_t now)
{
	struct entry *set = set_of(t, key);

	for (unsigned w = 0; w < WAYS; w++) {
		struct entry *e = &set[w];
		if (!e->used || memcmp(e->key, key, 16) != 0)
			continue;
		if (now - e->window_start >= t->window_ms) {
			e->used = false; /* its window is over */
			return NULL;
		}
		return e;
	}
	return NULL;
}

int64_t auth_throttle_check(struct auth_throttle *t,
			    const struct sockaddr *addr, int64_t now_ms)
{
	uint8_t key[16];
	int64_t wait = 0;

	if (auth_throttle_key(addr, key) < 0)
		return 0; /* nothing to count by; the ACL judged the peer */
	pthread_mutex_lock(&t->lock);
	struct entry *e = find(t, key, now_ms);
	if (e && e->failures >= t->max_failures)
		wait = e->window_start + t->window_ms - now_ms;
	pthread_mutex_unlock(&t->lock);
	return wait;
}

/* Under the lock: a free way of key's set, or the oldest window's. */
static struct entry *claim(struct auth_throttle *t, const uint8_t key[16],
			   int64_t now)
{
	struct entry *set = set_of(t, key), *victim = &set[0];

	for (unsigned w = 0; w < WAYS; w++) {
		struct entry *e = &set[w];
		if (!e->used || now - e->window_start >= t->window_ms) {
			victim = e;
			break;
		}
		if (e->window_start < victim->window_start)
			victim = e;
	}
	memcpy(victim->key, key, 16);
	victim->used = true;
	victim->failures = 0;
	victim->window_start = now;
	return victim;
}

void auth_throttle_fail(struct auth_throttle *t, const struct sockaddr *addr,
			int64_t now_ms)
{
	uint8_t key[16];

	if (auth_throttle_key(addr, key) < 0)
		return;
	pthread_mutex_lock(&t->lock);
	struct entry *e = find(t, key, now_ms);
	if (e == NULL)
		e = claim(t, key, now_ms);
	if (e->failures < UINT32_MAX)
		e->failures++;
	pthread_mutex_unlock(&t->lock);
}
