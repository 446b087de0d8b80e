/* TLS 1.3 contexts and channel binding; see tls.h. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "crypto/hash.h"
#include "crypto/util.h"
#include "tls.h"

/* The first queued OpenSSL error as text, then the queue cleared. */
static const char *
tls_ossl_error(char *buf, size_t len)
{
	unsigned long e = ERR_get_error();

	if (e == 0)
		snprintf(buf, len, "unknown TLS error");
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
	return buf;
}

/* Options shared by both sides: TLS 1.3 only, no compression or renegotiation. */
static int
tls_ctx_common(SSL_CTX *ctx)
{
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1)
		return SOTTO_ERR_CRYPTO;
	SSL_CTX_set_options(ctx,
	        SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* Idle connections should not pin 34 KiB of record buffers each. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_set1_groups_list(ctx, "X25519:P-256") != 1)
		return SOTTO_ERR_CRYPTO;
	return 0;
}

int
tls_server_ctx_new(
        SSL_CTX **out, const char *cert_path, const char *key_path, char *err, size_t errlen)
{
	SSL_CTX *ctx = NULL;
	char ebuf[256];
	int r = SOTTO_ERR_CRYPTO;

	*out = NULL;
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		snprintf(err, errlen, "cannot create a TLS context: %s",
		        tls_ossl_error(ebuf, sizeof(ebuf)));
		goto out;
	}
	if (tls_ctx_common(ctx) != 0) {
		snprintf(err, errlen, "cannot configure TLS 1.3: %s",
		        tls_ossl_error(ebuf, sizeof(ebuf)));
		goto out;
	}
	/* No session cache: clients reconnect rarely, and it costs memory per session. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_path) != 1) {
		snprintf(err, errlen, "%s: cannot load the certificate: %s", cert_path,
		        tls_ossl_error(ebuf, sizeof(ebuf)));
		r = SOTTO_ERR_FORMAT;
		goto out;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_path, SSL_FILETYPE_PEM) != 1) {
		snprintf(err, errlen,
		        "%s: cannot load the private key (it must be unencrypted PEM): %s",
		        key_path, tls_ossl_error(ebuf, sizeof(ebuf)));
		r = SOTTO_ERR_FORMAT;
		goto out;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errlen, "%s does not match the certificate %s", key_path, cert_path);
		ERR_clear_error();
		r = SOTTO_ERR_FORMAT;
		goto out;
	}
	*out = ctx;
	ctx = NULL;
	r = 0;
out:
	SSL_CTX_free(ctx);
	return r;
}

int
tls_client_ctx_new(SSL_CTX **out, const char *ca_path, char *err, size_t errlen)
{
	SSL_CTX *ctx = NULL;
	char ebuf[256];
	int r = SOTTO_ERR_CRYPTO;

	*out = NULL;
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL || tls_ctx_common(ctx) != 0) {
		snprintf(err, errlen, "cannot create a TLS 1.3 context: %s",
		        tls_ossl_error(ebuf, sizeof(ebuf)));
		goto out;
	}
	if (ca_path != NULL) {
		if (SSL_CTX_load_verify_locations(ctx, ca_path, NULL) != 1) {
			snprintf(err, errlen, "%s: cannot load the CA certificates: %s", ca_path,
			        tls_ossl_error(ebuf, sizeof(ebuf)));
			r = SOTTO_ERR_FORMAT;
			goto out;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	} else {
		/* Pinning replaces chain verification; the caller checks the SPKI hash. */
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	*out = ctx;
	ctx = NULL;
	r = 0;
out:
	SSL_CTX_free(ctx);
	return r;
}

int
tls_client_set_host(SSL *ssl, const char *host)
{
	if (SSL_set_tlsext_host_name(ssl, host) != 1) {
		ERR_clear_error();
		/* An IP literal cannot be SNI; that is fine. */
	}
	if (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) {
		if (SSL_set1_host(ssl, host) != 1) {
			ERR_clear_error();
			return SOTTO_ERR_INVALID;
		}
	}
	return 0;
}

/* SHA-256 over the DER SubjectPublicKeyInfo of cert. */
static int
tls_cert_spki_sha256(X509 *cert, uint8_t out[TLS_SPKI_HASH_BYTES])
{
	unsigned char *der = NULL;
	int len;

	if (cert == NULL)
		return SOTTO_ERR_NOTFOUND;
	if ((len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der)) <= 0) {
		ERR_clear_error();
		return SOTTO_ERR_CRYPTO;
	}
	hash_sha256(out, der, (size_t)len);
	OPENSSL_free(der);
	return 0;
}

int
tls_peer_spki_sha256(SSL *ssl, uint8_t out[TLS_SPKI_HASH_BYTES])
{
	X509 *cert = SSL_get1_peer_certificate(ssl);
	int r;

	r = tls_cert_spki_sha256(cert, out);
	X509_free(cert);
	return r;
}

int
tls_ctx_spki_sha256(SSL_CTX *ctx, uint8_t out[TLS_SPKI_HASH_BYTES])
{
	return tls_cert_spki_sha256(SSL_CTX_get0_certificate(ctx), out);
}

int
tls_exporter(SSL *ssl, uint8_t out[TLS_EXPORTER_BYTES])
{
	if (SSL_export_keying_material(ssl, out, TLS_EXPORTER_BYTES, TLS_EXPORTER_LABEL,
	            strlen(TLS_EXPORTER_LABEL), NULL, 0, 0) != 1) {
		ERR_clear_error();
		return SOTTO_ERR_CRYPTO;
	}
	return 0;
}

void
tls_format_fingerprint(char *out, size_t outlen, const uint8_t hash[TLS_SPKI_HASH_BYTES])
{
	char b64[SOTTO_B64_LEN(TLS_SPKI_HASH_BYTES)];

	sotto_b64(b64, hash, TLS_SPKI_HASH_BYTES, 0);
	snprintf(out, outlen, "SHA256:%s", b64);
}
