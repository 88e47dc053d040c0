/*
 * The filter object: building it from patterns and list text, judging
 * hosts, ports and clients.  See include/glassproxy/filter.h for the
 * contract and docs/filter.md for the pattern language.
 */
#include "filter_int.h"

#include "glassproxy/util.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct filter *filter_new(void)
{
	struct filter *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return NULL;
	/* Compiled into libpsl: no file is read, and the data is constant,
	 * so sharing it between threads needs no lock. */
	f->psl = psl_builtin();
	f->cap_rules = 16;
	f->rules = calloc(f->cap_rules, sizeof(*f->rules));
	if (f->rules == NULL)
		goto free_filter;
	f->nrules = 1; /* rule 0 means "none" */
	if (filter_trie_init(&f->trie) < 0)
		goto free_rules;
	return f;
free_rules:
	free(f->rules);
free_filter:
	free(f);
	return NULL;
}

void filter_free(struct filter *f)
{
	if (f == NULL)
		return;
	for (size_t i = 1; i < f->nrules; i++)
		free(f->rules[i].pattern);
	free(f->rules);
	for (size_t i = 0; i < f->nsources; i++)
		free(f->sources[i]);
	free(f->sources);
	filter_trie_free(&f->trie);
	for (unsigned l = 0; l < FILTER_LISTS; l++)
		filter_cidr_set_free(&f->cidrs[l]);
	free(f->connect_ports.ranges);
	free(f->http_ports.ranges);
	free(f);
}

size_t filter_error_count(const struct filter *f)
{
	return f->errors;
}

size_t filter_pattern_count(const struct filter *f, enum filter_list list)
{
	if ((unsigned)list > FILTER_LIST_BLOCK)
		return 0;
	return f->count[list];
}

int filter_where(const char *source, unsigned line, char *dst, size_t cap)
{
	if (line == 0)
		return util_format(dst, cap, "%.200s", source);
	return util_format(dst, cap, "%.200s:%u", source, line);
}

void filter_diag(struct filter_ctx *c, enum filter_severity sev,
		 const char *fmt, ...)
{
	struct filter_diag d;
	va_list ap;
	int n;

	if (sev == FILTER_DIAG_ERROR)
		c->f->errors++;
	if (c->report == NULL)
		return;
	d.severity = sev;
	d.source = c->source;
	d.line = c->line;
	n = filter_where(c->source, c->line, d.text, sizeof(d.text));
	if (n < 0)
		n = 0;
	n += snprintf(d.text + n, sizeof(d.text) - (size_t)n, ": %s",
		      sev == FILTER_DIAG_WARNING ? "warning: " : "");
	if ((size_t)n < sizeof(d.text)) {
		va_start(ap, fmt);
		vsnprintf(d.text + n, sizeof(d.text) - (size_t)n, fmt, ap);
		va_end(ap);
	}
	c->report(c->arg, &d);
}

/* One copy of each source name, however many rules cite it. */
static const char *intern_source(struct filter *f, const char *source)
{
	for (size_t i = f->nsources; i-- > 0;)
		if (strcmp(f->sources[i], source) == 0)
			return f->sources[i];
	if (f->nsources == f->cap_sources) {
		size_t cap = f->cap_sources ? f->cap_sources * 2 : 8;
		char **s = realloc(f->sources, cap * sizeof(*s));
		if (s == NULL)
			return NULL;
		f->sources = s;
		f->cap_sources = cap;
	}
	size_t len = strlen(source);
	char *copy = malloc(len + 1);
	if (copy == NULL)
		return NULL;
	memcpy(copy, source, len + 1);
	f->sources[f->nsources++] = copy;
	return copy;
}

