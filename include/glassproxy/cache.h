/*
 * cache: the HTTP shared cache of RFC 9111, in two parts: the policy and
 * the key (pure functions), and the store (files on disk, through sys_fs),
 * whose contract opens its own section further down.  The proxy glue
 * builds on both.
 *
 * Contract of the policy and key functions: pure.  No I/O,
 * no clock (every time is an argument, in seconds since the epoch), no
 * globals, no allocation.  They read the parse module's types (header
 * slices) and write only into the caller's structs and buffers; slices
 * they return point into the caller's header values, so they live as long
 * as those do.  Text-producing functions take the destination size, never
 * write past it and return the length written (without the NUL) or a
 * negative errno (-ENOSPC when it does not fit).
 *
 * glassproxy is a shared cache: private responses are never stored, and
 * s-maxage and proxy-revalidate apply.  docs/cache.md explains each rule
 * with its RFC section; the functions below are in the order a request
 * meets them: key, lookup (Vary, freshness, request directives,
 * conditionals, Range), revalidation (validators, 304 merge), storing,
 * invalidation, Cache-Status.
 */
#ifndef GLASSPROXY_CACHE_H
#define GLASSPROXY_CACHE_H

#include "glassproxy/parse.h"
#include "glassproxy/sys.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * RFC 9111 section 1.2.2: a delta-seconds too large to represent, or a
 * calculation that overflows, is taken as 2^31 seconds (68 years).
 */
#define CACHE_DELTA_MAX ((int64_t)2147483648)

/* ---- HTTP-date (RFC 9110 section 5.6.7) ---- */

/* Longest IMF-fixdate plus NUL: "Sun, 06 Nov 1994 08:49:37 GMT". */
#define CACHE_DATE_LEN 30

/*
 * Parse an HTTP-date in any of its three forms: IMF-fixdate, the obsolete
 * RFC 850 form ("Sunday, 06-Nov-94 08:49:37 GMT") and asctime ("Sun Nov  6
 * 08:49:37 1994").  now resolves an RFC 850 two-digit year: a year that
 * would be more than 50 years after now is the century before.  Parsing
 * is strict and case-sensitive, as the grammar is.  Returns 0 and *out, or
 * -EINVAL.
 */
int cache_parse_http_date(const char *s, size_t len, int64_t now, int64_t *out);

/* Format t as an IMF-fixdate into dst[cap] (cap >= CACHE_DATE_LEN). */
int cache_format_http_date(int64_t t, char *dst, size_t cap);

/* ---- Cache-Control (RFC 9111 section 5.2) ---- */

/*
 * How many qualified no-cache="..." (and private="...") occurrences are
 * kept; more count as the unqualified directive, the strict reading.
 */
#define CACHE_CC_MAX_LISTS 4

/*
 * The directives of every Cache-Control field line of a message.  A
 * delta-seconds value is -1 when the directive is absent, else in
 * [0, CACHE_DELTA_MAX].  Qualified no-cache and private keep the quoted
 * field lists (each a comma-separated list of field names); an unqualified
 * occurrence sets the bool, which then wins.
 */
struct cache_control {
	int64_t max_age;
	int64_t s_maxage;
	int64_t max_stale; /* with a value; see max_stale_any */
	int64_t min_fresh;
	int64_t stale_while_revalidate;
	int64_t stale_if_error;
	bool max_age_invalid;  /* present but unusable: the response is stale */
	bool s_maxage_invalid; /* likewise */
	bool max_stale_any;    /* max-stale without a value: any staleness */
	bool no_cache;	       /* unqualified */
	bool no_store;
	bool private_; /* unqualified */
	bool public_;
	bool must_revalidate;
	bool proxy_revalidate;
	bool must_understand;
	bool immutable;
	bool no_transform;
	bool only_if_cached;
	struct http_slice no_cache_fields[CACHE_CC_MAX_LISTS];
	size_t n_no_cache_fields;
	struct http_slice private_fields[CACHE_CC_MAX_LISTS];
	size_t n_private_fields;
};

/*
 * Parse the response's Cache-Control fields.  Duplicated max-age or
 * s-maxage with different values, or an invalid value, make the response
 * stale (RFC 9111 section 4.2.1 allows "first" or "stale"; stale is the
 * restrictive choice).  Unknown directives are ignored.
 */
