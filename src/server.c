/*
 * sottod's core: listeners, TLS connections, frame reading and dispatch,
 * timers, the reaper that frees dead connections, and the store batch that
 * is committed once per commit window.  Request handlers live in
 * server-*.c; see server.h.
 *
 * Each connection is a non-blocking socket watched by one persistent read
 * event.  OpenSSL does the TLS handshake on it (without read-ahead, so that
 * it reads nothing past the client's Finished), and its key-log callback
 * hands over the application traffic secrets; then the SSL object, about
 * 13 KiB that no public call slims down, is freed and src/tlsrec.c protects
 * the records.  A read pass takes what the socket holds with one read(2) into
 * a shared scratch buffer, opens the whole records into the connection's
 * plaintext input and hands every whole frame to its handler.  Replies and
 * pushes accumulate in the connection's output buffer, and one flush event at
 * the end of the loop pass seals each such buffer into the scratch buffer and
 * writes it with one write(2) per 64 KiB.  Only what the socket does not take
 * is kept per connection, and a write event is armed only then, so a busy
 * connection costs no epoll_ctl(2) and an idle one holds no buffers.  Should
 * the takeover fail (a suite tlsrec does not do), the connection goes on with
 * OpenSSL: SSL_read and SSL_write with read-ahead, one SSL_write per 16 KiB.
 * (bufferevent_openssl wrote one record and one write(2) per 1 KiB chunk of
 * its output and armed and disarmed EPOLLOUT around every flush.)
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "crypto/util.h"
#include "src/log.h"
#include "src/server.h"

#define SERVER_MAX_BODY 256

static const struct server_handler *server_handlers[SERVER_MAX_BODY];

static void server_read_frames(struct conn *c);
static void server_conn_read(struct conn *c);
static void server_conn_rec_alert(struct conn *c, uint8_t desc);
static void server_conn_wait_write(struct conn *c);

int64_t
server_now(void)
{
	return (int64_t)time(NULL);
}

int64_t
server_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
server_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec;
}

int64_t
server_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Build the body -> handler index from every family's table, once. */
static void
server_register_handlers(void)
{
	const struct server_handler *tables[] = {server_auth_handlers, server_prekey_handlers,
	        server_route_handlers, server_presence_handlers, server_group_handlers,
	        server_file_handlers};
	const struct server_handler *h;
	size_t i;

	for (i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		for (h = tables[i]; h->fn != NULL; h++) {
			if ((size_t)h->body < SERVER_MAX_BODY)
				server_handlers[h->body] = h;
		}
	}
}

static void
server_timer_add_ms(struct event *ev, int64_t ms)
{
	struct timeval tv;

	if (ms < 0)
		ms = 0;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
	event_add(ev, &tv);
}

struct conn *
server_conn_by_serial(struct server *srv, uint64_t serial)
{
	return hmap_get(srv->by_serial, &serial, sizeof(serial));
}

size_t
server_conn_outlen(const struct conn *c)
{
	size_t n = 0;

	if (c->out != NULL)
		n += evbuffer_get_length(c->out);
	if (c->raw_out != NULL)
		n += evbuffer_get_length(c->raw_out);
	return n;
}

/* c has output: put it on the list the end-of-pass flush writes. */
void
server_conn_dirty(struct conn *c)
{
	struct server *srv = c->srv;

	if (c->dirty || c->state == CONN_DEAD)
		return;
	if (TAILQ_EMPTY(&srv->dirty) && !srv->flushing)
		event_active(srv->flush_ev, EV_TIMEOUT, 0);
	TAILQ_INSERT_TAIL(&srv->dirty, c, dirty_entry);
	c->dirty = 1;
}

/* Frames go nowhere once the connection is closed or has sent its last one. */
static int
server_conn_writable(const struct conn *c)
{
	return c->state != CONN_DEAD && c->state != CONN_HANDSHAKE && !c->lingering;
}

int
server_send(struct conn *c, const Sotto__Frame *f)
{
	int r;

	if (!server_conn_writable(c))
		return SOTTO_ERR_CLOSED;
	if ((r = frame_write(c->out, f)) != 0)
		log_warn("%s: cannot queue a %s frame: %s", c->peer, frame_body_name(f),
		        sotto_strerror(r));
	server_conn_dirty(c);
	return r;
}

int
server_send_packed(struct conn *c, const uint8_t *frames, size_t n)
{
	if (!server_conn_writable(c))
		return SOTTO_ERR_CLOSED;
	if (evbuffer_add(c->out, frames, n) != 0) {
		log_warn("%s: cannot queue %zu bytes of frames: out of memory", c->peer, n);
		return SOTTO_ERR_NOMEM;
	}
	server_conn_dirty(c);
	return 0;
}

int
server_send_error(struct conn *c, uint64_t id, uint32_t code, const char *msg, uint32_t retry_after)
{
	if (!server_conn_writable(c))
		return SOTTO_ERR_CLOSED;
	log_debug("%s: request %llu: %s%s%s", c->peer, (unsigned long long)id,
	        proto_error_name(code), msg != NULL ? ": " : "", msg != NULL ? msg : "");
	server_conn_dirty(c);
	return frame_write_error(c->out, id, code, msg, retry_after);
}

int
server_send_ok(struct conn *c, uint64_t id)
{
	if (!server_conn_writable(c))
		return SOTTO_ERR_CLOSED;
	server_conn_dirty(c);
	return frame_write_ok(c->out, id);
}

/* Forget c's address slot entry once nothing refers to it. */
static void
server_slot_release(struct server *srv, struct conn *c)
{
	struct addr_slot *slot = c->slot;

	if (slot == NULL)
		return;
	c->slot = NULL;
	if (slot->conns > 0)
		slot->conns--;
	if (slot->conns == 0 && (slot->failures == 0 || server_mono() - slot->window_start >= 60)) {
		hmap_del(srv->addrs, slot->key, strlen(slot->key));
		free(slot);
	}
}

/* c no longer speaks for its user: the user goes offline, seen now. */
static void
server_conn_detach(struct conn *c)
{
	struct server *srv = c->srv;
	struct srv_user *u = c->user;

	if (u == NULL)
		return;
	server_route_conn_gone(c);
	server_file_conn_gone(c);
	if (u->conn == c) {
		u->conn = NULL;
		u->last_seen = server_now();
		if (server_batch(srv) == 0 &&
		        store_user_set_last_seen(srv->store, u->name, u->last_seen) != 0)
			log_warn("%s: cannot record last-seen time: %s", u->name,
			        store_last_error(srv->store));
	}
	c->user = NULL;
}

