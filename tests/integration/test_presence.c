/*
 * sottod presence and blocking, end to end: Who (now and within a window),
 * Seen for online, offline and unknown users, and blocks, which drop the
 * blocked sender's envelopes behind an ordinary Ack and hide the blocker's
 * presence, survive a restart, and end with Unblock.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>

#include "crypto/util.h"
#include "tests/lib/tcheck.h"

#ifndef Test
#define Test(s, n) void s##_##n(void)
#define TestSuite(...)
#endif

static struct testsrv srv;
static struct tuser alice, bob, carol;
static struct tuser *const all_users[] = {&alice, &bob, &carol, NULL};
static const char *const user_names[] = {"alice", "bob", "carol"};

static void
setup(void)
{
	tcheck_start(&srv, NULL);
	tcheck_users_new(all_users, user_names, IDENTITY_ED25519);
	tcheck_users_register(&srv, all_users);
}

static void
teardown(void)
{
	testsrv_cleanup(&srv);
	tcheck_users_free(all_users);
}

TestSuite(presence, .init = setup, .fini = teardown, .timeout = 60);

static struct client_conn *
login(struct tuser *u)
{
	return tcheck_login(&srv, u);
}

/* The entry for name in a WhoReply, or NULL. */
static const Sotto__Presence *
who_find(const Sotto__Frame *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->who_reply->n_users; i++) {
		if (strcmp(r->who_reply->users[i]->username, name) == 0)
			return r->who_reply->users[i];
	}
	return NULL;
}

/* Seen name from c: the Presence frame. */
static Sotto__Frame *
seen(struct client_conn *c, const char *name)
{
	Sotto__Frame *r = NULL;

	cr_assert_eq(tseen(c, name, &r), 0, "seen %s: %s", name, client_conn_error(c));
	cr_assert_eq(r->body_case, SOTTO__FRAME__BODY_PRESENCE);
	return r;
}

static Sotto__Frame *
who(struct client_conn *c, uint64_t since)
{
	Sotto__Frame *r = NULL;

	cr_assert_eq(twho(c, since, &r), 0, "%s", client_conn_error(c));
	cr_assert_eq(r->body_case, SOTTO__FRAME__BODY_WHO_REPLY);
	return r;
}

/* Wait until Seen name from c says offline (the server notices a hang-up). */
static Sotto__Frame *
seen_offline(struct client_conn *c, const char *name)
{
	int64_t end = tnow_ms() + 5000;
	Sotto__Frame *r;

	for (;;) {
		r = seen(c, name);
		if (!r->presence->online || tnow_ms() > end)
			return r;
		frame_free(r);
		tsleep_ms(20);
	}
}

Test(presence, who_and_seen)
{
	struct client_conn *a, *b, *c;
	const Sotto__Presence *p;
	Sotto__Frame *r = NULL;
	uint64_t now = (uint64_t)time(NULL);

	/* carol was here (registration logs in) and left; dave never existed. */
	a = login(&alice);
	b = login(&bob);
	r = who(a, 0);
	cr_assert_not_null(p = who_find(r, "alice"));
	cr_assert(p->online);
	cr_assert_not_null(p = who_find(r, "bob"));
	cr_assert(p->online);
	cr_assert_eq(p->last_seen, 0);
	cr_assert_null(who_find(r, "carol"), "carol is offline");
	frame_free(r);
	r = who(a, 3600);
	cr_assert_not_null(p = who_find(r, "bob"));
	cr_assert(p->online);
	cr_assert_not_null(p = who_find(r, "carol"), "carol was seen within the hour");
	cr_assert_not(p->online);
	cr_assert_geq(p->last_seen + 120, now);
	cr_assert_leq(p->last_seen, now + 2);
	cr_assert_eq(r->who_reply->n_users, 3);
	frame_free(r);

	r = seen(a, "bob");
	cr_assert_str_eq(r->presence->username, "bob");
	cr_assert(r->presence->online);
	cr_assert_eq(r->presence->last_seen, 0);
	frame_free(r);
	r = seen(a, "CAROL");
	cr_assert_str_eq(r->presence->username, "carol");
	cr_assert_not(r->presence->online);
	cr_assert_gt(r->presence->last_seen, 0);
	frame_free(r);
	cr_assert_eq(tseen(a, "dave", &r), SOTTO_ERR_PERM);
	cr_assert_eq(r->error->code, SOTTO__ERROR_CODE__ERR_NO_SUCH_USER);
	frame_free(r);
	cr_assert_eq(tseen(a, "no such name!", &r), SOTTO_ERR_PERM);
	cr_assert_eq(r->error->code, SOTTO__ERROR_CODE__ERR_BAD_USERNAME);
	frame_free(r);

	/* bob vanishes without a word: he goes offline with a last-seen time. */
	client_conn_abort(b);
	r = seen_offline(a, "bob");
	cr_assert_not(r->presence->online, "bob still shows online");
	cr_assert_geq(r->presence->last_seen, now);
	frame_free(r);
	r = who(a, 0);
	cr_assert_null(who_find(r, "bob"));
	frame_free(r);
	/* And carol coming back shows up at once. */
	c = login(&carol);
	r = seen(a, "carol");
	cr_assert(r->presence->online);
	frame_free(r);
	client_conn_close(a);
	client_conn_close(c);
}

