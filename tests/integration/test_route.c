/*
 * sottod routing, end to end: real server on loopback, real TLS, real SQLite.
 * Offline queueing and in-order drain, live delivery, duplicate msg_ids
 * (within a window, in the queue, after acknowledgement and across a
 * restart), SendMulti, refused sends, and delivery receipts.
 *
 * Absence is checked with a fence: a later envelope from a sender whose
 * earlier one would have arrived first, so no test waits on a timer to prove
 * that something did not happen.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

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

TestSuite(route, .init = setup, .fini = teardown, .timeout = 60);

static struct client_conn *
login(struct tuser *u)
{
	return tcheck_login(&srv, u);
}

/* Log in and return LoginOk.queued. */
static struct client_conn *
login_queued(struct tuser *u, uint32_t *queued)
{
	struct client_conn *c;
	Sotto__Frame *ok = NULL;
	char err[512];

	cr_assert_not_null(c = tconnect(&srv, 0, err, sizeof(err)), "%s", err);
	cr_assert_eq(client_conn_login(c, u->name, u->id, &ok), 0, "%s", client_conn_error(c));
	*queued = ok->login_ok->queued;
	frame_free(ok);
	return c;
}

/* Send text with id (random if zero) and check the Ack; returns the Ack frame. */
static Sotto__Frame *
send_ok(struct client_conn *c, const char *to, const char *text, uint8_t id[16])
{
	Sotto__Frame *ack = NULL;

	cr_assert_eq(tsend(c, to, text, id, &ack), 0, "send to %s: %s", to, client_conn_error(c));
	cr_assert_eq(ack->body_case, SOTTO__FRAME__BODY_ACK);
	cr_assert(ack->ack->stored);
	cr_assert_arr_eq(ack->ack->msg_id.data, id, 16);
	cr_assert_eq(ack->ack->error, 0);
	return ack;
}

/* The next Deliver, which must carry text from sender. */
static Sotto__Frame *
expect_deliver(struct client_conn *c, const char *from, const char *text)
{
	Sotto__Frame *d;

	cr_assert_not_null(
	        d = twait(c, SOTTO__FRAME__BODY_DELIVER, 5000), "no Deliver of \"%s\"", text);
	cr_assert_str_eq(d->deliver->from, from);
	cr_assert_eq(d->deliver->sealed.len, strlen(text), "expected \"%s\", got %.*s", text,
	        (int)d->deliver->sealed.len, (const char *)d->deliver->sealed.data);
	cr_assert_arr_eq(d->deliver->sealed.data, text, strlen(text));
	return d;
}

/* Send a fence from sender to c's user and require that it is the next Deliver. */
static void
fence(struct client_conn *sender, const char *from, struct client_conn *c, const char *to)
{
	uint8_t id[16] = {0};

	frame_free(send_ok(sender, to, "fence", id));
	frame_free(expect_deliver(c, from, "fence"));
	cr_assert_eq(tack(c, id), 0);
}

/* DeliverAck with a request id: returns once the deletion is committed. */
static void
ack_committed(struct client_conn *c, const uint8_t (*ids)[16], size_t n)
{
	ProtobufCBinaryData b[64];
	Sotto__DeliverAck da;
	Sotto__Frame req, *rep = NULL;
	size_t i;

	cr_assert_leq(n, 64);
	for (i = 0; i < n; i++)
		b[i] = proto_bytes(ids[i], 16);
	sotto__deliver_ack__init(&da);
	da.msg_ids = b;
	da.n_msg_ids = n;
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_DELIVER_ACK;
	req.deliver_ack = &da;
	cr_assert_eq(client_conn_request(c, &req, &rep, 0), 0, "%s", client_conn_error(c));
	cr_assert_eq(rep->body_case, SOTTO__FRAME__BODY_OK);
	frame_free(rep);
}

