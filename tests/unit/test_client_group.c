/*
 * Tests for src/client-group: replaying signed membership changes (and
 * refusing unsigned, forged, out-of-order and unauthorised ones), catching a
 * member list the server made up, owner updates and renames, the stored
 * record, and group messages with sender keys, including that a removed
 * member's old state cannot read what follows a rekey.
 */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "crypto/util.h"
#include "src/client-group.h"

#ifndef Test
/* cppcheck does not read criterion.h: let it analyse each test as a plain function. */
#define TestSuite(...)         struct test_suite_unused
#define Test(suite, name, ...) void test_##suite##_##name(void)
#endif

#define OP_CREATE SOTTO__GROUP_OP__GROUP_OP_CREATE
#define OP_ADD    SOTTO__GROUP_OP__GROUP_OP_ADD
#define OP_REMOVE SOTTO__GROUP_OP__GROUP_OP_REMOVE
#define OP_LEAVE  SOTTO__GROUP_OP__GROUP_OP_LEAVE
#define T0        1700000000

struct user {
	const char *name;
	struct identity *id;
};

static struct user users[] = {{"alice", NULL}, {"bob", NULL}, {"carol", NULL}, {"dave", NULL}};
#define ALICE (&users[0])
#define BOB   (&users[1])
#define CAROL (&users[2])
#define DAVE  (&users[3])

static const uint8_t gid[CLIENT_GROUP_ID_BYTES] = {
        0x67, 0x72, 0x70, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13};

static void
setup(void)
{
	size_t i;

	cr_assert_eq(sotto_crypto_init(), 0);
	for (i = 0; i < sizeof(users) / sizeof(users[0]); i++)
		cr_assert_eq(identity_generate(
		                     &users[i].id, i == 3 ? IDENTITY_RSA : IDENTITY_ED25519, 3072),
		        0);
}

static void
teardown(void)
{
	size_t i;

	for (i = 0; i < sizeof(users) / sizeof(users[0]); i++) {
		identity_free(users[i].id);
		users[i].id = NULL;
	}
}

TestSuite(client_group, .init = setup, .fini = teardown, .timeout = 60);

/* The key lookup the client would do in known_peers; "nobody" is not known. */
static int
keyfn(void *arg, const char *name, struct identity_pub **out)
{
	size_t i;

	(void)arg;
	for (i = 0; i < sizeof(users) / sizeof(users[0]); i++)
		if (strcmp(users[i].name, name) == 0)
			return identity_pub_dup(out, identity_public(users[i].id));
	return SOTTO_ERR_NOTFOUND;
}

/* A change with its own storage for the signature. */
struct signed_change {
	struct client_group_change ch;
	uint8_t sig[IDENTITY_SIG_MAX];
};

/* A change of gid by signer (as signed_as names itself in the change) signed with key's identity. */
static void
make_change(struct signed_change *sc, const struct user *signer, const struct user *key,
        uint64_t serial, uint32_t op, const char *const *list, size_t n)
{
	memset(sc, 0, sizeof(*sc));
	sc->ch.serial = serial;
	sc->ch.op = op;
	sc->ch.signer = signer->name;
	sc->ch.users = list;
	sc->ch.n_users = n;
	cr_assert_eq(client_group_sign(key->id, signer->name, gid, serial, op, list, n, sc->sig,
	                     sizeof(sc->sig), &sc->ch.signature_len),
	        0);
	sc->ch.signature = sc->sig;
}

static void
apply_ok(struct client_group **g, const struct signed_change *sc)
{
	struct identity_pub *key = NULL;
	char err[CLIENT_GROUP_ERR_MAX] = "";
	int r;

	cr_assert_eq(keyfn(NULL, sc->ch.signer, &key), 0);
	r = client_group_apply(g, gid, &sc->ch, key, err, sizeof(err));
	cr_assert_eq(r, 0, "change %llu: %s", (unsigned long long)sc->ch.serial, err);
	identity_pub_free(key);
}

