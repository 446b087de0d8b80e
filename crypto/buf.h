/*
 * A bounds-checked byte reader and writer, in the spirit of OpenSSH's sshbuf,
 * for every binary layout that is not protobuf (transcripts, key encodings,
 * ratchet headers).  Every read checks the remaining length first and fails
 * with SOTTO_ERR_SHORT without moving; no caller does pointer arithmetic on
 * untrusted bytes.  A struct buf is owned by one thread at a time.
 *
 * Integers are big-endian.  A "string" is a u32 length followed by that many
 * bytes.
 */
#ifndef SOTTO_BUF_H
#define SOTTO_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define BUF_MAX_DEFAULT (16 * 1024 * 1024)

struct buf {
	uint8_t *data; /* storage; NULL until the first write for owned buffers */
	size_t size;   /* bytes written (end of readable data) */
	size_t off;    /* read position, 0..size */
	size_t alloc;  /* bytes allocated */
	size_t max;    /* growth limit for writers */
	int readonly;  /* wraps caller memory: never written, never freed */
	int secure;    /* wipe on growth and free */
};

/* A growable writer that may hold up to max bytes (0 means BUF_MAX_DEFAULT). */
void buf_init(struct buf *b, size_t max);
/* Like buf_init, but old storage is wiped whenever it is released. */
void buf_init_secure(struct buf *b, size_t max);
/* A reader over len caller-owned bytes; they must outlive b. */
void buf_init_reader(struct buf *b, const void *data, size_t len);
/* Release storage (wiping it for secure buffers); b may be reused after init. */
void buf_free(struct buf *b);
/* Forget all contents (wiping for secure buffers) but keep the storage. */
void buf_reset(struct buf *b);

/* Unread bytes, and a pointer to them (valid until the next write). */
size_t buf_len(const struct buf *b);
const uint8_t *buf_ptr(const struct buf *b);

/* Writers: SOTTO_ERR_RANGE past max, SOTTO_ERR_NOMEM, SOTTO_ERR_INVALID on a reader. */
int buf_put(struct buf *b, const void *data, size_t len) SOTTO_WUR;
int buf_put_u8(struct buf *b, uint8_t v) SOTTO_WUR;
int buf_put_u16(struct buf *b, uint16_t v) SOTTO_WUR;
int buf_put_u32(struct buf *b, uint32_t v) SOTTO_WUR;
int buf_put_u64(struct buf *b, uint64_t v) SOTTO_WUR;
int buf_put_string(struct buf *b, const void *data, size_t len) SOTTO_WUR;
int buf_put_cstring(struct buf *b, const char *s) SOTTO_WUR;
/* Reserve len bytes at the end and return a pointer to fill; valid until the next write. */
int buf_reserve(struct buf *b, size_t len, uint8_t **out) SOTTO_WUR;

/* Readers: on SOTTO_ERR_SHORT (or any error) nothing is consumed. */
int buf_get(struct buf *b, void *out, size_t len) SOTTO_WUR;
int buf_get_u8(struct buf *b, uint8_t *v) SOTTO_WUR;
int buf_get_u16(struct buf *b, uint16_t *v) SOTTO_WUR;
int buf_get_u32(struct buf *b, uint32_t *v) SOTTO_WUR;
int buf_get_u64(struct buf *b, uint64_t *v) SOTTO_WUR;
int buf_skip(struct buf *b, size_t len) SOTTO_WUR;
/*
 * A string whose length is at most maxlen (else SOTTO_ERR_RANGE): *data points
 * into b (no copy), valid while b's storage is.
 */
int buf_get_string_direct(
        struct buf *b, const uint8_t **data, size_t *len, size_t maxlen) SOTTO_WUR;
/* A string into out (capacity outcap); SOTTO_ERR_RANGE if it does not fit. */
int buf_get_string_fixed(struct buf *b, void *out, size_t outcap, size_t *len) SOTTO_WUR;
/*
 * A NUL-free string of at most maxlen bytes into a new malloc'd C string;
 * SOTTO_ERR_FORMAT if it holds a NUL byte.
 */
int buf_get_cstring(struct buf *b, char **out, size_t maxlen) SOTTO_WUR;

#endif
