/* Unit tests for src/client-store.c, against real SQLite files. */
#include "config.h"

#include <sys/stat.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <sqlite3.h>

#include "crypto/util.h"
#include "keys/identity.h"
#include "src/client-store.h"
#include "tests/lib/tdir.h"

#ifndef Test
/* cppcheck does not read criterion.h: let it analyse each test as a plain function. */
#define TestSuite(...)         struct test_suite_unused
#define Test(suite, name, ...) void test_##suite##_##name(void)
#endif

#define T0     1700000000
#define MARKER "sotto-marker-7c1f0b9e-in-plain-sight"

static char dir[64];
static char db_path[128];
static uint8_t key[CLIENT_STORE_KEYBYTES];
static struct client_store *cs;

static void
test_open(void)
{
	char err[512];

	cr_assert_eq(client_store_open(&cs, dir, key, err, sizeof(err)), 0, "%s", err);
	cr_assert_not_null(cs);
}

static void
test_reopen(void)
{
	client_store_close(cs);
	cs = NULL;
	test_open();
}

static void
setup(void)
{
	cr_assert_eq(sotto_crypto_init(), 0);
	tdir_make(dir, sizeof(dir), "test_client_store");
	snprintf(db_path, sizeof(db_path), "%s/%s", dir, CLIENT_STORE_DB_FILE);
	sotto_random(key, sizeof(key));
	test_open();
}

static void
teardown(void)
{
	client_store_close(cs);
	cs = NULL;
	tdir_remove(dir);
}

TestSuite(client_store, .init = setup, .fini = teardown);

static void
msg_id(uint8_t id[CLIENT_STORE_MSG_ID_BYTES], unsigned n)
{
	memset(id, 0, CLIENT_STORE_MSG_ID_BYTES);
	id[0] = 0xa0;
	id[15] = (uint8_t)n;
}

/* Store a message with body text; returns its local id. */
static int64_t
add_msg(const char *peer, enum client_msg_dir dir_, unsigned n, int64_t ts, const char *text)
{
	struct client_msg m;
	int64_t id = 0;

	memset(&m, 0, sizeof(m));
	m.peer = peer;
	m.dir = dir_;
	msg_id(m.msg_id, n);
	m.body = (const uint8_t *)text;
	m.body_len = strlen(text);
	m.timestamp_ms = ts;
	m.state = dir_ == CLIENT_MSG_OUT ? CLIENT_MSG_SENT : CLIENT_MSG_RECEIVED;
	cr_assert_eq(client_store_msg_add(cs, &m, &id), 0, "%s", client_store_last_error(cs));
	cr_assert_gt(id, 0);
	return id;
}

/* What a history call saw. */
struct seen_msgs {
	int n;
	char bodies[16][64];
	int64_t ids[16];
	enum client_msg_state states[16];
	enum client_msg_dir dirs[16];
	int stop_after;
};

static int
collect(void *arg, const struct client_msg *m)
{
	struct seen_msgs *s = arg;

	cr_assert_lt(s->n, 16);
	cr_assert_lt(m->body_len, sizeof(s->bodies[0]));
	memcpy(s->bodies[s->n], m->body, m->body_len);
	s->bodies[s->n][m->body_len] = '\0';
	s->ids[s->n] = m->id;
	s->states[s->n] = m->state;
	s->dirs[s->n] = m->dir;
	s->n++;
	return s->stop_after != 0 && s->n >= s->stop_after ? 1 : 0;
}

static struct seen_msgs
history(const char *peer, int64_t before, size_t limit)
{
	struct seen_msgs s;

	memset(&s, 0, sizeof(s));
	cr_assert_eq(client_store_msg_history(cs, peer, before, limit, collect, &s), 0, "%s",
	        client_store_last_error(cs));
	return s;
}

/* 1 if the file at path (missing is fine) contains needle. */
static int
file_contains(const char *path, const char *needle)
{
	size_t n = strlen(needle), len = 0, cap = 0;
	char *data = NULL, chunk[65536];
	FILE *f = fopen(path, "rb");
	int found;

	if (f == NULL)
		return 0;
	for (;;) {
		size_t got = fread(chunk, 1, sizeof(chunk), f);

		if (got == 0)
			break;
		if (len + got > cap) {
			char *bigger;

			cap = (len + got) * 2;
			bigger = realloc(data, cap);
			cr_assert_not_null(bigger);
			data = bigger;
		}
		memcpy(data + len, chunk, got);
		len += got;
	}
	fclose(f);
	found = data != NULL && memmem(data, len, needle, n) != NULL;
	free(data);
	return found;
}

/* The database and its WAL contain needle. */
static int
db_contains(const char *needle)
{
	char wal[160];

	snprintf(wal, sizeof(wal), "%s-wal", db_path);
	return file_contains(db_path, needle) || file_contains(wal, needle);
}

