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
#include "log/log_int.h"

#define STDOUT_FD 1
#define STDERR_FD 2
/* A failing log is reported at most this often. */
#define REPORT_EVERY_MS 60000

struct log {
	struct sys *sys;
	/*
	 * Guards the paths and descriptors.  Every line is written holding it
	 * shared, so that workers log at the same time instead of queueing
	 * for one another's write(2): a line is one write of at most
	 * LOG_LINE_MAX bytes, less than PIPE_BUF, which Linux keeps whole on
	 * a pipe and on a local O_APPEND file.  A reopen or a reconfigure
	 * takes it exclusive to swap the descriptors, so no write is ever
	 * made on a descriptor being closed.  (A mutex here, held across the
	 * write, was the one lock a keep-alive hit waited for: issue 13.)
	 *
	 * A read-write lock may let readers in for ever while a writer waits
	 * (glibc's default does), and under steady logging a SIGHUP's reload
	 * would never get in.  So a writer first raises swap_waits and holds
	 * the gate; a line that sees the flag passes through the gate, that
	 * is, waits for the swap, and the lines already in drain.
	 */
	pthread_rwlock_t files;
	pthread_mutex_t gate;
	atomic_bool swap_waits;
	char *event_path, *access_path;
	int event_fd, access_fd;
	/* Read on every log call without the lock, so atomic: a reload may
	 * change it while other threads log. */
	atomic_int level;
	atomic_int format; /* enum log_format, as level */
	_Atomic uint64_t write_errors;
	/* When a write failure was last said; writers fail at once, so
	 * under their own small lock. */
	pthread_mutex_t report_lock;
	int64_t last_report_ms;
	bool reported;
};

/* The calling thread's connection and request (log_set_context()). */
static _Thread_local uint64_t context_conn;
static _Thread_local unsigned context_request;

void log_set_context(uint64_t conn_id, unsigned request_no)
{
	context_conn = conn_id;
	context_request = request_no;
}

void log_clear_context(void)
{
	context_conn = 0;
	context_request = 0;
}

static const char *const format_names[LOG_FORMAT_COUNT] = {
	[LOG_FORMAT_SQUID] = "squid",
	[LOG_FORMAT_COMBINED] = "combined",
	[LOG_FORMAT_JSON] = "json",
	[LOG_FORMAT_GLASSPROXY] = "glassproxy",
};

const char *log_format_name(enum log_format format)
{
	return (unsigned)format < LOG_FORMAT_COUNT ? format_names[format] : "?";
}

int log_format_from_name(const char *name, enum log_format *out)
{
	for (int i = 0; i < LOG_FORMAT_COUNT; i++)
		if (name && strcmp(name, format_names[i]) == 0) {
			*out = (enum log_format)i;
			return 0;
		}
	return -EINVAL;
}

void log_set_format(struct log *log, enum log_format format)
{
	if (log && (unsigned)format < LOG_FORMAT_COUNT)
		atomic_store(&log->format, (int)format);
}

static const char *const level_names[] = {"error", "warn", "info", "debug"};

const char *log_level_name(enum log_level level)
{
	return (unsigned)level < UTIL_ARRAY_LEN(level_names)
		       ? level_names[level]
		       : "?";
}

/* A log file by name; "-" is standard output (never opened or closed). */
/* A line's shared hold; it waits for a swap that is waiting (struct log). */
static void files_read(struct log *log)
{
	if (atomic_load_explicit(&log->swap_waits, memory_order_acquire)) {
		pthread_mutex_lock(&log->gate);
		pthread_mutex_unlock(&log->gate);
	}
	pthread_rwlock_rdlock(&log->files);
}

/* A reopen's or a reconfigure's exclusive hold, ahead of new lines. */
static void files_write(struct log *log)
{
	pthread_mutex_lock(&log->gate);
	atomic_store_explicit(&log->swap_waits, true, memory_order_release);
	pthread_rwlock_wrlock(&log->files);
}

static void files_write_done(struct log *log)
{
	atomic_store_explicit(&log->swap_waits, false, memory_order_release);
	pthread_rwlock_unlock(&log->files);
	pthread_mutex_unlock(&log->gate);
}

static int open_append(struct sys *sys, const char *path)
{
	if (strcmp(path, "-") == 0)
		return STDOUT_FD;
	return sys_open(sys, path, O_WRONLY | O_CREAT | O_APPEND, 0644);
}

/* Close a log's descriptor unless it is one of the standard ones. */
static void close_log_fd(struct sys *sys, int fd)
{
	if (fd > STDERR_FD)
		sys_file_close(sys, fd);
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
	atomic_init(&log->format, (int)LOG_FORMAT_SQUID);
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
	pthread_rwlock_init(&log->files, NULL);
	pthread_mutex_init(&log->gate, NULL);
	atomic_init(&log->swap_waits, false);
	pthread_mutex_init(&log->report_lock, NULL);
	*out = log;
	return 0;

close_event:
	close_log_fd(sys, log->event_fd);
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
	close_log_fd(log->sys, log->event_fd);
	close_log_fd(log->sys, log->access_fd);
	pthread_rwlock_destroy(&log->files);
	pthread_mutex_destroy(&log->gate);
	pthread_mutex_destroy(&log->report_lock);
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
	close_log_fd(sys, *fd);
	*fd = fresh;
	return 0;
}

