/*
 * Syntax of hosts, patterns, CIDRs and port lists.  Everything here works on
 * the caller's bytes and a result struct: no allocation except the port
 * array, no state.
 */
#include "filter_int.h"

#include "glassproxy/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Quote untrusted text for a message: at most 60 bytes, and bytes outside
 * printable ASCII shown as '?', so a hostile host cannot forge log lines. */
static void quote(const char *s, size_t len, char *dst, size_t cap)
{
	size_t max = len > 60 ? 60 : len;
	size_t i;

	if (cap < 4)
		return;
	if (max > cap - 4)
		max = cap - 4;
	for (i = 0; i < max; i++) {
		unsigned char ch = (unsigned char)s[i];
		dst[i] = (ch >= 0x20 && ch < 0x7f && ch != '\'') ? (char)ch
								 : '?';
	}
	if (len > max) {
		memcpy(dst + i, "...", 3);
		i += 3;
	}
	dst[i] = '\0';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int hex_value(char c)
{
	if (is_digit(c))
		return c - '0';
	c = util_lower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

void filter_map_ipv4(uint32_t v4, uint8_t out[16])
{
	memset(out, 0, 10);
	out[10] = 0xff;
	out[11] = 0xff;
	out[12] = (uint8_t)(v4 >> 24);
	out[13] = (uint8_t)(v4 >> 16);
	out[14] = (uint8_t)(v4 >> 8);
	out[15] = (uint8_t)v4;
}

static bool is_mapped_ipv4(const uint8_t a[16])
{
	static const uint8_t prefix[12] = {0, 0, 0, 0, 0,    0,
					   0, 0, 0, 0, 0xff, 0xff};

	return memcmp(a, prefix, sizeof(prefix)) == 0;
}

void filter_cidr_mask(uint8_t addr[16], unsigned plen)
{
	for (unsigned i = 0; i < 16; i++) {
		if (plen >= 8) {
			plen -= 8;
			continue;
		}
		addr[i] &= (uint8_t)(0xff00u >> plen);
		plen = 0;
	}
}

int filter_cidr_format(const struct filter_cidr *c, char *dst, size_t cap)
{
	char buf[INET6_ADDRSTRLEN];

	if (is_mapped_ipv4(c->addr) && c->plen >= 96) {
		const uint8_t *a = c->addr + 12;
		if (c->plen == 128)
			return util_format(dst, cap, "%u.%u.%u.%u", a[0], a[1],
					   a[2], a[3]);
		return util_format(dst, cap, "%u.%u.%u.%u/%u", a[0], a[1], a[2],
				   a[3], c->plen - 96);
	}
	if (!inet_ntop(AF_INET6, c->addr, buf, sizeof(buf)))
		return -EINVAL;
	if (c->plen == 128)
		return util_format(dst, cap, "%s", buf);
	return util_format(dst, cap, "%s/%u", buf, c->plen);
}

/*
 * WHATWG's "ends in a number": browsers, curl and inet_aton() read a host
 * whose last label is a number as an IPv4 address, so such a host must be
 * judged as one (or refused), never as a name.
 */
bool filter_ends_in_number(const char *s, size_t len)
{
	size_t start;

	if (len > 0 && s[len - 1] == '.')
		len--;
	start = len;
	while (start > 0 && s[start - 1] != '.')
		start--;
	if (start == len)
		return false;
	bool digits = true;
	for (size_t i = start; i < len; i++)
		if (!is_digit(s[i]))
			digits = false;
	if (digits)
		return true;
	if (len - start < 2 || s[start] != '0' ||
	    (s[start + 1] != 'x' && s[start + 1] != 'X'))
		return false;
	for (size_t i = start + 2; i < len; i++)
		if (hex_value(s[i]) < 0)
			return false;
	return true;
}

/* One part of a loose IPv4: 0x hex, leading-0 octal, or decimal. */
static int ipv4_number(const char *s, size_t len, uint64_t *out)
{
	unsigned base = 10;
	uint64_t v = 0;

	if (len == 0)
		return -EINVAL;
	if (len >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
		len -= 2;
	} else if (len >= 2 && s[0] == '0') {
		base = 8;
		s++;
		len--;
	}
	for (size_t i = 0; i < len; i++) {
		int d = hex_value(s[i]);
		if (d < 0 || (unsigned)d >= base)
			return -EINVAL;
		v = v * base + (unsigned)d;
		if (v > 0xffffffffu)
			return -ERANGE;
	}
	*out = v;
	return 0;
}

int filter_parse_ipv4_loose(const char *s, size_t len, uint32_t *out)
{
	uint64_t parts[4];
	unsigned n = 0;
	size_t start = 0;

	if (len > 1 && s[len - 1] == '.')
		len--;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != '.')
			continue;
		if (n == 4 || ipv4_number(s + start, i - start, &parts[n]) < 0)
			return -EINVAL;
		n++;
		start = i + 1;
	}
	uint64_t v = 0;
	for (unsigned i = 0; i + 1 < n; i++) {
		if (parts[i] > 255)
			return -EINVAL;
		v |= parts[i] << (8 * (3 - i));
	}
	if (parts[n - 1] >= (1ull << (8 * (5 - n))))
		return -EINVAL;
	*out = (uint32_t)(v | parts[n - 1]);
	return 0;
}

