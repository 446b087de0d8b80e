/* RSA-OAEP-SHA256 and RSA-PSS-SHA256 over OpenSSL 3 EVP_PKEY; see rsa.h. */
#include "config.h"

#include <limits.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "rsa.h"
#include "util.h"

#define RSA_OAEP_HASHBYTES 32 /* SHA-256 */

/* Stands in for a NULL pointer with length 0, which OpenSSL would memcpy from. */
static const uint8_t rsa_empty[1];

int
rsa_identity_bits_ok(int bits)
{
	return bits == 3072 || bits == 4096;
}

int
rsa_bits(const EVP_PKEY *pkey)
{
	int bits;

	if (pkey == NULL || EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA)
		return SOTTO_ERR_INVALID;
	bits = EVP_PKEY_get_bits(pkey);
	return bits > 0 ? bits : SOTTO_ERR_INVALID;
}

/* Every operation refuses keys that are not RSA or whose size is outside the supported range. */
static int
rsa_check(const EVP_PKEY *pkey, size_t *bytes)
{
	int bits;

	*bytes = 0;
	if ((bits = rsa_bits(pkey)) < 0)
		return bits;
	if (bits < RSA_MIN_BITS || bits > RSA_MAX_BITS)
		return SOTTO_ERR_UNSUPPORTED;
	*bytes = ((size_t)bits + 7) / 8;
	return 0;
}

int
rsa_generate(EVP_PKEY **out, int bits)
{
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;
	BIGNUM *e = NULL;
	int r = SOTTO_ERR_CRYPTO;

	if (out == NULL)
		return SOTTO_ERR_INVALID;
	*out = NULL;
	if (!rsa_identity_bits_ok(bits))
		return SOTTO_ERR_UNSUPPORTED;
	ERR_set_mark();
	if ((e = BN_new()) == NULL || BN_set_word(e, RSA_F4) != 1)
		goto out;
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL)
		goto out;
	if (EVP_PKEY_keygen_init(ctx) != 1 || EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, bits) != 1 ||
	        EVP_PKEY_CTX_set1_rsa_keygen_pubexp(ctx, e) != 1)
		goto out;
	if (EVP_PKEY_generate(ctx, &pkey) != 1)
		goto out;
	*out = pkey;
	pkey = NULL;
	r = 0;
out:
	/* Drop whatever this call queued, on success too, without touching older entries. */
	ERR_pop_to_mark();
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(ctx);
	BN_free(e);
	return r;
}

/* A freshly decoded key must be plain RSA (not RSA-PSS or anything else) of a supported size. */
static int
rsa_check_decoded(const EVP_PKEY *pkey)
{
	size_t bytes;
	int r;

	if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA)
		return SOTTO_ERR_FORMAT;
	if ((r = rsa_check(pkey, &bytes)) == SOTTO_ERR_INVALID)
		return SOTTO_ERR_FORMAT;
	return r;
}

int
rsa_public_from_der(EVP_PKEY **out, const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	EVP_PKEY *pkey = NULL;
	int r = SOTTO_ERR_FORMAT;

	if (out == NULL)
		return SOTTO_ERR_INVALID;
	*out = NULL;
	if (der == NULL || len == 0 || len > LONG_MAX)
		return SOTTO_ERR_FORMAT;
	ERR_set_mark();
	if ((pkey = d2i_PUBKEY(NULL, &p, (long)len)) == NULL)
		goto out;
	if (p != der + len)
		goto out; /* trailing bytes */
	if ((r = rsa_check_decoded(pkey)) != 0)
		goto out;
	*out = pkey;
	pkey = NULL;
out:
	ERR_pop_to_mark();
	EVP_PKEY_free(pkey);
	return r;
}

