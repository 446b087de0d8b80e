/* Tests for crypto/hash: SHA-256 and SHA-512 against the FIPS 180 examples. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "crypto/hash.h"
#include "crypto/util.h"
#include "tests/lib/vectors.h"

static void
setup(void)
{
	cr_assert_eq(sotto_crypto_init(), 0);
}

/* cppcheck-suppress unknownMacro */
TestSuite(hash, .init = setup);

static const char abc448[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";

Test(hash, sha256_examples)
{
	uint8_t want[HASH_SHA256_BYTES], got[HASH_SHA256_BYTES];

	vectors_unhex_fixed(want, sizeof(want),
	        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	hash_sha256(got, "abc", 3);
	cr_assert_arr_eq(got, want, sizeof(want));

	vectors_unhex_fixed(want, sizeof(want),
	        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	hash_sha256(got, "", 0);
	cr_assert_arr_eq(got, want, sizeof(want));

	vectors_unhex_fixed(want, sizeof(want),
	        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	hash_sha256(got, abc448, strlen(abc448));
	cr_assert_arr_eq(got, want, sizeof(want));
}

Test(hash, sha512_examples)
{
	uint8_t want[HASH_SHA512_BYTES], got[HASH_SHA512_BYTES];

	vectors_unhex_fixed(want, sizeof(want),
	        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
	        "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
	hash_sha512(got, "abc", 3);
	cr_assert_arr_eq(got, want, sizeof(want));

	vectors_unhex_fixed(want, sizeof(want),
	        "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
	        "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e");
	hash_sha512(got, "", 0);
	cr_assert_arr_eq(got, want, sizeof(want));
}

Test(hash, million_a)
{
	uint8_t want256[HASH_SHA256_BYTES], got256[HASH_SHA256_BYTES];
	uint8_t want512[HASH_SHA512_BYTES], got512[HASH_SHA512_BYTES];
	char *a;

	a = malloc(1000000);
	cr_assert_not_null(a);
	memset(a, 'a', 1000000);
	vectors_unhex_fixed(want256, sizeof(want256),
	        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	hash_sha256(got256, a, 1000000);
	cr_assert_arr_eq(got256, want256, sizeof(want256));
	vectors_unhex_fixed(want512, sizeof(want512),
	        "e718483d0ce769644e2e42c7bc15b4638e1f98b13b2044285632a803afa973eb"
	        "de0ff244877ea60a4cb0432ce577c31beb009c5c2c49aa2e4eadb217ad8cc09b");
	hash_sha512(got512, a, 1000000);
	cr_assert_arr_eq(got512, want512, sizeof(want512));
	free(a);
}

Test(hash, one_bit_changes_the_digest)
{
	uint8_t msg[100], h1[HASH_SHA512_BYTES], h2[HASH_SHA512_BYTES];

	sotto_random(msg, sizeof(msg));
	hash_sha512(h1, msg, sizeof(msg));
	msg[50] ^= 0x10;
	hash_sha512(h2, msg, sizeof(msg));
	cr_assert_arr_neq(h1, h2, sizeof(h1));
	hash_sha256(h1, msg, sizeof(msg));
	hash_sha256(h2, msg, sizeof(msg) - 1);
	cr_assert_arr_neq(h1, h2, HASH_SHA256_BYTES);
}
