/*
 * auth: proxy authentication, HTTP Basic (RFC 7617) against an htpasswd
 * file, and a throttle on failed attempts per client address.
 *
 * Contract:
 *  - The password file is parsed from text (auth_parse: pure) or read
 *    through sys_fs (auth_load).  Lines are "user:hash"; '#' starts a
 *    comment line; blank lines, surrounding blanks, CRLF and a UTF-8 BOM
 *    are ignored.  Accepted hashes are those crypt(3) computes that are not
 *    weak: bcrypt ($2y$, $2b$, $2a$), SHA-512-crypt ($6$), SHA-256-crypt
 *    ($5$) and yescrypt ($y$).  Plain text, DES (13 characters), MD5-crypt
 *    ($1$), Apache's $apr1$ and {SHA} are refused.  ONE bad line refuses
 *    the WHOLE file (every bad line is reported first): a proxy that will
 *    not start, or a reload that keeps the old file, is safer than one that
 *    silently locks a user out or keeps a weak hash working.
 *  - Once built, a `struct auth` is immutable: auth_check_basic may run
 *    in any number of threads at once (crypt_r with a per-call state on
 *    the heap).  A reload builds a new one and swaps it in.
 *  - Verification costs the same whether or not the user exists (an
 *    unknown user is hashed against a dummy with the cost of the file's
 *    first entry) and compares hashes in constant time, so timing tells an
 *    attacker neither which users exist nor how much of a hash matched.
 *  - The throttle (auth_throttle_*) counts failures per client address in
 *    fixed windows in a fixed-size table under a mutex; time is an
 *    argument, so it is pure arithmetic to test.  IPv6 clients are counted
 *    per /64, since one host can use a whole /64.
 *  - Basic credentials are only base64: anyone on the client's network can
 *    read them (docs/security.md).
 *
 * Return convention: 0 or a positive count on success, a negative errno
 * value on failure.
 */
#ifndef GLASSPROXY_AUTH_H
#define GLASSPROXY_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "glassproxy/sys.h"

/* Longest user name accepted, in bytes; a user_out of AUTH_USER_MAX + 1
 * always fits. */
#define AUTH_USER_MAX 255
/* Longest password: libxcrypt refuses 512 bytes (CRYPT_MAX_PASSPHRASE_SIZE).
 * bcrypt looks only at the first 72 bytes. */
#define AUTH_PASSWORD_MAX 511
/* Longest decoded "user:password" accepted from a client. */
#define AUTH_CREDENTIALS_MAX 1024
/* Largest password file auth_load reads. */
#define AUTH_FILE_MAX  (16u << 20)
#define AUTH_DIAG_MAX  512
#define AUTH_REALM_MAX 200
/* Room for the whole Proxy-Authenticate value with the longest realm. */
#define AUTH_CHALLENGE_MAX (AUTH_REALM_MAX + 40)

struct auth;

struct auth_diag {
	unsigned line; /* 1-based; 0 when not about one line */
	/* The whole line to log, e.g. "users.htpasswd:3: user 'bob':
	 * MD5-crypt ($1$) is weak and refused; use bcrypt or SHA-512
	 * (htpasswd -B)". */
	char text[AUTH_DIAG_MAX];
};

/* Called once per refused line, in input order.  May be NULL. */
typedef void auth_report_fn(void *arg, const struct auth_diag *diag);

/*
 * Parse password-file text (len bytes, need not be NUL-terminated);
 * source names it in diagnostics.  Returns the number of users and sets
 * *out, or -EINVAL after reporting every bad line (*out is NULL), or
 * -ENOMEM.  A file with no users is valid: nobody gets in.
 */
int auth_parse(const char *text, size_t len, const char *source,
	       auth_report_fn *report, void *arg, struct auth **out);

/* Read path through sys_fs (at most AUTH_FILE_MAX bytes) and parse it.
 * An unreadable file is reported too and returns its error. */
int auth_load(struct sys *sys, const char *path, auth_report_fn *report,
	      void *arg, struct auth **out);

