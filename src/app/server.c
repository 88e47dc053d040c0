/*
 * Accept loop and worker threads.  The request path itself is in the proxy
 * module; this file only decides which thread runs it and when to stop.
 *
 * Waiting for the workers at a stop: the deadline is on the monotonic
 * clock (sys_now_mono_ms), so a step of the wall clock can neither cut
 * the grace period short nor stretch it.  The wait itself is a sys_poll
 * on a wake pipe with a relative timeout recomputed each round; the last
 * worker to end during a stop writes one byte into it.
 */
#include "glassproxy/server.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "app/server_int.h"

/* Belt and braces: the wait re-checks at least this often. */
#define WAIT_SLICE_MS 1000
/* How often the accept loop does housekeeping (the upstream pool's sweep
 * of idle connections that became readable: issue 15, finding 5). */
#define HOUSEKEEPING_MS 1000
/* Descriptors kept back from --max-connections' share of RLIMIT_NOFILE:
 * the listener, logs, cache files, pipes, and the upstream sockets. */
#define NOFILE_RESERVE 64

/*
 * A worker's request blocks on its origin far more than it computes, so
 * the pool is sized for waiting, not for the cores: with four per core,
 * eight slow origins would stall every client of a 2-core machine, and
 * twenty clients collapsed onto one cache fill would not all fit.
 */
#define WORKERS_PER_CORE 16

/*
 * Resolve the defaults that depend on the machine: --workers 0 is
 * WORKERS_PER_CORE per core; the connection limit fits the descriptor limit (raised to the
 * hard limit first), keeping room for one upstream socket per worker and
 * the idle upstream pool.
 */
static void size_limits(struct server *srv)
{
	struct server_options *o = &srv->opts;
	long fit;

	if (o->workers <= 0)
		o->workers = WORKERS_PER_CORE * sys_cpu_count();
	if (o->queue_size <= 0)
		o->queue_size = 4096;
	srv->nofile = sys_raise_nofile();
	if (srv->nofile < 0)
		return;
	fit = srv->nofile - NOFILE_RESERVE - 2L * o->workers;
	if (fit < 1)
		fit = 1;
	if (o->max_connections > fit)
		o->max_connections = (int)fit;
}

int server_open(struct sys *sys, struct log *log, struct proxy *px,
		const struct server_options *opts, struct server **out)
{
	struct server *srv = calloc(1, sizeof(*srv));
	struct sys_addr bound;
	int rc;

	if (!srv)
		return -ENOMEM;
	srv->sys = sys;
	srv->log = log;
	srv->px = px;
	srv->opts = *opts;
	srv->epfd = -1;
	srv->room_wake[0] = srv->room_wake[1] = -1;
	size_limits(srv);
	srv->listen_fd =
		net_listen(sys, &opts->listen, 511,
			   opts->reuse_port ? NET_LISTEN_REUSEPORT : 0);
	if (srv->listen_fd < 0) {
		rc = srv->listen_fd;
		goto free_srv;
	}
	rc = sys_getsockname(sys, srv->listen_fd, &bound);
	if (rc < 0)
		goto close_listener;
	net_format_addr(&bound, srv->address, sizeof(srv->address));
	rc = sys_pipe(sys, srv->wake);
	if (rc < 0)
		goto close_listener;
	srv->grace_ms = opts->grace_ms;
	pthread_mutex_init(&srv->lock, NULL);
	pthread_mutex_init(&srv->pool_lock, NULL);
	/* Before the ready line, so the descriptors a client sees are all
	 * there: --serial has no waiting room. */
	rc = opts->serial ? 0 : server_room_open(srv);
	if (rc < 0)
		goto close_wake;
	pthread_cond_init(&srv->threads_cv, NULL);
	*out = srv;
	return 0;

close_wake:
	pthread_mutex_destroy(&srv->pool_lock);
	pthread_mutex_destroy(&srv->lock);
	sys_close(sys, srv->wake[0]);
	sys_close(sys, srv->wake[1]);
close_listener:
	sys_close(sys, srv->listen_fd);
free_srv:
	free(srv);
	return rc;
}

const char *server_address(const struct server *srv)
{
	return srv->address;
}

/*
 * Wake server_wait_workers.  The one place that writes to the wake pipe:
 * the pipe comes from sys_pipe (net ops) and is written with sys_write
 * (fs ops) until sys has a pipe write of its own; swap it in here.  The
 * pipe is non-blocking, so this never blocks under the lock; a full pipe
 * is readable already.
 */
