/*
 * The option table and everything derived from it: defaults, --help, the
 * config-file parser, getopt_long's option array and --check-config.
 */
#include "glassproxy/config.h"

#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "glassproxy/util.h"

enum opt_type {
	OPT_STRING,   /* char * */
	OPT_INT,      /* int within [min, max] */
	OPT_DURATION, /* int milliseconds: "10" or "10s", "500ms", "2m" */
	OPT_SIZE,     /* long long bytes: "100", "64k", "10M", "1G" */
	OPT_BOOL,     /* bool: a flag; "yes/no/on/off/true/false" in files */
	OPT_LIST,     /* struct config_list: repeatable */
	OPT_VERBOSE,  /* -v: one more level of detail */
	OPT_QUIET,    /* -q: warnings and errors only */
	OPT_CLI_ONLY, /* bool modes: --help, --version, --check-config */
};

struct opt {
	const char *name;
	char short_name; /* 0: none */
	enum opt_type type;
	size_t offset;
	const char *def; /* default as text, applied by config_init */
	long long min, max;
	const char *arg; /* metavariable in --help */
	const char *help;
};

#define F(member) offsetof(struct config, member)
#define DAY_MS	  (24LL * 3600 * 1000)

static const struct opt options[] = {
	{"listen", 'l', OPT_STRING, F(listen), "127.0.0.1:8080", 0, 0,
	 "ADDR:PORT", "address to listen on; [v6]:port; port 0 picks one"},
	{"config", 'c', OPT_STRING, F(config_file), NULL, 0, 0, "FILE",
	 "read 'key value' lines from FILE first"},
	{"check-config", 0, OPT_CLI_ONLY, F(check_config), NULL, 0, 0, NULL,
	 "validate, print the effective configuration and exit"},
	{"hosts-file", 0, OPT_STRING, F(hosts_file), NULL, 0, 0, "FILE",
	 "hosts(5)-format file consulted before DNS"},
	{"log-file", 0, OPT_STRING, F(log_file), NULL, 0, 0, "FILE",
	 "event log (default: standard error)"},
	{"access-log", 0, OPT_STRING, F(access_log), NULL, 0, 0, "FILE",
	 "one line per request (default: into the event log)"},
	{"verbose", 'v', OPT_VERBOSE, F(verbosity), "1", 0, 2, NULL,
	 "log more (repeat for debug)"},
	{"quiet", 'q', OPT_QUIET, F(verbosity), NULL, 0, 2, NULL,
	 "log warnings and errors only"},
	{"serial", 0, OPT_BOOL, F(serial), "no", 0, 0, NULL,
	 "serve one connection at a time on the main thread (for gdb)"},
	{"max-connections", 0, OPT_INT, F(max_connections), "256", 1, 65536,
	 "N", "concurrent clients; more are answered 503"},
	{"connect-timeout", 0, OPT_DURATION, F(connect_timeout_ms), "10s", 1,
	 DAY_MS, "TIME", "connecting to an origin (504 after)"},
	{"response-timeout", 0, OPT_DURATION, F(response_timeout_ms), "60s", 1,
	 DAY_MS, "TIME", "waiting for an origin's response (504 after)"},
	{"request-timeout", 0, OPT_DURATION, F(request_timeout_ms), "30s", 1,
	 DAY_MS, "TIME", "a client's whole request head (408 after)"},
	{"client-idle-timeout", 0, OPT_DURATION, F(client_idle_timeout_ms),
	 "15s", 1, DAY_MS, "TIME", "idle client keep-alive connections"},
	{"upstream-idle-timeout", 0, OPT_DURATION, F(upstream_idle_timeout_ms),
	 "30s", 1, DAY_MS, "TIME", "idle pooled connections to origins"},
	{"max-idle-upstream", 0, OPT_INT, F(max_idle_upstream), "64", 0, 65536,
	 "N", "idle origin connections kept for reuse (0: none)"},
	{"shutdown-grace", 0, OPT_DURATION, F(shutdown_grace_ms), "10s", 0,
	 DAY_MS, "TIME", "how long in-flight requests may finish at exit"},
	{"max-request-body", 0, OPT_SIZE, F(max_request_body), "0", 0,
	 INT64_MAX, "SIZE", "largest request body (413 above; 0: no limit)"},
	{"forwarded-for", 0, OPT_STRING, F(forwarded_for), "off", 0, 0, "MODE",
	 "X-Forwarded-For/Forwarded: off, on (append), delete"},
	{"via-name", 0, OPT_STRING, F(via_name), "glassproxy", 0, 0, "NAME",
	 "this proxy's name in Via (distinct per proxy in a chain)"},
	{"parent-proxy", 0, OPT_STRING, F(parent_proxy), NULL, 0, 0,
	 "HOST:PORT", "send requests and CONNECTs through this proxy"},
	{"direct", 0, OPT_LIST, F(direct), NULL, 0, 0, "PATTERN",
	 "hosts that bypass the parent proxy (repeatable)"},
	{"allow", 0, OPT_LIST, F(allow), NULL, 0, 0, "PATTERN",
	 "serve only hosts matching an allow pattern (repeatable)"},
	{"block", 0, OPT_LIST, F(block), NULL, 0, 0, "PATTERN",
	 "refuse hosts matching PATTERN (repeatable)"},
	{"allow-file", 0, OPT_LIST, F(allow_file), NULL, 0, 0, "FILE",
	 "allow patterns, one a line (repeatable)"},
	{"block-file", 0, OPT_LIST, F(block_file), NULL, 0, 0, "FILE",
	 "block patterns, one a line (repeatable)"},
	{"allow-client", 0, OPT_LIST, F(allow_client), NULL, 0, 0, "CIDR",
	 "clients served (default: loopback only; repeatable)"},
	{"connect-ports", 0, OPT_STRING, F(connect_ports), "443", 0, 0, "LIST",
	 "ports CONNECT may reach, e.g. 443,8443,9000-9100"},
	{"tunnel-idle-timeout", 0, OPT_DURATION, F(tunnel_idle_timeout_ms),
	 "300s", 1, DAY_MS, "TIME", "a CONNECT tunnel with no traffic"},
	{"help", 'h', OPT_CLI_ONLY, F(help), NULL, 0, 0, NULL,
	 "show this help and exit"},
	{"version", 'V', OPT_CLI_ONLY, F(version), NULL, 0, 0, NULL,
	 "show the version and exit"},
};

