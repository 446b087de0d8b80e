/*
 * End-to-end sessions: X3DH, the Double Ratchet and the content layer glued
 * together for the client (see client-e2e.h and doc/e2e.md section 6).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto/buf.h"
#include "crypto/hash.h"
#include "crypto/util.h"
#include "crypto/x3dh.h"
#include "src/client-e2e.h"
#include "src/sigmsg.h"

void
e2e_session_free(struct e2e_session *s)
{
	if (s == NULL)
		return;
	ratchet_free(s->r);
	ratchet_free(s->prev);
	free(s->hdr);
	identity_pub_free(s->peer);
	free(s);
}

int
e2e_session_load(struct client_store *cs, const char *peer, struct e2e_session **out)
{
	struct e2e_session *s = NULL;
	uint8_t *blob = NULL;
	const uint8_t *p;
	size_t len = 0, plen;
	struct buf b;
	uint8_t ver;
	int r;

	*out = NULL;
	if ((r = client_store_session_get(cs, peer, &blob, &len)) != 0)
		return r;
	buf_init_reader(&b, blob, len);
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		r = SOTTO_ERR_NOMEM;
		goto out;
	}
	if ((r = buf_get_u8(&b, &ver)) != 0)
		goto out;
	if (ver != 1 && ver != E2E_SESSION_VERSION) {
		r = SOTTO_ERR_FORMAT;
		goto out;
	}
	if ((r = buf_get_string_direct(&b, &p, &plen, CLIENT_STORE_STATE_MAX)) != 0 ||
	        (r = ratchet_deserialize(&s->r, p, plen)) != 0)
		goto out;
	if ((r = buf_get_string_direct(&b, &p, &plen, X3DH_HEADER_MAXBYTES)) != 0)
		goto out;
	if (plen > 0) {
		if ((s->hdr = malloc(plen)) == NULL) {
			r = SOTTO_ERR_NOMEM;
			goto out;
		}
		memcpy(s->hdr, p, plen);
		s->hdrlen = plen;
	}
	if ((r = buf_get_string_direct(&b, &p, &plen, X3DH_ENC_MAX)) != 0 ||
	        (r = identity_pub_from_der(&s->peer, p, plen)) != 0)
		goto out;
	if (ver >= 2) {
		if ((r = buf_get_string_direct(&b, &p, &plen, CLIENT_STORE_STATE_MAX)) != 0 ||
		        (plen > 0 && (r = ratchet_deserialize(&s->prev, p, plen)) != 0))
			goto out;
	}
	if (buf_len(&b) != 0) {
		r = SOTTO_ERR_FORMAT;
		goto out;
	}
	*out = s;
	s = NULL;
out:
	e2e_session_free(s);
	client_store_free_secret(blob, len);
	return r;
}

int
e2e_session_save(
        struct client_store *cs, const char *peer, const struct e2e_session *s, int64_t now)
{
	struct buf b, st, prev;
	int r;

	buf_init_secure(&b, CLIENT_STORE_STATE_MAX);
	buf_init_secure(&st, CLIENT_STORE_STATE_MAX);
	buf_init_secure(&prev, CLIENT_STORE_STATE_MAX);
	if ((r = ratchet_serialize(s->r, &st)) != 0 ||
	        (s->prev != NULL && (r = ratchet_serialize(s->prev, &prev)) != 0) ||
	        (r = buf_put_u8(&b, E2E_SESSION_VERSION)) != 0 ||
	        (r = buf_put_string(&b, buf_ptr(&st), buf_len(&st))) != 0 ||
	        (r = buf_put_string(&b, s->hdr, s->hdrlen)) != 0 ||
	        (r = buf_put_string(&b, s->peer->der, s->peer->derlen)) != 0 ||
	        (r = buf_put_string(&b, buf_ptr(&prev), buf_len(&prev))) != 0)
		goto out;
	r = client_store_session_put(cs, peer, buf_ptr(&b), buf_len(&b), now);
out:
	buf_free(&prev);
	buf_free(&st);
	buf_free(&b);
	return r;
}

int
e2e_bundle_check(const Sotto__Bundle *b, struct identity_pub **peer)
{
	struct identity_pub *pub = NULL;
	struct buf m;
	int r;

	*peer = NULL;
	if (b->spk == NULL || b->spk->public_key.len != PROTO_PREKEY_BYTES ||
	        (b->otk != NULL && b->otk->public_key.len != PROTO_PREKEY_BYTES))
		return SOTTO_ERR_FORMAT;
	if ((r = identity_pub_from_der(&pub, b->identity_key.data, b->identity_key.len)) != 0)
		return r;
	buf_init(&m, 0);
	if ((r = sigmsg_spk(&m, b->spk->id, b->spk->public_key.data, b->spk->created)) != 0 ||
	        (r = identity_pub_verify(pub, b->spk->signature.data, b->spk->signature.len,
	                 buf_ptr(&m), buf_len(&m))) != 0)
		goto out;
	*peer = pub;
	pub = NULL;
out:
	buf_free(&m);
	identity_pub_free(pub);
	return r;
}

static void
e2e_priv_of(struct x3dh_priv *p, const struct identity *id)
{
	memset(p, 0, sizeof(*p));
	p->type = id->pub.type == IDENTITY_RSA ? X3DH_ID_RSA : X3DH_ID_ED25519;
	p->ed25519_sk = id->ed25519_sk;
	p->rsa = id->rsa;
	p->enc = id->pub.der;
	p->enclen = id->pub.derlen;
}

static void
e2e_pub_of(struct x3dh_pub *p, const struct identity_pub *pub)
{
	memset(p, 0, sizeof(*p));
	p->type = pub->type == IDENTITY_RSA ? X3DH_ID_RSA : X3DH_ID_ED25519;
	p->ed25519_pk = pub->type == IDENTITY_ED25519 ? pub->ed25519 : NULL;
	p->rsa = pub->rsa;
	p->enc = pub->der;
	p->enclen = pub->derlen;
}

int
e2e_session_initiate(struct e2e_session **out, const struct identity *self,
        const struct identity_pub *peer, const Sotto__Bundle *b)
{
	struct e2e_session *s = NULL;
	struct x3dh_session *xs = NULL;
	struct x3dh_header *hdr = NULL;
	struct x3dh_priv me;
	struct x3dh_bundle bd;
	struct buf hb;
	int r;

	*out = NULL;
	buf_init(&hb, 0);
	if ((s = calloc(1, sizeof(*s))) == NULL || (hdr = calloc(1, sizeof(*hdr))) == NULL) {
		r = SOTTO_ERR_NOMEM;
		goto out;
	}
	e2e_priv_of(&me, self);
	memset(&bd, 0, sizeof(bd));
	e2e_pub_of(&bd.id, peer);
	bd.spk_id = b->spk->id;
	memcpy(bd.spk, b->spk->public_key.data, sizeof(bd.spk));
	if (b->otk != NULL) {
		bd.has_opk = 1;
		bd.opk_id = b->otk->id;
		memcpy(bd.opk, b->otk->public_key.data, sizeof(bd.opk));
	}
	if ((r = x3dh_initiate(&xs, hdr, &me, &bd)) != 0 ||
	        (r = ratchet_init_alice(&s->r, xs->sk, xs->ad, xs->adlen, bd.spk)) != 0 ||
	        (r = x3dh_header_put(&hb, hdr)) != 0 || (r = identity_pub_dup(&s->peer, peer)) != 0)
		goto out;
	if ((s->hdr = malloc(buf_len(&hb))) == NULL) {
		r = SOTTO_ERR_NOMEM;
		goto out;
	}
	memcpy(s->hdr, buf_ptr(&hb), buf_len(&hb));
	s->hdrlen = buf_len(&hb);
	*out = s;
	s = NULL;
out:
	buf_free(&hb);
	free(hdr);
	x3dh_session_free(xs);
	e2e_session_free(s);
	return r;
}

int
e2e_seal_packed(struct e2e_session *s, const struct identity *self, const uint8_t *pt, size_t ptlen,
        uint8_t **out, size_t *outlen)
{
	uint8_t *ct = NULL, *packed = NULL;
	size_t ctlen = 0, n;
	Sottoc__Sealed sl;
	int r;

	*out = NULL;
	*outlen = 0;
	if ((r = ratchet_encrypt(s->r, pt, ptlen, &ct, &ctlen)) != 0)
		goto out;
	sottoc__sealed__init(&sl);
	sl.version = E2E_SEALED_VERSION;
	sl.ratchet = proto_bytes(ct, ctlen);
	if (s->hdr != NULL) {
		sl.x3dh_header = proto_bytes(s->hdr, s->hdrlen);
		sl.sender_identity = proto_bytes(self->pub.der, self->pub.derlen);
	}
	n = sottoc__sealed__get_packed_size(&sl);
	if ((packed = malloc(n + 1)) == NULL) {
		r = SOTTO_ERR_NOMEM;
		goto out;
	}
	sottoc__sealed__pack(&sl, packed);
	*out = packed;
	*outlen = n;
	r = 0;
out:
	free(ct);
	return r;
}

int
e2e_seal(struct e2e_session *s, const struct identity *self, const Sottoc__Content *c,
        uint8_t **out, size_t *outlen)
{
	uint8_t *pt = NULL;
	size_t ptlen;
	int r;

	*out = NULL;
	*outlen = 0;
	ptlen = sottoc__content__get_packed_size(c);
	if ((pt = malloc(ptlen + 1)) == NULL)
		return SOTTO_ERR_NOMEM;
	sottoc__content__pack(c, pt);
	r = e2e_seal_packed(s, self, pt, ptlen, out, outlen);
	sotto_wipe(pt, ptlen);
	free(pt);
	return r;
}

/* Answer the X3DH header hdr of sl with our prekeys: a new session, and the first plaintext. */
static int
e2e_respond(struct client_store *cs, const struct identity *self, const Sottoc__Sealed *sl,
        const struct x3dh_header *hdr, struct e2e_session **out, uint8_t **pt, size_t *ptlen)
{
	struct e2e_session *s = NULL;
	struct x3dh_session *xs = NULL;
	struct x3dh_priv me;
	struct x3dh_pub them;
	struct x3dh_prekeys pk;
	uint8_t *spk = NULL, *otk = NULL, spk_pub[X25519_KEYBYTES];
	size_t spklen = 0, otklen = 0;
	int r;

	*out = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		r = SOTTO_ERR_NOMEM;
		goto out;
	}
	if ((r = identity_pub_from_der(
	             &s->peer, sl->sender_identity.data, sl->sender_identity.len)) != 0)
		goto out;
	if ((r = client_store_spk_get(cs, hdr->spk_id, &spk, &spklen, NULL)) != 0)
		goto out;
	if (spklen != X25519_KEYBYTES) {
		r = SOTTO_ERR_FORMAT;
		goto out;
	}
	memset(&pk, 0, sizeof(pk));
	pk.spk_id = hdr->spk_id;
	pk.spk_sec = spk;
	if (hdr->has_opk) {
		if ((r = client_store_otk_take(cs, hdr->opk_id, &otk, &otklen)) != 0)
			goto out;
		if (otklen != X25519_KEYBYTES) {
			r = SOTTO_ERR_FORMAT;
			goto out;
		}
		pk.has_opk = 1;
		pk.opk_id = hdr->opk_id;
		pk.opk_sec = otk;
	}
	e2e_priv_of(&me, self);
	e2e_pub_of(&them, s->peer);
	if ((r = x25519_public(spk_pub, spk)) != 0 ||
	        (r = x3dh_respond(&xs, &me, &pk, &them, hdr)) != 0 ||
	        (r = ratchet_init_bob(&s->r, xs->sk, xs->ad, xs->adlen, spk_pub, spk)) != 0 ||
	        (r = ratchet_decrypt(s->r, sl->ratchet.data, sl->ratchet.len, pt, ptlen)) != 0)
		goto out;
	*out = s;
	s = NULL;
