/*
 * The client's trust files: known_servers (pinned server keys, trusted on
 * first use like OpenSSH's known_hosts) and known_peers (each peer's identity
 * key and how far it is trusted).
 *
 * known_servers, one server per line:
 *
 *   HOST:PORT SHA256:BASE64 [ADDED]
 *
 * HOST is a host name (letters, digits, '.', '-', '_'; compared without
 * regard to case) or an IPv6 address in brackets ("[::1]:7443"); the
 * fingerprint is SHA-256 of the server certificate's SubjectPublicKeyInfo,
 * as sotto-keygen and the client print it; ADDED is the Unix time of the
 * pin.
 *
 * known_peers, one peer per line:
 *
 *   HOST:PORT USERNAME TYPE SHA256:BASE64 LEVEL ADDED sotto-TYPE BASE64
 *
 * naming the server the peer is registered on, the peer's username, its key
 * type (ED25519 or RSA), the key's fingerprint, the trust level (tofu,
 * verified or changed), the Unix time the key was recorded, and the whole
 * public key as in a .pub file, so that old and new fingerprints and safety
 * numbers can always be shown.  The type and fingerprint must agree with the
 * key.
 *
 * In both files, blank lines and lines starting with '#' are kept as they
 * are, fields are separated by spaces or tabs, a line may be at most
 * CLIENT_TRUST_LINE_MAX bytes, and a malformed or duplicate entry is an
 * error (SOTTO_ERR_FORMAT, with err naming FILE:LINE), never skipped.  A
 * missing file is an empty one.
 *
 * Writes read the whole file, change one entry and write the whole file to
 * a temporary file that is renamed over the old one (keys/keyfile.h), mode
 * 0600, so that a crash leaves the old file or the new one.  Concurrent
 * writers (several profiles share these files) serialise on a flock(2) of
 * the file's directory, waiting at most CLIENT_TRUST_LOCK_WAIT_MS before
 * SOTTO_ERR_AGAIN; readers need no lock.  The directory must exist
 * (client_paths_mkdirs).
 *
 * Every function takes err/errlen (err may be NULL) for a sentence on
 * failure.  Ownership: records returned are the caller's, freed with
 * client_trust_peer_free(); arguments are borrowed.  Thread-safe as far as
 * the files allow: no function keeps state between calls.
 */
#ifndef SOTTO_CLIENT_TRUST_H
#define SOTTO_CLIENT_TRUST_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/err.h"
#include "crypto/hash.h"
#include "keys/fingerprint.h"
#include "keys/identity.h"
#include "src/proto.h"

#define CLIENT_TRUST_LINE_MAX     8192               /* bytes per line, newline excluded */
#define CLIENT_TRUST_FILE_MAX     (16 * 1024 * 1024) /* bytes per file */
#define CLIENT_TRUST_HOST_MAX     253                /* a DNS name; IPv6 addresses are shorter */
#define CLIENT_TRUST_LOCK_WAIT_MS 2000
#define CLIENT_TRUST_SPKI_BYTES   HASH_SHA256_BYTES

/* What a look-up found. */
enum client_trust_status {
	CLIENT_TRUST_UNKNOWN = 0,  /* no entry: first contact */
	CLIENT_TRUST_MATCH = 1,    /* the entry holds this key */
	CLIENT_TRUST_MISMATCH = 2, /* the entry holds another key: warn loudly */
};

enum client_trust_level {
	CLIENT_TRUST_TOFU = 1,     /* accepted on first use, not compared in person */
	CLIENT_TRUST_VERIFIED = 2, /* the safety number was compared */
	CLIENT_TRUST_CHANGED = 3,  /* a different key was seen and not yet accepted */
};

/*
 * What to do with a peer seen for the first time (--trust-new).  The caller
 * applies it; the suggested meaning is: tofu records the key and goes on,
 * and refuses a changed key; always also accepts a changed key (scripts that
 * must not stop); never refuses any key that is not already in known_peers.
 */
enum client_trust_policy {
	CLIENT_TRUST_NEW_TOFU = 0,
	CLIENT_TRUST_NEW_ALWAYS = 1,
	CLIENT_TRUST_NEW_NEVER = 2,
};

/* One known_peers entry. */
struct client_trust_peer {
	char host[CLIENT_TRUST_HOST_MAX + 1]; /* lower case, IPv6 without brackets */
	uint16_t port;
	char username[PROTO_USERNAME_MAX + 1]; /* lower case */
	enum client_trust_level level;
	int64_t added; /* Unix time the key was recorded */
	char fingerprint[FINGERPRINT_LEN];
	struct identity_pub *pub; /* owned */
};

/* Called for each entry; return 0 to go on, >0 to stop (not an error), <0 to fail. */
typedef int (*client_trust_peer_cb)(void *arg, const struct client_trust_peer *peer);

