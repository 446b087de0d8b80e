/* Tests for crypto/util: hex, base64, constant-time comparison, wiping and randomness. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "crypto/util.h"

static void
setup(void)
{
	cr_assert_eq(sotto_crypto_init(), 0);
}

/* cppcheck-suppress unknownMacro */
TestSuite(util, .init = setup);

Test(util, init_is_idempotent)
{
	cr_assert_eq(sotto_crypto_init(), 0);
	cr_assert_eq(sotto_crypto_init(), 0);
}

Test(util, hex_known_value)
{
	static const uint8_t bin[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xcd, 0xef, 0xff};
	char hex[2 * sizeof(bin) + 1];
	uint8_t *out = NULL;
	size_t len = 99;

	sotto_hex(hex, bin, sizeof(bin));
	cr_assert_str_eq(hex, "00017f80abcdefff");
	cr_assert_eq(sotto_unhex(&out, &len, "00017F80ABcdEFff"), 0);
	cr_assert_eq(len, sizeof(bin));
	cr_assert_arr_eq(out, bin, sizeof(bin));
	free(out);

	sotto_hex(hex, bin, 0);
	cr_assert_str_eq(hex, "");
	cr_assert_eq(sotto_unhex(&out, &len, ""), 0);
	cr_assert_not_null(out);
	cr_assert_eq(len, 0);
	free(out);
}

Test(util, hex_round_trips)
{
	uint8_t bin[70], *out = NULL;
	char hex[2 * sizeof(bin) + 1];
	size_t n, len;

	for (n = 0; n <= sizeof(bin); n++) {
		sotto_random(bin, n);
		sotto_hex(hex, bin, n);
		cr_assert_eq(strlen(hex), 2 * n);
		cr_assert_eq(sotto_unhex(&out, &len, hex), 0, "length %zu", n);
		cr_assert_eq(len, n);
		cr_assert_arr_eq(out, bin, n);
		free(out);
	}
}

Test(util, hex_rejects_bad_input)
{
	static const char *const bad[] = {"0", "abc", "0g", "g0", "zz", " 00", "00 ", "0x00",
	        "00:11", "-1", "\xc3\xa9\xc3\xa9"};
	uint8_t *out = (uint8_t *)1;
	size_t i, len = 99;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(sotto_unhex(&out, &len, bad[i]), SOTTO_ERR_FORMAT, "\"%s\"", bad[i]);
		cr_assert_null(out, "\"%s\" left an output", bad[i]);
		cr_assert_eq(len, 0);
	}
}

