/* Asserting set-up for the integration suites; see tcheck.h. */
#include "config.h"

#include <stddef.h>

#include <criterion/criterion.h>

#include "crypto/util.h"
#include "tests/lib/tcheck.h"

void
tcheck_start(struct testsrv *s, const char *const *flags)
{
	cr_assert_eq(sotto_crypto_init(), 0);
	cr_assert_eq(testsrv_start(s, flags), 0, "sottod did not start");
}

void
tcheck_users_new(struct tuser *const users[], const char *const names[], enum identity_type type)
{
	size_t i;

	for (i = 0; users[i] != NULL; i++) {
		cr_assert_not_null(names[i], "no name for user %zu", i);
		cr_assert_eq(tuser_new(users[i], names[i], type), 0, "new user %s", names[i]);
	}
}

void
tcheck_users_register(struct testsrv *s, struct tuser *const users[])
{
	size_t i;

	for (i = 0; users[i] != NULL; i++)
		cr_assert_eq(tregister(s, users[i]), 0, "register %s", users[i]->name);
}

void
tcheck_users_free(struct tuser *const users[])
{
	size_t i;

	for (i = 0; users[i] != NULL; i++)
		tuser_free(users[i]);
}

struct client_conn *
tcheck_login(struct testsrv *s, struct tuser *u)
{
	struct client_conn *c;
	char err[512];

	cr_assert_not_null(c = tlogin(s, u, err, sizeof(err)), "%s: %s", u->name, err);
	return c;
}

void
tcheck_client_make(struct testsrv *s, struct tclient *u, const char *dir, const char *name, int rsa)
{
	char err[512];

	cr_assert_eq(tclient_make(s, u, dir, name, rsa, err, sizeof(err)), 0, "%s", err);
}

void
tcheck_client(struct testsrv *s, struct tclient *u, const char *name)
{
	struct proc_result res;

	tcheck_client_make(s, u, name, name, 0);
	cr_assert_eq(tclient_run(u, &res, NULL, "register", name, (char *)NULL), 0);
	cr_assert(res.exited && res.status == 0, "register %s: %s", name, res.err);
	proc_result_free(&res);
}
