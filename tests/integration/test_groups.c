/*
 * sottod groups, end to end: real server on loopback, real TLS, real SQLite.
 * Creating a group, adding, removing and leaving with signed changes that the
 * server checks and hands back, refusals (not the owner, forged or stale
 * changes, malformed lists, limits), SendGroup's fan-out to live and queued
 * members in order, blocking, duplicates, and the state across a restart.
 *
 * Absence is checked with a fence: a later envelope that would have arrived
 * after the one that must not, so no test waits on a timer.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "crypto/buf.h"
#include "crypto/util.h"
#include "src/sigmsg.h"
#include "tests/lib/tcheck.h"

#ifndef Test
#define Test(s, n, ...) void s##_##n(void)
#define TestSuite(...)
#endif

#define OP_CREATE SOTTO__GROUP_OP__GROUP_OP_CREATE
#define OP_ADD    SOTTO__GROUP_OP__GROUP_OP_ADD
#define OP_REMOVE SOTTO__GROUP_OP__GROUP_OP_REMOVE
#define OP_LEAVE  SOTTO__GROUP_OP__GROUP_OP_LEAVE

static struct testsrv srv;
static struct tuser alice, bob, carol, dave;
static struct tuser *const all_users[] = {&alice, &bob, &carol, &dave, NULL};

static void
users_new(void)
{
	cr_assert_eq(tuser_new(&alice, "alice", IDENTITY_ED25519), 0);
	cr_assert_eq(tuser_new(&bob, "bob", IDENTITY_ED25519), 0);
	cr_assert_eq(tuser_new(&carol, "carol", IDENTITY_ED25519), 0);
	cr_assert_eq(tuser_new(&dave, "dave", IDENTITY_RSA), 0);
	tcheck_users_register(&srv, all_users);
}

static void
setup(void)
{
	tcheck_start(&srv, NULL);
	users_new();
}

static void
setup_limits(void)
{
	static const char *const flags[] = {
	        "--max-group-members", "3", "--max-groups-per-user", "2", NULL};

	tcheck_start(&srv, flags);
	users_new();
}

static void
teardown(void)
{
	testsrv_cleanup(&srv);
	tcheck_users_free(all_users);
}

TestSuite(groups, .init = setup, .fini = teardown, .timeout = 60);
TestSuite(group_limits, .init = setup_limits, .fini = teardown, .timeout = 60);

/* ---- helpers ------------------------------------------------------------------------------ */

static struct client_conn *
login(struct tuser *u)
{
	return tcheck_login(&srv, u);
}

static void
sign_change(const struct tuser *signer, const uint8_t gid[16], uint64_t serial, uint32_t op,
        const char *const *users, size_t n, uint8_t *sig, size_t *siglen)
{
	struct buf m;

	buf_init(&m, 0);
	if (sigmsg_group_change(&m, gid, serial, op, signer->name, users, n) != 0) {
		/* A list no one can sign (unsorted, say): the server must refuse it unread. */
		memset(sig, 0x5a, 64);
		*siglen = 64;
	} else {
		cr_assert_eq(identity_sign(sig, IDENTITY_SIG_MAX, siglen, signer->id, buf_ptr(&m),
		                     buf_len(&m)),
		        0);
	}
	buf_free(&m);
}

/* The reply to req: 0 and *rep, or the Error's code with *rep the Error frame. */
static uint32_t
request(struct client_conn *c, Sotto__Frame *req, Sotto__Frame **rep)
{
	int r = client_conn_request(c, req, rep, 0);

	if (r == SOTTO_ERR_PERM) {
		cr_assert_not_null(*rep);
		cr_assert_eq((*rep)->body_case, SOTTO__FRAME__BODY_ERROR);
		return (*rep)->error->code;
	}
	cr_assert_eq(r, 0, "request failed: %s", client_conn_error(c));
	return 0;
}

/* Ok or the error code, for requests answered with Ok. */
static uint32_t
request_ok(struct client_conn *c, Sotto__Frame *req)
{
	Sotto__Frame *rep = NULL;
	uint32_t code = request(c, req, &rep);

	if (code == 0)
		cr_assert_eq(rep->body_case, SOTTO__FRAME__BODY_OK);
	frame_free(rep);
	return code;
}

/* CreateGroup signed by signer (normally the connection's user). */
static uint32_t
create_as(struct client_conn *c, const struct tuser *signer, const uint8_t gid[16],
        const char *const *members, size_t n)
{
	uint8_t sig[IDENTITY_SIG_MAX];
	size_t siglen;
	Sotto__CreateGroup cg;
	Sotto__Frame req;

	sign_change(signer, gid, 1, OP_CREATE, members, n, sig, &siglen);
	sotto__create_group__init(&cg);
	cg.group_id = proto_bytes(gid, 16);
	cg.members = (char **)(uintptr_t)members;
	cg.n_members = n;
	cg.signature = proto_bytes(sig, siglen);
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_CREATE_GROUP;
	req.create_group = &cg;
	return request_ok(c, &req);
}

