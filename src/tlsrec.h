/*
 * TLS 1.3 record protection (RFC 8446 section 5) for the server side of a
 * connection whose handshake OpenSSL did.  sottod frees the SSL object once
 * the handshake is over, since it is most of what an idle connection costs
 * (about 13 KiB in OpenSSL 3.0), and protects application data itself with
 * the traffic secrets that OpenSSL's key-log callback hands over.
 *
 * What is handled after the handshake: application data both ways; the
 * peer's KeyUpdate, answered with ours when it asks (section 4.6.3); our own
 * KeyUpdate before a key has protected 2^23 records; close_notify; alerts.
 * Anything else (other post-handshake messages, unprotected records, bad
 * tags, oversized records) is a fatal error with the alert to send.
 *
 * A struct tlsrec is embedded in its owner and holds only keys, IVs, secrets
 * and counters; tlsrec_wipe() clears it.  A struct tlsrec_engine holds what
 * every connection shares (fetched ciphers and one cipher context); one per
 * thread.  Not thread-safe.
 */
#ifndef SOTTO_TLSREC_H
#define SOTTO_TLSREC_H

#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <openssl/ssl.h>

#include "crypto/err.h"

#define TLSREC_SECRET_MAX 48 /* SHA-384 */
#define TLSREC_KEY_MAX    32 /* AES-256, ChaCha20 */
#define TLSREC_IV_BYTES   12
#define TLSREC_TAG_BYTES  16
#define TLSREC_HEADER     5
#define TLSREC_PLAIN_MAX  16384                                    /* 2^14 */
#define TLSREC_RECORD_MAX (TLSREC_HEADER + TLSREC_PLAIN_MAX + 256) /* 2^14 + 256 */
#define TLSREC_OVERHEAD   (TLSREC_HEADER + 1 + TLSREC_TAG_BYTES)   /* per record we send */
#define TLSREC_UPDATE_SEQ ((uint64_t)1 << 23) /* records per key before we update it */

/* Alert descriptions (RFC 8446 section 6). */
#define TLSREC_ALERT_CLOSE_NOTIFY       0
#define TLSREC_ALERT_UNEXPECTED_MESSAGE 10
#define TLSREC_ALERT_BAD_RECORD_MAC     20
#define TLSREC_ALERT_RECORD_OVERFLOW    22
#define TLSREC_ALERT_ILLEGAL_PARAMETER  47
#define TLSREC_ALERT_DECODE_ERROR       50
#define TLSREC_ALERT_INTERNAL_ERROR     80
#define TLSREC_ALERT_NONE               255 /* send nothing: the peer ended it */

/* The application traffic secrets the key-log callback saw during one handshake. */
struct tlsrec_secrets {
	uint8_t client[TLSREC_SECRET_MAX];
	uint8_t server[TLSREC_SECRET_MAX];
	size_t client_len, server_len;
};

struct tlsrec_dir {
	uint8_t secret[TLSREC_SECRET_MAX];
	uint8_t key[TLSREC_KEY_MAX];
	uint8_t iv[TLSREC_IV_BYTES];
	uint64_t seq;
};

struct tlsrec {
	uint8_t suite;        /* enum tlsrec_suite in tlsrec.c; 0: not set up */
	uint8_t hs_len;       /* bytes of a handshake message received so far */
	uint8_t hs[4 + 1];    /* the only one accepted: KeyUpdate */
	uint8_t update_due;   /* the peer asked for our KeyUpdate */
	struct tlsrec_dir rd; /* client to server */
	struct tlsrec_dir wr; /* server to client */
};

struct tlsrec_engine;

int tlsrec_engine_new(struct tlsrec_engine **out) SOTTO_WUR;
void tlsrec_engine_free(struct tlsrec_engine *e);

/* Keep the secret from one key-log line if it is an application traffic secret. */
void tlsrec_keylog(struct tlsrec_secrets *s, const char *line);

/*
 * Take over from ssl, whose handshake (server side) has just completed: the
 * negotiated suite and the secrets s captured.  SOTTO_ERR_UNSUPPORTED if the
 * suite is not one of the three this module implements or a secret is
 * missing; ssl is not changed either way.
 */
int tlsrec_init(struct tlsrec *t, struct tlsrec_engine *e, const SSL *ssl,
        const struct tlsrec_secrets *s) SOTTO_WUR;
void tlsrec_wipe(struct tlsrec *t);

/*
 * Open the whole records at in[0..len): append their application data to
 * plain and set *used to the bytes consumed (a partial record at the end is
 * left).  0; SOTTO_ERR_CLOSED after the peer's close_notify (what came before
 * it is in plain); or an error with *alert set to the alert to send
 * (TLSREC_ALERT_NONE after the peer's own fatal alert): SOTTO_ERR_VERIFY for a
 * record that does not authenticate, SOTTO_ERR_FORMAT or SOTTO_ERR_RANGE for a
 * malformed or oversized one, SOTTO_ERR_PROTO for the peer's alert.  in is
 * decrypted in place.
 */
int tlsrec_open(struct tlsrec *t, struct tlsrec_engine *e, uint8_t *in, size_t len, size_t *used,
        struct evbuffer *plain, uint8_t *alert) SOTTO_WUR;

/*
 * Protect up to about cap bytes of records into out: a KeyUpdate first if one
 * is due, then application data taken (and drained) from plain.  *outlen is
 * what was written, possibly 0 when cap is too small for a record.
 */
int tlsrec_seal(struct tlsrec *t, struct tlsrec_engine *e, struct evbuffer *plain, uint8_t *out,
        size_t cap, size_t *outlen) SOTTO_WUR;

/* One alert record (close_notify is a warning, anything else fatal) into out[0..cap). */
int tlsrec_seal_alert(struct tlsrec *t, struct tlsrec_engine *e, uint8_t desc, uint8_t *out,
        size_t cap, size_t *outlen) SOTTO_WUR;

#endif
