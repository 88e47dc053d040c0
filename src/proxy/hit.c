/*
 * The hit path: a stored response sent to the client.
 *
 * The head is the stored fields rewritten as forward.c rewrites an
 * origin's (hop-by-hop fields dropped, framing written anew, Via, the
 * Connection field the client's keep-alive calls for), plus Age (the
 * current age, replacing any stored one: RFC 9111 section 5.1),
 * Cache-Status and, for a 206, Content-Range.  The body is identity on
 * disk, so it always leaves with Content-Length.
 *
 * How the body leaves (issue 13): the store's first read of the entry
 * (CACHE_STORE_FIRST_READ, 16 KiB) brought the header block and the
 * body's first bytes, for a small entry all of it.  Those bytes are
 * copied behind the head in the head buffer and go out with it in one
 * send: a 1 KiB hit is open, pread, send, close, with no sendfile, whose
 * setup costs more than copying a few KiB.  What the first read did not
 * bring (a larger body, a range past it) follows straight from the entry's
 * descriptor with sendfile(2); where sendfile cannot (-EINVAL, -ENOSYS:
 * some file systems, some sockets), pread and send do the same.  The
 * reader's descriptor stays valid whatever happens to the entry's name
 * meanwhile (a committed entry is never modified).  A small entry the
 * store serves from its memory copy (no descriptor: fd -1) has its whole
 * body in body_head; what the head buffer has no room for goes with
 * send from that memory, never with sendfile.
 */
#include <errno.h>
#include <string.h>

#include "glassproxy/util.h"
#include "proxy_int.h"

#define HIT_COPY_BUF (64 * 1024)
#define HIT_EXTRA    4 /* Age, Cache-Status, Content-Range */

/* Copy the stored fields we serve, without Age, and add ours. */
static size_t hit_fields(struct exchange *x, const struct proxy_hit *h,
			 struct http_header *out, size_t cap, char *age,
			 size_t age_cap)
{
	size_t n = 0;

	for (size_t i = 0; i < h->n_fields && n + HIT_EXTRA < cap; i++)
		if (!http_name_is(h->fields[i].name, "age"))
			out[n++] = h->fields[i];
	util_format_i64(age, age_cap, (int64_t)h->age);
	out[n++] = (struct http_header){{"Age", 3}, {age, strlen(age)}};
	if (h->content_range)
		out[n++] = (struct http_header){
			{"Content-Range", 13},
			{h->content_range, strlen(h->content_range)}};
	const char *cs = proxy_cache_status_value(x);
	out[n++] = (struct http_header){{"Cache-Status", 12}, {cs, strlen(cs)}};
	return n;
}

/* pread + send: the copy sendfile would have saved. */
static int hit_copy(struct client *cl, struct cache_store_reader *r,
		    uint64_t off, uint64_t count, uint64_t *sent)
{
	char buf[4096];

	while (count > 0) {
		size_t want = count < sizeof(buf) ? (size_t)count : sizeof(buf);
		ssize_t n = cache_store_read_body(r, buf, want, off);

		if (n <= 0)
			return n < 0 ? (int)n : -EIO;
		int rc = net_send_all(cl->px->sys, cl->conn.fd, buf, (size_t)n);
		if (rc < 0)
			return rc;
		off += (uint64_t)n;
		count -= (uint64_t)n;
		*sent += (uint64_t)n;
	}
	return 0;
}

/* The body bytes [start, start + count) of the entry to the client. */
static int hit_body(struct client *cl, struct cache_store_reader *r,
		    uint64_t start, uint64_t count, uint64_t *sent)
{
	const struct cache_store_entry *e = cache_store_reader_entry(r);
	off_t off = (off_t)(e->body_offset + start);

	/* An entry served from the store's memory copy has no descriptor. */
	if (e->fd < 0)
		return hit_copy(cl, r, start, count, sent);
	while (count > 0) {
		size_t want = count < HIT_COPY_BUF * 16 ? (size_t)count
							: HIT_COPY_BUF * 16;
		ssize_t n = sys_sendfile(cl->px->sys, cl->conn.fd, e->fd, &off,
					 want);

		if (n == -EINVAL || n == -ENOSYS)
			return hit_copy(cl, r, (uint64_t)off - e->body_offset,
					count, sent);
		if (n == -EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? (int)n : -EIO;
		count -= (uint64_t)n;
		*sent += (uint64_t)n;
	}
	return 0;
}

/*
 * Copy the part of the wanted body bytes that the reader holds in memory
 * (the start of [h->start, h->start + h->count)) behind the head in
 * buf[len], as far as cap allows: how many bytes were copied.
 */
static size_t hit_inline(const struct cache_store_entry *e,
			 const struct proxy_hit *h, char *buf, size_t len,
			 size_t cap)
{
	size_t n;

	if (!h->send_body || h->start >= e->body_head_len)
		return 0;
	n = e->body_head_len - (size_t)h->start;
	if (n > h->count)
		n = (size_t)h->count;
	if (n > cap - len)
		n = cap - len;
	memcpy(buf + len, (const char *)e->body_head + h->start, n);
	return n;
}

int proxy_hit_send(struct client *cl, struct exchange *x,
		   struct cache_store_reader *r, const struct proxy_hit *h)
{
	struct http_header fields[PROXY_MAX_HEADERS + HIT_EXTRA];
	const char *reason = proxy_status_reason(h->status);
	struct head_writer w;
	struct http_response res = {
		.minor_version = 1,
		.status = h->status,
		.reason = {reason, strlen(reason)},
		.headers = fields,
		.body = h->has_body ? HTTP_BODY_LENGTH : HTTP_BODY_NONE,
		.content_length = h->count,
	};
	char age[32];
	char *buf = proxy_head_buf(cl, x);
	size_t inl;
	bool more;

	if (!buf)
		return -ENOMEM;
	res.num_headers = hit_fields(x, h, fields, UTIL_ARRAY_LEN(fields), age,
				     sizeof(age));
	w = (struct head_writer){buf, PROXY_HEAD_OUT_MAX, 0, false};
	if (proxy_build_response_head(proxy_live(cl), &res, x,
				      PROXY_FRAME_LENGTH, &w) < 0)
		return -ENOBUFS;
	x->status = h->status;
	x->cache.hit = true;
	if (x->cache.background)
		return 0; /* a revalidation nobody waits for */
	inl = hit_inline(cache_store_reader_entry(r), h, buf, w.len,
			 PROXY_HEAD_OUT_MAX);
	more = h->send_body && h->count > inl;
	/* With sendfile next, what goes now waits to fill a segment. */
	if ((more ? net_send_all_more : net_send_all)(cl->px->sys, cl->conn.fd,
						      buf, w.len + inl) < 0)
		goto client_gone;
	x->bytes_sent += w.len + inl;
	if (more &&
	    hit_body(cl, r, h->start + inl, h->count - inl, &x->bytes_sent) < 0)
		goto client_gone;
	return 0;

client_gone:
	/* Part of a head or body may be out: only a close can end it. */
	x->client_keep_alive = false;
	x->outcome = PROXY_OUTCOME_CLIENT_CLOSED;
	return -EPIPE;
}
