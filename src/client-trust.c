/*
 * known_servers and known_peers: strict, bounded line parsers, and edits that
 * rewrite the whole file through keys/keyfile.h under a directory lock.
 */
#include "config.h"

#include <sys/file.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crypto/buf.h"
#include "crypto/util.h"
#include "keys/keyfile.h"
#include "src/client-trust.h"

#define CT_FIELDS_MAX   8 /* fields in a known_peers line */
#define CT_UNCHANGED    1 /* an edit that leaves the file as it is */
#define CT_LOCK_STEP_MS 10
#define CT_TIME_DIGITS  18 /* Unix times up to 10^18 - 1: far beyond any real clock */
#define CT_NAME_MAX     (CLIENT_TRUST_HOST_MAX + 9) /* "[host]:65535" and a NUL */

enum ct_kind { CT_SERVERS, CT_PEERS };

/* One known_servers entry. */
struct ct_server {
	char host[CLIENT_TRUST_HOST_MAX + 1];
	uint16_t port;
	uint8_t spki[CLIENT_TRUST_SPKI_BYTES];
	int64_t added; /* 0 when the line has none */
};

/* One pass over a file's text, looking for the entry (host, port[, username]). */
struct ct_scan {
	const char *file;
	enum ct_kind kind;
	char *err;
	size_t errlen;
	const char *host; /* normalised; NULL to match nothing */
	const char *name; /* "host:port" for messages */
	uint16_t port;
	const char *username;
	client_trust_peer_cb cb; /* called for each peer, if not NULL */
	void *cb_arg;
	unsigned found_line; /* 0 if the entry is absent */
	struct ct_server server;
	struct client_trust_peer *peer; /* owned */
};

/* Decide how an edit changes the entry: set *line to its new text, or NULL to drop it. */
typedef int (*ct_edit_fn)(void *arg, const struct ct_scan *sc, char **line);

static void ct_error(char *err, size_t errlen, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void
ct_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

const char *
client_trust_level_name(enum client_trust_level level)
{
	switch (level) {
	case CLIENT_TRUST_VERIFIED:
		return "verified";
	case CLIENT_TRUST_CHANGED:
		return "changed";
	case CLIENT_TRUST_TOFU:
	default:
		return "tofu";
	}
}

const char *
client_trust_policy_name(enum client_trust_policy policy)
{
	switch (policy) {
	case CLIENT_TRUST_NEW_ALWAYS:
		return "always";
	case CLIENT_TRUST_NEW_NEVER:
		return "never";
	case CLIENT_TRUST_NEW_TOFU:
	default:
		return "tofu";
	}
}

int
client_trust_policy_parse(enum client_trust_policy *out, const char *s)
{
	*out = CLIENT_TRUST_NEW_TOFU;
	if (s == NULL)
		return SOTTO_ERR_INVALID;
	if (strcmp(s, "tofu") == 0)
		*out = CLIENT_TRUST_NEW_TOFU;
	else if (strcmp(s, "always") == 0)
		*out = CLIENT_TRUST_NEW_ALWAYS;
	else if (strcmp(s, "never") == 0)
		*out = CLIENT_TRUST_NEW_NEVER;
	else
		return SOTTO_ERR_INVALID;
	return 0;
}

/* Parse a trust level name; SOTTO_ERR_FORMAT for anything else. */
static int
ct_level_parse(enum client_trust_level *out, const char *s)
{
	if (strcmp(s, "tofu") == 0)
		*out = CLIENT_TRUST_TOFU;
	else if (strcmp(s, "verified") == 0)
		*out = CLIENT_TRUST_VERIFIED;
	else if (strcmp(s, "changed") == 0)
		*out = CLIENT_TRUST_CHANGED;
	else
		return SOTTO_ERR_FORMAT;
	return 0;
}

int
client_trust_fingerprint_parse(uint8_t out[CLIENT_TRUST_SPKI_BYTES], const char *s)
{
	static const size_t plen = sizeof(FINGERPRINT_PREFIX) - 1;
	uint8_t digest[CLIENT_TRUST_SPKI_BYTES + 3];
	char again[FINGERPRINT_LEN];
	size_t n = 0;

	memset(out, 0, CLIENT_TRUST_SPKI_BYTES);
	if (s == NULL || strncmp(s, FINGERPRINT_PREFIX, plen) != 0 ||
	        strlen(s) != FINGERPRINT_LEN - 1)
		return SOTTO_ERR_FORMAT;
	if (sotto_unb64(digest, sizeof(digest), &n, s + plen) != 0 || n != CLIENT_TRUST_SPKI_BYTES)
		return SOTTO_ERR_FORMAT;
	/* Only the canonical spelling, so that one key has one fingerprint in the files. */
	fingerprint_format(again, digest);
	if (strcmp(again, s) != 0)
		return SOTTO_ERR_FORMAT;
	memcpy(out, digest, CLIENT_TRUST_SPKI_BYTES);
	return 0;
}

/*
 * Normalise len bytes of a host: a DNS-style name in lower case, or an IPv6
 * address (brackets already removed) in inet_ntop's canonical form.
 */
static int
ct_host_norm(char out[CLIENT_TRUST_HOST_MAX + 1], const char *in, size_t len)
{
	char tmp[INET6_ADDRSTRLEN];
	struct in6_addr a6;
	size_t i;

	out[0] = '\0';
	if (len == 0 || len > CLIENT_TRUST_HOST_MAX)
		return SOTTO_ERR_FORMAT;
	if (memchr(in, ':', len) != NULL) {
		if (len >= sizeof(tmp))
			return SOTTO_ERR_FORMAT;
		memcpy(tmp, in, len);
		tmp[len] = '\0';
		if (inet_pton(AF_INET6, tmp, &a6) != 1 ||
		        inet_ntop(AF_INET6, &a6, out, CLIENT_TRUST_HOST_MAX + 1) == NULL) {
			out[0] = '\0';
			return SOTTO_ERR_FORMAT;
		}
		return 0;
	}
	for (i = 0; i < len; i++) {
		char c = in[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
		                 c == '-' || c == '_')) {
			out[0] = '\0';
			return SOTTO_ERR_FORMAT;
		}
		out[i] = c;
	}
	out[len] = '\0';
	return 0;
}

