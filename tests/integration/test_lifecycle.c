/*
 * sottod as an operator sees it: SIGTERM and SIGINT stop it gracefully (exit
 * 0, every client told why, state kept), SIGHUP reloads the configuration,
 * --check-config and --version answer and exit, bad flags are refused, and a
 * second server on the same state directory says so.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "crypto/util.h"
#include "tests/lib/tcheck.h"

#ifndef Test
#define Test(s, n) void s##_##n(void)
#define TestSuite(...)
#endif

static struct testsrv srv;
static struct tuser alice, bob;
static struct tuser *const all_users[] = {&alice, &bob, NULL};
static const char *const user_names[] = {"alice", "bob"};
static char conf_dir[] = "/tmp/sotto-conf-XXXXXX", conf[64]; /* a sottod.conf of the test's */

/* A fresh directory for conf; teardown removes it whatever the outcome. */
static void
make_conf_dir(void)
{
	cr_assert_not_null(mkdtemp(conf_dir));
	snprintf(conf, sizeof(conf), "%s/sottod.conf", conf_dir);
}

static void
start(const char *const *flags)
{
	tcheck_start(&srv, flags);
	tcheck_users_new(all_users, user_names, IDENTITY_ED25519);
}

static void
teardown(void)
{
	if (conf[0] != '\0') {
		unlink(conf);
		rmdir(conf_dir);
	}
	testsrv_cleanup(&srv);
	tcheck_users_free(all_users);
}

TestSuite(lifecycle, .fini = teardown, .timeout = 60);

/* Run sottod with args (NULL-terminated) and no server running; the result. */
static void
run_sottod(struct proc_result *res, const char *const *args)
{
	const char *argv[16];
	struct proc_opts po;
	size_t n = 0;

	argv[n++] = testsrv_program("sottod");
	for (; *args != NULL && n < 15; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	memset(&po, 0, sizeof(po));
	po.timeout_ms = 15000;
	cr_assert_eq(proc_run(res, argv, &po), 0, "cannot run sottod");
	cr_assert_not(res->timed_out, "sottod did not exit");
}

static void
write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	cr_assert_not_null(fp, "%s", path);
	fputs(text, fp);
	cr_assert_eq(fclose(fp), 0);
}

/* Wait for the server to exit after a signal; its exit status (-1 if it was killed). */
static int
wait_exit(int64_t *ms)
{
	struct proc_result res;
	int64_t t0 = tnow_ms();
	int status;

	cr_assert_eq(proc_wait(srv.proc, &res, 15000), 0);
	srv.proc = NULL;
	*ms = tnow_ms() - t0;
	cr_assert_not(res.timed_out, "sottod did not stop");
	status = res.exited ? res.status : -1;
	proc_result_free(&res);
	return status;
}

static void
graceful_stop(int sig, const char *word)
{
	struct client_conn *a, *pre;
	uint8_t id[16] = {0};
	Sotto__Frame *f, *ack = NULL;
	char err[512];
	int64_t ms;

	start(NULL);
	tcheck_users_register(&srv, all_users);
	cr_assert_not_null(a = tlogin(&srv, &alice, err, sizeof(err)), "%s", err);
	cr_assert_not_null(pre = tconnect(&srv, 1, err, sizeof(err)), "%s", err);
	cr_assert_eq(
	        tsend(a, "bob", "kept over the restart", id, &ack), 0, "%s", client_conn_error(a));
	frame_free(ack);

	cr_assert_eq(proc_kill(srv.proc, sig), 0);
	cr_assert_not_null(f = twait(a, SOTTO__FRAME__BODY_CLOSING, 5000), "alice was not told");
	cr_assert_eq(f->closing->code, SOTTO__ERROR_CODE__ERR_SHUTTING_DOWN);
	cr_assert_not_null(strstr(f->closing->reason, word), "%s", f->closing->reason);
	frame_free(f);
	cr_assert_not_null(
	        strstr(client_conn_error(a), "shutting down"), "%s", client_conn_error(a));
	cr_assert_not_null(f = twait(pre, SOTTO__FRAME__BODY_CLOSING, 5000), "not logged in: %s",
	        client_conn_error(pre));
	cr_assert_eq(f->closing->code, SOTTO__ERROR_CODE__ERR_SHUTTING_DOWN);
	frame_free(f);
	cr_assert_eq(twait_closed(a, 5000), 0);
	client_conn_abort(a);
	client_conn_abort(pre);
	cr_assert_eq(wait_exit(&ms), 0, "a graceful stop exits 0");
	cr_assert_lt(ms, 5000);
	cr_assert(testsrv_log_has(&srv, "stopped"));
	cr_assert_not(testsrv_log_has(&srv, "[error]"));
	cr_assert_not(testsrv_sanitizer_report(&srv));

	/* Everything is still there after a restart. */
	cr_assert_eq(testsrv_restart(&srv), 0);
	cr_assert_not_null(a = tlogin(&srv, &bob, err, sizeof(err)), "%s", err);
	cr_assert_not_null(f = twait(a, SOTTO__FRAME__BODY_DELIVER, 5000));
	cr_assert_arr_eq(f->deliver->msg_id.data, id, 16);
	frame_free(f);
	cr_assert_eq(tseen(a, "alice", &f), 0, "%s", client_conn_error(a));
	cr_assert_not(f->presence->online);
	cr_assert_gt(f->presence->last_seen, 0);
	frame_free(f);
	client_conn_close(a);
}

