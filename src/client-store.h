/*
 * The client's database, client.db in the profile's data directory (SQLite,
 * WAL, synchronous=NORMAL, mode 0600, schema versioned with user_version):
 * ratchet sessions, message history, envelope ids already seen, our own
 * prekeys, counters, a small key/value table, and groups with their sender
 * keys.
 *
 * Everything secret or private (ratchet states, message bodies, prekey
 * secrets, meta values) is sealed with XChaCha20-Poly1305 under a store key
 * derived from the identity key (client_store_key_from_identity).  A sealed
 * column is a random 24-byte nonce, the ciphertext and the 16-byte tag; its
 * associated data names the table and the row's key, so a sealed value moved
 * to another row does not open.  The database also holds a sealed check
 * value, so that the wrong key is refused when the store is opened.  What
 * stays in clear is what indexes need: peer names, message ids, times,
 * directions and states, prekey ids.  Deleted rows are overwritten
 * (secure_delete), so that a consumed prekey does not linger in free pages.
 *
 * Transactions: every call is atomic on its own.  Between
 * client_store_begin() and client_store_commit() calls join one transaction,
 * so that, for example, a new ratchet state and the message that advanced it
 * are saved together or not at all; client_store_rollback() undoes both.
 *
 * Ownership: the store is the caller's, released with client_store_close().
 * Buffers returned holding plaintext are the caller's and are freed with
 * client_store_free_secret(), which wipes them.  Pointers handed to a
 * callback are valid only during the callback, which must not call back into
 * the store.  Peer names follow the username rule (proto.h) and are kept in
 * lower case.  Times are Unix seconds unless named _ms; callers pass "now".
 *
 * Not thread-safe: a store belongs to one thread, and a profile to one
 * process (client_paths_lock).
 */
#ifndef SOTTO_CLIENT_STORE_H
#define SOTTO_CLIENT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/err.h"
#include "keys/identity.h"
#include "src/proto.h"

#define CLIENT_STORE_DB_FILE      "client.db"
#define CLIENT_STORE_KEYBYTES     32
#define CLIENT_STORE_KEY_INFO     "sotto-client-store-v1"
#define CLIENT_STORE_MSG_ID_BYTES PROTO_MSG_ID_BYTES
#define CLIENT_STORE_GROUP_BYTES  16
#define CLIENT_STORE_BODY_MAX     (1024 * 1024) /* one message body */
#define CLIENT_STORE_STATE_MAX    (1024 * 1024) /* one serialised ratchet state */
#define CLIENT_STORE_PREKEY_MAX   4096          /* one prekey's secret material */
#define CLIENT_STORE_META_MAX     65536         /* one meta value */
#define CLIENT_STORE_SEEN_DAYS    30            /* a sensible age for client_store_seen_prune */
#define CLIENT_STORE_HISTORY_MAX  10000         /* messages per history call */

/* Meta names the client uses. */
#define CLIENT_META_SERVER      "server"      /* "host:port" we registered on */
#define CLIENT_META_USERNAME    "username"    /* our username there */
#define CLIENT_META_SPK_ROTATED "spk_rotated" /* Unix time of the last signed-prekey rotation */

/* Counter names for client_store_next_ids. */
#define CLIENT_COUNTER_SPK "spk" /* signed prekey ids */
#define CLIENT_COUNTER_OTK "otk" /* one-time prekey ids */

struct client_store;

enum client_msg_dir {
	CLIENT_MSG_IN = 1,  /* received from peer */
	CLIENT_MSG_OUT = 2, /* sent to peer */
};

/*
 * A message's state.  Outgoing: sent, then delivered, then read (a receipt
 * never moves a message back), or failed.  Incoming: received, then read
 * once shown.
 */
enum client_msg_state {
	CLIENT_MSG_SENT = 1,
	CLIENT_MSG_DELIVERED = 2,
	CLIENT_MSG_READ = 3,
	CLIENT_MSG_RECEIVED = 4,
	CLIENT_MSG_FAILED = 5,
};

struct client_msg {
	int64_t id;           /* local id, increasing; set by the store (ignored by add) */
	const char *peer;     /* the other party */
	const uint8_t *group; /* CLIENT_STORE_GROUP_BYTES, or NULL for a direct message */
	enum client_msg_dir dir;
	uint8_t msg_id[CLIENT_STORE_MSG_ID_BYTES];
	const uint8_t *body; /* plaintext */
	size_t body_len;
	int64_t timestamp_ms; /* sent (outgoing) or received by the server (incoming) */
	enum client_msg_state state;
};

