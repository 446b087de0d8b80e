/*
 * Tests for crypto/x3dh: agreement for every pair of identity types, the
 * header's wire form, tampering, wrong keys, and known answers.
 *
 * Known answers live in tests/data/x3dh-kat.txt (read from $SOTTO_SRCDIR,
 * default "."), generated once from the fixed seed below; CI compares against
 * the committed file.  To regenerate it after an intended change, run
 *     SOTTO_REGEN_KAT=1 SOTTO_SRCDIR=$PWD tests/unit/test_x3dh --filter 'x3dh/kat'
 * from the source tree, which writes the file (with fresh RSA keys) and then
 * checks it; commit the result together with the change.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "crypto/buf.h"
#include "crypto/ecc.h"
#include "crypto/kdf.h"
#include "crypto/ratchet.h"
#include "crypto/rsa.h"
#include "crypto/util.h"
#include "tests/lib/kat.h"
#include "crypto/x3dh.h"

#ifndef Test
/* cppcheck does not read criterion.h: let it analyse each test as a plain function. */
#define TestSuite(...)         struct test_suite_unused
#define Test(suite, name, ...) void test_##suite##_##name(void)
#endif

#define KAT_FILE "tests/data/x3dh-kat.txt"
#define KAT_SEED "7e3ac1d09b5f4e2a8c6d1b0f3a9e5d7c2b4f6a8e0d1c3b5a7f9e2d4c6b8a0f1e"

static void
setup(void)
{
	cr_assert_eq(sotto_crypto_init(), 0);
}

/* cppcheck-suppress unknownMacro */
TestSuite(x3dh, .init = setup, .timeout = 120);

/* ---- identities and prekeys ------------------------------------------------------------- */

static const uint8_t ed25519_spki_prefix[] = {
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};

struct ident {
	enum x3dh_id_type type;
	uint8_t ed_pk[ED25519_PUBLICKEYBYTES];
	uint8_t ed_sk[ED25519_SECRETKEYBYTES];
	EVP_PKEY *rsa;
	uint8_t *enc;
	size_t enclen;
};

static void
ident_ed(struct ident *id, const uint8_t seed[ED25519_SEEDBYTES])
{
	memset(id, 0, sizeof(*id));
	id->type = X3DH_ID_ED25519;
	ed25519_seed_keypair(id->ed_pk, id->ed_sk, seed);
	id->enclen = sizeof(ed25519_spki_prefix) + ED25519_PUBLICKEYBYTES;
	cr_assert_not_null(id->enc = malloc(id->enclen));
	memcpy(id->enc, ed25519_spki_prefix, sizeof(ed25519_spki_prefix));
	memcpy(id->enc + sizeof(ed25519_spki_prefix), id->ed_pk, ED25519_PUBLICKEYBYTES);
}

/* An RSA identity around pkey, which it takes over. */
static void
ident_rsa(struct ident *id, EVP_PKEY *pkey)
{
	unsigned char *der = NULL;
	int n;

	memset(id, 0, sizeof(*id));
	id->type = X3DH_ID_RSA;
	id->rsa = pkey;
	cr_assert_gt(n = i2d_PUBKEY(pkey, &der), 0);
	cr_assert_not_null(id->enc = malloc((size_t)n));
	memcpy(id->enc, der, (size_t)n);
	id->enclen = (size_t)n;
	OPENSSL_free(der);
}

static void
ident_free(struct ident *id)
{
	EVP_PKEY_free(id->rsa);
	free(id->enc);
	sotto_wipe(id, sizeof(*id));
}

static struct x3dh_priv
ident_priv(const struct ident *id)
{
	struct x3dh_priv p;

	memset(&p, 0, sizeof(p));
	p.type = id->type;
	p.ed25519_sk = id->type == X3DH_ID_ED25519 ? id->ed_sk : NULL;
	p.rsa = id->rsa;
	p.enc = id->enc;
	p.enclen = id->enclen;
	return p;
}

static struct x3dh_pub
ident_pub(const struct ident *id)
{
	struct x3dh_pub p;

	memset(&p, 0, sizeof(p));
	p.type = id->type;
	p.ed25519_pk = id->type == X3DH_ID_ED25519 ? id->ed_pk : NULL;
	p.rsa = id->rsa;
	p.enc = id->enc;
	p.enclen = id->enclen;
	return p;
}

static EVP_PKEY *
rsa_from_hex(const struct kat *k, const char *name)
{
	EVP_PKEY *pkey = NULL;
	uint8_t *der;
	size_t len;

	der = kat_hex(k, name, &len);
	cr_assert_eq(rsa_private_from_der(&pkey, der, len), 0);
	free(der);
	return pkey;
}

/* The responder's prekeys: two signed prekeys (current, previous) and two one-time prekeys. */
struct prekeys {
	uint32_t spk_id[2], opk_id[2];
	uint8_t spk_sec[2][32], spk_pub[2][32];
	uint8_t opk_sec[2][32], opk_pub[2][32];
};

static void
prekeys_make(struct prekeys *pk)
{
	int i;

	for (i = 0; i < 2; i++) {
		x25519_keypair(pk->spk_pub[i], pk->spk_sec[i]);
		x25519_keypair(pk->opk_pub[i], pk->opk_sec[i]);
		pk->spk_id[i] = 7 - (uint32_t)i;
		pk->opk_id[i] = 1000 + (uint32_t)i;
	}
}

static struct x3dh_bundle
bundle_of(const struct ident *b, const struct prekeys *pk, int with_opk)
{
	struct x3dh_bundle bd;

	memset(&bd, 0, sizeof(bd));
	bd.id = ident_pub(b);
	bd.spk_id = pk->spk_id[0];
	memcpy(bd.spk, pk->spk_pub[0], 32);
	if (with_opk) {
		bd.has_opk = 1;
		bd.opk_id = pk->opk_id[0];
		memcpy(bd.opk, pk->opk_pub[0], 32);
	}
	return bd;
}

/*
 * What a client does on receipt: look the prekeys up by the header's ids.
 * SOTTO_ERR_NOTFOUND (as a client would report it) for an unknown id.
 */
static int
lookup_prekeys(struct x3dh_prekeys *out, const struct prekeys *pk, const struct x3dh_header *h)
{
	int i, found = 0;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < 2; i++)
		if (pk->spk_id[i] == h->spk_id) {
			out->spk_id = h->spk_id;
			out->spk_sec = pk->spk_sec[i];
			found = 1;
		}
	if (!found)
		return SOTTO_ERR_NOTFOUND;
	if (!h->has_opk)
		return 0;
	for (i = 0; i < 2; i++)
		if (pk->opk_id[i] == h->opk_id) {
			out->has_opk = 1;
			out->opk_id = h->opk_id;
			out->opk_sec = pk->opk_sec[i];
			return 0;
		}
	return SOTTO_ERR_NOTFOUND;
}

