/*
 * Tests for crypto/senderkey: an independent re-derivation of a message, a
 * recorded run, out-of-order delivery, the skip and stored-key limits,
 * replays, tampering and forgeries (state unchanged), forward secrecy, late
 * joiners, and the serialized states.
 *
 * Known answers live in tests/data/senderkey-kat.txt (read from
 * $SOTTO_SRCDIR, default "."), generated once from the fixed seed below; CI
 * compares against the committed file.  To regenerate it after an intended
 * change, run
 *     SOTTO_REGEN_KAT=1 SOTTO_SRCDIR=$PWD tests/unit/test_senderkey --filter 'senderkey/kat'
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
#include "crypto/senderkey.h"
#include "crypto/util.h"
#include "tests/lib/kat.h"

#ifndef Test
/* cppcheck does not read criterion.h: let it analyse each test as a plain function. */
#define TestSuite(...)         struct test_suite_unused
#define Test(suite, name, ...) void test_##suite##_##name(void)
#endif

#define KAT_FILE "tests/data/senderkey-kat.txt"
#define KAT_SEED "9a41c7e05d2b8f36a1e4c90b7d5f2a68e3b1c04f9d7a25e8b6c3f01a4e9d72b5"
#define KAT_MSGS 7

/* Offsets in the serialized states (doc/e2e.md section 7.5). */
#define ST_ITERATION 6
#define ST_CK        10
#define ST_SEED      42

static const uint8_t group1[SENDERKEY_GROUPBYTES] = {
        0x47, 0x52, 0x4f, 0x55, 0x50, 0x2d, 0x4f, 0x4e, 0x45, 1, 2, 3, 4, 5, 6, 7};
static const uint8_t group2[SENDERKEY_GROUPBYTES] = {
        0x47, 0x52, 0x4f, 0x55, 0x50, 0x2d, 0x54, 0x57, 0x4f, 1, 2, 3, 4, 5, 6, 7};

static void
setup(void)
{
	cr_assert_eq(sotto_crypto_init(), 0);
}

/* cppcheck-suppress unknownMacro */
TestSuite(senderkey, .init = setup, .timeout = 120);

/* ---- helpers ------------------------------------------------------------------------------ */

struct msg {
	uint8_t *w;
	size_t len;
};

static struct senderkey_recv *
recv_from(const struct senderkey_send *s)
{
	struct senderkey_dist d;
	struct senderkey_recv *r;

	cr_assert_eq(senderkey_send_dist(s, &d), 0);
	cr_assert_eq(senderkey_recv_new(&r, &d), 0);
	sotto_wipe(&d, sizeof(d));
	return r;
}

static struct msg
seal(struct senderkey_send *s, const char *text)
{
	struct msg m;

	cr_assert_eq(senderkey_seal(
	                     s, group1, "alice", (const uint8_t *)text, strlen(text), &m.w, &m.len),
	        0);
	cr_assert_eq(m.len, strlen(text) + SENDERKEY_OVERHEAD);
	return m;
}

/* Seal "m<i>" for i in [from, to) into ms. */
static void
seal_many(struct senderkey_send *s, struct msg *ms, int from, int to)
{
	char text[32];
	int i;

	for (i = from; i < to; i++) {
		snprintf(text, sizeof(text), "m%d", i);
		ms[i] = seal(s, text);
	}
}

static void
msgs_free(struct msg *ms, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(ms[i].w);
}

static void
open_ok(struct senderkey_recv *r, const struct msg *m, const char *text)
{
	uint8_t *pt;
	size_t len;
	int rc;

	rc = senderkey_open(r, group1, "alice", m->w, m->len, &pt, &len);
	cr_assert_eq(rc, 0, "open \"%s\": %s", text, sotto_strerror(rc));
	cr_assert_eq(len, strlen(text));
	cr_assert(memcmp(pt, text, len) == 0, "wrong plaintext for \"%s\"", text);
	free(pt);
}

static void
open_i(struct senderkey_recv *r, const struct msg *ms, int i)
{
	char text[32];

	snprintf(text, sizeof(text), "m%d", i);
	open_ok(r, &ms[i], text);
}

/* A malloc'd copy of what b holds (*len bytes); b is freed. */
static uint8_t *
buf_take(struct buf *b, size_t *len)
{
	uint8_t *out;

	*len = buf_len(b);
	cr_assert_not_null(out = malloc(*len));
	memcpy(out, buf_ptr(b), *len);
	buf_free(b);
	return out;
}

static uint8_t *
recv_state(const struct senderkey_recv *r, size_t *len)
{
	struct buf b;

	buf_init_secure(&b, 0);
	cr_assert_eq(senderkey_recv_serialize(r, &b), 0);
	return buf_take(&b, len);
}

static uint8_t *
send_state(const struct senderkey_send *s, size_t *len)
{
	struct buf b;

	buf_init_secure(&b, 0);
	cr_assert_eq(senderkey_send_serialize(s, &b), 0);
	return buf_take(&b, len);
}