void cache_cc_parse_response(const struct http_header *h, size_t n,
			     struct cache_control *cc);

/*
 * Parse a request's Cache-Control fields; duplicates take the most
 * restrictive value (smallest max-age and max-stale, largest min-fresh).
 * An invalid max-age counts as max-age=0; other invalid values are
 * ignored.  Without any Cache-Control field, Pragma: no-cache means
 * no-cache (RFC 9111 section 5.4).
 */
void cache_cc_parse_request(const struct http_header *h, size_t n,
			    struct cache_control *cc);

/* Is name in any of the quoted field lists (case-insensitive)? */
bool cache_cc_lists(const struct http_slice *lists, size_t n,
		    struct http_slice name);

/* ---- configuration the policy needs ---- */

struct cache_policy {
	/*
	 * Heuristic freshness cap, and the lifetime given to a
	 * heuristically cacheable response without Last-Modified (the
	 * seed's 60-second rule).  0 turns heuristic freshness off.
	 */
	int64_t default_ttl;
	/* false: no heuristic freshness without Last-Modified. */
	bool heuristic_without_lm;
	/*
	 * How stale an entry may be served when the origin cannot be
	 * reached at all and no directive forbids it; 0: only with
	 * stale-if-error.
	 */
	int64_t max_stale_on_failure;
};

/* ---- age and freshness (RFC 9111 section 4.2) ---- */

/*
 * A stored response as the policy sees it: its fields, its status and the
 * times of the request that fetched it and of the response's arrival
 * (request_time and response_time of section 4.2.3).
 */
struct cache_entry {
	const struct http_header *headers;
	size_t num_headers;
	int status;
	int64_t request_time;
	int64_t response_time;
};

/* The Age field value (first line, first member); invalid gives 0. */
int64_t cache_age_value(const struct http_header *h, size_t n);

/* The age inputs of section 4.2.3. */
struct cache_age_input {
	int64_t date_value; /* Date, or response_time when absent/invalid */
	int64_t age_value;
	int64_t request_time;
	int64_t response_time;
	int64_t now;
};

/* current_age of section 4.2.3, clamped to [0, CACHE_DELTA_MAX]. */
int64_t cache_current_age(const struct cache_age_input *in);

/* What cache_freshness found. */
struct cache_freshness {
	int64_t lifetime;    /* freshness_lifetime, >= 0 */
	int64_t current_age; /* also the Age field value to send */
	int64_t date_value;
	bool heuristic; /* the lifetime is a heuristic one (section 4.2.2) */
	bool fresh;	/* lifetime > current_age */
	struct cache_control cc; /* the response's directives */
};

/*
 * The freshness lifetime of section 4.2.1 (s-maxage, max-age, Expires -
 * Date, else heuristic) and the current age at now.
 */
void cache_freshness(const struct cache_entry *e, const struct cache_policy *p,
		     int64_t now, struct cache_freshness *out);

/* Is the status heuristically cacheable (RFC 9110 section 15.1)? */
bool cache_status_heuristic(int status);

/* ---- using a stored response (RFC 9111 section 4) ---- */

enum cache_action {
	CACHE_SERVE_FRESH,	      /* serve the stored response */
	CACHE_SERVE_STALE,	      /* serve it stale: allowed by max-stale */
	CACHE_SERVE_STALE_REVALIDATE, /* stale-while-revalidate: serve it and
					 revalidate once in the background */
	CACHE_REVALIDATE, /* conditional request upstream with validators */
	CACHE_FORWARD,	  /* unconditional request upstream */
	CACHE_GATEWAY_TIMEOUT, /* only-if-cached and nothing usable: 504 */
};

/* Why the decision went that way (logs, Cache-Status detail=). */
enum cache_why {
	CACHE_WHY_FRESH,
	CACHE_WHY_STALE,
	CACHE_WHY_MAX_STALE,
	CACHE_WHY_SWR,
	CACHE_WHY_RESPONSE_NO_CACHE,
	CACHE_WHY_REQUEST_NO_CACHE,
	CACHE_WHY_REQUEST_NO_STORE,
	CACHE_WHY_REQUEST_MAX_AGE,
	CACHE_WHY_REQUEST_MIN_FRESH,
	CACHE_WHY_MUST_REVALIDATE, /* must-/proxy-revalidate or s-maxage */
	CACHE_WHY_ONLY_IF_CACHED,
};

