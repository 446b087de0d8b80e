/*
 * The client's side of groups, without I/O: the group record kept in
 * client.db, checking and applying the signed membership changes that the
 * server and the owner hand out, renames, and sealing and opening group
 * messages with sender keys (crypto/senderkey.h).  The commands and the
 * receive loop put these together.
 *
 * Trust: a member list is only ever what a replay of signed changes gives.
 * Each change is checked against its signer's identity key, which the
 * caller supplies (from known_peers, which it has checked): the owner signs
 * the creation, additions and removals, and a member signs its own leave.
 * A change that is unsigned, forged, out of order, or signed by someone
 * without the right is refused with a sentence for the user, and the group
 * stays as it was.  client_group_check_members() then compares a list that
 * the server sends with the verified one, so a member the server added on its
 * own is caught.
 *
 * Ownership: a struct client_group is the caller's, freed with
 * client_group_free().  Change structs borrow their strings.  Content and
 * sealed buffers returned are malloc'd for the caller; those holding chain
 * keys are wiped before they are freed here, and the caller wipes its own.
 * Not thread-safe.
 */
#ifndef SOTTO_CLIENT_GROUP_H
#define SOTTO_CLIENT_GROUP_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/buf.h"
#include "crypto/err.h"
#include "crypto/senderkey.h"
#include "keys/identity.h"
#include "src/client-store.h"
#include "src/content.pb-c.h"
#include "src/proto.h"

#define CLIENT_GROUP_ID_BYTES       PROTO_GROUP_ID_BYTES
#define CLIENT_GROUP_NAME_MAX       64 /* bytes of UTF-8 */
#define CLIENT_GROUP_MEMBERS_MAX    PROTO_MAX_GROUP_USERS
#define CLIENT_GROUP_RECORD_VERSION 1
#define CLIENT_GROUP_SEALED_VERSION 1 /* GroupSealed.version */
#define CLIENT_GROUP_ERR_MAX        256

struct client_group {
	uint8_t id[CLIENT_GROUP_ID_BYTES];
	char name[CLIENT_GROUP_NAME_MAX + 1]; /* "" until the owner names it */
	char owner[PROTO_USERNAME_MAX + 1];
	uint64_t serial; /* of the last change applied */
	size_t n;        /* members, sorted by byte value, the owner included */
	char (*members)[PROTO_USERNAME_MAX + 1];
	int rekey; /* a member was removed or left: make and hand out a new sending chain */
};

/* One signed change (sotto.proto GroupChangeRecord, content.proto SignedGroupChange). */
struct client_group_change {
	uint64_t serial;
	uint32_t op; /* Sotto__GroupOp */
	const char *signer;
	const char *const *users;
	size_t n_users;
	const uint8_t *signature;
	size_t signature_len;
};

/*
 * Find user's identity key for a signature check: 0 with *out (the caller
 * frees it), or an error (SOTTO_ERR_NOTFOUND when the key is not known).
 */
typedef int (*client_group_key_fn)(void *arg, const char *user, struct identity_pub **out);

void client_group_free(struct client_group *g);
/* 1 if name is a member. */
int client_group_is_member(const struct client_group *g, const char *name);
/* 1 if name is usable as a group name: 1..64 bytes of UTF-8 without control characters. */
int client_group_name_ok(const char *name);

/* The record in client.db: version, id, name, owner, serial, rekey flag, members. */
int client_group_serialize(const struct client_group *g, struct buf *out) SOTTO_WUR;
/* SOTTO_ERR_FORMAT for anything malformed (unsorted members, an owner not among them, ...). */
int client_group_deserialize(struct client_group **out, const uint8_t *data, size_t len) SOTTO_WUR;
/* The stored group id; SOTTO_ERR_NOTFOUND if there is none. */
int client_group_load(struct client_store *cs, const uint8_t id[CLIENT_GROUP_ID_BYTES],
        struct client_group **out) SOTTO_WUR;
int client_group_save(struct client_store *cs, const struct client_group *g, int64_t now) SOTTO_WUR;

/* Sign a change as self (whose username is self_name) into sig (IDENTITY_SIG_MAX is enough). */
int client_group_sign(const struct identity *self, const char *self_name,
        const uint8_t id[CLIENT_GROUP_ID_BYTES], uint64_t serial, uint32_t op,
        const char *const *users, size_t n, uint8_t *sig, size_t sigcap, size_t *siglen) SOTTO_WUR;

/*
 * Check change ch of group id against the group as it is (*g, or NULL before
 * the creation) and signer_key, the identity key of ch->signer, and apply
 * it: a creation makes *g (named ""), anything else changes it.  On error
 * *g is unchanged and err says why, for the user:
 *   SOTTO_ERR_VERIFY  the signature does not verify (unsigned or forged);
 *   SOTTO_ERR_PERM    the signer may not make the change (not the owner);
 *   SOTTO_ERR_AGAIN   a change is missing before it (fetch from g->serial);
 *   SOTTO_ERR_EXISTS  it is already applied (serial at or below g->serial);
 *   SOTTO_ERR_FORMAT  anything else malformed (an add of a member, ...).
 */