/* "tofu", "verified", "changed". */
const char *client_trust_level_name(enum client_trust_level level);
/* "tofu", "always", "never". */
const char *client_trust_policy_name(enum client_trust_policy policy);
/* Parse --trust-new's argument; SOTTO_ERR_INVALID for anything else. */
int client_trust_policy_parse(enum client_trust_policy *out, const char *s) SOTTO_WUR;

/*
 * Parse a fingerprint as people paste it ("SHA256:" and 43 characters of
 * unpadded base64, as fingerprint_format() writes it); SOTTO_ERR_FORMAT
 * otherwise.
 */
int client_trust_fingerprint_parse(uint8_t out[CLIENT_TRUST_SPKI_BYTES], const char *s) SOTTO_WUR;

/*
 * "host:port", or "[v6addr]:port", as the files write it, for messages;
 * SOTTO_ERR_INVALID for a bad host or port 0, SOTTO_ERR_RANGE if out is too
 * small (CLIENT_TRUST_HOST_MAX + 9 is always enough).
 */
int client_trust_server_name(char *out, size_t outlen, const char *host, uint16_t port) SOTTO_WUR;

/*
 * Look the server up in known_servers (host in any case; an IPv6 address
 * with or without brackets).  *status says what was found; on
 * CLIENT_TRUST_MISMATCH (and MATCH) stored (may be NULL) receives the pinned
 * hash, for the loud "the server's key has changed" message.
 */
int client_trust_server_lookup(const char *file, const char *host, uint16_t port,
        const uint8_t spki[CLIENT_TRUST_SPKI_BYTES], enum client_trust_status *status,
        uint8_t stored[CLIENT_TRUST_SPKI_BYTES], char *err, size_t errlen) SOTTO_WUR;

/*
 * Pin a server's key, stamped now.  Pinning the same key again does nothing;
 * SOTTO_ERR_EXISTS if a different key is pinned (replacing a server key is a
 * deliberate act: client_trust_server_remove first).
 */
int client_trust_server_add(const char *file, const char *host, uint16_t port,
        const uint8_t spki[CLIENT_TRUST_SPKI_BYTES], int64_t now, char *err,
        size_t errlen) SOTTO_WUR;

/* Forget a server's pin; SOTTO_ERR_NOTFOUND if there is none. */
int client_trust_server_remove(
        const char *file, const char *host, uint16_t port, char *err, size_t errlen) SOTTO_WUR;

/* The entry for username on host:port; SOTTO_ERR_NOTFOUND if there is none. */
int client_trust_peer_get(struct client_trust_peer **out, const char *file, const char *host,
        uint16_t port, const char *username, char *err, size_t errlen) SOTTO_WUR;

/*
 * Compare pub with the entry for username on host:port.  *status is
 * UNKNOWN, MATCH or MISMATCH; for MATCH and MISMATCH *old (may be NULL; set
 * to NULL first) receives the entry, whose key and level are what was
 * trusted before (level CHANGED when a change was already seen and not yet
 * accepted).
 */
int client_trust_peer_lookup(const char *file, const char *host, uint16_t port,
        const char *username, const struct identity_pub *pub, enum client_trust_status *status,
        struct client_trust_peer **old, char *err, size_t errlen) SOTTO_WUR;

/* Record a new peer at level tofu; SOTTO_ERR_EXISTS if it has an entry already. */
int client_trust_peer_add(const char *file, const char *host, uint16_t port, const char *username,
        const struct identity_pub *pub, int64_t now, char *err, size_t errlen) SOTTO_WUR;

/*
 * The user compared safety numbers over pub: the entry gets pub (created if
 * missing; its added time kept if the key is the same) at level verified.
 */
int client_trust_peer_verify(const char *file, const char *host, uint16_t port,
        const char *username, const struct identity_pub *pub, int64_t now, char *err,
        size_t errlen) SOTTO_WUR;

/*
 * A different key was seen: the entry keeps its old key, so that the old
 * fingerprint stays on record, and its level becomes changed until the user
 * accepts the new key.  SOTTO_ERR_NOTFOUND if there is no entry.
 */
int client_trust_peer_mark_changed(const char *file, const char *host, uint16_t port,
        const char *username, char *err, size_t errlen) SOTTO_WUR;

/* Accept pub (/trust): the entry is replaced (or created) with pub at level tofu, stamped now. */
int client_trust_peer_trust(const char *file, const char *host, uint16_t port, const char *username,
        const struct identity_pub *pub, int64_t now, char *err, size_t errlen) SOTTO_WUR;

/* Forget the peer (untrust); SOTTO_ERR_NOTFOUND if there is no entry. */
int client_trust_peer_remove(const char *file, const char *host, uint16_t port,
        const char *username, char *err, size_t errlen) SOTTO_WUR;

/* Call cb for each entry in file order; a malformed file fails before cb runs. */
int client_trust_peer_foreach(
        const char *file, client_trust_peer_cb cb, void *arg, char *err, size_t errlen) SOTTO_WUR;

void client_trust_peer_free(struct client_trust_peer *peer);

#endif
