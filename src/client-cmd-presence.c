/*
 * sotto who, seen, block, unblock and blocked: presence and blocking, which
 * the server answers directly.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "src/client-cmd.h"

static void
print_presence(struct sotto_ctx *ctx, const Sotto__Presence *p)
{
	char when[32];
	time_t t = (time_t)p->last_seen;
	struct tm tm;

	if (ctx->json) {
		printf("{\"event\":\"presence\",\"user\":\"%s\",\"online\":%s,\"last_seen\":"
		       "%" PRIu64 "}\n",
		        p->username, p->online ? "true" : "false", p->last_seen);
		return;
	}
	if (p->online)
		printf("%s online\n", p->username);
	else if (p->last_seen == 0)
		printf("%s never seen\n", p->username);
	else {
		localtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);
		printf("%s last seen %s\n", p->username, when);
	}
}

/* Log in, send req, and expect a reply of kind want. */
static int
presence_request(struct sotto_ctx *ctx, Sotto__Frame *req, Sotto__Frame__BodyCase want,
        const char *what, Sotto__Frame **reply)
{
	int r;

	*reply = NULL;
	if ((r = ctx_login(ctx, NULL)) != 0)
		return r;
	if ((r = client_conn_request(ctx->conn, req, reply, 0)) != 0)
		return ctx_request_fail(ctx, what, r);
	if ((*reply)->body_case != want)
		return ctx_fail(SOTTO_EXIT_NET, "%s: unexpected %s from the server", what,
		        frame_body_name(*reply));
	return 0;
}

int
cmd_who(struct sotto_ctx *ctx, int argc, char **argv)
{
	Sotto__Frame req, *reply = NULL;
	Sotto__Who w;
	unsigned long long since = 0;
	char *end;
	size_t i;
	int r;

	if (argc == 3 && strcmp(argv[1], "--since") == 0) {
		errno = 0;
		since = strtoull(argv[2], &end, 10);
		if (errno != 0 || *end != '\0')
			return ctx_fail(
			        SOTTO_EXIT_USAGE, "--since %s: a number of seconds", argv[2]);
	} else if (argc != 1)
		return ctx_fail(SOTTO_EXIT_USAGE, "usage: sotto who [--since S]");
	sotto__who__init(&w);
	w.since_seconds = since;
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_WHO;
	req.who = &w;
	r = presence_request(ctx, &req, SOTTO__FRAME__BODY_WHO_REPLY, "who", &reply);
	for (i = 0; r == 0 && i < reply->who_reply->n_users; i++)
		print_presence(ctx, reply->who_reply->users[i]);
	frame_free(reply);
	return r;
}

int
cmd_seen(struct sotto_ctx *ctx, int argc, char **argv)
{
	Sotto__Frame req, *reply = NULL;
	Sotto__Seen s;
	char what[128];
	int r;

	if (argc != 2)
		return ctx_fail(SOTTO_EXIT_USAGE, "usage: sotto seen USER");
	sotto__seen__init(&s);
	s.username = argv[1];
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_SEEN;
	req.seen = &s;
	snprintf(what, sizeof(what), "seen %s", argv[1]);
	if ((r = presence_request(ctx, &req, SOTTO__FRAME__BODY_PRESENCE, what, &reply)) == 0)
		print_presence(ctx, reply->presence);
	frame_free(reply);
	return r;
}

int
cmd_block(struct sotto_ctx *ctx, int argc, char **argv)
{
	Sotto__Frame req, *reply = NULL;
	Sotto__Block b;
	Sotto__Unblock u;
	int block = strcmp(argv[0], "block") == 0, r;
	char what[128];

	if (argc != 2)
		return ctx_fail(SOTTO_EXIT_USAGE, "usage: sotto %s USER", argv[0]);
	frame_init(&req, 0);
	if (block) {
		sotto__block__init(&b);
		b.username = argv[1];
		req.body_case = SOTTO__FRAME__BODY_BLOCK;
		req.block = &b;
	} else {
		sotto__unblock__init(&u);
		u.username = argv[1];
		req.body_case = SOTTO__FRAME__BODY_UNBLOCK;
		req.unblock = &u;
	}
	snprintf(what, sizeof(what), "cannot %s %s", argv[0], argv[1]);
	if ((r = presence_request(ctx, &req, SOTTO__FRAME__BODY_OK, what, &reply)) == 0) {
		if (ctx->json)
			printf("{\"event\":\"%sed\",\"user\":\"%s\"}\n", argv[0], argv[1]);
		else
			printf("%sed %s\n", argv[0], argv[1]);
	}
	frame_free(reply);
	return r;
}

int
cmd_blocked(struct sotto_ctx *ctx, int argc, char **argv)
{
	Sotto__Frame req, *reply = NULL;
	Sotto__ListBlocked lb;
	size_t i;
	int r;

	(void)argv;
	if (argc != 1)
		return ctx_fail(SOTTO_EXIT_USAGE, "usage: sotto blocked");
	sotto__list_blocked__init(&lb);
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_LIST_BLOCKED;
	req.list_blocked = &lb;
	if ((r = presence_request(ctx, &req, SOTTO__FRAME__BODY_BLOCKED_LIST, "blocked", &reply)) ==
	        0)
		for (i = 0; i < reply->blocked_list->n_usernames; i++) {
			if (ctx->json)
				printf("{\"event\":\"blocked\",\"user\":\"%s\"}\n",
				        reply->blocked_list->usernames[i]);
			else
				printf("%s\n", reply->blocked_list->usernames[i]);
		}
	frame_free(reply);
	return r;
}
