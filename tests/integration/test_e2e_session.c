/*
 * End-to-end sessions between real sotto clients through a real sottod,
 * and the message for a store opened with the wrong identity key.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <criterion/criterion.h>
#include <sqlite3.h>

#include "crypto/util.h"
#include "tests/lib/testsrv.h"

#ifndef Test
#define Test(s, n) void s##_##n(void)
#define TestSuite(...)
#endif

static struct testsrv srv;

struct cu {
	char name[PROTO_USERNAME_MAX + 1];
	char home[400];
	char pass[420];
	char identity[420];
};

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

TestSuite(e2e_session, .init = setup, .fini = teardown, .timeout = 120);

/* A home with an Ed25519 identity made by sotto-keygen. */
static void
cu_make(struct cu *u, const char *name)
{
	struct proc_result res;
	FILE *fp;

	snprintf(u->name, sizeof(u->name), "%s", name);
	snprintf(u->home, sizeof(u->home), "%s/%s", srv.dir, name);
	snprintf(u->pass, sizeof(u->pass), "%s/pass", u->home);
	snprintf(u->identity, sizeof(u->identity), "%s/identity", u->home);
	cr_assert_eq(mkdir(u->home, 0700), 0);
	cr_assert_not_null(fp = fopen(u->pass, "w"));
	fprintf(fp, "pass of %s\n", name);
	fclose(fp);
	cr_assert_eq(proc_runl(&res, NULL, testsrv_program("sotto-keygen"), "-q", "-t", "ed25519",
	                     "-f", u->identity, "--passphrase-file", u->pass, (char *)NULL),
	        0);
	cr_assert_eq(res.status, 0, "sotto-keygen: %s", res.err);
	proc_result_free(&res);
}

/* Run sotto as u with the arguments that follow (NULL-terminated); expect exit status want. */
static void
cu_run(struct proc_result *res, const struct cu *u, int want, ...)
{
	const char *argv[40];
	char server[64];
	struct proc_opts po;
	const char *a;
	va_list ap;
	size_t n = 0;

	snprintf(server, sizeof(server), "127.0.0.1:%s", srv.port4);
	argv[n++] = testsrv_program("sotto");
	argv[n++] = "-H";
	argv[n++] = u->home;
	argv[n++] = "-s";
	argv[n++] = server;
	argv[n++] = "--passphrase-file";
	argv[n++] = u->pass;
	va_start(ap, want);
	while ((a = va_arg(ap, const char *)) != NULL && n < 39)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	memset(&po, 0, sizeof(po));
	po.env = (const char *const[]){"SOTTO_HOME", NULL};
	cr_assert_eq(proc_run(res, argv, &po), 0);
	cr_assert(res->exited, "sotto died of signal %d", res->signal);
	cr_assert_eq(res->status, want, "sotto %s %s: exit %d, want %d\nstdout: %s\nstderr: %s",
	        argv[7], argv[8] != NULL ? argv[8] : "", res->status, want, res->out, res->err);
}

static void
pair(struct cu *a, struct cu *b)
{
	struct proc_result res;

	cu_make(a, "alice");
	cu_make(b, "bob");
	cu_run(&res, a, 0, "register", "alice", (char *)NULL);
	proc_result_free(&res);
	cu_run(&res, b, 0, "register", "bob", (char *)NULL);
	proc_result_free(&res);
}

/* The wrong identity key for a profile is named once, clearly. */
Test(e2e_session, wrong_store_key)
{
	struct cu alice = {.name = ""}, bob = {.name = ""};
	struct proc_result res;

	pair(&alice, &bob);
	cu_run(&res, &alice, 1, "--identity", bob.identity, "--passphrase-file", bob.pass,
	        "history", "bob", (char *)NULL);
	cr_assert_not_null(
	        strstr(res.err, "it was made with another identity key\n"), "%s", res.err);
	cr_assert_null(strstr(res.err, "(made with"), "%s", res.err);
	proc_result_free(&res);
}
