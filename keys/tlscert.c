/* The server's TLS key and self-signed certificate; see tlscert.h. */
#include "config.h"

#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "crypto/util.h"

#include "keyfile.h"
#include "pkey.h"
#include "tlscert.h"

#define TLSCERT_SERIALBYTES 16
#define TLSCERT_CN_MAX      64 /* ub-common-name in RFC 5280 */

/* 1 if name ends with suffix. */
static int
tlscert_has_suffix(const char *name, const char *suffix)
{
	size_t n = strlen(name), s = strlen(suffix);

	return n >= s && strcmp(name + n - s, suffix) == 0;
}

int
tlscert_paths(char **keypath, char **crtpath, const char *base)
{
	size_t n, cap;
	int r = SOTTO_ERR_NOMEM;

	*keypath = NULL;
	*crtpath = NULL;
	if (base == NULL || *base == '\0')
		return SOTTO_ERR_INVALID;
	n = strlen(base);
	if (tlscert_has_suffix(base, TLSCERT_KEY_SUFFIX) ||
	        tlscert_has_suffix(base, TLSCERT_CRT_SUFFIX))
		n -= strlen(TLSCERT_KEY_SUFFIX);
	if (n == 0 || base[n - 1] == '/')
		return SOTTO_ERR_INVALID;
	cap = n + strlen(TLSCERT_KEY_SUFFIX) + 1;
	if ((*keypath = malloc(cap)) == NULL || (*crtpath = malloc(cap)) == NULL)
		goto out;
	snprintf(*keypath, cap, "%.*s%s", (int)n, base, TLSCERT_KEY_SUFFIX);
	snprintf(*crtpath, cap, "%.*s%s", (int)n, base, TLSCERT_CRT_SUFFIX);
	r = 0;
out:
	if (r != 0) {
		free(*keypath);
		free(*crtpath);
		*keypath = *crtpath = NULL;
	}
	return r;
}

/* The IP address in name (IPv4, IPv6, or [IPv6]) into addr; its length, or 0 if none. */
static size_t
tlscert_parse_ip(const char *name, unsigned char addr[16])
{
	char inner[INET6_ADDRSTRLEN + 1];
	size_t n = strlen(name);

	if (inet_pton(AF_INET, name, addr) == 1)
		return 4;
	if (inet_pton(AF_INET6, name, addr) == 1)
		return 16;
	if (n > 2 && n - 2 < sizeof(inner) && name[0] == '[' && name[n - 1] == ']') {
		memcpy(inner, name + 1, n - 2);
		inner[n - 2] = '\0';
		if (inet_pton(AF_INET6, inner, addr) == 1)
			return 16;
	}
	return 0;
}

int
tlscert_name_check(const char *name)
{
	unsigned char addr[16];
	const char *p = name;
	size_t label = 0;

	if (tlscert_parse_ip(name, addr) != 0)
		return 0;
	if (*name == '\0' || strlen(name) > TLSCERT_NAME_MAX)
		return SOTTO_ERR_FORMAT;
	if (strncmp(p, "*.", 2) == 0)
		p += 2;
	for (; *p != '\0'; p++) {
		if (*p == '.') {
			if (label == 0 || p[-1] == '-')
				return SOTTO_ERR_FORMAT;
			label = 0;
			continue;
		}
		if ((unsigned char)*p >= 0x80 ||
		        (!isalnum((unsigned char)*p) && !(*p == '-' && label > 0)))
			return SOTTO_ERR_FORMAT;
		if (++label > 63)
			return SOTTO_ERR_FORMAT;
	}
	/* A trailing dot (the root) is not allowed in certificates. */
	if (label == 0 || p[-1] == '-')
		return SOTTO_ERR_FORMAT;
	return 0;
}

void
tlscert_names_free(char **names)
{
	size_t i;

	if (names == NULL)
		return;
	for (i = 0; names[i] != NULL; i++)
		free(names[i]);
	free(names);
}

