/*
 * sottod accounts, end to end: registration under each policy (open, invite,
 * closed), the username rule and its case folding, login signatures with
 * Ed25519 and RSA-PSS, lockout and its end, the idle timeout, and a second
 * login replacing the first.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>

#include "crypto/util.h"
#include "src/store.h"
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

TestSuite(accounts, .fini = teardown, .timeout = 60);

/* Connect and register u with invite; returns the call's result, the conn in *out. */
static int
register_on_new(struct tuser *u, const char *invite, struct client_conn **out)
{
	char err[512];

	cr_assert_not_null(*out = tconnect(&srv, 0, err, sizeof(err)), "%s", err);
	return tregister_on(*out, u, invite);
}

/* Log in as name with id on a fresh connection; the result, with the conn in *out. */
static int
login_as(const char *name, const struct identity *id, struct client_conn **out)
{
	char err[512];

	cr_assert_not_null(*out = tconnect(&srv, 0, err, sizeof(err)), "%s", err);
	return client_conn_login(*out, name, id, NULL);
}

/* A request that needs a login works on c. */
static void
assert_logged_in(struct client_conn *c)
{
	Sotto__Frame *r = NULL;

	cr_assert_eq(twho(c, 0, &r), 0, "%s", client_conn_error(c));
	cr_assert_eq(r->body_case, SOTTO__FRAME__BODY_WHO_REPLY);
	frame_free(r);
}

Test(accounts, open_registration_then_login)
{
	struct client_conn *c;
	Sotto__Frame *ok = NULL;
	char err[512];

	start(NULL);
	cr_assert_eq(register_on_new(&alice, NULL, &c), 0, "%s", client_conn_error(c));
	cr_assert_eq(client_conn_registration(c), SOTTO__REGISTRATION_POLICY__REGISTRATION_OPEN);
	assert_logged_in(c);
	client_conn_close(c);
	cr_assert_not_null(c = tconnect(&srv, 0, err, sizeof(err)), "%s", err);
	cr_assert_eq(client_conn_login(c, "alice", alice.id, &ok), 0, "%s", client_conn_error(c));
	cr_assert_eq(ok->login_ok->otk_remaining, 5, "the one-time prekeys were stored");
	cr_assert_eq(ok->login_ok->queued, 0);
	cr_assert_not(ok->login_ok->admin);
	cr_assert_gt(ok->login_ok->server_time_ms, 0);
	frame_free(ok);
	assert_logged_in(c);
	client_conn_close(c);
}

Test(accounts, rsa_identity_registers_logs_in_and_talks)
{
	struct tuser carol;
	struct client_conn *a, *c;
	uint8_t id[16] = {0};
	Sotto__Frame *ack = NULL, *d;
	char err[512];

	start(NULL);
	cr_assert_eq(tuser_new(&carol, "carol", IDENTITY_RSA), 0);
	cr_assert_eq(tregister(&srv, &alice), 0);
	cr_assert_eq(register_on_new(&carol, NULL, &c), 0, "%s", client_conn_error(c));
	client_conn_close(c);
	cr_assert(testsrv_log_has(&srv, "registered carol (RSA)"), "registered as an RSA identity");
	/* A fresh RSA-PSS signature over a new challenge. */
	cr_assert_not_null(c = tlogin(&srv, &carol, err, sizeof(err)), "%s", err);
	/* And alice's key does not open carol's account. */
	cr_assert_eq(login_as("carol", alice.id, &a), SOTTO_ERR_PERM);
	cr_assert_eq(client_conn_remote(a)->code, SOTTO__ERROR_CODE__ERR_AUTH_FAILED);
	client_conn_abort(a);
	cr_assert_not_null(a = tlogin(&srv, &alice, err, sizeof(err)), "%s", err);
	cr_assert_eq(tsend(c, "alice", "from rsa", id, &ack), 0, "%s", client_conn_error(c));
	frame_free(ack);
	cr_assert_not_null(d = twait(a, SOTTO__FRAME__BODY_DELIVER, 5000));
	cr_assert_str_eq(d->deliver->from, "carol");
	frame_free(d);
	client_conn_close(a);
	client_conn_close(c);
	tuser_free(&carol);
}

