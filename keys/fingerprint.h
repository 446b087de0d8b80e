/*
 * Key fingerprints and randomart.  A fingerprint is "SHA256:" and the
 * unpadded base64 of SHA-256 over a key's canonical encoding (its DER
 * SubjectPublicKeyInfo), as ssh-keygen -l prints them.  Randomart is OpenSSH's
 * "drunken bishop" picture of a digest, in a 17x9 box.  Callers own all
 * buffers.  Thread-safe.
 */
#ifndef SOTTO_KEYS_FINGERPRINT_H
#define SOTTO_KEYS_FINGERPRINT_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/hash.h"

#define FINGERPRINT_PREFIX "SHA256:"
/* "SHA256:", 43 base64 characters and a NUL. */
#define FINGERPRINT_LEN (sizeof(FINGERPRINT_PREFIX) - 1 + 43 + 1)

#define RANDOMART_WIDTH  17 /* inside the frame */
#define RANDOMART_HEIGHT 9
/* Eleven lines of 19 characters, ten newlines between them, and a NUL. */
#define RANDOMART_LEN ((RANDOMART_WIDTH + 2) * (RANDOMART_HEIGHT + 2) + RANDOMART_HEIGHT + 2)

/* out = "SHA256:" + unpadded base64 of SHA-256(data). */
void fingerprint_sha256(char out[FINGERPRINT_LEN], const void *data, size_t len);

/* out = "SHA256:" + unpadded base64 of an existing SHA-256 digest. */
void fingerprint_format(char out[FINGERPRINT_LEN], const uint8_t digest[HASH_SHA256_BYTES]);

/*
 * Draw digest (len bytes) as randomart: a frame titled "[TYPE BITS]" (or
 * "[TYPE]" when that is too wide) with "[HASHNAME]" at the bottom, eleven
 * lines joined by newlines, no newline at the end.
 */
void fingerprint_randomart(char out[RANDOMART_LEN], const uint8_t *digest, size_t len,
        const char *type, int bits, const char *hashname);

#endif
