/*
 * sotto-keygen: make sotto identity keys and server TLS certificates, and
 * show, export or re-protect them.  Options follow ssh-keygen(1) where they
 * mean the same thing; see sotto-keygen(1).  Exit status: 0 on success, 1 for
 * a usage or input error, 2 for an internal error.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/x509.h>

#include "crypto/hash.h"
#include "crypto/util.h"

#include "fingerprint.h"
#include "identity.h"
#include "keyfile.h"
#include "passphrase.h"
#include "pkey.h"
#include "tlscert.h"

#define PROG "sotto-keygen"

#define EXIT_OK       0
#define EXIT_USER     1
#define EXIT_INTERNAL 2

#define DEFAULT_PROFILE_DIR "sotto/default"
#define DEFAULT_IDENTITY    "identity"

enum mode {
	MODE_GENERATE,
	MODE_LIST,   /* -l */
	MODE_PUBLIC, /* -y */
	MODE_PASSWD, /* -p */
	MODE_EXPORT  /* -e */
};

enum keytype { TYPE_ED25519, TYPE_RSA, TYPE_TLS };

struct options {
	enum mode mode;
	int nmodes;
	enum keytype type;
	int type_set;
	int bits;
	const char *file;
	const char *comment;
	const char *pass_file;
	const char *new_pass_file;
	const char *san;
	int days;
	int days_set;
	int ecdsa;
	int quiet;
	int verbose;
	int force;
};

/* What -l, -y and -e found in a file. */
struct loaded {
	EVP_PKEY *pkey; /* public, or private when is_private */
	char *comment;  /* may be NULL */
	int is_private;
	const char *from; /* the file the key was read from */
	char *pubpath;    /* FILE.pub when the key was read from there */
};

enum { OPT_FORCE = 256, OPT_PASSFILE, OPT_NEWPASSFILE, OPT_SAN, OPT_DAYS, OPT_ECDSA };

static const struct option long_options[] = {
        {"force", no_argument, NULL, OPT_FORCE},
        {"passphrase-file", required_argument, NULL, OPT_PASSFILE},
        {"new-passphrase-file", required_argument, NULL, OPT_NEWPASSFILE},
        {"san", required_argument, NULL, OPT_SAN},
        {"days", required_argument, NULL, OPT_DAYS},
        {"ecdsa", no_argument, NULL, OPT_ECDSA},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
};

/* Print "sotto-keygen: MESSAGE" on stderr and return status, so callers can return it. */
static int __attribute__((format(printf, 2, 3))) fail(int status, const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return status;
}

static void
usage(FILE *f)
{
	fputs("usage: " PROG " [-q] [-t ed25519 | rsa | tls] [-b bits] [-C comment] [-f file]\n"
	      "                    [--force] [--passphrase-file file]\n"
	      "                    [--san host,...] [--days n] [--ecdsa]\n"
	      "       " PROG " -l [-v] [-f file] [--passphrase-file file]\n"
	      "       " PROG " -y [-f file] [--passphrase-file file]\n"
	      "       " PROG " -e [-f file] [--passphrase-file file]\n"
	      "       " PROG " -p [-q] [-f file] [--passphrase-file file]"
	      " [--new-passphrase-file file]\n"
	      "       " PROG " -h | -V\n"
	      "\n"
	      "  -t type        key to make: ed25519 (default), rsa or tls\n"
	      "  -b bits        RSA size: 3072 (default) or 4096\n"
	      "  -C comment     comment for the public key (default user@host)\n"
	      "  -f file        key file (default $XDG_DATA_HOME/sotto/default/identity);\n"
	      "                 for -t tls, the base of file.key and file.crt\n"
	      "  -q             quiet: print nothing but errors and warnings\n"
	      "  --force        replace existing files\n"
	      "  --passphrase-file file      read the passphrase from the first line of file\n"
	      "  --new-passphrase-file file  read the new passphrase for -p from file\n"
	      "  --san host,... subjectAltName entries for -t tls (default: this host's name)\n"
	      "  --days n       certificate validity for -t tls, 1 to 3650 (default 825)\n"
	      "  --ecdsa        make an ECDSA P-256 TLS key instead of Ed25519\n"
	      "  -l             show the fingerprint of a key, public key or certificate\n"
	      "  -v             with -l, also draw the fingerprint as randomart\n"
	      "  -y             print the public key line of a private key\n"
	      "  -e             print the public key as PEM\n"
	      "  -p             change the passphrase of a private key\n"
	      "  -h, --help     show this help\n"
	      "  -V, --version  show the version\n",
	        f);
}

/* Parse a whole decimal number in lo..hi; 0 on success. */
static int
parse_int(const char *s, int lo, int hi, int *out)
{
	char *end = NULL;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = (int)v;
	return 0;
}