static void wake_waiter(struct server *srv)
{
	/* Made by sys_pipe in the net table, so written through it too. */
	(void)sys_pipe_write(srv->sys, srv->wake[1], "x", 1);
}

static void worker_done(struct server *srv)
{
	/* While stopping no slot is claimed, so 0 stays 0: one byte is
	 * enough and the pipe never needs draining.  Written under the
	 * lock: once active is 0 the server may be freed. */
	if (srv->stopping && srv->active == 0)
		wake_waiter(srv);
}

void server_slot_end(struct server *srv, struct worker_slot *slot)
{
	pthread_mutex_lock(&srv->lock);
	if (slot->prev)
		slot->prev->next = slot->next;
	else
		srv->slots = slot->next;
	if (slot->next)
		slot->next->prev = slot->prev;
	srv->active--;
	worker_done(srv);
	pthread_mutex_unlock(&srv->lock);
	free(slot);
}

/* Slots held by this address ("127.0.0.1", "::1") now; under srv->lock. */
static int slots_of(const struct server *srv, const char *ip)
{
	int n = 0;

	for (const struct worker_slot *s = srv->slots; s; s = s->next)
		if (strcmp(s->ip, ip) == 0)
			n++;
	return n;
}

/* server_slot_claim; *over_per_client says why it found none. */
static struct worker_slot *claim_slot(struct server *srv, int fd,
				      const struct sys_addr *peer,
				      bool *over_per_client)
{
	struct worker_slot *slot = calloc(1, sizeof(*slot));

	if (!slot)
		return NULL;
	net_format_ip(peer, slot->ip, sizeof(slot->ip));
	slot->srv = srv;
	slot->fd = fd;
	slot->peer = *peer;
	pthread_mutex_lock(&srv->lock);
	*over_per_client = srv->opts.max_per_client > 0 &&
			   slots_of(srv, slot->ip) >= srv->opts.max_per_client;
	if (srv->stopping || *over_per_client ||
	    srv->active >= srv->opts.max_connections) {
		pthread_mutex_unlock(&srv->lock);
		free(slot);
		return NULL;
	}
	slot->next = srv->slots;
	if (srv->slots)
		srv->slots->prev = slot;
	srv->slots = slot;
	srv->active++;
	pthread_mutex_unlock(&srv->lock);
	return slot;
}

struct worker_slot *server_slot_claim(struct server *srv, int fd,
				      const struct sys_addr *peer)
{
	bool over;

	return claim_slot(srv, fd, peer, &over);
}

static bool is_stopping(struct server *srv)
{
	bool stopping;

	pthread_mutex_lock(&srv->lock);
	stopping = srv->stopping;
	pthread_mutex_unlock(&srv->lock);
	return stopping;
}

struct worker_slot *server_claim_or_refuse(struct server *srv, int fd,
					   const struct sys_addr *peer)
{
	bool over_per_client;
	struct worker_slot *slot = claim_slot(srv, fd, peer, &over_per_client);

	if (slot)
		return slot;
	if (over_per_client)
		log_event(srv->log, LOG_WARN,
			  "a client address holds %d connections "
			  "(--max-connections-per-client): 503",
			  srv->opts.max_per_client);
	else
		log_event(srv->log, LOG_WARN,
			  "%d connections open (--max-connections): refusing "
			  "a client with 503",
			  srv->opts.max_connections);
	proxy_refuse_busy(srv->px, fd, peer);
	return NULL;
}

static int workers_left(struct server *srv)
{
	int n;

	pthread_mutex_lock(&srv->lock);
	n = srv->active;
	pthread_mutex_unlock(&srv->lock);
	return n;
}

int server_wait_workers(struct server *srv, int64_t deadline_ms)
{
	struct pollfd wake = {.fd = srv->wake[0], .events = POLLIN};

	while (workers_left(srv) > 0) {
		int timeout = WAIT_SLICE_MS;

		if (deadline_ms >= 0) {
			int64_t left = deadline_ms - sys_now_mono_ms(srv->sys);
			if (left <= 0)
				return -ETIMEDOUT;
			if (left < timeout)
				timeout = (int)left;
		}
		/* Readable (or failing) at once means: check again. */
		sys_poll(srv->sys, &wake, 1, timeout);
	}
	return 0;
}

