/*
 * Groups end to end: a real sottod on loopback and real sotto clients, each
 * user in a home of its own.  Create, send, receive, rename; an offline
 * member catching up; removal and joining with the ciphertexts taken from
 * the server's queue; a server that inserts a member or forwards a
 * non-owner's change; and what the server's files never hold.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <sqlite3.h>

#include "crypto/util.h"
#include "src/client-e2e.h"
#include "src/client-group.h"
#include "src/client-paths.h"
#include "src/client-store.h"
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

TestSuite(group_client, .init = setup, .fini = teardown, .timeout = 120);

/* A user with a home of its own, registered on the server. */
static void
user(struct tclient *u, const char *name)
{
	tcheck_client(&srv, u, name);
}

/* Run sotto as u with up to 8 arguments (NULL-terminated) and expect exit status want. */
static void
run(struct proc_result *res, const struct tclient *u, int want, ...)
{
	const char *a[9];
	va_list ap;
	size_t n = 0;

	memset(a, 0, sizeof(a));
	va_start(ap, want);
	while (n < 8 && (a[n] = va_arg(ap, const char *)) != NULL)
		n++;
	va_end(ap);
	cr_assert_eq(tclient_run(u, res, NULL, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7],
	                     (char *)NULL),
	        0);
	cr_assert(res->exited, "sotto died of signal %d", res->signal);
	cr_assert_eq(res->status, want, "sotto %s %s %s: status %d, want %d\nout: %s\nerr: %s",
	        a[0], a[1] != NULL ? a[1] : "", a[2] != NULL ? a[2] : "", res->status, want,
	        res->out, res->err);
}

/* Run, expect status 0, and drop the output. */
static void
ok(const struct tclient *u, ...)
{
	struct proc_result res;
	const char *a[9];
	va_list ap;
	size_t n = 0;

	memset(a, 0, sizeof(a));
	va_start(ap, u);
	while (n < 8 && (a[n] = va_arg(ap, const char *)) != NULL)
		n++;
	va_end(ap);
	run(&res, u, 0, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], (char *)NULL);
	proc_result_free(&res);
}

/* sotto receive as u; res holds what it printed. */
static void
receive(struct proc_result *res, const struct tclient *u)
{
	run(res, u, 0, "receive", "--timeout", "1", (char *)NULL);
}

/* 1 if hay holds needle. */
static int
has(const char *hay, const char *needle)
{
	return hay != NULL && strstr(hay, needle) != NULL;
}

/* alice creates "friends" with bob and carol; each of them receives the news. */
static void
three(struct tclient *a, struct tclient *b, struct tclient *c)
{
	struct proc_result res;

	user(a, "alice");
	user(b, "bob");
	user(c, "carol");
	run(&res, a, 0, "group", "create", "friends", "bob", "carol", (char *)NULL);
	cr_assert(has(res.out, "group friends ("), "%s", res.out);
	proc_result_free(&res);
	receive(&res, b);
	cr_assert(has(res.out, "alice added you to group friends, with alice and carol") ||
	                  has(res.out, "alice added you to group friends"),
	        "%s", res.out);
	proc_result_free(&res);
	receive(&res, c);
	cr_assert(has(res.out, "alice added you to group friends"), "%s", res.out);
	proc_result_free(&res);
}

