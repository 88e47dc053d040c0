/*
 * HTTP Basic (RFC 7617): the Proxy-Authorization value decoded strictly,
 * the password verified with crypt_r and compared in constant time, and
 * the Proxy-Authenticate challenge of a 407.
 */
#include "auth_int.h"

#include "glassproxy/util.h"

#include <crypt.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Base64 of AUTH_CREDENTIALS_MAX bytes, padded. */
#define TOKEN_MAX (((AUTH_CREDENTIALS_MAX + 2) / 3) * 4)

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * Strict: whole quads only, '=' only as the last one or two characters,
 * and the bits a short final quad leaves over must be zero, so that each
 * byte string has exactly one accepted spelling.
 */
int auth_base64_decode(const char *in, size_t len, unsigned char *out,
		       size_t cap)
{
	size_t pad = 0, n = 0;

	if (len == 0 || len % 4 != 0)
		return -EINVAL;
	if (in[len - 1] == '=')
		pad = in[len - 2] == '=' ? 2 : 1;
	if ((len / 4) * 3 - pad > cap)
		return -ENOSPC;
	for (size_t i = 0; i < len; i += 4) {
		bool last = i + 4 == len;
		int v[4];
		for (size_t k = 0; k < 4; k++) {
			bool padding = last && k >= 4 - pad;
			v[k] = padding ? 0
				       : b64_value((unsigned char)in[i + k]);
			if (v[k] < 0)
				return -EINVAL;
		}
		uint32_t q = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
			     (uint32_t)v[2] << 6 | (uint32_t)v[3];
		if (last &&
		    ((pad == 1 && (q & 0xff)) || (pad == 2 && (q & 0xffff))))
			return -EINVAL; /* non-zero leftover bits */
		out[n++] = (unsigned char)(q >> 16);
		if (!last || pad < 2)
			out[n++] = (unsigned char)(q >> 8);
		if (!last || pad < 1)
			out[n++] = (unsigned char)q;
	}
	return (int)n;
}

bool auth_equal_ct(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t n = alen > blen ? alen : blen;
	volatile unsigned char diff = alen != blen;

	/* Every byte is looked at whatever the earlier ones were: no early
	 * exit for a timing attack to measure. */
	for (size_t i = 0; i < n; i++) {
		unsigned char x = i < alen ? (unsigned char)a[i] : 0;
		unsigned char y = i < blen ? (unsigned char)b[i] : 0;
		diff |= (unsigned char)(x ^ y);
	}
	return diff == 0;
}

static bool has_ctl(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return true;
	return false;
}

/*
 * "Basic" 1*SP token68, surrounding blanks ignored: the token's span, or
 * -EINVAL for another scheme or shape.
 */
static int basic_token(const char *v, size_t len, const char **tok,
		       size_t *tlen)
{
	util_trim(&v, &len);
	if (len < 6 || !util_ieq(v, 5, "Basic", 5) || v[5] != ' ')
		return -EINVAL;
	v += 6;
	len -= 6;
	while (len > 0 && v[0] == ' ')
		v++, len--;
	if (len == 0 || len > TOKEN_MAX)
		return -EINVAL;
	*tok = v;
	*tlen = len;
	return 0;
}

/*
 * Hash pass with the setting of hash and compare.  The crypt_data is
 * about 32 KiB: on the heap, one per call, so that threads never share
 * one and a worker's stack stays small.
 */
static int verify(const char *pass, const char *hash)
{
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	const char *out;
	int rc;

	if (cd == NULL)
		return -ENOMEM;
	out = crypt_r(pass, hash, cd);
	if (out == NULL || out[0] == '*')
		rc = -EIO; /* the hash was checked when the file was read */
	else
		rc = auth_equal_ct(out, strlen(out), hash, strlen(hash))
			     ? 0
			     : -EACCES;
	auth_wipe(cd, sizeof(*cd));
	free(cd);
	return rc;
}

