/*
 * Tests for crypto/filecrypt: round trips at the chunk edges, the size
 * arithmetic, truncation, tampering and reordering, and both ways of
 * resuming (a saved pull state, a replayed push).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "crypto/filecrypt.h"
#include "crypto/hash.h"
#include "crypto/util.h"

static void
setup(void)
{
	cr_assert_eq(sotto_crypto_init(), 0);
}

/* cppcheck-suppress unknownMacro */
TestSuite(filecrypt, .init = setup);

/* n bytes of a fixed pseudo-random pattern (so failures reproduce). */
static uint8_t *
pattern(size_t n)
{
	uint8_t *p = malloc(n > 0 ? n : 1);
	uint32_t x = 0x12345678;
	size_t i;

	cr_assert_not_null(p);
	for (i = 0; i < n; i++) {
		x = x * 1103515245u + 12345u;
		p[i] = (uint8_t)(x >> 16);
	}
	return p;
}

/* Encrypt m (n bytes) into a new buffer of filecrypt_ciphertext_size(n) bytes. */
static uint8_t *
encrypt_all(const uint8_t *m, size_t n, const uint8_t key[FILECRYPT_KEYBYTES], size_t *clen,
        uint8_t hash[FILECRYPT_HASHBYTES])
{
	struct filecrypt *fc = NULL;
	uint8_t *c;
	size_t off = 0, pos = FILECRYPT_HEADERBYTES, take;
	int final;

	*clen = (size_t)filecrypt_ciphertext_size(n);
	cr_assert_gt(*clen, 0);
	cr_assert_not_null(c = malloc(*clen));
	cr_assert_eq(filecrypt_push_new(&fc, c, key), 0);
	do {
		take = n - off > FILECRYPT_CHUNK ? FILECRYPT_CHUNK : n - off;
		final = off + take == n;
		cr_assert_eq(filecrypt_push(fc, c + pos, m + off, take, final), 0);
		off += take;
		pos += take + FILECRYPT_ABYTES;
	} while (!final);
	cr_assert_eq(pos, *clen, "ciphertext size: wrote %zu, expected %zu", pos, *clen);
	cr_assert_eq(filecrypt_finish(fc, hash), 0);
	cr_assert_eq(filecrypt_bytes(fc), n);
	filecrypt_free(fc);
	return c;
}

/*
 * Decrypt c chunk by chunk from chunk index `from` with state fc (which is
 * freed); out receives plaintext from chunk `from` on.  Returns the first
 * error, or 0 with *outlen set and hash filled once FINAL was seen.
 */
static int
decrypt_from(struct filecrypt *fc, const uint8_t *c, size_t clen, uint8_t *out, size_t *outlen,
        uint8_t hash[FILECRYPT_HASHBYTES])
{
	size_t pos = (size_t)filecrypt_chunk_offset(filecrypt_chunks(fc)), take, mlen, done = 0;
	int final = 0, r = 0;

	while (pos < clen && !final) {
		take = clen - pos > FILECRYPT_CCHUNK ? FILECRYPT_CCHUNK : clen - pos;
		if ((r = filecrypt_pull(fc, out + done, &mlen, c + pos, take, &final)) != 0)
			goto out;
		done += mlen;
		pos += take;
	}
	if (final && pos != clen) {
		r = SOTTO_ERR_FORMAT; /* bytes after FINAL */
		goto out;
	}
	r = filecrypt_finish(fc, hash);
	*outlen = done;
out:
	filecrypt_free(fc);
	return r;
}

static int
decrypt_all(const uint8_t *c, size_t clen, const uint8_t key[FILECRYPT_KEYBYTES], uint8_t *out,
        size_t *outlen, uint8_t hash[FILECRYPT_HASHBYTES])
{
	struct filecrypt *fc = NULL;

	cr_assert_geq(clen, FILECRYPT_HEADERBYTES);
	cr_assert_eq(filecrypt_pull_new(&fc, c, key), 0);
	return decrypt_from(fc, c, clen, out, outlen, hash);
}

