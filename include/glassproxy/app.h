/*
 * app: glassproxy the program — configuration in, a running proxy out.
 *
 * Contract: app_main() does what main() would: read the config file and
 * the command line into a typed struct config (exit 2 with "FILE:LINE:
 * problem" or "--option: problem" on any bad value), answer --help,
 * --version and --check-config, or else open the logs, build the rules
 * snapshot and the proxy settings, listen, and serve until SIGINT/SIGTERM
 * (exit 0).  One thread takes the signals with sigwait:
 *   SIGHUP   re-reads the config file, the hosts file and the list files
 *            and builds a complete new configuration; with any error the
 *            whole old one stays (one error line says so).  Otherwise
 *            every setting that can change live applies from the next
 *            request on (timeouts, limits, lists, hosts, forwarded-for,
 *            via-name, parent proxy and direct patterns, the upstream pool
 *            settings, log files and level, shutdown-grace); listen, serial
 *            and max-connections keep their old values with one warning
 *            each.  One info line names what changed.
 *   SIGUSR1  reopens the log files (after a rotation).
 * Every OS call goes through the struct sys it is given.
 */
#ifndef GLASSPROXY_APP_H
#define GLASSPROXY_APP_H

#include "glassproxy/sys.h"

/* Exit status for a bad command line or configuration. */
#define APP_EXIT_USAGE 2

/* Run glassproxy; returns the process exit status. */
int app_main(struct sys *sys, int argc, char **argv);

#endif
