/* X3DH session set-up for Ed25519 and RSA identities; see x3dh.h and doc/e2e.md. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "buf.h"
#include "ecc.h"
#include "kdf.h"
#include "rsa.h"
#include "util.h"
#include "x3dh.h"

/* DER SubjectPublicKeyInfo of an Ed25519 key (RFC 8410): this prefix, then the 32-byte key. */
static const uint8_t x3dh_ed25519_spki_prefix[] = {
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};

#define X3DH_ED25519_SPKI_BYTES (sizeof(x3dh_ed25519_spki_prefix) + ED25519_PUBLICKEYBYTES)
#define X3DH_IKM_MAX            (5 * X25519_KEYBYTES)

/* Every secret of one handshake, in one sodium_malloc'd block that sodium_free wipes. */
struct x3dh_secrets {
	uint8_t ek_sec[X25519_KEYBYTES];
	uint8_t id_sec[X25519_KEYBYTES]; /* own identity's X25519 form */
	uint8_t rand[RSA_MAX_BYTES];     /* the OAEP plaintext (32 bytes when valid) */
	uint8_t ikm[X3DH_IKM_MAX];
	size_t ikmlen;
};

/*
 * The encoding a caller hands in must be the key's own SPKI, because the AD
 * and the RSA transcript are built from it and must bind the real keys.
 */
static int
x3dh_check_identity(enum x3dh_id_type type, const uint8_t *edpk, EVP_PKEY *rsa, const uint8_t *enc,
        size_t enclen)
{
	unsigned char *der = NULL;
	int r = SOTTO_ERR_INVALID, n, bits;

	if (enc == NULL || enclen == 0 || enclen > X3DH_ENC_MAX)
		return SOTTO_ERR_INVALID;
	if (type == X3DH_ID_ED25519) {
		if (edpk == NULL || enclen != X3DH_ED25519_SPKI_BYTES)
			return SOTTO_ERR_INVALID;
		if (memcmp(enc, x3dh_ed25519_spki_prefix, sizeof(x3dh_ed25519_spki_prefix)) != 0 ||
		        memcmp(enc + sizeof(x3dh_ed25519_spki_prefix), edpk,
		                ED25519_PUBLICKEYBYTES) != 0)
			return SOTTO_ERR_INVALID;
		return 0;
	}
	if (type != X3DH_ID_RSA || rsa == NULL)
		return SOTTO_ERR_INVALID;
	if ((bits = rsa_bits(rsa)) < 0)
		return SOTTO_ERR_INVALID;
	if (!rsa_identity_bits_ok(bits))
		return SOTTO_ERR_UNSUPPORTED;
	ERR_set_mark();
	if ((n = i2d_PUBKEY(rsa, &der)) <= 0) {
		r = SOTTO_ERR_CRYPTO;
		goto out;
	}
	if ((size_t)n == enclen && memcmp(der, enc, enclen) == 0)
		r = 0;
out:
	ERR_pop_to_mark();
	OPENSSL_free(der);
	return r;
}

static int
x3dh_check_priv(const struct x3dh_priv *p)
{
	const uint8_t *edpk = NULL;

	if (p->type == X3DH_ID_ED25519) {
		if (p->ed25519_sk == NULL)
			return SOTTO_ERR_INVALID;
		/* libsodium's secret key is seed || public key. */
		edpk = p->ed25519_sk + ED25519_SEEDBYTES;
	}
	return x3dh_check_identity(p->type, edpk, p->rsa, p->enc, p->enclen);
}

static int
x3dh_check_pub(const struct x3dh_pub *p)
{
	return x3dh_check_identity(p->type, p->ed25519_pk, p->rsa, p->enc, p->enclen);
}

/* Append one 32-byte term to the HKDF input. */
static void
x3dh_ikm_add(struct x3dh_secrets *s, const uint8_t term[X25519_KEYBYTES])
{
	memcpy(s->ikm + s->ikmlen, term, X25519_KEYBYTES);
	s->ikmlen += X25519_KEYBYTES;
}

