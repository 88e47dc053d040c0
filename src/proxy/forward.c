/*
 * Forwarding one HTTP request to its origin and relaying the answer.
 *
 *   proxy_forward        refuse what is not forwarded; route; take a pooled
 *                        connection or connect; one retry on a fresh one
 *   forward_once         one attempt on one upstream connection:
 *     send_request_head    the rewritten head (head.c)
 *     send_request_body    Expect: 100-continue, then the body re-framed
 *                          through a socket sink, watching the origin
 *     relay_response       the response, in five steps:
 *       read_final_head      interim (1xx) heads forwarded on the way
 *       decide_response      the hook where the cache will decide
 *       send_response_head
 *       relay_response_body  decoded, re-framed for the client
 *       finish_response      pool the connection or close it
 *
 * Bodies are decoded and framed anew (body.c, sink.c); their ends are
 * found by the framing rules of RFC 9112 section 6, never by a timeout.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "glassproxy/util.h"
#include "proxy_int.h"

/* 1xx heads relayed before a final one; an origin sending more is broken. */
#define MAX_INTERIM 16

/* What becomes of the upstream connection after an attempt. */
enum upstream_next {
	UPSTREAM_POOL,	/* clean: park it for the next request */
	UPSTREAM_CLOSE, /* close it */
	UPSTREAM_RETRY, /* a reused connection was dead: try a fresh one */
};

/* A response on its way from the origin to the client. */
struct response {
	struct http_response res;
	struct http_header headers[PROXY_MAX_HEADERS];
	int head_len;		    /* of the head in the upstream buffer */
	enum proxy_framing framing; /* how its body leaves for the client */
};

/* RFC 9110 section 9.2.2: a request that can safely be sent twice. */
static bool is_idempotent(const struct http_request *r)
{
	static const char *const methods[] = {"GET",   "HEAD", "OPTIONS",
					      "TRACE", "PUT",  "DELETE"};

	for (size_t i = 0; i < UTIL_ARRAY_LEN(methods); i++)
		if (proxy_method_is(r, methods[i]))
			return true;
	return false;
}

enum proxy_outcome proxy_connect_error(int err, const char *host, char *msg,
				       size_t cap)
{
	switch (err) {
	case -ENOENT:
		util_format(msg, cap, "The host %s could not be resolved.",
			    host);
		return PROXY_OUTCOME_ORIGIN_UNRESOLVED;
	case -EAGAIN:
		util_format(msg, cap,
			    "The name of %s could not be looked up "
			    "right now (temporary resolver failure).",
			    host);
		return PROXY_OUTCOME_ORIGIN_UNRESOLVED;
	case -ETIMEDOUT:
		util_format(msg, cap, "Connecting to %s timed out.", host);
		return PROXY_OUTCOME_ORIGIN_CONNECT_TIMEOUT;
	case -ECONNREFUSED:
		util_format(msg, cap, "%s refused the connection.", host);
		return PROXY_OUTCOME_ORIGIN_REFUSED;
	default:
		util_format(msg, cap, "Connecting to %s failed: %s.", host,
			    strerror(-err));
		return PROXY_OUTCOME_ORIGIN_UNREACHABLE;
	}
}

/* Why reading a response head failed: the outcome and its message. */
static enum proxy_outcome head_read_error(ssize_t got, int timeout, char *msg,
					  size_t cap)
{
	if (got == -ETIMEDOUT) {
		util_format(msg, cap, "The origin did not answer within %d ms.",
			    timeout);
		return PROXY_OUTCOME_ORIGIN_TIMEOUT;
	}
	if (got == -ENOBUFS) {
		util_format(msg, cap,
			    "Reading the origin's response failed: "
			    "head too large.");
		return PROXY_OUTCOME_BAD_ORIGIN_RESPONSE;
	}
	if (got == 0)
		util_format(msg, cap,
			    "The origin closed the connection "
			    "without a complete response.");
	else
		util_format(msg, cap,
			    "Reading the origin's response failed: %s.",
			    strerror((int)-got));
	return PROXY_OUTCOME_ORIGIN_RESET;
}

/*
 * Read one response head from up into r.  Returns its length, or -1 with
 * *why and msg filled in.  *nothing_came is set when the origin closed or
 * reset before sending a single byte: on a reused connection that is the
 * race with its idle timeout, not an error.
 */