const char *cache_why_str(enum cache_why why);

struct cache_decision {
	enum cache_action action;
	enum cache_why why;
	/* A stale response must never be served (must-revalidate,
	   proxy-revalidate, s-maxage, no-cache): if revalidation fails the
	   answer is 504, never the stored body. */
	bool stale_forbidden;
	int64_t ttl; /* lifetime - age: Cache-Status ttl=, may be < 0 */
	struct cache_freshness f;
};

/*
 * May the stored response e answer a request with directives req at now?
 * Section 4.2.4 (stale), 5.2.1 (request directives), 5.2.2 (response
 * directives), RFC 5861 (stale-while-revalidate) and RFC 8246 (immutable:
 * a fresh immutable response answers a request's max-age=0, a browser's
 * conditional reload, without revalidation; no-cache, a forced reload,
 * still revalidates).  Request no-store (section 5.2.1.5) forbids storing
 * the answer; the RFC would let a stored response answer it, but glassproxy
 * forwards it unconditionally, as browsers do for a no-store fetch and as
 * the conformance suite's ccreq-no-store check expects: the client asked
 * the cache to stay out of the exchange.
 */
void cache_decide(const struct cache_control *req, const struct cache_entry *e,
		  const struct cache_policy *p, int64_t now,
		  struct cache_decision *out);

/* Nothing stored for the request: CACHE_FORWARD or 504 (only-if-cached). */
enum cache_action cache_decide_miss(const struct cache_control *req);

/*
 * The origin failed (upstream_status 0: unreachable, reset, timeout) or
 * answered upstream_status: may the stored entry be served instead?
 * Never when the decision forbids stale.  Within a stale-if-error window
 * (RFC 5861 section 4, in the response or the request) for 500, 502, 503,
 * 504 and failures; and, for failures only, within p->max_stale_on_failure
 * seconds of staleness (RFC 9111 section 4.2.4 lets a disconnected cache
 * serve stale; Squid's max_stale does the same).
 */
bool cache_stale_if_error(const struct cache_control *req,
			  const struct cache_decision *d,
			  const struct cache_policy *p, int upstream_status);

/* ---- Vary (RFC 9111 section 4.1) ---- */

/*
 * The stored request's nominated fields as text, for the entry:
 * one line per nominated field, "name:value\n" with the name lower-cased
 * and the value normalised (every field line of that name joined, list
 * elements trimmed, empty ones dropped, joined by ","; lower-cased and
 * sorted for the fields made of case-insensitive tokens: Accept-Encoding,
 * Accept-Charset, Accept-Language), or "name\n" when the request had no
 * such field.  Empty text when the response has no Vary.  Returns the
 * length, -EINVAL for Vary: * (it never matches), -ENOSPC.
 */
int cache_vary_serialize(const struct http_header *res, size_t nres,
			 const struct http_header *req, size_t nreq, char *dst,
			 size_t cap);

/* Does a new request match the stored text of cache_vary_serialize? */
bool cache_vary_match(const char *stored, size_t len,
		      const struct http_header *req, size_t nreq);

/* ---- conditional requests (RFC 9110 section 13, RFC 9111 4.3.2) ---- */

enum cache_cond {
	CACHE_COND_FULL,	 /* answer with the stored response (200) */
	CACHE_COND_NOT_MODIFIED, /* answer 304 */
	CACHE_COND_PRECONDITION_FAILED, /* 412; see cache_conditional */
	CACHE_COND_PASS, /* not for the cache to answer: go upstream */
};

/*
 * Evaluate a client's conditional request (method, fields) against a
 * stored response that the cache would otherwise serve, in the order of
 * RFC 9110 section 13.2.2.  If-Match and If-Unmodified-Since are not
 * applicable to a cache (RFC 9111 section 4.3.2): when they hold the
 * evaluation goes on, when they fail the request passes upstream, whose
 * answer (412 or not) is the origin's to give.  If-None-Match uses the
 * weak comparison and "*"; If-Modified-Since applies only without
 * If-None-Match, to GET and HEAD, against Last-Modified, else Date, else
 * the response time.  now resolves two-digit years in dates.
 */