/* Opening fails with want, and the state is byte for byte what it was. */
static void
open_fails_as(struct senderkey_recv *r, const uint8_t *group, const char *sender, const uint8_t *w,
        size_t len, int want)
{
	static uint8_t dummy;
	uint8_t *before, *after, *pt = &dummy;
	size_t blen, alen, ptlen = 7;
	int rc;

	before = recv_state(r, &blen);
	rc = senderkey_open(r, group, sender, w, len, &pt, &ptlen);
	cr_assert_eq(rc, want, "got %s, want %s", sotto_strerror(rc), sotto_strerror(want));
	cr_assert_null(pt);
	cr_assert_eq(ptlen, 0);
	after = recv_state(r, &alen);
	cr_assert_eq(blen, alen);
	cr_assert(memcmp(before, after, blen) == 0, "a failed open changed the state");
	free(before);
	free(after);
}

static void
open_fails(struct senderkey_recv *r, const struct msg *m, int want)
{
	open_fails_as(r, group1, "alice", m->w, m->len, want);
}

/* ---- an independent model ----------------------------------------------------------------- */

/* The documented derivation, with crypto/kdf.h and the AEAD and Ed25519 wrappers. */
Test(senderkey, reference_model)
{
	struct senderkey_send *s;
	struct senderkey_dist d;
	uint8_t ck[32], mk[32], next[32], one = 1, two = 2, *pt;
	uint8_t ad[256], signed_msg[512];
	const char *text = "hello, group";
	size_t adlen, ptlen = strlen(text);
	struct msg m;
	struct buf b;

	cr_assert_eq(senderkey_send_new(&s), 0);
	cr_assert_eq(senderkey_send_dist(s, &d), 0);
	cr_assert_eq(d.iteration, 0);
	memcpy(ck, d.chain_key, 32);
	/* Two messages: the model walks the chain one step for the first. */
	free(seal(s, "first").w);
	cr_assert_eq(kdf_hmac_sha256(next, ck, 32, &two, 1), 0);
	memcpy(ck, next, 32);
	m = seal(s, text);
	cr_assert_eq(kdf_hmac_sha256(mk, ck, 32, &one, 1), 0);

	/* header = 01 || key id || iteration 1 || nonce */
	cr_assert_eq(m.w[0], 1);
	cr_assert_eq(
	        (uint32_t)m.w[1] << 24 | (uint32_t)m.w[2] << 16 | (uint32_t)m.w[3] << 8 | m.w[4],
	        d.key_id);
	cr_assert(m.w[5] == 0 && m.w[6] == 0 && m.w[7] == 0 && m.w[8] == 1);
	buf_init(&b, sizeof(ad));
	cr_assert_eq(buf_put(&b, "sotto-senderkey-v1", 18), 0);
	cr_assert_eq(buf_put(&b, group1, 16), 0);
	cr_assert_eq(buf_put_string(&b, "alice", 5), 0);
	cr_assert_eq(buf_put(&b, m.w, SENDERKEY_HEADERBYTES), 0);
	adlen = buf_len(&b);
	memcpy(ad, buf_ptr(&b), adlen);
	buf_free(&b);
	cr_assert_not_null(pt = malloc(ptlen));
	cr_assert_eq(aead_xchacha_open(pt, m.w + SENDERKEY_HEADERBYTES, ptlen + AEAD_ABYTES, ad,
	                     adlen, m.w + 9, mk),
	        0, "the message key is HMAC(ck, 0x01) and the AD is as documented");
	cr_assert(memcmp(pt, text, ptlen) == 0);
	memcpy(signed_msg, ad, adlen);
	memcpy(signed_msg + adlen, m.w + SENDERKEY_HEADERBYTES, ptlen + AEAD_ABYTES);
	cr_assert_eq(ed25519_verify(m.w + SENDERKEY_HEADERBYTES + ptlen + AEAD_ABYTES, 64,
	                     signed_msg, adlen + ptlen + AEAD_ABYTES, d.sign_pub),
	        0, "the signature covers ad || ciphertext");
	/* The sender's chain key is now HMAC(ck, 0x02). */
	cr_assert_eq(kdf_hmac_sha256(next, ck, 32, &two, 1), 0);
	cr_assert_eq(senderkey_send_dist(s, &d), 0);
	cr_assert_eq(d.iteration, 2);
	cr_assert(memcmp(d.chain_key, next, 32) == 0);
	free(pt);
	free(m.w);
	sotto_wipe(&d, sizeof(d));
	senderkey_send_free(s);
}

/* ---- behaviour ---------------------------------------------------------------------------- */

