/*
 * sotto send-file and sotto files end to end: a real sottod on loopback and
 * real sotto processes for alice (sender) and bob (recipient), each in a
 * home of its own.  Round trips of several sizes, byte for byte; what the
 * server's state directory holds; discard; hostile names; a tampered blob;
 * the server's limits; an upload resumed after sottod was killed and
 * restarted, and a download resumed after it stopped.  With SOTTO_SLOW_TESTS
 * set, a 256 MiB transfer whose peak RSS is measured for each process.
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "crypto/util.h"
#include "tests/lib/tclient.h"
#include "tests/lib/testsrv.h"

#ifndef Test
#define Test(s, n) void s##_##n(void)
#define TestSuite(...)
#endif

static struct testsrv srv;
static struct tclient alice, bob;
static char work[300]; /* the files alice sends */

static void
start(const char *const *extra)
{
	char err[512];
	struct proc_result res;
	struct tclient *u[] = {&alice, &bob};
	size_t i;

	cr_assert_eq(sotto_crypto_init(), 0);
	cr_assert_eq(testsrv_start(&srv, extra), 0, "sottod did not start");
	snprintf(work, sizeof(work), "%s/work", srv.dir);
	cr_assert_eq(mkdir(work, 0700), 0);
	cr_assert_eq(
	        tclient_make(&srv, &alice, "alice", "alice", 0, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(tclient_make(&srv, &bob, "bob", "bob", 0, err, sizeof(err)), 0, "%s", err);
	for (i = 0; i < 2; i++) {
		cr_assert_eq(
		        tclient_run(u[i], &res, NULL, "register", u[i]->name, (char *)NULL), 0);
		cr_assert_eq(res.status, 0, "register %s: %s", u[i]->name, res.err);
		proc_result_free(&res);
	}
}

static void
teardown(void)
{
	testsrv_cleanup(&srv);
}

TestSuite(file_client, .fini = teardown, .timeout = 120);

/* A file of n bytes in work/: random, with marker (if not NULL) in the middle. */
static uint8_t *
make_file(char *path, size_t pathlen, const char *name, size_t n, const char *marker)
{
	uint8_t *data = malloc(n + 1);
	FILE *fp;

	cr_assert_not_null(data);
	sotto_random(data, n);
	if (marker != NULL && n >= strlen(marker))
		memcpy(data + n / 2 - (n / 2 >= strlen(marker) ? strlen(marker) / 2 : 0), marker,
		        strlen(marker));
	snprintf(path, pathlen, "%s/%s", work, name);
	cr_assert_not_null(fp = fopen(path, "wb"), "%s", path);
	cr_assert_eq(fwrite(data, 1, n, fp), n);
	cr_assert_eq(fclose(fp), 0);
	return data;
}

/* The whole of path; *n its length. */
static uint8_t *
slurp(const char *path, size_t *n)
{
	struct stat st;
	uint8_t *data;
	FILE *fp;

	cr_assert_not_null(fp = fopen(path, "rb"), "%s: %s", path, strerror(errno));
	cr_assert_eq(fstat(fileno(fp), &st), 0);
	cr_assert_not_null(data = malloc((size_t)st.st_size + 1));
	cr_assert_eq(fread(data, 1, (size_t)st.st_size, fp), (size_t)st.st_size);
	fclose(fp);
	*n = (size_t)st.st_size;
	return data;
}

/* Run sotto as u (arguments NULL-terminated) and expect exit status want. */
static void
run(struct proc_result *res, const struct tclient *u, int want, const char *a1, const char *a2,
        const char *a3, const char *a4, const char *a5, const char *a6)
{
	cr_assert_eq(tclient_run(u, res, NULL, a1, a2, a3, a4, a5, a6, (char *)NULL), 0);
	cr_assert(res->exited, "sotto died of signal %d", res->signal);
	cr_assert_eq(res->status, want,
	        "sotto %s %s %s: status %d, want %d\nstdout: %s\nstderr: %s", a1,
	        a2 != NULL ? a2 : "", a3 != NULL ? a3 : "", res->status, want, res->out, res->err);
}

/* bob receives: the offer numbers announced (in order), at most max. */
static size_t
receive_offers(unsigned *ids, size_t max)
{
	struct proc_result res;
	const char *p;
	size_t n = 0;

	run(&res, &bob, 0, "--json", "receive", NULL, NULL, NULL, NULL);
	for (p = res.out; (p = strstr(p, "\"event\":\"file_offer\"")) != NULL; p++) {
		const char *id = strstr(p, "\"id\":");

		cr_assert_not_null(id, "%s", res.out);
		cr_assert(n < max);
		ids[n++] = (unsigned)strtoul(id + 5, NULL, 10);
	}
	proc_result_free(&res);
	return n;
}

/* The path a "saved ... as PATH" line (or file_saved event) names. */
static void
saved_path(const struct proc_result *res, char *out, size_t outlen)
{
	const char *p = strstr(res->out, "\"path\":\"");
	size_t i = 0;

	cr_assert_not_null(p, "no path in %s", res->out);
	for (p += 8; *p != '"' && i + 1 < outlen; p++) {
		if (*p == '\\')
			p++;
		out[i++] = *p;
	}
	out[i] = '\0';
}

static int
count_entries(const char *dir)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
	closedir(d);
	return n;
}

/* The one blob in the server's state (its path). */
static void
only_blob(char *out, size_t outlen)
{
	char dir[400];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(dir, sizeof(dir), "%s/files", srv.state);
	cr_assert_not_null(d = opendir(dir), "%s", dir);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(out, outlen, "%s/%s", dir, de->d_name);
		n++;
	}
	closedir(d);
	cr_assert_eq(n, 1, "the server holds %d blobs", n);
}

