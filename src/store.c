/*
 * The storage interface handlers call: argument checks and name
 * normalisation in one place, then dispatch to the backend; see store.h.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/hash.h"
#include "src/sigmsg.h"
#include "src/store-backend.h"

void
store_vset_error(struct store *st, const char *fmt, va_list ap)
{
	vsnprintf(st->error, sizeof(st->error), fmt, ap);
}

void
store_set_error(struct store *st, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	store_vset_error(st, fmt, ap);
	va_end(ap);
}

/* Normalise a username argument; bad names are the caller's bug or the peer's input. */
static int
store_name(struct store *st, char out[STORE_NAME_MAX + 1], const char *in)
{
	if (in == NULL || proto_username_normalize(out, in) != 0) {
		store_set_error(st, "invalid username");
		return SOTTO_ERR_INVALID;
	}
	return 0;
}

/* Hash an invite token so that a leaked database does not leak usable invites. */
static int
store_token_hash(struct store *st, uint8_t out[STORE_TOKEN_HASH_BYTES], const char *token)
{
	size_t len;

	if (token == NULL || (len = strlen(token)) == 0 || len > STORE_TOKEN_MAX) {
		store_set_error(st, "invalid invite token");
		return SOTTO_ERR_INVALID;
	}
	hash_sha256(out, token, len);
	return 0;
}

void
store_close(struct store *st)
{
	if (st == NULL)
		return;
	if (st->in_batch)
		st->ops->rollback(st);
	st->ops->close(st);
}

const char *
store_backend_name(const struct store *st)
{
	return st->ops->name;
}

const char *
store_last_error(const struct store *st)
{
	return st->error[0] != '\0' ? st->error : "no error";
}

int
store_begin(struct store *st)
{
	int r;

	if (st->in_batch)
		return SOTTO_ERR_INVALID;
	if ((r = st->ops->begin(st)) != 0)
		return r;
	st->in_batch = 1;
	return 0;
}

int
store_commit(struct store *st)
{
	if (!st->in_batch)
		return SOTTO_ERR_INVALID;
	st->in_batch = 0;
	return st->ops->commit(st);
}

void
store_rollback(struct store *st)
{
	if (!st->in_batch)
		return;
	st->in_batch = 0;
	st->ops->rollback(st);
}

int
store_in_batch(const struct store *st)
{
	return st->in_batch;
}

/* An op on one user and nothing else: the name checked, then op. */
static int
store_by_name(struct store *st, const char *name, int (*op)(struct store *, const char *))
{
	char n[STORE_NAME_MAX + 1];
	int r;

	if ((r = store_name(st, n, name)) != 0)
		return r;
	return op(st, n);
}

/* An op that counts something of one user: the name checked, *count 0 unless op sets it. */
static int
store_count_by_name(struct store *st, const char *name, uint32_t *count,
        int (*op)(struct store *, const char *, uint32_t *))
{
	char n[STORE_NAME_MAX + 1];
	int r;

	*count = 0;
	if ((r = store_name(st, n, name)) != 0)
		return r;
	return op(st, n, count);
}

/* A prekey set from a client: bounded signature, nothing else to check here. */
static int
store_spk_ok(struct store *st, const struct store_spk *spk)
{
	if (spk == NULL || spk->signature_len > STORE_SIG_MAX) {
		store_set_error(st, "invalid signed prekey");
		return SOTTO_ERR_RANGE;
	}
	return 0;
}