int
rsa_private_from_der(EVP_PKEY **out, const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	PKCS8_PRIV_KEY_INFO *p8 = NULL;
	EVP_PKEY *pkey = NULL;
	int r = SOTTO_ERR_FORMAT;

	if (out == NULL)
		return SOTTO_ERR_INVALID;
	*out = NULL;
	if (der == NULL || len == 0 || len > LONG_MAX)
		return SOTTO_ERR_FORMAT;
	ERR_set_mark();
	/* Only an unencrypted PKCS#8 PrivateKeyInfo, not the older RSAPrivateKey form. */
	if ((p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)len)) == NULL)
		goto out;
	if (p != der + len)
		goto out;
	if ((pkey = EVP_PKCS82PKEY(p8)) == NULL)
		goto out;
	if ((r = rsa_check_decoded(pkey)) != 0)
		goto out;
	*out = pkey;
	pkey = NULL;
out:
	ERR_pop_to_mark();
	EVP_PKEY_free(pkey);
	PKCS8_PRIV_KEY_INFO_free(p8);
	return r;
}

/* Put OAEP with SHA-256, MGF1-SHA-256 and the label on an initialised encrypt or decrypt ctx. */
static int
rsa_oaep_setup(EVP_PKEY_CTX *ctx, const uint8_t *label, size_t labellen)
{
	unsigned char *copy;

	if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) != 1 ||
	        EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) != 1 ||
	        EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) != 1)
		return SOTTO_ERR_CRYPTO;
	if (labellen == 0)
		return 0;
	/* set0 takes ownership of an OPENSSL_malloc'd label, but only when it succeeds. */
	if ((copy = OPENSSL_memdup(label, labellen)) == NULL)
		return SOTTO_ERR_NOMEM;
	if (EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, copy, (int)labellen) != 1) {
		OPENSSL_free(copy);
		return SOTTO_ERR_CRYPTO;
	}
	return 0;
}

int
rsa_oaep_encrypt(uint8_t *out, size_t outcap, size_t *outlen, const uint8_t *in, size_t inlen,
        EVP_PKEY *pub, const uint8_t *label, size_t labellen)
{
	EVP_PKEY_CTX *ctx = NULL;
	size_t k, n;
	int r;

	if (outlen == NULL)
		return SOTTO_ERR_INVALID;
	*outlen = 0;
	if (out == NULL || (in == NULL && inlen > 0) || (label == NULL && labellen > 0))
		return SOTTO_ERR_INVALID;
	if (in == NULL)
		in = rsa_empty;
	if ((r = rsa_check(pub, &k)) != 0)
		return r;
	if (outcap < k)
		return SOTTO_ERR_SHORT;
	/* RFC 8017 7.1.1: at most k - 2hLen - 2 bytes fit. */
	if (inlen > k - 2 * RSA_OAEP_HASHBYTES - 2 || labellen > INT_MAX)
		return SOTTO_ERR_RANGE;
	ERR_set_mark();
	r = SOTTO_ERR_CRYPTO;
	if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL)) == NULL)
		goto out;
	if (EVP_PKEY_encrypt_init(ctx) != 1)
		goto out;
	if ((r = rsa_oaep_setup(ctx, label, labellen)) != 0)
		goto out;
	r = SOTTO_ERR_CRYPTO;
	n = outcap;
	if (EVP_PKEY_encrypt(ctx, out, &n, in, inlen) != 1 || n != k)
		goto out;
	*outlen = n;
	r = 0;
out:
	ERR_pop_to_mark();
	EVP_PKEY_CTX_free(ctx);
	return r;
}

/*
 * Every failure after the key check is SOTTO_ERR_VERIFY, a plaintext too long
 * for outcap included, so that callers cannot leak which OAEP step failed.
 */
