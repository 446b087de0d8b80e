/*
 * Tests for src/tlsrec against OpenSSL itself: an OpenSSL client and an
 * OpenSSL server handshake over a socketpair, then the server's SSL is freed
 * and tlsrec speaks for it.  Each of the three TLS 1.3 suites carries data
 * both ways (records split across the buffer's chunks and across reads),
 * the client's KeyUpdate is honoured and answered, our own replaces a worn
 * key, close_notify ends the stream both ways, and tampered, unprotected,
 * oversized or unexpected records are refused with the right alert.
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "crypto/util.h"
#include "keys/tlscert.h"
#include "src/tlsrec.h"

static EVP_PKEY *key;
static X509 *cert;
static struct tlsrec_engine *eng;

static void
setup(void)
{
	struct tlscert_params p = {NULL, 0, 1, 0};

	cr_assert_eq(sotto_crypto_init(), 0);
	cr_assert_eq(tlscert_make(&key, &cert, &p), 0);
	cr_assert_eq(tlsrec_engine_new(&eng), 0);
}

static void
teardown(void)
{
	tlsrec_engine_free(eng);
	EVP_PKEY_free(key);
	X509_free(cert);
}

TestSuite(tlsrec, .init = setup, .fini = teardown, .timeout = 60);

struct pair {
	SSL_CTX *sctx, *cctx;
	SSL *cli;
	int fd[2]; /* [0] the server's end, [1] the client's */
	struct tlsrec_secrets sec;
	struct tlsrec t;
	uint8_t in[4 * TLSREC_RECORD_MAX]; /* bytes read by the server, not yet opened */
	size_t inlen;
};

static void
keylog_cb(const SSL *ssl, const char *line)
{
	struct pair *p = SSL_get_app_data(ssl);

	tlsrec_keylog(&p->sec, line);
}

/* Handshake with suite (NULL: OpenSSL's default), then hand the server side to tlsrec. */
static void
pair_open(struct pair *p, const char *suite)
{
	SSL *srv;
	int i, rs = 0, rc = 0;

	memset(p, 0, sizeof(*p));
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p->fd), 0);
	cr_assert_not_null(p->sctx = SSL_CTX_new(TLS_server_method()));
	cr_assert_not_null(p->cctx = SSL_CTX_new(TLS_client_method()));
	cr_assert_eq(SSL_CTX_set_min_proto_version(p->sctx, TLS1_3_VERSION), 1);
	cr_assert_eq(SSL_CTX_set_min_proto_version(p->cctx, TLS1_3_VERSION), 1);
	cr_assert_eq(SSL_CTX_set_num_tickets(p->sctx, 0), 1);
	cr_assert_eq(SSL_CTX_use_certificate(p->sctx, cert), 1);
	cr_assert_eq(SSL_CTX_use_PrivateKey(p->sctx, key), 1);
	SSL_CTX_set_keylog_callback(p->sctx, keylog_cb);
	if (suite != NULL) {
		cr_assert_eq(SSL_CTX_set_ciphersuites(p->sctx, suite), 1);
		cr_assert_eq(SSL_CTX_set_ciphersuites(p->cctx, suite), 1);
	}
	cr_assert_not_null(srv = SSL_new(p->sctx));
	cr_assert_not_null(p->cli = SSL_new(p->cctx));
	SSL_set_app_data(srv, p);
	cr_assert_eq(SSL_set_fd(srv, p->fd[0]), 1);
	cr_assert_eq(SSL_set_fd(p->cli, p->fd[1]), 1);
	SSL_set_accept_state(srv);
	SSL_set_connect_state(p->cli);
	for (i = 0; i < 100 && (rs != 1 || rc != 1); i++) {
		if (rc != 1)
			rc = SSL_do_handshake(p->cli);
		if (rs != 1)
			rs = SSL_do_handshake(srv);
	}
	cr_assert(rs == 1 && rc == 1, "handshake: server %d, client %d", rs, rc);
	cr_assert_not(SSL_has_pending(srv), "OpenSSL read past the handshake");
	cr_assert_eq(tlsrec_init(&p->t, eng, srv, &p->sec), 0);
	SSL_free(srv);
}

