/*
 * Response heads: the status line and the body rules of RFC 9112
 * section 6.3, which depend on the request method as well.
 */
#include "parse_int.h"

#include <string.h>

/*
 * One status-line byte at offset k: "HTTP/1." DIGIT SP 3DIGIT [SP reason].
 * Only major version 1 is spoken here; anything else is a bad status line.
 */
static bool status_char_ok(size_t k, unsigned char c)
{
	if (k < 7)
		return c == (unsigned char)"HTTP/1."[k];
	if (k == 7)
		return c >= '0' && c <= '9';
	if (k == 8 || k == 12)
		return c == ' ';
	if (k < 12)
		return c >= (k == 9 ? '1' : '0') && c <= '9';
	return parse_is_field_char(c);
}

static bool method_is(struct http_slice m, const char *lit)
{
	size_t n = strlen(lit);

	return m.ptr != NULL && m.len == n && memcmp(m.ptr, lit, n) == 0;
}

int http_parse_response(const char *buf, size_t len, struct http_response *res,
			struct http_slice request_method,
			const struct http_limits *limits)
{
	const unsigned char *b = (const unsigned char *)buf;
	struct parse_limits lim;
	struct parse_window w;
	struct parse_framing f;
	struct http_response r;
	size_t i, max_fields;
	int eol, rc, head;
	bool no_body;

	parse_limits_resolve(limits, &lim);
	w.buf = buf;
	w.over = len > lim.max_head;
	w.len = w.over ? lim.max_head : len;

	for (i = 0;; i++) {
		if (i >= w.len)
			return parse_out_of_bytes(&w);
		eol = parse_eol_at(&w, i);
		if (eol < 0)
			return eol;
		if (eol > 0)
			break;
		if (!status_char_ok(i, b[i]))
			return HTTP_E_STATUS_LINE;
	}
	/* The SP before an empty reason is often left out: tolerated. */
	if (i < 12)
		return HTTP_E_STATUS_LINE;

	memset(&r, 0, sizeof(r));
	r.minor_version = b[7] == '0' ? 0 : 1;
	r.status = (b[9] - '0') * 100 + (b[10] - '0') * 10 + (b[11] - '0');
	r.reason.ptr = buf + (i > 12 ? 13 : i);
	r.reason.len = i > 12 ? i - 13 : 0;

	max_fields = res->headers ? res->num_headers : 0;
	if (max_fields > lim.max_headers)
		max_fields = lim.max_headers;
	r.headers = res->headers;
	head = parse_fields(&w, i + (size_t)eol, max_fields, res->headers,
			    &r.num_headers);
	if (head < 0)
		return head;

	rc = parse_framing(r.headers, r.num_headers, false, &f);
	/*
	 * RFC 9112 6.3 rules 1 and 2: these end at the head whatever their
	 * fields say, so their framing fields are not judged, except that
	 * CL and TE together always are: an origin that sends both is not
	 * trusted with a reused connection (as nginx does).
	 */
	if (rc == HTTP_E_LENGTH_AND_CHUNKED)
		return rc;
	no_body = method_is(request_method, "HEAD") || r.status < 200 ||
		  r.status == 204 || r.status == 304 ||
		  (method_is(request_method, "CONNECT") && r.status < 300);
	if (no_body) {
		r.body = HTTP_BODY_NONE;
	} else if (rc) {
		return rc;
	} else if (f.has_te) {
		/* A final coding other than chunked: read until close. */
		r.body = f.te_chunked_last ? HTTP_BODY_CHUNKED
					   : HTTP_BODY_UNTIL_CLOSE;
	} else if (f.has_cl) {
		r.body = HTTP_BODY_LENGTH;
		r.content_length = f.content_length;
	} else {
		r.body = HTTP_BODY_UNTIL_CLOSE;
	}
	r.keep_alive = !f.close && (r.minor_version == 1 || f.keep_alive) &&
		       r.body != HTTP_BODY_UNTIL_CLOSE &&
		       !(f.has_te && r.minor_version == 0);
	*res = r;
	return head;
}
