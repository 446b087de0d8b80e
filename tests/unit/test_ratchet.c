/*
 * Tests for crypto/ratchet: an independent re-derivation of the first
 * messages, a recorded conversation, out-of-order delivery, the skip and
 * stored-key limits, replays and tampering (state unchanged), forward
 * secrecy, healing, and the serialized state.
 *
 * Known answers live in tests/data/ratchet-kat.txt (read from $SOTTO_SRCDIR,
 * default "."), generated once from the fixed seed below; CI compares against
 * the committed file.  To regenerate it after an intended change, run
 *     SOTTO_REGEN_KAT=1 SOTTO_SRCDIR=$PWD tests/unit/test_ratchet --filter 'ratchet/kat'
 * from the source tree, which writes the file and then checks it; commit the
 * result together with the change.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "crypto/aead.h"
#include "crypto/buf.h"
#include "crypto/ecc.h"
#include "crypto/kdf.h"
#include "crypto/ratchet.h"
#include "crypto/util.h"
#include "tests/lib/kat.h"

#ifndef Test
/* cppcheck does not read criterion.h: let it analyse each test as a plain function. */
#define TestSuite(...)         struct test_suite_unused
#define Test(suite, name, ...) void test_##suite##_##name(void)
#endif

#define KAT_FILE "tests/data/ratchet-kat.txt"
#define KAT_SEED "3f8b2a6c0e4d9f1a7b5c3e2d8a6f4b0c9e1d7a3f5b2c8e6a4d0f9b7c1e3a5d2f"

/* Offsets in the serialized state (doc/e2e.md). */
#define ST_RK      2
#define ST_DHS_SEC 34
#define ST_DHS_PUB 66
#define ST_DHR     98
#define ST_CKS     130
#define ST_CKR     162
#define ST_NS      194
#define ST_AD      206

static void
setup(void)
{
	cr_assert_eq(sotto_crypto_init(), 0);
}

/* cppcheck-suppress unknownMacro */
TestSuite(ratchet, .init = setup, .timeout = 120);

/* ---- helpers ------------------------------------------------------------------------------ */

struct msg {
	uint8_t *w;
	size_t len;
};

struct pair {
	struct ratchet *a, *b;
	uint8_t sk[32], ad[90], spk_pub[32], spk_sec[32];
};

static void
pair_make(struct pair *p)
{
	memset(p, 0, sizeof(*p));
	sotto_random(p->sk, sizeof(p->sk));
	sotto_random(p->ad, sizeof(p->ad));
	x25519_keypair(p->spk_pub, p->spk_sec);
	cr_assert_eq(ratchet_init_alice(&p->a, p->sk, p->ad, sizeof(p->ad), p->spk_pub), 0);
	cr_assert_eq(
	        ratchet_init_bob(&p->b, p->sk, p->ad, sizeof(p->ad), p->spk_pub, p->spk_sec), 0);
}

static void
pair_free(struct pair *p)
{
	ratchet_free(p->a);
	ratchet_free(p->b);
}

static struct msg
enc(struct ratchet *r, const char *text)
{
	struct msg m;

	cr_assert_eq(ratchet_encrypt(r, (const uint8_t *)text, strlen(text), &m.w, &m.len), 0);
	cr_assert_eq(m.len, strlen(text) + RATCHET_OVERHEAD);
	return m;
}

/* Encrypt "m<i>" for i in [from, to) into ms. */
static void
enc_many(struct ratchet *r, struct msg *ms, int from, int to)
{
	char text[32];
	int i;

	for (i = from; i < to; i++) {
		snprintf(text, sizeof(text), "m%d", i);
		ms[i] = enc(r, text);
	}
}

static void
msgs_free(struct msg *ms, int n)
{
	int i;

	for (i = 0; i < n; i++)
		free(ms[i].w);
}

static void
dec_ok(struct ratchet *r, const struct msg *m, const char *text)
{
	uint8_t *pt = NULL;
	size_t len;
	int rc;

	rc = ratchet_decrypt(r, m->w, m->len, &pt, &len);
	cr_assert_eq(rc, 0, "decrypting \"%s\": %s", text, sotto_strerror(rc));
	cr_assert_eq(len, strlen(text));
	cr_assert(memcmp(pt, text, len) == 0);
	free(pt);
}

static void
dec_ok_many(struct ratchet *r, const struct msg *ms, int i)
{
	char text[32];

	snprintf(text, sizeof(text), "m%d", i);
	dec_ok(r, &ms[i], text);
}

static uint8_t *
state_of(const struct ratchet *r, size_t *len)
{
	struct buf b;
	uint8_t *out;

	buf_init_secure(&b, 0);
	cr_assert_eq(ratchet_serialize(r, &b), 0);
	*len = buf_len(&b);
	cr_assert_not_null(out = malloc(*len));
	memcpy(out, buf_ptr(&b), *len);
	buf_free(&b);
	return out;
}

static struct ratchet *
copy_of(const struct ratchet *r)
{
	struct ratchet *c = NULL;
	uint8_t *s;
	size_t len;

	s = state_of(r, &len);
	cr_assert_eq(ratchet_deserialize(&c, s, len), 0);
	sotto_wipe(s, len);
	free(s);
	return c;
}

/* Decrypting w must fail with want and leave the serialized state byte for byte the same. */
static void
dec_fails_unchanged(struct ratchet *r, const uint8_t *w, size_t len, int want)
{
	static uint8_t junk[1];
	uint8_t *before, *after, *pt = junk;
	size_t blen, alen, ptlen = 7;
	size_t nskipped = ratchet_skipped_count(r);
	int rc;

	before = state_of(r, &blen);
	rc = ratchet_decrypt(r, w, len, &pt, &ptlen);
	cr_assert_eq(rc, want, "got \"%s\", want \"%s\"", sotto_strerror(rc), sotto_strerror(want));
	cr_assert_null(pt);
	cr_assert_eq(ptlen, 0);
	after = state_of(r, &alen);
	cr_assert_eq(blen, alen);
	cr_assert(memcmp(before, after, blen) == 0, "a rejected message changed the state");
	cr_assert_eq(ratchet_skipped_count(r), nskipped);
	free(before);
	free(after);
}

