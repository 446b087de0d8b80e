/* Tests for crypto/safety: the published vector, symmetry, formatting and matching. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "crypto/hash.h"
#include "crypto/safety.h"
#include "crypto/util.h"
#include "tests/lib/vectors.h"

static void
setup(void)
{
	cr_assert_eq(sotto_crypto_init(), 0);
}

/* cppcheck-suppress unknownMacro */
TestSuite(safety, .init = setup);

/* ../shared/vectors/safety-number.txt, computed from both sides. */
Test(safety, published_vector)
{
	struct vectors_kv *kv;
	uint8_t *a_key, *b_key;
	size_t a_len, b_len;
	char ab[SAFETY_DIGITS + 1], ba[SAFETY_DIGITS + 1];
	const char *want;
	long iterations;
	char *end;

	kv = vectors_kv_load("safety-number.txt");
	a_key = vectors_unhex(vectors_kv_get(kv, "alice_key"), &a_len);
	b_key = vectors_unhex(vectors_kv_get(kv, "bob_key"), &b_len);
	cr_assert_eq(a_len, 33);
	cr_assert_eq(b_len, 33);
	iterations = strtol(vectors_kv_get(kv, "iterations"), &end, 10);
	cr_assert(*end == '\0' && iterations > 0, "bad iterations");
	cr_assert_eq(iterations, SAFETY_ITERATIONS);
	want = vectors_kv_get(kv, "safety_number");
	cr_assert_eq(strlen(want), SAFETY_DIGITS);

	cr_assert_eq(safety_number(ab, a_key, a_len, vectors_kv_get(kv, "alice_id"), b_key, b_len,
	                     vectors_kv_get(kv, "bob_id"), (unsigned)iterations),
	        0);
	cr_assert_str_eq(ab, want);
	cr_assert_eq(safety_number(ba, b_key, b_len, vectors_kv_get(kv, "bob_id"), a_key, a_len,
	                     vectors_kv_get(kv, "alice_id"), (unsigned)iterations),
	        0);
	cr_assert_str_eq(ba, want);
	cr_assert(safety_matches(want, ab));

	/* Each input matters: swapping the ids between the keys changes the number. */
	cr_assert_eq(safety_number(ba, a_key, a_len, vectors_kv_get(kv, "bob_id"), b_key, b_len,
	                     vectors_kv_get(kv, "alice_id"), (unsigned)iterations),
	        0);
	cr_assert_str_neq(ba, want);
	free(a_key);
	free(b_key);
	vectors_kv_free(kv);
}

/* The 30 digits of one side, computed here by concatenation rather than streaming. */
static void
reference_half(char out[31], const uint8_t *key, size_t keylen, const char *id, unsigned iters)
{
	uint8_t buf[2 + 64 + 64 + 64], h[HASH_SHA512_BYTES];
	size_t idlen = strlen(id), n = 0, i, j;
	unsigned long long v;

	cr_assert(keylen <= 64 && idlen <= 64);
	buf[n++] = 0;
	buf[n++] = 0;
	memcpy(buf + n, key, keylen);
	n += keylen;
	memcpy(buf + n, id, idlen);
	n += idlen;
	memcpy(buf + n, key, keylen);
	n += keylen;
	hash_sha512(h, buf, n);
	for (i = 1; i < iters; i++) {
		memcpy(buf, h, sizeof(h));
		memcpy(buf + sizeof(h), key, keylen);
		hash_sha512(h, buf, sizeof(h) + keylen);
	}
	for (i = 0; i < 6; i++) {
		v = 0;
		for (j = 0; j < 5; j++)
			v = (v << 8) | h[5 * i + j];
		snprintf(out + 5 * i, 6, "%05llu", v % 100000);
	}
}

Test(safety, matches_a_plain_reference)
{
	uint8_t ka[33], kb[32];
	char a[31], b[31], want[SAFETY_DIGITS + 1], got[SAFETY_DIGITS + 1];
	unsigned iters;

	sotto_random(ka, sizeof(ka));
	sotto_random(kb, sizeof(kb));
	for (iters = 1; iters <= 3; iters++) {
		reference_half(a, ka, sizeof(ka), "alice", iters);
		reference_half(b, kb, sizeof(kb), "bob@example.org", iters);
		snprintf(want, sizeof(want), "%s%s", strcmp(a, b) <= 0 ? a : b,
		        strcmp(a, b) <= 0 ? b : a);
		cr_assert_eq(safety_number(got, ka, sizeof(ka), "alice", kb, sizeof(kb),
		                     "bob@example.org", iters),
		        0);
		cr_assert_str_eq(got, want, "%u iterations", iters);
	}
}

