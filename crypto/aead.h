/*
 * XChaCha20-Poly1305 (24-byte nonce) and IETF ChaCha20-Poly1305 (12-byte
 * nonce, RFC 8439) from libsodium.  Ciphertext = encrypted message || 16-byte
 * tag, so c holds mlen + AEAD_ABYTES bytes.  In-place use (c == m) is allowed.
 * Thread-safe.
 */
#ifndef SOTTO_AEAD_H
#define SOTTO_AEAD_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define AEAD_KEYBYTES          32
#define AEAD_ABYTES            16
#define AEAD_XCHACHA_NPUBBYTES 24
#define AEAD_CHACHA_NPUBBYTES  12

int aead_xchacha_seal(uint8_t *c, const uint8_t *m, size_t mlen, const uint8_t *ad, size_t adlen,
        const uint8_t nonce[AEAD_XCHACHA_NPUBBYTES], const uint8_t key[AEAD_KEYBYTES]) SOTTO_WUR;
/* On failure (SOTTO_ERR_VERIFY, or SOTTO_ERR_SHORT if clen < 16) m is zeroed. */
int aead_xchacha_open(uint8_t *m, const uint8_t *c, size_t clen, const uint8_t *ad, size_t adlen,
        const uint8_t nonce[AEAD_XCHACHA_NPUBBYTES], const uint8_t key[AEAD_KEYBYTES]) SOTTO_WUR;

int aead_chacha_seal(uint8_t *c, const uint8_t *m, size_t mlen, const uint8_t *ad, size_t adlen,
        const uint8_t nonce[AEAD_CHACHA_NPUBBYTES], const uint8_t key[AEAD_KEYBYTES]) SOTTO_WUR;
int aead_chacha_open(uint8_t *m, const uint8_t *c, size_t clen, const uint8_t *ad, size_t adlen,
        const uint8_t nonce[AEAD_CHACHA_NPUBBYTES], const uint8_t key[AEAD_KEYBYTES]) SOTTO_WUR;

#endif
