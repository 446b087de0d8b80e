/*
 * Costs of the Double Ratchet next to the raw AEAD it wraps (256-byte
 * messages, same run), and of one full X3DH for each pair of identity types.
 * Target: a ratchet message without a DH step costs at most 4x the raw AEAD.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "bench.h"
#include "crypto/aead.h"
#include "crypto/ecc.h"
#include "crypto/ratchet.h"
#include "crypto/rsa.h"
#include "crypto/util.h"
#include "crypto/x3dh.h"

#define MSG     256
#define BATCHES 31
#define OPS     1000
/* Paired rounds for the ratios, of ROUND_OPS ratchet operations each. */
#define ROUNDS    31
#define ROUND_OPS 1000

static uint8_t key[AEAD_KEYBYTES], nonce[AEAD_XCHACHA_NPUBBYTES], msg[MSG], ct[MSG + AEAD_ABYTES];

static void
die(const char *what)
{
	fprintf(stderr, "bench_ratchet: %s failed\n", what);
	exit(2);
}

static void
op_seal(void *arg)
{
	if (aead_xchacha_seal(ct, msg, MSG, NULL, 0, nonce, key) != 0)
		abort();
}

static void
op_open(void *arg)
{
	uint8_t pt[MSG];

	if (aead_xchacha_open(pt, ct, sizeof(ct), NULL, 0, nonce, key) != 0)
		abort();
}

/* ---- the ratchet -------------------------------------------------------------------------- */

struct session {
	struct ratchet *a, *b;
};

static void
session_make(struct session *s)
{
	uint8_t sk[32], ad[88], pub[32], sec[32];
	uint8_t *w, *pt;
	size_t wlen, ptlen;

	sotto_random(sk, sizeof(sk));
	sotto_random(ad, sizeof(ad)); /* about two Ed25519 SPKI strings */
	x25519_keypair(pub, sec);
	if (ratchet_init_alice(&s->a, sk, ad, sizeof(ad), pub) != 0 ||
	        ratchet_init_bob(&s->b, sk, ad, sizeof(ad), pub, sec) != 0)
		die("ratchet init");
	/* Bob's first message from Alice is a DH step: take it before any timing. */
	if (ratchet_encrypt(s->a, msg, MSG, &w, &wlen) != 0 ||
	        ratchet_decrypt(s->b, w, wlen, &pt, &ptlen) != 0)
		die("first message");
	free(w);
	free(pt);
	sotto_wipe(sec, sizeof(sec));
	sotto_wipe(sk, sizeof(sk));
}

static void
session_free(struct session *s)
{
	ratchet_free(s->a);
	ratchet_free(s->b);
}

static void
op_ratchet_encrypt(void *arg)
{
	struct session *s = arg;
	uint8_t *w;
	size_t wlen;

	if (ratchet_encrypt(s->a, msg, MSG, &w, &wlen) != 0)
		abort();
	free(w);
}

/* Pre-made consecutive messages from Alice, opened in order by Bob. */
struct queue {
	struct session *s;
	uint8_t **w;
	size_t *len;
	size_t n, next;
};

static void
op_ratchet_decrypt(void *arg)
{
	struct queue *q = arg;
	uint8_t *pt;
	size_t ptlen;

	if (q->next >= q->n ||
	        ratchet_decrypt(q->s->b, q->w[q->next], q->len[q->next], &pt, &ptlen) != 0)
		abort();
	free(pt);
	q->next++;
}

/* One message in alternating directions: encrypt, then a decrypt that steps the DH ratchet. */
struct alt {
	struct session *s;
	int turn;
};

static void
op_ratchet_alternating(void *arg)
{
	struct alt *x = arg;
	struct ratchet *from = x->turn ? x->s->b : x->s->a, *to = x->turn ? x->s->a : x->s->b;
	uint8_t *w, *pt;
	size_t wlen, ptlen;

	if (ratchet_encrypt(from, msg, MSG, &w, &wlen) != 0 ||
	        ratchet_decrypt(to, w, wlen, &pt, &ptlen) != 0)
		abort();
	free(w);
	free(pt);
	x->turn = !x->turn;
}

/* CPU time of this thread: a process preempted by other load is not charged for the wait. */
static double
cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/*
 * The median, over rounds, of (ratchet op / raw op) in CPU time, both timed
 * back to back in each round, so that a busy machine shifts both alike.
 */