/* Exactly four decimal parts 0-255 without leading zeros: the one spelling
 * every resolver reads the same way. */
static bool ipv4_canonical(const char *s, size_t len, uint32_t *out)
{
	uint32_t v = 0;
	unsigned n = 0;
	size_t start = 0;

	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != '.') {
			if (!is_digit(s[i]))
				return false;
			continue;
		}
		size_t plen = i - start;
		uint64_t part;
		if (n == 4 || plen == 0 || plen > 3 ||
		    (plen > 1 && s[start] == '0') ||
		    util_parse_u64(s + start, plen, 255, &part) < 0)
			return false;
		v = v << 8 | (uint32_t)part;
		n++;
		start = i + 1;
	}
	if (n != 4)
		return false;
	*out = v;
	return true;
}

static int parse_ipv6(const char *s, size_t len, uint8_t out[16])
{
	char buf[INET6_ADDRSTRLEN];

	/* inet_pton refuses zone ids ("%eth0"), which is what we want. */
	if (len == 0 || util_copy(buf, sizeof(buf), s, len) < 0)
		return -EINVAL;
	return inet_pton(AF_INET6, buf, out) == 1 ? 0 : -EINVAL;
}

static bool valid_port(const char *s, size_t len)
{
	uint64_t v;

	/* RFC 3986 allows an empty port; it means the default. */
	return len == 0 || util_parse_u64(s, len, 65535, &v) == 0;
}

/*
 * A DNS name: [A-Za-z0-9_-] labels of 1-63 bytes, at most 253 bytes, one
 * final dot ignored; with stars, '*' may be a whole label.  Lower-cased
 * into out.
 */
static int parse_name(const char *s, size_t len, bool stars,
		      struct filter_name *out, char *why, size_t cap)
{
	char q[72];
	size_t label_start = 0;

