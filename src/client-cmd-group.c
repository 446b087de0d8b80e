/*
 * sotto group create|add|remove|rename|leave|members|list: groups from the
 * command line, printed for people or as JSON.  The work is client-gops.c's,
 * which the interactive mode shares.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/util.h"
#include "src/client-cmd.h"
#include "src/client-gops.h"

static const char group_use[] = "usage: sotto group create NAME [USER...] | add GROUP USER... | "
                                "remove GROUP USER... | rename GROUP NEWNAME | leave GROUP | "
                                "members GROUP | list";

/* JSON: "members":["a","b"] (without braces). */
static void
json_members(const struct client_group *g)
{
	size_t i;

	printf("\"members\":[");
	for (i = 0; i < g->n; i++)
		printf("%s\"%s\"", i > 0 ? "," : "", g->members[i]);
	printf("]");
}

/* JSON: "group":NAME,"group_id":HEX,"short_id":HEX (without braces). */
static void
json_group(const struct client_group *g)
{
	char hex[2 * CLIENT_GROUP_ID_BYTES + 1], sid[GOPS_SHORT_ID_LEN + 1];

	sotto_hex(hex, g->id, CLIENT_GROUP_ID_BYTES);
	gops_short_id(sid, g->id);
	printf("\"group\":");
	json_str(stdout, g->name, strlen(g->name));
	printf(",\"group_id\":\"%s\",\"short_id\":\"%s\"", hex, sid);
}

/* "bob and carol" (members but us). */
static void
print_others(const struct sotto_ctx *ctx, const struct client_group *g)
{
	size_t i, k = 0, n = g->n - (client_group_is_member(g, ctx->username) ? 1 : 0);

	if (n == 0) {
		printf("nobody else");
		return;
	}
	for (i = 0; i < g->n; i++) {
		if (strcmp(g->members[i], ctx->username) == 0)
			continue;
		k++;
		printf("%s%s", k == 1 ? "" : (k == n ? " and " : ", "), g->members[i]);
	}
}

static void
print_group_line(const struct sotto_ctx *ctx, const struct client_group *g, const char *event)
{
	char name[CLIENT_GROUP_NAME_MAX + 40], sid[GOPS_SHORT_ID_LEN + 1];

	if (ctx->json) {
		printf("{\"event\":\"%s\",", event);
		json_group(g);
		printf(",\"owner\":\"%s\",\"member\":%s,", g->owner,
		        client_group_is_member(g, ctx->username) ? "true" : "false");
		json_members(g);
		printf("}\n");
		return;
	}
	gops_display_name(name, sizeof(name), g);
	gops_short_id(sid, g->id);
	if (strcmp(event, "group") == 0) {
		text_print(stdout, name, strlen(name));
		printf("  %s  %zu member%s, owner %s%s\n", sid, g->n, g->n == 1 ? "" : "s",
		        g->owner,
		        client_group_is_member(g, ctx->username) ? "" : "  (you are not in it)");
		return;
	}
	if (strcmp(event, "group_left") == 0) {
		printf("you left group ");
		text_print(stdout, name, strlen(name));
		printf(" (%s)\n", sid);
		return;
	}
	printf("group ");
	text_print(stdout, name, strlen(name));
	printf(" (%s): ", sid);
	print_others(ctx, g);
	printf(strcmp(event, "group_created") == 0 ? ", created\n" : "\n");
}

static int
group_create(struct sotto_ctx *ctx, int argc, char **argv)
{
	struct client_group *g = NULL;
	int r;

	if (argc < 2)
		return ctx_fail(SOTTO_EXIT_USAGE, "usage: sotto group create NAME [USER...]");
	if ((r = ctx_login(ctx, NULL)) != 0)
		return r;
	if ((r = gops_create(ctx, argv[1], argv + 2, (size_t)argc - 2, &g)) == 0 || g != NULL)
		print_group_line(ctx, g, "group_created");
	client_group_free(g);
	return r;
}

/* Find ref, then log in (the order gives a user error before a network one). */
static int
group_open(struct sotto_ctx *ctx, const char *ref, struct client_group **g)
{
	int r;

	if ((r = gops_find(ctx, ref, g)) != 0)
		return r;
	if ((r = ctx_login(ctx, NULL)) != 0) {
		client_group_free(*g);
		*g = NULL;
	}
	return r;
}

static int
group_change(struct sotto_ctx *ctx, int argc, char **argv)
{
	int add = strcmp(argv[0], "add") == 0, r;
	struct client_group *g = NULL;

	if (argc < 3)
		return ctx_fail(SOTTO_EXIT_USAGE, "usage: sotto group %s GROUP USER...", argv[0]);
	if ((r = group_open(ctx, argv[1], &g)) != 0)
		return r;
	r = gops_change(ctx, &g,
	        add ? SOTTO__GROUP_OP__GROUP_OP_ADD : SOTTO__GROUP_OP__GROUP_OP_REMOVE, argv + 2,
	        (size_t)argc - 2);
	if (r == 0)
		print_group_line(ctx, g, "group_changed");
	client_group_free(g);
	return r;
}

