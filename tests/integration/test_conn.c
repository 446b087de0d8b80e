/*
 * sottod connections, end to end: IPv4 and IPv6, TLS 1.3 only (checked with
 * openssl s_client), the client's pin check, the handshake, Hello and login
 * deadlines, and the Hello exchange itself.
 */
#include "config.h"

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
static struct tuser alice, bob;
static struct tuser *const all_users[] = {&alice, &bob, NULL};
static const char *const user_names[] = {"alice", "bob"};

static void
start(const char *const *flags)
{
	tcheck_start(&srv, flags);
	tcheck_users_new(all_users, user_names, IDENTITY_ED25519);
}

static void
teardown(void)
{
	testsrv_cleanup(&srv);
	tcheck_users_free(all_users);
}

TestSuite(conn, .fini = teardown, .timeout = 60);

/* 1 if one line of the server's log holds both a and b. */
static int
log_line_has(const char *a, const char *b)
{
	char line[1024];
	FILE *fp = fopen(srv.log, "r");
	int found = 0;

	if (fp == NULL)
		return 0;
	while (!found && fgets(line, sizeof(line), fp) != NULL)
		found = strstr(line, a) != NULL && strstr(line, b) != NULL;
	fclose(fp);
	return found;
}

/* Register u over IPv4 (v6 0) or IPv6 (v6 1), then log in again over the same family. */
static struct client_conn *
register_and_login(struct tuser *u, int v6)
{
	struct client_conn *c;
	Sotto__Frame *ok = NULL;
	char err[512];

	cr_assert_not_null(c = tconnect(&srv, v6, err, sizeof(err)), "%s", err);
	cr_assert_eq(tregister_on(c, u, NULL), 0, "%s", client_conn_error(c));
	client_conn_close(c);
	cr_assert_not_null(c = tconnect(&srv, v6, err, sizeof(err)), "%s", err);
	cr_assert_eq(client_conn_login(c, u->name, u->id, &ok), 0, "%s", client_conn_error(c));
	cr_assert_eq(ok->body_case, SOTTO__FRAME__BODY_LOGIN_OK);
	frame_free(ok);
	return c;
}

/* a (user from) sends text to b (user to); b must get it as a Deliver from from. */
static void
exchange(struct client_conn *a, const char *from, struct client_conn *b, const char *to,
        const char *text, uint8_t tag)
{
	uint8_t id[16] = {tag};
	Sotto__Frame *ack = NULL, *d;

	cr_assert_eq(tsend(a, to, text, id, &ack), 0, "%s", client_conn_error(a));
	cr_assert(ack->ack->recipient_online);
	frame_free(ack);
	cr_assert_not_null(d = twait(b, SOTTO__FRAME__BODY_DELIVER, 5000));
	cr_assert_str_eq(d->deliver->from, from);
	cr_assert_eq(d->deliver->sealed.len, strlen(text));
	cr_assert_arr_eq(d->deliver->sealed.data, text, strlen(text));
	frame_free(d);
}

Test(conn, ipv4_register_login_send)
{
	struct client_conn *a, *b;

	start(NULL);
	a = register_and_login(&alice, 0);
	b = register_and_login(&bob, 0);
	cr_assert(log_line_has("127.0.0.1:", "registered alice"), "registered over IPv4");
	cr_assert(log_line_has("127.0.0.1:", "logged in as bob"), "logged in over IPv4");
	exchange(a, "alice", b, "bob", "over v4", 0);
	client_conn_close(a);
	client_conn_close(b);
}

Test(conn, ipv6_register_login_send)
{
	struct client_conn *a, *b;

	start(NULL);
	a = register_and_login(&alice, 1);
	b = register_and_login(&bob, 0);
	cr_assert(log_line_has("[::1]:", "registered alice"), "registered over IPv6");
	cr_assert(log_line_has("[::1]:", "logged in as alice"), "logged in over IPv6");
	exchange(a, "alice", b, "bob", "from v6", 0);
	client_conn_close(a);
	client_conn_close(b);
}

/*
 * openssl_records = yes keeps OpenSSL's record layer after the handshake:
 * traffic still flows both ways, and the log says which path was taken
 * (by default the built-in one, with no such line).
 */
