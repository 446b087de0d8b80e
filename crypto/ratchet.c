/* The Double Ratchet; see ratchet.h and doc/e2e.md. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "aead.h"
#include "buf.h"
#include "ecc.h"
#include "ratchet.h"
#include "util.h"

#define RATCHET_MSGKEYBYTES   (AEAD_KEYBYTES + AEAD_XCHACHA_NPUBBYTES)
#define RATCHET_SHA256_BLOCK  64
#define RATCHET_SHA256_BYTES  32
#define RATCHET_FLAG_CKS      0x01
#define RATCHET_FLAG_CKR      0x02
#define RATCHET_FLAG_DHR      0x04
#define RATCHET_FLAGS_ALL     (RATCHET_FLAG_CKS | RATCHET_FLAG_CKR | RATCHET_FLAG_DHR)
#define RATCHET_SKIPPED_BYTES (RATCHET_PUBLICKEYBYTES + 4 + RATCHET_KEYBYTES)
/* Room for a full store plus the most one message can add (two chains of MAX_SKIP). */
#define RATCHET_SKIPPED_CAP_MAX (RATCHET_MAX_SKIPPED_KEYS + 2 * RATCHET_MAX_SKIP)

/* A message key kept for a message that has not arrived yet. */
struct ratchet_skipped {
	uint8_t dh[RATCHET_PUBLICKEYBYTES];
	uint32_t n;
	uint8_t mk[RATCHET_KEYBYTES];
};

/* Values computed during one operation before they are committed; wiped after each call. */
struct ratchet_scratch {
	uint8_t dh[X25519_KEYBYTES];
	uint8_t kdf[2 * RATCHET_KEYBYTES]; /* KDF_RK output: root key || chain key */
	uint8_t rk1[RATCHET_KEYBYTES];     /* after the receiving step */
	uint8_t ck1[RATCHET_KEYBYTES];
	uint8_t rk2[RATCHET_KEYBYTES]; /* after the sending step */
	uint8_t ck2[RATCHET_KEYBYTES];
	uint8_t ck[RATCHET_KEYBYTES]; /* the chain key being walked */
	uint8_t mk[RATCHET_KEYBYTES];
	uint8_t msgkey[RATCHET_MSGKEYBYTES]; /* AEAD key || nonce */
	uint8_t dhs_sec[X25519_KEYBYTES];    /* the next ratchet key pair */
	uint8_t dhs_pub[X25519_KEYBYTES];
};

/* Every secret of a session, in one sodium_malloc'd block. */
struct ratchet_keys {
	uint8_t rk[RATCHET_KEYBYTES];
	uint8_t cks[RATCHET_KEYBYTES];
	uint8_t ckr[RATCHET_KEYBYTES];
	uint8_t dhs_sec[X25519_KEYBYTES];
	struct ratchet_scratch sc;
};

struct ratchet {
	struct ratchet_keys *k;
	uint8_t dhs_pub[X25519_KEYBYTES];
	uint8_t dhr[X25519_KEYBYTES];
	int has_cks, has_ckr, has_dhr;
	uint32_t ns, nr, pn;
	uint8_t *aad; /* AD || room for one header: the AEAD's associated data */
	size_t adlen;
	struct ratchet_skipped *skipped; /* sodium_malloc'd, oldest first */
	size_t nskipped, skipcap;
	EVP_MD *md; /* SHA-256, fetched once per session (see ratchet_hmac) */
	EVP_MD_CTX *mdctx;
	ratchet_rng_fn rng;
	void *rng_arg;
};

static void
ratchet_put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/*
 * HMAC-SHA256 (RFC 2104) with a 32-byte key over m1 || m2 || m3 (at most 64
 * bytes in all), written out over one reused digest context: OpenSSL's
 * one-shot HMAC() fetches the digest on every call, which would cost the
 * ratchet several times the AEAD itself.  Each hash is fed in one update.
 */