static void
pair_close(struct pair *p)
{
	tlsrec_wipe(&p->t);
	SSL_free(p->cli);
	SSL_CTX_free(p->sctx);
	SSL_CTX_free(p->cctx);
	close(p->fd[0]);
	close(p->fd[1]);
}

/* Write all of buf to fd (a socketpair with room enough for the test's bytes). */
static void
write_all(int fd, const uint8_t *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, buf, len);
		cr_assert_gt(n, 0, "write: %s", strerror(errno));
		buf += n;
		len -= (size_t)n;
	}
}

/* Seal all of plain (and any KeyUpdate due) and send it to the client. */
static void
server_send(struct pair *p, struct evbuffer *plain)
{
	static uint8_t out[8 * TLSREC_RECORD_MAX];
	size_t n;

	do {
		cr_assert_eq(tlsrec_seal(&p->t, eng, plain, out, sizeof(out), &n), 0);
		write_all(p->fd[0], out, n);
	} while (evbuffer_get_length(plain) > 0);
}

/* Read what the client sent and open it (chunk bytes per read); the result of tlsrec_open. */
static int
server_recv(struct pair *p, struct evbuffer *plain, size_t chunk, uint8_t *alert)
{
	size_t used;
	ssize_t n;
	int r = 0;

	for (;;) {
		n = read(p->fd[0], p->in + p->inlen,
		        chunk < sizeof(p->in) - p->inlen ? chunk : sizeof(p->in) - p->inlen);
		if (n <= 0)
			break;
		p->inlen += (size_t)n;
		r = tlsrec_open(&p->t, eng, p->in, p->inlen, &used, plain, alert);
		memmove(p->in, p->in + used, p->inlen - used);
		p->inlen -= used;
		if (r != 0)
			break;
	}
	return r;
}

/* The client reads exactly len bytes (they are all there already). */
static void
client_read(struct pair *p, uint8_t *buf, size_t len)
{
	size_t got = 0;
	int n;

	while (got < len) {
		n = SSL_read(p->cli, buf + got, (int)(len - got));
		cr_assert_gt(n, 0, "client SSL_read: error %d", SSL_get_error(p->cli, n));
		got += (size_t)n;
	}
}

static void
client_write(struct pair *p, const uint8_t *buf, size_t len)
{
	cr_assert_eq(SSL_write(p->cli, buf, (int)len), (int)len);
}

/* len bytes each way, client first; the server's side in chunks of `chunk` bytes per read. */
static void
exchange(struct pair *p, size_t len, size_t chunk)
{
	struct evbuffer *plain = evbuffer_new();
	uint8_t *a = malloc(len), *b = malloc(len);
	uint8_t alert = 0;
	size_t i;

	cr_assert(plain != NULL && a != NULL && b != NULL);
	sotto_random(a, len);
	client_write(p, a, len);
	cr_assert_eq(server_recv(p, plain, chunk, &alert), 0, "alert %u", alert);
	cr_assert_eq(evbuffer_get_length(plain), len);
	cr_assert_eq(evbuffer_remove(plain, b, len), (int)len);
	cr_assert_arr_eq(a, b, len);
	/* Back in many small pieces, so that records span the buffer's chunks. */
	sotto_random(a, len);
	for (i = 0; i < len; i += 1000)
		cr_assert_eq(evbuffer_add(plain, a + i, len - i < 1000 ? len - i : 1000), 0);
	server_send(p, plain);
	client_read(p, b, len);
	cr_assert_arr_eq(a, b, len);
	free(a);
	free(b);
	evbuffer_free(plain);
}

Test(tlsrec, each_suite_carries_data_both_ways)
{
	static const char *const suites[] = {
	        "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"};
	struct pair p;
	size_t i;

	for (i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
		pair_open(&p, suites[i]);
		exchange(&p, 1, 65536);
		exchange(&p, 300, 7); /* a record arriving a few bytes at a time */
		exchange(&p, 3 * TLSREC_PLAIN_MAX + 5, 65536); /* several full records */
		exchange(&p, 100000, 1500);
		pair_close(&p);
	}
}