/* Send text from c and check the Ack says what an ordinary offline send says. */
static void
send_blind(struct client_conn *c, const char *to, const char *text)
{
	uint8_t id[16] = {0};
	Sotto__Frame *ack = NULL;

	cr_assert_eq(tsend(c, to, text, id, &ack), 0, "%s", client_conn_error(c));
	cr_assert_eq(ack->body_case, SOTTO__FRAME__BODY_ACK);
	cr_assert(ack->ack->stored, "the blocked sender is told it was stored");
	cr_assert_not(ack->ack->recipient_online);
	cr_assert_eq(ack->ack->last_seen, 0);
	cr_assert_eq(ack->ack->error, 0);
	frame_free(ack);
}

static void
send_ok(struct client_conn *c, const char *to, const char *text, uint8_t id[16])
{
	Sotto__Frame *ack = NULL;

	cr_assert_eq(tsend(c, to, text, id, &ack), 0, "%s", client_conn_error(c));
	cr_assert(ack->ack->stored);
	frame_free(ack);
}

/* The next Deliver on c must be text from sender; it is acknowledged. */
static void
expect(struct client_conn *c, const char *from, const char *text)
{
	Sotto__Frame *d;

	cr_assert_not_null(d = twait(c, SOTTO__FRAME__BODY_DELIVER, 5000), "no \"%s\"", text);
	cr_assert_str_eq(d->deliver->from, from);
	cr_assert_eq(d->deliver->sealed.len, strlen(text), "expected \"%s\", got \"%.*s\"", text,
	        (int)d->deliver->sealed.len, (const char *)d->deliver->sealed.data);
	cr_assert_arr_eq(d->deliver->sealed.data, text, strlen(text));
	cr_assert_eq(tack(c, d->deliver->msg_id.data), 0);
	frame_free(d);
}

/* alice's view of bob while he blocks her: never online, never seen, not listed. */
static void
assert_hidden(struct client_conn *a)
{
	Sotto__Frame *r;

	r = seen(a, "bob");
	cr_assert_not(r->presence->online, "alice sees blocking bob online");
	cr_assert_eq(r->presence->last_seen, 0);
	frame_free(r);
	r = who(a, 0);
	cr_assert_null(who_find(r, "bob"));
	frame_free(r);
	r = who(a, 86400);
	cr_assert_null(who_find(r, "bob"));
	frame_free(r);
}