static void
round_trip(size_t n)
{
	uint8_t key[FILECRYPT_KEYBYTES], h1[FILECRYPT_HASHBYTES], h2[FILECRYPT_HASHBYTES];
	uint8_t want[HASH_SHA256_BYTES], *m = pattern(n), *c, *out;
	uint64_t plain = 0;
	size_t clen, outlen = 0;

	filecrypt_keygen(key);
	c = encrypt_all(m, n, key, &clen, h1);
	cr_assert_eq(filecrypt_plaintext_size(clen, &plain), 0);
	cr_assert_eq(plain, n);
	cr_assert_not_null(out = malloc(n + 1));
	cr_assert_eq(decrypt_all(c, clen, key, out, &outlen, h2), 0, "size %zu", n);
	cr_assert_eq(outlen, n);
	if (n > 0)
		cr_assert_arr_eq(out, m, n);
	hash_sha256(want, m, n);
	cr_assert_arr_eq(h1, want, sizeof(want), "push hash differs for size %zu", n);
	cr_assert_arr_eq(h2, want, sizeof(want), "pull hash differs for size %zu", n);
	free(m);
	free(c);
	free(out);
}

Test(filecrypt, round_trip_empty)
{
	round_trip(0);
}

Test(filecrypt, round_trip_one_byte)
{
	round_trip(1);
}

Test(filecrypt, round_trip_one_chunk)
{
	round_trip(FILECRYPT_CHUNK);
}

Test(filecrypt, round_trip_chunk_plus_one)
{
	round_trip(FILECRYPT_CHUNK + 1);
}

Test(filecrypt, round_trip_three_chunks_and_five)
{
	round_trip(3 * FILECRYPT_CHUNK + 5);
}

Test(filecrypt, sizes)
{
	uint64_t p = 99;

	cr_assert_eq(filecrypt_ciphertext_size(0), 24 + 17);
	cr_assert_eq(filecrypt_ciphertext_size(1), 24 + 1 + 17);
	cr_assert_eq(filecrypt_ciphertext_size(65536), 24 + 65536 + 17);
	cr_assert_eq(filecrypt_ciphertext_size(65537), 24 + 65537 + 2 * 17);
	cr_assert_eq(filecrypt_ciphertext_size(FILECRYPT_MAX_PLAIN + 1), 0);
	cr_assert_eq(filecrypt_chunk_offset(0), 24);
	cr_assert_eq(filecrypt_chunk_offset(2), 24 + 2 * (65536 + 17));
	/* Every size maps back; sizes between valid ones are refused. */
	cr_assert_eq(filecrypt_plaintext_size(24 + 17, &p), 0);
	cr_assert_eq(p, 0);
	cr_assert_eq(filecrypt_plaintext_size(24 + 65536 + 17, &p), 0);
	cr_assert_eq(p, 65536);
	cr_assert_eq(filecrypt_plaintext_size(24 + 65537 + 34, &p), 0);
	cr_assert_eq(p, 65537);
	cr_assert_eq(filecrypt_plaintext_size(24 + 16, &p), SOTTO_ERR_FORMAT);
	cr_assert_eq(filecrypt_plaintext_size(0, &p), SOTTO_ERR_FORMAT);
	/* A full chunk followed by an empty FINAL chunk is never written. */
	cr_assert_eq(filecrypt_plaintext_size(24 + 65553 + 17, &p), SOTTO_ERR_FORMAT);
	cr_assert_eq(filecrypt_plaintext_size(24 + 65553 + 10, &p), SOTTO_ERR_FORMAT);
}

/* The stream ends after a MESSAGE chunk: no FINAL, so the file is truncated. */
Test(filecrypt, truncation_detected)
{
	uint8_t key[FILECRYPT_KEYBYTES], h[FILECRYPT_HASHBYTES],
	        *m = pattern(2 * FILECRYPT_CHUNK + 9);
	uint8_t *c, *out = malloc(3 * FILECRYPT_CHUNK);
	size_t clen, outlen = 0;

	filecrypt_keygen(key);
	c = encrypt_all(m, 2 * FILECRYPT_CHUNK + 9, key, &clen, h);
	/* Drop the last chunk, then the last two. */
	cr_assert_eq(decrypt_all(c, (size_t)filecrypt_chunk_offset(2), key, out, &outlen, h),
	        SOTTO_ERR_SHORT);
	cr_assert_eq(decrypt_all(c, (size_t)filecrypt_chunk_offset(1), key, out, &outlen, h),
	        SOTTO_ERR_SHORT);
	/* Cut inside the last chunk: it no longer verifies. */
	cr_assert_eq(decrypt_all(c, clen - 1, key, out, &outlen, h), SOTTO_ERR_VERIFY);
	free(m);
	free(c);
	free(out);
}

