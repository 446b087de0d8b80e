/* The client side of the protocol; see client-conn.h. */
#include "config.h"

#include <sys/socket.h>
#include <sys/types.h>

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "crypto/buf.h"
#include "crypto/util.h"
#include "src/client-conn.h"
#include "src/proto.h"
#include "src/sigmsg.h"

struct push_item {
	struct push_item *next;
	Sotto__Frame *f;
};

struct client_conn {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	int timeout_ms;
	uint64_t next_id;
	uint8_t spki[TLS_SPKI_HASH_BYTES];
	uint8_t challenge[PROTO_CHALLENGE_BYTES];
	uint8_t exporter[TLS_EXPORTER_BYTES];
	uint32_t registration;
	uint32_t max_frame;
	int authed;
	int closed; /* the server sent Closing or hung up */
	int corked; /* frames wait in the write buffer until it fills, or for input */
	struct buf in;
	struct push_item *head, *tail;
	size_t npush;
	struct client_remote_error remote;
	char err[512];
};

static void client_set_err(struct client_conn *c, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void
client_set_err(struct client_conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
}

static int64_t
client_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left until deadline (-1 deadline: forever). */
static int
client_left(int64_t deadline)
{
	int64_t left;

	if (deadline < 0)
		return -1;
	left = deadline - client_now_ms();
	return left > 0 ? (int)(left > 86400000 ? 86400000 : left) : 0;
}

int
client_parse_hostport(const char *s, char **host, char **port)
{
	const char *colon, *end;
	int r = SOTTO_ERR_FORMAT;

	*host = *port = NULL;
	if (s == NULL || *s == '\0')
		return SOTTO_ERR_FORMAT;
	if (*s == '[') {
		if ((end = strchr(s, ']')) == NULL || end == s + 1)
			goto out;
		*host = strndup(s + 1, (size_t)(end - s - 1));
		if (end[1] == ':' && end[2] != '\0')
			*port = strdup(end + 2);
		else if (end[1] == '\0')
			*port = strdup(CLIENT_DEFAULT_PORT);
		else
			goto out;
	} else if ((colon = strrchr(s, ':')) != NULL && strchr(s, ':') == colon) {
		if (colon == s || colon[1] == '\0')
			goto out;
		*host = strndup(s, (size_t)(colon - s));
		*port = strdup(colon + 1);
	} else {
		/* A bare name, or a bare IPv6 address with several colons. */
		*host = strdup(s);
		*port = strdup(CLIENT_DEFAULT_PORT);
	}
	if (*host == NULL || *port == NULL) {
		r = SOTTO_ERR_NOMEM;
		goto out;
	}
	return 0;
out:
	free(*host);
	free(*port);
	*host = *port = NULL;
	return r;
}

/* Connect with a deadline: non-blocking connect, then poll for writability. */
static int
client_tcp_connect(struct client_conn *c, const struct client_opts *o)
{
	struct addrinfo hints, *res = NULL, *ai;
	char host[NI_MAXHOST];
	const char *port = o->port != NULL ? o->port : CLIENT_DEFAULT_PORT;
	int fd = -1, gai, one = 1, soerr;
	socklen_t slen;
	struct pollfd pfd;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = o->family;
	hints.ai_socktype = SOCK_STREAM;
	if ((gai = getaddrinfo(o->host, port, &hints, &res)) != 0) {
		client_set_err(c, "cannot resolve %s: %s", o->host, gai_strerror(gai));
		return SOTTO_ERR_IO;
	}
	client_set_err(c, "cannot connect to %s port %s", o->host, port);
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
		             ai->ai_protocol)) < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS)
			goto next;
		pfd.fd = fd;
		pfd.events = POLLOUT;
		if (poll(&pfd, 1, c->timeout_ms) != 1) {
			errno = ETIMEDOUT;
			goto next;
		}
		slen = sizeof(soerr);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) != 0 || soerr != 0) {
			errno = soerr;
			goto next;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->fd = fd;
		freeaddrinfo(res);
		return 0;
	next:
		if (getnameinfo(ai->ai_addr, ai->ai_addrlen, host, sizeof(host), NULL, 0,
		            NI_NUMERICHOST) != 0)
			snprintf(host, sizeof(host), "%s", o->host);
		client_set_err(c, "cannot connect to %s port %s: %s", host, port, strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return SOTTO_ERR_IO;
}

/* Wait for the socket per SSL's wish; 0, or SOTTO_ERR_AGAIN at the deadline. */
static int
client_wait(struct client_conn *c, int want_write, int64_t deadline)
{
	struct pollfd pfd;
	int n;

	pfd.fd = c->fd;
	pfd.events = want_write ? POLLOUT : POLLIN;
	do {
		n = poll(&pfd, 1, client_left(deadline));
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		client_set_err(c, "poll: %s", strerror(errno));
		return SOTTO_ERR_IO;
	}
	return n == 0 ? SOTTO_ERR_AGAIN : 0;
}

static int
client_ssl_error(struct client_conn *c, int ret, const char *what)
{
	int e = SSL_get_error(c->ssl, ret);
	unsigned long le = ERR_peek_last_error();
	char buf[200];

	if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && le == 0)) {
		c->closed = 1;
		client_set_err(c, "the server closed the connection");
		ERR_clear_error();
		return SOTTO_ERR_CLOSED;
	}
	if (le != 0) {
		ERR_error_string_n(le, buf, sizeof(buf));
		client_set_err(c, "TLS %s failed: %s", what, buf);
	} else {
		client_set_err(c, "TLS %s failed: %s", what, strerror(errno));
	}
	ERR_clear_error();
	return SOTTO_ERR_IO;
}

