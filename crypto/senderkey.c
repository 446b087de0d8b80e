/* Sender keys for group messages; see senderkey.h and doc/e2e.md section 7. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "aead.h"
#include "buf.h"
#include "ecc.h"
#include "senderkey.h"
#include "util.h"

#define SK_KIND_SEND 1
#define SK_KIND_RECV 2
#define SK_CTX_LEN   (sizeof(SENDERKEY_CONTEXT) - 1)
/* The signed prefix before the header: context || group id || string(sender). */
#define SK_PREFIX_MAX     (SK_CTX_LEN + SENDERKEY_GROUPBYTES + 4 + SENDERKEY_SENDER_MAX)
#define SK_SKIPPED_BYTES  (4 + SENDERKEY_CHAINKEYBYTES)
#define SK_SEND_BYTES     (2 + 4 + 4 + SENDERKEY_CHAINKEYBYTES + 2 * ED25519_SEEDBYTES)
#define SK_RECV_FIXED     (2 + 4 + 4 + SENDERKEY_CHAINKEYBYTES + ED25519_PUBLICKEYBYTES + 4)
#define SK_SKIPPED_CAPMAX (SENDERKEY_MAX_SKIPPED_KEYS + SENDERKEY_MAX_SKIP)

/* The chain step's HMAC inputs (Signal's sender-key constants). */
static const uint8_t sk_const_msg = 0x01, sk_const_chain = 0x02;

struct senderkey_send_keys {
	uint8_t ck[SENDERKEY_CHAINKEYBYTES];
	uint8_t seed[ED25519_SEEDBYTES];
	uint8_t sign_sk[ED25519_SECRETKEYBYTES];
	uint8_t mk[SENDERKEY_CHAINKEYBYTES]; /* scratch */
	uint8_t ck_next[SENDERKEY_CHAINKEYBYTES];
};

struct senderkey_send {
	struct senderkey_send_keys *k; /* sodium_malloc'd */
	uint8_t sign_pub[ED25519_PUBLICKEYBYTES];
	uint32_t key_id;
	uint32_t iteration;
	senderkey_rng_fn rng;
	void *rng_arg;
};

/* A message key kept for a message that has not arrived yet. */
struct senderkey_skipped {
	uint32_t iteration;
	uint8_t mk[SENDERKEY_CHAINKEYBYTES];
};

struct senderkey_recv_keys {
	uint8_t ck[SENDERKEY_CHAINKEYBYTES];
	uint8_t walk[SENDERKEY_CHAINKEYBYTES]; /* scratch: the chain key being walked */
	uint8_t mk[SENDERKEY_CHAINKEYBYTES];
};

struct senderkey_recv {
	struct senderkey_recv_keys *k; /* sodium_malloc'd */
	uint8_t sign_pub[ED25519_PUBLICKEYBYTES];
	uint32_t key_id;
	uint32_t iteration;                /* the next one expected */
	struct senderkey_skipped *skipped; /* sodium_malloc'd, oldest first */
	size_t nskipped, skipcap;
};

/* One chain step: mk = HMAC(ck, 0x01), next = HMAC(ck, 0x02); next may be ck. */
static int
sk_step(uint8_t mk[SENDERKEY_CHAINKEYBYTES], uint8_t next[SENDERKEY_CHAINKEYBYTES],
        const uint8_t ck[SENDERKEY_CHAINKEYBYTES])
{
	if (crypto_auth_hmacsha256(mk, &sk_const_msg, 1, ck) != 0 ||
	        crypto_auth_hmacsha256(next, &sk_const_chain, 1, ck) != 0)
		return SOTTO_ERR_CRYPTO;
	return 0;
}

static void
sk_put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Write context || group || string(sender) at p (room for SK_PREFIX_MAX); its length. */
static size_t
sk_prefix(uint8_t *p, const uint8_t group[SENDERKEY_GROUPBYTES], const char *sender, size_t slen)
{
	memcpy(p, SENDERKEY_CONTEXT, SK_CTX_LEN);
	memcpy(p + SK_CTX_LEN, group, SENDERKEY_GROUPBYTES);
	sk_put_u32(p + SK_CTX_LEN + SENDERKEY_GROUPBYTES, (uint32_t)slen);
	memcpy(p + SK_CTX_LEN + SENDERKEY_GROUPBYTES + 4, sender, slen);
	return SK_CTX_LEN + SENDERKEY_GROUPBYTES + 4 + slen;
}

