/* Group operations of the sotto client; see client-gops.h. */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto/util.h"
#include "src/client-gops.h"

#define GOPS_USERS_MAX 10000 /* users named by one request (sotto-protocol(7)) */

void
gops_short_id(char *out, const uint8_t id[CLIENT_GROUP_ID_BYTES])
{
	char hex[2 * CLIENT_GROUP_ID_BYTES + 1];

	sotto_hex(hex, id, CLIENT_GROUP_ID_BYTES);
	memcpy(out, hex, GOPS_SHORT_ID_LEN);
	out[GOPS_SHORT_ID_LEN] = '\0';
}

void
gops_display_name(char *out, size_t outlen, const struct client_group *g)
{
	char sid[GOPS_SHORT_ID_LEN + 1];

	if (g->name[0] != '\0') {
		snprintf(out, outlen, "%s", g->name);
		return;
	}
	gops_short_id(sid, g->id);
	snprintf(out, outlen, "(unnamed %s)", sid);
}

/* ---- the local list ---------------------------------------------------------------------- */

struct list_acc {
	struct client_group **gs;
	size_t n, cap;
	int bad;
};

static int
list_cb(void *arg, const uint8_t id[CLIENT_STORE_GROUP_BYTES], const uint8_t *state, size_t len)
{
	struct list_acc *a = arg;
	struct client_group *g = NULL, **ng;

	if (client_group_deserialize(&g, state, len) != 0 ||
	        memcmp(g->id, id, CLIENT_GROUP_ID_BYTES) != 0) {
		client_group_free(g);
		a->bad++;
		return 0;
	}
	if (a->n == a->cap) {
		a->cap = a->cap == 0 ? 8 : 2 * a->cap;
		if ((ng = realloc(a->gs, a->cap * sizeof(*ng))) == NULL) {
			client_group_free(g);
			return SOTTO_ERR_NOMEM;
		}
		a->gs = ng;
	}
	a->gs[a->n++] = g;
	return 0;
}

static int
list_cmp(const void *pa, const void *pb)
{
	const struct client_group *a = *(const struct client_group *const *)pa;
	const struct client_group *b = *(const struct client_group *const *)pb;
	int c = strcmp(a->name, b->name);

	return c != 0 ? c : memcmp(a->id, b->id, CLIENT_GROUP_ID_BYTES);
}

void
gops_list_free(struct client_group **gs, size_t n)
{
	size_t i;

	for (i = 0; gs != NULL && i < n; i++)
		client_group_free(gs[i]);
	free(gs);
}

int
gops_list(struct sotto_ctx *ctx, struct client_group ***out, size_t *n)
{
	struct list_acc a;
	int r;

	*out = NULL;
	*n = 0;
	memset(&a, 0, sizeof(a));
	if ((r = client_store_group_list(ctx->store, list_cb, &a)) != 0) {
		gops_list_free(a.gs, a.n);
		return ctx_fail(SOTTO_EXIT_INTERNAL, "cannot list the groups: %s",
		        client_store_last_error(ctx->store));
	}
	if (a.bad > 0)
		fprintf(stderr, "sotto: %d group record%s in client.db do not read; skipped\n",
		        a.bad, a.bad == 1 ? "" : "s");
	if (a.n > 1)
		qsort(a.gs, a.n, sizeof(*a.gs), list_cmp);
	*out = a.gs;
	*n = a.n;
	return 0;
}

/* 1 if ref (4 to 32 hex digits, any case) starts the hex form of id. */
static int
id_prefix(const char *ref, const uint8_t id[CLIENT_GROUP_ID_BYTES])
{
	char hex[2 * CLIENT_GROUP_ID_BYTES + 1];
	size_t i, len = strlen(ref);

	if (len < 4 || len > 2 * CLIENT_GROUP_ID_BYTES)
		return 0;
	sotto_hex(hex, id, CLIENT_GROUP_ID_BYTES);
	for (i = 0; i < len; i++)
		if (!isxdigit((unsigned char)ref[i]) || tolower((unsigned char)ref[i]) != hex[i])
			return 0;
	return 1;
}

int
gops_find(struct sotto_ctx *ctx, const char *ref, struct client_group **out)
{
	struct client_group **gs = NULL;
	char sid[GOPS_SHORT_ID_LEN + 1], ids[512];
	size_t n = 0, i, hit = 0, nhits = 0, len = 0;
	int r;

	*out = NULL;
	if (ref[0] == '#')
		ref++;
	if (ref[0] == '\0')
		return ctx_fail(SOTTO_EXIT_USAGE, "name a group");
	if ((r = gops_list(ctx, &gs, &n)) != 0)
		return r;
	for (i = 0; i < n; i++)
		if (strcmp(gs[i]->name, ref) == 0) {
			hit = i;
			nhits++;
		}
	if (nhits == 0)
		for (i = 0; i < n; i++)
			if (id_prefix(ref, gs[i]->id)) {
				hit = i;
				nhits++;
			}
	if (nhits == 1) {
		*out = gs[hit];
		gs[hit] = NULL;
		goto out;
	}
	if (nhits == 0) {
		r = ctx_fail(SOTTO_EXIT_USAGE,
		        "no group is named %s (sotto group list shows yours)", ref);
		goto out;
	}
	/* "use 1a2b3c4d or 5e6f7a8b", or "use a, b or c". */
	ids[0] = '\0';
	for (i = 0, hit = 0; i < n; i++) {
		if (strcmp(gs[i]->name, ref) != 0 && !id_prefix(ref, gs[i]->id))
			continue;
		gops_short_id(sid, gs[i]->id);
		hit++;
		len = strlen(ids);
		snprintf(ids + len, sizeof(ids) - len, "%s%s",
		        hit == 1 ? "" : (hit == nhits ? " or " : ", "), sid);
	}
	if (nhits == 2)
		r = ctx_fail(SOTTO_EXIT_USAGE, "two groups are named %s: use %s", ref, ids);
	else
		r = ctx_fail(SOTTO_EXIT_USAGE, "%zu groups are named %s: use %s", nhits, ref, ids);
out:
	gops_list_free(gs, n);
	return r;
}

/* ---- signers' keys and the server's log ----------------------------------------------- */

/* client_group_key_fn: our own key, a known_peers entry, or the server's bundle checked. */
static int
gops_keyfn(void *arg, const char *user, struct identity_pub **out)
{
	struct sotto_ctx *ctx = arg;
	struct client_trust_peer *p = NULL;
	char err[512];
	int r;

	*out = NULL;
	if (strcmp(user, ctx->username) == 0)
		return identity_pub_dup(out, &ctx->id->pub);
	r = client_trust_peer_get(
	        &p, ctx->paths->known_peers, ctx->host, ctx->portnum, user, err, sizeof(err));
	if (r == 0) {
		r = identity_pub_dup(out, p->pub);
		client_trust_peer_free(p);
		return r;
	}
	if (r != SOTTO_ERR_NOTFOUND)
		return r;
	/* Someone we never talked to (a member who left, say): the server's key, as for 1:1. */
	return msg_peer_key(ctx, user, out) == 0 ? 0 : SOTTO_ERR_NOTFOUND;
}

/* The signed changes of a group as the server hands them out, oldest first. */
struct gops_log {
	Sotto__Frame **pages;
	size_t npages;
	struct client_group_change *chs;
	size_t n;
	const Sotto__GroupInfo *last; /* the last page: owner and members */
};

