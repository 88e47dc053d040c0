/*
 * The password file: htpasswd text to a sorted table of users, refusing
 * weak and malformed hashes.  See include/glassproxy/auth.h for the
 * contract and docs/security.md for why each hash kind is or is not
 * accepted.
 */
#include "auth_int.h"

#include "glassproxy/util.h"

#include <crypt.h>
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUTH_ADVICE "use bcrypt or SHA-512 (htpasswd -B)"

/* Generations of parsed files, for struct auth_session. */
static _Atomic uint64_t generations;

/*
 * Hashed against for unknown users when the file holds no entry: the
 * SHA-512-crypt hash (5000 rounds) of a random string nobody knows.
 */
static const char builtin_dummy[] =
	"$6$HDjksuMWUBEtkweZ$AwWuID0OXCqAq10iwnfY8EeX73nXdZgE/ksSEPmE7TNRLgRcMW"
	"r3ItlzxW/01jSRgGxdsX2N0Lu3DtPvVtofE0";

/* Parameter sets (cost, rounds) already tried on crypt(3); see probe(). */
#define PROBES_MAX    8
#define PROBE_KEY_MAX 40

struct parse_ctx {
	const char *source;
	unsigned line;
	auth_report_fn *report;
	void *arg;
	unsigned errors;
	char probed[PROBES_MAX][PROBE_KEY_MAX];
	unsigned nprobed;
	struct crypt_data *cd; /* made by the first probe */
};

static void diag(struct parse_ctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void diag(struct parse_ctx *c, const char *fmt, ...)
{
	struct auth_diag d;
	va_list ap;
	int n;

	c->errors++;
	if (c->report == NULL)
		return;
	d.line = c->line;
	n = c->line ? util_format(d.text, sizeof(d.text),
				  "%.200s:%u: ", c->source, c->line)
		    : util_format(d.text, sizeof(d.text),
				  "%.200s: ", c->source);
	if (n < 0)
		n = 0;
	va_start(ap, fmt);
	vsnprintf(d.text + n, sizeof(d.text) - (size_t)n, fmt, ap);
	va_end(ap);
	c->report(c->arg, &d);
}

static bool crypt_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '/';
}

static bool has_prefix(const char *s, size_t len, const char *p)
{
	size_t n = strlen(p);

	return len >= n && memcmp(s, p, n) == 0;
}

enum auth_hash_kind auth_hash_kind(const char *h, size_t len)
{
	static const struct {
		const char *prefix;
		enum auth_hash_kind kind;
	} kinds[] = {
		{"$2y$", AUTH_HASH_BCRYPT}, {"$2b$", AUTH_HASH_BCRYPT},
		{"$2a$", AUTH_HASH_BCRYPT}, {"$6$", AUTH_HASH_SHA512},
		{"$5$", AUTH_HASH_SHA256},  {"$y$", AUTH_HASH_YESCRYPT},
		{"$1$", AUTH_HASH_MD5},	    {"$apr1$", AUTH_HASH_APR1},
		{"{SHA}", AUTH_HASH_SHA1},
	};
	bool des = len == 13;

	for (size_t i = 0; i < UTIL_ARRAY_LEN(kinds); i++)
		if (has_prefix(h, len, kinds[i].prefix))
			return kinds[i].kind;
	if (len > 0 && h[0] == '$')
		return AUTH_HASH_UNKNOWN;
	for (size_t i = 0; des && i < len; i++)
		des = crypt_char(h[i]);
	return des ? AUTH_HASH_DES : AUTH_HASH_PLAIN;
}

/* Why a kind is refused outright, or NULL when it is accepted. */
static const char *weak_reason(enum auth_hash_kind kind)
{
	switch (kind) {
	case AUTH_HASH_MD5:
		return "MD5-crypt ($1$) is weak and refused";
	case AUTH_HASH_APR1:
		return "Apache MD5 ($apr1$) is weak and refused";
	case AUTH_HASH_SHA1:
		return "Apache {SHA} (unsalted SHA-1) is weak and refused";
	case AUTH_HASH_DES:
		return "DES crypt (or a 13-character plain-text password) is "
		       "weak and refused";
	case AUTH_HASH_PLAIN:
		return "a plain-text password is refused";
	case AUTH_HASH_UNKNOWN:
		return "this hash type is not supported";
	default:
		return NULL;
	}
}

/* The length of the last '$'-separated field: the hash proper. */
static size_t last_field_len(const char *h, size_t len)
{
	size_t i = len;

	while (i > 0 && h[i - 1] != '$')
		i--;
	return len - i;
}

