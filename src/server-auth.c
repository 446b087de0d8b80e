/*
 * Connection set-up and accounts: Hello, RegisterUser, Login, Ping and Bye.
 * Login is a signature over a fresh challenge and the TLS exporter, so a
 * signature captured on one connection is worthless on any other.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/buf.h"
#include "crypto/util.h"
#include "keys/identity.h"
#include "src/log.h"
#include "src/server.h"
#include "src/sigmsg.h"

static int
auth_is_config_admin(const struct config *cfg, const char *name)
{
	size_t i;

	for (i = 0; i < cfg->n_admins; i++) {
		if (strcasecmp(cfg->admins[i], name) == 0)
			return 1;
	}
	return 0;
}

static int
auth_hello(struct conn *c, uint64_t id, const Sotto__Frame *f)
{
	const Sotto__Hello *h = f->hello;
	Sotto__Frame rf;
	Sotto__HelloReply rep;
	char msg[96];

	sotto__hello_reply__init(&rep);
	if (c->state != CONN_HELLO) {
		server_send_error(
		        c, id, SOTTO__ERROR_CODE__ERR_PROTOCOL, "Hello was already sent", 0);
		return 0;
	}
	if (h->version_major != PROTO_VERSION_MAJOR) {
		snprintf(msg, sizeof(msg),
		        "this server speaks protocol %d.%d; the client sent %u.%u",
		        PROTO_VERSION_MAJOR, PROTO_VERSION_MINOR, h->version_major,
		        h->version_minor);
		server_send_error(c, id, SOTTO__ERROR_CODE__ERR_VERSION, msg, 0);
		server_conn_close_with(c, 0, SOTTO__ERROR_CODE__ERR_VERSION, msg, 0);
		return 0;
	}
	sotto_random(c->challenge, sizeof(c->challenge));
	frame_init(&rf, id);
	rf.body_case = SOTTO__FRAME__BODY_HELLO_REPLY;
	rf.hello_reply = &rep;
	rep.version_major = PROTO_VERSION_MAJOR;
	rep.version_minor = PROTO_VERSION_MINOR;
	rep.server = proto_str(SERVER_NAME);
	rep.challenge = proto_bytes(c->challenge, sizeof(c->challenge));
	rep.max_frame = c->srv->cfg->max_frame;
	rep.registration = (Sotto__RegistrationPolicy)c->srv->cfg->registration;
	server_conn_set_state(c, CONN_AUTH);
	return server_send(c, &rf);
}

/* Count a failed login from c's address; 1 if the address is now throttled. */
static void
auth_addr_failure(struct conn *c)
{
	struct addr_slot *slot = c->slot;
	int64_t now = server_mono();

	if (slot == NULL)
		return;
	if (now - slot->window_start >= 60) {
		slot->window_start = now;
		slot->failures = 0;
	}
	slot->failures++;
}

/* 0, or the seconds until c's address may try again. */
static uint32_t
auth_addr_throttled(struct conn *c)
{
	const struct addr_slot *slot = c->slot;
	uint32_t limit = c->srv->cfg->auth_throttle;
	int64_t left;

	if (slot == NULL || limit == 0 || slot->failures < limit)
		return 0;
	left = slot->window_start + 60 - server_mono();
	return left > 0 ? (uint32_t)left : 0;
}

void
server_auth_logged_in(struct conn *c, struct srv_user *u)
{
	struct server *srv = c->srv;

	if (u->conn != NULL && u->conn != c) {
		struct conn *old = u->conn;

		log_info("%s: %s logged in again from %s; closing the older session", old->peer,
		        u->name, c->peer);
		/* The old conn no longer speaks for u: it must not mark u offline later. */
		server_route_conn_gone(old);
		old->user = NULL;
		u->conn = NULL;
		server_conn_close_with(
		        old, 0, SOTTO__ERROR_CODE__ERR_REPLACED, "logged in from elsewhere", 0);
	}
	u->conn = c;
	c->user = u;
	c->live = 0;
	c->drain_seq = 0;
	u->last_seen = server_now();
	if (server_batch(srv) == 0 && store_user_set_last_seen(srv->store, u->name, u->last_seen))
		log_warn("%s: cannot record last-seen time: %s", u->name,
		        store_last_error(srv->store));
	server_conn_set_state(c, CONN_READY);
	log_info("%s: logged in as %s", c->peer, u->name);
}