static int read_response_head(struct client *cl, struct exchange *x,
			      struct conn *up, struct response *r, char *msg,
			      size_t cap, enum proxy_outcome *why,
			      bool *nothing_came)
{
	struct sys *sys = cl->px->sys;
	int timeout = proxy_live(cl)->response_timeout_ms;
	/* The whole head within the timeout: a byte a minute is no answer. */
	int64_t deadline = sys_now_mono_ms(sys) + timeout;
	/* One head: each recv resumes the scan where the last one ended. */
	struct http_parse_state scan = {0};

	*nothing_came = false;
	for (;;) {
		int64_t left = deadline - sys_now_mono_ms(sys);
		int rc;

		r->res.headers = r->headers;
		r->res.num_headers = PROXY_MAX_HEADERS;
		rc = http_parse_response_resume(proxy_conn_data(up), up->len,
						&r->res, x->req.method, NULL,
						&scan);
		if (rc > 0)
			return rc;
		if (rc != HTTP_INCOMPLETE) {
			util_format(
				msg, cap,
				"The origin sent a malformed response (%s).",
				http_error_reason(rc));
			*why = PROXY_OUTCOME_BAD_ORIGIN_RESPONSE;
			return -1;
		}
		ssize_t got = proxy_conn_fill(up, left > 0 ? (int)left : 0);
		if (got > 0)
			continue;
		*nothing_came =
			up->len == 0 && (got == 0 || got == -ECONNRESET);
		*why = head_read_error(got, timeout, msg, cap);
		return -1;
	}
}

/* Send an interim (1xx) response on to an HTTP/1.1 client. */
static int forward_interim(struct client *cl, struct exchange *x,
			   const struct http_response *res)
{
	struct head_writer w = {cl->head_buf, PROXY_HEAD_OUT_MAX, 0, false};
	int rc;

	/* Interim responses go to HTTP/1.1 clients only (RFC 9110 15.2). */
	if (x->req.minor_version == 0 || x->cache.background)
		return 0;
	proxy_build_response_head(proxy_live(cl), res, x, PROXY_FRAME_LENGTH,
				  &w);
	if (w.overflow)
		return -ENOBUFS;
	rc = net_send_all(cl->px->sys, cl->conn.fd, cl->head_buf, w.len);
	if (rc == 0)
		x->bytes_sent += w.len;
	return rc;
}

/* An interim response that cannot be relayed; true when it answered. */
static bool interim_refused(struct client *cl, struct exchange *x,
			    const struct response *r, int interim)
{
	if (interim == MAX_INTERIM) {
		proxy_refuse(cl, x, PROXY_OUTCOME_TOO_MANY_INTERIM,
			     "The origin sent too many interim (1xx) "
			     "responses.");
		return true;
	}
	if (r->res.status == 101) {
		/* We never forward Upgrade, so this is a broken origin. */
		proxy_refuse(cl, x, PROXY_OUTCOME_UNASKED_SWITCH,
			     "The origin switched protocols unasked.");
		return true;
	}
	return false;
}

enum final_head { FINAL_OK, FINAL_RETRY, FINAL_FAILED };

/* Step 1: read heads until a final one, relaying the interim ones. */
static enum final_head read_final_head(struct client *cl, struct exchange *x,
				       struct conn *up, struct response *r,
				       bool may_retry)
{
	enum proxy_outcome why;
	bool nothing_came;
	char msg[512];

	for (int interim = 0;; interim++) {
		r->head_len = read_response_head(cl, x, up, r, msg, sizeof(msg),
						 &why, &nothing_came);
		/* After an interim response the origin has begun to answer:
		 * sending the request again would run it twice. */
		if (r->head_len < 0 && nothing_came && may_retry &&
		    interim == 0)
			return FINAL_RETRY;
		if (r->head_len < 0) {
			log_event(cl->px->log, LOG_WARN, "%s %s: %s", cl->addr,
				  x->url, msg);
			if (!proxy_cache_failed(cl, x))
				proxy_refuse(cl, x, why, msg);
			return FINAL_FAILED;
		}
		if (r->res.status >= 200)
			return FINAL_OK;
		if (interim_refused(cl, x, r, interim))
			return FINAL_FAILED;
		if (forward_interim(cl, x, &r->res) < 0) {
			x->client_keep_alive = false;
			x->outcome = PROXY_OUTCOME_CLIENT_CLOSED;
			return FINAL_FAILED;
		}
		proxy_conn_consume(up, (size_t)r->head_len);
	}
}