/* Append DH(sk, pk) to the HKDF input; an all-zero result fails (SOTTO_ERR_WEAKKEY). */
static int
x3dh_ikm_dh(struct x3dh_secrets *s, const uint8_t sk[X25519_KEYBYTES],
        const uint8_t pk[X25519_KEYBYTES])
{
	int r;

	if ((r = x25519_shared(s->ikm + s->ikmlen, sk, pk)) != 0)
		return r;
	s->ikmlen += X25519_KEYBYTES;
	return 0;
}

/* The RSA initiator's signed transcript; doc/e2e.md gives the layout. */
static int
x3dh_transcript(struct buf *t, const uint8_t *enc_a, size_t enc_a_len, const uint8_t *enc_b,
        size_t enc_b_len, const struct x3dh_header *hdr)
{
	int r;

	if ((r = buf_put(t, X3DH_SIG_CONTEXT, strlen(X3DH_SIG_CONTEXT))) != 0 ||
	        (r = buf_put_string(t, enc_a, enc_a_len)) != 0 ||
	        (r = buf_put_string(t, enc_b, enc_b_len)) != 0 ||
	        (r = buf_put(t, hdr->ek, sizeof(hdr->ek))) != 0 ||
	        (r = buf_put_u32(t, hdr->spk_id)) != 0 || (r = buf_put_u8(t, hdr->has_opk)) != 0 ||
	        (r = buf_put_u32(t, hdr->opk_id)) != 0 ||
	        (r = buf_put_string(t, hdr->oaep_ct, hdr->oaep_ct_len)) != 0)
		return r;
	return 0;
}

/* SK = HKDF(32 zero bytes, ikm, "sotto-x3dh-v1") and AD = string(enc_A) || string(enc_B). */
static int
x3dh_session_make(struct x3dh_session **out, const struct x3dh_secrets *s, const uint8_t *enc_a,
        size_t enc_a_len, const uint8_t *enc_b, size_t enc_b_len)
{
	static const uint8_t salt[32];
	struct x3dh_session *sess = NULL;
	struct buf ad;
	int r = SOTTO_ERR_NOMEM;

	*out = NULL;
	buf_init(&ad, X3DH_AD_MAX);
	if ((sess = calloc(1, sizeof(*sess))) == NULL)
		goto out;
	if ((sess->sk = sodium_malloc(X3DH_SKBYTES)) == NULL)
		goto out;
	if ((r = kdf_hkdf_sha256(sess->sk, X3DH_SKBYTES, salt, sizeof(salt), s->ikm, s->ikmlen,
	             (const uint8_t *)X3DH_INFO, strlen(X3DH_INFO))) != 0)
		goto out;
	if ((r = buf_put_string(&ad, enc_a, enc_a_len)) != 0 ||
	        (r = buf_put_string(&ad, enc_b, enc_b_len)) != 0)
		goto out;
	r = SOTTO_ERR_NOMEM;
	if ((sess->ad = malloc(buf_len(&ad))) == NULL)
		goto out;
	memcpy(sess->ad, buf_ptr(&ad), buf_len(&ad));
	sess->adlen = buf_len(&ad);
	*out = sess;
	sess = NULL;
	r = 0;
out:
	buf_free(&ad);
	x3dh_session_free(sess);
	return r;
}

void
x3dh_session_free(struct x3dh_session *s)
{
	if (s == NULL)
		return;
	/* sodium_free wipes before it unmaps. */
	sodium_free(s->sk);
	if (s->ad != NULL) {
		sotto_wipe(s->ad, s->adlen);
		free(s->ad);
	}
	free(s);
}

