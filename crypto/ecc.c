/* X25519 and Ed25519; see ecc.h. */
#include "config.h"

#include <sodium.h>

#include "ecc.h"

void
x25519_keypair(uint8_t pk[X25519_KEYBYTES], uint8_t sk[X25519_KEYBYTES])
{
	randombytes_buf(sk, X25519_KEYBYTES);
	crypto_scalarmult_base(pk, sk);
}

int
x25519_public(uint8_t pk[X25519_KEYBYTES], const uint8_t sk[X25519_KEYBYTES])
{
	if (crypto_scalarmult_base(pk, sk) != 0)
		return SOTTO_ERR_WEAKKEY;
	return 0;
}

int
x25519_shared(uint8_t out[X25519_KEYBYTES], const uint8_t sk[X25519_KEYBYTES],
        const uint8_t pk[X25519_KEYBYTES])
{
	/* libsodium fails for a small-order point, whose shared secret is all zeros. */
	if (crypto_scalarmult(out, sk, pk) != 0 || sodium_is_zero(out, X25519_KEYBYTES)) {
		sodium_memzero(out, X25519_KEYBYTES);
		return SOTTO_ERR_WEAKKEY;
	}
	return 0;
}

void
ed25519_keypair(uint8_t pk[ED25519_PUBLICKEYBYTES], uint8_t sk[ED25519_SECRETKEYBYTES])
{
	crypto_sign_keypair(pk, sk);
}

void
ed25519_seed_keypair(uint8_t pk[ED25519_PUBLICKEYBYTES], uint8_t sk[ED25519_SECRETKEYBYTES],
        const uint8_t seed[ED25519_SEEDBYTES])
{
	crypto_sign_seed_keypair(pk, sk, seed);
}

int
ed25519_sign(uint8_t sig[ED25519_SIGBYTES], const uint8_t *m, size_t mlen,
        const uint8_t sk[ED25519_SECRETKEYBYTES])
{
	if (crypto_sign_detached(sig, NULL, m, mlen, sk) != 0)
		return SOTTO_ERR_CRYPTO;
	return 0;
}

int
ed25519_verify(const uint8_t *sig, size_t siglen, const uint8_t *m, size_t mlen,
        const uint8_t pk[ED25519_PUBLICKEYBYTES])
{
	if (siglen != ED25519_SIGBYTES)
		return SOTTO_ERR_VERIFY;
	if (crypto_sign_verify_detached(sig, m, mlen, pk) != 0)
		return SOTTO_ERR_VERIFY;
	return 0;
}

int
ed25519_pk_to_x25519(uint8_t xpk[X25519_KEYBYTES], const uint8_t edpk[ED25519_PUBLICKEYBYTES])
{
	if (crypto_sign_ed25519_pk_to_curve25519(xpk, edpk) != 0)
		return SOTTO_ERR_FORMAT;
	return 0;
}

int
ed25519_sk_to_x25519(uint8_t xsk[X25519_KEYBYTES], const uint8_t edsk[ED25519_SECRETKEYBYTES])
{
	if (crypto_sign_ed25519_sk_to_curve25519(xsk, edsk) != 0)
		return SOTTO_ERR_CRYPTO;
	return 0;
}
