/*
 * The SQLite backend of store.h: one database file in WAL mode, statements
 * prepared once at open, every operation wrapped in a savepoint so that it is
 * atomic alone and joins the batch transaction when one is open.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "src/sqlite-util.h"
#include "src/store-backend.h"

#define SQ_SCHEMA_VERSION 3
#define SQ_STALE_FAILURES 86400        /* failure counts older than this are forgotten */
#define SQ_INVITE_KEEP    (30 * 86400) /* used or expired invites kept for audit */

/*
 * Schema migrations: MIGRATIONS[i] takes user_version i to i + 1.  Never edit
 * a shipped step; append a new one and raise SQ_SCHEMA_VERSION.
 */
static const char *const sq_migrations[SQ_SCHEMA_VERSION] = {
        /* 0 -> 1: the first schema. */
        "CREATE TABLE users ("
        " name TEXT NOT NULL PRIMARY KEY COLLATE NOCASE,"
        " identity_type INTEGER NOT NULL,"
        " identity_key BLOB NOT NULL,"
        " created INTEGER NOT NULL,"
        " last_seen INTEGER NOT NULL DEFAULT 0,"
        " deleted INTEGER NOT NULL DEFAULT 0,"
        " admin INTEGER NOT NULL DEFAULT 0"
        ") WITHOUT ROWID;"
        "CREATE INDEX users_by_last_seen ON users(last_seen);"
        "CREATE TABLE signed_prekeys ("
        " name TEXT NOT NULL,"
        " id INTEGER NOT NULL,"
        " public_key BLOB NOT NULL,"
        " signature BLOB NOT NULL,"
        " created INTEGER NOT NULL,"
        " uploaded INTEGER NOT NULL,"
        " current INTEGER NOT NULL,"
        " PRIMARY KEY (name, id)"
        ") WITHOUT ROWID;"
        "CREATE TABLE one_time_prekeys ("
        " name TEXT NOT NULL,"
        " id INTEGER NOT NULL,"
        " public_key BLOB NOT NULL,"
        " UNIQUE (name, id)"
        ");"
        /* Index entries end with the rowid: (name, rowid) is upload order. */
        "CREATE INDEX one_time_prekeys_by_name ON one_time_prekeys(name);"
        /* AUTOINCREMENT: a seq is never reused, so fetch cursors stay valid. */
        "CREATE TABLE queue ("
        " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
        " recipient TEXT NOT NULL,"
        " kind INTEGER NOT NULL,"
        " peer TEXT NOT NULL,"
        " msg_id BLOB NOT NULL,"
        " timestamp_ms INTEGER NOT NULL,"
        " sealed BLOB NOT NULL,"
        " UNIQUE (recipient, msg_id, peer, kind)"
        ");"
        "CREATE INDEX queue_by_recipient ON queue(recipient, seq);"
        "CREATE TABLE acked ("
        " recipient TEXT NOT NULL,"
        " sender TEXT NOT NULL,"
        " msg_id BLOB NOT NULL,"
        " acked_at INTEGER NOT NULL,"
        " PRIMARY KEY (recipient, sender, msg_id)"
        ") WITHOUT ROWID;"
        "CREATE INDEX acked_by_time ON acked(acked_at);"
        "CREATE TABLE blocks ("
        " blocker TEXT NOT NULL,"
        " blocked TEXT NOT NULL,"
        " created INTEGER NOT NULL,"
        " PRIMARY KEY (blocker, blocked)"
        ") WITHOUT ROWID;"
        "CREATE INDEX blocks_by_blocked ON blocks(blocked, blocker);"
        "CREATE TABLE invites ("
        " token_hash BLOB NOT NULL PRIMARY KEY,"
        " created_by TEXT NOT NULL,"
        " created INTEGER NOT NULL,"
        " expires INTEGER NOT NULL,"
        " used_by TEXT,"
        " used_at INTEGER NOT NULL DEFAULT 0"
        ") WITHOUT ROWID;"
        "CREATE TABLE auth_failures ("
        " name TEXT NOT NULL PRIMARY KEY,"
        " failures INTEGER NOT NULL,"
        " locked_until INTEGER NOT NULL,"
        " last_failure INTEGER NOT NULL"
        ") WITHOUT ROWID;",
        /* 1 -> 2: groups (ids, owners, members, signed changes). */
        "CREATE TABLE groups ("
        " id BLOB NOT NULL PRIMARY KEY,"
        " owner TEXT NOT NULL,"
        " serial INTEGER NOT NULL,"
        " created INTEGER NOT NULL"
        ") WITHOUT ROWID;"
        "CREATE TABLE group_members ("
        " grp BLOB NOT NULL,"
        " name TEXT NOT NULL,"
        " joined INTEGER NOT NULL,"
        " PRIMARY KEY (grp, name)"
        ") WITHOUT ROWID;"
        "CREATE INDEX group_members_by_name ON group_members(name, grp);"
        /* users: the change's names joined with commas, which no username holds. */
        "CREATE TABLE group_changes ("
        " grp BLOB NOT NULL,"
        " serial INTEGER NOT NULL,"
        " op INTEGER NOT NULL,"
        " signer TEXT NOT NULL,"
        " users TEXT NOT NULL,"
        " signature BLOB NOT NULL,"
        " timestamp_ms INTEGER NOT NULL,"
        " PRIMARY KEY (grp, serial)"
        ") WITHOUT ROWID;",
        /* 2 -> 3: file blobs (issue 6); the bytes are files under the state directory. */
        "CREATE TABLE files ("
        " id BLOB NOT NULL PRIMARY KEY,"
        " uploader TEXT NOT NULL,"
        " size INTEGER NOT NULL,"
        " complete INTEGER NOT NULL DEFAULT 0,"
        " created INTEGER NOT NULL"
        ") WITHOUT ROWID;"
        "CREATE INDEX files_by_uploader ON files(uploader);"
        "CREATE INDEX files_by_created ON files(created);"
        "CREATE TABLE file_recipients ("
        " id BLOB NOT NULL,"
        " recipient TEXT NOT NULL,"
        " done INTEGER NOT NULL DEFAULT 0,"
        " PRIMARY KEY (id, recipient)"
        ") WITHOUT ROWID;",
};

enum sq_id {
	SQ_USER_INSERT,
	SQ_USER_GET,
	SQ_USER_LIVE,
	SQ_USER_SEEN,
	SQ_USER_ADMIN,
	SQ_USER_MARK_DELETED,
	SQ_USER_LIST_SEEN,
	SQ_SPK_DROP_PREVIOUS,
	SQ_SPK_DEMOTE,
	SQ_SPK_PUT,
	SQ_SPK_GET,
	SQ_OTK_INSERT,
	SQ_OTK_COUNT,
	SQ_OTK_TAKE,
	SQ_ACKED_FIND,
	SQ_ACKED_INSERT,
	SQ_QUEUE_INSERT,
	SQ_QUEUE_FIND,
	SQ_QUEUE_FETCH,
	SQ_QUEUE_COUNT,
	SQ_QUEUE_DELETE,
	SQ_QUEUE_KEYS,
	SQ_ACKED_KEYS,
	SQ_BLOCK_ADD,
	SQ_BLOCK_REMOVE,
	SQ_BLOCK_CHECK,
	SQ_BLOCK_LIST,
	SQ_BLOCK_LIST_REVERSE,
	SQ_AUTH_GET,
	SQ_AUTH_PUT,
	SQ_AUTH_RESET,
	SQ_INVITE_INSERT,
	SQ_INVITE_USE,
	SQ_DEL_SPK,
	SQ_DEL_OTK,
	SQ_DEL_QUEUE,
	SQ_DEL_ACKED,
	SQ_DEL_BLOCKS,
	SQ_DEL_AUTH,
	SQ_PRUNE_ACKED,
	SQ_PRUNE_AUTH,
	SQ_PRUNE_INVITES,
	SQ__COUNT
};

