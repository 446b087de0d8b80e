/* Signal's 60-digit safety number; see safety.h. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "hash.h"
#include "safety.h"
#include "util.h"

#define SAFETY_HALF       (SAFETY_DIGITS / 2)
#define SAFETY_CHUNKS     6
#define SAFETY_CHUNKBYTES 5

/* Signal's NumericFingerprintGenerator version: two zero bytes before the first hash. */
static const uint8_t safety_version[2] = {0x00, 0x00};

/* One side's 30 digits: iterated SHA-512 over key and id, read as six 5-byte chunks. */
static void
safety_half(char out[SAFETY_HALF + 1], const uint8_t *key, size_t keylen, const char *id,
        unsigned iterations)
{
	crypto_hash_sha512_state st;
	uint8_t h[HASH_SHA512_BYTES];
	uint64_t v;
	unsigned i, j;

	crypto_hash_sha512_init(&st);
	crypto_hash_sha512_update(&st, safety_version, sizeof(safety_version));
	crypto_hash_sha512_update(&st, key, keylen);
	crypto_hash_sha512_update(&st, (const unsigned char *)id, strlen(id));
	crypto_hash_sha512_update(&st, key, keylen);
	crypto_hash_sha512_final(&st, h);
	for (i = 1; i < iterations; i++) {
		crypto_hash_sha512_init(&st);
		crypto_hash_sha512_update(&st, h, sizeof(h));
		crypto_hash_sha512_update(&st, key, keylen);
		crypto_hash_sha512_final(&st, h);
	}
	for (i = 0; i < SAFETY_CHUNKS; i++) {
		v = 0;
		for (j = 0; j < SAFETY_CHUNKBYTES; j++)
			v = (v << 8) | h[i * SAFETY_CHUNKBYTES + j];
		snprintf(out + i * 5, SAFETY_HALF + 1 - i * 5, "%05u", (unsigned)(v % 100000));
	}
	sotto_wipe(&st, sizeof(st));
	sotto_wipe(h, sizeof(h));
}

int
safety_number(char out[SAFETY_DIGITS + 1], const uint8_t *key_a, size_t key_a_len, const char *id_a,
        const uint8_t *key_b, size_t key_b_len, const char *id_b, unsigned iterations)
{
	char a[SAFETY_HALF + 1], b[SAFETY_HALF + 1];
	const char *first, *second;

	if (out == NULL)
		return SOTTO_ERR_INVALID;
	out[0] = '\0';
	if (key_a == NULL || key_a_len == 0 || id_a == NULL || key_b == NULL || key_b_len == 0 ||
	        id_b == NULL)
		return SOTTO_ERR_INVALID;
	if (iterations == 0)
		return SOTTO_ERR_RANGE;
	safety_half(a, key_a, key_a_len, id_a, iterations);
	safety_half(b, key_b, key_b_len, id_b, iterations);
	/* Smaller half first, so that both users compute the same number. */
	if (strcmp(a, b) <= 0) {
		first = a;
		second = b;
	} else {
		first = b;
		second = a;
	}
	memcpy(out, first, SAFETY_HALF);
	memcpy(out + SAFETY_HALF, second, SAFETY_HALF);
	out[SAFETY_DIGITS] = '\0';
	return 0;
}

/* 1 if s is exactly SAFETY_DIGITS ASCII digits followed by a NUL. */
static int
safety_valid_digits(const char *s)
{
	size_t i;

	if (s == NULL)
		return 0;
	for (i = 0; i < SAFETY_DIGITS; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return s[SAFETY_DIGITS] == '\0';
}

void
safety_format(char out[SAFETY_GROUPED_LEN], const char digits[SAFETY_DIGITS + 1])
{
	size_t g, n = 0;

	out[0] = '\0';
	if (!safety_valid_digits(digits))
		return;
	for (g = 0; g < SAFETY_DIGITS / 5; g++) {
		if (g > 0)
			out[n++] = ' ';
		memcpy(out + n, digits + g * 5, 5);
		n += 5;
	}
	out[n] = '\0';
}

int
safety_matches(const char *typed, const char digits[SAFETY_DIGITS + 1])
{
	char got[SAFETY_DIGITS];
	size_t n = 0;
	const char *p;

	if (typed == NULL || !safety_valid_digits(digits))
		return 0;
	for (p = typed; *p != '\0'; p++) {
		if (*p >= '0' && *p <= '9') {
			if (n == sizeof(got))
				return 0; /* too many digits */
			got[n++] = *p;
		} else if (*p != ' ' && *p != '-' && *p != '\n' && *p != '\r' && *p != '\t')
			return 0;
	}
	return n == sizeof(got) && sotto_memeq(got, digits, sizeof(got));
}
