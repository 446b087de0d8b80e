/* Integration-test helpers; see testsrv.h. */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crypto/buf.h"
#include "crypto/ecc.h"
#include "crypto/util.h"
#include "src/sigmsg.h"
#include "tests/lib/testsrv.h"

const char *
testsrv_program(const char *name)
{
	static char path[4096];
	const char *b = getenv("SOTTO_BUILDDIR");

	snprintf(path, sizeof(path), "%s/%s", b != NULL ? b : ".", name);
	return path;
}

static char *
testsrv_read_file(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *data = NULL;
	long n;

	*len = 0;
	if (fp == NULL)
		return NULL;
	if (fseek(fp, 0, SEEK_END) == 0 && (n = ftell(fp)) >= 0 && fseek(fp, 0, SEEK_SET) == 0 &&
	        (data = malloc((size_t)n + 1)) != NULL) {
		*len = fread(data, 1, (size_t)n, fp);
		data[*len] = '\0';
	}
	fclose(fp);
	return data;
}

/* Find "listening on HOST:PORT" for host in the log, after offset from. */
static int
testsrv_find_port(const char *log, size_t from, const char *host, char *port, size_t portlen)
{
	char needle[64];
	const char *p;

	snprintf(needle, sizeof(needle), "listening on %s:", host);
	if ((p = strstr(log + from, needle)) == NULL)
		return -1;
	p += strlen(needle);
	snprintf(port, portlen, "%.*s", (int)strspn(p, "0123456789"), p);
	return port[0] != '\0' ? 0 : -1;
}

static int
testsrv_launch(struct testsrv *s)
{
	const char *argv[TESTSRV_ARGS_MAX + 16];
	char cmd[8192];
	size_t i, n = 0, from = 0, len;
	struct timespec ts = {0, 20 * 1000000};
	struct proc_opts po;
	char *log;
	int tries;

	if ((log = testsrv_read_file(s->log, &len)) != NULL) {
		from = len;
		free(log);
	}
	/* exec keeps the pid sottod's, with stderr appended to the log file. */
	/* A descriptor limit for tests of the EMFILE back-off (testsrv.nofile). */
	if (s->nofile > 0)
		snprintf(cmd, sizeof(cmd), "ulimit -n %d && exec \"$0\" \"$@\" 2>>'%s'", s->nofile,
		        s->log);
	else
		snprintf(cmd, sizeof(cmd), "exec \"$0\" \"$@\" 2>>'%s'", s->log);
	argv[n++] = "/bin/sh";
	argv[n++] = "-c";
	argv[n++] = cmd;
	argv[n++] = testsrv_program("sottod");
	argv[n++] = "--state-dir";
	argv[n++] = s->state;
	argv[n++] = "--listen";
	argv[n++] = "127.0.0.1:0";
	argv[n++] = "--listen";
	argv[n++] = "[::1]:0";
	argv[n++] = "-d";
	for (i = 0; i < s->nargs; i++)
		argv[n++] = s->args[i];
	argv[n] = NULL;
	memset(&po, 0, sizeof(po));
	po.timeout_ms = -1;
	if (proc_start(&s->proc, argv, &po) != 0)
		return -1;
	for (tries = 0; tries < 500; tries++) {
		nanosleep(&ts, NULL);
		if ((log = testsrv_read_file(s->log, &len)) == NULL)
			continue;
		if (strstr(log + from, " ready (") != NULL &&
		        testsrv_find_port(log, from, "127.0.0.1", s->port4, sizeof(s->port4)) ==
		                0 &&
		        testsrv_find_port(log, from, "[::1]", s->port6, sizeof(s->port6)) == 0) {
			free(log);
			return 0;
		}
		if (strstr(log + from, "[error]") != NULL) {
			fprintf(stderr, "sottod failed to start:\n%s\n", log + from);
			free(log);
			return -1;
		}
		free(log);
	}
	return -1;
}

int
testsrv_start(struct testsrv *s, const char *const *extra)
{
	/* Tests write to sockets the server hangs up on: that must be EPIPE, not death. */
	signal(SIGPIPE, SIG_IGN);
	memset(s, 0, sizeof(*s));
	snprintf(s->dir, sizeof(s->dir), "/tmp/sotto-test-XXXXXX");
	if (mkdtemp(s->dir) == NULL)
		return -1;
	snprintf(s->state, sizeof(s->state), "%s/state", s->dir);
	snprintf(s->log, sizeof(s->log), "%s/sottod.log", s->dir);
	snprintf(s->conf, sizeof(s->conf), "%s/sottod.conf", s->dir);
	for (; extra != NULL && *extra != NULL && s->nargs < TESTSRV_ARGS_MAX; extra++)
		s->args[s->nargs++] = *extra;
	return testsrv_launch(s);
}