/* Respond as b to header h from a; the session or NULL with *rc set. */
static struct x3dh_session *
respond(int *rc, const struct ident *b, const struct prekeys *pk, const struct ident *a,
        const struct x3dh_header *h)
{
	struct x3dh_session *s = NULL;
	struct x3dh_prekeys pks;
	struct x3dh_priv bp = ident_priv(b);
	struct x3dh_pub ap = ident_pub(a);

	if ((*rc = lookup_prekeys(&pks, pk, h)) != 0)
		return NULL;
	*rc = x3dh_respond(&s, &bp, &pks, &ap, h);
	if (*rc != 0)
		cr_assert_null(s);
	return s;
}

/* ---- shared fixture: identities of each type, RSA keys from the known-answer file -------- */

struct fixture {
	struct ident a[3], b[3]; /* indexed by enum x3dh_id_type */
	struct ident other_ed, other_rsa;
	struct prekeys pk;
};

static void
fixture_load(struct fixture *fx)
{
	struct kat k;
	uint8_t seed[32];

	memset(fx, 0, sizeof(*fx));
	kat_load(&k, KAT_FILE);
	sotto_random(seed, sizeof(seed));
	ident_ed(&fx->a[X3DH_ID_ED25519], seed);
	sotto_random(seed, sizeof(seed));
	ident_ed(&fx->b[X3DH_ID_ED25519], seed);
	sotto_random(seed, sizeof(seed));
	ident_ed(&fx->other_ed, seed);
	ident_rsa(&fx->a[X3DH_ID_RSA], rsa_from_hex(&k, "rsa_a_pkcs8"));
	ident_rsa(&fx->b[X3DH_ID_RSA], rsa_from_hex(&k, "rsa_b_pkcs8"));
	/* The wrong RSA key is A's, in the role of B or of an impostor. */
	ident_rsa(&fx->other_rsa, rsa_from_hex(&k, "rsa_a_pkcs8"));
	prekeys_make(&fx->pk);
	kat_free(&k);
}

static void
fixture_free(struct fixture *fx)
{
	int i;

	for (i = 1; i <= 2; i++) {
		ident_free(&fx->a[i]);
		ident_free(&fx->b[i]);
	}
	ident_free(&fx->other_ed);
	ident_free(&fx->other_rsa);
}

static const char *
type_name(enum x3dh_id_type t)
{
	return t == X3DH_ID_ED25519 ? "ed25519" : "rsa";
}

/* Initiate from fx->a[ta] to fx->b[tb]. */
static struct x3dh_session *
initiate(struct fixture *fx, struct x3dh_header *h, enum x3dh_id_type ta, enum x3dh_id_type tb,
        int with_opk)
{
	struct x3dh_session *s = NULL;
	struct x3dh_priv ap = ident_priv(&fx->a[ta]);
	struct x3dh_bundle bd = bundle_of(&fx->b[tb], &fx->pk, with_opk);

	cr_assert_eq(x3dh_initiate(&s, h, &ap, &bd), 0, "%s -> %s", type_name(ta), type_name(tb));
	cr_assert_not_null(s);
	return s;
}

static int
same_sk(const struct x3dh_session *x, const struct x3dh_session *y)
{
	return memcmp(x->sk, y->sk, X3DH_SKBYTES) == 0;
}

/* b (type tb) refuses the altered header t from a (type ta) with want, and makes no session. */
static void
refused(struct fixture *fx, int tb, int ta, const struct x3dh_header *t, int want)
{
	struct x3dh_session *sb;
	int rc;

	sb = respond(&rc, &fx->b[tb], &fx->pk, &fx->a[ta], t);
	cr_assert_eq(rc, want, "%s, want %s", sotto_strerror(rc), sotto_strerror(want));
	cr_assert_null(sb);
}

/* b (type tb) accepts the altered header t from a (type ta), but agrees on another SK than sa. */
static void
accepted_other_sk(struct fixture *fx, const struct x3dh_session *sa, int tb, int ta,
        const struct x3dh_header *t, const char *what)
{
	struct x3dh_session *sb;
	int rc;

	sb = respond(&rc, &fx->b[tb], &fx->pk, &fx->a[ta], t);
	cr_assert_eq(rc, 0, "%s: %s", what, sotto_strerror(rc));
	cr_assert_not(same_sk(sa, sb), "%s", what);
	x3dh_session_free(sb);
}

/* ---- agreement ---------------------------------------------------------------------------- */

Test(x3dh, agree_all_pairs)
{
	struct fixture fx;
	struct x3dh_header h;
	struct x3dh_session *sa, *sb, *prev = NULL;
	struct buf ad;
	int ta, tb, opk, rc;

	fixture_load(&fx);
	for (ta = 1; ta <= 2; ta++)
		for (tb = 1; tb <= 2; tb++)
			for (opk = 0; opk <= 1; opk++) {
				sa = initiate(&fx, &h, ta, tb, opk);
				cr_assert_eq(h.version, X3DH_VERSION);
				cr_assert_eq(h.has_opk, opk);
				cr_assert_eq(h.spk_id, fx.pk.spk_id[0]);
				cr_assert_eq(h.opk_id, opk ? fx.pk.opk_id[0] : 0);
				/* A signature exactly for an RSA initiator, OAEP exactly for RSA B. */
				cr_assert_eq(h.siglen > 0, ta == X3DH_ID_RSA);
				cr_assert_eq(h.oaep_ct_len > 0, tb == X3DH_ID_RSA);
				if (tb == X3DH_ID_RSA)
					cr_assert_eq(h.oaep_ct_len, 512); /* RSA-4096 */
				sb = respond(&rc, &fx.b[tb], &fx.pk, &fx.a[ta], &h);
				cr_assert_eq(rc, 0, "%s -> %s opk %d: %s", type_name(ta),
				        type_name(tb), opk, sotto_strerror(rc));
				cr_assert(same_sk(sa, sb));
				cr_assert_eq(sa->adlen, sb->adlen);
				cr_assert(memcmp(sa->ad, sb->ad, sa->adlen) == 0);
				/* AD = string(enc_A) || string(enc_B). */
				buf_init(&ad, 0);
				cr_assert_eq(buf_put_string(&ad, fx.a[ta].enc, fx.a[ta].enclen), 0);
				cr_assert_eq(buf_put_string(&ad, fx.b[tb].enc, fx.b[tb].enclen), 0);
				cr_assert_eq(buf_len(&ad), sa->adlen);
				cr_assert(memcmp(buf_ptr(&ad), sa->ad, sa->adlen) == 0);
				buf_free(&ad);
				/* Every handshake gives a fresh SK. */
				if (prev != NULL)
					cr_assert_not(same_sk(prev, sa));
				x3dh_session_free(prev);
				prev = sa;
				x3dh_session_free(sb);
			}
	x3dh_session_free(prev);
	fixture_free(&fx);
}

