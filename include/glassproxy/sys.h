/*
 * sys: the operating-system boundary.
 *
 * Contract: every call glassproxy makes into the kernel (sockets, name
 * resolution, the clock, files) goes through a `struct sys`, a bundle of three
 * const operation tables and one context pointer.  Nothing outside src/sys/
 * calls the OS directly; a test in harness/ enforces it.
 *
 *  - Three implementations share these tables: posix (the real one,
 *    sys_posix()), a CMocka mock (tests/mock/sys_mock.h) and the fault sys
 *    (sys_fault_new() below, docs/faults.md), which wraps another `struct
 *    sys` and injects faults without any caller changing.
 *  - Every operation returns 0 or a non-negative count on success and a
 *    negative errno value on failure (-ECONNRESET, -ENOSPC, ...).  errno itself
 *    is never part of the interface, so a mock can script a failure with one
 *    will_return() and a wrapper can inject one by returning it.
 *  - Callers use the thin wrappers below (sys_recv(sys, fd, buf, len)), never
 *    the tables: each wrapper is a real function, so one gdb breakpoint on
 *    sys_recv catches every receive whichever implementation is underneath.
 *  - Members are verbs and take the context pointer first.  A NULL member
 *    means "not supported here": its wrapper returns -ENOSYS.
 *  - The posix implementation retries EINTR itself, so callers never see it.
 */
#ifndef GLASSPROXY_SYS_H
#define GLASSPROXY_SYS_H

#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

/* A socket address with its length, big enough for IPv4 and IPv6. */
struct sys_addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

struct sys_net_ops {
	int (*socket)(void *ctx, int domain, int type, int protocol);
	int (*bind)(void *ctx, int fd, const struct sys_addr *addr);
	int (*listen)(void *ctx, int fd, int backlog);
	/* Returns the new descriptor; fills *peer when peer is not NULL. */
	int (*accept)(void *ctx, int fd, struct sys_addr *peer);
	/* On a non-blocking socket may return -EINPROGRESS. */
	int (*connect)(void *ctx, int fd, const struct sys_addr *addr);
	ssize_t (*recv)(void *ctx, int fd, void *buf, size_t len, int flags);
	ssize_t (*send)(void *ctx, int fd, const void *buf, size_t len,
			int flags);
	/* Linux splice(2) between a socket and a pipe; flags are SPLICE_F_*. */
	ssize_t (*splice)(void *ctx, int fd_in, int fd_out, size_t len,
			  unsigned int flags);
	/*
	 * Linux sendfile(2): up to count bytes of the file in_fd, from *offset
	 * (advanced by what was sent) when offset is not NULL, to out_fd.
	 */
	ssize_t (*sendfile)(void *ctx, int out_fd, int in_fd, off_t *offset,
			    size_t count);
	/* A pipe with both ends non-blocking and close-on-exec. */
	int (*pipe)(void *ctx, int fds[2]);
	/*
	 * Plain write(2)/read(2) on a pipe end made by pipe above.  A write
	 * to a pipe nobody reads raises SIGPIPE unless it is ignored
	 * (sys_signals_block() does), then returns -EPIPE.
	 */
	ssize_t (*pipe_write)(void *ctx, int fd, const void *buf, size_t len);
	ssize_t (*pipe_read)(void *ctx, int fd, void *buf, size_t len);
	int (*shutdown)(void *ctx, int fd, int how);
	int (*close)(void *ctx, int fd);
	/* Returns the number of ready descriptors, 0 on timeout. */
	int (*poll)(void *ctx, struct pollfd *fds, nfds_t nfds, int timeout_ms);
	int (*setsockopt)(void *ctx, int fd, int level, int name,
			  const void *val, socklen_t len);
	int (*getsockopt)(void *ctx, int fd, int level, int name, void *val,
			  socklen_t *len);
	int (*getsockname)(void *ctx, int fd, struct sys_addr *out);
	int (*set_nonblocking)(void *ctx, int fd, int on);
	/*
	 * Resolve host (a name or an IP literal) for a TCP connection to port.
	 * Fills up to max addresses, returns how many (at least 1) or a
	 * negative code: -ENOENT when the name does not exist, -EAGAIN on a
	 * temporary resolver failure.
	 */
	int (*resolve)(void *ctx, const char *host, uint16_t port,
		       struct sys_addr *out, size_t max);
	/*
	 * Linux epoll(7), for the server's waiting room (issue 13): one
	 * thread watches every idle connection.  epoll_create gives a
	 * close-on-exec descriptor (closed with close above); epoll_wait
	 * returns how many events it filled, 0 on timeout or EINTR.
	 */
	int (*epoll_create)(void *ctx);
	int (*epoll_ctl)(void *ctx, int epfd, int op, int fd,
			 struct epoll_event *ev);
	int (*epoll_wait)(void *ctx, int epfd, struct epoll_event *events,
			  int max, int timeout_ms);
};