#define N_OPTIONS UTIL_ARRAY_LEN(options)

static void *member(struct config *cfg, const struct opt *o)
{
	return (char *)cfg + o->offset;
}

static const void *cmember(const struct config *cfg, const struct opt *o)
{
	return (const char *)cfg + o->offset;
}

static char *dup_text(const char *s, size_t len)
{
	char *copy = malloc(len + 1);

	if (copy) {
		memcpy(copy, s, len);
		copy[len] = '\0';
	}
	return copy;
}

/* Number with an optional unit suffix from units[]; -EINVAL/-ERANGE. */
struct unit {
	const char *suffix;
	long long factor;
};

static int parse_scaled(const char *s, const struct unit *units, long long max,
			long long *out)
{
	size_t digits = 0, len = strlen(s);
	uint64_t v;

	while (digits < len && s[digits] >= '0' && s[digits] <= '9')
		digits++;
	if (util_parse_u64(s, digits, (uint64_t)max, &v) < 0)
		return -EINVAL;
	for (const struct unit *u = units; u->suffix; u++) {
		if (strcmp(s + digits, u->suffix) == 0) {
			if (v > (uint64_t)max / (uint64_t)u->factor)
				return -ERANGE;
			*out = (long long)v * u->factor;
			return 0;
		}
	}
	return -EINVAL;
}

