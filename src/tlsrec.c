/* TLS 1.3 record protection after an OpenSSL handshake; see tlsrec.h. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/tls1.h>

#include "crypto/util.h"
#include "src/tlsrec.h"

/* Record content types (RFC 8446 section 5.1). */
#define CT_CHANGE_CIPHER_SPEC 20
#define CT_ALERT              21
#define CT_HANDSHAKE          22
#define CT_APPLICATION_DATA   23

#define HS_KEY_UPDATE     24
#define ALERT_WARNING     1
#define ALERT_FATAL       2
#define KEY_UPDATE_ASKED  1
#define TLSREC_READ_LIMIT ((uint64_t)1 << 48) /* far past any AEAD's limit: a peer bug */

enum tlsrec_suite {
	TLSREC_SUITE_NONE = 0,
	TLSREC_SUITE_AES_128_GCM,
	TLSREC_SUITE_AES_256_GCM,
	TLSREC_SUITE_CHACHA20,
	TLSREC_SUITE__COUNT
};

static const struct tlsrec_suite_info {
	uint32_t id; /* SSL_CIPHER_get_id() */
	const char *cipher;
	const char *digest;
	size_t key_len;
	size_t secret_len;
} tlsrec_suites[TLSREC_SUITE__COUNT] = {
        [TLSREC_SUITE_AES_128_GCM] = {TLS1_3_CK_AES_128_GCM_SHA256, "AES-128-GCM", "SHA256", 16,
                32},
        [TLSREC_SUITE_AES_256_GCM] = {TLS1_3_CK_AES_256_GCM_SHA384, "AES-256-GCM", "SHA384", 32,
                48},
        [TLSREC_SUITE_CHACHA20] = {TLS1_3_CK_CHACHA20_POLY1305_SHA256, "ChaCha20-Poly1305",
                "SHA256", 32, 32},
};

struct tlsrec_engine {
	EVP_CIPHER *cipher[TLSREC_SUITE__COUNT];
	EVP_CIPHER_CTX *ctx;
	EVP_KDF *hkdf;
	int ctx_suite; /* the cipher ctx was last set up for; 0 none */
};

int
tlsrec_engine_new(struct tlsrec_engine **out)
{
	struct tlsrec_engine *e;
	int i, r = SOTTO_ERR_CRYPTO;

	*out = NULL;
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return SOTTO_ERR_NOMEM;
	for (i = 1; i < TLSREC_SUITE__COUNT; i++) {
		if ((e->cipher[i] = EVP_CIPHER_fetch(NULL, tlsrec_suites[i].cipher, NULL)) == NULL)
			goto out;
	}
	if ((e->ctx = EVP_CIPHER_CTX_new()) == NULL ||
	        (e->hkdf = EVP_KDF_fetch(NULL, "HKDF", NULL)) == NULL)
		goto out;
	*out = e;
	e = NULL;
	r = 0;
out:
	ERR_clear_error();
	tlsrec_engine_free(e);
	return r;
}

void
tlsrec_engine_free(struct tlsrec_engine *e)
{
	int i;

	if (e == NULL)
		return;
	for (i = 0; i < TLSREC_SUITE__COUNT; i++)
		EVP_CIPHER_free(e->cipher[i]);
	EVP_CIPHER_CTX_free(e->ctx);
	EVP_KDF_free(e->hkdf);
	free(e);
}