Test(route, offline_then_delivered_with_receipt)
{
	uint8_t id[16] = {0};
	Sotto__Frame *ack = NULL, *d;
	struct client_conn *a, *b;
	char err[512];

	cr_assert_not_null(a = tlogin(&srv, &alice, err, sizeof(err)), "%s", err);
	cr_assert_eq(tsend(a, "Bob", "hello bob", id, &ack), 0, "%s", client_conn_error(a));
	cr_assert_eq(ack->body_case, SOTTO__FRAME__BODY_ACK);
	cr_assert(ack->ack->stored);
	cr_assert_not(ack->ack->recipient_online);
	cr_assert_gt(ack->ack->last_seen, 0, "bob registered, so he was seen");
	frame_free(ack);

	cr_assert_not_null(b = tlogin(&srv, &bob, err, sizeof(err)), "%s", err);
	cr_assert_not_null(d = twait(b, SOTTO__FRAME__BODY_DELIVER, 5000));
	cr_assert_str_eq(d->deliver->from, "alice");
	cr_assert_eq(d->deliver->sealed.len, strlen("hello bob"));
	cr_assert_arr_eq(d->deliver->sealed.data, "hello bob", strlen("hello bob"));
	cr_assert_arr_eq(d->deliver->msg_id.data, id, 16);
	cr_assert_eq(tack(b, id), 0);
	frame_free(d);

	cr_assert_not_null(
	        d = twait(a, SOTTO__FRAME__BODY_DELIVERED, 5000), "alice gets a delivery receipt");
	cr_assert_eq(d->delivered->n_receipts, 1);
	cr_assert_str_eq(d->delivered->receipts[0]->to, "bob");
	cr_assert_arr_eq(d->delivered->receipts[0]->msg_id.data, id, 16);
	frame_free(d);
	client_conn_close(a);
	client_conn_close(b);
}

Test(route, offline_queue_drains_in_order)
{
	enum { N = 20 };
	uint8_t ids[N][16];
	struct client_conn *a, *b;
	Sotto__Frame *ack, *d;
	char text[32];
	uint32_t queued;
	int64_t t0;
	size_t i;

	memset(ids, 0, sizeof(ids));
	a = login(&alice);
	for (i = 0; i < N; i++) {
		snprintf(text, sizeof(text), "message %zu", i + 1);
		ack = send_ok(a, "bob", text, ids[i]);
		cr_assert_not(ack->ack->recipient_online);
		frame_free(ack);
	}
	b = login_queued(&bob, &queued);
	cr_assert_eq(queued, N, "LoginOk.queued");
	t0 = tnow_ms();
	for (i = 0; i < N; i++) {
		snprintf(text, sizeof(text), "message %zu", i + 1);
		d = expect_deliver(b, "alice", text);
		cr_assert_arr_eq(d->deliver->msg_id.data, ids[i], 16);
		cr_assert_gt(d->deliver->timestamp_ms, 0);
		frame_free(d);
		cr_assert_eq(tack(b, ids[i]), 0);
	}
	cr_assert_lt(tnow_ms() - t0, 3000, "the drain was slow");
	fence(a, "alice", b, "bob");
	client_conn_close(a);
	client_conn_close(b);
	/* All acknowledged: nothing waits at the next login. */
	b = login_queued(&bob, &queued);
	cr_assert_eq(queued, 0, "%u envelopes or receipts still queued", queued);
	client_conn_close(b);
}

Test(route, live_delivery_is_prompt)
{
	uint8_t id[16] = {0};
	struct client_conn *a, *b;
	Sotto__Frame *ack, *d;
	int64_t t0;

	b = login(&bob);
	a = login(&alice);
	t0 = tnow_ms();
	ack = send_ok(a, "bob", "are you there", id);
	cr_assert(ack->ack->recipient_online);
	cr_assert_eq(ack->ack->last_seen, 0, "online, so no last-seen time");
	cr_assert_str_eq(ack->ack->to, "bob");
	frame_free(ack);
	d = expect_deliver(b, "alice", "are you there");
	cr_assert_lt(
	        tnow_ms() - t0, 1000, "live delivery took %lld ms", (long long)(tnow_ms() - t0));
	cr_assert_arr_eq(d->deliver->msg_id.data, id, 16);
	frame_free(d);
	cr_assert_eq(tack(b, id), 0);
	cr_assert_not_null(d = twait(a, SOTTO__FRAME__BODY_DELIVERED, 5000));
	cr_assert_arr_eq(d->delivered->receipts[0]->msg_id.data, id, 16);
	frame_free(d);
	client_conn_close(a);
	client_conn_close(b);
}