static uint32_t
change_as(struct client_conn *c, const struct tuser *signer, const uint8_t gid[16], uint64_t serial,
        uint32_t op, const char *const *users, size_t n)
{
	uint8_t sig[IDENTITY_SIG_MAX];
	size_t siglen;
	Sotto__GroupChange gc;
	Sotto__Frame req;

	sign_change(signer, gid, serial, op, users, n, sig, &siglen);
	sotto__group_change__init(&gc);
	gc.group_id = proto_bytes(gid, 16);
	gc.op = op;
	gc.users = (char **)(uintptr_t)users;
	gc.n_users = n;
	gc.serial = serial;
	gc.signature = proto_bytes(sig, siglen);
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_GROUP_CHANGE;
	req.group_change = &gc;
	return request_ok(c, &req);
}

static uint32_t
leave_as(struct client_conn *c, const struct tuser *signer, const uint8_t gid[16], uint64_t serial)
{
	const char *users[1] = {signer->name};
	uint8_t sig[IDENTITY_SIG_MAX];
	size_t siglen;
	Sotto__LeaveGroup lg;
	Sotto__Frame req;

	sign_change(signer, gid, serial, OP_LEAVE, users, 1, sig, &siglen);
	sotto__leave_group__init(&lg);
	lg.group_id = proto_bytes(gid, 16);
	lg.serial = serial;
	lg.signature = proto_bytes(sig, siglen);
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_LEAVE_GROUP;
	req.leave_group = &lg;
	return request_ok(c, &req);
}

/* GetGroup: the GroupInfo frame, or NULL with *code set. */
static Sotto__Frame *
get_group(struct client_conn *c, const uint8_t gid[16], uint64_t since, uint32_t *code)
{
	Sotto__GetGroup gg;
	Sotto__Frame req, *rep = NULL;

	sotto__get_group__init(&gg);
	gg.group_id = proto_bytes(gid, 16);
	gg.since_serial = since;
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_GET_GROUP;
	req.get_group = &gg;
	if ((*code = request(c, &req, &rep)) != 0) {
		frame_free(rep);
		return NULL;
	}
	cr_assert_eq(rep->body_case, SOTTO__FRAME__BODY_GROUP_INFO);
	return rep;
}

/* SendGroup text with msg_id (random if all zero): the AckGroup, or NULL with *code. */
/* req, a SendGroup of text under id to group gid, pointing into sg. */
static void
send_group_frame(Sotto__Frame *req, Sotto__SendGroup *sg, const uint8_t gid[16], const char *text,
        const uint8_t id[16])
{
	sotto__send_group__init(sg);
	sg->msg_id = proto_bytes(id, 16);
	sg->group_id = proto_bytes(gid, 16);
	sg->sealed = proto_bytes(text, strlen(text));
	frame_init(req, 0);
	req->body_case = SOTTO__FRAME__BODY_SEND_GROUP;
	req->send_group = sg;
}

static Sotto__Frame *
send_group(struct client_conn *c, const uint8_t gid[16], const char *text, uint8_t id[16],
        uint32_t *code)
{
	static const uint8_t zero[16];
	Sotto__SendGroup sg;
	Sotto__Frame req, *rep = NULL;

	if (memcmp(id, zero, 16) == 0)
		sotto_random(id, 16);
	send_group_frame(&req, &sg, gid, text, id);
	if ((*code = request(c, &req, &rep)) != 0) {
		frame_free(rep);
		return NULL;
	}
	cr_assert_eq(rep->body_case, SOTTO__FRAME__BODY_ACK_GROUP);
	cr_assert_arr_eq(rep->ack_group->msg_id.data, id, 16);
	cr_assert_arr_eq(rep->ack_group->group_id.data, gid, 16);
	return rep;
}

static Sotto__Frame *
send_group_ok(struct client_conn *c, const uint8_t gid[16], const char *text, uint8_t id[16])
{
	uint32_t code;
	Sotto__Frame *ack = send_group(c, gid, text, id, &code);

	cr_assert_not_null(ack, "SendGroup \"%s\": %s", text, proto_error_name(code));
	return ack;
}

/* The Ack for member in an AckGroup (which must have one). */
static const Sotto__Ack *
ack_for(const Sotto__Frame *f, const char *member)
{
	size_t i;

	for (i = 0; i < f->ack_group->n_acks; i++)
		if (strcmp(f->ack_group->acks[i]->to, member) == 0)
			return f->ack_group->acks[i];
	cr_assert_fail("no Ack for %s", member);
	return NULL;
}

