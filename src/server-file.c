/*
 * Files (issue 6): UploadBegin, UploadChunk, UploadEnd, Download and
 * FileDone, the blob directory and the file_ttl sweep.
 *
 * A blob is the file <state_dir>/files/<hex id> (mode 0600, made with
 * O_EXCL) holding the ciphertext as uploaded; its metadata (uploader, size,
 * completeness, recipients) is in the store.  The server never reads a blob's
 * contents for itself.
 *
 * Memory does not grow with file size.  An upload is written to disk chunk
 * by chunk as frames arrive, with write-back started every few megabytes so
 * that the one fsync at UploadEnd is short.  A download is paced by the
 * connection: server_file_pump() reads the next pieces only while the
 * connection's output is below its high-water mark, and server.c calls it
 * again from the write callback as the output drains, so a download holds at
 * most output_high_water bytes however large the file and however slow the
 * reader.
 *
 * Each connection's open transfers live in a struct file_conn found by the
 * connection's serial; server_file_conn_gone() closes them.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/util.h"
#include "src/log.h"
#include "src/server.h"

#define FILE_DIR           "files"
#define FILE_MAX_UPLOADS   4 /* open on one connection at a time */
#define FILE_MAX_DOWNLOADS 4
#define FILE_PIECE         65536             /* DownloadChunk.data at most */
#define FILE_WRITEBACK     (8 * 1024 * 1024) /* start write-back every this many bytes */
#define FILE_SWEEP_MAX_S   60                /* sweep at least this often */
#define FILE_SWEEP_BATCH   256

struct file_up {
	uint8_t id[PROTO_FILE_ID_BYTES];
	int fd;
	uint64_t size;      /* declared */
	uint64_t written;   /* bytes in the file */
	uint64_t synced_to; /* write-back started up to here */
	uint32_t fail_code; /* a chunk sent as a notification failed: this ErrorCode ... */
	char fail_msg[160]; /* ... and message answer the next chunk with an id, or UploadEnd */
};

struct file_down {
	uint64_t req; /* the Download's request id: every frame of the answer carries it */
	uint8_t id[PROTO_FILE_ID_BYTES];
	int fd;
	uint64_t offset; /* next byte to send */
	uint64_t size;
};

struct file_conn {
	uint64_t serial;
	struct file_up up[FILE_MAX_UPLOADS];
	size_t n_up;
	struct file_down down[FILE_MAX_DOWNLOADS];
	size_t n_down;
	size_t next_down; /* round-robin among downloads */
};

struct server_files {
	struct server *srv;
	char dir[PATH_MAX];
	int dirfd;
	struct hmap *conns; /* serial -> struct file_conn */
	struct event *sweep_ev;
	uint8_t piece[FILE_PIECE];
};

/* "<hex id>", the blob's name in the files directory. */
static void
file_name(char name[2 * PROTO_FILE_ID_BYTES + 1], const uint8_t *id)
{
	sotto_hex(name, id, PROTO_FILE_ID_BYTES);
}

/* A short form of the id for logs. */
static const char *
file_short(const uint8_t *id)
{
	static char s[2 * PROTO_FILE_ID_BYTES + 1];

	file_name(s, id);
	s[12] = '\0';
	return s;
}

static int
file_id_ok(const ProtobufCBinaryData *b)
{
	return b->len == PROTO_FILE_ID_BYTES && b->data != NULL;
}

static struct file_conn *
file_conn_get(struct server *srv, const struct conn *c, int create)
{
	struct server_files *sf = srv->files;
	struct file_conn *fc;

	if ((fc = hmap_get(sf->conns, &c->serial, sizeof(c->serial))) != NULL || !create)
		return fc;
	if ((fc = calloc(1, sizeof(*fc))) == NULL)
		return NULL;
	fc->serial = c->serial;
	if (hmap_put(sf->conns, &fc->serial, sizeof(fc->serial), fc, NULL) != 0) {
		free(fc);
		return NULL;
	}
	return fc;
}

static void
file_conn_drop_if_idle(struct server *srv, struct file_conn *fc)
{
	if (fc->n_up == 0 && fc->n_down == 0) {
		hmap_del(srv->files->conns, &fc->serial, sizeof(fc->serial));
		free(fc);
	}
}

static struct file_up *
file_up_find(struct file_conn *fc, const uint8_t *id)
{
	size_t i;

	for (i = 0; fc != NULL && i < fc->n_up; i++) {
		if (memcmp(fc->up[i].id, id, PROTO_FILE_ID_BYTES) == 0)
			return &fc->up[i];
	}
	return NULL;
}

static void
file_up_close(struct file_conn *fc, struct file_up *u)
{
	size_t i = (size_t)(u - fc->up);

	if (u->fd >= 0)
		close(u->fd);
	fc->up[i] = fc->up[--fc->n_up];
}