/* x3dh then the ratchet: the first message from A opens at B for every pair. */
Test(x3dh, session_to_ratchet)
{
	struct fixture fx;
	struct x3dh_header h;
	struct x3dh_session *sa, *sb;
	struct ratchet *ra, *rb;
	uint8_t *wire, *pt;
	size_t wlen, plen;
	int ta, tb, rc;

	fixture_load(&fx);
	for (ta = 1; ta <= 2; ta++)
		for (tb = 1; tb <= 2; tb++) {
			sa = initiate(&fx, &h, ta, tb, 1);
			sb = respond(&rc, &fx.b[tb], &fx.pk, &fx.a[ta], &h);
			cr_assert_eq(rc, 0);
			cr_assert_eq(ratchet_init_alice(
			                     &ra, sa->sk, sa->ad, sa->adlen, fx.pk.spk_pub[0]),
			        0);
			cr_assert_eq(ratchet_init_bob(&rb, sb->sk, sb->ad, sb->adlen,
			                     fx.pk.spk_pub[0], fx.pk.spk_sec[0]),
			        0);
			cr_assert_eq(
			        ratchet_encrypt(ra, (const uint8_t *)"hello", 5, &wire, &wlen), 0);
			cr_assert_eq(ratchet_decrypt(rb, wire, wlen, &pt, &plen), 0);
			cr_assert_eq(plen, 5);
			cr_assert(memcmp(pt, "hello", 5) == 0);
			free(pt);
			free(wire);
			cr_assert_eq(
			        ratchet_encrypt(rb, (const uint8_t *)"hi", 2, &wire, &wlen), 0);
			cr_assert_eq(ratchet_decrypt(ra, wire, wlen, &pt, &plen), 0);
			cr_assert_eq(plen, 2);
			free(pt);
			free(wire);
			ratchet_free(ra);
			ratchet_free(rb);
			x3dh_session_free(sa);
			x3dh_session_free(sb);
		}
	fixture_free(&fx);
}

/* ---- header wire form --------------------------------------------------------------------- */

Test(x3dh, header_roundtrip)
{
	struct fixture fx;
	struct x3dh_header h, g;
	struct x3dh_session *s;
	struct buf b;
	const uint8_t *p;
	size_t len, i;
	uint8_t u8;

	fixture_load(&fx);
	s = initiate(&fx, &h, X3DH_ID_RSA, X3DH_ID_RSA, 1);
	buf_init(&b, 0);
	cr_assert_eq(x3dh_header_put(&b, &h), 0);
	len = buf_len(&b);
	cr_assert_eq(len, X3DH_HEADER_MINBYTES + h.oaep_ct_len + h.siglen);
	p = buf_ptr(&b);
	/* version || EK_A || u32 spk_id || u8 has_opk || u32 opk_id || string ct || string sig */
	cr_assert_eq(p[0], X3DH_VERSION);
	cr_assert(memcmp(p + 1, h.ek, 32) == 0);
	cr_assert_eq(((uint32_t)p[33] << 24 | (uint32_t)p[34] << 16 | (uint32_t)p[35] << 8 | p[36]),
	        h.spk_id);
	cr_assert_eq(p[37], 1);
	cr_assert_eq(((uint32_t)p[38] << 24 | (uint32_t)p[39] << 16 | (uint32_t)p[40] << 8 | p[41]),
	        h.opk_id);
	cr_assert_eq(x3dh_header_parse(&g, p, len), 0);
	cr_assert(memcmp(&g.ek, &h.ek, 32) == 0);
	cr_assert_eq(g.spk_id, h.spk_id);
	cr_assert_eq(g.opk_id, h.opk_id);
	cr_assert_eq(g.oaep_ct_len, h.oaep_ct_len);
	cr_assert(memcmp(g.oaep_ct, h.oaep_ct, h.oaep_ct_len) == 0);
	cr_assert_eq(g.siglen, h.siglen);
	cr_assert(memcmp(g.sig, h.sig, h.siglen) == 0);
	/* Every truncation is malformed. */
	for (i = 0; i < len; i++)
		cr_assert_eq(x3dh_header_parse(&g, p, i), SOTTO_ERR_FORMAT, "length %zu", i);
	/* A failed get consumes nothing. */
	{
		struct buf part;

		buf_init_reader(&part, p, len - 1);
		cr_assert_eq(x3dh_header_get(&g, &part), SOTTO_ERR_FORMAT);
		cr_assert_eq(buf_len(&part), len - 1);
	}
	/* Trailing bytes are refused by parse but left for the caller by get. */
	cr_assert_eq(buf_put_u8(&b, 0xab), 0);
	p = buf_ptr(&b);
	cr_assert_eq(x3dh_header_parse(&g, p, len + 1), SOTTO_ERR_FORMAT);
	cr_assert_eq(x3dh_header_get(&g, &b), 0);
	cr_assert_eq(buf_len(&b), 1);
	cr_assert_eq(buf_get_u8(&b, &u8), 0);
	cr_assert_eq(u8, 0xab);
	buf_free(&b);
	x3dh_session_free(s);
	fixture_free(&fx);
}

/* Serialize h, let edit change byte i, and parse the result. */
static int
parse_edited(const struct x3dh_header *h, size_t i, uint8_t v)
{
	struct x3dh_header g;
	struct buf b;
	uint8_t *copy;
	size_t len;
	int rc;

	buf_init(&b, 0);
	cr_assert_eq(x3dh_header_put(&b, h), 0);
	len = buf_len(&b);
	cr_assert_lt(i, len);
	cr_assert_not_null(copy = malloc(len));
	memcpy(copy, buf_ptr(&b), len);
	copy[i] = v;
	rc = x3dh_header_parse(&g, copy, len);
	free(copy);
	buf_free(&b);
	return rc;
}

Test(x3dh, header_malformed)
{
	struct fixture fx;
	struct x3dh_header h, g;
	struct x3dh_session *s;
	struct buf b;
	int i;

	fixture_load(&fx);
	s = initiate(&fx, &h, X3DH_ID_ED25519, X3DH_ID_ED25519, 0);
	/* Unknown versions, a has_opk that is neither 0 nor 1, an opk_id without an OPK. */
	cr_assert_eq(parse_edited(&h, 0, 0), SOTTO_ERR_FORMAT);
	cr_assert_eq(parse_edited(&h, 0, 2), SOTTO_ERR_FORMAT);
	cr_assert_eq(parse_edited(&h, 37, 2), SOTTO_ERR_FORMAT);
	cr_assert_eq(parse_edited(&h, 41, 1), SOTTO_ERR_FORMAT);
	/* An OAEP string longer than any RSA modulus. */
	buf_init(&b, 0);
	cr_assert_eq(buf_put_u8(&b, X3DH_VERSION), 0);
	cr_assert_eq(buf_put(&b, h.ek, 32), 0);
	cr_assert_eq(buf_put_u32(&b, 1), 0);
	cr_assert_eq(buf_put_u8(&b, 0), 0);
	cr_assert_eq(buf_put_u32(&b, 0), 0);
	cr_assert_eq(buf_put_u32(&b, RSA_MAX_BYTES + 1), 0);
	for (i = 0; i < RSA_MAX_BYTES + 1; i++)
		cr_assert_eq(buf_put_u8(&b, 0), 0);
	cr_assert_eq(buf_put_u32(&b, 0), 0);
	cr_assert_eq(x3dh_header_parse(&g, buf_ptr(&b), buf_len(&b)), SOTTO_ERR_FORMAT);
	buf_free(&b);
	/* Writing a structurally invalid header is refused too. */
	h.has_opk = 3;
	buf_init(&b, 0);
	cr_assert_eq(x3dh_header_put(&b, &h), SOTTO_ERR_INVALID);
	buf_free(&b);
	x3dh_session_free(s);
	fixture_free(&fx);
}

