/*
 * sotto register, and the prekey upkeep every login does: the signed prekey
 * rotates weekly, the one it replaces still opens sessions for a grace
 * period, and one-time prekeys are topped up.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto/buf.h"
#include "crypto/ecc.h"
#include "crypto/util.h"
#include "src/client-cmd.h"
#include "src/client-conf.h"
#include "src/sigmsg.h"

#define PREKEY_BATCH    100 /* one-time prekeys made at a time */
#define PREKEY_LOW_MARK 20  /* top up below this many */
#define SPK_DAY         86400
#define SPK_ROTATE_SECS (7 * SPK_DAY) /* a signed prekey this old is replaced at login */
/*
 * A replaced signed prekey's secret is kept this long after it was
 * replaced, so that a session a peer started from a bundle fetched before
 * the rotation still opens when its first message comes in: two rotation
 * periods.  Measured from the rotation, which happens at a login, so time
 * spent offline does not count against messages queued meanwhile.
 */
#define SPK_GRACE_SECS (14 * SPK_DAY)

/* The prekeys' clock: the real one, or --test-now in tests. */
static int64_t
prekey_now(const struct sotto_ctx *ctx)
{
	return ctx->test_now > 0 ? ctx->test_now : (int64_t)time(NULL);
}

/* Prekeys made for one upload; their secrets go into client.db (in the caller's transaction). */
struct prekeys {
	Sotto__SignedPrekey spk;
	uint8_t spk_pub[X25519_KEYBYTES];
	uint8_t sig[IDENTITY_SIG_MAX];
	Sotto__OneTimePrekey otk[PREKEY_BATCH];
	Sotto__OneTimePrekey *otkp[PREKEY_BATCH];
	uint8_t otk_pub[PREKEY_BATCH][X25519_KEYBYTES];
	size_t n_otk;
};

/*
 * Make a signed prekey (if with_spk; it becomes current and the one before
 * it is retired) and n one-time prekeys, storing the secrets.
 */
static int
prekeys_make(struct sotto_ctx *ctx, struct prekeys *pk, int with_spk, size_t n, int64_t now)
{
	uint8_t sec[X25519_KEYBYTES];
	uint32_t first;
	size_t siglen, i;
	struct buf m;
	int r;

	memset(pk, 0, sizeof(*pk));
	buf_init(&m, 0);
	if (with_spk) {
		if ((r = client_store_next_ids(ctx->store, CLIENT_COUNTER_SPK, 1, &first)) != 0)
			goto out;
		x25519_keypair(pk->spk_pub, sec);
		if ((r = sigmsg_spk(&m, first, pk->spk_pub, (uint64_t)now)) != 0 ||
		        (r = identity_sign(pk->sig, sizeof(pk->sig), &siglen, ctx->id, buf_ptr(&m),
		                 buf_len(&m))) != 0 ||
		        (r = client_store_spk_add(ctx->store, first, sec, sizeof(sec), now)) != 0 ||
		        (r = client_store_meta_set_int(ctx->store, CLIENT_META_SPK_ROTATED, now)) !=
		                0)
			goto out;
		sotto__signed_prekey__init(&pk->spk);
		pk->spk.id = first;
		pk->spk.public_key = proto_bytes(pk->spk_pub, sizeof(pk->spk_pub));
		pk->spk.signature = proto_bytes(pk->sig, siglen);
		pk->spk.created = (uint64_t)now;
	}
	if (n > PREKEY_BATCH)
		n = PREKEY_BATCH;
	if (n > 0 && (r = client_store_next_ids(
	                      ctx->store, CLIENT_COUNTER_OTK, (uint32_t)n, &first)) != 0)
		goto out;
	for (i = 0; i < n; i++) {
		x25519_keypair(pk->otk_pub[i], sec);
		if ((r = client_store_otk_add(
		             ctx->store, first + (uint32_t)i, sec, sizeof(sec), now)) != 0)
			goto out;
		sotto__one_time_prekey__init(&pk->otk[i]);
		pk->otk[i].id = first + (uint32_t)i;
		pk->otk[i].public_key = proto_bytes(pk->otk_pub[i], X25519_KEYBYTES);
		pk->otkp[i] = &pk->otk[i];
	}
	pk->n_otk = n;
	r = 0;
out:
	sotto_wipe(sec, sizeof(sec));
	buf_free(&m);
	return r;
}

