/*
 * The per-connection loop: read a request head, decide what to do with
 * it, do it, log it, and go round again while keep-alive allows.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "glassproxy/util.h"
#include "proxy_int.h"

#define CLIENT_BUF	 PROXY_HEAD_MAX
#define LINGER_MS	 2000
#define LINGER_MAX_BYTES (1024 * 1024)

/*
 * The failed-login throttle, made once: it must outlive reloads, or a
 * SIGHUP would forgive every guesser.  The seed keys its address hash;
 * sys has no random source yet, so it mixes the proxy's (ASLR) address
 * with the clock.
 */
static int make_throttle(struct proxy *px, const struct proxy_settings *set)
{
	uint64_t seed = (uint64_t)(uintptr_t)px * 0x9e3779b97f4a7c15ULL ^
			(uint64_t)sys_now_mono_ms(px->sys);

	if (set->auth_max_failures == 0)
		return 0;
	return auth_throttle_new(set->auth_max_failures, set->auth_window_ms,
				 4096, seed, &px->throttle);
}

size_t proxy_housekeeping(struct proxy *px)
{
	return net_pool_sweep(px->pool);
}

int proxy_new(struct sys *sys, struct log *log,
	      const struct proxy_settings *settings, struct proxy **out)
{
	struct proxy *px = calloc(1, sizeof(*px));
	int rc;

	if (!px)
		return -ENOMEM;
	px->sys = sys;
	px->log = log;
	px->set = *settings;
	px->rules = calloc(1, sizeof(*px->rules));
	if (!px->rules) {
		free(px);
		return -ENOMEM;
	}
	px->rules->refs = 1;
	px->rules->set = *settings;
	px->rules->filter = filter_new(); /* defaults until rules are set */
	if (!px->rules->filter) {
		rc = -ENOMEM;
		goto free_rules;
	}
	rc = net_pool_new(sys, settings->max_idle_upstream,
			  settings->upstream_idle_timeout_ms, &px->pool);
	if (rc < 0)
		goto free_rules;
	rc = make_throttle(px, settings);
	if (rc < 0)
		goto free_pool;
	rc = sys_pipe(sys, px->stop_pipe);
	if (rc < 0)
		goto free_throttle;
	pthread_mutex_init(&px->lock, NULL);
	*out = px;
	return 0;

free_throttle:
	auth_throttle_free(px->throttle);
free_pool:
	net_pool_free(px->pool);
free_rules:
	filter_free(px->rules->filter);
	free(px->rules);
	free(px);
	return rc;
}

bool proxy_connect_port_allowed(struct client *cl, unsigned port)
{
	return filter_check_port(cl->rules->filter, port);
}

/*
 * A per-connection buffer, made on first use and kept to the end of the
 * connection, so no request pays a 64 KiB malloc of its own.
 */
static char *lazy_buffer(struct client *cl, struct exchange *x, char **buf,
			 size_t size)
{
	if (!*buf) {
		*buf = malloc(size);
		if (!*buf)
			proxy_refuse(cl, x, PROXY_OUTCOME_NO_MEMORY,
				     "Out of memory.");
	}
	return *buf;
}

bool proxy_route(struct client *cl, struct exchange *x, const char *host,
		 uint16_t port, struct route *out)
{
	const struct proxy_settings *set = proxy_live(cl);

	out->via_parent =
		set->parent_host[0] != '\0' &&
		(!cl->rules->direct ||
		 filter_check_host(cl->rules->direct, host, strlen(host),
				   NULL) != FILTER_ALLOW);
	out->host = out->via_parent ? set->parent_host : host;
	out->port = out->via_parent ? set->parent_port : port;
	/* Both buffers now, so that no later step of the request can fail
	 * for want of one. */
	return lazy_buffer(cl, x, &cl->upstream_buf, PROXY_UPSTREAM_BUF) &&
	       proxy_head_buf(cl, x);
}

char *proxy_head_buf(struct client *cl, struct exchange *x)
{
	return lazy_buffer(cl, x, &cl->head_buf, PROXY_HEAD_OUT_MAX);
}

/*
 * The filter's word on the request's host, before any DNS lookup or
 * connection.  True when the request may go on; otherwise a 403 naming
 * the rule has been sent.
 */
