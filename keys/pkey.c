/* PKCS#8 and SPKI encodings of OpenSSL keys; see pkey.h. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

#include "crypto/util.h"

#include "pkey.h"

#define PEM_BEGIN "-----BEGIN "
#define PEM_END   "-----END "

enum pkey_kind
pkey_kind(const EVP_PKEY *pkey)
{
	char group[64];
	size_t glen = 0;

	if (pkey == NULL)
		return PKEY_UNSUPPORTED;
	if (EVP_PKEY_is_a(pkey, "ED25519"))
		return PKEY_ED25519;
	if (EVP_PKEY_is_a(pkey, "RSA"))
		return PKEY_RSA;
	if (EVP_PKEY_is_a(pkey, "EC") &&
	        EVP_PKEY_get_utf8_string_param(
	                pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &glen) == 1 &&
	        (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0))
		return PKEY_ECDSA_P256;
	return PKEY_UNSUPPORTED;
}

const char *
pkey_type_name(const EVP_PKEY *pkey)
{
	switch (pkey_kind(pkey)) {
	case PKEY_ED25519:
		return "ED25519";
	case PKEY_RSA:
		return "RSA";
	case PKEY_ECDSA_P256:
		return "ECDSA";
	case PKEY_UNSUPPORTED:
		break;
	}
	return "UNKNOWN";
}

int
pkey_bits(const EVP_PKEY *pkey)
{
	return pkey == NULL ? 0 : EVP_PKEY_get_bits(pkey);
}

void
pkey_free_buf(void *buf, size_t len)
{
	if (buf == NULL)
		return;
	sotto_wipe(buf, len);
	free(buf);
}

/* Copy a memory BIO's contents into a new NUL-terminated malloc'd string. */
static int
pkey_bio_to_string(char **out, size_t *len, BIO *bio)
{
	BUF_MEM *mem = NULL;
	char *s;

	if (BIO_get_mem_ptr(bio, &mem) != 1 || mem == NULL)
		return SOTTO_ERR_CRYPTO;
	if ((s = malloc(mem->length + 1)) == NULL)
		return SOTTO_ERR_NOMEM;
	memcpy(s, mem->data, mem->length);
	s[mem->length] = '\0';
	*out = s;
	*len = mem->length;
	return 0;
}

/* Add comment as friendlyName, silently skipping text a BMPString cannot hold. */
static void
pkey_p8_set_comment(PKCS8_PRIV_KEY_INFO *p8, const char *comment)
{
	if (comment == NULL || *comment == '\0' || strlen(comment) > PKEY_COMMENT_MAX)
		return;
	if (PKCS8_pkey_add1_attr_by_NID(
	            p8, NID_friendlyName, MBSTRING_UTF8, (const unsigned char *)comment, -1) != 1)
		ERR_clear_error();
}

int
pkey_private_to_pem(
        char **out, size_t *len, EVP_PKEY *pkey, const char *passphrase, const char *comment)
{
	PKCS8_PRIV_KEY_INFO *p8 = NULL;
	X509_ALGOR *pbe = NULL;
	X509_SIG *sig = NULL;
	BIO *bio = NULL;
	uint8_t salt[PKEY_SALTBYTES];
	int r = SOTTO_ERR_CRYPTO;

	*out = NULL;
	*len = 0;
	if (pkey_kind(pkey) == PKEY_UNSUPPORTED)
		return SOTTO_ERR_UNSUPPORTED;
	if ((p8 = EVP_PKEY2PKCS8(pkey)) == NULL)
		goto out;
	pkey_p8_set_comment(p8, comment);
	/* The secure-memory BIO wipes its buffer, which holds the key when unencrypted. */
	if ((bio = BIO_new(BIO_s_secmem())) == NULL)
		goto out;
	if (passphrase != NULL && *passphrase != '\0') {
		sotto_random(salt, sizeof(salt));
		pbe = PKCS5_pbe2_set_scrypt(EVP_aes_256_cbc(), salt, sizeof(salt), NULL,
		        PKEY_SCRYPT_N, PKEY_SCRYPT_R, PKEY_SCRYPT_P);
		if (pbe == NULL)
			goto out;
		if ((sig = PKCS8_set0_pbe(passphrase, (int)strlen(passphrase), p8, pbe)) == NULL)
			goto out;
		pbe = NULL; /* now owned by sig */
		if (PEM_write_bio_PKCS8(bio, sig) != 1)
			goto out;
	} else if (PEM_write_bio_PKCS8_PRIV_KEY_INFO(bio, p8) != 1)
		goto out;
	r = pkey_bio_to_string(out, len, bio);
out:
	X509_ALGOR_free(pbe);
	X509_SIG_free(sig);
	PKCS8_PRIV_KEY_INFO_free(p8);
	BIO_free(bio);
	ERR_clear_error();
	return r;
}

