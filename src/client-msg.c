/*
 * The client's messaging core; see client-msg.h.  State and message are
 * saved in one client.db transaction before a ciphertext leaves or a
 * plaintext is shown.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto/util.h"
#include "src/client-e2e.h"
#include "src/client-gops.h"
#include "src/client-msg.h"

#define BROADCAST_MAX 1024 /* recipients of one SendMulti (sotto-protocol(7)) */

int64_t
msg_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
msg_fmt_time(char *out, size_t outlen, int64_t secs, int with_secs)
{
	time_t t = (time_t)secs;
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(out, outlen, with_secs ? "%H:%M:%S" : "%H:%M", &tm);
}

void
msg_print_offline(FILE *fp, const struct msg_sent *s)
{
	char when[16];

	if (s->last_seen > 0) {
		msg_fmt_time(when, sizeof(when), (int64_t)s->last_seen, 0);
		fprintf(fp,
		        "%s is offline (last seen %s); it will be delivered when they connect\n",
		        s->to, when);
	} else
		fprintf(fp, "%s is offline (never seen); it will be delivered when they connect\n",
		        s->to);
}

/*
 * Fetch peer's bundle into *reply and check it: *pub is its identity key,
 * which trust_check accepted.  what names the errand for messages.
 */
static int
bundle_fetch(struct sotto_ctx *ctx, const char *peer, const char *what, Sotto__Frame **reply,
        struct identity_pub **pub)
{
	Sotto__Frame req;
	Sotto__GetBundle gb;
	int r;

	*reply = NULL;
	*pub = NULL;
	sotto__get_bundle__init(&gb);
	gb.username = proto_str(peer);
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_GET_BUNDLE;
	req.get_bundle = &gb;
	if ((r = client_conn_request(ctx->conn, &req, reply, 0)) != 0)
		return ctx_request_fail(ctx, what, r);
	if ((*reply)->body_case != SOTTO__FRAME__BODY_BUNDLE)
		return ctx_fail(SOTTO_EXIT_NET, "the server answered GetBundle with %s",
		        frame_body_name(*reply));
	if ((r = e2e_bundle_check((*reply)->bundle, pub)) != 0)
		return ctx_fail(SOTTO_EXIT_TRUST,
		        "%s's keys from the server do not check out (%s); the server may be "
		        "tampering with them",
		        peer, sotto_strerror(r));
	if ((r = trust_check(ctx, peer, *pub)) != 0) {
		identity_pub_free(*pub);
		*pub = NULL;
	}
	return r;
}

int
msg_peer_key(struct sotto_ctx *ctx, const char *peer, struct identity_pub **out)
{
	Sotto__Frame *reply = NULL;
	char what[128];
	int r;

	snprintf(what, sizeof(what), "cannot find %s's key", peer);
	r = bundle_fetch(ctx, peer, what, &reply, out);
	frame_free(reply);
	return r;
}

/* Our session with peer, or a new one from the peer's bundle (trust checked). */
static int
session_for(struct sotto_ctx *ctx, const char *peer, struct e2e_session **out)
{
	Sotto__Frame *reply = NULL;
	struct identity_pub *pub = NULL;
	char what[128];
	int r;

	*out = NULL;
	r = e2e_session_load(ctx->store, peer, out);
	if (r == 0)
		return 0;
	if (r != SOTTO_ERR_NOTFOUND)
		return ctx_fail(SOTTO_EXIT_INTERNAL, "the session with %s does not open: %s", peer,
		        sotto_strerror(r));
	snprintf(what, sizeof(what), "cannot send to %s", peer);
	if ((r = bundle_fetch(ctx, peer, what, &reply, &pub)) != 0)
		goto out;
	if ((r = e2e_session_initiate(out, ctx->id, pub, reply->bundle)) != 0)
		r = ctx_fail(SOTTO_EXIT_INTERNAL, "cannot start a session with %s: %s", peer,
		        sotto_strerror(r));
out:
	identity_pub_free(pub);
	frame_free(reply);
	return r;
}

