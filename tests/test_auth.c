/*
 * Unit tests of auth: the password-file parser (every hash kind accepted
 * or refused, malformed lines, the fixtures in fixtures/auth/), strict
 * base64, the Basic header with good and bad passwords for every accepted
 * hash kind, the constant-time compare, the challenge, and the throttle's
 * arithmetic on a clock the test passes in.
 */
#include "sys_mock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_int.h"
#include "glassproxy/util.h"

/* ---- helpers ---- */

#define MAX_DIAGS 32

struct diags {
	unsigned n;
	char text[MAX_DIAGS][AUTH_DIAG_MAX];
};

static void collect(void *arg, const struct auth_diag *d)
{
	struct diags *ds = arg;

	if (ds->n < MAX_DIAGS)
		memcpy(ds->text[ds->n], d->text, sizeof(d->text));
	ds->n++;
}

static struct auth *parse_ok(const char *text, int users)
{
	struct diags ds = {0};
	struct auth *a = NULL;

	assert_int_equal(auth_parse(text, strlen(text), "t", collect, &ds, &a),
			 users);
	for (unsigned i = 0; i < ds.n && i < MAX_DIAGS; i++)
		print_message("unexpected: %s\n", ds.text[i]);
	assert_int_equal(ds.n, 0);
	assert_non_null(a);
	return a;
}

/* "Basic " + base64 of s. */
static const char *basic(const char *s, char *buf, size_t cap)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
				  "qrstuvwxyz0123456789+/";
	size_t len = strlen(s), o = 6;

	assert_true(cap > 6 + (len + 2) / 3 * 4);
	memcpy(buf, "Basic ", 6);
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)(unsigned char)s[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)(unsigned char)s[i + 1] << 8;
		if (i + 2 < len)
			v |= (unsigned char)s[i + 2];
		buf[o++] = tab[v >> 18 & 63];
		buf[o++] = tab[v >> 12 & 63];
		buf[o++] = i + 1 < len ? tab[v >> 6 & 63] : '=';
		buf[o++] = i + 2 < len ? tab[v & 63] : '=';
	}
	buf[o] = '\0';
	return buf;
}

static int check(const struct auth *a, const char *credentials, char *user)
{
	char hdr[2048], scratch[AUTH_USER_MAX + 1];

	basic(credentials, hdr, sizeof(hdr));
	return auth_check_basic(a, hdr, strlen(hdr), user ? user : scratch,
				AUTH_USER_MAX + 1);
}

static struct auth *load_fixture(const char *path, int want, struct diags *ds)
{
	struct auth *a = NULL;

	assert_int_equal(auth_load(sys_posix(), path, collect, ds, &a), want);
	return a;
}

/* ---- the password file ---- */

static void test_fixture_every_accepted_kind(void **state)
{
	static const char *users[] = {
		"alice", "bob",	  "carol", "dave",
		"erin",	 "frank", "gina",  "h\xc3\xa9l\xc3\xa8ne"};
	struct diags ds = {0};
	struct auth *a = load_fixture("fixtures/auth/good.htpasswd", 8, &ds);
	char user[AUTH_USER_MAX + 1], cred[600];

	(void)state;
	assert_int_equal(ds.n, 0);
	assert_int_equal(auth_user_count(a), 8);
	for (size_t i = 0; i < UTIL_ARRAY_LEN(users); i++) {
		/* the password is "<user> pw" */
		util_format(cred, sizeof(cred), "%s:%s pw", users[i], users[i]);
		int rc = check(a, cred, user);
		if (rc != 0)
			print_message("user %s: %d\n", users[i], rc);
		assert_int_equal(rc, 0);
		assert_string_equal(user, users[i]);
		/* one byte off, longer, shorter, empty: refused */
		util_format(cred, sizeof(cred), "%s:%s pX", users[i], users[i]);
		assert_int_equal(check(a, cred, user), -EACCES);
		assert_string_equal(user, "");
		util_format(cred, sizeof(cred), "%s:%s pw ", users[i],
			    users[i]);
		assert_int_equal(check(a, cred, user), -EACCES);
		util_format(cred, sizeof(cred), "%s:%s p", users[i], users[i]);
		assert_int_equal(check(a, cred, user), -EACCES);
		util_format(cred, sizeof(cred), "%s:", users[i]);
		assert_int_equal(check(a, cred, user), -EACCES);
	}
	/* another user's password does not do */
	assert_int_equal(check(a, "alice:bob pw", user), -EACCES);
	/* user names are case-sensitive, as in Apache and Squid */
	assert_int_equal(check(a, "Alice:alice pw", user), -EACCES);
	auth_free(a);
}