/*
 * Write out what the buffering BIO holds (see client_tls_tune), waiting for
 * the socket up to deadline.
 */
static int
client_flush(struct client_conn *c, int64_t deadline)
{
	BIO *b = SSL_get_wbio(c->ssl);
	int r;

	while (b != NULL && BIO_wpending(b) > 0) {
		if (BIO_flush(b) > 0)
			break;
		if (!BIO_should_retry(b)) {
			c->closed = 1;
			client_set_err(c, "the server closed the connection");
			ERR_clear_error();
			return SOTTO_ERR_CLOSED;
		}
		if ((r = client_wait(c, BIO_should_read(b) ? 0 : 1, deadline)) == SOTTO_ERR_AGAIN) {
			client_set_err(c, "timed out writing to the server");
			return SOTTO_ERR_IO;
		}
		if (r != 0)
			return r;
	}
	return 0;
}

static int
client_write_all(struct client_conn *c, const uint8_t *p, size_t len)
{
	int64_t deadline = client_now_ms() + c->timeout_ms;
	int n, r;

	while (len > 0) {
		n = SSL_write(c->ssl, p, len > INT32_MAX ? INT32_MAX : (int)len);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		switch (SSL_get_error(c->ssl, n)) {
		case SSL_ERROR_WANT_READ:
			r = client_wait(c, 0, deadline);
			break;
		case SSL_ERROR_WANT_WRITE:
			r = client_wait(c, 1, deadline);
			break;
		default:
			return client_ssl_error(c, n, "write");
		}
		if (r == SOTTO_ERR_AGAIN) {
			client_set_err(c, "timed out writing to the server");
			return SOTTO_ERR_IO;
		}
		if (r != 0)
			return r;
	}
	return c->corked ? 0 : client_flush(c, deadline);
}

void
client_conn_cork(struct client_conn *c, int on)
{
	c->corked = on != 0;
}

int
client_conn_write_raw(struct client_conn *c, const void *data, size_t len)
{
	return client_write_all(c, data, len);
}

static int
client_send_frame(struct client_conn *c, const Sotto__Frame *f)
{
	uint8_t *enc = NULL;
	size_t len;
	int r;

	if ((r = frame_encode(f, &enc, &len)) != 0) {
		client_set_err(
		        c, "cannot encode a %s frame: %s", frame_body_name(f), sotto_strerror(r));
		return r;
	}
	r = client_write_all(c, enc, len);
	free(enc);
	return r;
}

