/*
 * The one table of outcomes: what each way of ending a request or tunnel
 * answers with, and what the access log calls it.  Words are unique (a
 * unit test checks it), upper case, and kept stable: log readers and
 * tests match them.
 */
#include <string.h>

#include "glassproxy/proxy.h"

struct outcome_row {
	int status; /* PROXY_STATUS_AS_SENT: the origin's or the parser's */
	const char *word;
	/* Squid's result code (its access.log %Ss): TCP_MISS for served and
	 * failed forwards, TCP_MISS_ABORTED for a client gone mid-answer,
	 * TCP_TUNNEL, TCP_DENIED for policy, NONE_NONE for what never got as
	 * far as a decision; FROM_CACHE: the cache's word decides. */
	const char *squid;
};

/* A row whose Squid code comes from what the cache did (a forward). */
static const char FROM_CACHE[] = "";

#define AS_SENT PROXY_STATUS_AS_SENT

static const struct outcome_row outcomes[PROXY_OUTCOME_COUNT] = {
	[PROXY_OUTCOME_UNSET] = {AS_SENT, "-", "NONE_NONE"},
	[PROXY_OUTCOME_DIRECT] = {AS_SENT, "DIRECT", FROM_CACHE},
	[PROXY_OUTCOME_PARENT] = {AS_SENT, "PARENT", FROM_CACHE},
	[PROXY_OUTCOME_EARLY_RESPONSE] = {AS_SENT, "EARLY-RESPONSE",
					  FROM_CACHE},
	[PROXY_OUTCOME_ANSWERED_HERE] = {200, "ANSWERED-HERE", "TCP_MISS"},
	[PROXY_OUTCOME_TUNNEL] = {200, "TUNNEL", "TCP_TUNNEL"},
	[PROXY_OUTCOME_TUNNEL_CLIENT_RESET] = {200, "TUNNEL-CLIENT-RESET",
					       "TCP_TUNNEL"},
	[PROXY_OUTCOME_TUNNEL_ORIGIN_RESET] = {200, "TUNNEL-ORIGIN-RESET",
					       "TCP_TUNNEL"},
	[PROXY_OUTCOME_TUNNEL_IDLE_TIMEOUT] = {200, "TUNNEL-IDLE-TIMEOUT",
					       "TCP_TUNNEL"},
	[PROXY_OUTCOME_TUNNEL_INTERNAL] = {200, "TUNNEL-INTERNAL",
					   "TCP_TUNNEL"},
	[PROXY_OUTCOME_CLIENT_CLOSED] = {AS_SENT, "CLIENT-GONE",
					 "TCP_MISS_ABORTED"},
	[PROXY_OUTCOME_CLIENT_TIMEOUT] = {408, "TIMEOUT", "NONE_NONE"},
	[PROXY_OUTCOME_CLIENT_BODY_TIMEOUT] = {408, "BODY-TIMEOUT",
					       "NONE_NONE"},
	[PROXY_OUTCOME_BAD_REQUEST] = {AS_SENT, "BAD-REQUEST", "NONE_NONE"},
	[PROXY_OUTCOME_BAD_REQUEST_BODY] = {400, "BAD-BODY", "NONE_NONE"},
	[PROXY_OUTCOME_HEAD_TOO_LARGE] = {431, "HEAD-TOO-LARGE", "NONE_NONE"},
	[PROXY_OUTCOME_METHOD_TOO_LONG] = {501, "METHOD-TOO-LONG", "NONE_NONE"},
	[PROXY_OUTCOME_HOST_TOO_LONG] = {400, "HOST-TOO-LONG", "NONE_NONE"},
	[PROXY_OUTCOME_NOT_A_PROXY_REQUEST] = {400, "NOT-A-PROXY-REQUEST",
					       "NONE_NONE"},
	[PROXY_OUTCOME_UNSUPPORTED_SCHEME] = {501, "UNSUPPORTED-SCHEME",
					      "NONE_NONE"},
	[PROXY_OUTCOME_USERINFO] = {400, "USERINFO", "NONE_NONE"},
	[PROXY_OUTCOME_TOO_LARGE] = {413, "TOO-LARGE", "TCP_DENIED"},
	[PROXY_OUTCOME_LOOP] = {508, "LOOP", "NONE_NONE"},
	[PROXY_OUTCOME_DENIED_HOST] = {403, "BLOCKED", "TCP_DENIED"},
	[PROXY_OUTCOME_INVALID_HOST] = {403, "INVALID-HOST", "TCP_DENIED"},
	[PROXY_OUTCOME_DENIED_CLIENT] = {403, "CLIENT-REFUSED", "TCP_DENIED"},
	[PROXY_OUTCOME_DENIED_PORT] = {403, "BLOCKED-PORT", "TCP_DENIED"},
	[PROXY_OUTCOME_BUSY] = {503, "BUSY", "NONE_NONE"},
	[PROXY_OUTCOME_NO_MEMORY] = {500, "NO-MEMORY", "NONE_NONE"},
	[PROXY_OUTCOME_ORIGIN_UNRESOLVED] = {502, "ORIGIN-UNRESOLVED",
					     "TCP_MISS"},
	[PROXY_OUTCOME_ORIGIN_REFUSED] = {502, "ORIGIN-REFUSED", "TCP_MISS"},
	[PROXY_OUTCOME_ORIGIN_CONNECT_TIMEOUT] = {504, "CONNECT-TIMEOUT",
						  "TCP_MISS"},
	[PROXY_OUTCOME_ORIGIN_UNREACHABLE] = {502, "ORIGIN-UNREACHABLE",
					      "TCP_MISS"},
	[PROXY_OUTCOME_ORIGIN_TIMEOUT] = {504, "ORIGIN-TIMEOUT", "TCP_MISS"},
	[PROXY_OUTCOME_ORIGIN_RESET] = {502, "ORIGIN-RESET", "TCP_MISS"},
	[PROXY_OUTCOME_BAD_ORIGIN_RESPONSE] = {502, "BAD-RESPONSE", "TCP_MISS"},
	[PROXY_OUTCOME_TOO_MANY_INTERIM] = {502, "TOO-MANY-INTERIM",
					    "TCP_MISS"},
	[PROXY_OUTCOME_UNASKED_SWITCH] = {502, "UNASKED-SWITCH", "TCP_MISS"},
	[PROXY_OUTCOME_ORIGIN_TRUNCATED] = {AS_SENT, "UPSTREAM-TRUNCATED",
					    "TCP_MISS_ABORTED"},
	[PROXY_OUTCOME_ORIGIN_STOPPED_READING] = {502, "ORIGIN-STOPPED-READING",
						  "TCP_MISS"},
	[PROXY_OUTCOME_PARENT_REFUSED] = {502, "PARENT-REFUSED", "TCP_MISS"},
	[PROXY_OUTCOME_HIT] = {AS_SENT, "HIT", "TCP_HIT"},
	[PROXY_OUTCOME_MISS] = {AS_SENT, "MISS", "TCP_MISS"},
	[PROXY_OUTCOME_REFRESH_UNMODIFIED] = {AS_SENT, "REFRESH-UNMODIFIED",
					      "TCP_REFRESH_UNMODIFIED"},
	[PROXY_OUTCOME_REFRESH_MODIFIED] = {AS_SENT, "REFRESH-MODIFIED",
					    "TCP_REFRESH_MODIFIED"},
	[PROXY_OUTCOME_REFRESH_FAIL_OLD] = {AS_SENT, "REFRESH-FAIL-OLD",
					    "TCP_REFRESH_FAIL_OLD"},
	[PROXY_OUTCOME_REFRESH_FAIL_504] = {504, "REFRESH-FAIL-TIMEOUT",
					    "TCP_REFRESH_FAIL_ERR"},
	[PROXY_OUTCOME_STALE] = {AS_SENT, "STALE", "TCP_HIT"},
	[PROXY_OUTCOME_NOT_MODIFIED_HERE] = {304, "NOT-MODIFIED-HERE",
					     "TCP_IMS_HIT"},
	[PROXY_OUTCOME_ONLY_IF_CACHED] = {504, "ONLY-IF-CACHED-MISS",
					  "TCP_MISS"},
	[PROXY_OUTCOME_PURGED] = {200, "PURGED", "TCP_MISS"},
	[PROXY_OUTCOME_PURGE_NONE] = {404, "PURGE-NONE", "TCP_MISS"},
	[PROXY_OUTCOME_PURGE_DENIED] = {405, "PURGE-DENIED", "TCP_DENIED"},
	[PROXY_OUTCOME_AUTH_REQUIRED] = {407, "AUTH-REQUIRED", "TCP_DENIED"},
	[PROXY_OUTCOME_AUTH_THROTTLED] = {429, "AUTH-THROTTLED", "TCP_DENIED"},
	[PROXY_OUTCOME_AUTH_ERROR] = {500, "AUTH-ERROR", "NONE_NONE"},
	[PROXY_OUTCOME_CLIENT_SLOW_READER] = {AS_SENT, "SLOW-READER",
					      "TCP_MISS_ABORTED"},
};

