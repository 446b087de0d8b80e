/*
 * File transfers end to end (issue 6): a real sottod on loopback, uploads
 * and downloads through src/client-file (which encrypts with crypto/
 * filecrypt), and raw frames where the server's answers themselves are the
 * point.  Round trips at the chunk edges, resume after a dropped connection
 * and after SIGKILL, limits refused before any byte is sent, who may
 * download, deletion when every recipient is done or file_ttl has passed,
 * tampering caught by the recipient, hostile names, and memory that does not
 * grow with the file.
 */
#include "config.h"

#include <sys/stat.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "crypto/util.h"
#include "src/client-file.h"
#include "tests/lib/tcheck.h"

#ifndef Test
#define Test(s, n, ...) void s##_##n(void)
#define TestSuite(...)
#endif

static struct testsrv srv;
static struct tuser alice, bob, carol;
static struct tuser *const all_users[] = {&alice, &bob, &carol, NULL};
static const char *const user_names[] = {"alice", "bob", "carol"};
static char work[300]; /* scratch files for the clients, inside srv.dir */

static void
setup_users(void)
{
	cr_assert_eq(sotto_crypto_init(), 0);
	tcheck_users_new(all_users, user_names, IDENTITY_ED25519);
}

/* Start sottod with extra flags and register the three users. */
static void
start(const char *const *extra)
{
	cr_assert_eq(testsrv_start(&srv, extra), 0, "sottod did not start");
	tcheck_users_register(&srv, all_users);
	snprintf(work, sizeof(work), "%s/work", srv.dir);
	cr_assert_eq(mkdir(work, 0700), 0);
}

static void
teardown(void)
{
	cr_expect(testsrv_healthy(&srv), "sottod logged an error or died; see %s", srv.log);
	testsrv_cleanup(&srv);
	tcheck_users_free(all_users);
}

TestSuite(files, .init = setup_users, .fini = teardown, .timeout = 120);

static struct client_conn *
login(struct tuser *u)
{
	return tcheck_login(&srv, u);
}

/* A file of n bytes under work/ (random, or a pattern with marker at the start). */
static void
make_file(char *path, size_t pathlen, const char *name, size_t n, const char *marker)
{
	uint8_t *data = malloc(n > 0 ? n : 1);
	FILE *fp;

	cr_assert_not_null(data);
	sotto_random(data, n);
	if (marker != NULL && n >= strlen(marker))
		memcpy(data, marker, strlen(marker));
	snprintf(path, pathlen, "%s/%s", work, name);
	cr_assert_not_null(fp = fopen(path, "wb"));
	cr_assert_eq(fwrite(data, 1, n, fp), n);
	cr_assert_eq(fclose(fp), 0);
	free(data);
}

static void
make_dir(char *path, size_t pathlen, const char *name)
{
	snprintf(path, pathlen, "%s/%s", work, name);
	cr_assert_eq(mkdir(path, 0700), 0, "%s", path);
}

/* 1 if the two files hold the same bytes. */
static int
same_file(const char *a, const char *b)
{
	FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
	int ca, cb, same = fa != NULL && fb != NULL;

	while (same) {
		ca = getc(fa);
		cb = getc(fb);
		if (ca != cb)
			same = 0;
		if (ca == EOF || cb == EOF)
			break;
	}
	if (fa != NULL)
		fclose(fa);
	if (fb != NULL)
		fclose(fb);
	return same;
}

/* Entries in a directory, "." and ".." aside. */
static int
count_entries(const char *dir)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	cr_assert_not_null(d, "%s", dir);
	while ((de = readdir(d)) != NULL)
		n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
	closedir(d);
	return n;
}

/* The blob's path in the server's state directory. */
static void
blob_path(char *out, size_t outlen, const uint8_t *id)
{
	char hex[2 * PROTO_FILE_ID_BYTES + 1];

	sotto_hex(hex, id, PROTO_FILE_ID_BYTES);
	snprintf(out, outlen, "%s/files/%s", srv.state, hex);
}

static int
blob_exists(const uint8_t *id)
{
	char path[512];

	blob_path(path, sizeof(path), id);
	return access(path, F_OK) == 0;
}

/* Progress hook: remembers the first report, and can stop or kill the server past a point. */
struct watch {
	uint64_t first;
	int calls;
	uint64_t stop_after; /* 0: never */
	int kill_server;     /* at stop_after, SIGKILL sottod instead of stopping */
	int killed;
};

