/* Tests for crypto/aead: RFC 8439 and XChaCha draft vectors, Wycheproof, tamper and length checks. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "crypto/aead.h"
#include "crypto/util.h"
#include "tests/lib/vectors.h"

static void
setup(void)
{
	cr_assert_eq(sotto_crypto_init(), 0);
}

/* cppcheck-suppress unknownMacro */
TestSuite(aead, .init = setup);

static const char sunscreen[] = "Ladies and Gentlemen of the class of '99: If I could offer you "
                                "only one tip for the future, sunscreen would be it.";

/* RFC 8439 section 2.8.2. */
Test(aead, chacha_rfc8439_2_8_2)
{
	uint8_t key[AEAD_KEYBYTES], nonce[AEAD_CHACHA_NPUBBYTES], aad[12], want[114 + 16];
	uint8_t c[sizeof(want)], m[114];
	size_t mlen = strlen(sunscreen);

	cr_assert_eq(mlen, 114);
	vectors_unhex_fixed(key, sizeof(key),
	        "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
	vectors_unhex_fixed(nonce, sizeof(nonce), "070000004041424344454647");
	vectors_unhex_fixed(aad, sizeof(aad), "50515253c0c1c2c3c4c5c6c7");
	vectors_unhex_fixed(want, sizeof(want),
	        "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6"
	        "3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36"
	        "92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
	        "3ff4def08e4b7a9de576d26586cec64b6116"
	        "1ae10b594f09e26a7e902ecbd0600691");
	cr_assert_eq(
	        aead_chacha_seal(c, (const uint8_t *)sunscreen, mlen, aad, sizeof(aad), nonce, key),
	        0);
	cr_assert_arr_eq(c, want, sizeof(want));
	cr_assert_eq(aead_chacha_open(m, c, sizeof(c), aad, sizeof(aad), nonce, key), 0);
	cr_assert_arr_eq(m, sunscreen, mlen);
}

/* RFC 8439 appendix A.5: decryption of an Internet-Draft preamble. */
Test(aead, chacha_rfc8439_a5_decrypt)
{
	uint8_t key[AEAD_KEYBYTES], nonce[AEAD_CHACHA_NPUBBYTES], aad[12];
	uint8_t *c, *want, *m;
	size_t clen, wantlen;

	vectors_unhex_fixed(key, sizeof(key),
	        "1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0");
	vectors_unhex_fixed(nonce, sizeof(nonce), "000000000102030405060708");
	vectors_unhex_fixed(aad, sizeof(aad), "f33388860000000000004e91");
	c = vectors_unhex("64a0861575861af460f062c79be643bd5e805cfd345cf389f108670ac76c8cb2"
	                  "4c6cfc18755d43eea09ee94e382d26b0bdb7b73c321b0100d4f03b7f355894cf"
	                  "332f830e710b97ce98c8a84abd0b948114ad176e008d33bd60f982b1ff37c855"
	                  "9797a06ef4f0ef61c186324e2b3506383606907b6a7c02b0f9f6157b53c867e4"
	                  "b9166c767b804d46a59b5216cde7a4e99040c5a40433225ee282a1b0a06c523e"
	                  "af4534d7f83fa1155b0047718cbc546a0d072b04b3564eea1b422273f548271a"
	                  "0bb2316053fa76991955ebd63159434ecebb4e466dae5a1073a6727627097a10"
	                  "49e617d91d361094fa68f0ff77987130305beaba2eda04df997b714d6c6f2c29"
	                  "a6ad5cb4022b02709b"
	                  "eead9d67890cbb22392336fea1851f38",
	        &clen);
	want = vectors_unhex("496e7465726e65742d4472616674732061726520647261667420646f63756d65"
	                     "6e74732076616c696420666f722061206d6178696d756d206f6620736978206d"
	                     "6f6e74687320616e64206d617920626520757064617465642c207265706c6163"
	                     "65642c206f72206f62736f6c65746564206279206f7468657220646f63756d65"
	                     "6e747320617420616e792074696d652e20497420697320696e617070726f7072"
	                     "6961746520746f2075736520496e7465726e65742d4472616674732061732072"
	                     "65666572656e6365206d6174657269616c206f7220746f206369746520746865"
	                     "6d206f74686572207468616e206173202fe2809c776f726b20696e2070726f67"
	                     "726573732e2fe2809d",
	        &wantlen);
	cr_assert_eq(clen, 265 + AEAD_ABYTES);
	cr_assert_eq(wantlen, 265);
	m = malloc(wantlen);
	cr_assert_not_null(m);
	cr_assert_eq(aead_chacha_open(m, c, clen, aad, sizeof(aad), nonce, key), 0);
	cr_assert_arr_eq(m, want, wantlen);
	free(m);
	m = malloc(clen);
	cr_assert_not_null(m);
	cr_assert_eq(aead_chacha_seal(m, want, wantlen, aad, sizeof(aad), nonce, key), 0);
	cr_assert_arr_eq(m, c, clen);
	free(m);
	free(want);
	free(c);
}

/* draft-irtf-cfrg-xchacha-03 appendix A.3.1. */
Test(aead, xchacha_draft_a3_1)
{
	uint8_t key[AEAD_KEYBYTES], nonce[AEAD_XCHACHA_NPUBBYTES], aad[12], want[114 + 16];
	uint8_t c[sizeof(want)], m[114];
	size_t mlen = strlen(sunscreen);

	vectors_unhex_fixed(key, sizeof(key),
	        "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
	vectors_unhex_fixed(
	        nonce, sizeof(nonce), "404142434445464748494a4b4c4d4e4f5051525354555657");
	vectors_unhex_fixed(aad, sizeof(aad), "50515253c0c1c2c3c4c5c6c7");
	vectors_unhex_fixed(want, sizeof(want),
	        "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb"
	        "731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452"
	        "2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9"
	        "21f9664c97637da9768812f615c68b13b52e"
	        "c0875924c1c7987947deafd8780acf49");
	cr_assert_eq(aead_xchacha_seal(
	                     c, (const uint8_t *)sunscreen, mlen, aad, sizeof(aad), nonce, key),
	        0);
	cr_assert_arr_eq(c, want, sizeof(want));
	cr_assert_eq(aead_xchacha_open(m, c, sizeof(c), aad, sizeof(aad), nonce, key), 0);
	cr_assert_arr_eq(m, sunscreen, mlen);
}

typedef int (*seal_fn)(uint8_t *, const uint8_t *, size_t, const uint8_t *, size_t, const uint8_t *,
        const uint8_t *);
typedef int (*open_fn)(uint8_t *, const uint8_t *, size_t, const uint8_t *, size_t, const uint8_t *,
        const uint8_t *);

struct aead_alg {
	const char *name;
	seal_fn seal;
	open_fn open;
	size_t noncelen;
};

static const struct aead_alg algs[] = {
        {"xchacha", aead_xchacha_seal, aead_xchacha_open, AEAD_XCHACHA_NPUBBYTES},
        {"chacha", aead_chacha_seal, aead_chacha_open, AEAD_CHACHA_NPUBBYTES},
};

/* 1 if all len bytes at p are zero. */
static int
all_zero(const uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != 0)
			return 0;
	return 1;
}

Test(aead, round_trips)
{
	static const size_t lens[] = {0, 1, 15, 16, 17, 63, 64, 65, 1000, 4096};
	uint8_t key[AEAD_KEYBYTES], nonce[AEAD_XCHACHA_NPUBBYTES], ad[40];
	uint8_t *m, *c, *back;
	size_t a, i, adlen;

	for (a = 0; a < sizeof(algs) / sizeof(algs[0]); a++) {
		for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
			for (adlen = 0; adlen <= sizeof(ad); adlen += sizeof(ad)) {
				m = malloc(lens[i] + 1);
				c = malloc(lens[i] + AEAD_ABYTES);
				back = malloc(lens[i] + 1);
				cr_assert(m != NULL && c != NULL && back != NULL);
				sotto_random(key, sizeof(key));
				sotto_random(nonce, sizeof(nonce));
				sotto_random(ad, sizeof(ad));
				sotto_random(m, lens[i]);
				cr_assert_eq(algs[a].seal(c, m, lens[i], adlen ? ad : NULL, adlen,
				                     nonce, key),
				        0);
				if (lens[i] >= 16)
					cr_assert_arr_neq(
					        c, m, lens[i], "%s: no encryption", algs[a].name);
				cr_assert_eq(algs[a].open(back, c, lens[i] + AEAD_ABYTES,
				                     adlen ? ad : NULL, adlen, nonce, key),
				        0, "%s length %zu", algs[a].name, lens[i]);
				cr_assert_arr_eq(back, m, lens[i]);
				free(m);
				free(c);
				free(back);
			}
		}
	}
}