static void
file_down_close(struct file_conn *fc, size_t i)
{
	if (fc->down[i].fd >= 0)
		close(fc->down[i].fd);
	fc->down[i] = fc->down[--fc->n_down];
}

/* Remove a blob's file and its record (joining the open batch). */
static int
file_delete(struct server *srv, const uint8_t *id, const char *why)
{
	char name[2 * PROTO_FILE_ID_BYTES + 1];
	int r;

	if ((r = server_batch(srv)) != 0)
		return r;
	if ((r = store_file_delete(srv->store, id)) != 0) {
		log_warn("file %s: cannot delete its record: %s", file_short(id),
		        store_last_error(srv->store));
		return r;
	}
	file_name(name, id);
	if (unlinkat(srv->files->dirfd, name, 0) != 0 && errno != ENOENT)
		log_warn("file %s: cannot remove %s/%s: %s", file_short(id), srv->files->dir, name,
		        strerror(errno));
	log_debug("file %s: deleted (%s)", file_short(id), why);
	return 0;
}

/* A sentence giving a byte count in the unit a person would use. */
static void
file_bytes_text(char *out, size_t outlen, uint64_t n)
{
	if (n >= (UINT64_C(1) << 30) && n % (UINT64_C(1) << 30) == 0)
		snprintf(out, outlen, "%" PRIu64 " GiB", n >> 30);
	else if (n >= (UINT64_C(1) << 20) && n % (UINT64_C(1) << 20) == 0)
		snprintf(out, outlen, "%" PRIu64 " MiB", n >> 20);
	else
		snprintf(out, outlen, "%" PRIu64 " bytes", n);
}

static int
file_send_ready(struct conn *c, uint64_t id, const uint8_t *fid, uint64_t offset, int complete)
{
	Sotto__UploadReady ur;
	Sotto__Frame f;

	sotto__upload_ready__init(&ur);
	ur.file_id = proto_bytes(fid, PROTO_FILE_ID_BYTES);
	ur.offset = offset;
	ur.complete = complete != 0;
	frame_init(&f, id);
	f.body_case = SOTTO__FRAME__BODY_UPLOAD_READY;
	f.upload_ready = &ur;
	return server_send(c, &f);
}

/* Check UploadBegin's limits and recipients for a new upload; 0 or an error reply was sent. */
static int
file_begin_check(struct conn *c, uint64_t id, const Sotto__UploadBegin *ub, int *refused)
{
	struct server *srv = c->srv;
	const struct config *cfg = srv->cfg;
	char msg[256], a[48], b[48], q[48];
	struct srv_user *u;
	uint64_t used = 0;
	size_t i;
	int r;

	*refused = 1;
	for (i = 0; i < ub->n_recipients; i++) {
		if (ub->recipients[i] == NULL || !proto_username_valid(ub->recipients[i])) {
			snprintf(msg, sizeof(msg), "recipient %zu is not a valid username", i + 1);
			return server_send_error(
			        c, id, SOTTO__ERROR_CODE__ERR_BAD_USERNAME, msg, 0);
		}
		if ((u = server_user(srv, ub->recipients[i])) == NULL || u->deleted) {
			snprintf(msg, sizeof(msg), "no such user: %s", ub->recipients[i]);
			return server_send_error(
			        c, id, SOTTO__ERROR_CODE__ERR_NO_SUCH_USER, msg, 0);
		}
	}
	if ((r = store_file_usage(srv->store, c->user->name, &used)) != 0) {
		log_warn("%s: cannot total stored files: %s", c->user->name,
		        store_last_error(srv->store));
		return r;
	}
	if (ub->size > cfg->user_quota || used > cfg->user_quota - ub->size) {
		file_bytes_text(a, sizeof(a), ub->size);
		file_bytes_text(b, sizeof(b), used);
		file_bytes_text(q, sizeof(q), cfg->user_quota);
		snprintf(msg, sizeof(msg),
		        "this file (%s) and your files already on the server (%s) exceed your "
		        "quota of %s",
		        a, b, q);
		return server_send_error(c, id, SOTTO__ERROR_CODE__ERR_QUOTA_EXCEEDED, msg, 0);
	}
	*refused = 0;
	return 0;
}

