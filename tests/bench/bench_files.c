/*
 * File transfer throughput (make bench): a 256 MiB file through the sottod
 * built here, on loopback, next to a raw TLS 1.3 stream in the same run.
 *
 *   1. upload: alice encrypts and uploads the file (src/client-file.c);
 *   2. download: bob downloads, decrypts and verifies it into a directory;
 *   3. raw TLS: the same number of bytes over one TLS 1.3 connection between
 *      two processes, with sottod's certificate and cipher suite, one way, in
 *      64 KiB writes: what moving the bytes costs with nothing else to do;
 *   4. the end-to-end encryption alone (filecrypt: secretstream and SHA-256,
 *      in memory, one core), the work a sender does on top of TLS, so that
 *      the ratio to raw TLS can be read against what the crypto allows.
 *
 * For each it prints MB/s (10^6 bytes of plaintext per second), the
 * client's and the server's CPU seconds (getrusage, /proc/PID/stat), the
 * medians over --runs runs with min and max, and the ratio to raw TLS (the
 * target is at least 0.5).  It also checks the memory bound of issue 6:
 * sottod's peak RSS (VmHWM) and the client's (ru_maxrss) must stay under
 * 64 MiB, and the run fails (exit 1) if either does not.  Only loopback
 * addresses are used.
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "crypto/util.h"
#include "src/client-file.h"
#include "src/tls.h"
#include "tests/lib/testsrv.h"

#define MIB       (1024 * 1024)
#define RSS_BOUND (64 * 1024) /* KiB */
#define RAW_CHUNK 65536
#define RAW_SUITE "TLS_AES_256_GCM_SHA384"
#define MAX_RUNS  20

static struct {
	unsigned size_mib;
	unsigned runs;
} O = {256, 3};

static struct testsrv srv;

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
self_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* utime + stime of pid from /proc, in seconds; -1 if unreadable. */
static double
pid_cpu_s(pid_t pid)
{
	char path[64], buf[2048], *p;
	unsigned long long ut = 0, st = 0;
	long tck = sysconf(_SC_CLK_TCK);
	FILE *fp;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if ((fp = fopen(path, "r")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	if ((p = strrchr(buf, ')')) == NULL || tck <= 0 ||
	        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) !=
	                2)
		return -1;
	return (double)(ut + st) / (double)tck;
}

/* A "VmXXX:" line of pid's status, in KiB; -1 if unreadable. */
static long
pid_status_kib(pid_t pid, const char *field)
{
	char path[64], line[256];
	size_t flen = strlen(field);
	long kib = -1;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	if ((fp = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), fp) != NULL) {
		if (strncmp(line, field, flen) == 0)
			kib = strtol(line + flen, NULL, 10);
	}
	fclose(fp);
	return kib;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct series {
	const char *name;
	double mbps[MAX_RUNS], ccpu[MAX_RUNS], scpu[MAX_RUNS];
	double tail[MAX_RUNS]; /* seconds after the last partial progress report */
	size_t n;
};

/* Progress hook: when the last report short of the whole file came. */
static int
last_partial_cb(void *arg, uint64_t done, uint64_t total)
{
	if (done < total)
		*(double *)arg = now_s();
	return 0;
}

static void
series_print(struct series *s, const char *client, const char *server)
{
	double lo, hi, m, cc, sc;

	m = median(s->mbps, s->n);
	lo = s->mbps[0];
	hi = s->mbps[s->n - 1];
	cc = median(s->ccpu, s->n);
	sc = median(s->scpu, s->n);
	printf("  %-34s %8.1f MB/s (%.1f .. %.1f), %s CPU %.2f s, %s CPU %.2f s\n", s->name, m, lo,
	        hi, client, cc, server, sc);
	if (s->tail[0] > 0)
		printf("  %-34s %8.2f s of that after the last progress report (the flush to "
		       "disk)\n",
		        "", median(s->tail, s->n));
}

static void __attribute__((format(printf, 1, 2))) die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "bench_files: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	testsrv_cleanup(&srv);
	exit(2);
}

