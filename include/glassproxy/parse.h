/*
 * parse: HTTP/1.1 message syntax and framing (RFC 9110, RFC 9112).
 *
 * Contract: pure functions over the caller's bytes.  No I/O, no clock, no
 * globals, no allocation.  Results are {ptr, len} slices into the caller's
 * buffer, valid as long as that buffer is.  The shape is picohttpparser's:
 *
 *   rc = http_parse_request(buf, len, &req, &limits);
 *   rc > 0                 the head is complete and rc bytes long (the body,
 *                          if any, starts at buf + rc)
 *   rc == HTTP_INCOMPLETE  no error so far: call again with more bytes
 *   rc < HTTP_INCOMPLETE   an enum http_error; http_error_status() gives the
 *                          HTTP status to answer with, http_error_reason()
 *                          a short human reason for the body and the log.
 *
 * A parse of a prefix either answers HTTP_INCOMPLETE or the same error the
 * whole input gives, never a different verdict; parsing the same bytes in
 * any number of pieces gives the same result as parsing them at once.
 *
 * A caller that reads a head in pieces passes a struct http_parse_state to
 * the _resume variants, so that each call examines only the bytes the last
 * call had not seen: linear work in the head's length however it arrives.
 *
 * Parsing is strict where leniency enables request smuggling (RFC 9112
 * section 11.2): obs-fold, whitespace before a colon, bare CR, NUL and other
 * control bytes in a header, conflicting Content-Length / Transfer-Encoding,
 * Transfer-Encoding in an HTTP/1.0 request are errors, not guesses.  A lone
 * LF as line terminator is accepted in a head (RFC 9112 section 2.2 allows
 * it) but never in chunked framing, where every line must end in CRLF.
 */
#ifndef GLASSPROXY_PARSE_H
#define GLASSPROXY_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "glassproxy/util.h"

struct http_slice {
	const char *ptr;
	size_t len;
};

struct http_header {
	struct http_slice name;
	struct http_slice value; /* without leading and trailing whitespace */
};

enum http_error {
	HTTP_INCOMPLETE = -1,
	HTTP_E_REQUEST_LINE = -2,	 /* 400 malformed request line */
	HTTP_E_METHOD = -3,		 /* 400 method is not a token */
	HTTP_E_TARGET = -4,		 /* 400 request target malformed */
	HTTP_E_VERSION = -5,		 /* 400 version is not HTTP/d.d */
	HTTP_E_VERSION_UNSUPPORTED = -6, /* 505 a major version other than 1 */
	HTTP_E_URI_TOO_LONG = -7,	 /* 414 request line over the limit */
	HTTP_E_HEAD_TOO_LARGE = -8,	 /* 431 header block over the limit */
	HTTP_E_TOO_MANY_HEADERS = -9,	 /* 431 more fields than the limit */
	HTTP_E_HEADER_SYNTAX = -10,	 /* 400 bad field name, no colon */
	HTTP_E_HEADER_VALUE = -11,	 /* 400 control byte in a field value */
	HTTP_E_SPACE_BEFORE_COLON = -12, /* 400 "Name : value" */
	HTTP_E_OBS_FOLD = -13,		 /* 400 a line starting with SP/HTAB */
	HTTP_E_BARE_CR = -14,		 /* 400 CR not followed by LF */
	HTTP_E_CONTENT_LENGTH = -15, /* 400 not a decimal number, overflow */
	HTTP_E_DUPLICATE_CONTENT_LENGTH = -16, /* 400 differing values */
	HTTP_E_LENGTH_AND_CHUNKED = -17,       /* 400 both CL and TE present */
	HTTP_E_TE_NOT_CHUNKED_LAST =
		-18,		     /* 400 request TE not ending in chunked */
	HTTP_E_TE_UNKNOWN = -19,     /* 501 a transfer coding we do not know */
	HTTP_E_HOST_MISSING = -20,   /* 400 HTTP/1.1 request without Host */
	HTTP_E_HOST_DUPLICATE = -21, /* 400 more than one Host */
	HTTP_E_STATUS_LINE = -22,    /* 502 malformed response status line */
	HTTP_E_CHUNK_SIZE = -23,     /* 400/502 bad chunk-size line */
	HTTP_E_CHUNK_DATA = -24, /* 400/502 chunk data not followed by CRLF */
	HTTP_E_CHUNK_TOO_LARGE =
		-25,		    /* 400/502 chunk-ext or trailers too long */
	HTTP_E_CHUNK_BARE_LF = -26, /* 400/502 LF without CR in chunk framing */
	HTTP_E_TE_HTTP10 = -27,	    /* 400 Transfer-Encoding in an HTTP/1.0
				       request (RFC 9112 section 6.1) */
};

