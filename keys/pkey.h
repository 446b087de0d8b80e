/*
 * PEM and DER encodings of the OpenSSL keys sotto keeps in files: PKCS#8
 * private keys, encrypted with PBES2 (scrypt key derivation, AES-256-CBC) when
 * a passphrase is given, and X.509 SubjectPublicKeyInfo (SPKI) public keys.
 * Only the key types sotto makes are accepted: Ed25519, RSA and ECDSA P-256.
 * A key comment travels inside the PKCS#8 structure as the PKCS#9
 * friendlyName attribute, which other tools ignore.
 *
 * The caller owns every EVP_PKEY and buffer passed in or returned; buffers
 * that may hold a secret are freed with pkey_free_buf(), which wipes them.
 * Thread-safe.
 */
#ifndef SOTTO_KEYS_PKEY_H
#define SOTTO_KEYS_PKEY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "crypto/err.h"

/*
 * scrypt cost for encrypted keys.  OpenSSL refuses to decrypt scrypt
 * parameters that need more than 32 MiB, so N = 2^14 with r = 8 (16 MiB) is
 * the largest memory cost `openssl pkey` still reads; p = 4 multiplies the
 * work without adding memory.
 */
#define PKEY_SCRYPT_N      16384
#define PKEY_SCRYPT_R      8
#define PKEY_SCRYPT_P      4
#define PKEY_SALTBYTES     16
#define PKEY_COMMENT_MAX   1024        /* bytes of UTF-8 in a key comment */
#define PKEY_SPKI_MAX      1024        /* DER SPKI of a 4096-bit RSA key is 550 bytes */
#define PKEY_PEM_MAX       (64 * 1024) /* longest PEM text parsed */
#define PKEY_TYPE_NAME_MAX 8           /* "ED25519", "RSA", "ECDSA" and a NUL */

/* Which supported key type pkey is. */
enum pkey_kind { PKEY_UNSUPPORTED = 0, PKEY_ED25519, PKEY_RSA, PKEY_ECDSA_P256 };

/* The kind of pkey (PKEY_UNSUPPORTED for anything else, including other curves). */
enum pkey_kind pkey_kind(const EVP_PKEY *pkey);

/* "ED25519", "RSA" or "ECDSA", as ssh-keygen -l prints them; "UNKNOWN" otherwise. */
const char *pkey_type_name(const EVP_PKEY *pkey);

/* Key size in bits (256 for Ed25519 and P-256, the modulus size for RSA). */
int pkey_bits(const EVP_PKEY *pkey);

/*
 * Encode a private key as PKCS#8 PEM: "ENCRYPTED PRIVATE KEY" (PBES2, scrypt,
 * AES-256-CBC) when passphrase is non-empty, "PRIVATE KEY" when it is NULL or
 * "".  comment (may be NULL) is stored as friendlyName.  *out (NUL-terminated,
 * *len excludes the NUL) is set to NULL first; free it with pkey_free_buf().
 */
int pkey_private_to_pem(char **out, size_t *len, EVP_PKEY *pkey, const char *passphrase,
        const char *comment) SOTTO_WUR;

/*
 * Decode PKCS#8 PEM (either label) holding a supported key.  passphrase may be
 * NULL for an unencrypted key.  *out and *comment (may be NULL if unwanted;
 * NULL when the key has no comment) are set to NULL first.
 * SOTTO_ERR_PASSPHRASE: the key is encrypted and passphrase is NULL or wrong.
 * SOTTO_ERR_SHORT: a PEM block starts but never ends (a truncated file).
 * SOTTO_ERR_FORMAT: not a PKCS#8 PEM private key, or damaged.
 * SOTTO_ERR_UNSUPPORTED: a well-formed key of a type sotto does not use.
 */
int pkey_private_from_pem(EVP_PKEY **out, char **comment, const char *pem, size_t len,
        const char *passphrase) SOTTO_WUR;

/* 1 if pem holds an "ENCRYPTED PRIVATE KEY" block, else 0. */
int pkey_pem_is_encrypted(const char *pem, size_t len);

/* The DER SPKI of pkey in a new malloc'd buffer; *der set to NULL first. */
int pkey_spki_der(uint8_t **der, size_t *len, const EVP_PKEY *pkey) SOTTO_WUR;

/*
 * Parse a DER SPKI of a supported type.  The encoding must be canonical: it
 * re-encodes to exactly the same bytes (SOTTO_ERR_FORMAT otherwise).
 */
int pkey_from_spki_der(EVP_PKEY **out, const uint8_t *der, size_t len) SOTTO_WUR;

/* The SPKI as "-----BEGIN PUBLIC KEY-----" PEM in a new malloc'd string. */
int pkey_public_to_pem(char **out, size_t *len, const EVP_PKEY *pkey) SOTTO_WUR;

/* Parse "-----BEGIN PUBLIC KEY-----" PEM of a supported type. */
int pkey_public_from_pem(EVP_PKEY **out, const char *pem, size_t len) SOTTO_WUR;

/* Wipe and free a buffer returned by this module (len as returned); NULL is fine. */
void pkey_free_buf(void *buf, size_t len);

#endif
