/* File transfers on the client; see client-file.h. */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/util.h"
#include "src/chunkq.h"
#include "src/client-file.h"

#define UP_MAX_INFLIGHT 256 /* requests; the window in bytes is CLIENT_FILE_WINDOW */
#define FRAME_OVERHEAD  256 /* an UploadChunk's bytes besides its data, generously */

static void __attribute__((format(printf, 3, 4)))
cf_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int
cf_timeout(const struct client_file_opts *o)
{
	return o != NULL && o->timeout_ms > 0 ? o->timeout_ms : CLIENT_DEFAULT_TIMEOUT;
}

/* Plaintext bytes wholly before ciphertext offset off, for progress. */
static uint64_t
cf_plain_before(uint64_t off, uint64_t size)
{
	uint64_t k, r, p;

	if (off <= FILECRYPT_HEADERBYTES)
		return 0;
	k = (off - FILECRYPT_HEADERBYTES) / FILECRYPT_CCHUNK;
	r = (off - FILECRYPT_HEADERBYTES) % FILECRYPT_CCHUNK;
	p = k * FILECRYPT_CHUNK + (r < FILECRYPT_CHUNK ? r : FILECRYPT_CHUNK);
	return p < size ? p : size;
}

static int
cf_progress(const struct client_file_opts *o, uint64_t done, uint64_t total)
{
	if (o == NULL || o->progress == NULL)
		return 0;
	return o->progress(o->arg, done, total) != 0 ? SOTTO_ERR_AGAIN : 0;
}

/* A frame outside the transfer: hand it on, or free it.  SOTTO_ERR_CLOSED for Closing. */
static int
cf_other(struct client_conn *c, const struct client_file_opts *o, Sotto__Frame *f, char *err,
        size_t errlen)
{
	int closing = f->body_case == SOTTO__FRAME__BODY_CLOSING;

	if (closing)
		cf_err(err, errlen, "%s", client_conn_error(c));
	if (f->id == 0 && o != NULL && o->on_frame != NULL)
		o->on_frame(o->arg, f);
	else
		frame_free(f);
	return closing ? SOTTO_ERR_CLOSED : 0;
}

/* The server's Error frame as a sentence. */
static void
cf_remote(char *err, size_t errlen, const char *what, const Sotto__Error *e)
{
	const char *m = e->message != NULL ? e->message : "";

	cf_err(err, errlen, "%s: %s%s%s", what, proto_error_string(e->code), m[0] ? ": " : "", m);
}

