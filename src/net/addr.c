/* Socket addresses as text, both ways.  Pure: inet_pton/inet_ntop only. */
#include "glassproxy/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "glassproxy/util.h"

static int parse_port(const char *s, uint16_t *port)
{
	uint64_t v;

	if (util_parse_u64(s, strlen(s), 65535, &v) < 0)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

int net_parse_addr(const char *text, struct sys_addr *out)
{
	char host[64];
	const char *colon;
	uint16_t port;

	memset(out, 0, sizeof(*out));
	if (text[0] == '[') {
		const char *close = strchr(text, ']');
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&out->ss;

		if (!close || close[1] != ':')
			return -EINVAL;
		if (util_copy(host, sizeof(host), text + 1,
			      (size_t)(close - text - 1)) < 0)
			return -EINVAL;
		if (parse_port(close + 2, &port) < 0 ||
		    inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
			return -EINVAL;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		out->len = sizeof(*in6);
		return 0;
	}
	colon = strrchr(text, ':');
	if (!colon || strchr(text, ':') != colon)
		return -EINVAL;
	{
		struct sockaddr_in *in = (struct sockaddr_in *)&out->ss;

		if (util_copy(host, sizeof(host), text,
			      (size_t)(colon - text)) < 0)
			return -EINVAL;
		if (parse_port(colon + 1, &port) < 0 ||
		    inet_pton(AF_INET, host, &in->sin_addr) != 1)
			return -EINVAL;
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		out->len = sizeof(*in);
	}
	return 0;
}

int net_format_addr(const struct sys_addr *addr, char *dst, size_t cap)
{
	char host[INET6_ADDRSTRLEN];

	if (addr->ss.ss_family == AF_INET) {
		const struct sockaddr_in *in =
			(const struct sockaddr_in *)&addr->ss;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		return util_format(dst, cap, "%s:%u", host,
				   (unsigned)ntohs(in->sin_port));
	}
	if (addr->ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 =
			(const struct sockaddr_in6 *)&addr->ss;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		return util_format(dst, cap, "[%s]:%u", host,
				   (unsigned)ntohs(in6->sin6_port));
	}
	return util_format(dst, cap, "unknown");
}

int net_format_ip(const struct sys_addr *addr, char *dst, size_t cap)
{
	const void *raw;

	if (addr->ss.ss_family == AF_INET)
		raw = &((const struct sockaddr_in *)&addr->ss)->sin_addr;
	else if (addr->ss.ss_family == AF_INET6)
		raw = &((const struct sockaddr_in6 *)&addr->ss)->sin6_addr;
	else
		return util_format(dst, cap, "unknown");
	if (!inet_ntop(addr->ss.ss_family, raw, dst, (socklen_t)cap))
		return -ENOSPC;
	return (int)strlen(dst);
}

uint16_t net_addr_port(const struct sys_addr *addr)
{
	if (addr->ss.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&addr->ss)->sin_port);
	if (addr->ss.ss_family == AF_INET6)
		return ntohs(
			((const struct sockaddr_in6 *)&addr->ss)->sin6_port);
	return 0;
}

/* Fill *out from an IP literal; 0 on success, -EINVAL if not a literal. */
int net_addr_from_literal(const char *host, uint16_t port, struct sys_addr *out)
{
	struct sockaddr_in *in = (struct sockaddr_in *)&out->ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&out->ss;

	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		out->len = sizeof(*in);
		return 0;
	}
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		out->len = sizeof(*in6);
		return 0;
	}
	return -EINVAL;
}
