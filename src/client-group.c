/* Groups for the sotto client, without I/O; see client-group.h. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/util.h"
#include "src/client-group.h"
#include "src/sigmsg.h"

#define CG_NAME PROTO_USERNAME_MAX

static void cg_err(char *err, size_t errlen, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void
cg_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

void
client_group_free(struct client_group *g)
{
	if (g == NULL)
		return;
	free(g->members);
	sotto_wipe(g, sizeof(*g));
	free(g);
}

static int
cg_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

int
client_group_is_member(const struct client_group *g, const char *name)
{
	return g != NULL && name != NULL && g->n > 0 &&
	       bsearch(name, g->members, g->n, sizeof(*g->members), cg_cmp) != NULL;
}

/* 1 if s is well-formed UTF-8 (no overlongs, surrogates or values past U+10FFFF). */
static int
cg_utf8_ok(const unsigned char *s)
{
	unsigned int cp;
	size_t i, n;

	while (*s != '\0') {
		if (*s < 0x80) {
			s++;
			continue;
		}
		if (*s >= 0xc2 && *s <= 0xdf) {
			n = 1;
			cp = *s & 0x1f;
		} else if (*s >= 0xe0 && *s <= 0xef) {
			n = 2;
			cp = *s & 0x0f;
		} else if (*s >= 0xf0 && *s <= 0xf4) {
			n = 3;
			cp = *s & 0x07;
		} else {
			return 0;
		}
		for (i = 1; i <= n; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		        (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp <= 0x9f))
			return 0;
		s += n + 1;
	}
	return 1;
}