/* How a response body leaves for this client. */
static enum proxy_framing client_framing(const struct http_response *res,
					 const struct http_request *req)
{
	switch (res->body) {
	case HTTP_BODY_NONE:
	case HTTP_BODY_LENGTH:
		return PROXY_FRAME_LENGTH;
	case HTTP_BODY_CHUNKED:
		/* HTTP/1.0 has no chunked coding: decode, end by closing. */
		return req->minor_version == 0 ? PROXY_FRAME_CLOSE
					       : PROXY_FRAME_CHUNKED;
	case HTTP_BODY_UNTIL_CLOSE:
		break;
	}
	return PROXY_FRAME_CLOSE;
}

/*
 * Step 2: the decision point between "the final response head has
 * arrived" and "the head goes to the client": how the body is framed for
 * the client, and the cache's say (cache_glue.c): store the response (tee
 * the body), merge a 304 into a stored entry and serve that, or serve a
 * stored one when the origin answered 5xx.  True when the cache answered.
 */
static bool decide_response(struct client *cl, struct exchange *x,
			    struct response *r)
{
	if (proxy_cache_response(cl, x, &r->res))
		return true;
	r->framing = client_framing(&r->res, &x->req);
	/* A body delimited by the close ends the client connection. */
	if (r->framing == PROXY_FRAME_CLOSE && r->res.body != HTTP_BODY_NONE)
		x->client_keep_alive = false;
	return false;
}

/* Step 3: the final head, rewritten, to the client; 0 or -1. */
/*
 * Does body follow the head at once?  An identity body whose first bytes
 * came in with the head is written to the client straight after it, with
 * no wait: the head can then go with MSG_MORE and leave in the same
 * segment as those bytes (a small response in one segment, not two: the
 * loopback bench's miss-1k saw about 2 fewer segments per request,
 * counting the ACK).  A chunked body is not: its buffered bytes may be
 * only part of a chunk's size line, and the head must not wait for the
 * origin.
 */
static bool body_follows_at_once(const struct conn *up,
				 const struct response *r)
{
	return up->len > 0 && (r->res.body == HTTP_BODY_LENGTH ||
			       r->res.body == HTTP_BODY_UNTIL_CLOSE);
}

static int send_response_head(struct client *cl, struct exchange *x,
			      const struct response *r, bool more)
{
	struct head_writer w = {cl->head_buf, PROXY_HEAD_OUT_MAX, 0, false};
	int rc;

	proxy_mark(cl, x, PROXY_MARK_FIRST_BYTE);
	proxy_observe_response(x, r->res.headers, r->res.num_headers);
	if (proxy_build_response_head(proxy_live(cl), &r->res, x, r->framing,
				      &w) < 0) {
		proxy_refuse(cl, x, PROXY_OUTCOME_BAD_ORIGIN_RESPONSE,
			     "The response head is too large.");
		return -1;
	}
	x->status = r->res.status;
	if (x->cache.background)
		return 0; /* a revalidation after a stale answer */
	rc = more ? net_send_all_more(cl->px->sys, cl->conn.fd, cl->head_buf,
				      w.len)
		  : net_send_all(cl->px->sys, cl->conn.fd, cl->head_buf, w.len);
	if (rc < 0) {
		x->client_keep_alive = false;
		x->outcome = PROXY_OUTCOME_CLIENT_CLOSED;
		return -1;
	}
	x->bytes_sent += w.len;
	return 0;
}

/*
 * A response body that did not make it all the way: say why and close the
 * client connection.  The head is out, so no error page can follow: the
 * close is what tells the client the body is incomplete.
 */