static void test_fixture_weak_file_is_refused_whole(void **state)
{
	static const char *want[] = {
		"fixtures/auth/weak.htpasswd:2: user 'plain': a plain-text "
		"password is refused; use bcrypt or SHA-512 (htpasswd -B)",
		"fixtures/auth/weak.htpasswd:3: user 'des': DES crypt (or a "
		"13-character plain-text password) is weak and refused; use "
		"bcrypt or SHA-512 (htpasswd -B)",
		"fixtures/auth/weak.htpasswd:4: user 'md5': MD5-crypt ($1$) is "
		"weak and refused; use bcrypt or SHA-512 (htpasswd -B)",
		"fixtures/auth/weak.htpasswd:5: user 'apr1': Apache MD5 "
		"($apr1$) is weak and refused; use bcrypt or SHA-512 "
		"(htpasswd -B)",
		"fixtures/auth/weak.htpasswd:6: user 'sha1': Apache {SHA} "
		"(unsalted SHA-1) is weak and refused; use bcrypt or SHA-512 "
		"(htpasswd -B)",
		"fixtures/auth/weak.htpasswd:7: user 'unknown': this hash type "
		"is not supported; use bcrypt or SHA-512 (htpasswd -B)",
		"fixtures/auth/weak.htpasswd:8: user 'short': malformed bcrypt "
		"hash (want $2y$NN$ and 53 characters); use bcrypt or SHA-512 "
		"(htpasswd -B)",
		"fixtures/auth/weak.htpasswd:9: user 'badcost': malformed "
		"bcrypt hash (want $2y$NN$ and 53 characters); use bcrypt or "
		"SHA-512 (htpasswd -B)",
		"fixtures/auth/weak.htpasswd:10: user 'nohash': no password "
		"hash",
		"fixtures/auth/weak.htpasswd:11: no ':' between the user name "
		"and the hash",
		"fixtures/auth/weak.htpasswd:12: empty user name",
		"fixtures/auth/weak.htpasswd:13: user 'digest': a second ':' "
		"(an htdigest file? want user:hash)",
		"fixtures/auth/weak.htpasswd:15: user 'good' appears again "
		"(first at line 14)",
	};
	struct diags ds = {0};
	struct auth *a =
		load_fixture("fixtures/auth/weak.htpasswd", -EINVAL, &ds);

	(void)state;
	assert_null(a);
	for (unsigned i = 0; i < ds.n && i < MAX_DIAGS; i++)
		print_message("  %s\n", ds.text[i]);
	assert_int_equal(ds.n, UTIL_ARRAY_LEN(want));
	for (size_t i = 0; i < UTIL_ARRAY_LEN(want); i++)
		assert_string_equal(ds.text[i], want[i]);
}

/* pattern with every "%s" replaced by with. */
static void subst(char *dst, size_t cap, const char *pattern, const char *with)
{
	size_t o = 0, wlen = strlen(with);

	for (const char *p = pattern; *p; p++) {
		if (p[0] == '%' && p[1] == 's') {
			assert_true(o + wlen < cap);
			memcpy(dst + o, with, wlen);
			o += wlen;
			p++;
			continue;
		}
		assert_true(o + 1 < cap);
		dst[o++] = *p;
	}
	dst[o] = '\0';
}