static int
tlsrec_hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Hex to bytes: the number of bytes, or 0 if hex is not 2..2*cap hex digits. */
static size_t
tlsrec_unhex(uint8_t *out, size_t cap, const char *hex)
{
	size_t n = strlen(hex), i;
	int hi, lo;

	if (n == 0 || n % 2 != 0 || n / 2 > cap)
		return 0;
	for (i = 0; i < n / 2; i++) {
		if ((hi = tlsrec_hexval(hex[2 * i])) < 0 ||
		        (lo = tlsrec_hexval(hex[2 * i + 1])) < 0)
			return 0;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return n / 2;
}

/* "LABEL <client_random> <secret>", as OpenSSL's key-log callback writes it. */
void
tlsrec_keylog(struct tlsrec_secrets *s, const char *line)
{
	static const char client[] = "CLIENT_TRAFFIC_SECRET_0 ",
	                  server[] = "SERVER_TRAFFIC_SECRET_0 ";
	const char *p;
	uint8_t *dst;
	size_t *len;

	if (strncmp(line, client, sizeof(client) - 1) == 0) {
		dst = s->client;
		len = &s->client_len;
	} else if (strncmp(line, server, sizeof(server) - 1) == 0) {
		dst = s->server;
		len = &s->server_len;
	} else {
		return;
	}
	if ((p = strrchr(line, ' ')) == NULL)
		return;
	*len = tlsrec_unhex(dst, TLSREC_SECRET_MAX, p + 1);
}

/* HKDF-Expand-Label(secret, label, "", outlen) with the suite's hash (RFC 8446 section 7.1). */
static int
tlsrec_expand(struct tlsrec_engine *e, int suite, const uint8_t *secret, const char *label,
        uint8_t *out, size_t outlen)
{
	const struct tlsrec_suite_info *si = &tlsrec_suites[suite];
	uint8_t info[2 + 1 + 6 + 32 + 1];
	size_t ll = strlen(label), n = 0;
	char digest[16];
	EVP_KDF_CTX *k;
	OSSL_PARAM p[5];
	int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY, r = SOTTO_ERR_CRYPTO;

	if (ll > 32 || outlen > 255)
		return SOTTO_ERR_INVALID;
	info[n++] = (uint8_t)(outlen >> 8);
	info[n++] = (uint8_t)outlen;
	info[n++] = (uint8_t)(6 + ll);
	memcpy(info + n, "tls13 ", 6);
	n += 6;
	memcpy(info + n, label, ll);
	n += ll;
	info[n++] = 0; /* empty context */
	snprintf(digest, sizeof(digest), "%s", si->digest);
	if ((k = EVP_KDF_CTX_new(e->hkdf)) == NULL)
		return SOTTO_ERR_NOMEM;
	p[0] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
	p[1] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
	p[2] = OSSL_PARAM_construct_octet_string(
	        OSSL_KDF_PARAM_KEY, (void *)(uintptr_t)secret, si->secret_len);
	p[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n);
	p[4] = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(k, out, outlen, p) == 1)
		r = 0;
	EVP_KDF_CTX_free(k);
	ERR_clear_error();
	return r;
}

/* Key and IV for the secret now in d; the sequence number starts again. */
static int
tlsrec_dir_keys(struct tlsrec_engine *e, int suite, struct tlsrec_dir *d)
{
	int r;

	if ((r = tlsrec_expand(e, suite, d->secret, "key", d->key, tlsrec_suites[suite].key_len)) !=
	                0 ||
	        (r = tlsrec_expand(e, suite, d->secret, "iv", d->iv, TLSREC_IV_BYTES)) != 0)
		return r;
	d->seq = 0;
	return 0;
}

/* application_traffic_secret_N+1 (RFC 8446 section 7.2), then its key and IV. */
static int
tlsrec_dir_update(struct tlsrec_engine *e, int suite, struct tlsrec_dir *d)
{
	uint8_t next[TLSREC_SECRET_MAX];
	size_t len = tlsrec_suites[suite].secret_len;
	int r;

	if ((r = tlsrec_expand(e, suite, d->secret, "traffic upd", next, len)) != 0)
		return r;
	memcpy(d->secret, next, len);
	sotto_wipe(next, sizeof(next));
	return tlsrec_dir_keys(e, suite, d);
}

int
tlsrec_init(
        struct tlsrec *t, struct tlsrec_engine *e, const SSL *ssl, const struct tlsrec_secrets *s)
{
	const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
	uint32_t id = c != NULL ? SSL_CIPHER_get_id(c) : 0;
	int suite, r;

	memset(t, 0, sizeof(*t));
	for (suite = 1; suite < TLSREC_SUITE__COUNT; suite++) {
		if (tlsrec_suites[suite].id == id)
			break;
	}
	if (suite == TLSREC_SUITE__COUNT || SSL_version(ssl) != TLS1_3_VERSION ||
	        s->client_len != tlsrec_suites[suite].secret_len ||
	        s->server_len != tlsrec_suites[suite].secret_len)
		return SOTTO_ERR_UNSUPPORTED;
	memcpy(t->rd.secret, s->client, s->client_len);
	memcpy(t->wr.secret, s->server, s->server_len);
	if ((r = tlsrec_dir_keys(e, suite, &t->rd)) != 0 ||
	        (r = tlsrec_dir_keys(e, suite, &t->wr)) != 0) {
		tlsrec_wipe(t);
		return r;
	}
	t->suite = (uint8_t)suite;
	return 0;
}

void
tlsrec_wipe(struct tlsrec *t)
{
	sotto_wipe(t, sizeof(*t));
}

/* The per-record nonce: the IV with the sequence number XORed into its end. */
static void
tlsrec_nonce(uint8_t nonce[TLSREC_IV_BYTES], const struct tlsrec_dir *d)
{
	int i;

	memcpy(nonce, d->iv, TLSREC_IV_BYTES);
	for (i = 0; i < 8; i++)
		nonce[TLSREC_IV_BYTES - 1 - i] ^= (uint8_t)(d->seq >> (8 * i));
}