struct sys_clock_ops {
	/* Milliseconds from an arbitrary origin; never goes backwards. */
	int64_t (*now_mono_ms)(void *ctx);
	/* Wall-clock time (CLOCK_REALTIME): for logs and HTTP dates only. */
	int (*now_wall)(void *ctx, struct timespec *out);
};

struct sys_fs_ops {
	int (*open)(void *ctx, const char *path, int flags, mode_t mode);
	ssize_t (*read)(void *ctx, int fd, void *buf, size_t len);
	/* pread(2): reads at offset without moving the file position. */
	ssize_t (*pread)(void *ctx, int fd, void *buf, size_t len,
			 off_t offset);
	ssize_t (*write)(void *ctx, int fd, const void *buf, size_t len);
	int (*fsync)(void *ctx, int fd);
	int (*close)(void *ctx, int fd);
	int (*rename)(void *ctx, const char *from, const char *to);
	int (*unlink)(void *ctx, const char *path);
	int (*mkdir)(void *ctx, const char *path, mode_t mode);
	int (*stat)(void *ctx, const char *path, struct stat *out);
	int (*fstat)(void *ctx, int fd, struct stat *out);
	int (*ftruncate)(void *ctx, int fd, off_t len);
	int (*rmdir)(void *ctx, const char *path);
	/*
	 * Calls each(arg, name, d_type) for every entry of the directory path
	 * except "." and "..", in no particular order; d_type is one of the
	 * SYS_DT_* values below.  Stops at the first negative return of each
	 * and returns it; otherwise returns 0, or a negative errno when the
	 * directory cannot be read.  No DIR * ever reaches the caller.
	 */
	int (*list_dir)(void *ctx, const char *path,
			int (*each)(void *arg, const char *name,
				    unsigned char d_type),
			void *arg);
};

/*
 * Entry types for list_dir (Linux's DT_* values, spelt here because strict
 * POSIX headers do not define DT_*).  SYS_DT_UNKNOWN means "ask stat".
 */
#define SYS_DT_UNKNOWN 0
#define SYS_DT_DIR     4
#define SYS_DT_REG     8
#define SYS_DT_LNK     10

/* Linux's SO_REUSEPORT, for setsockopt through the net table (POSIX
 * headers do not define it; sys_posix.c checks the value). */
#define SYS_SO_REUSEPORT 15

struct sys {
	const struct sys_net_ops *net;
	const struct sys_clock_ops *clock;
	const struct sys_fs_ops *fs;
	void *ctx;
};

/* The real operating system.  Stateless: one instance serves all threads. */
struct sys *sys_posix(void);

