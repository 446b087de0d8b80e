/* Tests for crypto/kdf: HKDF-SHA256 and HMAC-SHA256 (RFC 5869, RFC 4231, Wycheproof). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "crypto/kdf.h"
#include "crypto/util.h"
#include "tests/lib/vectors.h"

static void
setup(void)
{
	cr_assert_eq(sotto_crypto_init(), 0);
}

/* cppcheck-suppress unknownMacro */
TestSuite(kdf, .init = setup);

/* RFC 5869 appendix A, test cases 1 to 3 (HKDF-SHA256). */
static const struct {
	const char *ikm, *salt, *info, *okm;
} rfc5869[] = {
        {
                "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
                "000102030405060708090a0b0c",
                "f0f1f2f3f4f5f6f7f8f9",
                "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
                "34007208d5b887185865",
        },
        {
                "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
                "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
                "404142434445464748494a4b4c4d4e4f",
                "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
                "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
                "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
                "b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecf"
                "d0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeef"
                "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
                "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
                "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
                "cc30c58179ec3e87c14c01d5c1f3434f1d87",
        },
        {
                "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
                "",
                "",
                "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
                "9d201395faa4b61a96c8",
        },
};

Test(kdf, hkdf_rfc5869)
{
	uint8_t *ikm, *salt, *info, *okm, out[82];
	size_t ikmlen, saltlen, infolen, okmlen, i;

	for (i = 0; i < sizeof(rfc5869) / sizeof(rfc5869[0]); i++) {
		ikm = vectors_unhex(rfc5869[i].ikm, &ikmlen);
		salt = vectors_unhex(rfc5869[i].salt, &saltlen);
		info = vectors_unhex(rfc5869[i].info, &infolen);
		okm = vectors_unhex(rfc5869[i].okm, &okmlen);
		cr_assert_leq(okmlen, sizeof(out));
		memset(out, 0, sizeof(out));
		cr_assert_eq(
		        kdf_hkdf_sha256(out, okmlen, salt, saltlen, ikm, ikmlen, info, infolen), 0,
		        "case %zu", i + 1);
		cr_assert_arr_eq(out, okm, okmlen, "RFC 5869 case %zu", i + 1);
		free(ikm);
		free(salt);
		free(info);
		free(okm);
	}
}

Test(kdf, hkdf_null_salt_and_info)
{
	static const uint8_t ikm[22] = {0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b,
	        0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b};
	static const uint8_t zero[32];
	uint8_t want[42], got[42];

	/* RFC 5869 case 3 again, with NULL pointers instead of empty buffers. */
	vectors_unhex_fixed(want, sizeof(want),
	        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
	        "9d201395faa4b61a96c8");
	cr_assert_eq(kdf_hkdf_sha256(got, sizeof(got), NULL, 0, ikm, sizeof(ikm), NULL, 0), 0);
	cr_assert_arr_eq(got, want, sizeof(want));
	/* An absent salt is HashLen zero bytes (RFC 5869 section 2.2). */
	cr_assert_eq(
	        kdf_hkdf_sha256(got, sizeof(got), zero, sizeof(zero), ikm, sizeof(ikm), NULL, 0),
	        0);
	cr_assert_arr_eq(got, want, sizeof(want));
}

Test(kdf, hkdf_empty_ikm)
{
	uint8_t a[32], b[32];

	memset(a, 0x55, sizeof(a));
	memset(b, 0xaa, sizeof(b));
	cr_assert_eq(kdf_hkdf_sha256(a, sizeof(a), NULL, 0, NULL, 0, NULL, 0), 0);
	cr_assert_eq(kdf_hkdf_sha256(
	                     b, sizeof(b), NULL, 0, (const uint8_t *)"", 0, (const uint8_t *)"", 0),
	        0);
	cr_assert_arr_eq(a, b, sizeof(a));
}

Test(kdf, hkdf_output_length_limits)
{
	static const uint8_t ikm[16] = {1, 2, 3};
	uint8_t *out, full[KDF_HKDF_SHA256_MAXBYTES], one[1];

	out = malloc(KDF_HKDF_SHA256_MAXBYTES + 1);
	cr_assert_not_null(out);
	cr_assert_eq(kdf_hkdf_sha256(out, 0, NULL, 0, ikm, sizeof(ikm), NULL, 0), SOTTO_ERR_RANGE);
	cr_assert_eq(kdf_hkdf_sha256(
	                     out, KDF_HKDF_SHA256_MAXBYTES + 1, NULL, 0, ikm, sizeof(ikm), NULL, 0),
	        SOTTO_ERR_RANGE);
	cr_assert_eq(kdf_hkdf_sha256(full, sizeof(full), NULL, 0, ikm, sizeof(ikm), NULL, 0), 0);
	/* HKDF output is a prefix-stable stream. */
	cr_assert_eq(kdf_hkdf_sha256(one, sizeof(one), NULL, 0, ikm, sizeof(ikm), NULL, 0), 0);
	cr_assert_eq(one[0], full[0]);
	cr_assert_eq(kdf_hkdf_sha256(out, 100, NULL, 0, ikm, sizeof(ikm), NULL, 0), 0);
	cr_assert_arr_eq(out, full, 100);
	free(out);
}

