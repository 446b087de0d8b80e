/*
 * Groups end to end: a real sottod on loopback and real sotto clients, each
 * user in a home of its own.  Create, send, receive, rename; an offline
 * member catching up; removal and joining with the ciphertexts taken from
 * the server's queue; a server that inserts a member or forwards a
 * non-owner's change; and what the server's files never hold.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <sqlite3.h>

#include "crypto/util.h"
#include "src/client-group.h"
#include "src/client-store.h"
#include "tests/lib/tclient.h"

#ifndef Test
#define Test(s, n) void s##_##n(void)
#define TestSuite(...)
#endif

static struct testsrv srv;

static void
setup(void)
{
	cr_assert_eq(sotto_crypto_init(), 0);
	cr_assert_eq(testsrv_start(&srv, NULL), 0, "sottod did not start");
}

static void
teardown(void)
{
	testsrv_cleanup(&srv);
}

TestSuite(group_client, .init = setup, .fini = teardown, .timeout = 120);

/* A user with a home of its own, registered on the server. */
static void
user(struct tclient *u, const char *name)
{
	struct proc_result res;
	char err[512];

	cr_assert_eq(tclient_make(&srv, u, name, name, 0, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(tclient_run(u, &res, NULL, "register", name, (char *)NULL), 0);
	cr_assert(res.exited && res.status == 0, "register %s: %s", name, res.err);
	proc_result_free(&res);
}

/* Run sotto as u with up to 8 arguments (NULL-terminated) and expect exit status want. */
static void
run(struct proc_result *res, const struct tclient *u, int want, ...)
{
	const char *a[9];
	va_list ap;
	size_t n = 0;

	memset(a, 0, sizeof(a));
	va_start(ap, want);
	while (n < 8 && (a[n] = va_arg(ap, const char *)) != NULL)
		n++;
	va_end(ap);
	cr_assert_eq(tclient_run(u, res, NULL, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7],
	                     (char *)NULL),
	        0);
	cr_assert(res->exited, "sotto died of signal %d", res->signal);
	cr_assert_eq(res->status, want, "sotto %s %s %s: status %d, want %d\nout: %s\nerr: %s",
	        a[0], a[1] != NULL ? a[1] : "", a[2] != NULL ? a[2] : "", res->status, want,
	        res->out, res->err);
}

/* Run, expect status 0, and drop the output. */
static void
ok(const struct tclient *u, ...)
{
	struct proc_result res;
	const char *a[9];
	va_list ap;
	size_t n = 0;

	memset(a, 0, sizeof(a));
	va_start(ap, u);
	while (n < 8 && (a[n] = va_arg(ap, const char *)) != NULL)
		n++;
	va_end(ap);
	run(&res, u, 0, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], (char *)NULL);
	proc_result_free(&res);
}

/* sotto receive as u; res holds what it printed. */
static void
receive(struct proc_result *res, const struct tclient *u)
{
	run(res, u, 0, "receive", "--timeout", "1", (char *)NULL);
}

/* 1 if hay holds needle. */
static int
has(const char *hay, const char *needle)
{
	return hay != NULL && strstr(hay, needle) != NULL;
}

/* alice creates "friends" with bob and carol; each of them receives the news. */
static void
three(struct tclient *a, struct tclient *b, struct tclient *c)
{
	struct proc_result res;

	user(a, "alice");
	user(b, "bob");
	user(c, "carol");
	run(&res, a, 0, "group", "create", "friends", "bob", "carol", (char *)NULL);
	cr_assert(has(res.out, "group friends ("), "%s", res.out);
	proc_result_free(&res);
	receive(&res, b);
	cr_assert(has(res.out, "alice added you to group friends, with alice and carol") ||
	                  has(res.out, "alice added you to group friends"),
	        "%s", res.out);
	proc_result_free(&res);
	receive(&res, c);
	cr_assert(has(res.out, "alice added you to group friends"), "%s", res.out);
	proc_result_free(&res);
}

Test(group_client, create_send_receive_rename)
{
	struct tclient a, b, c;
	struct proc_result res;

	three(&a, &b, &c);
	run(&res, &a, 0, "send", "-g", "friends", "-m", "hello friends", (char *)NULL);
	cr_assert(has(res.out, "sent to group friends (2 other members"), "%s", res.out);
	proc_result_free(&res);
	receive(&res, &b);
	cr_assert(has(res.out, "[friends] alice: hello friends"), "%s\n%s", res.out, res.err);
	proc_result_free(&res);
	/* bob answers; his chain reaches alice and carol in front of his message. */
	ok(&b, "send", "-g", "friends", "-m", "hi from bob", (char *)NULL);
	receive(&res, &c);
	cr_assert(has(res.out, "[friends] alice: hello friends"), "%s\n%s", res.out, res.err);
	cr_assert(has(res.out, "[friends] bob: hi from bob"), "%s\n%s", res.out, res.err);
	cr_assert(strstr(res.out, "alice: hello") < strstr(res.out, "bob: hi"), "%s", res.out);
	proc_result_free(&res);
	run(&res, &a, 0, "--json", "receive", "--timeout", "1", (char *)NULL);
	cr_assert(
	        has(res.out, "\"from\":\"bob\",\"group\":\"friends\""), "%s\n%s", res.out, res.err);
	proc_result_free(&res);

	/* Rename: the owner only. */
	run(&res, &b, 1, "group", "rename", "friends", "enemies", (char *)NULL);
	cr_assert(has(res.err, "only alice, the owner of group friends, may rename it"), "%s",
	        res.err);
	proc_result_free(&res);
	ok(&a, "group", "rename", "friends", "pals", (char *)NULL);
	receive(&res, &b);
	cr_assert(has(res.out, "alice renamed group friends to pals"), "%s\n%s", res.out, res.err);
	proc_result_free(&res);
	ok(&a, "send", "-g", "pals", "-m", "new name", (char *)NULL);
	receive(&res, &c);
	cr_assert(has(res.out, "[pals] alice: new name"), "%s\n%s", res.out, res.err);
	proc_result_free(&res);

	/* History keeps the group's messages apart from the direct ones. */
	run(&res, &c, 0, "history", "-g", "pals", (char *)NULL);
	cr_assert(has(res.out, "[pals] alice: hello friends [received]"), "%s", res.out);
	cr_assert(has(res.out, "[pals] bob: hi from bob [received]"), "%s", res.out);
	proc_result_free(&res);
	run(&res, &c, 0, "history", "alice", (char *)NULL);
	cr_assert_not(has(res.out, "hello friends"), "%s", res.out);
	proc_result_free(&res);
	run(&res, &a, 0, "--json", "history", "-g", "pals", (char *)NULL);
	cr_assert(has(res.out, "\"group\":\"pals\""), "%s", res.out);
	cr_assert(has(res.out, "\"text\":\"hello friends\""), "%s", res.out);
	proc_result_free(&res);

	/* members and list. */
	run(&res, &b, 0, "group", "members", "pals", (char *)NULL);
	cr_assert(has(res.out, "alice (owner)  tofu"), "%s", res.out);
	cr_assert(has(res.out, "bob  you"), "%s", res.out);
	cr_assert(has(res.out, "carol  tofu"), "%s", res.out);
	proc_result_free(&res);
	run(&res, &b, 0, "--json", "group", "list", (char *)NULL);
	cr_assert(has(res.out, "\"group\":\"pals\""), "%s", res.out);
	cr_assert(has(res.out, "\"members\":[\"alice\",\"bob\",\"carol\"]"), "%s", res.out);
	proc_result_free(&res);
}