static void
log_free(struct gops_log *l)
{
	size_t i;

	for (i = 0; i < l->npages; i++)
		frame_free(l->pages[i]);
	free(l->pages);
	free(l->chs);
	memset(l, 0, sizeof(*l));
}

/*
 * The changes after since, page by page.  SOTTO_EXIT_NET with *gone set
 * (no message) when the server says we are not in the group.
 */
static int
log_fetch(struct sotto_ctx *ctx, const uint8_t id[CLIENT_GROUP_ID_BYTES], uint64_t since,
        struct gops_log *l, int *gone)
{
	Sotto__Frame req, *reply = NULL, **np;
	Sotto__GetGroup gg;
	struct client_group_change *nc;
	const Sotto__GroupInfo *gi;
	size_t i, pages = 0;
	int r;

	memset(l, 0, sizeof(*l));
	*gone = 0;
	for (;;) {
		sotto__get_group__init(&gg);
		gg.group_id = proto_bytes(id, CLIENT_GROUP_ID_BYTES);
		gg.since_serial = since;
		frame_init(&req, 0);
		req.body_case = SOTTO__FRAME__BODY_GET_GROUP;
		req.get_group = &gg;
		if ((r = client_conn_request(ctx->conn, &req, &reply, 0)) != 0) {
			if (r == SOTTO_ERR_PERM && client_conn_remote(ctx->conn)->code ==
			                                   SOTTO__ERROR_CODE__ERR_NO_SUCH_GROUP) {
				*gone = 1;
				r = SOTTO_EXIT_NET;
			} else
				r = ctx_request_fail(ctx, "cannot fetch the group", r);
			frame_free(reply);
			goto fail;
		}
		if (reply->body_case != SOTTO__FRAME__BODY_GROUP_INFO) {
			r = ctx_fail(SOTTO_EXIT_NET, "the server answered GetGroup with %s",
			        frame_body_name(reply));
			frame_free(reply);
			goto fail;
		}
		if ((np = realloc(l->pages, (l->npages + 1) * sizeof(*np))) == NULL) {
			frame_free(reply);
			r = ctx_fail(SOTTO_EXIT_INTERNAL, "out of memory");
			goto fail;
		}
		l->pages = np;
		l->pages[l->npages++] = reply;
		gi = reply->group_info;
		l->last = gi;
		if (gi->n_changes > 0) {
			if ((nc = realloc(l->chs, (l->n + gi->n_changes) * sizeof(*nc))) == NULL) {
				r = ctx_fail(SOTTO_EXIT_INTERNAL, "out of memory");
				goto fail;
			}
			l->chs = nc;
			for (i = 0; i < gi->n_changes; i++) {
				const Sotto__GroupChangeRecord *c = gi->changes[i];
				struct client_group_change *d = &l->chs[l->n++];

				d->serial = c->serial;
				d->op = c->op;
				d->signer = c->signer;
				d->users = (const char *const *)c->users;
				d->n_users = c->n_users;
				d->signature = c->signature.data;
				d->signature_len = c->signature.len;
			}
			since = gi->changes[gi->n_changes - 1]->serial;
		}
		/* A server that says "more" without progress would loop: stop it. */
		if (!gi->more || gi->n_changes == 0 || ++pages > 100000)
			break;
	}
	return 0;
fail:
	log_free(l);
	return r;
}

/* Warn about each difference between the server's member list and the verified one. */
static void
members_compare(const struct client_group *g, const Sotto__GroupInfo *gi)
{
	char name[CLIENT_GROUP_NAME_MAX + 40];
	size_t i, j;

	gops_display_name(name, sizeof(name), g);
	for (i = 0; i < gi->n_members; i++)
		if (!client_group_is_member(g, gi->members[i]))
			fprintf(stderr,
			        "sotto: the server lists %s in group %s, but the owner never added "
			        "them; ignoring\n",
			        gi->members[i], name);
	for (i = 0; i < g->n; i++) {
		for (j = 0; j < gi->n_members; j++)
			if (strcmp(gi->members[j], g->members[i]) == 0)
				break;
		if (j == gi->n_members)
			fprintf(stderr,
			        "sotto: the server leaves %s out of group %s, though the owner's "
			        "signed changes keep them in; they will not get its messages\n",
			        g->members[i], name);
	}
}

static int
group_save(struct sotto_ctx *ctx, const struct client_group *g)
{
	if (client_group_save(ctx->store, g, (int64_t)time(NULL)) != 0)
		return ctx_fail(SOTTO_EXIT_INTERNAL, "cannot save the group: %s",
		        client_store_last_error(ctx->store));
	return 0;
}

int
gops_sync(struct sotto_ctx *ctx, struct client_group **g)
{
	struct gops_log l;
	char name[CLIENT_GROUP_NAME_MAX + 40], err[CLIENT_GROUP_ERR_MAX];
	uint64_t before = (*g)->serial;
	int gone = 0, r;

	gops_display_name(name, sizeof(name), *g);
	if ((r = log_fetch(ctx, (*g)->id, (*g)->serial, &l, &gone)) != 0) {
		if (gone && client_group_is_member(*g, ctx->username))
			fprintf(stderr,
			        "sotto: the server says you are not in group %s, though no signed "
			        "change removed you\n",
			        name);
		else if (gone)
			fprintf(stderr, "sotto: you are no longer in group %s\n", name);
		return r;
	}
	err[0] = '\0';
	if (l.n > 0 && client_group_apply_all(
	                       g, (*g)->id, l.chs, l.n, gops_keyfn, ctx, err, sizeof(err)) != 0)
		fprintf(stderr,
		        "sotto: group %s: the server hands out a change that is refused: %s\n",
		        name, err);
	if (l.last != NULL)
		members_compare(*g, l.last);
	r = (*g)->serial != before ? group_save(ctx, *g) : 0;
	log_free(&l);
	return r;
}

/* ---- our sending chain and who has it -------------------------------------------------- */

static void
dist_meta_name(char *out, size_t outlen, const uint8_t id[CLIENT_GROUP_ID_BYTES])
{
	char hex[2 * CLIENT_GROUP_ID_BYTES + 1];

	sotto_hex(hex, id, CLIENT_GROUP_ID_BYTES);
	snprintf(out, outlen, "%s%s", GOPS_DIST_META, hex);
}

/* Who has our chain key_id: a malloc'd " name name " (spaces around each), or "" for nobody. */
static char *
dist_load(struct sotto_ctx *ctx, const uint8_t id[CLIENT_GROUP_ID_BYTES], uint32_t key_id)
{
	char meta[80], *v = NULL, *sp, *out;
	unsigned long k;

	dist_meta_name(meta, sizeof(meta), id);
	if (client_store_meta_get_str(ctx->store, meta, &v) == 0) {
		k = strtoul(v, &sp, 10);
		if (k == key_id && *sp == ' ') {
			out = strdup(sp);
			free(v);
			return out;
		}
	}
	free(v);
	return strdup(" ");
}

/* 1 if set (as dist_load makes it) names user. */
static int
dist_has(const char *set, const char *user)
{
	size_t len = strlen(user);
	const char *p = set;

	while ((p = strstr(p, user)) != NULL) {
		if (p > set && p[-1] == ' ' && p[len] == ' ')
			return 1;
		p++;
	}
	return 0;
}

