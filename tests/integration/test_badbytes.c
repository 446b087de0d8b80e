/*
 * sottod against hostile bytes: oversized length fields before and after
 * login, truncated frames, bytes that are not protobuf, requests out of
 * order, unknown message types, bad usernames, plain TCP and plain HTTP,
 * garbage under TLS, id 0 on a request, and lists past their caps.  After
 * each, the bad client has an Error or Closing frame or a closed socket, and
 * the server still serves everyone else: it is alive, a fresh alice -> bob
 * envelope still arrives, and its log holds no error.
 */
#include "config.h"

#include <sys/socket.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
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
static struct tuser alice, bob, mallory;
static struct tuser *const all_users[] = {&alice, &bob, &mallory, NULL};
static const char *const user_names[] = {"alice", "bob", "mallory"};

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

TestSuite(badbytes, .init = setup, .fini = teardown, .timeout = 60);

/* The server is alive, its log is clean, and alice can still reach bob. */
static void
assert_still_serving(void)
{
	struct client_conn *a, *b;
	uint8_t id[16] = {0};
	Sotto__Frame *ack = NULL, *d;
	char err[512];

	cr_assert(testsrv_alive(&srv), "sottod died");
	cr_assert_not_null(b = tlogin(&srv, &bob, err, sizeof(err)), "%s", err);
	cr_assert_not_null(a = tlogin(&srv, &alice, err, sizeof(err)), "%s", err);
	cr_assert_eq(tsend(a, "bob", "still here", id, &ack), 0, "%s", client_conn_error(a));
	cr_assert(ack->ack->recipient_online);
	frame_free(ack);
	cr_assert_not_null(d = twait(b, SOTTO__FRAME__BODY_DELIVER, 5000));
	cr_assert_arr_eq(d->deliver->sealed.data, "still here", 10);
	cr_assert_eq(tack(b, id), 0);
	frame_free(d);
	client_conn_close(a);
	client_conn_close(b);
	cr_assert(testsrv_healthy(&srv), "sottod logged an error or a sanitizer report");
}

static struct client_conn *
mallory_tls(int hello)
{
	struct client_conn *c;
	char err[512];

	if (hello)
		c = tconnect(&srv, 0, err, sizeof(err));
	else
		c = tconnect_tls(&srv, 0, err, sizeof(err));
	cr_assert_not_null(c, "%s", err);
	return c;
}

static struct client_conn *
mallory_login(void)
{
	struct client_conn *c;
	char err[512];

	cr_assert_not_null(c = tlogin(&srv, &mallory, err, sizeof(err)), "%s", err);
	return c;
}

/*
 * What the server says before hanging up on a bad frame: an Error with code
 * and id 0, then Closing with code; then the socket closes.
 */
static void
expect_refusal(struct client_conn *c, uint32_t code)
{
	Sotto__Frame *f;

	cr_assert_not_null(f = tnext(c, 5000), "no Error: %s", client_conn_error(c));
	cr_assert_eq(f->body_case, SOTTO__FRAME__BODY_ERROR, "got %s", frame_body_name(f));
	cr_assert_eq(f->id, 0);
	cr_assert_eq(f->error->code, code, "got %s", proto_error_name(f->error->code));
	frame_free(f);
	cr_assert_not_null(f = tnext(c, 5000), "no Closing: %s", client_conn_error(c));
	cr_assert_eq(f->body_case, SOTTO__FRAME__BODY_CLOSING, "got %s", frame_body_name(f));
	cr_assert_eq(f->closing->code, code, "got %s", proto_error_name(f->closing->code));
	frame_free(f);
	cr_assert_eq(twait_closed(c, 5000), 0, "the connection stayed open");
}

static void
write_raw(struct client_conn *c, const void *p, size_t n)
{
	cr_assert_eq(client_conn_write_raw(c, p, n), 0, "%s", client_conn_error(c));
}

Test(badbytes, huge_length_before_hello)
{
	static const uint8_t hdr[4] = {0x7f, 0xff, 0xff, 0xff};
	struct client_conn *c = mallory_tls(0);

	write_raw(c, hdr, sizeof(hdr));
	expect_refusal(c, SOTTO__ERROR_CODE__ERR_TOO_LARGE);
	client_conn_abort(c);
	assert_still_serving();
}

Test(badbytes, huge_length_before_login)
{
	static const uint8_t hdr[4] = {0x7f, 0xff, 0xff, 0xff};
	struct client_conn *c = mallory_tls(1);

	write_raw(c, hdr, sizeof(hdr));
	expect_refusal(c, SOTTO__ERROR_CODE__ERR_TOO_LARGE);
	/* The client's own words for it. */
	cr_assert_not_null(strstr(client_conn_error(c), "larger than the server accepts"), "%s",
	        client_conn_error(c));
	client_conn_abort(c);
	assert_still_serving();
}

