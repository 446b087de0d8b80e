/*
 * sotto reset: forget the end-to-end session with a peer, so that the next
 * message to them starts a new one with X3DH.  The message history, the
 * peer's key in known_peers and the record of answered X3DH headers stay.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "src/client-cmd.h"
#include "src/client-e2e.h"

int
cmd_reset(struct sotto_ctx *ctx, int argc, char **argv)
{
	char peer[PROTO_USERNAME_MAX + 1];
	struct e2e_session *s = NULL;
	int r, had;

	if (argc != 2 || argv[1][0] == '-')
		return ctx_fail(SOTTO_EXIT_USAGE, "usage: sotto reset USER");
	if (proto_username_normalize(peer, argv[1]) != 0)
		return ctx_fail(SOTTO_EXIT_USAGE, "%s: not a valid user name", argv[1]);
	if ((r = ctx_need_user(ctx)) != 0 || (r = ctx_need_store(ctx)) != 0)
		return r;
	/* A session that no longer opens can be reset too: that is what this is for. */
	r = e2e_session_load(ctx->store, peer, &s);
	e2e_session_free(s);
	had = r != SOTTO_ERR_NOTFOUND;
	if (had && client_store_session_delete(ctx->store, peer) != 0)
		return ctx_fail(SOTTO_EXIT_INTERNAL, "cannot reset the session with %s: %s", peer,
		        client_store_last_error(ctx->store));
	if (ctx->json)
		printf("{\"event\":\"reset\",\"peer\":\"%s\",\"had_session\":%s}\n", peer,
		        had ? "true" : "false");
	else if (had)
		printf("the session with %s is reset; the next message to %s starts a new one\n",
		        peer, peer);
	else
		printf("no session with %s\n", peer);
	return 0;
}
