/*
 * Forwarding one HTTP request to its origin and relaying the answer.
 *
 *   check the request -> take a pooled connection or connect ->
 *   send the head -> (Expect: 100-continue) -> stream the request body ->
 *   read the response head (relaying 1xx) -> send the response head ->
 *   stream the response body -> pool the connection if it is clean
 *
 * Heads are rewritten on the way (RFC 9110 section 7.6): hop-by-hop fields
 * are dropped in both directions, Host comes from the request target, and
 * a Via field names this proxy.  Bodies pass through unchanged, chunked
 * framing included; their ends are found by the framing rules of RFC 9112
 * section 6, never by a timeout.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "glassproxy/util.h"
#include "proxy_int.h"

/* 1xx heads relayed before a final one; an origin sending more is broken. */
#define MAX_INTERIM 16

void head_add(struct head_writer *w, const char *s, size_t len)
{
	if (w->overflow || w->len + len > w->cap) {
		w->overflow = true;
		return;
	}
	memcpy(w->buf + w->len, s, len);
	w->len += len;
}

void head_add_str(struct head_writer *w, const char *s)
{
	head_add(w, s, strlen(s));
}

void head_add_header(struct head_writer *w, const struct http_header *h)
{
	head_add(w, h->name.ptr, h->name.len);
	head_add(w, ": ", 2);
	head_add(w, h->value.ptr, h->value.len);
	head_add(w, "\r\n", 2);
}

static bool method_is(const struct http_request *r, const char *m)
{
	return r->method.len == strlen(m) &&
	       memcmp(r->method.ptr, m, r->method.len) == 0;
}

/* RFC 9110 section 9.2.2: a request that can safely be sent twice. */
static bool is_idempotent(const struct http_request *r)
{
	static const char *const methods[] = {"GET",   "HEAD", "OPTIONS",
					      "TRACE", "PUT",  "DELETE"};

	for (size_t i = 0; i < UTIL_ARRAY_LEN(methods); i++)
		if (method_is(r, methods[i]))
			return true;
	return false;
}

static bool is_framing(const struct http_header *h)
{
	return http_name_is(h->name, "content-length") ||
	       http_name_is(h->name, "transfer-encoding");
}

/*
 * The end-to-end fields of a message are copied; hop-by-hop ones are not.
 * Nor are the framing fields: add_framing() writes them anew from the
 * parsed framing, so that no "Connection: content-length", odd spelling
 * ("chunked,", "CHUNKED") or duplicate can make the next hop find the end
 * of a body anywhere but where this proxy relays it.
 */
static bool copy_field(const struct http_header *h,
		       const struct http_header *all, size_t n)
{
	return !is_framing(h) && !http_is_hop_by_hop(h->name, all, n);
}

/* The transfer codings of a message, tidied: "gzip, chunked". */
static void add_codings(struct head_writer *w, const struct http_header *h,
			size_t n)
{
	bool first = true;

	for (ssize_t i = http_find_header(h, n, "transfer-encoding", 0); i >= 0;
	     i = http_find_header(h, n, "transfer-encoding", (size_t)i + 1)) {
		const char *p = h[i].value.ptr, *end = p + h[i].value.len;

		while (p < end) {
			const char *comma = memchr(p, ',', (size_t)(end - p));
			const char *tok = p;
			size_t len = (size_t)((comma ? comma : end) - p);

			util_trim(&tok, &len);
			if (len > 0) {
				head_add_str(w, first ? "" : ", ");
				for (size_t j = 0; j < len; j++) {
					char c = util_lower(tok[j]);
					head_add(w, &c, 1);
				}
				first = false;
			}
			p = comma ? comma + 1 : end;
		}
	}
}

/*
 * Write a message's framing exactly as the relay will honour it.  A body
 * without one (a response to HEAD, a 304) keeps the origin's
 * Content-Length, which then describes the representation, not a body.
 */
