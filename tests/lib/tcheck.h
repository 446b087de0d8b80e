/*
 * Asserting wrappers over testsrv and tclient for the integration suites:
 * the set-up most suites share (a started server, users made and
 * registered, a login), with each failure a criterion assertion that names
 * what failed.  Only for use inside a running test or a suite's init
 * function.  Not thread-safe.
 */
#ifndef SOTTO_TESTS_TCHECK_H
#define SOTTO_TESTS_TCHECK_H

#include "tests/lib/tclient.h"
#include "tests/lib/testsrv.h"

/* sotto_crypto_init(), then testsrv_start(s, flags) (flags NULL-terminated, or NULL). */
void tcheck_start(struct testsrv *s, const char *const *flags);

/*
 * tuser_new(users[i], names[i], type) for each user of the NULL-terminated
 * list users (names has as many entries).
 */
void tcheck_users_new(
        struct tuser *const users[], const char *const names[], enum identity_type type);
/* tregister() each user of the NULL-terminated list on s, in order. */
void tcheck_users_register(struct testsrv *s, struct tuser *const users[]);
/* tuser_free() each user of the NULL-terminated list (for a suite's fini). */
void tcheck_users_free(struct tuser *const users[]);

/* tlogin(): a logged-in connection for u. */
struct client_conn *tcheck_login(struct testsrv *s, struct tuser *u);

/* tclient_make(s, u, dir, name, rsa): a home srv->dir/dir with an identity, not registered. */
void tcheck_client_make(
        struct testsrv *s, struct tclient *u, const char *dir, const char *name, int rsa);
/* tcheck_client_make(s, u, name, name, 0), then "sotto register name" as u. */
void tcheck_client(struct testsrv *s, struct tclient *u, const char *name);

#endif
