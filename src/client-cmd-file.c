/*
 * sotto send-file and sotto files (list, accept, discard): end-to-end
 * encrypted file transfer on top of client-file.c (the streams) and
 * client-msg.c (the FileOffer over the 1:1 session).
 *
 * State kept in client.db, sealed: an upload under way, found again by the
 * file's path, size and modification time and the recipient, so that running
 * send-file again resumes it (same file id and key) where the server's copy
 * ends; and each offer received, with the partial download's state, so that
 * files accept resumes at the last complete chunk.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crypto/util.h"
#include "src/client-cmd.h"
#include "src/client-file.h"
#include "src/client-gops.h"
#include "src/client-msg.h"

#define FILE_NAME_IN_MAX 16384             /* bytes of a name we send or keep */
#define FILE_SHOW_MAX    80                /* bytes of a name shown on a line */
#define FILE_SAVE_EVERY  (4 * 1024 * 1024) /* save a download's state this often */
#define FILE_JSON_EVERY  (1024 * 1024)     /* a progress event this often */
#define FILE_DRAW_MS     100               /* redraw the progress bar this often */
#define FILE_PUSHES_MAX  1024              /* pushes set aside during a transfer */
#define FILE_DOWNLOADS   "downloads"       /* under -H DIR */

/* ---- showing names, sizes and progress ------------------------------------------- */

