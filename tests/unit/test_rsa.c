/* Tests for crypto/rsa: OAEP and PSS with generated and fixed keys, DER parsing, Wycheproof. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "crypto/rsa.h"
#include "crypto/util.h"
#include "tests/lib/vectors.h"

static void
setup(void)
{
	cr_assert_eq(sotto_crypto_init(), 0);
}

/* cppcheck-suppress unknownMacro */
TestSuite(rsa, .init = setup);

/*
 * A 3072-bit PKCS#8 key made for these tests with `openssl genpkey`; it
 * protects nothing.  Being fixed, it spares a second slow key generation and
 * serves as "the wrong key" next to the generated one.
 */
static const char fixture_p8_hex[] = "308206fc020100300d06092a864886f70d0101010500048206e6308206e20"
                                     "201000282018100a9e1dca1a796f7bc1d6f"
                                     "fbe3306a6e7f02074cdffe179716b0b432b67c24ac9c4b3d1651b0b8e9762"
                                     "c9159a2ea6c4d0f022dd246f3685b470847"
                                     "7ca02a3619b89420b24f3ae1fc764723211a6c084aaf03a73adf7a0bfcc64"
                                     "6a362fa88a7bf84aec7a94bc2833d280947"
                                     "61af9fc2e57e573da38170ae40e2be376921a0c86a2351dad3cedb4a50e3c"
                                     "7c172bdb7905c64757886adbd8ab86ec7d3"
                                     "ef950f1c089ee90c70db664392a478e84c667e6b1bd5450aac7e559372d36"
                                     "2747064f248e244f86f5457aa868144369a"
                                     "417d7e665a15e700f5e61b420e29efe179b404a1b9a2031b3643a3bfb78f6"
                                     "ad9e3412e6440172c85a6898a83cd654697"
                                     "a0d8bb7f2209eb4dc77523cb10cce823fce2c7a23d718a27817b49e8c64e0"
                                     "7b3bb0480ce4d0f52e06736d7505278221d"
                                     "0d9dc78787dc034f6df67b467f319bb86d12163b35cb267793eb17b5a7534"
                                     "c2cdd8a68220a1e4cddc91be6e54b22e467"
                                     "36c93668f5399281c73d08247b6ab883b6628a7451dbec27fa705910e2520"
                                     "4dac629c5c091850203010001028201800b"
                                     "e21b6b889910f1d368ec3bd509ab473b4e64d2bd1b18bbcfb0b3316fa43fe"
                                     "65c1ef84b01f855538ff788145338965eef"
                                     "17c9400918915c605862330a5741758a9171be04dceb5decaf5c172228d91"
                                     "fbe5493a09610a865fb69910562cb2857bd"
                                     "c3510e6fe8153e5ecd63c203ea9913a3a937d43f02ac9ea95d064c81caffe"
                                     "a752b735d490109e749dab8677f238f4af3"
                                     "443fbeb2e5ceba4eaab1dbb4b45dce68ab17371676b230fe1558fb9604710"
                                     "613c961a75511500e384c27068a43c118d5"
                                     "6206b18de20e68c55aeca232d2ea5bd2ea9e4bfea73eb6dbf2c7e1829fcd8"
                                     "40f8332de4d2b7b42f6f7d29df63dac144c"
                                     "3d7b3a295a1019363922abcb3faa1607668615b3d8cee2a8d258c8926f564"
                                     "96a83aef412e332309c3a72e355e65caa48"
                                     "a786b2603eb3a2ef72ef259afa7c10ddbd1ad83f9c84bbea6079517a8cf9d"
                                     "044f1394b7efc156bf0f707e2514cf05165"
                                     "d755f7aa479130e3c59ed85c05322c829a8a93d56af34461136262b81fb02"
                                     "4627e026d8d7f4a5b266425b14a76972b02"
                                     "81c100d9cf467348e549216ffa8ec99ca39f916f9093cd92c4d1eae1378b2"
                                     "903b0603cf167aaa2ea79d2357c30ada007"
                                     "707320594a254ed19d5c7e6755f77495836636a34b51abe988c458606e7bb"
                                     "c3ef065ab169916c3c73cd44756944e2d3a"
                                     "dd73c618e48a7fe26649d987e7587c20bb17ce36974f8d07ff1b02a1c4ab0"
                                     "452d5faa2bb575f4a451e4e23a8e0e3f11a"
                                     "c702d1809e8b0079143b1b9d7bc4a49aa5b0cf111e7b009a37003a693e2db"
                                     "469572cdb8032e0a032f488fb72f40881c5"
                                     "197a8f0281c100c7ab4a886a4bc4e4402ec04847e405e44e285cada891933"
                                     "8a053d21496bc141b6d7e0c9308d6b8ed00"
                                     "f33f255e2af3281dcfc656870db4f4087463bb3633d08c877d1d2dc9970b3"
                                     "8b324a5e7ba00dbf3038c0307c6cbc2a33a"
                                     "b4723de56940d9779f5def49de79aa62d230bcb9bad6d4660dcc9db470249"
                                     "233e9776abe42ac07c508758b58bce2b28f"
                                     "dee227415e5b0fe5e35e9e6664b21ebba9fdd9ffb5015d8316950193b4c8e"
                                     "e6df6ffb12d86fc38a0232182a4ae79b0f2"
                                     "e5110426b30cab0281c052586bd120091769ddd50370b398a4b62e50a1a08"
                                     "1d1896f5c704c5b583ab157b908b159607e"
                                     "67fbb29510bf44b0bdc5c81c2118b864ded827273823ca76e008de1996aa0"
                                     "0e3a51fa86d7cb841af4f30ac9d7a1ed04f"
                                     "6e0dfe6c9955be408509aad5948b1ec3ff3d8f84e64e1f6dbc6548fc51a60"
                                     "714ea5847627c29694bdeb2f152ea02c138"
                                     "e0dfd87415994cbf5a906c2904724c545ab86904a6e67855161062ef7c1f5"
                                     "12e6416b13d41b8486f1dd56a9551991f4a"
                                     "961342758255d577797f0281c03bcb3614c8104cb435ec4a34db2294091cc"
                                     "6c58a53d2d48dbea59b620309ebd392e48e"
                                     "8b71b82bc4fde5da612c641c51452c35af2fde90f40b9c1f49af1fb132845"
                                     "899665eda56c7f20de5891190b44d80206b"
                                     "bfe66e9aa91b297294caa0cc84d367ec4f7e859b55c52640e62390aa490d0"
                                     "ed0d9e1713be2749d53dfa97e79da11cd48"
                                     "b6242adc90b0b9046cd10c9aa4962992ea48ab9b13cd0b49340179892121e"
                                     "29f58cb8cf62740d3191b4c1102734ab17a"
                                     "958f0f98edbeaf8e7af9c3e0e50281c05e6a6ec61b6d021d4c521888b52cb"
                                     "70a85a00d6ef5fe1d7782689f93425a67f3"
                                     "d2f282711e0b5c3d8d88943ecf329fa1b4eb8213e7f0f971592cf77eb2c35"
                                     "0f48b8053ad17ecf75edbe652c2dfc3d1c5"
                                     "ab536e576c90cf93b3a72e3b8806db65d64a989b4c2d3a1c9d4f5f210e0c9"
                                     "f90b24f7d4c416cda5b63346741ede75a00"
                                     "9de7abfdd5352e68fea6e2a823beb56b955b23cb9ff68e9d4479d73583180"
                                     "a63527328f547c0d059b398bb1aae5b4b76"
                                     "23fc34c33fb81582514361045071f2be";

