/*
 * Unit tests for src/client-e2e.c: sessions between two parties, each with a
 * real client.db, and envelopes passed by hand, so that the tests can replay
 * and reorder them as a server could.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>

#include "crypto/buf.h"
#include "crypto/ecc.h"
#include "crypto/util.h"
#include "src/client-e2e.h"
#include "src/sigmsg.h"
#include "tests/lib/tdir.h"

#ifndef Test
/* cppcheck does not read criterion.h: let it analyse each test as a plain function. */
#define TestSuite(...)         struct test_suite_unused
#define Test(suite, name, ...) void test_##suite##_##name(void)
#endif

#define T0     1700000000
#define DAY    86400
#define MAXMSG 4096

struct party {
	char name[PROTO_USERNAME_MAX + 1];
	char dir[64];
	struct identity *id;
	struct client_store *cs;
	uint32_t spk_id;
	uint8_t spk_pub[X25519_KEYBYTES];
	uint8_t sig[IDENTITY_SIG_MAX];
	size_t siglen;
	uint32_t otk_id;
	uint8_t otk_pub[X25519_KEYBYTES];
	Sotto__Bundle b;
	Sotto__SignedPrekey spk;
	Sotto__OneTimePrekey otk;
};

/* One envelope in flight. */
struct env {
	uint8_t *sealed;
	size_t len;
};

static struct party alice, bob, bob2;

/* Make a signed prekey with id the current one. */
static void
party_spk(struct party *p, uint32_t id)
{
	uint8_t sec[X25519_KEYBYTES];
	struct buf m;

	p->spk_id = id;
	x25519_keypair(p->spk_pub, sec);
	cr_assert_eq(client_store_spk_add(p->cs, id, sec, sizeof(sec), T0), 0);
	sotto_wipe(sec, sizeof(sec));
	buf_init(&m, 0);
	cr_assert_eq(sigmsg_spk(&m, id, p->spk_pub, T0), 0);
	cr_assert_eq(
	        identity_sign(p->sig, sizeof(p->sig), &p->siglen, p->id, buf_ptr(&m), buf_len(&m)),
	        0);
	buf_free(&m);
}

static void
party_init(struct party *p, const char *name)
{
	uint8_t key[CLIENT_STORE_KEYBYTES];
	char err[512];

	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", name);
	tdir_make(p->dir, sizeof(p->dir), "sotto-e2e");
	cr_assert_eq(identity_generate(&p->id, IDENTITY_ED25519, 0), 0);
	cr_assert_eq(client_store_key_from_identity(key, p->id), 0);
	cr_assert_eq(client_store_open(&p->cs, p->dir, key, err, sizeof(err)), 0, "%s", err);
	sotto_wipe(key, sizeof(key));
	party_spk(p, 1);
}

static void
party_free(struct party *p)
{
	if (p->cs == NULL)
		return;
	client_store_close(p->cs);
	identity_free(p->id);
	tdir_remove(p->dir);
	memset(p, 0, sizeof(*p));
}

/* The bundle the server would hand out for p, with a fresh one-time prekey if otk. */
static const Sotto__Bundle *
party_bundle(struct party *p, int otk)
{
	uint8_t sec[X25519_KEYBYTES];

	sotto__bundle__init(&p->b);
	sotto__signed_prekey__init(&p->spk);
	p->b.username = p->name;
	p->b.identity_key = proto_bytes(p->id->pub.der, p->id->pub.derlen);
	p->b.identity_type = (uint32_t)p->id->pub.type;
	p->spk.id = p->spk_id;
	p->spk.public_key = proto_bytes(p->spk_pub, sizeof(p->spk_pub));
	p->spk.signature = proto_bytes(p->sig, p->siglen);
	p->spk.created = T0;
	p->b.spk = &p->spk;
	if (otk) {
		sotto__one_time_prekey__init(&p->otk);
		p->otk_id++;
		x25519_keypair(p->otk_pub, sec);
		cr_assert_eq(client_store_otk_add(p->cs, p->otk_id, sec, sizeof(sec), T0), 0);
		sotto_wipe(sec, sizeof(sec));
		p->otk.id = p->otk_id;
		p->otk.public_key = proto_bytes(p->otk_pub, sizeof(p->otk_pub));
		p->b.otk = &p->otk;
	}
	return &p->b;
}

static void
setup(void)
{
	cr_assert_eq(sotto_crypto_init(), 0);
	party_init(&alice, "alice");
	party_init(&bob, "bob");
}

static void
teardown(void)
{
	party_free(&alice);
	party_free(&bob);
	party_free(&bob2);
}

TestSuite(client_e2e, .init = setup, .fini = teardown, .timeout = 60);

