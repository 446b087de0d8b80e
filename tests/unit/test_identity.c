/* Tests for keys/identity: generation, files, .pub lines, fingerprints, signatures. */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>

#include "crypto/util.h"
#include "keys/identity.h"
#include "keys/keyfile.h"
#include "keys/pkey.h"
#include "tests/lib/tdir.h"

#ifndef Test
/* cppcheck does not read criterion.h: let it analyse each test as a plain function. */
#define TestSuite(...)         struct test_suite_unused
#define Test(suite, name, ...) void test_##suite##_##name(void)
#endif

static char dir[64];

static void
setup(void)
{
	cr_assert_eq(sotto_crypto_init(), 0);
	umask(022);
	tdir_make(dir, sizeof(dir), "test_identity");
}

static void
teardown(void)
{
	tdir_remove(dir);
}

TestSuite(identity, .init = setup, .fini = teardown);

/* dir/name in one of two rotating static buffers. */
static const char *
at(const char *name)
{
	return tdir_at(dir, name);
}

static char *
slurp(const char *path)
{
	uint8_t *data = NULL;
	size_t len = 0;

	cr_assert_eq(keyfile_read(path, 0, &data, &len), 0, "reading %s", path);
	return (char *)data;
}

static struct identity *
new_ed25519(void)
{
	struct identity *id = NULL;

	cr_assert_eq(identity_generate(&id, IDENTITY_ED25519, 0), 0);
	return id;
}

/* Sign with a and verify with b's public key. */
static int
sign_verify(const struct identity *a, const struct identity_pub *b)
{
	static const uint8_t msg[] = "sotto-auth-v1 challenge";
	uint8_t sig[IDENTITY_SIG_MAX];
	size_t siglen = 0;

	cr_assert_eq(identity_sign(sig, sizeof(sig), &siglen, a, msg, sizeof(msg)), 0);
	return identity_pub_verify(b, sig, siglen, msg, sizeof(msg));
}

Test(identity, ed25519_public_half)
{
	static const uint8_t prefix[] = {
	        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};
	struct identity *id = new_ed25519();
	const struct identity_pub *pub = identity_public(id);
	char fp[FINGERPRINT_LEN], want[FINGERPRINT_LEN];

	cr_assert_eq(pub->type, IDENTITY_ED25519);
	cr_assert_eq(pub->bits, 256);
	cr_assert_eq(pub->derlen, 44);
	cr_assert_arr_eq(pub->der, prefix, sizeof(prefix));
	cr_assert_arr_eq(pub->der + 12, pub->ed25519, 32);
	/* libsodium's secret key ends with the public key. */
	cr_assert_arr_eq(id->ed25519_sk + 32, pub->ed25519, 32);
	identity_fingerprint(fp, pub);
	fingerprint_sha256(want, pub->der, pub->derlen);
	cr_assert_str_eq(fp, want);
	cr_assert_str_eq(identity_type_name(pub->type), "ED25519");
	identity_free(id);
	identity_free(NULL);
	identity_pub_free(NULL);
}

Test(identity, sign_and_verify)
{
	struct identity *a = new_ed25519(), *b = new_ed25519();
	static const uint8_t msg[] = "hello";
	uint8_t sig[IDENTITY_SIG_MAX];
	size_t siglen = 0;

	cr_assert_eq(sign_verify(a, identity_public(a)), 0);
	cr_assert_eq(sign_verify(a, identity_public(b)), SOTTO_ERR_VERIFY);
	cr_assert_eq(identity_sign(sig, sizeof(sig), &siglen, a, msg, sizeof(msg)), 0);
	cr_assert_eq(siglen, ED25519_SIGBYTES);
	cr_assert_eq(identity_pub_verify(identity_public(a), sig, siglen, msg, sizeof(msg) - 1),
	        SOTTO_ERR_VERIFY);
	sig[0] ^= 1;
	cr_assert_eq(identity_pub_verify(identity_public(a), sig, siglen, msg, sizeof(msg)),
	        SOTTO_ERR_VERIFY);
	cr_assert_eq(identity_pub_verify(identity_public(a), sig, siglen - 1, msg, sizeof(msg)),
	        SOTTO_ERR_VERIFY);
	cr_assert_eq(identity_sign(sig, 63, &siglen, a, msg, sizeof(msg)), SOTTO_ERR_SHORT);
	identity_free(a);
	identity_free(b);
}