Test(senderkey, in_order_and_empty)
{
	struct senderkey_send *s;
	struct senderkey_recv *r;
	struct msg ms[10], e;

	cr_assert_eq(senderkey_send_new(&s), 0);
	r = recv_from(s);
	seal_many(s, ms, 0, 10);
	for (int i = 0; i < 10; i++)
		open_i(r, ms, i);
	e = seal(s, "");
	open_ok(r, &e, "");
	cr_assert_eq(senderkey_recv_iteration(r), 11);
	cr_assert_eq(senderkey_send_iteration(s), 11);
	cr_assert_eq(senderkey_recv_key_id(r), senderkey_send_key_id(s));
	cr_assert_eq(senderkey_recv_skipped_count(r), 0);
	free(e.w);
	msgs_free(ms, 10);
	senderkey_recv_free(r);
	senderkey_send_free(s);
}

Test(senderkey, out_of_order)
{
	struct senderkey_send *s;
	struct senderkey_recv *r;
	struct msg ms[8];

	cr_assert_eq(senderkey_send_new(&s), 0);
	r = recv_from(s);
	seal_many(s, ms, 0, 8);
	open_i(r, ms, 3);
	cr_assert_eq(senderkey_recv_skipped_count(r), 3);
	open_i(r, ms, 1);
	open_i(r, ms, 7);
	cr_assert_eq(senderkey_recv_skipped_count(r), 5); /* 0, 2, 4, 5, 6 */
	open_i(r, ms, 0);
	open_i(r, ms, 6);
	open_i(r, ms, 2);
	open_i(r, ms, 5);
	open_i(r, ms, 4);
	cr_assert_eq(senderkey_recv_skipped_count(r), 0);
	msgs_free(ms, 8);
	senderkey_recv_free(r);
	senderkey_send_free(s);
}

Test(senderkey, peek)
{
	struct senderkey_send *s;
	struct msg ms[3];
	uint32_t id, it;

	cr_assert_eq(senderkey_send_new(&s), 0);
	seal_many(s, ms, 0, 3);
	cr_assert_eq(senderkey_peek(ms[2].w, ms[2].len, &id, &it), 0);
	cr_assert_eq(id, senderkey_send_key_id(s));
	cr_assert_eq(it, 2);
	cr_assert_eq(senderkey_peek(ms[2].w, SENDERKEY_OVERHEAD - 1, &id, &it), SOTTO_ERR_FORMAT);
	ms[2].w[0] = 2;
	cr_assert_eq(senderkey_peek(ms[2].w, ms[2].len, &id, &it), SOTTO_ERR_FORMAT);
	msgs_free(ms, 3);
	senderkey_send_free(s);
}

Test(senderkey, skip_limit)
{
	enum { N = SENDERKEY_MAX_SKIP + 2 };
	struct senderkey_send *s;
	struct senderkey_recv *r;
	struct msg *ms;

	cr_assert_not_null(ms = calloc(N, sizeof(*ms)));
	cr_assert_eq(senderkey_send_new(&s), 0);
	r = recv_from(s);
	seal_many(s, ms, 0, N);
	/* Iteration 2001 from 0 skips 2001 keys: refused, state unchanged. */
	open_fails(r, &ms[SENDERKEY_MAX_SKIP + 1], SOTTO_ERR_RANGE);
	/* Iteration 2000 skips exactly 2000: accepted, and every skipped key is kept. */
	open_i(r, ms, SENDERKEY_MAX_SKIP);
	cr_assert_eq(senderkey_recv_skipped_count(r), SENDERKEY_MAX_SKIP);
	open_i(r, ms, 0);
	open_i(r, ms, SENDERKEY_MAX_SKIP - 1);
	open_i(r, ms, SENDERKEY_MAX_SKIP + 1);
	msgs_free(ms, N);
	free(ms);
	senderkey_recv_free(r);
	senderkey_send_free(s);
}

Test(senderkey, skipped_key_cap_evicts_oldest)
{
	enum { N = 3002 };
	struct senderkey_send *s;
	struct senderkey_recv *r;
	struct msg *ms;

	cr_assert_not_null(ms = calloc(N, sizeof(*ms)));
	cr_assert_eq(senderkey_send_new(&s), 0);
	r = recv_from(s);
	seal_many(s, ms, 0, N);
	open_i(r, ms, 1500); /* stores 0..1499 */
	cr_assert_eq(senderkey_recv_skipped_count(r), 1500);
	open_i(r, ms, 3001); /* stores 1501..3000: 3000 keys, the oldest 1000 go */
	cr_assert_eq(senderkey_recv_skipped_count(r), SENDERKEY_MAX_SKIPPED_KEYS);
	open_fails(r, &ms[0], SOTTO_ERR_VERIFY);
	open_fails(r, &ms[999], SOTTO_ERR_VERIFY);
	open_i(r, ms, 1000);
	open_i(r, ms, 3000);
	cr_assert_eq(senderkey_recv_skipped_count(r), SENDERKEY_MAX_SKIPPED_KEYS - 2);
	msgs_free(ms, N);
	free(ms);
	senderkey_recv_free(r);
	senderkey_send_free(s);
}