static void
make_source(const char *path, uint64_t size)
{
	uint8_t *buf = malloc(MIB);
	uint64_t left = size;
	FILE *fp;

	if (buf == NULL || (fp = fopen(path, "wb")) == NULL)
		die("cannot create %s", path);
	while (left > 0) {
		size_t n = left > MIB ? MIB : (size_t)left;

		sotto_random(buf, n);
		if (fwrite(buf, 1, n, fp) != n)
			die("cannot write %s", path);
		left -= n;
	}
	if (fclose(fp) != 0)
		die("cannot write %s", path);
	free(buf);
}

/* ---- raw TLS 1.3 over loopback ------------------------------------------------------ */

/* The receiving side, in a child: read size bytes, answer with its CPU seconds. */
static void
raw_receiver(int lfd, SSL_CTX *ctx, uint64_t size)
{
	uint8_t *buf = malloc(RAW_CHUNK);
	uint64_t got = 0;
	double cpu;
	SSL *ssl;
	int fd, n;

	if (buf == NULL || (fd = accept(lfd, NULL, NULL)) < 0 || (ssl = SSL_new(ctx)) == NULL ||
	        SSL_set_fd(ssl, fd) != 1 || SSL_accept(ssl) != 1)
		_exit(1);
	while (got < size) {
		if ((n = SSL_read(ssl, buf, RAW_CHUNK)) <= 0)
			_exit(1);
		got += (uint64_t)n;
	}
	cpu = self_cpu_s();
	if (SSL_write(ssl, &cpu, sizeof(cpu)) != (int)sizeof(cpu))
		_exit(1);
	SSL_shutdown(ssl);
	_exit(0);
}