int
client_group_name_ok(const char *name)
{
	size_t i, len;

	if (name == NULL || (len = strlen(name)) == 0 || len > CLIENT_GROUP_NAME_MAX)
		return 0;
	/* No terminal controls: a name is shown to every member. */
	for (i = 0; i < len; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return 0;
	return cg_utf8_ok((const unsigned char *)name);
}

/* A new, empty group record with room for cap members. */
static struct client_group *
cg_new(const uint8_t id[CLIENT_GROUP_ID_BYTES], const char *owner, size_t cap)
{
	struct client_group *g;

	if ((g = calloc(1, sizeof(*g))) == NULL ||
	        (g->members = calloc(cap > 0 ? cap : 1, sizeof(*g->members))) == NULL) {
		free(g);
		return NULL;
	}
	memcpy(g->id, id, CLIENT_GROUP_ID_BYTES);
	snprintf(g->owner, sizeof(g->owner), "%s", owner);
	return g;
}

/* A deep copy, with room for extra more members. */
static struct client_group *
cg_dup(const struct client_group *g, size_t extra)
{
	struct client_group *c;

	if ((c = cg_new(g->id, g->owner, g->n + extra)) == NULL)
		return NULL;
	memcpy(c->name, g->name, sizeof(c->name));
	c->serial = g->serial;
	c->rekey = g->rekey;
	c->n = g->n;
	if (g->n > 0)
		memcpy(c->members, g->members, g->n * sizeof(*g->members));
	return c;
}

/* Insert name (room is there) keeping the order. */
static void
cg_insert(struct client_group *g, const char *name)
{
	size_t i = g->n;

	while (i > 0 && strcmp(g->members[i - 1], name) > 0) {
		memcpy(g->members[i], g->members[i - 1], sizeof(g->members[i]));
		i--;
	}
	snprintf(g->members[i], sizeof(g->members[i]), "%s", name);
	g->n++;
}

static void
cg_remove(struct client_group *g, const char *name)
{
	char(*p)[CG_NAME + 1] = bsearch(name, g->members, g->n, sizeof(*g->members), cg_cmp);
	size_t i;

	if (p == NULL)
		return;
	i = (size_t)(p - g->members);
	memmove(&g->members[i], &g->members[i + 1], (g->n - i - 1) * sizeof(*g->members));
	g->n--;
}

int
client_group_serialize(const struct client_group *g, struct buf *out)
{
	size_t i;
	int r;

	if (g == NULL || out == NULL)
		return SOTTO_ERR_INVALID;
	if ((r = buf_put_u8(out, CLIENT_GROUP_RECORD_VERSION)) != 0 ||
	        (r = buf_put(out, g->id, CLIENT_GROUP_ID_BYTES)) != 0 ||
	        (r = buf_put_string(out, g->name, strlen(g->name))) != 0 ||
	        (r = buf_put_string(out, g->owner, strlen(g->owner))) != 0 ||
	        (r = buf_put_u64(out, g->serial)) != 0 ||
	        (r = buf_put_u8(out, g->rekey ? 1 : 0)) != 0 ||
	        (r = buf_put_u32(out, (uint32_t)g->n)) != 0)
		return r;
	for (i = 0; i < g->n; i++)
		if ((r = buf_put_string(out, g->members[i], strlen(g->members[i]))) != 0)
			return r;
	return 0;
}

/* A username field of the record: canonical, NUL-terminated into out. */
static int
cg_get_name(struct buf *rd, char out[CG_NAME + 1])
{
	char norm[CG_NAME + 1];
	size_t len;

	if (buf_get_string_fixed(rd, out, CG_NAME, &len) != 0)
		return SOTTO_ERR_FORMAT;
	out[len] = '\0';
	if (strlen(out) != len || proto_username_normalize(norm, out) != 0 ||
	        strcmp(norm, out) != 0)
		return SOTTO_ERR_FORMAT;
	return 0;
}

int
client_group_deserialize(struct client_group **out, const uint8_t *data, size_t len)
{
	struct client_group *g = NULL;
	uint8_t version, rekey, id[CLIENT_GROUP_ID_BYTES];
	char name[CLIENT_GROUP_NAME_MAX + 1], owner[CG_NAME + 1];
	uint32_t n, i;
	size_t nlen;
	struct buf rd;
	int r = SOTTO_ERR_FORMAT;

	if (out == NULL)
		return SOTTO_ERR_INVALID;
	*out = NULL;
	if (data == NULL)
		return SOTTO_ERR_FORMAT;
	buf_init_reader(&rd, data, len);
	if (buf_get_u8(&rd, &version) != 0 || version != CLIENT_GROUP_RECORD_VERSION ||
	        buf_get(&rd, id, sizeof(id)) != 0 ||
	        buf_get_string_fixed(&rd, name, CLIENT_GROUP_NAME_MAX, &nlen) != 0)
		return SOTTO_ERR_FORMAT;
	name[nlen] = '\0';
	if (strlen(name) != nlen || (nlen > 0 && !client_group_name_ok(name)))
		return SOTTO_ERR_FORMAT;
	if (cg_get_name(&rd, owner) != 0)
		return SOTTO_ERR_FORMAT;
	if ((g = cg_new(id, owner, 0)) == NULL)
		return SOTTO_ERR_NOMEM;
	memcpy(g->name, name, sizeof(g->name));
	if (buf_get_u64(&rd, &g->serial) != 0 || buf_get_u8(&rd, &rekey) != 0 || rekey > 1 ||
	        buf_get_u32(&rd, &n) != 0 || n == 0 || n > CLIENT_GROUP_MEMBERS_MAX ||
	        g->serial == 0)
		goto out;
	g->rekey = rekey;
	free(g->members);
	if ((g->members = calloc(n, sizeof(*g->members))) == NULL) {
		r = SOTTO_ERR_NOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (cg_get_name(&rd, g->members[i]) != 0 ||
		        (i > 0 && strcmp(g->members[i - 1], g->members[i]) >= 0))
			goto out;
		g->n++;
	}
	if (buf_len(&rd) != 0 || !client_group_is_member(g, g->owner))
		goto out;
	*out = g;
	g = NULL;
	r = 0;
out:
	client_group_free(g);
	return r;
}

int
client_group_load(
        struct client_store *cs, const uint8_t id[CLIENT_GROUP_ID_BYTES], struct client_group **out)
{
	uint8_t *rec = NULL;
	size_t len = 0;
	int r;

	*out = NULL;
	if ((r = client_store_group_get(cs, id, &rec, &len)) != 0)
		return r;
	r = client_group_deserialize(out, rec, len);
	if (r == 0 && memcmp((*out)->id, id, CLIENT_GROUP_ID_BYTES) != 0) {
		client_group_free(*out);
		*out = NULL;
		r = SOTTO_ERR_FORMAT;
	}
	client_store_free_secret(rec, len);
	return r;
}

int
client_group_save(struct client_store *cs, const struct client_group *g, int64_t now)
{
	struct buf b;
	int r;

	buf_init(&b, CLIENT_STORE_STATE_MAX);
	if ((r = client_group_serialize(g, &b)) == 0)
		r = client_store_group_put(cs, g->id, buf_ptr(&b), buf_len(&b), now);
	buf_free(&b);
	return r;
}

int
client_group_sign(const struct identity *self, const char *self_name,
        const uint8_t id[CLIENT_GROUP_ID_BYTES], uint64_t serial, uint32_t op,
        const char *const *users, size_t n, uint8_t *sig, size_t sigcap, size_t *siglen)
{
	struct buf m;
	int r;

	*siglen = 0;
	if (self == NULL || self_name == NULL || id == NULL)
		return SOTTO_ERR_INVALID;
	buf_init(&m, 0);
	if ((r = sigmsg_group_change(&m, id, serial, op, self_name, users, n)) == 0)
		r = identity_sign(sig, sigcap, siglen, self, buf_ptr(&m), buf_len(&m));
	buf_free(&m);
	return r;
}

static const char *
cg_op_name(uint32_t op)
{
	switch (op) {
	case SOTTO__GROUP_OP__GROUP_OP_CREATE:
		return "creation";
	case SOTTO__GROUP_OP__GROUP_OP_ADD:
		return "addition";
	case SOTTO__GROUP_OP__GROUP_OP_REMOVE:
		return "removal";
	case SOTTO__GROUP_OP__GROUP_OP_LEAVE:
		return "leave";
	}
	return "change";
}

/* The rules a change must follow besides its signature; 0 or the error, with err set. */
static int
cg_check_rules(const struct client_group *g, const struct client_group_change *ch, char *err,
        size_t errlen)
{
	const char *what = cg_op_name(ch->op);
	size_t i;

	if (ch->signer == NULL || !sigmsg_users_canonical(ch->users, ch->n_users)) {
		cg_err(err, errlen, "a group %s is malformed (its users are not sorted usernames)",
		        what);
		return SOTTO_ERR_FORMAT;
	}
	if (g == NULL) {
		if (ch->op != SOTTO__GROUP_OP__GROUP_OP_CREATE || ch->serial != 1) {
			cg_err(err, errlen, "the group's history does not start with its creation");
			return ch->serial > 1 ? SOTTO_ERR_AGAIN : SOTTO_ERR_FORMAT;
		}
		for (i = 0; i < ch->n_users; i++)
			if (strcmp(ch->users[i], ch->signer) == 0) {
				cg_err(err, errlen, "the group's creation lists its owner twice");
				return SOTTO_ERR_FORMAT;
			}
		if (ch->n_users + 1 > CLIENT_GROUP_MEMBERS_MAX) {
			cg_err(err, errlen, "the group's creation lists too many members");
			return SOTTO_ERR_FORMAT;
		}
		return 0;
	}
	if (ch->serial <= g->serial) {
		cg_err(err, errlen, "group change %llu is already applied",
		        (unsigned long long)ch->serial);
		return SOTTO_ERR_EXISTS;
	}
	if (ch->serial != g->serial + 1) {
		cg_err(err, errlen, "group changes %llu to %llu are missing",
		        (unsigned long long)g->serial + 1, (unsigned long long)ch->serial - 1);
		return SOTTO_ERR_AGAIN;
	}
	switch (ch->op) {
	case SOTTO__GROUP_OP__GROUP_OP_ADD:
	case SOTTO__GROUP_OP__GROUP_OP_REMOVE:
		if (strcmp(ch->signer, g->owner) != 0) {
			cg_err(err, errlen,
			        "%s tried to change the members of a group that %s owns; refused",
			        ch->signer, g->owner);
			return SOTTO_ERR_PERM;
		}
		if (ch->n_users == 0) {
			cg_err(err, errlen, "a group %s names nobody", what);
			return SOTTO_ERR_FORMAT;
		}
		for (i = 0; i < ch->n_users; i++) {
			int member = client_group_is_member(g, ch->users[i]);

			if (ch->op == SOTTO__GROUP_OP__GROUP_OP_ADD ? member : !member) {
				cg_err(err, errlen, "a group %s of %s, who %s a member", what,
				        ch->users[i], member ? "is already" : "is not");
				return SOTTO_ERR_FORMAT;
			}
			if (ch->op == SOTTO__GROUP_OP__GROUP_OP_REMOVE &&
			        strcmp(ch->users[i], g->owner) == 0) {
				cg_err(err, errlen, "a group removal of its owner");
				return SOTTO_ERR_FORMAT;
			}
		}
		if (ch->op == SOTTO__GROUP_OP__GROUP_OP_ADD &&
		        g->n + ch->n_users > CLIENT_GROUP_MEMBERS_MAX) {
			cg_err(err, errlen, "a group addition past %d members",
			        CLIENT_GROUP_MEMBERS_MAX);
			return SOTTO_ERR_FORMAT;
		}
		return 0;
	case SOTTO__GROUP_OP__GROUP_OP_LEAVE:
		if (ch->n_users != 1 || strcmp(ch->users[0], ch->signer) != 0) {
			cg_err(err, errlen, "%s signed a leave for someone else; refused",
			        ch->signer);
			return SOTTO_ERR_PERM;
		}
		if (!client_group_is_member(g, ch->signer) || strcmp(ch->signer, g->owner) == 0) {
			cg_err(err, errlen, "a group leave by %s, who cannot leave it", ch->signer);
			return SOTTO_ERR_FORMAT;
		}
		return 0;
	}
	cg_err(err, errlen, "a group change of an unknown kind (%u)", ch->op);
	return SOTTO_ERR_FORMAT;
}

int
client_group_apply(struct client_group **g, const uint8_t id[CLIENT_GROUP_ID_BYTES],
        const struct client_group_change *ch, const struct identity_pub *signer_key, char *err,
        size_t errlen)
{
	struct client_group *n = NULL;
	struct buf m;
	size_t i;
	int r;

	if (g == NULL || id == NULL || ch == NULL || signer_key == NULL)
		return SOTTO_ERR_INVALID;
	if (*g != NULL && memcmp((*g)->id, id, CLIENT_GROUP_ID_BYTES) != 0)
		return SOTTO_ERR_INVALID;
	if ((r = cg_check_rules(*g, ch, err, errlen)) != 0)
		return r;
	buf_init(&m, 0);
	r = sigmsg_group_change(&m, id, ch->serial, ch->op, ch->signer, ch->users, ch->n_users);
	if (r == 0 && (ch->signature == NULL ||
	                      identity_pub_verify(signer_key, ch->signature, ch->signature_len,
	                              buf_ptr(&m), buf_len(&m)) != 0)) {
		if (ch->signature_len == 0)
			cg_err(err, errlen, "a group %s is not signed by %s; refused",
			        cg_op_name(ch->op), ch->signer);
		else
			cg_err(err, errlen,
			        "a group %s claims to be signed by %s, but the signature does "
			        "not verify; refused",
			        cg_op_name(ch->op), ch->signer);
		r = SOTTO_ERR_VERIFY;
	}
	buf_free(&m);
	if (r != 0)
		return r;
	/* Verified: apply to a copy, then swap, so that nothing is half-applied. */
	if (*g == NULL)
		n = cg_new(id, ch->signer, ch->n_users + 1);
	else
		n = cg_dup(*g, ch->op == SOTTO__GROUP_OP__GROUP_OP_ADD ? ch->n_users : 0);
	if (n == NULL)
		return SOTTO_ERR_NOMEM;
	if (*g == NULL)
		cg_insert(n, ch->signer);
	for (i = 0; i < ch->n_users; i++) {
		if (ch->op == SOTTO__GROUP_OP__GROUP_OP_CREATE ||
		        ch->op == SOTTO__GROUP_OP__GROUP_OP_ADD)
			cg_insert(n, ch->users[i]);
		else
			cg_remove(n, ch->users[i]);
	}
	if (ch->op == SOTTO__GROUP_OP__GROUP_OP_REMOVE || ch->op == SOTTO__GROUP_OP__GROUP_OP_LEAVE)
		n->rekey = 1;
	n->serial = ch->serial;
	client_group_free(*g);
	*g = n;
	return 0;
}

int
client_group_apply_all(struct client_group **g, const uint8_t id[CLIENT_GROUP_ID_BYTES],
        const struct client_group_change *chs, size_t n, client_group_key_fn keyfn, void *arg,
        char *err, size_t errlen)
{
	struct identity_pub *key = NULL;
	char why[CLIENT_GROUP_ERR_MAX];
	size_t i;
	int r;

	if (g == NULL || (chs == NULL && n > 0) || keyfn == NULL)
		return SOTTO_ERR_INVALID;
	for (i = 0; i < n; i++) {
		if (*g != NULL && chs[i].serial <= (*g)->serial)
			continue;
		if (chs[i].signer == NULL) {
			cg_err(err, errlen, "group change %llu names no signer",
			        (unsigned long long)chs[i].serial);
			return SOTTO_ERR_FORMAT;
		}
		if ((r = keyfn(arg, chs[i].signer, &key)) != 0) {
			cg_err(err, errlen,
			        "group change %llu is signed by %s, whose identity key is not "
			        "known",
			        (unsigned long long)chs[i].serial, chs[i].signer);
			return r;
		}
		why[0] = '\0';
		r = client_group_apply(g, id, &chs[i], key, why, sizeof(why));
		identity_pub_free(key);
		key = NULL;
		if (r != 0) {
			cg_err(err, errlen, "group change %llu: %s",
			        (unsigned long long)chs[i].serial, why);
			return r;
		}
	}
	return 0;
}

static int
cg_cmp_ptr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int
client_group_check_members(const struct client_group *g, const char *const *members, size_t n,
        char *err, size_t errlen)
{
	const char **sorted = NULL;
	const char *key;
	size_t i;
	int r = SOTTO_ERR_VERIFY;

	if (g == NULL || (members == NULL && n > 0))
		return SOTTO_ERR_INVALID;
	for (i = 0; i < n; i++) {
		if (members[i] == NULL || !client_group_is_member(g, members[i])) {
			cg_err(err, errlen,
			        "the server lists %s as a member, but no change signed by the "
			        "owner "
			        "added them: not trusted",
			        members[i] != NULL ? members[i] : "(nobody)");
			return SOTTO_ERR_VERIFY;
		}
	}
	if ((sorted = calloc(n + 1, sizeof(*sorted))) == NULL)
		return SOTTO_ERR_NOMEM;
	if (n > 0)
		memcpy(sorted, members, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), cg_cmp_ptr);
	for (i = 1; i < n; i++) {
		if (strcmp(sorted[i - 1], sorted[i]) == 0) {
			cg_err(err, errlen, "the server's member list repeats %s", sorted[i]);
			goto out;
		}
	}
	/* Every listed name is a member and none twice: any difference is one left out. */
	for (i = 0; i < g->n; i++) {
		key = g->members[i];
		if (n == 0 || bsearch(&key, sorted, n, sizeof(*sorted), cg_cmp_ptr) == NULL) {
			cg_err(err, errlen,
			        "the server leaves out %s, whom the signed changes keep in the "
			        "group",
			        g->members[i]);
			goto out;
		}
	}
	r = 0;
out:
	free(sorted);
	return r;
}