static bool response_body_failed(struct client *cl, struct exchange *x,
				 const struct body *body,
				 const struct proxy_sink *to, int rc)
{
	x->client_keep_alive = false;
	/* Out of its allowance, or one send blocked past its timeout. */
	if (body->send_slow || to->error == -ETIMEDOUT) {
		x->outcome = PROXY_OUTCOME_CLIENT_SLOW_READER;
		log_event(cl->px->log, LOG_INFO,
			  "%s %s: the client read the response too slowly "
			  "(--min-send-rate): closed",
			  cl->addr, x->url);
		return false;
	}
	x->outcome = to->error ? PROXY_OUTCOME_CLIENT_CLOSED
			       : PROXY_OUTCOME_ORIGIN_TRUNCATED;
	if (!to->error)
		log_event(cl->px->log, LOG_WARN,
			  "%s %s: the response body from the origin "
			  "ended early: %s",
			  cl->addr, x->url,
			  rc == -EPROTO ? http_error_reason(body->framing_error)
					: strerror(-rc));
	return false;
}

/* Step 4: the body, decoded and framed anew; true when it all went. */
static bool relay_response_body(struct client *cl, struct exchange *x,
				struct conn *up, const struct response *r)
{
	struct proxy_socket_sink client;
	struct proxy_store_sink store = {.w = NULL};
	struct proxy_tee_sink tee;
	struct proxy_sink *to;
	struct body body;
	int rc;

	if (r->res.body == HTTP_BODY_NONE) {
		proxy_cache_body_done(x, true, 0);
		return true;
	}
	to = proxy_sink_socket(&client, cl->px->sys, cl->conn.fd, r->framing,
			       r->res.content_length);
	if (x->cache.background)
		to = proxy_sink_discard(&client.sink);
	/* A storable response: its body goes to the store as well. */
	to = proxy_cache_sink(x, to, &tee, &store);
	proxy_body_init(&body, r->res.body, r->res.content_length);
	/* The origin's pace is its own (the per-wait timeout); the client's
	 * reading is held to --min-send-rate. */
	proxy_body_set_rates(&body, proxy_live(cl),
			     sys_now_mono_ms(cl->px->sys), false, cl->conn.fd);
	rc = proxy_body_relay(&body, up, to,
			      proxy_live(cl)->response_timeout_ms);
	x->bytes_sent += to->wire;
	proxy_cache_body_done(x, rc == 0 && !store.sink.error,
			      store.sink.payload);
	/* The tee goes on without a failed client: a failure all the same. */
	if (rc == 0 && client.sink.error)
		rc = client.sink.error;
	if (rc == 0 && body.send_timeout_cut)
		net_set_send_timeout(cl->px->sys, cl->conn.fd,
				     proxy_live(cl)->response_timeout_ms);
	if (rc == 0)
		return true;
	return response_body_failed(cl, x, &body, &client.sink, rc);
}

/*
 * A bodiless response that announced a body (Transfer-Encoding, or a
 * non-zero Content-Length on a 204): the origin may well send one, which
 * would then reach the next client of a pooled connection (issue 15,
 * finding 5).
 */
static bool announced_a_body(const struct http_response *res)
{
	const struct http_header *h = res->headers;
	uint64_t v = 0;

	if (res->body != HTTP_BODY_NONE)
		return false;
	if (http_find_header(h, res->num_headers, "transfer-encoding", 0) >= 0)
		return true;
	if (res->status != 204 ||
	    http_find_header(h, res->num_headers, "content-length", 0) < 0)
		return false;
	/* Read as if it were a 200: anything but one "0" is a body. */
	return proxy_bodiless_length(200, h, res->num_headers, &v) != 1 ||
	       v != 0;
}

/* Step 5: reuse only a connection with nothing unexplained left on it. */
static enum upstream_next finish_response(const struct conn *up,
					  const struct response *r)
{
	return r->res.keep_alive && up->len == 0 && !announced_a_body(&r->res)
		       ? UPSTREAM_POOL
		       : UPSTREAM_CLOSE;
}

/* The response to the request just sent, from its head to its end. */
static enum upstream_next relay_response(struct client *cl, struct exchange *x,
					 struct conn *up, bool may_retry)
{
	struct response r;