Test(senderkey, replay)
{
	struct senderkey_send *s;
	struct senderkey_recv *r;
	struct msg ms[4];

	cr_assert_eq(senderkey_send_new(&s), 0);
	r = recv_from(s);
	seal_many(s, ms, 0, 4);
	open_i(r, ms, 0);
	open_fails(r, &ms[0], SOTTO_ERR_VERIFY);
	open_i(r, ms, 2);
	open_fails(r, &ms[2], SOTTO_ERR_VERIFY);
	open_i(r, ms, 1); /* from the stored key, once */
	open_fails(r, &ms[1], SOTTO_ERR_VERIFY);
	open_i(r, ms, 3);
	msgs_free(ms, 4);
	senderkey_recv_free(r);
	senderkey_send_free(s);
}

/* Every single-byte change anywhere in a message is refused, and changes nothing. */
Test(senderkey, tamper)
{
	struct senderkey_send *s;
	struct senderkey_recv *r;
	struct msg ms[3];
	uint8_t *w;
	size_t i;
	int want;

	cr_assert_eq(senderkey_send_new(&s), 0);
	r = recv_from(s);
	seal_many(s, ms, 0, 3);
	open_i(r, ms, 0);
	cr_assert_not_null(w = malloc(ms[1].len + 1));
	for (i = 0; i < ms[1].len; i++) {
		memcpy(w, ms[1].w, ms[1].len);
		w[i] ^= 0x40;
		if (i == 0)
			want = SOTTO_ERR_FORMAT; /* the version */
		else if (i < 5)
			want = SOTTO_ERR_NOTFOUND; /* the key id */
		else if (i < 8)
			want = SOTTO_ERR_RANGE; /* an iteration far ahead */
		else
			want = SOTTO_ERR_VERIFY;
		open_fails_as(r, group1, "alice", w, ms[1].len, want);
	}
	memcpy(w, ms[1].w, ms[1].len);
	open_fails_as(r, group1, "alice", w, ms[1].len - 1, SOTTO_ERR_VERIFY);
	w[ms[1].len] = 0;
	open_fails_as(r, group1, "alice", w, ms[1].len + 1, SOTTO_ERR_VERIFY);
	open_fails_as(r, group1, "alice", w, SENDERKEY_OVERHEAD - 1, SOTTO_ERR_FORMAT);
	open_fails_as(r, group1, "alice", w, 0, SOTTO_ERR_FORMAT);
	/* Another group or another sender name: the signature and the AD bind both. */
	open_fails_as(r, group2, "alice", ms[1].w, ms[1].len, SOTTO_ERR_VERIFY);
	open_fails_as(r, group1, "alicf", ms[1].w, ms[1].len, SOTTO_ERR_VERIFY);
	open_fails_as(r, group1, "alic", ms[1].w, ms[1].len, SOTTO_ERR_VERIFY);
	/* Untouched, it still opens. */
	open_i(r, ms, 1);
	open_i(r, ms, 2);
	free(w);
	msgs_free(ms, 3);
	senderkey_recv_free(r);
	senderkey_send_free(s);
}

/*
 * Every member knows the chain key, but only the sender has the signing key:
 * a member who builds a sending state from the distribution, with its own
 * signing key, cannot pass a message off as the sender's.
 */
Test(senderkey, member_cannot_forge)
{
	struct senderkey_send *s, *forger, *mine;
	struct senderkey_recv *r;
	struct senderkey_dist d;
	uint8_t *fake;
	size_t fakelen;
	struct msg m, f;

	cr_assert_eq(senderkey_send_new(&s), 0);
	cr_assert_eq(senderkey_send_new(&mine), 0);
	r = recv_from(s);
	cr_assert_eq(senderkey_send_dist(s, &d), 0);
	/* The forger's state: the sender's chain and key id, the member's own signing key. */
	fake = send_state(mine, &fakelen);
	memcpy(fake + 2,
	        (uint8_t[]){(uint8_t)(d.key_id >> 24), (uint8_t)(d.key_id >> 16),
	                (uint8_t)(d.key_id >> 8), (uint8_t)d.key_id},
	        4);
	memcpy(fake + ST_CK, d.chain_key, 32);
	cr_assert_eq(senderkey_send_deserialize(&forger, fake, fakelen), 0);
	f = seal(forger, "forged");
	open_fails(r, &f, SOTTO_ERR_VERIFY);
	/* The real message at the same iteration opens. */
	m = seal(s, "real");
	open_ok(r, &m, "real");
	free(m.w);
	free(f.w);
	free(fake);
	sotto_wipe(&d, sizeof(d));
	senderkey_send_free(forger);
	senderkey_send_free(mine);
	senderkey_send_free(s);
	senderkey_recv_free(r);
}