void auth_free(struct auth *a);

size_t auth_user_count(const struct auth *a);

/*
 * Check a Proxy-Authorization field value, "Basic dXNlcjpwYXNz" (scheme
 * case-insensitive; strict base64 with padding; at most
 * AUTH_CREDENTIALS_MAX bytes decoded, AUTH_USER_MAX of user name and
 * AUTH_PASSWORD_MAX of password; no control characters in the user
 * or the password, as RFC 7617 requires).  Returns
 *   0        good credentials; user_out holds the user name
 *   -EACCES  unknown user or wrong password (count it: auth_throttle_fail)
 *   -EINVAL  not Basic, or malformed (answer 407; not counted)
 *   -ENOMEM, -EIO  no memory, or crypt(3) failed (answer 500)
 *   -ENOSPC  good credentials, but user_out is too small for the name
 * user_out (user_cap bytes, AUTH_USER_MAX + 1 is enough) is "" unless 0
 * is returned: a failed attempt's "user" may be a mistyped password and is
 * not for the logs.  Costs one hash computation whenever the header is
 * well formed.
 */
int auth_check_basic(const struct auth *a, const char *header_value, size_t len,
		     char *user_out, size_t user_cap);

/*
 * One client connection's last good credentials, so that a keep-alive
 * connection pays one hash, not one per request (bcrypt at cost 10 is
 * some 100 ms of CPU; Squid keeps verified credentials for
 * credentialsttl).  Zero-initialise it with the connection, and call
 * auth_session_clear() when the connection ends (it wipes the copy).
 * Only the exact header value verified on this connection, against the
 * same loaded file, is taken without hashing: a reload (a new struct
 * auth) makes every connection verify again.  A session belongs to one
 * connection and is used by one thread at a time; it has no lock.
 */
struct auth_session {
	uint64_t generation; /* of the struct auth that verified it; 0 none */
	size_t len;
	char value[AUTH_CREDENTIALS_MAX * 4 / 3 + 16];
	char user[AUTH_USER_MAX + 1];
};

/* auth_check_basic through a connection's session: same results. */
int auth_check_session(const struct auth *a, struct auth_session *s,
		       const char *header_value, size_t len, char *user_out,
		       size_t user_cap);
void auth_session_clear(struct auth_session *s);

/*
 * May realm be sent in a quoted-string?  Non-empty, at most
 * AUTH_REALM_MAX bytes, no '"', '\\' or control characters (UTF-8 bytes
 * are fine).  For checking --auth-realm at start-up.
 */
bool auth_realm_valid(const char *realm);

/*
 * The Proxy-Authenticate value of a 407: `Basic realm="REALM",
 * charset="UTF-8"` (RFC 7617 section 2.1).  Returns the length, -EINVAL
 * for an invalid realm, -ENOSPC when cap is too small.
 */
int auth_challenge(const char *realm, char *dst, size_t cap);

/* ---- failed-attempt throttle ---- */

struct auth_throttle;

/*
 * After max_failures failed attempts from one address within window_ms
 * (a window starts at its first failure), further attempts are refused
 * without hashing until the window ends.  slots bounds the table (rounded
 * up to a multiple of the associativity); when it is full the oldest window
 * is forgotten.  seed keys the address hash, so that a remote client
 * cannot choose addresses that collide.
 */
int auth_throttle_new(unsigned max_failures, int64_t window_ms, size_t slots,
		      uint64_t seed, struct auth_throttle **out);
void auth_throttle_free(struct auth_throttle *t);

/*
 * 0 when addr may try now; otherwise how many milliseconds remain until
 * it may (for a Retry-After, rounded up to seconds).  now_ms: any
 * monotonic clock, the same for every call.
 */
int64_t auth_throttle_check(struct auth_throttle *t,
			    const struct sockaddr *addr, int64_t now_ms);

/* Count one failed attempt (auth_check_basic returned -EACCES). */
void auth_throttle_fail(struct auth_throttle *t, const struct sockaddr *addr,
			int64_t now_ms);

#endif