out:
	client_store_free_secret(spk, spklen);
	client_store_free_secret(otk, otklen);
	x3dh_session_free(xs);
	e2e_session_free(s);
	return r;
}

/* The tag that names an X3DH handshake in client.db: a hash of its ephemeral key. */
static void
e2e_x3dh_tag(uint8_t tag[CLIENT_STORE_X3DH_TAG_BYTES], const struct x3dh_header *hdr)
{
	static const char info[] = E2E_X3DH_TAG_INFO;
	uint8_t m[sizeof(info) - 1 + X25519_KEYBYTES];

	memcpy(m, info, sizeof(info) - 1);
	memcpy(m + sizeof(info) - 1, hdr->ek, X25519_KEYBYTES);
	hash_sha256(tag, m, sizeof(m));
}

/*
 * Answer sl's X3DH header, unless it was answered before (SOTTO_ERR_EXISTS),
 * and remember it.  The tag is the ephemeral key's: an honest initiator never
 * uses one twice, and no other field can change without changing the secret.
 */
static int
e2e_answer(struct client_store *cs, const struct identity *self, const Sottoc__Sealed *sl,
        struct e2e_session **out, uint8_t **pt, size_t *ptlen)
{
	struct x3dh_header *hdr = NULL;
	uint8_t tag[CLIENT_STORE_X3DH_TAG_BYTES];
	int r, seen = 0;