static void
dec_fails_unchanged_msg(struct ratchet *r, const struct msg *m, int want)
{
	dec_fails_unchanged(r, m->w, m->len, want);
}

/* ---- an independent re-derivation of the first messages --------------------------------- */

static void
ref_kdf_rk(uint8_t rk[32], uint8_t ck[32], const uint8_t rk_in[32], const uint8_t dh[32])
{
	uint8_t out[64];

	cr_assert_eq(kdf_hkdf_sha256(out, 64, rk_in, 32, dh, 32,
	                     (const uint8_t *)"sotto-ratchet-rk-v1", 19),
	        0);
	memcpy(rk, out, 32);
	memcpy(ck, out + 32, 32);
}

static void
ref_kdf_ck(uint8_t ck_next[32], uint8_t mk[32], const uint8_t ck[32])
{
	static const uint8_t one = 1, two = 2;
	uint8_t tmp[32];

	cr_assert_eq(kdf_hmac_sha256(mk, ck, 32, &one, 1), 0);
	cr_assert_eq(kdf_hmac_sha256(tmp, ck, 32, &two, 1), 0);
	memcpy(ck_next, tmp, 32);
}

/* HKDF-Expand(PRK = mk, "sotto-ratchet-msg-v1", 56), written out with HMAC. */
static void
ref_expand(uint8_t okm[56], const uint8_t mk[32])
{
	uint8_t in[32 + 20 + 1], t[32];

	memcpy(in, "sotto-ratchet-msg-v1", 20);
	in[20] = 1;
	cr_assert_eq(kdf_hmac_sha256(t, mk, 32, in, 21), 0);
	memcpy(okm, t, 32);
	memcpy(in, t, 32);
	memcpy(in + 32, "sotto-ratchet-msg-v1", 20);
	in[52] = 2;
	cr_assert_eq(kdf_hmac_sha256(t, mk, 32, in, 53), 0);
	memcpy(okm + 32, t, 24);
}

/* header || XChaCha20-Poly1305(key, nonce from HKDF-Expand(mk)) of pt under AD || header. */
static struct msg
ref_seal(const uint8_t mk[32], const uint8_t *ad, size_t adlen, const uint8_t dh[32], uint32_t pn,
        uint32_t n, const char *pt)
{
	uint8_t okm[56], *aad;
	size_t len = strlen(pt);
	struct buf h;
	struct msg m;

	ref_expand(okm, mk);
	buf_init(&h, 0);
	cr_assert_eq(buf_put_u8(&h, 1), 0);
	cr_assert_eq(buf_put(&h, dh, 32), 0);
	cr_assert_eq(buf_put_u32(&h, pn), 0);
	cr_assert_eq(buf_put_u32(&h, n), 0);
	cr_assert_eq(buf_len(&h), RATCHET_HEADERBYTES);
	m.len = RATCHET_HEADERBYTES + len + 16;
	cr_assert_not_null(m.w = malloc(m.len));
	cr_assert_not_null(aad = malloc(adlen + RATCHET_HEADERBYTES));
	memcpy(aad, ad, adlen);
	memcpy(aad + adlen, buf_ptr(&h), RATCHET_HEADERBYTES);
	memcpy(m.w, buf_ptr(&h), RATCHET_HEADERBYTES);
	cr_assert_eq(aead_xchacha_seal(m.w + RATCHET_HEADERBYTES, (const uint8_t *)pt, len, aad,
	                     adlen + RATCHET_HEADERBYTES, okm + 32, okm),
	        0);
	free(aad);
	buf_free(&h);
	return m;
}

static void
assert_msg_eq(const struct msg *got, const struct msg *want, const char *what)
{
	cr_assert_eq(got->len, want->len, "%s: length", what);
	cr_assert(memcmp(got->w, want->w, got->len) == 0, "%s: bytes differ", what);
}

/*
 * One step of the reference model: advance ck, seal text as the reference
 * would, and check that from's ratchet writes exactly those bytes and that
 * to opens them.
 */
static void
ref_step(struct ratchet *from, struct ratchet *to, uint8_t ck[32], const uint8_t *ad, size_t adlen,
        const uint8_t dh[32], uint32_t pn, uint32_t n, const char *text, const char *what)
{
	uint8_t mk[32];
	struct msg got, want;

	ref_kdf_ck(ck, mk, ck);
	want = ref_seal(mk, ad, adlen, dh, pn, n, text);
	got = enc(from, text);
	assert_msg_eq(&got, &want, what);
	dec_ok(to, &got, text);
	free(got.w);
	free(want.w);
}