static void add_framing(struct head_writer *w, enum http_body kind,
			uint64_t length, const struct http_header *h, size_t n,
			bool dechunk)
{
	char line[64];

	switch (kind) {
	case HTTP_BODY_LENGTH:
		util_format(line, sizeof(line), "Content-Length: %llu\r\n",
			    (unsigned long long)length);
		head_add_str(w, line);
		break;
	case HTTP_BODY_CHUNKED:
	case HTTP_BODY_UNTIL_CLOSE:
		/* A body decoded for the client is delimited by the close. */
		if (kind == HTTP_BODY_CHUNKED && dechunk)
			break;
		/* Otherwise its codings go on as they are (gzip included). */
		if (http_find_header(h, n, "transfer-encoding", 0) >= 0) {
			head_add_str(w, "Transfer-Encoding: ");
			add_codings(w, h, n);
			head_add_str(w, "\r\n");
		}
		break;
	case HTTP_BODY_NONE:
		for (size_t i = 0; i < n; i++)
			if (http_name_is(h[i].name, "content-length"))
				head_add_header(w, &h[i]);
		break;
	}
}

static void add_via(struct proxy *px, struct head_writer *w, int minor_version)
{
	head_add_str(w, minor_version == 0 ? "Via: 1.0 " : "Via: 1.1 ");
	head_add_str(w, px->set.via_name);
	head_add_str(w, "\r\n");
}

/* True when a Via field already names this proxy: a forwarding loop. */
static bool via_names_us(struct proxy *px, const struct http_header *h,
			 size_t n)
{
	const char *us = px->set.via_name;

	for (ssize_t i = http_find_header(h, n, "via", 0); i >= 0;
	     i = http_find_header(h, n, "via", (size_t)i + 1)) {
		const char *p = h[i].value.ptr, *end = p + h[i].value.len;
		/* Each element is "protocol received-by [comment]". */
		while (p < end) {
			const char *comma = memchr(p, ',', (size_t)(end - p));
			const char *elem_end = comma ? comma : end;
			const char *sp = memchr(p, ' ', (size_t)(elem_end - p));
			if (sp) {
				const char *name = sp + 1, *name_end = name;
				while (name_end < elem_end && *name_end != ' ')
					name_end++;
				if (util_ieq(name, (size_t)(name_end - name),
					     us, strlen(us)))
					return true;
			}
			p = comma ? comma + 1 : end;
			while (p < end && (*p == ' ' || *p == '\t'))
				p++;
		}
	}
	return false;
}

/* "host", "[v6]" or either with ":port" when it is not the default. */
static void add_authority(struct head_writer *w, const struct http_url *u,
			  const char *host)
{
	char port[16];

	if (u->host_is_ipv6)
		head_add_str(w, "[");
	head_add_str(w, host);
	if (u->host_is_ipv6)
		head_add_str(w, "]");
	if (u->port_explicit && u->port != 80) {
		util_format(port, sizeof(port), ":%u", (unsigned)u->port);
		head_add_str(w, port);
	}
}

/* The Max-Forwards value of a TRACE or OPTIONS request, or -1. */
static long long max_forwards(const struct http_request *r)
{
	ssize_t i;
	uint64_t v;

	if (!method_is(r, "TRACE") && !method_is(r, "OPTIONS"))
		return -1;
	i = http_find_header(r->headers, r->num_headers, "max-forwards", 0);
	if (i < 0 || util_parse_u64(r->headers[i].value.ptr,
				    r->headers[i].value.len, 1u << 30, &v) < 0)
		return -1;
	return (long long)v;
}

static int build_request_head(struct client *cl, const struct exchange *x,
			      const char *host, bool to_parent,
			      struct head_writer *w)
{
	struct proxy *px = cl->px;
	const struct http_request *r = &x->req;
	const struct http_url *u = &r->url;
	long long hops = max_forwards(r);
	char line[NET_ADDR_TEXT_MAX + 32];

