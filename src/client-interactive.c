/*
 * sotto's interactive mode: a line-mode chat on a terminal.  One libevent
 * loop watches the terminal and the server connection.  The terminal feeds
 * libedit one key at a time (el_gets in unbuffered mode), so that the line
 * being typed stays libedit's while everything else (incoming messages,
 * receipts, command output) is printed above it: the prompt and its line are
 * erased, the output printed, and the line redrawn as it was.
 *
 * Lines that arrive together (closer than TTY_BURST_MS) are one burst, and a
 * burst of more than TTY_PASTE_LINES lines is a paste, which is sent as one
 * message only once the user says yes.  Everything here runs on the one
 * thread of the loop; nothing is thread-safe.
 */
#include "config.h"

#include <sys/ioctl.h>

#include <errno.h>
#include <histedit.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#include <event2/event.h>

#include "crypto/util.h"
#include "src/client-cmd.h"
#include "src/client-e2e.h"
#include "src/client-gops.h"
#include "src/client-msg.h"

#define TTY_PASTE_LINES 5                  /* a burst of more lines than this asks first */
#define TTY_BURST_MS    40                 /* lines closer than this are one burst */
#define TTY_BURST_MAX   (MSG_TEXT_MAX * 4) /* bytes one burst may hold */
#define TTY_RECENT      64                 /* sent messages remembered for their state lines */
#define TTY_EXCERPT     24                 /* bytes of a message quoted in a state line */
#define TTY_HISTORY     500                /* lines the editor remembers */
#define TTY_ARGS        32                 /* words of a command */
#define TTY_CTRL(c)     ((c)&0x1f)
#define TTY_UPKEEP_SECS 3600 /* prekey upkeep in a long session */
/* A user's name, or "#" and a group's name as shown. */
#define TTY_ACTIVE_MAX (PROTO_USERNAME_MAX + CLIENT_GROUP_NAME_MAX + 48)

/* A message sent in this session, for its "delivered" and "read" lines. */
struct tty_recent {
	char peer[PROTO_USERNAME_MAX + 1];
	uint8_t msg_id[PROTO_MSG_ID_BYTES];
	char excerpt[TTY_EXCERPT + 4];
};

struct tty {
	struct sotto_ctx *ctx;
	struct event_base *base;
	struct event *ev_in, *ev_conn, *ev_burst, *ev_upkeep;
	struct event *ev_sig[6];
	size_t nsig;
	EditLine *el;
	History *hist;
	int started; /* the editor shows its prompt */
	int hidden;  /* the prompt and line are erased for output */
	/* A user, or "#" and a group's name (or "(unnamed ID)"). */
	char active[TTY_ACTIVE_MAX];
	int active_group; /* active names the group group_id */
	uint8_t group_id[CLIENT_GROUP_ID_BYTES];
	char prompt[TTY_ACTIVE_MAX + 64];
	/* The lines of the burst being read, each NUL-terminated, one after another. */
	char *burst;
	size_t burstlen, nburst;
	int burst_lost; /* the burst outgrew TTY_BURST_MAX */
	/* A paste waiting for y/N: its lines joined with newlines. */
	char *paste;
	size_t pastelen, npaste;
	int held; /* messages left on the server for want of a trusted key */
	struct tty_recent recent[TTY_RECENT];
	size_t nrecent;
	int done, rc;
};

struct tty_cmd {
	const char *name;
	const char *args;
	int min, max; /* words after the name */
	int (*fn)(struct tty *, const struct tty_cmd *, int, char **, const char *);
	const char *help;
};

static const struct tty_cmd tty_cmds[];

/* The terminal as it was, put back at exit whatever happened. */
static struct termios tty_saved;
static int tty_saved_ok;

static void
tty_restore_terminal(void)
{
	if (tty_saved_ok)
		tcsetattr(STDIN_FILENO, TCSADRAIN, &tty_saved);
}

static void
tty_quit(struct tty *t, int rc)
{
	if (!t->done) {
		t->done = 1;
		t->rc = rc;
	}
	if (t->base != NULL)
		event_base_loopbreak(t->base);
}

static char *
tty_prompt_fn(EditLine *el)
{
	static char none[] = "";
	struct tty *t = NULL;

	el_get(el, EL_CLIENTDATA, &t);
	return t != NULL ? t->prompt : none;
}

static void
tty_set_prompt_text(struct tty *t)
{
	if (t->paste != NULL)
		snprintf(t->prompt, sizeof(t->prompt), "send %zu lines to %s? [y/N] ", t->npaste,
		        t->active);
	else if (t->active[0] != '\0')
		snprintf(t->prompt, sizeof(t->prompt), "%s> ", t->active);
	else
		snprintf(t->prompt, sizeof(t->prompt), "sotto> ");
}

/* Columns the terminal shows s in, as libedit draws it (controls as ^X). */
static size_t
tty_width(const char *s, size_t len)
{
	mbstate_t st;
	wchar_t wc;
	size_t i = 0, k, w = 0;
	int cw;

	memset(&st, 0, sizeof(st));
	while (i < len) {
		k = mbrtowc(&wc, s + i, len - i, &st);
		if (k == (size_t)-1 || k == (size_t)-2) {
			memset(&st, 0, sizeof(st));
			w += 4; /* an invalid byte shows as \ooo */
			i++;
			continue;
		}
		if (k == 0)
			k = 1;
		cw = wcwidth(wc);
		w += cw >= 0 ? (size_t)cw : 2;
		i += k;
	}
	return w;
}

