/*
 * libFuzzer target for the parse module (make fuzz).
 *
 * Besides "no crash, no sanitizer report", it checks the promises of
 * parse.h that a fuzzer can check cheaply, and aborts when one breaks:
 *  - a head length is within the input and every slice lies inside it;
 *  - a prefix gives HTTP_INCOMPLETE or the same verdict as the whole;
 *  - the chunked scanner gives the same result fed whole or in two pieces.
 */
#include "glassproxy/parse.h"

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
	check(rc >= HTTP_E_CHUNK_TOO_LARGE && rc != 0);
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
	check(rc >= HTTP_E_CHUNK_TOO_LARGE && rc != 0);
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

		check(ra == rb);
		if (ra >= 0)
			check(da == db && a.len == b.len &&
			      memcmp(a.data, b.data, a.len) == 0);
		free(a.data);
		free(b.data);
	}
	return 0;
}
