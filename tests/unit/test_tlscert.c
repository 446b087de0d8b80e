/* Tests for keys/tlscert: the server's key and self-signed certificate. */
#include "config.h"

#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "crypto/util.h"
#include "keys/keyfile.h"
#include "keys/pkey.h"
#include "keys/tlscert.h"
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
	tdir_make(dir, sizeof(dir), "test_tlscert");
}

static void
teardown(void)
{
	tdir_remove(dir);
}

TestSuite(tlscert, .init = setup, .fini = teardown);

static const char *
at(const char *name)
{
	return tdir_at(dir, name);
}

static void
check_paths(const char *base, const char *key, const char *crt)
{
	char *k = NULL, *c = NULL;

	cr_assert_eq(tlscert_paths(&k, &c, base), 0, "%s", base);
	cr_assert_str_eq(k, key);
	cr_assert_str_eq(c, crt);
	free(k);
	free(c);
}

Test(tlscert, file_names)
{
	char *k = NULL, *c = NULL;

	check_paths("dir/server", "dir/server.key", "dir/server.crt");
	check_paths("dir/server.key", "dir/server.key", "dir/server.crt");
	check_paths("dir/server.crt", "dir/server.key", "dir/server.crt");
	check_paths("x.pem", "x.pem.key", "x.pem.crt");
	cr_assert_eq(tlscert_paths(&k, &c, ""), SOTTO_ERR_INVALID);
	cr_assert_eq(tlscert_paths(&k, &c, ".key"), SOTTO_ERR_INVALID);
	cr_assert_eq(tlscert_paths(&k, &c, "dir/"), SOTTO_ERR_INVALID);
	cr_assert_eq(tlscert_paths(&k, &c, "dir/.crt"), SOTTO_ERR_INVALID);
	cr_assert_null(k);
	cr_assert_null(c);
}

Test(tlscert, name_syntax)
{
	static const char *const good[] = {"example.org", "a", "chat.example.org", "*.example.org",
	        "xn--bcher-kva.example", "a-b.c-d", "127.0.0.1", "::1", "[::1]", "fe80::1",
	        "2001:db8::42", NULL};
	static const char *const bad[] = {"", "-a.org", "a-.org", "a..b", "a.b.", ".a", "exa mple",
	        "ex_ample", "*.", "a.*.b", "*", "[1.2.3.4]", "[::1", "caf\xc3\xa9.org", "a,b",
	        NULL};
	char label[80], longname[300];
	size_t i;

	for (i = 0; good[i] != NULL; i++)
		cr_assert_eq(tlscert_name_check(good[i]), 0, "%s", good[i]);
	for (i = 0; bad[i] != NULL; i++)
		cr_assert_eq(tlscert_name_check(bad[i]), SOTTO_ERR_FORMAT, "%s", bad[i]);
	memset(label, 'a', 63);
	label[63] = '\0';
	cr_assert_eq(tlscert_name_check(label), 0);
	label[63] = 'a';
	label[64] = '\0';
	cr_assert_eq(tlscert_name_check(label), SOTTO_ERR_FORMAT);
	for (i = 0; i < 254; i += 2) {
		longname[i] = 'a';
		longname[i + 1] = '.';
	}
	longname[253] = '\0';
	cr_assert_eq(tlscert_name_check(longname), 0);
	longname[253] = 'b';
	longname[254] = '\0';
	cr_assert_eq(tlscert_name_check(longname), SOTTO_ERR_FORMAT);
}

Test(tlscert, names_list)
{
	char **names = NULL, many[400];
	const char *bad = NULL;
	size_t n = 0, i;

	cr_assert_eq(tlscert_names_parse(&names, &n, "a.org,127.0.0.1,::1", &bad), 0);
	cr_assert_eq(n, 3);
	cr_assert_str_eq(names[0], "a.org");
	cr_assert_str_eq(names[1], "127.0.0.1");
	cr_assert_str_eq(names[2], "::1");
	cr_assert_null(names[3]);
	tlscert_names_free(names);
	cr_assert_eq(tlscert_names_parse(&names, &n, "a.org,,b.org", &bad), SOTTO_ERR_FORMAT);
	cr_assert_str_eq(bad, ",b.org");
	cr_assert_eq(tlscert_names_parse(&names, &n, "a.org,b_c", &bad), SOTTO_ERR_FORMAT);
	cr_assert_str_eq(bad, "b_c");
	cr_assert_eq(tlscert_names_parse(&names, &n, "", NULL), SOTTO_ERR_FORMAT);
	cr_assert_null(names);
	for (i = 0; i < 101; i++) {
		many[2 * i] = 'a';
		many[2 * i + 1] = ',';
	}
	many[201] = '\0';
	cr_assert_eq(tlscert_names_parse(&names, &n, many, NULL), SOTTO_ERR_RANGE);
	many[199] = '\0';
	cr_assert_eq(tlscert_names_parse(&names, &n, many, NULL), 0);
	cr_assert_eq(n, 100);
	tlscert_names_free(names);
}

