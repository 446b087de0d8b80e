/*
 * Integration-test helpers for the sotto program itself: a user with a home
 * directory of its own (-H) under the test server's directory, a passphrase
 * file and an identity made by the real sotto-keygen, and sotto runs against
 * the server.  Functions return 0, or -1 with a sentence in err.  Not
 * thread-safe.
 */
#ifndef SOTTO_TESTS_TCLIENT_H
#define SOTTO_TESTS_TCLIENT_H

#include <stddef.h>

#include "tests/lib/testsrv.h"

#define TCLIENT_ARGS_MAX 40 /* arguments of one sotto run, global options included */

struct tclient {
	char name[PROTO_USERNAME_MAX + 1]; /* the user name on the server */
	char home[400];                    /* its -H directory */
	char pass[420];                    /* its --passphrase-file */
	char identity[420];                /* its identity key; identity.pub beside it */
	char server[64];                   /* 127.0.0.1:PORT of the test server */
};

/*
 * Make srv->dir/dir (mode 0700) for user name, a passphrase file holding
 * "pass of NAME in DIR" and an identity (RSA-3072 if rsa, else Ed25519) in it.
 */
int tclient_make(const struct testsrv *srv, struct tclient *u, const char *dir, const char *name,
        int rsa, char *err, size_t errlen);

/*
 * The command line that runs sotto as u: the program and its global options
 * (-H, -s, --passphrase-file) in argv[0..n), n returned.  argv has room for
 * TCLIENT_ARGS_MAX entries.
 */
size_t tclient_argv(const struct tclient *u, const char **argv);

/*
 * Run sotto as u with the arguments that follow (NULL-terminated) and input
 * on its standard input (NULL: none), with SOTTO_HOME unset.
 */
int tclient_run(const struct tclient *u, struct proc_result *res, const char *input, ...)
        __attribute__((sentinel));

#endif