/* A host as callers give it (IPv6 with or without brackets), normalised. */
static int
ct_host_arg(char out[CLIENT_TRUST_HOST_MAX + 1], const char *host)
{
	size_t len;

	if (host == NULL)
		return SOTTO_ERR_INVALID;
	len = strlen(host);
	if (len >= 2 && host[0] == '[' && host[len - 1] == ']')
		return ct_host_norm(out, host + 1, len - 2) == 0 ? 0 : SOTTO_ERR_INVALID;
	return ct_host_norm(out, host, len) == 0 ? 0 : SOTTO_ERR_INVALID;
}

/* A port: 1 to 65535, decimal digits with no leading zero. */
static int
ct_port_parse(uint16_t *out, const char *s)
{
	unsigned long v = 0;
	size_t i;

	*out = 0;
	if (s[0] < '1' || s[0] > '9')
		return SOTTO_ERR_FORMAT;
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9' || i >= 5)
			return SOTTO_ERR_FORMAT;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
		return SOTTO_ERR_FORMAT;
	*out = (uint16_t)v;
	return 0;
}

/* "HOST:PORT" or "[V6]:PORT" from a file. */
static int
ct_hostport_parse(char host[CLIENT_TRUST_HOST_MAX + 1], uint16_t *port, const char *s)
{
	const char *end, *colon;

	if (s[0] == '[') {
		if ((end = strchr(s, ']')) == NULL || end[1] != ':')
			return SOTTO_ERR_FORMAT;
		/* Brackets are for IPv6 addresses only. */
		if (memchr(s + 1, ':', (size_t)(end - s - 1)) == NULL)
			return SOTTO_ERR_FORMAT;
		if (ct_host_norm(host, s + 1, (size_t)(end - s - 1)) != 0)
			return SOTTO_ERR_FORMAT;
		return ct_port_parse(port, end + 2);
	}
	if ((colon = strchr(s, ':')) == NULL || strchr(colon + 1, ':') != NULL)
		return SOTTO_ERR_FORMAT;
	if (ct_host_norm(host, s, (size_t)(colon - s)) != 0)
		return SOTTO_ERR_FORMAT;
	return ct_port_parse(port, colon + 1);
}

int
client_trust_server_name(char *out, size_t outlen, const char *host, uint16_t port)
{
	char h[CLIENT_TRUST_HOST_MAX + 1];
	int n;

	if (outlen > 0)
		out[0] = '\0';
	if (port == 0 || ct_host_arg(h, host) != 0)
		return SOTTO_ERR_INVALID;
	if (strchr(h, ':') != NULL)
		n = snprintf(out, outlen, "[%s]:%u", h, (unsigned)port);
	else
		n = snprintf(out, outlen, "%s:%u", h, (unsigned)port);
	if (n < 0 || (size_t)n >= outlen) {
		if (outlen > 0)
			out[0] = '\0';
		return SOTTO_ERR_RANGE;
	}
	return 0;
}