Test(client_store, file_is_private_and_reopens)
{
	struct stat sb;
	char wal[160];

	cr_assert_eq(stat(db_path, &sb), 0);
	cr_assert_eq(sb.st_mode & 0777, 0600);
	cr_assert_eq(client_store_meta_set_str(cs, CLIENT_META_USERNAME, "alice"), 0);
	snprintf(wal, sizeof(wal), "%s-wal", db_path);
	cr_assert_eq(stat(wal, &sb), 0, "WAL mode");
	cr_assert_eq(sb.st_mode & 0777, 0600);
	test_reopen();
	{
		char *v = NULL;

		cr_assert_eq(client_store_meta_get_str(cs, CLIENT_META_USERNAME, &v), 0);
		cr_assert_str_eq(v, "alice");
		free(v);
	}
	/* A loose mode is tightened. */
	client_store_close(cs);
	cs = NULL;
	cr_assert_eq(chmod(db_path, 0644), 0);
	test_open();
	cr_assert_eq(stat(db_path, &sb), 0);
	cr_assert_eq(sb.st_mode & 0777, 0600);
}

Test(client_store, nothing_secret_in_plaintext_on_disk)
{
	static const char state[] = "ratchet-state:" MARKER;
	static const char body[] = "hello " MARKER " bob";
	struct seen_msgs s;
	uint8_t *got = NULL;
	size_t len = 0;

	cr_assert_not(db_contains(MARKER));
	cr_assert_eq(
	        client_store_session_put(cs, "bob", (const uint8_t *)state, sizeof(state) - 1, T0),
	        0);
	add_msg("bob", CLIENT_MSG_OUT, 1, 1000, body);
	cr_assert_eq(client_store_meta_set_str(cs, "note", MARKER), 0);
	cr_assert_eq(client_store_otk_add(cs, 1, (const uint8_t *)MARKER, strlen(MARKER), T0), 0);
	cr_assert_eq(client_store_spk_add(cs, 1, (const uint8_t *)MARKER, strlen(MARKER), T0), 0);
	/* Neither while open (the WAL holds the new pages)... */
	cr_assert_not(db_contains(MARKER), "marker found in the open database");
	/* (The scan does see what is stored in clear: peer names, for the indexes.) */
	cr_assert(db_contains("bob"));
	/* ...nor after a checkpoint and close. */
	client_store_close(cs);
	cs = NULL;
	cr_assert_not(db_contains(MARKER), "marker found in the closed database");
	cr_assert_not(db_contains("ratchet-state"));

	/* Yet everything reads back under the right key. */
	test_open();
	cr_assert_eq(client_store_session_get(cs, "bob", &got, &len), 0);
	cr_assert_eq(len, sizeof(state) - 1);
	cr_assert_eq(memcmp(got, state, len), 0);
	client_store_free_secret(got, len);
	s = history("bob", INT64_MAX, 10);
	cr_assert_eq(s.n, 1);
	cr_assert_str_eq(s.bodies[0], body);
}

Test(client_store, wrong_key_is_refused_clearly)
{
	uint8_t other[CLIENT_STORE_KEYBYTES];
	struct client_store *bad = (struct client_store *)1;
	char err[512] = "";

	cr_assert_eq(client_store_session_put(cs, "bob", (const uint8_t *)"s", 1, T0), 0);
	client_store_close(cs);
	cs = NULL;
	memcpy(other, key, sizeof(other));
	other[0] ^= 1;
	cr_assert_eq(client_store_open(&bad, dir, other, err, sizeof(err)), SOTTO_ERR_VERIFY);
	cr_assert_null(bad);
	cr_assert(strstr(err, db_path) != NULL, "%s", err);
	cr_assert(strstr(err, "another identity key") != NULL, "%s", err);
	/* The right key still works: nothing was changed by the failed open. */
	test_open();
}

/* Run one SQL statement directly on the database file (store closed). */
static void
raw_sql(const char *sql)
{
	sqlite3 *db = NULL;
	char *msg = NULL;

	cr_assert_eq(sqlite3_open(db_path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, &msg), SQLITE_OK, "%s", msg ? msg : "");
	sqlite3_close(db);
}