void
server_conn_close(struct conn *c)
{
	struct server *srv = c->srv;
	struct srv_user *u = c->user;

	if (c->state == CONN_DEAD)
		return;
	log_debug("%s: closed%s%s", c->peer, u != NULL ? " for " : "", u != NULL ? u->name : "");
	c->state = CONN_DEAD;
	server_conn_detach(c);
	hmap_del(srv->by_serial, &c->serial, sizeof(c->serial));
	server_slot_release(srv, c);
	if (c->rev != NULL)
		event_del(c->rev);
	if (c->wev != NULL)
		event_del(c->wev);
	if (c->dirty) {
		TAILQ_REMOVE(c->dirty == 2 ? &srv->flushing_now : &srv->dirty, c, dirty_entry);
		c->dirty = 0;
	}
	if (c->timer != NULL)
		event_del(c->timer);
	TAILQ_REMOVE(&srv->conns, c, entry);
	srv->n_conns--;
	TAILQ_INSERT_TAIL(&srv->dead, c, entry);
	event_active(srv->reap_ev, EV_TIMEOUT, 0);
}

void
server_conn_close_with(
        struct conn *c, uint64_t id, uint32_t code, const char *reason, uint32_t retry_after)
{
	if (c->state == CONN_DEAD || c->state == CONN_CLOSING)
		return;
	if (c->state == CONN_HANDSHAKE) {
		server_conn_close(c);
		return;
	}
	log_debug("%s: closing: %s%s%s", c->peer, proto_error_name(code), reason ? ": " : "",
	        reason ? reason : "");
	if (frame_write_closing(c->out, id, code, reason, retry_after) != 0) {
		server_conn_close(c);
		return;
	}
	server_conn_dirty(c);
	c->state = CONN_CLOSING;
	/* Nothing more reaches the user through c, so others see it offline now. */
	if (c->user != NULL)
		log_debug("%s: closing the session of %s", c->peer, c->user->name);
	server_conn_detach(c);
	/*
	 * Reads stay on, and server_read_frames discards what arrives: closing
	 * a socket with unread input makes the kernel send a reset, which can
	 * destroy the Closing frame before the client has read it.
	 */
	if (c->read_paused) {
		c->read_paused = 0;
		event_add(c->rev, NULL);
	}
	server_timer_add_ms(c->timer, SERVER_CLOSE_GRACE_MS);
}

/*
 * The final frame is on the wire: send FIN and wait (within the close grace
 * time) for the client to hang up, so that our close never races its input.
 */
static void
server_conn_linger(struct conn *c)
{
	if (c->lingering)
		return;
	c->lingering = 1;
	if (c->ssl == NULL)
		server_conn_rec_alert(c, TLSREC_ALERT_CLOSE_NOTIFY);
	if (shutdown(c->fd, SHUT_WR) != 0)
		server_conn_close(c);
}

/* Release what a connection holds; it is off every list and has no event pending. */
static void
server_conn_free(struct conn *c)
{
	if (c->rev != NULL)
		event_free(c->rev);
	if (c->wev != NULL)
		event_free(c->wev);
	if (c->timer != NULL)
		event_free(c->timer);
	free(c->rcpt);
	SSL_free(c->ssl);
	if (c->secrets != NULL) {
		sotto_wipe(c->secrets, sizeof(*c->secrets));
		free(c->secrets);
	}
	tlsrec_wipe(&c->rec);
	if (c->fd >= 0)
		evutil_closesocket(c->fd);
	if (c->in != NULL)
		evbuffer_free(c->in);
	if (c->out != NULL)
		evbuffer_free(c->out);
	if (c->raw_in != NULL)
		evbuffer_free(c->raw_in);
	if (c->raw_out != NULL)
		evbuffer_free(c->raw_out);
	free(c);
}

/* Free dead connections outside their own callbacks. */
static void
server_reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	struct conn *c;

	while ((c = TAILQ_FIRST(&srv->dead)) != NULL) {
		TAILQ_REMOVE(&srv->dead, c, entry);
		server_conn_free(c);
	}
	if (srv->stopping && srv->n_conns == 0)
		event_base_loopbreak(srv->base);
}

/* Refill the request bucket and take one token; 0 if the request may go on. */
static int
server_rate_take(struct conn *c)
{
	const struct config *cfg = c->srv->cfg;
	int64_t now = server_mono_ms();

	if (cfg->rate_limit == 0)
		return 0;
	c->tokens += (double)(now - c->tokens_at_ms) * cfg->rate_limit / 1000.0;
	if (c->tokens > cfg->rate_burst)
		c->tokens = cfg->rate_burst;
	c->tokens_at_ms = now;
	if (c->tokens < 1.0)
		return SOTTO_ERR_AGAIN;
	c->tokens -= 1.0;
	return 0;
}

/* Arm the connection timer for its state's deadline. */
static void
server_conn_arm(struct conn *c)
{
	const struct config *cfg = c->srv->cfg;
	int64_t left;

	switch (c->state) {
	case CONN_HANDSHAKE:
	case CONN_HELLO:
		server_timer_add_ms(c->timer, (int64_t)cfg->handshake_timeout * 1000);
		break;
	case CONN_AUTH:
		server_timer_add_ms(c->timer, (int64_t)cfg->auth_timeout * 1000);
		break;
	case CONN_READY:
		if (cfg->idle_timeout == 0) {
			event_del(c->timer);
			break;
		}
		/* In milliseconds: whole seconds would cut a session active a moment ago. */
		left = c->last_activity_ms + (int64_t)cfg->idle_timeout * 1000 - server_mono_ms();
		server_timer_add_ms(c->timer, left > 0 ? left : 0);
		break;
	default:
		break;
	}
}

/* Move c to state and arm its deadline. */
static void
server_conn_enter(struct conn *c, enum conn_state state)
{
	c->state = state;
	server_conn_arm(c);
}

void
server_conn_set_state(struct conn *c, enum conn_state state)
{
	if (state == CONN_READY)
		c->last_activity_ms = server_mono_ms();
	server_conn_enter(c, state);
}

static void
server_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	const struct config *cfg = c->srv->cfg;
	char reason[96];

	switch (c->state) {
	case CONN_HANDSHAKE:
		log_debug("%s: TLS handshake timed out", c->peer);
		server_conn_close(c);
		break;
	case CONN_HELLO:
		server_conn_close_with(c, 0, SOTTO__ERROR_CODE__ERR_TIMEOUT,
		        "no Hello within the handshake timeout", 0);
		break;
	case CONN_AUTH:
		snprintf(reason, sizeof(reason), "not logged in within %u seconds",
		        cfg->auth_timeout);
		server_conn_close_with(c, 0, SOTTO__ERROR_CODE__ERR_TIMEOUT, reason, 0);
		break;
	case CONN_READY:
		if (cfg->idle_timeout == 0)
			break;
		if (server_mono_ms() - c->last_activity_ms >= (int64_t)cfg->idle_timeout * 1000) {
			snprintf(reason, sizeof(reason), "idle for %u second%s", cfg->idle_timeout,
			        cfg->idle_timeout == 1 ? "" : "s");
			log_info("%s: %s: %s", c->peer, c->user ? c->user->name : "-", reason);
			server_conn_close_with(
			        c, 0, SOTTO__ERROR_CODE__ERR_IDLE_TIMEOUT, reason, 0);
		} else {
			server_conn_arm(c);
		}
		break;
	case CONN_CLOSING:
		server_conn_close(c);
		break;
	case CONN_DEAD:
		break;
	}
}

