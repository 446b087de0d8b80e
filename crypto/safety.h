/*
 * Signal's 60-digit safety number ("version 1" numeric fingerprint).  For each
 * side, h = SHA-512(0x0000 || key || id || key), then iterations-1 times
 * h = SHA-512(h || key); six 5-byte big-endian chunks of h mod 100000 give 30
 * digits.  The two 30-digit halves are ordered smaller first, so both users see
 * the same number.  Thread-safe.
 */
#ifndef SOTTO_SAFETY_H
#define SOTTO_SAFETY_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define SAFETY_ITERATIONS  5200
#define SAFETY_DIGITS      60
#define SAFETY_GROUPED_LEN 72 /* 12 groups of 5 digits, 11 spaces, NUL */

/* out receives 60 digits and a NUL.  keys are canonical encodings; ids UTF-8. */
int safety_number(char out[SAFETY_DIGITS + 1], const uint8_t *key_a, size_t key_a_len,
        const char *id_a, const uint8_t *key_b, size_t key_b_len, const char *id_b,
        unsigned iterations) SOTTO_WUR;

/* "12345 67890 ..." (12 groups of 5) from 60 digits. */
void safety_format(char out[SAFETY_GROUPED_LEN], const char digits[SAFETY_DIGITS + 1]);

/*
 * Compare a number a person typed (digits, with any spaces, dashes or
 * newlines between them) to digits: 1 if equal, 0 otherwise.
 */
int safety_matches(const char *typed, const char digits[SAFETY_DIGITS + 1]);

#endif