Test(client_store, sealed_values_are_bound_to_their_rows)
{
	uint8_t *got = NULL;
	size_t len = 0;

	add_msg("bob", CLIENT_MSG_IN, 1, 1000, "one");
	add_msg("bob", CLIENT_MSG_IN, 2, 2000, "two");
	cr_assert_eq(client_store_session_put(cs, "bob", (const uint8_t *)"bob-state", 9, T0), 0);
	cr_assert_eq(
	        client_store_session_put(cs, "carol", (const uint8_t *)"carol-state", 11, T0), 0);
	client_store_close(cs);
	cs = NULL;
	/* Swap the sealed bodies of two messages, and move carol's state to bob. */
	raw_sql("UPDATE messages SET body = (SELECT body FROM messages m2 WHERE m2.id <> "
	        "messages.id)");
	raw_sql("UPDATE sessions SET state = (SELECT state FROM sessions WHERE peer = 'carol')"
	        " WHERE peer = 'bob'");
	test_open();
	{
		struct seen_msgs t;

		memset(&t, 0, sizeof(t));
		cr_assert_eq(client_store_msg_history(cs, "bob", INT64_MAX, 10, collect, &t),
		        SOTTO_ERR_VERIFY);
		cr_assert_eq(t.n, 0);
		cr_assert(strstr(client_store_last_error(cs), "does not decrypt") != NULL, "%s",
		        client_store_last_error(cs));
	}
	cr_assert_eq(client_store_session_get(cs, "bob", &got, &len), SOTTO_ERR_VERIFY);
	cr_assert_null(got);
	cr_assert_eq(client_store_session_get(cs, "carol", &got, &len), 0);
	client_store_free_secret(got, len);
}

Test(client_store, state_and_message_commit_or_roll_back_together)
{
	struct client_msg m;
	struct seen_msgs s;
	uint8_t *got = NULL;
	size_t len = 0;

	/* Rolled back: neither the state nor the message. */
	cr_assert_eq(client_store_begin(cs), 0);
	cr_assert(client_store_in_transaction(cs));
	cr_assert_eq(client_store_begin(cs), SOTTO_ERR_INVALID);
	cr_assert_eq(client_store_session_put(cs, "bob", (const uint8_t *)"state-1", 7, T0), 0);
	add_msg("bob", CLIENT_MSG_OUT, 1, 1000, "first");
	client_store_rollback(cs);
	cr_assert_not(client_store_in_transaction(cs));
	cr_assert_eq(client_store_session_get(cs, "bob", &got, &len), SOTTO_ERR_NOTFOUND);
	s = history("bob", INT64_MAX, 10);
	cr_assert_eq(s.n, 0);

	/* Committed: both, and they survive a reopen. */
	cr_assert_eq(client_store_begin(cs), 0);
	cr_assert_eq(client_store_session_put(cs, "bob", (const uint8_t *)"state-2", 7, T0), 0);
	add_msg("bob", CLIENT_MSG_OUT, 1, 1000, "first");
	cr_assert_eq(client_store_commit(cs), 0);
	cr_assert_eq(client_store_commit(cs), SOTTO_ERR_INVALID);
	test_reopen();
	cr_assert_eq(client_store_session_get(cs, "bob", &got, &len), 0);
	cr_assert_eq(len, 7);
	cr_assert_eq(memcmp(got, "state-2", 7), 0);
	client_store_free_secret(got, len);
	s = history("bob", INT64_MAX, 10);
	cr_assert_eq(s.n, 1);

	/* A failing call inside a transaction undoes only itself. */
	cr_assert_eq(client_store_begin(cs), 0);
	cr_assert_eq(client_store_session_put(cs, "bob", (const uint8_t *)"state-3", 7, T0), 0);
	memset(&m, 0, sizeof(m));
	m.peer = "bob";
	m.dir = CLIENT_MSG_OUT;
	msg_id(m.msg_id, 1);
	m.body = (const uint8_t *)"dup";
	m.body_len = 3;
	m.state = CLIENT_MSG_SENT;
	cr_assert_eq(client_store_msg_add(cs, &m, NULL), SOTTO_ERR_EXISTS);
	cr_assert_eq(client_store_commit(cs), 0);
	cr_assert_eq(client_store_session_get(cs, "bob", &got, &len), 0);
	cr_assert_eq(memcmp(got, "state-3", 7), 0);
	client_store_free_secret(got, len);

	/* Closing with a transaction open rolls it back. */
	cr_assert_eq(client_store_begin(cs), 0);
	cr_assert_eq(client_store_session_delete(cs, "bob"), 0);
	test_reopen();
	cr_assert_eq(client_store_session_get(cs, "bob", &got, &len), 0);
	client_store_free_secret(got, len);
	cr_assert_eq(client_store_session_delete(cs, "bob"), 0);
	cr_assert_eq(client_store_session_get(cs, "bob", &got, &len), SOTTO_ERR_NOTFOUND);
	cr_assert_eq(client_store_session_delete(cs, "bob"), 0);
}