static bool host_allowed(struct client *cl, struct exchange *x)
{
	const struct http_url *u = &x->req.url;
	struct filter_verdict v;
	char rule[FILTER_REASON_MAX + 512], msg[sizeof(rule) + 600];
	enum filter_result result;

	result = filter_check_host(cl->rules->filter, u->host.ptr, u->host.len,
				   &v);
	proxy_mark(cl, x, PROXY_MARK_FILTER);
	if (result == FILTER_ALLOW)
		return true;
	filter_verdict_format(&v, rule, sizeof(rule));
	log_event(cl->px->log, LOG_INFO, "%s %s %s: refused: %s", cl->addr,
		  x->method, x->url, rule);
	util_format(msg, sizeof(msg),
		    "%s does not serve the host %.*s here: %s.", PROXY_NAME,
		    (int)u->host.len, u->host.ptr, rule);
	proxy_refuse(cl, x,
		     result == FILTER_INVALID_HOST ? PROXY_OUTCOME_INVALID_HOST
						   : PROXY_OUTCOME_DENIED_HOST,
		     msg);
	return false;
}

void proxy_stop(struct proxy *px)
{
	pthread_mutex_lock(&px->lock);
	if (!px->stopping) {
		px->stopping = 1;
		sys_pipe_write(px->sys, px->stop_pipe[1], "x", 1);
	}
	pthread_mutex_unlock(&px->lock);
}

void proxy_cut(struct proxy *px)
{
	pthread_mutex_lock(&px->lock);
	for (struct client *c = px->active; c; c = c->next) {
		sys_shutdown(px->sys, c->conn.fd, SHUT_RDWR);
		if (c->upstream_fd >= 0)
			sys_shutdown(px->sys, c->upstream_fd, SHUT_RDWR);
	}
	pthread_mutex_unlock(&px->lock);
}

void proxy_track_upstream(struct client *cl, int fd)
{
	pthread_mutex_lock(&cl->px->lock);
	cl->upstream_fd = fd;
	pthread_mutex_unlock(&cl->px->lock);
}

void proxy_close_upstream(struct client *cl, int fd)
{
	/* Untracked first, so proxy_cut() never touches a reused number. */
	proxy_track_upstream(cl, -1);
	sys_close(cl->px->sys, fd);
}

static void active_add(struct proxy *px, struct client *cl)
{
	pthread_mutex_lock(&px->lock);
	cl->prev = NULL;
	cl->next = px->active;
	if (px->active)
		px->active->prev = cl;
	px->active = cl;
	pthread_mutex_unlock(&px->lock);
}

static void active_remove(struct proxy *px, struct client *cl)
{
	pthread_mutex_lock(&px->lock);
	if (cl->prev)
		cl->prev->next = cl->next;
	else
		px->active = cl->next;
	if (cl->next)
		cl->next->prev = cl->prev;
	pthread_mutex_unlock(&px->lock);
}

static bool proxy_stopping(struct proxy *px)
{
	bool stopping;

	pthread_mutex_lock(&px->lock);
	stopping = px->stopping;
	pthread_mutex_unlock(&px->lock);
	return stopping;
}

/*
 * Wait for a client's next request while idle; false when the wait ended
 * by timeout, stop or error rather than by data.
 */
static bool wait_next_request(struct proxy *px, int fd, int idle_timeout_ms)
{
	struct pollfd p[2] = {{.fd = fd, .events = POLLIN},
			      {.fd = px->stop_pipe[0], .events = POLLIN}};
	int64_t deadline = sys_now_mono_ms(px->sys) + idle_timeout_ms;

	for (;;) {
		int64_t left = deadline - sys_now_mono_ms(px->sys);
		int rc;

		if (left <= 0)
			return false;
		rc = sys_poll(px->sys, p, 2, (int)left);
		if (rc < 0 || (rc > 0 && p[1].revents))
			return false;
		if (rc > 0)
			return true;
	}
}

static void rules_free(struct proxy_rules *rules)
{
	net_hosts_free(rules->hosts);
	filter_free(rules->filter);
	filter_free(rules->direct);
	auth_free(rules->auth);
	free(rules);
}

static struct proxy_rules *rules_get(struct proxy *px)
{
	struct proxy_rules *rules;

	pthread_mutex_lock(&px->lock);
	rules = px->rules;
	rules->refs++;
	pthread_mutex_unlock(&px->lock);
	return rules;
}

static void rules_put(struct proxy *px, struct proxy_rules *rules)
{
	int left;

	if (!rules)
		return;
	pthread_mutex_lock(&px->lock);
	left = --rules->refs;
	pthread_mutex_unlock(&px->lock);
	if (left == 0)
		rules_free(rules);
}