/* The subjectAltName entries as "DNS:x" / "IP:y" strings joined by commas. */
static void
san_text(X509 *cert, char *out, size_t cap)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	char ip[64];
	int i;

	out[0] = '\0';
	if (gens == NULL)
		return;
	for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);

		if (i > 0)
			strncat(out, ",", cap - strlen(out) - 1);
		if (g->type == GEN_DNS) {
			strncat(out, "DNS:", cap - strlen(out) - 1);
			strncat(out, (const char *)ASN1_STRING_get0_data(g->d.dNSName),
			        cap - strlen(out) - 1);
		} else if (g->type == GEN_IPADD) {
			snprintf(ip, sizeof(ip), "IP:%d", ASN1_STRING_length(g->d.iPAddress));
			strncat(out, ip, cap - strlen(out) - 1);
		}
	}
	GENERAL_NAMES_free(gens);
}

Test(tlscert, ed25519_certificate_contents)
{
	static const char *const names[] = {"chat.example.org", "chat", "127.0.0.1", "[::1]"};
	struct tlscert_params p = {names, 4, 30, 0};
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	char san[512], *cn;
	int days = 0, secs = 0;
	const ASN1_INTEGER *serial;

	cr_assert_eq(tlscert_make(&key, &cert, &p), 0);
	cr_assert_eq(pkey_kind(key), PKEY_ED25519);
	cr_assert_eq(X509_get_version(cert), X509_VERSION_3);
	cr_assert_eq(X509_get_signature_nid(cert), NID_ED25519);
	cn = tlscert_common_name(cert);
	cr_assert_str_eq(cn, "chat.example.org");
	free(cn);
	cr_assert_eq(X509_NAME_cmp(X509_get_subject_name(cert), X509_get_issuer_name(cert)), 0);
	cr_assert_eq(X509_verify(cert, key), 1);
	cr_assert_eq(tlscert_check_pair(cert, key), 0);

	cr_assert_eq(
	        ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(cert), X509_get0_notAfter(cert)),
	        1);
	cr_assert_eq(days, 30);
	cr_assert_eq(secs, TLSCERT_BACKDATE);
	cr_assert_leq(X509_cmp_current_time(X509_get0_notBefore(cert)), 0);

	serial = X509_get0_serialNumber(cert);
	cr_assert_eq(ASN1_STRING_length(serial), 16);
	cr_assert_eq(ASN1_STRING_type(serial), V_ASN1_INTEGER);

	cr_assert_eq(X509_get_extension_flags(cert) & EXFLAG_CA, 0);
	cr_assert_neq(X509_get_extension_flags(cert) & EXFLAG_BCONS, 0);
	cr_assert_eq(X509_get_key_usage(cert), KU_DIGITAL_SIGNATURE);
	cr_assert_eq(X509_get_extended_key_usage(cert), XKU_SSL_SERVER);
	cr_assert_not_null(X509_get0_subject_key_id(cert));

	san_text(cert, san, sizeof(san));
	cr_assert_str_eq(san, "DNS:chat.example.org,DNS:chat,IP:4,IP:16");
	cr_assert_eq(X509_check_host(cert, "chat.example.org", 0, 0, NULL), 1);
	cr_assert_eq(X509_check_host(cert, "other.example.org", 0, 0, NULL), 0);
	cr_assert_eq(X509_check_ip_asc(cert, "127.0.0.1", 0), 1);
	cr_assert_eq(X509_check_ip_asc(cert, "::1", 0), 1);
	X509_free(cert);
	EVP_PKEY_free(key);
}

Test(tlscert, ecdsa_certificate)
{
	static const char *const names[] = {"10.0.0.1", "srv.example"};
	struct tlscert_params p = {names, 2, 1, 1};
	EVP_PKEY *key = NULL, *other = NULL;
	X509 *cert = NULL;
	char *cn;

	cr_assert_eq(tlscert_make(&key, &cert, &p), 0);
	cr_assert_eq(pkey_kind(key), PKEY_ECDSA_P256);
	cr_assert_eq(X509_get_signature_nid(cert), NID_ecdsa_with_SHA256);
	cn = tlscert_common_name(cert);
	cr_assert_str_eq(cn, "srv.example"); /* the first DNS name, not the address */
	free(cn);
	cr_assert_eq(X509_verify(cert, key), 1);
	other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	cr_assert_eq(tlscert_check_pair(cert, other), SOTTO_ERR_VERIFY);
	EVP_PKEY_free(other);
	X509_free(cert);
	EVP_PKEY_free(key);
}

Test(tlscert, no_names_and_bad_parameters)
{
	static const char *const bad[] = {"not a name"};
	struct tlscert_params p = {NULL, 0, TLSCERT_DEFAULT_DAYS, 0};
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	char *cn;

	cr_assert_eq(tlscert_make(&key, &cert, &p), 0);
	cn = tlscert_common_name(cert);
	cr_assert_str_eq(cn, TLSCERT_DEFAULT_CN);
	free(cn);
	cr_assert_null(X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL));
	X509_free(cert);
	EVP_PKEY_free(key);

	p.days = 0;
	cr_assert_eq(tlscert_make(&key, &cert, &p), SOTTO_ERR_RANGE);
	p.days = TLSCERT_MAX_DAYS + 1;
	cr_assert_eq(tlscert_make(&key, &cert, &p), SOTTO_ERR_RANGE);
	p.days = 1;
	p.names = bad;
	p.nnames = 1;
	cr_assert_eq(tlscert_make(&key, &cert, &p), SOTTO_ERR_FORMAT);
	cr_assert_null(key);
	cr_assert_null(cert);
}

