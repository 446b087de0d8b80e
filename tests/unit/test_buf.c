/* Tests for crypto/buf: bounds checks, string limits and randomized round trips. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "crypto/buf.h"
#include "crypto/util.h"

static void
setup(void)
{
	cr_assert_eq(sotto_crypto_init(), 0);
}

TestSuite(buf, .init = setup);

Test(buf, integers_are_big_endian)
{
	struct buf b;
	uint8_t u8;
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;
	static const uint8_t want[] = {0xab, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03,
	        0x04, 0x05, 0x06, 0x07, 0x08};

	buf_init(&b, 0);
	cr_assert_eq(buf_put_u8(&b, 0xab), 0);
	cr_assert_eq(buf_put_u16(&b, 0x1234), 0);
	cr_assert_eq(buf_put_u32(&b, 0xdeadbeef), 0);
	cr_assert_eq(buf_put_u64(&b, 0x0102030405060708ULL), 0);
	cr_assert_eq(buf_len(&b), sizeof(want));
	cr_assert_arr_eq(buf_ptr(&b), want, sizeof(want));
	cr_assert_eq(buf_get_u8(&b, &u8), 0);
	cr_assert_eq(buf_get_u16(&b, &u16), 0);
	cr_assert_eq(buf_get_u32(&b, &u32), 0);
	cr_assert_eq(buf_get_u64(&b, &u64), 0);
	cr_assert_eq(u8, 0xab);
	cr_assert_eq(u16, 0x1234);
	cr_assert_eq(u32, 0xdeadbeef);
	cr_assert_eq(u64, 0x0102030405060708ULL);
	cr_assert_eq(buf_len(&b), 0);
	buf_free(&b);
}

Test(buf, short_reads_fail_and_consume_nothing)
{
	static const uint8_t data[] = {1, 2, 3};
	struct buf b;
	uint32_t u32;
	uint8_t out[4];

	buf_init_reader(&b, data, sizeof(data));
	cr_assert_eq(buf_get_u32(&b, &u32), SOTTO_ERR_SHORT);
	cr_assert_eq(buf_len(&b), 3);
	cr_assert_eq(buf_get(&b, out, 4), SOTTO_ERR_SHORT);
	cr_assert_eq(buf_skip(&b, 4), SOTTO_ERR_SHORT);
	cr_assert_eq(buf_len(&b), 3);
	cr_assert_eq(buf_get(&b, out, 3), 0);
	cr_assert_arr_eq(out, data, 3);
	cr_assert_eq(buf_get_u8(&b, out), SOTTO_ERR_SHORT);
}

Test(buf, reader_is_not_writable)
{
	static const uint8_t data[] = {1};
	struct buf b;

	buf_init_reader(&b, data, sizeof(data));
	cr_assert_eq(buf_put_u8(&b, 9), SOTTO_ERR_INVALID);
	cr_assert_eq(buf_len(&b), 1);
	buf_free(&b);
}

Test(buf, strings_respect_maxlen_and_truncation)
{
	struct buf b;
	const uint8_t *p;
	size_t n;
	char *s;
	uint8_t small[4];

	buf_init(&b, 0);
	cr_assert_eq(buf_put_cstring(&b, "hello"), 0);
	cr_assert_eq(buf_get_string_direct(&b, &p, &n, 4), SOTTO_ERR_RANGE);
	cr_assert_eq(buf_len(&b), 9, "a refused string must not be consumed");
	cr_assert_eq(buf_get_string_fixed(&b, small, sizeof(small), &n), SOTTO_ERR_RANGE);
	cr_assert_eq(buf_get_cstring(&b, &s, 5), 0);
	cr_assert_str_eq(s, "hello");
	free(s);
	cr_assert_eq(buf_len(&b), 0);

	/* A length field that claims more than is present. */
	buf_reset(&b);
	cr_assert_eq(buf_put_u32(&b, 100), 0);
	cr_assert_eq(buf_put(&b, "abc", 3), 0);
	cr_assert_eq(buf_get_string_direct(&b, &p, &n, 1000), SOTTO_ERR_SHORT);
	cr_assert_null(p);
	cr_assert_eq(buf_len(&b), 7);

	/* An attacker-sized length field is refused before anything else happens. */
	buf_reset(&b);
	cr_assert_eq(buf_put_u32(&b, 0xffffffffu), 0);
	cr_assert_eq(buf_get_string_direct(&b, &p, &n, 1 << 20), SOTTO_ERR_RANGE);
	buf_free(&b);
}

Test(buf, cstring_rejects_embedded_nul)
{
	struct buf b;
	char *s = (char *)1;

	buf_init(&b, 0);
	cr_assert_eq(buf_put_string(&b, "a\0b", 3), 0);
	cr_assert_eq(buf_get_cstring(&b, &s, 16), SOTTO_ERR_FORMAT);
	cr_assert_null(s);
	cr_assert_eq(buf_len(&b), 7);
	buf_free(&b);
}