	head_add(w, r->method.ptr, r->method.len);
	head_add(w, " ", 1);
	if (to_parent) {
		/* A proxy is asked in absolute-form (RFC 9112 section 3.2.2). */
		head_add_str(w, "http://");
		add_authority(w, u, host);
	}
	head_add(w, u->path.ptr, u->path.len);
	head_add_str(w, " HTTP/1.1\r\nHost: ");
	add_authority(w, u, host);
	head_add_str(w, "\r\n");
	for (size_t i = 0; i < r->num_headers; i++) {
		const struct http_header *h = &r->headers[i];

		if (http_name_is(h->name, "host") ||
		    !copy_field(h, r->headers, r->num_headers))
			continue;
		if (hops > 0 && http_name_is(h->name, "max-forwards")) {
			util_format(line, sizeof(line),
				    "Max-Forwards: %lld\r\n", hops - 1);
			head_add_str(w, line);
			continue;
		}
		if (px->set.forwarded == PROXY_FORWARDED_DELETE &&
		    (http_name_is(h->name, "x-forwarded-for") ||
		     http_name_is(h->name, "forwarded")))
			continue;
		head_add_header(w, h);
	}
	if (px->set.forwarded == PROXY_FORWARDED_ON) {
		bool v6 = strchr(cl->ip, ':') != NULL;
		util_format(line, sizeof(line), "X-Forwarded-For: %s\r\n",
			    cl->ip);
		head_add_str(w, line);
		/* RFC 7239 section 6: an IPv6 node is a quoted "[v6]". */
		util_format(line, sizeof(line), "Forwarded: for=%s%s%s%s\r\n",
			    v6 ? "\"[" : "", cl->ip, v6 ? "]\"" : "", "");
		head_add_str(w, line);
	}
	if (r->body != HTTP_BODY_NONE)
		add_framing(w, r->body, r->content_length, r->headers,
			    r->num_headers, false);
	add_via(px, w, r->minor_version);
	head_add_str(w, "\r\n");
	return w->overflow ? -ENOBUFS : 0;
}

static int build_response_head(struct proxy *px,
			       const struct http_response *res,
			       const struct exchange *x, bool dechunk,
			       struct head_writer *w)
{
	char line[64];

	util_format(line, sizeof(line), "HTTP/1.1 %d ", res->status);
	head_add_str(w, line);
	head_add(w, res->reason.ptr, res->reason.len);
	head_add_str(w, "\r\n");
	for (size_t i = 0; i < res->num_headers; i++)
		if (copy_field(&res->headers[i], res->headers,
			       res->num_headers))
			head_add_header(w, &res->headers[i]);
	add_framing(w, res->body, res->content_length, res->headers,
		    res->num_headers, dechunk);
	add_via(px, w, res->minor_version);
	if (res->status >= 200) {
		if (!x->client_keep_alive)
			head_add_str(w, "Connection: close\r\n");
		else if (x->req.minor_version == 0)
			head_add_str(w, "Connection: keep-alive\r\n");
	}
	head_add_str(w, "\r\n");
	return w->overflow ? -ENOBUFS : 0;
}

/* The status and message for a failed connect to the origin. */
int proxy_connect_error(int err, const char *host, char *msg, size_t cap)
{
	switch (err) {
	case -ENOENT:
		util_format(msg, cap, "The host %s could not be resolved.",
			    host);
		return 502;
	case -EAGAIN:
		util_format(msg, cap,
			    "The name of %s could not be looked up "
			    "right now (temporary resolver failure).",
			    host);
		return 502;
	case -ETIMEDOUT:
		util_format(msg, cap, "Connecting to %s timed out.", host);
		return 504;
	case -ECONNREFUSED:
		util_format(msg, cap, "%s refused the connection.", host);
		return 502;
	default:
		util_format(msg, cap, "Connecting to %s failed: %s.", host,
			    strerror(-err));
		return 502;
	}
}

/* How a forwarding attempt ended, for the connection it used. */
enum outcome {
	OUTCOME_REUSABLE, /* the upstream connection is clean: pool it */
	OUTCOME_CLOSE,	  /* close the upstream connection */
	OUTCOME_RETRY,	  /* a reused connection was dead: try a new one */
};

/*
 * Read one response head from up into res.  Returns its length, or minus
 * the status (502/504) to answer with after filling msg.  *nothing_came is
 * set when the origin closed or reset before sending a single byte: on a
 * reused connection that is the race with its idle timeout, not an error.
 */