/* Open (or create) the blob file for an upload; -1 with errno on failure. */
static int
file_open_for_upload(struct server_files *sf, const uint8_t *fid, int fresh)
{
	char name[2 * PROTO_FILE_ID_BYTES + 1];
	int fd;

	file_name(name, fid);
	if (!fresh)
		return openat(sf->dirfd, name, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	fd = openat(sf->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST) {
		/* Left by a crash before its record was committed: nobody owns it. */
		if (unlinkat(sf->dirfd, name, 0) != 0)
			return -1;
		fd = openat(sf->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		        0600);
	}
	return fd;
}

static int
file_upload_begin(struct conn *c, uint64_t id, const Sotto__Frame *f)
{
	struct server *srv = c->srv;
	const Sotto__UploadBegin *ub = f->upload_begin;
	char msg[256], a[48], b[48];
	struct store_file sf, nf;
	struct file_conn *fc = NULL;
	struct file_up *u;
	struct stat stt;
	int r, fd = -1, fresh = 0, refused;

	if (!file_id_ok(&ub->file_id))
		return server_send_error(
		        c, id, SOTTO__ERROR_CODE__ERR_BAD_REQUEST, "file_id must be 16 bytes", 0);
	if (ub->group_id.len != 0)
		return server_send_error(c, id, SOTTO__ERROR_CODE__ERR_BAD_REQUEST,
		        "files for groups are not supported yet", 0);
	if (ub->n_recipients == 0 || ub->n_recipients > PROTO_MAX_RECIPIENTS)
		return server_send_error(c, id, SOTTO__ERROR_CODE__ERR_BAD_REQUEST,
		        "a file needs 1 to 1024 recipients", 0);
	if (ub->size > srv->cfg->max_file_size) {
		file_bytes_text(a, sizeof(a), ub->size);
		file_bytes_text(b, sizeof(b), srv->cfg->max_file_size);
		snprintf(msg, sizeof(msg), "this file (%s) is over the server's limit of %s", a, b);
		return server_send_error(c, id, SOTTO__ERROR_CODE__ERR_FILE_TOO_LARGE, msg, 0);
	}
	fc = file_conn_get(srv, c, 1);
	if (fc == NULL)
		return SOTTO_ERR_NOMEM;
	if ((u = file_up_find(fc, ub->file_id.data)) != NULL)
		file_up_close(fc, u); /* begun again on this connection: start over from the disk */
	if (fc->n_up >= FILE_MAX_UPLOADS) {
		r = server_send_error(c, id, SOTTO__ERROR_CODE__ERR_BAD_REQUEST,
		        "too many uploads open on this connection", 0);
		goto out;
	}
	r = store_file_get(srv->store, ub->file_id.data, &sf);
	if (r == SOTTO_ERR_NOTFOUND) {
		if ((r = file_begin_check(c, id, ub, &refused)) != 0 || refused)
			goto out;
		fresh = 1;
	} else if (r != 0) {
		log_warn("file %s: %s", file_short(ub->file_id.data), store_last_error(srv->store));
		goto out;
	} else if (strcmp(sf.uploader, c->user->name) != 0) {
		r = server_send_error(c, id, SOTTO__ERROR_CODE__ERR_BAD_REQUEST,
		        "that file id is taken: choose another", 0);
		goto out;
	} else if (sf.size != ub->size) {
		snprintf(msg, sizeof(msg),
		        "the upload being resumed has a size of %" PRIu64 " bytes, not %" PRIu64,
		        sf.size, ub->size);
		r = server_send_error(c, id, SOTTO__ERROR_CODE__ERR_BAD_REQUEST, msg, 0);
		goto out;
	} else if (sf.complete) {
		r = file_send_ready(c, id, ub->file_id.data, sf.size, 1);
		goto out;
	}
	if ((fd = file_open_for_upload(srv->files, ub->file_id.data, fresh)) < 0 ||
	        fstat(fd, &stt) != 0) {
		log_error("file %s: cannot open it in %s: %s", file_short(ub->file_id.data),
		        srv->files->dir, strerror(errno));
		r = server_send_error(c, id, SOTTO__ERROR_CODE__ERR_INTERNAL,
		        "the server cannot store files right now", 0);
		goto out;
	}
	if ((uint64_t)stt.st_size > ub->size && ftruncate(fd, (off_t)ub->size) != 0) {
		r = SOTTO_ERR_IO;
		goto out;
	}
#ifdef FALLOC_FL_KEEP_SIZE
	/*
	 * Reserve the blocks now, past the end (the size still says what was
	 * written, which is where a resume starts): writing into them costs the
	 * file system about a quarter less than allocating as it goes.  Best
	 * effort: a full disk still shows when a chunk cannot be written.
	 */
	if ((uint64_t)stt.st_size < ub->size)
		(void)fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)ub->size);