static const char *const sq_sql[SQ__COUNT] = {
        [SQ_USER_INSERT] = "INSERT INTO users (name, identity_type, identity_key, created, admin)"
                           " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
        [SQ_USER_GET] = "SELECT name, identity_type, identity_key, created, last_seen, deleted,"
                        " admin FROM users WHERE name = ?1",
        [SQ_USER_LIVE] = "SELECT 1 FROM users WHERE name = ?1 AND deleted = 0",
        [SQ_USER_SEEN] = "UPDATE users SET last_seen = ?2 WHERE name = ?1 AND deleted = 0",
        [SQ_USER_ADMIN] = "UPDATE users SET admin = ?2 WHERE name = ?1 AND deleted = 0",
        [SQ_USER_MARK_DELETED] = "UPDATE users SET deleted = 1, admin = 0 WHERE name = ?1",
        [SQ_USER_LIST_SEEN] = "SELECT name, last_seen FROM users WHERE deleted = 0 AND"
                              " last_seen > 0 AND last_seen >= ?1"
                              " ORDER BY last_seen DESC, name LIMIT ?2",
        [SQ_SPK_DROP_PREVIOUS] = "DELETE FROM signed_prekeys WHERE name = ?1 AND current = 0 AND"
                                 " EXISTS (SELECT 1 FROM signed_prekeys WHERE name = ?1 AND"
                                 " current = 1 AND id <> ?2)",
        [SQ_SPK_DEMOTE] = "UPDATE signed_prekeys SET current = 0"
                          " WHERE name = ?1 AND current = 1 AND id <> ?2",
        [SQ_SPK_PUT] = "INSERT OR REPLACE INTO signed_prekeys"
                       " (name, id, public_key, signature, created, uploaded, current)"
                       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1)",
        [SQ_SPK_GET] = "SELECT id, public_key, signature, created FROM signed_prekeys"
                       " WHERE name = ?1 AND current = 1",
        [SQ_OTK_INSERT] = "INSERT OR IGNORE INTO one_time_prekeys (name, id, public_key)"
                          " VALUES (?1, ?2, ?3)",
        [SQ_OTK_COUNT] = "SELECT count(*) FROM one_time_prekeys WHERE name = ?1",
        [SQ_OTK_TAKE] = "DELETE FROM one_time_prekeys WHERE rowid = (SELECT rowid FROM"
                        " one_time_prekeys WHERE name = ?1 ORDER BY rowid LIMIT 1)"
                        " RETURNING id, public_key",
        [SQ_ACKED_FIND] = "SELECT 1 FROM acked WHERE recipient = ?1 AND sender = ?2 AND"
                          " msg_id = ?3",
        [SQ_ACKED_INSERT] = "INSERT OR IGNORE INTO acked (recipient, sender, msg_id, acked_at)"
                            " VALUES (?1, ?2, ?3, ?4)",
        [SQ_QUEUE_INSERT] =
                "INSERT INTO queue (recipient, kind, peer, msg_id, timestamp_ms, sealed)"
                " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING RETURNING seq",
        [SQ_QUEUE_FIND] = "SELECT seq FROM queue WHERE recipient = ?1 AND msg_id = ?4 AND"
                          " peer = ?3 AND kind = ?2",
        [SQ_QUEUE_FETCH] = "SELECT seq, kind, peer, msg_id, timestamp_ms, sealed FROM queue"
                           " WHERE recipient = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        [SQ_QUEUE_COUNT] = "SELECT count(*) FROM queue WHERE recipient = ?1",
        /*
         * "+seq": without it the planner walks queue_by_recipient over every
         * row up to seq, reading each from the table to test msg_id.
         */
        [SQ_QUEUE_DELETE] = "DELETE FROM queue WHERE recipient = ?1 AND msg_id = ?2"
                            " AND +seq <= ?3 RETURNING kind, peer",
        [SQ_QUEUE_KEYS] = "SELECT recipient, peer, msg_id FROM queue WHERE kind <> 2",
        [SQ_ACKED_KEYS] = "SELECT recipient, sender, msg_id FROM acked",
        [SQ_BLOCK_ADD] = "INSERT OR IGNORE INTO blocks (blocker, blocked, created)"
                         " VALUES (?1, ?2, ?3)",
        [SQ_BLOCK_REMOVE] = "DELETE FROM blocks WHERE blocker = ?1 AND blocked = ?2",
        [SQ_BLOCK_CHECK] = "SELECT 1 FROM blocks WHERE blocker = ?1 AND blocked = ?2",
        [SQ_BLOCK_LIST] = "SELECT blocked, created FROM blocks WHERE blocker = ?1"
                          " ORDER BY blocked LIMIT ?2",
        [SQ_BLOCK_LIST_REVERSE] = "SELECT blocker, created FROM blocks WHERE blocked = ?1"
                                  " ORDER BY blocker LIMIT ?2",
        [SQ_AUTH_GET] = "SELECT failures, locked_until FROM auth_failures WHERE name = ?1",
        [SQ_AUTH_PUT] = "INSERT INTO auth_failures (name, failures, locked_until, last_failure)"
                        " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO UPDATE SET"
                        " failures = excluded.failures, locked_until = excluded.locked_until,"
                        " last_failure = excluded.last_failure",
        [SQ_AUTH_RESET] = "DELETE FROM auth_failures WHERE name = ?1",
        [SQ_INVITE_INSERT] = "INSERT INTO invites (token_hash, created_by, created, expires)"
                             " VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
        [SQ_INVITE_USE] = "UPDATE invites SET used_by = ?2, used_at = ?3 WHERE token_hash = ?1"
                          " AND used_by IS NULL AND expires > ?3",
        [SQ_DEL_SPK] = "DELETE FROM signed_prekeys WHERE name = ?1",
        [SQ_DEL_OTK] = "DELETE FROM one_time_prekeys WHERE name = ?1",
        [SQ_DEL_QUEUE] = "DELETE FROM queue WHERE recipient = ?1",
        [SQ_DEL_ACKED] = "DELETE FROM acked WHERE recipient = ?1",
        [SQ_DEL_BLOCKS] = "DELETE FROM blocks WHERE blocker = ?1 OR blocked = ?1",
        [SQ_DEL_AUTH] = "DELETE FROM auth_failures WHERE name = ?1",
        [SQ_PRUNE_ACKED] = "DELETE FROM acked WHERE acked_at < ?1",
        [SQ_PRUNE_AUTH] = "DELETE FROM auth_failures WHERE locked_until <= ?1 AND"
                          " last_failure < ?2",
        [SQ_PRUNE_INVITES] = "DELETE FROM invites WHERE expires < ?1 OR"
                             " (used_by IS NOT NULL AND used_at < ?1)",
};

/* The group statements, in a list of their own (see the groups block below). */
enum sqg_id {
	SQG_GROUP_INSERT,
	SQG_GROUP_GET,
	SQG_GROUP_SERIAL,
	SQG_MEMBER_ADD,
	SQG_MEMBER_DEL,
	SQG_MEMBER_CHECK,
	SQG_MEMBER_LIST,
	SQG_MEMBER_COUNT_FOR,
	SQG_CHANGE_INSERT,
	SQG_CHANGE_LIST,
	SQG_DEL_GROUP,
	SQG_DEL_MEMBERS,
	SQG_DEL_CHANGES,
	SQG__COUNT
};

/* Files (issue 6): statements of their own, so that the file block stays in one place. */
enum sqf_id {
	SQF_INSERT,
	SQF_RCPT_INSERT,
	SQF_GET,
	SQF_ROLE,
	SQF_COMPLETE,
	SQF_DONE,
	SQF_PENDING,
	SQF_DELETE,
	SQF_DELETE_RCPTS,
	SQF_USAGE,
	SQF_EXPIRED,
	SQF__COUNT
};

static const char *const sqf_sql[SQF__COUNT] = {
        [SQF_INSERT] = "INSERT INTO files (id, uploader, size, created) VALUES (?1, ?2, ?3, ?4)"
                       " ON CONFLICT DO NOTHING",
        [SQF_RCPT_INSERT] = "INSERT OR IGNORE INTO file_recipients (id, recipient) VALUES (?1, ?2)",
        [SQF_GET] = "SELECT uploader, size, complete, created FROM files WHERE id = ?1",
        [SQF_ROLE] = "SELECT done FROM file_recipients WHERE id = ?1 AND recipient = ?2",
        [SQF_COMPLETE] = "UPDATE files SET complete = 1 WHERE id = ?1",
        [SQF_DONE] = "UPDATE file_recipients SET done = 1 WHERE id = ?1 AND recipient = ?2",
        [SQF_PENDING] = "SELECT count(*) FROM file_recipients WHERE id = ?1 AND done = 0",
        [SQF_DELETE] = "DELETE FROM files WHERE id = ?1",
        [SQF_DELETE_RCPTS] = "DELETE FROM file_recipients WHERE id = ?1",
        [SQF_USAGE] = "SELECT coalesce(sum(size), 0) FROM files WHERE uploader = ?1",
        [SQF_EXPIRED] = "SELECT id, uploader, size, complete, created FROM files"
                        " WHERE created < ?1 ORDER BY created LIMIT ?2",
};

struct store_sqlite {
	struct store base; /* first: a struct store * is a struct store_sqlite * */
	struct sqlu sq;    /* writes its errors into base.error */
	sqlite3_stmt *stmt[SQ__COUNT];
	sqlite3_stmt *fstmt[SQF__COUNT];
	sqlite3_stmt *gstmt[SQG__COUNT];
};

static struct store_sqlite *
sq(struct store *st)
{
	return (struct store_sqlite *)st;
}

/* The cached statement id, reset and unbound, ready for binding. */
static sqlite3_stmt *
sq_stmt(struct store_sqlite *s, enum sq_id id)
{
	return sqlu_ready(s->stmt[id]);
}

/* st with an id blob of len bytes bound as ?1 (groups and files are named by one). */
static sqlite3_stmt *
sq_with_id(sqlite3_stmt *st, const uint8_t *id, size_t len)
{
	sqlu_blob(st, 1, id, len);
	return st;
}

/* Copy a blob column of exactly len bytes; SOTTO_ERR_FORMAT otherwise. */
static int
sq_col_fixed(struct store_sqlite *s, sqlite3_stmt *st, int col, void *out, size_t len)
{
	const void *p = sqlite3_column_blob(st, col);

	if ((size_t)sqlite3_column_bytes(st, col) != len || (p == NULL && len > 0)) {
		store_set_error(
		        &s->base, "unexpected data in column %d of %s", col, sqlite3_sql(st));
		return SOTTO_ERR_FORMAT;
	}
	if (len > 0)
		memcpy(out, p, len);
	return 0;
}