/* ---- tampering ---------------------------------------------------------------------------- */

/*
 * Ed25519 initiator: nothing is signed, so tampering is caught implicitly.
 * EK_A: a different SK.  spk_id / opk_id: the responder looks up another
 * prekey (a different SK) or none (lookup fails).  has_opk cleared: DH4 is
 * missing, a different SK.  version: SOTTO_ERR_FORMAT.  A signature or OAEP
 * ciphertext where none belongs: SOTTO_ERR_FORMAT.
 */
Test(x3dh, tamper_ed25519_initiator)
{
	struct fixture fx;
	struct x3dh_header h, t;
	struct x3dh_session *sa, *sb;
	int tb, rc;

	fixture_load(&fx);
	for (tb = 1; tb <= 2; tb++) {
		sa = initiate(&fx, &h, X3DH_ID_ED25519, tb, 1);

		t = h;
		t.ek[5] ^= 0x20;
		sb = respond(&rc, &fx.b[tb], &fx.pk, &fx.a[X3DH_ID_ED25519], &t);
		cr_assert(rc == 0 || rc == SOTTO_ERR_WEAKKEY);
		if (rc == 0)
			cr_assert_not(same_sk(sa, sb), "tampered EK gave the same SK");
		x3dh_session_free(sb);

		t = h;
		t.spk_id = fx.pk.spk_id[1]; /* the previous signed prekey */
		accepted_other_sk(
		        &fx, sa, tb, X3DH_ID_ED25519, &t, "tampered spk_id gave the same SK");

		t = h;
		t.spk_id = 12345; /* no such prekey */
		refused(&fx, tb, X3DH_ID_ED25519, &t, SOTTO_ERR_NOTFOUND);

		t = h;
		t.opk_id = fx.pk.opk_id[1];
		accepted_other_sk(
		        &fx, sa, tb, X3DH_ID_ED25519, &t, "tampered opk_id gave the same SK");

		t = h;
		t.has_opk = 0;
		t.opk_id = 0;
		accepted_other_sk(
		        &fx, sa, tb, X3DH_ID_ED25519, &t, "dropping the OPK gave the same SK");

		t = h;
		t.version = 2;
		refused(&fx, tb, X3DH_ID_ED25519, &t, SOTTO_ERR_FORMAT);

		t = h;
		t.siglen = 64;
		refused(&fx, tb, X3DH_ID_ED25519, &t, SOTTO_ERR_FORMAT);

		if (tb == X3DH_ID_ED25519) {
			t = h;
			t.oaep_ct_len = 384;
			refused(&fx, tb, X3DH_ID_ED25519, &t, SOTTO_ERR_FORMAT);
		}
		x3dh_session_free(sa);
	}
	fixture_free(&fx);
}

/*
 * RSA initiator: the signature covers every field, so each change to EK_A,
 * spk_id, has_opk, opk_id, the OAEP ciphertext or the signature itself is
 * SOTTO_ERR_VERIFY; a missing signature is SOTTO_ERR_FORMAT.  A tampered
 * spk_id or opk_id that names a prekey the responder does not have fails in
 * the lookup before x3dh sees it, so the tests name existing ones.
 */
Test(x3dh, tamper_rsa_initiator)
{
	struct fixture fx;
	struct x3dh_header h, t;
	struct x3dh_session *sa;
	int tb;

	fixture_load(&fx);
	for (tb = 1; tb <= 2; tb++) {
		sa = initiate(&fx, &h, X3DH_ID_RSA, tb, 1);

		t = h;
		t.ek[0] ^= 0x01;
		refused(&fx, tb, X3DH_ID_RSA, &t, SOTTO_ERR_VERIFY);

		t = h;
		t.spk_id = fx.pk.spk_id[1];
		refused(&fx, tb, X3DH_ID_RSA, &t, SOTTO_ERR_VERIFY);

		t = h;
		t.opk_id = fx.pk.opk_id[1];
		refused(&fx, tb, X3DH_ID_RSA, &t, SOTTO_ERR_VERIFY);

		t = h;
		t.has_opk = 0;
		t.opk_id = 0;
		refused(&fx, tb, X3DH_ID_RSA, &t, SOTTO_ERR_VERIFY);

		t = h;
		t.sig[10] ^= 0x80;
		refused(&fx, tb, X3DH_ID_RSA, &t, SOTTO_ERR_VERIFY);

		t = h;
		t.siglen--;
		refused(&fx, tb, X3DH_ID_RSA, &t, SOTTO_ERR_VERIFY);

		t = h;
		t.siglen = 0;
		refused(&fx, tb, X3DH_ID_RSA, &t, SOTTO_ERR_FORMAT);

		if (tb == X3DH_ID_RSA) {
			t = h;
			t.oaep_ct[100] ^= 0x04;
			refused(&fx, tb, X3DH_ID_RSA, &t, SOTTO_ERR_VERIFY);
		}
		x3dh_session_free(sa);
	}
	fixture_free(&fx);
}

/*
 * Ed25519 initiator to an RSA responder: the OAEP ciphertext is not signed.
 * A corrupted or truncated one fails to decrypt (SOTTO_ERR_VERIFY); a fresh
 * one that anybody can make for B's public key decrypts, but the SK differs,
 * because T1 = DH(IK_A, SPK_B) is still A's; a missing one is SOTTO_ERR_FORMAT.
 */
Test(x3dh, tamper_oaep)
{
	struct fixture fx;
	struct x3dh_header h, t;
	struct x3dh_session *sa, *sb;
	uint8_t r[32];
	int rc;

	fixture_load(&fx);
	sa = initiate(&fx, &h, X3DH_ID_ED25519, X3DH_ID_RSA, 0);

	t = h;
	t.oaep_ct[3] ^= 0x10;
	refused(&fx, X3DH_ID_RSA, X3DH_ID_ED25519, &t, SOTTO_ERR_VERIFY);

	t = h;
	t.oaep_ct_len--;
	refused(&fx, X3DH_ID_RSA, X3DH_ID_ED25519, &t, SOTTO_ERR_VERIFY);

	t = h;
	t.oaep_ct_len = 0;
	refused(&fx, X3DH_ID_RSA, X3DH_ID_ED25519, &t, SOTTO_ERR_FORMAT);

	t = h;
	sotto_random(r, sizeof(r));
	cr_assert_eq(rsa_oaep_encrypt(t.oaep_ct, sizeof(t.oaep_ct), &t.oaep_ct_len, r, sizeof(r),
	                     fx.b[X3DH_ID_RSA].rsa, (const uint8_t *)X3DH_OAEP_LABEL,
	                     strlen(X3DH_OAEP_LABEL)),
	        0);
	sb = respond(&rc, &fx.b[X3DH_ID_RSA], &fx.pk, &fx.a[X3DH_ID_ED25519], &t);
	cr_assert_eq(rc, 0);
	cr_assert_not(same_sk(sa, sb));
	x3dh_session_free(sb);

	/* The same bytes under another OAEP label do not decrypt. */
	t = h;
	cr_assert_eq(rsa_oaep_encrypt(t.oaep_ct, sizeof(t.oaep_ct), &t.oaep_ct_len, r, sizeof(r),
	                     fx.b[X3DH_ID_RSA].rsa, (const uint8_t *)"other", 5),
	        0);
	refused(&fx, X3DH_ID_RSA, X3DH_ID_ED25519, &t, SOTTO_ERR_VERIFY);
	x3dh_session_free(sa);
	fixture_free(&fx);
}