int
store_user_register(struct store *st, const struct store_registration *reg, int64_t now)
{
	struct store_registration r2;
	uint8_t hash[STORE_TOKEN_HASH_BYTES];
	char name[STORE_NAME_MAX + 1];
	int r;

	if (reg == NULL)
		return SOTTO_ERR_INVALID;
	if ((r = store_name(st, name, reg->name)) != 0)
		return r;
	if ((r = store_spk_ok(st, reg->spk)) != 0)
		return r;
	if (reg->identity_key == NULL || reg->identity_key_len == 0 ||
	        reg->identity_key_len > STORE_IDKEY_MAX || reg->n_otks > STORE_OTK_MAX ||
	        (reg->n_otks > 0 && reg->otks == NULL)) {
		store_set_error(st, "registration out of range");
		return SOTTO_ERR_RANGE;
	}
	if (reg->invite_token != NULL && (r = store_token_hash(st, hash, reg->invite_token)) != 0)
		return SOTTO_ERR_PERM;
	r2 = *reg;
	r2.name = name;
	r2.admin = reg->admin != 0;
	return st->ops->user_register(st, &r2, reg->invite_token != NULL ? hash : NULL, now);
}

int
store_user_get(struct store *st, const char *name, struct store_user *out)
{
	char n[STORE_NAME_MAX + 1];
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = store_name(st, n, name)) != 0)
		return r;
	return st->ops->user_get(st, n, out);
}

int
store_user_set_last_seen(struct store *st, const char *name, int64_t now)
{
	char n[STORE_NAME_MAX + 1];
	int r;

	if ((r = store_name(st, n, name)) != 0)
		return r;
	return st->ops->user_set_last_seen(st, n, now);
}

int
store_user_set_admin(struct store *st, const char *name, int admin)
{
	char n[STORE_NAME_MAX + 1];
	int r;

	if ((r = store_name(st, n, name)) != 0)
		return r;
	return st->ops->user_set_admin(st, n, admin != 0);
}

int
store_user_delete(struct store *st, const char *name)
{
	return store_by_name(st, name, st->ops->user_delete);
}

int
store_user_list_seen(struct store *st, int64_t since, size_t limit, store_name_cb cb, void *arg)
{
	if (cb == NULL)
		return SOTTO_ERR_INVALID;
	if (limit > STORE_LIST_MAX)
		limit = STORE_LIST_MAX;
	return st->ops->user_list_seen(st, since, limit, cb, arg);
}

int
store_prekey_set_signed(
        struct store *st, const char *name, const struct store_spk *spk, int64_t now)
{
	char n[STORE_NAME_MAX + 1];
	int r;

	if ((r = store_name(st, n, name)) != 0)
		return r;
	if ((r = store_spk_ok(st, spk)) != 0)
		return r;
	return st->ops->prekey_set_signed(st, n, spk, now);
}

int
store_prekey_get_signed(struct store *st, const char *name, struct store_spk *out)
{
	char n[STORE_NAME_MAX + 1];
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = store_name(st, n, name)) != 0)
		return r;
	return st->ops->prekey_get_signed(st, n, out);
}

int
store_prekey_add_otks(struct store *st, const char *name, const struct store_otk *otks, size_t n,
        uint32_t *remaining)
{
	char nm[STORE_NAME_MAX + 1];
	uint32_t dummy;
	int r;

	if (remaining == NULL)
		remaining = &dummy;
	*remaining = 0;
	if ((r = store_name(st, nm, name)) != 0)
		return r;
	if (n > STORE_OTK_MAX) {
		store_set_error(st, "too many one-time prekeys");
		return SOTTO_ERR_RANGE;
	}
	if (n > 0 && otks == NULL)
		return SOTTO_ERR_INVALID;
	return st->ops->prekey_add_otks(st, nm, otks, n, remaining);
}

int
store_prekey_count_otks(struct store *st, const char *name, uint32_t *count)
{
	return store_count_by_name(st, name, count, st->ops->prekey_count_otks);
}

int
store_prekey_take_bundle(struct store *st, const char *name, struct store_bundle *out)
{
	char n[STORE_NAME_MAX + 1];
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = store_name(st, n, name)) != 0)
		return r;
	return st->ops->prekey_take_bundle(st, n, out);
}