/* Route one decoded frame to its handler, enforcing state, ids and the rate limit. */
static void
server_dispatch(struct conn *c, uint64_t id, const Sotto__Frame *f)
{
	const struct server_handler *h = NULL;
	int r;

	if ((size_t)f->body_case < SERVER_MAX_BODY)
		h = server_handlers[f->body_case];
	if (h == NULL) {
		if (id == 0) {
			server_conn_close_with(
			        c, 0, SOTTO__ERROR_CODE__ERR_PROTOCOL, "unexpected message", 0);
			return;
		}
		server_send_error(
		        c, id, SOTTO__ERROR_CODE__ERR_UNKNOWN_TYPE, frame_body_name(f), 0);
		return;
	}
	if (id == 0 && !(h->flags & HANDLER_NOTIFY)) {
		server_conn_close_with(
		        c, 0, SOTTO__ERROR_CODE__ERR_PROTOCOL, "a request needs a non-zero id", 0);
		return;
	}
	/* Refused too early; a notification (id 0) gets no reply, not even an Error. */
	if (c->state == CONN_HELLO && f->body_case != SOTTO__FRAME__BODY_HELLO &&
	        f->body_case != SOTTO__FRAME__BODY_BYE) {
		if (id != 0)
			server_send_error(
			        c, id, SOTTO__ERROR_CODE__ERR_PROTOCOL, "send Hello first", 0);
		return;
	}
	if (c->state != CONN_READY && !(h->flags & HANDLER_PREAUTH)) {
		if (id != 0)
			server_send_error(c, id, SOTTO__ERROR_CODE__ERR_NOT_AUTHENTICATED, NULL, 0);
		return;
	}
	if (c->state == CONN_READY) {
		if (!(h->flags & HANDLER_NOLIMIT) && server_rate_take(c) != 0) {
			if (id != 0)
				server_send_error(
				        c, id, SOTTO__ERROR_CODE__ERR_RATE_LIMITED, NULL, 1);
			return;
		}
		if (!(h->flags & HANDLER_PASSIVE))
			c->last_activity_ms = server_mono_ms();
	}
	if ((r = h->fn(c, id, f)) < 0 && c->state != CONN_DEAD && c->state != CONN_CLOSING) {
		log_warn("%s: %s failed: %s", c->peer, frame_body_name(f), sotto_strerror(r));
		if (id != 0)
			server_send_error(c, id, SOTTO__ERROR_CODE__ERR_INTERNAL, NULL, 0);
	}
}

/*
 * A frame that cannot be read: the schema promises an Error (id 0) naming
 * the code, and Closing says the same to a client waiting on a reply.
 */
static void
server_refuse_frame(struct conn *c, uint32_t code, const char *why)
{
	server_send_error(c, 0, code, why, 0);
	server_conn_close_with(c, 0, code, why, 0);
}

/*
 * Hand the whole frames in c's input to their handlers, at most
 * SERVER_FRAMES_PER_PASS: a connection with more comes back after this pass's
 * flush, so that one busy peer (and the store writes its requests cause)
 * cannot hold everyone else's output back.
 */
static void
server_read_frames(struct conn *c)
{
	struct frame_arena *arena;
	struct evbuffer *in = c->in;
	Sotto__Frame *f;
	uint64_t id;
	size_t cap, n = 0;
	int r;

	while (c->state != CONN_DEAD && c->state != CONN_CLOSING && !c->read_paused) {
		if (n++ == SERVER_FRAMES_PER_PASS) {
			event_active(c->rev, EV_READ, 0);
			break;
		}
		cap = c->state == CONN_READY ? c->srv->cfg->max_frame
		                             : c->srv->cfg->max_frame_preauth;
		/* A frame lives only while it is handled: unpack it into the shared arena. */
		arena = c->srv->arena.used == 0 ? &c->srv->arena : NULL;
		r = frame_read_arena(in, cap, arena, &f, &id);
		if (r == SOTTO_ERR_AGAIN)
			break;
		if (r == SOTTO_ERR_RANGE) {
			log_info("%s: frame larger than %zu bytes; closing", c->peer, cap);
			server_refuse_frame(c, SOTTO__ERROR_CODE__ERR_TOO_LARGE, "frame too large");
			break;
		}
		if (r == SOTTO_ERR_FORMAT && id != 0) {
			server_send_error(c, id, SOTTO__ERROR_CODE__ERR_UNKNOWN_TYPE,
			        "unknown message type", 0);
			continue;
		}
		if (r != 0) {
			log_info("%s: undecodable frame; closing", c->peer);
			server_refuse_frame(
			        c, SOTTO__ERROR_CODE__ERR_PROTOCOL, "undecodable frame");
			break;
		}
		server_dispatch(c, f->id, f);
		frame_free_arena(f, arena);
		/*
		 * A client that sends requests but never reads replies would grow its
		 * output without bound: stop reading until it has drained to half.
		 */
		if (c->state != CONN_DEAD && c->state != CONN_CLOSING &&
		        server_conn_outlen(c) >= c->srv->cfg->output_high_water) {
			event_del(c->rev);
			c->read_paused = 1;
			break;
		}
	}
	if (c->state == CONN_CLOSING || c->state == CONN_DEAD)
		evbuffer_drain(in, evbuffer_get_length(in));
}

/*
 * After an SSL call on c returned r <= 0: 0 if it only has to wait for the
 * socket (the write event is armed when it waits to write), or -1 once c is
 * closed because the peer hung up or TLS failed.
 */
static int
server_conn_ssl_wait(struct conn *c, int r, const char *what)
{
	unsigned long e;
	char ebuf[160];

	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		return 0;
	case SSL_ERROR_WANT_WRITE:
		server_conn_wait_write(c);
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		log_debug("%s: TLS closed by the peer", c->peer);
		break;
	case SSL_ERROR_SYSCALL:
		if (errno != 0)
			log_debug("%s: %s: %s", c->peer, what, strerror(errno));
		break;
	default:
		if ((e = ERR_peek_error()) != 0) {
			ERR_error_string_n(e, ebuf, sizeof(ebuf));
			log_debug("%s: TLS error: %s", c->peer, ebuf);
		}
		break;
	}
	ERR_clear_error();
	server_conn_close(c);
	return -1;
}