/*
 * The fault sys: a `struct sys` that wraps another (posix in the binary, the
 * mock in unit tests) and injects the faults its specs describe.  The
 * grammar, with every operation, fault kind and scope, is in docs/faults.md;
 * for instance "net.recv[origin]=ECONNRESET@3", "fs.write[cache/]=ENOSPC@p0.2",
 * "clock.step=+10s@5", "seed=42".
 *
 *  - A member no rule names passes straight through (one check).  Delays
 *    wait on the inner sys's clock and poll, so over the mock they cost no
 *    real time.
 *  - Scopes learn from the calls that pass: sockets returned by accept are
 *    "client", sockets connect is called on are "origin" (and are tied to
 *    the host name a resolve returned their address for), files carry the
 *    path they were opened with.
 *  - Probabilities come from a PRNG keyed by (seed, rule, call number), so
 *    a run replays exactly with the same seed.  `seed=N` among the specs
 *    overrides the seed argument.
 *  - Thread-safe: one instance serves every thread.
 *  - Every injected fault goes through sys_fault_hit(), so `break
 *    sys_fault_hit` in gdb stops at each one (`p *rule` shows which).
 */
struct sys_fault_rule;

/*
 * Build a fault sys over inner from nspecs specs.  A bad spec gives -EINVAL
 * and, in err, two lines: the spec and a caret under the offending
 * character followed by the reason ("net.recv=ECONNRSET@3" /
 * "         ^ unknown error name").  -ENOMEM otherwise on failure.
 */
int sys_fault_new(struct sys *inner, const char *const *specs, size_t nspecs,
		  uint64_t seed, struct sys **out, char *err, size_t errlen);
/*
 * Frees a fault sys (not its inner one).  This and the functions below do
 * nothing (or return 0) for NULL or a sys that is no fault sys.
 */
void sys_fault_free(struct sys *s);
/*
 * "seed=N" then one line per rule: its spec and its counters, e.g.
 * "net.recv=ECONNRESET@3 hits=1 calls=4".  Always NUL-terminated when cap > 0;
 * returns the length the whole text needs (as snprintf does).
 */
size_t sys_fault_describe(const struct sys *s, char *buf, size_t cap);
size_t sys_fault_rule_count(const struct sys *s);
/* Faults rule i (in spec order, seed= not counted) has injected so far. */
uint64_t sys_fault_hits(const struct sys *s, size_t i);
uint64_t sys_fault_seed(const struct sys *s);
/*
 * Tell a fault sys that host has these addresses, as if a resolve had
 * returned them: for names the caller looks up itself (net's hosts file),
 * so that host scopes still match.  -EINVAL if s is no fault sys.
 */
int sys_fault_learn(struct sys *s, const char *host,
		    const struct sys_addr *addrs, size_t n);
/*
 * Split text (GLASSPROXY_FAULTS) in place at spaces, tabs, newlines and ';'
 * into at most max specs; returns how many, or -E2BIG.
 */
int sys_fault_split(char *text, const char **specs, size_t max);
/* Counts one injected fault.  It exists to be a breakpoint. */
void sys_fault_hit(const struct sys_fault_rule *rule);

/* ---- network ---- */
int sys_socket(struct sys *s, int domain, int type, int protocol);
int sys_bind(struct sys *s, int fd, const struct sys_addr *addr);
int sys_listen(struct sys *s, int fd, int backlog);
int sys_accept(struct sys *s, int fd, struct sys_addr *peer);
int sys_connect(struct sys *s, int fd, const struct sys_addr *addr);
ssize_t sys_recv(struct sys *s, int fd, void *buf, size_t len, int flags);
ssize_t sys_send(struct sys *s, int fd, const void *buf, size_t len, int flags);
ssize_t sys_splice(struct sys *s, int fd_in, int fd_out, size_t len,
		   unsigned int flags);
ssize_t sys_sendfile(struct sys *s, int out_fd, int in_fd, off_t *offset,
		     size_t count);
int sys_pipe(struct sys *s, int fds[2]);
ssize_t sys_pipe_write(struct sys *s, int fd, const void *buf, size_t len);
ssize_t sys_pipe_read(struct sys *s, int fd, void *buf, size_t len);
int sys_shutdown(struct sys *s, int fd, int how);
int sys_close(struct sys *s, int fd);
int sys_poll(struct sys *s, struct pollfd *fds, nfds_t nfds, int timeout_ms);
int sys_setsockopt(struct sys *s, int fd, int level, int name, const void *val,
		   socklen_t len);
