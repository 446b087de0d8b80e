/* Fingerprint sets for duplicate checks; see idset.h. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "src/idset.h"

#define IDRING_MIN_CAP  1024
#define IDBLOOM_MIN     4096 /* keys */
#define IDBLOOM_BITS    10   /* per key: about 1% false positives with 7 probes */
#define IDBLOOM_PROBES  7    /* 9-bit positions from one 64-bit word */
#define IDBLOOM_BLOCK   512  /* bits: one cache line */
#define IDBLOOM_WORDS   (IDBLOOM_BLOCK / 64)
#define IDSET_INPUT_MAX 128

_Static_assert(crypto_shorthash_siphashx24_BYTES == IDSET_FP_BYTES, "siphashx24 output");
_Static_assert(crypto_shorthash_siphashx24_KEYBYTES == IDSET_KEY_BYTES, "siphashx24 key");

void
idset_fingerprint(uint8_t fp[IDSET_FP_BYTES], const uint8_t key[IDSET_KEY_BYTES],
        const char *recipient, const char *sender, const uint8_t *msg_id, size_t msg_id_len)
{
	uint8_t in[IDSET_INPUT_MAX];
	size_t a = strlen(recipient) + 1, b = strlen(sender) + 1;

	/* Names are at most 32 bytes and ids 16: longer input is the caller's bug. */
	if (a + b + msg_id_len > sizeof(in)) {
		memset(fp, 0, IDSET_FP_BYTES);
		return;
	}
	memcpy(in, recipient, a);
	memcpy(in + a, sender, b);
	memcpy(in + a + b, msg_id, msg_id_len);
	crypto_shorthash_siphashx24(fp, in, a + b + msg_id_len, key);
}

/* The fingerprints are uniform: their first word is as good a hash as any. */
static uint64_t
idset_word(const uint8_t *fp, size_t i)
{
	uint64_t w;

	memcpy(&w, fp + 8 * i, sizeof(w));
	return w;
}

/* ---- idring: the last max fingerprints, exactly --------------------------------------- */

/*
 * A slot holds the ring index + 1 (0: empty) in its top half and the low 32
 * bits of the fingerprint's first word in the bottom half: the home slot and
 * a tag, so that probing and deleting rarely touch the ring itself.
 */
struct idring {
	uint8_t (*fp)[IDSET_FP_BYTES]; /* in insertion order, oldest at next once full */
	uint64_t *slot;                /* linear probing */
	size_t max, cap, count, next;
	size_t mask; /* slot table size - 1 (< 2^32); the table is at least twice cap */
};

static uint64_t
idring_slot(const uint8_t *fp, size_t idx)
{
	return (uint64_t)(idx + 1) << 32 | (uint32_t)idset_word(fp, 0);
}

static size_t
idring_home(const struct idring *r, uint64_t slot)
{
	return (size_t)(uint32_t)slot & r->mask;
}

static size_t
idring_index(uint64_t slot)
{
	return (size_t)(slot >> 32) - 1;
}

int
idring_new(struct idring **out, size_t max)
{
	struct idring *r;

	*out = NULL;
	if (max == 0 || max > UINT32_MAX / 4)
		return SOTTO_ERR_INVALID;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return SOTTO_ERR_NOMEM;
	r->max = max;
	*out = r;
	return 0;
}

void
idring_free(struct idring *r)
{
	if (r == NULL)
		return;
	free(r->fp);
	free(r->slot);
	free(r);
}

size_t
idring_count(const struct idring *r)
{
	return r->count;
}

static void
idring_insert(struct idring *r, size_t idx)
{
	uint64_t v = idring_slot(r->fp[idx], idx);
	size_t i = idring_home(r, v);

	while (r->slot[i] != 0)
		i = (i + 1) & r->mask;
	r->slot[i] = v;
}

/* Remove ring entry idx from the table, shifting its probe chain back over the hole. */
static void
idring_remove(struct idring *r, size_t idx)
{
	uint64_t v = idring_slot(r->fp[idx], idx);
	size_t i = idring_home(r, v), j, k;

	while (r->slot[i] != v) {
		if (r->slot[i] == 0)
			return;
		i = (i + 1) & r->mask;
	}
	for (j = i;;) {
		r->slot[i] = 0;
		for (;;) {
			j = (j + 1) & r->mask;
			if (r->slot[j] == 0)
				return;
			k = idring_home(r, r->slot[j]);
			/* Stays if its home k lies cyclically in (i, j]. */
			if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
				continue;
			r->slot[i] = r->slot[j];
			i = j;
			break;
		}
	}
}