/* Verify sig over the login or registration message with the DER identity key. */
static int
auth_verify(
        const uint8_t *der, size_t derlen, const uint8_t *sig, size_t siglen, const struct buf *msg)
{
	struct identity_pub *pub = NULL;
	int r;

	if ((r = identity_pub_from_der(&pub, der, derlen)) != 0)
		return r;
	r = identity_pub_verify(pub, sig, siglen, buf_ptr(msg), buf_len(msg));
	identity_pub_free(pub);
	return r;
}

static int
auth_login(struct conn *c, uint64_t id, const Sotto__Frame *f)
{
	struct server *srv = c->srv;
	const Sotto__Login *l = f->login;
	const struct config *cfg = srv->cfg;
	char name[PROTO_USERNAME_MAX + 1], msg[96];
	Sotto__LoginOk ok;
	struct store_user *su = NULL;
	struct srv_user *u;
	Sotto__Frame rf;
	int64_t locked_until = 0, now = server_now();
	uint32_t failures = 0, left, queued = 0, otks = 0;
	struct buf m;
	int r;

	sotto__login_ok__init(&ok);
	buf_init(&m, 0);
	if (c->state == CONN_READY) {
		r = server_send_error(c, id, SOTTO__ERROR_CODE__ERR_ALREADY_AUTHENTICATED, NULL, 0);
		goto out;
	}
	if ((left = auth_addr_throttled(c)) != 0) {
		r = server_send_error(c, id, SOTTO__ERROR_CODE__ERR_THROTTLED,
		        "too many failed logins from this address", left);
		goto out;
	}
	if (proto_username_normalize(name, l->username) != 0) {
		r = server_send_error(c, id, SOTTO__ERROR_CODE__ERR_BAD_USERNAME, NULL, 0);
		goto out;
	}
	if ((su = malloc(sizeof(*su))) == NULL) {
		r = SOTTO_ERR_NOMEM;
		goto out;
	}
	if ((r = store_user_get(srv->store, name, su)) == SOTTO_ERR_NOTFOUND || su->deleted) {
		auth_addr_failure(c);
		r = server_send_error(c, id,
		        r == 0 ? SOTTO__ERROR_CODE__ERR_ACCOUNT_DELETED
		               : SOTTO__ERROR_CODE__ERR_NO_SUCH_USER,
		        name, 0);
		goto out;
	} else if (r != 0) {
		goto out;
	}
	if ((r = store_auth_locked(srv->store, name, now, &locked_until)) != 0)
		goto out;
	if (locked_until > now) {
		r = server_send_error(c, id, SOTTO__ERROR_CODE__ERR_LOCKED_OUT,
		        "too many failed logins", (uint32_t)(locked_until - now));
		goto out;
	}
	if ((r = sigmsg_login(&m, c->challenge, c->exporter)) != 0)
		goto out;
	if (auth_verify(su->identity_key, su->identity_key_len, l->signature.data, l->signature.len,
	            &m) != 0) {
		auth_addr_failure(c);
		if ((r = server_batch(srv)) != 0 ||
		        (r = store_auth_fail(srv->store, name, now, cfg->max_auth_failures,
		                 cfg->block_duration, &failures, &locked_until)) != 0)
			goto out;
		log_info("%s: failed login for %s (%u of %u)", c->peer, name,
		        locked_until > now ? cfg->max_auth_failures : failures,
		        cfg->max_auth_failures);
		if (locked_until > now) {
			r = server_send_error(c, id, SOTTO__ERROR_CODE__ERR_LOCKED_OUT,
			        "too many failed logins", (uint32_t)(locked_until - now));
		} else {
			snprintf(msg, sizeof(msg), "signature did not verify; %u attempt%s left",
			        cfg->max_auth_failures - failures,
			        cfg->max_auth_failures - failures == 1 ? "" : "s");
			r = server_send_error(c, id, SOTTO__ERROR_CODE__ERR_AUTH_FAILED, msg, 0);
		}
		goto out;
	}
	if ((r = server_batch(srv)) != 0 || (r = store_auth_reset(srv->store, name)) != 0)
		goto out;
	if ((u = server_user(srv, name)) == NULL) {
		r = SOTTO_ERR_NOMEM;
		goto out;
	}
	u->admin = su->admin || auth_is_config_admin(cfg, name);
	server_auth_logged_in(c, u);
	if (store_queue_count(srv->store, name, &queued) != 0 ||
	        store_prekey_count_otks(srv->store, name, &otks) != 0)
		log_warn("%s: cannot count queue or prekeys: %s", name,
		        store_last_error(srv->store));
	frame_init(&rf, id);
	rf.body_case = SOTTO__FRAME__BODY_LOGIN_OK;
	rf.login_ok = &ok;
	ok.server_time_ms = (uint64_t)server_now_ms();
	ok.queued = queued;
	ok.otk_remaining = otks;
	ok.admin = u->admin;
	r = server_send(c, &rf);
	server_route_drain(c);
out:
	free(su);
	buf_free(&m);
	return r;
}