/* A receiving state after message n cannot open message n - 1, nor can anything derived from it. */
Test(senderkey, forward_secrecy)
{
	struct senderkey_send *s;
	struct senderkey_recv *r, *copy, *late;
	struct senderkey_dist d;
	uint8_t *st;
	size_t stlen;
	struct msg ms[6];

	cr_assert_eq(senderkey_send_new(&s), 0);
	r = recv_from(s);
	seal_many(s, ms, 0, 6);
	open_i(r, ms, 0);
	open_i(r, ms, 1);
	open_i(r, ms, 2);
	/* The state after message 2, as an attacker would find it on disk. */
	st = recv_state(r, &stlen);
	cr_assert_eq(senderkey_recv_deserialize(&copy, st, stlen), 0);
	open_fails(copy, &ms[1], SOTTO_ERR_VERIFY);
	open_fails(copy, &ms[2], SOTTO_ERR_VERIFY);
	/* Its chain key is past message 2: a receiver started from it at iteration 2 fails too. */
	memcpy(d.chain_key, st + ST_CK, 32);
	d.key_id = senderkey_recv_key_id(r);
	d.iteration = 2;
	{
		struct senderkey_dist sd;

		cr_assert_eq(senderkey_send_dist(s, &sd), 0);
		memcpy(d.sign_pub, sd.sign_pub, 32);
		sotto_wipe(&sd, sizeof(sd));
	}
	cr_assert_eq(senderkey_recv_new(&late, &d), 0);
	open_fails(late, &ms[2], SOTTO_ERR_VERIFY);
	/* The sender's own state after message 5 opens nothing before it either. */
	senderkey_recv_free(late);
	late = recv_from(s);
	cr_assert_eq(senderkey_recv_iteration(late), 6);
	open_fails(late, &ms[5], SOTTO_ERR_VERIFY);
	open_fails(late, &ms[0], SOTTO_ERR_VERIFY);
	open_i(copy, ms, 3);
	sotto_wipe(&d, sizeof(d));
	free(st);
	msgs_free(ms, 6);
	senderkey_recv_free(late);
	senderkey_recv_free(copy);
	senderkey_recv_free(r);
	senderkey_send_free(s);
}

/* A member who joins late gets the current chain and reads only what follows. */
Test(senderkey, late_joiner)
{
	struct senderkey_send *s;
	struct senderkey_recv *early, *late;
	struct msg ms[5];

	cr_assert_eq(senderkey_send_new(&s), 0);
	early = recv_from(s);
	seal_many(s, ms, 0, 3);
	late = recv_from(s);
	seal_many(s, ms, 3, 5);
	open_fails(late, &ms[0], SOTTO_ERR_VERIFY);
	open_fails(late, &ms[2], SOTTO_ERR_VERIFY);
	open_i(late, ms, 4);
	open_i(late, ms, 3);
	for (int i = 0; i < 5; i++)
		open_i(early, ms, i);
	msgs_free(ms, 5);
	senderkey_recv_free(early);
	senderkey_recv_free(late);
	senderkey_send_free(s);
}

/* A new chain (a rekey after a removal) has a new key id: the old state cannot read it. */
Test(senderkey, rekey)
{
	struct senderkey_send *s, *s2;
	struct senderkey_recv *r;
	struct msg m;

	cr_assert_eq(senderkey_send_new(&s), 0);
	cr_assert_eq(senderkey_send_new(&s2), 0);
	cr_assert_neq(senderkey_send_key_id(s), senderkey_send_key_id(s2));
	r = recv_from(s);
	m = seal(s2, "after the rekey");
	open_fails(r, &m, SOTTO_ERR_NOTFOUND);
	free(m.w);
	senderkey_recv_free(r);
	senderkey_send_free(s);
	senderkey_send_free(s2);
}

Test(senderkey, bad_arguments)
{
	struct senderkey_send *s;
	struct senderkey_recv *r;
	char longname[SENDERKEY_SENDER_MAX + 2];
	static uint8_t dummy;
	uint8_t *out = &dummy;
	size_t outlen = 3;
	uint8_t st[SENDERKEY_OVERHEAD];

	cr_assert_eq(senderkey_send_new(&s), 0);
	r = recv_from(s);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	cr_assert_eq(senderkey_seal(s, group1, longname, (const uint8_t *)"x", 1, &out, &outlen),
	        SOTTO_ERR_RANGE);
	cr_assert_null(out);
	cr_assert_eq(senderkey_seal(s, group1, NULL, (const uint8_t *)"x", 1, &out, &outlen),
	        SOTTO_ERR_INVALID);
	cr_assert_eq(senderkey_seal(s, NULL, "a", (const uint8_t *)"x", 1, &out, &outlen),
	        SOTTO_ERR_INVALID);
	cr_assert_eq(senderkey_seal(s, group1, "a", NULL, 1, &out, &outlen), SOTTO_ERR_INVALID);
	memset(st, 0, sizeof(st));
	cr_assert_eq(senderkey_open(r, group1, longname, st, sizeof(st), &out, &outlen),
	        SOTTO_ERR_RANGE);
	cr_assert_eq(senderkey_send_iteration(s), 0, "failed seals do not step the chain");
	cr_assert_eq(senderkey_send_new_rng(&s, NULL, NULL), SOTTO_ERR_INVALID);
	cr_assert_null(s);
	cr_assert_eq(senderkey_recv_new(&r, NULL), SOTTO_ERR_INVALID);
	cr_assert_null(r);
}