static EVP_PKEY *
fixture_key(void)
{
	EVP_PKEY *k = NULL;
	uint8_t *der;
	size_t len;

	der = vectors_unhex(fixture_p8_hex, &len);
	cr_assert_eq(rsa_private_from_der(&k, der, len), 0);
	cr_assert_not_null(k);
	free(der);
	return k;
}

/* The DER SubjectPublicKeyInfo of k, in OPENSSL_malloc'd memory. */
static uint8_t *
spki_der(const EVP_PKEY *k, size_t *len)
{
	uint8_t *der = NULL;
	int n;

	n = i2d_PUBKEY(k, &der);
	cr_assert_gt(n, 0);
	*len = (size_t)n;
	return der;
}

/* The DER PKCS#8 PrivateKeyInfo of k, in OPENSSL_malloc'd memory. */
static uint8_t *
pkcs8_der(const EVP_PKEY *k, size_t *len)
{
	PKCS8_PRIV_KEY_INFO *p8;
	uint8_t *der = NULL;
	int n;

	p8 = EVP_PKEY2PKCS8(k);
	cr_assert_not_null(p8);
	n = i2d_PKCS8_PRIV_KEY_INFO(p8, &der);
	cr_assert_gt(n, 0);
	PKCS8_PRIV_KEY_INFO_free(p8);
	*len = (size_t)n;
	return der;
}