Test(ratchet, reference_model)
{
	struct kat_rng ra = {KAT_SEED, "ref-alice", 0}, rb = {KAT_SEED, "ref-bob", 0},
	               shadow_a = ra, shadow_b = rb;
	uint8_t sk[32], ad[40], spk_sec[32], spk_pub[32], a1_sec[32], a1_pub[32], b1_sec[32],
	        b1_pub[32];
	uint8_t dh[32], rk1[32], cks[32], rk2[32], ckb[32];
	struct ratchet *a, *b;

	kat_draw(KAT_SEED, sk, 32, "ref/sk");
	kat_draw(KAT_SEED, ad, sizeof(ad), "ref/ad");
	kat_draw(KAT_SEED, spk_sec, 32, "ref/spk");
	cr_assert_eq(x25519_public(spk_pub, spk_sec), 0);
	cr_assert_eq(ratchet_init_alice_rng(&a, sk, ad, sizeof(ad), spk_pub, kat_rng_fill, &ra), 0);
	cr_assert_eq(ratchet_init_bob(&b, sk, ad, sizeof(ad), spk_pub, spk_sec), 0);
	ratchet_set_rng(b, kat_rng_fill, &rb);

	/* Alice: DHs = a1; RK, CKs = KDF_RK(SK, DH(a1, SPK_B)). */
	kat_rng_fill(&shadow_a, a1_sec, 32);
	cr_assert_eq(x25519_public(a1_pub, a1_sec), 0);
	cr_assert_eq(x25519_shared(dh, a1_sec, spk_pub), 0);
	ref_kdf_rk(rk1, cks, sk, dh);
	ref_step(a, b, cks, ad, sizeof(ad), a1_pub, 0, 0, "first", "Alice's message 0");
	ref_step(
	        a, b, cks, ad, sizeof(ad), a1_pub, 0, 1, "second, same chain", "Alice's message 1");

	/* Bob: DHs = b1; RK, CKs = KDF_RK(RK, DH(b1, a1)) after the receiving step. */
	kat_rng_fill(&shadow_b, b1_sec, 32);
	cr_assert_eq(x25519_public(b1_pub, b1_sec), 0);
	cr_assert_eq(x25519_shared(dh, b1_sec, a1_pub), 0);
	ref_kdf_rk(rk2, ckb, rk1, dh);
	ref_step(b, a, ckb, ad, sizeof(ad), b1_pub, 0, 0, "reply", "Bob's message 0");

	/* Alice's next chain: a2 from her stream, PN = 2. */
	{
		uint8_t a2_sec[32], a2_pub[32], rk3[32], ck3[32], rk_mid[32], ck_mid[32];

		/* Alice's receiving step reaches Bob's root key: KDF_RK(RK, DH(a1, b1)). */
		cr_assert_eq(x25519_shared(dh, a1_sec, b1_pub), 0);
		ref_kdf_rk(rk_mid, ck_mid, rk1, dh);
		cr_assert(memcmp(rk_mid, rk2, 32) == 0);
		kat_rng_fill(&shadow_a, a2_sec, 32);
		cr_assert_eq(x25519_public(a2_pub, a2_sec), 0);
		cr_assert_eq(x25519_shared(dh, a2_sec, b1_pub), 0);
		ref_kdf_rk(rk3, ck3, rk_mid, dh);
		ref_step(a, b, ck3, ad, sizeof(ad), a2_pub, 2, 0, "after one round trip",
		        "Alice's second chain");
	}
	ratchet_free(a);
	ratchet_free(b);
}

/* ---- basics ------------------------------------------------------------------------------- */

Test(ratchet, conversation)
{
	struct pair p;
	struct msg m;
	static uint8_t junk[1];
	uint8_t *w = junk, *pt;
	size_t wlen = 9, ptlen;
	int i;

	pair_make(&p);
	/* Bob has no sending chain until Alice's first message arrives. */
	cr_assert_eq(ratchet_encrypt(p.b, (const uint8_t *)"x", 1, &w, &wlen), SOTTO_ERR_AGAIN);
	cr_assert_null(w);
	cr_assert_eq(wlen, 0);
	for (i = 0; i < 5; i++) {
		m = enc(p.a, "ping");
		dec_ok(p.b, &m, "ping");
		free(m.w);
		m = enc(p.b, "pong");
		dec_ok(p.a, &m, "pong");
		free(m.w);
	}
	/* The empty message. */
	cr_assert_eq(ratchet_encrypt(p.a, NULL, 0, &w, &wlen), 0);
	cr_assert_eq(wlen, RATCHET_OVERHEAD);
	cr_assert_eq(ratchet_decrypt(p.b, w, wlen, &pt, &ptlen), 0);
	cr_assert_not_null(pt);
	cr_assert_eq(ptlen, 0);
	free(pt);
	free(w);
	cr_assert_eq(ratchet_skipped_count(p.a), 0);
	cr_assert_eq(ratchet_skipped_count(p.b), 0);
	pair_free(&p);
}

Test(ratchet, init_errors)
{
	struct ratchet *r = (struct ratchet *)&r;
	uint8_t sk[32] = {1}, pub[32], sec[32], other[32], big[RATCHET_AD_MAX + 1];

	x25519_keypair(pub, sec);
	x25519_keypair(other, sk);
	memset(big, 0, sizeof(big));
	cr_assert_eq(ratchet_init_alice(&r, sk, big, sizeof(big), pub), SOTTO_ERR_RANGE);
	cr_assert_null(r);
	cr_assert_eq(ratchet_init_alice(&r, sk, big, RATCHET_AD_MAX, pub), 0);
	ratchet_free(r);
	cr_assert_eq(ratchet_init_alice(&r, sk, NULL, 1, pub), SOTTO_ERR_INVALID);
	cr_assert_eq(ratchet_init_alice(&r, NULL, NULL, 0, pub), SOTTO_ERR_INVALID);
	cr_assert_eq(ratchet_init_alice(NULL, sk, NULL, 0, pub), SOTTO_ERR_INVALID);
	cr_assert_eq(ratchet_init_alice_rng(&r, sk, NULL, 0, pub, NULL, NULL), SOTTO_ERR_INVALID);
	/* A signed prekey pair that does not match. */
	cr_assert_eq(ratchet_init_bob(&r, sk, NULL, 0, other, sec), SOTTO_ERR_INVALID);
	cr_assert_null(r);
	cr_assert_eq(ratchet_init_bob(&r, sk, NULL, 0, pub, sec), 0);
	ratchet_free(r);
	ratchet_free(NULL);
}

/* Sessions with different AD (different identities) do not understand each other. */
Test(ratchet, ad_binds)
{
	struct ratchet *a, *b;
	uint8_t sk[32], pub[32], sec[32];
	struct msg m;

	sotto_random(sk, sizeof(sk));
	x25519_keypair(pub, sec);
	cr_assert_eq(ratchet_init_alice(&a, sk, (const uint8_t *)"alice|bob", 9, pub), 0);
	cr_assert_eq(ratchet_init_bob(&b, sk, (const uint8_t *)"alice|eve", 9, pub, sec), 0);
	m = enc(a, "secret");
	dec_fails_unchanged_msg(b, &m, SOTTO_ERR_VERIFY);
	free(m.w);
	ratchet_free(a);
	ratchet_free(b);
}

/* ---- out of order, limits ----------------------------------------------------------------- */