/* The last iteration a chain can send, then a clear refusal. */
Test(senderkey, iteration_limit)
{
	struct senderkey_send *s, *end;
	struct senderkey_recv *r;
	uint8_t *st, *out = NULL;
	size_t stlen, outlen;
	struct msg m;

	cr_assert_eq(senderkey_send_new(&s), 0);
	st = send_state(s, &stlen);
	memset(st + ST_ITERATION, 0xff, 4);
	st[ST_ITERATION + 3] = 0xfe;
	cr_assert_eq(senderkey_send_deserialize(&end, st, stlen), 0);
	r = recv_from(end);
	m = seal(end, "last");
	open_ok(r, &m, "last");
	cr_assert_eq(senderkey_seal(end, group1, "alice", (const uint8_t *)"x", 1, &out, &outlen),
	        SOTTO_ERR_RANGE);
	cr_assert_null(out);
	free(m.w);
	free(st);
	senderkey_recv_free(r);
	senderkey_send_free(end);
	senderkey_send_free(s);
}

/* ---- serialization ------------------------------------------------------------------------ */

Test(senderkey, serialize_roundtrip)
{
	struct senderkey_send *s, *s2;
	struct senderkey_recv *r, *r2;
	uint8_t *a, *b;
	size_t alen, blen;
	struct msg ms[6];

	cr_assert_eq(senderkey_send_new(&s), 0);
	r = recv_from(s);
	seal_many(s, ms, 0, 4);
	open_i(r, ms, 3); /* three skipped keys in the state */
	a = recv_state(r, &alen);
	cr_assert_eq(alen, 2 + 4 + 4 + 32 + 32 + 4 + 3 * 36);
	cr_assert_eq(senderkey_recv_deserialize(&r2, a, alen), 0);
	b = recv_state(r2, &blen);
	cr_assert_eq(alen, blen);
	cr_assert(memcmp(a, b, alen) == 0, "the encoding is canonical");
	free(a);
	free(b);
	a = send_state(s, &alen);
	cr_assert_eq(alen, 2 + 4 + 4 + 32 + 32 + 32);
	cr_assert_eq(senderkey_send_deserialize(&s2, a, alen), 0);
	b = send_state(s2, &blen);
	cr_assert(alen == blen && memcmp(a, b, alen) == 0);
	/* The reloaded sender goes on where the first one stopped. */
	seal_many(s2, ms, 4, 6);
	open_i(r2, ms, 5);
	open_i(r2, ms, 1);
	open_i(r2, ms, 4);
	free(a);
	free(b);
	msgs_free(ms, 6);
	senderkey_send_free(s);
	senderkey_send_free(s2);
	senderkey_recv_free(r);
	senderkey_recv_free(r2);
}

static void
recv_rejects(const uint8_t *st, size_t len, const char *why)
{
	struct senderkey_recv *r = (struct senderkey_recv *)1;

	cr_assert_eq(senderkey_recv_deserialize(&r, st, len), SOTTO_ERR_FORMAT, "%s", why);
	cr_assert_null(r);
}

static void
send_rejects(const uint8_t *st, size_t len, const char *why)
{
	struct senderkey_send *s = (struct senderkey_send *)1;

	cr_assert_eq(senderkey_send_deserialize(&s, st, len), SOTTO_ERR_FORMAT, "%s", why);
	cr_assert_null(s);
}