int proxy_set_rules(struct proxy *px, struct proxy_rules_spec *spec)
{
	struct proxy_rules *fresh = calloc(1, sizeof(*fresh)), *old;

	if (!fresh) {
		net_hosts_free(spec->hosts);
		filter_free(spec->filter);
		filter_free(spec->direct);
		auth_free(spec->auth);
		return -ENOMEM;
	}
	fresh->refs = 1;
	fresh->auth = spec->auth;
	fresh->hosts = spec->hosts;
	fresh->filter = spec->filter;
	fresh->direct = spec->direct;
	fresh->set = spec->settings;
	pthread_mutex_lock(&px->lock);
	old = px->rules;
	px->rules = fresh;
	pthread_mutex_unlock(&px->lock);
	rules_put(px, old);
	/* Connections made under the old hosts file may go to old addresses. */
	if (spec->hosts_changed)
		net_pool_flush(px->pool);
	if (net_pool_set_limits(px->pool, fresh->set.max_idle_upstream,
				fresh->set.upstream_idle_timeout_ms) < 0)
		log_event(px->log, LOG_WARN,
			  "out of memory: the upstream pool keeps its old "
			  "limits");
	return 0;
}

/*
 * A request has begun (its first byte is here): it runs under the
 * snapshot current now, which may be newer than the one its connection
 * waited under.
 */
static void rules_refresh(struct client *cl)
{
	struct proxy *px = cl->px;
	struct proxy_rules *old = NULL;

	pthread_mutex_lock(&px->lock);
	if (px->rules != cl->rules) {
		old = cl->rules;
		cl->rules = px->rules;
		cl->rules->refs++;
	}
	pthread_mutex_unlock(&px->lock);
	rules_put(px, old);
}

void proxy_free(struct proxy *px)
{
	if (!px)
		return;
	rules_put(px, px->rules);
	net_pool_free(px->pool);
	auth_throttle_free(px->throttle);
	sys_close(px->sys, px->stop_pipe[0]);
	sys_close(px->sys, px->stop_pipe[1]);
	pthread_mutex_destroy(&px->lock);
	free(px);
}

/* What the access log shows as the URL of a request. */
static void describe_target(struct exchange *x)
{
	struct http_request *r = &x->req;

	util_copy(x->url, sizeof(x->url), r->target.ptr,
		  r->target.len < sizeof(x->url) ? r->target.len
						 : sizeof(x->url) - 1);
	/*
	 * The method is needed after the request body has streamed through
	 * the client buffer (a response to HEAD has no body), when the bytes
	 * the parser's slices point at are gone: keep it in the exchange.
	 */
	if (util_copy(x->method, sizeof(x->method), r->method.ptr,
		      r->method.len) >= 0)
		r->method = (struct http_slice){x->method, r->method.len};
}

/* Milliseconds from the request's first byte to mark m, or -1. */
static int64_t since_start(const struct exchange *x, enum proxy_mark m)
{
	return x->mark[m] ? x->mark[m] - x->start_ms : -1;
}

static void log_exchange(struct client *cl, struct exchange *x)
{
	/* The last byte's mark first: the duration then covers every step. */
	if (x->status)
		proxy_mark(cl, x, PROXY_MARK_LAST_BYTE);
	struct log_access entry = {
		.client = cl->addr,
		.method = x->method[0] ? x->method : "-",
		.url = x->url[0] ? x->url : "-",
		.status = x->status,
		.bytes_sent = x->bytes_sent,
		.bytes_received = x->bytes_received,
		.duration_ms = sys_now_mono_ms(cl->px->sys) - x->start_ms,
		.outcome = proxy_outcome_word(x->outcome),
		.cache_result = proxy_cache_result(x),
		.stored = x->cache.stored,
		.user = x->user[0] ? x->user : "-",
		.conn_id = cl->id,
		.request_no = cl->requests,
		.hierarchy = x->hierarchy,
		.peer = x->peer[0] ? x->peer : NULL,
		.content_type = x->content_type[0] ? x->content_type : NULL,
		.version = x->req.minor_version == 0 ? "HTTP/1.0" : "HTTP/1.1",
		.referer = x->referer[0] ? x->referer : NULL,
		.user_agent = x->user_agent[0] ? x->user_agent : NULL,
	};
	entry.result = proxy_outcome_squid(x->outcome, entry.cache_result);
	entry.timing = (struct log_timing){
		since_start(x, PROXY_MARK_HEAD),
		since_start(x, PROXY_MARK_FILTER),
		since_start(x, PROXY_MARK_RESOLVE),
		since_start(x, PROXY_MARK_CONNECT),
		since_start(x, PROXY_MARK_FIRST_BYTE),
		since_start(x, PROXY_MARK_LAST_BYTE),
	};
	/* Counted before its line is written: whoever sees the line sees
	 * the counters include it. */
	proxy_count_exchange(cl, x);
	log_access(cl->px->log, &entry);
}

/*
 * Closing a socket with unread input makes the kernel send a reset, which
 * can destroy the error response still in flight to the client.  So, as
 * Apache's lingering close does: stop sending, then read and discard what
 * the client still sends, for a short while and a bounded amount.
 */