int
testsrv_restart(struct testsrv *s)
{
	return testsrv_launch(s);
}

void
testsrv_signal(struct testsrv *s, int sig)
{
	struct proc_result res;

	if (s->proc == NULL)
		return;
	proc_kill(s->proc, sig);
	if (sig == SIGKILL || sig == SIGTERM) {
		memset(&res, 0, sizeof(res));
		proc_wait(s->proc, &res, 10000);
		proc_result_free(&res);
		s->proc = NULL;
	}
}

/* Print the log from the first sanitizer line on, so the report is in the test's output. */
static void
testsrv_print_report(const struct testsrv *s)
{
	static const char *const marks[] = {
	        "ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"};
	const char *p = NULL, *q;
	size_t len, i;
	char *log = testsrv_read_file(s->log, &len);

	if (log == NULL)
		return;
	for (i = 0; i < sizeof(marks) / sizeof(marks[0]); i++) {
		if ((q = strstr(log, marks[i])) != NULL && (p == NULL || q < p))
			p = q;
	}
	if (p != NULL)
		fprintf(stderr, "sottod sanitizer report (%s):\n%s\n", s->log, p);
	free(log);
}

int
testsrv_sanitizer_report(const struct testsrv *s)
{
	return testsrv_log_has(s, "ERROR: AddressSanitizer") ||
	       testsrv_log_has(s, "ERROR: LeakSanitizer") || testsrv_log_has(s, "runtime error:");
}

int
testsrv_stop(struct testsrv *s)
{
	struct proc_result res;
	int status;

	if (s->proc == NULL)
		return -1;
	proc_kill(s->proc, SIGTERM);
	memset(&res, 0, sizeof(res));
	/* Generous: a sanitizer build checks for leaks on the way out. */
	proc_wait(s->proc, &res, 20000);
	status = res.exited ? res.status : -1;
	proc_result_free(&res);
	s->proc = NULL;
	if (testsrv_sanitizer_report(s)) {
		testsrv_print_report(s);
		status = -1;
	}
	return status;
}

int
testsrv_alive(struct testsrv *s)
{
	return s->proc != NULL && proc_alive(s->proc) == 1;
}

int
testsrv_healthy(struct testsrv *s)
{
	return testsrv_alive(s) && !testsrv_log_has(s, "[error]") && !testsrv_sanitizer_report(s);
}

static void
testsrv_rmrf(const char *path)
{
	struct dirent *de;
	struct stat st;
	char sub[4096];
	DIR *d;

	if (lstat(path, &st) != 0)
		return;
	if (S_ISDIR(st.st_mode) && (d = opendir(path)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
			testsrv_rmrf(sub);
		}
		closedir(d);
		rmdir(path);
		return;
	}
	unlink(path);
}

void
testsrv_cleanup(struct testsrv *s)
{
	int report;

	if (s->proc != NULL)
		testsrv_stop(s);
	report = s->dir[0] != '\0' && testsrv_sanitizer_report(s);
	if (report)
		testsrv_print_report(s);
	if (s->dir[0] != '\0' && getenv("SOTTO_KEEP_TEST_DIRS") == NULL)
		testsrv_rmrf(s->dir);
	/* A test that passed must not hide a memory error in the server: fail the run. */
	if (report)
		abort();
}

int
testsrv_log_has(const struct testsrv *s, const char *needle)
{
	size_t len;
	char *log = testsrv_read_file(s->log, &len);
	int found = log != NULL && strstr(log, needle) != NULL;

	free(log);
	return found;
}