/* Applying fails with want, err holds needle, and the group is byte for byte as it was. */
static void
apply_fails(struct client_group **g, const struct signed_change *sc, const struct user *keyof,
        int want, const char *needle)
{
	struct identity_pub *key = NULL;
	char err[CLIENT_GROUP_ERR_MAX] = "";
	struct buf before, after;
	struct client_group *was = *g;
	int r;

	buf_init(&before, 0);
	buf_init(&after, 0);
	if (*g != NULL)
		cr_assert_eq(client_group_serialize(*g, &before), 0);
	cr_assert_eq(keyfn(NULL, keyof->name, &key), 0);
	r = client_group_apply(g, gid, &sc->ch, key, err, sizeof(err));
	cr_assert_eq(r, want, "got %s (%s), want %s", sotto_strerror(r), err, sotto_strerror(want));
	cr_assert(strstr(err, needle) != NULL, "\"%s\" does not say \"%s\"", err, needle);
	cr_assert_eq(*g, was);
	if (*g != NULL) {
		cr_assert_eq(client_group_serialize(*g, &after), 0);
		cr_assert_eq(buf_len(&before), buf_len(&after));
		cr_assert(memcmp(buf_ptr(&before), buf_ptr(&after), buf_len(&after)) == 0);
	}
	identity_pub_free(key);
	buf_free(&before);
	buf_free(&after);
}

static void
members_are(const struct client_group *g, const char *want)
{
	char got[256] = "";
	size_t i;

	for (i = 0; i < g->n; i++) {
		strcat(got, i > 0 ? "," : "");
		strcat(got, g->members[i]);
	}
	cr_assert_str_eq(got, want);
}

/* alice creates gid with bob and carol. */
static struct client_group *
created(struct signed_change *sc)
{
	static const char *const bc[] = {"bob", "carol"};
	struct client_group *g = NULL;

	make_change(sc, ALICE, ALICE, 1, OP_CREATE, bc, 2);
	apply_ok(&g, sc);
	return g;
}

/* ---- membership --------------------------------------------------------------------------- */

Test(client_group, replay_changes)
{
	static const char *const d[] = {"dave"}, *b[] = {"bob"}, *c[] = {"carol"};
	struct signed_change sc[4];
	struct client_group *g = created(&sc[0]);

	cr_assert_str_eq(g->owner, "alice");
	cr_assert_eq(g->serial, 1);
	cr_assert_str_eq(g->name, "");
	cr_assert_not(g->rekey);
	members_are(g, "alice,bob,carol");
	make_change(&sc[1], ALICE, ALICE, 2, OP_ADD, d, 1);
	apply_ok(&g, &sc[1]);
	members_are(g, "alice,bob,carol,dave");
	cr_assert_not(g->rekey, "an addition needs no new chain");
	make_change(&sc[2], ALICE, ALICE, 3, OP_REMOVE, b, 1);
	apply_ok(&g, &sc[2]);
	cr_assert(g->rekey, "a removal does");
	g->rekey = 0;
	/* Dave (RSA) is a member now; carol leaves on her own signature. */
	make_change(&sc[3], CAROL, CAROL, 4, OP_LEAVE, c, 1);
	apply_ok(&g, &sc[3]);
	members_are(g, "alice,dave");
	cr_assert(g->rekey);
	cr_assert_eq(g->serial, 4);
	client_group_free(g);

	/* The same changes, as the server hands them out, through the key lookup. */
	g = NULL;
	{
		struct client_group_change chs[4];
		char err[CLIENT_GROUP_ERR_MAX] = "";

		for (int i = 0; i < 4; i++)
			chs[i] = sc[i].ch;
		cr_assert_eq(client_group_apply_all(&g, gid, chs, 4, keyfn, NULL, err, sizeof(err)),
		        0, "%s", err);
		members_are(g, "alice,dave");
		/* Again: what is applied is skipped. */
		cr_assert_eq(client_group_apply_all(&g, gid, chs, 4, keyfn, NULL, err, sizeof(err)),
		        0, "%s", err);
		cr_assert_eq(g->serial, 4);
	}
	client_group_free(g);
}

