/* Unit tests for src/store.c and src/store-sqlite.c, against real SQLite files. */
#include "config.h"

#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <sqlite3.h>

#include "src/store.h"

#ifndef Test
/* cppcheck does not read criterion.h: let it analyse each test as a plain function. */
#define TestSuite(...)         struct test_suite_unused
#define Test(suite, name, ...) void test_##suite##_##name(void)
#endif

#define T0 1700000000 /* "now" in these tests */

static char test_dir[64];
static char test_state[128];
static struct store *st;

/* Remove the state directory's files and the directories. */
static void
test_rmtree(const char *dir)
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
			test_rmtree(path);
	}
	closedir(d);
	rmdir(dir);
}

static void
test_open(void)
{
	char err[512];

	cr_assert_eq(store_sqlite_open(&st, test_state, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(store_backend_name(st), "sqlite");
}

static void
test_reopen(void)
{
	store_close(st);
	st = NULL;
	test_open();
}

static void
setup(void)
{
	snprintf(test_dir, sizeof(test_dir), "/tmp/sotto-test-store-XXXXXX");
	cr_assert_not_null(mkdtemp(test_dir));
	snprintf(test_state, sizeof(test_state), "%s/state", test_dir);
	test_open();
}

static void
teardown(void)
{
	store_close(st);
	st = NULL;
	test_rmtree(test_dir);
}

TestSuite(store, .init = setup, .fini = teardown);

static void
test_spk(struct store_spk *spk, uint32_t id)
{
	memset(spk, 0, sizeof(*spk));
	spk->id = id;
	memset(spk->public_key, (int)id, sizeof(spk->public_key));
	memset(spk->signature, 0xee, 64);
	spk->signature_len = 64;
	spk->created = T0 - 10;
}

static void
test_otks(struct store_otk *otks, size_t n, uint32_t first_id)
{
	size_t i;

	for (i = 0; i < n; i++) {
		otks[i].id = first_id + (uint32_t)i;
		memset(otks[i].public_key, (int)(first_id + i), sizeof(otks[i].public_key));
	}
}

/* Register name with an Ed25519-sized key, signed prekey 1 and n one-time prekeys 1..n. */
static int
test_register_n(const char *name, size_t n, const char *invite)
{
	static const uint8_t key[44] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70};
	struct store_registration reg;
	struct store_otk otks[8];
	struct store_spk spk;

	cr_assert_leq(n, 8);
	test_spk(&spk, 1);
	test_otks(otks, n, 1);
	memset(&reg, 0, sizeof(reg));
	reg.name = name;
	reg.identity_type = 1;
	reg.identity_key = key;
	reg.identity_key_len = sizeof(key);
	reg.spk = &spk;
	reg.otks = otks;
	reg.n_otks = n;
	reg.invite_token = invite;
	return store_user_register(st, &reg, T0);
}

static void
test_register(const char *name)
{
	cr_assert_eq(test_register_n(name, 3, NULL), 0, "%s", store_last_error(st));
}

static void
test_id(uint8_t id[STORE_MSG_ID_BYTES], unsigned n)
{
	memset(id, 0, STORE_MSG_ID_BYTES);
	id[0] = 0xa0;
	id[15] = (uint8_t)n;
}

Test(store, files_are_private)
{
	struct stat sb;
	char path[256];

	cr_assert_eq(stat(test_state, &sb), 0);
	cr_assert_eq(sb.st_mode & 0777, 0700);
	snprintf(path, sizeof(path), "%s/%s", test_state, STORE_DB_FILE);
	cr_assert_eq(stat(path, &sb), 0);
	cr_assert_eq(sb.st_mode & 0777, 0600);
	test_register("alice");
	snprintf(path, sizeof(path), "%s/%s-wal", test_state, STORE_DB_FILE);
	cr_assert_eq(stat(path, &sb), 0, "WAL mode should leave a -wal file");
	cr_assert_eq(sb.st_mode & 0777, 0600);
}

Test(store, loose_permissions_are_tightened)
{
	struct stat sb;
	char path[256];

	store_close(st);
	st = NULL;
	snprintf(path, sizeof(path), "%s/%s", test_state, STORE_DB_FILE);
	cr_assert_eq(chmod(path, 0644), 0);
	test_open();
	cr_assert_eq(stat(path, &sb), 0);
	cr_assert_eq(sb.st_mode & 0777, 0600);
}

Test(store, users_case_insensitive)
{
	struct store_user u;

	test_register("Alice");
	cr_assert_eq(store_user_get(st, "aLiCe", &u), 0);
	cr_assert_str_eq(u.name, "alice");
	cr_assert_eq(u.identity_type, 1);
	cr_assert_eq(u.identity_key_len, 44);
	cr_assert_eq(u.identity_key[0], 0x30);
	cr_assert_eq(u.created, T0);
	cr_assert_eq(u.last_seen, 0);
	cr_assert_eq(u.deleted, 0);
	cr_assert_eq(u.admin, 0);
	cr_assert_eq(test_register_n("ALICE", 0, NULL), SOTTO_ERR_EXISTS);
	cr_assert_eq(test_register_n("alice", 0, NULL), SOTTO_ERR_EXISTS);
	cr_assert_eq(store_user_get(st, "bob", &u), SOTTO_ERR_NOTFOUND);
	cr_assert_str_eq(u.name, "");
	cr_assert_eq(store_user_get(st, "no such name!", &u), SOTTO_ERR_INVALID);
	cr_assert_eq(test_register_n("-bad", 0, NULL), SOTTO_ERR_INVALID);
}

Test(store, registration_is_all_or_nothing)
{
	struct store_user u;
	uint32_t n;

	/* A bad invite stores nothing. */
	cr_assert_eq(test_register_n("bob", 3, "no-such-invite"), SOTTO_ERR_PERM);
	cr_assert_eq(store_user_get(st, "bob", &u), SOTTO_ERR_NOTFOUND);
	cr_assert_eq(store_prekey_count_otks(st, "bob", &n), 0);
	cr_assert_eq(n, 0);
	/* A taken name consumes no invite. */
	test_register("carol");
	cr_assert_eq(store_invite_create(st, "tok-1", NULL, T0, T0 + 3600), 0);
	cr_assert_eq(test_register_n("Carol", 3, "tok-1"), SOTTO_ERR_EXISTS);
	cr_assert_eq(test_register_n("bob", 3, "tok-1"), 0);
	cr_assert_eq(store_user_get(st, "bob", &u), 0);
	cr_assert_eq(test_register_n("dave", 3, "tok-1"), SOTTO_ERR_PERM);
}

Test(store, admin_and_last_seen)
{
	struct store_user u;

	test_register("alice");
	cr_assert_eq(store_user_set_admin(st, "ALICE", 1), 0);
	cr_assert_eq(store_user_set_last_seen(st, "alice", T0 + 5), 0);
	cr_assert_eq(store_user_get(st, "alice", &u), 0);
	cr_assert_eq(u.admin, 1);
	cr_assert_eq(u.last_seen, T0 + 5);
	cr_assert_eq(store_user_set_admin(st, "nobody", 1), SOTTO_ERR_NOTFOUND);
	cr_assert_eq(store_user_set_last_seen(st, "nobody", T0), SOTTO_ERR_NOTFOUND);
}

struct test_names {
	char names[8][STORE_NAME_MAX + 1];
	int64_t when[8];
	size_t n;
};

static int
test_collect_name(void *arg, const char *name, int64_t when)
{
	struct test_names *tn = arg;

	cr_assert_lt(tn->n, 8);
	snprintf(tn->names[tn->n], sizeof(tn->names[0]), "%s", name);
	tn->when[tn->n++] = when;
	return 0;
}

Test(store, list_seen_since)
{
	struct test_names tn;

	test_register("alice");
	test_register("bob");
	test_register("carol");
	test_register("dave");
	cr_assert_eq(store_user_set_last_seen(st, "alice", T0 - 100), 0);
	cr_assert_eq(store_user_set_last_seen(st, "bob", T0 - 10), 0);
	cr_assert_eq(store_user_set_last_seen(st, "carol", T0 - 1000), 0);
	memset(&tn, 0, sizeof(tn));
	cr_assert_eq(store_user_list_seen(st, T0 - 500, 10, test_collect_name, &tn), 0);
	cr_assert_eq(tn.n, 2);
	cr_assert_str_eq(tn.names[0], "bob");
	cr_assert_eq(tn.when[0], T0 - 10);
	cr_assert_str_eq(tn.names[1], "alice");
	memset(&tn, 0, sizeof(tn));
	cr_assert_eq(store_user_list_seen(st, 0, 1, test_collect_name, &tn), 0);
	cr_assert_eq(tn.n, 1);
	cr_assert_str_eq(tn.names[0], "bob");
}

Test(store, one_time_prekeys_one_per_bundle_then_exhausted)
{
	struct store_bundle b;
	uint32_t n;
	unsigned i;

	test_register("bob");
	cr_assert_eq(store_prekey_count_otks(st, "bob", &n), 0);
	cr_assert_eq(n, 3);
	for (i = 1; i <= 3; i++) {
		cr_assert_eq(store_prekey_take_bundle(st, "Bob", &b), 0);
		cr_assert_str_eq(b.user.name, "bob");
		cr_assert_eq(b.user.identity_key_len, 44);
		cr_assert_eq(b.spk.id, 1);
		cr_assert_eq(b.spk.signature_len, 64);
		cr_assert(b.has_otk);
		cr_assert_eq(b.otk.id, i, "oldest first");
		cr_assert_eq(b.otk.public_key[0], i);
		cr_assert_eq(store_prekey_count_otks(st, "bob", &n), 0);
		cr_assert_eq(n, 3 - i);
	}
	/* Exhausted: the bundle still comes, without a one-time prekey. */
	cr_assert_eq(store_prekey_take_bundle(st, "bob", &b), 0);
	cr_assert_not(b.has_otk);
	cr_assert_eq(b.spk.id, 1);
	cr_assert_eq(store_prekey_take_bundle(st, "nobody", &b), SOTTO_ERR_NOTFOUND);
}

Test(store, one_time_prekeys_survive_reopen_and_rollback)
{
	struct store_bundle b;
	uint32_t n;

	test_register("bob");
	cr_assert_eq(store_begin(st), 0);
	cr_assert_eq(store_prekey_take_bundle(st, "bob", &b), 0);
	cr_assert_eq(b.otk.id, 1);
	store_rollback(st);
	cr_assert_eq(store_prekey_count_otks(st, "bob", &n), 0);
	cr_assert_eq(n, 3);
	cr_assert_eq(store_begin(st), 0);
	cr_assert_eq(store_prekey_take_bundle(st, "bob", &b), 0);
	cr_assert_eq(store_commit(st), 0);
	test_reopen();
	cr_assert_eq(store_prekey_take_bundle(st, "bob", &b), 0);
	cr_assert_eq(b.otk.id, 2);
}

Test(store, add_one_time_prekeys)
{
	static struct store_otk many[STORE_OTK_MAX];
	struct store_otk otks[4];
	uint32_t n;

	test_register("bob");
	test_otks(otks, 4, 3); /* ids 3..6: 3 is already held */
	cr_assert_eq(store_prekey_add_otks(st, "bob", otks, 4, &n), 0);
	cr_assert_eq(n, 6);
	test_otks(many, STORE_OTK_MAX, 100);
	cr_assert_eq(store_prekey_add_otks(st, "bob", many, STORE_OTK_MAX, &n), SOTTO_ERR_RANGE);
	cr_assert_eq(n, 6);
	cr_assert_eq(store_prekey_count_otks(st, "bob", &n), 0);
	cr_assert_eq(n, 6, "nothing added when over the cap");
	cr_assert_eq(
	        store_prekey_add_otks(st, "bob", many, STORE_OTK_MAX + 1, &n), SOTTO_ERR_RANGE);
	cr_assert_eq(store_prekey_add_otks(st, "nobody", otks, 1, &n), SOTTO_ERR_NOTFOUND);
}

Test(store, signed_prekey_rotation)
{
	struct store_spk spk, got;

	test_register("bob");
	cr_assert_eq(store_prekey_get_signed(st, "bob", &got), 0);
	cr_assert_eq(got.id, 1);
	test_spk(&spk, 2);
	cr_assert_eq(store_prekey_set_signed(st, "bob", &spk, T0 + 1), 0);
	cr_assert_eq(store_prekey_get_signed(st, "bob", &got), 0);
	cr_assert_eq(got.id, 2);
	cr_assert_eq(got.public_key[0], 2);
	cr_assert_eq(got.created, T0 - 10);
	test_spk(&spk, 3);
	spk.signature_len = 512; /* an RSA-4096 signature */
	cr_assert_eq(store_prekey_set_signed(st, "bob", &spk, T0 + 2), 0);
	/* Re-uploading the current one replaces it in place. */
	cr_assert_eq(store_prekey_set_signed(st, "bob", &spk, T0 + 3), 0);
	cr_assert_eq(store_prekey_get_signed(st, "bob", &got), 0);
	cr_assert_eq(got.id, 3);
	cr_assert_eq(got.signature_len, 512);
	spk.signature_len = STORE_SIG_MAX + 1;
	cr_assert_eq(store_prekey_set_signed(st, "bob", &spk, T0), SOTTO_ERR_RANGE);
	cr_assert_eq(store_prekey_set_signed(st, "nobody", &got, T0), SOTTO_ERR_NOTFOUND);
	cr_assert_eq(store_prekey_get_signed(st, "nobody", &got), SOTTO_ERR_NOTFOUND);
}

struct test_fetch {
	struct {
		uint64_t seq;
		enum store_kind kind;
		char peer[STORE_NAME_MAX + 1];
		uint8_t msg_id[STORE_MSG_ID_BYTES];
		int64_t ts;
		char sealed[32];
	} m[16];
	size_t n;
	size_t stop_after;
};

static int
test_collect_msg(void *arg, const struct store_msg *m)
{
	struct test_fetch *tf = arg;

	cr_assert_lt(tf->n, 16);
	cr_assert_lt(m->sealed_len, sizeof(tf->m[0].sealed));
	tf->m[tf->n].seq = m->seq;
	tf->m[tf->n].kind = m->kind;
	snprintf(tf->m[tf->n].peer, sizeof(tf->m[0].peer), "%s", m->peer);
	memcpy(tf->m[tf->n].msg_id, m->msg_id, STORE_MSG_ID_BYTES);
	tf->m[tf->n].ts = m->timestamp_ms;
	memcpy(tf->m[tf->n].sealed, m->sealed, m->sealed_len);
	tf->m[tf->n].sealed[m->sealed_len] = '\0';
	tf->n++;
	return tf->stop_after != 0 && tf->n >= tf->stop_after ? 1 : 0;
}

static void
test_push(const char *to, const char *from, unsigned id, const char *sealed, int want_dup)
{
	uint8_t msg_id[STORE_MSG_ID_BYTES];
	uint64_t seq = 0;
	int dup = -1;

	test_id(msg_id, id);
	cr_assert_eq(
	        store_queue_push(st, to, STORE_KIND_ENVELOPE, from, msg_id, (int64_t)T0 * 1000 + id,
	                (const uint8_t *)sealed, strlen(sealed), &seq, &dup),
	        0, "%s", store_last_error(st));
	cr_assert_eq(dup, want_dup);
}

Test(store, queue_order_survives_reopen)
{
	struct test_fetch tf;
	uint32_t count;
	uint64_t third;
	char sealed[16];
	unsigned i;

	test_register("alice");
	test_register("bob");
	cr_assert_eq(store_begin(st), 0);
	cr_assert(store_in_batch(st));
	for (i = 1; i <= 6; i++) {
		snprintf(sealed, sizeof(sealed), "env-%u", i);
		test_push("bob", "alice", 10 - i, sealed, 0); /* ids descend: order is by seq */
	}
	cr_assert_eq(store_commit(st), 0);
	cr_assert_not(store_in_batch(st));
	test_reopen();
	cr_assert_eq(store_queue_count(st, "bob", &count), 0);
	cr_assert_eq(count, 6);
	memset(&tf, 0, sizeof(tf));
	cr_assert_eq(store_queue_fetch(st, "BOB", 0, 100, test_collect_msg, &tf), 0);
	cr_assert_eq(tf.n, 6);
	for (i = 0; i < 6; i++) {
		snprintf(sealed, sizeof(sealed), "env-%u", i + 1);
		cr_assert_str_eq(tf.m[i].sealed, sealed);
		cr_assert_str_eq(tf.m[i].peer, "alice");
		cr_assert_eq(tf.m[i].kind, STORE_KIND_ENVELOPE);
		cr_assert_eq(tf.m[i].msg_id[15], 10 - (i + 1));
		cr_assert_eq(tf.m[i].ts, (int64_t)T0 * 1000 + 10 - (i + 1));
		if (i > 0)
			cr_assert_gt(tf.m[i].seq, tf.m[i - 1].seq);
	}
	/* A cursor and a limit. */
	third = tf.m[2].seq;
	memset(&tf, 0, sizeof(tf));
	cr_assert_eq(store_queue_fetch(st, "bob", third, 2, test_collect_msg, &tf), 0);
	cr_assert_eq(tf.n, 2);
	cr_assert_str_eq(tf.m[0].sealed, "env-4");
	cr_assert_str_eq(tf.m[1].sealed, "env-5");
	/* The callback stops early. */
	memset(&tf, 0, sizeof(tf));
	tf.stop_after = 1;
	cr_assert_eq(store_queue_fetch(st, "bob", 0, 100, test_collect_msg, &tf), 0);
	cr_assert_eq(tf.n, 1);
	/* Nothing for alice. */
	memset(&tf, 0, sizeof(tf));
	cr_assert_eq(store_queue_fetch(st, "alice", 0, 100, test_collect_msg, &tf), 0);
	cr_assert_eq(tf.n, 0);
}

Test(store, committed_batch_survives_kill)
{
	struct test_fetch tf;
	uint32_t count;
	int status;
	pid_t pid;

	test_register("alice");
	test_register("bob");
	store_close(st);
	st = NULL;
	/* A child commits one batch, leaves a second open and dies without closing anything. */
	pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		char err[256];

		if (store_sqlite_open(&st, test_state, err, sizeof(err)) != 0 ||
		        store_begin(st) != 0)
			_exit(1);
		test_push("bob", "alice", 1, "committed", 0);
		if (store_commit(st) != 0 || store_begin(st) != 0)
			_exit(1);
		test_push("bob", "alice", 2, "in flight", 0);
		kill(getpid(), SIGKILL);
		_exit(1);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child status %d", status);
	test_open();
	cr_assert_eq(store_queue_count(st, "bob", &count), 0);
	cr_assert_eq(count, 1);
	memset(&tf, 0, sizeof(tf));
	cr_assert_eq(store_queue_fetch(st, "bob", 0, 10, test_collect_msg, &tf), 0);
	cr_assert_eq(tf.n, 1);
	cr_assert_str_eq(tf.m[0].sealed, "committed");
}

Test(store, uncommitted_batch_is_lost)
{
	uint32_t count;

	test_register("alice");
	test_register("bob");
	cr_assert_eq(store_begin(st), 0);
	cr_assert_eq(store_begin(st), SOTTO_ERR_INVALID);
	test_push("bob", "alice", 1, "x", 0);
	cr_assert_eq(store_queue_count(st, "bob", &count), 0);
	cr_assert_eq(count, 1, "visible inside the batch");
	store_rollback(st);
	cr_assert_eq(store_queue_count(st, "bob", &count), 0);
	cr_assert_eq(count, 0);
	cr_assert_eq(store_commit(st), SOTTO_ERR_INVALID);
	/* Closing with a batch open rolls it back. */
	cr_assert_eq(store_begin(st), 0);
	test_push("bob", "alice", 2, "y", 0);
	test_reopen();
	cr_assert_eq(store_queue_count(st, "bob", &count), 0);
	cr_assert_eq(count, 0);
}

Test(store, duplicate_send_stored_once)
{
	uint8_t id[STORE_MSG_ID_BYTES];
	struct store_receipt *rc = NULL;
	uint64_t seq1 = 0, seq2 = 0;
	size_t nrc = 0;
	uint32_t count;
	int dup = -1;

	test_register("alice");
	test_register("bob");
	test_register("carol");
	test_id(id, 1);
	cr_assert_eq(store_queue_push(st, "bob", STORE_KIND_ENVELOPE, "alice", id, 1,
	                     (const uint8_t *)"a", 1, &seq1, &dup),
	        0);
	cr_assert_eq(dup, 0);
	cr_assert_neq(seq1, 0);
	cr_assert_eq(store_queue_push(st, "bob", STORE_KIND_ENVELOPE, "Alice", id, 2,
	                     (const uint8_t *)"a2", 2, &seq2, &dup),
	        0);
	cr_assert_eq(dup, 1);
	cr_assert_eq(seq2, seq1);
	/* Another sender may pick the same id. */
	test_push("bob", "carol", 1, "c", 0);
	cr_assert_eq(store_queue_count(st, "bob", &count), 0);
	cr_assert_eq(count, 2);
	/* Once delivered, a late resend is still a duplicate. */
	cr_assert_eq(store_queue_delete(st, "bob", (const uint8_t(*)[STORE_MSG_ID_BYTES])id, 1,
	                     STORE_SEQ_ALL, T0, &rc, &nrc, NULL),
	        0);
	cr_assert_eq(nrc, 2);
	free(rc);
	cr_assert_eq(store_queue_push(st, "bob", STORE_KIND_ENVELOPE, "alice", id, 3,
	                     (const uint8_t *)"a", 1, &seq2, &dup),
	        0);
	cr_assert_eq(dup, 1);
	cr_assert_eq(seq2, 0);
	cr_assert_eq(store_queue_count(st, "bob", &count), 0);
	cr_assert_eq(count, 0);
	/* ...until the tombstone expires. */
	cr_assert_eq(store_prune(st, T0 + STORE_TOMBSTONE_TTL + 1), 0);
	test_push("bob", "alice", 1, "a", 0);
}

Test(store, queue_has_sees_queued_and_acknowledged)
{
	uint8_t id[STORE_MSG_ID_BYTES], other[STORE_MSG_ID_BYTES];
	struct store_receipt *rc = NULL;
	size_t nrc = 0;
	int found = -1;

	test_register("alice");
	test_register("bob");
	test_id(id, 1);
	test_id(other, 2);
	cr_assert_eq(store_queue_has(st, "bob", "alice", id, &found), 0);
	cr_assert_eq(found, 0);
	test_push("bob", "alice", 1, "a", 0);
	cr_assert_eq(store_queue_has(st, "BOB", "Alice", id, &found), 0);
	cr_assert_eq(found, 1, "queued");
	cr_assert_eq(store_queue_has(st, "bob", "alice", other, &found), 0);
	cr_assert_eq(found, 0);
	cr_assert_eq(store_queue_has(st, "alice", "bob", id, &found), 0);
	cr_assert_eq(found, 0, "another recipient");
	/* A receipt with the same id is not the envelope. */
	cr_assert_eq(store_queue_push(
	                     st, "alice", STORE_KIND_DELIVERED, "bob", id, 1, NULL, 0, NULL, NULL),
	        0);
	cr_assert_eq(store_queue_has(st, "alice", "bob", id, &found), 0);
	cr_assert_eq(found, 0);
	cr_assert_eq(store_queue_delete(st, "bob", (const uint8_t(*)[STORE_MSG_ID_BYTES])id, 1,
	                     STORE_SEQ_ALL, T0, &rc, &nrc, NULL),
	        0);
	free(rc);
	cr_assert_eq(store_queue_has(st, "bob", "alice", id, &found), 0);
	cr_assert_eq(found, 1, "acknowledged");
	cr_assert_eq(store_prune(st, T0 + STORE_TOMBSTONE_TTL + 1), 0);
	cr_assert_eq(store_queue_has(st, "bob", "alice", id, &found), 0);
	cr_assert_eq(found, 0, "forgotten with the tombstone");
	cr_assert_eq(store_queue_has(st, "bob", "not a name", id, &found), SOTTO_ERR_INVALID);
}

Test(store, delete_returns_senders)
{
	uint8_t ids[3][STORE_MSG_ID_BYTES], rid[STORE_MSG_ID_BYTES];
	struct store_receipt *rc = NULL;
	struct test_fetch tf;
	size_t nrc = 0, ndel = 0, i;
	uint32_t count;
	int saw_alice = 0, saw_carol = 0;

	test_register("alice");
	test_register("bob");
	test_register("carol");
	test_push("bob", "alice", 1, "from alice", 0);
	test_push("bob", "carol", 2, "from carol", 0);
	test_push("bob", "alice", 3, "kept", 0);
	test_id(ids[0], 1);
	test_id(ids[1], 2);
	test_id(ids[2], 77); /* unknown: ignored */
	cr_assert_eq(store_queue_delete(st, "bob", (const uint8_t(*)[STORE_MSG_ID_BYTES])ids, 3,
	                     STORE_SEQ_ALL, T0, &rc, &nrc, &ndel),
	        0);
	cr_assert_eq(nrc, 2);
	cr_assert_eq(ndel, 2);
	for (i = 0; i < nrc; i++) {
		if (strcmp(rc[i].sender, "alice") == 0 && rc[i].msg_id[15] == 1)
			saw_alice = 1;
		if (strcmp(rc[i].sender, "carol") == 0 && rc[i].msg_id[15] == 2)
			saw_carol = 1;
	}
	cr_assert(saw_alice && saw_carol);
	free(rc);
	cr_assert_eq(store_queue_count(st, "bob", &count), 0);
	cr_assert_eq(count, 1);

	/* The receipt for alice is queued for her and acknowledged like an envelope. */
	cr_assert_eq(store_queue_push(st, "alice", STORE_KIND_DELIVERED, "bob", ids[0],
	                     (int64_t)T0 * 1000, NULL, 0, NULL, NULL),
	        0);
	memset(&tf, 0, sizeof(tf));
	cr_assert_eq(store_queue_fetch(st, "alice", 0, 10, test_collect_msg, &tf), 0);
	cr_assert_eq(tf.n, 1);
	cr_assert_eq(tf.m[0].kind, STORE_KIND_DELIVERED);
	cr_assert_str_eq(tf.m[0].peer, "bob");
	cr_assert_str_eq(tf.m[0].sealed, "");
	memcpy(rid, ids[0], sizeof(rid));
	cr_assert_eq(store_queue_delete(st, "alice", (const uint8_t(*)[STORE_MSG_ID_BYTES])rid, 1,
	                     STORE_SEQ_ALL, T0, &rc, &nrc, &ndel),
	        0);
	cr_assert_eq(nrc, 0, "receipts produce no receipts");
	cr_assert_eq(ndel, 1, "but the receipt counts as deleted");
	cr_assert_null(rc);
	cr_assert_eq(store_queue_count(st, "alice", &count), 0);
	cr_assert_eq(count, 0);
	/* Empty and oversized requests. */
	cr_assert_eq(
	        store_queue_delete(st, "alice", NULL, 0, STORE_SEQ_ALL, T0, &rc, &nrc, NULL), 0);
	cr_assert_eq(store_queue_delete(st, "alice", (const uint8_t(*)[STORE_MSG_ID_BYTES])ids,
	                     STORE_ACK_MAX + 1, STORE_SEQ_ALL, T0, &rc, &nrc, &ndel),
	        SOTTO_ERR_RANGE);
	cr_assert_eq(ndel, 0);
}

struct test_keys {
	char list[16][80];
	size_t n;
};

static int
test_collect_key(void *arg, const char *recipient, const char *sender,
        const uint8_t msg_id[STORE_MSG_ID_BYTES])
{
	struct test_keys *k = arg;

	cr_assert_lt(k->n, 16);
	snprintf(k->list[k->n++], sizeof(k->list[0]), "%s<-%s:%u", recipient, sender,
	        msg_id[STORE_MSG_ID_BYTES - 1]);
	return 0;
}

static int
test_has_key(const struct test_keys *k, const char *want)
{
	size_t i;

	for (i = 0; i < k->n; i++) {
		if (strcmp(k->list[i], want) == 0)
			return 1;
	}
	return 0;
}

/* What a start-up filter must know: queued envelopes and tombstones, not receipts. */
Test(store, queue_keys_lists_queued_and_acknowledged_envelopes)
{
	uint8_t id[STORE_MSG_ID_BYTES];
	struct store_receipt *rc = NULL;
	struct test_keys k;
	size_t nrc = 0;

	test_register("alice");
	test_register("bob");
	test_register("carol");
	memset(&k, 0, sizeof(k));
	cr_assert_eq(store_queue_keys(st, test_collect_key, &k), 0);
	cr_assert_eq(k.n, 0);
	test_push("bob", "alice", 1, "queued", 0);
	test_push("bob", "carol", 2, "acked", 0);
	test_push("carol", "alice", 3, "queued too", 0);
	test_id(id, 2);
	cr_assert_eq(store_queue_delete(st, "bob", (const uint8_t(*)[STORE_MSG_ID_BYTES])id, 1,
	                     STORE_SEQ_ALL, T0, &rc, &nrc, NULL),
	        0);
	free(rc);
	cr_assert_eq(store_queue_push(
	                     st, "carol", STORE_KIND_DELIVERED, "bob", id, 1, NULL, 0, NULL, NULL),
	        0);
	cr_assert_eq(store_queue_keys(st, test_collect_key, &k), 0);
	cr_assert_eq(k.n, 3, "%zu keys", k.n);
	cr_assert(test_has_key(&k, "bob<-alice:1"));
	cr_assert(test_has_key(&k, "bob<-carol:2"), "the tombstone");
	cr_assert(test_has_key(&k, "carol<-alice:3"));
	cr_assert_eq(store_queue_keys(st, NULL, NULL), SOTTO_ERR_INVALID);
	/* Pruned tombstones are gone from the list too. */
	cr_assert_eq(store_prune(st, T0 + STORE_TOMBSTONE_TTL + 1), 0);
	memset(&k, 0, sizeof(k));
	cr_assert_eq(store_queue_keys(st, test_collect_key, &k), 0);
	cr_assert_eq(k.n, 2);
	cr_assert_not(test_has_key(&k, "bob<-carol:2"));
}

/* Receipts of one SendMulti share an id: an ack removes only those already pushed. */
Test(store, delete_respects_max_seq)
{
	uint8_t id[STORE_MSG_ID_BYTES];
	struct store_receipt *rc = NULL;
	uint64_t seq1 = 0, seq2 = 0;
	uint32_t count = 0;
	size_t nrc = 0, ndel = 0;

	test_register("alice");
	test_register("bob");
	test_register("carol");
	test_id(id, 7);
	cr_assert_eq(store_queue_push(st, "alice", STORE_KIND_DELIVERED, "bob", id,
	                     (int64_t)T0 * 1000, NULL, 0, &seq1, NULL),
	        0);
	cr_assert_eq(store_queue_push(st, "alice", STORE_KIND_DELIVERED, "carol", id,
	                     (int64_t)T0 * 1000, NULL, 0, &seq2, NULL),
	        0);
	cr_assert_lt(seq1, seq2);
	cr_assert_eq(store_queue_delete(st, "alice", (const uint8_t(*)[STORE_MSG_ID_BYTES])id, 1,
	                     seq1, T0, &rc, &nrc, &ndel),
	        0);
	cr_assert_eq(ndel, 1);
	free(rc);
	cr_assert_eq(store_queue_count(st, "alice", &count), 0);
	cr_assert_eq(count, 1, "carol's receipt was never pushed and must stay");
	cr_assert_eq(store_queue_delete(st, "alice", (const uint8_t(*)[STORE_MSG_ID_BYTES])id, 1,
	                     seq2, T0, &rc, &nrc, NULL),
	        0);
	free(rc);
	cr_assert_eq(store_queue_count(st, "alice", &count), 0);
	cr_assert_eq(count, 0);
}

Test(store, push_to_unknown_or_deleted_user)
{
	uint8_t id[STORE_MSG_ID_BYTES];
	struct store_user u;
	struct store_bundle b;
	uint32_t count;

	test_register("alice");
	test_register("bob");
	test_id(id, 1);
	cr_assert_eq(store_queue_push(st, "nobody", STORE_KIND_ENVELOPE, "alice", id, 1,
	                     (const uint8_t *)"x", 1, NULL, NULL),
	        SOTTO_ERR_NOTFOUND);
	test_push("bob", "alice", 1, "x", 0);
	cr_assert_eq(store_block_add(st, "bob", "alice", T0), 0);
	cr_assert_eq(store_user_delete(st, "bob"), 0);
	cr_assert_eq(store_user_get(st, "bob", &u), 0);
	cr_assert(u.deleted);
	cr_assert_eq(store_queue_count(st, "bob", &count), 0);
	cr_assert_eq(count, 0);
	cr_assert_eq(store_prekey_count_otks(st, "bob", &count), 0);
	cr_assert_eq(count, 0);
	cr_assert_eq(store_prekey_take_bundle(st, "bob", &b), SOTTO_ERR_NOTFOUND);
	cr_assert_eq(store_queue_push(st, "bob", STORE_KIND_ENVELOPE, "alice", id, 1,
	                     (const uint8_t *)"x", 1, NULL, NULL),
	        SOTTO_ERR_NOTFOUND);
	cr_assert_eq(test_register_n("bob", 0, NULL), SOTTO_ERR_EXISTS, "the name stays taken");
	cr_assert_eq(store_user_delete(st, "nobody"), SOTTO_ERR_NOTFOUND);
}

Test(store, blocks)
{
	struct test_names tn;
	int b = -1;

	test_register("alice");
	test_register("bob");
	test_register("carol");
	cr_assert_eq(store_block_add(st, "alice", "Bob", T0), 0);
	cr_assert_eq(store_block_add(st, "alice", "bob", T0 + 1), 0, "idempotent");
	cr_assert_eq(store_block_add(st, "alice", "carol", T0 + 2), 0);
	cr_assert_eq(store_block_add(st, "carol", "bob", T0 + 3), 0);
	cr_assert_eq(store_block_add(st, "alice", "nobody", T0), SOTTO_ERR_NOTFOUND);
	cr_assert_eq(store_block_add(st, "alice", "ALICE", T0), SOTTO_ERR_INVALID);
	cr_assert_eq(store_block_check(st, "alice", "bob", &b), 0);
	cr_assert_eq(b, 1);
	cr_assert_eq(store_block_check(st, "bob", "alice", &b), 0);
	cr_assert_eq(b, 0, "blocking is one-way");

	memset(&tn, 0, sizeof(tn));
	cr_assert_eq(store_block_list(st, "alice", 100, test_collect_name, &tn), 0);
	cr_assert_eq(tn.n, 2);
	cr_assert_str_eq(tn.names[0], "bob");
	cr_assert_eq(tn.when[0], T0);
	cr_assert_str_eq(tn.names[1], "carol");
	memset(&tn, 0, sizeof(tn));
	cr_assert_eq(store_block_list_blockers(st, "bob", 100, test_collect_name, &tn), 0);
	cr_assert_eq(tn.n, 2);
	cr_assert_str_eq(tn.names[0], "alice");
	cr_assert_str_eq(tn.names[1], "carol");

	cr_assert_eq(store_block_remove(st, "alice", "bob"), 0);
	cr_assert_eq(store_block_remove(st, "alice", "bob"), 0, "idempotent");
	cr_assert_eq(store_block_check(st, "alice", "bob", &b), 0);
	cr_assert_eq(b, 0);
	memset(&tn, 0, sizeof(tn));
	cr_assert_eq(store_block_list(st, "alice", 100, test_collect_name, &tn), 0);
	cr_assert_eq(tn.n, 1);
	cr_assert_str_eq(tn.names[0], "carol");
}

Test(store, lockout_counts_and_expires)
{
	uint32_t failures = 0;
	int64_t until = -1;

	test_register("alice");
	cr_assert_eq(store_auth_locked(st, "alice", T0, &until), 0);
	cr_assert_eq(until, 0);
	cr_assert_eq(store_auth_fail(st, "alice", T0, 3, 60, &failures, &until), 0);
	cr_assert_eq(failures, 1);
	cr_assert_eq(until, 0);
	cr_assert_eq(store_auth_fail(st, "Alice", T0 + 1, 3, 60, &failures, &until), 0);
	cr_assert_eq(failures, 2);
	cr_assert_eq(until, 0);
	cr_assert_eq(store_auth_fail(st, "alice", T0 + 2, 3, 60, &failures, &until), 0);
	cr_assert_eq(failures, 3);
	cr_assert_eq(until, T0 + 62);
	cr_assert_eq(store_auth_locked(st, "alice", T0 + 30, &until), 0);
	cr_assert_eq(until, T0 + 62);
	/* A failure while locked neither counts nor extends the lock. */
	cr_assert_eq(store_auth_fail(st, "alice", T0 + 40, 3, 60, &failures, &until), 0);
	cr_assert_eq(until, T0 + 62);
	/* The lock survives a restart. */
	test_reopen();
	cr_assert_eq(store_auth_locked(st, "alice", T0 + 61, &until), 0);
	cr_assert_eq(until, T0 + 62);
	cr_assert_eq(store_auth_locked(st, "alice", T0 + 62, &until), 0);
	cr_assert_eq(until, 0, "expired");
	/* After it lapses, counting starts again. */
	cr_assert_eq(store_auth_fail(st, "alice", T0 + 100, 3, 60, &failures, &until), 0);
	cr_assert_eq(failures, 1);
	cr_assert_eq(until, 0);
	/* Success resets. */
	cr_assert_eq(store_auth_fail(st, "alice", T0 + 101, 3, 60, &failures, &until), 0);
	cr_assert_eq(failures, 2);
	cr_assert_eq(store_auth_reset(st, "alice"), 0);
	cr_assert_eq(store_auth_fail(st, "alice", T0 + 102, 3, 60, &failures, &until), 0);
	cr_assert_eq(failures, 1);
	/* Unknown names are not recorded. */
	cr_assert_eq(
	        store_auth_fail(st, "mallory", T0, 3, 60, &failures, &until), SOTTO_ERR_NOTFOUND);
	cr_assert_eq(store_auth_locked(st, "mallory", T0, &until), 0);
	cr_assert_eq(until, 0);
}

Test(store, invites_single_use)
{
	test_register("admin");
	cr_assert_eq(store_invite_create(st, "s3cret", "admin", T0, T0 + 100), 0);
	cr_assert_eq(store_invite_create(st, "s3cret", "admin", T0, T0 + 100), SOTTO_ERR_EXISTS);
	cr_assert_eq(store_invite_create(st, "old", NULL, T0, T0 + 10), 0);
	cr_assert_eq(store_invite_create(st, "", NULL, T0, T0 + 10), SOTTO_ERR_INVALID);
	cr_assert_eq(store_invite_use(st, "s3cret", "bob", T0 + 1), 0);
	cr_assert_eq(store_invite_use(st, "s3cret", "carol", T0 + 2), SOTTO_ERR_PERM, "used");
	cr_assert_eq(store_invite_use(st, "old", "carol", T0 + 10), SOTTO_ERR_PERM, "expired");
	cr_assert_eq(store_invite_use(st, "never-made", "carol", T0), SOTTO_ERR_PERM);
	cr_assert_eq(store_invite_use(st, "", "carol", T0), SOTTO_ERR_PERM);
	/* Registration consumes an invite exactly once. */
	cr_assert_eq(store_invite_create(st, "reg", NULL, T0, T0 + 100), 0);
	cr_assert_eq(test_register_n("bob", 1, "reg"), 0);
	cr_assert_eq(test_register_n("carol", 1, "reg"), SOTTO_ERR_PERM);
	cr_assert_eq(store_prune(st, T0 + 100 * 86400), 0);
}

Test(store, newer_schema_refused)
{
	char path[256], err[512];
	sqlite3 *db;

	store_close(st);
	st = NULL;
	snprintf(path, sizeof(path), "%s/%s", test_state, STORE_DB_FILE);
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	cr_assert_eq(store_sqlite_open(&st, test_state, err, sizeof(err)), SOTTO_ERR_UNSUPPORTED);
	cr_assert_null(st);
	cr_assert(strstr(err, "sottod.db") != NULL, "%s", err);
	cr_assert(strstr(err, "upgrade sottod") != NULL, "%s", err);
}

Test(store, not_a_database)
{
	char path[256], err[512];
	FILE *fp;

	store_close(st);
	st = NULL;
	snprintf(path, sizeof(path), "%s/%s", test_state, STORE_DB_FILE);
	cr_assert_not_null(fp = fopen(path, "w"));
	fputs("this is not an SQLite database, not even close, no sir\n", fp);
	fclose(fp);
	cr_assert_neq(store_sqlite_open(&st, test_state, err, sizeof(err)), 0);
	cr_assert_null(st);
	cr_assert(strstr(err, path) != NULL, "%s", err);
}

/* --- files (issue 6) --- */

static void
test_file(
        struct store_file *f, uint8_t idbyte, const char *uploader, uint64_t size, int64_t created)
{
	memset(f, 0, sizeof(*f));
	memset(f->id, idbyte, sizeof(f->id));
	snprintf(f->uploader, sizeof(f->uploader), "%s", uploader);
	f->size = size;
	f->created = created;
}

static int
test_count_file(void *arg, const struct store_file *f)
{
	uint8_t *seen = arg;

	seen[f->id[0]]++;
	return 0;
}

Test(store, files_lifecycle)
{
	const char *rcpts[] = {"bob", "Carol", "bob"};
	enum store_file_role role;
	struct store_file f, g;
	uint8_t seen[256] = {0};
	uint32_t remaining = 99;
	uint64_t used = 1;

	cr_assert_eq(test_register_n("alice", 0, NULL), 0);
	cr_assert_eq(test_register_n("bob", 0, NULL), 0);
	cr_assert_eq(test_register_n("carol", 0, NULL), 0);
	test_file(&f, 1, "Alice", 1000, T0);
	f.complete = 1; /* ignored: a new upload is partial */
	cr_assert_eq(store_file_create(st, &f, rcpts, 3), 0, "%s", store_last_error(st));
	cr_assert_eq(store_file_create(st, &f, rcpts, 3), SOTTO_ERR_EXISTS);
	cr_assert_eq(store_file_get(st, f.id, &g), 0);
	cr_assert_str_eq(g.uploader, "alice");
	cr_assert_eq(g.size, 1000);
	cr_assert_eq(g.complete, 0);
	cr_assert_eq(g.created, T0);
	cr_assert_eq(store_file_role(st, f.id, "BOB", &role), 0);
	cr_assert_eq(role, STORE_FILE_PENDING);
	cr_assert_eq(store_file_role(st, f.id, "alice", &role), 0);
	cr_assert_eq(role, STORE_FILE_NONE);
	cr_assert_eq(store_file_set_complete(st, f.id), 0);
	test_reopen();
	cr_assert_eq(store_file_get(st, f.id, &g), 0);
	cr_assert_eq(g.complete, 1);
	cr_assert_eq(store_file_usage(st, "alice", &used), 0);
	cr_assert_eq(used, 1000);
	/* Each recipient once; a repeated FileDone changes nothing. */
	cr_assert_eq(store_file_done(st, f.id, "bob", &remaining), 0);
	cr_assert_eq(remaining, 1);
	cr_assert_eq(store_file_done(st, f.id, "bob", &remaining), 0);
	cr_assert_eq(remaining, 1);
	cr_assert_eq(store_file_role(st, f.id, "bob", &role), 0);
	cr_assert_eq(role, STORE_FILE_FINISHED);
	cr_assert_eq(store_file_done(st, f.id, "alice", &remaining), SOTTO_ERR_NOTFOUND);
	cr_assert_eq(store_file_done(st, f.id, "carol", &remaining), 0);
	cr_assert_eq(remaining, 0);
	/* Expiry lists by creation time. */
	test_file(&g, 2, "alice", 5, T0 + 100);
	cr_assert_eq(store_file_create(st, &g, rcpts, 1), 0);
	cr_assert_eq(store_file_usage(st, "alice", &used), 0);
	cr_assert_eq(used, 1005);
	cr_assert_eq(store_file_list_expired(st, T0 + 1, 10, test_count_file, seen), 0);
	cr_assert_eq(seen[1], 1);
	cr_assert_eq(seen[2], 0);
	cr_assert_eq(store_file_delete(st, f.id), 0);
	cr_assert_eq(store_file_delete(st, f.id), 0);
	cr_assert_eq(store_file_get(st, f.id, &g), SOTTO_ERR_NOTFOUND);
	cr_assert_eq(store_file_role(st, f.id, "carol", &role), 0);
	cr_assert_eq(role, STORE_FILE_NONE);
	cr_assert_eq(store_file_usage(st, "alice", &used), 0);
	cr_assert_eq(used, 5);
	cr_assert_eq(store_file_usage(st, "bob", &used), 0);
	cr_assert_eq(used, 0);
}

Test(store, files_refuse_unknown_users)
{
	const char *rcpts[] = {"bob", "nobody"};
	struct store_file f, g;

	cr_assert_eq(test_register_n("alice", 0, NULL), 0);
	cr_assert_eq(test_register_n("bob", 0, NULL), 0);
	test_file(&f, 7, "alice", 10, T0);
	cr_assert_eq(store_file_create(st, &f, rcpts, 2), SOTTO_ERR_NOTFOUND);
	cr_assert(strstr(store_last_error(st), "nobody") != NULL, "%s", store_last_error(st));
	/* Nothing of the refused upload stays behind. */
	cr_assert_eq(store_file_get(st, f.id, &g), SOTTO_ERR_NOTFOUND);
	cr_assert_eq(store_file_create(st, &f, rcpts, 0), SOTTO_ERR_RANGE);
	test_file(&f, 7, "nobody", 10, T0);
	cr_assert_eq(store_file_create(st, &f, rcpts, 1), SOTTO_ERR_NOTFOUND);
	test_file(&f, 7, "bad name!", 10, T0);
	cr_assert_eq(store_file_create(st, &f, rcpts, 1), SOTTO_ERR_INVALID);
}
