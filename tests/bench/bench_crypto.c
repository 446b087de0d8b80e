/* Costs of the crypto primitives that later layers (ratchet, X3DH, handshake) build on. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include <openssl/evp.h>

#include "bench.h"
#include "crypto/aead.h"
#include "crypto/ecc.h"
#include "crypto/kdf.h"
#include "crypto/rsa.h"
#include "crypto/util.h"

#define MSG 256

static uint8_t key[AEAD_KEYBYTES], nonce[AEAD_XCHACHA_NPUBBYTES], msg[MSG], ct[MSG + AEAD_ABYTES];
static uint8_t xsk[32], xpk[32], edpk[32], edsk[64], sig[64];
static EVP_PKEY *rsa;
static uint8_t rsasig[RSA_MAX_BYTES];
static size_t rsasiglen;

static void
op_seal(void *arg)
{
	if (aead_xchacha_seal(ct, msg, MSG, NULL, 0, nonce, key) != 0)
		abort();
}

static void
op_open(void *arg)
{
	if (aead_xchacha_open(msg, ct, sizeof(ct), NULL, 0, nonce, key) != 0)
		abort();
}

static void
op_hmac(void *arg)
{
	uint8_t out[32];

	if (kdf_hmac_sha256(out, key, sizeof(key), msg, 1) != 0)
		abort();
}

static void
op_hkdf(void *arg)
{
	uint8_t out[64];

	if (kdf_hkdf_sha256(out, sizeof(out), key, sizeof(key), msg, 32, NULL, 0) != 0)
		abort();
}

static void
op_x25519(void *arg)
{
	uint8_t out[32];

	if (x25519_shared(out, xsk, xpk) != 0)
		abort();
}

static void
op_ed_sign(void *arg)
{
	if (ed25519_sign(sig, msg, MSG, edsk) != 0)
		abort();
}

static void
op_ed_verify(void *arg)
{
	if (ed25519_verify(sig, sizeof(sig), msg, MSG, edpk) != 0)
		abort();
}

static void
op_rsa_sign(void *arg)
{
	if (rsa_pss_sign(rsasig, sizeof(rsasig), &rsasiglen, msg, MSG, rsa) != 0)
		abort();
}

static void
op_rsa_verify(void *arg)
{
	if (rsa_pss_verify(rsasig, rsasiglen, msg, MSG, rsa) != 0)
		abort();
}

int
main(void)
{
	struct bench_result r;

	if (sotto_crypto_init() != 0) {
		fprintf(stderr, "bench_crypto: crypto initialisation failed\n");
		return 2;
	}
	sotto_random(key, sizeof(key));
	sotto_random(nonce, sizeof(nonce));
	sotto_random(msg, sizeof(msg));
	x25519_keypair(xpk, xsk);
	ed25519_keypair(edpk, edsk);

	printf("== crypto primitives (256-byte messages) ==\n");
	bench_run(&r, op_seal, NULL, 31, 20000);
	bench_print("xchacha20poly1305 seal 256 B", &r);
	if (aead_xchacha_seal(ct, msg, MSG, NULL, 0, nonce, key) != 0)
		return 2;
	bench_run(&r, op_open, NULL, 31, 20000);
	bench_print("xchacha20poly1305 open 256 B", &r);
	bench_run(&r, op_hmac, NULL, 31, 20000);
	bench_print("hmac-sha256 (chain step)", &r);
	bench_run(&r, op_hkdf, NULL, 31, 2000);
	bench_print("hkdf-sha256 64 B", &r);
	bench_run(&r, op_x25519, NULL, 31, 500);
	bench_print("x25519 shared secret", &r);
	bench_run(&r, op_ed_sign, NULL, 31, 500);
	bench_print("ed25519 sign", &r);
	bench_run(&r, op_ed_verify, NULL, 31, 500);
	bench_print("ed25519 verify", &r);
	if (rsa_generate(&rsa, 3072) != 0) {
		fprintf(stderr, "bench_crypto: RSA key generation failed\n");
		return 2;
	}
	bench_run(&r, op_rsa_sign, NULL, 11, 20);
	bench_print("rsa-3072 pss sign", &r);
	bench_run(&r, op_rsa_verify, NULL, 11, 200);
	bench_print("rsa-3072 pss verify", &r);
	EVP_PKEY_free(rsa);
	return 0;
}
