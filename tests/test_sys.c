/*
 * Unit tests of the sys layer: the wrappers route to the table underneath,
 * the mock scripts the OS the way sys_mock.h promises, and the conveniences
 * (send_all, write_all, read_file) handle short transfers and errors.
 */
#include "sys_mock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

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
	};
	return cmocka_run_group_tests_name("sys", tests, NULL, NULL);
}