Test(badbytes, frame_over_preauth_cap)
{
	/* 70,000 bytes: under max_frame, over the 64 KiB allowed before login. */
	static const uint8_t hdr[4] = {0x00, 0x01, 0x11, 0x70};
	struct client_conn *c = mallory_tls(1);
	uint8_t *junk = calloc(1, 70000);
	int r;

	cr_assert_not_null(junk);
	write_raw(c, hdr, sizeof(hdr));
	/* The rest may or may not be accepted by the socket before the server hangs up. */
	r = client_conn_write_raw(c, junk, 70000);
	cr_assert(r == 0 || r == SOTTO_ERR_IO || r == SOTTO_ERR_CLOSED, "%s", client_conn_error(c));
	free(junk);
	expect_refusal(c, SOTTO__ERROR_CODE__ERR_TOO_LARGE);
	client_conn_abort(c);
	assert_still_serving();
}

Test(badbytes, frame_over_max_frame_after_login)
{
	struct client_conn *c = mallory_login();
	uint32_t cap = client_conn_max_frame(c) + 1;
	uint8_t hdr[4] = {
	        (uint8_t)(cap >> 24), (uint8_t)(cap >> 16), (uint8_t)(cap >> 8), (uint8_t)cap};

	write_raw(c, hdr, sizeof(hdr));
	write_raw(c, "0123456789", 10);
	expect_refusal(c, SOTTO__ERROR_CODE__ERR_TOO_LARGE);
	client_conn_abort(c);
	assert_still_serving();
}

Test(badbytes, large_envelope_within_max_frame_is_fine)
{
	struct client_conn *c = mallory_login(), *b;
	size_t len = client_conn_max_frame(c) - 200;
	uint8_t id[16] = {0};
	Sotto__Frame req, *ack = NULL, *d;
	Sotto__Send s;
	uint8_t *big = malloc(len);
	char err[512];

	cr_assert_not_null(big);
	memset(big, 'x', len);
	cr_assert_not_null(b = tlogin(&srv, &bob, err, sizeof(err)), "%s", err);
	sotto_random(id, 16);
	sotto__send__init(&s);
	s.msg_id = proto_bytes(id, 16);
	s.to = proto_str("bob");
	s.sealed = proto_bytes(big, len);
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_SEND;
	req.send = &s;
	cr_assert_eq(client_conn_request(c, &req, &ack, 0), 0, "%s", client_conn_error(c));
	cr_assert(ack->ack->stored);
	frame_free(ack);
	cr_assert_not_null(
	        d = twait(b, SOTTO__FRAME__BODY_DELIVER, 10000), "%s", client_conn_error(b));
	cr_assert_eq(d->deliver->sealed.len, len);
	cr_assert_arr_eq(d->deliver->sealed.data, big, len);
	cr_assert_eq(tack(b, id), 0);
	frame_free(d);
	free(big);
	client_conn_close(b);
	client_conn_close(c);
	assert_still_serving();
}

Test(badbytes, truncated_frame_then_disconnect)
{
	static const uint8_t part[] = {0x00, 0x00, 0x03, 0xe8, 0x08, 0x01, 0x52};
	struct client_conn *c = mallory_tls(1), *d;
	Sotto__Frame *f;

	write_raw(c, part, sizeof(part));
	client_conn_abort(c);
	/* And after login, a frame cut short by a hang-up mid-write. */
	d = mallory_login();
	write_raw(d, part, sizeof(part));
	/* The server waits for the rest rather than answering half a frame. */
	f = tnext(d, 300);
	cr_assert_null(f, "answered a partial frame with %s", frame_body_name(f));
	client_conn_abort(d);
	assert_still_serving();
	cr_assert(testsrv_log_has(&srv, "closed for mallory"), "the server noticed the hang-up");
}

Test(badbytes, not_protobuf)
{
	uint8_t junk[4 + 64];
	struct client_conn *c = mallory_login();

	junk[0] = 0;
	junk[1] = 0;
	junk[2] = 0;
	junk[3] = 64;
	memset(junk + 4, 0xff, 64);
	write_raw(c, junk, sizeof(junk));
	expect_refusal(c, SOTTO__ERROR_CODE__ERR_PROTOCOL);
	cr_assert_not_null(strstr(client_conn_error(c), "broke the sotto protocol"), "%s",
	        client_conn_error(c));
	client_conn_abort(c);
	/* Before login too, with a field whose length runs past the frame. */
	c = mallory_tls(1);
	write_raw(c, "\x00\x00\x00\x04\x52\x7f\x01\x02", 8);
	expect_refusal(c, SOTTO__ERROR_CODE__ERR_PROTOCOL);
	client_conn_abort(c);
	assert_still_serving();
}

