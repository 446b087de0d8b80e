/* Tests for keys/pkey: PKCS#8 PEM with scrypt, SPKI DER and PEM, key kinds. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "crypto/util.h"
#include "keys/pkey.h"

#ifndef Test
/* cppcheck does not read criterion.h: let it analyse each test as a plain function. */
#define TestSuite(...)         struct test_suite_unused
#define Test(suite, name, ...) void test_##suite##_##name(void)
#endif

static void
setup(void)
{
	cr_assert_eq(sotto_crypto_init(), 0);
}

TestSuite(pkey, .init = setup);

static EVP_PKEY *
make_key(const char *type, const char *param)
{
	EVP_PKEY *k;

	if (strcmp(type, "EC") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", param);
	else if (strcmp(type, "RSA") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	else
		k = EVP_PKEY_Q_keygen(NULL, NULL, type);
	cr_assert_not_null(k, "keygen %s", type);
	return k;
}

/* The base64 body of a PEM block, decoded, to look inside the structure. */
static X509_SIG *
encrypted_envelope(const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	X509_SIG *sig = PEM_read_bio_PKCS8(bio, NULL, NULL, NULL);

	BIO_free(bio);
	cr_assert_not_null(sig);
	return sig;
}

Test(pkey, kinds_names_and_bits)
{
	EVP_PKEY *ed = make_key("ED25519", NULL), *ec = make_key("EC", "P-256");
	EVP_PKEY *ec384 = make_key("EC", "P-384"), *x = make_key("X25519", NULL);

	cr_assert_eq(pkey_kind(ed), PKEY_ED25519);
	cr_assert_str_eq(pkey_type_name(ed), "ED25519");
	cr_assert_eq(pkey_bits(ed), 256);
	cr_assert_eq(pkey_kind(ec), PKEY_ECDSA_P256);
	cr_assert_str_eq(pkey_type_name(ec), "ECDSA");
	cr_assert_eq(pkey_bits(ec), 256);
	cr_assert_eq(pkey_kind(ec384), PKEY_UNSUPPORTED);
	cr_assert_eq(pkey_kind(x), PKEY_UNSUPPORTED);
	cr_assert_str_eq(pkey_type_name(x), "UNKNOWN");
	cr_assert_eq(pkey_kind(NULL), PKEY_UNSUPPORTED);
	EVP_PKEY_free(ed);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(ec384);
	EVP_PKEY_free(x);
}

Test(pkey, rsa_kind)
{
	EVP_PKEY *rsa = make_key("RSA", NULL);

	cr_assert_eq(pkey_kind(rsa), PKEY_RSA);
	cr_assert_str_eq(pkey_type_name(rsa), "RSA");
	cr_assert_eq(pkey_bits(rsa), 2048);
	EVP_PKEY_free(rsa);
}

Test(pkey, encrypted_round_trip_with_comment)
{
	EVP_PKEY *k = make_key("ED25519", NULL), *back = NULL;
	X509_SIG *sig;
	const X509_ALGOR *alg = NULL;
	char *pem = NULL, *comment = NULL;
	size_t len = 0;

	cr_assert_eq(pkey_private_to_pem(&pem, &len, k, "correct horse", "alice@example"), 0);
	cr_assert_eq(strlen(pem), len);
	cr_assert(strncmp(pem, "-----BEGIN ENCRYPTED PRIVATE KEY-----\n", 38) == 0, "%s", pem);
	cr_assert(pkey_pem_is_encrypted(pem, len));
	/* PBES2 with scrypt, as the design asks. */
	sig = encrypted_envelope(pem);
	X509_SIG_get0(sig, &alg, NULL);
	cr_assert_eq(OBJ_obj2nid(alg->algorithm), NID_pbes2);
	X509_SIG_free(sig);

	cr_assert_eq(pkey_private_from_pem(&back, &comment, pem, len, "correct horse"), 0);
	cr_assert_eq(EVP_PKEY_eq(k, back), 1);
	cr_assert_str_eq(comment, "alice@example");
	free(comment);
	EVP_PKEY_free(back);

	cr_assert_eq(pkey_private_from_pem(&back, &comment, pem, len, "wrong horse"),
	        SOTTO_ERR_PASSPHRASE);
	cr_assert_null(back);
	cr_assert_null(comment);
	cr_assert_eq(pkey_private_from_pem(&back, NULL, pem, len, NULL), SOTTO_ERR_PASSPHRASE);
	cr_assert_eq(pkey_private_from_pem(&back, NULL, pem, len, ""), SOTTO_ERR_PASSPHRASE);
	pkey_free_buf(pem, len);
	EVP_PKEY_free(k);
}

Test(pkey, unencrypted_when_passphrase_is_empty)
{
	EVP_PKEY *k = make_key("EC", "P-256"), *back = NULL;
	char *pem = NULL, *comment = NULL;
	size_t len = 0;

	cr_assert_eq(pkey_private_to_pem(&pem, &len, k, "", NULL), 0);
	cr_assert(strncmp(pem, "-----BEGIN PRIVATE KEY-----\n", 28) == 0, "%s", pem);
	cr_assert_not(pkey_pem_is_encrypted(pem, len));
	cr_assert_eq(pkey_private_from_pem(&back, &comment, pem, len, NULL), 0);
	cr_assert_null(comment);
	cr_assert_eq(EVP_PKEY_eq(k, back), 1);
	EVP_PKEY_free(back);
	/* A passphrase given for an unencrypted key is not needed and does no harm. */
	cr_assert_eq(pkey_private_from_pem(&back, NULL, pem, len, "unused"), 0);
	EVP_PKEY_free(back);
	pkey_free_buf(pem, len);
	cr_assert_eq(pkey_private_to_pem(&pem, &len, k, NULL, NULL), 0);
	cr_assert(strncmp(pem, "-----BEGIN PRIVATE KEY-----\n", 28) == 0);
	pkey_free_buf(pem, len);
	EVP_PKEY_free(k);
}

Test(pkey, comments_outside_bmp_are_dropped)
{
	EVP_PKEY *k = make_key("ED25519", NULL), *back = NULL;
	char *pem = NULL, *comment = NULL;
	size_t len = 0;

	/* U+00E9 fits a BMPString and survives. */
	cr_assert_eq(pkey_private_to_pem(&pem, &len, k, NULL, "caf\xc3\xa9"), 0);
	cr_assert_eq(pkey_private_from_pem(&back, &comment, pem, len, NULL), 0);
	cr_assert_str_eq(comment, "caf\xc3\xa9");
	free(comment);
	EVP_PKEY_free(back);
	pkey_free_buf(pem, len);
	/* U+1F511 does not; the key is still written, without a comment. */
	cr_assert_eq(pkey_private_to_pem(&pem, &len, k, NULL, "key \xf0\x9f\x94\x91"), 0);
	cr_assert_eq(pkey_private_from_pem(&back, &comment, pem, len, NULL), 0);
	cr_assert_null(comment);
	EVP_PKEY_free(back);
	pkey_free_buf(pem, len);
	EVP_PKEY_free(k);
}

Test(pkey, damaged_and_foreign_input)
{
	EVP_PKEY *k = make_key("ED25519", NULL), *back = NULL;
	char *pem = NULL, *bad;
	size_t len = 0;

	cr_assert_eq(pkey_private_to_pem(&pem, &len, k, "pw", NULL), 0);
	/* Cut anywhere before the END line: truncated. */
	cr_assert_eq(pkey_private_from_pem(&back, NULL, pem, len / 2, "pw"), SOTTO_ERR_SHORT);
	cr_assert_eq(pkey_private_from_pem(&back, NULL, pem, 40, "pw"), SOTTO_ERR_SHORT);
	cr_assert_eq(
	        pkey_private_from_pem(&back, NULL, "hello world\n", 12, "pw"), SOTTO_ERR_FORMAT);
	cr_assert_eq(pkey_private_from_pem(&back, NULL, "", 0, "pw"), SOTTO_ERR_FORMAT);
	bad = strdup("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
	cr_assert_eq(pkey_private_from_pem(&back, NULL, bad, strlen(bad), NULL), SOTTO_ERR_FORMAT);
	free(bad);
	bad = strdup(
	        "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n");
	cr_assert_eq(pkey_private_from_pem(&back, NULL, bad, strlen(bad), NULL), SOTTO_ERR_FORMAT);
	free(bad);
	/*
	 * A flipped byte in the ciphertext reads as a wrong passphrase.  Step back
	 * from the END line past the newline and any '=' padding, so the flip lands
	 * on ciphertext and not on base64 padding (which would be malformed PEM).
	 */
	{
		char *end = strstr(pem, "-----END");
		char *at;

		cr_assert_not_null(end);
		at = end - 2;
		while (*at == '=')
			at--;
		at -= 4;
		*at = *at == 'A' ? 'B' : 'A';
	}
	cr_assert_eq(pkey_private_from_pem(&back, NULL, pem, len, "pw"), SOTTO_ERR_PASSPHRASE);
	cr_assert_null(back);
	pkey_free_buf(pem, len);
	EVP_PKEY_free(k);
}

Test(pkey, unsupported_key_types)
{
	EVP_PKEY *x = make_key("EC", "P-384"), *back = NULL;
	uint8_t *der = NULL;
	size_t derlen = 0;
	char *pem = NULL;
	size_t len = 0;
	BIO *bio = BIO_new(BIO_s_mem());
	BUF_MEM *mem = NULL;

	cr_assert_eq(pkey_private_to_pem(&pem, &len, x, NULL, NULL), SOTTO_ERR_UNSUPPORTED);
	cr_assert_eq(PEM_write_bio_PKCS8PrivateKey(bio, x, NULL, NULL, 0, NULL, NULL), 1);
	BIO_get_mem_ptr(bio, &mem);
	cr_assert_eq(pkey_private_from_pem(&back, NULL, mem->data, mem->length, NULL),
	        SOTTO_ERR_UNSUPPORTED);
	BIO_free(bio);
	cr_assert_eq(pkey_spki_der(&der, &derlen, x), 0);
	cr_assert_eq(pkey_from_spki_der(&back, der, derlen), SOTTO_ERR_UNSUPPORTED);
	free(der);
	EVP_PKEY_free(x);
}

Test(pkey, spki_der_round_trip_is_canonical)
{
	static const uint8_t ed_prefix[] = {
	        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};
	EVP_PKEY *k = make_key("ED25519", NULL), *back = NULL;
	uint8_t *der = NULL, *longer;
	size_t len = 0;

	cr_assert_eq(pkey_spki_der(&der, &len, k), 0);
	cr_assert_eq(len, 44);
	cr_assert_arr_eq(der, ed_prefix, sizeof(ed_prefix));
	cr_assert_eq(pkey_from_spki_der(&back, der, len), 0);
	cr_assert_eq(EVP_PKEY_eq(k, back), 1);
	EVP_PKEY_free(back);
	/* Trailing bytes, a cut, or nothing at all are refused. */
	longer = malloc(len + 1);
	memcpy(longer, der, len);
	longer[len] = 0;
	cr_assert_eq(pkey_from_spki_der(&back, longer, len + 1), SOTTO_ERR_FORMAT);
	cr_assert_eq(pkey_from_spki_der(&back, der, len - 1), SOTTO_ERR_FORMAT);
	cr_assert_eq(pkey_from_spki_der(&back, der, 0), SOTTO_ERR_FORMAT);
	cr_assert_null(back);
	free(longer);
	free(der);
	EVP_PKEY_free(k);
}

Test(pkey, public_pem_round_trip)
{
	EVP_PKEY *k = make_key("EC", "P-256"), *back = NULL;
	char *pem = NULL;
	size_t len = 0;

	cr_assert_eq(pkey_public_to_pem(&pem, &len, k), 0);
	cr_assert(strncmp(pem, "-----BEGIN PUBLIC KEY-----\n", 27) == 0);
	cr_assert_eq(pkey_public_from_pem(&back, pem, len), 0);
	cr_assert_eq(EVP_PKEY_eq(k, back), 1);
	EVP_PKEY_free(back);
	cr_assert_eq(pkey_public_from_pem(&back, pem, len - 20), SOTTO_ERR_SHORT);
	cr_assert_eq(pkey_public_from_pem(&back, "nothing", 7), SOTTO_ERR_FORMAT);
	free(pem);
	EVP_PKEY_free(k);
}