/* The next Deliver, which must be text from sender in group gid (NULL: a direct message). */
static void
expect_deliver(struct client_conn *c, const char *from, const uint8_t *gid, const char *text)
{
	Sotto__Frame *d;

	cr_assert_not_null(
	        d = twait(c, SOTTO__FRAME__BODY_DELIVER, 5000), "no Deliver of \"%s\"", text);
	cr_assert_str_eq(d->deliver->from, from);
	cr_assert_eq(d->deliver->sealed.len, strlen(text), "expected \"%s\", got \"%.*s\"", text,
	        (int)d->deliver->sealed.len, (const char *)d->deliver->sealed.data);
	cr_assert_arr_eq(d->deliver->sealed.data, text, strlen(text));
	if (gid != NULL) {
		cr_assert_eq(d->deliver->group_id.len, 16, "\"%s\" has no group id", text);
		cr_assert_arr_eq(d->deliver->group_id.data, gid, 16);
	} else {
		cr_assert_eq(d->deliver->group_id.len, 0);
	}
	cr_assert_eq(tack(c, d->deliver->msg_id.data), 0);
	frame_free(d);
}

/* Every change record in info verifies under its signer's key, and serials run on. */
static void
check_records(const Sotto__GroupInfo *gi, uint64_t first)
{
	const struct tuser *all[] = {&alice, &bob, &carol, &dave};
	const struct tuser *signer;
	struct buf m;
	size_t i, j;

	for (i = 0; i < gi->n_changes; i++) {
		const Sotto__GroupChangeRecord *rec = gi->changes[i];

		cr_assert_eq(rec->serial, first + i);
		signer = NULL;
		for (j = 0; j < sizeof(all) / sizeof(all[0]); j++)
			if (strcmp(all[j]->name, rec->signer) == 0)
				signer = all[j];
		cr_assert_not_null(signer, "unknown signer %s", rec->signer);
		buf_init(&m, 0);
		cr_assert_eq(sigmsg_group_change(&m, gi->group_id.data, rec->serial, rec->op,
		                     rec->signer, (const char *const *)rec->users, rec->n_users),
		        0);
		cr_assert_eq(identity_pub_verify(identity_public(signer->id), rec->signature.data,
		                     rec->signature.len, buf_ptr(&m), buf_len(&m)),
		        0, "change %llu does not verify", (unsigned long long)rec->serial);
		buf_free(&m);
	}
}

static void
check_members(const Sotto__GroupInfo *gi, const char *const *want, size_t n)
{
	size_t i;

	cr_assert_eq(gi->n_members, n, "%zu members, want %zu", gi->n_members, n);
	for (i = 0; i < n; i++)
		cr_assert_str_eq(gi->members[i], want[i]);
}

/* c's GetGroup of gid (since serial 0) lists exactly the n members want, in order. */
static void
members_seen_by(struct client_conn *c, const uint8_t gid[16], const char *const *want, size_t n)
{
	Sotto__Frame *info;
	uint32_t code;

	cr_assert_not_null(info = get_group(c, gid, 0, &code), "%s", proto_error_name(code));
	check_members(info->group_info, want, n);
	frame_free(info);
}

/* A fresh random group id, and alice, bob and carol logged in. */
static void
login_abc(uint8_t gid[16], struct client_conn **a, struct client_conn **b, struct client_conn **c)
{
	sotto_random(gid, 16);
	*a = login(&alice);
	*b = login(&bob);
	*c = login(&carol);
}

static void
close_abc(struct client_conn *a, struct client_conn *b, struct client_conn *c)
{
	client_conn_close(a);
	client_conn_close(b);
	client_conn_close(c);
}

/* ---- membership --------------------------------------------------------------------------- */

Test(groups, create_and_get)
{
	const char *members[] = {"bob", "dave"}, *all[] = {"alice", "bob", "dave"};
	struct client_conn *a, *b, *c;
	uint8_t gid[16];
	Sotto__Frame *info;
	uint32_t code;

	login_abc(gid, &a, &b, &c);
	cr_assert_eq(create_as(a, &alice, gid, members, 2), 0);
	cr_assert_not_null(info = get_group(b, gid, 0, &code), "%s", proto_error_name(code));
	cr_assert_str_eq(info->group_info->owner, "alice");
	cr_assert_eq(info->group_info->serial, 1);
	check_members(info->group_info, all, 3);
	cr_assert_eq(info->group_info->n_changes, 1);
	cr_assert_eq(info->group_info->changes[0]->op, OP_CREATE);
	cr_assert_str_eq(info->group_info->changes[0]->signer, "alice");
	cr_assert_eq(info->group_info->changes[0]->n_users, 2);
	cr_assert_not(info->group_info->more);
	check_records(info->group_info, 1);
	frame_free(info);
	/* Nothing is known to an outsider, nor of a group that does not exist. */
	cr_assert_null(get_group(c, gid, 0, &code));
	cr_assert_eq(code, SOTTO__ERROR_CODE__ERR_NO_SUCH_GROUP);
	gid[0] ^= 1;
	cr_assert_null(get_group(a, gid, 0, &code));
	cr_assert_eq(code, SOTTO__ERROR_CODE__ERR_NO_SUCH_GROUP);
	/* A resend of the creation is fine; another group on the same id is not. */
	gid[0] ^= 1;
	cr_assert_eq(create_as(a, &alice, gid, members, 2), 0);
	cr_assert_eq(create_as(b, &bob, gid, NULL, 0), SOTTO__ERROR_CODE__ERR_GROUP_EXISTS);
	close_abc(a, b, c);
}