Test(senderkey, deserialize_rejects)
{
	struct senderkey_send *s;
	struct senderkey_recv *r;
	uint8_t *st, *bad;
	size_t len;
	struct msg ms[4];

	cr_assert_eq(senderkey_send_new(&s), 0);
	r = recv_from(s);
	seal_many(s, ms, 0, 4);
	open_i(r, ms, 3);
	st = recv_state(r, &len);
	cr_assert_not_null(bad = malloc(len + 1));
#define MUT(stmt, why)                       \
	do {                                 \
		memcpy(bad, st, len);        \
		stmt;                        \
		recv_rejects(bad, len, why); \
	} while (0)
	MUT(bad[0] = 2, "unknown version");
	MUT(bad[1] = 1, "a sending state");
	MUT(bad[1] = 3, "unknown kind");
	MUT(bad[77] = 4, "count above the entries present");
	MUT(bad[77] = 2, "count below the entries present");
	MUT(bad[81] = 0x10, "a skipped iteration at or past the chain's position");
	MUT(bad[81 + 36] = 0, "skipped keys out of order");
#undef MUT
	recv_rejects(st, len - 1, "truncated");
	recv_rejects(st, 10, "very short");
	recv_rejects(st, 0, "empty");
	memcpy(bad, st, len);
	bad[len] = 0;
	recv_rejects(bad, len + 1, "trailing byte");
	free(st);
	free(bad);

	st = send_state(s, &len);
	cr_assert_not_null(bad = malloc(len + 1));
	memcpy(bad, st, len);
	bad[ST_SEED] ^= 1;
	send_rejects(bad, len, "the public key is not the seed's");
	memcpy(bad, st, len);
	bad[1] = 2;
	send_rejects(bad, len, "a receiving state");
	memcpy(bad, st, len);
	bad[0] = 0;
	send_rejects(bad, len, "unknown version");
	send_rejects(st, len - 1, "truncated");
	memcpy(bad, st, len);
	bad[len] = 0;
	send_rejects(bad, len + 1, "trailing byte");
	free(st);
	free(bad);
	msgs_free(ms, 4);
	senderkey_send_free(s);
	senderkey_recv_free(r);
}

/* ---- known answers ------------------------------------------------------------------------ */

/*
 * The recorded run: the sender's chain, key id, signing seed and nonces come
 * from the "kat-sender" stream.  The receiver, given the distribution at
 * iteration 0, gets the messages in the order below; message 4 never
 * arrives.  A late joiner gets the distribution after message 2.
 */
static const int kat_order[] = {0, 2, 1, 5, 3, 6};

struct kat_run {
	uint8_t dist_ck[32], dist_pub[32], late_ck[32];
	uint32_t key_id;
	struct msg wire[KAT_MSGS];
	uint8_t *send_st, *recv_st;
	size_t send_len, recv_len;
};

static void
kat_plaintext(char *out, size_t cap, int n)
{
	if (n == 6)
		snprintf(out, cap, "%s", "");
	else if (n == 5)
		snprintf(out, cap,
		        "message 5: a longer one, past one ChaCha20 block, so that the "
		        "known answer covers more than a single keystream block.");
	else
		snprintf(out, cap, "message %d", n);
}

static void
kat_play(struct kat_run *run)
{
	struct kat_rng rs = {KAT_SEED, "kat-sender", 0};
	struct senderkey_send *s;
	struct senderkey_recv *r;
	struct senderkey_dist d;
	char text[200];
	size_t i;

	memset(run, 0, sizeof(*run));
	cr_assert_eq(senderkey_send_new_rng(&s, kat_rng_fill, &rs), 0);
	cr_assert_eq(senderkey_send_dist(s, &d), 0);
	memcpy(run->dist_ck, d.chain_key, 32);
	memcpy(run->dist_pub, d.sign_pub, 32);
	run->key_id = d.key_id;
	cr_assert_eq(senderkey_recv_new(&r, &d), 0);
	for (i = 0; i < KAT_MSGS; i++) {
		kat_plaintext(text, sizeof(text), (int)i);
		cr_assert_eq(senderkey_seal(s, group1, "alice", (const uint8_t *)text, strlen(text),
		                     &run->wire[i].w, &run->wire[i].len),
		        0);
		if (i == 2) {
			cr_assert_eq(senderkey_send_dist(s, &d), 0);
			memcpy(run->late_ck, d.chain_key, 32);
		}
	}
	for (i = 0; i < sizeof(kat_order) / sizeof(kat_order[0]); i++) {
		kat_plaintext(text, sizeof(text), kat_order[i]);
		open_ok(r, &run->wire[kat_order[i]], text);
	}
	cr_assert_eq(senderkey_recv_skipped_count(r), 1); /* message 4 never arrived */
	run->send_st = send_state(s, &run->send_len);
	run->recv_st = recv_state(r, &run->recv_len);
	sotto_wipe(&d, sizeof(d));
	senderkey_send_free(s);
	senderkey_recv_free(r);
}

static void
kat_run_free(struct kat_run *run)
{
	msgs_free(run->wire, KAT_MSGS);
	free(run->send_st);
	free(run->recv_st);
}