/* Copy a blob column of at most cap bytes into out, *len its length. */
static int
sq_col_var(struct store_sqlite *s, sqlite3_stmt *st, int col, void *out, size_t cap, size_t *len)
{
	size_t n = (size_t)sqlite3_column_bytes(st, col);
	const void *p = sqlite3_column_blob(st, col);

	*len = 0;
	if (n > cap || (p == NULL && n > 0)) {
		store_set_error(&s->base, "oversized column %d of %s", col, sqlite3_sql(st));
		return SOTTO_ERR_FORMAT;
	}
	if (n > 0)
		memcpy(out, p, n);
	*len = n;
	return 0;
}

/* A text column that must be a well-formed username (our own data, checked anyway). */
static int
sq_col_name(struct store_sqlite *s, sqlite3_stmt *st, int col, char out[STORE_NAME_MAX + 1])
{
	const char *p = (const char *)sqlite3_column_text(st, col);

	if (p == NULL || proto_username_normalize(out, p) != 0) {
		store_set_error(&s->base, "bad username in %s", sqlite3_sql(st));
		return SOTTO_ERR_FORMAT;
	}
	return 0;
}

/* Start an operation: atomic alone, joining the batch when one is open. */
static int
sq_op_begin(struct store_sqlite *s)
{
	return sqlu_op_begin(&s->sq, s->base.in_batch);
}

/* Finish an operation: keep its changes if r is 0, else undo exactly them. */
static int
sq_op_end(struct store_sqlite *s, int r)
{
	return sqlu_op_end(&s->sq, r);
}

/* A read-only operation needs no savepoint but must not run on a lost batch. */
static int
sq_read_ok(struct store_sqlite *s)
{
	return sqlu_tx_ok(&s->sq, s->base.in_batch);
}

/* 0 if name is a user that is not deleted, else SOTTO_ERR_NOTFOUND (or an error). */
static int
sq_user_live(struct store_sqlite *s, const char *name)
{
	sqlite3_stmt *st = sq_stmt(s, SQ_USER_LIVE);
	int r, found;

	sqlu_text(st, 1, name);
	if ((r = sqlu_found(&s->sq, st, &found)) == 0 && !found) {
		store_set_error(&s->base, "no such user");
		r = SOTTO_ERR_NOTFOUND;
	}
	return r;
}