/* Set the shared context up for one record under d. */
static int
tlsrec_cipher_init(struct tlsrec_engine *e, int suite, const struct tlsrec_dir *d, int enc)
{
	uint8_t nonce[TLSREC_IV_BYTES];
	int ok;

	tlsrec_nonce(nonce, d);
	ok = EVP_CipherInit_ex2(
	        e->ctx, e->ctx_suite == suite ? NULL : e->cipher[suite], d->key, nonce, enc, NULL);
	e->ctx_suite = ok == 1 ? suite : 0;
	return ok == 1 ? 0 : SOTTO_ERR_CRYPTO;
}

static void
tlsrec_header(uint8_t h[TLSREC_HEADER], size_t len)
{
	h[0] = CT_APPLICATION_DATA;
	h[1] = 0x03;
	h[2] = 0x03;
	h[3] = (uint8_t)(len >> 8);
	h[4] = (uint8_t)len;
}

/*
 * Seal one record at out: the content in the n chunks of v, then its type.
 * out has room for TLSREC_OVERHEAD plus the content.
 */
static int
tlsrec_seal_one(struct tlsrec *t, struct tlsrec_engine *e, const struct evbuffer_iovec *v, size_t n,
        uint8_t type, uint8_t *out, size_t *outlen)
{
	size_t i, plen = 0, clen;
	uint8_t *p;
	int len;

	for (i = 0; i < n; i++)
		plen += v[i].iov_len;
	clen = plen + 1 + TLSREC_TAG_BYTES;
	tlsrec_header(out, clen);
	if (tlsrec_cipher_init(e, t->suite, &t->wr, 1) != 0 ||
	        EVP_EncryptUpdate(e->ctx, NULL, &len, out, TLSREC_HEADER) != 1)
		goto fail;
	p = out + TLSREC_HEADER;
	for (i = 0; i < n; i++) {
		if (v[i].iov_len == 0)
			continue;
		if (EVP_EncryptUpdate(e->ctx, p, &len, v[i].iov_base, (int)v[i].iov_len) != 1)
			goto fail;
		p += len;
	}
	if (EVP_EncryptUpdate(e->ctx, p, &len, &type, 1) != 1)
		goto fail;
	p += len;
	if (EVP_EncryptFinal_ex(e->ctx, p, &len) != 1)
		goto fail;
	p += len;
	if (p != out + TLSREC_HEADER + plen + 1 ||
	        EVP_CIPHER_CTX_ctrl(e->ctx, EVP_CTRL_AEAD_GET_TAG, TLSREC_TAG_BYTES, p) != 1)
		goto fail;
	t->wr.seq++;
	*outlen = TLSREC_HEADER + clen;
	return 0;
fail:
	ERR_clear_error();
	e->ctx_suite = 0;
	return SOTTO_ERR_CRYPTO;
}

/* Our KeyUpdate, then the new write key: answers the peer's request, or retires a worn key. */
static int
tlsrec_seal_key_update(
        struct tlsrec *t, struct tlsrec_engine *e, uint8_t *out, size_t cap, size_t *outlen)
{
	uint8_t msg[5] = {HS_KEY_UPDATE, 0, 0, 1, 0}; /* update_not_requested */
	struct evbuffer_iovec v;
	int r;

	*outlen = 0;
	if (cap < TLSREC_OVERHEAD + sizeof(msg))
		return 0;
	v.iov_base = msg;
	v.iov_len = sizeof(msg);
	if ((r = tlsrec_seal_one(t, e, &v, 1, CT_HANDSHAKE, out, outlen)) != 0 ||
	        (r = tlsrec_dir_update(e, t->suite, &t->wr)) != 0)
		return r;
	t->update_due = 0;
	return 0;
}