/* ---- wrong keys --------------------------------------------------------------------------- */

/*
 * Wrong responder identity: an Ed25519 B gets a different SK (and AD); an RSA
 * B cannot decrypt the OAEP ciphertext (SOTTO_ERR_VERIFY).  A wrong signed
 * prekey secret gives a different SK.  A wrong claimed initiator: for RSA the
 * signature fails (SOTTO_ERR_VERIFY); for Ed25519 the SK differs.
 */
Test(x3dh, wrong_keys)
{
	struct fixture fx;
	struct x3dh_header h;
	struct x3dh_session *sa, *sb;
	struct prekeys wrong;
	int ta, tb, rc;

	fixture_load(&fx);
	for (ta = 1; ta <= 2; ta++)
		for (tb = 1; tb <= 2; tb++) {
			sa = initiate(&fx, &h, ta, tb, 1);
			if (tb == X3DH_ID_ED25519) {
				sb = respond(&rc, &fx.other_ed, &fx.pk, &fx.a[ta], &h);
				if (ta == X3DH_ID_RSA) {
					/* B's encoding is inside the signed transcript. */
					cr_assert_eq(rc, SOTTO_ERR_VERIFY);
				} else {
					cr_assert_eq(rc, 0);
					cr_assert_not(same_sk(sa, sb));
					cr_assert(sa->adlen != sb->adlen ||
					          memcmp(sa->ad, sb->ad, sa->adlen) != 0);
					x3dh_session_free(sb);
				}
			} else {
				sb = respond(&rc, &fx.other_rsa, &fx.pk, &fx.a[ta], &h);
				cr_assert_eq(rc, SOTTO_ERR_VERIFY);
			}

			wrong = fx.pk;
			x25519_keypair(wrong.spk_pub[0], wrong.spk_sec[0]);
			sb = respond(&rc, &fx.b[tb], &wrong, &fx.a[ta], &h);
			cr_assert_eq(rc, 0);
			cr_assert_not(same_sk(sa, sb));
			x3dh_session_free(sb);

			/* other_rsa is A's own key, so B's RSA key plays the impostor. */
			sb = respond(&rc, &fx.b[tb], &fx.pk,
			        ta == X3DH_ID_RSA ? &fx.b[X3DH_ID_RSA] : &fx.other_ed, &h);
			if (ta == X3DH_ID_RSA) {
				cr_assert_eq(rc, SOTTO_ERR_VERIFY);
			} else {
				cr_assert_eq(rc, 0);
				cr_assert_not(same_sk(sa, sb));
				x3dh_session_free(sb);
			}
			x3dh_session_free(sa);
		}
	fixture_free(&fx);
}

/* Arguments that do not hang together are refused before any key is used. */
Test(x3dh, bad_arguments)
{
	struct fixture fx;
	struct x3dh_header h;
	struct x3dh_session *s = (struct x3dh_session *)&fx, *sa;
	struct x3dh_priv ap;
	struct x3dh_bundle bd;
	struct x3dh_prekeys pks;
	struct ident weak;
	EVP_PKEY *small = NULL;
	EVP_PKEY_CTX *ctx;
	static const uint8_t order8[32] = {0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16,
	        0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1,
	        0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00};

	fixture_load(&fx);
	ap = ident_priv(&fx.a[X3DH_ID_ED25519]);
	bd = bundle_of(&fx.b[X3DH_ID_ED25519], &fx.pk, 1);

	/* An encoding that is not the key's own. */
	ap.enc = fx.other_ed.enc;
	cr_assert_eq(x3dh_initiate(&s, &h, &ap, &bd), SOTTO_ERR_INVALID);
	cr_assert_null(s);
	ap = ident_priv(&fx.a[X3DH_ID_ED25519]);
	bd.id.enc = fx.b[X3DH_ID_RSA].enc;
	bd.id.enclen = fx.b[X3DH_ID_RSA].enclen;
	cr_assert_eq(x3dh_initiate(&s, &h, &ap, &bd), SOTTO_ERR_INVALID);
	bd = bundle_of(&fx.b[X3DH_ID_RSA], &fx.pk, 1);
	bd.id.enc = fx.other_rsa.enc;
	bd.id.enclen = fx.other_rsa.enclen;
	cr_assert_eq(x3dh_initiate(&s, &h, &ap, &bd), SOTTO_ERR_INVALID);

	/* A small-order signed or one-time prekey. */
	bd = bundle_of(&fx.b[X3DH_ID_ED25519], &fx.pk, 1);
	memcpy(bd.spk, order8, 32);
	cr_assert_eq(x3dh_initiate(&s, &h, &ap, &bd), SOTTO_ERR_WEAKKEY);
	bd = bundle_of(&fx.b[X3DH_ID_ED25519], &fx.pk, 1);
	memcpy(bd.opk, order8, 32);
	cr_assert_eq(x3dh_initiate(&s, &h, &ap, &bd), SOTTO_ERR_WEAKKEY);

	/* An RSA key of a size that is not an identity size. */
	cr_assert_not_null(ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL));
	cr_assert_eq(EVP_PKEY_keygen_init(ctx), 1);
	cr_assert_eq(EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 2048), 1);
	cr_assert_eq(EVP_PKEY_generate(ctx, &small), 1);
	EVP_PKEY_CTX_free(ctx);
	ident_rsa(&weak, small);
	bd = bundle_of(&weak, &fx.pk, 0);
	cr_assert_eq(x3dh_initiate(&s, &h, &ap, &bd), SOTTO_ERR_UNSUPPORTED);
	ap = ident_priv(&weak);
	bd = bundle_of(&fx.b[X3DH_ID_ED25519], &fx.pk, 0);
	cr_assert_eq(x3dh_initiate(&s, &h, &ap, &bd), SOTTO_ERR_UNSUPPORTED);
	ident_free(&weak);

	/* The responder: a low-order EK_A, and prekey ids that are not the header's. */
	ap = ident_priv(&fx.a[X3DH_ID_ED25519]);
	bd = bundle_of(&fx.b[X3DH_ID_ED25519], &fx.pk, 1);
	cr_assert_eq(x3dh_initiate(&sa, &h, &ap, &bd), 0);
	{
		struct x3dh_header t = h;
		struct x3dh_priv bp = ident_priv(&fx.b[X3DH_ID_ED25519]);
		struct x3dh_pub apub = ident_pub(&fx.a[X3DH_ID_ED25519]);

		memcpy(t.ek, order8, 32);
		cr_assert_eq(lookup_prekeys(&pks, &fx.pk, &t), 0);
		cr_assert_eq(x3dh_respond(&s, &bp, &pks, &apub, &t), SOTTO_ERR_WEAKKEY);
		cr_assert_null(s);
		cr_assert_eq(lookup_prekeys(&pks, &fx.pk, &h), 0);
		pks.spk_id++;
		cr_assert_eq(x3dh_respond(&s, &bp, &pks, &apub, &h), SOTTO_ERR_INVALID);
		cr_assert_eq(lookup_prekeys(&pks, &fx.pk, &h), 0);
		pks.has_opk = 0;
		cr_assert_eq(x3dh_respond(&s, &bp, &pks, &apub, &h), SOTTO_ERR_INVALID);
		cr_assert_eq(lookup_prekeys(&pks, &fx.pk, &h), 0);
		pks.opk_id++;
		cr_assert_eq(x3dh_respond(&s, &bp, &pks, &apub, &h), SOTTO_ERR_INVALID);
		/* A type that does not match the key given. */
		apub.type = X3DH_ID_RSA;
		cr_assert_eq(lookup_prekeys(&pks, &fx.pk, &h), 0);
		cr_assert_eq(x3dh_respond(&s, &bp, &pks, &apub, &h), SOTTO_ERR_INVALID);
	}
	x3dh_session_free(sa);
	cr_assert_eq(x3dh_initiate(NULL, &h, &ap, &bd), SOTTO_ERR_INVALID);
	cr_assert_eq(x3dh_initiate(&s, NULL, &ap, &bd), SOTTO_ERR_INVALID);
	cr_assert_eq(x3dh_initiate_fixed(&s, &h, &ap, &bd, NULL, NULL), SOTTO_ERR_INVALID);
	x3dh_session_free(NULL);
	fixture_free(&fx);
}