/* Add user to *set (realloc'd). */
static int
dist_add(char **set, const char *user)
{
	size_t len = strlen(*set), ulen = strlen(user);
	char *n;

	if (dist_has(*set, user))
		return 0;
	if ((n = realloc(*set, len + ulen + 2)) == NULL)
		return SOTTO_ERR_NOMEM;
	memcpy(n + len, user, ulen);
	n[len + ulen] = ' ';
	n[len + ulen + 1] = '\0';
	*set = n;
	return 0;
}

static int
dist_save(struct sotto_ctx *ctx, const uint8_t id[CLIENT_GROUP_ID_BYTES], uint32_t key_id,
        const char *set)
{
	char meta[80], *v;
	size_t len = strlen(set) + 16;
	int r;

	dist_meta_name(meta, sizeof(meta), id);
	if ((v = malloc(len)) == NULL)
		return ctx_fail(SOTTO_EXIT_INTERNAL, "out of memory");
	snprintf(v, len, "%u%s", key_id, set);
	r = client_store_meta_set_str(ctx->store, meta, v);
	free(v);
	if (r != 0)
		return ctx_fail(SOTTO_EXIT_INTERNAL, "cannot save the group: %s",
		        client_store_last_error(ctx->store));
	return 0;
}

/*
 * Our sending chain for g, made new (and saved, with g's rekey flag
 * cleared) if there is none or g asks for a rekey.
 */
static int
chain_get(struct sotto_ctx *ctx, struct client_group *g, struct senderkey_send **s)
{
	int r, rekey = g->rekey;

	*s = NULL;
	if (!rekey) {
		r = client_group_send_load(ctx->store, g->id, ctx->username, s);
		if (r == 0)
			return 0;
		if (r != SOTTO_ERR_NOTFOUND)
			return ctx_fail(SOTTO_EXIT_INTERNAL, "our sender key does not open: %s",
			        sotto_strerror(r));
	}
	if ((r = senderkey_send_new(s)) != 0)
		return ctx_fail(
		        SOTTO_EXIT_INTERNAL, "cannot make a sender key: %s", sotto_strerror(r));
	g->rekey = 0;
	if ((r = client_store_begin(ctx->store)) != 0 ||
	        (r = client_group_send_save(
	                 ctx->store, g->id, ctx->username, *s, (int64_t)time(NULL))) != 0 ||
	        (r = client_group_save(ctx->store, g, (int64_t)time(NULL))) != 0 ||
	        (r = client_store_commit(ctx->store)) != 0) {
		client_store_rollback(ctx->store);
		g->rekey = rekey;
		senderkey_send_free(*s);
		*s = NULL;
		return ctx_fail(SOTTO_EXIT_INTERNAL, "cannot save a new sender key: %s",
		        client_store_last_error(ctx->store));
	}
	return 0;
}

/* Hand our chain s to each member of g who lacks it, in one SendMulti. */
static int
chain_distribute(struct sotto_ctx *ctx, const struct client_group *g, struct senderkey_send *s)
{
	struct msg_multi *m = NULL;
	uint8_t *pt = NULL, msg_id[PROTO_MSG_ID_BYTES];
	size_t ptlen = 0, n = 0, i;
	uint32_t key_id = senderkey_send_key_id(s);
	char *set = NULL;
	int r;

	if ((set = dist_load(ctx, g->id, key_id)) == NULL ||
	        (m = calloc(g->n + 1, sizeof(*m))) == NULL) {
		r = ctx_fail(SOTTO_EXIT_INTERNAL, "out of memory");
		goto out;
	}
	for (i = 0; i < g->n; i++)
		if (strcmp(g->members[i], ctx->username) != 0 && !dist_has(set, g->members[i]))
			m[n++].to = g->members[i];
	if (n == 0) {
		r = 0;
		goto out;
	}
	if ((r = client_group_dist_pack(s, g->id, (uint64_t)msg_now_ms(), &pt, &ptlen)) != 0) {
		r = ctx_fail(
		        SOTTO_EXIT_INTERNAL, "cannot pack our sender key: %s", sotto_strerror(r));
		goto out;
	}
	for (i = 0; i < n; i++) {
		m[i].content = pt;
		m[i].content_len = ptlen;
	}
	/* A member whose session cannot start is told why, and gets it next time. */
	(void)msg_multi_open(ctx, m, n, 0);
	sotto_random(msg_id, sizeof(msg_id));
	if ((r = msg_multi_send(ctx, m, n, msg_id)) != 0)
		goto out;
	for (i = 0; i < n; i++)
		if (m[i].sent && dist_add(&set, m[i].to) != 0) {
			r = ctx_fail(SOTTO_EXIT_INTERNAL, "out of memory");
			goto out;
		}
	r = dist_save(ctx, g->id, key_id, set);
out:
	msg_multi_free(m, n);
	free(m);
	free(set);
	if (pt != NULL) {
		sotto_wipe(pt, ptlen);
		free(pt);
	}
	return r;
}

/* ---- sending in the group -------------------------------------------------------------- */

static int
need_member(struct sotto_ctx *ctx, const struct client_group *g)
{
	char name[CLIENT_GROUP_NAME_MAX + 40];

	if (client_group_is_member(g, ctx->username))
		return 0;
	gops_display_name(name, sizeof(name), g);
	return ctx_fail(SOTTO_EXIT_USAGE, "you are not in group %s any more", name);
}

/*
 * Send content c to the group: check the membership with the server, make or
 * renew our chain and hand it out, seal, save (with msg, if not NULL), and
 * SendGroup.  *ack receives the AckGroup.
 */
static int
send_content(struct sotto_ctx *ctx, struct client_group **g, const Sottoc__Content *c,
        const uint8_t msg_id[PROTO_MSG_ID_BYTES], const struct client_msg *msg, Sotto__Frame **ack)
{
	struct senderkey_send *s = NULL;
	Sotto__Frame req;
	Sotto__SendGroup sg;
	uint8_t *sealed = NULL;
	size_t sealedlen = 0;
	int r;

	*ack = NULL;
	if ((r = need_member(ctx, *g)) != 0 || (r = gops_sync(ctx, g)) != 0 ||
	        (r = need_member(ctx, *g)) != 0 || (r = chain_get(ctx, *g, &s)) != 0 ||
	        (r = chain_distribute(ctx, *g, s)) != 0)
		goto out;
	if ((r = client_group_seal(s, (*g)->id, ctx->username, c, &sealed, &sealedlen)) != 0) {
		r = ctx_fail(
		        SOTTO_EXIT_INTERNAL, "cannot encrypt for the group: %s", sotto_strerror(r));
		goto out;
	}
	if ((r = client_store_begin(ctx->store)) != 0 ||
	        (r = client_group_send_save(
	                 ctx->store, (*g)->id, ctx->username, s, (int64_t)time(NULL))) != 0 ||
	        (msg != NULL && (r = client_store_msg_add(ctx->store, msg, NULL)) != 0) ||
	        (r = client_store_commit(ctx->store)) != 0) {
		client_store_rollback(ctx->store);
		r = ctx_fail(SOTTO_EXIT_INTERNAL, "cannot save the message: %s",
		        client_store_last_error(ctx->store));
		goto out;
	}
	sotto__send_group__init(&sg);
	sg.msg_id = proto_bytes(msg_id, PROTO_MSG_ID_BYTES);
	sg.group_id = proto_bytes((*g)->id, CLIENT_GROUP_ID_BYTES);
	sg.sealed = proto_bytes(sealed, sealedlen);
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_SEND_GROUP;
	req.send_group = &sg;
	if ((r = client_conn_request(ctx->conn, &req, ack, 0)) != 0) {
		r = ctx_request_fail(ctx, "cannot send to the group", r);
		frame_free(*ack);
		*ack = NULL;
		goto out;
	}
	if ((*ack)->body_case != SOTTO__FRAME__BODY_ACK_GROUP) {
		r = ctx_fail(SOTTO_EXIT_NET, "the server answered SendGroup with %s",
		        frame_body_name(*ack));
		frame_free(*ack);
		*ack = NULL;
	}
out:
	free(sealed);
	senderkey_send_free(s);
	return r;
}

