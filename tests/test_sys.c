/*
 * Unit tests of the sys layer: the wrappers route to the table underneath,
 * the mock scripts the OS the way sys_mock.h promises, and the conveniences
 * (send_all, write_all, read_file) handle short transfers and errors.
 */
#include "sys_mock.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void test_wrapper_reports_enosys_for_missing_member(void **state)
{
	static const struct sys_net_ops empty_net;
	static const struct sys_clock_ops empty_clock;
	static const struct sys_fs_ops empty_fs;
	struct sys empty = {&empty_net, &empty_clock, &empty_fs, NULL};
	char byte;

	(void)state;
	assert_int_equal(sys_recv(&empty, 3, &byte, 1, 0), -ENOSYS);
	assert_int_equal(sys_open(&empty, "x", O_RDONLY, 0), -ENOSYS);
	assert_int_equal(sys_now_mono_ms(&empty), 0);
}

static void test_mock_recv_scripts_bytes_then_error_then_eof(void **state)
{
	struct sys *sys = sys_mock();
	char buf[16];

	(void)state;
	will_recv_str("abc");
	will_fail(mock_recv, -EINTR);
	will_recv(NULL, 0);
	assert_int_equal(sys_recv(sys, 5, buf, sizeof(buf), 0), 3);
	assert_memory_equal(buf, "abc", 3);
	assert_int_equal(sys_recv(sys, 5, buf, sizeof(buf), 0), -EINTR);
	assert_int_equal(sys_recv(sys, 5, buf, sizeof(buf), 0), 0);
}

static void test_send_all_loops_over_short_sends(void **state)
{
	struct sys *sys = sys_mock();
	size_t len;
	const char *sent;

	(void)state;
	will_send(1);
	will_send(2);
	will_send(SYS_MOCK_ALL);
	assert_int_equal(sys_send_all(sys, 4, "hello world", 11), 0);
	sent = sys_mock_sent(&len);
	assert_int_equal(len, 11);
	assert_memory_equal(sent, "hello world", 11);
}

static void test_send_all_passes_errors_up(void **state)
{
	struct sys *sys = sys_mock();

	(void)state;
	will_send(3);
	will_fail(mock_send, -ECONNRESET);
	assert_int_equal(sys_send_all(sys, 4, "hello", 5), -ECONNRESET);
}

static void test_write_all_rejects_zero_progress(void **state)
{
	struct sys *sys = sys_mock();

	(void)state;
	will_write(0);
	assert_int_equal(sys_write_all(sys, 4, "x", 1), -EIO);
}

static void test_read_file_reads_in_pieces_and_closes(void **state)
{
	struct sys *sys = sys_mock();
	char *text = NULL;
	size_t len = 0;

	(void)state;
	expect_string(mock_open, path, "/etc/x.conf");
	will_return(mock_open, 7);
	will_read("listen ", 7);
	will_read("127.0.0.1:0\n", 12);
	will_read(NULL, 0);
	assert_int_equal(sys_read_file(sys, "/etc/x.conf", 100, &text, &len),
			 0);
	assert_int_equal(len, 19);
	assert_string_equal(text, "listen 127.0.0.1:0\n");
	assert_true(sys_mock_is_closed(7));
	free(text);
}

static void test_read_file_refuses_too_large(void **state)
{
	struct sys *sys = sys_mock();
	char *text = NULL;
	size_t len = 0;

	(void)state;
	expect_string(mock_open, path, "big");
	will_return(mock_open, 8);
	will_read("0123456789", 10);
	will_read(NULL, 0);
	assert_int_equal(sys_read_file(sys, "big", 5, &text, &len), -EFBIG);
	assert_null(text);
	assert_true(sys_mock_is_closed(8));
}

static void test_read_file_open_failure(void **state)
{
	struct sys *sys = sys_mock();
	char *text = NULL;
	size_t len = 0;

	(void)state;
	expect_string(mock_open, path, "missing");
	will_fail(mock_open, -ENOENT);
	assert_int_equal(sys_read_file(sys, "missing", 5, &text, &len),
			 -ENOENT);
	assert_int_equal(sys_mock_close_count(), 0);
}

static void test_read_file_error_mid_read_closes(void **state)
{
	struct sys *sys = sys_mock();
	char *text = NULL;
	size_t len = 0;

	(void)state;
	expect_string(mock_open, path, "flaky");
	will_return(mock_open, 9);
	will_read("ab", 2);
	will_fail(mock_read, -EIO);
	assert_int_equal(sys_read_file(sys, "flaky", 100, &text, &len), -EIO);
	assert_true(sys_mock_is_closed(9));
}

static void test_mock_clock_advances_on_poll_timeout(void **state)
{
	struct sys *sys = sys_mock();
	struct pollfd p = {.fd = 3, .events = POLLIN};
	int64_t before = sys_now_mono_ms(sys);

	(void)state;
	will_poll1(0, 0);
	assert_int_equal(sys_poll(sys, &p, 1, 250), 0);
	assert_int_equal(sys_now_mono_ms(sys) - before, 250);
	will_poll1(1, POLLIN);
	assert_int_equal(sys_poll(sys, &p, 1, 250), 1);
	assert_int_equal(p.revents, POLLIN);
}

static void test_posix_clock_is_monotonic(void **state)
{
	struct sys *sys = sys_posix();
	int64_t a = sys_now_mono_ms(sys), b = sys_now_mono_ms(sys);
	struct timespec wall;

	(void)state;
	assert_true(b >= a);
	assert_int_equal(sys_now_wall(sys, &wall), 0);
	assert_true(wall.tv_sec > 1600000000);
}

static void test_posix_resolve_ip_literals(void **state)
{
	struct sys *sys = sys_posix();
	struct sys_addr addrs[4];

	(void)state;
	assert_int_equal(sys_resolve(sys, "127.0.0.1", 80, addrs, 4), 1);
	assert_int_equal(addrs[0].ss.ss_family, AF_INET);
}

/* ---- the posix members added for the cache, on real files ---- */

/* A fresh private directory under /tmp; the test removes it. */
static void make_temp_dir(char *dir, size_t cap)
{
	snprintf(dir, cap, "/tmp/glassproxy-test-sys-XXXXXX");
	assert_non_null(mkdtemp(dir));
}

static void path_in(char *out, size_t cap, const char *dir, const char *name)
{
	int n = snprintf(out, cap, "%s/%s", dir, name);
	assert_true(n > 0 && (size_t)n < cap);
}

