/*
 * libFuzzer target for the parse module (make fuzz).
 *
 * Besides "no crash, no sanitizer report", it checks the promises of
 * parse.h that a fuzzer can check cheaply, and aborts when one breaks:
 *  - a head length is within the input and every slice lies inside it;
 *  - a prefix gives HTTP_INCOMPLETE or the same verdict as the whole;
 *  - the resume API, fed growing prefixes chosen from the input (each
 *    copied to a new place), gives at every step what a one-shot parse of
 *    that prefix gives;
 *  - the chunked scanner gives the same result fed whole or in two
 *    pieces, with or without trailer hand-back, and a body it accepts,
 *    framed again with http_chunk_head, scans back to the same payload.
 */
#include "glassproxy/parse.h"
#include "parse/parse_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CAP 64

static void check(int ok)
{
	if (!ok)
		abort();
}

static void check_slice(struct http_slice s, const char *buf, size_t len)
{
	if (s.len == 0)
		return;
	check(s.ptr >= buf && s.ptr + s.len <= buf + len);
}

static void check_url(const struct http_url *u, const char *buf, size_t len)
{
	check_slice(u->scheme, buf, len);
	check_slice(u->userinfo, buf, len);
	check_slice(u->host, buf, len);
	/* path may be the static "/" of an empty path */
	if (!(u->path.len == 1 && u->path.ptr[0] == '/'))
		check_slice(u->path, buf, len);
	check(!u->port_explicit || u->port != 0);
}

static void check_headers(const struct http_header *h, size_t n,
			  const char *buf, size_t len)
{
	check(n <= CAP);
	for (size_t i = 0; i < n; i++) {
		check(h[i].name.len > 0);
		check_slice(h[i].name, buf, len);
		check_slice(h[i].value, buf, len);
	}
}

static int request(const char *buf, size_t len, const struct http_limits *lim)
{
	struct http_header h[CAP];
	struct http_request r;
	int rc;

	memset(&r, 0, sizeof(r));
	r.headers = h;
	r.num_headers = CAP;
	rc = http_parse_request(buf, len, &r, lim);
	check(rc >= PARSE_E_LOWEST && rc != 0);
	if (rc > 0) {
		check((size_t)rc <= len);
		check_slice(r.method, buf, (size_t)rc);
		check_slice(r.target, buf, (size_t)rc);
		check_url(&r.url, buf, (size_t)rc);
		check_headers(h, r.num_headers, buf, (size_t)rc);
		check(r.body != HTTP_BODY_UNTIL_CLOSE);
		check(r.minor_version == 0 || r.minor_version == 1);
	} else {
		check(r.num_headers == CAP);
	}
	return rc;
}

static int response(const char *buf, size_t len, const char *method)
{
	struct http_header h[CAP];
	struct http_response r;
	struct http_slice m = {method, strlen(method)};
	int rc;

	memset(&r, 0, sizeof(r));
	r.headers = h;
	r.num_headers = CAP;
	rc = http_parse_response(buf, len, &r, m, NULL);
	check(rc >= PARSE_E_LOWEST && rc != 0);
	if (rc > 0) {
		check((size_t)rc <= len);
		check(r.status >= 100 && r.status <= 999);
		check_slice(r.reason, buf, (size_t)rc);
		check_headers(h, r.num_headers, buf, (size_t)rc);
		check(r.body != HTTP_BODY_UNTIL_CLOSE || !r.keep_alive);
	}
	return rc;
}

/* A prefix of len k: incomplete, or what the whole input gave. */
static void check_prefix(int whole, int part, size_t k)
{
	if (whole > 0)
		check(k < (size_t)whole ? part == HTTP_INCOMPLETE
					: part == whole);
	else
		check(part == HTTP_INCOMPLETE || part == whole);
}

struct sink {
	char *data;
	size_t len, cap;
};

static void sink_data(void *arg, const char *data, size_t len)
{
	struct sink *s = arg;

	check(len > 0 && s->len + len <= s->cap);
	memcpy(s->data + s->len, data, len);
	s->len += len;
}

/* Scan in two pieces split at cut; returns consumed bytes or the error. */
static long chunked(const char *buf, size_t len, size_t cut, struct sink *s,
		    bool *done)
{
	struct http_chunked c;
	ssize_t rc;
	size_t at;

	memset(&c, 0, sizeof(c));
	rc = http_chunked_scan(&c, buf, cut, sink_data, s);
	if (rc < 0)
		return rc;
	check((size_t)rc <= cut);
	at = (size_t)rc;
	if (!c.done && at == cut) {
		rc = http_chunked_scan(&c, buf + cut, len - cut, sink_data, s);
		if (rc < 0)
			return rc;
		check((size_t)rc <= len - cut);
		at += (size_t)rc;
	}
	check(c.done || at == len);
	*done = c.done;
	return (long)at;
}

/* A head parse one-shot (st NULL) or resumed: rc and what it found. */
struct head_result {
	int rc;
	size_t n;	     /* number of fields */
	size_t off[2 * CAP]; /* field name and value offsets from buf */
	size_t len[2 * CAP];
};

static void head_parse(const char *buf, size_t len, bool req,
		       struct http_parse_state *st, struct head_result *out)
{
	struct http_header h[CAP];
	struct http_request r = {.headers = h, .num_headers = CAP};
	struct http_response s = {.headers = h, .num_headers = CAP};
	struct http_slice get = {"GET", 3};