/* Save peer's advanced session and msg (if not NULL) inside the caller's transaction. */
static int
save_sent(struct sotto_ctx *ctx, const char *peer, const struct e2e_session *s,
        const struct client_msg *msg)
{
	int r;

	if ((r = e2e_session_save(ctx->store, peer, s, (int64_t)time(NULL))) != 0 ||
	        (msg != NULL && (r = client_store_msg_add(ctx->store, msg, NULL)) != 0))
		return r;
	return 0;
}

/*
 * Seal content for peer, save the advanced state (and msg, if not NULL) in
 * one transaction, then Send; *ack receives the Ack frame.
 */
static int
seal_and_send(struct sotto_ctx *ctx, const char *peer, struct e2e_session *s,
        const Sottoc__Content *content, const struct client_msg *msg,
        const uint8_t msg_id[PROTO_MSG_ID_BYTES], Sotto__Frame **ack)
{
	Sotto__Frame req;
	Sotto__Send snd;
	uint8_t *sealed = NULL;
	size_t sealedlen = 0;
	char what[128];
	int r;

	*ack = NULL;
	if ((r = e2e_seal(s, ctx->id, content, &sealed, &sealedlen)) != 0) {
		r = ctx_fail(
		        SOTTO_EXIT_INTERNAL, "cannot encrypt for %s: %s", peer, sotto_strerror(r));
		goto out;
	}
	if ((r = client_store_begin(ctx->store)) != 0 || (r = save_sent(ctx, peer, s, msg)) != 0 ||
	        (r = client_store_commit(ctx->store)) != 0) {
		client_store_rollback(ctx->store);
		r = ctx_fail(SOTTO_EXIT_INTERNAL, "cannot save the message: %s",
		        client_store_last_error(ctx->store));
		goto out;
	}
	sotto__send__init(&snd);
	snd.msg_id = proto_bytes(msg_id, PROTO_MSG_ID_BYTES);
	snd.to = proto_str(peer);
	snd.sealed = proto_bytes(sealed, sealedlen);
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_SEND;
	req.send = &snd;
	if ((r = client_conn_request(ctx->conn, &req, ack, 0)) != 0) {
		snprintf(what, sizeof(what), "cannot send to %s", peer);
		r = ctx_request_fail(ctx, what, r);
		frame_free(*ack);
		*ack = NULL;
		goto out;
	}
	if ((*ack)->body_case != SOTTO__FRAME__BODY_ACK) {
		r = ctx_fail(
		        SOTTO_EXIT_NET, "the server answered Send with %s", frame_body_name(*ack));
		frame_free(*ack);
		*ack = NULL;
	}
out:
	free(sealed);
	return r;
}

/* A Text content and the history row for it, pointing into text and id. */
static void
text_prepare(Sottoc__Content *content, Sottoc__Text *tx, struct client_msg *msg, const char *text,
        size_t len, const uint8_t id[PROTO_MSG_ID_BYTES])
{
	sottoc__content__init(content);
	sottoc__text__init(tx);
	tx->body = proto_str(text);
	content->sent_ms = (uint64_t)msg_now_ms();
	content->body_case = SOTTOC__CONTENT__BODY_TEXT;
	content->text = tx;
	memset(msg, 0, sizeof(*msg));
	msg->dir = CLIENT_MSG_OUT;
	memcpy(msg->msg_id, id, PROTO_MSG_ID_BYTES);
	msg->body = (const uint8_t *)text;
	msg->body_len = len;
	msg->timestamp_ms = (int64_t)content->sent_ms;
	msg->state = CLIENT_MSG_SENT;
}

int
msg_text_check(const char *text, size_t len)
{
	if (len > MSG_TEXT_MAX)
		return ctx_fail(SOTTO_EXIT_USAGE,
		        "the message is %zu bytes long; one message carries at most %d bytes", len,
		        MSG_TEXT_MAX);
	if (memchr(text, '\0', len) != NULL)
		return ctx_fail(
		        SOTTO_EXIT_USAGE, "the message holds a NUL byte, which text cannot");
	return 0;
}

