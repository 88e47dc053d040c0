/*
 * parse internals shared by the files of src/parse/ and reachable by
 * tests/test_parse.c; not part of the public API.
 *
 * Every scanner here walks its input once, left to right, and decides each
 * error at the byte where it becomes certain, looking at no byte past that
 * one.  That single rule is what makes "a prefix gives HTTP_INCOMPLETE or
 * the same error" hold: a prefix either stops before the deciding byte
 * (incomplete) or contains it (same verdict).
 */
#ifndef GLASSPROXY_PARSE_INT_H
#define GLASSPROXY_PARSE_INT_H

#include "glassproxy/parse.h"
#include "glassproxy/util.h"

#include <limits.h>

#define PARSE_DEFAULT_MAX_REQUEST_LINE 8192
#define PARSE_DEFAULT_MAX_HEAD	       65536
#define PARSE_DEFAULT_MAX_HEADERS      100

/* Content-Length and chunk sizes above this are errors: they fit off_t. */
#define PARSE_MAX_BODY_LENGTH ((uint64_t)INT64_MAX)

#define PARSE_CHUNK_LINE_MAX	HTTP_CHUNK_LINE_MAX
#define PARSE_CHUNK_TRAILER_MAX HTTP_CHUNK_TRAILER_MAX

/* The lowest enum http_error value (the fuzzer checks every verdict). */
#define PARSE_E_LOWEST HTTP_E_TE_HTTP10

/* RFC 9110 section 5.6.2: the characters of a token. */
static inline bool parse_is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	switch (c) {
	case '!':
	case '#':
	case '$':
	case '%':
	case '&':
	case '\'':
	case '*':
	case '+':
	case '-':
	case '.':
	case '^':
	case '_':
	case '`':
	case '|':
	case '~':
		return true;
	default:
		return false;
	}
}

/* Visible ASCII: what a request target may hold. */
static inline bool parse_is_vchar(unsigned char c)
{
	return c > 0x20 && c < 0x7f;
}

/* field-vchar / SP / HTAB, obs-text included (RFC 9110 section 5.5). */
static inline bool parse_is_field_char(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static inline bool parse_is_hex(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	       (c >= 'A' && c <= 'F');
}

static inline unsigned parse_hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return (unsigned)(c - '0');
	return (unsigned)(util_lower((char)c) - 'a' + 10);
}

/* Limits with the defaults filled in and the head limit clamped so that a
 * head length always fits the int the parsers return. */
struct parse_limits {
	size_t max_request_line;
	size_t max_head;
	size_t max_headers;
};

void parse_limits_resolve(const struct http_limits *in,
			  struct parse_limits *out);

/*
 * The bytes a head parser may look at: len clipped to max_head.  Running
 * off the end of that window means "incomplete" when the caller has no more
 * bytes, and "head too large" when it does.
 */
struct parse_window {
	const char *buf;
	size_t len;
	bool over; /* the caller's buffer goes on past max_head */
};

static inline int parse_out_of_bytes(const struct parse_window *w)
{
	return w->over ? HTTP_E_HEAD_TOO_LARGE : HTTP_INCOMPLETE;
}

/*
 * Phases of the head scanner (struct http_parse_state.phase).  A zeroed
 * state starts in PARSE_PH_START: no byte of the first line seen yet (for
 * a request, empty lines may come first).
 */
enum parse_phase {
	PARSE_PH_START = 0,
	PARSE_PH_METHOD,      /* request line: in the method */
	PARSE_PH_TARGET,      /* in the request target */
	PARSE_PH_VERSION,     /* in "HTTP/1.1" */
	PARSE_PH_STATUS,      /* in the status line */
	PARSE_PH_FIELD_START, /* at the start of a field line (or the end) */
	PARSE_PH_FIELD_NAME,
	PARSE_PH_FIELD_NAME_WS, /* whitespace after a name: an error follows */
	PARSE_PH_FIELD_VALUE,
	PARSE_PH_DONE, /* the empty line has ended the head at pos */
};

/* Or-ed into a phase: the last byte was a CR, only an LF may follow. */
#define PARSE_PH_CR 0x100

/*
 * One call's view of a head scan: the caller's bytes, the resolved limits
 * and the state carried between calls.  The first line's grammar is the
 * request's or the response's, through the two hooks.
 */
struct parse_scan {
	struct parse_window w;
	struct parse_limits lim;
	struct http_parse_state *st;
	size_t max_fields; /* min(headers capacity, max_headers) */
	/* A byte (not CR or LF) of the first line, at offset i. */
	int (*line_byte)(struct parse_scan *s, size_t i, unsigned char c);
	/* The first line (or an empty line before it) ended at offset at. */
	int (*line_end)(struct parse_scan *s, size_t at);
};

/*
 * Set up s for a call over buf[0..len).  Restarts a state that has seen
 * more bytes than len.  Returns 0, or the sticky error of the state.
 */
int parse_scan_begin(struct parse_scan *s, const char *buf, size_t len,
		     const struct http_limits *limits,
		     struct http_parse_state *st, size_t headers_cap);

/*
 * Examine the bytes from st->pos on, each once, until the head ends
 * (returns 0, phase PARSE_PH_DONE, head length st->pos), the window runs
 * out (HTTP_INCOMPLETE or HTTP_E_HEAD_TOO_LARGE) or an error is decided.
 */
int parse_scan_run(struct parse_scan *s);

/*
 * After parse_scan_run returned 0: fill headers[] with the st->num_fields
 * fields of the (already checked) field lines.  Cheap: no checks, one
 * look at each byte.
 */
void parse_scan_fields(struct parse_scan *s, struct http_header *headers);

/* Remember an error (not HTTP_INCOMPLETE) in the state; returns rc. */
int parse_scan_verdict(struct parse_scan *s, int rc);

/* What the framing fields of a message say (RFC 9112 sections 6.1-6.3). */
struct parse_framing {
	bool has_te;
	bool te_chunked_last; /* chunked is the final coding, once */
	bool has_cl;
	uint64_t content_length;
	bool close;	 /* a Connection field lists "close" */
	bool keep_alive; /* a Connection field lists "keep-alive" */
};

/*
 * Read Transfer-Encoding, Content-Length and Connection.  request selects
 * the request rule for a final coding other than chunked (an error there;
 * for a response it means "read until close").  Returns 0 or an error.
 */
int parse_framing(const struct http_header *headers, size_t n, bool request,
		  struct parse_framing *f);

/*
 * Parse a Content-Length field value: 1*DIGIT, or a list of identical
 * values ("5, 5").  Returns 0, HTTP_E_CONTENT_LENGTH or
 * HTTP_E_DUPLICATE_CONTENT_LENGTH (the list disagrees with itself or with
 * *have when *seen).
 */
int parse_content_length(struct http_slice value, bool *seen, uint64_t *have);

/* True when [s, s + len) equals the C string lit, case-insensitively. */
bool parse_ieq_lit(const char *s, size_t len, const char *lit);

/* http_list_has_token with a slice for the token. */
bool parse_list_has(struct http_slice value, const char *tok, size_t tok_len);

/* Host syntax checks the URL parser uses (exposed for tests). */
bool parse_reg_name_ok(const char *s, size_t len);
bool parse_ipv6_ok(const char *s, size_t len);

#endif
