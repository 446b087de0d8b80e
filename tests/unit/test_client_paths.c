/* Unit tests for src/client-paths.c: -H, SOTTO_HOME and XDG resolution, and the profile lock. */
#include "config.h"

#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "src/client-paths.h"
#include "tests/lib/tdir.h"

#ifndef Test
/* cppcheck does not read criterion.h: let it analyse each test as a plain function. */
#define TestSuite(...)         struct test_suite_unused
#define Test(suite, name, ...) void test_##suite##_##name(void)
#endif

static char dir[64];

static void
setup(void)
{
	tdir_make(dir, sizeof(dir), "test_client_paths");
	unsetenv(CLIENT_HOME_ENV);
	unsetenv("XDG_CONFIG_HOME");
	unsetenv("XDG_DATA_HOME");
	setenv("HOME", dir, 1);
}

static void
teardown(void)
{
	tdir_remove(dir);
}

TestSuite(client_paths, .init = setup, .fini = teardown);

/* dir/rest in a static buffer (two at a time). */
static const char *
at(const char *rest)
{
	return tdir_at(dir, rest);
}

static struct client_paths *
resolve(const char *home, const char *profile)
{
	struct client_paths *p = NULL;
	char err[256];

	cr_assert_eq(client_paths_resolve(&p, home, profile, err, sizeof(err)), 0, "%s", err);
	cr_assert_not_null(p);
	cr_assert_eq(p->lock_fd, -1);
	return p;
}

Test(client_paths, xdg_variables)
{
	struct client_paths *p;

	setenv("XDG_CONFIG_HOME", at("cfg"), 1);
	setenv("XDG_DATA_HOME", at("data"), 1);
	p = resolve(NULL, NULL);
	cr_assert_str_eq(p->profile, "default");
	cr_assert_eq(p->home, 0);
	cr_assert_str_eq(p->config_dir, at("cfg/sotto"));
	cr_assert_str_eq(p->data_dir, at("data/sotto/default"));
	cr_assert_str_eq(p->conf, at("cfg/sotto/sotto.conf"));
	cr_assert_str_eq(p->known_servers, at("cfg/sotto/known_servers"));
	cr_assert_str_eq(p->known_peers, at("cfg/sotto/known_peers"));
	/* The same path sotto-keygen uses for its default identity. */
	cr_assert_str_eq(p->identity, at("data/sotto/default/identity"));
	cr_assert_str_eq(p->identity_pub, at("data/sotto/default/identity.pub"));
	cr_assert_str_eq(p->db, at("data/sotto/default/client.db"));
	cr_assert_str_eq(p->lock, at("data/sotto/default/lock"));
	client_paths_free(p);

	p = resolve(NULL, "work");
	cr_assert_str_eq(p->config_dir, at("cfg/sotto"));
	cr_assert_str_eq(p->data_dir, at("data/sotto/work"));
	cr_assert_str_eq(p->db, at("data/sotto/work/client.db"));
	client_paths_free(p);
}

Test(client_paths, home_fallback_and_relative_xdg_ignored)
{
	struct client_paths *p;

	p = resolve(NULL, NULL);
	cr_assert_str_eq(p->config_dir, at(".config/sotto"));
	cr_assert_str_eq(p->data_dir, at(".local/share/sotto/default"));
	cr_assert_str_eq(p->identity, at(".local/share/sotto/default/identity"));
	client_paths_free(p);

	setenv("XDG_CONFIG_HOME", "relative/cfg", 1);
	setenv("XDG_DATA_HOME", "", 1);
	p = resolve(NULL, NULL);
	cr_assert_str_eq(p->config_dir, at(".config/sotto"));
	cr_assert_str_eq(p->data_dir, at(".local/share/sotto/default"));
	client_paths_free(p);
}

Test(client_paths, home_flag_puts_everything_in_one_directory)
{
	struct client_paths *p;

	setenv("XDG_CONFIG_HOME", at("cfg"), 1);
	setenv("XDG_DATA_HOME", at("data"), 1);
	p = resolve(at("h"), NULL);
	cr_assert_eq(p->home, 1);
	cr_assert_str_eq(p->config_dir, at("h"));
	cr_assert_str_eq(p->data_dir, at("h"));
	cr_assert_str_eq(p->conf, at("h/sotto.conf"));
	cr_assert_str_eq(p->known_servers, at("h/known_servers"));
	cr_assert_str_eq(p->known_peers, at("h/known_peers"));
	cr_assert_str_eq(p->identity, at("h/identity"));
	cr_assert_str_eq(p->db, at("h/client.db"));
	cr_assert_str_eq(p->lock, at("h/lock"));
	client_paths_free(p);

	/* Another profile keeps its data in a subdirectory, but still under DIR. */
	p = resolve(at("h"), "alt");
	cr_assert_str_eq(p->config_dir, at("h"));
	cr_assert_str_eq(p->data_dir, at("h/alt"));
	cr_assert_str_eq(p->known_peers, at("h/known_peers"));
	cr_assert_str_eq(p->db, at("h/alt/client.db"));
	client_paths_free(p);
}