Test(client_store, history_in_time_order_with_limit)
{
	struct seen_msgs s;
	int64_t a, b, c, d;

	/* Inserted out of time order; two share a timestamp. */
	c = add_msg("bob", CLIENT_MSG_IN, 3, 3000, "c");
	a = add_msg("bob", CLIENT_MSG_OUT, 1, 1000, "a");
	b = add_msg("Bob", CLIENT_MSG_IN, 2, 2000, "b");
	d = add_msg("bob", CLIENT_MSG_OUT, 4, 3000, "d");
	add_msg("carol", CLIENT_MSG_IN, 5, 1500, "other");
	cr_assert(a > c && d > b);

	s = history("BOB", INT64_MAX, 10);
	cr_assert_eq(s.n, 4);
	cr_assert_str_eq(s.bodies[0], "a");
	cr_assert_str_eq(s.bodies[1], "b");
	cr_assert_str_eq(s.bodies[2], "c");
	cr_assert_str_eq(s.bodies[3], "d");
	cr_assert_eq(s.ids[0], a);
	cr_assert_eq(s.dirs[0], CLIENT_MSG_OUT);
	cr_assert_eq(s.states[1], CLIENT_MSG_RECEIVED);

	/* The newest two, still oldest first. */
	s = history("bob", INT64_MAX, 2);
	cr_assert_eq(s.n, 2);
	cr_assert_str_eq(s.bodies[0], "c");
	cr_assert_str_eq(s.bodies[1], "d");
	/* Paging back. */
	s = history("bob", 3000, 10);
	cr_assert_eq(s.n, 2);
	cr_assert_str_eq(s.bodies[0], "a");
	cr_assert_str_eq(s.bodies[1], "b");
	/* Stopping early is not an error. */
	memset(&s, 0, sizeof(s));
	s.stop_after = 1;
	cr_assert_eq(client_store_msg_history(cs, "bob", INT64_MAX, 10, collect, &s), 0);
	cr_assert_eq(s.n, 1);
	/* Nobody, and a limit of 0. */
	s = history("nobody", INT64_MAX, 10);
	cr_assert_eq(s.n, 0);
	s = history("bob", INT64_MAX, 0);
	cr_assert_eq(s.n, 0);
	/*
	 * An empty body and a group id are kept; a group's messages are the
	 * group's history, not the sender's direct conversation.
	 */
	{
		static const uint8_t group[CLIENT_STORE_GROUP_BYTES] = {1, 2, 3};
		static const uint8_t other[CLIENT_STORE_GROUP_BYTES] = {4, 5, 6};
		struct client_msg m;

		memset(&m, 0, sizeof(m));
		m.peer = "dave";
		m.group = group;
		m.dir = CLIENT_MSG_IN;
		msg_id(m.msg_id, 9);
		m.state = CLIENT_MSG_RECEIVED;
		cr_assert_eq(client_store_msg_add(cs, &m, NULL), 0);
		m.peer = "erin";
		m.body = (const uint8_t *)"from erin";
		m.body_len = 9;
		msg_id(m.msg_id, 10);
		m.timestamp_ms = 1;
		cr_assert_eq(client_store_msg_add(cs, &m, NULL), 0);
		s = history("dave", INT64_MAX, 10);
		cr_assert_eq(s.n, 0);
		memset(&s, 0, sizeof(s));
		cr_assert_eq(
		        client_store_msg_history_group(cs, group, INT64_MAX, 10, collect, &s), 0);
		cr_assert_eq(s.n, 2);
		cr_assert_str_eq(s.bodies[0], "");
		cr_assert_str_eq(s.bodies[1], "from erin");
		memset(&s, 0, sizeof(s));
		cr_assert_eq(
		        client_store_msg_history_group(cs, other, INT64_MAX, 10, collect, &s), 0);
		cr_assert_eq(s.n, 0);
	}
}

Test(client_store, message_states)
{
	struct seen_msgs s;
	uint8_t id[CLIENT_STORE_MSG_ID_BYTES];

	add_msg("bob", CLIENT_MSG_OUT, 1, 1000, "out");
	add_msg("bob", CLIENT_MSG_IN, 1, 1001, "in, same id, other direction");
	msg_id(id, 1);

	cr_assert_eq(
	        client_store_msg_set_state(cs, "bob", CLIENT_MSG_OUT, id, CLIENT_MSG_DELIVERED), 0);
	s = history("bob", INT64_MAX, 10);
	cr_assert_eq(s.states[0], CLIENT_MSG_DELIVERED);
	cr_assert_eq(s.states[1], CLIENT_MSG_RECEIVED);
	cr_assert_eq(client_store_msg_set_state(cs, "bob", CLIENT_MSG_OUT, id, CLIENT_MSG_READ), 0);
	/* A late delivery receipt does not hide "read". */
	cr_assert_eq(
	        client_store_msg_set_state(cs, "bob", CLIENT_MSG_OUT, id, CLIENT_MSG_DELIVERED), 0);
	s = history("bob", INT64_MAX, 10);
	cr_assert_eq(s.states[0], CLIENT_MSG_READ);
	/* Incoming: received, then read once shown. */
	cr_assert_eq(client_store_msg_set_state(cs, "bob", CLIENT_MSG_IN, id, CLIENT_MSG_READ), 0);
	s = history("bob", INT64_MAX, 10);
	cr_assert_eq(s.states[1], CLIENT_MSG_READ);
	/* Failed. */
	add_msg("bob", CLIENT_MSG_OUT, 2, 2000, "doomed");
	msg_id(id, 2);
	cr_assert_eq(
	        client_store_msg_set_state(cs, "bob", CLIENT_MSG_OUT, id, CLIENT_MSG_FAILED), 0);
	cr_assert_eq(client_store_msg_set_state(cs, "bob", CLIENT_MSG_OUT, id, CLIENT_MSG_SENT), 0);
	s = history("bob", INT64_MAX, 10);
	cr_assert_eq(s.states[2], CLIENT_MSG_FAILED);
	cr_assert_str_eq(client_msg_state_name(CLIENT_MSG_FAILED), "failed");
	cr_assert_str_eq(client_msg_state_name(CLIENT_MSG_DELIVERED), "delivered");

	msg_id(id, 77);
	cr_assert_eq(client_store_msg_set_state(cs, "bob", CLIENT_MSG_OUT, id, CLIENT_MSG_READ),
	        SOTTO_ERR_NOTFOUND);
	cr_assert_eq(
	        client_store_msg_set_state(cs, "bob", CLIENT_MSG_OUT, id, (enum client_msg_state)9),
	        SOTTO_ERR_INVALID);
}