/* Where needle first occurs in the len bytes at hay, or NULL. */
static const char *
pkey_find(const char *hay, size_t len, const char *needle)
{
	return memmem(hay, len, needle, strlen(needle));
}

int
pkey_pem_is_encrypted(const char *pem, size_t len)
{
	return pkey_find(pem, len, PEM_BEGIN "ENCRYPTED PRIVATE KEY-----") != NULL;
}

/* A key comment from the friendlyName attribute, as UTF-8 without control characters. */
static char *
pkey_p8_get_comment(const PKCS8_PRIV_KEY_INFO *p8)
{
	const STACK_OF(X509_ATTRIBUTE) *attrs = PKCS8_pkey_get0_attrs(p8);
	X509_ATTRIBUTE *attr;
	ASN1_TYPE *t;
	unsigned char *utf8 = NULL;
	char *s = NULL;
	int i, n;

	if ((i = X509at_get_attr_by_NID(attrs, NID_friendlyName, -1)) < 0)
		return NULL;
	if ((attr = X509at_get_attr(attrs, i)) == NULL ||
	        (t = X509_ATTRIBUTE_get0_type(attr, 0)) == NULL)
		return NULL;
	if (t->type != V_ASN1_BMPSTRING && t->type != V_ASN1_UTF8STRING)
		return NULL;
	if ((n = ASN1_STRING_to_UTF8(&utf8, t->value.asn1_string)) <= 0 || n > PKEY_COMMENT_MAX)
		goto out;
	for (i = 0; i < n; i++)
		if (utf8[i] < 0x20 || utf8[i] == 0x7f)
			goto out;
	if ((s = malloc((size_t)n + 1)) == NULL)
		goto out;
	memcpy(s, utf8, (size_t)n);
	s[n] = '\0';
out:
	OPENSSL_free(utf8);
	return s;
}

int
pkey_private_from_pem(
        EVP_PKEY **out, char **comment, const char *pem, size_t len, const char *passphrase)
{
	BIO *bio = NULL;
	char *name = NULL, *header = NULL;
	unsigned char *data = NULL;
	const unsigned char *p;
	long dlen = 0;
	X509_SIG *sig = NULL;
	PKCS8_PRIV_KEY_INFO *p8 = NULL;
	EVP_PKEY *pkey = NULL;
	const char *begin;
	int r = SOTTO_ERR_FORMAT, encrypted;

	*out = NULL;
	if (comment != NULL)
		*comment = NULL;
	if ((begin = pkey_find(pem, len, PEM_BEGIN)) == NULL)
		goto out;
	if (pkey_find(begin, len - (size_t)(begin - pem), PEM_END) == NULL) {
		r = SOTTO_ERR_SHORT;
		goto out;
	}
	if (len > PKEY_PEM_MAX || (bio = BIO_new_mem_buf(pem, (int)len)) == NULL) {
		r = len > PKEY_PEM_MAX ? SOTTO_ERR_RANGE : SOTTO_ERR_NOMEM;
		goto out;
	}
	if (PEM_read_bio(bio, &name, &header, &data, &dlen) != 1 || dlen <= 0)
		goto out;
	p = data;
	if (strcmp(name, "ENCRYPTED PRIVATE KEY") == 0) {
		encrypted = 1;
		if ((sig = d2i_X509_SIG(NULL, &p, dlen)) == NULL || p != data + dlen)
			goto out;
	} else if (strcmp(name, "PRIVATE KEY") == 0) {
		encrypted = 0;
		if ((p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, dlen)) == NULL || p != data + dlen)
			goto out;
	} else
		goto out;
	if (encrypted) {
		/* Any failure past a well-formed envelope means the passphrase did not fit. */
		r = SOTTO_ERR_PASSPHRASE;
		if (passphrase == NULL)
			goto out;
		if ((p8 = PKCS8_decrypt(sig, passphrase, (int)strlen(passphrase))) == NULL)
			goto out;
	}
	r = SOTTO_ERR_FORMAT;
	if ((pkey = EVP_PKCS82PKEY(p8)) == NULL)
		goto out;
	if (pkey_kind(pkey) == PKEY_UNSUPPORTED) {
		r = SOTTO_ERR_UNSUPPORTED;
		goto out;
	}
	if (comment != NULL)
		*comment = pkey_p8_get_comment(p8);
	*out = pkey;
	pkey = NULL;
	r = 0;
