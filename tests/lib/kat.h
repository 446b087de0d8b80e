/*
 * Known-answer files for tests: "# comment", blank and "name = value" lines
 * under $SOTTO_SRCDIR (tests/data/...), and a deterministic byte stream for
 * generating them.  Failures are criterion assertions.  Not thread-safe.
 */
#ifndef SOTTO_TESTS_KAT_H
#define SOTTO_TESTS_KAT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define KAT_LINE_MAX 65536

struct kat {
	char *file; /* the rel given to kat_load, for messages */
	size_t n;
	char **names;
	char **values;
};

/* $SOTTO_SRCDIR/rel (or ./rel), in a new string. */
char *kat_path(const char *rel);
/* Load rel; free with kat_free. */
void kat_load(struct kat *k, const char *rel);
void kat_free(struct kat *k);
/* The value of name; asserts that it exists. */
const char *kat_get(const struct kat *k, const char *name);
/* The hex value of name decoded into a malloc'd buffer. */
uint8_t *kat_hex(const struct kat *k, const char *name, size_t *len);
/* The hex value of name, which must be exactly len bytes. */
void kat_hex_fixed(const struct kat *k, const char *name, uint8_t *out, size_t len);
/* Assert that got (len bytes) equals the hex value of name. */
void kat_check(const struct kat *k, const char *name, const uint8_t *got, size_t len);
/* Write "name = hex" to f (when regenerating a file). */
void kat_put_hex(FILE *f, const char *name, const uint8_t *v, size_t len);
/* Message i of a recorded conversation: "msg.I.pt" (text) and "msg.I.wire" (wire bytes). */
void kat_put_msg(FILE *f, size_t i, const char *text, const uint8_t *wire, size_t len);
void kat_check_msg(
        const struct kat *k, size_t i, const char *text, const uint8_t *wire, size_t len);
/* Deterministic bytes: HKDF-SHA256(no salt, seed, "sotto-kat-v1/" || label). */
void kat_draw(const char *seed_hex, uint8_t *out, size_t len, const char *label);

/* A deterministic stand-in for the CSPRNG: draw number ctr of stream label under seed. */
struct kat_rng {
	const char *seed; /* hex, as for kat_draw */
	const char *label;
	unsigned ctr;
};
/* An rng callback (arg is a struct kat_rng): kat_draw(seed, out, len, "label/ctr"), then ctr++. */
void kat_rng_fill(void *arg, uint8_t *out, size_t len);

#endif