static int read_response_head(struct client *cl, struct exchange *x,
			      struct conn *up, struct http_response *res,
			      struct http_header *headers, char *msg,
			      size_t cap, bool *nothing_came)
{
	struct sys *sys = cl->px->sys;
	int timeout = cl->px->set.response_timeout_ms;
	/* The whole head within the timeout: a byte a minute is no answer. */
	int64_t deadline = sys_now_mono_ms(sys) + timeout;

	*nothing_came = false;
	for (;;) {
		int64_t left = deadline - sys_now_mono_ms(sys);
		int rc;

		res->headers = headers;
		res->num_headers = PROXY_MAX_HEADERS;
		rc = http_parse_response(conn_data(up), up->len, res,
					 x->req.method, NULL);
		if (rc > 0)
			return rc;
		if (rc != HTTP_INCOMPLETE) {
			util_format(
				msg, cap,
				"The origin sent a malformed response (%s).",
				http_error_reason(rc));
			return -502;
		}
		ssize_t got = conn_fill(up, left > 0 ? (int)left : 0);
		if (got == -ETIMEDOUT) {
			util_format(msg, cap,
				    "The origin did not answer within %d ms.",
				    timeout);
			return -504;
		}
		if (got > 0)
			continue;
		*nothing_came =
			up->len == 0 && (got == 0 || got == -ECONNRESET);
		if (got == 0)
			util_format(msg, cap,
				    "The origin closed the connection without "
				    "a complete response.");
		else
			util_format(msg, cap,
				    "Reading the origin's response failed: %s.",
				    got == -ENOBUFS ? "head too large"
						    : strerror((int)-got));
		return -502;
	}
}

/* Send an interim (1xx) response on to an HTTP/1.1 client. */
static int forward_interim(struct client *cl, struct exchange *x,
			   const struct http_response *res, char *head)
{
	struct head_writer w = {head, PROXY_HEAD_OUT_MAX, 0, false};
	int rc;

	/* Interim responses go to HTTP/1.1 clients only (RFC 9110 15.2). */
	if (x->req.minor_version == 0)
		return 0;
	build_response_head(cl->px, res, x, false, &w);
	if (w.overflow)
		return -ENOBUFS;
	rc = net_send_all(cl->px->sys, cl->conn.fd, head, w.len);
	if (rc == 0)
		x->bytes_sent += w.len;
	return rc;
}

/* Relay 1xx heads and then the final response: the exchange's last step. */
static enum outcome relay_response(struct client *cl, struct exchange *x,
				   struct conn *up, bool may_retry)
{
	struct proxy *px = cl->px;
	struct http_header headers[PROXY_MAX_HEADERS];
	struct http_response res;
	char msg[512], *head;
	struct head_writer w;
	struct body body;
	bool to_error, dechunk, nothing_came;
	enum outcome outcome = OUTCOME_CLOSE;
	int head_len, rc;

	head = proxy_head_buf(cl, x);
	if (!head)
		return OUTCOME_CLOSE;
	for (int interim = 0;; interim++) {
		head_len = read_response_head(cl, x, up, &res, headers, msg,
					      sizeof(msg), &nothing_came);
		if (head_len < 0 && nothing_came && may_retry) {
			outcome = OUTCOME_RETRY;
			goto done;
		}
		if (head_len < 0) {
			log_event(px->log, LOG_WARN, "%s %s: %s", cl->addr,
				  x->url, msg);
			x->detail = "ERROR";
			proxy_send_error(cl, x, -head_len, msg);
			goto done;
		}
		if (res.status >= 200)
			break;
		if (interim == MAX_INTERIM) {
			x->detail = "ERROR";
			proxy_send_error(
				cl, x, 502,
				"The origin sent too many interim (1xx) "
				"responses.");
			goto done;
		}
		if (res.status == 101) {
			/* We never forward Upgrade, so this is a broken origin. */
			x->detail = "ERROR";
			proxy_send_error(cl, x, 502,
					 "The origin switched protocols "
					 "unasked.");
			goto done;
		}
		if (forward_interim(cl, x, &res, head) < 0) {
			x->client_keep_alive = false;
			x->detail = "CLIENT-GONE";
			goto done;
		}
		conn_consume(up, (size_t)head_len);
	}
	conn_consume(up, (size_t)head_len);

