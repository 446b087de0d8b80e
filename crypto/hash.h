/* SHA-256 and SHA-512 one-shot hashes (libsodium).  Thread-safe. */
#ifndef SOTTO_HASH_H
#define SOTTO_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_SHA256_BYTES 32
#define HASH_SHA512_BYTES 64

void hash_sha256(uint8_t out[HASH_SHA256_BYTES], const void *in, size_t len);
void hash_sha512(uint8_t out[HASH_SHA512_BYTES], const void *in, size_t len);

#endif
