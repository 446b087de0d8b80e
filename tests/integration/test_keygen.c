/*
 * Integration tests for sotto-keygen: each runs the real program (from
 * $SOTTO_BUILDDIR) in a fresh directory and checks what a user would see:
 * exit status, messages, file modes, and that openssl(1) reads the files.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <limits.h>
#include <poll.h>
#include <pty.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/lib/proc.h"
#include "tests/lib/tdir.h"

#ifndef Test
/* cppcheck does not read criterion.h: let it analyse each test as a plain function. */
#define TestSuite(...)         struct test_suite_unused
#define Test(suite, name, ...) void test_##suite##_##name(void)
#endif

#define PASS    "correct horse"
#define NEWPASS "battery staple"

static char dir[64];
static char keygen[PATH_MAX];

/* Write text to dir/name. */
static void
put(const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	cr_assert_not_null(f = fopen(path, "w"), "%s", path);
	fputs(text, f);
	cr_assert_eq(fclose(f), 0);
}

static void
setup(void)
{
	const char *build = getenv("SOTTO_BUILDDIR");

	snprintf(keygen, sizeof(keygen), "%s/sotto-keygen", build != NULL ? build : ".");
	cr_assert_eq(access(keygen, X_OK), 0, "%s not built (is SOTTO_BUILDDIR set?)", keygen);
	tdir_make(dir, sizeof(dir), "test_keygen");
	put("pass", PASS "\n");
	put("newpass", NEWPASS "\n");
	put("wrong", "not it\n");
	put("empty", "");
}

static void
teardown(void)
{
	tdir_remove(dir);
}

TestSuite(keygen, .init = setup, .fini = teardown, .timeout = 60);

/* Run sotto-keygen in dir with HOME=dir and no XDG_DATA_HOME; args is NULL-terminated. */
static int
kg_argv(struct proc_result *res, const char *const *args)
{
	char home[128];
	const char *argv[40], *envp[3];
	struct proc_opts opts;
	size_t n = 0;

	argv[n++] = keygen;
	while (*args != NULL && n < 39)
		argv[n++] = *args++;
	argv[n] = NULL;
	snprintf(home, sizeof(home), "HOME=%s", dir);
	envp[0] = "XDG_DATA_HOME"; /* unset */
	envp[1] = home;
	envp[2] = NULL;
	memset(&opts, 0, sizeof(opts));
	opts.env = envp;
	opts.cwd = dir;
	opts.timeout_ms = 50000;
	cr_assert_eq(proc_run(res, argv, &opts), 0, "cannot run %s", keygen);
	cr_assert(res->exited, "sotto-keygen died: signal %d", res->signal);
	return res->status;
}

/* kg(&res, "-l", "-f", "id") runs sotto-keygen -l -f id. */
#define kg(res, ...) kg_argv(res, (const char *const[]){__VA_ARGS__, NULL})

/* Run a shell command in dir; returns its exit status. */
static int __attribute__((format(printf, 2, 3))) sh(struct proc_result *res, const char *fmt, ...)
{
	char cmd[2048];
	const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
	struct proc_opts opts;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	memset(&opts, 0, sizeof(opts));
	opts.cwd = dir;
	cr_assert_eq(proc_run(res, argv, &opts), 0);
	return res->exited ? res->status : -1;
}

