/*
 * sotto's interactive mode on a real terminal: each test runs sotto in a
 * tmux pane of its own (a tmux server on a private socket, killed at the
 * end), types with send-keys and reads the screen with capture-pane, polling
 * up to a deadline.  The peers are real one-shot sotto processes and the
 * server a real sottod.  After sotto exits, the pane's shell records its exit
 * status and the terminal settings, which must be those it started with.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include <criterion/criterion.h>

#include "crypto/util.h"
#include "tests/lib/tcheck.h"

#ifndef Test
#define Test(s, n) void s##_##n(void)
#define TestSuite(...)
#endif

#define WAIT_MS 15000 /* deadline for anything to show on the screen */

static struct testsrv srv;

/* The tmux server of the running test. */
static struct {
	char sock[64];
	char dir[300]; /* where the pane's shell writes status, pid and stty settings */
	char screen[256 * 1024];
	int up;
} tm;

static void
setup(void)
{
	cr_assert_eq(sotto_crypto_init(), 0);
}

static void
tm_tmux(struct proc_result *res, const char *a1, const char *a2, const char *a3, const char *a4,
        const char *a5)
{
	const char *argv[] = {"tmux", "-L", tm.sock, a1, a2, a3, a4, a5, NULL};

	cr_assert_eq(proc_run(res, argv, NULL), 0, "cannot run tmux: %s", strerror(errno));
}

static void
teardown(void)
{
	struct proc_result res;

	char path[512];

	if (tm.up) {
		/* tmux leaves its socket behind: note where it is, then remove it. */
		tm_tmux(&res, "display-message", "-p", "#{socket_path}", NULL, NULL);
		snprintf(path, sizeof(path), "%.*s", (int)strcspn(res.out, "\n"), res.out);
		proc_result_free(&res);
		tm_tmux(&res, "kill-server", NULL, NULL, NULL, NULL);
		proc_result_free(&res);
		if (path[0] == '/')
			unlink(path);
		tm.up = 0;
	}
	testsrv_cleanup(&srv);
}

TestSuite(interactive, .init = setup, .fini = teardown, .timeout = 120);

/* Skip the test (with a reason) when there is no tmux to drive the terminal. */
static void
need_tmux(void)
{
	struct proc_result res;
	int ok;

	if (proc_runl(&res, NULL, "tmux", "-V", (char *)NULL) != 0)
		cr_skip("tmux is not installed (scripts/install-deps.sh installs it)");
	ok = res.exited && res.status == 0;
	proc_result_free(&res);
	if (!ok)
		cr_skip("tmux -V failed: no tmux to drive the terminal");
}

static void
start_server(const char *const *flags)
{
	need_tmux();
	cr_assert_eq(testsrv_start(&srv, flags), 0, "sottod did not start");
}

static void
user(struct tclient *u, const char *name)
{
	tcheck_client(&srv, u, name);
}

/* Start the server and register alice, and bob and carol where given (else NULL). */
static void
start_users(struct tclient *alice, struct tclient *bob, struct tclient *carol)
{
	start_server(NULL);
	user(alice, "alice");
	if (bob != NULL)
		user(bob, "bob");
	if (carol != NULL)
		user(carol, "carol");
}

/* Run sotto as u with args (NULL-terminated) and expect exit status want. */
static void
run(struct proc_result *res, const struct tclient *u, int want, const char *a1, const char *a2,
        const char *a3, const char *a4)
{
	cr_assert_eq(tclient_run(u, res, NULL, a1, a2, a3, a4, (char *)NULL), 0);
	cr_assert(res->exited, "sotto died of signal %d", res->signal);
	cr_assert_eq(res->status, want, "sotto %s: exit %d, want %d\n%s\n%s", a1, res->status, want,
	        res->out, res->err);
}