/* A public-only copy of k, through its SPKI encoding. */
static EVP_PKEY *
public_copy(const EVP_PKEY *k)
{
	EVP_PKEY *pub = NULL;
	uint8_t *der;
	size_t len;

	der = spki_der(k, &len);
	cr_assert_eq(rsa_public_from_der(&pub, der, len), 0);
	OPENSSL_free(der);
	return pub;
}

Test(rsa, identity_sizes)
{
	cr_assert_eq(rsa_identity_bits_ok(3072), 1);
	cr_assert_eq(rsa_identity_bits_ok(4096), 1);
	cr_assert_eq(rsa_identity_bits_ok(2048), 0);
	cr_assert_eq(rsa_identity_bits_ok(1024), 0);
	cr_assert_eq(rsa_identity_bits_ok(3071), 0);
	cr_assert_eq(rsa_identity_bits_ok(3073), 0);
	cr_assert_eq(rsa_identity_bits_ok(8192), 0);
	cr_assert_eq(rsa_identity_bits_ok(0), 0);
	cr_assert_eq(rsa_identity_bits_ok(-3072), 0);
}

Test(rsa, generate_refuses_other_sizes)
{
	static const int bad[] = {2048, 1024, 0, -1, 3071, 3073, 8192};
	EVP_PKEY *k = (EVP_PKEY *)1;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(rsa_generate(&k, bad[i]), SOTTO_ERR_UNSUPPORTED, "%d bits", bad[i]);
		cr_assert_null(k, "%d bits: output not cleared", bad[i]);
	}
	cr_assert_eq(rsa_generate(NULL, 3072), SOTTO_ERR_INVALID);
}