/* from seals text for to (starting a session from to's bundle if needed) and saves. */
static struct env
send_text(struct party *from, struct party *to, const char *text, int otk)
{
	struct e2e_session *s = NULL;
	struct identity_pub *pub = NULL;
	Sottoc__Content c;
	Sottoc__Text tx;
	struct env e;
	int r;

	r = e2e_session_load(from->cs, to->name, &s);
	if (r == SOTTO_ERR_NOTFOUND) {
		const Sotto__Bundle *b = party_bundle(to, otk);

		cr_assert_eq(e2e_bundle_check(b, &pub), 0);
		cr_assert_eq(e2e_session_initiate(&s, from->id, pub, b), 0);
		identity_pub_free(pub);
	} else
		cr_assert_eq(r, 0);
	sottoc__content__init(&c);
	sottoc__text__init(&tx);
	tx.body = (char *)(uintptr_t)text;
	c.body_case = SOTTOC__CONTENT__BODY_TEXT;
	c.text = &tx;
	cr_assert_eq(e2e_seal(s, from->id, &c, &e.sealed, &e.len), 0);
	cr_assert_eq(e2e_session_save(from->cs, to->name, s, T0), 0);
	e2e_session_free(s);
	return e;
}

/*
 * to opens e from from as sotto receive does, in one transaction that is
 * kept only if it opens: the result, the text in out and whether a header
 * was answered in *fresh.
 */
static int
recv_env(struct party *to, struct party *from, const struct env *e, char *out, int *fresh)
{
	struct e2e_session *s = NULL;
	Sottoc__Content *c = NULL;
	int r, f = 0;

	out[0] = '\0';
	cr_assert_eq(client_store_begin(to->cs), 0);
	r = e2e_open(to->cs, to->id, to->name, from->name, e->sealed, e->len, &s, &f, &c);
	if (r != 0) {
		client_store_rollback(to->cs);
		cr_assert_null(s);
		cr_assert_null(c);
		return r;
	}
	cr_assert_eq(c->body_case, SOTTOC__CONTENT__BODY_TEXT);
	snprintf(out, MAXMSG, "%s", c->text->body);
	cr_assert_eq(e2e_session_save(to->cs, from->name, s, T0), 0);
	cr_assert_eq(client_store_commit(to->cs), 0);
	sottoc__content__free_unpacked(c, NULL);
	e2e_session_free(s);
	if (fresh != NULL)
		*fresh = f;
	return 0;
}

/* to must open e, showing want. */
static void
expect(struct party *to, struct party *from, struct env e, const char *want)
{
	char got[MAXMSG];
	int r;

	r = recv_env(to, from, &e, got, NULL);
	cr_assert_eq(r, 0, "%s could not open \"%s\" from %s: %s", to->name, want, from->name,
	        sotto_strerror(r));
	cr_assert_str_eq(got, want);
	free(e.sealed);
}

/* The stored session state of p with peer, opened (client_store_free_secret). */
static uint8_t *
stored(struct party *p, const char *peer, size_t *len)
{
	uint8_t *state = NULL;

	cr_assert_eq(client_store_session_get(p->cs, peer, &state, len), 0);
	return state;
}

/* Several messages each way, each opened before the next is sealed. */
static void
chat(struct party *a, struct party *b, int rounds)
{
	char text[2 * sizeof(a->name) + 32];
	int i;

	for (i = 0; i < rounds; i++) {
		snprintf(text, sizeof(text), "%s to %s %d", a->name, b->name, i);
		expect(b, a, send_text(a, b, text, 0), text);
		snprintf(text, sizeof(text), "%s to %s %d", b->name, a->name, i);
		expect(a, b, send_text(b, a, text, 0), text);
	}
}

/* p's session with peer: not pending, no previous state. */
static void
settled(struct party *p, const char *peer)
{
	struct e2e_session *s = NULL;

	cr_assert_eq(e2e_session_load(p->cs, peer, &s), 0);
	cr_assert_null(s->hdr, "%s still sends its X3DH header", p->name);
	cr_assert_null(s->prev, "%s still keeps a previous state", p->name);
	e2e_session_free(s);
}

static void
replay_first(int otk)
{
	struct env first;
	uint8_t *before, *after;
	size_t blen, alen;
	char got[MAXMSG];
	int fresh = 0;

	first = send_text(&alice, &bob, "first", otk);
	cr_assert_eq(recv_env(&bob, &alice, &first, got, &fresh), 0);
	cr_assert_str_eq(got, "first");
	cr_assert_eq(fresh, 1);
	before = stored(&bob, "alice", &blen);
	/* The same bytes again, as a server replays them under a new id. */
	cr_assert_eq(recv_env(&bob, &alice, &first, got, &fresh), SOTTO_ERR_EXISTS);
	cr_assert_str_eq(got, "");
	after = stored(&bob, "alice", &alen);
	cr_assert_eq(alen, blen);
	cr_assert_arr_eq(after, before, blen, "the replay changed the session");
	client_store_free_secret(before, blen);
	client_store_free_secret(after, alen);
	/* Also after the session has moved on. */
	expect(&alice, &bob, send_text(&bob, &alice, "reply", 0), "reply");
	cr_assert_eq(recv_env(&bob, &alice, &first, got, &fresh), SOTTO_ERR_EXISTS);
	chat(&alice, &bob, 2);
	free(first.sealed);
}

