/*
 * The chunked transfer coding (RFC 9112 section 7.1) as a byte-at-a-time
 * state machine, so that any split of the input gives the same result.
 * Chunk extensions are checked against their grammar and skipped; trailer
 * fields are checked like header fields and skipped or reported.
 *
 * The framing is strict because a proxy sits between two parsers: every
 * framing line ends in CRLF (a bare LF is the issue #15 smuggling: a
 * parser that ends lines only at CRLF reads other chunk boundaries), and
 * a chunk size has at most 16 digits, so "0000...0005" cannot hide in a
 * 4096-byte line.  And the encoder at the end writes the canonical framing
 * the proxy sends instead of the sender's.
 */
#include "parse_int.h"

enum {
	CH_SIZE_START = 0, /* a zeroed struct starts here */
	CH_SIZE,	   /* in the hex digits */
	CH_SIZE_BWS,	   /* whitespace that must lead to ';' */
	CH_EXT_PRE_NAME,   /* after ';' */
	CH_EXT_NAME,
	CH_EXT_POST_NAME, /* whitespace after a name: '=' or ';' next */
	CH_EXT_PRE_VALUE, /* after '=' */
	CH_EXT_TOKEN,
	CH_EXT_QUOTED,
	CH_EXT_QUOTED_ESC,
	CH_EXT_POST_QUOTED,
	CH_DATA,
	CH_DATA_END, /* the CRLF after the data */
	CH_TRAILER_START,
	CH_TRAILER_NAME,
	CH_TRAILER_NAME_WS,
	CH_TRAILER_VALUE,
	CH_DONE,
};

/* Or-ed into a state: a CR was seen there and only an LF may follow. */
#define CH_CR 0x100