	quote(s, len, q, sizeof(q));
	if (len > 0 && s[len - 1] == '.')
		len--;
	if (len == 0) {
		util_format(why, cap, "'%s' is an empty name", q);
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '@') {
			util_format(why, cap,
				    "'%s' contains '@' (userinfo is not part "
				    "of a host)",
				    q);
			return -EINVAL;
		}
		if (ch >= 0x80) {
			util_format(why, cap,
				    "'%s' is not ASCII (write IDN labels in "
				    "punycode, xn--...)",
				    q);
			return -EINVAL;
		}
		if (!(is_digit((char)ch) || (ch >= 'a' && ch <= 'z') ||
		      (ch >= 'A' && ch <= 'Z') || ch == '-' || ch == '_' ||
		      ch == '.' || (stars && ch == '*'))) {
			if (ch >= 0x20 && ch < 0x7f)
				util_format(why, cap,
					    "'%s' contains '%c', not allowed "
					    "in a host name",
					    q, ch);
			else
				util_format(why, cap,
					    "'%s' contains byte 0x%02x, not "
					    "allowed in a host name",
					    q, ch);
			return -EINVAL;
		}
	}
	if (len > FILTER_NAME_MAX) {
		util_format(why, cap, "'%s' is longer than %d bytes", q,
			    FILTER_NAME_MAX);
		return -EINVAL;
	}
	out->len = len;
	out->nlabels = 0;
	out->nstars = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != '.') {
			out->text[i] = util_lower(s[i]);
			continue;
		}
		size_t llen = i - label_start;
		if (llen == 0) {
			util_format(why, cap, "'%s' has an empty label", q);
			return -EINVAL;
		}
		if (llen > FILTER_LABEL_MAX) {
			util_format(why, cap,
				    "'%s' has a label longer than %d bytes", q,
				    FILTER_LABEL_MAX);
			return -EINVAL;
		}
		if (memchr(s + label_start, '*', llen)) {
			if (llen != 1) {
				util_format(why, cap,
					    "'%s': '*' must stand for a whole "
					    "label",
					    q);
				return -EINVAL;
			}
			out->nstars++;
		}
		out->off[out->nlabels++] = (uint16_t)label_start;
		out->text[i] = i < len ? '.' : '\0';
		label_start = i + 1;
	}
	out->off[out->nlabels] = (uint16_t)(len + 1);
	return 0;
}

/*
 * "'<host>' <what>" into why; -EINVAL.  The host is quoted only here, on
 * the way out: every request's host goes through filter_parse_host, and
 * quoting it up front for an error that almost never comes cost a tenth
 * of the parse.
 */
static int host_error(const char *s, size_t len, const char *what, char *why,
		      size_t cap)
{
	char q[72];

	quote(s, len, q, sizeof(q));
	util_format(why, cap, "'%s' %s", q, what);
	return -EINVAL;
}

/* A name whose last label is a number: an IPv4 address in canonical form,
 * or an error saying how resolvers would read it. */
static int numeric_name(const char *s, size_t len, uint32_t *v4, char *why,
			size_t cap)
{
	char q[72];
	size_t whole = len; /* the message quotes the trailing dot too */
	uint32_t loose;

	if (len > 1 && s[len - 1] == '.')
		len--;
	if (ipv4_canonical(s, len, v4))
		return 0;
	quote(s, whole, q, sizeof(q));
	if (filter_parse_ipv4_loose(s, len, &loose) < 0) {
		util_format(why, cap,
			    "'%s' ends in a number but is not an IPv4 address",
			    q);
		return -EINVAL;
	}
	util_format(why, cap,
		    "'%s' spells IPv4 %u.%u.%u.%u in a non-canonical form "
		    "(only dotted decimal is accepted)",
		    q, loose >> 24, (loose >> 16) & 0xff, (loose >> 8) & 0xff,
		    loose & 0xff);
	return -EINVAL;
}

int filter_parse_host(const char *s, size_t len, struct filter_host *out,
		      char *why, size_t cap)
{
	const char *colon;
	size_t ncolons = 0;
	uint32_t v4;

	if (s == NULL || len == 0) {
		util_format(why, cap, "empty host");
		return -EINVAL;
	}
	if (s[0] == '[') {
		const char *close = memchr(s, ']', len);
		size_t rest;
		if (close == NULL)
			return host_error(s, len, "has an unclosed '['", why,
					  cap);
		rest = len - (size_t)(close + 1 - s);
		if (rest > 0 &&
		    (close[1] != ':' || !valid_port(close + 2, rest - 1)))
			return host_error(s, len, "has a bad port", why, cap);
		if (parse_ipv6(s + 1, (size_t)(close - s - 1), out->addr) < 0)
			return host_error(s, len, "is not an IPv6 address", why,
					  cap);
		out->kind = FILTER_HOST_IPV6;
		return 0;
	}
	for (size_t i = 0; i < len; i++)
		ncolons += s[i] == ':';
	if (ncolons >= 2) {
		if (parse_ipv6(s, len, out->addr) < 0)
			return host_error(s, len, "is not an IPv6 address", why,
					  cap);
		out->kind = FILTER_HOST_IPV6;
		return 0;
	}
	colon = memchr(s, ':', len);
	if (colon) {
		size_t hlen = (size_t)(colon - s);
		if (!valid_port(colon + 1, len - hlen - 1))
			return host_error(s, len, "has a bad port", why, cap);
		len = hlen;
	}
	if (parse_name(s, len, false, &out->name, why, cap) < 0)
		return -EINVAL;
	if (filter_ends_in_number(out->name.text, out->name.len)) {
		if (numeric_name(s, len, &v4, why, cap) < 0)
			return -EINVAL;
		filter_map_ipv4(v4, out->addr);
		out->kind = FILTER_HOST_IPV4;
		return 0;
	}
	out->kind = FILTER_HOST_NAME;
	return 0;
}

