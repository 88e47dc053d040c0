/*
 * The snapshot as Prometheus text, JSON and a one-line summary.  Pure:
 * the same snapshot always gives the same bytes (a unit test checks the
 * exposition grammar line by line).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

#include "glassproxy/stats.h"
#include "glassproxy/util.h"

/* Text appended into a caller's buffer; `full` once something did not fit. */
struct out {
	char *buf;
	size_t cap, len;
	bool full;
};

static void put(struct out *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->full)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->cap - o->len) {
		o->full = true;
		o->buf[o->len] = '\0';
		return;
	}
	o->len += (size_t)n;
}

static int finish(struct out *o)
{
	return o->full ? -ENOSPC : (int)o->len;
}

/* ---- Prometheus ---- */

static void family(struct out *o, const char *name, const char *type,
		   const char *help)
{
	put(o, "# HELP glassproxy_%s %s\n# TYPE glassproxy_%s %s\n", name, help,
	    name, type);
}

static void metric(struct out *o, const char *name, const char *type,
		   const char *help, uint64_t value)
{
	family(o, name, type, help);
	put(o, "glassproxy_%s %llu\n", name, (unsigned long long)value);
}

static void labelled(struct out *o, const char *name, const char *label,
		     const char *value, uint64_t n)
{
	put(o, "glassproxy_%s{%s=\"%s\"} %llu\n", name, label, value,
	    (unsigned long long)n);
}

static void prometheus_requests(struct out *o, const struct stats_snapshot *s)
{
	static const char *const classes[STATS_CLASSES] = {
		"none", "1xx", "2xx", "3xx", "4xx", "5xx"};

	family(o, "requests_total", "counter",
	       "Requests and tunnels finished, by method.");
	for (int i = 0; i < STATS_METHOD_COUNT; i++)
		labelled(o, "requests_total", "method",
			 stats_method_name((enum stats_method)i),
			 s->requests[i]);
	family(o, "responses_total", "counter",
	       "Requests finished, by the status class the client got "
	       "(none: no status sent).");
	for (int i = 0; i < STATS_CLASSES; i++)
		labelled(o, "responses_total", "class", classes[i],
			 s->responses[i]);
	family(o, "denials_total", "counter",
	       "Requests refused by policy, by reason.");
	for (int i = 0; i < STATS_DENY_COUNT; i++)
		labelled(o, "denials_total", "reason",
			 stats_deny_name((enum stats_deny)i), s->denied[i]);
	family(o, "upstream_errors_total", "counter",
	       "Failures reaching or reading the origin or parent, by kind.");
	for (int i = 0; i < STATS_UP_COUNT; i++)
		labelled(o, "upstream_errors_total", "kind",
			 stats_upstream_name((enum stats_upstream)i),
			 s->upstream_errors[i]);
}

static void prometheus_cache(struct out *o, const struct stats_snapshot *s)
{
	metric(o, "cache_hits_total", "counter",
	       "Requests answered from the cache.", s->cache_hits);
	metric(o, "cache_misses_total", "counter",
	       "Cacheable requests the cache could not answer.",
	       s->cache_misses);
	metric(o, "cache_revalidations_total", "counter",
	       "Stored responses revalidated with the origin.",
	       s->cache_revalidations);
	metric(o, "cache_stores_total", "counter",
	       "Responses stored in the cache.", s->cache_stores);
	metric(o, "cache_evictions_total", "counter",
	       "Entries evicted from the cache.", s->cache_evictions);
	metric(o, "cache_stored_bytes_total", "counter",
	       "Bytes written into the cache.", s->cache_bytes_stored);
	metric(o, "cache_evicted_bytes_total", "counter",
	       "Bytes evicted from the cache.", s->cache_bytes_evicted);
	metric(o, "cache_size_bytes", "gauge", "Bytes the cache holds now.",
	       s->cache_size_bytes);
	metric(o, "cache_entries", "gauge", "Entries the cache holds now.",
	       s->cache_entries);
}

int stats_render_prometheus(const struct stats_snapshot *s, char *buf,
			    size_t cap)
{
	struct out o = {buf, cap, 0, cap == 0};

	if (cap)
		buf[0] = '\0';
	metric(&o, "uptime_seconds", "gauge", "Seconds since the start.",
	       s->uptime_s);
	metric(&o, "connections_total", "counter",
	       "Client connections accepted.", s->connections_total);
	metric(&o, "connections_active", "gauge",
	       "Client connections open now.", s->connections_active);
	prometheus_requests(&o, s);
	metric(&o, "received_bytes_total", "counter",
	       "Bytes received from clients.", s->bytes_in);
	metric(&o, "sent_bytes_total", "counter", "Bytes sent to clients.",
	       s->bytes_out);
	metric(&o, "tunnels_total", "counter", "CONNECT tunnels opened.",
	       s->tunnels_total);
	metric(&o, "tunnels_active", "gauge", "CONNECT tunnels open now.",
	       s->tunnels_active);
	prometheus_cache(&o, s);
	metric(&o, "faults_injected_total", "counter",
	       "Faults the fault sys injected (0 without one).",
	       s->faults_injected);
	return finish(&o);
}