Test(safety, order_symmetry_and_sensitivity)
{
	uint8_t ka[32], kb[32];
	char ab[SAFETY_DIGITS + 1], ba[SAFETY_DIGITS + 1], other[SAFETY_DIGITS + 1];
	size_t i;
	int round;

	for (round = 0; round < 4; round++) {
		sotto_random(ka, sizeof(ka));
		sotto_random(kb, sizeof(kb));
		cr_assert_eq(safety_number(ab, ka, 32, "alice", kb, 32, "bob", 10), 0);
		cr_assert_eq(safety_number(ba, kb, 32, "bob", ka, 32, "alice", 10), 0);
		cr_assert_str_eq(ab, ba);
		cr_assert_eq(strlen(ab), SAFETY_DIGITS);
		for (i = 0; i < SAFETY_DIGITS; i++)
			cr_assert(ab[i] >= '0' && ab[i] <= '9');
		/* The smaller half comes first. */
		cr_assert_leq(strncmp(ab, ab + 30, 30), 0);
		kb[31] ^= 1;
		cr_assert_eq(safety_number(other, ka, 32, "alice", kb, 32, "bob", 10), 0);
		cr_assert_str_neq(other, ab, "a changed key must change the number");
		kb[31] ^= 1;
		cr_assert_eq(safety_number(other, ka, 32, "alice", kb, 32, "bob", 11), 0);
		cr_assert_str_neq(other, ab, "the iteration count must matter");
	}
}

Test(safety, bad_arguments)
{
	uint8_t k[32] = {1};
	char out[SAFETY_DIGITS + 1];

	cr_assert_eq(safety_number(out, k, 32, "a", k, 32, "b", 0), SOTTO_ERR_RANGE);
	cr_assert_eq(out[0], '\0');
	cr_assert_eq(safety_number(out, NULL, 32, "a", k, 32, "b", 1), SOTTO_ERR_INVALID);
	cr_assert_eq(safety_number(out, k, 0, "a", k, 32, "b", 1), SOTTO_ERR_INVALID);
	cr_assert_eq(safety_number(out, k, 32, NULL, k, 32, "b", 1), SOTTO_ERR_INVALID);
	cr_assert_eq(safety_number(out, k, 32, "a", k, 32, NULL, 1), SOTTO_ERR_INVALID);
	cr_assert_eq(safety_number(NULL, k, 32, "a", k, 32, "b", 1), SOTTO_ERR_INVALID);
}

static const char digits[] = "300354477692869396892869876765458257569162576843440918079131";

Test(safety, format_groups_of_five)
{
	static const char short_digits[SAFETY_DIGITS + 1] = "12345";
	static const char not_digits[SAFETY_DIGITS + 1] =
	        "30035447769286939689286987676545825756916257684344091807913x";
	char out[SAFETY_GROUPED_LEN];

	memset(out, 'x', sizeof(out));
	safety_format(out, digits);
	cr_assert_str_eq(out, "30035 44776 92869 39689 28698 76765 45825 75691 62576 84344 09180 "
	                      "79131");
	cr_assert_eq(strlen(out), SAFETY_GROUPED_LEN - 1);
	/* Not 60 digits: an empty string rather than garbage. */
	memset(out, 'x', sizeof(out));
	safety_format(out, short_digits);
	cr_assert_str_eq(out, "");
	memset(out, 'x', sizeof(out));
	safety_format(out, not_digits);
	cr_assert_str_eq(out, "");
}

Test(safety, matches_typed_forms)
{
	char grouped[SAFETY_GROUPED_LEN];

	safety_format(grouped, digits);
	cr_assert_eq(safety_matches(digits, digits), 1);
	cr_assert_eq(safety_matches(grouped, digits), 1);
	cr_assert_eq(safety_matches("30035-44776-92869-39689-28698-76765\n45825-75691-62576-84344-"
	                            "09180-79131\n",
	                     digits),
	        1);
	cr_assert_eq(safety_matches("  30035 44776 92869 39689 28698 76765 45825 75691 62576 84344 "
	                            "09180 79131  ",
	                     digits),
	        1);
}

Test(safety, rejects_near_misses)
{
	static const char short_digits[SAFETY_DIGITS + 1] = "123";
	char typed[SAFETY_GROUPED_LEN + 8];
	size_t i;

	/* Every single-digit change is refused. */
	for (i = 0; i < SAFETY_DIGITS; i++) {
		memcpy(typed, digits, sizeof(digits));
		typed[i] = typed[i] == '9' ? '0' : (char)(typed[i] + 1);
		cr_assert_eq(safety_matches(typed, digits), 0, "digit %zu changed", i);
	}
	safety_format(typed, digits);
	typed[strlen(typed) - 1] = '2';
	cr_assert_eq(safety_matches(typed, digits), 0);
	/* Too short, too long, foreign characters, empty. */
	cr_assert_eq(safety_matches("30035 44776 92869 39689 28698 76765 45825 75691 62576 84344 "
	                            "09180 7913",
	                     digits),
	        0);
	cr_assert_eq(safety_matches("30035 44776 92869 39689 28698 76765 45825 75691 62576 84344 "
	                            "09180 79131 1",
	                     digits),
	        0);
	cr_assert_eq(safety_matches("30035 44776 92869 39689 28698 76765 45825 75691 62576 84344 "
	                            "09180 79131x",
	                     digits),
	        0);
	cr_assert_eq(safety_matches("30035.44776.92869.39689.28698.76765.45825.75691.62576.84344."
	                            "09180.79131",
	                     digits),
	        0);
	cr_assert_eq(safety_matches("", digits), 0);
	cr_assert_eq(safety_matches(NULL, digits), 0);
	cr_assert_eq(safety_matches("123", short_digits), 0);
}