Test(filecrypt, flipped_byte_detected)
{
	uint8_t key[FILECRYPT_KEYBYTES], h[FILECRYPT_HASHBYTES], *m = pattern(2 * FILECRYPT_CHUNK);
	uint8_t *c, *out = malloc(2 * FILECRYPT_CHUNK);
	size_t clen, outlen = 0,
	             where[] = {0, 23, 24, 24 + 100, 24 + FILECRYPT_CCHUNK - 1,
	                     24 + FILECRYPT_CCHUNK + 5000, 0};
	size_t i;

	filecrypt_keygen(key);
	c = encrypt_all(m, 2 * FILECRYPT_CHUNK, key, &clen, h);
	where[sizeof(where) / sizeof(where[0]) - 1] = clen - 1;
	for (i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
		c[where[i]] ^= 0x01;
		cr_assert_eq(decrypt_all(c, clen, key, out, &outlen, h), SOTTO_ERR_VERIFY,
		        "a flipped bit at byte %zu went unnoticed", where[i]);
		c[where[i]] ^= 0x01;
	}
	cr_assert_eq(decrypt_all(c, clen, key, out, &outlen, h), 0);
	/* The wrong key fails as well. */
	key[0] ^= 1;
	cr_assert_eq(decrypt_all(c, clen, key, out, &outlen, h), SOTTO_ERR_VERIFY);
	free(m);
	free(c);
	free(out);
}

Test(filecrypt, reordered_chunks_detected)
{
	uint8_t key[FILECRYPT_KEYBYTES], h[FILECRYPT_HASHBYTES],
	        *m = pattern(3 * FILECRYPT_CHUNK + 5);
	uint8_t *c, *out = malloc(4 * FILECRYPT_CHUNK), *tmp = malloc(FILECRYPT_CCHUNK);
	size_t clen, outlen = 0, a = (size_t)filecrypt_chunk_offset(0),
	             b = (size_t)filecrypt_chunk_offset(1);

	filecrypt_keygen(key);
	c = encrypt_all(m, 3 * FILECRYPT_CHUNK + 5, key, &clen, h);
	memcpy(tmp, c + a, FILECRYPT_CCHUNK);
	memcpy(c + a, c + b, FILECRYPT_CCHUNK);
	memcpy(c + b, tmp, FILECRYPT_CCHUNK);
	cr_assert_eq(decrypt_all(c, clen, key, out, &outlen, h), SOTTO_ERR_VERIFY);
	/* A chunk repeated in place of the next one is refused too. */
	memcpy(c + b, c + a, FILECRYPT_CCHUNK);
	cr_assert_eq(decrypt_all(c, clen, key, out, &outlen, h), SOTTO_ERR_VERIFY);
	free(m);
	free(c);
	free(out);
	free(tmp);
}

/* A failed pull leaves the state as it was: the right chunk still verifies afterwards. */
Test(filecrypt, bad_chunk_leaves_state)
{
	uint8_t key[FILECRYPT_KEYBYTES], h[FILECRYPT_HASHBYTES], *m = pattern(FILECRYPT_CHUNK + 3);
	uint8_t *c, *bad, *out = malloc(FILECRYPT_CHUNK);
	struct filecrypt *fc = NULL;
	size_t clen, mlen;
	int final;

	filecrypt_keygen(key);
	c = encrypt_all(m, FILECRYPT_CHUNK + 3, key, &clen, h);
	cr_assert_not_null(bad = malloc(FILECRYPT_CCHUNK));
	memcpy(bad, c + 24, FILECRYPT_CCHUNK);
	bad[7] ^= 0x80;
	cr_assert_eq(filecrypt_pull_new(&fc, c, key), 0);
	cr_assert_eq(
	        filecrypt_pull(fc, out, &mlen, bad, FILECRYPT_CCHUNK, &final), SOTTO_ERR_VERIFY);
	cr_assert_eq(filecrypt_chunks(fc), 0);
	cr_assert_eq(filecrypt_pull(fc, out, &mlen, c + 24, FILECRYPT_CCHUNK, &final), 0);
	cr_assert_eq(mlen, FILECRYPT_CHUNK);
	cr_assert_not(final);
	cr_assert_arr_eq(out, m, FILECRYPT_CHUNK);
	/* Finishing before FINAL is a truncation. */
	cr_assert_eq(filecrypt_finish(fc, h), SOTTO_ERR_SHORT);
	filecrypt_free(fc);
	free(m);
	free(c);
	free(bad);
	free(out);
}