static int write_file(struct sys *sys, const char *path, const char *text)
{
	int fd = sys_open(sys, path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(sys_write_all(sys, fd, text, strlen(text)), 0);
	return fd;
}

static void test_posix_pread_ftruncate(void **state)
{
	struct sys *sys = sys_posix();
	char dir[64], path[128], buf[16];
	struct stat st;
	int fd;

	(void)state;
	make_temp_dir(dir, sizeof(dir));
	path_in(path, sizeof(path), dir, "f");
	fd = write_file(sys, path, "0123456789");
	assert_int_equal(sys_pread(sys, fd, buf, 4, 3), -EBADF); /* O_WRONLY */
	assert_int_equal(sys_file_close(sys, fd), 0);
	fd = sys_open(sys, path, O_RDWR, 0);
	assert_true(fd >= 0);
	assert_int_equal(sys_pread(sys, fd, buf, 4, 3), 4);
	assert_memory_equal(buf, "3456", 4);
	/* pread leaves the file position alone: read starts at 0. */
	assert_int_equal(sys_read(sys, fd, buf, 2), 2);
	assert_memory_equal(buf, "01", 2);
	assert_int_equal(sys_pread(sys, fd, buf, sizeof(buf), 8), 2);
	assert_int_equal(sys_pread(sys, fd, buf, sizeof(buf), 10), 0);
	assert_int_equal(sys_ftruncate(sys, fd, 5), 0);
	assert_int_equal(sys_fstat(sys, fd, &st), 0);
	assert_int_equal(st.st_size, 5);
	assert_int_equal(sys_ftruncate(sys, fd, -1), -EINVAL);
	assert_int_equal(sys_file_close(sys, fd), 0);
	assert_int_equal(sys_unlink(sys, path), 0);
	assert_int_equal(sys_rmdir(sys, dir), 0);
}

static void test_posix_rmdir(void **state)
{
	struct sys *sys = sys_posix();
	char dir[64], sub[128], file[160];

	(void)state;
	make_temp_dir(dir, sizeof(dir));
	path_in(sub, sizeof(sub), dir, "sub");
	assert_int_equal(sys_mkdir(sys, sub, 0700), 0);
	path_in(file, sizeof(file), sub, "f");
	assert_int_equal(sys_file_close(sys, write_file(sys, file, "x")), 0);
	assert_int_equal(sys_rmdir(sys, sub), -ENOTEMPTY);
	assert_int_equal(sys_unlink(sys, file), 0);
	assert_int_equal(sys_rmdir(sys, sub), 0);
	assert_int_equal(sys_rmdir(sys, sub), -ENOENT);
	assert_int_equal(sys_rmdir(sys, dir), 0);
}

struct listing {
	char names[8][16];
	unsigned char types[8];
	int n;
	int stop_after; /* return -ECANCELED once this many were seen; 0: never */
};

static int collect(void *arg, const char *name, unsigned char d_type)
{
	struct listing *l = arg;

	assert_true(l->n < 8);
	snprintf(l->names[l->n], sizeof(l->names[0]), "%s", name);
	l->types[l->n] = d_type;
	l->n++;
	return l->stop_after && l->n == l->stop_after ? -ECANCELED : 0;
}

static int listing_type(const struct listing *l, const char *name)
{
	for (int i = 0; i < l->n; i++)
		if (!strcmp(l->names[i], name))
			return l->types[i];
	return -1;
}

static void test_posix_list_dir(void **state)
{
	struct sys *sys = sys_posix();
	char dir[64], a[128], b[128], sub[128];
	struct listing l = {0};

	(void)state;
	make_temp_dir(dir, sizeof(dir));
	assert_int_equal(sys_list_dir(sys, dir, collect, &l), 0);
	assert_int_equal(l.n, 0); /* "." and ".." are never reported */
	path_in(a, sizeof(a), dir, "a");
	path_in(b, sizeof(b), dir, "b");
	path_in(sub, sizeof(sub), dir, "sub");
	assert_int_equal(sys_file_close(sys, write_file(sys, a, "1")), 0);
	assert_int_equal(sys_file_close(sys, write_file(sys, b, "2")), 0);
	assert_int_equal(sys_mkdir(sys, sub, 0700), 0);
	assert_int_equal(sys_list_dir(sys, dir, collect, &l), 0);
	assert_int_equal(l.n, 3);
	/* tmpfs and ext4 fill d_type in; other file systems may say unknown */
	assert_true(listing_type(&l, "a") == SYS_DT_REG ||
		    listing_type(&l, "a") == SYS_DT_UNKNOWN);
	assert_true(listing_type(&l, "sub") == SYS_DT_DIR ||
		    listing_type(&l, "sub") == SYS_DT_UNKNOWN);
	assert_true(listing_type(&l, "b") >= 0);
	memset(&l, 0, sizeof(l));
	l.stop_after = 2;
	assert_int_equal(sys_list_dir(sys, dir, collect, &l), -ECANCELED);
	assert_int_equal(l.n, 2);
	assert_int_equal(sys_list_dir(sys, a, collect, &l), -ENOTDIR);
	assert_int_equal(sys_unlink(sys, a), 0);
	assert_int_equal(sys_unlink(sys, b), 0);
	assert_int_equal(sys_rmdir(sys, sub), 0);
	assert_int_equal(sys_rmdir(sys, dir), 0);
	assert_int_equal(sys_list_dir(sys, dir, collect, &l), -ENOENT);
}

static void test_posix_sendfile_and_pipe_io(void **state)
{
	struct sys *sys = sys_posix();
	char dir[64], path[128], buf[16];
	int fd, sv[2], p[2];
	off_t off = 2;

	(void)state;
	make_temp_dir(dir, sizeof(dir));
	path_in(path, sizeof(path), dir, "body");
	assert_int_equal(sys_file_close(sys, write_file(sys, path, "hello!")),
			 0);
	fd = sys_open(sys, path, O_RDONLY, 0);
	assert_true(fd >= 0);
	/* A test may call the OS itself: socketpair has no sys member. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(sys_sendfile(sys, sv[0], fd, &off, 3), 3);
	assert_int_equal(off, 5);
	assert_int_equal(sys_sendfile(sys, sv[0], fd, &off, 100), 1);
	assert_int_equal(sys_sendfile(sys, sv[0], fd, &off, 100), 0);
	assert_int_equal(sys_recv(sys, sv[1], buf, sizeof(buf), 0), 4);
	assert_memory_equal(buf, "llo!", 4);
	assert_int_equal(sys_sendfile(sys, sv[0], -1, NULL, 1), -EBADF);

	assert_int_equal(sys_pipe(sys, p), 0);
	assert_int_equal(sys_pipe_read(sys, p[0], buf, 1), -EAGAIN);
	assert_int_equal(sys_pipe_write(sys, p[1], "xyz", 3), 3);
	assert_int_equal(sys_pipe_read(sys, p[0], buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "xyz", 3);
	/* (A write after closing p[0] would raise SIGPIPE: not tried here.) */
	assert_int_equal(sys_close(sys, p[0]), 0);
	assert_int_equal(sys_close(sys, p[1]), 0);
	assert_int_equal(sys_close(sys, sv[0]), 0);
	assert_int_equal(sys_close(sys, sv[1]), 0);
	assert_int_equal(sys_file_close(sys, fd), 0);
	assert_int_equal(sys_unlink(sys, path), 0);
	assert_int_equal(sys_rmdir(sys, dir), 0);
}

static void test_mock_new_members(void **state)
{
	static const char *const names[] = {"ab/", "tmp/", "f", NULL};
	struct sys *sys = sys_mock();
	struct listing l = {0};
	char buf[8];
	off_t off = 10;

	(void)state;
	will_sendfile(SYS_MOCK_ALL);
	assert_int_equal(sys_sendfile(sys, 4, 5, &off, 6), 6);
	assert_int_equal(off, 16);
	will_pipe_write(2);
	assert_int_equal(sys_pipe_write(sys, 11, "abc", 3), 2);
	will_pipe_read("q", 1);
	assert_int_equal(sys_pipe_read(sys, 10, buf, sizeof(buf)), 1);
	assert_string_equal(sys_mock_trace(),
			    "sendfile(4<5)=6 pipe_write(11)=2 pipe_read(10)=1");
	will_pread("zz", 2);
	assert_int_equal(sys_pread(sys, 7, buf, sizeof(buf), 100), 2);
	will_return(mock_ftruncate, -EIO);
	assert_int_equal(sys_ftruncate(sys, 7, 0), -EIO);
	will_return(mock_rmdir, 0);
	assert_int_equal(sys_rmdir(sys, "d"), 0);
	expect_string(mock_list_dir, path, "cache");
	will_list_dir(names);
	assert_int_equal(sys_list_dir(sys, "cache", collect, &l), 0);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.names[0], "ab");
	assert_int_equal(l.types[0], SYS_DT_DIR);
	assert_int_equal(l.types[2], SYS_DT_REG);
	expect_string(mock_list_dir, path, "gone");
	will_fail(mock_list_dir, -ENOENT);
	assert_int_equal(sys_list_dir(sys, "gone", collect, &l), -ENOENT);
}

