/*
 * sottod's limits against hostile or careless clients, end to end: the
 * per-user rate limit, the per-address connection cap and login throttle,
 * prekey bundles, a reader that falls behind, and running out of
 * descriptors.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "crypto/buf.h"
#include "crypto/ecc.h"
#include "crypto/util.h"
#include "src/sigmsg.h"
#include "tests/lib/tcheck.h"

#ifndef Test
#define Test(s, n) void s##_##n(void)
#define TestSuite(...)
#endif

static struct testsrv srv;
static struct tuser alice, bob;
static struct tuser *const all_users[] = {&alice, &bob, NULL};
static const char *const user_names[] = {"alice", "bob"};

static void
start(const char *const *flags)
{
	tcheck_start(&srv, flags);
	tcheck_users_new(all_users, user_names, IDENTITY_ED25519);
	tcheck_users_register(&srv, all_users);
}

static void
teardown(void)
{
	testsrv_cleanup(&srv);
	tcheck_users_free(all_users);
}

TestSuite(limits, .fini = teardown, .timeout = 90);

static int
ping(struct client_conn *c)
{
	Sotto__Frame req, *rep = NULL;
	Sotto__Ping p;
	int r;

	sotto__ping__init(&p);
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_PING;
	req.ping = &p;
	r = client_conn_request(c, &req, &rep, 0);
	frame_free(rep);
	return r;
}

Test(limits, rate_limit_per_user)
{
	const char *flags[] = {"--rate-limit", "5", "--rate-burst", "5", NULL};
	struct client_conn *a;
	char err[512];
	int i, limited = 0, ok = 0;

	start(flags);
	cr_assert_not_null(a = tlogin(&srv, &alice, err, sizeof(err)), "%s", err);
	for (i = 0; i < 30; i++) {
		if (ping(a) == 0) {
			ok++;
			continue;
		}
		cr_assert_eq(client_conn_remote(a)->code, SOTTO__ERROR_CODE__ERR_RATE_LIMITED);
		cr_assert_eq(client_conn_remote(a)->retry_after, 1);
		cr_assert_not_null(strstr(client_conn_error(a), "sending requests too fast"), "%s",
		        client_conn_error(a));
		limited++;
	}
	cr_assert_geq(ok, 5, "the burst is allowed");
	cr_assert_geq(limited, 20, "only %d of 30 requests were limited", limited);
	tsleep_ms(1200);
	cr_assert_eq(ping(a), 0, "the bucket refills: %s", client_conn_error(a));
	client_conn_close(a);
	cr_assert(testsrv_healthy(&srv));
}

Test(limits, connections_per_address)
{
	const char *flags[] = {"--max-conns-per-addr", "2", NULL};
	struct client_conn *c1, *c2, *c3 = NULL;
	char err[512];
	int i;

	start(flags);
	cr_assert_not_null(c1 = tconnect(&srv, 0, err, sizeof(err)), "%s", err);
	cr_assert_not_null(c2 = tconnect(&srv, 0, err, sizeof(err)), "%s", err);
	cr_assert_null(c3 = tconnect(&srv, 0, err, sizeof(err)), "a third connection is refused");
	cr_assert(testsrv_log_has(&srv, "connections from this address already"));
	/* IPv6 loopback is another address, with its own allowance. */
	cr_assert_not_null(c3 = tconnect(&srv, 1, err, sizeof(err)), "%s", err);
	client_conn_close(c3);
	client_conn_close(c1);
	/* Once the server has seen the close, a new connection fits again. */
	for (i = 0, c3 = NULL; i < 50 && c3 == NULL; i++) {
		tsleep_ms(50);
		c3 = tconnect(&srv, 0, err, sizeof(err));
	}
	cr_assert_not_null(c3, "%s", err);
	client_conn_close(c2);
	client_conn_close(c3);
	cr_assert(testsrv_healthy(&srv));
}

Test(limits, failed_logins_throttled_per_address)
{
	const char *flags[] = {"--auth-throttle", "3", NULL};
	struct client_conn *c;
	char err[512];
	int i;

	start(flags);
	cr_assert_not_null(c = tconnect(&srv, 0, err, sizeof(err)), "%s", err);
	for (i = 0; i < 3; i++) {
		cr_assert_eq(client_conn_login(c, "nobody", alice.id, NULL), SOTTO_ERR_PERM);
		cr_assert_eq(client_conn_remote(c)->code, SOTTO__ERROR_CODE__ERR_NO_SUCH_USER);
	}
	/* Even the right key for a real user waits now, from this address. */
	cr_assert_eq(client_conn_login(c, "alice", alice.id, NULL), SOTTO_ERR_PERM);
	cr_assert_eq(client_conn_remote(c)->code, SOTTO__ERROR_CODE__ERR_THROTTLED);
	cr_assert_gt(client_conn_remote(c)->retry_after, 0);
	cr_assert_leq(client_conn_remote(c)->retry_after, 60);
	client_conn_abort(c);
	/* Another address is not throttled. */
	cr_assert_not_null(c = tconnect(&srv, 1, err, sizeof(err)), "%s", err);
	cr_assert_eq(client_conn_login(c, "alice", alice.id, NULL), 0, "%s", client_conn_error(c));
	client_conn_close(c);
}