static void test_parse_line_table(void **state)
{
	static const char sha512[] =
		"$6$0K3egOc8ws2Cv95R$063QE0DnCdfel8rZ0k3DL0WPS7VCHHxoAtEu8UX"
		"ybQZRTcE8PPeFJZwW6Ozt4XYoEhi2uSqnXz0yEOl25nICv/";
	static const struct {
		const char *line; /* "%s" is the SHA-512 hash */
		int rc;		  /* users, or -EINVAL */
		const char *diag; /* a piece of the diagnostic */
	} cases[] = {
		{"u:%s", 1, NULL},
		{"  u:%s  ", 1, NULL},
		{"u:%s\r\n", 1, NULL},
		{"# u:%s", 0, NULL},
		{"\n\n   \n", 0, NULL},
		{"", 0, NULL},
		{"user with space:%s", 1, NULL},
		{"u: %s", -EINVAL, "a blank in the hash"},
		{"u:%s #comment", -EINVAL, "a blank in the hash"},
		{"u:%s\t#comment", -EINVAL, "a blank in the hash"},
		{"u\x01:%s", -EINVAL, "control character"},
		{"u:x:%s", -EINVAL, "a second ':'"},
		{"u:%s.", -EINVAL, "malformed SHA-512-crypt"},
		{"u:$6$a$b|c", -EINVAL, "a hash may not contain '|'"},
		{"u:%sx", -EINVAL, "malformed SHA-512-crypt"},
		{"u:$6$rounds=1000$salt$short", -EINVAL, "malformed"},
		{"u:$5$abc$short", -EINVAL, "malformed crypt hash"},
		{"u:$y$j9T$$", -EINVAL, "malformed crypt hash"},
		{"u:$2x$05$/"
		 "gyxYfowxOTKEtKq8TGNTeXCZ6XZ3kvM6I2eGPIV.3bKOTPPGf4xm",
		 -EINVAL, "not supported"},
		{"u:$2y$03$/"
		 "gyxYfowxOTKEtKq8TGNTeXCZ6XZ3kvM6I2eGPIV.3bKOTPPGf4xm",
		 -EINVAL, "bcrypt cost out of range"},
		{"u:$2y$32$/"
		 "gyxYfowxOTKEtKq8TGNTeXCZ6XZ3kvM6I2eGPIV.3bKOTPPGf4xm",
		 -EINVAL, "bcrypt cost out of range"},
		{"u:$2y$31$/"
		 "gyxYfowxOTKEtKq8TGNTeXCZ6XZ3kvM6I2eGPIV.3bKOTPPGf4xm",
		 1, NULL},
		{"u:$y$$Z/z7tEEIidVIxynswaBHd/$1NgpAAktDVXzRqmAugTTwt3TEkxup4fa"
		 "/S0VUOeNeD7",
		 -EINVAL, "yescrypt hash without parameters"},
		{"u:$6$rounds=5000$", -EINVAL, "malformed SHA-512-crypt"},
		/* parameters only crypt(3) itself can judge */
		{"u:$6$rounds=abc$salt$063QE0DnCdfel8rZ0k3DL0WPS7VCHHxoAtEu8UX"
		 "ybQZRTcE8PPeFJZwW6Ozt4XYoEhi2uSqnXz0yEOl25nICv/",
		 -EINVAL, "rounds= out of range"},
		{"u:$6$rounds=0$salt$063QE0DnCdfel8rZ0k3DL0WPS7VCHHxoAtEu8UX"
		 "ybQZRTcE8PPeFJZwW6Ozt4XYoEhi2uSqnXz0yEOl25nICv/",
		 -EINVAL, "rounds= out of range"},
		{"u:$5$rounds=999$salt$fSiQxHz1yBo2Plx.u.VmFFTfLUzu.HzZwhBQUCp"
		 "jkX1",
		 -EINVAL, "rounds= out of range"},
		{"u:$5$rounds=01000$salt$fSiQxHz1yBo2Plx.u.VmFFTfLUzu.HzZwhBQU"
		 "CpjkX1",
		 -EINVAL, "rounds= out of range"},
		{"u:$6$rounds=1000000000$salt$063QE0DnCdfel8rZ0k3DL0WPS7VCHHxoA"
		 "tEu8UXybQZRTcE8PPeFJZwW6Ozt4XYoEhi2uSqnXz0yEOl25nICv/",
		 -EINVAL, "rounds= out of range"},
		/* yescrypt parameters only crypt(3) itself can judge */
		{"u:$y$zzzz$Z/z7tEEIidVIxynswaBHd/$1NgpAAktDVXzRqmAugTTwt3TEkxu"
		 "p4fa/S0VUOeNeD7",
		 -EINVAL, "crypt(3) refuses this hash's parameters"},
		{"u:$y$j$Z/z7tEEIidVIxynswaBHd/$1NgpAAktDVXzRqmAugTTwt3TEkxup4f"
		 "a/S0VUOeNeD7",
		 -EINVAL, "crypt(3) refuses this hash's parameters"},
		{"u:$6$rounds=1000$salt$063QE0DnCdfel8rZ0k3DL0WPS7VCHHxoAtEu8U"
		 "XybQZRTcE8PPeFJZwW6Ozt4XYoEhi2uSqnXz0yEOl25nICv/",
		 1, NULL},
		{"u:$6$x$", -EINVAL, "malformed SHA-512-crypt"},
		{"u:*", -EINVAL, "plain-text"},
		{"u:!%s", -EINVAL, "plain-text"},
		{"u:%s\nu:%s", -EINVAL, "appears again (first at line 1)"},
	};

	(void)state;
	for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++) {
		char text[1024];
		struct diags ds = {0};
		struct auth *a = NULL;
		subst(text, sizeof(text), cases[i].line, sha512);
		int rc = auth_parse(text, strlen(text), "t", collect, &ds, &a);
		if (rc != cases[i].rc ||
		    (cases[i].diag &&
		     (ds.n == 0 || !strstr(ds.text[0], cases[i].diag))))
			print_message("case %zu '%s': %d, %s\n", i,
				      cases[i].line, rc,
				      ds.n ? ds.text[0] : "no diag");
		assert_int_equal(rc, cases[i].rc);
		if (cases[i].diag) {
			assert_null(a);
			assert_int_equal(ds.n, 1);
			assert_non_null(strstr(ds.text[0], cases[i].diag));
		} else {
			assert_int_equal(ds.n, 0);
			assert_int_equal(auth_user_count(a), (size_t)rc);
		}
		auth_free(a);
	}
}