/* Write frame f with its id as is, and return the reply carrying that id. */
static Sotto__Frame *
raw_request(struct client_conn *c, const Sotto__Frame *f)
{
	Sotto__Frame *r;

	cr_assert_eq(twrite_frame(c, f), 0, "%s", client_conn_error(c));
	for (;;) {
		cr_assert_not_null(r = tnext(c, 5000), "no reply to request %llu: %s",
		        (unsigned long long)f->id, client_conn_error(c));
		if (r->id == f->id)
			return r;
		frame_free(r);
	}
}

Test(badbytes, requests_before_login)
{
	struct client_conn *c = mallory_tls(1);
	uint8_t id[16] = {0};
	Sotto__Frame req, *r = NULL;
	Sotto__Who who;
	Sotto__GetBundle gb;

	cr_assert_eq(tsend(c, "bob", "sneaky", id, &r), SOTTO_ERR_PERM);
	cr_assert_eq(r->error->code, SOTTO__ERROR_CODE__ERR_NOT_AUTHENTICATED);
	cr_assert_not_null(
	        strstr(client_conn_error(c), "log in first"), "%s", client_conn_error(c));
	frame_free(r);
	sotto__who__init(&who);
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_WHO;
	req.who = &who;
	cr_assert_eq(client_conn_request(c, &req, &r, 0), SOTTO_ERR_PERM);
	cr_assert_eq(r->error->code, SOTTO__ERROR_CODE__ERR_NOT_AUTHENTICATED);
	frame_free(r);
	sotto__get_bundle__init(&gb);
	gb.username = proto_str("bob");
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_GET_BUNDLE;
	req.get_bundle = &gb;
	cr_assert_eq(client_conn_request(c, &req, &r, 0), SOTTO_ERR_PERM);
	cr_assert_eq(r->error->code, SOTTO__ERROR_CODE__ERR_NOT_AUTHENTICATED);
	frame_free(r);
	/* A DeliverAck notification before login is dropped without a reply. */
	cr_assert_eq(tack(c, id), 0);
	{
		Sotto__Ping ping;

		sotto__ping__init(&ping);
		frame_init(&req, 900);
		req.body_case = SOTTO__FRAME__BODY_PING;
		req.ping = &ping;
		cr_assert_eq(twrite_frame(c, &req), 0);
		cr_assert_not_null(r = tnext(c, 5000), "%s", client_conn_error(c));
		cr_assert_eq(r->body_case, SOTTO__FRAME__BODY_PONG, "a notification got %s",
		        frame_body_name(r));
		cr_assert_eq(r->id, 900);
		frame_free(r);
	}
	/* The connection is still good for logging in, and nothing reached bob. */
	cr_assert_eq(
	        client_conn_login(c, "mallory", mallory.id, NULL), 0, "%s", client_conn_error(c));
	client_conn_close(c);
	{
		struct client_conn *b;
		Sotto__Frame *ok = NULL;
		char err[512];

		cr_assert_not_null(b = tconnect(&srv, 0, err, sizeof(err)), "%s", err);
		cr_assert_eq(client_conn_login(b, "bob", bob.id, &ok), 0);
		cr_assert_eq(ok->login_ok->queued, 0);
		frame_free(ok);
		client_conn_close(b);
	}
	assert_still_serving();
}