int
tlscert_names_parse(char ***names, size_t *n, const char *csv, const char **bad)
{
	char **list = NULL;
	const char *p = csv, *end;
	size_t count = 1, i = 0, len;
	int r = SOTTO_ERR_NOMEM;

	*names = NULL;
	*n = 0;
	if (bad != NULL)
		*bad = csv;
	for (end = csv; *end != '\0'; end++)
		if (*end == ',')
			count++;
	if (count > TLSCERT_MAX_NAMES)
		return SOTTO_ERR_RANGE;
	if ((list = calloc(count + 1, sizeof(*list))) == NULL)
		return SOTTO_ERR_NOMEM;
	for (;;) {
		len = strcspn(p, ",");
		if ((list[i] = strndup(p, len)) == NULL)
			goto out;
		if (tlscert_name_check(list[i++]) != 0) {
			if (bad != NULL)
				*bad = p;
			r = SOTTO_ERR_FORMAT;
			goto out;
		}
		if (p[len] == '\0')
			break;
		p += len + 1;
	}
	*names = list;
	*n = i;
	list = NULL;
	r = 0;
out:
	tlscert_names_free(list);
	return r;
}

/* subjectAltName from the names, each an IP address or else a DNS name. */
static int
tlscert_add_san(X509 *cert, const struct tlscert_params *p)
{
	GENERAL_NAMES *gens = NULL;
	GENERAL_NAME *gen = NULL;
	ASN1_OCTET_STRING *ip = NULL;
	ASN1_IA5STRING *dns = NULL;
	unsigned char addr[16];
	size_t i, alen;
	int r = SOTTO_ERR_CRYPTO;

	if ((gens = sk_GENERAL_NAME_new_null()) == NULL)
		goto out;
	for (i = 0; i < p->nnames; i++) {
		if (tlscert_name_check(p->names[i]) != 0) {
			r = SOTTO_ERR_FORMAT;
			goto out;
		}
		if ((gen = GENERAL_NAME_new()) == NULL)
			goto out;
		if ((alen = tlscert_parse_ip(p->names[i], addr)) != 0) {
			if ((ip = ASN1_OCTET_STRING_new()) == NULL ||
			        ASN1_OCTET_STRING_set(ip, addr, (int)alen) != 1)
				goto out;
			GENERAL_NAME_set0_value(gen, GEN_IPADD, ip);
			ip = NULL;
		} else {
			if ((dns = ASN1_IA5STRING_new()) == NULL ||
			        ASN1_STRING_set(dns, p->names[i], -1) != 1)
				goto out;
			GENERAL_NAME_set0_value(gen, GEN_DNS, dns);
			dns = NULL;
		}
		if (sk_GENERAL_NAME_push(gens, gen) == 0)
			goto out;
		gen = NULL;
	}
	if (X509_add1_ext_i2d(cert, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1)
		goto out;
	r = 0;
out:
	ASN1_OCTET_STRING_free(ip);
	ASN1_IA5STRING_free(dns);
	GENERAL_NAME_free(gen);
	GENERAL_NAMES_free(gens);
	return r;
}

/* One extension from OpenSSL's configuration syntax (fixed strings only). */
static int
tlscert_add_ext(X509 *cert, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext;
	int ok;

	if ((ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value)) == NULL)
		return SOTTO_ERR_CRYPTO;
	ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? 0 : SOTTO_ERR_CRYPTO;
}

/* A positive, non-zero random serial number of TLSCERT_SERIALBYTES bytes. */
static int
tlscert_set_serial(X509 *cert)
{
	unsigned char raw[TLSCERT_SERIALBYTES];
	BIGNUM *bn = NULL;
	int r = SOTTO_ERR_CRYPTO;

	sotto_random(raw, sizeof(raw));
	raw[0] &= 0x7f;
	raw[0] |= 0x40;
	if ((bn = BN_bin2bn(raw, sizeof(raw), NULL)) == NULL)
		goto out;
	if (BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) == NULL)
		goto out;
	r = 0;
out:
	BN_free(bn);
	return r;
}

/* The subject CN: the first DNS name that fits, else TLSCERT_DEFAULT_CN. */
static const char *
tlscert_pick_cn(const struct tlscert_params *p)
{
	unsigned char addr[16];
	size_t i;

	for (i = 0; i < p->nnames; i++)
		if (tlscert_parse_ip(p->names[i], addr) == 0 &&
		        strlen(p->names[i]) <= TLSCERT_CN_MAX)
			return p->names[i];
	return TLSCERT_DEFAULT_CN;
}