static void test_parse_limits_and_nul(void **state)
{
	char text[600];
	struct diags ds = {0};
	struct auth *a = (struct auth *)1;

	(void)state;
	/* a NUL inside a line */
	memcpy(text, "u\0x:y\n", 6);
	assert_int_equal(auth_parse(text, 6, "t", collect, &ds, &a), -EINVAL);
	assert_null(a);
	assert_string_equal(ds.text[0], "t:1: a NUL byte");
	/* a user name of 256 bytes */
	memset(text, 'u', 256);
	util_format(text + 256, sizeof(text) - 256, ":%s",
		    "$5$k23TqAkRjthX72wK$fSiQxHz1yBo2Plx.u.VmFFTfLUzu.HzZwhBQU"
		    "CpjkX1");
	ds.n = 0;
	assert_int_equal(auth_parse(text, strlen(text), "t", collect, &ds, &a),
			 -EINVAL);
	assert_string_equal(ds.text[0], "t:1: user name longer than 255 bytes");
	/* 255 is fine */
	ds.n = 0;
	assert_int_equal(
		auth_parse(text + 1, strlen(text + 1), "t", collect, &ds, &a),
		1);
	auth_free(a);
	/* no report function: still refused */
	assert_int_equal(auth_parse("x", 1, NULL, NULL, NULL, &a), -EINVAL);
	assert_null(a);
	assert_int_equal(auth_parse(NULL, 1, "t", NULL, NULL, &a), -EINVAL);
	/* an empty file is valid and lets nobody in */
	a = parse_ok("", 0);
	assert_int_equal(check(a, "alice:alice pw", NULL), -EACCES);
	auth_free(a);
}

static void test_hash_kinds(void **state)
{
	static const struct {
		const char *hash;
		enum auth_hash_kind kind;
	} cases[] = {
		{"$2y$05$x", AUTH_HASH_BCRYPT},
		{"$2b$05$x", AUTH_HASH_BCRYPT},
		{"$2a$05$x", AUTH_HASH_BCRYPT},
		{"$6$x", AUTH_HASH_SHA512},
		{"$5$x", AUTH_HASH_SHA256},
		{"$y$x", AUTH_HASH_YESCRYPT},
		{"$1$x", AUTH_HASH_MD5},
		{"$apr1$x", AUTH_HASH_APR1},
		{"{SHA}x", AUTH_HASH_SHA1},
		{"abiQ6Ep3EYTHc", AUTH_HASH_DES},
		{"$7$x", AUTH_HASH_UNKNOWN},
		{"$gy$x", AUTH_HASH_UNKNOWN},
		{"abiQ6Ep3EYTH", AUTH_HASH_PLAIN},
		{"abiQ6Ep3EYTH!", AUTH_HASH_PLAIN},
		{"secret", AUTH_HASH_PLAIN},
		{"", AUTH_HASH_PLAIN},
	};

	(void)state;
	for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++)
		assert_int_equal(
			auth_hash_kind(cases[i].hash, strlen(cases[i].hash)),
			cases[i].kind);
}

static void test_load_through_sys_fs(void **state)
{
	struct sys *sys = sys_mock();
	struct diags ds = {0};
	struct auth *a;
	static const char text[] = "u:$5$k23TqAkRjthX72wK$fSiQxHz1yBo2Plx.u."
				   "VmFFTfLUzu.HzZwhBQUCpjkX1\n";

	(void)state;
	expect_string(mock_open, path, "/etc/gp/users");
	will_return(mock_open, 9);
	will_read(text, strlen(text));
	will_read(NULL, 0);
	assert_int_equal(auth_load(sys, "/etc/gp/users", collect, &ds, &a), 1);
	assert_true(sys_mock_is_closed(9));
	assert_int_equal(check(a, "u:erin pw", NULL), 0);
	auth_free(a);

	expect_string(mock_open, path, "/nope");
	will_return(mock_open, -ENOENT);
	assert_int_equal(auth_load(sys, "/nope", collect, &ds, &a), -ENOENT);
	assert_null(a);
	assert_int_equal(ds.n, 1);
	assert_string_equal(ds.text[0], "/nope: cannot read the password "
					"file: No such file or directory");
}

/* ---- base64 ---- */

static void test_base64_strict(void **state)
{
	static const struct {
		const char *in;
		int rc;
		const char *out;
	} cases[] = {
		{"YQ==", 1, "a"},
		{"YWI=", 2, "ab"},
		{"YWJj", 3, "abc"},
		{"dXNlcjpwYXNz", 9, "user:pass"},
		{"Pz8/", 3, "???"},
		{"Pj4+", 3, ">>>"},
		{"", -EINVAL, NULL},
		{"YQ", -EINVAL, NULL},	     /* unpadded */
		{"YQ=", -EINVAL, NULL},	     /* short */
		{"YR==", -EINVAL, NULL},     /* leftover bits set */
		{"YWJ=", -EINVAL, NULL},     /* leftover bits set */
		{"Y===", -EINVAL, NULL},     /* three pads */
		{"====", -EINVAL, NULL},     /* all padding */
		{"YQ==YQ==", -EINVAL, NULL}, /* padding inside */
		{"Y=Q=", -EINVAL, NULL},
		{"YW Jj", -EINVAL, NULL},  /* blank */
		{"YWJj\n", -EINVAL, NULL}, /* newline */
		{"YW-j", -EINVAL, NULL},   /* base64url */
		{"YW_j", -EINVAL, NULL},
		{"YWJ\0", -EINVAL, NULL},
	};

	(void)state;
	for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++) {
		unsigned char out[16];
		size_t len = strlen(cases[i].in);
		if (i == UTIL_ARRAY_LEN(cases) - 1)
			len = 4; /* with the NUL */
		int rc = auth_base64_decode(cases[i].in, len, out, sizeof(out));
		if (rc != cases[i].rc)
			print_message("'%s': %d\n", cases[i].in, rc);
		assert_int_equal(rc, cases[i].rc);
		if (rc > 0)
			assert_memory_equal(out, cases[i].out, (size_t)rc);
	}
	unsigned char small[2];
	assert_int_equal(auth_base64_decode("YWJj", 4, small, 2), -ENOSPC);
	assert_int_equal(auth_base64_decode("YWI=", 4, small, 2), 2);
}

