/*
 * Groups: CreateGroup, GroupChange, LeaveGroup, GetGroup and SendGroup.
 *
 * The server knows a group as a 16-byte id, an owner and a member list, and
 * keeps the signed changes that made the list (sotto.proto, "Signed
 * membership changes").  It checks each change as a member's client would,
 * signature included, so that it refuses forgeries and what it hands out
 * verifies; but the clients are what keep a dishonest server from adding a
 * member, since only the members they accept get their sender keys.
 *
 * A change is answered once its batch is committed, so Ok means stored.
 * Member lists are cached in memory for SendGroup's fan-out; a change drops
 * its group from the cache, a batch that fails to commit drops them all, and
 * the next use reads the store again.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "crypto/buf.h"
#include "keys/identity.h"
#include "src/log.h"
#include "src/server.h"
#include "src/sigmsg.h"

#define GROUP_CACHE_MAX      4096         /* groups kept in memory; past it the cache restarts */
#define GROUP_INFO_MAX_BYTES (256 * 1024) /* change records per GroupInfo, roughly */
#define GROUP_INFO_BATCH     64           /* changes read from the store at a time */

/* A group as cached: owner and members (sorted, the owner included). */
struct srv_group {
	uint8_t id[PROTO_GROUP_ID_BYTES];
	char owner[PROTO_USERNAME_MAX + 1];
	uint64_t serial;
	size_t n;
	char (*members)[PROTO_USERNAME_MAX + 1];
	struct srv_user **users; /* members[i]'s user, looked up at the first send, or NULL */
};

static void
group_free(struct srv_group *g)
{
	if (g == NULL)
		return;
	free(g->members);
	free(g->users);
	free(g);
}

static int
group_evict_cb(const void *key, size_t keylen, void *value, void *arg)
{
	hmap_del(arg, key, keylen);
	group_free(value);
	return 0;
}

void
server_group_forget_all(struct server *srv)
{
	if (srv->groups != NULL)
		hmap_foreach(srv->groups, group_evict_cb, srv->groups);
}

/* Forget the cached copy of group id (after a change). */
static void
group_forget(struct server *srv, const uint8_t id[PROTO_GROUP_ID_BYTES])
{
	group_free(hmap_del(srv->groups, id, PROTO_GROUP_ID_BYTES));
}

static int
group_member_cb(void *arg, const char *name, int64_t when)
{
	struct srv_group *g = arg;

	(void)when;
	if (g->n >= STORE_GROUP_USERS_MAX)
		return 1;
	snprintf(g->members[g->n], sizeof(g->members[g->n]), "%s", name);
	g->n++;
	return 0;
}

/* The group id from the cache or the store: 0, SOTTO_ERR_NOTFOUND, or a store error. */
static int
group_load(struct server *srv, const uint8_t id[PROTO_GROUP_ID_BYTES], struct srv_group **out)
{
	struct store_group sg;
	struct srv_group *g;
	int r;

	*out = NULL;
	if ((g = hmap_get(srv->groups, id, PROTO_GROUP_ID_BYTES)) != NULL) {
		*out = g;
		return 0;
	}
	if ((r = store_group_get(srv->store, id, &sg)) != 0)
		return r;
	if ((g = calloc(1, sizeof(*g))) == NULL ||
	        (g->members = calloc(sg.n_members > 0 ? sg.n_members : 1, sizeof(*g->members))) ==
	                NULL) {
		group_free(g);
		return SOTTO_ERR_NOMEM;
	}
	memcpy(g->id, id, PROTO_GROUP_ID_BYTES);
	snprintf(g->owner, sizeof(g->owner), "%s", sg.owner);
	g->serial = sg.serial;
	/* Read no more rows than were counted, should a row appear in between. */
	if ((r = store_group_members(srv->store, id, sg.n_members, group_member_cb, g)) != 0) {
		group_free(g);
		return r;
	}
	/* A full cache starts again: simpler than LRU, and a reload is one query. */
	if (hmap_count(srv->groups) >= GROUP_CACHE_MAX)
		hmap_foreach(srv->groups, group_evict_cb, srv->groups);
	if (hmap_put(srv->groups, g->id, sizeof(g->id), g, NULL) != 0) {
		group_free(g);
		return SOTTO_ERR_NOMEM;
	}
	*out = g;
	return 0;
}