/* Read exactly len bytes (a short read means the file shrank). */
static int
cf_read_full(int fd, uint8_t *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return SOTTO_ERR_IO;
		if (n == 0)
			return SOTTO_ERR_SHORT;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int64_t
cf_mtime_ns(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

int
client_file_upload_prepare(
        struct client_file_upload *up, const char *path, char *err, size_t errlen)
{
	struct filecrypt *fc = NULL;
	struct stat st;
	int r;

	memset(up, 0, sizeof(*up));
	if (stat(path, &st) != 0) {
		cf_err(err, errlen, "%s: %s", path, strerror(errno));
		return errno == ENOENT ? SOTTO_ERR_NOTFOUND : SOTTO_ERR_IO;
	}
	if (!S_ISREG(st.st_mode)) {
		cf_err(err, errlen, "%s: not a regular file", path);
		return SOTTO_ERR_INVALID;
	}
	if ((uint64_t)st.st_size > FILECRYPT_MAX_PLAIN) {
		cf_err(err, errlen, "%s: too large to send", path);
		return SOTTO_ERR_RANGE;
	}
	up->size = (uint64_t)st.st_size;
	up->cipher_size = filecrypt_ciphertext_size(up->size);
	up->mtime_ns = cf_mtime_ns(&st);
	sotto_random(up->file_id, sizeof(up->file_id));
	filecrypt_keygen(up->key);
	/* The header is fixed now; every (re)start replays from it. */
	if ((r = filecrypt_push_new(&fc, up->header, up->key)) != 0) {
		cf_err(err, errlen, "cannot set up encryption: %s", sotto_strerror(r));
		sotto_wipe(up, sizeof(*up));
		return r;
	}
	filecrypt_free(fc);
	return 0;
}

/* Requests in flight during an upload, oldest first. */
struct up_ctx {
	struct client_conn *c;
	const struct client_file_opts *o;
	struct client_file_upload *up;
	uint64_t ids[UP_MAX_INFLIGHT];
	uint64_t ends[UP_MAX_INFLIGHT]; /* stream offset each request's data ends at */
	size_t head, count;
	uint64_t acked;     /* stream bytes the server has acknowledged */
	uint64_t sent;      /* stream bytes sent */
	uint64_t last_sync; /* where the last chunk sent as a request ended */
	uint64_t polled;    /* last_sync when replies were last looked for without waiting */
	char *err;
	size_t errlen;
};

/*
 * Take one frame, waiting up to timeout_ms (0: only what has arrived).  0
 * with *got 1 if it was a reply of ours, 2 if it was something else, 0 if
 * nothing came in time; else an error.
 */
static int
up_reply(struct up_ctx *u, int timeout_ms, int *got)
{
	Sotto__Frame *f = NULL;
	size_t i, j;
	int r;

	*got = 0;
	r = client_conn_next_frame(u->c, &f, timeout_ms);
	if (r == SOTTO_ERR_AGAIN)
		return 0;
	if (r != 0) {
		cf_err(u->err, u->errlen, "upload interrupted: %s", client_conn_error(u->c));
		return r == SOTTO_ERR_CLOSED ? r : SOTTO_ERR_IO;
	}
	for (i = 0; i < u->count; i++) {
		j = (u->head + i) % UP_MAX_INFLIGHT;
		if (f->id == u->ids[j])
			break;
	}
	if (f->id == 0 || i == u->count) {
		*got = 2;
		return cf_other(u->c, u->o, f, u->err, u->errlen);
	}
	if (f->body_case == SOTTO__FRAME__BODY_ERROR) {
		cf_remote(u->err, u->errlen, "the server refused a chunk", f->error);
		frame_free(f);
		return SOTTO_ERR_PERM;
	}
	if (f->body_case != SOTTO__FRAME__BODY_OK || i != 0) {
		cf_err(u->err, u->errlen, "unexpected answer to UploadChunk");
		frame_free(f);
		return SOTTO_ERR_PROTO;
	}
	frame_free(f);
	u->acked = u->ends[u->head];
	u->head = (u->head + 1) % UP_MAX_INFLIGHT;
	u->count--;
	*got = 1;
	if ((r = cf_progress(u->o, cf_plain_before(u->acked, u->up->size), u->up->size)) != 0)
		cf_err(u->err, u->errlen, "upload stopped");
	return r;
}

/*
 * Wait until at most max_count requests, and max_bytes of the stream up to
 * the last request, are unanswered.
 */
static int
up_drain(struct up_ctx *u, size_t max_count, uint64_t max_bytes)
{
	int r, got;

	/*
	 * First whatever has already arrived, without waiting; only after a new
	 * request, since nothing else of ours can have come (a read that finds
	 * nothing costs two system calls, too many to spend on every chunk).
	 */
	while (u->count > 0 && u->last_sync > u->polled) {
		if ((r = up_reply(u, 0, &got)) != 0)
			return r;
		if (got == 0)
			u->polled = u->last_sync;
	}
	while (u->count > 0 && (u->count > max_count || u->last_sync - u->acked > max_bytes)) {
		if ((r = up_reply(u, cf_timeout(u->o), &got)) != 0)
			return r;
		if (got == 0) {
			cf_err(u->err, u->errlen, "the server stopped answering the upload");
			return SOTTO_ERR_IO;
		}
	}
	return 0;
}

/*
 * Send stream bytes [from, from + len) in frames the server accepts.  Most
 * go as notifications; one every CLIENT_FILE_SYNC bytes is a request, whose
 * Ok acknowledges it and everything before it.
 */
static int
up_send(struct up_ctx *u, const uint8_t *fid, const uint8_t *data, size_t len, uint64_t from)
{
	size_t piece = PROTO_FILE_CHUNK_MAX, n;
	Sotto__UploadChunk uc;
	Sotto__Frame f;
	uint64_t id = 0;
	int r, sync;

	if (client_conn_max_frame(u->c) < piece + FRAME_OVERHEAD)
		piece = client_conn_max_frame(u->c) - FRAME_OVERHEAD;
	while (len > 0) {
		if ((r = up_drain(u, UP_MAX_INFLIGHT - 1, CLIENT_FILE_WINDOW)) != 0)
			return r;
		n = len > piece ? piece : len;
		sotto__upload_chunk__init(&uc);
		uc.file_id = proto_bytes(fid, PROTO_FILE_ID_BYTES);
		uc.offset = from;
		uc.data = proto_bytes(data, n);
		frame_init(&f, 0);
		f.body_case = SOTTO__FRAME__BODY_UPLOAD_CHUNK;
		f.upload_chunk = &uc;
		sync = from + n - u->last_sync >= CLIENT_FILE_SYNC;
		r = sync ? client_conn_send(u->c, &f, &id) : client_conn_notify(u->c, &f);
		if (r != 0) {
			cf_err(u->err, u->errlen, "upload interrupted: %s",
			        client_conn_error(u->c));
			return r;
		}
		if (sync) {
			u->ids[(u->head + u->count) % UP_MAX_INFLIGHT] = id;
			u->ends[(u->head + u->count) % UP_MAX_INFLIGHT] = from + n;
			u->count++;
			u->last_sync = from + n;
		}
		u->sent = from + n;
		data += n;
		len -= n;
		from += n;
	}
	return 0;
}

/* UploadBegin; *offset and *complete from UploadReady. */
static int
up_begin(struct client_conn *c, const struct client_file_upload *up, const char *const *recipients,
        size_t n, int timeout_ms, uint64_t *offset, int *complete, char *err, size_t errlen)
{
	Sotto__Frame req, *rep = NULL;
	Sotto__UploadBegin ub;
	int r;

	sotto__upload_begin__init(&ub);
	ub.file_id = proto_bytes(up->file_id, PROTO_FILE_ID_BYTES);
	ub.size = up->cipher_size;
	ub.recipients = (char **)(uintptr_t)recipients;
	ub.n_recipients = n;
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_UPLOAD_BEGIN;
	req.upload_begin = &ub;
	if ((r = client_conn_request(c, &req, &rep, timeout_ms)) != 0) {
		if (r == SOTTO_ERR_PERM)
			cf_remote(err, errlen, "the server refused the upload", rep->error);
		else
			cf_err(err, errlen, "cannot start the upload: %s", client_conn_error(c));
		goto out;
	}
	if (rep->body_case != SOTTO__FRAME__BODY_UPLOAD_READY ||
	        rep->upload_ready->offset > up->cipher_size) {
		cf_err(err, errlen, "unexpected answer to UploadBegin");
		r = SOTTO_ERR_PROTO;
		goto out;
	}
	*offset = rep->upload_ready->offset;
	*complete = rep->upload_ready->complete;
out:
	frame_free(rep);
	return r;
}

static int
up_end(struct client_conn *c, const struct client_file_upload *up, int timeout_ms, char *err,
        size_t errlen)
{
	Sotto__Frame req, *rep = NULL;
	Sotto__UploadEnd ue;
	int r;

	sotto__upload_end__init(&ue);
	ue.file_id = proto_bytes(up->file_id, PROTO_FILE_ID_BYTES);
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_UPLOAD_END;
	req.upload_end = &ue;
	if ((r = client_conn_request(c, &req, &rep, timeout_ms)) != 0) {
		if (r == SOTTO_ERR_PERM)
			cf_remote(err, errlen, "the server did not accept the upload", rep->error);
		else
			cf_err(err, errlen, "cannot finish the upload: %s", client_conn_error(c));
	} else if (rep->body_case != SOTTO__FRAME__BODY_OK) {
		cf_err(err, errlen, "unexpected answer to UploadEnd");
		r = SOTTO_ERR_PROTO;
	}
	frame_free(rep);
	return r;
}

/*
 * Start fn(arg) on a new thread with every signal blocked, so that signals
 * keep going to the thread that handles them.
 */
static int
cf_thread_start(pthread_t *th, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int e;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	e = pthread_create(th, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return e == 0 ? 0 : SOTTO_ERR_NOMEM;
}

/*
 * An upload runs on three threads joined by a queue of chunks: one reads
 * the file and encrypts it (stage UP_READ), the calling thread sends the
 * ciphertext (UP_SEND), and a third hashes the plaintext (UP_HASH) for the
 * FileOffer.  Each slot holds a chunk's plaintext, then the header (chunk 0
 * only) and the ciphertext right behind it; len is the ciphertext's length
 * and len2 the plaintext's.  A failure of the reader is in err and msg once
 * it has finished.
 */
enum { UP_READ, UP_SEND, UP_HASH, UP_STAGES };
#define UP_SLOT_CIPHER (FILECRYPT_CHUNK + FILECRYPT_HEADERBYTES) /* ciphertext at this offset */
#define UP_SLOT        (UP_SLOT_CIPHER + FILECRYPT_CCHUNK)

struct up_pipe {
	struct chunkq *q;
	struct filecrypt *fc;
	const struct client_file_upload *up;
	const char *path;
	int fd;
	int err;
	char msg[512];
	int hash_err;
};

static void *
up_read_run(void *arg)
{
	struct up_pipe *pp = arg;
	struct chunkq_slot *s;
	uint64_t done = 0, k;
	size_t take;
	uint8_t extra;
	int final = 0, r;

	for (k = 0; !final; k++) {
		take = pp->up->size - done > FILECRYPT_CHUNK ? FILECRYPT_CHUNK
		                                             : (size_t)(pp->up->size - done);
		final = done + take == pp->up->size;
		if ((s = chunkq_get(pp->q, UP_READ)) == NULL)
			return NULL; /* stopped */
		if ((r = cf_read_full(pp->fd, s->data, take)) != 0) {
			snprintf(pp->msg, sizeof(pp->msg), "%s: %s", pp->path,
			        r == SOTTO_ERR_SHORT ? "the file shrank while being sent"
			                             : strerror(errno));
			pp->err = r == SOTTO_ERR_SHORT ? SOTTO_ERR_FORMAT : r;
			goto out;
		}
		if ((r = filecrypt_push(pp->fc, s->data + UP_SLOT_CIPHER, s->data, take, final)) !=
		        0) {
			snprintf(pp->msg, sizeof(pp->msg), "cannot encrypt: %s", sotto_strerror(r));
			pp->err = r;
			goto out;
		}
		if (k == 0)
			memcpy(s->data + FILECRYPT_CHUNK, pp->up->header, FILECRYPT_HEADERBYTES);
		s->index = k;
		s->len = take + FILECRYPT_ABYTES;
		s->len2 = take;
		s->final = final;
		done += take;
		chunkq_put(pp->q, UP_READ);
	}
	if (read(pp->fd, &extra, 1) != 0) {
		snprintf(pp->msg, sizeof(pp->msg), "%s: the file grew while being sent", pp->path);
		pp->err = SOTTO_ERR_FORMAT;
	}
out:
	chunkq_finish(pp->q, UP_READ);
	return NULL;
}

static void *
up_hash_run(void *arg)
{
	struct up_pipe *pp = arg;
	struct chunkq_slot *s;

	while ((s = chunkq_get(pp->q, UP_HASH)) != NULL) {
		if ((pp->hash_err = filecrypt_hash(pp->fc, s->data, s->len2)) != 0) {
			chunkq_close(pp->q);
			break;
		}
		chunkq_put(pp->q, UP_HASH);
	}
	return NULL;
}

/*
 * Encrypt the file from the start (the stream is deterministic once the
 * header is fixed), sending only what lies at or after the server's offset.
 */
int
client_file_upload(struct client_conn *c, struct client_file_upload *up, const char *path,
        const char *const *recipients, size_t n, const struct client_file_opts *o, char *err,
        size_t errlen)
{
	struct up_pipe pp;
	struct chunkq_slot *s;
	struct up_ctx *u = NULL;
	uint64_t offset = 0, start, end;
	size_t seglen;
	const uint8_t *seg;
	struct stat st;
	pthread_t reader, hasher;
	int r, complete = 0, nthreads = 0, final = 0;

	memset(&pp, 0, sizeof(pp));
	pp.fd = -1;
	pp.up = up;
	pp.path = path;
	if ((pp.fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(pp.fd, &st) != 0) {
		cf_err(err, errlen, "%s: %s", path, strerror(errno));
		r = errno == ENOENT ? SOTTO_ERR_NOTFOUND : SOTTO_ERR_IO;
		goto out;
	}
	if ((uint64_t)st.st_size != up->size || cf_mtime_ns(&st) != up->mtime_ns) {
		cf_err(err, errlen,
		        "%s changed since its upload began: send it again as a new file", path);
		r = SOTTO_ERR_FORMAT;
		goto out;
	}
	if ((r = up_begin(c, up, recipients, n, cf_timeout(o), &offset, &complete, err, errlen)) !=
	        0)
		goto out;
	if (complete)
		offset = up->cipher_size;
	if ((u = calloc(1, sizeof(*u))) == NULL ||
	        chunkq_new(&pp.q, CLIENT_FILE_QUEUE, UP_SLOT, UP_STAGES) != 0) {
		cf_err(err, errlen, "out of memory");
		r = SOTTO_ERR_NOMEM;
		goto out;
	}
	u->c = c;
	u->o = o;
	u->up = up;
	u->acked = u->sent = u->last_sync = offset;
	u->err = err;
	u->errlen = errlen;
	if ((r = cf_progress(o, cf_plain_before(offset, up->size), up->size)) != 0) {
		cf_err(err, errlen, "upload stopped");
		goto out;
	}
	if ((r = filecrypt_push_resume(&pp.fc, up->header, up->key)) != 0 ||
	        (r = filecrypt_hash_apart(pp.fc)) != 0) {
		cf_err(err, errlen, "cannot set up encryption: %s", sotto_strerror(r));
		goto out;
	}
	if ((r = cf_thread_start(&reader, up_read_run, &pp)) == 0) {
		nthreads = 1;
		r = cf_thread_start(&hasher, up_hash_run, &pp);
	}
	if (r != 0) {
		cf_err(err, errlen, "cannot start the threads that read %s", path);
		goto out;
	}
	nthreads = 2;
	client_conn_cork(c, 1);
	while (!final && (s = chunkq_get(pp.q, UP_SEND)) != NULL) {
		/* Chunk k's bytes in the stream; the header travels with chunk 0. */
		start = filecrypt_chunk_offset(s->index);
		end = start + s->len;
		seg = s->data + UP_SLOT_CIPHER;
		if (s->index == 0) {
			start = 0;
			seg = s->data + FILECRYPT_CHUNK;
		}
		final = s->final;
		r = 0;
		if (end > offset) {
			seglen = (size_t)(end - start);
			if (offset > start) {
				seg += offset - start;
				seglen -= (size_t)(offset - start);
				start = offset;
			}
			r = up_send(u, up->file_id, seg, seglen, start);
		}
		chunkq_put(pp.q, UP_SEND);
		if (r != 0)
			goto out;
	}
	/* The reader's verdict on the file (it shrank, grew or could not be read) comes first. */
	chunkq_finish(pp.q, UP_SEND);
	client_conn_cork(c, 0);
	pthread_join(reader, NULL);
	pthread_join(hasher, NULL);
	nthreads = 0;
	if (pp.err != 0) {
		cf_err(err, errlen, "%s", pp.msg);
		r = pp.err;
		goto out;
	}
	if (!final || pp.hash_err != 0) {
		r = pp.hash_err != 0 ? pp.hash_err : SOTTO_ERR_INVALID;
		cf_err(err, errlen, "cannot hash %s: %s", path, sotto_strerror(r));
		goto out;
	}
	if ((r = up_drain(u, 0, 0)) != 0)
		goto out;
	if (!complete && (r = up_end(c, up, cf_timeout(o), err, errlen)) != 0)
		goto out;
	if ((r = filecrypt_finish(pp.fc, up->sha256)) != 0) {
		cf_err(err, errlen, "cannot finish encryption: %s", sotto_strerror(r));
		goto out;
	}
	up->done = 1;
	(void)cf_progress(o, up->size, up->size);
out:
	client_conn_cork(c, 0);
	if (nthreads > 0) {
		chunkq_close(pp.q);
		pthread_join(reader, NULL);
		if (nthreads > 1)
			pthread_join(hasher, NULL);
	}
	if (pp.fd >= 0)
		close(pp.fd);
	filecrypt_free(pp.fc);
	chunkq_free(pp.q);
	free(u);
	return r;
}

void
client_file_variant(char *out, size_t outlen, const char *name, unsigned n)
{
	const char *dot = strrchr(name, '.');
	size_t stem;

	if (n == 0) {
		snprintf(out, outlen, "%s", name);
		return;
	}
	/* "archive.tar.gz" -> "archive.tar (1).gz"; a name without an extension gets "name (1)". */
	if (dot == NULL || dot == name || strlen(dot) > CLIENT_FILE_EXT_MAX + 1)
		dot = name + strlen(name);
	stem = (size_t)(dot - name);
	snprintf(out, outlen, "%.*s (%u)%s", (int)stem, name, n, dot);
}

/* Length of the UTF-8 sequence at p and its code point; 0 if it is not valid UTF-8. */
static size_t
cf_utf8(const unsigned char *p, uint32_t *cp)
{
	size_t n, i;
	uint32_t v;

	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	}
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
		v = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		v = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		v = p[0] & 0x07;
	} else {
		return 0;
	}
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		v = v << 6 | (p[i] & 0x3f);
	}
	/* Overlong forms, surrogates and values past U+10FFFF. */
	if ((n == 3 && v < 0x800) || (n == 4 && (v < 0x10000 || v > 0x10ffff)) ||
	        (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return n;
}

/* Characters a name must not carry: controls, and the marks that reorder text on screen. */
static int
cf_bad_char(uint32_t cp)
{
	return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) || cp == 0x061c ||
	       cp == 0x200e || cp == 0x200f || (cp >= 0x202a && cp <= 0x202e) ||
	       (cp >= 0x2066 && cp <= 0x2069);
}

/* Cut s (len bytes) to at most max bytes at a character boundary; the new length. */
static size_t
cf_cut(const char *s, size_t len, size_t max)
{
	if (len <= max)
		return len;
	len = max;
	while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
		len--;
	return len;
}

void
client_file_sanitize(char out[CLIENT_FILE_NAME_MAX + 1], const char *name)
{
	const char *base = name != NULL ? name : "", *p, *ext;
	size_t len, n = 0, i, step, extlen = 0, stem;
	char *tmp = NULL;
	uint32_t cp;

	out[0] = '\0';
	for (p = base; *p != '\0'; p++) {
		if (*p == '/' || *p == '\\')
			base = p + 1;
	}
	len = strlen(base);
	if ((tmp = malloc(len + 1)) == NULL)
		goto empty;
	for (i = 0; i < len; i += step) {
		step = cf_utf8((const unsigned char *)base + i, &cp);
		if (step == 0 || cf_bad_char(cp)) {
			step = step == 0 ? 1 : step;
			tmp[n++] = '_';
		} else if (cp == '.' && n > 0 && tmp[n - 1] == '.') {
			continue; /* ".." never survives */
		} else {
			memcpy(tmp + n, base + i, step);
			n += step;
		}
	}
	tmp[n] = '\0';
	/* No hidden files, no names that look blank. */
	for (p = tmp; *p == '.' || *p == ' '; p++)
		;
	len = strlen(p);
	while (len > 0 && p[len - 1] == ' ')
		len--;
	if (len > CLIENT_FILE_NAME_MAX) {
		ext = memchr(p, '.', len) != NULL ? strrchr(p, '.') : NULL;
		if (ext != NULL && (size_t)(ext - p) < len)
			extlen = len - (size_t)(ext - p);
		if (ext == NULL || extlen > CLIENT_FILE_EXT_MAX + 1 || ext == p)
			extlen = 0;
		stem = cf_cut(p, len - extlen, CLIENT_FILE_NAME_MAX - extlen);
		/* The cut must not leave a dot (or blank) against the extension's dot. */
		while (stem > 0 && (p[stem - 1] == '.' || p[stem - 1] == ' '))
			stem--;
		if (stem == 0)
			goto empty;
		memcpy(out, p, stem);
		memcpy(out + stem, p + len - extlen, extlen);
		out[stem + extlen] = '\0';
	} else {
		memcpy(out, p, len);
		out[len] = '\0';
	}
	free(tmp);
	tmp = NULL;
	if (out[0] != '\0')
		return;
empty:
	free(tmp);
	snprintf(out, CLIENT_FILE_NAME_MAX + 1, "file");
}

/*
 * Ciphertext being turned back into the file, on three threads joined by a
 * queue of chunks: the calling thread receives the stream and cuts it into
 * chunks (stage DOWN_RECV), one thread decrypts them (DOWN_OPEN), and one
 * hashes them and appends them to the partial file (DOWN_WRITE).  Each slot
 * holds a chunk's ciphertext (len bytes), its plaintext (len2 bytes) and the
 * state a resume needs after it, saved in two halves: the stream's by the
 * opener, the hash's by the writer (filecrypt_hash_apart).  Once the threads
 * run, the stream half of fc is the opener's, and its hash half, fd and the
 * write-back marks the writer's; the writer publishes what it has written,
 * and the state that goes with it, in snap, which the calling thread copies
 * into the caller's struct client_file_download before each progress report
 * and at the end.
 */
enum { DOWN_RECV, DOWN_OPEN, DOWN_WRITE, DOWN_STAGES };
#define DOWN_SLOT_PLAIN FILECRYPT_CCHUNK                    /* plaintext at this offset */
#define DOWN_SLOT_STATE (DOWN_SLOT_PLAIN + FILECRYPT_CHUNK) /* then the state after it */
#define DOWN_SLOT       (DOWN_SLOT_STATE + FILECRYPT_STATEBYTES)

struct down_ctx {
	struct client_file_download *dl;
	const struct client_file_offer *of;
	const struct client_file_opts *o;
	struct filecrypt *fc;
	int fd;
	uint64_t pos; /* stream bytes received */
	uint64_t req; /* the Download's request id while its answer streams */
	uint64_t cipher_size;
	uint8_t header[FILECRYPT_HEADERBYTES];
	struct chunkq *q;
	struct chunkq_slot *fill; /* the chunk being received */
	uint64_t reported;        /* plaintext bytes last given to the progress callback */
	pthread_t opener, writer;
	int nthreads;
	/* the writer's */
	uint64_t written;
	uint64_t synced_to;  /* write-back started up to here */
	uint64_t dropped_to; /* written back and out of the page cache up to here */
	/* what the writer has published */
	pthread_mutex_t snap_mu;
	uint64_t snap_written;
	uint8_t snap_state[FILECRYPT_STATEBYTES];
	int snap_set;
	/* the first thread to fail, and why */
	int open_err, write_err;
	char open_msg[256];
	char write_msg[4096 + 256];
	char *err;
	size_t errlen;
};

/* Opener: decrypt the chunk in s, and keep the stream's half of the state after it. */
static int
down_open(struct down_ctx *d, struct chunkq_slot *s)
{
	int r, final = 0;

	if (filecrypt_done(d->fc)) {
		snprintf(d->open_msg, sizeof(d->open_msg), "data follows the end of the file");
		return SOTTO_ERR_VERIFY;
	}
	r = filecrypt_pull(d->fc, s->data + DOWN_SLOT_PLAIN, &s->len2, s->data, s->len, &final);
	if (r != 0) {
		snprintf(d->open_msg, sizeof(d->open_msg),
		        "the file failed to decrypt at byte %" PRIu64
		        ": it was damaged or tampered with",
		        filecrypt_bytes(d->fc));
		return SOTTO_ERR_VERIFY;
	}
	if (filecrypt_bytes(d->fc) > d->of->size) {
		snprintf(d->open_msg, sizeof(d->open_msg), "the file is longer than offered");
		return SOTTO_ERR_VERIFY;
	}
	filecrypt_save_stream(d->fc, s->data + DOWN_SLOT_STATE);
	return 0;
}

static void *
down_open_run(void *arg)
{
	struct down_ctx *d = arg;
	struct chunkq_slot *s;

	while ((s = chunkq_get(d->q, DOWN_OPEN)) != NULL) {
		if ((d->open_err = down_open(d, s)) != 0) {
			chunkq_close(d->q);
			break;
		}
		chunkq_put(d->q, DOWN_OPEN);
	}
	chunkq_finish(d->q, DOWN_OPEN);
	return NULL;
}

/* Writer: hash the plaintext in s, append it to the partial file and publish the state after it. */
static int
down_write(struct down_ctx *d, struct chunkq_slot *s)
{
	const uint8_t *p = s->data + DOWN_SLOT_PLAIN;
	size_t left = s->len2;
	off_t at = (off_t)d->written;
	ssize_t n;
	int r;

	if ((r = filecrypt_hash(d->fc, p, left)) != 0 ||
	        (r = filecrypt_save_hash(d->fc, s->data + DOWN_SLOT_STATE)) != 0) {
		snprintf(d->write_msg, sizeof(d->write_msg), "cannot hash the file: %s",
		        sotto_strerror(r));
		return r;
	}
	while (left > 0) {
		if ((n = pwrite(d->fd, p, left, at)) < 0) {
			if (errno == EINTR)
				continue;
			snprintf(d->write_msg, sizeof(d->write_msg), "%s: %s", d->dl->part,
			        strerror(errno));
			return SOTTO_ERR_IO;
		}
		p += n;
		left -= (size_t)n;
		at += n;
	}
	d->written += s->len2;
#ifdef SYNC_FILE_RANGE_WRITE
	/*
	 * Start write-back as the file arrives, so that the fsync at the end is
	 * short, and let go of what was written back a window ago: the page cache
	 * then holds about two windows of the file, not all of it, and a large
	 * download neither pushes out other files nor keeps asking the kernel
	 * for fresh pages (which costs far more than reusing the same ones).
	 */
	if (d->written - d->synced_to >= CLIENT_FILE_WRITEBACK) {
		(void)sync_file_range(d->fd, (off_t)d->synced_to,
		        (off_t)(d->written - d->synced_to), SYNC_FILE_RANGE_WRITE);
		if (d->synced_to > d->dropped_to) {
			(void)sync_file_range(d->fd, (off_t)d->dropped_to,
			        (off_t)(d->synced_to - d->dropped_to),
			        SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
			                SYNC_FILE_RANGE_WAIT_AFTER);
			(void)posix_fadvise(d->fd, (off_t)d->dropped_to,
			        (off_t)(d->synced_to - d->dropped_to), POSIX_FADV_DONTNEED);
			d->dropped_to = d->synced_to;
		}
		d->synced_to = d->written;
	}
#endif
	pthread_mutex_lock(&d->snap_mu);
	d->snap_written = d->written;
	memcpy(d->snap_state, s->data + DOWN_SLOT_STATE, FILECRYPT_STATEBYTES);
	d->snap_set = 1;
	pthread_mutex_unlock(&d->snap_mu);
	return 0;
}

static void *
down_write_run(void *arg)
{
	struct down_ctx *d = arg;
	struct chunkq_slot *s;

	while ((s = chunkq_get(d->q, DOWN_WRITE)) != NULL) {
		if ((d->write_err = down_write(d, s)) != 0) {
			chunkq_close(d->q);
			break;
		}
		chunkq_put(d->q, DOWN_WRITE);
	}
	return NULL;
}

/* Copy what the writer has published into the caller's struct; the plaintext bytes it covers. */
static uint64_t
down_take_snap(struct down_ctx *d)
{
	pthread_mutex_lock(&d->snap_mu);
	if (d->snap_set) {
		d->dl->written = d->snap_written;
		memcpy(d->dl->state, d->snap_state, FILECRYPT_STATEBYTES);
		d->dl->has_state = 1;
		d->snap_set = 0;
	}
	pthread_mutex_unlock(&d->snap_mu);
	return d->dl->written;
}

/* Tell the progress callback what has been written since the last report. */
static int
down_report(struct down_ctx *d)
{
	uint64_t written = down_take_snap(d);

	if (written == d->reported)
		return 0;
	d->reported = written;
	return cf_progress(d->o, written, d->of->size);
}

/* Start the opener and the writer, once the stream's state exists. */
static int
down_threads_start(struct down_ctx *d)
{
	int r;

	d->written = d->synced_to = d->dropped_to = d->dl->written;
	if ((r = filecrypt_hash_apart(d->fc)) != 0) {
		cf_err(d->err, d->errlen, "cannot set up decryption: %s", sotto_strerror(r));
		return r;
	}
	if ((r = cf_thread_start(&d->opener, down_open_run, d)) == 0) {
		d->nthreads = 1;
		r = cf_thread_start(&d->writer, down_write_run, d);
	}
	if (r != 0) {
		cf_err(d->err, d->errlen, "cannot start the threads that write the file");
		return r;
	}
	d->nthreads = 2;
	return 0;
}

/*
 * Let the opener and the writer finish the chunks already received and join
 * them: the first failure among them (err then says why), else 0.
 */
static int
down_threads_stop(struct down_ctx *d)
{
	int r = 0;

	if (d->nthreads == 0)
		return 0;
	chunkq_finish(d->q, DOWN_RECV);
	pthread_join(d->opener, NULL);
	if (d->nthreads > 1)
		pthread_join(d->writer, NULL);
	d->nthreads = 0;
	(void)down_take_snap(d);
	/* A chunk that failed to open came before any the writer could not write. */
	if (d->open_err != 0) {
		cf_err(d->err, d->errlen, "%s", d->open_msg);
		r = d->open_err;
	} else if (d->write_err != 0) {
		cf_err(d->err, d->errlen, "%s", d->write_msg);
		r = d->write_err;
	}
	return r;
}

/* Pass the chunk being received on to the opener. */
static int
down_hand(struct down_ctx *d)
{
	struct chunkq_slot *s = d->fill;

	d->fill = NULL;
	if (s == NULL || s->len == 0)
		return 0;
	chunkq_put(d->q, DOWN_RECV);
	return down_report(d);
}

/* Take a piece of the stream. */
static int
down_feed(struct down_ctx *d, const uint8_t *data, size_t len)
{
	size_t take;
	int r;

	while (len > 0) {
		if (d->pos < FILECRYPT_HEADERBYTES) {
			take = FILECRYPT_HEADERBYTES - (size_t)d->pos;
			take = take < len ? take : len;
			memcpy(d->header + d->pos, data, take);
			if (d->pos + take == FILECRYPT_HEADERBYTES &&
			        (r = filecrypt_pull_new(&d->fc, d->header, d->of->key)) != 0) {
				cf_err(d->err, d->errlen, "cannot set up decryption");
				return r;
			}
		} else {
			if (d->nthreads == 0 && (r = down_threads_start(d)) != 0)
				return r;
			/* No slot: a thread failed and stopped the queue. */
			if (d->fill == NULL && (d->fill = chunkq_get(d->q, DOWN_RECV)) == NULL) {
				if ((r = down_threads_stop(d)) == 0) {
					cf_err(d->err, d->errlen, "the file's writer stopped");
					r = SOTTO_ERR_IO;
				}
				return r;
			}
			take = FILECRYPT_CCHUNK - d->fill->len;
			take = take < len ? take : len;
			memcpy(d->fill->data + d->fill->len, data, take);
			d->fill->len += take;
			if (d->fill->len == FILECRYPT_CCHUNK && (r = down_hand(d)) != 0) {
				d->pos += take;
				return r;
			}
		}
		d->pos += take;
		data += take;
		len -= take;
	}
	return 0;
}

/* Read what is left of a Download's answer, so the connection stays usable. */
static void
down_drain(struct client_conn *c, const struct client_file_opts *o, uint64_t id)
{
	Sotto__Frame *f = NULL;
	int ended = 0;

	while (!ended && client_conn_next_frame(c, &f, cf_timeout(o)) == 0) {
		if (f->id == id) {
			ended = f->body_case != SOTTO__FRAME__BODY_DOWNLOAD_CHUNK;
			frame_free(f);
		} else if (cf_other(c, o, f, NULL, 0) != 0) {
			break;
		}
	}
}

/* Receive the blob from d->pos on; 0 once DownloadEnd has come and the last chunk is handed on. */
static int
down_receive(struct client_conn *c, struct down_ctx *d, int *in_flight)
{
	Sotto__Frame req, *f = NULL;
	Sotto__Download dn;
	uint64_t id;
	int r;

	*in_flight = 0;
	sotto__download__init(&dn);
	dn.file_id = proto_bytes(d->of->file_id, PROTO_FILE_ID_BYTES);
	dn.offset = d->pos;
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_DOWNLOAD;
	req.download = &dn;
	if ((r = client_conn_send(c, &req, &id)) != 0) {
		cf_err(d->err, d->errlen, "cannot ask for the file: %s", client_conn_error(c));
		return r;
	}
	d->req = id;
	*in_flight = 1;
	for (;;) {
		if ((r = client_conn_next_frame(c, &f, cf_timeout(d->o))) != 0) {
			*in_flight = 0;
			cf_err(d->err, d->errlen, "download interrupted: %s",
			        r == SOTTO_ERR_AGAIN ? "the server stopped sending"
			                             : client_conn_error(c));
			return r == SOTTO_ERR_CLOSED ? r : SOTTO_ERR_IO;
		}
		if (f->id != id) {
			if ((r = cf_other(c, d->o, f, d->err, d->errlen)) != 0) {
				*in_flight = 0;
				return r;
			}
			continue;
		}
		switch (f->body_case) {
		case SOTTO__FRAME__BODY_DOWNLOAD_CHUNK: {
			const Sotto__DownloadChunk *dc = f->download_chunk;

			if (dc->offset != d->pos || dc->data.len > d->cipher_size - d->pos ||
			        dc->file_id.len != PROTO_FILE_ID_BYTES ||
			        memcmp(dc->file_id.data, d->of->file_id, PROTO_FILE_ID_BYTES) !=
			                0) {
				cf_err(d->err, d->errlen,
				        "the server sent the file out of order or too long");
				r = SOTTO_ERR_VERIFY;
				break;
			}
			r = down_feed(d, dc->data.data, dc->data.len);
			break;
		}
		case SOTTO__FRAME__BODY_DOWNLOAD_END:
			*in_flight = 0;
			if (f->download_end->size != d->cipher_size || d->pos != d->cipher_size) {
				cf_err(d->err, d->errlen,
				        "the server's copy of the file has the wrong size");
				r = SOTTO_ERR_VERIFY;
			} else {
				r = down_hand(d);
			}
			frame_free(f);
			return r;
		case SOTTO__FRAME__BODY_ERROR:
			*in_flight = 0;
			cf_remote(d->err, d->errlen, "the server refused the download", f->error);
			frame_free(f);
			return SOTTO_ERR_PERM;
		default:
			cf_err(d->err, d->errlen, "unexpected answer to Download");
			r = SOTTO_ERR_PROTO;
			break;
		}
		frame_free(f);
		if (r != 0)
			return r;
	}
}

/*
 * Stream the blob from d->pos on and write it; 0 once DownloadEnd has come
 * and every chunk is written.  A chunk the writer refused is the error to
 * report even if receiving failed too, since it came first in the stream.
 */
static int
down_stream(struct client_conn *c, struct down_ctx *d, int *in_flight)
{
	int r, w;

	r = down_receive(c, d, in_flight);
	if ((w = down_threads_stop(d)) != 0)
		return w;
	if (r == 0)
		r = down_report(d);
	return r;
}

/* Where the file goes: dir and name, and whether the name may be varied. */
static int
down_target(const struct client_file_offer *of, const char *dest, char *dir, size_t dirlen,
        char *name, size_t namelen, int *vary, char *err, size_t errlen)
{
	const char *slash;
	struct stat st;

	if (stat(dest, &st) == 0) {
		if (!S_ISDIR(st.st_mode)) {
			cf_err(err, errlen, "%s already exists: not overwriting it", dest);
			return SOTTO_ERR_EXISTS;
		}
		snprintf(dir, dirlen, "%s", dest);
		client_file_sanitize(name, of->name);
		*vary = 1;
		return 0;
	}
	if (errno != ENOENT) {
		cf_err(err, errlen, "%s: %s", dest, strerror(errno));
		return SOTTO_ERR_IO;
	}
	/* A new path the user chose: its name is taken as given. */
	slash = strrchr(dest, '/');
	if (slash == NULL)
		snprintf(dir, dirlen, ".");
	else if (slash == dest)
		snprintf(dir, dirlen, "/");
	else
		snprintf(dir, dirlen, "%.*s", (int)(slash - dest), dest);
	snprintf(name, namelen, "%s", slash != NULL ? slash + 1 : dest);
	*vary = 0;
	if (name[0] == '\0' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
		cf_err(err, errlen, "%s: not a file name", dest);
		return SOTTO_ERR_INVALID;
	}
	return 0;
}

/* Move the verified partial file to name, or its first free variant, never replacing a file. */
static int
down_place(int dirfd, const char *part, const char *name, int vary, char *chosen, size_t chosenlen)
{
	unsigned n;

	for (n = 0; n <= (vary ? CLIENT_FILE_COPIES : 0); n++) {
		client_file_variant(chosen, chosenlen, name, n);
		if (renameat2(dirfd, part, dirfd, chosen, RENAME_NOREPLACE) == 0)
			return 0;
		if (errno == EINVAL || errno == ENOSYS) {
			/* No RENAME_NOREPLACE on this file system: link() refuses to replace too. */
			if (linkat(dirfd, part, dirfd, chosen, 0) == 0) {
				(void)unlinkat(dirfd, part, 0);
				return 0;
			}
		}
		if (errno != EEXIST)
			return SOTTO_ERR_IO;
	}
	return SOTTO_ERR_EXISTS;
}

int
client_file_download(struct client_conn *c, const struct client_file_offer *of, const char *dest,
        struct client_file_download *dl, const struct client_file_opts *o, char *final,
        size_t finallen, char *err, size_t errlen)
{
	char dir[sizeof(dl->part)], name[CLIENT_FILE_NAME_MAX + 16], part[64];
	char chosen[CLIENT_FILE_NAME_MAX + 16], path[sizeof(dl->part)];
	char hex[2 * PROTO_FILE_ID_BYTES + 1];
	uint8_t hash[FILECRYPT_HASHBYTES];
	struct down_ctx d;
	struct stat st;
	int r, dirfd = -1, vary = 0, in_flight = 0, fresh;

	memset(&d, 0, sizeof(d));
	d.fd = -1;
	d.dl = dl;
	d.of = of;
	d.o = o;
	d.err = err;
	d.errlen = errlen;
	if (final != NULL && finallen > 0)
		final[0] = '\0';
	if ((d.cipher_size = filecrypt_ciphertext_size(of->size)) == 0) {
		cf_err(err, errlen, "the offered size is out of range");
		return SOTTO_ERR_RANGE;
	}
	if ((r = down_target(of, dest, dir, sizeof(dir), name, sizeof(name), &vary, err, errlen)) !=
	        0)
		return r;
	if ((dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		cf_err(err, errlen, "%s: %s", dir, strerror(errno));
		return SOTTO_ERR_IO;
	}
	/* Every way out from here goes through out, which destroys it. */
	pthread_mutex_init(&d.snap_mu, NULL);
	sotto_hex(hex, of->file_id, PROTO_FILE_ID_BYTES);
	snprintf(part, sizeof(part), "%s%s.part", CLIENT_FILE_PART_PFX, hex);
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, part) >= sizeof(path)) {
		cf_err(err, errlen, "%s: path too long", dir);
		r = SOTTO_ERR_RANGE;
		goto out;
	}
	if (chunkq_new(&d.q, CLIENT_FILE_QUEUE, DOWN_SLOT, DOWN_STAGES) != 0) {
		cf_err(err, errlen, "out of memory");
		r = SOTTO_ERR_NOMEM;
		goto out;
	}
	/* Resume only the same partial file, with a state that matches what it holds. */
	fresh = !dl->has_state || strcmp(dl->part, path) != 0;
	if (!fresh) {
		d.fd = openat(dirfd, part, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
		if (d.fd < 0 || fstat(d.fd, &st) != 0 || (uint64_t)st.st_size < dl->written ||
		        filecrypt_restore(&d.fc, dl->state) != 0 ||
		        filecrypt_bytes(d.fc) != dl->written ||
		        ftruncate(d.fd, (off_t)dl->written) != 0) {
			if (d.fd >= 0)
				close(d.fd);
			d.fd = -1;
			filecrypt_free(d.fc);
			d.fc = NULL;
			fresh = 1;
		} else {
			d.pos = filecrypt_chunk_offset(filecrypt_chunks(d.fc));
		}
	}
	if (fresh) {
		memset(dl, 0, sizeof(*dl));
		snprintf(dl->part, sizeof(dl->part), "%s", path);
		d.fd = openat(
		        dirfd, part, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (d.fd < 0 && errno == EEXIST) {
			/* An earlier attempt that left no state behind: start over. */
			(void)unlinkat(dirfd, part, 0);
			d.fd = openat(dirfd, part,
			        O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		}
		if (d.fd < 0) {
			cf_err(err, errlen, "%s: %s", path, strerror(errno));
			r = SOTTO_ERR_IO;
			goto out;
		}
	}
	if ((r = cf_progress(o, dl->written, of->size)) != 0) {
		cf_err(err, errlen, "download stopped");
		goto out;
	}
	d.reported = dl->written;
	if ((d.fc == NULL || !filecrypt_done(d.fc)) && (r = down_stream(c, &d, &in_flight)) != 0) {
		if (r == SOTTO_ERR_AGAIN)
			cf_err(err, errlen, "download stopped");
		goto out;
	}
	if (d.fc == NULL || filecrypt_finish(d.fc, hash) != 0) {
		cf_err(err, errlen, "the file is truncated: it was damaged or tampered with");
		r = SOTTO_ERR_VERIFY;
		goto out;
	}
	if (dl->written != of->size || !sotto_memeq(hash, of->sha256, sizeof(hash))) {
		cf_err(err, errlen,
		        "the file's SHA-256 does not match the offer: it was damaged or "
		        "tampered with");
		r = SOTTO_ERR_VERIFY;
		goto out;
	}
	if (fsync(d.fd) != 0) {
		cf_err(err, errlen, "%s: %s", path, strerror(errno));
		r = SOTTO_ERR_IO;
		goto out;
	}
	if ((r = down_place(dirfd, part, name, vary, chosen, sizeof(chosen))) != 0) {
		if (r == SOTTO_ERR_EXISTS && !vary)
			cf_err(err, errlen, "%s already exists: not overwriting it", dest);
		else if (r == SOTTO_ERR_EXISTS)
			cf_err(err, errlen, "%s/%s and %u variants of it exist: not overwriting",
			        dir, name, CLIENT_FILE_COPIES);
		else
			cf_err(err, errlen, "cannot move the file into %s: %s", dir,
			        strerror(errno));
		/* Verified but homeless: do not leave the plaintext lying about. */
		(void)unlinkat(dirfd, part, 0);
		memset(dl, 0, sizeof(*dl));
		goto out;
	}
	(void)fsync(dirfd);
	if (final != NULL && finallen > 0)
		snprintf(final, finallen, "%s/%s", dir, chosen);
	sotto_wipe(dl, sizeof(*dl));
	r = 0;
out:
	if (r == SOTTO_ERR_VERIFY || r == SOTTO_ERR_PERM) {
		/*
		 * Nothing unverified stays on disk, nor a part the server will not
		 * complete, and the stream is read to its end.
		 */
		if (d.fd >= 0)
			(void)unlinkat(dirfd, part, 0);
		sotto_wipe(dl, sizeof(*dl));
		if (in_flight)
			down_drain(c, o, d.req);
	}
	if (d.fd >= 0)
		close(d.fd);
	if (dirfd >= 0)
		close(dirfd);
	filecrypt_free(d.fc);
	chunkq_free(d.q);
	pthread_mutex_destroy(&d.snap_mu);
	sotto_wipe(d.snap_state, sizeof(d.snap_state));
	return r;
}

int
client_file_done(struct client_conn *c, const uint8_t file_id[PROTO_FILE_ID_BYTES], int accepted,
        char *err, size_t errlen)
{
	Sotto__Frame req, *rep = NULL;
	Sotto__FileDone fd;
	int r;

	sotto__file_done__init(&fd);
	fd.file_id = proto_bytes(file_id, PROTO_FILE_ID_BYTES);
	fd.outcome =
	        accepted ? SOTTO__FILE_OUTCOME__FILE_ACCEPTED : SOTTO__FILE_OUTCOME__FILE_DISCARDED;
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_FILE_DONE;
	req.file_done = &fd;
	if ((r = client_conn_request(c, &req, &rep, 0)) != 0) {
		if (r == SOTTO_ERR_PERM)
			cf_remote(err, errlen, "the server refused", rep->error);
		else
			cf_err(err, errlen, "%s", client_conn_error(c));
	}
	frame_free(rep);
	return r;
}
