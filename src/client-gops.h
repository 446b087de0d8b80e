/*
 * Group operations of the sotto client, over the network: create, add,
 * remove, leave, rename and send, and what a push brings for a group.
 * client-group.c checks and applies; this file talks to the server and to
 * the members, for the one-shot commands (client-cmd-group.c), receive and
 * the interactive mode (through client-msg.c).
 *
 * Distribution: our sending chain goes to each member over the 1:1
 * sessions.  client.db remembers (meta "gdist-" and the group id in hex)
 * which members have our current chain, so that anyone still missing it
 * gets it, in one SendMulti, before our next group message; a new chain
 * (after a removal or a leave) starts that list again.  The owner puts its
 * chain inside the GroupUpdate it sends a member who lacks it, so that one
 * SendMulti carries both.
 *
 * Membership: before every group message, and after each update, the client
 * fetches the group from the server (GetGroup), replays the signed changes
 * it has not seen, and warns about every member the server lists that no
 * signed change added (and every member it leaves out).  That is also how
 * members learn of a leave, which no owner announces.
 *
 * Like the client-cmd functions, these return 0 or an exit status (enum
 * sotto_exit) after telling the user why on standard error.  A struct
 * client_group handed out is the caller's (client_group_free).  Not
 * thread-safe.
 */
#ifndef SOTTO_CLIENT_GOPS_H
#define SOTTO_CLIENT_GOPS_H

#include <stddef.h>
#include <stdint.h>

#include "src/client-cmd.h"
#include "src/client-group.h"
#include "src/client-msg.h"

#define GOPS_SHORT_ID_LEN 8 /* hex digits of the short id people type */
#define GOPS_DIST_META    "gdist-"

/* A group's name as shown: its name, or "(unnamed 1a2b3c4d)" (out has 40 bytes or more). */
void gops_display_name(char *out, size_t outlen, const struct client_group *g);
/* The first GOPS_SHORT_ID_LEN hex digits of id (out has GOPS_SHORT_ID_LEN + 1 bytes). */
void gops_short_id(char *out, const uint8_t id[CLIENT_GROUP_ID_BYTES]);

/* Every group in client.db, sorted by name then id; *out is freed with gops_list_free(). */
int gops_list(struct sotto_ctx *ctx, struct client_group ***out, size_t *n);
void gops_list_free(struct client_group **gs, size_t n);

/*
 * The group that ref names: a local name, or a prefix of its hex id (4 to 32
 * digits), either after an optional '#'.  Two groups of that name is an error
 * that lists their short ids.
 */
int gops_find(struct sotto_ctx *ctx, const char *ref, struct client_group **out);

/*
 * Create group name with the users (normalised, any order, duplicates and
 * ourselves dropped) as its first members: the signed creation to the
 * server, then the update with our chain to each member.
 */
int gops_create(struct sotto_ctx *ctx, const char *name, char *const *users, size_t n,
        struct client_group **out);
/* The owner adds (SOTTO__GROUP_OP__GROUP_OP_ADD) or removes users. */
int gops_change(
        struct sotto_ctx *ctx, struct client_group **g, uint32_t op, char *const *users, size_t n);
/* Leave the group (not the owner's to do while others remain). */
int gops_leave(struct sotto_ctx *ctx, struct client_group **g);
/* The owner renames the group, for every member (a GroupRename in the group). */
int gops_rename(struct sotto_ctx *ctx, struct client_group **g, const char *name);

/*
 * Fetch the group from the server, apply the signed changes we lack, and
 * warn about any difference between the server's list and the verified one.
 * SOTTO_EXIT_NET if the server says we are not in the group.
 */
int gops_sync(struct sotto_ctx *ctx, struct client_group **g);

/* What one group message became. */
struct gops_sent {
	uint8_t msg_id[PROTO_MSG_ID_BYTES];
	int64_t sent_ms;
	size_t members; /* others it was sent to */
	size_t online;  /* of them, online now */
};

/* Send text to the group: sealed once with our chain, fanned out by the server. */
int gops_send_text(struct sotto_ctx *ctx, struct client_group **g, const char *text, size_t len,
        struct gops_sent *out);

/* What to do once the transaction that took a group control message is committed. */
struct gops_after {
	int set;
	uint8_t id[CLIENT_GROUP_ID_BYTES];
	char event[512]; /* for the view; "" for none */
	int distribute;  /* hand our chain to the members who lack it (a new one if a rekey) */
};

/* Returned by gops_take_content: leave the message on the server (not acknowledged). */
#define GOPS_HOLD 100

/*
 * A GroupUpdate or SenderKeyDistribution that from sent us 1:1, inside the
 * caller's transaction: checked and stored, or refused with a warning (0
 * either way, so that it is acknowledged), or GOPS_HOLD.
 */
int gops_take_content(
        struct sotto_ctx *ctx, const char *from, const Sottoc__Content *c, struct gops_after *a);
/* After the commit: tell the view, hand out our chain, check the server's list. */
int gops_after_run(struct sotto_ctx *ctx, const struct gops_after *a, const struct msg_view *v);

/*
 * A Deliver with group_id: open it with the sender's chain, store, show,
 * acknowledge.  A message whose sender's chain has not arrived is left on
 * the server (it comes again at the next login, after the chain) and
 * counted in *waiting.
 */
int gops_deliver(
        struct sotto_ctx *ctx, const Sotto__Deliver *d, const struct msg_view *v, int *waiting);

#endif