Test(route, duplicate_while_offline_stored_once)
{
	uint8_t id[16] = {0};
	struct client_conn *a, *b;
	Sotto__Frame *d;
	uint32_t queued;

	a = login(&alice);
	frame_free(send_ok(a, "bob", "only once", id));
	/* The same id again, now and after the first is surely committed. */
	frame_free(send_ok(a, "bob", "only once", id));
	tsleep_ms(50);
	frame_free(send_ok(a, "BOB", "only once", id));
	b = login_queued(&bob, &queued);
	cr_assert_eq(queued, 1, "stored %u times", queued);
	d = expect_deliver(b, "alice", "only once");
	frame_free(d);
	/* Unacknowledged: the fence comes next, not a second copy. */
	fence(a, "alice", b, "bob");
	cr_assert_eq(tack(b, id), 0);
	client_conn_close(a);
	client_conn_close(b);
}

Test(route, duplicate_while_online_delivered_once)
{
	uint8_t id[16] = {0}, id2[16] = {0};
	struct client_conn *a, *b;

	b = login(&bob);
	a = login(&alice);
	/* Resent before bob acknowledges (the window, then the queue). */
	frame_free(send_ok(a, "bob", "live once", id));
	frame_free(send_ok(a, "bob", "live once", id));
	frame_free(expect_deliver(b, "alice", "live once"));
	tsleep_ms(50);
	frame_free(send_ok(a, "bob", "live once", id));
	fence(a, "alice", b, "bob");
	/* Resent after bob acknowledged it. */
	cr_assert_eq(tack(b, id), 0);
	frame_free(send_ok(a, "bob", "acked once", id2));
	frame_free(expect_deliver(b, "alice", "acked once"));
	cr_assert_eq(tack(b, id2), 0);
	frame_free(send_ok(a, "bob", "acked once", id2));
	fence(a, "alice", b, "bob");
	client_conn_close(a);
	client_conn_close(b);
}

/* Two senders may pick the same id: each envelope reaches bob once, neither in the other's place. */
Test(route, same_id_from_two_senders_both_delivered)
{
	uint8_t id[16];
	struct client_conn *a, *b, *c;
	Sotto__Frame *d;
	int from_alice = 0, from_carol = 0, i;

	sotto_random(id, sizeof(id));
	b = login(&bob);
	a = login(&alice);
	c = login(&carol);
	frame_free(send_ok(a, "bob", "alice's", id));
	frame_free(send_ok(c, "bob", "carol's", id));
	for (i = 0; i < 2; i++) {
		cr_assert_not_null(d = twait(b, SOTTO__FRAME__BODY_DELIVER, 5000), "Deliver %d", i);
		if (strcmp(d->deliver->from, "alice") == 0) {
			cr_assert_arr_eq(d->deliver->sealed.data, "alice's", 7);
			from_alice++;
		} else {
			cr_assert_str_eq(d->deliver->from, "carol");
			cr_assert_arr_eq(d->deliver->sealed.data, "carol's", 7);
			from_carol++;
		}
		cr_assert_arr_eq(d->deliver->msg_id.data, id, 16);
		frame_free(d);
		cr_assert_eq(tack(b, id), 0);
	}
	cr_assert(from_alice == 1 && from_carol == 1, "alice %d, carol %d", from_alice, from_carol);
	/* Nothing more: the next thing from each is its fence. */
	fence(a, "alice", b, "bob");
	fence(c, "carol", b, "bob");
	client_conn_close(a);
	client_conn_close(b);
	client_conn_close(c);
}

/* alice sends (or sends again, same ids) the two envelopes of the restart tests; each is stored. */
static void
send_both(struct client_conn *a, uint8_t queued_id[16], uint8_t acked_id[16])
{
	frame_free(send_ok(a, "bob", "queued before the crash", queued_id));
	frame_free(send_ok(a, "bob", "acked before the crash", acked_id));
}

/*
 * alice sends bob two envelopes; bob receives both but acknowledges only the
 * second (committed) and drops the connection; then sottod is killed with
 * SIGKILL and restarted on the same state.
 */
static void
queued_and_acked_then_crash(uint8_t queued_id[16], uint8_t acked_id[16])
{
	struct client_conn *a, *b;

	a = login(&alice);
	send_both(a, queued_id, acked_id);
	client_conn_close(a);
	b = login(&bob);
	frame_free(expect_deliver(b, "alice", "queued before the crash"));
	frame_free(expect_deliver(b, "alice", "acked before the crash"));
	ack_committed(b, (const uint8_t(*)[16])acked_id, 1);
	client_conn_abort(b);
	testsrv_signal(&srv, SIGKILL);
	cr_assert_eq(testsrv_restart(&srv), 0, "sottod did not restart");
}

