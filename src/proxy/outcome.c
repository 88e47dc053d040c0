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
};

#define AS_SENT PROXY_STATUS_AS_SENT

static const struct outcome_row outcomes[PROXY_OUTCOME_COUNT] = {
	[PROXY_OUTCOME_UNSET] = {AS_SENT, "-"},
	[PROXY_OUTCOME_DIRECT] = {AS_SENT, "DIRECT"},
	[PROXY_OUTCOME_PARENT] = {AS_SENT, "PARENT"},
	[PROXY_OUTCOME_EARLY_RESPONSE] = {AS_SENT, "EARLY-RESPONSE"},
	[PROXY_OUTCOME_ANSWERED_HERE] = {200, "ANSWERED-HERE"},
	[PROXY_OUTCOME_TUNNEL] = {200, "TUNNEL"},
	[PROXY_OUTCOME_TUNNEL_CLIENT_RESET] = {200, "TUNNEL-CLIENT-RESET"},
	[PROXY_OUTCOME_TUNNEL_ORIGIN_RESET] = {200, "TUNNEL-ORIGIN-RESET"},
	[PROXY_OUTCOME_TUNNEL_IDLE_TIMEOUT] = {200, "TUNNEL-IDLE-TIMEOUT"},
	[PROXY_OUTCOME_TUNNEL_INTERNAL] = {200, "TUNNEL-INTERNAL"},
	[PROXY_OUTCOME_CLIENT_CLOSED] = {AS_SENT, "CLIENT-GONE"},
	[PROXY_OUTCOME_CLIENT_TIMEOUT] = {408, "TIMEOUT"},
	[PROXY_OUTCOME_CLIENT_BODY_TIMEOUT] = {408, "BODY-TIMEOUT"},
	[PROXY_OUTCOME_BAD_REQUEST] = {AS_SENT, "BAD-REQUEST"},
	[PROXY_OUTCOME_BAD_REQUEST_BODY] = {400, "BAD-BODY"},
	[PROXY_OUTCOME_HEAD_TOO_LARGE] = {431, "HEAD-TOO-LARGE"},
	[PROXY_OUTCOME_METHOD_TOO_LONG] = {501, "METHOD-TOO-LONG"},
	[PROXY_OUTCOME_HOST_TOO_LONG] = {400, "HOST-TOO-LONG"},
	[PROXY_OUTCOME_NOT_A_PROXY_REQUEST] = {400, "NOT-A-PROXY-REQUEST"},
	[PROXY_OUTCOME_UNSUPPORTED_SCHEME] = {501, "UNSUPPORTED-SCHEME"},
	[PROXY_OUTCOME_USERINFO] = {400, "USERINFO"},
	[PROXY_OUTCOME_TOO_LARGE] = {413, "TOO-LARGE"},
	[PROXY_OUTCOME_LOOP] = {508, "LOOP"},
	[PROXY_OUTCOME_DENIED_HOST] = {403, "BLOCKED"},
	[PROXY_OUTCOME_INVALID_HOST] = {403, "INVALID-HOST"},
	[PROXY_OUTCOME_DENIED_CLIENT] = {403, "CLIENT-REFUSED"},
	[PROXY_OUTCOME_DENIED_PORT] = {403, "BLOCKED-PORT"},
	[PROXY_OUTCOME_BUSY] = {503, "BUSY"},
	[PROXY_OUTCOME_NO_MEMORY] = {500, "NO-MEMORY"},
	[PROXY_OUTCOME_ORIGIN_UNRESOLVED] = {502, "ORIGIN-UNRESOLVED"},
	[PROXY_OUTCOME_ORIGIN_REFUSED] = {502, "ORIGIN-REFUSED"},
	[PROXY_OUTCOME_ORIGIN_CONNECT_TIMEOUT] = {504, "CONNECT-TIMEOUT"},
	[PROXY_OUTCOME_ORIGIN_UNREACHABLE] = {502, "ORIGIN-UNREACHABLE"},
	[PROXY_OUTCOME_ORIGIN_TIMEOUT] = {504, "ORIGIN-TIMEOUT"},
	[PROXY_OUTCOME_ORIGIN_RESET] = {502, "ORIGIN-RESET"},
	[PROXY_OUTCOME_BAD_ORIGIN_RESPONSE] = {502, "BAD-RESPONSE"},
	[PROXY_OUTCOME_TOO_MANY_INTERIM] = {502, "TOO-MANY-INTERIM"},
	[PROXY_OUTCOME_UNASKED_SWITCH] = {502, "UNASKED-SWITCH"},
	[PROXY_OUTCOME_ORIGIN_TRUNCATED] = {AS_SENT, "UPSTREAM-TRUNCATED"},
	[PROXY_OUTCOME_ORIGIN_STOPPED_READING] = {502,
						  "ORIGIN-STOPPED-READING"},
	[PROXY_OUTCOME_PARENT_REFUSED] = {502, "PARENT-REFUSED"},
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

/*
 * Squid's result codes (squid's access.log %Ss): served and failed
 * forwards are TCP_MISS (or the cache's word), a client gone mid-answer
 * TCP_MISS_ABORTED, tunnels TCP_TUNNEL, policy TCP_DENIED, and what never
 * got as far as a decision (unparsable, refused before forwarding,
 * overload) NONE_NONE.
 */
const char *proxy_outcome_squid(enum proxy_outcome outcome,
				const char *cache_result)
{
	switch (outcome) {
	case PROXY_OUTCOME_DIRECT:
	case PROXY_OUTCOME_PARENT:
	case PROXY_OUTCOME_EARLY_RESPONSE:
		return squid_cache_result(cache_result);
	case PROXY_OUTCOME_TUNNEL:
	case PROXY_OUTCOME_TUNNEL_CLIENT_RESET:
	case PROXY_OUTCOME_TUNNEL_ORIGIN_RESET:
	case PROXY_OUTCOME_TUNNEL_IDLE_TIMEOUT:
	case PROXY_OUTCOME_TUNNEL_INTERNAL:
		return "TCP_TUNNEL";
	case PROXY_OUTCOME_CLIENT_CLOSED:
	case PROXY_OUTCOME_ORIGIN_TRUNCATED:
		return "TCP_MISS_ABORTED";
	case PROXY_OUTCOME_DENIED_HOST:
	case PROXY_OUTCOME_INVALID_HOST:
	case PROXY_OUTCOME_DENIED_CLIENT:
	case PROXY_OUTCOME_DENIED_PORT:
	case PROXY_OUTCOME_TOO_LARGE:
		return "TCP_DENIED";
	case PROXY_OUTCOME_ANSWERED_HERE:
	case PROXY_OUTCOME_ORIGIN_UNRESOLVED:
	case PROXY_OUTCOME_ORIGIN_REFUSED:
	case PROXY_OUTCOME_ORIGIN_CONNECT_TIMEOUT:
	case PROXY_OUTCOME_ORIGIN_UNREACHABLE:
	case PROXY_OUTCOME_ORIGIN_TIMEOUT:
	case PROXY_OUTCOME_ORIGIN_RESET:
	case PROXY_OUTCOME_BAD_ORIGIN_RESPONSE:
	case PROXY_OUTCOME_TOO_MANY_INTERIM:
	case PROXY_OUTCOME_UNASKED_SWITCH:
	case PROXY_OUTCOME_ORIGIN_STOPPED_READING:
	case PROXY_OUTCOME_PARENT_REFUSED:
		return "TCP_MISS";
	default:
		return "NONE_NONE";
	}
}
