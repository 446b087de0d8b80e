/*
 * client.db: the client's SQLite store.  Statements are prepared once at
 * open; every call runs inside a savepoint, so that it is atomic alone and
 * joins the caller's transaction when one is open.  Secret columns are
 * sealed with XChaCha20-Poly1305 bound to their row.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>
#include <sodium.h>
#include <sqlite3.h>

#include "crypto/aead.h"
#include "crypto/buf.h"
#include "crypto/kdf.h"
#include "crypto/util.h"
#include "src/client-store.h"
#include "src/sqlite-util.h"

#define CS_SCHEMA_VERSION 4
#define CS_OVERHEAD       (AEAD_XCHACHA_NPUBBYTES + AEAD_ABYTES)
#define CS_AD_MAX         1024
#define CS_META_NAME_MAX  64
#define CS_IDS_MAX        100000
#define CS_CHECK_TEXT     "sotto client store key check"
#define CS_DAY            86400

/*
 * X3DH headers already answered (client_store_x3dh_*), so that a replayed
 * first message cannot start a session again: the header's tag, and the
 * signed prekey it was answered with, whose deletion ends the tag's use.
 */
#define CS_MIGRATE_X3DH_SEEN                     \
	"CREATE TABLE IF NOT EXISTS x3dh_seen (" \
	" tag BLOB NOT NULL PRIMARY KEY,"        \
	" spk_id INTEGER NOT NULL,"              \
	" seen_at INTEGER NOT NULL"              \
	") WITHOUT ROWID;"

/*
 * Files (client_store_offer_*, client_store_upload_*): offers received, by a
 * small local number, and uploads under way, by a keyed hash of what names
 * them; both records sealed.
 */
#define CS_MIGRATE_FILES                            \
	"CREATE TABLE IF NOT EXISTS file_offers ("  \
	" id INTEGER PRIMARY KEY,"                  \
	" record BLOB NOT NULL,"                    \
	" created INTEGER NOT NULL"                 \
	");"                                        \
	"CREATE TABLE IF NOT EXISTS file_uploads (" \
	" tag BLOB NOT NULL PRIMARY KEY,"           \
	" record BLOB NOT NULL,"                    \
	" updated INTEGER NOT NULL"                 \
	") WITHOUT ROWID;"

/*
 * Schema migrations: cs_migrations[i] takes user_version i to i + 1.  Never
 * edit a shipped step; append a new one and raise CS_SCHEMA_VERSION.
 */
static const char *const cs_migrations[CS_SCHEMA_VERSION] = {
        /* 0 -> 1: the first schema. */
        "CREATE TABLE key_check ("
        " id INTEGER PRIMARY KEY CHECK (id = 1),"
        " value BLOB NOT NULL"
        ");"
        "CREATE TABLE meta ("
        " name TEXT NOT NULL PRIMARY KEY,"
        " value BLOB NOT NULL"
        ") WITHOUT ROWID;"
        "CREATE TABLE counters ("
        " name TEXT NOT NULL PRIMARY KEY,"
        " next INTEGER NOT NULL"
        ") WITHOUT ROWID;"
        "CREATE TABLE sessions ("
        " peer TEXT NOT NULL PRIMARY KEY,"
        " state BLOB NOT NULL,"
        " updated INTEGER NOT NULL"
        ") WITHOUT ROWID;"
        /* AUTOINCREMENT: a local id is never reused, even after deletions. */
        "CREATE TABLE messages ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " peer TEXT NOT NULL,"
        " grp BLOB,"
        " direction INTEGER NOT NULL,"
        " msg_id BLOB NOT NULL,"
        " body BLOB NOT NULL,"
        " timestamp_ms INTEGER NOT NULL,"
        " state INTEGER NOT NULL,"
        " UNIQUE (peer, direction, msg_id)"
        ");"
        "CREATE INDEX messages_by_peer_time ON messages(peer, timestamp_ms, id);"
        "CREATE TABLE seen ("
        " peer TEXT NOT NULL,"
        " msg_id BLOB NOT NULL,"
        " seen_at INTEGER NOT NULL,"
        " PRIMARY KEY (peer, msg_id)"
        ") WITHOUT ROWID;"
        "CREATE INDEX seen_by_time ON seen(seen_at);"
        "CREATE TABLE signed_prekeys ("
        " id INTEGER PRIMARY KEY,"
        " secret BLOB NOT NULL,"
        " created INTEGER NOT NULL,"
        " current INTEGER NOT NULL,"
        " retired INTEGER NOT NULL DEFAULT 0"
        ");"
        "CREATE TABLE one_time_prekeys ("
        " id INTEGER PRIMARY KEY,"
        " secret BLOB NOT NULL,"
        " created INTEGER NOT NULL"
        ");",
        /* 1 -> 2: groups and their sender chains (client-group.h); both sealed. */
        "CREATE TABLE groups ("
        " id BLOB NOT NULL PRIMARY KEY,"
        " state BLOB NOT NULL,"
        " updated INTEGER NOT NULL"
        ") WITHOUT ROWID;"
        "CREATE TABLE sender_keys ("
        " grp BLOB NOT NULL,"
        " sender TEXT NOT NULL,"
        " state BLOB NOT NULL,"
        " updated INTEGER NOT NULL,"
        " PRIMARY KEY (grp, sender)"
        ") WITHOUT ROWID;",
        /* 2 -> 3: answered X3DH headers. */
        CS_MIGRATE_X3DH_SEEN,
        /* 3 -> 4: file offers received and uploads under way (files, issue 6). */
        CS_MIGRATE_FILES,
};

enum cs_id {
	CS_CHECK_GET,
	CS_CHECK_PUT,
	CS_SESSION_PUT,
	CS_SESSION_GET,
	CS_SESSION_DEL,
	CS_MSG_INSERT,
	CS_MSG_HISTORY,
	CS_MSG_HISTORY_GROUP,
	CS_MSG_STATE_GET,
	CS_MSG_STATE_SET,
	CS_SEEN_ADD,
	CS_SEEN_PRUNE,
	CS_SPK_INSERT,
	CS_SPK_RETIRE,
	CS_SPK_GET,
	CS_SPK_CURRENT,
	CS_SPK_PRUNE,
	CS_OTK_INSERT,
	CS_OTK_GET,
	CS_OTK_DELETE,
	CS_OTK_COUNT,
	CS_COUNTER_GET,
	CS_COUNTER_PUT,
	CS_META_PUT,
	CS_META_GET,
	CS_META_DEL,
	CS_GROUP_PUT,
	CS_GROUP_GET,
	CS_GROUP_LIST,
	CS_GROUP_DEL,
	CS_SENDERKEY_PUT,
	CS_SENDERKEY_GET,
	CS_SENDERKEY_DEL,
	CS_SENDERKEY_DEL_GROUP,
	/* answered X3DH headers */
	CS_X3DH_SEEN_GET,
	CS_X3DH_SEEN_ADD,
	CS_X3DH_SEEN_PRUNE,
	/* files */
	CS_OFFER_NEXT,
	CS_OFFER_PUT,
	CS_OFFER_GET,
	CS_OFFER_LIST,
	CS_OFFER_DEL,
	CS_UPLOAD_PUT,
	CS_UPLOAD_GET,
	CS_UPLOAD_DEL,
	CS__COUNT
};