Test(badbytes, unknown_message_types)
{
	/* Frame{id 42, field 200 (not in the oneof): empty message}. */
	static const uint8_t unknown[] = {0x00, 0x00, 0x00, 0x05, 0x08, 0x2a, 0xc2, 0x0c, 0x00};
	/* Frame{id 44} with no body at all. */
	static const uint8_t empty[] = {0x00, 0x00, 0x00, 0x02, 0x08, 0x2c};
	struct client_conn *c = mallory_login();
	Sotto__Frame req, *r;
	Sotto__Ack ack;

	write_raw(c, unknown, sizeof(unknown));
	cr_assert_not_null(r = tnext(c, 5000), "%s", client_conn_error(c));
	cr_assert_eq(r->id, 42);
	cr_assert_eq(r->body_case, SOTTO__FRAME__BODY_ERROR);
	cr_assert_eq(r->error->code, SOTTO__ERROR_CODE__ERR_UNKNOWN_TYPE);
	frame_free(r);
	write_raw(c, empty, sizeof(empty));
	cr_assert_not_null(r = tnext(c, 5000), "%s", client_conn_error(c));
	cr_assert_eq(r->id, 44);
	cr_assert_eq(r->error->code, SOTTO__ERROR_CODE__ERR_UNKNOWN_TYPE);
	frame_free(r);
	/* A message only the server sends. */
	sotto__ack__init(&ack);
	frame_init(&req, 43);
	req.body_case = SOTTO__FRAME__BODY_ACK;
	req.ack = &ack;
	r = raw_request(c, &req);
	cr_assert_eq(r->body_case, SOTTO__FRAME__BODY_ERROR);
	cr_assert_eq(r->error->code, SOTTO__ERROR_CODE__ERR_UNKNOWN_TYPE);
	frame_free(r);
	/* The session goes on. */
	cr_assert_eq(twho(c, 0, &r), 0, "%s", client_conn_error(c));
	frame_free(r);
	client_conn_close(c);
	/* The same before Hello and before login. */
	c = mallory_tls(0);
	write_raw(c, unknown, sizeof(unknown));
	cr_assert_not_null(r = tnext(c, 5000), "%s", client_conn_error(c));
	cr_assert_eq(r->id, 42);
	cr_assert_eq(r->error->code, SOTTO__ERROR_CODE__ERR_UNKNOWN_TYPE);
	frame_free(r);
	client_conn_abort(c);
	assert_still_serving();
}

Test(badbytes, bad_usernames_in_requests)
{
	static const char *const bad[] = {
	        "", "../../etc/passwd", "bob\x01", "b o b", "bobbobbobbobbobbobbobbobbobbobbob"};
	struct client_conn *c = mallory_login();
	uint8_t id[16] = {0};
	Sotto__Frame req, *r;
	Sotto__GetBundle gb;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(id, 0, sizeof(id));
		cr_assert_eq(tsend(c, bad[i], "x", id, &r), SOTTO_ERR_PERM);
		cr_assert_eq(r->error->code, SOTTO__ERROR_CODE__ERR_BAD_USERNAME, "Send to \"%s\"",
		        bad[i]);
		frame_free(r);
		cr_assert_eq(tseen(c, bad[i], &r), SOTTO_ERR_PERM);
		cr_assert_eq(r->error->code, SOTTO__ERROR_CODE__ERR_BAD_USERNAME);
		frame_free(r);
		cr_assert_eq(tblock(c, bad[i], 1), SOTTO_ERR_PERM);
		cr_assert_eq(client_conn_remote(c)->code, SOTTO__ERROR_CODE__ERR_BAD_USERNAME);
		sotto__get_bundle__init(&gb);
		gb.username = proto_str(bad[i]);
		frame_init(&req, 0);
		req.body_case = SOTTO__FRAME__BODY_GET_BUNDLE;
		req.get_bundle = &gb;
		cr_assert_eq(client_conn_request(c, &req, &r, 0), SOTTO_ERR_PERM);
		cr_assert_eq(r->error->code, SOTTO__ERROR_CODE__ERR_BAD_USERNAME);
		frame_free(r);
	}
	client_conn_close(c);
	assert_still_serving();
}

Test(badbytes, plain_tcp_http_request)
{
	static const char get[] = "GET / HTTP/1.0\r\n\r\n";
	int fd;

	cr_assert_geq(fd = tconnect_tcp(&srv, 0), 0);
	cr_assert_eq(send(fd, get, sizeof(get) - 1, MSG_NOSIGNAL), (ssize_t)(sizeof(get) - 1));
	cr_assert_eq(tfd_wait_closed(fd, 5000), 0, "an HTTP client was left connected");
	close(fd);
	/* And over IPv6, with bytes that are not even text. */
	cr_assert_geq(fd = tconnect_tcp(&srv, 1), 0);
	cr_assert_eq(send(fd, "\x00\xff\x16\x03\x01\x00\x00", 7, MSG_NOSIGNAL), 7);
	cr_assert_eq(tfd_wait_closed(fd, 5000), 0);
	close(fd);
	assert_still_serving();
}

Test(badbytes, garbage_under_tls)
{
	static const uint8_t junk[] = {0x17, 0x03, 0x03, 0x00, 0x20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
	        11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
	        32};
	struct client_conn *c = mallory_login();
	int fd = client_conn_fd(c);

	/* A forged TLS record on the socket, past the TLS layer. */
	cr_assert_eq(send(fd, junk, sizeof(junk), MSG_NOSIGNAL), (ssize_t)sizeof(junk));
	cr_assert_eq(tfd_wait_closed(fd, 5000), 0, "a broken TLS stream was left open");
	client_conn_abort(c);
	assert_still_serving();
}