static int
ratchet_hmac(struct ratchet *r, uint8_t out[RATCHET_SHA256_BYTES],
        const uint8_t key[RATCHET_KEYBYTES], const uint8_t *m1, size_t l1, const uint8_t *m2,
        size_t l2, const uint8_t *m3, size_t l3)
{
	uint64_t blk[2 * RATCHET_SHA256_BLOCK / 8]; /* pad block || message */
	uint8_t *msg = (uint8_t *)blk + RATCHET_SHA256_BLOCK;
	unsigned int n = 0;
	size_t i;
	int ok;

	if (l1 + l2 + l3 > RATCHET_SHA256_BLOCK)
		return SOTTO_ERR_RANGE;
	/* key || zeros, XOR 0x36 per byte, word by word: this runs ten times a message. */
	memcpy(blk, key, RATCHET_KEYBYTES);
	memset((uint8_t *)blk + RATCHET_KEYBYTES, 0, RATCHET_SHA256_BLOCK - RATCHET_KEYBYTES);
	for (i = 0; i < RATCHET_SHA256_BLOCK / 8; i++)
		blk[i] ^= UINT64_C(0x3636363636363636);
	if (l1 > 0)
		memcpy(msg, m1, l1);
	if (l2 > 0)
		memcpy(msg + l1, m2, l2);
	if (l3 > 0)
		memcpy(msg + l1 + l2, m3, l3);
	ok = EVP_DigestInit_ex2(r->mdctx, r->md, NULL) == 1 &&
	     EVP_DigestUpdate(r->mdctx, blk, RATCHET_SHA256_BLOCK + l1 + l2 + l3) == 1 &&
	     EVP_DigestFinal_ex(r->mdctx, msg, &n) == 1 && n == RATCHET_SHA256_BYTES;
	for (i = 0; i < RATCHET_SHA256_BLOCK / 8; i++)
		blk[i] ^= UINT64_C(0x3636363636363636) ^ UINT64_C(0x5c5c5c5c5c5c5c5c);
	ok = ok && EVP_DigestInit_ex2(r->mdctx, r->md, NULL) == 1 &&
	     EVP_DigestUpdate(r->mdctx, blk, RATCHET_SHA256_BLOCK + RATCHET_SHA256_BYTES) == 1 &&
	     EVP_DigestFinal_ex(r->mdctx, out, &n) == 1 && n == RATCHET_SHA256_BYTES;
	sotto_wipe(blk, sizeof(blk));
	if (!ok) {
		sotto_wipe(out, RATCHET_SHA256_BYTES);
		return SOTTO_ERR_CRYPTO;
	}
	return 0;
}

/* Passed as ratchet_hkdf's salt: ikm is a 32-byte uniform key, used as the PRK. */
#define RATCHET_EXPAND_ONLY ((const uint8_t *)(uintptr_t)1)

/*
 * HKDF-SHA256 (RFC 5869) with a 32-byte salt (NULL: 32 zero bytes; or
 * RATCHET_EXPAND_ONLY) and outlen <= 64.
 */
static int
ratchet_hkdf(struct ratchet *r, uint8_t *out, size_t outlen, const uint8_t *salt,
        const uint8_t *ikm, size_t ikmlen, const char *info)
{
	static const uint8_t zero[RATCHET_KEYBYTES];
	uint8_t prk[RATCHET_SHA256_BYTES], t[RATCHET_SHA256_BYTES];
	size_t infolen = strlen(info), done = 0, n;
	uint8_t ctr = 1;
	int rc;

	if (salt == RATCHET_EXPAND_ONLY) {
		/* The input is already a uniform key: skip Extract (RFC 5869 section 3.3). */
		memcpy(prk, ikm, sizeof(prk));
	} else if ((rc = ratchet_hmac(r, prk, salt != NULL ? salt : zero, ikm, ikmlen, NULL, 0,
	                    NULL, 0)) != 0) {
		goto out;
	}
	while (done < outlen) {
		/* T(i) = HMAC(PRK, T(i-1) || info || i), with T(0) empty. */
		if ((rc = ratchet_hmac(r, t, prk, t, ctr == 1 ? 0 : sizeof(t),
		             (const uint8_t *)info, infolen, &ctr, 1)) != 0)
			goto out;
		n = outlen - done < sizeof(t) ? outlen - done : sizeof(t);
		memcpy(out + done, t, n);
		done += n;
		ctr++;
	}
out:
	sotto_wipe(prk, sizeof(prk));
	sotto_wipe(t, sizeof(t));
	if (rc != 0)
		sotto_wipe(out, outlen);
	return rc;
}

/* KDF_RK: (root key, chain key) = HKDF(salt = rk, ikm = dh, "sotto-ratchet-rk-v1", 64). */
static int
ratchet_kdf_rk(struct ratchet *r, uint8_t rk_out[RATCHET_KEYBYTES],
        uint8_t ck_out[RATCHET_KEYBYTES], const uint8_t rk[RATCHET_KEYBYTES],
        const uint8_t dh[X25519_KEYBYTES])
{
	uint8_t *kdf = r->k->sc.kdf;
	int rc;

	if ((rc = ratchet_hkdf(
	             r, kdf, 2 * RATCHET_KEYBYTES, rk, dh, X25519_KEYBYTES, RATCHET_INFO_RK)) != 0)
		return rc;
	memcpy(rk_out, kdf, RATCHET_KEYBYTES);
	memcpy(ck_out, kdf + RATCHET_KEYBYTES, RATCHET_KEYBYTES);
	sotto_wipe(kdf, 2 * RATCHET_KEYBYTES);
	return 0;
}