static void linger_close(struct client *cl)
{
	struct proxy *px = cl->px;
	int64_t deadline = sys_now_mono_ms(px->sys) + LINGER_MS;
	size_t drained = 0;

	sys_shutdown(px->sys, cl->conn.fd, SHUT_WR);
	while (drained < LINGER_MAX_BYTES) {
		int64_t left = deadline - sys_now_mono_ms(px->sys);
		ssize_t n;

		if (left <= 0)
			break;
		n = net_recv(px->sys, cl->conn.fd, cl->conn.buf, cl->conn.cap,
			     (int)left);
		if (n <= 0)
			break;
		drained += (size_t)n;
	}
}

/* HEAD_PARK: resumable, and the rest of the head is not here yet. */
enum head_result { HEAD_OK, HEAD_CLOSE, HEAD_ERROR, HEAD_MORE, HEAD_PARK };

/* Try to parse what has arrived; HEAD_MORE while it is incomplete. */
static enum head_result parse_request_head(struct client *cl,
					   struct exchange *x)
{
	int rc;

	if (cl->conn.len == 0)
		return HEAD_MORE;
	if (x->start_ms == 0) {
		/* The request's first byte: it takes the current rules. */
		x->start_ms = sys_now_mono_ms(cl->px->sys);
		rules_refresh(cl);
	}
	x->req.headers = x->headers;
	x->req.num_headers = PROXY_MAX_HEADERS;
	/* Resumed where the last recv left off: a trickled head costs
	 * linear time, not quadratic. */
	rc = http_parse_request_resume(proxy_conn_data(&cl->conn), cl->conn.len,
				       &x->req, NULL, &x->head_state);
	if (rc > 0) {
		x->head_len = (size_t)rc;
		return HEAD_OK;
	}
	if (rc == HTTP_INCOMPLETE)
		return HEAD_MORE;
	log_event(cl->px->log, LOG_INFO, "%s bad request: %s", cl->addr,
		  http_error_reason(rc));
	proxy_answer(cl, x, PROXY_OUTCOME_BAD_REQUEST, http_error_status(rc),
		     http_error_reason(rc));
	return HEAD_ERROR;
}

/* Receiving more of a head failed: answer if there is someone to answer. */
static enum head_result head_read_failed(struct client *cl, struct exchange *x,
					 ssize_t got)
{
	if (cl->conn.len == 0 &&
	    (got == 0 || got == -ETIMEDOUT || got == -ECONNRESET))
		return HEAD_CLOSE; /* a quiet goodbye */
	if (got == -ETIMEDOUT) {
		log_event(cl->px->log, LOG_INFO,
			  "%s request head not complete after %d ms", cl->addr,
			  proxy_live(cl)->request_timeout_ms);
		proxy_refuse(cl, x, PROXY_OUTCOME_CLIENT_TIMEOUT,
			     "The request head did not arrive in time.");
		return HEAD_ERROR;
	}
	if (got == -ENOBUFS) {
		proxy_refuse(cl, x, PROXY_OUTCOME_HEAD_TOO_LARGE,
			     "The request head is too large.");
		return HEAD_ERROR;
	}
	/* EOF or reset in the middle of a head: nobody to answer. */
	log_event(cl->px->log, LOG_INFO,
		  "%s closed the connection in the middle of a "
		  "request head (%zu bytes)",
		  cl->addr, cl->conn.len);
	x->outcome = PROXY_OUTCOME_CLIENT_CLOSED;
	return HEAD_ERROR;
}

/*
 * A resumed connection whose head is not (all) in the buffer: never wait
 * on a worker.  Whatever has arrived since the waiting room looked is
 * taken; otherwise the connection goes back to wait (HEAD_PARK), unless
 * its wait ran out or the client closed.
 */
static enum head_result resume_head(struct client *cl, struct exchange *x)
{
	ssize_t n;

	if (cl->expired)
		return head_read_failed(cl, x, -ETIMEDOUT);
	if (cl->conn.eof)
		return head_read_failed(cl, x, 0);
	if (cl->conn.len == 0)
		return HEAD_PARK; /* idle: the poller sees new bytes */
	n = proxy_conn_fill(&cl->conn, 0);
	if (n == -ETIMEDOUT)
		return HEAD_PARK;
	if (n <= 0)
		return head_read_failed(cl, x, n);
	return HEAD_MORE;
}

/*
 * Read and parse a request head.  HEAD_CLOSE: the client left (or stayed
 * idle too long) between requests, nothing to answer.  HEAD_ERROR: an
 * error response has been sent.
 */
static enum head_result read_request_head(struct client *cl, struct exchange *x)
{
	struct proxy *px = cl->px;
	int64_t deadline = 0;

