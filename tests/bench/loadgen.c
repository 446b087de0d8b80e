/* Load generation against a real sottod; see loadgen.h. */
#include "config.h"

#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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

#include "crypto/buf.h"
#include "crypto/ecc.h"
#include "crypto/util.h"
#include "src/sigmsg.h"
#include "tests/bench/loadgen.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define LG_READ_CHUNK  16384
#define LG_IN_MAX      (FRAME_MAX_LIMIT + 65536)
#define LG_EVENTS      512
#define BSRV_MAX_CHILD 8

/* ---- the server process ---------------------------------------------------- */

static volatile pid_t bsrv_children[BSRV_MAX_CHILD];

static void
bsrv_track(pid_t pid, int add)
{
	size_t i;

	for (i = 0; i < BSRV_MAX_CHILD; i++) {
		if (add && bsrv_children[i] == 0) {
			bsrv_children[i] = pid;
			return;
		}
		if (!add && bsrv_children[i] == pid) {
			bsrv_children[i] = 0;
			return;
		}
	}
}

void
bsrv_kill_all(void)
{
	size_t i;

	for (i = 0; i < BSRV_MAX_CHILD; i++) {
		if (bsrv_children[i] > 0)
			kill(bsrv_children[i], SIGKILL);
	}
}

const char *
bsrv_program(const char *name)
{
	static char path[4096];
	const char *b = getenv("SOTTO_BUILDDIR");

	snprintf(path, sizeof(path), "%s/%s", b != NULL ? b : ".", name);
	return path;
}

int
bsrv_init(struct bsrv *s)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->dir, sizeof(s->dir), "/tmp/sotto-bench-XXXXXX");
	if (mkdtemp(s->dir) == NULL) {
		s->dir[0] = '\0';
		return -1;
	}
	snprintf(s->state, sizeof(s->state), "%s/state", s->dir);
	snprintf(s->log, sizeof(s->log), "%s/server.log", s->dir);
	return 0;
}