/* Everything that needs a freshly generated key shares this one 3072-bit key. */
Test(rsa, generated_3072_key)
{
	static const uint8_t label[] = "sotto-x3dh-v1";
	EVP_PKEY *key = NULL, *pub, *other, *other_pub;
	uint8_t m[RSA_MAX_BYTES], c[RSA_MAX_BYTES], c2[RSA_MAX_BYTES], back[RSA_MAX_BYTES];
	uint8_t sig[RSA_MAX_BYTES], sig2[RSA_MAX_BYTES];
	size_t clen, c2len, backlen, siglen, sig2len, maxm;

	cr_assert_eq(rsa_generate(&key, 3072), 0);
	cr_assert_not_null(key);
	cr_assert_eq(rsa_bits(key), 3072);
	pub = public_copy(key);
	cr_assert_eq(rsa_bits(pub), 3072);
	other = fixture_key();
	other_pub = public_copy(other);
	sotto_random(m, sizeof(m));

	/* OAEP without a label; encryption is randomized. */
	cr_assert_eq(rsa_oaep_encrypt(c, sizeof(c), &clen, m, 32, pub, NULL, 0), 0);
	cr_assert_eq(clen, 384);
	cr_assert_eq(rsa_oaep_encrypt(c2, sizeof(c2), &c2len, m, 32, pub, NULL, 0), 0);
	cr_assert_arr_neq(c, c2, clen);
	cr_assert_eq(rsa_oaep_decrypt(back, sizeof(back), &backlen, c, clen, key, NULL, 0), 0);
	cr_assert_eq(backlen, 32);
	cr_assert_arr_eq(back, m, 32);
	cr_assert_eq(rsa_oaep_decrypt(back, sizeof(back), &backlen, c2, c2len, key, NULL, 0), 0);
	cr_assert_arr_eq(back, m, 32);
	/* An output buffer of exactly the plaintext size is enough. */
	cr_assert_eq(rsa_oaep_decrypt(back, 32, &backlen, c, clen, key, NULL, 0), 0);
	cr_assert_arr_eq(back, m, 32);
	cr_assert_eq(rsa_oaep_decrypt(back, 31, &backlen, c, clen, key, NULL, 0), SOTTO_ERR_VERIFY);
	cr_assert_eq(backlen, 0);

	/* OAEP with a label: the label must match exactly. */
	cr_assert_eq(rsa_oaep_encrypt(c2, sizeof(c2), &c2len, m, 32, pub, label, sizeof(label)), 0);
	cr_assert_eq(rsa_oaep_decrypt(
	                     back, sizeof(back), &backlen, c2, c2len, key, label, sizeof(label)),
	        0);
	cr_assert_eq(backlen, 32);
	cr_assert_arr_eq(back, m, 32);
	cr_assert_eq(rsa_oaep_decrypt(back, sizeof(back), &backlen, c2, c2len, key, NULL, 0),
	        SOTTO_ERR_VERIFY);
	cr_assert_eq(rsa_oaep_decrypt(back, sizeof(back), &backlen, c2, c2len, key, label,
	                     sizeof(label) - 1),
	        SOTTO_ERR_VERIFY);
	cr_assert_eq(
	        rsa_oaep_decrypt(back, sizeof(back), &backlen, c, clen, key, label, sizeof(label)),
	        SOTTO_ERR_VERIFY);

	/* Message sizes: empty, the maximum k - 2*32 - 2, and one more. */
	maxm = 384 - 2 * 32 - 2;
	cr_assert_eq(rsa_oaep_encrypt(c, sizeof(c), &clen, NULL, 0, pub, NULL, 0), 0);
	cr_assert_eq(rsa_oaep_decrypt(back, sizeof(back), &backlen, c, clen, key, NULL, 0), 0);
	cr_assert_eq(backlen, 0);
	cr_assert_eq(rsa_oaep_encrypt(c, sizeof(c), &clen, m, maxm, pub, NULL, 0), 0);
	cr_assert_eq(rsa_oaep_decrypt(back, sizeof(back), &backlen, c, clen, key, NULL, 0), 0);
	cr_assert_eq(backlen, maxm);
	cr_assert_arr_eq(back, m, maxm);
	cr_assert_eq(rsa_oaep_encrypt(c2, sizeof(c2), &c2len, m, maxm + 1, pub, NULL, 0),
	        SOTTO_ERR_RANGE);
	cr_assert_eq(rsa_oaep_encrypt(c2, 383, &c2len, m, 32, pub, NULL, 0), SOTTO_ERR_SHORT);
	cr_assert_eq(c2len, 0);

	/* Tampered, truncated, extended ciphertexts and the wrong key: all SOTTO_ERR_VERIFY. */
	cr_assert_eq(rsa_oaep_encrypt(c, sizeof(c), &clen, m, 32, pub, NULL, 0), 0);
	c[100] ^= 0x01;
	cr_assert_eq(rsa_oaep_decrypt(back, sizeof(back), &backlen, c, clen, key, NULL, 0),
	        SOTTO_ERR_VERIFY);
	cr_assert_eq(ERR_peek_error(), 0, "an OpenSSL error leaked out");
	c[100] ^= 0x01;
	cr_assert_eq(rsa_oaep_decrypt(back, sizeof(back), &backlen, c, clen - 1, key, NULL, 0),
	        SOTTO_ERR_VERIFY);
	c[clen] = 0;
	cr_assert_eq(rsa_oaep_decrypt(back, sizeof(back), &backlen, c, clen + 1, key, NULL, 0),
	        SOTTO_ERR_VERIFY);
	cr_assert_eq(rsa_oaep_decrypt(back, sizeof(back), &backlen, c, clen, other, NULL, 0),
	        SOTTO_ERR_VERIFY);
	cr_assert_eq(ERR_peek_error(), 0, "an OpenSSL error leaked out");
	cr_assert_neq(rsa_oaep_decrypt(back, sizeof(back), &backlen, c, clen, pub, NULL, 0), 0,
	        "decrypted with a public key");
	cr_assert_eq(rsa_oaep_decrypt(back, sizeof(back), &backlen, c, clen, key, NULL, 0), 0);
	cr_assert_arr_eq(back, m, 32);

	/* PSS: randomized salt, so two signatures differ and both verify. */
	cr_assert_eq(rsa_pss_sign(sig, sizeof(sig), &siglen, m, 100, key), 0);
	cr_assert_eq(siglen, 384);
	cr_assert_eq(rsa_pss_sign(sig2, sizeof(sig2), &sig2len, m, 100, key), 0);
	cr_assert_arr_neq(sig, sig2, siglen);
	cr_assert_eq(rsa_pss_verify(sig, siglen, m, 100, pub), 0);
	cr_assert_eq(rsa_pss_verify(sig2, sig2len, m, 100, pub), 0);
	cr_assert_eq(rsa_pss_verify(sig, siglen, m, 100, key), 0);
	cr_assert_eq(rsa_pss_verify(sig, siglen, m, 99, pub), SOTTO_ERR_VERIFY);
	m[0] ^= 0x80;
	cr_assert_eq(rsa_pss_verify(sig, siglen, m, 100, pub), SOTTO_ERR_VERIFY);
	m[0] ^= 0x80;
	sig[200] ^= 0x04;
	cr_assert_eq(rsa_pss_verify(sig, siglen, m, 100, pub), SOTTO_ERR_VERIFY);
	cr_assert_eq(ERR_peek_error(), 0, "an OpenSSL error leaked out");
	sig[200] ^= 0x04;
	cr_assert_eq(rsa_pss_verify(sig, siglen - 1, m, 100, pub), SOTTO_ERR_VERIFY);
	sig[siglen] = 0;
	cr_assert_eq(rsa_pss_verify(sig, siglen + 1, m, 100, pub), SOTTO_ERR_VERIFY);
	cr_assert_eq(rsa_pss_verify(sig, siglen, m, 100, other_pub), SOTTO_ERR_VERIFY);
	cr_assert_eq(rsa_pss_verify(sig, siglen, m, 100, pub), 0);
	cr_assert_eq(rsa_pss_sign(sig2, 383, &sig2len, m, 100, key), SOTTO_ERR_SHORT);
	cr_assert_eq(sig2len, 0);
	cr_assert_neq(rsa_pss_sign(sig2, sizeof(sig2), &sig2len, m, 100, pub), 0,
	        "signed with a public key");
	cr_assert_eq(ERR_peek_error(), 0, "an OpenSSL error leaked out");
	/* The empty message. */
	cr_assert_eq(rsa_pss_sign(sig2, sizeof(sig2), &sig2len, NULL, 0, key), 0);
	cr_assert_eq(rsa_pss_verify(sig2, sig2len, NULL, 0, pub), 0);
	cr_assert_eq(rsa_pss_verify(sig2, sig2len, m, 1, pub), SOTTO_ERR_VERIFY);

	EVP_PKEY_free(other_pub);
	EVP_PKEY_free(other);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(key);
}