int
tlsrec_seal(struct tlsrec *t, struct tlsrec_engine *e, struct evbuffer *plain, uint8_t *out,
        size_t cap, size_t *outlen)
{
	struct evbuffer_iovec v[16];
	size_t done = 0, n, want, len;
	int nv, r;

	*outlen = 0;
	if (t->suite == TLSREC_SUITE_NONE)
		return SOTTO_ERR_INVALID;
	while (done < cap) {
		if (t->update_due || t->wr.seq >= TLSREC_UPDATE_SEQ) {
			if ((r = tlsrec_seal_key_update(t, e, out + done, cap - done, &len)) != 0)
				return r;
			if (len == 0)
				break;
			done += len;
			continue;
		}
		if ((n = evbuffer_get_length(plain)) == 0 || cap - done <= TLSREC_OVERHEAD)
			break;
		want = cap - done - TLSREC_OVERHEAD;
		if (want > TLSREC_PLAIN_MAX)
			want = TLSREC_PLAIN_MAX;
		if (want > n)
			want = n;
		/* A record's content may span the buffer's chunks: seal them as one. */
		nv = evbuffer_peek(plain, (ev_ssize_t)want, NULL, v, 16);
		if (nv <= 0)
			return SOTTO_ERR_INVALID;
		if (nv > 16) {
			nv = 16;
			for (want = 0, n = 0; n < 16; n++)
				want += v[n].iov_len;
		}
		for (len = 0, n = 0; n < (size_t)nv; n++) {
			if (len + v[n].iov_len > want)
				v[n].iov_len = want - len;
			len += v[n].iov_len;
		}
		if ((r = tlsrec_seal_one(
		             t, e, v, (size_t)nv, CT_APPLICATION_DATA, out + done, &len)) != 0)
			return r;
		done += len;
		evbuffer_drain(plain, want);
	}
	*outlen = done;
	return 0;
}

int
tlsrec_seal_alert(struct tlsrec *t, struct tlsrec_engine *e, uint8_t desc, uint8_t *out, size_t cap,
        size_t *outlen)
{
	uint8_t msg[2] = {desc == TLSREC_ALERT_CLOSE_NOTIFY ? ALERT_WARNING : ALERT_FATAL, desc};
	struct evbuffer_iovec v;

	*outlen = 0;
	if (t->suite == TLSREC_SUITE_NONE)
		return SOTTO_ERR_INVALID;
	if (cap < TLSREC_OVERHEAD + sizeof(msg))
		return SOTTO_ERR_RANGE;
	v.iov_base = msg;
	v.iov_len = sizeof(msg);
	return tlsrec_seal_one(t, e, &v, 1, CT_ALERT, out, outlen);
}

/*
 * A handshake record's content after the handshake: only KeyUpdate, which
 * must end its record (the next one is under the new key).  A message may
 * span records.
 */
static int
tlsrec_handshake(
        struct tlsrec *t, struct tlsrec_engine *e, const uint8_t *p, size_t n, uint8_t *alert)
{
	size_t take;

	while (n > 0) {
		take = sizeof(t->hs) - t->hs_len;
		if (take > n)
			take = n;
		memcpy(t->hs + t->hs_len, p, take);
		t->hs_len += (uint8_t)take;
		p += take;
		n -= take;
		/*
		 * Check the header as soon as it is whole: nothing else may come,
		 * and a KeyUpdate of another length does not decode (section 6).
		 */
		if (t->hs_len >= 4 && t->hs[0] != HS_KEY_UPDATE) {
			*alert = TLSREC_ALERT_UNEXPECTED_MESSAGE;
			return SOTTO_ERR_FORMAT;
		}
		if (t->hs_len >= 4 && (t->hs[1] != 0 || t->hs[2] != 0 || t->hs[3] != 1)) {
			*alert = TLSREC_ALERT_DECODE_ERROR;
			return SOTTO_ERR_FORMAT;
		}
		if (t->hs_len < sizeof(t->hs))
			continue;
		/* Section 4.6.3 names the alert for any other request_update. */
		if (t->hs[4] > KEY_UPDATE_ASKED) {
			*alert = TLSREC_ALERT_ILLEGAL_PARAMETER;
			return SOTTO_ERR_FORMAT;
		}
		if (n > 0) {
			*alert = TLSREC_ALERT_UNEXPECTED_MESSAGE;
			return SOTTO_ERR_FORMAT;
		}
		if (t->hs[4] == KEY_UPDATE_ASKED)
			t->update_due = 1;
		t->hs_len = 0;
		if (tlsrec_dir_update(e, t->suite, &t->rd) != 0) {
			*alert = TLSREC_ALERT_INTERNAL_ERROR;
			return SOTTO_ERR_CRYPTO;
		}
	}
	return 0;
}