static size_t
tty_columns(void)
{
	struct winsize ws;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	return 80;
}

/* Go up the rows between the prompt's start and a cursor offset columns in, and clear below. */
static void
tty_erase_from(size_t offset)
{
	size_t rows = offset / tty_columns();

	fputc('\r', stdout);
	if (rows > 0)
		fprintf(stdout, "\033[%zuA", rows);
	fputs("\033[J", stdout);
}

/* Erase the prompt and the line being typed, so that output can go in their place. */
static void
tty_hide(struct tty *t)
{
	const LineInfo *li;

	if (!t->started || t->hidden)
		return;
	li = el_line(t->el);
	tty_erase_from(
	        strlen(t->prompt) + tty_width(li->buffer, (size_t)(li->cursor - li->buffer)));
	fflush(stdout);
	t->hidden = 1;
}

/* Draw the prompt and the line again, with the cursor where it was. */
static void
tty_show(struct tty *t)
{
	fflush(stdout);
	fflush(stderr);
	if (!t->started || !t->hidden || t->done)
		return;
	t->hidden = 0;
	el_set(t->el, EL_REFRESH);
}

/* Start an empty line: libedit resets its buffer when unbuffered mode is set again. */
static void
tty_new_line(struct tty *t)
{
	fflush(stdout);
	fflush(stderr);
	if (t->done)
		return;
	t->hidden = 0;
	t->started = 1;
	el_set(t->el, EL_UNBUFFERED, 0);
	el_set(t->el, EL_UNBUFFERED, 1);
}