	for (;;) {
		enum head_result got = parse_request_head(cl, x);
		int timeout;

		if (got != HEAD_MORE)
			return got;
		if (cl->resumable) {
			got = resume_head(cl, x);
			if (got != HEAD_MORE)
				return got;
			continue;
		}
		if (cl->conn.len == 0 &&
		    (cl->requests > 0 || proxy_stopping(px))) {
			/* Between requests: the keep-alive idle timeout. */
			if (!wait_next_request(
				    px, cl->conn.fd,
				    proxy_live(cl)->client_idle_timeout_ms))
				return HEAD_CLOSE;
			rules_refresh(cl); /* a reload while it was idle */
			timeout = proxy_live(cl)->request_timeout_ms;
		} else {
			if (deadline == 0)
				deadline = sys_now_mono_ms(px->sys) +
					   proxy_live(cl)->request_timeout_ms;
			timeout = (int)(deadline - sys_now_mono_ms(px->sys));
			if (timeout <= 0)
				timeout = 0;
		}
		ssize_t n = proxy_conn_fill(&cl->conn, timeout);
		if (n <= 0)
			return head_read_failed(cl, x, n);
	}
}

/* Dispatch one parsed request.  Returns with x->client_keep_alive set. */
static void handle_request(struct client *cl, struct exchange *x)
{
	const struct http_request *r = &x->req;

	x->client_keep_alive = r->keep_alive && !proxy_stopping(cl->px);
	if (proxy_status_request(cl, x))
		return;
	switch (r->form) {
	case HTTP_FORM_ABSOLUTE:
		/* Credentials first: no probing the lists without them. */
		if (proxy_auth_check(cl, x) && host_allowed(cl, x))
			proxy_forward(cl, x);
		proxy_cache_end(cl, x);
		return;
	case HTTP_FORM_AUTHORITY:
		if (proxy_auth_check(cl, x) && host_allowed(cl, x)) {
			if (cl->px->hooks.tunnel_begins)
				cl->px->hooks.tunnel_begins(cl->px->hooks.arg);
			proxy_connect(cl, x);
		}
		return;
	case HTTP_FORM_ORIGIN:
	case HTTP_FORM_ASTERISK:
		break;
	}
	proxy_refuse(cl, x, PROXY_OUTCOME_NOT_A_PROXY_REQUEST,
		     "This is a proxy: ask it for an absolute URL "
		     "(http://host/path), or configure it as your "
		     "client's proxy.");
}

/* The client ACL, checked when the connection opens; false after a 403. */
static bool client_allowed(struct client *cl, struct exchange *x,
			   const struct sys_addr *peer)
{
	if (filter_check_client(cl->rules->filter,
				(const struct sockaddr *)&peer->ss))
		return true;
	if (x->start_ms == 0)
		x->start_ms = sys_now_mono_ms(cl->px->sys);
	log_event(cl->px->log, LOG_WARN,
		  "%s: client address not allowed (--allow-client)", cl->addr);
	proxy_refuse(cl, x, PROXY_OUTCOME_DENIED_CLIENT,
		     "Your address is not allowed to use this proxy.");
	return false;
}

void proxy_exchange_reset(struct exchange *x)
{
	memset(x, 0,
	       offsetof(struct exchange, cache) +
		       offsetof(struct proxy_cache_x, key));
	x->cache.key[0] = '\0';
	x->url[0] = '\0';
	x->method[0] = '\0';
	x->peer[0] = '\0';
	x->content_type[0] = '\0';
	x->referer[0] = '\0';
	x->user_agent[0] = '\0';
}

enum serve_result { SERVE_NEXT, SERVE_END, SERVE_PARK };

/* One request from its head to its log line; SERVE_END after the last. */
static enum serve_result serve_one(struct client *cl, struct exchange *x)
{
	enum head_result got;

	proxy_exchange_reset(x);
	/* A head that waited in the waiting room began when it arrived. */
	x->start_ms = cl->head_started_ms;
	/* Until its first byte, a request waits under the newest rules. */
	rules_refresh(cl);
	proxy_set_state(cl, PROXY_STATE_WAITING);
	got = read_request_head(cl, x);
	if (got == HEAD_PARK)
		return SERVE_PARK;
	cl->head_started_ms = 0;
	if (got == HEAD_CLOSE)
		return SERVE_END;
	if (got == HEAD_ERROR) {
		log_exchange(cl, x);
		return SERVE_END;
	}
	describe_target(x);
	x->bytes_received = x->head_len;
	proxy_conn_consume(&cl->conn, x->head_len);
	cl->requests++;
	proxy_observe_request(cl, x);
	if (x->method[0] == '\0')
		/* Longer than any method this proxy knows how to relay. */
		proxy_refuse(cl, x, PROXY_OUTCOME_METHOD_TOO_LONG,
			     "The request method is too long.");
	else
		handle_request(cl, x);
	log_exchange(cl, x);
	/* After the answer and its log line: stale-while-revalidate. */
	proxy_cache_background(cl, x, proxy_forward, log_exchange);
	return !proxy_stopping(cl->px) && x->client_keep_alive ? SERVE_NEXT
							       : SERVE_END;
}