/* An idle connection keeps no TLS record buffers (about 17 KiB each way). */
static void
server_conn_idle_buffers(struct conn *c)
{
	if (c->ssl != NULL && !SSL_has_pending(c->ssl) && evbuffer_get_length(c->out) == 0)
		(void)SSL_free_buffers(c->ssl);
}

/*
 * The handshake is done: take the connection over from OpenSSL, or (0 on
 * success either way) leave it with OpenSSL if tlsrec cannot.
 */
static int
server_conn_takeover(struct conn *c)
{
	struct tlsrec_secrets s;
	int r;

	memset(&s, 0, sizeof(s));
	if (c->secrets != NULL)
		s = *c->secrets;
	/*
	 * Without read-ahead OpenSSL holds nothing past the Finished; make sure.
	 * Our write sequence starts at 0, which is only right if OpenSSL sent no
	 * record under the application key: no session tickets (tls.c turns
	 * them off; should that change, connections stay with OpenSSL rather
	 * than reuse a nonce).
	 */
	r = SSL_has_pending(c->ssl) || SSL_get_num_tickets(c->ssl) != 0 ||
	                    c->srv->cfg->openssl_records
	            ? SOTTO_ERR_UNSUPPORTED
	            : tlsrec_init(&c->rec, c->srv->tlsrec, c->ssl, &s);
	sotto_wipe(&s, sizeof(s));
	if (c->secrets != NULL) {
		sotto_wipe(c->secrets, sizeof(*c->secrets));
		free(c->secrets);
		c->secrets = NULL;
	}
	if (r != 0) {
		log_debug("%s: staying with OpenSSL for this connection (%s)", c->peer,
		        SSL_get_cipher(c->ssl));
		SSL_set_read_ahead(c->ssl, 1);
		return 0;
	}
	SSL_free(c->ssl);
	c->ssl = NULL;
	return 0;
}

/* The handshake moved on: finish it, or wait for the socket. */
static void
server_conn_handshake(struct conn *c)
{
	int r;

	ERR_clear_error();
	errno = 0;
	if ((r = SSL_do_handshake(c->ssl)) != 1) {
		(void)server_conn_ssl_wait(c, r, "TLS handshake");
		return;
	}
	if (tls_exporter(c->ssl, c->exporter) != 0) {
		log_warn("%s: cannot export TLS keying material", c->peer);
		server_conn_close(c);
		return;
	}
	log_debug("%s: TLS established (%s)", c->peer, SSL_get_cipher(c->ssl));
	(void)server_conn_takeover(c);
	server_conn_enter(c, CONN_HELLO);
	/* Hello may have come in the same flight as the client's Finished. */
	server_conn_read(c);
}

/*
 * Read what the socket holds: read-ahead makes that one read(2), and SSL_read
 * then hands out its records without another system call.  Reading stops when
 * OpenSSL holds nothing more (a new read event comes if the socket does) or
 * after SERVER_READ_BUDGET bytes, so that one peer cannot hold the loop.
 */
static void
server_conn_read_ssl(struct conn *c)
{
	struct evbuffer_iovec v;
	size_t got = 0;
	int r, gone = 0;

	while (!c->read_paused && got < SERVER_READ_BUDGET) {
		if (evbuffer_reserve_space(c->in, SERVER_IO_CHUNK, &v, 1) != 1) {
			log_warn("%s: out of memory reading", c->peer);
			server_conn_close(c);
			return;
		}
		ERR_clear_error();
		errno = 0;
		if ((r = SSL_read(c->ssl, v.iov_base, (int)v.iov_len)) <= 0) {
			gone = server_conn_ssl_wait(c, r, "read") != 0;
			break;
		}
		v.iov_len = (size_t)r;
		evbuffer_commit_space(c->in, &v, 1);
		got += (size_t)r;
		if (!SSL_has_pending(c->ssl))
			break;
	}
	if (gone) {
		/* Closed: what arrived before the end is of no use to anyone now. */
		evbuffer_drain(c->in, evbuffer_get_length(c->in));
		return;
	}
	if (evbuffer_get_length(c->in) > 0)
		server_read_frames(c);
	if (c->state == CONN_DEAD)
		return;
	/* Stopped by the budget with records still in OpenSSL: no read event will say so. */
	if (!c->read_paused && SSL_has_pending(c->ssl))
		event_active(c->rev, EV_READ, 0);
	else
		server_conn_idle_buffers(c);
}

/* After output was written: finish a close, resume reading, or continue a drain. */
static void
server_conn_written(struct conn *c)
{
	size_t len = server_conn_outlen(c);

	if (c->state == CONN_CLOSING) {
		if (len == 0)
			server_conn_linger(c);
		return;
	}
	if (c->state == CONN_DEAD || len > c->srv->cfg->output_high_water / 2)
		return;
	if (c->read_paused) {
		c->read_paused = 0;
		event_add(c->rev, NULL);
		/* Frames already buffered bring no new read event: handle them now. */
		server_read_frames(c);
		if (c->state == CONN_DEAD || c->state == CONN_CLOSING)
			return;
	}
	if (c->state == CONN_READY && !c->live)
		server_route_drain(c);
	if (c->state == CONN_READY)
		server_file_pump(c);
}

/* The socket is full: the write event brings us back. */
static void
server_conn_wait_write(struct conn *c)
{
	if (!c->want_write) {
		c->want_write = 1;
		event_add(c->wev, NULL);
	}
}

/* Keep what the socket did not take, for the write event. */
static int
server_conn_stash(struct conn *c, const uint8_t *p, size_t n)
{
	if ((c->raw_out == NULL && (c->raw_out = evbuffer_new()) == NULL) ||
	        evbuffer_add(c->raw_out, p, n) != 0) {
		log_warn("%s: out of memory writing", c->peer);
		server_conn_close(c);
		return -1;
	}
	server_conn_wait_write(c);
	return 0;
}

/* write(2) what the scratch buffer holds; -1 once c is closed. */
static int
server_conn_send_raw(struct conn *c, const uint8_t *p, size_t n)
{
	ssize_t w;

	w = write(c->fd, p, n);
	if (w < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			log_debug("%s: write: %s", c->peer, strerror(errno));
			server_conn_close(c);
			return -1;
		}
		w = 0;
	}
	if ((size_t)w < n)
		return server_conn_stash(c, p + w, n - (size_t)w);
	return 0;
}

/* Seal and send one alert, best effort (the connection is ending). */
static void
server_conn_rec_alert(struct conn *c, uint8_t desc)
{
	size_t n;

	if (desc == TLSREC_ALERT_NONE ||
	        (c->raw_out != NULL && evbuffer_get_length(c->raw_out) > 0))
		return;
	if (tlsrec_seal_alert(&c->rec, c->srv->tlsrec, desc, c->srv->io, SERVER_IO_SCRATCH, &n) ==
	        0)
		(void)!write(c->fd, c->srv->io, n);
}