static int
testsrv_dir_has(const char *path, const void *needle, size_t nlen)
{
	struct dirent *de;
	struct stat st;
	char sub[4096], *data;
	size_t len, i;
	int found = 0;
	DIR *d;

	if (lstat(path, &st) != 0)
		return 0;
	if (S_ISDIR(st.st_mode)) {
		if ((d = opendir(path)) == NULL)
			return 0;
		while (!found && (de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
			found = testsrv_dir_has(sub, needle, nlen);
		}
		closedir(d);
		return found;
	}
	if ((data = testsrv_read_file(path, &len)) == NULL)
		return 0;
	for (i = 0; !found && len >= nlen && i <= len - nlen; i++)
		found = memcmp(data + i, needle, nlen) == 0;
	free(data);
	return found;
}

int
testsrv_state_has(const struct testsrv *s, const void *needle, size_t len)
{
	return testsrv_dir_has(s->state, needle, len);
}

int
tuser_new(struct tuser *u, const char *name, enum identity_type type)
{
	memset(u, 0, sizeof(*u));
	snprintf(u->name, sizeof(u->name), "%s", name);
	return identity_generate(&u->id, type, type == IDENTITY_RSA ? 3072 : 0);
}

void
tuser_free(struct tuser *u)
{
	identity_free(u->id);
	u->id = NULL;
}

static struct client_conn *
tconnect_opt(struct testsrv *s, int v6, int no_hello, char *err, size_t errlen)
{
	struct client_conn *c = NULL;
	struct client_opts o;
	static uint8_t pin[TLS_SPKI_HASH_BYTES];

	memset(&o, 0, sizeof(o));
	o.host = v6 ? "::1" : "127.0.0.1";
	o.port = v6 ? s->port6 : s->port4;
	o.timeout_ms = 10000;
	o.no_hello = no_hello;
	/* The first connection learns the key; later ones must see the same (TOFU). */
	memcpy(pin, s->spki, sizeof(pin));
	o.pin = sotto_memeq(pin, (const uint8_t[TLS_SPKI_HASH_BYTES]){0}, sizeof(pin)) ? NULL : pin;
	if (client_conn_open(&c, &o, err, errlen) != 0)
		return NULL;
	memcpy(s->spki, client_conn_server_spki(c), sizeof(s->spki));
	return c;
}

struct client_conn *
tconnect(struct testsrv *s, int v6, char *err, size_t errlen)
{
	return tconnect_opt(s, v6, 0, err, errlen);
}

struct client_conn *
tconnect_tls(struct testsrv *s, int v6, char *err, size_t errlen)
{
	return tconnect_opt(s, v6, 1, err, errlen);
}

int
tconnect_tcp(struct testsrv *s, int v6)
{
	struct addrinfo hints, *res = NULL;
	int fd = -1;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	if (getaddrinfo(v6 ? "::1" : "127.0.0.1", v6 ? s->port6 : s->port4, &hints, &res) != 0)
		return -1;
	if ((fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, 0)) >= 0 &&
	        connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

int
tfd_wait_closed(int fd, int timeout_ms)
{
	int64_t end = tnow_ms() + timeout_ms, left;
	struct pollfd pfd;
	char buf[4096];
	ssize_t n;

	for (;;) {
		if ((left = end - tnow_ms()) <= 0)
			return -1;
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, (int)left) <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			return 0;
	}
}

int
twait_closed(struct client_conn *c, int timeout_ms)
{
	return tfd_wait_closed(client_conn_fd(c), timeout_ms);
}

Sotto__Frame *
tnext(struct client_conn *c, int timeout_ms)
{
	Sotto__Frame *f = NULL;

	if (client_conn_next_frame(c, &f, timeout_ms) != 0)
		return NULL;
	return f;
}

int
twrite_frame(struct client_conn *c, const Sotto__Frame *f)
{
	uint8_t *enc = NULL;
	size_t len;
	int r;

	if ((r = frame_encode(f, &enc, &len)) != 0)
		return r;
	r = client_conn_write_raw(c, enc, len);
	free(enc);
	return r;
}

int
tseen(struct client_conn *c, const char *name, Sotto__Frame **reply)
{
	Sotto__Frame req;
	Sotto__Seen s;

	sotto__seen__init(&s);
	s.username = proto_str(name);
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_SEEN;
	req.seen = &s;
	return client_conn_request(c, &req, reply, 0);
}

int
twho(struct client_conn *c, uint64_t since, Sotto__Frame **reply)
{
	Sotto__Frame req;
	Sotto__Who w;

	sotto__who__init(&w);
	w.since_seconds = since;
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_WHO;
	req.who = &w;
	return client_conn_request(c, &req, reply, 0);
}

int
tblock(struct client_conn *c, const char *name, int on)
{
	Sotto__Frame req, *rep = NULL;
	Sotto__Block b;
	Sotto__Unblock u;
	int r;

	frame_init(&req, 0);
	if (on) {
		sotto__block__init(&b);
		b.username = proto_str(name);
		req.body_case = SOTTO__FRAME__BODY_BLOCK;
		req.block = &b;
	} else {
		sotto__unblock__init(&u);
		u.username = proto_str(name);
		req.body_case = SOTTO__FRAME__BODY_UNBLOCK;
		req.unblock = &u;
	}
	r = client_conn_request(c, &req, &rep, 0);
	if (r == 0 && rep->body_case != SOTTO__FRAME__BODY_OK)
		r = SOTTO_ERR_PROTO;
	frame_free(rep);
	return r;
}

int64_t
tnow_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
tsleep_ms(int ms)
{
	struct timespec ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int
tregister_on(struct client_conn *c, struct tuser *u, const char *invite)
{
	enum { NOTK = 5 };
	Sotto__SignedPrekey spk;
	Sotto__OneTimePrekey otk[NOTK], *otkp[NOTK];
	uint8_t spk_pub[32], spk_sec[32], otk_pub[NOTK][32], otk_sec[32], sig[IDENTITY_SIG_MAX];
	size_t siglen, i;
	struct buf m;
	int r;

	x25519_keypair(spk_pub, spk_sec);
	buf_init(&m, 0);
	if ((r = sigmsg_spk(&m, 1, spk_pub, 1000)) != 0 ||
	        (r = identity_sign(sig, sizeof(sig), &siglen, u->id, buf_ptr(&m), buf_len(&m))) !=
	                0) {
		buf_free(&m);
		return r;
	}
	buf_free(&m);
	sotto__signed_prekey__init(&spk);
	spk.id = 1;
	spk.public_key = proto_bytes(spk_pub, 32);
	spk.signature = proto_bytes(sig, siglen);
	spk.created = 1000;
	for (i = 0; i < NOTK; i++) {
		x25519_keypair(otk_pub[i], otk_sec);
		sotto__one_time_prekey__init(&otk[i]);
		otk[i].id = (uint32_t)(100 + i);
		otk[i].public_key = proto_bytes(otk_pub[i], 32);
		otkp[i] = &otk[i];
	}
	return client_conn_register(c, u->name, u->id, &spk, otkp, NOTK, invite);
}

int
tregister(struct testsrv *s, struct tuser *u)
{
	char err[512];
	struct client_conn *c = tconnect(s, 0, err, sizeof(err));
	int r;

	if (c == NULL) {
		fprintf(stderr, "tregister: %s\n", err);
		return SOTTO_ERR_IO;
	}
	if ((r = tregister_on(c, u, NULL)) != 0)
		fprintf(stderr, "tregister %s: %s\n", u->name, client_conn_error(c));
	client_conn_close(c);
	return r;
}

struct client_conn *
tlogin(struct testsrv *s, struct tuser *u, char *err, size_t errlen)
{
	struct client_conn *c = tconnect(s, 0, err, errlen);

	if (c == NULL)
		return NULL;
	if (client_conn_login(c, u->name, u->id, NULL) != 0) {
		snprintf(err, errlen, "%s", client_conn_error(c));
		client_conn_abort(c);
		return NULL;
	}
	return c;
}

int
tsend(struct client_conn *c, const char *to, const char *text, uint8_t msg_id[16],
        Sotto__Frame **ack)
{
	static const uint8_t zero[16];
	Sotto__Frame req;
	Sotto__Send s;

	if (memcmp(msg_id, zero, 16) == 0)
		sotto_random(msg_id, 16);
	sotto__send__init(&s);
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_SEND;
	req.send = &s;
	s.msg_id = proto_bytes(msg_id, 16);
	s.to = proto_str(to);
	s.sealed = proto_bytes(text, strlen(text));
	return client_conn_request(c, &req, ack, 0);
}

Sotto__Frame *
twait(struct client_conn *c, Sotto__Frame__BodyCase body, int timeout_ms)
{
	Sotto__Frame *f;
	struct timespec ts;
	int64_t end, now;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	end = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + timeout_ms;
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
		if (now >= end || client_conn_next_push(c, &f, (int)(end - now)) != 0)
			return NULL;
		if (f->body_case == body)
			return f;
		frame_free(f);
	}
}

int
tack(struct client_conn *c, const uint8_t msg_id[16])
{
	Sotto__Frame f;
	Sotto__DeliverAck da;
	ProtobufCBinaryData id = proto_bytes(msg_id, 16);

	sotto__deliver_ack__init(&da);
	frame_init(&f, 0);
	f.body_case = SOTTO__FRAME__BODY_DELIVER_ACK;
	f.deliver_ack = &da;
	da.msg_ids = &id;
	da.n_msg_ids = 1;
	return client_conn_notify(c, &f);
}