Test(client_e2e, replayed_first_message_without_otk)
{
	replay_first(0);
}

Test(client_e2e, replayed_first_message_with_otk)
{
	replay_first(1);
}

/* The initiator's second message still carries its header: that is not a replay. */
Test(client_e2e, repeated_header_is_not_a_replay)
{
	struct env m1 = send_text(&alice, &bob, "one", 1);
	struct env m2 = send_text(&alice, &bob, "two", 1);

	/* Even out of order. */
	expect(&bob, &alice, m2, "two");
	expect(&bob, &alice, m1, "one");
	chat(&alice, &bob, 1);
	settled(&alice, "bob");
	settled(&bob, "alice");
}

/*
 * Both start a session before either has the other's first message; n each,
 * and the winner (alice, who sorts first) or the loser opens first.
 */
static void
simultaneous(int n, int alice_first)
{
	struct env a[3], b[3];
	char text[32];
	int i, fresh;

	for (i = 0; i < n; i++) {
		snprintf(text, sizeof(text), "alice %d", i);
		a[i] = send_text(&alice, &bob, text, 1);
		snprintf(text, sizeof(text), "bob %d", i);
		b[i] = send_text(&bob, &alice, text, 1);
	}
	for (i = 0; i < n; i++) {
		char got[MAXMSG];

		if (alice_first) {
			cr_assert_eq(recv_env(&alice, &bob, &b[i], got, &fresh), 0);
			snprintf(text, sizeof(text), "bob %d", i);
		} else {
			cr_assert_eq(recv_env(&bob, &alice, &a[i], got, &fresh), 0);
			snprintf(text, sizeof(text), "alice %d", i);
		}
		cr_assert_str_eq(got, text);
		cr_assert_eq(fresh, i == 0, "message %d: fresh %d", i, fresh);
	}
	for (i = 0; i < n; i++) {
		snprintf(text, sizeof(text), alice_first ? "alice %d" : "bob %d", i);
		if (alice_first)
			expect(&bob, &alice, a[i], text);
		else
			expect(&alice, &bob, b[i], text);
		if (alice_first)
			free(b[i].sealed);
		else
			free(a[i].sealed);
	}
	/* bob answered alice's header and dropped his own; alice keeps hers. */
	chat(&bob, &alice, 2);
	settled(&alice, "bob");
	settled(&bob, "alice");
	chat(&alice, &bob, 2);
}

Test(client_e2e, simultaneous_one_each_winner_first)
{
	simultaneous(1, 1);
}

Test(client_e2e, simultaneous_one_each_loser_first)
{
	simultaneous(1, 0);
}

Test(client_e2e, simultaneous_several_each_winner_first)
{
	simultaneous(3, 1);
}

Test(client_e2e, simultaneous_several_each_loser_first)
{
	simultaneous(3, 0);
}

/* The winner keeps the loser's session to decrypt with, until the loser replies on its own. */
Test(client_e2e, previous_state_lives_until_the_reply)
{
	struct e2e_session *s = NULL;
	struct env a0 = send_text(&alice, &bob, "a0", 1);
	struct env b0 = send_text(&bob, &alice, "b0", 1);

	expect(&alice, &bob, b0, "b0");
	cr_assert_eq(e2e_session_load(alice.cs, "bob", &s), 0);
	cr_assert_not_null(s->hdr, "alice's own session is still pending");
	cr_assert_not_null(s->prev, "bob's session is kept to decrypt with");
	e2e_session_free(s);
	expect(&alice, &bob, send_text(&bob, &alice, "b1", 0), "b1");
	expect(&bob, &alice, a0, "a0");
	expect(&alice, &bob, send_text(&bob, &alice, "b2", 0), "b2");
	settled(&alice, "bob");
}

/* A pending session with the peer's old key gives way to a session from its new key. */
Test(client_e2e, new_peer_key_replaces_a_pending_session)
{
	struct e2e_session *s = NULL;
	struct env a0 = send_text(&alice, &bob, "to the old bob", 1);
	char got[MAXMSG];
	int fresh = 0;
	struct env n0;

	free(a0.sealed);
	party_init(&bob2, "bob");
	n0 = send_text(&bob2, &alice, "from the new bob", 1);
	cr_assert_eq(recv_env(&alice, &bob2, &n0, got, &fresh), 0);
	cr_assert_str_eq(got, "from the new bob");
	cr_assert_eq(fresh, 1);
	cr_assert_eq(e2e_session_load(alice.cs, "bob", &s), 0);
	cr_assert(identity_pub_equal(s->peer, &bob2.id->pub));
	cr_assert_null(s->hdr);
	cr_assert_null(s->prev);
	e2e_session_free(s);
	free(n0.sealed);
	chat(&alice, &bob2, 1);
}