int
gops_send_text(struct sotto_ctx *ctx, struct client_group **g, const char *text, size_t len,
        struct gops_sent *out)
{
	Sottoc__Content c;
	Sottoc__Text tx;
	struct client_msg msg;
	Sotto__Frame *ack = NULL;
	/* A copy: send_content may replace *g (gops_sync), and msg must not point into it. */
	uint8_t gid[CLIENT_GROUP_ID_BYTES];
	size_t i;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = msg_text_check(text, len)) != 0)
		return r;
	memcpy(gid, (*g)->id, sizeof(gid));
	sotto_random(out->msg_id, sizeof(out->msg_id));
	sottoc__content__init(&c);
	sottoc__text__init(&tx);
	tx.body = proto_str(text);
	c.sent_ms = (uint64_t)msg_now_ms();
	c.body_case = SOTTOC__CONTENT__BODY_TEXT;
	c.text = &tx;
	memset(&msg, 0, sizeof(msg));
	msg.peer = ctx->username;
	msg.group = gid;
	msg.dir = CLIENT_MSG_OUT;
	memcpy(msg.msg_id, out->msg_id, PROTO_MSG_ID_BYTES);
	msg.body = (const uint8_t *)text;
	msg.body_len = len;
	msg.timestamp_ms = (int64_t)c.sent_ms;
	msg.state = CLIENT_MSG_SENT;
	out->sent_ms = msg.timestamp_ms;
	if ((r = send_content(ctx, g, &c, out->msg_id, &msg, &ack)) != 0)
		return r;
	out->members = ack->ack_group->n_acks;
	for (i = 0; i < ack->ack_group->n_acks; i++)
		if (ack->ack_group->acks[i]->recipient_online)
			out->online++;
	frame_free(ack);
	return 0;
}

int
gops_rename(struct sotto_ctx *ctx, struct client_group **g, const char *name)
{
	char err[CLIENT_GROUP_ERR_MAX], old[CLIENT_GROUP_NAME_MAX + 40];
	uint8_t msg_id[PROTO_MSG_ID_BYTES];
	Sottoc__Content c;
	Sottoc__GroupRename rn;
	Sotto__Frame *ack = NULL;
	int r;

	gops_display_name(old, sizeof(old), *g);
	if (strcmp((*g)->owner, ctx->username) != 0)
		return ctx_fail(SOTTO_EXIT_USAGE, "only %s, the owner of group %s, may rename it",
		        (*g)->owner, old);
	if (!client_group_name_ok(name))
		return ctx_fail(SOTTO_EXIT_USAGE,
		        "a group name is 1 to %d bytes of UTF-8 without control characters",
		        CLIENT_GROUP_NAME_MAX);
	sottoc__content__init(&c);
	sottoc__group_rename__init(&rn);
	rn.name = proto_str(name);
	c.sent_ms = (uint64_t)msg_now_ms();
	c.body_case = SOTTOC__CONTENT__BODY_GROUP_RENAME;
	c.group_rename = &rn;
	sotto_random(msg_id, sizeof(msg_id));
	if ((r = send_content(ctx, g, &c, msg_id, NULL, &ack)) != 0)
		return r;
	frame_free(ack);
	if (client_group_rename(*g, ctx->username, name, err, sizeof(err)) != 0)
		return ctx_fail(SOTTO_EXIT_INTERNAL, "%s", err);
	return group_save(ctx, *g);
}

/* ---- membership changes ------------------------------------------------------------------ */

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Sorted, distinct, normalised copies of users without ourselves: *out (free it). */
static int
users_norm(struct sotto_ctx *ctx, char *const *users, size_t n,
        char (**out)[PROTO_USERNAME_MAX + 1], size_t *nout)
{
	char(*u)[PROTO_USERNAME_MAX + 1];
	size_t i, k = 0;

	*out = NULL;
	*nout = 0;
	if (n > GOPS_USERS_MAX)
		return ctx_fail(
		        SOTTO_EXIT_USAGE, "one change names at most %d users", GOPS_USERS_MAX);
	if ((u = calloc(n + 1, sizeof(*u))) == NULL)
		return ctx_fail(SOTTO_EXIT_INTERNAL, "out of memory");
	for (i = 0; i < n; i++) {
		if (proto_username_normalize(u[k], users[i]) != 0) {
			free(u);
			return ctx_fail(SOTTO_EXIT_USAGE, "%s: not a valid user name", users[i]);
		}
		if (strcmp(u[k], ctx->username) != 0)
			k++;
	}
	if (k > 1)
		qsort(u, k, sizeof(*u), name_cmp);
	*nout = k > 0 ? 1 : 0;
	for (i = 1; i < k; i++)
		if (strcmp(u[i], u[*nout - 1]) != 0)
			memmove(u[(*nout)++], u[i], sizeof(*u));
	*out = u;
	return 0;
}

/*
 * The owner tells members about its group g after a change: the whole signed
 * log and the name to each of recipients (members and, after a removal,
 * those removed), with our chain for every member who lacks it, in one
 * SendMulti.  recipients whose session is open in m[].s are used as they are.
 */
