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
#include "src/client-group.h"
#include "src/client-paths.h"
#include "src/client-store.h"
#include "tests/lib/tclient.h"

#ifndef Test
#define Test(s, n) void s##_##n(void)
#define TestSuite(...)
#endif

static struct testsrv srv;

static void
setup(void)
{
	cr_assert_eq(sotto_crypto_init(), 0);
	cr_assert_eq(testsrv_start(&srv, NULL), 0, "sottod did not start");
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
	struct proc_result res;
	char err[512];

	cr_assert_eq(tclient_make(&srv, u, name, name, 0, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(tclient_run(u, &res, NULL, "register", name, (char *)NULL), 0);
	cr_assert(res.exited && res.status == 0, "register %s: %s", name, res.err);
	proc_result_free(&res);
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