/* ---- the Basic header ---- */

static const char alice_line[] =
	"alice:$2y$05$/gyxYfowxOTKEtKq8TGNTeXCZ6XZ3kvM6I2eGPIV.3bKOTPPGf4xm\n";

static void test_basic_header_shapes(void **state)
{
	static const struct {
		const char *header;
		int rc;
	} cases[] = {
		/* "alice:alice pw" */
		{"Basic YWxpY2U6YWxpY2UgcHc=", 0},
		{"basic YWxpY2U6YWxpY2UgcHc=", 0},
		{"BASIC YWxpY2U6YWxpY2UgcHc=", 0},
		{"Basic    YWxpY2U6YWxpY2UgcHc=", 0},
		{"  Basic YWxpY2U6YWxpY2UgcHc=\t ", 0},
		{"Basic YWxpY2U6YWxpY2UgcHc", -EINVAL},	   /* unpadded */
		{"Basic YWxpY2U6YWxpY2UgcHc= x", -EINVAL}, /* trailing */
		{"Basic\tYWxpY2U6YWxpY2UgcHc=", -EINVAL},
		{"BasicYWxpY2U6YWxpY2UgcHc=", -EINVAL},
		{"Bearer YWxpY2U6YWxpY2UgcHc=", -EINVAL},
		{"Digest username=\"alice\"", -EINVAL},
		{"Basic", -EINVAL},
		{"Basic ", -EINVAL},
		{"", -EINVAL},
		{"Basic YWxpY2U=", -EINVAL},		 /* "alice": no colon */
		{"Basic OmFsaWNlIHB3", -EINVAL},	 /* ":alice pw" */
		{"Basic YWxpY2U6YWxpY2UKcHc=", -EINVAL}, /* LF in password */
		{"Basic YWxpY2U6YWxpY2UAcHc=", -EINVAL}, /* NUL in password */
		{"Basic YWxpY2U6YWxpY2Uf", -EINVAL},	 /* 0x1f */
		{"Basic YWxpY2U6f3B3", -EINVAL},	 /* DEL */
		{"Basic YWxpY2U6YWxpY2U=", -EACCES},	 /* "alice:alice" */
		{"Basic Ym9iOmFsaWNlIHB3", -EACCES},	 /* unknown user */
		/* "alice:alice pw:x": the password may hold ':' */
		{"Basic YWxpY2U6YWxpY2UgcHc6eA==", -EACCES},
	};
	struct auth *a = parse_ok(alice_line, 1);

	(void)state;
	for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++) {
		char user[AUTH_USER_MAX + 1] = "junk";
		int rc = auth_check_basic(a, cases[i].header,
					  strlen(cases[i].header), user,
					  sizeof(user));
		if (rc != cases[i].rc)
			print_message("'%s': %d\n", cases[i].header, rc);
		assert_int_equal(rc, cases[i].rc);
		assert_string_equal(user, rc == 0 ? "alice" : "");
	}
	/* len counts, not a NUL: the same value cut one byte short */
	const char *h = "Basic YWxpY2U6YWxpY2UgcHc=";
	assert_int_equal(auth_check_basic(a, h, strlen(h) - 1, NULL, 0),
			 -EINVAL);
	assert_int_equal(auth_check_basic(NULL, h, strlen(h), NULL, 0),
			 -EINVAL);
	/* a user_out too small for the name */
	char tiny[3];
	assert_int_equal(auth_check_basic(a, h, strlen(h), tiny, sizeof(tiny)),
			 -ENOSPC);
	auth_free(a);
}

static void test_basic_size_limits(void **state)
{
	char cred[AUTH_CREDENTIALS_MAX + 8], user[AUTH_USER_MAX + 1];
	struct auth *a = parse_ok(alice_line, 1);

	(void)state;
	/* a password of AUTH_PASSWORD_MAX bytes: well formed, wrong */
	memcpy(cred, "alice:", 6);
	memset(cred + 6, 'p', AUTH_PASSWORD_MAX);
	cred[6 + AUTH_PASSWORD_MAX] = '\0';
	assert_int_equal(check(a, cred, user), -EACCES);
	/* one byte more: refused unhashed (crypt(3) would refuse it) */
	cred[6 + AUTH_PASSWORD_MAX] = 'p';
	cred[7 + AUTH_PASSWORD_MAX] = '\0';
	assert_int_equal(check(a, cred, user), -EINVAL);
	/* the longest user name and password fit the limit ... */
	memset(cred, 'u', AUTH_USER_MAX);
	cred[AUTH_USER_MAX] = ':';
	memset(cred + AUTH_USER_MAX + 1, 'p', AUTH_PASSWORD_MAX);
	cred[AUTH_USER_MAX + 1 + AUTH_PASSWORD_MAX] = '\0';
	assert_int_equal(check(a, cred, user), -EACCES);
	/* ... and more than AUTH_CREDENTIALS_MAX bytes never decode */
	memset(cred, 'p', AUTH_CREDENTIALS_MAX + 1);
	memcpy(cred, "alice:", 6);
	cred[AUTH_CREDENTIALS_MAX + 1] = '\0';
	assert_int_equal(check(a, cred, user), -EINVAL);
	/* a 256-byte user name cannot be one of ours */
	memset(cred, 'u', 256);
	memcpy(cred + 256, ":pw", 4);
	assert_int_equal(check(a, cred, user), -EINVAL);
	auth_free(a);
}

