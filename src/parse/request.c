/*
 * Request heads: the request line, the target forms of RFC 9112 section
 * 3.2, and the field checks a request must pass (framing, Host).
 */
#include "parse_int.h"

#include <string.h>

/* "HTTP/" DIGIT "." DIGIT, one byte at a time (k is the offset in it). */
static bool version_char_ok(size_t k, unsigned char c)
{
	if (k < 5)
		return c == (unsigned char)"HTTP/"[k];
	if (k == 5 || k == 7)
		return c >= '0' && c <= '9';
	return k == 6 && c == '.';
}

static bool slice_is(struct http_slice s, const char *lit)
{
	size_t n = strlen(lit);

	/* Methods are case-sensitive (RFC 9110 section 9.1). */
	return s.len == n && memcmp(s.ptr, lit, n) == 0;
}

/* Fill form and url from the target, by the method's rules. */
static int parse_target(struct http_request *r)
{
	struct http_slice t = r->target;

	if (slice_is(r->method, "CONNECT")) {
		r->form = HTTP_FORM_AUTHORITY;
		return http_parse_authority(t.ptr, t.len, &r->url);
	}
	memset(&r->url, 0, sizeof(r->url));
	if (t.ptr[0] == '/') {
		const char *hash = memchr(t.ptr, '#', t.len);

		r->form = HTTP_FORM_ORIGIN;
		r->url.path.ptr = t.ptr;
		r->url.path.len = hash ? (size_t)(hash - t.ptr) : t.len;
		return 0;
	}
	if (t.len == 1 && t.ptr[0] == '*') {
		if (!slice_is(r->method, "OPTIONS"))
			return HTTP_E_TARGET;
		r->form = HTTP_FORM_ASTERISK;
		r->url.path = t;
		return 0;
	}
	r->form = HTTP_FORM_ABSOLUTE;
	return http_parse_url(t.ptr, t.len, &r->url);
}

/* RFC 9112 3.2: exactly one Host in HTTP/1.1, at most one in HTTP/1.0. */
static int check_host(const struct http_request *r)
{
	ssize_t first = http_find_header(r->headers, r->num_headers, "host", 0);

	if (first < 0)
		return r->minor_version == 1 ? HTTP_E_HOST_MISSING : 0;
	if (http_find_header(r->headers, r->num_headers, "host",
			     (size_t)first + 1) >= 0)
		return HTTP_E_HOST_DUPLICATE;
	return 0;
}

static bool expects_continue(const struct http_request *r)
{
	/* RFC 9110 10.1.1: an HTTP/1.0 100-continue is ignored. */
	if (r->minor_version == 0)
		return false;
	for (size_t i = 0; i < r->num_headers; i++)
		if (http_name_is(r->headers[i].name, "expect") &&
		    http_list_has_token(r->headers[i].value, "100-continue"))
			return true;
	return false;
}

/*
 * One byte, not CR or LF, of the request line.  Single SP separators only:
 * the lenient "any whitespace" reading of RFC 9112 3 is a smuggling
 * hazard.  The length limit is checked per byte, so a line that never ends
 * is refused as soon as it is too long.
 */
static int request_line_byte(struct parse_scan *s, size_t i, unsigned char c)
{
	struct http_parse_state *st = s->st;

	if (st->phase == PARSE_PH_START) {
		st->line = i;
		st->phase = PARSE_PH_METHOD;
	}
	if (i - st->line >= s->lim.max_request_line)
		return HTTP_E_URI_TOO_LONG;
	switch (st->phase) {
	case PARSE_PH_METHOD:
		if (c == ' ' && i > st->line) {
			st->target = i + 1;
			st->phase = PARSE_PH_TARGET;
			return 0;
		}
		return parse_is_tchar(c) ? 0 : HTTP_E_METHOD;
	case PARSE_PH_TARGET:
		if (c != ' ')
			return parse_is_vchar(c) ? 0 : HTTP_E_TARGET;
		if (i == st->target)
			return HTTP_E_REQUEST_LINE;
		st->version = i + 1;
		st->phase = PARSE_PH_VERSION;
		return 0;
	default: /* PARSE_PH_VERSION */
		return version_char_ok(i - st->version, c) ? 0 : HTTP_E_VERSION;
	}
}

