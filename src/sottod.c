/*
 * sottod: the sotto server.  Parses flags and sottod.conf into one
 * configuration, makes a self-signed certificate on first start, opens the
 * store and runs the event loop until SIGTERM or SIGINT.
 */
#include "config.h"

#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/x509.h>

#include "crypto/util.h"
#include "keys/tlscert.h"
#include "src/log.h"
#include "src/server.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define SOTTOD_DEFAULT_CONF SYSCONFDIR "/sotto/sottod.conf"
#define SOTTOD_MAX_FLAGS    256

struct flag {
	const char *key;
	const char *value;
};

struct opts {
	const char *conf_path; /* -f; NULL for the default, which may be absent */
	int check_config;
	int make_invite;
	long invite_days;
	int verbose;
	int debug;
	struct flag flags[SOTTOD_MAX_FLAGS];
	size_t n_flags;
};

static struct opts opts;
static struct server *the_server;
static struct config *the_config;

static void
usage(FILE *fp)
{
	size_t i;
	const char *k;

	fprintf(fp,
	        "usage: sottod [-d] [-f FILE] [--KEY VALUE ...]\n"
	        "       sottod --check-config [-v] [-f FILE] [--KEY VALUE ...]\n"
	        "       sottod --make-invite [--invite-days N] [-f FILE] [--KEY VALUE ...]\n"
	        "       sottod -h | -V\n"
	        "\n"
	        "  -f, --config FILE   read FILE instead of %s\n"
	        "  -d, --debug         log debug messages (same as --log-level debug)\n"
	        "      --check-config  check the configuration and exit (with -v, print it)\n"
	        "  -v, --verbose       with --check-config, print the effective configuration\n"
	        "      --make-invite   print a new single-use invite token and exit\n"
	        "      --invite-days N the token expires after N days (default 7)\n"
	        "  -h, --help          show this help\n"
	        "  -V, --version       show the version\n"
	        "\n"
	        "Every sottod.conf key is also a flag that overrides the file:\n ",
	        SOTTOD_DEFAULT_CONF);
	for (i = 0; (k = config_key_name(i)) != NULL; i++)
		fprintf(fp, " --%s", k);
	fprintf(fp, "\n\nSee sottod(8) and sottod.conf(5).\n");
}

/* Collect flags; exits on --help, --version and usage errors. */
static void
parse_args(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *eq;
		char *key;

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			exit(0);
		}
		if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
			printf("sottod %s\n", PACKAGE_VERSION);
			exit(0);
		}
		if (strcmp(a, "-d") == 0 || strcmp(a, "--debug") == 0) {
			opts.debug = 1;
			continue;
		}
		if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
			opts.verbose = 1;
			continue;
		}
		if (strcmp(a, "--check-config") == 0) {
			opts.check_config = 1;
			continue;
		}
		if (strcmp(a, "--make-invite") == 0) {
			opts.make_invite = 1;
			continue;
		}
		if (strcmp(a, "--invite-days") == 0) {
			char *end = NULL;

			if (i + 1 >= argc ||
			        (opts.invite_days = strtol(argv[i + 1], &end, 10)) < 1 ||
			        opts.invite_days > 3650 || *end != '\0') {
				fprintf(stderr,
				        "sottod: --invite-days needs a number of days from 1 "
				        "to 3650\n");
				exit(1);
			}
			i++;
			continue;
		}
		if (strcmp(a, "-f") == 0 || strcmp(a, "--config") == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "sottod: %s needs a file name\n", a);
				exit(1);
			}
			opts.conf_path = argv[++i];
			continue;
		}
		if (strncmp(a, "--config=", 9) == 0) {
			opts.conf_path = a + 9;
			continue;
		}
		if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
			fprintf(stderr, "sottod: unexpected argument '%s'; see sottod --help\n", a);
			exit(1);
		}
		if (opts.n_flags >= SOTTOD_MAX_FLAGS) {
			fprintf(stderr, "sottod: too many flags\n");
			exit(1);
		}
		if ((eq = strchr(a, '=')) != NULL) {
			if ((key = strndup(a + 2, (size_t)(eq - a - 2))) == NULL) {
				fprintf(stderr, "sottod: out of memory\n");
				exit(2);
			}
			opts.flags[opts.n_flags].key = key;
			opts.flags[opts.n_flags].value = eq + 1;
		} else {
			if (i + 1 >= argc) {
				fprintf(stderr, "sottod: %s needs a value; see sottod --help\n", a);
				exit(1);
			}
			opts.flags[opts.n_flags].key = a + 2;
			opts.flags[opts.n_flags].value = argv[++i];
		}
		opts.n_flags++;
	}
}