/* Output in more chunks than one record takes at once (16) still goes out whole and in order. */
Test(tlsrec, output_in_many_chunks)
{
	static uint8_t a[60 * 100 + 20000], b[sizeof(a)];
	struct evbuffer *plain = evbuffer_new();
	struct pair p;
	size_t i;

	cr_assert_not_null(plain);
	sotto_random(a, sizeof(a));
	pair_open(&p, NULL);
	/* Each reference is a chunk of its own: 60 small ones, then one that spans records. */
	for (i = 0; i < 60; i++)
		cr_assert_eq(evbuffer_add_reference(plain, a + 100 * i, 100, NULL, NULL), 0);
	cr_assert_eq(evbuffer_add_reference(plain, a + 6000, 20000, NULL, NULL), 0);
	server_send(&p, plain);
	client_read(&p, b, sizeof(b));
	cr_assert_arr_eq(a, b, sizeof(a));
	pair_close(&p);
	evbuffer_free(plain);
}

Test(tlsrec, key_update_requested_is_answered)
{
	struct evbuffer *plain = evbuffer_new();
	uint8_t buf[16], alert = 0;
	struct pair p;
	int round;

	pair_open(&p, NULL);
	for (round = 0; round < 3; round++) {
		cr_assert_eq(SSL_key_update(p.cli, SSL_KEY_UPDATE_REQUESTED), 1);
		client_write(&p, (const uint8_t *)"after update", 12);
		cr_assert_eq(server_recv(&p, plain, 65536, &alert), 0, "alert %u", alert);
		cr_assert_eq(evbuffer_remove(plain, buf, sizeof(buf)), 12);
		cr_assert_arr_eq(buf, "after update", 12);
		cr_assert(p.t.update_due, "the client asked for our KeyUpdate");
		cr_assert_eq(p.t.rd.seq, 1, "the read key started again");
		/* Our answer goes first, then the data under the new key. */
		cr_assert_eq(evbuffer_add(plain, "reply", 5), 0);
		server_send(&p, plain);
		cr_assert_not(p.t.update_due);
		cr_assert_eq(p.t.wr.seq, 1, "the write key started again");
		client_read(&p, buf, 5);
		cr_assert_arr_eq(buf, "reply", 5);
		exchange(&p, 2000, 100);
	}
	/* Not requested: the server updates its read key only. */
	cr_assert_eq(SSL_key_update(p.cli, SSL_KEY_UPDATE_NOT_REQUESTED), 1);
	client_write(&p, (const uint8_t *)"quiet", 5);
	cr_assert_eq(server_recv(&p, plain, 65536, &alert), 0);
	cr_assert_eq(evbuffer_remove(plain, buf, sizeof(buf)), 5);
	cr_assert_not(p.t.update_due);
	exchange(&p, 2000, 3);
	pair_close(&p);
	evbuffer_free(plain);
}

Test(tlsrec, close_notify_both_ways)
{
	struct evbuffer *plain = evbuffer_new();
	uint8_t out[64], buf[8], alert = 0;
	struct pair p;
	size_t n;
	int r;

	pair_open(&p, NULL);
	client_write(&p, (const uint8_t *)"bye", 3);
	(void)SSL_shutdown(p.cli);
	cr_assert_eq(server_recv(&p, plain, 65536, &alert), SOTTO_ERR_CLOSED);
	cr_assert_eq(alert, TLSREC_ALERT_NONE);
	cr_assert_eq(evbuffer_remove(plain, buf, sizeof(buf)), 3, "data before the close arrives");
	cr_assert_eq(
	        tlsrec_seal_alert(&p.t, eng, TLSREC_ALERT_CLOSE_NOTIFY, out, sizeof(out), &n), 0);
	write_all(p.fd[0], out, n);
	r = SSL_read(p.cli, buf, sizeof(buf));
	cr_assert_eq(r, 0);
	cr_assert_eq(
	        SSL_get_error(p.cli, r), SSL_ERROR_ZERO_RETURN, "a clean close for the client");
	pair_close(&p);
	evbuffer_free(plain);
}