/* A Unix time: decimal digits only. */
static int
ct_time_parse(int64_t *out, const char *s)
{
	int64_t v = 0;
	size_t i;

	*out = 0;
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9' || i >= CT_TIME_DIGITS)
			return SOTTO_ERR_FORMAT;
		v = v * 10 + (s[i] - '0');
	}
	if (i == 0)
		return SOTTO_ERR_FORMAT;
	*out = v;
	return 0;
}

/* Split s in place at runs of spaces and tabs; returns max + 1 if there are more fields. */
static size_t
ct_split(char *s, char **fields, size_t max)
{
	size_t n = 0;

	for (;;) {
		s += strspn(s, " \t");
		if (*s == '\0')
			return n;
		if (n == max)
			return max + 1;
		fields[n++] = s;
		s += strcspn(s, " \t");
		if (*s != '\0')
			*s++ = '\0';
	}
}

/* Parse a known_servers line; *why names the problem. */
static int
ct_server_parse(struct ct_server *out, char *line, const char **why)
{
	char *f[CT_FIELDS_MAX];
	size_t n;

	memset(out, 0, sizeof(*out));
	n = ct_split(line, f, 3);
	if (n < 2 || n > 3) {
		*why = "expected \"HOST:PORT SHA256:FINGERPRINT [ADDED]\"";
		return SOTTO_ERR_FORMAT;
	}
	if (ct_hostport_parse(out->host, &out->port, f[0]) != 0) {
		*why = "bad HOST:PORT";
		return SOTTO_ERR_FORMAT;
	}
	if (client_trust_fingerprint_parse(out->spki, f[1]) != 0) {
		*why = "bad fingerprint";
		return SOTTO_ERR_FORMAT;
	}
	if (n == 3 && ct_time_parse(&out->added, f[2]) != 0) {
		*why = "bad time";
		return SOTTO_ERR_FORMAT;
	}
	return 0;
}

/* Parse a known_peers line into out (out->pub then owned by the caller); *why names the problem. */
static int
ct_peer_parse(struct client_trust_peer *out, char *line, const char **why)
{
	char *f[CT_FIELDS_MAX], *keyline = NULL;
	uint8_t digest[CLIENT_TRUST_SPKI_BYTES];
	size_t n, klen;
	int r = SOTTO_ERR_FORMAT;

	memset(out, 0, sizeof(*out));
	n = ct_split(line, f, CT_FIELDS_MAX);
	if (n != CT_FIELDS_MAX) {
		*why = "expected \"HOST:PORT USERNAME TYPE SHA256:FINGERPRINT LEVEL ADDED "
		       "sotto-TYPE KEY\"";
		goto out;
	}
	if (ct_hostport_parse(out->host, &out->port, f[0]) != 0) {
		*why = "bad HOST:PORT";
		goto out;
	}
	if (proto_username_normalize(out->username, f[1]) != 0) {
		*why = "bad username";
		goto out;
	}
	if (client_trust_fingerprint_parse(digest, f[3]) != 0) {
		*why = "bad fingerprint";
		goto out;
	}
	if (ct_level_parse(&out->level, f[4]) != 0) {
		*why = "unknown trust level (tofu, verified or changed)";
		goto out;
	}
	if (ct_time_parse(&out->added, f[5]) != 0) {
		*why = "bad time";
		goto out;
	}
	klen = strlen(f[6]) + 1 + strlen(f[7]) + 1;
	if ((keyline = malloc(klen)) == NULL) {
		*why = "out of memory";
		r = SOTTO_ERR_NOMEM;
		goto out;
	}
	snprintf(keyline, klen, "%s %s", f[6], f[7]);
	if ((r = identity_pub_parse_line(&out->pub, NULL, keyline)) != 0) {
		*why = r == SOTTO_ERR_NOMEM ? "out of memory" : "bad public key";
		if (r != SOTTO_ERR_NOMEM)
			r = SOTTO_ERR_FORMAT;
		goto out;
	}
	r = SOTTO_ERR_FORMAT;
	if (strcmp(f[2], identity_type_name(out->pub->type)) != 0) {
		*why = "the key type does not match the key";
		goto out;
	}
	identity_fingerprint(out->fingerprint, out->pub);
	if (strcmp(out->fingerprint, f[3]) != 0) {
		*why = "the fingerprint does not match the key";
		goto out;
	}
	r = 0;
out:
	free(keyline);
	if (r != 0) {
		identity_pub_free(out->pub);
		memset(out, 0, sizeof(*out));
	}
	return r;
}

void
client_trust_peer_free(struct client_trust_peer *peer)
{
	if (peer == NULL)
		return;
	identity_pub_free(peer->pub);
	free(peer);
}

