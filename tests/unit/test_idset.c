/*
 * Tests for src/idset: fingerprints, the exact FIFO set (growth, eviction in
 * insertion order, deletion in the middle of probe chains) and the Bloom
 * filter (no false negatives, a false-positive rate near its design).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "crypto/util.h"
#include "src/idset.h"

static uint8_t key[IDSET_KEY_BYTES];

static void
setup(void)
{
	cr_assert_eq(sotto_crypto_init(), 0);
	sotto_random(key, sizeof(key));
}

TestSuite(idset, .init = setup);

/* The fingerprint of envelope number i from alice to bob. */
static void
fp_of(uint8_t fp[IDSET_FP_BYTES], uint32_t i)
{
	uint8_t id[16] = {0};

	memcpy(id, &i, sizeof(i));
	idset_fingerprint(fp, key, "bob", "alice", id, sizeof(id));
}

Test(idset, fingerprint_covers_every_field)
{
	uint8_t id[16] = {1, 2, 3}, a[IDSET_FP_BYTES], b[IDSET_FP_BYTES];
	uint8_t other_key[IDSET_KEY_BYTES];

	idset_fingerprint(a, key, "bob", "alice", id, sizeof(id));
	idset_fingerprint(b, key, "bob", "alice", id, sizeof(id));
	cr_assert_arr_eq(a, b, sizeof(a), "the same input gives the same fingerprint");
	idset_fingerprint(b, key, "alice", "bob", id, sizeof(id));
	cr_assert_arr_neq(a, b, sizeof(a), "recipient and sender are not interchangeable");
	/* "bo" + "balice" has the same bytes as "bob" + "alice" without the separator. */
	idset_fingerprint(b, key, "bo", "balice", id, sizeof(id));
	cr_assert_arr_neq(a, b, sizeof(a), "names are delimited");
	id[15] = 1;
	idset_fingerprint(b, key, "bob", "alice", id, sizeof(id));
	cr_assert_arr_neq(a, b, sizeof(a), "every byte of the id counts");
	id[15] = 0;
	memcpy(other_key, key, sizeof(key));
	other_key[0] ^= 1;
	idset_fingerprint(b, other_key, "bob", "alice", id, sizeof(id));
	cr_assert_arr_neq(a, b, sizeof(a), "the key changes the fingerprint");
}

Test(idset, ring_remembers_exactly_the_last_max)
{
	enum { MAX = 3000, N = 10000 };
	struct idring *r;
	uint8_t fp[IDSET_FP_BYTES];
	uint32_t i;

	cr_assert_eq(idring_new(&r, MAX), 0);
	fp_of(fp, 0);
	cr_assert_not(idring_has(r, fp), "empty");
	for (i = 0; i < N; i++) {
		fp_of(fp, i);
		cr_assert_eq(idring_add(r, fp), 0);
		cr_assert(idring_has(r, fp), "%u just added", i);
		cr_assert_eq(idring_count(r), i + 1 < MAX ? i + 1 : MAX);
		/* Spot checks while it grows and once it wraps. */
		if (i % 997 == 0 || i == MAX || i == MAX - 1) {
			uint32_t j;

			for (j = 0; j <= i; j++) {
				fp_of(fp, j);
				cr_assert_eq(idring_has(r, fp), j + MAX > i,
				        "after %u adds: %u is %s", i + 1, j,
				        j + MAX > i ? "forgotten" : "remembered");
			}
		}
	}
	for (i = 0; i < N; i++) {
		fp_of(fp, i);
		cr_assert_eq(idring_has(r, fp), i >= N - MAX, "%u", i);
	}
	idring_free(r);
}

Test(idset, ring_keeps_repeated_fingerprints_apart)
{
	struct idring *r;
	uint8_t a[IDSET_FP_BYTES], b[IDSET_FP_BYTES];

	/* a twice, then b: a's older copy goes first, and a is still held. */
	cr_assert_eq(idring_new(&r, 2), 0);
	fp_of(a, 1);
	fp_of(b, 2);
	cr_assert_eq(idring_add(r, a), 0);
	cr_assert_eq(idring_add(r, a), 0);
	cr_assert_eq(idring_add(r, b), 0);
	cr_assert(idring_has(r, a));
	cr_assert(idring_has(r, b));
	cr_assert_eq(idring_add(r, b), 0);
	cr_assert_not(idring_has(r, a), "both copies of a evicted");
	cr_assert(idring_has(r, b));
	idring_free(r);
	cr_assert_eq(idring_new(&r, 0), SOTTO_ERR_INVALID);
}

/* Fingerprints that all want the same table slot: deletions must keep the chain findable. */
Test(idset, ring_eviction_inside_probe_chains)
{
	enum { MAX = 64 };
	uint8_t fp[3 * MAX][IDSET_FP_BYTES];
	struct idring *r;
	size_t i, j;

	memset(fp, 0, sizeof(fp));
	for (i = 0; i < 3 * MAX; i++) {
		/* The first word (the table hash) collides in groups of four. */
		fp[i][0] = (uint8_t)(i / 4);
		fp[i][15] = (uint8_t)i;
		fp[i][14] = (uint8_t)(i >> 8);
	}
	cr_assert_eq(idring_new(&r, MAX), 0);
	for (i = 0; i < 3 * MAX; i++) {
		cr_assert_eq(idring_add(r, fp[i]), 0);
		for (j = 0; j <= i; j++)
			cr_assert_eq(idring_has(r, fp[j]), j + MAX > i, "after %zu: %zu", i, j);
	}
	idring_free(r);
}

Test(idset, bloom_has_no_false_negatives_and_few_false_positives)
{
	enum { CAP = 20000 };
	struct idbloom *b;
	uint8_t fp[IDSET_FP_BYTES];
	size_t fpos = 0;
	uint32_t i;

	cr_assert_eq(idbloom_new(&b, CAP), 0);
	cr_assert_geq(idbloom_capacity(b), CAP);
	for (i = 0; i < CAP; i++) {
		fp_of(fp, i);
		cr_assert_not(idbloom_maybe(b, fp) && i == 0, "empty filter");
		idbloom_add(b, fp);
	}
	cr_assert_eq(idbloom_count(b), CAP);
	for (i = 0; i < CAP; i++) {
		fp_of(fp, i);
		cr_assert(idbloom_maybe(b, fp), "%u was added", i);
	}
	for (i = CAP; i < 11 * CAP; i++) {
		fp_of(fp, i);
		fpos += (size_t)idbloom_maybe(b, fp);
	}
	/* Designed for about 1% at capacity (less below it); 3% would mean it is broken. */
	cr_assert_lt(fpos, 10 * CAP * 3 / 100, "%zu false positives in %d", fpos, 10 * CAP);
	idbloom_free(b);
}

Test(idset, bloom_minimum_size)
{
	struct idbloom *b;

	cr_assert_eq(idbloom_new(&b, 0), 0);
	cr_assert_geq(idbloom_capacity(b), 4096);
	cr_assert_eq(idbloom_count(b), 0);
	idbloom_free(b);
}