#endif
	if (fresh) {
		memset(&nf, 0, sizeof(nf));
		memcpy(nf.id, ub->file_id.data, PROTO_FILE_ID_BYTES);
		snprintf(nf.uploader, sizeof(nf.uploader), "%s", c->user->name);
		nf.size = ub->size;
		nf.created = server_now();
		if ((r = server_batch(srv)) != 0)
			goto out;
		r = store_file_create(
		        srv->store, &nf, (const char *const *)ub->recipients, ub->n_recipients);
		if (r == SOTTO_ERR_NOTFOUND || r == SOTTO_ERR_EXISTS) {
			r = server_send_error(c, id,
			        r == SOTTO_ERR_EXISTS ? SOTTO__ERROR_CODE__ERR_BAD_REQUEST
			                              : SOTTO__ERROR_CODE__ERR_NO_SUCH_USER,
			        store_last_error(srv->store), 0);
			goto out;
		}
		if (r != 0) {
			log_warn("file %s: cannot record it: %s", file_short(ub->file_id.data),
			        store_last_error(srv->store));
			goto out;
		}
		log_debug("%s: upload of file %s (%" PRIu64 " bytes) for %zu recipient%s",
		        c->user->name, file_short(ub->file_id.data), ub->size, ub->n_recipients,
		        ub->n_recipients == 1 ? "" : "s");
	}
	u = &fc->up[fc->n_up++];
	memset(u, 0, sizeof(*u));
	memcpy(u->id, ub->file_id.data, PROTO_FILE_ID_BYTES);
	u->fd = fd;
	u->size = ub->size;
	u->written = (uint64_t)stt.st_size > ub->size ? ub->size : (uint64_t)stt.st_size;
	fd = -1;
	r = file_send_ready(c, id, ub->file_id.data, u->written, 0);
out:
	if (fd >= 0) {
		close(fd);
		if (fresh) {
			char name[2 * PROTO_FILE_ID_BYTES + 1];

			file_name(name, ub->file_id.data);
			(void)unlinkat(srv->files->dirfd, name, 0);
		}
	}
	if (fc != NULL)
		file_conn_drop_if_idle(srv, fc);
	return r;
}

/*
 * A chunk failed: answer it if it is a request; if it is a notification,
 * remember the first failure for the next chunk with an id or UploadEnd.
 */
static int
file_chunk_fail(struct conn *c, uint64_t id, struct file_up *u, uint32_t code, const char *msg)
{
	if (id != 0)
		return server_send_error(c, id, code, msg, 0);
	if (u != NULL && u->fail_code == 0) {
		u->fail_code = code;
		snprintf(u->fail_msg, sizeof(u->fail_msg), "%s", msg);
	}
	return 0;
}

static int
file_upload_chunk(struct conn *c, uint64_t id, const Sotto__Frame *f)
{
	const Sotto__UploadChunk *uc = f->upload_chunk;
	struct file_conn *fc = file_conn_get(c->srv, c, 0);
	const uint8_t *p = uc->data.data;
	size_t left = uc->data.len;
	struct file_up *u;
	char msg[160];
	ssize_t n;
	off_t at;

	if (!file_id_ok(&uc->file_id))
		return file_chunk_fail(c, id, NULL, SOTTO__ERROR_CODE__ERR_BAD_REQUEST,
		        "file_id must be 16 bytes");
	if ((u = file_up_find(fc, uc->file_id.data)) == NULL)
		return file_chunk_fail(c, id, NULL, SOTTO__ERROR_CODE__ERR_BAD_REQUEST,
		        "no upload of this file is open on this connection: send UploadBegin");
	/* After a failure nothing more is written until UploadBegin starts over. */
	if (u->fail_code != 0)
		return id != 0 ? server_send_error(c, id, u->fail_code, u->fail_msg, 0) : 0;
	if (uc->data.len > PROTO_FILE_CHUNK_MAX)
		return file_chunk_fail(c, id, u, SOTTO__ERROR_CODE__ERR_BAD_REQUEST,
		        "a chunk holds at most 66560 bytes");
	if (uc->offset != u->written) {
		snprintf(msg, sizeof(msg), "chunk at offset %" PRIu64 ", expected %" PRIu64,
		        uc->offset, u->written);
		return file_chunk_fail(c, id, u, SOTTO__ERROR_CODE__ERR_BAD_REQUEST, msg);
	}
	if (uc->data.len > u->size - u->written) {
		snprintf(msg, sizeof(msg),
		        "the chunk runs past the declared size of %" PRIu64 " bytes", u->size);
		return file_chunk_fail(c, id, u, SOTTO__ERROR_CODE__ERR_BAD_REQUEST, msg);
	}
	at = (off_t)u->written;
	while (left > 0) {
		if ((n = pwrite(u->fd, p, left, at)) < 0) {
			if (errno == EINTR)
				continue;
			log_error("file %s: cannot write: %s", file_short(u->id), strerror(errno));
			/* Nothing is acknowledged past what is on disk: a resume starts there. */
			return file_chunk_fail(c, id, u, SOTTO__ERROR_CODE__ERR_INTERNAL,
			        errno == ENOSPC ? "the server's disk is full"
			                        : "the server cannot write the file");
		}
		p += n;
		left -= (size_t)n;
		at += n;
		u->written += (uint64_t)n;
	}
#ifdef SYNC_FILE_RANGE_WRITE
	/* Start write-back now and then, so that UploadEnd's fsync has little left to do. */
	if (u->written - u->synced_to >= FILE_WRITEBACK) {
		(void)sync_file_range(u->fd, (off_t)u->synced_to,
		        (off_t)(u->written - u->synced_to), SYNC_FILE_RANGE_WRITE);
		u->synced_to = u->written;
	}
#endif
	return id != 0 ? server_send_ok(c, id) : 0;
}