static void
downloads(char *out, size_t outlen, const struct tclient *u)
{
	snprintf(out, outlen, "%s/downloads", u->home);
}

/* Files of 0, 1, 65536 and 300 KiB bytes arrive byte for byte; the server sees none of it. */
Test(file_client, round_trips)
{
	static const size_t sizes[] = {0, 1, 65536, 300 * 1024};
	static const char *const names[] = {
	        "empty.txt", "one.bin", "chunk-secretname.bin", "multi-secretname.bin"};
	static const char marker[] = "MARKER-4f1e2d-inside-the-file";
	char path[4][512], out[600], dl[512], want[1100];
	uint8_t *data[4];
	unsigned ids[8];
	struct proc_result res;
	size_t i, n, got;
	uint8_t *back;

	start(NULL);
	for (i = 0; i < 4; i++) {
		data[i] = make_file(path[i], sizeof(path[i]), names[i], sizes[i],
		        sizes[i] > 1000 ? marker : NULL);
		run(&res, &alice, 0, "send-file", "bob", path[i], NULL, NULL, NULL);
		cr_assert(strstr(res.out, "offered") != NULL, "%s", res.out);
		/* No progress bar when standard error is not a terminal. */
		cr_assert_null(strchr(res.err, '\r'), "%s", res.err);
		cr_assert_null(strchr(res.err, '%'), "%s", res.err);
		proc_result_free(&res);
	}
	/* The server holds ciphertext only, under random ids, without names. */
	cr_assert_not(
	        testsrv_state_has(&srv, marker, strlen(marker)), "the marker is on the server");
	cr_assert_not(testsrv_state_has(&srv, "secretname", 10), "a file name is on the server");
	cr_assert_eq(n = receive_offers(ids, 8), 4);
	/* Listed, then accepted into the downloads directory. */
	run(&res, &bob, 0, "files", "list", NULL, NULL, NULL, NULL);
	cr_assert(strstr(res.out, "multi-secretname.bin") != NULL, "%s", res.out);
	cr_assert(strstr(res.out, "alice") != NULL, "%s", res.out);
	proc_result_free(&res);
	downloads(dl, sizeof(dl), &bob);
	for (i = 0; i < n; i++) {
		snprintf(out, sizeof(out), "%u", ids[i]);
		run(&res, &bob, 0, "--json", "files", "accept", out, NULL, NULL);
		saved_path(&res, out, sizeof(out));
		proc_result_free(&res);
		snprintf(want, sizeof(want), "%s/%s", dl, names[i]);
		cr_assert_str_eq(out, want);
		back = slurp(out, &got);
		cr_assert_eq(got, sizes[i], "%s: %zu bytes, want %zu", names[i], got, sizes[i]);
		cr_assert(memcmp(back, data[i], got) == 0, "%s differs", names[i]);
		free(back);
		free(data[i]);
	}
	cr_assert_eq(count_entries(dl), 4, "something else was left in %s", dl);
	/* Accepted by the only recipient: the blobs are gone, and so are the offers. */
	snprintf(out, sizeof(out), "%s/files", srv.state);
	cr_assert_eq(count_entries(out), 0, "the server kept blobs");
	run(&res, &bob, 0, "files", "list", NULL, NULL, NULL, NULL);
	cr_assert(strstr(res.out, "no file offers") != NULL, "%s", res.out);
	proc_result_free(&res);
	/* Sending the same file again makes a new name, never overwriting. */
	free(make_file(path[0], sizeof(path[0]), "one.bin", 10, NULL));
	run(&res, &alice, 0, "send-file", "bob", path[0], NULL, NULL, NULL);
	proc_result_free(&res);
	cr_assert_eq(receive_offers(ids, 8), 1);
	snprintf(out, sizeof(out), "%u", ids[0]);
	run(&res, &bob, 0, "files", "accept", out, NULL, NULL, NULL);
	cr_assert(strstr(res.out, "one (1).bin") != NULL, "%s", res.out);
	proc_result_free(&res);
	cr_expect(testsrv_healthy(&srv));
}