static const char *const cs_sql[CS__COUNT] = {
        [CS_CHECK_GET] = "SELECT value FROM key_check WHERE id = 1",
        [CS_CHECK_PUT] = "INSERT INTO key_check (id, value) VALUES (1, ?1)",
        [CS_SESSION_PUT] = "INSERT INTO sessions (peer, state, updated) VALUES (?1, ?2, ?3)"
                           " ON CONFLICT (peer) DO UPDATE SET state = excluded.state,"
                           " updated = excluded.updated",
        [CS_SESSION_GET] = "SELECT state FROM sessions WHERE peer = ?1",
        [CS_SESSION_DEL] = "DELETE FROM sessions WHERE peer = ?1",
        [CS_MSG_INSERT] = "INSERT INTO messages"
                          " (peer, grp, direction, msg_id, body, timestamp_ms, state)"
                          " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING"
                          " RETURNING id",
        /* The newest limit rows, then turned round so that they come oldest first. */
        [CS_MSG_HISTORY] = "SELECT id, grp, direction, msg_id, body, timestamp_ms, state FROM"
                           " (SELECT * FROM messages WHERE peer = ?1 AND grp IS NULL"
                           " AND timestamp_ms < ?2 ORDER BY timestamp_ms DESC, id DESC LIMIT ?3)"
                           " ORDER BY timestamp_ms, id",
        /* A group's messages, from every sender; the peer column names each one's. */
        [CS_MSG_HISTORY_GROUP] = "SELECT id, grp, direction, msg_id, body, timestamp_ms, state,"
                                 " peer FROM (SELECT * FROM messages WHERE grp = ?1"
                                 " AND timestamp_ms < ?2 ORDER BY timestamp_ms DESC, id DESC"
                                 " LIMIT ?3) ORDER BY timestamp_ms, id",
        [CS_MSG_STATE_GET] = "SELECT state FROM messages WHERE peer = ?1 AND direction = ?2"
                             " AND msg_id = ?3",
        [CS_MSG_STATE_SET] = "UPDATE messages SET state = ?4 WHERE peer = ?1 AND direction = ?2"
                             " AND msg_id = ?3",
        [CS_SEEN_ADD] = "INSERT OR IGNORE INTO seen (peer, msg_id, seen_at) VALUES (?1, ?2, ?3)",
        [CS_SEEN_PRUNE] = "DELETE FROM seen WHERE seen_at < ?1",
        [CS_SPK_INSERT] = "INSERT INTO signed_prekeys (id, secret, created, current)"
                          " VALUES (?1, ?2, ?3, 1) ON CONFLICT DO NOTHING",
        [CS_SPK_RETIRE] = "UPDATE signed_prekeys SET current = 0, retired = ?2"
                          " WHERE current = 1 AND id <> ?1",
        [CS_SPK_GET] = "SELECT secret, current FROM signed_prekeys WHERE id = ?1",
        [CS_SPK_CURRENT] = "SELECT id, created FROM signed_prekeys WHERE current = 1"
                           " ORDER BY created DESC, id DESC LIMIT 1",
        [CS_SPK_PRUNE] = "DELETE FROM signed_prekeys WHERE current = 0 AND retired <= ?1",
        [CS_OTK_INSERT] = "INSERT INTO one_time_prekeys (id, secret, created)"
                          " VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        [CS_OTK_GET] = "SELECT secret FROM one_time_prekeys WHERE id = ?1",
        [CS_OTK_DELETE] = "DELETE FROM one_time_prekeys WHERE id = ?1",
        [CS_OTK_COUNT] = "SELECT count(*) FROM one_time_prekeys",
        [CS_COUNTER_GET] = "SELECT next FROM counters WHERE name = ?1",
        [CS_COUNTER_PUT] = "INSERT INTO counters (name, next) VALUES (?1, ?2)"
                           " ON CONFLICT (name) DO UPDATE SET next = excluded.next",
        [CS_META_PUT] = "INSERT INTO meta (name, value) VALUES (?1, ?2)"
                        " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        [CS_META_GET] = "SELECT value FROM meta WHERE name = ?1",
        [CS_META_DEL] = "DELETE FROM meta WHERE name = ?1",
        [CS_GROUP_PUT] = "INSERT INTO groups (id, state, updated) VALUES (?1, ?2, ?3)"
                         " ON CONFLICT (id) DO UPDATE SET state = excluded.state,"
                         " updated = excluded.updated",
        [CS_GROUP_GET] = "SELECT state FROM groups WHERE id = ?1",
        [CS_GROUP_LIST] = "SELECT id, state FROM groups ORDER BY id",
        [CS_GROUP_DEL] = "DELETE FROM groups WHERE id = ?1",
        [CS_SENDERKEY_PUT] = "INSERT INTO sender_keys (grp, sender, state, updated)"
                             " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (grp, sender) DO UPDATE"
                             " SET state = excluded.state, updated = excluded.updated",
        [CS_SENDERKEY_GET] = "SELECT state FROM sender_keys WHERE grp = ?1 AND sender = ?2",
        [CS_SENDERKEY_DEL] = "DELETE FROM sender_keys WHERE grp = ?1 AND sender = ?2",
        [CS_SENDERKEY_DEL_GROUP] = "DELETE FROM sender_keys WHERE grp = ?1",
        /* answered X3DH headers */
        [CS_X3DH_SEEN_GET] = "SELECT 1 FROM x3dh_seen WHERE tag = ?1",
        [CS_X3DH_SEEN_ADD] = "INSERT INTO x3dh_seen (tag, spk_id, seen_at) VALUES (?1, ?2, ?3)"
                             " ON CONFLICT DO NOTHING",
        [CS_X3DH_SEEN_PRUNE] = "DELETE FROM x3dh_seen WHERE spk_id NOT IN"
                               " (SELECT id FROM signed_prekeys)",
        /* files */
        [CS_OFFER_NEXT] = "SELECT coalesce(max(id), 0) + 1 FROM file_offers",
        [CS_OFFER_PUT] = "INSERT INTO file_offers (id, record, created) VALUES (?1, ?2, ?3)"
                         " ON CONFLICT (id) DO UPDATE SET record = excluded.record",
        [CS_OFFER_GET] = "SELECT record FROM file_offers WHERE id = ?1",
        [CS_OFFER_LIST] = "SELECT id, record FROM file_offers ORDER BY id",
        [CS_OFFER_DEL] = "DELETE FROM file_offers WHERE id = ?1",
        [CS_UPLOAD_PUT] = "INSERT INTO file_uploads (tag, record, updated) VALUES (?1, ?2, ?3)"
                          " ON CONFLICT (tag) DO UPDATE SET record = excluded.record,"
                          " updated = excluded.updated",
        [CS_UPLOAD_GET] = "SELECT record FROM file_uploads WHERE tag = ?1",
        [CS_UPLOAD_DEL] = "DELETE FROM file_uploads WHERE tag = ?1",
};

struct client_store {
	struct sqlu sq; /* writes its errors, prefixed with path, into error */
	sqlite3_stmt *stmt[CS__COUNT];
	uint8_t *key; /* CLIENT_STORE_KEYBYTES, sodium_malloc'd */
	char *path;
	int in_tx;
	char error[512];
};

static void cs_set_error(struct client_store *cs, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void
cs_set_error(struct client_store *cs, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cs->error, sizeof(cs->error), fmt, ap);
	va_end(ap);
}

const char *
client_msg_state_name(enum client_msg_state state)
{
	switch (state) {
	case CLIENT_MSG_SENT:
		return "sent";
	case CLIENT_MSG_DELIVERED:
		return "delivered";
	case CLIENT_MSG_READ:
		return "read";
	case CLIENT_MSG_RECEIVED:
		return "received";
	case CLIENT_MSG_FAILED:
		return "failed";
	}
	return "unknown";
}

int
client_store_key_from_identity(uint8_t key[CLIENT_STORE_KEYBYTES], const struct identity *id)
{
	static const char info[] = CLIENT_STORE_KEY_INFO;
	PKCS8_PRIV_KEY_INFO *p8 = NULL;
	EVP_PKEY *pkey = NULL;
	unsigned char *der = NULL;
	const uint8_t *ikm;
	size_t ikmlen;
	int r, n = 0;

	memset(key, 0, CLIENT_STORE_KEYBYTES);
	if (id == NULL)
		return SOTTO_ERR_INVALID;
	if (id->pub.type == IDENTITY_ED25519) {
		if (id->ed25519_sk == NULL)
			return SOTTO_ERR_INVALID;
		/* libsodium's secret key is the 32-byte seed followed by the public key. */
		ikm = id->ed25519_sk;
		ikmlen = 32;
	} else {
		if ((r = identity_to_pkey(&pkey, id)) != 0)
			goto out;
		/* PKCS#8 DER is one fixed encoding of the key, so the store key is stable. */
		if ((p8 = EVP_PKEY2PKCS8(pkey)) == NULL ||
		        (n = i2d_PKCS8_PRIV_KEY_INFO(p8, &der)) <= 0) {
			r = SOTTO_ERR_CRYPTO;
			goto out;
		}
		ikm = der;
		ikmlen = (size_t)n;
	}
	r = kdf_hkdf_sha256(key, CLIENT_STORE_KEYBYTES, NULL, 0, ikm, ikmlen, (const uint8_t *)info,
	        sizeof(info) - 1);
out:
	if (der != NULL)
		OPENSSL_clear_free(der, (size_t)n);
	PKCS8_PRIV_KEY_INFO_free(p8);
	EVP_PKEY_free(pkey);
	if (r != 0)
		sotto_wipe(key, CLIENT_STORE_KEYBYTES);
	return r;
}

void
client_store_free_secret(void *p, size_t len)
{
	if (p == NULL)
		return;
	sotto_wipe(p, len);
	free(p);
}

const char *
client_store_last_error(const struct client_store *cs)
{
	return cs != NULL && cs->error[0] != '\0' ? cs->error : "no error";
}

/* The cached statement id, reset and unbound, ready for binding. */
static sqlite3_stmt *
cs_stmt(struct client_store *cs, enum cs_id id)
{
	return sqlu_ready(cs->stmt[id]);
}

/* A blob column's bytes and length; an empty or NULL column gives len 0. */
static const uint8_t *
cs_col_blob(sqlite3_stmt *st, int col, size_t *len)
{
	const uint8_t *p = sqlite3_column_blob(st, col);

	*len = p != NULL ? (size_t)sqlite3_column_bytes(st, col) : 0;
	return p != NULL ? p : (const uint8_t *)"";
}

/* Start an operation: atomic alone, joining the caller's transaction when one is open. */
static int
cs_op_begin(struct client_store *cs)
{
	return sqlu_op_begin(&cs->sq, cs->in_tx);
}

