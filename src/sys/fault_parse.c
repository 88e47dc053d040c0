/*
 * The fault spec grammar (docs/faults.md), parsed into struct sys_fault_rule:
 *
 *   spec   = "seed=" N | target [ "[" scope "]" ] [ "=" fault ] [ "@" when ]
 *   target = "net." op | "fs." op | "clock." [ "wall." | "mono." ] verb
 *   fault  = ERRNO-NAME | "short" [ ":" N ] | "eof" | "delay:" DURATION
 *            | [ "+" | "-" ] DURATION          (clock offset and step)
 *   when   = N | N "+" | "p" PROBABILITY
 *
 * Every mistake is reported with the offset of the character it starts at,
 * so the caller can put a caret under it.  Nothing here touches the OS.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sys_fault_int.h"

/* What a rule on an operation may ask for. */
#define CAN_SHORT  0x01u /* moves bytes: short, short:N */
#define CAN_EOF	   0x02u /* reads: eof */
#define SCOPE_SOCK 0x04u /* client, origin, host name, peer address */
#define SCOPE_PATH 0x08u /* path prefix */
#define SCOPE_NAME 0x10u /* host name only (resolve) */
#define EAI_NAMES  0x20u /* EAI_NONAME and friends */

static const struct {
	const char *name;
	unsigned caps;
} ops[FOP_COUNT] = {
	[FOP_SOCKET] = {"net.socket", 0},
	[FOP_BIND] = {"net.bind", 0},
	[FOP_LISTEN] = {"net.listen", 0},
	[FOP_ACCEPT] = {"net.accept", 0},
	[FOP_CONNECT] = {"net.connect", SCOPE_SOCK},
	[FOP_RECV] = {"net.recv", CAN_SHORT | CAN_EOF | SCOPE_SOCK},
	[FOP_SEND] = {"net.send", CAN_SHORT | SCOPE_SOCK},
	[FOP_SPLICE] = {"net.splice", CAN_SHORT | CAN_EOF | SCOPE_SOCK},
	[FOP_SENDFILE] = {"net.sendfile", CAN_SHORT | CAN_EOF | SCOPE_SOCK},
	[FOP_PIPE] = {"net.pipe", 0},
	[FOP_PIPE_WRITE] = {"net.pipe_write", CAN_SHORT},
	[FOP_PIPE_READ] = {"net.pipe_read", CAN_SHORT | CAN_EOF},
	[FOP_SHUTDOWN] = {"net.shutdown", SCOPE_SOCK},
	[FOP_NET_CLOSE] = {"net.close", SCOPE_SOCK},
	[FOP_POLL] = {"net.poll", 0},
	[FOP_SETSOCKOPT] = {"net.setsockopt", SCOPE_SOCK},
	[FOP_GETSOCKOPT] = {"net.getsockopt", SCOPE_SOCK},
	[FOP_GETSOCKNAME] = {"net.getsockname", SCOPE_SOCK},
	[FOP_SET_NONBLOCKING] = {"net.set_nonblocking", SCOPE_SOCK},
	[FOP_RESOLVE] = {"net.resolve", SCOPE_NAME | EAI_NAMES},
	[FOP_OPEN] = {"fs.open", SCOPE_PATH},
	[FOP_READ] = {"fs.read", CAN_SHORT | CAN_EOF | SCOPE_PATH},
	[FOP_PREAD] = {"fs.pread", CAN_SHORT | CAN_EOF | SCOPE_PATH},
	[FOP_WRITE] = {"fs.write", CAN_SHORT | SCOPE_PATH},
	[FOP_FSYNC] = {"fs.fsync", SCOPE_PATH},
	[FOP_FILE_CLOSE] = {"fs.close", SCOPE_PATH},
	[FOP_RENAME] = {"fs.rename", SCOPE_PATH},
	[FOP_UNLINK] = {"fs.unlink", SCOPE_PATH},
	[FOP_MKDIR] = {"fs.mkdir", SCOPE_PATH},
	[FOP_RMDIR] = {"fs.rmdir", SCOPE_PATH},
	[FOP_STAT] = {"fs.stat", SCOPE_PATH},
	[FOP_FSTAT] = {"fs.fstat", SCOPE_PATH},
	[FOP_FTRUNCATE] = {"fs.ftruncate", SCOPE_PATH},
	[FOP_LIST_DIR] = {"fs.list_dir", SCOPE_PATH},
	[FOP_CLOCK_WALL] = {"clock.wall", 0},
	[FOP_CLOCK_MONO] = {"clock.mono", 0},
};