int
store_queue_push(struct store *st, const char *recipient, enum store_kind kind, const char *peer,
        const uint8_t msg_id[STORE_MSG_ID_BYTES], int64_t timestamp_ms, const uint8_t *sealed,
        size_t sealed_len, uint64_t *seq, int *duplicate)
{
	char rn[STORE_NAME_MAX + 1], pn[STORE_NAME_MAX + 1];
	uint64_t seq_dummy;
	int dup_dummy, r;

	if (seq == NULL)
		seq = &seq_dummy;
	if (duplicate == NULL)
		duplicate = &dup_dummy;
	*seq = 0;
	*duplicate = 0;
	if ((r = store_name(st, rn, recipient)) != 0 || (r = store_name(st, pn, peer)) != 0)
		return r;
	if ((kind != STORE_KIND_ENVELOPE && kind != STORE_KIND_DELIVERED &&
	            kind != STORE_KIND_GROUP) ||
	        msg_id == NULL || (kind == STORE_KIND_GROUP && sealed_len < STORE_GROUP_ID_BYTES) ||
	        (sealed == NULL && sealed_len > 0))
		return SOTTO_ERR_INVALID;
	if (sealed_len > STORE_SEALED_MAX) {
		store_set_error(st, "envelope too large");
		return SOTTO_ERR_RANGE;
	}
	return st->ops->queue_push(st, rn, kind, pn, msg_id, timestamp_ms,
	        sealed != NULL ? sealed : (const uint8_t *)"", sealed_len, seq, duplicate);
}

int
store_queue_fetch(struct store *st, const char *recipient, uint64_t after_seq, size_t limit,
        store_msg_cb cb, void *arg)
{
	char n[STORE_NAME_MAX + 1];
	int r;

	if ((r = store_name(st, n, recipient)) != 0)
		return r;
	if (cb == NULL || after_seq > INT64_MAX)
		return SOTTO_ERR_INVALID;
	if (limit > STORE_FETCH_MAX)
		limit = STORE_FETCH_MAX;
	if (limit == 0)
		return 0;
	return st->ops->queue_fetch(st, n, after_seq, limit, cb, arg);
}

int
store_queue_count(struct store *st, const char *recipient, uint32_t *count)
{
	return store_count_by_name(st, recipient, count, st->ops->queue_count);
}

int
store_queue_has(struct store *st, const char *recipient, const char *peer,
        const uint8_t msg_id[STORE_MSG_ID_BYTES], int *found)
{
	char rn[STORE_NAME_MAX + 1], pn[STORE_NAME_MAX + 1];
	int r;

	*found = 0;
	if ((r = store_name(st, rn, recipient)) != 0 || (r = store_name(st, pn, peer)) != 0)
		return r;
	if (msg_id == NULL)
		return SOTTO_ERR_INVALID;
	return st->ops->queue_has(st, rn, pn, msg_id, found);
}

int
store_queue_keys(struct store *st, store_key_cb cb, void *arg)
{
	if (cb == NULL)
		return SOTTO_ERR_INVALID;
	return st->ops->queue_keys(st, cb, arg);
}

int
store_queue_delete(struct store *st, const char *recipient,
        const uint8_t (*ids)[STORE_MSG_ID_BYTES], size_t n, uint64_t max_seq, int64_t now,
        struct store_receipt **receipts, size_t *n_receipts, size_t *n_deleted)
{
	char rn[STORE_NAME_MAX + 1];
	size_t dummy;
	int r;

	if (n_deleted == NULL)
		n_deleted = &dummy;
	*receipts = NULL;
	*n_receipts = 0;
	*n_deleted = 0;
	if ((r = store_name(st, rn, recipient)) != 0)
		return r;
	if (n > STORE_ACK_MAX) {
		store_set_error(st, "too many ids");
		return SOTTO_ERR_RANGE;
	}
	if (n == 0)
		return 0;
	if (ids == NULL)
		return SOTTO_ERR_INVALID;
	return st->ops->queue_delete(st, rn, ids, n, max_seq, now, receipts, n_receipts, n_deleted);
}

int
store_block_add(struct store *st, const char *blocker, const char *blocked, int64_t now)
{
	char a[STORE_NAME_MAX + 1], b[STORE_NAME_MAX + 1];
	int r;

	if ((r = store_name(st, a, blocker)) != 0 || (r = store_name(st, b, blocked)) != 0)
		return r;
	if (strcmp(a, b) == 0)
		return SOTTO_ERR_INVALID;
	return st->ops->block_add(st, a, b, now);
}

