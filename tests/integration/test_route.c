/* sottod routing, end to end: real server on loopback, real TLS, real SQLite. */
#include "config.h"

#include <signal.h>
#include <string.h>

#include <criterion/criterion.h>

#include "crypto/util.h"
#include "tests/lib/testsrv.h"

#ifndef Test
#define Test(s, n) void s##_##n(void)
#define TestSuite(...)
#endif

static struct testsrv srv;
static struct tuser alice, bob;

static void
setup(void)
{
	cr_assert_eq(sotto_crypto_init(), 0);
	cr_assert_eq(testsrv_start(&srv, NULL), 0, "sottod did not start");
	cr_assert_eq(tuser_new(&alice, "alice", IDENTITY_ED25519), 0);
	cr_assert_eq(tuser_new(&bob, "bob", IDENTITY_ED25519), 0);
	cr_assert_eq(tregister(&srv, &alice), 0);
	cr_assert_eq(tregister(&srv, &bob), 0);
}

static void
teardown(void)
{
	testsrv_cleanup(&srv);
	tuser_free(&alice);
	tuser_free(&bob);
}

TestSuite(route, .init = setup, .fini = teardown, .timeout = 60);

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
