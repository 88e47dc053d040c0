/*
 * Header fields: the framing rules of RFC 9112 section 6 and the public
 * helpers over parsed fields.  The field lines themselves are scanned by
 * head.c.
 */
#include "parse_int.h"

#include <string.h>

void parse_limits_resolve(const struct http_limits *in,
			  struct parse_limits *out)
{
	out->max_request_line = PARSE_DEFAULT_MAX_REQUEST_LINE;
	out->max_head = PARSE_DEFAULT_MAX_HEAD;
	out->max_headers = PARSE_DEFAULT_MAX_HEADERS;
	if (in) {
		if (in->max_request_line)
			out->max_request_line = in->max_request_line;
		if (in->max_head)
			out->max_head = in->max_head;
		if (in->max_headers)
			out->max_headers = in->max_headers;
	}
	/* The head length is returned as an int. */
	if (out->max_head > INT_MAX)
		out->max_head = INT_MAX;
}

bool parse_ieq_lit(const char *s, size_t len, const char *lit)
{
	return util_ieq(s, len, lit, strlen(lit));
}

/*
 * Walk the elements of a comma-separated list (RFC 9110 section 5.6.1):
 * returns false when there are no more, else sets *elem to the next
 * element without surrounding whitespace (possibly empty).
 */
static bool list_next(struct http_slice *rest, struct http_slice *elem)
{
	const char *comma;
	size_t n;

	if (rest->ptr == NULL)
		return false;
	comma = rest->len ? memchr(rest->ptr, ',', rest->len) : NULL;
	n = comma ? (size_t)(comma - rest->ptr) : rest->len;
	elem->ptr = rest->ptr;
	elem->len = n;
	util_trim(&elem->ptr, &elem->len);
	if (comma) {
		rest->ptr = comma + 1;
		rest->len -= n + 1;
	} else {
		rest->ptr = NULL;
		rest->len = 0;
	}
	return true;
}

bool parse_list_has(struct http_slice value, const char *tok, size_t tok_len)
{
	struct http_slice rest = value, e;

	if (tok_len == 0 || value.ptr == NULL)
		return false;
	while (list_next(&rest, &e))
		if (util_ieq(e.ptr, e.len, tok, tok_len))
			return true;
	return false;
}

int parse_content_length(struct http_slice value, bool *seen, uint64_t *have)
{
	struct http_slice rest = value, e;
	uint64_t v;

	if (value.ptr == NULL || value.len == 0)
		return HTTP_E_CONTENT_LENGTH;
	while (list_next(&rest, &e)) {
		if (util_parse_u64(e.ptr, e.len, PARSE_MAX_BODY_LENGTH, &v))
			return HTTP_E_CONTENT_LENGTH;
		if (*seen && v != *have)
			return HTTP_E_DUPLICATE_CONTENT_LENGTH;
		*seen = true;
		*have = v;
	}
	return 0;
}

/*
 * The transfer codings we can name.  "identity" was removed by RFC 7230
 * and is treated as unknown, like anything else not listed.
 */
static bool te_known(struct http_slice c)
{
	static const char *const known[] = {"chunked",	"gzip",	  "deflate",
					    "compress", "x-gzip", "x-compress"};

	for (size_t k = 0; k < UTIL_ARRAY_LEN(known); k++)
		if (parse_ieq_lit(c.ptr, c.len, known[k]))
			return true;
	return false;
}

int parse_framing(const struct http_header *headers, size_t n, bool request,
		  struct parse_framing *f)
{
	int cl_err = 0;
	bool te_unknown = false, last_chunked = false, cl_seen = false;
	size_t chunked = 0;

	memset(f, 0, sizeof(*f));
	for (size_t i = 0; i < n; i++) {
		const struct http_header *h = &headers[i];
		struct http_slice rest = h->value, e;

		if (http_name_is(h->name, "transfer-encoding")) {
			f->has_te = true;
			/* Several fields form one list, in order. */
			while (list_next(&rest, &e)) {
				if (e.len == 0)
					continue;
				last_chunked =
					parse_ieq_lit(e.ptr, e.len, "chunked");
				chunked += last_chunked;
				if (!te_known(e))
					te_unknown = true;
			}
		} else if (http_name_is(h->name, "content-length")) {
			f->has_cl = true;
			if (!cl_err)
				cl_err = parse_content_length(
					h->value, &cl_seen, &f->content_length);
		} else if (http_name_is(h->name, "connection")) {
			if (parse_list_has(h->value, "close", 5))
				f->close = true;
			if (parse_list_has(h->value, "keep-alive", 10))
				f->keep_alive = true;
		}
	}
	/*
	 * Both framings at once is the smuggling signature (RFC 9112 11.2):
	 * refused outright, in a response as well, so that the connection
	 * is never reused.
	 */
	if (f->has_te && f->has_cl)
		return HTTP_E_LENGTH_AND_CHUNKED;
	if (f->has_te) {
		if (te_unknown)
			return HTTP_E_TE_UNKNOWN;
		/* RFC 9112 6.1: chunked is applied at most once. */
		if (chunked > 1)
			return HTTP_E_TE_NOT_CHUNKED_LAST;
		if (request && !last_chunked)
			return HTTP_E_TE_NOT_CHUNKED_LAST;
		f->te_chunked_last = last_chunked;
	}
	return cl_err;
}

ssize_t http_find_header(const struct http_header *headers, size_t n,
			 const char *name, size_t from)
{
	size_t len = strlen(name); /* once, not once per header */

	for (size_t i = from; i < n; i++)
		if (headers[i].name.ptr && headers[i].name.len == len &&
		    util_ieq(headers[i].name.ptr, len, name, len))
			return (ssize_t)i;
	return -1;
}

bool http_list_has_token(struct http_slice value, const char *token)
{
	return parse_list_has(value, token, strlen(token));
}

bool http_is_hop_by_hop(struct http_slice name,
			const struct http_header *headers, size_t n)
{
	/* With their lengths: most names are none of these, and a length
	 * says so without a strlen per name (every header of every head
	 * the proxy writes comes through here). */
#define NAME(lit)                                                              \
	{                                                                      \
		.name = (lit), .len = sizeof(lit) - 1                          \
	}
	static const struct {
		const char *name;
		size_t len;
	} fixed[] = {
		NAME("connection"),
		NAME("keep-alive"),
		NAME("proxy-connection"),
		NAME("te"),
		NAME("trailer"),
		NAME("transfer-encoding"),
		NAME("upgrade"),
		NAME("proxy-authorization"),
		NAME("proxy-authenticate"),
	};
#undef NAME

	if (name.ptr == NULL || name.len == 0)
		return false;
	for (size_t k = 0; k < UTIL_ARRAY_LEN(fixed); k++)
		if (name.len == fixed[k].len &&
		    util_ieq(name.ptr, name.len, fixed[k].name, fixed[k].len))
			return true;
	for (size_t i = 0; i < n; i++)
		if (http_name_is(headers[i].name, "connection") &&
		    parse_list_has(headers[i].value, name.ptr, name.len))
			return true;
	return false;
}