/* ---- JSON ---- */

static void json_group(struct out *o, const char *name, const uint64_t *v,
		       size_t n, const char *(*label)(int))
{
	put(o, ",\"%s\":{", name);
	for (size_t i = 0; i < n; i++)
		put(o, "%s\"%s\":%llu", i ? "," : "", label((int)i),
		    (unsigned long long)v[i]);
	put(o, "}");
}

static const char *method_label(int i)
{
	return stats_method_name((enum stats_method)i);
}

static const char *deny_label(int i)
{
	return stats_deny_name((enum stats_deny)i);
}

static const char *upstream_label(int i)
{
	return stats_upstream_name((enum stats_upstream)i);
}

static const char *class_label(int i)
{
	static const char *const classes[STATS_CLASSES] = {
		"none", "1xx", "2xx", "3xx", "4xx", "5xx"};

	return classes[i];
}

static void json_cache(struct out *o, const struct stats_snapshot *s)
{
	put(o,
	    ",\"cache\":{\"hits\":%llu,\"misses\":%llu,\"revalidations\":%llu,"
	    "\"stores\":%llu,\"evictions\":%llu,\"bytes_stored\":%llu,"
	    "\"bytes_evicted\":%llu,\"size_bytes\":%llu,\"entries\":%llu}",
	    (unsigned long long)s->cache_hits,
	    (unsigned long long)s->cache_misses,
	    (unsigned long long)s->cache_revalidations,
	    (unsigned long long)s->cache_stores,
	    (unsigned long long)s->cache_evictions,
	    (unsigned long long)s->cache_bytes_stored,
	    (unsigned long long)s->cache_bytes_evicted,
	    (unsigned long long)s->cache_size_bytes,
	    (unsigned long long)s->cache_entries);
}

int stats_render_json(const struct stats_snapshot *s, char *buf, size_t cap)
{
	struct out o = {buf, cap, 0, cap == 0};

	if (cap)
		buf[0] = '\0';
	put(&o,
	    "{\"uptime_s\":%llu,\"connections_total\":%llu,"
	    "\"connections_active\":%llu,\"requests_total\":%llu",
	    (unsigned long long)s->uptime_s,
	    (unsigned long long)s->connections_total,
	    (unsigned long long)s->connections_active,
	    (unsigned long long)s->requests_total);
	json_group(&o, "requests", s->requests, STATS_METHOD_COUNT,
		   method_label);
	json_group(&o, "responses", s->responses, STATS_CLASSES, class_label);
	json_group(&o, "denials", s->denied, STATS_DENY_COUNT, deny_label);
	json_group(&o, "upstream_errors", s->upstream_errors, STATS_UP_COUNT,
		   upstream_label);
	put(&o,
	    ",\"bytes_in\":%llu,\"bytes_out\":%llu,\"tunnels_total\":%llu,"
	    "\"tunnels_active\":%llu,\"faults_injected\":%llu",
	    (unsigned long long)s->bytes_in, (unsigned long long)s->bytes_out,
	    (unsigned long long)s->tunnels_total,
	    (unsigned long long)s->tunnels_active,
	    (unsigned long long)s->faults_injected);
	json_cache(&o, s);
	put(&o, ",\"rate_slot_s\":%d,\"rate\":[", STATS_RATE_SLOT_S);
	for (int i = 0; i < STATS_RATE_SLOTS; i++)
		put(&o, "%s%llu", i ? "," : "", (unsigned long long)s->rate[i]);
	put(&o, "]}");
	return finish(&o);
}

int stats_render_summary(const struct stats_snapshot *s, char *buf, size_t cap)
{
	struct out o = {buf, cap, 0, cap == 0};
	uint64_t denied = 0, upstream = 0;

	if (cap)
		buf[0] = '\0';
	for (int i = 0; i < STATS_DENY_COUNT; i++)
		denied += s->denied[i];
	for (int i = 0; i < STATS_UP_COUNT; i++)
		upstream += s->upstream_errors[i];
	put(&o,
	    "counters: uptime %llus, %llu connections, %llu requests "
	    "(2xx %llu, 3xx %llu, 4xx %llu, 5xx %llu, none %llu), "
	    "%llu tunnels, %llu denied, %llu upstream errors, "
	    "bytes in %llu out %llu, cache hits %llu misses %llu "
	    "stores %llu, faults injected %llu",
	    (unsigned long long)s->uptime_s,
	    (unsigned long long)s->connections_total,
	    (unsigned long long)s->requests_total,
	    (unsigned long long)s->responses[2],
	    (unsigned long long)s->responses[3],
	    (unsigned long long)s->responses[4],
	    (unsigned long long)s->responses[5],
	    (unsigned long long)s->responses[0],
	    (unsigned long long)s->tunnels_total, (unsigned long long)denied,
	    (unsigned long long)upstream, (unsigned long long)s->bytes_in,
	    (unsigned long long)s->bytes_out, (unsigned long long)s->cache_hits,
	    (unsigned long long)s->cache_misses,
	    (unsigned long long)s->cache_stores,
	    (unsigned long long)s->faults_injected);
	return finish(&o);
}