int filter_new_rule(struct filter_ctx *c, unsigned list,
		    enum filter_rule_kind kind, const char *written,
		    uint32_t *idx)
{
	struct filter *f = c->f;
	const char *source = intern_source(f, c->source);
	size_t len = strlen(written);
	char *copy;

	if (source == NULL || f->nrules >= UINT32_MAX)
		goto nomem;
	if (f->nrules == f->cap_rules) {
		size_t cap = f->cap_rules * 2;
		struct filter_rule *r = realloc(f->rules, cap * sizeof(*r));
		if (r == NULL)
			goto nomem;
		f->rules = r;
		f->cap_rules = cap;
	}
	copy = malloc(len + 1);
	if (copy == NULL)
		goto nomem;
	memcpy(copy, written, len + 1);
	*idx = (uint32_t)f->nrules;
	f->rules[f->nrules++] = (struct filter_rule){
		.pattern = copy,
		.source = source,
		.line = c->line,
		.list = (uint8_t)list,
		.kind = (uint8_t)kind,
	};
	return 0;
nomem:
	filter_diag(c, FILTER_DIAG_ERROR, "out of memory adding '%.100s'",
		    written);
	return -ENOMEM;
}

/* Add one trimmed pattern of len bytes (may contain NUL from list text). */
static int add_one(struct filter_ctx *c, enum filter_list list, const char *s,
		   size_t len)
{
	struct filter_pattern p;
	char why[FILTER_REASON_MAX];
	char written[FILTER_NAME_MAX + 8];

	if (memchr(s, '\0', len)) {
		filter_diag(c, FILTER_DIAG_ERROR,
			    "invalid pattern: contains a NUL byte");
		return -EINVAL;
	}
	if (filter_parse_pattern(s, len, &p, why, sizeof(why)) < 0) {
		filter_diag(c, FILTER_DIAG_ERROR, "invalid pattern: %s", why);
		return -EINVAL;
	}
	/* A valid pattern is at most a prefix, 253 bytes and a final dot,
	 * or an address; anything longer was refused above. */
	if (util_copy(written, sizeof(written), s, len) < 0) {
		filter_diag(c, FILTER_DIAG_ERROR,
			    "invalid pattern: longer than %d bytes",
			    FILTER_NAME_MAX);
		return -EINVAL;
	}
	if (p.kind == FILTER_RULE_CIDR)
		return filter_add_cidr_rule(c, (unsigned)list, &p.cidr,
					    written);
	return filter_add_name_rule(c, list, &p, written);
}

int filter_add_pattern(struct filter *f, enum filter_list list,
		       const char *pattern, const char *source, unsigned line,
		       filter_report_fn *report, void *arg)
{
	struct filter_ctx c = {f, source ? source : "(pattern)", line, report,
			       arg};

	if (f == NULL)
		return -EINVAL;
	if ((unsigned)list > FILTER_LIST_BLOCK || pattern == NULL) {
		filter_diag(&c, FILTER_DIAG_ERROR, "invalid pattern or list");
		return -EINVAL;
	}
	size_t len = strlen(pattern);
	util_trim(&pattern, &len);
	return add_one(&c, list, pattern, len);
}

int filter_add_list_text(struct filter *f, enum filter_list list,
			 const char *text, size_t len, const char *source,
			 filter_report_fn *report, void *arg)
{
	struct filter_ctx c = {f, source ? source : "(list)", 0, report, arg};
	int count = 0;
	bool bad = false;
	size_t start = 0;

	if (f == NULL)
		return -EINVAL;
	if ((unsigned)list > FILTER_LIST_BLOCK || (text == NULL && len)) {
		filter_diag(&c, FILTER_DIAG_ERROR, "invalid list");
		return -EINVAL;
	}
	if (len == 0)
		return 0;
	/* Editors on Windows like to start a file with a UTF-8 BOM. */
	if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
		start = 3;
	for (size_t i = start; i <= len; i++) {
		if (i < len && text[i] != '\n')
			continue;
		const char *line = text + start;
		size_t llen = i - start;
		const char *hash;

		start = i + 1;
		c.line++;
		if (i == len && llen == 0)
			break; /* the text ended with a newline */
		if (llen > 0 && line[llen - 1] == '\r')
			llen--;
		/* '#' never occurs in a pattern, so it always starts a
		 * comment, also after a pattern. */
		hash = memchr(line, '#', llen);
		if (hash)
			llen = (size_t)(hash - line);
		util_trim(&line, &llen);
		if (llen == 0)
			continue;
		int rc = add_one(&c, list, line, llen);
		if (rc == -ENOMEM)
			return rc;
		if (rc < 0)
			bad = true;
		else if (count < INT32_MAX)
			count++;
	}
	return bad ? -EINVAL : count;
}