enum cache_cond cache_conditional(struct http_slice method,
				  const struct http_header *req, size_t nreq,
				  const struct cache_entry *e, int64_t now);

/*
 * If-Range (RFC 9110 section 13.1.5): true when the request's Range may
 * be applied to the stored response (no If-Range, a strongly matching
 * entity-tag, or a date equal to a strong Last-Modified).
 */
bool cache_if_range(const struct http_header *req, size_t nreq,
		    const struct cache_entry *e, int64_t now);

/* Entity-tag comparison (RFC 9110 section 8.8.3.2). */
bool cache_etag_strong_eq(struct http_slice a, struct http_slice b);
bool cache_etag_weak_eq(struct http_slice a, struct http_slice b);

/*
 * The fields a 304 generated by the cache carries (RFC 9110 section
 * 15.4.5): Cache-Control, Content-Location, Date, ETag, Expires, Vary.
 */
bool cache_304_keeps_field(struct http_slice name);

/*
 * The validators for revalidating e upstream: If-None-Match with its ETag
 * and If-Modified-Since with its Last-Modified (section 4.3.1).  out[]
 * has room for 2; names are static strings, values point into e's
 * fields.  Returns how many were written (0: nothing to validate with).
 */
size_t cache_validators(const struct cache_entry *e, struct http_header *out);

/*
 * One If-None-Match value for several stored variants of a URI (section
 * 4.3.1: a cache revalidating them together sends all their entity-tags):
 * the well-formed tags of etags[] joined by ", ", each once.  Returns the
 * length (0 when none is usable) or -ENOSPC.
 */
int cache_join_etags(const struct http_slice *etags, size_t n, char *dst,
		     size_t cap);

/* ---- Range (RFC 9110 section 14) ---- */

enum cache_range {
	CACHE_RANGE_NONE,	   /* no Range field: serve the whole body */
	CACHE_RANGE_OK,		   /* one satisfiable range: 206 */
	CACHE_RANGE_UNSATISFIABLE, /* 416 with an unsatisfied Content-Range */
	CACHE_RANGE_IGNORE,	   /* several ranges, other units, bad syntax:
			       not for the cache (go upstream) */
};

/*
 * Evaluate the request's Range field against a stored body of length
 * bytes: bytes=a-b, a- or -n.  On CACHE_RANGE_OK, *start and *count give
 * the bytes to send.
 */
enum cache_range cache_range(const struct http_header *req, size_t nreq,
			     uint64_t length, uint64_t *start, uint64_t *count);

/*
 * The Content-Range value: "bytes 0-9/100" for a 206, or with count 0 the
 * unsatisfied form of a 416, "bytes *" "/100" (written without the space).
 */
int cache_format_content_range(uint64_t start, uint64_t count, uint64_t length,
			       char *dst, size_t cap);

/* ---- storing (RFC 9111 section 3) ---- */

enum cache_reason {
	CACHE_STORE_OK,
	CACHE_STORE_METHOD, /* not GET */
	CACHE_STORE_STATUS, /* interim, 206, 304 */
	CACHE_STORE_REQUEST_NO_STORE,
	CACHE_STORE_NO_STORE,
	CACHE_STORE_PRIVATE,
	CACHE_STORE_AUTHORIZATION,   /* Authorization without public etc. */
	CACHE_STORE_MUST_UNDERSTAND, /* must-understand, status unknown */
	CACHE_STORE_VARY_STAR,
	CACHE_STORE_NOT_CACHEABLE, /* no explicit freshness, status not
				      heuristically cacheable */
	CACHE_STORE_USELESS,	   /* no freshness and no validator */
	CACHE_STORE_TOO_MANY,	   /* more fields to drop than we track */
};

/* A short token for Cache-Status detail= and the logs ("no-store"). */
const char *cache_reason_str(enum cache_reason r);

#define CACHE_MAX_DROP 48