/* Room for more before the ring is full: double the ring and rebuild the table. */
static int
idring_grow(struct idring *r)
{
	size_t cap = r->cap == 0 ? IDRING_MIN_CAP : r->cap * 2, tsize = 1, i;
	uint8_t(*fp)[IDSET_FP_BYTES];
	uint64_t *slot;

	if (cap > r->max)
		cap = r->max;
	while (tsize < 2 * cap)
		tsize *= 2;
	if ((slot = calloc(tsize, sizeof(*slot))) == NULL)
		return SOTTO_ERR_NOMEM;
	if ((fp = realloc(r->fp, cap * sizeof(*fp))) == NULL) {
		free(slot);
		return SOTTO_ERR_NOMEM;
	}
	free(r->slot);
	r->fp = fp;
	r->slot = slot;
	r->cap = cap;
	r->mask = tsize - 1;
	for (i = 0; i < r->count; i++)
		idring_insert(r, i);
	return 0;
}

int
idring_add(struct idring *r, const uint8_t fp[IDSET_FP_BYTES])
{
	int e;

	if (r->count < r->max) {
		if (r->count == r->cap && (e = idring_grow(r)) != 0)
			return e;
		memcpy(r->fp[r->count], fp, IDSET_FP_BYTES);
		idring_insert(r, r->count);
		r->count++;
		r->next = r->count % r->max;
		return 0;
	}
	idring_remove(r, r->next);
	memcpy(r->fp[r->next], fp, IDSET_FP_BYTES);
	idring_insert(r, r->next);
	r->next = (r->next + 1) % r->max;
	return 0;
}

int
idring_has(const struct idring *r, const uint8_t fp[IDSET_FP_BYTES])
{
	uint32_t tag = (uint32_t)idset_word(fp, 0);
	size_t i;

	if (r->count == 0)
		return 0;
	for (i = tag & r->mask; r->slot[i] != 0; i = (i + 1) & r->mask) {
		if ((uint32_t)r->slot[i] == tag &&
		        memcmp(r->fp[idring_index(r->slot[i])], fp, IDSET_FP_BYTES) == 0)
			return 1;
	}
	return 0;
}

/* ---- idbloom: what the store holds, approximately ------------------------------------- */

struct idbloom {
	uint64_t *bits; /* nblocks blocks of IDBLOOM_WORDS words */
	size_t nblocks; /* a power of two */
	size_t count;
};

int
idbloom_new(struct idbloom **out, size_t capacity)
{
	struct idbloom *b;
	size_t nblocks = 1;

	*out = NULL;
	if (capacity < IDBLOOM_MIN)
		capacity = IDBLOOM_MIN;
	if (capacity > SIZE_MAX / 2 / IDBLOOM_BITS / 64)
		return SOTTO_ERR_RANGE;
	while (nblocks * IDBLOOM_BLOCK < capacity * IDBLOOM_BITS)
		nblocks *= 2;
	if ((b = calloc(1, sizeof(*b))) == NULL)
		return SOTTO_ERR_NOMEM;
	/* One block per cache line: a lookup touches one line. */
	if ((b->bits = aligned_alloc(64, nblocks * IDBLOOM_WORDS * sizeof(uint64_t))) == NULL) {
		free(b);
		return SOTTO_ERR_NOMEM;
	}
	memset(b->bits, 0, nblocks * IDBLOOM_WORDS * sizeof(uint64_t));
	b->nblocks = nblocks;
	*out = b;
	return 0;
}

void
idbloom_free(struct idbloom *b)
{
	if (b == NULL)
		return;
	free(b->bits);
	free(b);
}

size_t
idbloom_count(const struct idbloom *b)
{
	return b->count;
}

size_t
idbloom_capacity(const struct idbloom *b)
{
	return b->nblocks * IDBLOOM_BLOCK / IDBLOOM_BITS;
}

void
idbloom_add(struct idbloom *b, const uint8_t fp[IDSET_FP_BYTES])
{
	uint64_t *blk = b->bits + ((size_t)idset_word(fp, 0) & (b->nblocks - 1)) * IDBLOOM_WORDS;
	uint64_t h = idset_word(fp, 1);
	unsigned i, bit;

	for (i = 0; i < IDBLOOM_PROBES; i++, h >>= 9) {
		bit = (unsigned)(h & (IDBLOOM_BLOCK - 1));
		blk[bit / 64] |= (uint64_t)1 << (bit % 64);
	}
	b->count++;
}

int
idbloom_maybe(const struct idbloom *b, const uint8_t fp[IDSET_FP_BYTES])
{
	const uint64_t *blk =
	        b->bits + ((size_t)idset_word(fp, 0) & (b->nblocks - 1)) * IDBLOOM_WORDS;
	uint64_t h = idset_word(fp, 1);
	unsigned i, bit;

	for (i = 0; i < IDBLOOM_PROBES; i++, h >>= 9) {
		bit = (unsigned)(h & (IDBLOOM_BLOCK - 1));
		if (!(blk[bit / 64] & ((uint64_t)1 << (bit % 64))))
			return 0;
	}
	return 1;
}

void
idbloom_prefetch(const struct idbloom *b, const uint8_t fp[IDSET_FP_BYTES])
{
	__builtin_prefetch(
	        b->bits + ((size_t)idset_word(fp, 0) & (b->nblocks - 1)) * IDBLOOM_WORDS);
}