static const struct unit plain_units[] = {{"", 1}, {NULL, 0}};
static const struct unit duration_units[] = {{"", 1000},     {"s", 1000},
					     {"ms", 1},	     {"m", 60000},
					     {"h", 3600000}, {NULL, 0}};
static const struct unit size_units[] = {
	{"", 1},	{"k", 1024},	  {"K", 1024},	    {"m", 1 << 20},
	{"M", 1 << 20}, {"g", 1LL << 30}, {"G", 1LL << 30}, {NULL, 0}};

static int parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"yes", "on", "true", "1"};
	static const char *const no[] = {"no", "off", "false", "0"};

	for (size_t i = 0; i < UTIL_ARRAY_LEN(yes); i++) {
		if (util_ieq(s, strlen(s), yes[i], strlen(yes[i]))) {
			*out = true;
			return 0;
		}
		if (util_ieq(s, strlen(s), no[i], strlen(no[i]))) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

static int list_append(struct config_list *list, const char *value)
{
	char **bigger =
		realloc(list->items, (list->count + 1) * sizeof(*list->items));
	char *copy;

	if (!bigger)
		return -ENOMEM;
	list->items = bigger;
	copy = dup_text(value, strlen(value));
	if (!copy)
		return -ENOMEM;
	list->items[list->count++] = copy;
	return 0;
}

static void list_free(struct config_list *list)
{
	for (size_t i = 0; i < list->count; i++)
		free(list->items[i]);
	free(list->items);
	list->items = NULL;
	list->count = 0;
}

/*
 * Set one option from text.  value is NULL for flags given on the command
 * line.  On failure fills why with the problem (without location).
 */
static int set_option(struct config *cfg, const struct opt *o,
		      const char *value, char *why, size_t whylen)
{
	void *m = member(cfg, o);
	long long n;
	int rc;

	switch (o->type) {
	case OPT_STRING: {
		char *copy = dup_text(value, strlen(value));
		if (!copy)
			return -ENOMEM;
		free(*(char **)m);
		*(char **)m = copy;
		return 0;
	}
	case OPT_INT:
		rc = parse_scaled(value, plain_units, o->max, &n);
		if (rc < 0 || n < o->min || n > o->max) {
			util_format(why, whylen,
				    "'%s' is not a number from %lld to %lld",
				    value, o->min, o->max);
			return -EINVAL;
		}
		*(int *)m = (int)n;
		return 0;
	case OPT_DURATION:
		rc = parse_scaled(value, duration_units, o->max, &n);
		if (rc < 0 || n < o->min) {
			util_format(why, whylen,
				    "'%s' is not a duration (like 10s, 500ms, "
				    "2m) from %lldms to %lldms",
				    value, o->min, o->max);
			return -EINVAL;
		}
		*(int *)m = (int)n;
		return 0;
	case OPT_SIZE:
		rc = parse_scaled(value, size_units, o->max, &n);
		if (rc < 0) {
			util_format(why, whylen,
				    "'%s' is not a size (like 100, 64k, 10M)",
				    value);
			return -EINVAL;
		}
		*(long long *)m = n;
		return 0;
	case OPT_BOOL:
		if (!value) {
			*(bool *)m = true;
			return 0;
		}
		if (parse_bool(value, (bool *)m) < 0) {
			util_format(why, whylen, "'%s' is not yes or no",
				    value);
			return -EINVAL;
		}
		return 0;
	case OPT_LIST:
		return list_append((struct config_list *)m, value);
	case OPT_VERBOSE:
		if (value) {
			rc = parse_scaled(value, plain_units, 2, &n);
			if (rc < 0) {
				util_format(why, whylen,
					    "'%s' is not 0, 1 or 2", value);
				return -EINVAL;
			}
			*(int *)m = (int)n;
		} else if (*(int *)m < 2) {
			(*(int *)m)++;
		}
		return 0;
	case OPT_QUIET: {
		bool quiet = true;
		if (value && parse_bool(value, &quiet) < 0) {
			util_format(why, whylen, "'%s' is not yes or no",
				    value);
			return -EINVAL;
		}
		if (quiet)
			*(int *)m = 0;
		return 0;
	}
	case OPT_CLI_ONLY:
		*(bool *)m = true;
		return 0;
	}
	return -EINVAL;
}

int config_init(struct config *cfg)
{
	char why[CONFIG_ERR_MAX];

	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < N_OPTIONS; i++) {
		const struct opt *o = &options[i];
		if (o->def &&
		    set_option(cfg, o, o->def, why, sizeof(why)) < 0) {
			config_free(cfg);
			return -ENOMEM; /* the table's defaults are valid */
		}
	}
	return 0;
}