int proxy_outcome_status(enum proxy_outcome outcome)
{
	if ((unsigned)outcome >= PROXY_OUTCOME_COUNT)
		return AS_SENT;
	return outcomes[outcome].status;
}

const char *proxy_outcome_word(enum proxy_outcome outcome)
{
	if ((unsigned)outcome >= PROXY_OUTCOME_COUNT || !outcomes[outcome].word)
		return "-";
	return outcomes[outcome].word;
}

/* Squid's word for a request the cache had a say in. */
static const char *squid_cache_result(const char *cache_result)
{
	static const struct {
		const char *word, *squid;
	} words[] = {
		{"HIT", "TCP_HIT"},
		{"MEM_HIT", "TCP_MEM_HIT"},
		{"REVALIDATED", "TCP_REFRESH_UNMODIFIED"},
		{"REFRESH_UNMODIFIED", "TCP_REFRESH_UNMODIFIED"},
		{"MODIFIED", "TCP_REFRESH_MODIFIED"},
		{"REFRESH_MODIFIED", "TCP_REFRESH_MODIFIED"},
		{"STALE", "TCP_REFRESH_FAIL_OLD"},
		{"REFRESH_FAIL_OLD", "TCP_REFRESH_FAIL_OLD"},
		{"NEGATIVE_HIT", "TCP_NEGATIVE_HIT"},
	};

	for (size_t i = 0; cache_result && i < sizeof(words) / sizeof(*words);
	     i++)
		if (strcmp(cache_result, words[i].word) == 0)
			return words[i].squid;
	return "TCP_MISS";
}

const char *proxy_outcome_squid(enum proxy_outcome outcome,
				const char *cache_result)
{
	const char *squid;

	if ((unsigned)outcome >= PROXY_OUTCOME_COUNT)
		return "NONE_NONE";
	squid = outcomes[outcome].squid;
	if (squid == FROM_CACHE)
		return squid_cache_result(cache_result);
	return squid ? squid : "NONE_NONE";
}
