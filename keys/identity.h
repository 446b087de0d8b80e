/*
 * Identity keys: a user's long-term signing key, Ed25519 (the default) or RSA
 * (3072 or 4096 bits).  Every public key has one canonical encoding, its DER
 * SubjectPublicKeyInfo (SPKI); fingerprints, safety numbers and the .pub file
 * are all computed over it.
 *
 * Files: the private key is PKCS#8 PEM (see pkey.h), encrypted with a
 * passphrase, mode 0600.  The public key file PATH.pub holds one line,
 * "sotto-ed25519 BASE64 COMMENT" or "sotto-rsa BASE64 COMMENT", where BASE64
 * is the padded standard base64 of the SPKI DER and COMMENT (optional) runs
 * to the end of the line.
 *
 * Ownership: each struct identity and struct identity_pub returned is owned by
 * the caller and freed with identity_free() or identity_pub_free(); the
 * identity_pub inside a struct identity belongs to it.  The Ed25519 secret
 * key sits in sodium_malloc'd memory and is wiped when freed.  Objects may be
 * used from several threads for reading (sign, verify) once made.
 */
#ifndef SOTTO_KEYS_IDENTITY_H
#define SOTTO_KEYS_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "crypto/ecc.h"
#include "crypto/err.h"
#include "crypto/rsa.h"

#include "fingerprint.h"

#define IDENTITY_ED25519_PREFIX   "sotto-ed25519"
#define IDENTITY_RSA_PREFIX       "sotto-rsa"
#define IDENTITY_RSA_DEFAULT_BITS 3072
/* The longest .pub line parsed, and the longest signature made (RSA-4096). */
#define IDENTITY_LINE_MAX 8192
#define IDENTITY_SIG_MAX  RSA_MAX_BYTES

enum identity_type { IDENTITY_ED25519 = 1, IDENTITY_RSA = 2 };

struct identity_pub {
	enum identity_type type;
	int bits;                                /* 256 for Ed25519, the modulus size for RSA */
	uint8_t ed25519[ED25519_PUBLICKEYBYTES]; /* IDENTITY_ED25519 only */
	EVP_PKEY *rsa;                           /* IDENTITY_RSA only; owned */
	uint8_t *der;                            /* SPKI DER, malloc'd; owned */
	size_t derlen;
};

struct identity {
	struct identity_pub pub;
	uint8_t *ed25519_sk; /* ED25519_SECRETKEYBYTES, sodium_malloc'd; Ed25519 only */
	EVP_PKEY *rsa;       /* the RSA private key; RSA only */
};

/* "ED25519" or "RSA", as ssh-keygen -l prints key types. */
const char *identity_type_name(enum identity_type type);

/*
 * Make a new identity.  bits is ignored for Ed25519; for RSA it must satisfy
 * rsa_identity_bits_ok() (else SOTTO_ERR_UNSUPPORTED).  *out set to NULL first.
 */
int identity_generate(struct identity **out, enum identity_type type, int bits) SOTTO_WUR;

void identity_free(struct identity *id);
void identity_pub_free(struct identity_pub *pub);

/* The public half of id (owned by id). */
const struct identity_pub *identity_public(const struct identity *id);

/* The private key as an OpenSSL key (a new reference the caller frees). */
int identity_to_pkey(EVP_PKEY **out, const struct identity *id) SOTTO_WUR;

/*
 * An identity from an OpenSSL private key: Ed25519, or RSA of an identity
 * size.  SOTTO_ERR_UNSUPPORTED for other types and sizes.
 */
int identity_from_pkey(struct identity **out, EVP_PKEY *pkey) SOTTO_WUR;

/*
 * Write the private key to path (PKCS#8 PEM, encrypted unless passphrase is
 * NULL or "") and the public line to path.pub, each through a temporary file;
 * comment (may be NULL) goes in both.  Without force, SOTTO_ERR_EXISTS if
 * either file exists, and nothing is written.  On any error neither file is
 * left half-written; with force, the old pair is replaced.
 */
int identity_save(const struct identity *id, const char *path, const char *passphrase,
        const char *comment, int force) SOTTO_WUR;

/*
 * Read a private key file.  passphrase may be NULL for an unencrypted key.
 * *comment (if comment is not NULL) receives the comment stored in the key,
 * or NULL.  SOTTO_ERR_PASSPHRASE when the passphrase is missing or wrong,
 * SOTTO_ERR_NOTFOUND, SOTTO_ERR_IO, SOTTO_ERR_SHORT for a truncated file,
 * SOTTO_ERR_FORMAT for anything that is not a PKCS#8 key, and
 * SOTTO_ERR_UNSUPPORTED for a key that is not an identity.
 */
int identity_load(
        struct identity **out, char **comment, const char *path, const char *passphrase) SOTTO_WUR;

/* Parse a canonical SPKI DER of an Ed25519 or identity-size RSA key. */
int identity_pub_from_der(struct identity_pub **out, const uint8_t *der, size_t len) SOTTO_WUR;

/* A new copy of pub. */
int identity_pub_dup(struct identity_pub **out, const struct identity_pub *pub) SOTTO_WUR;

/* 1 if a and b are the same key, else 0. */
int identity_pub_equal(const struct identity_pub *a, const struct identity_pub *b);

/*
 * Parse one .pub line (a trailing newline is allowed).  *comment (if comment
 * is not NULL) gets the comment or NULL.  The prefix must match the key.
 */
int identity_pub_parse_line(struct identity_pub **out, char **comment, const char *line) SOTTO_WUR;

/* "sotto-TYPE BASE64[ COMMENT]" without a newline in a new malloc'd string. */
int identity_pub_format_line(
        char **out, const struct identity_pub *pub, const char *comment) SOTTO_WUR;

/* Read and parse a .pub file (its first line). */
int identity_pub_load(struct identity_pub **out, char **comment, const char *path) SOTTO_WUR;

/* 1 if comment can go in a .pub line: UTF-8 bytes >= 0x20 except 0x7f, not too long. */
int identity_comment_ok(const char *comment);

/* "SHA256:..." over the SPKI DER. */
void identity_fingerprint(char out[FINGERPRINT_LEN], const struct identity_pub *pub);

/*
 * Sign m: Ed25519 (64 bytes) or RSA-PSS-SHA256 (bits/8 bytes).  sig has room
 * for sigcap bytes (IDENTITY_SIG_MAX is always enough); *siglen is set.
 */
int identity_sign(uint8_t *sig, size_t sigcap, size_t *siglen, const struct identity *id,
        const uint8_t *m, size_t mlen) SOTTO_WUR;

/* 0 if sig is pub's signature of m, else SOTTO_ERR_VERIFY. */
int identity_pub_verify(const struct identity_pub *pub, const uint8_t *sig, size_t siglen,
        const uint8_t *m, size_t mlen) SOTTO_WUR;

#endif
