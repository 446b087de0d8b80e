/*
 * Load generation against a real sottod, for make bench.
 *
 * bsrv_*: start a program built in the tree (sottod) or openssl s_server on
 * loopback with a random port in a fresh temporary directory, read its CPU
 * time and resident memory from /proc, stop it and remove the directory.
 * Every child gets PR_SET_PDEATHSIG, so a crashed or killed benchmark never
 * leaves a server behind.
 *
 * lg_*: one thread driving many TLS connections with epoll and non-blocking
 * OpenSSL.  A connection is opened with a goal: a bare TLS handshake, the
 * Hello exchange, registration or login (the same steps as src/client-conn.c,
 * without blocking).  Frames queued with lg_send() are coalesced and leave in
 * one SSL_write per connection and loop pass, as the server does.  Frames
 * that arrive once a connection is logged in go to the on_frame callback.
 *
 * Only loopback addresses are ever contacted: the destination is always
 * 127.0.0.1, and sources are bound within 127.0.0.0/8.  Linux only (epoll,
 * timerfd, /proc).  Not thread-safe.
 */
#ifndef SOTTO_BENCH_LOADGEN_H
#define SOTTO_BENCH_LOADGEN_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "keys/identity.h"
#include "src/frame.h"
#include "src/tls.h"

/* ---- the server process ---------------------------------------------------- */

struct bsrv {
	char dir[256];   /* temporary directory, removed by bsrv_cleanup */
	char state[300]; /* dir/state: sottod's --state_dir */
	char log[300];   /* dir/server.log: the child's stdout and stderr */
	pid_t pid;       /* running child, or 0 */
	uint16_t port;   /* its port on 127.0.0.1 */
};

/* Make the temporary directory; 0 or -1. */
int bsrv_init(struct bsrv *s);
/* Start ./sottod (or $SOTTO_BUILDDIR/sottod) on s->state with extra flags (NULL-terminated). */
int bsrv_start_sottod(struct bsrv *s, const char *const *extra);
/* Start openssl s_server with cert and key (TLS 1.3, X25519, no tickets). */
int bsrv_start_openssl(struct bsrv *s, const char *cert, const char *key);
/* SIGTERM, wait (SIGKILL after 10 s). */
void bsrv_stop(struct bsrv *s);
/* Stop if running and remove the directory. */
void bsrv_cleanup(struct bsrv *s);
/* Path of a program built in the tree. */
const char *bsrv_program(const char *name);
/* Run a program to completion with stdout/stderr appended to s->log; its exit status or -1. */
int bsrv_run(struct bsrv *s, const char *const *argv);
/* Kill every child still running (for signal handlers: async-signal-safe). */
void bsrv_kill_all(void);

/* utime + stime of pid in seconds, or -1. */
double proc_cpu_seconds(pid_t pid);
/* VmRSS of pid in KiB, or -1. */
long proc_rss_kib(pid_t pid);

/* ---- the connection engine ---------------------------------------------------- */

enum lc_state {
	LC_IDLE = 0,
	LC_CONNECTING, /* TCP connect under way */
	LC_TLS,        /* TLS handshake under way */
	LC_HELLO,      /* Hello sent */
	LC_AUTH,       /* Hello done; RegisterUser or Login sent, or idle (LG_GOAL_HELLO) */
	LC_READY,      /* logged in */
	LC_DONE,       /* LG_GOAL_TLS reached and closed, or closed by lg_close */
	LC_FAILED      /* error; c->err says why */
};

enum lg_goal {
	LG_GOAL_TLS,      /* full TLS handshake, then close_notify and close */
	LG_GOAL_HELLO,    /* handshake and Hello, then stay (lg_login later) */
	LG_GOAL_REGISTER, /* register c->user (logs in) */
	LG_GOAL_LOGIN     /* log in as c->user */
};

struct lg_user {
	char name[PROTO_USERNAME_MAX + 1];
	struct identity *id;
};

struct lg_bytes {
	uint8_t *p;
	size_t off, len, cap;
};

struct lg;