static void
kat_write(void)
{
	char *path = kat_path(KAT_FILE), text[200];
	struct kat_run run;
	uint8_t kid[4];
	size_t i;
	FILE *f;

	kat_play(&run);
	cr_assert_not_null(f = fopen(path, "w"), "cannot write %s", path);
	fprintf(f, "# Sender-key known answers for sotto (doc/e2e.md section 7); checked by\n"
	           "# tests/unit/test_senderkey.c.  The sender's chain key, key id, signing seed\n"
	           "# and nonces are the draws \"kat-sender/N\" (N = 0, 1, ...) from\n"
	           "# HKDF-SHA256(no salt, seed, \"sotto-kat-v1/\" || label).  The group id is\n"
	           "# given below and the sender is \"alice\".\n"
	           "# Regenerate with SOTTO_REGEN_KAT=1 (see the test).\n");
	fprintf(f, "seed = %s\n", KAT_SEED);
	kat_put_hex(f, "group", group1, sizeof(group1));
	kid[0] = (uint8_t)(run.key_id >> 24);
	kid[1] = (uint8_t)(run.key_id >> 16);
	kid[2] = (uint8_t)(run.key_id >> 8);
	kid[3] = (uint8_t)run.key_id;
	kat_put_hex(f, "dist.key_id", kid, 4);
	kat_put_hex(f, "dist.chain_key", run.dist_ck, 32);
	kat_put_hex(f, "dist.sign_pub", run.dist_pub, 32);
	fprintf(f, "# the chain key handed to a member who joins after message 2 (iteration 3)\n");
	kat_put_hex(f, "late.chain_key", run.late_ck, 32);
	fprintf(f, "# delivery order (message 4 never arrives):");
	for (i = 0; i < sizeof(kat_order) / sizeof(kat_order[0]); i++)
		fprintf(f, " %d", kat_order[i]);
	fprintf(f, "\n");
	for (i = 0; i < KAT_MSGS; i++) {
		kat_plaintext(text, sizeof(text), (int)i);
		kat_put_msg(f, i, text, run.wire[i].w, run.wire[i].len);
	}
	fprintf(f, "# the serialized states at the end\n");
	kat_put_hex(f, "sender.state", run.send_st, run.send_len);
	kat_put_hex(f, "receiver.state", run.recv_st, run.recv_len);
	cr_assert_eq(fclose(f), 0);
	kat_run_free(&run);
	free(path);
}

Test(senderkey, kat)
{
	const char *regen = getenv("SOTTO_REGEN_KAT");
	char text[200];
	struct kat_run run;
	uint8_t kid[4];
	struct kat k;
	size_t i;

	if (regen != NULL && strcmp(regen, "1") == 0)
		kat_write();
	kat_load(&k, KAT_FILE);
	cr_assert_str_eq(kat_get(&k, "seed"), KAT_SEED);
	kat_play(&run);
	kat_check(&k, "group", group1, sizeof(group1));
	kid[0] = (uint8_t)(run.key_id >> 24);
	kid[1] = (uint8_t)(run.key_id >> 16);
	kid[2] = (uint8_t)(run.key_id >> 8);
	kid[3] = (uint8_t)run.key_id;
	kat_check(&k, "dist.key_id", kid, 4);
	kat_check(&k, "dist.chain_key", run.dist_ck, 32);
	kat_check(&k, "dist.sign_pub", run.dist_pub, 32);
	kat_check(&k, "late.chain_key", run.late_ck, 32);
	for (i = 0; i < KAT_MSGS; i++) {
		kat_plaintext(text, sizeof(text), (int)i);
		kat_check_msg(&k, i, text, run.wire[i].w, run.wire[i].len);
	}
	kat_check(&k, "sender.state", run.send_st, run.send_len);
	kat_check(&k, "receiver.state", run.recv_st, run.recv_len);
	kat_run_free(&run);
	kat_free(&k);
}

/* The recorded receiver opens the undelivered message 4, once; a late joiner reads 3 on. */
Test(senderkey, kat_states_usable)
{
	struct senderkey_recv *r, *late;
	struct senderkey_dist d;
	struct msg m4, m2, m3;
	uint8_t *st, kid[4];
	size_t len;
	struct kat k;

	kat_load(&k, KAT_FILE);
	st = kat_hex(&k, "receiver.state", &len);
	cr_assert_eq(senderkey_recv_deserialize(&r, st, len), 0);
	m4.w = kat_hex(&k, "msg.4.wire", &m4.len);
	open_ok(r, &m4, "message 4");
	open_fails(r, &m4, SOTTO_ERR_VERIFY);
	/* A member who joined after message 2. */
	kat_hex_fixed(&k, "dist.key_id", kid, 4);
	d.key_id = (uint32_t)kid[0] << 24 | (uint32_t)kid[1] << 16 | (uint32_t)kid[2] << 8 | kid[3];
	d.iteration = 3;
	kat_hex_fixed(&k, "late.chain_key", d.chain_key, 32);
	kat_hex_fixed(&k, "dist.sign_pub", d.sign_pub, 32);
	cr_assert_eq(senderkey_recv_new(&late, &d), 0);
	m2.w = kat_hex(&k, "msg.2.wire", &m2.len);
	m3.w = kat_hex(&k, "msg.3.wire", &m3.len);
	open_fails(late, &m2, SOTTO_ERR_VERIFY);
	open_ok(late, &m3, "message 3");
	sotto_wipe(&d, sizeof(d));
	free(m2.w);
	free(m3.w);
	free(m4.w);
	free(st);
	senderkey_recv_free(r);
	senderkey_recv_free(late);
	kat_free(&k);
}
