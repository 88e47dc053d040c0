/*
 * The head scanner shared by requests and responses: one pass, one byte at
 * a time, resumable at any byte.  Everything it must remember between calls
 * lives in struct http_parse_state as offsets from the start of the head,
 * so the caller's buffer may grow or move between calls.  The first line's
 * grammar comes from request.c or response.c through the hooks of struct
 * parse_scan; the field lines (RFC 9112 section 5) are scanned here.
 *
 * A CR is remembered in the phase (PARSE_PH_CR) rather than looked past, so
 * no byte is examined twice and a CR at the end of the bytes so far is
 * simply "incomplete".
 */
#include "parse_int.h"

#include <string.h>

int parse_scan_begin(struct parse_scan *s, const char *buf, size_t len,
		     const struct http_limits *limits,
		     struct http_parse_state *st, size_t headers_cap)
{
	parse_limits_resolve(limits, &s->lim);
	s->w.buf = buf;
	s->w.over = len > s->lim.max_head;
	s->w.len = s->w.over ? s->lim.max_head : len;
	s->max_fields = headers_cap < s->lim.max_headers ? headers_cap
							 : s->lim.max_headers;
	s->st = st;
	if (st->pos > s->w.len) {
		/* Not the same head growing: start over (keep the count). */
		size_t seen = st->scanned_total;

		memset(st, 0, sizeof(*st));
		st->scanned_total = seen;
	}
	return st->error;
}

int parse_scan_verdict(struct parse_scan *s, int rc)
{
	if (rc < 0 && rc != HTTP_INCOMPLETE)
		s->st->error = rc;
	return rc;
}

/* One byte, not CR or LF, of a field line. */
static int field_byte(struct parse_scan *s, unsigned char c)
{
	struct http_parse_state *st = s->st;

	switch (st->phase) {
	case PARSE_PH_FIELD_START:
		/* RFC 9112 5.2: obs-fold is rejected, never unfolded. */
		if (c == ' ' || c == '\t')
			return HTTP_E_OBS_FOLD;
		if (st->num_fields >= s->max_fields)
			return HTTP_E_TOO_MANY_HEADERS;
		if (!parse_is_tchar(c))
			return HTTP_E_HEADER_SYNTAX;
		st->phase = PARSE_PH_FIELD_NAME;
		return 0;
	case PARSE_PH_FIELD_NAME:
		if (c == ':')
			st->phase = PARSE_PH_FIELD_VALUE;
		else if (c == ' ' || c == '\t')
			st->phase = PARSE_PH_FIELD_NAME_WS;
		else if (!parse_is_tchar(c))
			return HTTP_E_HEADER_SYNTAX;
		return 0;
	case PARSE_PH_FIELD_NAME_WS:
		/*
		 * "Name : v" is the classic smuggling spelling and gets its
		 * own error; "Na me: v" is plain bad syntax.
		 */
		if (c == ':')
			return HTTP_E_SPACE_BEFORE_COLON;
		return c == ' ' || c == '\t' ? 0 : HTTP_E_HEADER_SYNTAX;
	default: /* PARSE_PH_FIELD_VALUE */
		return parse_is_field_char(c) ? 0 : HTTP_E_HEADER_VALUE;
	}
}

/* A line ended (LF, or CRLF) starting at offset at, in the current phase. */
static int line_end(struct parse_scan *s, size_t at)
{
	struct http_parse_state *st = s->st;

	switch (st->phase) {
	case PARSE_PH_FIELD_START: /* the empty line: the head is complete */
		st->phase = PARSE_PH_DONE;
		return 0;
	case PARSE_PH_FIELD_VALUE:
		st->num_fields++;
		st->phase = PARSE_PH_FIELD_START;
		return 0;
	case PARSE_PH_FIELD_NAME:
	case PARSE_PH_FIELD_NAME_WS:
		return HTTP_E_HEADER_SYNTAX; /* a field line without a colon */
	default:
		return s->line_end(s, at);
	}
}

int parse_scan_run(struct parse_scan *s)
{
	struct http_parse_state *st = s->st;
	const unsigned char *b = (const unsigned char *)s->w.buf;

	while (st->phase != PARSE_PH_DONE) {
		size_t i = st->pos;
		unsigned char c;
		int rc;

		if (i >= s->w.len)
			return parse_out_of_bytes(&s->w);
		c = b[i];
		st->pos++;
		st->scanned_total++;
		if (st->phase & PARSE_PH_CR) {
			/* RFC 9112 2.2: a CR not followed by LF is refused. */
			if (c != '\n')
				return HTTP_E_BARE_CR;
			st->phase &= ~PARSE_PH_CR;
			rc = line_end(s, i - 1);
		} else if (c == '\r') {
			st->phase |= PARSE_PH_CR;
			rc = 0;
		} else if (c == '\n') {
			rc = line_end(s, i); /* a lone LF is a line end too */
		} else if (st->phase < PARSE_PH_FIELD_START) {
			rc = s->line_byte(s, i, c);
		} else {
			rc = field_byte(s, c);
		}
		if (rc)
			return rc;
	}
	return 0;
}

void parse_scan_fields(struct parse_scan *s, struct http_header *headers)
{
	struct http_parse_state *st = s->st;
	const char *buf = s->w.buf;
	size_t i = st->fields;

	/* Every line is known good: a name, ':', a value, LF or CRLF. */
	for (size_t n = 0; n < st->num_fields; n++) {
		const char *colon = memchr(buf + i, ':', st->pos - i);
		const char *lf =
			memchr(colon, '\n', st->pos - (size_t)(colon - buf));
		const char *v = colon + 1;
		size_t vlen = (size_t)(lf - v);

		if (vlen > 0 && v[vlen - 1] == '\r')
			vlen--;
		util_trim(&v, &vlen);
		headers[n].name.ptr = buf + i;
		headers[n].name.len = (size_t)(colon - (buf + i));
		headers[n].value.ptr = v;
		headers[n].value.len = vlen;
		st->scanned_total += (size_t)(lf - (buf + i)) + 1;
		i = (size_t)(lf - buf) + 1;
	}
}