	switch (read_final_head(cl, x, up, &r, may_retry)) {
	case FINAL_OK:
		break;
	case FINAL_RETRY:
		return UPSTREAM_RETRY;
	case FINAL_FAILED:
		return UPSTREAM_CLOSE;
	}
	proxy_conn_consume(up, (size_t)r.head_len);
	if (decide_response(cl, x, &r))
		/* Answered from the cache: a body we did not read ends it. */
		return r.res.body == HTTP_BODY_NONE && x->client_keep_alive
			       ? finish_response(up, &r)
			       : UPSTREAM_CLOSE;
	if (send_response_head(cl, x, &r, body_follows_at_once(up, &r)) < 0)
		return UPSTREAM_CLOSE;
	if (!relay_response_body(cl, x, up, &r))
		return UPSTREAM_CLOSE;
	return finish_response(up, &r);
}

enum origin_spoke { SPOKE_INTERIM, SPOKE_FINAL, SPOKE_CLIENT_GONE };

/*
 * The origin has something to say before it has the whole request body.
 * An interim (1xx) response goes on to the client and the upload goes on
 * (some servers send 100 unasked); anything else, a final answer or a
 * close, ends the upload, and relay_response() reads it again from the
 * buffer.
 */
static enum origin_spoke origin_spoke(struct client *cl, struct exchange *x,
				      struct conn *up)
{
	enum proxy_outcome why;
	struct response r;
	bool nothing_came;
	char msg[256];

	r.head_len = read_response_head(cl, x, up, &r, msg, sizeof(msg), &why,
					&nothing_came);
	if (r.head_len < 0 || r.res.status >= 200 || r.res.status == 101)
		return SPOKE_FINAL;
	/* Consumed even when it cannot go on: it must not be read twice. */
	proxy_conn_consume(up, (size_t)r.head_len);
	if (forward_interim(cl, x, &r.res) < 0)
		return SPOKE_CLIENT_GONE;
	return SPOKE_INTERIM;
}

/*
 * Expect: 100-continue (RFC 9110 section 10.1.1): the client holds its body
 * back until it hears 100 (or a while passes).  Wait for whichever speaks
 * first: the client (it gave up waiting: send the body) or the origin (a
 * 100 goes on to the client; a final status answers without the body).
 */
static enum origin_spoke await_continue(struct client *cl, struct exchange *x,
					struct conn *up)
{
	struct pollfd p[2] = {{.fd = cl->conn.fd, .events = POLLIN},
			      {.fd = up->fd, .events = POLLIN}};
	int timeout = proxy_live(cl)->response_timeout_ms;

	if (cl->conn.len > 0 || sys_poll(cl->px->sys, p, 2, timeout) <= 0 ||
	    !(p[1].revents & (POLLIN | POLLHUP | POLLERR)))
		return SPOKE_INTERIM; /* nothing from the origin: send it */
	return origin_spoke(cl, x, up);
}

/* Answer TRACE or OPTIONS with Max-Forwards: 0 here (RFC 9110 7.6.2). */
static void trace_echo(const struct http_request *r, struct head_writer *w)
{
	/* The request as received, minus credentials (9.3.8). */
	proxy_head_add(w, r->method.ptr, r->method.len);
	proxy_head_add(w, " ", 1);
	proxy_head_add(w, r->target.ptr, r->target.len);
	proxy_head_add_str(w, r->minor_version ? " HTTP/1.1\r\n"
					       : " HTTP/1.0\r\n");
	for (size_t i = 0; i < r->num_headers; i++)
		if (!http_name_is(r->headers[i].name, "authorization") &&
		    !http_name_is(r->headers[i].name, "proxy-authorization") &&
		    !http_name_is(r->headers[i].name, "cookie"))
			proxy_head_add_header(w, &r->headers[i]);
	proxy_head_add_str(w, "\r\n");
}

static void answer_here(struct client *cl, struct exchange *x)
{
	static const char allow[] =
		"GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, TRACE, CONNECT";
	const struct http_request *r = &x->req;
	const char *close = "Connection: close\r\n";
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
	if (proxy_method_is(r, "TRACE"))
		trace_echo(r, &w);
	n = util_format(head, sizeof(head),
			"HTTP/1.1 200 OK\r\n%s%s%s"
			"Content-Length: %zu\r\nVia: 1.1 %s\r\n%s\r\n",
			w.len ? "Content-Type: message/http\r\n" : "Allow: ",
			w.len ? "" : allow, w.len ? "" : "\r\n", w.len,
			proxy_live(cl)->via_name,
			x->client_keep_alive ? "" : close);
	x->status = 200;
	x->outcome = PROXY_OUTCOME_ANSWERED_HERE;
	if (n < 0 ||
	    net_send_all(cl->px->sys, cl->conn.fd, head, (size_t)n) < 0 ||
	    net_send_all(cl->px->sys, cl->conn.fd, echo, w.len) < 0)
		x->client_keep_alive = false;
	else
		x->bytes_sent += (uint64_t)n + w.len;
}

