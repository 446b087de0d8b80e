/*
 * X3DH session set-up for Ed25519 and RSA identities (DESIGN section 7; the
 * exact layouts and derivations are in doc/e2e.md).
 *
 * An Ed25519 identity takes part in key agreement through its X25519 form.
 * An RSA identity cannot do Diffie-Hellman, so its term is replaced: an RSA
 * initiator signs the handshake transcript with RSA-PSS-SHA256, and an RSA
 * responder receives 32 random bytes that the initiator encrypts to it with
 * RSA-OAEP-SHA256.  The ephemeral X25519 terms (DH3, DH4) are always present,
 * so forward secrecy never rests on RSA.
 *
 * This module does NOT check the signed prekey's signature: the caller (the
 * keys layer) verifies the bundle with the responder's identity before it
 * calls x3dh_initiate().  Nor does it decide whether an identity is trusted.
 *
 * Ownership: every key and encoding passed in is borrowed for the duration of
 * the call.  A struct x3dh_session is owned by the caller and freed with
 * x3dh_session_free(), which wipes it; its sk sits in sodium_malloc'd memory.
 * A struct x3dh_header holds no secret and no pointer.  Thread-safe (no shared
 * state), as long as the caller's EVP_PKEYs are not being changed meanwhile.
 */
#ifndef SOTTO_X3DH_H
#define SOTTO_X3DH_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "buf.h"
#include "ecc.h"
#include "err.h"
#include "rsa.h"

#define X3DH_VERSION     1
#define X3DH_SKBYTES     32
#define X3DH_RANDBYTES   32   /* the bytes an RSA responder receives under OAEP */
#define X3DH_ENC_MAX     1024 /* longest canonical encoding (SPKI DER) accepted */
#define X3DH_AD_MAX      (2 * (4 + X3DH_ENC_MAX))
#define X3DH_INFO        "sotto-x3dh-v1" /* HKDF info */
#define X3DH_OAEP_LABEL  "sotto-x3dh-v1" /* RSA-OAEP label */
#define X3DH_SIG_CONTEXT "sotto-x3dh-sig-v1"
/* version, EK_A, spk_id, has_opk, opk_id, two empty strings */
#define X3DH_HEADER_MINBYTES (1 + X25519_KEYBYTES + 4 + 1 + 4 + 4 + 4)
#define X3DH_HEADER_MAXBYTES (X3DH_HEADER_MINBYTES + 2 * RSA_MAX_BYTES)

/* Same numbering as keys/identity.h's enum identity_type. */
enum x3dh_id_type { X3DH_ID_ED25519 = 1, X3DH_ID_RSA = 2 };

/* One's own identity: the private key and the canonical encoding of its public half. */
struct x3dh_priv {
	enum x3dh_id_type type;
	const uint8_t *ed25519_sk; /* ED25519_SECRETKEYBYTES (seed || pk); Ed25519 only */
	EVP_PKEY *rsa;             /* RSA private key (3072 or 4096 bits); RSA only */
	const uint8_t *enc;        /* DER SubjectPublicKeyInfo of the public key */
	size_t enclen;
};

/* A peer's identity: its public key and canonical encoding. */
struct x3dh_pub {
	enum x3dh_id_type type;
	const uint8_t *ed25519_pk; /* ED25519_PUBLICKEYBYTES; Ed25519 only */
	EVP_PKEY *rsa;             /* RSA public key (3072 or 4096 bits); RSA only */
	const uint8_t *enc;        /* DER SubjectPublicKeyInfo */
	size_t enclen;
};

/* The responder's prekey bundle as the server handed it out (SPK signature already checked). */
struct x3dh_bundle {
	struct x3dh_pub id;
	uint32_t spk_id;
	uint8_t spk[X25519_KEYBYTES];
	int has_opk;
	uint32_t opk_id;
	uint8_t opk[X25519_KEYBYTES];
};

/* The responder's prekey secrets, which the caller looked up by the header's ids. */
struct x3dh_prekeys {
	uint32_t spk_id;
	const uint8_t *spk_sec; /* X25519_KEYBYTES */
	int has_opk;
	uint32_t opk_id;
	const uint8_t *opk_sec; /* X25519_KEYBYTES; only when has_opk */
};

/* The initial message header; serialized by x3dh_header_put(). */
struct x3dh_header {
	uint8_t version; /* X3DH_VERSION */
	uint8_t ek[X25519_KEYBYTES];
	uint32_t spk_id;
	uint8_t has_opk; /* 0 or 1 */
	uint32_t opk_id; /* 0 when has_opk is 0 */
	size_t oaep_ct_len;
	uint8_t oaep_ct[RSA_MAX_BYTES]; /* RSA responder only, else empty */
	size_t siglen;
	uint8_t sig[RSA_MAX_BYTES]; /* RSA initiator only, else empty */
};

/* What both sides end with: the shared secret and the associated data for the ratchet. */
struct x3dh_session {
	uint8_t *sk; /* X3DH_SKBYTES, sodium_malloc'd */
	uint8_t *ad; /* string(enc_A) || string(enc_B), malloc'd */
	size_t adlen;
};

/*
 * Initiator: agree a session with the owner of bundle b and fill hdr, the
 * header to send.  *out is set to NULL first.  SOTTO_ERR_INVALID when an
 * encoding does not match its key, SOTTO_ERR_UNSUPPORTED for an RSA key that
 * is not an identity size, SOTTO_ERR_WEAKKEY for a bad X25519 key.
 */
int x3dh_initiate(struct x3dh_session **out, struct x3dh_header *hdr, const struct x3dh_priv *a,
        const struct x3dh_bundle *b) SOTTO_WUR;

/*
 * x3dh_initiate() with the ephemeral secret and the 32 bytes sent under OAEP
 * given rather than drawn from the CSPRNG: for known-answer tests only.  rand
 * is ignored unless the responder is RSA.
 */
int x3dh_initiate_fixed(struct x3dh_session **out, struct x3dh_header *hdr,
        const struct x3dh_priv *a, const struct x3dh_bundle *b,
        const uint8_t ek_sec[X25519_KEYBYTES], const uint8_t rand[X3DH_RANDBYTES]) SOTTO_WUR;

/*
 * Responder: check hdr from initiator a and derive the same session.  The ids
 * in pk must be the ones in hdr (else SOTTO_ERR_INVALID).  SOTTO_ERR_VERIFY
 * when an RSA initiator's signature or the OAEP ciphertext does not verify,
 * SOTTO_ERR_FORMAT when a field is present or absent against the identity
 * types.  An Ed25519 initiator is authenticated implicitly: a forged header
 * yields a different SK, which the first ratchet message then fails under.
 */
int x3dh_respond(struct x3dh_session **out, const struct x3dh_priv *b,
        const struct x3dh_prekeys *pk, const struct x3dh_pub *a,
        const struct x3dh_header *hdr) SOTTO_WUR;

void x3dh_session_free(struct x3dh_session *s);

/* Append hdr's wire form to out. */
int x3dh_header_put(struct buf *out, const struct x3dh_header *hdr) SOTTO_WUR;
/*
 * Read one header from in, leaving what follows it (the first ratchet
 * message) unread; SOTTO_ERR_FORMAT for an unknown version or malformed or
 * truncated input, in which case nothing is consumed.
 */
int x3dh_header_get(struct x3dh_header *hdr, struct buf *in) SOTTO_WUR;
/* Parse exactly len bytes as one header (trailing bytes are SOTTO_ERR_FORMAT). */
int x3dh_header_parse(struct x3dh_header *hdr, const uint8_t *data, size_t len) SOTTO_WUR;

#endif