/* Turn argv into options; on error print one line and return the exit status, else -1. */
static int
parse_options(struct options *o, int argc, char **argv)
{
	const char *bad;
	int c;

	memset(o, 0, sizeof(*o));
	o->mode = MODE_GENERATE;
	o->type = TYPE_ED25519;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":t:b:f:C:qlvypehV", long_options, NULL)) != -1) {
		switch (c) {
		case 't':
			if (strcmp(optarg, "ed25519") == 0)
				o->type = TYPE_ED25519;
			else if (strcmp(optarg, "rsa") == 0)
				o->type = TYPE_RSA;
			else if (strcmp(optarg, "tls") == 0)
				o->type = TYPE_TLS;
			else
				return fail(EXIT_USER,
				        "-t %s: unknown key type; use ed25519, rsa or tls", optarg);
			o->type_set = 1;
			break;
		case 'b':
			if (parse_int(optarg, 1, INT_MAX, &o->bits) != 0)
				return fail(EXIT_USER,
				        "-b %s: not a number of bits; use 3072 or 4096", optarg);
			break;
		case 'f':
			if (*optarg == '\0')
				return fail(EXIT_USER, "-f needs a file name");
			o->file = optarg;
			break;
		case 'C':
			o->comment = optarg;
			break;
		case 'q':
			o->quiet = 1;
			break;
		case 'v':
			o->verbose = 1;
			break;
		case 'l':
		case 'y':
		case 'p':
		case 'e':
			o->mode = c == 'l'   ? MODE_LIST
			          : c == 'y' ? MODE_PUBLIC
			          : c == 'p' ? MODE_PASSWD
			                     : MODE_EXPORT;
			o->nmodes++;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			printf("%s %s\n", PROG, PACKAGE_VERSION);
			return EXIT_OK;
		case OPT_FORCE:
			o->force = 1;
			break;
		case OPT_PASSFILE:
			o->pass_file = optarg;
			break;
		case OPT_NEWPASSFILE:
			o->new_pass_file = optarg;
			break;
		case OPT_SAN:
			o->san = optarg;
			break;
		case OPT_DAYS:
			if (parse_int(optarg, 1, TLSCERT_MAX_DAYS, &o->days) != 0)
				return fail(EXIT_USER,
				        "--days %s: give a whole number of days from 1 to %d",
				        optarg, TLSCERT_MAX_DAYS);
			o->days_set = 1;
			break;
		case OPT_ECDSA:
			o->ecdsa = 1;
			break;
		case ':':
			if (optopt > 0 && optopt < 256)
				return fail(EXIT_USER,
				        "option -%c needs an argument; try '%s --help'", optopt,
				        PROG);
			return fail(EXIT_USER, "option %s needs an argument; try '%s --help'",
			        argv[optind - 1], PROG);
		default:
			/* "--force=x": a long option that takes no argument was given one. */
			if (optopt >= 256 ||
			        (optopt != 0 && strncmp(argv[optind - 1], "--", 2) == 0 &&
			                strchr(argv[optind - 1], '=') != NULL))
				return fail(EXIT_USER,
				        "option %.*s takes no argument; try '%s --help'",
				        (int)strcspn(argv[optind - 1], "="), argv[optind - 1],
				        PROG);
			if (optopt > 0 && optopt < 256)
				return fail(EXIT_USER, "unknown option -%c; try '%s --help'",
				        optopt, PROG);
			return fail(EXIT_USER, "unknown option %s; try '%s --help'",
			        argv[optind - 1], PROG);
		}
	}
	if (optind < argc)
		return fail(EXIT_USER, "unexpected argument '%s'; name the key file with -f",
		        argv[optind]);
	if (o->nmodes > 1)
		return fail(EXIT_USER, "-l, -y, -e and -p cannot be combined");
	if (o->verbose && o->mode != MODE_LIST)
		return fail(EXIT_USER, "-v goes with -l");
	if (o->new_pass_file != NULL && o->mode != MODE_PASSWD)
		return fail(EXIT_USER, "--new-passphrase-file goes with -p");
	bad = NULL;
	if (o->mode != MODE_GENERATE) {
		bad = o->type_set          ? "-t"
		      : o->bits != 0       ? "-b"
		      : o->comment != NULL ? "-C"
		      : o->san != NULL     ? "--san"
		      : o->days_set        ? "--days"
		      : o->ecdsa           ? "--ecdsa"
		                           : NULL;
		if (bad != NULL)
			return fail(EXIT_USER, "%s applies only when making a key", bad);
		return -1;
	}
	if (o->type != TYPE_TLS) {
		bad = o->san != NULL ? "--san"
		      : o->days_set  ? "--days"
		      : o->ecdsa     ? "--ecdsa"
		                     : NULL;
		if (bad != NULL)
			return fail(EXIT_USER, "%s applies only to -t tls", bad);
	}
	if (o->type == TYPE_RSA) {
		if (o->bits == 0)
			o->bits = IDENTITY_RSA_DEFAULT_BITS;
		if (!rsa_identity_bits_ok(o->bits))
			return fail(EXIT_USER, "-b %d: RSA identities must be 3072 or 4096 bits",
			        o->bits);
	} else if (o->bits != 0) {
		return fail(EXIT_USER, "-b %d: only RSA keys have a size to choose (use -t rsa)",
		        o->bits);
	}
	if (o->type == TYPE_TLS) {
		if (o->file == NULL)
			return fail(
			        EXIT_USER, "-t tls needs -f BASE; it writes BASE.key and BASE.crt");
		if (o->comment != NULL)
			return fail(EXIT_USER, "-C applies only to identity keys");
		if (!o->days_set)
			o->days = TLSCERT_DEFAULT_DAYS;
	}
	return -1;
}