int client_group_apply(struct client_group **g, const uint8_t id[CLIENT_GROUP_ID_BYTES],
        const struct client_group_change *ch, const struct identity_pub *signer_key, char *err,
        size_t errlen) SOTTO_WUR;

/*
 * Apply changes in order, looking up each signer's key with keyfn; changes
 * already applied are skipped.  Stops at the first refusal (the changes
 * before it stay applied; err names the serial and the reason).
 */
int client_group_apply_all(struct client_group **g, const uint8_t id[CLIENT_GROUP_ID_BYTES],
        const struct client_group_change *chs, size_t n, client_group_key_fn keyfn, void *arg,
        char *err, size_t errlen) SOTTO_WUR;

/*
 * 0 if members (sorted or not) are exactly the verified members of g, else
 * SOTTO_ERR_VERIFY with err naming a member that no signed change added, or
 * one that the list leaves out.
 */
int client_group_check_members(const struct client_group *g, const char *const *members, size_t n,
        char *err, size_t errlen) SOTTO_WUR;

/*
 * A GroupUpdate from user from, over the 1:1 session: from must be the
 * owner (SOTTO_ERR_PERM otherwise), its changes must apply (as
 * client_group_apply_all; *g may start NULL for a group we are new to),
 * and its members must be what they make (SOTTO_ERR_VERIFY).  Then the
 * name is taken.  On any error *g is as it was.
 */
int client_group_accept_update(struct client_group **g, const char *from,
        const Sottoc__GroupUpdate *u, client_group_key_fn keyfn, void *arg, char *err,
        size_t errlen) SOTTO_WUR;

/* A rename from user from: SOTTO_ERR_PERM unless from is the owner, SOTTO_ERR_INVALID for a bad name. */
int client_group_rename(struct client_group *g, const char *from, const char *name, char *err,
        size_t errlen) SOTTO_WUR;

/* A packed Content holding a GroupUpdate of g with these changes. */
int client_group_update_pack(const struct client_group *g, const struct client_group_change *chs,
        size_t n, uint64_t sent_ms, uint8_t **out, size_t *outlen) SOTTO_WUR;

/* A packed Content holding the SenderKeyDistribution of our chain s in group id (wipe *out). */
int client_group_dist_pack(const struct senderkey_send *s, const uint8_t id[CLIENT_GROUP_ID_BYTES],
        uint64_t sent_ms, uint8_t **out, size_t *outlen) SOTTO_WUR;
/* A receiving chain from a SenderKeyDistribution; SOTTO_ERR_FORMAT if its fields are malformed. */
int client_group_dist_accept(
        const Sottoc__SenderKeyDistribution *d, struct senderkey_recv **out) SOTTO_WUR;

/*
 * Seal content c for group id as self with our chain s (which steps): the
 * bytes of SendGroup.sealed.  Save s before sending.
 */
int client_group_seal(struct senderkey_send *s, const uint8_t id[CLIENT_GROUP_ID_BYTES],
        const char *self, const Sottoc__Content *c, uint8_t **out, size_t *outlen) SOTTO_WUR;
/*
 * Open SendGroup.sealed bytes from sender in group id with its chain r.
 * Errors as senderkey_open(), and SOTTO_ERR_FORMAT for a malformed envelope
 * or content that may only travel 1:1 (GroupUpdate, SenderKeyDistribution).
 * *out is freed with sottoc__content__free_unpacked().
 */
int client_group_open(struct senderkey_recv *r, const uint8_t id[CLIENT_GROUP_ID_BYTES],
        const char *sender, const uint8_t *sealed, size_t len, Sottoc__Content **out) SOTTO_WUR;

/* Sending and receiving chains in client.db (our own under our own name). */
int client_group_send_load(struct client_store *cs, const uint8_t id[CLIENT_GROUP_ID_BYTES],
        const char *self, struct senderkey_send **out) SOTTO_WUR;
int client_group_send_save(struct client_store *cs, const uint8_t id[CLIENT_GROUP_ID_BYTES],
        const char *self, const struct senderkey_send *s, int64_t now) SOTTO_WUR;
int client_group_recv_load(struct client_store *cs, const uint8_t id[CLIENT_GROUP_ID_BYTES],
        const char *sender, struct senderkey_recv **out) SOTTO_WUR;
int client_group_recv_save(struct client_store *cs, const uint8_t id[CLIENT_GROUP_ID_BYTES],
        const char *sender, const struct senderkey_recv *r, int64_t now) SOTTO_WUR;

#endif
