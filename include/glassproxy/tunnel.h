/*
 * tunnel: the byte relay behind CONNECT.
 *
 * Contract: once the proxy layer has answered a CONNECT with "200 Connection
 * established", tunnel_relay() moves bytes between the client and the origin
 * in both directions until the tunnel ends, without looking at them (they are
 * usually TLS records) and without losing any.
 *
 *  - Early data: bytes the client sent right behind its CONNECT request, which
 *    the proxy has already read into its own buffer, are passed in and reach
 *    the origin before anything else.  They count as client->origin bytes.
 *  - Half-close: when one side stops sending (its recv returns 0), the relay
 *    delivers whatever it still holds for the other side, then shuts down the
 *    other side's sending direction (shutdown SHUT_WR), and keeps the opposite
 *    direction flowing until it ends too.  Both ended: the tunnel ends, 0.
 *  - Errors: a reset or any other error on either socket ends the tunnel at
 *    once; both sockets are shut down in both directions so that each peer
 *    learns promptly, and the reason says which side failed.
 *  - Idle timeout: a tunnel in which no byte moved either way for
 *    opts->idle_timeout_ms ends with TUNNEL_END_IDLE_TIMEOUT.
 *  - Zero copy: on Linux bytes go socket -> pipe -> socket with splice(2),
 *    one pipe per direction; otherwise (use_splice false, or pipe/splice not
 *    supported: the relay falls back by itself) through one fixed buffer per
 *    direction.  Memory per tunnel is fixed: two pipes or two buffers of
 *    opts->buffer_size, never anything proportional to the traffic.
 *  - Ownership: the caller owns both sockets.  The relay makes them
 *    non-blocking for its duration and puts them back in blocking mode before
 *    it returns, but never closes them; it closes its own pipes and frees its
 *    buffers on every path.
 *  - splice(2) cannot pass MSG_NOSIGNAL: the process must ignore SIGPIPE
 *    (sys_signals_block() does), or a peer that has gone away kills it.
 *  - It never prints or logs: it returns a status and fills in statistics for
 *    the access log.  One call uses one thread and blocks until the end; all
 *    OS access goes through the given struct sys.
 */
#ifndef GLASSPROXY_TUNNEL_H
#define GLASSPROXY_TUNNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "glassproxy/sys.h"

#define TUNNEL_IDLE_TIMEOUT_MS_DEFAULT (300 * 1000)
#define TUNNEL_BUFFER_SIZE_DEFAULT     (16 * 1024)

struct tunnel_opts {
	/* End the tunnel after this long without a byte moving; <= 0: never. */
	int idle_timeout_ms;
	/* Move bytes with splice(2) through pipes (falls back to copying). */
	bool use_splice;
	/*
	 * Copy path: the size of each direction's buffer, the most one recv
	 * takes.  0: the default.  (A splice always asks for a pipeful, 64 KiB:
	 * that costs the process no memory.)
	 */
	size_t buffer_size;
};

/* How a tunnel ended, for the access log. */
enum tunnel_end {
	TUNNEL_END_CLOSED = 0,	 /* both sides closed their sending side */
	TUNNEL_END_CLIENT_RESET, /* reset or other error on the client socket */
	TUNNEL_END_ORIGIN_RESET, /* reset or other error on the origin socket */
	TUNNEL_END_IDLE_TIMEOUT, /* no byte moved for idle_timeout_ms */
	TUNNEL_END_INTERNAL,	 /* bad arguments, poll/memory/splice failure */
};

struct tunnel_stats {
	/* Bytes delivered to the origin (early data included) ... */
	uint64_t client_to_origin;
	/* ... and to the client. */
	uint64_t origin_to_client;
	/* From the call to the return, on the sys clock. */
	int64_t duration_ms;
	enum tunnel_end end;
	/* 0, or the negative errno that ended it (the return value). */
	int error;
	/* At least one direction was moving bytes with splice(2) at the end. */
	bool spliced;
};

/* idle 300 s, splice on, 16 KiB copy buffers. */
void tunnel_opts_default(struct tunnel_opts *opts);

/*
 * Relay between two connected sockets until the tunnel ends.  early (may be
 * NULL when early_len is 0) is sent to the origin first; opts may be NULL for
 * the defaults; stats may be NULL.  Returns 0 when both sides closed normally,
 * otherwise the negative errno that ended it (-ECONNRESET, -EPIPE, ...;
 * -ETIMEDOUT for the idle timeout), also stored in stats->error.  stats is
 * filled in on every path.
 */
int tunnel_relay(struct sys *sys, int client_fd, int origin_fd,
		 const void *early, size_t early_len,
		 const struct tunnel_opts *opts, struct tunnel_stats *stats);

/* "closed", "client_reset", "origin_reset", "idle_timeout", "internal". */
const char *tunnel_end_name(enum tunnel_end end);

#endif