/* Discard tells the server, which deletes the blob; the offer is forgotten. */
Test(file_client, discard_removes_blob)
{
	char path[512], blob[1024], id[16];
	struct proc_result res;
	unsigned ids[4];
	struct stat st;

	start(NULL);
	free(make_file(path, sizeof(path), "unwanted.bin", 200000, NULL));
	run(&res, &alice, 0, "send-file", "bob", path, NULL, NULL, NULL);
	proc_result_free(&res);
	cr_assert_eq(receive_offers(ids, 4), 1);
	only_blob(blob, sizeof(blob));
	snprintf(id, sizeof(id), "%u", ids[0]);
	run(&res, &bob, 0, "files", "discard", id, NULL, NULL, NULL);
	cr_assert(strstr(res.out, "discarded") != NULL, "%s", res.out);
	proc_result_free(&res);
	cr_assert_neq(stat(blob, &st), 0, "the blob is still on the server");
	run(&res, &bob, 1, "files", "accept", id, NULL, NULL, NULL);
	cr_assert(strstr(res.err, "no file offer") != NULL, "%s", res.err);
	proc_result_free(&res);
}

/*
 * A file sent to a group is uploaded once and offered to each member: bob
 * and carol both see the offer "in group crew", accept it and get the same
 * bytes; the blob goes once both have it.  A stopped upload resumes, and an
 * unknown group is refused.
 */