Test(groups, add_remove_leave)
{
	const char *bob_only[] = {"bob"}, *carol_dave[] = {"carol", "dave"};
	const char *after_add[] = {"alice", "bob", "carol", "dave"};
	const char *after_remove[] = {"alice", "carol", "dave"}, *after_leave[] = {"alice", "dave"};
	struct client_conn *a, *b, *c;
	uint8_t gid[16];
	Sotto__Frame *info;
	uint32_t code;

	login_abc(gid, &a, &b, &c);
	cr_assert_eq(create_as(a, &alice, gid, bob_only, 1), 0);
	cr_assert_eq(change_as(a, &alice, gid, 2, OP_ADD, carol_dave, 2), 0);
	members_seen_by(c, gid, after_add, 4);
	/* A resend of a change already made is acknowledged again. */
	cr_assert_eq(change_as(a, &alice, gid, 2, OP_ADD, carol_dave, 2), 0);
	cr_assert_eq(change_as(a, &alice, gid, 3, OP_REMOVE, bob_only, 1), 0);
	members_seen_by(a, gid, after_remove, 3);
	cr_assert_null(get_group(b, gid, 0, &code));
	cr_assert_eq(code, SOTTO__ERROR_CODE__ERR_NO_SUCH_GROUP, "a removed member sees nothing");
	/* Carol leaves with a change she signs herself. */
	cr_assert_eq(leave_as(c, &carol, gid, 4), 0);
	cr_assert_not_null(info = get_group(a, gid, 0, &code), "%s", proto_error_name(code));
	check_members(info->group_info, after_leave, 2);
	cr_assert_eq(info->group_info->serial, 4);
	cr_assert_eq(info->group_info->n_changes, 4);
	cr_assert_eq(info->group_info->changes[2]->op, OP_REMOVE);
	cr_assert_eq(info->group_info->changes[3]->op, OP_LEAVE);
	cr_assert_str_eq(info->group_info->changes[3]->signer, "carol");
	check_records(info->group_info, 1);
	frame_free(info);
	/* since_serial hands out only what follows. */
	cr_assert_not_null(info = get_group(a, gid, 2, &code));
	cr_assert_eq(info->group_info->n_changes, 2);
	check_records(info->group_info, 3);
	frame_free(info);
	close_abc(a, b, c);
}

