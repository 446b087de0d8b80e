/*
 * Unit tests for the group part of src/store.c and src/store-sqlite.c, and
 * for group envelopes in the queue, against real SQLite files.
 */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "src/store.h"

#ifndef Test
/* cppcheck does not read criterion.h: let it analyse each test as a plain function. */
#define TestSuite(...)         struct test_suite_unused
#define Test(suite, name, ...) void test_##suite##_##name(void)
#endif

#define T0 1700000000

static char test_dir[64];
static char test_state[128];
static struct store *st;
static const uint8_t gid[STORE_GROUP_ID_BYTES] = {
        0xa1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t sig[64] = {0x51, 0x67};

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

static void
reopen(void)
{
	char err[512];

	store_close(st);
	cr_assert_eq(store_sqlite_open(&st, test_state, err, sizeof(err)), 0, "%s", err);
}

static void
add_user(const char *name)
{
	struct store_spk spk;
	struct store_registration reg;
	uint8_t key[44];

	memset(&spk, 0, sizeof(spk));
	spk.id = 1;
	spk.signature_len = 64;
	memset(key, 0x30, sizeof(key));
	memset(&reg, 0, sizeof(reg));
	reg.name = name;
	reg.identity_type = 1;
	reg.identity_key = key;
	reg.identity_key_len = sizeof(key);
	reg.spk = &spk;
	cr_assert_eq(store_user_register(st, &reg, T0), 0, "%s", store_last_error(st));
}

static void
setup(void)
{
	snprintf(test_dir, sizeof(test_dir), "/tmp/sotto-test-sgroup-XXXXXX");
	cr_assert_not_null(mkdtemp(test_dir));
	snprintf(test_state, sizeof(test_state), "%s/state", test_dir);
	st = NULL;
	reopen();
	add_user("alice");
	add_user("bob");
	add_user("carol");
	add_user("dave");
}

static void
teardown(void)
{
	store_close(st);
	st = NULL;
	rmtree(test_dir);
}

TestSuite(store_group, .init = setup, .fini = teardown);

static struct store_group_change
change(uint64_t serial, enum store_group_op op, const char *signer, const char *const *users,
        size_t n)
{
	struct store_group_change ch;

	memset(&ch, 0, sizeof(ch));
	ch.serial = serial;
	ch.op = op;
	ch.signer = signer;
	ch.users = users;
	ch.n_users = n;
	ch.signature = sig;
	ch.signature_len = sizeof(sig);
	ch.timestamp_ms = (int64_t)T0 * 1000 + (int64_t)serial;
	return ch;
}

struct names {
	char v[8][STORE_NAME_MAX + 1];
	size_t n;
};

static int
names_cb(void *arg, const char *name, int64_t when)
{
	struct names *x = arg;

	(void)when;
	cr_assert_lt(x->n, 8);
	snprintf(x->v[x->n++], sizeof(x->v[0]), "%s", name);
	return 0;
}

static void
members_are(const char *want)
{
	struct names x = {.n = 0};
	char got[256] = "";
	size_t i;

	cr_assert_eq(store_group_members(st, gid, 100, names_cb, &x), 0);
	for (i = 0; i < x.n; i++) {
		strcat(got, i > 0 ? "," : "");
		strcat(got, x.v[i]);
	}
	cr_assert_str_eq(got, want);
}

struct changes {
	char line[8][128];
	size_t n;
};

static int
changes_cb(void *arg, const struct store_group_change *ch)
{
	struct changes *x = arg;
	char *p;
	size_t i;

	cr_assert_lt(x->n, 8);
	p = x->line[x->n++];
	snprintf(p, 128, "%llu %d %s:", (unsigned long long)ch->serial, (int)ch->op, ch->signer);
	for (i = 0; i < ch->n_users; i++) {
		strcat(p, " ");
		strcat(p, ch->users[i]);
	}
	cr_assert_eq(ch->signature_len, sizeof(sig));
	cr_assert_arr_eq(ch->signature, sig, sizeof(sig));
	cr_assert_eq(ch->timestamp_ms, (int64_t)T0 * 1000 + (int64_t)ch->serial);
	return 0;
}

Test(store_group, lifecycle)
{
	const char *bc[] = {"bob", "carol"}, *d[] = {"dave"}, *b[] = {"bob"}, *c[] = {"carol"};
	struct store_group_change ch;
	struct store_group g;
	struct changes x = {.n = 0};
	uint32_t count;
	int member;

	ch = change(1, STORE_GROUP_CREATE, "alice", bc, 2);
	cr_assert_eq(store_group_create(st, gid, "alice", &ch), 0, "%s", store_last_error(st));
	cr_assert_eq(store_group_create(st, gid, "bob", &ch), SOTTO_ERR_INVALID, "signer != owner");
	cr_assert_eq(store_group_create(st, gid, "alice", &ch), SOTTO_ERR_EXISTS);
	cr_assert_eq(store_group_get(st, gid, &g), 0);
	cr_assert_str_eq(g.owner, "alice");
	cr_assert_eq(g.serial, 1);
	cr_assert_eq(g.n_members, 3);
	members_are("alice,bob,carol");
	ch = change(2, STORE_GROUP_ADD, "alice", d, 1);
	cr_assert_eq(store_group_apply(st, gid, &ch), 0, "%s", store_last_error(st));
	cr_assert_eq(store_group_apply(st, gid, &ch), SOTTO_ERR_AGAIN, "serial 2 is taken");
	ch = change(3, STORE_GROUP_REMOVE, "alice", b, 1);
	cr_assert_eq(store_group_apply(st, gid, &ch), 0);
	ch = change(4, STORE_GROUP_LEAVE, "carol", c, 1);
	cr_assert_eq(store_group_apply(st, gid, &ch), 0);
	members_are("alice,dave");
	cr_assert_eq(store_group_is_member(st, gid, "Dave", &member), 0);
	cr_assert_eq(member, 1);
	cr_assert_eq(store_group_is_member(st, gid, "bob", &member), 0);
	cr_assert_eq(member, 0);
	cr_assert_eq(store_group_count_for(st, "alice", &count), 0);
	cr_assert_eq(count, 1);
	cr_assert_eq(store_group_count_for(st, "bob", &count), 0);
	cr_assert_eq(count, 0);
	/* It all survives a reopen, changes in order. */
	reopen();
	cr_assert_eq(store_group_changes(st, gid, 0, 100, changes_cb, &x), 0);
	cr_assert_eq(x.n, 4);
	cr_assert_str_eq(x.line[0], "1 1 alice: bob carol");
	cr_assert_str_eq(x.line[1], "2 2 alice: dave");
	cr_assert_str_eq(x.line[2], "3 3 alice: bob");
	cr_assert_str_eq(x.line[3], "4 4 carol: carol");
	x.n = 0;
	cr_assert_eq(store_group_changes(st, gid, 2, 1, changes_cb, &x), 0);
	cr_assert_eq(x.n, 1);
	cr_assert_str_eq(x.line[0], "3 3 alice: bob");
	cr_assert_eq(store_group_get(st, gid, &g), 0);
	cr_assert_eq(g.serial, 4);
	cr_assert_eq(store_group_delete(st, gid), 0);
	cr_assert_eq(store_group_get(st, gid, &g), SOTTO_ERR_NOTFOUND);
	x.n = 0;
	cr_assert_eq(store_group_changes(st, gid, 0, 100, changes_cb, &x), 0);
	cr_assert_eq(x.n, 0);
	members_are("");
}

/* A change that cannot apply changes nothing at all. */
Test(store_group, failed_changes_are_atomic)
{
	const char *b[] = {"bob"}, *cz[] = {"carol", "zed"}, *bc[] = {"bob", "carol"};
	const char *cb[] = {"carol", "bob"}, *dx[] = {"dave", "xavier"};
	struct store_group_change ch;
	struct store_group g;

	ch = change(1, STORE_GROUP_CREATE, "alice", dx, 2);
	cr_assert_eq(store_group_create(st, gid, "alice", &ch), SOTTO_ERR_NOTFOUND);
	cr_assert(strstr(store_last_error(st), "xavier") != NULL, "%s", store_last_error(st));
	cr_assert_eq(store_group_get(st, gid, &g), SOTTO_ERR_NOTFOUND, "nothing half-made");
	ch = change(1, STORE_GROUP_CREATE, "alice", b, 1);
	cr_assert_eq(store_group_create(st, gid, "alice", &ch), 0);
	ch = change(2, STORE_GROUP_ADD, "alice", cz, 2);
	cr_assert_eq(store_group_apply(st, gid, &ch), SOTTO_ERR_NOTFOUND);
	ch = change(2, STORE_GROUP_ADD, "alice", bc, 2);
	cr_assert_eq(store_group_apply(st, gid, &ch), SOTTO_ERR_EXISTS);
	ch = change(2, STORE_GROUP_REMOVE, "alice", bc, 2);
	cr_assert_eq(store_group_apply(st, gid, &ch), SOTTO_ERR_NOTFOUND);
	ch = change(2, STORE_GROUP_ADD, "alice", cb, 2);
	cr_assert_eq(store_group_apply(st, gid, &ch), SOTTO_ERR_INVALID, "unsorted");
	ch = change(2, STORE_GROUP_CREATE, "alice", cb, 0);
	cr_assert_eq(store_group_apply(st, gid, &ch), SOTTO_ERR_INVALID, "a second creation");
	cr_assert_eq(store_group_get(st, gid, &g), 0);
	cr_assert_eq(g.serial, 1);
	members_are("alice,bob");
	/* And a batch that holds a change rolls it back with the rest. */
	cr_assert_eq(store_begin(st), 0);
	ch = change(2, STORE_GROUP_REMOVE, "alice", b, 1);
	cr_assert_eq(store_group_apply(st, gid, &ch), 0);
	members_are("alice");
	store_rollback(st);
	members_are("alice,bob");
}

struct fetched {
	int kind[8];
	size_t len[8];
	uint8_t first[8];
	size_t n;
};

static int
fetch_cb(void *arg, const struct store_msg *m)
{
	struct fetched *x = arg;

	cr_assert_lt(x->n, 8);
	x->kind[x->n] = m->kind;
	x->len[x->n] = m->sealed_len;
	x->first[x->n] = m->sealed_len > 0 ? m->sealed[0] : 0;
	x->n++;
	return 0;
}

/* Counts the keys store_queue_keys lists for one msg_id, and all of them. */
struct keys {
	const uint8_t *want;
	size_t n, n_want;
};

static int
key_cb(void *arg, const char *recipient, const char *sender, const uint8_t msg_id[16])
{
	struct keys *k = arg;

	k->n++;
	if (strcmp(recipient, "bob") == 0 && strcmp(sender, "alice") == 0 &&
	        memcmp(msg_id, k->want, 16) == 0)
		k->n_want++;
	return 0;
}

/* Group envelopes queue like envelopes: in order, deduplicated, with receipts when acked. */
Test(store_group, queue_group_envelopes)
{
	uint8_t item[16 + 5], id1[16] = {1}, id2[16] = {2}, ids[2][16];
	struct store_receipt *rc = NULL;
	struct fetched x = {.n = 0};
	struct keys k = {.want = id1};
	uint64_t seq;
	size_t nrc, ndel;
	int dup, found;

	memcpy(item, gid, 16);
	memcpy(item + 16, "hello", 5);
	cr_assert_eq(store_queue_push(st, "bob", STORE_KIND_GROUP, "alice", id1, 1, item,
	                     sizeof(item), &seq, &dup),
	        0);
	cr_assert_eq(dup, 0);
	cr_assert_eq(store_queue_push(st, "bob", STORE_KIND_ENVELOPE, "alice", id2, 2,
	                     (const uint8_t *)"direct", 6, &seq, &dup),
	        0);
	cr_assert_eq(store_queue_push(st, "bob", STORE_KIND_GROUP, "alice", id1, 3, item,
	                     sizeof(item), &seq, &dup),
	        0);
	cr_assert_eq(dup, 1, "the same group envelope again");
	cr_assert_eq(store_queue_push(
	                     st, "bob", STORE_KIND_GROUP, "alice", id1, 3, item, 15, &seq, &dup),
	        SOTTO_ERR_INVALID, "shorter than a group id");
	cr_assert_eq(store_queue_has(st, "bob", "alice", id1, &found), 0);
	cr_assert_eq(found, 1);
	cr_assert_eq(store_queue_fetch(st, "bob", 0, 10, fetch_cb, &x), 0);
	cr_assert_eq(x.n, 2);
	cr_assert_eq(x.kind[0], STORE_KIND_GROUP);
	cr_assert_eq(x.len[0], sizeof(item));
	cr_assert_eq(x.first[0], gid[0]);
	cr_assert_eq(x.kind[1], STORE_KIND_ENVELOPE);
	/* The server's in-memory duplicate check is filled from these keys. */
	cr_assert_eq(store_queue_keys(st, key_cb, &k), 0);
	cr_assert_eq(k.n_want, 1, "a queued group envelope is a duplicate-check key");
	cr_assert_eq(k.n, 2);
	memcpy(ids[0], id1, 16);
	memcpy(ids[1], id2, 16);
	cr_assert_eq(store_queue_delete(st, "bob", (const uint8_t(*)[16])ids, 2, STORE_SEQ_ALL, T0,
	                     &rc, &nrc, &ndel),
	        0);
	cr_assert_eq(nrc, 2, "alice gets a receipt for each");
	cr_assert_eq(ndel, 2);
	free(rc);
	/* Acknowledged: a late resend is recognised and not queued again. */
	cr_assert_eq(store_queue_has(st, "bob", "alice", id1, &found), 0);
	cr_assert_eq(found, 1);
	cr_assert_eq(store_queue_push(st, "bob", STORE_KIND_GROUP, "alice", id1, 4, item,
	                     sizeof(item), &seq, &dup),
	        0);
	cr_assert_eq(dup, 1);
	x.n = 0;
	cr_assert_eq(store_queue_fetch(st, "bob", 0, 10, fetch_cb, &x), 0);
	cr_assert_eq(x.n, 0);
}