static int
owner_announce(struct sotto_ctx *ctx, struct client_group *g, struct msg_multi *m, size_t n)
{
	struct senderkey_send *s = NULL;
	struct gops_log l;
	uint8_t **pt = NULL, msg_id[PROTO_MSG_ID_BYTES];
	size_t *ptlen = NULL, i;
	Sottoc__Content *c = NULL;
	struct senderkey_dist sd;
	Sottoc__SenderKeyDistribution d;
	uint32_t key_id;
	char *set = NULL;
	int gone = 0, r;

	memset(&l, 0, sizeof(l));
	memset(&sd, 0, sizeof(sd));
	if ((r = chain_get(ctx, g, &s)) != 0 || (r = log_fetch(ctx, g->id, 0, &l, &gone)) != 0)
		goto out;
	key_id = senderkey_send_key_id(s);
	if ((set = dist_load(ctx, g->id, key_id)) == NULL ||
	        (pt = calloc(n + 1, sizeof(*pt))) == NULL ||
	        (ptlen = calloc(n + 1, sizeof(*ptlen))) == NULL) {
		r = ctx_fail(SOTTO_EXIT_INTERNAL, "out of memory");
		goto out;
	}
	if ((r = senderkey_send_dist(s, &sd)) != 0) {
		r = ctx_fail(SOTTO_EXIT_INTERNAL, "%s", sotto_strerror(r));
		goto out;
	}
	sottoc__sender_key_distribution__init(&d);
	d.group_id = proto_bytes(g->id, CLIENT_GROUP_ID_BYTES);
	d.key_id = sd.key_id;
	d.iteration = sd.iteration;
	d.chain_key = proto_bytes(sd.chain_key, sizeof(sd.chain_key));
	d.signing_key = proto_bytes(sd.sign_pub, sizeof(sd.sign_pub));
	for (i = 0; i < n; i++) {
		if ((r = client_group_update_pack(
		             g, l.chs, l.n, (uint64_t)msg_now_ms(), &pt[i], &ptlen[i])) != 0 ||
		        (c = sottoc__content__unpack(NULL, ptlen[i], pt[i])) == NULL) {
			r = ctx_fail(SOTTO_EXIT_INTERNAL, "cannot pack the group update");
			goto out;
		}
		if (client_group_is_member(g, m[i].to) && !dist_has(set, m[i].to)) {
			/* Repack with our chain inside. */
			c->group_update->sender_key = &d;
			sotto_wipe(pt[i], ptlen[i]);
			free(pt[i]);
			ptlen[i] = sottoc__content__get_packed_size(c);
			if ((pt[i] = malloc(ptlen[i] + 1)) == NULL) {
				c->group_update->sender_key = NULL;
				r = ctx_fail(SOTTO_EXIT_INTERNAL, "out of memory");
				goto out;
			}
			sottoc__content__pack(c, pt[i]);
			c->group_update->sender_key = NULL;
		}
		sottoc__content__free_unpacked(c, NULL);
		c = NULL;
		m[i].content = pt[i];
		m[i].content_len = ptlen[i];
	}
	(void)msg_multi_open(ctx, m, n, 0);
	sotto_random(msg_id, sizeof(msg_id));
	if ((r = msg_multi_send(ctx, m, n, msg_id)) != 0)
		goto out;
	for (i = 0; i < n; i++)
		if (m[i].sent && client_group_is_member(g, m[i].to) &&
		        dist_add(&set, m[i].to) != 0) {
			r = ctx_fail(SOTTO_EXIT_INTERNAL, "out of memory");
			goto out;
		}
	if ((r = dist_save(ctx, g->id, key_id, set)) != 0)
		goto out;
	/* Anyone the announcement missed gets our chain on its own (it says why). */
	r = chain_distribute(ctx, g, s);
out:
	if (c != NULL)
		sottoc__content__free_unpacked(c, NULL);
	for (i = 0; pt != NULL && i < n; i++) {
		if (pt[i] != NULL)
			sotto_wipe(pt[i], ptlen[i]);
		free(pt[i]);
	}
	free(pt);
	free(ptlen);
	free(set);
	sotto_wipe(&sd, sizeof(sd));
	senderkey_send_free(s);
	log_free(&l);
	return r;
}

/* Explain a refusal of a membership request. */
static int
change_fail(struct sotto_ctx *ctx, const char *what, int r)
{
	const struct client_remote_error *e = client_conn_remote(ctx->conn);

	if (r == SOTTO_ERR_PERM && e->code != 0)
		return ctx_fail(SOTTO_EXIT_NET, "%s: the server refused: %s", what,
		        e->message[0] != '\0' ? e->message : proto_error_string(e->code));
	return ctx_request_fail(ctx, what, r);
}

/* Send req and expect Ok. */
static int
request_ok(struct sotto_ctx *ctx, Sotto__Frame *req, const char *what)
{
	Sotto__Frame *reply = NULL;
	int r;

	if ((r = client_conn_request(ctx->conn, req, &reply, 0)) != 0)
		r = change_fail(ctx, what, r);
	else if (reply->body_case != SOTTO__FRAME__BODY_OK)
		r = ctx_fail(
		        SOTTO_EXIT_NET, "%s: the server answered %s", what, frame_body_name(reply));
	frame_free(reply);
	return r;
}

/* Apply our own signed change ch to *g and save it. */
static int
apply_own(struct sotto_ctx *ctx, struct client_group **g, const uint8_t id[CLIENT_GROUP_ID_BYTES],
        const struct client_group_change *ch)
{
	char err[CLIENT_GROUP_ERR_MAX];
	int r;

	if ((r = client_group_apply(g, id, ch, &ctx->id->pub, err, sizeof(err))) != 0)
		return ctx_fail(SOTTO_EXIT_INTERNAL, "our own change does not apply: %s", err);
	return group_save(ctx, *g);
}

int
gops_create(struct sotto_ctx *ctx, const char *name, char *const *users, size_t n,
        struct client_group **out)
{
	char(*u)[PROTO_USERNAME_MAX + 1] = NULL;
	const char **up = NULL;
	struct msg_multi *m = NULL;
	struct client_group_change ch;
	Sotto__Frame req;
	Sotto__CreateGroup cg;
	uint8_t id[CLIENT_GROUP_ID_BYTES], sig[IDENTITY_SIG_MAX];
	size_t nu = 0, siglen = 0, i;
	int r;

	*out = NULL;
	if (!client_group_name_ok(name))
		return ctx_fail(SOTTO_EXIT_USAGE,
		        "a group name is 1 to %d bytes of UTF-8 without control characters",
		        CLIENT_GROUP_NAME_MAX);
	if ((r = users_norm(ctx, users, n, &u, &nu)) != 0)
		return r;
	if (nu + 1 > CLIENT_GROUP_MEMBERS_MAX) {
		r = ctx_fail(SOTTO_EXIT_USAGE, "a group has at most %d members",
		        CLIENT_GROUP_MEMBERS_MAX);
		goto out;
	}
	if ((up = calloc(nu + 1, sizeof(*up))) == NULL ||
	        (m = calloc(nu + 1, sizeof(*m))) == NULL) {
		r = ctx_fail(SOTTO_EXIT_INTERNAL, "out of memory");
		goto out;
	}
	for (i = 0; i < nu; i++) {
		up[i] = u[i];
		m[i].to = u[i];
	}
	/* Every member's session first: a member we cannot reach stops it before the server. */
	if ((r = msg_multi_open(ctx, m, nu, 1)) != 0)
		goto out;
	sotto_random(id, sizeof(id));
	if ((r = client_group_sign(ctx->id, ctx->username, id, 1, SOTTO__GROUP_OP__GROUP_OP_CREATE,
	             up, nu, sig, sizeof(sig), &siglen)) != 0) {
		r = ctx_fail(SOTTO_EXIT_INTERNAL, "cannot sign the group: %s", sotto_strerror(r));
		goto out;
	}
	sotto__create_group__init(&cg);
	cg.group_id = proto_bytes(id, sizeof(id));
	cg.members = (char **)(uintptr_t)up;
	cg.n_members = nu;
	cg.signature = proto_bytes(sig, siglen);
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_CREATE_GROUP;
	req.create_group = &cg;
	if ((r = request_ok(ctx, &req, "cannot create the group")) != 0)
		goto out;
	memset(&ch, 0, sizeof(ch));
	ch.serial = 1;
	ch.op = SOTTO__GROUP_OP__GROUP_OP_CREATE;
	ch.signer = ctx->username;
	ch.users = up;
	ch.n_users = nu;
	ch.signature = sig;
	ch.signature_len = siglen;
	if ((r = apply_own(ctx, out, id, &ch)) != 0)
		goto out;
	snprintf((*out)->name, sizeof((*out)->name), "%s", name);
	if ((r = group_save(ctx, *out)) != 0)
		goto out;
	r = owner_announce(ctx, *out, m, nu);
out:
	msg_multi_free(m, nu);
	free(m);
	free(up);
	free(u);
	return r;
}