/* The status a proxy answers a client with for a request-side error. */
int http_error_status(int err);
/* A short, lower-case, human reason ("obs-fold header line"). */
const char *http_error_reason(int err);

/* Limits; a zeroed field takes the default given beside it. */
struct http_limits {
	size_t max_request_line; /* 8192: longer gives HTTP_E_URI_TOO_LONG */
	size_t max_head;	 /* 65536: whole head, request line included */
	size_t max_headers;	 /* 100: more gives HTTP_E_TOO_MANY_HEADERS */
};

enum http_target_form {
	HTTP_FORM_ORIGIN,    /* "/path?q" */
	HTTP_FORM_ABSOLUTE,  /* "http://host:port/path?q" */
	HTTP_FORM_AUTHORITY, /* "host:port" (CONNECT only) */
	HTTP_FORM_ASTERISK,  /* "*" (OPTIONS only) */
};

/* A URI split into the parts a proxy needs. */
struct http_url {
	struct http_slice scheme;   /* "http", as written; empty if absent */
	struct http_slice userinfo; /* "user:pw" before '@'; empty if absent */
	struct http_slice host;	    /* without brackets for IPv6 literals */
	uint16_t port;		    /* explicit, else the scheme's default */
	bool port_explicit;
	bool host_is_ipv6;	/* it was written as "[...]" */
	struct http_slice path; /* path and query, "/" when empty;
				       the fragment is never included */
};

/* How the body of a message is delimited (RFC 9112 section 6.3). */
enum http_body {
	HTTP_BODY_NONE,	      /* no body at all */
	HTTP_BODY_LENGTH,     /* exactly content_length bytes */
	HTTP_BODY_CHUNKED,    /* chunked coding: use struct http_chunked */
	HTTP_BODY_UNTIL_CLOSE /* responses only: until the origin closes */
};

struct http_request {
	struct http_slice method;
	struct http_slice target; /* as written */
	int minor_version;	  /* 0 or 1 (the major version is always 1) */
	enum http_target_form form;
	struct http_url url; /* parsed from target (all forms) */
	/* in: the capacity of headers[]; out: the number of fields */
	struct http_header *headers;
	size_t num_headers;
	/* Framing and connection semantics derived from the fields. */
	enum http_body body;
	uint64_t content_length; /* with HTTP_BODY_LENGTH */
	bool keep_alive;      /* 1.1 without "close", 1.0 with "keep-alive" */
	bool expect_continue; /* Expect: 100-continue */
};

/*
 * Parse a request head.  req->headers and req->num_headers must be set to
 * the caller's array and its capacity.  limits may be NULL for defaults.
 * Checks framing too: an error for CL+TE, differing CLs, TE not ending in
 * chunked, unknown codings, a missing or duplicated Host in HTTP/1.1.
 * Only a return > 0 writes *req (headers[] excepted), so after
 * HTTP_INCOMPLETE num_headers is still the capacity for the next call.
 */
int http_parse_request(const char *buf, size_t len, struct http_request *req,
		       const struct http_limits *limits);

/*
 * Where a head parse stopped, so that the next call resumes there instead
 * of scanning the head again from its first byte (picohttpparser's
 * last_len, made exact: every byte is examined once, so a head that
 * arrives one byte per recv costs time linear in its length).
 *
 * How to use it:
 *  - zero it before the first call for each head (a new request on a
 *    keep-alive connection, and each response head after a 1xx, is a new
 *    head);
 *  - call again with the same head growing: the bytes from the start of
 *    the head that earlier calls saw must be unchanged, more may follow.
 *    The buffer may move between calls (a realloc, a memmove that drops
 *    consumed bytes in front of the head): the state holds offsets from
 *    buf, never pointers;
 *  - pass the same limits, the same headers capacity and (for responses)
 *    the same request method each time;
 *  - the verdict is the one the one-shot function gives for the same
 *    bytes: HTTP_INCOMPLETE, the head length, or an error.  An error is
 *    sticky; after success a further call gives the same result again and
 *    rewrites *req with slices into the buffer it is given.
 * A buffer shorter than the state has seen starts the scan over (still
 * correct, no longer linear).
 */