Test(identity, save_and_load_encrypted)
{
	struct identity *id = new_ed25519(), *back = NULL;
	char *comment = NULL, *text;

	cr_assert_eq(identity_save(id, at("id"), "pass phrase", "alice@example org", 0), 0);
	cr_assert_eq(tdir_mode(at("id")), 0600);
	cr_assert_eq(tdir_mode(at("id.pub")), 0644);
	cr_assert_eq(tdir_count(dir), 2);
	text = slurp(at("id"));
	cr_assert(strncmp(text, "-----BEGIN ENCRYPTED PRIVATE KEY-----\n", 38) == 0);
	free(text);
	text = slurp(at("id.pub"));
	cr_assert(strncmp(text, "sotto-ed25519 MCowBQYDK2VwAyEA", 30) == 0, "%s", text);
	cr_assert(strstr(text, "= alice@example org\n") != NULL, "%s", text);
	free(text);

	cr_assert_eq(identity_load(&back, &comment, at("id"), "pass phrase"), 0);
	cr_assert_str_eq(comment, "alice@example org");
	cr_assert(identity_pub_equal(identity_public(id), identity_public(back)));
	cr_assert_eq(sign_verify(back, identity_public(id)), 0);
	free(comment);
	identity_free(back);

	cr_assert_eq(identity_load(&back, &comment, at("id"), "wrong"), SOTTO_ERR_PASSPHRASE);
	cr_assert_null(back);
	cr_assert_null(comment);
	cr_assert_eq(identity_load(&back, NULL, at("id"), NULL), SOTTO_ERR_PASSPHRASE);
	cr_assert_eq(identity_load(&back, NULL, at("none"), NULL), SOTTO_ERR_NOTFOUND);
	identity_free(id);
}

Test(identity, save_unencrypted)
{
	struct identity *id = new_ed25519(), *back = NULL;
	char *text, *comment = NULL;

	cr_assert_eq(identity_save(id, at("id"), "", NULL, 0), 0);
	text = slurp(at("id"));
	cr_assert(strncmp(text, "-----BEGIN PRIVATE KEY-----\n", 28) == 0);
	free(text);
	text = slurp(at("id.pub"));
	cr_assert_eq(strchr(text, ' '), strrchr(text, ' '), "no comment expected: %s", text);
	free(text);
	cr_assert_eq(identity_load(&back, &comment, at("id"), NULL), 0);
	cr_assert_null(comment);
	cr_assert(identity_pub_equal(identity_public(id), identity_public(back)));
	identity_free(back);
	identity_free(id);
}

Test(identity, save_never_clobbers)
{
	struct identity *a = new_ed25519(), *b = new_ed25519();
	struct identity_pub *pub = NULL;
	char *before, *pubbefore, *after;

	cr_assert_eq(identity_save(a, at("id"), NULL, "a", 0), 0);
	before = slurp(at("id"));
	pubbefore = slurp(at("id.pub"));
	cr_assert_eq(identity_save(b, at("id"), NULL, "b", 0), SOTTO_ERR_EXISTS);
	after = slurp(at("id"));
	cr_assert_str_eq(after, before);
	free(after);
	after = slurp(at("id.pub"));
	cr_assert_str_eq(after, pubbefore);
	free(after);
	cr_assert_eq(tdir_count(dir), 2);

	/* A lone .pub is enough to refuse, and nothing is created. */
	cr_assert_eq(rename(at("id.pub"), at("other.pub")), 0);
	cr_assert_eq(identity_save(b, at("other"), NULL, "b", 0), SOTTO_ERR_EXISTS);
	cr_assert_eq(access(at("other"), F_OK), -1);

	/* With force, both files are replaced. */
	cr_assert_eq(identity_save(b, at("id"), "pw", "b", 1), 0);
	cr_assert_eq(identity_pub_load(&pub, NULL, at("id.pub")), 0);
	cr_assert(identity_pub_equal(pub, identity_public(b)));
	cr_assert_eq(tdir_mode(at("id")), 0600);
	cr_assert_eq(tdir_count(dir), 3);
	identity_pub_free(pub);
	free(before);
	free(pubbefore);
	identity_free(a);
	identity_free(b);
}

Test(identity, save_into_missing_directory)
{
	struct identity *id = new_ed25519();

	cr_assert_eq(identity_save(id, at("nope/id"), NULL, NULL, 0), SOTTO_ERR_IO);
	cr_assert_eq(errno, ENOENT);
	cr_assert_eq(identity_save(id, "/etc/passwd/id", NULL, NULL, 0), SOTTO_ERR_IO);
	cr_assert_eq(errno, ENOTDIR);
	cr_assert_eq(identity_save(id, at("id"), NULL, "bad\ncomment", 0), SOTTO_ERR_INVALID);
	cr_assert_eq(tdir_count(dir), 0);
	identity_free(id);
}

