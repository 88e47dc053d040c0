/*
 * Request-target URLs: absolute-form ("http://user@host:port/path?q") and
 * authority-form ("host:port").  Host names are held to a small alphabet so
 * that the filter module never has to reason about percent-encoding, odd
 * characters or zone identifiers.
 */
#include "parse_int.h"

#include <string.h>

/* The path of "http://host" and "http://host#frag". */
static const char root_path[] = "/";

bool parse_reg_name_ok(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '-' ||
		      c == '_'))
			return false;
	}
	return true;
}

/* dec-octet "." dec-octet "." dec-octet "." dec-octet, no leading zeros. */
static bool ipv4_ok(const char *s, size_t len)
{
	size_t i = 0;
	int parts = 0;

	for (;;) {
		size_t start = i;
		unsigned v = 0;

		while (i < len && i - start < 3 && s[i] >= '0' && s[i] <= '9')
			v = v * 10 + (unsigned)(s[i++] - '0');
		if (i == start || v > 255 || (i - start > 1 && s[start] == '0'))
			return false;
		parts++;
		if (i == len)
			break;
		if (s[i] != '.' || parts == 4)
			return false;
		i++;
	}
	return parts == 4;
}

/*
 * RFC 3986 IPv6address: eight groups of one to four hex digits, one "::"
 * standing for at least one zero group, and an optional IPv4 tail worth
 * two groups.
 */
bool parse_ipv6_ok(const char *s, size_t len)
{
	size_t i = 0;
	int groups = 0;
	bool gap = false;

	if (len < 2)
		return false;
	if (s[0] == ':') {
		if (s[1] != ':')
			return false;
		gap = true;
		i = 2;
		if (i == len)
			return true;
	}
	for (;;) {
		size_t start = i;

		while (i < len && i - start < 5 &&
		       parse_is_hex((unsigned char)s[i]))
			i++;
		if (i < len && s[i] == '.') {
			if (!ipv4_ok(s + start, len - start))
				return false;
			groups += 2;
			break;
		}
		if (i == start || i - start > 4)
			return false;
		groups++;
		if (i == len)
			break;
		if (s[i] != ':')
			return false;
		i++;
		if (i < len && s[i] == ':') {
			if (gap)
				return false;
			gap = true;
			i++;
			if (i == len)
				break;
		} else if (i == len) {
			return false;
		}
	}
	return gap ? groups <= 7 : groups == 8;
}

/* RFC 3986 userinfo: unreserved / pct-encoded / sub-delims / ":". */
static bool userinfo_ok(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '%') {
			if (len - i < 3 ||
			    !parse_is_hex((unsigned char)s[i + 1]) ||
			    !parse_is_hex((unsigned char)s[i + 2]))
				return false;
			i += 2;
			continue;
		}
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') ||
		    (c != 0 && strchr("-._~!$&'()*+,;=:", c)))
			continue;
		return false;
	}
	return true;
}

/* host [":" port] with the host rules above; port 1..65535, decimal. */
static int host_port(const char *s, size_t len, bool port_required,
		     struct http_url *url)
{
	const char *host = s;
	size_t hlen, i;
	uint64_t port;

	if (len == 0)
		return HTTP_E_TARGET;
	if (s[0] == '[') {
		const char *close = memchr(s, ']', len);

		if (close == NULL)
			return HTTP_E_TARGET;
		host = s + 1;
		hlen = (size_t)(close - host);
		if (!parse_ipv6_ok(host, hlen))
			return HTTP_E_TARGET;
		url->host_is_ipv6 = true;
		i = (size_t)(close - s) + 1;
	} else {
		const char *colon = memchr(s, ':', len);

		hlen = colon ? (size_t)(colon - s) : len;
		if (!parse_reg_name_ok(host, hlen))
			return HTTP_E_TARGET;
		i = hlen;
	}
	url->host.ptr = host;
	url->host.len = hlen;
	if (i == len)
		return port_required ? HTTP_E_TARGET : 0;
	if (s[i] != ':')
		return HTTP_E_TARGET;
	i++;
	/* "host:" with an empty port is refused, as are 0 and signs. */
	if (util_parse_u64(s + i, len - i, 65535, &port) != 0 || port == 0)
		return HTTP_E_TARGET;
	url->port = (uint16_t)port;
	url->port_explicit = true;
	return 0;
}

static bool all_vchar(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!parse_is_vchar((unsigned char)s[i]))
			return false;
	return true;
}

/*
 * "http://" or "https://" (the scheme case-insensitive) at the start of s:
 * fills url->scheme and *default_port, returns the offset after "//", or
 * 0 when s does not start so.
 */
static size_t scheme_end(const char *s, size_t len, struct http_url *url,
			 uint16_t *default_port)
{
	const char *colon = memchr(s, ':', len);
	size_t i;

	if (colon == NULL)
		return 0;
	i = (size_t)(colon - s);
	if (parse_ieq_lit(s, i, "http"))
		*default_port = 80;
	else if (parse_ieq_lit(s, i, "https"))
		*default_port = 443;
	else
		return 0;
	url->scheme.ptr = s;
	url->scheme.len = i;
	i++;
	if (len - i < 2 || s[i] != '/' || s[i + 1] != '/')
		return 0;
	return i + 2;
}

int http_parse_url(const char *s, size_t len, struct http_url *url)
{
	const char *at, *hash;
	size_t i, auth;
	uint16_t default_port = 0;
	int rc;

	memset(url, 0, sizeof(*url));
	if (len == 0 || !all_vchar(s, len))
		return HTTP_E_TARGET;
	i = scheme_end(s, len, url, &default_port);
	if (i == 0)
		return HTTP_E_TARGET;

	auth = i;
	while (i < len && s[i] != '/' && s[i] != '?' && s[i] != '#')
		i++;
	/*
	 * "http://a@b@c/" is read differently by different libraries (the
	 * first or the last '@'): refuse it rather than pick one.
	 */
	at = memchr(s + auth, '@', i - auth);
	if (at) {
		size_t ulen = (size_t)(at - (s + auth));

		if (memchr(at + 1, '@', i - auth - ulen - 1) || ulen == 0 ||
		    !userinfo_ok(s + auth, ulen))
			return HTTP_E_TARGET;
		url->userinfo.ptr = s + auth;
		url->userinfo.len = ulen;
		auth += ulen + 1;
	}
	rc = host_port(s + auth, i - auth, false, url);
	if (rc)
		return rc;
	if (!url->port_explicit)
		url->port = default_port;

	if (i == len || s[i] == '#') {
		url->path.ptr = root_path;
		url->path.len = 1;
		return 0;
	}
	/*
	 * "http://host?q" has no slash to start the origin-form path the
	 * proxy would forward; clients normalise it to "/?q", so refuse it.
	 */
	if (s[i] == '?')
		return HTTP_E_TARGET;
	hash = memchr(s + i, '#', len - i);
	url->path.ptr = s + i;
	url->path.len = hash ? (size_t)(hash - (s + i)) : len - i;
	return 0;
}

int http_parse_authority(const char *s, size_t len, struct http_url *url)
{
	memset(url, 0, sizeof(*url));
	if (len == 0 || !all_vchar(s, len))
		return HTTP_E_TARGET;
	return host_port(s, len, true, url);
}
