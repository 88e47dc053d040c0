/* Responses made by the proxy itself: error pages with a short body. */
#include <string.h>

#include "glassproxy/util.h"
#include "proxy_int.h"

struct status_text {
	int status;
	const char *reason;
};

static const struct status_text reasons[] = {
	{100, "Continue"},
	{200, "OK"},
	{203, "Non-Authoritative Information"},
	{206, "Partial Content"},
	{304, "Not Modified"},
	{400, "Bad Request"},
	{403, "Forbidden"},
	{404, "Not Found"},
	{405, "Method Not Allowed"},
	{407, "Proxy Authentication Required"},
	{408, "Request Timeout"},
	{411, "Length Required"},
	{412, "Precondition Failed"},
	{413, "Content Too Large"},
	{414, "URI Too Long"},
	{416, "Range Not Satisfiable"},
	{417, "Expectation Failed"},
	{429, "Too Many Requests"},
	{431, "Request Header Fields Too Large"},
	{500, "Internal Server Error"},
	{501, "Not Implemented"},
	{502, "Bad Gateway"},
	{503, "Service Unavailable"},
	{504, "Gateway Timeout"},
	{505, "HTTP Version Not Supported"},
	{508, "Loop Detected"},
};

const char *proxy_status_reason(int status)
{
	for (size_t i = 0; i < UTIL_ARRAY_LEN(reasons); i++)
		if (reasons[i].status == status)
			return reasons[i].reason;
	return "Unknown";
}

/* Append text with <, >, &, " escaped; stops quietly at the end. */
static size_t html_escape(char *dst, size_t cap, const char *text)
{
	size_t pos = 0;

	for (const char *p = text; *p; p++) {
		const char *rep = NULL;
		char one[2] = {*p, '\0'};

		switch (*p) {
		case '<':
			rep = "&lt;";
			break;
		case '>':
			rep = "&gt;";
			break;
		case '&':
			rep = "&amp;";
			break;
		case '"':
			rep = "&quot;";
			break;
		default:
			rep = one;
		}
		if (pos + strlen(rep) + 1 > cap)
			break;
		memcpy(dst + pos, rep, strlen(rep));
		pos += strlen(rep);
	}
	dst[pos] = '\0';
	return pos;
}

int proxy_refuse(struct client *cl, struct exchange *x, enum proxy_outcome o,
		 const char *message)
{
	return proxy_answer(cl, x, o, 0, message);
}

/* --server-tokens: the version on our own pages (nginx's server_tokens). */
static bool server_tokens(const struct client *cl)
{
	/* A client refused as busy has no rules snapshot. */
	return cl->rules ? proxy_live(cl)->server_tokens
			 : cl->px->set.server_tokens;
}

int proxy_answer(struct client *cl, struct exchange *x, enum proxy_outcome o,
		 int status, const char *message)
{
	return proxy_answer_extra(cl, x, o, status, message, "");
}

int proxy_answer_extra(struct client *cl, struct exchange *x,
		       enum proxy_outcome o, int status, const char *message,
		       const char *extra)
{
	char escaped[1024], body[2048], head[1280];
	const char *reason;
	bool is_head = x->req.method.len == 4 &&
		       memcmp(x->req.method.ptr, "HEAD", 4) == 0;
	bool tokens = server_tokens(cl);
	int body_len, head_len, rc;

	/* Every answer of a proxy with a cache says what the cache did. */
	const char *cs =
		cl->px && cl->px->cache ? proxy_cache_status_value(x) : NULL;

	if (proxy_outcome_status(o) != PROXY_STATUS_AS_SENT)
		status = proxy_outcome_status(o);
	x->outcome = o;
	reason = proxy_status_reason(status);
	html_escape(escaped, sizeof(escaped), message);
	body_len =
		util_format(body, sizeof(body),
			    "<!DOCTYPE html>\n<html><head><title>%d %s"
			    "</title></head>\n<body><h1>%d %s</h1>\n"
			    "<p>%s</p>\n<hr><address>%s%s%s</address>"
			    "</body></html>\n",
			    status, reason, status, reason, escaped, PROXY_NAME,
			    tokens ? "/" : "", tokens ? PROXY_VERSION : "");
	if (body_len < 0)
		body_len = 0;
	head_len = util_format(head, sizeof(head),
			       "HTTP/1.1 %d %s\r\n"
			       "Content-Type: text/html; charset=utf-8\r\n"
			       "Content-Length: %d\r\n"
			       "Cache-Control: no-store\r\n"
			       "%s%s%s%s"
			       "Connection: close\r\n\r\n",
			       status, reason, body_len,
			       cs ? "Cache-Status: " : "", cs ? cs : "",
			       cs ? "\r\n" : "", extra);
	if (head_len < 0)
		return head_len;
	x->status = status;
	if (x->cache.background)
		return 0; /* the client has had its answer: a stale one */
	x->client_keep_alive = false;
	/* With a body next, the head waits for it: one segment, not two. */
	rc = is_head ? net_send_all(cl->px->sys, cl->conn.fd, head,
				    (size_t)head_len)
		     : net_send_all_more(cl->px->sys, cl->conn.fd, head,
					 (size_t)head_len);
	if (rc == 0 && !is_head)
		rc = net_send_all(cl->px->sys, cl->conn.fd, body,
				  (size_t)body_len);
	if (rc == 0)
		x->bytes_sent += (uint64_t)head_len + (is_head ? 0 : body_len);
	return rc;
}