/* The next line at *off (without its newline); 0 at the end of the text, else 1. */
static int
ct_next_line(const uint8_t *data, size_t len, size_t *off, const char **line, size_t *linelen)
{
	const uint8_t *nl;

	if (*off >= len)
		return 0;
	*line = (const char *)data + *off;
	nl = memchr(data + *off, '\n', len - *off);
	*linelen = nl != NULL ? (size_t)(nl - (data + *off)) : len - *off;
	*off += *linelen + (nl != NULL ? 1 : 0);
	return 1;
}

/* 1 for a blank line or a comment. */
static int
ct_is_comment(const char *s)
{
	s += strspn(s, " \t");
	return *s == '\0' || *s == '#';
}

/* Parse one entry of sc's kind and note it if it is the one looked for. */
static int
ct_scan_entry(struct ct_scan *sc, unsigned lineno, char *text, const char **why)
{
	struct client_trust_peer peer;
	struct ct_server server;
	int r, match;

	if (sc->kind == CT_SERVERS) {
		if ((r = ct_server_parse(&server, text, why)) != 0)
			return r;
		match = sc->host != NULL && server.port == sc->port &&
		        strcmp(server.host, sc->host) == 0;
		if (match && sc->found_line == 0)
			sc->server = server;
	} else {
		if ((r = ct_peer_parse(&peer, text, why)) != 0)
			return r;
		match = sc->host != NULL && peer.port == sc->port &&
		        strcmp(peer.host, sc->host) == 0 &&
		        strcmp(peer.username, sc->username) == 0;
		if (sc->cb != NULL && (r = sc->cb(sc->cb_arg, &peer)) != 0) {
			identity_pub_free(peer.pub);
			*why = NULL;
			return r;
		}
		if (match && sc->found_line == 0) {
			if ((sc->peer = malloc(sizeof(*sc->peer))) == NULL) {
				identity_pub_free(peer.pub);
				*why = "out of memory";
				return SOTTO_ERR_NOMEM;
			}
			*sc->peer = peer;
			peer.pub = NULL;
		}
		identity_pub_free(peer.pub);
	}
	if (match && sc->found_line != 0) {
		/* Two entries for one key would make every answer depend on which one is read. */
		ct_error(sc->err, sc->errlen,
		        "%s:%u: a second entry for %s%s%s (the first is line %u)", sc->file, lineno,
		        sc->username != NULL ? sc->username : "",
		        sc->username != NULL ? " on " : "", sc->name, sc->found_line);
		*why = NULL;
		return SOTTO_ERR_FORMAT;
	}
	if (match)
		sc->found_line = lineno;
	return 0;
}

/*
 * Check every line of text and find sc's entry.  A callback's positive
 * return stops the scan early and is returned.
 */
static int
ct_scan_text(struct ct_scan *sc, const uint8_t *data, size_t len)
{
	const char *line, *why = NULL;
	char *text = NULL;
	size_t off = 0, n;
	unsigned lineno = 0;
	int r = 0;

	if ((text = malloc(CLIENT_TRUST_LINE_MAX + 1)) == NULL) {
		ct_error(sc->err, sc->errlen, "out of memory");
		return SOTTO_ERR_NOMEM;
	}
	while (ct_next_line(data, len, &off, &line, &n)) {
		lineno++;
		if (n > 0 && line[n - 1] == '\r')
			n--;
		if (n > CLIENT_TRUST_LINE_MAX) {
			why = "line too long";
			r = SOTTO_ERR_FORMAT;
			break;
		}
		if (memchr(line, '\0', n) != NULL) {
			why = "NUL byte";
			r = SOTTO_ERR_FORMAT;
			break;
		}
		memcpy(text, line, n);
		text[n] = '\0';
		if (ct_is_comment(text))
			continue;
		if ((r = ct_scan_entry(sc, lineno, text, &why)) != 0)
			break;
	}
	free(text);
	if (r < 0 && why != NULL)
		ct_error(sc->err, sc->errlen, "%s:%u: %s", sc->file, lineno, why);
	return r;
}

/* Read a trust file; a missing one reads as empty. */
static int
ct_read(const char *file, uint8_t **data, size_t *len, char *err, size_t errlen)
{
	int r;

	r = keyfile_read(file, CLIENT_TRUST_FILE_MAX, data, len);
	if (r == SOTTO_ERR_NOTFOUND) {
		*data = NULL;
		*len = 0;
		return 0;
	}
	if (r == SOTTO_ERR_RANGE)
		ct_error(err, errlen, "%s: larger than %d bytes", file, CLIENT_TRUST_FILE_MAX);
	else if (r == SOTTO_ERR_IO)
		ct_error(err, errlen, "%s: %s", file, strerror(errno));
	else if (r != 0)
		ct_error(err, errlen, "%s: %s", file, sotto_strerror(r));
	return r;
}