/*
 * Read what the socket holds (up to SERVER_READ_BUDGET) with one read(2),
 * after any record a previous read cut short, and open the whole records.
 */
static void
server_conn_read_rec(struct conn *c)
{
	struct server *srv = c->srv;
	size_t have = 0, used = 0;
	uint8_t alert = TLSREC_ALERT_NONE;
	ssize_t n;
	int r = 0, eof = 0;

	if (c->read_paused)
		return;
	if (c->raw_in != NULL && (have = evbuffer_get_length(c->raw_in)) > 0)
		(void)evbuffer_remove(c->raw_in, srv->io, have);
	n = read(c->fd, srv->io + have, SERVER_READ_BUDGET);
	if (n > 0) {
		have += (size_t)n;
	} else if (n == 0) {
		eof = 1;
	} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
		log_debug("%s: read: %s", c->peer, strerror(errno));
		eof = 1;
	}
	if (have > 0) {
		r = tlsrec_open(&c->rec, srv->tlsrec, srv->io, have, &used, c->in, &alert);
		if (r == 0 && used < have &&
		        ((c->raw_in == NULL && (c->raw_in = evbuffer_new()) == NULL) ||
		                evbuffer_add(c->raw_in, srv->io + used, have - used) != 0)) {
			log_warn("%s: out of memory reading", c->peer);
			server_conn_close(c);
			return;
		}
	}
	if (r == SOTTO_ERR_CLOSED) {
		log_debug("%s: TLS closed by the peer", c->peer);
		eof = 1;
	} else if (r != 0) {
		log_debug("%s: TLS error: %s (alert %u)", c->peer, sotto_strerror(r), alert);
		server_conn_rec_alert(c, alert);
		server_conn_close(c);
		return;
	}
	if (evbuffer_get_length(c->in) > 0)
		server_read_frames(c);
	if (c->state == CONN_DEAD)
		return;
	if (eof) {
		server_conn_close(c);
		return;
	}
	/* The peer asked for our KeyUpdate: it goes out with the next flush. */
	if (c->rec.update_due)
		server_conn_dirty(c);
}

static void
server_conn_read(struct conn *c)
{
	if (c->ssl != NULL)
		server_conn_read_ssl(c);
	else
		server_conn_read_rec(c);
}

/* Seal c's output into the scratch buffer and write it, until done or the socket is full. */
static void
server_conn_flush_rec(struct conn *c)
{
	struct server *srv = c->srv;
	size_t before = server_conn_outlen(c), n;
	int r;

	if (c->raw_out != NULL && evbuffer_get_length(c->raw_out) > 0) {
		if (evbuffer_write(c->raw_out, c->fd) < 0 && errno != EAGAIN &&
		        errno != EWOULDBLOCK && errno != EINTR) {
			log_debug("%s: write: %s", c->peer, strerror(errno));
			server_conn_close(c);
			return;
		}
		if (evbuffer_get_length(c->raw_out) > 0) {
			server_conn_wait_write(c);
			return;
		}
	}
	while (evbuffer_get_length(c->out) > 0 || c->rec.update_due) {
		if ((r = tlsrec_seal(
		             &c->rec, srv->tlsrec, c->out, srv->io, SERVER_IO_SCRATCH, &n)) != 0) {
			log_warn("%s: cannot protect a record: %s", c->peer, sotto_strerror(r));
			server_conn_close(c);
			return;
		}
		if (n == 0)
			break;
		if (server_conn_send_raw(c, srv->io, n) != 0)
			return;
		if (c->want_write)
			break;
	}
	if (server_conn_outlen(c) < before)
		server_conn_written(c);
}

/* Write c's output, one SSL_write per SERVER_IO_CHUNK, until done or the socket is full. */
static void
server_conn_flush(struct conn *c)
{
	size_t len, n, wrote = 0;
	unsigned char *p;
	int r;

	if (c->state == CONN_DEAD || c->state == CONN_HANDSHAKE || c->want_write)
		return;
	if (c->lingering) {
		evbuffer_drain(c->out, evbuffer_get_length(c->out));
		return;
	}
	if (c->ssl == NULL) {
		server_conn_flush_rec(c);
		return;
	}
	while ((len = evbuffer_get_length(c->out)) > 0) {
		n = len < SERVER_IO_CHUNK ? len : SERVER_IO_CHUNK;
		if ((p = evbuffer_pullup(c->out, (ev_ssize_t)n)) == NULL) {
			log_warn("%s: out of memory writing", c->peer);
			server_conn_close(c);
			return;
		}
		ERR_clear_error();
		errno = 0;
		if ((r = SSL_write(c->ssl, p, (int)n)) <= 0) {
			if (server_conn_ssl_wait(c, r, "write") != 0)
				return;
			break;
		}
		evbuffer_drain(c->out, (size_t)r);
		wrote += (size_t)r;
	}
	if (wrote > 0)
		server_conn_written(c);
	if (c->state != CONN_DEAD && !c->dirty)
		server_conn_idle_buffers(c);
}

/*
 * End of the loop pass: every connection with output writes it once.  One
 * refilled meanwhile (a queue drain that goes on as fast as its reader reads)
 * waits for the next pass, after the sockets have been read: otherwise a fast
 * reader with a long queue would keep the loop from everyone else.
 */
static void
server_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	static const struct timeval now = {0, 0};
	struct server *srv = arg;
	struct conn *c;

	TAILQ_CONCAT(&srv->flushing_now, &srv->dirty, dirty_entry);
	TAILQ_FOREACH(c, &srv->flushing_now, dirty_entry)
	c->dirty = 2;
	srv->flushing = 1;
	while ((c = TAILQ_FIRST(&srv->flushing_now)) != NULL) {
		TAILQ_REMOVE(&srv->flushing_now, c, dirty_entry);
		/* Still marked, so that the receipts' frame does not queue c again. */
		if (c->n_rcpt > 0)
			server_route_flush_receipts(c);
		c->dirty = 0;
		server_conn_flush(c);
	}
	srv->flushing = 0;
	if (!TAILQ_EMPTY(&srv->dirty))
		event_add(srv->flush_ev, &now);
}

static void
server_conn_readable_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	if (c->state == CONN_HANDSHAKE)
		server_conn_handshake(c);
	else if (c->state != CONN_DEAD)
		server_conn_read(c);
}

/* The socket takes more: go on with whatever OpenSSL was waiting to send. */
static void
server_conn_writable_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	c->want_write = 0;
	if (c->state == CONN_HANDSHAKE) {
		server_conn_handshake(c);
		return;
	}
	if (c->state == CONN_DEAD)
		return;
	server_conn_flush(c);
	/* A read that had to write first (a TLS alert or key update) can go on. */
	if (c->state != CONN_DEAD && !c->want_write && c->ssl != NULL && SSL_has_pending(c->ssl))
		server_conn_read(c);
}