Test(file_client, group_file)
{
	/* Many chunks and a partial one; over CLIENT_FILE_SYNC, so that a stop can come part way. */
	static const size_t size = 3 * 1024 * 1024 + 17;
	struct tclient carol, *members[] = {&bob, &carol};
	char path[512], err[512], dl[512], out[600], want[600], id[16], files[400];
	struct proc_result res;
	uint8_t *data, *back;
	size_t i, got;
	const char *p;

	start(NULL);
	cr_assert_eq(
	        tclient_make(&srv, &carol, "carol", "carol", 0, err, sizeof(err)), 0, "%s", err);
	run(&res, &carol, 0, "register", "carol", NULL, NULL, NULL, NULL);
	proc_result_free(&res);
	run(&res, &alice, 0, "group", "create", "crew", "bob", "carol", NULL);
	proc_result_free(&res);
	data = make_file(path, sizeof(path), "crew-plan.bin", size, NULL);

	/* A group that does not exist: a clear message, and nothing uploaded. */
	run(&res, &alice, 1, "send-file", "-g", "nosuchgroup", path, NULL, NULL);
	cr_assert(strstr(res.err, "nosuchgroup") != NULL, "%s", res.err);
	cr_assert(strstr(res.err, "no group") != NULL, "%s", res.err);
	proc_result_free(&res);
	snprintf(files, sizeof(files), "%s/files", srv.state);
	cr_assert_eq(count_entries(files), 0, "something was uploaded");

	/* Stopped part way, the upload to the group resumes. */
	run(&res, &alice, 3, "send-file", "--test-stop-after", "1500000", "-g", "crew", path);
	cr_assert(strstr(res.err, "run the same command again to resume") != NULL, "%s", res.err);
	proc_result_free(&res);
	run(&res, &alice, 0, "send-file", "-g", "crew", path, NULL, NULL);
	cr_assert(strstr(res.err, "resuming the upload of") != NULL, "%s", res.err);
	cr_assert(strstr(res.out, "offered crew-plan.bin (3.0 MiB) to group crew (2 of 2 "
	                          "members)") != NULL,
	        "%s", res.out);
	proc_result_free(&res);
	only_blob(out, sizeof(out)); /* uploaded once, for both */

	for (i = 0; i < 2; i++) {
		run(&res, members[i], 0, "receive", NULL, NULL, NULL, NULL, NULL);
		p = strstr(res.out, "alice offers crew-plan.bin (3.0 MiB) in group crew");
		cr_assert_not_null(p, "%s: %s", members[i]->name, res.out);
		p = strstr(p, "sotto files accept ");
		cr_assert_not_null(p, "%s", res.out);
		snprintf(id, sizeof(id), "%u", (unsigned)strtoul(p + 19, NULL, 10));
		proc_result_free(&res);
		run(&res, members[i], 0, "--json", "files", "accept", id, NULL, NULL);
		saved_path(&res, out, sizeof(out));
		proc_result_free(&res);
		downloads(dl, sizeof(dl), members[i]);
		snprintf(want, sizeof(want), "%s/crew-plan.bin", dl);
		cr_assert_str_eq(out, want);
		back = slurp(out, &got);
		cr_assert_eq(got, size, "%s got %zu bytes", members[i]->name, got);
		cr_assert(memcmp(back, data, size) == 0, "%s's copy differs", members[i]->name);
		free(back);
		/* The blob stays until the last member has it. */
		cr_assert_eq(count_entries(files), i == 0 ? 1 : 0, "after %s accepted",
		        members[i]->name);
	}
	free(data);
	cr_expect(testsrv_healthy(&srv));
}

/* Names meant to escape or hide land as plain files inside the downloads directory. */
Test(file_client, hostile_names)
{
	static char longname[10001];
	const char *names[] = {"../../etc/passwd", ".bashrc", "a\nb", longname};
	char path[512], dl[512], out[4200], id[16], real[4200], realdl[4200];
	struct proc_result res;
	unsigned ids[8];
	size_t i, n;

	memset(longname, 'x', sizeof(longname) - 1);
	start(NULL);
	free(make_file(path, sizeof(path), "innocent.txt", 100, NULL));
	for (i = 0; i < 4; i++) {
		run(&res, &alice, 0, "send-file", "--name", names[i], "bob", path, NULL);
		proc_result_free(&res);
	}
	cr_assert_eq(n = receive_offers(ids, 8), 4);
	/* Shown without the newline: one line per offer. */
	run(&res, &bob, 0, "files", "list", NULL, NULL, NULL, NULL);
	cr_assert(strstr(res.out, "a?b") != NULL, "%s", res.out);
	proc_result_free(&res);
	downloads(dl, sizeof(dl), &bob);
	for (i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "%u", ids[i]);
		run(&res, &bob, 0, "--json", "files", "accept", id, NULL, NULL);
		saved_path(&res, out, sizeof(out));
		proc_result_free(&res);
		cr_assert_not_null(realpath(out, real), "%s", out);
		cr_assert_not_null(realpath(dl, realdl));
		cr_assert(strncmp(real, realdl, strlen(realdl)) == 0 &&
		                  real[strlen(realdl)] == '/' &&
		                  strchr(real + strlen(realdl) + 1, '/') == NULL,
		        "%s is not directly inside %s", real, realdl);
		cr_assert_neq(real[strlen(realdl) + 1], '.', "%s is hidden", real);
		cr_assert_null(strchr(real, '\n'));
		cr_assert(strlen(real + strlen(realdl) + 1) <= 255);
	}
	cr_assert_eq(count_entries(dl), 4);
	snprintf(out, sizeof(out), "%s/etc", bob.home);
	cr_assert_eq(count_entries(out), 0);
}