Test(ratchet, out_of_order)
{
	static const int order[] = {3, 0, 9, 1, 8, 2, 7, 4, 6, 5};
	struct msg ms[10], r0, n[3];
	struct pair p;
	size_t i;

	pair_make(&p);
	enc_many(p.a, ms, 0, 10);
	for (i = 0; i < 10; i++)
		dec_ok_many(p.b, ms, order[i]);
	cr_assert_eq(ratchet_skipped_count(p.b), 0);
	msgs_free(ms, 10);

	/* Across a DH step: m0..m4, Bob reads m0 and replies, Alice starts a new chain. */
	enc_many(p.a, ms, 0, 5);
	dec_ok_many(p.b, ms, 0);
	r0 = enc(p.b, "r0");
	dec_ok(p.a, &r0, "r0");
	n[0] = enc(p.a, "n0");
	n[1] = enc(p.a, "n1");
	n[2] = enc(p.a, "n2");
	dec_ok(p.b, &n[1], "n1"); /* PN = 5: m1..m4 and n0 are stored */
	cr_assert_eq(ratchet_skipped_count(p.b), 5);
	dec_ok_many(p.b, ms, 3);
	dec_ok(p.b, &n[0], "n0");
	dec_ok_many(p.b, ms, 1);
	dec_ok_many(p.b, ms, 4);
	dec_ok(p.b, &n[2], "n2");
	dec_ok_many(p.b, ms, 2);
	cr_assert_eq(ratchet_skipped_count(p.b), 0);
	msgs_free(ms, 5);
	msgs_free(n, 3);
	free(r0.w);
	pair_free(&p);
}

/* 1,000 skipped messages are fine; 1,001 are refused and the state stays as it was. */
Test(ratchet, skip_limit)
{
	struct msg *ms;
	struct pair p;
	int i;

	cr_assert_not_null(ms = calloc(2004, sizeof(*ms)));
	pair_make(&p);
	enc_many(p.a, ms, 0, 2004);
	/* The first chain (a DH step at Bob): N = 1001 is one too many. */
	dec_fails_unchanged_msg(p.b, &ms[1001], SOTTO_ERR_RANGE);
	dec_ok_many(p.b, ms, 1000);
	cr_assert_eq(ratchet_skipped_count(p.b), 1000);
	dec_ok_many(p.b, ms, 0);
	dec_ok_many(p.b, ms, 1001);
	/* The same chain: Nr = 1002, so N = 2003 skips 1,001. */
	dec_fails_unchanged_msg(p.b, &ms[2003], SOTTO_ERR_RANGE);
	dec_ok_many(p.b, ms, 2002);
	cr_assert_eq(ratchet_skipped_count(p.b), 999 + 1000);
	dec_ok_many(p.b, ms, 2003);
	for (i = 1; i < 1000; i++)
		dec_ok_many(p.b, ms, i);
	for (i = 1002; i < 2002; i++)
		dec_ok_many(p.b, ms, i);
	cr_assert_eq(ratchet_skipped_count(p.b), 0);
	msgs_free(ms, 2004);
	pair_free(&p);
	free(ms);
}

/* The previous chain's tail (PN - Nr) is bounded the same way. */
Test(ratchet, skip_limit_previous_chain)
{
	struct msg *ms, r0, n0;
	struct pair p;
	int extra;

	cr_assert_not_null(ms = calloc(1002, sizeof(*ms)));
	for (extra = 0; extra <= 1; extra++) {
		pair_make(&p);
		/* Bob reads m0 only, so Nr = 1 and PN - Nr = 1000 + extra. */
		enc_many(p.a, ms, 0, 1001 + extra);
		dec_ok_many(p.b, ms, 0);
		r0 = enc(p.b, "r0");
		dec_ok(p.a, &r0, "r0");
		n0 = enc(p.a, "n0");
		if (extra) {
			dec_fails_unchanged_msg(p.b, &n0, SOTTO_ERR_RANGE);
		} else {
			dec_ok(p.b, &n0, "n0");
			cr_assert_eq(ratchet_skipped_count(p.b), 1000);
			dec_ok_many(p.b, ms, 1000);
		}
		free(r0.w);
		free(n0.w);
		msgs_free(ms, 1001 + extra);
		pair_free(&p);
	}
	free(ms);
}

/* At most 2,000 stored keys: the 2,001st evicts the oldest, which then no longer opens. */
Test(ratchet, skipped_key_cap)
{
	struct msg *c1, *c2, c3[2], r;
	struct pair p;

	cr_assert_not_null(c1 = calloc(1001, sizeof(*c1)));
	cr_assert_not_null(c2 = calloc(1001, sizeof(*c2)));
	pair_make(&p);
	enc_many(p.a, c1, 0, 1001);
	dec_ok_many(p.b, c1, 1000); /* stores c1[0..999] */
	r = enc(p.b, "r");
	dec_ok(p.a, &r, "r");
	free(r.w);
	enc_many(p.a, c2, 0, 1001);
	dec_ok_many(p.b, c2, 1000); /* stores c2[0..999] */
	cr_assert_eq(ratchet_skipped_count(p.b), 2000);
	r = enc(p.b, "r");
	dec_ok(p.a, &r, "r");
	free(r.w);
	c3[0] = enc(p.a, "d0");
	c3[1] = enc(p.a, "d1");
	dec_ok(p.b, &c3[1], "d1"); /* stores d0: the oldest key, c1[0]'s, goes */
	cr_assert_eq(ratchet_skipped_count(p.b), 2000);
	dec_fails_unchanged_msg(p.b, &c1[0], SOTTO_ERR_VERIFY);
	dec_ok_many(p.b, c1, 1);
	dec_ok_many(p.b, c2, 0);
	dec_ok(p.b, &c3[0], "d0");
	cr_assert_eq(ratchet_skipped_count(p.b), 1997);
	msgs_free(c1, 1001);
	msgs_free(c2, 1001);
	msgs_free(c3, 2);
	free(c1);
	free(c2);
	pair_free(&p);
}

/* ---- replay and tampering ----------------------------------------------------------------- */

Test(ratchet, replay)
{
	struct msg ms[3], r0;
	struct pair p;

	pair_make(&p);
	enc_many(p.a, ms, 0, 3);
	dec_ok_many(p.b, ms, 0);
	dec_fails_unchanged_msg(p.b, &ms[0], SOTTO_ERR_VERIFY); /* the chain moved past it */
	dec_ok_many(p.b, ms, 2);
	dec_ok_many(p.b, ms, 1);
	dec_fails_unchanged_msg(p.b, &ms[1], SOTTO_ERR_VERIFY); /* its stored key is gone */
	dec_fails_unchanged_msg(p.b, &ms[2], SOTTO_ERR_VERIFY);
	r0 = enc(p.b, "r0");
	dec_ok(p.a, &r0, "r0");
	dec_fails_unchanged_msg(
	        p.a, &r0, SOTTO_ERR_VERIFY); /* a message that stepped the ratchet */
	msgs_free(ms, 3);
	free(r0.w);
	pair_free(&p);
}