/* "$6$rounds=N$...": N in crypt(3)'s range, as plain decimal. */
static bool rounds_ok(const char *h, size_t len)
{
	const char *r = h + 3, *end = h + len, *d;
	uint64_t n;

	if (!has_prefix(r, len - 3, "rounds="))
		return true; /* the default, 5000 */
	r += 7;
	d = memchr(r, '$', (size_t)(end - r));
	return d && d > r && r[0] != '0' &&
	       util_parse_u64(r, (size_t)(d - r), 999999999, &n) == 0 &&
	       n >= 1000;
}

/* Shape of an accepted kind: lengths crypt(3) always produces. */
static const char *shape_error(enum auth_hash_kind kind, const char *h,
			       size_t len)
{
	switch (kind) {
	case AUTH_HASH_BCRYPT:
		if (len != 60 || h[6] != '$' || h[4] < '0' || h[4] > '3' ||
		    h[5] < '0' || h[5] > '9')
			return "malformed bcrypt hash (want $2y$NN$ and 53 "
			       "characters)";
		/* crypt_checksalt does not look at the cost: 04 to 31. */
		if ((h[4] - '0') * 10 + (h[5] - '0') < 4 ||
		    (h[4] - '0') * 10 + (h[5] - '0') > 31)
			return "bcrypt cost out of range (04 to 31)";
		return NULL;
	case AUTH_HASH_SHA512:
		if (!rounds_ok(h, len))
			return "SHA-crypt rounds= out of range (1000 to "
			       "999999999)";
		return last_field_len(h, len) == 86
			       ? NULL
			       : "malformed SHA-512-crypt hash";
	case AUTH_HASH_SHA256:
		if (!rounds_ok(h, len))
			return "SHA-crypt rounds= out of range (1000 to "
			       "999999999)";
		return last_field_len(h, len) == 43 ? NULL
						    : "malformed crypt hash";
	case AUTH_HASH_YESCRYPT:
		if (len < 4 || h[3] == '$')
			return "yescrypt hash without parameters";
		return last_field_len(h, len) == 43 ? NULL
						    : "malformed crypt hash";
	default:
		return "unsupported hash";
	}
}

int auth_hash_check(const char *h, size_t len, char *why, size_t cap)
{
	enum auth_hash_kind kind = auth_hash_kind(h, len);
	const char *weak = weak_reason(kind), *shape;
	char setting[CRYPT_OUTPUT_SIZE];

	if (weak) {
		util_format(why, cap, "%s; %s", weak, AUTH_ADVICE);
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		if (!crypt_char(h[i]) && h[i] != '$' && h[i] != '=') {
			util_format(why, cap,
				    "a hash may not contain '%c' (one "
				    "user:hash a line)",
				    h[i] >= 0x20 && h[i] < 0x7f ? h[i] : '?');
			return -EINVAL;
		}
	}
	shape = shape_error(kind, h, len);
	/* libxcrypt's own check of the method and its parameters.  It calls
	 * SHA-256-crypt "legacy" (SHA-512 is preferred); it is not weak. */
	if (shape == NULL) {
		int rc = util_copy(setting, sizeof(setting), h, len) < 0
				 ? CRYPT_SALT_INVALID
				 : crypt_checksalt(setting);
		if (rc != CRYPT_SALT_OK && !(rc == CRYPT_SALT_METHOD_LEGACY &&
					     kind == AUTH_HASH_SHA256))
			shape = "crypt(3) does not accept this hash's "
				"parameters";
	}
	if (shape) {
		util_format(why, cap, "%s; %s", shape, AUTH_ADVICE);
		return -EINVAL;
	}
	return 0;
}

/* The method and parameters of a yescrypt hash, without salt: "$y$j9T$". */
static size_t params_len(const char *h, size_t len)
{
	size_t dollars = 0;

	for (size_t i = 0; i < len; i++)
		if (h[i] == '$' && ++dollars == 3) /* "$y$params$" */
			return i + 1;
	return len;
}

/*
 * crypt_checksalt knows the methods but not their parameters: it passes
 * bcrypt cost 03 and "rounds=abc".  bcrypt's cost and SHA-crypt's rounds
 * are checked above; yescrypt's parameters are an encoding only crypt(3)
 * reads, so it hashes an empty password once per distinct yescrypt
 * parameter set (a file made by one tool has one or two): a file of
 * thousands of users pays it a few times, not per user.  Past PROBES_MAX
 * sets, a bad one shows at verification as -EIO.  Returns false (and
 * reports) when crypt refuses.
 */
