/*
 * sottod's durable state behind one interface: accounts, prekeys, the
 * store-and-forward queue, blocks, invites and login failures.  Handlers call
 * only the store_* functions below; a backend (store-sqlite.c today, Redis
 * later) fills in struct store_ops from store-backend.h and never sees a
 * username that breaks the rule or a raw invite token.
 *
 * Ownership: store_sqlite_open() returns a store owned by the caller and
 * released with store_close().  Every pointer argument is borrowed for the
 * call.  Output structs are caller-allocated and hold their data inline,
 * except the receipt array of store_queue_delete (free() it).  Pointers
 * handed to callbacks are valid only during the callback, and a callback must
 * not call back into the store.
 *
 * Names: usernames may be given in any case; the store keeps and returns the
 * lower-case form.  A name that breaks the username rule gives
 * SOTTO_ERR_INVALID.  Times are Unix seconds, except where named _ms.  The
 * caller passes "now" so that expiry is testable.
 *
 * Transactions: every operation is atomic on its own.  Between store_begin()
 * and store_commit() operations join one transaction (the server opens one per
 * event-loop pass), so nothing they did is durable, or visible to another
 * process, until store_commit() returns 0; a failed commit loses the batch.
 * Outside a batch each operation commits itself.
 *
 * Not thread-safe: one store belongs to one thread (sottod's event loop).
 */
#ifndef SOTTO_STORE_H
#define SOTTO_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/err.h"
#include "src/proto.h"

#define STORE_DB_FILE       "sottod.db" /* in the state directory, mode 0600 */
#define STORE_NAME_MAX      PROTO_USERNAME_MAX
#define STORE_IDKEY_MAX     2048 /* DER SubjectPublicKeyInfo; RSA-8192 is ~1,100 */
#define STORE_SIG_MAX       1024 /* prekey signature; RSA-8192 PSS is 1,024 */
#define STORE_PREKEY_BYTES  PROTO_PREKEY_BYTES
#define STORE_MSG_ID_BYTES  PROTO_MSG_ID_BYTES
#define STORE_OTK_MAX       1000              /* one-time prekeys held per user */
#define STORE_FETCH_MAX     256               /* queue items per store_queue_fetch */
#define STORE_ACK_MAX       PROTO_MAX_ACK_IDS /* ids per store_queue_delete */
#define STORE_LIST_MAX      10000             /* names per listing */
#define STORE_SEALED_MAX    16777216          /* one envelope */
#define STORE_TOKEN_MAX     256               /* invite token length */
#define STORE_TOMBSTONE_TTL (7 * 86400)       /* acknowledged ids remembered this long */

struct store;

enum store_kind {
	STORE_KIND_ENVELOPE = 1,  /* a sealed envelope: push as Deliver */
	STORE_KIND_DELIVERED = 2, /* a delivery receipt: push as Delivered */
	STORE_KIND_GROUP = 3,     /* a group envelope: sealed is group id[16] || sealed */
};

struct store_user {
	char name[STORE_NAME_MAX + 1];
	uint32_t identity_type; /* Sotto__IdentityType */
	uint8_t identity_key[STORE_IDKEY_MAX];
	size_t identity_key_len;
	int64_t created;
	int64_t last_seen; /* 0: never */
	int deleted;
	int admin;
};

struct store_spk {
	uint32_t id;
	uint8_t public_key[STORE_PREKEY_BYTES];
	uint8_t signature[STORE_SIG_MAX];
	size_t signature_len;
	int64_t created; /* as uploaded by the client */
};

struct store_otk {
	uint32_t id;
	uint8_t public_key[STORE_PREKEY_BYTES];
};

/* Everything RegisterUser stores, in one atomic operation. */
struct store_registration {
	const char *name;
	uint32_t identity_type;
	const uint8_t *identity_key;
	size_t identity_key_len;
	const struct store_spk *spk; /* required */
	const struct store_otk *otks;
	size_t n_otks;            /* at most STORE_OTK_MAX */
	const char *invite_token; /* consumed if not NULL */
	int admin;
};

/* What GetBundle hands out; has_otk is 0 once the user's one-time prekeys run out. */
struct store_bundle {
	struct store_user user;
	struct store_spk spk;
	int has_otk;
	struct store_otk otk;
};