/* ---- the RSA transcript, rebuilt here from doc/e2e.md ------------------------------------- */

Test(x3dh, rsa_transcript_layout)
{
	struct fixture fx;
	struct x3dh_header h;
	struct x3dh_session *s;
	struct buf t;

	fixture_load(&fx);
	s = initiate(&fx, &h, X3DH_ID_RSA, X3DH_ID_RSA, 1);
	buf_init(&t, 0);
	cr_assert_eq(buf_put(&t, "sotto-x3dh-sig-v1", 17), 0);
	cr_assert_eq(buf_put_string(&t, fx.a[X3DH_ID_RSA].enc, fx.a[X3DH_ID_RSA].enclen), 0);
	cr_assert_eq(buf_put_string(&t, fx.b[X3DH_ID_RSA].enc, fx.b[X3DH_ID_RSA].enclen), 0);
	cr_assert_eq(buf_put(&t, h.ek, 32), 0);
	cr_assert_eq(buf_put_u32(&t, h.spk_id), 0);
	cr_assert_eq(buf_put_u8(&t, h.has_opk), 0);
	cr_assert_eq(buf_put_u32(&t, h.opk_id), 0);
	cr_assert_eq(buf_put_string(&t, h.oaep_ct, h.oaep_ct_len), 0);
	cr_assert_eq(
	        rsa_pss_verify(h.sig, h.siglen, buf_ptr(&t), buf_len(&t), fx.a[X3DH_ID_RSA].rsa),
	        0);
	buf_free(&t);
	x3dh_session_free(s);
	fixture_free(&fx);
}

/* ---- known answers ------------------------------------------------------------------------ */

struct kat_case {
	const char *name;
	enum x3dh_id_type ta, tb;
	int opk;
};

static const struct kat_case kat_cases[] = {
        {"ed-ed", X3DH_ID_ED25519, X3DH_ID_ED25519, 1},
        {"ed-ed-noopk", X3DH_ID_ED25519, X3DH_ID_ED25519, 0},
        {"rsa-rsa", X3DH_ID_RSA, X3DH_ID_RSA, 1},
        {"rsa-rsa-noopk", X3DH_ID_RSA, X3DH_ID_RSA, 0},
        {"ed-rsa", X3DH_ID_ED25519, X3DH_ID_RSA, 1},
        {"ed-rsa-noopk", X3DH_ID_ED25519, X3DH_ID_RSA, 0},
        {"rsa-ed", X3DH_ID_RSA, X3DH_ID_ED25519, 1},
        {"rsa-ed-noopk", X3DH_ID_RSA, X3DH_ID_ED25519, 0},
};

/* Fixed inputs of one case. */
struct kat_in {
	uint8_t a_seed[32], b_seed[32], spk_sec[32], opk_sec[32], ek_sec[32], rand[32];
	uint32_t spk_id, opk_id;
};

static void
kat_name(char *out, size_t cap, const char *c, const char *field)
{
	snprintf(out, cap, "%s.%s", c, field);
}

static void
kat_in_draw(struct kat_in *in, const char *c)
{
	char name[96];
	uint8_t ids[8];

	kat_name(name, sizeof(name), c, "a_ed25519_seed");
	kat_draw(KAT_SEED, in->a_seed, 32, name);
	kat_name(name, sizeof(name), c, "b_ed25519_seed");
	kat_draw(KAT_SEED, in->b_seed, 32, name);
	kat_name(name, sizeof(name), c, "spk_sec");
	kat_draw(KAT_SEED, in->spk_sec, 32, name);
	kat_name(name, sizeof(name), c, "opk_sec");
	kat_draw(KAT_SEED, in->opk_sec, 32, name);
	kat_name(name, sizeof(name), c, "ek_sec");
	kat_draw(KAT_SEED, in->ek_sec, 32, name);
	kat_name(name, sizeof(name), c, "rand");
	kat_draw(KAT_SEED, in->rand, 32, name);
	kat_name(name, sizeof(name), c, "ids");
	kat_draw(KAT_SEED, ids, sizeof(ids), name);
	in->spk_id =
	        (uint32_t)ids[0] << 24 | (uint32_t)ids[1] << 16 | (uint32_t)ids[2] << 8 | ids[3];
	in->opk_id =
	        (uint32_t)ids[4] << 24 | (uint32_t)ids[5] << 16 | (uint32_t)ids[6] << 8 | ids[7];
}

