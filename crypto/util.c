/* Crypto set-up, randomness, comparison, wiping and encodings; see util.h. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <sodium.h>

#include "util.h"

int
sotto_crypto_init(void)
{
	if (sodium_init() < 0)
		return SOTTO_ERR_CRYPTO;
	if (OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CRYPTO_STRINGS, NULL) != 1)
		return SOTTO_ERR_CRYPTO;
	return 0;
}

void
sotto_random(void *buf, size_t len)
{
	randombytes_buf(buf, len);
}

int
sotto_memeq(const void *a, const void *b, size_t len)
{
	if (len == 0)
		return 1;
	return sodium_memcmp(a, b, len) == 0;
}

void
sotto_wipe(void *p, size_t len)
{
	if (p != NULL && len > 0)
		sodium_memzero(p, len);
}

void
sotto_hex(char *hex, const uint8_t *bin, size_t len)
{
	sodium_bin2hex(hex, 2 * len + 1, bin, len);
}

int
sotto_unhex(uint8_t **out, size_t *outlen, const char *hex)
{
	size_t n = strlen(hex), got = 0;
	uint8_t *p = NULL;
	int r = SOTTO_ERR_FORMAT;

	*out = NULL;
	*outlen = 0;
	if (n % 2 != 0)
		goto out;
	/* One spare byte keeps the allocation non-empty for empty input. */
	if ((p = malloc(n / 2 + 1)) == NULL) {
		r = SOTTO_ERR_NOMEM;
		goto out;
	}
	if (sodium_hex2bin(p, n / 2 + 1, hex, n, NULL, &got, NULL) != 0 || got != n / 2)
		goto out;
	*out = p;
	*outlen = got;
	p = NULL;
	r = 0;
out:
	free(p);
	return r;
}

void
sotto_b64(char *out, const uint8_t *bin, size_t len, int padded)
{
	sodium_bin2base64(out, SOTTO_B64_LEN(len), bin, len,
	        padded ? sodium_base64_VARIANT_ORIGINAL
	               : sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
}

int
sotto_unb64(uint8_t *out, size_t outcap, size_t *outlen, const char *b64)
{
	size_t n = strlen(b64), pad = 0;
	const char *end = NULL;

	*outlen = 0;
	/*
	 * Strip padding so both padded and unpadded forms decode alike, but only
	 * canonical padding: one or two '=' that complete the last 4-character block.
	 */
	while (n > 0 && b64[n - 1] == '=') {
		n--;
		pad++;
	}
	if (pad > 2 || (pad > 0 && (n + pad) % 4 != 0))
		return SOTTO_ERR_FORMAT;
	errno = 0;
	if (sodium_base642bin(out, outcap, b64, n, NULL, outlen, &end,
	            sodium_base64_VARIANT_ORIGINAL_NO_PADDING) != 0 ||
	        end != b64 + n) {
		*outlen = 0;
		/* libsodium reports a full output buffer as ERANGE. */
		return errno == ERANGE ? SOTTO_ERR_SHORT : SOTTO_ERR_FORMAT;
	}
	return 0;
}