#define E(name)                                                                \
	{                                                                      \
#name, name                                                    \
	}
static const struct {
	const char *name;
	int err;
} errnos[] = {
	E(ECONNRESET), E(ECONNREFUSED),	 E(ECONNABORTED), E(ETIMEDOUT),
	E(EPIPE),      E(EAGAIN),	 E(EWOULDBLOCK),  E(EINTR),
	E(EIO),	       E(ENOSPC),	 E(EDQUOT),	  E(EFBIG),
	E(EROFS),      E(EMFILE),	 E(ENFILE),	  E(ENOMEM),
	E(ENOBUFS),    E(EACCES),	 E(EPERM),	  E(ENOENT),
	E(EEXIST),     E(ENOTDIR),	 E(EISDIR),	  E(ENOTEMPTY),
	E(EXDEV),      E(EBUSY),	 E(ENAMETOOLONG), E(ELOOP),
	E(EBADF),      E(EINVAL),	 E(ENOSYS),	  E(ENOTCONN),
	E(ESHUTDOWN),  E(EHOSTUNREACH),	 E(ENETUNREACH),  E(ENETDOWN),
	E(EADDRINUSE), E(EADDRNOTAVAIL), E(EINPROGRESS),  E(EALREADY),
	E(EPROTO),     E(EMSGSIZE),	 E(EOPNOTSUPP),	  E(EAFNOSUPPORT),
};
#undef E

/* getaddrinfo's codes, mapped onto the resolve contract in sys.h. */
static const struct {
	const char *name;
	int err;
} eai_names[] = {
	{"EAI_NONAME", ENOENT},	    {"EAI_NODATA", ENOENT},
	{"EAI_ADDRFAMILY", ENOENT}, {"EAI_AGAIN", EAGAIN},
	{"EAI_FAIL", EIO},	    {"EAI_MEMORY", ENOMEM},
};

/* The table a wildcard covers: [first, end). */
static void wild_range(char wild, int *first, int *end)
{
	*first = wild == 'n' ? FOP_SOCKET : FOP_OPEN;
	*end = wild == 'n' ? FOP_OPEN : FOP_CLOCK_WALL;
}

/* What the rule's target takes: for net.* what any net operation takes. */
static unsigned rule_caps(const struct sys_fault_rule *r)
{
	unsigned caps = 0;
	int op, end;

	if (!r->wild)
		return ops[r->op].caps;
	for (wild_range(r->wild, &op, &end); op < end; op++)
		caps |= ops[op].caps;
	return caps;
}

const char *sys_fault_op_name(enum fault_op op)
{
	return (unsigned)op < FOP_COUNT ? ops[op].name : "?";
}

/* A parse position: the whole spec, and where we are in it. */
struct cursor {
	const char *spec, *p;
	const char *why; /* set on the first error */
	size_t at;
};

static int fail_at(struct cursor *c, const char *where, const char *why)
{
	if (!c->why) {
		c->why = why;
		c->at = (size_t)(where - c->spec);
	}
	return -EINVAL;
}

static size_t word_len(const char *p, const char *stops)
{
	size_t n = 0;

	while (p[n] && !strchr(stops, p[n]))
		n++;
	return n;
}

/* A decimal count without sign, at most 10^15 (no overflow to care for). */
static int parse_count(struct cursor *c, uint64_t *out)
{
	const char *start = c->p;
	uint64_t v = 0;

	if (*c->p < '0' || *c->p > '9')
		return fail_at(c, c->p, "expected a number");
	while (*c->p >= '0' && *c->p <= '9') {
		if (c->p - start >= 15)
			return fail_at(c, start, "number too large");
		v = v * 10 + (uint64_t)(*c->p++ - '0');
	}
	*out = v;
	return 0;
}

/* N followed by ms, s, m or h; the result in milliseconds. */
static int parse_duration(struct cursor *c, int64_t *ms)
{
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
	const char *start = c->p;
	uint64_t n;

	if (parse_count(c, &n) < 0)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		size_t len = strlen(units[i].unit);
		if (!strncmp(c->p, units[i].unit, len) &&
		    (c->p[len] == '\0' || c->p[len] == '@')) {
			if (n > (uint64_t)INT64_MAX / 3600000 / 1000)
				return fail_at(c, start, "duration too long");
			*ms = (int64_t)n * units[i].ms;
			c->p += len;
			return 0;
		}
	}
	return fail_at(c, c->p, "expected a unit: ms, s, m or h");
}