static void
kat_in_read(struct kat_in *in, const struct kat *k, const char *c)
{
	char name[96];
	uint8_t ids[4];

	kat_name(name, sizeof(name), c, "a_ed25519_seed");
	kat_hex_fixed(k, name, in->a_seed, 32);
	kat_name(name, sizeof(name), c, "b_ed25519_seed");
	kat_hex_fixed(k, name, in->b_seed, 32);
	kat_name(name, sizeof(name), c, "spk_sec");
	kat_hex_fixed(k, name, in->spk_sec, 32);
	kat_name(name, sizeof(name), c, "opk_sec");
	kat_hex_fixed(k, name, in->opk_sec, 32);
	kat_name(name, sizeof(name), c, "ek_sec");
	kat_hex_fixed(k, name, in->ek_sec, 32);
	kat_name(name, sizeof(name), c, "rand");
	kat_hex_fixed(k, name, in->rand, 32);
	kat_name(name, sizeof(name), c, "spk_id");
	kat_hex_fixed(k, name, ids, 4);
	in->spk_id =
	        (uint32_t)ids[0] << 24 | (uint32_t)ids[1] << 16 | (uint32_t)ids[2] << 8 | ids[3];
	kat_name(name, sizeof(name), c, "opk_id");
	kat_hex_fixed(k, name, ids, 4);
	in->opk_id =
	        (uint32_t)ids[0] << 24 | (uint32_t)ids[1] << 16 | (uint32_t)ids[2] << 8 | ids[3];
}

/* Identities and bundle of one case; RSA identities reuse rsa_a / rsa_b (new references). */
struct kat_world {
	struct ident a, b;
	struct x3dh_bundle bd;
	uint8_t spk_pub[32], opk_pub[32];
};

static void
kat_world_make(struct kat_world *w, const struct kat_case *c, const struct kat_in *in,
        EVP_PKEY *rsa_a, EVP_PKEY *rsa_b)
{
	memset(w, 0, sizeof(*w));
	if (c->ta == X3DH_ID_ED25519) {
		ident_ed(&w->a, in->a_seed);
	} else {
		cr_assert_eq(EVP_PKEY_up_ref(rsa_a), 1);
		ident_rsa(&w->a, rsa_a);
	}
	if (c->tb == X3DH_ID_ED25519) {
		ident_ed(&w->b, in->b_seed);
	} else {
		cr_assert_eq(EVP_PKEY_up_ref(rsa_b), 1);
		ident_rsa(&w->b, rsa_b);
	}
	cr_assert_eq(x25519_public(w->spk_pub, in->spk_sec), 0);
	cr_assert_eq(x25519_public(w->opk_pub, in->opk_sec), 0);
	w->bd.id = ident_pub(&w->b);
	w->bd.spk_id = in->spk_id;
	memcpy(w->bd.spk, w->spk_pub, 32);
	if (c->opk) {
		w->bd.has_opk = 1;
		w->bd.opk_id = in->opk_id;
		memcpy(w->bd.opk, w->opk_pub, 32);
	}
}

static void
kat_world_free(struct kat_world *w)
{
	ident_free(&w->a);
	ident_free(&w->b);
}

/* The responder's session for header h in world w. */
static struct x3dh_session *
kat_respond(const struct kat_world *w, const struct kat_in *in, const struct x3dh_header *h)
{
	struct x3dh_session *s = NULL;
	struct x3dh_prekeys pks;
	struct x3dh_priv bp = ident_priv(&w->b);
	struct x3dh_pub ap = ident_pub(&w->a);
	int rc;

	memset(&pks, 0, sizeof(pks));
	pks.spk_id = h->spk_id;
	pks.spk_sec = in->spk_sec;
	if (h->has_opk) {
		pks.has_opk = 1;
		pks.opk_id = h->opk_id;
		pks.opk_sec = in->opk_sec;
	}
	rc = x3dh_respond(&s, &bp, &pks, &ap, h);
	cr_assert_eq(rc, 0, "respond: %s", sotto_strerror(rc));
	return s;
}

/* SK = HKDF(32 zero bytes, 32 x 0xff || T1 || T2 || DH3 [|| DH4], "sotto-x3dh-v1"). */
static void
reference_sk(const struct kat_case *c, const struct kat_world *w, const struct kat_in *in,
        const uint8_t want[32])
{
	static const uint8_t zero[32];
	uint8_t ikm[160], x[32], sk[32];
	size_t n = 32;

	memset(ikm, 0xff, 32);
	if (c->ta == X3DH_ID_ED25519) {
		cr_assert_eq(ed25519_sk_to_x25519(x, w->a.ed_sk), 0);
		cr_assert_eq(x25519_shared(ikm + n, x, w->spk_pub), 0);
		n += 32;
	}
	if (c->tb == X3DH_ID_ED25519) {
		cr_assert_eq(ed25519_pk_to_x25519(x, w->b.ed_pk), 0);
		cr_assert_eq(x25519_shared(ikm + n, in->ek_sec, x), 0);
	} else {
		memcpy(ikm + n, in->rand, 32);
	}
	n += 32;
	cr_assert_eq(x25519_shared(ikm + n, in->ek_sec, w->spk_pub), 0);
	n += 32;
	if (c->opk) {
		cr_assert_eq(x25519_shared(ikm + n, in->ek_sec, w->opk_pub), 0);
		n += 32;
	}
	cr_assert_eq(kdf_hkdf_sha256(sk, sizeof(sk), zero, sizeof(zero), ikm, n,
	                     (const uint8_t *)"sotto-x3dh-v1", 13),
	        0);
	cr_assert(memcmp(sk, want, 32) == 0, "%s: reference sk", c->name);
	sotto_wipe(ikm, sizeof(ikm));
}

static uint8_t *
pkcs8_der(EVP_PKEY *pkey, size_t *len)
{
	PKCS8_PRIV_KEY_INFO *p8;
	unsigned char *der = NULL;
	uint8_t *out;
	int n;

	cr_assert_not_null(p8 = EVP_PKEY2PKCS8(pkey));
	cr_assert_gt(n = i2d_PKCS8_PRIV_KEY_INFO(p8, &der), 0);
	cr_assert_not_null(out = malloc((size_t)n));
	memcpy(out, der, (size_t)n);
	*len = (size_t)n;
	OPENSSL_clear_free(der, (size_t)n);
	PKCS8_PRIV_KEY_INFO_free(p8);
	return out;
}