/* mkdir -p with mode 0700 for every directory it creates; errno says why on failure. */
static int
make_private_dirs(const char *path)
{
	struct stat st;
	char *copy, *p;
	int r = 0, last;

	if ((copy = strdup(path)) == NULL)
		return SOTTO_ERR_NOMEM;
	for (p = copy + 1; r == 0; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		last = *p == '\0';
		*p = '\0';
		if (mkdir(copy, 0700) != 0 && errno != EEXIST)
			r = SOTTO_ERR_IO;
		else if (stat(copy, &st) != 0)
			r = SOTTO_ERR_IO;
		else if (!S_ISDIR(st.st_mode)) {
			errno = ENOTDIR;
			r = SOTTO_ERR_IO;
		}
		if (last)
			break;
		*p = '/';
	}
	free(copy);
	return r;
}

/*
 * The default identity path, $XDG_DATA_HOME/sotto/default/identity (or
 * ~/.local/share/...), creating the directories (0700) when create is set.
 */
static int
default_identity_path(char **out, int create)
{
	const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
	const struct passwd *pw;
	char *dir = NULL;
	size_t n;
	int status = EXIT_USER;

	*out = NULL;
	/* The XDG specification says to ignore a relative XDG_DATA_HOME. */
	if (xdg != NULL && xdg[0] == '/') {
		n = strlen(xdg) + sizeof("/" DEFAULT_PROFILE_DIR);
		if ((dir = malloc(n)) != NULL)
			snprintf(dir, n, "%s/%s", xdg, DEFAULT_PROFILE_DIR);
	} else {
		if (home == NULL || home[0] != '/') {
			if ((pw = getpwuid(getuid())) == NULL || pw->pw_dir == NULL)
				return fail(
				        EXIT_USER, "no home directory; name the key file with -f");
			home = pw->pw_dir;
		}
		n = strlen(home) + sizeof("/.local/share/" DEFAULT_PROFILE_DIR);
		if ((dir = malloc(n)) != NULL)
			snprintf(dir, n, "%s/.local/share/%s", home, DEFAULT_PROFILE_DIR);
	}
	if (dir == NULL)
		return fail(EXIT_INTERNAL, "out of memory");
	if (create && make_private_dirs(dir) != 0) {
		fail(EXIT_USER, "cannot create %s: %s; name the key file with -f", dir,
		        strerror(errno));
		goto out;
	}
	n = strlen(dir) + sizeof("/" DEFAULT_IDENTITY);
	if ((*out = malloc(n)) == NULL) {
		status = fail(EXIT_INTERNAL, "out of memory");
		goto out;
	}
	snprintf(*out, n, "%s/%s", dir, DEFAULT_IDENTITY);
	status = EXIT_OK;
out:
	free(dir);
	return status;
}

/* One line about a failure concerning file, and the exit status it deserves. */
static int
report(const char *file, int err)
{
	switch (err) {
	case SOTTO_ERR_PASSPHRASE:
		return fail(EXIT_USER, "%s: incorrect passphrase", file);
	case SOTTO_ERR_NOTFOUND:
		return fail(EXIT_USER, "%s: no such file; check the name given with -f", file);
	case SOTTO_ERR_SHORT:
		return fail(EXIT_USER,
		        "%s: truncated (the PEM block never ends); restore it from a backup", file);
	case SOTTO_ERR_FORMAT:
	case SOTTO_ERR_RANGE:
		return fail(EXIT_USER,
		        "%s: not a sotto key, public key or certificate (damaged or foreign file)",
		        file);
	case SOTTO_ERR_UNSUPPORTED:
		return fail(EXIT_USER,
		        "%s: unsupported key type or size (sotto uses Ed25519, RSA 3072 or 4096, "
		        "and ECDSA P-256)",
		        file);
	case SOTTO_ERR_EXISTS:
		return fail(EXIT_USER, "%s already exists; use --force to overwrite", file);
	case SOTTO_ERR_IO:
		return fail(EXIT_USER, "%s: %s", file, strerror(errno));
	default:
		return fail(EXIT_INTERNAL, "%s: internal error: %s", file, sotto_strerror(err));
	}
}

