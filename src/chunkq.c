/* A ring of buffers that chunks pass through, stage by stage; see chunkq.h. */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>

#include "crypto/util.h"
#include "src/chunkq.h"

/*
 * done[s] counts the slots stage s has passed on since the start.  Slot j
 * (mod n) is stage s's to work on once done[s - 1] > j, and stage 0 may
 * reuse it once the last stage has passed it on (done[0] - done[last] < n).
 * Every stage sees the slots in the same order, so the counters alone say
 * who owns what; they are read and written under mu, which also orders each
 * stage's work on a slot before the next stage's.
 *
 * A stage that has to wait sleeps on its own condition variable until a
 * quarter of the ring is ready for it (or the stage before finishes, or the
 * queue closes), so a stage that keeps up with the one before is woken
 * once every few chunks rather than for each: waking a thread costs a
 * system call on each side, which per 64 KiB chunk is most of what handing
 * the chunk over costs.
 */
struct chunkq {
	pthread_mutex_t mu;
	pthread_cond_t cv[CHUNKQ_STAGES_MAX];
	struct chunkq_slot *slots;
	uint8_t *mem;
	size_t n, cap;
	size_t batch; /* slots ready before a waiting stage is woken */
	unsigned nstages;
	uint64_t done[CHUNKQ_STAGES_MAX];
	int waiting[CHUNKQ_STAGES_MAX];
	int finished[CHUNKQ_STAGES_MAX];
	int closed;
};

/* Slots ready for stage s (under mu). */
static size_t
chunkq_ready(const struct chunkq *q, unsigned s)
{
	if (s == 0)
		return q->n - (size_t)(q->done[0] - q->done[q->nstages - 1]);
	return (size_t)(q->done[s - 1] - q->done[s]);
}

int
chunkq_new(struct chunkq **out, size_t nslots, size_t cap, unsigned nstages)
{
	struct chunkq *q = NULL;
	int r = SOTTO_ERR_NOMEM, mu = 0;
	unsigned cv = 0;
	size_t i;

	*out = NULL;
	if (nslots == 0 || cap == 0 || nslots > SIZE_MAX / cap || nstages == 0 ||
	        nstages > CHUNKQ_STAGES_MAX)
		return SOTTO_ERR_INVALID;
	if ((q = calloc(1, sizeof(*q))) == NULL ||
	        (q->slots = calloc(nslots, sizeof(*q->slots))) == NULL ||
	        (q->mem = malloc(nslots * cap)) == NULL || pthread_mutex_init(&q->mu, NULL) != 0)
		goto out;
	mu = 1;
	for (cv = 0; cv < nstages; cv++) {
		if (pthread_cond_init(&q->cv[cv], NULL) != 0)
			goto out;
	}
	q->n = nslots;
	q->batch = nslots / 4 > 0 ? nslots / 4 : 1;
	q->cap = cap;
	q->nstages = nstages;
	for (i = 0; i < nslots; i++)
		q->slots[i].data = q->mem + i * cap;
	*out = q;
	q = NULL;
	r = 0;
out:
	if (q != NULL) {
		while (cv > 0)
			pthread_cond_destroy(&q->cv[--cv]);
		if (mu)
			pthread_mutex_destroy(&q->mu);
		free(q->mem);
		free(q->slots);
		free(q);
	}
	return r;
}

void
chunkq_free(struct chunkq *q)
{
	unsigned i;

	if (q == NULL)
		return;
	for (i = 0; i < q->nstages; i++)
		pthread_cond_destroy(&q->cv[i]);
	pthread_mutex_destroy(&q->mu);
	sotto_wipe(q->mem, q->n * q->cap);
	free(q->mem);
	free(q->slots);
	free(q);
}

struct chunkq_slot *
chunkq_get(struct chunkq *q, unsigned stage)
{
	struct chunkq_slot *s = NULL;

	if (stage >= q->nstages)
		return NULL;
	pthread_mutex_lock(&q->mu);
	for (;;) {
		if (q->closed)
			break;
		if (chunkq_ready(q, stage) > 0) {
			s = &q->slots[q->done[stage] % q->n];
			break;
		}
		if (stage > 0 && q->finished[stage - 1])
			break;
		q->waiting[stage] = 1;
		pthread_cond_wait(&q->cv[stage], &q->mu);
		q->waiting[stage] = 0;
	}
	pthread_mutex_unlock(&q->mu);
	if (s != NULL && stage == 0) {
		s->len = s->len2 = 0;
		s->index = 0;
		s->final = 0;
	}
	return s;
}

void
chunkq_put(struct chunkq *q, unsigned stage)
{
	unsigned next;

	if (stage >= q->nstages)
		return;
	next = stage + 1 < q->nstages ? stage + 1 : 0;
	pthread_mutex_lock(&q->mu);
	q->done[stage]++;
	if (q->waiting[next] && chunkq_ready(q, next) >= q->batch)
		pthread_cond_signal(&q->cv[next]);
	pthread_mutex_unlock(&q->mu);
}

/* Wake every stage (under mu). */
static void
chunkq_wake_all(struct chunkq *q)
{
	unsigned i;

	for (i = 0; i < q->nstages; i++)
		pthread_cond_signal(&q->cv[i]);
}

void
chunkq_finish(struct chunkq *q, unsigned stage)
{
	if (stage >= q->nstages)
		return;
	pthread_mutex_lock(&q->mu);
	q->finished[stage] = 1;
	chunkq_wake_all(q);
	pthread_mutex_unlock(&q->mu);
}

void
chunkq_close(struct chunkq *q)
{
	pthread_mutex_lock(&q->mu);
	q->closed = 1;
	chunkq_wake_all(q);
	pthread_mutex_unlock(&q->mu);
}
