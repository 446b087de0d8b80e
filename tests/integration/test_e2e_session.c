/*
 * End-to-end sessions between real sotto clients through a real sottod:
 * a server that replays the first message of a session under a new id, two
 * users who both start a session before either has received the other's
 * first message, sotto reset, and the message for a store opened with the
 * wrong identity key.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <criterion/criterion.h>
#include <sqlite3.h>

#include "crypto/util.h"
#include "tests/lib/tcheck.h"

#ifndef Test
#define Test(s, n) void s##_##n(void)
#define TestSuite(...)
#endif

static struct testsrv srv;

static void
setup(void)
{
	tcheck_start(&srv, NULL);
}

static void
teardown(void)
{
	testsrv_cleanup(&srv);
}

TestSuite(e2e_session, .init = setup, .fini = teardown, .timeout = 120);

/* Run sotto as u with the arguments that follow (NULL-terminated); expect exit status want. */
static void
cu_run(struct proc_result *res, const struct tclient *u, int want, ...)
{
	const char *argv[TCLIENT_ARGS_MAX + 1];
	struct proc_opts po;
	const char *a;
	va_list ap;
	size_t n = tclient_argv(u, argv);

	va_start(ap, want);
	while ((a = va_arg(ap, const char *)) != NULL && n < TCLIENT_ARGS_MAX)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	memset(&po, 0, sizeof(po));
	po.env = (const char *const[]){"SOTTO_HOME", NULL};
	cr_assert_eq(proc_run(res, argv, &po), 0);
	cr_assert(res->exited, "sotto died of signal %d", res->signal);
	cr_assert_eq(res->status, want, "sotto %s %s: exit %d, want %d\nstdout: %s\nstderr: %s",
	        argv[7], argv[8] != NULL ? argv[8] : "", res->status, want, res->out, res->err);
}

static void
cu_send(const struct tclient *u, const char *to, const char *text)
{
	struct proc_result res;

	cu_run(&res, u, 0, "send", to, "-m", text, (char *)NULL);
	proc_result_free(&res);
}

/*
 * Receive as u and check that exactly the texts given (NULL-terminated) were
 * shown, each once, from "from", and that nothing failed to decrypt.
 */
static void
cu_expect(const struct tclient *u, const char *from, ...)
{
	struct proc_result res;
	char line[512];
	const char *t, *p;
	size_t shown = 0, want = 0;
	va_list ap;

	cu_run(&res, u, 0, "receive", (char *)NULL);
	cr_assert_null(
	        strstr(res.err, "could not be decrypted"), "%s receive: %s", u->name, res.err);
	cr_assert_null(strstr(res.err, "replayed"), "%s receive: %s", u->name, res.err);
	va_start(ap, from);
	while ((t = va_arg(ap, const char *)) != NULL) {
		snprintf(line, sizeof(line), " %s: %s\n", from, t);
		cr_assert_not_null(p = strstr(res.out, line), "%s did not show \"%s\"\nstdout: %s",
		        u->name, t, res.out);
		cr_assert_null(
		        strstr(p + 1, line), "%s showed \"%s\" twice: %s", u->name, t, res.out);
		want++;
	}
	va_end(ap);
	/* Shown messages are the lines "HH:MM:SS from: text". */
	for (p = res.out; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p != NULL ? p + 1 : p)
		if (strlen(p) > 9 + strlen(from) && p[2] == ':' && p[5] == ':' && p[8] == ' ' &&
		        strncmp(p + 9, from, strlen(from)) == 0 && p[9 + strlen(from)] == ':')
			shown++;
	cr_assert_eq(
	        shown, want, "%s showed %zu messages, want %zu: %s", u->name, shown, want, res.out);
	proc_result_free(&res);
}

static void
pair(struct tclient *a, struct tclient *b)
{
	tcheck_client(&srv, a, "alice");
	tcheck_client(&srv, b, "bob");
}

/* Messages each way, one at a time, each received before the next is sent. */
static void
chat(struct tclient *alice, struct tclient *bob, int rounds)
{
	char text[64];
	int i;

	for (i = 0; i < rounds; i++) {
		snprintf(text, sizeof(text), "alice to bob, round %d", i);
		cu_send(alice, "bob", text);
		cu_expect(bob, "alice", text, (char *)NULL);
		snprintf(text, sizeof(text), "bob to alice, round %d", i);
		cu_send(bob, "alice", text);
		cu_expect(alice, "bob", text, (char *)NULL);
	}
}