int log_reopen(struct log *log)
{
	int rc;

	files_write(log);
	rc = reopen_one(log->sys, log->event_path, &log->event_fd);
	if (rc == 0)
		rc = reopen_one(log->sys, log->access_path, &log->access_fd);
	files_write_done(log);
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
	if (t->changed)
		close_log_fd(sys, t->fd);
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
	files_write(log);
	rc = prepare_target(log->sys, event_path, log->event_path, STDERR_FD,
			    &ev);
	if (rc == 0) {
		rc = prepare_target(log->sys, access_path, log->access_path, -1,
				    &ac);
		if (rc < 0)
			drop_target(log->sys, &ev);
	}
	if (rc < 0) {
		files_write_done(log);
		return rc;
	}
	swap_target(&ev, &log->event_path, &log->event_fd, &old_ev);
	swap_target(&ac, &log->access_path, &log->access_fd, &old_ac);
	atomic_store(&log->level, (int)level);
	files_write_done(log);
	/* Lines are written under the lock: nobody holds the old ones. */
	close_log_fd(log->sys, old_ev);
	close_log_fd(log->sys, old_ac);
	return 0;
}

uint64_t log_write_errors(const struct log *log)
{
	return atomic_load(&log->write_errors);
}

/* Start a line with its timestamp and a space. */
static void line_start(struct log *log, struct log_line *l)
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

/* End the line: "...\n" when something was cut, "\n" otherwise. */
static void line_end(struct log_line *l)
{
	if (l->cut) {
		/* Make room for the "..." that says the line was cut. */
		if (l->pos > sizeof(l->buf) - 5)
			l->pos = sizeof(l->buf) - 5;
		memcpy(l->buf + l->pos, "...", 3);
		l->pos += 3;
	}
	l->buf[l->pos++] = '\n';
}

/* Whether a write failure may be said now: at most once a minute. */
static bool report_due(struct log *log)
{
	int64_t now = sys_now_mono_ms(log->sys);
	bool due;

	pthread_mutex_lock(&log->report_lock);
	due = !log->reported || now - log->last_report_ms >= REPORT_EVERY_MS;
	if (due) {
		log->reported = true;
		log->last_report_ms = now;
	}
	pthread_mutex_unlock(&log->report_lock);
	return due;
}

/*
 * A write to fd failed with err (files held shared): say so on the other
 * log, or on standard error, at most once a minute, so a full disk
 * neither stops the proxy nor floods the other file.
 */
static void report_write_error(struct log *log, int fd, int err)
{
	int to = fd == log->event_fd && log->access_fd >= 0 ? log->access_fd
							    : log->event_fd;
	struct log_line l;
	char text[200];

	if (!report_due(log))
		return;
	if (to == fd)
		to = STDERR_FD;
	if (to == fd)
		return; /* nowhere else to say it */
	line_start(log, &l);
	util_format(text, sizeof(text),
		    "error log: writing %s failed: %s (%llu lines lost so "
		    "far; said at most once a minute)",
		    fd == log->access_fd ? "the access log" : "the event log",
		    log_errno_name(err),
		    (unsigned long long)atomic_load(&log->write_errors));
	log_line_raw(&l, text);
	line_end(&l);
	sys_write_all(log->sys, to, l.buf, l.pos);
}

/* Write the line with one call, files held shared (see struct log). */
static void emit_locked(struct log *log, struct log_line *l, bool access)
{
	int fd = access && log->access_fd >= 0 ? log->access_fd : log->event_fd;
	int rc;

	line_end(l);
	rc = sys_write_all(log->sys, fd, l->buf, l->pos);
	if (rc < 0) {
		atomic_fetch_add(&log->write_errors, 1);
		report_write_error(log, fd, rc);
	}
}

static void emit(struct log *log, struct log_line *l, bool access)
{
	files_read(log);
	emit_locked(log, l, access);
	pthread_rwlock_unlock(&log->files);
}

/* "conn=7 req=2 " when the calling thread serves a request. */
static void append_context(struct log_line *l)
{
	char tag[64];

	if (!context_conn)
		return;
	if (context_request)
		util_format(tag, sizeof(tag), "conn=%llu req=%u ",
			    (unsigned long long)context_conn, context_request);
	else
		util_format(tag, sizeof(tag), "conn=%llu ",
			    (unsigned long long)context_conn);
	log_line_raw(l, tag);
}

bool log_enabled(const struct log *log, enum log_level level)
{
	return log && (int)level <= atomic_load_explicit(&log->level,
							 memory_order_relaxed);
}

void log_event(struct log *log, enum log_level level, const char *fmt, ...)
{
	char message[LOG_LINE_MAX];
	struct log_line l;
	va_list ap;
	int n;

	if (!log || (int)level > atomic_load_explicit(&log->level,
						      memory_order_relaxed))
		return;
	va_start(ap, fmt);
	n = vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	line_start(log, &l);
	log_line_raw(&l, log_level_name(level));
	log_line_raw(&l, " ");
	append_context(&l);
	log_line_escaped(&l, message, LOG_ESC_HEX);
	l.cut |= n < 0 || (size_t)n >= sizeof(message);
	emit(log, &l, false);
}

void log_access(struct log *log, const struct log_access *e)
{
	struct log_line l;
	struct timespec now;

	if (!log)
		return;
	/* One shared hold for the choice of file and the write, so the line
	 * goes where its form says. */
	files_read(log);
	if (log->access_fd >= 0) {
		if (sys_now_wall(log->sys, &now) < 0)
			now.tv_sec = 0, now.tv_nsec = 0;
		l.pos = 0;
		l.cut = false;
		log_format_access((enum log_format)atomic_load(&log->format),
				  &now, e, &l);
		emit_locked(log, &l, true);
	} else if (log_enabled(log, LOG_INFO)) {
		/* Without an access log the lines join the event log at info
		 * level, in the console's short form. */
		line_start(log, &l);
		log_line_raw(&l, "info ");
		log_format_console(e, &l);
		emit_locked(log, &l, true);
	}
	pthread_rwlock_unlock(&log->files);
}
