/* Chunked file encryption with crypto_secretstream_xchacha20poly1305; see filecrypt.h. */
#include "config.h"

/*
 * The plaintext hash uses OpenSSL's SHA256_CTX, deprecated in 3.0 but the
 * only OpenSSL SHA-256 whose state is a plain struct that can be saved and
 * restored at a chunk boundary; it runs the same SHA-NI/AVX code as EVP,
 * four to five times faster than libsodium's portable SHA-256, which would
 * otherwise cap a transfer at about 300 MB/s.
 */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include <string.h>

#include <openssl/sha.h>
#include <sodium.h>

#include "filecrypt.h"

#define FC_PUSH 1
#define FC_PULL 2

_Static_assert(
        FILECRYPT_HEADERBYTES == crypto_secretstream_xchacha20poly1305_HEADERBYTES, "header size");
_Static_assert(FILECRYPT_ABYTES == crypto_secretstream_xchacha20poly1305_ABYTES, "overhead");
_Static_assert(FILECRYPT_KEYBYTES == crypto_secretstream_xchacha20poly1305_KEYBYTES, "key size");
_Static_assert(sizeof(crypto_secretstream_xchacha20poly1305_state) == 52, "stream state layout");
_Static_assert(sizeof(((SHA256_CTX *)0)->data) == 64, "SHA-256 block buffer");
_Static_assert(FILECRYPT_STATEBYTES == 3 + 8 + 8 + 52 + 32 + 8 + 64, "state layout");

/*
 * With the hash apart (filecrypt_hash_apart), one thread pushes or pulls (ss,
 * chunks, bytes, final) while another hashes (sha, hashed): the two sets of fields
 * are never written by the same thread.
 */
struct filecrypt {
	crypto_secretstream_xchacha20poly1305_state ss;
	uint64_t chunks;
	uint64_t bytes;
	int dir; /* FC_PUSH or FC_PULL */
	int final;
	int hash_apart;
	SHA256_CTX sha;
	uint64_t hashed; /* bytes given to filecrypt_hash */
};

void
filecrypt_keygen(uint8_t key[FILECRYPT_KEYBYTES])
{
	crypto_secretstream_xchacha20poly1305_keygen(key);
}

uint64_t
filecrypt_ciphertext_size(uint64_t plain)
{
	uint64_t chunks;

	if (plain > FILECRYPT_MAX_PLAIN)
		return 0;
	chunks = plain == 0 ? 1 : (plain + FILECRYPT_CHUNK - 1) / FILECRYPT_CHUNK;
	return FILECRYPT_HEADERBYTES + plain + chunks * FILECRYPT_ABYTES;
}

int
filecrypt_plaintext_size(uint64_t cipher, uint64_t *plain)
{
	uint64_t body, full, rem;

	*plain = 0;
	if (cipher < FILECRYPT_HEADERBYTES + FILECRYPT_ABYTES ||
	        cipher > filecrypt_ciphertext_size(FILECRYPT_MAX_PLAIN))
		return SOTTO_ERR_FORMAT;
	body = cipher - FILECRYPT_HEADERBYTES;
	full = body / FILECRYPT_CCHUNK;
	rem = body % FILECRYPT_CCHUNK;
	if (rem == 0) {
		*plain = full * FILECRYPT_CHUNK;
		return 0;
	}
	/* A short last chunk; only a lone chunk may be empty. */
	if (rem < FILECRYPT_ABYTES || (full > 0 && rem == FILECRYPT_ABYTES))
		return SOTTO_ERR_FORMAT;
	*plain = full * FILECRYPT_CHUNK + (rem - FILECRYPT_ABYTES);
	return 0;
}

uint64_t
filecrypt_chunk_offset(uint64_t k)
{
	return FILECRYPT_HEADERBYTES + k * FILECRYPT_CCHUNK;
}

