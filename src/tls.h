/*
 * TLS 1.3 contexts for sottod and the client, and the channel binding used by
 * login.  Every SSL_CTX returned is owned by the caller (SSL_CTX_free).  Not
 * thread-safe: call from the event-loop thread.
 */
#ifndef SOTTO_TLS_H
#define SOTTO_TLS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "crypto/err.h"

#define TLS_EXPORTER_LABEL  "EXPORTER-sotto-auth"
#define TLS_EXPORTER_BYTES  32
#define TLS_SPKI_HASH_BYTES 32

/*
 * A server context: TLS 1.3 only, no compression or renegotiation, X25519
 * preferred, loaded from a PEM certificate and key.  On failure err holds a
 * sentence naming the file.
 */
int tls_server_ctx_new(SSL_CTX **out, const char *cert_path, const char *key_path, char *err,
        size_t errlen) SOTTO_WUR;

/*
 * A client context: TLS 1.3 only.  With ca_path, ordinary X.509 verification
 * against that CA file (the hostname is checked per connection by
 * tls_client_set_host); without it, no chain verification is done here and the
 * caller must pin the peer's SPKI with tls_peer_spki_sha256.
 */
int tls_client_ctx_new(SSL_CTX **out, const char *ca_path, char *err, size_t errlen) SOTTO_WUR;

/* Set SNI and, when the context verifies chains, the expected host name. */
int tls_client_set_host(SSL *ssl, const char *host) SOTTO_WUR;

/* SHA-256 of the peer certificate's DER SubjectPublicKeyInfo. */
int tls_peer_spki_sha256(SSL *ssl, uint8_t out[TLS_SPKI_HASH_BYTES]) SOTTO_WUR;

/* SHA-256 of the SubjectPublicKeyInfo of the certificate in ctx (the server's own). */
int tls_ctx_spki_sha256(SSL_CTX *ctx, uint8_t out[TLS_SPKI_HASH_BYTES]) SOTTO_WUR;

/* 32 bytes of keying material under TLS_EXPORTER_LABEL, binding login to this channel. */
int tls_exporter(SSL *ssl, uint8_t out[TLS_EXPORTER_BYTES]) SOTTO_WUR;

/* Format an SPKI hash as "SHA256:" + unpadded base64 (the form users compare). */
void tls_format_fingerprint(char *out, size_t outlen, const uint8_t hash[TLS_SPKI_HASH_BYTES]);

#endif