Test(kdf, null_with_length_is_invalid)
{
	static const uint8_t ikm[16] = {1};
	uint8_t out[32];

	cr_assert_eq(kdf_hkdf_sha256(NULL, 32, NULL, 0, ikm, 16, NULL, 0), SOTTO_ERR_INVALID);
	cr_assert_eq(kdf_hkdf_sha256(out, 32, NULL, 1, ikm, 16, NULL, 0), SOTTO_ERR_INVALID);
	cr_assert_eq(kdf_hkdf_sha256(out, 32, NULL, 0, NULL, 16, NULL, 0), SOTTO_ERR_INVALID);
	cr_assert_eq(kdf_hkdf_sha256(out, 32, NULL, 0, ikm, 16, NULL, 1), SOTTO_ERR_INVALID);
	cr_assert_eq(kdf_hmac_sha256(out, NULL, 1, ikm, 16), SOTTO_ERR_INVALID);
	cr_assert_eq(kdf_hmac_sha256(out, ikm, 16, NULL, 1), SOTTO_ERR_INVALID);
	cr_assert_eq(kdf_hmac_sha256_verify(NULL, 32, ikm, 16, ikm, 16), SOTTO_ERR_VERIFY);
}

Test(kdf, hkdf_inputs_are_separated)
{
	static const uint8_t ikm[32] = {7};
	uint8_t a[32], b[32];

	cr_assert_eq(kdf_hkdf_sha256(a, 32, NULL, 0, ikm, 32, (const uint8_t *)"a", 1), 0);
	cr_assert_eq(kdf_hkdf_sha256(b, 32, NULL, 0, ikm, 32, (const uint8_t *)"b", 1), 0);
	cr_assert_arr_neq(a, b, 32);
	cr_assert_eq(kdf_hkdf_sha256(b, 32, (const uint8_t *)"a", 1, ikm, 32, NULL, 0), 0);
	cr_assert_arr_neq(a, b, 32);
}