int sys_getsockopt(struct sys *s, int fd, int level, int name, void *val,
		   socklen_t *len);
int sys_getsockname(struct sys *s, int fd, struct sys_addr *out);
int sys_set_nonblocking(struct sys *s, int fd, int on);
int sys_resolve(struct sys *s, const char *host, uint16_t port,
		struct sys_addr *out, size_t max);
int sys_epoll_create(struct sys *s);
int sys_epoll_ctl(struct sys *s, int epfd, int op, int fd,
		  struct epoll_event *ev);
int sys_epoll_wait(struct sys *s, int epfd, struct epoll_event *events, int max,
		   int timeout_ms);

/* ---- clock ---- */
int64_t sys_now_mono_ms(struct sys *s);
int sys_now_wall(struct sys *s, struct timespec *out);

/* ---- files ---- */
int sys_open(struct sys *s, const char *path, int flags, mode_t mode);
ssize_t sys_read(struct sys *s, int fd, void *buf, size_t len);
ssize_t sys_pread(struct sys *s, int fd, void *buf, size_t len, off_t offset);
ssize_t sys_write(struct sys *s, int fd, const void *buf, size_t len);
int sys_fsync(struct sys *s, int fd);
int sys_file_close(struct sys *s, int fd);
int sys_rename(struct sys *s, const char *from, const char *to);
int sys_unlink(struct sys *s, const char *path);
int sys_mkdir(struct sys *s, const char *path, mode_t mode);
int sys_stat(struct sys *s, const char *path, struct stat *out);
int sys_fstat(struct sys *s, int fd, struct stat *out);
int sys_ftruncate(struct sys *s, int fd, off_t len);
int sys_rmdir(struct sys *s, const char *path);
int sys_list_dir(struct sys *s, const char *path,
		 int (*each)(void *arg, const char *name, unsigned char d_type),
		 void *arg);

/* ---- conveniences built only on the wrappers above ---- */

/* Write all of buf to a file descriptor, looping over short writes. */
int sys_write_all(struct sys *s, int fd, const void *buf, size_t len);
/* Send all of buf on a socket (MSG_NOSIGNAL), looping over short sends. */
int sys_send_all(struct sys *s, int fd, const void *buf, size_t len);
/* The same with more send(2) flags (MSG_MORE) added to MSG_NOSIGNAL. */
int sys_send_all_flags(struct sys *s, int fd, const void *buf, size_t len,
		       int flags);
/*
 * Read a whole small file into a fresh NUL-terminated heap buffer.  Fails
 * with -EFBIG when it is larger than max bytes.  The caller frees *out.
 */
int sys_read_file(struct sys *s, const char *path, size_t max, char **out,
		  size_t *out_len);

/*
 * Process-wide signal plumbing for the app layer (not part of the vtables:
 * there is nothing to mock).  sys_signals_block() blocks the signals glassproxy
 * handles (INT, TERM, HUP, USR1) and ignores SIGPIPE in the calling thread,
 * so threads created afterwards inherit the mask; sys_signals_wait() waits for
 * one of them and returns its number.
 */
int sys_signals_block(void);
int sys_signals_wait(void);
/* Wake a thread waiting in sys_signals_wait() with sig (SIGTERM, say):
 * 0, or -ESRCH when it has ended already. */
int sys_signals_wake(pthread_t thread, int sig);

/*
 * Process-wide limits for sizing the server at start (issue 13), outside
 * the tables for the same reason.  sys_raise_nofile() raises the soft
 * RLIMIT_NOFILE to the hard limit and returns the new soft limit (or a
 * negative errno); sys_cpu_count() returns the online processors (1 when
 * the system cannot say).
 */
long sys_raise_nofile(void);
int sys_cpu_count(void);

#endif