Test(client_store, bad_messages)
{
	struct client_msg m;

	memset(&m, 0, sizeof(m));
	m.peer = "Not A Name";
	m.dir = CLIENT_MSG_IN;
	m.state = CLIENT_MSG_RECEIVED;
	cr_assert_eq(client_store_msg_add(cs, &m, NULL), SOTTO_ERR_INVALID);
	m.peer = "bob";
	m.dir = (enum client_msg_dir)3;
	cr_assert_eq(client_store_msg_add(cs, &m, NULL), SOTTO_ERR_INVALID);
	m.dir = CLIENT_MSG_IN;
	m.body_len = CLIENT_STORE_BODY_MAX + 1;
	m.body = (const uint8_t *)"x";
	cr_assert_eq(client_store_msg_add(cs, &m, NULL), SOTTO_ERR_RANGE);
	cr_assert_eq(client_store_session_put(cs, "bob", NULL, CLIENT_STORE_STATE_MAX + 1, T0),
	        SOTTO_ERR_RANGE);
}

Test(client_store, seen_ids_drop_duplicates_and_prune)
{
	uint8_t id1[CLIENT_STORE_MSG_ID_BYTES], id2[CLIENT_STORE_MSG_ID_BYTES];
	uint32_t pruned = 99;
	int seen = -1;

	msg_id(id1, 1);
	msg_id(id2, 2);
	cr_assert_eq(client_store_seen_add(cs, "bob", id1, T0, &seen), 0);
	cr_assert_eq(seen, 0);
	cr_assert_eq(client_store_seen_add(cs, "BOB", id1, T0 + 1, &seen), 0);
	cr_assert_eq(seen, 1);
	/* The same id from someone else is another envelope. */
	cr_assert_eq(client_store_seen_add(cs, "carol", id1, T0, &seen), 0);
	cr_assert_eq(seen, 0);
	cr_assert_eq(client_store_seen_add(cs, "bob", id2, T0 + 10 * 86400, &seen), 0);
	cr_assert_eq(seen, 0);

	/* Thirty days after T0 + 1 day: the T0 entries go, the later one stays. */
	cr_assert_eq(
	        client_store_seen_prune(cs, T0 + 31 * 86400, CLIENT_STORE_SEEN_DAYS, &pruned), 0);
	cr_assert_eq(pruned, 2);
	cr_assert_eq(client_store_seen_add(cs, "bob", id2, T0 + 31 * 86400, &seen), 0);
	cr_assert_eq(seen, 1);
	cr_assert_eq(client_store_seen_add(cs, "bob", id1, T0 + 31 * 86400, &seen), 0);
	cr_assert_eq(seen, 0);
	cr_assert_eq(client_store_seen_prune(cs, T0, 30, NULL), 0);
}