/* Both initiator entry points: ek_sec and rand are NULL unless fixed by a known-answer test. */
static int
x3dh_initiate_common(struct x3dh_session **out, struct x3dh_header *hdr, const struct x3dh_priv *a,
        const struct x3dh_bundle *b, const uint8_t *ek_sec, const uint8_t *rand)
{
	struct x3dh_secrets *s = NULL;
	uint8_t peer_x[X25519_KEYBYTES];
	struct buf t;
	int r;

	if (out == NULL)
		return SOTTO_ERR_INVALID;
	*out = NULL;
	buf_init(&t, 0);
	if (hdr == NULL || a == NULL || b == NULL)
		return SOTTO_ERR_INVALID;
	memset(hdr, 0, sizeof(*hdr));
	if (b->has_opk != 0 && b->has_opk != 1)
		return SOTTO_ERR_INVALID;
	if ((r = x3dh_check_priv(a)) != 0 || (r = x3dh_check_pub(&b->id)) != 0)
		return r;
	if ((s = sodium_malloc(sizeof(*s))) == NULL)
		return SOTTO_ERR_NOMEM;
	memset(s, 0, sizeof(*s));

	if (ek_sec != NULL) {
		memcpy(s->ek_sec, ek_sec, X25519_KEYBYTES);
		if ((r = x25519_public(hdr->ek, s->ek_sec)) != 0)
			goto out;
	} else {
		x25519_keypair(hdr->ek, s->ek_sec);
	}
	hdr->version = X3DH_VERSION;
	hdr->spk_id = b->spk_id;
	hdr->has_opk = (uint8_t)b->has_opk;
	hdr->opk_id = b->has_opk ? b->opk_id : 0;

	memset(s->ikm, 0xff, X25519_KEYBYTES);
	s->ikmlen = X25519_KEYBYTES;
	/* T1 = DH(IK_A, SPK_B) authenticates an Ed25519 initiator; an RSA one signs instead. */
	if (a->type == X3DH_ID_ED25519) {
		if ((r = ed25519_sk_to_x25519(s->id_sec, a->ed25519_sk)) != 0 ||
		        (r = x3dh_ikm_dh(s, s->id_sec, b->spk)) != 0)
			goto out;
	}
	/* T2 = DH(EK_A, IK_B), or bytes that only an RSA responder can decrypt. */
	if (b->id.type == X3DH_ID_ED25519) {
		if ((r = ed25519_pk_to_x25519(peer_x, b->id.ed25519_pk)) != 0 ||
		        (r = x3dh_ikm_dh(s, s->ek_sec, peer_x)) != 0)
			goto out;
	} else {
		if (rand != NULL)
			memcpy(s->rand, rand, X3DH_RANDBYTES);
		else
			sotto_random(s->rand, X3DH_RANDBYTES);
		x3dh_ikm_add(s, s->rand);
		if ((r = rsa_oaep_encrypt(hdr->oaep_ct, sizeof(hdr->oaep_ct), &hdr->oaep_ct_len,
		             s->rand, X3DH_RANDBYTES, b->id.rsa, (const uint8_t *)X3DH_OAEP_LABEL,
		             strlen(X3DH_OAEP_LABEL))) != 0)
			goto out;
	}
	/* The ephemeral terms, which carry forward secrecy for every identity type. */
	if ((r = x3dh_ikm_dh(s, s->ek_sec, b->spk)) != 0)
		goto out;
	if (b->has_opk && (r = x3dh_ikm_dh(s, s->ek_sec, b->opk)) != 0)
		goto out;

	if (a->type == X3DH_ID_RSA) {
		if ((r = x3dh_transcript(&t, a->enc, a->enclen, b->id.enc, b->id.enclen, hdr)) != 0)
			goto out;
		if ((r = rsa_pss_sign(hdr->sig, sizeof(hdr->sig), &hdr->siglen, buf_ptr(&t),
		             buf_len(&t), a->rsa)) != 0)
			goto out;
	}
	r = x3dh_session_make(out, s, a->enc, a->enclen, b->id.enc, b->id.enclen);
out:
	sotto_wipe(peer_x, sizeof(peer_x));
	buf_free(&t);
	sodium_free(s);
	if (r != 0)
		memset(hdr, 0, sizeof(*hdr));
	return r;
}