/* Check that a file to be written can be: a missing directory or an existing file is an error. */
static int
check_writable(const char *path, int force)
{
	int r = keyfile_check(path, force);

	if (r == 0)
		return EXIT_OK;
	if (r == SOTTO_ERR_EXISTS)
		return report(path, r);
	if (r == SOTTO_ERR_IO)
		return fail(EXIT_USER, "cannot write %s: %s; choose another path with -f", path,
		        strerror(errno));
	return report(path, r);
}

/* A passphrase file's first line, with one-line messages for each failure. */
static int
read_pass_file(const char *path, char **pass)
{
	int r = passphrase_read_file(pass, path);

	switch (r) {
	case 0:
		return EXIT_OK;
	case SOTTO_ERR_NOTFOUND:
		return fail(EXIT_USER, "%s: no such passphrase file", path);
	case SOTTO_ERR_IO:
		return fail(
		        EXIT_USER, "%s: cannot read passphrase file: %s", path, strerror(errno));
	case SOTTO_ERR_RANGE:
		return fail(EXIT_USER, "%s: passphrase longer than %d bytes", path, PASSPHRASE_MAX);
	case SOTTO_ERR_FORMAT:
		return fail(EXIT_USER, "%s: passphrase file holds a NUL byte", path);
	default:
		return report(path, r);
	}
}

/* One-line messages for a failed terminal prompt. */
static int
report_ask(int r)
{
	switch (r) {
	case SOTTO_ERR_VERIFY:
		return fail(EXIT_USER, "passphrases do not match; try again");
	case SOTTO_ERR_RANGE:
		return fail(EXIT_USER, "passphrase longer than %d bytes", PASSPHRASE_MAX);
	case SOTTO_ERR_CLOSED:
		return fail(EXIT_USER, "no passphrase given (end of input)");
	case SOTTO_ERR_AGAIN:
		return fail(EXIT_USER, "interrupted");
	case SOTTO_ERR_IO:
		return fail(EXIT_USER, "cannot read the terminal: %s", strerror(errno));
	default:
		return fail(EXIT_INTERNAL, "reading the passphrase: %s", sotto_strerror(r));
	}
}

/* The passphrase protecting an existing key: from a file, else asked once. */
static int
get_existing_pass(const struct options *o, const char *file, char **pass)
{
	char prompt[PATH_MAX + 64];
	int r;

	*pass = NULL;
	if (o->pass_file != NULL)
		return read_pass_file(o->pass_file, pass);
	if (!passphrase_can_ask())
		return fail(EXIT_USER,
		        "%s is encrypted and there is no terminal to ask for its passphrase; use "
		        "--passphrase-file FILE",
		        file);
	snprintf(prompt, sizeof(prompt), "Enter passphrase for %s: ", file);
	if ((r = passphrase_ask(pass, prompt)) != 0)
		return report_ask(r);
	return EXIT_OK;
}

/* A new passphrase: from file (if given), else asked twice. */
static int
get_new_pass(const char *file, const char *option, const char *prompt, char **pass)
{
	int r;

	*pass = NULL;
	if (file != NULL)
		return read_pass_file(file, pass);
	if (!passphrase_can_ask())
		return fail(EXIT_USER, "no terminal to ask for a passphrase; use %s FILE", option);
	if ((r = passphrase_ask_new(pass, prompt, "Enter same passphrase again: ")) != 0)
		return report_ask(r);
	return EXIT_OK;
}

/* "user@host" for the default comment; empty parts are left out. */
static char *
default_comment(void)
{
	const struct passwd *pw = getpwuid(getuid());
	const char *user = pw != NULL ? pw->pw_name : getenv("USER");
	char host[256] = "", *s;
	size_t n;

	if (gethostname(host, sizeof(host) - 1) != 0)
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	if (user == NULL)
		user = "";
	n = strlen(user) + strlen(host) + 2;
	if ((s = malloc(n)) == NULL)
		return NULL;
	if (*user != '\0' && *host != '\0')
		snprintf(s, n, "%s@%s", user, host);
	else
		snprintf(s, n, "%s%s", user, host);
	if (!identity_comment_ok(s))
		s[0] = '\0';
	return s;
}