static int
file_upload_end(struct conn *c, uint64_t id, const Sotto__Frame *f)
{
	struct server *srv = c->srv;
	const Sotto__UploadEnd *ue = f->upload_end;
	struct file_conn *fc = file_conn_get(srv, c, 0);
	struct commit_wait *w;
	struct store_file sf;
	struct file_up *u;
	char msg[160];
	int r;

	if (!file_id_ok(&ue->file_id))
		return server_send_error(
		        c, id, SOTTO__ERROR_CODE__ERR_BAD_REQUEST, "file_id must be 16 bytes", 0);
	if ((u = file_up_find(fc, ue->file_id.data)) == NULL) {
		/* Ending an upload again (its Ok was lost) is fine once it is complete. */
		if (store_file_get(srv->store, ue->file_id.data, &sf) == 0 &&
		        strcmp(sf.uploader, c->user->name) == 0 && sf.complete)
			return server_send_ok(c, id);
		return server_send_error(c, id, SOTTO__ERROR_CODE__ERR_BAD_REQUEST,
		        "no upload of this file is open on this connection: send UploadBegin", 0);
	}
	if (u->fail_code != 0)
		return server_send_error(c, id, u->fail_code, u->fail_msg, 0);
	if (u->written != u->size) {
		snprintf(msg, sizeof(msg), "only %" PRIu64 " of %" PRIu64 " bytes were sent",
		        u->written, u->size);
		return server_send_error(c, id, SOTTO__ERROR_CODE__ERR_BAD_REQUEST, msg, 0);
	}
	/* The bytes first, then the directory entry, then the record that says complete. */
	if (fdatasync(u->fd) != 0 || fsync(srv->files->dirfd) != 0) {
		log_error(
		        "file %s: cannot flush it to disk: %s", file_short(u->id), strerror(errno));
		return server_send_error(c, id, SOTTO__ERROR_CODE__ERR_INTERNAL,
		        "the server cannot write the file", 0);
	}
	if ((r = server_batch(srv)) != 0)
		return r;
	r = store_file_set_complete(srv->store, u->id);
	if (r == SOTTO_ERR_NOTFOUND) {
		/* Withdrawn or expired while it was being sent. */
		file_up_close(fc, u);
		file_conn_drop_if_idle(srv, fc);
		return server_send_error(c, id, SOTTO__ERROR_CODE__ERR_NO_SUCH_FILE,
		        "the file was deleted during the upload", 0);
	}
	if (r != 0) {
		log_warn("file %s: cannot record it complete: %s", file_short(u->id),
		        store_last_error(srv->store));
		return r;
	}
	log_debug("%s: file %s complete (%" PRIu64 " bytes)", c->user->name, file_short(u->id),
	        u->size);
	file_up_close(fc, u);
	file_conn_drop_if_idle(srv, fc);
	/* Ok once the record is committed: then the blob survives anything. */
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return SOTTO_ERR_NOMEM;
	w->conn_serial = c->serial;
	w->id = id;
	TAILQ_INSERT_TAIL(&srv->commit_waits, w, entry);
	return 0;
}

/* May name download this blob?  The uploader and recipients who are not done may. */
static int
file_may_read(struct server *srv, const struct store_file *sf, const char *name, int *ok)
{
	enum store_file_role role = STORE_FILE_NONE;
	int r;

	*ok = 0;
	if (strcmp(sf->uploader, name) == 0) {
		*ok = 1;
		return 0;
	}
	if ((r = store_file_role(srv->store, sf->id, name, &role)) != 0)
		return r;
	*ok = role == STORE_FILE_PENDING;
	return 0;
}