/* The sender name's length, or SOTTO_ERR_RANGE / SOTTO_ERR_INVALID. */
static int
sk_sender_len(const char *sender, size_t *slen)
{
	if (sender == NULL)
		return SOTTO_ERR_INVALID;
	*slen = strnlen(sender, SENDERKEY_SENDER_MAX + 1);
	return *slen > SENDERKEY_SENDER_MAX ? SOTTO_ERR_RANGE : 0;
}

static void
sk_draw(const struct senderkey_send *s, uint8_t *out, size_t len)
{
	if (s->rng != NULL)
		s->rng(s->rng_arg, out, len);
	else
		sotto_random(out, len);
}

void
senderkey_send_free(struct senderkey_send *s)
{
	if (s == NULL)
		return;
	sodium_free(s->k); /* wipes first */
	sotto_wipe(s, sizeof(*s));
	free(s);
}

/* An empty sending state with its secret block. */
static int
sk_send_alloc(struct senderkey_send **out)
{
	struct senderkey_send *s;

	*out = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return SOTTO_ERR_NOMEM;
	if ((s->k = sodium_malloc(sizeof(*s->k))) == NULL) {
		free(s);
		return SOTTO_ERR_NOMEM;
	}
	sodium_memzero(s->k, sizeof(*s->k));
	*out = s;
	return 0;
}

static int
sk_send_new_common(struct senderkey_send **out, senderkey_rng_fn rng, void *rng_arg)
{
	struct senderkey_send *s = NULL;
	uint8_t id[4];
	int rc;

	if (out == NULL)
		return SOTTO_ERR_INVALID;
	if ((rc = sk_send_alloc(&s)) != 0)
		return rc;
	s->rng = rng;
	s->rng_arg = rng_arg;
	sk_draw(s, s->k->ck, sizeof(s->k->ck));
	sk_draw(s, id, sizeof(id));
	s->key_id = (uint32_t)id[0] << 24 | (uint32_t)id[1] << 16 | (uint32_t)id[2] << 8 | id[3];
	sk_draw(s, s->k->seed, sizeof(s->k->seed));
	ed25519_seed_keypair(s->sign_pub, s->k->sign_sk, s->k->seed);
	*out = s;
	return 0;
}

int
senderkey_send_new(struct senderkey_send **out)
{
	return sk_send_new_common(out, NULL, NULL);
}

int
senderkey_send_new_rng(struct senderkey_send **out, senderkey_rng_fn rng, void *rng_arg)
{
	if (rng == NULL) {
		if (out != NULL)
			*out = NULL;
		return SOTTO_ERR_INVALID;
	}
	return sk_send_new_common(out, rng, rng_arg);
}

void
senderkey_send_set_rng(struct senderkey_send *s, senderkey_rng_fn rng, void *rng_arg)
{
	if (s == NULL)
		return;
	s->rng = rng;
	s->rng_arg = rng_arg;
}

int
senderkey_send_dist(const struct senderkey_send *s, struct senderkey_dist *d)
{
	if (s == NULL || d == NULL)
		return SOTTO_ERR_INVALID;
	d->key_id = s->key_id;
	d->iteration = s->iteration;
	memcpy(d->chain_key, s->k->ck, SENDERKEY_CHAINKEYBYTES);
	memcpy(d->sign_pub, s->sign_pub, ED25519_PUBLICKEYBYTES);
	return 0;
}

uint32_t
senderkey_send_key_id(const struct senderkey_send *s)
{
	return s == NULL ? 0 : s->key_id;
}

uint32_t
senderkey_send_iteration(const struct senderkey_send *s)
{
	return s == NULL ? 0 : s->iteration;
}