Test(route, duplicate_across_restart_stored_once)
{
	uint8_t queued_id[16] = {0}, acked_id[16] = {0};
	struct client_conn *a, *b;
	uint32_t queued;

	queued_and_acked_then_crash(queued_id, acked_id);
	a = login(&alice);
	/* Both resends are acknowledged as stored... */
	send_both(a, queued_id, acked_id);
	/* ...but bob holds one copy of the first and none of the second. */
	b = login_queued(&bob, &queued);
	cr_assert_eq(queued, 1, "%u queued", queued);
	frame_free(expect_deliver(b, "alice", "queued before the crash"));
	fence(a, "alice", b, "bob");
	/* The same again while bob is online: nothing is pushed twice. */
	send_both(a, queued_id, acked_id);
	fence(a, "alice", b, "bob");
	cr_assert_eq(tack(b, queued_id), 0);
	client_conn_close(a);
	client_conn_close(b);
	cr_assert(testsrv_healthy(&srv));
}

/* After a restart, only the store knows these ids: resends to an online bob must not go out. */
Test(route, duplicate_across_restart_while_online)
{
	uint8_t queued_id[16] = {0}, acked_id[16] = {0};
	struct client_conn *a, *b;

	queued_and_acked_then_crash(queued_id, acked_id);
	b = login(&bob);
	frame_free(expect_deliver(b, "alice", "queued before the crash"));
	a = login(&alice);
	send_both(a, queued_id, acked_id);
	fence(a, "alice", b, "bob");
	cr_assert_eq(tack(b, queued_id), 0);
	client_conn_close(a);
	client_conn_close(b);
	cr_assert(testsrv_healthy(&srv));
}

Test(route, refused_sends)
{
	uint8_t id[16] = {0};
	struct client_conn *a;
	Sotto__Frame req, *rep = NULL;
	Sotto__Send s;
	uint8_t short_id[8] = {1};

	a = login(&alice);
	cr_assert_eq(tsend(a, "nobody", "x", id, &rep), SOTTO_ERR_PERM);
	cr_assert_eq(rep->error->code, SOTTO__ERROR_CODE__ERR_NO_SUCH_USER);
	cr_assert_not_null(
	        strstr(client_conn_error(a), "no such user"), "%s", client_conn_error(a));
	frame_free(rep);
	cr_assert_eq(tsend(a, "Bad Name", "x", id, &rep), SOTTO_ERR_PERM);
	cr_assert_eq(rep->error->code, SOTTO__ERROR_CODE__ERR_BAD_USERNAME);
	frame_free(rep);
	cr_assert_eq(tsend(a, "bob", "", id, &rep), SOTTO_ERR_PERM);
	cr_assert_eq(rep->error->code, SOTTO__ERROR_CODE__ERR_BAD_REQUEST);
	frame_free(rep);
	sotto__send__init(&s);
	s.msg_id = proto_bytes(short_id, sizeof(short_id));
	s.to = proto_str("bob");
	s.sealed = proto_bytes("x", 1);
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_SEND;
	req.send = &s;
	cr_assert_eq(client_conn_request(a, &req, &rep, 0), SOTTO_ERR_PERM);
	cr_assert_eq(rep->error->code, SOTTO__ERROR_CODE__ERR_BAD_REQUEST);
	frame_free(rep);
	/* None of it reached bob's queue. */
	client_conn_close(a);
	{
		uint32_t queued;
		struct client_conn *b = login_queued(&bob, &queued);

		cr_assert_eq(queued, 0);
		client_conn_close(b);
	}
}

