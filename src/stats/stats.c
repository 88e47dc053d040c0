/* The counters; see include/glassproxy/stats.h. */
#include "glassproxy/stats.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "glassproxy/util.h"

typedef atomic_uint_fast64_t counter;

/*
 * One slot of the rate history: the number of the period it counts
 * (seconds since start / STATS_RATE_SLOT_S) and its count.  A slot whose
 * period is not the one asked for is stale: it reads as zero and the
 * first request of the new period claims it.
 */
struct rate_slot {
	counter period;
	counter count;
};

struct stats {
	struct sys *sys;
	int64_t start_ms;
	counter connections_total, connections_active;
	counter requests[STATS_METHOD_COUNT];
	counter responses[STATS_CLASSES];
	counter bytes_in, bytes_out;
	counter tunnels_total, tunnels_active;
	counter denied[STATS_DENY_COUNT];
	counter upstream_errors[STATS_UP_COUNT];
	counter cache_hits, cache_misses, cache_revalidations;
	counter cache_stores, cache_evictions;
	counter cache_bytes_stored, cache_bytes_evicted;
	counter cache_size_bytes, cache_entries;
	struct rate_slot rate[STATS_RATE_SLOTS];
};

static const char *const method_names[STATS_METHOD_COUNT] = {
	"GET",	   "HEAD",  "POST",    "PUT",	"DELETE",
	"OPTIONS", "TRACE", "CONNECT", "PATCH", "other",
};
static const char *const deny_names[STATS_DENY_COUNT] = {"host", "client",
							 "port", "auth"};
static const char *const upstream_names[STATS_UP_COUNT] = {
	"unresolved", "refused", "connect_timeout", "unreachable",
	"timeout",    "reset",	 "bad_response",    "truncated",
};

const char *stats_method_name(enum stats_method m)
{
	return (unsigned)m < STATS_METHOD_COUNT ? method_names[m] : "other";
}

const char *stats_deny_name(enum stats_deny d)
{
	return (unsigned)d < STATS_DENY_COUNT ? deny_names[d] : "?";
}

const char *stats_upstream_name(enum stats_upstream u)
{
	return (unsigned)u < STATS_UP_COUNT ? upstream_names[u] : "?";
}

enum stats_method stats_method_of(const char *method)
{
	for (int i = 0; method && i < STATS_OTHER; i++)
		if (strcmp(method, method_names[i]) == 0)
			return (enum stats_method)i;
	return STATS_OTHER;
}

int stats_new(struct sys *sys, struct stats **out)
{
	struct stats *st = calloc(1, sizeof(*st));

	if (!st)
		return -ENOMEM;
	st->sys = sys;
	st->start_ms = sys_now_mono_ms(sys);
	*out = st;
	return 0;
}

void stats_free(struct stats *st)
{
	free(st);
}