int
senderkey_seal(struct senderkey_send *s, const uint8_t group[SENDERKEY_GROUPBYTES],
        const char *sender, const uint8_t *pt, size_t len, uint8_t **out, size_t *outlen)
{
	uint8_t *buf = NULL, *hdr, *ct;
	size_t slen = 0, plen, wirelen;
	int rc;

	if (out == NULL || outlen == NULL)
		return SOTTO_ERR_INVALID;
	*out = NULL;
	*outlen = 0;
	if (s == NULL || group == NULL || (pt == NULL && len > 0))
		return SOTTO_ERR_INVALID;
	if ((rc = sk_sender_len(sender, &slen)) != 0)
		return rc;
	if (s->iteration == UINT32_MAX || len > SIZE_MAX - SENDERKEY_OVERHEAD - SK_PREFIX_MAX)
		return SOTTO_ERR_RANGE;
	/* Lay out prefix || header || ciphertext || sig, sign in place, then drop the prefix. */
	if ((buf = malloc(SK_PREFIX_MAX + len + SENDERKEY_OVERHEAD)) == NULL)
		return SOTTO_ERR_NOMEM;
	plen = sk_prefix(buf, group, sender, slen);
	hdr = buf + plen;
	hdr[0] = SENDERKEY_VERSION;
	sk_put_u32(hdr + 1, s->key_id);
	sk_put_u32(hdr + 5, s->iteration);
	sk_draw(s, hdr + 9, AEAD_XCHACHA_NPUBBYTES);
	ct = hdr + SENDERKEY_HEADERBYTES;
	if ((rc = sk_step(s->k->mk, s->k->ck_next, s->k->ck)) != 0 ||
	        (rc = aead_xchacha_seal(
	                 ct, pt, len, buf, plen + SENDERKEY_HEADERBYTES, hdr + 9, s->k->mk)) != 0 ||
	        (rc = ed25519_sign(ct + len + AEAD_ABYTES, buf,
	                 plen + SENDERKEY_HEADERBYTES + len + AEAD_ABYTES, s->k->sign_sk)) != 0)
		goto out;
	wirelen = len + SENDERKEY_OVERHEAD;
	memmove(buf, hdr, wirelen);
	memcpy(s->k->ck, s->k->ck_next, SENDERKEY_CHAINKEYBYTES);
	s->iteration++;
	*out = buf;
	*outlen = wirelen;
	buf = NULL;
out:
	sodium_memzero(s->k->mk, sizeof(s->k->mk));
	sodium_memzero(s->k->ck_next, sizeof(s->k->ck_next));
	free(buf);
	return rc;
}

void
senderkey_recv_free(struct senderkey_recv *r)
{
	if (r == NULL)
		return;
	sodium_free(r->k);
	sodium_free(r->skipped);
	sotto_wipe(r, sizeof(*r));
	free(r);
}

static int
sk_recv_alloc(struct senderkey_recv **out)
{
	struct senderkey_recv *r;

	*out = NULL;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return SOTTO_ERR_NOMEM;
	if ((r->k = sodium_malloc(sizeof(*r->k))) == NULL) {
		free(r);
		return SOTTO_ERR_NOMEM;
	}
	sodium_memzero(r->k, sizeof(*r->k));
	*out = r;
	return 0;
}

int
senderkey_recv_new(struct senderkey_recv **out, const struct senderkey_dist *d)
{
	struct senderkey_recv *r = NULL;
	int rc;

	if (out == NULL)
		return SOTTO_ERR_INVALID;
	*out = NULL;
	if (d == NULL)
		return SOTTO_ERR_INVALID;
	if ((rc = sk_recv_alloc(&r)) != 0)
		return rc;
	memcpy(r->k->ck, d->chain_key, SENDERKEY_CHAINKEYBYTES);
	memcpy(r->sign_pub, d->sign_pub, ED25519_PUBLICKEYBYTES);
	r->key_id = d->key_id;
	r->iteration = d->iteration;
	*out = r;
	return 0;
}

uint32_t
senderkey_recv_key_id(const struct senderkey_recv *r)
{
	return r == NULL ? 0 : r->key_id;
}

uint32_t
senderkey_recv_iteration(const struct senderkey_recv *r)
{
	return r == NULL ? 0 : r->iteration;
}

size_t
senderkey_recv_skipped_count(const struct senderkey_recv *r)
{
	return r == NULL ? 0 : r->nskipped;
}

int
senderkey_peek(const uint8_t *in, size_t inlen, uint32_t *key_id, uint32_t *iteration)
{
	struct buf rd;
	uint8_t version;
	uint32_t id, it;

	if (key_id != NULL)
		*key_id = 0;
	if (iteration != NULL)
		*iteration = 0;
	if (in == NULL || inlen < SENDERKEY_OVERHEAD)
		return SOTTO_ERR_FORMAT;
	buf_init_reader(&rd, in, inlen);
	if (buf_get_u8(&rd, &version) != 0 || version != SENDERKEY_VERSION ||
	        buf_get_u32(&rd, &id) != 0 || buf_get_u32(&rd, &it) != 0)
		return SOTTO_ERR_FORMAT;
	if (key_id != NULL)
		*key_id = id;
	if (iteration != NULL)
		*iteration = it;
	return 0;
}