static void
tty_remember(struct tty *t, const char *peer, const uint8_t *msg_id, const char *text, size_t len)
{
	struct tty_recent *r = &t->recent[t->nrecent++ % TTY_RECENT];
	size_t n = len;

	snprintf(r->peer, sizeof(r->peer), "%s", peer);
	memcpy(r->msg_id, msg_id, PROTO_MSG_ID_BYTES);
	if (n > TTY_EXCERPT) {
		n = TTY_EXCERPT;
		/* Cut on a character boundary. */
		while (n > 0 && ((unsigned char)text[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(r->excerpt, text, n);
	if (n < len)
		memcpy(r->excerpt + n, "...", 4);
	else
		r->excerpt[n] = '\0';
}

static void
tty_now(char *when, size_t len)
{
	msg_fmt_time(when, len, (int64_t)time(NULL), 0);
}

/* ---- what the server pushes ------------------------------------------------ */

static void
tty_on_message(void *arg, const char *peer, const uint8_t *msg_id, uint64_t time_ms,
        const char *text, size_t len)
{
	char when[16];

	(void)arg;
	(void)msg_id;
	msg_fmt_time(when, sizeof(when), (int64_t)(time_ms / 1000), 0);
	printf("%s %s: ", when, peer);
	text_print(stdout, text, len);
	putchar('\n');
}

static void
tty_on_group_message(void *arg, const uint8_t *group_id, const char *group, const char *sender,
        const uint8_t *msg_id, uint64_t time_ms, const char *text, size_t len)
{
	char when[16];

	(void)arg;
	(void)group_id;
	(void)msg_id;
	msg_fmt_time(when, sizeof(when), (int64_t)(time_ms / 1000), 0);
	printf("%s [", when);
	text_print(stdout, group, strlen(group));
	printf("] %s: ", sender);
	text_print(stdout, text, len);
	putchar('\n');
}

static void
tty_on_group_event(void *arg, const uint8_t *group_id, const char *group, const char *what)
{
	struct tty *t = arg;
	char when[16];

	tty_now(when, sizeof(when));
	printf("%s ", when);
	text_print(stdout, what, strlen(what));
	putchar('\n');
	/* A renamed active group: the prompt follows. */
	if (t->active_group && memcmp(t->group_id, group_id, CLIENT_GROUP_ID_BYTES) == 0) {
		snprintf(t->active, sizeof(t->active), "#%s", group);
		tty_set_prompt_text(t);
	}
}

static void
tty_on_state(void *arg, const char *peer, const uint8_t *msg_id, enum client_msg_state state)
{
	const struct tty *t = arg;
	const struct tty_recent *r;
	char when[16];
	size_t i;

	tty_now(when, sizeof(when));
	printf("%s -> %s: %s", when, peer, client_msg_state_name(state));
	for (i = 0; i < TTY_RECENT && i < t->nrecent; i++) {
		r = &t->recent[i];
		if (strcmp(r->peer, peer) == 0 &&
		        sotto_memeq(r->msg_id, msg_id, PROTO_MSG_ID_BYTES)) {
			fputs(" \"", stdout);
			text_print(stdout, r->excerpt, strlen(r->excerpt));
			fputc('"', stdout);
			break;
		}
	}
	putchar('\n');
}

static void
tty_on_held(void *arg, const char *peer, const uint8_t *msg_id)
{
	(void)arg;
	(void)msg_id;
	fflush(stdout);
	fprintf(stderr,
	        "sotto: a message from %s stays on the server, unread, because %s's key was "
	        "refused; compare safety numbers (/fingerprint %s), then /verify %s NUMBER or "
	        "/trust %s to read it\n",
	        peer, peer, peer, peer, peer);
}

/* files: an offer, with /accept and /discard. */
static void
tty_on_file_offer(void *arg, const char *peer, uint32_t id, const char *name, uint64_t size,
        const char *group)
{
	const struct tty *t = arg;

	file_offer_print(t->ctx, peer, id, name, size, group, 1);
}

/* Say why the connection is over and leave with status 3. */
static void
tty_conn_gone(struct tty *t)
{
	const struct client_remote_error *re = client_conn_remote(t->ctx->conn);
	const char *err = client_conn_error(t->ctx->conn);
	static const char closed[] = "the server closed the connection";

	tty_hide(t);
	if (strncmp(err, closed, strlen(closed)) == 0 &&
	        re->code == SOTTO__ERROR_CODE__ERR_IDLE_TIMEOUT)
		fprintf(stderr, "sotto: %s: idle timeout%s%s%s\n", closed,
		        re->message[0] ? " (" : "", re->message, re->message[0] ? ")" : "");
	else
		fprintf(stderr, "sotto: %s\n", err);
	tty_quit(t, SOTTO_EXIT_NET);
}

/* Handle every frame the server has sent, queued or waiting in the socket. */
static void
tty_drain(struct tty *t)
{
	const struct msg_view v = {.message = tty_on_message,
	        .state = tty_on_state,
	        .held = tty_on_held,
	        .group_message = tty_on_group_message,
	        .group_event = tty_on_group_event,
	        .file_offer = tty_on_file_offer,
	        .arg = t};
	Sotto__Frame *f = NULL;
	int r;

	while (!t->done && t->ctx->conn != NULL) {
		r = client_conn_next_push(t->ctx->conn, &f, 0);
		if (r == SOTTO_ERR_AGAIN)
			break;
		if (r != 0 || f->body_case == SOTTO__FRAME__BODY_CLOSING) {
			frame_free(f);
			tty_conn_gone(t);
			break;
		}
		tty_hide(t);
		r = msg_handle_push(t->ctx, f, &v, &t->held);
		frame_free(f);
		f = NULL;
		/* A store that fails is no place to keep going; a network error shows next turn. */
		if (r == SOTTO_EXIT_INTERNAL)
			tty_quit(t, r);
	}
	tty_show(t);
}

static void
tty_on_conn(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	tty_drain(arg);
}

static int
tty_watch_conn(struct tty *t)
{
	if (t->ev_conn != NULL)
		event_free(t->ev_conn);
	t->ev_conn = event_new(
	        t->base, client_conn_fd(t->ctx->conn), EV_READ | EV_PERSIST, tty_on_conn, t);
	if (t->ev_conn == NULL || event_add(t->ev_conn, NULL) != 0)
		return ctx_fail(SOTTO_EXIT_INTERNAL, "cannot watch the server connection");
	return 0;
}

/* Log in again, so that the server hands out what it held back. */
static int
tty_reconnect(struct tty *t)
{
	struct sotto_ctx *ctx = t->ctx;
	Sotto__Frame *ok = NULL;
	int r;

	if (t->ev_conn != NULL) {
		event_free(t->ev_conn);
		t->ev_conn = NULL;
	}
	client_conn_close(ctx->conn);
	ctx->conn = NULL;
	t->held = 0;
	if ((r = ctx_login(ctx, &ok)) != 0 || (r = tty_watch_conn(t)) != 0) {
		frame_free(ok);
		tty_quit(t, r);
		return r;
	}
	printf("logged in again to fetch the messages the server held\n");
	frame_free(ok);
	return 0;
}

/*
 * A session may stay open for weeks: look after the prekeys now and then, as
 * a login does, so that the signed prekey still rotates weekly and peers
 * still find one-time prekeys.  An empty UploadPrekeys asks how many are left.
 */
static void
tty_on_upkeep(evutil_socket_t fd, short what, void *arg)
{
	struct tty *t = arg;
	Sotto__UploadPrekeys up;
	Sotto__Frame req, *reply = NULL;
	int r;

	(void)fd;
	(void)what;
	if (t->done || t->ctx->conn == NULL)
		return;
	tty_hide(t);
	sotto__upload_prekeys__init(&up);
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_UPLOAD_PREKEYS;
	req.upload_prekeys = &up;
	r = client_conn_request(t->ctx->conn, &req, &reply, 0);
	if (r != 0)
		ctx_request_fail(t->ctx, "cannot look after the prekeys", r);
	else if (reply->body_case == SOTTO__FRAME__BODY_PREKEYS_OK &&
	         account_prekeys(t->ctx, reply->prekeys_ok->otk_remaining) == 0 &&
	         e2e_store_prune(t->ctx->store, (int64_t)time(NULL)) != 0)
		ctx_fail(SOTTO_EXIT_INTERNAL, "%s", client_store_last_error(t->ctx->store));
	frame_free(reply);
	/* Pushes that came while waiting for the reply are queued: show them. */
	tty_drain(t);
}

/* ---- sending ------------------------------------------------------------------ */

static void
tty_print_sent(struct tty *t, const char *to, const char *text, size_t len, const char *mark)
{
	char when[16];

	tty_now(when, sizeof(when));
	printf("%s %s -> %s: ", when, t->ctx->username, to);
	text_print(stdout, text, len);
	printf(" [%s]\n", mark);
}

/* Send text to the active group. */
static void
tty_say_group(struct tty *t, const char *text, size_t len)
{
	struct client_group *g = NULL;
	struct gops_sent s;
	char when[16], name[CLIENT_GROUP_NAME_MAX + 40];
	int r;

	if ((r = client_group_load(t->ctx->store, t->group_id, &g)) != 0) {
		ctx_fail(SOTTO_EXIT_INTERNAL, "the group does not open: %s",
		        client_store_last_error(t->ctx->store));
		return;
	}
	if (gops_send_text(t->ctx, &g, text, len, &s) == 0) {
		gops_display_name(name, sizeof(name), g);
		tty_remember(t, t->ctx->username, s.msg_id, text, len);
		tty_now(when, sizeof(when));
		printf("%s [", when);
		text_print(stdout, name, strlen(name));
		printf("] %s: ", t->ctx->username);
		text_print(stdout, text, len);
		printf(" [sent to %zu, %zu online]\n", s.members, s.online);
	}
	client_group_free(g);
}

/* Send text to the active conversation (output goes above the prompt). */
static void
tty_say(struct tty *t, const char *text, size_t len)
{
	struct msg_sent s;

	if (t->active[0] == '\0') {
		ctx_fail(SOTTO_EXIT_USAGE,
		        "no conversation to send to: /msg USER opens one (/help lists the "
		        "commands)");
		return;
	}
	if (t->active_group) {
		tty_say_group(t, text, len);
		return;
	}
	if (msg_send_text(t->ctx, t->active, text, len, &s) != 0)
		return;
	tty_remember(t, s.to, s.msg_id, text, len);
	tty_print_sent(t, s.to, text, len, "sent");
	if (!s.online)
		msg_print_offline(stdout, &s);
}

/* ---- commands ---------------------------------------------------------------- */

/*
 * Does /msg NAME mean a group?  "#NAME" always does; a plain NAME does when
 * it is not a user name, or when we have no session with a user so named
 * and one of our groups is named NAME (a user we talk to wins).
 */
static int
tty_names_group(struct tty *t, const char *name, const char *peer, int valid_user)
{
	struct client_group **gs = NULL;
	uint8_t *state = NULL;
	size_t n = 0, i, len = 0;
	int found = 0;

	if (name[0] == '#')
		return 1;
	if (valid_user &&
	        client_store_session_get(t->ctx->store, peer, &state, &len) != SOTTO_ERR_NOTFOUND) {
		client_store_free_secret(state, len);
		return 0;
	}
	if (gops_list(t->ctx, &gs, &n) != 0)
		return 0;
	for (i = 0; i < n && !found; i++)
		found = strcmp(gs[i]->name, name) == 0;
	gops_list_free(gs, n);
	return found || !valid_user;
}

/* Make group ref the active conversation. */
static int
tty_open_group(struct tty *t, const char *ref)
{
	struct client_group *g = NULL;
	char name[CLIENT_GROUP_NAME_MAX + 40];
	int r;

	if ((r = gops_find(t->ctx, ref, &g)) != 0)
		return r;
	gops_display_name(name, sizeof(name), g);
	if (!t->active_group || memcmp(t->group_id, g->id, CLIENT_GROUP_ID_BYTES) != 0 ||
	        strcmp(t->active + 1, name) != 0) {
		t->active_group = 1;
		memcpy(t->group_id, g->id, CLIENT_GROUP_ID_BYTES);
		snprintf(t->active, sizeof(t->active), "#%s", name);
		tty_set_prompt_text(t);
		printf("talking in group %s: Enter sends to its %zu members\n", name, g->n);
	}
	client_group_free(g);
	return 0;
}

static int
tty_cmd_msg(struct tty *t, const struct tty_cmd *c, int argc, char **argv, const char *rest)
{
	char peer[PROTO_USERNAME_MAX + 1];
	int valid, r;

	(void)c;
	(void)argc;
	valid = proto_username_normalize(peer, argv[1]) == 0;
	if (tty_names_group(t, argv[1], peer, valid)) {
		if ((r = tty_open_group(t, argv[1])) != 0)
			return r;
	} else if (!valid)
		return ctx_fail(SOTTO_EXIT_USAGE, "%s: not a valid user name", argv[1]);
	else if (t->active_group || strcmp(peer, t->active) != 0) {
		t->active_group = 0;
		snprintf(t->active, sizeof(t->active), "%s", peer);
		tty_set_prompt_text(t);
		printf("talking to %s: Enter sends to %s\n", peer, peer);
	}
	if (*rest != '\0')
		tty_say(t, rest, strlen(rest));
	return 0;
}

static int
tty_cmd_broadcast(struct tty *t, const struct tty_cmd *c, int argc, char **argv, const char *rest)
{
	struct msg_sent *s = NULL;
	size_t n = 0, i, len = strlen(rest);
	char when[16];
	int r;

	(void)c;
	(void)argc;
	(void)argv;
	r = msg_broadcast_text(t->ctx, rest, len, &s, &n);
	if (n == 0) {
		if (r == 0)
			printf("nobody else is online; nothing was sent\n");
		free(s);
		return r;
	}
	tty_now(when, sizeof(when));
	printf("%s %s -> everyone: ", when, t->ctx->username);
	text_print(stdout, rest, len);
	printf(" [sent to");
	for (i = 0; i < n; i++) {
		if (s[i].error == 0) {
			printf(" %s", s[i].to);
			tty_remember(t, s[i].to, s[i].msg_id, rest, len);
		}
	}
	printf("]\n");
	for (i = 0; i < n; i++)
		if (s[i].error != 0)
			printf("not sent to %s: %s\n", s[i].to, proto_error_string(s[i].error));
	free(s);
	return r;
}

/* /group ...: the one-shot sotto group, on this connection. */
static int
tty_cmd_group(struct tty *t, const struct tty_cmd *c, int argc, char **argv, const char *rest)
{
	int r;

	(void)c;
	(void)rest;
	r = cmd_group(t->ctx, argc, argv);
	fflush(stdout);
	/* A rename of the active group shows in the prompt. */
	if (r == 0 && t->active_group && argc > 1 && strcmp(argv[1], "rename") == 0) {
		struct client_group *g = NULL;
		char name[CLIENT_GROUP_NAME_MAX + 40];

		if (client_group_load(t->ctx->store, t->group_id, &g) == 0) {
			gops_display_name(name, sizeof(name), g);
			snprintf(t->active, sizeof(t->active), "#%s", name);
			tty_set_prompt_text(t);
		}
		client_group_free(g);
	}
	return r;
}

/* The one-shot command argv[0] (named as it is in the interactive table). */
static int
tty_cmd_oneshot(struct tty *t, const struct tty_cmd *c, int argc, char **argv, const char *rest)
{
	static const struct {
		const char *name;
		int (*fn)(struct sotto_ctx *, int, char **);
	} map[] = {
	        {"who", cmd_who},
	        {"seen", cmd_seen},
	        {"block", cmd_block},
	        {"unblock", cmd_block},
	        {"blocked", cmd_blocked},
	        {"fingerprint", cmd_fingerprint},
	        {"verify", cmd_verify},
	        {"trust", cmd_trust},
	        {"untrust", cmd_trust},
	        /* files */
	        {"sendfile", cmd_send_file},
	        {"files", cmd_file_list},
	        {"accept", cmd_file_accept},
	        {"discard", cmd_file_discard},
	};
	size_t i;
	int r;

	(void)rest;
	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		if (strcmp(map[i].name, c->name) != 0)
			continue;
		r = map[i].fn(t->ctx, argc, argv);
		fflush(stdout);
		/* A newly accepted key: the messages held back under it can come now. */
		if (r == 0 && t->held > 0 &&
		        (strcmp(c->name, "verify") == 0 || strcmp(c->name, "trust") == 0))
			r = tty_reconnect(t);
		return r;
	}
	return ctx_fail(SOTTO_EXIT_INTERNAL, "/%s is not wired up", c->name);
}

static int
tty_cmd_help(struct tty *t, const struct tty_cmd *c, int argc, char **argv, const char *rest)
{
	const struct tty_cmd *k;
	const char *want = argc > 1 ? argv[1] + (argv[1][0] == '/') : NULL;
	char use[64];

	(void)t;
	(void)c;
	(void)rest;
	for (k = tty_cmds; k->name != NULL; k++) {
		if (want != NULL && strcmp(want, k->name) != 0)
			continue;
		snprintf(use, sizeof(use), "/%s%s%s", k->name, k->args[0] ? " " : "", k->args);
		printf("%-22s %s\n", use, k->help);
		if (want != NULL)
			return 0;
	}
	if (want != NULL)
		return ctx_fail(SOTTO_EXIT_USAGE, "/%s: no such command; /help lists them", want);
	printf("Enter sends the line to the conversation named in the prompt; a line "
	       "starting with // sends it with one /.\n"
	       "A paste of more than %d lines is sent as one message once you say y.  "
	       "Ctrl-C clears the line, Ctrl-D leaves.\n",
	        TTY_PASTE_LINES);
	return 0;
}

static int
tty_cmd_quit(struct tty *t, const struct tty_cmd *c, int argc, char **argv, const char *rest)
{
	(void)c;
	(void)argc;
	(void)argv;
	(void)rest;
	tty_quit(t, SOTTO_EXIT_OK);
	return 0;
}

static const struct tty_cmd tty_cmds[] = {
        {"msg", "USER|#GROUP [TEXT]", 1, -1, tty_cmd_msg,
                "talk to USER (or in GROUP) from now on, and send TEXT if given"},
        {"query", "USER|#GROUP [TEXT]", 1, -1, tty_cmd_msg, "the same as /msg"},
        {"group", "create|add|remove|rename|leave|members|list ...", 1, TTY_ARGS - 1, tty_cmd_group,
                "groups, as sotto group does (/group alone says how)"},
        {"broadcast", "TEXT", 1, -1, tty_cmd_broadcast,
                "send TEXT to everyone online, encrypted for each"},
        {"who", "[--since S]", 0, 2, tty_cmd_oneshot,
                "who is online, and with --since who was in the last S seconds"},
        {"seen", "USER", 1, 1, tty_cmd_oneshot, "whether USER is online, or when last seen"},
        {"block", "USER", 1, 1, tty_cmd_oneshot, "have the server drop what USER sends you"},
        {"unblock", "USER", 1, 1, tty_cmd_oneshot, "stop blocking USER"},
        {"blocked", "", 0, 0, tty_cmd_oneshot, "the users you block"},
        {"fingerprint", "[USER]", 0, 1, tty_cmd_oneshot,
                "your key, or USER's key and your safety number with USER"},
        {"verify", "USER NUMBER", 2, TTY_ARGS - 2, tty_cmd_oneshot,
                "mark USER's key verified if NUMBER is your safety number"},
        {"trust", "USER", 1, 1, tty_cmd_oneshot, "accept the key the server has for USER"},
        {"untrust", "USER", 1, 1, tty_cmd_oneshot, "forget USER's key"},
        /* files */
        {"sendfile", "USER PATH | -g GROUP PATH", 2, 3, tty_cmd_oneshot,
                "send the file at PATH to USER, or to each member of GROUP"},
        {"files", "", 0, 0, tty_cmd_oneshot, "the files offered to you"},
        {"accept", "ID [PATH]", 1, 2, tty_cmd_oneshot,
                "download offer ID into the downloads directory, or to PATH"},
        {"discard", "ID", 1, 1, tty_cmd_oneshot, "refuse offer ID"},
        {"help", "[COMMAND]", 0, 1, tty_cmd_help, "this list, or one command's line"},
        {"quit", "", 0, 0, tty_cmd_quit, "leave (Ctrl-D too)"},
        {NULL, NULL, 0, 0, NULL, NULL},
};

/*
 * Split line into at most TTY_ARGS words (copied into buf); rest[i] is the
 * text of line after word i and the blanks that follow it.
 */
static int
tty_split(const char *line, char *buf, char **argv, const char **rest)
{
	size_t i = 0, o = 0;
	int argc = 0;

	for (;;) {
		while (line[i] == ' ' || line[i] == '\t')
			i++;
		if (argc > 0)
			rest[argc - 1] = line + i;
		if (line[i] == '\0' || argc == TTY_ARGS - 1)
			break;
		argv[argc++] = buf + o;
		while (line[i] != '\0' && line[i] != ' ' && line[i] != '\t')
			buf[o++] = line[i++];
		buf[o++] = '\0';
	}
	argv[argc] = NULL;
	return argc;
}

static void
tty_command(struct tty *t, const char *line)
{
	char *buf = NULL, *argv[TTY_ARGS + 1];
	const char *rest[TTY_ARGS];
	const struct tty_cmd *c;
	int argc;

	printf("%s", t->prompt);
	text_print(stdout, line, strlen(line));
	putchar('\n');
	if ((buf = malloc(strlen(line) + 1)) == NULL) {
		ctx_fail(SOTTO_EXIT_INTERNAL, "out of memory");
		return;
	}
	argc = tty_split(line + 1, buf, argv, rest);
	if (argc == 0) {
		ctx_fail(SOTTO_EXIT_USAGE, "a lone /: /help lists the commands");
		goto out;
	}
	for (c = tty_cmds; c->name != NULL; c++)
		if (strcmp(c->name, argv[0]) == 0)
			break;
	if (c->name == NULL) {
		fputs("sotto: /", stderr);
		text_print(stderr, argv[0], strlen(argv[0]));
		fputs(": unknown command; /help lists the commands\n", stderr);
		goto out;
	}
	if (argc - 1 < c->min || (c->max >= 0 && argc - 1 > c->max)) {
		ctx_fail(SOTTO_EXIT_USAGE, "usage: /%s %s", c->name, c->args);
		goto out;
	}
	/* The text after /msg USER, or after /broadcast, as typed. */
	c->fn(t, c, argc, argv, rest[strcmp(c->name, "broadcast") == 0 ? 0 : argc > 1 ? 1 : 0]);
out:
	free(buf);
}

/* One line the user entered (not part of a paste). */
static void
tty_line(struct tty *t, const char *line)
{
	if (line[0] == '\0')
		return;
	tty_hide(t);
	if (line[0] == '/' && line[1] != '/')
		tty_command(t, line);
	else if (line[0] == '/')
		tty_say(t, line + 1, strlen(line + 1));
	else
		tty_say(t, line, strlen(line));
	tty_drain(t);
}

/* ---- pastes ----------------------------------------------------------------------- */

static void
tty_paste_drop(struct tty *t)
{
	if (t->paste != NULL) {
		sotto_wipe(t->paste, t->pastelen);
		free(t->paste);
	}
	t->paste = NULL;
	t->pastelen = t->npaste = 0;
}

/* Add the burst's lines (NUL-terminated, one after another) to the paste waiting for an answer. */
static int
tty_paste_add(struct tty *t, const char *lines, size_t len, size_t n)
{
	char *p;
	size_t i, o = t->pastelen;

	if (len == 0)
		return 0;
	if ((p = realloc(t->paste, t->pastelen + len + 2)) == NULL)
		return ctx_fail(SOTTO_EXIT_INTERNAL, "out of memory");
	t->paste = p;
	if (t->npaste > 0)
		p[o++] = '\n';
	for (i = 0; i < len; i++)
		p[o++] = lines[i] == '\0' ? '\n' : lines[i];
	/* The last line's end is no part of the text. */
	p[--o] = '\0';
	t->pastelen = o;
	t->npaste += n;
	return 0;
}

static void
tty_paste_answer(struct tty *t, const char *answer)
{
	tty_hide(t);
	printf("%s%s\n", t->prompt, answer);
	if (strcasecmp(answer, "y") == 0 || strcasecmp(answer, "yes") == 0)
		tty_say(t, t->paste, t->pastelen);
	else
		printf("not sent\n");
	tty_paste_drop(t);
	tty_set_prompt_text(t);
	tty_drain(t);
}

static void
tty_burst_reset(struct tty *t)
{
	if (t->burst != NULL) {
		sotto_wipe(t->burst, t->burstlen);
		free(t->burst);
	}
	t->burst = NULL;
	t->burstlen = t->nburst = 0;
	t->burst_lost = 0;
}

/* The burst is over: act on its lines. */
static void
tty_on_burst(evutil_socket_t fd, short what, void *arg)
{
	struct tty *t = arg;
	const char *p;
	size_t i;

	(void)fd;
	(void)what;
	if (t->burst_lost) {
		tty_hide(t);
		ctx_fail(SOTTO_EXIT_USAGE, "that paste was longer than %d bytes; nothing was sent",
		        TTY_BURST_MAX);
		tty_paste_drop(t);
		tty_set_prompt_text(t);
		tty_burst_reset(t);
		tty_show(t);
		return;
	}
	if (t->paste != NULL && t->nburst == 1) {
		tty_paste_answer(t, t->burst);
	} else if (t->paste != NULL || t->nburst > TTY_PASTE_LINES) {
		tty_hide(t);
		if (t->active[0] == '\0') {
			ctx_fail(SOTTO_EXIT_USAGE,
			        "a paste of %zu lines, but no conversation to send it to: /msg "
			        "USER "
			        "opens one",
			        t->nburst);
		} else if (tty_paste_add(t, t->burst, t->burstlen, t->nburst) != 0) {
			tty_paste_drop(t);
		}
		tty_set_prompt_text(t);
		tty_show(t);
	} else {
		for (i = 0, p = t->burst; i < t->nburst && !t->done; i++, p += strlen(p) + 1)
			tty_line(t, p);
	}
	tty_burst_reset(t);
}

/* Keep a finished line for the burst it belongs to. */
static void
tty_burst_add(struct tty *t, const char *line, size_t len)
{
	struct timeval tv = {0, TTY_BURST_MS * 1000};
	char *p;

	if (!t->burst_lost && t->burstlen + len + 1 <= TTY_BURST_MAX &&
	        (p = realloc(t->burst, t->burstlen + len + 1)) != NULL) {
		t->burst = p;
		memcpy(p + t->burstlen, line, len);
		p[t->burstlen + len] = '\0';
		t->burstlen += len + 1;
		t->nburst++;
	} else
		t->burst_lost = 1;
	event_add(t->ev_burst, &tv);
}

/* ---- the terminal ----------------------------------------------------------------- */

/* Feed libedit one key; a finished line goes to the burst. */
static void
tty_key(struct tty *t)
{
	const char *buf;
	HistEvent he;
	size_t len;
	int n = 0;

	buf = el_gets(t->el, &n);
	if (buf == NULL) {
		if (n < 0 && errno != EINTR && errno != EAGAIN) {
			tty_hide(t);
			fprintf(stderr, "sotto: reading the terminal: %s\n", strerror(errno));
			tty_quit(t, SOTTO_EXIT_INTERNAL);
		}
		return;
	}
	if (n == 1 && buf[0] == TTY_CTRL('d')) {
		/* Ctrl-D on an empty line. */
		tty_hide(t);
		tty_quit(t, SOTTO_EXIT_OK);
		return;
	}
	if (n <= 0 || buf[n - 1] != '\n')
		return;
	len = (size_t)n - 1;
	/* libedit has moved below the line: erase its echo, the line shows as output. */
	fputs("\033[A", stdout);
	tty_erase_from(strlen(t->prompt) + tty_width(buf, len));
	if (len > 0 && t->paste == NULL) {
		char *copy = strndup(buf, len);

		if (copy != NULL) {
			history(t->hist, &he, H_ENTER, copy);
			sotto_wipe(copy, len);
			free(copy);
		}
	}
	tty_burst_add(t, buf, len);
	tty_new_line(t);
}

static void
tty_on_input(evutil_socket_t fd, short what, void *arg)
{
	struct tty *t = arg;
	int avail = 0;

	(void)fd;
	(void)what;
	/* Readable with nothing to read: the terminal is gone. */
	if (ioctl(STDIN_FILENO, FIONREAD, &avail) != 0 || avail <= 0) {
		tty_hide(t);
		tty_quit(t, SOTTO_EXIT_OK);
		return;
	}
	while (!t->done && avail > 0) {
		tty_key(t);
		if (ioctl(STDIN_FILENO, FIONREAD, &avail) != 0)
			break;
	}
}

static void
tty_on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct tty *t = arg;
	const LineInfo *li;

	(void)what;
	switch (sig) {
	case SIGINT:
		/* Like a shell: show the line with ^C, and start an empty one. */
		li = el_line(t->el);
		tty_hide(t);
		printf("%s", t->prompt);
		text_print(stdout, li->buffer, (size_t)(li->lastchar - li->buffer));
		printf("^C\n");
		if (t->paste != NULL) {
			printf("not sent\n");
			tty_paste_drop(t);
			tty_set_prompt_text(t);
		}
		tty_new_line(t);
		break;
	case SIGWINCH:
		tty_hide(t);
		el_resize(t->el);
		tty_show(t);
		break;
	case SIGTSTP:
		tty_hide(t);
		fflush(stdout);
		el_set(t->el, EL_PREP_TERM, 0);
		tty_restore_terminal();
		kill(getpid(), SIGSTOP);
		/* Continued. */
		el_set(t->el, EL_PREP_TERM, 1);
		tty_show(t);
		break;
	default: /* SIGTERM, SIGHUP */
		tty_hide(t);
		tty_quit(t, SOTTO_EXIT_OK);
		break;
	}
}

static int
tty_open(struct tty *t)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGWINCH, SIGTSTP};
	const struct timeval upkeep = {TTY_UPKEEP_SECS, 0};
	HistEvent he;
	size_t i;

	if (tcgetattr(STDIN_FILENO, &tty_saved) == 0 && !tty_saved_ok) {
		tty_saved_ok = 1;
		atexit(tty_restore_terminal);
	}
	if ((t->base = event_base_new()) == NULL)
		return ctx_fail(SOTTO_EXIT_INTERNAL, "cannot start the event loop");
	if ((t->hist = history_init()) == NULL ||
	        (t->el = el_init("sotto", stdin, stdout, stderr)) == NULL)
		return ctx_fail(SOTTO_EXIT_INTERNAL, "cannot start the line editor");
	history(t->hist, &he, H_SETSIZE, TTY_HISTORY);
	history(t->hist, &he, H_SETUNIQUE, 1);
	tty_set_prompt_text(t);
	el_set(t->el, EL_CLIENTDATA, t);
	el_set(t->el, EL_PROMPT, tty_prompt_fn);
	el_set(t->el, EL_EDITOR, "emacs");
	el_set(t->el, EL_SIGNAL, 0);
	el_set(t->el, EL_HIST, history, t->hist);
	el_source(t->el, NULL);
	t->ev_in = event_new(t->base, STDIN_FILENO, EV_READ | EV_PERSIST, tty_on_input, t);
	t->ev_burst = evtimer_new(t->base, tty_on_burst, t);
	t->ev_upkeep = event_new(t->base, -1, EV_PERSIST, tty_on_upkeep, t);
	if (t->ev_in == NULL || t->ev_burst == NULL || t->ev_upkeep == NULL ||
	        event_add(t->ev_in, NULL) != 0 || event_add(t->ev_upkeep, &upkeep) != 0)
		return ctx_fail(SOTTO_EXIT_INTERNAL, "cannot watch the terminal");
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		t->ev_sig[i] = evsignal_new(t->base, sigs[i], tty_on_signal, t);
		if (t->ev_sig[i] == NULL || event_add(t->ev_sig[i], NULL) != 0)
			return ctx_fail(SOTTO_EXIT_INTERNAL, "cannot catch signal %d", sigs[i]);
		t->nsig++;
	}
	return tty_watch_conn(t);
}

