/*
 * Where a request may go, decided after routing (issue 15, findings 3 and
 * 11): the addresses a name resolves to, and the port of a plain-http URL.
 *
 * host_allowed() (proxy.c) judges the host as written, before any lookup.
 * That is not enough for a name: "intranet.example" in the hosts file or
 * in DNS may point at 127.0.0.1 or 10.0.0.5, which an address rule of the
 * block list refuses.  So the connection is made by net_connect_vetted,
 * which asks filter_check_addr about every address first and connects
 * only if all of them pass (one blocked address refuses the name, as
 * Squid's dst ACLs do).  A parent proxy is not vetted: it is configured,
 * not asked for, and it resolves the names it is sent itself.
 */
#include <errno.h>
#include <string.h>

#include "glassproxy/util.h"
#include "proxy_int.h"

/* What the vet callback needs, and what it found. */
struct vet_state {
	const struct filter *filter;
	struct filter_verdict why;
	enum filter_result result;
};

static bool vet_addr(void *arg, const struct sys_addr *addr)
{
	struct vet_state *v = arg;

	v->result = filter_check_addr(
		v->filter, (const struct sockaddr *)&addr->ss, &v->why);
	return v->result == FILTER_ALLOW;
}

/* The 403 for a name that resolved into a blocked network. */
static void refuse_address(struct client *cl, struct exchange *x,
			   const char *host, const struct vet_state *v)
{
	char rule[FILTER_REASON_MAX + 512], msg[sizeof(rule) + 600];

	filter_verdict_format(&v->why, rule, sizeof(rule));
	log_event(cl->px->log, LOG_INFO, "%s %s %s: refused: %s", cl->addr,
		  x->method, x->url, rule);
	util_format(msg, sizeof(msg), "%s does not serve the host %s here: %s.",
		    PROXY_NAME, host, rule);
	proxy_refuse(cl, x,
		     v->result == FILTER_INVALID_HOST
			     ? PROXY_OUTCOME_INVALID_HOST
			     : PROXY_OUTCOME_DENIED_HOST,
		     msg);
}

int proxy_connect_vetted(struct client *cl, struct exchange *x,
			 const struct route *route)
{
	struct proxy *px = cl->px;
	struct vet_state v = {.filter = cl->rules->filter,
			      .result = FILTER_ALLOW};
	char msg[512];
	int fd;

	memset(&v.why, 0, sizeof(v.why));
	fd = net_connect_vetted(px->sys, cl->rules->hosts, route->host,
				route->port, proxy_live(cl)->connect_timeout_ms,
				route->via_parent ? NULL : vet_addr, &v, NULL);
	if (fd >= 0)
		return fd;
	if (fd == -EACCES && v.result != FILTER_ALLOW) {
		refuse_address(cl, x, route->host, &v);
		return -1;
	}
	enum proxy_outcome o =
		proxy_connect_error(fd, route->host, msg, sizeof(msg));
	log_event(px->log, LOG_WARN, "%s %s: %s (%s)", cl->addr, x->url, msg,
		  log_errno_name(fd));
	/* A cached entry may stand in for an unreachable origin. */
	if (!proxy_cache_failed(cl, x))
		proxy_refuse(cl, x, o, msg);
	return -1;
}

bool proxy_http_port_allowed(struct client *cl, struct exchange *x,
			     unsigned port)
{
	char msg[128];

	if (filter_check_http_port(cl->rules->filter, port))
		return true;
	util_format(msg, sizeof(msg),
		    "Plain http to port %u is not allowed here (--http-ports).",
		    port);
	log_event(cl->px->log, LOG_INFO, "%s %s %s: %s", cl->addr, x->method,
		  x->url, msg);
	proxy_refuse(cl, x, PROXY_OUTCOME_DENIED_PORT, msg);
	return false;
}
