/*
 * A ring of equal-sized buffers that chunks pass through in order, from one
 * thread to the next: a file transfer reads and encrypts on one thread,
 * sends on another and hashes on a third, or receives, decrypts and writes
 * (src/client-file.c), so that each step gets a core.  The queue owns
 * nslots buffers of cap bytes each, so what is in flight between the steps
 * never exceeds nslots * cap.
 *
 * A queue has nstages stages (1 to CHUNKQ_STAGES_MAX), each run by one
 * thread.  Stage 0 takes a free slot with chunkq_get(), fills it outside the
 * lock and passes it on with chunkq_put(); each later stage gets the slots
 * the stage before passed on, in the same order, and passes them on in turn;
 * a slot the last stage puts is free again.  A stage that will pass on
 * nothing more calls chunkq_finish(): the next stage still gets what was
 * passed on, then NULL.  chunkq_close(), from any stage, stops them all:
 * every chunkq_get() returns NULL from then on.  Which stage stopped, and
 * why, is for the caller to record.
 *
 * chunkq_get, chunkq_put, chunkq_finish and chunkq_close are thread-safe in
 * exactly that pattern; chunkq_new() and chunkq_free() are not (call them
 * before the other threads start and after they are joined).  The buffers
 * are wiped when freed.
 */
#ifndef SOTTO_CHUNKQ_H
#define SOTTO_CHUNKQ_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/err.h"

#define CHUNKQ_STAGES_MAX 4

struct chunkq_slot {
	uint8_t *data;  /* cap bytes, owned by the queue */
	size_t len;     /* the stages' own use; 0 when stage 0 gets the slot */
	size_t len2;    /* likewise */
	uint64_t index; /* likewise */
	int final;      /* likewise */
};

struct chunkq;

/* A queue of nslots (at least 1) buffers of cap bytes each, for nstages stages. */
int chunkq_new(struct chunkq **out, size_t nslots, size_t cap, unsigned nstages) SOTTO_WUR;
/* Wipe and free; NULL is ignored.  No stage may be using the queue. */
void chunkq_free(struct chunkq *q);

/*
 * Stage stage's next slot, waiting for it: for stage 0 a free one (its
 * fields cleared), for the others the next one the stage before passed on.
 * NULL once the stage before has finished and passed on nothing more (never
 * for stage 0), or once the queue is closed.
 */
struct chunkq_slot *chunkq_get(struct chunkq *q, unsigned stage);
/* Pass the slot from chunkq_get() on to the next stage (after the last: free it). */
void chunkq_put(struct chunkq *q, unsigned stage);
/* Stage stage will pass on nothing more. */
void chunkq_finish(struct chunkq *q, unsigned stage);
/* Stop every stage now: every chunkq_get() returns NULL from then on. */
void chunkq_close(struct chunkq *q);

#endif