int filter_parse_cidr(const char *s, size_t len, struct filter_cidr *out,
		      char *why, size_t cap)
{
	char q[72];
	const char *addr = s, *slash;
	size_t alen = len, plen_len = 0;
	const char *plen_text = NULL;
	unsigned base, max;
	uint64_t plen;

	quote(s, len, q, sizeof(q));
	if (len > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', len);
		if (close == NULL) {
			util_format(why, cap, "'%s' has an unclosed '['", q);
			return -EINVAL;
		}
		addr = s + 1;
		alen = (size_t)(close - addr);
		slash = close + 1;
		if (slash < s + len && *slash != '/') {
			util_format(why, cap, "'%s' is not an address or CIDR",
				    q);
			return -EINVAL;
		}
	} else {
		slash = memchr(s, '/', len);
		if (slash)
			alen = (size_t)(slash - s);
		else
			slash = s + len;
	}
	if (slash < s + len) {
		plen_text = slash + 1;
		plen_len = (size_t)(s + len - plen_text);
	}
	if (memchr(addr, ':', alen)) {
		if (parse_ipv6(addr, alen, out->addr) < 0) {
			util_format(why, cap, "'%s' is not an IPv6 address", q);
			return -EINVAL;
		}
		base = 0;
		max = 128;
	} else {
		uint32_t v4;
		if (!ipv4_canonical(addr, alen, &v4)) {
			if (alen == 0 || !filter_ends_in_number(addr, alen)) {
				util_format(why, cap,
					    "'%s' is not an IP address", q);
				return -EINVAL;
			}
			/* Non-canonical: an error; "10.0.0.1.": fine. */
			if (numeric_name(addr, alen, &v4, why, cap) < 0)
				return -EINVAL;
		}
		filter_map_ipv4(v4, out->addr);
		base = 96;
		max = 32;
	}
	plen = max;
	if (plen_text) {
		int rc = util_parse_u64(plen_text, plen_len, max, &plen);
		if (rc < 0) {
			util_format(why, cap,
				    "'%s' has a bad prefix length (0-%u)", q,
				    max);
			return -EINVAL;
		}
	}
	out->plen = base + (unsigned)plen;
	uint8_t masked[16];
	memcpy(masked, out->addr, 16);
	filter_cidr_mask(masked, out->plen);
	if (memcmp(masked, out->addr, 16) != 0) {
		char net[64];
		memcpy(out->addr, masked, 16);
		filter_cidr_format(out, net, sizeof(net));
		util_format(why, cap,
			    "'%s' has host bits set (the network is %s)", q,
			    net);
		return -EINVAL;
	}
	return 0;
}

