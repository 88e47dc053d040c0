/*
 * Throughput of the tunnel relay over loopback TCP.
 *
 *   cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -Iinclude \
 *      bench/bench_tunnel.c src/tunnel/tunnel.c src/sys/sys.c \
 *      src/sys/sys_posix.c -lpthread -o build/bench_tunnel
 *   build/bench_tunnel [MiB [run]]   (default 1024 MiB, every run)
 *
 * A source thread sends MiB mebibytes into one TCP connection, tunnel_relay()
 * moves them to a second one, and a sink thread reads them out and checks the
 * count.  Runs: a direct source->sink connection (the ceiling: what loopback
 * TCP does without a relay), then the relay with splice, and copying with
 * 16 KiB and 64 KiB buffers: runs "direct", "splice", "copy16", "copy64"
 * (name one to run only it, e.g. under perf).  Each is repeated
 * BENCH_REPEAT times; it prints the median and the best in MB/s (10^6 bytes
 * per second), and the CPU time the relay's own thread spent per GiB (on a
 * small or busy machine the three threads compete for CPUs, and that number
 * says more about the relay's cost than the throughput does).  Standalone: only the tunnel and sys modules are linked in.
 */
#include "glassproxy/tunnel.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BENCH_CHUNK  (256 * 1024)
#define BENCH_REPEAT 3

struct bench_end {
	int fd;
	uint64_t bytes; /* source: to send; sink: received */
};

static double bench_clock(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double bench_now(void)
{
	return bench_clock(CLOCK_MONOTONIC);
}

static void bench_die(const char *what)
{
	perror(what);
	exit(1);
}

static void bench_tcp_pair(int fds[2])
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	int lfd = socket(AF_INET, SOCK_STREAM, 0);

	if (lfd < 0)
		bench_die("socket");
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(lfd, 1) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&a, &alen) < 0)
		bench_die("listen");
	fds[0] = socket(AF_INET, SOCK_STREAM, 0);
	if (fds[0] < 0 || connect(fds[0], (struct sockaddr *)&a, sizeof(a)) < 0)
		bench_die("connect");
	fds[1] = accept(lfd, NULL, NULL);
	if (fds[1] < 0)
		bench_die("accept");
	close(lfd);
}

static void *bench_source(void *arg)
{
	struct bench_end *e = arg;
	char *buf = malloc(BENCH_CHUNK);
	uint64_t left = e->bytes;

	if (!buf)
		bench_die("malloc");
	memset(buf, 0x5a, BENCH_CHUNK);
	while (left > 0) {
		size_t n = left < BENCH_CHUNK ? (size_t)left : BENCH_CHUNK;
		ssize_t w = send(e->fd, buf, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			bench_die("send");
		left -= (uint64_t)w;
	}
	shutdown(e->fd, SHUT_WR);
	free(buf);
	return NULL;
}

static void *bench_sink(void *arg)
{
	struct bench_end *e = arg;
	char *buf = malloc(BENCH_CHUNK);

	if (!buf)
		bench_die("malloc");
	shutdown(e->fd, SHUT_WR); /* nothing flows the other way */
	for (;;) {
		ssize_t n = recv(e->fd, buf, BENCH_CHUNK, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			bench_die("recv");
		if (n == 0)
			break;
		e->bytes += (uint64_t)n;
	}
	free(buf);
	return NULL;
}

/*
 * One transfer; returns its MB/s.  opts NULL: no relay, the source talks to
 * the sink directly.
 */
static double bench_once(const char *name, const struct tunnel_opts *opts,
			 uint64_t bytes, bool *spliced, double *cpu_s)
{
	struct bench_end src = {.bytes = bytes}, sink = {.bytes = 0};
	struct tunnel_stats st = {0};
	pthread_t ts, tk;
	int cp[2], op[2] = {-1, -1};
	double t0, secs;

	bench_tcp_pair(cp);
	src.fd = cp[0];
	if (opts) {
		bench_tcp_pair(op);
		sink.fd = op[1];
	} else {
		sink.fd = cp[1];
	}
	t0 = bench_now();
	if (pthread_create(&ts, NULL, bench_source, &src) != 0)
		bench_die("pthread_create");
	if (pthread_create(&tk, NULL, bench_sink, &sink) != 0)
		bench_die("pthread_create");
	*cpu_s = 0;
	if (opts) {
		double cpu0 = bench_clock(CLOCK_THREAD_CPUTIME_ID);
		int rc = tunnel_relay(sys_posix(), cp[1], op[0], NULL, 0, opts,
				      &st);

		*cpu_s = bench_clock(CLOCK_THREAD_CPUTIME_ID) - cpu0;
		if (rc != 0)
			fprintf(stderr, "%s: relay ended %s (%d)\n", name,
				tunnel_end_name(st.end), rc);
	}
	pthread_join(ts, NULL);
	pthread_join(tk, NULL);
	secs = bench_now() - t0;
	if (sink.bytes != bytes) {
		fprintf(stderr, "%s: sink got %llu of %llu bytes\n", name,
			(unsigned long long)sink.bytes,
			(unsigned long long)bytes);
		exit(1);
	}
	*spliced = st.spliced;
	close(cp[0]);
	close(cp[1]);
	if (opts) {
		close(op[0]);
		close(op[1]);
	}
	return (double)bytes / 1e6 / secs;
}

static int bench_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void bench_run(const char *only, const char *name,
		      const struct tunnel_opts *opts, uint64_t bytes)
{
	double mbs[BENCH_REPEAT], cpu[BENCH_REPEAT];
	double gib = (double)bytes / (1024.0 * 1024 * 1024);
	bool spliced = false;

	if (only && strcmp(only, name) != 0)
		return;
	for (int i = 0; i < BENCH_REPEAT; i++)
		mbs[i] = bench_once(name, opts, bytes, &spliced, &cpu[i]);
	qsort(mbs, BENCH_REPEAT, sizeof(mbs[0]), bench_cmp);
	qsort(cpu, BENCH_REPEAT, sizeof(cpu[0]), bench_cmp);
	printf("%-8s median %5.0f MB/s  best %5.0f MB/s", name,
	       mbs[BENCH_REPEAT / 2], mbs[BENCH_REPEAT - 1]);
	if (opts)
		printf("  relay CPU %4.0f ms/GiB  %s\n",
		       cpu[BENCH_REPEAT / 2] * 1000 / gib,
		       spliced ? "(spliced)" : "(copied)");
	else
		printf("  (no relay)\n");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct tunnel_opts splice, copy16, copy64;
	uint64_t mib = 1024;
	const char *only = argc > 2 ? argv[2] : NULL;

	if (argc > 1) {
		char *end;
		unsigned long v = strtoul(argv[1], &end, 10);

		if (*end || v == 0) {
			fprintf(stderr, "usage: %s [MiB [run]]\n", argv[0]);
			return 2;
		}
		mib = v;
	}
	signal(SIGPIPE, SIG_IGN);
	tunnel_opts_default(&splice);
	copy16 = splice;
	copy16.use_splice = false;
	copy64 = copy16;
	copy64.buffer_size = 64 * 1024;

	printf("relaying %llu MiB over loopback TCP\n",
	       (unsigned long long)mib);
	bench_run(only, "direct", NULL, mib << 20);
	bench_run(only, "splice", &splice, mib << 20);
	bench_run(only, "copy16", &copy16, mib << 20);
	bench_run(only, "copy64", &copy64, mib << 20);
	return 0;
}