/* A blob changed at the server fails the accept, says so, and leaves nothing behind. */
Test(file_client, tampered_chunk)
{
	char path[512], blob[1024], dl[512], id[16];
	struct proc_result res;
	unsigned ids[4];
	uint8_t byte;
	int fd;

	start(NULL);
	free(make_file(path, sizeof(path), "victim.bin", 200000, NULL));
	run(&res, &alice, 0, "send-file", "bob", path, NULL, NULL, NULL);
	proc_result_free(&res);
	cr_assert_eq(receive_offers(ids, 4), 1);
	only_blob(blob, sizeof(blob));
	/* Flip a byte inside the second chunk (past the header and the first chunk). */
	cr_assert((fd = open(blob, O_RDWR)) >= 0, "%s", blob);
	cr_assert_eq(pread(fd, &byte, 1, 100000), 1);
	byte ^= 0x40;
	cr_assert_eq(pwrite(fd, &byte, 1, 100000), 1);
	close(fd);
	snprintf(id, sizeof(id), "%u", ids[0]);
	run(&res, &bob, 3, "files", "accept", id, NULL, NULL, NULL);
	cr_assert(strstr(res.err, "integrity") != NULL, "%s", res.err);
	cr_assert(strstr(res.err, "tampered") != NULL, "%s", res.err);
	proc_result_free(&res);
	downloads(dl, sizeof(dl), &bob);
	cr_assert_eq(count_entries(dl), 0, "a partial or unverified file was left in %s", dl);
	/* The offer stays listed, for discard. */
	run(&res, &bob, 0, "files", "list", NULL, NULL, NULL, NULL);
	cr_assert(strstr(res.out, "victim.bin") != NULL, "%s", res.out);
	proc_result_free(&res);
}

/* max_file_size and user_quota come back as sentences, before anything is sent. */
Test(file_client, limits_shown)
{
	const char *const extra[] = {"--max-file-size", "1M", "--user-quota", "1500K", NULL};
	char big[512], mid[512], mid2[512];
	struct proc_result res;
	unsigned ids[4];

	start(extra);
	free(make_file(big, sizeof(big), "big.bin", 2 * 1024 * 1024, NULL));
	run(&res, &alice, 1, "send-file", "bob", big, NULL, NULL, NULL);
	cr_assert(strstr(res.err, "big.bin is too large for the server") != NULL, "%s", res.err);
	cr_assert(strstr(res.err, "nothing was sent") != NULL, "%s", res.err);
	proc_result_free(&res);
	free(make_file(mid, sizeof(mid), "mid.bin", 900 * 1024, NULL));
	free(make_file(mid2, sizeof(mid2), "mid2.bin", 900 * 1024, NULL));
	run(&res, &alice, 0, "send-file", "bob", mid, NULL, NULL, NULL);
	proc_result_free(&res);
	run(&res, &alice, 1, "send-file", "bob", mid2, NULL, NULL, NULL);
	cr_assert(strstr(res.err, "does not fit in your storage") != NULL, "%s", res.err);
	cr_assert(strstr(res.err, "quota") != NULL, "%s", res.err);
	proc_result_free(&res);
	/* Only the one that fitted was offered. */
	cr_assert_eq(receive_offers(ids, 4), 1);
}

/* The first progress event's byte count (resumed transfers start past 0). */
static unsigned long long
first_progress(const char *out)
{
	const char *p = strstr(out, "\"event\":\"progress\"");

	cr_assert_not_null(p, "no progress in %s", out);
	cr_assert_not_null(p = strstr(p, "\"done\":"));
	return strtoull(p + 7, NULL, 10);
}

