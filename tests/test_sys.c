/*
 * Unit tests of the sys layer: the wrappers route to the table underneath,
 * the mock scripts the OS the way sys_mock.h promises, and the conveniences
 * (send_all, write_all, read_file) handle short transfers and errors.
 */
#include "sys_mock.h"

#include <errno.h>
#include <fcntl.h>
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
	};
	return cmocka_run_group_tests_name("sys", tests, NULL, NULL);
}
