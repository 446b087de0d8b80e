/*
 * Prekeys: UploadPrekeys (replace the signed prekey, add one-time prekeys)
 * and GetBundle (hand out a user's keys, consuming one one-time prekey).
 * Both commit before answering: a prekey the client believes uploaded, or a
 * one-time prekey already handed out, must not come back after a crash.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "src/log.h"
#include "src/server.h"

static int
prekey_upload(struct conn *c, uint64_t id, const Sotto__Frame *f)
{
	struct server *srv = c->srv;
	const Sotto__UploadPrekeys *up = f->upload_prekeys;
	Sotto__PrekeysOk ok;
	struct store_otk *otks = NULL;
	struct store_user *su = NULL;
	struct store_spk spk;
	uint32_t code, remaining = 0;
	Sotto__Frame rf;
	int r;

	sotto__prekeys_ok__init(&ok);
	if ((otks = calloc(up->n_otks + 1, sizeof(*otks))) == NULL ||
	        (su = malloc(sizeof(*su))) == NULL) {
		r = SOTTO_ERR_NOMEM;
		goto out;
	}
	if ((code = server_auth_check_otks(up->otks, up->n_otks, otks)) != 0) {
		r = server_send_error(c, id, code, "one-time prekeys", 0);
		goto out;
	}
	if ((r = store_user_get(srv->store, c->user->name, su)) != 0)
		goto out;
	/* Check everything before writing anything, so a refused upload changes nothing. */
	if (up->spk != NULL) {
		code = server_auth_check_spk(up->spk, su->identity_key, su->identity_key_len);
		if (code != 0) {
			r = server_send_error(c, id, code, "signed prekey", 0);
			goto out;
		}
		memset(&spk, 0, sizeof(spk));
		spk.id = up->spk->id;
		memcpy(spk.public_key, up->spk->public_key.data, PROTO_PREKEY_BYTES);
		memcpy(spk.signature, up->spk->signature.data, up->spk->signature.len);
		spk.signature_len = up->spk->signature.len;
		spk.created = (int64_t)up->spk->created;
	}
	if ((r = server_batch(srv)) != 0)
		goto out;
	if (up->n_otks > 0) {
		/* store_prekey_add_otks adds none when the user would hold too many. */
		r = store_prekey_add_otks(srv->store, c->user->name, otks, up->n_otks, &remaining);
		if (r == SOTTO_ERR_RANGE) {
			r = server_send_error(c, id, SOTTO__ERROR_CODE__ERR_BAD_REQUEST,
			        "too many one-time prekeys held", 0);
			goto out;
		}
		if (r != 0)
			goto out;
	} else if ((r = store_prekey_count_otks(srv->store, c->user->name, &remaining)) != 0) {
		goto out;
	}
	if (up->spk != NULL &&
	        (r = store_prekey_set_signed(srv->store, c->user->name, &spk, server_now())) != 0)
		goto out;
	server_commit(srv);
	frame_init(&rf, id);
	rf.body_case = SOTTO__FRAME__BODY_PREKEYS_OK;
	rf.prekeys_ok = &ok;
	ok.otk_remaining = remaining;
	r = server_send(c, &rf);
out:
	free(otks);
	free(su);
	return r;
}

static int
prekey_bundle(struct conn *c, uint64_t id, const Sotto__Frame *f)
{
	struct server *srv = c->srv;
	const Sotto__GetBundle *gb = f->get_bundle;
	Sotto__Bundle bundle;
	Sotto__SignedPrekey spk;
	Sotto__OneTimePrekey otk;
	char name[PROTO_USERNAME_MAX + 1];
	struct store_bundle *b = NULL;
	Sotto__Frame rf;
	int r;

	sotto__bundle__init(&bundle);
	sotto__signed_prekey__init(&spk);
	sotto__one_time_prekey__init(&otk);
	if (proto_username_normalize(name, gb->username) != 0) {
		r = server_send_error(c, id, SOTTO__ERROR_CODE__ERR_BAD_USERNAME, NULL, 0);
		goto out;
	}
	if ((b = malloc(sizeof(*b))) == NULL) {
		r = SOTTO_ERR_NOMEM;
		goto out;
	}
	if ((r = server_batch(srv)) != 0)
		goto out;
	r = store_prekey_take_bundle(srv->store, name, b);
	if (r == SOTTO_ERR_NOTFOUND) {
		r = server_send_error(c, id, SOTTO__ERROR_CODE__ERR_NO_SUCH_USER, name, 0);
		goto out;
	}
	if (r == SOTTO_ERR_AGAIN) {
		r = server_send_error(c, id, SOTTO__ERROR_CODE__ERR_NO_PREKEYS, name, 0);
		goto out;
	}
	if (r != 0)
		goto out;
	server_commit(srv);
	frame_init(&rf, id);
	rf.body_case = SOTTO__FRAME__BODY_BUNDLE;
	rf.bundle = &bundle;
	bundle.username = b->user.name;
	bundle.identity_key = proto_bytes(b->user.identity_key, b->user.identity_key_len);
	bundle.identity_type = b->user.identity_type;
	bundle.spk = &spk;
	spk.id = b->spk.id;
	spk.public_key = proto_bytes(b->spk.public_key, sizeof(b->spk.public_key));
	spk.signature = proto_bytes(b->spk.signature, b->spk.signature_len);
	spk.created = (uint64_t)b->spk.created;
	if (b->has_otk) {
		bundle.otk = &otk;
		otk.id = b->otk.id;
		otk.public_key = proto_bytes(b->otk.public_key, sizeof(b->otk.public_key));
	}
	r = server_send(c, &rf);
out:
	free(b);
	return r;
}

const struct server_handler server_prekey_handlers[] = {
        {SOTTO__FRAME__BODY_UPLOAD_PREKEYS, 0, prekey_upload},
        {SOTTO__FRAME__BODY_GET_BUNDLE, 0, prekey_bundle},
        {0, 0, NULL},
};
