/* The event and access logs; see include/glassproxy/log.h. */
#include "glassproxy/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "glassproxy/util.h"

#define STDERR_FD 2

struct log {
	struct sys *sys;
	/* Guards the paths and descriptors (a reopen or a reconfigure
	 * swaps them) and write_errors. */
	pthread_mutex_t lock;
	char *event_path, *access_path;
	int event_fd, access_fd;
	/* Read on every log call without the lock, so atomic: a reload may
	 * change it while other threads log. */
	atomic_int level;
	uint64_t write_errors;
};

static const char *const level_names[] = {"error", "warn", "info", "debug"};

const char *log_level_name(enum log_level level)
{
	return (unsigned)level < UTIL_ARRAY_LEN(level_names)
		       ? level_names[level]
		       : "?";
}

static int open_append(struct sys *sys, const char *path)
{
	return sys_open(sys, path, O_WRONLY | O_CREAT | O_APPEND, 0644);
}

static char *dup_or_null(const char *s, int *failed)
{
	char *copy;

	if (!s)
		return NULL;
	copy = malloc(strlen(s) + 1);
	if (!copy) {
		*failed = 1;
		return NULL;
	}
	memcpy(copy, s, strlen(s) + 1);
	return copy;
}

int log_open(struct sys *sys, const char *event_path, const char *access_path,
	     enum log_level level, struct log **out)
{
	struct log *log = calloc(1, sizeof(*log));
	int failed = 0, rc;

	if (!log)
		return -ENOMEM;
	log->sys = sys;
	atomic_init(&log->level, (int)level);
	log->event_fd = STDERR_FD;
	log->access_fd = -1;
	log->event_path = dup_or_null(event_path, &failed);
	log->access_path = dup_or_null(access_path, &failed);
	if (failed) {
		rc = -ENOMEM;
		goto free_log;
	}
	if (event_path) {
		log->event_fd = open_append(sys, event_path);
		if (log->event_fd < 0) {
			rc = log->event_fd;
			goto free_log;
		}
	}
	if (access_path) {
		log->access_fd = open_append(sys, access_path);
		if (log->access_fd < 0) {
			rc = log->access_fd;
			goto close_event;
		}
	}
	pthread_mutex_init(&log->lock, NULL);
	*out = log;
	return 0;

close_event:
	if (log->event_fd != STDERR_FD)
		sys_file_close(sys, log->event_fd);
free_log:
	free(log->event_path);
	free(log->access_path);
	free(log);
	return rc;
}

void log_close(struct log *log)
{
	if (!log)
		return;
	if (log->event_fd != STDERR_FD)
		sys_file_close(log->sys, log->event_fd);
	if (log->access_fd >= 0)
		sys_file_close(log->sys, log->access_fd);
	pthread_mutex_destroy(&log->lock);
	free(log->event_path);
	free(log->access_path);
	free(log);
}

/* Swap *fd for a freshly opened path; keep the old one if that fails. */
static int reopen_one(struct sys *sys, const char *path, int *fd)
{
	int fresh;

	if (!path)
		return 0;
	fresh = open_append(sys, path);
	if (fresh < 0)
		return fresh;
	sys_file_close(sys, *fd);
	*fd = fresh;
	return 0;
}

int log_reopen(struct log *log)
{
	int rc;

	pthread_mutex_lock(&log->lock);
	rc = reopen_one(log->sys, log->event_path, &log->event_fd);
	if (rc == 0)
		rc = reopen_one(log->sys, log->access_path, &log->access_fd);
	pthread_mutex_unlock(&log->lock);
	return rc;
}

