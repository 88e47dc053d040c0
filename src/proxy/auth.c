/*
 * The proxy authentication step (issue 15; the auth module does the
 * cryptography, the throttle and the per-connection session).
 *
 * With --auth-file, every request and every CONNECT must carry valid
 * `Proxy-Authorization: Basic` credentials before the filter or the
 * network is consulted, so an unauthenticated client learns nothing of
 * what the lists allow.  The answers:
 *   - no header, a malformed one, or a wrong user or password: 407 with
 *     Proxy-Authenticate (RFC 9110 section 11.7.1);
 *   - an address with too many recent failures: 429 with Retry-After
 *     (RFC 6585 section 4), even for the right password: a 407 would
 *     invite the client to guess again (docs/security.md);
 *   - crypt(3) or memory failing: 500.
 * The connection's session (the last credentials verified on it) is made
 * on its first request that needs it: a connection to a proxy without
 * --auth-file, most of them idle, never carries one.
 * Proxy-Authorization is hop-by-hop (head.c never copies it upstream), and
 * only a verified user name reaches the access log.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "glassproxy/util.h"
#include "proxy_int.h"

uint64_t proxy_auth_failures(struct proxy *px)
{
	uint64_t n;

	pthread_mutex_lock(&px->lock);
	n = px->auth_failures;
	pthread_mutex_unlock(&px->lock);
	return n;
}

static void count_failure(struct client *cl, int64_t now_ms, bool throttled)
{
	struct proxy *px = cl->px;

	if (!throttled && px->throttle)
		auth_throttle_fail(px->throttle,
				   (const struct sockaddr *)&cl->peer.ss,
				   now_ms);
	pthread_mutex_lock(&px->lock);
	px->auth_failures++;
	pthread_mutex_unlock(&px->lock);
}

/* 407 with the challenge; the client may retry with credentials. */
static void require_auth(struct client *cl, struct exchange *x)
{
	char challenge[AUTH_CHALLENGE_MAX], extra[AUTH_CHALLENGE_MAX + 64];

	/* The realm was validated when the configuration was read. */
	if (auth_challenge(proxy_live(cl)->auth_realm, challenge,
			   sizeof(challenge)) < 0)
		util_format(challenge, sizeof(challenge), "Basic realm=\"%s\"",
			    PROXY_NAME);
	util_format(extra, sizeof(extra), "Proxy-Authenticate: %s\r\n",
		    challenge);
	stats_denied(cl->px->stats, STATS_DENY_AUTH);
	proxy_answer_extra(cl, x, PROXY_OUTCOME_AUTH_REQUIRED, 0,
			   "This proxy requires authentication.", extra);
}

/* 429: too many failures from this address; try after wait_ms. */
static void refuse_throttled(struct client *cl, struct exchange *x,
			     int64_t wait_ms)
{
	char extra[64];

	util_format(extra, sizeof(extra), "Retry-After: %lld\r\n",
		    (long long)((wait_ms + 999) / 1000));
	log_event(cl->px->log, LOG_WARN,
		  "%s: authentication throttled after repeated failures",
		  cl->addr);
	stats_denied(cl->px->stats, STATS_DENY_AUTH);
	proxy_answer_extra(cl, x, PROXY_OUTCOME_AUTH_THROTTLED, 0,
			   "Too many failed authentication attempts from "
			   "your address; try again later.",
			   extra);
}

/* The one Proxy-Authorization field; false when absent or repeated. */
static bool credentials(const struct http_request *r, struct http_slice *out)
{
	ssize_t i = http_find_header(r->headers, r->num_headers,
				     "proxy-authorization", 0);

	if (i < 0 ||
	    http_find_header(r->headers, r->num_headers, "proxy-authorization",
			     (size_t)i + 1) >= 0)
		return false;
	*out = r->headers[i].value;
	return true;
}

void proxy_auth_end(struct client *cl)
{
	if (!cl->auth)
		return;
	auth_session_clear(cl->auth);
	free(cl->auth);
	cl->auth = NULL;
}

/* The connection's session, made on first use; false after a 500. */
static bool session(struct client *cl, struct exchange *x)
{
	if (cl->auth)
		return true;
	cl->auth = calloc(1, sizeof(*cl->auth));
	if (cl->auth)
		return true;
	log_event(cl->px->log, LOG_ERROR, "%s: checking credentials: %s",
		  cl->addr, strerror(ENOMEM));
	proxy_refuse(cl, x, PROXY_OUTCOME_AUTH_ERROR,
		     "Checking your credentials failed.");
	return false;
}

bool proxy_auth_check(struct client *cl, struct exchange *x)
{
	const struct auth *a = cl->rules->auth;
	int64_t now = sys_now_mono_ms(cl->px->sys), wait = 0;
	struct http_slice value;
	int rc;

	if (!a)
		return true;
	if (cl->px->throttle)
		wait = auth_throttle_check(
			cl->px->throttle, (const struct sockaddr *)&cl->peer.ss,
			now);
	if (wait > 0) {
		count_failure(cl, now, true);
		refuse_throttled(cl, x, wait);
		return false;
	}
	if (!credentials(&x->req, &value)) {
		require_auth(cl, x);
		return false;
	}
	if (!session(cl, x))
		return false;
	rc = auth_check_session(a, cl->auth, value.ptr, value.len, x->user,
				sizeof(x->user));
	if (rc == 0)
		return true;
	if (rc == -EACCES) {
		log_event(cl->px->log, LOG_INFO,
			  "%s: proxy authentication failed", cl->addr);
		count_failure(cl, now, false);
	}
	if (rc == -EACCES || rc == -EINVAL) {
		require_auth(cl, x);
		return false;
	}
	log_event(cl->px->log, LOG_ERROR, "%s: checking credentials: %s",
		  cl->addr, strerror(-rc));
	proxy_refuse(cl, x, PROXY_OUTCOME_AUTH_ERROR,
		     "Checking your credentials failed.");
	return false;
}
