/*
 * sottod durability, end to end: every envelope the server acknowledged
 * survives kill -9, reaches its recipient exactly once and in order, and is
 * not delivered again once acknowledged; committed acknowledgements and the
 * receipts they produce survive kill -9 too.
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

#define N 50

static struct testsrv srv;
static struct tuser alice, bob;
static struct tuser *const all_users[] = {&alice, &bob, NULL};
static const char *const user_names[] = {"alice", "bob"};

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

TestSuite(durability, .init = setup, .fini = teardown, .timeout = 60);

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

/*
 * Write n Sends (ids[i], text "envelope i") back to back without waiting,
 * then collect the n Acks: many envelopes land in one commit window.
 */
static void
send_burst(struct client_conn *c, uint8_t (*ids)[16], size_t first, size_t n)
{
	char text[32];
	Sotto__Frame f, *r;
	Sotto__Send s;
	size_t i, got = 0;
	int acked[N];

	for (i = first; i < first + n; i++) {
		sotto_random(ids[i], 16);
		snprintf(text, sizeof(text), "envelope %zu", i);
		sotto__send__init(&s);
		s.msg_id = proto_bytes(ids[i], 16);
		s.to = proto_str("bob");
		s.sealed = proto_bytes(text, strlen(text));
		frame_init(&f, 1000 + i);
		f.body_case = SOTTO__FRAME__BODY_SEND;
		f.send = &s;
		cr_assert_eq(twrite_frame(c, &f), 0, "%s", client_conn_error(c));
	}
	memset(acked, 0, sizeof(acked));
	while (got < n) {
		cr_assert_not_null(
		        r = tnext(c, 10000), "%zu of %zu Acks: %s", got, n, client_conn_error(c));
		if (r->id == 0) {
			frame_free(r);
			continue;
		}
		/* Replies are matched by id: the protocol does not order them. */
		cr_assert_geq(r->id, 1000 + first);
		cr_assert_lt(r->id, 1000 + first + n);
		i = (size_t)r->id - 1000;
		cr_assert_not(acked[i], "request %zu answered twice", i);
		acked[i] = 1;
		cr_assert_eq(r->body_case, SOTTO__FRAME__BODY_ACK, "reply to %zu is not an Ack", i);
		cr_assert(r->ack->stored);
		cr_assert_arr_eq(r->ack->msg_id.data, ids[i], 16);
		frame_free(r);
		got++;
	}
}

/* Send one at a time, each waiting for its Ack. */
static void
send_each(struct client_conn *c, uint8_t (*ids)[16], size_t first, size_t n)
{
	Sotto__Frame *ack = NULL;
	char text[32];
	size_t i;

	for (i = first; i < first + n; i++) {
		memset(ids[i], 0, 16);
		snprintf(text, sizeof(text), "envelope %zu", i);
		cr_assert_eq(tsend(c, "bob", text, ids[i], &ack), 0, "%s", client_conn_error(c));
		cr_assert(ack->ack->stored);
		frame_free(ack);
	}
}

/* Receive envelopes first..first+n-1 in order, each once, with nothing between. */
static void
receive_in_order(struct client_conn *b, uint8_t (*ids)[16], size_t first, size_t n)
{
	char text[32];
	Sotto__Frame *d;
	size_t i;

	for (i = first; i < first + n; i++) {
		snprintf(text, sizeof(text), "envelope %zu", i);
		cr_assert_not_null(d = twait(b, SOTTO__FRAME__BODY_DELIVER, 10000),
		        "envelope %zu never came", i);
		cr_assert_arr_eq(d->deliver->msg_id.data, ids[i], 16,
		        "expected envelope %zu, got \"%.*s\"", i, (int)d->deliver->sealed.len,
		        (const char *)d->deliver->sealed.data);
		cr_assert_eq(d->deliver->sealed.len, strlen(text));
		cr_assert_arr_eq(d->deliver->sealed.data, text, strlen(text));
		frame_free(d);
	}
}