Test(client_group, unsigned_and_forged_changes_are_refused)
{
	static const char *const m[] = {"dave"};
	struct signed_change sc0, sc;
	struct client_group *g = created(&sc0);

	/* The server (or bob) adds dave and claims alice signed it: bob's key made the signature. */
	make_change(&sc, ALICE, BOB, 2, OP_ADD, m, 1);
	apply_fails(&g, &sc, ALICE, SOTTO_ERR_VERIFY, "does not verify");
	/* No signature at all. */
	make_change(&sc, ALICE, ALICE, 2, OP_ADD, m, 1);
	sc.ch.signature_len = 0;
	apply_fails(&g, &sc, ALICE, SOTTO_ERR_VERIFY, "not signed by alice");
	/* A genuine signature over another change does not carry over. */
	make_change(&sc, ALICE, ALICE, 2, OP_ADD, m, 1);
	sc.ch.serial = 3;
	apply_fails(&g, &sc, ALICE, SOTTO_ERR_AGAIN, "missing");
	make_change(&sc, ALICE, ALICE, 2, OP_ADD, m, 1);
	sc.sig[3] ^= 1;
	apply_fails(&g, &sc, ALICE, SOTTO_ERR_VERIFY, "does not verify");
	/* A creation that is forged. */
	{
		struct client_group *none = NULL;
		static const char *const bc[] = {"bob", "carol"};

		make_change(&sc, ALICE, CAROL, 1, OP_CREATE, bc, 2);
		apply_fails(&none, &sc, ALICE, SOTTO_ERR_VERIFY, "does not verify");
		cr_assert_null(none);
	}
	members_are(g, "alice,bob,carol");
	client_group_free(g);
}

Test(client_group, only_the_owner_changes_members)
{
	static const char *const d[] = {"dave"}, *c[] = {"carol"}, *a[] = {"alice"};
	struct signed_change sc0, sc;
	struct client_group *g = created(&sc0);

	/* Bob signs his own addition of dave: a genuine signature, but bob is not the owner. */
	make_change(&sc, BOB, BOB, 2, OP_ADD, d, 1);
	apply_fails(&g, &sc, BOB, SOTTO_ERR_PERM, "bob tried to change the members");
	make_change(&sc, BOB, BOB, 2, OP_REMOVE, c, 1);
	apply_fails(&g, &sc, BOB, SOTTO_ERR_PERM, "refused");
	/* A member may only sign its own leave. */
	make_change(&sc, BOB, BOB, 2, OP_LEAVE, c, 1);
	apply_fails(&g, &sc, BOB, SOTTO_ERR_PERM, "someone else");
	/* The owner cannot leave or be removed; nor can anyone be added twice. */
	make_change(&sc, ALICE, ALICE, 2, OP_LEAVE, a, 1);
	apply_fails(&g, &sc, ALICE, SOTTO_ERR_FORMAT, "cannot leave");
	make_change(&sc, ALICE, ALICE, 2, OP_REMOVE, a, 1);
	apply_fails(&g, &sc, ALICE, SOTTO_ERR_FORMAT, "owner");
	make_change(&sc, ALICE, ALICE, 2, OP_ADD, c, 1);
	apply_fails(&g, &sc, ALICE, SOTTO_ERR_FORMAT, "already");
	make_change(&sc, ALICE, ALICE, 2, OP_REMOVE, d, 1);
	apply_fails(&g, &sc, ALICE, SOTTO_ERR_FORMAT, "is not a member");
	/* A replay of the creation. */
	apply_fails(&g, &sc0, ALICE, SOTTO_ERR_EXISTS, "already applied");
	client_group_free(g);
}

/* The server lists a member no signed change added (or leaves one out): the client says so. */
Test(client_group, server_member_list_is_checked)
{
	static const char *const honest[] = {"alice", "bob", "carol"};
	static const char *const padded[] = {"alice", "bob", "carol", "mallory"};
	static const char *const short_list[] = {"alice", "carol"};
	static const char *const twice[] = {"alice", "bob", "bob"};
	struct signed_change sc0;
	struct client_group *g = created(&sc0);
	char err[CLIENT_GROUP_ERR_MAX] = "";

	cr_assert_eq(client_group_check_members(g, honest, 3, err, sizeof(err)), 0);
	cr_assert_eq(client_group_check_members(g, padded, 4, err, sizeof(err)), SOTTO_ERR_VERIFY);
	cr_assert(strstr(err, "mallory") != NULL && strstr(err, "not trusted") != NULL, "%s", err);
	cr_assert_eq(
	        client_group_check_members(g, short_list, 2, err, sizeof(err)), SOTTO_ERR_VERIFY);
	cr_assert(strstr(err, "leaves out bob") != NULL, "%s", err);
	cr_assert_eq(client_group_check_members(g, twice, 3, err, sizeof(err)), SOTTO_ERR_VERIFY);
	client_group_free(g);
}