static int
group_rename(struct sotto_ctx *ctx, int argc, char **argv)
{
	struct client_group *g = NULL;
	int r;

	if (argc != 3)
		return ctx_fail(SOTTO_EXIT_USAGE, "usage: sotto group rename GROUP NEWNAME");
	if ((r = group_open(ctx, argv[1], &g)) != 0)
		return r;
	if ((r = gops_rename(ctx, &g, argv[2])) == 0)
		print_group_line(ctx, g, "group_renamed");
	client_group_free(g);
	return r;
}

static int
group_leave(struct sotto_ctx *ctx, int argc, char **argv)
{
	struct client_group *g = NULL;
	int r;

	if (argc != 2)
		return ctx_fail(SOTTO_EXIT_USAGE, "usage: sotto group leave GROUP");
	if ((r = group_open(ctx, argv[1], &g)) != 0)
		return r;
	if ((r = gops_leave(ctx, &g)) == 0)
		print_group_line(ctx, g, "group_left");
	client_group_free(g);
	return r;
}

/* A member's trust state from known_peers: "you", "verified", "tofu", "changed" or "unknown". */
static const char *
member_trust(struct sotto_ctx *ctx, const char *user, char *fp, size_t fplen)
{
	struct client_trust_peer *p = NULL;
	const char *s = "unknown";
	char err[512];

	fp[0] = '\0';
	if (strcmp(user, ctx->username) == 0)
		return "you";
	if (client_trust_peer_get(&p, ctx->paths->known_peers, ctx->host, ctx->portnum, user, err,
	            sizeof(err)) == 0) {
		s = client_trust_level_name(p->level);
		snprintf(fp, fplen, "%s", p->fingerprint);
	}
	client_trust_peer_free(p);
	return s;
}

static int
group_members(struct sotto_ctx *ctx, int argc, char **argv)
{
	struct client_group *g = NULL;
	char name[CLIENT_GROUP_NAME_MAX + 40], fp[FINGERPRINT_LEN];
	const char *trust;
	size_t i;
	int r;

	if (argc != 2)
		return ctx_fail(SOTTO_EXIT_USAGE, "usage: sotto group members GROUP");
	if ((r = group_open(ctx, argv[1], &g)) != 0)
		return r;
	/* The server's list is checked against the signed one (warnings on stderr). */
	if (client_group_is_member(g, ctx->username) && (r = gops_sync(ctx, &g)) != 0)
		goto out;
	gops_display_name(name, sizeof(name), g);
	for (i = 0; i < g->n; i++) {
		trust = member_trust(ctx, g->members[i], fp, sizeof(fp));
		if (ctx->json) {
			printf("{\"event\":\"member\",");
			json_group(g);
			printf(",\"user\":\"%s\",\"owner\":%s,\"trust\":\"%s\",\"fingerprint\":"
			       "\"%s\"}\n",
			        g->members[i],
			        strcmp(g->members[i], g->owner) == 0 ? "true" : "false", trust, fp);
		} else
			printf("%s%s  %s%s%s\n", g->members[i],
			        strcmp(g->members[i], g->owner) == 0 ? " (owner)" : "", trust,
			        fp[0] != '\0' ? "  " : "", fp);
	}
out:
	client_group_free(g);
	return r;
}

static int
group_list(struct sotto_ctx *ctx, int argc, char **argv)
{
	struct client_group **gs = NULL;
	size_t n = 0, i;
	int r;

	(void)argv;
	if (argc != 1)
		return ctx_fail(SOTTO_EXIT_USAGE, "usage: sotto group list");
	if ((r = gops_list(ctx, &gs, &n)) != 0)
		return r;
	for (i = 0; i < n; i++)
		print_group_line(ctx, gs[i], "group");
	if (n == 0 && !ctx->json)
		printf("no groups (sotto group create NAME USER... makes one)\n");
	gops_list_free(gs, n);
	return 0;
}

int
cmd_group(struct sotto_ctx *ctx, int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(struct sotto_ctx *, int, char **);
	} subs[] = {
	        {"create", group_create},
	        {"add", group_change},
	        {"remove", group_change},
	        {"rename", group_rename},
	        {"leave", group_leave},
	        {"members", group_members},
	        {"list", group_list},
	};
	size_t i;
	int r;

	if (argc < 2)
		return ctx_fail(SOTTO_EXIT_USAGE, "%s", group_use);
	for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		if (strcmp(argv[1], subs[i].name) != 0)
			continue;
		if ((r = ctx_need_user(ctx)) != 0 || (r = ctx_need_server(ctx)) != 0 ||
		        (r = ctx_need_store(ctx)) != 0)
			return r;
		return subs[i].fn(ctx, argc - 1, argv + 1);
	}
	return ctx_fail(SOTTO_EXIT_USAGE, "group %s: unknown (%s)", argv[1], group_use);
}