static void add(counter *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static void sub(counter *c)
{
	atomic_fetch_sub_explicit(c, 1, memory_order_relaxed);
}

static uint64_t get(const counter *c)
{
	return atomic_load_explicit((counter *)c, memory_order_relaxed);
}

void stats_connection_open(struct stats *st)
{
	if (st)
		add(&st->connections_total, 1), add(&st->connections_active, 1);
}

void stats_connection_close(struct stats *st)
{
	if (st)
		sub(&st->connections_active);
}

static uint64_t period_now(const struct stats *st)
{
	int64_t ms = sys_now_mono_ms(st->sys) - st->start_ms;

	return ms > 0 ? (uint64_t)ms / 1000 / STATS_RATE_SLOT_S : 0;
}

/*
 * Count one request in the current period's slot.  Claiming a stale slot
 * is a compare-and-swap on its period; the thread that wins resets the
 * count.  A request counted by another thread between the claim and the
 * reset may be lost: the history is a chart, not an account (the
 * counters are exact).
 */
static void count_rate(struct stats *st)
{
	uint64_t period = period_now(st);
	struct rate_slot *slot = &st->rate[period % STATS_RATE_SLOTS];
	uint64_t seen = get(&slot->period);

	if (seen != period &&
	    atomic_compare_exchange_strong(&slot->period, &seen, period))
		atomic_store_explicit(&slot->count, 0, memory_order_relaxed);
	add(&slot->count, 1);
}

void stats_request(struct stats *st, const char *method, int status,
		   uint64_t bytes_in, uint64_t bytes_out)
{
	int cls = status >= 100 && status <= 599 ? status / 100 : 0;

	if (!st)
		return;
	add(&st->requests[stats_method_of(method)], 1);
	add(&st->responses[cls], 1);
	add(&st->bytes_in, bytes_in);
	add(&st->bytes_out, bytes_out);
	count_rate(st);
}

void stats_tunnel_open(struct stats *st)
{
	if (st)
		add(&st->tunnels_total, 1), add(&st->tunnels_active, 1);
}

void stats_tunnel_close(struct stats *st)
{
	if (st)
		sub(&st->tunnels_active);
}

void stats_denied(struct stats *st, enum stats_deny why)
{
	if (st && (unsigned)why < STATS_DENY_COUNT)
		add(&st->denied[why], 1);
}

void stats_upstream_error(struct stats *st, enum stats_upstream kind)
{
	if (st && (unsigned)kind < STATS_UP_COUNT)
		add(&st->upstream_errors[kind], 1);
}

void stats_cache_hit(struct stats *st)
{
	if (st)
		add(&st->cache_hits, 1);
}

void stats_cache_miss(struct stats *st)
{
	if (st)
		add(&st->cache_misses, 1);
}

void stats_cache_revalidated(struct stats *st)
{
	if (st)
		add(&st->cache_revalidations, 1);
}

void stats_cache_stored(struct stats *st, uint64_t bytes)
{
	if (st)
		add(&st->cache_stores, 1), add(&st->cache_bytes_stored, bytes);
}

void stats_cache_evicted(struct stats *st, uint64_t bytes)
{
	if (st)
		add(&st->cache_evictions, 1),
			add(&st->cache_bytes_evicted, bytes);
}

void stats_cache_size(struct stats *st, uint64_t bytes, uint64_t entries)
{
	if (!st)
		return;
	atomic_store_explicit(&st->cache_size_bytes, bytes,
			      memory_order_relaxed);
	atomic_store_explicit(&st->cache_entries, entries,
			      memory_order_relaxed);
}

static void copy_all(uint64_t *to, const counter *from, size_t n)
{
	for (size_t i = 0; i < n; i++)
		to[i] = get(&from[i]);
}

/* The history, oldest first, stale slots as zero. */
static void snapshot_rate(const struct stats *st, uint64_t *rate)
{
	uint64_t now = period_now(st);

	for (uint64_t i = 0; i < STATS_RATE_SLOTS; i++) {
		uint64_t want = now + i + 1 - STATS_RATE_SLOTS;
		const struct rate_slot *slot =
			&st->rate[want % STATS_RATE_SLOTS];

		rate[i] = now + i + 1 >= STATS_RATE_SLOTS &&
					  get(&slot->period) == want
				  ? get(&slot->count)
				  : 0;
	}
}

static uint64_t faults_injected(struct sys *sys)
{
	uint64_t n = 0;

	for (size_t i = 0; i < sys_fault_rule_count(sys); i++)
		n += sys_fault_hits(sys, i);
	return n;
}

void stats_snapshot(const struct stats *st, struct stats_snapshot *s)
{
	memset(s, 0, sizeof(*s));
	if (!st)
		return;
	s->uptime_s =
		(uint64_t)(sys_now_mono_ms(st->sys) - st->start_ms) / 1000;
	s->connections_total = get(&st->connections_total);
	s->connections_active = get(&st->connections_active);
	copy_all(s->requests, st->requests, STATS_METHOD_COUNT);
	for (int i = 0; i < STATS_METHOD_COUNT; i++)
		s->requests_total += s->requests[i];
	copy_all(s->responses, st->responses, STATS_CLASSES);
	s->bytes_in = get(&st->bytes_in);
	s->bytes_out = get(&st->bytes_out);
	s->tunnels_total = get(&st->tunnels_total);
	s->tunnels_active = get(&st->tunnels_active);
	copy_all(s->denied, st->denied, STATS_DENY_COUNT);
	copy_all(s->upstream_errors, st->upstream_errors, STATS_UP_COUNT);
	s->cache_hits = get(&st->cache_hits);
	s->cache_misses = get(&st->cache_misses);
	s->cache_revalidations = get(&st->cache_revalidations);
	s->cache_stores = get(&st->cache_stores);
	s->cache_evictions = get(&st->cache_evictions);
	s->cache_bytes_stored = get(&st->cache_bytes_stored);
	s->cache_bytes_evicted = get(&st->cache_bytes_evicted);
	s->cache_size_bytes = get(&st->cache_size_bytes);
	s->cache_entries = get(&st->cache_entries);
	s->faults_injected = faults_injected(st->sys);
	snapshot_rate(st, s->rate);
}