Test(aead, in_place)
{
	uint8_t key[AEAD_KEYBYTES], nonce[AEAD_XCHACHA_NPUBBYTES], m[100], buf[100 + AEAD_ABYTES];
	uint8_t ref[sizeof(buf)];
	size_t a;

	for (a = 0; a < sizeof(algs) / sizeof(algs[0]); a++) {
		sotto_random(key, sizeof(key));
		sotto_random(nonce, sizeof(nonce));
		sotto_random(m, sizeof(m));
		cr_assert_eq(algs[a].seal(ref, m, sizeof(m), NULL, 0, nonce, key), 0);
		memcpy(buf, m, sizeof(m));
		cr_assert_eq(algs[a].seal(buf, buf, sizeof(m), NULL, 0, nonce, key), 0);
		cr_assert_arr_eq(buf, ref, sizeof(buf), "%s: in-place seal differs", algs[a].name);
		cr_assert_eq(algs[a].open(buf, buf, sizeof(buf), NULL, 0, nonce, key), 0);
		cr_assert_arr_eq(buf, m, sizeof(m), "%s: in-place open differs", algs[a].name);
	}
}

Test(aead, tampering_is_rejected_and_output_wiped)
{
	uint8_t key[AEAD_KEYBYTES], nonce[AEAD_XCHACHA_NPUBBYTES], ad[20], m[64];
	uint8_t c[sizeof(m) + AEAD_ABYTES], out[sizeof(m)];
	size_t a, bit;

	for (a = 0; a < sizeof(algs) / sizeof(algs[0]); a++) {
		sotto_random(key, sizeof(key));
		sotto_random(nonce, sizeof(nonce));
		sotto_random(ad, sizeof(ad));
		sotto_random(m, sizeof(m));
		cr_assert_eq(algs[a].seal(c, m, sizeof(m), ad, sizeof(ad), nonce, key), 0);
		/* Every bit of the ciphertext and the tag. */
		for (bit = 0; bit < 8 * sizeof(c); bit++) {
			c[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			memset(out, 0xee, sizeof(out));
			cr_assert_eq(algs[a].open(out, c, sizeof(c), ad, sizeof(ad), nonce, key),
			        SOTTO_ERR_VERIFY, "%s: flipped bit %zu accepted", algs[a].name,
			        bit);
			cr_assert(all_zero(out, sizeof(out)), "%s: output not wiped", algs[a].name);
			c[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		}
		ad[7] ^= 0x04;
		cr_assert_eq(algs[a].open(out, c, sizeof(c), ad, sizeof(ad), nonce, key),
		        SOTTO_ERR_VERIFY, "%s: ad", algs[a].name);
		ad[7] ^= 0x04;
		cr_assert_eq(algs[a].open(out, c, sizeof(c), ad, sizeof(ad) - 1, nonce, key),
		        SOTTO_ERR_VERIFY, "%s: short ad", algs[a].name);
		cr_assert_eq(algs[a].open(out, c, sizeof(c), NULL, 0, nonce, key), SOTTO_ERR_VERIFY,
		        "%s: no ad", algs[a].name);
		nonce[algs[a].noncelen - 1] ^= 0x80;
		cr_assert_eq(algs[a].open(out, c, sizeof(c), ad, sizeof(ad), nonce, key),
		        SOTTO_ERR_VERIFY, "%s: nonce", algs[a].name);
		nonce[algs[a].noncelen - 1] ^= 0x80;
		key[0] ^= 0x01;
		cr_assert_eq(algs[a].open(out, c, sizeof(c), ad, sizeof(ad), nonce, key),
		        SOTTO_ERR_VERIFY, "%s: key", algs[a].name);
		key[0] ^= 0x01;
		cr_assert_eq(algs[a].open(out, c, sizeof(c) - 1, ad, sizeof(ad), nonce, key),
		        SOTTO_ERR_VERIFY, "%s: truncated", algs[a].name);
		/* Untouched, it still opens: the failures above came from the changes. */
		cr_assert_eq(algs[a].open(out, c, sizeof(c), ad, sizeof(ad), nonce, key), 0);
		cr_assert_arr_eq(out, m, sizeof(m));
	}
}

Test(aead, short_ciphertext)
{
	uint8_t key[AEAD_KEYBYTES] = {1}, nonce[AEAD_XCHACHA_NPUBBYTES] = {2};
	uint8_t c[AEAD_ABYTES] = {0}, out[1];
	size_t a, n;

	for (a = 0; a < sizeof(algs) / sizeof(algs[0]); a++)
		for (n = 0; n < AEAD_ABYTES; n++)
			cr_assert_eq(algs[a].open(out, c, n, NULL, 0, nonce, key), SOTTO_ERR_SHORT,
			        "%s: %zu bytes", algs[a].name, n);
	/* Exactly a tag is an empty message, not a short one. */
	cr_assert_eq(aead_chacha_seal(c, NULL, 0, NULL, 0, nonce, key), 0);
	cr_assert_eq(aead_chacha_open(out, c, sizeof(c), NULL, 0, nonce, key), 0);
}

struct aead_wp {
	const struct aead_alg *alg;
	long long ivbits;
};

/* Run only groups whose nonce, key and tag sizes the libsodium API can express. */
static int
aead_group_ok(const struct json *group, void *arg)
{
	const struct aead_wp *w = arg;
	long long iv = -1, key = -1, tag = -1;

	cr_assert_eq(json_int(json_get(group, "ivSize"), &iv), 0);
	cr_assert_eq(json_int(json_get(group, "keySize"), &key), 0);
	cr_assert_eq(json_int(json_get(group, "tagSize"), &tag), 0);
	return iv == w->ivbits && key == 8 * AEAD_KEYBYTES && tag == 8 * AEAD_ABYTES;
}

/*
 * Open ct||tag; a valid case must also seal to the same bytes.  Rejection is
 * SOTTO_ERR_VERIFY (or SOTTO_ERR_SHORT, which cannot happen with a 16-byte tag).
 */
static enum wp_outcome
aead_case(struct wp_case *c, void *arg)
{
	const struct aead_wp *w = arg;
	const uint8_t *key, *iv, *aad, *msg, *ct, *tag;
	size_t keylen, ivlen, aadlen, msglen, ctlen, taglen;
	uint8_t *buf, *out;
	enum wp_outcome o = WP_WRONG;
	int r;

	key = wp_hex(c, "key", &keylen);
	iv = wp_hex(c, "iv", &ivlen);
	aad = wp_hex(c, "aad", &aadlen);
	msg = wp_hex(c, "msg", &msglen);
	ct = wp_hex(c, "ct", &ctlen);
	tag = wp_hex(c, "tag", &taglen);
	cr_assert_eq(keylen, AEAD_KEYBYTES, "tcId %lld", c->tcid);
	cr_assert_eq(ivlen, w->alg->noncelen, "tcId %lld", c->tcid);
	cr_assert_eq(taglen, AEAD_ABYTES, "tcId %lld", c->tcid);
	buf = malloc(ctlen + taglen);
	out = malloc(ctlen + 1);
	cr_assert(buf != NULL && out != NULL);
	memcpy(buf, ct, ctlen);
	memcpy(buf + ctlen, tag, taglen);
	r = w->alg->open(out, buf, ctlen + taglen, aad, aadlen, iv, key);
	if (r == SOTTO_ERR_VERIFY || r == SOTTO_ERR_SHORT) {
		o = all_zero(out, ctlen) ? WP_REJECTED : WP_WRONG;
	} else if (r == 0 && ctlen == msglen && memcmp(out, msg, msglen) == 0) {
		o = WP_ACCEPTED;
		/* Sealing is deterministic for a given nonce, so it must reproduce ct||tag. */
		if (w->alg->seal(buf, msg, msglen, aad, aadlen, iv, key) != 0 ||
		        memcmp(buf, ct, ctlen) != 0 || memcmp(buf + ctlen, tag, taglen) != 0)
			o = WP_WRONG;
	}
	free(buf);
	free(out);
	return o;
}

Test(aead, wycheproof_chacha20_poly1305)
{
	struct aead_wp w = {&algs[1], 96};
	struct wp_stats st;

	wp_run("chacha20_poly1305_test.json", aead_group_ok, aead_case, &w, &st);
	cr_assert_gt(st.valid_passed, 0);
	cr_assert_gt(st.invalid_rejected, 0);
	/* The nine groups with other nonce sizes hold one test each. */
	cr_assert_eq(st.skipped, 9);
}

Test(aead, wycheproof_xchacha20_poly1305)
{
	struct aead_wp w = {&algs[0], 192};
	struct wp_stats st;

	wp_run("xchacha20_poly1305_test.json", aead_group_ok, aead_case, &w, &st);
	cr_assert_gt(st.valid_passed, 0);
	cr_assert_gt(st.invalid_rejected, 0);
	cr_assert_eq(st.skipped, 9);
}