/* Bytes after the FINAL chunk are refused by the caller's loop, and pull after FINAL too. */
Test(filecrypt, nothing_after_final)
{
	uint8_t key[FILECRYPT_KEYBYTES], h[FILECRYPT_HASHBYTES], *m = pattern(10), out[64];
	struct filecrypt *fc = NULL;
	uint8_t *c;
	size_t clen, mlen;
	int final;

	filecrypt_keygen(key);
	c = encrypt_all(m, 10, key, &clen, h);
	cr_assert_eq(filecrypt_pull_new(&fc, c, key), 0);
	cr_assert_eq(filecrypt_pull(fc, out, &mlen, c + 24, clen - 24, &final), 0);
	cr_assert(final);
	cr_assert_eq(filecrypt_pull(fc, out, &mlen, c + 24, clen - 24, &final), SOTTO_ERR_INVALID);
	cr_assert_eq(filecrypt_finish(fc, h), 0);
	filecrypt_free(fc);
	/* Pushing after FINAL, or a short chunk that is not FINAL, is a caller error. */
	cr_assert_eq(filecrypt_push_new(&fc, c, key), 0);
	cr_assert_eq(filecrypt_push(fc, out, m, 10, 0), SOTTO_ERR_INVALID);
	cr_assert_eq(filecrypt_push(fc, out, m, 10, 1), 0);
	cr_assert_eq(filecrypt_push(fc, out, m, 0, 1), SOTTO_ERR_INVALID);
	filecrypt_free(fc);
	free(m);
	free(c);
}

/* A download stopped after k chunks resumes from a saved state with identical output. */
Test(filecrypt, resume_pull_from_saved_state)
{
	uint8_t key[FILECRYPT_KEYBYTES], h1[FILECRYPT_HASHBYTES], h2[FILECRYPT_HASHBYTES];
	uint8_t saved[FILECRYPT_STATEBYTES], *m = pattern(5 * FILECRYPT_CHUNK + 77), *c, *out;
	size_t n = 5 * FILECRYPT_CHUNK + 77, clen, mlen, outlen = 0, k;
	struct filecrypt *fc = NULL;
	int final;

	filecrypt_keygen(key);
	c = encrypt_all(m, n, key, &clen, h1);
	cr_assert_not_null(out = calloc(1, n));
	for (k = 0; k <= 5; k++) {
		size_t i;

		memset(out, 0, n);
		cr_assert_eq(filecrypt_pull_new(&fc, c, key), 0);
		for (i = 0; i < k; i++) {
			cr_assert_eq(
			        filecrypt_pull(fc, out + i * FILECRYPT_CHUNK, &mlen,
			                c + filecrypt_chunk_offset(i), FILECRYPT_CCHUNK, &final),
			        0);
		}
		filecrypt_save(fc, saved);
		filecrypt_free(fc);
		/* A fresh process would start here, with the plaintext so far and the state. */
		cr_assert_eq(filecrypt_restore(&fc, saved), 0);
		cr_assert_eq(filecrypt_chunks(fc), k);
		cr_assert_eq(filecrypt_bytes(fc), k * FILECRYPT_CHUNK);
		cr_assert_eq(decrypt_from(fc, c, clen, out + k * FILECRYPT_CHUNK, &outlen, h2), 0,
		        "resume after %zu chunks", k);
		cr_assert_eq(k * FILECRYPT_CHUNK + outlen, n);
		cr_assert_arr_eq(out, m, n, "resume after %zu chunks changed the output", k);
		cr_assert_arr_eq(h1, h2, sizeof(h1), "resume after %zu chunks changed the hash", k);
	}
	free(m);
	free(c);
	free(out);
}