struct cache_store_decision {
	bool store;
	enum cache_reason reason;
	/* Field names to strip from the stored response: hop-by-hop and
	   Connection-listed fields, Set-Cookie, Set-Cookie2, and the fields
	   named by no-cache="..." and private="...". */
	struct http_slice drop[CACHE_MAX_DROP];
	size_t n_drop;
};

/*
 * May the response res to request req be stored, and without which
 * fields?  The request's method and fields, the response's status and
 * fields are all that is read.
 */
void cache_storable(const struct http_request *req,
		    const struct http_response *res,
		    const struct cache_policy *p,
		    struct cache_store_decision *d);

/* Is name one of d's fields to drop (case-insensitive)? */
bool cache_store_drops(const struct cache_store_decision *d,
		       struct http_slice name);

/*
 * Copy the fields of in[] that d keeps into out[cap], in order.  Returns
 * the count, or -ENOSPC.
 */
int cache_store_fields(const struct cache_store_decision *d,
		       const struct http_header *in, size_t n,
		       struct http_header *out, size_t cap);

/* ---- freshening (RFC 9111 sections 3.2, 4.3.3 - 4.3.5) ---- */

/*
 * Does a 304 (fields nv) select the stored response e (section 4.3.4)?
 * A strong ETag in the 304 selects only an entry with that strong ETag; a
 * weak one or a Last-Modified an entry with the same; a 304 without
 * validators selects the entry when it is the only candidate
 * (only_candidate: the one the conditional request was built from).
 */
bool cache_304_selects(const struct cache_entry *e,
		       const struct http_header *nv, size_t nnv,
		       bool only_candidate);

/*
 * Merge the fields of a 304 or of a HEAD response (fresh[]) into the
 * stored ones (section 3.2): every field of fresh[] replaces all stored
 * lines of that name, except Content-Length, Content-Encoding,
 * Content-Range, Transfer-Encoding and hop-by-hop / Connection-listed
 * fields, which stay as stored (the stored body is what they describe).
 * A stored Age or Date the new response lacks is dropped: the times of
 * the new response replace those of the stored one.  Writes stored fields
 * first (in order), then the new ones, into out[cap]; returns the count or
 * -ENOSPC.  The result is what the client gets; before storing it, apply
 * cache_storable / cache_store_fields (a 304's Set-Cookie goes to this
 * client only).
 */
int cache_merge_fields(const struct http_header *stored, size_t ns,
		       const struct http_header *fresh, size_t nf,
		       struct http_header *out, size_t cap);

/*
 * A 200 answer to a HEAD request made by the cache (section 4.3.5): true
 * when it may update the stored GET response e (validators and any
 * Content-Length match), false when e must be considered stale.
 */
bool cache_head_updates(const struct cache_entry *e,
			const struct http_header *head, size_t nhead,
			uint64_t stored_body_length);

/* ---- invalidation (RFC 9111 section 4.4) ---- */

/*
 * Does a response with status to a request with method invalidate the
 * target URI?  Unsafe methods (anything but GET, HEAD, OPTIONS, TRACE)
 * with a 2xx or 3xx status.
 */
bool cache_invalidates(struct http_slice method, int status);

/*
 * The cache key of a Location or Content-Location reference (absolute,
 * network-path, absolute-path or relative to the target's path), into
 * dst[cap], when it has the same origin as target.  Returns the key's
 * length, -EXDEV when the origin differs, -EINVAL when it does not parse.
 */
int cache_invalidation_key(const struct http_url *target,
			   struct http_slice reference, char *dst, size_t cap);

/* ---- the key (key.c) ---- */

/*
 * The cache key of a request: its method-independent target URI,
 * "scheme://host[:port]path?query" with scheme and host lower-cased,
 * IPv6 literals bracketed, the scheme's default port dropped, userinfo
 * dropped, an empty path as "/", and the path and query exactly as sent.
 */
int cache_key_build(const struct http_url *url, char *dst, size_t cap);

struct cache_hash {
	uint64_t hi, lo;
};

/* A 128-bit non-cryptographic hash of the key (collisions cost a miss). */
void cache_key_hash(const char *key, size_t len, struct cache_hash *out);