Test(group_client, create_send_receive_rename)
{
	struct tclient a, b, c;
	struct proc_result res;

	three(&a, &b, &c);
	run(&res, &a, 0, "send", "-g", "friends", "-m", "hello friends", (char *)NULL);
	cr_assert(has(res.out, "sent to group friends (2 other members"), "%s", res.out);
	proc_result_free(&res);
	receive(&res, &b);
	cr_assert(has(res.out, "[friends] alice: hello friends"), "%s\n%s", res.out, res.err);
	proc_result_free(&res);
	/* bob answers; his chain reaches alice and carol in front of his message. */
	ok(&b, "send", "-g", "friends", "-m", "hi from bob", (char *)NULL);
	receive(&res, &c);
	cr_assert(has(res.out, "[friends] alice: hello friends"), "%s\n%s", res.out, res.err);
	cr_assert(has(res.out, "[friends] bob: hi from bob"), "%s\n%s", res.out, res.err);
	cr_assert(strstr(res.out, "alice: hello") < strstr(res.out, "bob: hi"), "%s", res.out);
	proc_result_free(&res);
	run(&res, &a, 0, "--json", "receive", "--timeout", "1", (char *)NULL);
	cr_assert(
	        has(res.out, "\"from\":\"bob\",\"group\":\"friends\""), "%s\n%s", res.out, res.err);
	proc_result_free(&res);

	/* Rename: the owner only. */
	run(&res, &b, 1, "group", "rename", "friends", "enemies", (char *)NULL);
	cr_assert(has(res.err, "only alice, the owner of group friends, may rename it"), "%s",
	        res.err);
	proc_result_free(&res);
	ok(&a, "group", "rename", "friends", "pals", (char *)NULL);
	receive(&res, &b);
	cr_assert(has(res.out, "alice renamed group friends to pals"), "%s\n%s", res.out, res.err);
	proc_result_free(&res);
	ok(&a, "send", "-g", "pals", "-m", "new name", (char *)NULL);
	receive(&res, &c);
	cr_assert(has(res.out, "[pals] alice: new name"), "%s\n%s", res.out, res.err);
	proc_result_free(&res);

	/* History keeps the group's messages apart from the direct ones. */
	run(&res, &c, 0, "history", "-g", "pals", (char *)NULL);
	cr_assert(has(res.out, "[pals] alice: hello friends [received]"), "%s", res.out);
	cr_assert(has(res.out, "[pals] bob: hi from bob [received]"), "%s", res.out);
	proc_result_free(&res);
	run(&res, &c, 0, "history", "alice", (char *)NULL);
	cr_assert_not(has(res.out, "hello friends"), "%s", res.out);
	proc_result_free(&res);
	run(&res, &a, 0, "--json", "history", "-g", "pals", (char *)NULL);
	cr_assert(has(res.out, "\"group\":\"pals\""), "%s", res.out);
	cr_assert(has(res.out, "\"text\":\"hello friends\""), "%s", res.out);
	proc_result_free(&res);

	/* members and list. */
	run(&res, &b, 0, "group", "members", "pals", (char *)NULL);
	cr_assert(has(res.out, "alice (owner)  tofu"), "%s", res.out);
	cr_assert(has(res.out, "bob  you"), "%s", res.out);
	cr_assert(has(res.out, "carol  tofu"), "%s", res.out);
	proc_result_free(&res);
	run(&res, &b, 0, "--json", "group", "list", (char *)NULL);
	cr_assert(has(res.out, "\"group\":\"pals\""), "%s", res.out);
	cr_assert(has(res.out, "\"members\":[\"alice\",\"bob\",\"carol\"]"), "%s", res.out);
	proc_result_free(&res);
}

/* ---- looking inside: client.db and the server's queue ---------------------------------- */