static int
file_download(struct conn *c, uint64_t id, const Sotto__Frame *f)
{
	struct server *srv = c->srv;
	const Sotto__Download *d = f->download;
	char name[2 * PROTO_FILE_ID_BYTES + 1], msg[160];
	struct file_conn *fc;
	struct file_down *dn;
	struct store_file sf;
	struct stat stt;
	int r, fd = -1, ok = 0;

	if (!file_id_ok(&d->file_id))
		return server_send_error(
		        c, id, SOTTO__ERROR_CODE__ERR_BAD_REQUEST, "file_id must be 16 bytes", 0);
	r = store_file_get(srv->store, d->file_id.data, &sf);
	if (r == 0)
		r = file_may_read(srv, &sf, c->user->name, &ok);
	if (r != 0 && r != SOTTO_ERR_NOTFOUND)
		return r;
	if (r == SOTTO_ERR_NOTFOUND || !ok || !sf.complete)
		return server_send_error(c, id, SOTTO__ERROR_CODE__ERR_NO_SUCH_FILE,
		        r == 0 && ok ? "the upload is not complete yet" : NULL, 0);
	if (d->offset > sf.size) {
		snprintf(msg, sizeof(msg), "offset %" PRIu64 " is past the end (%" PRIu64 " bytes)",
		        d->offset, sf.size);
		return server_send_error(c, id, SOTTO__ERROR_CODE__ERR_BAD_REQUEST, msg, 0);
	}
	if ((fc = file_conn_get(srv, c, 1)) == NULL)
		return SOTTO_ERR_NOMEM;
	if (fc->n_down >= FILE_MAX_DOWNLOADS) {
		r = server_send_error(c, id, SOTTO__ERROR_CODE__ERR_BAD_REQUEST,
		        "too many downloads open on this connection", 0);
		goto out;
	}
	file_name(name, sf.id);
	if ((fd = openat(srv->files->dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
	        fstat(fd, &stt) != 0 || (uint64_t)stt.st_size != sf.size) {
		log_error("file %s: its data in %s is %s", file_short(sf.id), srv->files->dir,
		        fd < 0 ? strerror(errno) : "the wrong size");
		r = server_send_error(c, id, SOTTO__ERROR_CODE__ERR_NO_SUCH_FILE,
		        "the file's data is missing on the server", 0);
		goto out;
	}
#ifdef POSIX_FADV_SEQUENTIAL
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
	dn = &fc->down[fc->n_down++];
	memset(dn, 0, sizeof(*dn));
	dn->req = id;
	memcpy(dn->id, sf.id, PROTO_FILE_ID_BYTES);
	dn->fd = fd;
	dn->offset = d->offset;
	dn->size = sf.size;
	fd = -1;
	log_debug("%s: download of file %s from %" PRIu64, c->user->name, file_short(sf.id),
	        d->offset);
	/* The pump may finish the download and free fc: do not touch it afterwards. */
	server_file_pump(c);
	return 0;
out:
	if (fd >= 0)
		close(fd);
	file_conn_drop_if_idle(srv, fc);
	return r;
}

static int
file_done(struct conn *c, uint64_t id, const Sotto__Frame *f)
{
	struct server *srv = c->srv;
	const Sotto__FileDone *fd = f->file_done;
	enum store_file_role role = STORE_FILE_NONE;
	struct store_file sf;
	uint32_t remaining = 0;
	int r;

	if (!file_id_ok(&fd->file_id))
		return server_send_error(
		        c, id, SOTTO__ERROR_CODE__ERR_BAD_REQUEST, "file_id must be 16 bytes", 0);
	if (fd->outcome != SOTTO__FILE_OUTCOME__FILE_ACCEPTED &&
	        fd->outcome != SOTTO__FILE_OUTCOME__FILE_DISCARDED)
		return server_send_error(c, id, SOTTO__ERROR_CODE__ERR_BAD_REQUEST,
		        "outcome must be FILE_ACCEPTED or FILE_DISCARDED", 0);
	if ((r = store_file_get(srv->store, fd->file_id.data, &sf)) == SOTTO_ERR_NOTFOUND)
		return server_send_error(c, id, SOTTO__ERROR_CODE__ERR_NO_SUCH_FILE, NULL, 0);
	if (r != 0 || (r = store_file_role(srv->store, sf.id, c->user->name, &role)) != 0)
		return r;
	if ((r = server_batch(srv)) != 0)
		return r;
	if (role != STORE_FILE_NONE) {
		if ((r = store_file_done(srv->store, sf.id, c->user->name, &remaining)) != 0)
			return r;
		log_debug("%s: file %s %s; %u recipient%s to go", c->user->name, file_short(sf.id),
		        fd->outcome == SOTTO__FILE_OUTCOME__FILE_ACCEPTED ? "accepted"
		                                                          : "discarded",
		        remaining, remaining == 1 ? "" : "s");
		if (remaining == 0 && (r = file_delete(srv, sf.id, "every recipient is done")) != 0)
			return r;
		return server_send_ok(c, id);
	}
	if (strcmp(sf.uploader, c->user->name) != 0)
		return server_send_error(c, id, SOTTO__ERROR_CODE__ERR_NO_SUCH_FILE, NULL, 0);
	if (fd->outcome != SOTTO__FILE_OUTCOME__FILE_DISCARDED)
		return server_send_error(c, id, SOTTO__ERROR_CODE__ERR_BAD_REQUEST,
		        "only a recipient can accept a file; its sender may only withdraw it", 0);
	if ((r = file_delete(srv, sf.id, "withdrawn by its sender")) != 0)
		return r;
	return server_send_ok(c, id);
}

/* Send the next piece of download dn; 1 once it has ended (DownloadEnd or Error sent). */
static int
file_down_step(struct server *srv, struct conn *c, struct file_down *dn)
{
	Sotto__DownloadChunk dc;
	Sotto__DownloadEnd de;
	Sotto__Frame f;
	size_t want, piece = FILE_PIECE;
	ssize_t n;

	/* A piece and its framing must fit the client's frame cap. */
	if (srv->cfg->max_frame < piece + 256)
		piece = srv->cfg->max_frame - 256;
	if (dn->offset >= dn->size) {
		sotto__download_end__init(&de);
		de.file_id = proto_bytes(dn->id, PROTO_FILE_ID_BYTES);
		de.size = dn->size;
		frame_init(&f, dn->req);
		f.body_case = SOTTO__FRAME__BODY_DOWNLOAD_END;
		f.download_end = &de;
		server_send(c, &f);
		log_debug("%s: file %s sent", c->user != NULL ? c->user->name : c->peer,
		        file_short(dn->id));
		return 1;
	}
	want = dn->size - dn->offset > piece ? piece : (size_t)(dn->size - dn->offset);
	do {
		n = pread(dn->fd, srv->files->piece, want, (off_t)dn->offset);
	} while (n < 0 && errno == EINTR);
	if (n <= 0) {
		log_error("file %s: cannot read it: %s", file_short(dn->id),
		        n < 0 ? strerror(errno) : "it is shorter than recorded");
		server_send_error(c, dn->req, SOTTO__ERROR_CODE__ERR_INTERNAL,
		        "the server cannot read the file", 0);
		return 1;
	}
	sotto__download_chunk__init(&dc);
	dc.file_id = proto_bytes(dn->id, PROTO_FILE_ID_BYTES);
	dc.offset = dn->offset;
	dc.data = proto_bytes(srv->files->piece, (size_t)n);
	frame_init(&f, dn->req);
	f.body_case = SOTTO__FRAME__BODY_DOWNLOAD_CHUNK;
	f.download_chunk = &dc;
	if (server_send(c, &f) != 0)
		return 1;
	dn->offset += (uint64_t)n;
	return 0;
}

/*
 * Keep c's output filled with its downloads' next pieces, up to the
 * high-water mark and never far past it, round-robin across downloads.
 */
void
server_file_pump(struct conn *c)
{
	struct server *srv = c->srv;
	size_t hw = srv->cfg->output_high_water, out, i;
	struct file_conn *fc;

	if (srv->files == NULL || c->state != CONN_READY ||
	        (fc = file_conn_get(srv, c, 0)) == NULL || fc->n_down == 0)
		return;
	/* A download under way is activity, however quiet the client is. */
	c->last_activity_ms = server_mono() * 1000;
	while (fc->n_down > 0 && c->state == CONN_READY) {
		out = server_conn_outlen(c);
		if (out >= hw || (out > hw / 2 && out + FILE_PIECE + 256 > hw))
			break;
		i = fc->next_down++ % fc->n_down;
		if (file_down_step(srv, c, &fc->down[i]))
			file_down_close(fc, i);
	}
	file_conn_drop_if_idle(srv, fc);
}

void
server_file_conn_gone(struct conn *c)
{
	struct server *srv = c->srv;
	struct file_conn *fc;

	if (srv->files == NULL || (fc = file_conn_get(srv, c, 0)) == NULL)
		return;
	/* Partial uploads stay on disk as they are, to be resumed. */
	while (fc->n_up > 0)
		file_up_close(fc, &fc->up[0]);
	while (fc->n_down > 0)
		file_down_close(fc, 0);
	file_conn_drop_if_idle(srv, fc);
}

struct file_sweep {
	uint8_t (*ids)[PROTO_FILE_ID_BYTES];
	size_t n;
};

static int
file_sweep_one(void *arg, const struct store_file *f)
{
	struct file_sweep *s = arg;

	memcpy(s->ids[s->n++], f->id, PROTO_FILE_ID_BYTES);
	return 0;
}

/* How often to sweep: often enough that a short file_ttl (tests) is honoured promptly. */
static int64_t
file_sweep_interval_ms(const struct config *cfg)
{
	int64_t ms = (int64_t)cfg->file_ttl * 1000 / 4;

	if (ms < 250)
		ms = 250;
	if (ms > FILE_SWEEP_MAX_S * 1000)
		ms = FILE_SWEEP_MAX_S * 1000;
	return ms;
}

static void
file_sweep_arm(struct server_files *sf, int64_t ms)
{
	struct timeval tv;

	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
	event_add(sf->sweep_ev, &tv);
}

/* Delete blobs older than file_ttl, a batch at a time. */
static void
file_sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server_files *sf = arg;
	struct server *srv = sf->srv;
	uint8_t ids[FILE_SWEEP_BATCH][PROTO_FILE_ID_BYTES];
	struct file_sweep s = {ids, 0};
	int64_t before = server_now() - (int64_t)srv->cfg->file_ttl;
	size_t i;

	if (store_file_list_expired(srv->store, before, FILE_SWEEP_BATCH, file_sweep_one, &s) != 0)
		log_warn("cannot list expired files: %s", store_last_error(srv->store));
	for (i = 0; i < s.n; i++) {
		if (file_delete(srv, ids[i], "file_ttl passed") != 0)
			break;
	}
	if (s.n > 0)
		log_info("deleted %zu file%s older than file_ttl (%u second%s)", s.n,
		        s.n == 1 ? "" : "s", srv->cfg->file_ttl,
		        srv->cfg->file_ttl == 1 ? "" : "s");
	/* A full batch may have left more: come back at once. */
	file_sweep_arm(sf, s.n == FILE_SWEEP_BATCH ? 0 : file_sweep_interval_ms(srv->cfg));
}

/* Remove blob files the store does not know (a crash between the file and its record). */
static void
file_scan_orphans(struct server_files *sf)
{
	struct server *srv = sf->srv;
	struct store_file rec;
	uint8_t *id = NULL;
	struct dirent *de;
	size_t idlen;
	int dfd;
	DIR *d;

	if ((dfd = dup(sf->dirfd)) < 0 || (d = fdopendir(dfd)) == NULL) {
		if (dfd >= 0)
			close(dfd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || strlen(de->d_name) != 2 * PROTO_FILE_ID_BYTES ||
		        sotto_unhex(&id, &idlen, de->d_name) != 0)
			continue;
		if (idlen == PROTO_FILE_ID_BYTES &&
		        store_file_get(srv->store, id, &rec) == SOTTO_ERR_NOTFOUND) {
			log_info("file %s: removing data left without a record", file_short(id));
			(void)unlinkat(sf->dirfd, de->d_name, 0);
		}
		free(id);
		id = NULL;
	}
	closedir(d);
}

int
server_file_init(struct server *srv)
{
	struct server_files *sf;
	int n;

	if ((sf = calloc(1, sizeof(*sf))) == NULL)
		return SOTTO_ERR_NOMEM;
	sf->srv = srv;
	sf->dirfd = -1;
	n = snprintf(sf->dir, sizeof(sf->dir), "%s/%s", srv->cfg->state_dir, FILE_DIR);
	if (n < 0 || (size_t)n >= sizeof(sf->dir)) {
		log_error("%s: path too long", srv->cfg->state_dir);
		free(sf);
		return SOTTO_ERR_RANGE;
	}
	if ((mkdir(sf->dir, 0700) != 0 && errno != EEXIST) ||
	        (sf->dirfd = open(sf->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		log_error("%s: %s", sf->dir, strerror(errno));
		free(sf);
		return SOTTO_ERR_IO;
	}
	if (hmap_new(&sf->conns) != 0 ||
	        (sf->sweep_ev = evtimer_new(srv->base, file_sweep_cb, sf)) == NULL) {
		hmap_free(sf->conns);
		close(sf->dirfd);
		free(sf);
		return SOTTO_ERR_NOMEM;
	}
	srv->files = sf;
	file_scan_orphans(sf);
	/* The first sweep soon after start: blobs may have expired while sottod was down. */
	file_sweep_arm(sf, 1000);
	return 0;
}

static int
file_free_conn(const void *key, size_t keylen, void *value, void *arg)
{
	struct file_conn *fc = value;

	while (fc->n_up > 0)
		file_up_close(fc, &fc->up[0]);
	while (fc->n_down > 0)
		file_down_close(fc, 0);
	free(fc);
	return 0;
}

void
server_file_free(struct server *srv)
{
	struct server_files *sf = srv->files;

	if (sf == NULL)
		return;
	hmap_foreach(sf->conns, file_free_conn, NULL);
	hmap_free(sf->conns);
	if (sf->sweep_ev != NULL)
		event_free(sf->sweep_ev);
	if (sf->dirfd >= 0)
		close(sf->dirfd);
	free(sf);
	srv->files = NULL;
}

const struct server_handler server_file_handlers[] = {
        {SOTTO__FRAME__BODY_UPLOAD_BEGIN, 0, file_upload_begin},
        /*
         * Chunks are bounded by the upload's size, not by the request rate, and
         * most travel as notifications (no Ok each).
         */
        {SOTTO__FRAME__BODY_UPLOAD_CHUNK, HANDLER_NOTIFY | HANDLER_NOLIMIT, file_upload_chunk},
        {SOTTO__FRAME__BODY_UPLOAD_END, 0, file_upload_end},
        {SOTTO__FRAME__BODY_DOWNLOAD, 0, file_download},
        {SOTTO__FRAME__BODY_FILE_DONE, 0, file_done},
        {0, 0, NULL},
};