/* sh() for a command whose output is all that matters; the caller frees it. */
static char *__attribute__((format(printf, 1, 2))) sh_out(const char *fmt, ...)
{
	struct proc_result res;
	char cmd[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	cr_assert_eq(sh(&res, "%s", cmd), 0, "%s: %s", cmd, res.err);
	free(res.err);
	return res.out;
}

static char *
slurp(const char *name)
{
	char path[256], *buf;
	FILE *f;
	long n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	cr_assert_not_null(f = fopen(path, "r"), "%s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return buf;
}

static int
exists(const char *name)
{
	char path[256];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return lstat(path, &st) == 0;
}

static mode_t
mode_of(const char *name)
{
	char path[256];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	cr_assert_eq(stat(path, &st), 0, "stat %s", path);
	return st.st_mode & 07777;
}

/* The setup files: pass, newpass, wrong, empty. */
#define BASE_ENTRIES 4

/* Exactly one line on stderr. */
static void
assert_one_line(const struct proc_result *res)
{
	cr_assert_gt(res->errlen, 0, "no message on stderr");
	cr_assert_eq(res->err[res->errlen - 1], '\n', "stderr: %s", res->err);
	cr_assert_eq(strchr(res->err, '\n'), res->err + res->errlen - 1, "more than one line: %s",
	        res->err);
}

/* "SHA256:" + base64 of the SHA-256 of a file's SPKI, computed by openssl. */
static char *
openssl_spki_fp(const char *pipeline)
{
	char *b64 = sh_out("%s | openssl dgst -sha256 -binary | base64", pipeline), *fp;
	size_t n = strcspn(b64, "=\n");

	fp = malloc(n + 8);
	snprintf(fp, n + 8, "SHA256:%.*s", (int)n, b64);
	free(b64);
	return fp;
}

static void
make_ed25519(const char *file, const char *comment)
{
	struct proc_result res;

	cr_assert_eq(kg(&res, "-q", "-f", file, "-C", comment, "--passphrase-file", "pass"), 0,
	        "%s", res.err);
	cr_assert_str_eq(res.out, "");
	cr_assert_str_eq(res.err, "");
	proc_result_free(&res);
}

Test(keygen, ed25519_files_and_openssl)
{
	struct proc_result res;
	char *pub, *text, *fp, *listed, *made;

	cr_assert_eq(kg(&res, "-f", "id", "-C", "alice@example", "--passphrase-file", "pass"), 0,
	        "%s", res.err);
	made = strdup(res.out);
	cr_assert_str_eq(res.err, "");
	cr_assert(strstr(res.out, "Generating public/private ed25519 key pair.\n") != NULL);
	cr_assert(strstr(res.out, "Your identification has been saved in id\n") != NULL);
	cr_assert(strstr(res.out, "Your public key has been saved in id.pub\n") != NULL);
	cr_assert(strstr(res.out, "The key fingerprint is:\nSHA256:") != NULL);
	cr_assert(strstr(res.out, "+--[ED25519 256]--+\n") != NULL, "%s", res.out);
	cr_assert(strstr(res.out, "+----[SHA256]-----+\n") != NULL, "%s", res.out);
	proc_result_free(&res);
	cr_assert_eq(mode_of("id"), 0600);
	cr_assert_eq(tdir_count(dir), BASE_ENTRIES + 2);

	pub = slurp("id.pub");
	cr_assert(strncmp(pub, "sotto-ed25519 MCowBQYDK2VwAyEA", 30) == 0, "%s", pub);
	cr_assert(strstr(pub, "= alice@example\n") != NULL, "%s", pub);
	cr_assert_eq(strchr(pub, '\n'), pub + strlen(pub) - 1);

	/* openssl reads the key with the passphrase, and it is PBES2 with scrypt. */
	cr_assert_eq(sh(&res, "openssl pkey -in id -passin file:pass -noout"), 0, "%s", res.err);
	proc_result_free(&res);
	cr_assert_neq(sh(&res, "openssl pkey -in id -passin file:wrong -noout"), 0);
	proc_result_free(&res);
	text = sh_out("openssl asn1parse -in id");
	cr_assert(strstr(text, ":PBES2") != NULL, "%s", text);
	cr_assert(strstr(text, ":scrypt") != NULL, "%s", text);
	free(text);

	/* The fingerprint is over the SPKI, as openssl computes it. */
	fp = openssl_spki_fp("openssl pkey -in id -passin file:pass -pubout -outform DER");
	listed = sh_out("%s -l -f id.pub", keygen);
	text = malloc(strlen(fp) + 64);
	sprintf(text, "256 %s alice@example (ED25519)\n", fp);
	cr_assert_str_eq(listed, text);
	sprintf(text, "The key fingerprint is:\n%s alice@example\n", fp);
	cr_assert(strstr(made, text) != NULL, "%s", made);
	free(made);
	free(listed);
	free(text);
	free(fp);
	free(pub);
}

Test(keygen, print_public_round_trips)
{
	struct proc_result res;
	char *pub;

	make_ed25519("id", "bob with spaces");
	pub = slurp("id.pub");
	cr_assert_eq(kg(&res, "-y", "-f", "id", "--passphrase-file", "pass"), 0, "%s", res.err);
	cr_assert_str_eq(res.out, pub);
	proc_result_free(&res);
	/* Even without the .pub file beside it. */
	cr_assert_eq(sh(&res, "rm id.pub"), 0);
	proc_result_free(&res);
	cr_assert_eq(kg(&res, "-y", "-f", "id", "--passphrase-file", "pass"), 0);
	cr_assert_str_eq(res.out, pub);
	proc_result_free(&res);
	free(pub);
}

Test(keygen, export_pem_parses_with_openssl)
{
	struct proc_result res;
	char *b64, *field, *pub;

	make_ed25519("id", "c");
	cr_assert_eq(kg(&res, "-e", "-f", "id.pub"), 0);
	cr_assert(strncmp(res.out, "-----BEGIN PUBLIC KEY-----\n", 27) == 0, "%s", res.out);
	put("exported.pem", res.out);
	proc_result_free(&res);
	cr_assert_eq(sh(&res, "openssl pkey -pubin -in exported.pem -noout"), 0, "%s", res.err);
	proc_result_free(&res);
	/* Its DER is the same SPKI as in the .pub line. */
	b64 = sh_out("openssl pkey -pubin -in exported.pem -outform DER | base64 -w0");
	pub = slurp("id.pub");
	field = strchr(pub, ' ') + 1;
	*strchr(field, ' ') = '\0';
	cr_assert_str_eq(b64, field);
	free(b64);
	free(pub);
	/* From the private key (through its .pub) and from nothing but the private key. */
	cr_assert_eq(kg(&res, "-e", "-f", "id"), 0, "%s", res.err);
	proc_result_free(&res);
	cr_assert_eq(sh(&res, "rm id.pub"), 0);
	proc_result_free(&res);
	cr_assert_eq(kg(&res, "-e", "-f", "id", "--passphrase-file", "pass"), 0);
	cr_assert(strncmp(res.out, "-----BEGIN PUBLIC KEY-----\n", 27) == 0);
	proc_result_free(&res);
}

Test(keygen, change_passphrase)
{
	struct proc_result res;
	char *pub;

	make_ed25519("id", "c");
	pub = slurp("id.pub");
	cr_assert_eq(kg(&res, "-p", "-f", "id", "--passphrase-file", "pass",
	                     "--new-passphrase-file", "newpass"),
	        0, "%s", res.err);
	cr_assert_str_eq(res.out, "Your identification has been saved with the new passphrase.\n");
	proc_result_free(&res);
	cr_assert_eq(mode_of("id"), 0600);
	cr_assert_eq(tdir_count(dir), BASE_ENTRIES + 2);

	cr_assert_eq(kg(&res, "-y", "-f", "id", "--passphrase-file", "pass"), 1);
	cr_assert_str_eq(res.err, "sotto-keygen: id: incorrect passphrase\n");
	proc_result_free(&res);
	cr_assert_eq(kg(&res, "-y", "-f", "id", "--passphrase-file", "newpass"), 0);
	cr_assert_str_eq(res.out, pub);
	proc_result_free(&res);
	cr_assert_eq(sh(&res, "openssl pkey -in id -passin file:newpass -noout"), 0);
	proc_result_free(&res);

	/* A wrong old passphrase changes nothing. */
	cr_assert_eq(kg(&res, "-p", "-f", "id", "--passphrase-file", "wrong",
	                     "--new-passphrase-file", "pass"),
	        1);
	cr_assert_str_eq(res.err, "sotto-keygen: id: incorrect passphrase\n");
	proc_result_free(&res);
	cr_assert_eq(sh(&res, "openssl pkey -in id -passin file:newpass -noout"), 0);
	proc_result_free(&res);

	/* An empty new passphrase leaves the key unencrypted, with a warning. */
	cr_assert_eq(kg(&res, "-q", "-p", "-f", "id", "--passphrase-file", "newpass",
	                     "--new-passphrase-file", "empty"),
	        0);
	cr_assert_str_eq(res.out, "");
	cr_assert(strstr(res.err, "warning: empty passphrase") != NULL, "%s", res.err);
	proc_result_free(&res);
	cr_assert_eq(sh(&res, "openssl pkey -in id -noout -passin pass:"), 0);
	proc_result_free(&res);
	free(pub);
}

Test(keygen, wrong_passphrase_message)
{
	struct proc_result res;

	make_ed25519("id", "c");
	cr_assert_eq(sh(&res, "rm id.pub"), 0);
	proc_result_free(&res);
	cr_assert_eq(kg(&res, "-l", "-f", "id", "--passphrase-file", "wrong"), 1);
	cr_assert_str_eq(res.err, "sotto-keygen: id: incorrect passphrase\n");
	cr_assert_str_eq(res.out, "");
	proc_result_free(&res);
	/* No passphrase and no terminal: say how to give one, never prompt. */
	cr_assert_eq(kg(&res, "-y", "-f", "id"), 1);
	assert_one_line(&res);
	cr_assert(strstr(res.err, "--passphrase-file") != NULL, "%s", res.err);
	proc_result_free(&res);
}

Test(keygen, existing_files_are_kept)
{
	struct proc_result res;
	char *key, *pub, *key2, *pub2;

	make_ed25519("id", "first");
	key = slurp("id");
	pub = slurp("id.pub");
	cr_assert_eq(kg(&res, "-q", "-f", "id", "--passphrase-file", "pass"), 1);
	cr_assert_str_eq(res.err, "sotto-keygen: id already exists; use --force to overwrite\n");
	proc_result_free(&res);
	key2 = slurp("id");
	pub2 = slurp("id.pub");
	cr_assert_str_eq(key2, key);
	cr_assert_str_eq(pub2, pub);
	free(key2);
	free(pub2);
	cr_assert_eq(tdir_count(dir), BASE_ENTRIES + 2);

	/* A .pub alone is protected too. */
	cr_assert_eq(sh(&res, "mv id lone-key && cp id.pub other.pub"), 0);
	proc_result_free(&res);
	cr_assert_eq(kg(&res, "-q", "-f", "other", "--passphrase-file", "pass"), 1);
	cr_assert_str_eq(
	        res.err, "sotto-keygen: other.pub already exists; use --force to overwrite\n");
	proc_result_free(&res);
	cr_assert(!exists("other"));

	cr_assert_eq(kg(&res, "-q", "--force", "-f", "lone-key", "-C", "second",
	                     "--passphrase-file", "pass"),
	        0, "%s", res.err);
	proc_result_free(&res);
	cr_assert_eq(mode_of("lone-key"), 0600);
	key2 = slurp("lone-key");
	cr_assert_str_neq(key2, key);
	free(key2);
	pub2 = slurp("lone-key.pub");
	cr_assert(strstr(pub2, " second\n") != NULL);
	free(pub2);
	cr_assert_eq(tdir_count(dir), BASE_ENTRIES + 4, "a temporary file was left behind");
	free(key);
	free(pub);
}

Test(keygen, damaged_and_foreign_files)
{
	struct proc_result res;
	char *key;

	make_ed25519("id", "c");
	key = slurp("id");
	key[strlen(key) / 2] = '\0';
	put("cut", key);
	free(key);
	cr_assert_eq(kg(&res, "-y", "-f", "cut", "--passphrase-file", "pass"), 1);
	assert_one_line(&res);
	cr_assert(strncmp(res.err, "sotto-keygen: cut: truncated", 28) == 0, "%s", res.err);
	proc_result_free(&res);
	cr_assert_eq(kg(&res, "-l", "-f", "cut"), 1);
	assert_one_line(&res);
	cr_assert(strstr(res.err, "truncated") != NULL, "%s", res.err);
	proc_result_free(&res);

	put("foreign", "Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n");
	cr_assert_eq(kg(&res, "-l", "-f", "foreign"), 1);
	cr_assert_str_eq(res.err, "sotto-keygen: foreign: not a sotto key, public key or "
	                          "certificate (damaged or foreign file)\n");
	proc_result_free(&res);
	cr_assert_eq(kg(&res, "-y", "-f", "foreign"), 1);
	assert_one_line(&res);
	cr_assert(strstr(res.err, "foreign: not a private key") != NULL, "%s", res.err);
	proc_result_free(&res);

	put("short.pub", "sotto-ed25519 MCowBQYDK2VwAyEA c\n");
	cr_assert_eq(kg(&res, "-l", "-f", "short.pub"), 1);
	assert_one_line(&res);
	cr_assert(strstr(res.err, "short.pub: not a sotto key") != NULL, "%s", res.err);
	proc_result_free(&res);

	cr_assert_eq(kg(&res, "-l", "-f", "missing"), 1);
	assert_one_line(&res);
	cr_assert(strstr(res.err, "missing: no such file") != NULL, "%s", res.err);
	proc_result_free(&res);
}

Test(keygen, refuses_bad_sizes_and_options)
{
	struct proc_result res;

	cr_assert_eq(
	        kg(&res, "-t", "rsa", "-b", "2048", "-f", "r", "--passphrase-file", "pass"), 1);
	cr_assert_str_eq(
	        res.err, "sotto-keygen: -b 2048: RSA identities must be 3072 or 4096 bits\n");
	proc_result_free(&res);
	cr_assert_eq(kg(&res, "-b", "3072", "-f", "e"), 1);
	assert_one_line(&res);
	proc_result_free(&res);
	cr_assert_eq(kg(&res, "-t", "dsa"), 1);
	assert_one_line(&res);
	proc_result_free(&res);
	cr_assert_eq(kg(&res, "-Z"), 1);
	assert_one_line(&res);
	cr_assert(
	        strstr(res.err, "-Z") != NULL && strstr(res.err, "--help") != NULL, "%s", res.err);
	proc_result_free(&res);
	cr_assert_eq(kg(&res, "--no-such-option"), 1);
	assert_one_line(&res);
	cr_assert(strstr(res.err, "--no-such-option") != NULL, "%s", res.err);
	proc_result_free(&res);
	cr_assert_eq(kg(&res, "-f"), 1);
	assert_one_line(&res);
	proc_result_free(&res);
	cr_assert_eq(kg(&res, "-l", "-y"), 1);
	assert_one_line(&res);
	proc_result_free(&res);
	cr_assert_eq(kg(&res, "stray"), 1);
	assert_one_line(&res);
	proc_result_free(&res);
	cr_assert_eq(kg(&res, "--san", "a.org", "-f", "x"), 1);
	assert_one_line(&res);
	proc_result_free(&res);
	cr_assert_eq(tdir_count(dir), BASE_ENTRIES, "nothing may be created");
}

Test(keygen, unwritable_paths)
{
	struct proc_result res;

	cr_assert_eq(kg(&res, "-f", "/etc/passwd/x", "--passphrase-file", "pass"), 1);
	assert_one_line(&res);
	cr_assert(strstr(res.err, "/etc/passwd/x") != NULL, "%s", res.err);
	proc_result_free(&res);
	cr_assert_eq(kg(&res, "-f", "no/such/dir/id", "--passphrase-file", "pass"), 1);
	assert_one_line(&res);
	cr_assert(strstr(res.err, "no/such/dir/id") != NULL, "%s", res.err);
	proc_result_free(&res);
	cr_assert_eq(kg(&res, "-t", "tls", "-f", "/etc/passwd/srv"), 1);
	assert_one_line(&res);
	proc_result_free(&res);
	cr_assert_eq(tdir_count(dir), BASE_ENTRIES);
}

Test(keygen, no_terminal_no_prompt)
{
	struct proc_result res;

	cr_assert_eq(kg(&res, "-f", "id"), 1);
	cr_assert_str_eq(res.err, "sotto-keygen: no terminal to ask for a passphrase; use "
	                          "--passphrase-file FILE\n");
	proc_result_free(&res);
	cr_assert_eq(tdir_count(dir), BASE_ENTRIES);
}

Test(keygen, empty_passphrase_warns_and_writes_plain_pkcs8)
{
	struct proc_result res;
	char *key;

	cr_assert_eq(kg(&res, "-q", "-f", "id", "--passphrase-file", "empty"), 0);
	cr_assert_str_eq(res.err, "sotto-keygen: warning: empty passphrase; id is stored "
	                          "unencrypted\n");
	proc_result_free(&res);
	key = slurp("id");
	cr_assert(strncmp(key, "-----BEGIN PRIVATE KEY-----\n", 28) == 0);
	free(key);
	cr_assert_eq(mode_of("id"), 0600);
	cr_assert_eq(sh(&res, "openssl pkey -in id -noout -passin pass:"), 0);
	proc_result_free(&res);
	/* No passphrase is needed to read it back. */
	cr_assert_eq(kg(&res, "-y", "-f", "id"), 0, "%s", res.err);
	proc_result_free(&res);
}

Test(keygen, list_private_key_forms)
{
	struct proc_result res;
	char *withpub;

	make_ed25519("id", "carol");
	/* With the .pub beside it, no passphrase is needed. */
	cr_assert_eq(kg(&res, "-l", "-f", "id"), 0, "%s", res.err);
	withpub = res.out;
	res.out = NULL;
	proc_result_free(&res);
	cr_assert(strstr(withpub, " carol (ED25519)\n") != NULL, "%s", withpub);
	cr_assert_eq(sh(&res, "rm id.pub"), 0);
	proc_result_free(&res);
	/* Without it, the key is decrypted; the comment was kept inside. */
	cr_assert_eq(kg(&res, "-l", "-f", "id", "--passphrase-file", "pass"), 0);
	cr_assert_str_eq(res.out, withpub);
	proc_result_free(&res);
	cr_assert_eq(kg(&res, "-lv", "-f", "id", "--passphrase-file", "pass"), 0);
	cr_assert(strncmp(res.out, withpub, strlen(withpub)) == 0);
	cr_assert(strstr(res.out, "\n+--[ED25519 256]--+\n|") != NULL, "%s", res.out);
	cr_assert(strstr(res.out, "|\n+----[SHA256]-----+\n") != NULL, "%s", res.out);
	proc_result_free(&res);
	free(withpub);
}

Test(keygen, rsa_3072)
{
	struct proc_result res;
	char *fp, *want, *pub;

	cr_assert_eq(
	        kg(&res, "-q", "-t", "rsa", "-f", "rsa", "-C", "dave", "--passphrase-file", "pass"),
	        0, "%s", res.err);
	proc_result_free(&res);
	cr_assert_eq(mode_of("rsa"), 0600);
	pub = slurp("rsa.pub");
	cr_assert(strncmp(pub, "sotto-rsa MIIBojANBgkqhkiG9w0BAQEFAAOCAY8A", 42) == 0, "%s", pub);
	cr_assert_eq(sh(&res, "openssl pkey -in rsa -passin file:pass -noout"), 0, "%s", res.err);
	proc_result_free(&res);
	fp = openssl_spki_fp("openssl pkey -in rsa -passin file:pass -pubout -outform DER");
	want = malloc(strlen(fp) + 64);
	sprintf(want, "3072 %s dave (RSA)\n", fp);
	cr_assert_eq(kg(&res, "-l", "-f", "rsa.pub"), 0);
	cr_assert_str_eq(res.out, want);
	proc_result_free(&res);
	cr_assert_eq(kg(&res, "-y", "-f", "rsa", "--passphrase-file", "pass"), 0);
	cr_assert_str_eq(res.out, pub);
	proc_result_free(&res);
	free(want);
	free(fp);
	free(pub);
}

/* The one 4096-bit test: making such a key takes a while. */
Test(keygen, rsa_4096)
{
	struct proc_result res;

	cr_assert_eq(kg(&res, "-t", "rsa", "-b", "4096", "-f", "big", "--passphrase-file", "pass"),
	        0, "%s", res.err);
	cr_assert(strstr(res.out, "+---[RSA 4096]----+\n") != NULL, "%s", res.out);
	proc_result_free(&res);
	cr_assert_eq(sh(&res, "openssl pkey -in big -passin file:pass -noout -text | head -1"), 0);
	cr_assert(strstr(res.out, "4096 bit") != NULL, "%s", res.out);
	proc_result_free(&res);
}

Test(keygen, tls_ed25519)
{
	struct proc_result res;
	char *text, *fp, *want;

	cr_assert_eq(kg(&res, "-t", "tls", "-f", "server", "--san",
	                     "chat.example.org,localhost,127.0.0.1,::1", "--days", "90"),
	        0, "%s", res.err);
	cr_assert_str_eq(res.err, "");
	cr_assert(strstr(res.out, "Your private key has been saved in server.key\n") != NULL);
	cr_assert(strstr(res.out, "Your certificate has been saved in server.crt\n") != NULL);
	proc_result_free(&res);
	cr_assert_eq(mode_of("server.key"), 0600);
	cr_assert_eq(tdir_count(dir), BASE_ENTRIES + 2);
	cr_assert_eq(
	        sh(&res, "openssl pkey -in server.key -passin file:pass -noout"), 0, "%s", res.err);
	proc_result_free(&res);

	text = sh_out("openssl x509 -in server.crt -noout -text");
	cr_assert(strstr(text, "Public Key Algorithm: ED25519") != NULL, "%s", text);
	cr_assert(strstr(text, "DNS:chat.example.org, DNS:localhost, IP Address:127.0.0.1, IP "
	                       "Address:0:0:0:0:0:0:0:1") != NULL,
	        "%s", text);
	cr_assert(strstr(text, "Subject: CN = chat.example.org") != NULL, "%s", text);
	cr_assert(strstr(text, "CA:FALSE") != NULL, "%s", text);
	free(text);
	cr_assert_eq(sh(&res, "openssl verify -CAfile server.crt -verify_hostname "
	                      "chat.example.org server.crt"),
	        0, "%s%s", res.out, res.err);
	proc_result_free(&res);

	/* The fingerprint clients pin: SHA-256 over the certificate's SPKI. */
	fp = openssl_spki_fp("openssl x509 -in server.crt -noout -pubkey | openssl pkey -pubin "
	                     "-outform DER");
	want = malloc(strlen(fp) + 64);
	sprintf(want, "256 %s chat.example.org (ED25519)\n", fp);
	cr_assert_eq(kg(&res, "-l", "-f", "server.crt"), 0);
	cr_assert_str_eq(res.out, want);
	proc_result_free(&res);
	sprintf(want, "256 %s (ED25519)\n", fp);
	cr_assert_eq(kg(&res, "-l", "-f", "server.key"), 0);
	cr_assert_str_eq(res.out, want);
	proc_result_free(&res);
	cr_assert_eq(kg(&res, "-e", "-f", "server.crt"), 0);
	cr_assert(strncmp(res.out, "-----BEGIN PUBLIC KEY-----\n", 27) == 0);
	proc_result_free(&res);

	/* The pair is never replaced without --force, whichever name -f gives. */
	cr_assert_eq(kg(&res, "-q", "-t", "tls", "-f", "server.crt"), 1);
	cr_assert_str_eq(
	        res.err, "sotto-keygen: server.key already exists; use --force to overwrite\n");
	proc_result_free(&res);
	cr_assert_eq(kg(&res, "-q", "-t", "tls", "-f", "server.key", "--force"), 0);
	proc_result_free(&res);
	cr_assert_eq(kg(&res, "-l", "-f", "server.crt"), 0);
	cr_assert(strstr(res.out, fp) == NULL, "--force kept the old key");
	proc_result_free(&res);
	cr_assert_eq(tdir_count(dir), BASE_ENTRIES + 2);
	free(want);
	free(fp);
}

Test(keygen, tls_ecdsa_encrypted)
{
	struct proc_result res;
	char *text, *key, *fp;

	cr_assert_eq(kg(&res, "-q", "-t", "tls", "--ecdsa", "-f", "ec", "--san", "[::1],srv.test",
	                     "--passphrase-file", "pass"),
	        0, "%s", res.err);
	proc_result_free(&res);
	key = slurp("ec.key");
	cr_assert(strncmp(key, "-----BEGIN ENCRYPTED PRIVATE KEY-----\n", 38) == 0);
	free(key);
	cr_assert_eq(
	        sh(&res, "openssl pkey -in ec.key -passin file:pass -noout"), 0, "%s", res.err);
	proc_result_free(&res);
	text = sh_out("openssl x509 -in ec.crt -noout -text");
	cr_assert(strstr(text, "id-ecPublicKey") != NULL, "%s", text);
	cr_assert(strstr(text, "prime256v1") != NULL, "%s", text);
	cr_assert(strstr(text, "ecdsa-with-SHA256") != NULL, "%s", text);
	cr_assert(strstr(text, "IP Address:0:0:0:0:0:0:0:1, DNS:srv.test") != NULL, "%s", text);
	free(text);
	fp = openssl_spki_fp("openssl x509 -in ec.crt -noout -pubkey | openssl pkey -pubin "
	                     "-outform DER");
	cr_assert_eq(kg(&res, "-l", "-f", "ec.crt"), 0);
	cr_assert(strstr(res.out, fp) != NULL, "%s vs %s", res.out, fp);
	cr_assert(strstr(res.out, " srv.test (ECDSA)\n") != NULL, "%s", res.out);
	proc_result_free(&res);
	/* -y is for identities only. */
	cr_assert_eq(kg(&res, "-y", "-f", "ec.key", "--passphrase-file", "pass"), 1);
	assert_one_line(&res);
	proc_result_free(&res);
	free(fp);
}

Test(keygen, tls_argument_errors)
{
	struct proc_result res;

	cr_assert_eq(kg(&res, "-t", "tls"), 1);
	assert_one_line(&res);
	cr_assert(strstr(res.err, "-f") != NULL);
	proc_result_free(&res);
	cr_assert_eq(kg(&res, "-t", "tls", "-f", "s", "--days", "0"), 1);
	assert_one_line(&res);
	proc_result_free(&res);
	cr_assert_eq(kg(&res, "-t", "tls", "-f", "s", "--days", "3651"), 1);
	assert_one_line(&res);
	proc_result_free(&res);
	cr_assert_eq(kg(&res, "-t", "tls", "-f", "s", "--san", "ok.org,bad name"), 1);
	assert_one_line(&res);
	cr_assert(strstr(res.err, "'bad name'") != NULL, "%s", res.err);
	proc_result_free(&res);
	cr_assert_eq(tdir_count(dir), BASE_ENTRIES);
}

Test(keygen, help_and_version)
{
	struct proc_result res;

	cr_assert_eq(kg(&res, "-h"), 0);
	cr_assert(strncmp(res.out, "usage: sotto-keygen", 19) == 0, "%s", res.out);
	cr_assert_str_eq(res.err, "");
	proc_result_free(&res);
	cr_assert_eq(kg(&res, "--help"), 0);
	proc_result_free(&res);
	cr_assert_eq(kg(&res, "-V"), 0);
	cr_assert_str_eq(res.out, "sotto-keygen " PACKAGE_VERSION "\n");
	proc_result_free(&res);
	cr_assert_eq(kg(&res, "--version"), 0);
	cr_assert_str_eq(res.out, "sotto-keygen " PACKAGE_VERSION "\n");
	proc_result_free(&res);
}

Test(keygen, default_path_under_home_and_xdg)
{
	struct proc_result res;
	struct proc_opts opts;
	char xdg[128], home[128], path[256];
	const char *argv[] = {keygen, "-q", "--passphrase-file", "pass", NULL};
	const char *env[] = {NULL, NULL, NULL};
	struct stat st;

	cr_assert_eq(kg(&res, "-q", "--passphrase-file", "pass"), 0, "%s", res.err);
	proc_result_free(&res);
	cr_assert(exists(".local/share/sotto/default/identity"));
	cr_assert(exists(".local/share/sotto/default/identity.pub"));
	cr_assert_eq(mode_of(".local/share/sotto/default"), 0700);
	cr_assert_eq(mode_of(".local/share/sotto"), 0700);
	cr_assert_eq(kg(&res, "-l"), 0, "%s", res.err);
	cr_assert(strncmp(res.out, "256 SHA256:", 11) == 0);
	proc_result_free(&res);

	snprintf(xdg, sizeof(xdg), "XDG_DATA_HOME=%s/xdg", dir);
	snprintf(home, sizeof(home), "HOME=%s/nohome", dir);
	env[0] = xdg;
	env[1] = home;
	memset(&opts, 0, sizeof(opts));
	opts.env = env;
	opts.cwd = dir;
	cr_assert_eq(proc_run(&res, argv, &opts), 0);
	cr_assert_eq(res.status, 0, "%s", res.err);
	proc_result_free(&res);
	snprintf(path, sizeof(path), "%s/xdg/sotto/default/identity", dir);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600);
}

/*
 * Type answers at the prompts of sotto-keygen running on a pseudo-terminal:
 * each time the screen shows prompts[i], answers[i] is sent.  Returns the
 * exit status; *screen receives what the terminal showed.
 */
static int
on_terminal(const char *const *args, const char *const *prompts, const char *const *answers,
        char *screen, size_t cap)
{
	const char *argv[16];
	struct pollfd pfd;
	size_t have = 0, next = 0, n = 0;
	char *hit;
	ssize_t r;
	pid_t pid;
	int master, ws;

	argv[n++] = keygen;
	while (*args != NULL && n < 15)
		argv[n++] = *args++;
	argv[n] = NULL;
	memset(screen, 0, cap);
	pid = forkpty(&master, NULL, NULL, NULL);
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		if (chdir(dir) != 0)
			_exit(126);
		execv(keygen, (char *const *)(uintptr_t)argv);
		_exit(127);
	}
	for (;;) {
		pfd.fd = master;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 20000) <= 0)
			break;
		if ((r = read(master, screen + have, cap - 1 - have)) <= 0)
			break;
		have += (size_t)r;
		while (prompts[next] != NULL && (hit = strstr(screen, prompts[next])) != NULL) {
			/* Blank the prompt so that the same text asked again is seen anew. */
			memset(hit, '#', strlen(prompts[next]));
			usleep(20000);
			cr_assert_eq(write(master, answers[next], strlen(answers[next])),
			        (ssize_t)strlen(answers[next]));
			next++;
		}
	}
	cr_assert_eq(waitpid(pid, &ws, 0), pid);
	close(master);
	cr_assert(WIFEXITED(ws));
	return WEXITSTATUS(ws);
}