/* Read and scan file for (host, port[, username]); sc is filled and owns sc->peer. */
static int
ct_scan_file(struct ct_scan *sc, uint8_t **data, size_t *len)
{
	int r;

	*data = NULL;
	*len = 0;
	if ((r = ct_read(sc->file, data, len, sc->err, sc->errlen)) != 0)
		return r;
	if ((r = ct_scan_text(sc, *data, *len)) != 0) {
		keyfile_free(*data, *len);
		*data = NULL;
		*len = 0;
	}
	return r;
}

/*
 * Lock file's directory against other writers, waiting a little: writers
 * hold it for milliseconds, and the client must never hang on it.
 */
static int
ct_lock(const char *file, int *fdp, char *err, size_t errlen)
{
	const struct timespec step = {0, CT_LOCK_STEP_MS * 1000000L};
	const char *slash = strrchr(file, '/');
	char *dir;
	int fd, waited = 0, r;

	*fdp = -1;
	if (slash == NULL)
		dir = strdup(".");
	else if (slash == file)
		dir = strdup("/");
	else
		dir = strndup(file, (size_t)(slash - file));
	if (dir == NULL) {
		ct_error(err, errlen, "out of memory");
		return SOTTO_ERR_NOMEM;
	}
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		ct_error(err, errlen, "%s: %s", dir, strerror(errno));
		r = errno == EACCES ? SOTTO_ERR_PERM : SOTTO_ERR_IO;
		goto out;
	}
	while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno != EWOULDBLOCK && errno != EINTR) {
			ct_error(err, errlen, "cannot lock %s: %s", dir, strerror(errno));
			r = SOTTO_ERR_IO;
			goto out;
		}
		if (waited >= CLIENT_TRUST_LOCK_WAIT_MS) {
			ct_error(err, errlen, "%s is being changed by another sotto; try again",
			        file);
			r = SOTTO_ERR_AGAIN;
			goto out;
		}
		nanosleep(&step, NULL);
		waited += CT_LOCK_STEP_MS;
	}
	*fdp = fd;
	fd = -1;
	r = 0;
out:
	if (fd != -1)
		close(fd);
	free(dir);
	return r;
}

/* Text with line found_line replaced by line (or dropped), or line appended if absent. */
static int
ct_rebuild(struct buf *out, const uint8_t *data, size_t len, unsigned found_line, const char *line)
{
	const char *text;
	size_t off = 0, n;
	unsigned lineno = 0;
	int r;

	while (ct_next_line(data, len, &off, &text, &n)) {
		lineno++;
		if (lineno == found_line) {
			if (line != NULL && (r = buf_put(out, line, strlen(line))) != 0)
				return r;
			continue;
		}
		if ((r = buf_put(out, text, n)) != 0 || (r = buf_put_u8(out, '\n')) != 0)
			return r;
	}
	if (found_line == 0 && line != NULL)
		return buf_put(out, line, strlen(line));
	return 0;
}

/* Arguments every public entry point checks the same way. */
struct ct_args {
	char host[CLIENT_TRUST_HOST_MAX + 1];
	char name[CT_NAME_MAX];
	uint16_t port;
	char username[PROTO_USERNAME_MAX + 1]; /* "" when the entry has none */
	const struct identity_pub *pub;
	const uint8_t *spki;
	int64_t now;
};

static int
ct_args(struct ct_args *a, const char *file, const char *host, uint16_t port, const char *username,
        char *err, size_t errlen)
{
	memset(a, 0, sizeof(*a));
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (file == NULL || *file == '\0') {
		ct_error(err, errlen, "no trust file named");
		return SOTTO_ERR_INVALID;
	}
	if (ct_host_arg(a->host, host) != 0 || port == 0 ||
	        client_trust_server_name(a->name, sizeof(a->name), a->host, port) != 0) {
		ct_error(err, errlen, "bad server \"%s\" port %u", host != NULL ? host : "",
		        (unsigned)port);
		return SOTTO_ERR_INVALID;
	}
	a->port = port;
	if (username != NULL && proto_username_normalize(a->username, username) != 0) {
		ct_error(err, errlen, "bad username \"%s\"", username);
		return SOTTO_ERR_INVALID;
	}
	return 0;
}

/*
 * Change the entry (host, port[, username]) of file: fn decides what it
 * becomes, and the new file replaces the old in one rename.
 */