/* ---- the fault sys: grammar ---- */

static struct sys *fault_over(struct sys *inner, const char *spec)
{
	struct sys *f = NULL;
	char err[256];
	int rc = sys_fault_new(inner, &spec, spec ? 1 : 0, 1, &f, err,
			       sizeof(err));

	if (rc != 0)
		fail_msg("'%s' refused: %s", spec, err);
	return f;
}

/* Every example docs/faults.md gives, and a few more. */
static const char *const example_specs[] = {
	"net.recv=ECONNRESET@3",
	"net.recv=ECONNRESET@3+",
	"net.send=short",
	"net.recv=short:7",
	"net.recv=eof@2",
	"net.connect=ETIMEDOUT",
	"net.connect=ECONNREFUSED",
	"net.resolve=EAI_NONAME",
	"net.resolve=EAI_AGAIN",
	"net.accept=EMFILE@p0.1",
	"net.recv=delay:200ms",
	"fs.write=ENOSPC@p0.2",
	"fs.rename=EIO",
	"fs.fsync=EIO",
	"fs.open=EMFILE",
	"fs.write=short",
	"clock.offset=+3600s",
	"clock.wall.offset=-1h",
	"clock.mono.offset=+5m",
	"clock.freeze",
	"clock.mono.freeze@3+",
	"clock.step=+10s@5",
	"clock.mono.step=+10s@5",
	"seed=42",
	"net.recv[client]=ECONNRESET",
	"net.recv[origin]=eof@1",
	"net.connect[origin.test]=ECONNREFUSED",
	"net.connect[127.0.0.1:8081]=ECONNREFUSED",
	"net.recv[[::1]:8081]=short",
	"net.send[127.0.0.1]=EPIPE@2+",
	"net.resolve[origin.test]=EAI_NONAME",
	"fs.write[cache/]=ENOSPC",
	"fs.rename[/var/cache/glassproxy/tmp/]=EIO@p0.5",
	"net.splice=EINVAL",
	"net.sendfile=short:100",
	"net.pipe_read=eof",
	"fs.list_dir=EACCES",
	"net.poll=delay:1s@2",
	"net.*[origin]=ECONNRESET@p0.01",
	"net.*=delay:10ms",
	"fs.*[cache/]=EIO@7+",
	"fs.*=short",
};

static void test_fault_grammar_accepts_every_documented_example(void **state)
{
	struct sys *f = NULL;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(example_specs) / sizeof(example_specs[0]);
	     i++) {
		sys_fault_free(fault_over(sys_mock(), example_specs[i]));
	}
	assert_int_equal(
		sys_fault_new(sys_mock(), example_specs,
			      sizeof(example_specs) / sizeof(example_specs[0]),
			      7, &f, err, sizeof(err)),
		0);
	assert_int_equal(sys_fault_rule_count(f),
			 sizeof(example_specs) / sizeof(example_specs[0]) -
				 1);		 /* not seed= */
	assert_int_equal(sys_fault_seed(f), 42); /* spec wins */
	sys_fault_free(f);
}

/* Each mistake, and where the caret must point. */
static const struct {
	const char *spec;
	size_t at;
	const char *why; /* the start of the message */
} caret_cases[] = {
	{"net.recv=ECONNRSET@3", 9, "unknown error name"},
	{"net.recvv=EIO", 4, "unknown operation"},
	{"disk.write=EIO", 0, "expected net.OP"},
	{"net.recv", 8, "expected =FAULT"},
	{"net.recv=", 9, "expected an error name"},
	{"net.recv=wat", 9, "expected an error name"},
	{"net.recv=ECONNRESET@0", 20, "calls count from 1"},
	{"net.recv=ECONNRESET@x", 20, "expected a number"},
	{"net.recv=ECONNRESET@3x", 21, "unexpected character"},
	{"net.recv=ECONNRESET@p1.5", 21, "probability must be"},
	{"net.recv=ECONNRESET@p", 21, "expected a probability"},
	{"net.recv[clinet]=EIO", 9, "expected client, origin"},
	{"net.recv[client=EIO", 8, "missing ]"},
	{"net.recv[]=EIO", 8, "empty scope"},
	{"net.recv[", 8, "missing ]"},
	{"net.recv[[::1]:80", 8, "missing ]"},
	{"net.recv[[::1", 8, "missing ]"},
	{"net.recv[[::1]x]=EIO", 9, "expected client, origin"},
	{"net.accept[client]=EMFILE", 10, "this operation takes no"},
	{"fs.write[client]=EIO", 8, "this operation takes no"},
	{"net.recv[cache/]=EIO", 8, "this operation takes no"},
	{"net.connect=short", 12, "short applies to data"},
	{"net.send=eof", 9, "eof applies to reads"},
	{"net.recv=delay:200", 18, "expected a unit"},
	{"net.recv=delay:ms", 15, "expected a number"},
	{"net.recv=short:0", 15, "short:N needs N >= 1"},
	{"net.recv=short:x", 15, "expected a number"},
	{"clock.mono.step=-1s", 16, "the monotonic clock never"},
	{"clock.freeze=1s", 12, "clock.freeze takes no value"},
	{"clock.drift=+1s", 6, "unknown clock fault"},
	{"clock.offset=+1", 15, "expected a unit"},
	{"clock.step", 10, "expected =DURATION"},
	{"fs.open=EAI_NONAME", 8, "EAI_ names apply"},
	{"net.*[cache/]=EIO", 5, "this operation takes no"},
	{"fs.*[client]=EIO", 4, "this operation takes no"},
	{"net.**=EIO", 4, "unknown operation"},
	{"seed=abc", 5, "expected a digit"},
	{"seed=", 5, "expected a number"},
	{"seed=99999999999999999999", 24, "seed too large"},
};