/* Open the server's database, as a malicious operator would. */
static sqlite3 *
srv_db(void)
{
	char path[512];
	sqlite3 *db = NULL;

	snprintf(path, sizeof(path), "%s/sottod.db", srv.state);
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 10000);
	return db;
}

/* The server hands out no one-time prekey for name: they are used up. */
static void
srv_drop_otks(const char *name)
{
	sqlite3 *db = srv_db();
	sqlite3_stmt *st = NULL;

	cr_assert_eq(sqlite3_prepare_v2(
	                     db, "DELETE FROM one_time_prekeys WHERE name = ?1", -1, &st, NULL),
	        SQLITE_OK);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	cr_assert_eq(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* The sealed bytes of the one envelope queued for to from from (malloc'd). */
static uint8_t *
srv_queued_sealed(const char *to, const char *from, size_t *len)
{
	sqlite3 *db = srv_db();
	sqlite3_stmt *st = NULL;
	uint8_t *out;

	cr_assert_eq(sqlite3_prepare_v2(db,
	                     "SELECT sealed FROM queue WHERE recipient = ?1 AND peer = ?2"
	                     " ORDER BY seq",
	                     -1, &st, NULL),
	        SQLITE_OK);
	sqlite3_bind_text(st, 1, to, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, from, -1, SQLITE_TRANSIENT);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "nothing queued for %s from %s", to, from);
	*len = (size_t)sqlite3_column_bytes(st, 0);
	cr_assert_not_null(out = malloc(*len));
	memcpy(out, sqlite3_column_blob(st, 0), *len);
	cr_assert_eq(sqlite3_step(st), SQLITE_DONE, "more than one envelope queued");
	sqlite3_finalize(st);
	sqlite3_close(db);
	return out;
}

/* Send sealed bytes to "to" as u under a new msg_id, over a connection of our own. */
static void
send_raw_as(const struct tclient *u, const char *to, const uint8_t *sealed, size_t len)
{
	struct tuser tu;
	struct client_conn *c;
	Sotto__Frame req, *ack = NULL;
	Sotto__Send s;
	uint8_t id[16];
	char err[512], pass[96];

	memset(&tu, 0, sizeof(tu));
	snprintf(tu.name, sizeof(tu.name), "%s", u->name);
	/* tclient_make's passphrase, for a home named after its user. */
	snprintf(pass, sizeof(pass), "pass of %s in %s", u->name, u->name);
	cr_assert_eq(identity_load(&tu.id, NULL, u->identity, pass), 0);
	cr_assert_not_null(c = tlogin(&srv, &tu, err, sizeof(err)), "%s", err);
	sotto_random(id, sizeof(id));
	sotto__send__init(&s);
	s.msg_id = proto_bytes(id, sizeof(id));
	s.to = proto_str(to);
	s.sealed = proto_bytes(sealed, len);
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_SEND;
	req.send = &s;
	cr_assert_eq(client_conn_request(c, &req, &ack, 0), 0, "%s", client_conn_error(c));
	cr_assert_eq(ack->body_case, SOTTO__FRAME__BODY_ACK);
	frame_free(ack);
	client_conn_close(c);
	tuser_free(&tu);
}

/*
 * The server replays alice's first message to bob, as it was sealed, under a
 * new message id; otks says whether bob still had one-time prekeys.
 */
static void
replayed_first_message(int otks)
{
	struct tclient alice = {.name = ""}, bob = {.name = ""};
	struct proc_result res;
	uint8_t *sealed;
	size_t len;

	pair(&alice, &bob);
	if (!otks)
		srv_drop_otks("bob");
	cu_send(&alice, "bob", "the first message");
	sealed = srv_queued_sealed("bob", "alice", &len);
	cu_expect(&bob, "alice", "the first message", (char *)NULL);
	send_raw_as(&alice, "bob", sealed, len);
	free(sealed);
	cu_run(&res, &bob, 0, "receive", (char *)NULL);
	cr_assert_null(strstr(res.out, "the first message"), "shown again: %s", res.out);
	cr_assert_not_null(strstr(res.err, "sotto: dropped a replayed message from alice\n"),
	        "stderr: %s", res.err);
	proc_result_free(&res);
	/* The session is as it was: both ways still decrypt. */
	cu_expect(&alice, "bob", (char *)NULL);
	chat(&alice, &bob, 2);
	cu_run(&res, &bob, 0, "history", "alice", (char *)NULL);
	cr_assert_null(strstr(strstr(res.out, "the first message") + 1, "the first message"),
	        "stored twice: %s", res.out);
	proc_result_free(&res);
}

Test(e2e_session, replayed_first_message_without_otk)
{
	replayed_first_message(0);
}

Test(e2e_session, replayed_first_message_with_otk)
{
	replayed_first_message(1);
}

/* Both send one message before either receives; alice, who sorts first, receives first. */
Test(e2e_session, simultaneous_first_messages)
{
	struct tclient alice = {.name = ""}, bob = {.name = ""};

	pair(&alice, &bob);
	cu_send(&alice, "bob", "hello from alice");
	cu_send(&bob, "alice", "hello from bob");
	cu_expect(&alice, "bob", "hello from bob", (char *)NULL);
	cu_expect(&bob, "alice", "hello from alice", (char *)NULL);
	chat(&alice, &bob, 3);
}

/* Both send several messages before either receives; bob receives first. */
Test(e2e_session, simultaneous_several_messages)
{
	struct tclient alice = {.name = ""}, bob = {.name = ""};

	pair(&alice, &bob);
	cu_send(&alice, "bob", "alice one");
	cu_send(&alice, "bob", "alice two");
	cu_send(&bob, "alice", "bob one");
	cu_send(&bob, "alice", "bob two");
	cu_send(&bob, "alice", "bob three");
	cu_expect(&bob, "alice", "alice one", "alice two", (char *)NULL);
	/* bob's reply crosses nothing now: it goes out on alice's session. */
	cu_send(&bob, "alice", "bob four");
	cu_expect(&alice, "bob", "bob one", "bob two", "bob three", "bob four", (char *)NULL);
	chat(&alice, &bob, 3);
}

/* After sotto reset, the next message starts a new session and the peer follows. */
Test(e2e_session, reset)
{
	struct tclient alice = {.name = ""}, bob = {.name = ""};
	struct proc_result res;

	pair(&alice, &bob);
	cu_run(&res, &bob, 0, "reset", "alice", (char *)NULL);
	cr_assert_not_null(strstr(res.out, "no session with alice"), "%s", res.out);
	proc_result_free(&res);
	chat(&alice, &bob, 1);
	/* alice's read receipt, on the old session, would not decrypt after the reset. */
	cu_expect(&bob, "alice", (char *)NULL);
	cu_run(&res, &bob, 0, "reset", "alice", (char *)NULL);
	cr_assert_not_null(strstr(res.out, "the session with alice is reset"), "%s", res.out);
	proc_result_free(&res);
	cu_run(&res, &bob, 1, "reset", (char *)NULL);
	cr_assert_not_null(strstr(res.err, "usage: sotto reset USER"), "%s", res.err);
	proc_result_free(&res);
	cu_send(&bob, "alice", "a new start");
	cu_expect(&alice, "bob", "a new start", (char *)NULL);
	cu_expect(&bob, "alice", (char *)NULL);
	chat(&alice, &bob, 2);
	/* History survives a reset. */
	cu_run(&res, &bob, 0, "history", "alice", (char *)NULL);
	cr_assert_not_null(strstr(res.out, "alice to bob, round 0"), "%s", res.out);
	proc_result_free(&res);
}

/* The wrong identity key for a profile is named once, clearly. */
Test(e2e_session, wrong_store_key)
{
	struct tclient alice = {.name = ""}, bob = {.name = ""};
	struct proc_result res;

	pair(&alice, &bob);
	cu_run(&res, &alice, 1, "--identity", bob.identity, "--passphrase-file", bob.pass,
	        "history", "bob", (char *)NULL);
	cr_assert_not_null(
	        strstr(res.err, "it was made with another identity key\n"), "%s", res.err);
	cr_assert_null(strstr(res.err, "(made with"), "%s", res.err);
	proc_result_free(&res);
}