int
tlscert_make(EVP_PKEY **keyp, X509 **certp, const struct tlscert_params *p)
{
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	X509_NAME *name = NULL;
	X509V3_CTX ctx;
	int r = SOTTO_ERR_CRYPTO;

	*keyp = NULL;
	*certp = NULL;
	if (p->days < 1 || p->days > TLSCERT_MAX_DAYS || p->nnames > TLSCERT_MAX_NAMES)
		return SOTTO_ERR_RANGE;
	if (p->ecdsa)
		key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	else
		key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (key == NULL)
		goto out;
	if ((cert = X509_new()) == NULL || X509_set_version(cert, X509_VERSION_3) != 1)
		goto out;
	if ((r = tlscert_set_serial(cert)) != 0)
		goto out;
	r = SOTTO_ERR_CRYPTO;
	if (X509_gmtime_adj(X509_getm_notBefore(cert), -TLSCERT_BACKDATE) == NULL ||
	        X509_gmtime_adj(X509_getm_notAfter(cert), (long)p->days * 24 * 60 * 60) == NULL)
		goto out;
	if ((name = X509_NAME_new()) == NULL ||
	        X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
	                (const unsigned char *)tlscert_pick_cn(p), -1, -1, 0) != 1)
		goto out;
	if (X509_set_subject_name(cert, name) != 1 || X509_set_issuer_name(cert, name) != 1 ||
	        X509_set_pubkey(cert, key) != 1)
		goto out;
	X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
	if ((r = tlscert_add_ext(cert, &ctx, NID_basic_constraints, "critical,CA:FALSE")) != 0 ||
	        (r = tlscert_add_ext(cert, &ctx, NID_key_usage, "critical,digitalSignature")) !=
	                0 ||
	        (r = tlscert_add_ext(cert, &ctx, NID_ext_key_usage, "serverAuth")) != 0 ||
	        (r = tlscert_add_ext(cert, &ctx, NID_subject_key_identifier, "hash")) != 0)
		goto out;
	if (p->nnames > 0 && (r = tlscert_add_san(cert, p)) != 0)
		goto out;
	r = SOTTO_ERR_CRYPTO;
	/* Ed25519 signs the message itself and takes no separate digest. */
	if (X509_sign(cert, key, p->ecdsa ? EVP_sha256() : NULL) <= 0)
		goto out;
	*keyp = key;
	*certp = cert;
	key = NULL;
	cert = NULL;
	r = 0;
out:
	X509_NAME_free(name);
	X509_free(cert);
	EVP_PKEY_free(key);
	ERR_clear_error();
	return r;
}

/* The certificate as PEM text in a new string. */
static int
tlscert_to_pem(char **out, size_t *len, X509 *cert)
{
	BIO *bio;
	BUF_MEM *mem = NULL;
	int r = SOTTO_ERR_CRYPTO;

	*out = NULL;
	*len = 0;
	if ((bio = BIO_new(BIO_s_mem())) == NULL)
		return SOTTO_ERR_NOMEM;
	if (PEM_write_bio_X509(bio, cert) != 1 || BIO_get_mem_ptr(bio, &mem) != 1)
		goto out;
	if ((*out = malloc(mem->length + 1)) == NULL) {
		r = SOTTO_ERR_NOMEM;
		goto out;
	}
	memcpy(*out, mem->data, mem->length);
	(*out)[mem->length] = '\0';
	*len = mem->length;
	r = 0;
out:
	BIO_free(bio);
	ERR_clear_error();
	return r;
}

int
tlscert_generate(X509 **certout, const char *base, const struct tlscert_params *p,
        const char *passphrase, int force)
{
	struct keyfile_stage keyst = {NULL, NULL}, crtst = {NULL, NULL};
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	char *keypath = NULL, *crtpath = NULL, *keypem = NULL, *crtpem = NULL;
	size_t keylen = 0, crtlen = 0;
	int r, saved = 0, committed = 0;

	if (certout != NULL)
		*certout = NULL;
	if ((r = tlscert_paths(&keypath, &crtpath, base)) != 0)
		goto out;
	if (!force &&
	        ((r = keyfile_check(keypath, 0)) != 0 || (r = keyfile_check(crtpath, 0)) != 0)) {
		saved = errno;
		goto out;
	}
	if ((r = tlscert_make(&key, &cert, p)) != 0)
		goto out;
	if ((r = pkey_private_to_pem(&keypem, &keylen, key, passphrase, NULL)) != 0 ||
	        (r = tlscert_to_pem(&crtpem, &crtlen, cert)) != 0)
		goto out;
	if ((r = keyfile_stage(&keyst, keypath, keypem, keylen, KEYFILE_MODE_PRIVATE)) != 0 ||
	        (r = keyfile_stage(&crtst, crtpath, crtpem, crtlen, KEYFILE_MODE_PUBLIC)) != 0 ||
	        (r = keyfile_commit(&keyst, force)) != 0) {
		saved = errno;
		goto out;
	}
	committed = 1;
	if ((r = keyfile_commit(&crtst, force)) != 0) {
		saved = errno;
		goto out;
	}
	committed = 0;
	if (certout != NULL) {
		*certout = cert;
		cert = NULL;
	}
	r = 0;
out:
	/* A key without its certificate would stop the server from making a new pair. */
	if (r != 0 && committed && !force)
		unlink(keypath);
	keyfile_discard(&keyst);
	keyfile_discard(&crtst);
	pkey_free_buf(keypem, keylen);
	free(crtpem);
	free(keypath);
	free(crtpath);
	EVP_PKEY_free(key);
	X509_free(cert);
	if (saved != 0)
		errno = saved;
	return r;
}