Test(client_store, signed_prekey_rotation_with_grace)
{
	uint8_t *secret = NULL;
	size_t len = 0;
	uint32_t id = 0, pruned = 0;
	int64_t created = 0;
	int current = -1;

	cr_assert_eq(client_store_spk_current(cs, &id, &created), SOTTO_ERR_NOTFOUND);
	cr_assert_eq(client_store_spk_add(cs, 1, (const uint8_t *)"spk-one", 7, T0), 0);
	cr_assert_eq(
	        client_store_spk_add(cs, 1, (const uint8_t *)"again", 5, T0), SOTTO_ERR_EXISTS);
	cr_assert_eq(client_store_spk_current(cs, &id, &created), 0);
	cr_assert_eq(id, 1);
	cr_assert_eq(created, T0);

	/* A week later: rotate; the old one still opens sessions. */
	cr_assert_eq(client_store_spk_add(cs, 2, (const uint8_t *)"spk-two", 7, T0 + 7 * 86400), 0);
	cr_assert_eq(client_store_spk_current(cs, &id, &created), 0);
	cr_assert_eq(id, 2);
	cr_assert_eq(client_store_spk_get(cs, 1, &secret, &len, &current), 0);
	cr_assert_eq(current, 0);
	cr_assert_eq(len, 7);
	cr_assert_eq(memcmp(secret, "spk-one", 7), 0);
	client_store_free_secret(secret, len);
	cr_assert_eq(client_store_spk_get(cs, 2, &secret, &len, &current), 0);
	cr_assert_eq(current, 1);
	client_store_free_secret(secret, len);

	/* Within the grace period nothing is pruned; after it, the previous key goes. */
	cr_assert_eq(client_store_spk_prune(cs, T0 + 8 * 86400, 2 * 86400, &pruned), 0);
	cr_assert_eq(pruned, 0);
	cr_assert_eq(client_store_spk_prune(cs, T0 + 9 * 86400, 2 * 86400, &pruned), 0);
	cr_assert_eq(pruned, 1);
	cr_assert_eq(client_store_spk_get(cs, 1, &secret, &len, NULL), SOTTO_ERR_NOTFOUND);
	cr_assert_null(secret);
	/* The current key is never pruned. */
	cr_assert_eq(client_store_spk_prune(cs, T0 + 900 * 86400, 0, &pruned), 0);
	cr_assert_eq(pruned, 0);
	cr_assert_eq(client_store_spk_get(cs, 2, &secret, &len, NULL), 0);
	client_store_free_secret(secret, len);
	/* And a previous key survives a reopen. */
	cr_assert_eq(client_store_spk_add(cs, 3, (const uint8_t *)"spk-3", 5, T0 + 14 * 86400), 0);
	test_reopen();
	cr_assert_eq(client_store_spk_get(cs, 2, &secret, &len, &current), 0);
	cr_assert_eq(current, 0);
	client_store_free_secret(secret, len);
	cr_assert_eq(client_store_spk_current(cs, &id, NULL), 0);
	cr_assert_eq(id, 3);
}

Test(client_store, one_time_prekeys_consume_and_count)
{
	uint8_t *secret = NULL, buf[32];
	size_t len = 0;
	uint32_t count = 99, first = 0, i;

	cr_assert_eq(client_store_otk_count(cs, &count), 0);
	cr_assert_eq(count, 0);
	cr_assert_eq(client_store_next_ids(cs, CLIENT_COUNTER_OTK, 5, &first), 0);
	cr_assert_eq(first, 1);
	for (i = first; i < first + 5; i++) {
		memset(buf, (int)i, sizeof(buf));
		cr_assert_eq(client_store_otk_add(cs, i, buf, sizeof(buf), T0), 0);
	}
	cr_assert_eq(client_store_otk_add(cs, 3, buf, sizeof(buf), T0), SOTTO_ERR_EXISTS);
	cr_assert_eq(client_store_otk_count(cs, &count), 0);
	cr_assert_eq(count, 5);

	cr_assert_eq(client_store_otk_take(cs, 3, &secret, &len), 0);
	cr_assert_eq(len, 32);
	cr_assert_eq(secret[0], 3);
	cr_assert_eq(secret[31], 3);
	client_store_free_secret(secret, len);
	cr_assert_eq(client_store_otk_take(cs, 3, &secret, &len), SOTTO_ERR_NOTFOUND);
	cr_assert_null(secret);
	cr_assert_eq(client_store_otk_count(cs, &count), 0);
	cr_assert_eq(count, 4);

	/* Taken inside a transaction that fails: the key is back. */
	cr_assert_eq(client_store_begin(cs), 0);
	cr_assert_eq(client_store_otk_take(cs, 4, &secret, &len), 0);
	client_store_free_secret(secret, len);
	cr_assert_eq(client_store_otk_count(cs, &count), 0);
	cr_assert_eq(count, 3);
	client_store_rollback(cs);
	cr_assert_eq(client_store_otk_count(cs, &count), 0);
	cr_assert_eq(count, 4);
	cr_assert_eq(client_store_otk_take(cs, 4, &secret, &len), 0);
	client_store_free_secret(secret, len);

	/* Ids from the counter never repeat, even across a reopen. */
	cr_assert_eq(client_store_next_ids(cs, CLIENT_COUNTER_OTK, 100, &first), 0);
	cr_assert_eq(first, 6);
	test_reopen();
	cr_assert_eq(client_store_next_ids(cs, CLIENT_COUNTER_OTK, 1, &first), 0);
	cr_assert_eq(first, 106);
	cr_assert_eq(client_store_next_ids(cs, CLIENT_COUNTER_SPK, 1, &first), 0);
	cr_assert_eq(first, 1);
	cr_assert_eq(client_store_next_ids(cs, CLIENT_COUNTER_SPK, 0, &first), SOTTO_ERR_INVALID);
	cr_assert_eq(client_store_next_ids(cs, "bad name", 1, &first), SOTTO_ERR_INVALID);
	cr_assert_eq(client_store_otk_add(cs, 7, NULL, CLIENT_STORE_PREKEY_MAX + 1, T0),
	        SOTTO_ERR_RANGE);
}