Test(tlsrec, fatal_alert_reaches_the_client)
{
	uint8_t out[64], buf[8];
	struct pair p;
	size_t n;
	int r;

	pair_open(&p, NULL);
	cr_assert_eq(
	        tlsrec_seal_alert(&p.t, eng, TLSREC_ALERT_UNEXPECTED_MESSAGE, out, sizeof(out), &n),
	        0);
	write_all(p.fd[0], out, n);
	r = SSL_read(p.cli, buf, sizeof(buf));
	cr_assert_leq(r, 0);
	cr_assert_eq(SSL_get_error(p.cli, r), SSL_ERROR_SSL);
	cr_assert_eq(ERR_GET_REASON(ERR_peek_error()), SSL_R_SSLV3_ALERT_UNEXPECTED_MESSAGE, "%s",
	        ERR_reason_error_string(ERR_peek_error()));
	ERR_clear_error();
	pair_close(&p);
}

/* Feed bytes straight to tlsrec_open; returns its result. */
static int
open_bytes(struct pair *p, uint8_t *bytes, size_t len, size_t *used, uint8_t *alert)
{
	struct evbuffer *plain = evbuffer_new();
	int r;

	cr_assert_not_null(plain);
	r = tlsrec_open(&p->t, eng, bytes, len, used, plain, alert);
	evbuffer_free(plain);
	return r;
}

Test(tlsrec, tampered_record_is_refused)
{
	uint8_t rec[256], alert = 0;
	struct pair p;
	size_t used;
	ssize_t n;

	pair_open(&p, NULL);
	client_write(&p, (const uint8_t *)"do not touch", 12);
	cr_assert_gt(n = read(p.fd[0], rec, sizeof(rec)), TLSREC_HEADER);
	rec[n - 1] ^= 0x01; /* the tag */
	cr_assert_eq(open_bytes(&p, rec, (size_t)n, &used, &alert), SOTTO_ERR_VERIFY);
	cr_assert_eq(alert, TLSREC_ALERT_BAD_RECORD_MAC);
	pair_close(&p);
}

/*
 * In every suite a flipped bit in the header (the additional data), the
 * ciphertext or the tag fails, and no plaintext comes out.
 */
Test(tlsrec, tampering_fails_in_each_suite)
{
	static const char *const suites[] = {
	        "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"};
	struct evbuffer *plain = evbuffer_new();
	uint8_t rec[256], copy[256], alert = 0;
	size_t i, at[3], used;
	struct pair p;
	ssize_t n;
	int k;

	cr_assert_not_null(plain);
	for (i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
		pair_open(&p, suites[i]);
		client_write(&p, (const uint8_t *)"do not touch", 12);
		cr_assert_gt(n = read(p.fd[0], rec, sizeof(rec)), TLSREC_HEADER + TLSREC_TAG_BYTES);
		at[0] = 2;                                /* legacy_record_version */
		at[1] = TLSREC_HEADER + 3;                /* the ciphertext */
		at[2] = (size_t)n - TLSREC_TAG_BYTES + 5; /* the tag */
		for (k = 0; k < 3; k++) {
			memcpy(copy, rec, (size_t)n);
			copy[at[k]] ^= 0x10;
			cr_assert_eq(tlsrec_open(&p.t, eng, copy, (size_t)n, &used, plain, &alert),
			        SOTTO_ERR_VERIFY, "%s, byte %zu", suites[i], at[k]);
			cr_assert_eq(alert, TLSREC_ALERT_BAD_RECORD_MAC);
			cr_assert_eq(evbuffer_get_length(plain), 0);
			cr_assert_eq(p.t.rd.seq, 0);
		}
		/* The record untouched still opens: the failures came from the flipped bits. */
		cr_assert_eq(tlsrec_open(&p.t, eng, rec, (size_t)n, &used, plain, &alert), 0);
		cr_assert_eq(used, (size_t)n);
		cr_assert_eq(evbuffer_get_length(plain), 12);
		evbuffer_drain(plain, 12);
		pair_close(&p);
	}
	evbuffer_free(plain);
}