/* Change byte i of m: the receiver must refuse it, as the field predicts, without any change. */
static void
tamper_byte(struct ratchet *r, const struct msg *m, size_t i, uint8_t x)
{
	uint8_t *w, *before, *after, *pt = NULL;
	size_t blen, alen, ptlen;
	int rc, ok;

	cr_assert_not_null(w = malloc(m->len));
	memcpy(w, m->w, m->len);
	w[i] ^= x;
	before = state_of(r, &blen);
	rc = ratchet_decrypt(r, w, m->len, &pt, &ptlen);
	if (i == 0) /* version */
		ok = rc == SOTTO_ERR_FORMAT;
	else if (i < 33) /* ratchet key: wrong, or not a usable point at all */
		ok = rc == SOTTO_ERR_VERIFY || rc == SOTTO_ERR_WEAKKEY;
	else if (i < RATCHET_HEADERBYTES) /* PN or N: a wrong key, or a skip past the limit */
		ok = rc == SOTTO_ERR_VERIFY || rc == SOTTO_ERR_RANGE;
	else /* body or tag */
		ok = rc == SOTTO_ERR_VERIFY;
	cr_assert(ok, "byte %zu ^ 0x%02x: %s", i, x, sotto_strerror(rc));
	cr_assert_null(pt);
	after = state_of(r, &alen);
	cr_assert(
	        blen == alen && memcmp(before, after, blen) == 0, "byte %zu changed the state", i);
	free(before);
	free(after);
	free(w);
}

Test(ratchet, tamper)
{
	struct msg ms[3], r[2];
	struct pair p;
	uint8_t *w;
	size_t i;

	pair_make(&p);
	enc_many(p.a, ms, 0, 3);
	/* Every byte of a first message (a DH step at Bob) and of a same-chain one. */
	for (i = 0; i < ms[0].len; i++) {
		tamper_byte(p.b, &ms[0], i, 0x01);
		tamper_byte(p.b, &ms[0], i, 0x80);
	}
	dec_ok_many(p.b, ms, 0);
	for (i = 0; i < ms[2].len; i++)
		tamper_byte(p.b, &ms[2], i, 0x40);
	/* Truncated, extended, and too short to hold a header and tag. */
	dec_fails_unchanged(p.b, ms[1].w, ms[1].len - 1, SOTTO_ERR_VERIFY);
	cr_assert_not_null(w = malloc(ms[1].len + 1));
	memcpy(w, ms[1].w, ms[1].len);
	w[ms[1].len] = 0;
	dec_fails_unchanged(p.b, w, ms[1].len + 1, SOTTO_ERR_VERIFY);
	free(w);
	dec_fails_unchanged(p.b, ms[1].w, RATCHET_OVERHEAD - 1, SOTTO_ERR_FORMAT);
	dec_fails_unchanged(p.b, ms[1].w, 0, SOTTO_ERR_FORMAT);
	/* Everything still opens afterwards, in either direction. */
	dec_ok_many(p.b, ms, 2);
	dec_ok_many(p.b, ms, 1);
	r[0] = enc(p.b, "r0");
	r[1] = enc(p.b, "r1");
	tamper_byte(p.a, &r[1], 50, 0x02);
	tamper_byte(p.a, &r[1], r[1].len - 1, 0x02);
	dec_ok(p.a, &r[1], "r1");
	dec_ok(p.a, &r[0], "r0");
	msgs_free(ms, 3);
	msgs_free(r, 2);
	pair_free(&p);
}

/* ---- forward secrecy and healing ---------------------------------------------------------- */

/* A copy of the state taken after a message key was used cannot open that message again. */
Test(ratchet, forward_secrecy)
{
	struct ratchet *copy;
	struct msg ms[4];
	struct pair p;

	pair_make(&p);
	enc_many(p.a, ms, 0, 4);
	dec_ok_many(p.b, ms, 0);
	copy = copy_of(p.b);
	dec_fails_unchanged_msg(copy, &ms[0], SOTTO_ERR_VERIFY);
	dec_ok_many(copy, ms, 1); /* the copy is otherwise a working state */
	ratchet_free(copy);

	/* The stored-key path too: m2 first (m1's key stored), then m1. */
	dec_ok_many(p.b, ms, 2);
	dec_ok_many(p.b, ms, 1);
	copy = copy_of(p.b);
	cr_assert_eq(ratchet_skipped_count(copy), 0);
	dec_fails_unchanged_msg(copy, &ms[0], SOTTO_ERR_VERIFY);
	dec_fails_unchanged_msg(copy, &ms[1], SOTTO_ERR_VERIFY);
	dec_fails_unchanged_msg(copy, &ms[2], SOTTO_ERR_VERIFY);
	dec_ok_many(copy, ms, 3);
	ratchet_free(copy);
	msgs_free(ms, 4);
	pair_free(&p);
}

/* Try to open m with the message key of chain key ck after i steps, i < 4. */
static int
attacker_chain_opens(const uint8_t ck_in[32], const uint8_t *ad, size_t adlen, const struct msg *m)
{
	uint8_t ck[32], mk[32], okm[56], *aad, *pt;
	size_t ptlen = m->len - RATCHET_OVERHEAD;
	int i, opened = 0;

	memcpy(ck, ck_in, 32);
	cr_assert_not_null(aad = malloc(adlen + RATCHET_HEADERBYTES));
	cr_assert_not_null(pt = malloc(ptlen + 1));
	memcpy(aad, ad, adlen);
	memcpy(aad + adlen, m->w, RATCHET_HEADERBYTES);
	for (i = 0; i < 4 && !opened; i++) {
		ref_kdf_ck(ck, mk, ck);
		ref_expand(okm, mk);
		opened = aead_xchacha_open(pt, m->w + RATCHET_HEADERBYTES,
		                 m->len - RATCHET_HEADERBYTES, aad, adlen + RATCHET_HEADERBYTES,
		                 okm + 32, okm) == 0;
	}
	free(aad);
	free(pt);
	return opened;
}