static int
group_cmp_name(const void *key, const void *elem)
{
	return strcmp(key, elem);
}

static int
group_has(const struct srv_group *g, const char *name)
{
	return g->n > 0 &&
	       bsearch(name, g->members, g->n, sizeof(*g->members), group_cmp_name) != NULL;
}

/* Load id for a request from c's user, who must be a member; else answer and set *g NULL. */
static int
group_for_member(struct conn *c, uint64_t id, const ProtobufCBinaryData *gid, struct srv_group **g)
{
	int r;

	*g = NULL;
	if (gid->len != PROTO_GROUP_ID_BYTES)
		return server_send_error(
		        c, id, SOTTO__ERROR_CODE__ERR_BAD_REQUEST, "group_id must be 16 bytes", 0);
	r = group_load(c->srv, gid->data, g);
	if (r == SOTTO_ERR_NOTFOUND || (r == 0 && !group_has(*g, c->user->name))) {
		*g = NULL;
		return server_send_error(c, id, SOTTO__ERROR_CODE__ERR_NO_SUCH_GROUP, NULL, 0);
	}
	return r;
}

/* Answer Ok once the batch holding the change is committed (ERR_INTERNAL if it is not). */
static int
group_ok_after_commit(struct conn *c, uint64_t id)
{
	struct commit_wait *w;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return SOTTO_ERR_NOMEM;
	w->conn_serial = c->serial;
	w->id = id;
	TAILQ_INSERT_TAIL(&c->srv->commit_waits, w, entry);
	return 0;
}

/* 0 if sig is signer's signature of the change, else an ErrorCode. */
static uint32_t
group_check_sig(struct server *srv, const uint8_t gid[PROTO_GROUP_ID_BYTES], uint64_t serial,
        uint32_t op, const char *signer, const char *const *users, size_t n,
        const ProtobufCBinaryData *sig)
{
	struct identity_pub *pub = NULL;
	struct store_user su;
	struct buf m;
	uint32_t code = SOTTO__ERROR_CODE__ERR_BAD_SIGNATURE;

	buf_init(&m, 0);
	if (store_user_get(srv->store, signer, &su) != 0) {
		code = SOTTO__ERROR_CODE__ERR_INTERNAL;
		goto out;
	}
	if (sigmsg_group_change(&m, gid, serial, op, signer, users, n) != 0) {
		code = SOTTO__ERROR_CODE__ERR_BAD_REQUEST;
		goto out;
	}
	if (identity_pub_from_der(&pub, su.identity_key, su.identity_key_len) != 0 ||
	        identity_pub_verify(pub, sig->data, sig->len, buf_ptr(&m), buf_len(&m)) != 0)
		goto out;
	code = 0;
out:
	identity_pub_free(pub);
	buf_free(&m);
	return code;
}

/* Checks every group request makes of its user list; 0 or an answered error. */
static int
group_check_users(struct conn *c, uint64_t id, char *const *users, size_t n, int *answered)
{
	*answered = 1;
	if (n > PROTO_MAX_GROUP_USERS)
		return server_send_error(c, id, SOTTO__ERROR_CODE__ERR_BAD_REQUEST,
		        "at most 10000 users per request", 0);
	if (!sigmsg_users_canonical((const char *const *)users, n))
		return server_send_error(c, id, SOTTO__ERROR_CODE__ERR_BAD_REQUEST,
		        "users must be lower-case usernames, distinct and sorted", 0);
	*answered = 0;
	return 0;
}

/*
 * Users joining a group: each must exist and have room for one more group.
 * 0 when they may, else the answered error (*answered set).
 */