Test(client_store, meta_values)
{
	uint8_t *v = NULL;
	size_t len = 0;
	char *s = NULL;
	int64_t n = 0;

	cr_assert_eq(client_store_meta_get(cs, CLIENT_META_SERVER, &v, &len), SOTTO_ERR_NOTFOUND);
	cr_assert_eq(client_store_meta_set_str(cs, CLIENT_META_SERVER, "chat.example.org:7443"), 0);
	cr_assert_eq(client_store_meta_set_int(cs, CLIENT_META_SPK_ROTATED, -42), 0);
	cr_assert_eq(client_store_meta_set(cs, "blob", "a\0b", 3), 0);
	test_reopen();
	cr_assert_eq(client_store_meta_get_str(cs, CLIENT_META_SERVER, &s), 0);
	cr_assert_str_eq(s, "chat.example.org:7443");
	free(s);
	cr_assert_eq(client_store_meta_get_int(cs, CLIENT_META_SPK_ROTATED, &n), 0);
	cr_assert_eq(n, -42);
	cr_assert_eq(client_store_meta_get(cs, "blob", &v, &len), 0);
	cr_assert_eq(len, 3);
	cr_assert_eq(memcmp(v, "a\0b", 3), 0);
	client_store_free_secret(v, len);
	cr_assert_eq(client_store_meta_get_str(cs, "blob", &s), SOTTO_ERR_FORMAT);
	cr_assert_null(s);
	cr_assert_eq(client_store_meta_get_int(cs, CLIENT_META_SERVER, &n), SOTTO_ERR_FORMAT);
	cr_assert_eq(client_store_meta_set_str(cs, CLIENT_META_SERVER, "other:1"), 0);
	cr_assert_eq(client_store_meta_get_str(cs, CLIENT_META_SERVER, &s), 0);
	cr_assert_str_eq(s, "other:1");
	free(s);
	cr_assert_eq(client_store_meta_delete(cs, CLIENT_META_SERVER), 0);
	cr_assert_eq(client_store_meta_get_str(cs, CLIENT_META_SERVER, &s), SOTTO_ERR_NOTFOUND);
	cr_assert_eq(client_store_meta_delete(cs, CLIENT_META_SERVER), 0);
	cr_assert_eq(client_store_meta_set_str(cs, "", "x"), SOTTO_ERR_INVALID);
	cr_assert_eq(client_store_meta_set_str(cs, "with space", "x"), SOTTO_ERR_INVALID);
}

Test(client_store, newer_schema_is_refused)
{
	struct client_store *other = NULL;
	char err[512];

	client_store_close(cs);
	cs = NULL;
	raw_sql("PRAGMA user_version = 99");
	cr_assert_eq(client_store_open(&other, dir, key, err, sizeof(err)), SOTTO_ERR_UNSUPPORTED);
	cr_assert_null(other);
	cr_assert(strstr(err, "upgrade sotto") != NULL, "%s", err);
	/* Back to the current schema (4: files), so teardown can reopen it. */
	raw_sql("PRAGMA user_version = 4");
	test_open();
}

Test(client_store, store_key_from_identity, .timeout = 60)
{
	struct identity *a = NULL, *b = NULL, *loaded = NULL;
	uint8_t ka[CLIENT_STORE_KEYBYTES], kb[CLIENT_STORE_KEYBYTES], kl[CLIENT_STORE_KEYBYTES];
	char path[160];
	size_t i;

	for (i = 0; i < 2; i++) {
		enum identity_type type = i == 0 ? IDENTITY_ED25519 : IDENTITY_RSA;

		cr_assert_eq(identity_generate(&a, type, 3072), 0);
		cr_assert_eq(identity_generate(&b, type, 3072), 0);
		cr_assert_eq(client_store_key_from_identity(ka, a), 0);
		cr_assert_eq(client_store_key_from_identity(kb, a), 0);
		cr_assert_eq(memcmp(ka, kb, sizeof(ka)), 0, "deterministic");
		cr_assert_eq(client_store_key_from_identity(kb, b), 0);
		cr_assert_neq(memcmp(ka, kb, sizeof(ka)), 0, "per identity");
		/* The key survives a save and load of the identity (passphrase or not). */
		snprintf(path, sizeof(path), "%s/id%zu", dir, i);
		cr_assert_eq(identity_save(a, path, "pass phrase", NULL, 0), 0);
		cr_assert_eq(identity_load(&loaded, NULL, path, "pass phrase"), 0);
		cr_assert_eq(client_store_key_from_identity(kl, loaded), 0);
		cr_assert_eq(memcmp(ka, kl, sizeof(ka)), 0, "stable across save and load");
		identity_free(loaded);
		identity_free(a);
		identity_free(b);
		loaded = a = b = NULL;
	}
	cr_assert_eq(client_store_key_from_identity(ka, NULL), SOTTO_ERR_INVALID);
}