Test(presence, block_drops_and_hides_then_unblock)
{
	struct client_conn *a, *b, *c;
	Sotto__Frame req, *r = NULL;
	Sotto__ListBlocked lb;
	uint8_t id[16] = {0};

	b = login(&bob);
	a = login(&alice);
	c = login(&carol);
	cr_assert_eq(tblock(b, "Alice", 1), 0, "%s", client_conn_error(b));
	sotto__list_blocked__init(&lb);
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_LIST_BLOCKED;
	req.list_blocked = &lb;
	cr_assert_eq(client_conn_request(b, &req, &r, 0), 0, "%s", client_conn_error(b));
	cr_assert_eq(r->blocked_list->n_usernames, 1);
	cr_assert_str_eq(r->blocked_list->usernames[0], "alice");
	frame_free(r);

	/* bob is online, but alice's Ack says what it says for an absent user. */
	send_blind(a, "bob", "blocked 1");
	assert_hidden(a);
	/* carol's later envelope reaches bob first: alice's was dropped. */
	send_ok(c, "bob", "from carol", id);
	expect(b, "carol", "from carol");
	/* carol still sees bob; bob still sees alice; bob can still write to alice. */
	r = seen(c, "bob");
	cr_assert(r->presence->online);
	frame_free(r);
	r = seen(b, "alice");
	cr_assert(r->presence->online);
	frame_free(r);
	memset(id, 0, sizeof(id));
	send_ok(b, "alice", "bob to alice", id);
	expect(a, "bob", "bob to alice");

	/* While bob is away nothing from alice is queued either. */
	client_conn_close(b);
	send_blind(a, "bob", "blocked 2");
	assert_hidden(a);

	/* The block survives a restart. */
	client_conn_close(a);
	client_conn_close(c);
	cr_assert_eq(testsrv_stop(&srv), 0);
	cr_assert_eq(testsrv_restart(&srv), 0);
	a = login(&alice);
	send_blind(a, "bob", "blocked 3");
	b = login(&bob);
	assert_hidden(a);
	/* Nothing of alice's was queued: carol's envelope is the first bob gets. */
	c = login(&carol);
	memset(id, 0, sizeof(id));
	send_ok(c, "bob", "first after the restart", id);
	expect(b, "carol", "first after the restart");
	client_conn_close(c);

	/* Unblock: presence and delivery come back. */
	cr_assert_eq(tblock(b, "alice", 0), 0, "%s", client_conn_error(b));
	r = seen(a, "bob");
	cr_assert(r->presence->online);
	frame_free(r);
	r = who(a, 0);
	cr_assert_not_null(who_find(r, "bob"));
	frame_free(r);
	memset(id, 0, sizeof(id));
	{
		Sotto__Frame *ack = NULL;

		cr_assert_eq(tsend(a, "bob", "unblocked", id, &ack), 0);
		cr_assert(ack->ack->recipient_online);
		frame_free(ack);
	}
	expect(b, "alice", "unblocked");
	client_conn_close(a);
	client_conn_close(b);
	cr_assert(testsrv_healthy(&srv));
}

Test(presence, block_errors)
{
	struct client_conn *a;

	a = login(&alice);
	cr_assert_eq(tblock(a, "alice", 1), SOTTO_ERR_PERM);
	cr_assert_eq(client_conn_remote(a)->code, SOTTO__ERROR_CODE__ERR_BAD_REQUEST);
	cr_assert_eq(tblock(a, "ALICE", 1), SOTTO_ERR_PERM, "blocking oneself in capitals");
	cr_assert_eq(tblock(a, "nobody", 1), SOTTO_ERR_PERM);
	cr_assert_eq(client_conn_remote(a)->code, SOTTO__ERROR_CODE__ERR_NO_SUCH_USER);
	cr_assert_eq(tblock(a, "bad name", 1), SOTTO_ERR_PERM);
	cr_assert_eq(client_conn_remote(a)->code, SOTTO__ERROR_CODE__ERR_BAD_USERNAME);
	/* Blocking twice and unblocking a stranger are harmless. */
	cr_assert_eq(tblock(a, "bob", 1), 0, "%s", client_conn_error(a));
	cr_assert_eq(tblock(a, "bob", 1), 0, "%s", client_conn_error(a));
	cr_assert_eq(tblock(a, "carol", 0), 0, "%s", client_conn_error(a));
	client_conn_close(a);
	cr_assert(testsrv_healthy(&srv));
}