/* ---- updates from the owner, renames ------------------------------------------------------ */

/* Pack a GroupUpdate as the owner's client would, and unpack it as the member's would. */
static Sottoc__Content *
update_of(const struct client_group *g, const struct signed_change *sc, size_t n)
{
	struct client_group_change chs[8];
	Sottoc__Content *c;
	uint8_t *buf;
	size_t len, i;

	cr_assert_leq(n, 8);
	for (i = 0; i < n; i++)
		chs[i] = sc[i].ch;
	cr_assert_eq(client_group_update_pack(g, chs, n, 1234, &buf, &len), 0);
	cr_assert_not_null(c = sottoc__content__unpack(NULL, len, buf));
	cr_assert_eq(c->body_case, SOTTOC__CONTENT__BODY_GROUP_UPDATE);
	free(buf);
	return c;
}

Test(client_group, owner_update_to_a_new_member)
{
	static const char *const d[] = {"dave"};
	struct signed_change sc[2];
	struct client_group *owner = created(&sc[0]), *dave = NULL, *bob = NULL;
	char err[CLIENT_GROUP_ERR_MAX] = "";
	Sottoc__Content *c;

	make_change(&sc[1], ALICE, ALICE, 2, OP_ADD, d, 1);
	apply_ok(&owner, &sc[1]);
	cr_assert_eq(
	        client_group_rename(owner, "alice", "Climbing \xc3\xa9t\xc3\xa9", err, sizeof(err)),
	        0, "%s", err);
	c = update_of(owner, sc, 2);
	/* Dave, new to the group, replays it all from serial 1. */
	cr_assert_eq(client_group_accept_update(
	                     &dave, "alice", c->group_update, keyfn, NULL, err, sizeof(err)),
	        0, "%s", err);
	members_are(dave, "alice,bob,carol,dave");
	cr_assert_str_eq(dave->name, "Climbing \xc3\xa9t\xc3\xa9");
	cr_assert_eq(dave->serial, 2);
	/* Only the owner's updates count. */
	cr_assert_eq(client_group_accept_update(
	                     &bob, "bob", c->group_update, keyfn, NULL, err, sizeof(err)),
	        SOTTO_ERR_PERM);
	cr_assert(strstr(err, "only the owner") != NULL, "%s", err);
	cr_assert_null(bob);
	cr_assert_eq(client_group_accept_update(
	                     &dave, "carol", c->group_update, keyfn, NULL, err, sizeof(err)),
	        SOTTO_ERR_PERM);
	sottoc__content__free_unpacked(c, NULL);
	/* Members that the changes do not make are refused, and nothing changes. */
	snprintf(owner->members[3], sizeof(owner->members[3]), "mallory");
	c = update_of(owner, sc, 2);
	bob = NULL;
	cr_assert_eq(client_group_accept_update(
	                     &bob, "alice", c->group_update, keyfn, NULL, err, sizeof(err)),
	        SOTTO_ERR_VERIFY);
	cr_assert(strstr(err, "mallory") != NULL, "%s", err);
	cr_assert_null(bob);
	sottoc__content__free_unpacked(c, NULL);
	/* An unknown signer's key cannot be checked. */
	{
		static const char *const x[] = {"bob"};
		struct signed_change bad[1];
		struct user nobody = {"nobody", ALICE->id};

		make_change(&bad[0], &nobody, ALICE, 1, OP_CREATE, x, 1);
		snprintf(owner->owner, sizeof(owner->owner), "nobody");
		c = update_of(owner, bad, 1);
		cr_assert_eq(client_group_accept_update(&bob, "nobody", c->group_update, keyfn,
		                     NULL, err, sizeof(err)),
		        SOTTO_ERR_NOTFOUND);
		cr_assert(strstr(err, "not known") != NULL, "%s", err);
		sottoc__content__free_unpacked(c, NULL);
	}
	client_group_free(owner);
	client_group_free(dave);
}