static int
group_check_joiners(struct conn *c, uint64_t id, char *const *users, size_t n, int *answered)
{
	struct server *srv = c->srv;
	struct srv_user *u;
	char msg[128];
	uint32_t count;
	size_t i;
	int r;

	*answered = 1;
	for (i = 0; i < n; i++) {
		if ((u = server_user(srv, users[i])) == NULL || u->deleted)
			return server_send_error(
			        c, id, SOTTO__ERROR_CODE__ERR_NO_SUCH_USER, users[i], 0);
		if ((r = store_group_count_for(srv->store, users[i], &count)) != 0) {
			*answered = 0;
			return r;
		}
		if (count >= srv->cfg->max_groups_per_user) {
			snprintf(msg, sizeof(msg),
			        "%s is in %u groups, the most this server allows", users[i], count);
			return server_send_error(c, id, SOTTO__ERROR_CODE__ERR_GROUP_LIMIT, msg, 0);
		}
	}
	*answered = 0;
	return 0;
}

struct group_sig_ctx {
	const ProtobufCBinaryData *sig;
	int same;
};

static int
group_same_sig_cb(void *arg, const struct store_group_change *ch)
{
	struct group_sig_ctx *x = arg;

	x->same = ch->signature_len == x->sig->len &&
	          memcmp(ch->signature, x->sig->data, x->sig->len) == 0;
	return 1;
}

/* 1 if the change with serial is stored with this signature: a resend of what is done. */
static int
group_is_resend(struct server *srv, const uint8_t gid[PROTO_GROUP_ID_BYTES], uint64_t serial,
        const ProtobufCBinaryData *sig)
{
	struct group_sig_ctx x = {sig, 0};

	if (serial == 0 ||
	        store_group_changes(srv->store, gid, serial - 1, 1, group_same_sig_cb, &x) != 0)
		return 0;
	return x.same;
}

static void
group_change_init(struct store_group_change *ch, uint64_t serial, enum store_group_op op,
        const char *signer, char *const *users, size_t n, const ProtobufCBinaryData *sig)
{
	memset(ch, 0, sizeof(*ch));
	ch->serial = serial;
	ch->op = op;
	ch->signer = signer;
	ch->users = (const char *const *)users;
	ch->n_users = n;
	ch->signature = sig->data;
	ch->signature_len = sig->len;
	ch->timestamp_ms = server_now_ms();
}

static int
group_create(struct conn *c, uint64_t id, const Sotto__Frame *f)
{
	const Sotto__CreateGroup *cg = f->create_group;
	struct server *srv = c->srv;
	struct store_group_change ch;
	struct store_group sg;
	const char *me = c->user->name;
	char msg[128];
	uint32_t code, count;
	size_t i;
	int r, answered;

	if (cg->group_id.len != PROTO_GROUP_ID_BYTES)
		return server_send_error(
		        c, id, SOTTO__ERROR_CODE__ERR_BAD_REQUEST, "group_id must be 16 bytes", 0);
	if ((r = group_check_users(c, id, cg->members, cg->n_members, &answered)) != 0 || answered)
		return r;
	if (cg->signature.len == 0 || cg->signature.len > STORE_SIG_MAX)
		return server_send_error(
		        c, id, SOTTO__ERROR_CODE__ERR_BAD_REQUEST, "a signature is required", 0);
	if ((r = server_batch(srv)) != 0)
		return r;
	r = store_group_get(srv->store, cg->group_id.data, &sg);
	if (r == 0) {
		if (strcmp(sg.owner, me) == 0 && group_is_resend(srv, sg.id, 1, &cg->signature))
			return group_ok_after_commit(c, id);
		return server_send_error(c, id, SOTTO__ERROR_CODE__ERR_GROUP_EXISTS, NULL, 0);
	}
	if (r != SOTTO_ERR_NOTFOUND)
		return r;
	for (i = 0; i < cg->n_members; i++)
		if (strcmp(cg->members[i], me) == 0)
			return server_send_error(c, id, SOTTO__ERROR_CODE__ERR_BAD_REQUEST,
			        "the owner is a member already: leave it out of members", 0);
	if (cg->n_members + 1 > srv->cfg->max_group_members) {
		snprintf(msg, sizeof(msg), "a group holds at most %u members",
		        srv->cfg->max_group_members);
		return server_send_error(c, id, SOTTO__ERROR_CODE__ERR_GROUP_LIMIT, msg, 0);
	}
	if ((r = store_group_count_for(srv->store, me, &count)) != 0)
		return r;
	if (count >= srv->cfg->max_groups_per_user) {
		snprintf(msg, sizeof(msg), "you are in %u groups, the most this server allows",
		        count);
		return server_send_error(c, id, SOTTO__ERROR_CODE__ERR_GROUP_LIMIT, msg, 0);
	}
	if ((r = group_check_joiners(c, id, cg->members, cg->n_members, &answered)) != 0 ||
	        answered)
		return r;
	if ((code = group_check_sig(srv, cg->group_id.data, 1, SOTTO__GROUP_OP__GROUP_OP_CREATE, me,
	             (const char *const *)cg->members, cg->n_members, &cg->signature)) != 0)
		return server_send_error(c, id, code, NULL, 0);
	group_change_init(
	        &ch, 1, STORE_GROUP_CREATE, me, cg->members, cg->n_members, &cg->signature);
	r = store_group_create(srv->store, cg->group_id.data, me, &ch);
	if (r == SOTTO_ERR_NOTFOUND)
		return server_send_error(c, id, SOTTO__ERROR_CODE__ERR_NO_SUCH_USER,
		        store_last_error(srv->store), 0);
	if (r != 0)
		return r;
	log_debug("%s created a group of %zu", me, cg->n_members + 1);
	return group_ok_after_commit(c, id);
}