int
msg_send_text(
        struct sotto_ctx *ctx, const char *peer, const char *text, size_t len, struct msg_sent *out)
{
	struct e2e_session *s = NULL;
	Sotto__Frame *ack = NULL;
	Sottoc__Content content;
	Sottoc__Text tx;
	struct client_msg msg;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = msg_text_check(text, len)) != 0)
		return r;
	snprintf(out->to, sizeof(out->to), "%s", peer);
	sotto_random(out->msg_id, sizeof(out->msg_id));
	if ((r = session_for(ctx, peer, &s)) != 0)
		goto out;
	text_prepare(&content, &tx, &msg, text, len, out->msg_id);
	msg.peer = peer;
	out->sent_ms = msg.timestamp_ms;
	if ((r = seal_and_send(ctx, peer, s, &content, &msg, out->msg_id, &ack)) != 0)
		goto out;
	out->online = ack->ack->recipient_online;
	out->last_seen = ack->ack->last_seen;
out:
	frame_free(ack);
	e2e_session_free(s);
	return r;
}

/* The other users online now, from Who; *names is malloc'd. */
static int
online_others(struct sotto_ctx *ctx, char (**names)[PROTO_USERNAME_MAX + 1], size_t *n)
{
	Sotto__Frame req, *reply = NULL;
	Sotto__Who w;
	size_t i;
	int r;

	*names = NULL;
	*n = 0;
	sotto__who__init(&w);
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_WHO;
	req.who = &w;
	if ((r = client_conn_request(ctx->conn, &req, &reply, 0)) != 0) {
		r = ctx_request_fail(ctx, "cannot list who is online", r);
		goto out;
	}
	if (reply->body_case != SOTTO__FRAME__BODY_WHO_REPLY) {
		r = ctx_fail(
		        SOTTO_EXIT_NET, "the server answered Who with %s", frame_body_name(reply));
		goto out;
	}
	if ((*names = calloc(reply->who_reply->n_users + 1, sizeof(**names))) == NULL) {
		r = ctx_fail(SOTTO_EXIT_INTERNAL, "out of memory");
		goto out;
	}
	for (i = 0; i < reply->who_reply->n_users && *n < BROADCAST_MAX; i++) {
		const Sotto__Presence *p = reply->who_reply->users[i];

		if (!p->online || proto_username_normalize((*names)[*n], p->username) != 0 ||
		        strcmp((*names)[*n], ctx->username) == 0)
			continue;
		(*n)++;
	}
out:
	frame_free(reply);
	return r;
}

/* The parts of one broadcast recipient. */
struct bcast {
	struct e2e_session *s;
	uint8_t *sealed;
	size_t sealedlen;
};

int
msg_broadcast_text(
        struct sotto_ctx *ctx, const char *text, size_t len, struct msg_sent **out, size_t *n)
{
	char(*names)[PROTO_USERNAME_MAX + 1] = NULL;
	struct bcast *b = NULL;
	Sotto__Recipient *rcpt = NULL, **rcptp = NULL;
	Sotto__Frame req, *reply = NULL;
	Sotto__SendMulti sm;
	Sottoc__Content content;
	Sottoc__Text tx;
	struct client_msg msg;
	uint8_t msg_id[PROTO_MSG_ID_BYTES];
	size_t nnames = 0, i, k = 0;
	int r, first_fail = 0;

