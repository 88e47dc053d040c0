/*
 * Unit tests of the parse module.
 *
 * Most cases are data: fixtures/http/{requests,responses,chunked}/ *.http
 * and fixtures/http/urls/ *.txt, in the format docs/parse.md describes, so
 * an instructor adds a case by adding a file.  Every message fixture is
 * also parsed cut at every offset, each cut placed flush against a
 * PROT_NONE page (picohttpparser's trick) so that any over-read crashes;
 * every chunked fixture is fed whole, byte by byte and split at every
 * offset.  The C tests below cover what is easier to generate than to
 * write down: limits, header helpers, error tables.
 *
 * Run from the repository root (make unit does): fixtures are found
 * relative to the working directory.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "glassproxy/parse.h"
#include "parse/parse_int.h"

#define FIXTURES  "fixtures/http"
#define HDR_CAP	  128
#define VAL_MAX	  8192
#define GUARD_MAX (1024 * 1024)

/* ---- guard page ---- */

static char *guard_mem; /* mapping: GUARD_MAX readable bytes + 1 page */
static char *guard_end; /* first byte of the PROT_NONE page */
static size_t page_size;

static int guard_setup(void **state)
{
	(void)state;
	page_size = (size_t)sysconf(_SC_PAGESIZE);
	guard_mem = mmap(NULL, GUARD_MAX + page_size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (guard_mem == MAP_FAILED)
		return -1;
	guard_end = guard_mem + GUARD_MAX;
	return mprotect(guard_end, page_size, PROT_NONE);
}

static int guard_teardown(void **state)
{
	(void)state;
	return munmap(guard_mem, GUARD_MAX + page_size);
}

/* A copy of src[0..n) whose last byte is the last readable one. */
static char *at_guard(const char *src, size_t n)
{
	char *p = guard_end - n;

	assert_true(n <= GUARD_MAX);
	if (n)
		memcpy(p, src, n);
	return p;
}

/* ---- small text helpers ---- */

struct val {
	char s[VAL_MAX];
	size_t n;
};

static void val_set(struct val *v, const char *s, size_t n)
{
	if (n > sizeof(v->s) - 1)
		n = sizeof(v->s) - 1;
	memcpy(v->s, s, n);
	v->s[n] = '\0';
	v->n = n;
}

__attribute__((format(printf, 2, 3))) static void val_fmt(struct val *v,
							  const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(v->s, sizeof(v->s), fmt, ap);
	va_end(ap);
	v->n = n < 0 ? 0
		     : ((size_t)n >= sizeof(v->s) ? sizeof(v->s) - 1
						  : (size_t)n);
}

__attribute__((format(printf, 2, 3))) static void val_add(struct val *v,
							  const char *fmt, ...)
{
	va_list ap;
	int n;
	size_t room = sizeof(v->s) - v->n;

	va_start(ap, fmt);
	n = vsnprintf(v->s + v->n, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		v->n += (size_t)n >= room ? room - 1 : (size_t)n;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

/*
 * Decode the escapes of the fixture format: \r \n \t \0 \\ \" \xHH.
 * Returns the decoded length, or -1 for a bad escape.
 */
static long unescape(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '\\' && i + 1 < n) {
			char e = s[++i];

			switch (e) {
			case 'r':
				c = '\r';
				break;
			case 'n':
				c = '\n';
				break;
			case 't':
				c = '\t';
				break;
			case '0':
				c = '\0';
				break;
			case '\\':
			case '"':
				c = e;
				break;
			case 'x':
				if (i + 2 >= n || hexval(s[i + 1]) < 0 ||
				    hexval(s[i + 2]) < 0)
					return -1;
				c = (char)(hexval(s[i + 1]) * 16 +
					   hexval(s[i + 2]));
				i += 2;
				break;
			default:
				return -1;
			}
		} else if (c == '\\') {
			return -1;
		}
		if (o >= cap)
			return -1;
		out[o++] = c;
	}
	return (long)o;
}

/* Printable rendering of arbitrary bytes for failure messages. */
static const char *show(const char *s, size_t n, struct val *tmp)
{
	tmp->n = 0;
	tmp->s[0] = '\0';
	for (size_t i = 0; i < n && tmp->n < sizeof(tmp->s) - 8; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\r')
			val_add(tmp, "\\r");
		else if (c == '\n')
			val_add(tmp, "\\n");
		else if (c == '\\')
			val_add(tmp, "\\\\");
		else if (c < 0x20 || c >= 0x7f)
			val_add(tmp, "\\x%02x", c);
		else
			val_add(tmp, "%c", c);
	}
	return tmp->s;
}

/* ---- error names ---- */

#define ERR(x)                                                                 \
	{                                                                      \
#x, x                                                          \
	}
static const struct {
	const char *name;
	int code;
} error_names[] = {
	ERR(HTTP_INCOMPLETE),
	ERR(HTTP_E_REQUEST_LINE),
	ERR(HTTP_E_METHOD),
	ERR(HTTP_E_TARGET),
	ERR(HTTP_E_VERSION),
	ERR(HTTP_E_VERSION_UNSUPPORTED),
	ERR(HTTP_E_URI_TOO_LONG),
	ERR(HTTP_E_HEAD_TOO_LARGE),
	ERR(HTTP_E_TOO_MANY_HEADERS),
	ERR(HTTP_E_HEADER_SYNTAX),
	ERR(HTTP_E_HEADER_VALUE),
	ERR(HTTP_E_SPACE_BEFORE_COLON),
	ERR(HTTP_E_OBS_FOLD),
	ERR(HTTP_E_BARE_CR),
	ERR(HTTP_E_CONTENT_LENGTH),
	ERR(HTTP_E_DUPLICATE_CONTENT_LENGTH),
	ERR(HTTP_E_LENGTH_AND_CHUNKED),
	ERR(HTTP_E_TE_NOT_CHUNKED_LAST),
	ERR(HTTP_E_TE_UNKNOWN),
	ERR(HTTP_E_HOST_MISSING),
	ERR(HTTP_E_HOST_DUPLICATE),
	ERR(HTTP_E_STATUS_LINE),
	ERR(HTTP_E_CHUNK_SIZE),
	ERR(HTTP_E_CHUNK_DATA),
	ERR(HTTP_E_CHUNK_TOO_LARGE),
	ERR(HTTP_E_CHUNK_BARE_LF),
	ERR(HTTP_E_TE_HTTP10),
};

static const char *error_name(long code)
{
	static char other[32];

	if (code >= 0) {
		snprintf(other, sizeof(other), "ok(%ld)", code);
		return other;
	}
	for (size_t i = 0; i < sizeof(error_names) / sizeof(error_names[0]);
	     i++)
		if (error_names[i].code == code)
			return error_names[i].name;
	return "?";
}

static bool error_code(const char *name, int *code)
{
	for (size_t i = 0; i < sizeof(error_names) / sizeof(error_names[0]);
	     i++)
		if (strcmp(error_names[i].name, name) == 0) {
			*code = error_names[i].code;
			return true;
		}
	return false;
}

/* ---- fixture files ---- */

struct fixture {
	char path[512];
	char *msg; /* the decoded message */
	size_t len;
	char expect[4096]; /* the "expect:" directives, joined */
	char method[64];   /* responses: the request method */
	struct http_limits limits;
};

static int failures;

__attribute__((format(printf, 2, 3))) static void
fixture_fail(const struct fixture *fx, const char *fmt, ...)
{
	va_list ap;
	char msg[1024];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	print_error("%s: %s\n", fx->path, msg);
	failures++;
}

static char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0;

	if (f == NULL)
		return NULL;
	for (;;) {
		if (n + 4096 > cap) {
			cap = cap ? cap * 2 : 8192;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		size_t got = fread(buf + n, 1, cap - n - 1, f);
		if (got == 0)
			break;
		n += got;
	}
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

static void parse_limits_directive(struct fixture *fx, const char *s)
{
	while (*s) {
		char key[64];
		unsigned long v;
		int used = 0;

		while (*s == ' ')
			s++;
		if (!*s)
			break;
		if (sscanf(s, "%63[a-z_]=%lu%n", key, &v, &used) != 2) {
			fixture_fail(fx, "bad limits directive: %s", s);
			return;
		}
		if (strcmp(key, "max_request_line") == 0)
			fx->limits.max_request_line = v;
		else if (strcmp(key, "max_head") == 0)
			fx->limits.max_head = v;
		else if (strcmp(key, "max_headers") == 0)
			fx->limits.max_headers = v;
		else
			fixture_fail(fx, "unknown limit %s", key);
		s += used;
	}
}

/*
 * Load a fixture: leading '#' lines are directives, the rest is the
 * message, each newline becoming CRLF (or LF with "# eol: lf"), escapes
 * decoded, a backslash at the end of a line joining it to the next, and
 * raw CRs in the file ignored (so a CRLF checkout changes nothing).
 */
static bool fixture_load(struct fixture *fx, const char *path)
{
	size_t flen, i = 0, o = 0;
	char *file;
	bool lf_only = false;

	memset(fx, 0, sizeof(*fx));
	snprintf(fx->path, sizeof(fx->path), "%s", path);
	snprintf(fx->method, sizeof(fx->method), "GET");
	file = read_all(path, &flen);
	if (file == NULL) {
		fixture_fail(fx, "cannot read");
		return false;
	}
	while (i < flen && file[i] == '#') {
		size_t end = i;
		char line[4096], *p;

		while (end < flen && file[end] != '\n')
			end++;
		snprintf(line, sizeof(line), "%.*s", (int)(end - i - 1),
			 file + i + 1);
		p = strchr(line, '\r');
		if (p)
			*p = '\0';
		p = line;
		while (*p == ' ')
			p++;
		if (strncmp(p, "expect:", 7) == 0) {
			size_t have = strlen(fx->expect);
			snprintf(fx->expect + have, sizeof(fx->expect) - have,
				 " %s", p + 7);
		} else if (strncmp(p, "limits:", 7) == 0) {
			parse_limits_directive(fx, p + 7);
		} else if (strncmp(p, "method:", 7) == 0) {
			sscanf(p + 7, " %63s", fx->method);
		} else if (strncmp(p, "eol:", 4) == 0) {
			lf_only = strstr(p + 4, "lf") && !strstr(p + 4, "crlf");
		}
		i = end < flen ? end + 1 : end;
	}
	fx->msg = malloc(2 * (flen - i) + 1);
	assert_non_null(fx->msg);
	for (; i < flen; i++) {
		char c = file[i];

		if (c == '\r')
			continue;
		if (c == '\n') {
			if (!lf_only)
				fx->msg[o++] = '\r';
			fx->msg[o++] = '\n';
			continue;
		}
		if (c == '\\' && i + 1 < flen &&
		    (file[i + 1] == '\n' || file[i + 1] == '\r')) {
			while (i + 1 < flen && file[i + 1] == '\r')
				i++;
			i++; /* the newline: joined, not written */
			continue;
		}
		if (c == '\\') {
			size_t esc = file[i + 1] == 'x' ? 4 : 2;
			long n;

			if (i + esc > flen)
				esc = flen - i;
			n = unescape(file + i, esc, fx->msg + o, 1);
			if (n != 1) {
				fixture_fail(fx, "bad escape at byte %zu", i);
				free(file);
				return false;
			}
			o++;
			i += esc - 1;
			continue;
		}
		fx->msg[o++] = c;
	}
	fx->len = o;
	free(file);
	if (fx->expect[0] == '\0') {
		fixture_fail(fx, "no '# expect:' line");
		return false;
	}
	return true;
}

static void fixture_free(struct fixture *fx)
{
	free(fx->msg);
	fx->msg = NULL;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The files in dir ending in suffix, sorted; fails the test when none. */
static size_t list_dir(const char *dir, const char *suffix, char ***out)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, cap = 0, sl = strlen(suffix);

	if (d == NULL)
		fail_msg("cannot open %s (run from the repository root)", dir);
	while ((e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name);

		if (l <= sl || strcmp(e->d_name + l - sl, suffix) != 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			names = realloc(names, cap * sizeof(*names));
			assert_non_null(names);
		}
		names[n] = malloc(strlen(dir) + l + 2);
		assert_non_null(names[n]);
		snprintf(names[n], strlen(dir) + l + 2, "%s/%s", dir,
			 e->d_name);
		n++;
	}
	closedir(d);
	if (n == 0)
		fail_msg("no %s files in %s", suffix, dir);
	qsort(names, n, sizeof(*names), cmp_names);
	*out = names;
	return n;
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/*
 * The next token of an expectation: "word" or "key=value" where value may
 * be "quoted" (with escapes).  Returns false at the end.
 */
static bool next_token(const char **pp, char *key, size_t kcap,
		       struct val *value, bool *has_value)
{
	const char *p = *pp, *start, *vs;
	size_t vlen;
	long n;

	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0')
		return false;
	start = p;
	while (*p && *p != '=' && *p != ' ')
		p++;
	snprintf(key, kcap, "%.*s", (int)(p - start), start);
	*has_value = *p == '=';
	value->n = 0;
	value->s[0] = '\0';
	if (*has_value) {
		p++;
		if (*p == '"') {
			vs = ++p;
			while (*p && !(*p == '"' && p[-1] != '\\'))
				p++;
			vlen = (size_t)(p - vs);
			if (*p == '"')
				p++;
		} else {
			vs = p;
			while (*p && *p != ' ')
				p++;
			vlen = (size_t)(p - vs);
		}
		n = unescape(vs, vlen, value->s, sizeof(value->s) - 1);
		value->n = n < 0 ? 0 : (size_t)n;
		value->s[value->n] = '\0';
	}
	*pp = p;
	return true;
}

enum verdict { V_OK, V_ERROR, V_INCOMPLETE };

/* Reads the verdict word; for errors also the code. */
static bool expect_verdict(const struct fixture *fx, const char **p,
			   enum verdict *v, int *code)
{
	char key[128];
	struct val tmp;
	bool hv;

	if (!next_token(p, key, sizeof(key), &tmp, &hv))
		return false;
	if (strcmp(key, "ok") == 0) {
		*v = V_OK;
	} else if (strcmp(key, "incomplete") == 0) {
		*v = V_INCOMPLETE;
		*code = HTTP_INCOMPLETE;
	} else if (strcmp(key, "error") == 0) {
		*v = V_ERROR;
		if (!next_token(p, key, sizeof(key), &tmp, &hv) ||
		    !error_code(key, code)) {
			fixture_fail(fx, "unknown error name '%s'", key);
			return false;
		}
	} else {
		fixture_fail(fx,
			     "expectation must start with ok/error/"
			     "incomplete, not '%s'",
			     key);
		return false;
	}
	return true;
}

/* ---- rendering results, for comparison and for expectations ---- */

struct where {
	const char *base;
	size_t len;
};

static void add_slice(struct val *v, struct where w, struct http_slice s)
{
	struct val tmp;

	if (s.ptr == NULL)
		val_add(v, "-");
	else if (s.ptr >= w.base && s.ptr + s.len <= w.base + w.len)
		val_add(v, "@%zu+%zu", (size_t)(s.ptr - w.base), s.len);
	else
		val_add(v, "'%s'", show(s.ptr, s.len, &tmp));
}

static void add_url(struct val *v, struct where w, const struct http_url *u)
{
	val_add(v, " scheme=");
	add_slice(v, w, u->scheme);
	val_add(v, " userinfo=");
	add_slice(v, w, u->userinfo);
	val_add(v, " host=");
	add_slice(v, w, u->host);
	val_add(v, " port=%u/%d/%d path=", u->port, u->port_explicit,
		u->host_is_ipv6);
	add_slice(v, w, u->path);
}

static void add_headers(struct val *v, struct where w,
			const struct http_header *h, size_t n)
{
	val_add(v, " n=%zu", n);
	for (size_t i = 0; i < n; i++) {
		val_add(v, " ");
		add_slice(v, w, h[i].name);
		val_add(v, ":");
		add_slice(v, w, h[i].value);
	}
}

/* Everything a request parse produced, positions relative to w.base. */
static void render_request(struct val *v, struct where w, int rc,
			   const struct http_request *r)
{
	val_fmt(v, "rc=%d", rc);
	if (rc <= 0)
		return;
	val_add(v, " m=");
	add_slice(v, w, r->method);
	val_add(v, " t=");
	add_slice(v, w, r->target);
	val_add(v, " v=%d form=%d", r->minor_version, (int)r->form);
	add_url(v, w, &r->url);
	add_headers(v, w, r->headers, r->num_headers);
	val_add(v, " body=%d cl=%llu ka=%d ec=%d", (int)r->body,
		(unsigned long long)r->content_length, r->keep_alive,
		r->expect_continue);
}

static void render_response(struct val *v, struct where w, int rc,
			    const struct http_response *r)
{
	val_fmt(v, "rc=%d", rc);
	if (rc <= 0)
		return;
	val_add(v, " v=%d status=%d reason=", r->minor_version, r->status);
	add_slice(v, w, r->reason);
	add_headers(v, w, r->headers, r->num_headers);
	val_add(v, " body=%d cl=%llu ka=%d", (int)r->body,
		(unsigned long long)r->content_length, r->keep_alive);
}

static const char *body_name(enum http_body b)
{
	switch (b) {
	case HTTP_BODY_NONE:
		return "none";
	case HTTP_BODY_LENGTH:
		return "length";
	case HTTP_BODY_CHUNKED:
		return "chunked";
	case HTTP_BODY_UNTIL_CLOSE:
		return "close";
	}
	return "?";
}

static const char *form_name(enum http_target_form f)
{
	switch (f) {
	case HTTP_FORM_ORIGIN:
		return "origin";
	case HTTP_FORM_ABSOLUTE:
		return "absolute";
	case HTTP_FORM_AUTHORITY:
		return "authority";
	case HTTP_FORM_ASTERISK:
		return "asterisk";
	}
	return "?";
}

static void slice_val(struct val *v, struct http_slice s)
{
	if (s.ptr == NULL)
		val_set(v, "", 0);
	else
		val_set(v, s.ptr, s.len);
}

static bool url_value(const struct http_url *u, const char *key, struct val *v)
{
	if (strcmp(key, "scheme") == 0)
		slice_val(v, u->scheme);
	else if (strcmp(key, "userinfo") == 0)
		slice_val(v, u->userinfo);
	else if (strcmp(key, "host") == 0)
		slice_val(v, u->host);
	else if (strcmp(key, "port") == 0)
		val_fmt(v, "%u", u->port);
	else if (strcmp(key, "port_explicit") == 0)
		val_fmt(v, "%d", u->port_explicit);
	else if (strcmp(key, "ipv6") == 0)
		val_fmt(v, "%d", u->host_is_ipv6);
	else if (strcmp(key, "path") == 0)
		slice_val(v, u->path);
	else
		return false;
	return true;
}

static bool header_value(const struct http_header *h, size_t n, const char *key,
			 struct val *v)
{
	ssize_t i;

	if (strncmp(key, "hdr.", 4) != 0)
		return false;
	i = http_find_header(h, n, key + 4, 0);
	if (i < 0)
		val_set(v, "<absent>", 8);
	else
		slice_val(v, h[i].value);
	return true;
}

static bool request_value(const struct http_request *r, int rc, const char *key,
			  struct val *v)
{
	if (strcmp(key, "method") == 0)
		slice_val(v, r->method);
	else if (strcmp(key, "target") == 0)
		slice_val(v, r->target);
	else if (strcmp(key, "version") == 0)
		val_fmt(v, "1.%d", r->minor_version);
	else if (strcmp(key, "form") == 0)
		val_fmt(v, "%s", form_name(r->form));
	else if (strcmp(key, "body") == 0)
		val_fmt(v, "%s", body_name(r->body));
	else if (strcmp(key, "length") == 0)
		val_fmt(v, "%llu", (unsigned long long)r->content_length);
	else if (strcmp(key, "keep_alive") == 0)
		val_fmt(v, "%d", r->keep_alive);
	else if (strcmp(key, "expect_continue") == 0)
		val_fmt(v, "%d", r->expect_continue);
	else if (strcmp(key, "headers") == 0)
		val_fmt(v, "%zu", r->num_headers);
	else if (strcmp(key, "head") == 0)
		val_fmt(v, "%d", rc);
	else if (header_value(r->headers, r->num_headers, key, v))
		return true;
	else
		return url_value(&r->url, key, v);
	return true;
}

static bool response_value(const struct http_response *r, int rc,
			   const char *key, struct val *v)
{
	if (strcmp(key, "version") == 0)
		val_fmt(v, "1.%d", r->minor_version);
	else if (strcmp(key, "status") == 0)
		val_fmt(v, "%d", r->status);
	else if (strcmp(key, "reason") == 0)
		slice_val(v, r->reason);
	else if (strcmp(key, "body") == 0)
		val_fmt(v, "%s", body_name(r->body));
	else if (strcmp(key, "length") == 0)
		val_fmt(v, "%llu", (unsigned long long)r->content_length);
	else if (strcmp(key, "keep_alive") == 0)
		val_fmt(v, "%d", r->keep_alive);
	else if (strcmp(key, "headers") == 0)
		val_fmt(v, "%zu", r->num_headers);
	else if (strcmp(key, "head") == 0)
		val_fmt(v, "%d", rc);
	else
		return header_value(r->headers, r->num_headers, key, v);
	return true;
}

/* ---- message fixtures: requests and responses ---- */

struct outcome {
	int rc;
	struct http_request req;
	struct http_response res;
	struct http_header h[HDR_CAP];
};

/* One parse of buf[0..len): one-shot when st is NULL, else resumed. */
static void run_parser_state(const struct fixture *fx, bool request,
			     const char *buf, size_t len, struct outcome *o,
			     struct http_parse_state *st)
{
	struct http_slice m = {fx->method, strlen(fx->method)};

	memset(o, 0, sizeof(*o));
	if (request) {
		o->req.headers = o->h;
		o->req.num_headers = HDR_CAP;
		o->rc = st ? http_parse_request_resume(buf, len, &o->req,
						       &fx->limits, st)
			   : http_parse_request(buf, len, &o->req, &fx->limits);
	} else {
		o->res.headers = o->h;
		o->res.num_headers = HDR_CAP;
		o->rc = st ? http_parse_response_resume(buf, len, &o->res, m,
							&fx->limits, st)
			   : http_parse_response(buf, len, &o->res, m,
						 &fx->limits);
	}
}

static void run_parser(const struct fixture *fx, bool request, const char *buf,
		       size_t len, struct outcome *o)
{
	run_parser_state(fx, request, buf, len, o, NULL);
}

static void render(struct val *v, bool request, const char *buf, size_t len,
		   const struct outcome *o)
{
	struct where w = {buf, len};

	if (request)
		render_request(v, w, o->rc, &o->req);
	else
		render_response(v, w, o->rc, &o->res);
}

static void check_expectations(const struct fixture *fx, bool request,
			       const struct outcome *o)
{
	const char *p = fx->expect;
	enum verdict verdict;
	int code = 0;
	char key[128];
	struct val want, got, t1, t2;
	bool hv;

	if (!expect_verdict(fx, &p, &verdict, &code))
		return;
	if (verdict != V_OK) {
		if (o->rc != code)
			fixture_fail(fx, "want %s, got %s", error_name(code),
				     error_name(o->rc));
		return;
	}
	if (o->rc <= 0) {
		fixture_fail(fx, "want ok, got %s", error_name(o->rc));
		return;
	}
	while (next_token(&p, key, sizeof(key), &want, &hv)) {
		bool known;

		if (!hv) {
			fixture_fail(fx, "expectation '%s' has no value", key);
			continue;
		}
		if (strcmp(key, "rest") == 0) {
			val_fmt(&got, "%zu", fx->len - (size_t)o->rc);
			known = true;
		} else if (request) {
			known = request_value(&o->req, o->rc, key, &got);
		} else {
			known = response_value(&o->res, o->rc, key, &got);
		}
		if (!known)
			fixture_fail(fx, "unknown expectation key '%s'", key);
		else if (got.n != want.n || memcmp(got.s, want.s, got.n) != 0)
			fixture_fail(fx, "%s: want '%s', got '%s'", key,
				     show(want.s, want.n, &t1),
				     show(got.s, got.n, &t2));
	}
}

/*
 * Every cut of the message, each flush against the guard page: a cut
 * shorter than the head is HTTP_INCOMPLETE (or, for an error, the same
 * error once it has been decided, and from then on); a cut holding the
 * whole head gives exactly the full result.
 */
static void check_every_cut(const struct fixture *fx, bool request,
			    const struct outcome *full)
{
	struct val want, got;
	struct outcome o;
	bool decided = false;

	for (size_t k = 0; k <= fx->len; k++) {
		char *buf = at_guard(fx->msg, k);

		run_parser(fx, request, buf, k, &o);
		if (full->rc > 0 && (size_t)full->rc <= k) {
			/* Positions are compared relative to each copy. */
			render(&want, request, fx->msg, fx->len, full);
			render(&got, request, buf, k, &o);
			if (o.rc != full->rc || strcmp(want.s, got.s) != 0) {
				fixture_fail(fx,
					     "cut at %zu: result differs:\n"
					     "  whole: %s\n  cut:   %s",
					     k, want.s, got.s);
				return;
			}
			continue;
		}
		if (o.rc == HTTP_INCOMPLETE && !decided)
			continue;
		if (o.rc == full->rc && full->rc != HTTP_INCOMPLETE) {
			decided = true;
			continue;
		}
		fixture_fail(fx, "cut at %zu gives %s, whole message %s", k,
			     error_name(o.rc), error_name(full->rc));
		return;
	}
}

/*
 * The same cuts through the resume API: one state carried across the
 * growing prefixes, each prefix a fresh copy at a new address (flush
 * against the guard page), so a state that kept a pointer would fail.
 * Every cut must give exactly what the one-shot parse of it gives.
 */
static void check_every_cut_resumed(const struct fixture *fx, bool request)
{
	struct http_parse_state st;
	struct outcome *one = malloc(sizeof(*one));
	struct outcome *res = malloc(sizeof(*res));
	struct val want, got;
	size_t work = 0; /* st.scanned_total when the verdict was reached */

	assert_non_null(one);
	assert_non_null(res);
	memset(&st, 0, sizeof(st));
	for (size_t k = 0; k <= fx->len; k++) {
		char *buf = at_guard(fx->msg, k);

		run_parser(fx, request, buf, k, one);
		render(&want, request, buf, k, one);
		run_parser_state(fx, request, buf, k, res, &st);
		render(&got, request, buf, k, res);
		if (strcmp(want.s, got.s) != 0) {
			fixture_fail(fx,
				     "resumed at %zu: result differs:\n"
				     "  one-shot: %s\n  resumed:  %s",
				     k, want.s, got.s);
			break;
		}
		if (res->rc != HTTP_INCOMPLETE && work == 0)
			work = st.scanned_total;
	}
	/*
	 * Each byte once, one more look at the fields and the target at the
	 * end (a call after the verdict redoes that last part, so it is not
	 * counted here).
	 */
	if (work > 4 * fx->len)
		fixture_fail(fx, "resumed scan examined %zu bytes for %zu",
			     work, fx->len);
	free(res);
	free(one);
}

static void run_message_dir(const char *dir, bool request)
{
	char **names;
	size_t n = list_dir(dir, ".http", &names);

	failures = 0;
	for (size_t i = 0; i < n; i++) {
		struct fixture fx;
		struct outcome *full = malloc(sizeof(*full));

		assert_non_null(full);
		if (fixture_load(&fx, names[i])) {
			run_parser(&fx, request, fx.msg, fx.len, full);
			check_expectations(&fx, request, full);
			check_every_cut(&fx, request, full);
			check_every_cut_resumed(&fx, request);
		}
		fixture_free(&fx);
		free(full);
	}
	print_message("%zu fixtures in %s\n", n, dir);
	free_names(names, n);
	assert_int_equal(failures, 0);
}

static void test_request_fixtures(void **state)
{
	(void)state;
	run_message_dir(FIXTURES "/requests", true);
}

static void test_response_fixtures(void **state)
{
	(void)state;
	run_message_dir(FIXTURES "/responses", false);
}

/* ---- chunked fixtures ---- */

struct sink {
	char data[VAL_MAX];
	size_t len;
	bool overflow;
	const char *lo, *hi; /* the piece being scanned */
	bool outside;	     /* a callback pointed outside it */
	struct val trailers; /* "name: value\n" for each reported field */
};

static void sink_trailer(void *arg, struct http_slice name,
			 struct http_slice value)
{
	struct sink *s = arg;
	struct val n, v;

	if (name.ptr < s->lo || name.ptr + name.len > s->hi || name.len == 0 ||
	    value.ptr < s->lo || value.ptr + value.len > s->hi)
		s->outside = true;
	val_set(&n, name.ptr, name.len);
	val_set(&v, value.ptr, value.len);
	val_add(&s->trailers, "%s: %s\n", n.s, v.s);
}

static void sink_data(void *arg, const char *data, size_t len)
{
	struct sink *s = arg;

	if (data < s->lo || data + len > s->hi || len == 0)
		s->outside = true;
	if (s->len + len > sizeof(s->data)) {
		s->overflow = true;
		return;
	}
	memcpy(s->data + s->len, data, len);
	s->len += len;
}

struct chunk_run {
	long rc; /* consumed bytes, or the error */
	bool done;
	struct sink sink;
};

/* Feed msg in pieces: ends[] are the cut positions, the last one len. */
static void chunk_feed(const char *msg, size_t len, const size_t *ends,
		       size_t nends, struct chunk_run *r)
{
	struct http_chunked c;
	size_t at = 0;

	memset(&c, 0, sizeof(c));
	memset(r, 0, sizeof(*r));
	for (size_t k = 0; k < nends; k++) {
		size_t n = ends[k] - at;
		char *piece = at_guard(msg + at, n);
		ssize_t rc;

		r->sink.lo = piece;
		r->sink.hi = piece + n;
		rc = http_chunked_scan(&c, piece, n, sink_data, &r->sink);
		if (rc < 0) {
			r->rc = rc;
			r->done = c.done;
			return;
		}
		if ((size_t)rc > n) {
			r->rc = -1000; /* impossible: flagged below */
			return;
		}
		at += (size_t)rc;
		if (c.done || (size_t)rc < n)
			break;
	}
	r->rc = (long)at;
	r->done = c.done;
}

/*
 * Feed msg as chunk_feed does, with on_trailer set: bytes the scanner
 * hands back (a trailer line not yet ended) are presented again at the
 * start of the next piece.  rc is what was consumed plus what is held.
 */
static void chunk_feed_held(const char *msg, size_t len, const size_t *ends,
			    size_t nends, struct chunk_run *r)
{
	struct http_chunked c;
	size_t at = 0;

	memset(&c, 0, sizeof(c));
	memset(r, 0, sizeof(*r));
	c.on_trailer = sink_trailer;
	for (size_t k = 0; k < nends && !c.done; k++) {
		size_t n = ends[k] - at;
		char *piece = at_guard(msg + at, n);
		ssize_t rc;

		r->sink.lo = piece;
		r->sink.hi = piece + n;
		rc = http_chunked_scan(&c, piece, n, sink_data, &r->sink);
		if (rc < 0) {
			r->rc = rc;
			r->done = c.done;
			return;
		}
		if ((size_t)rc > n || (!c.done && (size_t)rc + c.held != n)) {
			r->rc = -1000; /* impossible: flagged below */
			return;
		}
		at += (size_t)rc;
	}
	(void)len;
	r->rc = (long)(at + c.held);
	r->done = c.done;
}

static void chunk_compare(const struct fixture *fx, const char *how,
			  const struct chunk_run *want,
			  const struct chunk_run *got)
{
	if (got->sink.outside)
		fixture_fail(fx, "%s: callback data outside the buffer", how);
	if (got->rc != want->rc || got->done != want->done ||
	    got->sink.len != want->sink.len ||
	    memcmp(got->sink.data, want->sink.data, got->sink.len) != 0)
		fixture_fail(fx,
			     "%s: rc %ld done %d payload %zu bytes; "
			     "whole gave rc %ld done %d payload %zu bytes",
			     how, got->rc, got->done, got->sink.len, want->rc,
			     want->done, want->sink.len);
}

/* Held runs: the same verdict, and the same trailers as the whole. */
static void chunk_compare_held(const struct fixture *fx, const char *how,
			       const struct chunk_run *plain,
			       const struct chunk_run *held_whole,
			       const struct chunk_run *got)
{
	chunk_compare(fx, how, plain, got);
	if (strcmp(got->sink.trailers.s, held_whole->sink.trailers.s) != 0)
		fixture_fail(fx, "%s: trailers differ from the whole run", how);
}

/* Encode payload canonically, in chunks of at most step bytes. */
static size_t chunk_encode(const char *payload, size_t len, size_t step,
			   const char *trailers, char *out)
{
	size_t o = 0;

	for (size_t at = 0; at < len; at += step) {
		size_t n = len - at < step ? len - at : step;

		o += http_chunk_head(n, out + o);
		memcpy(out + o, payload + at, n);
		o += n;
		memcpy(out + o, HTTP_CHUNK_DATA_END, HTTP_CHUNK_DATA_END_LEN);
		o += HTTP_CHUNK_DATA_END_LEN;
	}
	if (trailers[0] == '\0') {
		memcpy(out + o, HTTP_CHUNK_LAST, HTTP_CHUNK_LAST_LEN);
		return o + HTTP_CHUNK_LAST_LEN;
	}
	memcpy(out + o, "0\r\n", 3);
	o += 3;
	for (const char *t = trailers; *t; t++) {
		if (*t == '\n')
			out[o++] = '\r';
		out[o++] = *t;
	}
	memcpy(out + o, "\r\n", 2);
	return o + 2;
}

/*
 * A body that scanned well, framed again by the encoder (as the proxy
 * does), scans to the same payload and the same trailers.
 */
static void check_reencoded(const struct fixture *fx,
			    const struct chunk_run *held)
{
	static const size_t steps[] = {1, 7, VAL_MAX};
	static char out[8 * VAL_MAX];
	struct chunk_run *r = malloc(sizeof(*r));

	assert_non_null(r);
	for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
		size_t n = chunk_encode(held->sink.data, held->sink.len,
					steps[k], held->sink.trailers.s, out);

		chunk_feed_held(out, n, &n, 1, r);
		if (r->rc != (long)n || !r->done ||
		    r->sink.len != held->sink.len ||
		    memcmp(r->sink.data, held->sink.data, r->sink.len) != 0 ||
		    strcmp(r->sink.trailers.s, held->sink.trailers.s) != 0)
			fixture_fail(fx,
				     "re-encoded in %zu-byte chunks: "
				     "rc %ld done %d",
				     steps[k], r->rc, r->done);
	}
	free(r);
}

static void check_chunk_expectations(const struct fixture *fx,
				     const struct chunk_run *r,
				     const struct chunk_run *held)
{
	const char *p = fx->expect;
	enum verdict verdict;
	int code = 0;
	char key[128];
	struct val want, got, t1, t2;
	bool hv;

	if (!expect_verdict(fx, &p, &verdict, &code))
		return;
	if (verdict == V_ERROR) {
		if (r->rc != code)
			fixture_fail(fx, "want %s, got %s", error_name(code),
				     error_name(r->rc));
		return;
	}
	if (r->rc < 0) {
		fixture_fail(fx, "want ok, got %s", error_name(r->rc));
		return;
	}
	if (verdict == V_INCOMPLETE && (r->done || (size_t)r->rc != fx->len))
		fixture_fail(fx, "want incomplete (all consumed, not done)");
	while (next_token(&p, key, sizeof(key), &want, &hv)) {
		if (strcmp(key, "done") == 0)
			val_fmt(&got, "%d", r->done);
		else if (strcmp(key, "payload") == 0)
			val_set(&got, r->sink.data, r->sink.len);
		else if (strcmp(key, "consumed") == 0)
			val_fmt(&got, "%ld", r->rc);
		else if (strcmp(key, "rest") == 0)
			val_fmt(&got, "%zu", fx->len - (size_t)r->rc);
		else if (strcmp(key, "trailers") == 0)
			got = held->sink.trailers;
		else {
			fixture_fail(fx, "unknown expectation key '%s'", key);
			continue;
		}
		if (got.n != want.n || memcmp(got.s, want.s, got.n) != 0)
			fixture_fail(fx, "%s: want '%s', got '%s'", key,
				     show(want.s, want.n, &t1),
				     show(got.s, got.n, &t2));
	}
}

static void run_chunk_fixture(const struct fixture *fx)
{
	struct chunk_run *whole = malloc(sizeof(*whole));
	struct chunk_run *held = malloc(sizeof(*held));
	struct chunk_run *other = malloc(sizeof(*other));
	size_t *ends = malloc((fx->len + 1) * sizeof(*ends));
	size_t nends = fx->len ? fx->len : 1;
	char how[64];

	assert_non_null(whole);
	assert_non_null(held);
	assert_non_null(other);
	assert_non_null(ends);
	ends[0] = fx->len;
	chunk_feed(fx->msg, fx->len, ends, 1, whole);
	chunk_feed_held(fx->msg, fx->len, ends, 1, held);
	check_chunk_expectations(fx, whole, held);
	chunk_compare(fx, "whole, trailers reported", whole, held);
	if (whole->done)
		check_reencoded(fx, held);

	for (size_t k = 0; k < fx->len; k++)
		ends[k] = k + 1;
	chunk_feed(fx->msg, fx->len, ends, nends, other);
	chunk_compare(fx, "byte by byte", whole, other);
	chunk_feed_held(fx->msg, fx->len, ends, nends, other);
	chunk_compare_held(fx, "byte by byte, held", whole, held, other);

	for (size_t k = 0; k <= fx->len; k++) {
		size_t two[2] = {k, fx->len};

		chunk_feed(fx->msg, fx->len, two, 2, other);
		snprintf(how, sizeof(how), "split at %zu", k);
		chunk_compare(fx, how, whole, other);
		chunk_feed_held(fx->msg, fx->len, two, 2, other);
		snprintf(how, sizeof(how), "split at %zu, held", k);
		chunk_compare_held(fx, how, whole, held, other);
	}
	free(ends);
	free(other);
	free(held);
	free(whole);
}

static void test_chunked_fixtures(void **state)
{
	char **names;
	size_t n;

	(void)state;
	n = list_dir(FIXTURES "/chunked", ".http", &names);
	failures = 0;
	for (size_t i = 0; i < n; i++) {
		struct fixture fx;

		if (fixture_load(&fx, names[i]))
			run_chunk_fixture(&fx);
		fixture_free(&fx);
	}
	print_message("%zu fixtures in %s\n", n, FIXTURES "/chunked");
	free_names(names, n);
	assert_int_equal(failures, 0);
}

/* ---- URL tables ---- */

/* Each line: <input> ok key=value... | <input> error HTTP_E_TARGET */
static void run_url_table(const char *path, bool authority)
{
	size_t flen;
	char *file = read_all(path, &flen), *line, *next;
	size_t cases = 0;

	if (file == NULL)
		fail_msg("cannot read %s (run from the repository root)", path);
	failures = 0;
	for (line = file; line; line = next) {
		struct fixture fx;
		struct http_url url;
		const char *p = line;
		char key[128];
		struct val input, want, got, t1, t2;
		enum verdict verdict;
		int code = 0, rc;
		bool hv;
		char *cr;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		cr = strchr(line, '\r');
		if (cr)
			*cr = '\0';
		while (*p == ' ')
			p++;
		if (*p == '#' || *p == '\0')
			continue;
		memset(&fx, 0, sizeof(fx));
		snprintf(fx.path, sizeof(fx.path), "%s: %s", path, p);
		/* The input is the first word, with escapes. */
		{
			const char *e = p;
			long n;

			while (*e && *e != ' ' && *e != '\t')
				e++;
			n = unescape(p, (size_t)(e - p), input.s,
				     sizeof(input.s) - 1);
			if (n < 0) {
				fixture_fail(&fx, "bad escape");
				continue;
			}
			input.n = (size_t)n;
			p = e;
		}
		cases++;
		if (!expect_verdict(&fx, &p, &verdict, &code))
			continue;
		{
			char *g = at_guard(input.s, input.n);

			rc = authority ? http_parse_authority(g, input.n, &url)
				       : http_parse_url(g, input.n, &url);
		}
		if (verdict != V_OK) {
			if (rc != code)
				fixture_fail(&fx, "want %s, got %s",
					     error_name(code), error_name(rc));
			continue;
		}
		if (rc != 0) {
			fixture_fail(&fx, "want ok, got %s", error_name(rc));
			continue;
		}
		while (next_token(&p, key, sizeof(key), &want, &hv)) {
			if (!url_value(&url, key, &got)) {
				fixture_fail(&fx, "unknown key '%s'", key);
				continue;
			}
			if (got.n != want.n || memcmp(got.s, want.s, got.n))
				fixture_fail(&fx, "%s: want '%s', got '%s'",
					     key, show(want.s, want.n, &t1),
					     show(got.s, got.n, &t2));
		}
	}
	free(file);
	print_message("%zu cases in %s\n", cases, path);
	assert_true(cases > 0);
	assert_int_equal(failures, 0);
}

static void test_url_table(void **state)
{
	(void)state;
	run_url_table(FIXTURES "/urls/absolute.txt", false);
}

static void test_authority_table(void **state)
{
	(void)state;
	run_url_table(FIXTURES "/urls/authority.txt", true);
}

/* ---- generated cases: limits ---- */

static int parse_req(const char *buf, size_t len, struct http_request *r,
		     struct http_header *h, size_t cap,
		     const struct http_limits *lim)
{
	memset(r, 0, sizeof(*r));
	r->headers = h;
	r->num_headers = cap;
	return http_parse_request(at_guard(buf, len), len, r, lim);
}

/* "GET /aaaa... HTTP/1.1": a request line of exactly line_len bytes. */
static size_t make_request_line(char *buf, size_t line_len)
{
	const char *pre = "GET /", *post = " HTTP/1.1";
	size_t n = 0, fill = line_len - strlen(pre) - strlen(post);

	memcpy(buf, pre, strlen(pre));
	n += strlen(pre);
	memset(buf + n, 'a', fill);
	n += fill;
	memcpy(buf + n, post, strlen(post));
	return n + strlen(post);
}

static void test_request_line_limit(void **state)
{
	static char buf[200 * 1024];
	struct http_header h[HDR_CAP];
	struct http_request r;
	const char *rest = "\r\nHost: a\r\n\r\n";
	size_t n;

	(void)state;
	/* Exactly the limit is fine. */
	n = make_request_line(buf, PARSE_DEFAULT_MAX_REQUEST_LINE);
	memcpy(buf + n, rest, strlen(rest));
	assert_int_equal(parse_req(buf, n + strlen(rest), &r, h, HDR_CAP, NULL),
			 (int)(n + strlen(rest)));
	/* Without its end it is just incomplete, CR included. */
	assert_int_equal(parse_req(buf, n, &r, h, HDR_CAP, NULL),
			 HTTP_INCOMPLETE);
	assert_int_equal(parse_req(buf, n + 1, &r, h, HDR_CAP, NULL),
			 HTTP_INCOMPLETE);
	/* One byte more is 414, whether or not the line has ended. */
	n = make_request_line(buf, PARSE_DEFAULT_MAX_REQUEST_LINE + 1);
	assert_int_equal(parse_req(buf, n - 1, &r, h, HDR_CAP, NULL),
			 HTTP_INCOMPLETE);
	assert_int_equal(parse_req(buf, n, &r, h, HDR_CAP, NULL),
			 HTTP_E_URI_TOO_LONG);
	memcpy(buf + n, rest, strlen(rest));
	assert_int_equal(parse_req(buf, n + strlen(rest), &r, h, HDR_CAP, NULL),
			 HTTP_E_URI_TOO_LONG);
	/* A 100 KiB line that never ends: 414, not incomplete forever. */
	memset(buf, 'a', 100 * 1024);
	memcpy(buf, "GET /", 5);
	assert_int_equal(parse_req(buf, 100 * 1024, &r, h, HDR_CAP, NULL),
			 HTTP_E_URI_TOO_LONG);
	/* Leading empty lines do not count against the line. */
	{
		struct http_limits lim = {.max_request_line = 14};
		const char *m = "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";

		assert_int_equal(parse_req(m, strlen(m), &r, h, HDR_CAP, &lim),
				 (int)strlen(m));
		assert_int_equal(r.method.ptr[0], 'G');
		lim.max_request_line = 13;
		assert_int_equal(parse_req(m, strlen(m), &r, h, HDR_CAP, &lim),
				 HTTP_E_URI_TOO_LONG);
	}
}

/* A head of exactly head_len bytes made of filler fields. */
static size_t make_head(char *buf, size_t head_len, size_t *fields)
{
	const char *start = "GET / HTTP/1.1\r\nHost: a\r\n";
	size_t n = strlen(start), left;

	memcpy(buf, start, n);
	*fields = 1;
	left = head_len - n - 2;
	while (left > 0) {
		/* "X: " + value + CRLF, at least 6 bytes, at most 1000. */
		size_t take = left > 1000 ? 1000 : left;

		if (left - take > 0 && left - take < 6)
			take -= 6;
		memcpy(buf + n, "X: ", 3);
		memset(buf + n + 3, 'v', take - 5);
		memcpy(buf + n + take - 2, "\r\n", 2);
		n += take;
		left -= take;
		(*fields)++;
	}
	memcpy(buf + n, "\r\n", 2);
	return n + 2;
}

static void test_head_limit(void **state)
{
	static char buf[300 * 1024];
	struct http_header h[HDR_CAP];
	struct http_request r;
	size_t n, fields;
	struct http_limits lim = {.max_headers = HDR_CAP};

	(void)state;
	n = make_head(buf, PARSE_DEFAULT_MAX_HEAD, &fields);
	assert_int_equal(n, PARSE_DEFAULT_MAX_HEAD);
	assert_int_equal(parse_req(buf, n, &r, h, HDR_CAP, &lim), (int)n);
	assert_int_equal(r.num_headers, fields);
	/* Trailing bytes after the head do not matter. */
	buf[n] = 'x';
	assert_int_equal(parse_req(buf, n + 1, &r, h, HDR_CAP, &lim), (int)n);

	n = make_head(buf, PARSE_DEFAULT_MAX_HEAD + 1, &fields);
	assert_int_equal(parse_req(buf, n - 1, &r, h, HDR_CAP, &lim),
			 HTTP_INCOMPLETE);
	assert_int_equal(parse_req(buf, n, &r, h, HDR_CAP, &lim),
			 HTTP_E_HEAD_TOO_LARGE);

	/* 200 KiB of one endless field: 431 well before the end. */
	memset(buf, 'v', 200 * 1024);
	memcpy(buf, "GET / HTTP/1.1\r\nX: ", 19);
	assert_int_equal(parse_req(buf, 200 * 1024, &r, h, HDR_CAP, NULL),
			 HTTP_E_HEAD_TOO_LARGE);
	/* A custom, small limit. */
	lim.max_head = 32;
	{
		const char *m = "GET / HTTP/1.1\r\nHost: abc\r\n\r\n";

		assert_int_equal(strlen(m), 29);
		assert_int_equal(parse_req(m, 29, &r, h, HDR_CAP, &lim), 29);
		lim.max_head = 28;
		assert_int_equal(parse_req(m, 29, &r, h, HDR_CAP, &lim),
				 HTTP_E_HEAD_TOO_LARGE);
		assert_int_equal(parse_req(m, 28, &r, h, HDR_CAP, &lim),
				 HTTP_INCOMPLETE);
	}
}

/* buf holds 64 KiB: far more than count (at most a few hundred) needs. */
static size_t make_fields(char *buf, size_t count)
{
	const size_t cap = 64 * 1024;
	size_t n = (size_t)snprintf(buf, cap, "GET / HTTP/1.1\r\nHost: a\r\n");

	for (size_t i = 1; i < count; i++)
		n += (size_t)snprintf(buf + n, cap - n, "X-%zu: %zu\r\n", i, i);
	n += (size_t)snprintf(buf + n, cap - n, "\r\n");
	return n;
}

static void test_header_count_limit(void **state)
{
	static char buf[64 * 1024];
	struct http_header h[HDR_CAP];
	struct http_request r;
	struct http_limits lim = {.max_headers = 3};
	size_t n;

	(void)state;
	n = make_fields(buf, PARSE_DEFAULT_MAX_HEADERS);
	assert_int_equal(parse_req(buf, n, &r, h, HDR_CAP, NULL), (int)n);
	assert_int_equal(r.num_headers, PARSE_DEFAULT_MAX_HEADERS);
	n = make_fields(buf, PARSE_DEFAULT_MAX_HEADERS + 1);
	assert_int_equal(parse_req(buf, n, &r, h, HDR_CAP, NULL),
			 HTTP_E_TOO_MANY_HEADERS);
	/* Decided at the first byte of the field that is one too many. */
	{
		const char *last = strstr(buf, "X-100:");

		assert_non_null(last);
		assert_int_equal(parse_req(buf, (size_t)(last - buf), &r, h,
					   HDR_CAP, NULL),
				 HTTP_INCOMPLETE);
		assert_int_equal(parse_req(buf, (size_t)(last - buf) + 1, &r, h,
					   HDR_CAP, NULL),
				 HTTP_E_TOO_MANY_HEADERS);
	}
	n = make_fields(buf, 3);
	assert_int_equal(parse_req(buf, n, &r, h, HDR_CAP, &lim), (int)n);
	n = make_fields(buf, 4);
	assert_int_equal(parse_req(buf, n, &r, h, HDR_CAP, &lim),
			 HTTP_E_TOO_MANY_HEADERS);
	/* A smaller array than the limit is the limit. */
	n = make_fields(buf, 3);
	assert_int_equal(parse_req(buf, n, &r, h, 2, NULL),
			 HTTP_E_TOO_MANY_HEADERS);
	assert_int_equal(parse_req(buf, n, &r, NULL, 0, NULL),
			 HTTP_E_TOO_MANY_HEADERS);
	/* HTTP/1.0 needs no Host, so no array at all is fine there. */
	assert_int_equal(
		parse_req("GET / HTTP/1.0\r\n\r\n", 18, &r, NULL, 0, NULL), 18);
}

static void test_incomplete_leaves_request_alone(void **state)
{
	const char *m = "GET / HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n";
	struct http_header h[4];
	struct http_request r;

	(void)state;
	memset(&r, 0, sizeof(r));
	r.headers = h;
	r.num_headers = 4;
	/* A caller re-calls with the same struct as bytes arrive. */
	for (size_t k = 0; k < strlen(m); k++) {
		assert_int_equal(http_parse_request(m, k, &r, NULL),
				 HTTP_INCOMPLETE);
		assert_int_equal(r.num_headers, 4);
		assert_ptr_equal(r.headers, h);
	}
	assert_int_equal(http_parse_request(m, strlen(m), &r, NULL),
			 (int)strlen(m));
	assert_int_equal(r.num_headers, 2);
	assert_ptr_equal(r.headers, h);
}

/* ---- resumed head parsing: linear work, early errors ---- */

#define BIG_HEAD   (64 * 1024)
#define BIG_FIELDS 4096

/*
 * A head of exactly total bytes: start, then 32-byte fields
 * ("X-00001: vvv...\r\n"), one last field to fill the gap, the empty line.
 */
static size_t make_big_head(char *buf, const char *start, size_t total,
			    size_t *fields)
{
	size_t n = strlen(start), left;

	memcpy(buf, start, n);
	*fields = 2; /* the one in start, and X-last */
	for (unsigned f = 1; total - 2 - n > 64; f++, (*fields)++) {
		snprintf(buf + n, 10, "X-%05u: ", f % 100000);
		memset(buf + n + 9, 'v', 21);
		memcpy(buf + n + 30, "\r\n", 2);
		n += 32;
	}
	left = total - 2 - n;
	memcpy(buf + n, "X-last: ", 8);
	memset(buf + n + 8, 'v', left - 10);
	memcpy(buf + n + left - 2, "\r\n\r\n", 4);
	return n + left + 2;
}

/* Feed head[0..k) for k = 1..len through one state; returns the state. */
static void trickle(const char *head, size_t len, bool request,
		    struct http_parse_state *st, struct outcome *o)
{
	static const struct http_limits lim = {.max_headers = BIG_FIELDS};
	static struct http_header h[BIG_FIELDS];
	struct http_slice get = {"GET", 3};

	memset(st, 0, sizeof(*st));
	for (size_t k = 1; k <= len; k++) {
		memset(o, 0, sizeof(*o));
		o->req.headers = o->res.headers = h;
		o->req.num_headers = o->res.num_headers = BIG_FIELDS;
		o->rc = request ? http_parse_request_resume(head, k, &o->req,
							    &lim, st)
				: http_parse_response_resume(head, k, &o->res,
							     get, &lim, st);
		if (k < len && o->rc != HTTP_INCOMPLETE)
			fail_msg("prefix %zu of %zu: rc %d", k, len, o->rc);
	}
}

static void check_linear(const char *start, bool request)
{
	static char buf[BIG_HEAD];
	struct http_parse_state st;
	struct outcome *o = malloc(sizeof(*o));
	size_t fields, n = make_big_head(buf, start, BIG_HEAD, &fields);
	char *head = at_guard(buf, n);

	assert_non_null(o);
	assert_int_equal(n, BIG_HEAD);
	trickle(head, n, request, &st, o);
	assert_int_equal(o->rc, (int)n);
	assert_int_equal(request ? o->req.num_headers : o->res.num_headers,
			 fields);
	/* Every byte was looked at, and none more than a few times. */
	print_message("%s: %zu bytes, %zu examined one byte per call\n",
		      request ? "request" : "response", n, st.scanned_total);
	assert_true(st.scanned_total >= n);
	assert_true(st.scanned_total <= 4 * n);
	free(o);
}

static void test_resume_request_is_linear(void **state)
{
	(void)state;
	check_linear("GET http://a/ HTTP/1.1\r\nHost: a\r\n", true);
}

static void test_resume_response_is_linear(void **state)
{
	(void)state;
	check_linear("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n", false);
}

/*
 * The counter does measure the work: a fresh state for every prefix (the
 * old way, a whole reparse after each recv) examines quadratically many.
 */
static void test_resume_counter_sees_reparsing(void **state)
{
	static char buf[4096];
	struct http_header h[HDR_CAP];
	struct http_request r;
	size_t n, fields, total = 0;

	(void)state;
	n = make_big_head(buf, "GET / HTTP/1.1\r\nHost: a\r\n", 4096, &fields);
	for (size_t k = 1; k <= n; k++) {
		struct http_parse_state st;
		struct http_limits lim = {.max_headers = HDR_CAP};

		assert_true(fields <= HDR_CAP);

		memset(&st, 0, sizeof(st));
		r.headers = h;
		r.num_headers = HDR_CAP;
		http_parse_request_resume(buf, k, &r, &lim, &st);
		total += st.scanned_total;
	}
	assert_true(total > 100 * n);
}

/* Errors are not put off until the blank line arrives. */
static void test_resume_errors_come_early(void **state)
{
	static char buf[BIG_HEAD + 2];
	struct http_parse_state st;
	struct outcome *o = malloc(sizeof(*o));
	struct http_header h[4];
	struct http_request r;

	(void)state;
	assert_non_null(o);
	/* A head with no end: 431 at the first byte past max_head. */
	memset(buf, 'v', sizeof(buf));
	memcpy(buf, "GET / HTTP/1.1\r\nX: ", 19);
	memset(&st, 0, sizeof(st));
	for (size_t k = 1; k <= BIG_HEAD; k++) {
		r.headers = h;
		r.num_headers = 4;
		assert_int_equal(
			http_parse_request_resume(buf, k, &r, NULL, &st),
			HTTP_INCOMPLETE);
	}
	assert_int_equal(
		http_parse_request_resume(buf, BIG_HEAD + 1, &r, NULL, &st),
		HTTP_E_HEAD_TOO_LARGE);
	assert_true(st.scanned_total <= BIG_HEAD + 16); /* + the target */
	/* Sticky: the same verdict however much more arrives. */
	assert_int_equal(
		http_parse_request_resume(buf, BIG_HEAD + 2, &r, NULL, &st),
		HTTP_E_HEAD_TOO_LARGE);
	/* A request line over the limit: 414 at its first extra byte. */
	memcpy(buf, "GET /", 5);
	memset(buf + 5, 'a', 9000);
	memset(&st, 0, sizeof(st));
	for (size_t k = 1; k <= PARSE_DEFAULT_MAX_REQUEST_LINE; k++)
		assert_int_equal(
			http_parse_request_resume(buf, k, &r, NULL, &st),
			HTTP_INCOMPLETE);
	assert_int_equal(
		http_parse_request_resume(
			buf, PARSE_DEFAULT_MAX_REQUEST_LINE + 1, &r, NULL, &st),
		HTTP_E_URI_TOO_LONG);
	/* A bad method at its first byte. */
	memset(&st, 0, sizeof(st));
	assert_int_equal(http_parse_request_resume("@", 1, &r, NULL, &st),
			 HTTP_E_METHOD);
	free(o);
}

/* A state handed a shorter buffer than it has seen starts over. */
static void test_resume_shorter_buffer_restarts(void **state)
{
	const char *a = "GET / HTTP/1.1\r\nHost: a\r\nX-Long: 1";
	const char *b = "GET / HTTP/1.1\r\nHost: b\r\n\r\n";
	struct http_parse_state st;
	struct http_header h[4];
	struct http_request r = {.headers = h, .num_headers = 4};

	(void)state;
	memset(&st, 0, sizeof(st));
	assert_int_equal(http_parse_request_resume(a, strlen(a), &r, NULL, &st),
			 HTTP_INCOMPLETE);
	assert_int_equal(http_parse_request_resume(b, 3, &r, NULL, &st),
			 HTTP_INCOMPLETE);
	assert_int_equal(http_parse_request_resume(b, strlen(b), &r, NULL, &st),
			 (int)strlen(b));
	assert_int_equal(r.num_headers, 1);
	assert_int_equal(r.headers[0].value.ptr[0], 'b');
}

/* ---- chunked: generated cases ---- */

static ssize_t scan_str(struct http_chunked *c, const char *s)
{
	return http_chunked_scan(c, at_guard(s, strlen(s)), strlen(s), NULL,
				 NULL);
}

static void test_chunk_size_bounds(void **state)
{
	struct http_chunked c;

	(void)state;
	memset(&c, 0, sizeof(c));
	assert_int_equal(scan_str(&c, "7fffffffffffffff\r\n"), 18);
	assert_true(c.remaining == (uint64_t)INT64_MAX);
	memset(&c, 0, sizeof(c));
	assert_int_equal(scan_str(&c, "8000000000000000\r\n"),
			 HTTP_E_CHUNK_SIZE);
	memset(&c, 0, sizeof(c));
	assert_int_equal(scan_str(&c, "ffffffffffffffffff\r\n"),
			 HTTP_E_CHUNK_SIZE);
	/* Sixteen digits at most, leading zeros included. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(scan_str(&c, "0000000000000005\r\n"), 18);
	assert_int_equal(c.remaining, 5);
	memset(&c, 0, sizeof(c));
	assert_int_equal(scan_str(&c, "00000000000000005\r\n"),
			 HTTP_E_CHUNK_SIZE);
	memset(&c, 0, sizeof(c));
	assert_int_equal(scan_str(&c, "00000000000000000000000000000005\r\n"),
			 HTTP_E_CHUNK_SIZE);
	/* Decided at the seventeenth digit, not at the line end. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(scan_str(&c, "0000000000000000"), 16);
	assert_int_equal(scan_str(&c, "0"), HTTP_E_CHUNK_SIZE);
}

static void test_chunk_line_limit(void **state)
{
	static char buf[8192];
	struct http_chunked c;
	size_t n;

	(void)state;
	/* "1;" + name padding: a size line of exactly 4096 bytes. */
	memcpy(buf, "1;", 2);
	memset(buf + 2, 'e', PARSE_CHUNK_LINE_MAX - 2);
	n = PARSE_CHUNK_LINE_MAX;
	memcpy(buf + n, "\r\nx\r\n0\r\n\r\n", 10);
	memset(&c, 0, sizeof(c));
	assert_int_equal(http_chunked_scan(&c, at_guard(buf, n + 10), n + 10,
					   NULL, NULL),
			 (ssize_t)(n + 10));
	assert_true(c.done);
	/* One byte more: too large, decided before the line ends. */
	buf[n] = 'e';
	memset(&c, 0, sizeof(c));
	assert_int_equal(http_chunked_scan(&c, at_guard(buf, n), n, NULL, NULL),
			 (ssize_t)n);
	assert_int_equal(
		http_chunked_scan(&c, at_guard(buf + n, 1), 1, NULL, NULL),
		HTTP_E_CHUNK_TOO_LARGE);
	/* Errors are sticky. */
	assert_int_equal(http_chunked_scan(&c, "0\r\n\r\n", 5, NULL, NULL),
			 HTTP_E_CHUNK_TOO_LARGE);
}

static void test_chunk_trailer_limit(void **state)
{
	static char buf[80 * 1024];
	struct http_chunked c;
	size_t n = 0, limit = PARSE_CHUNK_TRAILER_MAX;

	(void)state;
	memcpy(buf, "0\r\n", 3);
	n = 3;
	/* Trailer fields of 1000 bytes each, filling exactly the limit. */
	while (limit - (n - 3) > 2) {
		size_t take = limit - (n - 3) - 2;

		if (take > 1000)
			take = 1000;
		if (take < 6) {
			/* Let the previous field absorb the remainder. */
			n -= 2;
			memset(buf + n, 'v', take);
			n += take;
			memcpy(buf + n, "\r\n", 2);
			n += 2;
			break;
		}
		memcpy(buf + n, "T: ", 3);
		memset(buf + n + 3, 'v', take - 5);
		memcpy(buf + n + take - 2, "\r\n", 2);
		n += take;
	}
	memcpy(buf + n, "\r\n", 2);
	n += 2;
	assert_int_equal(n - 3, limit);
	memset(&c, 0, sizeof(c));
	assert_int_equal(http_chunked_scan(&c, at_guard(buf, n), n, NULL, NULL),
			 (ssize_t)n);
	assert_true(c.done);
	/* One more byte in a field: too large. */
	memmove(buf + 6, buf + 5, n - 5);
	buf[5] = 'v';
	n++;
	memset(&c, 0, sizeof(c));
	assert_int_equal(http_chunked_scan(&c, at_guard(buf, n), n, NULL, NULL),
			 HTTP_E_CHUNK_TOO_LARGE);
}

/* The trailer limit holds when lines are handed back and presented again:
 * held bytes are not counted twice. */
static void test_chunk_trailer_limit_held(void **state)
{
	static char buf[80 * 1024];
	struct chunk_run *r = malloc(sizeof(*r));
	size_t *ends = malloc(sizeof(buf) * sizeof(*ends));
	size_t n = 3;

	(void)state;
	assert_non_null(r);
	assert_non_null(ends);
	memcpy(buf, "0\r\n", 3);
	/* One 65532-byte field line, then the empty line: exactly 65536. */
	memcpy(buf + n, "T: ", 3);
	memset(buf + n + 3, 'v', PARSE_CHUNK_TRAILER_MAX - 2 - 5);
	n += PARSE_CHUNK_TRAILER_MAX - 2 - 2;
	memcpy(buf + n, "\r\n\r\n", 4);
	n += 4;
	for (size_t k = 0; k < n; k++)
		ends[k] = k + 1;
	chunk_feed_held(buf, n, ends, n, r);
	assert_int_equal(r->rc, (long)n);
	assert_true(r->done);
	/* Reported once (the test's sink clips it to its own size). */
	assert_memory_equal(r->sink.trailers.s, "T: vvv", 6);
	assert_false(r->sink.outside);
	memmove(buf + 6, buf + 5, n - 5);
	n++;
	ends[n - 1] = n;
	chunk_feed_held(buf, n, ends, n, r);
	assert_int_equal(r->rc, HTTP_E_CHUNK_TOO_LARGE);
	free(ends);
	free(r);
}

/* Hand-back in detail: what is returned, held, and presented again. */
static void test_chunk_trailer_handback(void **state)
{
	struct http_chunked c;
	struct sink *s = calloc(1, sizeof(*s));
	const char *a = "0\r\nX-A: 1\r\nX-B: t";
	const char *b = "X-B: two\r\n\r\nNEXT";

	(void)state;
	assert_non_null(s);
	memset(&c, 0, sizeof(c));
	c.on_trailer = sink_trailer;
	s->lo = a;
	s->hi = a + strlen(a);
	/* "0\r\nX-A: 1\r\n" consumed, "X-B: t" handed back. */
	assert_int_equal(http_chunked_scan(&c, a, strlen(a), NULL, s), 11);
	assert_int_equal(c.held, 6);
	assert_false(c.done);
	assert_string_equal(s->trailers.s, "X-A: 1\n");
	/* Presented again with fewer bytes than held: nothing to do. */
	assert_int_equal(http_chunked_scan(&c, b, 3, NULL, s), 0);
	assert_int_equal(c.held, 6);
	s->lo = b;
	s->hi = b + strlen(b);
	assert_int_equal(http_chunked_scan(&c, b, strlen(b), NULL, s), 12);
	assert_true(c.done);
	assert_false(s->outside);
	assert_string_equal(s->trailers.s, "X-A: 1\nX-B: two\n");
	free(s);
}

static void test_chunk_head(void **state)
{
	static const struct {
		uint64_t size;
		const char *head;
	} cases[] = {
		{1, "1\r\n"},
		{0xa, "a\r\n"},
		{16, "10\r\n"},
		{0x1a2b, "1a2b\r\n"},
		{65536, "10000\r\n"},
		{(uint64_t)INT64_MAX, "7fffffffffffffff\r\n"},
		{UINT64_MAX, "ffffffffffffffff\r\n"},
	};
	char out[HTTP_CHUNK_HEAD_MAX + 1];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n;

		memset(out, '#', sizeof(out));
		n = http_chunk_head(cases[i].size, out);
		assert_int_equal(n, strlen(cases[i].head));
		assert_memory_equal(out, cases[i].head, n);
		assert_int_equal(out[n], '#'); /* no NUL, nothing past it */
	}
	/* Size 0 writes nothing: an empty run never ends a body. */
	memset(out, '#', sizeof(out));
	assert_int_equal(http_chunk_head(0, out), 0);
	assert_int_equal(out[0], '#');
	assert_int_equal(HTTP_CHUNK_LAST_LEN, strlen(HTTP_CHUNK_LAST));
	assert_int_equal(HTTP_CHUNK_DATA_END_LEN, strlen(HTTP_CHUNK_DATA_END));
	/* What it writes, the scanner reads back. */
	{
		struct http_chunked c;
		char msg[64];
		size_t n = http_chunk_head(3, msg);

		memcpy(msg + n, "abc" HTTP_CHUNK_DATA_END HTTP_CHUNK_LAST, 10);
		memset(&c, 0, sizeof(c));
		assert_int_equal(http_chunked_scan(&c, msg, n + 10, NULL, NULL),
				 (ssize_t)(n + 10));
		assert_true(c.done);
	}
}

static void test_chunk_done_consumes_nothing_more(void **state)
{
	struct http_chunked c;
	const char *m = "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n";

	(void)state;
	memset(&c, 0, sizeof(c));
	assert_int_equal(http_chunked_scan(&c, m, strlen(m), NULL, NULL), 13);
	assert_true(c.done);
	assert_int_equal(http_chunked_scan(&c, m + 13, 5, NULL, NULL), 0);
	assert_int_equal(http_chunked_scan(&c, m, 0, NULL, NULL), 0);
}

/* ---- header helpers ---- */

static struct http_slice sl(const char *s)
{
	struct http_slice r = {s, strlen(s)};

	return r;
}

static void test_name_is(void **state)
{
	struct http_slice none = {NULL, 0};

	(void)state;
	assert_true(http_name_is(sl("Content-Length"), "content-length"));
	assert_true(http_name_is(sl("HOST"), "host"));
	assert_false(http_name_is(sl("Hostx"), "host"));
	assert_false(http_name_is(sl("Hos"), "host"));
	assert_false(http_name_is(none, "host"));
	assert_true(http_name_is(sl(""), ""));
}

static void test_find_header(void **state)
{
	struct http_header h[] = {
		{sl("Host"), sl("a")},
		{sl("Via"), sl("1")},
		{sl("via"), sl("2")},
		{sl("X"), sl("3")},
	};

	(void)state;
	assert_int_equal(http_find_header(h, 4, "VIA", 0), 1);
	assert_int_equal(http_find_header(h, 4, "via", 2), 2);
	assert_int_equal(http_find_header(h, 4, "via", 3), -1);
	assert_int_equal(http_find_header(h, 4, "missing", 0), -1);
	assert_int_equal(http_find_header(h, 4, "host", 5), -1);
	assert_int_equal(http_find_header(NULL, 0, "host", 0), -1);
	/* n bounds the search even when the array goes on. */
	assert_int_equal(http_find_header(h, 3, "x", 0), -1);
}

static void test_list_has_token(void **state)
{
	struct http_slice none = {NULL, 0};

	(void)state;
	assert_true(http_list_has_token(sl("keep-alive, Upgrade"), "upgrade"));
	assert_true(http_list_has_token(sl("close"), "close"));
	assert_true(http_list_has_token(sl(" ,, close ,"), "close"));
	assert_true(http_list_has_token(sl("a,\tCLOSE\t"), "close"));
	assert_false(http_list_has_token(sl("closed"), "close"));
	assert_false(http_list_has_token(sl("x-close, clos"), "close"));
	assert_false(http_list_has_token(sl(""), "close"));
	assert_false(http_list_has_token(none, "close"));
	assert_false(http_list_has_token(sl("a, , b"), ""));
}

static void test_hop_by_hop(void **state)
{
	struct http_header h[] = {
		{sl("Connection"), sl("X-Secret, keep-alive")},
		{sl("connection"), sl("x-other")},
		{sl("X-Kept"), sl("1")},
	};
	const char *fixed[] = {"Connection",	    "Keep-Alive",
			       "Proxy-Connection",  "TE",
			       "Trailer",	    "Transfer-Encoding",
			       "Upgrade",	    "Proxy-Authorization",
			       "Proxy-Authenticate"};

	(void)state;
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		assert_true(http_is_hop_by_hop(sl(fixed[i]), NULL, 0));
		assert_true(http_is_hop_by_hop(sl(fixed[i]), h, 3));
	}
	assert_true(http_is_hop_by_hop(sl("x-secret"), h, 3));
	assert_true(http_is_hop_by_hop(sl("X-Other"), h, 3));
	assert_false(http_is_hop_by_hop(sl("X-Kept"), h, 3));
	assert_false(http_is_hop_by_hop(sl("x-secret"), h, 0));
	assert_false(http_is_hop_by_hop(sl("Host"), h, 3));
	assert_false(http_is_hop_by_hop(sl("Content-Length"), h, 3));
	assert_false(http_is_hop_by_hop(sl("Trailers"), h, 3));
	assert_false(http_is_hop_by_hop(sl(""), h, 3));
}