/* Open u's client.db as its sotto would (u's sotto must not be running). */
static struct client_store *
store_of(const struct tclient *u, struct identity **idp)
{
	struct client_paths *p = NULL;
	struct client_store *cs = NULL;
	struct identity *id = NULL;
	uint8_t key[CLIENT_STORE_KEYBYTES];
	char pass[256], err[512];

	snprintf(pass, sizeof(pass), "pass of %s in %s", u->name, u->name);
	cr_assert_eq(identity_load(&id, NULL, u->identity, pass), 0);
	cr_assert_eq(client_paths_resolve(&p, u->home, NULL, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(client_store_key_from_identity(key, id), 0);
	cr_assert_eq(client_store_open(&cs, p->data_dir, key, err, sizeof(err)), 0, "%s", err);
	sotto_wipe(key, sizeof(key));
	client_paths_free(p);
	if (idp != NULL)
		*idp = id;
	else
		identity_free(id);
	return cs;
}

/* A captured group envelope: the group id and SendGroup.sealed. */
struct captured {
	uint8_t id[CLIENT_GROUP_ID_BYTES];
	uint8_t *sealed;
	size_t len;
};

/* The newest group envelope from sender queued for recipient on the server. */
static void
capture(struct captured *c, const char *recipient, const char *sender)
{
	char path[512];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	const uint8_t *blob;
	int n;

	snprintf(path, sizeof(path), "%s/sottod.db", srv.state);
	cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 10000);
	cr_assert_eq(sqlite3_prepare_v2(db,
	                     "SELECT sealed FROM queue WHERE recipient = ?1 AND peer = ?2 AND "
	                     "kind = 3 ORDER BY seq DESC LIMIT 1",
	                     -1, &st, NULL),
	        SQLITE_OK);
	sqlite3_bind_text(st, 1, recipient, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, sender, -1, SQLITE_STATIC);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "no group envelope from %s to %s is queued",
	        sender, recipient);
	blob = sqlite3_column_blob(st, 0);
	n = sqlite3_column_bytes(st, 0);
	cr_assert_gt(n, CLIENT_GROUP_ID_BYTES);
	memcpy(c->id, blob, CLIENT_GROUP_ID_BYTES);
	c->len = (size_t)n - CLIENT_GROUP_ID_BYTES;
	cr_assert_not_null(c->sealed = malloc(c->len));
	memcpy(c->sealed, blob + CLIENT_GROUP_ID_BYTES, c->len);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/*
 * Try to open a captured message from sender with what u's client.db holds
 * for sender: 0 and the text in out if it opens, else the error.
 */
static int
try_open(const struct tclient *u, const struct captured *c, const char *sender, char *out,
        size_t outlen)
{
	struct client_store *cs = store_of(u, NULL);
	struct senderkey_recv *r = NULL;
	Sottoc__Content *content = NULL;
	int rc;

	out[0] = '\0';
	rc = client_group_recv_load(cs, c->id, sender, &r);
	if (rc == 0)
		rc = client_group_open(r, c->id, sender, c->sealed, c->len, &content);
	if (rc == 0) {
		if (content->body_case == SOTTOC__CONTENT__BODY_TEXT)
			snprintf(out, outlen, "%s", content->text->body);
		sottoc__content__free_unpacked(content, NULL);
	}
	senderkey_recv_free(r);
	client_store_close(cs);
	return rc;
}

/* The sender-key id and iteration of a captured message. */
static int
group_peek(const struct captured *c, uint32_t *key_id, uint32_t *iteration)
{
	Sottoc__GroupSealed *gs = sottoc__group_sealed__unpack(NULL, c->len, c->sealed);
	int r;

	if (gs == NULL)
		return -1;
	r = senderkey_peek(gs->message.data, gs->message.len, key_id, iteration);
	sottoc__group_sealed__free_unpacked(gs, NULL);
	return r;
}

Test(group_client, offline_member_catches_up_in_order)
{
	struct tclient a, b, c;
	struct proc_result res;
	const char *p1, *p2, *p3;

	three(&a, &b, &c);
	/* carol stays away while alice and bob talk. */
	ok(&a, "send", "-g", "friends", "-m", "one from alice", (char *)NULL);
	ok(&b, "send", "-g", "friends", "-m", "two from bob", (char *)NULL);
	ok(&a, "send", "-g", "friends", "-m", "three from alice", (char *)NULL);
	receive(&res, &c);
	p1 = strstr(res.out, "[friends] alice: one from alice");
	p2 = strstr(res.out, "[friends] bob: two from bob");
	p3 = strstr(res.out, "[friends] alice: three from alice");
	cr_assert(p1 != NULL && p2 != NULL && p3 != NULL, "%s\n%s", res.out, res.err);
	cr_assert(p1 < p2 && p2 < p3, "out of order:\n%s", res.out);
	proc_result_free(&res);
	/* Nothing comes twice. */
	receive(&res, &c);
	cr_assert_not(has(res.out, "from alice"), "%s", res.out);
	proc_result_free(&res);
}

Test(group_client, removed_member_cannot_read_the_next_message)
{
	struct tclient a, b, c;
	struct proc_result res;
	struct captured before, after;
	char text[256];

	three(&a, &b, &c);
	ok(&a, "send", "-g", "friends", "-m", "before the removal", (char *)NULL);
	/* The technique works: carol's stored chain opens what was sent to her. */
	capture(&before, "carol", "alice");
	cr_assert_eq(try_open(&c, &before, "alice", text, sizeof(text)), 0);
	cr_assert_str_eq(text, "before the removal");

	run(&res, &b, 1, "group", "remove", "friends", "carol", (char *)NULL);
	cr_assert(has(res.err, "only alice, the owner of group friends, may add or remove"), "%s",
	        res.err);
	proc_result_free(&res);
	ok(&a, "group", "remove", "friends", "carol", (char *)NULL);
	receive(&res, &b);
	cr_assert(has(res.out, "[friends] alice: before the removal"), "%s", res.out);
	cr_assert(has(res.out, "group friends: alice removed carol"), "%s\n%s", res.out, res.err);
	proc_result_free(&res);
	ok(&a, "send", "-g", "friends", "-m", "after the removal", (char *)NULL);
	/* carol still holds alice's old chain, and it does not open the new message. */
	capture(&after, "bob", "alice");
	cr_assert_neq(try_open(&c, &after, "alice", text, sizeof(text)), 0);
	cr_assert_str_eq(text, "");
	/* bob, who stayed, reads it. */
	receive(&res, &b);
	cr_assert(has(res.out, "[friends] alice: after the removal"), "%s\n%s", res.out, res.err);
	proc_result_free(&res);
	/* bob's own chain is new too: carol's copy of his old one (if any) is of no use. */
	ok(&b, "send", "-g", "friends", "-m", "bob after the removal", (char *)NULL);
	capture(&after, "alice", "bob");
	free(after.sealed);
	/* carol is told, and gets nothing more. */
	receive(&res, &c);
	cr_assert(has(res.out, "alice removed you from group friends"), "%s\n%s", res.out, res.err);
	cr_assert_not(has(res.out, "after the removal"), "%s", res.out);
	proc_result_free(&res);
	run(&res, &c, 1, "send", "-g", "friends", "-m", "still here?", (char *)NULL);
	cr_assert(has(res.err, "you are not in group friends any more"), "%s", res.err);
	proc_result_free(&res);
	free(before.sealed);
}

Test(group_client, a_leave_is_learnt_from_the_server_and_rekeys)
{
	struct tclient a, b, c;
	struct proc_result res;
	struct captured before, after;
	uint32_t kid0, kid1, it;

	three(&a, &b, &c);
	ok(&a, "send", "-g", "friends", "-m", "before carol goes", (char *)NULL);
	capture(&before, "bob", "alice");
	receive(&res, &c);
	cr_assert(has(res.out, "[friends] alice: before carol goes"), "%s\n%s", res.out, res.err);
	proc_result_free(&res);
	run(&res, &a, 1, "group", "leave", "friends", (char *)NULL);
	cr_assert(has(res.err, "you own group friends: remove its other members before you leave"),
	        "%s", res.err);
	proc_result_free(&res);
	run(&res, &c, 0, "group", "leave", "friends", (char *)NULL);
	cr_assert(has(res.out, "you left group friends"), "%s", res.out);
	proc_result_free(&res);
	run(&res, &c, 0, "group", "list", (char *)NULL);
	cr_assert(has(res.out, "(you are not in it)"), "%s", res.out);
	proc_result_free(&res);
	/* alice learns of it from the signed changes before she sends, and makes a new chain. */
	ok(&a, "send", "-g", "friends", "-m", "after carol went", (char *)NULL);
	capture(&after, "bob", "alice");
	/* A new chain: another key id than the one carol was given. */
	cr_assert_eq(group_peek(&before, &kid0, &it), 0);
	cr_assert_eq(group_peek(&after, &kid1, &it), 0);
	cr_assert_neq(kid0, kid1);
	cr_assert_eq(it, 0);
	free(before.sealed);
	free(after.sealed);
	receive(&res, &b);
	cr_assert(has(res.out, "[friends] alice: after carol went"), "%s\n%s", res.out, res.err);
	proc_result_free(&res);
	run(&res, &a, 0, "group", "members", "friends", (char *)NULL);
	cr_assert_not(has(res.out, "carol"), "%s", res.out);
	proc_result_free(&res);
}

Test(group_client, late_joiner_cannot_read_earlier_messages)
{
	struct tclient a, b, c, d;
	struct proc_result res;
	struct captured old;
	char text[256];

	three(&a, &b, &c);
	user(&d, "dave");
	ok(&a, "send", "-g", "friends", "-m", "before dave", (char *)NULL);
	capture(&old, "bob", "alice");
	ok(&a, "group", "add", "friends", "dave", (char *)NULL);
	receive(&res, &d);
	cr_assert(has(res.out, "alice added you to group friends"), "%s\n%s", res.out, res.err);
	cr_assert_not(has(res.out, "before dave"), "%s", res.out);
	proc_result_free(&res);
	/* dave holds alice's chain as it is now: the earlier message does not open. */
	cr_assert_neq(try_open(&d, &old, "alice", text, sizeof(text)), 0);
	cr_assert_str_eq(text, "");
	free(old.sealed);
	ok(&a, "send", "-g", "friends", "-m", "welcome dave", (char *)NULL);
	receive(&res, &d);
	cr_assert(has(res.out, "[friends] alice: welcome dave"), "%s\n%s", res.out, res.err);
	proc_result_free(&res);
	/* bob learns of dave, hands him his chain, and dave reads bob. */
	receive(&res, &b);
	cr_assert(has(res.out, "group friends: alice added dave"), "%s\n%s", res.out, res.err);
	proc_result_free(&res);
	ok(&b, "send", "-g", "friends", "-m", "hi dave, bob here", (char *)NULL);
	receive(&res, &d);
	cr_assert(has(res.out, "[friends] bob: hi dave, bob here"), "%s\n%s", res.out, res.err);
	proc_result_free(&res);
}

Test(group_client, server_learns_neither_name_nor_text)
{
	struct tclient a, b, c;
	struct proc_result res;
	static const char name[] = "zq-secret-group-name";
	static const char marker[] = "zq-marker-8c1f5e";

	user(&a, "alice");
	user(&b, "bob");
	user(&c, "carol");
	ok(&a, "group", "create", name, "bob", "carol", (char *)NULL);
	ok(&a, "send", "-g", name, "-m", marker, (char *)NULL);
	ok(&a, "group", "rename", name, "zq-renamed-secret", (char *)NULL);
	/* bob reads it all; carol's copies stay queued on the server. */
	receive(&res, &b);
	cr_assert(has(res.out, marker), "%s\n%s", res.out, res.err);
	proc_result_free(&res);
	cr_assert_not(testsrv_state_has(&srv, name, strlen(name)));
	cr_assert_not(testsrv_state_has(&srv, "zq-renamed-secret", strlen("zq-renamed-secret")));
	cr_assert_not(testsrv_state_has(&srv, marker, strlen(marker)));
}

/* The id of u's group name, from --json group list. */
static void
group_id_of(const struct tclient *u, const char *name, uint8_t id[CLIENT_GROUP_ID_BYTES])
{
	struct proc_result res;
	char needle[128], hex[2 * CLIENT_GROUP_ID_BYTES + 1];
	const char *p;
	size_t i;
	unsigned int byte;

	run(&res, u, 0, "--json", "group", "list", (char *)NULL);
	snprintf(needle, sizeof(needle), "\"group\":\"%s\",\"group_id\":\"", name);
	cr_assert_not_null(p = strstr(res.out, needle), "%s", res.out);
	p += strlen(needle);
	memcpy(hex, p, 2 * CLIENT_GROUP_ID_BYTES);
	hex[2 * CLIENT_GROUP_ID_BYTES] = '\0';
	for (i = 0; i < CLIENT_GROUP_ID_BYTES; i++) {
		cr_assert_eq(sscanf(hex + 2 * i, "%2x", &byte), 1);
		id[i] = (uint8_t)byte;
	}
	proc_result_free(&res);
}

/* Run SQL on the server's database with the group id bound to ?1, with sottod stopped. */
static void
server_sql(const char *sql, const uint8_t id[CLIENT_GROUP_ID_BYTES])
{
	char path[512];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;

	snprintf(path, sizeof(path), "%s/sottod.db", srv.state);
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 10000);
	cr_assert_eq(
	        sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
	sqlite3_bind_blob(st, 1, id, CLIENT_GROUP_ID_BYTES, SQLITE_STATIC);
	cr_assert_eq(sqlite3_step(st), SQLITE_DONE, "%s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* The server restarted on new ports: point every user at them. */
static void
repoint(struct tclient *const *us, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		snprintf(us[i]->server, sizeof(us[i]->server), "127.0.0.1:%s", srv.port4);
}

Test(group_client, member_inserted_by_the_server_is_refused_with_a_warning)
{
	struct tclient a, b, c, m;
	struct proc_result res;
	uint8_t id[CLIENT_GROUP_ID_BYTES];

	three(&a, &b, &c);
	user(&m, "mallory");
	group_id_of(&a, "friends", id);
	/* A malicious server: mallory joins in its database, with no signed change. */
	cr_assert_eq(testsrv_stop(&srv), 0);
	server_sql("INSERT INTO group_members (grp, name, joined) VALUES (?1, 'mallory', 1)", id);
	cr_assert_eq(testsrv_restart(&srv), 0);
	repoint((struct tclient *const[]){&a, &b, &c, &m}, 4);

	run(&res, &a, 0, "send", "-g", "friends", "-m", "not for mallory", (char *)NULL);
	cr_assert(has(res.err, "the server lists mallory in group friends, but the owner never "
	                       "added them; ignoring"),
	        "%s", res.err);
	proc_result_free(&res);
	run(&res, &b, 0, "group", "members", "friends", (char *)NULL);
	cr_assert(has(res.err, "the server lists mallory in group friends, but the owner never "
	                       "added them; ignoring"),
	        "%s", res.err);
	cr_assert_not(has(res.out, "mallory"), "%s", res.out);
	proc_result_free(&res);
	/* bob's client acts on its own list: his chain goes to alice and carol only. */
	run(&res, &b, 0, "send", "-g", "friends", "-m", "bob, not for mallory", (char *)NULL);
	cr_assert(has(res.out, "sent to group friends"), "%s", res.out);
	proc_result_free(&res);
	/* The server fans the messages out to mallory, who can read neither. */
	receive(&res, &m);
	cr_assert_not(has(res.out, "not for mallory"), "%s\n%s", res.out, res.err);
	cr_assert(has(res.err, "in a group you do not know"), "%s", res.err);
	proc_result_free(&res);
	receive(&res, &c);
	cr_assert(has(res.out, "[friends] alice: not for mallory"), "%s\n%s", res.out, res.err);
	cr_assert(has(res.out, "[friends] bob: bob, not for mallory"), "%s\n%s", res.out, res.err);
	proc_result_free(&res);
}

/* Log in as u on a connection of the test's own. */
static struct client_conn *
raw_login(const struct tclient *u, struct identity **idp)
{
	struct tuser tu;
	struct client_conn *conn;
	char pass[256], err[512];

	memset(&tu, 0, sizeof(tu));
	snprintf(tu.name, sizeof(tu.name), "%s", u->name);
	snprintf(pass, sizeof(pass), "pass of %s in %s", u->name, u->name);
	cr_assert_eq(identity_load(&tu.id, NULL, u->identity, pass), 0);
	cr_assert_not_null(conn = tlogin(&srv, &tu, err, sizeof(err)), "%s", err);
	*idp = tu.id;
	return conn;
}

Test(group_client, non_owner_changes_are_refused_by_server_and_clients)
{
	struct tclient a, b, c, d;
	struct proc_result res;
	struct client_conn *conn;
	struct identity *bid = NULL;
	struct client_store *cs;
	struct e2e_session *s = NULL;
	struct senderkey_send *chain = NULL;
	uint8_t id[CLIENT_GROUP_ID_BYTES], sig[IDENTITY_SIG_MAX], msg_id[16], *sealed = NULL;
	const char *dave[] = {"dave"};
	const char *members[] = {"alice", "bob", "carol", "dave"};
	size_t siglen = 0, sealedlen = 0;
	Sotto__Frame req, *reply = NULL;
	Sotto__GroupChange gc;
	Sotto__Send snd;
	Sotto__SendGroup sg;
	Sottoc__Content content;
	Sottoc__GroupUpdate gu;
	Sottoc__SignedGroupChange sch, *schp = &sch;
	Sottoc__GroupRename rn;

	three(&a, &b, &c);
	user(&d, "dave");
	group_id_of(&a, "friends", id);
	/* bob talks in the group, so that he has a session with carol and a chain. */
	ok(&b, "send", "-g", "friends", "-m", "bob is here", (char *)NULL);
	receive(&res, &c);
	cr_assert(has(res.out, "[friends] bob: bob is here"), "%s\n%s", res.out, res.err);
	proc_result_free(&res);

	/* Past bob's client: a signed add sent to the server is refused there. */
	conn = raw_login(&b, &bid);
	cr_assert_eq(client_group_sign(bid, "bob", id, 2, SOTTO__GROUP_OP__GROUP_OP_ADD, dave, 1,
	                     sig, sizeof(sig), &siglen),
	        0);
	sotto__group_change__init(&gc);
	gc.group_id = proto_bytes(id, sizeof(id));
	gc.op = SOTTO__GROUP_OP__GROUP_OP_ADD;
	gc.users = (char **)(uintptr_t)dave;
	gc.n_users = 1;
	gc.serial = 2;
	gc.signature = proto_bytes(sig, siglen);
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_GROUP_CHANGE;
	req.group_change = &gc;
	cr_assert_eq(client_conn_request(conn, &req, &reply, 0), SOTTO_ERR_PERM);
	cr_assert_eq(client_conn_remote(conn)->code, SOTTO__ERROR_CODE__ERR_NOT_GROUP_OWNER);
	frame_free(reply);
	reply = NULL;

	/* And forged past the server: bob's GroupUpdate over his 1:1 session with carol. */
	cs = store_of(&b, NULL);
	cr_assert_eq(e2e_session_load(cs, "carol", &s), 0);
	sottoc__signed_group_change__init(&sch);
	sch.serial = 2;
	sch.op = SOTTO__GROUP_OP__GROUP_OP_ADD;
	sch.signer = proto_str("bob");
	sch.users = (char **)(uintptr_t)dave;
	sch.n_users = 1;
	sch.signature = proto_bytes(sig, siglen);
	sottoc__group_update__init(&gu);
	gu.group_id = proto_bytes(id, sizeof(id));
	gu.owner = proto_str("alice");
	gu.name = proto_str("hijacked");
	gu.members = (char **)(uintptr_t)members;
	gu.n_members = 4;
	gu.changes = &schp;
	gu.n_changes = 1;
	sottoc__content__init(&content);
	content.sent_ms = 1;
	content.body_case = SOTTOC__CONTENT__BODY_GROUP_UPDATE;
	content.group_update = &gu;
	cr_assert_eq(e2e_seal(s, bid, &content, &sealed, &sealedlen), 0);
	cr_assert_eq(e2e_session_save(cs, "carol", s, 1), 0);
	sotto_random(msg_id, sizeof(msg_id));
	sotto__send__init(&snd);
	snd.msg_id = proto_bytes(msg_id, sizeof(msg_id));
	snd.to = proto_str("carol");
	snd.sealed = proto_bytes(sealed, sealedlen);
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_SEND;
	req.send = &snd;
	cr_assert_eq(client_conn_request(conn, &req, &reply, 0), 0);
	frame_free(reply);
	reply = NULL;
	free(sealed);
	sealed = NULL;

	/* ... and a rename in the group, sealed with bob's own chain. */
	cr_assert_eq(client_group_send_load(cs, id, "bob", &chain), 0);
	sottoc__group_rename__init(&rn);
	rn.name = proto_str("hijacked");
	sottoc__content__init(&content);
	content.sent_ms = 2;
	content.body_case = SOTTOC__CONTENT__BODY_GROUP_RENAME;
	content.group_rename = &rn;
	cr_assert_eq(client_group_seal(chain, id, "bob", &content, &sealed, &sealedlen), 0);
	cr_assert_eq(client_group_send_save(cs, id, "bob", chain, 2), 0);
	sotto_random(msg_id, sizeof(msg_id));
	sotto__send_group__init(&sg);
	sg.msg_id = proto_bytes(msg_id, sizeof(msg_id));
	sg.group_id = proto_bytes(id, sizeof(id));
	sg.sealed = proto_bytes(sealed, sealedlen);
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_SEND_GROUP;
	req.send_group = &sg;
	cr_assert_eq(client_conn_request(conn, &req, &reply, 0), 0);
	cr_assert_eq(reply->body_case, SOTTO__FRAME__BODY_ACK_GROUP);
	frame_free(reply);
	free(sealed);
	senderkey_send_free(chain);
	e2e_session_free(s);
	client_store_close(cs);
	client_conn_close(conn);
	identity_free(bid);

	/* carol refuses both, says so, and her group is as it was. */
	receive(&res, &c);
	cr_assert(has(res.err, "bob sent an update of a group that alice owns; only the owner "
	                       "may: ignored"),
	        "%s", res.err);
	cr_assert(has(res.err, "bob tried to rename a group that alice owns: ignored"), "%s",
	        res.err);
	cr_assert_not(has(res.out, "hijacked"), "%s", res.out);
	proc_result_free(&res);
	run(&res, &c, 0, "group", "members", "friends", (char *)NULL);
	cr_assert_not(has(res.out, "dave"), "%s", res.out);
	proc_result_free(&res);
	run(&res, &c, 0, "group", "list", (char *)NULL);
	cr_assert(has(res.out, "friends  "), "%s", res.out);
	cr_assert_not(has(res.out, "hijacked"), "%s", res.out);
	proc_result_free(&res);
}

Test(group_client, message_before_its_sender_key_waits_on_the_server)
{
	struct tclient a, b, c;
	struct proc_result res;
	const char *k, *m;

	three(&a, &b, &c);
	/* bob's first words to carol: his chain over a new session, then his message. */
	ok(&b, "send", "-g", "friends", "-m", "bob speaks first", (char *)NULL);
	/* carol refuses new keys this time: the chain is held, so the message waits too. */
	run(&res, &c, 4, "--trust-new", "never", "receive", "--timeout", "1", (char *)NULL);
	cr_assert_not(has(res.out, "bob speaks first"), "%s", res.out);
	cr_assert(has(res.err, "a message from bob in group friends waits for bob's sender key"),
	        "%s", res.err);
	proc_result_free(&res);
	/* Next time, with bob's key accepted, the chain comes first and the message opens. */
	run(&res, &c, 0, "--json", "receive", "--timeout", "1", (char *)NULL);
	k = strstr(res.err, "new peer bob");
	m = strstr(res.out, "\"text\":\"bob speaks first\"");
	cr_assert(k != NULL && m != NULL, "%s\n%s", res.out, res.err);
	cr_assert(has(res.out, "\"from\":\"bob\",\"group\":\"friends\""), "%s", res.out);
	proc_result_free(&res);
}