/*
 * Everything an attacker holding Alice's old state S and every ciphertext can
 * derive: S's sending chain, the receiving chain of Bob's reply b (reached
 * with S's ratchet secret), and a sending chain from each DH it can compute
 * after that step.  1 if any of them opens m.
 */
static int
attacker_opens(const uint8_t *s, size_t slen, const uint8_t *ad, size_t adlen, const struct msg *b,
        const struct msg *m)
{
	uint8_t dh[32], rk1[32], ckr[32], rk2[32], ck2[32];
	const uint8_t *sec = s + ST_DHS_SEC, *bpub = b->w + 1, *mpub = m->w + 1;

	cr_assert_gt(slen, ST_AD);
	if (attacker_chain_opens(s + ST_CKS, ad, adlen, m))
		return 1;
	cr_assert_eq(x25519_shared(dh, sec, bpub), 0);
	ref_kdf_rk(rk1, ckr, s + ST_RK, dh);
	if (attacker_chain_opens(ckr, ad, adlen, m))
		return 1;
	/* Alice's next chain needs DH(a_new, b): try what the attacker has instead. */
	ref_kdf_rk(rk2, ck2, rk1, dh);
	if (attacker_chain_opens(ck2, ad, adlen, m))
		return 1;
	if (x25519_shared(dh, sec, mpub) == 0) {
		ref_kdf_rk(rk2, ck2, rk1, dh);
		if (attacker_chain_opens(ck2, ad, adlen, m))
			return 1;
	}
	return 0;
}

Test(ratchet, healing)
{
	struct ratchet *stolen;
	struct msg a0, b0, x0, b1, y0, y1;
	struct pair p;
	uint8_t *s, *pt;
	size_t slen, ptlen;

	pair_make(&p);
	a0 = enc(p.a, "a0");
	dec_ok(p.b, &a0, "a0");
	b0 = enc(p.b, "b0");
	dec_ok(p.a, &b0, "b0");
	/* The attacker copies Alice's state now. */
	s = state_of(p.a, &slen);
	stolen = copy_of(p.a);

	/* Compromise is real: Alice's next message in this chain, and Bob's reply, are readable. */
	x0 = enc(p.a, "x0");
	cr_assert(attacker_chain_opens(s + ST_CKS, p.ad, sizeof(p.ad), &x0));
	dec_ok(p.b, &x0, "x0");
	b1 = enc(p.b, "b1"); /* B -> A: Bob's new ratchet key */
	cr_assert_eq(ratchet_decrypt(stolen, b1.w, b1.len, &pt, &ptlen), 0);
	free(pt);
	dec_ok(p.a, &b1, "b1");

	/* A -> B with Alice's fresh ratchet key: the attacker is locked out. */
	y0 = enc(p.a, "y0");
	y1 = enc(p.a, "y1");
	cr_assert_not(attacker_opens(s, slen, p.ad, sizeof(p.ad), &b1, &y0));
	cr_assert_not(attacker_opens(s, slen, p.ad, sizeof(p.ad), &b1, &y1));
	/* Nor does the stolen state, stepped on with b1, make sense of them. */
	pt = NULL;
	cr_assert_neq(ratchet_decrypt(stolen, y0.w, y0.len, &pt, &ptlen), 0);
	cr_assert_null(pt);
	dec_ok(p.b, &y0, "y0");
	dec_ok(p.b, &y1, "y1");
	ratchet_free(stolen);
	sotto_wipe(s, slen);
	free(s);
	free(a0.w);
	free(b0.w);
	free(x0.w);
	free(b1.w);
	free(y0.w);
	free(y1.w);
	pair_free(&p);
}

/* ---- the serialized state ----------------------------------------------------------------- */

/* Two identical universes (same deterministic randomness) stay byte-identical after a round trip. */
Test(ratchet, serialize_roundtrip)
{
	struct kat_rng ra = {KAT_SEED, "rt-alice", 0}, rb = {KAT_SEED, "rt-bob", 0}, ra2, rb2;
	struct ratchet *a, *b, *a2, *b2;
	uint8_t sk[32], spk_sec[32], spk_pub[32], *s1, *s2;
	size_t l1, l2;
	struct msg ms[6], m, m2;
	int i;

	kat_draw(KAT_SEED, sk, 32, "rt/sk");
	kat_draw(KAT_SEED, spk_sec, 32, "rt/spk");
	cr_assert_eq(x25519_public(spk_pub, spk_sec), 0);
	cr_assert_eq(ratchet_init_alice_rng(
	                     &a, sk, (const uint8_t *)"ad", 2, spk_pub, kat_rng_fill, &ra),
	        0);
	cr_assert_eq(ratchet_init_bob(&b, sk, (const uint8_t *)"ad", 2, spk_pub, spk_sec), 0);
	ratchet_set_rng(b, kat_rng_fill, &rb);
	/* Leave skipped keys on both sides and a half-used chain. */
	enc_many(a, ms, 0, 4);
	dec_ok_many(b, ms, 3);
	m = enc(b, "r0");
	m2 = enc(b, "r1");
	dec_ok(a, &m2, "r1");
	msgs_free(&m2, 1);
	cr_assert_eq(ratchet_skipped_count(a), 1);
	cr_assert_eq(ratchet_skipped_count(b), 3);

	s1 = state_of(a, &l1);
	cr_assert_eq(ratchet_deserialize(&a2, s1, l1), 0);
	s2 = state_of(a2, &l2);
	cr_assert_eq(l1, l2);
	cr_assert(memcmp(s1, s2, l1) == 0);
	free(s1);
	free(s2);
	b2 = copy_of(b);
	ra2 = ra;
	rb2 = rb;
	ratchet_set_rng(a2, kat_rng_fill, &ra2);
	ratchet_set_rng(b2, kat_rng_fill, &rb2);

	/* Both universes go on identically, stored keys included. */
	for (i = 0; i < 3; i++) {
		dec_ok_many(b, ms, i);
		dec_ok_many(b2, ms, i);
	}
	dec_ok(a, &m, "r0");
	dec_ok(a2, &m, "r0");
	free(m.w);
	for (i = 0; i < 3; i++) {
		m = enc(a, "more");
		m2 = enc(a2, "more");
		assert_msg_eq(&m, &m2, "after the round trip");
		dec_ok(b2, &m, "more");
		dec_ok(b, &m2, "more");
		free(m.w);
		free(m2.w);
		m = enc(b2, "back");
		m2 = enc(b, "back");
		assert_msg_eq(&m, &m2, "after the round trip");
		dec_ok(a, &m, "back");
		dec_ok(a2, &m2, "back");
		free(m.w);
		free(m2.w);
	}
	msgs_free(ms, 4);
	ratchet_free(a);
	ratchet_free(b);
	ratchet_free(a2);
	ratchet_free(b2);
}