Test(conn, openssl_records_keeps_openssl)
{
	static const char *const flags[] = {"--openssl_records", "yes", NULL};
	struct client_conn *a, *b;
	char *big;

	start(flags);
	a = register_and_login(&alice, 0);
	b = register_and_login(&bob, 1);
	cr_assert(log_line_has("staying with OpenSSL", "TLS_"), "the takeover was not skipped");
	exchange(a, "alice", b, "bob", "kept by openssl", 1);
	/* And the other way, with a frame that spans several TLS records. */
	big = malloc(40001);
	cr_assert_not_null(big);
	memset(big, 'x', 40000);
	big[40000] = '\0';
	exchange(b, "bob", a, "alice", big, 2);
	free(big);
	client_conn_close(a);
	client_conn_close(b);
}

Test(conn, builtin_records_by_default)
{
	struct client_conn *a;

	start(NULL);
	a = register_and_login(&alice, 0);
	client_conn_close(a);
	cr_assert_not(
	        log_line_has("staying with OpenSSL", "TLS_"), "took OpenSSL's path by default");
}

/* openssl s_client against the IPv4 port with one protocol flag; stdin empty. */
static void
s_client(const char *flag, struct proc_result *res)
{
	char target[64];
	struct proc_opts po;

	snprintf(target, sizeof(target), "127.0.0.1:%s", srv.port4);
	memset(&po, 0, sizeof(po));
	po.timeout_ms = 15000;
	cr_assert_eq(
	        proc_runl(res, &po, "openssl", "s_client", "-connect", target, flag, (char *)NULL),
	        0, "cannot run openssl");
	cr_assert_not(res->timed_out, "openssl s_client hung");
}

Test(conn, tls12_refused)
{
	struct proc_result res;

	start(NULL);
	s_client("-tls1_2", &res);
	cr_assert(res.status != 0 || strstr(res.out, "Cipher is (NONE)") != NULL,
	        "TLS 1.2 was accepted:\n%s\n%s", res.out, res.err);
	cr_assert_null(strstr(res.out, "New, TLSv1.2, Cipher is"), "%s", res.out);
	cr_assert_null(strstr(res.out, "New, TLSv1.3"), "%s", res.out);
	proc_result_free(&res);
	cr_assert(testsrv_healthy(&srv));
}

Test(conn, tls13_accepted)
{
	struct proc_result res;

	start(NULL);
	s_client("-tls1_3", &res);
	cr_assert_eq(res.status, 0, "%s\n%s", res.out, res.err);
	cr_assert_not_null(strstr(res.out, "New, TLSv1.3, Cipher is TLS_"), "%s", res.out);
	cr_assert_null(strstr(res.out, "Cipher is (NONE)"), "%s", res.out);
	proc_result_free(&res);
	cr_assert(testsrv_healthy(&srv));
}

Test(conn, pin_mismatch_refused)
{
	uint8_t wrong[TLS_SPKI_HASH_BYTES];
	char err[512], have[80], want[80];
	struct client_conn *c = NULL;
	struct client_opts o;

	start(NULL);
	/* Learn the real key first, then expect a different one. */
	cr_assert_not_null(c = tconnect(&srv, 0, err, sizeof(err)), "%s", err);
	client_conn_close(c);
	c = NULL;
	memcpy(wrong, srv.spki, sizeof(wrong));
	wrong[0] ^= 0x5a;
	memset(&o, 0, sizeof(o));
	o.host = "127.0.0.1";
	o.port = srv.port4;
	o.pin = wrong;
	o.timeout_ms = 10000;
	cr_assert_eq(client_conn_open(&c, &o, err, sizeof(err)), SOTTO_ERR_VERIFY, "%s", err);
	cr_assert_null(c);
	tls_format_fingerprint(have, sizeof(have), srv.spki);
	tls_format_fingerprint(want, sizeof(want), wrong);
	cr_assert_not_null(strstr(err, have), "names the server's key: %s", err);
	cr_assert_not_null(strstr(err, want), "names the expected key: %s", err);
	cr_assert_not_null(strstr(err, "SHA256:"), "%s", err);
	/* And the right pin still works. */
	o.pin = srv.spki;
	cr_assert_eq(client_conn_open(&c, &o, err, sizeof(err)), 0, "%s", err);
	client_conn_close(c);
}