	/* A body we cannot delimit for the client ends its connection. */
	dechunk = res.body == HTTP_BODY_CHUNKED && x->req.minor_version == 0;
	x->client_keep_alive = x->client_keep_alive &&
			       res.body != HTTP_BODY_UNTIL_CLOSE && !dechunk;
	w = (struct head_writer){head, PROXY_HEAD_OUT_MAX, 0, false};
	if (build_response_head(px, &res, x, dechunk, &w) < 0) {
		x->detail = "ERROR";
		proxy_send_error(cl, x, 502, "The response head is too large.");
		goto done;
	}
	x->status = res.status;
	rc = net_send_all(px->sys, cl->conn.fd, head, w.len);
	if (rc < 0) {
		x->client_keep_alive = false;
		x->detail = "CLIENT-GONE";
		goto done;
	}
	x->bytes_sent += w.len;

	body_init(&body, res.body, res.content_length);
	body.decode = dechunk;
	rc = body_relay(&body, up, cl->conn.fd, px->set.response_timeout_ms,
			&x->bytes_sent, &to_error);
	if (rc < 0) {
		/*
		 * The head is out, so no error page can follow: close the
		 * client connection, which tells it the body is incomplete.
		 */
		x->client_keep_alive = false;
		x->detail = to_error ? "CLIENT-GONE" : "UPSTREAM-TRUNCATED";
		if (!to_error)
			log_event(px->log, LOG_WARN,
				  "%s %s: the response body from the origin "
				  "ended early: %s",
				  cl->addr, x->url,
				  rc == -EPROTO ? http_error_reason(
							  body.framing_error)
						: strerror(-rc));
		goto done;
	}
	/* Reuse only a connection with nothing unexplained left on it. */
	if (res.keep_alive && body.done && up->len == 0)
		outcome = OUTCOME_REUSABLE;
done:
	return outcome;
}

/*
 * Expect: 100-continue (RFC 9110 section 10.1.1): the client holds its body
 * back until it hears 100 (or a while passes).  Wait for whichever speaks
 * first: the client (it gave up waiting: send the body) or the origin (a
 * 100 goes on to the client; a final status answers without the body).
 * Returns true when the body should follow.
 */
static bool await_continue(struct client *cl, struct exchange *x,
			   struct conn *up)
{
	struct proxy *px = cl->px;
	struct http_header headers[PROXY_MAX_HEADERS];
	struct http_response res;
	struct pollfd p[2] = {{.fd = cl->conn.fd, .events = POLLIN},
			      {.fd = up->fd, .events = POLLIN}};
	bool nothing_came;
	char msg[256], *head;
	int head_len;

	if (cl->conn.len > 0 ||
	    sys_poll(px->sys, p, 2, px->set.response_timeout_ms) <= 0 ||
	    !(p[1].revents & (POLLIN | POLLHUP | POLLERR)))
		return true;
	head_len = read_response_head(cl, x, up, &res, headers, msg,
				      sizeof(msg), &nothing_came);
	if (head_len < 0 || res.status >= 200)
		return false; /* relay_response() answers from the buffer */
	head = proxy_head_buf(cl, x);
	if (head && forward_interim(cl, x, &res, head) == 0)
		conn_consume(up, (size_t)head_len);
	return true;
}