/* Return 0 to go on, >0 to stop early (not an error), <0 to fail with that code. */
typedef int (*client_store_msg_cb)(void *arg, const struct client_msg *m);

/* "sent", "delivered", "read", "received", "failed"; "unknown" otherwise. */
const char *client_msg_state_name(enum client_msg_state state);

/*
 * The store key: HKDF-SHA256 (no salt, info CLIENT_STORE_KEY_INFO) over the
 * Ed25519 seed (the first 32 bytes of id->ed25519_sk) or, for RSA, over the
 * private key's unencrypted PKCS#8 DER (PrivateKeyInfo).  It changes only
 * when the identity key does.
 */
int client_store_key_from_identity(
        uint8_t key[CLIENT_STORE_KEYBYTES], const struct identity *id) SOTTO_WUR;

/*
 * Open (creating it, 0600, and dir, 0700, if missing) dir/client.db, migrate
 * the schema, and check key: SOTTO_ERR_VERIFY if the database was made under
 * another key, SOTTO_ERR_UNSUPPORTED if a newer sotto made it.  On failure
 * err (may be NULL) holds a sentence naming the file.  The store keeps a
 * copy of key in locked memory.
 */
int client_store_open(struct client_store **out, const char *dir,
        const uint8_t key[CLIENT_STORE_KEYBYTES], char *err, size_t errlen) SOTTO_WUR;
/* Roll back an open transaction, close, wipe the key; NULL is ignored. */
void client_store_close(struct client_store *cs);
/* A sentence about the last failure; never NULL. */
const char *client_store_last_error(const struct client_store *cs);
/* Wipe and free a buffer the store returned; NULL is ignored. */
void client_store_free_secret(void *p, size_t len);

/* Transactions: SOTTO_ERR_INVALID to begin inside one or commit outside one. */
int client_store_begin(struct client_store *cs) SOTTO_WUR;
int client_store_commit(struct client_store *cs) SOTTO_WUR;
void client_store_rollback(struct client_store *cs);
int client_store_in_transaction(const struct client_store *cs);

/* Save (insert or replace) the ratchet state for peer, at most CLIENT_STORE_STATE_MAX bytes. */
int client_store_session_put(struct client_store *cs, const char *peer, const uint8_t *state,
        size_t len, int64_t now) SOTTO_WUR;
/*
 * The ratchet state for peer in a new buffer (client_store_free_secret);
 * SOTTO_ERR_NOTFOUND if there is none, SOTTO_ERR_VERIFY if it does not open.
 */
int client_store_session_get(
        struct client_store *cs, const char *peer, uint8_t **state, size_t *len) SOTTO_WUR;
/* Forget the session with peer; 0 also when there was none. */
int client_store_session_delete(struct client_store *cs, const char *peer) SOTTO_WUR;

/*
 * Add a message (m->id is ignored); *id (may be NULL) receives its local id.
 * SOTTO_ERR_EXISTS if (peer, dir, msg_id) is stored already.
 */
int client_store_msg_add(
        struct client_store *cs, const struct client_msg *m, int64_t *id) SOTTO_WUR;
/*
 * The latest limit direct messages with peer whose timestamp_ms < before_ms
 * (INT64_MAX for the newest), handed to cb oldest first (by time, then local
 * id).  limit is capped at CLIENT_STORE_HISTORY_MAX.  SOTTO_ERR_VERIFY if a
 * body does not open.
 */
int client_store_msg_history(struct client_store *cs, const char *peer, int64_t before_ms,
        size_t limit, client_store_msg_cb cb, void *arg) SOTTO_WUR;
/*
 * The same for a group's messages (direct ones are left out of the call
 * above): incoming ones under their sender's name, ours under our own.
 */
int client_store_msg_history_group(struct client_store *cs,
        const uint8_t group[CLIENT_STORE_GROUP_BYTES], int64_t before_ms, size_t limit,
        client_store_msg_cb cb, void *arg) SOTTO_WUR;
/*
 * Set a message's state.  A delivery receipt does not undo a read one, nor
 * anything undo read or failed with sent.  SOTTO_ERR_NOTFOUND if there is no
 * such message.
 */
int client_store_msg_set_state(struct client_store *cs, const char *peer, enum client_msg_dir dir,
        const uint8_t msg_id[CLIENT_STORE_MSG_ID_BYTES], enum client_msg_state state) SOTTO_WUR;

