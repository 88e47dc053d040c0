/*
 * The status page (issue #12): the proxy answers for itself at
 * http://glassproxy.status/ (through the proxy) and at
 * /glassproxy/status on its own address (asked directly), with /json and
 * /metrics beside each.  The HTML is plain, readable without JavaScript,
 * refreshes itself, and draws the request rate of the last ten minutes as
 * an inline SVG chart.  Only clients the ACL let in get this far.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "glassproxy/util.h"
#include "proxy_int.h"

#define PAGE_MAX	(128 * 1024)
#define ACTIVE_ROWS_MAX 50
#define CHART_W		600
#define CHART_H		100
#define REFRESH_SECONDS 5

enum status_view { VIEW_HTML, VIEW_JSON, VIEW_METRICS };

/* Text appended into the page buffer; stops quietly when full. */
struct page {
	char *buf;
	size_t cap, len;
};

static void put(struct page *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void put(struct page *p, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(p->buf + p->len, p->cap - p->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		p->len += (size_t)n < p->cap - p->len ? (size_t)n
						      : p->cap - p->len - 1;
}

/* Text from the network, HTML-escaped; other bytes as '?'. */
static void put_html(struct page *p, const char *text)
{
	for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
		if (*c == '<')
			put(p, "&lt;");
		else if (*c == '>')
			put(p, "&gt;");
		else if (*c == '&')
			put(p, "&amp;");
		else if (*c == '"')
			put(p, "&quot;");
		else
			put(p, "%c", *c >= 0x20 && *c < 0x7f ? *c : '?');
	}
}

/* put_html, keeping line ends (for <pre>). */
static void put_html_text(struct page *p, const char *text)
{
	char line[512];

	while (*text) {
		size_t n = strcspn(text, "\n");
		size_t k = n < sizeof(line) - 1 ? n : sizeof(line) - 1;

		memcpy(line, text, k);
		line[k] = '\0';
		put_html(p, line);
		put(p, "\n");
		text += n + (text[n] == '\n');
	}
}

/* Which view a path under the status page's root asks for. */
static bool view_of(const char *path, size_t len, enum status_view *v)
{
	if (len == 0 || (len == 1 && path[0] == '/')) {
		*v = VIEW_HTML;
		return true;
	}
	if (len == 5 && memcmp(path, "/json", 5) == 0) {
		*v = VIEW_JSON;
		return true;
	}
	if (len == 8 && memcmp(path, "/metrics", 8) == 0) {
		*v = VIEW_METRICS;
		return true;
	}
	return false;
}

/* The path without its query, so "/?refresh" is the page too. */
static size_t path_len(const struct http_slice *s)
{
	const char *q = memchr(s->ptr, '?', s->len);

	return q ? (size_t)(q - s->ptr) : s->len;
}

static bool wants_status(const struct exchange *x, enum status_view *v)
{
	const struct http_request *r = &x->req;
	const size_t root = strlen(PROXY_STATUS_PATH);

	if (r->form == HTTP_FORM_ABSOLUTE)
		return util_ieq(r->url.host.ptr, r->url.host.len,
				PROXY_STATUS_HOST, strlen(PROXY_STATUS_HOST)) &&
		       view_of(r->url.path.ptr, path_len(&r->url.path), v);
	if (r->form != HTTP_FORM_ORIGIN || r->target.len < root ||
	    memcmp(r->target.ptr, PROXY_STATUS_PATH, root) != 0)
		return false;
	return view_of(r->target.ptr + root, path_len(&r->target) - root, v);
}

static const char *state_name(int state)
{
	switch (state) {
	case PROXY_STATE_SERVING:
		return "serving";
	case PROXY_STATE_TUNNEL:
		return "tunnel";
	default:
		return "waiting";
	}
}

/* The active connections, copied under the lock, one table row each. */
static void put_active(struct page *p, struct client *self)
{
	struct proxy *px = self->px;
	int64_t now = sys_now_mono_ms(px->sys);
	int rows = 0;

	put(p, "<h2>Active connections</h2>\n<table id=\"active\">\n"
	       "<tr><th>id</th><th>client</th><th>target</th><th>age</th>"
	       "<th>state</th></tr>\n");
	pthread_mutex_lock(&px->lock);
	for (struct client *c = px->active; c && rows < ACTIVE_ROWS_MAX;
	     c = c->next, rows++) {
		put(p, "<tr><td>%llu</td><td>", (unsigned long long)c->id);
		put_html(p, c->addr);
		put(p, "</td><td>");
		put_html(p, c->target[0] ? c->target : "-");
		put(p, "</td><td>%.1f s</td><td>%s</td></tr>\n",
		    (double)(now - c->opened_ms) / 1000.0,
		    c == self ? "this request"
			      : state_name(atomic_load(&c->state)));
	}
	pthread_mutex_unlock(&px->lock);
	put(p, "</table>\n");
}

/* The rate history as bars, the newest on the right. */
static void put_chart(struct page *p, const struct stats_snapshot *s)
{
	const int bar = CHART_W / STATS_RATE_SLOTS;
	uint64_t top = 1;

	for (int i = 0; i < STATS_RATE_SLOTS; i++)
		if (s->rate[i] > top)
			top = s->rate[i];
	put(p,
	    "<h2>Requests per %d s, last %d minutes (peak %llu)</h2>\n"
	    "<svg id=\"rate-chart\" xmlns=\"http://www.w3.org/2000/svg\" "
	    "width=\"%d\" height=\"%d\" role=\"img\" "
	    "aria-label=\"request rate\">\n"
	    "<rect width=\"%d\" height=\"%d\" fill=\"#f4f4f4\"/>\n",
	    STATS_RATE_SLOT_S, STATS_RATE_SLOTS * STATS_RATE_SLOT_S / 60,
	    (unsigned long long)top, CHART_W, CHART_H, CHART_W, CHART_H);
	for (int i = 0; i < STATS_RATE_SLOTS; i++) {
		int h = (int)(s->rate[i] * (CHART_H - 4) / top);

		put(p,
		    "<rect class=\"bar\" x=\"%d\" y=\"%d\" width=\"%d\" "
		    "height=\"%d\" fill=\"#36c\"><title>%llu</title></rect>\n",
		    i * bar, CHART_H - h, bar - 1, h,
		    (unsigned long long)s->rate[i]);
	}
	put(p, "</svg>\n");
}

static void put_row(struct page *p, const char *name, unsigned long long n)
{
	put(p, "<tr><th>%s</th><td class=\"n\" id=\"%s\">%llu</td></tr>\n",
	    name, name, n);
}

static void put_counters(struct page *p, const struct stats_snapshot *s)
{
	uint64_t lookups = s->cache_hits + s->cache_misses;

	put(p, "<h2>Counters</h2>\n<table id=\"counters\">\n");
	put_row(p, "uptime_s", s->uptime_s);
	put_row(p, "connections_total", s->connections_total);
	put_row(p, "connections_active", s->connections_active);
	put_row(p, "requests_total", s->requests_total);
	for (int i = 0; i < STATS_METHOD_COUNT; i++)
		if (s->requests[i])
			put(p,
			    "<tr><th>requests %s</th><td "
			    "class=\"n\">%llu</td></tr>\n",
			    stats_method_name((enum stats_method)i),
			    (unsigned long long)s->requests[i]);
	put_row(p, "responses_2xx", s->responses[2]);
	put_row(p, "responses_3xx", s->responses[3]);
	put_row(p, "responses_4xx", s->responses[4]);
	put_row(p, "responses_5xx", s->responses[5]);
	put_row(p, "bytes_in", s->bytes_in);
	put_row(p, "bytes_out", s->bytes_out);
	put_row(p, "tunnels_active", s->tunnels_active);
	put_row(p, "tunnels_total", s->tunnels_total);
	put_row(p, "cache_entries", s->cache_entries);
	put_row(p, "cache_size_bytes", s->cache_size_bytes);
	put_row(p, "cache_hits", s->cache_hits);
	put_row(p, "cache_misses", s->cache_misses);
	put_row(p, "cache_revalidations", s->cache_revalidations);
	put_row(p, "cache_stores", s->cache_stores);
	put_row(p, "cache_evictions", s->cache_evictions);
	put(p,
	    "<tr><th>cache_hit_ratio</th><td class=\"n\" "
	    "id=\"cache_hit_ratio\">%.1f%%</td></tr>\n",
	    lookups ? 100.0 * (double)s->cache_hits / (double)lookups : 0.0);
	put_row(p, "faults_injected", s->faults_injected);
	put(p, "</table>\n");
}

/*
 * The fault rules and their counters when the proxy runs on a fault sys
 * (--fault): an operator must not mistake injected failures for real
 * ones.  On any other sys sys_fault_describe() says nothing.
 */
static void put_faults(struct page *p, const struct sys *sys)
{
	char *text;
	size_t len;

	if (sys_fault_rule_count(sys) == 0)
		return;
	len = sys_fault_describe(sys, NULL, 0);
	text = malloc(len + 1);
	if (!text)
		return;
	sys_fault_describe(sys, text, len + 1);
	put(p, "<h2>Fault injection active</h2>\n<pre id=\"faults\">");
	put_html_text(p, text);
	put(p, "</pre>\n");
	free(text);
}

static void render_html(struct client *cl, struct exchange *x, struct page *p,
			const struct stats_snapshot *s)
{
	/* Links that work both through the proxy and asked directly. */
	const char *base =
		x->req.form == HTTP_FORM_ORIGIN ? PROXY_STATUS_PATH : "";

	put(p,
	    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\n"
	    "<meta http-equiv=\"refresh\" content=\"%d\">\n"
	    "<title>%s status</title>\n<style>body{font-family:sans-serif;"
	    "margin:1em 2em}table{border-collapse:collapse}th,td{padding:"
	    "2px 8px;text-align:left;border-bottom:1px solid #ddd}"
	    "td.n{text-align:right}</style>\n</head><body>\n"
	    "<h1>%s %s</h1>\n<p>Also as <a href=\"%s/json\">JSON</a> and "
	    "<a href=\"%s/metrics\">Prometheus metrics</a>.</p>\n",
	    REFRESH_SECONDS, PROXY_NAME, PROXY_NAME, PROXY_VERSION, base, base);
	put_chart(p, s);
	put_counters(p, s);
	put_active(p, cl);
	put_faults(p, cl->px->sys);
	put(p, "</body></html>\n");
}

static int send_page(struct client *cl, struct exchange *x, const char *type,
		     const struct page *p)
{
	char head[256];
	bool is_head = proxy_method_is(&x->req, "HEAD");
	int n = util_format(head, sizeof(head),
			    "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n"
			    "Content-Length: %zu\r\n"
			    "Cache-Control: no-store\r\n\r\n",
			    type, p->len);

	if (n < 0)
		return n;
	x->status = 200;
	x->outcome = PROXY_OUTCOME_ANSWERED_HERE;
	util_copy(x->content_type, sizeof(x->content_type), type,
		  strcspn(type, ";"));
	if (net_send_all(cl->px->sys, cl->conn.fd, head, (size_t)n) < 0 ||
	    (!is_head &&
	     net_send_all(cl->px->sys, cl->conn.fd, p->buf, p->len) < 0)) {
		x->client_keep_alive = false;
		return -EPIPE;
	}
	x->bytes_sent += (uint64_t)n + (is_head ? 0 : p->len);
	return 0;
}

static void serve_view(struct client *cl, struct exchange *x,
		       enum status_view view, struct page *p)
{
	struct stats_snapshot s;
	int n;

	proxy_cache_count_store(cl->px);
	stats_snapshot(cl->px->stats, &s);
	if (view == VIEW_HTML) {
		render_html(cl, x, p, &s);
		send_page(cl, x, "text/html; charset=utf-8", p);
		return;
	}
	n = view == VIEW_JSON ? stats_render_json(&s, p->buf, p->cap)
			      : stats_render_prometheus(&s, p->buf, p->cap);
	p->len = n > 0 ? (size_t)n : 0;
	if (view == VIEW_JSON && n > 0 && p->len + 1 < p->cap)
		p->buf[p->len++] = '\n';
	send_page(cl, x,
		  view == VIEW_JSON
			  ? "application/json"
			  : "text/plain; version=0.0.4; charset=utf-8",
		  p);
}

bool proxy_status_request(struct client *cl, struct exchange *x)
{
	enum status_view view;
	struct page p = {NULL, PAGE_MAX, 0};

	if (!wants_status(x, &view))
		return false;
	proxy_mark(cl, x, PROXY_MARK_FILTER);
	p.buf = malloc(PAGE_MAX);
	if (!p.buf) {
		proxy_refuse(cl, x, PROXY_OUTCOME_NO_MEMORY, "Out of memory.");
		return true;
	}
	p.buf[0] = '\0';
	/* A request body is not expected; do not read the next request
	 * from the middle of one. */
	if (x->req.body != HTTP_BODY_NONE)
		x->client_keep_alive = false;
	serve_view(cl, x, view, &p);
	free(p.buf);
	return true;
}