static double
paired_ratio(bench_fn raw, bench_fn op, void *arg)
{
	double ratio[ROUNDS], t0, traw, top, t;
	size_t i, j;

	for (i = 0; i < ROUNDS; i++) {
		t0 = cpu_ns();
		for (j = 0; j < 4 * ROUND_OPS; j++)
			raw(NULL);
		traw = (cpu_ns() - t0) / (4 * ROUND_OPS);
		t0 = cpu_ns();
		for (j = 0; j < ROUND_OPS; j++)
			op(arg);
		top = (cpu_ns() - t0) / ROUND_OPS;
		ratio[i] = top / traw;
	}
	for (i = 1; i < ROUNDS; i++)
		for (j = i; j > 0 && ratio[j - 1] > ratio[j]; j--) {
			t = ratio[j];
			ratio[j] = ratio[j - 1];
			ratio[j - 1] = t;
		}
	return ratio[ROUNDS / 2];
}

/* ---- X3DH --------------------------------------------------------------------------------- */

static const uint8_t ed25519_spki_prefix[] = {
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};

struct ident {
	enum x3dh_id_type type;
	uint8_t ed_pk[32], ed_sk[64];
	EVP_PKEY *rsa;
	uint8_t enc[1024];
	size_t enclen;
};

static void
ident_ed(struct ident *id)
{
	memset(id, 0, sizeof(*id));
	id->type = X3DH_ID_ED25519;
	ed25519_keypair(id->ed_pk, id->ed_sk);
	memcpy(id->enc, ed25519_spki_prefix, sizeof(ed25519_spki_prefix));
	memcpy(id->enc + sizeof(ed25519_spki_prefix), id->ed_pk, 32);
	id->enclen = sizeof(ed25519_spki_prefix) + 32;
}

static void
ident_rsa(struct ident *id, int bits)
{
	unsigned char *der = NULL;
	int n;

	memset(id, 0, sizeof(*id));
	id->type = X3DH_ID_RSA;
	if (rsa_generate(&id->rsa, bits) != 0)
		die("RSA key generation");
	if ((n = i2d_PUBKEY(id->rsa, &der)) <= 0 || (size_t)n > sizeof(id->enc))
		die("SPKI encoding");
	memcpy(id->enc, der, (size_t)n);
	id->enclen = (size_t)n;
	OPENSSL_free(der);
}

struct handshake {
	const struct ident *a, *b;
	uint8_t spk_pub[32], spk_sec[32], opk_pub[32], opk_sec[32];
};

static void
op_x3dh(void *arg)
{
	const struct handshake *h = arg;
	struct x3dh_session *sa = NULL, *sb = NULL;
	struct x3dh_header hdr;
	struct x3dh_priv ap, bp;
	struct x3dh_pub apub;
	struct x3dh_bundle bd;
	struct x3dh_prekeys pk;

	memset(&ap, 0, sizeof(ap));
	ap.type = h->a->type;
	ap.ed25519_sk = h->a->ed_sk;
	ap.rsa = h->a->rsa;
	ap.enc = h->a->enc;
	ap.enclen = h->a->enclen;
	memset(&bp, 0, sizeof(bp));
	bp.type = h->b->type;
	bp.ed25519_sk = h->b->ed_sk;
	bp.rsa = h->b->rsa;
	bp.enc = h->b->enc;
	bp.enclen = h->b->enclen;
	memset(&apub, 0, sizeof(apub));
	apub.type = h->a->type;
	apub.ed25519_pk = h->a->ed_pk;
	apub.rsa = h->a->rsa;
	apub.enc = h->a->enc;
	apub.enclen = h->a->enclen;
	memset(&bd, 0, sizeof(bd));
	bd.id.type = h->b->type;
	bd.id.ed25519_pk = h->b->ed_pk;
	bd.id.rsa = h->b->rsa;
	bd.id.enc = h->b->enc;
	bd.id.enclen = h->b->enclen;
	bd.spk_id = 1;
	memcpy(bd.spk, h->spk_pub, 32);
	bd.has_opk = 1;
	bd.opk_id = 2;
	memcpy(bd.opk, h->opk_pub, 32);
	memset(&pk, 0, sizeof(pk));
	pk.spk_id = 1;
	pk.spk_sec = h->spk_sec;
	pk.has_opk = 1;
	pk.opk_id = 2;
	pk.opk_sec = h->opk_sec;
	if (x3dh_initiate(&sa, &hdr, &ap, &bd) != 0 ||
	        x3dh_respond(&sb, &bp, &pk, &apub, &hdr) != 0 ||
	        memcmp(sa->sk, sb->sk, X3DH_SKBYTES) != 0)
		abort();
	x3dh_session_free(sa);
	x3dh_session_free(sb);
}