/* An upload stopped part way resumes after sottod was killed and restarted; so does a download. */
Test(file_client, resume_after_restart)
{
	const size_t n = 6 * 1024 * 1024;
	char path[512], id[16], out[600];
	struct proc_result res;
	unsigned ids[4];
	uint8_t *data, *back;
	size_t got;

	start(NULL);
	data = make_file(path, sizeof(path), "big.bin", n, NULL);
	run(&res, &alice, 3, "send-file", "--test-stop-after", "3000000", "bob", path, NULL);
	cr_assert(strstr(res.err, "run the same command again to resume") != NULL, "%s", res.err);
	proc_result_free(&res);
	testsrv_signal(&srv, SIGKILL);
	cr_assert_eq(testsrv_restart(&srv), 0, "sottod did not restart");
	snprintf(alice.server, sizeof(alice.server), "127.0.0.1:%s", srv.port4);
	snprintf(bob.server, sizeof(bob.server), "127.0.0.1:%s", srv.port4);
	run(&res, &alice, 0, "--json", "send-file", "bob", path, NULL, NULL);
	cr_assert_geq(first_progress(res.out), 1024 * 1024, "the upload began again: %s", res.out);
	cr_assert(strstr(res.out, "\"event\":\"file_sent\"") != NULL, "%s", res.out);
	proc_result_free(&res);
	cr_assert_eq(receive_offers(ids, 4), 1);
	snprintf(id, sizeof(id), "%u", ids[0]);
	/* The download stops part way, and goes on from there. */
	run(&res, &bob, 3, "files", "accept", "--test-stop-after", "2000000", id, NULL);
	cr_assert(strstr(res.err, "again to resume") != NULL, "%s", res.err);
	proc_result_free(&res);
	run(&res, &bob, 0, "--json", "files", "accept", id, NULL, NULL);
	cr_assert_geq(
	        first_progress(res.out), 1024 * 1024, "the download began again: %s", res.out);
	saved_path(&res, out, sizeof(out));
	proc_result_free(&res);
	back = slurp(out, &got);
	cr_assert_eq(got, n);
	cr_assert(memcmp(back, data, n) == 0, "the file differs");
	free(back);
	free(data);
}

/* Peak RSS (KiB) of a finished child, as wait4 reports it. */
static long
run_rss(const struct tclient *u, const char *a1, const char *a2, const char *a3, const char *a4)
{
	const char *argv[TCLIENT_ARGS_MAX + 1];
	struct rusage ru;
	size_t n = tclient_argv(u, argv);
	int status;
	pid_t pid;

	argv[n++] = a1;
	argv[n++] = a2;
	argv[n++] = a3;
	argv[n++] = a4;
	argv[n] = NULL;
	cr_assert((pid = fork()) >= 0);
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);

		dup2(fd, STDOUT_FILENO);
		unsetenv("SOTTO_HOME");
		execv(argv[0], (char *const *)(uintptr_t)argv);
		_exit(127);
	}
	cr_assert_eq(wait4(pid, &status, 0, &ru), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "sotto %s failed", a1);
	return ru.ru_maxrss;
}

/* Server's peak RSS (KiB) from /proc. */
static long
server_hwm(void)
{
	char path[64], line[256];
	long kib = -1;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)proc_pid(srv.proc));
	cr_assert_not_null(fp = fopen(path, "r"));
	while (fgets(line, sizeof(line), fp) != NULL)
		if (strncmp(line, "VmHWM:", 6) == 0)
			kib = strtol(line + 6, NULL, 10);
	fclose(fp);
	return kib;
}

/* 256 MiB through sottod: neither it nor a client passes 64 MiB of RSS (SOTTO_SLOW_TESTS). */
Test(file_client, memory_256mib)
{
	const size_t n = 256u * 1024 * 1024, step = 1024 * 1024;
	char path[512], id[16], out[600];
	long up, down, sd;
	unsigned ids[4];
	uint8_t *buf;
	FILE *fp;
	size_t i;

	if (getenv("SOTTO_SLOW_TESTS") == NULL) {
		cr_log_info("memory_256mib: set SOTTO_SLOW_TESTS to run it");
		return;
	}
	start(NULL);
	snprintf(path, sizeof(path), "%s/huge.bin", work);
	cr_assert_not_null(buf = malloc(step));
	cr_assert_not_null(fp = fopen(path, "wb"));
	for (i = 0; i < n / step; i++) {
		sotto_random(buf, step);
		cr_assert_eq(fwrite(buf, 1, step, fp), step);
	}
	fclose(fp);
	free(buf);
	up = run_rss(&alice, "send-file", "bob", path, NULL);
	cr_assert_eq(receive_offers(ids, 4), 1);
	snprintf(id, sizeof(id), "%u", ids[0]);
	snprintf(out, sizeof(out), "%s/out.bin", work);
	down = run_rss(&bob, "files", "accept", id, out);
	sd = server_hwm();
	fprintf(stderr,
	        "memory_256mib: peak RSS sender %ld KiB, receiver %ld KiB, sottod %ld KiB\n", up,
	        down, sd);
	cr_assert_lt(up, 64 * 1024);
	cr_assert_lt(down, 64 * 1024);
	cr_assert_lt(sd, 64 * 1024);
}
