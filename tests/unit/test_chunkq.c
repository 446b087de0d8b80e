/*
 * Tests for src/chunkq: chunks pass through every stage in order and intact
 * across real threads, finish lets the later stages drain, close stops
 * everyone, and the ring never hands one slot to two stages at once.
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "src/chunkq.h"

#define SLOT   64
#define CHUNKS 5000

/* cppcheck-suppress unknownMacro */
TestSuite(chunkq);

struct stage {
	struct chunkq *q;
	unsigned stage, last;
	uint64_t seen; /* slots handled */
	uint64_t bad;  /* slots out of order or not as the stage before left them */
	uint64_t stop; /* stage 0: close the queue after this many (0: never) */
	int finish;    /* call chunkq_finish when done */
};

/* Stage 0 writes index k into a slot; each later stage checks and stamps it. */
static void *
stage_run(void *arg)
{
	struct stage *st = arg;
	struct chunkq_slot *s;
	uint64_t k;

	for (k = 0;; k++) {
		if (st->stage == 0 && k == CHUNKS)
			break;
		if (st->stage == 0 && st->stop != 0 && k == st->stop) {
			chunkq_close(st->q);
			break;
		}
		if ((s = chunkq_get(st->q, st->stage)) == NULL)
			break;
		if (st->stage == 0) {
			if (s->len != 0 || s->len2 != 0 || s->final)
				st->bad++;
			s->index = k;
			memset(s->data, (int)(k & 0xff), SLOT);
			s->len = SLOT;
		} else if (s->index != k || s->len2 != st->stage - 1 ||
		           s->data[SLOT - 1] != (uint8_t)(k & 0xff)) {
			st->bad++;
		}
		s->len2 = st->stage;
		st->seen++;
		chunkq_put(st->q, st->stage);
	}
	if (st->finish)
		chunkq_finish(st->q, st->stage);
	return NULL;
}

static void
run_pipeline(unsigned nstages, size_t nslots)
{
	struct stage st[CHUNKQ_STAGES_MAX];
	pthread_t th[CHUNKQ_STAGES_MAX];
	struct chunkq *q = NULL;
	unsigned i;

	cr_assert_eq(chunkq_new(&q, nslots, SLOT, nstages), 0);
	memset(st, 0, sizeof(st));
	for (i = 0; i < nstages; i++) {
		st[i].q = q;
		st[i].stage = i;
		st[i].finish = 1;
		cr_assert_eq(pthread_create(&th[i], NULL, stage_run, &st[i]), 0);
	}
	for (i = 0; i < nstages; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < nstages; i++) {
		cr_assert_eq(st[i].seen, CHUNKS, "stage %u of %u saw %llu chunks", i, nstages,
		        (unsigned long long)st[i].seen);
		cr_assert_eq(st[i].bad, 0, "stage %u of %u: %llu chunks out of order", i, nstages,
		        (unsigned long long)st[i].bad);
	}
	chunkq_free(q);
}

Test(chunkq, one_stage)
{
	run_pipeline(1, 4);
}

Test(chunkq, two_stages)
{
	run_pipeline(2, 16);
}

Test(chunkq, three_stages_small_ring)
{
	run_pipeline(3, 1);
}

Test(chunkq, three_stages)
{
	run_pipeline(3, 16);
}

Test(chunkq, four_stages_odd_ring)
{
	run_pipeline(4, 7);
}

/* The stage before finished: the next one gets what was passed on, then NULL. */
Test(chunkq, finish_drains)
{
	struct chunkq *q = NULL;
	struct chunkq_slot *s;
	int i;

	cr_assert_eq(chunkq_new(&q, 4, SLOT, 2), 0);
	for (i = 0; i < 3; i++) {
		cr_assert_not_null(s = chunkq_get(q, 0));
		s->index = (uint64_t)i;
		chunkq_put(q, 0);
	}
	chunkq_finish(q, 0);
	for (i = 0; i < 3; i++) {
		cr_assert_not_null(s = chunkq_get(q, 1));
		cr_assert_eq(s->index, (uint64_t)i);
		chunkq_put(q, 1);
	}
	cr_assert_null(chunkq_get(q, 1));
	cr_assert_null(chunkq_get(q, 2), "no such stage");
	chunkq_free(q);
}

/* A slot the last stage has not passed on is not handed out again. */
Test(chunkq, ring_is_bounded)
{
	struct chunkq *q = NULL;
	struct chunkq_slot *a, *b;

	cr_assert_eq(chunkq_new(&q, 2, SLOT, 2), 0);
	cr_assert_not_null(a = chunkq_get(q, 0));
	chunkq_put(q, 0);
	cr_assert_not_null(b = chunkq_get(q, 0));
	cr_assert_neq(a, b);
	chunkq_put(q, 0);
	/* Both slots are with stage 1 now; stage 0 would wait: close, and it gets NULL. */
	chunkq_close(q);
	cr_assert_null(chunkq_get(q, 0));
	cr_assert_null(chunkq_get(q, 1), "closed: nothing more for anyone");
	chunkq_free(q);
}

/* Closing from stage 0 midway stops the later stages, waiting or not. */
Test(chunkq, close_stops_everyone)
{
	struct stage st[3];
	pthread_t th[3];
	struct chunkq *q = NULL;
	unsigned i;

	cr_assert_eq(chunkq_new(&q, 8, SLOT, 3), 0);
	memset(st, 0, sizeof(st));
	st[0].stop = 1000;
	for (i = 0; i < 3; i++) {
		st[i].q = q;
		st[i].stage = i;
		cr_assert_eq(pthread_create(&th[i], NULL, stage_run, &st[i]), 0);
	}
	for (i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	cr_assert_leq(st[0].seen, 1000);
	cr_assert_leq(st[1].seen, st[0].seen);
	cr_assert_leq(st[2].seen, st[1].seen);
	for (i = 0; i < 3; i++)
		cr_assert_eq(st[i].bad, 0);
	chunkq_free(q);
}

Test(chunkq, refuses_bad_sizes)
{
	struct chunkq *q = NULL;

	cr_assert_eq(chunkq_new(&q, 0, SLOT, 1), SOTTO_ERR_INVALID);
	cr_assert_eq(chunkq_new(&q, 1, 0, 1), SOTTO_ERR_INVALID);
	cr_assert_eq(chunkq_new(&q, 1, SLOT, 0), SOTTO_ERR_INVALID);
	cr_assert_eq(chunkq_new(&q, 1, SLOT, CHUNKQ_STAGES_MAX + 1), SOTTO_ERR_INVALID);
	cr_assert_eq(chunkq_new(&q, SIZE_MAX / 2, 4, 1), SOTTO_ERR_INVALID);
	cr_assert_null(q);
}
