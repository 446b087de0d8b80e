/*
 * Where the sotto client keeps its files, and the lock that gives one
 * profile to one process.
 *
 * With a home directory (-H DIR, or the environment variable SOTTO_HOME when
 * -H is not given) everything lives in DIR: sotto.conf, known_servers,
 * known_peers, identity, identity.pub, client.db and the lock.  A profile
 * other than "default" then gets its data files in DIR/PROFILE, while the
 * configuration and trust files stay in DIR.  Otherwise the XDG base
 * directories are used:
 *
 *   $XDG_CONFIG_HOME/sotto (or ~/.config/sotto): sotto.conf, known_servers,
 *       known_peers, shared by every profile;
 *   $XDG_DATA_HOME/sotto/PROFILE (or ~/.local/share/sotto/PROFILE): identity,
 *       identity.pub, client.db and lock.
 *
 * The default profile's identity is where sotto-keygen puts it.  A relative
 * XDG_* value is ignored, as the XDG specification says.  Nothing is created
 * by client_paths_resolve(); client_paths_mkdirs() and client_paths_lock()
 * create missing directories with mode 0700.
 *
 * Ownership: a struct client_paths and every string in it belong to the
 * caller, who releases them (and the lock) with client_paths_free().  The
 * functions read the environment, so they are not thread-safe against
 * setenv(); a struct client_paths belongs to one thread.
 */
#ifndef SOTTO_CLIENT_PATHS_H
#define SOTTO_CLIENT_PATHS_H

#include <stddef.h>

#include "crypto/err.h"

#define CLIENT_HOME_ENV           "SOTTO_HOME"
#define CLIENT_DEFAULT_PROFILE    "default"
#define CLIENT_PROFILE_MAX        32 /* characters in a profile name */
#define CLIENT_CONF_FILE          "sotto.conf"
#define CLIENT_KNOWN_SERVERS_FILE "known_servers"
#define CLIENT_KNOWN_PEERS_FILE   "known_peers"
#define CLIENT_IDENTITY_FILE      "identity"
#define CLIENT_IDENTITY_PUB_FILE  "identity.pub"
#define CLIENT_DB_FILE            "client.db"
#define CLIENT_LOCK_FILE          "lock"
#define CLIENT_PATHS_DIR_MODE     0700

struct client_paths {
	char *profile;       /* the profile name */
	char *config_dir;    /* sotto.conf, known_servers, known_peers */
	char *data_dir;      /* identity, client.db, lock */
	char *conf;          /* config_dir/sotto.conf */
	char *known_servers; /* config_dir/known_servers */
	char *known_peers;   /* config_dir/known_peers */
	char *identity;      /* data_dir/identity (PKCS#8 PEM, 0600) */
	char *identity_pub;  /* data_dir/identity.pub */
	char *db;            /* data_dir/client.db */
	char *lock;          /* data_dir/lock: holds the owner's pid */
	int home;            /* 1 if -H or SOTTO_HOME chose the directories */
	int lock_fd;         /* the held lock, or -1 */
};

/* 1 if name can be a profile: [A-Za-z0-9][A-Za-z0-9._-]*, at most CLIENT_PROFILE_MAX. */
int client_profile_valid(const char *name);

/*
 * Work out every path.  home is -H's argument or NULL (then SOTTO_HOME, if
 * set and not empty, takes its place); profile NULL means "default".  *out
 * is set to NULL first.  SOTTO_ERR_INVALID for a bad profile name or an
 * empty home, SOTTO_ERR_NOTFOUND when there is no home directory to put XDG
 * directories in; err (if not NULL) then holds a sentence.
 */
int client_paths_resolve(struct client_paths **out, const char *home, const char *profile,
        char *err, size_t errlen) SOTTO_WUR;

/* Release the lock if held, then every string; NULL is ignored. */
void client_paths_free(struct client_paths *p);

/* Create config_dir and data_dir (and missing parents) with mode 0700. */
int client_paths_mkdirs(const struct client_paths *p, char *err, size_t errlen) SOTTO_WUR;

/*
 * Take the profile lock: an exclusive flock(2) on data_dir/lock, which then
 * holds this process's pid.  It never waits: if another process holds it,
 * SOTTO_ERR_AGAIN and err says "another sotto is using profile NAME (pid
 * N); close it first".  The kernel drops the lock when the process exits,
 * however it exits.  A second call while held does nothing.  The descriptor
 * is close-on-exec; a child made by fork() without exec shares the lock, so
 * the parent must outlive such children or not rely on it.
 */
int client_paths_lock(struct client_paths *p, char *err, size_t errlen) SOTTO_WUR;

/* Give the lock up (the file stays, so that no race can split one lock in two). */
void client_paths_unlock(struct client_paths *p);

#endif