Test(rsa, generated_4096_key)
{
	EVP_PKEY *key = NULL;
	uint8_t m[64], c[RSA_MAX_BYTES], back[RSA_MAX_BYTES], sig[RSA_MAX_BYTES];
	size_t clen, backlen, siglen;

	cr_assert_eq(rsa_generate(&key, 4096), 0);
	cr_assert_eq(rsa_bits(key), 4096);
	sotto_random(m, sizeof(m));
	cr_assert_eq(rsa_oaep_encrypt(c, sizeof(c), &clen, m, sizeof(m), key, NULL, 0), 0);
	cr_assert_eq(clen, 512);
	cr_assert_eq(rsa_oaep_decrypt(back, sizeof(back), &backlen, c, clen, key, NULL, 0), 0);
	cr_assert_eq(backlen, sizeof(m));
	cr_assert_arr_eq(back, m, sizeof(m));
	cr_assert_eq(rsa_pss_sign(sig, sizeof(sig), &siglen, m, sizeof(m), key), 0);
	cr_assert_eq(siglen, 512);
	cr_assert_eq(rsa_pss_verify(sig, siglen, m, sizeof(m), key), 0);
	sig[0] ^= 1;
	cr_assert_eq(rsa_pss_verify(sig, siglen, m, sizeof(m), key), SOTTO_ERR_VERIFY);
	EVP_PKEY_free(key);
}