Test(tlsrec, unexpected_records_are_refused)
{
	uint8_t ccs[] = {20, 3, 3, 0, 1, 1};             /* the compatibility CCS */
	uint8_t plain_alert[] = {21, 3, 3, 0, 2, 2, 40}; /* an unprotected alert */
	uint8_t huge[] = {23, 3, 3, 0x41, 0x01};         /* 2^14 + 257 bytes announced */
	uint8_t tiny[] = {23, 3, 3, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
	uint8_t partial[] = {23, 3, 3, 0, 40, 1, 2, 3};
	uint8_t alert = 0;
	struct pair p;
	size_t used = 99;

	pair_open(&p, NULL);
	cr_assert_eq(open_bytes(&p, ccs, sizeof(ccs), &used, &alert), SOTTO_ERR_FORMAT);
	cr_assert_eq(alert, TLSREC_ALERT_UNEXPECTED_MESSAGE);
	cr_assert_eq(
	        open_bytes(&p, plain_alert, sizeof(plain_alert), &used, &alert), SOTTO_ERR_FORMAT);
	cr_assert_eq(open_bytes(&p, huge, sizeof(huge), &used, &alert), SOTTO_ERR_RANGE);
	cr_assert_eq(alert, TLSREC_ALERT_RECORD_OVERFLOW);
	cr_assert_eq(open_bytes(&p, tiny, sizeof(tiny), &used, &alert), SOTTO_ERR_FORMAT);
	cr_assert_eq(alert, TLSREC_ALERT_DECODE_ERROR);
	/* Half a record is not an error: nothing is used, and it waits for the rest. */
	cr_assert_eq(open_bytes(&p, partial, sizeof(partial), &used, &alert), 0);
	cr_assert_eq(used, 0);
	cr_assert_eq(open_bytes(&p, partial, 3, &used, &alert), 0);
	cr_assert_eq(used, 0);
	pair_close(&p);
}

/*
 * Seal a record as the client would, independently of tlsrec: AES-128-GCM
 * under the client's key (d is the server's read direction), inner content
 * type and padding as given.  Returns the record's length.
 */
static size_t
client_seal(const struct tlsrec_dir *d, uint64_t seq, uint8_t type, const void *content, size_t len,
        size_t pad, uint8_t *out)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	static uint8_t inner[TLSREC_RECORD_MAX];
	uint8_t nonce[TLSREC_IV_BYTES];
	size_t clen = len + 1 + pad + TLSREC_TAG_BYTES;
	int i, n;

	cr_assert_not_null(ctx);
	cr_assert_leq(len + 1 + pad, sizeof(inner));
	memcpy(inner, content, len);
	inner[len] = type;
	memset(inner + len + 1, 0, pad);
	memcpy(nonce, d->iv, sizeof(nonce));
	for (i = 0; i < 8; i++)
		nonce[TLSREC_IV_BYTES - 1 - i] ^= (uint8_t)(seq >> (8 * i));
	out[0] = 23;
	out[1] = 3;
	out[2] = 3;
	out[3] = (uint8_t)(clen >> 8);
	out[4] = (uint8_t)clen;
	cr_assert_eq(EVP_EncryptInit_ex(ctx, EVP_aes_128_gcm(), NULL, d->key, nonce), 1);
	cr_assert_eq(EVP_EncryptUpdate(ctx, NULL, &n, out, TLSREC_HEADER), 1);
	cr_assert_eq(
	        EVP_EncryptUpdate(ctx, out + TLSREC_HEADER, &n, inner, (int)(len + 1 + pad)), 1);
	cr_assert_eq(EVP_EncryptFinal_ex(ctx, out + TLSREC_HEADER + n, &n), 1);
	cr_assert_eq(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TLSREC_TAG_BYTES,
	                     out + TLSREC_HEADER + len + 1 + pad),
	        1);
	EVP_CIPHER_CTX_free(ctx);
	return TLSREC_HEADER + clen;
}