int
gops_change(
        struct sotto_ctx *ctx, struct client_group **g, uint32_t op, char *const *users, size_t n)
{
	char(*u)[PROTO_USERNAME_MAX + 1] = NULL;
	char name[CLIENT_GROUP_NAME_MAX + 40];
	const char **up = NULL;
	struct msg_multi *m = NULL;
	struct client_group_change ch;
	Sotto__Frame req;
	Sotto__GroupChange gc;
	uint8_t sig[IDENTITY_SIG_MAX];
	size_t nu = 0, siglen = 0, nm = 0, i;
	int add = op == SOTTO__GROUP_OP__GROUP_OP_ADD, r;

	gops_display_name(name, sizeof(name), *g);
	if (strcmp((*g)->owner, ctx->username) != 0)
		return ctx_fail(SOTTO_EXIT_USAGE,
		        "only %s, the owner of group %s, may add or remove members", (*g)->owner,
		        name);
	if ((r = users_norm(ctx, users, n, &u, &nu)) != 0)
		return r;
	if (nu == 0) {
		r = ctx_fail(SOTTO_EXIT_USAGE, "name someone other than yourself");
		goto out;
	}
	if ((r = gops_sync(ctx, g)) != 0)
		goto out;
	for (i = 0; i < nu; i++) {
		if (add && client_group_is_member(*g, u[i])) {
			r = ctx_fail(SOTTO_EXIT_USAGE, "%s is in group %s already", u[i], name);
			goto out;
		}
		if (!add && !client_group_is_member(*g, u[i])) {
			r = ctx_fail(SOTTO_EXIT_USAGE, "%s is not in group %s", u[i], name);
			goto out;
		}
	}
	if (add && (*g)->n + nu > CLIENT_GROUP_MEMBERS_MAX) {
		r = ctx_fail(SOTTO_EXIT_USAGE, "a group has at most %d members",
		        CLIENT_GROUP_MEMBERS_MAX);
		goto out;
	}
	if ((up = calloc(nu + 1, sizeof(*up))) == NULL ||
	        (m = calloc((*g)->n + nu + 1, sizeof(*m))) == NULL) {
		r = ctx_fail(SOTTO_EXIT_INTERNAL, "out of memory");
		goto out;
	}
	for (i = 0; i < nu; i++) {
		up[i] = u[i];
		m[nm++].to = u[i];
	}
	/* New members must be reachable before the change is made. */
	if (add && (r = msg_multi_open(ctx, m, nm, 1)) != 0)
		goto out;
	if ((r = client_group_sign(ctx->id, ctx->username, (*g)->id, (*g)->serial + 1, op, up, nu,
	             sig, sizeof(sig), &siglen)) != 0) {
		r = ctx_fail(SOTTO_EXIT_INTERNAL, "cannot sign the change: %s", sotto_strerror(r));
		goto out;
	}
	sotto__group_change__init(&gc);
	gc.group_id = proto_bytes((*g)->id, CLIENT_GROUP_ID_BYTES);
	gc.op = op;
	gc.users = (char **)(uintptr_t)up;
	gc.n_users = nu;
	gc.serial = (*g)->serial + 1;
	gc.signature = proto_bytes(sig, siglen);
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_GROUP_CHANGE;
	req.group_change = &gc;
	if ((r = request_ok(ctx, &req,
	             add ? "cannot add to the group" : "cannot remove from the group")) != 0)
		goto out;
	memset(&ch, 0, sizeof(ch));
	ch.serial = (*g)->serial + 1;
	ch.op = op;
	ch.signer = ctx->username;
	ch.users = up;
	ch.n_users = nu;
	ch.signature = sig;
	ch.signature_len = siglen;
	if ((r = apply_own(ctx, g, (*g)->id, &ch)) != 0)
		goto out;
	/* Everyone else in the group hears of it too (and those removed, of their removal). */
	for (i = 0; i < (*g)->n; i++)
		if (strcmp((*g)->members[i], ctx->username) != 0 &&
		        (!add || !client_group_is_member(*g, (*g)->members[i]) ||
		                bsearch((*g)->members[i], u, nu, sizeof(*u), name_cmp) == NULL))
			m[nm++].to = (*g)->members[i];
	r = owner_announce(ctx, *g, m, nm);
out:
	msg_multi_free(m, nm);
	free(m);
	free(up);
	free(u);
	return r;
}

int
gops_leave(struct sotto_ctx *ctx, struct client_group **g)
{
	char name[CLIENT_GROUP_NAME_MAX + 40];
	const char *self[1] = {ctx->username};
	struct client_group_change ch;
	Sotto__Frame req;
	Sotto__LeaveGroup lg;
	uint8_t sig[IDENTITY_SIG_MAX];
	size_t siglen = 0, i;
	int r;

	gops_display_name(name, sizeof(name), *g);
	if ((r = need_member(ctx, *g)) != 0 || (r = gops_sync(ctx, g)) != 0 ||
	        (r = need_member(ctx, *g)) != 0)
		return r;
	if (strcmp((*g)->owner, ctx->username) == 0 && (*g)->n > 1)
		return ctx_fail(SOTTO_EXIT_USAGE,
		        "you own group %s: remove its other members before you leave it", name);
	if ((r = client_group_sign(ctx->id, ctx->username, (*g)->id, (*g)->serial + 1,
	             SOTTO__GROUP_OP__GROUP_OP_LEAVE, self, 1, sig, sizeof(sig), &siglen)) != 0)
		return ctx_fail(
		        SOTTO_EXIT_INTERNAL, "cannot sign the change: %s", sotto_strerror(r));
	sotto__leave_group__init(&lg);
	lg.group_id = proto_bytes((*g)->id, CLIENT_GROUP_ID_BYTES);
	lg.serial = (*g)->serial + 1;
	lg.signature = proto_bytes(sig, siglen);
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_LEAVE_GROUP;
	req.leave_group = &lg;
	if ((r = request_ok(ctx, &req, "cannot leave the group")) != 0)
		return r;
	/* The owner alone: the server deleted the group, and so do we (history stays). */
	if (strcmp((*g)->owner, ctx->username) == 0) {
		if (client_store_group_delete(ctx->store, (*g)->id) != 0)
			return ctx_fail(
			        SOTTO_EXIT_INTERNAL, "%s", client_store_last_error(ctx->store));
		return 0;
	}
	memset(&ch, 0, sizeof(ch));
	ch.serial = (*g)->serial + 1;
	ch.op = SOTTO__GROUP_OP__GROUP_OP_LEAVE;
	ch.signer = ctx->username;
	ch.users = self;
	ch.n_users = 1;
	ch.signature = sig;
	ch.signature_len = siglen;
	if ((r = apply_own(ctx, g, (*g)->id, &ch)) != 0)
		return r;
	/* The chains are of no more use: keep the record (its name, for history) only. */
	if (client_store_senderkey_delete(ctx->store, (*g)->id, ctx->username) != 0)
		return ctx_fail(SOTTO_EXIT_INTERNAL, "%s", client_store_last_error(ctx->store));
	for (i = 0; i < (*g)->n; i++)
		if (client_store_senderkey_delete(ctx->store, (*g)->id, (*g)->members[i]) != 0)
			return ctx_fail(
			        SOTTO_EXIT_INTERNAL, "%s", client_store_last_error(ctx->store));
	return 0;
}

