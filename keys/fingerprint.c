/* Fingerprints and the drunken-bishop randomart; see fingerprint.h. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "crypto/util.h"

#include "fingerprint.h"

/*
 * How often the bishop visited a square, drawn with one of these; the last
 * two mark where it started and ended.  OpenSSH uses the same characters, so
 * a picture here matches ssh-keygen's for the same digest.
 */
static const char randomart_symbols[] = " .o+=*BOX@%&#/^SE";
#define RANDOMART_NSYM  (sizeof(randomart_symbols) - 1)
#define RANDOMART_START (RANDOMART_NSYM - 2)
#define RANDOMART_END   (RANDOMART_NSYM - 1)
#define RANDOMART_MAXV  (RANDOMART_NSYM - 3)

void
fingerprint_format(char out[FINGERPRINT_LEN], const uint8_t digest[HASH_SHA256_BYTES])
{
	/* libsodium fills the whole buffer it is given, which must fit the padded form. */
	char b64[SOTTO_B64_LEN(HASH_SHA256_BYTES)];
	size_t n = sizeof(FINGERPRINT_PREFIX) - 1;

	sotto_b64(b64, digest, HASH_SHA256_BYTES, 0);
	memcpy(out, FINGERPRINT_PREFIX, n);
	memcpy(out + n, b64, FINGERPRINT_LEN - n - 1);
	out[FINGERPRINT_LEN - 1] = '\0';
}

void
fingerprint_sha256(char out[FINGERPRINT_LEN], const void *data, size_t len)
{
	uint8_t digest[HASH_SHA256_BYTES];

	hash_sha256(digest, data, len);
	fingerprint_format(out, digest);
}

/* One frame line: '+', label centred in dashes (left-biased), '+', at p; returns the end. */
static char *
randomart_border(char *p, const char *label)
{
	size_t llen = strlen(label), left, i;

	if (llen > RANDOMART_WIDTH)
		llen = RANDOMART_WIDTH;
	left = (RANDOMART_WIDTH - llen) / 2;
	*p++ = '+';
	for (i = 0; i < left; i++)
		*p++ = '-';
	memcpy(p, label, llen);
	p += llen;
	for (i = left + llen; i < RANDOMART_WIDTH; i++)
		*p++ = '-';
	*p++ = '+';
	return p;
}

void
fingerprint_randomart(char out[RANDOMART_LEN], const uint8_t *digest, size_t len, const char *type,
        int bits, const char *hashname)
{
	unsigned char visits[RANDOMART_HEIGHT][RANDOMART_WIDTH];
	char title[RANDOMART_WIDTH + 8], footer[RANDOMART_WIDTH + 8];
	int x = RANDOMART_WIDTH / 2, y = RANDOMART_HEIGHT / 2, row, col, step;
	size_t i;
	unsigned v;
	char *p = out;

	memset(visits, 0, sizeof(visits));
	/* Each byte is four moves, low bits first: bit 0 picks right/left, bit 1 down/up. */
	for (i = 0; i < len; i++) {
		v = digest[i];
		for (step = 0; step < 4; step++, v >>= 2) {
			x += (v & 1) ? 1 : -1;
			y += (v & 2) ? 1 : -1;
			if (x < 0)
				x = 0;
			if (x > RANDOMART_WIDTH - 1)
				x = RANDOMART_WIDTH - 1;
			if (y < 0)
				y = 0;
			if (y > RANDOMART_HEIGHT - 1)
				y = RANDOMART_HEIGHT - 1;
			if (visits[y][x] < RANDOMART_MAXV)
				visits[y][x]++;
		}
	}
	visits[RANDOMART_HEIGHT / 2][RANDOMART_WIDTH / 2] = RANDOMART_START;
	visits[y][x] = RANDOMART_END;

	if (snprintf(title, sizeof(title), "[%s %d]", type, bits) > RANDOMART_WIDTH)
		snprintf(title, sizeof(title), "[%.*s]", RANDOMART_WIDTH - 2, type);
	snprintf(footer, sizeof(footer), "[%.*s]", RANDOMART_WIDTH - 2, hashname);

	p = randomart_border(p, title);
	*p++ = '\n';
	for (row = 0; row < RANDOMART_HEIGHT; row++) {
		*p++ = '|';
		for (col = 0; col < RANDOMART_WIDTH; col++)
			*p++ = randomart_symbols[visits[row][col]];
		*p++ = '|';
		*p++ = '\n';
	}
	p = randomart_border(p, footer);
	*p = '\0';
}
