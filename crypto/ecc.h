/*
 * X25519 key agreement and Ed25519 signatures (libsodium).  Secret keys are
 * caller-owned; callers wipe them with sotto_wipe().  Thread-safe.
 */
#ifndef SOTTO_ECC_H
#define SOTTO_ECC_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define X25519_KEYBYTES        32
#define ED25519_PUBLICKEYBYTES 32
#define ED25519_SECRETKEYBYTES 64 /* seed || public key, libsodium layout */
#define ED25519_SEEDBYTES      32
#define ED25519_SIGBYTES       64

void x25519_keypair(uint8_t pk[X25519_KEYBYTES], uint8_t sk[X25519_KEYBYTES]);
int x25519_public(uint8_t pk[X25519_KEYBYTES], const uint8_t sk[X25519_KEYBYTES]) SOTTO_WUR;
/* out = X25519(sk, pk); SOTTO_ERR_WEAKKEY (out zeroed) for an all-zero result. */
int x25519_shared(uint8_t out[X25519_KEYBYTES], const uint8_t sk[X25519_KEYBYTES],
        const uint8_t pk[X25519_KEYBYTES]) SOTTO_WUR;

void ed25519_keypair(uint8_t pk[ED25519_PUBLICKEYBYTES], uint8_t sk[ED25519_SECRETKEYBYTES]);
void ed25519_seed_keypair(uint8_t pk[ED25519_PUBLICKEYBYTES], uint8_t sk[ED25519_SECRETKEYBYTES],
        const uint8_t seed[ED25519_SEEDBYTES]);
int ed25519_sign(uint8_t sig[ED25519_SIGBYTES], const uint8_t *m, size_t mlen,
        const uint8_t sk[ED25519_SECRETKEYBYTES]) SOTTO_WUR;
/* 0 if sig (siglen must be 64) is a valid signature of m under pk, else SOTTO_ERR_VERIFY. */
int ed25519_verify(const uint8_t *sig, size_t siglen, const uint8_t *m, size_t mlen,
        const uint8_t pk[ED25519_PUBLICKEYBYTES]) SOTTO_WUR;

/* Birational map of an Ed25519 key to its X25519 counterpart (for X3DH). */
int ed25519_pk_to_x25519(
        uint8_t xpk[X25519_KEYBYTES], const uint8_t edpk[ED25519_PUBLICKEYBYTES]) SOTTO_WUR;
int ed25519_sk_to_x25519(
        uint8_t xsk[X25519_KEYBYTES], const uint8_t edsk[ED25519_SECRETKEYBYTES]) SOTTO_WUR;

#endif