/* Open one hand-sealed record on a fresh connection; tlsrec_open's result. */
static int
open_sealed(uint8_t type, const void *content, size_t len, size_t pad, uint8_t *alert,
        struct evbuffer *plain)
{
	uint8_t rec[512];
	struct pair p;
	size_t n, used;
	int r;

	pair_open(&p, "TLS_AES_128_GCM_SHA256");
	n = client_seal(&p.t.rd, 0, type, content, len, pad, rec);
	r = tlsrec_open(&p.t, eng, rec, n, &used, plain, alert);
	pair_close(&p);
	return r;
}

Test(tlsrec, inner_content_types)
{
	static const uint8_t ticket[] = {4, 0, 0, 1, 0};      /* NewSessionTicket */
	static const uint8_t bad_update[] = {24, 0, 0, 1, 2}; /* request_update 2 */
	static const uint8_t long_update[] = {24, 0, 0, 2, 0, 0};
	static const uint8_t empty_update[] = {24, 0, 0, 0};
	static const uint8_t update_then_more[] = {24, 0, 0, 1, 0, 23};
	static const uint8_t fatal[] = {2, 40}; /* handshake_failure */
	static const uint8_t zeros[4] = {0};
	struct evbuffer *plain = evbuffer_new();
	uint8_t alert = 0, buf[16];

	cr_assert_not_null(plain);
	/* Application data with padding arrives without it. */
	cr_assert_eq(open_sealed(23, "padded", 6, 100, &alert, plain), 0);
	cr_assert_eq(evbuffer_remove(plain, buf, sizeof(buf)), 6);
	cr_assert_arr_eq(buf, "padded", 6);
	/* An empty application data record is allowed and carries nothing. */
	cr_assert_eq(open_sealed(23, "", 0, 0, &alert, plain), 0);
	cr_assert_eq(evbuffer_get_length(plain), 0);
	cr_assert_eq(open_sealed(22, ticket, sizeof(ticket), 0, &alert, plain), SOTTO_ERR_FORMAT);
	cr_assert_eq(alert, TLSREC_ALERT_UNEXPECTED_MESSAGE);
	cr_assert_eq(open_sealed(22, bad_update, sizeof(bad_update), 0, &alert, plain),
	        SOTTO_ERR_FORMAT);
	cr_assert_eq(alert, TLSREC_ALERT_ILLEGAL_PARAMETER, "RFC 8446 section 4.6.3");
	cr_assert_eq(open_sealed(22, long_update, sizeof(long_update), 0, &alert, plain),
	        SOTTO_ERR_FORMAT);
	cr_assert_eq(alert, TLSREC_ALERT_DECODE_ERROR, "a KeyUpdate is one byte long");
	cr_assert_eq(open_sealed(22, empty_update, sizeof(empty_update), 0, &alert, plain),
	        SOTTO_ERR_FORMAT);
	cr_assert_eq(alert, TLSREC_ALERT_DECODE_ERROR);
	cr_assert_eq(open_sealed(22, update_then_more, sizeof(update_then_more), 0, &alert, plain),
	        SOTTO_ERR_FORMAT, "KeyUpdate must end its record");
	cr_assert_eq(alert, TLSREC_ALERT_UNEXPECTED_MESSAGE);
	cr_assert_eq(open_sealed(22, "", 0, 0, &alert, plain), SOTTO_ERR_FORMAT);
	cr_assert_eq(alert, TLSREC_ALERT_UNEXPECTED_MESSAGE, "an empty handshake record");
	cr_assert_eq(open_sealed(21, fatal, sizeof(fatal), 0, &alert, plain), SOTTO_ERR_PROTO);
	cr_assert_eq(alert, TLSREC_ALERT_NONE, "no alert answers the peer's own");
	cr_assert_eq(open_sealed(21, zeros, 3, 0, &alert, plain), SOTTO_ERR_FORMAT);
	cr_assert_eq(alert, TLSREC_ALERT_DECODE_ERROR);
	/* Handshake and alert records may not be empty (RFC 8446 section 5.4). */
	cr_assert_eq(open_sealed(21, "", 0, 0, &alert, plain), SOTTO_ERR_FORMAT);
	cr_assert_eq(alert, TLSREC_ALERT_UNEXPECTED_MESSAGE, "an empty alert record");
	cr_assert_eq(open_sealed(24, "x", 1, 0, &alert, plain), SOTTO_ERR_FORMAT,
	        "heartbeat and other types");
	/* All padding, no type: nothing to go on. */
	cr_assert_eq(open_sealed(0, "", 0, 10, &alert, plain), SOTTO_ERR_FORMAT);
	cr_assert_eq(alert, TLSREC_ALERT_UNEXPECTED_MESSAGE);
	evbuffer_free(plain);
}

