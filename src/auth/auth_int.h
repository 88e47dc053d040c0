/*
 * auth internals, shared by the sources in src/auth/ and tests/test_auth.c.
 * Not public API.
 */
#ifndef GLASSPROXY_AUTH_INT_H
#define GLASSPROXY_AUTH_INT_H

#include "glassproxy/auth.h"

#include <stdint.h>

struct auth_user {
	char *name; /* NUL-terminated, owned */
	char *hash; /* crypt(3) string, owned */
	unsigned line;
};

struct auth {
	struct auth_user *users; /* sorted by name, for bsearch */
	size_t count;
	/* What an unknown user is hashed against: the file's first entry,
	 * or a built-in SHA-512-crypt hash when the file has none. */
	const char *dummy;
	/* Unique per parsed file, never 0: what a session was verified by. */
	uint64_t generation;
};

/* The kinds of hash a password file can hold, accepted or not. */
enum auth_hash_kind {
	AUTH_HASH_BCRYPT,
	AUTH_HASH_SHA512,
	AUTH_HASH_SHA256,
	AUTH_HASH_YESCRYPT,
	AUTH_HASH_MD5,	   /* $1$ */
	AUTH_HASH_APR1,	   /* $apr1$ */
	AUTH_HASH_SHA1,	   /* {SHA} */
	AUTH_HASH_DES,	   /* 13 characters of [./0-9A-Za-z] */
	AUTH_HASH_UNKNOWN, /* some other $id$ */
	AUTH_HASH_PLAIN,   /* anything else: a password in clear */
};

/* The entry for a user name, or NULL. */
const struct auth_user *auth_find(const struct auth *a, const char *name);

enum auth_hash_kind auth_hash_kind(const char *hash, size_t len);
/* Accepted and well formed?  why gets the reason when not. */
int auth_hash_check(const char *hash, size_t len, char *why, size_t cap);

/* Strict base64 (RFC 4648 section 4, padded, canonical final bits):
 * the decoded length, -EINVAL, or -ENOSPC when it exceeds cap. */
int auth_base64_decode(const char *in, size_t len, unsigned char *out,
		       size_t cap);

/* Equal strings, in time that depends only on the lengths. */
bool auth_equal_ct(const char *a, size_t alen, const char *b, size_t blen);

/* Overwrite secrets in a way the compiler may not drop. */
void auth_wipe(void *p, size_t len);

/* The throttle's key of an address: IPv4 (mapped) whole, IPv6 by /64.
 * -EINVAL for another family. */
int auth_throttle_key(const struct sockaddr *sa, uint8_t key[16]);

#endif
