/*
 * sotto send, receive and history: end-to-end encrypted messages, delivery
 * and read receipts.  State and message are saved in one client.db
 * transaction before a ciphertext leaves or a plaintext is shown.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crypto/util.h"
#include "src/client-cmd.h"
#include "src/client-e2e.h"

#define MSG_TEXT_MAX    (64 * 1024) /* bytes of text per message */
#define RECEIVE_IDLE_MS 1000        /* receive's default quiet period */

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "HH:MM" or "HH:MM:SS" in local time. */
static void
fmt_time(char *out, size_t outlen, int64_t secs, int with_secs)
{
	time_t t = (time_t)secs;
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(out, outlen, with_secs ? "%H:%M:%S" : "%H:%M", &tm);
}

/* Our session with peer, or a new one from the peer's bundle (trust checked). */
static int
session_for(struct sotto_ctx *ctx, const char *peer, struct e2e_session **out)
{
	Sotto__Frame req, *reply = NULL;
	Sotto__GetBundle gb;
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
	sotto__get_bundle__init(&gb);
	gb.username = proto_str(peer);
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_GET_BUNDLE;
	req.get_bundle = &gb;
	if ((r = client_conn_request(ctx->conn, &req, &reply, 0)) != 0) {
		snprintf(what, sizeof(what), "cannot send to %s", peer);
		r = ctx_request_fail(ctx, what, r);
		goto out;
	}
	if (reply->body_case != SOTTO__FRAME__BODY_BUNDLE) {
		r = ctx_fail(SOTTO_EXIT_NET, "the server answered GetBundle with %s",
		        frame_body_name(reply));
		goto out;
	}
	if ((r = e2e_bundle_check(reply->bundle, &pub)) != 0) {
		r = ctx_fail(SOTTO_EXIT_TRUST,
		        "%s's keys from the server do not check out (%s); the server may be "
		        "tampering with them",
		        peer, sotto_strerror(r));
		goto out;
	}
	if ((r = trust_check(ctx, peer, pub)) != 0)
		goto out;
	if ((r = e2e_session_initiate(out, ctx->id, pub, reply->bundle)) != 0)
		r = ctx_fail(SOTTO_EXIT_INTERNAL, "cannot start a session with %s: %s", peer,
		        sotto_strerror(r));
out:
	identity_pub_free(pub);
	frame_free(reply);
	return r;
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
	if ((r = client_store_begin(ctx->store)) != 0 ||
	        (r = e2e_session_save(ctx->store, peer, s, (int64_t)time(NULL))) != 0 ||
	        (msg != NULL && (r = client_store_msg_add(ctx->store, msg, NULL)) != 0) ||
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

/* Read all of standard input as the message text. */
static int
read_stdin(char **out, size_t *len)
{
	char *buf;
	size_t n = 0;
	ssize_t k;

	*out = NULL;
	if ((buf = malloc(MSG_TEXT_MAX + 1)) == NULL)
		return ctx_fail(SOTTO_EXIT_INTERNAL, "out of memory");
	while (n < MSG_TEXT_MAX + 1) {
		k = read(STDIN_FILENO, buf + n, MSG_TEXT_MAX + 1 - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			free(buf);
			return ctx_fail(SOTTO_EXIT_USAGE, "standard input: %s", strerror(errno));
		}
		if (k == 0)
			break;
		n += (size_t)k;
	}
	if (n > MSG_TEXT_MAX) {
		free(buf);
		return ctx_fail(
		        SOTTO_EXIT_USAGE, "the message is longer than %d bytes", MSG_TEXT_MAX);
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

int
cmd_send(struct sotto_ctx *ctx, int argc, char **argv)
{
	char peer[PROTO_USERNAME_MAX + 1], hex[2 * PROTO_MSG_ID_BYTES + 1], when[16];
	const char *to = NULL, *text = NULL;
	char *input = NULL;
	size_t textlen = 0;
	struct e2e_session *s = NULL;
	Sotto__Frame *ok = NULL, *ack = NULL;
	Sottoc__Content content;
	Sottoc__Text tx;
	struct client_msg msg;
	uint8_t msg_id[PROTO_MSG_ID_BYTES];
	int i, r;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-m") == 0 && i + 1 < argc)
			text = argv[++i];
		else if (argv[i][0] == '-' && strcmp(argv[i], "-") != 0)
			return ctx_fail(SOTTO_EXIT_USAGE, "send: unknown option %s", argv[i]);
		else if (to == NULL)
			to = argv[i];
		else
			return ctx_fail(SOTTO_EXIT_USAGE, "usage: sotto send USER [-m TEXT]");
	}
	if (to == NULL)
		return ctx_fail(SOTTO_EXIT_USAGE, "usage: sotto send USER [-m TEXT]");
	if (proto_username_normalize(peer, to) != 0)
		return ctx_fail(SOTTO_EXIT_USAGE, "%s: not a valid user name", to);
	if (text == NULL) {
		if ((r = read_stdin(&input, &textlen)) != 0)
			return r;
		/* "echo hi | sotto send bob" sends "hi", not "hi\n". */
		if (textlen > 0 && input[textlen - 1] == '\n')
			input[--textlen] = '\0';
		if (textlen > 0 && input[textlen - 1] == '\r')
			input[--textlen] = '\0';
		text = input;
	} else
		textlen = strlen(text);
	if ((r = ctx_need_user(ctx)) != 0 || (r = ctx_need_server(ctx)) != 0 ||
	        (r = ctx_need_store(ctx)) != 0 || (r = ctx_login(ctx, &ok)) != 0)
		goto out;
	if ((r = account_topup(ctx, ok->login_ok->otk_remaining)) != 0 ||
	        (r = session_for(ctx, peer, &s)) != 0)
		goto out;
	sottoc__content__init(&content);
	sottoc__text__init(&tx);
	tx.body = proto_str(text);
	content.sent_ms = (uint64_t)now_ms();
	content.body_case = SOTTOC__CONTENT__BODY_TEXT;
	content.text = &tx;
	sotto_random(msg_id, sizeof(msg_id));
	memset(&msg, 0, sizeof(msg));
	msg.peer = peer;
	msg.dir = CLIENT_MSG_OUT;
	memcpy(msg.msg_id, msg_id, sizeof(msg_id));
	msg.body = (const uint8_t *)text;
	msg.body_len = textlen;
	msg.timestamp_ms = (int64_t)content.sent_ms;
	msg.state = CLIENT_MSG_SENT;
	if ((r = seal_and_send(ctx, peer, s, &content, &msg, msg_id, &ack)) != 0)
		goto out;
	sotto_hex(hex, msg_id, sizeof(msg_id));
	if (ctx->json) {
		printf("{\"event\":\"sent\",\"to\":\"%s\",\"msg_id\":\"%s\",\"online\":%s,"
		       "\"last_seen\":%" PRIu64 "}\n",
		        peer, hex, ack->ack->recipient_online ? "true" : "false",
		        ack->ack->last_seen);
	} else {
		if (!ack->ack->recipient_online) {
			if (ack->ack->last_seen > 0) {
				fmt_time(when, sizeof(when), (int64_t)ack->ack->last_seen, 0);
				printf("%s is offline (last seen %s); it will be delivered when "
				       "they connect\n",
				        peer, when);
			} else
				printf("%s is offline (never seen); it will be delivered when they "
				       "connect\n",
				        peer);
		}
		printf("sent\n");
	}
out:
	frame_free(ack);
	frame_free(ok);
	e2e_session_free(s);
	if (input != NULL) {
		sotto_wipe(input, textlen);
		free(input);
	}
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
	content.sent_ms = (uint64_t)now_ms();
	content.body_case = SOTTOC__CONTENT__BODY_RECEIPT;
	content.receipt = &rc;
	sotto_random(rid, sizeof(rid));
	r = seal_and_send(ctx, peer, s, &content, NULL, rid, &ack);
	frame_free(ack);
	e2e_session_free(s);
	return r;
}

/* Acknowledge ids (a request, so that the deletion is committed before we go on). */
static int
deliver_ack(struct sotto_ctx *ctx, const uint8_t *id)
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

static void
print_state(struct sotto_ctx *ctx, const char *peer, const uint8_t *id, const char *state)
{
	char hex[2 * PROTO_MSG_ID_BYTES + 1];

	sotto_hex(hex, id, PROTO_MSG_ID_BYTES);
	if (ctx->json)
		printf("{\"event\":\"state\",\"peer\":\"%s\",\"msg_id\":\"%s\",\"state\":\"%s\"}\n",
		        peer, hex, state);
	else
		printf("message %s to %s: %s\n", hex, peer, state);
}

/* One Deliver: decrypt, check, store, show, acknowledge, send a read receipt. */
static int
handle_deliver(struct sotto_ctx *ctx, const Sotto__Deliver *d)
{
	char peer[PROTO_USERNAME_MAX + 1], hex[2 * PROTO_MSG_ID_BYTES + 1], when[16];
	struct e2e_session *s = NULL;
	Sottoc__Content *c = NULL;
	struct client_msg msg;
	int seen = 0, fresh = 0, shown = 0, r;
	size_t i;

	if (d->msg_id.len != PROTO_MSG_ID_BYTES || proto_username_normalize(peer, d->from) != 0)
		return 0;
	if ((r = client_store_begin(ctx->store)) != 0)
		return ctx_fail(SOTTO_EXIT_INTERNAL, "%s", client_store_last_error(ctx->store));
	if ((r = client_store_seen_add(
	             ctx->store, peer, d->msg_id.data, (int64_t)time(NULL), &seen)) != 0)
		goto fail_store;
	if (seen) {
		client_store_rollback(ctx->store);
		return deliver_ack(ctx, d->msg_id.data);
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
			return deliver_ack(ctx, d->msg_id.data);
		}
		fprintf(stderr,
		        "sotto: a message from %s could not be decrypted (tampered or replayed); "
		        "ignored\n",
		        peer);
		return deliver_ack(ctx, d->msg_id.data);
	}
	if (fresh && trust_check(ctx, peer, s->peer) != 0) {
		client_store_rollback(ctx->store);
		fprintf(stderr, "sotto: a message from %s under an untrusted key was ignored\n",
		        peer);
		r = deliver_ack(ctx, d->msg_id.data);
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
	           c->receipt->read) {
		for (i = 0; i < c->receipt->n_ids; i++) {
			if (c->receipt->ids[i].len != PROTO_MSG_ID_BYTES)
				continue;
			r = client_store_msg_set_state(ctx->store, peer, CLIENT_MSG_OUT,
			        c->receipt->ids[i].data, CLIENT_MSG_READ);
			if (r != 0 && r != SOTTO_ERR_NOTFOUND)
				goto fail_store;
			if (r == 0)
				print_state(ctx, peer, c->receipt->ids[i].data, "read");
		}
	}
	if ((r = client_store_commit(ctx->store)) != 0)
		goto fail_store;
	if (shown) {
		sotto_hex(hex, d->msg_id.data, PROTO_MSG_ID_BYTES);
		if (ctx->json) {
			printf("{\"event\":\"message\",\"from\":\"%s\",\"msg_id\":\"%s\","
			       "\"time\":%" PRIu64 ",\"text\":",
			        peer, hex, d->timestamp_ms);
			json_str(stdout, c->text->body, strlen(c->text->body));
			printf("}\n");
		} else {
			fmt_time(when, sizeof(when), (int64_t)(d->timestamp_ms / 1000), 1);
			printf("%s %s: ", when, peer);
			text_print(stdout, c->text->body, strlen(c->text->body));
			putchar('\n');
		}
		fflush(stdout);
	}
	if ((r = deliver_ack(ctx, d->msg_id.data)) != 0)
		goto out;
	if (shown)
		r = send_receipt(ctx, peer, d->msg_id.data);
	goto out;
fail_store:
	client_store_rollback(ctx->store);
	r = ctx_fail(SOTTO_EXIT_INTERNAL, "cannot store a message from %s: %s", peer,
	        client_store_last_error(ctx->store));
out:
	if (c != NULL)
		sottoc__content__free_unpacked(c, NULL);
	e2e_session_free(s);
	return r;
}

static int
handle_delivered(struct sotto_ctx *ctx, const Sotto__Delivered *dv)
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
		if (r == 0)
			print_state(ctx, peer, rc->msg_id.data, "delivered");
		if ((r = deliver_ack(ctx, rc->msg_id.data)) != 0)
			return r;
	}
	return 0;
}