int filter_add_client(struct filter *f, const char *cidr, const char *source,
		      unsigned line, filter_report_fn *report, void *arg)
{
	struct filter_ctx c = {f, source ? source : "(client)", line, report,
			       arg};
	struct filter_cidr parsed;
	char why[FILTER_REASON_MAX];
	char written[64];
	size_t len;

	if (f == NULL)
		return -EINVAL;
	if (cidr == NULL) {
		filter_diag(&c, FILTER_DIAG_ERROR, "invalid client address");
		return -EINVAL;
	}
	len = strlen(cidr);
	util_trim(&cidr, &len);
	if (filter_parse_cidr(cidr, len, &parsed, why, sizeof(why)) < 0 ||
	    util_copy(written, sizeof(written), cidr, len) < 0) {
		filter_diag(&c, FILTER_DIAG_ERROR,
			    "invalid client address or CIDR: %s", why);
		return -EINVAL;
	}
	return filter_add_cidr_rule(&c, FILTER_LIST_CLIENT, &parsed, written);
}

/* Append the ranges of spec to a port set; a bad spec adds nothing. */
static int add_ports(struct filter_ctx *c, struct filter_ports *set,
		     const char *spec)
{
	struct filter_port_range *ranges;
	char why[FILTER_REASON_MAX];
	size_t n;
	int rc;

	if (spec == NULL) {
		filter_diag(c, FILTER_DIAG_ERROR, "invalid port list");
		return -EINVAL;
	}
	rc = filter_parse_ports(spec, strlen(spec), &ranges, &n, why,
				sizeof(why));
	if (rc < 0) {
		filter_diag(c, FILTER_DIAG_ERROR, "invalid port list: %s", why);
		return rc;
	}
	if (set->n + n > set->cap) {
		size_t cap = set->n + n;
		struct filter_port_range *p =
			realloc(set->ranges, cap * sizeof(*p));
		if (p == NULL) {
			free(ranges);
			filter_diag(c, FILTER_DIAG_ERROR, "out of memory");
			return -ENOMEM;
		}
		set->ranges = p;
		set->cap = cap;
	}
	memcpy(set->ranges + set->n, ranges, n * sizeof(*ranges));
	set->n += n;
	free(ranges);
	return (int)n;
}

int filter_add_connect_ports(struct filter *f, const char *spec,
			     const char *source, unsigned line,
			     filter_report_fn *report, void *arg)
{
	struct filter_ctx c = {f, source ? source : "(ports)", line, report,
			       arg};

	if (f == NULL)
		return -EINVAL;
	return add_ports(&c, &f->connect_ports, spec);
}

int filter_add_http_ports(struct filter *f, const char *spec,
			  const char *source, unsigned line,
			  filter_report_fn *report, void *arg)
{
	struct filter_ctx c = {f, source ? source : "(ports)", line, report,
			       arg};

	if (f == NULL)
		return -EINVAL;
	return add_ports(&c, &f->http_ports, spec);
}

static bool in_ports(const struct filter_port_range *r, size_t n, unsigned port)
{
	for (size_t i = 0; i < n; i++)
		if (port >= r[i].lo && port <= r[i].hi)
			return true;
	return false;
}

bool filter_check_port(const struct filter *f, unsigned port)
{
	/* Squid's default SSL_ports: CONNECT exists for TLS on 443. */
	static const struct filter_port_range ssl_ports[] = {{443, 443}};
	const struct filter_ports *set = &f->connect_ports;

	if (port == 0 || port > 65535)
		return false;
	if (set->n == 0)
		return in_ports(ssl_ports, UTIL_ARRAY_LEN(ssl_ports), port);
	return in_ports(set->ranges, set->n, port);
}