/* A record carries up to 2^14 bytes of content (RFC 8446 section 5.1); one more is an overflow. */
Test(tlsrec, plaintext_limit)
{
	static uint8_t content[TLSREC_PLAIN_MAX + 1], rec[TLSREC_RECORD_MAX];
	struct evbuffer *plain = evbuffer_new();
	uint8_t alert = 0;
	size_t n, used;
	struct pair p;

	cr_assert_not_null(plain);
	sotto_random(content, sizeof(content));
	pair_open(&p, "TLS_AES_128_GCM_SHA256");
	n = client_seal(&p.t.rd, 0, 23, content, TLSREC_PLAIN_MAX, 0, rec);
	cr_assert_eq(tlsrec_open(&p.t, eng, rec, n, &used, plain, &alert), 0, "alert %u", alert);
	cr_assert_eq(used, n);
	cr_assert_eq(evbuffer_get_length(plain), TLSREC_PLAIN_MAX);
	cr_assert_arr_eq(evbuffer_pullup(plain, -1), content, TLSREC_PLAIN_MAX);
	evbuffer_drain(plain, TLSREC_PLAIN_MAX);
	n = client_seal(&p.t.rd, 1, 23, content, TLSREC_PLAIN_MAX + 1, 0, rec);
	cr_assert_eq(tlsrec_open(&p.t, eng, rec, n, &used, plain, &alert), SOTTO_ERR_RANGE);
	cr_assert_eq(alert, TLSREC_ALERT_RECORD_OVERFLOW);
	cr_assert_eq(evbuffer_get_length(plain), 0);
	pair_close(&p);
	evbuffer_free(plain);
}

/*
 * After 2^23 records under one write key our KeyUpdate goes out, under
 * that key, and the data after it goes under a new one: a second tlsrec,
 * holding the server's write direction as its read direction, reads both.
 */
Test(tlsrec, own_key_update_after_many_records)
{
	static uint8_t data[TLSREC_PLAIN_MAX + 1000], back[sizeof(data)],
	        out[4 * TLSREC_RECORD_MAX];
	struct evbuffer *plain = evbuffer_new(), *got = evbuffer_new();
	struct tlsrec mirror;
	uint8_t alert = 0, old_key[TLSREC_KEY_MAX];
	size_t n, used;
	struct pair p;

	cr_assert(plain != NULL && got != NULL);
	sotto_random(data, sizeof(data));
	pair_open(&p, NULL);
	p.t.wr.seq = TLSREC_UPDATE_SEQ - 1;
	memcpy(old_key, p.t.wr.key, sizeof(old_key));
	memset(&mirror, 0, sizeof(mirror));
	mirror.suite = p.t.suite;
	mirror.rd = p.t.wr;
	/* Two records: the first is the key's last, the second goes under a new key. */
	cr_assert_eq(evbuffer_add(plain, data, sizeof(data)), 0);
	cr_assert_eq(tlsrec_seal(&p.t, eng, plain, out, sizeof(out), &n), 0);
	cr_assert_eq(evbuffer_get_length(plain), 0);
	cr_assert_eq(p.t.wr.seq, 1, "a new key after record 2^23 - 1 and the KeyUpdate");
	cr_assert_neq(memcmp(old_key, p.t.wr.key, sizeof(old_key)), 0);
	cr_assert_not(p.t.update_due);
	cr_assert_eq(tlsrec_open(&mirror, eng, out, n, &used, got, &alert), 0, "alert %u", alert);
	cr_assert_eq(used, n);
	cr_assert_eq(mirror.rd.seq, 1);
	cr_assert_not(mirror.update_due, "our KeyUpdate does not ask for one back");
	cr_assert_eq(evbuffer_remove(got, back, sizeof(back)), (int)sizeof(data));
	cr_assert_arr_eq(back, data, sizeof(data));
	tlsrec_wipe(&mirror);
	pair_close(&p);
	evbuffer_free(plain);
	evbuffer_free(got);
}