/* "512 B", "2.4 MiB". */
static void
fmt_size(char *out, size_t outlen, uint64_t n)
{
	static const char *const unit[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
	double v = (double)n;
	size_t u = 0;

	if (n < 1024) {
		snprintf(out, outlen, "%" PRIu64 " B", n);
		return;
	}
	v /= 1024;
	while (v >= 1024 && u + 1 < sizeof(unit) / sizeof(unit[0])) {
		v /= 1024;
		u++;
	}
	snprintf(out, outlen, "%.1f %s", v, unit[u]);
}

/*
 * A name from a peer, for a terminal: every control character (newlines
 * too) shown as '?', and at most FILE_SHOW_MAX bytes, cut at a character
 * boundary with "..." after.
 */
static void
name_print(FILE *fp, const char *name)
{
	char buf[FILE_SHOW_MAX + 4];
	size_t n = strlen(name), i;

	if (n > FILE_SHOW_MAX) {
		n = FILE_SHOW_MAX;
		while (n > 0 && ((unsigned char)name[n] & 0xc0) == 0x80)
			n--;
	}
	for (i = 0; i < n; i++)
		buf[i] = name[i] == '\n' || name[i] == '\t' ? '?' : name[i];
	text_print(fp, buf, n);
	if (n < strlen(name))
		fputs("...", fp);
}

void
file_offer_print(const struct sotto_ctx *ctx, const char *peer, uint32_t id, const char *name,
        uint64_t size, const char *group, int slash)
{
	char sz[32];

	if (ctx->json) {
		printf("{\"event\":\"file_offer\",\"from\":\"%s\",\"id\":%" PRIu32 ",\"name\":",
		        peer, id);
		json_str(stdout, name, strlen(name));
		printf(",\"size\":%" PRIu64, size);
		if (group != NULL) {
			printf(",\"group\":");
			json_str(stdout, group, strlen(group));
		}
		printf("}\n");
		return;
	}
	fmt_size(sz, sizeof(sz), size);
	printf("%s offers ", peer);
	name_print(stdout, name);
	printf(" (%s)", sz);
	if (group != NULL) {
		printf(" in group ");
		text_print(stdout, group, strlen(group));
	}
	if (slash)
		printf(" \xe2\x80\x94 /accept %" PRIu32 " [PATH] | /discard %" PRIu32 "\n", id, id);
	else
		printf(" \xe2\x80\x94 sotto files accept %" PRIu32
		       " [PATH] | sotto files discard %" PRIu32 "\n",
		        id, id);
}

struct progress {
	const struct sotto_ctx *ctx;
	const char *what; /* "upload" or "download" */
	const char *name;
	int tty;        /* draw a bar on stderr */
	uint64_t done;  /* the latest figure */
	uint64_t first; /* where this run started (resumed bytes are not counted in the rate) */
	uint64_t shown; /* the last JSON event's figure */
	int64_t start_ms, drawn_ms;
	int drawn;
	uint64_t stop_after; /* hidden test option: stop once this many bytes are done; 0: never */
	/* downloads: save the state now and then, so that a killed accept resumes */
	void (*save)(void *arg);
	void *save_arg;
	uint64_t saved;
	/* pushes that came during the transfer, handed back to the connection after it */
	Sotto__Frame *pushes[FILE_PUSHES_MAX];
	size_t npushes;
};

static void
progress_init(struct progress *p, const struct sotto_ctx *ctx, const char *what, const char *name)
{
	memset(p, 0, sizeof(*p));
	p->ctx = ctx;
	p->what = what;
	p->name = name;
	p->tty = !ctx->json && isatty(STDERR_FILENO);
	p->start_ms = msg_now_ms();
	p->first = UINT64_MAX;
}

static void
progress_draw(struct progress *p, uint64_t done, uint64_t total)
{
	char a[32], b[32], rate[32], left[32];
	int64_t ms = msg_now_ms() - p->start_ms;
	double bps = 0, pct = total > 0 ? 100.0 * (double)done / (double)total : 100.0;
	uint64_t secs;

	if (ms > 0 && done > p->first)
		bps = (double)(done - p->first) * 1000.0 / (double)ms;
	fmt_size(a, sizeof(a), done);
	fmt_size(b, sizeof(b), total);
	if (bps > 0) {
		fmt_size(rate, sizeof(rate), (uint64_t)bps);
		secs = (uint64_t)((double)(total - done) / bps);
		snprintf(
		        left, sizeof(left), "%" PRIu64 ":%02" PRIu64 " left", secs / 60, secs % 60);
	} else {
		snprintf(rate, sizeof(rate), "-");
		snprintf(left, sizeof(left), "--:-- left");
	}
	fputs("\r\033[K", stderr);
	name_print(stderr, p->name);
	fprintf(stderr, " %5.1f%% %s of %s, %s/s, %s", pct, a, b, rate, left);
	fflush(stderr);
	p->drawn = 1;
}

/* client_file_progress_fn */
static int
progress_cb(void *arg, uint64_t done, uint64_t total)
{
	struct progress *p = arg;
	int64_t now = msg_now_ms();

	if (p->first == UINT64_MAX)
		p->first = done;
	p->done = done;
	if (p->tty && (now - p->drawn_ms >= FILE_DRAW_MS || done == total)) {
		progress_draw(p, done, total);
		p->drawn_ms = now;
	} else if (p->ctx->json && (done == total || done == 0 ||
	                                   done - p->shown >= FILE_JSON_EVERY || done < p->shown)) {
		printf("{\"event\":\"progress\",\"file\":");
		json_str(stdout, p->name, strlen(p->name));
		printf(",\"direction\":\"%s\",\"done\":%" PRIu64 ",\"total\":%" PRIu64 "}\n",
		        p->what, done, total);
		fflush(stdout);
		p->shown = done;
	}
	if (p->save != NULL && done - p->saved >= FILE_SAVE_EVERY && done > p->saved) {
		p->save(p->save_arg);
		p->saved = done;
	}
	return p->stop_after > 0 && done >= p->stop_after && done < total;
}

/* client_file_frame_fn: keep what the server pushes for after the transfer. */
static void
progress_frame(void *arg, Sotto__Frame *f)
{
	struct progress *p = arg;

	if (p->npushes < FILE_PUSHES_MAX)
		p->pushes[p->npushes++] = f;
	else
		frame_free(f); /* not acknowledged: the server sends it again at the next login */
}

/* End the bar's line, and give the pushes set aside back to the connection. */
static void
progress_end(struct progress *p, struct client_conn *c)
{
	size_t i;

	if (p->drawn) {
		fputc('\n', stderr);
		p->drawn = 0;
	}
	for (i = 0; i < p->npushes; i++)
		if (c == NULL || client_conn_requeue(c, p->pushes[i]) != 0)
			frame_free(p->pushes[i]);
	p->npushes = 0;
}

static void
progress_opts(struct client_file_opts *o, struct progress *p)
{
	memset(o, 0, sizeof(*o));
	o->progress = progress_cb;
	o->on_frame = progress_frame;
	o->arg = p;
}

/* A byte count option (hidden, for tests). */
static int
parse_u64(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-')
		return -1;
	*out = (uint64_t)v;
	return 0;
}

/* The server's reason for a refused transfer, as a sentence's end. */
static const char *
remote_reason(struct sotto_ctx *ctx)
{
	const struct client_remote_error *re = client_conn_remote(ctx->conn);

	if (re == NULL)
		return client_conn_error(ctx->conn);
	return re->message[0] != '\0' ? re->message : proto_error_string(re->code);
}

/* ---- send-file ----------------------------------------------------------------------- */

/* What names an upload in client.db: the file as it is now, and the recipient. */
static int
upload_name(char **out, const char *path, const struct stat *st, const char *peer)
{
	char *real = realpath(path, NULL);
	int n;

	*out = NULL;
	if (real == NULL)
		return -1;
	n = asprintf(out, "%s\n%" PRIu64 "\n%" PRId64 ".%09ld\n%s", real, (uint64_t)st->st_size,
	        (int64_t)st->st_mtim.tv_sec, (long)st->st_mtim.tv_nsec, peer);
	free(real);
	if (n < 0) {
		*out = NULL;
		return -1;
	}
	return 0;
}

static int
upload_save(struct sotto_ctx *ctx, const char *key, const struct client_file_upload *up)
{
	Sottoc__FileUploadRecord rec;
	uint8_t *buf;
	size_t len;
	int r;

	sottoc__file_upload_record__init(&rec);
	rec.file_id = proto_bytes(up->file_id, sizeof(up->file_id));
	rec.key = proto_bytes(up->key, sizeof(up->key));
	rec.header = proto_bytes(up->header, sizeof(up->header));
	rec.size = up->size;
	rec.cipher_size = up->cipher_size;
	rec.mtime_ns = up->mtime_ns;
	if (up->done)
		rec.sha256 = proto_bytes(up->sha256, sizeof(up->sha256));
	rec.done = up->done != 0;
	len = sottoc__file_upload_record__get_packed_size(&rec);
	if ((buf = malloc(len)) == NULL)
		return ctx_fail(SOTTO_EXIT_INTERNAL, "out of memory");
	sottoc__file_upload_record__pack(&rec, buf);
	r = client_store_upload_put(ctx->store, key, buf, len, (int64_t)time(NULL));
	sotto_wipe(buf, len);
	free(buf);
	if (r != 0)
		return ctx_fail(SOTTO_EXIT_INTERNAL, "cannot save the upload's state: %s",
		        client_store_last_error(ctx->store));
	return 0;
}

/* The saved upload of this file to this peer, if any and if it still fits: 1 if found. */
static int
upload_load(struct sotto_ctx *ctx, const char *key, const struct stat *st,
        struct client_file_upload *up)
{
	Sottoc__FileUploadRecord *rec = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	int found = 0;

	if (client_store_upload_get(ctx->store, key, &buf, &len) != 0)
		return 0;
	rec = sottoc__file_upload_record__unpack(NULL, len, buf);
	if (rec != NULL && rec->file_id.len == sizeof(up->file_id) &&
	        rec->key.len == sizeof(up->key) && rec->header.len == sizeof(up->header) &&
	        rec->size == (uint64_t)st->st_size && (!rec->done || rec->sha256.len == 32)) {
		memset(up, 0, sizeof(*up));
		memcpy(up->file_id, rec->file_id.data, sizeof(up->file_id));
		memcpy(up->key, rec->key.data, sizeof(up->key));
		memcpy(up->header, rec->header.data, sizeof(up->header));
		up->size = rec->size;
		up->cipher_size = rec->cipher_size;
		up->mtime_ns = rec->mtime_ns;
		if (rec->done)
			memcpy(up->sha256, rec->sha256.data, sizeof(up->sha256));
		up->done = rec->done;
		found = 1;
	}
	if (rec != NULL) {
		if (rec->key.data != NULL)
			sotto_wipe(rec->key.data, rec->key.len);
		sottoc__file_upload_record__free_unpacked(rec, NULL);
	}
	client_store_free_secret(buf, len);
	return found;
}

/* The exit status and sentence for a failed upload (r from client_file_upload). */
static int
upload_fail(struct sotto_ctx *ctx, const char *key, const char *name, int r,
        const struct progress *p, uint64_t size, const char *err)
{
	const struct client_remote_error *re = client_conn_remote(ctx->conn);
	char a[32], b[32];

	if (r == SOTTO_ERR_PERM && re != NULL) {
		/* Refused before any byte was sent: nothing to resume. */
		if (client_store_upload_delete(ctx->store, key) != 0)
			fprintf(stderr, "sotto: %s\n", client_store_last_error(ctx->store));
		switch (re->code) {
		case SOTTO__ERROR_CODE__ERR_FILE_TOO_LARGE:
			return ctx_fail(SOTTO_EXIT_USAGE,
			        "%s is too large for the server: %s; nothing was sent", name,
			        remote_reason(ctx));
		case SOTTO__ERROR_CODE__ERR_QUOTA_EXCEEDED:
			return ctx_fail(SOTTO_EXIT_USAGE,
			        "%s does not fit in your storage on the server: %s; nothing was "
			        "sent "
			        "(it frees up as recipients take or discard your files)",
			        name, remote_reason(ctx));
		case SOTTO__ERROR_CODE__ERR_NO_SUCH_USER:
			return ctx_fail(
			        SOTTO_EXIT_USAGE, "cannot send %s: %s", name, remote_reason(ctx));
		default:
			return ctx_fail(SOTTO_EXIT_NET, "the server refused %s: %s", name,
			        remote_reason(ctx));
		}
	}
	if (r == SOTTO_ERR_FORMAT) {
		if (client_store_upload_delete(ctx->store, key) != 0)
			fprintf(stderr, "sotto: %s\n", client_store_last_error(ctx->store));
		return ctx_fail(
		        SOTTO_EXIT_USAGE, "%s changed while it was being sent: %s", name, err);
	}
	fmt_size(a, sizeof(a), p->done);
	fmt_size(b, sizeof(b), size);
	return ctx_fail(SOTTO_EXIT_NET,
	        "the upload of %s stopped at %s of %s: %s; run the same command again to resume it",
	        name, a, b, err);
}

/* The FileOffer for an uploaded file (group_id: the group it goes to, or NULL). */
static void
offer_fill(Sottoc__Content *content, Sottoc__FileOffer *fo, const struct client_file_upload *up,
        const char *name, const uint8_t *group_id)
{
	sottoc__content__init(content);
	sottoc__file_offer__init(fo);
	fo->file_id = proto_bytes(up->file_id, sizeof(up->file_id));
	fo->name = proto_str(name);
	fo->size = up->size;
	fo->sha256 = proto_bytes(up->sha256, sizeof(up->sha256));
	fo->key = proto_bytes(up->key, sizeof(up->key));
	if (group_id != NULL)
		fo->group_id = proto_bytes(group_id, CLIENT_GROUP_ID_BYTES);
	content->sent_ms = (uint64_t)msg_now_ms();
	content->body_case = SOTTOC__CONTENT__BODY_FILE_OFFER;
	content->file_offer = fo;
}

/* The FileOffer for an uploaded file, to peer. */
static int
offer_send(struct sotto_ctx *ctx, const char *peer, const struct client_file_upload *up,
        const char *name, struct msg_sent *sent)
{
	Sottoc__Content content;
	Sottoc__FileOffer fo;

	offer_fill(&content, &fo, up, name, NULL);
	return msg_send_content(ctx, peer, &content, sent);
}

/*
 * The FileOffer to every member in m[] (their sessions open), in one
 * SendMulti.  A member the server would not take it for is named on
 * standard error; *nsent counts the others.
 */
static int
offer_send_group(struct sotto_ctx *ctx, const struct client_group *g, struct msg_multi *m, size_t n,
        const struct client_file_upload *up, const char *name, size_t *nsent)
{
	Sottoc__Content content;
	Sottoc__FileOffer fo;
	uint8_t *pt = NULL, msg_id[PROTO_MSG_ID_BYTES];
	size_t len, i;
	int r;

	*nsent = 0;
	offer_fill(&content, &fo, up, name, g->id);
	len = sottoc__content__get_packed_size(&content);
	if ((pt = malloc(len)) == NULL)
		return ctx_fail(SOTTO_EXIT_INTERNAL, "out of memory");
	sottoc__content__pack(&content, pt);
	for (i = 0; i < n; i++) {
		m[i].content = pt;
		m[i].content_len = len;
	}
	sotto_random(msg_id, sizeof(msg_id));
	r = msg_multi_send(ctx, m, n, msg_id);
	for (i = 0; i < n; i++)
		*nsent += m[i].sent != 0;
	sotto_wipe(pt, len); /* it holds the file's key */
	free(pt);
	return r;
}

/*
 * The members of group ref, as the signed changes make them (never the
 * server's word), other than ourselves, each with a session open and its
 * key checked: *m, *n, and the group (*g, the caller's).
 */
static int
group_targets(struct sotto_ctx *ctx, const char *ref, struct client_group **g, struct msg_multi **m,
        size_t *n)
{
	char gname[CLIENT_GROUP_NAME_MAX + 40];
	size_t i;
	int r;

	*m = NULL;
	*n = 0;
	if ((r = gops_find(ctx, ref, g)) != 0)
		return r;
	gops_display_name(gname, sizeof(gname), *g);
	if (!client_group_is_member(*g, ctx->username))
		return ctx_fail(SOTTO_EXIT_USAGE, "you are not in group %s any more", gname);
	if ((r = ctx_login(ctx, NULL)) != 0 || (r = gops_sync(ctx, g)) != 0)
		return r;
	gops_display_name(gname, sizeof(gname), *g);
	if (!client_group_is_member(*g, ctx->username))
		return ctx_fail(SOTTO_EXIT_USAGE, "you are not in group %s any more", gname);
	if ((*m = calloc((*g)->n + 1, sizeof(**m))) == NULL)
		return ctx_fail(SOTTO_EXIT_INTERNAL, "out of memory");
	for (i = 0; i < (*g)->n; i++)
		if (strcmp((*g)->members[i], ctx->username) != 0)
			(*m)[(*n)++].to = (*g)->members[i];
	if (*n == 0)
		return ctx_fail(
		        SOTTO_EXIT_USAGE, "group %s has no other members; nothing was sent", gname);
	/* Every member's key is checked before a byte is uploaded. */
	return msg_multi_open(ctx, *m, *n, 1);
}

/* "#" and the group's id in hex, then its members in m[], as an upload's recipient. */
static int
group_upload_peer(struct sotto_ctx *ctx, const struct client_group *g, const struct msg_multi *m,
        size_t n, char **out)
{
	size_t len = 1 + 2 * CLIENT_GROUP_ID_BYTES + 1, i;
	char *s;

	for (i = 0; i < n; i++)
		len += 1 + strlen(m[i].to);
	if ((s = malloc(len)) == NULL)
		return ctx_fail(SOTTO_EXIT_INTERNAL, "out of memory");
	s[0] = '#';
	sotto_hex(s + 1, g->id, CLIENT_GROUP_ID_BYTES);
	for (i = 0; i < n; i++) {
		strcat(s, " ");
		strcat(s, m[i].to);
	}
	*out = s;
	return 0;
}

/* What send-file printed once the offer went out to a group. */
static void
sent_group_print(struct sotto_ctx *ctx, const struct client_group *g, const struct msg_multi *m,
        size_t n, size_t nsent, const struct client_file_upload *up, const char *name)
{
	char gname[CLIENT_GROUP_NAME_MAX + 40], sz[32], hex[2 * PROTO_FILE_ID_BYTES + 1];
	size_t i, k = 0;

	gops_display_name(gname, sizeof(gname), g);
	if (ctx->json) {
		sotto_hex(hex, up->file_id, sizeof(up->file_id));
		printf("{\"event\":\"file_sent\",\"group\":");
		json_str(stdout, gname, strlen(gname));
		printf(",\"to\":[");
		for (i = 0; i < n; i++)
			if (m[i].sent)
				printf("%s\"%s\"", k++ > 0 ? "," : "", m[i].to);
		printf("],\"name\":");
		json_str(stdout, name, strlen(name));
		printf(",\"size\":%" PRIu64 ",\"file_id\":\"%s\"}\n", up->size, hex);
		return;
	}
	fmt_size(sz, sizeof(sz), up->size);
	printf("offered ");
	name_print(stdout, name);
	printf(" (%s) to group ", sz);
	text_print(stdout, gname, strlen(gname));
	printf(" (%zu of %zu members)\n", nsent, n);
}

int
cmd_send_file(struct sotto_ctx *ctx, int argc, char **argv)
{
	static const char use[] = "usage: sotto send-file USER PATH | -g GROUP PATH";
	char peer[PROTO_USERNAME_MAX + 1], err[600], sz[32], hex[2 * PROTO_FILE_ID_BYTES + 1];
	const char *to = NULL, *path = NULL, *name = NULL, *group = NULL;
	const char **recips = NULL;
	char *key = NULL, *gpeer = NULL;
	struct client_group *g = NULL;
	struct msg_multi *m = NULL;
	struct client_file_upload up;
	struct client_file_opts o;
	struct progress p;
	struct msg_sent sent;
	struct stat st;
	uint64_t stop_after = 0;
	size_t nm = 0, nsent = 0, i;
	int operands = 0, k, r, resumed = 0;

	memset(&up, 0, sizeof(up));
	for (k = 1; k < argc; k++) {
		if (!operands && strcmp(argv[k], "--") == 0)
			operands = 1;
		else if (!operands && strcmp(argv[k], "-g") == 0 && k + 1 < argc && group == NULL)
			group = argv[++k];
		else if (!operands && strcmp(argv[k], "--name") == 0 && k + 1 < argc)
			name = argv[++k]; /* hidden: the name to offer, for tests */
		else if (!operands && strcmp(argv[k], "--test-stop-after") == 0 && k + 1 < argc) {
			if (parse_u64(argv[++k], &stop_after) != 0)
				return ctx_fail(
				        SOTTO_EXIT_USAGE, "--test-stop-after: a byte count");
		} else if (!operands && argv[k][0] == '-' && argv[k][1] != '\0')
			return ctx_fail(SOTTO_EXIT_USAGE, "send-file: unknown option %s", argv[k]);
		else if (group == NULL && to == NULL)
			to = argv[k];
		else if (path == NULL)
			path = argv[k];
		else
			return ctx_fail(SOTTO_EXIT_USAGE, "%s", use);
	}
	if ((to == NULL) == (group == NULL) || path == NULL)
		return ctx_fail(SOTTO_EXIT_USAGE, "%s", use);
	if (to != NULL && proto_username_normalize(peer, to) != 0)
		return ctx_fail(SOTTO_EXIT_USAGE, "%s: not a valid user name", to);
	if (stat(path, &st) != 0)
		return ctx_fail(SOTTO_EXIT_USAGE, "%s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return ctx_fail(SOTTO_EXIT_USAGE, "%s: not a regular file", path);
	if (access(path, R_OK) != 0)
		return ctx_fail(SOTTO_EXIT_USAGE, "%s: %s", path, strerror(errno));
	if (name == NULL) {
		name = strrchr(path, '/') != NULL ? strrchr(path, '/') + 1 : path;
		if (*name == '\0')
			return ctx_fail(SOTTO_EXIT_USAGE, "%s: no file name", path);
	}
	if (*name == '\0' || strlen(name) > FILE_NAME_IN_MAX)
		return ctx_fail(SOTTO_EXIT_USAGE, "the file name must be 1 to %d bytes long",
		        FILE_NAME_IN_MAX);
	if ((r = ctx_need_user(ctx)) != 0 || (r = ctx_need_server(ctx)) != 0 ||
	        (r = ctx_need_store(ctx)) != 0)
		return r;
	if (group != NULL) {
		/* The members (and their keys) are settled before a byte is uploaded. */
		if ((r = group_targets(ctx, group, &g, &m, &nm)) != 0)
			goto out;
		if ((recips = calloc(nm, sizeof(*recips))) == NULL) {
			r = ctx_fail(SOTTO_EXIT_INTERNAL, "out of memory");
			goto out;
		}
		for (i = 0; i < nm; i++)
			recips[i] = m[i].to;
		/*
		 * An upload to a group is found again by the group and its members:
		 * the blob's recipients are fixed when it begins, so a member added
		 * since makes a new upload.
		 */
		if ((r = group_upload_peer(ctx, g, m, nm, &gpeer)) != 0)
			goto out;
	} else {
		if ((r = ctx_login(ctx, NULL)) != 0)
			return r;
		/* The peer's key is checked before a byte is uploaded. */
		if ((r = msg_session_ready(ctx, peer)) != 0)
			return r;
		if ((recips = calloc(1, sizeof(*recips))) == NULL)
			return ctx_fail(SOTTO_EXIT_INTERNAL, "out of memory");
		recips[0] = peer;
		nm = 1;
	}
	if (upload_name(&key, path, &st, gpeer != NULL ? gpeer : peer) != 0) {
		r = ctx_fail(SOTTO_EXIT_USAGE, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (upload_load(ctx, key, &st, &up))
		resumed = 1;
	else {
		if ((r = client_file_upload_prepare(&up, path, err, sizeof(err))) != 0) {
			r = ctx_fail(SOTTO_EXIT_USAGE, "%s", err);
			goto out;
		}
		if ((r = upload_save(ctx, key, &up)) != 0)
			goto out;
	}
	progress_init(&p, ctx, "upload", name);
	p.stop_after = stop_after;
	if (!up.done) {
		if (resumed && !ctx->json)
			fprintf(stderr, "sotto: resuming the upload of %s\n", path);
		progress_opts(&o, &p);
		r = client_file_upload(ctx->conn, &up, path, recips, nm, &o, err, sizeof(err));
		progress_end(&p, ctx->conn);
		if (r != 0) {
			r = upload_fail(ctx, key, name, r, &p, up.size, err);
			goto out;
		}
		if ((r = upload_save(ctx, key, &up)) != 0)
			goto out;
	}
	if (g != NULL) {
		if ((r = offer_send_group(ctx, g, m, nm, &up, name, &nsent)) != 0)
			goto out;
		if (nsent == 0) {
			r = ctx_fail(SOTTO_EXIT_NET,
			        "the server took the offer of %s for no member; run the same "
			        "command again to send it",
			        name);
			goto out;
		}
	} else if ((r = offer_send(ctx, peer, &up, name, &sent)) != 0)
		goto out;
	if (client_store_upload_delete(ctx->store, key) != 0)
		fprintf(stderr, "sotto: %s\n", client_store_last_error(ctx->store));
	if (g != NULL) {
		sent_group_print(ctx, g, m, nm, nsent, &up, name);
		goto out;
	}
	sotto_hex(hex, up.file_id, sizeof(up.file_id));
	if (ctx->json) {
		printf("{\"event\":\"file_sent\",\"to\":\"%s\",\"name\":", peer);
		json_str(stdout, name, strlen(name));
		printf(",\"size\":%" PRIu64 ",\"file_id\":\"%s\",\"online\":%s}\n", up.size, hex,
		        sent.online ? "true" : "false");
	} else {
		if (!sent.online)
			msg_print_offline(stdout, &sent);
		fmt_size(sz, sizeof(sz), up.size);
		printf("offered ");
		name_print(stdout, name);
		printf(" (%s) to %s\n", sz, peer);
	}
out:
	sotto_wipe(&up, sizeof(up));
	msg_multi_free(m, nm);
	free(m);
	free(recips);
	free(gpeer);
	client_group_free(g);
	free(key);
	return r;
}

/* ---- offers received ------------------------------------------------------------------ */

int
file_offer_store(struct sotto_ctx *ctx, const char *peer, uint64_t time_ms,
        const Sottoc__FileOffer *offer, uint32_t *id)
{
	Sottoc__FileOfferRecord rec;
	uint8_t *buf;
	size_t len;
	int r;

	*id = 0;
	if (offer->file_id.len != PROTO_FILE_ID_BYTES || offer->key.len != FILECRYPT_KEYBYTES ||
	        offer->sha256.len != FILECRYPT_HASHBYTES || offer->name == NULL ||
	        strlen(offer->name) > FILE_NAME_IN_MAX ||
	        filecrypt_ciphertext_size(offer->size) == 0) {
		fprintf(stderr, "sotto: %s offered a file, but the offer is malformed; ignored\n",
		        peer);
		return 0;
	}
	sottoc__file_offer_record__init(&rec);
	rec.from = proto_str(peer);
	rec.offer = (Sottoc__FileOffer *)(uintptr_t)offer;
	rec.received_ms = time_ms;
	len = sottoc__file_offer_record__get_packed_size(&rec);
	if ((buf = malloc(len)) == NULL)
		return SOTTO_ERR_NOMEM;
	sottoc__file_offer_record__pack(&rec, buf);
	r = client_store_offer_add(ctx->store, buf, len, (int64_t)time(NULL), id);
	sotto_wipe(buf, len);
	free(buf);
	return r;
}

/* One offer from client.db, unpacked and checked. */
struct offer {
	uint32_t id;
	Sottoc__FileOfferRecord *rec;
	struct client_file_offer of;
	struct client_file_download dl;
};

static void
offer_free(struct offer *o)
{
	if (o->rec != NULL) {
		if (o->rec->offer != NULL && o->rec->offer->key.data != NULL)
			sotto_wipe(o->rec->offer->key.data, o->rec->offer->key.len);
		sottoc__file_offer_record__free_unpacked(o->rec, NULL);
	}
	sotto_wipe(o, sizeof(*o));
}

static int
offer_unpack(struct offer *o, uint32_t id, const uint8_t *buf, size_t len)
{
	const Sottoc__FileOffer *fo;

	memset(o, 0, sizeof(*o));
	o->id = id;
	if ((o->rec = sottoc__file_offer_record__unpack(NULL, len, buf)) == NULL)
		return SOTTO_ERR_FORMAT;
	fo = o->rec->offer;
	if (fo == NULL || fo->file_id.len != PROTO_FILE_ID_BYTES ||
	        fo->key.len != FILECRYPT_KEYBYTES || fo->sha256.len != FILECRYPT_HASHBYTES ||
	        o->rec->from == NULL || fo->name == NULL)
		return SOTTO_ERR_FORMAT;
	memcpy(o->of.file_id, fo->file_id.data, PROTO_FILE_ID_BYTES);
	memcpy(o->of.key, fo->key.data, FILECRYPT_KEYBYTES);
	memcpy(o->of.sha256, fo->sha256.data, FILECRYPT_HASHBYTES);
	o->of.size = fo->size;
	o->of.name = fo->name;
	if (o->rec->part != NULL && o->rec->part[0] != '\0' &&
	        o->rec->pull_state.len == FILECRYPT_STATEBYTES &&
	        strlen(o->rec->part) < sizeof(o->dl.part)) {
		snprintf(o->dl.part, sizeof(o->dl.part), "%s", o->rec->part);
		memcpy(o->dl.state, o->rec->pull_state.data, FILECRYPT_STATEBYTES);
		o->dl.has_state = 1;
		o->dl.written = o->rec->written;
	}
	return 0;
}

static int
offer_load(struct sotto_ctx *ctx, const char *arg, struct offer *o)
{
	unsigned long v;
	uint8_t *buf = NULL;
	size_t len = 0;
	char *end;
	int r;

	memset(o, 0, sizeof(*o));
	errno = 0;
	v = strtoul(arg, &end, 10);
	if (errno != 0 || end == arg || *end != '\0' || arg[0] == '-' || v == 0 || v > UINT32_MAX)
		return ctx_fail(SOTTO_EXIT_USAGE,
		        "%s: not an offer number (sotto files list shows them)", arg);
	r = client_store_offer_get(ctx->store, (uint32_t)v, &buf, &len);
	if (r == SOTTO_ERR_NOTFOUND)
		return ctx_fail(
		        SOTTO_EXIT_USAGE, "there is no file offer %lu (sotto files list)", v);
	if (r != 0)
		return ctx_fail(SOTTO_EXIT_INTERNAL, "%s", client_store_last_error(ctx->store));
	r = offer_unpack(o, (uint32_t)v, buf, len);
	client_store_free_secret(buf, len);
	if (r != 0) {
		offer_free(o);
		return ctx_fail(SOTTO_EXIT_INTERNAL, "file offer %lu is damaged in client.db", v);
	}
	return 0;
}

/* Save o's download state (or, with dl cleared, its absence) into its record. */
static int
offer_save(struct sotto_ctx *ctx, struct offer *o)
{
	char *part = o->rec->part;
	ProtobufCBinaryData state = o->rec->pull_state;
	uint8_t *buf;
	size_t len;
	int r;

	if (o->dl.has_state) {
		o->rec->part = o->dl.part;
		o->rec->pull_state = proto_bytes(o->dl.state, FILECRYPT_STATEBYTES);
		o->rec->written = o->dl.written;
	} else {
		o->rec->part = NULL;
		o->rec->pull_state = proto_bytes(NULL, 0);
		o->rec->written = 0;
	}
	len = sottoc__file_offer_record__get_packed_size(o->rec);
	buf = malloc(len);
	if (buf != NULL)
		sottoc__file_offer_record__pack(o->rec, buf);
	/* The record gets its own string and bytes back, for free_unpacked. */
	o->rec->part = part;
	o->rec->pull_state = state;
	if (buf == NULL)
		return SOTTO_ERR_NOMEM;
	r = client_store_offer_put(ctx->store, o->id, buf, len, (int64_t)time(NULL));
	sotto_wipe(buf, len);
	free(buf);
	return r;
}

struct offer_saver {
	struct sotto_ctx *ctx;
	struct offer *o;
};

static void
offer_save_cb(void *arg)
{
	struct offer_saver *s = arg;

	if (s->o->dl.has_state && offer_save(s->ctx, s->o) != 0)
		fprintf(stderr, "\nsotto: cannot save the download's state: %s\n",
		        client_store_last_error(s->ctx->store));
}

struct list_arg {
	struct sotto_ctx *ctx;
	size_t n;
};

static int
list_cb(void *arg, uint32_t id, const uint8_t *rec, size_t len)
{
	struct list_arg *la = arg;
	struct sotto_ctx *ctx = la->ctx;
	struct offer o;
	char sz[32];

	la->n++;
	if (offer_unpack(&o, id, rec, len) != 0) {
		offer_free(&o);
		fprintf(stderr, "sotto: file offer %" PRIu32 " is damaged in client.db\n", id);
		return 0;
	}
	if (ctx->json) {
		printf("{\"event\":\"file\",\"id\":%" PRIu32 ",\"from\":\"%s\",\"name\":", id,
		        o.rec->from);
		json_str(stdout, o.of.name, strlen(o.of.name));
		printf(",\"size\":%" PRIu64 ",\"time\":%" PRIu64 ",\"downloaded\":%" PRIu64 "}\n",
		        o.of.size, o.rec->received_ms, o.dl.has_state ? o.dl.written : 0);
	} else {
		fmt_size(sz, sizeof(sz), o.of.size);
		printf("%" PRIu32 "  %s  ", id, o.rec->from);
		name_print(stdout, o.of.name);
		printf("  %s", sz);
		if (o.dl.has_state && o.of.size > 0)
			printf("  [%.0f%% downloaded]",
			        100.0 * (double)o.dl.written / (double)o.of.size);
		putchar('\n');
	}
	offer_free(&o);
	return 0;
}

int
cmd_file_list(struct sotto_ctx *ctx, int argc, char **argv)
{
	struct list_arg la = {ctx, 0};
	int r;

	(void)argv;
	if (argc > 1)
		return ctx_fail(SOTTO_EXIT_USAGE, "usage: sotto files list");
	if ((r = ctx_need_user(ctx)) != 0 || (r = ctx_need_store(ctx)) != 0)
		return r;
	if ((r = client_store_offer_list(ctx->store, list_cb, &la)) != 0)
		return ctx_fail(SOTTO_EXIT_INTERNAL, "%s", client_store_last_error(ctx->store));
	if (la.n == 0 && !ctx->json)
		printf("no file offers\n");
	fflush(stdout);
	return 0;
}

/*
 * Where accepted files go: sotto.conf's downloads (a leading ~/ is $HOME),
 * else DIR/downloads under -H DIR (or SOTTO_HOME), else $XDG_DOWNLOAD_DIR
 * when absolute, else ~/Downloads.  Created (0700) if missing.
 */
static int
downloads_dir(struct sotto_ctx *ctx, char *out, size_t outlen)
{
	const char *home = getenv("HOME"), *xdg = getenv("XDG_DOWNLOAD_DIR");
	const char *conf = ctx->conf_downloads;
	int n;

	if (conf != NULL && conf[0] == '~' && conf[1] == '/' && home != NULL)
		n = snprintf(out, outlen, "%s/%s", home, conf + 2);
	else if (conf != NULL)
		n = snprintf(out, outlen, "%s", conf);
	else if (ctx->paths->home)
		n = snprintf(out, outlen, "%s/%s", ctx->paths->config_dir, FILE_DOWNLOADS);
	else if (xdg != NULL && xdg[0] == '/')
		n = snprintf(out, outlen, "%s", xdg);
	else if (home != NULL && home[0] == '/')
		n = snprintf(out, outlen, "%s/Downloads", home);
	else
		return ctx_fail(SOTTO_EXIT_USAGE,
		        "no downloads directory: set downloads in sotto.conf, or give a PATH");
	if (n < 0 || (size_t)n >= outlen)
		return ctx_fail(SOTTO_EXIT_USAGE, "the downloads directory's path is too long");
	if (mkdir(out, 0700) != 0 && errno != EEXIST)
		return ctx_fail(SOTTO_EXIT_USAGE, "%s: %s", out, strerror(errno));
	return 0;
}

int
cmd_file_accept(struct sotto_ctx *ctx, int argc, char **argv)
{
	static const char use[] = "usage: sotto files accept ID [PATH]";
	char dir[4096], final[4200], err[600], a[32], b[32], oldpart[4096];
	const char *id = NULL, *dest = NULL;
	struct client_file_opts co;
	struct offer_saver sv;
	struct progress p;
	struct offer o;
	uint64_t stop_after = 0;
	int k, r, operands = 0;

	memset(&o, 0, sizeof(o));
	for (k = 1; k < argc; k++) {
		if (!operands && strcmp(argv[k], "--") == 0)
			operands = 1;
		else if (!operands && strcmp(argv[k], "--test-stop-after") == 0 && k + 1 < argc) {
			if (parse_u64(argv[++k], &stop_after) != 0)
				return ctx_fail(
				        SOTTO_EXIT_USAGE, "--test-stop-after: a byte count");
		} else if (!operands && argv[k][0] == '-' && argv[k][1] != '\0')
			return ctx_fail(
			        SOTTO_EXIT_USAGE, "files accept: unknown option %s", argv[k]);
		else if (id == NULL)
			id = argv[k];
		else if (dest == NULL)
			dest = argv[k];
		else
			return ctx_fail(SOTTO_EXIT_USAGE, "%s", use);
	}
	if (id == NULL)
		return ctx_fail(SOTTO_EXIT_USAGE, "%s", use);
	if ((r = ctx_need_user(ctx)) != 0 || (r = ctx_need_server(ctx)) != 0 ||
	        (r = ctx_need_store(ctx)) != 0 || (r = offer_load(ctx, id, &o)) != 0)
		return r;
	if (dest == NULL) {
		if ((r = downloads_dir(ctx, dir, sizeof(dir))) != 0)
			goto out;
		dest = dir;
	}
	if ((r = ctx_login(ctx, NULL)) != 0)
		goto out;
	progress_init(&p, ctx, "download", o.of.name);
	p.stop_after = stop_after;
	sv.ctx = ctx;
	sv.o = &o;
	p.save = offer_save_cb;
	p.save_arg = &sv;
	p.saved = o.dl.has_state ? o.dl.written : 0;
	progress_opts(&co, &p);
	snprintf(oldpart, sizeof(oldpart), "%s", o.dl.has_state ? o.dl.part : "");
	r = client_file_download(
	        ctx->conn, &o.of, dest, &o.dl, &co, final, sizeof(final), err, sizeof(err));
	progress_end(&p, ctx->conn);
	/* A partial file left in another directory by an earlier accept is of no more use. */
	if (oldpart[0] != '\0' && (!o.dl.has_state || strcmp(oldpart, o.dl.part) != 0) &&
	        unlink(oldpart) != 0 && errno != ENOENT)
		fprintf(stderr, "sotto: %s: %s\n", oldpart, strerror(errno));
	if (r == 0) {
		if (client_file_done(ctx->conn, o.of.file_id, 1, err, sizeof(err)) != 0)
			fprintf(stderr, "sotto: the server was not told the file arrived: %s\n",
			        err);
		if (client_store_offer_delete(ctx->store, o.id) != 0)
			fprintf(stderr, "sotto: %s\n", client_store_last_error(ctx->store));
		if (ctx->json) {
			printf("{\"event\":\"file_saved\",\"id\":%" PRIu32
			       ",\"from\":\"%s\",\"name\":",
			        o.id, o.rec->from);
			json_str(stdout, o.of.name, strlen(o.of.name));
			printf(",\"size\":%" PRIu64 ",\"path\":", o.of.size);
			json_str(stdout, final, strlen(final));
			printf("}\n");
		} else {
			fmt_size(a, sizeof(a), o.of.size);
			printf("saved ");
			name_print(stdout, o.of.name);
			printf(" (%s) from %s as ", a, o.rec->from);
			text_print(stdout, final, strlen(final));
			putchar('\n');
		}
		goto out;
	}
	if (r == SOTTO_ERR_VERIFY) {
		(void)offer_save(
		        ctx, &o); /* client-file cleared the state: start afresh next time */
		r = ctx_fail(SOTTO_EXIT_NET,
		        "offer %" PRIu32
		        " from %s failed its integrity check: %s; the partial file "
		        "was deleted and nothing was kept (sotto files discard %" PRIu32
		        " forgets it)",
		        o.id, o.rec->from, err, o.id);
	} else if (r == SOTTO_ERR_PERM && client_conn_remote(ctx->conn) != NULL &&
	           client_conn_remote(ctx->conn)->code == SOTTO__ERROR_CODE__ERR_NO_SUCH_FILE) {
		if (client_store_offer_delete(ctx->store, o.id) != 0)
			fprintf(stderr, "sotto: %s\n", client_store_last_error(ctx->store));
		r = ctx_fail(SOTTO_EXIT_NET,
		        "the server no longer has offer %" PRIu32
		        " (the sender withdrew it, or it expired); forgetting it",
		        o.id);
	} else if (r == SOTTO_ERR_EXISTS || r == SOTTO_ERR_RANGE || p.first == UINT64_MAX) {
		/* Refused before a byte was asked for: the destination, not the network. */
		r = ctx_fail(SOTTO_EXIT_USAGE, "%s", err);
	} else {
		if (offer_save(ctx, &o) != 0)
			fprintf(stderr, "sotto: cannot save the download's state: %s\n",
			        client_store_last_error(ctx->store));
		fmt_size(a, sizeof(a), o.dl.has_state ? o.dl.written : 0);
		fmt_size(b, sizeof(b), o.of.size);
		r = ctx_fail(SOTTO_EXIT_NET,
		        "the download of offer %" PRIu32
		        " stopped at %s of %s: %s; run sotto files "
		        "accept %" PRIu32 " again to resume it",
		        o.id, a, b, err, o.id);
	}
out:
	offer_free(&o);
	return r;
}

int
cmd_file_discard(struct sotto_ctx *ctx, int argc, char **argv)
{
	const struct client_remote_error *re;
	struct offer o;
	char err[600];
	int r;

	if (argc != 2)
		return ctx_fail(SOTTO_EXIT_USAGE, "usage: sotto files discard ID");
	if ((r = ctx_need_user(ctx)) != 0 || (r = ctx_need_server(ctx)) != 0 ||
	        (r = ctx_need_store(ctx)) != 0 || (r = offer_load(ctx, argv[1], &o)) != 0)
		return r;
	if ((r = ctx_login(ctx, NULL)) != 0)
		goto out;
	r = client_file_done(ctx->conn, o.of.file_id, 0, err, sizeof(err));
	re = client_conn_remote(ctx->conn);
	if (r == SOTTO_ERR_PERM && re != NULL && re->code == SOTTO__ERROR_CODE__ERR_NO_SUCH_FILE)
		r = 0; /* gone already: expired or withdrawn */
	if (r != 0) {
		r = ctx_fail(SOTTO_EXIT_NET, "cannot discard offer %" PRIu32 ": %s", o.id, err);
		goto out;
	}
	if (o.dl.has_state && unlink(o.dl.part) != 0 && errno != ENOENT)
		fprintf(stderr, "sotto: %s: %s\n", o.dl.part, strerror(errno));
	if (client_store_offer_delete(ctx->store, o.id) != 0) {
		r = ctx_fail(SOTTO_EXIT_INTERNAL, "%s", client_store_last_error(ctx->store));
		goto out;
	}
	if (ctx->json) {
		printf("{\"event\":\"file_discarded\",\"id\":%" PRIu32 ",\"from\":\"%s\",\"name\":",
		        o.id, o.rec->from);
		json_str(stdout, o.of.name, strlen(o.of.name));
		printf("}\n");
	} else {
		printf("discarded offer %" PRIu32 " (", o.id);
		name_print(stdout, o.of.name);
		printf(" from %s)\n", o.rec->from);
	}
out:
	offer_free(&o);
	return r;
}

int
cmd_files(struct sotto_ctx *ctx, int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "list") == 0)
		return cmd_file_list(ctx, argc < 2 ? 1 : argc - 1, argv + (argc < 2 ? 0 : 1));
	if (strcmp(argv[1], "accept") == 0)
		return cmd_file_accept(ctx, argc - 1, argv + 1);
	if (strcmp(argv[1], "discard") == 0)
		return cmd_file_discard(ctx, argc - 1, argv + 1);
	return ctx_fail(SOTTO_EXIT_USAGE,
	        "files %s: unknown; use files list, files accept ID [PATH] or files discard ID",
	        argv[1]);
}
