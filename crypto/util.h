/*
 * Process-wide crypto set-up, randomness, constant-time comparison, wiping,
 * hex and base64.  sotto_crypto_init() must run once before any other call in
 * libsotto-crypto; everything else here is thread-safe.
 */
#ifndef SOTTO_UTIL_H
#define SOTTO_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Initialise libsodium and OpenSSL; 0 or SOTTO_ERR_CRYPTO.  Idempotent. */
int sotto_crypto_init(void) SOTTO_WUR;

/* Fill buf with len bytes from the OS CSPRNG (libsodium randombytes). */
void sotto_random(void *buf, size_t len);

/* 1 if the len bytes at a and b are equal, else 0, in constant time. */
int sotto_memeq(const void *a, const void *b, size_t len) SOTTO_WUR;

/* Wipe len bytes at p in a way the compiler cannot elide. */
void sotto_wipe(void *p, size_t len);

/* Lower-case hex of bin into hex (2*len+1 bytes including NUL). */
void sotto_hex(char *hex, const uint8_t *bin, size_t len);

/*
 * Decode hex (any case, even length) into a newly malloc'd buffer; *out is set
 * to NULL first, *outlen to its length.  SOTTO_ERR_FORMAT on bad input.
 */
int sotto_unhex(uint8_t **out, size_t *outlen, const char *hex) SOTTO_WUR;

/* Base64 (standard alphabet); padded or not.  out needs SOTTO_B64_LEN(len). */
#define SOTTO_B64_LEN(n) ((((n) + 2) / 3) * 4 + 1)
void sotto_b64(char *out, const uint8_t *bin, size_t len, int padded);

/* Decode standard base64 (padding optional); SOTTO_ERR_FORMAT on bad input. */
int sotto_unb64(uint8_t *out, size_t outcap, size_t *outlen, const char *b64) SOTTO_WUR;

#endif
