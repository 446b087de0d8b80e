/*
 * SQLite plumbing shared by the server store (store-sqlite.c) and the client
 * store (client-store.c): result codes mapped to enum sotto_err, step and
 * bind helpers, per-operation savepoints, and open/PRAGMA/migration steps.
 *
 * A struct sqlu is embedded in its owner, which also owns the last-error
 * buffer it writes to and keeps its own transaction flag (passed in where it
 * matters).  The database handle and the transaction statements belong to
 * the struct sqlu and are released by sqlu_close().  One struct sqlu serves
 * one thread at a time (connections are opened SQLITE_OPEN_NOMUTEX).
 */
#ifndef SOTTO_SQLITE_UTIL_H
#define SOTTO_SQLITE_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "crypto/err.h"

#define SQLU_BUSY_TIMEOUT_MS 5000

enum sqlu_tx {
	SQLU_BEGIN,
	SQLU_COMMIT,
	SQLU_ROLLBACK,
	SQLU_SAVEPOINT,
	SQLU_RELEASE,
	SQLU_ROLLBACK_TO,
	SQLU_TX__COUNT
};

struct sqlu {
	sqlite3 *db;
	sqlite3_stmt *tx[SQLU_TX__COUNT];
	char *error; /* the owner's last-error buffer */
	size_t errlen;
	const char *prefix;  /* put before every message written here, or NULL */
	const char *tx_name; /* what the owner calls a transaction ("batch") */
};

/* Set where messages go; nothing is opened yet. */
void sqlu_init(struct sqlu *u, char *error, size_t errlen, const char *prefix, const char *tx_name);

/* The enum sotto_err for an SQLite result code. */
int sqlu_err(int sqlite_rc);

/* Record "what: SQLite's message" and return sqlu_err(rc). */
int sqlu_fail(struct sqlu *u, int rc, const char *what);

/* Reset a statement and clear its bindings. */
void sqlu_done(sqlite3_stmt *st);

/* 1 for a row, 0 when done, or a negative error code (statement reset). */
int sqlu_step(struct sqlu *u, sqlite3_stmt *st);

/* Run a statement to completion, ignoring rows; 0 or an error. */
int sqlu_run(struct sqlu *u, sqlite3_stmt *st);

/* Run a write to completion: how many rows it changed, or a negative error. */
int sqlu_write(struct sqlu *u, sqlite3_stmt *st);

/* Step a query once and reset it: *found is 1 if it gave a row; 0 or an error. */
int sqlu_found(struct sqlu *u, sqlite3_stmt *st, int *found);

/* Step a one-value query and reset it: 1 with *v from its row, 0 (*v untouched), or an error. */
int sqlu_value(struct sqlu *u, sqlite3_stmt *st, int64_t *v);

/* Step a count query and reset it: *count is its value held to 0..UINT32_MAX; 0 or an error. */
int sqlu_count(struct sqlu *u, sqlite3_stmt *st, uint32_t *count);

/* A stored count held to 0..UINT32_MAX. */
uint32_t sqlu_u32(int64_t n);

/* What a listing returns when its callback said r: a positive r stops it without error. */
int sqlu_cb_end(int r);

/* st reset and unbound (sqlu_done), ready for binding. */
sqlite3_stmt *sqlu_ready(sqlite3_stmt *st);

/* Bind helpers; bind errors come back at step.  Values must outlive the step. */
void sqlu_text(sqlite3_stmt *st, int i, const char *v);
void sqlu_blob(sqlite3_stmt *st, int i, const void *v, size_t len);
void sqlu_int(sqlite3_stmt *st, int i, int64_t v);

/* SOTTO_ERR_IO if in_tx is set but SQLite has already rolled the transaction back. */
int sqlu_tx_ok(struct sqlu *u, int in_tx);

/* Wrap one operation in a savepoint; sqlu_op_end() keeps it if r is 0, else undoes it. */
int sqlu_op_begin(struct sqlu *u, int in_tx);
int sqlu_op_end(struct sqlu *u, int r);

/* The owner's transaction; the owner keeps its in_tx flag. */
int sqlu_begin(struct sqlu *u);
int sqlu_commit(struct sqlu *u);
void sqlu_rollback(struct sqlu *u);

/* Create path 0600 (or tighten an existing file) before sqlu_open(); errors go to err. */
int sqlu_create_file(const char *path, char *err, size_t errlen);

/* Open path (which must exist) read-write, extended codes and a busy timeout. */
int sqlu_open(struct sqlu *u, const char *path);

/* Run a PRAGMA and, if want is not NULL, check the value it reports. */
int sqlu_pragma(struct sqlu *u, const char *sql, const char *want);

/* Bring user_version to nsteps with steps[i] taking i to i + 1; program names the upgrade. */
int sqlu_migrate(struct sqlu *u, const char *const *steps, int nsteps, const char *program);

/* Prepare n more persistent statements, after sqlu_prepare() (a second table of them). */
int sqlu_prepare_all(struct sqlu *u, const char *const *sql, sqlite3_stmt **stmt, size_t n);

/* Prepare the transaction statements, then the owner's n persistent statements. */
int sqlu_prepare(struct sqlu *u, const char *const *sql, sqlite3_stmt **stmt, size_t n);

/* Finalize the transaction statements and close; the owner finalizes its own first. */
void sqlu_close(struct sqlu *u);

#endif
