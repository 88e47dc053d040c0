/*
 * filter: which hosts may be served, which CONNECT ports may be tunnelled,
 * which clients may use the proxy.
 *
 * Contract:
 *  - Pure.  No I/O, no clock, no globals, no logging.  The caller reads list
 *    files and hands over their text with a source name; every error and
 *    warning is handed back through a filter_report_fn, already formatted as
 *    "source:line: message", for the caller to log.
 *  - Two phases.  Build: filter_new(), then any number of filter_add_*()
 *    calls from one thread.  Use: after the last add, the object is never
 *    modified again; every function taking a `const struct filter *` may be
 *    called from any number of threads at once (no internal caches, no
 *    lazily built state; the Public Suffix List is libpsl's built-in, read
 *    only).  A reload builds a complete new filter and swaps it in only when
 *    filter_error_count() is 0; the old one stays in force otherwise.
 *  - Decisions: a matching block pattern always refuses (block wins); if the
 *    allow list has any pattern, a host must match one to be served; with
 *    neither, a host is served.  The verdict names the deciding rule (list,
 *    pattern as written, source, line).  Strings in a verdict belong to the
 *    filter and live as long as it does.
 *  - The unspecified addresses (0.0.0.0/8, ::, and their v4-mapped forms
 *    such as ::ffff:0.0.0.0) are never a destination: FILTER_BLOCK by the
 *    built-in rule, whatever the lists say (Linux routes them to the local
 *    host, past any rule written for 127.0.0.0/8).
 *  - Hosts are judged as given (no DNS).  Case, one trailing dot, a :port and
 *    IPv6 brackets do not matter.  A host that is not a plain DNS name or IP
 *    literal (userinfo '@', '%', non-ASCII, an empty label) or that spells an
 *    IPv4 address in anything but dotted decimal (0x7f.1, 2130706433,
 *    017.0.0.1, 127.1) is FILTER_INVALID_HOST, never a way around a rule.
 *  - Addresses a name resolves to are judged separately, by
 *    filter_check_addr() against the BLOCK list's address rules only, so
 *    that a name pointing into a blocked network is refused too; allow
 *    rules stay on names as written.
 *  - Pattern syntax and semantics: docs/filter.md.
 *
 * Return convention: 0 or a positive count on success, a negative errno
 * value on failure (-EINVAL bad input, already reported; -ENOMEM).
 */
#ifndef GLASSPROXY_FILTER_H
#define GLASSPROXY_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct filter;

enum filter_list {
	FILTER_LIST_ALLOW = 0,
	FILTER_LIST_BLOCK = 1,
};

enum filter_result {
	FILTER_ALLOW = 0,	 /* serve it (allow rule, or no allow list) */
	FILTER_BLOCK = 1,	 /* a block pattern matched */
	FILTER_NOT_ALLOWED = 2,	 /* allow patterns exist, none matched */
	FILTER_INVALID_HOST = 3, /* not a host name or canonical IP literal */
};

enum filter_severity {
	FILTER_DIAG_ERROR = 0,	 /* the pattern/spec was rejected */
	FILTER_DIAG_WARNING = 1, /* accepted, but probably not what was meant */
};

#define FILTER_DIAG_MAX 512

struct filter_diag {
	enum filter_severity severity;
	const char *source; /* as passed by the caller */
	unsigned line;	    /* 1-based; 0 when not from a file */
	/* The whole line to log, e.g.
	 * "lists/block.txt:7: invalid pattern: 'a..b' has an empty label" or
	 * "b.txt:3: warning: duplicate pattern 'x.com' (first at b.txt:1)". */
	char text[FILTER_DIAG_MAX];
};

/* Called once per error or warning, in input order.  May be NULL. */
typedef void filter_report_fn(void *arg, const struct filter_diag *diag);

#define FILTER_REASON_MAX 160

struct filter_verdict {
	enum filter_result result;
	/* The deciding rule, for FILTER_ALLOW and FILTER_BLOCK; pattern is NULL
	 * when no rule decided (no lists at all, FILTER_NOT_ALLOWED,
	 * FILTER_INVALID_HOST). */
	enum filter_list list;
	const char *pattern; /* as written, owned by the filter */
	const char *source;  /* owned by the filter */
	unsigned line;	     /* 0 when not from a file */
	/* FILTER_INVALID_HOST: why, naming the host, e.g. "'0x7f.1' spells
	 * IPv4 127.0.0.1 in a non-canonical form".  FILTER_BLOCK of an
	 * address: which one, "address 10.1.2.3" (filter_check_addr) or
	 * "0.0.0.0 is an unspecified address, never a destination" (source
	 * "built-in", pattern "0.0.0.0/8" or "::").  "" otherwise. */
	char reason[FILTER_REASON_MAX];
};

/* A new, empty filter (no patterns, CONNECT port 443, loopback clients);
 * NULL when out of memory. */
