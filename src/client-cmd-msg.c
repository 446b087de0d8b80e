/*
 * sotto send, receive and history: end-to-end encrypted messages, delivery
 * and read receipts, printed for people or as JSON.  The work itself (the
 * sessions, client.db, the frames) is client-msg.c's, which the interactive
 * mode shares.
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
#include "src/client-gops.h"
#include "src/client-msg.h"

#define RECEIVE_IDLE_MS 1000 /* receive's default quiet period */
/* What standard input may hold: a message and the line end that is dropped. */
#define STDIN_TEXT_MAX (MSG_TEXT_MAX + 2)

/* Read all of standard input as the message text. */
static int
read_stdin(char **out, size_t *len)
{
	char *buf;
	size_t n = 0;
	ssize_t k;

	*out = NULL;
	if ((buf = malloc(STDIN_TEXT_MAX + 1)) == NULL)
		return ctx_fail(SOTTO_EXIT_INTERNAL, "out of memory");
	while (n < STDIN_TEXT_MAX + 1) {
		k = read(STDIN_FILENO, buf + n, STDIN_TEXT_MAX + 1 - n);
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
	if (n > STDIN_TEXT_MAX) {
		sotto_wipe(buf, n);
		free(buf);
		return ctx_fail(SOTTO_EXIT_USAGE,
		        "standard input holds more than %d bytes; one message carries at most %d "
		        "bytes",
		        MSG_TEXT_MAX, MSG_TEXT_MAX);
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

static void
print_sent(struct sotto_ctx *ctx, const struct msg_sent *s, int broadcast)
{
	char hex[2 * PROTO_MSG_ID_BYTES + 1];

	sotto_hex(hex, s->msg_id, sizeof(s->msg_id));
	if (ctx->json) {
		if (s->error != 0)
			printf("{\"event\":\"not_sent\",\"to\":\"%s\",\"msg_id\":\"%s\","
			       "\"error\":\"%s\"}\n",
			        s->to, hex, proto_error_string(s->error));
		else
			printf("{\"event\":\"sent\",\"to\":\"%s\",\"msg_id\":\"%s\",\"online\":%s,"
			       "\"last_seen\":%" PRIu64 "}\n",
			        s->to, hex, s->online ? "true" : "false", s->last_seen);
		return;
	}
	if (s->error != 0) {
		printf("not sent to %s: %s\n", s->to, proto_error_string(s->error));
		return;
	}
	if (!s->online)
		msg_print_offline(stdout, s);
	if (broadcast)
		printf("sent to %s\n", s->to);
	else
		printf("sent\n");
}

static int
send_group(struct sotto_ctx *ctx, struct client_group **g, const char *text, size_t len)
{
	char hex[2 * PROTO_MSG_ID_BYTES + 1], gid[2 * CLIENT_GROUP_ID_BYTES + 1],
	        name[CLIENT_GROUP_NAME_MAX + 40];
	struct gops_sent s;
	int r;

	if ((r = gops_send_text(ctx, g, text, len, &s)) != 0)
		return r;
	gops_display_name(name, sizeof(name), *g);
	if (ctx->json) {
		sotto_hex(hex, s.msg_id, sizeof(s.msg_id));
		sotto_hex(gid, (*g)->id, CLIENT_GROUP_ID_BYTES);
		printf("{\"event\":\"sent\",\"group\":");
		json_str(stdout, (*g)->name, strlen((*g)->name));
		printf(",\"group_id\":\"%s\",\"msg_id\":\"%s\",\"members\":%zu,\"online\":%zu}\n",
		        gid, hex, s.members, s.online);
	} else {
		printf("sent to group ");
		text_print(stdout, name, strlen(name));
		printf(" (%zu other member%s, %zu online)\n", s.members, s.members == 1 ? "" : "s",
		        s.online);
	}
	return 0;
}

int
cmd_send(struct sotto_ctx *ctx, int argc, char **argv)
{
	static const char use[] =
	        "usage: sotto send USER [-m TEXT] | -g GROUP [-m TEXT] | --broadcast [-m TEXT]";
	char peer[PROTO_USERNAME_MAX + 1];
	const char *to = NULL, *text = NULL, *group = NULL;
	struct client_group *g = NULL;
	char *input = NULL;
	size_t textlen = 0, n = 0, i;
	Sotto__Frame *ok = NULL;
	struct msg_sent one, *sent = NULL;
	int broadcast = 0, operands = 0, k, r;

	for (k = 1; k < argc; k++) {
		if (!operands && strcmp(argv[k], "--") == 0)
			operands = 1; /* options end here */
		else if (!operands && strcmp(argv[k], "-m") == 0 && k + 1 < argc)
			text = argv[++k];
		else if (!operands && strcmp(argv[k], "--broadcast") == 0)
			broadcast = 1;
		else if (!operands &&
		         (strcmp(argv[k], "-g") == 0 || strcmp(argv[k], "--group") == 0) &&
		         k + 1 < argc)
			group = argv[++k];
		else if (!operands && argv[k][0] == '-' && strcmp(argv[k], "-") != 0)
			return ctx_fail(SOTTO_EXIT_USAGE, "send: unknown option %s", argv[k]);
		else if (to == NULL)
			to = argv[k];
		else
			return ctx_fail(SOTTO_EXIT_USAGE, "%s", use);
	}
	if ((to != NULL) + broadcast + (group != NULL) != 1)
		return ctx_fail(SOTTO_EXIT_USAGE, "%s", use);
	if (to != NULL && proto_username_normalize(peer, to) != 0)
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
	if ((r = msg_text_check(text, textlen)) != 0 || (r = ctx_need_user(ctx)) != 0 ||
	        (r = ctx_need_server(ctx)) != 0 || (r = ctx_need_store(ctx)) != 0 ||
	        (group != NULL && (r = gops_find(ctx, group, &g)) != 0) ||
	        (r = ctx_login(ctx, &ok)) != 0)
		goto out;
	if (g != NULL) {
		r = send_group(ctx, &g, text, textlen);
		goto out;
	}
	if (!broadcast) {
		if ((r = msg_send_text(ctx, peer, text, textlen, &one)) == 0)
			print_sent(ctx, &one, 0);
		goto out;
	}
	r = msg_broadcast_text(ctx, text, textlen, &sent, &n);
	for (i = 0; i < n; i++)
		print_sent(ctx, &sent[i], 1);
	if (r == 0 && n == 0) {
		if (ctx->json)
			printf("{\"event\":\"broadcast\",\"recipients\":0}\n");
		else
			printf("nobody else is online; nothing was sent\n");
	}
out:
	client_group_free(g);
	free(sent);
	frame_free(ok);
	if (input != NULL) {
		sotto_wipe(input, textlen);
		free(input);
	}
	return r;
}

static void
recv_message(void *arg, const char *peer, const uint8_t *msg_id, uint64_t time_ms, const char *text,
        size_t len)
{
	const struct sotto_ctx *ctx = arg;
	char hex[2 * PROTO_MSG_ID_BYTES + 1], when[16];

	if (ctx->json) {
		sotto_hex(hex, msg_id, PROTO_MSG_ID_BYTES);
		printf("{\"event\":\"message\",\"from\":\"%s\",\"msg_id\":\"%s\",\"time\":%" PRIu64
		       ",\"text\":",
		        peer, hex, time_ms);
		json_str(stdout, text, len);
		printf("}\n");
	} else {
		msg_fmt_time(when, sizeof(when), (int64_t)(time_ms / 1000), 1);
		printf("%s %s: ", when, peer);
		text_print(stdout, text, len);
		putchar('\n');
	}
	fflush(stdout);
}

static void
recv_group_message(void *arg, const uint8_t *group_id, const char *group, const char *sender,
        const uint8_t *msg_id, uint64_t time_ms, const char *text, size_t len)
{
	const struct sotto_ctx *ctx = arg;
	char hex[2 * PROTO_MSG_ID_BYTES + 1], gid[2 * CLIENT_GROUP_ID_BYTES + 1], when[16];

	if (ctx->json) {
		sotto_hex(hex, msg_id, PROTO_MSG_ID_BYTES);
		sotto_hex(gid, group_id, CLIENT_GROUP_ID_BYTES);
		printf("{\"event\":\"message\",\"from\":\"%s\",\"group\":", sender);
		json_str(stdout, group, strlen(group));
		printf(",\"group_id\":\"%s\",\"msg_id\":\"%s\",\"time\":%" PRIu64 ",\"text\":", gid,
		        hex, time_ms);
		json_str(stdout, text, len);
		printf("}\n");
	} else {
		msg_fmt_time(when, sizeof(when), (int64_t)(time_ms / 1000), 1);
		printf("%s [", when);
		text_print(stdout, group, strlen(group));
		printf("] %s: ", sender);
		text_print(stdout, text, len);
		putchar('\n');
	}
	fflush(stdout);
}

static void
recv_group_event(void *arg, const uint8_t *group_id, const char *group, const char *what)
{
	const struct sotto_ctx *ctx = arg;
	char gid[2 * CLIENT_GROUP_ID_BYTES + 1];

	if (ctx->json) {
		sotto_hex(gid, group_id, CLIENT_GROUP_ID_BYTES);
		printf("{\"event\":\"group\",\"group\":");
		json_str(stdout, group, strlen(group));
		printf(",\"group_id\":\"%s\",\"what\":", gid);
		json_str(stdout, what, strlen(what));
		printf("}\n");
	} else {
		text_print(stdout, what, strlen(what));
		putchar('\n');
	}
	fflush(stdout);
}

static void
recv_state(void *arg, const char *peer, const uint8_t *msg_id, enum client_msg_state state)
{
	const struct sotto_ctx *ctx = arg;
	char hex[2 * PROTO_MSG_ID_BYTES + 1];

	sotto_hex(hex, msg_id, PROTO_MSG_ID_BYTES);
	if (ctx->json)
		printf("{\"event\":\"state\",\"peer\":\"%s\",\"msg_id\":\"%s\",\"state\":\"%s\"}\n",
		        peer, hex, client_msg_state_name(state));
	else
		printf("message %s to %s: %s\n", hex, peer, client_msg_state_name(state));
	fflush(stdout);
}

static void
recv_held(void *arg, const char *peer, const uint8_t *msg_id)
{
	const struct sotto_ctx *ctx = arg;
	char hex[2 * PROTO_MSG_ID_BYTES + 1];

	fflush(stdout);
	fprintf(stderr,
	        "sotto: a message from %s stays on the server, unread, because %s's key was "
	        "refused; compare safety numbers (sotto fingerprint %s), then run sotto verify "
	        "%s NUMBER or sotto trust %s, and receive again\n",
	        peer, peer, peer, peer, peer);
	if (ctx->json) {
		sotto_hex(hex, msg_id, PROTO_MSG_ID_BYTES);
		printf("{\"event\":\"held\",\"from\":\"%s\",\"msg_id\":\"%s\"}\n", peer, hex);
		fflush(stdout);
	}
}

/* files: an offer, with the commands that accept or discard it. */
static void
recv_file_offer(void *arg, const char *peer, uint32_t id, const char *name, uint64_t size,
        const char *group)
{
	file_offer_print(arg, peer, id, name, size, group, 0);
	fflush(stdout);
}

int
cmd_receive(struct sotto_ctx *ctx, int argc, char **argv)
{
	struct msg_view v = {.message = recv_message,
	        .state = recv_state,
	        .held = recv_held,
	        .group_message = recv_group_message,
	        .group_event = recv_group_event,
	        .file_offer = recv_file_offer,
	        .arg = ctx};
	Sotto__Frame *ok = NULL, *f = NULL;
	int follow = 0, idle = RECEIVE_IDLE_MS, held = 0, i, r;
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
		if (f->body_case == SOTTO__FRAME__BODY_CLOSING)
			r = ctx_fail(SOTTO_EXIT_NET, "the server closed the connection: %s",
			        proto_error_string(f->closing->code));
		else
			r = msg_handle_push(ctx, f, &v, &held);
		frame_free(f);
		f = NULL;
		if (r != 0)
			break;
	}
	if (r == 0 && (r = e2e_store_prune(ctx->store, (int64_t)time(NULL))) != 0)
		r = ctx_fail(SOTTO_EXIT_INTERNAL, "%s", client_store_last_error(ctx->store));
	/* Messages left on the server for want of a trusted key: say so in the status. */
	if (r == 0 && held > 0)
		r = SOTTO_EXIT_TRUST;
out:
	frame_free(ok);
	return r;
}

struct history_arg {
	struct sotto_ctx *ctx;
	const char *me;
	const struct client_group *g; /* NULL for a direct conversation */
};

static int
history_cb(void *arg, const struct client_msg *m)
{
	const struct history_arg *h = arg;
	char when[32], hex[2 * PROTO_MSG_ID_BYTES + 1], gid[2 * CLIENT_GROUP_ID_BYTES + 1];
	char name[CLIENT_GROUP_NAME_MAX + 40];
	const char *from = m->dir == CLIENT_MSG_OUT ? h->me : m->peer;
	time_t t = (time_t)(m->timestamp_ms / 1000);
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	if (h->ctx->json) {
		sotto_hex(hex, m->msg_id, sizeof(m->msg_id));
		printf("{\"event\":\"history\",\"peer\":\"%s\",\"dir\":\"%s\",\"from\":\"%s\","
		       "\"msg_id\":\"%s\",\"time\":%" PRId64 ",\"state\":\"%s\",",
		        m->peer, m->dir == CLIENT_MSG_OUT ? "out" : "in", from, hex,
		        m->timestamp_ms, client_msg_state_name(m->state));
		if (h->g != NULL) {
			sotto_hex(gid, h->g->id, CLIENT_GROUP_ID_BYTES);
			printf("\"group\":");
			json_str(stdout, h->g->name, strlen(h->g->name));
			printf(",\"group_id\":\"%s\",", gid);
		}
		printf("\"text\":");
		json_str(stdout, (const char *)m->body, m->body_len);
		printf("}\n");
	} else {
		printf("%s ", when);
		if (h->g != NULL) {
			gops_display_name(name, sizeof(name), h->g);
			printf("[");
			text_print(stdout, name, strlen(name));
			printf("] ");
		}
		printf("%s: ", from);
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
	struct client_group *g = NULL;
	int group = argc == 3 && (strcmp(argv[1], "-g") == 0 || strcmp(argv[1], "--group") == 0);
	int r;

	if (argc != 2 && !group)
		return ctx_fail(SOTTO_EXIT_USAGE, "usage: sotto history USER | -g GROUP");
	if (!group && proto_username_normalize(peer, argv[1]) != 0)
		return ctx_fail(SOTTO_EXIT_USAGE, "%s: not a valid user name", argv[1]);
	if ((r = ctx_need_user(ctx)) != 0 || (r = ctx_need_store(ctx)) != 0)
		return r;
	if (group && (r = gops_find(ctx, argv[2], &g)) != 0)
		return r;
	h.ctx = ctx;
	h.me = ctx->username;
	h.g = g;
	if (group)
		r = client_store_msg_history_group(
		        ctx->store, g->id, INT64_MAX, CLIENT_STORE_HISTORY_MAX, history_cb, &h);
	else
		r = client_store_msg_history(
		        ctx->store, peer, INT64_MAX, CLIENT_STORE_HISTORY_MAX, history_cb, &h);
	client_group_free(g);
	if (r != 0)
		return ctx_fail(SOTTO_EXIT_INTERNAL, "%s", client_store_last_error(ctx->store));
	return 0;
}