static bool is_ws(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static bool in_size_line(int st)
{
	return st >= CH_SIZE_START && st <= CH_EXT_POST_QUOTED;
}

static bool in_trailer(int st)
{
	return st >= CH_TRAILER_START && st <= CH_TRAILER_VALUE;
}

/* Errors are sticky: a later call returns the same error again. */
static int fail(struct http_chunked *c, int err)
{
	c->state = err;
	return err;
}

/* A line ended (LF, or CRLF) in state st. */
static int line_end(struct http_chunked *c, int st)
{
	switch (st) {
	case CH_SIZE:
	case CH_EXT_NAME:
	case CH_EXT_TOKEN:
	case CH_EXT_POST_QUOTED:
		c->line_len = 0;
		if (c->remaining == 0) {
			/* The last chunk: the trailer section follows. */
			c->trailer_bytes = 0;
			c->state = CH_TRAILER_START;
		} else {
			c->state = CH_DATA;
		}
		return 0;
	case CH_DATA_END:
		c->state = CH_SIZE_START;
		return 0;
	case CH_TRAILER_START:
		c->state = CH_DONE;
		c->done = true;
		return 0;
	case CH_TRAILER_VALUE:
		c->line_len = 0;
		c->state = CH_TRAILER_START;
		return 0;
	case CH_TRAILER_NAME:
	case CH_TRAILER_NAME_WS:
		return fail(c, HTTP_E_HEADER_SYNTAX);
	default:
		/* An empty size line, or one ending inside an extension. */
		return fail(c, HTTP_E_CHUNK_SIZE);
	}
}

/* One byte of a chunk size or of the BWS after it; -1: not allowed. */
static int size_byte(struct http_chunked *c, int st, unsigned char ch)
{
	if (parse_is_hex(ch) && st != CH_SIZE_BWS) {
		unsigned d = parse_hex_value(ch);

		/* The digits start the line: line_len counts them. */
		if (c->line_len > HTTP_CHUNK_SIZE_DIGITS ||
		    c->remaining > (PARSE_MAX_BODY_LENGTH - d) / 16)
			return -1;
		c->remaining = c->remaining * 16 + d;
		return CH_SIZE;
	}
	if (st == CH_SIZE_START)
		return -1; /* no whitespace or ';' before the first digit */
	if (ch == ';')
		return CH_EXT_PRE_NAME;
	return is_ws(ch) ? CH_SIZE_BWS : -1;
}

/* One byte of a chunk extension (RFC 9112 7.1.1); -1: not allowed. */
static int ext_byte(int st, unsigned char ch)
{
	switch (st) {
	case CH_EXT_PRE_NAME:
		if (is_ws(ch))
			return st;
		return parse_is_tchar(ch) ? CH_EXT_NAME : -1;
	case CH_EXT_NAME:
	case CH_EXT_POST_NAME:
		if (st == CH_EXT_NAME && parse_is_tchar(ch))
			return st;
		if (is_ws(ch))
			return CH_EXT_POST_NAME;
		if (ch == '=')
			return CH_EXT_PRE_VALUE;
		return ch == ';' ? CH_EXT_PRE_NAME : -1;
	case CH_EXT_PRE_VALUE:
		if (is_ws(ch))
			return st;
		if (ch == '"')
			return CH_EXT_QUOTED;
		return parse_is_tchar(ch) ? CH_EXT_TOKEN : -1;
	case CH_EXT_TOKEN:
	case CH_EXT_POST_QUOTED:
		if (st == CH_EXT_TOKEN && parse_is_tchar(ch))
			return st;
		if (is_ws(ch))
			return CH_SIZE_BWS; /* BWS: only ';' may follow */
		return ch == ';' ? CH_EXT_PRE_NAME : -1;
	case CH_EXT_QUOTED:
		if (ch == '"')
			return CH_EXT_POST_QUOTED;
		if (ch == '\\')
			return CH_EXT_QUOTED_ESC;
		return parse_is_field_char(ch) ? st : -1;
	default: /* CH_EXT_QUOTED_ESC */
		return parse_is_field_char(ch) ? CH_EXT_QUOTED : -1;
	}
}

/* One byte, not CR or LF, of a chunk-size line. */
static int size_line_byte(struct http_chunked *c, int st, unsigned char ch)
{
	int next;

	if (++c->line_len > PARSE_CHUNK_LINE_MAX)
		return fail(c, HTTP_E_CHUNK_TOO_LARGE);
	if (st <= CH_SIZE_BWS)
		next = size_byte(c, st, ch);
	else
		next = ext_byte(st, ch);
	if (next < 0)
		return fail(c, HTTP_E_CHUNK_SIZE);
	c->state = next;
	return 0;
}

/* One byte, not CR or LF, of a trailer field line (RFC 9112 7.1.2). */
static int trailer_byte(struct http_chunked *c, int st, unsigned char ch)
{
	switch (st) {
	case CH_TRAILER_START:
		if (is_ws(ch))
			return fail(c, HTTP_E_OBS_FOLD);
		if (!parse_is_tchar(ch))
			return fail(c, HTTP_E_HEADER_SYNTAX);
		c->state = CH_TRAILER_NAME;
		return 0;
	case CH_TRAILER_NAME:
		if (ch == ':')
			c->state = CH_TRAILER_VALUE;
		else if (is_ws(ch))
			c->state = CH_TRAILER_NAME_WS;
		else if (!parse_is_tchar(ch))
			return fail(c, HTTP_E_HEADER_SYNTAX);
		return 0;
	case CH_TRAILER_NAME_WS:
		if (ch == ':')
			return fail(c, HTTP_E_SPACE_BEFORE_COLON);
		if (!is_ws(ch))
			return fail(c, HTTP_E_HEADER_SYNTAX);
		return 0;
	default: /* CH_TRAILER_VALUE */
		if (!parse_is_field_char(ch))
			return fail(c, HTTP_E_HEADER_VALUE);
		return 0;
	}
}

/*
 * A whole trailer field line lies at line[0..end) (end is where its CR
 * is): report it, name and trimmed value, to the caller.
 */
static void report_trailer(const struct http_chunked *c, const char *line,
			   size_t end, void *arg)
{
	struct http_slice name = {line, c->colon};
	struct http_slice value = {line + c->colon + 1, end - c->colon - 1};

	util_trim(&value.ptr, &value.len);
	c->on_trailer(arg, name, value);
}

/* One byte outside chunk data, at b[i]: framing, size line or trailer. */
static int framing_byte(struct http_chunked *c, const unsigned char *b,
			size_t i, size_t line)
{
	int st = c->state;
	unsigned char ch = b[i];

	if (in_trailer(st & ~CH_CR) &&
	    ++c->trailer_bytes > PARSE_CHUNK_TRAILER_MAX)
		return fail(c, HTTP_E_CHUNK_TOO_LARGE);
	if (st & CH_CR) {
		if (ch != '\n')
			return fail(c, HTTP_E_BARE_CR);
		return line_end(c, st & ~CH_CR);
	}
	if (ch == '\r') {
		c->state = st | CH_CR;
		return 0;
	}
	/* RFC 9112 7.1 spells every framing line end CRLF: no leniency. */
	if (ch == '\n')
		return fail(c, HTTP_E_CHUNK_BARE_LF);
	if (in_size_line(st))
		return size_line_byte(c, st, ch);
	if (in_trailer(st)) {
		if (st == CH_TRAILER_NAME && ch == ':')
			c->colon = i - line;
		return trailer_byte(c, st, ch);
	}
	/* CH_DATA_END: the data ran on past its size. */
	return fail(c, HTTP_E_CHUNK_DATA);
}

/* Hand the payload bytes of the current chunk found in buf[*i..len). */
static void data_run(struct http_chunked *c, const char *buf, size_t len,
		     size_t *i, http_chunk_data_fn on_data, void *arg)
{
	size_t n = len - *i;

	if (n > c->remaining)
		n = (size_t)c->remaining;
	if (on_data)
		on_data(arg, buf + *i, n);
	*i += n;
	c->remaining -= n;
	if (c->remaining == 0)
		c->state = CH_DATA_END;
}

ssize_t http_chunked_scan(struct http_chunked *c, const char *buf, size_t len,
			  http_chunk_data_fn on_data, void *arg)
{
	const unsigned char *b = (const unsigned char *)buf;
	size_t i, line = 0; /* line: where the current trailer line starts */

	if (c->state < 0)
		return c->state;
	if (c->done)
		return 0;
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	/* A trailer line handed back last time: checked, so skip it. */
	if (len < c->held)
		return 0;
	i = c->held;
	c->held = 0;
	while (i < len) {
		int st = c->state, rc;

		if (st == CH_DATA) {
			data_run(c, buf, len, &i, on_data, arg);
			continue;
		}
		if (st == CH_TRAILER_START)
			line = i;
		rc = framing_byte(c, b, i++, line);
		if (rc)
			return rc;
		if (c->on_trailer && st == (CH_TRAILER_VALUE | CH_CR) &&
		    c->state == CH_TRAILER_START)
			report_trailer(c, buf + line, i - 2 - line, arg);
		if (c->done)
			break;
	}
	if (c->on_trailer && in_trailer(c->state & ~CH_CR) &&
	    (c->state & ~CH_CR) != CH_TRAILER_START) {
		/* A field line is cut short: hand it back, whole later. */
		c->held = i - line;
		return (ssize_t)line;
	}
	return (ssize_t)i;
}

size_t http_chunk_head(uint64_t size, char out[HTTP_CHUNK_HEAD_MAX])
{
	static const char hex[] = "0123456789abcdef";
	char digits[16];
	size_t n = 0, k = 0;

	while (size > 0) {
		digits[n++] = hex[size & 0xf];
		size >>= 4;
	}
	if (n == 0)
		return 0;
	while (n > 0)
		out[k++] = digits[--n];
	out[k++] = '\r';
	out[k++] = '\n';
	return k;
}
