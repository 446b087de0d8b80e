/*
 * The exact byte strings that identity keys sign in the protocol, built in
 * one place so that sottod and the client cannot disagree.  Layouts (also in
 * sotto-protocol(7)), with u32/u64 big-endian:
 *
 *   login:         "sotto-auth-v1"     || challenge[32] || exporter[32]
 *   registration:  "sotto-register-v1" || challenge[32] || exporter[32] || username
 *   signed prekey: "sotto-spk-v1"      || u32 id || public[32] || u64 created
 *   group change:  "sotto-group-v1"    || group_id[16] || u64 serial || u8 op
 *                      || string(signer) || u32 n || n x string(user)
 *
 * where string(x) is u32 length || x, and a group change's users are lower
 * case, distinct and sorted by byte value (sigmsg_users_canonical).
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

/*
 * Append a signed membership change of group_id (sotto.proto, "Signed
 * membership changes").  SOTTO_ERR_INVALID unless users are canonical.
 */
int sigmsg_group_change(struct buf *b, const uint8_t group_id[PROTO_GROUP_ID_BYTES],
        uint64_t serial, uint32_t op, const char *signer, const char *const *users,
        size_t n) SOTTO_WUR;

/* 1 if users are valid usernames in lower case, distinct and sorted by byte value, else 0. */
int sigmsg_users_canonical(const char *const *users, size_t n);

#endif