Test(groups, refusals)
{
	const char *bob_only[] = {"bob"}, *carol_only[] = {"carol"},
	           *unsorted[] = {"dave", "carol"};
	const char *upper[] = {"Carol"}, *twice[] = {"carol", "carol"}, *ghost[] = {"nobody"};
	const char *alice_only[] = {"alice"};
	struct client_conn *a, *b, *c;
	uint8_t gid[16];
	Sotto__Frame *info;
	uint32_t code;

	login_abc(gid, &a, &b, &c);
	cr_assert_eq(create_as(a, &alice, gid, bob_only, 1), 0);
	/* Only the owner changes members: a member is told so, an outsider learns nothing. */
	cr_assert_eq(change_as(b, &bob, gid, 2, OP_ADD, carol_only, 1),
	        SOTTO__ERROR_CODE__ERR_NOT_GROUP_OWNER);
	cr_assert_eq(change_as(c, &carol, gid, 2, OP_ADD, carol_only, 1),
	        SOTTO__ERROR_CODE__ERR_NO_SUCH_GROUP);
	/* A change the owner did not sign. */
	cr_assert_eq(change_as(a, &bob, gid, 2, OP_ADD, carol_only, 1),
	        SOTTO__ERROR_CODE__ERR_BAD_SIGNATURE);
	cr_assert_eq(create_as(c, &alice, gid, NULL, 0), SOTTO__ERROR_CODE__ERR_GROUP_EXISTS);
	/* Stale or future serials. */
	cr_assert_eq(change_as(a, &alice, gid, 1, OP_ADD, carol_only, 1),
	        SOTTO__ERROR_CODE__ERR_GROUP_CONFLICT);
	cr_assert_eq(change_as(a, &alice, gid, 3, OP_ADD, carol_only, 1),
	        SOTTO__ERROR_CODE__ERR_GROUP_CONFLICT);
	/* Malformed user lists and impossible changes. */
	cr_assert_eq(change_as(a, &alice, gid, 2, OP_ADD, unsorted, 2),
	        SOTTO__ERROR_CODE__ERR_BAD_REQUEST);
	cr_assert_eq(
	        change_as(a, &alice, gid, 2, OP_ADD, upper, 1), SOTTO__ERROR_CODE__ERR_BAD_REQUEST);
	cr_assert_eq(
	        change_as(a, &alice, gid, 2, OP_ADD, twice, 2), SOTTO__ERROR_CODE__ERR_BAD_REQUEST);
	cr_assert_eq(change_as(a, &alice, gid, 2, OP_ADD, ghost, 1),
	        SOTTO__ERROR_CODE__ERR_NO_SUCH_USER);
	cr_assert_eq(change_as(a, &alice, gid, 2, OP_ADD, bob_only, 1),
	        SOTTO__ERROR_CODE__ERR_BAD_REQUEST);
	cr_assert_eq(change_as(a, &alice, gid, 2, OP_REMOVE, carol_only, 1),
	        SOTTO__ERROR_CODE__ERR_BAD_REQUEST);
	cr_assert_eq(change_as(a, &alice, gid, 2, OP_REMOVE, alice_only, 1),
	        SOTTO__ERROR_CODE__ERR_BAD_REQUEST);
	cr_assert_eq(change_as(a, &alice, gid, 2, OP_LEAVE, bob_only, 1),
	        SOTTO__ERROR_CODE__ERR_BAD_REQUEST);
	cr_assert_eq(
	        change_as(a, &alice, gid, 2, OP_ADD, NULL, 0), SOTTO__ERROR_CODE__ERR_BAD_REQUEST);
	{
		Sotto__CreateGroup cg;
		Sotto__Frame req;

		sotto__create_group__init(&cg);
		cg.group_id = proto_bytes(gid, 15);
		cg.signature = proto_bytes(gid, 16);
		frame_init(&req, 0);
		req.body_case = SOTTO__FRAME__BODY_CREATE_GROUP;
		req.create_group = &cg;
		cr_assert_eq(request_ok(a, &req), SOTTO__ERROR_CODE__ERR_BAD_REQUEST,
		        "a group id of 15 bytes");
	}
	/* Leaving: not for the owner while others remain, and signed by the leaver. */
	cr_assert_eq(leave_as(a, &alice, gid, 2), SOTTO__ERROR_CODE__ERR_BAD_REQUEST);
	cr_assert_eq(leave_as(b, &carol, gid, 2), SOTTO__ERROR_CODE__ERR_BAD_SIGNATURE);
	cr_assert_eq(leave_as(c, &carol, gid, 2), SOTTO__ERROR_CODE__ERR_NO_SUCH_GROUP);
	/* None of it changed the group. */
	cr_assert_not_null(info = get_group(a, gid, 0, &code));
	cr_assert_eq(info->group_info->serial, 1);
	cr_assert_eq(info->group_info->n_members, 2);
	frame_free(info);
	/* Creating with oneself among the members, or with an unknown user. */
	sotto_random(gid, sizeof(gid));
	cr_assert_eq(create_as(a, &alice, gid, alice_only, 1), SOTTO__ERROR_CODE__ERR_BAD_REQUEST);
	cr_assert_eq(create_as(a, &alice, gid, ghost, 1), SOTTO__ERROR_CODE__ERR_NO_SUCH_USER);
	cr_assert_eq(create_as(a, &bob, gid, NULL, 0), SOTTO__ERROR_CODE__ERR_BAD_SIGNATURE);
	cr_assert_null(get_group(a, gid, 0, &code));
	close_abc(a, b, c);
}

/* The owner alone may leave, and that ends the group. */
Test(groups, last_owner_leaves)
{
	struct client_conn *a;
	uint8_t gid[16];
	uint32_t code;

	sotto_random(gid, sizeof(gid));
	a = login(&alice);
	cr_assert_eq(create_as(a, &alice, gid, NULL, 0), 0);
	cr_assert_eq(leave_as(a, &alice, gid, 2), 0);
	cr_assert_null(get_group(a, gid, 0, &code));
	cr_assert_eq(code, SOTTO__ERROR_CODE__ERR_NO_SUCH_GROUP);
	cr_assert_eq(create_as(a, &alice, gid, NULL, 0), 0, "the id is free again");
	client_conn_close(a);
}

/* ---- fan-out ------------------------------------------------------------------------------ */