Test(route, send_multi_with_per_recipient_errors)
{
	static const char *const to[] = {"bob", "carol", "nobody", "Bad Name", "Carol"};
	static const char *const text[] = {
	        "for bob", "for carol", "for nobody", "for bad", "carol again"};
	Sotto__Recipient rcp[5], *rp[5];
	Sotto__SendMulti sm;
	Sotto__Frame req, *rep = NULL, *d;
	uint8_t id[16];
	struct client_conn *a, *b, *c;
	Sotto__Ack *const *acks;
	size_t i;

	b = login(&bob);
	a = login(&alice);
	sotto_random(id, sizeof(id));
	for (i = 0; i < 5; i++) {
		sotto__recipient__init(&rcp[i]);
		rcp[i].to = proto_str(to[i]);
		rcp[i].sealed = proto_bytes(text[i], strlen(text[i]));
		rp[i] = &rcp[i];
	}
	sotto__send_multi__init(&sm);
	sm.msg_id = proto_bytes(id, 16);
	sm.recipients = rp;
	sm.n_recipients = 5;
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_SEND_MULTI;
	req.send_multi = &sm;
	cr_assert_eq(client_conn_request(a, &req, &rep, 0), 0, "%s", client_conn_error(a));
	cr_assert_eq(rep->body_case, SOTTO__FRAME__BODY_ACK_MULTI);
	cr_assert_arr_eq(rep->ack_multi->msg_id.data, id, 16);
	cr_assert_eq(rep->ack_multi->n_acks, 5);
	acks = rep->ack_multi->acks;
	cr_assert_str_eq(acks[0]->to, "bob");
	cr_assert(acks[0]->stored);
	cr_assert(acks[0]->recipient_online);
	cr_assert_eq(acks[0]->error, 0);
	cr_assert_str_eq(acks[1]->to, "carol");
	cr_assert(acks[1]->stored);
	cr_assert_not(acks[1]->recipient_online);
	cr_assert_gt(acks[1]->last_seen, 0);
	cr_assert_eq(acks[2]->error, SOTTO__ERROR_CODE__ERR_NO_SUCH_USER);
	cr_assert_not(acks[2]->stored);
	cr_assert_str_eq(acks[2]->to, "nobody");
	cr_assert_eq(acks[3]->error, SOTTO__ERROR_CODE__ERR_BAD_USERNAME);
	cr_assert_not(acks[3]->stored);
	/* carol twice under one msg_id: the second is the same envelope, stored once. */
	cr_assert_str_eq(acks[4]->to, "carol");
	cr_assert(acks[4]->stored);
	cr_assert_eq(acks[4]->error, 0);
	frame_free(rep);
	d = expect_deliver(b, "alice", "for bob");
	cr_assert_arr_eq(d->deliver->msg_id.data, id, 16);
	frame_free(d);
	cr_assert_eq(tack(b, id), 0);
	{
		uint32_t queued;

		c = login_queued(&carol, &queued);
		cr_assert_eq(queued, 1, "carol has %u queued", queued);
	}
	frame_free(expect_deliver(c, "alice", "for carol"));
	fence(a, "alice", c, "carol");
	cr_assert_eq(tack(c, id), 0);
	client_conn_close(a);
	client_conn_close(b);
	client_conn_close(c);
}

Test(route, receipt_queued_for_offline_sender)
{
	uint8_t id[16] = {0};
	struct client_conn *a, *b;
	Sotto__Frame *d;
	uint32_t queued;

	a = login(&alice);
	frame_free(send_ok(a, "bob", "read me later", id));
	client_conn_close(a);
	b = login(&bob);
	frame_free(expect_deliver(b, "alice", "read me later"));
	ack_committed(b, (const uint8_t(*)[16])id, 1);
	client_conn_close(b);
	/* alice was away when bob acknowledged: the receipt waits for her. */
	a = login_queued(&alice, &queued);
	cr_assert_eq(queued, 1, "alice has %u queued", queued);
	cr_assert_not_null(d = twait(a, SOTTO__FRAME__BODY_DELIVERED, 5000), "no receipt");
	cr_assert_eq(d->delivered->n_receipts, 1);
	cr_assert_str_eq(d->delivered->receipts[0]->to, "bob");
	cr_assert_arr_eq(d->delivered->receipts[0]->msg_id.data, id, 16);
	cr_assert_gt(d->delivered->receipts[0]->timestamp_ms, 0);
	frame_free(d);
	ack_committed(a, (const uint8_t(*)[16])id, 1);
	client_conn_close(a);
	/* Acknowledged receipts are gone. */
	a = login_queued(&alice, &queued);
	cr_assert_eq(queued, 0);
	client_conn_close(a);
}