static int
filecrypt_alloc(struct filecrypt **out, int dir)
{
	struct filecrypt *fc;

	*out = NULL;
	if ((fc = sodium_malloc(sizeof(*fc))) == NULL)
		return SOTTO_ERR_NOMEM;
	memset(fc, 0, sizeof(*fc));
	fc->dir = dir;
	if (SHA256_Init(&fc->sha) != 1) {
		sodium_free(fc);
		return SOTTO_ERR_CRYPTO;
	}
	*out = fc;
	return 0;
}

int
filecrypt_push_new(struct filecrypt **out, uint8_t header[FILECRYPT_HEADERBYTES],
        const uint8_t key[FILECRYPT_KEYBYTES])
{
	int r;

	if ((r = filecrypt_alloc(out, FC_PUSH)) != 0)
		return r;
	if (crypto_secretstream_xchacha20poly1305_init_push(&(*out)->ss, header, key) != 0) {
		filecrypt_free(*out);
		*out = NULL;
		return SOTTO_ERR_CRYPTO;
	}
	return 0;
}

/*
 * init_pull derives the state exactly as init_push did for this header (both
 * run HChaCha20 over the key and the header's first 16 bytes and take the
 * rest as the nonce), which is what lets an upload be replayed.
 */
/* A state of direction dir from init_pull over header and key. */
static int
filecrypt_from_header(struct filecrypt **out, int dir, const uint8_t header[FILECRYPT_HEADERBYTES],
        const uint8_t key[FILECRYPT_KEYBYTES])
{
	int r;

	if ((r = filecrypt_alloc(out, dir)) != 0)
		return r;
	if (crypto_secretstream_xchacha20poly1305_init_pull(&(*out)->ss, header, key) != 0) {
		filecrypt_free(*out);
		*out = NULL;
		return SOTTO_ERR_CRYPTO;
	}
	return 0;
}

int
filecrypt_push_resume(struct filecrypt **out, const uint8_t header[FILECRYPT_HEADERBYTES],
        const uint8_t key[FILECRYPT_KEYBYTES])
{
	return filecrypt_from_header(out, FC_PUSH, header, key);
}

int
filecrypt_push(struct filecrypt *fc, uint8_t *c, const uint8_t *m, size_t mlen, int final)
{
	unsigned char tag = final ? crypto_secretstream_xchacha20poly1305_TAG_FINAL
	                          : crypto_secretstream_xchacha20poly1305_TAG_MESSAGE;

	if (fc->dir != FC_PUSH || fc->final || mlen > FILECRYPT_CHUNK ||
	        (!final && mlen != FILECRYPT_CHUNK) || (m == NULL && mlen > 0))
		return SOTTO_ERR_INVALID;
	if (crypto_secretstream_xchacha20poly1305_push(&fc->ss, c, NULL, m, mlen, NULL, 0, tag) !=
	        0)
		return SOTTO_ERR_CRYPTO;
	if (!fc->hash_apart && mlen > 0 && SHA256_Update(&fc->sha, m, mlen) != 1)
		return SOTTO_ERR_CRYPTO;
	fc->chunks++;
	fc->bytes += mlen;
	fc->final = final != 0;
	return 0;
}

int
filecrypt_pull_new(struct filecrypt **out, const uint8_t header[FILECRYPT_HEADERBYTES],
        const uint8_t key[FILECRYPT_KEYBYTES])
{
	return filecrypt_from_header(out, FC_PULL, header, key);
}

/*
 * The stream state is copied aside and only committed once the chunk has
 * verified and has the expected shape, so a bad chunk changes nothing.
 */
int
filecrypt_pull(
        struct filecrypt *fc, uint8_t *m, size_t *mlen, const uint8_t *c, size_t clen, int *final)
{
	crypto_secretstream_xchacha20poly1305_state ss;
	unsigned long long n = 0;
	unsigned char tag = 0;
	int r = 0;