/*
 * Remember an envelope id from peer, to drop a second delivery before
 * decrypting it: *seen is 1 if it was already remembered (nothing changes),
 * else 0 and it is now.
 */
int client_store_seen_add(struct client_store *cs, const char *peer,
        const uint8_t msg_id[CLIENT_STORE_MSG_ID_BYTES], int64_t now, int *seen) SOTTO_WUR;
/* Forget ids remembered more than days days before now; *pruned (may be NULL) counts them. */
int client_store_seen_prune(
        struct client_store *cs, int64_t now, uint32_t days, uint32_t *pruned) SOTTO_WUR;

/*
 * Signed prekeys.  Adding one makes it current; the one it replaces becomes
 * previous (stamped retired = now) and still opens sessions until
 * client_store_spk_prune drops it after the grace period.
 * SOTTO_ERR_EXISTS if the id is taken.
 */
int client_store_spk_add(struct client_store *cs, uint32_t id, const uint8_t *secret, size_t len,
        int64_t now) SOTTO_WUR;
/*
 * A signed prekey's secret (current or previous) in a new buffer
 * (client_store_free_secret); *current (may be NULL) says which.
 * SOTTO_ERR_NOTFOUND for an unknown or pruned id.
 */
int client_store_spk_get(struct client_store *cs, uint32_t id, uint8_t **secret, size_t *len,
        int *current) SOTTO_WUR;
/* The current signed prekey's id and creation time; SOTTO_ERR_NOTFOUND if there is none. */
int client_store_spk_current(struct client_store *cs, uint32_t *id, int64_t *created) SOTTO_WUR;
/* Drop previous signed prekeys retired at or before now - grace; *pruned (may be NULL) counts. */
int client_store_spk_prune(
        struct client_store *cs, int64_t now, int64_t grace, uint32_t *pruned) SOTTO_WUR;

/* One-time prekeys: SOTTO_ERR_EXISTS if the id is taken. */
int client_store_otk_add(struct client_store *cs, uint32_t id, const uint8_t *secret, size_t len,
        int64_t now) SOTTO_WUR;
/*
 * Consume a one-time prekey: its secret in a new buffer
 * (client_store_free_secret), and the row deleted.  SOTTO_ERR_NOTFOUND if it
 * was never stored or already used.  Inside a transaction, a rollback
 * restores it.
 */
int client_store_otk_take(
        struct client_store *cs, uint32_t id, uint8_t **secret, size_t *len) SOTTO_WUR;
int client_store_otk_count(struct client_store *cs, uint32_t *count) SOTTO_WUR;

/*
 * Reserve n (1..100000) consecutive ids from the named counter, which starts
 * at 1 and never hands an id out twice: *first is the first of them.
 * SOTTO_ERR_RANGE once the ids would pass UINT32_MAX.
 */
int client_store_next_ids(
        struct client_store *cs, const char *counter, uint32_t n, uint32_t *first) SOTTO_WUR;

/* Meta values (sealed; names of 1..64 printable characters). */
int client_store_meta_set(
        struct client_store *cs, const char *name, const void *value, size_t len) SOTTO_WUR;
/* A new buffer (client_store_free_secret), NUL-terminated (not counted); SOTTO_ERR_NOTFOUND. */
int client_store_meta_get(
        struct client_store *cs, const char *name, uint8_t **value, size_t *len) SOTTO_WUR;
/* 0 also when there was no such value. */
int client_store_meta_delete(struct client_store *cs, const char *name) SOTTO_WUR;
/* Conveniences: a string (no NUL inside), and an integer stored as decimal text. */
int client_store_meta_set_str(
        struct client_store *cs, const char *name, const char *value) SOTTO_WUR;
/* *value is a new string; free() it (meta values are not secret enough to need wiping). */
int client_store_meta_get_str(struct client_store *cs, const char *name, char **value) SOTTO_WUR;
int client_store_meta_set_int(struct client_store *cs, const char *name, int64_t value) SOTTO_WUR;
int client_store_meta_get_int(struct client_store *cs, const char *name, int64_t *value) SOTTO_WUR;

/*
 * Groups (client-group.h): one sealed record per group id, and one sealed
 * sender-key state per (group, sender), our own sending chain under our own
 * name.  Records and states are at most CLIENT_STORE_STATE_MAX bytes; gets
 * return new buffers (client_store_free_secret) or SOTTO_ERR_NOTFOUND.
 */
typedef int (*client_store_group_cb)(
        void *arg, const uint8_t id[CLIENT_STORE_GROUP_BYTES], const uint8_t *state, size_t len);