Test(lifecycle, sigterm_is_graceful)
{
	graceful_stop(SIGTERM, "SIGTERM");
}

Test(lifecycle, sigint_is_graceful)
{
	graceful_stop(SIGINT, "SIGINT");
}

/* How many times needle occurs in the server's log. */
static int
log_count(const char *needle)
{
	char line[2048];
	FILE *fp = fopen(srv.log, "r");
	int n = 0;

	if (fp == NULL)
		return 0;
	while (fgets(line, sizeof(line), fp) != NULL)
		n += strstr(line, needle) != NULL;
	fclose(fp);
	return n;
}

/* Wait until needle occurs n times in the log. */
static void
wait_log(const char *needle, int n)
{
	int64_t end = tnow_ms() + 5000;

	while (log_count(needle) < n && tnow_ms() < end)
		tsleep_ms(20);
	cr_assert_geq(log_count(needle), n, "the log never said \"%s\" %d times", needle, n);
}

Test(lifecycle, sighup_reloads_configuration)
{
	const char *flags[] = {"-f", conf, NULL};
	struct client_conn *c;
	char err[512];

	make_conf_dir();
	write_file(conf, "# test\nregistration = open\n");
	start(flags);
	cr_assert_eq(tregister(&srv, &alice), 0);
	write_file(conf, "registration = closed\n");
	cr_assert_eq(proc_kill(srv.proc, SIGHUP), 0);
	/* The fingerprint is logged at start and again once a reload is done. */
	wait_log("server fingerprint", 2);
	cr_assert_not_null(c = tconnect(&srv, 0, err, sizeof(err)), "%s", err);
	cr_assert_eq(client_conn_registration(c), SOTTO__REGISTRATION_POLICY__REGISTRATION_CLOSED);
	cr_assert_eq(tregister_on(c, &bob, NULL), SOTTO_ERR_PERM);
	cr_assert_eq(client_conn_remote(c)->code, SOTTO__ERROR_CODE__ERR_REGISTRATION_CLOSED);
	client_conn_abort(c);
	/* Existing accounts are unaffected. */
	cr_assert_not_null(c = tlogin(&srv, &alice, err, sizeof(err)), "%s", err);
	client_conn_close(c);
	/* A broken file is refused and the old configuration kept. */
	write_file(conf, "registration = sometimes\n");
	cr_assert_eq(proc_kill(srv.proc, SIGHUP), 0);
	wait_log("reload failed, keeping the old configuration", 1);
	cr_assert_not_null(c = tconnect(&srv, 0, err, sizeof(err)), "%s", err);
	cr_assert_eq(client_conn_registration(c), SOTTO__REGISTRATION_POLICY__REGISTRATION_CLOSED);
	client_conn_close(c);
	cr_assert(testsrv_alive(&srv));
	cr_assert_eq(testsrv_stop(&srv), 0);
}