static void test_fault_grammar_points_at_each_mistake(void **state)
{

	(void)state;
	for (size_t i = 0; i < sizeof(caret_cases) / sizeof(caret_cases[0]);
	     i++) {
		const char *spec = caret_cases[i].spec, *caret;
		struct sys *f = NULL;
		char err[256];
		size_t len = strlen(spec);

		assert_int_equal(sys_fault_new(sys_mock(), &spec, 1, 0, &f, err,
					       sizeof(err)),
				 -EINVAL);
		assert_null(f);
		/* Line one is the spec, line two the caret and the reason. */
		if (strncmp(err, spec, len) || err[len] != '\n')
			fail_msg("'%s': message '%s'", spec, err);
		caret = strchr(err + len + 1, '^');
		assert_non_null(caret);
		if ((size_t)(caret - (err + len + 1)) != caret_cases[i].at ||
		    strncmp(caret + 2, caret_cases[i].why,
			    strlen(caret_cases[i].why)))
			fail_msg("'%s': got\n%s\nwant the caret at %zu: %s",
				 spec, err, caret_cases[i].at,
				 caret_cases[i].why);
	}
}

static void test_fault_refuses_the_whole_list_for_one_bad_spec(void **state)
{
	const char *specs[] = {"net.recv=EIO", "fs.write=ENOPE"};
	struct sys *f = NULL;
	char err[64];

	(void)state;
	assert_int_equal(
		sys_fault_new(sys_mock(), specs, 2, 0, &f, err, sizeof(err)),
		-EINVAL);
	assert_null(f);
	assert_string_equal(err,
			    "fs.write=ENOPE\n         ^ unknown error name");
	/* A message larger than err is cut, never overflowed. */
	assert_int_equal(sys_fault_new(sys_mock(), specs, 2, 0, &f, err, 8),
			 -EINVAL);
	assert_string_equal(err, "fs.writ");
}

static void test_fault_split_env_text(void **state)
{
	char text[] = " net.recv=EIO@3;fs.write=short \t seed=4;;";
	const char *specs[4];

	(void)state;
	assert_int_equal(sys_fault_split(text, specs, 4), 3);
	assert_string_equal(specs[0], "net.recv=EIO@3");
	assert_string_equal(specs[1], "fs.write=short");
	assert_string_equal(specs[2], "seed=4");
	assert_int_equal(sys_fault_split(text, specs, 0), 0); /* all NULs now */
	char more[] = "a b c";
	assert_int_equal(sys_fault_split(more, specs, 2), -E2BIG);
}

/* ---- the fault sys: when rules fire ---- */

static void test_fault_nth_call_fails_once(void **state)
{
	struct sys *f = fault_over(sys_mock(), "net.recv=ECONNRESET@3");
	char buf[8];

	(void)state;
	will_recv_str("a");
	will_recv_str("b");
	will_recv_str("d");
	assert_int_equal(sys_recv(f, 4, buf, sizeof(buf), 0), 1);
	assert_int_equal(sys_recv(f, 4, buf, sizeof(buf), 0), 1);
	assert_int_equal(sys_recv(f, 4, buf, sizeof(buf), 0), -ECONNRESET);
	assert_int_equal(sys_recv(f, 4, buf, sizeof(buf), 0), 1);
	assert_int_equal(buf[0], 'd');
	assert_int_equal(sys_fault_hits(f, 0), 1);
	sys_fault_free(f);
}

static void test_fault_nth_and_later_calls_fail(void **state)
{
	struct sys *f = fault_over(sys_mock(), "net.send=EPIPE@2+");

	(void)state;
	will_send(SYS_MOCK_ALL);
	assert_int_equal(sys_send(f, 4, "x", 1, 0), 1);
	for (int i = 0; i < 5; i++)
		assert_int_equal(sys_send(f, 4, "x", 1, 0), -EPIPE);
	assert_int_equal(sys_fault_hits(f, 0), 5);
	sys_fault_free(f);
}

/* Which of n closes a probability rule fails, as a string of 0s and 1s. */
static void close_pattern(uint64_t seed, char *out, size_t n)
{
	const char *spec = "net.close=EIO@p0.25";
	struct sys *f = NULL;
	char err[128];
	uint64_t ones = 0;

	assert_int_equal(
		sys_fault_new(sys_mock(), &spec, 1, seed, &f, err, sizeof(err)),
		0);
	for (size_t i = 0; i < n; i++) {
		if (i % 200 == 0)
			sys_mock(); /* the mock remembers at most 256 closes */
		out[i] = sys_close(f, 3) == -EIO ? '1' : '0';
	}
	out[n] = '\0';
	for (size_t i = 0; i < n; i++)
		ones += out[i] == '1';
	assert_int_equal(sys_fault_hits(f, 0), ones);
	sys_fault_free(f);
}

static void test_fault_probability_is_deterministic_per_seed(void **state)
{
	char a[1001], b[1001], c[1001];
	size_t ones = 0;

	(void)state;
	close_pattern(12345, a, 1000);
	close_pattern(12345, b, 1000);
	close_pattern(54321, c, 1000);
	assert_string_equal(a, b);
	assert_string_not_equal(a, c);
	for (size_t i = 0; i < 1000; i++)
		ones += a[i] == '1';
	/* 0.25 of 1000: the binomial's sd is ~14, so 150..350 cannot miss */
	assert_in_range(ones, 150, 350);
	/* close always closes, even when it reports the injected error */
	assert_true(sys_mock_is_closed(3));
}

static void test_fault_probability_zero_and_one(void **state)
{
	const char *specs[] = {"net.close=EIO@p0", "net.shutdown=ENOTCONN@p1"};
	struct sys *f = NULL;
	char err[128];

	(void)state;
	assert_int_equal(
		sys_fault_new(sys_mock(), specs, 2, 9, &f, err, sizeof(err)),
		0);
	for (int i = 0; i < 50; i++) {
		assert_int_equal(sys_close(f, 3), 0);
		assert_int_equal(sys_shutdown(f, 3, SHUT_WR), -ENOTCONN);
	}
	assert_int_equal(sys_fault_hits(f, 0), 0);
	assert_int_equal(sys_fault_hits(f, 1), 50);
	sys_fault_free(f);
}

/* ---- the fault sys: kinds of fault ---- */

static void test_fault_short_sends_and_writes(void **state)
{
	struct sys *mock = sys_mock();
	const char *specs[] = {"net.send=short", "fs.write=short:2"};
	struct sys *f = NULL;
	const char *out;
	char err[128];
	size_t len;

	(void)state;
	assert_int_equal(sys_fault_new(mock, specs, 2, 0, &f, err, sizeof(err)),
			 0);
	for (int i = 0; i < 5; i++)
		will_send(SYS_MOCK_ALL); /* each call is offered 1 byte */
	assert_int_equal(sys_send_all(f, 4, "hello", 5), 0);
	out = sys_mock_sent_on(4, &len);
	assert_int_equal(len, 5);
	assert_memory_equal(out, "hello", 5);
	assert_string_equal(sys_mock_trace(), "send(4)=1 send(4)=1 send(4)=1 "
					      "send(4)=1 send(4)=1");
	for (int i = 0; i < 3; i++)
		will_write(SYS_MOCK_ALL);
	assert_int_equal(sys_write_all(f, 7, "abcde", 5), 0);
	out = sys_mock_written(&len);
	assert_int_equal(len, 5);
	assert_memory_equal(out, "abcde", 5);
	assert_int_equal(sys_fault_hits(f, 1), 3);
	sys_fault_free(f);
}