/* "clock." [wall.|mono.] verb; c->p is just past "clock.". */
static int parse_clock_target(struct cursor *c, struct sys_fault_rule *r)
{
	static const struct {
		const char *verb;
		enum fault_kind kind;
	} verbs[] = {{"offset", FK_OFFSET},
		     {"step", FK_STEP},
		     {"freeze", FK_FREEZE}};
	size_t n = word_len(c->p, "[=@");
	bool named = false;

	r->op = FOP_CLOCK_WALL;
	if (n > 5 &&
	    (!strncmp(c->p, "wall.", 5) || !strncmp(c->p, "mono.", 5))) {
		r->op = c->p[0] == 'w' ? FOP_CLOCK_WALL : FOP_CLOCK_MONO;
		named = true;
		c->p += 5;
		n -= 5;
	}
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strlen(verbs[i].verb) == n &&
		    !strncmp(c->p, verbs[i].verb, n)) {
			r->kind = verbs[i].kind;
			/* Frozen time means both clocks unless one is named. */
			r->ops = 1ull << r->op;
			if (r->kind == FK_FREEZE && !named)
				r->ops |= 1ull << FOP_CLOCK_MONO;
			c->p += n;
			return 0;
		}
	}
	return fail_at(c, c->p, "unknown clock fault: offset, step or freeze");
}

static int parse_target(struct cursor *c, struct sys_fault_rule *r)
{
	size_t n = word_len(c->p, "[=@");

	if (!strncmp(c->p, "clock.", 6)) {
		c->p += 6;
		return parse_clock_target(c, r);
	}
	if (strncmp(c->p, "net.", 4) && strncmp(c->p, "fs.", 3))
		return fail_at(c, c->p,
			       "expected net.OP, fs.OP or clock.FAULT");
	if ((n == 5 && !strncmp(c->p, "net.*", 5)) ||
	    (n == 4 && !strncmp(c->p, "fs.*", 4))) {
		r->wild = c->p[0];
		r->op = r->wild == 'n' ? FOP_SOCKET : FOP_OPEN;
		c->p += n;
		return 0;
	}
	for (int op = 0; op < FOP_CLOCK_WALL; op++) {
		if (strlen(ops[op].name) == n &&
		    !strncmp(c->p, ops[op].name, n)) {
			r->op = (enum fault_op)op;
			c->p += n;
			return 0;
		}
	}
	return fail_at(c, c->p + (c->p[0] == 'n' ? 4 : 3), "unknown operation");
}

