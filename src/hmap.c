/* Chained hash map with keyed SipHash buckets; see hmap.h. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "hmap.h"

struct hmap_entry {
	struct hmap_entry *next;
	uint64_t hash;
	void *value;
	size_t keylen;
	uint8_t key[];
};

struct hmap {
	struct hmap_entry **buckets;
	size_t nbuckets; /* a power of two */
	size_t count;
	uint8_t sipkey[crypto_shorthash_KEYBYTES];
};

static uint64_t
hmap_hash(const struct hmap *m, const void *key, size_t keylen)
{
	uint8_t out[crypto_shorthash_BYTES];
	uint64_t h;

	crypto_shorthash(out, key, keylen, m->sipkey);
	memcpy(&h, out, sizeof(h));
	return h;
}

int
hmap_new(struct hmap **out)
{
	struct hmap *m;

	*out = NULL;
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return SOTTO_ERR_NOMEM;
	m->nbuckets = 16;
	if ((m->buckets = calloc(m->nbuckets, sizeof(*m->buckets))) == NULL) {
		free(m);
		return SOTTO_ERR_NOMEM;
	}
	crypto_shorthash_keygen(m->sipkey);
	*out = m;
	return 0;
}

void
hmap_free(struct hmap *m)
{
	struct hmap_entry *e, *next;
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < m->nbuckets; i++) {
		for (e = m->buckets[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(m->buckets);
	free(m);
}

size_t
hmap_count(const struct hmap *m)
{
	return m->count;
}

static struct hmap_entry **
hmap_find(const struct hmap *m, const void *key, size_t keylen, uint64_t h)
{
	struct hmap_entry **pp = &m->buckets[h & (m->nbuckets - 1)];

	for (; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->hash == h && (*pp)->keylen == keylen &&
		        (keylen == 0 || memcmp((*pp)->key, key, keylen) == 0))
			return pp;
	}
	return pp;
}

void *
hmap_get(const struct hmap *m, const void *key, size_t keylen)
{
	struct hmap_entry **pp = hmap_find(m, key, keylen, hmap_hash(m, key, keylen));

	return *pp != NULL ? (*pp)->value : NULL;
}

/* Double the table when the load factor passes 1; a failed grow just keeps chains longer. */
static void
hmap_grow(struct hmap *m)
{
	struct hmap_entry **nb, *e, *next;
	size_t i, n = m->nbuckets * 2;

	if ((nb = calloc(n, sizeof(*nb))) == NULL)
		return;
	for (i = 0; i < m->nbuckets; i++) {
		for (e = m->buckets[i]; e != NULL; e = next) {
			next = e->next;
			e->next = nb[e->hash & (n - 1)];
			nb[e->hash & (n - 1)] = e;
		}
	}
	free(m->buckets);
	m->buckets = nb;
	m->nbuckets = n;
}

int
hmap_put(struct hmap *m, const void *key, size_t keylen, void *value, void **old)
{
	uint64_t h = hmap_hash(m, key, keylen);
	struct hmap_entry **pp = hmap_find(m, key, keylen, h), *e;

	if (old != NULL)
		*old = NULL;
	if (*pp != NULL) {
		if (old != NULL)
			*old = (*pp)->value;
		(*pp)->value = value;
		return 0;
	}
	if ((e = malloc(sizeof(*e) + keylen)) == NULL)
		return SOTTO_ERR_NOMEM;
	e->next = NULL;
	e->hash = h;
	e->value = value;
	e->keylen = keylen;
	if (keylen > 0)
		memcpy(e->key, key, keylen);
	*pp = e;
	m->count++;
	if (m->count > m->nbuckets)
		hmap_grow(m);
	return 0;
}

void *
hmap_del(struct hmap *m, const void *key, size_t keylen)
{
	struct hmap_entry **pp = hmap_find(m, key, keylen, hmap_hash(m, key, keylen)), *e;
	void *value;

	if ((e = *pp) == NULL)
		return NULL;
	*pp = e->next;
	value = e->value;
	free(e);
	m->count--;
	return value;
}

int
hmap_foreach(struct hmap *m, int (*fn)(const void *key, size_t keylen, void *value, void *arg),
        void *arg)
{
	struct hmap_entry *e, *next;
	size_t i;
	int r;

	for (i = 0; i < m->nbuckets; i++) {
		for (e = m->buckets[i]; e != NULL; e = next) {
			next = e->next;
			if ((r = fn(e->key, e->keylen, e->value, arg)) != 0)
				return r;
		}
	}
	return 0;
}
