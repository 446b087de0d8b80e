/*
 * The exact byte strings that identity keys sign in the protocol, built in
 * one place so that sottod and the client cannot disagree.  Layouts (also in
 * sotto-protocol(7)), with u32/u64 big-endian:
 *
 *   login:         "sotto-auth-v1"     || challenge[32] || exporter[32]
 *   registration:  "sotto-register-v1" || challenge[32] || exporter[32] || username
 *   signed prekey: "sotto-spk-v1"      || u32 id || public[32] || u64 created
 *
 * Thread-safe.
 */
#ifndef SOTTO_SIGMSG_H
#define SOTTO_SIGMSG_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/buf.h"
#include "crypto/err.h"
#include "src/proto.h"
#include "src/tls.h"

#define SIGMSG_SPK_CONTEXT "sotto-spk-v1"

/* Append the login message to b. */
int sigmsg_login(struct buf *b, const uint8_t challenge[PROTO_CHALLENGE_BYTES],
        const uint8_t exporter[TLS_EXPORTER_BYTES]) SOTTO_WUR;
/* Append the registration message for username (normalized, lower case) to b. */
int sigmsg_register(struct buf *b, const uint8_t challenge[PROTO_CHALLENGE_BYTES],
        const uint8_t exporter[TLS_EXPORTER_BYTES], const char *username) SOTTO_WUR;
/* Append the signed-prekey message to b. */
int sigmsg_spk(struct buf *b, uint32_t id, const uint8_t pub[PROTO_PREKEY_BYTES],
        uint64_t created) SOTTO_WUR;

#endif