struct lconn {
	struct lg *lg;
	int fd;
	SSL *ssl;
	enum lc_state state;
	enum lg_goal goal;
	const struct lg_user *user;
	uint64_t next_id;
	uint64_t wait_id; /* the request the setup steps wait for */
	uint8_t challenge[PROTO_CHALLENGE_BYTES];
	uint8_t exporter[TLS_EXPORTER_BYTES];
	struct lg_bytes in, out;
	int pollout; /* EPOLLOUT armed */
	int dirty;   /* on the flush list */
	struct lconn *next_dirty;
	void *app; /* the caller's */
	char err[160];
};

/* A frame for a logged-in connection; now_ns is when its bytes were read. */
typedef void (*lg_frame_fn)(struct lconn *c, const Sotto__Frame *f, int64_t now_ns, void *arg);
/* c reached its goal (LC_AUTH for LG_GOAL_HELLO, LC_READY, LC_DONE) or failed. */
typedef void (*lg_state_fn)(struct lconn *c, void *arg);
/* Every frame of one read pass on c has been handed out (batch acknowledgements here). */
typedef void (*lg_read_fn)(struct lconn *c, void *arg);

struct lg {
	int ep;
	SSL_CTX *ctx;
	uint16_t port;     /* on 127.0.0.1 */
	unsigned nsrc;     /* bind sources to 127.0.0.2 .. 127.0.0.(1 + nsrc); 0: do not bind */
	unsigned src_next; /* round robin */
	lg_frame_fn on_frame;
	lg_state_fn on_state;
	lg_read_fn on_read;
	void *arg;
	struct lconn *dirty;
	int tick_fd; /* timerfd or -1 */
	int ticked;  /* the timer fired during the last lg_poll */
	size_t n_failed;
	char err[256]; /* the first connection failure */
};

/* A struct lg that lg_free() accepts without lg_init(). */
void lg_zero(struct lg *lg);
int lg_init(struct lg *lg, uint16_t port, unsigned nsrc, char *err, size_t errlen);
void lg_free(struct lg *lg);
/* A periodic timer (interval_us) that sets lg->ticked and wakes lg_poll. */
int lg_set_tick(struct lg *lg, long interval_us);
/* Start connecting c with goal (u: for register and login).  0, or -1 with c->err. */
int lg_connect(struct lg *lg, struct lconn *c, enum lg_goal goal, const struct lg_user *u);
/* Log in (reg: register, which logs in) on a connection that reached LG_GOAL_HELLO. */
int lg_login(struct lconn *c, const struct lg_user *u, int reg);
/* The next request id for c. */
uint64_t lg_next_id(struct lconn *c);
/* Queue f (id as set) on c; it leaves at the next lg_flush_all or lg_poll. */
int lg_send(struct lconn *c, const Sotto__Frame *f);
/* Write what every connection has queued. */
void lg_flush_all(struct lg *lg);

/* Ids to acknowledge, gathered during a read pass and sent as one DeliverAck. */
struct lg_acks {
	uint8_t (*ids)[PROTO_MSG_ID_BYTES]; /* PROTO_MAX_ACK_IDS of them */
	size_t n;
};

int lg_acks_init(struct lg_acks *a);
void lg_acks_free(struct lg_acks *a);
/* Note id (ignored unless PROTO_MSG_ID_BYTES long); a full batch goes out first. */
void lg_acks_add(struct lconn *c, struct lg_acks *a, const ProtobufCBinaryData *id);
/* Queue the gathered ids on c as one DeliverAck, if there are any. */
void lg_acks_flush(struct lconn *c, struct lg_acks *a);
/* Wait up to timeout_ms for events, handle them, flush; the number of events or -1. */
int lg_poll(struct lg *lg, int timeout_ms);
/* Close now (close_notify when possible) into LC_DONE; no callback. */
void lg_close(struct lconn *c);
/* Release c's buffers (closing it first if needed). */
void lg_conn_free(struct lconn *c);
/* A new Ed25519 user. */
int lg_user_new(struct lg_user *u, const char *name);
void lg_user_free(struct lg_user *u);

/* Monotonic clock in nanoseconds. */
int64_t lg_now_ns(void);

/* ---- statistics ----------------------------------------------------------------- */

struct bstat {
	double median, min, max;
	size_t n;
};

/* Median, min and max of v[0..n) (v is sorted in place). */
void bstat_of(struct bstat *st, double *v, size_t n);
/* The q-quantile (0..1) of sorted ns values. */
int64_t bstat_quantile(const int64_t *sorted, size_t n, double q);

#endif