Test(client_group, rename_only_by_the_owner)
{
	struct signed_change sc0;
	struct client_group *g = created(&sc0);
	char err[CLIENT_GROUP_ERR_MAX] = "", longname[CLIENT_GROUP_NAME_MAX + 2];

	cr_assert_eq(client_group_rename(g, "alice", "tea", err, sizeof(err)), 0);
	cr_assert_eq(client_group_rename(g, "bob", "bob's now", err, sizeof(err)), SOTTO_ERR_PERM);
	cr_assert(strstr(err, "bob tried to rename") != NULL, "%s", err);
	cr_assert_str_eq(g->name, "tea");
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	cr_assert_eq(
	        client_group_rename(g, "alice", longname, err, sizeof(err)), SOTTO_ERR_INVALID);
	cr_assert_eq(client_group_rename(g, "alice", "", err, sizeof(err)), SOTTO_ERR_INVALID);
	cr_assert_eq(
	        client_group_rename(g, "alice", "bell\x07", err, sizeof(err)), SOTTO_ERR_INVALID);
	cr_assert_eq(client_group_rename(g, "alice", "esc\x1b[31m", err, sizeof(err)),
	        SOTTO_ERR_INVALID);
	cr_assert_eq(
	        client_group_rename(g, "alice", "bad \xc3", err, sizeof(err)), SOTTO_ERR_INVALID);
	cr_assert_eq(client_group_rename(g, "alice", "c1 \xc2\x9b", err, sizeof(err)),
	        SOTTO_ERR_INVALID, "a C1 control");
	cr_assert_eq(client_group_rename(g, "alice", "over \xc0\xaf", err, sizeof(err)),
	        SOTTO_ERR_INVALID, "an overlong");
	cr_assert_str_eq(g->name, "tea");
	client_group_free(g);
}

/* ---- the stored record -------------------------------------------------------------------- */

static void
rmtree(const char *dir)
{
	struct dirent *de;
	char path[512];
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (unlink(path) != 0)
			rmtree(path);
	}
	closedir(d);
	rmdir(dir);
}

static int
count_cb(void *arg, const uint8_t id[CLIENT_STORE_GROUP_BYTES], const uint8_t *st, size_t len)
{
	struct client_group *g = NULL;

	cr_assert_eq(client_group_deserialize(&g, st, len), 0);
	cr_assert_arr_eq(g->id, id, CLIENT_STORE_GROUP_BYTES);
	client_group_free(g);
	(*(int *)arg)++;
	return 0;
}