/* A queued item, as store_queue_fetch presents it (valid during the callback). */
struct store_msg {
	uint64_t seq; /* increasing per store, never reused */
	enum store_kind kind;
	const char *peer; /* envelope: its sender; receipt: the user who received */
	uint8_t msg_id[STORE_MSG_ID_BYTES];
	int64_t timestamp_ms; /* envelope: received; receipt: acknowledged */
	const uint8_t *sealed;
	size_t sealed_len; /* 0 for receipts */
};

/* An envelope that store_queue_delete removed: its sender gets a receipt. */
struct store_receipt {
	char sender[STORE_NAME_MAX + 1];
	uint8_t msg_id[STORE_MSG_ID_BYTES];
};

/* Return 0 to go on, >0 to stop early (not an error), <0 to fail with that code. */
typedef int (*store_msg_cb)(void *arg, const struct store_msg *m);
typedef int (*store_key_cb)(void *arg, const char *recipient, const char *sender,
        const uint8_t msg_id[STORE_MSG_ID_BYTES]);
typedef int (*store_name_cb)(void *arg, const char *name, int64_t when);

/*
 * Open (creating it, 0600, and the directory, 0700, if missing) the SQLite
 * database STORE_DB_FILE in state_dir: WAL mode, synchronous=NORMAL (a
 * committed batch survives kill -9 of sottod; only an operating-system crash
 * or power loss can lose the last batches), schema migrated to the current
 * version.  SOTTO_ERR_UNSUPPORTED for a database made by a newer sottod.  On
 * failure err (if not NULL) holds a sentence naming the file.
 */
int store_sqlite_open(
        struct store **out, const char *state_dir, char *err, size_t errlen) SOTTO_WUR;
/* Roll back any open batch, finalize and free; NULL is ignored. */
void store_close(struct store *st);
/* "sqlite", for logs. */
const char *store_backend_name(const struct store *st);
/* The backend's message for the last failure, for logs; never NULL. */
const char *store_last_error(const struct store *st);

/* Batches: SOTTO_ERR_INVALID to begin inside a batch or commit outside one. */
int store_begin(struct store *st) SOTTO_WUR;
int store_commit(struct store *st) SOTTO_WUR;
void store_rollback(struct store *st);
int store_in_batch(const struct store *st);

/*
 * Create an account with its prekeys, consuming invite_token if given.
 * SOTTO_ERR_EXISTS if the name is taken (deleted names stay taken),
 * SOTTO_ERR_PERM if the invite is unknown, used or expired, SOTTO_ERR_RANGE
 * for too many prekeys or a key or signature too long.  Nothing is stored
 * unless everything is.
 */
int store_user_register(
        struct store *st, const struct store_registration *reg, int64_t now) SOTTO_WUR;
/* SOTTO_ERR_NOTFOUND if there is no such user; deleted users are returned with deleted set. */
int store_user_get(struct store *st, const char *name, struct store_user *out) SOTTO_WUR;
int store_user_set_last_seen(struct store *st, const char *name, int64_t now) SOTTO_WUR;
int store_user_set_admin(struct store *st, const char *name, int admin) SOTTO_WUR;
/* Mark deleted and drop its prekeys, queue, blocks and login failures. */
int store_user_delete(struct store *st, const char *name) SOTTO_WUR;
/* Users (not deleted) last seen at or after since, most recent first, at most limit. */
int store_user_list_seen(
        struct store *st, int64_t since, size_t limit, store_name_cb cb, void *arg) SOTTO_WUR;

/* Prekeys.  The new signed prekey becomes current; the one it replaces is kept as previous. */
int store_prekey_set_signed(
        struct store *st, const char *name, const struct store_spk *spk, int64_t now) SOTTO_WUR;
/* The current signed prekey; SOTTO_ERR_NOTFOUND if there is none. */
int store_prekey_get_signed(struct store *st, const char *name, struct store_spk *out) SOTTO_WUR;
/*
 * Add one-time prekeys (ids already held are ignored); SOTTO_ERR_RANGE, adding
 * none, if the user would hold more than STORE_OTK_MAX.  *remaining (may be
 * NULL) is the count afterwards.
 */
int store_prekey_add_otks(struct store *st, const char *name, const struct store_otk *otks,
        size_t n, uint32_t *remaining) SOTTO_WUR;
int store_prekey_count_otks(struct store *st, const char *name, uint32_t *count) SOTTO_WUR;
/*
 * A user's bundle, consuming its oldest one-time prekey.  SOTTO_ERR_NOTFOUND
 * for no such (or a deleted) user, SOTTO_ERR_AGAIN if it has no signed prekey.
 */
