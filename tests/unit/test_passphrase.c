/* Tests for keys/passphrase: files, and the terminal through a pseudo-terminal. */
#include "config.h"

#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "crypto/util.h"
#include "keys/passphrase.h"
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
	cr_assert_eq(sotto_crypto_init(), 0);
	tdir_make(dir, sizeof(dir), "test_passphrase");
}

static void
teardown(void)
{
	tdir_remove(dir);
}

TestSuite(passphrase, .init = setup, .fini = teardown);

/* Write len bytes to dir/name and return its path (a static buffer). */
static const char *
put(const char *name, const char *data, size_t len)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	cr_assert_not_null(f = fopen(path, "w"));
	cr_assert_eq(fwrite(data, 1, len, f), len);
	cr_assert_eq(fclose(f), 0);
	return path;
}

/* Read the passphrase file holding data and compare with want (NULL: expect err). */
static void
check_file(const char *data, size_t len, const char *want, int err)
{
	static char sentinel[] = "sentinel";
	char *pass = sentinel;
	int r = passphrase_read_file(&pass, put("p", data, len));

	cr_assert_eq(r, err, "file %.*s: got %d", (int)len, data, r);
	if (err != 0) {
		cr_assert_null(pass);
		return;
	}
	cr_assert_str_eq(pass, want);
	passphrase_free(pass);
}

Test(passphrase, file_first_line_without_line_ending)
{
	check_file("hunter2\n", 8, "hunter2", 0);
	check_file("hunter2\r\n", 9, "hunter2", 0);
	check_file("hunter2", 7, "hunter2", 0);
	check_file("first\nsecond\n", 13, "first", 0);
	check_file(" spaced out \n", 13, " spaced out ", 0);
	check_file("", 0, "", 0);
	check_file("\n", 1, "", 0);
	check_file("a\0b\n", 4, NULL, SOTTO_ERR_FORMAT);
}

Test(passphrase, file_length_limit)
{
	char buf[PASSPHRASE_MAX + 3], *pass = NULL;

	/* Exactly PASSPHRASE_MAX bytes, with either line ending, is the longest allowed. */
	memset(buf, 'x', sizeof(buf));
	buf[PASSPHRASE_MAX] = '\n';
	cr_assert_eq(passphrase_read_file(&pass, put("p", buf, PASSPHRASE_MAX + 1)), 0);
	cr_assert_eq(strlen(pass), PASSPHRASE_MAX);
	passphrase_free(pass);
	buf[PASSPHRASE_MAX] = '\r';
	buf[PASSPHRASE_MAX + 1] = '\n';
	cr_assert_eq(passphrase_read_file(&pass, put("p", buf, PASSPHRASE_MAX + 2)), 0);
	cr_assert_eq(strlen(pass), PASSPHRASE_MAX);
	passphrase_free(pass);
	buf[PASSPHRASE_MAX] = 'x';
	check_file(buf, PASSPHRASE_MAX + 2, NULL, SOTTO_ERR_RANGE);
	check_file(buf, PASSPHRASE_MAX + 1, NULL, SOTTO_ERR_RANGE);
	check_file(buf, sizeof(buf), NULL, SOTTO_ERR_RANGE);
}

Test(passphrase, file_missing)
{
	char *pass = NULL;
	char path[256];

	snprintf(path, sizeof(path), "%s/none", dir);
	cr_assert_eq(passphrase_read_file(&pass, path), SOTTO_ERR_NOTFOUND);
	cr_assert_eq(passphrase_read_file(&pass, dir), SOTTO_ERR_IO);
	cr_assert_eq(errno, EISDIR);
}