/*
 * Wait for a connection to accept, doing the housekeeping between them;
 * true when accept() is worth calling (a client, a stop, an error).
 */
static bool await_client(struct server *srv)
{
	struct pollfd p = {.fd = srv->listen_fd, .events = POLLIN};
	int rc = sys_poll(srv->sys, &p, 1, HOUSEKEEPING_MS);

	if (rc == 0)
		proxy_housekeeping(srv->px);
	return rc != 0;
}

/* Accept and hand out connections until a stop. */
static void accept_loop(struct server *srv)
{
	for (;;) {
		struct sys_addr peer;
		int fd;

		if (!await_client(srv) && !is_stopping(srv))
			continue;
		fd = net_accept(srv->sys, srv->listen_fd, &peer);

		if (is_stopping(srv)) {
			if (fd >= 0)
				sys_close(srv->sys, fd);
			break;
		}
		if (fd < 0) {
			/* Out of descriptors or a client that left early. */
			log_event(srv->log, LOG_WARN, "accept: %s",
				  strerror(-fd));
			if (fd == -EMFILE || fd == -ENFILE) {
				struct pollfd none = {.fd = -1};
				sys_poll(srv->sys, &none, 1, 100);
			}
			continue;
		}
		if (srv->opts.serial) {
			proxy_serve(srv->px, fd, &peer);
			sys_close(srv->sys, fd);
		} else
			server_admit(srv, fd, &peer);
	}
}

/* The start-up line of the limits, with where they came from. */
static void log_limits(struct server *srv)
{
	const struct server_options *o = &srv->opts;

	log_event(srv->log, LOG_INFO,
		  "limits: %d connections (descriptor limit %ld), %d workers "
		  "(%d serving at once, more while some wait), a queue of %d "
		  "for %d ms%s",
		  o->max_connections, srv->nofile, o->workers, srv->active_base,
		  o->queue_size, o->queue_timeout_ms,
		  o->serial ? " (serial: no waiting room)" : "");
}

int server_run(struct server *srv)
{
	int grace_ms;

	log_limits(srv);
	if (!srv->opts.serial && server_room_start(srv) < 0) {
		log_event(srv->log, LOG_ERROR,
			  "cannot start the waiting room: serving serially");
		srv->opts.serial = true;
	}
	accept_loop(srv);
	pthread_mutex_lock(&srv->lock);
	grace_ms = srv->grace_ms;
	pthread_mutex_unlock(&srv->lock);
	log_event(srv->log, LOG_INFO,
		  "stopping: waiting up to %d ms for requests in flight",
		  grace_ms);
	server_wait_workers(srv, sys_now_mono_ms(srv->sys) + grace_ms);
	proxy_cut(srv->px);
	server_wait_workers(srv, -1);
	server_room_stop(srv);
	return 0;
}

void server_set_grace_ms(struct server *srv, int grace_ms)
{
	pthread_mutex_lock(&srv->lock);
	srv->grace_ms = grace_ms;
	pthread_mutex_unlock(&srv->lock);
}

void server_stop(struct server *srv)
{
	int wake;

	pthread_mutex_lock(&srv->lock);
	srv->stopping = true;
	pthread_mutex_unlock(&srv->lock);
	/* Idle connections close now, also the one --serial is serving. */
	proxy_stop(srv->px);
	/* And those in the waiting room: the poller closes them. */
	pthread_mutex_lock(&srv->lock);
	wake = srv->room_wake[1];
	pthread_mutex_unlock(&srv->lock);
	if (wake >= 0)
		(void)sys_pipe_write(srv->sys, wake, "x", 1);
	/* Wakes the accept() blocked in server_run (Linux: it fails EINVAL). */
	sys_shutdown(srv->sys, srv->listen_fd, SHUT_RDWR);
}

void server_close(struct server *srv)
{
	if (!srv)
		return;
	sys_close(srv->sys, srv->listen_fd);
	sys_close(srv->sys, srv->wake[0]);
	sys_close(srv->sys, srv->wake[1]);
	server_room_close(srv);
	/* None is left after server_run; a test may leave claimed ones. */
	while (srv->slots) {
		struct worker_slot *next = srv->slots->next;

		free(srv->slots);
		srv->slots = next;
	}
	server_pool_free(srv);
	pthread_cond_destroy(&srv->threads_cv);
	pthread_mutex_destroy(&srv->pool_lock);
	pthread_mutex_destroy(&srv->lock);
	free(srv);
}