out:
	EVP_PKEY_free(pkey);
	PKCS8_PRIV_KEY_INFO_free(p8);
	X509_SIG_free(sig);
	OPENSSL_free(name);
	OPENSSL_free(header);
	if (data != NULL)
		OPENSSL_clear_free(data, (size_t)dlen);
	BIO_free(bio);
	ERR_clear_error();
	return r;
}

int
pkey_spki_der(uint8_t **der, size_t *len, const EVP_PKEY *pkey)
{
	unsigned char *tmp = NULL;
	int n;

	*der = NULL;
	*len = 0;
	if ((n = i2d_PUBKEY(pkey, &tmp)) <= 0) {
		ERR_clear_error();
		return SOTTO_ERR_CRYPTO;
	}
	if ((*der = malloc((size_t)n)) == NULL) {
		OPENSSL_free(tmp);
		return SOTTO_ERR_NOMEM;
	}
	memcpy(*der, tmp, (size_t)n);
	*len = (size_t)n;
	OPENSSL_free(tmp);
	return 0;
}

int
pkey_from_spki_der(EVP_PKEY **out, const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	EVP_PKEY *pkey = NULL;
	uint8_t *again = NULL;
	size_t againlen = 0;
	int r = SOTTO_ERR_FORMAT;

	*out = NULL;
	if (len == 0 || len > PKEY_SPKI_MAX)
		goto out;
	if ((pkey = d2i_PUBKEY(NULL, &p, (long)len)) == NULL || p != der + len)
		goto out;
	if (pkey_kind(pkey) == PKEY_UNSUPPORTED) {
		r = SOTTO_ERR_UNSUPPORTED;
		goto out;
	}
	/* Exactly one encoding per key, so that fingerprints compare like keys. */
	if ((r = pkey_spki_der(&again, &againlen, pkey)) != 0)
		goto out;
	if (againlen != len || memcmp(again, der, len) != 0) {
		r = SOTTO_ERR_FORMAT;
		goto out;
	}
	*out = pkey;
	pkey = NULL;
	r = 0;
out:
	free(again);
	EVP_PKEY_free(pkey);
	ERR_clear_error();
	return r;
}

int
pkey_public_to_pem(char **out, size_t *len, const EVP_PKEY *pkey)
{
	BIO *bio;
	int r = SOTTO_ERR_CRYPTO;

	*out = NULL;
	*len = 0;
	if ((bio = BIO_new(BIO_s_mem())) == NULL)
		return SOTTO_ERR_NOMEM;
	if (PEM_write_bio_PUBKEY(bio, pkey) == 1)
		r = pkey_bio_to_string(out, len, bio);
	BIO_free(bio);
	ERR_clear_error();
	return r;
}

int
pkey_public_from_pem(EVP_PKEY **out, const char *pem, size_t len)
{
	BIO *bio = NULL;
	char *name = NULL, *header = NULL;
	unsigned char *data = NULL;
	long dlen = 0;
	const char *begin;
	int r = SOTTO_ERR_FORMAT;

	*out = NULL;
	if ((begin = pkey_find(pem, len, PEM_BEGIN)) == NULL)
		goto out;
	if (pkey_find(begin, len - (size_t)(begin - pem), PEM_END) == NULL) {
		r = SOTTO_ERR_SHORT;
		goto out;
	}
	if (len > PKEY_PEM_MAX || (bio = BIO_new_mem_buf(pem, (int)len)) == NULL) {
		r = len > PKEY_PEM_MAX ? SOTTO_ERR_RANGE : SOTTO_ERR_NOMEM;
		goto out;
	}
	if (PEM_read_bio(bio, &name, &header, &data, &dlen) != 1 || dlen <= 0 ||
	        strcmp(name, "PUBLIC KEY") != 0)
		goto out;
	r = pkey_from_spki_der(out, data, (size_t)dlen);
out:
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(data);
	BIO_free(bio);
	ERR_clear_error();
	return r;
}