/* Start sotto, interactive, as u in a 120x30 pane, with extra global options (or NULL). */
static void
tm_start_with(const struct tclient *u, const char *extra)
{
	static int serial;
	const char *argv[TCLIENT_ARGS_MAX + 1];
	char cmd[4096], conf[400];
	struct proc_result res;
	size_t n, i, o;
	FILE *fp;

	snprintf(tm.sock, sizeof(tm.sock), "sotto-test-%ld-%d", (long)getpid(), serial++);
	snprintf(tm.dir, sizeof(tm.dir), "%s/tty-%s", srv.dir, u->name);
	cr_assert_eq(mkdir(tm.dir, 0700), 0);
	snprintf(conf, sizeof(conf), "%s/tmux.conf", tm.dir);
	cr_assert_not_null(fp = fopen(conf, "w"));
	/* Keep the pane (and what it shows) after sotto exits; no status line. */
	fputs("set -g remain-on-exit on\nset -g status off\nset -g history-limit 5000\n", fp);
	fclose(fp);
	/* The inner sh writes its pid and becomes sotto, so the test can signal it. */
	o = (size_t)snprintf(cmd, sizeof(cmd),
	        "stty -g > '%s/stty.before'; PIDF='%s/pid' sh -c 'echo $$ > \"$PIDF\"; exec "
	        "\"$0\" \"$@\"'",
	        tm.dir, tm.dir);
	n = tclient_argv(u, argv);
	for (i = 0; i < n; i++)
		o += (size_t)snprintf(cmd + o, sizeof(cmd) - o, " '%s'", argv[i]);
	if (extra != NULL)
		o += (size_t)snprintf(cmd + o, sizeof(cmd) - o, " %s", extra);
	snprintf(cmd + o, sizeof(cmd) - o,
	        "; echo $? > '%s/status.tmp'; stty -g > '%s/stty.after'; mv '%s/status.tmp' "
	        "'%s/status'",
	        tm.dir, tm.dir, tm.dir, tm.dir);
	{
		const char *tmux[] = {"tmux", "-L", tm.sock, "-f", conf, "new-session", "-d", "-s",
		        "main", "-x", "120", "-y", "30", cmd, NULL};

		cr_assert_eq(proc_run(&res, tmux, NULL), 0);
		cr_assert_eq(res.status, 0, "tmux new-session: %s", res.err);
		proc_result_free(&res);
	}
	tm.up = 1;
}

static void
tm_start(const struct tclient *u)
{
	tm_start_with(u, NULL);
}

static void
tm_capture(void)
{
	struct proc_result res;

	tm_tmux(&res, "capture-pane", "-p", "-J", "-t", "main");
	snprintf(tm.screen, sizeof(tm.screen), "%s", res.out);
	proc_result_free(&res);
}

/* 1 once the screen shows needle, 0 at the deadline (tm.screen holds the last look). */
static int
tm_wait(const char *needle)
{
	int64_t deadline = tnow_ms() + WAIT_MS;

	for (;;) {
		tm_capture();
		if (strstr(tm.screen, needle) != NULL)
			return 1;
		if (tnow_ms() > deadline)
			return 0;
		tsleep_ms(50);
	}
}

static void
tm_expect(const char *needle)
{
	cr_assert(tm_wait(needle), "the screen never showed \"%s\":\n%s", needle, tm.screen);
}

/* Type text as it is (no key names). */
static void
tm_type(const char *text)
{
	struct proc_result res;

	tm_tmux(&res, "send-keys", "-t", "main", "-l", text);
	cr_assert_eq(res.status, 0, "send-keys: %s", res.err);
	proc_result_free(&res);
}

/* Press a key by tmux's name for it (Enter, C-c, C-d). */
static void
tm_key(const char *key)
{
	struct proc_result res;

	tm_tmux(&res, "send-keys", "-t", "main", key, NULL);
	cr_assert_eq(res.status, 0, "send-keys %s: %s", key, res.err);
	proc_result_free(&res);
}

static void
tm_line(const char *text)
{
	tm_type(text);
	tm_key("Enter");
}

/* The last line of the screen that is not blank, trailing blanks cut. */
static void
tm_last_line(char *out, size_t outlen)
{
	char *s = tm.screen, *e = s + strlen(s), *b;

	while (e > s && (e[-1] == '\n' || e[-1] == ' '))
		e--;
	for (b = e; b > s && b[-1] != '\n'; b--)
		;
	snprintf(out, outlen, "%.*s", (int)(e - b), b);
}

/* Wait until the screen's last line is want (sotto redraws the prompt just after output). */
static void
tm_expect_last(const char *want)
{
	int64_t deadline = tnow_ms() + WAIT_MS;
	char last[512];

	for (;;) {
		tm_capture();
		tm_last_line(last, sizeof(last));
		if (strcmp(last, want) == 0)
			return;
		cr_assert(
		        tnow_ms() <= deadline, "the last line is not \"%s\":\n%s", want, tm.screen);
		tsleep_ms(50);
	}
}

