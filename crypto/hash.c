/* SHA-256 and SHA-512; see hash.h. */
#include "config.h"

#include <sodium.h>

#include "hash.h"

void
hash_sha256(uint8_t out[HASH_SHA256_BYTES], const void *in, size_t len)
{
	crypto_hash_sha256(out, in, len);
}

void
hash_sha512(uint8_t out[HASH_SHA512_BYTES], const void *in, size_t len)
{
	crypto_hash_sha512(out, in, len);
}