/* files: what client_store_offer_list saw. */
struct seen_offers {
	int n;
	uint32_t ids[8];
	char recs[8][64];
};

static int
offer_seen(void *arg, uint32_t id, const uint8_t *rec, size_t len)
{
	struct seen_offers *s = arg;

	cr_assert_lt(s->n, 8);
	s->ids[s->n] = id;
	snprintf(s->recs[s->n], sizeof(s->recs[0]), "%.*s", (int)len, (const char *)rec);
	s->n++;
	return 0;
}

/* Offers are numbered from 1, kept sealed, replaced and deleted; numbers stay small. */
Test(client_store, file_offers)
{
	static const char rec1[] = "offer-one:" MARKER;
	struct seen_offers s;
	uint32_t a, b, c;
	uint8_t *got = NULL;
	size_t len = 0;

	cr_assert_eq(client_store_offer_add(cs, (const uint8_t *)rec1, strlen(rec1), T0, &a), 0);
	cr_assert_eq(client_store_offer_add(cs, (const uint8_t *)"two", 3, T0, &b), 0);
	cr_assert_eq(a, 1);
	cr_assert_eq(b, 2);
	cr_assert_not(db_contains(MARKER), "an offer is in clear");
	cr_assert_eq(client_store_offer_get(cs, a, &got, &len), 0);
	cr_assert_eq(len, strlen(rec1));
	cr_assert_eq(memcmp(got, rec1, len), 0);
	client_store_free_secret(got, len);
	cr_assert_eq(client_store_offer_put(cs, b, (const uint8_t *)"two, half done", 14, T0), 0);
	cr_assert_eq(
	        client_store_offer_put(cs, 9, (const uint8_t *)"x", 1, T0), SOTTO_ERR_NOTFOUND);
	cr_assert_eq(client_store_offer_get(cs, 9, &got, &len), SOTTO_ERR_NOTFOUND);
	memset(&s, 0, sizeof(s));
	cr_assert_eq(client_store_offer_list(cs, offer_seen, &s), 0);
	cr_assert_eq(s.n, 2);
	cr_assert_eq(s.ids[1], 2);
	cr_assert_str_eq(s.recs[1], "two, half done");
	/* The highest number goes, then comes back; the lower one stays. */
	cr_assert_eq(client_store_offer_delete(cs, b), 0);
	cr_assert_eq(client_store_offer_delete(cs, b), 0);
	cr_assert_eq(client_store_offer_add(cs, (const uint8_t *)"three", 5, T0, &c), 0);
	cr_assert_eq(c, 2);
	test_reopen();
	memset(&s, 0, sizeof(s));
	cr_assert_eq(client_store_offer_list(cs, offer_seen, &s), 0);
	cr_assert_eq(s.n, 2);
	cr_assert_str_eq(s.recs[0], rec1);
	cr_assert_str_eq(s.recs[1], "three");
	cr_assert_eq(client_store_offer_add(cs, NULL, 0, T0, &c), SOTTO_ERR_INVALID);
}

/* Uploads are found by name, which is not stored; the record is sealed. */
Test(client_store, file_uploads)
{
	static const char name[] = "/home/u/" MARKER ".pdf\n123\n1.0\nbob";
	static const char rec[] = "upload-key:" MARKER;
	uint8_t *got = NULL;
	size_t len = 0;

	cr_assert_eq(client_store_upload_get(cs, name, &got, &len), SOTTO_ERR_NOTFOUND);
	cr_assert_eq(client_store_upload_put(cs, name, (const uint8_t *)rec, strlen(rec), T0), 0);
	cr_assert_not(db_contains(MARKER), "the upload's name or record is in clear");
	test_reopen();
	cr_assert_eq(client_store_upload_get(cs, name, &got, &len), 0);
	cr_assert_eq(len, strlen(rec));
	cr_assert_eq(memcmp(got, rec, len), 0);
	client_store_free_secret(got, len);
	cr_assert_eq(client_store_upload_get(cs, "/other", &got, &len), SOTTO_ERR_NOTFOUND);
	cr_assert_eq(client_store_upload_delete(cs, name), 0);
	cr_assert_eq(client_store_upload_get(cs, name, &got, &len), SOTTO_ERR_NOTFOUND);
}
