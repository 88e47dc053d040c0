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

/*
 * Ask the parent proxy for a tunnel of its own.  Returns 0 when it said 2xx
 * (any bytes after its answer are left in *up), or an HTTP status to answer
 * the client with, msg filled in.
 */
static int connect_via_parent(struct client *cl, struct exchange *x,
			      struct conn *up, char *msg, size_t cap)
{
	struct proxy *px = cl->px;
	struct http_header headers[PROXY_MAX_HEADERS];
	struct http_response res;
	struct head_writer w = {up->buf, up->cap, 0, false};
	int rc;

	head_add_str(&w, "CONNECT ");
	head_add(&w, x->req.target.ptr, x->req.target.len);
	head_add_str(&w, " HTTP/1.1\r\nHost: ");
	head_add(&w, x->req.target.ptr, x->req.target.len);
	head_add_str(&w, "\r\nVia: 1.1 ");
	head_add_str(&w, px->set.via_name);
	head_add_str(&w, "\r\n\r\n");
	rc = net_send_all(px->sys, up->fd, up->buf, w.len);
	if (rc < 0) {
		util_format(msg, cap, "The parent proxy went away: %s.",
			    strerror(-rc));
		return 502;
	}
	for (;;) {
		res.headers = headers;
		res.num_headers = PROXY_MAX_HEADERS;
		rc = http_parse_response(conn_data(up), up->len, &res,
					 x->req.method, NULL);
		if (rc > 0)
			break;
		if (rc != HTTP_INCOMPLETE) {
			util_format(msg, cap,
				    "The parent proxy answered CONNECT with a "
				    "malformed response (%s).",
				    http_error_reason(rc));
			return 502;
		}
		ssize_t got = conn_fill(up, px->set.response_timeout_ms);
		if (got <= 0) {
			util_format(msg, cap,
				    "The parent proxy did not answer CONNECT "
				    "(%s).",
				    got == 0 ? "it closed the connection"
					     : strerror((int)-got));
			return got == -ETIMEDOUT ? 504 : 502;
		}
	}
	if (res.status < 200 || res.status > 299) {
		util_format(msg, cap,
			    "The parent proxy refused the tunnel with %d %.*s.",
			    res.status, (int)res.reason.len, res.reason.ptr);
		return 502;
	}
	conn_consume(up, (size_t)rc);
	return 0;
}

void proxy_connect(struct client *cl, struct exchange *x)
{
	struct proxy *px = cl->px;
	const struct http_url *u = &x->req.url;
	struct tunnel_opts opts;
	struct tunnel_stats stats;
	char host[256], msg[512];
	struct route route;
	struct conn up;
	int fd, rc, status;

	/* A tunnel is the end of the client connection, whatever happens. */
	x->client_keep_alive = false;
	if (util_copy(host, sizeof(host), u->host.ptr, u->host.len) < 0) {
		proxy_send_error(cl, x, 400, "The host name is too long.");
		return;
	}
	if (!proxy_connect_port_allowed(cl, u->port)) {
		util_format(msg, sizeof(msg),
			    "CONNECT to port %u is not allowed here.",
			    (unsigned)u->port);
		log_event(px->log, LOG_INFO, "%s CONNECT %s: %s", cl->addr,
			  x->url, msg);
		x->detail = "BLOCKED-PORT";
		proxy_send_error(cl, x, 403, msg);
		return;
	}
	if (!proxy_route(cl, x, host, u->port, &route))
		return;
	fd = net_connect_host(px->sys, cl->rules->hosts, route.host, route.port,
			      px->set.connect_timeout_ms, NULL);
	if (fd < 0) {
		status = proxy_connect_error(fd, route.host, msg, sizeof(msg));
		goto refuse;
	}
	proxy_track_upstream(cl, fd);
	conn_init(&up, px->sys, fd, cl->upstream_buf, PROXY_UPSTREAM_BUF);
	if (route.via_parent) {
		net_set_send_timeout(px->sys, fd, px->set.response_timeout_ms);
		status = connect_via_parent(cl, x, &up, msg, sizeof(msg));
		if (status != 0)
			goto close_fd;
	}

	rc = net_send_all(px->sys, cl->conn.fd, established,
			  sizeof(established) - 1);
	if (rc < 0) {
		x->detail = "CLIENT-GONE";
		proxy_close_upstream(cl, fd);
		return;
	}
	x->status = 200;
	x->bytes_sent += sizeof(established) - 1;
	/* Origin bytes that came in behind the parent's 200 go first. */
	if (up.len > 0) {
		if (net_send_all(px->sys, cl->conn.fd, conn_data(&up), up.len) <
		    0) {
			x->detail = "CLIENT-GONE";
			proxy_close_upstream(cl, fd);
			return;
		}
		x->bytes_sent += up.len;
	}

	tunnel_opts_default(&opts);
	opts.idle_timeout_ms = px->set.tunnel_idle_timeout_ms;
	/* Bytes the client sent behind its CONNECT are early data. */
	tunnel_relay(px->sys, cl->conn.fd, fd, conn_data(&cl->conn),
		     cl->conn.len, &opts, &stats);
	conn_consume(&cl->conn, cl->conn.len);
	x->bytes_sent += stats.origin_to_client;
	x->bytes_received += stats.client_to_origin;
	x->detail = stats.end == TUNNEL_END_CLOSED ? "TUNNEL"
						   : tunnel_end_name(stats.end);
	if (stats.end != TUNNEL_END_CLOSED)
		log_event(px->log, LOG_INFO,
			  "%s CONNECT %s: tunnel ended: %s after %lld ms",
			  cl->addr, x->url, tunnel_end_name(stats.end),
			  (long long)stats.duration_ms);
	proxy_close_upstream(cl, fd);
	return;

close_fd:
	proxy_close_upstream(cl, fd);
refuse:
	log_event(px->log, LOG_WARN, "%s CONNECT %s: %s", cl->addr, x->url,
		  msg);
	x->detail = "ERROR";
	proxy_send_error(cl, x, status, msg);
}