/* Add or remove: checks that depend on the op; 0 or the answered error. */
static int
group_check_change(struct conn *c, uint64_t id, const struct srv_group *g, uint32_t op,
        char *const *users, size_t n, int *answered)
{
	struct server *srv = c->srv;
	char msg[128];
	size_t i;

	*answered = 1;
	for (i = 0; i < n; i++) {
		if (op == SOTTO__GROUP_OP__GROUP_OP_ADD && group_has(g, users[i])) {
			snprintf(msg, sizeof(msg), "%s is already a member", users[i]);
			return server_send_error(c, id, SOTTO__ERROR_CODE__ERR_BAD_REQUEST, msg, 0);
		}
		if (op == SOTTO__GROUP_OP__GROUP_OP_REMOVE && strcmp(users[i], g->owner) == 0)
			return server_send_error(c, id, SOTTO__ERROR_CODE__ERR_BAD_REQUEST,
			        "the owner cannot be removed", 0);
		if (op == SOTTO__GROUP_OP__GROUP_OP_REMOVE && !group_has(g, users[i])) {
			snprintf(msg, sizeof(msg), "%s is not a member", users[i]);
			return server_send_error(c, id, SOTTO__ERROR_CODE__ERR_BAD_REQUEST, msg, 0);
		}
	}
	if (op == SOTTO__GROUP_OP__GROUP_OP_ADD) {
		if (g->n + n > srv->cfg->max_group_members) {
			snprintf(msg, sizeof(msg), "a group holds at most %u members",
			        srv->cfg->max_group_members);
			return server_send_error(c, id, SOTTO__ERROR_CODE__ERR_GROUP_LIMIT, msg, 0);
		}
		return group_check_joiners(c, id, users, n, answered);
	}
	*answered = 0;
	return 0;
}

