/*
 * The client side of the sotto protocol: one connection to sottod over TLS
 * 1.3, the Hello exchange, registration and login, and request/reply
 * matching.  Frames the server pushes (Deliver, Delivered, Closing) while a
 * reply is awaited are queued and handed out by client_conn_next_push().
 *
 * The calls block, each bounded by a timeout; an interactive client drives
 * them when client_conn_fd() is readable or client_conn_pending() is
 * non-zero.  A struct client_conn belongs to one thread.  The program must
 * ignore SIGPIPE (OpenSSL writes to the socket with write(2)), or a server
 * that hangs up mid-write kills it instead of failing the call.
 */
#ifndef SOTTO_CLIENT_CONN_H
#define SOTTO_CLIENT_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/err.h"
#include "keys/identity.h"
#include "src/frame.h"
#include "src/tls.h"

#define CLIENT_DEFAULT_PORT    "7443"
#define CLIENT_DEFAULT_TIMEOUT 15000  /* ms */
#define CLIENT_PUSH_QUEUE_MAX  4096   /* pushes held while waiting for a reply */
#define CLIENT_IO_BUFFER       131072 /* TLS read-ahead and write buffers, bytes each */

struct client_conn;

struct client_opts {
	const char *host;     /* name or address; brackets optional for IPv6 */
	const char *port;     /* NULL: CLIENT_DEFAULT_PORT */
	int family;           /* AF_UNSPEC, AF_INET or AF_INET6 */
	const char *ca_path;  /* X.509 verification with a host check, or NULL to pin */
	const uint8_t *pin;   /* SPKI SHA-256 the server must have, or NULL */
	int timeout_ms;       /* per operation; 0: CLIENT_DEFAULT_TIMEOUT */
	const char *software; /* Hello.client, e.g. "sotto/0.1.0" */
	int no_hello;         /* stop after TLS and the pin check (tests of the server) */
};

/* The server's word when a call fails with SOTTO_ERR_PERM (an Error or Closing frame). */
struct client_remote_error {
	uint32_t code; /* Sotto__ErrorCode */
	uint32_t retry_after;
	char message[256];
};

/*
 * Connect (each address in turn), complete TLS, check the pin if given, and
 * exchange Hello.  On failure *out is NULL and err holds a sentence.
 * SOTTO_ERR_IO: no connection; SOTTO_ERR_VERIFY: the server key does not
 * match the pin (or the CA); SOTTO_ERR_PROTO: not a sotto server or an
 * incompatible version.
 */
int client_conn_open(
        struct client_conn **out, const struct client_opts *o, char *err, size_t errlen) SOTTO_WUR;

/* Close politely (Bye, then shut TLS down) and free; NULL is ignored. */
void client_conn_close(struct client_conn *c);
/* Close without a word and free (tests use it to vanish mid-session). */
void client_conn_abort(struct client_conn *c);

/* SHA-256 of the server's SubjectPublicKeyInfo (for trust-on-first-use). */
const uint8_t *client_conn_server_spki(const struct client_conn *c);
/* The Hello reply: registration policy and post-login frame cap. */
uint32_t client_conn_registration(const struct client_conn *c);
uint32_t client_conn_max_frame(const struct client_conn *c);
/* The last failure: a sentence for people, and the server's code if it sent one. */
const char *client_conn_error(const struct client_conn *c);
const struct client_remote_error *client_conn_remote(const struct client_conn *c);

/*
 * Log in as username with id.  SOTTO_ERR_PERM when the server refuses
 * (client_conn_remote() says why: ERR_AUTH_FAILED, ERR_LOCKED_OUT with
 * retry_after, ...).  *ok (may be NULL) receives the LoginOk (frame_free it).
 */
int client_conn_login(struct client_conn *c, const char *username, const struct identity *id,
        Sotto__Frame **ok) SOTTO_WUR;

/* Register username with id and the given prekeys; logs in on success. */
int client_conn_register(struct client_conn *c, const char *username, const struct identity *id,
        const Sotto__SignedPrekey *spk, Sotto__OneTimePrekey *const *otks, size_t n_otks,
        const char *invite) SOTTO_WUR;

/*
 * Send req (its id is assigned here) and wait for the reply with that id.
 * An Error reply returns SOTTO_ERR_PERM with client_conn_remote() filled and
 * *reply set to the Error frame.  SOTTO_ERR_CLOSED if the server closed
 * (with a Closing frame, described by client_conn_remote()).
 */
int client_conn_request(
        struct client_conn *c, Sotto__Frame *req, Sotto__Frame **reply, int timeout_ms) SOTTO_WUR;

/* Send a notification (id 0), e.g. DeliverAck, without waiting. */
int client_conn_notify(struct client_conn *c, Sotto__Frame *f) SOTTO_WUR;

/*
 * Send req with the next request id (also stored in *id) without waiting;
 * the reply comes through client_conn_next_frame().  For pipelined requests
 * (UploadChunk) and requests answered by a stream of frames (Download).
 */
int client_conn_send(struct client_conn *c, Sotto__Frame *req, uint64_t *id) SOTTO_WUR;

/*
 * Corked (on non-zero), frames sent wait in the connection's write buffer
 * until it fills (CLIENT_IO_BUFFER bytes) or the connection waits for input,
 * so that a run of large frames leaves in fewer, larger writes.  Uncorking
 * writes nothing by itself: what waits goes out with the next frame sent, or
 * before the next wait for input.
 */
void client_conn_cork(struct client_conn *c, int on);

/*
 * The next pushed frame (Deliver, Delivered, Closing), waiting up to
 * timeout_ms (0: do not wait, -1: forever).  SOTTO_ERR_AGAIN on timeout.
 */
int client_conn_next_push(struct client_conn *c, Sotto__Frame **push, int timeout_ms) SOTTO_WUR;

/*
 * The next frame of any kind, replies to raw requests included (tests that
 * write crafted bytes with client_conn_write_raw()); queued pushes come
 * first.  SOTTO_ERR_AGAIN on timeout, SOTTO_ERR_CLOSED once the server has
 * hung up or sent Closing.
 */
int client_conn_next_frame(struct client_conn *c, Sotto__Frame **f, int timeout_ms) SOTTO_WUR;

/*
 * Queue a push again, to come out of client_conn_next_push() (and
 * client_conn_next_frame()) before anything else: a caller that set pushes
 * aside during a file transfer hands them back this way.  The queue owns f.
 */
int client_conn_requeue(struct client_conn *c, Sotto__Frame *f) SOTTO_WUR;

/* 1 once login or registration succeeded on this connection. */
int client_conn_authed(const struct client_conn *c);

/* Frames already received and queued (so poll() on the fd would miss them). */
size_t client_conn_pending(const struct client_conn *c);
int client_conn_fd(const struct client_conn *c);

/* Write raw bytes inside TLS (tests of the server's parser). */
int client_conn_write_raw(struct client_conn *c, const void *data, size_t len) SOTTO_WUR;

/* Parse "host", "host:port", "[v6]:port" or "v6" into host and port (malloc'd). */
int client_parse_hostport(const char *s, char **host, char **port) SOTTO_WUR;

#endif