/* Text form of a peer address for logs, and the key its counters are kept under. */
static void
server_addr_format(const struct sockaddr *sa, char *peer, size_t peerlen, char *key, size_t keylen)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
		/* A v4-mapped peer on a dual-stack socket counts as its IPv4 address. */
		if (strncmp(host, "::ffff:", 7) == 0 && strchr(host + 7, '.') != NULL)
			memmove(host, host + 7, strlen(host + 7) + 1);
	}
	snprintf(key, keylen, "%s", host);
	if (strchr(host, ':') != NULL)
		snprintf(peer, peerlen, "[%s]:%u", host, port);
	else
		snprintf(peer, peerlen, "%s:%u", host, port);
}

static void
server_accept_cb(
        struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct server *srv = arg;
	struct addr_slot *slot;
	struct conn *c = NULL;
	char key[48], peer[64];
	int one = 1;

	if (srv->stopping) {
		evutil_closesocket(fd);
		return;
	}
	server_addr_format(sa, peer, sizeof(peer), key, sizeof(key));
	if ((slot = hmap_get(srv->addrs, key, strlen(key))) == NULL) {
		if ((slot = calloc(1, sizeof(*slot))) == NULL)
			goto fail;
		snprintf(slot->key, sizeof(slot->key), "%s", key);
		if (hmap_put(srv->addrs, slot->key, strlen(slot->key), slot, NULL) != 0) {
			free(slot);
			goto fail;
		}
	}
	if (srv->cfg->max_conns_per_addr != 0 && slot->conns >= srv->cfg->max_conns_per_addr) {
		log_info(
		        "%s: refused: %u connections from this address already", peer, slot->conns);
		evutil_closesocket(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto fail;
	c->srv = srv;
	c->fd = -1;
	c->serial = ++srv->next_serial;
	c->slot = slot;
	slot->conns++;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	c->tokens = srv->cfg->rate_burst;
	c->tokens_at_ms = server_mono_ms();
	if ((c->ssl = SSL_new(srv->ssl_ctx)) == NULL || SSL_set_fd(c->ssl, fd) != 1)
		goto fail;
	c->fd = fd;
	fd = -1; /* the conn's now */
	SSL_set_accept_state(c->ssl);
	SSL_set_app_data(c->ssl, c);
	SSL_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if ((c->secrets = calloc(1, sizeof(*c->secrets))) == NULL)
		goto fail;
	if ((c->in = evbuffer_new()) == NULL || (c->out = evbuffer_new()) == NULL ||
	        (c->rev = event_new(srv->base, c->fd, EV_READ | EV_PERSIST, server_conn_readable_cb,
	                 c)) == NULL ||
	        (c->wev = event_new(srv->base, c->fd, EV_WRITE, server_conn_writable_cb, c)) ==
	                NULL ||
	        (c->timer = evtimer_new(srv->base, server_timer_cb, c)) == NULL)
		goto fail;
	if (hmap_put(srv->by_serial, &c->serial, sizeof(c->serial), c, NULL) != 0)
		goto fail;
	if (event_add(c->rev, NULL) != 0) {
		hmap_del(srv->by_serial, &c->serial, sizeof(c->serial));
		goto fail;
	}
	TAILQ_INSERT_TAIL(&srv->conns, c, entry);
	srv->n_conns++;
	server_conn_enter(c, CONN_HANDSHAKE);
	log_debug("%s: connected", c->peer);
	return;
fail:
	log_warn("%s: cannot accept: out of memory", peer);
	if (c != NULL) {
		server_slot_release(srv, c);
		server_conn_free(c);
	}
	if (fd >= 0)
		evutil_closesocket(fd);
}

static void
server_accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	size_t i;

	if (srv->stopping)
		return;
	srv->accept_paused = 0;
	for (i = 0; i < srv->n_listeners; i++)
		evconnlistener_enable(srv->listeners[i]);
}

/* Out of descriptors: stop accepting for a moment instead of spinning on the error. */
static void
server_accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct server *srv = arg;
	int err = EVUTIL_SOCKET_ERROR();
	size_t i;

	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		if (!srv->accept_paused)
			log_warn("accept: %s; pausing new connections for %d ms",
			        evutil_socket_error_to_string(err), SERVER_ACCEPT_BACKOFF_MS);
		srv->accept_paused = 1;
		for (i = 0; i < srv->n_listeners; i++)
			evconnlistener_disable(srv->listeners[i]);
		server_timer_add_ms(srv->accept_ev, SERVER_ACCEPT_BACKOFF_MS);
		return;
	}
	log_warn("accept: %s", evutil_socket_error_to_string(err));
}

static void
server_commit_cb(evutil_socket_t fd, short what, void *arg)
{
	server_commit(arg);
}

static void
server_prune_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	if (server_batch(srv) == 0 && store_prune(srv->store, server_now()) != 0)
		log_warn("cannot prune the store: %s", store_last_error(srv->store));
	server_route_prune(srv);
}

int
server_batch(struct server *srv)
{
	int r;

	if (store_in_batch(srv->store))
		return 0;
	if ((r = store_begin(srv->store)) != 0) {
		log_error("cannot begin a store transaction: %s", store_last_error(srv->store));
		return r;
	}
	server_commit_within(srv, srv->cfg->commit_window_ms);
	return 0;
}

void
server_commit_within(struct server *srv, int64_t delay_ms)
{
	server_commit_by(srv, server_mono_ms(), delay_ms);
}

void
server_commit_by(struct server *srv, int64_t now_ms, int64_t delay_ms)
{
	int64_t at;

	if (delay_ms < 0)
		delay_ms = 0;
	at = now_ms + delay_ms;
	if (srv->commit_at_ms != 0 && srv->commit_at_ms <= at)
		return;
	srv->commit_at_ms = at;
	server_timer_add_ms(srv->commit_ev, delay_ms);
}

/*
 * The transaction is opened only when something must be written: live
 * traffic acknowledged within live_wait_ms costs no transaction at all.
 */
