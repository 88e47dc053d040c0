/*
 * The access log's formats and the escapes that keep bytes from the
 * network from forging a line or reaching a terminal raw.  Pure: the
 * caller gives the time; nothing here does I/O.
 */
#include <stdio.h>
#include <string.h>

#include "glassproxy/util.h"
#include "log/log_int.h"

static const char hex_digits[] = "0123456789abcdef";

/* Append n bytes, or mark the line cut; room is kept for "\n". */
static bool put(struct log_line *l, const char *s, size_t n)
{
	const size_t room = sizeof(l->buf) - 2; /* lines < LOG_LINE_MAX */

	if (l->pos + n > room) {
		l->cut = true;
		return false;
	}
	memcpy(l->buf + l->pos, s, n);
	l->pos += n;
	return true;
}

void log_line_raw(struct log_line *l, const char *text)
{
	if (!l->cut)
		put(l, text, strlen(text));
}

/* True when byte c passes unchanged in a field escaped `how`. */
static bool passes(unsigned char c, enum log_escape how)
{
	if (c < 0x20 || c >= 0x7f || c == '\\')
		return false;
	switch (how) {
	case LOG_ESC_FIELD:
		return c != ' ';
	case LOG_ESC_QUOTED:
	case LOG_ESC_JSON:
		return c != '"';
	case LOG_ESC_HEX:
		break;
	}
	return true;
}

/* The escape of one byte that does not pass, into out; its length. */
static size_t escape_byte(unsigned char c, enum log_escape how, char *out)
{
	if ((how == LOG_ESC_QUOTED || how == LOG_ESC_JSON) &&
	    (c == '"' || c == '\\')) {
		out[0] = '\\', out[1] = (char)c;
		return 2;
	}
	if (how == LOG_ESC_JSON) {
		if (c == '\n' || c == '\r' || c == '\t') {
			out[0] = '\\';
			out[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
			return 2;
		}
		/* A byte, not a character: shown as its Latin-1 code point,
		 * so the line stays ASCII and json.loads() reads it. */
		memcpy(out, "\\u00", 4);
		out[4] = hex_digits[c >> 4], out[5] = hex_digits[c & 15];
		return 6;
	}
	out[0] = how == LOG_ESC_FIELD ? '%' : '\\';
	if (how == LOG_ESC_FIELD) {
		out[1] = hex_digits[c >> 4], out[2] = hex_digits[c & 15];
		return 3;
	}
	out[1] = 'x', out[2] = hex_digits[c >> 4], out[3] = hex_digits[c & 15];
	return 4;
}

void log_line_escaped(struct log_line *l, const char *text, enum log_escape how)
{
	char esc[8];

	for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
		if (l->cut)
			return;
		if (passes(*p, how))
			put(l, (const char *)p, 1);
		else
			put(l, esc, escape_byte(*p, how, esc));
	}
}

static const char *or_dash(const char *s)
{
	return s && *s ? s : "-";
}

/* The client's address without its port: "127.0.0.1", "::1". */
static void client_ip(const char *client, char *out, size_t cap)
{
	const char *colon = client ? strrchr(client, ':') : NULL;
	size_t len;

	if (!client || !colon) {
		util_format(out, cap, "%s", or_dash(client));
		return;
	}
	if (client[0] == '[') /* "[::1]:40000" */
		client++, colon--;
	len = (size_t)(colon - client);
	if (util_copy(out, cap, client, len) < 0)
		util_format(out, cap, "-");
}

/* sep, then n in decimal (a signed and an unsigned one). */
static void line_num(struct log_line *l, const char *sep, long long n)
{
	char text[24];

	log_line_raw(l, sep);
	if (util_format_i64(text, sizeof(text), n) > 0)
		log_line_raw(l, text);
}

static void line_u64(struct log_line *l, const char *sep, uint64_t n)
{
	char text[24];

	log_line_raw(l, sep);
	if (util_format_u64(text, sizeof(text), n) > 0)
		log_line_raw(l, text);
}

/*
 * sep, then n in decimal, at least width characters: padded on the left
 * with pad (' ', or '0' after a minus sign), as printf's %6lld and %03d.
 */
static void line_num_width(struct log_line *l, const char *sep, long long n,
			   int width, char pad)
{
	char digits[24], text[48];
	int len = util_format_i64(digits, sizeof(digits), n), at = 0;
	const char *d = digits;

	if (len < 0)
		return;
	if (pad == '0' && n < 0) { /* "-05": the sign before the zeros */
		text[at++] = '-';
		d++;
		len--;
		width--;
	}
	/* Padding leaves room for every digit and the NUL. */
	while (width > len && at < (int)(sizeof(text) - sizeof(digits))) {
		text[at++] = pad;
		width--;
	}
	memcpy(text + at, d, (size_t)len + 1);
	log_line_raw(l, sep);
	log_line_raw(l, text);
}