enum body_sent { BODY_SENT, BODY_FAILED, BODY_ANSWERED, BODY_EARLY };

/* The request body could not be relayed: answer for the reason why. */
static void request_body_failed(struct client *cl, struct exchange *x,
				const struct body *b, int rc)
{
	if (rc == -ETIMEDOUT)
		proxy_refuse(cl, x, PROXY_OUTCOME_CLIENT_BODY_TIMEOUT,
			     "The request body did not arrive in time.");
	else if (rc == -EPROTO)
		proxy_refuse(cl, x, PROXY_OUTCOME_BAD_REQUEST_BODY,
			     http_error_reason(b->framing_error));
	else if (rc == -EFBIG)
		proxy_refuse(cl, x, PROXY_OUTCOME_TOO_LARGE,
			     "The request body is too large.");
	else {
		x->client_keep_alive = false; /* the client went away */
		x->outcome = PROXY_OUTCOME_CLIENT_CLOSED;
	}
}

/*
 * Relay the body while the origin's socket is watched: an origin may
 * answer before it has read the whole body (RFC 9112 section 9.3).
 * Interim answers on the way are passed on; the relay then resumes.
 */
static int relay_request_body(struct client *cl, struct exchange *x,
			      struct conn *up, struct body *b,
			      struct proxy_sink *to, bool *client_gone)
{
	int rc;

	*client_gone = false;
	b->watch_fd = up->fd;
	for (int interim = 0;; interim++) {
		rc = proxy_body_relay(b, &cl->conn, to,
				      proxy_live(cl)->request_timeout_ms);
		if (rc != -EALREADY || interim == MAX_INTERIM)
			return rc;
		switch (origin_spoke(cl, x, up)) {
		case SPOKE_INTERIM:
			break;
		case SPOKE_FINAL:
			return rc;
		case SPOKE_CLIENT_GONE:
			*client_gone = true;
			return rc;
		}
	}
}

/*
 * The request body, decoded and framed anew for the origin, after the
 * 100-continue dance when the client asked for it.
 */
static enum body_sent send_request_body(struct client *cl, struct exchange *x,
					struct conn *up)
{
	const struct http_request *r = &x->req;
	struct proxy_socket_sink origin;
	struct proxy_sink *to;
	struct body body;
	bool gone = false;
	int rc;

	proxy_body_init(&body, r->body, r->content_length);
	if (body.done)
		return BODY_SENT;
	if (r->expect_continue) {
		enum origin_spoke first = await_continue(cl, x, up);
		if (first == SPOKE_FINAL)
			return BODY_ANSWERED;
		gone = first == SPOKE_CLIENT_GONE;
	}
	body.limit = proxy_live(cl)->max_request_body;
	/* The whole body within --request-body-timeout, extended by one
	 * second per --min-body-rate bytes. */
	proxy_body_set_rates(&body, proxy_live(cl),
			     sys_now_mono_ms(cl->px->sys), true, -1);
	to = proxy_sink_socket(&origin, cl->px->sys, up->fd,
			       r->body == HTTP_BODY_CHUNKED
				       ? PROXY_FRAME_CHUNKED
				       : PROXY_FRAME_LENGTH,
			       r->content_length);
	rc = gone ? 0 : relay_request_body(cl, x, up, &body, to, &gone);
	x->bytes_received += body.moved;
	if (gone) {
		x->client_keep_alive = false;
		x->outcome = PROXY_OUTCOME_CLIENT_CLOSED;
		return BODY_FAILED;
	}
	if (rc == 0)
		return BODY_SENT;
	/* The origin spoke, or stopped reading: its answer may be there. */
	if (rc == -EALREADY || to->error)
		return BODY_EARLY;
	request_body_failed(cl, x, &body, rc);
	return BODY_FAILED;
}