/* Threads verifying at once (for TSan): crypt_r state is per call. */
static void *verify_thread(void *arg)
{
	const struct auth *a = arg;

	for (int i = 0; i < 4; i++) {
		assert_int_equal(check(a, "alice:alice pw", NULL), 0);
		assert_int_equal(check(a, "alice:wrong", NULL), -EACCES);
	}
	return NULL;
}

static void test_basic_concurrent(void **state)
{
	struct auth *a = parse_ok(alice_line, 1);
	pthread_t th[4];

	(void)state;
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, verify_thread, a),
				 0);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	auth_free(a);
}

static void test_unknown_user_is_hashed_against_the_first_entry(void **state)
{
	struct auth *a =
		parse_ok("zed:$5$k23TqAkRjthX72wK$fSiQxHz1yBo2Plx.u.VmFFTfLUzu."
			 "HzZwhBQUCpjkX1\n"
			 "alice:$2y$05$/gyxYfowxOTKEtKq8TGNTeXCZ6XZ3kvM6I2eGPIV"
			 ".3bKOTPPGf4xm\n",
			 2);

	(void)state;
	/* the first line's hash, not the first in sorted order */
	assert_true(strncmp(a->dummy, "$5$k23T", 7) == 0);
	/* knowing the dummy's password does not let an unknown user in */
	assert_int_equal(check(a, "nobody:erin pw", NULL), -EACCES);
	assert_int_equal(check(a, "zed:erin pw", NULL), 0);
	auth_free(a);
	/* no entries: the built-in dummy is a hash crypt(3) computes, so an
	 * attempt is -EACCES, never -EIO */
	a = parse_ok("# nobody\n", 0);
	assert_true(strncmp(a->dummy, "$6$", 3) == 0);
	assert_int_equal(check(a, "x:y", NULL), -EACCES);
	auth_free(a);
}

static void test_session_skips_the_hash_for_the_same_value(void **state)
{
	struct auth *a = parse_ok(alice_line, 1), *b;
	struct auth_session sess = {0};
	char user[AUTH_USER_MAX + 1], hdr[128];
	const char *good = "Basic YWxpY2U6YWxpY2UgcHc="; /* alice:alice pw */

	(void)state;
	assert_int_equal(
		auth_check_session(a, &sess, good, strlen(good), user, 256), 0);
	assert_string_equal(user, "alice");
	/* Spoil the stored hash: only a lookup without hashing still says
	 * yes, so the second answer proves the session was used. */
	a->users[0].hash[10] ^= 1;
	assert_int_equal(
		auth_check_session(a, &sess, good, strlen(good), user, 256), 0);
	assert_string_equal(user, "alice");
	/* surrounding blanks do not matter; one byte more does */
	util_format(hdr, sizeof(hdr), "  %s ", good);
	assert_int_equal(
		auth_check_session(a, &sess, hdr, strlen(hdr), user, 256), 0);
	util_format(hdr, sizeof(hdr), "%sx", good);
	assert_int_equal(
		auth_check_session(a, &sess, hdr, strlen(hdr), user, 256),
		-EINVAL);
	assert_string_equal(user, "");
	/* a failure forgets the good value: now it is hashed, and fails */
	assert_int_equal(
		auth_check_session(a, &sess, good, strlen(good), user, 256),
		-EACCES);
	a->users[0].hash[10] ^= 1;
	assert_int_equal(
		auth_check_session(a, &sess, good, strlen(good), user, 256), 0);
	/* a reloaded file is a new generation: verified again */
	b = parse_ok("alice:$5$k23TqAkRjthX72wK$fSiQxHz1yBo2Plx.u.VmFFTfLUzu."
		     "HzZwhBQUCpjkX1\n",
		     1);
	assert_int_not_equal(a->generation, b->generation);
	assert_int_equal(
		auth_check_session(b, &sess, good, strlen(good), user, 256),
		-EACCES);
	auth_session_clear(&sess);
	assert_int_equal(sess.generation, 0);
	assert_int_equal(sess.len, 0);
	assert_int_equal(sess.user[0], 0);
	auth_free(a);
	auth_free(b);
}