	*out = NULL;
	if ((hdr = calloc(1, sizeof(*hdr))) == NULL)
		return SOTTO_ERR_NOMEM;
	if ((r = x3dh_header_parse(hdr, sl->x3dh_header.data, sl->x3dh_header.len)) != 0)
		goto out;
	e2e_x3dh_tag(tag, hdr);
	if ((r = client_store_x3dh_seen(cs, tag, &seen)) != 0)
		goto out;
	if (seen) {
		r = SOTTO_ERR_EXISTS;
		goto out;
	}
	if ((r = e2e_respond(cs, self, sl, hdr, out, pt, ptlen)) != 0)
		goto out;
	if ((r = client_store_x3dh_add(cs, tag, hdr->spk_id, (int64_t)time(NULL))) != 0) {
		e2e_session_free(*out);
		*out = NULL;
		if (*pt != NULL) {
			sotto_wipe(*pt, *ptlen);
			free(*pt);
			*pt = NULL;
		}
	}
out:
	free(hdr);
	return r;
}

/*
 * 1 if the new session ns, from the peer, loses to s: s is ours, still
 * pending, with the same peer key, and our name sorts first.  Both sides
 * apply this rule, so both keep the session the lower name started.
 */
static int
e2e_ours_wins(const struct e2e_session *s, const struct e2e_session *ns, const char *self_name,
        const char *peer)
{
	return s != NULL && s->hdr != NULL && identity_pub_equal(s->peer, ns->peer) &&
	       strcmp(self_name, peer) < 0;
}