/* Read what TLS has into c->in, waiting up to deadline for at least something. */
static int
client_fill(struct client_conn *c, int64_t deadline)
{
	uint8_t *p;
	int n, r;

	for (;;) {
		if ((r = buf_reserve(&c->in, 16384, &p)) != 0)
			return r;
		n = SSL_read(c->ssl, p, 16384);
		if (n > 0) {
			/* Give back what was reserved but not read. */
			c->in.size -= 16384 - (size_t)n;
			return 0;
		}
		c->in.size -= 16384;
		switch (SSL_get_error(c->ssl, n)) {
		case SSL_ERROR_WANT_READ:
			/* Anything OpenSSL queued meanwhile (a KeyUpdate) goes out first. */
			if ((r = client_flush(c, deadline)) == 0)
				r = client_wait(c, 0, deadline);
			break;
		case SSL_ERROR_WANT_WRITE:
			r = client_wait(c, 1, deadline);
			break;
		default:
			return client_ssl_error(c, n, "read");
		}
		if (r != 0)
			return r;
	}
}

/* Decode one frame from c->in if a whole one is there. */
static int
client_decode(struct client_conn *c, Sotto__Frame **out)
{
	size_t used = 0, cap;
	uint64_t id = 0;
	int r;

	*out = NULL;
	cap = (c->authed ? c->max_frame : FRAME_MAX_PREAUTH_DEFAULT) + FRAME_PUSH_SLACK;
	if (cap > FRAME_MAX_LIMIT)
		cap = FRAME_MAX_LIMIT;
	r = frame_decode(buf_ptr(&c->in), buf_len(&c->in), cap, out, &used, &id);
	if (r == SOTTO_ERR_AGAIN)
		return r;
	if (r == SOTTO_ERR_RANGE) {
		client_set_err(c, "the server sent a frame larger than %zu bytes", cap);
		return SOTTO_ERR_PROTO;
	}
	if (buf_skip(&c->in, used) != 0)
		return SOTTO_ERR_PROTO;
	if (r == SOTTO_ERR_FORMAT) {
		/* A newer server's message this client does not know: skip it. */
		return SOTTO_ERR_AGAIN;
	}
	return r;
}

/* Note a Closing frame's reason; the connection is over. */
static void
client_note_closing(struct client_conn *c, const Sotto__Closing *cl)
{
	c->closed = 1;
	c->remote.code = cl->code;
	c->remote.retry_after = cl->retry_after;
	snprintf(c->remote.message, sizeof(c->remote.message), "%s",
	        cl->reason != NULL ? cl->reason : "");
	if (cl->code == SOTTO__ERROR_CODE__ERR_NONE)
		client_set_err(c, "the server closed the connection");
	else
		client_set_err(c, "the server closed the connection: %s%s%s",
		        proto_error_string(cl->code), c->remote.message[0] ? ": " : "",
		        c->remote.message);
}

static int
client_queue_push(struct client_conn *c, Sotto__Frame *f)
{
	struct push_item *it;

	if (c->npush >= CLIENT_PUSH_QUEUE_MAX || (it = calloc(1, sizeof(*it))) == NULL) {
		client_set_err(c, "too many unread messages from the server");
		frame_free(f);
		return SOTTO_ERR_RANGE;
	}
	it->f = f;
	if (c->tail != NULL)
		c->tail->next = it;
	else
		c->head = it;
	c->tail = it;
	c->npush++;
	return 0;
}

int
client_conn_requeue(struct client_conn *c, Sotto__Frame *f)
{
	return client_queue_push(c, f);
}

/* The next frame from the wire, waiting until deadline. */
static int
client_read_frame(struct client_conn *c, Sotto__Frame **out, int64_t deadline)
{
	int r;

	*out = NULL;
	for (;;) {
		r = client_decode(c, out);
		if (r != SOTTO_ERR_AGAIN)
			return r;
		if (c->closed)
			return SOTTO_ERR_CLOSED;
		if ((r = client_fill(c, deadline)) != 0)
			return r;
	}
}