/* ---- what members send us ------------------------------------------------------------- */

/* "a, b and c" from g's members other than us, into out. */
static void
members_text(char *out, size_t outlen, const struct client_group *g, const char *self)
{
	size_t i, k = 0, n = 0, len;

	for (i = 0; i < g->n; i++)
		if (strcmp(g->members[i], self) != 0)
			n++;
	out[0] = '\0';
	for (i = 0; i < g->n; i++) {
		if (strcmp(g->members[i], self) == 0)
			continue;
		k++;
		len = strlen(out);
		snprintf(out + len, outlen - len, "%s%s", k == 1 ? "" : (k == n ? " and " : ", "),
		        g->members[i]);
	}
	if (n == 0)
		snprintf(out, outlen, "nobody else");
}

/* Describe what changed between old (may be NULL) and g, for the view. */
static void
describe(char *out, size_t outlen, const struct client_group *old, const struct client_group *g,
        const char *from, const char *self)
{
	char name[CLIENT_GROUP_NAME_MAX + 40], who[256], added[256], removed[256];
	size_t i, len;

	gops_display_name(name, sizeof(name), g);
	if (old == NULL) {
		members_text(who, sizeof(who), g, self);
		snprintf(out, outlen, "%s added you to group %s, with %s", from, name, who);
		return;
	}
	added[0] = removed[0] = '\0';
	for (i = 0; i < g->n; i++)
		if (!client_group_is_member(old, g->members[i])) {
			len = strlen(added);
			snprintf(added + len, sizeof(added) - len, " %s", g->members[i]);
		}
	for (i = 0; i < old->n; i++)
		if (!client_group_is_member(g, old->members[i])) {
			len = strlen(removed);
			snprintf(removed + len, sizeof(removed) - len, " %s", old->members[i]);
		}
	if (!client_group_is_member(g, self))
		snprintf(out, outlen, "%s removed you from group %s", from, name);
	else if (added[0] != '\0' && removed[0] != '\0')
		snprintf(out, outlen, "group %s: %s added%s and removed%s", name, from, added,
		        removed);
	else if (added[0] != '\0')
		snprintf(out, outlen, "group %s: %s added%s", name, from, added);
	else if (removed[0] != '\0')
		snprintf(out, outlen, "group %s: %s removed%s", name, from, removed);
	else if (strcmp(old->name, g->name) != 0)
		snprintf(out, outlen, "%s renamed group %s to %s", from, old->name, g->name);
	else
		out[0] = '\0';
}

/* A copy of g in *out, through its record. */
static int
group_copy(const struct client_group *g, struct client_group **out)
{
	struct buf b;
	int r;

	buf_init(&b, 0);
	if ((r = client_group_serialize(g, &b)) == 0)
		r = client_group_deserialize(out, buf_ptr(&b), buf_len(&b));
	buf_free(&b);
	return r;
}

static int
take_update(
        struct sotto_ctx *ctx, const char *from, const Sottoc__GroupUpdate *u, struct gops_after *a)
{
	struct client_group *g = NULL, *old = NULL;
	struct senderkey_recv *rc = NULL;
	char err[CLIENT_GROUP_ERR_MAX];
	int r;

	if (u->group_id.len != CLIENT_GROUP_ID_BYTES) {
		fprintf(stderr, "sotto: a group update from %s is malformed; ignored\n", from);
		return 0;
	}
	r = client_group_load(ctx->store, u->group_id.data, &g);
	if (r != 0 && r != SOTTO_ERR_NOTFOUND)
		return ctx_fail(SOTTO_EXIT_INTERNAL, "a group record does not open: %s",
		        client_store_last_error(ctx->store));
	if (g != NULL && (r = group_copy(g, &old)) != 0) {
		client_group_free(g);
		return ctx_fail(
		        SOTTO_EXIT_INTERNAL, "cannot copy the group: %s", sotto_strerror(r));
	}
	err[0] = '\0';
	if ((r = client_group_accept_update(&g, from, u, gops_keyfn, ctx, err, sizeof(err))) != 0) {
		fprintf(stderr, "sotto: %s\n", err[0] != '\0' ? err : sotto_strerror(r));
		r = 0;
		goto out;
	}
	if (u->sender_key != NULL) {
		if (u->sender_key->group_id.len != CLIENT_GROUP_ID_BYTES ||
		        memcmp(u->sender_key->group_id.data, g->id, CLIENT_GROUP_ID_BYTES) != 0 ||
		        client_group_dist_accept(u->sender_key, &rc) != 0)
			fprintf(stderr, "sotto: the sender key in %s's group update is malformed\n",
			        from);
		else if (client_group_recv_save(ctx->store, g->id, from, rc, (int64_t)time(NULL)) !=
		         0) {
			r = ctx_fail(SOTTO_EXIT_INTERNAL, "cannot save a sender key: %s",
			        client_store_last_error(ctx->store));
			goto out;
		}
	}
	if ((r = client_group_save(ctx->store, g, (int64_t)time(NULL))) != 0) {
		r = ctx_fail(SOTTO_EXIT_INTERNAL, "cannot save the group: %s",
		        client_store_last_error(ctx->store));
		goto out;
	}
	a->set = 1;
	memcpy(a->id, g->id, CLIENT_GROUP_ID_BYTES);
	describe(a->event, sizeof(a->event), old, g, from, ctx->username);
	a->distribute = client_group_is_member(g, ctx->username);
out:
	senderkey_recv_free(rc);
	client_group_free(old);
	client_group_free(g);
	return r;
}

static int
take_dist(struct sotto_ctx *ctx, const char *from, const Sottoc__SenderKeyDistribution *d)
{
	struct client_group *g = NULL;
	struct senderkey_recv *rc = NULL;
	char name[CLIENT_GROUP_NAME_MAX + 40];
	int r;

	if (d->group_id.len != CLIENT_GROUP_ID_BYTES) {
		fprintf(stderr, "sotto: a sender key from %s is malformed; ignored\n", from);
		return 0;
	}
	r = client_group_load(ctx->store, d->group_id.data, &g);
	if (r == SOTTO_ERR_NOTFOUND) {
		/* The owner's update may still be held (an untrusted key): keep this for later. */
		fprintf(stderr,
		        "sotto: %s sent a sender key for a group you do not know yet; it stays on "
		        "the server until you do\n",
		        from);
		return GOPS_HOLD;
	}
	if (r != 0)
		return ctx_fail(SOTTO_EXIT_INTERNAL, "a group record does not open: %s",
		        client_store_last_error(ctx->store));
	gops_display_name(name, sizeof(name), g);
	if (!client_group_is_member(g, from)) {
		fprintf(stderr,
		        "sotto: %s sent a sender key for group %s, but the owner never added them; "
		        "ignoring\n",
		        from, name);
		r = 0;
	} else if (client_group_dist_accept(d, &rc) != 0) {
		fprintf(stderr, "sotto: a sender key from %s for group %s is malformed; ignored\n",
		        from, name);
		r = 0;
	} else if (client_group_recv_save(ctx->store, g->id, from, rc, (int64_t)time(NULL)) != 0)
		r = ctx_fail(SOTTO_EXIT_INTERNAL, "cannot save a sender key: %s",
		        client_store_last_error(ctx->store));
	senderkey_recv_free(rc);
	client_group_free(g);
	return r;
}