	*mlen = 0;
	*final = 0;
	if (fc->dir != FC_PULL || fc->final)
		return SOTTO_ERR_INVALID;
	if (clen < FILECRYPT_ABYTES || clen > FILECRYPT_CCHUNK)
		return SOTTO_ERR_FORMAT;
	memcpy(&ss, &fc->ss, sizeof(ss));
	if (crypto_secretstream_xchacha20poly1305_pull(&ss, m, &n, &tag, c, clen, NULL, 0) != 0) {
		sodium_memzero(m, clen - FILECRYPT_ABYTES);
		r = SOTTO_ERR_VERIFY;
		goto out;
	}
	if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL) {
		*final = 1;
	} else if (tag != crypto_secretstream_xchacha20poly1305_TAG_MESSAGE ||
	           n != FILECRYPT_CHUNK) {
		/* Not a stream this module wrote: refuse it rather than guess. */
		sodium_memzero(m, (size_t)n);
		r = SOTTO_ERR_FORMAT;
		goto out;
	}
	if (!fc->hash_apart && n > 0 && SHA256_Update(&fc->sha, m, (size_t)n) != 1) {
		sodium_memzero(m, (size_t)n);
		r = SOTTO_ERR_CRYPTO;
		goto out;
	}
	memcpy(&fc->ss, &ss, sizeof(ss));
	fc->chunks++;
	fc->bytes += n;
	fc->final = *final;
	*mlen = (size_t)n;
out:
	sodium_memzero(&ss, sizeof(ss));
	if (r != 0)
		*final = 0;
	return r;
}

int
filecrypt_hash_apart(struct filecrypt *fc)
{
	if (fc->hash_apart)
		return SOTTO_ERR_INVALID;
	fc->hash_apart = 1;
	fc->hashed = fc->bytes;
	return 0;
}

int
filecrypt_hash(struct filecrypt *fc, const uint8_t *m, size_t mlen)
{
	if (!fc->hash_apart || (m == NULL && mlen > 0))
		return SOTTO_ERR_INVALID;
	if (mlen > 0 && SHA256_Update(&fc->sha, m, mlen) != 1)
		return SOTTO_ERR_CRYPTO;
	fc->hashed += mlen;
	return 0;
}

int
filecrypt_finish(struct filecrypt *fc, uint8_t hash[FILECRYPT_HASHBYTES])
{
	SHA256_CTX sha;
	int ok;

	memset(hash, 0, FILECRYPT_HASHBYTES);
	if (!fc->final)
		return SOTTO_ERR_SHORT;
	if (fc->hash_apart && fc->hashed != fc->bytes)
		return SOTTO_ERR_INVALID;
	/* On a copy, so that finishing twice gives the same answer. */
	memcpy(&sha, &fc->sha, sizeof(sha));
	ok = SHA256_Final(hash, &sha);
	sodium_memzero(&sha, sizeof(sha));
	return ok == 1 ? 0 : SOTTO_ERR_CRYPTO;
}

uint64_t
filecrypt_chunks(const struct filecrypt *fc)
{
	return fc->chunks;
}

uint64_t
filecrypt_bytes(const struct filecrypt *fc)
{
	return fc->bytes;
}

int
filecrypt_done(const struct filecrypt *fc)
{
	return fc->final;
}