	*out = NULL;
	*n = 0;
	if ((r = msg_text_check(text, len)) != 0)
		return r;
	if ((r = online_others(ctx, &names, &nnames)) != 0)
		goto out;
	if (nnames == 0)
		goto out;
	if ((b = calloc(nnames, sizeof(*b))) == NULL ||
	        (rcpt = calloc(nnames, sizeof(*rcpt))) == NULL ||
	        (rcptp = calloc(nnames, sizeof(*rcptp))) == NULL ||
	        (*out = calloc(nnames, sizeof(**out))) == NULL) {
		r = ctx_fail(SOTTO_EXIT_INTERNAL, "out of memory");
		goto out;
	}
	sotto_random(msg_id, sizeof(msg_id));
	text_prepare(&content, &tx, &msg, text, len, msg_id);
	/* Sessions first, leaving out (after saying why) those that cannot start. */
	for (i = 0; i < nnames; i++) {
		if ((r = session_for(ctx, names[i], &b[k].s)) != 0) {
			if (first_fail == 0)
				first_fail = r;
			continue;
		}
		if ((r = e2e_seal(b[k].s, ctx->id, &content, &b[k].sealed, &b[k].sealedlen)) != 0) {
			r = ctx_fail(SOTTO_EXIT_INTERNAL, "cannot encrypt for %s: %s", names[i],
			        sotto_strerror(r));
			goto out;
		}
		snprintf((*out)[k].to, sizeof((*out)[k].to), "%s", names[i]);
		k++;
	}
	if (k == 0) {
		r = first_fail;
		goto out;
	}
	if ((r = client_store_begin(ctx->store)) != 0)
		goto fail_store;
	for (i = 0; i < k; i++) {
		msg.peer = (*out)[i].to;
		if ((r = save_sent(ctx, (*out)[i].to, b[i].s, &msg)) != 0)
			goto fail_store;
	}
	if ((r = client_store_commit(ctx->store)) != 0)
		goto fail_store;
	sotto__send_multi__init(&sm);
	sm.msg_id = proto_bytes(msg_id, sizeof(msg_id));
	for (i = 0; i < k; i++) {
		sotto__recipient__init(&rcpt[i]);
		rcpt[i].to = (*out)[i].to;
		rcpt[i].sealed = proto_bytes(b[i].sealed, b[i].sealedlen);
		rcptp[i] = &rcpt[i];
	}
	sm.recipients = rcptp;
	sm.n_recipients = k;
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_SEND_MULTI;
	req.send_multi = &sm;
	if ((r = client_conn_request(ctx->conn, &req, &reply, 0)) != 0) {
		r = ctx_request_fail(ctx, "cannot broadcast", r);
		goto out;
	}
	if (reply->body_case != SOTTO__FRAME__BODY_ACK_MULTI || reply->ack_multi->n_acks != k) {
		r = ctx_fail(SOTTO_EXIT_NET, "the server answered SendMulti with %s",
		        frame_body_name(reply));
		goto out;
	}
	for (i = 0; i < k; i++) {
		const Sotto__Ack *a = reply->ack_multi->acks[i];

		memcpy((*out)[i].msg_id, msg_id, sizeof(msg_id));
		(*out)[i].sent_ms = msg.timestamp_ms;
		(*out)[i].online = a->recipient_online;
		(*out)[i].last_seen = a->last_seen;
		(*out)[i].error = a->error;
		if (a->error != 0 && client_store_msg_set_state(ctx->store, (*out)[i].to,
		                             CLIENT_MSG_OUT, msg_id, CLIENT_MSG_FAILED) != 0)
			fprintf(stderr, "sotto: %s\n", client_store_last_error(ctx->store));
	}
	*n = k;
	r = first_fail;
	goto out;
fail_store:
	client_store_rollback(ctx->store);
	r = ctx_fail(SOTTO_EXIT_INTERNAL, "cannot save the message: %s",
	        client_store_last_error(ctx->store));
out:
	if (*n == 0) {
		free(*out);
		*out = NULL;
	}
	for (i = 0; b != NULL && i < nnames; i++) {
		e2e_session_free(b[i].s);
		free(b[i].sealed);
	}
	frame_free(reply);
	free(b);
	free(rcpt);
	free(rcptp);
	free(names);
	return r;
}

int
msg_multi_open(struct sotto_ctx *ctx, struct msg_multi *m, size_t n, int all)
{
	size_t i;
	int r, first = 0;

	for (i = 0; i < n; i++) {
		m[i].sent = 0;
		if (m[i].s != NULL)
			continue;
		if ((r = session_for(ctx, m[i].to, &m[i].s)) != 0) {
			if (all)
				return r;
			if (first == 0)
				first = r;
		}
	}
	return first;
}

void
msg_multi_free(struct msg_multi *m, size_t n)
{
	size_t i;

	for (i = 0; m != NULL && i < n; i++) {
		e2e_session_free(m[i].s);
		m[i].s = NULL;
	}
}