static int
ct_edit(const char *file, enum ct_kind kind, const struct ct_args *a, ct_edit_fn fn, void *arg,
        char *err, size_t errlen)
{
	struct ct_scan sc;
	struct buf out;
	uint8_t *data = NULL;
	char *line = NULL;
	size_t len = 0;
	int r, fd = -1;

	memset(&sc, 0, sizeof(sc));
	buf_init(&out, CLIENT_TRUST_FILE_MAX);
	sc.file = file;
	sc.kind = kind;
	sc.err = err;
	sc.errlen = errlen;
	sc.host = a->host;
	sc.name = a->name;
	sc.port = a->port;
	sc.username = kind == CT_PEERS ? a->username : NULL;
	if ((r = ct_lock(file, &fd, err, errlen)) != 0)
		goto out;
	if ((r = ct_scan_file(&sc, &data, &len)) != 0)
		goto out;
	if ((r = fn(arg, &sc, &line)) != 0) {
		if (r == CT_UNCHANGED)
			r = 0;
		goto out;
	}
	if (line == NULL && sc.found_line == 0)
		goto out;
	if ((r = ct_rebuild(&out, data, len, sc.found_line, line)) != 0) {
		ct_error(err, errlen, "%s: %s", file,
		        r == SOTTO_ERR_RANGE ? "the file would be too large" : sotto_strerror(r));
		goto out;
	}
	if ((r = keyfile_write(file, buf_ptr(&out), buf_len(&out), KEYFILE_MODE_PRIVATE, 1)) != 0)
		ct_error(err, errlen, "cannot write %s: %s", file,
		        r == SOTTO_ERR_IO ? strerror(errno) : sotto_strerror(r));
out:
	free(line);
	buf_free(&out);
	keyfile_free(data, len);
	client_trust_peer_free(sc.peer);
	if (fd != -1)
		close(fd);
	return r;
}

/* A known_servers line for (name, spki, added), newline included. */
static char *
ct_server_line(const char *name, const uint8_t spki[CLIENT_TRUST_SPKI_BYTES], int64_t added)
{
	char fp[FINGERPRINT_LEN];
	char *line;
	size_t n;

	fingerprint_format(fp, spki);
	n = strlen(name) + sizeof(fp) + 24;
	if ((line = malloc(n)) != NULL)
		snprintf(line, n, "%s %s %lld\n", name, fp, (long long)added);
	return line;
}

/* A known_peers line, newline included; NULL when out of memory. */
static char *
ct_peer_line(const char *name, const char *username, const struct identity_pub *pub,
        enum client_trust_level level, int64_t added)
{
	char fp[FINGERPRINT_LEN];
	char *key = NULL, *line = NULL;
	size_t n;

	if (identity_pub_format_line(&key, pub, NULL) != 0)
		return NULL;
	identity_fingerprint(fp, pub);
	n = strlen(name) + strlen(username) + strlen(key) + sizeof(fp) + 64;
	if ((line = malloc(n)) != NULL)
		snprintf(line, n, "%s %s %s %s %s %lld %s\n", name, username,
		        identity_type_name(pub->type), fp, client_trust_level_name(level),
		        (long long)added, key);
	free(key);
	return line;
}

int
client_trust_server_lookup(const char *file, const char *host, uint16_t port,
        const uint8_t spki[CLIENT_TRUST_SPKI_BYTES], enum client_trust_status *status,
        uint8_t stored[CLIENT_TRUST_SPKI_BYTES], char *err, size_t errlen)
{
	struct ct_scan sc;
	struct ct_args a;
	uint8_t *data = NULL;
	size_t len = 0;
	int r;

	*status = CLIENT_TRUST_UNKNOWN;
	if (stored != NULL)
		memset(stored, 0, CLIENT_TRUST_SPKI_BYTES);
	if ((r = ct_args(&a, file, host, port, NULL, err, errlen)) != 0)
		return r;
	memset(&sc, 0, sizeof(sc));
	sc.file = file;
	sc.kind = CT_SERVERS;
	sc.err = err;
	sc.errlen = errlen;
	sc.host = a.host;
	sc.name = a.name;
	sc.port = port;
	if ((r = ct_scan_file(&sc, &data, &len)) != 0)
		return r;
	keyfile_free(data, len);
	if (sc.found_line == 0)
		return 0;
	*status = sotto_memeq(sc.server.spki, spki, CLIENT_TRUST_SPKI_BYTES)
	                  ? CLIENT_TRUST_MATCH
	                  : CLIENT_TRUST_MISMATCH;
	if (stored != NULL)
		memcpy(stored, sc.server.spki, CLIENT_TRUST_SPKI_BYTES);
	return 0;
}

static int
ct_edit_server_add(void *arg, const struct ct_scan *sc, char **line)
{
	const struct ct_args *a = arg;

	if (sc->found_line != 0) {
		if (memcmp(sc->server.spki, a->spki, CLIENT_TRUST_SPKI_BYTES) == 0)
			return CT_UNCHANGED;
		ct_error(sc->err, sc->errlen,
		        "%s:%u: another key is pinned for %s; remove it before pinning a new one",
		        sc->file, sc->found_line, a->name);
		return SOTTO_ERR_EXISTS;
	}
	if ((*line = ct_server_line(a->name, a->spki, a->now)) == NULL)
		return SOTTO_ERR_NOMEM;
	return 0;
}