static void
tty_close(struct tty *t)
{
	size_t i;

	fflush(stdout);
	if (t->el != NULL) {
		el_set(t->el, EL_UNBUFFERED, 0);
		el_end(t->el);
	}
	tty_restore_terminal();
	if (t->hist != NULL)
		history_end(t->hist);
	for (i = 0; i < t->nsig; i++)
		event_free(t->ev_sig[i]);
	if (t->ev_in != NULL)
		event_free(t->ev_in);
	if (t->ev_conn != NULL)
		event_free(t->ev_conn);
	if (t->ev_burst != NULL)
		event_free(t->ev_burst);
	if (t->ev_upkeep != NULL)
		event_free(t->ev_upkeep);
	if (t->base != NULL)
		event_base_free(t->base);
	tty_burst_reset(t);
	tty_paste_drop(t);
}

int
interactive_run(struct sotto_ctx *ctx)
{
	struct tty t;
	Sotto__Frame *ok = NULL;
	int r;

	memset(&t, 0, sizeof(t));
	t.ctx = ctx;
	ctx->json = 0;
	setlocale(LC_CTYPE, "");
	if ((r = ctx_need_user(ctx)) != 0 || (r = ctx_need_server(ctx)) != 0 ||
	        (r = ctx_need_store(ctx)) != 0 || (r = ctx_login(ctx, &ok)) != 0 ||
	        (r = tty_open(&t)) != 0)
		goto out;
	printf("logged in as %s on %s; /msg USER opens a conversation, /help lists the "
	       "commands\n",
	        ctx->username, ctx->server);
	tty_new_line(&t);
	tty_drain(&t);
	if (!t.done)
		event_base_dispatch(t.base);
	r = t.rc;
out:
	tty_close(&t);
	frame_free(ok);
	return r;
}