/* The parameters are fixed: other salt lengths and OAEP hashes must not verify or decrypt. */
Test(rsa, parameters_are_enforced)
{
	EVP_PKEY *key = fixture_key();
	EVP_MD_CTX *mctx;
	EVP_PKEY_CTX *pctx = NULL;
	uint8_t m[32] = {1, 2, 3}, sig[RSA_MAX_BYTES], c[RSA_MAX_BYTES], back[RSA_MAX_BYTES];
	size_t siglen = sizeof(sig), clen = sizeof(c), backlen;
	int saltlen;

	/* OpenSSL itself: PSS-SHA256 with salt lengths 20 and 32. */
	for (saltlen = 20; saltlen <= 32; saltlen += 12) {
		mctx = EVP_MD_CTX_new();
		cr_assert_not_null(mctx);
		cr_assert_eq(EVP_DigestSignInit(mctx, &pctx, EVP_sha256(), NULL, key), 1);
		cr_assert_eq(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
		cr_assert_eq(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, saltlen), 1);
		cr_assert_eq(EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()), 1);
		siglen = sizeof(sig);
		cr_assert_eq(EVP_DigestSign(mctx, sig, &siglen, m, sizeof(m)), 1);
		EVP_MD_CTX_free(mctx);
		cr_assert_eq(rsa_pss_verify(sig, siglen, m, sizeof(m), key),
		        saltlen == RSA_PSS_SALTBYTES ? 0 : SOTTO_ERR_VERIFY, "salt length %d",
		        saltlen);
	}

	/* OpenSSL itself: OAEP with its default SHA-1. */
	pctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
	cr_assert_not_null(pctx);
	cr_assert_eq(EVP_PKEY_encrypt_init(pctx), 1);
	cr_assert_eq(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING), 1);
	cr_assert_eq(EVP_PKEY_encrypt(pctx, c, &clen, m, sizeof(m)), 1);
	EVP_PKEY_CTX_free(pctx);
	cr_assert_eq(rsa_oaep_decrypt(back, sizeof(back), &backlen, c, clen, key, NULL, 0),
	        SOTTO_ERR_VERIFY);
	EVP_PKEY_free(key);
}