/* KDF_CK: message key = HMAC(ck, 0x01), next chain key = HMAC(ck, 0x02); ck may be ck_out. */
static int
ratchet_kdf_ck(struct ratchet *r, uint8_t ck_out[RATCHET_KEYBYTES],
        uint8_t mk_out[RATCHET_KEYBYTES], const uint8_t ck[RATCHET_KEYBYTES])
{
	static const uint8_t one = 0x01, two = 0x02;
	int rc;

	if ((rc = ratchet_hmac(r, mk_out, ck, &one, 1, NULL, 0, NULL, 0)) != 0)
		return rc;
	return ratchet_hmac(r, ck_out, ck, &two, 1, NULL, 0, NULL, 0);
}

/*
 * The AEAD key and nonce of one message: HKDF-Expand(PRK = mk,
 * "sotto-ratchet-msg-v1", 56).  mk is already a uniform HMAC output, so the
 * Extract step would add a third HMAC per message and no strength.
 */
static int
ratchet_msgkey(struct ratchet *r, const uint8_t mk[RATCHET_KEYBYTES])
{
	return ratchet_hkdf(r, r->k->sc.msgkey, RATCHET_MSGKEYBYTES, RATCHET_EXPAND_ONLY, mk,
	        RATCHET_KEYBYTES, RATCHET_INFO_MSG);
}

/* A fresh ratchet key pair into the scratch area, from the CSPRNG or the test hook. */
static int
ratchet_gen_dh(struct ratchet *r)
{
	struct ratchet_scratch *sc = &r->k->sc;

	if (r->rng == NULL)
		sotto_random(sc->dhs_sec, sizeof(sc->dhs_sec));
	else
		r->rng(r->rng_arg, sc->dhs_sec, sizeof(sc->dhs_sec));
	return x25519_public(sc->dhs_pub, sc->dhs_sec);
}

static void
ratchet_scratch_wipe(struct ratchet *r)
{
	sodium_memzero(&r->k->sc, sizeof(r->k->sc));
}