#define CACHE_HASH_HEX 33 /* 32 hex digits and a NUL */
#define CACHE_PATH_LEN 40 /* "ab/cd/" + 32 hex digits + NUL */

/* The hash as 32 lower-case hex digits. */
int cache_hash_hex(const struct cache_hash *h, char *dst, size_t cap);

/*
 * The entry's path relative to the cache directory: "ab/cd/<32 hex>",
 * ab and cd the first two bytes of the hash.  Only hex digits and '/'.
 */
int cache_key_path(const struct cache_hash *h, char *dst, size_t cap);

/* ---- Cache-Status (RFC 9211) ---- */

enum cache_fwd {
	CACHE_FWD_NONE, /* a hit: not forwarded */
	CACHE_FWD_BYPASS,
	CACHE_FWD_METHOD,
	CACHE_FWD_URI_MISS,
	CACHE_FWD_VARY_MISS,
	CACHE_FWD_MISS,
	CACHE_FWD_REQUEST,
	CACHE_FWD_STALE,
	CACHE_FWD_PARTIAL,
};

struct cache_status {
	bool hit;
	enum cache_fwd fwd;
	int fwd_status; /* 0: none */
	bool stored;
	bool collapsed;
	bool has_ttl;
	int64_t ttl;
	const char *detail; /* NULL: none */
};

/* "glassproxy; hit; ttl=3540" and friends, for the field value. */
int cache_status_format(const char *cache_name, const struct cache_status *s,
			char *dst, size_t cap);

/*
 * ---- the store: responses on disk, an in-memory index, LRU eviction,
 * recovery and a registry of fills in progress ----
 *
 *
 * Contract: the store keeps complete responses and never hands out a torn,
 * truncated or foreign one.  It knows nothing of HTTP: the caller (the proxy
 * glue) gives it a key string, the key's hash in hex, the Vary-selected
 * request fields and the stored response fields as opaque bytes, a few
 * numbers (times, status, a freshness summary) and the identity body.
 *
 *  - Layout: DIR/ab/cd/<hash>-<variant> holds one entry (ab and cd are the
 *    hash's first four hex digits; <variant> is 16 hex digits naming the
 *    Vary-selected fields), DIR/tmp/ holds writes in progress.  No part of a
 *    URL ever becomes a path component.  One process per DIR.
 *  - Variants: several entries of one key (one per distinct variant fields)
 *    live side by side, at most CACHE_STORE_MAX_VARIANTS; a further one
 *    evicts the key's least recently used variant.
 *  - Writes: begin -> append* -> commit or abort.  Nothing is visible until
 *    commit renames a complete, correctly framed file into place; a crash at
 *    any point leaves the old entry or none.  A body that grows past
 *    max_object_size aborts the write by itself (-EFBIG).
 *  - Reads: lookup lists the variants of a key from memory (no I/O);
 *    cache_store_open gives a reader with an fd, the parsed header block and
 *    the body's offset and length; or, for a small entry read before (whole
 *    file within CACHE_STORE_FIRST_READ), a reader of the store's memory
 *    copy of that same entry: no fs call, fd -1, the whole body in
 *    body_head.  The stored key is compared byte for byte:
 *    another URL with the same hash is a miss.  A damaged file is removed and
 *    is a miss.  A committed entry is never modified: an open reader keeps
 *    reading it whatever happens to the name (replace, evict, remove).
 *  - Threads: every function may be called from any thread at once.  The
 *    index lock is never held across I/O.
 *  - Errors: 0 or a count on success, a negative errno on failure; -ENOENT
 *    is a miss.  The store never logs.  OS access only through struct sys
 *    (fs and clock).
 */
#define CACHE_STORE_MAX_SIZE_DEFAULT   ((uint64_t)256 << 20)
#define CACHE_STORE_MAX_OBJECT_DEFAULT ((uint64_t)16 << 20)
#define CACHE_STORE_MAX_VARIANTS       8
/* A hash is 8 to 64 lower-case hex digits (see cache_key_hash()). */
#define CACHE_STORE_HASH_MAX 64
/* Key, variant fields and stored fields together (the header block). */
#define CACHE_STORE_HEADER_MAX (1u << 20)
/*
 * cache_store_open's first read of an entry (one pread): the header block
 * and, for a small entry, its whole body (see cache_store_entry.body_head).
 * 16 KiB: an entry this small is sent from memory in one send, where
 * sendfile's setup cost more than the copy (docs/performance.md).
 */