/* RFC 4231 test cases 1, 2 and 6 (HMAC-SHA256). */
Test(kdf, hmac_rfc4231)
{
	uint8_t key[131], want[32], got[32];

	memset(key, 0x0b, 20);
	vectors_unhex_fixed(want, sizeof(want),
	        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
	cr_assert_eq(kdf_hmac_sha256(got, key, 20, (const uint8_t *)"Hi There", 8), 0);
	cr_assert_arr_eq(got, want, sizeof(want));
	cr_assert_eq(kdf_hmac_sha256_verify(want, 32, key, 20, (const uint8_t *)"Hi There", 8), 0);

	vectors_unhex_fixed(want, sizeof(want),
	        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	cr_assert_eq(kdf_hmac_sha256(got, (const uint8_t *)"Jefe", 4,
	                     (const uint8_t *)"what do ya want for nothing?", 28),
	        0);
	cr_assert_arr_eq(got, want, sizeof(want));

	memset(key, 0xaa, sizeof(key));
	vectors_unhex_fixed(want, sizeof(want),
	        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
	cr_assert_eq(
	        kdf_hmac_sha256(got, key, sizeof(key),
	                (const uint8_t *)"Test Using Larger Than Block-Size Key - Hash Key First",
	                54),
	        0);
	cr_assert_arr_eq(got, want, sizeof(want));
}

Test(kdf, hmac_empty_key_and_message)
{
	uint8_t a[32], b[32];

	/* HMAC pads the key with zeros, so an empty key equals a one-zero-byte key. */
	cr_assert_eq(kdf_hmac_sha256(a, NULL, 0, NULL, 0), 0);
	cr_assert_eq(kdf_hmac_sha256(b, (const uint8_t *)"\0", 1, (const uint8_t *)"", 0), 0);
	cr_assert_arr_eq(a, b, sizeof(a));
	cr_assert_eq(kdf_hmac_sha256_verify(a, sizeof(a), NULL, 0, NULL, 0), 0);
}

Test(kdf, hmac_verify_truncation_and_tamper)
{
	static const uint8_t key[32] = {9, 8, 7, [31] = 1};
	static const uint8_t msg[] = "message";
	uint8_t tag[32], bad[33];
	size_t n, i;

	cr_assert_eq(kdf_hmac_sha256(tag, key, sizeof(key), msg, sizeof(msg)), 0);
	for (n = 1; n <= 32; n++)
		cr_assert_eq(kdf_hmac_sha256_verify(tag, n, key, sizeof(key), msg, sizeof(msg)), 0,
		        "taglen %zu", n);
	for (i = 0; i < 32; i++) {
		memcpy(bad, tag, 32);
		bad[i] ^= 0x01;
		cr_assert_eq(kdf_hmac_sha256_verify(bad, 32, key, sizeof(key), msg, sizeof(msg)),
		        SOTTO_ERR_VERIFY, "flipped byte %zu", i);
	}
	memcpy(bad, tag, 32);
	bad[32] = 0;
	cr_assert_eq(kdf_hmac_sha256_verify(bad, 33, key, sizeof(key), msg, sizeof(msg)),
	        SOTTO_ERR_VERIFY);
	cr_assert_eq(kdf_hmac_sha256_verify(tag, 0, key, sizeof(key), msg, sizeof(msg)),
	        SOTTO_ERR_VERIFY);
	cr_assert_eq(kdf_hmac_sha256_verify(tag, 32, key, sizeof(key) - 1, msg, sizeof(msg)),
	        SOTTO_ERR_VERIFY);
	cr_assert_eq(kdf_hmac_sha256_verify(tag, 32, key, sizeof(key), msg, sizeof(msg) - 1),
	        SOTTO_ERR_VERIFY);
}

/* Wycheproof HKDF: valid sizes must match; "invalid" ones are over 255*32 bytes. */
static enum wp_outcome
hkdf_case(struct wp_case *c, void *arg)
{
	const uint8_t *ikm, *salt, *info, *okm;
	size_t ikmlen, saltlen, infolen, okmlen;
	long long size = wp_int(c, "size");
	uint8_t *out;
	enum wp_outcome o;
	int r;

	ikm = wp_hex(c, "ikm", &ikmlen);
	salt = wp_hex(c, "salt", &saltlen);
	info = wp_hex(c, "info", &infolen);
	okm = wp_hex(c, "okm", &okmlen);
	cr_assert(size > 0 && size < 65536, "tcId %lld: size %lld", c->tcid, size);
	out = malloc((size_t)size);
	cr_assert_not_null(out);
	r = kdf_hkdf_sha256(out, (size_t)size, salt, saltlen, ikm, ikmlen, info, infolen);
	if (r == SOTTO_ERR_RANGE)
		o = WP_REJECTED;
	else if (r == 0 && okmlen == (size_t)size && memcmp(out, okm, okmlen) == 0)
		o = WP_ACCEPTED;
	else
		o = WP_WRONG;
	free(out);
	return o;
}

Test(kdf, wycheproof_hkdf_sha256)
{
	struct wp_stats st;

	wp_run("hkdf_sha256_test.json", NULL, hkdf_case, NULL, &st);
	cr_assert_gt(st.valid_passed, 0);
	cr_assert_gt(st.invalid_rejected, 0);
}

/* Wycheproof HMAC: tags may be truncated (tagSize 128), so go through the verifier. */
static enum wp_outcome
hmac_case(struct wp_case *c, void *arg)
{
	const uint8_t *key, *msg, *tag;
	size_t keylen, msglen, taglen;
	uint8_t full[KDF_HMAC_SHA256_BYTES];
	int r;

	key = wp_hex(c, "key", &keylen);
	msg = wp_hex(c, "msg", &msglen);
	tag = wp_hex(c, "tag", &taglen);
	cr_assert_eq((long long)taglen * 8, wp_int(c, "tagSize"), "tcId %lld: tag length", c->tcid);
	r = kdf_hmac_sha256_verify(tag, taglen, key, keylen, msg, msglen);
	if (r == SOTTO_ERR_VERIFY)
		return WP_REJECTED;
	if (r != 0)
		return WP_WRONG;
	/* An accepted tag must also be the prefix of the one-shot HMAC. */
	if (kdf_hmac_sha256(full, key, keylen, msg, msglen) != 0 || memcmp(full, tag, taglen) != 0)
		return WP_WRONG;
	return WP_ACCEPTED;
}

Test(kdf, wycheproof_hmac_sha256)
{
	struct wp_stats st;

	wp_run("hmac_sha256_test.json", NULL, hmac_case, NULL, &st);
	cr_assert_gt(st.valid_passed, 0);
	cr_assert_gt(st.invalid_rejected, 0);
}