static void test_fault_short_recv_caps_the_length(void **state)
{
	struct sys *f = fault_over(sys_mock(), "net.recv=short:7");
	char buf[64];

	(void)state;
	/* The mock fails the test if it is asked for fewer bytes than queued. */
	will_recv("0123456", 7);
	assert_int_equal(sys_recv(f, 4, buf, sizeof(buf), 0), 7);
	will_recv("ab", 2); /* a shorter buffer stays as it is */
	assert_int_equal(sys_recv(f, 4, buf, 2, 0), 2);
	sys_fault_free(f);
}

static void test_fault_eof_at_second_recv(void **state)
{
	struct sys *f = fault_over(sys_mock(), "net.recv=eof@2");
	char buf[8];

	(void)state;
	will_recv_str("a");
	will_recv_str("c");
	assert_int_equal(sys_recv(f, 4, buf, sizeof(buf), 0), 1);
	assert_int_equal(sys_recv(f, 4, buf, sizeof(buf), 0), 0);
	assert_int_equal(sys_recv(f, 4, buf, sizeof(buf), 0), 1);
	assert_string_equal(sys_mock_trace(), "recv(4)=1 recv(4)=1");
	sys_fault_free(f);
}

/*
 * A look that finds nothing (MSG_DONTWAIT, nothing to read) is not
 * counted: eof@2 is the second read that finds something (or an end),
 * whether the look at accept came before the client's bytes or after.
 */
static void test_fault_a_look_that_would_block_is_not_counted(void **state)
{
	struct sys *f = fault_over(sys_mock(), "net.recv=eof@2");
	char buf[8];

	(void)state;
	will_poll1(0, 0); /* the look at accept: nothing yet */
	assert_int_equal(sys_recv(f, 4, buf, sizeof(buf), MSG_DONTWAIT),
			 -EAGAIN);
	will_poll1(1, POLLIN);
	will_recv_str("a");
	assert_int_equal(sys_recv(f, 4, buf, sizeof(buf), MSG_DONTWAIT), 1);
	will_poll1(1, POLLIN);
	assert_int_equal(sys_recv(f, 4, buf, sizeof(buf), MSG_DONTWAIT), 0);
	assert_string_equal(
		sys_mock_trace(),
		"poll(4:i;0)=0 poll(4:i;0)=1 recv(4)=1 poll(4:i;0)=1");
	sys_fault_free(f);
}

static void test_fault_delay_waits_on_the_inner_clock(void **state)
{
	struct sys *mock = sys_mock();
	struct sys *f = fault_over(mock, "net.recv=delay:200ms");
	int64_t before = sys_now_mono_ms(mock);
	char buf[8];

	(void)state;
	will_poll1(0, 0); /* the wait: no descriptors, 200 ms */
	will_recv_str("x");
	assert_int_equal(sys_recv(f, 4, buf, sizeof(buf), 0), 1);
	assert_int_equal(sys_now_mono_ms(mock) - before, 200);
	assert_string_equal(sys_mock_trace(), "poll(;200)=0 recv(4)=1");
	sys_fault_free(f);
}

static void test_fault_delay_then_error_and_resolve_codes(void **state)
{
	const char *specs[] = {"net.connect=delay:2s", "net.connect=ETIMEDOUT",
			       "net.resolve=EAI_NONAME@1",
			       "net.resolve=EAI_AGAIN@2"};
	struct sys *mock = sys_mock(), *f = NULL;
	struct sys_addr a = sys_mock_addr4("127.0.0.1", 80), out[2];
	char err[128];

	(void)state;
	assert_int_equal(sys_fault_new(mock, specs, 4, 0, &f, err, sizeof(err)),
			 0);
	will_poll1(0, 0);
	assert_int_equal(sys_connect(f, 3, &a), -ETIMEDOUT);
	assert_int_equal(sys_now_mono_ms(mock), 1000 + 2000);
	assert_int_equal(sys_resolve(f, "x.test", 80, out, 2), -ENOENT);
	assert_int_equal(sys_resolve(f, "x.test", 80, out, 2), -EAGAIN);
	sys_fault_free(f);
}

/* ---- the fault sys: scopes ---- */

static void test_fault_client_and_origin_scopes(void **state)
{
	const char *specs[] = {"net.recv[client]=ECONNRESET",
			       "net.send[origin]=EPIPE"};
	struct sys *f = NULL;
	struct sys_addr origin = sys_mock_addr4("10.0.0.9", 80), peer;
	char buf[8], err[128];

	(void)state;
	assert_int_equal(
		sys_fault_new(sys_mock(), specs, 2, 0, &f, err, sizeof(err)),
		0);
	will_return(mock_accept, 5);
	assert_int_equal(sys_accept(f, 3, &peer), 5);
	will_return(mock_connect, -EINPROGRESS);
	assert_int_equal(sys_connect(f, 6, &origin), -EINPROGRESS);
	assert_int_equal(sys_recv(f, 5, buf, sizeof(buf), 0), -ECONNRESET);
	will_recv_str("o");
	assert_int_equal(sys_recv(f, 6, buf, sizeof(buf), 0), 1);
	assert_int_equal(sys_send(f, 6, "x", 1, 0), -EPIPE);
	will_send(SYS_MOCK_ALL);
	assert_int_equal(sys_send(f, 5, "x", 1, 0), 1);
	/* An unknown descriptor is neither. */
	will_recv_str("u");
	assert_int_equal(sys_recv(f, 9, buf, sizeof(buf), 0), 1);
	/* A closed and reused descriptor forgets what it was. */
	assert_int_equal(sys_close(f, 5), 0);
	will_recv_str("r");
	assert_int_equal(sys_recv(f, 5, buf, sizeof(buf), 0), 1);
	assert_int_equal(sys_fault_hits(f, 0), 1);
	assert_int_equal(sys_fault_hits(f, 1), 1);
	sys_fault_free(f);
}

static void test_fault_accept_without_peer_still_learns(void **state)
{
	struct sys *f = fault_over(sys_mock(), "net.recv[client]=EIO");
	char buf[4];

	(void)state;
	will_return(mock_accept, 5);
	assert_int_equal(sys_accept(f, 3, NULL), 5);
	assert_int_equal(sys_recv(f, 5, buf, sizeof(buf), 0), -EIO);
	sys_fault_free(f);
}