int
rsa_oaep_decrypt(uint8_t *out, size_t outcap, size_t *outlen, const uint8_t *in, size_t inlen,
        EVP_PKEY *priv, const uint8_t *label, size_t labellen)
{
	EVP_PKEY_CTX *ctx = NULL;
	uint8_t buf[RSA_MAX_BYTES];
	size_t k, n = 0;
	int r;

	if (outlen == NULL)
		return SOTTO_ERR_INVALID;
	*outlen = 0;
	if (out == NULL || (in == NULL && inlen > 0) || (label == NULL && labellen > 0))
		return SOTTO_ERR_INVALID;
	if ((r = rsa_check(priv, &k)) != 0)
		return r;
	if (labellen > INT_MAX)
		return SOTTO_ERR_RANGE;
	/* A ciphertext is exactly k bytes (RFC 8017 7.1.2 step 1b). */
	if (inlen != k)
		return SOTTO_ERR_VERIFY;
	ERR_set_mark();
	r = SOTTO_ERR_CRYPTO;
	if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, priv, NULL)) == NULL)
		goto out;
	if (EVP_PKEY_decrypt_init(ctx) != 1)
		goto out;
	if ((r = rsa_oaep_setup(ctx, label, labellen)) != 0)
		goto out;
	/* OpenSSL wants k bytes of room whatever the plaintext length, hence buf. */
	r = SOTTO_ERR_VERIFY;
	n = sizeof(buf);
	if (EVP_PKEY_decrypt(ctx, buf, &n, in, inlen) != 1 || n > outcap)
		goto out;
	if (n > 0)
		memcpy(out, buf, n);
	*outlen = n;
	r = 0;
out:
	ERR_pop_to_mark();
	sotto_wipe(buf, sizeof(buf));
	EVP_PKEY_CTX_free(ctx);
	return r;
}

/* Set PSS with MGF1-SHA-256 and a 32-byte salt on the ctx of a digest-sign or -verify init. */
static int
rsa_pss_setup(EVP_PKEY_CTX *pctx)
{
	if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTBYTES) != 1 ||
	        EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) != 1)
		return SOTTO_ERR_CRYPTO;
	return 0;
}

int
rsa_pss_sign(
        uint8_t *sig, size_t sigcap, size_t *siglen, const uint8_t *m, size_t mlen, EVP_PKEY *priv)
{
	EVP_MD_CTX *mctx = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	size_t k, n;
	int r;

	if (siglen == NULL)
		return SOTTO_ERR_INVALID;
	*siglen = 0;
	if (sig == NULL || (m == NULL && mlen > 0))
		return SOTTO_ERR_INVALID;
	if (m == NULL)
		m = rsa_empty;
	if ((r = rsa_check(priv, &k)) != 0)
		return r;
	if (sigcap < k)
		return SOTTO_ERR_SHORT;
	ERR_set_mark();
	r = SOTTO_ERR_CRYPTO;
	if ((mctx = EVP_MD_CTX_new()) == NULL)
		goto out;
	if (EVP_DigestSignInit(mctx, &pctx, EVP_sha256(), NULL, priv) != 1)
		goto out;
	if ((r = rsa_pss_setup(pctx)) != 0)
		goto out;
	r = SOTTO_ERR_CRYPTO;
	n = sigcap;
	if (EVP_DigestSign(mctx, sig, &n, m, mlen) != 1 || n != k)
		goto out;
	*siglen = n;
	r = 0;
out:
	ERR_pop_to_mark();
	EVP_MD_CTX_free(mctx); /* also frees pctx */
	return r;
}

int
rsa_pss_verify(const uint8_t *sig, size_t siglen, const uint8_t *m, size_t mlen, EVP_PKEY *pub)
{
	EVP_MD_CTX *mctx = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	size_t k;
	int r;

	if (m == NULL && mlen > 0)
		return SOTTO_ERR_INVALID;
	if (m == NULL)
		m = rsa_empty;
	if ((r = rsa_check(pub, &k)) != 0)
		return r;
	/* RFC 8017 8.1.2 step 1: a signature is exactly k bytes. */
	if (sig == NULL || siglen != k)
		return SOTTO_ERR_VERIFY;
	ERR_set_mark();
	r = SOTTO_ERR_CRYPTO;
	if ((mctx = EVP_MD_CTX_new()) == NULL)
		goto out;
	if (EVP_DigestVerifyInit(mctx, &pctx, EVP_sha256(), NULL, pub) != 1)
		goto out;
	if ((r = rsa_pss_setup(pctx)) != 0)
		goto out;
	r = EVP_DigestVerify(mctx, sig, siglen, m, mlen) == 1 ? 0 : SOTTO_ERR_VERIFY;
out:
	ERR_pop_to_mark();
	EVP_MD_CTX_free(mctx);
	return r;
}