/* Write KAT_FILE from the seed, with new RSA keys. */
static void
kat_write(void)
{
	char *path = kat_path(KAT_FILE), name[96];
	EVP_PKEY *rsa_a = NULL, *rsa_b = NULL;
	struct x3dh_session *s;
	struct x3dh_header h;
	struct kat_world w;
	struct kat_in in;
	struct x3dh_priv ap;
	struct buf hb;
	uint8_t *der, ids[4];
	size_t derlen, i;
	FILE *f;

	cr_assert_eq(rsa_generate(&rsa_a, 3072), 0);
	cr_assert_eq(rsa_generate(&rsa_b, 4096), 0);
	cr_assert_not_null(f = fopen(path, "w"), "cannot write %s", path);
	fprintf(f,
	        "# X3DH known answers for sotto (doc/e2e.md); checked by tests/unit/test_x3dh.c.\n"
	        "# Inputs come from HKDF-SHA256(no salt, seed, \"sotto-kat-v1/\" || case.field);\n"
	        "# the RSA keys (A: 3072, B: 4096 bits) protect nothing.  RSA signatures and\n"
	        "# OAEP ciphertexts are randomized: for those the header below is one valid\n"
	        "# example that the responder must accept, giving sk.\n"
	        "# Regenerate with SOTTO_REGEN_KAT=1 (see the test).\n");
	fprintf(f, "seed = %s\n", KAT_SEED);
	der = pkcs8_der(rsa_a, &derlen);
	kat_put_hex(f, "rsa_a_pkcs8", der, derlen);
	free(der);
	der = pkcs8_der(rsa_b, &derlen);
	kat_put_hex(f, "rsa_b_pkcs8", der, derlen);
	free(der);
	for (i = 0; i < sizeof(kat_cases) / sizeof(kat_cases[0]); i++) {
		const struct kat_case *c = &kat_cases[i];

		kat_in_draw(&in, c->name);
		kat_world_make(&w, c, &in, rsa_a, rsa_b);
		ap = ident_priv(&w.a);
		cr_assert_eq(x3dh_initiate_fixed(&s, &h, &ap, &w.bd, in.ek_sec, in.rand), 0);
		fprintf(f, "\n# %s: A %s, B %s, %s one-time prekey\n", c->name, type_name(c->ta),
		        type_name(c->tb), c->opk ? "with a" : "without a");
#define PUT(field, v, len)                                    \
	do {                                                  \
		kat_name(name, sizeof(name), c->name, field); \
		kat_put_hex(f, name, v, len);                 \
	} while (0)
		PUT("a_ed25519_seed", in.a_seed, 32);
		PUT("b_ed25519_seed", in.b_seed, 32);
		PUT("spk_sec", in.spk_sec, 32);
		PUT("opk_sec", in.opk_sec, 32);
		PUT("ek_sec", in.ek_sec, 32);
		PUT("rand", in.rand, 32);
		ids[0] = (uint8_t)(in.spk_id >> 24);
		ids[1] = (uint8_t)(in.spk_id >> 16);
		ids[2] = (uint8_t)(in.spk_id >> 8);
		ids[3] = (uint8_t)in.spk_id;
		PUT("spk_id", ids, 4);
		ids[0] = (uint8_t)(in.opk_id >> 24);
		ids[1] = (uint8_t)(in.opk_id >> 16);
		ids[2] = (uint8_t)(in.opk_id >> 8);
		ids[3] = (uint8_t)in.opk_id;
		PUT("opk_id", ids, 4);
		PUT("sk", s->sk, X3DH_SKBYTES);
		PUT("ad", s->ad, s->adlen);
		buf_init(&hb, 0);
		cr_assert_eq(x3dh_header_put(&hb, &h), 0);
		PUT("header", buf_ptr(&hb), buf_len(&hb));
#undef PUT
		buf_free(&hb);
		x3dh_session_free(s);
		kat_world_free(&w);
	}
	cr_assert_eq(fclose(f), 0);
	EVP_PKEY_free(rsa_a);
	EVP_PKEY_free(rsa_b);
	free(path);
}

Test(x3dh, kat)
{
	const char *regen = getenv("SOTTO_REGEN_KAT");
	EVP_PKEY *rsa_a, *rsa_b;
	struct x3dh_session *s, *sr;
	struct x3dh_header h, fh;
	struct kat_world w;
	struct kat_in in;
	struct x3dh_priv ap;
	struct kat k;
	struct buf hb;
	char name[96];
	uint8_t sk[32], *ad, *hdr;
	size_t adlen, hdrlen, i;

	if (regen != NULL && strcmp(regen, "1") == 0)
		kat_write();
	kat_load(&k, KAT_FILE);
	cr_assert_str_eq(kat_get(&k, "seed"), KAT_SEED);
	rsa_a = rsa_from_hex(&k, "rsa_a_pkcs8");
	rsa_b = rsa_from_hex(&k, "rsa_b_pkcs8");
	cr_assert_eq(rsa_bits(rsa_a), 3072);
	cr_assert_eq(rsa_bits(rsa_b), 4096);
	for (i = 0; i < sizeof(kat_cases) / sizeof(kat_cases[0]); i++) {
		const struct kat_case *c = &kat_cases[i];

		kat_in_read(&in, &k, c->name);
		kat_world_make(&w, c, &in, rsa_a, rsa_b);
		kat_name(name, sizeof(name), c->name, "sk");
		kat_hex_fixed(&k, name, sk, sizeof(sk));
		kat_name(name, sizeof(name), c->name, "ad");
		ad = kat_hex(&k, name, &adlen);
		kat_name(name, sizeof(name), c->name, "header");
		hdr = kat_hex(&k, name, &hdrlen);
		cr_assert_eq(x3dh_header_parse(&fh, hdr, hdrlen), 0, "%s: header", c->name);

		/* The initiator, with the fixed ephemeral key and OAEP plaintext. */
		ap = ident_priv(&w.a);
		cr_assert_eq(x3dh_initiate_fixed(&s, &h, &ap, &w.bd, in.ek_sec, in.rand), 0);
		cr_assert(memcmp(s->sk, sk, 32) == 0, "%s: initiator sk", c->name);
		cr_assert_eq(s->adlen, adlen);
		cr_assert(memcmp(s->ad, ad, adlen) == 0, "%s: ad", c->name);
		buf_init(&hb, 0);
		cr_assert_eq(x3dh_header_put(&hb, &h), 0);
		if (c->ta == X3DH_ID_ED25519 && c->tb == X3DH_ID_ED25519) {
			/* Nothing randomized: the header is fixed byte for byte. */
			cr_assert_eq(buf_len(&hb), hdrlen);
			cr_assert(memcmp(buf_ptr(&hb), hdr, hdrlen) == 0, "%s: header", c->name);
		} else {
			/* version, EK_A and the ids are fixed; the RSA parts are randomized. */
			cr_assert_geq(buf_len(&hb), 42);
			cr_assert(memcmp(buf_ptr(&hb), hdr, 42) == 0, "%s: header", c->name);
			cr_assert_eq(h.oaep_ct_len, fh.oaep_ct_len);
			cr_assert_eq(h.siglen, fh.siglen);
		}
		buf_free(&hb);

		/* The same SK recomputed here from doc/e2e.md with the primitives alone. */
		reference_sk(c, &w, &in, sk);

		/* The responder, on the recorded header and on the fresh one. */
		sr = kat_respond(&w, &in, &fh);
		cr_assert(memcmp(sr->sk, sk, 32) == 0, "%s: responder sk", c->name);
		cr_assert_eq(sr->adlen, adlen);
		cr_assert(memcmp(sr->ad, ad, adlen) == 0);
		x3dh_session_free(sr);
		sr = kat_respond(&w, &in, &h);
		cr_assert(memcmp(sr->sk, sk, 32) == 0, "%s: responder sk (fresh header)", c->name);
		x3dh_session_free(sr);

		x3dh_session_free(s);
		free(ad);
		free(hdr);
		kat_world_free(&w);
	}
	EVP_PKEY_free(rsa_a);
	EVP_PKEY_free(rsa_b);
	kat_free(&k);
}