static char *
slurp(const char *path)
{
	static char buf[4096];
	FILE *fp;
	size_t n;

	if ((fp = fopen(path, "r")) == NULL)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

/* Wait for sotto to end: its exit status, with the terminal as it found it. */
static int
tm_exit_status(void)
{
	char path[400], before[4096];
	int64_t deadline = tnow_ms() + WAIT_MS;
	const char *s;

	snprintf(path, sizeof(path), "%s/status", tm.dir);
	while ((s = slurp(path)) == NULL) {
		if (tnow_ms() > deadline) {
			tm_capture();
			cr_assert_fail("sotto did not exit:\n%s", tm.screen);
		}
		tsleep_ms(50);
	}
	snprintf(path, sizeof(path), "%s/stty.before", tm.dir);
	cr_assert_not_null(s = slurp(path));
	snprintf(before, sizeof(before), "%s", s);
	snprintf(path, sizeof(path), "%s/stty.after", tm.dir);
	cr_assert_not_null(s = slurp(path));
	cr_assert_str_eq(s, before, "sotto left the terminal changed");
	snprintf(path, sizeof(path), "%s/status", tm.dir);
	return atoi(slurp(path));
}

/* alice, interactive, talking to peer. */
static void
open_chat(const struct tclient *alice, const char *peer)
{
	char prompt[64];

	char line[64];

	tm_start(alice);
	tm_expect("sotto>");
	snprintf(line, sizeof(line), "/msg %s", peer);
	tm_line(line);
	snprintf(prompt, sizeof(prompt), "%s>", peer);
	tm_expect(prompt);
}

Test(interactive, enter_sends_and_quit_exits_0)
{
	struct tclient alice, bob;
	struct proc_result res;

	start_users(&alice, &bob, NULL);
	open_chat(&alice, "bob");
	tm_line("hello from the terminal");
	tm_expect("alice -> bob: hello from the terminal [sent]");
	run(&res, &bob, 0, "--json", "receive", "--timeout", "3");
	cr_assert_not_null(strstr(res.out, "\"from\":\"alice\""), "%s", res.out);
	cr_assert_not_null(strstr(res.out, "\"text\":\"hello from the terminal\"}"), "%s", res.out);
	proc_result_free(&res);
	/* bob's device took it, and read it: both states come back to alice's screen. */
	tm_expect("-> bob: delivered \"hello from the terminal\"");
	tm_expect("-> bob: read \"hello from the terminal\"");
	tm_line("/quit");
	cr_assert_eq(tm_exit_status(), 0);
}

Test(interactive, incoming_message_keeps_the_half_typed_line)
{
	struct tclient alice, bob;
	struct proc_result res;

	start_users(&alice, &bob, NULL);
	open_chat(&alice, "bob");
	tm_type("half-typed");
	tm_expect("bob> half-typed");
	run(&res, &bob, 0, "send", "alice", "-m", "news from bob");
	proc_result_free(&res);
	tm_expect(" bob: news from bob\n");
	/* The message went above the prompt; the line being typed is untouched. */
	tm_expect_last("bob> half-typed");
	cr_assert_lt(strstr(tm.screen, " bob: news from bob"), strstr(tm.screen, "bob> half-typed"),
	        "%s", tm.screen);
	tm_type(" and finished");
	tm_key("Enter");
	tm_expect("alice -> bob: half-typed and finished [sent]");
	run(&res, &bob, 0, "--json", "receive", "--timeout", "3");
	cr_assert_not_null(strstr(res.out, "\"text\":\"half-typed and finished\"}"), "%s", res.out);
	proc_result_free(&res);
	tm_key("C-d");
	cr_assert_eq(tm_exit_status(), 0);
}

Test(interactive, msg_and_query_switch_the_conversation)
{
	struct tclient alice, bob, carol;
	struct proc_result res;

	start_users(&alice, &bob, &carol);
	open_chat(&alice, "bob");
	tm_line("/msg carol");
	tm_expect("talking to carol");
	tm_expect("carol>");
	tm_line("for carol only");
	tm_expect("alice -> carol: for carol only [sent]");
	/* /query with text switches back and sends at once. */
	tm_line("/query bob and this for bob");
	tm_expect("alice -> bob: and this for bob [sent]");
	tm_expect("bob>");
	run(&res, &carol, 0, "receive", "--timeout", "3", NULL);
	cr_assert_not_null(strstr(res.out, " alice: for carol only\n"), "%s", res.out);
	cr_assert_null(strstr(res.out, "for bob"), "%s", res.out);
	proc_result_free(&res);
	run(&res, &bob, 0, "receive", "--timeout", "3", NULL);
	cr_assert_not_null(strstr(res.out, " alice: and this for bob\n"), "%s", res.out);
	cr_assert_null(strstr(res.out, "carol only"), "%s", res.out);
	proc_result_free(&res);
	tm_line("/quit");
	cr_assert_eq(tm_exit_status(), 0);
}

/* /group create, then /msg #GROUP: Enter sends to the group, and its replies show. */
Test(interactive, msg_group_switches_to_the_group)
{
	struct tclient alice, bob, carol;
	struct proc_result res;

	start_users(&alice, &bob, &carol);
	tm_start(&alice);
	tm_expect("sotto>");
	tm_line("/group create crew bob carol");
	tm_expect("group crew (");
	tm_line("/msg #crew");
	tm_expect("talking in group crew");
	tm_expect("#crew>");
	tm_line("hello crew");
	tm_expect("[crew] alice: hello crew [sent to 2");
	run(&res, &bob, 0, "receive", "--timeout", "2", NULL);
	cr_assert_not_null(
	        strstr(res.out, "[crew] alice: hello crew\n"), "%s\n%s", res.out, res.err);
	proc_result_free(&res);
	cr_assert_eq(tclient_run(&bob, &res, NULL, "send", "-g", "crew", "-m", "bob answers",
	                     (char *)NULL),
	        0);
	cr_assert_eq(res.status, 0, "%s", res.err);
	proc_result_free(&res);
	tm_expect("[crew] bob: bob answers");
	/* A plain name with no user behind it finds the group too; a user is still a user. */
	tm_line("/msg carol");
	tm_expect("carol>");
	tm_line("/msg crew");
	tm_expect("#crew>");
	tm_line("/group members crew");
	tm_expect("bob  tofu");
	tm_line("/quit");
	cr_assert_eq(tm_exit_status(), 0);
}

Test(interactive, who_help_and_unknown_commands)
{
	struct tclient alice, bob;

	start_users(&alice, &bob, NULL);
	tm_start(&alice);
	tm_expect("sotto>");
	tm_line("/who");
	tm_expect("alice online");
	tm_line("/who --since 3600");
	tm_expect("bob last seen ");
	tm_line("/frobnicate now");
	tm_expect("sotto: /frobnicate: unknown command; /help lists the commands");
	tm_line("/seen");
	tm_expect("sotto: usage: /seen USER");
	tm_line("/help verify");
	tm_expect("/verify USER NUMBER");
	/* Text with no conversation open goes nowhere, with a reason. */
	tm_line("lost words");
	tm_expect("no conversation to send to: /msg USER opens one");
	tm_line("/quit");
	cr_assert_eq(tm_exit_status(), 0);
}

Test(interactive, ctrl_c_clears_the_line)
{
	struct tclient alice, bob;
	struct proc_result res;

	start_users(&alice, &bob, NULL);
	open_chat(&alice, "bob");
	tm_type("never to be sent");
	tm_expect("bob> never to be sent");
	tm_key("C-c");
	tm_expect("bob> never to be sent^C");
	tm_expect_last("bob>");
	tm_line("clean line");
	tm_expect("alice -> bob: clean line [sent]");
	run(&res, &bob, 0, "--json", "receive", "--timeout", "3");
	cr_assert_not_null(strstr(res.out, "\"text\":\"clean line\"}"), "%s", res.out);
	cr_assert_null(strstr(res.out, "never"), "%s", res.out);
	proc_result_free(&res);
	tm_line("/quit");
	cr_assert_eq(tm_exit_status(), 0);
}

/* Send lines l1..ln and their Enters in one write, as a terminal delivers a paste. */
static void
tm_paste(int n)
{
	const char *argv[64] = {"tmux", "-L", tm.sock, "send-keys", "-t", "main"};
	char words[16][8];
	struct proc_result res;
	int i, k = 6;

	for (i = 0; i < n && i < 16; i++) {
		snprintf(words[i], sizeof(words[i]), "l%d", i + 1);
		argv[k++] = words[i];
		argv[k++] = "Enter";
	}
	argv[k] = NULL;
	cr_assert_eq(proc_run(&res, argv, NULL), 0);
	cr_assert_eq(res.status, 0, "send-keys: %s", res.err);
	proc_result_free(&res);
}

Test(interactive, a_long_paste_asks_first)
{
	struct tclient alice, bob;
	struct proc_result res;

	start_users(&alice, &bob, NULL);
	open_chat(&alice, "bob");
	tm_paste(6);
	tm_expect("send 6 lines to bob? [y/N]");
	tm_line("n");
	tm_expect("not sent");
	tm_paste(7);
	tm_expect("send 7 lines to bob? [y/N]");
	tm_line("y");
	tm_expect("l7 [sent]");
	run(&res, &bob, 0, "--json", "receive", "--timeout", "3");
	/* One message with the seven lines; the six refused ones never left. */
	cr_assert_not_null(
	        strstr(res.out, "\"text\":\"l1\\nl2\\nl3\\nl4\\nl5\\nl6\\nl7\"}"), "%s", res.out);
	cr_assert_null(strstr(strstr(res.out, "l7") + 2, "\"text\""), "%s", res.out);
	cr_assert_null(strstr(res.out, "l6\"}"), "%s", res.out);
	proc_result_free(&res);
	/* Short bursts are lines as typed: each its own message. */
	tm_paste(2);
	tm_expect("alice -> bob: l2 [sent]");
	tm_line("/quit");
	cr_assert_eq(tm_exit_status(), 0);
}

Test(interactive, sigterm_quits_cleanly)
{
	struct tclient alice;
	char path[400];
	const char *s;
	int64_t deadline;

	start_users(&alice, NULL, NULL);
	tm_start(&alice);
	tm_expect("sotto>");
	tm_type("something typed");
	tm_expect("sotto> something typed");
	snprintf(path, sizeof(path), "%s/pid", tm.dir);
	deadline = tnow_ms() + WAIT_MS;
	while ((s = slurp(path)) == NULL || atoi(s) <= 0) {
		cr_assert_lt(tnow_ms(), deadline, "no pid file");
		tsleep_ms(50);
	}
	cr_assert_eq(kill((pid_t)atoi(s), SIGTERM), 0);
	cr_assert_eq(tm_exit_status(), 0);
}

Test(interactive, idle_timeout_is_a_sentence_and_exit_3)
{
	static const char *const flags[] = {"--idle-timeout", "1", NULL};
	struct tclient alice;

	start_server(flags);
	user(&alice, "alice");
	tm_start(&alice);
	tm_expect("sotto: the server closed the connection: idle timeout");
	cr_assert_eq(tm_exit_status(), 3, "%s", tm.screen);
}

/*
 * A message under a key alice does not accept stays on the server; once she
 * accepts it with /trust, sotto logs in again and the message shows.
 */
Test(interactive, trust_fetches_a_held_message)
{
	struct tclient alice, bob;
	struct proc_result res;

	start_users(&alice, &bob, NULL);
	tm_start_with(&alice, "--trust-new never");
	tm_expect("sotto>");
	run(&res, &bob, 0, "send", "alice", "-m", "kept on the server");
	proc_result_free(&res);
	tm_expect("sotto: a message from bob stays on the server, unread");
	cr_assert_null(strstr(tm.screen, "kept on the server"), "%s", tm.screen);
	tm_line("/trust bob");
	tm_expect("logged in again to fetch the messages the server held");
	tm_expect(" bob: kept on the server\n");
	tm_line("/quit");
	cr_assert_eq(tm_exit_status(), 0);
}

/* files: an offer shows up with /accept and /discard; /files, /accept and /sendfile work. */
Test(interactive, file_offer_accept_and_sendfile)
{
	struct tclient alice, bob;
	struct proc_result res;
	char path[600], back[600];
	const char *s;
	FILE *fp;

	start_users(&alice, &bob, NULL);
	snprintf(path, sizeof(path), "%s/note.txt", alice.home);
	cr_assert_not_null(fp = fopen(path, "w"));
	fputs("a note for bob\n", fp);
	fclose(fp);
	tm_start(&bob);
	tm_expect("sotto>");
	run(&res, &alice, 0, "send-file", "bob", path, NULL);
	proc_result_free(&res);
	tm_expect("alice offers note.txt (15 B) \xe2\x80\x94 /accept 1 [PATH] | /discard 1");
	tm_line("/files");
	tm_expect("1  alice  note.txt  15 B");
	tm_line("/accept 1");
	tm_expect("saved note.txt (15 B) from alice as ");
	/* The progress bar took the prompt's line, and was left at its end. */
	tm_expect("note.txt 100.0% 15 B of 15 B");
	snprintf(back, sizeof(back), "%s/downloads/note.txt", bob.home);
	cr_assert_not_null(s = slurp(back), "%s", back);
	cr_assert_str_eq(s, "a note for bob\n");
	tm_expect_last("sotto>");
	/* And back the other way, from the interactive side. */
	tm_line(strcat(strcpy(back, "/sendfile alice "), path));
	tm_expect("offered note.txt (15 B) to alice");
	run(&res, &alice, 0, "receive", NULL, NULL, NULL);
	cr_assert_not_null(
	        strstr(res.out, "bob offers note.txt (15 B) \xe2\x80\x94 sotto files accept 1 "
	                        "[PATH] | sotto files discard 1"),
	        "%s", res.out);
	proc_result_free(&res);
	run(&res, &alice, 0, "files", "discard", "1", NULL);
	proc_result_free(&res);
	tm_line("/quit");
	cr_assert_eq(tm_exit_status(), 0);
}