/* Finish an operation: keep its changes if r is 0, else undo exactly them. */
static int
cs_op_end(struct client_store *cs, int r)
{
	return sqlu_op_end(&cs->sq, r);
}

/* Run st, its parameters bound, in a savepoint of its own. */
static int
cs_op_run(struct client_store *cs, sqlite3_stmt *st)
{
	int r;

	if ((r = cs_op_begin(cs)) == 0)
		r = cs_op_end(cs, sqlu_run(&cs->sq, st));
	sqlu_done(st);
	return r;
}

int
client_store_begin(struct client_store *cs)
{
	int r;

	if (cs->in_tx) {
		cs_set_error(cs, "a transaction is already open");
		return SOTTO_ERR_INVALID;
	}
	if ((r = sqlu_begin(&cs->sq)) == 0)
		cs->in_tx = 1;
	return r;
}

int
client_store_commit(struct client_store *cs)
{
	if (!cs->in_tx) {
		cs_set_error(cs, "no transaction is open");
		return SOTTO_ERR_INVALID;
	}
	cs->in_tx = 0;
	return sqlu_commit(&cs->sq);
}

void
client_store_rollback(struct client_store *cs)
{
	cs->in_tx = 0;
	sqlu_rollback(&cs->sq);
}

int
client_store_in_transaction(const struct client_store *cs)
{
	return cs->in_tx;
}

/* Start associated data for a sealed value in table; the row's key parts follow. */
static int
cs_ad_begin(struct buf *ad, const char *table)
{
	int r;

	buf_init(ad, CS_AD_MAX);
	if ((r = buf_put_cstring(ad, CLIENT_STORE_KEY_INFO)) != 0 ||
	        (r = buf_put_cstring(ad, table)) != 0)
		buf_free(ad);
	return r;
}

/* Associated data naming a row by one text key (sessions, meta). */
static int
cs_ad_text(struct buf *ad, const char *table, const char *key)
{
	int r;

	if ((r = cs_ad_begin(ad, table)) != 0)
		return r;
	if ((r = buf_put_cstring(ad, key)) != 0)
		buf_free(ad);
	return r;
}

/* Associated data naming a row by an integer id (prekeys). */
static int
cs_ad_id(struct buf *ad, const char *table, uint32_t id)
{
	int r;

	if ((r = cs_ad_begin(ad, table)) != 0)
		return r;
	if ((r = buf_put_u32(ad, id)) != 0)
		buf_free(ad);
	return r;
}

/* Associated data for a message: its unique key (peer, direction, msg_id) and its group. */
static int
cs_ad_msg(struct buf *ad, const char *peer, enum client_msg_dir dir, const uint8_t *msg_id,
        const uint8_t *group)
{
	int r;

	if ((r = cs_ad_begin(ad, "messages")) != 0)
		return r;
	if ((r = buf_put_cstring(ad, peer)) != 0 || (r = buf_put_u8(ad, (uint8_t)dir)) != 0 ||
	        (r = buf_put(ad, msg_id, CLIENT_STORE_MSG_ID_BYTES)) != 0 ||
	        (r = buf_put_string(ad, group, group != NULL ? CLIENT_STORE_GROUP_BYTES : 0)) != 0)
		buf_free(ad);
	return r;
}

/* Seal m for the row ad names: nonce || ciphertext || tag in a new buffer. */
static int
cs_seal(struct client_store *cs, struct buf *ad, const uint8_t *m, size_t mlen, uint8_t **out,
        size_t *outlen)
{
	uint8_t *c = NULL;
	int r;

	*out = NULL;
	*outlen = 0;
	if ((c = malloc(mlen + CS_OVERHEAD)) == NULL) {
		r = SOTTO_ERR_NOMEM;
		goto out;
	}
	sotto_random(c, AEAD_XCHACHA_NPUBBYTES);
	if ((r = aead_xchacha_seal(c + AEAD_XCHACHA_NPUBBYTES, m, mlen, buf_ptr(ad), buf_len(ad), c,
	             cs->key)) != 0)
		goto out;
	*out = c;
	*outlen = mlen + CS_OVERHEAD;
	c = NULL;
out:
	free(c);
	buf_free(ad);
	if (r != 0)
		cs_set_error(cs, "cannot seal a value: %s", sotto_strerror(r));
	return r;
}

/*
 * Open a sealed column into a new NUL-terminated buffer (the NUL is not
 * counted): SOTTO_ERR_VERIFY if it does not open under this key and row.
 */
static int
cs_open(struct client_store *cs, struct buf *ad, const uint8_t *c, size_t clen, size_t max,
        const char *what, uint8_t **out, size_t *outlen)
{
	uint8_t *m = NULL;
	size_t mlen;
	int r;

	*out = NULL;
	*outlen = 0;
	if (clen < CS_OVERHEAD || clen - CS_OVERHEAD > max) {
		cs_set_error(cs, "%s: %s: a sealed value has a bad length", cs->path, what);
		r = SOTTO_ERR_FORMAT;
		goto out;
	}
	mlen = clen - CS_OVERHEAD;
	if ((m = malloc(mlen + 1)) == NULL) {
		r = SOTTO_ERR_NOMEM;
		goto out;
	}
	if ((r = aead_xchacha_open(m, c + AEAD_XCHACHA_NPUBBYTES, clen - AEAD_XCHACHA_NPUBBYTES,
	             buf_ptr(ad), buf_len(ad), c, cs->key)) != 0) {
		cs_set_error(cs,
		        "%s: %s does not decrypt: the store key is wrong (another identity "
		        "key?) or the database was altered",
		        cs->path, what);
		r = SOTTO_ERR_VERIFY;
		goto out;
	}
	m[mlen] = '\0';
	*out = m;
	*outlen = mlen;
	m = NULL;
out:
	free(m);
	buf_free(ad);
	return r;
}

/* Normalise a peer name, recording why it is refused. */
static int
cs_peer(struct client_store *cs, char out[PROTO_USERNAME_MAX + 1], const char *peer)
{
	if (peer == NULL || proto_username_normalize(out, peer) != 0) {
		cs_set_error(cs, "invalid peer name");
		return SOTTO_ERR_INVALID;
	}
	return 0;
}

/* Read one sealed column of a single-row query and open it. */
static int
cs_get_sealed(struct client_store *cs, sqlite3_stmt *st, struct buf *ad, size_t max,
        const char *what, uint8_t **out, size_t *outlen)
{
	const uint8_t *c;
	size_t clen;
	int r;

	if ((r = sqlu_step(&cs->sq, st)) <= 0) {
		buf_free(ad);
		if (r == 0) {
			cs_set_error(cs, "%s: not found", what);
			r = SOTTO_ERR_NOTFOUND;
		}
		return r;
	}
	c = cs_col_blob(st, 0, &clen);
	return cs_open(cs, ad, c, clen, max, what, out, outlen);
}

/*
 * Seal m for the row ad names (freeing ad), bind it as parameter col of st,
 * whose other parameters are bound, and run st in a savepoint of its own.
 */
static int
cs_put_sealed(struct client_store *cs, sqlite3_stmt *st, int col, struct buf *ad, const uint8_t *m,
        size_t len)
{
	uint8_t *sealed = NULL;
	size_t slen = 0;
	int r;

	if ((r = cs_seal(cs, ad, m, len, &sealed, &slen)) != 0)
		goto out;
	sqlu_blob(st, col, sealed, slen);
	r = cs_op_run(cs, st);
out:
	sqlu_done(st);
	free(sealed);
	return r;
}

int
client_store_session_put(
        struct client_store *cs, const char *peer, const uint8_t *state, size_t len, int64_t now)
{
	char name[PROTO_USERNAME_MAX + 1];
	struct buf ad;
	sqlite3_stmt *st;
	int r;

	if ((r = cs_peer(cs, name, peer)) != 0)
		return r;
	if (len > CLIENT_STORE_STATE_MAX || (state == NULL && len > 0)) {
		cs_set_error(cs, "a ratchet state of %zu bytes is too large", len);
		return SOTTO_ERR_RANGE;
	}
	if ((r = cs_ad_text(&ad, "sessions", name)) != 0)
		return r;
	st = cs_stmt(cs, CS_SESSION_PUT);
	sqlu_text(st, 1, name);
	sqlu_int(st, 3, now);
	return cs_put_sealed(cs, st, 2, &ad, state, len);
}

int
client_store_session_get(struct client_store *cs, const char *peer, uint8_t **state, size_t *len)
{
	char name[PROTO_USERNAME_MAX + 1], what[PROTO_USERNAME_MAX + 32];
	struct buf ad;
	sqlite3_stmt *st;
	int r;

	*state = NULL;
	*len = 0;
	if ((r = cs_peer(cs, name, peer)) != 0 || (r = cs_ad_text(&ad, "sessions", name)) != 0)
		return r;
	snprintf(what, sizeof(what), "the session with %s", name);
	st = cs_stmt(cs, CS_SESSION_GET);
	sqlu_text(st, 1, name);
	r = cs_get_sealed(cs, st, &ad, CLIENT_STORE_STATE_MAX, what, state, len);
	sqlu_done(st);
	return r;
}