/* Answer TRACE or OPTIONS with Max-Forwards: 0 here (RFC 9110 7.6.2). */
static void answer_here(struct client *cl, struct exchange *x)
{
	static const char allow[] =
		"GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, TRACE, CONNECT";
	const struct http_request *r = &x->req;
	char head[512], *echo;
	struct head_writer w;
	int n;

	/* The body is not read here: the connection cannot carry on after. */
	if (r->body != HTTP_BODY_NONE)
		x->client_keep_alive = false;
	echo = proxy_head_buf(cl, x);
	if (!echo)
		return;
	w = (struct head_writer){echo, PROXY_HEAD_OUT_MAX, 0, false};
	if (method_is(r, "TRACE")) {
		/* The request as received, minus credentials (9.3.8). */
		head_add(&w, r->method.ptr, r->method.len);
		head_add(&w, " ", 1);
		head_add(&w, r->target.ptr, r->target.len);
		head_add_str(&w, r->minor_version ? " HTTP/1.1\r\n"
						  : " HTTP/1.0\r\n");
		for (size_t i = 0; i < r->num_headers; i++)
			if (!http_name_is(r->headers[i].name,
					  "authorization") &&
			    !http_name_is(r->headers[i].name,
					  "proxy-authorization") &&
			    !http_name_is(r->headers[i].name, "cookie"))
				head_add_header(&w, &r->headers[i]);
		head_add_str(&w, "\r\n");
	}
	if (w.len)
		n = util_format(
			head, sizeof(head),
			"HTTP/1.1 200 OK\r\nContent-Type: message/http\r\n"
			"Content-Length: %zu\r\nVia: 1.1 %s\r\n%s\r\n",
			w.len, cl->px->set.via_name,
			x->client_keep_alive ? "" : "Connection: close\r\n");
	else
		n = util_format(head, sizeof(head),
				"HTTP/1.1 200 OK\r\nAllow: %s\r\n"
				"Content-Length: 0\r\nVia: 1.1 %s\r\n%s\r\n",
				allow, cl->px->set.via_name,
				x->client_keep_alive ? ""
						     : "Connection: close\r\n");
	x->status = 200;
	x->detail = "ANSWERED-HERE";
	if (n < 0 ||
	    net_send_all(cl->px->sys, cl->conn.fd, head, (size_t)n) < 0 ||
	    net_send_all(cl->px->sys, cl->conn.fd, echo, w.len) < 0)
		x->client_keep_alive = false;
	else
		x->bytes_sent += (uint64_t)n + w.len;
}

/* Everything about one attempt on one upstream connection. */
static enum outcome forward_once(struct client *cl, struct exchange *x, int fd,
				 bool reused, const char *host, bool to_parent)
{
	struct proxy *px = cl->px;
	bool may_retry = reused && is_idempotent(&x->req) &&
			 x->req.body == HTTP_BODY_NONE;
	struct head_writer w;
	struct conn up;
	struct body body;
	bool to_error;
	char msg[512];
	int rc;

	conn_init(&up, px->sys, fd, cl->upstream_buf, PROXY_UPSTREAM_BUF);
	w = (struct head_writer){cl->upstream_buf, PROXY_UPSTREAM_BUF, 0,
				 false};
	if (build_request_head(cl, x, host, to_parent, &w) < 0) {
		proxy_send_error(cl, x, 431, "The request head is too large.");
		return OUTCOME_CLOSE;
	}
	rc = net_send_all(px->sys, fd, cl->upstream_buf, w.len);
	if (rc < 0 && may_retry)
		return OUTCOME_RETRY;
	if (rc < 0) {
		util_format(msg, sizeof(msg),
			    "Sending the request to %s failed: %s.", host,
			    strerror(-rc));
		x->detail = "ERROR";
		proxy_send_error(cl, x, 502, msg);
		return OUTCOME_CLOSE;
	}

	body_init(&body, x->req.body, x->req.content_length);
	body.limit = px->set.max_request_body;
	if (!body.done && x->req.expect_continue &&
	    !await_continue(cl, x, &up)) {
		/* The origin answered before the body: skip it, then close. */
		x->client_keep_alive = false;
		relay_response(cl, x, &up, false);
		return OUTCOME_CLOSE;
	}
	rc = body_relay(&body, &cl->conn, fd, px->set.request_timeout_ms,
			&x->bytes_received, &to_error);
	if (rc < 0) {
		x->detail = "ERROR";
		if (to_error) {
			proxy_send_error(cl, x, 502,
					 "The origin stopped reading the "
					 "request body.");
		} else if (rc == -ETIMEDOUT) {
			proxy_send_error(cl, x, 408,
					 "The request body did not arrive in "
					 "time.");
		} else if (rc == -EPROTO) {
			proxy_send_error(cl, x, 400,
					 http_error_reason(body.framing_error));
		} else if (rc == -EFBIG) {
			proxy_send_error(cl, x, 413,
					 "The request body is too large.");
		} else {
			x->client_keep_alive = false; /* client went away */
			x->detail = "CLIENT-GONE";
		}
		return OUTCOME_CLOSE;
	}
	return relay_response(cl, x, &up, may_retry);
}