Test(groups, fanout_live_queued_and_drained_in_order)
{
	enum { N = 12 };
	const char *members[] = {"bob", "carol", "dave"};
	struct client_conn *a, *b, *c, *d;
	uint8_t gid[16], ids[N][16], id[16] = {0};
	const Sotto__Ack *ack;
	Sotto__Frame *f, *ok = NULL;
	char text[32];
	size_t i;

	sotto_random(gid, sizeof(gid));
	memset(ids, 0, sizeof(ids));
	a = login(&alice);
	b = login(&bob);
	d = login(&dave);
	cr_assert_eq(create_as(a, &alice, gid, members, 3), 0);
	for (i = 0; i < N; i++) {
		snprintf(text, sizeof(text), "group message %zu", i);
		f = send_group_ok(a, gid, text, ids[i]);
		cr_assert_eq(f->ack_group->n_acks, 3, "one Ack per member but the sender");
		cr_assert_str_eq(f->ack_group->acks[0]->to, "bob");
		cr_assert_str_eq(f->ack_group->acks[1]->to, "carol");
		cr_assert_str_eq(f->ack_group->acks[2]->to, "dave");
		ack = ack_for(f, "bob");
		cr_assert(ack->stored && ack->recipient_online && ack->error == 0);
		ack = ack_for(f, "carol");
		cr_assert(ack->stored && !ack->recipient_online && ack->error == 0);
		cr_assert_gt(ack->last_seen, 0);
		frame_free(f);
		if (i == N / 2) {
			/* A direct message in between keeps its place in carol's queue. */
			f = NULL;
			cr_assert_eq(tsend(a, "carol", "direct", id, &f), 0);
			frame_free(f);
		}
	}
	for (i = 0; i < N; i++) {
		snprintf(text, sizeof(text), "group message %zu", i);
		expect_deliver(b, "alice", gid, text);
		expect_deliver(d, "alice", gid, text);
	}
	/* Carol was offline: everything waits for her, in order, at login. */
	cr_assert_not_null(c = tconnect(&srv, 0, text, sizeof(text)));
	cr_assert_eq(client_conn_login(c, carol.name, carol.id, &ok), 0);
	cr_assert_eq(ok->login_ok->queued, N + 1);
	frame_free(ok);
	for (i = 0; i < N; i++) {
		snprintf(text, sizeof(text), "group message %zu", i);
		expect_deliver(c, "alice", gid, text);
		if (i == N / 2)
			expect_deliver(c, "alice", NULL, "direct");
	}
	/* Members answer in the same group; alice gets it live too. */
	frame_free(send_group_ok(c, gid, "carol here", (uint8_t[16]){0}));
	expect_deliver(a, "carol", gid, "carol here");
	expect_deliver(b, "carol", gid, "carol here");
	expect_deliver(d, "carol", gid, "carol here");
	client_conn_close(a);
	client_conn_close(b);
	client_conn_close(c);
	client_conn_close(d);
}

Test(groups, delivery_receipts_per_member)
{
	const char *members[] = {"bob", "carol"};
	struct client_conn *a, *b, *c;
	uint8_t gid[16], id[16] = {0};
	Sotto__Frame *f;
	int seen_bob = 0, seen_carol = 0;
	size_t i;

	login_abc(gid, &a, &b, &c);
	cr_assert_eq(create_as(a, &alice, gid, members, 2), 0);
	frame_free(send_group_ok(a, gid, "receipt me", id));
	expect_deliver(b, "alice", gid, "receipt me");
	expect_deliver(c, "alice", gid, "receipt me");
	while (!(seen_bob && seen_carol)) {
		cr_assert_not_null(f = twait(a, SOTTO__FRAME__BODY_DELIVERED, 5000));
		for (i = 0; i < f->delivered->n_receipts; i++) {
			cr_assert_arr_eq(f->delivered->receipts[i]->msg_id.data, id, 16);
			seen_bob |= strcmp(f->delivered->receipts[i]->to, "bob") == 0;
			seen_carol |= strcmp(f->delivered->receipts[i]->to, "carol") == 0;
		}
		frame_free(f);
	}
	close_abc(a, b, c);
}

Test(groups, blocked_member_gets_nothing_from_blocker)
{
	const char *members[] = {"bob", "carol"};
	struct client_conn *a, *b, *c;
	uint8_t gid[16];
	Sotto__Frame *f;

	login_abc(gid, &a, &b, &c);
	cr_assert_eq(create_as(a, &alice, gid, members, 2), 0);
	/* Carol blocks alice: alice's group messages skip her, and alice cannot tell. */
	cr_assert_eq(tblock(c, "alice", 1), 0);
	f = send_group_ok(a, gid, "from alice", (uint8_t[16]){0});
	cr_assert(ack_for(f, "carol")->stored);
	cr_assert_not(ack_for(f, "carol")->recipient_online, "blocked: no presence either");
	frame_free(f);
	expect_deliver(b, "alice", gid, "from alice");
	/* The fence: bob's message comes next for carol, so alice's was dropped. */
	frame_free(send_group_ok(b, gid, "from bob", (uint8_t[16]){0}));
	expect_deliver(c, "bob", gid, "from bob");
	expect_deliver(a, "bob", gid, "from bob");
	close_abc(a, b, c);
}