int
client_store_session_delete(struct client_store *cs, const char *peer)
{
	char name[PROTO_USERNAME_MAX + 1];
	sqlite3_stmt *st;
	int r;

	if ((r = cs_peer(cs, name, peer)) != 0)
		return r;
	st = cs_stmt(cs, CS_SESSION_DEL);
	sqlu_text(st, 1, name);
	return cs_op_run(cs, st);
}

/* 1 if v is a known direction. */
static int
cs_dir_ok(int v)
{
	return v == CLIENT_MSG_IN || v == CLIENT_MSG_OUT;
}

/* 1 if v is a known state. */
static int
cs_state_ok(int v)
{
	return v >= CLIENT_MSG_SENT && v <= CLIENT_MSG_FAILED;
}

int
client_store_msg_add(struct client_store *cs, const struct client_msg *m, int64_t *id)
{
	char name[PROTO_USERNAME_MAX + 1];
	uint8_t *sealed = NULL;
	size_t slen = 0;
	struct buf ad;
	sqlite3_stmt *st;
	int r;

	if (id != NULL)
		*id = 0;
	if ((r = cs_peer(cs, name, m->peer)) != 0)
		return r;
	if (!cs_dir_ok(m->dir) || !cs_state_ok(m->state) || (m->body == NULL && m->body_len > 0)) {
		cs_set_error(cs, "invalid message");
		return SOTTO_ERR_INVALID;
	}
	if (m->body_len > CLIENT_STORE_BODY_MAX) {
		cs_set_error(cs, "a message body of %zu bytes is too large", m->body_len);
		return SOTTO_ERR_RANGE;
	}
	if ((r = cs_ad_msg(&ad, name, m->dir, m->msg_id, m->group)) != 0 ||
	        (r = cs_seal(cs, &ad, m->body, m->body_len, &sealed, &slen)) != 0)
		return r;
	if ((r = cs_op_begin(cs)) != 0)
		goto out;
	st = cs_stmt(cs, CS_MSG_INSERT);
	sqlu_text(st, 1, name);
	if (m->group != NULL)
		sqlu_blob(st, 2, m->group, CLIENT_STORE_GROUP_BYTES);
	sqlu_int(st, 3, m->dir);
	sqlu_blob(st, 4, m->msg_id, CLIENT_STORE_MSG_ID_BYTES);
	sqlu_blob(st, 5, sealed, slen);
	sqlu_int(st, 6, m->timestamp_ms);
	sqlu_int(st, 7, m->state);
	if ((r = sqlu_step(&cs->sq, st)) == 1 && id != NULL)
		*id = sqlite3_column_int64(st, 0);
	sqlu_done(st);
	if (r == 0) {
		cs_set_error(cs, "message already stored");
		r = SOTTO_ERR_EXISTS;
	} else if (r == 1) {
		r = 0;
	}
	r = cs_op_end(cs, r);
	if (r != 0 && id != NULL)
		*id = 0;
out:
	free(sealed);
	return r;
}

/* Fill m from a history row (body opened into *body), checking what the schema cannot. */
static int
cs_msg_row(struct client_store *cs, sqlite3_stmt *st, const char *peer, struct client_msg *m,
        uint8_t **body)
{
	const uint8_t *grp, *mid, *c;
	size_t glen, mlen, clen;
	struct buf ad;
	int r, dir, state;

	*body = NULL;
	memset(m, 0, sizeof(*m));
	m->id = sqlite3_column_int64(st, 0);
	m->peer = peer;
	grp = cs_col_blob(st, 1, &glen);
	dir = sqlite3_column_int(st, 2);
	mid = cs_col_blob(st, 3, &mlen);
	state = sqlite3_column_int(st, 6);
	if ((sqlite3_column_type(st, 1) != SQLITE_NULL && glen != CLIENT_STORE_GROUP_BYTES) ||
	        !cs_dir_ok(dir) || mlen != CLIENT_STORE_MSG_ID_BYTES || !cs_state_ok(state)) {
		cs_set_error(cs, "%s: message %lld is malformed", cs->path, (long long)m->id);
		return SOTTO_ERR_FORMAT;
	}
	m->group = sqlite3_column_type(st, 1) != SQLITE_NULL ? grp : NULL;
	m->dir = (enum client_msg_dir)dir;
	memcpy(m->msg_id, mid, CLIENT_STORE_MSG_ID_BYTES);
	m->timestamp_ms = sqlite3_column_int64(st, 5);
	m->state = (enum client_msg_state)state;
	c = cs_col_blob(st, 4, &clen);
	if ((r = cs_ad_msg(&ad, peer, m->dir, m->msg_id, m->group)) != 0)
		return r;
	if ((r = cs_open(cs, &ad, c, clen, CLIENT_STORE_BODY_MAX, "a message body", body,
	             &m->body_len)) != 0)
		return r;
	m->body = *body;
	return 0;
}

/*
 * Feed the newest limit rows before before_ms of a history query (?1 bound)
 * to cb: peer names every row's sender, or is NULL when column 7 does.
 */
static int
cs_history(struct client_store *cs, sqlite3_stmt *st, const char *peer, int64_t before_ms,
        size_t limit, client_store_msg_cb cb, void *arg)
{
	char name[PROTO_USERNAME_MAX + 1];
	struct client_msg m;
	uint8_t *body = NULL;
	const char *sender;
	int r = 0;

	if (limit > CLIENT_STORE_HISTORY_MAX)
		limit = CLIENT_STORE_HISTORY_MAX;
	sqlu_int(st, 2, before_ms);
	sqlu_int(st, 3, (int64_t)limit);
	while (limit > 0 && (r = sqlu_step(&cs->sq, st)) == 1) {
		if (peer == NULL) {
			sender = (const char *)sqlite3_column_text(st, 7);
			if (cs_peer(cs, name, sender) != 0 || strcmp(name, sender) != 0) {
				cs_set_error(
				        cs, "%s: a group message names no valid sender", cs->path);
				r = SOTTO_ERR_FORMAT;
				break;
			}
		}
		if ((r = cs_msg_row(cs, st, peer != NULL ? peer : name, &m, &body)) != 0)
			break;
		r = cb(arg, &m);
		client_store_free_secret(body, m.body_len);
		body = NULL;
		if (r != 0)
			break;
	}
	sqlu_done(st);
	return sqlu_cb_end(r);
}

int
client_store_msg_history(struct client_store *cs, const char *peer, int64_t before_ms, size_t limit,
        client_store_msg_cb cb, void *arg)
{
	char name[PROTO_USERNAME_MAX + 1];
	sqlite3_stmt *st;
	int r;

	if ((r = cs_peer(cs, name, peer)) != 0)
		return r;
	if (cb == NULL)
		return SOTTO_ERR_INVALID;
	st = cs_stmt(cs, CS_MSG_HISTORY);
	sqlu_text(st, 1, name);
	return cs_history(cs, st, name, before_ms, limit, cb, arg);
}

int
client_store_msg_history_group(struct client_store *cs,
        const uint8_t group[CLIENT_STORE_GROUP_BYTES], int64_t before_ms, size_t limit,
        client_store_msg_cb cb, void *arg)
{
	sqlite3_stmt *st;

	if (group == NULL || cb == NULL)
		return SOTTO_ERR_INVALID;
	st = cs_stmt(cs, CS_MSG_HISTORY_GROUP);
	sqlu_blob(st, 1, group, CLIENT_STORE_GROUP_BYTES);
	return cs_history(cs, st, NULL, before_ms, limit, cb, arg);
}

/* 1 for the states of an outgoing message's progress, in order: sent, delivered, read. */
static int
cs_progress(enum client_msg_state s)
{
	return s == CLIENT_MSG_SENT || s == CLIENT_MSG_DELIVERED || s == CLIENT_MSG_READ;
}

int
client_store_msg_set_state(struct client_store *cs, const char *peer, enum client_msg_dir dir,
        const uint8_t msg_id[CLIENT_STORE_MSG_ID_BYTES], enum client_msg_state state)
{
	char name[PROTO_USERNAME_MAX + 1];
	enum client_msg_state old;
	sqlite3_stmt *st;
	int r;

	if ((r = cs_peer(cs, name, peer)) != 0)
		return r;
	if (!cs_dir_ok(dir) || !cs_state_ok(state)) {
		cs_set_error(cs, "invalid message state");
		return SOTTO_ERR_INVALID;
	}
	if ((r = cs_op_begin(cs)) != 0)
		return r;
	st = cs_stmt(cs, CS_MSG_STATE_GET);
	sqlu_text(st, 1, name);
	sqlu_int(st, 2, dir);
	sqlu_blob(st, 3, msg_id, CLIENT_STORE_MSG_ID_BYTES);
	r = sqlu_step(&cs->sq, st);
	old = r == 1 ? (enum client_msg_state)sqlite3_column_int(st, 0) : CLIENT_MSG_SENT;
	sqlu_done(st);
	if (r <= 0) {
		if (r == 0) {
			cs_set_error(cs, "no such message");
			r = SOTTO_ERR_NOTFOUND;
		}
		goto out;
	}
	/* Receipts can arrive out of order: a late "delivered" must not hide "read". */
	if (old == state || (cs_progress(old) && cs_progress(state) && state < old) ||
	        ((old == CLIENT_MSG_READ || old == CLIENT_MSG_FAILED) &&
	                state == CLIENT_MSG_SENT)) {
		r = 0;
		goto out;
	}
	st = cs_stmt(cs, CS_MSG_STATE_SET);
	sqlu_text(st, 1, name);
	sqlu_int(st, 2, dir);
	sqlu_blob(st, 3, msg_id, CLIENT_STORE_MSG_ID_BYTES);
	sqlu_int(st, 4, state);
	r = sqlu_run(&cs->sq, st);
out:
	return cs_op_end(cs, r);
}

