/*
 * Crash-safe key files.  A file is first written in full to a temporary file
 * beside its final path (created with O_EXCL|O_NOFOLLOW, so it never follows a
 * link or reuses a file), flushed with fsync, and only then moved into place:
 * without "force" by a rename that refuses to replace anything, with "force"
 * by rename(2), which replaces the old file atomically.  Either the whole new
 * file is there or nothing changed.  Reads are bounded, and the buffers they
 * return are wiped when freed, because an unencrypted private key is secret.
 *
 * On SOTTO_ERR_IO, errno says why.  The caller owns every struct keyfile_stage
 * and every buffer returned.  Thread-safe.
 */
#ifndef SOTTO_KEYS_KEYFILE_H
#define SOTTO_KEYS_KEYFILE_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include "crypto/err.h"

#define KEYFILE_MODE_PRIVATE 0600 /* private keys */
#define KEYFILE_MODE_PUBLIC  0644 /* .pub files and certificates (less the umask) */
#define KEYFILE_MAX_READ     (1024 * 1024)

/* A file written to its temporary name but not yet moved into place. */
struct keyfile_stage {
	char *path; /* final path, malloc'd */
	char *tmp;  /* temporary path beside it, malloc'd; NULL once committed */
};

/*
 * 0 if path could be created: SOTTO_ERR_EXISTS if something is already there
 * and force is 0, SOTTO_ERR_IO (errno ENOENT, ENOTDIR, EISDIR...) if its
 * directory is missing or path names a directory.  This is an early, friendly
 * check only; keyfile_commit() decides for good.
 */
int keyfile_check(const char *path, int force) SOTTO_WUR;

/*
 * Write len bytes to a new temporary file beside path with the given mode,
 * fsync it, and fill st.  On error nothing is left on disk and st is empty.
 */
int keyfile_stage(struct keyfile_stage *st, const char *path, const void *data, size_t len,
        mode_t mode) SOTTO_WUR;

/*
 * Move a staged file into place: SOTTO_ERR_EXISTS if path exists and force is
 * 0 (the staged file stays, for keyfile_discard).  The directory is fsync'd.
 */
int keyfile_commit(struct keyfile_stage *st, int force) SOTTO_WUR;

/* Remove a staged file that was not committed and release st; st may be empty. */
void keyfile_discard(struct keyfile_stage *st);

/* keyfile_stage, keyfile_commit and keyfile_discard in one call. */
int keyfile_write(const char *path, const void *data, size_t len, mode_t mode, int force) SOTTO_WUR;

/*
 * Read a whole regular file of at most max bytes (0 means KEYFILE_MAX_READ)
 * into a new buffer, NUL-terminated for convenience (not counted in *len).
 * *out is set to NULL first.  SOTTO_ERR_NOTFOUND if it does not exist,
 * SOTTO_ERR_RANGE if it is larger than max, SOTTO_ERR_IO with errno EISDIR
 * for a directory, SOTTO_ERR_FORMAT for any other file that is not a regular
 * file.  Free the buffer with keyfile_free().
 */
int keyfile_read(const char *path, size_t max, uint8_t **out, size_t *len) SOTTO_WUR;

/* Wipe and free a buffer from keyfile_read() (len as returned); NULL is fine. */
void keyfile_free(uint8_t *data, size_t len);

#endif