int
store_block_remove(struct store *st, const char *blocker, const char *blocked)
{
	char a[STORE_NAME_MAX + 1], b[STORE_NAME_MAX + 1];
	int r;

	if ((r = store_name(st, a, blocker)) != 0 || (r = store_name(st, b, blocked)) != 0)
		return r;
	return st->ops->block_remove(st, a, b);
}

int
store_block_check(struct store *st, const char *blocker, const char *blocked, int *is_blocked)
{
	char a[STORE_NAME_MAX + 1], b[STORE_NAME_MAX + 1];
	int r;

	*is_blocked = 0;
	if ((r = store_name(st, a, blocker)) != 0 || (r = store_name(st, b, blocked)) != 0)
		return r;
	return st->ops->block_check(st, a, b, is_blocked);
}

/* Both directions of the block listing share the checks. */
static int
store_block_list_dir(
        struct store *st, const char *name, int reverse, size_t limit, store_name_cb cb, void *arg)
{
	char n[STORE_NAME_MAX + 1];
	int r;

	if ((r = store_name(st, n, name)) != 0)
		return r;
	if (cb == NULL)
		return SOTTO_ERR_INVALID;
	if (limit > STORE_LIST_MAX)
		limit = STORE_LIST_MAX;
	if (limit == 0)
		return 0;
	return st->ops->block_list(st, n, reverse, limit, cb, arg);
}

int
store_block_list(struct store *st, const char *blocker, size_t limit, store_name_cb cb, void *arg)
{
	return store_block_list_dir(st, blocker, 0, limit, cb, arg);
}

int
store_block_list_blockers(
        struct store *st, const char *blocked, size_t limit, store_name_cb cb, void *arg)
{
	return store_block_list_dir(st, blocked, 1, limit, cb, arg);
}

int
store_auth_locked(struct store *st, const char *name, int64_t now, int64_t *locked_until)
{
	char n[STORE_NAME_MAX + 1];
	int r;

	*locked_until = 0;
	if ((r = store_name(st, n, name)) != 0)
		return r;
	return st->ops->auth_locked(st, n, now, locked_until);
}

int
store_auth_fail(struct store *st, const char *name, int64_t now, uint32_t max_failures,
        uint32_t duration, uint32_t *failures, int64_t *locked_until)
{
	char n[STORE_NAME_MAX + 1];
	int r;

	*failures = 0;
	*locked_until = 0;
	if ((r = store_name(st, n, name)) != 0)
		return r;
	if (max_failures == 0)
		return SOTTO_ERR_INVALID;
	return st->ops->auth_fail(st, n, now, max_failures, duration, failures, locked_until);
}

int
store_auth_reset(struct store *st, const char *name)
{
	return store_by_name(st, name, st->ops->auth_reset);
}

int
store_invite_create(
        struct store *st, const char *token, const char *created_by, int64_t now, int64_t expires)
{
	uint8_t hash[STORE_TOKEN_HASH_BYTES];
	char n[STORE_NAME_MAX + 1] = "";
	int r;

	if (created_by != NULL && (r = store_name(st, n, created_by)) != 0)
		return r;
	if ((r = store_token_hash(st, hash, token)) != 0)
		return r;
	return st->ops->invite_create(st, hash, n, now, expires);
}

int
store_invite_use(struct store *st, const char *token, const char *used_by, int64_t now)
{
	uint8_t hash[STORE_TOKEN_HASH_BYTES];
	char n[STORE_NAME_MAX + 1];
	int r;

	if ((r = store_name(st, n, used_by)) != 0)
		return r;
	if (store_token_hash(st, hash, token) != 0)
		return SOTTO_ERR_PERM;
	return st->ops->invite_use(st, hash, n, now);
}

int
store_prune(struct store *st, int64_t now)
{
	return st->ops->prune(st, now);
}