/* The changes of a GroupUpdate as borrowed structs (array malloc'd). */
static int
cg_update_changes(const Sottoc__GroupUpdate *u, struct client_group_change **out)
{
	struct client_group_change *v;
	size_t i;

	*out = NULL;
	if ((v = calloc(u->n_changes + 1, sizeof(*v))) == NULL)
		return SOTTO_ERR_NOMEM;
	for (i = 0; i < u->n_changes; i++) {
		const Sottoc__SignedGroupChange *c = u->changes[i];

		v[i].serial = c->serial;
		v[i].op = c->op;
		v[i].signer = c->signer;
		v[i].users = (const char *const *)c->users;
		v[i].n_users = c->n_users;
		v[i].signature = c->signature.data;
		v[i].signature_len = c->signature.len;
	}
	*out = v;
	return 0;
}

int
client_group_accept_update(struct client_group **g, const char *from, const Sottoc__GroupUpdate *u,
        client_group_key_fn keyfn, void *arg, char *err, size_t errlen)
{
	struct client_group_change *chs = NULL;
	struct client_group *n = NULL;
	char why[CLIENT_GROUP_ERR_MAX];
	int r;

	if (g == NULL || from == NULL || u == NULL)
		return SOTTO_ERR_INVALID;
	if (u->group_id.len != CLIENT_GROUP_ID_BYTES ||
	        (*g != NULL && memcmp(u->group_id.data, (*g)->id, CLIENT_GROUP_ID_BYTES) != 0)) {
		cg_err(err, errlen, "a group update from %s is malformed", from);
		return SOTTO_ERR_FORMAT;
	}
	if (strcmp(from, *g != NULL ? (*g)->owner : (u->owner != NULL ? u->owner : "")) != 0) {
		cg_err(err, errlen,
		        "%s sent an update of a group that %s owns; only the owner may: ignored",
		        from, *g != NULL ? (*g)->owner : (u->owner != NULL ? u->owner : "nobody"));
		return SOTTO_ERR_PERM;
	}
	if (u->name != NULL && u->name[0] != '\0' && !client_group_name_ok(u->name)) {
		cg_err(err, errlen, "the group name %s sent is not usable", from);
		return SOTTO_ERR_FORMAT;
	}
	if ((r = cg_update_changes(u, &chs)) != 0)
		return r;
	if (*g != NULL && (n = cg_dup(*g, 0)) == NULL) {
		r = SOTTO_ERR_NOMEM;
		goto out;
	}
	if ((r = client_group_apply_all(
	             &n, u->group_id.data, chs, u->n_changes, keyfn, arg, err, errlen)) != 0)
		goto out;
	if (n == NULL || strcmp(n->owner, from) != 0) {
		cg_err(err, errlen, "a group update from %s holds no signed history of the group",
		        from);
		r = SOTTO_ERR_FORMAT;
		goto out;
	}
	why[0] = '\0';
	if ((r = client_group_check_members(
	             n, (const char *const *)u->members, u->n_members, why, sizeof(why))) != 0) {
		cg_err(err, errlen,
		        "%s's update of the group does not match its signed changes: %s", from,
		        why);
		goto out;
	}
	if (u->name != NULL && u->name[0] != '\0')
		snprintf(n->name, sizeof(n->name), "%s", u->name);
	client_group_free(*g);
	*g = n;
	n = NULL;
out:
	client_group_free(n);
	free(chs);
	return r;
}