Test(keygen, asks_on_the_terminal)
{
	static const char *const args[] = {"-f", "id", NULL};
	static const char *const prompts[] = {"Enter passphrase (empty for no passphrase): ",
	        "Enter same passphrase again: ", NULL};
	static const char *const same[] = {"typed secret\n", "typed secret\n", NULL};
	static const char *const differ[] = {"typed secret\n", "typo secret\n", NULL};
	static const char *const yargs[] = {"-y", "-f", "id", NULL};
	static const char *const yprompt[] = {"Enter passphrase for id: ", NULL};
	static const char *const yanswer[] = {"typed secret\n", NULL};
	struct proc_result res;
	char screen[8192];

	cr_assert_eq(on_terminal(args, prompts, same, screen, sizeof(screen)), 0, "%s", screen);
	cr_assert_null(strstr(screen, "typed secret"), "echoed: %s", screen);
	cr_assert(strstr(screen, "Your identification has been saved in id") != NULL, "%s", screen);
	put("typed", "typed secret\n");
	cr_assert_eq(sh(&res, "openssl pkey -in id -passin file:typed -noout"), 0, "%s", res.err);
	proc_result_free(&res);

	cr_assert_eq(on_terminal(yargs, yprompt, yanswer, screen, sizeof(screen)), 0, "%s", screen);
	cr_assert(strstr(screen, "sotto-ed25519 ") != NULL, "%s", screen);

	cr_assert_eq(on_terminal((const char *const[]){"-f", "id2", NULL}, prompts, differ, screen,
	                     sizeof(screen)),
	        1);
	cr_assert(strstr(screen, "passphrases do not match") != NULL, "%s", screen);
	cr_assert(!exists("id2"));
	cr_assert(!exists("id2.pub"));
}