/* An upload replayed from (key, header) produces the same ciphertext bytes. */
Test(filecrypt, resume_push_by_replay)
{
	uint8_t key[FILECRYPT_KEYBYTES], h1[FILECRYPT_HASHBYTES], h2[FILECRYPT_HASHBYTES];
	uint8_t saved[FILECRYPT_STATEBYTES], *m = pattern(3 * FILECRYPT_CHUNK + 1), *c, *c2;
	size_t n = 3 * FILECRYPT_CHUNK + 1, clen, i, take;
	struct filecrypt *fc = NULL, *fc2 = NULL;

	filecrypt_keygen(key);
	c = encrypt_all(m, n, key, &clen, h1);
	cr_assert_not_null(c2 = calloc(1, clen));
	memcpy(c2, c, FILECRYPT_HEADERBYTES);
	cr_assert_eq(filecrypt_push_resume(&fc, c, key), 0);
	/* Replay chunks 0 and 1, keeping only chunks 2 and 3 as if the server had the rest. */
	for (i = 0; i < 4; i++) {
		uint8_t *dst = c2 + filecrypt_chunk_offset(i);

		take = i < 3 ? FILECRYPT_CHUNK : 1;
		if (i == 2) {
			/* Also the other way: a push state saved at this boundary. */
			filecrypt_save(fc, saved);
			cr_assert_eq(filecrypt_restore(&fc2, saved), 0);
			filecrypt_free(fc);
			fc = fc2;
		}
		cr_assert_eq(filecrypt_push(fc, dst, m + i * FILECRYPT_CHUNK, take, i == 3), 0);
	}
	cr_assert_eq(filecrypt_finish(fc, h2), 0);
	cr_assert_arr_eq(c2, c, clen, "a replayed upload differs from the original");
	cr_assert_arr_eq(h1, h2, sizeof(h1));
	filecrypt_free(fc);
	free(m);
	free(c);
	free(c2);
}

Test(filecrypt, restore_refuses_bad_state)
{
	uint8_t key[FILECRYPT_KEYBYTES], header[FILECRYPT_HEADERBYTES], s[FILECRYPT_STATEBYTES];
	struct filecrypt *fc = NULL;

	filecrypt_keygen(key);
	cr_assert_eq(filecrypt_pull_new(&fc, header, key), 0);
	filecrypt_save(fc, s);
	filecrypt_free(fc);
	fc = NULL;
	s[0] = FILECRYPT_STATE_VERSION + 1;
	cr_assert_eq(filecrypt_restore(&fc, s), SOTTO_ERR_FORMAT);
	cr_assert_null(fc);
	s[0] = FILECRYPT_STATE_VERSION;
	s[1] = 7;
	cr_assert_eq(filecrypt_restore(&fc, s), SOTTO_ERR_FORMAT);
	s[1] = 2;
	s[10] = 1; /* one empty FINAL chunk: a valid state */
	cr_assert_eq(filecrypt_restore(&fc, s), 0);
	filecrypt_free(fc);
	s[10] = 2; /* two chunks with zero bytes */
	cr_assert_eq(filecrypt_restore(&fc, s), SOTTO_ERR_FORMAT);
}

/*
 * With the hash apart, push only encrypts: the ciphertext is the same as
 * with the hash in, and the hash comes out right only once every byte went
 * through filecrypt_hash().
 */
Test(filecrypt, hash_apart)
{
	uint8_t key[FILECRYPT_KEYBYTES], h1[FILECRYPT_HASHBYTES], h2[FILECRYPT_HASHBYTES];
	size_t n = 2 * FILECRYPT_CHUNK + 100, clen, off = 0, pos = FILECRYPT_HEADERBYTES, take;
	uint8_t *m = pattern(n), *c, *c2;
	struct filecrypt *fc = NULL;
	int final;

	filecrypt_keygen(key);
	c = encrypt_all(m, n, key, &clen, h1);
	cr_assert_not_null(c2 = calloc(1, clen));
	memcpy(c2, c, FILECRYPT_HEADERBYTES);
	cr_assert_eq(filecrypt_push_resume(&fc, c, key), 0);
	cr_assert_eq(filecrypt_hash(fc, m, 1), SOTTO_ERR_INVALID, "hashing before hash_apart");
	cr_assert_eq(filecrypt_hash_apart(fc), 0);
	cr_assert_eq(filecrypt_hash_apart(fc), SOTTO_ERR_INVALID, "hash_apart twice");
	do {
		take = n - off > FILECRYPT_CHUNK ? FILECRYPT_CHUNK : n - off;
		final = off + take == n;
		cr_assert_eq(filecrypt_push(fc, c2 + pos, m + off, take, final), 0);
		off += take;
		pos += take + FILECRYPT_ABYTES;
	} while (!final);
	cr_assert_arr_eq(c2, c, clen, "the ciphertext depends on where the hash is taken");
	/* Pushed but not all hashed: no answer yet. */
	cr_assert_eq(filecrypt_hash(fc, m, FILECRYPT_CHUNK), 0);
	cr_assert_eq(filecrypt_finish(fc, h2), SOTTO_ERR_INVALID);
	cr_assert_eq(filecrypt_hash(fc, m + FILECRYPT_CHUNK, n - FILECRYPT_CHUNK), 0);
	cr_assert_eq(filecrypt_finish(fc, h2), 0);
	cr_assert_arr_eq(h1, h2, sizeof(h1));
	filecrypt_free(fc);
	free(m);
	free(c);
	free(c2);
}