/* Refuse what this proxy will not forward; true when it answered. */
static bool refuse_early(struct client *cl, struct exchange *x)
{
	struct proxy *px = cl->px;
	const struct http_url *u = &x->req.url;

	if (!util_ieq(u->scheme.ptr, u->scheme.len, "http", 4)) {
		proxy_send_error(cl, x, 501,
				 "Only http:// URLs are forwarded; https goes "
				 "through CONNECT.");
		return true;
	}
	if (u->userinfo.len > 0) {
		proxy_send_error(cl, x, 400,
				 "URLs with user information before the host "
				 "are refused.");
		return true;
	}
	if (via_names_us(px, x->req.headers, x->req.num_headers)) {
		log_event(px->log, LOG_WARN, "%s %s: forwarding loop (Via)",
			  cl->addr, x->url);
		x->detail = "LOOP";
		proxy_send_error(cl, x, 508,
				 "This request has already passed through "
				 "this proxy: a forwarding loop.");
		return true;
	}
	if (x->req.body == HTTP_BODY_LENGTH && px->set.max_request_body &&
	    x->req.content_length > px->set.max_request_body) {
		proxy_send_error(cl, x, 413, "The request body is too large.");
		return true;
	}
	return false;
}

void proxy_forward(struct client *cl, struct exchange *x)
{
	struct proxy *px = cl->px;
	const struct http_url *u = &x->req.url;
	char host[256], msg[512], key[NET_POOL_KEY_MAX];
	struct route route;

	if (refuse_early(cl, x))
		return;
	if (util_copy(host, sizeof(host), u->host.ptr, u->host.len) < 0) {
		proxy_send_error(cl, x, 400, "The host name is too long.");
		return;
	}
	if (max_forwards(&x->req) == 0) {
		answer_here(cl, x);
		return;
	}
	if (!proxy_route(cl, x, host, u->port, &route))
		return;
	util_format(key, sizeof(key), "%s:%s:%u",
		    route.via_parent ? "parent" : "http", route.host,
		    (unsigned)route.port);

	/* A pooled connection may have died idle: one retry on a fresh one. */
	for (int attempt = 0; attempt < 2; attempt++) {
		int fd = attempt == 0 ? net_pool_take(px->pool, key) : -1;
		bool reused = fd >= 0;
		enum outcome outcome;

		if (!reused) {
			fd = net_connect_host(px->sys, cl->rules->hosts,
					      route.host, route.port,
					      px->set.connect_timeout_ms, NULL);
			if (fd < 0) {
				int status = proxy_connect_error(
					fd, route.host, msg, sizeof(msg));
				log_event(px->log, LOG_WARN, "%s %s: %s",
					  cl->addr, x->url, msg);
				x->detail = "ERROR";
				proxy_send_error(cl, x, status, msg);
				return;
			}
			net_set_send_timeout(px->sys, fd,
					     px->set.response_timeout_ms);
			net_set_nodelay(px->sys, fd);
		}
		proxy_track_upstream(cl, fd);
		/* The outcome the access log shows unless an error says more. */
		x->detail = route.via_parent ? "PARENT" : "DIRECT";
		outcome =
			forward_once(cl, x, fd, reused, host, route.via_parent);
		if (outcome == OUTCOME_REUSABLE) {
			proxy_track_upstream(cl, -1);
			net_pool_put(px->pool, key, fd);
			return;
		}
		proxy_close_upstream(cl, fd);
		if (outcome != OUTCOME_RETRY)
			return;
		log_event(px->log, LOG_DEBUG,
			  "%s %s: pooled connection was closed by the origin; "
			  "retrying on a new one",
			  cl->addr, x->url);
	}
}