#define CACHE_STORE_FIRST_READ (16 * 1024)

struct cache_store;
struct cache_store_writer;
struct cache_store_reader;

struct cache_store_opts {
	const char *dir;	  /* the cache directory; created if missing */
	uint64_t max_size;	  /* bytes on disk (headers + bodies) */
	uint64_t max_object_size; /* body bytes of one entry */
	bool fsync;		  /* fsync each entry before its rename */
};

/* dir "cache", 256 MiB, 16 MiB, fsync on. */
void cache_store_opts_default(struct cache_store_opts *opts);

/* What the caller knows about a stored response; kept in its header block. */
struct cache_store_meta {
	int64_t request_time;  /* wall seconds: the request was sent */
	int64_t response_time; /* wall seconds: the response arrived */
	int64_t expires;       /* freshness summary, opaque to the store */
	uint32_t flags;	       /* the caller's bits, opaque to the store */
	uint16_t status;
};

/* One variant of a key as the index knows it (lookup's answer). */
struct cache_store_variant {
	uint64_t id;
	uint64_t size; /* on disk: header block + body */
	uint64_t body_len;
	struct cache_store_meta meta;
	int64_t last_use_ms; /* sys_now_mono_ms() of its last open */
	const char *vary;    /* the variant fields (points into the list) */
	size_t vary_len;
};

struct cache_store_variants {
	size_t n;
	struct cache_store_variant v[CACHE_STORE_MAX_VARIANTS];
	char *blob; /* owns the vary bytes; cache_store_variants_free() */
};

/* An opened entry.  Valid until cache_store_reader_close(). */
struct cache_store_entry {
	int fd; /* read-only; body at body_offset (sendfile); -1: a memory
		 * copy, the whole body is body_head (never sendfile) */
	uint64_t body_offset; /* = the header block's length */
	uint64_t body_len;
	uint64_t variant;
	struct cache_store_meta meta;
	const char *key; /* NUL-terminated */
	const char *vary;
	size_t vary_len;
	const char *fields; /* the stored response fields */
	size_t fields_len;
	/*
	 * The body's first body_head_len bytes, which came with the header
	 * block's read (no more I/O to send them): the whole body when
	 * body_head_len == body_len, as for an entry of up to
	 * CACHE_STORE_FIRST_READ bytes in all.
	 */
	const void *body_head;
	size_t body_head_len;
};

struct cache_store_stats {
	uint64_t entries, bytes, max_size;
	uint64_t evictions;	/* entries evicted for space or variants */
	uint64_t evicted_bytes; /* their size on disk, in total */
	uint64_t damaged;	/* entries found damaged and removed */
	uint64_t recovered;	/* entries indexed by the last open */
	uint64_t tmp_removed;	/* leftovers removed from DIR/tmp by open */
};

/*
 * Open (create) the store at opts->dir: remove DIR/tmp/ leftovers, rebuild
 * the index from the entries' header blocks, drop damaged files, evict down
 * to max_size.
 */
int cache_store_open_dir(struct sys *sys, const struct cache_store_opts *opts,
			 struct cache_store **out);
/* Free the index; files stay.  No writer or reader may still be open. */
void cache_store_close(struct cache_store *st);

/* Change the limits live (a reload); a lower max_size evicts at once. */
void cache_store_set_limits(struct cache_store *st, uint64_t max_size,
			    uint64_t max_object_size);
void cache_store_get_stats(struct cache_store *st,
			   struct cache_store_stats *out);
/*
 * Would a body of body_len bytes fit under max_object_size?  For a body
 * whose length is known before it arrives (Content-Length): the caller
 * decides not to store it before any write begins, instead of writing
 * max_object_size bytes to disk only to drop them.
 */
bool cache_store_fits(struct cache_store *st, uint64_t body_len);

/* The variant id of some variant fields (FNV-1a 64 of the bytes). */
uint64_t cache_store_variant_id(const void *vary, size_t vary_len);