Test(groups, send_refusals_and_duplicates)
{
	const char *members[] = {"bob"};
	struct client_conn *a, *b, *c;
	uint8_t gid[16], id[16] = {0}, other[16];
	Sotto__Frame *f;
	uint32_t code;

	login_abc(gid, &a, &b, &c);
	cr_assert_eq(create_as(a, &alice, gid, members, 1), 0);
	cr_assert_null(send_group(c, gid, "not a member", (uint8_t[16]){0}, &code));
	cr_assert_eq(code, SOTTO__ERROR_CODE__ERR_NO_SUCH_GROUP);
	cr_assert_null(send_group(a, gid, "", (uint8_t[16]){0}, &code));
	cr_assert_eq(code, SOTTO__ERROR_CODE__ERR_BAD_REQUEST);
	/* The same msg_id twice reaches bob once. */
	frame_free(send_group_ok(a, gid, "once", id));
	frame_free(send_group_ok(a, gid, "once", id));
	expect_deliver(b, "alice", gid, "once");
	memset(other, 0, sizeof(other));
	frame_free(send_group_ok(a, gid, "fence", other));
	expect_deliver(b, "alice", gid, "fence");
	/* A group of one: nothing to deliver, an empty AckGroup. */
	sotto_random(gid, sizeof(gid));
	cr_assert_eq(create_as(c, &carol, gid, NULL, 0), 0);
	f = send_group_ok(c, gid, "alone", (uint8_t[16]){0});
	cr_assert_eq(f->ack_group->n_acks, 0);
	frame_free(f);
	close_abc(a, b, c);
}

/* SendGroup without waiting for its AckGroup. */
static void
send_group_nowait(
        struct client_conn *c, const uint8_t gid[16], const char *text, const uint8_t id[16])
{
	Sotto__SendGroup sg;
	Sotto__Frame req;
	uint64_t rid;

	send_group_frame(&req, &sg, gid, text, id);
	cr_assert_eq(client_conn_send(c, &req, &rid), 0, "%s", client_conn_error(c));
}

/* What the sender of a group message has been told so far. */
struct told {
	int ack_groups;  /* AckGroups for the id, each with every member's Ack clean */
	int receipts[2]; /* Delivered receipts for the id, from members[0] and [1] */
};

/* Read c's frames until `until` says enough (or fail after 50 frames). */
static void
pump(struct client_conn *c, const uint8_t id[16], const char *const *members, struct told *t,
        int (*until)(const struct told *))
{
	Sotto__Frame *f;
	size_t i, k;
	int frames;

	for (frames = 0; !until(t) && frames < 50; frames++) {
		cr_assert_not_null(f = tnext(c, 5000), "%d AckGroups, receipts %d and %d so far",
		        t->ack_groups, t->receipts[0], t->receipts[1]);
		if (f->body_case == SOTTO__FRAME__BODY_ACK_GROUP) {
			cr_assert_arr_eq(f->ack_group->msg_id.data, id, 16);
			cr_assert_eq(f->ack_group->n_acks, 2);
			for (i = 0; i < 2; i++) {
				cr_assert_eq(f->ack_group->acks[i]->error, 0);
				cr_assert(f->ack_group->acks[i]->stored);
			}
			t->ack_groups++;
		} else if (f->body_case == SOTTO__FRAME__BODY_DELIVERED) {
			for (i = 0; i < f->delivered->n_receipts; i++) {
				const Sotto__DeliveryReceipt *r = f->delivered->receipts[i];

				for (k = 0; k < 2; k++) {
					if (memcmp(r->msg_id.data, id, 16) == 0 &&
					        strcmp(r->to, members[k]) == 0)
						t->receipts[k]++;
				}
			}
		}
		frame_free(f);
	}
	cr_assert(until(t), "gave up after 50 frames");
}

static int
bob_took_it(const struct told *t)
{
	return t->receipts[0] > 0;
}

static int
three_answered(const struct told *t)
{
	return t->ack_groups == 3;
}

/*
 * Resends of a group message reach each member once: one that comes while the
 * first is still unanswered (before bob took it, then after bob took it but not
 * carol), and one after it was answered.
 */