/* Records written before the previous state existed still load; trailing bytes do not. */
Test(client_e2e, session_record_versions)
{
	struct e2e_session *s = NULL;
	uint8_t *state, *v1;
	size_t len;

	expect(&bob, &alice, send_text(&alice, &bob, "hello", 1), "hello");
	state = stored(&bob, "alice", &len);
	cr_assert_eq(state[0], E2E_SESSION_VERSION);
	/* Version 1: no previous state, so no last (empty) string. */
	cr_assert_arr_eq(state + len - 4, "\0\0\0\0", 4);
	cr_assert_not_null(v1 = malloc(len + 1));
	memcpy(v1, state, len);
	v1[0] = 1;
	cr_assert_eq(client_store_session_put(bob.cs, "alice", v1, len - 4, T0), 0);
	cr_assert_eq(e2e_session_load(bob.cs, "alice", &s), 0);
	cr_assert_null(s->prev);
	e2e_session_free(s);
	expect(&bob, &alice, send_text(&alice, &bob, "still", 1), "still");
	/* A byte too many, in either version; an unknown version. */
	v1[len] = 0;
	cr_assert_eq(client_store_session_put(bob.cs, "alice", v1, len - 3, T0), 0);
	cr_assert_eq(e2e_session_load(bob.cs, "alice", &s), SOTTO_ERR_FORMAT);
	cr_assert_null(s);
	v1[0] = E2E_SESSION_VERSION;
	cr_assert_eq(client_store_session_put(bob.cs, "alice", v1, len + 1, T0), 0);
	cr_assert_eq(e2e_session_load(bob.cs, "alice", &s), SOTTO_ERR_FORMAT);
	cr_assert_null(s);
	v1[0] = 3;
	cr_assert_eq(client_store_session_put(bob.cs, "alice", v1, len, T0), 0);
	cr_assert_eq(e2e_session_load(bob.cs, "alice", &s), SOTTO_ERR_FORMAT);
	free(v1);
	client_store_free_secret(state, len);
}

/* Seen ids go after CLIENT_STORE_SEEN_DAYS; a header's tag goes with its signed prekey. */
Test(client_e2e, prune)
{
	static const uint8_t id[CLIENT_STORE_MSG_ID_BYTES] = {1, 2, 3};
	struct env first = send_text(&alice, &bob, "first", 0);
	char got[MAXMSG];
	uint32_t pruned = 9;
	int seen = 0;

	cr_assert_eq(client_store_seen_add(bob.cs, "alice", id, T0, &seen), 0);
	cr_assert_eq(e2e_store_prune(bob.cs, T0 + CLIENT_STORE_SEEN_DAYS * DAY - 1), 0);
	cr_assert_eq(client_store_seen_add(bob.cs, "alice", id, T0, &seen), 0);
	cr_assert_eq(seen, 1, "pruned too early");
	cr_assert_eq(e2e_store_prune(bob.cs, T0 + CLIENT_STORE_SEEN_DAYS * DAY + 1), 0);
	cr_assert_eq(client_store_seen_add(bob.cs, "alice", id, T0, &seen), 0);
	cr_assert_eq(seen, 0, "not pruned");

	cr_assert_eq(recv_env(&bob, &alice, &first, got, NULL), 0);
	cr_assert_eq(e2e_store_prune(bob.cs, (int64_t)time(NULL)), 0);
	cr_assert_eq(recv_env(&bob, &alice, &first, got, NULL), SOTTO_ERR_EXISTS);
	/* A new signed prekey: the old one still answers, so its tags stay. */
	party_spk(&bob, 2);
	cr_assert_eq(client_store_x3dh_prune(bob.cs, &pruned), 0);
	cr_assert_eq(pruned, 0);
	cr_assert_eq(recv_env(&bob, &alice, &first, got, NULL), SOTTO_ERR_EXISTS);
	/* Once it is gone, the header cannot be answered anyway. */
	cr_assert_eq(client_store_spk_prune(bob.cs, T0 + 1, 0, NULL), 0);
	cr_assert_eq(client_store_x3dh_prune(bob.cs, &pruned), 0);
	cr_assert_eq(pruned, 1);
	cr_assert_eq(recv_env(&bob, &alice, &first, got, NULL), SOTTO_ERR_NOTFOUND);
	free(first.sealed);
}