int
cmd_receive(struct sotto_ctx *ctx, int argc, char **argv)
{
	Sotto__Frame *ok = NULL, *f = NULL;
	int follow = 0, idle = RECEIVE_IDLE_MS, i, r;
	char *end;
	double secs;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--follow") == 0)
			follow = 1;
		else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
			errno = 0;
			secs = strtod(argv[++i], &end);
			if (errno != 0 || *end != '\0' || secs < 0 || secs > 86400)
				return ctx_fail(SOTTO_EXIT_USAGE,
				        "--timeout %s: seconds, 0 to 86400", argv[i]);
			idle = (int)(secs * 1000);
		} else
			return ctx_fail(
			        SOTTO_EXIT_USAGE, "usage: sotto receive [--timeout S] [--follow]");
	}
	if ((r = ctx_need_user(ctx)) != 0 || (r = ctx_need_server(ctx)) != 0 ||
	        (r = ctx_need_store(ctx)) != 0 || (r = ctx_login(ctx, &ok)) != 0)
		goto out;
	if ((r = account_topup(ctx, ok->login_ok->otk_remaining)) != 0)
		goto out;
	for (;;) {
		r = client_conn_next_push(ctx->conn, &f, follow ? -1 : idle);
		if (r == SOTTO_ERR_AGAIN) {
			r = 0;
			break;
		}
		if (r != 0) {
			r = ctx_request_fail(ctx, "the connection ended", r);
			break;
		}
		if (f->body_case == SOTTO__FRAME__BODY_DELIVER)
			r = handle_deliver(ctx, f->deliver);
		else if (f->body_case == SOTTO__FRAME__BODY_DELIVERED)
			r = handle_delivered(ctx, f->delivered);
		else if (f->body_case == SOTTO__FRAME__BODY_CLOSING)
			r = ctx_fail(SOTTO_EXIT_NET, "the server closed the connection: %s",
			        proto_error_string(f->closing->code));
		frame_free(f);
		f = NULL;
		if (r != 0)
			break;
	}
	if (r == 0 && (r = e2e_store_prune(ctx->store, (int64_t)time(NULL))) != 0)
		r = ctx_fail(SOTTO_EXIT_INTERNAL, "%s", client_store_last_error(ctx->store));