int
client_store_seen_add(struct client_store *cs, const char *peer,
        const uint8_t msg_id[CLIENT_STORE_MSG_ID_BYTES], int64_t now, int *seen)
{
	char name[PROTO_USERNAME_MAX + 1];
	sqlite3_stmt *st;
	int r;

	*seen = 0;
	if ((r = cs_peer(cs, name, peer)) != 0)
		return r;
	if ((r = cs_op_begin(cs)) != 0)
		return r;
	st = cs_stmt(cs, CS_SEEN_ADD);
	sqlu_text(st, 1, name);
	sqlu_blob(st, 2, msg_id, CLIENT_STORE_MSG_ID_BYTES);
	sqlu_int(st, 3, now);
	if ((r = sqlu_run(&cs->sq, st)) == 0)
		*seen = sqlite3_changes(cs->sq.db) == 0;
	return cs_op_end(cs, r);
}

/* Run a bound DELETE in a savepoint of its own and count the rows it removed. */
static int
cs_delete_count(struct client_store *cs, sqlite3_stmt *st, uint32_t *count)
{
	int r, n = 0;

	if (count != NULL)
		*count = 0;
	if ((r = cs_op_begin(cs)) != 0)
		goto out;
	if ((n = sqlu_write(&cs->sq, st)) < 0)
		r = n;
	if ((r = cs_op_end(cs, r)) == 0 && count != NULL)
		*count = (uint32_t)n;
out:
	return r;
}

/* Run a one-integer DELETE and count the rows it removed. */
static int
cs_delete_before(struct client_store *cs, enum cs_id id, int64_t before, uint32_t *count)
{
	sqlite3_stmt *st = cs_stmt(cs, id);

	sqlu_int(st, 1, before);
	return cs_delete_count(cs, st, count);
}

int
client_store_seen_prune(struct client_store *cs, int64_t now, uint32_t days, uint32_t *pruned)
{
	return cs_delete_before(cs, CS_SEEN_PRUNE, now - (int64_t)days * CS_DAY, pruned);
}

/* Seal a prekey secret for its table and id; SOTTO_ERR_RANGE if too long. */
static int
cs_prekey_seal(struct client_store *cs, const char *table, uint32_t id, const uint8_t *secret,
        size_t len, uint8_t **sealed, size_t *slen)
{
	struct buf ad;
	int r;

	*sealed = NULL;
	*slen = 0;
	if ((secret == NULL && len > 0) || len > CLIENT_STORE_PREKEY_MAX) {
		cs_set_error(cs, "a prekey secret of %zu bytes is not allowed", len);
		return SOTTO_ERR_RANGE;
	}
	if ((r = cs_ad_id(&ad, table, id)) != 0)
		return r;
	return cs_seal(cs, &ad, secret, len, sealed, slen);
}

/*
 * Seal a prekey secret and insert it as row id of table (statement sid),
 * SOTTO_ERR_EXISTS naming it what if the id is taken; a new signed prekey
 * retires the current one in the same savepoint.
 */
static int
cs_prekey_add(struct client_store *cs, enum cs_id sid, const char *table, const char *what,
        uint32_t id, const uint8_t *secret, size_t len, int64_t now)
{
	uint8_t *sealed = NULL;
	size_t slen = 0;
	sqlite3_stmt *st;
	int r;

	if ((r = cs_prekey_seal(cs, table, id, secret, len, &sealed, &slen)) != 0 ||
	        (r = cs_op_begin(cs)) != 0)
		goto out;
	st = cs_stmt(cs, sid);
	sqlu_int(st, 1, id);
	sqlu_blob(st, 2, sealed, slen);
	sqlu_int(st, 3, now);
	if ((r = sqlu_write(&cs->sq, st)) == 0) {
		cs_set_error(cs, "%s %u exists", what, id);
		r = SOTTO_ERR_EXISTS;
	}
	if (r > 0 && sid == CS_SPK_INSERT) {
		st = cs_stmt(cs, CS_SPK_RETIRE);
		sqlu_int(st, 1, id);
		sqlu_int(st, 2, now);
		r = sqlu_run(&cs->sq, st);
	}
	r = cs_op_end(cs, r < 0 ? r : 0);
out:
	free(sealed);
	return r;
}

int
client_store_spk_add(
        struct client_store *cs, uint32_t id, const uint8_t *secret, size_t len, int64_t now)
{
	return cs_prekey_add(
	        cs, CS_SPK_INSERT, "signed_prekeys", "signed prekey", id, secret, len, now);
}

int
client_store_spk_get(
        struct client_store *cs, uint32_t id, uint8_t **secret, size_t *len, int *current)
{
	char what[64];
	struct buf ad;
	sqlite3_stmt *st;
	int r, cur = 0;

	*secret = NULL;
	*len = 0;
	if (current != NULL)
		*current = 0;
	if ((r = cs_ad_id(&ad, "signed_prekeys", id)) != 0)
		return r;
	snprintf(what, sizeof(what), "signed prekey %u", id);
	st = cs_stmt(cs, CS_SPK_GET);
	sqlu_int(st, 1, id);
	r = cs_get_sealed(cs, st, &ad, CLIENT_STORE_PREKEY_MAX, what, secret, len);
	if (r == 0)
		cur = sqlite3_column_int(st, 1) != 0;
	sqlu_done(st);
	if (r == 0 && current != NULL)
		*current = cur;
	return r;
}

int
client_store_spk_current(struct client_store *cs, uint32_t *id, int64_t *created)
{
	sqlite3_stmt *st = cs_stmt(cs, CS_SPK_CURRENT);
	int64_t v;
	int r;

	*id = 0;
	if (created != NULL)
		*created = 0;
	if ((r = sqlu_step(&cs->sq, st)) == 1) {
		v = sqlite3_column_int64(st, 0);
		if (v < 0 || v > UINT32_MAX) {
			cs_set_error(cs, "%s: a signed prekey id is out of range", cs->path);
			r = SOTTO_ERR_FORMAT;
		} else {
			*id = (uint32_t)v;
			if (created != NULL)
				*created = sqlite3_column_int64(st, 1);
			r = 0;
		}
	} else if (r == 0) {
		cs_set_error(cs, "no signed prekey");
		r = SOTTO_ERR_NOTFOUND;
	}
	sqlu_done(st);
	return r;
}

int
client_store_spk_prune(struct client_store *cs, int64_t now, int64_t grace, uint32_t *pruned)
{
	return cs_delete_before(cs, CS_SPK_PRUNE, now - grace, pruned);
}

int
client_store_otk_add(
        struct client_store *cs, uint32_t id, const uint8_t *secret, size_t len, int64_t now)
{
	return cs_prekey_add(
	        cs, CS_OTK_INSERT, "one_time_prekeys", "one-time prekey", id, secret, len, now);
}

int
client_store_otk_take(struct client_store *cs, uint32_t id, uint8_t **secret, size_t *len)
{
	uint8_t *m = NULL;
	size_t mlen = 0;
	char what[64];
	struct buf ad;
	sqlite3_stmt *st;
	int r;

	*secret = NULL;
	*len = 0;
	if ((r = cs_ad_id(&ad, "one_time_prekeys", id)) != 0)
		return r;
	snprintf(what, sizeof(what), "one-time prekey %u", id);
	if ((r = cs_op_begin(cs)) != 0) {
		buf_free(&ad);
		return r;
	}
	st = cs_stmt(cs, CS_OTK_GET);
	sqlu_int(st, 1, id);
	/* Opened before it is deleted: a key that does not open is left for inspection. */
	r = cs_get_sealed(cs, st, &ad, CLIENT_STORE_PREKEY_MAX, what, &m, &mlen);
	sqlu_done(st);
	if (r != 0)
		goto out;
	st = cs_stmt(cs, CS_OTK_DELETE);
	sqlu_int(st, 1, id);
	r = sqlu_run(&cs->sq, st);
out:
	if ((r = cs_op_end(cs, r)) == 0) {
		*secret = m;
		*len = mlen;
		m = NULL;
	}
	client_store_free_secret(m, mlen);
	return r;
}