Test(client_paths, sotto_home_environment)
{
	struct client_paths *p;

	setenv(CLIENT_HOME_ENV, at("env"), 1);
	p = resolve(NULL, NULL);
	cr_assert_eq(p->home, 1);
	cr_assert_str_eq(p->data_dir, at("env"));
	cr_assert_str_eq(p->known_servers, at("env/known_servers"));
	client_paths_free(p);

	/* -H wins over the environment. */
	p = resolve(at("flag"), NULL);
	cr_assert_str_eq(p->data_dir, at("flag"));
	client_paths_free(p);

	/* An empty SOTTO_HOME means unset. */
	setenv(CLIENT_HOME_ENV, "", 1);
	p = resolve(NULL, NULL);
	cr_assert_eq(p->home, 0);
	cr_assert_str_eq(p->data_dir, at(".local/share/sotto/default"));
	client_paths_free(p);
}

Test(client_paths, bad_arguments)
{
	struct client_paths *p = (struct client_paths *)1;
	char err[256];

	cr_assert_eq(client_paths_resolve(&p, NULL, "../x", err, sizeof(err)), SOTTO_ERR_INVALID);
	cr_assert_null(p);
	cr_assert(strstr(err, "profile") != NULL, "%s", err);
	cr_assert_eq(client_paths_resolve(&p, "", NULL, err, sizeof(err)), SOTTO_ERR_INVALID);
	cr_assert_eq(client_paths_resolve(&p, NULL, "", NULL, 0), SOTTO_ERR_INVALID);

	cr_assert(client_profile_valid("default"));
	cr_assert(client_profile_valid("Work-2.old_x"));
	cr_assert(client_profile_valid("abcdefghijklmnopqrstuvwxyz012345"));
	cr_assert_not(client_profile_valid("abcdefghijklmnopqrstuvwxyz0123456"));
	cr_assert_not(client_profile_valid(".hidden"));
	cr_assert_not(client_profile_valid("-x"));
	cr_assert_not(client_profile_valid("a/b"));
	cr_assert_not(client_profile_valid("a b"));
	cr_assert_not(client_profile_valid(NULL));
}