/* The method, target and version of a complete request line, from st. */
static int request_line_parts(struct parse_scan *s, struct http_request *r)
{
	const struct http_parse_state *st = s->st;
	const char *buf = s->w.buf;

	memset(r, 0, sizeof(*r));
	r->method.ptr = buf + st->line;
	r->method.len = st->target - 1 - st->line;
	r->target.ptr = buf + st->target;
	r->target.len = st->version - 1 - st->target;
	/* A higher 1.x minor is read as 1.1 (RFC 9110 section 2.5). */
	r->minor_version = buf[st->version + 7] == '0' ? 0 : 1;
	s->st->scanned_total += r->target.len;
	return parse_target(r);
}

/* An empty line before the request line, or the end of the request line. */
static int request_line_end(struct parse_scan *s, size_t at)
{
	struct http_parse_state *st = s->st;
	struct http_request r;

	/*
	 * RFC 9112 2.2: empty lines before the request line are ignored
	 * (old clients send a CRLF after a POST body).  They count against
	 * max_head, so a stream of them still ends.
	 */
	if (st->phase == PARSE_PH_START)
		return 0;
	if (st->phase != PARSE_PH_VERSION)
		return HTTP_E_REQUEST_LINE;
	if (at - st->version != 8)
		return HTTP_E_VERSION;
	if (s->w.buf[st->version + 5] != '1')
		return HTTP_E_VERSION_UNSUPPORTED;
	st->line_end = at;
	st->fields = st->pos;
	st->phase = PARSE_PH_FIELD_START;
	/* Judge the target now: its error must not wait for the fields. */
	return request_line_parts(s, &r);
}

/* The whole head has been scanned: build *req from it. */
static int request_finish(struct parse_scan *s, struct http_request *req)
{
	struct parse_framing f;
	struct http_request r;
	int rc;

	rc = request_line_parts(s, &r);
	if (rc)
		return rc;
	r.headers = req->headers;
	r.num_headers = s->st->num_fields;
	parse_scan_fields(s, r.headers);

	rc = parse_framing(r.headers, r.num_headers, true, &f);
	/* RFC 9112 6.1: HTTP/1.0 with Transfer-Encoding is faulty framing. */
	if (f.has_te && r.minor_version == 0)
		return HTTP_E_TE_HTTP10;
	if (rc)
		return rc;
	rc = check_host(&r);
	if (rc)
		return rc;
	if (f.has_te) {
		r.body = HTTP_BODY_CHUNKED;
	} else if (f.has_cl) {
		r.body = HTTP_BODY_LENGTH;
		r.content_length = f.content_length;
	} else {
		r.body = HTTP_BODY_NONE;
	}
	r.keep_alive = !f.close && (r.minor_version == 1 || f.keep_alive);
	r.expect_continue = expects_continue(&r);
	*req = r;
	return (int)s->st->pos;
}

int http_parse_request_resume(const char *buf, size_t len,
			      struct http_request *req,
			      const struct http_limits *limits,
			      struct http_parse_state *state)
{
	struct http_parse_state fresh;
	struct parse_scan s;
	int rc;

	if (state == NULL) {
		memset(&fresh, 0, sizeof(fresh));
		state = &fresh;
	}
	rc = parse_scan_begin(&s, buf, len, limits, state,
			      req->headers ? req->num_headers : 0);
	if (rc)
		return rc;
	s.line_byte = request_line_byte;
	s.line_end = request_line_end;
	rc = parse_scan_run(&s);
	if (rc == 0)
		rc = request_finish(&s, req);
	return parse_scan_verdict(&s, rc);
}

int http_parse_request(const char *buf, size_t len, struct http_request *req,
		       const struct http_limits *limits)
{
	return http_parse_request_resume(buf, len, req, limits, NULL);
}
