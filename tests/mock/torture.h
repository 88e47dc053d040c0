/*
 * Torture loops for unit tests, as SQLite's FAULTSIM and curl's -t do:
 * run an operation with its 1st, 2nd, 3rd ... sys call (or allocation)
 * failing until a run makes no call that fails, and check every time that
 * it ended cleanly.
 *
 * The countdown injector is a struct sys over another one (the mock, or
 * posix on socketpairs and temporary files: an operation whose path changes
 * after a failure is easier to follow on a real kernel than in a script).
 * It counts the calls of a chosen set and fails the Nth with a chosen errno,
 * once (transient) or also every later one (persistent).  Close always
 * closes, then reports the error, as Linux does.  It also tracks every
 * descriptor that socket, accept, pipe and open return through it, until
 * they are closed.
 *
 * Allocations are counted by wrappers around malloc, calloc, realloc and
 * free (the test binaries link with -Wl,--wrap=malloc and friends, so
 * the library's own calls are seen), and with TORTURE_ALLOC they are
 * failed (NULL) in the same countdown.
 *
 * torture_run() asserts after each run that:
 *  - the result is 0 or a negative errno (a clean error, never garbage);
 *  - every descriptor opened through the injector was closed;
 *  - as many allocations are live as before the run;
 *  - a run whose call failed did not report success, unless op->check
 *    says that is right (a logged write error, a failed close);
 * and op->check can assert that nothing observable is half done.
 * The injector serves one thread: torture loops are single-threaded.
 */
#ifndef GLASSPROXY_TORTURE_H
#define GLASSPROXY_TORTURE_H

#include <stdbool.h>
#include <stddef.h>

#include "glassproxy/sys.h"

#define TORTURE_NET_IO	  0x01u /* recv send splice sendfile pipe_read/write */
#define TORTURE_NET_SETUP 0x02u /* every other net member but close */
#define TORTURE_NET_CLOSE 0x04u
#define TORTURE_FS	  0x08u /* every fs member but close */
#define TORTURE_FS_CLOSE  0x10u
#define TORTURE_ALLOC	  0x20u /* malloc, calloc, realloc */
#define TORTURE_CLOCK	  0x40u /* now_wall (now_mono_ms cannot fail) */
#define TORTURE_SYS                                                            \
	(TORTURE_NET_IO | TORTURE_NET_SETUP | TORTURE_NET_CLOSE | TORTURE_FS | \
	 TORTURE_FS_CLOSE)

/*
 * Arm the injector over inner: count calls in set, fail the nth with err
 * (a negative errno; allocations fail with NULL), and every later one too
 * when persistent.  nth 0 only counts.  Returns the injector's sys.
 */
struct sys *torture_sys(struct sys *inner, unsigned set, int err,
			bool persistent, long nth);
/* Stop counting and failing allocations (the sys stays usable). */
void torture_disarm(void);
long torture_calls(void); /* calls of the set seen since torture_sys() */
long torture_fired(void); /* how many of them failed */
/* The name of the first call that failed ("recv", "malloc"), or NULL. */
const char *torture_failed_call(void);
/* Descriptors opened through the injector and not closed since. */
int torture_open_fds(void);
/* malloc + calloc + realloc(NULL) - free, since the program started. */
long torture_live_allocs(void);

struct torture_op {
	const char *name;
	unsigned set;	 /* TORTURE_* */
	int err;	 /* the errno injected, negative */
	bool persistent; /* also fail every call after the nth */
	/* Before each run, outside the injector: fresh sockets, files.  It
	 * returns the sys to wrap.  Must not be NULL. */
	struct sys *(*setup)(void *ctx);
	/* The operation; returns 0 or a negative errno. */
	int (*run)(struct sys *sys, void *ctx);
	/*
	 * After each run (may be NULL): assert that nothing is half done.
	 * failed is the call that failed (NULL on the clean run).  Returns
	 * true when a success despite that failure is right.
	 */
	bool (*check)(void *ctx, int rc, const char *failed);
	void (*teardown)(void *ctx); /* after each run; may be NULL */
};

/*
 * Run op with its 1st, 2nd, ... call failing until a run has no failure;
 * returns how many runs had one (the number of calls the clean run made).
 */
long torture_run(const struct torture_op *op, void *ctx);

#endif