static int sq_write_one(struct store_sqlite *s, sqlite3_stmt *st, int code, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/* Run a prepared write that must change a row: code, with the message, if it changes none. */
static int
sq_write_one(struct store_sqlite *s, sqlite3_stmt *st, int code, const char *fmt, ...)
{
	va_list ap;
	int r;

	if ((r = sqlu_write(&s->sq, st)) != 0)
		goto out;
	va_start(ap, fmt);
	store_vset_error(&s->base, fmt, ap);
	va_end(ap);
	r = code;
out:
	return r < 0 ? r : 0;
}

/* Step a single-row query: 0 on its row, SOTTO_ERR_NOTFOUND with missing if none, or an error. */
static int
sq_row(struct store_sqlite *s, sqlite3_stmt *st, const char *missing)
{
	int r;

	if ((r = sqlu_step(&s->sq, st)) == 0) {
		store_set_error(&s->base, "%s", missing);
		r = SOTTO_ERR_NOTFOUND;
	}
	return r < 0 ? r : 0;
}

/* Count the rows a prepared count query finds for name. */
static int
sq_count_name(struct store_sqlite *s, sqlite3_stmt *st, const char *name, uint32_t *count)
{
	sqlu_text(st, 1, name);
	return sqlu_count(&s->sq, st, count);
}

static void
sq_close(struct store *st)
{
	struct store_sqlite *s = sq(st);
	size_t i;

	for (i = 0; i < SQ__COUNT; i++)
		sqlite3_finalize(s->stmt[i]);
	for (i = 0; i < SQG__COUNT; i++)
		sqlite3_finalize(s->gstmt[i]);
	for (i = 0; i < SQF__COUNT; i++)
		sqlite3_finalize(s->fstmt[i]);
	sqlu_close(&s->sq);
	free(s);
}

static int
sq_begin(struct store *st)
{
	return sqlu_begin(&sq(st)->sq);
}

static int
sq_commit(struct store *st)
{
	return sqlu_commit(&sq(st)->sq);
}

static void
sq_rollback(struct store *st)
{
	sqlu_rollback(&sq(st)->sq);
}

/* Make spk the user's current signed prekey, keeping the one it replaces as previous. */
static int
sq_spk_put(struct store_sqlite *s, const char *name, const struct store_spk *spk, int64_t now)
{
	sqlite3_stmt *st;
	int r;

	st = sq_stmt(s, SQ_SPK_DROP_PREVIOUS);
	sqlu_text(st, 1, name);
	sqlu_int(st, 2, spk->id);
	if ((r = sqlu_run(&s->sq, st)) != 0)
		return r;
	st = sq_stmt(s, SQ_SPK_DEMOTE);
	sqlu_text(st, 1, name);
	sqlu_int(st, 2, spk->id);
	if ((r = sqlu_run(&s->sq, st)) != 0)
		return r;
	st = sq_stmt(s, SQ_SPK_PUT);
	sqlu_text(st, 1, name);
	sqlu_int(st, 2, spk->id);
	sqlu_blob(st, 3, spk->public_key, sizeof(spk->public_key));
	sqlu_blob(st, 4, spk->signature, spk->signature_len);
	sqlu_int(st, 5, spk->created);
	sqlu_int(st, 6, now);
	return sqlu_run(&s->sq, st);
}

static int
sq_otk_count(struct store_sqlite *s, const char *name, uint32_t *count)
{
	return sq_count_name(s, sq_stmt(s, SQ_OTK_COUNT), name, count);
}

/* Insert one-time prekeys, then refuse the lot if the user now holds too many. */
static int
sq_otk_add(struct store_sqlite *s, const char *name, const struct store_otk *otks, size_t n,
        uint32_t *remaining)
{
	sqlite3_stmt *st;
	size_t i;
	int r;

	for (i = 0; i < n; i++) {
		st = sq_stmt(s, SQ_OTK_INSERT);
		sqlu_text(st, 1, name);
		sqlu_int(st, 2, otks[i].id);
		sqlu_blob(st, 3, otks[i].public_key, sizeof(otks[i].public_key));
		if ((r = sqlu_run(&s->sq, st)) != 0)
			return r;
	}
	if ((r = sq_otk_count(s, name, remaining)) != 0)
		return r;
	if (*remaining > STORE_OTK_MAX) {
		store_set_error(&s->base, "more than %d one-time prekeys", STORE_OTK_MAX);
		return SOTTO_ERR_RANGE;
	}
	return 0;
}

static int
sq_invite_use_in(struct store_sqlite *s, const uint8_t *hash, const char *used_by, int64_t now)
{
	sqlite3_stmt *st = sq_stmt(s, SQ_INVITE_USE);

	sqlu_blob(st, 1, hash, STORE_TOKEN_HASH_BYTES);
	sqlu_text(st, 2, used_by);
	sqlu_int(st, 3, now);
	return sq_write_one(s, st, SOTTO_ERR_PERM, "invite unknown, used or expired");
}

static int
sq_user_register(struct store *stp, const struct store_registration *reg,
        const uint8_t *invite_hash, int64_t now)
{
	struct store_sqlite *s = sq(stp);
	sqlite3_stmt *st;
	uint32_t remaining;
	int r;

	if ((r = sq_op_begin(s)) != 0)
		return r;
	st = sq_stmt(s, SQ_USER_INSERT);
	sqlu_text(st, 1, reg->name);
	sqlu_int(st, 2, reg->identity_type);
	sqlu_blob(st, 3, reg->identity_key, reg->identity_key_len);
	sqlu_int(st, 4, now);
	sqlu_int(st, 5, reg->admin);
	if ((r = sq_write_one(s, st, SOTTO_ERR_EXISTS, "user exists")) != 0)
		goto out;
	if (invite_hash != NULL && (r = sq_invite_use_in(s, invite_hash, reg->name, now)) != 0)
		goto out;
	if ((r = sq_spk_put(s, reg->name, reg->spk, now)) != 0)
		goto out;
	r = sq_otk_add(s, reg->name, reg->otks, reg->n_otks, &remaining);
out:
	return sq_op_end(s, r);
}

static int
sq_user_get(struct store *stp, const char *name, struct store_user *out)
{
	struct store_sqlite *s = sq(stp);
	sqlite3_stmt *st;
	int r;

	if ((r = sq_read_ok(s)) != 0)
		return r;
	st = sq_stmt(s, SQ_USER_GET);
	sqlu_text(st, 1, name);
	if ((r = sq_row(s, st, "no such user")) != 0 || (r = sq_col_name(s, st, 0, out->name)) != 0)
		goto out;
	out->identity_type = (uint32_t)sqlite3_column_int64(st, 1);
	if ((r = sq_col_var(s, st, 2, out->identity_key, sizeof(out->identity_key),
	             &out->identity_key_len)) != 0)
		goto out;
	out->created = sqlite3_column_int64(st, 3);
	out->last_seen = sqlite3_column_int64(st, 4);
	out->deleted = sqlite3_column_int(st, 5) != 0;
	out->admin = sqlite3_column_int(st, 6) != 0;
	r = 0;
out:
	sqlu_done(st);
	if (r != 0)
		memset(out, 0, sizeof(*out));
	return r;
}

/* An UPDATE of one live user by name with one integer; SOTTO_ERR_NOTFOUND if none. */
static int
sq_user_update(struct store_sqlite *s, enum sq_id id, const char *name, int64_t v)
{
	sqlite3_stmt *st;
	int r;

	if ((r = sq_read_ok(s)) != 0)
		return r;
	st = sq_stmt(s, id);
	sqlu_text(st, 1, name);
	sqlu_int(st, 2, v);
	return sq_write_one(s, st, SOTTO_ERR_NOTFOUND, "no such user");
}

static int
sq_user_set_last_seen(struct store *st, const char *name, int64_t now)
{
	return sq_user_update(sq(st), SQ_USER_SEEN, name, now);
}

static int
sq_user_set_admin(struct store *st, const char *name, int admin)
{
	return sq_user_update(sq(st), SQ_USER_ADMIN, name, admin);
}

static int
sq_user_delete(struct store *stp, const char *name)
{
	static const enum sq_id purge[] = {
	        SQ_DEL_SPK, SQ_DEL_OTK, SQ_DEL_QUEUE, SQ_DEL_ACKED, SQ_DEL_BLOCKS, SQ_DEL_AUTH};
	struct store_sqlite *s = sq(stp);
	sqlite3_stmt *st;
	size_t i;
	int r;

	if ((r = sq_op_begin(s)) != 0)
		return r;
	st = sq_stmt(s, SQ_USER_MARK_DELETED);
	sqlu_text(st, 1, name);
	if ((r = sq_write_one(s, st, SOTTO_ERR_NOTFOUND, "no such user")) != 0)
		goto out;
	for (i = 0; i < sizeof(purge) / sizeof(purge[0]); i++) {
		st = sq_stmt(s, purge[i]);
		sqlu_text(st, 1, name);
		if ((r = sqlu_run(&s->sq, st)) != 0)
			goto out;
	}
out:
	return sq_op_end(s, r);
}

/* Feed (name, integer) rows of a prepared listing to cb. */
static int
sq_list_names(struct store_sqlite *s, sqlite3_stmt *st, store_name_cb cb, void *arg)
{
	char name[STORE_NAME_MAX + 1];
	int r;

	while ((r = sqlu_step(&s->sq, st)) == 1) {
		if ((r = sq_col_name(s, st, 0, name)) != 0 ||
		        (r = cb(arg, name, sqlite3_column_int64(st, 1))) != 0)
			break;
	}
	sqlu_done(st);
	return sqlu_cb_end(r);
}

static int
sq_user_list_seen(struct store *stp, int64_t since, size_t limit, store_name_cb cb, void *arg)
{
	struct store_sqlite *s = sq(stp);
	sqlite3_stmt *st;
	int r;

	if ((r = sq_read_ok(s)) != 0)
		return r;
	st = sq_stmt(s, SQ_USER_LIST_SEEN);
	sqlu_int(st, 1, since);
	sqlu_int(st, 2, (int64_t)limit);
	return sq_list_names(s, st, cb, arg);
}

static int
sq_prekey_set_signed(struct store *stp, const char *name, const struct store_spk *spk, int64_t now)
{
	struct store_sqlite *s = sq(stp);
	int r;

	if ((r = sq_op_begin(s)) != 0)
		return r;
	if ((r = sq_user_live(s, name)) != 0)
		goto out;
	r = sq_spk_put(s, name, spk, now);
out:
	return sq_op_end(s, r);
}

/* Read the current signed prekey into out; SOTTO_ERR_NOTFOUND if there is none. */
static int
sq_spk_get(struct store_sqlite *s, const char *name, struct store_spk *out)
{
	sqlite3_stmt *st = sq_stmt(s, SQ_SPK_GET);
	int r;

	sqlu_text(st, 1, name);
	if ((r = sq_row(s, st, "no signed prekey")) != 0)
		goto out;
	out->id = (uint32_t)sqlite3_column_int64(st, 0);
	if ((r = sq_col_fixed(s, st, 1, out->public_key, sizeof(out->public_key))) != 0)
		goto out;
	if ((r = sq_col_var(
	             s, st, 2, out->signature, sizeof(out->signature), &out->signature_len)) != 0)
		goto out;
	out->created = sqlite3_column_int64(st, 3);
	r = 0;
out:
	sqlu_done(st);
	return r;
}

static int
sq_prekey_get_signed(struct store *stp, const char *name, struct store_spk *out)
{
	struct store_sqlite *s = sq(stp);
	int r;

	if ((r = sq_read_ok(s)) != 0)
		return r;
	if ((r = sq_spk_get(s, name, out)) != 0)
		memset(out, 0, sizeof(*out));
	return r;
}

static int
sq_prekey_add_otks(struct store *stp, const char *name, const struct store_otk *otks, size_t n,
        uint32_t *remaining)
{
	struct store_sqlite *s = sq(stp);
	uint32_t before = 0;
	int r;

	if ((r = sq_op_begin(s)) != 0)
		return r;
	if ((r = sq_user_live(s, name)) != 0)
		goto out;
	if ((r = sq_otk_count(s, name, &before)) != 0)
		goto out;
	if ((r = sq_otk_add(s, name, otks, n, remaining)) != 0)
		*remaining = before;
out:
	return sq_op_end(s, r);
}

static int
sq_prekey_count_otks(struct store *stp, const char *name, uint32_t *count)
{
	struct store_sqlite *s = sq(stp);
	int r;

	if ((r = sq_read_ok(s)) != 0)
		return r;
	return sq_otk_count(s, name, count);
}

static int
sq_prekey_take_bundle(struct store *stp, const char *name, struct store_bundle *out)
{
	struct store_sqlite *s = sq(stp);
	sqlite3_stmt *st;
	int r;

	if ((r = sq_op_begin(s)) != 0)
		return r;
	if ((r = sq_user_get(stp, name, &out->user)) != 0)
		goto out;
	if (out->user.deleted) {
		store_set_error(stp, "user deleted");
		r = SOTTO_ERR_NOTFOUND;
		goto out;
	}
	if ((r = sq_spk_get(s, name, &out->spk)) != 0) {
		if (r == SOTTO_ERR_NOTFOUND)
			r = SOTTO_ERR_AGAIN;
		goto out;
	}
	/* One statement finds and deletes the oldest key, so no two bundles share it. */
	st = sq_stmt(s, SQ_OTK_TAKE);
	sqlu_text(st, 1, name);
	if ((r = sqlu_step(&s->sq, st)) == 1) {
		out->otk.id = (uint32_t)sqlite3_column_int64(st, 0);
		r = sq_col_fixed(s, st, 1, out->otk.public_key, sizeof(out->otk.public_key));
		out->has_otk = r == 0;
	}
	sqlu_done(st);
	if (r > 0)
		r = 0;
out:
	if (r != 0)
		memset(out, 0, sizeof(*out));
	return sq_op_end(s, r);
}

/* Whether an envelope (recipient, sender, id) was acknowledged recently. */
static int
sq_acked_find(struct store_sqlite *s, const char *recipient, const char *sender,
        const uint8_t *msg_id, int *found)
{
	sqlite3_stmt *st = sq_stmt(s, SQ_ACKED_FIND);

	sqlu_text(st, 1, recipient);
	sqlu_text(st, 2, sender);
	sqlu_blob(st, 3, msg_id, STORE_MSG_ID_BYTES);
	return sqlu_found(&s->sq, st, found);
}

/* SQ_QUEUE_FIND bound to one queue item's key, ready to step. */
static sqlite3_stmt *
sq_queue_find(struct store_sqlite *s, const char *recipient, enum store_kind kind, const char *peer,
        const uint8_t *msg_id)
{
	sqlite3_stmt *st = sq_stmt(s, SQ_QUEUE_FIND);

	sqlu_text(st, 1, recipient);
	sqlu_int(st, 2, kind);
	sqlu_text(st, 3, peer);
	sqlu_blob(st, 4, msg_id, STORE_MSG_ID_BYTES);
	return st;
}

static int
sq_queue_push(struct store *stp, const char *recipient, enum store_kind kind, const char *peer,
        const uint8_t *msg_id, int64_t timestamp_ms, const uint8_t *sealed, size_t sealed_len,
        uint64_t *seq, int *duplicate)
{
	struct store_sqlite *s = sq(stp);
	sqlite3_stmt *st;
	int64_t v = 0;
	int r, found = 0;

	if ((r = sq_op_begin(s)) != 0)
		return r;
	if ((r = sq_user_live(s, recipient)) != 0)
		goto out;
	if (kind != STORE_KIND_DELIVERED) {
		if ((r = sq_acked_find(s, recipient, peer, msg_id, &found)) != 0)
			goto out;
		if (found) {
			*duplicate = 1;
			goto out;
		}
	}
	st = sq_stmt(s, SQ_QUEUE_INSERT);
	sqlu_text(st, 1, recipient);
	sqlu_int(st, 2, kind);
	sqlu_text(st, 3, peer);
	sqlu_blob(st, 4, msg_id, STORE_MSG_ID_BYTES);
	sqlu_int(st, 5, timestamp_ms);
	sqlu_blob(st, 6, sealed, sealed_len);
	if ((r = sqlu_value(&s->sq, st, &v)) == 0) {
		/* Already queued: report the existing item. */
		*duplicate = 1;
		r = sqlu_value(&s->sq, sq_queue_find(s, recipient, kind, peer, msg_id), &v);
	}
	if (r < 0)
		goto out;
	*seq = (uint64_t)v;
	r = 0;
out:
	if (r != 0) {
		*seq = 0;
		*duplicate = 0;
	}
	return sq_op_end(s, r);
}

static int
sq_queue_fetch(struct store *stp, const char *recipient, uint64_t after_seq, size_t limit,
        store_msg_cb cb, void *arg)
{
	struct store_sqlite *s = sq(stp);
	char peer[STORE_NAME_MAX + 1];
	struct store_msg m;
	sqlite3_stmt *st;
	int r, kind;

	if ((r = sq_read_ok(s)) != 0)
		return r;
	st = sq_stmt(s, SQ_QUEUE_FETCH);
	sqlu_text(st, 1, recipient);
	sqlu_int(st, 2, (int64_t)after_seq);
	sqlu_int(st, 3, (int64_t)limit);
	while ((r = sqlu_step(&s->sq, st)) == 1) {
		memset(&m, 0, sizeof(m));
		m.seq = (uint64_t)sqlite3_column_int64(st, 0);
		kind = sqlite3_column_int(st, 1);
		if (kind != STORE_KIND_ENVELOPE && kind != STORE_KIND_DELIVERED &&
		        kind != STORE_KIND_GROUP) {
			store_set_error(stp, "unknown queue item kind %d", kind);
			r = SOTTO_ERR_FORMAT;
			break;
		}
		m.kind = (enum store_kind)kind;
		if ((r = sq_col_name(s, st, 2, peer)) != 0 ||
		        (r = sq_col_fixed(s, st, 3, m.msg_id, sizeof(m.msg_id))) != 0)
			break;
		m.peer = peer;
		m.timestamp_ms = sqlite3_column_int64(st, 4);
		m.sealed = sqlite3_column_blob(st, 5);
		m.sealed_len = (size_t)sqlite3_column_bytes(st, 5);
		if (m.sealed == NULL)
			m.sealed = (const uint8_t *)"";
		if ((r = cb(arg, &m)) != 0)
			break;
	}
	sqlu_done(st);
	return sqlu_cb_end(r);
}

static int
sq_queue_count(struct store *stp, const char *recipient, uint32_t *count)
{
	struct store_sqlite *s = sq(stp);
	int r;

	if ((r = sq_read_ok(s)) == 0)
		r = sq_count_name(s, sq_stmt(s, SQ_QUEUE_COUNT), recipient, count);
	return r;
}

static int
sq_queue_has(struct store *stp, const char *recipient, const char *peer, const uint8_t *msg_id,
        int *found)
{
	struct store_sqlite *s = sq(stp);
	sqlite3_stmt *st;
	int r;

	*found = 0;
	if ((r = sq_read_ok(s)) != 0 ||
	        (r = sq_acked_find(s, recipient, peer, msg_id, found)) != 0 || *found)
		goto out;
	st = sq_queue_find(s, recipient, STORE_KIND_ENVELOPE, peer, msg_id);
	if ((r = sqlu_found(&s->sq, st, found)) != 0 || *found)
		goto out;
	st = sq_queue_find(s, recipient, STORE_KIND_GROUP, peer, msg_id);
	r = sqlu_found(&s->sq, st, found);
out:
	return r;
}

/* Append a receipt, growing the array geometrically (bounded by the rows deleted). */
static int
sq_receipt_add(
        struct store_receipt **v, size_t *n, size_t *cap, const char *sender, const uint8_t *msg_id)
{
	struct store_receipt *nv;
	size_t ncap;

	if (*n == *cap) {
		ncap = *cap == 0 ? 16 : *cap * 2;
		if (ncap > SIZE_MAX / sizeof(**v))
			return SOTTO_ERR_NOMEM;
		if ((nv = realloc(*v, ncap * sizeof(**v))) == NULL)
			return SOTTO_ERR_NOMEM;
		*v = nv;
		*cap = ncap;
	}
	memset(&(*v)[*n], 0, sizeof(**v));
	memcpy((*v)[*n].sender, sender, strlen(sender) + 1);
	memcpy((*v)[*n].msg_id, msg_id, STORE_MSG_ID_BYTES);
	(*n)++;
	return 0;
}

/* Call cb for each (recipient, sender, msg_id) row of one of the key queries. */
static int
sq_keys_run(struct store_sqlite *s, sqlite3_stmt *st, store_key_cb cb, void *arg)
{
	char rn[STORE_NAME_MAX + 1], pn[STORE_NAME_MAX + 1];
	uint8_t id[STORE_MSG_ID_BYTES];
	int r;

	while ((r = sqlu_step(&s->sq, st)) == 1) {
		if ((r = sq_col_name(s, st, 0, rn)) != 0 || (r = sq_col_name(s, st, 1, pn)) != 0 ||
		        (r = sq_col_fixed(s, st, 2, id, sizeof(id))) != 0)
			break;
		if ((r = cb(arg, rn, pn, id)) != 0)
			break;
	}
	sqlu_done(st);
	return r;
}

static int
sq_queue_keys(struct store *stp, store_key_cb cb, void *arg)
{
	struct store_sqlite *s = sq(stp);
	int r;

	if ((r = sq_read_ok(s)) != 0)
		return r;
	if ((r = sq_keys_run(s, sq_stmt(s, SQ_QUEUE_KEYS), cb, arg)) == 0)
		r = sq_keys_run(s, sq_stmt(s, SQ_ACKED_KEYS), cb, arg);
	return r < 0 ? r : 0;
}

static int
sq_queue_delete(struct store *stp, const char *recipient, const uint8_t (*ids)[STORE_MSG_ID_BYTES],
        size_t n, uint64_t max_seq, int64_t now, struct store_receipt **receipts,
        size_t *n_receipts, size_t *n_deleted)
{
	struct store_sqlite *s = sq(stp);
	struct store_receipt *v = NULL;
	char peer[STORE_NAME_MAX + 1];
	size_t nv = 0, cap = 0, i;
	sqlite3_stmt *st;
	int r;

	if ((r = sq_op_begin(s)) != 0)
		return r;
	for (i = 0; i < n; i++) {
		st = sq_stmt(s, SQ_QUEUE_DELETE);
		sqlu_text(st, 1, recipient);
		sqlu_blob(st, 2, ids[i], STORE_MSG_ID_BYTES);
		sqlu_int(st, 3, max_seq > INT64_MAX ? INT64_MAX : (int64_t)max_seq);
		while ((r = sqlu_step(&s->sq, st)) == 1) {
			(*n_deleted)++;
			if (sqlite3_column_int(st, 0) == STORE_KIND_DELIVERED)
				continue;
			if ((r = sq_col_name(s, st, 1, peer)) != 0 ||
			        (r = sq_receipt_add(&v, &nv, &cap, peer, ids[i])) != 0)
				break;
		}
		sqlu_done(st);
		if (r < 0)
			goto out;
	}
	/* Remember what was delivered, so that a late resend is not delivered twice. */
	for (i = 0; i < nv; i++) {
		st = sq_stmt(s, SQ_ACKED_INSERT);
		sqlu_text(st, 1, recipient);
		sqlu_text(st, 2, v[i].sender);
		sqlu_blob(st, 3, v[i].msg_id, STORE_MSG_ID_BYTES);
		sqlu_int(st, 4, now);
		if ((r = sqlu_run(&s->sq, st)) != 0)
			goto out;
	}
	r = 0;
	*receipts = v;
	*n_receipts = nv;
	v = NULL;
out:
	free(v);
	if (r != 0)
		*n_deleted = 0;
	return sq_op_end(s, r);
}

static int
sq_block_add(struct store *stp, const char *blocker, const char *blocked, int64_t now)
{
	struct store_sqlite *s = sq(stp);
	sqlite3_stmt *st;
	int r;

	if ((r = sq_op_begin(s)) != 0)
		return r;
	if ((r = sq_user_live(s, blocked)) != 0)
		goto out;
	st = sq_stmt(s, SQ_BLOCK_ADD);
	sqlu_text(st, 1, blocker);
	sqlu_text(st, 2, blocked);
	sqlu_int(st, 3, now);
	r = sqlu_run(&s->sq, st);
out:
	return sq_op_end(s, r);
}

static int
sq_block_remove(struct store *stp, const char *blocker, const char *blocked)
{
	struct store_sqlite *s = sq(stp);
	sqlite3_stmt *st;
	int r;

	if ((r = sq_read_ok(s)) != 0)
		return r;
	st = sq_stmt(s, SQ_BLOCK_REMOVE);
	sqlu_text(st, 1, blocker);
	sqlu_text(st, 2, blocked);
	return sqlu_run(&s->sq, st);
}

static int
sq_block_check(struct store *stp, const char *blocker, const char *blocked, int *is_blocked)
{
	struct store_sqlite *s = sq(stp);
	sqlite3_stmt *st;
	int r;

	if ((r = sq_read_ok(s)) != 0)
		return r;
	st = sq_stmt(s, SQ_BLOCK_CHECK);
	sqlu_text(st, 1, blocker);
	sqlu_text(st, 2, blocked);
	return sqlu_found(&s->sq, st, is_blocked);
}

static int
sq_block_list(
        struct store *stp, const char *name, int reverse, size_t limit, store_name_cb cb, void *arg)
{
	struct store_sqlite *s = sq(stp);
	sqlite3_stmt *st;
	int r;

	if ((r = sq_read_ok(s)) != 0)
		return r;
	st = sq_stmt(s, reverse ? SQ_BLOCK_LIST_REVERSE : SQ_BLOCK_LIST);
	sqlu_text(st, 1, name);
	sqlu_int(st, 2, (int64_t)limit);
	return sq_list_names(s, st, cb, arg);
}

/* The stored failure count and lock end for name (0, 0 if none). */
static int
sq_auth_get(struct store_sqlite *s, const char *name, uint32_t *failures, int64_t *locked_until)
{
	sqlite3_stmt *st = sq_stmt(s, SQ_AUTH_GET);
	int64_t f = 0;
	int r;

	*failures = 0;
	*locked_until = 0;
	sqlu_text(st, 1, name);
	if ((r = sqlu_step(&s->sq, st)) < 0)
		return r;
	if (r == 1) {
		f = sqlite3_column_int64(st, 0);
		*locked_until = sqlite3_column_int64(st, 1);
	}
	sqlu_done(st);
	*failures = f < 0 ? 0 : f > UINT32_MAX ? UINT32_MAX : (uint32_t)f;
	return 0;
}

static int
sq_auth_locked(struct store *stp, const char *name, int64_t now, int64_t *locked_until)
{
	struct store_sqlite *s = sq(stp);
	uint32_t failures;
	int64_t until;
	int r;

	if ((r = sq_read_ok(s)) != 0)
		return r;
	if ((r = sq_auth_get(s, name, &failures, &until)) != 0)
		return r;
	*locked_until = until > now ? until : 0;
	return 0;
}

static int
sq_auth_fail(struct store *stp, const char *name, int64_t now, uint32_t max_failures,
        uint32_t duration, uint32_t *failures, int64_t *locked_until)
{
	struct store_sqlite *s = sq(stp);
	sqlite3_stmt *st;
	int r;

	if ((r = sq_op_begin(s)) != 0)
		return r;
	if ((r = sq_user_live(s, name)) != 0)
		goto out;
	if ((r = sq_auth_get(s, name, failures, locked_until)) != 0)
		goto out;
	if (*locked_until > now)
		goto out; /* already locked: a failure now neither counts nor extends it */
	if (*locked_until != 0) {
		/* The lock has lapsed: counting starts again. */
		*failures = 0;
		*locked_until = 0;
	}
	if (*failures < UINT32_MAX)
		(*failures)++;
	if (*failures >= max_failures)
		*locked_until = now + (int64_t)duration;
	st = sq_stmt(s, SQ_AUTH_PUT);
	sqlu_text(st, 1, name);
	sqlu_int(st, 2, *failures);
	sqlu_int(st, 3, *locked_until);
	sqlu_int(st, 4, now);
	r = sqlu_run(&s->sq, st);
out:
	if (r != 0) {
		*failures = 0;
		*locked_until = 0;
	}
	return sq_op_end(s, r);
}

static int
sq_auth_reset(struct store *stp, const char *name)
{
	struct store_sqlite *s = sq(stp);
	sqlite3_stmt *st;
	int r;

	if ((r = sq_read_ok(s)) != 0)
		return r;
	st = sq_stmt(s, SQ_AUTH_RESET);
	sqlu_text(st, 1, name);
	return sqlu_run(&s->sq, st);
}

static int
sq_invite_create(struct store *stp, const uint8_t *hash, const char *created_by, int64_t now,
        int64_t expires)
{
	struct store_sqlite *s = sq(stp);
	sqlite3_stmt *st;
	int r;

	if ((r = sq_read_ok(s)) != 0)
		return r;
	st = sq_stmt(s, SQ_INVITE_INSERT);
	sqlu_blob(st, 1, hash, STORE_TOKEN_HASH_BYTES);
	sqlu_text(st, 2, created_by);
	sqlu_int(st, 3, now);
	sqlu_int(st, 4, expires);
	return sq_write_one(s, st, SOTTO_ERR_EXISTS, "invite exists");
}

static int
sq_invite_use(struct store *stp, const uint8_t *hash, const char *used_by, int64_t now)
{
	struct store_sqlite *s = sq(stp);
	int r;

	if ((r = sq_read_ok(s)) != 0)
		return r;
	return sq_invite_use_in(s, hash, used_by, now);
}

static int
sq_prune(struct store *stp, int64_t now)
{
	struct store_sqlite *s = sq(stp);
	sqlite3_stmt *st;
	int r;

	if ((r = sq_op_begin(s)) != 0)
		return r;
	st = sq_stmt(s, SQ_PRUNE_ACKED);
	sqlu_int(st, 1, now - STORE_TOMBSTONE_TTL);
	if ((r = sqlu_run(&s->sq, st)) != 0)
		goto out;
	st = sq_stmt(s, SQ_PRUNE_AUTH);
	sqlu_int(st, 1, now);
	sqlu_int(st, 2, now - SQ_STALE_FAILURES);
	if ((r = sqlu_run(&s->sq, st)) != 0)
		goto out;
	st = sq_stmt(s, SQ_PRUNE_INVITES);
	sqlu_int(st, 1, now - SQ_INVITE_KEEP);
	r = sqlu_run(&s->sq, st);
out:
	return sq_op_end(s, r);
}

/* ---- groups ----------------------------------------------------------------------- */

static const char *const sqg_sql[SQG__COUNT] = {
        [SQG_GROUP_INSERT] = "INSERT INTO groups (id, owner, serial, created)"
                             " VALUES (?1, ?2, 1, ?3) ON CONFLICT DO NOTHING",
        [SQG_GROUP_GET] = "SELECT owner, serial, created,"
                          " (SELECT count(*) FROM group_members WHERE grp = ?1)"
                          " FROM groups WHERE id = ?1",
        [SQG_GROUP_SERIAL] = "UPDATE groups SET serial = ?2 WHERE id = ?1 AND serial = ?2 - 1",
        [SQG_MEMBER_ADD] = "INSERT INTO group_members (grp, name, joined) VALUES (?1, ?2, ?3)"
                           " ON CONFLICT DO NOTHING",
        [SQG_MEMBER_DEL] = "DELETE FROM group_members WHERE grp = ?1 AND name = ?2",
        [SQG_MEMBER_CHECK] = "SELECT 1 FROM group_members WHERE grp = ?1 AND name = ?2",
        [SQG_MEMBER_LIST] = "SELECT name, joined FROM group_members WHERE grp = ?1"
                            " ORDER BY name LIMIT ?2",
        [SQG_MEMBER_COUNT_FOR] = "SELECT count(*) FROM group_members WHERE name = ?1",
        [SQG_CHANGE_INSERT] = "INSERT INTO group_changes"
                              " (grp, serial, op, signer, users, signature, timestamp_ms)"
                              " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        [SQG_CHANGE_LIST] = "SELECT serial, op, signer, users, signature, timestamp_ms"
                            " FROM group_changes WHERE grp = ?1 AND serial > ?2"
                            " ORDER BY serial LIMIT ?3",
        [SQG_DEL_GROUP] = "DELETE FROM groups WHERE id = ?1",
        [SQG_DEL_MEMBERS] = "DELETE FROM group_members WHERE grp = ?1",
        [SQG_DEL_CHANGES] = "DELETE FROM group_changes WHERE grp = ?1",
};

/* A group statement, ready for binding; all but SQG_MEMBER_COUNT_FOR take the group as ?1. */
static sqlite3_stmt *
sqg_stmt(struct store_sqlite *s, enum sqg_id id)
{
	return sqlu_ready(s->gstmt[id]);
}

/* A group statement with grp bound as ?1. */
static sqlite3_stmt *
sqg_grp(struct store_sqlite *s, enum sqg_id id, const uint8_t *grp)
{
	return sq_with_id(sqg_stmt(s, id), grp, STORE_GROUP_ID_BYTES);
}

/* Record ch: its users joined with commas. */
static int
sqg_change_insert(struct store_sqlite *s, const uint8_t *grp, const struct store_group_change *ch)
{
	size_t i, len = 1, off = 0, n;
	sqlite3_stmt *st;
	char *users;
	int r;

	for (i = 0; i < ch->n_users; i++)
		len += strlen(ch->users[i]) + 1;
	if ((users = malloc(len)) == NULL)
		return SOTTO_ERR_NOMEM;
	users[0] = '\0';
	for (i = 0; i < ch->n_users; i++) {
		n = strlen(ch->users[i]);
		if (i > 0)
			users[off++] = ',';
		memcpy(users + off, ch->users[i], n);
		off += n;
	}
	users[off] = '\0';
	st = sqg_grp(s, SQG_CHANGE_INSERT, grp);
	sqlu_int(st, 2, (int64_t)ch->serial);
	sqlu_int(st, 3, ch->op);
	sqlu_text(st, 4, ch->signer);
	sqlu_text(st, 5, users);
	sqlu_blob(st, 6, ch->signature, ch->signature_len);
	sqlu_int(st, 7, ch->timestamp_ms);
	r = sqlu_run(&s->sq, st);
	free(users);
	return r;
}

/* Add name to grp; SOTTO_ERR_NOTFOUND (naming it) if it is not a live user, EXISTS if a member. */
static int
sqg_member_add(struct store_sqlite *s, const uint8_t *grp, const char *name, int64_t now)
{
	sqlite3_stmt *st;
	int r;

	if ((r = sq_user_live(s, name)) != 0) {
		if (r == SOTTO_ERR_NOTFOUND)
			store_set_error(&s->base, "no such user: %s", name);
		return r;
	}
	st = sqg_grp(s, SQG_MEMBER_ADD, grp);
	sqlu_text(st, 2, name);
	sqlu_int(st, 3, now);
	return sq_write_one(s, st, SOTTO_ERR_EXISTS, "already a member: %s", name);
}

static int
sqg_create(struct store *stp, const uint8_t *id, const char *owner,
        const struct store_group_change *ch)
{
	struct store_sqlite *s = sq(stp);
	int64_t now = ch->timestamp_ms / 1000;
	sqlite3_stmt *st;
	size_t i;
	int r;

	if ((r = sq_op_begin(s)) != 0)
		return r;
	st = sqg_grp(s, SQG_GROUP_INSERT, id);
	sqlu_text(st, 2, owner);
	sqlu_int(st, 3, now);
	if ((r = sq_write_one(s, st, SOTTO_ERR_EXISTS, "group exists")) != 0 ||
	        (r = sqg_member_add(s, id, owner, now)) != 0)
		goto out;
	for (i = 0; i < ch->n_users; i++)
		if ((r = sqg_member_add(s, id, ch->users[i], now)) != 0)
			goto out;
	r = sqg_change_insert(s, id, ch);
out:
	return sq_op_end(s, r);
}

static int
sqg_get(struct store *stp, const uint8_t *id, struct store_group *out)
{
	struct store_sqlite *s = sq(stp);
	sqlite3_stmt *st;
	int r;

	if ((r = sq_read_ok(s)) != 0)
		return r;
	st = sqg_grp(s, SQG_GROUP_GET, id);
	if ((r = sq_row(s, st, "no such group")) != 0)
		goto out;
	memcpy(out->id, id, STORE_GROUP_ID_BYTES);
	if ((r = sq_col_name(s, st, 0, out->owner)) != 0)
		goto out;
	out->serial = (uint64_t)sqlite3_column_int64(st, 1);
	out->created = sqlite3_column_int64(st, 2);
	out->n_members = sqlu_u32(sqlite3_column_int64(st, 3));
out:
	sqlu_done(st);
	if (r != 0)
		memset(out, 0, sizeof(*out));
	return r;
}

static int
sqg_apply(struct store *stp, const uint8_t *id, const struct store_group_change *ch)
{
	struct store_sqlite *s = sq(stp);
	int64_t now = ch->timestamp_ms / 1000;
	sqlite3_stmt *st;
	size_t i;
	int r;

	if ((r = sq_op_begin(s)) != 0)
		return r;
	st = sqg_grp(s, SQG_GROUP_SERIAL, id);
	sqlu_int(st, 2, (int64_t)ch->serial);
	if ((r = sq_write_one(s, st, SOTTO_ERR_AGAIN,
	             "no such group, or serial %llu is not its next",
	             (unsigned long long)ch->serial)) != 0)
		goto out;
	for (i = 0; i < ch->n_users; i++) {
		if (ch->op == STORE_GROUP_ADD) {
			if ((r = sqg_member_add(s, id, ch->users[i], now)) != 0)
				goto out;
			continue;
		}
		st = sqg_grp(s, SQG_MEMBER_DEL, id);
		sqlu_text(st, 2, ch->users[i]);
		if ((r = sq_write_one(
		             s, st, SOTTO_ERR_NOTFOUND, "not a member: %s", ch->users[i])) != 0)
			goto out;
	}
	r = sqg_change_insert(s, id, ch);
out:
	return sq_op_end(s, r);
}

static int
sqg_delete(struct store *stp, const uint8_t *id)
{
	struct store_sqlite *s = sq(stp);
	int r;

	if ((r = sq_op_begin(s)) != 0)
		return r;
	if ((r = sqlu_run(&s->sq, sqg_grp(s, SQG_DEL_MEMBERS, id))) == 0 &&
	        (r = sqlu_run(&s->sq, sqg_grp(s, SQG_DEL_CHANGES, id))) == 0)
		r = sqlu_run(&s->sq, sqg_grp(s, SQG_DEL_GROUP, id));
	return sq_op_end(s, r);
}

static int
sqg_is_member(struct store *stp, const uint8_t *id, const char *name, int *member)
{
	struct store_sqlite *s = sq(stp);
	sqlite3_stmt *st;
	int r;

	if ((r = sq_read_ok(s)) != 0)
		return r;
	st = sqg_grp(s, SQG_MEMBER_CHECK, id);
	sqlu_text(st, 2, name);
	return sqlu_found(&s->sq, st, member);
}

static int
sqg_members(struct store *stp, const uint8_t *id, size_t limit, store_name_cb cb, void *arg)
{
	struct store_sqlite *s = sq(stp);
	sqlite3_stmt *st;
	int r;

	if ((r = sq_read_ok(s)) != 0)
		return r;
	st = sqg_grp(s, SQG_MEMBER_LIST, id);
	sqlu_int(st, 2, (int64_t)limit);
	return sq_list_names(s, st, cb, arg);
}

/* Split a stored users column into names (pointing into text, which it edits). */
static int
sqg_split_users(struct store_sqlite *s, char *text, const char ***users, size_t *n)
{
	size_t cap = 1, i = 0;
	char *p, *comma;
	const char **v;

	*users = NULL;
	*n = 0;
	if (*text == '\0')
		return 0;
	for (p = text; *p != '\0'; p++)
		if (*p == ',')
			cap++;
	if (cap > STORE_GROUP_USERS_MAX || (v = calloc(cap, sizeof(*v))) == NULL) {
		store_set_error(&s->base, "a stored group change has too many users");
		return cap > STORE_GROUP_USERS_MAX ? SOTTO_ERR_FORMAT : SOTTO_ERR_NOMEM;
	}
	for (p = text; p != NULL; p = comma) {
		if ((comma = strchr(p, ',')) != NULL)
			*comma++ = '\0';
		v[i++] = p;
	}
	*users = v;
	*n = i;
	return 0;
}

static int
sqg_changes(struct store *stp, const uint8_t *id, uint64_t after, size_t limit,
        store_group_change_cb cb, void *arg)
{
	struct store_sqlite *s = sq(stp);
	char signer[STORE_NAME_MAX + 1], *text = NULL;
	struct store_group_change ch;
	const char **users = NULL;
	sqlite3_stmt *st;
	const char *t;
	int r;

	if ((r = sq_read_ok(s)) != 0)
		return r;
	st = sqg_grp(s, SQG_CHANGE_LIST, id);
	sqlu_int(st, 2, (int64_t)after);
	sqlu_int(st, 3, (int64_t)limit);
	while ((r = sqlu_step(&s->sq, st)) == 1) {
		memset(&ch, 0, sizeof(ch));
		ch.serial = (uint64_t)sqlite3_column_int64(st, 0);
		ch.op = (enum store_group_op)sqlite3_column_int(st, 1);
		if ((r = sq_col_name(s, st, 2, signer)) != 0)
			break;
		ch.signer = signer;
		t = (const char *)sqlite3_column_text(st, 3);
		if ((text = strdup(t != NULL ? t : "")) == NULL) {
			r = SOTTO_ERR_NOMEM;
			break;
		}
		if ((r = sqg_split_users(s, text, &users, &ch.n_users)) != 0)
			break;
		ch.users = users;
		ch.signature = sqlite3_column_blob(st, 4);
		ch.signature_len = (size_t)sqlite3_column_bytes(st, 4);
		ch.timestamp_ms = sqlite3_column_int64(st, 5);
		r = cb(arg, &ch);
		free(users);
		free(text);
		users = NULL;
		text = NULL;
		if (r != 0)
			break;
	}
	free(users);
	free(text);
	sqlu_done(st);
	return sqlu_cb_end(r);
}

static int
sqg_count_for(struct store *stp, const char *name, uint32_t *count)
{
	struct store_sqlite *s = sq(stp);
	int r;

	if ((r = sq_read_ok(s)) == 0)
		r = sq_count_name(s, sqg_stmt(s, SQG_MEMBER_COUNT_FOR), name, count);
	return r;
}
/* ---- end groups ------------------------------------------------------------------- */

/* --- files (issue 6) --- */

static sqlite3_stmt *
sqf_stmt(struct store_sqlite *s, enum sqf_id id)
{
	return sqlu_ready(s->fstmt[id]);
}

/* A file statement with the file id bound as ?1 (all but SQF_USAGE and SQF_EXPIRED). */
static sqlite3_stmt *
sqf_file(struct store_sqlite *s, enum sqf_id id, const uint8_t *file)
{
	return sq_with_id(sqf_stmt(s, id), file, STORE_FILE_ID_BYTES);
}

/* Fill f from a row of (uploader, size, complete, created) starting at column col. */
static int
sqf_row(struct store_sqlite *s, sqlite3_stmt *st, int col, struct store_file *f)
{
	int64_t size = sqlite3_column_int64(st, col + 1);
	int r;

	if ((r = sq_col_name(s, st, col, f->uploader)) != 0)
		return r;
	if (size < 0) {
		store_set_error(&s->base, "negative file size in %s", sqlite3_sql(st));
		return SOTTO_ERR_FORMAT;
	}
	f->size = (uint64_t)size;
	f->complete = sqlite3_column_int(st, col + 2) != 0;
	f->created = sqlite3_column_int64(st, col + 3);
	return 0;
}

static int
sqf_create(struct store *stp, const struct store_file *f, char (*recipients)[STORE_NAME_MAX + 1],
        size_t n)
{
	struct store_sqlite *s = sq(stp);
	sqlite3_stmt *st;
	size_t i;
	int r;

	if ((r = sq_op_begin(s)) != 0)
		return r;
	if ((r = sq_user_live(s, f->uploader)) != 0)
		goto out;
	st = sqf_file(s, SQF_INSERT, f->id);
	sqlu_text(st, 2, f->uploader);
	sqlu_int(st, 3, (int64_t)f->size);
	sqlu_int(st, 4, f->created);
	if ((r = sq_write_one(s, st, SOTTO_ERR_EXISTS, "file id in use")) != 0)
		goto out;
	for (i = 0; i < n; i++) {
		if ((r = sq_user_live(s, recipients[i])) != 0) {
			store_set_error(stp, "no such user: %s", recipients[i]);
			goto out;
		}
		st = sqf_file(s, SQF_RCPT_INSERT, f->id);
		sqlu_text(st, 2, recipients[i]);
		if ((r = sqlu_run(&s->sq, st)) != 0)
			goto out;
	}
out:
	return sq_op_end(s, r);
}

static int
sqf_get(struct store *stp, const uint8_t *id, struct store_file *out)
{
	struct store_sqlite *s = sq(stp);
	sqlite3_stmt *st;
	int r;

	if ((r = sq_read_ok(s)) != 0)
		return r;
	st = sqf_file(s, SQF_GET, id);
	if ((r = sq_row(s, st, "no such file")) == 0) {
		memcpy(out->id, id, STORE_FILE_ID_BYTES);
		r = sqf_row(s, st, 0, out);
	}
	sqlu_done(st);
	if (r != 0)
		memset(out, 0, sizeof(*out));
	return r;
}

static int
sqf_role(struct store *stp, const uint8_t *id, const char *name, enum store_file_role *role)
{
	struct store_sqlite *s = sq(stp);
	sqlite3_stmt *st;
	int r;

	if ((r = sq_read_ok(s)) != 0)
		return r;
	st = sqf_file(s, SQF_ROLE, id);
	sqlu_text(st, 2, name);
	if ((r = sqlu_step(&s->sq, st)) == 1) {
		*role = sqlite3_column_int(st, 0) != 0 ? STORE_FILE_FINISHED : STORE_FILE_PENDING;
		r = 0;
	}
	sqlu_done(st);
	return r;
}

static int
sqf_set_complete(struct store *stp, const uint8_t *id)
{
	struct store_sqlite *s = sq(stp);
	int r;

	if ((r = sq_read_ok(s)) != 0)
		return r;
	return sq_write_one(s, sqf_file(s, SQF_COMPLETE, id), SOTTO_ERR_NOTFOUND, "no such file");
}

static int
sqf_done(struct store *stp, const uint8_t *id, const char *name, uint32_t *remaining)
{
	struct store_sqlite *s = sq(stp);
	sqlite3_stmt *st;
	int r;

	if ((r = sq_op_begin(s)) != 0)
		return r;
	st = sqf_file(s, SQF_DONE, id);
	sqlu_text(st, 2, name);
	if ((r = sq_write_one(s, st, SOTTO_ERR_NOTFOUND, "not a recipient of this file")) != 0)
		goto out;
	r = sqlu_count(&s->sq, sqf_file(s, SQF_PENDING, id), remaining);
out:
	return sq_op_end(s, r);
}

static int
sqf_delete(struct store *stp, const uint8_t *id)
{
	struct store_sqlite *s = sq(stp);
	int r;

	if ((r = sq_op_begin(s)) != 0)
		return r;
	if ((r = sqlu_run(&s->sq, sqf_file(s, SQF_DELETE_RCPTS, id))) == 0)
		r = sqlu_run(&s->sq, sqf_file(s, SQF_DELETE, id));
	return sq_op_end(s, r);
}

static int
sqf_usage(struct store *stp, const char *uploader, uint64_t *bytes)
{
	struct store_sqlite *s = sq(stp);
	sqlite3_stmt *st;
	int64_t n = 0;
	int r;

	if ((r = sq_read_ok(s)) != 0)
		return r;
	st = sqf_stmt(s, SQF_USAGE);
	sqlu_text(st, 1, uploader);
	if ((r = sqlu_value(&s->sq, st, &n)) < 0)
		return r;
	*bytes = n < 0 ? 0 : (uint64_t)n;
	return 0;
}

static int
sqf_list_expired(struct store *stp, int64_t before, size_t limit, store_file_cb cb, void *arg)
{
	struct store_sqlite *s = sq(stp);
	struct store_file f;
	sqlite3_stmt *st;
	int r;

	if ((r = sq_read_ok(s)) != 0)
		return r;
	st = sqf_stmt(s, SQF_EXPIRED);
	sqlu_int(st, 1, before);
	sqlu_int(st, 2, (int64_t)limit);
	while ((r = sqlu_step(&s->sq, st)) == 1) {
		memset(&f, 0, sizeof(f));
		if ((r = sq_col_fixed(s, st, 0, f.id, sizeof(f.id))) != 0 ||
		        (r = sqf_row(s, st, 1, &f)) != 0 || (r = cb(arg, &f)) != 0)
			break;
	}
	sqlu_done(st);
	return sqlu_cb_end(r);
}

static const struct store_ops sq_ops = {
        .name = "sqlite",
        .close = sq_close,
        .begin = sq_begin,
        .commit = sq_commit,
        .rollback = sq_rollback,
        .user_register = sq_user_register,
        .user_get = sq_user_get,
        .user_set_last_seen = sq_user_set_last_seen,
        .user_set_admin = sq_user_set_admin,
        .user_delete = sq_user_delete,
        .user_list_seen = sq_user_list_seen,
        .prekey_set_signed = sq_prekey_set_signed,
        .prekey_get_signed = sq_prekey_get_signed,
        .prekey_add_otks = sq_prekey_add_otks,
        .prekey_count_otks = sq_prekey_count_otks,
        .prekey_take_bundle = sq_prekey_take_bundle,
        .queue_push = sq_queue_push,
        .queue_fetch = sq_queue_fetch,
        .queue_count = sq_queue_count,
        .queue_has = sq_queue_has,
        .queue_delete = sq_queue_delete,
        .queue_keys = sq_queue_keys,
        .block_add = sq_block_add,
        .block_remove = sq_block_remove,
        .block_check = sq_block_check,
        .block_list = sq_block_list,
        .auth_locked = sq_auth_locked,
        .auth_fail = sq_auth_fail,
        .auth_reset = sq_auth_reset,
        .invite_create = sq_invite_create,
        .invite_use = sq_invite_use,
        .prune = sq_prune,
        .file_create = sqf_create,
        .file_get = sqf_get,
        .file_role = sqf_role,
        .file_set_complete = sqf_set_complete,
        .file_done = sqf_done,
        .file_delete = sqf_delete,
        .file_usage = sqf_usage,
        .file_list_expired = sqf_list_expired,
        .group_create = sqg_create,
        .group_get = sqg_get,
        .group_apply = sqg_apply,
        .group_delete = sqg_delete,
        .group_is_member = sqg_is_member,
        .group_members = sqg_members,
        .group_changes = sqg_changes,
        .group_count_for = sqg_count_for,
};

int
store_sqlite_open(struct store **out, const char *state_dir, char *err, size_t errlen)
{
	struct store_sqlite *s = NULL;
	char path[PATH_MAX], dummy[1];
	int r, n;

	*out = NULL;
	if (err == NULL || errlen == 0) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = '\0';
	if (state_dir == NULL || *state_dir == '\0') {
		snprintf(err, errlen, "no state directory");
		return SOTTO_ERR_INVALID;
	}
	n = snprintf(path, sizeof(path), "%s/%s", state_dir, STORE_DB_FILE);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		snprintf(err, errlen, "%s: path too long", state_dir);
		return SOTTO_ERR_RANGE;
	}
	if (mkdir(state_dir, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", state_dir, strerror(errno));
		return errno == EACCES ? SOTTO_ERR_PERM : SOTTO_ERR_IO;
	}
	if ((r = sqlu_create_file(path, err, errlen)) != 0)
		return r;
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		return SOTTO_ERR_NOMEM;
	}
	s->base.ops = &sq_ops;
	/* No prefix: store_sqlite_open() puts the path before the message itself. */
	sqlu_init(&s->sq, s->base.error, sizeof(s->base.error), NULL, "batch");
	if ((r = sqlu_open(&s->sq, path)) != 0 ||
	        (r = sqlu_pragma(&s->sq, "PRAGMA journal_mode = WAL", "wal")) != 0 ||
	        (r = sqlu_pragma(&s->sq, "PRAGMA synchronous = NORMAL", NULL)) != 0 ||
	        (r = sqlu_pragma(&s->sq, "PRAGMA trusted_schema = OFF", NULL)) != 0 ||
	        (r = sqlu_pragma(&s->sq, "PRAGMA foreign_keys = OFF", NULL)) != 0 ||
	        (r = sqlu_migrate(&s->sq, sq_migrations, SQ_SCHEMA_VERSION, "sottod")) != 0 ||
	        (r = sqlu_prepare(&s->sq, sq_sql, s->stmt, SQ__COUNT)) != 0 ||
	        (r = sqlu_prepare_all(&s->sq, sqg_sql, s->gstmt, SQG__COUNT)) != 0 ||
	        (r = sqlu_prepare_all(&s->sq, sqf_sql, s->fstmt, SQF__COUNT)) != 0)
		goto out;
	s->base.error[0] = '\0';
	*out = &s->base;
	s = NULL;
	r = 0;
out:
	if (s != NULL) {
		snprintf(err, errlen, "%s: %s", path, store_last_error(&s->base));
		sq_close(&s->base);
	}
	return r;
}
