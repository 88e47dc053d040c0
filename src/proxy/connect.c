/*
 * CONNECT: open a tunnel to host:port and hand both sockets to the tunnel
 * module, which relays bytes it never looks at (RFC 9110 section 9.3.6).
 *
 * The 200 goes out only once the origin connection is up, so every failure
 * (unresolvable, refused, timed out, refused by a parent proxy) is still a
 * proper HTTP error with a body and a log line.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "glassproxy/tunnel.h"
#include "glassproxy/util.h"
#include "proxy_int.h"

static const char established[] = "HTTP/1.1 200 Connection established\r\n\r\n";

/* Send "CONNECT target" to the parent proxy; 0 or -1 with msg. */
static int ask_parent(struct client *cl, struct exchange *x, struct conn *up,
		      char *msg, size_t cap)
{
	struct head_writer w = {up->buf, up->cap, 0, false};
	int rc;

	proxy_head_add_str(&w, "CONNECT ");
	proxy_head_add(&w, x->req.target.ptr, x->req.target.len);
	proxy_head_add_str(&w, " HTTP/1.1\r\nHost: ");
	proxy_head_add(&w, x->req.target.ptr, x->req.target.len);
	proxy_head_add_str(&w, "\r\nVia: 1.1 ");
	proxy_head_add_str(&w, proxy_live(cl)->via_name);
	proxy_head_add_str(&w, "\r\n\r\n");
	rc = net_send_all(cl->px->sys, up->fd, up->buf, w.len);
	if (rc < 0)
		util_format(msg, cap, "The parent proxy went away: %s.",
			    strerror(-rc));
	return rc < 0 ? -1 : 0;
}

/*
 * Ask the parent proxy for a tunnel of its own.  Returns PROXY_OUTCOME_UNSET
 * when it said 2xx (any bytes after its answer are left in *up), or the
 * outcome to answer the client with, msg filled in.
 */
static enum proxy_outcome connect_via_parent(struct client *cl,
					     struct exchange *x,
					     struct conn *up, char *msg,
					     size_t cap)
{
	struct http_header headers[PROXY_MAX_HEADERS];
	struct http_response res;
	struct http_parse_state scan = {0};
	int rc;

	if (ask_parent(cl, x, up, msg, cap) < 0)
		return PROXY_OUTCOME_ORIGIN_RESET;
	for (;;) {
		res.headers = headers;
		res.num_headers = PROXY_MAX_HEADERS;
		rc = http_parse_response_resume(proxy_conn_data(up), up->len,
						&res, x->req.method, NULL,
						&scan);
		if (rc > 0)
			break;
		if (rc != HTTP_INCOMPLETE) {
			util_format(msg, cap,
				    "The parent proxy answered CONNECT with a "
				    "malformed response (%s).",
				    http_error_reason(rc));
			return PROXY_OUTCOME_BAD_ORIGIN_RESPONSE;
		}
		ssize_t got = proxy_conn_fill(
			up, proxy_live(cl)->response_timeout_ms);
		if (got <= 0) {
			util_format(msg, cap,
				    "The parent proxy did not answer CONNECT "
				    "(%s).",
				    got == 0 ? "it closed the connection"
					     : strerror((int)-got));
			return got == -ETIMEDOUT ? PROXY_OUTCOME_ORIGIN_TIMEOUT
						 : PROXY_OUTCOME_ORIGIN_RESET;
		}
	}
	if (res.status < 200 || res.status > 299) {
		util_format(msg, cap,
			    "The parent proxy refused the tunnel with %d %.*s.",
			    res.status, (int)res.reason.len, res.reason.ptr);
		return PROXY_OUTCOME_PARENT_REFUSED;
	}
	proxy_conn_consume(up, (size_t)rc);
	return PROXY_OUTCOME_UNSET;
}

static enum proxy_outcome tunnel_outcome(enum tunnel_end end)
{
	switch (end) {
	case TUNNEL_END_CLOSED:
		return PROXY_OUTCOME_TUNNEL;
	case TUNNEL_END_CLIENT_RESET:
		return PROXY_OUTCOME_TUNNEL_CLIENT_RESET;
	case TUNNEL_END_ORIGIN_RESET:
		return PROXY_OUTCOME_TUNNEL_ORIGIN_RESET;
	case TUNNEL_END_IDLE_TIMEOUT:
		return PROXY_OUTCOME_TUNNEL_IDLE_TIMEOUT;
	case TUNNEL_END_INTERNAL:
		break;
	}
	return PROXY_OUTCOME_TUNNEL_INTERNAL;
}

/*
 * 200 to the client, then what came in behind the parent's answer; false
 * when the client has gone.
 */
