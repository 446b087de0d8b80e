/*
 * A hash map from byte-string keys to pointers, for the server's in-memory
 * indexes (online users, per-address counters, envelopes awaiting commit).
 * Buckets are chosen with keyed SipHash (libsodium crypto_shorthash) under a
 * random per-map key, so clients cannot force collisions.  Keys are copied;
 * values are owned by the caller.  Not thread-safe.
 */
#ifndef SOTTO_HMAP_H
#define SOTTO_HMAP_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/err.h"

struct hmap;

int hmap_new(struct hmap **out) SOTTO_WUR;
/* Free the map (not the values). */
void hmap_free(struct hmap *m);
size_t hmap_count(const struct hmap *m);

/* The value for key, or NULL. */
void *hmap_get(const struct hmap *m, const void *key, size_t keylen);
/* Insert or replace; *old (if non-NULL) receives the replaced value or NULL. */
int hmap_put(struct hmap *m, const void *key, size_t keylen, void *value, void **old) SOTTO_WUR;
/* Remove key; returns its value or NULL. */
void *hmap_del(struct hmap *m, const void *key, size_t keylen);

/*
 * Call fn for every entry until it returns non-zero (which is returned).  fn
 * must not insert; it may delete the entry it was given.
 */
int hmap_foreach(struct hmap *m, int (*fn)(const void *key, size_t keylen, void *value, void *arg),
        void *arg);

#endif