static bool probe(struct parse_ctx *c, const char *h, size_t len,
		  const char *user, size_t ulen)
{
	size_t plen = params_len(h, len);
	char setting[CRYPT_OUTPUT_SIZE];
	const char *out;

	if (auth_hash_kind(h, len) != AUTH_HASH_YESCRYPT)
		return true;

	if (plen >= PROBE_KEY_MAX)
		plen = PROBE_KEY_MAX - 1;
	for (unsigned i = 0; i < c->nprobed; i++)
		if (strlen(c->probed[i]) == plen &&
		    memcmp(c->probed[i], h, plen) == 0)
			return true;
	if (c->nprobed == PROBES_MAX)
		return true;
	if (c->cd == NULL && (c->cd = calloc(1, sizeof(*c->cd))) == NULL)
		return true; /* no memory to check with: verification will */
	if (util_copy(setting, sizeof(setting), h, len) < 0)
		return true; /* auth_hash_check refused it already */
	out = crypt_r("", setting, c->cd);
	if (out == NULL || out[0] == '*') {
		diag(c,
		     "user '%.*s': crypt(3) refuses this hash's parameters "
		     "(cost or rounds); %s",
		     (int)(ulen > 64 ? 64 : ulen), user, AUTH_ADVICE);
		return false;
	}
	util_copy(c->probed[c->nprobed++], PROBE_KEY_MAX, h, plen);
	return true;
}

static bool valid_user(struct parse_ctx *c, const char *u, size_t len)
{
	if (len == 0) {
		diag(c, "empty user name");
		return false;
	}
	if (len > AUTH_USER_MAX) {
		diag(c, "user name longer than %d bytes", AUTH_USER_MAX);
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)u[i] < 0x20 || u[i] == 0x7f) {
			diag(c, "user name has a control character");
			return false;
		}
	}
	return true;
}

static int add_user(struct auth *a, size_t *cap, const char *u, size_t ulen,
		    const char *h, size_t hlen, unsigned line)
{
	struct auth_user *e;

	if (a->count == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct auth_user *bigger =
			realloc(a->users, ncap * sizeof(*bigger));
		if (bigger == NULL)
			return -ENOMEM;
		a->users = bigger;
		*cap = ncap;
	}
	e = &a->users[a->count];
	e->name = malloc(ulen + 1);
	e->hash = malloc(hlen + 1);
	if (e->name == NULL || e->hash == NULL) {
		free(e->name);
		free(e->hash);
		return -ENOMEM;
	}
	util_copy(e->name, ulen + 1, u, ulen);
	util_copy(e->hash, hlen + 1, h, hlen);
	e->line = line;
	a->count++;
	return 0;
}

/* One line without its end; comments and blanks already skipped. */
static int parse_line(struct auth *a, size_t *cap, struct parse_ctx *c,
		      const char *s, size_t len)
{
	const char *colon = memchr(s, ':', len);
	char why[AUTH_DIAG_MAX / 2];
	size_t ulen, hlen;

	if (memchr(s, '\0', len)) {
		diag(c, "a NUL byte");
		return 0;
	}
	if (colon == NULL) {
		diag(c, "no ':' between the user name and the hash");
		return 0;
	}
	ulen = (size_t)(colon - s);
	hlen = len - ulen - 1;
	if (!valid_user(c, s, ulen))
		return 0;
	if (hlen == 0) {
		diag(c, "user '%.*s': no password hash",
		     (int)(ulen > 64 ? 64 : ulen), s);
		return 0;
	}
	/* Two common mistakes, named before the hash is judged: an htdigest
	 * file (user:realm:hash), and a comment or blank after the hash. */
	if (memchr(colon + 1, ':', hlen)) {
		diag(c,
		     "user '%.*s': a second ':' (an htdigest file? want "
		     "user:hash)",
		     (int)(ulen > 64 ? 64 : ulen), s);
		return 0;
	}
	if (memchr(colon + 1, ' ', hlen) || memchr(colon + 1, '\t', hlen)) {
		diag(c,
		     "user '%.*s': a blank in the hash ('#' comments go "
		     "on their own line)",
		     (int)(ulen > 64 ? 64 : ulen), s);
		return 0;
	}
	if (auth_hash_check(colon + 1, hlen, why, sizeof(why)) < 0) {
		diag(c, "user '%.*s': %s", (int)(ulen > 64 ? 64 : ulen), s,
		     why);
		return 0;
	}
	/* hlen < CRYPT_OUTPUT_SIZE: auth_hash_check copied it */
	if (!probe(c, colon + 1, hlen, s, ulen))
		return 0;
	return add_user(a, cap, s, ulen, colon + 1, hlen, c->line);
}

