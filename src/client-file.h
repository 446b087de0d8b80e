/*
 * File transfers on the client (issue 6): upload a local file encrypted with
 * crypto/filecrypt, download one and decrypt and verify it into a safe path,
 * and the rules that make a name from a FileOffer safe to write.  The sotto
 * commands (/sendfile, /accept, sotto files) are built on this.
 *
 * Both directions stream: a file is read, encrypted and sent one 64 KiB
 * chunk at a time, and received, decrypted and written the same way, so
 * memory does not grow with the file.  Each transfer spreads that work over
 * three threads joined by a ring of CLIENT_FILE_QUEUE chunks (src/chunkq.h):
 * an upload reads and encrypts on one, sends on the calling thread and
 * hashes on a third; a download receives on the calling thread, decrypts and
 * hashes on a second and writes on a third.  The extra threads live only for
 * the call, block every signal, and never call back: the progress and frame
 * callbacks run on the calling thread.  Uploads pipeline their chunks: most
 * go as notifications and one every CLIENT_FILE_SYNC bytes as a request
 * whose Ok acknowledges all before it, with at most CLIENT_FILE_WINDOW bytes
 * unacknowledged, so an upload pays no round trip, and the server writes no
 * reply, per chunk.
 *
 * Resume: a transfer that stops (the connection drops, the progress callback
 * says stop) returns an error and leaves its state in the caller's struct
 * client_file_upload or struct client_file_download.  Calling again with the
 * same struct, on a new connection if need be, continues where the server and
 * the disk left off: an upload from the bytes the server holds (by replaying
 * the plaintext up to there, see filecrypt.h), a download from the last
 * complete chunk written to its partial file (the struct is brought up to
 * date on the calling thread before each progress report, so the callback
 * may save it).  Both structs hold the file key
 * or a state derived from it: a caller that keeps them across runs must store
 * them as it stores keys (encrypted at rest).
 *
 * A transfer that fails or stops mid-stream leaves the connection with
 * frames in flight; the caller should close that connection (except after a
 * failed verification, where the download drains its stream first).
 *
 * All calls block, bounded by the connection's timeouts.  Nothing here is
 * thread-safe: one transfer per connection at a time.
 */
#ifndef SOTTO_CLIENT_FILE_H
#define SOTTO_CLIENT_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/err.h"
#include "crypto/filecrypt.h"
#include "src/client-conn.h"
#include "src/proto.h"

#define CLIENT_FILE_WINDOW    (4 * 1024 * 1024) /* upload bytes in flight at most */
#define CLIENT_FILE_SYNC      (1024 * 1024)     /* an acknowledged chunk every this many bytes */
#define CLIENT_FILE_QUEUE     16 /* chunks between a transfer's network and file threads */
#define CLIENT_FILE_WRITEBACK (8 * 1024 * 1024) /* start writing a download to disk this often */
#define CLIENT_FILE_NAME_MAX  200               /* bytes of a sanitized name */
#define CLIENT_FILE_EXT_MAX   16                /* an extension kept through truncation */
#define CLIENT_FILE_COPIES    999               /* "name (1).ext" .. "name (999).ext" */
#define CLIENT_FILE_PART_PFX  ".sotto-"         /* partial downloads: .sotto-<hex id>.part */

/* done of total plaintext bytes; return non-zero to stop the transfer (resumably). */
typedef int (*client_file_progress_fn)(void *arg, uint64_t done, uint64_t total);
/* A frame that is not part of the transfer (a Deliver, say); the callee frees it. */
typedef void (*client_file_frame_fn)(void *arg, Sotto__Frame *f);

struct client_file_opts {
	client_file_progress_fn progress; /* may be NULL */
	/*
	 * NULL: such frames are freed.  An unacknowledged Deliver is not lost
	 * that way: the server sends it again at the next login.
	 */
	client_file_frame_fn on_frame;
	void *arg;
	int timeout_ms; /* longest wait for the server; 0: CLIENT_DEFAULT_TIMEOUT */
};

