/*
 * Private to the fault sys: the parsed form of one rule, shared by the
 * parser (fault_parse.c) and the injector (sys_fault.c).  The grammar is in
 * docs/faults.md.
 *
 * A rule is immutable once parsed except for its two counters, which any
 * thread may bump: `calls` counts the calls the rule matched (operation and
 * scope), `hits` the faults it injected (only sys_fault_hit() adds to it).
 */
#ifndef GLASSPROXY_SYS_FAULT_INT_H
#define GLASSPROXY_SYS_FAULT_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "glassproxy/sys.h"

/* Every operation a rule can name; the clocks come last. */
enum fault_op {
	FOP_SOCKET,
	FOP_BIND,
	FOP_LISTEN,
	FOP_ACCEPT,
	FOP_CONNECT,
	FOP_RECV,
	FOP_SEND,
	FOP_SPLICE,
	FOP_SENDFILE,
	FOP_PIPE,
	FOP_PIPE_WRITE,
	FOP_PIPE_READ,
	FOP_SHUTDOWN,
	FOP_NET_CLOSE,
	FOP_POLL,
	FOP_SETSOCKOPT,
	FOP_GETSOCKOPT,
	FOP_GETSOCKNAME,
	FOP_SET_NONBLOCKING,
	FOP_RESOLVE,
	FOP_OPEN,
	FOP_READ,
	FOP_PREAD,
	FOP_WRITE,
	FOP_FSYNC,
	FOP_FILE_CLOSE,
	FOP_RENAME,
	FOP_UNLINK,
	FOP_MKDIR,
	FOP_RMDIR,
	FOP_STAT,
	FOP_FSTAT,
	FOP_FTRUNCATE,
	FOP_LIST_DIR,
	FOP_CLOCK_WALL,
	FOP_CLOCK_MONO,
	FOP_COUNT
};
_Static_assert(FOP_COUNT <= 64, "a rule's operations are a 64-bit mask");

enum fault_kind {
	FK_ERROR,  /* return rule->err without making the call */
	FK_SHORT,  /* move at most rule->amount bytes */
	FK_EOF,	   /* return 0 (end of stream) without making the call */
	FK_DELAY,  /* wait rule->amount ms (inner clock and poll), then go on */
	FK_OFFSET, /* this reading of the clock is off by rule->amount ms */
	FK_STEP,   /* the clock jumps by rule->amount ms and stays jumped */
	FK_FREEZE, /* the clock stops at the reading where the rule first fired */
};

enum fault_when {
	FW_ALWAYS, /* every matching call */
	FW_NTH,	   /* @N: the Nth matching call only */
	FW_FROM,   /* @N+: the Nth and every later one */
	FW_PROB,   /* @pX: each matching call with probability X */
};

enum fault_scope {
	FSC_NONE,
	FSC_CLIENT, /* sockets returned by accept */
	FSC_ORIGIN, /* sockets connect was called on */
	FSC_HOST,   /* resolve of that name, sockets connected to its addresses */
	FSC_PEER,   /* sockets whose peer is that address (port optional) */
	FSC_PATH,   /* paths under that prefix, and files opened there */
};

#define FAULT_SPEC_MAX	256
#define FAULT_SCOPE_MAX 128

struct sys_fault_rule {
	char text[FAULT_SPEC_MAX]; /* the spec as given, for describe and gdb */
	unsigned index;		   /* position among the rules, for the PRNG */
	enum fault_op op; /* the operation named; the first one for net.* */
	/*
	 * Every operation the rule applies to (bit 1 << op): one, both clocks
	 * for clock.freeze, or for net.* and fs.* each operation of the table
	 * that takes the rule's fault and scope.
	 */
	uint64_t ops;
	char wild; /* 'n' for net.*, 'f' for fs.*, else 0 */
	enum fault_kind kind;
	enum fault_when when;
	enum fault_scope scope;
	int err;	/* FK_ERROR: a negative errno */
	int64_t amount; /* FK_SHORT bytes; FK_DELAY/OFFSET/STEP milliseconds */
	uint64_t nth;	/* FW_NTH, FW_FROM */
	double p;	/* FW_PROB */
	char scope_text[FAULT_SCOPE_MAX]; /* FSC_HOST name, FSC_PATH prefix */
	struct sys_addr peer;		  /* FSC_PEER */
	bool peer_has_port;
	_Atomic uint64_t calls, hits;
};

/*
 * Parse one rule spec into *r (zeroed first).  On error returns -EINVAL with
 * *at the offset of the offending character and *why a static message.
 */
int sys_fault_parse_rule(const char *spec, struct sys_fault_rule *r, size_t *at,
		     const char **why);
/* "seed=N": 1 and *seed set; 0 if spec is not a seed; -EINVAL if bad. */
int sys_fault_parse_seed(const char *spec, uint64_t *seed, size_t *at,
		     const char **why);
/* The operation's name as a spec spells it ("net.recv"). */
const char *sys_fault_op_name(enum fault_op op);

#endif