/*
 * A download that hashes on another thread, resumed midway: the state saved
 * in two halves is byte for byte the one saved whole, and the hash comes out
 * right.
 */
Test(filecrypt, hash_apart_pull_and_split_save)
{
	uint8_t key[FILECRYPT_KEYBYTES], h1[FILECRYPT_HASHBYTES], h2[FILECRYPT_HASHBYTES];
	uint8_t whole[FILECRYPT_STATEBYTES], split[FILECRYPT_STATEBYTES];
	size_t n = 3 * FILECRYPT_CHUNK + 5, clen, mlen, pos = FILECRYPT_HEADERBYTES, take, k;
	uint8_t *m = pattern(n), *c, *out = malloc(n);
	struct filecrypt *fc = NULL, *ref = NULL, *fc2 = NULL;
	int final = 0, f2 = 0;

	cr_assert_not_null(out);
	filecrypt_keygen(key);
	c = encrypt_all(m, n, key, &clen, h1);
	cr_assert_eq(filecrypt_pull_new(&fc, c, key), 0);
	cr_assert_eq(filecrypt_pull_new(&ref, c, key), 0);
	/* Chunk 0 hashed inline, then the hash goes apart from chunk 1 on. */
	take = FILECRYPT_CCHUNK;
	cr_assert_eq(filecrypt_pull(fc, out, &mlen, c + pos, take, &final), 0);
	cr_assert_eq(filecrypt_pull(ref, out, &mlen, c + pos, take, &f2), 0);
	pos += take;
	cr_assert_eq(filecrypt_hash_apart(fc), 0);
	cr_assert_eq(filecrypt_hash_apart(fc), SOTTO_ERR_INVALID, "hash_apart twice");
	for (k = 1; !final; k++) {
		take = clen - pos > FILECRYPT_CCHUNK ? FILECRYPT_CCHUNK : clen - pos;
		cr_assert_eq(filecrypt_pull(fc, out, &mlen, c + pos, take, &final), 0);
		cr_assert_eq(filecrypt_pull(ref, out, &mlen, c + pos, take, &f2), 0);
		pos += take;
		filecrypt_save_stream(fc, split);
		/* The hash is a chunk behind: its half refuses to be saved. */
		cr_assert_eq(filecrypt_save_hash(fc, split), SOTTO_ERR_INVALID);
		cr_assert_eq(filecrypt_hash(fc, out, mlen), 0);
		cr_assert_eq(filecrypt_save_hash(fc, split), 0);
		filecrypt_save(ref, whole);
		cr_assert_arr_eq(split, whole, sizeof(whole), "chunk %zu", k);
		if (k == 2) {
			/* Resume from the split state: the rest decrypts and hashes the same. */
			cr_assert_eq(filecrypt_restore(&fc2, split), 0);
			cr_assert_eq(decrypt_from(fc2, c, clen, out, &mlen, h2), 0);
			cr_assert_arr_eq(h1, h2, sizeof(h1));
		}
	}
	cr_assert_eq(filecrypt_finish(fc, h2), 0);
	cr_assert_arr_eq(h1, h2, sizeof(h1));
	filecrypt_free(fc);
	filecrypt_free(ref);
	free(m);
	free(c);
	free(out);
}