/* Split decoded "user:password" in place; -EINVAL if malformed. */
static int split_credentials(char *cred, size_t len, char **pass)
{
	char *colon = memchr(cred, ':', len);
	size_t ulen;

	if (colon == NULL)
		return -EINVAL;
	ulen = (size_t)(colon - cred);
	/* RFC 7617: no control characters in either, so no NUL that would
	 * cut the password short for crypt_r either. */
	if (ulen == 0 || ulen > AUTH_USER_MAX ||
	    len - ulen - 1 > AUTH_PASSWORD_MAX || has_ctl(cred, len))
		return -EINVAL;
	*colon = '\0';
	cred[len] = '\0';
	*pass = colon + 1;
	return 0;
}

int auth_check_basic(const struct auth *a, const char *header_value, size_t len,
		     char *user_out, size_t user_cap)
{
	unsigned char cred[AUTH_CREDENTIALS_MAX + 1];
	const struct auth_user *u;
	const char *tok;
	char *pass;
	size_t tlen;
	int n, rc;

	if (user_cap > 0)
		user_out[0] = '\0';
	if (a == NULL || header_value == NULL ||
	    basic_token(header_value, len, &tok, &tlen) < 0)
		return -EINVAL;
	n = auth_base64_decode(tok, tlen, cred, AUTH_CREDENTIALS_MAX);
	if (n < 0)
		return -EINVAL;
	rc = split_credentials((char *)cred, (size_t)n, &pass);
	if (rc < 0)
		goto wipe;
	u = auth_find(a, (const char *)cred);
	/* An unknown user costs one hash too, and then fails. */
	rc = verify(pass, u ? u->hash : a->dummy);
	if (rc == 0 && u == NULL)
		rc = -EACCES;
	if (rc == 0 && util_copy(user_out, user_cap, (const char *)cred,
				 strlen((const char *)cred)) < 0)
		rc = -ENOSPC;
wipe:
	auth_wipe(cred, sizeof(cred));
	return rc;
}

int auth_check_session(const struct auth *a, struct auth_session *s,
		       const char *header_value, size_t len, char *user_out,
		       size_t user_cap)
{
	const char *v = header_value;
	size_t vlen = len;
	int rc;

	if (a == NULL || s == NULL || header_value == NULL)
		return auth_check_basic(a, header_value, len, user_out,
					user_cap);
	util_trim(&v, &vlen);
	if (s->generation == a->generation && vlen <= sizeof(s->value) &&
	    auth_equal_ct(v, vlen, s->value, s->len))
		return util_copy(user_out, user_cap, s->user, strlen(s->user)) <
				       0
			       ? -ENOSPC
			       : 0;
	auth_session_clear(s);
	rc = auth_check_basic(a, header_value, len, s->user, sizeof(s->user));
	if (rc != 0) {
		if (user_cap > 0)
			user_out[0] = '\0';
		auth_session_clear(s);
		return rc;
	}
	if (vlen <= sizeof(s->value)) {
		memcpy(s->value, v, vlen);
		s->len = vlen;
		s->generation = a->generation;
	}
	return util_copy(user_out, user_cap, s->user, strlen(s->user)) < 0
		       ? -ENOSPC
		       : 0;
}

void auth_session_clear(struct auth_session *s)
{
	if (!s)
		return;
	/*
	 * Only what was written: the credentials (len bytes) and the user
	 * name up to its NUL (every write of it ends in one, and every write
	 * is preceded by a clear).  Wiping all 1.5 KB for each connection,
	 * authenticated or not, was 12 % of a short connection's
	 * instructions (make bench-check, noka).
	 */
	auth_wipe(s->value, s->len);
	auth_wipe(s->user, strnlen(s->user, sizeof(s->user)));
	s->len = 0;
	s->generation = 0;
}

bool auth_realm_valid(const char *realm)
{
	size_t len;

	if (realm == NULL)
		return false;
	len = strlen(realm);
	if (len == 0 || len > AUTH_REALM_MAX || has_ctl(realm, len))
		return false;
	/* Inside a quoted-string: no quote, and no backslash, which a client
	 * would read as an escape. */
	return strpbrk(realm, "\"\\") == NULL;
}

int auth_challenge(const char *realm, char *dst, size_t cap)
{
	if (!auth_realm_valid(realm)) {
		if (cap > 0)
			dst[0] = '\0';
		return -EINVAL;
	}
	return util_format(dst, cap, "Basic realm=\"%s\", charset=\"UTF-8\"",
			   realm);
}