Test(rsa, der_parsing)
{
	EVP_PKEY *k = NULL, *key = fixture_key(), *ed, *small;
	uint8_t *p8, *spki, *buf, *pkcs1 = NULL;
	size_t p8len, spkilen;
	int n;

	cr_assert_eq(rsa_bits(key), 3072);
	p8 = vectors_unhex(fixture_p8_hex, &p8len);
	spki = spki_der(key, &spkilen);

	/* Good encodings, and each one only in its own slot. */
	cr_assert_eq(rsa_public_from_der(&k, spki, spkilen), 0);
	cr_assert_eq(rsa_bits(k), 3072);
	cr_assert_eq(EVP_PKEY_eq(k, key), 1);
	EVP_PKEY_free(k);
	k = (EVP_PKEY *)1;
	cr_assert_eq(rsa_private_from_der(&k, spki, spkilen), SOTTO_ERR_FORMAT);
	cr_assert_null(k);
	k = (EVP_PKEY *)1;
	cr_assert_eq(rsa_public_from_der(&k, p8, p8len), SOTTO_ERR_FORMAT);
	cr_assert_null(k);

	/* Trailing, missing and mangled bytes. */
	buf = malloc(p8len + 1);
	cr_assert_not_null(buf);
	memcpy(buf, p8, p8len);
	buf[p8len] = 0;
	cr_assert_eq(rsa_private_from_der(&k, buf, p8len + 1), SOTTO_ERR_FORMAT);
	cr_assert_eq(rsa_private_from_der(&k, buf, p8len - 1), SOTTO_ERR_FORMAT);
	cr_assert_eq(rsa_private_from_der(&k, buf, 0), SOTTO_ERR_FORMAT);
	cr_assert_eq(rsa_private_from_der(&k, NULL, 10), SOTTO_ERR_FORMAT);
	buf[0] = 0x31;
	cr_assert_eq(rsa_private_from_der(&k, buf, p8len), SOTTO_ERR_FORMAT);
	free(buf);
	buf = malloc(spkilen + 1);
	cr_assert_not_null(buf);
	memcpy(buf, spki, spkilen);
	buf[spkilen] = 0;
	cr_assert_eq(rsa_public_from_der(&k, buf, spkilen + 1), SOTTO_ERR_FORMAT);
	cr_assert_eq(rsa_public_from_der(&k, buf, spkilen - 1), SOTTO_ERR_FORMAT);
	cr_assert_eq(rsa_public_from_der(&k, buf, 0), SOTTO_ERR_FORMAT);
	cr_assert_null(k);
	free(buf);
	cr_assert_eq(ERR_peek_error(), 0, "an OpenSSL error leaked out");

	/* The old PKCS#1 RSAPrivateKey form is not PKCS#8. */
	n = i2d_PrivateKey(key, &pkcs1);
	cr_assert_gt(n, 0);
	cr_assert_eq(rsa_private_from_der(&k, pkcs1, (size_t)n), SOTTO_ERR_FORMAT);
	OPENSSL_free(pkcs1);

	/* Not RSA: Ed25519. */
	ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	cr_assert_not_null(ed);
	OPENSSL_free(spki);
	spki = spki_der(ed, &spkilen);
	cr_assert_eq(rsa_public_from_der(&k, spki, spkilen), SOTTO_ERR_FORMAT);
	OPENSSL_free(p8);
	p8 = pkcs8_der(ed, &p8len);
	cr_assert_eq(rsa_private_from_der(&k, p8, p8len), SOTTO_ERR_FORMAT);
	cr_assert_null(k);
	cr_assert_eq(rsa_bits(ed), SOTTO_ERR_INVALID);
	cr_assert_eq(rsa_pss_verify(spki, 64, spki, 1, ed), SOTTO_ERR_INVALID);
	cr_assert_eq(rsa_bits(NULL), SOTTO_ERR_INVALID);

	/* RSA, but too small. */
	small = EVP_RSA_gen(1024);
	cr_assert_not_null(small);
	OPENSSL_free(spki);
	spki = spki_der(small, &spkilen);
	cr_assert_eq(rsa_public_from_der(&k, spki, spkilen), SOTTO_ERR_UNSUPPORTED);
	OPENSSL_free(p8);
	p8 = pkcs8_der(small, &p8len);
	cr_assert_eq(rsa_private_from_der(&k, p8, p8len), SOTTO_ERR_UNSUPPORTED);
	cr_assert_null(k);
	cr_assert_eq(rsa_bits(small), 1024);
	cr_assert_eq(rsa_pss_verify(spki, 128, spki, 1, small), SOTTO_ERR_UNSUPPORTED);
	cr_assert_eq(ERR_peek_error(), 0, "an OpenSSL error leaked out");

	OPENSSL_free(p8);
	OPENSSL_free(spki);
	EVP_PKEY_free(small);
	EVP_PKEY_free(ed);
	EVP_PKEY_free(key);
}

/* One parsed key per Wycheproof group, reused by the group's cases. */
struct rsa_wp {
	const struct json *group;
	EVP_PKEY *key;
	int private;
};

static EVP_PKEY *
rsa_wp_key(struct wp_case *c, struct rsa_wp *w)
{
	const uint8_t *der;
	size_t len;
	int r;

	if (w->group == c->group)
		return w->key;
	EVP_PKEY_free(w->key);
	w->key = NULL;
	w->group = c->group;
	if (w->private) {
		der = wp_hex(c, "privateKeyPkcs8", &len);
		r = rsa_private_from_der(&w->key, der, len);
	} else {
		der = wp_hex(c, "publicKeyDer", &len);
		r = rsa_public_from_der(&w->key, der, len);
	}
	cr_assert_eq(r, 0, "tcId %lld: key: %s", c->tcid, sotto_strerror(r));
	cr_assert_eq((long long)rsa_bits(w->key), wp_int(c, "keySize"));
	return w->key;
}