void
server_commit(struct server *srv)
{
	struct commit_wait *w;
	struct conn *c;
	int r = 0, due;

	event_del(srv->commit_ev);
	srv->commit_at_ms = 0;
	due = server_route_due(srv);
	if (!due && !store_in_batch(srv->store) && TAILQ_EMPTY(&srv->commit_waits)) {
		server_route_rearm(srv);
		return;
	}
	if (!store_in_batch(srv->store) && (r = store_begin(srv->store)) != 0)
		log_error("cannot begin a store transaction: %s", store_last_error(srv->store));
	if (r == 0 && due)
		r = server_route_commit(srv);
	if (r == 0 && (r = store_commit(srv->store)) != 0)
		log_error("cannot commit to the store: %s", store_last_error(srv->store));
	if (r != 0 && store_in_batch(srv->store))
		store_rollback(srv->store);
	if (r != 0)
		server_group_forget_all(srv);
	server_route_after_commit(srv, r == 0);
	while ((w = TAILQ_FIRST(&srv->commit_waits)) != NULL) {
		TAILQ_REMOVE(&srv->commit_waits, w, entry);
		if ((c = server_conn_by_serial(srv, w->conn_serial)) != NULL) {
			if (r == 0)
				server_send_ok(c, w->id);
			else
				server_send_error(c, w->id, SOTTO__ERROR_CODE__ERR_INTERNAL,
				        "storage failure", 0);
		}
		free(w);
	}
	server_route_rearm(srv);
}

struct srv_user *
server_user(struct server *srv, const char *name)
{
	char norm[PROTO_USERNAME_MAX + 1];
	struct store_user su;
	struct srv_user *u;

	if (proto_username_normalize(norm, name) != 0)
		return NULL;
	if ((u = hmap_get(srv->users, norm, strlen(norm))) != NULL)
		return u;
	if (store_user_get(srv->store, norm, &su) != 0)
		return NULL;
	if ((u = calloc(1, sizeof(*u))) == NULL)
		return NULL;
	snprintf(u->name, sizeof(u->name), "%s", su.name);
	u->last_seen = su.last_seen;
	u->deleted = su.deleted;
	u->admin = su.admin;
	if (hmap_put(srv->users, u->name, strlen(u->name), u, NULL) != 0) {
		free(u);
		return NULL;
	}
	return u;
}

/* Key for the blocks index: "blocker\0blocked". */
static size_t
server_block_key(char *key, size_t cap, const char *blocker, const char *blocked)
{
	size_t a = strlen(blocker), b = strlen(blocked);

	if (a + 1 + b > cap)
		return 0;
	memcpy(key, blocker, a);
	key[a] = '\0';
	memcpy(key + a + 1, blocked, b);
	return a + 1 + b;
}

struct block_load {
	struct server *srv;
	const char *blocker;
};

static int
server_block_load_one(void *arg, const char *name, int64_t when)
{
	struct block_load *bl = arg;

	(void)when;
	server_block_set(bl->srv, bl->blocker, name, 1);
	return 0;
}

int
server_blocks(struct server *srv, struct srv_user *blocker, struct srv_user *blocked)
{
	char key[2 * (PROTO_USERNAME_MAX + 1)];
	struct block_load bl = {srv, blocker->name};
	size_t n;

	if (!blocker->blocks_loaded) {
		if (store_block_list(srv->store, blocker->name, STORE_LIST_MAX,
		            server_block_load_one, &bl) != 0) {
			log_warn("%s: cannot load the block list: %s", blocker->name,
			        store_last_error(srv->store));
			return 0;
		}
		blocker->blocks_loaded = 1;
	}
	/* Most users block nobody: no key to build or hash. */
	if (blocker->n_blocks == 0)
		return 0;
	n = server_block_key(key, sizeof(key), blocker->name, blocked->name);
	return n != 0 && hmap_get(srv->blocks, key, n) != NULL;
}

void
server_block_set(struct server *srv, const char *blocker, const char *blocked, int on)
{
	char key[2 * (PROTO_USERNAME_MAX + 1)];
	struct srv_user *u;
	void *old = NULL;
	size_t n;

	if (srv == NULL || (n = server_block_key(key, sizeof(key), blocker, blocked)) == 0)
		return;
	u = hmap_get(srv->users, blocker, strlen(blocker));
	if (on) {
		if (hmap_put(srv->blocks, key, n, (void *)1, &old) != 0)
			log_warn("cannot cache a block: out of memory");
		else if (old == NULL && u != NULL)
			u->n_blocks++;
	} else if (hmap_del(srv->blocks, key, n) != NULL && u != NULL && u->n_blocks > 0) {
		u->n_blocks--;
	}
}

/* OpenSSL names each secret as the handshake derives it; tlsrec keeps the ones it needs. */
static void
server_keylog_cb(const SSL *ssl, const char *line)
{
	struct conn *c = SSL_get_app_data(ssl);

	if (c != NULL && c->secrets != NULL)
		tlsrec_keylog(c->secrets, line);
}

int
server_new(struct server **out, struct event_base *base, struct config *cfg, struct store *st,
        SSL_CTX *ctx, char *err, size_t errlen)
{
	struct server *srv = NULL;
	int r = SOTTO_ERR_NOMEM;

	*out = NULL;
	server_register_handlers();
	if ((srv = calloc(1, sizeof(*srv))) == NULL)
		goto out;
	srv->base = base;
	srv->cfg = cfg;
	srv->store = st;
	srv->ssl_ctx = ctx;
	TAILQ_INIT(&srv->conns);
	TAILQ_INIT(&srv->dead);
	TAILQ_INIT(&srv->dirty);
	TAILQ_INIT(&srv->flushing_now);
	TAILQ_INIT(&srv->pending);
	TAILQ_INIT(&srv->inflight);
	TAILQ_INIT(&srv->committing);
	TAILQ_INIT(&srv->pool);
	TAILQ_INIT(&srv->commit_waits);
	if (hmap_new(&srv->users) != 0 || hmap_new(&srv->by_serial) != 0 ||
	        hmap_new(&srv->addrs) != 0 || hmap_new(&srv->blocks) != 0 ||
	        hmap_new(&srv->groups) != 0)
		goto out;
	if ((r = server_route_init(srv)) != 0 || (r = tlsrec_engine_new(&srv->tlsrec)) != 0)
		goto out;
	r = SOTTO_ERR_NOMEM;
	if ((srv->io = malloc(SERVER_IO_SCRATCH)) == NULL ||
	        (srv->arena.base = malloc(SERVER_FRAME_ARENA)) == NULL)
		goto out;
	srv->arena.cap = SERVER_FRAME_ARENA;
	SSL_CTX_set_keylog_callback(ctx, server_keylog_cb);
	if ((srv->reap_ev = event_new(base, -1, 0, server_reap_cb, srv)) == NULL ||
	        (srv->flush_ev = event_new(base, -1, 0, server_flush_cb, srv)) == NULL ||
	        (srv->commit_ev = evtimer_new(base, server_commit_cb, srv)) == NULL ||
	        (srv->accept_ev = evtimer_new(base, server_accept_resume_cb, srv)) == NULL ||
	        (srv->prune_ev = event_new(base, -1, EV_PERSIST, server_prune_cb, srv)) == NULL)
		goto out;
	server_timer_add_ms(srv->prune_ev, 3600 * 1000);
	if ((r = server_file_init(srv)) != 0)
		goto out;
	*out = srv;
	srv = NULL;
	r = 0;
out:
	if (r != 0)
		snprintf(err, errlen, "cannot set up the server: %s", sotto_strerror(r));
	server_free(srv);
	return r;
}