/* DeliverAck ids with a request id; returns once the deletion is committed. */
static void
ack_committed(struct client_conn *c, uint8_t (*ids)[16], size_t first, size_t n)
{
	ProtobufCBinaryData b[N];
	Sotto__DeliverAck da;
	Sotto__Frame req, *rep = NULL;
	size_t i;

	for (i = 0; i < n; i++)
		b[i] = proto_bytes(ids[first + i], 16);
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

/* A last envelope from alice must be the next thing bob gets: nothing was left over. */
static void
fence(struct client_conn *a, struct client_conn *b)
{
	uint8_t id[16] = {0};
	Sotto__Frame *ack = NULL, *d;

	cr_assert_eq(tsend(a, "bob", "fence", id, &ack), 0, "%s", client_conn_error(a));
	frame_free(ack);
	cr_assert_not_null(d = twait(b, SOTTO__FRAME__BODY_DELIVER, 5000));
	cr_assert_eq(d->deliver->sealed.len, 5, "got \"%.*s\" before the fence",
	        (int)d->deliver->sealed.len, (const char *)d->deliver->sealed.data);
	cr_assert_arr_eq(d->deliver->msg_id.data, id, 16);
	frame_free(d);
	cr_assert_eq(tack(b, id), 0);
}

static void
crash_and_restart(void)
{
	pid_t pid = proc_pid(srv.proc);

	testsrv_signal(&srv, SIGKILL);
	cr_assert_eq(kill(pid, 0), -1, "sottod survived SIGKILL");
	cr_assert_eq(testsrv_restart(&srv), 0, "sottod did not restart");
}

Test(durability, kill9_keeps_every_acked_envelope)
{
	uint8_t ids[N][16];
	struct client_conn *a, *b;
	uint32_t queued;

	a = login_queued(&alice, &queued);
	send_each(a, ids, 0, N / 2);
	send_burst(a, ids, N / 2, N - N / 2);
	client_conn_abort(a);
	/* No SIGTERM, no flush: whatever was acknowledged must be on disk already. */
	crash_and_restart();

	b = login_queued(&bob, &queued);
	cr_assert_eq(queued, N, "%u of %d envelopes survived", queued, N);
	receive_in_order(b, ids, 0, N);
	a = login_queued(&alice, &queued);
	fence(a, b);
	ack_committed(b, ids, 0, N);
	client_conn_close(b);
	/* Acknowledged: never again. */
	b = login_queued(&bob, &queued);
	cr_assert_eq(queued, 0, "%u envelopes redelivered", queued);
	fence(a, b);
	client_conn_close(a);
	client_conn_close(b);
	cr_assert(testsrv_healthy(&srv));
}

Test(durability, kill9_keeps_committed_acks_and_receipts)
{
	uint8_t ids[N][16];
	struct client_conn *a, *b;
	Sotto__Frame *d;
	uint32_t queued;
	size_t i, got = 0;

	a = login_queued(&alice, &queued);
	send_burst(a, ids, 0, N);
	client_conn_close(a);
	b = login_queued(&bob, &queued);
	cr_assert_eq(queued, N);
	receive_in_order(b, ids, 0, N);
	/* The first half is acknowledged and committed, the rest not at all. */
	ack_committed(b, ids, 0, N / 2);
	client_conn_abort(b);
	crash_and_restart();

	b = login_queued(&bob, &queued);
	cr_assert_eq(queued, N - N / 2, "%u queued", queued);
	receive_in_order(b, ids, N / 2, N - N / 2);
	a = login_queued(&alice, &queued);
	/* alice was offline: her receipts for the first half waited through the crash. */
	while (got < N / 2) {
		cr_assert_not_null(d = twait(a, SOTTO__FRAME__BODY_DELIVERED, 5000),
		        "%zu of %d receipts", got, N / 2);
		for (i = 0; i < d->delivered->n_receipts; i++, got++) {
			cr_assert_lt(got, N / 2);
			cr_assert_str_eq(d->delivered->receipts[i]->to, "bob");
			cr_assert_arr_eq(d->delivered->receipts[i]->msg_id.data, ids[got], 16,
			        "receipt %zu out of order", got);
		}
		frame_free(d);
	}
	fence(a, b);
	ack_committed(b, ids, N / 2, N - N / 2);
	client_conn_close(b);
	b = login_queued(&bob, &queued);
	cr_assert_eq(queued, 0);
	client_conn_close(a);
	client_conn_close(b);
}

Test(durability, ack_waits_for_the_commit)
{
	const char *flags[] = {"--commit-window-ms", "400", NULL};
	uint8_t ids[N][16];
	struct client_conn *a, *b;
	uint32_t queued;
	int64_t t0;

	/* A long commit window, so a kill right after the Acks lands inside the next one. */
	testsrv_cleanup(&srv);
	cr_assert_eq(testsrv_start(&srv, flags), 0, "sottod did not start");
	tcheck_users_register(&srv, all_users);
	/* The login opens the batch the envelopes join, so the window starts after t0. */
	t0 = tnow_ms();
	a = login_queued(&alice, &queued);
	send_burst(a, ids, 0, N);
	cr_assert_geq(tnow_ms() - t0, 350, "Acks came before the commit window closed");
	client_conn_abort(a);
	crash_and_restart();
	b = login_queued(&bob, &queued);
	cr_assert_eq(queued, N, "%u of %d acknowledged envelopes survived", queued, N);
	receive_in_order(b, ids, 0, N);
	client_conn_close(b);
}

Test(durability, graceful_restart_keeps_queue)
{
	uint8_t ids[N][16];
	struct client_conn *a, *b;
	uint32_t queued;

	a = login_queued(&alice, &queued);
	send_burst(a, ids, 0, 10);
	client_conn_close(a);
	cr_assert_eq(testsrv_stop(&srv), 0);
	cr_assert_eq(testsrv_restart(&srv), 0);
	b = login_queued(&bob, &queued);
	cr_assert_eq(queued, 10);
	receive_in_order(b, ids, 0, 10);
	ack_committed(b, ids, 0, 10);
	client_conn_close(b);
	cr_assert(testsrv_healthy(&srv));
}
