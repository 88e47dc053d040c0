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

/* One byte, not CR or LF, of the status line (which starts at offset 0). */
static int status_line_byte(struct parse_scan *s, size_t i, unsigned char c)
{
	s->st->phase = PARSE_PH_STATUS;
	return status_char_ok(i, c) ? 0 : HTTP_E_STATUS_LINE;
}

static int status_line_end(struct parse_scan *s, size_t at)
{
	struct http_parse_state *st = s->st;

	/* The SP before an empty reason is often left out: tolerated. */
	if (at < 12)
		return HTTP_E_STATUS_LINE;
	st->line_end = at;
	st->fields = st->pos;
	st->phase = PARSE_PH_FIELD_START;
	return 0;
}

/* RFC 9112 6.3 rules 1 and 2: responses that end at their head. */
static bool has_no_body(const struct http_response *r, struct http_slice m)
{
	return method_is(m, "HEAD") || r->status < 200 || r->status == 204 ||
	       r->status == 304 || (method_is(m, "CONNECT") && r->status < 300);
}

/* The whole head has been scanned: build *res from it. */
static int response_finish(struct parse_scan *s, struct http_response *res,
			   struct http_slice request_method)
{
	const unsigned char *b = (const unsigned char *)s->w.buf;
	size_t end = s->st->line_end;
	struct parse_framing f;
	struct http_response r;
	int rc;

	memset(&r, 0, sizeof(r));
	r.minor_version = b[7] == '0' ? 0 : 1;
	r.status = (b[9] - '0') * 100 + (b[10] - '0') * 10 + (b[11] - '0');
	r.reason.ptr = s->w.buf + (end > 12 ? 13 : end);
	r.reason.len = end > 12 ? end - 13 : 0;
	r.headers = res->headers;
	r.num_headers = s->st->num_fields;
	parse_scan_fields(s, r.headers);

	rc = parse_framing(r.headers, r.num_headers, false, &f);
	/*
	 * Bodiless responses end at the head whatever their fields say, so
	 * their framing fields are not judged, except that CL and TE
	 * together always are: an origin that sends both is not trusted
	 * with a reused connection (as nginx does).
	 */
	if (rc == HTTP_E_LENGTH_AND_CHUNKED)
		return rc;
	if (has_no_body(&r, request_method)) {
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
	return (int)s->st->pos;
}

int http_parse_response_resume(const char *buf, size_t len,
			       struct http_response *res,
			       struct http_slice request_method,
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
			      res->headers ? res->num_headers : 0);
	if (rc)
		return rc;
	s.line_byte = status_line_byte;
	s.line_end = status_line_end;
	rc = parse_scan_run(&s);
	if (rc == 0)
		rc = response_finish(&s, res, request_method);
	return parse_scan_verdict(&s, rc);
}

int http_parse_response(const char *buf, size_t len, struct http_response *res,
			struct http_slice request_method,
			const struct http_limits *limits)
{
	return http_parse_response_resume(buf, len, res, request_method, limits,
					  NULL);
}
