/*
 * The server's TLS key and self-signed X.509 certificate.  tlscert_generate()
 * makes an Ed25519 key (or ECDSA P-256, for older TLS stacks) and a v3
 * certificate for it with the given subjectAltName entries, and writes two
 * files from one base path: BASE.key (PKCS#8 PEM private key, mode 0600) and
 * BASE.crt (PEM certificate, mode 0644 less the umask).  A base ending in
 * ".key" or ".crt" has that suffix dropped first, so "server", "server.key"
 * and "server.crt" all name the pair server.key and server.crt.
 *
 * A client that does not use a CA pins the server by the SHA-256 of the
 * certificate's SubjectPublicKeyInfo (tlscert_spki_sha256); it changes only
 * when the key does, not when the certificate is renewed.
 *
 * The caller owns every EVP_PKEY, X509 and string returned.  Thread-safe.
 */
#ifndef SOTTO_KEYS_TLSCERT_H
#define SOTTO_KEYS_TLSCERT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "crypto/err.h"
#include "crypto/hash.h"

#include "fingerprint.h"

#define TLSCERT_DEFAULT_DAYS 825 /* the longest validity browsers accepted until 2020 */
#define TLSCERT_MAX_DAYS     3650
#define TLSCERT_BACKDATE     300 /* seconds notBefore lies in the past, for slow clocks */
#define TLSCERT_MAX_NAMES    100 /* subjectAltName entries */
#define TLSCERT_NAME_MAX     253 /* longest DNS name */
#define TLSCERT_KEY_SUFFIX   ".key"
#define TLSCERT_CRT_SUFFIX   ".crt"
#define TLSCERT_DEFAULT_CN   "sotto server"

struct tlscert_params {
	const char *const *names; /* subjectAltName entries: DNS names or IP addresses */
	size_t nnames;            /* 0 .. TLSCERT_MAX_NAMES; 0 means no subjectAltName */
	int days;                 /* validity, 1 .. TLSCERT_MAX_DAYS */
	int ecdsa;                /* 1: ECDSA P-256; 0: Ed25519 */
};

/*
 * The two file names for base (see above), in new strings; *keypath and
 * *crtpath set to NULL first.  SOTTO_ERR_INVALID for an empty base.
 */
int tlscert_paths(char **keypath, char **crtpath, const char *base) SOTTO_WUR;

/*
 * 0 if name may go in subjectAltName: an IPv4 or IPv6 address (brackets
 * allowed around IPv6), or a DNS name of letters, digits, '-' and '.' (a
 * leading "*." wildcard allowed) with labels of 1 to 63 characters.
 * SOTTO_ERR_FORMAT otherwise.
 */
int tlscert_name_check(const char *name) SOTTO_WUR;

/*
 * Split "host,host,..." into a new NULL-terminated array of new strings
 * (free with tlscert_names_free), checking each name; empty entries and more
 * than TLSCERT_MAX_NAMES names are SOTTO_ERR_FORMAT / SOTTO_ERR_RANGE.
 * *bad (if not NULL) points into csv at the offending entry on error.
 */
int tlscert_names_parse(char ***names, size_t *n, const char *csv, const char **bad) SOTTO_WUR;
void tlscert_names_free(char **names);

/*
 * Make a key and self-signed certificate in memory: version 3, a random
 * 128-bit serial, subject and issuer CN = the first DNS name (else
 * TLSCERT_DEFAULT_CN), valid from TLSCERT_BACKDATE seconds ago for p->days
 * days, basicConstraints CA:FALSE, keyUsage digitalSignature, extendedKeyUsage
 * serverAuth, subjectKeyIdentifier and the subjectAltName entries.
 */
int tlscert_make(EVP_PKEY **key, X509 **cert, const struct tlscert_params *p) SOTTO_WUR;

/*
 * tlscert_make(), then write BASE.key (encrypted with passphrase unless it is
 * NULL or "") and BASE.crt through temporary files.  Without force,
 * SOTTO_ERR_EXISTS if either file exists, and nothing is written.  *cert (if
 * cert is not NULL) receives the certificate, for printing its fingerprint.
 */
int tlscert_generate(X509 **cert, const char *base, const struct tlscert_params *p,
        const char *passphrase, int force) SOTTO_WUR;

/* Parse the first certificate of a PEM text; SOTTO_ERR_SHORT if truncated. */
int tlscert_from_pem(X509 **out, const char *pem, size_t len) SOTTO_WUR;

/* Read the first certificate of a PEM file. */
int tlscert_load_cert(X509 **out, const char *path) SOTTO_WUR;

/* Read a PKCS#8 PEM private key (Ed25519, ECDSA P-256 or RSA) as pkey_private_from_pem. */
int tlscert_load_key(EVP_PKEY **out, const char *path, const char *passphrase) SOTTO_WUR;

/* 0 if key is the private half of cert's public key, else SOTTO_ERR_VERIFY. */
int tlscert_check_pair(X509 *cert, EVP_PKEY *key) SOTTO_WUR;

/* SHA-256 over the DER SubjectPublicKeyInfo of cert: what clients pin. */
int tlscert_spki_sha256(uint8_t out[HASH_SHA256_BYTES], X509 *cert) SOTTO_WUR;

/* The same as "SHA256:" + unpadded base64, as sotto-keygen -l prints it. */
int tlscert_spki_fingerprint(char out[FINGERPRINT_LEN], X509 *cert) SOTTO_WUR;

/* The subject's common name as a new string, or NULL if it has none. */
char *tlscert_common_name(X509 *cert);

#endif
