/*
 * File encryption for transfers (DESIGN section 10): libsodium's
 * crypto_secretstream_xchacha20poly1305 under a random 32-byte key, one
 * stream per file, in FILECRYPT_CHUNK-byte plaintext chunks.
 *
 * The ciphertext of a file is header (FILECRYPT_HEADERBYTES) || chunk 0 ||
 * chunk 1 || ...  Every chunk but the last holds exactly FILECRYPT_CHUNK
 * plaintext bytes and the tag MESSAGE; the last holds 0 to FILECRYPT_CHUNK
 * bytes and the tag FINAL, so an empty file is one empty FINAL chunk and a
 * file of exactly FILECRYPT_CHUNK bytes is one full FINAL chunk.  Each chunk
 * adds FILECRYPT_ABYTES, so the ciphertext size follows from the plaintext
 * size alone (filecrypt_ciphertext_size) and chunk k starts at byte
 * filecrypt_chunk_offset(k).  The stream's nonce counter makes a reordered,
 * dropped or repeated chunk fail to verify, and a stream that ends without
 * FINAL is truncated.
 *
 * Both directions work chunk by chunk, so neither side holds the whole file,
 * and hash the plaintext with SHA-256 as it passes (the hash FileOffer
 * carries).
 *
 * Resume:
 *  - A download resumes at the last complete chunk: after each chunk the
 *    receiver may filecrypt_save() the pull state (stream state, hash state,
 *    chunk and byte counts) next to the plaintext written so far, and later
 *    filecrypt_restore() it and ask the server for the ciphertext from
 *    filecrypt_chunk_offset(chunks) on.
 *  - An upload resumes by re-deriving the push state.  Encryption is
 *    deterministic once the header is fixed: filecrypt_push_resume() rebuilds
 *    the state that filecrypt_push_new() made from the same key and header,
 *    and pushing the same plaintext chunks again yields the same ciphertext
 *    bytes.  So the sender keeps only (key, header) and replays the plaintext
 *    up to the server's offset, discarding the output; no per-chunk state
 *    has to be stored.  A sender may instead filecrypt_save() the push state
 *    at chunk boundaries and skip the replay.
 *
 * Ownership: a struct filecrypt is owned by the caller, lives in
 * sodium_malloc'd memory, and is wiped by filecrypt_free().  A saved state
 * holds the stream key: treat it like the file key.  Not thread-safe: one
 * thread at a time per struct filecrypt, except for a pusher or puller and
 * a hasher after filecrypt_hash_apart().
 */
#ifndef SOTTO_FILECRYPT_H
#define SOTTO_FILECRYPT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define FILECRYPT_KEYBYTES    32
#define FILECRYPT_HEADERBYTES 24 /* crypto_secretstream_xchacha20poly1305_HEADERBYTES */
#define FILECRYPT_ABYTES      17 /* crypto_secretstream_xchacha20poly1305_ABYTES */
#define FILECRYPT_HASHBYTES   32 /* SHA-256 of the plaintext */
#define FILECRYPT_CHUNK       65536
#define FILECRYPT_CCHUNK      (FILECRYPT_CHUNK + FILECRYPT_ABYTES)
/* The largest plaintext filecrypt_ciphertext_size accepts: 2^50 bytes (1 PiB). */
#define FILECRYPT_MAX_PLAIN (UINT64_C(1) << 50)

#define FILECRYPT_STATE_VERSION 1
/* version, direction, flags, chunks, bytes, stream state, SHA-256 state. */
#define FILECRYPT_STATEBYTES (3 + 8 + 8 + 52 + 32 + 8 + 64)

struct filecrypt;

/* A fresh random file key. */
void filecrypt_keygen(uint8_t key[FILECRYPT_KEYBYTES]);

/* Ciphertext bytes for plain plaintext bytes (header included); 0 if plain is too large. */
uint64_t filecrypt_ciphertext_size(uint64_t plain);
/* The plaintext size for a ciphertext size; SOTTO_ERR_FORMAT if no plaintext size gives it. */
int filecrypt_plaintext_size(uint64_t cipher, uint64_t *plain) SOTTO_WUR;
/* Where chunk k starts in the ciphertext. */
uint64_t filecrypt_chunk_offset(uint64_t k);