Test(client_paths, mkdirs_private)
{
	struct client_paths *p;
	struct stat sb;
	char err[256];

	setenv("XDG_CONFIG_HOME", at("x/cfg"), 1);
	setenv("XDG_DATA_HOME", at("x/data"), 1);
	umask(022);
	p = resolve(NULL, NULL);
	cr_assert_eq(client_paths_mkdirs(p, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(stat(p->config_dir, &sb), 0);
	cr_assert(S_ISDIR(sb.st_mode));
	cr_assert_eq(sb.st_mode & 0777, 0700);
	cr_assert_eq(stat(p->data_dir, &sb), 0);
	cr_assert_eq(sb.st_mode & 0777, 0700);
	cr_assert_eq(stat(at("x/data/sotto"), &sb), 0);
	cr_assert_eq(sb.st_mode & 0777, 0700);
	/* Idempotent. */
	cr_assert_eq(client_paths_mkdirs(p, err, sizeof(err)), 0, "%s", err);
	client_paths_free(p);

	/* A file where a directory should be is reported. */
	cr_assert_eq(mkdir(at("y"), 0700), 0);
	cr_assert_eq(close(creat(at("y/file"), 0600)), 0);
	p = resolve(at("y/file/sub"), NULL);
	cr_assert_eq(client_paths_mkdirs(p, err, sizeof(err)), SOTTO_ERR_IO);
	cr_assert(strstr(err, "cannot create") != NULL, "%s", err);
	client_paths_free(p);
}

/* The lock file's contents. */
static long
lock_pid(const char *path)
{
	char buf[32] = "";
	FILE *f = fopen(path, "r");
	long pid = 0;

	cr_assert_not_null(f);
	if (fgets(buf, sizeof(buf), f) != NULL)
		pid = strtol(buf, NULL, 10);
	fclose(f);
	return pid;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

Test(client_paths, lock_creates_directory_and_records_pid)
{
	struct client_paths *p, *q;
	struct stat sb;
	char err[256];

	p = resolve(at("h"), NULL);
	cr_assert_eq(client_paths_lock(p, err, sizeof(err)), 0, "%s", err);
	cr_assert_neq(p->lock_fd, -1);
	cr_assert_eq(stat(p->lock, &sb), 0);
	cr_assert_eq(sb.st_mode & 0777, 0600);
	cr_assert_eq(lock_pid(p->lock), (long)getpid());
	/* Taking it again in the same struct is a no-op. */
	cr_assert_eq(client_paths_lock(p, err, sizeof(err)), 0, "%s", err);

	/* flock(2) locks belong to open files, so a second open conflicts even here. */
	q = resolve(at("h"), NULL);
	cr_assert_eq(client_paths_lock(q, err, sizeof(err)), SOTTO_ERR_AGAIN);
	cr_assert(strstr(err, "another sotto is using") != NULL, "%s", err);

	client_paths_unlock(p);
	cr_assert_eq(p->lock_fd, -1);
	cr_assert_eq(client_paths_lock(q, err, sizeof(err)), 0, "%s", err);
	client_paths_free(q);
	client_paths_free(p);
}

Test(client_paths, second_process_fails_at_once_with_pid)
{
	struct client_paths *p;
	char err[256], msg[512] = "", want[128];
	int fds[2], status;
	double t0;
	ssize_t n;
	pid_t pid;

	setenv("XDG_DATA_HOME", at("data"), 1);
	setenv("XDG_CONFIG_HOME", at("cfg"), 1);
	p = resolve(NULL, NULL);
	cr_assert_eq(client_paths_lock(p, err, sizeof(err)), 0, "%s", err);

	cr_assert_eq(pipe(fds), 0);
	t0 = now_s();
	pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		struct client_paths *c = NULL;
		char cerr[256] = "";
		int r;

		close(fds[0]);
		/* The child must not share the parent's lock: drop our copy of it. */
		close(p->lock_fd);
		if (client_paths_resolve(&c, NULL, NULL, cerr, sizeof(cerr)) != 0)
			_exit(10);
		r = client_paths_lock(c, cerr, sizeof(cerr));
		if (write(fds[1], cerr, strlen(cerr)) < 0)
			_exit(11);
		_exit(r == SOTTO_ERR_AGAIN ? 0 : 12);
	}
	close(fds[1]);
	n = read(fds[0], msg, sizeof(msg) - 1);
	close(fds[0]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status));
	cr_assert_eq(WEXITSTATUS(status), 0, "child status %d: %s", WEXITSTATUS(status), msg);
	cr_assert(n > 0);
	msg[n] = '\0';
	snprintf(want, sizeof(want),
	        "another sotto is using profile default (pid %ld); close it first", (long)getpid());
	cr_assert_str_eq(msg, want);
	/* Never hangs: a refusal comes at once. */
	cr_assert_lt(now_s() - t0, 2.0);
	client_paths_free(p);
}

Test(client_paths, lock_released_when_holder_exits)
{
	struct client_paths *p;
	char err[256], want[64], c = 0;
	int ready[2], hold[2], status;
	pid_t pid;

	cr_assert_eq(pipe(ready), 0);
	cr_assert_eq(pipe(hold), 0);
	pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		struct client_paths *h = NULL;
		char ok;

		close(ready[0]);
		close(hold[1]);
		if (client_paths_resolve(&h, dir, NULL, NULL, 0) != 0 ||
		        client_paths_lock(h, NULL, 0) != 0)
			_exit(1);
		ok = 'L';
		if (write(ready[1], &ok, 1) != 1)
			_exit(2);
		/* Hold the lock until the parent says otherwise (or kills us). */
		if (read(hold[0], &ok, 1) < 0)
			_exit(3);
		_exit(0);
	}
	close(ready[1]);
	close(hold[0]);
	cr_assert_eq(read(ready[0], &c, 1), 1);
	cr_assert_eq(c, 'L');

	p = resolve(dir, NULL);
	cr_assert_eq(client_paths_lock(p, err, sizeof(err)), SOTTO_ERR_AGAIN);
	snprintf(want, sizeof(want), "(pid %ld)", (long)pid);
	cr_assert(strstr(err, want) != NULL, "%s", err);

	/* However the holder ends, even by SIGKILL, the kernel drops the lock. */
	cr_assert_eq(kill(pid, SIGKILL), 0);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert_eq(client_paths_lock(p, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(lock_pid(p->lock), (long)getpid());
	close(ready[0]);
	close(hold[1]);
	client_paths_free(p);
}
