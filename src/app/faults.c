/*
 * Fault injection at start (issue #11, docs/faults.md): the --fault specs,
 * the config key `fault` and GLASSPROXY_FAULTS become one fault sys over the
 * sys app_main was given (posix in the binary), and only when there is at
 * least one spec: without faults the proxy runs on that sys untouched.
 *
 * Contract: app_faults_start runs before the logs open, so every module
 * (logs, proxy, net, server) gets the fault sys; the app's own messages on
 * standard error keep going to the sys it was given (app->os), so a fault on
 * fs.write can never hide the banner, the ready line or the counters.  The
 * fault sys lives until app_faults_stop, after every thread has stopped.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "app/app_int.h"
#include "glassproxy/util.h"

#define MAX_FAULT_SPECS 256
#define FAULT_ENV	"GLASSPROXY_FAULTS"

static void say_os(struct app *app, const char *text)
{
	sys_write_all(app->os, 2, text, strlen(text));
}

/*
 * A seed nobody chose: 8 bytes of /dev/urandom through the fs table, or,
 * if that cannot be read, the clocks mixed (a seed only has to differ
 * between runs; it is printed, so any run can be replayed).
 */
static uint64_t random_seed(struct sys *sys)
{
	uint64_t seed = 0;
	struct timespec now = {0};
	int fd = sys_open(sys, "/dev/urandom", O_RDONLY, 0);

	if (fd >= 0) {
		ssize_t n = sys_read(sys, fd, &seed, sizeof(seed));
		sys_file_close(sys, fd);
		if (n == (ssize_t)sizeof(seed) && seed != 0)
			return seed;
	}
	sys_now_wall(sys, &now);
	seed = (uint64_t)now.tv_sec * 1000000007u ^ (uint64_t)now.tv_nsec;
	return seed ^ (uint64_t)sys_now_mono_ms(sys) << 32;
}

/* --fault-seed: a decimal number, or a random one when not given. */
static int fault_seed(struct app *app, uint64_t *seed)
{
	const char *text = app->cfg.fault_seed;

	if (!text) {
		*seed = random_seed(app->os);
		return 0;
	}
	if (util_parse_u64(text, strlen(text), UINT64_MAX, seed) < 0) {
		app_report(app, LOG_ERROR,
			   "--fault-seed: '%s' is not a number (try --help)",
			   text);
		return APP_EXIT_USAGE;
	}
	return 0;
}

/*
 * The specs of the configuration, then those of the environment (split in
 * env_copy, which the caller frees).  Returns the count or an exit status
 * (negated, so 0 specs is not confused with success of another kind).
 */
static int gather_specs(struct app *app, const char **specs, char **env_copy)
{
	const char *env = getenv(FAULT_ENV);
	size_t n = app->cfg.fault.count;
	int more = 0;

	*env_copy = NULL;
	if (n > MAX_FAULT_SPECS)
		goto too_many;
	for (size_t i = 0; i < n; i++)
		specs[i] = app->cfg.fault.items[i];
	if (env && *env) {
		*env_copy = strdup(env);
		if (!*env_copy) {
			app_report(app, LOG_ERROR, "out of memory");
			return -EXIT_FAILURE;
		}
		more = sys_fault_split(*env_copy, specs + n,
				       MAX_FAULT_SPECS - n);
		if (more < 0)
			goto too_many;
	}
	return (int)n + more;
too_many:
	app_report(app, LOG_ERROR, "more than %d fault specs", MAX_FAULT_SPECS);
	return -APP_EXIT_USAGE;
}

/* sys_fault_describe into a fresh heap string (NULL: out of memory). */
static char *describe(const struct sys *fault)
{
	size_t len = sys_fault_describe(fault, NULL, 0);
	char *text = malloc(len + 1);

	if (text)
		sys_fault_describe(fault, text, len + 1);
	return text;
}

/* The banner: loud, on standard error, with every rule and the seed. */
static void announce(struct app *app)
{
	char *text = describe(app->fault);

	say_os(app, "glassproxy: FAULT INJECTION ACTIVE\n");
	if (text)
		say_os(app, text);
	free(text);
}

int app_faults_start(struct app *app)
{
	const char *specs[MAX_FAULT_SPECS];
	char err[1024], *env_copy;
	uint64_t seed;
	int n, rc;

	n = gather_specs(app, specs, &env_copy);
	if (n <= 0) {
		free(env_copy);
		return -n;
	}
	rc = fault_seed(app, &seed);
	if (rc != 0)
		goto free_env;
	rc = sys_fault_new(app->os, specs, (size_t)n, seed, &app->fault, err,
			   sizeof(err));
	if (rc == -EINVAL) {
		/* err is the spec and a caret line: printed as it is. */
		say_os(app, "glassproxy: bad --fault spec:\n");
		say_os(app, err);
		say_os(app, "\n");
		rc = APP_EXIT_USAGE;
		goto free_env;
	} else if (rc < 0) {
		app_report(app, LOG_ERROR, "fault sys: %s", strerror(-rc));
		rc = EXIT_FAILURE;
		goto free_env;
	}
	app->sys = app->fault;
	announce(app);
free_env:
	free(env_copy);
	return rc;
}

/* The event log learns it too, once it is open: one line per rule. */
void app_faults_log(struct app *app, const char *headline)
{
	char *text, *line, *next;

	if (!app->fault || !app->log)
		return;
	text = describe(app->fault);
	if (!text)
		return;
	log_event(app->log, LOG_WARN, "%s", headline);
	for (line = text; *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		else
			next = line + strlen(line);
		if (*line)
			log_event(app->log, LOG_WARN, "fault: %s", line);
	}
	free(text);
}

void app_faults_stop(struct app *app)
{
	char *text;

	if (!app->fault)
		return;
	text = describe(app->fault);
	if (text) {
		say_os(app, "glassproxy: faults injected:\n");
		say_os(app, text);
		free(text);
	}
	app->sys = app->os;
	sys_fault_free(app->fault);
	app->fault = NULL;
}