/* ---- writes ---- */

/*
 * Start writing an entry of key (hash in hex) for the variant fields given.
 * The body is appended next; on success the caller ends the writer with
 * exactly one cache_store_write_commit() or cache_store_write_abort().
 * -EINVAL for a bad hash, -EFBIG when the header block is too big.
 */
int cache_store_write_begin(struct cache_store *st, const char *key,
			    const char *hash, const void *vary, size_t vary_len,
			    const struct cache_store_meta *meta,
			    const void *fields, size_t fields_len,
			    struct cache_store_writer **out);
/*
 * Append body bytes (written at once: memory stays bounded).  -EFBIG when
 * the body grows past max_object_size: the write is dropped (its temporary
 * removed) and every later call on it fails the same way.
 */
int cache_store_write_append(struct cache_store_writer *w, const void *buf,
			     size_t len);
/*
 * Finish: body_len must be what was appended (else -EPROTO and nothing is
 * stored).  Renames the entry into place, replacing the same variant.
 * -ESTALE when the key was removed while the write ran.  Frees w.
 */
int cache_store_write_commit(struct cache_store_writer *w, uint64_t body_len);
/* Drop the write and its temporary; frees w.  NULL is a no-op. */
void cache_store_write_abort(struct cache_store_writer *w);

/* ---- reads ---- */

/* The variants of key held in the index (n may be 0).  No I/O. */
int cache_store_lookup(struct cache_store *st, const char *key,
		       const char *hash, struct cache_store_variants *out);
void cache_store_variants_free(struct cache_store_variants *v);

/*
 * Open one variant: -ENOENT on a miss (absent, another key's entry, or a
 * damaged file, which is removed).  Marks the entry recently used.
 */
int cache_store_open(struct cache_store *st, const char *key, const char *hash,
		     uint64_t variant, struct cache_store_reader **out);
const struct cache_store_entry *
cache_store_reader_entry(const struct cache_store_reader *r);
/* pread from the body: off is relative to the body's start. */
ssize_t cache_store_read_body(struct cache_store_reader *r, void *buf,
			      size_t len, uint64_t off);
void cache_store_reader_close(struct cache_store_reader *r);

/*
 * Replace r's entry with one carrying new meta and fields and the same body
 * (a 304's header update): a new file renamed over the old one.  r stays
 * valid and still reads the old entry.
 */
int cache_store_update(struct cache_store *st, struct cache_store_reader *r,
		       const struct cache_store_meta *meta, const void *fields,
		       size_t fields_len);

/* Remove every variant of key (invalidation, PURGE): count removed. */
int cache_store_remove(struct cache_store *st, const char *key,
		       const char *hash);

/* ---- fills in progress (collapsed forwarding) ---- */

struct cache_store_fill;

enum cache_store_fill_role {
	CACHE_STORE_FILL_FILLER = 1, /* fetch it, then cache_store_fill_end() */
	CACHE_STORE_FILL_WAITER = 2, /* someone else fetches: fill_wait() */
};

enum cache_store_fill_result {
	CACHE_STORE_FILL_STORED = 1, /* the filler committed: look up again */
	CACHE_STORE_FILL_NOT_STORED = 2, /* go upstream on your own */
};

/*
 * Join the fill of (hash, variant): the first caller is the FILLER and must
 * call cache_store_fill_end() exactly once; later callers, until then, are
 * WAITERs and must call cache_store_fill_wait() exactly once (timeout 0 to
 * give up at once).  Either way *out is the caller's handle.  -ENOMEM.
 */
int cache_store_fill_begin(struct cache_store *st, const char *hash,
			   uint64_t variant, struct cache_store_fill **out);
/*
 * Wait up to timeout_ms for the filler: STORED, NOT_STORED or -ETIMEDOUT.
 * Releases the handle.  The timeout is measured on the sys wall clock.
 */
int cache_store_fill_wait(struct cache_store *st, struct cache_store_fill *f,
			  int timeout_ms);
/* The filler is done (stored: it committed); wakes every waiter. */
void cache_store_fill_end(struct cache_store *st, struct cache_store_fill *f,
			  bool stored);

#endif
