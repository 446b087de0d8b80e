/*
 * The messaging core of the sotto client, shared by the one-shot commands
 * (send, receive) and the interactive mode: encrypt and send a text to one
 * peer or to everyone online, and handle what the server pushes (Deliver,
 * Delivered).  The ratchet state and the message are committed to client.db
 * before a ciphertext leaves or a plaintext is handed to the caller.
 *
 * How results are shown is the caller's business: msg_handle_push() calls
 * back through a struct msg_view.  Like the client-cmd functions, these
 * return 0 or an exit status (enum sotto_exit) after telling the user why on
 * standard error.  Not thread-safe: one sotto_ctx belongs to one thread.
 */
#ifndef SOTTO_CLIENT_MSG_H
#define SOTTO_CLIENT_MSG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "src/client-cmd.h"
#include "src/client-e2e.h"
#include "src/content.pb-c.h"

#define MSG_TEXT_MAX (64 * 1024) /* bytes of text per message */

/* Callbacks for what a push brings; any may be NULL. */
struct msg_view {
	/* A text from peer, stored already; time_ms is when the server took it. */
	void (*message)(void *arg, const char *peer, const uint8_t *msg_id, uint64_t time_ms,
	        const char *text, size_t len);
	/* One of our messages to peer is now CLIENT_MSG_DELIVERED or CLIENT_MSG_READ. */
	void (*state)(
	        void *arg, const char *peer, const uint8_t *msg_id, enum client_msg_state state);
	/* A message from peer stays queued on the server: its key was refused. */
	void (*held)(void *arg, const char *peer, const uint8_t *msg_id);
	/*
	 * A text from sender in a group (id, and its name as shown: the
	 * name, or its short id while it has none), stored already.
	 */
	void (*group_message)(void *arg, const uint8_t *group_id, const char *group,
	        const char *sender, const uint8_t *msg_id, uint64_t time_ms, const char *text,
	        size_t len);
	/* Something happened to a group (created, members changed, renamed): a sentence. */
	void (*group_event)(
	        void *arg, const uint8_t *group_id, const char *group, const char *what);
	void *arg;
	/*
	 * files: peer offers a file, stored as local offer number id; group is the
	 * name of the group it was sent to (peer a verified member), or NULL.
	 */
	void (*file_offer)(void *arg, const char *peer, uint32_t id, const char *name,
	        uint64_t size, const char *group);
};

/*
 * One recipient of msg_multi_send(): a packed Content for to, and the
 * session msg_multi_open() found or started for it (NULL if it could not).
 */
struct msg_multi {
	const char *to;
	const uint8_t *content;
	size_t content_len;
	struct e2e_session *s;
	int sent; /* set by msg_multi_send when the server took it */
};

/* One recipient's outcome of a send. */
struct msg_sent {
	char to[PROTO_USERNAME_MAX + 1];
	uint8_t msg_id[PROTO_MSG_ID_BYTES];
	int64_t sent_ms;    /* our clock, Unix milliseconds */
	int online;         /* the recipient was online */
	uint64_t last_seen; /* Unix seconds, or 0 */
	uint32_t error;     /* a Sotto__ErrorCode for this recipient (broadcast), else 0 */
};

/* Unix milliseconds now. */
int64_t msg_now_ms(void);
/* "HH:MM" or "HH:MM:SS" in local time. */
void msg_fmt_time(char *out, size_t outlen, int64_t secs, int with_secs);
/* "bob is offline (last seen 12:34); it will be delivered when they connect\n". */
void msg_print_offline(FILE *fp, const struct msg_sent *s);

/* Refuse text longer than MSG_TEXT_MAX or holding a NUL byte (exit status 1). */
int msg_text_check(const char *text, size_t len);

/*
 * Send len bytes of text (at most MSG_TEXT_MAX, no NUL inside) to peer (a
 * normalised user name) on the logged-in connection, starting a session if
 * there is none (the peer's key checked by trust_check).  *out describes it.
 */
int msg_send_text(struct sotto_ctx *ctx, const char *peer, const char *text, size_t len,
        struct msg_sent *out);

/*
 * Send text to every other user the server lists as online, each sealed
 * separately, in one SendMulti.  *out is a malloc'd array of *n outcomes
 * (free it), empty when nobody else is online.  A recipient whose session
 * cannot start is left out after saying why; the first such failure's exit
 * status is returned once the others have been sent.
 */
int msg_broadcast_text(
        struct sotto_ctx *ctx, const char *text, size_t len, struct msg_sent **out, size_t *n);

/* Acknowledge one delivered id, waiting for the server's Ok (its deletion is committed). */
int msg_deliver_ack(struct sotto_ctx *ctx, const uint8_t *msg_id);

/*
 * The identity key of peer from the server's bundle, checked by trust_check
 * (an exit status; the caller frees *out).
 */
int msg_peer_key(struct sotto_ctx *ctx, const char *peer, struct identity_pub **out);

/*
 * Open (or start) the session with each recipient.  With all set, the first
 * that cannot start ends the call with its exit status; otherwise those are
 * left with s NULL after saying why, and the first such status is returned
 * once the rest are open.
 */
int msg_multi_open(struct sotto_ctx *ctx, struct msg_multi *m, size_t n, int all);
/*
 * Seal each recipient's content under its session, save the sessions in one
 * transaction, and send them all in one SendMulti with msg_id (recipients
 * without a session are skipped).  sent marks those the server took.
 */
int msg_multi_send(struct sotto_ctx *ctx, struct msg_multi *m, size_t n,
        const uint8_t msg_id[PROTO_MSG_ID_BYTES]);
/* Free the sessions that msg_multi_open() left in m. */
void msg_multi_free(struct msg_multi *m, size_t n);

/*
 * Handle one frame the server pushed: Deliver (decrypt, check the sender's
 * key, store, show, acknowledge, send a read receipt) and Delivered; other
 * frames are ignored.  A message under a key that trust_check refuses is not
 * acknowledged, so the server keeps it: v->held is called and *held counted.
 */
int msg_handle_push(
        struct sotto_ctx *ctx, const Sotto__Frame *f, const struct msg_view *v, int *held);

/* ---- files (client-cmd-file.c) ---------------------------------------------- */

/* Make sure there is a session with peer (start one, trust checked), sending nothing. */
int msg_session_ready(struct sotto_ctx *ctx, const char *peer);

/*
 * Send content (not a text: nothing goes to the history) to peer over the
 * 1:1 session, starting one if need be; *out describes it.
 */
int msg_send_content(struct sotto_ctx *ctx, const char *peer, const Sottoc__Content *content,
        struct msg_sent *out);

/*
 * Keep a FileOffer from peer, received at time_ms, inside the caller's
 * transaction: *id is its local number, or 0 if the offer was malformed and
 * dropped (after saying so).  0 or a negative SOTTO_ERR_* code (the store).
 */
int file_offer_store(struct sotto_ctx *ctx, const char *peer, uint64_t time_ms,
        const Sottoc__FileOffer *offer, uint32_t *id);

#endif