Test(conn, handshake_timeout_closes_silent_tcp)
{
	const char *flags[] = {"--handshake-timeout", "1", NULL};
	int64_t t0, dt;
	int fd;

	start(flags);
	cr_assert_geq(fd = tconnect_tcp(&srv, 0), 0);
	t0 = tnow_ms();
	cr_assert_eq(
	        tfd_wait_closed(fd, 5000), 0, "a client that never speaks TLS stays connected");
	dt = tnow_ms() - t0;
	close(fd);
	cr_assert_geq(dt, 700, "closed after %lld ms, before the timeout", (long long)dt);
	cr_assert_leq(dt, 3000, "closed after %lld ms", (long long)dt);
	cr_assert(testsrv_healthy(&srv));
}

/*
 * Start sottod with flag at 1 (second), open a connection that goes silent
 * before its Hello (no_hello) or before logging in, and expect, within 5 s,
 * a Closing for ERR_TIMEOUT whose reason holds why.  *c stays open; the
 * milliseconds the Closing took to come.
 */
static int64_t
silent_until_closing(const char *flag, int no_hello, const char *why, struct client_conn **c)
{
	const char *flags[] = {flag, "1", NULL};
	Sotto__Frame *f;
	char err[512];
	int64_t t0, dt;

	start(flags);
	if (no_hello)
		*c = tconnect_tls(&srv, 0, err, sizeof(err));
	else
		*c = tconnect(&srv, 0, err, sizeof(err));
	cr_assert_not_null(*c, "%s", err);
	t0 = tnow_ms();
	cr_assert_not_null(f = tnext(*c, 5000), "no Closing: %s", client_conn_error(*c));
	dt = tnow_ms() - t0;
	cr_assert_eq(f->body_case, SOTTO__FRAME__BODY_CLOSING);
	cr_assert_eq(f->closing->code, SOTTO__ERROR_CODE__ERR_TIMEOUT);
	cr_assert_not_null(strstr(f->closing->reason, why), "%s", f->closing->reason);
	frame_free(f);
	return dt;
}

/* The server closes c's socket too, and is still well. */
static void
closed_and_healthy(struct client_conn *c)
{
	cr_assert_eq(twait_closed(c, 5000), 0);
	client_conn_abort(c);
	cr_assert(testsrv_healthy(&srv));
}

Test(conn, hello_timeout_closes_silent_tls)
{
	struct client_conn *c;
	int64_t dt = silent_until_closing("--handshake-timeout", 1, "Hello", &c);

	cr_assert_leq(dt, 3000, "closed after %lld ms", (long long)dt);
	closed_and_healthy(c);
}

Test(conn, auth_timeout_closes_with_reason)
{
	struct client_conn *c;
	int64_t dt = silent_until_closing("--auth-timeout", 0, "not logged in", &c);

	cr_assert_geq(dt, 700, "closed after %lld ms", (long long)dt);
	cr_assert_leq(dt, 3000, "closed after %lld ms", (long long)dt);
	cr_assert_not_null(
	        strstr(client_conn_error(c), "took too long"), "%s", client_conn_error(c));
	closed_and_healthy(c);
}

/* A Hello frame with the given version and request id. */
static void
write_hello(struct client_conn *c, uint64_t id, uint32_t major)
{
	Sotto__Frame f;
	Sotto__Hello h;

	sotto__hello__init(&h);
	h.version_major = major;
	h.client = proto_str("test/1");
	frame_init(&f, id);
	f.body_case = SOTTO__FRAME__BODY_HELLO;
	f.hello = &h;
	cr_assert_eq(twrite_frame(c, &f), 0, "%s", client_conn_error(c));
}

Test(conn, unknown_major_version_refused)
{
	struct client_conn *c;
	Sotto__Frame *f;
	char err[512];

	start(NULL);
	cr_assert_not_null(c = tconnect_tls(&srv, 0, err, sizeof(err)), "%s", err);
	write_hello(c, 7, 9);
	cr_assert_not_null(f = tnext(c, 5000), "%s", client_conn_error(c));
	cr_assert_eq(f->id, 7);
	cr_assert_eq(f->body_case, SOTTO__FRAME__BODY_ERROR);
	cr_assert_eq(f->error->code, SOTTO__ERROR_CODE__ERR_VERSION);
	cr_assert_not_null(strstr(f->error->message, "1.0"), "%s", f->error->message);
	cr_assert_not_null(strstr(f->error->message, "9.0"), "%s", f->error->message);
	frame_free(f);
	cr_assert_not_null(f = tnext(c, 5000), "%s", client_conn_error(c));
	cr_assert_eq(f->body_case, SOTTO__FRAME__BODY_CLOSING);
	cr_assert_eq(f->closing->code, SOTTO__ERROR_CODE__ERR_VERSION);
	frame_free(f);
	cr_assert_eq(twait_closed(c, 5000), 0);
	client_conn_abort(c);
	cr_assert(testsrv_healthy(&srv));
}

