/*
 * The Double Ratchet (Signal's specification, DESIGN section 7) over X25519,
 * HKDF-SHA256, HMAC-SHA256 and XChaCha20-Poly1305.  doc/e2e.md gives every
 * derivation and byte layout.
 *
 * A message on the wire is header || ciphertext, where the header is
 * version (u8) || the sender's ratchet public key (32) || PN (u32) || N (u32)
 * and the ciphertext carries a 16-byte tag.  The AEAD's associated data is
 * the session's AD (from X3DH) followed by the header.
 *
 * Decryption is transactional: every new value is computed aside and only
 * committed once the AEAD tag has verified, so a replayed, tampered, skipped-
 * too-far or otherwise rejected message leaves the state exactly as it was.
 *
 * Ownership: a struct ratchet is owned by the caller and freed with
 * ratchet_free(), which wipes it; its keys and skipped message keys sit in
 * sodium_malloc'd memory.  Output buffers are malloc'd and belong to the
 * caller; decrypted plaintext should be wiped (sotto_wipe) before it is
 * freed.  A struct ratchet is not thread-safe: one thread at a time per
 * session (distinct sessions are independent).
 */
#ifndef SOTTO_RATCHET_H
#define SOTTO_RATCHET_H

#include <stddef.h>
#include <stdint.h>

#include "aead.h"
#include "buf.h"
#include "ecc.h"
#include "err.h"

#define RATCHET_VERSION          1 /* message header version */
#define RATCHET_STATE_VERSION    1 /* serialized state version */
#define RATCHET_KEYBYTES         32
#define RATCHET_PUBLICKEYBYTES   X25519_KEYBYTES
#define RATCHET_HEADERBYTES      (1 + RATCHET_PUBLICKEYBYTES + 4 + 4)
#define RATCHET_ABYTES           AEAD_ABYTES
#define RATCHET_OVERHEAD         (RATCHET_HEADERBYTES + RATCHET_ABYTES)
#define RATCHET_MAX_SKIP         1000 /* message keys one chain may skip at once */
#define RATCHET_MAX_SKIPPED_KEYS 2000 /* stored skipped keys per session; oldest evicted */
#define RATCHET_AD_MAX           4096
#define RATCHET_INFO_RK          "sotto-ratchet-rk-v1"
#define RATCHET_INFO_MSG         "sotto-ratchet-msg-v1"

struct ratchet;

/* Fill out with len random bytes; a test hook standing in for the CSPRNG. */
typedef void (*ratchet_rng_fn)(void *arg, uint8_t *out, size_t len);

/*
 * The initiator (Alice): sk from X3DH, ad the X3DH associated data (at most
 * RATCHET_AD_MAX bytes), bob_pub the responder's signed prekey.  *out is set
 * to NULL first.  Alice may encrypt at once.
 */
int ratchet_init_alice(struct ratchet **out, const uint8_t sk[RATCHET_KEYBYTES], const uint8_t *ad,
        size_t adlen, const uint8_t bob_pub[RATCHET_PUBLICKEYBYTES]) SOTTO_WUR;

/*
 * The responder (Bob), whose first ratchet key pair is its signed prekey.  Bob
 * can encrypt only after decrypting Alice's first message (SOTTO_ERR_AGAIN
 * before that).  SOTTO_ERR_INVALID if spk_pub is not spk_sec's public key.
 */
int ratchet_init_bob(struct ratchet **out, const uint8_t sk[RATCHET_KEYBYTES], const uint8_t *ad,
        size_t adlen, const uint8_t spk_pub[RATCHET_PUBLICKEYBYTES],
        const uint8_t spk_sec[RATCHET_KEYBYTES]) SOTTO_WUR;

/*
 * Known-answer tests only: ratchet_init_alice() whose ratchet key pairs (the
 * first one included) come from rng instead of the CSPRNG, and a hook that
 * does the same for an existing state.  The hook is not serialized.
 */
int ratchet_init_alice_rng(struct ratchet **out, const uint8_t sk[RATCHET_KEYBYTES],
        const uint8_t *ad, size_t adlen, const uint8_t bob_pub[RATCHET_PUBLICKEYBYTES],
        ratchet_rng_fn rng, void *rng_arg) SOTTO_WUR;
void ratchet_set_rng(struct ratchet *r, ratchet_rng_fn rng, void *rng_arg);

/*
 * Encrypt len bytes into a new malloc'd *out of len + RATCHET_OVERHEAD bytes.
 * On failure *out is NULL and the state is unchanged.
 */
int ratchet_encrypt(
        struct ratchet *r, const uint8_t *pt, size_t len, uint8_t **out, size_t *outlen) SOTTO_WUR;

/*
 * Decrypt one wire message into a new malloc'd *out (at least one byte is
 * allocated, even for an empty message).  On any failure *out is NULL and the
 * state is unchanged: SOTTO_ERR_FORMAT for a malformed message or unknown
 * version, SOTTO_ERR_RANGE for a skip of more than RATCHET_MAX_SKIP messages,
 * SOTTO_ERR_VERIFY when no key opens it (tampered, replayed, or its skipped
 * key was evicted), SOTTO_ERR_WEAKKEY for a bad ratchet public key.
 */
int ratchet_decrypt(struct ratchet *r, const uint8_t *in, size_t inlen, uint8_t **out,
        size_t *outlen) SOTTO_WUR;

/*
 * Append the whole state to out (use buf_init_secure: it holds every key).
 * The caller encrypts it at rest.
 */
int ratchet_serialize(const struct ratchet *r, struct buf *out) SOTTO_WUR;

/* Rebuild a state; SOTTO_ERR_FORMAT for an unknown version or any malformed input. */
int ratchet_deserialize(struct ratchet **out, const uint8_t *data, size_t len) SOTTO_WUR;

/* Number of skipped message keys held (for tests and diagnostics). */
size_t ratchet_skipped_count(const struct ratchet *r);

void ratchet_free(struct ratchet *r);

#endif