/* Print the fingerprint's randomart for a DER SPKI. */
static void
print_randomart(const uint8_t *der, size_t len, const char *type, int bits)
{
	uint8_t digest[HASH_SHA256_BYTES];
	char art[RANDOMART_LEN];

	hash_sha256(digest, der, len);
	fingerprint_randomart(art, digest, sizeof(digest), type, bits, "SHA256");
	printf("%s\n", art);
}

/* Make an identity key pair and write FILE and FILE.pub. */
static int
generate_identity(const struct options *o)
{
	struct identity *id = NULL;
	char *path = NULL, *pubpath = NULL, *pass = NULL, *comment = NULL;
	char fp[FINGERPRINT_LEN];
	enum identity_type type = o->type == TYPE_RSA ? IDENTITY_RSA : IDENTITY_ED25519;
	size_t n;
	int status, r;

	if (o->file != NULL) {
		if ((path = strdup(o->file)) == NULL) {
			status = fail(EXIT_INTERNAL, "out of memory");
			goto out;
		}
	} else if ((status = default_identity_path(&path, 1)) != EXIT_OK)
		goto out;
	n = strlen(path) + sizeof(".pub");
	if ((pubpath = malloc(n)) == NULL) {
		status = fail(EXIT_INTERNAL, "out of memory");
		goto out;
	}
	snprintf(pubpath, n, "%s.pub", path);
	if (o->comment != NULL) {
		if (!identity_comment_ok(o->comment)) {
			status = fail(EXIT_USER,
			        "-C: a comment is printable text of at most %d bytes without "
			        "control characters",
			        PKEY_COMMENT_MAX);
			goto out;
		}
		comment = strdup(o->comment);
	} else
		comment = default_comment();
	if (comment == NULL) {
		status = fail(EXIT_INTERNAL, "out of memory");
		goto out;
	}
	if ((status = check_writable(path, o->force)) != EXIT_OK ||
	        (status = check_writable(pubpath, o->force)) != EXIT_OK)
		goto out;
	if (!o->quiet) {
		printf("Generating public/private %s key pair.\n",
		        type == IDENTITY_RSA ? "rsa" : "ed25519");
		fflush(stdout);
	}
	if ((status = get_new_pass(o->pass_file, "--passphrase-file",
	             "Enter passphrase (empty for no passphrase): ", &pass)) != EXIT_OK)
		goto out;
	if (*pass == '\0')
		fprintf(stderr, "%s: warning: empty passphrase; %s is stored unencrypted\n", PROG,
		        path);
	if ((r = identity_generate(&id, type, o->bits)) != 0) {
		status = fail(EXIT_INTERNAL, "cannot make the key: %s", sotto_strerror(r));
		goto out;
	}
	if ((r = identity_save(id, path, pass, *comment != '\0' ? comment : NULL, o->force)) != 0) {
		status = r == SOTTO_ERR_IO
		                 ? fail(EXIT_USER,
		                           "cannot write %s: %s; choose another path with -f", path,
		                           strerror(errno))
		                 : report(path, r);
		goto out;
	}
	if (!o->quiet) {
		identity_fingerprint(fp, identity_public(id));
		printf("Your identification has been saved in %s\n", path);
		printf("Your public key has been saved in %s\n", pubpath);
		printf("The key fingerprint is:\n");
		printf("%s%s%s\n", fp, *comment != '\0' ? " " : "", comment);
		printf("The key's randomart image is:\n");
		print_randomart(
		        id->pub.der, id->pub.derlen, identity_type_name(type), id->pub.bits);
	}
	status = EXIT_OK;
out:
	identity_free(id);
	passphrase_free(pass);
	free(comment);
	free(pubpath);
	free(path);
	return status;
}

/* The SAN list for -t tls: --san, else this host's name when it is a valid DNS name. */
static int
tls_names(const struct options *o, char ***names, size_t *n)
{
	char host[256] = "";
	const char *bad = NULL;
	int r;

	*names = NULL;
	*n = 0;
	if (o->san != NULL) {
		r = tlscert_names_parse(names, n, o->san, &bad);
		if (r == SOTTO_ERR_RANGE)
			return fail(EXIT_USER, "--san: more than %d names", TLSCERT_MAX_NAMES);
		if (r == SOTTO_ERR_FORMAT && strcspn(bad, ",") == 0)
			return fail(
			        EXIT_USER, "--san: empty name; separate names with single commas");
		if (r == SOTTO_ERR_FORMAT)
			return fail(EXIT_USER,
			        "--san: '%.*s' is neither a DNS name nor an IP address; separate "
			        "names with commas",
			        (int)strcspn(bad, ","), bad);
		if (r != 0)
			return fail(EXIT_INTERNAL, "--san: %s", sotto_strerror(r));
		return EXIT_OK;
	}
	if (gethostname(host, sizeof(host) - 1) != 0 || tlscert_name_check(host) != 0)
		return EXIT_OK;
	r = tlscert_names_parse(names, n, host, NULL);
	return r == 0 ? EXIT_OK : fail(EXIT_INTERNAL, "%s", sotto_strerror(r));
}