Test(conn, hello_first_then_once)
{
	struct client_conn *c;
	Sotto__Frame f, *r;
	Sotto__Ping ping;
	Sotto__Who who;
	char err[512];

	start(NULL);
	cr_assert_not_null(c = tconnect_tls(&srv, 0, err, sizeof(err)), "%s", err);
	/* Anything but Hello (or Bye) first is refused, and the connection stays. */
	sotto__who__init(&who);
	frame_init(&f, 3);
	f.body_case = SOTTO__FRAME__BODY_WHO;
	f.who = &who;
	cr_assert_eq(twrite_frame(c, &f), 0);
	cr_assert_not_null(r = tnext(c, 5000), "%s", client_conn_error(c));
	cr_assert_eq(r->id, 3);
	cr_assert_eq(r->body_case, SOTTO__FRAME__BODY_ERROR);
	cr_assert_eq(r->error->code, SOTTO__ERROR_CODE__ERR_PROTOCOL);
	cr_assert_not_null(strstr(r->error->message, "Hello"), "%s", r->error->message);
	frame_free(r);
	/* A notification before Hello gets no reply at all. */
	cr_assert_eq(tack(c, (const uint8_t *)"0123456789abcdef"), 0);
	write_hello(c, 4, 1);
	cr_assert_not_null(r = tnext(c, 5000), "%s", client_conn_error(c));
	cr_assert_eq(r->id, 4);
	cr_assert_eq(r->body_case, SOTTO__FRAME__BODY_HELLO_REPLY);
	cr_assert_eq(r->hello_reply->version_major, 1);
	cr_assert_eq(r->hello_reply->challenge.len, 32);
	cr_assert_eq(r->hello_reply->max_frame, 1048576);
	cr_assert_eq(r->hello_reply->registration, SOTTO__REGISTRATION_POLICY__REGISTRATION_OPEN);
	frame_free(r);
	/* A second Hello is a protocol error; Ping still works before login. */
	write_hello(c, 5, 1);
	cr_assert_not_null(r = tnext(c, 5000), "%s", client_conn_error(c));
	cr_assert_eq(r->id, 5);
	cr_assert_eq(r->body_case, SOTTO__FRAME__BODY_ERROR);
	cr_assert_eq(r->error->code, SOTTO__ERROR_CODE__ERR_PROTOCOL);
	frame_free(r);
	sotto__ping__init(&ping);
	frame_init(&f, 6);
	f.body_case = SOTTO__FRAME__BODY_PING;
	f.ping = &ping;
	cr_assert_eq(twrite_frame(c, &f), 0);
	cr_assert_not_null(r = tnext(c, 5000), "%s", client_conn_error(c));
	cr_assert_eq(r->id, 6);
	cr_assert_eq(r->body_case, SOTTO__FRAME__BODY_PONG);
	cr_assert_gt(r->pong->server_time_ms, 0);
	frame_free(r);
	client_conn_close(c);
	cr_assert(testsrv_healthy(&srv));
}

Test(conn, bye_gets_closing_none)
{
	struct client_conn *c;
	Sotto__Frame f, *r;
	Sotto__Bye bye;
	char err[512];

	start(NULL);
	cr_assert_not_null(c = tconnect(&srv, 1, err, sizeof(err)), "%s", err);
	sotto__bye__init(&bye);
	frame_init(&f, 0);
	f.body_case = SOTTO__FRAME__BODY_BYE;
	f.bye = &bye;
	cr_assert_eq(client_conn_request(c, &f, &r, 5000), 0, "%s", client_conn_error(c));
	cr_assert_eq(r->body_case, SOTTO__FRAME__BODY_CLOSING);
	cr_assert_eq(r->id, f.id, "the Closing answers the Bye");
	cr_assert_eq(r->closing->code, SOTTO__ERROR_CODE__ERR_NONE);
	frame_free(r);
	cr_assert_eq(twait_closed(c, 5000), 0);
	client_conn_abort(c);
	cr_assert(testsrv_healthy(&srv));
}