static void
bsrv_sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Fork and exec argv with stdin from /dev/null and stdout+stderr appended to s->log. */
static pid_t
bsrv_spawn(struct bsrv *s, const char *const *argv)
{
	pid_t ppid = getpid(), pid;
	int fd, nul;

	if ((pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		/* The server must not outlive the benchmark. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != ppid)
			_exit(127);
		fd = open(s->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd < 0 || nul < 0 || dup2(nul, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(127);
		execv(argv[0], (char *const *)(uintptr_t)argv);
		_exit(127);
	}
	bsrv_track(pid, 1);
	return pid;
}

static char *
bsrv_read_log(const struct bsrv *s, size_t *len)
{
	FILE *fp = fopen(s->log, "rb");
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

/* 1 if the child has exited (and reap it). */
static int
bsrv_gone(struct bsrv *s)
{
	int status;

	if (s->pid <= 0)
		return 1;
	if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
		bsrv_track(s->pid, 0);
		s->pid = 0;
		return 1;
	}
	return 0;
}

int
bsrv_start_sottod(struct bsrv *s, const char *const *extra)
{
	static const char needle[] = "listening on 127.0.0.1:";
	const char *argv[64];
	size_t n = 0, from = 0, len;
	char *log, *p;
	long port;
	int tries;

	if ((log = bsrv_read_log(s, &len)) != NULL) {
		from = len;
		free(log);
	}
	argv[n++] = bsrv_program("sottod");
	argv[n++] = "--state_dir";
	argv[n++] = s->state;
	argv[n++] = "--listen";
	argv[n++] = "127.0.0.1:0";
	for (; extra != NULL && *extra != NULL && n < sizeof(argv) / sizeof(argv[0]) - 1; extra++)
		argv[n++] = *extra;
	argv[n] = NULL;
	if ((s->pid = bsrv_spawn(s, argv)) < 0) {
		s->pid = 0;
		return -1;
	}
	for (tries = 0; tries < 1000; tries++) {
		bsrv_sleep_ms(10);
		if ((log = bsrv_read_log(s, &len)) == NULL)
			continue;
		if (len > from && strstr(log + from, " ready (") != NULL &&
		        (p = strstr(log + from, needle)) != NULL) {
			port = strtol(p + strlen(needle), NULL, 10);
			free(log);
			if (port <= 0 || port > 65535)
				break;
			s->port = (uint16_t)port;
			return 0;
		}
		if (bsrv_gone(s)) {
			fprintf(stderr, "bench: sottod did not start:\n%s\n",
			        len > from ? log + from : "");
			free(log);
			return -1;
		}
		free(log);
	}
	fprintf(stderr, "bench: sottod did not report a port within 10 s (log: %s)\n", s->log);
	bsrv_stop(s);
	return -1;
}

/* A free TCP port on 127.0.0.1 (the kernel's choice; a small race is fine here). */
static uint16_t
bsrv_free_port(void)
{
	struct sockaddr_in sin;
	socklen_t slen = sizeof(sin);
	uint16_t port = 0;
	int fd;

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return 0;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	        getsockname(fd, (struct sockaddr *)&sin, &slen) == 0)
		port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

static int
bsrv_can_connect(uint16_t port)
{
	struct sockaddr_in sin;
	int fd, ok;

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return 0;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(port);
	ok = connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
	close(fd);
	return ok;
}

int
bsrv_start_openssl(struct bsrv *s, const char *cert, const char *key)
{
	static const char *const dirs[] = {
	        "/usr/bin/openssl", "/usr/local/bin/openssl", "/bin/openssl", NULL};
	const char *prog = NULL;
	char accept[32];
	size_t i;
	int tries;

	for (i = 0; dirs[i] != NULL; i++) {
		if (access(dirs[i], X_OK) == 0) {
			prog = dirs[i];
			break;
		}
	}
	if (prog == NULL || (s->port = bsrv_free_port()) == 0)
		return -1;
	snprintf(accept, sizeof(accept), "127.0.0.1:%u", (unsigned)s->port);
	{
		const char *argv[] = {prog, "s_server", "-accept", accept, "-cert", cert, "-key",
		        key, "-tls1_3", "-groups", "X25519", "-num_tickets", "0", "-no_cache",
		        "-quiet", "-rev", NULL};

		if ((s->pid = bsrv_spawn(s, argv)) < 0) {
			s->pid = 0;
			return -1;
		}
	}
	for (tries = 0; tries < 500; tries++) {
		bsrv_sleep_ms(10);
		if (bsrv_gone(s))
			return -1;
		/* The probe is one more (plain TCP) connection; it happens before measuring. */
		if (bsrv_can_connect(s->port))
			return 0;
	}
	bsrv_stop(s);
	return -1;
}

int
bsrv_run(struct bsrv *s, const char *const *argv)
{
	pid_t pid = bsrv_spawn(s, argv);
	int status, tries;

	if (pid < 0)
		return -1;
	for (tries = 0; tries < 6000; tries++) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			bsrv_track(pid, 0);
			return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		}
		bsrv_sleep_ms(10);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	bsrv_track(pid, 0);
	return -1;
}

void
bsrv_stop(struct bsrv *s)
{
	int tries;

	if (s->pid <= 0)
		return;
	kill(s->pid, SIGTERM);
	for (tries = 0; tries < 1000; tries++) {
		if (bsrv_gone(s))
			return;
		bsrv_sleep_ms(10);
	}
	kill(s->pid, SIGKILL);
	waitpid(s->pid, NULL, 0);
	bsrv_track(s->pid, 0);
	s->pid = 0;
}

static void
bsrv_rmrf(const char *path)
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
			bsrv_rmrf(sub);
		}
		closedir(d);
		rmdir(path);
		return;
	}
	unlink(path);
}