/*
 * Squid's native format (logformat squid): time.ms elapsed client
 * result/status bytes method URL user hierarchy/peer content-type.
 */
static void format_squid(const struct timespec *now, const struct log_access *e,
			 struct log_line *l)
{
	char ip[64];

	/* "%lld.%03ld %6lld %s %s/%03d %llu ", without vsnprintf (util.h). */
	client_ip(e->client, ip, sizeof(ip));
	line_num(l, "", (long long)now->tv_sec);
	line_num_width(l, ".", now->tv_nsec / 1000000, 3, '0');
	line_num_width(l, " ", (long long)e->duration_ms, 6, ' ');
	log_line_raw(l, " ");
	log_line_escaped(l, ip, LOG_ESC_FIELD);
	log_line_raw(l, " ");
	log_line_raw(l, e->result ? e->result : "NONE_NONE");
	line_num_width(l, "/", e->status, 3, '0');
	line_u64(l, " ", e->bytes_sent);
	log_line_raw(l, " ");
	log_line_escaped(l, or_dash(e->method), LOG_ESC_FIELD);
	log_line_raw(l, " ");
	log_line_escaped(l, or_dash(e->url), LOG_ESC_FIELD);
	log_line_raw(l, " ");
	log_line_escaped(l, or_dash(e->user), LOG_ESC_FIELD);
	log_line_raw(l, " ");
	log_line_raw(l, e->hierarchy ? e->hierarchy : "HIER_NONE");
	log_line_raw(l, "/");
	log_line_escaped(l, or_dash(e->peer), LOG_ESC_FIELD);
	log_line_raw(l, " ");
	log_line_escaped(l, or_dash(e->content_type), LOG_ESC_FIELD);
}

/* "[02/Dec/2026:13:52:01 +0000]" from the HTTP date of now. */
static void combined_time(const struct timespec *now, char *out, size_t cap)
{
	char date[40]; /* "Wed, 02 Dec 2026 13:52:01 GMT" */

	if (util_format_http_date(now->tv_sec, date, sizeof(date)) < 29) {
		util_format(out, cap, "[-]");
		return;
	}
	util_format(out, cap, "[%.2s/%.3s/%.4s:%.8s +0000]", date + 5, date + 8,
		    date + 12, date + 17);
}

/* Apache's %b: "-" for no body bytes. */
static void number_or_dash(char *out, size_t cap, unsigned long long n)
{
	if (n == 0)
		util_format(out, cap, "-");
	else
		util_format(out, cap, "%llu", n);
}

/* Apache's Combined Log Format: %h %l %u %t "%r" %>s %b "%{Referer}i"
 * "%{User-agent}i". */
static void format_combined(const struct timespec *now,
			    const struct log_access *e, struct log_line *l)
{
	char ip[64], when[48], status[16], bytes[32];

	client_ip(e->client, ip, sizeof(ip));
	combined_time(now, when, sizeof(when));
	number_or_dash(status, sizeof(status), (unsigned)e->status);
	number_or_dash(bytes, sizeof(bytes), e->bytes_sent);
	log_line_escaped(l, ip, LOG_ESC_FIELD);
	log_line_raw(l, " - ");
	log_line_escaped(l, or_dash(e->user), LOG_ESC_FIELD);
	log_line_raw(l, " ");
	log_line_raw(l, when);
	log_line_raw(l, " \"");
	log_line_escaped(l, or_dash(e->method), LOG_ESC_QUOTED);
	log_line_raw(l, " ");
	log_line_escaped(l, or_dash(e->url), LOG_ESC_QUOTED);
	log_line_raw(l, " ");
	log_line_escaped(l, e->version ? e->version : "HTTP/1.1",
			 LOG_ESC_QUOTED);
	log_line_raw(l, "\" ");
	log_line_raw(l, status);
	log_line_raw(l, " ");
	log_line_raw(l, bytes);
	log_line_raw(l, " \"");
	log_line_escaped(l, or_dash(e->referer), LOG_ESC_QUOTED);
	log_line_raw(l, "\" \"");
	log_line_escaped(l, or_dash(e->user_agent), LOG_ESC_QUOTED);
	log_line_raw(l, "\"");
}

/* ,"name":"value" (or null) */
static void json_str(struct log_line *l, const char *name, const char *value)
{
	log_line_raw(l, ",\"");
	log_line_raw(l, name);
	log_line_raw(l, "\":");
	if (!value) {
		log_line_raw(l, "null");
		return;
	}
	log_line_raw(l, "\"");
	log_line_escaped(l, value, LOG_ESC_JSON);
	log_line_raw(l, "\"");
}

