/* Tests for crypto/ecc: X25519 (RFC 7748) and Ed25519 (RFC 8032), Wycheproof, edge cases. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "crypto/ecc.h"
#include "crypto/util.h"
#include "tests/lib/vectors.h"

static void
setup(void)
{
	cr_assert_eq(sotto_crypto_init(), 0);
}

/* cppcheck-suppress unknownMacro */
TestSuite(ecc, .init = setup);

static int
all_zero(const uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != 0)
			return 0;
	return 1;
}

/* Check out = X25519(k, u) for hex inputs. */
static void
check_x25519(const char *k_hex, const char *u_hex, const char *out_hex)
{
	uint8_t k[X25519_KEYBYTES], u[X25519_KEYBYTES], want[X25519_KEYBYTES], got[X25519_KEYBYTES];

	vectors_unhex_fixed(k, sizeof(k), k_hex);
	vectors_unhex_fixed(u, sizeof(u), u_hex);
	vectors_unhex_fixed(want, sizeof(want), out_hex);
	cr_assert_eq(x25519_shared(got, k, u), 0);
	cr_assert_arr_eq(got, want, sizeof(want), "X25519(%s, %s)", k_hex, u_hex);
}

/* RFC 7748 section 5.2, the two scalar-multiplication vectors. */
Test(ecc, x25519_rfc7748_5_2)
{
	check_x25519("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
	        "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
	        "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552");
	check_x25519("4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
	        "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
	        "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957");
}

/* RFC 7748 section 5.2, the iterated vector after 1 and 1,000 rounds. */
Test(ecc, x25519_rfc7748_iterated)
{
	uint8_t k[X25519_KEYBYTES] = {9}, u[X25519_KEYBYTES] = {9}, next[X25519_KEYBYTES];
	uint8_t want1[X25519_KEYBYTES], want1000[X25519_KEYBYTES];
	int i;

	vectors_unhex_fixed(want1, sizeof(want1),
	        "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079");
	vectors_unhex_fixed(want1000, sizeof(want1000),
	        "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51");
	for (i = 1; i <= 1000; i++) {
		cr_assert_eq(x25519_shared(next, k, u), 0, "round %d", i);
		memcpy(u, k, sizeof(u));
		memcpy(k, next, sizeof(k));
		if (i == 1)
			cr_assert_arr_eq(k, want1, sizeof(k));
	}
	cr_assert_arr_eq(k, want1000, sizeof(k));
}