static void test_fault_peer_scope(void **state)
{
	const char *specs[] = {"net.connect[127.0.0.1:8081]=ECONNREFUSED",
			       "net.recv[127.0.0.1:40000]=eof",
			       "net.send[::1]=EPIPE"};
	struct sys *f = NULL;
	struct sys_addr a8081 = sys_mock_addr4("127.0.0.1", 8081),
			a8082 = sys_mock_addr4("127.0.0.1", 8082),
			v6 = sys_mock_addr6("::1", 443);
	char buf[4], err[128];

	(void)state;
	assert_int_equal(
		sys_fault_new(sys_mock(), specs, 3, 0, &f, err, sizeof(err)),
		0);
	assert_int_equal(sys_connect(f, 6, &a8081), -ECONNREFUSED);
	will_return(mock_connect, 0);
	assert_int_equal(sys_connect(f, 7, &a8082), 0);
	will_return(mock_accept, 8); /* the mock's peer is 127.0.0.1:40000 */
	assert_int_equal(sys_accept(f, 3, NULL), 8);
	assert_int_equal(sys_recv(f, 8, buf, sizeof(buf), 0), 0);
	will_recv_str("y");
	assert_int_equal(sys_recv(f, 7, buf, sizeof(buf), 0), 1);
	will_return(mock_connect, 0);
	assert_int_equal(sys_connect(f, 9, &v6), 0);
	assert_int_equal(sys_send(f, 9, "x", 1, 0), -EPIPE); /* any port */
	will_send(SYS_MOCK_ALL);
	assert_int_equal(sys_send(f, 7, "x", 1, 0), 1);
	sys_fault_free(f);
}

static void test_fault_host_scope_learns_from_resolve(void **state)
{
	const char *specs[] = {"net.connect[origin.test]=ECONNREFUSED",
			       "net.resolve[down.test]=EAI_NONAME"};
	static struct sys_addr addrs[2];
	struct sys *f = NULL;
	struct sys_addr out[4], other = sys_mock_addr4("10.0.0.3", 80);
	char err[128];

	(void)state;
	addrs[0] = sys_mock_addr4("10.0.0.1", 80);
	addrs[1] = sys_mock_addr6("2001:db8::1", 80);
	assert_int_equal(
		sys_fault_new(sys_mock(), specs, 2, 0, &f, err, sizeof(err)),
		0);
	expect_string(mock_resolve, host, "Origin.Test");
	will_return(mock_resolve, 2);
	will_return(mock_resolve, addrs);
	assert_int_equal(sys_resolve(f, "Origin.Test", 80, out, 4), 2);
	assert_int_equal(sys_connect(f, 6, &out[0]), -ECONNREFUSED);
	assert_int_equal(sys_connect(f, 7, &out[1]), -ECONNREFUSED);
	will_return(mock_connect, 0);
	assert_int_equal(sys_connect(f, 8, &other), 0);
	assert_int_equal(sys_resolve(f, "down.test", 80, out, 4), -ENOENT);
	expect_string(mock_resolve, host, "up.test");
	will_return(mock_resolve, -EAGAIN);
	assert_int_equal(sys_resolve(f, "up.test", 80, out, 4), -EAGAIN);
	assert_int_equal(sys_fault_hits(f, 0), 2);
	sys_fault_free(f);
}

static void test_fault_path_scope_learns_from_open(void **state)
{
	const char *specs[] = {"fs.write[cache/]=ENOSPC",
			       "fs.rename[cache/]=EIO", "fs.fsync[cache/]=EIO"};
	struct sys *f = NULL;
	char err[128];

	(void)state;
	assert_int_equal(
		sys_fault_new(sys_mock(), specs, 3, 0, &f, err, sizeof(err)),
		0);
	expect_string(mock_open, path, "/var/cache/ab/x");
	will_return(mock_open, 9);
	assert_int_equal(sys_open(f, "/var/cache/ab/x", O_WRONLY, 0), 9);
	expect_string(mock_open, path, "/var/log/glassproxy.log");
	will_return(mock_open, 10);
	assert_int_equal(sys_open(f, "/var/log/glassproxy.log", O_WRONLY, 0),
			 10);
	assert_int_equal(sys_write(f, 9, "x", 1), -ENOSPC);
	assert_int_equal(sys_fsync(f, 9), -EIO);
	will_write(SYS_MOCK_ALL);
	assert_int_equal(sys_write(f, 10, "x", 1), 1);
	will_return(mock_fsync, 0);
	assert_int_equal(sys_fsync(f, 10), 0);
	/* rename matches on either path, at a path component */
	assert_int_equal(sys_rename(f, "cache/tmp/1", "cache/ab/1"), -EIO);
	assert_int_equal(sys_rename(f, "/x/y", "/srv/cache/ab/1"), -EIO);
	will_return(mock_rename, 0);
	assert_int_equal(sys_rename(f, "/x/mycache/1", "/x/y"), 0);
	/* fd 9 closed and reused for a file elsewhere: no longer in scope */
	assert_int_equal(sys_file_close(f, 9), 0);
	expect_string(mock_open, path, "/tmp/other");
	will_return(mock_open, 9);
	assert_int_equal(sys_open(f, "/tmp/other", O_WRONLY, 0), 9);
	will_write(SYS_MOCK_ALL);
	assert_int_equal(sys_write(f, 9, "x", 1), 1);
	assert_int_equal(sys_fault_hits(f, 0), 1);
	sys_fault_free(f);
}

static void test_fault_wildcard_counts_every_operation(void **state)
{
	struct sys *f = fault_over(sys_mock(), "net.*[origin]=ECONNRESET@3");
	struct sys_addr a = sys_mock_addr4("10.0.0.1", 80);
	char buf[4];

	(void)state;
	will_return(mock_connect, 0);
	assert_int_equal(sys_connect(f, 6, &a), 0); /* origin call 1 */
	will_send(SYS_MOCK_ALL);
	assert_int_equal(sys_send(f, 6, "x", 1, 0), 1); /* 2 */
	assert_int_equal(sys_recv(f, 6, buf, sizeof(buf), 0), -ECONNRESET);
	will_recv_str("k"); /* fd 7 is no origin: not counted, not hit */
	assert_int_equal(sys_recv(f, 7, buf, sizeof(buf), 0), 1);
	will_return(mock_shutdown, 0);
	assert_int_equal(sys_shutdown(f, 6, SHUT_RDWR), 0); /* 4 */
	sys_fault_free(f);
	/* fs.*=short cuts reads and writes, and leaves the rest alone */
	f = fault_over(sys_mock(), "fs.*=short:2");
	will_write(SYS_MOCK_ALL);
	assert_int_equal(sys_write(f, 3, "abc", 3), 2);
	will_read("ab", 2);
	assert_int_equal(sys_read(f, 3, buf, sizeof(buf)), 2);
	will_return(mock_fsync, 0);
	assert_int_equal(sys_fsync(f, 3), 0);
	sys_fault_free(f);
}

static void test_fault_learn_names_from_the_caller(void **state)
{
	struct sys *f = fault_over(sys_mock(), "net.connect[origin.test]=EIO");
	struct sys_addr a = sys_mock_addr4("127.0.0.1", 8081);

	(void)state;
	will_return(mock_connect, 0);
	assert_int_equal(sys_connect(f, 6, &a), 0); /* not known yet */
	/* net resolved origin.test from its hosts file, not through sys */
	assert_int_equal(sys_fault_learn(f, "origin.test", &a, 1), 0);
	assert_int_equal(sys_connect(f, 7, &a), -EIO);
	sys_fault_free(f);
	/* Any other sys is left alone. */
	assert_int_equal(sys_fault_learn(sys_mock(), "x.test", &a, 1), -EINVAL);
	assert_int_equal(sys_fault_rule_count(sys_mock()), 0);
	assert_int_equal(sys_fault_describe(sys_mock(), NULL, 0), 0);
	sys_fault_free(sys_mock());
}