/* ---- groups ------------------------------------------------------------------- */

/* A change the backends can store as given: names canonical, sizes within the limits. */
static int
store_group_change_ok(struct store *st, const struct store_group_change *ch)
{
	char n[STORE_NAME_MAX + 1];

	if (ch == NULL || ch->signer == NULL || proto_username_normalize(n, ch->signer) != 0 ||
	        strcmp(n, ch->signer) != 0 || ch->op < STORE_GROUP_CREATE ||
	        ch->op > STORE_GROUP_LEAVE || ch->n_users > STORE_GROUP_USERS_MAX ||
	        !sigmsg_users_canonical(ch->users, ch->n_users) ||
	        (ch->signature == NULL && ch->signature_len > 0) ||
	        ch->signature_len > STORE_SIG_MAX || ch->serial == 0 || ch->serial > INT64_MAX) {
		store_set_error(st, "malformed group change");
		return SOTTO_ERR_INVALID;
	}
	return 0;
}

int
store_group_create(struct store *st, const uint8_t id[STORE_GROUP_ID_BYTES], const char *owner,
        const struct store_group_change *ch)
{
	char n[STORE_NAME_MAX + 1];
	int r;

	if (id == NULL)
		return SOTTO_ERR_INVALID;
	if ((r = store_name(st, n, owner)) != 0 || (r = store_group_change_ok(st, ch)) != 0)
		return r;
	if (ch->serial != 1 || ch->op != STORE_GROUP_CREATE || strcmp(ch->signer, n) != 0 ||
	        ch->n_users + 1 > STORE_GROUP_USERS_MAX) {
		store_set_error(st, "a group starts with its owner's creation, serial 1");
		return SOTTO_ERR_INVALID;
	}
	return st->ops->group_create(st, id, n, ch);
}

int
store_group_get(struct store *st, const uint8_t id[STORE_GROUP_ID_BYTES], struct store_group *out)
{
	memset(out, 0, sizeof(*out));
	if (id == NULL)
		return SOTTO_ERR_INVALID;
	return st->ops->group_get(st, id, out);
}

int
store_group_apply(struct store *st, const uint8_t id[STORE_GROUP_ID_BYTES],
        const struct store_group_change *ch)
{
	int r;

	if (id == NULL)
		return SOTTO_ERR_INVALID;
	if ((r = store_group_change_ok(st, ch)) != 0)
		return r;
	if (ch->op == STORE_GROUP_CREATE || ch->n_users == 0) {
		store_set_error(st, "a change after the creation adds, removes or leaves");
		return SOTTO_ERR_INVALID;
	}
	return st->ops->group_apply(st, id, ch);
}

int
store_group_delete(struct store *st, const uint8_t id[STORE_GROUP_ID_BYTES])
{
	if (id == NULL)
		return SOTTO_ERR_INVALID;
	return st->ops->group_delete(st, id);
}

int
store_group_is_member(
        struct store *st, const uint8_t id[STORE_GROUP_ID_BYTES], const char *name, int *member)
{
	char n[STORE_NAME_MAX + 1];
	int r;

	*member = 0;
	if (id == NULL)
		return SOTTO_ERR_INVALID;
	if ((r = store_name(st, n, name)) != 0)
		return r;
	return st->ops->group_is_member(st, id, n, member);
}

int
store_group_members(struct store *st, const uint8_t id[STORE_GROUP_ID_BYTES], size_t limit,
        store_name_cb cb, void *arg)
{
	if (id == NULL || cb == NULL)
		return SOTTO_ERR_INVALID;
	if (limit > STORE_GROUP_USERS_MAX)
		limit = STORE_GROUP_USERS_MAX;
	return st->ops->group_members(st, id, limit, cb, arg);
}

int
store_group_changes(struct store *st, const uint8_t id[STORE_GROUP_ID_BYTES], uint64_t after,
        size_t limit, store_group_change_cb cb, void *arg)
{
	if (id == NULL || cb == NULL)
		return SOTTO_ERR_INVALID;
	if (after > INT64_MAX)
		after = INT64_MAX;
	if (limit > STORE_LIST_MAX)
		limit = STORE_LIST_MAX;
	return st->ops->group_changes(st, id, after, limit, cb, arg);
}