/* RFC 7748 section 6.1. */
Test(ecc, x25519_rfc7748_6_1)
{
	uint8_t a_sk[32], a_pk[32], b_sk[32], b_pk[32], k[32], pk[32], got[32];

	vectors_unhex_fixed(
	        a_sk, 32, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
	vectors_unhex_fixed(
	        a_pk, 32, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
	vectors_unhex_fixed(
	        b_sk, 32, "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
	vectors_unhex_fixed(
	        b_pk, 32, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
	vectors_unhex_fixed(
	        k, 32, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
	cr_assert_eq(x25519_public(pk, a_sk), 0);
	cr_assert_arr_eq(pk, a_pk, 32);
	cr_assert_eq(x25519_public(pk, b_sk), 0);
	cr_assert_arr_eq(pk, b_pk, 32);
	cr_assert_eq(x25519_shared(got, a_sk, b_pk), 0);
	cr_assert_arr_eq(got, k, 32);
	cr_assert_eq(x25519_shared(got, b_sk, a_pk), 0);
	cr_assert_arr_eq(got, k, 32);
}

Test(ecc, x25519_small_order_points_are_weak)
{
	/* Points of small order (u = 0, 1, p - 1 and one of order 8): the secret is all zeros. */
	static const char *const points[] = {
	        "0000000000000000000000000000000000000000000000000000000000000000",
	        "0100000000000000000000000000000000000000000000000000000000000000",
	        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
	        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	};
	uint8_t pk[32], sk[32], spk[32], out[32];
	size_t i;

	x25519_keypair(spk, sk);
	for (i = 0; i < sizeof(points) / sizeof(points[0]); i++) {
		vectors_unhex_fixed(pk, sizeof(pk), points[i]);
		memset(out, 0xaa, sizeof(out));
		cr_assert_eq(x25519_shared(out, sk, pk), SOTTO_ERR_WEAKKEY, "point %zu", i);
		cr_assert(all_zero(out, sizeof(out)), "point %zu: output not zeroed", i);
	}
}

Test(ecc, x25519_keypair_agreement)
{
	uint8_t a_pk[32], a_sk[32], b_pk[32], b_sk[32], pk[32], k1[32], k2[32];

	x25519_keypair(a_pk, a_sk);
	x25519_keypair(b_pk, b_sk);
	cr_assert_arr_neq(a_pk, b_pk, 32);
	cr_assert_eq(x25519_public(pk, a_sk), 0);
	cr_assert_arr_eq(pk, a_pk, 32);
	cr_assert_eq(x25519_shared(k1, a_sk, b_pk), 0);
	cr_assert_eq(x25519_shared(k2, b_sk, a_pk), 0);
	cr_assert_arr_eq(k1, k2, 32);
	cr_assert(!all_zero(k1, 32));
	/* A different peer gives a different secret. */
	cr_assert_eq(x25519_shared(k2, a_sk, a_pk), 0);
	cr_assert_arr_neq(k1, k2, 32);
}

/* Check an RFC 8032 Ed25519 vector: the key pair from the seed, the signature, and verification. */
static void
check_ed25519(const char *seed_hex, const char *pk_hex, const char *msg_hex, const char *sig_hex)
{
	uint8_t seed[ED25519_SEEDBYTES], want_pk[ED25519_PUBLICKEYBYTES];
	uint8_t pk[ED25519_PUBLICKEYBYTES], sk[ED25519_SECRETKEYBYTES];
	uint8_t want_sig[ED25519_SIGBYTES], sig[ED25519_SIGBYTES], *msg;
	size_t msglen;

	vectors_unhex_fixed(seed, sizeof(seed), seed_hex);
	vectors_unhex_fixed(want_pk, sizeof(want_pk), pk_hex);
	vectors_unhex_fixed(want_sig, sizeof(want_sig), sig_hex);
	msg = vectors_unhex(msg_hex, &msglen);
	ed25519_seed_keypair(pk, sk, seed);
	cr_assert_arr_eq(pk, want_pk, sizeof(pk), "public key of seed %s", seed_hex);
	cr_assert_arr_eq(sk, seed, sizeof(seed), "secret key layout is seed || pk");
	cr_assert_arr_eq(sk + 32, pk, sizeof(pk));
	cr_assert_eq(ed25519_sign(sig, msg, msglen, sk), 0);
	cr_assert_arr_eq(sig, want_sig, sizeof(sig), "signature with seed %s", seed_hex);
	cr_assert_eq(ed25519_verify(want_sig, sizeof(want_sig), msg, msglen, want_pk), 0);
	want_sig[0] ^= 0x01;
	cr_assert_eq(
	        ed25519_verify(want_sig, sizeof(want_sig), msg, msglen, want_pk), SOTTO_ERR_VERIFY);
	free(msg);
}

/* RFC 8032 section 7.1, TEST 1, 2, 3 and TEST SHA(abc). */
Test(ecc, ed25519_rfc8032)
{
	check_ed25519("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
	        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
	        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
	        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b");
	check_ed25519("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
	        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
	        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
	        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00");
	check_ed25519("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
	        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
	        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
	        "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a");
	check_ed25519("833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
	        "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
	        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
	        "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
	        "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b589"
	        "09351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704");
}

Test(ecc, ed25519_sign_verify)
{
	uint8_t pk[32], sk[64], pk2[32], sk2[64], sig[64 + 1], msg[100];

	ed25519_keypair(pk, sk);
	ed25519_keypair(pk2, sk2);
	sotto_random(msg, sizeof(msg));
	cr_assert_eq(ed25519_sign(sig, msg, sizeof(msg), sk), 0);
	cr_assert_eq(ed25519_verify(sig, 64, msg, sizeof(msg), pk), 0);
	cr_assert_eq(ed25519_verify(sig, 64, msg, sizeof(msg), pk2), SOTTO_ERR_VERIFY);
	cr_assert_eq(ed25519_verify(sig, 64, msg, sizeof(msg) - 1, pk), SOTTO_ERR_VERIFY);
	msg[99] ^= 0x01;
	cr_assert_eq(ed25519_verify(sig, 64, msg, sizeof(msg), pk), SOTTO_ERR_VERIFY);
	msg[99] ^= 0x01;
	sig[40] ^= 0x20;
	cr_assert_eq(ed25519_verify(sig, 64, msg, sizeof(msg), pk), SOTTO_ERR_VERIFY);
	sig[40] ^= 0x20;
	/* Only exactly 64 bytes is a signature: not a prefix, not with a trailing byte. */
	sig[64] = 0;
	cr_assert_eq(ed25519_verify(sig, 63, msg, sizeof(msg), pk), SOTTO_ERR_VERIFY);
	cr_assert_eq(ed25519_verify(sig, 65, msg, sizeof(msg), pk), SOTTO_ERR_VERIFY);
	cr_assert_eq(ed25519_verify(sig, 0, msg, sizeof(msg), pk), SOTTO_ERR_VERIFY);
	cr_assert_eq(ed25519_verify(sig, 64, msg, sizeof(msg), pk), 0);
	/* Empty message. */
	cr_assert_eq(ed25519_sign(sig, NULL, 0, sk2), 0);
	cr_assert_eq(ed25519_verify(sig, 64, NULL, 0, pk2), 0);
	cr_assert_eq(ed25519_verify(sig, 64, NULL, 0, pk), SOTTO_ERR_VERIFY);
}

Test(ecc, ed25519_seed_keypair_is_deterministic)
{
	uint8_t seed[32], pk1[32], sk1[64], pk2[32], sk2[64];

	sotto_random(seed, sizeof(seed));
	ed25519_seed_keypair(pk1, sk1, seed);
	ed25519_seed_keypair(pk2, sk2, seed);
	cr_assert_arr_eq(pk1, pk2, 32);
	cr_assert_arr_eq(sk1, sk2, 64);
	seed[0] ^= 1;
	ed25519_seed_keypair(pk2, sk2, seed);
	cr_assert_arr_neq(pk1, pk2, 32);
}

Test(ecc, ed25519_to_x25519_is_consistent)
{
	uint8_t a_pk[32], a_sk[64], b_pk[32], b_sk[64];
	uint8_t a_xpk[32], a_xsk[32], b_xpk[32], b_xsk[32], derived[32], k1[32], k2[32];
	int i;

	for (i = 0; i < 8; i++) {
		ed25519_keypair(a_pk, a_sk);
		ed25519_keypair(b_pk, b_sk);
		cr_assert_eq(ed25519_pk_to_x25519(a_xpk, a_pk), 0);
		cr_assert_eq(ed25519_sk_to_x25519(a_xsk, a_sk), 0);
		cr_assert_eq(ed25519_pk_to_x25519(b_xpk, b_pk), 0);
		cr_assert_eq(ed25519_sk_to_x25519(b_xsk, b_sk), 0);
		/* x25519_public(sk_to_x25519(sk)) == pk_to_x25519(pk). */
		cr_assert_eq(x25519_public(derived, a_xsk), 0);
		cr_assert_arr_eq(derived, a_xpk, 32);
		cr_assert_eq(x25519_shared(k1, a_xsk, b_xpk), 0);
		cr_assert_eq(x25519_shared(k2, b_xsk, a_xpk), 0);
		cr_assert_arr_eq(k1, k2, 32);
	}
}

Test(ecc, ed25519_pk_to_x25519_rejects_bad_points)
{
	uint8_t pk[32], xpk[32];

	/* The identity (y = 1) has small order; y = 2 is not on the curve. */
	vectors_unhex_fixed(
	        pk, 32, "0100000000000000000000000000000000000000000000000000000000000000");
	cr_assert_eq(ed25519_pk_to_x25519(xpk, pk), SOTTO_ERR_FORMAT);
	vectors_unhex_fixed(
	        pk, 32, "0200000000000000000000000000000000000000000000000000000000000000");
	cr_assert_eq(ed25519_pk_to_x25519(xpk, pk), SOTTO_ERR_FORMAT);
}

/*
 * Wycheproof X25519.  Documented decision (doc/conformance.md): an acceptable
 * case whose shared secret is all zeros must be refused with
 * SOTTO_ERR_WEAKKEY; every other case must compute the expected secret.
 */
static enum wp_outcome
x25519_case(struct wp_case *c, void *arg)
{
	const uint8_t *pub, *priv, *shared;
	size_t publen, privlen, sharedlen;
	uint8_t out[X25519_KEYBYTES];
	int r;

	pub = wp_hex(c, "public", &publen);
	priv = wp_hex(c, "private", &privlen);
	shared = wp_hex(c, "shared", &sharedlen);
	cr_assert(publen == 32 && privlen == 32 && sharedlen == 32, "tcId %lld: sizes", c->tcid);
	memset(out, 0xaa, sizeof(out));
	r = x25519_shared(out, priv, pub);
	if (all_zero(shared, sharedlen))
		return r == SOTTO_ERR_WEAKKEY && all_zero(out, sizeof(out)) ? WP_REJECTED
		                                                            : WP_WRONG;
	return r == 0 && memcmp(out, shared, sizeof(out)) == 0 ? WP_ACCEPTED : WP_WRONG;
}

Test(ecc, wycheproof_x25519)
{
	struct wp_stats st;

	wp_run("x25519_test.json", NULL, x25519_case, NULL, &st);
	cr_assert_gt(st.valid_passed, 0);
	cr_assert_eq(st.acceptable_rejected, 31, "all-zero shared secrets refused");
	cr_assert_gt(st.acceptable_passed, 0);
	cr_assert_eq(st.skipped, 0);
}

static enum wp_outcome
ed25519_case(struct wp_case *c, void *arg)
{
	const uint8_t *pk, *msg, *sig;
	size_t pklen, msglen, siglen;
	int r;

	pk = wp_hex_in(c, json_get(c->group, "publicKey"), "pk", &pklen);
	cr_assert_eq(pklen, ED25519_PUBLICKEYBYTES, "tcId %lld", c->tcid);
	msg = wp_hex(c, "msg", &msglen);
	sig = wp_hex(c, "sig", &siglen);
	r = ed25519_verify(sig, siglen, msg, msglen, pk);
	if (r == 0)
		return WP_ACCEPTED;
	return r == SOTTO_ERR_VERIFY ? WP_REJECTED : WP_WRONG;
}

Test(ecc, wycheproof_ed25519)
{
	struct wp_stats st;

	wp_run("ed25519_test.json", NULL, ed25519_case, NULL, &st);
	cr_assert_gt(st.valid_passed, 0);
	cr_assert_gt(st.invalid_rejected, 0);
	cr_assert_eq(st.skipped, 0);
}