/* ---- the fault sys: clocks ---- */

static void test_fault_clock_offset_moves_the_wall_clock_only(void **state)
{
	struct sys *mock = sys_mock();
	struct sys *f = fault_over(mock, "clock.offset=+3600s");
	struct timespec real, bent;

	(void)state;
	assert_int_equal(sys_now_wall(mock, &real), 0);
	assert_int_equal(sys_now_wall(f, &bent), 0);
	assert_int_equal(bent.tv_sec - real.tv_sec, 3600);
	assert_int_equal(bent.tv_nsec, real.tv_nsec);
	assert_int_equal(sys_now_mono_ms(f), sys_now_mono_ms(mock));
	sys_fault_free(f);
	f = fault_over(mock, "clock.wall.offset=-1500ms");
	assert_int_equal(sys_now_wall(f, &bent), 0);
	assert_int_equal((bent.tv_sec - real.tv_sec) * 1000 +
				 (bent.tv_nsec - real.tv_nsec) / 1000000,
			 -1500);
	assert_true(bent.tv_nsec >= 0 && bent.tv_nsec < 1000000000);
	sys_fault_free(f);
}

static void test_fault_clock_freeze_stops_both_clocks(void **state)
{
	struct sys *mock = sys_mock();
	struct sys *f = fault_over(mock, "clock.freeze");
	struct timespec w1, w2;
	int64_t m1;

	(void)state;
	m1 = sys_now_mono_ms(f);
	assert_int_equal(sys_now_wall(f, &w1), 0);
	sys_mock_advance_ms(5000);
	assert_int_equal(sys_now_mono_ms(f), m1);
	assert_int_equal(sys_now_wall(f, &w2), 0);
	assert_int_equal(w2.tv_sec, w1.tv_sec);
	sys_fault_free(f);
}

static void test_fault_clock_step_at_the_fifth_reading(void **state)
{
	struct sys *mock = sys_mock();
	struct sys *f = fault_over(mock, "clock.step=+10s@5");
	struct timespec real, bent;

	(void)state;
	for (int i = 1; i <= 7; i++) {
		assert_int_equal(sys_now_wall(mock, &real), 0);
		assert_int_equal(sys_now_wall(f, &bent), 0);
		/* readings 1-4 are true; from the 5th on, 10 s ahead */
		assert_int_equal(bent.tv_sec - real.tv_sec, i < 5 ? 0 : 10);
	}
	assert_int_equal(sys_fault_hits(f, 0), 1);
	sys_fault_free(f);
}

static void test_fault_mono_clock_never_goes_backwards(void **state)
{
	const char *specs[] = {"clock.mono.step=+10s@2", "clock.mono.freeze@4"};
	struct sys *mock = sys_mock(), *f = NULL;
	char err[128];

	(void)state;
	assert_int_equal(sys_fault_new(mock, specs, 2, 0, &f, err, sizeof(err)),
			 0);
	assert_int_equal(sys_now_mono_ms(f), 1000);
	assert_int_equal(sys_now_mono_ms(f), 11000);
	sys_mock_advance_ms(10);
	assert_int_equal(sys_now_mono_ms(f), 11010);
	assert_int_equal(sys_now_mono_ms(f), 11010); /* frozen for one read */
	/* The clock underneath goes back: this one stays put instead. */
	sys_mock_set_clock(0, 1700000000);
	assert_int_equal(sys_now_mono_ms(f), 11010);
	sys_mock_set_clock(2000, 1700000000);
	assert_int_equal(sys_now_mono_ms(f), 12000);
	sys_fault_free(f);
}

/* ---- the fault sys: pass-through, counters ---- */

static void test_fault_passes_through_what_no_rule_names(void **state)
{
	struct sys *mock = sys_mock();
	struct sys *f = fault_over(mock, "net.recv[client]=ECONNRESET@3");
	struct sys *none = NULL;
	struct timespec w;
	char buf[8], err[64];

	(void)state;
	will_send(SYS_MOCK_ALL);
	assert_int_equal(sys_send(f, 4, "abc", 3, 0), 3);
	for (int i = 0; i < 4; i++) {
		will_recv_str("z"); /* fd 4 is no client: never hit */
		assert_int_equal(sys_recv(f, 4, buf, sizeof(buf), 0), 1);
	}
	expect_string(mock_open, path, "f");
	will_return(mock_open, 5);
	assert_int_equal(sys_open(f, "f", O_RDONLY, 0), 5);
	assert_int_equal(sys_now_mono_ms(f), sys_now_mono_ms(mock));
	assert_int_equal(sys_now_wall(f, &w), 0);
	assert_int_equal(sys_fault_hits(f, 0), 0);
	sys_fault_free(f);
	/* No specs at all: a transparent sys. */
	assert_int_equal(
		sys_fault_new(mock, NULL, 0, 3, &none, err, sizeof(err)), 0);
	will_recv_str("q");
	assert_int_equal(sys_recv(none, 4, buf, sizeof(buf), 0), 1);
	assert_int_equal(sys_fault_rule_count(none), 0);
	sys_fault_free(none);
	sys_fault_free(NULL);
}

static void test_fault_describe_lists_rules_and_counters(void **state)
{
	const char *specs[] = {"seed=7", "net.recv=ECONNRESET@2",
			       "fs.write=short"};
	struct sys *f = NULL;
	char buf[256], tiny[10];
	size_t need;

	(void)state;
	assert_int_equal(
		sys_fault_new(sys_mock(), specs, 3, 0, &f, buf, sizeof(buf)),
		0);
	will_recv_str("a");
	assert_int_equal(sys_recv(f, 4, buf, sizeof(buf), 0), 1);
	assert_int_equal(sys_recv(f, 4, buf, sizeof(buf), 0), -ECONNRESET);
	need = sys_fault_describe(f, buf, sizeof(buf));
	assert_string_equal(buf, "seed=7\n"
				 "net.recv=ECONNRESET@2 hits=1 calls=2\n"
				 "fs.write=short hits=0 calls=0\n");
	assert_int_equal(need, strlen(buf));
	assert_int_equal(sys_fault_describe(f, tiny, sizeof(tiny)), need);
	assert_string_equal(tiny, "seed=7\nne");
	assert_int_equal(sys_fault_hits(f, 5), 0); /* no such rule */
	sys_fault_free(f);
}

/* ---- the fault sys from many threads (TSan watches this one) ---- */

struct hammer {
	struct sys *f;
	int failed, backwards;
};