/* Make the server's TLS key and self-signed certificate: BASE.key and BASE.crt. */
static int
generate_tls(const struct options *o)
{
	struct tlscert_params params;
	char **names = NULL, *keypath = NULL, *crtpath = NULL, *pass = NULL, *cn = NULL;
	char fp[FINGERPRINT_LEN];
	EVP_PKEY *pub;
	X509 *cert = NULL;
	uint8_t *der = NULL;
	size_t nnames = 0, derlen = 0;
	int status, r;

	if ((r = tlscert_paths(&keypath, &crtpath, o->file)) != 0) {
		status = r == SOTTO_ERR_INVALID
		                 ? fail(EXIT_USER,
		                           "-f %s: give a file name base, such as DIR/server",
		                           o->file)
		                 : fail(EXIT_INTERNAL, "out of memory");
		goto out;
	}
	if ((status = tls_names(o, &names, &nnames)) != EXIT_OK)
		goto out;
	if ((status = check_writable(keypath, o->force)) != EXIT_OK ||
	        (status = check_writable(crtpath, o->force)) != EXIT_OK)
		goto out;
	/* The server reads its key unattended, so it is only encrypted on request. */
	if (o->pass_file != NULL && (status = read_pass_file(o->pass_file, &pass)) != EXIT_OK)
		goto out;
	params.names = (const char *const *)names;
	params.nnames = nnames;
	params.days = o->days;
	params.ecdsa = o->ecdsa;
	if (!o->quiet) {
		printf("Generating a%s TLS key and self-signed certificate.\n",
		        o->ecdsa ? "n ECDSA P-256" : "n Ed25519");
		fflush(stdout);
	}
	if ((r = tlscert_generate(&cert, o->file, &params, pass, o->force)) != 0) {
		status = r == SOTTO_ERR_IO
		                 ? fail(EXIT_USER,
		                           "cannot write %s: %s; choose another path with -f",
		                           keypath, strerror(errno))
		                 : report(keypath, r);
		goto out;
	}
	if (!o->quiet) {
		if ((r = tlscert_spki_fingerprint(fp, cert)) != 0 ||
		        (pub = X509_get0_pubkey(cert)) == NULL ||
		        (r = pkey_spki_der(&der, &derlen, pub)) != 0) {
			status = fail(EXIT_INTERNAL, "%s: %s", crtpath, sotto_strerror(r));
			goto out;
		}
		cn = tlscert_common_name(cert);
		printf("Your private key has been saved in %s\n", keypath);
		printf("Your certificate has been saved in %s\n", crtpath);
		printf("The certificate's public key fingerprint (SPKI SHA-256) is:\n");
		printf("%s%s%s\n", fp, cn != NULL ? " " : "", cn != NULL ? cn : "");
		printf("The key's randomart image is:\n");
		print_randomart(der, derlen, pkey_type_name(pub), pkey_bits(pub));
	}
	status = EXIT_OK;
out:
	free(cn);
	free(der);
	X509_free(cert);
	passphrase_free(pass);
	tlscert_names_free(names);
	free(keypath);
	free(crtpath);
	return status;
}

static void
loaded_clear(struct loaded *l)
{
	EVP_PKEY_free(l->pkey);
	free(l->comment);
	free(l->pubpath);
	memset(l, 0, sizeof(*l));
}

/* A sotto .pub file beside a private key, if there is one that parses. */
static int
load_pub_beside(struct loaded *l, const char *file)
{
	struct identity_pub *pub = NULL;
	char *pubpath;
	size_t n = strlen(file) + sizeof(".pub");

	if ((pubpath = malloc(n)) == NULL)
		return 0;
	snprintf(pubpath, n, "%s.pub", file);
	if (identity_pub_load(&pub, &l->comment, pubpath) != 0 ||
	        pkey_from_spki_der(&l->pkey, pub->der, pub->derlen) != 0) {
		identity_pub_free(pub);
		free(l->comment);
		l->comment = NULL;
		free(pubpath);
		return 0;
	}
	identity_pub_free(pub);
	l->pubpath = pubpath;
	l->from = pubpath;
	return 1;
}