int
account_prekeys(struct sotto_ctx *ctx, uint32_t otk_remaining)
{
	struct prekeys *pk = NULL;
	Sotto__UploadPrekeys up;
	Sotto__Frame req, *reply = NULL;
	int64_t now = prekey_now(ctx), created = 0;
	uint32_t spk_id, pruned = 0;
	size_t n_otk = 0;
	int rotate, r;
	char err[512];

	if (ctx->store == NULL) {
		if (client_paths_mkdirs(ctx->paths, err, sizeof(err)) != 0)
			return ctx_fail(SOTTO_EXIT_INTERNAL, "%s", err);
		/* The sotto that holds the profile did this at its own login. */
		if ((r = client_paths_lock(ctx->paths, err, sizeof(err))) == SOTTO_ERR_AGAIN)
			return 0;
		if (r != 0)
			return ctx_fail(SOTTO_EXIT_USAGE, "%s", err);
		if ((r = ctx_need_store(ctx)) != 0)
			return r;
	}
	if ((pk = malloc(sizeof(*pk))) == NULL)
		return ctx_fail(SOTTO_EXIT_INTERNAL, "out of memory");
	if ((r = client_store_begin(ctx->store)) != 0)
		goto out;
	/* Secure delete overwrites the pruned secrets in the database file. */
	if ((r = client_store_spk_prune(ctx->store, now, SPK_GRACE_SECS, &pruned)) != 0)
		goto fail;
	r = client_store_spk_current(ctx->store, &spk_id, &created);
	if (r != 0 && r != SOTTO_ERR_NOTFOUND)
		goto fail;
	/* No signed prekey of ours (client.db made afresh): the server's one is useless to us. */
	rotate = r == SOTTO_ERR_NOTFOUND || now - created >= SPK_ROTATE_SECS;
	if (otk_remaining < PREKEY_LOW_MARK)
		n_otk = PREKEY_BATCH - otk_remaining;
	if (!rotate && n_otk == 0) {
		r = client_store_commit(ctx->store);
		goto out;
	}
	if ((r = prekeys_make(ctx, pk, rotate, n_otk, now)) != 0)
		goto fail;
	sotto__upload_prekeys__init(&up);
	up.spk = rotate ? &pk->spk : NULL;
	up.otks = pk->otkp;
	up.n_otks = pk->n_otk;
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_UPLOAD_PREKEYS;
	req.upload_prekeys = &up;
	/* The new secrets are committed only once the server has the public halves. */
	if ((r = client_conn_request(ctx->conn, &req, &reply, 0)) != 0) {
		client_store_rollback(ctx->store);
		r = ctx_request_fail(ctx,
		        rotate ? "cannot upload a new signed prekey"
		               : "cannot upload one-time prekeys",
		        r);
		goto out;
	}
	r = client_store_commit(ctx->store);
	goto out;
fail:
	client_store_rollback(ctx->store);
out:
	if (r < 0)
		r = ctx_fail(SOTTO_EXIT_INTERNAL, "cannot keep the prekeys: %s", sotto_strerror(r));
	frame_free(reply);
	if (pk != NULL) {
		sotto_wipe(pk, sizeof(*pk));
		free(pk);
	}
	return r;
}

/*
 * Remember the server, the user name and an --identity given on the command
 * line (as an absolute path, so that it works from any directory) in
 * sotto.conf, changing only those lines.
 */
static int
conf_save(struct sotto_ctx *ctx)
{
	const char *keys[3] = {"server", "user", "identity"};
	const char *values[3];
	char *abs = NULL, err[1200];
	size_t n = 2;
	int r;

	if (client_paths_mkdirs(ctx->paths, err, sizeof(err)) != 0)
		return ctx_fail(SOTTO_EXIT_INTERNAL, "%s", err);
	values[0] = ctx->server;
	values[1] = ctx->username;
	if (ctx->identity_path != NULL) {
		if ((r = client_conf_abspath(&abs, ctx->identity_path, err, sizeof(err))) != 0)
			return ctx_fail(SOTTO_EXIT_INTERNAL, "%s", err);
		values[n++] = abs;
	}
	r = client_conf_set(ctx->paths->conf, keys, values, n, err, sizeof(err));
	free(abs);
	if (r == SOTTO_ERR_INVALID || r == SOTTO_ERR_RANGE)
		return ctx_fail(SOTTO_EXIT_USAGE, "%s", err);
	if (r != 0)
		return ctx_fail(SOTTO_EXIT_INTERNAL, "%s", err);
	return 0;
}

int
cmd_register(struct sotto_ctx *ctx, int argc, char **argv)
{
	struct prekeys *pk = NULL;
	char fp[FINGERPRINT_LEN];
	int r;

	if (argc != 2)
		return ctx_fail(SOTTO_EXIT_USAGE, "usage: sotto register USER");
	ctx->user = argv[1];
	if ((r = ctx_need_user(ctx)) != 0 || (r = ctx_need_server(ctx)) != 0 ||
	        (r = ctx_need_store(ctx)) != 0 || (r = ctx_connect(ctx)) != 0)
		return r;
	if ((pk = malloc(sizeof(*pk))) == NULL)
		return ctx_fail(SOTTO_EXIT_INTERNAL, "out of memory");
	if ((r = client_store_begin(ctx->store)) != 0)
		goto out;
	if ((r = prekeys_make(ctx, pk, 1, PREKEY_BATCH, prekey_now(ctx))) != 0) {
		client_store_rollback(ctx->store);
		goto out;
	}
	if ((r = client_conn_register(ctx->conn, ctx->username, ctx->id, &pk->spk, pk->otkp,
	             pk->n_otk, NULL)) != 0) {
		client_store_rollback(ctx->store);
		r = ctx_request_fail(ctx, "cannot register", r);
		goto out;
	}
	if ((r = client_store_meta_set_str(ctx->store, CLIENT_META_SERVER, ctx->server)) != 0 ||
	        (r = client_store_meta_set_str(ctx->store, CLIENT_META_USERNAME, ctx->username)) !=
	                0 ||
	        (r = client_store_commit(ctx->store)) != 0)
		goto out;
	if ((r = conf_save(ctx)) != 0)
		goto out;
	identity_fingerprint(fp, identity_public(ctx->id));
	if (ctx->json)
		printf("{\"event\":\"registered\",\"user\":\"%s\",\"server\":\"%s\","
		       "\"fingerprint\":\"%s\"}\n",
		        ctx->username, ctx->server, fp);
	else
		printf("registered %s on %s (key %s)\n", ctx->username, ctx->server, fp);
out:
	if (r < 0)
		r = ctx_fail(SOTTO_EXIT_INTERNAL, "cannot register: %s", sotto_strerror(r));
	if (pk != NULL) {
		sotto_wipe(pk, sizeof(*pk));
		free(pk);
	}
	return r;
}