void proxy_serve(struct proxy *px, int client_fd, const struct sys_addr *peer)
{
	struct client cl;
	struct exchange *x;
	char *buf;

	memset(&cl, 0, sizeof(cl));
	cl.px = px;
	cl.upstream_fd = -1;
	cl.peer = *peer;
	net_format_addr(peer, cl.addr, sizeof(cl.addr));
	net_format_ip(peer, cl.ip, sizeof(cl.ip));
	proxy_connection_opened(&cl);
	buf = malloc(CLIENT_BUF);
	x = malloc(sizeof(*x)); /* not calloc: see proxy_exchange_reset() */
	if (!buf || !x) {
		log_event(px->log, LOG_ERROR, "%s: out of memory", cl.addr);
		goto free_all;
	}
	proxy_exchange_reset(x);
	proxy_conn_init(&cl.conn, px->sys, client_fd, buf, CLIENT_BUF);
	active_add(px, &cl);
	/* A client the ACL refuses is refused before a byte is read. */
	cl.rules = rules_get(px);
	net_set_send_timeout(px->sys, client_fd,
			     proxy_live(&cl)->response_timeout_ms);
	net_set_nodelay(px->sys, client_fd);
	if (!client_allowed(&cl, x, peer)) {
		log_exchange(&cl, x);
		goto put_rules;
	}
	while (serve_one(&cl, x) == SERVE_NEXT)
		;
	/*
	 * An error answer may leave a body or pipelined requests unread.  (A
	 * client the ACL refused gets no such courtesy: it may not hold a
	 * thread for the linger time.)
	 */
	if (x->status >= 400 && !cl.conn.eof)
		linger_close(&cl);
put_rules:
	rules_put(px, cl.rules);
	active_remove(px, &cl);
free_all:
	proxy_auth_end(&cl);
	free(cl.upstream_buf);
	free(cl.head_buf);
	free(x);
	free(buf);
	proxy_connection_closed(&cl);
}

/*
 * Before closing a refused client: stop sending, and read (without
 * waiting) the request it has already sent, so the close is no reset
 * that could destroy the 503 on its way.  The accept loop cannot linger
 * as linger_close() does; what arrives later may still meet a reset.
 */
static void drain_now(struct sys *sys, int fd)
{
	char sink[4096];

	sys_shutdown(sys, fd, SHUT_WR);
	for (int i = 0; i < 16; i++)
		if (sys_recv(sys, fd, sink, sizeof(sink), MSG_DONTWAIT) <= 0)
			break;
}

void proxy_refuse_busy(struct proxy *px, int client_fd,
		       const struct sys_addr *peer)
{
	struct client cl;
	struct exchange x;

	memset(&cl, 0, sizeof(cl));
	memset(&x, 0, sizeof(x));
	cl.px = px;
	proxy_conn_init(&cl.conn, px->sys, client_fd, NULL, 0);
	net_format_addr(peer, cl.addr, sizeof(cl.addr));
	x.start_ms = sys_now_mono_ms(px->sys);
	net_set_send_timeout(px->sys, client_fd, 1000);
	proxy_refuse(&cl, &x, PROXY_OUTCOME_BUSY,
		     "The proxy is serving as many clients as it may; "
		     "try again shortly.");
	log_exchange(&cl, &x);
	drain_now(px->sys, client_fd);
	sys_close(px->sys, client_fd);
}

/* ---- issue 13: connections resumed by any worker (the waiting room) ---- */

struct proxy_worker {
	char *buf; /* CLIENT_BUF: the client buffer lent to a connection */
	struct exchange *x;
	char *upstream_buf, *head_buf; /* made on first use, as lazy_buffer */
};

/*
 * An idle connection keeps this and nothing else of the proxy's: the
 * record (struct client, first, so the active list and the status page
 * see a plain client), and while a head arrives or pipelined bytes wait,
 * a buffer in conn.buf sized to them (see wait_buf_room).
 */
#define WAIT_BUF_FIRST 4096
struct proxy_client {
	struct client cl;
	/* The waiting room's scan for the head's end: each receive examines
	 * only the new bytes (an offset from the buffer's data). */
	size_t scanned;
};

size_t proxy_client_idle_bytes(void)
{
	return sizeof(struct proxy_client);
}