/* Start encrypting under key: a new random header goes to header. */
int filecrypt_push_new(struct filecrypt **out, uint8_t header[FILECRYPT_HEADERBYTES],
        const uint8_t key[FILECRYPT_KEYBYTES]) SOTTO_WUR;
/* The push state filecrypt_push_new made with this key and header (upload resume). */
int filecrypt_push_resume(struct filecrypt **out, const uint8_t header[FILECRYPT_HEADERBYTES],
        const uint8_t key[FILECRYPT_KEYBYTES]) SOTTO_WUR;
/*
 * Encrypt one chunk of mlen bytes into c (mlen + FILECRYPT_ABYTES bytes).
 * mlen must be FILECRYPT_CHUNK unless final is set (then 0..FILECRYPT_CHUNK).
 * SOTTO_ERR_INVALID after the final chunk or for a short non-final chunk.
 */
int filecrypt_push(
        struct filecrypt *fc, uint8_t *c, const uint8_t *m, size_t mlen, int final) SOTTO_WUR;

/*
 * Hashing on another thread, so that the cipher and the hash each get a
 * core: after filecrypt_hash_apart(), filecrypt_push() and filecrypt_pull()
 * no longer hash, and the same plaintext must be given, in the same order,
 * to filecrypt_hash().  One thread may push or pull while another hashes
 * (they touch separate parts of the state).  filecrypt_finish() refuses
 * (SOTTO_ERR_INVALID) until every byte has been hashed.  A state is saved
 * in two halves, each by the thread that owns it: filecrypt_save_stream()
 * after a chunk, then filecrypt_save_hash() into the same buffer once that
 * chunk has been hashed (SOTTO_ERR_INVALID if the hash is not exactly
 * there); together they write what filecrypt_save() would have.
 */
int filecrypt_hash_apart(struct filecrypt *fc) SOTTO_WUR;
int filecrypt_hash(struct filecrypt *fc, const uint8_t *m, size_t mlen) SOTTO_WUR;
void filecrypt_save_stream(const struct filecrypt *fc, uint8_t out[FILECRYPT_STATEBYTES]);
int filecrypt_save_hash(const struct filecrypt *fc, uint8_t out[FILECRYPT_STATEBYTES]) SOTTO_WUR;

/* Start decrypting a stream with this header under key. */
int filecrypt_pull_new(struct filecrypt **out, const uint8_t header[FILECRYPT_HEADERBYTES],
        const uint8_t key[FILECRYPT_KEYBYTES]) SOTTO_WUR;
/*
 * Decrypt one chunk of clen bytes (FILECRYPT_ABYTES..FILECRYPT_CCHUNK) into
 * m (clen - FILECRYPT_ABYTES bytes); *final is set for the FINAL chunk.
 * SOTTO_ERR_VERIFY for a tampered, reordered or foreign chunk (m is zeroed
 * and the state unchanged), SOTTO_ERR_FORMAT for a short chunk that is not
 * FINAL or an unexpected tag, SOTTO_ERR_INVALID after FINAL.
 */
int filecrypt_pull(struct filecrypt *fc, uint8_t *m, size_t *mlen, const uint8_t *c, size_t clen,
        int *final) SOTTO_WUR;

/*
 * The stream is complete: hash gets the plaintext's SHA-256.  SOTTO_ERR_SHORT
 * if the FINAL chunk has not been pushed or pulled (a truncated download).
 */
int filecrypt_finish(struct filecrypt *fc, uint8_t hash[FILECRYPT_HASHBYTES]) SOTTO_WUR;

/* Chunks and plaintext bytes processed so far, and whether FINAL was among them. */
uint64_t filecrypt_chunks(const struct filecrypt *fc);
uint64_t filecrypt_bytes(const struct filecrypt *fc);
int filecrypt_done(const struct filecrypt *fc);

/* Serialize the state at this chunk boundary (version byte first). */
void filecrypt_save(const struct filecrypt *fc, uint8_t out[FILECRYPT_STATEBYTES]);
/* Rebuild a saved state; SOTTO_ERR_FORMAT for an unknown version or a malformed state. */
int filecrypt_restore(struct filecrypt **out, const uint8_t in[FILECRYPT_STATEBYTES]) SOTTO_WUR;

/* Wipe and free; NULL is ignored. */
void filecrypt_free(struct filecrypt *fc);

#endif