Test(identity, pub_line_round_trip)
{
	struct identity *id = new_ed25519();
	struct identity_pub *pub = NULL;
	char *line = NULL, *comment = NULL, *withnl;
	size_t n;

	cr_assert_eq(identity_pub_format_line(&line, identity_public(id), "bob at home"), 0);
	cr_assert(strncmp(line, "sotto-ed25519 ", 14) == 0);
	cr_assert_eq(identity_pub_parse_line(&pub, &comment, line), 0);
	cr_assert_str_eq(comment, "bob at home");
	cr_assert(identity_pub_equal(pub, identity_public(id)));
	free(comment);
	identity_pub_free(pub);

	n = strlen(line) + 3;
	withnl = malloc(n);
	snprintf(withnl, n, "%s\r\n", line);
	cr_assert_eq(identity_pub_parse_line(&pub, &comment, withnl), 0);
	cr_assert_str_eq(comment, "bob at home");
	free(comment);
	identity_pub_free(pub);
	free(withnl);
	free(line);

	cr_assert_eq(identity_pub_format_line(&line, identity_public(id), NULL), 0);
	cr_assert_eq(identity_pub_parse_line(&pub, &comment, line), 0);
	cr_assert_null(comment);
	identity_pub_free(pub);
	free(line);
	cr_assert_eq(identity_pub_format_line(&line, identity_public(id), "tab\there"),
	        SOTTO_ERR_INVALID);
	cr_assert_null(line);
	identity_free(id);
}

Test(identity, pub_line_rejects_damage)
{
	struct identity *id = new_ed25519();
	struct identity_pub *pub = NULL;
	char *line = NULL, *bad;
	const char *b64;
	size_t n;

	cr_assert_eq(identity_pub_format_line(&line, identity_public(id), NULL), 0);
	b64 = strchr(line, ' ') + 1;
	n = strlen(line) + 32;
	bad = malloc(n);
	/* The prefix must name the key inside. */
	snprintf(bad, n, "sotto-rsa %s", b64);
	cr_assert_eq(identity_pub_parse_line(&pub, NULL, bad), SOTTO_ERR_FORMAT);
	snprintf(bad, n, "ssh-ed25519 %s", b64);
	cr_assert_eq(identity_pub_parse_line(&pub, NULL, bad), SOTTO_ERR_FORMAT);
	/* Unpadded base64 is not the canonical form. */
	snprintf(bad, n, "sotto-ed25519 %.*s", (int)strcspn(b64, "="), b64);
	cr_assert_eq(identity_pub_parse_line(&pub, NULL, bad), SOTTO_ERR_FORMAT);
	/* Cut short, or a character changed. */
	snprintf(bad, n, "sotto-ed25519 %.20s", b64);
	cr_assert_eq(identity_pub_parse_line(&pub, NULL, bad), SOTTO_ERR_FORMAT);
	snprintf(bad, n, "sotto-ed25519 %s", b64);
	bad[16] = '!';
	cr_assert_eq(identity_pub_parse_line(&pub, NULL, bad), SOTTO_ERR_FORMAT);
	cr_assert_eq(identity_pub_parse_line(&pub, NULL, "sotto-ed25519"), SOTTO_ERR_FORMAT);
	cr_assert_eq(identity_pub_parse_line(&pub, NULL, ""), SOTTO_ERR_FORMAT);
	cr_assert_eq(identity_pub_parse_line(&pub, NULL, "random text here"), SOTTO_ERR_FORMAT);
	snprintf(bad, n, "sotto-ed25519 %s ctl\x01", b64);
	cr_assert_eq(identity_pub_parse_line(&pub, NULL, bad), SOTTO_ERR_FORMAT);
	cr_assert_null(pub);
	free(bad);
	free(line);
	identity_free(id);
}

Test(identity, pub_file_is_one_line)
{
	struct identity *id = new_ed25519();
	struct identity_pub *pub = NULL;
	char *line = NULL, *comment = NULL;
	FILE *f;

	cr_assert_eq(identity_pub_format_line(&line, identity_public(id), "c"), 0);
	f = fopen(at("a.pub"), "w");
	fprintf(f, "%s\n\n", line);
	fclose(f);
	cr_assert_eq(identity_pub_load(&pub, &comment, at("a.pub")), 0);
	cr_assert_str_eq(comment, "c");
	free(comment);
	identity_pub_free(pub);
	f = fopen(at("b.pub"), "w");
	fprintf(f, "%s\n%s\n", line, line);
	fclose(f);
	cr_assert_eq(identity_pub_load(&pub, &comment, at("b.pub")), SOTTO_ERR_FORMAT);
	cr_assert_eq(identity_pub_load(&pub, &comment, at("none.pub")), SOTTO_ERR_NOTFOUND);
	free(line);
	identity_free(id);
}

