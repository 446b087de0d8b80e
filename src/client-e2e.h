/*
 * End-to-end sessions for the sotto client: X3DH to start one, the Double
 * Ratchet for each message, and the content layer (src/content.proto) in
 * between; doc/e2e.md section 6 gives the layouts.
 *
 * A session is what client.db keeps per peer (client_store_session_*):
 *
 *   u8 version (1) || string(ratchet state) || string(pending X3DH header)
 *       || string(peer identity SPKI DER)
 *
 * The pending header is sent in front of every message until the peer has
 * replied.  Ownership: a struct e2e_session is the caller's, freed (and
 * wiped) with e2e_session_free().  Not thread-safe.
 */
#ifndef SOTTO_CLIENT_E2E_H
#define SOTTO_CLIENT_E2E_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/err.h"
#include "crypto/ratchet.h"
#include "keys/identity.h"
#include "src/client-store.h"
#include "src/content.pb-c.h"
#include "src/proto.h"

#define E2E_SESSION_VERSION 1
#define E2E_SEALED_VERSION  1

struct e2e_session {
	struct ratchet *r;
	uint8_t *hdr; /* pending X3DH header, or NULL once the peer replied */
	size_t hdrlen;
	struct identity_pub *peer; /* the peer's identity key */
};

void e2e_session_free(struct e2e_session *s);

/* The stored session with peer; SOTTO_ERR_NOTFOUND if there is none. */
int e2e_session_load(struct client_store *cs, const char *peer, struct e2e_session **out) SOTTO_WUR;
/* Save s for peer (join the caller's transaction). */
int e2e_session_save(struct client_store *cs, const char *peer, const struct e2e_session *s,
        int64_t now) SOTTO_WUR;

/*
 * Check the bundle's signed-prekey signature with its identity key
 * (SOTTO_ERR_VERIFY if it does not verify) and hand that key out in *peer.
 */
int e2e_bundle_check(const Sotto__Bundle *b, struct identity_pub **peer) SOTTO_WUR;

/* Start a session as initiator from a checked bundle whose identity is peer. */
int e2e_session_initiate(struct e2e_session **out, const struct identity *self,
        const struct identity_pub *peer, const Sotto__Bundle *b) SOTTO_WUR;

/* Encrypt c under s into Sealed bytes (*out malloc'd). */
int e2e_seal(struct e2e_session *s, const struct identity *self, const Sottoc__Content *c,
        uint8_t **out, size_t *outlen) SOTTO_WUR;

/*
 * Open Sealed bytes from peer: with the stored session (which *sess then
 * is, advanced), or, for a message carrying an X3DH header that the stored
 * session does not open, a new session answering it with our prekeys (the
 * one-time prekey is consumed; do this inside a transaction).  *fresh says
 * which.  *content (free with sottoc__content__free_unpacked) is the
 * plaintext.  SOTTO_ERR_VERIFY or SOTTO_ERR_FORMAT when it does not open.
 */
int e2e_open(struct client_store *cs, const struct identity *self, const char *peer,
        const uint8_t *sealed, size_t len, struct e2e_session **sess, int *fresh,
        Sottoc__Content **content) SOTTO_WUR;

#endif
