/* HKDF-SHA256 (RFC 5869, OpenSSL EVP_KDF "HKDF") and HMAC-SHA256.  Thread-safe. */
#ifndef SOTTO_KDF_H
#define SOTTO_KDF_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define KDF_HMAC_SHA256_BYTES    32
#define KDF_HKDF_SHA256_MAXBYTES (255 * 32)

/*
 * Extract-and-expand: outlen bytes of okm.  salt may be NULL/0 (RFC 5869 then
 * uses HashLen zero bytes); info may be NULL/0.  outlen must be 1..8160, else
 * SOTTO_ERR_RANGE.
 */
int kdf_hkdf_sha256(uint8_t *out, size_t outlen, const uint8_t *salt, size_t saltlen,
        const uint8_t *ikm, size_t ikmlen, const uint8_t *info, size_t infolen) SOTTO_WUR;

/* HMAC-SHA256 of msg under key (any length, including 0). */
int kdf_hmac_sha256(uint8_t out[KDF_HMAC_SHA256_BYTES], const uint8_t *key, size_t keylen,
        const uint8_t *msg, size_t msglen) SOTTO_WUR;

/*
 * Verify a possibly truncated tag (taglen 1..32) in constant time: 0 when it
 * matches the first taglen bytes of the HMAC, SOTTO_ERR_VERIFY otherwise.
 */
int kdf_hmac_sha256_verify(const uint8_t *tag, size_t taglen, const uint8_t *key, size_t keylen,
        const uint8_t *msg, size_t msglen) SOTTO_WUR;

#endif