/* Build a finished configuration from the flags and the file; NULL with err set on failure. */
static struct config *
load_config(char *err, size_t errlen)
{
	struct config *cfg;
	char e[512];
	size_t i;
	int r;

	if ((cfg = calloc(1, sizeof(*cfg))) == NULL || config_init(cfg) != 0) {
		snprintf(err, errlen, "out of memory");
		free(cfg);
		return NULL;
	}
	for (i = 0; i < opts.n_flags; i++) {
		if (config_set(cfg, opts.flags[i].key, opts.flags[i].value, e, sizeof(e)) != 0) {
			snprintf(err, errlen, "--%s", e);
			goto fail;
		}
	}
	if (opts.debug && config_set(cfg, "log_level", "debug", e, sizeof(e)) != 0) {
		snprintf(err, errlen, "%s", e);
		goto fail;
	}
	r = config_load(
	        cfg, opts.conf_path != NULL ? opts.conf_path : SOTTOD_DEFAULT_CONF, e, sizeof(e));
	if (r != 0 && !(r == SOTTO_ERR_NOTFOUND && opts.conf_path == NULL)) {
		snprintf(err, errlen, "%s", e);
		goto fail;
	}
	if (config_finish(cfg, e, sizeof(e)) != 0) {
		snprintf(err, errlen, "%s", e);
		goto fail;
	}
	return cfg;
fail:
	config_free(cfg);
	free(cfg);
	return NULL;
}

/* Make the state directory (0700) if it does not exist. */
static int
make_state_dir(const char *dir, char *err, size_t errlen)
{
	struct stat st;

	if (stat(dir, &st) == 0) {
		if (!S_ISDIR(st.st_mode)) {
			snprintf(err, errlen, "%s: state_dir is not a directory", dir);
			return SOTTO_ERR_INVALID;
		}
		return 0;
	}
	if (mkdir(dir, 0700) != 0) {
		snprintf(err, errlen, "%s: cannot create the state directory: %s", dir,
		        strerror(errno));
		return SOTTO_ERR_IO;
	}
	log_info("created the state directory %s", dir);
	return 0;
}

/* One sottod per state directory: a second one says so and exits instead of sharing the store. */
static int
lock_state_dir(const char *dir, char *err, size_t errlen)
{
	char path[4200];
	int fd;

	snprintf(path, sizeof(path), "%s/sottod.lock", dir);
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
		snprintf(err, errlen, "%.900s: %s", path, strerror(errno));
		return SOTTO_ERR_IO;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		snprintf(err, errlen, "%s: another sottod is already using this state directory",
		        dir);
		close(fd);
		return SOTTO_ERR_EXISTS;
	}
	/* The descriptor stays open (and locked) until the process exits. */
	return 0;
}

/*
 * When neither the certificate nor the key exists and both are the defaults
 * in the state directory, make a self-signed Ed25519 certificate there.
 */
