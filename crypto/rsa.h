/*
 * RSA-OAEP-SHA256 (MGF1-SHA256) and RSA-PSS-SHA256 (MGF1-SHA256, 32-byte
 * salt) over OpenSSL 3 EVP_PKEY.  Operations accept moduli of RSA_MIN_BITS to
 * RSA_MAX_BITS so that published 2048-bit vectors can be checked; identities
 * are generated and accepted only at 3072 or 4096 bits (rsa_identity_bits_ok).
 * The caller owns every EVP_PKEY.  Thread-safe.
 */
#ifndef SOTTO_RSA_H
#define SOTTO_RSA_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "err.h"

#define RSA_MIN_BITS      2048
#define RSA_MAX_BITS      4096
#define RSA_PSS_SALTBYTES 32
#define RSA_MAX_BYTES     (RSA_MAX_BITS / 8)

/* 1 if bits is a size sotto makes and accepts for identities (3072, 4096). */
int rsa_identity_bits_ok(int bits);

/* Generate an RSA key (bits 3072 or 4096, e = 65537); *out set to NULL first. */
int rsa_generate(EVP_PKEY **out, int bits) SOTTO_WUR;

/* Modulus size in bits, or SOTTO_ERR_INVALID if pkey is not RSA. */
int rsa_bits(const EVP_PKEY *pkey);

/*
 * Parse a DER SubjectPublicKeyInfo (or, for rsa_private_from_der, a DER PKCS#8
 * PrivateKeyInfo) holding an RSA key of RSA_MIN_BITS..RSA_MAX_BITS.
 * SOTTO_ERR_FORMAT for anything else, SOTTO_ERR_UNSUPPORTED for a bad size.
 */
int rsa_public_from_der(EVP_PKEY **out, const uint8_t *der, size_t len) SOTTO_WUR;
int rsa_private_from_der(EVP_PKEY **out, const uint8_t *der, size_t len) SOTTO_WUR;

/* Encrypt in to pub; out needs rsa_bits/8 bytes (outcap), *outlen is set. */
int rsa_oaep_encrypt(uint8_t *out, size_t outcap, size_t *outlen, const uint8_t *in, size_t inlen,
        EVP_PKEY *pub, const uint8_t *label, size_t labellen) SOTTO_WUR;
/* Decrypt; SOTTO_ERR_VERIFY for any padding or size failure (no oracle detail). */
int rsa_oaep_decrypt(uint8_t *out, size_t outcap, size_t *outlen, const uint8_t *in, size_t inlen,
        EVP_PKEY *priv, const uint8_t *label, size_t labellen) SOTTO_WUR;

/* Sign m; sig needs rsa_bits/8 bytes (sigcap), *siglen is set. */
int rsa_pss_sign(uint8_t *sig, size_t sigcap, size_t *siglen, const uint8_t *m, size_t mlen,
        EVP_PKEY *priv) SOTTO_WUR;
/* 0 if sig is a valid PSS signature of m with a 32-byte salt, else SOTTO_ERR_VERIFY. */
int rsa_pss_verify(
        const uint8_t *sig, size_t siglen, const uint8_t *m, size_t mlen, EVP_PKEY *pub) SOTTO_WUR;

#endif