int
client_store_otk_count(struct client_store *cs, uint32_t *count)
{
	return sqlu_count(&cs->sq, cs_stmt(cs, CS_OTK_COUNT), count);
}

/* 1 if name can name a meta value or counter: 1..64 printable ASCII characters. */
static int
cs_name_ok(const char *name)
{
	size_t i;

	if (name == NULL || name[0] == '\0')
		return 0;
	for (i = 0; name[i] != '\0'; i++)
		if (i >= CS_META_NAME_MAX || name[i] <= ' ' || name[i] > '~')
			return 0;
	return 1;
}

int
client_store_next_ids(struct client_store *cs, const char *counter, uint32_t n, uint32_t *first)
{
	sqlite3_stmt *st;
	int64_t next = 1;
	int r;

	*first = 0;
	if (!cs_name_ok(counter) || n == 0 || n > CS_IDS_MAX) {
		cs_set_error(cs, "invalid counter or count");
		return SOTTO_ERR_INVALID;
	}
	if ((r = cs_op_begin(cs)) != 0)
		return r;
	st = cs_stmt(cs, CS_COUNTER_GET);
	sqlu_text(st, 1, counter);
	if ((r = sqlu_value(&cs->sq, st, &next)) < 0)
		goto out;
	if (next < 1 || next + (int64_t)n - 1 > (int64_t)UINT32_MAX) {
		cs_set_error(cs, "counter %s has run out of ids", counter);
		r = SOTTO_ERR_RANGE;
		goto out;
	}
	st = cs_stmt(cs, CS_COUNTER_PUT);
	sqlu_text(st, 1, counter);
	sqlu_int(st, 2, next + n);
	if ((r = sqlu_run(&cs->sq, st)) == 0)
		*first = (uint32_t)next;
out:
	if ((r = cs_op_end(cs, r)) != 0)
		*first = 0;
	return r;
}

int
client_store_meta_set(struct client_store *cs, const char *name, const void *value, size_t len)
{
	struct buf ad;
	sqlite3_stmt *st;
	int r;

	if (!cs_name_ok(name) || (value == NULL && len > 0)) {
		cs_set_error(cs, "invalid meta name or value");
		return SOTTO_ERR_INVALID;
	}
	if (len > CLIENT_STORE_META_MAX) {
		cs_set_error(cs, "a meta value of %zu bytes is too large", len);
		return SOTTO_ERR_RANGE;
	}
	if ((r = cs_ad_text(&ad, "meta", name)) != 0)
		return r;
	st = cs_stmt(cs, CS_META_PUT);
	sqlu_text(st, 1, name);
	return cs_put_sealed(cs, st, 2, &ad, value, len);
}

int
client_store_meta_get(struct client_store *cs, const char *name, uint8_t **value, size_t *len)
{
	char what[CS_META_NAME_MAX + 32];
	struct buf ad;
	sqlite3_stmt *st;
	int r;

	*value = NULL;
	*len = 0;
	if (!cs_name_ok(name)) {
		cs_set_error(cs, "invalid meta name");
		return SOTTO_ERR_INVALID;
	}
	if ((r = cs_ad_text(&ad, "meta", name)) != 0)
		return r;
	snprintf(what, sizeof(what), "meta value %s", name);
	st = cs_stmt(cs, CS_META_GET);
	sqlu_text(st, 1, name);
	r = cs_get_sealed(cs, st, &ad, CLIENT_STORE_META_MAX, what, value, len);
	sqlu_done(st);
	return r;
}

int
client_store_meta_delete(struct client_store *cs, const char *name)
{
	sqlite3_stmt *st;

	if (!cs_name_ok(name)) {
		cs_set_error(cs, "invalid meta name");
		return SOTTO_ERR_INVALID;
	}
	st = cs_stmt(cs, CS_META_DEL);
	sqlu_text(st, 1, name);
	return cs_op_run(cs, st);
}

int
client_store_meta_set_str(struct client_store *cs, const char *name, const char *value)
{
	if (value == NULL)
		return SOTTO_ERR_INVALID;
	return client_store_meta_set(cs, name, value, strlen(value));
}

int
client_store_meta_get_str(struct client_store *cs, const char *name, char **value)
{
	uint8_t *v = NULL;
	size_t len = 0;
	int r;

	*value = NULL;
	if ((r = client_store_meta_get(cs, name, &v, &len)) != 0)
		return r;
	if (memchr(v, '\0', len) != NULL) {
		cs_set_error(cs, "meta value %s is not a string", name);
		client_store_free_secret(v, len);
		return SOTTO_ERR_FORMAT;
	}
	*value = (char *)v;
	return 0;
}

int
client_store_meta_set_int(struct client_store *cs, const char *name, int64_t value)
{
	char s[32];

	snprintf(s, sizeof(s), "%lld", (long long)value);
	return client_store_meta_set_str(cs, name, s);
}

int
client_store_meta_get_int(struct client_store *cs, const char *name, int64_t *value)
{
	char *s = NULL, *end = NULL;
	long long v;
	int r;

	*value = 0;
	if ((r = client_store_meta_get_str(cs, name, &s)) != 0)
		return r;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0') {
		cs_set_error(cs, "meta value %s is not an integer", name);
		r = SOTTO_ERR_FORMAT;
	} else {
		*value = (int64_t)v;
	}
	free(s);
	return r;
}

/* --- answered X3DH headers --- */

int
client_store_x3dh_seen(
        struct client_store *cs, const uint8_t tag[CLIENT_STORE_X3DH_TAG_BYTES], int *seen)
{
	sqlite3_stmt *st = cs_stmt(cs, CS_X3DH_SEEN_GET);

	sqlu_blob(st, 1, tag, CLIENT_STORE_X3DH_TAG_BYTES);
	return sqlu_found(&cs->sq, st, seen);
}

int
client_store_x3dh_add(struct client_store *cs, const uint8_t tag[CLIENT_STORE_X3DH_TAG_BYTES],
        uint32_t spk_id, int64_t now)
{
	sqlite3_stmt *st;
	int r;

	if ((r = cs_op_begin(cs)) != 0)
		return r;
	st = cs_stmt(cs, CS_X3DH_SEEN_ADD);
	sqlu_blob(st, 1, tag, CLIENT_STORE_X3DH_TAG_BYTES);
	sqlu_int(st, 2, spk_id);
	sqlu_int(st, 3, now);
	if ((r = sqlu_run(&cs->sq, st)) == 0 && sqlite3_changes(cs->sq.db) == 0) {
		cs_set_error(cs, "this X3DH header was answered before");
		r = SOTTO_ERR_EXISTS;
	}
	return cs_op_end(cs, r);
}

int
client_store_x3dh_prune(struct client_store *cs, uint32_t *pruned)
{
	return cs_delete_count(cs, cs_stmt(cs, CS_X3DH_SEEN_PRUNE), pruned);
}

/* --- end answered X3DH headers --- */

/*
 * Prove the key: open the sealed check value, or seal one into a new
 * database, so that a wrong key fails here rather than on some later row.
 */
static int
cs_check_key(struct client_store *cs)
{
	static const char check[] = CS_CHECK_TEXT;
	uint8_t *sealed = NULL, *m = NULL;
	size_t slen = 0, mlen = 0;
	struct buf ad;
	sqlite3_stmt *st;
	int r;

	if ((r = cs_ad_begin(&ad, "key_check")) != 0)
		return r;
	if ((r = cs_op_begin(cs)) != 0) {
		buf_free(&ad);
		return r;
	}
	st = cs_stmt(cs, CS_CHECK_GET);
	r = cs_get_sealed(cs, st, &ad, sizeof(check), "the key check", &m, &mlen);
	sqlu_done(st);
	if (r == 0 && (mlen != sizeof(check) - 1 || memcmp(m, check, mlen) != 0)) {
		cs_set_error(cs, "%s: the key check holds the wrong text", cs->path);
		r = SOTTO_ERR_VERIFY;
	}
	if (r == SOTTO_ERR_VERIFY)
		cs_set_error(cs,
		        "%s: the store key does not open this database: it was made with "
		        "another identity key",
		        cs->path);
	if (r != SOTTO_ERR_NOTFOUND)
		goto out;
	if ((r = cs_ad_begin(&ad, "key_check")) != 0 ||
	        (r = cs_seal(cs, &ad, (const uint8_t *)check, sizeof(check) - 1, &sealed, &slen)) !=
	                0)
		goto out;
	st = cs_stmt(cs, CS_CHECK_PUT);
	sqlu_blob(st, 1, sealed, slen);
	r = sqlu_run(&cs->sq, st);
out:
	r = cs_op_end(cs, r);
	free(sealed);
	client_store_free_secret(m, mlen);
	return r;
}