/* Make an invite token in the stopped server's store, then start it again. */
static void
make_invite(const char *token, int64_t expires_in)
{
	struct store *st = NULL;
	char err[512];
	int64_t now = (int64_t)time(NULL);

	cr_assert_eq(testsrv_stop(&srv), 0, "sottod did not stop cleanly");
	cr_assert_eq(store_sqlite_open(&st, srv.state, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(store_invite_create(st, token, NULL, now, now + expires_in), 0, "%s",
	        store_last_error(st));
	store_close(st);
	cr_assert_eq(testsrv_restart(&srv), 0, "sottod did not restart");
}

Test(accounts, invite_policy)
{
	const char *flags[] = {"--registration", "invite", NULL};
	struct client_conn *c;
	struct tuser carol;

	start(flags);
	cr_assert_eq(tuser_new(&carol, "carol", IDENTITY_ED25519), 0);
	cr_assert_eq(register_on_new(&alice, NULL, &c), SOTTO_ERR_PERM);
	cr_assert_eq(client_conn_registration(c), SOTTO__REGISTRATION_POLICY__REGISTRATION_INVITE);
	cr_assert_eq(client_conn_remote(c)->code, SOTTO__ERROR_CODE__ERR_BAD_INVITE);
	cr_assert_not_null(
	        strstr(client_conn_error(c), "invite token"), "%s", client_conn_error(c));
	/* A token nobody issued fails the same way, on the same connection. */
	cr_assert_eq(tregister_on(c, &alice, "not-a-real-token"), SOTTO_ERR_PERM);
	cr_assert_eq(client_conn_remote(c)->code, SOTTO__ERROR_CODE__ERR_BAD_INVITE);
	client_conn_abort(c);

	make_invite("tok-good-1", 3600);
	make_invite("tok-expired", -10);
	/* The failed attempt with a bad token must not have half-created alice. */
	cr_assert_eq(register_on_new(&alice, "tok-good-1", &c), 0, "%s", client_conn_error(c));
	assert_logged_in(c);
	client_conn_close(c);
	/* A token is good once. */
	cr_assert_eq(register_on_new(&bob, "tok-good-1", &c), SOTTO_ERR_PERM);
	cr_assert_eq(client_conn_remote(c)->code, SOTTO__ERROR_CODE__ERR_BAD_INVITE);
	client_conn_abort(c);
	cr_assert_eq(register_on_new(&carol, "tok-expired", &c), SOTTO_ERR_PERM);
	cr_assert_eq(client_conn_remote(c)->code, SOTTO__ERROR_CODE__ERR_BAD_INVITE);
	client_conn_abort(c);
	/* Neither refused user exists; alice can still log in. */
	cr_assert_eq(login_as("bob", bob.id, &c), SOTTO_ERR_PERM);
	cr_assert_eq(client_conn_remote(c)->code, SOTTO__ERROR_CODE__ERR_NO_SUCH_USER);
	client_conn_abort(c);
	cr_assert_eq(login_as("alice", alice.id, &c), 0, "%s", client_conn_error(c));
	client_conn_close(c);
	tuser_free(&carol);
	cr_assert(testsrv_healthy(&srv));
}

/* The operator's way to make a token: sottod --make-invite beside the running server. */
Test(accounts, make_invite_beside_running_server)
{
	const char *flags[] = {"--registration", "invite", NULL};
	struct proc_result res;
	struct client_conn *c;
	char token[64];

	start(flags);
	memset(&res, 0, sizeof(res));
	cr_assert_eq(proc_runl(&res, NULL, testsrv_program("sottod"), "--make-invite",
	                     "--invite-days", "2", "--state-dir", srv.state, (char *)NULL),
	        0);
	cr_assert(res.exited && res.status == 0, "sottod --make-invite: %s", res.err);
	cr_assert_eq(strlen(res.out), 37, "a 36-hex-digit token and a newline: '%s'", res.out);
	snprintf(token, sizeof(token), "%.36s", res.out);
	proc_result_free(&res);
	cr_assert_eq(register_on_new(&alice, token, &c), 0, "%s", client_conn_error(c));
	assert_logged_in(c);
	client_conn_close(c);
	cr_assert_eq(register_on_new(&bob, token, &c), SOTTO_ERR_PERM, "single use");
	cr_assert_eq(client_conn_remote(c)->code, SOTTO__ERROR_CODE__ERR_BAD_INVITE);
	client_conn_abort(c);
	/* A bad day count is a usage error with a sentence. */
	memset(&res, 0, sizeof(res));
	cr_assert_eq(proc_runl(&res, NULL, testsrv_program("sottod"), "--make-invite",
	                     "--invite-days", "0", "--state-dir", srv.state, (char *)NULL),
	        0);
	cr_assert(res.exited && res.status == 1);
	cr_assert_not_null(strstr(res.err, "--invite-days needs a number"), "%s", res.err);
	proc_result_free(&res);
	cr_assert(testsrv_healthy(&srv));
}

Test(accounts, closed_policy)
{
	const char *flags[] = {"--registration", "closed", NULL};
	struct client_conn *c;

	start(flags);
	cr_assert_eq(register_on_new(&alice, NULL, &c), SOTTO_ERR_PERM);
	cr_assert_eq(client_conn_registration(c), SOTTO__REGISTRATION_POLICY__REGISTRATION_CLOSED);
	cr_assert_eq(client_conn_remote(c)->code, SOTTO__ERROR_CODE__ERR_REGISTRATION_CLOSED);
	cr_assert_not_null(strstr(client_conn_error(c), "does not accept new accounts"), "%s",
	        client_conn_error(c));
	/* Even with a token. */
	cr_assert_eq(tregister_on(c, &alice, "some-token"), SOTTO_ERR_PERM);
	cr_assert_eq(client_conn_remote(c)->code, SOTTO__ERROR_CODE__ERR_REGISTRATION_CLOSED);
	client_conn_abort(c);
	cr_assert_eq(login_as("alice", alice.id, &c), SOTTO_ERR_PERM);
	cr_assert_eq(client_conn_remote(c)->code, SOTTO__ERROR_CODE__ERR_NO_SUCH_USER);
	client_conn_abort(c);
}

Test(accounts, duplicate_name_any_case)
{
	struct client_conn *c;
	Sotto__Frame *r = NULL;
	struct tuser upper;

	start(NULL);
	cr_assert_eq(tregister(&srv, &alice), 0);
	/* bob's key under alice's name, spelt three ways (sent on the wire as typed). */
	memset(&upper, 0, sizeof(upper));
	upper.id = bob.id;
	snprintf(upper.name, sizeof(upper.name), "alice");
	cr_assert_eq(register_on_new(&upper, NULL, &c), SOTTO_ERR_PERM);
	cr_assert_eq(client_conn_remote(c)->code, SOTTO__ERROR_CODE__ERR_USER_EXISTS);
	client_conn_abort(c);
	snprintf(upper.name, sizeof(upper.name), "Alice");
	cr_assert_eq(register_on_new(&upper, NULL, &c), SOTTO_ERR_PERM);
	cr_assert_eq(client_conn_remote(c)->code, SOTTO__ERROR_CODE__ERR_USER_EXISTS);
	cr_assert_not_null(
	        strstr(client_conn_error(c), "already taken"), "%s", client_conn_error(c));
	client_conn_abort(c);
	snprintf(upper.name, sizeof(upper.name), "ALICE");
	cr_assert_eq(register_on_new(&upper, NULL, &c), SOTTO_ERR_PERM);
	cr_assert_eq(client_conn_remote(c)->code, SOTTO__ERROR_CODE__ERR_USER_EXISTS);
	client_conn_abort(c);
	/* Logging in as "ALICE" is logging in as alice, with alice's key only. */
	cr_assert_eq(login_as("ALICE", alice.id, &c), 0, "%s", client_conn_error(c));
	cr_assert_eq(tseen(c, "AlIcE", &r), 0, "%s", client_conn_error(c));
	cr_assert_str_eq(r->presence->username, "alice");
	cr_assert(r->presence->online);
	frame_free(r);
	client_conn_close(c);
	/* A new name that differs only in case from nothing registers in lower case. */
	snprintf(upper.name, sizeof(upper.name), "BoB");
	cr_assert_eq(register_on_new(&upper, NULL, &c), 0, "%s", client_conn_error(c));
	client_conn_close(c);
	cr_assert_eq(login_as("bob", bob.id, &c), 0, "%s", client_conn_error(c));
	client_conn_close(c);
}

/* RegisterUser with name exactly as given (the client would refuse a bad one itself). */
static int
register_raw(struct client_conn *c, const char *name, Sotto__Frame **rep)
{
	const struct identity_pub *pub = identity_public(alice.id);
	Sotto__RegisterUser ru;
	Sotto__Frame req;
	uint8_t sig[64] = {1};

	sotto__register_user__init(&ru);
	ru.username = proto_str(name);
	ru.identity_key = proto_bytes(pub->der, pub->derlen);
	ru.identity_type = (uint32_t)pub->type;
	ru.signature = proto_bytes(sig, sizeof(sig));
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_REGISTER_USER;
	req.register_user = &ru;
	return client_conn_request(c, &req, rep, 0);
}

Test(accounts, invalid_usernames_refused)
{
	static const char *const bad[] = {"", "-alice", ".alice", "_alice", "al ice", "alice!",
	        "al/ice", "\xc3\xa5lice", "alice\n", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" /* 33 */};
	struct client_conn *c;
	Sotto__Frame *r = NULL;
	struct tuser odd;
	char err[512];
	size_t i;

	start(NULL);
	cr_assert_not_null(c = tconnect(&srv, 0, err, sizeof(err)), "%s", err);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(
		        register_raw(c, bad[i], &r), SOTTO_ERR_PERM, "\"%s\" was accepted", bad[i]);
		cr_assert_eq(r->error->code, SOTTO__ERROR_CODE__ERR_BAD_USERNAME, "\"%s\": %s",
		        bad[i], client_conn_error(c));
		frame_free(r);
		r = NULL;
		cr_assert_eq(client_conn_login(c, bad[i], alice.id, NULL), SOTTO_ERR_PERM);
		cr_assert_eq(client_conn_remote(c)->code, SOTTO__ERROR_CODE__ERR_BAD_USERNAME);
		cr_assert_not_null(strstr(client_conn_error(c), "1 to 32 letters"), "%s",
		        client_conn_error(c));
	}
	/* The client itself refuses them with a sentence, before asking the server. */
	memset(&odd, 0, sizeof(odd));
	odd.id = alice.id;
	snprintf(odd.name, sizeof(odd.name), "al ice");
	cr_assert_eq(tregister_on(c, &odd, NULL), SOTTO_ERR_INVALID);
	cr_assert_not_null(
	        strstr(client_conn_error(c), "not a valid username"), "%s", client_conn_error(c));
	client_conn_abort(c);
	/* The longest and oddest valid names work. */
	snprintf(odd.name, sizeof(odd.name), "%s", "0aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	cr_assert_eq(register_on_new(&odd, NULL, &c), 0, "%s", client_conn_error(c));
	client_conn_close(c);
	snprintf(odd.name, sizeof(odd.name), "%s", "9.a_b-c");
	odd.id = bob.id;
	cr_assert_eq(register_on_new(&odd, NULL, &c), 0, "%s", client_conn_error(c));
	client_conn_close(c);
	cr_assert(testsrv_healthy(&srv));
}

Test(accounts, registration_checks_keys)
{
	struct client_conn *c;
	Sotto__Frame *r = NULL;
	char err[512];

	start(NULL);
	cr_assert_not_null(c = tconnect(&srv, 0, err, sizeof(err)), "%s", err);
	/* A valid name, but no signed prekey and a made-up signature. */
	cr_assert_eq(register_raw(c, "alice", &r), SOTTO_ERR_PERM);
	cr_assert_eq(r->error->code, SOTTO__ERROR_CODE__ERR_BAD_KEY, "%s", client_conn_error(c));
	frame_free(r);
	client_conn_abort(c);
	/* Nothing was stored. */
	cr_assert_eq(login_as("alice", alice.id, &c), SOTTO_ERR_PERM);
	cr_assert_eq(client_conn_remote(c)->code, SOTTO__ERROR_CODE__ERR_NO_SUCH_USER);
	client_conn_abort(c);
}

Test(accounts, wrong_key_fails_with_attempts_left)
{
	struct client_conn *c;

	start(NULL);
	tcheck_users_register(&srv, all_users);
	cr_assert_eq(login_as("alice", bob.id, &c), SOTTO_ERR_PERM);
	cr_assert_eq(client_conn_remote(c)->code, SOTTO__ERROR_CODE__ERR_AUTH_FAILED);
	cr_assert_eq(client_conn_remote(c)->retry_after, 0);
	cr_assert_not_null(
	        strstr(client_conn_error(c), "2 attempts left"), "%s", client_conn_error(c));
	cr_assert_not_null(strstr(client_conn_error(c), "did not accept your identity key"), "%s",
	        client_conn_error(c));
	/* The failed connection is still usable: the right key now works on it. */
	cr_assert_eq(client_conn_login(c, "alice", alice.id, NULL), 0, "%s", client_conn_error(c));
	assert_logged_in(c);
	client_conn_close(c);
	/* A success resets the count. */
	cr_assert_eq(login_as("alice", bob.id, &c), SOTTO_ERR_PERM);
	cr_assert_not_null(
	        strstr(client_conn_error(c), "2 attempts left"), "%s", client_conn_error(c));
	client_conn_abort(c);
	cr_assert_eq(login_as("alice", bob.id, &c), SOTTO_ERR_PERM);
	cr_assert_not_null(
	        strstr(client_conn_error(c), "1 attempt left"), "%s", client_conn_error(c));
	client_conn_abort(c);
	/* Unknown users are told so. */
	cr_assert_eq(login_as("nobody", bob.id, &c), SOTTO_ERR_PERM);
	cr_assert_eq(client_conn_remote(c)->code, SOTTO__ERROR_CODE__ERR_NO_SUCH_USER);
	client_conn_abort(c);
}

Test(accounts, lockout_engages_and_lifts)
{
	const char *flags[] = {"--block-duration", "2", NULL};
	struct client_conn *c;
	uint32_t wait_s;
	int64_t t0;

	start(flags);
	tcheck_users_register(&srv, all_users);
	cr_assert_eq(login_as("alice", bob.id, &c), SOTTO_ERR_PERM);
	cr_assert_eq(client_conn_remote(c)->code, SOTTO__ERROR_CODE__ERR_AUTH_FAILED);
	client_conn_abort(c);
	cr_assert_eq(login_as("alice", bob.id, &c), SOTTO_ERR_PERM);
	cr_assert_eq(client_conn_remote(c)->code, SOTTO__ERROR_CODE__ERR_AUTH_FAILED);
	client_conn_abort(c);
	/* The third failure locks the name. */
	cr_assert_eq(login_as("alice", bob.id, &c), SOTTO_ERR_PERM);
	cr_assert_eq(client_conn_remote(c)->code, SOTTO__ERROR_CODE__ERR_LOCKED_OUT, "%s",
	        client_conn_error(c));
	cr_assert_gt(client_conn_remote(c)->retry_after, 0);
	cr_assert_leq(client_conn_remote(c)->retry_after, 2);
	client_conn_abort(c);
	t0 = tnow_ms();
	/* Even the right key is refused while it lasts, and told how long is left. */
	cr_assert_eq(login_as("alice", alice.id, &c), SOTTO_ERR_PERM);
	cr_assert_eq(client_conn_remote(c)->code, SOTTO__ERROR_CODE__ERR_LOCKED_OUT, "%s",
	        client_conn_error(c));
	wait_s = client_conn_remote(c)->retry_after;
	cr_assert_gt(wait_s, 0);
	cr_assert_leq(wait_s, 2);
	cr_assert_not_null(strstr(client_conn_error(c), "locked"), "%s", client_conn_error(c));
	client_conn_abort(c);
	/* Another account is not affected. */
	cr_assert_eq(login_as("bob", bob.id, &c), 0, "%s", client_conn_error(c));
	client_conn_close(c);
	/* After block_duration the right key works again. */
	tsleep_ms((int)(wait_s * 1000 - (tnow_ms() - t0)) + 300);
	cr_assert_eq(login_as("alice", alice.id, &c), 0, "%s", client_conn_error(c));
	assert_logged_in(c);
	client_conn_close(c);
	cr_assert(testsrv_log_has(&srv, "failed login for alice"));
}

/* Ping c every interval ms until the server closes it or limit ms pass; elapsed ms. */
static int64_t
ping_until_closed(struct client_conn *c, int interval, int limit)
{
	int64_t t0 = tnow_ms();
	Sotto__Frame req, *rep = NULL;
	Sotto__Ping ping;
	int r;

	while (tnow_ms() - t0 < limit) {
		sotto__ping__init(&ping);
		frame_init(&req, 0);
		req.body_case = SOTTO__FRAME__BODY_PING;
		req.ping = &ping;
		r = client_conn_request(c, &req, &rep, 2000);
		frame_free(rep);
		rep = NULL;
		if (r == SOTTO_ERR_CLOSED)
			break;
		cr_assert_eq(r, 0, "%s", client_conn_error(c));
		tsleep_ms(interval);
	}
	return tnow_ms() - t0;
}

Test(accounts, idle_timeout_ignores_pings)
{
	const char *flags[] = {"--idle-timeout", "1", NULL};
	struct client_conn *c, *b;
	Sotto__Frame *r = NULL;
	int64_t dt;
	char err[512];

	start(flags);
	cr_assert_eq(tregister(&srv, &alice), 0);
	cr_assert_not_null(c = tlogin(&srv, &alice, err, sizeof(err)), "%s", err);
	dt = ping_until_closed(c, 150, 5000);
	cr_assert_lt(dt, 3000, "pings kept an idle session open for %lld ms", (long long)dt);
	cr_assert_geq(dt, 700, "closed after %lld ms", (long long)dt);
	cr_assert_eq(client_conn_remote(c)->code, SOTTO__ERROR_CODE__ERR_IDLE_TIMEOUT);
	cr_assert_not_null(strstr(client_conn_remote(c)->message, "idle"), "%s",
	        client_conn_remote(c)->message);
	cr_assert_not_null(strstr(client_conn_error(c), "inactivity"), "%s", client_conn_error(c));
	cr_assert_eq(twait_closed(c, 5000), 0);
	/* alice's client has not hung up yet, but she is offline for everyone else. */
	cr_assert_eq(tregister(&srv, &bob), 0);
	cr_assert_not_null(b = tlogin(&srv, &bob, err, sizeof(err)), "%s", err);
	cr_assert_eq(tseen(b, "alice", &r), 0, "%s", client_conn_error(b));
	cr_assert_not(r->presence->online, "an idle-closed session still shows online");
	cr_assert_gt(r->presence->last_seen, 0);
	frame_free(r);
	client_conn_close(b);
	client_conn_abort(c);
	cr_assert(testsrv_healthy(&srv));
}

Test(accounts, idle_timeout_spares_active_sessions)
{
	const char *flags[] = {"--idle-timeout", "1", NULL};
	struct client_conn *c;
	Sotto__Frame *f;
	char err[512];
	int64_t t0;
	int i;

	start(flags);
	cr_assert_eq(tregister(&srv, &alice), 0);
	cr_assert_not_null(c = tlogin(&srv, &alice, err, sizeof(err)), "%s", err);
	/* A request every 200 ms for 3 seconds: never idle for the 1 second limit. */
	for (i = 0; i < 15; i++) {
		tsleep_ms(200);
		assert_logged_in(c);
	}
	/* Then silence: closed about a second later. */
	t0 = tnow_ms();
	cr_assert_not_null(f = twait(c, SOTTO__FRAME__BODY_CLOSING, 5000), "still open");
	cr_assert_eq(f->closing->code, SOTTO__ERROR_CODE__ERR_IDLE_TIMEOUT);
	frame_free(f);
	cr_assert_lt(tnow_ms() - t0, 3000);
	client_conn_abort(c);
}

Test(accounts, second_login_replaces_first)
{
	struct client_conn *a1, *a2, *b;
	uint8_t id[16] = {0};
	Sotto__Frame *f, *ack = NULL;
	char err[512];

	start(NULL);
	tcheck_users_register(&srv, all_users);
	cr_assert_not_null(a1 = tlogin(&srv, &alice, err, sizeof(err)), "%s", err);
	cr_assert_not_null(a2 = tlogin(&srv, &alice, err, sizeof(err)), "%s", err);
	cr_assert_not_null(f = twait(a1, SOTTO__FRAME__BODY_CLOSING, 5000));
	cr_assert_eq(f->closing->code, SOTTO__ERROR_CODE__ERR_REPLACED);
	frame_free(f);
	cr_assert_not_null(strstr(client_conn_error(a1), "logged in again elsewhere"), "%s",
	        client_conn_error(a1));
	cr_assert_eq(twait_closed(a1, 5000), 0);
	client_conn_abort(a1);
	/* Envelopes go to the newer session, and alice still counts as online. */
	cr_assert_not_null(b = tlogin(&srv, &bob, err, sizeof(err)), "%s", err);
	cr_assert_eq(tsend(b, "alice", "to the new one", id, &ack), 0, "%s", client_conn_error(b));
	cr_assert(ack->ack->recipient_online);
	frame_free(ack);
	cr_assert_not_null(f = twait(a2, SOTTO__FRAME__BODY_DELIVER, 5000));
	frame_free(f);
	cr_assert_eq(tseen(b, "alice", &f), 0);
	cr_assert(f->presence->online, "the replaced session marked alice offline");
	frame_free(f);
	/* Logging in twice on one connection is refused. */
	cr_assert_eq(client_conn_login(a2, "alice", alice.id, NULL), SOTTO_ERR_PERM);
	cr_assert_eq(client_conn_remote(a2)->code, SOTTO__ERROR_CODE__ERR_ALREADY_AUTHENTICATED);
	client_conn_close(a2);
	client_conn_close(b);
	cr_assert(testsrv_healthy(&srv));
}