int client_store_group_put(struct client_store *cs, const uint8_t id[CLIENT_STORE_GROUP_BYTES],
        const uint8_t *state, size_t len, int64_t now) SOTTO_WUR;
int client_store_group_get(struct client_store *cs, const uint8_t id[CLIENT_STORE_GROUP_BYTES],
        uint8_t **state, size_t *len) SOTTO_WUR;
/* Every group record, in id order (the record is valid during the callback). */
int client_store_group_list(struct client_store *cs, client_store_group_cb cb, void *arg) SOTTO_WUR;
/* Forget a group and all its sender keys; 0 also when there was none. */
int client_store_group_delete(
        struct client_store *cs, const uint8_t id[CLIENT_STORE_GROUP_BYTES]) SOTTO_WUR;
int client_store_senderkey_put(struct client_store *cs, const uint8_t id[CLIENT_STORE_GROUP_BYTES],
        const char *sender, const uint8_t *state, size_t len, int64_t now) SOTTO_WUR;
int client_store_senderkey_get(struct client_store *cs, const uint8_t id[CLIENT_STORE_GROUP_BYTES],
        const char *sender, uint8_t **state, size_t *len) SOTTO_WUR;
/* 0 also when there was none. */
int client_store_senderkey_delete(struct client_store *cs,
        const uint8_t id[CLIENT_STORE_GROUP_BYTES], const char *sender) SOTTO_WUR;

/*
 * X3DH headers already answered, so that a server replaying the first
 * message of a session cannot start it again (client-e2e.c): tag names one
 * header (CLIENT_STORE_X3DH_TAG_BYTES, not secret), spk_id the signed prekey
 * that answered it.  *seen is 1 if tag is remembered.
 */
#define CLIENT_STORE_X3DH_TAG_BYTES 32
int client_store_x3dh_seen(struct client_store *cs, const uint8_t tag[CLIENT_STORE_X3DH_TAG_BYTES],
        int *seen) SOTTO_WUR;
/* Remember tag; SOTTO_ERR_EXISTS if it is remembered already (nothing changes). */
int client_store_x3dh_add(struct client_store *cs, const uint8_t tag[CLIENT_STORE_X3DH_TAG_BYTES],
        uint32_t spk_id, int64_t now) SOTTO_WUR;
/*
 * Forget the tags answered with a signed prekey that is no longer stored: such
 * a header cannot be answered again.  *pruned (may be NULL) counts them.
 */
int client_store_x3dh_prune(struct client_store *cs, uint32_t *pruned) SOTTO_WUR;

/*
 * Files (client-cmd-file.c).  Offers received are numbered 1, 2, ... (the
 * lowest number above those in use, so numbers stay small); each holds one
 * sealed record of at most CLIENT_STORE_FILE_REC_MAX bytes.  Uploads under
 * way are found by name, a string the caller makes from what identifies the
 * upload (path, size, time, recipient); the row is keyed by a hash of name
 * under the store key, so the name itself is not stored.  Gets return new
 * buffers (client_store_free_secret) or SOTTO_ERR_NOTFOUND.
 */
#define CLIENT_STORE_FILE_REC_MAX 65536
typedef int (*client_store_offer_cb)(void *arg, uint32_t id, const uint8_t *rec, size_t len);

int client_store_offer_add(struct client_store *cs, const uint8_t *rec, size_t len, int64_t now,
        uint32_t *id) SOTTO_WUR;
/* Replace an offer's record; SOTTO_ERR_NOTFOUND if there is no such offer. */
int client_store_offer_put(struct client_store *cs, uint32_t id, const uint8_t *rec, size_t len,
        int64_t now) SOTTO_WUR;
int client_store_offer_get(
        struct client_store *cs, uint32_t id, uint8_t **rec, size_t *len) SOTTO_WUR;
/* Every offer in number order (the record is valid during the callback). */
int client_store_offer_list(struct client_store *cs, client_store_offer_cb cb, void *arg) SOTTO_WUR;
/* 0 also when there was none. */
int client_store_offer_delete(struct client_store *cs, uint32_t id) SOTTO_WUR;
int client_store_upload_put(struct client_store *cs, const char *name, const uint8_t *rec,
        size_t len, int64_t now) SOTTO_WUR;
int client_store_upload_get(
        struct client_store *cs, const char *name, uint8_t **rec, size_t *len) SOTTO_WUR;
/* 0 also when there was none. */
int client_store_upload_delete(struct client_store *cs, const char *name) SOTTO_WUR;

#endif