static int
group_change(struct conn *c, uint64_t id, const Sotto__Frame *f)
{
	const Sotto__GroupChange *gc = f->group_change;
	struct server *srv = c->srv;
	struct store_group_change ch;
	struct srv_group *g;
	char msg[96];
	uint32_t code;
	int r, answered;

	if (gc->op != SOTTO__GROUP_OP__GROUP_OP_ADD && gc->op != SOTTO__GROUP_OP__GROUP_OP_REMOVE)
		return server_send_error(c, id, SOTTO__ERROR_CODE__ERR_BAD_REQUEST,
		        "op must be GROUP_OP_ADD or GROUP_OP_REMOVE", 0);
	if (gc->n_users == 0)
		return server_send_error(
		        c, id, SOTTO__ERROR_CODE__ERR_BAD_REQUEST, "no users to change", 0);
	if ((r = group_check_users(c, id, gc->users, gc->n_users, &answered)) != 0 || answered)
		return r;
	if (gc->signature.len == 0 || gc->signature.len > STORE_SIG_MAX)
		return server_send_error(
		        c, id, SOTTO__ERROR_CODE__ERR_BAD_REQUEST, "a signature is required", 0);
	if ((r = server_batch(srv)) != 0)
		return r;
	if ((r = group_for_member(c, id, &gc->group_id, &g)) != 0 || g == NULL)
		return r;
	if (strcmp(g->owner, c->user->name) != 0)
		return server_send_error(c, id, SOTTO__ERROR_CODE__ERR_NOT_GROUP_OWNER, NULL, 0);
	if (gc->serial != g->serial + 1) {
		if (gc->serial == g->serial &&
		        group_is_resend(srv, g->id, g->serial, &gc->signature))
			return group_ok_after_commit(c, id);
		snprintf(msg, sizeof(msg), "the group is at serial %llu",
		        (unsigned long long)g->serial);
		return server_send_error(c, id, SOTTO__ERROR_CODE__ERR_GROUP_CONFLICT, msg, 0);
	}
	if ((r = group_check_change(c, id, g, gc->op, gc->users, gc->n_users, &answered)) != 0 ||
	        answered)
		return r;
	if ((code = group_check_sig(srv, g->id, gc->serial, gc->op, c->user->name,
	             (const char *const *)gc->users, gc->n_users, &gc->signature)) != 0)
		return server_send_error(c, id, code, NULL, 0);
	group_change_init(&ch, gc->serial, (enum store_group_op)gc->op, c->user->name, gc->users,
	        gc->n_users, &gc->signature);
	r = store_group_apply(srv->store, g->id, &ch);
	group_forget(srv, gc->group_id.data);
	if (r == SOTTO_ERR_AGAIN)
		return server_send_error(c, id, SOTTO__ERROR_CODE__ERR_GROUP_CONFLICT, NULL, 0);
	if (r == SOTTO_ERR_NOTFOUND || r == SOTTO_ERR_EXISTS)
		return server_send_error(
		        c, id, SOTTO__ERROR_CODE__ERR_BAD_REQUEST, store_last_error(srv->store), 0);
	if (r != 0)
		return r;
	return group_ok_after_commit(c, id);
}

static int
group_leave(struct conn *c, uint64_t id, const Sotto__Frame *f)
{
	const Sotto__LeaveGroup *lg = f->leave_group;
	struct server *srv = c->srv;
	struct store_group_change ch;
	const char *me = c->user->name;
	char *users[1];
	struct srv_group *g;
	uint32_t code;
	int r;

	if ((r = server_batch(srv)) != 0)
		return r;
	if ((r = group_for_member(c, id, &lg->group_id, &g)) != 0 || g == NULL)
		return r;
	if (strcmp(g->owner, me) == 0) {
		if (g->n > 1)
			return server_send_error(c, id, SOTTO__ERROR_CODE__ERR_BAD_REQUEST,
			        "the owner cannot leave while the group has other members", 0);
		/* The last member leaving ends the group. */
		r = store_group_delete(srv->store, g->id);
		group_forget(srv, lg->group_id.data);
		return r != 0 ? r : group_ok_after_commit(c, id);
	}
	if (lg->serial != g->serial + 1)
		return server_send_error(c, id, SOTTO__ERROR_CODE__ERR_GROUP_CONFLICT, NULL, 0);
	if (lg->signature.len == 0 || lg->signature.len > STORE_SIG_MAX)
		return server_send_error(
		        c, id, SOTTO__ERROR_CODE__ERR_BAD_REQUEST, "a signature is required", 0);
	users[0] = (char *)(uintptr_t)me;
	if ((code = group_check_sig(srv, g->id, lg->serial, SOTTO__GROUP_OP__GROUP_OP_LEAVE, me,
	             (const char *const *)users, 1, &lg->signature)) != 0)
		return server_send_error(c, id, code, NULL, 0);
	group_change_init(&ch, lg->serial, STORE_GROUP_LEAVE, me, users, 1, &lg->signature);
	r = store_group_apply(srv->store, g->id, &ch);
	group_forget(srv, lg->group_id.data);
	if (r == SOTTO_ERR_AGAIN)
		return server_send_error(c, id, SOTTO__ERROR_CODE__ERR_GROUP_CONFLICT, NULL, 0);
	if (r != 0)
		return r;
	return group_ok_after_commit(c, id);
}