/* Check a SignedPrekey against the identity key; 0 or an ErrorCode. */
static uint32_t
auth_check_spk(const Sotto__SignedPrekey *spk, const uint8_t *der, size_t derlen)
{
	struct buf m;
	uint32_t code = 0;

	if (spk == NULL || spk->public_key.len != PROTO_PREKEY_BYTES || spk->signature.len == 0 ||
	        spk->signature.len > STORE_SIG_MAX)
		return SOTTO__ERROR_CODE__ERR_BAD_KEY;
	buf_init(&m, 0);
	if (sigmsg_spk(&m, spk->id, spk->public_key.data, spk->created) != 0)
		code = SOTTO__ERROR_CODE__ERR_INTERNAL;
	else if (auth_verify(der, derlen, spk->signature.data, spk->signature.len, &m) != 0)
		code = SOTTO__ERROR_CODE__ERR_BAD_SIGNATURE;
	buf_free(&m);
	return code;
}

uint32_t
server_auth_check_otks(Sotto__OneTimePrekey *const *in, size_t n, struct store_otk *out)
{
	size_t i;

	if (n > PROTO_MAX_OTKS)
		return SOTTO__ERROR_CODE__ERR_BAD_REQUEST;
	for (i = 0; i < n; i++) {
		if (in[i]->public_key.len != PROTO_PREKEY_BYTES)
			return SOTTO__ERROR_CODE__ERR_BAD_KEY;
		out[i].id = in[i]->id;
		memcpy(out[i].public_key, in[i]->public_key.data, PROTO_PREKEY_BYTES);
	}
	return 0;
}

uint32_t
server_auth_check_spk(const Sotto__SignedPrekey *spk, const uint8_t *der, size_t derlen)
{
	return auth_check_spk(spk, der, derlen);
}