/* RFC 4648 section 10. */
static const struct {
	const char *bin, *padded, *unpadded;
} b64_vectors[] = {
        {"", "", ""},
        {"f", "Zg==", "Zg"},
        {"fo", "Zm8=", "Zm8"},
        {"foo", "Zm9v", "Zm9v"},
        {"foob", "Zm9vYg==", "Zm9vYg"},
        {"fooba", "Zm9vYmE=", "Zm9vYmE"},
        {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
};

Test(util, base64_rfc4648_vectors)
{
	char enc[SOTTO_B64_LEN(6)];
	uint8_t dec[8];
	size_t i, n, len;

	for (i = 0; i < sizeof(b64_vectors) / sizeof(b64_vectors[0]); i++) {
		n = strlen(b64_vectors[i].bin);
		sotto_b64(enc, (const uint8_t *)b64_vectors[i].bin, n, 1);
		cr_assert_str_eq(enc, b64_vectors[i].padded);
		sotto_b64(enc, (const uint8_t *)b64_vectors[i].bin, n, 0);
		cr_assert_str_eq(enc, b64_vectors[i].unpadded);
		cr_assert_eq(sotto_unb64(dec, sizeof(dec), &len, b64_vectors[i].padded), 0);
		cr_assert_eq(len, n);
		cr_assert_arr_eq(dec, b64_vectors[i].bin, n);
		cr_assert_eq(sotto_unb64(dec, sizeof(dec), &len, b64_vectors[i].unpadded), 0);
		cr_assert_eq(len, n);
		cr_assert_arr_eq(dec, b64_vectors[i].bin, n);
	}
}

Test(util, base64_round_trips)
{
	uint8_t bin[100], dec[100];
	char enc[SOTTO_B64_LEN(100)];
	size_t n, len;
	int padded;

	for (n = 0; n <= sizeof(bin); n++) {
		for (padded = 0; padded <= 1; padded++) {
			sotto_random(bin, n);
			sotto_b64(enc, bin, n, padded);
			cr_assert_lt(strlen(enc), SOTTO_B64_LEN(n));
			if (padded)
				cr_assert_eq(strlen(enc) % 4, 0);
			cr_assert_eq(sotto_unb64(dec, sizeof(dec), &len, enc), 0, "%s", enc);
			cr_assert_eq(len, n);
			cr_assert_arr_eq(dec, bin, n);
		}
	}
}

Test(util, base64_rejects_bad_input)
{
	static const char *const bad[] = {
	        "Z",        /* 6 bits cannot make a byte */
	        "Zg=",      /* partial padding */
	        "Zg===",    /* too much padding */
	        "Zm9v=",    /* padding after a full block */
	        "Zm8==",    /* two pads where one belongs */
	        "====",     /* padding only */
	        "Zh==",     /* non-zero unused bits (non-canonical "f") */
	        "Zm9=",     /* non-zero unused bits */
	        "Zm 9v",    /* space */
	        "Zm9v\n",   /* newline */
	        "Zm9v!",    /* not in the alphabet */
	        "Zm-_",     /* URL-safe alphabet */
	        "Zg==Zg==", /* padding in the middle */
	};
	uint8_t dec[16];
	size_t i, len = 99;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(sotto_unb64(dec, sizeof(dec), &len, bad[i]), SOTTO_ERR_FORMAT,
		        "\"%s\"", bad[i]);
		cr_assert_eq(len, 0, "\"%s\"", bad[i]);
	}
}

Test(util, base64_output_too_small)
{
	uint8_t dec[5];
	size_t len = 99;

	cr_assert_eq(sotto_unb64(dec, 5, &len, "Zm9vYmFy"), SOTTO_ERR_SHORT);
	cr_assert_eq(len, 0);
	cr_assert_eq(sotto_unb64(dec, 5, &len, "Zm9vYmE="), 0);
	cr_assert_eq(len, 5);
	cr_assert_arr_eq(dec, "fooba", 5);
}

Test(util, memeq)
{
	uint8_t a[64], b[64];
	size_t i;

	sotto_random(a, sizeof(a));
	memcpy(b, a, sizeof(b));
	cr_assert_eq(sotto_memeq(a, b, sizeof(a)), 1);
	cr_assert_eq(sotto_memeq(a, b, 0), 1);
	for (i = 0; i < sizeof(a); i++) {
		b[i] ^= 0x01;
		cr_assert_eq(sotto_memeq(a, b, sizeof(a)), 0, "difference at byte %zu missed", i);
		cr_assert_eq(sotto_memeq(a, b, i), 1, "prefix of %zu bytes", i);
		b[i] ^= 0x01;
	}
	b[sizeof(b) - 1] ^= 0x80;
	cr_assert_eq(sotto_memeq(a, b, sizeof(a)), 0);
}

Test(util, wipe_zeroes)
{
	uint8_t buf[33];
	size_t i;

	memset(buf, 0xa5, sizeof(buf));
	sotto_wipe(buf, sizeof(buf) - 1);
	for (i = 0; i < sizeof(buf) - 1; i++)
		cr_assert_eq(buf[i], 0, "byte %zu", i);
	cr_assert_eq(buf[sizeof(buf) - 1], 0xa5, "wiped past the end");
	sotto_wipe(NULL, 10);
	sotto_wipe(buf, 0);
}

Test(util, random_fills_and_differs)
{
	static const uint8_t zero[32];
	uint8_t a[32], b[32];

	sotto_random(a, sizeof(a));
	sotto_random(b, sizeof(b));
	cr_assert_arr_neq(a, zero, sizeof(a));
	cr_assert_arr_neq(a, b, sizeof(a));
}