int
main(void)
{
	struct bench_result seal, open, enc, dec, alt, r;
	double enc_ratio, dec_ratio;
	struct session s;
	struct queue q;
	struct alt x;
	struct ident ed_a, ed_b, rsa_a, rsa_b;
	struct handshake h;
	size_t i;

	if (sotto_crypto_init() != 0)
		die("crypto initialisation");
	sotto_random(key, sizeof(key));
	sotto_random(nonce, sizeof(nonce));
	sotto_random(msg, sizeof(msg));

	printf("== double ratchet (256-byte messages) ==\n");
	bench_run(&seal, op_seal, NULL, BATCHES, 20000);
	bench_print("raw xchacha20poly1305 seal 256 B", &seal);
	if (aead_xchacha_seal(ct, msg, MSG, NULL, 0, nonce, key) != 0)
		die("seal");
	bench_run(&open, op_open, NULL, BATCHES, 20000);
	bench_print("raw xchacha20poly1305 open 256 B", &open);

	session_make(&s);
	bench_run(&enc, op_ratchet_encrypt, &s, BATCHES, OPS);
	bench_print("ratchet encrypt, no DH step", &enc);
	enc_ratio = paired_ratio(op_seal, op_ratchet_encrypt, &s);
	session_free(&s);

	session_make(&s);
	q.s = &s;
	/* bench_run makes one warm-up batch; the paired rounds follow on the same queue. */
	q.n = (BATCHES + 1) * OPS + ROUNDS * ROUND_OPS;
	q.next = 0;
	if ((q.w = calloc(q.n, sizeof(*q.w))) == NULL ||
	        (q.len = calloc(q.n, sizeof(*q.len))) == NULL)
		die("allocation");
	for (i = 0; i < q.n; i++)
		if (ratchet_encrypt(s.a, msg, MSG, &q.w[i], &q.len[i]) != 0)
			die("encrypt");
	bench_run(&dec, op_ratchet_decrypt, &q, BATCHES, OPS);
	bench_print("ratchet decrypt, no DH step", &dec);
	dec_ratio = paired_ratio(op_open, op_ratchet_decrypt, &q);
	for (i = 0; i < q.n; i++)
		free(q.w[i]);
	free(q.w);
	free(q.len);
	session_free(&s);

	session_make(&s);
	x.s = &s;
	x.turn = 1; /* Bob answers first */
	bench_run(&alt, op_ratchet_alternating, &x, BATCHES, 100);
	bench_print("ratchet encrypt+decrypt, alternating", &alt);
	session_free(&s);

	printf("%-44s %10.2fx raw seal; CPU time, paired: %.2fx (target <= 4x)\n",
	        "ratchet encrypt, no DH step:", enc.median_ns / seal.median_ns, enc_ratio);
	printf("%-44s %10.2fx raw open; CPU time, paired: %.2fx (target <= 4x)\n",
	        "ratchet decrypt, no DH step:", dec.median_ns / open.median_ns, dec_ratio);
	printf("%-44s %10.0f ns (alternating pair minus encrypt)\n",
	        "ratchet decrypt with a DH step, derived:", alt.median_ns - enc.median_ns);

	printf("== x3dh, initiator + responder, with a one-time prekey ==\n");
	ident_ed(&ed_a);
	ident_ed(&ed_b);
	ident_rsa(&rsa_a, 3072);
	ident_rsa(&rsa_b, 3072);
	x25519_keypair(h.spk_pub, h.spk_sec);
	x25519_keypair(h.opk_pub, h.opk_sec);
	h.a = &ed_a;
	h.b = &ed_b;
	bench_run(&r, op_x3dh, &h, BATCHES, 20);
	bench_print("x3dh ed25519 -> ed25519", &r);
	h.a = &ed_a;
	h.b = &rsa_b;
	bench_run(&r, op_x3dh, &h, 11, 5);
	bench_print("x3dh ed25519 -> rsa-3072", &r);
	h.a = &rsa_a;
	h.b = &ed_b;
	bench_run(&r, op_x3dh, &h, 11, 5);
	bench_print("x3dh rsa-3072 -> ed25519", &r);
	h.a = &rsa_a;
	h.b = &rsa_b;
	bench_run(&r, op_x3dh, &h, 11, 5);
	bench_print("x3dh rsa-3072 -> rsa-3072", &r);
	EVP_PKEY_free(rsa_a.rsa);
	EVP_PKEY_free(rsa_b.rsa);
	sotto_wipe(&ed_a, sizeof(ed_a));
	sotto_wipe(&ed_b, sizeof(ed_b));
	sotto_wipe(&h, sizeof(h));
	return 0;
}
