/*
 * SQLite plumbing shared by both stores; see sqlite-util.h.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "src/sqlite-util.h"

static const char *const sqlu_tx_sql[SQLU_TX__COUNT] = {
        [SQLU_BEGIN] = "BEGIN IMMEDIATE",
        [SQLU_COMMIT] = "COMMIT",
        [SQLU_ROLLBACK] = "ROLLBACK",
        [SQLU_SAVEPOINT] = "SAVEPOINT op",
        [SQLU_RELEASE] = "RELEASE op",
        [SQLU_ROLLBACK_TO] = "ROLLBACK TO op",
};

static void sqlu_set_error(struct sqlu *u, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* The owner's prefix first, so that every message names the file it is about. */
static void
sqlu_set_error(struct sqlu *u, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	if (u->prefix != NULL) {
		n = snprintf(u->error, u->errlen, "%s: ", u->prefix);
		if (n < 0 || (size_t)n >= u->errlen)
			return;
	}
	va_start(ap, fmt);
	vsnprintf(u->error + n, u->errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

void
sqlu_init(struct sqlu *u, char *error, size_t errlen, const char *prefix, const char *tx_name)
{
	memset(u, 0, sizeof(*u));
	u->error = error;
	u->errlen = errlen;
	u->prefix = prefix;
	u->tx_name = tx_name;
}

int
sqlu_err(int sqlite_rc)
{
	switch (sqlite_rc & 0xff) {
	case SQLITE_NOMEM:
		return SOTTO_ERR_NOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return SOTTO_ERR_AGAIN;
	case SQLITE_CONSTRAINT:
		return SOTTO_ERR_EXISTS;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
	case SQLITE_SCHEMA:
		return SOTTO_ERR_FORMAT;
	case SQLITE_PERM:
	case SQLITE_READONLY:
	case SQLITE_AUTH:
		return SOTTO_ERR_PERM;
	case SQLITE_TOOBIG:
	case SQLITE_RANGE:
		return SOTTO_ERR_RANGE;
	default:
		return SOTTO_ERR_IO;
	}
}

/* Keep SQLite's own words for the logs; the code alone says too little. */
int
sqlu_fail(struct sqlu *u, int rc, const char *what)
{
	sqlu_set_error(u, "%s: %s", what, sqlite3_errmsg(u->db));
	return sqlu_err(rc);
}

/* Releases a statement's cursor, write lock and bound buffers as soon as the caller is done. */
void
sqlu_done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

int
sqlu_step(struct sqlu *u, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	rc = sqlu_fail(u, rc, sqlite3_sql(st));
	sqlu_done(st);
	return rc;
}

int
sqlu_run(struct sqlu *u, sqlite3_stmt *st)
{
	int r;

	while ((r = sqlu_step(u, st)) == 1)
		;
	sqlu_done(st);
	return r;
}

int
sqlu_write(struct sqlu *u, sqlite3_stmt *st)
{
	int r;

	if ((r = sqlu_run(u, st)) == 0)
		r = sqlite3_changes(u->db);
	return r;
}

int
sqlu_found(struct sqlu *u, sqlite3_stmt *st, int *found)
{
	int r;

	*found = 0;
	if ((r = sqlu_step(u, st)) > 0) {
		*found = 1;
		r = 0;
	}
	sqlu_done(st);
	return r;
}

int
sqlu_value(struct sqlu *u, sqlite3_stmt *st, int64_t *v)
{
	int r;

	if ((r = sqlu_step(u, st)) == 1)
		*v = sqlite3_column_int64(st, 0);
	sqlu_done(st);
	return r;
}

int
sqlu_count(struct sqlu *u, sqlite3_stmt *st, uint32_t *count)
{
	int64_t n = 0;
	int r;

	*count = 0;
	if ((r = sqlu_value(u, st, &n)) < 0)
		goto out;
	*count = sqlu_u32(n);
	r = 0;
out:
	return r;
}

uint32_t
sqlu_u32(int64_t n)
{
	return n < 0 ? 0 : n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

/* Callbacks return a positive value to stop early, which is no error. */
int
sqlu_cb_end(int r)
{
	return r > 0 ? 0 : r;
}

sqlite3_stmt *
sqlu_ready(sqlite3_stmt *st)
{
	sqlu_done(st);
	return st;
}

static int
sqlu_exec(struct sqlu *u, enum sqlu_tx id)
{
	sqlu_done(u->tx[id]);
	return sqlu_run(u, u->tx[id]);
}

/* SQLite reports bind errors again at step, so results are checked there. */
void
sqlu_text(sqlite3_stmt *st, int i, const char *v)
{
	(void)sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
}

void
sqlu_blob(sqlite3_stmt *st, int i, const void *v, size_t len)
{
	(void)sqlite3_bind_blob64(st, i, len > 0 ? v : "", (sqlite3_uint64)len, SQLITE_STATIC);
}

void
sqlu_int(sqlite3_stmt *st, int i, int64_t v)
{
	(void)sqlite3_bind_int64(st, i, (sqlite3_int64)v);
}

/* A transaction SQLite rolled back itself (disk full, I/O error) must not go on in autocommit. */
int
sqlu_tx_ok(struct sqlu *u, int in_tx)
{
	if (in_tx && sqlite3_get_autocommit(u->db)) {
		sqlu_set_error(u, "the %s was rolled back after an earlier error", u->tx_name);
		return SOTTO_ERR_IO;
	}
	return 0;
}

int
sqlu_op_begin(struct sqlu *u, int in_tx)
{
	int r;

	if ((r = sqlu_tx_ok(u, in_tx)) != 0)
		return r;
	return sqlu_exec(u, SQLU_SAVEPOINT);
}

/* Undo exactly this operation's changes, leaving an enclosing transaction open. */
int
sqlu_op_end(struct sqlu *u, int r)
{
	if (r == 0 && (r = sqlu_exec(u, SQLU_RELEASE)) == 0)
		return 0;
	if (!sqlite3_get_autocommit(u->db)) {
		(void)sqlu_exec(u, SQLU_ROLLBACK_TO);
		(void)sqlu_exec(u, SQLU_RELEASE);
	}
	return r;
}

int
sqlu_begin(struct sqlu *u)
{
	return sqlu_exec(u, SQLU_BEGIN);
}

/* A failed COMMIT can leave the transaction open, so roll it back rather than leak it. */
int
sqlu_commit(struct sqlu *u)
{
	int r;

	if ((r = sqlu_tx_ok(u, 1)) != 0)
		return r;
	if ((r = sqlu_exec(u, SQLU_COMMIT)) != 0 && !sqlite3_get_autocommit(u->db))
		(void)sqlu_exec(u, SQLU_ROLLBACK);
	return r;
}

void
sqlu_rollback(struct sqlu *u)
{
	if (!sqlite3_get_autocommit(u->db))
		(void)sqlu_exec(u, SQLU_ROLLBACK);
}

/* Refuses a symlink or non-regular file so that the store never writes through one. */
int
sqlu_create_file(const char *path, char *err, size_t errlen)
{
	struct stat sb;
	int fd;

	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return errno == EACCES || errno == EPERM ? SOTTO_ERR_PERM : SOTTO_ERR_IO;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		close(fd);
		return SOTTO_ERR_IO;
	}
	if ((sb.st_mode & 077) != 0 && fchmod(fd, sb.st_mode & 0700) == -1) {
		snprintf(err, errlen, "%s: chmod: %s", path, strerror(errno));
		close(fd);
		return SOTTO_ERR_IO;
	}
	close(fd);
	return 0;
}

/* SQLite gives the -wal and -shm files the database file's mode, so the caller creates it 0600. */
int
sqlu_open(struct sqlu *u, const char *path)
{
	int rc;

	rc = sqlite3_open_v2(path, &u->db,
	        SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW, NULL);
	if (rc != SQLITE_OK)
		return u->db != NULL ? sqlu_fail(u, rc, "open") : SOTTO_ERR_NOMEM;
	sqlite3_extended_result_codes(u->db, 1);
	sqlite3_busy_timeout(u->db, SQLU_BUSY_TIMEOUT_MS);
	return 0;
}

int
sqlu_pragma(struct sqlu *u, const char *sql, const char *want)
{
	sqlite3_stmt *st = NULL;
	const char *got;
	int rc, r = 0;

	if ((rc = sqlite3_prepare_v2(u->db, sql, -1, &st, NULL)) != SQLITE_OK)
		return sqlu_fail(u, rc, sql);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		r = sqlu_fail(u, rc, sql);
	} else if (want != NULL) {
		got = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
		if (got == NULL || strcmp(got, want) != 0) {
			sqlu_set_error(u, "%s: got %s", sql, got != NULL ? got : "nothing");
			r = SOTTO_ERR_UNSUPPORTED;
		}
	}
	sqlite3_finalize(st);
	return r;
}

/* One transaction per step, so that a failed step leaves the last good version. */
int
sqlu_migrate(struct sqlu *u, const char *const *steps, int nsteps, const char *program)
{
	sqlite3_stmt *st = NULL;
	char sql[64];
	int rc, version;

	rc = sqlite3_prepare_v2(u->db, "PRAGMA user_version", -1, &st, NULL);
	if (rc != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
		rc = sqlu_fail(
		        u, rc == SQLITE_OK ? SQLITE_ERROR : rc, "reading the schema version");
		sqlite3_finalize(st);
		return rc;
	}
	version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (version > nsteps || version < 0) {
		sqlu_set_error(u, "schema version %d is newer than this %s knows (%d): upgrade %s",
		        version, program, nsteps, program);
		return SOTTO_ERR_UNSUPPORTED;
	}
	for (; version < nsteps; version++) {
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", version + 1);
		if ((rc = sqlite3_exec(u->db, "BEGIN IMMEDIATE", NULL, NULL, NULL)) != SQLITE_OK)
			return sqlu_fail(u, rc, "migrating the schema");
		if ((rc = sqlite3_exec(u->db, steps[version], NULL, NULL, NULL)) != SQLITE_OK ||
		        (rc = sqlite3_exec(u->db, sql, NULL, NULL, NULL)) != SQLITE_OK ||
		        (rc = sqlite3_exec(u->db, "COMMIT", NULL, NULL, NULL)) != SQLITE_OK) {
			rc = sqlu_fail(u, rc, "migrating the schema");
			(void)sqlite3_exec(u->db, "ROLLBACK", NULL, NULL, NULL);
			return rc;
		}
	}
	return 0;
}

int
sqlu_prepare_all(struct sqlu *u, const char *const *sql, sqlite3_stmt **stmt, size_t n)
{
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		rc = sqlite3_prepare_v3(
		        u->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &stmt[i], NULL);
		if (rc != SQLITE_OK)
			return sqlu_fail(u, rc, sql[i]);
	}
	return 0;
}

int
sqlu_prepare(struct sqlu *u, const char *const *sql, sqlite3_stmt **stmt, size_t n)
{
	int r;

	if ((r = sqlu_prepare_all(u, sqlu_tx_sql, u->tx, SQLU_TX__COUNT)) != 0)
		return r;
	return sqlu_prepare_all(u, sql, stmt, n);
}

/* PRAGMA optimize at close keeps the query planner's statistics current at little cost. */
void
sqlu_close(struct sqlu *u)
{
	size_t i;

	for (i = 0; i < SQLU_TX__COUNT; i++) {
		sqlite3_finalize(u->tx[i]);
		u->tx[i] = NULL;
	}
	if (u->db != NULL) {
		(void)sqlite3_exec(u->db, "PRAGMA optimize", NULL, NULL, NULL);
		sqlite3_close_v2(u->db);
		u->db = NULL;
	}
}
