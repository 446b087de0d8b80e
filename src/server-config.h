/*
 * sottod's configuration: the sottod.conf file (sottod.conf(5)) and the
 * command-line flags that override it, validated by one setter.
 *
 * Use: config_init(); config_set() for each --key value flag; config_load()
 * for the file; config_finish() to fill in defaults that depend on other keys
 * and check the whole.  The order of flags and file does not matter: a key
 * set by a flag is never overridden by the file, and the first --listen (or
 * --admins) flag replaces the file's list instead of adding to it.  To reload
 * on SIGHUP, build a fresh config the same way and swap it in.
 *
 * A struct config owns its strings; config_free() releases them.  Error
 * messages go to the caller's buffer, naming the file, line and key.  Not
 * thread-safe; a finished config may be read from any thread.
 */
#ifndef SOTTO_SERVER_CONFIG_H
#define SOTTO_SERVER_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "crypto/err.h"
#include "src/log.h"

#define CONFIG_DEFAULT_LISTEN    "[::]:7443"
#define CONFIG_DEFAULT_STATE_DIR "./sotto-state"
#define CONFIG_DEFAULT_FILE      "sottod.conf"
#define CONFIG_LINE_MAX          4096
#define CONFIG_LIST_MAX          64 /* listen addresses, admins */
#define CONFIG_KEYS_MAX          32
/* Files (issue 6): defaults and the ceiling of max_file_size and user_quota. */
#define CONFIG_DEFAULT_MAX_FILE_SIZE (UINT64_C(1) << 30) /* 1 GiB */
#define CONFIG_DEFAULT_USER_QUOTA    (UINT64_C(4) << 30) /* 4 GiB */
#define CONFIG_DEFAULT_FILE_TTL      (7 * 86400)         /* seconds */
#define CONFIG_FILE_BYTES_MAX        (UINT64_C(1) << 50)

enum config_registration {
	CONFIG_REGISTRATION_OPEN = 1, /* the values of Sotto__RegistrationPolicy */
	CONFIG_REGISTRATION_INVITE = 2,
	CONFIG_REGISTRATION_CLOSED = 3,
};

/* One listen address: host is "" for every address, or a name or IP literal without brackets. */
struct config_listen {
	char *host;
	char *port;
};

struct config {
	struct config_listen *listen;
	size_t n_listen;
	char *state_dir;
	char *cert; /* NULL until config_finish: <state_dir>/server.crt */
	char *key;  /* NULL until config_finish: <state_dir>/server.key */
	enum config_registration registration;
	uint32_t max_auth_failures;
	uint32_t block_duration;     /* seconds */
	uint32_t idle_timeout;       /* seconds, 0 = off */
	uint32_t handshake_timeout;  /* seconds */
	uint32_t auth_timeout;       /* seconds */
	uint32_t max_frame_preauth;  /* bytes */
	uint32_t max_frame;          /* bytes */
	uint32_t max_conns_per_addr; /* 0 = unlimited */
	uint32_t rate_limit;         /* requests per second per user */
	uint32_t rate_burst;         /* token bucket depth */
	uint32_t auth_throttle;      /* failed logins per address per minute, 0 = off */
	uint32_t output_high_water;  /* bytes */
	uint32_t commit_window_ms;
	uint64_t max_file_size;       /* ciphertext bytes per file */
	uint64_t user_quota;          /* bytes of files one user may have stored */
	uint32_t file_ttl;            /* seconds a blob is kept after its upload began */
	uint32_t max_group_members;   /* members per group, the owner included */
	uint32_t max_groups_per_user; /* groups one user may be a member of */
	uint32_t live_wait_ms;        /* for a DeliverAck before a pushed envelope is written */
	char **admins;
	size_t n_admins;
	enum log_level log_level;
	int syslog;
	int openssl_records; /* keep OpenSSL's record layer after the handshake */

	/* Bookkeeping for config_set and config_load, per key. */
	unsigned char set_by[CONFIG_KEYS_MAX]; /* 0 default, 1 file, 2 flag */
	unsigned set_line[CONFIG_KEYS_MAX];    /* the file line that set it */
};

/* Defaults for every key; SOTTO_ERR_NOMEM. */
int config_init(struct config *cfg) SOTTO_WUR;
void config_free(struct config *cfg);

/*
 * Set key (underscores or dashes) to value as a command-line flag would.
 * Flags beat the file; a repeated scalar flag keeps the last value; list keys
 * accumulate.  On error err holds "key: reason" and the config is unchanged:
 * SOTTO_ERR_NOTFOUND for an unknown key, SOTTO_ERR_INVALID for a bad value.
 */
int config_set(
        struct config *cfg, const char *key, const char *value, char *err, size_t errlen) SOTTO_WUR;

/*
 * Read a sottod.conf file: "key = value" lines, blank lines and lines
 * starting with #.  Errors read "path:line: key: reason".  SOTTO_ERR_NOTFOUND
 * (err set) if the file does not exist, so that a default path may be absent.
 */
int config_load(struct config *cfg, const char *path, char *err, size_t errlen) SOTTO_WUR;

/* Fill in cert and key from state_dir if unset, then config_check. */
int config_finish(struct config *cfg, char *err, size_t errlen) SOTTO_WUR;

/* Check the keys against each other (for --check-config); SOTTO_ERR_INVALID. */
int config_check(const struct config *cfg, char *err, size_t errlen) SOTTO_WUR;

/* Print the effective configuration in sottod.conf syntax (--check-config -v). */
void config_write(const struct config *cfg, FILE *fp);

/* The i-th key name (from 0; NULL past the end), e.g. to build the flag table and --help. */
const char *config_key_name(size_t i);

#endif