Test(passphrase, dup_and_limits)
{
	char *pass = NULL, big[PASSPHRASE_MAX + 2];

	cr_assert_eq(passphrase_dup(&pass, "abc"), 0);
	cr_assert_str_eq(pass, "abc");
	passphrase_free(pass);
	passphrase_free(NULL);
	memset(big, 'y', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	cr_assert_eq(passphrase_dup(&pass, big), SOTTO_ERR_RANGE);
	cr_assert_null(pass);
}

Test(passphrase, no_prompt_without_a_terminal)
{
	int fd = open("/dev/null", O_RDONLY);

	cr_assert_geq(fd, 0);
	cr_assert_eq(dup2(fd, STDIN_FILENO), STDIN_FILENO);
	close(fd);
	cr_assert_eq(passphrase_can_ask(), 0);
}

/*
 * Run fn in a child whose controlling terminal is a new pseudo-terminal; the
 * child writes what it read to a pipe.  The parent plays the person: it waits
 * for each prompt and types the next answer.  Returns everything the terminal
 * showed, the child's pipe output in *got, and its wait status in *wstatus.
 */
static char *
on_terminal(int (*fn)(char **), const char *const *prompts, const char *const *answers,
        int send_signal, char *got, size_t gotcap, int *wstatus, struct termios *during,
        struct termios *after)
{
	static char screen[4096];
	size_t have = 0, next = 0, n;
	struct pollfd pfd;
	int master = -1, pipefd[2];
	char *pass = NULL;
	ssize_t r;
	pid_t pid;

	cr_assert_eq(pipe(pipefd), 0);
	pid = forkpty(&master, NULL, NULL, NULL);
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		int rc;

		close(pipefd[0]);
		rc = fn(&pass);
		if (rc == 0) {
			/* Report the passphrase and whether echo came back on. */
			struct termios t;

			tcgetattr(STDIN_FILENO, &t);
			dprintf(pipefd[1], "%s|%s", pass, (t.c_lflag & ECHO) ? "echo" : "noecho");
			passphrase_free(pass);
		} else
			dprintf(pipefd[1], "error %d", rc);
		_exit(rc == 0 ? 0 : 1);
	}
	close(pipefd[1]);
	memset(screen, 0, sizeof(screen));
	for (;;) {
		pfd.fd = master;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 5000) <= 0)
			break;
		r = read(master, screen + have, sizeof(screen) - 1 - have);
		if (r <= 0)
			break;
		have += (size_t)r;
		while (prompts[next] != NULL && strstr(screen, prompts[next]) != NULL) {
			/* Each prompt is answered once; blank it so a repeat is seen anew. */
			memset(strstr(screen, prompts[next]), '#', strlen(prompts[next]));
			if (send_signal && next == 0) {
				usleep(50000);
				if (during != NULL)
					cr_assert_eq(tcgetattr(master, during), 0);
				kill(pid, SIGTERM);
			} else {
				usleep(20000);
				cr_assert_eq(write(master, answers[next], strlen(answers[next])),
				        (ssize_t)strlen(answers[next]));
			}
			next++;
		}
	}
	cr_assert_eq(waitpid(pid, wstatus, 0), pid);
	if (send_signal && after != NULL)
		cr_assert_eq(tcgetattr(master, after), 0);
	n = 0;
	while (n < gotcap - 1 && (r = read(pipefd[0], got + n, gotcap - 1 - n)) > 0)
		n += (size_t)r;
	got[n] = '\0';
	close(pipefd[0]);
	close(master);
	return screen;
}

static int
ask_once(char **pass)
{
	return passphrase_ask(pass, "Secret: ");
}

static int
ask_twice(char **pass)
{
	return passphrase_ask_new(pass, "New: ", "Again: ");
}

Test(passphrase, terminal_reads_with_echo_off)
{
	const char *prompts[] = {"Secret: ", NULL}, *answers[] = {"s3cret word\n", NULL};
	char got[256];
	const char *screen;
	int ws;

	screen = on_terminal(ask_once, prompts, answers, 0, got, sizeof(got), &ws, NULL, NULL);
	cr_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "child: %s", got);
	cr_assert_str_eq(got, "s3cret word|echo");
	cr_assert_null(strstr(screen, "s3cret"), "the passphrase was echoed: %s", screen);
}

Test(passphrase, terminal_asks_twice_and_compares)
{
	const char *prompts[] = {"New: ", "Again: ", NULL};
	const char *same[] = {"pw one\n", "pw one\n", NULL},
	           *differ[] = {"pw one\n", "pw two\n", NULL};
	char got[256];
	int ws;

	on_terminal(ask_twice, prompts, same, 0, got, sizeof(got), &ws, NULL, NULL);
	cr_assert_str_eq(got, "pw one|echo");
	on_terminal(ask_twice, prompts, differ, 0, got, sizeof(got), &ws, NULL, NULL);
	cr_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 1);
	cr_assert_str_eq(got, "error -4"); /* SOTTO_ERR_VERIFY */
}

Test(passphrase, terminal_empty_and_end_of_file)
{
	const char *prompts[] = {"Secret: ", NULL}, *empty[] = {"\n", NULL},
	           *eof[] = {"\004", NULL};
	char got[256];
	int ws;

	on_terminal(ask_once, prompts, empty, 0, got, sizeof(got), &ws, NULL, NULL);
	cr_assert_str_eq(got, "|echo");
	on_terminal(ask_once, prompts, eof, 0, got, sizeof(got), &ws, NULL, NULL);
	cr_assert_str_eq(got, "error -17"); /* SOTTO_ERR_CLOSED */
}

Test(passphrase, terminal_restored_when_killed)
{
	const char *prompts[] = {"Secret: ", NULL}, *answers[] = {"unused\n", NULL};
	struct termios during, after;
	char got[256];
	int ws;

	memset(&during, 0, sizeof(during));
	memset(&after, 0, sizeof(after));
	on_terminal(ask_once, prompts, answers, 1, got, sizeof(got), &ws, &during, &after);
	cr_assert_not(during.c_lflag & ECHO, "echo was on while the passphrase was asked");
	/* The signal still ends the program, but only after echo is back on. */
	cr_assert(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGTERM, "status %#x, %s", ws, got);
	cr_assert(after.c_lflag & ECHO, "echo left off after SIGTERM");
}