int
client_group_rename(
        struct client_group *g, const char *from, const char *name, char *err, size_t errlen)
{
	if (g == NULL || from == NULL)
		return SOTTO_ERR_INVALID;
	if (strcmp(from, g->owner) != 0) {
		cg_err(err, errlen, "%s tried to rename a group that %s owns: ignored", from,
		        g->owner);
		return SOTTO_ERR_PERM;
	}
	if (!client_group_name_ok(name)) {
		cg_err(err, errlen,
		        "a group name is 1 to %d bytes of UTF-8 without control characters",
		        CLIENT_GROUP_NAME_MAX);
		return SOTTO_ERR_INVALID;
	}
	snprintf(g->name, sizeof(g->name), "%s", name);
	return 0;
}

/* Pack c into a new buffer (wiped on free by the callers that need it). */
static int
cg_pack(const Sottoc__Content *c, uint8_t **out, size_t *outlen)
{
	size_t len = sottoc__content__get_packed_size(c);

	if ((*out = malloc(len > 0 ? len : 1)) == NULL)
		return SOTTO_ERR_NOMEM;
	*outlen = sottoc__content__pack(c, *out);
	return 0;
}

int
client_group_update_pack(const struct client_group *g, const struct client_group_change *chs,
        size_t n, uint64_t sent_ms, uint8_t **out, size_t *outlen)
{
	Sottoc__SignedGroupChange *recs = NULL, **ptrs = NULL;
	Sottoc__GroupUpdate u;
	Sottoc__Content c;
	char **members = NULL;
	size_t i;
	int r = SOTTO_ERR_NOMEM;

	*out = NULL;
	*outlen = 0;
	if (g == NULL || (chs == NULL && n > 0))
		return SOTTO_ERR_INVALID;
	if ((recs = calloc(n + 1, sizeof(*recs))) == NULL ||
	        (ptrs = calloc(n + 1, sizeof(*ptrs))) == NULL ||
	        (members = calloc(g->n + 1, sizeof(*members))) == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		sottoc__signed_group_change__init(&recs[i]);
		recs[i].serial = chs[i].serial;
		recs[i].op = chs[i].op;
		recs[i].signer = proto_str(chs[i].signer);
		recs[i].users = (char **)(uintptr_t)chs[i].users;
		recs[i].n_users = chs[i].n_users;
		recs[i].signature = proto_bytes(chs[i].signature, chs[i].signature_len);
		ptrs[i] = &recs[i];
	}
	for (i = 0; i < g->n; i++)
		members[i] = proto_str(g->members[i]);
	sottoc__group_update__init(&u);
	u.group_id = proto_bytes(g->id, CLIENT_GROUP_ID_BYTES);
	u.owner = proto_str(g->owner);
	u.name = proto_str(g->name);
	u.members = members;
	u.n_members = g->n;
	u.changes = ptrs;
	u.n_changes = n;
	sottoc__content__init(&c);
	c.sent_ms = sent_ms;
	c.body_case = SOTTOC__CONTENT__BODY_GROUP_UPDATE;
	c.group_update = &u;
	r = cg_pack(&c, out, outlen);
out:
	free(recs);
	free(ptrs);
	free(members);
	return r;
}