/* Make room for need entries in all; the stored keys do not change. */
static int
sk_skipped_reserve(struct senderkey_recv *r, size_t need)
{
	struct senderkey_skipped *n;
	size_t cap;

	if (need <= r->skipcap)
		return 0;
	if (need > SK_SKIPPED_CAPMAX)
		return SOTTO_ERR_RANGE;
	cap = r->skipcap < 32 ? 32 : r->skipcap * 2;
	if (cap < need)
		cap = need;
	if (cap > SK_SKIPPED_CAPMAX)
		cap = SK_SKIPPED_CAPMAX;
	if ((n = sodium_allocarray(cap, sizeof(*n))) == NULL)
		return SOTTO_ERR_NOMEM;
	if (r->nskipped > 0)
		memcpy(n, r->skipped, r->nskipped * sizeof(*n));
	sodium_free(r->skipped);
	r->skipped = n;
	r->skipcap = cap;
	return 0;
}

/* Index of the stored key for iteration it, or -1. */
static long
sk_skipped_find(const struct senderkey_recv *r, uint32_t it)
{
	size_t i;

	for (i = 0; i < r->nskipped; i++)
		if (r->skipped[i].iteration == it)
			return (long)i;
	return -1;
}

/* Make npending entries past the end part of the store, evicting the oldest past the cap. */
static void
sk_skipped_commit(struct senderkey_recv *r, size_t npending)
{
	size_t total = r->nskipped + npending, drop;

	if (total > SENDERKEY_MAX_SKIPPED_KEYS) {
		drop = total - SENDERKEY_MAX_SKIPPED_KEYS;
		sodium_memzero(r->skipped, drop * sizeof(*r->skipped));
		memmove(r->skipped, &r->skipped[drop],
		        SENDERKEY_MAX_SKIPPED_KEYS * sizeof(*r->skipped));
		sodium_memzero(&r->skipped[SENDERKEY_MAX_SKIPPED_KEYS], drop * sizeof(*r->skipped));
		total = SENDERKEY_MAX_SKIPPED_KEYS;
	}
	r->nskipped = total;
}