struct http_parse_state {
	/* Public, for tests and statistics: bytes examined by every call so
	 * far (the scan, the final pass over the fields, the target checks). */
	size_t scanned_total;
	/* Private to the parser: all are offsets from buf. */
	size_t pos;	   /* the next byte to examine */
	int phase;	   /* which part of the grammar pos is in */
	int error;	   /* 0, or the error once decided */
	size_t line;	   /* start of the request line (after empty lines) */
	size_t target;	   /* request: start of the request target */
	size_t version;	   /* request: start of "HTTP/" */
	size_t line_end;   /* the CR or LF that ends the first line */
	size_t fields;	   /* start of the first field line */
	size_t num_fields; /* field lines complete so far */
};

/*
 * http_parse_request, resuming where the last call with the same state
 * stopped.  state may be NULL: a one-shot parse, as http_parse_request.
 */
int http_parse_request_resume(const char *buf, size_t len,
			      struct http_request *req,
			      const struct http_limits *limits,
			      struct http_parse_state *state);

struct http_response {
	int minor_version;
	int status; /* 100..999 */
	struct http_slice reason;
	struct http_header *headers; /* in: array, out: fields */
	size_t num_headers;	     /* in: capacity, out: count */
	enum http_body body;
	uint64_t content_length;
	bool keep_alive; /* the origin allows reuse of the connection */
};

/*
 * Parse a response head.  request_method is the method of the request it
 * answers (a response to HEAD, and 1xx/204/304 responses, have no body; a
 * 2xx answer to CONNECT has none either).  Response errors map to 502.
 * Like http_parse_request, it writes *res only when it returns > 0.
 */
int http_parse_response(const char *buf, size_t len, struct http_response *res,
			struct http_slice request_method,
			const struct http_limits *limits);

/* http_parse_response with a resume state (see http_parse_request_resume). */
int http_parse_response_resume(const char *buf, size_t len,
			       struct http_response *res,
			       struct http_slice request_method,
			       const struct http_limits *limits,
			       struct http_parse_state *state);

/*
 * Parse an absolute URI ("http://user@[::1]:8080/a?b#frag") into url.
 * Only the http and https schemes are accepted (HTTP_E_TARGET otherwise).
 * Returns 0 or HTTP_E_TARGET.
 */
int http_parse_url(const char *s, size_t len, struct http_url *url);

/* Parse an authority-form target "host:port" (port required). */
int http_parse_authority(const char *s, size_t len, struct http_url *url);

/* ---- header fields ---- */

/*
 * Case-insensitive comparison of a field name with a C string.  Inline so
 * that, for a literal, the compiler counts its length at build time: a
 * cache hit asks this some forty times, and most names are rejected by
 * util_ieq's length check before any byte is read.
 */
static inline bool http_name_is(struct http_slice name, const char *lit)
{
	return name.ptr != NULL &&
	       util_ieq(name.ptr, name.len, lit, strlen(lit));
}

/*
 * The index of the first field named name at or after index from, or -1.
 * Loop with from = previous + 1 to visit every field of that name.
 */
ssize_t http_find_header(const struct http_header *headers, size_t n,
			 const char *name, size_t from);

/*
 * True when the comma-separated list in value holds token (case-insensitive,
 * surrounding whitespace and empty elements ignored): ("keep-alive, Upgrade",
 * "upgrade") is true.
 */
bool http_list_has_token(struct http_slice value, const char *token);

/*
 * True when a field must not be forwarded by a proxy (RFC 9110 section 7.6.1):
 * the fixed hop-by-hop fields (Connection, Keep-Alive, Proxy-Connection, TE,
 * Trailer, Transfer-Encoding, Upgrade, Proxy-Authorization,
 * Proxy-Authenticate) and every field named in any Connection field of the
 * same message.
 */
bool http_is_hop_by_hop(struct http_slice name,
			const struct http_header *headers, size_t n);

/* ---- chunked transfer coding ---- */

/* A chunk-size line (extensions included) may be this long. */
#define HTTP_CHUNK_LINE_MAX 4096
/* The trailer section, its final empty line included, may be this long. */
#define HTTP_CHUNK_TRAILER_MAX 65536
/* At most this many hex digits in a chunk size, leading zeros included. */
#define HTTP_CHUNK_SIZE_DIGITS 16

/*
 * Called for every run of decoded payload bytes (a slice of buf).  May be
 * NULL when only the framing matters.
 */
typedef void (*http_chunk_data_fn)(void *arg, const char *data, size_t len);

/*
 * Called once for every complete trailer field, with the arg given to
 * http_chunked_scan; name and value (without surrounding whitespace) are
 * slices of buf, valid during the call only.  A field is reported when its
 * line has ended, before the rest of the trailer section is checked: a
 * caller that forwards trailers keeps them until the scanner is done.
 */
