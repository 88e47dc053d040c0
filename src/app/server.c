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

#define WORKER_STACK                                                           \
	(512 * 1024) /* the request path keeps big buffers on
				     the heap, so a small stack is plenty */
/* Belt and braces: the wait re-checks at least this often. */
#define WAIT_SLICE_MS 1000
/* How often the accept loop does housekeeping (the upstream pool's sweep
 * of idle connections that became readable: issue 15, finding 5). */
#define HOUSEKEEPING_MS 1000

struct worker_slot {
	struct server *srv;
	int fd; /* -1 when the slot is free */
	struct sys_addr peer;
	char ip[NET_ADDR_TEXT_MAX]; /* the peer's address, for per-client */
};

struct server {
	struct sys *sys;
	struct log *log;
	struct proxy *px;
	struct server_options opts;
	int listen_fd;
	char address[NET_ADDR_TEXT_MAX];

	/* Readable once no worker is left after a stop (see wake_waiter). */
	int wake[2];

	pthread_mutex_t lock; /* guards everything below */
	struct worker_slot *slots;
	int active;
	bool stopping;
	int grace_ms; /* a reload may change it */
};

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
	srv->slots = calloc((size_t)opts->max_connections, sizeof(*srv->slots));
	if (!srv->slots) {
		rc = -ENOMEM;
		goto free_srv;
	}
	for (int i = 0; i < opts->max_connections; i++)
		srv->slots[i].fd = -1;
	srv->listen_fd = net_listen(sys, &opts->listen, 128);
	if (srv->listen_fd < 0) {
		rc = srv->listen_fd;
		goto free_slots;
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
	*out = srv;
	return 0;

close_listener:
	sys_close(sys, srv->listen_fd);
free_slots:
	free(srv->slots);
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

static void slot_free(struct server *srv, struct worker_slot *slot)
{
	pthread_mutex_lock(&srv->lock);
	slot->fd = -1;
	pthread_mutex_unlock(&srv->lock);
}

static void worker_done(struct server *srv)
{
	pthread_mutex_lock(&srv->lock);
	srv->active--;
	/* While stopping no slot is claimed, so 0 stays 0: one byte is
	 * enough and the pipe never needs draining.  Written under the
	 * lock: once active is 0 the server may be freed. */
	if (srv->stopping && srv->active == 0)
		wake_waiter(srv);
	pthread_mutex_unlock(&srv->lock);
}

void server_slot_end(struct server *srv, struct worker_slot *slot)
{
	slot_free(srv, slot);
	worker_done(srv);
}

static void *worker_main(void *arg)
{
	struct worker_slot *slot = arg;
	struct server *srv = slot->srv;

	struct sys *sys = srv->sys;
	int fd = slot->fd;

	proxy_serve(srv->px, fd, &slot->peer);
	/* Free the slot before closing, so proxy_cut() can never shut down
	 * a descriptor number that has been closed and reused; count the
	 * worker out only after its last call on sys, which the app frees
	 * (a fault sys) once no worker is left. */
	slot_free(srv, slot);
	sys_close(sys, fd);
	worker_done(srv);
	return NULL;
}

/* Slots held by this address ("127.0.0.1", "::1") now; under srv->lock. */
static int slots_of(const struct server *srv, const char *ip)
{
	int n = 0;

	for (int i = 0; i < srv->opts.max_connections; i++)
		if (srv->slots[i].fd >= 0 && strcmp(srv->slots[i].ip, ip) == 0)
			n++;
	return n;
}

/* server_slot_claim; *over_per_client says why it found none. */
static struct worker_slot *claim_slot(struct server *srv, int fd,
				      const struct sys_addr *peer,
				      bool *over_per_client)
{
	struct worker_slot *slot = NULL;
	char ip[NET_ADDR_TEXT_MAX];

	net_format_ip(peer, ip, sizeof(ip));
	pthread_mutex_lock(&srv->lock);
	*over_per_client = srv->opts.max_per_client > 0 &&
			   slots_of(srv, ip) >= srv->opts.max_per_client;
	for (int i = 0; !srv->stopping && !*over_per_client &&
			i < srv->opts.max_connections;
	     i++) {
		if (srv->slots[i].fd < 0) {
			slot = &srv->slots[i];
			slot->srv = srv;
			slot->fd = fd;
			slot->peer = *peer;
			memcpy(slot->ip, ip, sizeof(ip));
			srv->active++;
			break;
		}
	}
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

static void start_worker(struct server *srv, int fd,
			 const struct sys_addr *peer)
{
	bool over_per_client;
	struct worker_slot *slot = claim_slot(srv, fd, peer, &over_per_client);
	pthread_attr_t attr;
	pthread_t thread;
	int rc;

	if (!slot) {
		if (over_per_client)
			log_event(srv->log, LOG_WARN,
				  "a client address holds %d connections "
				  "(--max-connections-per-client): 503",
				  srv->opts.max_per_client);
		else
			log_event(srv->log, LOG_WARN,
				  "%d connections busy: refusing a client "
				  "with 503",
				  srv->opts.max_connections);
		proxy_refuse_busy(srv->px, fd, peer);
		return;
	}
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, WORKER_STACK);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&thread, &attr, worker_main, slot);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		log_event(srv->log, LOG_ERROR,
			  "cannot start a thread (%s): refusing a client",
			  strerror(rc));
		server_slot_end(srv, slot);
		proxy_refuse_busy(srv->px, fd, peer);
	}
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
			start_worker(srv, fd, &peer);
	}
}

int server_run(struct server *srv)
{
	int grace_ms;

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
	pthread_mutex_lock(&srv->lock);
	srv->stopping = true;
	pthread_mutex_unlock(&srv->lock);
	/* Idle connections close now, also the one --serial is serving. */
	proxy_stop(srv->px);
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
	pthread_mutex_destroy(&srv->lock);
	free(srv->slots);
	free(srv);
}