void
client_store_close(struct client_store *cs)
{
	size_t i;

	if (cs == NULL)
		return;
	if (cs->sq.db != NULL && !sqlite3_get_autocommit(cs->sq.db))
		(void)sqlite3_exec(cs->sq.db, "ROLLBACK", NULL, NULL, NULL);
	for (i = 0; i < CS__COUNT; i++)
		sqlite3_finalize(cs->stmt[i]);
	sqlu_close(&cs->sq);
	if (cs->key != NULL)
		sodium_free(cs->key); /* sodium_free wipes first */
	free(cs->path);
	free(cs);
}

int
client_store_open(struct client_store **out, const char *dir,
        const uint8_t key[CLIENT_STORE_KEYBYTES], char *err, size_t errlen)
{
	struct client_store *cs = NULL;
	size_t n;
	int r;

	*out = NULL;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (dir == NULL || *dir == '\0' || key == NULL) {
		if (err != NULL)
			snprintf(err, errlen, "no data directory or no store key");
		return SOTTO_ERR_INVALID;
	}
	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		if (err != NULL)
			snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return errno == EACCES ? SOTTO_ERR_PERM : SOTTO_ERR_IO;
	}
	if ((cs = calloc(1, sizeof(*cs))) == NULL) {
		r = SOTTO_ERR_NOMEM;
		goto out;
	}
	n = strlen(dir) + sizeof("/" CLIENT_STORE_DB_FILE);
	if ((cs->path = malloc(n)) == NULL ||
	        (cs->key = sodium_malloc(CLIENT_STORE_KEYBYTES)) == NULL) {
		cs_set_error(cs, "out of memory");
		r = SOTTO_ERR_NOMEM;
		goto out;
	}
	snprintf(cs->path, n, "%s/%s", dir, CLIENT_STORE_DB_FILE);
	sqlu_init(&cs->sq, cs->error, sizeof(cs->error), cs->path, "transaction");
	memcpy(cs->key, key, CLIENT_STORE_KEYBYTES);
	if ((r = sqlu_create_file(cs->path, cs->error, sizeof(cs->error))) != 0)
		goto out;
	/* secure_delete: a consumed prekey or replaced ratchet state leaves no old bytes behind. */
	if ((r = sqlu_open(&cs->sq, cs->path)) != 0 ||
	        (r = sqlu_pragma(&cs->sq, "PRAGMA journal_mode = WAL", "wal")) != 0 ||
	        (r = sqlu_pragma(&cs->sq, "PRAGMA synchronous = NORMAL", NULL)) != 0 ||
	        (r = sqlu_pragma(&cs->sq, "PRAGMA secure_delete = ON", "1")) != 0 ||
	        (r = sqlu_pragma(&cs->sq, "PRAGMA trusted_schema = OFF", NULL)) != 0 ||
	        (r = sqlu_pragma(&cs->sq, "PRAGMA foreign_keys = OFF", NULL)) != 0 ||
	        (r = sqlu_migrate(&cs->sq, cs_migrations, CS_SCHEMA_VERSION, "sotto")) != 0 ||
	        (r = sqlu_prepare(&cs->sq, cs_sql, cs->stmt, CS__COUNT)) != 0)
		goto out;
	if ((r = cs_check_key(cs)) != 0)
		goto out;
	cs->error[0] = '\0';
	*out = cs;
	cs = NULL;
	r = 0;
out:
	if (cs != NULL) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "%s",
			        cs->error[0] != '\0' ? cs->error : sotto_strerror(r));
		client_store_close(cs);
	}
	return r;
}

/* ---- groups and sender keys ----------------------------------------------------------- */

/* Associated data naming a group row, and with a sender, a sender-key row. */
static int
cs_ad_group(struct buf *ad, const char *table, const uint8_t *id, const char *sender)
{
	int r;

	if ((r = cs_ad_begin(ad, table)) != 0)
		return r;
	if ((r = buf_put(ad, id, CLIENT_STORE_GROUP_BYTES)) != 0 ||
	        (sender != NULL && (r = buf_put_cstring(ad, sender)) != 0))
		buf_free(ad);
	return r;
}

int
client_store_group_put(struct client_store *cs, const uint8_t id[CLIENT_STORE_GROUP_BYTES],
        const uint8_t *state, size_t len, int64_t now)
{
	struct buf ad;
	sqlite3_stmt *st;
	int r;

	if (id == NULL || (state == NULL && len > 0))
		return SOTTO_ERR_INVALID;
	if (len > CLIENT_STORE_STATE_MAX) {
		cs_set_error(cs, "a group record of %zu bytes is too large", len);
		return SOTTO_ERR_RANGE;
	}
	if ((r = cs_ad_group(&ad, "groups", id, NULL)) != 0)
		return r;
	st = cs_stmt(cs, CS_GROUP_PUT);
	sqlu_blob(st, 1, id, CLIENT_STORE_GROUP_BYTES);
	sqlu_int(st, 3, now);
	return cs_put_sealed(cs, st, 2, &ad, state, len);
}

int
client_store_group_get(struct client_store *cs, const uint8_t id[CLIENT_STORE_GROUP_BYTES],
        uint8_t **state, size_t *len)
{
	struct buf ad;
	sqlite3_stmt *st;
	int r;

	*state = NULL;
	*len = 0;
	if (id == NULL)
		return SOTTO_ERR_INVALID;
	if ((r = cs_ad_group(&ad, "groups", id, NULL)) != 0)
		return r;
	st = cs_stmt(cs, CS_GROUP_GET);
	sqlu_blob(st, 1, id, CLIENT_STORE_GROUP_BYTES);
	r = cs_get_sealed(cs, st, &ad, CLIENT_STORE_STATE_MAX, "a group record", state, len);
	sqlu_done(st);
	return r;
}

int
client_store_group_list(struct client_store *cs, client_store_group_cb cb, void *arg)
{
	const uint8_t *id, *c;
	uint8_t *state = NULL;
	size_t idlen, clen, len = 0;
	struct buf ad;
	sqlite3_stmt *st;
	int r;

	if (cb == NULL)
		return SOTTO_ERR_INVALID;
	st = cs_stmt(cs, CS_GROUP_LIST);
	while ((r = sqlu_step(&cs->sq, st)) == 1) {
		id = cs_col_blob(st, 0, &idlen);
		c = cs_col_blob(st, 1, &clen);
		if (idlen != CLIENT_STORE_GROUP_BYTES) {
			cs_set_error(cs, "%s: a group id is malformed", cs->path);
			r = SOTTO_ERR_FORMAT;
			break;
		}
		if ((r = cs_ad_group(&ad, "groups", id, NULL)) != 0 ||
		        (r = cs_open(cs, &ad, c, clen, CLIENT_STORE_STATE_MAX, "a group record",
		                 &state, &len)) != 0)
			break;
		r = cb(arg, id, state, len);
		client_store_free_secret(state, len);
		state = NULL;
		if (r != 0)
			break;
	}
	sqlu_done(st);
	return sqlu_cb_end(r);
}

int
client_store_group_delete(struct client_store *cs, const uint8_t id[CLIENT_STORE_GROUP_BYTES])
{
	sqlite3_stmt *st;
	int r;

	if (id == NULL)
		return SOTTO_ERR_INVALID;
	if ((r = cs_op_begin(cs)) != 0)
		return r;
	st = cs_stmt(cs, CS_SENDERKEY_DEL_GROUP);
	sqlu_blob(st, 1, id, CLIENT_STORE_GROUP_BYTES);
	if ((r = sqlu_run(&cs->sq, st)) == 0) {
		st = cs_stmt(cs, CS_GROUP_DEL);
		sqlu_blob(st, 1, id, CLIENT_STORE_GROUP_BYTES);
		r = sqlu_run(&cs->sq, st);
	}
	return cs_op_end(cs, r);
}

int
client_store_senderkey_put(struct client_store *cs, const uint8_t id[CLIENT_STORE_GROUP_BYTES],
        const char *sender, const uint8_t *state, size_t len, int64_t now)
{
	char name[PROTO_USERNAME_MAX + 1];
	struct buf ad;
	sqlite3_stmt *st;
	int r;

	if (id == NULL || (state == NULL && len > 0))
		return SOTTO_ERR_INVALID;
	if ((r = cs_peer(cs, name, sender)) != 0)
		return r;
	if (len > CLIENT_STORE_STATE_MAX) {
		cs_set_error(cs, "a sender-key state of %zu bytes is too large", len);
		return SOTTO_ERR_RANGE;
	}
	if ((r = cs_ad_group(&ad, "sender_keys", id, name)) != 0)
		return r;
	st = cs_stmt(cs, CS_SENDERKEY_PUT);
	sqlu_blob(st, 1, id, CLIENT_STORE_GROUP_BYTES);
	sqlu_text(st, 2, name);
	sqlu_int(st, 4, now);
	return cs_put_sealed(cs, st, 3, &ad, state, len);
}

