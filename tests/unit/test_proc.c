/* Tests for tests/lib/proc: running programs, with input, environment, limits and timeouts. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "tests/lib/proc.h"

#ifndef Test
/* cppcheck does not read criterion.h: let it analyse each test as a plain function. */
#define TestSuite(...)         struct test_suite_unused
#define Test(suite, name, ...) void test_##suite##_##name(void)
#endif

TestSuite(proc, .timeout = 30);

Test(proc, status_and_both_streams)
{
	struct proc_result res;

	cr_assert_eq(
	        proc_runl(&res, NULL, "sh", "-c", "echo out; echo err >&2; exit 3", (char *)NULL),
	        0);
	cr_assert(res.exited);
	cr_assert_eq(res.status, 3);
	cr_assert_eq(res.signal, 0);
	cr_assert_not(res.timed_out);
	cr_assert_str_eq(res.out, "out\n");
	cr_assert_eq(res.outlen, 4);
	cr_assert_str_eq(res.err, "err\n");
	proc_result_free(&res);
	proc_result_free(&res); /* twice is harmless */
}

Test(proc, input_environment_and_directory)
{
	static const char *const env[] = {"PROC_TEST_SET=yes", "HOME", NULL};
	const char *const argv[] = {
	        "sh", "-c", "cat; echo \"$PROC_TEST_SET ${HOME-unset} $(pwd)\"", NULL};
	struct proc_opts opts;
	struct proc_result res;

	memset(&opts, 0, sizeof(opts));
	opts.input = "typed\n";
	opts.inputlen = 6;
	opts.env = env;
	opts.cwd = "/";
	cr_assert_eq(proc_run(&res, argv, &opts), 0);
	cr_assert_eq(res.status, 0);
	cr_assert_str_eq(res.out, "typed\nyes unset /\n");
	proc_result_free(&res);
	/* Without input, standard input is /dev/null. */
	cr_assert_eq(proc_runl(&res, NULL, "cat", (char *)NULL), 0);
	cr_assert_eq(res.status, 0);
	cr_assert_str_eq(res.out, "");
	proc_result_free(&res);
}

Test(proc, capture_is_bounded)
{
	const char *const argv[] = {"sh", "-c", "yes | head -c 100000", NULL};
	struct proc_opts opts;
	struct proc_result res;

	memset(&opts, 0, sizeof(opts));
	opts.capture_max = 1000;
	cr_assert_eq(proc_run(&res, argv, &opts), 0);
	cr_assert_eq(res.status, 0);
	cr_assert_eq(res.outlen, 1000);
	cr_assert(res.out_truncated);
	cr_assert_not(res.err_truncated);
	proc_result_free(&res);
}

Test(proc, timeout_kills_the_group)
{
	const char *const argv[] = {"sh", "-c", "sleep 20 & sleep 20; echo never", NULL};
	struct proc_opts opts;
	struct proc_result res;

	memset(&opts, 0, sizeof(opts));
	opts.timeout_ms = 200;
	cr_assert_eq(proc_run(&res, argv, &opts), 0);
	cr_assert(res.timed_out);
	cr_assert_not(res.exited);
	cr_assert_eq(res.status, -1);
	cr_assert_eq(res.signal, SIGKILL);
	cr_assert_str_eq(res.out, "");
	proc_result_free(&res);
}

Test(proc, exec_failure_is_reported)
{
	const char *const argv[] = {"/nonexistent/program", NULL};
	struct proc_result res;

	errno = 0;
	cr_assert_eq(proc_run(&res, argv, NULL), -1);
	cr_assert_eq(errno, ENOENT);
	cr_assert_null(res.out);
	cr_assert_eq(proc_runl(&res, NULL, "no-such-program-in-path", (char *)NULL), -1);
	cr_assert_eq(errno, ENOENT);
}

Test(proc, background_program)
{
	const char *const argv[] = {"sh", "-c", "echo ready >&2; exec sleep 20", NULL};
	struct proc_result res;
	struct proc *p = NULL;

	cr_assert_eq(proc_start(&p, argv, NULL), 0);
	cr_assert_gt(proc_pid(p), 0);
	cr_assert_eq(proc_wait_output(p, "ready", 0, 5000), 0);
	cr_assert_eq(proc_wait_output(p, "never printed", 1, 100), -1);
	cr_assert_eq(errno, ETIMEDOUT);
	cr_assert_eq(proc_kill(p, SIGTERM), 0);
	cr_assert_eq(proc_wait(p, &res, 5000), 0);
	cr_assert_not(res.timed_out);
	cr_assert_eq(res.signal, SIGTERM);
	cr_assert_str_eq(res.err, "ready\n");
	proc_result_free(&res);

	/* Waiting for output from a program that has already exited fails with ECHILD. */
	cr_assert_eq(proc_start(&p, (const char *const[]){"true", NULL}, NULL), 0);
	cr_assert_eq(proc_wait_output(p, "anything", 1, 5000), -1);
	cr_assert_eq(errno, ECHILD);
	cr_assert_eq(proc_wait(p, &res, 0), 0);
	cr_assert_eq(res.status, 0);
	proc_result_free(&res);
}