int store_prekey_take_bundle(
        struct store *st, const char *name, struct store_bundle *out) SOTTO_WUR;

/*
 * Queue an item for recipient.  An item with the same (recipient, peer,
 * msg_id, kind) that is still queued, or an envelope acknowledged within
 * STORE_TOMBSTONE_TTL, is not stored again: *duplicate is set to 1 and *seq
 * to the queued item's seq (0 if already acknowledged).  SOTTO_ERR_NOTFOUND
 * if the recipient does not exist or is deleted.  seq and duplicate may be NULL.
 */
int store_queue_push(struct store *st, const char *recipient, enum store_kind kind,
        const char *peer, const uint8_t msg_id[STORE_MSG_ID_BYTES], int64_t timestamp_ms,
        const uint8_t *sealed, size_t sealed_len, uint64_t *seq, int *duplicate) SOTTO_WUR;
/*
 * *found = 1 if recipient already has the envelope (peer, msg_id): still
 * queued, or acknowledged within STORE_TOMBSTONE_TTL.  A read: the server
 * asks before pushing a resend live, which store_queue_push would only catch
 * at the commit.
 */
int store_queue_has(struct store *st, const char *recipient, const char *peer,
        const uint8_t msg_id[STORE_MSG_ID_BYTES], int *found) SOTTO_WUR;
/*
 * Call cb with (recipient, sender, msg_id) for every envelope that
 * store_queue_push would call a duplicate: each queued envelope, group
 * envelopes too, and each one acknowledged within STORE_TOMBSTONE_TTL (in no
 * particular order; a key may come twice).  For an in-memory filter built at
 * start-up.
 */
int store_queue_keys(struct store *st, store_key_cb cb, void *arg) SOTTO_WUR;
/* Call cb for recipient's items with seq > after_seq, oldest first, at most limit. */
int store_queue_fetch(struct store *st, const char *recipient, uint64_t after_seq, size_t limit,
        store_msg_cb cb, void *arg) SOTTO_WUR;
int store_queue_count(struct store *st, const char *recipient, uint32_t *count) SOTTO_WUR;
/*
 * DeliverAck: delete recipient's items (envelopes and receipts) with these ids
 * (at most STORE_ACK_MAX), remembering envelopes for duplicate detection.
 * *receipts (set to NULL first; free() it) lists each envelope removed, so the
 * caller can tell its sender; unknown ids are ignored.  *n_deleted (may be
 * NULL) counts every item removed, receipts too.  Only items with
 * seq <= max_seq go (STORE_SEQ_ALL: any): the server passes the last seq it
 * pushed, so an ack never removes a same-id item (a SendMulti's receipts
 * share an id) that the client has not been sent.  now stamps the tombstones.
 */
#define STORE_SEQ_ALL UINT64_MAX
int store_queue_delete(struct store *st, const char *recipient,
        const uint8_t (*ids)[STORE_MSG_ID_BYTES], size_t n, uint64_t max_seq, int64_t now,
        struct store_receipt **receipts, size_t *n_receipts, size_t *n_deleted) SOTTO_WUR;

/*
 * Blocks.  store_block_add: SOTTO_ERR_NOTFOUND if blocked does not exist,
 * SOTTO_ERR_INVALID for oneself; idempotent.
 */
int store_block_add(
        struct store *st, const char *blocker, const char *blocked, int64_t now) SOTTO_WUR;
/* Idempotent: 0 also when there was no such block. */
int store_block_remove(struct store *st, const char *blocker, const char *blocked) SOTTO_WUR;
int store_block_check(
        struct store *st, const char *blocker, const char *blocked, int *is_blocked) SOTTO_WUR;
/* The users blocker blocks (in name order, at most limit; cb's when is the block's creation). */
int store_block_list(
        struct store *st, const char *blocker, size_t limit, store_name_cb cb, void *arg) SOTTO_WUR;
/* The users who block blocked, whose presence blocked must not see. */
int store_block_list_blockers(
        struct store *st, const char *blocked, size_t limit, store_name_cb cb, void *arg) SOTTO_WUR;

/*
 * Login failures.  store_auth_locked: *locked_until is the end of a lockout
 * in force at now, else 0.  store_auth_fail counts a failure for an existing
 * user (SOTTO_ERR_NOTFOUND otherwise, so unknown names cannot grow the
 * table); at max_failures consecutive failures the name is locked for
 * duration seconds and the count starts again.  store_auth_reset after a
 * successful login.
 */