/* ---- internals ---- */

static void test_content_length_values(void **state)
{
	static const struct {
		const char *v;
		int rc;
		uint64_t n;
	} cases[] = {
		{"0", 0, 0},
		{"42", 0, 42},
		{"007", 0, 7},
		{"5, 5", 0, 5},
		{"5,5,05", 0, 5},
		{"9223372036854775807", 0, 9223372036854775807ULL},
		{"9223372036854775808", HTTP_E_CONTENT_LENGTH, 0},
		{"18446744073709551616", HTTP_E_CONTENT_LENGTH, 0},
		{"5, 6", HTTP_E_DUPLICATE_CONTENT_LENGTH, 0},
		{"", HTTP_E_CONTENT_LENGTH, 0},
		{"+5", HTTP_E_CONTENT_LENGTH, 0},
		{"-1", HTTP_E_CONTENT_LENGTH, 0},
		{"5 5", HTTP_E_CONTENT_LENGTH, 0},
		{"5,", HTTP_E_CONTENT_LENGTH, 0},
		{"0x10", HTTP_E_CONTENT_LENGTH, 0},
		{"1e3", HTTP_E_CONTENT_LENGTH, 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool seen = false;
		uint64_t n = 0;
		int rc = parse_content_length(sl(cases[i].v), &seen, &n);

		if (rc != cases[i].rc || (rc == 0 && n != cases[i].n))
			fail_msg("'%s': rc %d n %llu", cases[i].v, rc,
				 (unsigned long long)n);
	}
}

static void test_ipv6_syntax(void **state)
{
	static const char *good[] = {
		"::",
		"::1",
		"1::",
		"1:2:3:4:5:6:7:8",
		"fe80::1",
		"::ffff:1.2.3.4",
		"1:2:3:4:5:6:1.2.3.4",
		"A:b:C::d",
		"1::2:3:4:5:6:7",
	};
	static const char *bad[] = {
		"",
		":",
		":1",
		"1:",
		"1:::2",
		"1::2::3",
		"12345::",
		"1:2:3:4:5:6:7:8:9",
		"1:2:3:4:5:6:7",
		"1::2:3:4:5:6:7:8",
		"g::1",
		"::1%eth0",
		"::1.2.3",
		"::1.2.3.256",
		"::01.2.3.4",
		"1.2.3.4",
		"::1.2.3.4:1",
		"[::1]",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!parse_ipv6_ok(good[i], strlen(good[i])))
			fail_msg("'%s' should be valid", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse_ipv6_ok(bad[i], strlen(bad[i])))
			fail_msg("'%s' should be invalid", bad[i]);
}

/* ---- error tables ---- */

static void test_error_status_and_reason(void **state)
{
	static const struct {
		int err, status;
	} st[] = {
		{HTTP_E_REQUEST_LINE, 400},
		{HTTP_E_METHOD, 400},
		{HTTP_E_TARGET, 400},
		{HTTP_E_VERSION, 400},
		{HTTP_E_VERSION_UNSUPPORTED, 505},
		{HTTP_E_URI_TOO_LONG, 414},
		{HTTP_E_HEAD_TOO_LARGE, 431},
		{HTTP_E_TOO_MANY_HEADERS, 431},
		{HTTP_E_HEADER_SYNTAX, 400},
		{HTTP_E_HEADER_VALUE, 400},
		{HTTP_E_SPACE_BEFORE_COLON, 400},
		{HTTP_E_OBS_FOLD, 400},
		{HTTP_E_BARE_CR, 400},
		{HTTP_E_CONTENT_LENGTH, 400},
		{HTTP_E_DUPLICATE_CONTENT_LENGTH, 400},
		{HTTP_E_LENGTH_AND_CHUNKED, 400},
		{HTTP_E_TE_NOT_CHUNKED_LAST, 400},
		{HTTP_E_TE_UNKNOWN, 501},
		{HTTP_E_HOST_MISSING, 400},
		{HTTP_E_HOST_DUPLICATE, 400},
		{HTTP_E_STATUS_LINE, 502},
		{HTTP_E_CHUNK_SIZE, 400},
		{HTTP_E_CHUNK_DATA, 400},
		{HTTP_E_CHUNK_TOO_LARGE, 400},
		{HTTP_E_CHUNK_BARE_LF, 400},
		{HTTP_E_TE_HTTP10, 400},
	};

	(void)state;
	assert_int_equal(sizeof(st) / sizeof(st[0]),
			 sizeof(error_names) / sizeof(error_names[0]) - 1);
	for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++) {
		const char *r = http_error_reason(st[i].err);

		assert_int_equal(http_error_status(st[i].err), st[i].status);
		assert_non_null(r);
		assert_true(strlen(r) > 3);
		assert_string_not_equal(r, "unknown error");
		for (const char *p = r; *p; p++)
			if (isupper((unsigned char)*p))
				fail_msg("reason '%s' is not lower-case", r);
		/* Reasons are distinct, so a log line names one error. */
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(r,
						http_error_reason(st[j].err));
	}
	assert_string_equal(http_error_reason(0), "unknown error");
	assert_string_equal(http_error_reason(-99), "unknown error");
	assert_string_equal(http_error_reason(12), "unknown error");
	assert_int_equal(http_error_status(-99), 500);
	assert_int_equal(http_error_status(HTTP_INCOMPLETE), 400);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_fixtures),
		cmocka_unit_test(test_response_fixtures),
		cmocka_unit_test(test_chunked_fixtures),
		cmocka_unit_test(test_url_table),
		cmocka_unit_test(test_authority_table),
		cmocka_unit_test(test_request_line_limit),
		cmocka_unit_test(test_head_limit),
		cmocka_unit_test(test_header_count_limit),
		cmocka_unit_test(test_incomplete_leaves_request_alone),
		cmocka_unit_test(test_resume_request_is_linear),
		cmocka_unit_test(test_resume_response_is_linear),
		cmocka_unit_test(test_resume_counter_sees_reparsing),
		cmocka_unit_test(test_resume_errors_come_early),
		cmocka_unit_test(test_resume_shorter_buffer_restarts),
		cmocka_unit_test(test_chunk_size_bounds),
		cmocka_unit_test(test_chunk_line_limit),
		cmocka_unit_test(test_chunk_trailer_limit),
		cmocka_unit_test(test_chunk_trailer_limit_held),
		cmocka_unit_test(test_chunk_trailer_handback),
		cmocka_unit_test(test_chunk_head),
		cmocka_unit_test(test_chunk_done_consumes_nothing_more),
		cmocka_unit_test(test_name_is),
		cmocka_unit_test(test_find_header),
		cmocka_unit_test(test_list_has_token),
		cmocka_unit_test(test_hop_by_hop),
		cmocka_unit_test(test_content_length_values),
		cmocka_unit_test(test_ipv6_syntax),
		cmocka_unit_test(test_error_status_and_reason),
	};

	return cmocka_run_group_tests(tests, guard_setup, guard_teardown);
}