static void
client_set_remote(struct client_conn *c, const Sotto__Error *e)
{
	c->remote.code = e->code;
	c->remote.retry_after = e->retry_after;
	snprintf(c->remote.message, sizeof(c->remote.message), "%s",
	        e->message != NULL ? e->message : "");
	client_set_err(c, "%s%s%s", proto_error_string(e->code), c->remote.message[0] ? ": " : "",
	        c->remote.message);
}

int
client_conn_request(struct client_conn *c, Sotto__Frame *req, Sotto__Frame **reply, int timeout_ms)
{
	int64_t deadline;
	Sotto__Frame *f = NULL;
	int r;

	*reply = NULL;
	if (c->closed) {
		client_set_err(c, "the connection is closed");
		return SOTTO_ERR_CLOSED;
	}
	req->id = ++c->next_id;
	if ((r = client_send_frame(c, req)) != 0)
		return r;
	deadline =
	        timeout_ms < 0 ? -1 : client_now_ms() + (timeout_ms ? timeout_ms : c->timeout_ms);
	for (;;) {
		if ((r = client_read_frame(c, &f, deadline)) != 0) {
			if (r == SOTTO_ERR_AGAIN)
				client_set_err(c, "no answer from the server within %d ms",
				        timeout_ms ? timeout_ms : c->timeout_ms);
			return r == SOTTO_ERR_AGAIN ? SOTTO_ERR_IO : r;
		}
		if (f->id == req->id) {
			*reply = f;
			if (f->body_case == SOTTO__FRAME__BODY_ERROR) {
				client_set_remote(c, f->error);
				return SOTTO_ERR_PERM;
			}
			return 0;
		}
		if (f->body_case == SOTTO__FRAME__BODY_CLOSING) {
			client_note_closing(c, f->closing);
			frame_free(f);
			return SOTTO_ERR_CLOSED;
		}
		if (f->id == 0) {
			if ((r = client_queue_push(c, f)) != 0)
				return r;
			continue;
		}
		/* A reply to a request we no longer wait for. */
		frame_free(f);
	}
}

int
client_conn_notify(struct client_conn *c, Sotto__Frame *f)
{
	f->id = 0;
	return client_send_frame(c, f);
}

int
client_conn_send(struct client_conn *c, Sotto__Frame *req, uint64_t *id)
{
	*id = 0;
	if (c->closed) {
		client_set_err(c, "the connection is closed");
		return SOTTO_ERR_CLOSED;
	}
	req->id = ++c->next_id;
	*id = req->id;
	return client_send_frame(c, req);
}

int
client_conn_next_push(struct client_conn *c, Sotto__Frame **push, int timeout_ms)
{
	struct push_item *it;
	Sotto__Frame *f;
	int64_t deadline;
	int r;

	*push = NULL;
	if ((it = c->head) != NULL) {
		c->head = it->next;
		if (c->head == NULL)
			c->tail = NULL;
		c->npush--;
		*push = it->f;
		free(it);
		return 0;
	}
	deadline = timeout_ms < 0 ? -1 : client_now_ms() + timeout_ms;
	for (;;) {
		r = client_read_frame(c, &f, deadline);
		if (r != 0)
			return r;
		if (f->id != 0) {
			frame_free(f);
			continue;
		}
		if (f->body_case == SOTTO__FRAME__BODY_CLOSING)
			client_note_closing(c, f->closing);
		*push = f;
		return 0;
	}
}

int
client_conn_next_frame(struct client_conn *c, Sotto__Frame **f, int timeout_ms)
{
	int r;

	*f = NULL;
	if (c->head != NULL)
		return client_conn_next_push(c, f, 0);
	r = client_read_frame(c, f, timeout_ms < 0 ? -1 : client_now_ms() + timeout_ms);
	if (r == 0 && (*f)->body_case == SOTTO__FRAME__BODY_CLOSING)
		client_note_closing(c, (*f)->closing);
	return r;
}

size_t
client_conn_pending(const struct client_conn *c)
{
	return c->npush + (buf_len(&c->in) > 0 ? 1 : 0) + (size_t)SSL_has_pending(c->ssl);
}