int
msg_multi_send(struct sotto_ctx *ctx, struct msg_multi *m, size_t n,
        const uint8_t msg_id[PROTO_MSG_ID_BYTES])
{
	Sotto__Recipient *rcpt = NULL, **rcptp = NULL;
	Sotto__Frame req, *reply = NULL;
	Sotto__SendMulti sm;
	uint8_t **sealed = NULL;
	size_t *sealedlen = NULL, *idx = NULL, i, k = 0, j;
	int r = 0;

	if (n == 0)
		return 0;
	if ((rcpt = calloc(n, sizeof(*rcpt))) == NULL ||
	        (rcptp = calloc(n, sizeof(*rcptp))) == NULL ||
	        (sealed = calloc(n, sizeof(*sealed))) == NULL ||
	        (sealedlen = calloc(n, sizeof(*sealedlen))) == NULL ||
	        (idx = calloc(n, sizeof(*idx))) == NULL) {
		r = ctx_fail(SOTTO_EXIT_INTERNAL, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		m[i].sent = 0;
		if (m[i].s == NULL)
			continue;
		if ((r = e2e_seal_packed(m[i].s, ctx->id, m[i].content, m[i].content_len,
		             &sealed[k], &sealedlen[k])) != 0) {
			r = ctx_fail(SOTTO_EXIT_INTERNAL, "cannot encrypt for %s: %s", m[i].to,
			        sotto_strerror(r));
			goto out;
		}
		idx[k++] = i;
	}
	if (k == 0)
		goto out;
	if ((r = client_store_begin(ctx->store)) != 0)
		goto fail_store;
	for (j = 0; j < k; j++)
		if ((r = save_sent(ctx, m[idx[j]].to, m[idx[j]].s, NULL)) != 0)
			goto fail_store;
	if ((r = client_store_commit(ctx->store)) != 0)
		goto fail_store;
	sotto__send_multi__init(&sm);
	sm.msg_id = proto_bytes(msg_id, PROTO_MSG_ID_BYTES);
	for (j = 0; j < k; j++) {
		sotto__recipient__init(&rcpt[j]);
		rcpt[j].to = proto_str(m[idx[j]].to);
		rcpt[j].sealed = proto_bytes(sealed[j], sealedlen[j]);
		rcptp[j] = &rcpt[j];
	}
	sm.recipients = rcptp;
	sm.n_recipients = k;
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_SEND_MULTI;
	req.send_multi = &sm;
	if ((r = client_conn_request(ctx->conn, &req, &reply, 0)) != 0) {
		r = ctx_request_fail(ctx, "cannot send", r);
		goto out;
	}
	if (reply->body_case != SOTTO__FRAME__BODY_ACK_MULTI || reply->ack_multi->n_acks != k) {
		r = ctx_fail(SOTTO_EXIT_NET, "the server answered SendMulti with %s",
		        frame_body_name(reply));
		goto out;
	}
	for (j = 0; j < k; j++) {
		if (reply->ack_multi->acks[j]->error != 0)
			fprintf(stderr, "sotto: not sent to %s: %s\n", m[idx[j]].to,
			        proto_error_string(reply->ack_multi->acks[j]->error));
		else
			m[idx[j]].sent = 1;
	}
	goto out;
fail_store:
	client_store_rollback(ctx->store);
	r = ctx_fail(SOTTO_EXIT_INTERNAL, "cannot save the sessions: %s",
	        client_store_last_error(ctx->store));
out:
	for (j = 0; sealed != NULL && j < k; j++)
		free(sealed[j]);
	frame_free(reply);
	free(rcpt);
	free(rcptp);
	free(sealed);
	free(sealedlen);
	free(idx);
	return r;
}

/* Send an end-to-end read receipt for msg_id to peer (best effort). */
static int
send_receipt(struct sotto_ctx *ctx, const char *peer, const uint8_t msg_id[PROTO_MSG_ID_BYTES])
{
	struct e2e_session *s = NULL;
	Sottoc__Content content;
	Sottoc__Receipt rc;
	ProtobufCBinaryData id;
	Sotto__Frame *ack = NULL;
	uint8_t rid[PROTO_MSG_ID_BYTES];
	int r;

	if ((r = e2e_session_load(ctx->store, peer, &s)) != 0)
		return 0;
	sottoc__content__init(&content);
	sottoc__receipt__init(&rc);
	id = proto_bytes(msg_id, PROTO_MSG_ID_BYTES);
	rc.read = 1;
	rc.ids = &id;
	rc.n_ids = 1;
	content.sent_ms = (uint64_t)msg_now_ms();
	content.body_case = SOTTOC__CONTENT__BODY_RECEIPT;
	content.receipt = &rc;
	sotto_random(rid, sizeof(rid));
	r = seal_and_send(ctx, peer, s, &content, NULL, rid, &ack);
	frame_free(ack);
	e2e_session_free(s);
	return r;
}

/* Acknowledge ids (a request, so that the deletion is committed before we go on). */
int
msg_deliver_ack(struct sotto_ctx *ctx, const uint8_t *id)
{
	Sotto__Frame req, *reply = NULL;
	Sotto__DeliverAck da;
	ProtobufCBinaryData b = proto_bytes(id, PROTO_MSG_ID_BYTES);
	int r;

	sotto__deliver_ack__init(&da);
	da.msg_ids = &b;
	da.n_msg_ids = 1;
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_DELIVER_ACK;
	req.deliver_ack = &da;
	if ((r = client_conn_request(ctx->conn, &req, &reply, 0)) != 0)
		r = ctx_request_fail(ctx, "cannot acknowledge a message", r);
	frame_free(reply);
	return r;
}

/*
 * The receipts in c (read) for our messages to peer: set their state inside
 * the caller's transaction, and list which changed in ids[] (*nids).
 */
static int
apply_receipt(struct sotto_ctx *ctx, const char *peer, const Sottoc__Receipt *rc,
        const uint8_t **ids, size_t *nids)
{
	size_t i;
	int r;

	*nids = 0;
	for (i = 0; i < rc->n_ids; i++) {
		if (rc->ids[i].len != PROTO_MSG_ID_BYTES)
			continue;
		r = client_store_msg_set_state(
		        ctx->store, peer, CLIENT_MSG_OUT, rc->ids[i].data, CLIENT_MSG_READ);
		if (r != 0 && r != SOTTO_ERR_NOTFOUND)
			return r;
		if (r == 0)
			ids[(*nids)++] = rc->ids[i].data;
	}
	return 0;
}

/*
 * The name of the group a file offer says it was sent in, into out, if we
 * know that group and peer is among its verified members; else "".
 */
static void
offer_group(struct sotto_ctx *ctx, const char *peer, const Sottoc__FileOffer *fo, char *out,
        size_t outlen)
{
	struct client_group *g = NULL;

	out[0] = '\0';
	if (fo->group_id.len != CLIENT_GROUP_ID_BYTES ||
	        client_group_load(ctx->store, fo->group_id.data, &g) != 0)
		return;
	if (client_group_is_member(g, peer) && client_group_is_member(g, ctx->username))
		gops_display_name(out, outlen, g);
	client_group_free(g);
}

/* One Deliver: decrypt, check, store, show, acknowledge, send a read receipt. */
static int
handle_deliver(struct sotto_ctx *ctx, const Sotto__Deliver *d, const struct msg_view *v, int *held)
{
	char peer[PROTO_USERNAME_MAX + 1], gname[CLIENT_GROUP_NAME_MAX + 40];
	struct e2e_session *s = NULL;
	Sottoc__Content *c = NULL;
	const uint8_t **read_ids = NULL;
	struct client_msg msg;
	struct gops_after after;
	int seen = 0, fresh = 0, shown = 0, r;
	uint32_t offer = 0;
	size_t nread = 0, i;

	memset(&after, 0, sizeof(after));

	if (d->msg_id.len != PROTO_MSG_ID_BYTES || proto_username_normalize(peer, d->from) != 0)
		return 0;
	if ((r = client_store_begin(ctx->store)) != 0)
		return ctx_fail(SOTTO_EXIT_INTERNAL, "%s", client_store_last_error(ctx->store));
	if ((r = client_store_seen_add(
	             ctx->store, peer, d->msg_id.data, (int64_t)time(NULL), &seen)) != 0)
		goto fail_store;
	if (seen) {
		client_store_rollback(ctx->store);
		return msg_deliver_ack(ctx, d->msg_id.data);
	}
	r = e2e_open(ctx->store, ctx->id, ctx->username, peer, d->sealed.data, d->sealed.len, &s,
	        &fresh, &c);
	if (r != 0) {
		client_store_rollback(ctx->store);
		/* Remember the id anyway, so that a replay is dropped quietly. */
		if (client_store_seen_add(
		            ctx->store, peer, d->msg_id.data, (int64_t)time(NULL), &seen) != 0)
			return ctx_fail(
			        SOTTO_EXIT_INTERNAL, "%s", client_store_last_error(ctx->store));
		if (r == SOTTO_ERR_EXISTS) {
			fprintf(stderr, "sotto: dropped a replayed message from %s\n", peer);
			return msg_deliver_ack(ctx, d->msg_id.data);
		}
		fprintf(stderr,
		        "sotto: a message from %s could not be decrypted (tampered or replayed); "
		        "ignored\n",
		        peer);
		return msg_deliver_ack(ctx, d->msg_id.data);
	}
	if (fresh && (r = trust_check(ctx, peer, s->peer)) != 0) {
		/* A known_peers that cannot be read: stop, and leave the message on the server. */
		if (r != SOTTO_EXIT_TRUST) {
			client_store_rollback(ctx->store);
			goto out;
		}
		/*
		 * Not acknowledged: the server keeps it, and it comes again at the
		 * next login, once the user has looked at the key.  The rollback
		 * also gives back the one-time prekey the session would have used.
		 */
		client_store_rollback(ctx->store);
		(*held)++;
		if (v->held != NULL)
			v->held(v->arg, peer, d->msg_id.data);
		r = 0;
		goto out;
	}
	if ((r = e2e_session_save(ctx->store, peer, s, (int64_t)time(NULL))) != 0)
		goto fail_store;
	if (c->body_case == SOTTOC__CONTENT__BODY_TEXT && c->text != NULL) {
		memset(&msg, 0, sizeof(msg));
		msg.peer = peer;
		msg.dir = CLIENT_MSG_IN;
		memcpy(msg.msg_id, d->msg_id.data, PROTO_MSG_ID_BYTES);
		msg.body = (const uint8_t *)c->text->body;
		msg.body_len = strlen(c->text->body);
		msg.timestamp_ms = (int64_t)d->timestamp_ms;
		msg.state = CLIENT_MSG_RECEIVED;
		r = client_store_msg_add(ctx->store, &msg, NULL);
		if (r != 0 && r != SOTTO_ERR_EXISTS)
			goto fail_store;
		shown = 1;
	} else if (c->body_case == SOTTOC__CONTENT__BODY_RECEIPT && c->receipt != NULL &&
	           c->receipt->read && c->receipt->n_ids > 0) {
		if ((read_ids = calloc(c->receipt->n_ids, sizeof(*read_ids))) == NULL) {
			client_store_rollback(ctx->store);
			r = ctx_fail(SOTTO_EXIT_INTERNAL, "out of memory");
			goto out;
		}
		if ((r = apply_receipt(ctx, peer, c->receipt, read_ids, &nread)) != 0)
			goto fail_store;
	} else if (c->body_case == SOTTOC__CONTENT__BODY_FILE_OFFER && c->file_offer != NULL) {
		/* files: kept, sealed, until sotto files accept or discard */
		if ((r = file_offer_store(ctx, peer, d->timestamp_ms, c->file_offer, &offer)) != 0)
			goto fail_store;
	} else if ((r = gops_take_content(ctx, peer, c, &after)) != 0) {
		/* Kept on the server (GOPS_HOLD) or failed: nothing of it is saved. */
		client_store_rollback(ctx->store);
		if (r == GOPS_HOLD)
			r = 0;
		goto out;
	}
	if ((r = client_store_commit(ctx->store)) != 0)
		goto fail_store;
	if (offer != 0 && v->file_offer != NULL) {
		offer_group(ctx, peer, c->file_offer, gname, sizeof(gname));
		v->file_offer(v->arg, peer, offer, c->file_offer->name, c->file_offer->size,
		        gname[0] != '\0' ? gname : NULL);
	}
	for (i = 0; i < nread && v->state != NULL; i++)
		v->state(v->arg, peer, read_ids[i], CLIENT_MSG_READ);
	if (shown && v->message != NULL)
		v->message(v->arg, peer, d->msg_id.data, d->timestamp_ms, c->text->body,
		        strlen(c->text->body));
	if ((r = msg_deliver_ack(ctx, d->msg_id.data)) != 0)
		goto out;
	if (shown)
		r = send_receipt(ctx, peer, d->msg_id.data);
	else
		r = gops_after_run(ctx, &after, v);
	goto out;
fail_store:
	client_store_rollback(ctx->store);
	r = ctx_fail(SOTTO_EXIT_INTERNAL, "cannot store a message from %s: %s", peer,
	        client_store_last_error(ctx->store));
out:
	if (c != NULL)
		sottoc__content__free_unpacked(c, NULL);
	free(read_ids);
	e2e_session_free(s);
	return r;
}

static int
handle_delivered(struct sotto_ctx *ctx, const Sotto__Delivered *dv, const struct msg_view *v)
{
	char peer[PROTO_USERNAME_MAX + 1];
	size_t i;
	int r;

	for (i = 0; i < dv->n_receipts; i++) {
		const Sotto__DeliveryReceipt *rc = dv->receipts[i];

		if (rc->msg_id.len != PROTO_MSG_ID_BYTES ||
		        proto_username_normalize(peer, rc->to) != 0)
			continue;
		r = client_store_msg_set_state(
		        ctx->store, peer, CLIENT_MSG_OUT, rc->msg_id.data, CLIENT_MSG_DELIVERED);
		/* A group message is kept once, under our own name: delivered to anyone. */
		if (r == SOTTO_ERR_NOTFOUND)
			r = client_store_msg_set_state(ctx->store, ctx->username, CLIENT_MSG_OUT,
			        rc->msg_id.data, CLIENT_MSG_DELIVERED);
		if (r == 0 && v->state != NULL)
			v->state(v->arg, peer, rc->msg_id.data, CLIENT_MSG_DELIVERED);
		if ((r = msg_deliver_ack(ctx, rc->msg_id.data)) != 0)
			return r;
	}
	return 0;
}

int
msg_handle_push(struct sotto_ctx *ctx, const Sotto__Frame *f, const struct msg_view *v, int *held)
{
	int waiting = 0;

	if (f->body_case == SOTTO__FRAME__BODY_DELIVER && f->deliver->group_id.len > 0)
		return gops_deliver(ctx, f->deliver, v, &waiting);
	if (f->body_case == SOTTO__FRAME__BODY_DELIVER)
		return handle_deliver(ctx, f->deliver, v, held);
	if (f->body_case == SOTTO__FRAME__BODY_DELIVERED)
		return handle_delivered(ctx, f->delivered, v);
	return 0;
}

/* ---- files (client-cmd-file.c) ---------------------------------------------- */

int
msg_session_ready(struct sotto_ctx *ctx, const char *peer)
{
	struct e2e_session *s = NULL;
	int r;

	r = session_for(ctx, peer, &s);
	e2e_session_free(s);
	return r;
}

int
msg_send_content(struct sotto_ctx *ctx, const char *peer, const Sottoc__Content *content,
        struct msg_sent *out)
{
	struct e2e_session *s = NULL;
	Sotto__Frame *ack = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	snprintf(out->to, sizeof(out->to), "%s", peer);
	sotto_random(out->msg_id, sizeof(out->msg_id));
	out->sent_ms = (int64_t)content->sent_ms;
	if ((r = session_for(ctx, peer, &s)) != 0)
		goto out;
	if ((r = seal_and_send(ctx, peer, s, content, NULL, out->msg_id, &ack)) != 0)
		goto out;
	out->online = ack->ack->recipient_online;
	out->last_seen = ack->ack->last_seen;
out:
	frame_free(ack);
	e2e_session_free(s);
	return r;
}