Test(lifecycle, check_config)
{
	const char *good[] = {"--check-config", "-f", conf, NULL};
	const char *verbose[] = {"--check-config", "-v", "-f", conf, NULL};
	const char *flag[] = {"--check-config", "-f", conf, "--max-frame", "lots", NULL};
	const char *path = conf;
	struct proc_result res;
	char line[96];

	make_conf_dir();
	write_file(path, "# a comment\nregistration = invite\nmax_frame = 2M\n");
	run_sottod(&res, good);
	cr_assert_eq(res.status, 0, "%s", res.err);
	cr_assert_not_null(strstr(res.out, "configuration OK"), "%s", res.out);
	proc_result_free(&res);
	run_sottod(&res, verbose);
	cr_assert_eq(res.status, 0, "%s", res.err);
	cr_assert_not_null(strstr(res.out, "registration = invite"), "%s", res.out);
	cr_assert_not_null(strstr(res.out, "max_frame = 2097152"), "%s", res.out);
	proc_result_free(&res);

	/* A bad key names the file and the line. */
	write_file(path, "# a comment\nregistration = open\nno_such_key = 1\n");
	run_sottod(&res, good);
	cr_assert_eq(res.status, 1);
	snprintf(line, sizeof(line), "%s:3:", path);
	cr_assert_not_null(strstr(res.err, line), "%s", res.err);
	cr_assert_not_null(strstr(res.err, "no_such_key"), "%s", res.err);
	cr_assert_null(strstr(res.out, "configuration OK"));
	proc_result_free(&res);
	/* So does a bad value. */
	write_file(path, "registration = open\n\nidle_timeout = soon\n");
	run_sottod(&res, good);
	cr_assert_eq(res.status, 1);
	snprintf(line, sizeof(line), "%s:3: idle_timeout", path);
	cr_assert_not_null(strstr(res.err, line), "%s", res.err);
	proc_result_free(&res);
	/* A bad flag is named as a flag. */
	write_file(path, "registration = open\n");
	run_sottod(&res, flag);
	cr_assert_eq(res.status, 1);
	cr_assert_not_null(strstr(res.err, "--max_frame"), "%s", res.err);
	proc_result_free(&res);
}

Test(lifecycle, version_and_usage)
{
	const char *version[] = {"--version", NULL};
	const char *v[] = {"-V", NULL};
	const char *bad[] = {"--no-such-option", "1", NULL};
	const char *stray[] = {"stray", NULL};
	struct proc_result res;

	run_sottod(&res, version);
	cr_assert_eq(res.status, 0);
	cr_assert_str_eq(res.out, "sottod " PACKAGE_VERSION "\n");
	proc_result_free(&res);
	run_sottod(&res, v);
	cr_assert_eq(res.status, 0);
	cr_assert_str_eq(res.out, "sottod " PACKAGE_VERSION "\n");
	proc_result_free(&res);
	run_sottod(&res, bad);
	cr_assert_eq(res.status, 1);
	cr_assert_not_null(strstr(res.err, "unknown key"), "%s", res.err);
	proc_result_free(&res);
	run_sottod(&res, stray);
	cr_assert_eq(res.status, 1);
	cr_assert_not_null(strstr(res.err, "stray"), "%s", res.err);
	proc_result_free(&res);
}

Test(lifecycle, one_server_per_state_directory)
{
	const char *args[] = {"--state-dir", srv.state, "--listen", "127.0.0.1:0", NULL};
	struct proc_result res;
	struct client_conn *c;
	char err[512];

	start(NULL);
	run_sottod(&res, args);
	cr_assert_eq(res.status, 1, "%s", res.err);
	cr_assert_not_null(strstr(res.err, "another sottod is already using"), "%s", res.err);
	proc_result_free(&res);
	/* The first one is undisturbed. */
	cr_assert_eq(tregister(&srv, &alice), 0);
	cr_assert_not_null(c = tlogin(&srv, &alice, err, sizeof(err)), "%s", err);
	client_conn_close(c);
	cr_assert(testsrv_healthy(&srv));
}
