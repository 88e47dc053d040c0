/*
 * Internals of the log module shared by its files (and its tests): the
 * line being built, the escapes of each format, the formatters.
 */
#ifndef GLASSPROXY_LOG_INT_H
#define GLASSPROXY_LOG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "glassproxy/log.h"

/*
 * A line being built: text is appended escaped and bounded; `cut` records
 * that something did not fit, so the line can end in "...".
 */
struct log_line {
	char buf[LOG_LINE_MAX];
	size_t pos;
	bool cut;
};

/* How bytes from the network are made safe, one way per format. */
enum log_escape {
	LOG_ESC_HEX,	/* controls, backslash, >= 0x7f as \xHH (event log) */
	LOG_ESC_FIELD,	/* also space, as %XX: one field between spaces */
	LOG_ESC_QUOTED, /* inside "...": \" \\ and \xHH (combined) */
	LOG_ESC_JSON,	/* a JSON string: \" \\ \n \r \t \u00HH */
};

void log_line_raw(struct log_line *l, const char *text);
void log_line_escaped(struct log_line *l, const char *text,
		      enum log_escape how);

/* The access line of a format, without its "\n", stamped `now` (wall). */
void log_format_access(enum log_format format, const struct timespec *now,
		       const struct log_access *e, struct log_line *l);

/* The short console form (after the event log's stamp and level). */
void log_format_console(const struct log_access *e, struct log_line *l);

#endif