/* Open one listening socket; dual-stack for the IPv6 wildcard. */
static int
server_listen_one(struct server *srv, const struct config_listen *l, char *err, size_t errlen)
{
	struct addrinfo hints, *res = NULL, *ai;
	struct evconnlistener *lev, **nl;
	const char *host = l->host[0] != '\0' ? l->host : NULL;
	char shown[128], key[48];
	struct sockaddr_storage ss;
	socklen_t sslen;
	int fd = -1, one = 1, zero = 0, gai, r = SOTTO_ERR_IO, bound = 0, no_v6 = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	hints.ai_family = host == NULL ? AF_INET6 : AF_UNSPEC;
	if ((gai = getaddrinfo(host, l->port, &hints, &res)) != 0) {
		snprintf(err, errlen, "listen %s:%s: %s", l->host, l->port, gai_strerror(gai));
		return SOTTO_ERR_INVALID;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
		             ai->ai_protocol)) < 0) {
			if (errno == EAFNOSUPPORT)
				no_v6 = 1;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ai->ai_family == AF_INET6) {
			struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)ai->ai_addr;
			int wildcard = IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr);

			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, wildcard ? &zero : &one,
			        sizeof(int));
		}
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
			snprintf(err, errlen, "listen %s%s%s:%s: %s",
			        strchr(l->host, ':') ? "[" : "", l->host,
			        strchr(l->host, ':') ? "]" : "", l->port, strerror(errno));
			close(fd);
			fd = -1;
			continue;
		}
		lev = evconnlistener_new(srv->base, server_accept_cb, srv,
		        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
		if (lev == NULL) {
			close(fd);
			r = SOTTO_ERR_NOMEM;
			goto out;
		}
		evconnlistener_set_error_cb(lev, server_accept_error_cb);
		nl = realloc(srv->listeners, (srv->n_listeners + 1) * sizeof(*nl));
		if (nl == NULL) {
			evconnlistener_free(lev);
			r = SOTTO_ERR_NOMEM;
			goto out;
		}
		srv->listeners = nl;
		srv->listeners[srv->n_listeners++] = lev;
		sslen = sizeof(ss);
		if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == 0) {
			server_addr_format(
			        (struct sockaddr *)&ss, shown, sizeof(shown), key, sizeof(key));
			log_info("listening on %s", shown);
		}
		bound = 1;
	}
	if (!bound && no_v6 && (host == NULL || strcmp(host, "::") == 0)) {
		/* No IPv6 on this machine: fall back to the IPv4 wildcard. */
		struct config_listen v4 = {(char *)(uintptr_t) "0.0.0.0", l->port};

		freeaddrinfo(res);
		return server_listen_one(srv, &v4, err, errlen);
	}
	r = bound ? 0 : SOTTO_ERR_IO;
out:
	freeaddrinfo(res);
	return r;
}

int
server_listen(struct server *srv, char *err, size_t errlen)
{
	size_t i;
	int r;

	for (i = 0; i < srv->cfg->n_listen; i++) {
		if ((r = server_listen_one(srv, &srv->cfg->listen[i], err, errlen)) != 0)
			return r;
	}
	return 0;
}

static int
server_free_user(const void *key, size_t keylen, void *value, void *arg)
{
	free(value);
	return 0;
}

static int
server_free_slot(const void *key, size_t keylen, void *value, void *arg)
{
	free(value);
	return 0;
}

void
server_free(struct server *srv)
{
	struct commit_wait *w;
	struct conn *c;
	size_t i;

	if (srv == NULL)
		return;
	for (i = 0; i < srv->n_listeners; i++)
		evconnlistener_free(srv->listeners[i]);
	free(srv->listeners);
	while ((c = TAILQ_FIRST(&srv->conns)) != NULL)
		server_conn_close(c);
	if (srv->reap_ev != NULL)
		server_reap_cb(-1, 0, srv);
	server_file_free(srv);
	while ((w = TAILQ_FIRST(&srv->commit_waits)) != NULL) {
		TAILQ_REMOVE(&srv->commit_waits, w, entry);
		free(w);
	}
	if (srv->pending_idx.bucket != NULL)
		server_route_free(srv);
	if (srv->users != NULL) {
		hmap_foreach(srv->users, server_free_user, NULL);
		hmap_free(srv->users);
	}
	if (srv->addrs != NULL) {
		hmap_foreach(srv->addrs, server_free_slot, NULL);
		hmap_free(srv->addrs);
	}
	hmap_free(srv->by_serial);
	hmap_free(srv->blocks);
	idring_free(srv->recent);
	idbloom_free(srv->stored);
	server_group_forget_all(srv);
	hmap_free(srv->groups);
	tlsrec_engine_free(srv->tlsrec);
	free(srv->io);
	free(srv->arena.base);
	if (srv->reap_ev != NULL)
		event_free(srv->reap_ev);
	if (srv->flush_ev != NULL)
		event_free(srv->flush_ev);
	if (srv->commit_ev != NULL)
		event_free(srv->commit_ev);
	if (srv->accept_ev != NULL)
		event_free(srv->accept_ev);
	if (srv->prune_ev != NULL)
		event_free(srv->prune_ev);
	free(srv);
}

void
server_shutdown(struct server *srv, const char *reason)
{
	struct conn *c, *next;
	struct timeval tv = {SERVER_CLOSE_GRACE_MS / 1000 + 1, 0};
	size_t i;

	if (srv->stopping)
		return;
	srv->stopping = 1;
	log_info("shutting down: %s", reason);
	for (i = 0; i < srv->n_listeners; i++)
		evconnlistener_free(srv->listeners[i]);
	srv->n_listeners = 0;
	server_commit(srv);
	for (c = TAILQ_FIRST(&srv->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		server_conn_close_with(c, 0, SOTTO__ERROR_CODE__ERR_SHUTTING_DOWN, reason, 0);
	}
	/* Closing conns set last-seen times: commit those too. */
	server_commit(srv);
	if (srv->n_conns == 0)
		event_base_loopbreak(srv->base);
	else
		event_base_loopexit(srv->base, &tv);
}

void
server_reload(struct server *srv, struct config *cfg, SSL_CTX *ctx)
{
	srv->cfg = cfg;
	if (ctx != NULL) {
		SSL_CTX_set_keylog_callback(ctx, server_keylog_cb);
		SSL_CTX_free(srv->ssl_ctx);
		srv->ssl_ctx = ctx;
	}
}
