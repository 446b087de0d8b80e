/*
 * The sotto client's shared state for one-shot subcommands: global options,
 * the profile's paths, the identity, client.db and the server connection,
 * each opened on demand by the ctx_* helpers in sotto.c.  Each subcommand
 * (client-cmd-*.c) is a function taking its own argv and returning the
 * program's exit status (enum sotto_exit).  One context belongs to one
 * thread; nothing here is thread-safe.
 */
#ifndef SOTTO_CLIENT_CMD_H
#define SOTTO_CLIENT_CMD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "keys/identity.h"
#include "src/client-conn.h"
#include "src/client-paths.h"
#include "src/client-store.h"
#include "src/client-trust.h"

/* Exit statuses (DESIGN section 13). */
enum sotto_exit {
	SOTTO_EXIT_OK = 0,
	SOTTO_EXIT_USAGE = 1,    /* usage or user error */
	SOTTO_EXIT_INTERNAL = 2, /* a bug or the system failed */
	SOTTO_EXIT_NET = 3,      /* network, TLS or server */
	SOTTO_EXIT_TRUST = 4,    /* untrusted or changed peer key */
	SOTTO_EXIT_AUTH = 5,     /* authentication failed or locked out */
};

struct sotto_ctx {
	/* Global options (borrowed from argv or conf_* below). */
	const char *home;
	const char *server;
	const char *user;
	const char *identity_path;
	const char *passphrase_file;
	const char *ca;
	const char *server_fp;
	int json;
	int family;
	enum client_trust_policy trust_new;
	int64_t test_now; /* hidden --test-now, for tests only: prekey time; 0: the real clock */

	/* What was opened. */
	struct client_paths *paths;
	char *conf_server, *conf_user, *conf_identity, *conf_trust; /* sotto.conf values */
	char *host, *port;                                          /* from server */
	uint16_t portnum;
	char username[PROTO_USERNAME_MAX + 1];
	struct identity *id;
	struct client_store *store;
	struct client_conn *conn;

	/* files (client-cmd-file.c) */
	char *conf_downloads; /* sotto.conf downloads */
};

/* Print "sotto: MESSAGE" on stderr and return code. */
int ctx_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The paths, the server (HOST:PORT parsed) and the username, from options or sotto.conf. */
int ctx_need_server(struct sotto_ctx *ctx);
int ctx_need_user(struct sotto_ctx *ctx);
/* Load the identity (passphrase from --passphrase-file or the terminal). */
int ctx_need_identity(struct sotto_ctx *ctx);
/* Take the profile lock and open client.db (loads the identity first). */
int ctx_need_store(struct sotto_ctx *ctx);
/* Connect with the server key checked (--ca, --server-fingerprint or known_servers). */
int ctx_connect(struct sotto_ctx *ctx);
/* Connect, log in and look after the prekeys (account_prekeys); *ok (may be NULL) receives LoginOk. */
int ctx_login(struct sotto_ctx *ctx, Sotto__Frame **ok);
/* An exit status and message for a failed request on the connection. */
int ctx_request_fail(struct sotto_ctx *ctx, const char *what, int r);
/* The own public key from the identity file's .pub (no passphrase needed). */
int ctx_own_pub(struct sotto_ctx *ctx, struct identity_pub **out);

/*
 * Prekey upkeep after each login (an exit status): drop signed prekeys past
 * their grace period, make and upload a new signed prekey when the current
 * one is a week old, and top the one-time prekeys up to 100 when the server
 * holds fewer than 20 (otk_remaining, from LoginOk).  Opens client.db; if
 * another sotto holds the profile, that one does the upkeep and this does
 * nothing.
 */
int account_prekeys(struct sotto_ctx *ctx, uint32_t otk_remaining);

/*
 * The exit status and message for a failed known_servers or known_peers call
 * (r, with err from client-trust.h): a malformed file is the user's to fix
 * (1, err names FILE:LINE), anything else is internal (2).
 */
int trust_file_fail(int r, const char *err);

/*
 * Check a peer's identity key against known_peers under --trust-new: 0 to go
 * on (a new key is recorded, a changed one announced loudly), or
 * SOTTO_EXIT_TRUST after saying why not.
 */
int trust_check(struct sotto_ctx *ctx, const char *peer, const struct identity_pub *pub);

/* 1 if argv holds -h or --help. */
int cmd_wants_help(int argc, char **argv);

/* Subcommands: argv[0] is the subcommand's name. */
int cmd_register(struct sotto_ctx *ctx, int argc, char **argv);
int cmd_send(struct sotto_ctx *ctx, int argc, char **argv);
int cmd_receive(struct sotto_ctx *ctx, int argc, char **argv);
int cmd_history(struct sotto_ctx *ctx, int argc, char **argv);
int cmd_group(struct sotto_ctx *ctx, int argc, char **argv);
int cmd_who(struct sotto_ctx *ctx, int argc, char **argv);
int cmd_seen(struct sotto_ctx *ctx, int argc, char **argv);
int cmd_block(struct sotto_ctx *ctx, int argc, char **argv);
int cmd_blocked(struct sotto_ctx *ctx, int argc, char **argv);
int cmd_fingerprint(struct sotto_ctx *ctx, int argc, char **argv);
int cmd_verify(struct sotto_ctx *ctx, int argc, char **argv);
int cmd_trust(struct sotto_ctx *ctx, int argc, char **argv);
int cmd_identities(struct sotto_ctx *ctx, int argc, char **argv);
int cmd_reset(struct sotto_ctx *ctx, int argc, char **argv);

/* files (client-cmd-file.c): send-file, and files list, accept and discard. */
int cmd_send_file(struct sotto_ctx *ctx, int argc, char **argv);
int cmd_files(struct sotto_ctx *ctx, int argc, char **argv);
int cmd_file_list(struct sotto_ctx *ctx, int argc, char **argv);
int cmd_file_accept(struct sotto_ctx *ctx, int argc, char **argv);
int cmd_file_discard(struct sotto_ctx *ctx, int argc, char **argv);
/*
 * The line (or JSON event) for an offer received: how to accept or discard
 * it, as commands (/accept in the interactive mode if slash); group is the
 * group it was sent to, or NULL.
 */
void file_offer_print(const struct sotto_ctx *ctx, const char *peer, uint32_t id, const char *name,
        uint64_t size, const char *group, int slash);

/* The interactive mode (client-interactive.c), when standard input and output are terminals. */
int interactive_run(struct sotto_ctx *ctx);

/* JSON: print s as a quoted JSON string. */
void json_str(FILE *fp, const char *s, size_t len);
/* Write a peer's text with terminal control characters replaced by '?'. */
void text_print(FILE *fp, const char *s, size_t len);

#endif