static int by_name_then_line(const void *x, const void *y)
{
	const struct auth_user *a = x, *b = y;
	int rc = strcmp(a->name, b->name);

	if (rc)
		return rc;
	return a->line < b->line ? -1 : a->line > b->line;
}

/* Sort for lookups; a user named twice is an error at the later line. */
static void sort_users(struct auth *a, struct parse_ctx *c)
{
	const char *first_hash = NULL;
	unsigned first_line = ~0u;

	for (size_t i = 0; i < a->count; i++) {
		if (a->users[i].line < first_line) {
			first_line = a->users[i].line;
			first_hash = a->users[i].hash;
		}
	}
	if (a->count > 1) /* users is NULL when there are none */
		qsort(a->users, a->count, sizeof(*a->users), by_name_then_line);
	for (size_t i = 1; i < a->count; i++) {
		if (strcmp(a->users[i].name, a->users[i - 1].name) != 0)
			continue;
		c->line = a->users[i].line;
		diag(c, "user '%.64s' appears again (first at line %u)",
		     a->users[i].name, a->users[i - 1].line);
	}
	/* The first entry's hash, so that an unknown user costs what a
	 * known one does (all share a cost in a file made by one tool). */
	a->dummy = first_hash ? first_hash : builtin_dummy;
}

/* Walk the lines of text, handing each meaningful one to parse_line. */
static int parse_lines(struct auth *a, struct parse_ctx *c, const char *text,
		       size_t len)
{
	size_t start = 0, cap = 0;

	if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
		start = 3;
	while (start < len) {
		const char *nl = memchr(text + start, '\n', len - start);
		size_t end = nl ? (size_t)(nl - text) : len;
		const char *line = text + start;
		size_t llen = end - start;
		int rc;

		start = end + 1;
		c->line++;
		if (llen > 0 && line[llen - 1] == '\r')
			llen--;
		util_trim(&line, &llen);
		if (llen == 0 || line[0] == '#')
			continue;
		rc = parse_line(a, &cap, c, line, llen);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int auth_parse(const char *text, size_t len, const char *source,
	       auth_report_fn *report, void *arg, struct auth **out)
{
	struct parse_ctx c = {.source = source ? source : "(auth)",
			      .report = report,
			      .arg = arg};
	struct auth *a;
	int rc;

	*out = NULL;
	if (text == NULL && len > 0)
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return -ENOMEM;
	rc = parse_lines(a, &c, text, len);
	free(c.cd);
	if (rc < 0)
		goto free_auth;
	sort_users(a, &c);
	if (c.errors > 0) {
		rc = -EINVAL;
		goto free_auth;
	}
	/* Counted, not the address: a new table can reuse a freed one's. */
	a->generation = atomic_fetch_add(&generations, 1) + 1;
	*out = a;
	return a->count > INT32_MAX ? INT32_MAX : (int)a->count;
free_auth:
	auth_free(a);
	return rc;
}

int auth_load(struct sys *sys, const char *path, auth_report_fn *report,
	      void *arg, struct auth **out)
{
	struct parse_ctx c = {.source = path, .report = report, .arg = arg};
	char *text;
	size_t len;
	int rc;

	*out = NULL;
	rc = sys_read_file(sys, path, AUTH_FILE_MAX, &text, &len);
	if (rc < 0) {
		diag(&c, "cannot read the password file: %s",
		     rc == -EFBIG ? "larger than 16 MiB" : strerror(-rc));
		return rc;
	}
	rc = auth_parse(text, len, path, report, arg, out);
	auth_wipe(text, len);
	free(text);
	return rc;
}

void auth_free(struct auth *a)
{
	if (a == NULL)
		return;
	for (size_t i = 0; i < a->count; i++) {
		free(a->users[i].name);
		auth_wipe(a->users[i].hash, strlen(a->users[i].hash));
		free(a->users[i].hash);
	}
	free(a->users);
	free(a);
}

size_t auth_user_count(const struct auth *a)
{
	return a ? a->count : 0;
}

static int by_name(const void *key, const void *elem)
{
	return strcmp(key, ((const struct auth_user *)elem)->name);
}

const struct auth_user *auth_find(const struct auth *a, const char *name)
{
	if (a == NULL || a->count == 0)
		return NULL;
	return bsearch(name, a->users, a->count, sizeof(*a->users), by_name);
}

void auth_wipe(void *p, size_t len)
{
	volatile unsigned char *v = p;

	while (len--)
		*v++ = 0;
}
