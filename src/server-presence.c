/*
 * Presence and blocking: Who, Seen, Block, Unblock and ListBlocked.  A user
 * who blocks another disappears from that user's presence answers: not
 * online, never seen.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "src/log.h"
#include "src/server.h"

struct who_ctx {
	struct server *srv;
	struct srv_user *me;
	Sotto__Presence *items;
	Sotto__Presence **ptrs;
	size_t n, cap;
};

static void
who_add(struct who_ctx *w, struct srv_user *u)
{
	Sotto__Presence *p;

	if (w->n >= w->cap || u->deleted || server_blocks(w->srv, u, w->me))
		return;
	p = &w->items[w->n];
	sotto__presence__init(p);
	p->username = u->name;
	p->online = u->conn != NULL;
	p->last_seen = u->conn != NULL ? 0 : (uint64_t)u->last_seen;
	w->ptrs[w->n++] = p;
}

static int
who_online_cb(const void *key, size_t keylen, void *value, void *arg)
{
	struct srv_user *u = value;

	if (u->conn != NULL)
		who_add(arg, u);
	return 0;
}

static int
who_seen_cb(void *arg, const char *name, int64_t when)
{
	struct who_ctx *w = arg;
	struct srv_user *u = server_user(w->srv, name);

	if (u != NULL && u->conn == NULL)
		who_add(w, u);
	return w->n >= w->cap ? 1 : 0;
}

static int
presence_who(struct conn *c, uint64_t id, const Sotto__Frame *f)
{
	struct server *srv = c->srv;
	Sotto__WhoReply rep;
	struct who_ctx w = {srv, c->user, NULL, NULL, 0, SERVER_WHO_MAX};
	uint64_t since = f->who->since_seconds;
	Sotto__Frame rf;
	int r;

	sotto__who_reply__init(&rep);
	if ((w.items = calloc(w.cap, sizeof(*w.items))) == NULL ||
	        (w.ptrs = calloc(w.cap, sizeof(*w.ptrs))) == NULL) {
		r = SOTTO_ERR_NOMEM;
		goto out;
	}
	hmap_foreach(srv->users, who_online_cb, &w);
	if (since > 0) {
		int64_t from = server_now() - (int64_t)(since > (uint64_t)INT32_MAX * 64
		                                                ? (uint64_t)INT32_MAX * 64
		                                                : since);

		if ((r = store_user_list_seen(srv->store, from, w.cap, who_seen_cb, &w)) != 0)
			goto out;
	}
	frame_init(&rf, id);
	rf.body_case = SOTTO__FRAME__BODY_WHO_REPLY;
	rf.who_reply = &rep;
	rep.users = w.ptrs;
	rep.n_users = w.n;
	r = server_send(c, &rf);
out:
	free(w.items);
	free(w.ptrs);
	return r;
}

static int
presence_seen(struct conn *c, uint64_t id, const Sotto__Frame *f)
{
	struct server *srv = c->srv;
	Sotto__Presence p;
	struct srv_user *u;
	Sotto__Frame rf;

	sotto__presence__init(&p);
	if (!proto_username_valid(f->seen->username))
		return server_send_error(c, id, SOTTO__ERROR_CODE__ERR_BAD_USERNAME, NULL, 0);
	if ((u = server_user(srv, f->seen->username)) == NULL || u->deleted)
		return server_send_error(
		        c, id, SOTTO__ERROR_CODE__ERR_NO_SUCH_USER, f->seen->username, 0);
	frame_init(&rf, id);
	rf.body_case = SOTTO__FRAME__BODY_PRESENCE;
	rf.presence = &p;
	p.username = u->name;
	if (!server_blocks(srv, u, c->user)) {
		p.online = u->conn != NULL;
		p.last_seen = u->conn != NULL ? 0 : (uint64_t)u->last_seen;
	}
	return server_send(c, &rf);
}

static int
presence_block(struct conn *c, uint64_t id, const Sotto__Frame *f)
{
	struct server *srv = c->srv;
	const char *name = f->body_case == SOTTO__FRAME__BODY_BLOCK ? f->block->username
	                                                            : f->unblock->username;
	int on = f->body_case == SOTTO__FRAME__BODY_BLOCK;
	struct srv_user *u;
	int r;

	if (!proto_username_valid(name))
		return server_send_error(c, id, SOTTO__ERROR_CODE__ERR_BAD_USERNAME, NULL, 0);
	if ((u = server_user(srv, name)) == NULL || (on && u->deleted))
		return server_send_error(c, id, SOTTO__ERROR_CODE__ERR_NO_SUCH_USER, name, 0);
	if (u == c->user)
		return server_send_error(
		        c, id, SOTTO__ERROR_CODE__ERR_BAD_REQUEST, "you cannot block yourself", 0);
	/* Load the list first, so the cache stays a complete copy of it. */
	(void)server_blocks(srv, c->user, u);
	if ((r = server_batch(srv)) != 0)
		return r;
	if (on)
		r = store_block_add(srv->store, c->user->name, u->name, server_now());
	else
		r = store_block_remove(srv->store, c->user->name, u->name);
	if (r == SOTTO_ERR_NOTFOUND)
		return server_send_error(c, id, SOTTO__ERROR_CODE__ERR_NO_SUCH_USER, name, 0);
	if (r != 0)
		return r;
	server_block_set(srv, c->user->name, u->name, on);
	log_debug("%s %s %s", c->user->name, on ? "blocks" : "unblocks", u->name);
	return server_send_ok(c, id);
}

struct blocked_ctx {
	char (*names)[PROTO_USERNAME_MAX + 1];
	char **ptrs;
	size_t n, cap;
};

static int
blocked_cb(void *arg, const char *name, int64_t when)
{
	struct blocked_ctx *b = arg;

	if (b->n >= b->cap)
		return 1;
	snprintf(b->names[b->n], sizeof(b->names[b->n]), "%s", name);
	b->ptrs[b->n] = b->names[b->n];
	b->n++;
	return 0;
}

static int
presence_list_blocked(struct conn *c, uint64_t id, const Sotto__Frame *f)
{
	Sotto__BlockedList rep;
	struct blocked_ctx b = {NULL, NULL, 0, PROTO_MAX_WHO};
	Sotto__Frame rf;
	int r;

	sotto__blocked_list__init(&rep);
	if ((b.names = calloc(b.cap, sizeof(*b.names))) == NULL ||
	        (b.ptrs = calloc(b.cap, sizeof(*b.ptrs))) == NULL) {
		r = SOTTO_ERR_NOMEM;
		goto out;
	}
	if ((r = store_block_list(c->srv->store, c->user->name, b.cap, blocked_cb, &b)) != 0)
		goto out;
	frame_init(&rf, id);
	rf.body_case = SOTTO__FRAME__BODY_BLOCKED_LIST;
	rf.blocked_list = &rep;
	rep.usernames = b.ptrs;
	rep.n_usernames = b.n;
	r = server_send(c, &rf);
out:
	free(b.names);
	free(b.ptrs);
	return r;
}

const struct server_handler server_presence_handlers[] = {
        {SOTTO__FRAME__BODY_WHO, 0, presence_who},
        {SOTTO__FRAME__BODY_SEEN, 0, presence_seen},
        {SOTTO__FRAME__BODY_BLOCK, 0, presence_block},
        {SOTTO__FRAME__BODY_UNBLOCK, 0, presence_block},
        {SOTTO__FRAME__BODY_LIST_BLOCKED, 0, presence_list_blocked},
        {0, 0, NULL},
};