int store_auth_locked(
        struct store *st, const char *name, int64_t now, int64_t *locked_until) SOTTO_WUR;
int store_auth_fail(struct store *st, const char *name, int64_t now, uint32_t max_failures,
        uint32_t duration, uint32_t *failures, int64_t *locked_until) SOTTO_WUR;
int store_auth_reset(struct store *st, const char *name) SOTTO_WUR;

/*
 * Invites.  The store keeps only SHA-256 of each token.  store_invite_create:
 * created_by is an admin's name, or NULL for the operator; SOTTO_ERR_EXISTS
 * for a token already issued.  store_invite_use: 0 once per
 * token before expires, SOTTO_ERR_PERM otherwise.
 */
int store_invite_create(struct store *st, const char *token, const char *created_by, int64_t now,
        int64_t expires) SOTTO_WUR;
int store_invite_use(
        struct store *st, const char *token, const char *used_by, int64_t now) SOTTO_WUR;

/* Forget expired invites, lapsed lockouts and tombstones older than STORE_TOMBSTONE_TTL. */
int store_prune(struct store *st, int64_t now) SOTTO_WUR;

/*
 * Groups: a 16-byte id, an owner, a member list (the owner included) and the
 * signed membership changes that made it, numbered by serial from 1.  The
 * store keeps the changes as given and applies them to the member list; the
 * server checks signatures, permissions and limits before.  Queued group
 * envelopes are STORE_KIND_GROUP items.
 */
#define STORE_GROUP_ID_BYTES  PROTO_GROUP_ID_BYTES
#define STORE_GROUP_USERS_MAX PROTO_MAX_GROUP_USERS /* users in one change, members per group */

enum store_group_op {
	STORE_GROUP_CREATE = 1, /* the values of Sotto__GroupOp */
	STORE_GROUP_ADD = 2,
	STORE_GROUP_REMOVE = 3,
	STORE_GROUP_LEAVE = 4,
};

/* One signed change (as given to the store, or valid during a callback). */
struct store_group_change {
	uint64_t serial;
	enum store_group_op op;
	const char *signer;
	const char *const *users; /* lower case, sorted, distinct */
	size_t n_users;
	const uint8_t *signature;
	size_t signature_len; /* at most STORE_SIG_MAX */
	int64_t timestamp_ms; /* when it was accepted */
};

struct store_group {
	uint8_t id[STORE_GROUP_ID_BYTES];
	char owner[STORE_NAME_MAX + 1];
	uint64_t serial; /* the latest change's */
	uint32_t n_members;
	int64_t created;
};

typedef int (*store_group_change_cb)(void *arg, const struct store_group_change *ch);

/*
 * Create group id owned by owner from its first change (serial 1,
 * STORE_GROUP_CREATE, signed by owner): the members are the owner and
 * ch->users.  SOTTO_ERR_EXISTS if the id is taken, SOTTO_ERR_NOTFOUND (the
 * error names the user) if a member is not a live user, SOTTO_ERR_INVALID
 * for a change that does not fit.
 */
int store_group_create(struct store *st, const uint8_t id[STORE_GROUP_ID_BYTES], const char *owner,
        const struct store_group_change *ch) SOTTO_WUR;
/* SOTTO_ERR_NOTFOUND if there is no such group. */
int store_group_get(struct store *st, const uint8_t id[STORE_GROUP_ID_BYTES],
        struct store_group *out) SOTTO_WUR;
/*
 * Record change ch and apply it: add the users (SOTTO_ERR_NOTFOUND, naming
 * the user, if one is not a live user; SOTTO_ERR_EXISTS if one is a member),
 * or remove them (SOTTO_ERR_NOTFOUND if one is not a member).  SOTTO_ERR_AGAIN
 * unless ch->serial is the group's serial + 1.  Nothing changes on error.
 */
int store_group_apply(struct store *st, const uint8_t id[STORE_GROUP_ID_BYTES],
        const struct store_group_change *ch) SOTTO_WUR;
/* Delete a group with its members and changes (and nothing queued). */
int store_group_delete(struct store *st, const uint8_t id[STORE_GROUP_ID_BYTES]) SOTTO_WUR;
/* *member = 1 if name is a member of group id (0 also for no such group). */
int store_group_is_member(struct store *st, const uint8_t id[STORE_GROUP_ID_BYTES],
        const char *name, int *member) SOTTO_WUR;
