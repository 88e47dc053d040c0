/*
 * Accept loop and worker threads.  The request path itself is in the proxy
 * module; this file only decides which thread runs it and when to stop.
 */
#include "glassproxy/server.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define WORKER_STACK                                                           \
	(512 * 1024) /* the request path keeps big buffers on
				     the heap, so a small stack is plenty */

struct worker_slot {
	struct server *srv;
	int fd; /* -1 when the slot is free */
	struct sys_addr peer;
};

struct server {
	struct sys *sys;
	struct log *log;
	struct proxy *px;
	struct server_options opts;
	int listen_fd;
	char address[NET_ADDR_TEXT_MAX];

	pthread_mutex_t lock; /* guards everything below */
	pthread_cond_t idle;  /* signalled when a worker ends */
	struct worker_slot *slots;
	int active;
	bool stopping;
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
	pthread_mutex_init(&srv->lock, NULL);
	pthread_cond_init(&srv->idle, NULL);
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

static void *worker_main(void *arg)
{
	struct worker_slot *slot = arg;
	struct server *srv = slot->srv;

	struct sys *sys = srv->sys; /* srv may be gone once the slot is free */
	int fd = slot->fd;

	proxy_serve(srv->px, fd, &slot->peer);
	/* Free the slot before closing, so cut_remaining() can never shut
	 * down a descriptor number that has been closed and reused. */
	pthread_mutex_lock(&srv->lock);
	slot->fd = -1;
	srv->active--;
	pthread_cond_signal(&srv->idle);
	pthread_mutex_unlock(&srv->lock);
	sys_close(sys, fd);
	return NULL;
}

/* Claim a free slot for fd; NULL when max_connections are busy. */
static struct worker_slot *claim_slot(struct server *srv, int fd,
				      const struct sys_addr *peer)
{
	struct worker_slot *slot = NULL;

	pthread_mutex_lock(&srv->lock);
	for (int i = 0; i < srv->opts.max_connections; i++) {
		if (srv->slots[i].fd < 0) {
			slot = &srv->slots[i];
			slot->srv = srv;
			slot->fd = fd;
			slot->peer = *peer;
			srv->active++;
			break;
		}
	}
	pthread_mutex_unlock(&srv->lock);
	return slot;
}

static void release_slot(struct server *srv, struct worker_slot *slot)
{
	pthread_mutex_lock(&srv->lock);
	slot->fd = -1;
	srv->active--;
	pthread_mutex_unlock(&srv->lock);
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
	struct worker_slot *slot = claim_slot(srv, fd, peer);
	pthread_attr_t attr;
	pthread_t thread;
	int rc;

	if (!slot) {
		log_event(srv->log, LOG_WARN,
			  "%d connections busy: refusing a client with 503",
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
		release_slot(srv, slot);
		proxy_refuse_busy(srv->px, fd, peer);
	}
}

/* Wait until no worker is left, or until deadline (wall ms) passes. */
static void wait_workers(struct server *srv, int64_t deadline_ms)
{
	pthread_mutex_lock(&srv->lock);
	while (srv->active > 0) {
		struct timespec now, until;
		int64_t now_ms;

		sys_now_wall(srv->sys, &now);
		now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
		if (deadline_ms >= 0 && now_ms >= deadline_ms)
			break;
		/* Re-check at least every 100 ms: the clock is the judge. */
		int64_t wake = now_ms + 100;
		if (deadline_ms >= 0 && wake > deadline_ms)
			wake = deadline_ms;
		until.tv_sec = (time_t)(wake / 1000);
		until.tv_nsec = (long)(wake % 1000) * 1000000L;
		pthread_cond_timedwait(&srv->idle, &srv->lock, &until);
	}
	pthread_mutex_unlock(&srv->lock);
}

int server_run(struct server *srv)
{
	struct timespec now;
	int64_t deadline;

	for (;;) {
		struct sys_addr peer;
		int fd = net_accept(srv->sys, srv->listen_fd, &peer);

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

	log_event(srv->log, LOG_INFO,
		  "stopping: waiting up to %d ms for requests in flight",
		  srv->opts.grace_ms);
	sys_now_wall(srv->sys, &now);
	deadline = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 +
		   srv->opts.grace_ms;
	wait_workers(srv, deadline);
	proxy_cut(srv->px);
	wait_workers(srv, -1);
	return 0;
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
	pthread_cond_destroy(&srv->idle);
	pthread_mutex_destroy(&srv->lock);
	free(srv->slots);
	free(srv);
}