out:
	frame_free(ok);
	return r;
}

struct history_arg {
	struct sotto_ctx *ctx;
	const char *me;
};

static int
history_cb(void *arg, const struct client_msg *m)
{
	const struct history_arg *h = arg;
	char when[32], hex[2 * PROTO_MSG_ID_BYTES + 1];
	const char *from = m->dir == CLIENT_MSG_OUT ? h->me : m->peer;
	time_t t = (time_t)(m->timestamp_ms / 1000);
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	if (h->ctx->json) {
		sotto_hex(hex, m->msg_id, sizeof(m->msg_id));
		printf("{\"event\":\"history\",\"peer\":\"%s\",\"dir\":\"%s\",\"from\":\"%s\","
		       "\"msg_id\":\"%s\",\"time\":%" PRId64 ",\"state\":\"%s\",\"text\":",
		        m->peer, m->dir == CLIENT_MSG_OUT ? "out" : "in", from, hex,
		        m->timestamp_ms, client_msg_state_name(m->state));
		json_str(stdout, (const char *)m->body, m->body_len);
		printf("}\n");
	} else {
		printf("%s %s: ", when, from);
		text_print(stdout, (const char *)m->body, m->body_len);
		printf(" [%s]\n",
		        m->dir == CLIENT_MSG_IN ? "received" : client_msg_state_name(m->state));
	}
	return 0;
}

int
cmd_history(struct sotto_ctx *ctx, int argc, char **argv)
{
	char peer[PROTO_USERNAME_MAX + 1];
	struct history_arg h;
	int r;

	if (argc != 2)
		return ctx_fail(SOTTO_EXIT_USAGE, "usage: sotto history USER");
	if (proto_username_normalize(peer, argv[1]) != 0)
		return ctx_fail(SOTTO_EXIT_USAGE, "%s: not a valid user name", argv[1]);
	if ((r = ctx_need_user(ctx)) != 0 || (r = ctx_need_store(ctx)) != 0)
		return r;
	h.ctx = ctx;
	h.me = ctx->username;
	if ((r = client_store_msg_history(
	             ctx->store, peer, INT64_MAX, CLIENT_STORE_HISTORY_MAX, history_cb, &h)) != 0)
		return ctx_fail(SOTTO_EXIT_INTERNAL, "%s", client_store_last_error(ctx->store));
	return 0;
}
