/*
 * Observability hooks of the request path (issue #12): timing marks, what
 * the access log keeps of a request and its answer, the status page's
 * view of each connection, and the counters.  Small functions the
 * request path calls at its steps, so the steps stay readable.
 */
#include <string.h>

#include "glassproxy/util.h"
#include "proxy_int.h"

void proxy_mark(struct client *cl, struct exchange *x, enum proxy_mark m)
{
	if ((unsigned)m < PROXY_MARK_COUNT && x->mark[m] == 0)
		x->mark[m] = sys_now_mono_ms(cl->px->sys);
}

/* A header's value copied (cut to fit), or "" when absent. */
static void copy_field(const struct http_header *h, size_t n, const char *name,
		       char *dst, size_t cap)
{
	dst[0] = '\0';
	for (size_t i = 0; i < n; i++)
		if (util_ieq(h[i].name.ptr, h[i].name.len, name,
			     strlen(name))) {
			size_t len =
				h[i].value.len < cap ? h[i].value.len : cap - 1;
			util_copy(dst, cap, h[i].value.ptr, len);
			return;
		}
}

void proxy_set_state(struct client *cl, enum proxy_state state)
{
	atomic_store_explicit(&cl->state, (int)state, memory_order_relaxed);
}

void proxy_observe_request(struct client *cl, struct exchange *x)
{
	struct proxy *px = cl->px;

	proxy_mark(cl, x, PROXY_MARK_HEAD);
	copy_field(x->req.headers, x->req.num_headers, "Referer", x->referer,
		   sizeof(x->referer));
	copy_field(x->req.headers, x->req.num_headers, "User-Agent",
		   x->user_agent, sizeof(x->user_agent));
	log_set_context(cl->id, cl->requests);
	/* The status page reads the target under the lock; once a request
	 * is one lock round trip, not a lock on the counters. */
	pthread_mutex_lock(&px->lock);
	util_copy(cl->target, sizeof(cl->target), x->url,
		  strlen(x->url) < sizeof(cl->target) ? strlen(x->url)
						      : sizeof(cl->target) - 1);
	pthread_mutex_unlock(&px->lock);
	proxy_set_state(cl, PROXY_STATE_SERVING);
	log_event(px->log, LOG_DEBUG, "%s %s (head after %lld ms)", x->method,
		  x->url, (long long)(x->mark[PROXY_MARK_HEAD] - x->start_ms));
}

void proxy_observe_upstream(struct client *cl, struct exchange *x,
			    const char *host, bool via_parent)
{
	proxy_mark(cl, x, PROXY_MARK_RESOLVE);
	proxy_mark(cl, x, PROXY_MARK_CONNECT);
	x->hierarchy = via_parent ? "FIRSTUP_PARENT" : "HIER_DIRECT";
	util_copy(x->peer, sizeof(x->peer), host, strnlen(host, 255));
}

void proxy_observe_response(struct exchange *x, const struct http_header *h,
			    size_t n)
{
	copy_field(h, n, "Content-Type", x->content_type,
		   sizeof(x->content_type));
}

/* The counter an outcome adds to, besides the request itself. */
static void count_outcome(struct stats *st, enum proxy_outcome o)
{
	switch (o) {
	case PROXY_OUTCOME_DENIED_HOST:
	case PROXY_OUTCOME_INVALID_HOST:
		stats_denied(st, STATS_DENY_HOST);
		break;
	case PROXY_OUTCOME_DENIED_CLIENT:
		stats_denied(st, STATS_DENY_CLIENT);
		break;
	case PROXY_OUTCOME_DENIED_PORT:
		stats_denied(st, STATS_DENY_PORT);
		break;
	case PROXY_OUTCOME_ORIGIN_UNRESOLVED:
		stats_upstream_error(st, STATS_UP_UNRESOLVED);
		break;
	case PROXY_OUTCOME_ORIGIN_REFUSED:
	case PROXY_OUTCOME_PARENT_REFUSED:
		stats_upstream_error(st, STATS_UP_REFUSED);
		break;
	case PROXY_OUTCOME_ORIGIN_CONNECT_TIMEOUT:
		stats_upstream_error(st, STATS_UP_CONNECT_TIMEOUT);
		break;
	case PROXY_OUTCOME_ORIGIN_UNREACHABLE:
		stats_upstream_error(st, STATS_UP_UNREACHABLE);
		break;
	case PROXY_OUTCOME_ORIGIN_TIMEOUT:
		stats_upstream_error(st, STATS_UP_TIMEOUT);
		break;
	case PROXY_OUTCOME_ORIGIN_RESET:
	case PROXY_OUTCOME_ORIGIN_STOPPED_READING:
	case PROXY_OUTCOME_TUNNEL_ORIGIN_RESET:
		stats_upstream_error(st, STATS_UP_RESET);
		break;
	case PROXY_OUTCOME_BAD_ORIGIN_RESPONSE:
	case PROXY_OUTCOME_TOO_MANY_INTERIM:
	case PROXY_OUTCOME_UNASKED_SWITCH:
		stats_upstream_error(st, STATS_UP_BAD_RESPONSE);
		break;
	case PROXY_OUTCOME_ORIGIN_TRUNCATED:
		stats_upstream_error(st, STATS_UP_TRUNCATED);
		break;
	default:
		break;
	}
}

/* ms from the request's first byte to mark m, or -1 if never reached. */
static long long at(const struct exchange *x, enum proxy_mark m)
{
	return x->mark[m] ? (long long)(x->mark[m] - x->start_ms) : -1;
}

void proxy_count_exchange(struct client *cl, const struct exchange *x)
{
	struct stats *st = cl->px->stats;

	log_event(cl->px->log, LOG_DEBUG,
		  "done %d %s: ms from the first byte: head %lld, filter %lld, "
		  "dns %lld, connect %lld, first byte %lld, last byte "
		  "%lld (-1: not reached)",
		  x->status, proxy_outcome_word(x->outcome),
		  at(x, PROXY_MARK_HEAD), at(x, PROXY_MARK_FILTER),
		  at(x, PROXY_MARK_RESOLVE), at(x, PROXY_MARK_CONNECT),
		  at(x, PROXY_MARK_FIRST_BYTE), at(x, PROXY_MARK_LAST_BYTE));

	stats_request(st, x->method[0] ? x->method : NULL, x->status,
		      x->bytes_received, x->bytes_sent);
	count_outcome(st, x->outcome);
}

void proxy_set_stats(struct proxy *px, struct stats *stats)
{
	px->stats = stats;
}

void proxy_connection_opened(struct client *cl)
{
	struct proxy *px = cl->px;

	cl->id = atomic_fetch_add(&px->next_conn_id, 1) + 1;
	cl->opened_ms = sys_now_mono_ms(px->sys);
	atomic_init(&cl->state, PROXY_STATE_WAITING);
	stats_connection_open(px->stats);
	log_set_context(cl->id, 0);
	log_event(px->log, LOG_DEBUG, "accepted %s", cl->addr);
}

void proxy_connection_closed(struct client *cl)
{
	struct proxy *px = cl->px;

	log_set_context(cl->id, 0);
	log_event(px->log, LOG_DEBUG, "closed %s after %u requests, %lld ms",
		  cl->addr, cl->requests,
		  (long long)(sys_now_mono_ms(px->sys) - cl->opened_ms));
	stats_connection_close(px->stats);
	log_clear_context();
}