int filter_parse_pattern(const char *s, size_t len, struct filter_pattern *p,
			 char *why, size_t cap)
{
	char q[72];
	const char *rest = s;
	size_t rlen = len;
	bool prefixed = true;

	quote(s, len, q, sizeof(q));
	if (len == 0) {
		util_format(why, cap, "empty pattern");
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		if (s[i] == ' ' || s[i] == '\t') {
			util_format(why, cap,
				    "'%s' has a blank inside (one pattern a "
				    "line)",
				    q);
			return -EINVAL;
		}
		if (s[i] == ':' && i + 2 < len && s[i + 1] == '/' &&
		    s[i + 2] == '/') {
			util_format(why, cap,
				    "'%s' is a URL; write the host name only",
				    q);
			return -EINVAL;
		}
	}
	if (s[0] == '=') {
		p->kind = FILTER_RULE_EXACT;
		rest++;
		rlen--;
	} else if (len >= 2 && s[0] == '*' && s[1] == '.') {
		p->kind = FILTER_RULE_SUB;
		rest += 2;
		rlen -= 2;
	} else if (s[0] == '.') {
		p->kind = FILTER_RULE_TREE;
		rest++;
		rlen--;
	} else {
		p->kind = FILTER_RULE_TREE;
		prefixed = false;
	}

	const char *colon = memchr(rest, ':', rlen);
	bool addr = colon || memchr(rest, '[', rlen) || memchr(rest, '/', rlen);
	if (!addr) {
		if (parse_name(rest, rlen, true, &p->name, why, cap) < 0)
			return -EINVAL;
		addr = filter_ends_in_number(p->name.text, p->name.len);
	}
	if (addr) {
		if (prefixed) {
			util_format(why, cap,
				    "'%s': '=', '.' and '*.' apply to names, "
				    "not to addresses",
				    q);
			return -EINVAL;
		}
		if (colon &&
		    !memchr(colon + 1, ':',
			    rlen - (size_t)(colon - rest) - 1) &&
		    !memchr(rest, '[', rlen)) {
			util_format(why, cap,
				    "'%s': a port is not part of a pattern", q);
			return -EINVAL;
		}
		if (memchr(rest, '*', rlen)) {
			util_format(why, cap,
				    "'%s': '*' does not apply to addresses; "
				    "use a CIDR",
				    q);
			return -EINVAL;
		}
		p->kind = FILTER_RULE_CIDR;
		return filter_parse_cidr(rest, rlen, &p->cidr, why, cap);
	}
	if (p->name.nstars == p->name.nlabels) {
		util_format(why, cap, "'%s' would match every host name", q);
		return -EINVAL;
	}
	if (!prefixed && p->name.nlabels == 1)
		p->kind = FILTER_RULE_LABEL;
	return 0;
}

int filter_parse_ports(const char *spec, size_t len,
		       struct filter_port_range **out, size_t *n, char *why,
		       size_t cap)
{
	char q[72];
	struct filter_port_range *ranges = NULL;
	size_t count = 0, items = 1;
	size_t start = 0;

	*out = NULL;
	*n = 0;
	quote(spec, len, q, sizeof(q));
	const char *t = spec;
	size_t tlen = len;
	util_trim(&t, &tlen);
	if (tlen == 0) {
		util_format(why, cap, "empty port list");
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++)
		items += spec[i] == ',';
	ranges = calloc(items, sizeof(*ranges));
	if (ranges == NULL) {
		util_format(why, cap, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i <= len; i++) {
		if (i < len && spec[i] != ',')
			continue;
		const char *item = spec + start;
		size_t ilen = i - start;
		const char *dash;
		uint64_t lo, hi;
		char iq[72];

		start = i + 1;
		util_trim(&item, &ilen);
		quote(item, ilen, iq, sizeof(iq));
		if (ilen == 0) {
			util_format(why, cap, "'%s' has an empty item", q);
			goto fail;
		}
		dash = memchr(item, '-', ilen);
		const char *hi_text = dash ? dash + 1 : item;
		size_t lo_len = dash ? (size_t)(dash - item) : ilen;
		size_t hi_len = dash ? ilen - lo_len - 1 : ilen;
		if (util_parse_u64(item, lo_len, 65535, &lo) < 0 ||
		    util_parse_u64(hi_text, hi_len, 65535, &hi) < 0 ||
		    lo == 0 || hi == 0) {
			util_format(why, cap,
				    "'%s' in '%s' is not a port or a range of "
				    "ports (1-65535)",
				    iq, q);
			goto fail;
		}
		if (lo > hi) {
			util_format(why, cap, "range '%s' in '%s' is reversed",
				    iq, q);
			goto fail;
		}
		ranges[count].lo = (uint16_t)lo;
		ranges[count].hi = (uint16_t)hi;
		count++;
	}
	*out = ranges;
	*n = count;
	return 0;
fail:
	free(ranges);
	return -EINVAL;
}