int
client_trust_server_add(const char *file, const char *host, uint16_t port,
        const uint8_t spki[CLIENT_TRUST_SPKI_BYTES], int64_t now, char *err, size_t errlen)
{
	struct ct_args a;
	int r;

	if ((r = ct_args(&a, file, host, port, NULL, err, errlen)) != 0)
		return r;
	a.spki = spki;
	a.now = now < 0 ? 0 : now;
	return ct_edit(file, CT_SERVERS, &a, ct_edit_server_add, &a, err, errlen);
}

/* Drop the entry, or say that there is none. */
static int
ct_edit_remove(void *arg, const struct ct_scan *sc, char **line)
{
	const struct ct_args *a = arg;

	(void)line;
	if (sc->found_line == 0) {
		if (sc->kind == CT_PEERS)
			ct_error(sc->err, sc->errlen, "%s: no entry for %s on %s", sc->file,
			        a->username, a->name);
		else
			ct_error(sc->err, sc->errlen, "%s: no entry for %s", sc->file, a->name);
		return SOTTO_ERR_NOTFOUND;
	}
	return 0;
}

int
client_trust_server_remove(
        const char *file, const char *host, uint16_t port, char *err, size_t errlen)
{
	struct ct_args a;
	int r;

	if ((r = ct_args(&a, file, host, port, NULL, err, errlen)) != 0)
		return r;
	return ct_edit(file, CT_SERVERS, &a, ct_edit_remove, &a, err, errlen);
}

int
client_trust_peer_get(struct client_trust_peer **out, const char *file, const char *host,
        uint16_t port, const char *username, char *err, size_t errlen)
{
	struct ct_scan sc;
	struct ct_args a;
	uint8_t *data = NULL;
	size_t len = 0;
	int r;

	*out = NULL;
	if (username == NULL)
		return SOTTO_ERR_INVALID;
	if ((r = ct_args(&a, file, host, port, username, err, errlen)) != 0)
		return r;
	memset(&sc, 0, sizeof(sc));
	sc.file = file;
	sc.kind = CT_PEERS;
	sc.err = err;
	sc.errlen = errlen;
	sc.host = a.host;
	sc.name = a.name;
	sc.port = port;
	sc.username = a.username;
	if ((r = ct_scan_file(&sc, &data, &len)) != 0) {
		client_trust_peer_free(sc.peer);
		return r;
	}
	keyfile_free(data, len);
	if (sc.peer == NULL) {
		ct_error(err, errlen, "%s: no entry for %s on %s", file, a.username, a.name);
		return SOTTO_ERR_NOTFOUND;
	}
	*out = sc.peer;
	return 0;
}

int
client_trust_peer_lookup(const char *file, const char *host, uint16_t port, const char *username,
        const struct identity_pub *pub, enum client_trust_status *status,
        struct client_trust_peer **old, char *err, size_t errlen)
{
	struct client_trust_peer *peer = NULL;
	int r;

	*status = CLIENT_TRUST_UNKNOWN;
	if (old != NULL)
		*old = NULL;
	if (pub == NULL)
		return SOTTO_ERR_INVALID;
	if ((r = client_trust_peer_get(&peer, file, host, port, username, err, errlen)) != 0) {
		if (r == SOTTO_ERR_NOTFOUND) {
			if (err != NULL && errlen > 0)
				err[0] = '\0';
			r = 0;
		}
		return r;
	}
	*status = identity_pub_equal(peer->pub, pub) ? CLIENT_TRUST_MATCH : CLIENT_TRUST_MISMATCH;
	if (old != NULL) {
		*old = peer;
		peer = NULL;
	}
	client_trust_peer_free(peer);
	return 0;
}

/* What a peer edit writes: the new key and level, given what the entry held. */
struct ct_peer_edit {
	struct ct_args a;
	enum { CT_ADD, CT_VERIFY, CT_MARK_CHANGED, CT_TRUST } op;
};