void
bsrv_cleanup(struct bsrv *s)
{
	bsrv_stop(s);
	if (s->dir[0] != '\0' && getenv("SOTTO_KEEP_TEST_DIRS") == NULL)
		bsrv_rmrf(s->dir);
	s->dir[0] = '\0';
}

double
proc_cpu_seconds(pid_t pid)
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
	/* The command name may hold spaces and parentheses: skip to the last ')'. */
	if ((p = strrchr(buf, ')')) == NULL || tck <= 0)
		return -1;
	/* Fields 3 (state) .. 13 come first; utime and stime are fields 14 and 15. */
	if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)tck;
}

long
proc_rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	if ((fp = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), fp) != NULL) {
		if (strncmp(line, "VmRSS:", 6) == 0) {
			kib = strtol(line + 6, NULL, 10);
			break;
		}
	}
	fclose(fp);
	return kib;
}

/* ---- the connection engine ---------------------------------------------------- */

int64_t
lg_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int
lg_user_new(struct lg_user *u, const char *name)
{
	memset(u, 0, sizeof(*u));
	snprintf(u->name, sizeof(u->name), "%s", name);
	return identity_generate(&u->id, IDENTITY_ED25519, 0);
}

void
lg_user_free(struct lg_user *u)
{
	identity_free(u->id);
	u->id = NULL;
}

void
lg_zero(struct lg *lg)
{
	memset(lg, 0, sizeof(*lg));
	lg->ep = lg->tick_fd = -1;
}