int
client_group_dist_pack(const struct senderkey_send *s, const uint8_t id[CLIENT_GROUP_ID_BYTES],
        uint64_t sent_ms, uint8_t **out, size_t *outlen)
{
	Sottoc__SenderKeyDistribution d;
	struct senderkey_dist sd;
	Sottoc__Content c;
	int r;

	*out = NULL;
	*outlen = 0;
	if (s == NULL || id == NULL)
		return SOTTO_ERR_INVALID;
	if ((r = senderkey_send_dist(s, &sd)) != 0)
		return r;
	sottoc__sender_key_distribution__init(&d);
	d.group_id = proto_bytes(id, CLIENT_GROUP_ID_BYTES);
	d.key_id = sd.key_id;
	d.iteration = sd.iteration;
	d.chain_key = proto_bytes(sd.chain_key, sizeof(sd.chain_key));
	d.signing_key = proto_bytes(sd.sign_pub, sizeof(sd.sign_pub));
	sottoc__content__init(&c);
	c.sent_ms = sent_ms;
	c.body_case = SOTTOC__CONTENT__BODY_SENDER_KEY;
	c.sender_key = &d;
	r = cg_pack(&c, out, outlen);
	sotto_wipe(&sd, sizeof(sd));
	return r;
}

int
client_group_dist_accept(const Sottoc__SenderKeyDistribution *d, struct senderkey_recv **out)
{
	struct senderkey_dist sd;
	int r;

	*out = NULL;
	if (d == NULL || d->group_id.len != CLIENT_GROUP_ID_BYTES ||
	        d->chain_key.len != SENDERKEY_CHAINKEYBYTES ||
	        d->signing_key.len != ED25519_PUBLICKEYBYTES)
		return SOTTO_ERR_FORMAT;
	sd.key_id = d->key_id;
	sd.iteration = d->iteration;
	memcpy(sd.chain_key, d->chain_key.data, SENDERKEY_CHAINKEYBYTES);
	memcpy(sd.sign_pub, d->signing_key.data, ED25519_PUBLICKEYBYTES);
	r = senderkey_recv_new(out, &sd);
	sotto_wipe(&sd, sizeof(sd));
	return r;
}

