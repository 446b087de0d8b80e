/*
 * Sender keys for group messages (DESIGN section 9): each member of a group
 * has one sending chain, a 32-byte chain key with an iteration counter and an
 * Ed25519 signing key pair, and hands the other members its current chain
 * key, iteration and public signing key over their 1:1 sessions.  A group
 * message is then encrypted once and signed.  doc/e2e.md section 7 gives
 * every derivation and byte layout.
 *
 *   chain step:  message key = HMAC-SHA256(chain key, 0x01)
 *                next chain key = HMAC-SHA256(chain key, 0x02)
 *   header:      u8 version (1) || u32 key id || u32 iteration || nonce[24]
 *   ad:          "sotto-senderkey-v1" || group id[16] || string(sender) || header
 *   wire:        header || XChaCha20-Poly1305(message key, nonce, pt, ad) || sig[64]
 *   sig:         Ed25519(signing key, ad || ciphertext)
 *
 * The nonce is random rather than derived from the message key, so that a
 * sender whose state was rolled back (a restored backup) and who reuses an
 * iteration reveals nothing.
 *
 * Opening is transactional: the signature is checked first, new values are
 * computed aside and committed only once the AEAD tag has verified, so a
 * forged, tampered, replayed or out-of-range message leaves the state as it
 * was.
 *
 * Ownership: each struct senderkey_send and struct senderkey_recv is the
 * caller's, freed (and wiped) with its _free function; the keys sit in
 * sodium_malloc'd memory.  Output buffers are malloc'd and belong to the
 * caller; plaintext should be wiped before it is freed.  A state is not
 * thread-safe: one thread at a time per state.
 */
#ifndef SOTTO_SENDERKEY_H
#define SOTTO_SENDERKEY_H

#include <stddef.h>
#include <stdint.h>

#include "aead.h"
#include "buf.h"
#include "ecc.h"
#include "err.h"

#define SENDERKEY_VERSION          1 /* message version */
#define SENDERKEY_STATE_VERSION    1 /* serialized state version */
#define SENDERKEY_CHAINKEYBYTES    32
#define SENDERKEY_GROUPBYTES       16
#define SENDERKEY_SENDER_MAX       255 /* bytes of the sender name bound in the AD */
#define SENDERKEY_HEADERBYTES      (1 + 4 + 4 + AEAD_XCHACHA_NPUBBYTES)
#define SENDERKEY_OVERHEAD         (SENDERKEY_HEADERBYTES + AEAD_ABYTES + ED25519_SIGBYTES)
#define SENDERKEY_MAX_SKIP         2000 /* message keys one message may skip */
#define SENDERKEY_MAX_SKIPPED_KEYS 2000 /* stored skipped keys per chain; oldest evicted */
#define SENDERKEY_CONTEXT          "sotto-senderkey-v1"

struct senderkey_send;
struct senderkey_recv;

/* What a member hands the others so that they can read its chain from iteration on. */
struct senderkey_dist {
	uint32_t key_id;
	uint32_t iteration;
	uint8_t chain_key[SENDERKEY_CHAINKEYBYTES]; /* wipe after use */
	uint8_t sign_pub[ED25519_PUBLICKEYBYTES];
};

/* Fill out with len random bytes; a test hook standing in for the CSPRNG. */
typedef void (*senderkey_rng_fn)(void *arg, uint8_t *out, size_t len);

/*
 * A new sending chain: random chain key, key id and signing key pair,
 * iteration 0.  *out is set to NULL first.
 */
int senderkey_send_new(struct senderkey_send **out) SOTTO_WUR;

/*
 * Known-answer tests only: the same, drawing the chain key, the key id, the
 * signing seed and later every nonce from rng (in that order).  The hook is
 * not serialized; senderkey_send_set_rng() sets it on a loaded state.
 */
int senderkey_send_new_rng(
        struct senderkey_send **out, senderkey_rng_fn rng, void *rng_arg) SOTTO_WUR;
void senderkey_send_set_rng(struct senderkey_send *s, senderkey_rng_fn rng, void *rng_arg);

void senderkey_send_free(struct senderkey_send *s);

/* The chain's current distribution values (wipe d->chain_key after use). */
int senderkey_send_dist(const struct senderkey_send *s, struct senderkey_dist *d) SOTTO_WUR;
uint32_t senderkey_send_key_id(const struct senderkey_send *s);
uint32_t senderkey_send_iteration(const struct senderkey_send *s);

/*
 * Encrypt and sign len bytes for group as sender (a NUL-terminated name of at
 * most SENDERKEY_SENDER_MAX bytes) into a new malloc'd *out of len +
 * SENDERKEY_OVERHEAD bytes, and step the chain.  SOTTO_ERR_RANGE once the
 * iteration would pass UINT32_MAX.  On failure *out is NULL and the state is
 * unchanged.
 */
int senderkey_seal(struct senderkey_send *s, const uint8_t group[SENDERKEY_GROUPBYTES],
        const char *sender, const uint8_t *pt, size_t len, uint8_t **out, size_t *outlen) SOTTO_WUR;

/* A receiving chain from a member's distribution. */
int senderkey_recv_new(struct senderkey_recv **out, const struct senderkey_dist *d) SOTTO_WUR;
void senderkey_recv_free(struct senderkey_recv *r);
uint32_t senderkey_recv_key_id(const struct senderkey_recv *r);
/* The next iteration the chain expects (every earlier one is used, skipped or gone). */
uint32_t senderkey_recv_iteration(const struct senderkey_recv *r);
/* Number of skipped message keys held (for tests and diagnostics). */
size_t senderkey_recv_skipped_count(const struct senderkey_recv *r);

/*
 * Read the key id and iteration of a wire message without checking anything
 * else, so that the caller can pick the chain; SOTTO_ERR_FORMAT if it is too
 * short or of an unknown version.
 */
int senderkey_peek(
        const uint8_t *in, size_t inlen, uint32_t *key_id, uint32_t *iteration) SOTTO_WUR;

/*
 * Verify and decrypt one wire message from sender in group into a new
 * malloc'd *out (at least one byte is allocated, even for an empty message).
 * On any failure *out is NULL and the state is unchanged: SOTTO_ERR_FORMAT
 * for a malformed message or unknown version, SOTTO_ERR_NOTFOUND for a key
 * id that is not this chain's, SOTTO_ERR_VERIFY for a bad signature or tag
 * (forged, tampered, another group or sender) or a key already used or
 * evicted (a replay), SOTTO_ERR_RANGE for a skip of more than
 * SENDERKEY_MAX_SKIP iterations.
 */
int senderkey_open(struct senderkey_recv *r, const uint8_t group[SENDERKEY_GROUPBYTES],
        const char *sender, const uint8_t *in, size_t inlen, uint8_t **out,
        size_t *outlen) SOTTO_WUR;

/*
 * Append a whole state to out (use buf_init_secure: it holds every key).  The
 * caller encrypts it at rest and saves it before the ciphertext is sent or
 * the plaintext shown.
 */
int senderkey_send_serialize(const struct senderkey_send *s, struct buf *out) SOTTO_WUR;
int senderkey_recv_serialize(const struct senderkey_recv *r, struct buf *out) SOTTO_WUR;

/* Rebuild a state; SOTTO_ERR_FORMAT for an unknown version or any malformed input. */
int senderkey_send_deserialize(
        struct senderkey_send **out, const uint8_t *data, size_t len) SOTTO_WUR;
int senderkey_recv_deserialize(
        struct senderkey_recv **out, const uint8_t *data, size_t len) SOTTO_WUR;

#endif