Test(client_group, record_and_chains_in_client_db)
{
	char dir[64], err[256];
	uint8_t key[CLIENT_STORE_KEYBYTES];
	struct client_store *cs = NULL;
	struct signed_change sc0;
	struct client_group *g = created(&sc0), *back = NULL, *bad = NULL;
	struct senderkey_send *s = NULL, *s2 = NULL;
	struct senderkey_recv *r = NULL;
	struct senderkey_dist d;
	struct buf b;
	int count = 0;

	snprintf(dir, sizeof(dir), "/tmp/sotto-test-cgroup-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	sotto_random(key, sizeof(key));
	cr_assert_eq(client_store_open(&cs, dir, key, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(client_group_rename(g, "alice", "tea", err, sizeof(err)), 0);
	g->rekey = 1;
	cr_assert_eq(client_group_save(cs, g, T0), 0, "%s", client_store_last_error(cs));
	cr_assert_eq(client_group_load(cs, gid, &back), 0);
	cr_assert_str_eq(back->name, "tea");
	cr_assert_str_eq(back->owner, "alice");
	cr_assert_eq(back->serial, 1);
	cr_assert(back->rekey);
	members_are(back, "alice,bob,carol");
	cr_assert_eq(client_store_group_list(cs, count_cb, &count), 0);
	cr_assert_eq(count, 1);
	/* Chains: ours under our name, bob's under his. */
	cr_assert_eq(senderkey_send_new(&s), 0);
	cr_assert_eq(client_group_send_save(cs, gid, "alice", s, T0), 0);
	cr_assert_eq(senderkey_send_dist(s, &d), 0);
	cr_assert_eq(senderkey_recv_new(&r, &d), 0);
	cr_assert_eq(client_group_recv_save(cs, gid, "bob", r, T0), 0);
	senderkey_recv_free(r);
	r = NULL;
	cr_assert_eq(client_group_send_load(cs, gid, "alice", &s2), 0);
	cr_assert_eq(senderkey_send_key_id(s2), d.key_id);
	cr_assert_eq(client_group_recv_load(cs, gid, "bob", &r), 0);
	cr_assert_eq(senderkey_recv_key_id(r), d.key_id);
	cr_assert_eq(client_group_recv_load(cs, gid, "carol", &r), SOTTO_ERR_NOTFOUND);
	/* A removed member's chain goes; a deleted group takes its chains along. */
	cr_assert_eq(client_store_senderkey_delete(cs, gid, "bob"), 0);
	cr_assert_eq(client_group_recv_load(cs, gid, "bob", &r), SOTTO_ERR_NOTFOUND);
	cr_assert_eq(client_store_group_delete(cs, gid), 0);
	cr_assert_eq(client_group_load(cs, gid, &bad), SOTTO_ERR_NOTFOUND);
	cr_assert_eq(client_group_send_load(cs, gid, "alice", &s2), SOTTO_ERR_NOTFOUND);
	/* Malformed records are refused. */
	buf_init(&b, 0);
	cr_assert_eq(client_group_serialize(back, &b), 0);
	{
		uint8_t *raw = malloc(buf_len(&b) + 1);

		cr_assert_not_null(raw);
		memcpy(raw, buf_ptr(&b), buf_len(&b));
		raw[0] = 9;
		cr_assert_eq(client_group_deserialize(&bad, raw, buf_len(&b)), SOTTO_ERR_FORMAT);
		raw[0] = CLIENT_GROUP_RECORD_VERSION;
		cr_assert_eq(
		        client_group_deserialize(&bad, raw, buf_len(&b) - 1), SOTTO_ERR_FORMAT);
		raw[buf_len(&b)] = 0;
		cr_assert_eq(
		        client_group_deserialize(&bad, raw, buf_len(&b) + 1), SOTTO_ERR_FORMAT);
		/* "carol" -> "aarol": the members are no longer sorted. */
		raw[buf_len(&b) - 5] = 'a';
		cr_assert_eq(client_group_deserialize(&bad, raw, buf_len(&b)), SOTTO_ERR_FORMAT);
		cr_assert_null(bad);
		free(raw);
	}
	buf_free(&b);
	sotto_wipe(&d, sizeof(d));
	senderkey_send_free(s);
	senderkey_send_free(s2);
	senderkey_recv_free(r);
	client_group_free(g);
	client_group_free(back);
	client_store_close(cs);
	rmtree(dir);
}

/* ---- group messages ----------------------------------------------------------------------- */

/* Hand s's chain over as a SenderKeyDistribution Content, as the 1:1 session would carry it. */
static struct senderkey_recv *
distribute(const struct senderkey_send *s)
{
	struct senderkey_recv *r = NULL;
	Sottoc__Content *c;
	uint8_t *buf;
	size_t len;

	cr_assert_eq(client_group_dist_pack(s, gid, 99, &buf, &len), 0);
	cr_assert_not_null(c = sottoc__content__unpack(NULL, len, buf));
	cr_assert_eq(c->body_case, SOTTOC__CONTENT__BODY_SENDER_KEY);
	cr_assert_arr_eq(c->sender_key->group_id.data, gid, 16);
	cr_assert_eq(client_group_dist_accept(c->sender_key, &r), 0);
	sotto_wipe(buf, len);
	free(buf);
	sottoc__content__free_unpacked(c, NULL);
	return r;
}

static void
seal_text(struct senderkey_send *s, const char *text, uint8_t **out, size_t *outlen)
{
	Sottoc__Content c;
	Sottoc__Text t;

	sottoc__text__init(&t);
	t.body = (char *)(uintptr_t)text;
	sottoc__content__init(&c);
	c.sent_ms = 5;
	c.body_case = SOTTOC__CONTENT__BODY_TEXT;
	c.text = &t;
	cr_assert_eq(client_group_seal(s, gid, "alice", &c, out, outlen), 0);
}

Test(client_group, messages_and_rekey_after_removal)
{
	struct senderkey_send *s = NULL, *s2 = NULL;
	struct senderkey_recv *bob = NULL, *carol = NULL, *bob_new = NULL;
	Sottoc__Content *c = NULL;
	uint8_t *w, *w2;
	size_t len, len2;

	cr_assert_eq(senderkey_send_new(&s), 0);
	bob = distribute(s);
	carol = distribute(s);
	seal_text(s, "hello group", &w, &len);
	cr_assert_eq(client_group_open(bob, gid, "alice", w, len, &c), 0);
	cr_assert_eq(c->body_case, SOTTOC__CONTENT__BODY_TEXT);
	cr_assert_str_eq(c->text->body, "hello group");
	sottoc__content__free_unpacked(c, NULL);
	cr_assert_eq(client_group_open(carol, gid, "alice", w, len, &c), 0);
	sottoc__content__free_unpacked(c, NULL);
	/* Credited to another sender, or replayed: refused. */
	cr_assert_eq(client_group_open(bob, gid, "bob", w, len, &c), SOTTO_ERR_VERIFY);
	cr_assert_eq(client_group_open(bob, gid, "alice", w, len, &c), SOTTO_ERR_VERIFY);
	cr_assert_null(c);
	free(w);
	/* Carol is removed: alice makes a new chain and hands it to bob only. */
	cr_assert_eq(senderkey_send_new(&s2), 0);
	bob_new = distribute(s2);
	seal_text(s2, "after carol left", &w2, &len2);
	cr_assert_eq(client_group_open(carol, gid, "alice", w2, len2, &c), SOTTO_ERR_NOTFOUND,
	        "carol's old chain does not read the new one");
	cr_assert_null(c);
	cr_assert_eq(client_group_open(bob_new, gid, "alice", w2, len2, &c), 0);
	cr_assert_str_eq(c->text->body, "after carol left");
	sottoc__content__free_unpacked(c, NULL);
	/* Even knowing the key id, the old chain's keys do not open it. */
	free(w2);
	senderkey_recv_free(bob);
	senderkey_recv_free(carol);
	senderkey_recv_free(bob_new);
	senderkey_send_free(s);
	senderkey_send_free(s2);
}

Test(client_group, malformed_group_envelopes)
{
	struct senderkey_send *s = NULL;
	struct senderkey_recv *r = NULL;
	Sottoc__Content *c = NULL, inner;
	Sottoc__GroupUpdate u;
	Sottoc__SenderKeyDistribution d;
	uint8_t *w, junk[3] = {1, 2, 3};
	size_t len;

	cr_assert_eq(senderkey_send_new(&s), 0);
	r = distribute(s);
	cr_assert_eq(client_group_open(r, gid, "alice", junk, sizeof(junk), &c), SOTTO_ERR_FORMAT);
	/* 1:1-only content inside a group message is refused, even authentic. */
	sottoc__group_update__init(&u);
	sottoc__content__init(&inner);
	inner.body_case = SOTTOC__CONTENT__BODY_GROUP_UPDATE;
	inner.group_update = &u;
	cr_assert_eq(client_group_seal(s, gid, "alice", &inner, &w, &len), 0);
	cr_assert_eq(client_group_open(r, gid, "alice", w, len, &c), SOTTO_ERR_FORMAT);
	free(w);
	sottoc__sender_key_distribution__init(&d);
	inner.body_case = SOTTOC__CONTENT__BODY_SENDER_KEY;
	inner.sender_key = &d;
	cr_assert_eq(client_group_seal(s, gid, "alice", &inner, &w, &len), 0);
	cr_assert_eq(client_group_open(r, gid, "alice", w, len, &c), SOTTO_ERR_FORMAT);
	cr_assert_null(c);
	free(w);
	/* A distribution with wrong sizes. */
	senderkey_recv_free(r);
	d.group_id = proto_bytes(gid, 15);
	cr_assert_eq(client_group_dist_accept(&d, &r), SOTTO_ERR_FORMAT);
	cr_assert_null(r);
	senderkey_send_free(s);
}