int
lg_init(struct lg *lg, uint16_t port, unsigned nsrc, char *err, size_t errlen)
{
	lg_zero(lg);
	lg->port = port;
	lg->nsrc = nsrc > 250 ? 250 : nsrc;
	if ((lg->ep = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		snprintf(err, errlen, "epoll_create1: %s", strerror(errno));
		return -1;
	}
	if (tls_client_ctx_new(&lg->ctx, NULL, err, errlen) != 0) {
		close(lg->ep);
		lg->ep = -1;
		return -1;
	}
	SSL_CTX_set_mode(
	        lg->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* Every connection must make a full handshake: no session reuse. */
	SSL_CTX_set_session_cache_mode(lg->ctx, SSL_SESS_CACHE_OFF);
	return 0;
}

void
lg_free(struct lg *lg)
{
	if (lg->tick_fd >= 0)
		close(lg->tick_fd);
	if (lg->ep >= 0)
		close(lg->ep);
	SSL_CTX_free(lg->ctx);
	lg_zero(lg);
}

int
lg_set_tick(struct lg *lg, long interval_us)
{
	struct itimerspec its;
	struct epoll_event ev;

	if (lg->tick_fd < 0) {
		if ((lg->tick_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) < 0)
			return -1;
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN;
		ev.data.ptr = NULL;
		if (epoll_ctl(lg->ep, EPOLL_CTL_ADD, lg->tick_fd, &ev) != 0)
			return -1;
	}
	memset(&its, 0, sizeof(its));
	its.it_interval.tv_sec = interval_us / 1000000;
	its.it_interval.tv_nsec = (interval_us % 1000000) * 1000;
	its.it_value = its.it_interval;
	return timerfd_settime(lg->tick_fd, 0, &its, NULL);
}

static int
lg_bytes_reserve(struct lg_bytes *b, size_t more, size_t max)
{
	size_t need, cap;
	uint8_t *p;

	if (b->off > 0 && (b->off == b->len || b->cap - b->len < more)) {
		memmove(b->p, b->p + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
	}
	need = b->len + more;
	if (need <= b->cap)
		return 0;
	if (need > max)
		return -1;
	cap = b->cap ? b->cap : 4096;
	while (cap < need)
		cap *= 2;
	if ((p = realloc(b->p, cap)) == NULL)
		return -1;
	b->p = p;
	b->cap = cap;
	return 0;
}

static void
lg_bytes_free(struct lg_bytes *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static void
lc_set_events(struct lconn *c, int out)
{
	struct epoll_event ev;

	if (c->fd < 0 || c->pollout == out)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | (out ? EPOLLOUT : 0);
	ev.data.ptr = c;
	if (epoll_ctl(c->lg->ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->pollout = out;
}

static void
lc_release(struct lconn *c)
{
	if (c->fd >= 0) {
		epoll_ctl(c->lg->ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		c->fd = -1;
	}
	if (c->ssl != NULL) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	c->pollout = 0;
	ERR_clear_error();
}

static void lc_fail(struct lconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
lc_fail(struct lconn *c, const char *fmt, ...)
{
	struct lg *lg = c->lg;
	va_list ap;

	if (c->state == LC_FAILED || c->state == LC_DONE)
		return;
	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
	if (lg->n_failed++ == 0)
		snprintf(lg->err, sizeof(lg->err), "%s", c->err);
	lc_release(c);
	c->state = LC_FAILED;
	if (lg->on_state != NULL)
		lg->on_state(c, lg->arg);
}

static void
lc_ssl_fail(struct lconn *c, int ret, const char *what)
{
	int e = SSL_get_error(c->ssl, ret);
	unsigned long le = ERR_peek_last_error();
	char buf[120];

	if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && le == 0 && errno == 0)) {
		lc_fail(c, "%s: the server closed the connection", what);
	} else if (le != 0) {
		ERR_error_string_n(le, buf, sizeof(buf));
		lc_fail(c, "%s: %s", what, buf);
	} else {
		lc_fail(c, "%s: %s", what, strerror(errno));
	}
}

uint64_t
lg_next_id(struct lconn *c)
{
	return ++c->next_id;
}

int
lg_send(struct lconn *c, const Sotto__Frame *f)
{
	size_t n = frame_size(f);
	uint8_t *enc = NULL;
	size_t len = 0;

	if (c->ssl == NULL || c->state == LC_FAILED || c->state == LC_DONE)
		return -1;
	if (lg_bytes_reserve(&c->out, n, LG_IN_MAX) != 0 || frame_encode(f, &enc, &len) != 0) {
		lc_fail(c, "cannot queue a %s frame", frame_body_name(f));
		return -1;
	}
	memcpy(c->out.p + c->out.len, enc, len);
	c->out.len += len;
	free(enc);
	if (!c->dirty) {
		c->dirty = 1;
		c->next_dirty = c->lg->dirty;
		c->lg->dirty = c;
	}
	return 0;
}

static void
lc_flush(struct lconn *c)
{
	int n;

	while (c->ssl != NULL && c->out.off < c->out.len) {
		ERR_clear_error();
		errno = 0;
		n = SSL_write(c->ssl, c->out.p + c->out.off, (int)(c->out.len - c->out.off));
		if (n > 0) {
			c->out.off += (size_t)n;
			continue;
		}
		switch (SSL_get_error(c->ssl, n)) {
		case SSL_ERROR_WANT_WRITE:
			lc_set_events(c, 1);
			return;
		case SSL_ERROR_WANT_READ:
			return;
		default:
			lc_ssl_fail(c, n, "write");
			return;
		}
	}
	c->out.off = c->out.len = 0;
	if (c->state != LC_CONNECTING && c->state != LC_TLS)
		lc_set_events(c, 0);
}

int
lg_acks_init(struct lg_acks *a)
{
	a->n = 0;
	a->ids = calloc(PROTO_MAX_ACK_IDS, sizeof(*a->ids));
	return a->ids != NULL ? 0 : -1;
}

void
lg_acks_free(struct lg_acks *a)
{
	free(a->ids);
	a->ids = NULL;
	a->n = 0;
}

void
lg_acks_flush(struct lconn *c, struct lg_acks *a)
{
	ProtobufCBinaryData ids[PROTO_MAX_ACK_IDS];
	Sotto__DeliverAck da;
	Sotto__Frame f;
	size_t i;

	if (a->n == 0)
		return;
	for (i = 0; i < a->n; i++)
		ids[i] = proto_bytes(a->ids[i], PROTO_MSG_ID_BYTES);
	sotto__deliver_ack__init(&da);
	frame_init(&f, 0);
	f.body_case = SOTTO__FRAME__BODY_DELIVER_ACK;
	f.deliver_ack = &da;
	da.msg_ids = ids;
	da.n_msg_ids = a->n;
	a->n = 0;
	lg_send(c, &f);
}

void
lg_acks_add(struct lconn *c, struct lg_acks *a, const ProtobufCBinaryData *id)
{
	if (id->len != PROTO_MSG_ID_BYTES)
		return;
	if (a->n == PROTO_MAX_ACK_IDS)
		lg_acks_flush(c, a);
	memcpy(a->ids[a->n++], id->data, PROTO_MSG_ID_BYTES);
}

void
lg_flush_all(struct lg *lg)
{
	struct lconn *c;

	while ((c = lg->dirty) != NULL) {
		lg->dirty = c->next_dirty;
		c->next_dirty = NULL;
		c->dirty = 0;
		lc_flush(c);
	}
}

static int
lc_sign(struct lconn *c, const struct buf *m, uint8_t sig[IDENTITY_SIG_MAX], size_t *siglen)
{
	return identity_sign(sig, IDENTITY_SIG_MAX, siglen, c->user->id, buf_ptr(m), buf_len(m));
}

static void
lc_send_hello(struct lconn *c)
{
	Sotto__Frame f;
	Sotto__Hello h;

	sotto__hello__init(&h);
	frame_init(&f, lg_next_id(c));
	f.body_case = SOTTO__FRAME__BODY_HELLO;
	f.hello = &h;
	h.version_major = PROTO_VERSION_MAJOR;
	h.version_minor = PROTO_VERSION_MINOR;
	h.client = proto_str("sotto-bench/" PACKAGE_VERSION);
	c->wait_id = f.id;
	c->state = LC_HELLO;
	lg_send(c, &f);
}

static void
lc_send_login(struct lconn *c)
{
	uint8_t sig[IDENTITY_SIG_MAX];
	size_t siglen = 0;
	Sotto__Frame f;
	Sotto__Login l;
	struct buf m;

	buf_init(&m, 0);
	if (sigmsg_login(&m, c->challenge, c->exporter) != 0 || lc_sign(c, &m, sig, &siglen) != 0) {
		buf_free(&m);
		lc_fail(c, "cannot sign the login challenge");
		return;
	}
	buf_free(&m);
	sotto__login__init(&l);
	frame_init(&f, lg_next_id(c));
	f.body_case = SOTTO__FRAME__BODY_LOGIN;
	f.login = &l;
	l.username = proto_str(c->user->name);
	l.signature = proto_bytes(sig, siglen);
	c->wait_id = f.id;
	c->state = LC_AUTH;
	lg_send(c, &f);
}

static void
lc_send_register(struct lconn *c)
{
	const struct identity_pub *pub = identity_public(c->user->id);
	uint8_t spk_pub[32], spk_sec[32], spk_sig[IDENTITY_SIG_MAX], sig[IDENTITY_SIG_MAX];
	size_t spk_siglen = 0, siglen = 0;
	Sotto__SignedPrekey spk;
	Sotto__RegisterUser ru;
	Sotto__Frame f;
	struct buf m;
	int r;

	x25519_keypair(spk_pub, spk_sec);
	sotto_wipe(spk_sec, sizeof(spk_sec));
	buf_init(&m, 0);
	r = sigmsg_spk(&m, 1, spk_pub, 1000) != 0 || lc_sign(c, &m, spk_sig, &spk_siglen) != 0;
	buf_reset(&m);
	if (r || sigmsg_register(&m, c->challenge, c->exporter, c->user->name) != 0 ||
	        lc_sign(c, &m, sig, &siglen) != 0) {
		buf_free(&m);
		lc_fail(c, "cannot sign the registration");
		return;
	}
	buf_free(&m);
	sotto__signed_prekey__init(&spk);
	spk.id = 1;
	spk.public_key = proto_bytes(spk_pub, sizeof(spk_pub));
	spk.signature = proto_bytes(spk_sig, spk_siglen);
	spk.created = 1000;
	sotto__register_user__init(&ru);
	frame_init(&f, lg_next_id(c));
	f.body_case = SOTTO__FRAME__BODY_REGISTER_USER;
	f.register_user = &ru;
	ru.username = proto_str(c->user->name);
	ru.identity_key = proto_bytes(pub->der, pub->derlen);
	ru.identity_type = (uint32_t)pub->type;
	ru.spk = &spk;
	ru.invite_token = proto_str("");
	ru.signature = proto_bytes(sig, siglen);
	c->wait_id = f.id;
	c->state = LC_AUTH;
	lg_send(c, &f);
}

int
lg_login(struct lconn *c, const struct lg_user *u, int reg)
{
	if (c->state != LC_AUTH || c->goal != LG_GOAL_HELLO)
		return -1;
	c->user = u;
	c->goal = reg ? LG_GOAL_REGISTER : LG_GOAL_LOGIN;
	if (reg)
		lc_send_register(c);
	else
		lc_send_login(c);
	return c->state == LC_FAILED ? -1 : 0;
}

static void
lc_reached(struct lconn *c, enum lc_state st)
{
	c->state = st;
	c->wait_id = 0;
	if (c->lg->on_state != NULL)
		c->lg->on_state(c, c->lg->arg);
}

/* A frame while setting up: Hello, then RegisterUser or Login. */
static void
lc_setup_frame(struct lconn *c, const Sotto__Frame *f)
{
	if (f->id != c->wait_id) {
		if (f->body_case == SOTTO__FRAME__BODY_CLOSING)
			lc_fail(c, "closed by the server: %s", proto_error_name(f->closing->code));
		return;
	}
	if (f->body_case == SOTTO__FRAME__BODY_ERROR) {
		lc_fail(c, "%s: %s%s%s", c->state == LC_HELLO ? "Hello" : "login",
		        proto_error_name(f->error->code), f->error->message ? ": " : "",
		        f->error->message ? f->error->message : "");
		return;
	}
	if (c->state == LC_HELLO) {
		if (f->body_case != SOTTO__FRAME__BODY_HELLO_REPLY ||
		        f->hello_reply->challenge.len != PROTO_CHALLENGE_BYTES) {
			lc_fail(c, "no HelloReply");
			return;
		}
		memcpy(c->challenge, f->hello_reply->challenge.data, PROTO_CHALLENGE_BYTES);
		switch (c->goal) {
		case LG_GOAL_REGISTER:
			lc_send_register(c);
			break;
		case LG_GOAL_LOGIN:
			lc_send_login(c);
			break;
		default:
			lc_reached(c, LC_AUTH);
			break;
		}
		return;
	}
	if (f->body_case == SOTTO__FRAME__BODY_LOGIN_OK ||
	        f->body_case == SOTTO__FRAME__BODY_REGISTER_OK)
		lc_reached(c, LC_READY);
	else
		lc_fail(c, "unexpected %s during login", frame_body_name(f));
}

/* Decode and hand out every whole frame in c->in. */
static void
lc_decode(struct lconn *c, int64_t now)
{
	struct lg *lg = c->lg;
	Sotto__Frame *f;
	size_t used;
	uint64_t id;
	int r;

	while (c->in.off < c->in.len && c->state != LC_FAILED && c->state != LC_DONE) {
		used = 0;
		r = frame_decode(c->in.p + c->in.off, c->in.len - c->in.off,
		        FRAME_MAX_DEFAULT + FRAME_PUSH_SLACK, &f, &used, &id);
		if (r == SOTTO_ERR_AGAIN)
			break;
		if (r == SOTTO_ERR_RANGE) {
			lc_fail(c, "the server sent an oversized frame");
			return;
		}
		c->in.off += used;
		if (r != 0)
			continue;
		if (c->state == LC_READY) {
			if (f->body_case == SOTTO__FRAME__BODY_CLOSING)
				lc_fail(c, "closed by the server: %s",
				        proto_error_name(f->closing->code));
			else if (lg->on_frame != NULL)
				lg->on_frame(c, f, now, lg->arg);
		} else if (c->state == LC_HELLO || c->state == LC_AUTH) {
			lc_setup_frame(c, f);
		}
		frame_free(f);
	}
	if (c->in.off == c->in.len)
		c->in.off = c->in.len = 0;
}

static void
lc_read(struct lconn *c)
{
	int n, got = 0;

	while (c->ssl != NULL) {
		if (lg_bytes_reserve(&c->in, LG_READ_CHUNK, LG_IN_MAX) != 0) {
			lc_fail(c, "input buffer full");
			return;
		}
		ERR_clear_error();
		errno = 0;
		n = SSL_read(c->ssl, c->in.p + c->in.len, (int)(c->in.cap - c->in.len));
		if (n > 0) {
			c->in.len += (size_t)n;
			got = 1;
			lc_decode(c, lg_now_ns());
			continue;
		}
		switch (SSL_get_error(c->ssl, n)) {
		case SSL_ERROR_WANT_READ:
			break;
		case SSL_ERROR_WANT_WRITE:
			lc_set_events(c, 1);
			break;
		default:
			lc_ssl_fail(c, n, "read");
			return;
		}
		break;
	}
	if (got && c->state == LC_READY && c->lg->on_read != NULL)
		c->lg->on_read(c, c->lg->arg);
}

static void
lc_handshake(struct lconn *c)
{
	int n;

	ERR_clear_error();
	errno = 0;
	n = SSL_connect(c->ssl);
	if (n == 1) {
		lc_set_events(c, 0);
		if (c->goal == LG_GOAL_TLS) {
			lg_close(c);
			if (c->lg->on_state != NULL)
				c->lg->on_state(c, c->lg->arg);
			return;
		}
		if (tls_exporter(c->ssl, c->exporter) != 0) {
			lc_fail(c, "cannot export keying material");
			return;
		}
		lc_send_hello(c);
		return;
	}
	switch (SSL_get_error(c->ssl, n)) {
	case SSL_ERROR_WANT_READ:
		lc_set_events(c, 0);
		break;
	case SSL_ERROR_WANT_WRITE:
		lc_set_events(c, 1);
		break;
	default:
		lc_ssl_fail(c, n, "TLS handshake");
		break;
	}
}

static void
lc_connected(struct lconn *c)
{
	int soerr = 0, one = 1;
	socklen_t slen = sizeof(soerr);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) != 0 || soerr != 0) {
		lc_fail(c, "connect: %s", strerror(soerr ? soerr : errno));
		return;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->state = LC_TLS;
	lc_handshake(c);
}

int
lg_connect(struct lg *lg, struct lconn *c, enum lg_goal goal, const struct lg_user *u)
{
	struct sockaddr_in src, dst;
	struct epoll_event ev;
	int one = 1;

	memset(c, 0, sizeof(*c));
	c->lg = lg;
	c->fd = -1;
	c->goal = goal;
	c->user = u;
	if ((c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) {
		lc_fail(c, "socket: %s", strerror(errno));
		return -1;
	}
	if (lg->nsrc > 0) {
		/* Spread the sources over 127.0.0.2 .. 127.0.0.(1 + nsrc): loopback only. */
		memset(&src, 0, sizeof(src));
		src.sin_family = AF_INET;
		src.sin_addr.s_addr = htonl(0x7f000002u + lg->src_next++ % lg->nsrc);
		setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(c->fd, (struct sockaddr *)&src, sizeof(src)) != 0) {
			lc_fail(c, "bind: %s", strerror(errno));
			return -1;
		}
	}
	if ((c->ssl = SSL_new(lg->ctx)) == NULL || SSL_set_fd(c->ssl, c->fd) != 1 ||
	        tls_client_set_host(c->ssl, "localhost") != 0) {
		lc_fail(c, "cannot set up TLS");
		return -1;
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLOUT;
	ev.data.ptr = c;
	if (epoll_ctl(lg->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
		lc_fail(c, "epoll_ctl: %s", strerror(errno));
		return -1;
	}
	c->pollout = 1;
	memset(&dst, 0, sizeof(dst));
	dst.sin_family = AF_INET;
	dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	dst.sin_port = htons(lg->port);
	c->state = LC_CONNECTING;
	if (connect(c->fd, (struct sockaddr *)&dst, sizeof(dst)) != 0 && errno != EINPROGRESS) {
		lc_fail(c, "connect: %s", strerror(errno));
		return -1;
	}
	return 0;
}

void
lg_close(struct lconn *c)
{
	if (c->state == LC_DONE || c->state == LC_FAILED || c->state == LC_IDLE)
		return;
	/* close_notify, best effort: the socket is non-blocking and closed right after. */
	if (c->ssl != NULL && SSL_is_init_finished(c->ssl))
		(void)SSL_shutdown(c->ssl);
	lc_release(c);
	c->state = LC_DONE;
}

void
lg_conn_free(struct lconn *c)
{
	if (c->lg != NULL && c->state != LC_IDLE)
		lg_close(c);
	if (c->lg != NULL && c->dirty) {
		struct lconn **pp;

		for (pp = &c->lg->dirty; *pp != NULL; pp = &(*pp)->next_dirty) {
			if (*pp == c) {
				*pp = c->next_dirty;
				break;
			}
		}
		c->dirty = 0;
	}
	lg_bytes_free(&c->in);
	lg_bytes_free(&c->out);
}

int
lg_poll(struct lg *lg, int timeout_ms)
{
	struct epoll_event ev[LG_EVENTS];
	struct lconn *c;
	uint64_t ticks;
	int n, i;

	lg->ticked = 0;
	lg_flush_all(lg);
	n = epoll_wait(lg->ep, ev, LG_EVENTS, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -1;
	for (i = 0; i < n; i++) {
		if ((c = ev[i].data.ptr) == NULL) {
			while (read(lg->tick_fd, &ticks, sizeof(ticks)) == (ssize_t)sizeof(ticks))
				;
			lg->ticked = 1;
			continue;
		}
		switch (c->state) {
		case LC_CONNECTING:
			lc_connected(c);
			break;
		case LC_TLS:
			lc_handshake(c);
			break;
		case LC_HELLO:
		case LC_AUTH:
		case LC_READY:
			if (ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
				lc_read(c);
			if ((ev[i].events & EPOLLOUT) && c->state != LC_FAILED)
				lc_flush(c);
			break;
		default:
			break;
		}
	}
	lg_flush_all(lg);
	return n;
}

/* ---- statistics ----------------------------------------------------------------- */

static int
bstat_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

void
bstat_of(struct bstat *st, double *v, size_t n)
{
	memset(st, 0, sizeof(*st));
	if (n == 0)
		return;
	qsort(v, n, sizeof(*v), bstat_cmp);
	st->median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	st->min = v[0];
	st->max = v[n - 1];
	st->n = n;
}

int64_t
bstat_quantile(const int64_t *sorted, size_t n, double q)
{
	size_t i;

	if (n == 0)
		return 0;
	i = (size_t)(q * (double)(n - 1) + 0.5);
	return sorted[i < n ? i : n - 1];
}