/* Change records copied out of the store for one GroupInfo. */
struct group_info_ctx {
	Sotto__GroupChangeRecord *recs;
	Sotto__GroupChangeRecord **ptrs;
	size_t n, cap, bytes;
	uint64_t last;
	int err;
};

static void
group_info_free(struct group_info_ctx *x)
{
	size_t i, j;

	for (i = 0; i < x->n; i++) {
		for (j = 0; j < x->recs[i].n_users; j++)
			free(x->recs[i].users[j]);
		free(x->recs[i].users);
		free(x->recs[i].signer);
		free(x->recs[i].signature.data);
	}
	free(x->recs);
	free(x->ptrs);
}

static int
group_info_cb(void *arg, const struct store_group_change *ch)
{
	struct group_info_ctx *x = arg;
	Sotto__GroupChangeRecord *rec;
	size_t i;

	if (x->n > 0 && x->bytes >= GROUP_INFO_MAX_BYTES)
		return 1;
	if (x->n == x->cap) {
		size_t ncap = x->cap == 0 ? 16 : 2 * x->cap;
		Sotto__GroupChangeRecord *nr = realloc(x->recs, ncap * sizeof(*nr));

		if (nr == NULL)
			goto nomem;
		x->recs = nr;
		x->cap = ncap;
	}
	rec = &x->recs[x->n];
	sotto__group_change_record__init(rec);
	rec->serial = ch->serial;
	rec->op = ch->op;
	rec->timestamp_ms = (uint64_t)ch->timestamp_ms;
	x->n++;
	if ((rec->signer = strdup(ch->signer)) == NULL ||
	        (rec->signature.data = malloc(ch->signature_len + 1)) == NULL ||
	        (rec->users = calloc(ch->n_users + 1, sizeof(*rec->users))) == NULL)
		goto nomem;
	memcpy(rec->signature.data, ch->signature, ch->signature_len);
	rec->signature.len = ch->signature_len;
	x->bytes += 64 + ch->signature_len;
	for (i = 0; i < ch->n_users; i++) {
		if ((rec->users[i] = strdup(ch->users[i])) == NULL)
			goto nomem;
		rec->n_users++;
		x->bytes += strlen(ch->users[i]) + 2;
	}
	x->last = ch->serial;
	return 0;
nomem:
	x->err = SOTTO_ERR_NOMEM;
	return SOTTO_ERR_NOMEM;
}