void config_free(struct config *cfg)
{
	for (size_t i = 0; i < N_OPTIONS; i++) {
		const struct opt *o = &options[i];
		if (o->type == OPT_STRING) {
			free(*(char **)member(cfg, o));
			*(char **)member(cfg, o) = NULL;
		} else if (o->type == OPT_LIST) {
			list_free((struct config_list *)member(cfg, o));
		}
	}
}

static const struct opt *find_option(const char *name, size_t len)
{
	for (size_t i = 0; i < N_OPTIONS; i++)
		if (strlen(options[i].name) == len &&
		    memcmp(options[i].name, name, len) == 0)
			return &options[i];
	return NULL;
}

int config_apply_file(struct config *cfg, const char *text, size_t len,
		      const char *path, char *err, size_t errlen)
{
	const char *p = text, *end = text + len;
	unsigned line_no = 0;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *line = p, *key, *value;
		size_t line_len = (size_t)((eol ? eol : end) - p);
		size_t key_len, value_len;
		const struct opt *o;
		char why[CONFIG_ERR_MAX], *value_text;
		int rc;

		p = eol ? eol + 1 : end;
		line_no++;
		if (memchr(line, '\0', line_len)) {
			util_format(err, errlen, "%s:%u: NUL byte in line",
				    path, line_no);
			return -EINVAL;
		}
		/* A '#' starts a comment anywhere: values never contain one. */
		const char *hash = memchr(line, '#', line_len);
		if (hash)
			line_len = (size_t)(hash - line);
		if (line_len > 0 && line[line_len - 1] == '\r')
			line_len--;
		util_trim(&line, &line_len);
		if (line_len == 0)
			continue;
		key = line;
		key_len = 0;
		while (key_len < line_len && key[key_len] != ' ' &&
		       key[key_len] != '\t')
			key_len++;
		value = key + key_len;
		value_len = line_len - key_len;
		util_trim(&value, &value_len);
		o = find_option(key, key_len);
		if (!o || o->type == OPT_CLI_ONLY ||
		    o->offset == F(config_file)) {
			util_format(err, errlen, "%s:%u: unknown key '%.*s'",
				    path, line_no, (int)key_len, key);
			return -EINVAL;
		}
		if (value_len == 0 && o->type != OPT_VERBOSE &&
		    o->type != OPT_QUIET) {
			util_format(err, errlen, "%s:%u: '%s' needs a value",
				    path, line_no, o->name);
			return -EINVAL;
		}
		value_text = dup_text(value, value_len);
		if (!value_text)
			return -ENOMEM;
		why[0] = '\0';
		rc = set_option(cfg, o, value_len ? value_text : NULL, why,
				sizeof(why));
		free(value_text);
		if (rc < 0) {
			util_format(err, errlen, "%s:%u: %s: %s", path, line_no,
				    o->name, why[0] ? why : strerror(-rc));
			return rc;
		}
	}
	return 0;
}