/* Open one protected record in place: its content at *content, *clen long, *type. */
static int
tlsrec_open_one(struct tlsrec *t, struct tlsrec_engine *e, uint8_t *rec, size_t len,
        uint8_t **content, size_t *clen, uint8_t *type, uint8_t *alert)
{
	uint8_t *body = rec + TLSREC_HEADER;
	size_t blen = len - TLSREC_HEADER, n;
	int outl;

	if (rec[0] != CT_APPLICATION_DATA) {
		/* Nothing unprotected after the handshake: not even the compatibility CCS. */
		*alert = TLSREC_ALERT_UNEXPECTED_MESSAGE;
		return SOTTO_ERR_FORMAT;
	}
	if (blen < 1 + TLSREC_TAG_BYTES) {
		*alert = TLSREC_ALERT_DECODE_ERROR;
		return SOTTO_ERR_FORMAT;
	}
	if (t->rd.seq >= TLSREC_READ_LIMIT) {
		*alert = TLSREC_ALERT_INTERNAL_ERROR;
		return SOTTO_ERR_RANGE;
	}
	n = blen - TLSREC_TAG_BYTES;
	if (tlsrec_cipher_init(e, t->suite, &t->rd, 0) != 0 ||
	        EVP_DecryptUpdate(e->ctx, NULL, &outl, rec, TLSREC_HEADER) != 1 ||
	        EVP_DecryptUpdate(e->ctx, body, &outl, body, (int)n) != 1 ||
	        EVP_CIPHER_CTX_ctrl(e->ctx, EVP_CTRL_AEAD_SET_TAG, TLSREC_TAG_BYTES, body + n) !=
	                1 ||
	        EVP_DecryptFinal_ex(e->ctx, body + outl, &outl) != 1) {
		ERR_clear_error();
		e->ctx_suite = 0;
		*alert = TLSREC_ALERT_BAD_RECORD_MAC;
		return SOTTO_ERR_VERIFY;
	}
	t->rd.seq++;
	/* TLSInnerPlaintext: content, the real type, then zero padding. */
	while (n > 0 && body[n - 1] == 0)
		n--;
	if (n == 0) {
		*alert = TLSREC_ALERT_UNEXPECTED_MESSAGE;
		return SOTTO_ERR_FORMAT;
	}
	*type = body[n - 1];
	*content = body;
	*clen = n - 1;
	if (*clen > TLSREC_PLAIN_MAX) {
		*alert = TLSREC_ALERT_RECORD_OVERFLOW;
		return SOTTO_ERR_RANGE;
	}
	return 0;
}

int
tlsrec_open(struct tlsrec *t, struct tlsrec_engine *e, uint8_t *in, size_t len, size_t *used,
        struct evbuffer *plain, uint8_t *alert)
{
	size_t off = 0, rlen, clen;
	uint8_t *content, type;
	int r;

	*used = 0;
	*alert = TLSREC_ALERT_INTERNAL_ERROR;
	if (t->suite == TLSREC_SUITE_NONE)
		return SOTTO_ERR_INVALID;
	while (len - off >= TLSREC_HEADER) {
		rlen = TLSREC_HEADER + ((size_t)in[off + 3] << 8 | in[off + 4]);
		if (rlen > TLSREC_RECORD_MAX) {
			*alert = TLSREC_ALERT_RECORD_OVERFLOW;
			return SOTTO_ERR_RANGE;
		}
		if (len - off < rlen)
			break;
		if ((r = tlsrec_open_one(t, e, in + off, rlen, &content, &clen, &type, alert)) != 0)
			return r;
		off += rlen;
		*used = off;
		switch (type) {
		case CT_APPLICATION_DATA:
			/* No application data may come between a handshake message's pieces. */
			if (t->hs_len != 0) {
				*alert = TLSREC_ALERT_UNEXPECTED_MESSAGE;
				return SOTTO_ERR_FORMAT;
			}
			if (clen > 0 && evbuffer_add(plain, content, clen) != 0)
				return SOTTO_ERR_NOMEM;
			break;
		case CT_HANDSHAKE:
			if (clen == 0) {
				*alert = TLSREC_ALERT_UNEXPECTED_MESSAGE;
				return SOTTO_ERR_FORMAT;
			}
			if ((r = tlsrec_handshake(t, e, content, clen, alert)) != 0)
				return r;
			break;
		case CT_ALERT:
			/* An empty alert record is a misuse of the record layer (section 5.4). */
			if (clen == 0) {
				*alert = TLSREC_ALERT_UNEXPECTED_MESSAGE;
				return SOTTO_ERR_FORMAT;
			}
			if (clen != 2) {
				*alert = TLSREC_ALERT_DECODE_ERROR;
				return SOTTO_ERR_FORMAT;
			}
			/* close_notify ends the stream; any other alert is the peer's fatal error. */
			*alert = TLSREC_ALERT_NONE;
			return content[1] == TLSREC_ALERT_CLOSE_NOTIFY ? SOTTO_ERR_CLOSED
			                                               : SOTTO_ERR_PROTO;
		default:
			*alert = TLSREC_ALERT_UNEXPECTED_MESSAGE;
			return SOTTO_ERR_FORMAT;
		}
	}
	return 0;
}