static int
deser(const uint8_t *s, size_t len)
{
	struct ratchet *r = (struct ratchet *)&r;
	int rc = ratchet_deserialize(&r, s, len);

	if (rc != 0)
		cr_assert_null(r);
	ratchet_free(r);
	return rc;
}

Test(ratchet, deserialize_rejects)
{
	struct msg ms[3];
	struct pair p;
	uint8_t *s, *t, *g;
	size_t len, i, cnt_off;

	pair_make(&p);
	enc_many(p.a, ms, 0, 3);
	dec_ok_many(p.b, ms, 2); /* two stored keys */
	s = state_of(p.b, &len);
	cr_assert_eq(len, ST_AD + 4 + sizeof(p.ad) + 4 + 2 * 68);
	cr_assert_eq(s[0], RATCHET_STATE_VERSION);
	cr_assert_eq(deser(s, len), 0);
	cnt_off = ST_AD + 4 + sizeof(p.ad);
	cr_assert_not_null(t = malloc(len + 1));

	for (i = 0; i < len; i++)
		cr_assert_eq(deser(s, i), SOTTO_ERR_FORMAT, "truncated to %zu", i);
	memcpy(t, s, len);
	t[len] = 0;
	cr_assert_eq(deser(t, len + 1), SOTTO_ERR_FORMAT); /* trailing byte */
#define EDIT(off, val, what)                                               \
	do {                                                               \
		memcpy(t, s, len);                                         \
		t[off] = (val);                                            \
		cr_assert_eq(deser(t, len), SOTTO_ERR_FORMAT, "%s", what); \
	} while (0)
	EDIT(0, 0, "version 0");
	EDIT(0, 2, "version 2");
	EDIT(1, (uint8_t)(s[1] | 0x08), "unknown flag");
	EDIT(1, (uint8_t)(s[1] & ~0x04), "receiving chain without its peer key");
	EDIT(ST_DHS_PUB, (uint8_t)(s[ST_DHS_PUB] ^ 1), "public key not matching the secret");
	EDIT(cnt_off + 3, 3, "count larger than the entries present");
	EDIT(cnt_off + 3, 1, "count smaller than the entries present");
	EDIT(cnt_off + 1, 0x10, "count above the cap");
	EDIT(ST_AD + 3, (uint8_t)(sizeof(p.ad) + 1), "AD length");
	EDIT(ST_AD, 0x10, "AD longer than the maximum");
#undef EDIT
	/* A flag cleared while its key is still there. */
	memcpy(t, s, len);
	t[1] = (uint8_t)(s[1] & ~0x01);
	cr_assert_eq(deser(t, len), SOTTO_ERR_FORMAT);
	/* Garbage, with and without a plausible first byte. */
	cr_assert_not_null(g = malloc(4096));
	for (i = 0; i < 200; i++) {
		size_t glen = 1 + (i * 37) % 4096;

		sotto_random(g, glen);
		if (i % 2)
			g[0] = RATCHET_STATE_VERSION;
		cr_assert_eq(deser(g, glen), SOTTO_ERR_FORMAT);
	}
	cr_assert_eq(deser(NULL, 0), SOTTO_ERR_FORMAT);
	free(g);
	free(t);
	free(s);
	msgs_free(ms, 3);
	pair_free(&p);
}

/* ---- known answers: a recorded conversation ----------------------------------------------- */

/*
 * The script: 'a' or 'b' sends message msg; 'A' or 'B' receives it.  It has
 * out-of-order delivery inside a chain and across DH steps, a late message
 * from an old chain, one message never delivered (its key stays stored), and
 * an empty message.
 */
static const struct {
	char op;
	int msg;
} kat_script[] = {
        {'a', 0},
        {'a', 1},
        {'a', 2},
        {'B', 0},
        {'B', 2},
        {'B', 1},
        {'b', 3},
        {'b', 4},
        {'A', 4},
        {'A', 3},
        {'a', 5},
        {'a', 6},
        {'B', 6},
        {'b', 7},
        {'A', 7},
        {'a', 8},
        {'B', 8},
        {'B', 5},
        {'b', 9},
        {'b', 10},
        {'b', 11},
        {'A', 11},
        {'A', 9},
        {'a', 12},
        {'B', 12},
};
#define KAT_MSGS 13

static void
kat_plaintext(char *out, size_t cap, int i)
{
	if (i == 12)
		out[0] = '\0';
	else if (i == 7)
		snprintf(out, cap,
		        "message %d: a longer one, to cross a ChaCha20 block boundary "
		        "and then some more text for good measure.",
		        i);
	else
		snprintf(out, cap, "message %d", i);
}

struct kat_run {
	struct msg wire[KAT_MSGS];
	uint8_t *state_a, *state_b;
	size_t state_a_len, state_b_len;
	uint8_t sk[32], ad[64], spk_sec[32];
};