static bool tunnel_established(struct client *cl, struct exchange *x,
			       const struct conn *up)
{
	struct sys *sys = cl->px->sys;

	if (net_send_all(sys, cl->conn.fd, established,
			 sizeof(established) - 1) < 0) {
		x->outcome = PROXY_OUTCOME_CLIENT_CLOSED;
		return false;
	}
	x->status = 200;
	x->bytes_sent += sizeof(established) - 1;
	/* Origin bytes that came in behind the parent's 200 go first. */
	if (up->len > 0) {
		if (net_send_all(sys, cl->conn.fd, proxy_conn_data(up),
				 up->len) < 0) {
			x->outcome = PROXY_OUTCOME_CLIENT_CLOSED;
			return false;
		}
		x->bytes_sent += up->len;
	}
	return true;
}

/* Relay the tunnel until both sides are done, and record how it ended. */
static void run_tunnel(struct client *cl, struct exchange *x, int fd)
{
	struct tunnel_opts opts;
	struct tunnel_stats stats;

	proxy_set_state(cl, PROXY_STATE_TUNNEL);
	stats_tunnel_open(cl->px->stats);
	/*
	 * splice (the default) rather than copying, measured again for issue
	 * 13 on the 2-core VM: curl -p through the proxy to nginx, 100 MiB,
	 * runs interleaved, two sessions: splice 690 and 1228 MB/s (0.79 and
	 * 0.54 CPU s/GB), 64 KiB copies 571 and 894 (1.05, 1.05), 16 KiB
	 * copies 417 and 810 (1.28, 1.05).  bench/bench_tunnel.c, whose
	 * threads send from user memory, ranks them the other way round
	 * (copy16 942-1087 MB/s, splice 665-820): the whole path is what a
	 * user sees.  docs/performance.md has the table.
	 */
	tunnel_opts_default(&opts);
	opts.idle_timeout_ms = proxy_live(cl)->tunnel_idle_timeout_ms;
	/* Bytes the client sent behind its CONNECT are early data. */
	tunnel_relay(cl->px->sys, cl->conn.fd, fd, proxy_conn_data(&cl->conn),
		     cl->conn.len, &opts, &stats);
	proxy_conn_consume(&cl->conn, cl->conn.len);
	x->bytes_sent += stats.origin_to_client;
	x->bytes_received += stats.client_to_origin;
	x->outcome = tunnel_outcome(stats.end);
	stats_tunnel_close(cl->px->stats);
	proxy_set_state(cl, PROXY_STATE_SERVING);
	if (stats.end != TUNNEL_END_CLOSED)
		log_event(cl->px->log, LOG_INFO,
			  "%s CONNECT %s: tunnel ended: %s after %lld ms",
			  cl->addr, x->url, tunnel_end_name(stats.end),
			  (long long)stats.duration_ms);
}

/* The CONNECT's own checks; true when it may go on. */
static bool connect_allowed(struct client *cl, struct exchange *x, char *host,
			    size_t cap)
{
	const struct http_url *u = &x->req.url;
	char msg[128];

	if (util_copy(host, cap, u->host.ptr, u->host.len) < 0) {
		proxy_refuse(cl, x, PROXY_OUTCOME_HOST_TOO_LONG,
			     "The host name is too long.");
		return false;
	}
	if (!proxy_connect_port_allowed(cl, u->port)) {
		util_format(msg, sizeof(msg),
			    "CONNECT to port %u is not allowed here.",
			    (unsigned)u->port);
		log_event(cl->px->log, LOG_INFO, "%s CONNECT %s: %s", cl->addr,
			  x->url, msg);
		proxy_refuse(cl, x, PROXY_OUTCOME_DENIED_PORT, msg);
		return false;
	}
	return true;
}

void proxy_connect(struct client *cl, struct exchange *x)
{
	struct proxy *px = cl->px;
	const struct proxy_settings *set = proxy_live(cl);
	char host[256], msg[512];
	enum proxy_outcome failed;
	struct route route;
	struct conn up;
	int fd;

	/* A tunnel is the end of the client connection, whatever happens. */
	x->client_keep_alive = false;
	if (!connect_allowed(cl, x, host, sizeof(host)) ||
	    !proxy_route(cl, x, host, x->req.url.port, &route))
		return;
	/* The name's addresses are vetted first (vet.c); answered if not. */
	fd = proxy_connect_vetted(cl, x, &route);
	if (fd < 0)
		return;
	proxy_track_upstream(cl, fd);
	proxy_observe_upstream(cl, x, route.host, route.via_parent);
	proxy_conn_init(&up, px->sys, fd, cl->upstream_buf, PROXY_UPSTREAM_BUF);
	if (route.via_parent) {
		net_set_send_timeout(px->sys, fd, set->response_timeout_ms);
		failed = connect_via_parent(cl, x, &up, msg, sizeof(msg));
		if (failed != PROXY_OUTCOME_UNSET)
			goto close_fd;
	}
	if (tunnel_established(cl, x, &up))
		run_tunnel(cl, x, fd);
	proxy_close_upstream(cl, fd);
	return;

close_fd:
	proxy_close_upstream(cl, fd);
	log_event(px->log, LOG_WARN, "%s CONNECT %s: %s", cl->addr, x->url,
		  msg);
	proxy_refuse(cl, x, failed, msg);
}