const char *config_find_file_arg(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if ((strcmp(argv[i], "-c") == 0 ||
		     strcmp(argv[i], "--config") == 0) &&
		    i + 1 < argc)
			return argv[i + 1];
		if (strncmp(argv[i], "--config=", 9) == 0)
			return argv[i] + 9;
		if (argv[i][0] == '-' && argv[i][1] != '-') {
			/* A group of short flags may end in c: "-vc FILE",
			 * "-qcFILE".  Only flags without values can come first. */
			for (const char *p = argv[i] + 1; *p; p++) {
				if (*p == 'c')
					return p[1] ? p + 1
						    : (i + 1 < argc
							       ? argv[i + 1]
							       : NULL);
				if (*p != 'v' && *p != 'q' && *p != 'h' &&
				    *p != 'V')
					break;
			}
		}
	}
	return NULL;
}

static int takes_argument(const struct opt *o)
{
	return o->type != OPT_BOOL && o->type != OPT_VERBOSE &&
	       o->type != OPT_QUIET && o->type != OPT_CLI_ONLY;
}

int config_apply_args(struct config *cfg, int argc, char **argv, char *err,
		      size_t errlen)
{
	struct option longopts[N_OPTIONS + 1];
	char shortopts[2 * N_OPTIONS + 2], *s = shortopts;
	int index, c;

	*s++ = ':'; /* report a missing argument as ':' */
	for (size_t i = 0; i < N_OPTIONS; i++) {
		const struct opt *o = &options[i];
		longopts[i] = (struct option){
			o->name,
			takes_argument(o) ? required_argument : no_argument,
			NULL, 256 + (int)i};
		if (o->short_name) {
			*s++ = o->short_name;
			if (takes_argument(o))
				*s++ = ':';
		}
	}
	*s = '\0';
	memset(&longopts[N_OPTIONS], 0, sizeof(longopts[0]));

	optind = 0; /* glibc: full reset, so the parser can run twice */
	opterr = 0;
	while ((c = getopt_long(argc, argv, shortopts, longopts, &index)) !=
	       -1) {
		const struct opt *o = NULL;
		char why[CONFIG_ERR_MAX];
		int rc;

		if (c == '?' || c == ':') {
			/* optopt names a bad short option; argv a long one. */
			if (optopt > 0 && optopt < 256)
				util_format(err, errlen, "-%c: %s", optopt,
					    c == ':' ? "needs a value"
						     : "unknown option");
			else
				util_format(err, errlen, "%s: %s",
					    argv[optind - 1],
					    c == ':' ? "needs a value"
						     : "unknown option");
			return -EINVAL;
		}
		if (c >= 256)
			o = &options[c - 256];
		for (size_t i = 0; !o && i < N_OPTIONS; i++)
			if (options[i].short_name == c)
				o = &options[i];
		if (!o)
			return -EINVAL;
		why[0] = '\0';
		rc = set_option(cfg, o, takes_argument(o) ? optarg : NULL, why,
				sizeof(why));
		if (rc < 0) {
			util_format(err, errlen, "--%s: %s", o->name,
				    why[0] ? why : strerror(-rc));
			return rc;
		}
	}
	if (optind < argc) {
		util_format(err, errlen, "unexpected argument '%s'",
			    argv[optind]);
		return -EINVAL;
	}
	return 0;
}

int config_validate(const struct config *cfg, char *err, size_t errlen)
{
	static const char *const modes[] = {"off", "on", "delete"};
	bool mode_ok = false;

	if (!cfg->listen || !cfg->listen[0]) {
		util_format(err, errlen, "listen: an address is required");
		return -EINVAL;
	}
	for (size_t i = 0; i < UTIL_ARRAY_LEN(modes); i++)
		mode_ok |= strcmp(cfg->forwarded_for, modes[i]) == 0;
	if (!mode_ok) {
		util_format(err, errlen,
			    "forwarded-for: '%s' is not off, on or delete",
			    cfg->forwarded_for);
		return -EINVAL;
	}
	if (!cfg->via_name[0] || strlen(cfg->via_name) >= 64 ||
	    strpbrk(cfg->via_name, " \t,;()\"")) {
		util_format(err, errlen,
			    "via-name: '%s' must be one token of at most 63 "
			    "characters",
			    cfg->via_name);
		return -EINVAL;
	}
	if (cfg->direct.count > 0 && !cfg->parent_proxy) {
		util_format(err, errlen,
			    "direct: patterns need a parent-proxy to bypass");
		return -EINVAL;
	}
	return 0;
}