int
x3dh_initiate(struct x3dh_session **out, struct x3dh_header *hdr, const struct x3dh_priv *a,
        const struct x3dh_bundle *b)
{
	return x3dh_initiate_common(out, hdr, a, b, NULL, NULL);
}

int
x3dh_initiate_fixed(struct x3dh_session **out, struct x3dh_header *hdr, const struct x3dh_priv *a,
        const struct x3dh_bundle *b, const uint8_t ek_sec[X25519_KEYBYTES],
        const uint8_t rand[X3DH_RANDBYTES])
{
	if (ek_sec == NULL || rand == NULL) {
		if (out != NULL)
			*out = NULL;
		return SOTTO_ERR_INVALID;
	}
	return x3dh_initiate_common(out, hdr, a, b, ek_sec, rand);
}

/* The structural rules a header must meet whoever built it. */
static int
x3dh_header_check(const struct x3dh_header *hdr)
{
	if (hdr->version != X3DH_VERSION || hdr->has_opk > 1 ||
	        (hdr->has_opk == 0 && hdr->opk_id != 0) || hdr->oaep_ct_len > RSA_MAX_BYTES ||
	        hdr->siglen > RSA_MAX_BYTES)
		return SOTTO_ERR_FORMAT;
	return 0;
}

int
x3dh_respond(struct x3dh_session **out, const struct x3dh_priv *b, const struct x3dh_prekeys *pk,
        const struct x3dh_pub *a, const struct x3dh_header *hdr)
{
	struct x3dh_secrets *s = NULL;
	uint8_t peer_x[X25519_KEYBYTES];
	struct buf t;
	size_t randlen = 0;
	int r;

	if (out == NULL)
		return SOTTO_ERR_INVALID;
	*out = NULL;
	buf_init(&t, 0);
	if (b == NULL || pk == NULL || a == NULL || hdr == NULL || pk->spk_sec == NULL)
		return SOTTO_ERR_INVALID;
	if ((r = x3dh_header_check(hdr)) != 0)
		return r;
	/* The caller looked the prekeys up by the header's ids; a mismatch is its mistake. */
	if (pk->spk_id != hdr->spk_id || (pk->has_opk != 0) != (hdr->has_opk != 0) ||
	        (hdr->has_opk && (pk->opk_id != hdr->opk_id || pk->opk_sec == NULL)))
		return SOTTO_ERR_INVALID;
	if ((r = x3dh_check_priv(b)) != 0 || (r = x3dh_check_pub(a)) != 0)
		return r;
	/* A signature exactly when the initiator is RSA, a ciphertext exactly when we are. */
	if ((a->type == X3DH_ID_RSA) != (hdr->siglen > 0) ||
	        (b->type == X3DH_ID_RSA) != (hdr->oaep_ct_len > 0))
		return SOTTO_ERR_FORMAT;
	/* Check the signature before the private-key operation touches unauthenticated bytes. */
	if (a->type == X3DH_ID_RSA) {
		if ((r = x3dh_transcript(&t, a->enc, a->enclen, b->enc, b->enclen, hdr)) != 0)
			goto out;
		if ((r = rsa_pss_verify(hdr->sig, hdr->siglen, buf_ptr(&t), buf_len(&t), a->rsa)) !=
		        0) {
			r = SOTTO_ERR_VERIFY;
			goto out;
		}
	}
	if ((s = sodium_malloc(sizeof(*s))) == NULL) {
		r = SOTTO_ERR_NOMEM;
		goto out;
	}
	memset(s, 0, sizeof(*s));
	memset(s->ikm, 0xff, X25519_KEYBYTES);
	s->ikmlen = X25519_KEYBYTES;
	if (a->type == X3DH_ID_ED25519) {
		if ((r = ed25519_pk_to_x25519(peer_x, a->ed25519_pk)) != 0 ||
		        (r = x3dh_ikm_dh(s, pk->spk_sec, peer_x)) != 0)
			goto out;
	}
	if (b->type == X3DH_ID_ED25519) {
		if ((r = ed25519_sk_to_x25519(s->id_sec, b->ed25519_sk)) != 0 ||
		        (r = x3dh_ikm_dh(s, s->id_sec, hdr->ek)) != 0)
			goto out;
	} else {
		if ((r = rsa_oaep_decrypt(s->rand, sizeof(s->rand), &randlen, hdr->oaep_ct,
		             hdr->oaep_ct_len, b->rsa, (const uint8_t *)X3DH_OAEP_LABEL,
		             strlen(X3DH_OAEP_LABEL))) != 0 ||
		        randlen != X3DH_RANDBYTES) {
			r = SOTTO_ERR_VERIFY;
			goto out;
		}
		x3dh_ikm_add(s, s->rand);
	}
	if ((r = x3dh_ikm_dh(s, pk->spk_sec, hdr->ek)) != 0)
		goto out;
	if (hdr->has_opk && (r = x3dh_ikm_dh(s, pk->opk_sec, hdr->ek)) != 0)
		goto out;
	r = x3dh_session_make(out, s, a->enc, a->enclen, b->enc, b->enclen);
out:
	sotto_wipe(peer_x, sizeof(peer_x));
	buf_free(&t);
	sodium_free(s);
	return r;
}