/* Play the script from the seed; recv checks plaintexts, and wires are kept for the caller. */
static void
kat_play(struct kat_run *run)
{
	struct kat_rng ra = {KAT_SEED, "kat-alice", 0}, rb = {KAT_SEED, "kat-bob", 0};
	struct ratchet *a, *b;
	uint8_t spk_pub[32];
	char text[160];
	size_t i;

	memset(run, 0, sizeof(*run));
	kat_draw(KAT_SEED, run->sk, 32, "kat/sk");
	kat_draw(KAT_SEED, run->ad, sizeof(run->ad), "kat/ad");
	kat_draw(KAT_SEED, run->spk_sec, 32, "kat/spk");
	cr_assert_eq(x25519_public(spk_pub, run->spk_sec), 0);
	cr_assert_eq(ratchet_init_alice_rng(
	                     &a, run->sk, run->ad, sizeof(run->ad), spk_pub, kat_rng_fill, &ra),
	        0);
	cr_assert_eq(
	        ratchet_init_bob(&b, run->sk, run->ad, sizeof(run->ad), spk_pub, run->spk_sec), 0);
	ratchet_set_rng(b, kat_rng_fill, &rb);
	for (i = 0; i < sizeof(kat_script) / sizeof(kat_script[0]); i++) {
		int n = kat_script[i].msg;

		kat_plaintext(text, sizeof(text), n);
		switch (kat_script[i].op) {
		case 'a':
			run->wire[n] = enc(a, text);
			break;
		case 'b':
			run->wire[n] = enc(b, text);
			break;
		case 'A':
			dec_ok(a, &run->wire[n], text);
			break;
		default:
			dec_ok(b, &run->wire[n], text);
			break;
		}
	}
	cr_assert_eq(ratchet_skipped_count(a), 1); /* message 10 never arrived */
	cr_assert_eq(ratchet_skipped_count(b), 0);
	run->state_a = state_of(a, &run->state_a_len);
	run->state_b = state_of(b, &run->state_b_len);
	ratchet_free(a);
	ratchet_free(b);
}

static void
kat_run_free(struct kat_run *run)
{
	msgs_free(run->wire, KAT_MSGS);
	free(run->state_a);
	free(run->state_b);
}

static void
kat_write(void)
{
	char *path = kat_path(KAT_FILE), text[160];
	struct kat_run run;
	size_t i;
	FILE *f;

	kat_play(&run);
	cr_assert_not_null(f = fopen(path, "w"), "cannot write %s", path);
	fprintf(f, "# Double Ratchet known answers for sotto (doc/e2e.md); checked by\n"
	           "# tests/unit/test_ratchet.c.  sk, ad and Bob's signed prekey come from\n"
	           "# HKDF-SHA256(no salt, seed, \"sotto-kat-v1/\" || label); each side's ratchet\n"
	           "# key pairs are the draws \"kat-alice/N\" and \"kat-bob/N\" (N = 0, 1, ...).\n"
	           "# Regenerate with SOTTO_REGEN_KAT=1 (see the test).\n");
	fprintf(f, "seed = %s\n", KAT_SEED);
	kat_put_hex(f, "sk", run.sk, sizeof(run.sk));
	kat_put_hex(f, "ad", run.ad, sizeof(run.ad));
	kat_put_hex(f, "bob_spk_sec", run.spk_sec, sizeof(run.spk_sec));
	fprintf(f, "# script (lower case: send, upper case: receive):");
	for (i = 0; i < sizeof(kat_script) / sizeof(kat_script[0]); i++)
		fprintf(f, " %c%d", kat_script[i].op, kat_script[i].msg);
	fprintf(f, "\n");
	for (i = 0; i < KAT_MSGS; i++) {
		kat_plaintext(text, sizeof(text), (int)i);
		kat_put_msg(f, i, text, run.wire[i].w, run.wire[i].len);
	}
	fprintf(f, "# the serialized states at the end\n");
	kat_put_hex(f, "alice.state", run.state_a, run.state_a_len);
	kat_put_hex(f, "bob.state", run.state_b, run.state_b_len);
	cr_assert_eq(fclose(f), 0);
	kat_run_free(&run);
	free(path);
}

Test(ratchet, kat)
{
	const char *regen = getenv("SOTTO_REGEN_KAT");
	char text[160];
	struct kat_run run;
	struct kat k;
	size_t i;

	if (regen != NULL && strcmp(regen, "1") == 0)
		kat_write();
	kat_load(&k, KAT_FILE);
	cr_assert_str_eq(kat_get(&k, "seed"), KAT_SEED);
	kat_play(&run);
	kat_check(&k, "sk", run.sk, sizeof(run.sk));
	kat_check(&k, "ad", run.ad, sizeof(run.ad));
	kat_check(&k, "bob_spk_sec", run.spk_sec, sizeof(run.spk_sec));
	for (i = 0; i < KAT_MSGS; i++) {
		kat_plaintext(text, sizeof(text), (int)i);
		kat_check_msg(&k, i, text, run.wire[i].w, run.wire[i].len);
	}
	kat_check(&k, "alice.state", run.state_a, run.state_a_len);
	kat_check(&k, "bob.state", run.state_b, run.state_b_len);
	kat_run_free(&run);
	kat_free(&k);
}

/* The recorded final states work: Alice's still opens the undelivered message 10, once. */
Test(ratchet, kat_states_usable)
{
	struct ratchet *a, *b;
	uint8_t *sa, *sb;
	size_t la, lb;
	struct kat k;
	uint8_t *w;
	size_t wlen;
	struct msg m10, m;

	kat_load(&k, KAT_FILE);
	sa = kat_hex(&k, "alice.state", &la);
	sb = kat_hex(&k, "bob.state", &lb);
	cr_assert_eq(ratchet_deserialize(&a, sa, la), 0);
	cr_assert_eq(ratchet_deserialize(&b, sb, lb), 0);
	/* Message 10 was never delivered: Alice's stored key still opens it, once. */
	w = kat_hex(&k, "msg.10.wire", &wlen);
	m10.w = w;
	m10.len = wlen;
	dec_ok(a, &m10, "message 10");
	dec_fails_unchanged_msg(a, &m10, SOTTO_ERR_VERIFY);
	/* And the conversation goes on. */
	m = enc(b, "after the recording");
	dec_ok(a, &m, "after the recording");
	free(m.w);
	m = enc(a, "and back");
	dec_ok(b, &m, "and back");
	free(m.w);
	free(w);
	free(sa);
	free(sb);
	ratchet_free(a);
	ratchet_free(b);
	kat_free(&k);
}