int
client_conn_authed(const struct client_conn *c)
{
	return c->authed;
}

int
client_conn_fd(const struct client_conn *c)
{
	return c->fd;
}

const uint8_t *
client_conn_server_spki(const struct client_conn *c)
{
	return c->spki;
}

uint32_t
client_conn_registration(const struct client_conn *c)
{
	return c->registration;
}

uint32_t
client_conn_max_frame(const struct client_conn *c)
{
	return c->max_frame;
}

const char *
client_conn_error(const struct client_conn *c)
{
	return c->err;
}

const struct client_remote_error *
client_conn_remote(const struct client_conn *c)
{
	return &c->remote;
}

/* TLS handshake with a deadline, then the pin check and the exporter. */
static int
client_tls(struct client_conn *c, const struct client_opts *o)
{
	int64_t deadline = client_now_ms() + c->timeout_ms;
	char fp[80], want[80];
	int n, r;

	if ((c->ssl = SSL_new(c->ctx)) == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
		client_set_err(c, "cannot set up TLS");
		return SOTTO_ERR_CRYPTO;
	}
	if (tls_client_set_host(c->ssl, o->host) != 0) {
		client_set_err(c, "cannot set the TLS host name %s", o->host);
		return SOTTO_ERR_INVALID;
	}
	for (;;) {
		if ((n = SSL_connect(c->ssl)) == 1)
			break;
		switch (SSL_get_error(c->ssl, n)) {
		case SSL_ERROR_WANT_READ:
			r = client_wait(c, 0, deadline);
			break;
		case SSL_ERROR_WANT_WRITE:
			r = client_wait(c, 1, deadline);
			break;
		default:
			r = client_ssl_error(c, n, "handshake");
			if (o->ca_path != NULL && SSL_get_verify_result(c->ssl) != X509_V_OK)
				client_set_err(c,
				        "the server certificate did not verify against %s: %s",
				        o->ca_path,
				        X509_verify_cert_error_string(
				                SSL_get_verify_result(c->ssl)));
			return r == SOTTO_ERR_CLOSED ? SOTTO_ERR_IO : r;
		}
		if (r == SOTTO_ERR_AGAIN) {
			client_set_err(c, "TLS handshake with %s timed out", o->host);
			return SOTTO_ERR_IO;
		}
		if (r != 0)
			return r;
	}
	if (tls_peer_spki_sha256(c->ssl, c->spki) != 0) {
		client_set_err(c, "the server sent no certificate");
		return SOTTO_ERR_VERIFY;
	}
	if (o->pin != NULL && !sotto_memeq(o->pin, c->spki, TLS_SPKI_HASH_BYTES)) {
		tls_format_fingerprint(fp, sizeof(fp), c->spki);
		tls_format_fingerprint(want, sizeof(want), o->pin);
		client_set_err(c, "the server's key is %s, not the expected %s", fp, want);
		return SOTTO_ERR_VERIFY;
	}
	if (tls_exporter(c->ssl, c->exporter) != 0) {
		client_set_err(c, "cannot export TLS keying material");
		return SOTTO_ERR_CRYPTO;
	}
	return 0;
}

/*
 * After the handshake: read ahead, so that one read(2) takes in many
 * records, and write through a buffer flushed once per frame, so that a
 * large frame leaves in one write(2) rather than one per 16 KiB record.
 */
static int
client_tls_tune(struct client_conn *c)
{
	BIO *sock = SSL_get_rbio(c->ssl), *b;

	SSL_clear_mode(c->ssl, SSL_MODE_RELEASE_BUFFERS);
	SSL_set_default_read_buffer_len(c->ssl, CLIENT_IO_BUFFER);
	SSL_set_read_ahead(c->ssl, 1);
	if (sock == NULL || (b = BIO_new(BIO_f_buffer())) == NULL)
		goto fail;
	if (BIO_set_write_buffer_size(b, CLIENT_IO_BUFFER) != 1 || BIO_up_ref(sock) != 1) {
		BIO_free(b);
		goto fail;
	}
	/* The buffer owns one reference to the socket BIO, the read side the other. */
	BIO_push(b, sock);
	SSL_set0_wbio(c->ssl, b);
	return 0;
fail:
	client_set_err(c, "cannot set up TLS buffers");
	ERR_clear_error();
	return SOTTO_ERR_NOMEM;
}