Test(buf, writer_honours_max)
{
	struct buf b;
	uint8_t *p;

	buf_init(&b, 8);
	cr_assert_eq(buf_put(&b, "12345678", 8), 0);
	cr_assert_eq(buf_put_u8(&b, 0), SOTTO_ERR_RANGE);
	cr_assert_eq(buf_len(&b), 8);
	cr_assert_eq(buf_reserve(&b, (size_t)-1, &p), SOTTO_ERR_RANGE);
	cr_assert_null(p);
	/* Consumed bytes make room again (the buffer compacts). */
	cr_assert_eq(buf_skip(&b, 4), 0);
	cr_assert_eq(buf_put(&b, "9abc", 4), 0);
	cr_assert_eq(buf_len(&b), 8);
	cr_assert_arr_eq(buf_ptr(&b), "56789abc", 8);
	buf_free(&b);
}

Test(buf, secure_buffer_keeps_contents_across_growth)
{
	struct buf b;
	uint8_t chunk[100];
	int i;

	buf_init_secure(&b, 0);
	for (i = 0; i < 50; i++) {
		memset(chunk, i, sizeof(chunk));
		cr_assert_eq(buf_put(&b, chunk, sizeof(chunk)), 0);
	}
	cr_assert_eq(buf_len(&b), 5000);
	for (i = 0; i < 50; i++)
		cr_assert_eq(buf_ptr(&b)[i * 100 + 99], i);
	buf_reset(&b);
	cr_assert_eq(buf_len(&b), 0);
	buf_free(&b);
}

/* Random sequences of typed fields written, then read back, must match exactly. */
Test(buf, randomized_round_trip)
{
	enum { ROUNDS = 200, FIELDS = 64 };
	int round;

	for (round = 0; round < ROUNDS; round++) {
		uint8_t kinds[FIELDS];
		uint64_t vals[FIELDS];
		uint8_t blobs[FIELDS][40];
		size_t lens[FIELDS];
		struct buf b;
		int i;

		buf_init(&b, 0);
		sotto_random(kinds, sizeof(kinds));
		sotto_random(vals, sizeof(vals));
		sotto_random(blobs, sizeof(blobs));
		for (i = 0; i < FIELDS; i++) {
			kinds[i] %= 5;
			lens[i] = (size_t)(vals[i] % sizeof(blobs[i]));
			switch (kinds[i]) {
			case 0:
				cr_assert_eq(buf_put_u8(&b, (uint8_t)vals[i]), 0);
				break;
			case 1:
				cr_assert_eq(buf_put_u16(&b, (uint16_t)vals[i]), 0);
				break;
			case 2:
				cr_assert_eq(buf_put_u32(&b, (uint32_t)vals[i]), 0);
				break;
			case 3:
				cr_assert_eq(buf_put_u64(&b, vals[i]), 0);
				break;
			default:
				cr_assert_eq(buf_put_string(&b, blobs[i], lens[i]), 0);
				break;
			}
		}
		for (i = 0; i < FIELDS; i++) {
			uint8_t u8;
			uint16_t u16;
			uint32_t u32;
			uint64_t u64;
			const uint8_t *p;
			size_t n;

			switch (kinds[i]) {
			case 0:
				cr_assert_eq(buf_get_u8(&b, &u8), 0);
				cr_assert_eq(u8, (uint8_t)vals[i]);
				break;
			case 1:
				cr_assert_eq(buf_get_u16(&b, &u16), 0);
				cr_assert_eq(u16, (uint16_t)vals[i]);
				break;
			case 2:
				cr_assert_eq(buf_get_u32(&b, &u32), 0);
				cr_assert_eq(u32, (uint32_t)vals[i]);
				break;
			case 3:
				cr_assert_eq(buf_get_u64(&b, &u64), 0);
				cr_assert_eq(u64, vals[i]);
				break;
			default:
				cr_assert_eq(buf_get_string_direct(&b, &p, &n, 64), 0);
				cr_assert_eq(n, lens[i]);
				if (n > 0)
					cr_assert_arr_eq(p, blobs[i], n);
				break;
			}
		}
		cr_assert_eq(buf_len(&b), 0);
		buf_free(&b);
	}
}

/* Random bytes parsed as strings never read out of bounds and never report more than is there. */
Test(buf, randomized_garbage_is_rejected_safely)
{
	int round;

	for (round = 0; round < 2000; round++) {
		uint8_t junk[64];
		uint8_t len8;
		const uint8_t *p;
		size_t n, before;
		struct buf b;

		sotto_random(&len8, 1);
		sotto_random(junk, sizeof(junk));
		buf_init_reader(&b, junk, len8 % (sizeof(junk) + 1));
		while (buf_len(&b) > 0) {
			before = buf_len(&b);
			if (buf_get_string_direct(&b, &p, &n, sizeof(junk)) != 0) {
				cr_assert_eq(buf_len(&b), before);
				break;
			}
			cr_assert_leq(n + 4, before);
			cr_assert_eq(buf_len(&b), before - 4 - n);
		}
	}
}
