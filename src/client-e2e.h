/*
 * End-to-end sessions for the sotto client: X3DH to start one, the Double
 * Ratchet for each message, and the content layer (src/content.proto) in
 * between; doc/e2e.md section 6 gives the layouts.
 *
 * A session is what client.db keeps per peer (client_store_session_*):
 *
 *   u8 version (2) || string(ratchet state) || string(pending X3DH header)
 *       || string(peer identity SPKI DER) || string(previous ratchet state)
 *
 * (version 1 ends before the last field).  The pending header is sent in
 * front of every message until the peer has replied.  The previous state, if
 * not empty, only decrypts: it is the session the peer started while ours
 * was pending, which lost the tie-break of e2e_open().  Ownership: a struct e2e_session is the caller's, freed (and
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

#define E2E_SESSION_VERSION 2
#define E2E_X3DH_TAG_INFO   "sotto-x3dh-seen-v1" /* names an answered header in client.db */
#define E2E_SEALED_VERSION  1

struct e2e_session {
	struct ratchet *r;
	uint8_t *hdr; /* pending X3DH header, or NULL once the peer replied */
	size_t hdrlen;
	struct identity_pub *peer; /* the peer's identity key */
	struct ratchet *prev;      /* receive-only: the peer's losing session, or NULL */
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
/* The same for a Content already packed (ptlen bytes at pt). */
int e2e_seal_packed(struct e2e_session *s, const struct identity *self, const uint8_t *pt,
        size_t ptlen, uint8_t **out, size_t *outlen) SOTTO_WUR;

/*
 * Open Sealed bytes from peer, to us (self, named self_name), inside the
 * caller's transaction; on failure the caller rolls it back.  *sess is the
 * session to save and *content (sottoc__content__free_unpacked) the
 * plaintext.  In order:
 *
 *  - the stored session opens it (*sess is that session, advanced; if it was
 *    ours and pending, the peer has replied: the header is dropped, and so
 *    is the previous state);
 *  - the stored previous state opens it;
 *  - it carries an X3DH header: SOTTO_ERR_EXISTS if that header was answered
 *    before (a replay: nothing changes), else we answer it with our prekeys
 *    (consuming the one-time prekey) and remember it.  The new session
 *    replaces the stored one, except when ours is still pending with the
 *    same peer key and self_name sorts before peer (bytewise): then ours
 *    stays and the new one becomes the previous state, so that both sides
 *    keep the session that the lower name started.  *fresh is 1: check
 *    (*sess)->peer against the peer's trusted key.
 *
 * SOTTO_ERR_VERIFY, SOTTO_ERR_FORMAT or SOTTO_ERR_NOTFOUND when it does not
 * open.
 */
int e2e_open(struct client_store *cs, const struct identity *self, const char *self_name,
        const char *peer, const uint8_t *sealed, size_t len, struct e2e_session **sess, int *fresh,
        Sottoc__Content **content) SOTTO_WUR;

/*
 * Forget what client.db no longer needs to recognise replays: envelope ids
 * seen more than CLIENT_STORE_SEEN_DAYS ago (a copy that old fails to
 * decrypt instead of being dropped quietly), and answered X3DH headers whose
 * signed prekey is gone.
 */
int e2e_store_prune(struct client_store *cs, int64_t now) SOTTO_WUR;

#endif