static int
ensure_certificate(const struct config *cfg, char *err, size_t errlen)
{
	char base[4096], host[256], fp[128];
	const char *names[4];
	struct tlscert_params p;
	X509 *cert = NULL;
	size_t n = 0;
	int r, have_cert = access(cfg->cert, F_OK) == 0, have_key = access(cfg->key, F_OK) == 0;
	char dcrt[4200], dkey[4200];

	if (have_cert && have_key)
		return 0;
	snprintf(base, sizeof(base), "%s/server", cfg->state_dir);
	snprintf(dcrt, sizeof(dcrt), "%s.crt", base);
	snprintf(dkey, sizeof(dkey), "%s.key", base);
	/* Only the defaults are made; a configured path that is missing is a mistake. */
	if (strcmp(cfg->cert, dcrt) != 0 || strcmp(cfg->key, dkey) != 0) {
		snprintf(err, errlen,
		        "%s: no such file; make one with sotto-keygen -t tls, or remove the cert "
		        "and key settings to use a self-signed certificate in the state directory",
		        have_cert ? cfg->key : cfg->cert);
		return SOTTO_ERR_NOTFOUND;
	}
	if (have_cert || have_key) {
		/* Half a pair: making a new one would replace the operator's file. */
		snprintf(err, errlen,
		        "%s is missing but %s exists; restore it, or remove both to have a new "
		        "self-signed certificate made",
		        have_cert ? cfg->key : cfg->cert, have_cert ? cfg->cert : cfg->key);
		return SOTTO_ERR_NOTFOUND;
	}
	names[n++] = "localhost";
	names[n++] = "127.0.0.1";
	names[n++] = "::1";
	if (gethostname(host, sizeof(host)) == 0 && host[0] != '\0' &&
	        tlscert_name_check(host) == 0 && strcmp(host, "localhost") != 0)
		names[n++] = host;
	memset(&p, 0, sizeof(p));
	p.names = names;
	p.nnames = n;
	p.days = TLSCERT_DEFAULT_DAYS;
	p.ecdsa = 0;
	if ((r = tlscert_generate(&cert, base, &p, NULL, 0)) != 0) {
		snprintf(err, errlen, "%.900s: cannot make a self-signed certificate: %s", base,
		        sotto_strerror(r));
		return r;
	}
	if (tlscert_spki_fingerprint(fp, cert) == 0)
		log_info("made a self-signed certificate %s (fingerprint %s)", cfg->cert, fp);
	X509_free(cert);
	return 0;
}

/*
 * Print a new invite token for registration = invite.  It opens the store
 * beside a running server (SQLite serialises the two writers), and keeps
 * only the token's hash there.
 */
static int
make_invite(const struct config *cfg)
{
	uint8_t raw[18];
	char token[2 * sizeof(raw) + 1], err[1024];
	struct store *st = NULL;
	int64_t now = (int64_t)time(NULL);
	long days = opts.invite_days > 0 ? opts.invite_days : 7;
	int r;

	if (make_state_dir(cfg->state_dir, err, sizeof(err)) != 0 ||
	        store_sqlite_open(&st, cfg->state_dir, err, sizeof(err)) != 0) {
		fprintf(stderr, "sottod: %s\n", err);
		return 1;
	}
	sotto_random(raw, sizeof(raw));
	sotto_hex(token, raw, sizeof(raw));
	sotto_wipe(raw, sizeof(raw));
	r = store_invite_create(st, token, NULL, now, now + (int64_t)days * 86400);
	if (r != 0)
		fprintf(stderr, "sottod: cannot store the invite: %s\n", store_last_error(st));
	else
		printf("%s\n", token);
	store_close(st);
	if (r == 0 && isatty(STDOUT_FILENO))
		fprintf(stderr,
		        "sottod: single-use invite valid for %ld day%s; register with "
		        "sotto register --invite TOKEN\n",
		        days, days == 1 ? "" : "s");
	return r == 0 ? 0 : 2;
}

static void
log_fingerprint(SSL_CTX *ctx)
{
	uint8_t h[TLS_SPKI_HASH_BYTES];
	char fp[80];

	if (tls_ctx_spki_sha256(ctx, h) != 0)
		return;
	tls_format_fingerprint(fp, sizeof(fp), h);
	log_info("server fingerprint %s (clients pin it: sotto --server-fingerprint %s)", fp, fp);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct config *cfg;
	SSL_CTX *ctx = NULL;
	char err[1024];

	if (sig == SIGHUP) {
		log_info("SIGHUP: reloading the configuration and certificate");
		if ((cfg = load_config(err, sizeof(err))) == NULL) {
			log_error("reload failed, keeping the old configuration: %s", err);
			return;
		}
		if (tls_server_ctx_new(&ctx, cfg->cert, cfg->key, err, sizeof(err)) != 0) {
			log_error("reload failed, keeping the old certificate: %s", err);
			config_free(cfg);
			free(cfg);
			return;
		}
		if (strcmp(cfg->state_dir, the_config->state_dir) != 0)
			log_warn("state_dir changes take effect at the next start");
		log_open("sottod", cfg->log_level, cfg->syslog);
		server_reload(the_server, cfg, ctx);
		log_fingerprint(ctx);
		config_free(the_config);
		free(the_config);
		the_config = cfg;
		return;
	}
	server_shutdown(the_server, sig == SIGTERM ? "the server is stopping (SIGTERM)"
	                                           : "the server is stopping (SIGINT)");
}