bool filter_check_http_port(const struct filter *f, unsigned port)
{
	/* Squid's default Safe_ports: http, ftp, https, gopher, wais,
	 * http-mgmt, gss-http, filemaker, multiling http, and every
	 * unprivileged port.  Not 25 (SMTP), 22, 23, 110, 143, ...: a proxy
	 * must not let a web page talk to a mail server in its place. */
	static const struct filter_port_range safe_ports[] = {
		{80, 80},   {21, 21},	{443, 443}, {70, 70},	{210, 210},
		{280, 280}, {488, 488}, {591, 591}, {777, 777}, {1025, 65535},
	};
	const struct filter_ports *set = &f->http_ports;

	if (port == 0 || port > 65535)
		return false;
	if (set->n == 0)
		return in_ports(safe_ports, UTIL_ARRAY_LEN(safe_ports), port);
	return in_ports(set->ranges, set->n, port);
}

/* The 16-byte filter form of a socket address (IPv4 mapped); -EINVAL
 * for a family that is neither IPv4 nor IPv6. */
static int addr_of(const struct sockaddr *sa, uint8_t a[16])
{
	if (sa == NULL)
		return -EINVAL;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		filter_map_ipv4(ntohl(in->sin_addr.s_addr), a);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 =
			(const struct sockaddr_in6 *)sa;
		/* A v4-mapped address (::ffff:a.b.c.d) is already in the
		 * form the IPv4 rules are stored in. */
		memcpy(a, in6->sin6_addr.s6_addr, 16);
		return 0;
	}
	return -EINVAL;
}

bool filter_check_client(const struct filter *f, const struct sockaddr *sa)
{
	uint8_t a[16];

	if (addr_of(sa, a) < 0)
		return false;
	if (f->count[FILTER_LIST_CLIENT] == 0) {
		/* Loopback only: 127.0.0.0/8 (also as ::ffff:127.0.0.0/104,
		 * the form a dual-stack socket reports) and ::1. */
		static const uint8_t loop6[16] = {[15] = 1};
		static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};
		return memcmp(a, loop6, 16) == 0 ||
		       (memcmp(a, mapped, 12) == 0 && a[12] == 127);
	}
	return filter_cidr_lookup(&f->cidrs[FILTER_LIST_CLIENT], a, NULL) != 0;
}

static void set_rule(const struct filter *f, struct filter_verdict *v,
		     enum filter_result result, uint32_t rule)
{
	v->result = result;
	if (rule == 0)
		return;
	v->list = (enum filter_list)f->rules[rule].list;
	v->pattern = f->rules[rule].pattern;
	v->source = f->rules[rule].source;
	v->line = f->rules[rule].line;
}

static void verdict_init(struct filter_verdict *v)
{
	v->result = FILTER_ALLOW;
	v->list = FILTER_LIST_ALLOW;
	v->pattern = NULL;
	v->source = NULL;
	v->line = 0;
	v->reason[0] = '\0';
}

/* The address as text for a reason: "0.0.0.0", "::", "127.0.0.1". */
static void addr_text(const uint8_t a[16], char *dst, size_t cap)
{
	struct filter_cidr c;

	memcpy(c.addr, a, 16);
	c.plen = 128;
	if (filter_cidr_format(&c, dst, cap) < 0)
		util_format(dst, cap, "(address)");
}

/*
 * The unspecified addresses, 0.0.0.0/8 (also v4-mapped, ::ffff:0.0.0.0/104)
 * and ::, name "this host" to the kernel: Linux connects a socket aimed at
 * them to the local machine, past every rule written for 127.0.0.0/8 and
 * ::1.  They are never a destination, whatever the lists say; the verdict
 * names the built-in rule.  True (and *v filled) when a is one of them.
 */
static bool unspecified(const uint8_t a[16], struct filter_verdict *v)
{
	static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};
	static const uint8_t zero[16] = {0};
	char text[64];

	if (memcmp(a, zero, 16) == 0)
		v->pattern = "::";
	else if (memcmp(a, mapped, 12) == 0 && a[12] == 0)
		v->pattern = "0.0.0.0/8";
	else
		return false;
	addr_text(a, text, sizeof(text));
	v->result = FILTER_BLOCK;
	v->list = FILTER_LIST_BLOCK;
	v->source = FILTER_BUILTIN_SOURCE;
	v->line = 0;
	util_format(v->reason, sizeof(v->reason),
		    "%s is an unspecified address, never a destination", text);
	return true;
}