int proxy_worker_new(struct proxy_worker **out)
{
	struct proxy_worker *w = calloc(1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	w->buf = malloc(CLIENT_BUF);
	w->x = malloc(sizeof(*w->x)); /* see proxy_exchange_reset() */
	if (!w->buf || !w->x) {
		proxy_worker_free(w);
		return -ENOMEM;
	}
	proxy_exchange_reset(w->x);
	*out = w;
	return 0;
}

void proxy_worker_free(struct proxy_worker *w)
{
	if (!w)
		return;
	free(w->buf);
	free(w->x);
	free(w->upstream_buf);
	free(w->head_buf);
	free(w);
}

void proxy_set_hooks(struct proxy *px, const struct proxy_hooks *hooks)
{
	px->hooks = *hooks;
}

void proxy_upstream_hook(struct client *cl, bool begins)
{
	const struct proxy_hooks *h = &cl->px->hooks;

	if (h->upstream)
		h->upstream(h->arg, begins);
}

struct proxy_client *proxy_client_open(struct proxy *px, int fd,
				       const struct sys_addr *peer)
{
	struct proxy_client *pc = calloc(1, sizeof(*pc));
	struct client *cl;
	struct exchange *x;

	if (!pc)
		return NULL;
	cl = &pc->cl;
	cl->px = px;
	cl->upstream_fd = -1;
	cl->peer = *peer;
	cl->resumable = true;
	net_format_addr(peer, cl->addr, sizeof(cl->addr));
	net_format_ip(peer, cl->ip, sizeof(cl->ip));
	proxy_connection_opened(cl);
	proxy_conn_init(&cl->conn, px->sys, fd, NULL, 0);
	active_add(px, cl);
	cl->rules = rules_get(px);
	net_set_send_timeout(px->sys, fd, proxy_live(cl)->response_timeout_ms);
	net_set_nodelay(px->sys, fd);
	if (filter_check_client(cl->rules->filter,
				(const struct sockaddr *)&peer->ss)) {
		/* The accepting thread's own lines name no connection. */
		log_clear_context();
		return pc;
	}
	/* Refused before a byte is read; a small exchange is enough. */
	x = malloc(sizeof(*x));
	if (x) {
		proxy_exchange_reset(x);
		client_allowed(cl, x, peer);
		log_exchange(cl, x);
		free(x);
	}
	proxy_client_close(pc);
	return NULL;
}

/*
 * Has the head's end (a blank line: "\n\n" or "\n\r\n") arrived?  Only
 * a scan for it, resumed where the last one stopped: the worker parses
 * the head once, whole (a malformed head is answered then, or at its
 * timeout, or when it fills the buffer).
 */
static bool head_ended(struct proxy_client *pc)
{
	const struct conn *c = &pc->cl.conn;
	const char *d = proxy_conn_data(c), *nl;
	size_t i = pc->scanned;

	while (i < c->len && (nl = memchr(d + i, '\n', c->len - i))) {
		i = (size_t)(nl - d);
		if (i + 2 > c->len)
			break; /* nothing after it yet: look again later */
		if (d[i + 1] == '\n')
			return true;
		if (d[i + 1] == '\r') {
			if (i + 3 > c->len)
				break;
			if (d[i + 2] == '\n')
				return true;
		}
		i++;
	}
	pc->scanned = i < c->len ? i : c->len;
	return false;
}

/*
 * Room for what the waiting room receives next: a head starts in a small
 * buffer that grows (4 KiB, 16, 64) up to PROXY_HEAD_MAX, so a slow or
 * idle client costs what it sent, not 64 KiB.  False when it cannot.
 */
static bool wait_buf_room(struct conn *c)
{
	size_t cap = c->cap * 4 > WAIT_BUF_FIRST ? c->cap * 4 : WAIT_BUF_FIRST;
	char *grown;

	if (c->buf && c->len < c->cap)
		return true;
	if (c->cap >= PROXY_HEAD_MAX)
		return false;
	if (cap > PROXY_HEAD_MAX)
		cap = PROXY_HEAD_MAX;
	grown = realloc(c->buf, cap);
	if (!grown)
		return false;
	c->buf = grown;
	c->cap = cap;
	return true;
}

/*
 * The first look at a new connection (server_admit) usually finds its
 * head, but not always: then the buffer goes again at once, or 2,000
 * connections accepted before their heads arrived would keep 4 KiB each
 * (the idle-2k bench measured 4.9 KiB per idle connection, not 1.5).
 */
static void wait_buf_drop(struct conn *c)
{
	free(c->buf);
	c->buf = NULL;
	c->cap = 0;
	c->start = 0;
}

enum proxy_wait proxy_client_receive(struct proxy_client *pc)
{
	struct client *cl = &pc->cl;
	struct conn *c = &cl->conn;
	ssize_t n;

	if (!wait_buf_room(c))
		return PROXY_WAIT_READY; /* full (431), or the worker reads */
	n = sys_recv(cl->px->sys, c->fd, c->buf + c->len, c->cap - c->len,
		     MSG_DONTWAIT);
	if ((n == -EAGAIN || n == -EWOULDBLOCK) && c->len == 0)
		wait_buf_drop(c); /* nothing yet: an idle client costs none */
	if (n == -EAGAIN || n == -EWOULDBLOCK)
		return PROXY_WAIT_MORE;
	if (n <= 0) {
		c->eof = n == 0;
		/* With part of a head, a worker logs (and answers) it. */
		return c->len > 0 ? PROXY_WAIT_READY : PROXY_WAIT_GONE;
	}
	if (c->len == 0)
		cl->head_started_ms = sys_now_mono_ms(cl->px->sys);
	c->len += (size_t)n;
	return head_ended(pc) ? PROXY_WAIT_READY : PROXY_WAIT_MORE;
}

int proxy_client_wait_ms(const struct proxy_client *pc)
{
	const struct client *cl = &pc->cl;

	if (cl->conn.len > 0 || cl->requests == 0)
		return proxy_live(cl)->request_timeout_ms;
	return proxy_live(cl)->client_idle_timeout_ms;
}

void proxy_client_expire(struct proxy_client *pc)
{
	pc->cl.expired = true;
}

/* Lend the worker's buffers to the connection, with what it received. */
static void client_attach(struct proxy_client *pc, struct proxy_worker *w)
{
	struct conn *c = &pc->cl.conn;
	char *waiting = c->buf;

	if (waiting && c->len > 0)
		memcpy(w->buf, waiting + c->start, c->len);
	free(waiting);
	c->buf = w->buf;
	c->cap = CLIENT_BUF;
	c->start = 0;
	pc->cl.upstream_buf = w->upstream_buf;
	pc->cl.head_buf = w->head_buf;
	log_set_context(pc->cl.id, 0);
}

/*
 * Take the buffers back.  When parking, pipelined bytes (part of the next
 * head) move to a buffer of the connection's own; false when that fails.
 */
static bool client_detach(struct proxy_client *pc, struct proxy_worker *w,
			  bool parking)
{
	struct conn *c = &pc->cl.conn;
	char *keep = NULL;

	w->upstream_buf = pc->cl.upstream_buf;
	w->head_buf = pc->cl.head_buf;
	pc->cl.upstream_buf = NULL;
	pc->cl.head_buf = NULL;
	if (parking && c->len > 0) {
		keep = malloc(c->len);
		if (keep)
			memcpy(keep, proxy_conn_data(c), c->len);
	}
	c->buf = keep;
	c->cap = keep ? c->len : 0; /* full: the next receive grows it */
	c->start = 0;
	pc->scanned = 0;
	log_clear_context();
	return keep || c->len == 0;
}

bool proxy_client_run(struct proxy_client *pc, struct proxy_worker *w)
{
	struct client *cl = &pc->cl;
	enum serve_result r;

	client_attach(pc, w);
	do
		r = serve_one(cl, w->x);
	while (r == SERVE_NEXT);
	if (r == SERVE_END && w->x->status >= 400 && !cl->conn.eof)
		linger_close(cl); /* as proxy_serve() */
	if (!client_detach(pc, w, r == SERVE_PARK))
		r = SERVE_END;
	if (r == SERVE_PARK)
		proxy_set_state(cl, PROXY_STATE_WAITING);
	return r == SERVE_PARK;
}

void proxy_client_refuse_busy(struct proxy_client *pc)
{
	struct client *cl = &pc->cl;
	struct exchange *x = malloc(sizeof(*x));

	if (!x)
		return;
	proxy_exchange_reset(x);
	x->start_ms = cl->head_started_ms ? cl->head_started_ms
					  : sys_now_mono_ms(cl->px->sys);
	net_set_send_timeout(cl->px->sys, cl->conn.fd, 1000);
	proxy_refuse(cl, x, PROXY_OUTCOME_BUSY,
		     "The proxy is serving as many requests as it may; "
		     "try again shortly.");
	log_exchange(cl, x);
	free(x);
}

void proxy_client_close(struct proxy_client *pc)
{
	struct client *cl;

	if (!pc)
		return;
	cl = &pc->cl;
	rules_put(cl->px, cl->rules);
	active_remove(cl->px, cl);
	proxy_auth_end(cl);
	free(cl->conn.buf);
	proxy_connection_closed(cl);
	free(pc);
}