/*
 * Read whatever file holds: a .pub line, a certificate, a PEM public key or a
 * private key (decrypted with a passphrase when it is encrypted).  With
 * need_private, only a private key will do; otherwise a private key's FILE.pub
 * is used when it exists, so that no passphrase is needed.
 */
static int
load_any(const struct options *o, const char *file, int need_private, struct loaded *l)
{
	struct identity_pub *pub = NULL;
	uint8_t *data = NULL;
	char *pass = NULL;
	const char *text;
	X509 *cert = NULL;
	size_t len = 0;
	int r, status = EXIT_USER;

	memset(l, 0, sizeof(*l));
	l->from = file;
	if ((r = keyfile_read(file, PKEY_PEM_MAX, &data, &len)) != 0) {
		if (r == SOTTO_ERR_IO)
			return fail(EXIT_USER, "cannot read %s: %s", file, strerror(errno));
		return report(file, r);
	}
	text = (const char *)data;
	if (strlen(text) != len) {
		status = report(file, SOTTO_ERR_FORMAT);
		goto out;
	}
	if (strstr(text, "PRIVATE KEY-----") != NULL) {
		if (!need_private && load_pub_beside(l, file)) {
			status = EXIT_OK;
			goto out;
		}
		/* Try without a passphrase first, so a damaged file is reported before any prompt. */
		r = pkey_private_from_pem(&l->pkey, &l->comment, text, len, NULL);
		if (r == SOTTO_ERR_PASSPHRASE) {
			if ((status = get_existing_pass(o, file, &pass)) != EXIT_OK)
				goto out;
			r = pkey_private_from_pem(&l->pkey, &l->comment, text, len, pass);
		}
		l->is_private = 1;
	} else if (need_private) {
		status = fail(EXIT_USER, "%s: not a private key; give the private key file with -f",
		        file);
		goto out;
	} else if (strncmp(text, IDENTITY_ED25519_PREFIX " ",
	                   strlen(IDENTITY_ED25519_PREFIX) + 1) == 0 ||
	           strncmp(text, IDENTITY_RSA_PREFIX " ", strlen(IDENTITY_RSA_PREFIX) + 1) == 0) {
		if ((r = identity_pub_load(&pub, &l->comment, file)) == 0)
			r = pkey_from_spki_der(&l->pkey, pub->der, pub->derlen);
	} else if (strstr(text, "-----BEGIN CERTIFICATE-----") != NULL) {
		if ((r = tlscert_from_pem(&cert, text, len)) == 0) {
			l->comment = tlscert_common_name(cert);
			if ((l->pkey = X509_get_pubkey(cert)) == NULL)
				r = SOTTO_ERR_FORMAT;
			else if (pkey_kind(l->pkey) == PKEY_UNSUPPORTED)
				r = SOTTO_ERR_UNSUPPORTED;
		}
	} else if (strstr(text, "-----BEGIN PUBLIC KEY-----") != NULL) {
		r = pkey_public_from_pem(&l->pkey, text, len);
	} else
		r = SOTTO_ERR_FORMAT;
	if (r != 0) {
		status = report(file, r);
		goto out;
	}
	status = EXIT_OK;
out:
	if (status != EXIT_OK)
		loaded_clear(l);
	identity_pub_free(pub);
	X509_free(cert);
	passphrase_free(pass);
	keyfile_free(data, len);
	return status;
}

/* The key file for -l, -y, -e and -p: -f, else the default identity. */
static int
inspect_path(const struct options *o, char **path)
{
	if (o->file != NULL) {
		*path = strdup(o->file);
		return *path != NULL ? EXIT_OK : fail(EXIT_INTERNAL, "out of memory");
	}
	return default_identity_path(path, 0);
}

/* -l: "BITS SHA256:... [COMMENT] (TYPE)", with randomart under -v. */
static int
list_key(const struct options *o)
{
	struct loaded l;
	char *path = NULL;
	char fp[FINGERPRINT_LEN];
	uint8_t *der = NULL;
	size_t derlen = 0;
	int status, r;

	memset(&l, 0, sizeof(l));
	if ((status = inspect_path(o, &path)) != EXIT_OK)
		return status;
	if ((status = load_any(o, path, 0, &l)) != EXIT_OK)
		goto out;
	if ((r = pkey_spki_der(&der, &derlen, l.pkey)) != 0) {
		status = report(path, r);
		goto out;
	}
	fingerprint_sha256(fp, der, derlen);
	printf("%d %s %s%s(%s)\n", pkey_bits(l.pkey), fp, l.comment != NULL ? l.comment : "",
	        l.comment != NULL ? " " : "", pkey_type_name(l.pkey));
	if (o->verbose)
		print_randomart(der, derlen, pkey_type_name(l.pkey), pkey_bits(l.pkey));
	status = EXIT_OK;
out:
	free(der);
	loaded_clear(&l);
	free(path);
	return status;
}