static int
watch_cb(void *arg, uint64_t done, uint64_t total)
{
	struct watch *w = arg;

	cr_assert_leq(done, total);
	if (w->calls++ == 0)
		w->first = done;
	if (w->stop_after == 0 || done < w->stop_after)
		return 0;
	if (!w->kill_server)
		return 1;
	if (!w->killed) {
		testsrv_signal(&srv, SIGKILL);
		w->killed = 1;
	}
	return 0;
}

static void
upload_ok(struct client_conn *c, struct client_file_upload *up, const char *path,
        const char *const *to, size_t n)
{
	char err[512];

	cr_assert_eq(client_file_upload_prepare(up, path, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(client_file_upload(c, up, path, to, n, NULL, err, sizeof(err)), 0, "%s", err);
	cr_assert(up->done);
}

static void
offer_of(struct client_file_offer *of, const struct client_file_upload *up, const char *name)
{
	memset(of, 0, sizeof(*of));
	memcpy(of->file_id, up->file_id, sizeof(of->file_id));
	memcpy(of->key, up->key, sizeof(of->key));
	memcpy(of->sha256, up->sha256, sizeof(of->sha256));
	of->size = up->size;
	of->name = name;
}

static void
download_ok(struct client_conn *c, const struct client_file_offer *of, const char *dest,
        char *final, size_t finallen)
{
	struct client_file_download dl;
	char err[512];

	memset(&dl, 0, sizeof(dl));
	cr_assert_eq(
	        client_file_download(c, of, dest, &dl, NULL, final, finallen, err, sizeof(err)), 0,
	        "%s", err);
}

static void
round_trip(size_t n)
{
	const char *to[] = {"bob"}, *marker = "MARKER-c0ffee-8f3a1d";
	char src[512], dir[512], got[1024], name[64], err[512];
	struct client_file_upload up;
	struct client_file_offer of;
	struct client_conn *a, *b;

	start(NULL);
	snprintf(name, sizeof(name), "secret-plan-%zu.bin", n);
	make_file(src, sizeof(src), name, n, n >= 64 ? marker : NULL);
	make_dir(dir, sizeof(dir), "downloads");
	a = login(&alice);
	upload_ok(a, &up, src, to, 1);
	cr_assert_eq(up.size, n);
	cr_assert(blob_exists(up.file_id));
	/* The server holds ciphertext only: neither the marker nor the name is in its state. */
	if (n >= 64)
		cr_assert_not(testsrv_state_has(&srv, marker, strlen(marker)));
	cr_assert_not(testsrv_state_has(&srv, name, strlen(name)));
	b = login(&bob);
	offer_of(&of, &up, name);
	download_ok(b, &of, dir, got, sizeof(got));
	cr_assert(same_file(src, got), "%s and %s differ", src, got);
	cr_assert(strncmp(got, dir, strlen(dir)) == 0 && got[strlen(dir)] == '/');
	cr_assert_eq(count_entries(dir), 1, "a partial file was left behind");
	/* Accepting as the only recipient deletes the blob. */
	cr_assert_eq(client_file_done(b, up.file_id, 1, err, sizeof(err)), 0, "%s", err);
	cr_assert_not(blob_exists(up.file_id));
	client_conn_close(a);
	client_conn_close(b);
}

Test(files, round_trip_empty)
{
	round_trip(0);
}

Test(files, round_trip_one_byte)
{
	round_trip(1);
}

Test(files, round_trip_one_chunk)
{
	round_trip(FILECRYPT_CHUNK);
}

Test(files, round_trip_multi_chunk)
{
	round_trip(5 * FILECRYPT_CHUNK + 12345);
}

/* The connection drops mid-upload; a new one resumes where the server's copy ends. */
Test(files, upload_resumes_after_drop)
{
	const char *to[] = {"bob"};
	char src[512], dir[512], got[1024], err[512];
	struct watch w = {0, 0, 1024 * 1024, 0, 0};
	struct client_file_opts o = {watch_cb, NULL, &w, 0};
	struct client_file_upload up;
	struct client_file_offer of;
	struct client_conn *a, *b;

	start(NULL);
	make_file(src, sizeof(src), "big.bin", 6 * 1024 * 1024 + 7, NULL);
	make_dir(dir, sizeof(dir), "dl");
	a = login(&alice);
	cr_assert_eq(client_file_upload_prepare(&up, src, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(client_file_upload(a, &up, src, to, 1, &o, err, sizeof(err)), SOTTO_ERR_AGAIN,
	        "%s", err);
	cr_assert_not(up.done);
	client_conn_abort(a);
	memset(&w, 0, sizeof(w));
	a = login(&alice);
	cr_assert_eq(client_file_upload(a, &up, src, to, 1, &o, err, sizeof(err)), 0, "%s", err);
	cr_assert_geq(w.first, 1024 * 1024, "the upload started over at %llu",
	        (unsigned long long)w.first);
	b = login(&bob);
	offer_of(&of, &up, "big.bin");
	download_ok(b, &of, dir, got, sizeof(got));
	cr_assert(same_file(src, got));
	client_conn_close(a);
	client_conn_close(b);
}

/* The connection drops mid-download; the next attempt continues from the last complete chunk. */
Test(files, download_resumes_after_drop)
{
	const char *to[] = {"bob"};
	char src[512], dir[512], got[1024], err[512];
	struct watch w = {0, 0, 2 * 1024 * 1024, 0, 0};
	struct client_file_opts o = {watch_cb, NULL, &w, 0};
	struct client_file_download dl;
	struct client_file_upload up;
	struct client_file_offer of;
	struct client_conn *a, *b;

	start(NULL);
	make_file(src, sizeof(src), "movie.bin", 5 * 1024 * 1024 + 99, NULL);
	make_dir(dir, sizeof(dir), "dl");
	a = login(&alice);
	upload_ok(a, &up, src, to, 1);
	b = login(&bob);
	offer_of(&of, &up, "movie.bin");
	memset(&dl, 0, sizeof(dl));
	cr_assert_eq(client_file_download(b, &of, dir, &dl, &o, got, sizeof(got), err, sizeof(err)),
	        SOTTO_ERR_AGAIN, "%s", err);
	cr_assert_geq(dl.written, 2 * 1024 * 1024);
	cr_assert_eq(dl.written % FILECRYPT_CHUNK, 0);
	client_conn_abort(b);
	memset(&w, 0, sizeof(w));
	b = login(&bob);
	cr_assert_eq(client_file_download(b, &of, dir, &dl, &o, got, sizeof(got), err, sizeof(err)),
	        0, "%s", err);
	cr_assert_geq(w.first, 2 * 1024 * 1024, "the download started over");
	cr_assert(same_file(src, got));
	cr_assert_eq(count_entries(dir), 1);
	client_conn_close(a);
	client_conn_close(b);
}

/* sottod is killed mid-upload and mid-download; after a restart both resume. */
Test(files, resume_after_sigkill)
{
	const char *to[] = {"bob"};
	char src[512], dir[512], got[1024], err[512];
	struct watch w = {0, 0, 2 * 1024 * 1024, 1, 0};
	struct client_file_opts o = {watch_cb, NULL, &w, 3000};
	struct client_file_download dl;
	struct client_file_upload up;
	struct client_file_offer of;
	struct client_conn *a, *b;
	int r;

	start(NULL);
	/*
	 * Large next to the socket buffers (which loopback autotuning grows to
	 * megabytes), so that what is in flight when sottod dies cannot hold the
	 * rest of the file.
	 */
	make_file(src, sizeof(src), "db.dump", 24 * 1024 * 1024 + 3, NULL);
	make_dir(dir, sizeof(dir), "dl");
	a = login(&alice);
	cr_assert_eq(client_file_upload_prepare(&up, src, err, sizeof(err)), 0, "%s", err);
	r = client_file_upload(a, &up, src, to, 1, &o, err, sizeof(err));
	cr_assert(w.killed);
	cr_assert(r == SOTTO_ERR_CLOSED || r == SOTTO_ERR_IO, "upload went on: %d %s", r, err);
	client_conn_abort(a);
	cr_assert_eq(testsrv_restart(&srv), 0);
	memset(&w, 0, sizeof(w));
	a = login(&alice);
	cr_assert_eq(client_file_upload(a, &up, src, to, 1, &o, err, sizeof(err)), 0, "%s", err);
	cr_assert_gt(w.first, 0, "the upload started over after the restart");
	/* Now the download, killed early, before the socket buffers have grown. */
	memset(&w, 0, sizeof(w));
	w.stop_after = 512 * 1024;
	w.kill_server = 1;
	b = login(&bob);
	offer_of(&of, &up, "db.dump");
	memset(&dl, 0, sizeof(dl));
	r = client_file_download(b, &of, dir, &dl, &o, got, sizeof(got), err, sizeof(err));
	cr_assert(w.killed);
	cr_assert(r == SOTTO_ERR_CLOSED || r == SOTTO_ERR_IO, "download went on: %d %s", r, err);
	client_conn_abort(a);
	client_conn_abort(b);
	cr_assert_eq(testsrv_restart(&srv), 0);
	memset(&w, 0, sizeof(w));
	b = login(&bob);
	cr_assert_eq(client_file_download(b, &of, dir, &dl, &o, got, sizeof(got), err, sizeof(err)),
	        0, "%s", err);
	cr_assert_geq(w.first, 512 * 1024, "the download started over");
	cr_assert(same_file(src, got));
	client_conn_close(b);
}

/* UploadBegin by hand: the answer (Error or UploadReady) in *rep. */
static int
begin_raw(struct client_conn *c, const uint8_t id[16], uint64_t size, const char *const *to,
        size_t n, Sotto__Frame **rep)
{
	Sotto__UploadBegin ub;
	Sotto__Frame req;

	sotto__upload_begin__init(&ub);
	ub.file_id = proto_bytes(id, 16);
	ub.size = size;
	ub.recipients = (char **)(uintptr_t)to;
	ub.n_recipients = n;
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_UPLOAD_BEGIN;
	req.upload_begin = &ub;
	return client_conn_request(c, &req, rep, 0);
}

/* r and *repp from a request that must have been refused with code (and text in its message). */
static void
expect_error(int r, Sotto__Frame **repp, uint32_t code, const char *text)
{
	Sotto__Frame *rep = *repp;

	*repp = NULL;
	cr_assert_eq(r, SOTTO_ERR_PERM, "not refused (%d)", r);
	cr_assert_eq(rep->body_case, SOTTO__FRAME__BODY_ERROR);
	cr_assert_eq(rep->error->code, code, "got %s (%s)", proto_error_name(rep->error->code),
	        rep->error->message);
	if (text != NULL)
		cr_assert(strstr(rep->error->message, text) != NULL, "\"%s\" lacks \"%s\"",
		        rep->error->message, text);
	frame_free(rep);
}

/* max_file_size and user_quota are refused at UploadBegin, before any byte is stored. */
Test(files, limits_refused_before_upload)
{
	const char *const extra[] = {"--max-file-size", "1M", "--user-quota", "3M", NULL};
	const char *to[] = {"bob"};
	char src[512], err[512], files[512];
	struct client_file_upload up;
	struct client_conn *a;
	Sotto__Frame *rep = NULL;
	uint8_t id[16];
	int i;

	start(extra);
	snprintf(files, sizeof(files), "%s/files", srv.state);
	a = login(&alice);
	sotto_random(id, sizeof(id));
	expect_error(begin_raw(a, id, 2 * 1024 * 1024, to, 1, &rep), &rep,
	        SOTTO__ERROR_CODE__ERR_FILE_TOO_LARGE,
	        "this file (2 MiB) is over the server's limit of 1 MiB");
	/* Three files of 900 KiB fit the quota of 3 MiB; a fourth does not. */
	for (i = 0; i < 3; i++) {
		make_file(src, sizeof(src), "part.bin", 900 * 1024, NULL);
		upload_ok(a, &up, src, to, 1);
	}
	cr_assert_eq(count_entries(files), 3);
	sotto_random(id, sizeof(id));
	rep = NULL;
	expect_error(begin_raw(a, id, 900 * 1024, to, 1, &rep), &rep,
	        SOTTO__ERROR_CODE__ERR_QUOTA_EXCEEDED, "exceed your quota of 3 MiB");
	cr_assert_eq(count_entries(files), 3, "a refused upload left a file");
	/* Through the library the same refusal reads as a sentence. */
	make_file(src, sizeof(src), "more.bin", 900 * 1024, NULL);
	cr_assert_eq(client_file_upload_prepare(&up, src, err, sizeof(err)), 0);
	cr_assert_eq(
	        client_file_upload(a, &up, src, to, 1, NULL, err, sizeof(err)), SOTTO_ERR_PERM);
	cr_assert(strstr(err, "quota") != NULL, "%s", err);
	cr_assert_eq(client_conn_remote(a)->code, SOTTO__ERROR_CODE__ERR_QUOTA_EXCEEDED);
	client_conn_close(a);
}

/* Malformed or out-of-turn upload requests get Errors and change nothing. */
Test(files, upload_protocol_errors)
{
	const char *to[] = {"bob"}, *nobody[] = {"nobody"};
	Sotto__UploadChunk uc;
	Sotto__UploadEnd ue;
	Sotto__Frame req, *rep = NULL;
	struct client_conn *a, *c;
	uint8_t id[16], data[100];

	start(NULL);
	a = login(&alice);
	sotto_random(id, sizeof(id));
	memset(data, 0x5a, sizeof(data));
	expect_error(begin_raw(a, id, 150, nobody, 1, &rep), &rep,
	        SOTTO__ERROR_CODE__ERR_NO_SUCH_USER, "nobody");
	rep = NULL;
	expect_error(
	        begin_raw(a, id, 150, to, 0, &rep), &rep, SOTTO__ERROR_CODE__ERR_BAD_REQUEST, NULL);
	rep = NULL;
	cr_assert_eq(begin_raw(a, id, 150, to, 1, &rep), 0, "%s", client_conn_error(a));
	cr_assert_eq(rep->body_case, SOTTO__FRAME__BODY_UPLOAD_READY);
	cr_assert_eq(rep->upload_ready->offset, 0);
	frame_free(rep);
	/* A chunk at the wrong offset, then one running past the declared size. */
	sotto__upload_chunk__init(&uc);
	uc.file_id = proto_bytes(id, 16);
	uc.offset = 10;
	uc.data = proto_bytes(data, 100);
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_UPLOAD_CHUNK;
	req.upload_chunk = &uc;
	rep = NULL;
	expect_error(client_conn_request(a, &req, &rep, 0), &rep,
	        SOTTO__ERROR_CODE__ERR_BAD_REQUEST, "expected 0");
	uc.offset = 0;
	rep = NULL;
	cr_assert_eq(client_conn_request(a, &req, &rep, 0), 0, "%s", client_conn_error(a));
	frame_free(rep);
	uc.offset = 100;
	rep = NULL;
	expect_error(client_conn_request(a, &req, &rep, 0), &rep,
	        SOTTO__ERROR_CODE__ERR_BAD_REQUEST, "past the declared size");
	/* Ending with bytes missing is refused. */
	sotto__upload_end__init(&ue);
	ue.file_id = proto_bytes(id, 16);
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_UPLOAD_END;
	req.upload_end = &ue;
	rep = NULL;
	expect_error(client_conn_request(a, &req, &rep, 0), &rep,
	        SOTTO__ERROR_CODE__ERR_BAD_REQUEST, "only 100 of 150 bytes");
	/* Resuming with another size, or as another user, is refused. */
	rep = NULL;
	expect_error(begin_raw(a, id, 151, to, 1, &rep), &rep, SOTTO__ERROR_CODE__ERR_BAD_REQUEST,
	        "size of 150 bytes");
	c = login(&carol);
	rep = NULL;
	expect_error(begin_raw(c, id, 150, to, 1, &rep), &rep, SOTTO__ERROR_CODE__ERR_BAD_REQUEST,
	        "taken");
	/* Resuming as the uploader reports the bytes held. */
	rep = NULL;
	cr_assert_eq(begin_raw(a, id, 150, to, 1, &rep), 0, "%s", client_conn_error(a));
	cr_assert_eq(rep->upload_ready->offset, 100);
	cr_assert_not(rep->upload_ready->complete);
	frame_free(rep);
	/*
	 * A chunk sent as a notification that fails is reported to the next chunk
	 * sent as a request, and to UploadEnd; the chunks in between are dropped.
	 */
	uc.offset = 120;
	uc.data = proto_bytes(data, 10);
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_UPLOAD_CHUNK;
	req.upload_chunk = &uc;
	cr_assert_eq(client_conn_notify(a, &req), 0);
	uc.offset = 100;
	cr_assert_eq(client_conn_notify(a, &req), 0);
	rep = NULL;
	expect_error(client_conn_request(a, &req, &rep, 0), &rep,
	        SOTTO__ERROR_CODE__ERR_BAD_REQUEST, "chunk at offset 120, expected 100");
	req.body_case = SOTTO__FRAME__BODY_UPLOAD_END;
	req.upload_end = &ue;
	rep = NULL;
	expect_error(client_conn_request(a, &req, &rep, 0), &rep,
	        SOTTO__ERROR_CODE__ERR_BAD_REQUEST, "chunk at offset 120");
	/* UploadBegin starts over from what is stored: nothing was written meanwhile. */
	rep = NULL;
	cr_assert_eq(begin_raw(a, id, 150, to, 1, &rep), 0, "%s", client_conn_error(a));
	cr_assert_eq(rep->upload_ready->offset, 100);
	frame_free(rep);
	client_conn_close(a);
	client_conn_close(c);
}

/* Download by hand: the first frame of the answer. */
static Sotto__Frame *
download_raw(struct client_conn *c, const uint8_t *id, uint64_t offset)
{
	Sotto__Download d;
	Sotto__Frame req, *rep = NULL;

	sotto__download__init(&d);
	d.file_id = proto_bytes(id, 16);
	d.offset = offset;
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_DOWNLOAD;
	req.download = &d;
	/* An Error answer is SOTTO_ERR_PERM with the frame in rep: the caller looks at it. */
	if (client_conn_request(c, &req, &rep, 0) != 0)
		cr_assert_not_null(rep, "%s", client_conn_error(c));
	return rep;
}

static void
expect_no_such_file(struct client_conn *c, const uint8_t *id)
{
	Sotto__Frame *rep = download_raw(c, id, 0);

	cr_assert_eq(rep->body_case, SOTTO__FRAME__BODY_ERROR);
	cr_assert_eq(rep->error->code, SOTTO__ERROR_CODE__ERR_NO_SUCH_FILE, "got %s",
	        proto_error_name(rep->error->code));
	frame_free(rep);
}

Test(files, only_recipients_download)
{
	const char *to[] = {"bob"};
	char src[512], dir[512], got[1024], err[512];
	struct client_file_upload up;
	struct client_file_offer of;
	struct client_conn *a, *b, *c;
	uint8_t unknown[16];
	Sotto__Frame *rep;

	start(NULL);
	make_file(src, sizeof(src), "payslip.pdf", 3000, NULL);
	make_dir(dir, sizeof(dir), "dl");
	a = login(&alice);
	b = login(&bob);
	c = login(&carol);
	upload_ok(a, &up, src, to, 1);
	/* carol is not a recipient: for her the file does not exist, like an unknown id. */
	expect_no_such_file(c, up.file_id);
	sotto_random(unknown, sizeof(unknown));
	expect_no_such_file(b, unknown);
	/* Even with the key, carol cannot fetch the ciphertext. */
	offer_of(&of, &up, "payslip.pdf");
	{
		struct client_file_download dl;

		memset(&dl, 0, sizeof(dl));
		cr_assert_eq(client_file_download(
		                     c, &of, dir, &dl, NULL, got, sizeof(got), err, sizeof(err)),
		        SOTTO_ERR_PERM);
		cr_assert(strstr(err, "no such file") != NULL, "%s", err);
		cr_assert_eq(count_entries(dir), 0);
	}
	/* The uploader may read back its own blob; the first frame is a DownloadChunk. */
	rep = download_raw(a, up.file_id, 0);
	cr_assert_eq(rep->body_case, SOTTO__FRAME__BODY_DOWNLOAD_CHUNK);
	frame_free(rep);
	client_conn_abort(a);
	download_ok(b, &of, dir, got, sizeof(got));
	cr_assert(same_file(src, got));
	/* Once bob is done, the file is gone for him too. */
	cr_assert_eq(client_file_done(b, up.file_id, 1, err, sizeof(err)), 0, "%s", err);
	expect_no_such_file(b, up.file_id);
	client_conn_close(b);
	client_conn_close(c);
}

Test(files, discard_by_every_recipient_deletes)
{
	const char *to[] = {"bob", "carol"};
	char src[512], err[512];
	struct client_file_upload up;
	struct client_conn *a, *b, *c;

	start(NULL);
	make_file(src, sizeof(src), "notes.txt", 70000, NULL);
	a = login(&alice);
	b = login(&bob);
	c = login(&carol);
	upload_ok(a, &up, src, to, 2);
	cr_assert_eq(client_file_done(b, up.file_id, 0, err, sizeof(err)), 0, "%s", err);
	cr_assert(blob_exists(up.file_id), "deleted while carol had not decided");
	/* Twice is fine. */
	cr_assert_eq(client_file_done(b, up.file_id, 0, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(client_file_done(c, up.file_id, 0, err, sizeof(err)), 0, "%s", err);
	cr_assert_not(blob_exists(up.file_id), "the blob outlived its last recipient");
	expect_no_such_file(a, up.file_id);
	cr_assert_eq(client_file_done(c, up.file_id, 0, err, sizeof(err)), SOTTO_ERR_PERM);
	client_conn_close(a);
	client_conn_close(b);
	client_conn_close(c);
}

/* The uploader may withdraw a file (a partial one too), which frees its quota. */
Test(files, uploader_withdraws)
{
	const char *to[] = {"bob"};
	char src[512], err[512];
	struct client_file_upload up;
	struct client_conn *a, *b;

	start(NULL);
	make_file(src, sizeof(src), "oops.txt", 1000, NULL);
	a = login(&alice);
	b = login(&bob);
	upload_ok(a, &up, src, to, 1);
	cr_assert_eq(client_file_done(a, up.file_id, 1, err, sizeof(err)), SOTTO_ERR_PERM);
	cr_assert(blob_exists(up.file_id));
	cr_assert_eq(client_file_done(a, up.file_id, 0, err, sizeof(err)), 0, "%s", err);
	cr_assert_not(blob_exists(up.file_id));
	expect_no_such_file(b, up.file_id);
	client_conn_close(a);
	client_conn_close(b);
}

Test(files, ttl_expiry_deletes)
{
	const char *const extra[] = {"--file-ttl", "1", NULL};
	const char *to[] = {"bob"};
	struct client_file_upload up;
	struct client_conn *a;
	char src[512];
	int64_t deadline;

	start(extra);
	make_file(src, sizeof(src), "brief.txt", 5000, NULL);
	a = login(&alice);
	upload_ok(a, &up, src, to, 1);
	/* Poll for the outcome rather than sleep a fixed time. */
	deadline = tnow_ms() + 15000;
	while ((blob_exists(up.file_id) || !testsrv_log_has(&srv, "older than file_ttl")) &&
	        tnow_ms() < deadline)
		tsleep_ms(100);
	cr_assert_not(blob_exists(up.file_id), "the blob outlived file_ttl");
	cr_assert(testsrv_log_has(&srv, "deleted 1 file older than file_ttl (1 second)"));
	expect_no_such_file(a, up.file_id);
	client_conn_close(a);
}

/* A byte flipped in the blob on the server's disk fails the download and leaves nothing behind. */
Test(files, tampered_blob_detected)
{
	const char *to[] = {"bob"};
	char src[512], dir[512], got[1024], err[512], blob[512];
	struct client_file_download dl;
	struct client_file_upload up;
	struct client_file_offer of;
	struct client_conn *a, *b;
	Sotto__Frame *rep = NULL;
	uint8_t byte;
	int fd;

	start(NULL);
	make_file(src, sizeof(src), "contract.pdf", 300000, NULL);
	make_dir(dir, sizeof(dir), "dl");
	a = login(&alice);
	upload_ok(a, &up, src, to, 1);
	blob_path(blob, sizeof(blob), up.file_id);
	cr_assert_geq(fd = open(blob, O_RDWR), 0, "%s", blob);
	cr_assert_eq(pread(fd, &byte, 1, 200000), 1);
	byte ^= 0x20;
	cr_assert_eq(pwrite(fd, &byte, 1, 200000), 1);
	close(fd);
	b = login(&bob);
	offer_of(&of, &up, "contract.pdf");
	memset(&dl, 0, sizeof(dl));
	cr_assert_eq(
	        client_file_download(b, &of, dir, &dl, NULL, got, sizeof(got), err, sizeof(err)),
	        SOTTO_ERR_VERIFY, "%s", err);
	cr_assert(strstr(err, "tampered") != NULL, "%s", err);
	cr_assert_eq(count_entries(dir), 0, "the partial file was left behind");
	/* The stream was read to its end: the connection still answers. */
	cr_assert_eq(tseen(b, "alice", &rep), 0, "%s", client_conn_error(b));
	cr_assert_eq(rep->body_case, SOTTO__FRAME__BODY_PRESENCE);
	frame_free(rep);
	/* A wrong hash in the offer is caught as well. */
	of.sha256[0] ^= 1;
	memset(&dl, 0, sizeof(dl));
	cr_assert_geq(fd = open(blob, O_RDWR), 0);
	byte ^= 0x20;
	cr_assert_eq(pwrite(fd, &byte, 1, 200000), 1);
	close(fd);
	cr_assert_eq(
	        client_file_download(b, &of, dir, &dl, NULL, got, sizeof(got), err, sizeof(err)),
	        SOTTO_ERR_VERIFY, "%s", err);
	cr_assert(strstr(err, "SHA-256") != NULL, "%s", err);
	cr_assert_eq(count_entries(dir), 0);
	client_conn_close(a);
	client_conn_close(b);
}

/* Hostile names from an offer all land inside the downloads directory, and never overwrite. */
Test(files, hostile_names_stay_inside)
{
	const char *to[] = {"bob"};
	char src[512], dir[512], got[1024], *longname;
	const char *names[] = {
	        "../../etc/passwd", ".bashrc", "a\nb", NULL, "report.pdf", "report.pdf"};
	const char *want[] = {"passwd", "bashrc", "a_b", NULL, "report.pdf", "report (1).pdf"};
	struct client_file_upload up;
	struct client_file_offer of;
	struct client_conn *a, *b;
	size_t i;

	cr_assert_not_null(longname = malloc(10001));
	memset(longname, 'n', 10000);
	longname[10000] = '\0';
	names[3] = longname;
	start(NULL);
	make_file(src, sizeof(src), "x.bin", 777, NULL);
	make_dir(dir, sizeof(dir), "downloads");
	a = login(&alice);
	b = login(&bob);
	upload_ok(a, &up, src, to, 1);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const char *base;

		offer_of(&of, &up, names[i]);
		download_ok(b, &of, dir, got, sizeof(got));
		cr_assert(strncmp(got, dir, strlen(dir)) == 0 && got[strlen(dir)] == '/',
		        "%s is outside %s", got, dir);
		base = got + strlen(dir) + 1;
		cr_assert_null(strchr(base, '/'));
		if (want[i] != NULL)
			cr_assert_str_eq(base, want[i]);
		else
			cr_assert_eq(strlen(base), CLIENT_FILE_NAME_MAX);
		cr_assert(same_file(src, got));
	}
	cr_assert_eq(count_entries(dir), 6);
	/* An explicit path that exists is refused, not overwritten. */
	{
		struct client_file_download dl;
		char err[512], dest[1100];

		snprintf(dest, sizeof(dest), "%s/passwd", dir);
		memset(&dl, 0, sizeof(dl));
		cr_assert_eq(client_file_download(
		                     b, &of, dest, &dl, NULL, got, sizeof(got), err, sizeof(err)),
		        SOTTO_ERR_EXISTS);
		cr_assert(strstr(err, "not overwriting") != NULL, "%s", err);
	}
	free(longname);
	client_conn_close(a);
	client_conn_close(b);
}

/* sottod's peak RSS, from /proc. */
static long
sottod_hwm_kib(void)
{
	char path[64], line[256];
	long kib = -1;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)proc_pid(srv.proc));
	cr_assert_not_null(fp = fopen(path, "r"), "%s", path);
	while (fgets(line, sizeof(line), fp) != NULL) {
		if (strncmp(line, "VmHWM:", 6) == 0)
			kib = strtol(line + 6, NULL, 10);
	}
	fclose(fp);
	cr_assert_gt(kib, 0);
	return kib;
}

/*
 * A 48 MiB file through the server raises its peak RSS by far less than the
 * file's size (bench_files checks 256 MiB against the 64 MiB bound).
 */
Test(files, memory_does_not_grow_with_size)
{
	const char *to[] = {"bob"};
	char src[512], dir[512], got[1024];
	struct client_file_upload up;
	struct client_file_offer of;
	struct client_conn *a, *b;
	long before, after;

#if defined(__SANITIZE_ADDRESS__)
	/* AddressSanitizer's quarantine and shadow memory make RSS say nothing here. */
	cr_skip("peak RSS is not meaningful under AddressSanitizer");
#endif
	start(NULL);
	make_file(src, sizeof(src), "large.bin", 48 * 1024 * 1024, NULL);
	make_dir(dir, sizeof(dir), "dl");
	a = login(&alice);
	b = login(&bob);
	before = sottod_hwm_kib();
	upload_ok(a, &up, src, to, 1);
	offer_of(&of, &up, "large.bin");
	download_ok(b, &of, dir, got, sizeof(got));
	after = sottod_hwm_kib();
	cr_assert(same_file(src, got));
	cr_assert_lt(after - before, 16 * 1024, "sottod grew by %ld KiB for a 48 MiB file",
	        after - before);
	cr_assert_lt(after, 64 * 1024, "sottod peaked at %ld KiB", after);
	client_conn_close(a);
	client_conn_close(b);
}