	out->rc = req ? http_parse_request_resume(buf, len, &r, NULL, st)
		      : http_parse_response_resume(buf, len, &s, get, NULL,
						   st);
	out->n = out->rc > 0 ? (req ? r.num_headers : s.num_headers) : 0;
	for (size_t i = 0; i < out->n; i++) {
		out->off[2 * i] = (size_t)(h[i].name.ptr - buf);
		out->len[2 * i] = h[i].name.len;
		out->off[2 * i + 1] = (size_t)(h[i].value.ptr - buf);
		out->len[2 * i + 1] = h[i].value.len;
	}
}

static bool head_same(const struct head_result *a, const struct head_result *b)
{
	return a->rc == b->rc && a->n == b->n &&
	       memcmp(a->off, b->off, 2 * a->n * sizeof(a->off[0])) == 0 &&
	       memcmp(a->len, b->len, 2 * a->n * sizeof(a->len[0])) == 0;
}

/*
 * Grow a prefix by steps taken from the input's own bytes, each prefix
 * copied to one of two buffers in turn (so the head moves), one state
 * carried along: every step must equal the one-shot parse of the prefix.
 */
static void check_resume(const char *buf, size_t size, bool req)
{
	char *copy[2] = {malloc(size + 1), malloc(size + 1)};
	struct http_parse_state st;
	struct head_result one, res;
	size_t k = 0, step = 0;

	check(copy[0] != NULL && copy[1] != NULL);
	memset(&st, 0, sizeof(st));
	while (k < size) {
		char *b = copy[step & 1];

		k += 1 + (size_t)(unsigned char)buf[step % size] % 64;
		if (k > size)
			k = size;
		step++;
		memcpy(b, buf, k);
		head_parse(b, k, req, NULL, &one);
		head_parse(b, k, req, &st, &res);
		check(head_same(&one, &res));
		if (res.rc != HTTP_INCOMPLETE)
			break;
	}
	free(copy[0]);
	free(copy[1]);
}

static void trailer_seen(void *arg, struct http_slice name,
			 struct http_slice value)
{
	size_t *count = arg;

	(void)value;
	check(name.len > 0);
	(*count)++;
}

/* The held-back scan in two pieces: its verdict and what it examined. */
static long chunked_held(const char *buf, size_t len, size_t cut, bool *done)
{
	struct http_chunked c;
	size_t count = 0, at;
	ssize_t rc;

	memset(&c, 0, sizeof(c));
	c.on_trailer = trailer_seen;
	rc = http_chunked_scan(&c, buf, cut, NULL, &count);
	if (rc < 0)
		return rc;
	at = (size_t)rc;
	if (!c.done) {
		check(at + c.held == cut);
		rc = http_chunked_scan(&c, buf + at, len - at, NULL, &count);
		if (rc < 0)
			return rc;
		at += (size_t)rc;
	}
	*done = c.done;
	return (long)(at + c.held);
}

/* A payload framed canonically scans back to itself. */
static void check_reencode(const struct sink *payload)
{
	size_t cap = payload->len * 2 + 64, n = 0, step = 5;
	char *out = malloc(cap + HTTP_CHUNK_HEAD_MAX);
	struct sink back = {malloc(payload->len + 1), 0, payload->len};
	struct http_chunked c;

	check(out != NULL && back.data != NULL);
	for (size_t at = 0; at < payload->len; at += step) {
		size_t run = payload->len - at < step ? payload->len - at : step;

		n += http_chunk_head(run, out + n);
		memcpy(out + n, payload->data + at, run);
		n += run;
		memcpy(out + n, HTTP_CHUNK_DATA_END, HTTP_CHUNK_DATA_END_LEN);
		n += HTTP_CHUNK_DATA_END_LEN;
	}
	memcpy(out + n, HTTP_CHUNK_LAST, HTTP_CHUNK_LAST_LEN);
	n += HTTP_CHUNK_LAST_LEN;
	memset(&c, 0, sizeof(c));
	check(http_chunked_scan(&c, out, n, sink_data, &back) == (ssize_t)n);
	check(c.done && back.len == payload->len &&
	      memcmp(back.data, payload->data, back.len) == 0);
	free(back.data);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	static const struct http_limits tiny = {64, 256, 4};
	size_t cut = size ? (size_t)data[0] * 7919 % (size + 1) : 0;
	struct http_url url;
	int whole;

	whole = request(buf, size, NULL);
	check_prefix(whole, request(buf, cut, NULL), cut);
	if (whole > 0)
		check(request(buf, (size_t)whole - 1, NULL) == HTTP_INCOMPLETE);
	whole = request(buf, size, &tiny);
	check_prefix(whole, request(buf, cut, &tiny), cut);

	if (size > 0) {
		check_resume(buf, size, true);
		check_resume(buf, size, false);
	}

	whole = response(buf, size, "GET");
	check_prefix(whole, response(buf, cut, "GET"), cut);
	response(buf, size, "HEAD");
	response(buf, size, "CONNECT");

	if (http_parse_url(buf, size, &url) == 0)
		check_url(&url, buf, size);
	if (http_parse_authority(buf, size, &url) == 0) {
		check_url(&url, buf, size);
		check(url.port != 0);
	}

	{
		struct sink a = {malloc(size + 1), 0, size};
		struct sink b = {malloc(size + 1), 0, size};
		bool da = false, db = false;
		long ra = chunked(buf, size, size, &a, &da);
		long rb = chunked(buf, size, cut, &b, &db);

		bool dh = false;
		long rh = chunked_held(buf, size, cut, &dh);

		check(ra == rb);
		if (ra >= 0)
			check(da == db && a.len == b.len &&
			      memcmp(a.data, b.data, a.len) == 0);
		check(rh == ra && (ra < 0 || dh == da));
		if (da)
			check_reencode(&a);
		free(a.data);
		free(b.data);
	}
	return 0;
}