typedef void (*http_chunk_trailer_fn)(void *arg, struct http_slice name,
				      struct http_slice value);

/*
 * Incremental scanner of a chunked body (RFC 9112 section 7.1).  Zero it
 * before the first call.  It does not change the bytes: it checks the
 * framing strictly, hands the payload to on_data, and says where the body
 * ends.  The proxy never forwards the sender's framing: it takes the
 * payload from on_data and frames it again canonically (http_chunk_head,
 * HTTP_CHUNK_LAST), so that no byte of a framing another parser might read
 * differently reaches the next hop.
 *
 * Strict framing: every framing line (chunk-size line, the CRLF after the
 * data, trailer lines, the final empty line) ends in CRLF; a bare LF is
 * HTTP_E_CHUNK_BARE_LF, a CR not followed by LF HTTP_E_BARE_CR.  A chunk
 * size has 1 to HTTP_CHUNK_SIZE_DIGITS hex digits (leading zeros count:
 * a long run of them is HTTP_E_CHUNK_SIZE) and is at most INT64_MAX.
 * Whitespace is allowed only as the BWS of RFC 9112 section 7.1.1 (SP or
 * HTAB before and after each ';' and around '='), never before or inside
 * the size, inside a name or token, or at the end of the line.
 *
 * Trailer fields are checked like header fields and skipped, unless the
 * caller sets on_trailer (after zeroing): then each complete field is
 * reported, and a trailer line that has not ended when buf does is handed
 * back instead of consumed (the return value is less than len, done is
 * false, held says how many of the bytes at the end of buf that is).  The
 * caller then calls again with those held bytes at the start of buf,
 * followed by more; they are not examined twice.  Such a caller must be
 * able to buffer one trailer line (at most HTTP_CHUNK_TRAILER_MAX bytes).
 */
struct http_chunked {
	int state;
	uint64_t remaining;   /* data bytes left in the current chunk */
	size_t line_len;      /* bytes of the current size line */
	size_t trailer_bytes; /* bytes of trailer section so far */
	bool done;	      /* the last chunk and trailers have ended */
	http_chunk_trailer_fn on_trailer; /* optional, set by the caller */
	size_t held;  /* with on_trailer: bytes handed back, already checked */
	size_t colon; /* with on_trailer: offset of ':' in the held line */
};

/*
 * Scan len bytes.  Returns how many bytes of buf belong to the body (all of
 * them unless the body ended inside buf, in which case c->done is set and
 * the rest belongs to the next message, or a trailer line was held back,
 * see on_trailer), or HTTP_E_CHUNK_SIZE, HTTP_E_CHUNK_DATA,
 * HTTP_E_CHUNK_TOO_LARGE, HTTP_E_CHUNK_BARE_LF, HTTP_E_BARE_CR, or for a
 * malformed trailer field the header errors (HTTP_E_HEADER_SYNTAX,
 * HTTP_E_HEADER_VALUE, HTTP_E_OBS_FOLD, HTTP_E_SPACE_BEFORE_COLON).
 * Errors are sticky: a later call returns the same error.
 * Chunk-size lines are limited to HTTP_CHUNK_LINE_MAX bytes and the
 * trailer section to HTTP_CHUNK_TRAILER_MAX.
 */
ssize_t http_chunked_scan(struct http_chunked *c, const char *buf, size_t len,
			  http_chunk_data_fn on_data, void *arg);

/* ---- chunked encoding: canonical framing for the next hop ---- */

/* Room for the longest chunk head: 16 hex digits and CRLF. */
#define HTTP_CHUNK_HEAD_MAX 18

/*
 * Write the head of a chunk of size bytes ("1a2b\r\n": lower-case hex, no
 * leading zeros, no extensions) into out, without a NUL; returns its
 * length.  Size 0 writes nothing and returns 0, so that an empty run of
 * payload can never end a body by accident: the end is HTTP_CHUNK_LAST.
 * After the chunk's data the caller writes HTTP_CHUNK_DATA_END.
 */
size_t http_chunk_head(uint64_t size, char out[HTTP_CHUNK_HEAD_MAX]);

/* What follows each chunk's data. */
#define HTTP_CHUNK_DATA_END	"\r\n"
#define HTTP_CHUNK_DATA_END_LEN 2

/*
 * The end of a chunked body without trailer fields: the last chunk and the
 * empty line.  A caller that forwards trailer fields writes "0\r\n", each
 * field as "name: value\r\n", then "\r\n".
 */
#define HTTP_CHUNK_LAST	    "0\r\n\r\n"
#define HTTP_CHUNK_LAST_LEN 5

#endif