static int
ct_edit_peer(void *arg, const struct ct_scan *sc, char **line)
{
	const struct ct_peer_edit *e = arg;
	const struct client_trust_peer *old = sc->peer;
	const struct identity_pub *pub = e->a.pub;
	enum client_trust_level level = CLIENT_TRUST_TOFU;
	int same = old != NULL && pub != NULL && identity_pub_equal(old->pub, pub);
	int64_t added = e->a.now;

	switch (e->op) {
	case CT_ADD:
		if (old != NULL) {
			ct_error(sc->err, sc->errlen, "%s:%u: %s on %s is already known", sc->file,
			        sc->found_line, e->a.username, e->a.name);
			return SOTTO_ERR_EXISTS;
		}
		break;
	case CT_VERIFY:
		if (same && old->level == CLIENT_TRUST_VERIFIED)
			return CT_UNCHANGED;
		level = CLIENT_TRUST_VERIFIED;
		if (same)
			added = old->added;
		break;
	case CT_MARK_CHANGED:
		if (old == NULL) {
			ct_error(sc->err, sc->errlen, "%s: no entry for %s on %s", sc->file,
			        e->a.username, e->a.name);
			return SOTTO_ERR_NOTFOUND;
		}
		if (old->level == CLIENT_TRUST_CHANGED)
			return CT_UNCHANGED;
		pub = old->pub;
		level = CLIENT_TRUST_CHANGED;
		added = old->added;
		break;
	case CT_TRUST:
		/* Accepting the key already trusted must not undo a verification. */
		if (same && old->level != CLIENT_TRUST_CHANGED)
			return CT_UNCHANGED;
		if (same)
			added = old->added;
		break;
	}
	if ((*line = ct_peer_line(e->a.name, e->a.username, pub, level, added)) == NULL)
		return SOTTO_ERR_NOMEM;
	return 0;
}

/* The shared body of the peer edits. */
static int
ct_peer_edit_run(struct ct_peer_edit *e, const char *file, const char *host, uint16_t port,
        const char *username, const struct identity_pub *pub, int64_t now, char *err, size_t errlen)
{
	int r;

	if (username == NULL || (pub == NULL && e->op != CT_MARK_CHANGED))
		return SOTTO_ERR_INVALID;
	if ((r = ct_args(&e->a, file, host, port, username, err, errlen)) != 0)
		return r;
	e->a.pub = pub;
	e->a.now = now < 0 ? 0 : now;
	return ct_edit(file, CT_PEERS, &e->a, ct_edit_peer, e, err, errlen);
}

int
client_trust_peer_add(const char *file, const char *host, uint16_t port, const char *username,
        const struct identity_pub *pub, int64_t now, char *err, size_t errlen)
{
	struct ct_peer_edit e;

	e.op = CT_ADD;
	return ct_peer_edit_run(&e, file, host, port, username, pub, now, err, errlen);
}

int
client_trust_peer_verify(const char *file, const char *host, uint16_t port, const char *username,
        const struct identity_pub *pub, int64_t now, char *err, size_t errlen)
{
	struct ct_peer_edit e;

	e.op = CT_VERIFY;
	return ct_peer_edit_run(&e, file, host, port, username, pub, now, err, errlen);
}

int
client_trust_peer_mark_changed(const char *file, const char *host, uint16_t port,
        const char *username, char *err, size_t errlen)
{
	struct ct_peer_edit e;

	e.op = CT_MARK_CHANGED;
	return ct_peer_edit_run(&e, file, host, port, username, NULL, 0, err, errlen);
}

int
client_trust_peer_trust(const char *file, const char *host, uint16_t port, const char *username,
        const struct identity_pub *pub, int64_t now, char *err, size_t errlen)
{
	struct ct_peer_edit e;

	e.op = CT_TRUST;
	return ct_peer_edit_run(&e, file, host, port, username, pub, now, err, errlen);
}

int
client_trust_peer_remove(const char *file, const char *host, uint16_t port, const char *username,
        char *err, size_t errlen)
{
	struct ct_args a;
	int r;

	if (username == NULL)
		return SOTTO_ERR_INVALID;
	if ((r = ct_args(&a, file, host, port, username, err, errlen)) != 0)
		return r;
	return ct_edit(file, CT_PEERS, &a, ct_edit_remove, &a, err, errlen);
}

int
client_trust_peer_foreach(
        const char *file, client_trust_peer_cb cb, void *arg, char *err, size_t errlen)
{
	struct ct_scan sc;
	uint8_t *data = NULL;
	size_t len = 0;
	int r;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (file == NULL || cb == NULL)
		return SOTTO_ERR_INVALID;
	memset(&sc, 0, sizeof(sc));
	sc.file = file;
	sc.kind = CT_PEERS;
	sc.err = err;
	sc.errlen = errlen;
	/* First check the whole file, so that cb never sees half of a broken one. */
	if ((r = ct_scan_file(&sc, &data, &len)) != 0)
		return r;
	sc.cb = cb;
	sc.cb_arg = arg;
	r = ct_scan_text(&sc, data, len);
	keyfile_free(data, len);
	return r > 0 ? 0 : r;
}