static int
get_bundle(struct client_conn *c, const char *who, Sotto__Frame **rep)
{
	Sotto__Frame req;
	Sotto__GetBundle gb;

	sotto__get_bundle__init(&gb);
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_GET_BUNDLE;
	req.get_bundle = &gb;
	gb.username = proto_str(who);
	return client_conn_request(c, &req, rep, 0);
}

/* UploadPrekeys with n one-time prekeys from first_id, and a signed prekey if spk_id. */
static int
upload(struct client_conn *c, struct tuser *u, uint32_t first_id, size_t n, uint32_t spk_id,
        int bad_sig, Sotto__Frame **rep)
{
	Sotto__Frame req;
	Sotto__UploadPrekeys up;
	Sotto__SignedPrekey spk;
	Sotto__OneTimePrekey otk[8], *otkp[8];
	uint8_t pub[8][32], sec[32], spub[32], sig[IDENTITY_SIG_MAX];
	size_t i, siglen = 0;
	struct buf m;
	int r;

	cr_assert_leq(n, 8);
	sotto__upload_prekeys__init(&up);
	for (i = 0; i < n; i++) {
		x25519_keypair(pub[i], sec);
		sotto__one_time_prekey__init(&otk[i]);
		otk[i].id = first_id + (uint32_t)i;
		otk[i].public_key = proto_bytes(pub[i], 32);
		otkp[i] = &otk[i];
	}
	up.otks = otkp;
	up.n_otks = n;
	if (spk_id != 0) {
		x25519_keypair(spub, sec);
		buf_init(&m, 0);
		cr_assert_eq(sigmsg_spk(&m, spk_id, spub, 2000), 0);
		cr_assert_eq(
		        identity_sign(sig, sizeof(sig), &siglen, u->id, buf_ptr(&m), buf_len(&m)),
		        0);
		buf_free(&m);
		if (bad_sig)
			sig[0] ^= 1;
		sotto__signed_prekey__init(&spk);
		spk.id = spk_id;
		spk.public_key = proto_bytes(spub, 32);
		spk.signature = proto_bytes(sig, siglen);
		spk.created = 2000;
		up.spk = &spk;
	}
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_UPLOAD_PREKEYS;
	req.upload_prekeys = &up;
	r = client_conn_request(c, &req, rep, 0);
	return r;
}

Test(limits, bundles_consume_one_time_prekeys)
{
	struct client_conn *a, *b;
	Sotto__Frame *rep = NULL;
	uint32_t seen[5];
	char err[512];
	int i, j;

	start(NULL);
	cr_assert_not_null(a = tlogin(&srv, &alice, err, sizeof(err)), "%s", err);
	/* tregister gave bob one-time prekeys 100..104 and signed prekey 1. */
	for (i = 0; i < 5; i++) {
		cr_assert_eq(get_bundle(a, "Bob", &rep), 0, "%s", client_conn_error(a));
		cr_assert_eq(rep->body_case, SOTTO__FRAME__BODY_BUNDLE);
		cr_assert_str_eq(rep->bundle->username, "bob");
		cr_assert_eq(rep->bundle->spk->id, 1);
		cr_assert_not_null(rep->bundle->otk, "bundle %d has a one-time prekey", i);
		seen[i] = rep->bundle->otk->id;
		cr_assert(seen[i] >= 100 && seen[i] <= 104);
		for (j = 0; j < i; j++)
			cr_assert_neq(
			        seen[i], seen[j], "one-time prekey %u handed out twice", seen[i]);
		frame_free(rep);
	}
	cr_assert_eq(get_bundle(a, "bob", &rep), 0);
	cr_assert_null(rep->bundle->otk, "exhausted: the bundle has no one-time prekey");
	frame_free(rep);
	cr_assert_eq(get_bundle(a, "nobody", &rep), SOTTO_ERR_PERM);
	cr_assert_eq(client_conn_remote(a)->code, SOTTO__ERROR_CODE__ERR_NO_SUCH_USER);
	frame_free(rep);

	/* Bob tops up; a bad signed prekey is refused and changes nothing. */
	cr_assert_not_null(b = tlogin(&srv, &bob, err, sizeof(err)), "%s", err);
	cr_assert_eq(upload(b, &bob, 200, 3, 0, 0, &rep), 0, "%s", client_conn_error(b));
	cr_assert_eq(rep->prekeys_ok->otk_remaining, 3);
	frame_free(rep);
	cr_assert_eq(upload(b, &bob, 300, 2, 7, 1, &rep), SOTTO_ERR_PERM);
	cr_assert_eq(client_conn_remote(b)->code, SOTTO__ERROR_CODE__ERR_BAD_SIGNATURE);
	frame_free(rep);
	cr_assert_eq(get_bundle(a, "bob", &rep), 0);
	cr_assert_eq(rep->bundle->spk->id, 1, "the refused signed prekey did not replace it");
	cr_assert_not_null(rep->bundle->otk);
	cr_assert(rep->bundle->otk->id >= 200 && rep->bundle->otk->id <= 202,
	        "the refused one-time prekeys were not added: got %u", rep->bundle->otk->id);
	frame_free(rep);
	/* A good rotation takes effect. */
	cr_assert_eq(upload(b, &bob, 0, 0, 7, 0, &rep), 0, "%s", client_conn_error(b));
	cr_assert_eq(rep->prekeys_ok->otk_remaining, 2);
	frame_free(rep);
	cr_assert_eq(get_bundle(a, "bob", &rep), 0);
	cr_assert_eq(rep->bundle->spk->id, 7);
	frame_free(rep);
	client_conn_close(a);
	client_conn_close(b);
	cr_assert(testsrv_healthy(&srv));
}