Test(tlscert, spki_fingerprint_is_over_the_public_key)
{
	struct tlscert_params p = {NULL, 0, 10, 0};
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	uint8_t digest[HASH_SHA256_BYTES], *der = NULL;
	char fp[FINGERPRINT_LEN], want[FINGERPRINT_LEN];
	size_t len = 0;

	cr_assert_eq(tlscert_make(&key, &cert, &p), 0);
	cr_assert_eq(pkey_spki_der(&der, &len, key), 0);
	fingerprint_sha256(want, der, len);
	cr_assert_eq(tlscert_spki_fingerprint(fp, cert), 0);
	cr_assert_str_eq(fp, want);
	cr_assert_eq(tlscert_spki_sha256(digest, cert), 0);
	fingerprint_format(fp, digest);
	cr_assert_str_eq(fp, want);
	free(der);
	X509_free(cert);
	EVP_PKEY_free(key);
}

Test(tlscert, generate_writes_the_pair)
{
	static const char *const names[] = {"localhost"};
	struct tlscert_params p = {names, 1, 825, 0};
	EVP_PKEY *key = NULL;
	X509 *cert = NULL, *back = NULL, *again = NULL;
	char fp1[FINGERPRINT_LEN], fp2[FINGERPRINT_LEN], fp3[FINGERPRINT_LEN];

	cr_assert_eq(tlscert_generate(&cert, at("server"), &p, NULL, 0), 0);
	cr_assert_eq(tdir_mode(at("server.key")), 0600);
	cr_assert_eq(tdir_mode(at("server.crt")), 0644);
	cr_assert_eq(tlscert_load_cert(&back, at("server.crt")), 0);
	cr_assert_eq(X509_cmp(cert, back), 0);
	cr_assert_eq(tlscert_load_key(&key, at("server.key"), NULL), 0);
	cr_assert_eq(tlscert_check_pair(back, key), 0);
	EVP_PKEY_free(key);

	/* Never over an existing pair without force, whichever name is given. */
	cr_assert_eq(tlscert_generate(NULL, at("server.crt"), &p, NULL, 0), SOTTO_ERR_EXISTS);
	cr_assert_eq(unlink(at("server.key")), 0);
	cr_assert_eq(tlscert_generate(NULL, at("server"), &p, NULL, 0), SOTTO_ERR_EXISTS);
	cr_assert_eq(access(at("server.key"), F_OK), -1);
	cr_assert_eq(tlscert_load_cert(&again, at("server.crt")), 0);
	cr_assert_eq(X509_cmp(cert, again), 0);
	X509_free(again);

	/* With force, a new key replaces both. */
	cr_assert_eq(tlscert_generate(&again, at("server.key"), &p, "pw", 1), 0);
	cr_assert_eq(tlscert_spki_fingerprint(fp1, cert), 0);
	cr_assert_eq(tlscert_spki_fingerprint(fp2, again), 0);
	cr_assert_str_neq(fp1, fp2);
	cr_assert_eq(tlscert_load_key(&key, at("server.key"), NULL), SOTTO_ERR_PASSPHRASE);
	cr_assert_eq(tlscert_load_key(&key, at("server.key"), "pw"), 0);
	X509_free(back);
	cr_assert_eq(tlscert_load_cert(&back, at("server.crt")), 0);
	cr_assert_eq(tlscert_spki_fingerprint(fp3, back), 0);
	cr_assert_str_eq(fp2, fp3);
	cr_assert_eq(tlscert_check_pair(back, key), 0);
	EVP_PKEY_free(key);
	X509_free(again);
	X509_free(back);
	X509_free(cert);

	cr_assert_eq(tlscert_generate(NULL, at("missing/server"), &p, NULL, 0), SOTTO_ERR_IO);
}

Test(tlscert, certificate_parsing)
{
	struct tlscert_params p = {NULL, 0, 10, 1};
	X509 *cert = NULL;
	FILE *f;
	char buf[4096];
	size_t n;

	cr_assert_eq(tlscert_generate(NULL, at("s"), &p, NULL, 0), 0);
	f = fopen(at("s.crt"), "r");
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	cr_assert_eq(tlscert_from_pem(&cert, buf, n / 2), SOTTO_ERR_SHORT);
	cr_assert_eq(tlscert_from_pem(&cert, "garbage", 7), SOTTO_ERR_FORMAT);
	cr_assert_eq(tlscert_load_cert(&cert, at("s.key")), SOTTO_ERR_FORMAT);
	cr_assert_eq(tlscert_load_cert(&cert, at("none.crt")), SOTTO_ERR_NOTFOUND);
	cr_assert_null(cert);
	cr_assert_eq(tlscert_from_pem(&cert, buf, n), 0);
	X509_free(cert);
}