Test(groups, resends_reach_each_member_once)
{
	const char *members[] = {"bob", "carol"};
	struct client_conn *a, *b, *c;
	struct told t = {0, {0, 0}};
	uint8_t gid[16], id[16];

	sotto_random(gid, sizeof(gid));
	sotto_random(id, sizeof(id));
	a = login(&alice);
	b = login(&bob);
	c = login(&carol);
	cr_assert_eq(create_as(a, &alice, gid, members, 2), 0);
	send_group_nowait(a, gid, "just once", id);
	send_group_nowait(a, gid, "just once", id);
	expect_deliver(b, "alice", gid, "just once");
	/* Bob's receipt: the server has his DeliverAck, and his copy is gone from memory. */
	pump(a, id, members, &t, bob_took_it);
	send_group_nowait(a, gid, "just once", id);
	expect_deliver(c, "alice", gid, "just once");
	pump(a, id, members, &t, three_answered);
	cr_assert_eq(t.receipts[0], 1, "bob's receipts");
	/* And once more, after all of it was answered. */
	frame_free(send_group_ok(a, gid, "just once", id));
	frame_free(send_group_ok(a, gid, "fence", (uint8_t[16]){0}));
	expect_deliver(b, "alice", gid, "fence");
	expect_deliver(c, "alice", gid, "fence");
	client_conn_close(a);
	client_conn_close(b);
	client_conn_close(c);
}

Test(groups, state_survives_restart)
{
	const char *members[] = {"bob", "carol"}, *remove[] = {"bob"};
	const char *after[] = {"alice", "carol"};
	struct client_conn *a, *c;
	uint8_t gid[16];
	Sotto__Frame *info, *ok = NULL;
	uint32_t code;
	char err[256];

	sotto_random(gid, sizeof(gid));
	a = login(&alice);
	cr_assert_eq(create_as(a, &alice, gid, members, 2), 0);
	cr_assert_eq(change_as(a, &alice, gid, 2, OP_REMOVE, remove, 1), 0);
	frame_free(send_group_ok(a, gid, "kept across the restart", (uint8_t[16]){0}));
	client_conn_close(a);
	/* Every Ok and Ack above meant "committed": kill -9 loses none of it. */
	testsrv_signal(&srv, SIGKILL);
	cr_assert_eq(testsrv_restart(&srv), 0);
	a = login(&alice);
	cr_assert_not_null(info = get_group(a, gid, 0, &code), "%s", proto_error_name(code));
	check_members(info->group_info, after, 2);
	cr_assert_eq(info->group_info->serial, 2);
	cr_assert_eq(info->group_info->n_changes, 2);
	check_records(info->group_info, 1);
	frame_free(info);
	cr_assert_not_null(c = tconnect(&srv, 0, err, sizeof(err)), "%s", err);
	cr_assert_eq(client_conn_login(c, carol.name, carol.id, &ok), 0);
	cr_assert_eq(ok->login_ok->queued, 1);
	frame_free(ok);
	expect_deliver(c, "alice", gid, "kept across the restart");
	/* And the group goes on: the next change has the next serial. */
	cr_assert_eq(change_as(a, &alice, gid, 3, OP_ADD, remove, 1), 0);
	client_conn_close(a);
	client_conn_close(c);
}

/* ---- limits ------------------------------------------------------------------------------- */

Test(group_limits, members_and_groups_per_user)
{
	const char *three[] = {"bob", "carol", "dave"}, *two[] = {"bob", "carol"};
	const char *dave_only[] = {"dave"}, *bob_only[] = {"bob"};
	struct client_conn *a, *b, *d;
	uint8_t g1[16], g2[16], g3[16];

	sotto_random(g1, sizeof(g1));
	sotto_random(g2, sizeof(g2));
	sotto_random(g3, sizeof(g3));
	a = login(&alice);
	b = login(&bob);
	d = login(&dave);
	/* max_group_members 3, the owner included. */
	cr_assert_eq(create_as(a, &alice, g1, three, 3), SOTTO__ERROR_CODE__ERR_GROUP_LIMIT);
	cr_assert_eq(create_as(a, &alice, g1, two, 2), 0);
	cr_assert_eq(change_as(a, &alice, g1, 2, OP_ADD, dave_only, 1),
	        SOTTO__ERROR_CODE__ERR_GROUP_LIMIT);
	/* max_groups_per_user 2: bob is in g1 and g2, so not in g3; nor can he make one. */
	cr_assert_eq(create_as(d, &dave, g2, bob_only, 1), 0);
	cr_assert_eq(create_as(a, &alice, g3, bob_only, 1), SOTTO__ERROR_CODE__ERR_GROUP_LIMIT);
	cr_assert_eq(create_as(b, &bob, g3, NULL, 0), SOTTO__ERROR_CODE__ERR_GROUP_LIMIT);
	cr_assert_eq(create_as(a, &alice, g3, NULL, 0), 0, "alice is in one group");
	client_conn_close(a);
	client_conn_close(b);
	client_conn_close(d);
}