/* A growing text buffer for dump and help; on ENOMEM it stays NULL. */
struct text {
	char *s;
	size_t len, cap;
};

static void text_add(struct text *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void text_add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!t->s && t->cap)
		return; /* an earlier allocation failed */
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (t->len + (size_t)n + 1 > t->cap) {
		size_t cap = (t->len + (size_t)n + 1) * 2;
		char *bigger = realloc(t->s, cap);
		if (!bigger) {
			free(t->s);
			t->s = NULL;
			t->cap = 1;
			return;
		}
		t->s = bigger;
		t->cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
	va_end(ap);
	t->len += (size_t)n;
}

static void dump_duration(struct text *t, const char *name, int ms)
{
	if (ms % 1000 == 0)
		text_add(t, "%s %ds\n", name, ms / 1000);
	else
		text_add(t, "%s %dms\n", name, ms);
}

char *config_dump(const struct config *cfg)
{
	struct text t = {0};

	text_add(&t, "# effective configuration\n");
	for (size_t i = 0; i < N_OPTIONS; i++) {
		const struct opt *o = &options[i];
		const void *m = cmember(cfg, o);

		switch (o->type) {
		case OPT_STRING:
			if (*(char *const *)m && o->offset != F(config_file))
				text_add(&t, "%s %s\n", o->name,
					 *(char *const *)m);
			else if (o->offset != F(config_file))
				text_add(&t, "# %s (not set)\n", o->name);
			break;
		case OPT_INT:
			text_add(&t, "%s %d\n", o->name, *(const int *)m);
			break;
		case OPT_DURATION:
			dump_duration(&t, o->name, *(const int *)m);
			break;
		case OPT_SIZE:
			text_add(&t, "%s %lld\n", o->name,
				 *(const long long *)m);
			break;
		case OPT_BOOL:
			text_add(&t, "%s %s\n", o->name,
				 *(const bool *)m ? "yes" : "no");
			break;
		case OPT_LIST: {
			const struct config_list *l = m;
			for (size_t j = 0; j < l->count; j++)
				text_add(&t, "%s %s\n", o->name, l->items[j]);
			break;
		}
		case OPT_VERBOSE:
			text_add(&t, "%s %d\n", o->name, *(const int *)m);
			break;
		case OPT_QUIET:
		case OPT_CLI_ONLY:
			break;
		}
	}
	return t.s;
}

char *config_help(const char *program)
{
	struct text t = {0};

	text_add(&t,
		 "Usage: %s [OPTION]...\n"
		 "A caching HTTP/HTTPS forward proxy built to be read, tested "
		 "and stepped through.\n\n",
		 program);
	for (size_t i = 0; i < N_OPTIONS; i++) {
		const struct opt *o = &options[i];
		char left[64];

		if (o->short_name)
			util_format(left, sizeof(left), "-%c, --%s%s%s",
				    o->short_name, o->name, o->arg ? " " : "",
				    o->arg ? o->arg : "");
		else
			util_format(left, sizeof(left), "    --%s%s%s", o->name,
				    o->arg ? " " : "", o->arg ? o->arg : "");
		text_add(&t, "  %-34s %s", left, o->help);
		if (o->def && o->type != OPT_BOOL && o->type != OPT_VERBOSE)
			text_add(&t, " [%s]", o->def);
		text_add(&t, "\n");
	}
	text_add(&t,
		 "\nEvery long option is also a config-file key: "
		 "'listen 127.0.0.1:0'.\n"
		 "The command line overrides the file; repeatable options "
		 "accumulate.\n"
		 "Signals: INT/TERM stop gracefully, HUP reloads lists, USR1 "
		 "reopens logs.\n");
	return t.s;
}