static bool same_path(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/*
 * What a reconfigure installs for one file: when its path changed, a copy
 * of the new path and its freshly opened descriptor (STDERR_FD or -1 for
 * a NULL path); nothing otherwise.
 */
struct log_target {
	char *path;
	int fd;
	bool changed;
};

static int prepare_target(struct sys *sys, const char *path, const char *now,
			  int none_fd, struct log_target *t)
{
	int failed = 0;

	t->changed = !same_path(path, now);
	t->path = NULL;
	t->fd = -1;
	if (!t->changed)
		return 0;
	t->path = dup_or_null(path, &failed);
	if (failed)
		return -ENOMEM;
	t->fd = path ? open_append(sys, path) : none_fd;
	if (path && t->fd < 0) {
		int rc = t->fd;
		free(t->path);
		t->path = NULL;
		return rc;
	}
	return 0;
}

static void drop_target(struct sys *sys, struct log_target *t)
{
	if (t->changed && t->fd >= 0 && t->fd != STDERR_FD)
		sys_file_close(sys, t->fd);
	free(t->path);
}

/* Put t in place of *path / *fd; the old descriptor goes to *old_fd. */
static void swap_target(struct log_target *t, char **path, int *fd, int *old_fd)
{
	*old_fd = -1;
	if (!t->changed)
		return;
	free(*path);
	*path = t->path;
	*old_fd = *fd;
	*fd = t->fd;
	t->path = NULL;
}

int log_reconfigure(struct log *log, const char *event_path,
		    const char *access_path, enum log_level level)
{
	struct log_target ev, ac;
	int rc, old_ev, old_ac;

	/* Open what changed before touching anything: all or nothing. */
	pthread_mutex_lock(&log->lock);
	rc = prepare_target(log->sys, event_path, log->event_path, STDERR_FD,
			    &ev);
	if (rc == 0) {
		rc = prepare_target(log->sys, access_path, log->access_path, -1,
				    &ac);
		if (rc < 0)
			drop_target(log->sys, &ev);
	}
	if (rc < 0) {
		pthread_mutex_unlock(&log->lock);
		return rc;
	}
	swap_target(&ev, &log->event_path, &log->event_fd, &old_ev);
	swap_target(&ac, &log->access_path, &log->access_fd, &old_ac);
	atomic_store(&log->level, (int)level);
	pthread_mutex_unlock(&log->lock);
	/* Lines are written under the lock: nobody holds the old ones. */
	if (old_ev >= 0 && old_ev != STDERR_FD)
		sys_file_close(log->sys, old_ev);
	if (old_ac >= 0)
		sys_file_close(log->sys, old_ac);
	return 0;
}

uint64_t log_write_errors(const struct log *log)
{
	uint64_t n;

	pthread_mutex_lock((pthread_mutex_t *)&log->lock);
	n = log->write_errors;
	pthread_mutex_unlock((pthread_mutex_t *)&log->lock);
	return n;
}

/*
 * A line being built: text is appended escaped and bounded; `cut` records
 * that something did not fit, so the line can end in "...".
 */
struct line {
	char buf[LOG_LINE_MAX];
	size_t pos;
	bool cut;
};

/*
 * Escape what must not reach a log file raw: control bytes (a CR or LF in a
 * URL would forge a line), backslash, and bytes >= 0x7f, as \xHH.  Stops
 * short of the end, leaving room for the "\n".
 */
static void append_escaped(struct line *l, const char *text)
{
	static const char hex[] = "0123456789abcdef";
	const size_t room = sizeof(l->buf) - 2; /* lines < LOG_LINE_MAX */

	for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
		if (*p >= 0x20 && *p < 0x7f && *p != '\\') {
			if (l->pos + 1 > room) {
				l->cut = true;
				return;
			}
			l->buf[l->pos++] = (char)*p;
		} else {
			if (l->pos + 4 > room) {
				l->cut = true;
				return;
			}
			l->buf[l->pos++] = '\\';
			l->buf[l->pos++] = 'x';
			l->buf[l->pos++] = hex[*p >> 4];
			l->buf[l->pos++] = hex[*p & 15];
		}
	}
}

/* Start a line with its timestamp and a space. */
static void line_start(struct log *log, struct line *l)
{
	struct timespec now;
	int n;

	l->pos = 0;
	l->cut = false;
	if (sys_now_wall(log->sys, &now) < 0)
		now.tv_sec = 0, now.tv_nsec = 0;
	n = util_format_time_iso(&now, l->buf, sizeof(l->buf));
	if (n > 0) {
		l->pos = (size_t)n;
		l->buf[l->pos++] = ' ';
	}
}

/*
 * End the line ("...\n" when something was cut) and write it with one
 * call.  The descriptor is picked under the lock: a concurrent reopen may
 * close the old one.
 */
static void emit(struct log *log, struct line *l, bool access)
{
	int rc, fd;

	if (l->cut) {
		/* Make room for the "..." that says the line was cut. */
		if (l->pos > sizeof(l->buf) - 5)
			l->pos = sizeof(l->buf) - 5;
		memcpy(l->buf + l->pos, "...", 3);
		l->pos += 3;
	}
	l->buf[l->pos++] = '\n';
	pthread_mutex_lock(&log->lock);
	fd = access && log->access_fd >= 0 ? log->access_fd : log->event_fd;
	rc = sys_write_all(log->sys, fd, l->buf, l->pos);
	if (rc < 0)
		log->write_errors++;
	pthread_mutex_unlock(&log->lock);
}

void log_event(struct log *log, enum log_level level, const char *fmt, ...)
{
	char message[LOG_LINE_MAX];
	struct line l;
	va_list ap;
	int n;

	if (!log || (int)level > atomic_load_explicit(&log->level,
						      memory_order_relaxed))
		return;
	va_start(ap, fmt);
	n = vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	line_start(log, &l);
	append_escaped(&l, log_level_name(level));
	append_escaped(&l, " ");
	append_escaped(&l, message);
	l.cut |= n < 0 || (size_t)n >= sizeof(message);
	emit(log, &l, false);
}

void log_access(struct log *log, const struct log_access *e)
{
	char numbers[96];
	struct line l;
	bool separate;

	if (!log)
		return;
	/* Without an access log the lines join the event log at info level.
	 * (A reconfigure between here and emit() can at worst put one line
	 * in the other file, never lose it.) */
	pthread_mutex_lock(&log->lock);
	separate = log->access_fd >= 0;
	pthread_mutex_unlock(&log->lock);
	if (!separate &&
	    LOG_INFO > atomic_load_explicit(&log->level, memory_order_relaxed))
		return;
	line_start(log, &l);
	if (!separate)
		append_escaped(&l, "access ");
	append_escaped(&l, e->client ? e->client : "-");
	append_escaped(&l, " ");
	append_escaped(&l, e->method ? e->method : "-");
	append_escaped(&l, " ");
	append_escaped(&l, e->url ? e->url : "-");
	util_format(numbers, sizeof(numbers), " %d %llu %llu %lldms ",
		    e->status, (unsigned long long)e->bytes_sent,
		    (unsigned long long)e->bytes_received,
		    (long long)e->duration_ms);
	append_escaped(&l, numbers);
	append_escaped(&l, e->outcome ? e->outcome : "-");
	emit(log, &l, true);
}