/* A KeyUpdate may arrive in pieces; nothing else may come between them. */
Test(tlsrec, key_update_in_pieces)
{
	static const uint8_t update[] = {24, 0, 0, 1, 1};
	struct evbuffer *plain = evbuffer_new();
	uint8_t rec[3][128], alert = 0;
	size_t n[3], used;
	struct pair p;

	cr_assert_not_null(plain);
	pair_open(&p, "TLS_AES_128_GCM_SHA256");
	n[0] = client_seal(&p.t.rd, 0, 22, update, 3, 0, rec[0]);
	n[1] = client_seal(&p.t.rd, 1, 22, update + 3, 2, 0, rec[1]);
	cr_assert_eq(tlsrec_open(&p.t, eng, rec[0], n[0], &used, plain, &alert), 0);
	cr_assert_eq(p.t.rd.seq, 1);
	cr_assert_eq(tlsrec_open(&p.t, eng, rec[1], n[1], &used, plain, &alert), 0);
	cr_assert_eq(p.t.rd.seq, 0, "the read key was updated");
	cr_assert(p.t.update_due);
	pair_close(&p);

	pair_open(&p, "TLS_AES_128_GCM_SHA256");
	n[0] = client_seal(&p.t.rd, 0, 22, update, 3, 0, rec[0]);
	n[2] = client_seal(&p.t.rd, 1, 23, "data", 4, 0, rec[2]);
	cr_assert_eq(tlsrec_open(&p.t, eng, rec[0], n[0], &used, plain, &alert), 0);
	cr_assert_eq(tlsrec_open(&p.t, eng, rec[2], n[2], &used, plain, &alert), SOTTO_ERR_FORMAT);
	cr_assert_eq(alert, TLSREC_ALERT_UNEXPECTED_MESSAGE);
	pair_close(&p);
	evbuffer_free(plain);
}

/* A record replayed or out of order fails: each sequence number gives a different nonce. */
Test(tlsrec, replayed_record_is_refused)
{
	struct evbuffer *plain = evbuffer_new();
	uint8_t rec[128], copy[128], alert = 0;
	size_t n, used;
	struct pair p;

	cr_assert_not_null(plain);
	pair_open(&p, "TLS_AES_128_GCM_SHA256");
	n = client_seal(&p.t.rd, 0, 23, "once", 4, 0, rec);
	memcpy(copy, rec, n);
	cr_assert_eq(tlsrec_open(&p.t, eng, rec, n, &used, plain, &alert), 0);
	cr_assert_eq(tlsrec_open(&p.t, eng, copy, n, &used, plain, &alert), SOTTO_ERR_VERIFY);
	cr_assert_eq(alert, TLSREC_ALERT_BAD_RECORD_MAC);
	pair_close(&p);
	evbuffer_free(plain);
}

Test(tlsrec, keylog_lines)
{
	struct tlsrec_secrets s;

	memset(&s, 0, sizeof(s));
	tlsrec_keylog(&s, "CLIENT_HANDSHAKE_TRAFFIC_SECRET_0 00 0102");
	cr_assert_eq(s.client_len, 0, "handshake secrets are not kept");
	tlsrec_keylog(&s, "CLIENT_TRAFFIC_SECRET_0 abcd 000102ff");
	cr_assert_eq(s.client_len, 4);
	cr_assert_eq(s.client[3], 0xff);
	tlsrec_keylog(&s, "SERVER_TRAFFIC_SECRET_0 abcd 0g");
	cr_assert_eq(s.server_len, 0, "not hex");
	tlsrec_keylog(&s, "SERVER_TRAFFIC_SECRET_0 abcd 012");
	cr_assert_eq(s.server_len, 0, "odd length");
}
