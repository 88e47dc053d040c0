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

int http_parse_request(const char *buf, size_t len, struct http_request *req,
		       const struct http_limits *limits)
{
	const unsigned char *b = (const unsigned char *)buf;
	enum { IN_METHOD, IN_TARGET, IN_VERSION } st = IN_METHOD;
	struct parse_limits lim;
	struct parse_window w;
	struct parse_framing f;
	struct http_request r;
	size_t i = 0, line, target = 0, version = 0, max_fields;
	int eol, rc, head;

	parse_limits_resolve(limits, &lim);
	w.buf = buf;
	w.over = len > lim.max_head;
	w.len = w.over ? lim.max_head : len;

	/*
	 * RFC 9112 2.2: empty lines before the request line are ignored
	 * (old clients send a CRLF after a POST body).  They count against
	 * max_head, so a stream of them still ends.
	 */
	for (;;) {
		if (i >= w.len)
			return parse_out_of_bytes(&w);
		eol = parse_eol_at(&w, i);
		if (eol <= 0)
			break;
		i += (size_t)eol;
	}
	if (eol < 0)
		return eol;

	memset(&r, 0, sizeof(r));
	line = i;
	/*
	 * One pass over the request line.  Single SP separators only: the
	 * lenient "any whitespace" reading of RFC 9112 3 is a smuggling
	 * hazard.  The length limit is checked per byte, so a line that never
	 * ends is refused as soon as it is too long.
	 */
	for (;; i++) {
		unsigned char c;

		if (i >= w.len)
			return parse_out_of_bytes(&w);
		eol = parse_eol_at(&w, i);
		if (eol < 0)
			return eol;
		if (eol > 0)
			break;
		if (i - line >= lim.max_request_line)
			return HTTP_E_URI_TOO_LONG;
		c = b[i];
		switch (st) {
		case IN_METHOD:
			if (c == ' ' && i > line) {
				r.method.ptr = buf + line;
				r.method.len = i - line;
				target = i + 1;
				st = IN_TARGET;
			} else if (!parse_is_tchar(c)) {
				return HTTP_E_METHOD;
			}
			break;
		case IN_TARGET:
			if (c == ' ') {
				if (i == target)
					return HTTP_E_REQUEST_LINE;
				r.target.ptr = buf + target;
				r.target.len = i - target;
				version = i + 1;
				st = IN_VERSION;
			} else if (!parse_is_vchar(c)) {
				return HTTP_E_TARGET;
			}
			break;
		case IN_VERSION:
			if (!version_char_ok(i - version, c))
				return HTTP_E_VERSION;
			break;
		}
	}
	if (st != IN_VERSION)
		return HTTP_E_REQUEST_LINE;
	if (i - version != 8)
		return HTTP_E_VERSION;
	if (b[version + 5] != '1')
		return HTTP_E_VERSION_UNSUPPORTED;
	/* A higher 1.x minor is read as 1.1 (RFC 9110 section 2.5). */
	r.minor_version = b[version + 7] == '0' ? 0 : 1;
	rc = parse_target(&r);
	if (rc)
		return rc;

	max_fields = req->headers ? req->num_headers : 0;
	if (max_fields > lim.max_headers)
		max_fields = lim.max_headers;
	r.headers = req->headers;
	head = parse_fields(&w, i + (size_t)eol, max_fields, req->headers,
			    &r.num_headers);
	if (head < 0)
		return head;

	rc = parse_framing(r.headers, r.num_headers, true, &f);
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
	/* RFC 9112 6.1: HTTP/1.0 with Transfer-Encoding closes after. */
	if (f.has_te && r.minor_version == 0)
		r.keep_alive = false;
	r.expect_continue = expects_continue(&r);
	*req = r;
	return head;
}
