/*
 * Vary (RFC 9111 section 4.1): the nominated request fields of a stored
 * response, as normalised text, and the match of a new request against it.
 *
 * Normalisation (RFC 9110 section 5.3 and 5.6.1): all field lines of a
 * name are one list; elements are trimmed of whitespace and empty ones
 * dropped, so "gzip,br", "gzip, br" and two lines "gzip" / "br" are the
 * same value.  Values are compared case-sensitively, except in the fields
 * made of case-insensitive tokens (Accept-Encoding: content codings;
 * Accept-Charset; Accept-Language: language tags), which are also put in
 * order, since the order of their elements carries no preference (the
 * q-values do, and they stay on their elements): "en, de" and "DE, en"
 * select the same variant.  Other fields keep their order, which may
 * matter to the origin.  Section 4.1 lets a cache normalise this far.
 *
 * One writer serves both jobs: it either writes the text or compares it
 * with stored text as it goes, so the match needs no buffer.
 */
#include "cache_int.h"

#include <errno.h>

struct vsink {
	char *dst; /* writing; NULL when comparing */
	size_t cap;
	const char *cmp; /* comparing */
	size_t cmp_len;
	size_t pos;
	bool failed; /* out of room, or a difference */
};

static void emit(struct vsink *s, const char *p, size_t n)
{
	for (size_t i = 0; i < n && !s->failed; i++, s->pos++) {
		if (s->dst) {
			if (s->pos + 1 >= s->cap)
				s->failed = true;
			else
				s->dst[s->pos] = p[i];
		} else if (s->pos >= s->cmp_len || s->cmp[s->pos] != p[i]) {
			s->failed = true;
		}
	}
}

static void emit_lower(struct vsink *s, struct http_slice v, bool lower)
{
	for (size_t i = 0; i < v.len; i++) {
		char c = lower ? util_lower(v.ptr[i]) : v.ptr[i];
		emit(s, &c, 1);
	}
}

static bool case_insensitive(struct http_slice name)
{
	return http_name_is(name, "Accept-Encoding") ||
	       http_name_is(name, "Accept-Charset") ||
	       http_name_is(name, "Accept-Language");
}

/* Field names are at most this long here (longer never match). */
#define VARY_NAME_MAX 128

/* Elements put in order, at most; beyond it they keep their order. */
#define VARY_SORT_MAX 32

static int icmp(struct http_slice a, struct http_slice b)
{
	size_t n = a.len < b.len ? a.len : b.len;

	for (size_t i = 0; i < n; i++) {
		char x = util_lower(a.ptr[i]), y = util_lower(b.ptr[i]);
		if (x != y)
			return x < y ? -1 : 1;
	}
	return a.len < b.len ? -1 : a.len > b.len;
}

/* The elements of the field, sorted; false when there are too many. */
static bool sorted(const struct http_header *req, size_t nreq, const char *name,
		   struct http_slice *el, size_t *n)
{
	struct cache_list it;
	struct http_slice e;

	*n = 0;
	cache_list_init(&it, req, nreq, name);
	while (cache_list_next(&it, &e)) {
		size_t k = (*n)++;
		if (k >= VARY_SORT_MAX)
			return false;
		for (; k > 0 && icmp(el[k - 1], e) > 0; k--)
			el[k] = el[k - 1];
		el[k] = e;
	}
	return true;
}

static void emit_values(struct vsink *s, const struct http_header *req,
			size_t nreq, const char *name, bool tokens)
{
	struct http_slice el[VARY_SORT_MAX], e;
	struct cache_list it;
	size_t n;

	if (tokens && sorted(req, nreq, name, el, &n)) {
		for (size_t i = 0; i < n; i++) {
			if (i > 0)
				emit(s, ",", 1);
			emit_lower(s, el[i], true);
		}
		return;
	}
	cache_list_init(&it, req, nreq, name);
	for (bool first = true; cache_list_next(&it, &e); first = false) {
		if (!first)
			emit(s, ",", 1);
		emit_lower(s, e, tokens);
	}
}

/* "name:v1,v2\n", or "name\n" when the request lacks the field. */
static void emit_field(struct vsink *s, struct http_slice name,
		       const struct http_header *req, size_t nreq)
{
	char cname[VARY_NAME_MAX + 1];

	if (util_copy(cname, sizeof(cname), name.ptr, name.len) < 0) {
		s->failed = true;
		return;
	}
	emit_lower(s, name, true);
	if (http_find_header(req, nreq, cname, 0) >= 0) {
		emit(s, ":", 1);
		emit_values(s, req, nreq, cname, case_insensitive(name));
	}
	emit(s, "\n", 1);
}

/* Returns -EINVAL for Vary: *. */
static int emit_all(struct vsink *s, const struct http_header *res, size_t nres,
		    const struct http_header *req, size_t nreq)
{
	struct cache_list it;
	struct http_slice name;

	cache_list_init(&it, res, nres, "Vary");
	while (cache_list_next(&it, &name)) {
		if (name.len == 1 && name.ptr[0] == '*')
			return -EINVAL;
		emit_field(s, name, req, nreq);
	}
	return 0;
}

int cache_vary_serialize(const struct http_header *res, size_t nres,
			 const struct http_header *req, size_t nreq, char *dst,
			 size_t cap)
{
	struct vsink s = {.dst = dst, .cap = cap};
	int rc;

	if (cap == 0)
		return -ENOSPC;
	dst[0] = '\0';
	rc = emit_all(&s, res, nres, req, nreq);
	if (rc < 0)
		return rc;
	if (s.failed)
		return -ENOSPC;
	dst[s.pos] = '\0';
	return (int)s.pos;
}

/* The next line "name[:value]\n" of stored text, name as a slice. */
static bool next_line(const char *stored, size_t len, size_t *pos,
		      struct http_slice *line)
{
	const char *nl;

	if (*pos >= len)
		return false;
	nl = memchr(stored + *pos, '\n', len - *pos);
	line->ptr = stored + *pos;
	line->len = nl ? (size_t)(nl - line->ptr) + 1 : len - *pos;
	*pos += line->len;
	return true;
}

bool cache_vary_match(const char *stored, size_t len,
		      const struct http_header *req, size_t nreq)
{
	struct http_slice line, name;
	size_t pos = 0;

	/* Each stored line is re-derived from the new request and must come
	   out byte for byte the same. */
	while (next_line(stored, len, &pos, &line)) {
		struct vsink s = {.cmp = line.ptr, .cmp_len = line.len};

		name.ptr = line.ptr;
		name.len = 0;
		while (name.len < line.len && line.ptr[name.len] != ':' &&
		       line.ptr[name.len] != '\n')
			name.len++;
		emit_field(&s, name, req, nreq);
		if (s.failed || s.pos != line.len)
			return false;
	}
	return true;
}