static void test_equal_ct(void **state)
{
	(void)state;
	assert_true(auth_equal_ct("", 0, "", 0));
	assert_true(auth_equal_ct("abc", 3, "abc", 3));
	assert_false(auth_equal_ct("abc", 3, "xbc", 3));
	assert_false(auth_equal_ct("abc", 3, "abx", 3));
	assert_false(auth_equal_ct("abc", 3, "ab", 2));
	assert_false(auth_equal_ct("ab", 2, "abc", 3));
	assert_false(auth_equal_ct("", 0, "a", 1));
	/* a prefix that matches and then a NUL is not equality */
	assert_false(auth_equal_ct("ab\0", 3, "ab", 2));
	assert_false(auth_equal_ct("\x80", 1, "\x00", 1));
	/* bytes that differ only in the top bit */
	assert_false(auth_equal_ct("\xff", 1, "\x7f", 1));
}

/* ---- challenge ---- */

static void test_challenge_and_realm(void **state)
{
	char buf[AUTH_CHALLENGE_MAX], big[AUTH_REALM_MAX + 2];

	(void)state;
	assert_int_equal(auth_challenge("glassproxy", buf, sizeof(buf)), 41);
	assert_string_equal(buf,
			    "Basic realm=\"glassproxy\", charset=\"UTF-8\"");
	assert_true(auth_challenge("Caf\xc3\xa9 lab proxy", buf, sizeof(buf)) >
		    0);
	static const char *bad[] = {"",		 "a\"b",
				    "a\\b",	 "a\r\nX-Injected: 1",
				    "tab\there", "del\x7f"};
	for (size_t i = 0; i < UTIL_ARRAY_LEN(bad); i++) {
		assert_false(auth_realm_valid(bad[i]));
		assert_int_equal(auth_challenge(bad[i], buf, sizeof(buf)),
				 -EINVAL);
		assert_string_equal(buf, "");
	}
	assert_false(auth_realm_valid(NULL));
	memset(big, 'r', AUTH_REALM_MAX);
	big[AUTH_REALM_MAX] = '\0';
	assert_true(auth_challenge(big, buf, sizeof(buf)) > 0);
	big[AUTH_REALM_MAX] = 'r';
	big[AUTH_REALM_MAX + 1] = '\0';
	assert_false(auth_realm_valid(big));
	assert_int_equal(auth_challenge("glassproxy", buf, 10), -ENOSPC);
}

/* ---- throttle ---- */

static struct sockaddr_storage ip(const char *text)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(text, ':')) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		in6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, text, &in6->sin6_addr), 1);
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		in->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, text, &in->sin_addr), 1);
	}
	return ss;
}

#define SA(ss) ((const struct sockaddr *)&(ss))

static void test_throttle_window_arithmetic(void **state)
{
	struct auth_throttle *t;
	struct sockaddr_storage a = ip("192.0.2.1"), b = ip("192.0.2.2");

	(void)state;
	assert_int_equal(auth_throttle_new(3, 60000, 64, 42, &t), 0);
	assert_int_equal(auth_throttle_check(t, SA(a), 1000), 0);
	auth_throttle_fail(t, SA(a), 1000); /* the window starts at 1000 */
	auth_throttle_fail(t, SA(a), 2000);
	assert_int_equal(auth_throttle_check(t, SA(a), 2500), 0);
	auth_throttle_fail(t, SA(a), 3000); /* the third: now refused */
	assert_int_equal(auth_throttle_check(t, SA(a), 3000), 58000);
	assert_int_equal(auth_throttle_check(t, SA(a), 60999), 1);
	/* another address is not affected */
	assert_int_equal(auth_throttle_check(t, SA(b), 3000), 0);
	/* the window passes: a fresh start */
	assert_int_equal(auth_throttle_check(t, SA(a), 61000), 0);
	auth_throttle_fail(t, SA(a), 61000);
	auth_throttle_fail(t, SA(a), 61001);
	assert_int_equal(auth_throttle_check(t, SA(a), 61002), 0);
	auth_throttle_fail(t, SA(a), 61002);
	assert_int_equal(auth_throttle_check(t, SA(a), 61002), 60000 - 2);
	/* failures while refused do not extend the window */
	auth_throttle_fail(t, SA(a), 100000);
	assert_int_equal(auth_throttle_check(t, SA(a), 120999), 1);
	assert_int_equal(auth_throttle_check(t, SA(a), 121000), 0);
	auth_throttle_free(t);
}