/* A reader that stops reading costs the server its high-water mark, and loses nothing. */
Test(limits, slow_reader_gets_everything_in_order)
{
	const char *flags[] = {"--output-high-water", "65536", "--commit-window-ms", "0",
	        "--rate-limit", "100000", "--rate-burst", "100000", NULL};
	/*
	 * 12 MB, three times what the kernel may buffer for a socket that is
	 * not read (tcp_wmem's 4 MiB ceiling plus the receive window): with
	 * 4 MB the sockets sometimes took it all and the server never had to
	 * hold anything back.
	 */
	enum { N = 2000, LEN = 6000 };
	struct client_conn *a, *b;
	Sotto__Frame *ack, *d;
	uint8_t id[16];
	char err[512], *text;
	int i, n;

	start(flags);
	cr_assert_not_null(text = malloc(LEN + 1));
	cr_assert_not_null(b = tlogin(&srv, &bob, err, sizeof(err)), "%s", err);
	cr_assert_not_null(a = tlogin(&srv, &alice, err, sizeof(err)), "%s", err);
	/* For bob, who does not read: past the 64 KiB mark and the socket buffers. */
	for (i = 0; i < N; i++) {
		memset(text, 'x', LEN);
		text[LEN] = '\0';
		n = snprintf(text, LEN, "m%04d", i);
		text[n] = 'x';
		memset(id, 0, sizeof(id));
		cr_assert_eq(
		        tsend(a, "bob", text, id, &ack), 0, "send %d: %s", i, client_conn_error(a));
		cr_assert(ack->ack->stored);
		frame_free(ack);
	}
	cr_assert(testsrv_log_has(&srv, "bob is reading slowly; queueing"),
	        "the server never held back live traffic");
	for (i = 0; i < N; i++) {
		char want[8];

		cr_assert_not_null(d = twait(b, SOTTO__FRAME__BODY_DELIVER, 10000),
		        "message %d never arrived", i);
		snprintf(want, sizeof(want), "m%04d", i);
		cr_assert_eq(d->deliver->sealed.len, LEN);
		cr_assert_arr_eq(d->deliver->sealed.data, want, 5, "message %d out of order", i);
		cr_assert_eq(tack(b, d->deliver->msg_id.data), 0);
		frame_free(d);
	}
	/* Nothing more: a fence message is next. */
	memset(id, 0, sizeof(id));
	cr_assert_eq(tsend(a, "bob", "fence", id, &ack), 0);
	frame_free(ack);
	cr_assert_not_null(d = twait(b, SOTTO__FRAME__BODY_DELIVER, 5000));
	cr_assert_eq(d->deliver->sealed.len, 5);
	cr_assert_arr_eq(d->deliver->sealed.data, "fence", 5, "a duplicate came before the fence");
	frame_free(d);
	free(text);
	client_conn_close(a);
	client_conn_close(b);
	cr_assert(testsrv_healthy(&srv));
}

/* Out of descriptors, the server pauses accepting instead of spinning, then recovers. */
Test(limits, emfile_backoff)
{
	enum { MAXFD = 48 };
	int fds[MAXFD], i, n = 0;
	struct client_conn *c = NULL;
	char err[512];

	start(NULL);
	cr_assert_eq(testsrv_stop(&srv), 0);
	srv.nofile = 40;
	cr_assert_eq(testsrv_restart(&srv), 0);
	for (i = 0; i < MAXFD; i++) {
		if ((fds[n] = tconnect_tcp(&srv, 0)) >= 0)
			n++;
	}
	for (i = 0; i < 100 && !testsrv_log_has(&srv, "pausing new connections"); i++)
		tsleep_ms(50);
	cr_assert(testsrv_log_has(&srv, "pausing new connections"),
	        "the server never ran out of descriptors with %d connections", n);
	for (i = 0; i < n; i++)
		close(fds[i]);
	for (i = 0; i < 60 && c == NULL; i++) {
		tsleep_ms(100);
		c = tlogin(&srv, &alice, err, sizeof(err));
	}
	cr_assert_not_null(c, "no recovery: %s", err);
	client_conn_close(c);
	cr_assert(testsrv_healthy(&srv));
}
