/*
 * Integration-test helpers: a real sottod started on loopback with random
 * ports in a fresh directory, and small wrappers over src/client-conn for
 * registering users, sending and receiving.  Not thread-safe.
 */
#ifndef SOTTO_TESTS_TESTSRV_H
#define SOTTO_TESTS_TESTSRV_H

#include <stddef.h>
#include <stdint.h>

#include "keys/identity.h"
#include "src/client-conn.h"
#include "tests/lib/proc.h"

#define TESTSRV_ARGS_MAX 32

struct testsrv {
	char dir[256];   /* temporary directory, removed by testsrv_cleanup */
	char state[300]; /* dir/state: the server's --state-dir */
	char log[300];   /* dir/sottod.log: the server's stderr (debug level) */
	char conf[300];  /* dir/sottod.conf: written by testsrv_write_conf */
	const char *args[TESTSRV_ARGS_MAX];
	size_t nargs;
	int nofile; /* if > 0, the server runs under "ulimit -n nofile" (set before a restart) */
	struct proc *proc;
	char port4[16]; /* listening on 127.0.0.1 */
	char port6[16]; /* listening on [::1] */
	uint8_t spki[TLS_SPKI_HASH_BYTES];
};

/* Path of a built program ("sottod", "sotto-keygen") in the build tree. */
const char *testsrv_program(const char *name);

/* Start sottod in a new directory with extra flags (NULL-terminated, may be NULL). */
int testsrv_start(struct testsrv *s, const char *const *extra);
/* Start it again on the same state directory (new ports). */
int testsrv_restart(struct testsrv *s);
/* Send sig; for SIGKILL or SIGTERM, also reap the process. */
void testsrv_signal(struct testsrv *s, int sig);
/*
 * SIGTERM and wait; the exit status, or -1 (also when it died of a signal, or
 * when the log holds a sanitizer report, which is then printed).
 */
int testsrv_stop(struct testsrv *s);
/* Stop if running and remove the directory; aborts, loudly, on a sanitizer report. */
void testsrv_cleanup(struct testsrv *s);
/* 1 if the server's log contains needle. */
int testsrv_log_has(const struct testsrv *s, const char *needle);
/* 1 if the log holds an AddressSanitizer, LeakSanitizer or UBSan report. */
int testsrv_sanitizer_report(const struct testsrv *s);
/* 1 while sottod runs. */
int testsrv_alive(struct testsrv *s);
/* 1 if sottod runs and its log has no "[error]" line and no sanitizer report. */
int testsrv_healthy(struct testsrv *s);
/* 1 if any file under the state directory contains the bytes needle. */
int testsrv_state_has(const struct testsrv *s, const void *needle, size_t len);

struct tuser {
	char name[PROTO_USERNAME_MAX + 1];
	struct identity *id;
};

/* A new identity (IDENTITY_ED25519 or IDENTITY_RSA at 3072 bits) for name. */
int tuser_new(struct tuser *u, const char *name, enum identity_type type);
void tuser_free(struct tuser *u);

/* Open a TLS connection (v6: over [::1]) pinned to the server's key; NULL on failure. */
struct client_conn *tconnect(struct testsrv *s, int v6, char *err, size_t errlen);
/* A signed prekey and n one-time prekeys for u, then RegisterUser. */
int tregister_on(struct client_conn *c, struct tuser *u, const char *invite);
/* Connect and register (0 or the error). */
int tregister(struct testsrv *s, struct tuser *u);
/* Connect and log in; NULL on failure (err says why). */
struct client_conn *tlogin(struct testsrv *s, struct tuser *u, char *err, size_t errlen);
/* A pinned TLS connection that has sent nothing yet (no Hello). */
struct client_conn *tconnect_tls(struct testsrv *s, int v6, char *err, size_t errlen);
/* A plain TCP socket to the server (blocking), or -1. */
int tconnect_tcp(struct testsrv *s, int v6);
/* Read and discard until the peer closes: 0 on EOF or reset, -1 if still open after timeout_ms. */
int tfd_wait_closed(int fd, int timeout_ms);
/* The same for a client connection's socket (after a Closing, say). */
int twait_closed(struct client_conn *c, int timeout_ms);
/* The next frame of any kind (replies included); NULL on timeout or close. */
Sotto__Frame *tnext(struct client_conn *c, int timeout_ms);
/* Encode f (keeping its id) and write it raw inside TLS. */
int twrite_frame(struct client_conn *c, const Sotto__Frame *f);
/* Simple requests; *reply gets the answer (Presence, WhoReply, Ok or Error). */
int tseen(struct client_conn *c, const char *name, Sotto__Frame **reply);
int twho(struct client_conn *c, uint64_t since, Sotto__Frame **reply);
int tblock(struct client_conn *c, const char *name, int on);
/* Milliseconds on the monotonic clock, and a sleep. */
int64_t tnow_ms(void);
void tsleep_ms(int ms);

/* Send text to "to" with msg_id (random if all zero); *ack gets the reply frame. */
int tsend(struct client_conn *c, const char *to, const char *text, uint8_t msg_id[16],
        Sotto__Frame **ack);
/* Wait for the next push of kind body (skipping others); NULL on timeout. */
Sotto__Frame *twait(struct client_conn *c, Sotto__Frame__BodyCase body, int timeout_ms);
/* Acknowledge one delivered id as a notification. */
int tack(struct client_conn *c, const uint8_t msg_id[16]);

#endif
