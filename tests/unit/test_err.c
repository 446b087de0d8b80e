/* Tests for crypto/err: stable codes and one distinct sentence per code. */
#include "config.h"

#include <limits.h>
#include <string.h>

#include <criterion/criterion.h>

#include "crypto/err.h"

Test(err, codes_keep_their_wire_values)
{
	/* The values appear on the wire and in logs, so renumbering must fail here. */
	cr_assert_eq(SOTTO_OK, 0);
	cr_assert_eq(SOTTO_ERR_NOMEM, -1);
	cr_assert_eq(SOTTO_ERR_INVALID, -2);
	cr_assert_eq(SOTTO_ERR_CRYPTO, -3);
	cr_assert_eq(SOTTO_ERR_VERIFY, -4);
	cr_assert_eq(SOTTO_ERR_SHORT, -5);
	cr_assert_eq(SOTTO_ERR_RANGE, -6);
	cr_assert_eq(SOTTO_ERR_IO, -7);
	cr_assert_eq(SOTTO_ERR_EXISTS, -8);
	cr_assert_eq(SOTTO_ERR_PASSPHRASE, -9);
	cr_assert_eq(SOTTO_ERR_FORMAT, -10);
	cr_assert_eq(SOTTO_ERR_UNSUPPORTED, -11);
	cr_assert_eq(SOTTO_ERR_WEAKKEY, -12);
	cr_assert_eq(SOTTO_ERR_NOTFOUND, -13);
	cr_assert_eq(SOTTO_ERR_PERM, -14);
	cr_assert_eq(SOTTO_ERR_AGAIN, -15);
	cr_assert_eq(SOTTO_ERR_PROTO, -16);
	cr_assert_eq(SOTTO_ERR_CLOSED, -17);
	cr_assert_eq(SOTTO_ERR__MIN, -18);
}

Test(err, every_code_has_a_distinct_sentence)
{
	const char *s, *t;
	int i, j;

	for (i = 0; i > SOTTO_ERR__MIN; i--) {
		s = sotto_strerror(i);
		cr_assert_not_null(s, "code %d", i);
		cr_assert_gt(strlen(s), 0, "code %d has an empty string", i);
		cr_assert_str_neq(s, "unknown error", "code %d has no string", i);
		cr_assert_neq(s[strlen(s) - 1], '.', "code %d ends with a period", i);
		for (j = 0; j > i; j--) {
			t = sotto_strerror(j);
			cr_assert_str_neq(s, t, "codes %d and %d share \"%s\"", i, j, s);
		}
	}
}

Test(err, out_of_range_codes_are_unknown)
{
	static const int bad[] = {
	        1, 2, 17, 100, INT_MAX, SOTTO_ERR__MIN, SOTTO_ERR__MIN - 1, -1000, INT_MIN};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_str_eq(sotto_strerror(bad[i]), "unknown error", "code %d", bad[i]);
	cr_assert_str_eq(sotto_strerror(SOTTO_ERR_VERIFY), "verification failed");
}