/* The group's hash parameters must be the ones sotto implements; nothing is skipped. */
static int
rsa_group_ok(const struct json *group, void *arg)
{
	cr_assert_str_eq(json_get_string(group, "sha"), "SHA-256");
	cr_assert_str_eq(json_get_string(group, "mgf"), "MGF1");
	cr_assert_str_eq(json_get_string(group, "mgfSha"), "SHA-256");
	return 1;
}

static int
pss_group_ok(const struct json *group, void *arg)
{
	long long slen = -1;

	cr_assert_eq(json_int(json_get(group, "sLen"), &slen), 0);
	cr_assert_eq(slen, RSA_PSS_SALTBYTES);
	return rsa_group_ok(group, arg);
}

static enum wp_outcome
oaep_case(struct wp_case *c, void *arg)
{
	EVP_PKEY *key = rsa_wp_key(c, arg);
	const uint8_t *msg, *ct, *label;
	size_t msglen, ctlen, labellen, outlen, clen;
	uint8_t out[RSA_MAX_BYTES], again[RSA_MAX_BYTES];
	int r;

	msg = wp_hex(c, "msg", &msglen);
	ct = wp_hex(c, "ct", &ctlen);
	label = wp_hex(c, "label", &labellen);
	r = rsa_oaep_decrypt(out, sizeof(out), &outlen, ct, ctlen, key, label, labellen);
	if (r == SOTTO_ERR_VERIFY)
		return outlen == 0 ? WP_REJECTED : WP_WRONG;
	if (r != 0 || outlen != msglen || memcmp(out, msg, msglen) != 0)
		return WP_WRONG;
	/* Our own encryption of the same message must come back too. */
	if (rsa_oaep_encrypt(again, sizeof(again), &clen, msg, msglen, key, label, labellen) != 0 ||
	        rsa_oaep_decrypt(out, sizeof(out), &outlen, again, clen, key, label, labellen) !=
	                0 ||
	        outlen != msglen || memcmp(out, msg, msglen) != 0)
		return WP_WRONG;
	return WP_ACCEPTED;
}

static enum wp_outcome
pss_case(struct wp_case *c, void *arg)
{
	EVP_PKEY *key = rsa_wp_key(c, arg);
	const uint8_t *msg, *sig;
	size_t msglen, siglen;
	int r;

	msg = wp_hex(c, "msg", &msglen);
	sig = wp_hex(c, "sig", &siglen);
	r = rsa_pss_verify(sig, siglen, msg, msglen, key);
	if (r == 0)
		return WP_ACCEPTED;
	return r == SOTTO_ERR_VERIFY ? WP_REJECTED : WP_WRONG;
}

static void
run_rsa_file(const char *file, int private)
{
	struct rsa_wp w = {NULL, NULL, private};
	struct wp_stats st;

	wp_run(file, private ? rsa_group_ok : pss_group_ok, private ? oaep_case : pss_case, &w,
	        &st);
	EVP_PKEY_free(w.key);
	cr_assert_gt(st.valid_passed, 0);
	cr_assert_gt(st.invalid_rejected, 0);
	cr_assert_eq(st.skipped, 0);
	cr_assert_eq(ERR_peek_error(), 0, "an OpenSSL error leaked out");
}

Test(rsa, wycheproof_oaep_2048)
{
	run_rsa_file("rsa_oaep_2048_sha256_mgf1sha256_test.json", 1);
}

Test(rsa, wycheproof_oaep_3072)
{
	run_rsa_file("rsa_oaep_3072_sha256_mgf1sha256_test.json", 1);
}

Test(rsa, wycheproof_pss_2048)
{
	run_rsa_file("rsa_pss_2048_sha256_mgf1_32_test.json", 0);
}

Test(rsa, wycheproof_pss_3072)
{
	run_rsa_file("rsa_pss_3072_sha256_mgf1_32_test.json", 0);
}

Test(rsa, wycheproof_pss_4096)
{
	run_rsa_file("rsa_pss_4096_sha256_mgf1_32_test.json", 0);
}