static int
client_hello(struct client_conn *c, const struct client_opts *o)
{
	Sotto__Frame req, *rep = NULL;
	Sotto__Hello h;
	int r;

	sotto__hello__init(&h);
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_HELLO;
	req.hello = &h;
	h.version_major = PROTO_VERSION_MAJOR;
	h.version_minor = PROTO_VERSION_MINOR;
	h.client = proto_str(o->software != NULL ? o->software : "sotto/" PACKAGE_VERSION);
	if ((r = client_conn_request(c, &req, &rep, 0)) != 0) {
		if (r == SOTTO_ERR_PERM || r == SOTTO_ERR_CLOSED)
			r = SOTTO_ERR_PROTO;
		goto out;
	}
	if (rep->body_case != SOTTO__FRAME__BODY_HELLO_REPLY ||
	        rep->hello_reply->challenge.len != PROTO_CHALLENGE_BYTES) {
		client_set_err(c, "the server did not answer Hello: is it a sotto server?");
		r = SOTTO_ERR_PROTO;
		goto out;
	}
	memcpy(c->challenge, rep->hello_reply->challenge.data, PROTO_CHALLENGE_BYTES);
	c->registration = rep->hello_reply->registration;
	c->max_frame = rep->hello_reply->max_frame;
	if (c->max_frame < 1024 || c->max_frame > FRAME_MAX_LIMIT)
		c->max_frame = FRAME_MAX_DEFAULT;
out:
	frame_free(rep);
	return r;
}

int
client_conn_open(struct client_conn **out, const struct client_opts *o, char *err, size_t errlen)
{
	struct client_conn *c;
	int r;

	*out = NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return SOTTO_ERR_NOMEM;
	}
	c->fd = -1;
	c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : CLIENT_DEFAULT_TIMEOUT;
	buf_init(&c->in, FRAME_MAX_LIMIT + 65536);
	if ((r = tls_client_ctx_new(&c->ctx, o->ca_path, c->err, sizeof(c->err))) != 0 ||
	        (r = client_tcp_connect(c, o)) != 0 || (r = client_tls(c, o)) != 0 ||
	        (r = client_tls_tune(c)) != 0 || (!o->no_hello && (r = client_hello(c, o)) != 0)) {
		snprintf(err, errlen, "%s", c->err);
		client_conn_abort(c);
		return r;
	}
	*out = c;
	return 0;
}

static void
client_free(struct client_conn *c)
{
	struct push_item *it;

	while ((it = c->head) != NULL) {
		c->head = it->next;
		frame_free(it->f);
		free(it);
	}
	if (c->ssl != NULL)
		SSL_free(c->ssl);
	SSL_CTX_free(c->ctx);
	if (c->fd >= 0)
		close(c->fd);
	buf_free(&c->in);
	sotto_wipe(c->exporter, sizeof(c->exporter));
	free(c);
}

void
client_conn_abort(struct client_conn *c)
{
	if (c != NULL)
		client_free(c);
}

void
client_conn_close(struct client_conn *c)
{
	Sotto__Frame req, *rep = NULL;
	Sotto__Bye bye;

	if (c == NULL)
		return;
	c->corked = 0;
	if (c->ssl != NULL && !c->closed) {
		sotto__bye__init(&bye);
		frame_init(&req, 0);
		req.body_case = SOTTO__FRAME__BODY_BYE;
		req.bye = &bye;
		/* The answer is a Closing frame; a short wait is enough. */
		if (client_conn_request(c, &req, &rep, 2000) == 0)
			frame_free(rep);
		if (SSL_shutdown(c->ssl) >= 0)
			(void)client_flush(c, client_now_ms() + 2000);
		ERR_clear_error();
	}
	client_free(c);
}