struct filter *filter_new(void);
void filter_free(struct filter *f);

/*
 * Add one pattern (NUL-terminated; surrounding blanks ignored) to a list.
 * source/line say where it came from ("--block", 0) and are copied.
 * Returns 0 (also for a duplicate, which is only warned about), -EINVAL
 * (reported as an error) or -ENOMEM.
 */
int filter_add_pattern(struct filter *f, enum filter_list list,
		       const char *pattern, const char *source, unsigned line,
		       filter_report_fn *report, void *arg);

/*
 * Add every pattern of a list file's text: one pattern a line; '#' starts a
 * comment; blank lines and surrounding blanks ignored; LF or CRLF.  Every
 * bad line is reported (not only the first) and the good ones are added.
 * Returns the number of patterns read, or -EINVAL if any line was bad, or
 * -ENOMEM.
 */
int filter_add_list_text(struct filter *f, enum filter_list list,
			 const char *text, size_t len, const char *source,
			 filter_report_fn *report, void *arg);

/*
 * Allow clients from an address or CIDR ("10.0.0.0/8", "::1",
 * "2001:db8::/32").  Repeatable.  Until the first call, only loopback
 * clients are allowed (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104).
 */
int filter_add_client(struct filter *f, const char *cidr, const char *source,
		      unsigned line, filter_report_fn *report, void *arg);

/*
 * Allow CONNECT to the ports of a spec like "443", "443,8443" or
 * "443,563,8000-8100" (blanks around items allowed).  Repeatable: specs
 * add up.  Until the first call, only 443 is allowed.  A bad spec adds
 * nothing.  Returns the number of ranges added.
 */
int filter_add_connect_ports(struct filter *f, const char *spec,
			     const char *source, unsigned line,
			     filter_report_fn *report, void *arg);

/*
 * Allow plain-http requests (not CONNECT) to the ports of a spec, with the
 * syntax, diagnostics and adding up of filter_add_connect_ports().  Until
 * the first call, Squid's Safe_ports: 80, 21, 443, 70, 210, 280, 488,
 * 591, 777 and 1025-65535 (so not http://host:25/, an SMTP server).
 * Returns the number of ranges added.
 */
int filter_add_http_ports(struct filter *f, const char *spec,
			  const char *source, unsigned line,
			  filter_report_fn *report, void *arg);

/* Errors reported since filter_new(); a filter with errors must not be used
 * (a reload keeps the old one). */
size_t filter_error_count(const struct filter *f);

/* Patterns held by a list (duplicates not counted). */
size_t filter_pattern_count(const struct filter *f, enum filter_list list);

/*
 * Judge a host as the URL parser or CONNECT target gave it: "example.com",
 * "Example.COM.", "example.com:8080", "[::1]:443", "10.1.2.3".  len bytes,
 * need not be NUL-terminated.  Fills *out (may be NULL) and returns the
 * result.  Never allocates.
 */
enum filter_result filter_check_host(const struct filter *f, const char *host,
				     size_t len, struct filter_verdict *out);

/* May a CONNECT go to this port? */
bool filter_check_port(const struct filter *f, unsigned port);

/* May a plain-http request go to this port?  (403 when not.) */
bool filter_check_http_port(const struct filter *f, unsigned port);

/*
 * Judge an address a name resolved to (DNS or the hosts file), before
 * connecting to it: FILTER_BLOCK when it is unspecified or inside an
 * address rule of the BLOCK list, FILTER_INVALID_HOST for a family that is
 * neither AF_INET nor AF_INET6, FILTER_ALLOW otherwise (allow rules are not
 * consulted: they judge names).  A v4-mapped IPv6 address is judged as the
 * IPv4 address it carries.  Fills *why (may be NULL); never allocates.
 */
enum filter_result filter_check_addr(const struct filter *f,
				     const struct sockaddr *sa,
				     struct filter_verdict *why);

/* May this peer (AF_INET or AF_INET6; anything else is refused) use us? */
bool filter_check_client(const struct filter *f, const struct sockaddr *addr);

/*
 * Describe a verdict for a 403 page and the log:
 *   "blocked by lists/block.txt:3 (facebook)"
 *   "blocked by --block (127.0.0.0/8): address 127.0.0.1"
 *   "blocked by built-in (0.0.0.0/8): 0.0.0.0 is an unspecified address,
 *    never a destination"
 *   "allowed by --allow (google)"      "allowed (no rule matched)"
 *   "not in the allow list"            "invalid host: <reason>"
 * util_format conventions: length written, or -ENOSPC when cut short.
 */
int filter_verdict_format(const struct filter_verdict *v, char *dst,
			  size_t cap);

/* "allow", "block", "not-allowed", "invalid-host": short names for logs. */
const char *filter_result_name(enum filter_result r);

/* "allow", "block". */
const char *filter_list_name(enum filter_list list);

#endif