int
x3dh_header_put(struct buf *out, const struct x3dh_header *hdr)
{
	int r;

	if (out == NULL || hdr == NULL || x3dh_header_check(hdr) != 0)
		return SOTTO_ERR_INVALID;
	if ((r = buf_put_u8(out, hdr->version)) != 0 ||
	        (r = buf_put(out, hdr->ek, sizeof(hdr->ek))) != 0 ||
	        (r = buf_put_u32(out, hdr->spk_id)) != 0 ||
	        (r = buf_put_u8(out, hdr->has_opk)) != 0 ||
	        (r = buf_put_u32(out, hdr->opk_id)) != 0 ||
	        (r = buf_put_string(out, hdr->oaep_ct, hdr->oaep_ct_len)) != 0 ||
	        (r = buf_put_string(out, hdr->sig, hdr->siglen)) != 0)
		return r;
	return 0;
}

int
x3dh_header_get(struct x3dh_header *hdr, struct buf *in)
{
	struct x3dh_header h;
	struct buf rd;

	if (hdr == NULL || in == NULL)
		return SOTTO_ERR_INVALID;
	memset(&h, 0, sizeof(h));
	/* Read through a second reader so that a failure consumes nothing from in. */
	buf_init_reader(&rd, buf_ptr(in), buf_len(in));
	if (buf_get_u8(&rd, &h.version) != 0 || buf_get(&rd, h.ek, sizeof(h.ek)) != 0 ||
	        buf_get_u32(&rd, &h.spk_id) != 0 || buf_get_u8(&rd, &h.has_opk) != 0 ||
	        buf_get_u32(&rd, &h.opk_id) != 0 ||
	        buf_get_string_fixed(&rd, h.oaep_ct, sizeof(h.oaep_ct), &h.oaep_ct_len) != 0 ||
	        buf_get_string_fixed(&rd, h.sig, sizeof(h.sig), &h.siglen) != 0)
		return SOTTO_ERR_FORMAT;
	if (x3dh_header_check(&h) != 0)
		return SOTTO_ERR_FORMAT;
	if (buf_skip(in, buf_len(in) - buf_len(&rd)) != 0)
		return SOTTO_ERR_FORMAT;
	*hdr = h;
	return 0;
}

int
x3dh_header_parse(struct x3dh_header *hdr, const uint8_t *data, size_t len)
{
	struct x3dh_header h;
	struct buf in;
	int r;

	if (hdr == NULL || (data == NULL && len > 0))
		return SOTTO_ERR_INVALID;
	buf_init_reader(&in, data, len);
	if ((r = x3dh_header_get(&h, &in)) != 0)
		return r;
	if (buf_len(&in) != 0)
		return SOTTO_ERR_FORMAT;
	*hdr = h;
	return 0;
}