enum filter_result filter_check_host_stats(const struct filter *f,
					   const char *host, size_t len,
					   struct filter_verdict *out,
					   struct filter_stats *st)
{
	struct filter_verdict scratch;
	struct filter_host h;
	uint32_t best[2] = {0, 0};

	if (out == NULL)
		out = &scratch;
	verdict_init(out);
	if (filter_parse_host(host, len, &h, out->reason, sizeof(out->reason)) <
	    0) {
		out->result = FILTER_INVALID_HOST;
		return out->result;
	}
	if (h.kind == FILTER_HOST_NAME) {
		filter_match_name(f, &h.name, best, st);
	} else {
		if (unspecified(h.addr, out))
			return out->result;
		for (unsigned l = 0; l < 2; l++)
			best[l] = filter_cidr_lookup(&f->cidrs[l], h.addr, st);
	}
	if (best[FILTER_LIST_BLOCK])
		set_rule(f, out, FILTER_BLOCK, best[FILTER_LIST_BLOCK]);
	else if (best[FILTER_LIST_ALLOW])
		set_rule(f, out, FILTER_ALLOW, best[FILTER_LIST_ALLOW]);
	else if (f->count[FILTER_LIST_ALLOW])
		out->result = FILTER_NOT_ALLOWED;
	return out->result;
}

enum filter_result filter_check_addr(const struct filter *f,
				     const struct sockaddr *sa,
				     struct filter_verdict *why)
{
	struct filter_verdict scratch;
	uint8_t a[16];
	uint32_t rule;
	char text[64];

	if (why == NULL)
		why = &scratch;
	verdict_init(why);
	if (addr_of(sa, a) < 0) {
		why->result = FILTER_INVALID_HOST;
		util_format(why->reason, sizeof(why->reason),
			    "address family %d is neither IPv4 nor IPv6",
			    sa ? (int)sa->sa_family : -1);
		return why->result;
	}
	if (unspecified(a, why))
		return why->result;
	/* Only block rules: allow rules speak of names as written, and an
	 * address a name resolves to is no evidence the name is allowed. */
	rule = filter_cidr_lookup(&f->cidrs[FILTER_LIST_BLOCK], a, NULL);
	if (rule == 0)
		return why->result;
	set_rule(f, why, FILTER_BLOCK, rule);
	addr_text(a, text, sizeof(text));
	util_format(why->reason, sizeof(why->reason), "address %s", text);
	return why->result;
}

enum filter_result filter_check_host(const struct filter *f, const char *host,
				     size_t len, struct filter_verdict *out)
{
	return filter_check_host_stats(f, host, len, out, NULL);
}

int filter_verdict_format(const struct filter_verdict *v, char *dst, size_t cap)
{
	char where[300];

	switch (v->result) {
	case FILTER_ALLOW:
	case FILTER_BLOCK:
		if (v->pattern == NULL)
			return util_format(dst, cap,
					   "allowed (no rule matched)");
		filter_where(v->source, v->line, where, sizeof(where));
		return util_format(
			dst, cap, "%s by %s (%s)%s%s",
			v->result == FILTER_BLOCK ? "blocked" : "allowed",
			where, v->pattern, v->reason[0] ? ": " : "", v->reason);
	case FILTER_NOT_ALLOWED:
		return util_format(dst, cap, "not in the allow list");
	case FILTER_INVALID_HOST:
		return util_format(dst, cap, "invalid host: %s", v->reason);
	}
	return util_format(dst, cap, "unknown verdict");
}

const char *filter_result_name(enum filter_result r)
{
	switch (r) {
	case FILTER_ALLOW:
		return "allow";
	case FILTER_BLOCK:
		return "block";
	case FILTER_NOT_ALLOWED:
		return "not-allowed";
	case FILTER_INVALID_HOST:
		return "invalid-host";
	}
	return "unknown";
}

const char *filter_list_name(enum filter_list list)
{
	return list == FILTER_LIST_BLOCK ? "block" : "allow";
}