int
store_group_count_for(struct store *st, const char *name, uint32_t *count)
{
	return store_count_by_name(st, name, count, st->ops->group_count_for);
}

/* --- files (issue 6) --- */

int
store_file_create(
        struct store *st, const struct store_file *f, const char *const *recipients, size_t n)
{
	char(*names)[STORE_NAME_MAX + 1] = NULL;
	struct store_file f2;
	size_t i, j, m = 0;
	int r;

	if (f == NULL || (n > 0 && recipients == NULL))
		return SOTTO_ERR_INVALID;
	if (n == 0 || n > STORE_FILE_RECIPIENTS_MAX || f->size > STORE_FILE_SIZE_MAX) {
		store_set_error(st, "file out of range");
		return SOTTO_ERR_RANGE;
	}
	f2 = *f;
	f2.complete = 0;
	if ((r = store_name(st, f2.uploader, f->uploader)) != 0)
		return r;
	if ((names = calloc(n, sizeof(*names))) == NULL)
		return SOTTO_ERR_NOMEM;
	for (i = 0; i < n; i++) {
		if ((r = store_name(st, names[m], recipients[i])) != 0)
			goto out;
		for (j = 0; j < m && strcmp(names[j], names[m]) != 0; j++)
			;
		if (j == m)
			m++;
	}
	r = st->ops->file_create(st, &f2, names, m);
out:
	free(names);
	return r;
}

int
store_file_get(struct store *st, const uint8_t id[STORE_FILE_ID_BYTES], struct store_file *out)
{
	memset(out, 0, sizeof(*out));
	if (id == NULL)
		return SOTTO_ERR_INVALID;
	return st->ops->file_get(st, id, out);
}

int
store_file_role(struct store *st, const uint8_t id[STORE_FILE_ID_BYTES], const char *name,
        enum store_file_role *role)
{
	char n[STORE_NAME_MAX + 1];
	int r;

	*role = STORE_FILE_NONE;
	if (id == NULL)
		return SOTTO_ERR_INVALID;
	if ((r = store_name(st, n, name)) != 0)
		return r;
	return st->ops->file_role(st, id, n, role);
}

int
store_file_set_complete(struct store *st, const uint8_t id[STORE_FILE_ID_BYTES])
{
	if (id == NULL)
		return SOTTO_ERR_INVALID;
	return st->ops->file_set_complete(st, id);
}

int
store_file_done(struct store *st, const uint8_t id[STORE_FILE_ID_BYTES], const char *name,
        uint32_t *remaining)
{
	char n[STORE_NAME_MAX + 1];
	uint32_t dummy;
	int r;

	if (remaining == NULL)
		remaining = &dummy;
	*remaining = 0;
	if (id == NULL)
		return SOTTO_ERR_INVALID;
	if ((r = store_name(st, n, name)) != 0)
		return r;
	return st->ops->file_done(st, id, n, remaining);
}

int
store_file_delete(struct store *st, const uint8_t id[STORE_FILE_ID_BYTES])
{
	if (id == NULL)
		return SOTTO_ERR_INVALID;
	return st->ops->file_delete(st, id);
}

int
store_file_usage(struct store *st, const char *uploader, uint64_t *bytes)
{
	char n[STORE_NAME_MAX + 1];
	int r;

	*bytes = 0;
	if ((r = store_name(st, n, uploader)) != 0)
		return r;
	return st->ops->file_usage(st, n, bytes);
}

int
store_file_list_expired(struct store *st, int64_t before, size_t limit, store_file_cb cb, void *arg)
{
	if (cb == NULL)
		return SOTTO_ERR_INVALID;
	if (limit > STORE_FETCH_MAX)
		limit = STORE_FETCH_MAX;
	if (limit == 0)
		return 0;
	return st->ops->file_list_expired(st, before, limit, cb, arg);
}
