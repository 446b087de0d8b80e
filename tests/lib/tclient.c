/* Helpers for tests that run the sotto program; see tclient.h. */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tests/lib/tclient.h"

int
tclient_make(const struct testsrv *srv, struct tclient *u, const char *dir, const char *name,
        int rsa, char *err, size_t errlen)
{
	struct proc_result res;
	FILE *fp;
	int r = -1;

	memset(u, 0, sizeof(*u));
	snprintf(u->name, sizeof(u->name), "%s", name);
	snprintf(u->home, sizeof(u->home), "%s/%s", srv->dir, dir);
	snprintf(u->pass, sizeof(u->pass), "%s/pass", u->home);
	snprintf(u->identity, sizeof(u->identity), "%s/identity", u->home);
	snprintf(u->server, sizeof(u->server), "127.0.0.1:%s", srv->port4);
	if (mkdir(u->home, 0700) != 0) {
		snprintf(err, errlen, "%s: %s", u->home, strerror(errno));
		return -1;
	}
	if ((fp = fopen(u->pass, "w")) == NULL) {
		snprintf(err, errlen, "%s: %s", u->pass, strerror(errno));
		return -1;
	}
	fprintf(fp, "pass of %s in %s\n", name, dir);
	fclose(fp);
	if (proc_runl(&res, NULL, testsrv_program("sotto-keygen"), "-q", "-t",
	            rsa ? "rsa" : "ed25519", "-f", u->identity, "--passphrase-file", u->pass,
	            (char *)NULL) != 0) {
		snprintf(err, errlen, "cannot run sotto-keygen: %s", strerror(errno));
		return -1;
	}
	if (res.exited && res.status == 0)
		r = 0;
	else
		snprintf(err, errlen, "sotto-keygen failed: %s", res.err);
	proc_result_free(&res);
	return r;
}

size_t
tclient_argv(const struct tclient *u, const char **argv)
{
	size_t n = 0;

	argv[n++] = testsrv_program("sotto");
	argv[n++] = "-H";
	argv[n++] = u->home;
	argv[n++] = "-s";
	argv[n++] = u->server;
	argv[n++] = "--passphrase-file";
	argv[n++] = u->pass;
	return n;
}

int
tclient_run(const struct tclient *u, struct proc_result *res, const char *input, ...)
{
	static const char *const env[] = {"SOTTO_HOME", NULL};
	const char *argv[TCLIENT_ARGS_MAX + 1];
	struct proc_opts po;
	const char *a;
	va_list ap;
	size_t n = tclient_argv(u, argv);

	va_start(ap, input);
	while ((a = va_arg(ap, const char *)) != NULL && n < TCLIENT_ARGS_MAX)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	memset(&po, 0, sizeof(po));
	po.input = input;
	po.inputlen = input != NULL ? strlen(input) : 0;
	po.env = env;
	return proc_run(res, argv, &po);
}