static void *hammer_thread(void *arg)
{
	struct hammer *h = arg;
	struct stat st;
	int64_t last = 0;

	for (int i = 0; i < 2000; i++) {
		int64_t now = sys_now_mono_ms(h->f);
		if (now < last)
			h->backwards++;
		last = now;
		if (sys_stat(h->f, "/", &st) == -EIO)
			h->failed++;
	}
	return NULL;
}

static void test_fault_is_thread_safe(void **state)
{
	const char *specs[] = {"fs.stat=EIO@p0.5", "clock.mono.step=+1ms"};
	struct hammer h[4];
	pthread_t t[4];
	struct sys *f = NULL;
	char err[64];
	int failed = 0;

	(void)state;
	assert_int_equal(
		sys_fault_new(sys_posix(), specs, 2, 5, &f, err, sizeof(err)),
		0);
	for (int i = 0; i < 4; i++) {
		h[i] = (struct hammer){.f = f};
		assert_int_equal(
			pthread_create(&t[i], NULL, hammer_thread, &h[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		failed += h[i].failed;
		assert_int_equal(h[i].backwards, 0);
	}
	assert_int_equal(sys_fault_hits(f, 0), (uint64_t)failed);
	assert_int_equal(sys_fault_hits(f, 1), 8000);
	assert_in_range(failed, 3000, 5000);
	sys_fault_free(f);
}

/* ---- torture: sys_read_file with each call and allocation failing ---- */

#include "torture.h"

struct read_file_torture {
	char dir[64], path[96];
	size_t len;
	bool whole, handed_out;
};

static struct sys *read_file_setup(void *arg)
{
	struct read_file_torture *rt = arg;
	char block[10000];
	int fd;

	memset(block, 'x', sizeof(block));
	block[sizeof(block) - 1] = '\n';
	make_temp_dir(rt->dir, sizeof(rt->dir));
	path_in(rt->path, sizeof(rt->path), rt->dir, "big");
	fd = sys_open(sys_posix(), rt->path, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(sys_write_all(sys_posix(), fd, block, sizeof(block)),
			 0);
	assert_int_equal(sys_file_close(sys_posix(), fd), 0);
	rt->len = 0;
	rt->whole = rt->handed_out = false;
	return sys_posix();
}

/* Frees what it read, so torture_run() can count allocations after it. */
static int read_file_run(struct sys *sys, void *arg)
{
	struct read_file_torture *rt = arg;
	char *text = NULL;
	int rc = sys_read_file(sys, rt->path, 1 << 20, &text, &rt->len);

	rt->handed_out = text != NULL;
	if (rc == 0)
		rt->whole = rt->len == 10000 && text[9999] == '\n' &&
			    text[10000] == '\0';
	free(text);
	return rc;
}

static bool read_file_check(void *arg, int rc, const char *failed)
{
	struct read_file_torture *rt = arg;

	/* All of it, or an error and nothing handed out. */
	assert_true(rc == 0 ? rt->whole : !rt->handed_out);
	return failed && !strcmp(failed, "file_close");
}

static void read_file_teardown(void *arg)
{
	struct read_file_torture *rt = arg;

	assert_int_equal(unlink(rt->path), 0);
	assert_int_equal(rmdir(rt->dir), 0);
}

static void test_torture_read_file(void **state)
{
	struct read_file_torture rt;
	struct torture_op op = {
		.name = "sys_read_file",
		.set = TORTURE_FS | TORTURE_FS_CLOSE | TORTURE_ALLOC,
		.err = -EIO,
		.setup = read_file_setup,
		.run = read_file_run,
		.check = read_file_check,
		.teardown = read_file_teardown,
	};

	(void)state;
	/* open, malloc, read (4096), realloc, read, realloc, read (the last
	 * 1808), read (0), close */
	assert_int_equal(torture_run(&op, &rt), 9);
	op.persistent = true;
	assert_int_equal(torture_run(&op, &rt), 9);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_wrapper_reports_enosys_for_missing_member),
		cmocka_unit_test(
			test_mock_recv_scripts_bytes_then_error_then_eof),
		cmocka_unit_test(test_send_all_loops_over_short_sends),
		cmocka_unit_test(test_send_all_passes_errors_up),
		cmocka_unit_test(test_write_all_rejects_zero_progress),
		cmocka_unit_test(test_read_file_reads_in_pieces_and_closes),
		cmocka_unit_test(test_read_file_refuses_too_large),
		cmocka_unit_test(test_read_file_open_failure),
		cmocka_unit_test(test_read_file_error_mid_read_closes),
		cmocka_unit_test(test_mock_clock_advances_on_poll_timeout),
		cmocka_unit_test(test_posix_clock_is_monotonic),
		cmocka_unit_test(test_posix_resolve_ip_literals),
		cmocka_unit_test(test_posix_pread_ftruncate),
		cmocka_unit_test(test_posix_rmdir),
		cmocka_unit_test(test_posix_list_dir),
		cmocka_unit_test(test_posix_sendfile_and_pipe_io),
		cmocka_unit_test(test_mock_new_members),
		cmocka_unit_test(
			test_fault_grammar_accepts_every_documented_example),
		cmocka_unit_test(test_fault_grammar_points_at_each_mistake),
		cmocka_unit_test(
			test_fault_refuses_the_whole_list_for_one_bad_spec),
		cmocka_unit_test(test_fault_split_env_text),
		cmocka_unit_test(test_fault_nth_call_fails_once),
		cmocka_unit_test(test_fault_nth_and_later_calls_fail),
		cmocka_unit_test(
			test_fault_probability_is_deterministic_per_seed),
		cmocka_unit_test(test_fault_probability_zero_and_one),
		cmocka_unit_test(test_fault_short_sends_and_writes),
		cmocka_unit_test(test_fault_short_recv_caps_the_length),
		cmocka_unit_test(test_fault_eof_at_second_recv),
		cmocka_unit_test(
			test_fault_a_look_that_would_block_is_not_counted),
		cmocka_unit_test(test_fault_delay_waits_on_the_inner_clock),
		cmocka_unit_test(test_fault_delay_then_error_and_resolve_codes),
		cmocka_unit_test(test_fault_client_and_origin_scopes),
		cmocka_unit_test(test_fault_accept_without_peer_still_learns),
		cmocka_unit_test(test_fault_peer_scope),
		cmocka_unit_test(test_fault_host_scope_learns_from_resolve),
		cmocka_unit_test(test_fault_path_scope_learns_from_open),
		cmocka_unit_test(test_fault_wildcard_counts_every_operation),
		cmocka_unit_test(test_fault_learn_names_from_the_caller),
		cmocka_unit_test(
			test_fault_clock_offset_moves_the_wall_clock_only),
		cmocka_unit_test(test_fault_clock_freeze_stops_both_clocks),
		cmocka_unit_test(test_fault_clock_step_at_the_fifth_reading),
		cmocka_unit_test(test_fault_mono_clock_never_goes_backwards),
		cmocka_unit_test(test_fault_passes_through_what_no_rule_names),
		cmocka_unit_test(test_fault_describe_lists_rules_and_counters),
		cmocka_unit_test(test_fault_is_thread_safe),
		cmocka_unit_test(test_torture_read_file),
	};
	return cmocka_run_group_tests_name("sys", tests, NULL, NULL);
}