int
client_group_seal(struct senderkey_send *s, const uint8_t id[CLIENT_GROUP_ID_BYTES],
        const char *self, const Sottoc__Content *c, uint8_t **out, size_t *outlen)
{
	uint8_t *pt = NULL, *msg = NULL;
	size_t ptlen = 0, msglen = 0, len;
	Sottoc__GroupSealed gs;
	int r;

	*out = NULL;
	*outlen = 0;
	if (s == NULL || id == NULL || self == NULL || c == NULL)
		return SOTTO_ERR_INVALID;
	if ((r = cg_pack(c, &pt, &ptlen)) != 0 ||
	        (r = senderkey_seal(s, id, self, pt, ptlen, &msg, &msglen)) != 0)
		goto out;
	sottoc__group_sealed__init(&gs);
	gs.version = CLIENT_GROUP_SEALED_VERSION;
	gs.message = proto_bytes(msg, msglen);
	len = sottoc__group_sealed__get_packed_size(&gs);
	if ((*out = malloc(len)) == NULL) {
		r = SOTTO_ERR_NOMEM;
		goto out;
	}
	*outlen = sottoc__group_sealed__pack(&gs, *out);
out:
	if (pt != NULL) {
		sotto_wipe(pt, ptlen);
		free(pt);
	}
	free(msg);
	return r;
}

