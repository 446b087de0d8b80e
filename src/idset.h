/*
 * Compact sets of envelope fingerprints for sottod's duplicate checks.  A
 * fingerprint is IDSET_FP_BYTES of keyed hash over (recipient, sender,
 * msg_id) that the caller computes (idset_fingerprint), so the sets hold no
 * names and peers cannot aim collisions at them.
 *
 * struct idring remembers the last `max` fingerprints added, exactly: the
 * envelopes acknowledged before they were ever written, which only memory
 * knows about.  It grows as it fills, so a quiet server holds little.
 *
 * struct idbloom is a blocked Bloom filter over the fingerprints of what the
 * store holds (queued envelopes and tombstones).  "No" is certain, "maybe"
 * sends the caller to the store; it never forgets, so the owner rebuilds it
 * from the store once it holds more keys than it was sized for.
 *
 * Each set is owned by its creator and freed with its _free function.  Not
 * thread-safe.
 */
#ifndef SOTTO_IDSET_H
#define SOTTO_IDSET_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/err.h"

#define IDSET_FP_BYTES  16
#define IDSET_KEY_BYTES 16

/* Fingerprint of (recipient, sender, msg_id) under key. */
void idset_fingerprint(uint8_t fp[IDSET_FP_BYTES], const uint8_t key[IDSET_KEY_BYTES],
        const char *recipient, const char *sender, const uint8_t *msg_id, size_t msg_id_len);

struct idring;

int idring_new(struct idring **out, size_t max) SOTTO_WUR;
void idring_free(struct idring *r);
/* Remember fp, forgetting the oldest once max are held; SOTTO_ERR_NOMEM leaves r as it was. */
int idring_add(struct idring *r, const uint8_t fp[IDSET_FP_BYTES]) SOTTO_WUR;
int idring_has(const struct idring *r, const uint8_t fp[IDSET_FP_BYTES]);
size_t idring_count(const struct idring *r);

struct idbloom;

/* A filter sized for capacity keys at about 1% false positives (at least 4096 keys). */
int idbloom_new(struct idbloom **out, size_t capacity) SOTTO_WUR;
void idbloom_free(struct idbloom *b);
void idbloom_add(struct idbloom *b, const uint8_t fp[IDSET_FP_BYTES]);
/* 0: fp was never added.  1: it may have been. */
int idbloom_maybe(const struct idbloom *b, const uint8_t fp[IDSET_FP_BYTES]);
/* Start loading what idbloom_maybe(b, fp) will read; a hint, nothing else. */
void idbloom_prefetch(const struct idbloom *b, const uint8_t fp[IDSET_FP_BYTES]);
/* Keys added, and keys the filter was sized for. */
size_t idbloom_count(const struct idbloom *b);
size_t idbloom_capacity(const struct idbloom *b);

#endif