/* ,"name":N (or null when N < 0 and nullable) */
static void json_num(struct log_line *l, const char *name, long long n,
		     bool nullable)
{
	char text[80];

	if (nullable && n < 0)
		util_format(text, sizeof(text), ",\"%s\":null", name);
	else
		util_format(text, sizeof(text), ",\"%s\":%lld", name, n);
	log_line_raw(l, text);
}

static void json_timing(struct log_line *l, const struct log_timing *t)
{
	json_num(l, "head_ms", t->head, true);
	json_num(l, "filter_ms", t->filter, true);
	json_num(l, "resolve_ms", t->resolve, true);
	json_num(l, "connect_ms", t->connect, true);
	json_num(l, "first_byte_ms", t->first_byte, true);
	json_num(l, "last_byte_ms", t->last_byte, true);
}

static void format_json(const struct timespec *now, const struct log_access *e,
			struct log_line *l)
{
	char when[40], ip[64];

	util_format_time_iso(now, when, sizeof(when));
	client_ip(e->client, ip, sizeof(ip));
	log_line_raw(l, "{\"time\":\"");
	log_line_raw(l, when);
	log_line_raw(l, "\"");
	json_num(l, "duration_ms", e->duration_ms, false);
	json_str(l, "client", e->client ? ip : NULL);
	json_str(l, "method", e->method);
	json_str(l, "url", e->url);
	json_num(l, "status", e->status, false);
	json_num(l, "bytes_in", (long long)e->bytes_received, false);
	json_num(l, "bytes_out", (long long)e->bytes_sent, false);
	json_str(l, "result", e->result ? e->result : "NONE_NONE");
	json_str(l, "hierarchy", e->hierarchy ? e->hierarchy : "HIER_NONE");
	json_str(l, "cache", e->cache_result);
	log_line_raw(l, e->stored ? ",\"stored\":true" : ",\"stored\":false");
	json_str(l, "upstream", e->peer);
	json_str(l, "content_type", e->content_type);
	json_str(l, "user", e->user);
	json_str(l, "outcome", e->outcome);
	json_num(l, "conn", (long long)e->conn_id, false);
	json_num(l, "request", e->request_no, false);
	json_timing(l, &e->timing);
	log_line_raw(l, "}");
}

/* The format before 0.2: fixed fields, the outcome last. */
static void format_glassproxy(const struct timespec *now,
			      const struct log_access *e, struct log_line *l)
{
	char text[120];

	if (util_format_time_iso(now, text, sizeof(text)) > 0) {
		log_line_raw(l, text);
		log_line_raw(l, " ");
	}
	log_line_escaped(l, or_dash(e->client), LOG_ESC_HEX);
	log_line_raw(l, " ");
	log_line_escaped(l, or_dash(e->method), LOG_ESC_HEX);
	log_line_raw(l, " ");
	log_line_escaped(l, or_dash(e->url), LOG_ESC_HEX);
	/* " status sent received Nms ", without vsnprintf (util.h). */
	line_num(l, " ", e->status);
	line_u64(l, " ", e->bytes_sent);
	line_u64(l, " ", e->bytes_received);
	line_num(l, " ", (long long)e->duration_ms);
	log_line_raw(l, "ms ");
	log_line_escaped(l, or_dash(e->outcome), LOG_ESC_HEX);
	/* "MISS+STORED": what went into the cache, in the same field. */
	if (e->stored)
		log_line_raw(l, "+STORED");
}

void log_format_access(enum log_format format, const struct timespec *now,
		       const struct log_access *e, struct log_line *l)
{
	switch (format) {
	case LOG_FORMAT_COMBINED:
		format_combined(now, e, l);
		return;
	case LOG_FORMAT_JSON:
		format_json(now, e, l);
		return;
	case LOG_FORMAT_GLASSPROXY:
		format_glassproxy(now, e, l);
		return;
	case LOG_FORMAT_SQUID:
	case LOG_FORMAT_COUNT:
		break;
	}
	format_squid(now, e, l);
}

void log_format_console(const struct log_access *e, struct log_line *l)
{
	char text[160];

	if (e->conn_id) {
		util_format(text, sizeof(text), "conn=%llu req=%u ",
			    (unsigned long long)e->conn_id, e->request_no);
		log_line_raw(l, text);
	}
	log_line_escaped(l, or_dash(e->method), LOG_ESC_HEX);
	log_line_raw(l, " ");
	log_line_escaped(l, or_dash(e->url), LOG_ESC_HEX);
	util_format(text, sizeof(text), " -> %d %lluB %lldms %s", e->status,
		    (unsigned long long)e->bytes_sent,
		    (long long)e->duration_ms,
		    e->result ? e->result : "NONE_NONE");
	log_line_raw(l, text);
	if (e->outcome) {
		log_line_raw(l, " ");
		log_line_escaped(l, e->outcome, LOG_ESC_HEX);
	}
}