int
client_group_open(struct senderkey_recv *r, const uint8_t id[CLIENT_GROUP_ID_BYTES],
        const char *sender, const uint8_t *sealed, size_t len, Sottoc__Content **out)
{
	Sottoc__GroupSealed *gs = NULL;
	Sottoc__Content *c = NULL;
	uint8_t *pt = NULL;
	size_t ptlen = 0;
	int rc;

	*out = NULL;
	if (r == NULL || id == NULL || sender == NULL || (sealed == NULL && len > 0))
		return SOTTO_ERR_INVALID;
	if ((gs = sottoc__group_sealed__unpack(NULL, len, sealed)) == NULL ||
	        gs->version != CLIENT_GROUP_SEALED_VERSION) {
		rc = SOTTO_ERR_FORMAT;
		goto out;
	}
	if ((rc = senderkey_open(r, id, sender, gs->message.data, gs->message.len, &pt, &ptlen)) !=
	        0)
		goto out;
	/* Authentic from here: a malformed plaintext is the sender's bug, not tampering. */
	if ((c = sottoc__content__unpack(NULL, ptlen, pt)) == NULL ||
	        c->body_case == SOTTOC__CONTENT__BODY_GROUP_UPDATE ||
	        c->body_case == SOTTOC__CONTENT__BODY_SENDER_KEY) {
		rc = SOTTO_ERR_FORMAT;
		goto out;
	}
	*out = c;
	c = NULL;
	rc = 0;
out:
	if (c != NULL)
		sottoc__content__free_unpacked(c, NULL);
	if (gs != NULL)
		sottoc__group_sealed__free_unpacked(gs, NULL);
	if (pt != NULL) {
		sotto_wipe(pt, ptlen);
		free(pt);
	}
	return rc;
}