int
tlscert_from_pem(X509 **out, const char *pem, size_t len)
{
	const char *begin, *tag = "-----BEGIN CERTIFICATE-----";
	BIO *bio = NULL;
	int r = SOTTO_ERR_FORMAT;

	*out = NULL;
	if (len > PKEY_PEM_MAX)
		return SOTTO_ERR_RANGE;
	if ((begin = memmem(pem, len, tag, strlen(tag))) == NULL)
		return SOTTO_ERR_FORMAT;
	if (memmem(begin, len - (size_t)(begin - pem), "-----END CERTIFICATE-----", 25) == NULL)
		return SOTTO_ERR_SHORT;
	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL)
		return SOTTO_ERR_NOMEM;
	if ((*out = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
		r = 0;
	BIO_free(bio);
	ERR_clear_error();
	return r;
}

int
tlscert_load_cert(X509 **out, const char *path)
{
	uint8_t *data = NULL;
	size_t len = 0;
	int r;

	*out = NULL;
	if ((r = keyfile_read(path, PKEY_PEM_MAX, &data, &len)) != 0)
		return r == SOTTO_ERR_RANGE ? SOTTO_ERR_FORMAT : r;
	r = tlscert_from_pem(out, (const char *)data, len);
	keyfile_free(data, len);
	return r;
}

int
tlscert_load_key(EVP_PKEY **out, const char *path, const char *passphrase)
{
	uint8_t *data = NULL;
	size_t len = 0;
	int r;

	*out = NULL;
	if ((r = keyfile_read(path, PKEY_PEM_MAX, &data, &len)) != 0)
		return r == SOTTO_ERR_RANGE ? SOTTO_ERR_FORMAT : r;
	r = pkey_private_from_pem(out, NULL, (const char *)data, len, passphrase);
	keyfile_free(data, len);
	return r;
}

int
tlscert_check_pair(X509 *cert, EVP_PKEY *key)
{
	int ok = X509_check_private_key(cert, key);

	ERR_clear_error();
	return ok == 1 ? 0 : SOTTO_ERR_VERIFY;
}

int
tlscert_spki_sha256(uint8_t out[HASH_SHA256_BYTES], X509 *cert)
{
	unsigned char *der = NULL;
	int n;

	if ((n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der)) <= 0) {
		ERR_clear_error();
		return SOTTO_ERR_FORMAT;
	}
	hash_sha256(out, der, (size_t)n);
	OPENSSL_free(der);
	return 0;
}

int
tlscert_spki_fingerprint(char out[FINGERPRINT_LEN], X509 *cert)
{
	uint8_t digest[HASH_SHA256_BYTES];
	int r;

	if ((r = tlscert_spki_sha256(digest, cert)) != 0)
		return r;
	fingerprint_format(out, digest);
	return 0;
}

char *
tlscert_common_name(X509 *cert)
{
	X509_NAME *name = X509_get_subject_name(cert);
	X509_NAME_ENTRY *e;
	unsigned char *utf8 = NULL;
	char *s = NULL;
	int i, n;

	if (name == NULL || (i = X509_NAME_get_index_by_NID(name, NID_commonName, -1)) < 0)
		return NULL;
	if ((e = X509_NAME_get_entry(name, i)) == NULL)
		return NULL;
	if ((n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e))) < 0)
		return NULL;
	/* A name with control characters could rewrite the terminal; drop it. */
	for (i = 0; i < n; i++)
		if (utf8[i] < 0x20 || utf8[i] == 0x7f)
			goto out;
	s = strndup((const char *)utf8, (size_t)n);
out:
	OPENSSL_free(utf8);
	return s;
}