static int
auth_register(struct conn *c, uint64_t id, const Sotto__Frame *f)
{
	struct server *srv = c->srv;
	const Sotto__RegisterUser *ru = f->register_user;
	const struct config *cfg = srv->cfg;
	char name[PROTO_USERNAME_MAX + 1];
	Sotto__RegisterOk ok;
	struct store_registration reg;
	struct identity_pub *pub = NULL;
	struct store_otk *otks = NULL;
	struct store_spk spk;
	struct srv_user *u;
	Sotto__Frame rf;
	struct buf m;
	uint32_t code;
	int r;

	sotto__register_ok__init(&ok);
	buf_init(&m, 0);
	if (c->state == CONN_READY) {
		r = server_send_error(c, id, SOTTO__ERROR_CODE__ERR_ALREADY_AUTHENTICATED, NULL, 0);
		goto out;
	}
	if (cfg->registration == CONFIG_REGISTRATION_CLOSED) {
		r = server_send_error(c, id, SOTTO__ERROR_CODE__ERR_REGISTRATION_CLOSED, NULL, 0);
		goto out;
	}
	if (cfg->registration == CONFIG_REGISTRATION_INVITE &&
	        (ru->invite_token == NULL || ru->invite_token[0] == '\0')) {
		r = server_send_error(c, id, SOTTO__ERROR_CODE__ERR_BAD_INVITE,
		        "this server needs an invite token", 0);
		goto out;
	}
	if (proto_username_normalize(name, ru->username) != 0) {
		r = server_send_error(c, id, SOTTO__ERROR_CODE__ERR_BAD_USERNAME, NULL, 0);
		goto out;
	}
	if (identity_pub_from_der(&pub, ru->identity_key.data, ru->identity_key.len) != 0 ||
	        (uint32_t)pub->type != ru->identity_type) {
		r = server_send_error(c, id, SOTTO__ERROR_CODE__ERR_BAD_KEY,
		        "identity key is not an Ed25519 or RSA-3072/4096 key of the stated type",
		        0);
		goto out;
	}
	if ((code = auth_check_spk(ru->spk, ru->identity_key.data, ru->identity_key.len)) != 0) {
		r = server_send_error(c, id, code, "signed prekey", 0);
		goto out;
	}
	if ((otks = calloc(ru->n_otks + 1, sizeof(*otks))) == NULL) {
		r = SOTTO_ERR_NOMEM;
		goto out;
	}
	if ((code = server_auth_check_otks(ru->otks, ru->n_otks, otks)) != 0) {
		r = server_send_error(c, id, code, "one-time prekeys", 0);
		goto out;
	}
	if ((r = sigmsg_register(&m, c->challenge, c->exporter, name)) != 0)
		goto out;
	if (identity_pub_verify(
	            pub, ru->signature.data, ru->signature.len, buf_ptr(&m), buf_len(&m)) != 0) {
		r = server_send_error(
		        c, id, SOTTO__ERROR_CODE__ERR_BAD_SIGNATURE, "registration signature", 0);
		goto out;
	}
	memset(&spk, 0, sizeof(spk));
	spk.id = ru->spk->id;
	memcpy(spk.public_key, ru->spk->public_key.data, PROTO_PREKEY_BYTES);
	memcpy(spk.signature, ru->spk->signature.data, ru->spk->signature.len);
	spk.signature_len = ru->spk->signature.len;
	spk.created = (int64_t)ru->spk->created;
	memset(&reg, 0, sizeof(reg));
	reg.name = name;
	reg.identity_type = ru->identity_type;
	reg.identity_key = ru->identity_key.data;
	reg.identity_key_len = ru->identity_key.len;
	reg.spk = &spk;
	reg.otks = otks;
	reg.n_otks = ru->n_otks;
	reg.invite_token =
	        cfg->registration == CONFIG_REGISTRATION_INVITE ? ru->invite_token : NULL;
	reg.admin = auth_is_config_admin(cfg, name);
	if ((r = server_batch(srv)) != 0)
		goto out;
	r = store_user_register(srv->store, &reg, server_now());
	if (r == SOTTO_ERR_EXISTS) {
		r = server_send_error(c, id, SOTTO__ERROR_CODE__ERR_USER_EXISTS, name, 0);
		goto out;
	}
	if (r == SOTTO_ERR_PERM) {
		r = server_send_error(c, id, SOTTO__ERROR_CODE__ERR_BAD_INVITE,
		        "the invite token is unknown, used or expired", 0);
		goto out;
	}
	if (r != 0)
		goto out;
	/* An account must be durable before its owner is told it exists. */
	server_commit(srv);
	if ((u = server_user(srv, name)) == NULL) {
		r = server_send_error(c, id, SOTTO__ERROR_CODE__ERR_INTERNAL,
		        "the account could not be stored", 0);
		goto out;
	}
	log_info("%s: registered %s (%s)", c->peer, name, identity_type_name(pub->type));
	server_auth_logged_in(c, u);
	frame_init(&rf, id);
	rf.body_case = SOTTO__FRAME__BODY_REGISTER_OK;
	rf.register_ok = &ok;
	ok.server_time_ms = (uint64_t)server_now_ms();
	/* Count what was stored: repeated ids in the request are kept once. */
	if (store_prekey_count_otks(srv->store, name, &ok.otk_remaining) != 0)
		ok.otk_remaining = 0;
	r = server_send(c, &rf);
	server_route_drain(c);
out:
	identity_pub_free(pub);
	free(otks);
	buf_free(&m);
	return r;
}

static int
auth_ping(struct conn *c, uint64_t id, const Sotto__Frame *f)
{
	Sotto__Frame rf;
	Sotto__Pong pong;

	sotto__pong__init(&pong);
	frame_init(&rf, id);
	rf.body_case = SOTTO__FRAME__BODY_PONG;
	rf.pong = &pong;
	pong.server_time_ms = (uint64_t)server_now_ms();
	return server_send(c, &rf);
}

static int
auth_bye(struct conn *c, uint64_t id, const Sotto__Frame *f)
{
	server_conn_close_with(c, id, SOTTO__ERROR_CODE__ERR_NONE, "goodbye", 0);
	return 0;
}

const struct server_handler server_auth_handlers[] = {
        {SOTTO__FRAME__BODY_HELLO, HANDLER_PREAUTH | HANDLER_PASSIVE, auth_hello},
        {SOTTO__FRAME__BODY_REGISTER_USER, HANDLER_PREAUTH, auth_register},
        {SOTTO__FRAME__BODY_LOGIN, HANDLER_PREAUTH, auth_login},
        {SOTTO__FRAME__BODY_PING, HANDLER_PREAUTH | HANDLER_PASSIVE, auth_ping},
        {SOTTO__FRAME__BODY_BYE, HANDLER_PREAUTH | HANDLER_PASSIVE | HANDLER_NOLIMIT, auth_bye},
        {0, 0, NULL},
};