int
e2e_open(struct client_store *cs, const struct identity *self, const char *self_name,
        const char *peer, const uint8_t *sealed, size_t len, struct e2e_session **sess, int *fresh,
        Sottoc__Content **content)
{
	char me[PROTO_USERNAME_MAX + 1], them[PROTO_USERNAME_MAX + 1];
	Sottoc__Sealed *sl = NULL;
	struct e2e_session *s = NULL, *ns = NULL;
	uint8_t *pt = NULL;
	size_t ptlen = 0;
	int r;

	*sess = NULL;
	*fresh = 0;
	*content = NULL;
	if (proto_username_normalize(me, self_name) != 0 ||
	        proto_username_normalize(them, peer) != 0)
		return SOTTO_ERR_INVALID;
	if ((sl = sottoc__sealed__unpack(NULL, len, sealed)) == NULL ||
	        sl->version != E2E_SEALED_VERSION) {
		r = SOTTO_ERR_FORMAT;
		goto out;
	}
	r = e2e_session_load(cs, peer, &s);
	if (r != 0 && r != SOTTO_ERR_NOTFOUND)
		goto out;
	if (s != NULL &&
	        (r = ratchet_decrypt(s->r, sl->ratchet.data, sl->ratchet.len, &pt, &ptlen)) == 0) {
		/* The peer has replied: stop sending our X3DH header; its old session is done. */
		free(s->hdr);
		s->hdr = NULL;
		s->hdrlen = 0;
		ratchet_free(s->prev);
		s->prev = NULL;
	} else if (s != NULL && s->prev != NULL &&
	           ratchet_decrypt(s->prev, sl->ratchet.data, sl->ratchet.len, &pt, &ptlen) == 0) {
		/* Sent on the peer's session before the peer had ours. */
	} else if (sl->x3dh_header.len > 0) {
		if ((r = e2e_answer(cs, self, sl, &ns, &pt, &ptlen)) != 0)
			goto out;
		if (e2e_ours_wins(s, ns, me, them)) {
			ratchet_free(s->prev);
			s->prev = ns->r;
			ns->r = NULL;
		} else {
			e2e_session_free(s);
			s = ns;
			ns = NULL;
		}
		*fresh = 1;
	} else {
		r = s == NULL ? SOTTO_ERR_NOTFOUND : r;
		goto out;
	}
	if ((*content = sottoc__content__unpack(NULL, ptlen, pt)) == NULL) {
		r = SOTTO_ERR_FORMAT;
		goto out;
	}
	*sess = s;
	s = NULL;
	r = 0;
out:
	if (pt != NULL) {
		sotto_wipe(pt, ptlen);
		free(pt);
	}
	e2e_session_free(ns);
	e2e_session_free(s);
	if (sl != NULL)
		sottoc__sealed__free_unpacked(sl, NULL);
	return r;
}

int
e2e_store_prune(struct client_store *cs, int64_t now)
{
	int r;

	if ((r = client_store_seen_prune(cs, now, CLIENT_STORE_SEEN_DAYS, NULL)) != 0)
		return r;
	return client_store_x3dh_prune(cs, NULL);
}