/* The request head to the origin; false (and *next) when it failed. */
static bool send_request_head(struct client *cl, struct exchange *x,
			      struct conn *up, const char *host, bool to_parent,
			      bool may_retry, enum upstream_next *next)
{
	struct head_writer w = {cl->upstream_buf, PROXY_UPSTREAM_BUF, 0, false};
	char msg[512];
	int rc;

	*next = UPSTREAM_CLOSE;
	if (proxy_build_request_head(cl, x, host, to_parent, &w) < 0) {
		proxy_refuse(cl, x, PROXY_OUTCOME_HEAD_TOO_LARGE,
			     "The request head is too large.");
		return false;
	}
	rc = net_send_all(cl->px->sys, up->fd, cl->upstream_buf, w.len);
	if (rc == 0)
		return true;
	if (may_retry) {
		*next = UPSTREAM_RETRY;
		return false;
	}
	util_format(msg, sizeof(msg), "Sending the request to %s failed: %s.",
		    host, strerror(-rc));
	proxy_refuse(cl, x, PROXY_OUTCOME_ORIGIN_RESET, msg);
	return false;
}

/*
 * The origin answered before it had the whole body: relay its answer,
 * then close both connections (the rest of the body is still coming).
 */
static void relay_early_response(struct client *cl, struct exchange *x,
				 struct conn *up)
{
	enum proxy_outcome served = x->outcome;

	x->client_keep_alive = false;
	relay_response(cl, x, up, false);
	if (x->outcome == served)
		x->outcome = PROXY_OUTCOME_EARLY_RESPONSE;
	else if (x->outcome == PROXY_OUTCOME_ORIGIN_RESET)
		x->outcome = PROXY_OUTCOME_ORIGIN_STOPPED_READING;
}

/* Everything about one attempt on one upstream connection. */
static enum upstream_next forward_once(struct client *cl, struct exchange *x,
				       int fd, bool reused, const char *host,
				       bool to_parent)
{
	bool may_retry = reused && is_idempotent(&x->req) &&
			 x->req.body == HTTP_BODY_NONE;
	enum upstream_next next;
	struct conn up;

	proxy_conn_init(&up, cl->px->sys, fd, cl->upstream_buf,
			PROXY_UPSTREAM_BUF);
	if (!send_request_head(cl, x, &up, host, to_parent, may_retry, &next))
		return next;
	switch (send_request_body(cl, x, &up)) {
	case BODY_SENT:
		break;
	case BODY_FAILED:
		return UPSTREAM_CLOSE;
	case BODY_ANSWERED:
		/* The origin answered instead of 100: skip the body, close. */
		x->client_keep_alive = false;
		relay_response(cl, x, &up, false);
		return UPSTREAM_CLOSE;
	case BODY_EARLY:
		relay_early_response(cl, x, &up);
		return UPSTREAM_CLOSE;
	}
	return relay_response(cl, x, &up, may_retry);
}

/* Refuse what this proxy will not forward; true when it answered. */
static bool refuse_early(struct client *cl, struct exchange *x)
{
	const struct proxy_settings *set = proxy_live(cl);
	const struct http_url *u = &x->req.url;

	if (!util_ieq(u->scheme.ptr, u->scheme.len, "http", 4)) {
		proxy_refuse(cl, x, PROXY_OUTCOME_UNSUPPORTED_SCHEME,
			     "Only http:// URLs are forwarded; https goes "
			     "through CONNECT.");
		return true;
	}
	if (u->userinfo.len > 0) {
		proxy_refuse(cl, x, PROXY_OUTCOME_USERINFO,
			     "URLs with user information before the host "
			     "are refused.");
		return true;
	}
	if (!proxy_http_port_allowed(cl, x, u->port))
		return true;
	if (proxy_via_names_us(set->via_name, x->req.headers,
			       x->req.num_headers)) {
		log_event(cl->px->log, LOG_WARN, "%s %s: forwarding loop (Via)",
			  cl->addr, x->url);
		proxy_refuse(cl, x, PROXY_OUTCOME_LOOP,
			     "This request has already passed through "
			     "this proxy: a forwarding loop.");
		return true;
	}
	if (x->req.body == HTTP_BODY_LENGTH && set->max_request_body &&
	    x->req.content_length > set->max_request_body) {
		proxy_refuse(cl, x, PROXY_OUTCOME_TOO_LARGE,
			     "The request body is too large.");
		return true;
	}
	return false;
}