/* The members of group id, in name order (cb's when is the time it joined). */
int store_group_members(struct store *st, const uint8_t id[STORE_GROUP_ID_BYTES], size_t limit,
        store_name_cb cb, void *arg) SOTTO_WUR;
/* The changes of group id with serial > after, oldest first, at most limit. */
int store_group_changes(struct store *st, const uint8_t id[STORE_GROUP_ID_BYTES], uint64_t after,
        size_t limit, store_group_change_cb cb, void *arg) SOTTO_WUR;
/* How many groups name is a member of. */
int store_group_count_for(struct store *st, const char *name, uint32_t *count) SOTTO_WUR;

/*
 * Files (issue 6): what the server knows of each uploaded blob.  The bytes
 * live in files under the state directory, which server-file.c manages; the
 * store records the uploader, the declared ciphertext size, whether the
 * upload is complete, when it began, and the recipients with whether each
 * has sent FileDone.  A blob's id is 16 bytes chosen by its uploader.
 */
#define STORE_FILE_ID_BYTES       PROTO_FILE_ID_BYTES
#define STORE_FILE_RECIPIENTS_MAX PROTO_MAX_RECIPIENTS
#define STORE_FILE_SIZE_MAX       (UINT64_C(1) << 50) /* far above any max_file_size */

struct store_file {
	uint8_t id[STORE_FILE_ID_BYTES];
	char uploader[STORE_NAME_MAX + 1];
	uint64_t size; /* declared ciphertext bytes */
	int complete;  /* UploadEnd succeeded */
	int64_t created;
};

enum store_file_role {
	STORE_FILE_NONE = 0,     /* not a recipient */
	STORE_FILE_PENDING = 1,  /* a recipient that has not sent FileDone */
	STORE_FILE_FINISHED = 2, /* a recipient that has */
};

/* As store_msg_cb: 0 to go on, >0 to stop early, <0 to fail with that code. */
typedef int (*store_file_cb)(void *arg, const struct store_file *f);

/*
 * Record a new upload by f->uploader (f->complete is ignored: a new upload is
 * partial) for n (1..STORE_FILE_RECIPIENTS_MAX) recipients; a name given
 * twice counts once.  SOTTO_ERR_EXISTS if the id is taken, SOTTO_ERR_NOTFOUND
 * if the uploader or a recipient does not exist or is deleted (the error
 * message names it), SOTTO_ERR_RANGE for a size above STORE_FILE_SIZE_MAX.
 */
int store_file_create(struct store *st, const struct store_file *f, const char *const *recipients,
        size_t n) SOTTO_WUR;
/* SOTTO_ERR_NOTFOUND if there is no such blob. */
int store_file_get(
        struct store *st, const uint8_t id[STORE_FILE_ID_BYTES], struct store_file *out) SOTTO_WUR;
/* name's part in the blob id (STORE_FILE_NONE also when there is no such blob). */
int store_file_role(struct store *st, const uint8_t id[STORE_FILE_ID_BYTES], const char *name,
        enum store_file_role *role) SOTTO_WUR;
/* Mark the upload complete; SOTTO_ERR_NOTFOUND if there is no such blob. */
int store_file_set_complete(struct store *st, const uint8_t id[STORE_FILE_ID_BYTES]) SOTTO_WUR;
/*
 * name is done with the blob; *remaining (may be NULL) is the number of
 * recipients still pending afterwards.  Idempotent.  SOTTO_ERR_NOTFOUND if
 * name is not one of its recipients.
 */
int store_file_done(struct store *st, const uint8_t id[STORE_FILE_ID_BYTES], const char *name,
        uint32_t *remaining) SOTTO_WUR;
/* Forget the blob and its recipients; 0 also if there was no such blob. */
int store_file_delete(struct store *st, const uint8_t id[STORE_FILE_ID_BYTES]) SOTTO_WUR;
/* The declared sizes of every blob uploader has on the server, partial ones included. */
int store_file_usage(struct store *st, const char *uploader, uint64_t *bytes) SOTTO_WUR;
/* Blobs whose upload began before `before`, oldest first, at most limit (STORE_FETCH_MAX). */
int store_file_list_expired(
        struct store *st, int64_t before, size_t limit, store_file_cb cb, void *arg) SOTTO_WUR;

#endif