int
senderkey_open(struct senderkey_recv *r, const uint8_t group[SENDERKEY_GROUPBYTES],
        const char *sender, const uint8_t *in, size_t inlen, uint8_t **out, size_t *outlen)
{
	uint8_t *signed_msg = NULL, *pt = NULL;
	size_t slen = 0, plen, ctlen, ptlen = 0, npending = 0, i;
	uint32_t key_id, it;
	long idx = -1;
	int rc;

	if (out == NULL || outlen == NULL)
		return SOTTO_ERR_INVALID;
	*out = NULL;
	*outlen = 0;
	if (r == NULL || group == NULL || (in == NULL && inlen > 0))
		return SOTTO_ERR_INVALID;
	if ((rc = sk_sender_len(sender, &slen)) != 0)
		return rc;
	if ((rc = senderkey_peek(in, inlen, &key_id, &it)) != 0)
		return rc;
	if (key_id != r->key_id)
		return SOTTO_ERR_NOTFOUND;
	if (it >= r->iteration && (it - r->iteration > SENDERKEY_MAX_SKIP || it == UINT32_MAX))
		return SOTTO_ERR_RANGE;
	/* The signature first: only the sender can make us walk its chain. */
	ctlen = inlen - SENDERKEY_HEADERBYTES - ED25519_SIGBYTES;
	ptlen = ctlen - AEAD_ABYTES;
	if ((signed_msg = malloc(SK_PREFIX_MAX + inlen)) == NULL ||
	        (pt = malloc(ptlen > 0 ? ptlen : 1)) == NULL) {
		rc = SOTTO_ERR_NOMEM;
		goto out;
	}
	plen = sk_prefix(signed_msg, group, sender, slen);
	memcpy(signed_msg + plen, in, SENDERKEY_HEADERBYTES + ctlen);
	if (ed25519_verify(in + SENDERKEY_HEADERBYTES + ctlen, ED25519_SIGBYTES, signed_msg,
	            plen + SENDERKEY_HEADERBYTES + ctlen, r->sign_pub) != 0) {
		rc = SOTTO_ERR_VERIFY;
		goto out;
	}
	if (it < r->iteration) {
		/* An earlier message: its key is stored, or it was used (a replay) or evicted. */
		if ((idx = sk_skipped_find(r, it)) < 0) {
			rc = SOTTO_ERR_VERIFY;
			goto out;
		}
		memcpy(r->k->mk, r->skipped[idx].mk, SENDERKEY_CHAINKEYBYTES);
	} else {
		if ((rc = sk_skipped_reserve(r, r->nskipped + (it - r->iteration))) != 0)
			goto out;
		memcpy(r->k->walk, r->k->ck, SENDERKEY_CHAINKEYBYTES);
		for (i = r->iteration; i < it; i++) {
			struct senderkey_skipped *e = &r->skipped[r->nskipped + npending];

			e->iteration = (uint32_t)i;
			if ((rc = sk_step(e->mk, r->k->walk, r->k->walk)) != 0)
				goto out;
			npending++;
		}
		if ((rc = sk_step(r->k->mk, r->k->walk, r->k->walk)) != 0)
			goto out;
	}
	if (aead_xchacha_open(pt, in + SENDERKEY_HEADERBYTES, ctlen, signed_msg,
	            plen + SENDERKEY_HEADERBYTES, in + 9, r->k->mk) != 0) {
		rc = SOTTO_ERR_VERIFY;
		goto out;
	}
	/* Authentic: commit. */
	if (idx >= 0) {
		memmove(&r->skipped[idx], &r->skipped[idx + 1],
		        (r->nskipped - (size_t)idx - 1) * sizeof(*r->skipped));
		r->nskipped--;
		sodium_memzero(&r->skipped[r->nskipped], sizeof(*r->skipped));
	} else {
		sk_skipped_commit(r, npending);
		npending = 0;
		memcpy(r->k->ck, r->k->walk, SENDERKEY_CHAINKEYBYTES);
		r->iteration = it + 1;
	}
	*out = pt;
	*outlen = ptlen;
	pt = NULL;
	rc = 0;
out:
	if (npending > 0)
		sodium_memzero(&r->skipped[r->nskipped], npending * sizeof(*r->skipped));
	sodium_memzero(r->k->walk, sizeof(r->k->walk));
	sodium_memzero(r->k->mk, sizeof(r->k->mk));
	if (pt != NULL) {
		sotto_wipe(pt, ptlen > 0 ? ptlen : 1);
		free(pt);
	}
	free(signed_msg); /* public bytes: the header and ciphertext */
	return rc;
}

int
senderkey_send_serialize(const struct senderkey_send *s, struct buf *out)
{
	int rc;

	if (s == NULL || out == NULL)
		return SOTTO_ERR_INVALID;
	if ((rc = buf_put_u8(out, SENDERKEY_STATE_VERSION)) != 0 ||
	        (rc = buf_put_u8(out, SK_KIND_SEND)) != 0 ||
	        (rc = buf_put_u32(out, s->key_id)) != 0 ||
	        (rc = buf_put_u32(out, s->iteration)) != 0 ||
	        (rc = buf_put(out, s->k->ck, SENDERKEY_CHAINKEYBYTES)) != 0 ||
	        (rc = buf_put(out, s->k->seed, ED25519_SEEDBYTES)) != 0 ||
	        (rc = buf_put(out, s->sign_pub, ED25519_PUBLICKEYBYTES)) != 0)
		return rc;
	return 0;
}

