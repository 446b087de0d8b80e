/*
 * Costs of sender-key group messages (256-byte messages): sealing once for a
 * group, opening once per member, next to the raw AEAD and the Ed25519
 * signature and verification that dominate them, and a skip.  Timed in CPU
 * time of this thread, so that other load on the machine does not count.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "crypto/aead.h"
#include "crypto/ecc.h"
#include "crypto/senderkey.h"
#include "crypto/util.h"

#define MSG     256
#define BATCHES 31
#define OPS     500

static const uint8_t group[SENDERKEY_GROUPBYTES] = {
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static uint8_t msg[MSG], key[AEAD_KEYBYTES], nonce[AEAD_XCHACHA_NPUBBYTES], ct[MSG + AEAD_ABYTES],
        sig[ED25519_SIGBYTES], sign_pk[ED25519_PUBLICKEYBYTES], sign_sk[ED25519_SECRETKEYBYTES];

/* CPU time of this thread: on a shared machine, waiting for a core is not charged. */
static double
cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* bench_run() in CPU time rather than wall time: one warm-up batch, then the median batch. */
static void
cpu_run(struct bench_result *res, bench_fn fn, void *arg, size_t batches, size_t ops)
{
	double per[64] = {0}, t0;
	size_t i, j;

	if (batches == 0 || batches > 64)
		batches = batches == 0 ? 1 : 64;
	for (j = 0; j < ops; j++)
		fn(arg);
	for (i = 0; i < batches; i++) {
		t0 = cpu_ns();
		for (j = 0; j < ops; j++)
			fn(arg);
		per[i] = (cpu_ns() - t0) / (double)ops;
	}
	qsort(per, batches, sizeof(per[0]), cmp_double);
	res->median_ns = per[batches / 2];
	res->min_ns = per[0];
	res->max_ns = per[batches - 1];
	res->batches = batches;
	res->ops_per_batch = ops;
}

static void
die(const char *what)
{
	fprintf(stderr, "bench_senderkey: %s failed\n", what);
	exit(2);
}

static void
op_aead(void *arg)
{
	(void)arg;
	if (aead_xchacha_seal(ct, msg, MSG, NULL, 0, nonce, key) != 0)
		abort();
}

static void
op_sign(void *arg)
{
	(void)arg;
	if (ed25519_sign(sig, msg, MSG, sign_sk) != 0)
		abort();
}

static void
op_verify(void *arg)
{
	(void)arg;
	if (ed25519_verify(sig, sizeof(sig), msg, MSG, sign_pk) != 0)
		abort();
}

static void
op_seal(void *arg)
{
	uint8_t *w;
	size_t wlen;

	if (senderkey_seal(arg, group, "alice", msg, MSG, &w, &wlen) != 0)
		abort();
	free(w);
}

/* Pre-made consecutive messages, opened in order. */
struct queue {
	struct senderkey_recv *r;
	uint8_t **w;
	size_t *len;
	size_t n, next, step;
};

static void
op_open(void *arg)
{
	struct queue *q = arg;
	uint8_t *pt;
	size_t ptlen;

	if (q->next >= q->n || senderkey_open(q->r, group, "alice", q->w[q->next], q->len[q->next],
	                               &pt, &ptlen) != 0)
		abort();
	free(pt);
	q->next += q->step;
}

static void
queue_make(struct queue *q, struct senderkey_send *s, size_t n, size_t step)
{
	struct senderkey_dist d;
	size_t i;

	if (senderkey_send_dist(s, &d) != 0 || senderkey_recv_new(&q->r, &d) != 0)
		die("distribution");
	sotto_wipe(&d, sizeof(d));
	q->n = n;
	q->next = step - 1;
	q->step = step;
	if ((q->w = calloc(n, sizeof(*q->w))) == NULL ||
	        (q->len = calloc(n, sizeof(*q->len))) == NULL)
		die("allocation");
	for (i = 0; i < n; i++)
		if (senderkey_seal(s, group, "alice", msg, MSG, &q->w[i], &q->len[i]) != 0)
			die("seal");
}

static void
queue_free(struct queue *q)
{
	size_t i;

	for (i = 0; i < q->n; i++)
		free(q->w[i]);
	free(q->w);
	free(q->len);
	senderkey_recv_free(q->r);
}

int
main(void)
{
	struct bench_result aead, sign, verify, seal, open, skip;
	struct senderkey_send *s;
	struct queue q;

	if (sotto_crypto_init() != 0)
		die("crypto initialisation");
	sotto_random(msg, sizeof(msg));
	sotto_random(key, sizeof(key));
	sotto_random(nonce, sizeof(nonce));
	ed25519_keypair(sign_pk, sign_sk);

	printf("== sender keys (256-byte group messages; thread CPU time) ==\n");
	cpu_run(&aead, op_aead, NULL, BATCHES, 20000);
	bench_print("raw xchacha20poly1305 seal 256 B", &aead);
	cpu_run(&sign, op_sign, NULL, BATCHES, OPS);
	bench_print("raw ed25519 sign 256 B", &sign);
	if (ed25519_sign(sig, msg, MSG, sign_sk) != 0)
		die("sign");
	cpu_run(&verify, op_verify, NULL, BATCHES, OPS);
	bench_print("raw ed25519 verify 256 B", &verify);

	if (senderkey_send_new(&s) != 0)
		die("senderkey_send_new");
	cpu_run(&seal, op_seal, s, BATCHES, OPS);
	bench_print("senderkey seal (once per group message)", &seal);

	/* bench_run makes one warm-up batch. */
	queue_make(&q, s, (BATCHES + 1) * OPS, 1);
	cpu_run(&open, op_open, &q, BATCHES, OPS);
	bench_print("senderkey open (once per member)", &open);
	queue_free(&q);

	/* Each open skips 99 iterations: the chain walk a member pays after a gap. */
	queue_make(&q, s, (11 + 1) * 20 * 100, 100);
	cpu_run(&skip, op_open, &q, 11, 20);
	bench_print("senderkey open skipping 99 iterations", &skip);
	queue_free(&q);
	senderkey_send_free(s);

	printf("%-44s %10.0f ns beyond the signature (%.0f%% of the seal)\n",
	        "senderkey seal, chain step + AEAD + framing:", seal.median_ns - sign.median_ns,
	        100.0 * (seal.median_ns - sign.median_ns) / seal.median_ns);
	printf("%-44s %10.0f ns beyond the verification (%.0f%% of the open)\n",
	        "senderkey open, chain step + AEAD + framing:", open.median_ns - verify.median_ns,
	        100.0 * (open.median_ns - verify.median_ns) / open.median_ns);
	printf("%-44s %10.0f ns per skipped iteration\n",
	        "senderkey chain walk, derived:", (skip.median_ns - open.median_ns) / 99);
	sotto_wipe(sign_sk, sizeof(sign_sk));
	return 0;
}