Test(badbytes, id_zero_request)
{
	struct client_conn *c = mallory_login();
	Sotto__Frame req, *r;
	Sotto__Who who;

	/* DeliverAck may be a notification: no reply, and the session goes on. */
	cr_assert_eq(tack(c, (const uint8_t *)"0123456789abcdef"), 0);
	cr_assert_eq(twho(c, 0, &r), 0, "%s", client_conn_error(c));
	frame_free(r);
	/* Any other request with id 0 ends the session. */
	sotto__who__init(&who);
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_WHO;
	req.who = &who;
	cr_assert_eq(client_conn_notify(c, &req), 0);
	cr_assert_not_null(r = tnext(c, 5000), "%s", client_conn_error(c));
	cr_assert_eq(r->body_case, SOTTO__FRAME__BODY_CLOSING, "got %s", frame_body_name(r));
	cr_assert_eq(r->closing->code, SOTTO__ERROR_CODE__ERR_PROTOCOL);
	frame_free(r);
	cr_assert_eq(twait_closed(c, 5000), 0);
	client_conn_abort(c);
	assert_still_serving();
}

Test(badbytes, lists_past_their_caps)
{
	enum { MANY = 1025 };
	static uint8_t ids[MANY][16];
	static ProtobufCBinaryData b[MANY];
	static Sotto__Recipient rcp[MANY], *rp[MANY];
	struct client_conn *c = mallory_login();
	Sotto__Frame req, *r;
	Sotto__DeliverAck da;
	Sotto__SendMulti sm;
	uint8_t id[16];
	size_t i;

	for (i = 0; i < MANY; i++) {
		sotto_random(ids[i], 16);
		b[i] = proto_bytes(ids[i], 16);
		sotto__recipient__init(&rcp[i]);
		rcp[i].to = proto_str("bob");
		rcp[i].sealed = proto_bytes("x", 1);
		rp[i] = &rcp[i];
	}
	sotto__deliver_ack__init(&da);
	da.msg_ids = b;
	da.n_msg_ids = MANY;
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_DELIVER_ACK;
	req.deliver_ack = &da;
	cr_assert_eq(client_conn_request(c, &req, &r, 0), SOTTO_ERR_PERM);
	cr_assert_eq(r->error->code, SOTTO__ERROR_CODE__ERR_BAD_REQUEST);
	frame_free(r);
	sotto_random(id, 16);
	sotto__send_multi__init(&sm);
	sm.msg_id = proto_bytes(id, 16);
	sm.recipients = rp;
	sm.n_recipients = MANY;
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_SEND_MULTI;
	req.send_multi = &sm;
	cr_assert_eq(client_conn_request(c, &req, &r, 0), SOTTO_ERR_PERM);
	cr_assert_eq(r->error->code, SOTTO__ERROR_CODE__ERR_BAD_REQUEST);
	frame_free(r);
	sm.n_recipients = 0;
	cr_assert_eq(client_conn_request(c, &req, &r, 0), SOTTO_ERR_PERM);
	cr_assert_eq(r->error->code, SOTTO__ERROR_CODE__ERR_BAD_REQUEST);
	frame_free(r);
	cr_assert_eq(twho(c, 0, &r), 0, "%s", client_conn_error(c));
	frame_free(r);
	client_conn_close(c);
	assert_still_serving();
}

Test(badbytes, many_bad_clients_at_once)
{
	enum { NBAD = 20 };
	struct client_conn *c[NBAD];
	uint8_t junk[4 + 32];
	size_t i;
	int fds[NBAD];

	memset(junk, 0xee, sizeof(junk));
	junk[0] = junk[1] = junk[2] = 0;
	junk[3] = 32;
	for (i = 0; i < NBAD; i++) {
		c[i] = mallory_tls(i % 2);
		cr_assert_geq(fds[i] = tconnect_tcp(&srv, (int)(i % 2)), 0);
	}
	for (i = 0; i < NBAD; i++) {
		write_raw(c[i], junk, sizeof(junk));
		cr_assert_eq(send(fds[i], junk, sizeof(junk), MSG_NOSIGNAL), (ssize_t)sizeof(junk));
	}
	for (i = 0; i < NBAD; i++) {
		cr_assert_eq(twait_closed(c[i], 5000), 0, "bad client %zu was left open", i);
		cr_assert_eq(tfd_wait_closed(fds[i], 5000), 0, "raw client %zu was left open", i);
		client_conn_abort(c[i]);
		close(fds[i]);
	}
	assert_still_serving();
}