/* One upload, from client_file_upload_prepare() until done is set. */
struct client_file_upload {
	uint8_t file_id[PROTO_FILE_ID_BYTES];
	uint8_t key[FILECRYPT_KEYBYTES];
	uint8_t header[FILECRYPT_HEADERBYTES];
	uint64_t size;        /* plaintext bytes */
	uint64_t cipher_size; /* what the server stores */
	int64_t mtime_ns;     /* the file's, to refuse resuming over a changed file */
	uint8_t sha256[FILECRYPT_HASHBYTES]; /* set when done */
	int done;                            /* UploadEnd succeeded */
};

/* What a FileOffer tells the recipient (end to end, never the server). */
struct client_file_offer {
	uint8_t file_id[PROTO_FILE_ID_BYTES];
	uint8_t key[FILECRYPT_KEYBYTES];
	uint64_t size; /* plaintext bytes */
	uint8_t sha256[FILECRYPT_HASHBYTES];
	const char *name; /* as the sender gave it: sanitized before use */
};

/* One download's progress; zero it before the first call. */
struct client_file_download {
	char part[4096];                     /* the partial file, once created */
	uint8_t state[FILECRYPT_STATEBYTES]; /* pull state after the last complete chunk */
	int has_state;
	uint64_t written; /* plaintext bytes in part that the state covers */
};

/*
 * Set up the upload of path: a random file id, key and header, and the
 * file's size and modification time.  Wipe *up when it is no longer needed.
 */
int client_file_upload_prepare(
        struct client_file_upload *up, const char *path, char *err, size_t errlen) SOTTO_WUR;

/*
 * Upload path (prepared in up) for n recipients on a logged-in connection,
 * or resume it.  On success up->done is set and up->sha256 holds the
 * plaintext's hash for the FileOffer.  SOTTO_ERR_PERM: the server refused
 * (client_conn_remote() has its code: ERR_FILE_TOO_LARGE,
 * ERR_QUOTA_EXCEEDED, ...); SOTTO_ERR_AGAIN: stopped by the progress
 * callback; SOTTO_ERR_FORMAT: the file changed since prepare.  err says why.
 */
int client_file_upload(struct client_conn *c, struct client_file_upload *up, const char *path,
        const char *const *recipients, size_t n, const struct client_file_opts *o, char *err,
        size_t errlen) SOTTO_WUR;

/*
 * Download offer, decrypt it, check its size and SHA-256, and write it.
 * dest is a directory (the file gets offer->name, sanitized, and a free
 * variant "name (1).ext" if that name is taken) or a path that must not
 * exist.  The bytes go to a partial file in the target directory, made 0600
 * with O_EXCL, which is renamed into place (never over an existing file) once
 * verified; final (finallen bytes) receives the path.  SOTTO_ERR_VERIFY: the
 * data failed to decrypt or verify (tampered or corrupt): the partial file is
 * deleted; SOTTO_ERR_EXISTS: dest exists or no free name is left;
 * SOTTO_ERR_PERM: the server refused (ERR_NO_SUCH_FILE ...); SOTTO_ERR_AGAIN:
 * stopped by the progress callback.  err says why.
 */
int client_file_download(struct client_conn *c, const struct client_file_offer *offer,
        const char *dest, struct client_file_download *dl, const struct client_file_opts *o,
        char *final, size_t finallen, char *err, size_t errlen) SOTTO_WUR;

/* Tell the server this recipient is done with the file (kept or discarded). */
int client_file_done(struct client_conn *c, const uint8_t file_id[PROTO_FILE_ID_BYTES],
        int accepted, char *err, size_t errlen) SOTTO_WUR;

/*
 * Make a file name from an offer safe to create in a directory: only the part
 * after the last '/' or '\\'; control characters (C0, DEL, C1), bidirectional
 * overrides and invalid UTF-8 become '_'; runs of dots become one dot, so no
 * ".." remains; leading dots and spaces, and trailing spaces, go; at most
 * CLIENT_FILE_NAME_MAX bytes, cut at a character boundary and keeping a short
 * extension; "file" if nothing is left.  out needs CLIENT_FILE_NAME_MAX + 1
 * bytes.
 */
void client_file_sanitize(char out[CLIENT_FILE_NAME_MAX + 1], const char *name);

/*
 * The n-th variant of a sanitized name: n 0 is name itself, n 1.. is
 * "stem (n).ext" (out needs CLIENT_FILE_NAME_MAX + 16 bytes).
 */
void client_file_variant(char *out, size_t outlen, const char *name, unsigned n);

#endif