/* Raise the soft descriptor limit to the hard one: each client is one descriptor. */
static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int
main(int argc, char **argv)
{
	struct event *sigs[3] = {NULL, NULL, NULL};
	const int signums[3] = {SIGHUP, SIGTERM, SIGINT};
	struct event_base *base = NULL;
	struct store *st = NULL;
	SSL_CTX *ctx = NULL;
	char err[1024];
	int i, rc = 1;

	signal(SIGPIPE, SIG_IGN);
	/*
	 * File transfers allocate and free a 64 KiB frame per chunk; without
	 * this glibc gives the top of the heap back after each and asks for it
	 * again (two brk calls per chunk).  Keep up to 4 MiB of free heap.
	 */
	mallopt(M_TRIM_THRESHOLD, 4 * 1024 * 1024);
	mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
	if (sotto_crypto_init() != 0) {
		fprintf(stderr, "sottod: cannot initialise the crypto libraries\n");
		return 2;
	}
	parse_args(argc, argv);
	if ((the_config = load_config(err, sizeof(err))) == NULL) {
		fprintf(stderr, "sottod: %s\n", err);
		return 1;
	}
	if (opts.check_config) {
		if (opts.verbose)
			config_write(the_config, stdout);
		printf("sottod: configuration OK\n");
		rc = 0;
		goto out;
	}
	if (opts.make_invite) {
		rc = make_invite(the_config);
		goto out;
	}
	log_open("sottod", the_config->log_level, the_config->syslog);
	raise_nofile();
	if (make_state_dir(the_config->state_dir, err, sizeof(err)) != 0 ||
	        lock_state_dir(the_config->state_dir, err, sizeof(err)) != 0 ||
	        ensure_certificate(the_config, err, sizeof(err)) != 0 ||
	        tls_server_ctx_new(&ctx, the_config->cert, the_config->key, err, sizeof(err)) !=
	                0 ||
	        store_sqlite_open(&st, the_config->state_dir, err, sizeof(err)) != 0) {
		log_error("%s", err);
		goto out;
	}
	if ((base = event_base_new()) == NULL) {
		log_error("cannot create the event loop");
		rc = 2;
		goto out;
	}
	if (server_new(&the_server, base, the_config, st, ctx, err, sizeof(err)) != 0) {
		log_error("%s", err);
		rc = 2;
		goto out;
	}
	ctx = NULL; /* owned by the server */
	if (server_listen(the_server, err, sizeof(err)) != 0) {
		log_error("%s", err);
		goto out;
	}
	for (i = 0; i < 3; i++) {
		if ((sigs[i] = evsignal_new(base, signums[i], on_signal, NULL)) == NULL ||
		        event_add(sigs[i], NULL) != 0) {
			log_error("cannot install signal handlers");
			rc = 2;
			goto out;
		}
	}
	log_fingerprint(the_server->ssl_ctx);
	log_info("sottod %s ready (state %s, registration %s)", PACKAGE_VERSION,
	        the_config->state_dir,
	        the_config->registration == CONFIG_REGISTRATION_OPEN     ? "open"
	        : the_config->registration == CONFIG_REGISTRATION_INVITE ? "invite"
	                                                                 : "closed");
	event_base_dispatch(base);
	server_commit(the_server);
	log_info("stopped");
	rc = 0;
out:
	for (i = 0; i < 3; i++) {
		if (sigs[i] != NULL)
			event_free(sigs[i]);
	}
	if (the_server != NULL) {
		SSL_CTX_free(the_server->ssl_ctx);
		server_free(the_server);
	}
	SSL_CTX_free(ctx);
	store_close(st);
	if (base != NULL)
		event_base_free(base);
	if (the_config != NULL) {
		config_free(the_config);
		free(the_config);
	}
	return rc;
}