Test(identity, from_der_accepts_only_identities)
{
	struct identity *id = new_ed25519();
	struct identity_pub *pub = NULL, *dup = NULL;
	EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *rsa2048 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	struct identity *bad = NULL;
	uint8_t *der = NULL;
	size_t len = 0;

	cr_assert_eq(identity_pub_from_der(&pub, id->pub.der, id->pub.derlen), 0);
	cr_assert_eq(identity_pub_dup(&dup, pub), 0);
	cr_assert(identity_pub_equal(pub, dup));
	cr_assert_arr_eq(pub->ed25519, id->pub.ed25519, 32);
	identity_pub_free(pub);
	identity_pub_free(dup);
	cr_assert_eq(
	        identity_pub_from_der(&pub, id->pub.der, id->pub.derlen - 1), SOTTO_ERR_FORMAT);

	cr_assert_eq(pkey_spki_der(&der, &len, ec), 0);
	cr_assert_eq(identity_pub_from_der(&pub, der, len), SOTTO_ERR_UNSUPPORTED);
	free(der);
	cr_assert_eq(pkey_spki_der(&der, &len, rsa2048), 0);
	cr_assert_eq(identity_pub_from_der(&pub, der, len), SOTTO_ERR_UNSUPPORTED);
	free(der);
	cr_assert_null(pub);
	cr_assert_eq(identity_from_pkey(&bad, rsa2048), SOTTO_ERR_UNSUPPORTED);
	cr_assert_eq(identity_from_pkey(&bad, ec), SOTTO_ERR_UNSUPPORTED);
	cr_assert_null(bad);
	cr_assert_eq(identity_generate(&bad, IDENTITY_RSA, 2048), SOTTO_ERR_UNSUPPORTED);
	cr_assert_eq(identity_generate(&bad, 99, 0), SOTTO_ERR_INVALID);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(rsa2048);
	identity_free(id);
}

Test(identity, load_refuses_other_keys)
{
	EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	struct identity *id = NULL;
	char *pem = NULL;
	size_t len = 0;
	FILE *f;

	cr_assert_eq(pkey_private_to_pem(&pem, &len, ec, NULL, NULL), 0);
	cr_assert_eq(keyfile_write(at("ec"), pem, len, 0600, 0), 0);
	cr_assert_eq(identity_load(&id, NULL, at("ec"), NULL), SOTTO_ERR_UNSUPPORTED);
	f = fopen(at("junk"), "w");
	fputs("this is not a key\n", f);
	fclose(f);
	cr_assert_eq(identity_load(&id, NULL, at("junk"), NULL), SOTTO_ERR_FORMAT);
	f = fopen(at("cut"), "w");
	fwrite(pem, 1, len / 2, f);
	fclose(f);
	cr_assert_eq(identity_load(&id, NULL, at("cut"), NULL), SOTTO_ERR_SHORT);
	cr_assert_null(id);
	pkey_free_buf(pem, len);
	EVP_PKEY_free(ec);
}

/* RSA keys are slow to make: one test covers them. */
Test(identity, rsa_3072, .timeout = 60)
{
	struct identity *id = NULL, *back = NULL;
	struct identity_pub *pub = NULL;
	char *line = NULL, *comment = NULL;
	uint8_t sig[IDENTITY_SIG_MAX];
	size_t siglen = 0;

	cr_assert_eq(identity_generate(&id, IDENTITY_RSA, 3072), 0);
	cr_assert_eq(id->pub.type, IDENTITY_RSA);
	cr_assert_eq(id->pub.bits, 3072);
	cr_assert_null(id->ed25519_sk);
	cr_assert_str_eq(identity_type_name(id->pub.type), "RSA");
	cr_assert_eq(sign_verify(id, identity_public(id)), 0);
	cr_assert_eq(identity_sign(sig, sizeof(sig), &siglen, id, (const uint8_t *)"m", 1), 0);
	cr_assert_eq(siglen, 384);

	cr_assert_eq(identity_pub_format_line(&line, identity_public(id), "rsa user"), 0);
	cr_assert(strncmp(line, "sotto-rsa ", 10) == 0);
	cr_assert_eq(identity_pub_parse_line(&pub, &comment, line), 0);
	cr_assert(identity_pub_equal(pub, identity_public(id)));
	cr_assert_eq(pub->bits, 3072);
	cr_assert_eq(identity_pub_verify(pub, sig, siglen, (const uint8_t *)"m", 1), 0);
	cr_assert_eq(
	        identity_pub_verify(pub, sig, siglen, (const uint8_t *)"n", 1), SOTTO_ERR_VERIFY);

	cr_assert_eq(identity_save(id, at("rsa"), "pw", "rsa user", 0), 0);
	cr_assert_eq(identity_load(&back, NULL, at("rsa"), "pw"), 0);
	cr_assert(identity_pub_equal(identity_public(back), identity_public(id)));
	cr_assert_eq(sign_verify(back, pub), 0);
	cr_assert_eq(identity_load(&back, NULL, at("rsa"), "pW"), SOTTO_ERR_PASSPHRASE);

	free(comment);
	free(line);
	identity_pub_free(pub);
	identity_free(back);
	identity_free(id);
}