int
gops_take_content(
        struct sotto_ctx *ctx, const char *from, const Sottoc__Content *c, struct gops_after *a)
{
	memset(a, 0, sizeof(*a));
	if (c->body_case == SOTTOC__CONTENT__BODY_GROUP_UPDATE && c->group_update != NULL)
		return take_update(ctx, from, c->group_update, a);
	if (c->body_case == SOTTOC__CONTENT__BODY_SENDER_KEY && c->sender_key != NULL)
		return take_dist(ctx, from, c->sender_key);
	if (c->body_case == SOTTOC__CONTENT__BODY_GROUP_RENAME)
		fprintf(stderr, "sotto: %s sent a group rename outside the group; ignored\n", from);
	return 0;
}

int
gops_after_run(struct sotto_ctx *ctx, const struct gops_after *a, const struct msg_view *v)
{
	struct client_group *g = NULL;
	struct senderkey_send *s = NULL;
	char name[CLIENT_GROUP_NAME_MAX + 40];
	int r;

	if (!a->set)
		return 0;
	if ((r = client_group_load(ctx->store, a->id, &g)) != 0)
		return ctx_fail(SOTTO_EXIT_INTERNAL, "a group record does not open: %s",
		        client_store_last_error(ctx->store));
	gops_display_name(name, sizeof(name), g);
	if (a->event[0] != '\0' && v != NULL && v->group_event != NULL)
		v->group_event(v->arg, g->id, name, a->event);
	r = 0;
	if (!a->distribute || !client_group_is_member(g, ctx->username))
		goto out;
	/* Check the server's list against what we now know, and catch up on leaves. */
	(void)gops_sync(ctx, &g);
	if (!client_group_is_member(g, ctx->username))
		goto out;
	/* A new member gets our chain now; after a removal, everyone left gets a new one. */
	r = client_group_send_load(ctx->store, g->id, ctx->username, &s);
	if (r == SOTTO_ERR_NOTFOUND && !g->rekey) {
		r = 0;
		goto out;
	}
	senderkey_send_free(s);
	s = NULL;
	if ((r = chain_get(ctx, g, &s)) == 0)
		r = chain_distribute(ctx, g, s);
out:
	senderkey_send_free(s);
	client_group_free(g);
	return r;
}

/* ---- group messages ------------------------------------------------------------------------ */

int
gops_deliver(struct sotto_ctx *ctx, const Sotto__Deliver *d, const struct msg_view *v, int *waiting)
{
	char from[PROTO_USERNAME_MAX + 1], name[CLIENT_GROUP_NAME_MAX + 40],
	        err[CLIENT_GROUP_ERR_MAX], event[CLIENT_GROUP_NAME_MAX * 2 + 128];
	struct client_group *g = NULL;
	struct senderkey_recv *rc = NULL;
	Sottoc__Content *c = NULL;
	struct client_msg msg;
	int seen = 0, shown = 0, renamed = 0, r;

	if (d->msg_id.len != PROTO_MSG_ID_BYTES || d->group_id.len != CLIENT_GROUP_ID_BYTES ||
	        proto_username_normalize(from, d->from) != 0)
		return 0;
	if ((r = client_store_begin(ctx->store)) != 0)
		return ctx_fail(SOTTO_EXIT_INTERNAL, "%s", client_store_last_error(ctx->store));
	if ((r = client_store_seen_add(
	             ctx->store, from, d->msg_id.data, (int64_t)time(NULL), &seen)) != 0)
		goto fail_store;
	if (seen) {
		client_store_rollback(ctx->store);
		return msg_deliver_ack(ctx, d->msg_id.data);
	}
	r = client_group_load(ctx->store, d->group_id.data, &g);
	if (r == SOTTO_ERR_NOTFOUND) {
		fprintf(stderr, "sotto: %s sent a message in a group you do not know; ignored\n",
		        from);
		goto commit;
	}
	if (r != 0)
		goto fail_store;
	gops_display_name(name, sizeof(name), g);
	if (!client_group_is_member(g, from) || strcmp(from, ctx->username) == 0) {
		fprintf(stderr,
		        "sotto: the server delivered a message in group %s from %s, whom the "
		        "owner never added; ignoring\n",
		        name, from);
		goto commit;
	}
	r = client_group_recv_load(ctx->store, g->id, from, &rc);
	if (r == SOTTO_ERR_NOTFOUND) {
		/* Its sender key is still on its way: leave it on the server for the next time. */
		client_store_rollback(ctx->store);
		fprintf(stderr,
		        "sotto: a message from %s in group %s waits for %s's sender key; it "
		        "stays on the server until the key has come\n",
		        from, name, from);
		(*waiting)++;
		r = 0;
		goto out;
	}
	if (r != 0)
		goto fail_store;
	r = client_group_open(rc, g->id, from, d->sealed.data, d->sealed.len, &c);
	if (r != 0) {
		fprintf(stderr,
		        "sotto: a message from %s in group %s could not be decrypted (%s); "
		        "ignored\n",
		        from, name,
		        r == SOTTO_ERR_NOTFOUND ? "sent with a sender key we do not hold"
		                                : "tampered, replayed or too far ahead");
		goto commit;
	}
	if ((r = client_group_recv_save(ctx->store, g->id, from, rc, (int64_t)time(NULL))) != 0)
		goto fail_store;
	if (c->body_case == SOTTOC__CONTENT__BODY_TEXT && c->text != NULL) {
		memset(&msg, 0, sizeof(msg));
		msg.peer = from;
		msg.group = g->id;
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
	} else if (c->body_case == SOTTOC__CONTENT__BODY_GROUP_RENAME && c->group_rename != NULL) {
		err[0] = '\0';
		if (client_group_rename(g, from, c->group_rename->name, err, sizeof(err)) != 0)
			fprintf(stderr, "sotto: group %s: %s\n", name, err);
		else if ((r = client_group_save(ctx->store, g, (int64_t)time(NULL))) != 0)
			goto fail_store;
		else {
			renamed = 1;
			snprintf(event, sizeof(event), "%s renamed group %s to %s", from, name,
			        g->name);
		}
	}
commit:
	if ((r = client_store_commit(ctx->store)) != 0)
		goto fail_store;
	if (shown && v->group_message != NULL)
		v->group_message(v->arg, g->id, name, from, d->msg_id.data, d->timestamp_ms,
		        c->text->body, strlen(c->text->body));
	if (renamed && v->group_event != NULL) {
		gops_display_name(name, sizeof(name), g);
		v->group_event(v->arg, g->id, name, event);
	}
	r = msg_deliver_ack(ctx, d->msg_id.data);
	goto out;
fail_store:
	client_store_rollback(ctx->store);
	r = ctx_fail(SOTTO_EXIT_INTERNAL, "cannot store a group message from %s: %s", from,
	        client_store_last_error(ctx->store));
out:
	if (c != NULL)
		sottoc__content__free_unpacked(c, NULL);
	senderkey_recv_free(rc);
	client_group_free(g);
	return r;
}
