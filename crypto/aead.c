/* XChaCha20-Poly1305 and ChaCha20-Poly1305 (IETF); see aead.h. */
#include "config.h"

#include <string.h>

#include <sodium.h>

#include "aead.h"

int
aead_xchacha_seal(uint8_t *c, const uint8_t *m, size_t mlen, const uint8_t *ad, size_t adlen,
        const uint8_t nonce[AEAD_XCHACHA_NPUBBYTES], const uint8_t key[AEAD_KEYBYTES])
{
	if (mlen > crypto_aead_xchacha20poly1305_ietf_MESSAGEBYTES_MAX)
		return SOTTO_ERR_RANGE;
	if (crypto_aead_xchacha20poly1305_ietf_encrypt(
	            c, NULL, m, mlen, ad, adlen, NULL, nonce, key) != 0)
		return SOTTO_ERR_CRYPTO;
	return 0;
}

int
aead_xchacha_open(uint8_t *m, const uint8_t *c, size_t clen, const uint8_t *ad, size_t adlen,
        const uint8_t nonce[AEAD_XCHACHA_NPUBBYTES], const uint8_t key[AEAD_KEYBYTES])
{
	if (clen < AEAD_ABYTES)
		return SOTTO_ERR_SHORT;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(
	            m, NULL, NULL, c, clen, ad, adlen, nonce, key) != 0) {
		sodium_memzero(m, clen - AEAD_ABYTES);
		return SOTTO_ERR_VERIFY;
	}
	return 0;
}

int
aead_chacha_seal(uint8_t *c, const uint8_t *m, size_t mlen, const uint8_t *ad, size_t adlen,
        const uint8_t nonce[AEAD_CHACHA_NPUBBYTES], const uint8_t key[AEAD_KEYBYTES])
{
	if (mlen > crypto_aead_chacha20poly1305_ietf_MESSAGEBYTES_MAX)
		return SOTTO_ERR_RANGE;
	if (crypto_aead_chacha20poly1305_ietf_encrypt(
	            c, NULL, m, mlen, ad, adlen, NULL, nonce, key) != 0)
		return SOTTO_ERR_CRYPTO;
	return 0;
}

int
aead_chacha_open(uint8_t *m, const uint8_t *c, size_t clen, const uint8_t *ad, size_t adlen,
        const uint8_t nonce[AEAD_CHACHA_NPUBBYTES], const uint8_t key[AEAD_KEYBYTES])
{
	if (clen < AEAD_ABYTES)
		return SOTTO_ERR_SHORT;
	if (crypto_aead_chacha20poly1305_ietf_decrypt(
	            m, NULL, NULL, c, clen, ad, adlen, nonce, key) != 0) {
		sodium_memzero(m, clen - AEAD_ABYTES);
		return SOTTO_ERR_VERIFY;
	}
	return 0;
}