/* One raw run: MB/s, the sender's and the receiver's CPU seconds, and the suite used. */
static int
raw_run(uint64_t size, double *mbps, double *send_cpu, double *recv_cpu, char *suite,
        size_t suitelen)
{
	char cert[512], key[512], err[512];
	SSL_CTX *sctx = NULL, *cctx = NULL;
	struct sockaddr_in sin;
	socklen_t slen = sizeof(sin);
	uint8_t *buf = NULL;
	uint64_t sent = 0;
	double t0, c0, cpu = 0;
	SSL *ssl = NULL;
	int lfd = -1, fd = -1, one = 1, status, r = -1, n;
	pid_t pid = -1;

	snprintf(cert, sizeof(cert), "%s/server.crt", srv.state);
	snprintf(key, sizeof(key), "%s/server.key", srv.state);
	if (tls_server_ctx_new(&sctx, cert, key, err, sizeof(err)) != 0 ||
	        tls_client_ctx_new(&cctx, NULL, err, sizeof(err)) != 0 ||
	        SSL_CTX_set_ciphersuites(cctx, RAW_SUITE) != 1)
		goto out;
	if ((lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		goto out;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(lfd, 1) != 0 ||
	        getsockname(lfd, (struct sockaddr *)&sin, &slen) != 0)
		goto out;
	if ((pid = fork()) < 0)
		goto out;
	if (pid == 0)
		raw_receiver(lfd, sctx, size);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	        connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0)
		goto out;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if ((ssl = SSL_new(cctx)) == NULL || SSL_set_fd(ssl, fd) != 1 || SSL_connect(ssl) != 1)
		goto out;
	snprintf(suite, suitelen, "%s", SSL_get_cipher(ssl));
	if ((buf = malloc(RAW_CHUNK)) == NULL)
		goto out;
	sotto_random(buf, RAW_CHUNK);
	t0 = now_s();
	c0 = self_cpu_s();
	while (sent < size) {
		n = size - sent > RAW_CHUNK ? RAW_CHUNK : (int)(size - sent);
		if (SSL_write(ssl, buf, n) != n)
			goto out;
		sent += (uint64_t)n;
	}
	if (SSL_read(ssl, &cpu, sizeof(cpu)) != (int)sizeof(cpu))
		goto out;
	*mbps = (double)size / 1e6 / (now_s() - t0);
	*send_cpu = self_cpu_s() - c0;
	*recv_cpu = cpu; /* the child did nothing else before */
	r = 0;
out:
	if (ssl != NULL)
		SSL_free(ssl);
	if (fd >= 0)
		close(fd);
	if (lfd >= 0)
		close(lfd);
	if (pid > 0) {
		if (r != 0)
			kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
	free(buf);
	ERR_clear_error();
	return r;
}

/* filecrypt over size bytes in memory: MB/s of plaintext (encrypt and hash, one core). */
static double
crypto_run(uint64_t size)
{
	uint8_t key[FILECRYPT_KEYBYTES], header[FILECRYPT_HEADERBYTES], hash[FILECRYPT_HASHBYTES];
	uint8_t *m = malloc(FILECRYPT_CHUNK), *c = malloc(FILECRYPT_CCHUNK);
	struct filecrypt *fc = NULL;
	uint64_t done = 0;
	double t0, mbps = 0;
	size_t take;

	if (m == NULL || c == NULL)
		die("%s", "out of memory");
	sotto_random(m, FILECRYPT_CHUNK);
	filecrypt_keygen(key);
	if (filecrypt_push_new(&fc, header, key) != 0)
		die("%s", "cannot set up filecrypt");
	t0 = now_s();
	while (done < size) {
		take = size - done > FILECRYPT_CHUNK ? FILECRYPT_CHUNK : (size_t)(size - done);
		if (filecrypt_push(fc, c, m, take, done + take == size) != 0)
			die("%s", "filecrypt_push failed");
		done += take;
	}
	if (filecrypt_finish(fc, hash) == 0)
		mbps = (double)size / 1e6 / (now_s() - t0);
	filecrypt_free(fc);
	free(m);
	free(c);
	return mbps;
}

/* ---- through sottod --------------------------------------------------------------- */

static void
usage(void)
{
	fprintf(stderr, "usage: bench_files [--size MIB] [--runs N]\n");
	exit(1);
}

int
main(int argc, char **argv)
{
	struct series up = {"file upload (encrypt + send)", {0}, {0}, {0}, {0}, 0};
	struct series down = {"file download (receive + decrypt)", {0}, {0}, {0}, {0}, 0};
	struct series raw = {"raw TLS 1.3 stream, one way", {0}, {0}, {0}, {0}, 0};
	double crypto[MAX_RUNS], last_partial = 0;
	struct client_file_opts o = {last_partial_cb, NULL, &last_partial, 0};
	const char *to[] = {"bob"};
	char src[400], dir[400], got[1024], err[512], suite[64] = "?";
	struct client_file_upload u;
	struct client_file_offer of;
	struct client_file_download dl;
	struct client_conn *a, *b;
	struct tuser alice, bob;
	struct rusage ru;
	double t0, c0, s0, rawm, ratio_up, ratio_down;
	uint64_t size;
	pid_t spid;
	long hwm;
	int i, fail = 0;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--size") == 0 && i + 1 < argc)
			O.size_mib = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
			O.runs = (unsigned)strtoul(argv[++i], NULL, 10);
		else
			usage();
	}
	if (O.size_mib == 0 || O.runs == 0 || O.runs > MAX_RUNS)
		usage();
	size = (uint64_t)O.size_mib * MIB;
	signal(SIGPIPE, SIG_IGN);
	if (sotto_crypto_init() != 0)
		die("%s", "cannot initialise the crypto libraries");
	if (tuser_new(&alice, "alice", IDENTITY_ED25519) != 0 ||
	        tuser_new(&bob, "bob", IDENTITY_ED25519) != 0)
		die("%s", "cannot make identities");
	/* The default frame cap and output high-water mark: what an installation gets. */
	if (testsrv_start(&srv, NULL) != 0 || tregister(&srv, &alice) != 0 ||
	        tregister(&srv, &bob) != 0)
		die("%s", "cannot start sottod");
	spid = proc_pid(srv.proc);
	snprintf(src, sizeof(src), "%s/source.bin", srv.dir);
	snprintf(dir, sizeof(dir), "%s/downloads", srv.dir);
	if (mkdir(dir, 0700) != 0)
		die("cannot create %s", dir);
	make_source(src, size);
	printf("bench_files: %u MiB through sottod on loopback, %u run%s (medians, min .. max)\n",
	        O.size_mib, O.runs, O.runs == 1 ? "" : "s");
	for (i = 0; i < (int)O.runs; i++) {
		if ((a = tlogin(&srv, &alice, err, sizeof(err))) == NULL ||
		        (b = tlogin(&srv, &bob, err, sizeof(err))) == NULL)
			die("cannot log in: %s", err);
		if (client_file_upload_prepare(&u, src, err, sizeof(err)) != 0)
			die("%s", err);
		t0 = now_s();
		c0 = self_cpu_s();
		s0 = pid_cpu_s(spid);
		if (client_file_upload(a, &u, src, to, 1, &o, err, sizeof(err)) != 0)
			die("upload: %s", err);
		up.tail[up.n] = now_s() - last_partial;
		up.mbps[up.n] = (double)size / 1e6 / (now_s() - t0);
		up.ccpu[up.n] = self_cpu_s() - c0;
		up.scpu[up.n++] = pid_cpu_s(spid) - s0;
		memset(&of, 0, sizeof(of));
		memcpy(of.file_id, u.file_id, sizeof(of.file_id));
		memcpy(of.key, u.key, sizeof(of.key));
		memcpy(of.sha256, u.sha256, sizeof(of.sha256));
		of.size = u.size;
		of.name = "received.bin";
		memset(&dl, 0, sizeof(dl));
		t0 = now_s();
		c0 = self_cpu_s();
		s0 = pid_cpu_s(spid);
		if (client_file_download(
		            b, &of, dir, &dl, &o, got, sizeof(got), err, sizeof(err)) != 0)
			die("download: %s", err);
		down.tail[down.n] = now_s() - last_partial;
		down.mbps[down.n] = (double)size / 1e6 / (now_s() - t0);
		down.ccpu[down.n] = self_cpu_s() - c0;
		down.scpu[down.n++] = pid_cpu_s(spid) - s0;
		if (client_file_done(b, u.file_id, 1, err, sizeof(err)) != 0)
			die("FileDone: %s", err);
		unlink(got);
		sotto_wipe(&u, sizeof(u));
		client_conn_close(a);
		client_conn_close(b);
		if (raw_run(size, &raw.mbps[raw.n], &raw.ccpu[raw.n], &raw.scpu[raw.n], suite,
		            sizeof(suite)) != 0)
			die("%s", "the raw TLS run failed");
		crypto[raw.n++] = crypto_run(size);
	}
	series_print(&up, "client", "sottod");
	series_print(&down, "client", "sottod");
	raw.name = "raw TLS 1.3 stream, one way";
	series_print(&raw, "sender", "receiver");
	printf("  (sottod negotiated %s; the raw stream used %s)\n",
	        testsrv_log_has(&srv, "(" RAW_SUITE ")") ? RAW_SUITE : "another suite", suite);
	printf("  %-34s %8.1f MB/s on one core (secretstream + SHA-256, no I/O)\n",
	        "end-to-end file encryption alone", median(crypto, raw.n));
	rawm = median(raw.mbps, raw.n);
	ratio_up = median(up.mbps, up.n) / rawm;
	ratio_down = median(down.mbps, down.n) / rawm;
	printf("  upload / raw TLS %.2f, download / raw TLS %.2f (target: at least 0.50)\n",
	        ratio_up, ratio_down);
	hwm = pid_status_kib(spid, "VmHWM:");
	getrusage(RUSAGE_SELF, &ru);
	printf("  peak RSS: sottod %.1f MiB, client %.1f MiB (bound: 64 MiB each)\n",
	        (double)hwm / 1024, (double)ru.ru_maxrss / 1024);
	if (hwm < 0 || hwm >= RSS_BOUND || ru.ru_maxrss >= RSS_BOUND) {
		printf("bench_files: FAIL: peak RSS over 64 MiB\n");
		fail = 1;
	}
	if (testsrv_stop(&srv) != 0) {
		printf("bench_files: FAIL: sottod did not stop cleanly (see %s)\n", srv.log);
		fail = 1;
	}
	testsrv_cleanup(&srv);
	tuser_free(&alice);
	tuser_free(&bob);
	return fail;
}
