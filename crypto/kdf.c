/* HKDF-SHA256 through OpenSSL's EVP_KDF, and HMAC-SHA256; see kdf.h. */
#include "config.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "kdf.h"
#include "util.h"

int
kdf_hkdf_sha256(uint8_t *out, size_t outlen, const uint8_t *salt, size_t saltlen,
        const uint8_t *ikm, size_t ikmlen, const uint8_t *info, size_t infolen)
{
	static const uint8_t zero[32];
	static char digest[] = "SHA256";
	EVP_KDF *kdf = NULL;
	EVP_KDF_CTX *ctx = NULL;
	OSSL_PARAM params[5], *p = params;
	int r = SOTTO_ERR_CRYPTO;

	if (out == NULL || (salt == NULL && saltlen > 0) || (ikm == NULL && ikmlen > 0) ||
	        (info == NULL && infolen > 0))
		return SOTTO_ERR_INVALID;
	if (outlen == 0 || outlen > KDF_HKDF_SHA256_MAXBYTES)
		return SOTTO_ERR_RANGE;
	/* RFC 5869: a missing salt is HashLen zero bytes; OpenSSL wants it explicit. */
	if (salt == NULL || saltlen == 0) {
		salt = zero;
		saltlen = sizeof(zero);
	}
	/* OpenSSL refuses a NULL octet-string parameter even when its length is 0. */
	if (ikm == NULL)
		ikm = zero;
	if (info == NULL)
		info = zero;
	ERR_set_mark();
	if ((kdf = EVP_KDF_fetch(NULL, "HKDF", NULL)) == NULL)
		goto out;
	if ((ctx = EVP_KDF_CTX_new(kdf)) == NULL)
		goto out;
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
	*p++ = OSSL_PARAM_construct_octet_string(
	        OSSL_KDF_PARAM_KEY, (void *)(uintptr_t)ikm, ikmlen);
	*p++ = OSSL_PARAM_construct_octet_string(
	        OSSL_KDF_PARAM_SALT, (void *)(uintptr_t)salt, saltlen);
	*p++ = OSSL_PARAM_construct_octet_string(
	        OSSL_KDF_PARAM_INFO, (void *)(uintptr_t)info, infolen);
	*p = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(ctx, out, outlen, params) != 1)
		goto out;
	r = 0;
out:
	/* Leave no OpenSSL error of ours behind for the next caller to misread. */
	ERR_pop_to_mark();
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	if (r != 0)
		sotto_wipe(out, outlen);
	return r;
}

int
kdf_hmac_sha256(uint8_t out[KDF_HMAC_SHA256_BYTES], const uint8_t *key, size_t keylen,
        const uint8_t *msg, size_t msglen)
{
	static const uint8_t empty[1];
	unsigned int len = 0;
	int r = 0;

	if (out == NULL || (key == NULL && keylen > 0) || (msg == NULL && msglen > 0))
		return SOTTO_ERR_INVALID;
	if (keylen > INT32_MAX)
		return SOTTO_ERR_RANGE;
	/* OpenSSL's one-shot HMAC treats a NULL key as "reuse"; give it a real pointer. */
	if (key == NULL)
		key = empty;
	if (msg == NULL)
		msg = empty;
	ERR_set_mark();
	if (HMAC(EVP_sha256(), key, (int)keylen, msg, msglen, out, &len) == NULL ||
	        len != KDF_HMAC_SHA256_BYTES) {
		sotto_wipe(out, KDF_HMAC_SHA256_BYTES);
		r = SOTTO_ERR_CRYPTO;
	}
	ERR_pop_to_mark();
	return r;
}

int
kdf_hmac_sha256_verify(const uint8_t *tag, size_t taglen, const uint8_t *key, size_t keylen,
        const uint8_t *msg, size_t msglen)
{
	uint8_t mac[KDF_HMAC_SHA256_BYTES];
	int r;

	if (tag == NULL || taglen == 0 || taglen > sizeof(mac))
		return SOTTO_ERR_VERIFY;
	if ((r = kdf_hmac_sha256(mac, key, keylen, msg, msglen)) != 0)
		goto out;
	r = sotto_memeq(mac, tag, taglen) ? 0 : SOTTO_ERR_VERIFY;
out:
	sotto_wipe(mac, sizeof(mac));
	return r;
}