/*
 * The upstream pool's key for a route, "http:host:port" or
 * "parent:host:port" (host is at most 255 bytes, so it always fits in
 * NET_POOL_KEY_MAX); put together by hand, not by vsnprintf, on every
 * request's path.
 */
static void pool_key(char key[NET_POOL_KEY_MAX], const struct route *r)
{
	const char *kind = r->via_parent ? "parent:" : "http:";
	size_t at = strlen(kind), host = strlen(r->host);

	memcpy(key, kind, at);
	memcpy(key + at, r->host, host);
	at += host;
	key[at++] = ':';
	util_format_u64(key + at, NET_POOL_KEY_MAX - at, r->port);
}

/*
 * A connection for this attempt: a pooled one on the first (*reused), else
 * a fresh one.  -1 when connecting failed (answered).
 */
static int open_upstream(struct client *cl, struct exchange *x,
			 const struct route *route, const char *key,
			 int attempt, bool *reused)
{
	struct proxy *px = cl->px;
	const struct proxy_settings *set = proxy_live(cl);
	int fd = attempt == 0 ? net_pool_take(px->pool, key) : -1;

	*reused = fd >= 0;
	if (*reused) {
		proxy_observe_upstream(cl, x, route->host, route->via_parent);
		return fd;
	}
	/* Every address the name resolves to is vetted first (vet.c). */
	fd = proxy_connect_vetted(cl, x, route);
	if (fd < 0)
		return -1;
	proxy_observe_upstream(cl, x, route->host, route->via_parent);
	net_set_send_timeout(px->sys, fd, set->response_timeout_ms);
	net_set_nodelay(px->sys, fd);
	return fd;
}

static void forward_routed(struct client *cl, struct exchange *x,
			   const char *host, const struct route *r,
			   const char *key);

void proxy_forward(struct client *cl, struct exchange *x)
{
	const struct http_url *u = &x->req.url;
	char host[256], key[NET_POOL_KEY_MAX];
	struct route route;

	if (refuse_early(cl, x))
		return;
	if (util_copy(host, sizeof(host), u->host.ptr, u->host.len) < 0) {
		proxy_refuse(cl, x, PROXY_OUTCOME_HOST_TOO_LONG,
			     "The host name is too long.");
		return;
	}
	if (proxy_max_forwards(&x->req) == 0) {
		answer_here(cl, x);
		return;
	}
	if (proxy_cache_before(cl, x))
		return;
	if (!proxy_route(cl, x, host, u->port, &route))
		return;
	pool_key(key, &route);
	proxy_upstream_hook(cl, true);
	forward_routed(cl, x, host, &route, key);
	/* A 304 that selected no stored response: once more, without the
	 * cache's conditionals (cache_glue.c). */
	if (proxy_cache_refetch(x))
		forward_routed(cl, x, host, &route, key);
	proxy_upstream_hook(cl, false);
}

/* The request to its route; a dead pooled connection is retried once. */
static void forward_routed(struct client *cl, struct exchange *x,
			   const char *host, const struct route *r,
			   const char *key)
{
	const struct route route = *r;

	for (int attempt = 0; attempt < 2; attempt++) {
		bool reused;
		int fd = open_upstream(cl, x, &route, key, attempt, &reused);
		enum upstream_next next;

		if (fd < 0)
			return;
		proxy_track_upstream(cl, fd);
		/* The outcome the access log shows unless an error says more. */
		x->outcome = route.via_parent ? PROXY_OUTCOME_PARENT
					      : PROXY_OUTCOME_DIRECT;
		next = forward_once(cl, x, fd, reused, host, route.via_parent);
		if (next == UPSTREAM_POOL) {
			proxy_track_upstream(cl, -1);
			net_pool_put(cl->px->pool, key, fd);
			return;
		}
		proxy_close_upstream(cl, fd);
		if (next != UPSTREAM_RETRY)
			return;
		log_event(cl->px->log, LOG_DEBUG,
			  "%s %s: pooled connection was closed by the "
			  "origin; "
			  "retrying on a new one",
			  cl->addr, x->url);
	}
}