/* An empty state with its secret block, digest and AEAD associated-data buffer. */
static int
ratchet_new(struct ratchet **out, const uint8_t *ad, size_t adlen)
{
	struct ratchet *r = NULL;
	int rc = SOTTO_ERR_NOMEM;

	*out = NULL;
	if (ad == NULL && adlen > 0)
		return SOTTO_ERR_INVALID;
	if (adlen > RATCHET_AD_MAX)
		return SOTTO_ERR_RANGE;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		goto out;
	if ((r->k = sodium_malloc(sizeof(*r->k))) == NULL)
		goto out;
	sodium_memzero(r->k, sizeof(*r->k));
	if ((r->aad = malloc(adlen + RATCHET_HEADERBYTES)) == NULL)
		goto out;
	if (adlen > 0)
		memcpy(r->aad, ad, adlen);
	r->adlen = adlen;
	rc = SOTTO_ERR_CRYPTO;
	if ((r->md = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL ||
	        (r->mdctx = EVP_MD_CTX_new()) == NULL)
		goto out;
	*out = r;
	r = NULL;
	rc = 0;
out:
	ratchet_free(r);
	return rc;
}

void
ratchet_free(struct ratchet *r)
{
	if (r == NULL)
		return;
	/* sodium_free wipes before it unmaps. */
	sodium_free(r->k);
	sodium_free(r->skipped);
	if (r->aad != NULL) {
		sotto_wipe(r->aad, r->adlen + RATCHET_HEADERBYTES);
		free(r->aad);
	}
	EVP_MD_CTX_free(r->mdctx);
	EVP_MD_free(r->md);
	sotto_wipe(r, sizeof(*r));
	free(r);
}

void
ratchet_set_rng(struct ratchet *r, ratchet_rng_fn rng, void *rng_arg)
{
	if (r == NULL)
		return;
	r->rng = rng;
	r->rng_arg = rng_arg;
}

static int
ratchet_init_alice_common(struct ratchet **out, const uint8_t *sk, const uint8_t *ad, size_t adlen,
        const uint8_t *bob_pub, ratchet_rng_fn rng, void *rng_arg)
{
	struct ratchet *r = NULL;
	int rc;

	if (out == NULL)
		return SOTTO_ERR_INVALID;
	*out = NULL;
	if (sk == NULL || bob_pub == NULL)
		return SOTTO_ERR_INVALID;
	if ((rc = ratchet_new(&r, ad, adlen)) != 0)
		return rc;
	r->rng = rng;
	r->rng_arg = rng_arg;
	/* DHs = GENERATE_DH(); DHr = bob_pub; RK, CKs = KDF_RK(SK, DH(DHs, DHr)). */
	if ((rc = ratchet_gen_dh(r)) != 0)
		goto out;
	memcpy(r->k->dhs_sec, r->k->sc.dhs_sec, X25519_KEYBYTES);
	memcpy(r->dhs_pub, r->k->sc.dhs_pub, X25519_KEYBYTES);
	memcpy(r->dhr, bob_pub, X25519_KEYBYTES);
	r->has_dhr = 1;
	if ((rc = x25519_shared(r->k->sc.dh, r->k->dhs_sec, r->dhr)) != 0 ||
	        (rc = ratchet_kdf_rk(r, r->k->rk, r->k->cks, sk, r->k->sc.dh)) != 0)
		goto out;
	r->has_cks = 1;
	ratchet_scratch_wipe(r);
	*out = r;
	r = NULL;
out:
	ratchet_free(r);
	return rc;
}

int
ratchet_init_alice(struct ratchet **out, const uint8_t sk[RATCHET_KEYBYTES], const uint8_t *ad,
        size_t adlen, const uint8_t bob_pub[RATCHET_PUBLICKEYBYTES])
{
	return ratchet_init_alice_common(out, sk, ad, adlen, bob_pub, NULL, NULL);
}

int
ratchet_init_alice_rng(struct ratchet **out, const uint8_t sk[RATCHET_KEYBYTES], const uint8_t *ad,
        size_t adlen, const uint8_t bob_pub[RATCHET_PUBLICKEYBYTES], ratchet_rng_fn rng,
        void *rng_arg)
{
	if (rng == NULL) {
		if (out != NULL)
			*out = NULL;
		return SOTTO_ERR_INVALID;
	}
	return ratchet_init_alice_common(out, sk, ad, adlen, bob_pub, rng, rng_arg);
}

int
ratchet_init_bob(struct ratchet **out, const uint8_t sk[RATCHET_KEYBYTES], const uint8_t *ad,
        size_t adlen, const uint8_t spk_pub[RATCHET_PUBLICKEYBYTES],
        const uint8_t spk_sec[RATCHET_KEYBYTES])
{
	struct ratchet *r = NULL;
	uint8_t pub[X25519_KEYBYTES];
	int rc;

	if (out == NULL)
		return SOTTO_ERR_INVALID;
	*out = NULL;
	if (sk == NULL || spk_pub == NULL || spk_sec == NULL)
		return SOTTO_ERR_INVALID;
	if (x25519_public(pub, spk_sec) != 0 || memcmp(pub, spk_pub, sizeof(pub)) != 0)
		return SOTTO_ERR_INVALID;
	if ((rc = ratchet_new(&r, ad, adlen)) != 0)
		return rc;
	/* DHs = the signed prekey pair; RK = SK; no chains until Alice's first message. */
	memcpy(r->k->dhs_sec, spk_sec, X25519_KEYBYTES);
	memcpy(r->dhs_pub, spk_pub, X25519_KEYBYTES);
	memcpy(r->k->rk, sk, RATCHET_KEYBYTES);
	*out = r;
	return 0;
}

/* Write the header for (DHs, PN, N) at p. */
static void
ratchet_header_write(uint8_t *p, const uint8_t dh[X25519_KEYBYTES], uint32_t pn, uint32_t n)
{
	p[0] = RATCHET_VERSION;
	memcpy(p + 1, dh, X25519_KEYBYTES);
	ratchet_put_u32(p + 1 + X25519_KEYBYTES, pn);
	ratchet_put_u32(p + 1 + X25519_KEYBYTES + 4, n);
}

int
ratchet_encrypt(struct ratchet *r, const uint8_t *pt, size_t len, uint8_t **out, size_t *outlen)
{
	struct ratchet_scratch *sc;
	uint8_t *buf = NULL;
	int rc;

	if (out == NULL || outlen == NULL)
		return SOTTO_ERR_INVALID;
	*out = NULL;
	*outlen = 0;
	if (r == NULL || (pt == NULL && len > 0))
		return SOTTO_ERR_INVALID;
	if (!r->has_cks)
		return SOTTO_ERR_AGAIN;
	if (r->ns == UINT32_MAX || len > SIZE_MAX - RATCHET_OVERHEAD)
		return SOTTO_ERR_RANGE;
	sc = &r->k->sc;
	if ((buf = malloc(len + RATCHET_OVERHEAD)) == NULL)
		return SOTTO_ERR_NOMEM;
	/* mk, CKs' = KDF_CK(CKs), kept aside until the message is sealed. */
	if ((rc = ratchet_kdf_ck(r, sc->ck, sc->mk, r->k->cks)) != 0 ||
	        (rc = ratchet_msgkey(r, sc->mk)) != 0)
		goto out;
	ratchet_header_write(buf, r->dhs_pub, r->pn, r->ns);
	memcpy(r->aad + r->adlen, buf, RATCHET_HEADERBYTES);
	if ((rc = aead_xchacha_seal(buf + RATCHET_HEADERBYTES, pt, len, r->aad,
	             r->adlen + RATCHET_HEADERBYTES, sc->msgkey + AEAD_KEYBYTES, sc->msgkey)) != 0)
		goto out;
	memcpy(r->k->cks, sc->ck, RATCHET_KEYBYTES);
	r->ns++;
	*out = buf;
	*outlen = len + RATCHET_OVERHEAD;
	buf = NULL;
out:
	ratchet_scratch_wipe(r);
	free(buf);
	return rc;
}

/* Index of the stored key for (dh, n), or -1. */
static long
ratchet_skipped_find(const struct ratchet *r, const uint8_t dh[X25519_KEYBYTES], uint32_t n)
{
	size_t i;

	for (i = 0; i < r->nskipped; i++)
		if (r->skipped[i].n == n && memcmp(r->skipped[i].dh, dh, X25519_KEYBYTES) == 0)
			return (long)i;
	return -1;
}

/* Make room for need entries in all; the store's contents do not change. */
static int
ratchet_skipped_reserve(struct ratchet *r, size_t need)
{
	struct ratchet_skipped *n;
	size_t cap;

	if (need <= r->skipcap)
		return 0;
	if (need > RATCHET_SKIPPED_CAP_MAX)
		return SOTTO_ERR_RANGE;
	cap = r->skipcap < 32 ? 32 : r->skipcap * 2;
	if (cap < need)
		cap = need;
	if (cap > RATCHET_SKIPPED_CAP_MAX)
		cap = RATCHET_SKIPPED_CAP_MAX;
	if ((n = sodium_allocarray(cap, sizeof(*n))) == NULL)
		return SOTTO_ERR_NOMEM;
	if (r->nskipped > 0)
		memcpy(n, r->skipped, r->nskipped * sizeof(*n));
	sodium_free(r->skipped);
	r->skipped = n;
	r->skipcap = cap;
	return 0;
}

/* Drop entry i (its key has been used). */
static void
ratchet_skipped_remove(struct ratchet *r, size_t i)
{
	memmove(&r->skipped[i], &r->skipped[i + 1], (r->nskipped - i - 1) * sizeof(*r->skipped));
	r->nskipped--;
	sodium_memzero(&r->skipped[r->nskipped], sizeof(*r->skipped));
}

/*
 * Walk the chain key in sc->ck from index from up to (not including) until,
 * writing each message key past the end of the store as an uncommitted entry
 * (*npending counts them); the caller reserved the room.
 */
static int
ratchet_skip_pending(struct ratchet *r, const uint8_t dh[X25519_KEYBYTES], uint32_t from,
        uint32_t until, size_t *npending)
{
	struct ratchet_skipped *e;
	uint32_t i;
	int rc;

	for (i = from; i < until; i++) {
		e = &r->skipped[r->nskipped + *npending];
		memcpy(e->dh, dh, X25519_KEYBYTES);
		e->n = i;
		if ((rc = ratchet_kdf_ck(r, r->k->sc.ck, e->mk, r->k->sc.ck)) != 0)
			return rc;
		(*npending)++;
	}
	return 0;
}

/* Make npending uncommitted entries part of the store, evicting the oldest past the cap. */
static void
ratchet_skipped_commit(struct ratchet *r, size_t npending)
{
	size_t total = r->nskipped + npending, drop;

	if (total > RATCHET_MAX_SKIPPED_KEYS) {
		drop = total - RATCHET_MAX_SKIPPED_KEYS;
		sodium_memzero(r->skipped, drop * sizeof(*r->skipped));
		memmove(r->skipped, &r->skipped[drop],
		        RATCHET_MAX_SKIPPED_KEYS * sizeof(*r->skipped));
		sodium_memzero(&r->skipped[RATCHET_MAX_SKIPPED_KEYS], drop * sizeof(*r->skipped));
		total = RATCHET_MAX_SKIPPED_KEYS;
	}
	r->nskipped = total;
}

/* Forget uncommitted entries. */
static void
ratchet_skipped_discard(struct ratchet *r, size_t npending)
{
	if (npending > 0)
		sodium_memzero(&r->skipped[r->nskipped], npending * sizeof(*r->skipped));
}

/* Open the body of in under the message key in scratch; the header is already in aad. */
static int
ratchet_open(struct ratchet *r, uint8_t *pt, const uint8_t *in, size_t inlen)
{
	const struct ratchet_scratch *sc = &r->k->sc;

	if (aead_xchacha_open(pt, in + RATCHET_HEADERBYTES, inlen - RATCHET_HEADERBYTES, r->aad,
	            r->adlen + RATCHET_HEADERBYTES, sc->msgkey + AEAD_KEYBYTES, sc->msgkey) != 0)
		return SOTTO_ERR_VERIFY;
	return 0;
}

int
ratchet_decrypt(struct ratchet *r, const uint8_t *in, size_t inlen, uint8_t **out, size_t *outlen)
{
	struct ratchet_scratch *sc;
	uint8_t version, dh[X25519_KEYBYTES], *pt = NULL;
	uint32_t pn, n;
	size_t ptlen, npending = 0, old_skip = 0;
	struct buf rd;
	long idx;
	int rc;

	if (out == NULL || outlen == NULL)
		return SOTTO_ERR_INVALID;
	*out = NULL;
	*outlen = 0;
	if (r == NULL || (in == NULL && inlen > 0))
		return SOTTO_ERR_INVALID;
	sc = &r->k->sc;
	buf_init_reader(&rd, in, inlen);
	if (inlen < RATCHET_OVERHEAD || buf_get_u8(&rd, &version) != 0 ||
	        buf_get(&rd, dh, sizeof(dh)) != 0 || buf_get_u32(&rd, &pn) != 0 ||
	        buf_get_u32(&rd, &n) != 0)
		return SOTTO_ERR_FORMAT;
	if (version != RATCHET_VERSION)
		return SOTTO_ERR_FORMAT;
	ptlen = inlen - RATCHET_OVERHEAD;
	if ((pt = malloc(ptlen > 0 ? ptlen : 1)) == NULL)
		return SOTTO_ERR_NOMEM;
	memcpy(r->aad + r->adlen, in, RATCHET_HEADERBYTES);

	/* A message whose key was stored when a later one arrived first. */
	if ((idx = ratchet_skipped_find(r, dh, n)) >= 0) {
		if ((rc = ratchet_msgkey(r, r->skipped[idx].mk)) != 0 ||
		        (rc = ratchet_open(r, pt, in, inlen)) != 0)
			goto out;
		ratchet_skipped_remove(r, (size_t)idx);
		goto done;
	}

	if (r->has_ckr && memcmp(dh, r->dhr, sizeof(dh)) == 0) {
		/* The current receiving chain; an index already passed has no key left. */
		if (n < r->nr) {
			rc = SOTTO_ERR_VERIFY;
			goto out;
		}
		if (n - r->nr > RATCHET_MAX_SKIP || n == UINT32_MAX) {
			rc = SOTTO_ERR_RANGE;
			goto out;
		}
		if ((rc = ratchet_skipped_reserve(r, r->nskipped + (n - r->nr))) != 0)
			goto out;
		memcpy(sc->ck, r->k->ckr, RATCHET_KEYBYTES);
		if ((rc = ratchet_skip_pending(r, dh, r->nr, n, &npending)) != 0 ||
		        (rc = ratchet_kdf_ck(r, sc->ck, sc->mk, sc->ck)) != 0 ||
		        (rc = ratchet_msgkey(r, sc->mk)) != 0 ||
		        (rc = ratchet_open(r, pt, in, inlen)) != 0)
			goto out;
		ratchet_skipped_commit(r, npending);
		npending = 0;
		memcpy(r->k->ckr, sc->ck, RATCHET_KEYBYTES);
		r->nr = n + 1;
		goto done;
	}

	/* A new ratchet key from the peer: finish the old chain, then step the DH ratchet. */
	if (r->has_ckr && pn > r->nr) {
		if (pn - r->nr > RATCHET_MAX_SKIP) {
			rc = SOTTO_ERR_RANGE;
			goto out;
		}
		old_skip = pn - r->nr;
	}
	if (n > RATCHET_MAX_SKIP) {
		rc = SOTTO_ERR_RANGE;
		goto out;
	}
	if ((rc = ratchet_skipped_reserve(r, r->nskipped + old_skip + n)) != 0)
		goto out;
	if (old_skip > 0) {
		memcpy(sc->ck, r->k->ckr, RATCHET_KEYBYTES);
		if ((rc = ratchet_skip_pending(r, r->dhr, r->nr, pn, &npending)) != 0)
			goto out;
	}
	/* RK', CKr' = KDF_RK(RK, DH(DHs, header.dh)), then walk the new chain to n. */
	if ((rc = x25519_shared(sc->dh, r->k->dhs_sec, dh)) != 0 ||
	        (rc = ratchet_kdf_rk(r, sc->rk1, sc->ck, r->k->rk, sc->dh)) != 0 ||
	        (rc = ratchet_skip_pending(r, dh, 0, n, &npending)) != 0 ||
	        (rc = ratchet_kdf_ck(r, sc->ck1, sc->mk, sc->ck)) != 0 ||
	        (rc = ratchet_msgkey(r, sc->mk)) != 0 || (rc = ratchet_open(r, pt, in, inlen)) != 0)
		goto out;
	/* Authentic: make the next sending chain from a fresh key pair, then commit it all. */
	if ((rc = ratchet_gen_dh(r)) != 0 || (rc = x25519_shared(sc->dh, sc->dhs_sec, dh)) != 0 ||
	        (rc = ratchet_kdf_rk(r, sc->rk2, sc->ck2, sc->rk1, sc->dh)) != 0)
		goto out;
	ratchet_skipped_commit(r, npending);
	npending = 0;
	r->pn = r->ns;
	r->ns = 0;
	r->nr = n + 1;
	memcpy(r->dhr, dh, sizeof(dh));
	memcpy(r->k->dhs_sec, sc->dhs_sec, X25519_KEYBYTES);
	memcpy(r->dhs_pub, sc->dhs_pub, X25519_KEYBYTES);
	memcpy(r->k->rk, sc->rk2, RATCHET_KEYBYTES);
	memcpy(r->k->ckr, sc->ck1, RATCHET_KEYBYTES);
	memcpy(r->k->cks, sc->ck2, RATCHET_KEYBYTES);
	r->has_dhr = r->has_ckr = r->has_cks = 1;
done:
	*out = pt;
	*outlen = ptlen;
	pt = NULL;
	rc = 0;
out:
	ratchet_skipped_discard(r, npending);
	ratchet_scratch_wipe(r);
	if (pt != NULL) {
		sotto_wipe(pt, ptlen);
		free(pt);
	}
	return rc;
}

size_t
ratchet_skipped_count(const struct ratchet *r)
{
	return r == NULL ? 0 : r->nskipped;
}

int
ratchet_serialize(const struct ratchet *r, struct buf *out)
{
	static const uint8_t zero[RATCHET_KEYBYTES];
	const struct ratchet_skipped *e;
	uint8_t flags = 0;
	size_t i;
	int rc;

	if (r == NULL || out == NULL)
		return SOTTO_ERR_INVALID;
	flags |= r->has_cks ? RATCHET_FLAG_CKS : 0;
	flags |= r->has_ckr ? RATCHET_FLAG_CKR : 0;
	flags |= r->has_dhr ? RATCHET_FLAG_DHR : 0;
	if ((rc = buf_put_u8(out, RATCHET_STATE_VERSION)) != 0 ||
	        (rc = buf_put_u8(out, flags)) != 0 ||
	        (rc = buf_put(out, r->k->rk, RATCHET_KEYBYTES)) != 0 ||
	        (rc = buf_put(out, r->k->dhs_sec, X25519_KEYBYTES)) != 0 ||
	        (rc = buf_put(out, r->dhs_pub, X25519_KEYBYTES)) != 0 ||
	        (rc = buf_put(out, r->has_dhr ? r->dhr : zero, X25519_KEYBYTES)) != 0 ||
	        (rc = buf_put(out, r->has_cks ? r->k->cks : zero, RATCHET_KEYBYTES)) != 0 ||
	        (rc = buf_put(out, r->has_ckr ? r->k->ckr : zero, RATCHET_KEYBYTES)) != 0 ||
	        (rc = buf_put_u32(out, r->ns)) != 0 || (rc = buf_put_u32(out, r->nr)) != 0 ||
	        (rc = buf_put_u32(out, r->pn)) != 0 ||
	        (rc = buf_put_string(out, r->aad, r->adlen)) != 0 ||
	        (rc = buf_put_u32(out, (uint32_t)r->nskipped)) != 0)
		return rc;
	for (i = 0; i < r->nskipped; i++) {
		e = &r->skipped[i];
		if ((rc = buf_put(out, e->dh, sizeof(e->dh))) != 0 ||
		        (rc = buf_put_u32(out, e->n)) != 0 ||
		        (rc = buf_put(out, e->mk, sizeof(e->mk))) != 0)
			return rc;
	}
	return 0;
}

/* Read 32 bytes that must be all zero when their flag is clear, so that one state has one encoding. */
static int
ratchet_get_key(struct buf *rd, uint8_t out[RATCHET_KEYBYTES], int present)
{
	if (buf_get(rd, out, RATCHET_KEYBYTES) != 0)
		return SOTTO_ERR_FORMAT;
	if (!present && !sodium_is_zero(out, RATCHET_KEYBYTES))
		return SOTTO_ERR_FORMAT;
	return 0;
}

int
ratchet_deserialize(struct ratchet **out, const uint8_t *data, size_t len)
{
	struct ratchet *r = NULL;
	struct ratchet_skipped *e;
	const uint8_t *ad;
	uint8_t version, flags, pub[X25519_KEYBYTES];
	uint32_t count, i;
	size_t adlen;
	struct buf rd;
	int rc = SOTTO_ERR_FORMAT;

	if (out == NULL)
		return SOTTO_ERR_INVALID;
	*out = NULL;
	if (data == NULL && len > 0)
		return SOTTO_ERR_INVALID;
	buf_init_reader(&rd, data, len);
	if (buf_get_u8(&rd, &version) != 0 || version != RATCHET_STATE_VERSION ||
	        buf_get_u8(&rd, &flags) != 0 || (flags & ~RATCHET_FLAGS_ALL) != 0)
		return SOTTO_ERR_FORMAT;
	/* A receiving chain always comes with the peer key it belongs to. */
	if ((flags & RATCHET_FLAG_CKR) && !(flags & RATCHET_FLAG_DHR))
		return SOTTO_ERR_FORMAT;
	/* The AD sits after the fixed-size fields: peek at it to size the new state. */
	if (buf_skip(&rd, 6 * RATCHET_KEYBYTES + 3 * 4) != 0 ||
	        buf_get_string_direct(&rd, &ad, &adlen, RATCHET_AD_MAX) != 0)
		return SOTTO_ERR_FORMAT;
	if ((rc = ratchet_new(&r, ad, adlen)) != 0)
		goto out;
	rc = SOTTO_ERR_FORMAT;
	buf_init_reader(&rd, data, len);
	if (buf_skip(&rd, 2) != 0 || buf_get(&rd, r->k->rk, RATCHET_KEYBYTES) != 0 ||
	        buf_get(&rd, r->k->dhs_sec, X25519_KEYBYTES) != 0 ||
	        buf_get(&rd, r->dhs_pub, X25519_KEYBYTES) != 0 ||
	        ratchet_get_key(&rd, r->dhr, flags & RATCHET_FLAG_DHR) != 0 ||
	        ratchet_get_key(&rd, r->k->cks, flags & RATCHET_FLAG_CKS) != 0 ||
	        ratchet_get_key(&rd, r->k->ckr, flags & RATCHET_FLAG_CKR) != 0 ||
	        buf_get_u32(&rd, &r->ns) != 0 || buf_get_u32(&rd, &r->nr) != 0 ||
	        buf_get_u32(&rd, &r->pn) != 0 ||
	        buf_get_string_direct(&rd, &ad, &adlen, RATCHET_AD_MAX) != 0 ||
	        buf_get_u32(&rd, &count) != 0)
		goto out;
	/* The public half must match its secret, or the state is corrupt. */
	if (x25519_public(pub, r->k->dhs_sec) != 0 || memcmp(pub, r->dhs_pub, sizeof(pub)) != 0)
		goto out;
	r->has_cks = (flags & RATCHET_FLAG_CKS) != 0;
	r->has_ckr = (flags & RATCHET_FLAG_CKR) != 0;
	r->has_dhr = (flags & RATCHET_FLAG_DHR) != 0;
	/* Check the count against the bytes present before allocating for it. */
	if (count > RATCHET_MAX_SKIPPED_KEYS ||
	        buf_len(&rd) != (size_t)count * RATCHET_SKIPPED_BYTES)
		goto out;
	if (count > 0 && (rc = ratchet_skipped_reserve(r, count)) != 0)
		goto out;
	rc = SOTTO_ERR_FORMAT;
	for (i = 0; i < count; i++) {
		e = &r->skipped[i];
		if (buf_get(&rd, e->dh, sizeof(e->dh)) != 0 || buf_get_u32(&rd, &e->n) != 0 ||
		        buf_get(&rd, e->mk, sizeof(e->mk)) != 0)
			goto out;
		r->nskipped++;
	}
	*out = r;
	r = NULL;
	rc = 0;
out:
	ratchet_free(r);
	return rc;
}