static void
fc_put64(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static uint64_t
fc_get64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* Where the hash's half of a saved state starts, after the stream's. */
#define FC_STATE_SHA (3 + 8 + 8 + 52)

/* Field by field, in a fixed byte order, so a saved state does not depend on the compiler. */
void
filecrypt_save_stream(const struct filecrypt *fc, uint8_t out[FILECRYPT_STATEBYTES])
{
	uint8_t *p = out;

	*p++ = FILECRYPT_STATE_VERSION;
	*p++ = (uint8_t)fc->dir;
	*p++ = (uint8_t)(fc->final ? 1 : 0);
	fc_put64(p, fc->chunks);
	p += 8;
	fc_put64(p, fc->bytes);
	p += 8;
	memcpy(p, fc->ss.k, sizeof(fc->ss.k));
	p += sizeof(fc->ss.k);
	memcpy(p, fc->ss.nonce, sizeof(fc->ss.nonce));
	p += sizeof(fc->ss.nonce);
	memcpy(p, fc->ss._pad, sizeof(fc->ss._pad));
}

static void
fc_save_sha(const struct filecrypt *fc, uint8_t out[FILECRYPT_STATEBYTES])
{
	uint8_t *p = out + FC_STATE_SHA;
	int i;

	for (i = 0; i < 8; i++) {
		p[0] = (uint8_t)(fc->sha.h[i] >> 24);
		p[1] = (uint8_t)(fc->sha.h[i] >> 16);
		p[2] = (uint8_t)(fc->sha.h[i] >> 8);
		p[3] = (uint8_t)fc->sha.h[i];
		p += 4;
	}
	/* The message length in bits, then the pending block as the bytes it holds. */
	fc_put64(p, (uint64_t)fc->sha.Nh << 32 | fc->sha.Nl);
	p += 8;
	memcpy(p, fc->sha.data, 64);
}

int
filecrypt_save_hash(const struct filecrypt *fc, uint8_t out[FILECRYPT_STATEBYTES])
{
	/* The hash must have reached exactly the bytes the stream's half records. */
	if (!fc->hash_apart || out[0] != FILECRYPT_STATE_VERSION ||
	        fc_get64(out + 3 + 8) != fc->hashed)
		return SOTTO_ERR_INVALID;
	fc_save_sha(fc, out);
	return 0;
}

void
filecrypt_save(const struct filecrypt *fc, uint8_t out[FILECRYPT_STATEBYTES])
{
	filecrypt_save_stream(fc, out);
	fc_save_sha(fc, out);
}

int
filecrypt_restore(struct filecrypt **out, const uint8_t in[FILECRYPT_STATEBYTES])
{
	struct filecrypt *fc = NULL;
	const uint8_t *p = in;
	uint64_t bits;
	int i, r;

	*out = NULL;
	if (p[0] != FILECRYPT_STATE_VERSION || (p[1] != FC_PUSH && p[1] != FC_PULL) || p[2] > 1)
		return SOTTO_ERR_FORMAT;
	if ((r = filecrypt_alloc(&fc, p[1])) != 0)
		return r;
	fc->final = p[2];
	p += 3;
	fc->chunks = fc_get64(p);
	p += 8;
	fc->bytes = fc_get64(p);
	p += 8;
	memcpy(fc->ss.k, p, sizeof(fc->ss.k));
	p += sizeof(fc->ss.k);
	memcpy(fc->ss.nonce, p, sizeof(fc->ss.nonce));
	p += sizeof(fc->ss.nonce);
	memcpy(fc->ss._pad, p, sizeof(fc->ss._pad));
	p += sizeof(fc->ss._pad);
	for (i = 0; i < 8; i++) {
		fc->sha.h[i] = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
		               (uint32_t)p[3];
		p += 4;
	}
	bits = fc_get64(p);
	p += 8;
	fc->sha.Nl = (SHA_LONG)bits;
	fc->sha.Nh = (SHA_LONG)(bits >> 32);
	memcpy(fc->sha.data, p, 64);
	fc->sha.num = (unsigned int)(fc->bytes % 64);
	fc->sha.md_len = SHA256_DIGEST_LENGTH;
	/* The hash counts bits: it must agree with the bytes the state claims. */
	if (bits != fc->bytes * 8 || fc->bytes > FILECRYPT_MAX_PLAIN ||
	        fc->chunks > fc->bytes / FILECRYPT_CHUNK + 1) {
		filecrypt_free(fc);
		return SOTTO_ERR_FORMAT;
	}
	*out = fc;
	return 0;
}

void
filecrypt_free(struct filecrypt *fc)
{
	/* sodium_free wipes before it unmaps. */
	if (fc != NULL)
		sodium_free(fc);
}