int
client_group_send_load(struct client_store *cs, const uint8_t id[CLIENT_GROUP_ID_BYTES],
        const char *self, struct senderkey_send **out)
{
	uint8_t *st = NULL;
	size_t len = 0;
	int r;

	*out = NULL;
	if ((r = client_store_senderkey_get(cs, id, self, &st, &len)) != 0)
		return r;
	r = senderkey_send_deserialize(out, st, len);
	client_store_free_secret(st, len);
	return r;
}

int
client_group_send_save(struct client_store *cs, const uint8_t id[CLIENT_GROUP_ID_BYTES],
        const char *self, const struct senderkey_send *s, int64_t now)
{
	struct buf b;
	int r;

	buf_init_secure(&b, CLIENT_STORE_STATE_MAX);
	if ((r = senderkey_send_serialize(s, &b)) == 0)
		r = client_store_senderkey_put(cs, id, self, buf_ptr(&b), buf_len(&b), now);
	buf_free(&b);
	return r;
}

int
client_group_recv_load(struct client_store *cs, const uint8_t id[CLIENT_GROUP_ID_BYTES],
        const char *sender, struct senderkey_recv **out)
{
	uint8_t *st = NULL;
	size_t len = 0;
	int r;

	*out = NULL;
	if ((r = client_store_senderkey_get(cs, id, sender, &st, &len)) != 0)
		return r;
	r = senderkey_recv_deserialize(out, st, len);
	client_store_free_secret(st, len);
	return r;
}

int
client_group_recv_save(struct client_store *cs, const uint8_t id[CLIENT_GROUP_ID_BYTES],
        const char *sender, const struct senderkey_recv *r, int64_t now)
{
	struct buf b;
	int rc;

	buf_init_secure(&b, CLIENT_STORE_STATE_MAX);
	if ((rc = senderkey_recv_serialize(r, &b)) == 0)
		rc = client_store_senderkey_put(cs, id, sender, buf_ptr(&b), buf_len(&b), now);
	buf_free(&b);
	return rc;
}
