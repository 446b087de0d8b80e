/* Tests for keys/fingerprint: SHA256 fingerprints and the drunken-bishop randomart. */
#include "config.h"

#include <string.h>

#include <criterion/criterion.h>

#include "crypto/util.h"
#include "keys/fingerprint.h"

#ifndef Test
/* cppcheck does not read criterion.h: let it analyse each test as a plain function. */
#define TestSuite(...)         struct test_suite_unused
#define Test(suite, name, ...) void test_##suite##_##name(void)
#endif

static void
setup(void)
{
	cr_assert_eq(sotto_crypto_init(), 0);
}

TestSuite(fingerprint, .init = setup);

Test(fingerprint, sha256_of_known_input)
{
	char fp[FINGERPRINT_LEN];

	fingerprint_sha256(fp, "", 0);
	cr_assert_str_eq(fp, "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU");
	fingerprint_sha256(fp, "abc", 3);
	cr_assert_str_eq(fp, "SHA256:ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0");
	cr_assert_eq(strlen(fp), FINGERPRINT_LEN - 1);
}

Test(fingerprint, format_has_no_padding)
{
	uint8_t digest[HASH_SHA256_BYTES];
	char fp[FINGERPRINT_LEN];

	memset(digest, 0xff, sizeof(digest));
	fingerprint_format(fp, digest);
	cr_assert_str_eq(fp, "SHA256://////////////////////////////////////////8");
	cr_assert_null(strchr(fp, '='));
}

/* Decode the base64 part of "SHA256:..." into a digest. */
static void
digest_of(uint8_t digest[HASH_SHA256_BYTES], const char *b64)
{
	size_t len = 0;

	cr_assert_eq(sotto_unb64(digest, HASH_SHA256_BYTES, &len, b64), 0);
	cr_assert_eq(len, HASH_SHA256_BYTES);
}

/*
 * Pictures drawn by OpenSSH's ssh-keygen -lv for these SHA-256 digests (of
 * its own key blobs), so the walk and the frame match ssh-keygen exactly.
 */
Test(fingerprint, randomart_matches_ssh_keygen_ed25519)
{
	uint8_t digest[HASH_SHA256_BYTES];
	char art[RANDOMART_LEN];

	digest_of(digest, "E0n1nqDVh9Mk5RkLRZnPeQ8QzWls0iBDwEGO4xYuGag");
	fingerprint_randomart(art, digest, sizeof(digest), "ED25519", 256, "SHA256");
	cr_assert_str_eq(art, "+--[ED25519 256]--+\n"
	                      "|       o=== =@*+ |\n"
	                      "|   .   +.. =oB@+ |\n"
	                      "|  . . + + o ==*o.|\n"
	                      "| .   = o + o +..+|\n"
	                      "|E   o + S   o  .o|\n"
	                      "|     o   .      .|\n"
	                      "|                 |\n"
	                      "|                 |\n"
	                      "|                 |\n"
	                      "+----[SHA256]-----+");
}

Test(fingerprint, randomart_matches_ssh_keygen_rsa)
{
	uint8_t digest[HASH_SHA256_BYTES];
	char art[RANDOMART_LEN];

	digest_of(digest, "IVq/Szr0Hqo/0uvDRpiXMGm4a9y6DGfx3zklBB2ZMYE");
	fingerprint_randomart(art, digest, sizeof(digest), "RSA", 3072, "SHA256");
	cr_assert_str_eq(art, "+---[RSA 3072]----+\n"
	                      "|       o=*       |\n"
	                      "|      E +.       |\n"
	                      "|   . .o..        |\n"
	                      "|  . =o o..       |\n"
	                      "|  .o.= oS        |\n"
	                      "|  .oo = ...      |\n"
	                      "|..oo.* .+o       |\n"
	                      "| =+ o.B=o+       |\n"
	                      "| .+o.*B*=.       |\n"
	                      "+----[SHA256]-----+");
}

Test(fingerprint, randomart_matches_ssh_keygen_ecdsa)
{
	uint8_t digest[HASH_SHA256_BYTES];
	char art[RANDOMART_LEN];

	digest_of(digest, "NQzBmNZ5A5gtO1MCkeJBH8RN8bhQ4u8fpgN3YKVwWE4");
	fingerprint_randomart(art, digest, sizeof(digest), "ECDSA", 256, "SHA256");
	cr_assert_str_eq(art, "+---[ECDSA 256]---+\n"
	                      "| ..o*OEX++       |\n"
	                      "|  oo=*@oBoo      |\n"
	                      "| . o++oB..+.     |\n"
	                      "|  .  oB. . .     |\n"
	                      "|     .o+S        |\n"
	                      "|    ... .        |\n"
	                      "|     o..o        |\n"
	                      "|      .+ .       |\n"
	                      "|      ...        |\n"
	                      "+----[SHA256]-----+");
}

Test(fingerprint, randomart_frame_shape)
{
	uint8_t digest[HASH_SHA256_BYTES] = {0};
	char art[RANDOMART_LEN], *line, *save = NULL;
	int lines = 0;

	/* A title too wide for "[TYPE BITS]" falls back to "[TYPE]", then is cut. */
	fingerprint_randomart(art, digest, sizeof(digest), "VERYLONGTYPE", 16384, "SHA256");
	cr_assert(strncmp(art, "+-[VERYLONGTYPE]--+\n", 20) == 0, "%s", art);
	fingerprint_randomart(
	        art, digest, sizeof(digest), "ABCDEFGHIJKLMNOPQRSTUVWXYZ", 1, "SHA256");
	cr_assert(strncmp(art, "+[ABCDEFGHIJKLMNO]+\n", 20) == 0, "%s", art);
	cr_assert_eq(strlen(art), RANDOMART_LEN - 1);
	for (line = strtok_r(art, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		cr_assert_eq(strlen(line), RANDOMART_WIDTH + 2);
		lines++;
	}
	cr_assert_eq(lines, RANDOMART_HEIGHT + 2);
}

Test(fingerprint, randomart_of_nothing_marks_the_centre)
{
	char art[RANDOMART_LEN];

	/* No moves: start and end are the same square, and the end mark wins. */
	fingerprint_randomart(art, NULL, 0, "ED25519", 256, "SHA256");
	cr_assert_str_eq(art, "+--[ED25519 256]--+\n"
	                      "|                 |\n"
	                      "|                 |\n"
	                      "|                 |\n"
	                      "|                 |\n"
	                      "|        E        |\n"
	                      "|                 |\n"
	                      "|                 |\n"
	                      "|                 |\n"
	                      "|                 |\n"
	                      "+----[SHA256]-----+");
}