static void test_throttle_keys(void **state)
{
	struct auth_throttle *t;
	struct sockaddr_storage v4 = ip("198.51.100.7"),
				mapped = ip("::ffff:198.51.100.7"),
				h1 = ip("2001:db8:1:2::1"),
				h2 = ip("2001:db8:1:2:ffff::99"),
				other = ip("2001:db8:1:3::1");
	struct sockaddr un = {.sa_family = AF_UNIX};

	(void)state;
	assert_int_equal(auth_throttle_new(1, 1000, 16, 7, &t), 0);
	/* IPv4 and its v4-mapped spelling are one client */
	auth_throttle_fail(t, SA(v4), 0);
	assert_true(auth_throttle_check(t, SA(mapped), 1) > 0);
	/* IPv6: one /64 is one client */
	auth_throttle_fail(t, SA(h1), 0);
	assert_true(auth_throttle_check(t, SA(h2), 1) > 0);
	assert_int_equal(auth_throttle_check(t, SA(other), 1), 0);
	/* other families are not counted (and not refused) */
	auth_throttle_fail(t, &un, 0);
	assert_int_equal(auth_throttle_check(t, &un, 0), 0);
	assert_int_equal(auth_throttle_check(t, NULL, 0), 0);
	auth_throttle_free(t);
	/* bad parameters */
	assert_int_equal(auth_throttle_new(0, 1000, 16, 0, &t), -EINVAL);
	assert_null(t);
	assert_int_equal(auth_throttle_new(3, 0, 16, 0, &t), -EINVAL);
	assert_int_equal(auth_throttle_new(3, 1000, 0, 0, &t), -EINVAL);
}

static void test_throttle_full_table_forgets_the_oldest(void **state)
{
	struct auth_throttle *t;
	char text[32];

	(void)state;
	/* one set of four ways: every address shares it */
	assert_int_equal(auth_throttle_new(1, 10000, 4, 0, &t), 0);
	for (int i = 0; i < 4; i++) {
		util_format(text, sizeof(text), "10.0.0.%d", i);
		struct sockaddr_storage a = ip(text);
		auth_throttle_fail(t, SA(a), 100 * i);
	}
	for (int i = 0; i < 4; i++) {
		util_format(text, sizeof(text), "10.0.0.%d", i);
		struct sockaddr_storage a = ip(text);
		assert_true(auth_throttle_check(t, SA(a), 500) > 0);
	}
	/* a fifth address takes the oldest window's place (10.0.0.0) */
	struct sockaddr_storage fifth = ip("10.0.0.9"), first = ip("10.0.0.0"),
				second = ip("10.0.0.1");
	auth_throttle_fail(t, SA(fifth), 600);
	assert_true(auth_throttle_check(t, SA(fifth), 600) > 0);
	assert_int_equal(auth_throttle_check(t, SA(first), 600), 0);
	assert_true(auth_throttle_check(t, SA(second), 600) > 0);
	/* an expired entry is reused before any live one */
	auth_throttle_fail(t, SA(first), 10150); /* 10.0.0.1 expired at 10100 */
	assert_true(auth_throttle_check(t, SA(first), 10150) > 0);
	struct sockaddr_storage third = ip("10.0.0.2");
	assert_true(auth_throttle_check(t, SA(third), 10150) > 0);
	auth_throttle_free(t);
}

/* Threads failing and checking at once (for TSan): one lock guards all. */
struct throttle_job {
	struct auth_throttle *t;
	int id;
};

static void *throttle_thread(void *arg)
{
	struct throttle_job *job = arg;
	char text[32];

	util_format(text, sizeof(text), "192.0.2.%d", job->id);
	struct sockaddr_storage a = ip(text);
	for (int i = 0; i < 1000; i++) {
		auth_throttle_fail(job->t, SA(a), i);
		auth_throttle_check(job->t, SA(a), i);
	}
	return NULL;
}

static void test_throttle_concurrent(void **state)
{
	struct auth_throttle *t;
	struct throttle_job jobs[4];
	pthread_t th[4];

	(void)state;
	assert_int_equal(auth_throttle_new(5, 100000, 64, 1, &t), 0);
	for (int i = 0; i < 4; i++) {
		jobs[i] = (struct throttle_job){t, i + 1};
		assert_int_equal(
			pthread_create(&th[i], NULL, throttle_thread, &jobs[i]),
			0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	/* every address ended over its limit, and the window is the first
	 * failure's */
	for (int i = 1; i <= 4; i++) {
		char text[32];
		util_format(text, sizeof(text), "192.0.2.%d", i);
		struct sockaddr_storage a = ip(text);
		assert_int_equal(auth_throttle_check(t, SA(a), 1000), 99000);
	}
	auth_throttle_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixture_every_accepted_kind),
		cmocka_unit_test(test_fixture_weak_file_is_refused_whole),
		cmocka_unit_test(test_parse_line_table),
		cmocka_unit_test(test_parse_limits_and_nul),
		cmocka_unit_test(test_hash_kinds),
		cmocka_unit_test(test_load_through_sys_fs),
		cmocka_unit_test(test_base64_strict),
		cmocka_unit_test(test_basic_header_shapes),
		cmocka_unit_test(test_basic_size_limits),
		cmocka_unit_test(test_basic_concurrent),
		cmocka_unit_test(
			test_unknown_user_is_hashed_against_the_first_entry),
		cmocka_unit_test(
			test_session_skips_the_hash_for_the_same_value),
		cmocka_unit_test(test_equal_ct),
		cmocka_unit_test(test_challenge_and_realm),
		cmocka_unit_test(test_throttle_window_arithmetic),
		cmocka_unit_test(test_throttle_keys),
		cmocka_unit_test(test_throttle_full_table_forgets_the_oldest),
		cmocka_unit_test(test_throttle_concurrent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