int
client_store_senderkey_get(struct client_store *cs, const uint8_t id[CLIENT_STORE_GROUP_BYTES],
        const char *sender, uint8_t **state, size_t *len)
{
	char name[PROTO_USERNAME_MAX + 1], what[PROTO_USERNAME_MAX + 48];
	struct buf ad;
	sqlite3_stmt *st;
	int r;

	*state = NULL;
	*len = 0;
	if (id == NULL)
		return SOTTO_ERR_INVALID;
	if ((r = cs_peer(cs, name, sender)) != 0 ||
	        (r = cs_ad_group(&ad, "sender_keys", id, name)) != 0)
		return r;
	snprintf(what, sizeof(what), "the group sender key of %s", name);
	st = cs_stmt(cs, CS_SENDERKEY_GET);
	sqlu_blob(st, 1, id, CLIENT_STORE_GROUP_BYTES);
	sqlu_text(st, 2, name);
	r = cs_get_sealed(cs, st, &ad, CLIENT_STORE_STATE_MAX, what, state, len);
	sqlu_done(st);
	return r;
}

int
client_store_senderkey_delete(
        struct client_store *cs, const uint8_t id[CLIENT_STORE_GROUP_BYTES], const char *sender)
{
	char name[PROTO_USERNAME_MAX + 1];
	sqlite3_stmt *st;
	int r;

	if (id == NULL)
		return SOTTO_ERR_INVALID;
	if ((r = cs_peer(cs, name, sender)) != 0)
		return r;
	st = cs_stmt(cs, CS_SENDERKEY_DEL);
	sqlu_blob(st, 1, id, CLIENT_STORE_GROUP_BYTES);
	sqlu_text(st, 2, name);
	return cs_op_run(cs, st);
}

/* ---- files: offers received and uploads under way ------------------------------------ */

/* Seal rec for the offer row id and write it (insert or replace). */
static int
cs_offer_write(struct client_store *cs, uint32_t id, const uint8_t *rec, size_t len, int64_t now)
{
	uint8_t *sealed = NULL;
	size_t slen = 0;
	struct buf ad;
	sqlite3_stmt *st;
	int r;

	if ((r = cs_ad_id(&ad, "file_offers", id)) != 0 ||
	        (r = cs_seal(cs, &ad, rec, len, &sealed, &slen)) != 0)
		return r;
	st = cs_stmt(cs, CS_OFFER_PUT);
	sqlu_int(st, 1, id);
	sqlu_blob(st, 2, sealed, slen);
	sqlu_int(st, 3, now);
	r = sqlu_run(&cs->sq, st);
	free(sealed);
	return r;
}

int
client_store_offer_add(
        struct client_store *cs, const uint8_t *rec, size_t len, int64_t now, uint32_t *id)
{
	int64_t next = 0;
	int r;

	*id = 0;
	if (rec == NULL || len == 0 || len > CLIENT_STORE_FILE_REC_MAX)
		return SOTTO_ERR_INVALID;
	if ((r = cs_op_begin(cs)) != 0)
		return r;
	if ((r = sqlu_value(&cs->sq, cs_stmt(cs, CS_OFFER_NEXT), &next)) == 1)
		r = next > 0 && next <= UINT32_MAX ? 0 : SOTTO_ERR_RANGE;
	else if (r == 0)
		r = SOTTO_ERR_FORMAT;
	if (r == 0 && (r = cs_offer_write(cs, (uint32_t)next, rec, len, now)) == 0)
		*id = (uint32_t)next;
	return cs_op_end(cs, r);
}

int
client_store_offer_put(
        struct client_store *cs, uint32_t id, const uint8_t *rec, size_t len, int64_t now)
{
	uint8_t *old = NULL;
	size_t oldlen = 0;
	int r;

	if (rec == NULL || len == 0 || len > CLIENT_STORE_FILE_REC_MAX)
		return SOTTO_ERR_INVALID;
	if ((r = cs_op_begin(cs)) != 0)
		return r;
	if ((r = client_store_offer_get(cs, id, &old, &oldlen)) == 0)
		r = cs_offer_write(cs, id, rec, len, now);
	client_store_free_secret(old, oldlen);
	return cs_op_end(cs, r);
}

int
client_store_offer_get(struct client_store *cs, uint32_t id, uint8_t **rec, size_t *len)
{
	struct buf ad;
	sqlite3_stmt *st;
	int r;

	*rec = NULL;
	*len = 0;
	if ((r = cs_ad_id(&ad, "file_offers", id)) != 0)
		return r;
	st = cs_stmt(cs, CS_OFFER_GET);
	sqlu_int(st, 1, id);
	r = cs_get_sealed(cs, st, &ad, CLIENT_STORE_FILE_REC_MAX, "a file offer", rec, len);
	sqlu_done(st);
	return r;
}

int
client_store_offer_list(struct client_store *cs, client_store_offer_cb cb, void *arg)
{
	const uint8_t *c;
	uint8_t *rec = NULL;
	size_t clen, len = 0;
	int64_t id;
	struct buf ad;
	sqlite3_stmt *st;
	int r;

	if (cb == NULL)
		return SOTTO_ERR_INVALID;
	st = cs_stmt(cs, CS_OFFER_LIST);
	while ((r = sqlu_step(&cs->sq, st)) == 1) {
		id = sqlite3_column_int64(st, 0);
		c = cs_col_blob(st, 1, &clen);
		if (id <= 0 || id > UINT32_MAX) {
			cs_set_error(cs, "%s: a file offer's number is out of range", cs->path);
			r = SOTTO_ERR_FORMAT;
			break;
		}
		if ((r = cs_ad_id(&ad, "file_offers", (uint32_t)id)) != 0 ||
		        (r = cs_open(cs, &ad, c, clen, CLIENT_STORE_FILE_REC_MAX, "a file offer",
		                 &rec, &len)) != 0)
			break;
		r = cb(arg, (uint32_t)id, rec, len);
		client_store_free_secret(rec, len);
		rec = NULL;
		if (r != 0)
			break;
	}
	sqlu_done(st);
	return sqlu_cb_end(r);
}

int
client_store_offer_delete(struct client_store *cs, uint32_t id)
{
	sqlite3_stmt *st = cs_stmt(cs, CS_OFFER_DEL);

	sqlu_int(st, 1, id);
	return cs_op_run(cs, st);
}

/*
 * The row key of an upload named name: a hash keyed with the store key, so
 * that the database does not show which files were sent.
 */
static int
cs_upload_tag(struct client_store *cs, const char *name, uint8_t tag[32])
{
	static const char dom[] = "sotto-client-upload-tag-v1";
	crypto_generichash_state h;

	if (name == NULL)
		return SOTTO_ERR_INVALID;
	if (crypto_generichash_init(&h, cs->key, CLIENT_STORE_KEYBYTES, 32) != 0 ||
	        crypto_generichash_update(&h, (const uint8_t *)dom, sizeof(dom)) != 0 ||
	        crypto_generichash_update(&h, (const uint8_t *)name, strlen(name)) != 0 ||
	        crypto_generichash_final(&h, tag, 32) != 0)
		return SOTTO_ERR_CRYPTO;
	sodium_memzero(&h, sizeof(h));
	return 0;
}

static int
cs_ad_upload(struct buf *ad, const uint8_t tag[32])
{
	int r;

	if ((r = cs_ad_begin(ad, "file_uploads")) != 0)
		return r;
	if ((r = buf_put(ad, tag, 32)) != 0)
		buf_free(ad);
	return r;
}

int
client_store_upload_put(
        struct client_store *cs, const char *name, const uint8_t *rec, size_t len, int64_t now)
{
	uint8_t tag[32];
	struct buf ad;
	sqlite3_stmt *st;
	int r;

	if (rec == NULL || len == 0 || len > CLIENT_STORE_FILE_REC_MAX)
		return SOTTO_ERR_INVALID;
	if ((r = cs_upload_tag(cs, name, tag)) != 0 || (r = cs_ad_upload(&ad, tag)) != 0)
		return r;
	st = cs_stmt(cs, CS_UPLOAD_PUT);
	sqlu_blob(st, 1, tag, sizeof(tag));
	sqlu_int(st, 3, now);
	return cs_put_sealed(cs, st, 2, &ad, rec, len);
}

int
client_store_upload_get(struct client_store *cs, const char *name, uint8_t **rec, size_t *len)
{
	uint8_t tag[32];
	struct buf ad;
	sqlite3_stmt *st;
	int r;

	*rec = NULL;
	*len = 0;
	if ((r = cs_upload_tag(cs, name, tag)) != 0 || (r = cs_ad_upload(&ad, tag)) != 0)
		return r;
	st = cs_stmt(cs, CS_UPLOAD_GET);
	sqlu_blob(st, 1, tag, sizeof(tag));
	r = cs_get_sealed(cs, st, &ad, CLIENT_STORE_FILE_REC_MAX, "an upload record", rec, len);
	sqlu_done(st);
	return r;
}

int
client_store_upload_delete(struct client_store *cs, const char *name)
{
	uint8_t tag[32];
	sqlite3_stmt *st;
	int r;

	if ((r = cs_upload_tag(cs, name, tag)) != 0)
		return r;
	st = cs_stmt(cs, CS_UPLOAD_DEL);
	sqlu_blob(st, 1, tag, sizeof(tag));
	return cs_op_run(cs, st);
}