/* "127.0.0.1", "127.0.0.1:8081", "::1", "[::1]:8081" */
static bool parse_peer(const char *text, struct sys_fault_rule *r)
{
	struct sockaddr_in *in = (struct sockaddr_in *)&r->peer.ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&r->peer.ss;
	char ip[FAULT_SCOPE_MAX];
	const char *port = NULL, *close;
	size_t n = strlen(text);

	if (text[0] == '[' && (close = strchr(text, ']')) != NULL) {
		n = (size_t)(close - text - 1);
		memcpy(ip, text + 1, n);
		port = close[1] == ':' ? close + 2 : close[1] ? "" : NULL;
	} else {
		const char *colon = strchr(text, ':');
		if (colon && !strchr(colon + 1, ':')) {
			n = (size_t)(colon - text);
			port = colon + 1;
		}
		memcpy(ip, text, n);
	}
	ip[n] = '\0';
	if (port) {
		char *end;
		long v = strtol(port, &end, 10);
		if (!*port || *end || v < 0 || v > 65535)
			return false;
		r->peer_has_port = true;
		in->sin_port = htons((uint16_t)v); /* same offset in in6 */
	}
	if (inet_pton(AF_INET, ip, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		r->peer.len = sizeof(*in);
		return true;
	}
	if (inet_pton(AF_INET6, ip, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		r->peer.len = sizeof(*in6);
		return true;
	}
	return false;
}

static bool is_host_name(const char *s)
{
	for (; *s; s++)
		if (!(*s == '.' || *s == '-' || *s == '_' ||
		      (*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= 'A' && *s <= 'Z')))
			return false;
	return true;
}

/* What kind of scope text is; -EINVAL if none. */
static int classify_scope(const char *text, struct sys_fault_rule *r)
{
	if (!strcmp(text, "client"))
		return FSC_CLIENT;
	if (!strcmp(text, "origin"))
		return FSC_ORIGIN;
	if (strchr(text, '/'))
		return FSC_PATH;
	if (parse_peer(text, r))
		return FSC_PEER;
	/*
	 * A host name needs a dot (or is localhost), so that a misspelt
	 * "clinet" is refused instead of quietly matching nothing.
	 */
	if (is_host_name(text) &&
	    (strchr(text, '.') || !strcasecmp(text, "localhost")))
		return FSC_HOST;
	return -EINVAL;
}

static bool scope_allowed(enum fault_scope scope, unsigned caps)
{
	if (scope == FSC_PATH)
		return caps & SCOPE_PATH;
	if (scope == FSC_HOST)
		return caps & (SCOPE_SOCK | SCOPE_NAME);
	return caps & SCOPE_SOCK;
}

/* The length of the scope text at p, up to its closing bracket. */
static size_t scope_len(const char *p)
{
	size_t n;

	if (p[0] != '[')
		return word_len(p, "]");
	/* "[[::1]:8081]": an IPv6 address brings its own brackets. */
	n = 1 + word_len(p + 1, "]");
	if (p[n] == ']')
		n += 1 + word_len(p + n + 1, "]");
	return n;
}

static int parse_scope(struct cursor *c, struct sys_fault_rule *r)
{
	const char *open = c->p++;
	size_t n = scope_len(c->p);
	int scope;

	if (c->p[n] != ']')
		return fail_at(c, open, "missing ]");
	if (n == 0)
		return fail_at(c, open, "empty scope");
	if (n >= FAULT_SCOPE_MAX)
		return fail_at(c, c->p, "scope too long");
	memcpy(r->scope_text, c->p, n);
	r->scope_text[n] = '\0';
	scope = classify_scope(r->scope_text, r);
	if (scope < 0)
		return fail_at(c, c->p,
			       "expected client, origin, a host name, an "
			       "address or a path with a /");
	if (!scope_allowed((enum fault_scope)scope, rule_caps(r)))
		return fail_at(c, open, "this operation takes no such scope");
	r->scope = (enum fault_scope)scope;
	c->p += n + 1;
	return 0;
}

static int lookup_errno(struct cursor *c, struct sys_fault_rule *r, size_t n)
{
	for (size_t i = 0; i < sizeof(errnos) / sizeof(errnos[0]); i++)
		if (strlen(errnos[i].name) == n &&
		    !strncmp(c->p, errnos[i].name, n)) {
			r->err = -errnos[i].err;
			return 0;
		}
	for (size_t i = 0; i < sizeof(eai_names) / sizeof(eai_names[0]); i++)
		if (strlen(eai_names[i].name) == n &&
		    !strncmp(c->p, eai_names[i].name, n)) {
			if (!(rule_caps(r) & EAI_NAMES))
				return fail_at(
					c, c->p,
					"EAI_ names apply to net.resolve "
					"only");
			r->err = -eai_names[i].err;
			return 0;
		}
	return fail_at(c, c->p, "unknown error name");
}

static int parse_short(struct cursor *c, struct sys_fault_rule *r)
{
	const char *start = c->p;
	uint64_t n = 1;

	c->p += 5;
	if (*c->p == ':') {
		c->p++;
		if (parse_count(c, &n) < 0)
			return -EINVAL;
		if (n == 0)
			return fail_at(c, c->p - 1, "short:N needs N >= 1");
	}
	if (!(rule_caps(r) & CAN_SHORT))
		return fail_at(c, start,
			       "short applies to data transfers only");
	r->kind = FK_SHORT;
	r->amount = (int64_t)n;
	return 0;
}

/* A network or file fault: an errno name, short, eof or delay. */
static int parse_io_fault(struct cursor *c, struct sys_fault_rule *r)
{
	size_t n = word_len(c->p, "@");

	if (n >= 5 && !strncmp(c->p, "short", 5) && (c->p[5] == ':' || n == 5))
		return parse_short(c, r);
	if (n == 3 && !strncmp(c->p, "eof", 3)) {
		if (!(rule_caps(r) & CAN_EOF))
			return fail_at(c, c->p, "eof applies to reads only");
		r->kind = FK_EOF;
		c->p += 3;
		return 0;
	}
	if (!strncmp(c->p, "delay:", 6)) {
		r->kind = FK_DELAY;
		c->p += 6;
		return parse_duration(c, &r->amount);
	}
	if (c->p[0] != 'E')
		return fail_at(c, c->p,
			       "expected an error name (ECONNRESET), short, "
			       "short:N, eof or delay:DURATION");
	if (lookup_errno(c, r, n) < 0)
		return -EINVAL;
	r->kind = FK_ERROR;
	c->p += n;
	return 0;
}

/* A clock offset or step: [+|-]DURATION. */
static int parse_clock_fault(struct cursor *c, struct sys_fault_rule *r)
{
	const char *start = c->p;
	int sign = 1;

	if (*c->p == '+' || *c->p == '-')
		sign = *c->p++ == '-' ? -1 : 1;
	if (parse_duration(c, &r->amount) < 0)
		return -EINVAL;
	r->amount *= sign;
	if (r->op == FOP_CLOCK_MONO && r->amount < 0)
		return fail_at(c, start,
			       "the monotonic clock never goes backwards");
	return 0;
}

static int parse_when(struct cursor *c, struct sys_fault_rule *r)
{
	if (*c->p == 'p') {
		char *end;
		const char *start = ++c->p;
		if (!*start || !strchr("0123456789.", *start))
			return fail_at(c, start, "expected a probability");
		r->p = strtod(start, &end);
		if (end == start || r->p < 0 || r->p > 1)
			return fail_at(c, start,
				       "probability must be between 0 and 1");
		r->when = FW_PROB;
		c->p = end;
		return 0;
	}
	if (parse_count(c, &r->nth) < 0)
		return -EINVAL;
	if (r->nth == 0)
		return fail_at(c, c->p - 1, "calls count from 1");
	r->when = FW_NTH;
	if (*c->p == '+') {
		r->when = FW_FROM;
		c->p++;
	}
	return 0;
}

static int parse_fault(struct cursor *c, struct sys_fault_rule *r)
{
	bool is_clock = r->op >= FOP_CLOCK_WALL;

	if (is_clock && r->kind == FK_FREEZE) {
		if (*c->p == '=')
			return fail_at(c, c->p, "clock.freeze takes no value");
		return 0;
	}
	if (*c->p != '=')
		return fail_at(c, c->p,
			       is_clock ? "expected =DURATION"
					: "expected =FAULT");
	c->p++;
	return is_clock ? parse_clock_fault(c, r) : parse_io_fault(c, r);
}

static bool takes(unsigned caps, const struct sys_fault_rule *r)
{
	if ((r->kind == FK_SHORT && !(caps & CAN_SHORT)) ||
	    (r->kind == FK_EOF && !(caps & CAN_EOF)))
		return false;
	return r->scope == FSC_NONE || scope_allowed(r->scope, caps);
}

/* The operations a rule applies to; 0 if a wildcard matches none. */
static uint64_t rule_ops(const struct sys_fault_rule *r)
{
	uint64_t mask = 0;
	int op, end;

	if (r->ops)
		return r->ops; /* a clock rule */
	if (!r->wild)
		return 1ull << r->op;
	for (wild_range(r->wild, &op, &end); op < end; op++)
		if (takes(ops[op].caps, r))
			mask |= 1ull << op;
	return mask;
}

int sys_fault_parse_rule(const char *spec, struct sys_fault_rule *r, size_t *at,
			 const char **why)
{
	struct cursor c = {.spec = spec, .p = spec};
	size_t len = strlen(spec);

	memset(r, 0, sizeof(*r));
	if (len >= FAULT_SPEC_MAX)
		fail_at(&c, spec + FAULT_SPEC_MAX - 1, "spec too long");
	else if (parse_target(&c, r) == 0 &&
		 (*c.p != '[' || parse_scope(&c, r) == 0) &&
		 parse_fault(&c, r) == 0 &&
		 (*c.p != '@' || (c.p++, parse_when(&c, r)) == 0)) {
		if (*c.p)
			fail_at(&c, c.p, "unexpected character");
		else if (!(r->ops = rule_ops(r)))
			fail_at(&c, spec, "no operation takes this fault");
	}
	if (c.why) {
		*at = c.at;
		*why = c.why;
		return -EINVAL;
	}
	memcpy(r->text, spec, len + 1);
	return 0;
}

int sys_fault_parse_seed(const char *spec, uint64_t *seed, size_t *at,
			 const char **why)
{
	const char *p = spec + 5;
	uint64_t v = 0;

	if (strncmp(spec, "seed=", 5))
		return 0;
	*at = 5;
	*why = "expected a number";
	if (!*p)
		return -EINVAL;
	for (; *p; p++) {
		if (*p < '0' || *p > '9' || v > (UINT64_MAX - 9) / 10) {
			*at = (size_t)(p - spec);
			*why = *p < '0' || *p > '9' ? "expected a digit"
						    : "seed too large";
			return -EINVAL;
		}
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*seed = v;
	return 1;
}