int
senderkey_send_deserialize(struct senderkey_send **out, const uint8_t *data, size_t len)
{
	struct senderkey_send *s = NULL;
	uint8_t version, kind, pub[ED25519_PUBLICKEYBYTES];
	struct buf rd;
	int rc;

	if (out == NULL)
		return SOTTO_ERR_INVALID;
	*out = NULL;
	if (data == NULL || len != SK_SEND_BYTES)
		return SOTTO_ERR_FORMAT;
	if ((rc = sk_send_alloc(&s)) != 0)
		return rc;
	rc = SOTTO_ERR_FORMAT;
	buf_init_reader(&rd, data, len);
	if (buf_get_u8(&rd, &version) != 0 || version != SENDERKEY_STATE_VERSION ||
	        buf_get_u8(&rd, &kind) != 0 || kind != SK_KIND_SEND ||
	        buf_get_u32(&rd, &s->key_id) != 0 || buf_get_u32(&rd, &s->iteration) != 0 ||
	        buf_get(&rd, s->k->ck, SENDERKEY_CHAINKEYBYTES) != 0 ||
	        buf_get(&rd, s->k->seed, ED25519_SEEDBYTES) != 0 ||
	        buf_get(&rd, pub, sizeof(pub)) != 0)
		goto out;
	/* The public key must be the seed's, or the state is corrupt. */
	ed25519_seed_keypair(s->sign_pub, s->k->sign_sk, s->k->seed);
	if (!sotto_memeq(pub, s->sign_pub, sizeof(pub)))
		goto out;
	*out = s;
	s = NULL;
	rc = 0;
out:
	senderkey_send_free(s);
	return rc;
}

int
senderkey_recv_serialize(const struct senderkey_recv *r, struct buf *out)
{
	size_t i;
	int rc;

	if (r == NULL || out == NULL)
		return SOTTO_ERR_INVALID;
	if ((rc = buf_put_u8(out, SENDERKEY_STATE_VERSION)) != 0 ||
	        (rc = buf_put_u8(out, SK_KIND_RECV)) != 0 ||
	        (rc = buf_put_u32(out, r->key_id)) != 0 ||
	        (rc = buf_put_u32(out, r->iteration)) != 0 ||
	        (rc = buf_put(out, r->k->ck, SENDERKEY_CHAINKEYBYTES)) != 0 ||
	        (rc = buf_put(out, r->sign_pub, ED25519_PUBLICKEYBYTES)) != 0 ||
	        (rc = buf_put_u32(out, (uint32_t)r->nskipped)) != 0)
		return rc;
	for (i = 0; i < r->nskipped; i++) {
		if ((rc = buf_put_u32(out, r->skipped[i].iteration)) != 0 ||
		        (rc = buf_put(out, r->skipped[i].mk, SENDERKEY_CHAINKEYBYTES)) != 0)
			return rc;
	}
	return 0;
}

int
senderkey_recv_deserialize(struct senderkey_recv **out, const uint8_t *data, size_t len)
{
	struct senderkey_recv *r = NULL;
	struct senderkey_skipped *e;
	uint8_t version, kind;
	uint32_t count, i;
	struct buf rd;
	int rc;

	if (out == NULL)
		return SOTTO_ERR_INVALID;
	*out = NULL;
	if (data == NULL || len < SK_RECV_FIXED)
		return SOTTO_ERR_FORMAT;
	if ((rc = sk_recv_alloc(&r)) != 0)
		return rc;
	rc = SOTTO_ERR_FORMAT;
	buf_init_reader(&rd, data, len);
	if (buf_get_u8(&rd, &version) != 0 || version != SENDERKEY_STATE_VERSION ||
	        buf_get_u8(&rd, &kind) != 0 || kind != SK_KIND_RECV ||
	        buf_get_u32(&rd, &r->key_id) != 0 || buf_get_u32(&rd, &r->iteration) != 0 ||
	        buf_get(&rd, r->k->ck, SENDERKEY_CHAINKEYBYTES) != 0 ||
	        buf_get(&rd, r->sign_pub, ED25519_PUBLICKEYBYTES) != 0 ||
	        buf_get_u32(&rd, &count) != 0)
		goto out;
	/* Check the count against the bytes present before allocating for it. */
	if (count > SENDERKEY_MAX_SKIPPED_KEYS || buf_len(&rd) != (size_t)count * SK_SKIPPED_BYTES)
		goto out;
	if (count > 0 && (rc = sk_skipped_reserve(r, count)) != 0)
		goto out;
	rc = SOTTO_ERR_FORMAT;
	for (i = 0; i < count; i++) {
		e = &r->skipped[i];
		if (buf_get_u32(&rd, &e->iteration) != 0 ||
		        buf_get(&rd, e->mk, SENDERKEY_CHAINKEYBYTES) != 0)
			goto out;
		/* Oldest first, each before the chain's position: one state, one encoding. */
		if (e->iteration >= r->iteration || (i > 0 && e->iteration <= e[-1].iteration))
			goto out;
		r->nskipped++;
	}
	*out = r;
	r = NULL;
	rc = 0;
out:
	senderkey_recv_free(r);
	return rc;
}