static int
group_get(struct conn *c, uint64_t id, const Sotto__Frame *f)
{
	const Sotto__GetGroup *gg = f->get_group;
	struct group_info_ctx x;
	struct srv_group *g;
	Sotto__GroupInfo gi;
	Sotto__Frame rf;
	char **names = NULL;
	size_t i, before;
	int r;

	memset(&x, 0, sizeof(x));
	if ((r = group_for_member(c, id, &gg->group_id, &g)) != 0 || g == NULL)
		return r;
	x.last = gg->since_serial;
	do {
		before = x.n;
		r = store_group_changes(
		        c->srv->store, g->id, x.last, GROUP_INFO_BATCH, group_info_cb, &x);
		if (r != 0 || x.err != 0) {
			r = r != 0 ? r : x.err;
			goto out;
		}
	} while (x.n - before == GROUP_INFO_BATCH && x.bytes < GROUP_INFO_MAX_BYTES);
	if ((x.ptrs = calloc(x.n + 1, sizeof(*x.ptrs))) == NULL ||
	        (names = calloc(g->n + 1, sizeof(*names))) == NULL) {
		r = SOTTO_ERR_NOMEM;
		goto out;
	}
	for (i = 0; i < x.n; i++)
		x.ptrs[i] = &x.recs[i];
	for (i = 0; i < g->n; i++)
		names[i] = g->members[i];
	sotto__group_info__init(&gi);
	gi.group_id = proto_bytes(g->id, PROTO_GROUP_ID_BYTES);
	gi.owner = g->owner;
	gi.members = names;
	gi.n_members = g->n;
	gi.serial = g->serial;
	gi.changes = x.ptrs;
	gi.n_changes = x.n;
	gi.more = x.last < g->serial;
	frame_init(&rf, id);
	rf.body_case = SOTTO__FRAME__BODY_GROUP_INFO;
	rf.group_info = &gi;
	r = server_send(c, &rf);
out:
	free(names);
	group_info_free(&x);
	return r;
}

static int
group_send(struct conn *c, uint64_t id, const Sotto__Frame *f)
{
	const Sotto__SendGroup *sg = f->send_group;
	struct srv_user **to = NULL, *u;
	struct srv_group *g;
	Sotto__AckGroup ag;
	Sotto__Frame rf;
	size_t i, n = 0;
	int r, missing;

	if (sg->msg_id.len != PROTO_MSG_ID_BYTES)
		return server_send_error(
		        c, id, SOTTO__ERROR_CODE__ERR_BAD_REQUEST, "msg_id must be 16 bytes", 0);
	if (sg->sealed.len == 0)
		return server_send_error(
		        c, id, SOTTO__ERROR_CODE__ERR_BAD_REQUEST, "sealed is empty", 0);
	if ((r = group_for_member(c, id, &sg->group_id, &g)) != 0 || g == NULL)
		return r;
	/*
	 * Users are never freed while the server runs, and a change evicts
	 * the group from the cache: the lookups hold until then.
	 */
	if (g->users == NULL) {
		if ((g->users = calloc(g->n + 1, sizeof(*g->users))) == NULL)
			return SOTTO_ERR_NOMEM;
		for (i = 0; i < g->n; i++)
			g->users[i] = server_user(c->srv, g->members[i]);
	}
	if ((to = calloc(g->n + 1, sizeof(*to))) == NULL)
		return SOTTO_ERR_NOMEM;
	for (i = 0, missing = 0; i < g->n; i++) {
		/* A member whose account was deleted has nowhere to receive. */
		if ((u = g->users[i]) == NULL)
			missing = 1;
		if (u == NULL || u == c->user || u->deleted)
			continue;
		to[n++] = u;
	}
	/* A lookup that failed (the store, not the name) is tried again next time. */
	if (missing) {
		free(g->users);
		g->users = NULL;
	}
	if (n > 0) {
		r = server_route_send_group(c, id, sg->msg_id.data, g->id, to, n, &sg->sealed);
	} else {
		sotto__ack_group__init(&ag);
		ag.msg_id = sg->msg_id;
		ag.group_id = sg->group_id;
		frame_init(&rf, id);
		rf.body_case = SOTTO__FRAME__BODY_ACK_GROUP;
		rf.ack_group = &ag;
		r = server_send(c, &rf);
	}
	free(to);
	return r;
}

const struct server_handler server_group_handlers[] = {
        {SOTTO__FRAME__BODY_CREATE_GROUP, 0, group_create},
        {SOTTO__FRAME__BODY_GROUP_CHANGE, 0, group_change},
        {SOTTO__FRAME__BODY_LEAVE_GROUP, 0, group_leave},
        {SOTTO__FRAME__BODY_GET_GROUP, 0, group_get},
        {SOTTO__FRAME__BODY_SEND_GROUP, 0, group_send},
        {0, 0, NULL},
};