/* -y: the .pub line of a private identity key. */
static int
print_public(const struct options *o)
{
	struct loaded l;
	struct identity *id = NULL;
	char *path = NULL, *line = NULL;
	int status, r;

	memset(&l, 0, sizeof(l));
	if ((status = inspect_path(o, &path)) != EXIT_OK)
		return status;
	if ((status = load_any(o, path, 1, &l)) != EXIT_OK)
		goto out;
	if ((r = identity_from_pkey(&id, l.pkey)) != 0) {
		if (r != SOTTO_ERR_UNSUPPORTED)
			status = report(path, r);
		else if (pkey_kind(l.pkey) == PKEY_RSA)
			status = fail(EXIT_USER,
			        "%s: a %d-bit RSA key is not a sotto identity (those have 3072 or "
			        "4096 bits)",
			        path, pkey_bits(l.pkey));
		else
			status = fail(EXIT_USER,
			        "%s: %s keys are not sotto identities; -y prints identity keys "
			        "only",
			        path, pkey_type_name(l.pkey));
		goto out;
	}
	if ((r = identity_pub_format_line(&line, identity_public(id), l.comment)) != 0) {
		status = report(path, r);
		goto out;
	}
	printf("%s\n", line);
	status = EXIT_OK;
out:
	free(line);
	identity_free(id);
	loaded_clear(&l);
	free(path);
	return status;
}

/* -e: the public key as PEM SPKI. */
static int
export_public(const struct options *o)
{
	struct loaded l;
	char *path = NULL, *pem = NULL;
	size_t len = 0;
	int status, r;

	memset(&l, 0, sizeof(l));
	if ((status = inspect_path(o, &path)) != EXIT_OK)
		return status;
	if ((status = load_any(o, path, 0, &l)) != EXIT_OK)
		goto out;
	if ((r = pkey_public_to_pem(&pem, &len, l.pkey)) != 0) {
		status = report(path, r);
		goto out;
	}
	fwrite(pem, 1, len, stdout);
	status = EXIT_OK;
out:
	free(pem);
	loaded_clear(&l);
	free(path);
	return status;
}

/* -p: decrypt with the old passphrase and rewrite, atomically, with the new one. */
static int
change_passphrase(const struct options *o)
{
	struct loaded l;
	char *path = NULL, *pass = NULL, *pem = NULL;
	size_t len = 0;
	int status, r;

	memset(&l, 0, sizeof(l));
	if ((status = inspect_path(o, &path)) != EXIT_OK)
		return status;
	if ((status = load_any(o, path, 1, &l)) != EXIT_OK)
		goto out;
	if ((status = get_new_pass(o->new_pass_file, "--new-passphrase-file",
	             "Enter new passphrase (empty for no passphrase): ", &pass)) != EXIT_OK)
		goto out;
	if (*pass == '\0')
		fprintf(stderr, "%s: warning: empty passphrase; %s is stored unencrypted\n", PROG,
		        path);
	if ((r = pkey_private_to_pem(&pem, &len, l.pkey, pass, l.comment)) != 0) {
		status = report(path, r);
		goto out;
	}
	if ((r = keyfile_write(path, pem, len, KEYFILE_MODE_PRIVATE, 1)) != 0) {
		status = r == SOTTO_ERR_IO
		                 ? fail(EXIT_USER, "cannot write %s: %s", path, strerror(errno))
		                 : report(path, r);
		goto out;
	}
	if (!o->quiet)
		printf("Your identification has been saved with the new passphrase.\n");
	status = EXIT_OK;
out:
	pkey_free_buf(pem, len);
	passphrase_free(pass);
	loaded_clear(&l);
	free(path);
	return status;
}

int
main(int argc, char **argv)
{
	struct options o;
	int status;

	if ((status = parse_options(&o, argc, argv)) != -1)
		return status;
	if (sotto_crypto_init() != 0)
		return fail(EXIT_INTERNAL, "cannot initialise the crypto libraries");
	switch (o.mode) {
	case MODE_LIST:
		status = list_key(&o);
		break;
	case MODE_PUBLIC:
		status = print_public(&o);
		break;
	case MODE_EXPORT:
		status = export_public(&o);
		break;
	case MODE_PASSWD:
		status = change_passphrase(&o);
		break;
	case MODE_GENERATE:
	default:
		status = o.type == TYPE_TLS ? generate_tls(&o) : generate_identity(&o);
		break;
	}
	if (fflush(stdout) != 0 && status == EXIT_OK)
		status = fail(EXIT_USER, "cannot write to standard output: %s", strerror(errno));
	return status;
}