/* Sign msg with id into a new malloc'd buffer. */
static int
client_sign(const struct identity *id, const struct buf *msg, uint8_t **sig, size_t *siglen)
{
	int r;

	*sig = NULL;
	if ((*sig = malloc(IDENTITY_SIG_MAX)) == NULL)
		return SOTTO_ERR_NOMEM;
	if ((r = identity_sign(*sig, IDENTITY_SIG_MAX, siglen, id, buf_ptr(msg), buf_len(msg))) !=
	        0) {
		free(*sig);
		*sig = NULL;
	}
	return r;
}

int
client_conn_login(
        struct client_conn *c, const char *username, const struct identity *id, Sotto__Frame **ok)
{
	Sotto__Frame req, *rep = NULL;
	Sotto__Login l;
	uint8_t *sig = NULL;
	size_t siglen = 0;
	struct buf m;
	int r;

	if (ok != NULL)
		*ok = NULL;
	buf_init(&m, 0);
	if ((r = sigmsg_login(&m, c->challenge, c->exporter)) != 0 ||
	        (r = client_sign(id, &m, &sig, &siglen)) != 0) {
		client_set_err(c, "cannot sign the login challenge: %s", sotto_strerror(r));
		goto out;
	}
	sotto__login__init(&l);
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_LOGIN;
	req.login = &l;
	l.username = proto_str(username);
	l.signature = proto_bytes(sig, siglen);
	if ((r = client_conn_request(c, &req, &rep, 0)) != 0)
		goto out;
	if (rep->body_case != SOTTO__FRAME__BODY_LOGIN_OK) {
		client_set_err(c, "unexpected answer to Login");
		r = SOTTO_ERR_PROTO;
		goto out;
	}
	c->authed = 1;
	if (ok != NULL) {
		*ok = rep;
		rep = NULL;
	}
out:
	frame_free(rep);
	free(sig);
	buf_free(&m);
	return r;
}

int
client_conn_register(struct client_conn *c, const char *username, const struct identity *id,
        const Sotto__SignedPrekey *spk, Sotto__OneTimePrekey *const *otks, size_t n_otks,
        const char *invite)
{
	const struct identity_pub *pub = identity_public(id);
	char norm[PROTO_USERNAME_MAX + 1];
	Sotto__Frame req, *rep = NULL;
	Sotto__RegisterUser ru;
	uint8_t *sig = NULL;
	size_t siglen = 0;
	struct buf m;
	int r;

	buf_init(&m, 0);
	if (proto_username_normalize(norm, username) != 0) {
		client_set_err(c,
		        "'%s' is not a valid username: use 1-32 of a-z, 0-9, '.', '_' "
		        "and '-', starting with a letter or digit",
		        username);
		r = SOTTO_ERR_INVALID;
		goto out;
	}
	if ((r = sigmsg_register(&m, c->challenge, c->exporter, norm)) != 0 ||
	        (r = client_sign(id, &m, &sig, &siglen)) != 0) {
		client_set_err(c, "cannot sign the registration: %s", sotto_strerror(r));
		goto out;
	}
	sotto__register_user__init(&ru);
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_REGISTER_USER;
	req.register_user = &ru;
	/* As typed: the server folds case itself, and signs over the folded name too. */
	ru.username = proto_str(username);
	ru.identity_key = proto_bytes(pub->der, pub->derlen);
	ru.identity_type = (uint32_t)pub->type;
	ru.spk = (Sotto__SignedPrekey *)(uintptr_t)spk;
	ru.otks = (Sotto__OneTimePrekey **)(uintptr_t)otks;
	ru.n_otks = n_otks;
	ru.invite_token = proto_str(invite != NULL ? invite : "");
	ru.signature = proto_bytes(sig, siglen);
	if ((r = client_conn_request(c, &req, &rep, 0)) != 0)
		goto out;
	if (rep->body_case != SOTTO__FRAME__BODY_REGISTER_OK) {
		client_set_err(c, "unexpected answer to RegisterUser");
		r = SOTTO_ERR_PROTO;
		goto out;
	}
	c->authed = 1;
out:
	frame_free(rep);
	free(sig);
	buf_free(&m);
	return r;
}
