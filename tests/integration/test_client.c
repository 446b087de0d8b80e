/*
 * The sotto client end to end: a real sottod on loopback, real sotto and
 * sotto-keygen processes, each user in a home of its own (-H DIR).  Round
 * trips (Ed25519 and RSA), offline delivery with receipts, what the server
 * can see, bad input, blocking, and a server that swaps a user's key.
 */
#include "config.h"

#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <criterion/criterion.h>
#include <sqlite3.h>

#include "crypto/buf.h"
#include "crypto/ecc.h"
#include "crypto/safety.h"
#include "crypto/util.h"
#include "src/sigmsg.h"
#include "tests/lib/tcheck.h"

#ifndef Test
#define Test(s, n) void s##_##n(void)
#define TestSuite(...)
#endif

static struct testsrv srv;
static const char *cu_cwd; /* the directory sotto runs in; NULL: the test's */

static void
setup(void)
{
	tcheck_start(&srv, NULL);
}

static void
teardown(void)
{
	testsrv_cleanup(&srv);
}

TestSuite(client, .init = setup, .fini = teardown, .timeout = 60);

/* The server's key fingerprint, learnt through a connection of the test's own. */
static void
server_fp(char fp[FINGERPRINT_LEN])
{
	struct client_conn *c;
	char err[512];

	cr_assert_not_null(c = tconnect(&srv, 0, err, sizeof(err)), "%s", err);
	client_conn_close(c);
	tls_format_fingerprint(fp, FINGERPRINT_LEN, srv.spki);
}

static void
cu_make(struct tclient *u, const char *name, int rsa)
{
	tcheck_client_make(&srv, u, name, name, rsa);
}

/* Run sotto as u against the test server with the arguments that follow (NULL-terminated). */
static void
cu_run(struct proc_result *res, const struct tclient *u, const char *input, ...)
{
	const char *argv[TCLIENT_ARGS_MAX + 1];
	char prog[PATH_MAX];
	struct proc_opts po;
	const char *a;
	va_list ap;
	size_t n = tclient_argv(u, argv);

	/* Absolute, for cu_cwd. */
	cr_assert_not_null(realpath(argv[0], prog));
	argv[0] = prog;
	va_start(ap, input);
	while ((a = va_arg(ap, const char *)) != NULL && n < TCLIENT_ARGS_MAX)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	memset(&po, 0, sizeof(po));
	po.input = input;
	po.inputlen = input != NULL ? strlen(input) : 0;
	po.env = (const char *const[]){"SOTTO_HOME", NULL};
	po.cwd = cu_cwd;
	cr_assert_eq(proc_run(res, argv, &po), 0);
	cr_assert(res->exited, "sotto died of signal %d", res->signal);
}

/* Run and expect exit status want. */
static void
cu_ok(struct proc_result *res, const struct tclient *u, int want, const char *input, const char *a1,
        const char *a2, const char *a3, const char *a4)
{
	char files[2048];
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	cu_run(res, u, input, a1, a2, a3, a4, (char *)NULL);
	if (res->status == want)
		return;
	/* What the home held, to tell a sotto bug from a file gone missing. */
	snprintf(files, sizeof(files), " (cannot open)");
	if ((d = opendir(u->home)) != NULL) {
		files[0] = '\0';
		while ((de = readdir(d)) != NULL && n < sizeof(files) - 1)
			n += (size_t)snprintf(files + n, sizeof(files) - n, " %s", de->d_name);
		closedir(d);
	}
	cr_assert_fail("sotto %s %s: exit %d, want %d\nstdout: %s\nstderr: %s\n%s holds:%s", a1,
	        a2 != NULL ? a2 : "", res->status, want, res->out, res->err, u->home, files);
}

static void
cu_register(struct tclient *u)
{
	struct proc_result res;

	cu_ok(&res, u, 0, NULL, "register", u->name, NULL, NULL);
	proc_result_free(&res);
}

static void
pair(struct tclient *a, struct tclient *b, int b_rsa)
{
	cu_make(a, "alice", 0);
	cu_make(b, "bob", b_rsa);
	cu_register(a);
	cu_register(b);
}

static void
round_trip(struct tclient *alice, struct tclient *bob)
{
	struct proc_result res;

	cu_ok(&res, alice, 0, NULL, "send", "bob", "-m", "hello bob, caf\xc3\xa9 \"quoted\"");
	cr_assert(strstr(res.out, "sent") != NULL, "%s", res.out);
	proc_result_free(&res);
	cu_ok(&res, bob, 0, NULL, "receive", NULL, NULL, NULL);
	cr_assert(strstr(res.out, " alice: hello bob, caf\xc3\xa9 \"quoted\"\n") != NULL, "%s\n%s",
	        res.out, res.err);
	proc_result_free(&res);
	/* Text from standard input, byte-exact, several lines. */
	cu_ok(&res, bob, 0, "hi alice\nsecond line", "send", "alice", NULL, NULL);
	proc_result_free(&res);
	cu_ok(&res, alice, 0, NULL, "--json", "receive", NULL, NULL);
	cr_assert(strstr(res.out, "\"from\":\"alice\"") == NULL);
	cr_assert(strstr(res.out, "\"from\":\"bob\"") != NULL, "%s\n%s", res.out, res.err);
	cr_assert(strstr(res.out, "\"text\":\"hi alice\\nsecond line\"") != NULL, "%s", res.out);
	proc_result_free(&res);
	/* And again on the established session, both ways. */
	cu_ok(&res, alice, 0, NULL, "send", "bob", "-m", "second from alice");
	proc_result_free(&res);
	cu_ok(&res, bob, 0, NULL, "receive", NULL, NULL, NULL);
	cr_assert(
	        strstr(res.out, " alice: second from alice\n") != NULL, "%s\n%s", res.out, res.err);
	proc_result_free(&res);
}

Test(client, round_trip_ed25519)
{
	struct tclient alice = {.name = ""}, bob = {.name = ""};

	pair(&alice, &bob, 0);
	round_trip(&alice, &bob);
}

Test(client, round_trip_ed25519_rsa)
{
	struct tclient alice = {.name = ""}, bob = {.name = ""};

	pair(&alice, &bob, 1);
	round_trip(&alice, &bob);
}

Test(client, offline_receipts_and_server_sees_nothing)
{
	static const char marker[] = "zq-unique-marker-7c1e9f";
	struct tclient alice = {.name = ""}, bob = {.name = ""};
	struct proc_result res;

	pair(&alice, &bob, 0);
	cu_ok(&res, &alice, 0, NULL, "send", "bob", "-m", marker);
	cr_assert(strstr(res.out, "bob is offline (last seen ") != NULL, "%s", res.out);
	cr_assert(strstr(res.out, "it will be delivered when they connect") != NULL);
	proc_result_free(&res);
	cu_ok(&res, &bob, 0, NULL, "receive", "--timeout", "2", NULL);
	cr_assert(strstr(res.out, marker) != NULL, "%s\n%s", res.out, res.err);
	proc_result_free(&res);
	cu_ok(&res, &alice, 0, NULL, "receive", NULL, NULL, NULL);
	proc_result_free(&res);
	cu_ok(&res, &alice, 0, NULL, "history", "bob", NULL, NULL);
	cr_assert(strstr(res.out, marker) != NULL, "%s", res.out);
	cr_assert(strstr(res.out, "[read]") != NULL, "%s", res.out);
	proc_result_free(&res);
	cu_ok(&res, &bob, 0, NULL, "history", "alice", NULL, NULL);
	cr_assert(strstr(res.out, "[received]") != NULL, "%s", res.out);
	proc_result_free(&res);
	cr_assert_not(testsrv_state_has(&srv, marker, strlen(marker)));
	cr_assert_not(testsrv_log_has(&srv, marker));
}

/* A message cannot drive the reader's terminal; a piped message loses its final newline. */
Test(client, hostile_text_is_defused)
{
	static const char evil[] = "hi\x1b]0;pwned\x07\x1b[2Jthere\xc2\x9b"
	                           "31m";
	struct tclient alice = {.name = ""}, bob = {.name = ""};
	struct proc_result res;

	pair(&alice, &bob, 0);
	cu_ok(&res, &alice, 0, NULL, "send", "bob", "-m", evil);
	proc_result_free(&res);
	cu_ok(&res, &alice, 0, "piped line\n", "send", "bob", NULL, NULL);
	proc_result_free(&res);
	cu_ok(&res, &bob, 0, NULL, "receive", "--timeout", "2", NULL);
	cr_assert_null(strchr(res.out, 0x1b), "an escape reached the terminal: %s", res.out);
	cr_assert_null(strchr(res.out, 0x07));
	cr_assert_null(strstr(res.out, "\xc2\x9b"), "a C1 control reached the terminal");
	cr_assert_not_null(strstr(res.out, "hi?]0;pwned??[2Jthere?31m"), "%s", res.out);
	cr_assert_not_null(strstr(res.out, "alice: piped line\n"), "%s", res.out);
	proc_result_free(&res);
	cu_ok(&res, &bob, 0, NULL, "history", "alice", NULL, NULL);
	cr_assert_null(strchr(res.out, 0x1b), "%s", res.out);
	cr_assert_not_null(strstr(res.out, "alice: piped line [received]"), "%s", res.out);
	proc_result_free(&res);
	/* --json keeps the exact bytes, escaped for JSON. */
	cu_ok(&res, &alice, 0, NULL, "send", "bob", "-m", evil);
	proc_result_free(&res);
	cu_ok(&res, &bob, 0, NULL, "--json", "receive", "--timeout", "2");
	cr_assert_not_null(strstr(res.out, "\\u001b]0;pwned\\u0007"), "%s", res.out);
	proc_result_free(&res);
}

Test(client, bad_input)
{
	struct tclient alice = {.name = ""}, bob = {.name = ""}, eve = {.name = ""};
	struct proc_result res;
	char fp[FINGERPRINT_LEN], line[256], file[512];
	static const char fake[] = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
	FILE *f;

	pair(&alice, &bob, 0);
	/* Unknown user: a user error (exit 1) with a sentence. */
	cu_ok(&res, &alice, 1, NULL, "send", "nobody", "-m", "x");
	cr_assert(strstr(res.err, "no such user") != NULL, "%s", res.err);
	proc_result_free(&res);
	/* Wrong passphrase. */
	cu_make(&eve, "eve", 0);
	f = fopen(eve.pass, "w");
	fputs("wrong\n", f);
	fclose(f);
	cu_ok(&res, &eve, 1, NULL, "register", "eve", NULL, NULL);
	cr_assert(strstr(res.err, "incorrect passphrase") != NULL, "%s", res.err);
	proc_result_free(&res);
	/* A forced fingerprint that does not match: both named. */
	server_fp(fp);
	cr_assert_str_neq(fp, fake);
	cu_ok(&res, &alice, 3, NULL, "--server-fingerprint", fake, "who", NULL);
	cr_assert(strstr(res.err, fake) != NULL && strstr(res.err, fp) != NULL, "%s", res.err);
	proc_result_free(&res);
	/* A pinned key that does not match. */
	snprintf(file, sizeof(file), "%s/known_servers", bob.home);
	cr_assert_not_null(f = fopen(file, "w"));
	snprintf(line, sizeof(line), "127.0.0.1:%s %s 1\n", srv.port4, fake);
	fputs(line, f);
	fclose(f);
	cu_ok(&res, &bob, 3, NULL, "who", NULL, NULL, NULL);
	cr_assert(strstr(res.err, fake) != NULL && strstr(res.err, fp) != NULL, "%s", res.err);
	proc_result_free(&res);
	/* Server down. */
	cu_ok(&res, &alice, 3, NULL, "-s", "127.0.0.1:1", "who", NULL);
	cr_assert(strstr(res.err, "sotto: cannot connect to 127.0.0.1 port 1") != NULL, "%s",
	        res.err);
	proc_result_free(&res);
	/* No subcommand, unknown subcommand, help. */
	/* No subcommand without a terminal: the usage and a reason, not a hang. */
	cu_ok(&res, &alice, 1, NULL, NULL, NULL, NULL, NULL);
	cr_assert(strstr(res.err, "usage: sotto") != NULL, "%s", res.err);
	cr_assert(strstr(res.err, "the interactive mode needs a terminal") != NULL, "%s", res.err);
	proc_result_free(&res);
	cu_ok(&res, &alice, 1, NULL, "frobnicate", NULL, NULL, NULL);
	proc_result_free(&res);
	cu_ok(&res, &alice, 0, NULL, "send", "--help", NULL, NULL);
	cr_assert(strstr(res.out, "usage:") != NULL);
	proc_result_free(&res);
}

Test(client, blocked_sender)
{
	struct tclient alice = {.name = ""}, bob = {.name = ""}, carol = {.name = ""};
	struct proc_result res;

	pair(&alice, &bob, 0);
	cu_make(&carol, "carol", 0);
	cu_register(&carol);
	cu_ok(&res, &bob, 0, NULL, "block", "alice", NULL, NULL);
	proc_result_free(&res);
	cu_ok(&res, &bob, 0, NULL, "blocked", NULL, NULL, NULL);
	cr_assert(strstr(res.out, "alice") != NULL, "%s", res.out);
	proc_result_free(&res);
	cu_ok(&res, &alice, 0, NULL, "send", "bob", "-m", "you will not see this");
	proc_result_free(&res);
	cu_ok(&res, &carol, 0, NULL, "send", "bob", "-m", "fence from carol");
	proc_result_free(&res);
	cu_ok(&res, &bob, 0, NULL, "receive", NULL, NULL, NULL);
	cr_assert(strstr(res.out, "fence from carol") != NULL, "%s\n%s", res.out, res.err);
	cr_assert(strstr(res.out, "you will not see this") == NULL, "%s", res.out);
	proc_result_free(&res);
}

Test(client, tampered_envelope)
{
	struct tclient alice = {.name = ""}, bob = {.name = ""};
	struct tuser mallory;
	struct client_conn *c;
	struct proc_result res;
	Sotto__Frame *ack = NULL;
	uint8_t id[16] = {0};
	char err[512];

	pair(&alice, &bob, 0);
	cr_assert_eq(tuser_new(&mallory, "mallory", IDENTITY_ED25519), 0);
	cr_assert_eq(tregister(&srv, &mallory), 0);
	cr_assert_not_null(c = tlogin(&srv, &mallory, err, sizeof(err)), "%s", err);
	cr_assert_eq(tsend(c, "bob", "\x08\x01\x1a\x03abc", id, &ack), 0);
	frame_free(ack);
	client_conn_close(c);
	tuser_free(&mallory);
	cu_ok(&res, &alice, 0, NULL, "send", "bob", "-m", "still fine");
	proc_result_free(&res);
	cu_ok(&res, &bob, 0, NULL, "receive", NULL, NULL, NULL);
	cr_assert(strstr(res.err,
	                  "a message from mallory could not be decrypted (tampered or replayed); "
	                  "ignored") != NULL,
	        "%s", res.err);
	cr_assert(strstr(res.out, " alice: still fine\n") != NULL, "%s", res.out);
	proc_result_free(&res);
	/* It was acknowledged: it does not come back. */
	cu_ok(&res, &bob, 0, NULL, "receive", NULL, NULL, NULL);
	cr_assert(strstr(res.err, "could not be decrypted") == NULL, "%s", res.err);
	proc_result_free(&res);
}

/* The identity key swap_bob_key() last put on the server for bob (SPKI DER). */
static uint8_t swapped_der[1024];
static size_t swapped_derlen;

/* Play a malicious server, or bob's new device: give bob id and a signed prekey it signed. */
static void
swap_bob_key_to(const struct identity *id)
{
	uint8_t pub[32], sec[32], sig[IDENTITY_SIG_MAX];
	char path[512];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	sqlite3_int64 spk_id, created;
	size_t siglen;
	struct buf m;

	snprintf(path, sizeof(path), "%s/sottod.db", srv.state);
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 10000);
	cr_assert_eq(sqlite3_prepare_v2(db,
	                     "SELECT id, created FROM signed_prekeys WHERE name = 'bob' AND "
	                     "current = 1",
	                     -1, &st, NULL),
	        SQLITE_OK);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	spk_id = sqlite3_column_int64(st, 0);
	created = sqlite3_column_int64(st, 1);
	sqlite3_finalize(st);
	x25519_keypair(pub, sec);
	buf_init(&m, 0);
	cr_assert_eq(sigmsg_spk(&m, (uint32_t)spk_id, pub, (uint64_t)created), 0);
	cr_assert_eq(identity_sign(sig, sizeof(sig), &siglen, id, buf_ptr(&m), buf_len(&m)), 0);
	buf_free(&m);
	cr_assert_eq(sqlite3_prepare_v2(db,
	                     "UPDATE users SET identity_key = ?, identity_type = 1 WHERE name = "
	                     "'bob'",
	                     -1, &st, NULL),
	        SQLITE_OK);
	sqlite3_bind_blob(st, 1, identity_public(id)->der, (int)identity_public(id)->derlen,
	        SQLITE_TRANSIENT);
	cr_assert_eq(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	cr_assert_eq(sqlite3_prepare_v2(db,
	                     "UPDATE signed_prekeys SET public_key = ?, signature = ? WHERE name "
	                     "= 'bob' AND id = ?",
	                     -1, &st, NULL),
	        SQLITE_OK);
	sqlite3_bind_blob(st, 1, pub, 32, SQLITE_TRANSIENT);
	sqlite3_bind_blob(st, 2, sig, (int)siglen, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, spk_id);
	cr_assert_eq(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	cr_assert_eq(sqlite3_exec(db, "DELETE FROM one_time_prekeys WHERE name = 'bob'", NULL, NULL,
	                     NULL),
	        SQLITE_OK);
	sqlite3_close(db);
}

/* Give bob a new identity key; newfp (may be NULL) receives its fingerprint. */
static void
swap_bob_key(char *newfp)
{
	struct identity *id = NULL;

	cr_assert_eq(identity_generate(&id, IDENTITY_ED25519, 0), 0);
	swap_bob_key_to(id);
	if (newfp != NULL)
		identity_fingerprint(newfp, &id->pub);
	cr_assert(id->pub.derlen <= sizeof(swapped_der));
	memcpy(swapped_der, id->pub.der, id->pub.derlen);
	swapped_derlen = id->pub.derlen;
	identity_free(id);
}

/* alice's record of bob before the swap: his fingerprint. */
static void
bob_fingerprint(const struct tclient *bob, char fp[FINGERPRINT_LEN])
{
	struct identity_pub *p = NULL;
	char path[512];

	snprintf(path, sizeof(path), "%s.pub", bob->identity);
	cr_assert_eq(identity_pub_load(&p, NULL, path), 0);
	identity_fingerprint(fp, p);
	identity_pub_free(p);
}

Test(client, key_change_tofu)
{
	struct tclient alice = {.name = ""}, bob = {.name = ""};
	struct proc_result res;
	char fp[FINGERPRINT_LEN];

	pair(&alice, &bob, 0);
	bob_fingerprint(&bob, fp);
	cu_ok(&res, &alice, 0, NULL, "fingerprint", "bob", NULL, NULL);
	cr_assert(strstr(res.out, fp) != NULL, "%s", res.out);
	proc_result_free(&res);
	swap_bob_key(NULL);
	cu_ok(&res, &alice, 0, NULL, "send", "bob", "-m", "after the swap");
	cr_assert(strstr(res.err, "HAS CHANGED") != NULL, "%s", res.err);
	cr_assert(strstr(res.err, fp) != NULL, "%s", res.err);
	cr_assert(strstr(res.err, "new key:") != NULL, "%s", res.err);
	proc_result_free(&res);
	cu_ok(&res, &alice, 0, NULL, "identities", NULL, NULL, NULL);
	cr_assert(strstr(res.out, "changed") != NULL, "%s", res.out);
	proc_result_free(&res);
}

/* alice's safety number with bob, from their .pub files. */
static void
safety_digits(
        const struct tclient *alice, const struct tclient *bob, char digits[SAFETY_DIGITS + 1])
{
	struct identity_pub *a = NULL, *b = NULL;
	char path[512];

	snprintf(path, sizeof(path), "%s.pub", alice->identity);
	cr_assert_eq(identity_pub_load(&a, NULL, path), 0);
	snprintf(path, sizeof(path), "%s.pub", bob->identity);
	cr_assert_eq(identity_pub_load(&b, NULL, path), 0);
	cr_assert_eq(safety_number(digits, a->der, a->derlen, alice->name, b->der, b->derlen,
	                     bob->name, SAFETY_ITERATIONS),
	        0);
	identity_pub_free(a);
	identity_pub_free(b);
}

Test(client, key_change_verified)
{
	struct tclient alice = {.name = ""}, bob = {.name = ""};
	struct proc_result res;
	struct identity_pub *a = NULL;
	char digits[SAFETY_DIGITS + 1], wrong[SAFETY_DIGITS + 1], path[512];

	pair(&alice, &bob, 0);
	safety_digits(&alice, &bob, digits);
	memcpy(wrong, digits, sizeof(wrong));
	wrong[0] = wrong[0] == '1' ? '2' : '1';
	cu_ok(&res, &alice, 4, NULL, "verify", "bob", wrong, NULL);
	cr_assert(strstr(res.err, "does not match") != NULL, "%s", res.err);
	proc_result_free(&res);
	cu_ok(&res, &alice, 0, NULL, "verify", "bob", digits, NULL);
	proc_result_free(&res);
	swap_bob_key(NULL);
	cu_run(&res, &alice, NULL, "--json", "send", "bob", "-m", "must not go", (char *)NULL);
	cr_assert_eq(res.status, 4, "%s\n%s", res.out, res.err);
	cr_assert(strstr(res.out, "{\"event\":\"key_change\"") != NULL, "%s", res.out);
	cr_assert(strstr(res.err, "HAS CHANGED") != NULL, "%s", res.err);
	proc_result_free(&res);
	/* The number for the old key still matches the key on record, and changes nothing. */
	cu_ok(&res, &alice, 0, NULL, "verify", "bob", digits, NULL);
	proc_result_free(&res);
	cu_ok(&res, &alice, 4, NULL, "send", "bob", "-m", "must not go either");
	proc_result_free(&res);
	/* Comparing numbers over the new key accepts it: verify fetches it from the server. */
	snprintf(path, sizeof(path), "%s.pub", alice.identity);
	cr_assert_eq(identity_pub_load(&a, NULL, path), 0);
	cr_assert_eq(safety_number(digits, a->der, a->derlen, "alice", swapped_der, swapped_derlen,
	                     "bob", SAFETY_ITERATIONS),
	        0);
	identity_pub_free(a);
	cu_ok(&res, &alice, 0, NULL, "verify", "bob", digits, NULL);
	cr_assert(strstr(res.err, "bob's new key SHA256:") != NULL, "%s", res.err);
	cr_assert(strstr(res.out, "bob verified") != NULL, "%s", res.out);
	proc_result_free(&res);
	cu_ok(&res, &alice, 0, NULL, "fingerprint", "bob", NULL, NULL);
	cr_assert(strstr(res.out, "(verified)") != NULL, "%s", res.out);
	proc_result_free(&res);
	cu_ok(&res, &alice, 0, NULL, "send", "bob", "-m", "to the new key");
	cr_assert(strstr(res.err, "HAS CHANGED") == NULL, "%s", res.err);
	proc_result_free(&res);
}

/* A file's whole text in a static buffer; "" if it is missing. */
static const char *
slurp(const char *path)
{
	static char text[65536];
	FILE *fp = fopen(path, "r");
	size_t n = 0;

	if (fp != NULL) {
		n = fread(text, 1, sizeof(text) - 1, fp);
		fclose(fp);
	}
	text[n] = '\0';
	return text;
}

/* How many times needle occurs in s. */
static int
count(const char *s, const char *needle)
{
	int n = 0;

	while ((s = strstr(s, needle)) != NULL) {
		n++;
		s += strlen(needle);
	}
	return n;
}

static void
spit(const char *path, const char *mode, const char *text)
{
	FILE *fp = fopen(path, mode);

	cr_assert_not_null(fp, "%s", path);
	fputs(text, fp);
	cr_assert_eq(fclose(fp), 0);
}

/* A changed key says so, with the key still on record; the banner keeps the name as it is. */
Test(client, fingerprint_of_a_changed_key)
{
	struct tclient alice = {.name = ""}, bob = {.name = ""};
	struct proc_result res;
	char oldfp[FINGERPRINT_LEN], newfp[FINGERPRINT_LEN], want[400];

	pair(&alice, &bob, 0);
	bob_fingerprint(&bob, oldfp);
	cu_ok(&res, &alice, 0, NULL, "fingerprint", "bob", NULL, NULL);
	snprintf(want, sizeof(want), "bob %s ED25519 (tofu)\n", oldfp);
	cr_assert(strstr(res.out, want) != NULL, "%s", res.out);
	proc_result_free(&res);
	swap_bob_key(newfp);
	cu_ok(&res, &alice, 0, NULL, "send", "bob", "-m", "after the swap");
	cr_assert(strstr(res.err, "@    WARNING: THE IDENTITY KEY OF bob HAS CHANGED\n") != NULL,
	        "%s", res.err);
	cr_assert(strstr(res.err, "BOB") == NULL, "%s", res.err);
	proc_result_free(&res);
	cu_ok(&res, &alice, 0, NULL, "fingerprint", "bob", NULL, NULL);
	snprintf(want, sizeof(want), "bob %s ED25519 (changed)\nrecorded key: %s ", newfp, oldfp);
	cr_assert(strstr(res.out, want) != NULL, "%s", res.out);
	cr_assert(strstr(res.out, "(tofu)") == NULL, "%s", res.out);
	proc_result_free(&res);
	cu_ok(&res, &alice, 0, NULL, "--json", "fingerprint", "bob", NULL);
	snprintf(want, sizeof(want),
	        "\"fingerprint\":\"%s\",\"level\":\"changed\",\"recorded_fingerprint\":\"%s\",",
	        newfp, oldfp);
	cr_assert(strstr(res.out, want) != NULL, "%s", res.out);
	proc_result_free(&res);
	/* Accepting the new key ends it. */
	cu_ok(&res, &alice, 0, NULL, "trust", "bob", NULL, NULL);
	proc_result_free(&res);
	cu_ok(&res, &alice, 0, NULL, "fingerprint", "bob", NULL, NULL);
	snprintf(want, sizeof(want), "bob %s ED25519 (tofu)\nsafety number: ", newfp);
	cr_assert(strstr(res.out, want) != NULL, "%s", res.out);
	proc_result_free(&res);
}

/* "--" ends the options, the command's too: what follows is an operand. */
Test(client, double_dash_ends_options)
{
	struct tclient alice = {.name = ""}, bob = {.name = ""}, carol = {.name = ""};
	struct proc_result res;

	pair(&alice, &bob, 0);
	cu_ok(&res, &alice, 1, NULL, "send", "bob", "--", "-m");
	cr_assert(strstr(res.err, "usage: sotto send USER") != NULL, "%s", res.err);
	cr_assert(strstr(res.err, "unknown option") == NULL, "%s", res.err);
	proc_result_free(&res);
	cu_run(&res, &alice, NULL, "send", "bob", "-m", "hi", "--", "-6", (char *)NULL);
	cr_assert_eq(res.status, 1, "%s", res.err);
	cr_assert(strstr(res.err, "usage: sotto send USER") != NULL, "%s", res.err);
	proc_result_free(&res);
	cu_run(&res, &alice, NULL, "--", "send", "bob", "-m", "hi", (char *)NULL);
	cr_assert_eq(res.status, 1, "%s", res.err);
	cr_assert(strstr(res.err, "usage: sotto send USER") != NULL, "%s", res.err);
	proc_result_free(&res);
	cu_ok(&res, &alice, 1, NULL, "history", "--", "--help", NULL);
	cr_assert(strstr(res.err, "usage: sotto history USER") != NULL, "%s", res.err);
	proc_result_free(&res);
	/* Before the command, and before operands that look like none. */
	cu_ok(&res, &alice, 0, NULL, "--", "fingerprint", NULL, NULL);
	cr_assert(strstr(res.out, "(your key)") != NULL, "%s", res.out);
	proc_result_free(&res);
	cu_ok(&res, &alice, 0, "through stdin", "send", "--", "bob", NULL);
	proc_result_free(&res);
	cu_make(&carol, "carol", 0);
	cu_ok(&res, &carol, 0, NULL, "register", "--", "carol", NULL);
	cr_assert(strstr(res.out, "registered carol on ") != NULL, "%s", res.out);
	proc_result_free(&res);
	/* Only the message from standard input went out. */
	cu_ok(&res, &bob, 0, NULL, "receive", NULL, NULL, NULL);
	cr_assert(strstr(res.out, " alice: through stdin\n") != NULL, "%s\n%s", res.out, res.err);
	cr_assert_eq(count(res.out, " alice: "), 1, "%s", res.out);
	proc_result_free(&res);
}

/* With --ca, a --server-fingerprint given too must match as well; known_servers stays out of it. */
Test(client, ca_and_server_fingerprint_both_checked)
{
	static const char fake[] = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
	struct tclient dave = {.name = ""};
	struct proc_result res;
	char crt[400], other[400], fp[FINGERPRINT_LEN], ks[512];

	cu_make(&dave, "dave", 0);
	snprintf(crt, sizeof(crt), "%s/server.crt", srv.state);
	snprintf(ks, sizeof(ks), "%s/known_servers", dave.home);
	server_fp(fp);
	cu_ok(&res, &dave, 0, NULL, "--ca", crt, "register", "dave");
	proc_result_free(&res);
	cu_run(&res, &dave, NULL, "--ca", crt, "--server-fingerprint", fake, "who", (char *)NULL);
	cr_assert_eq(res.status, 3, "%s\n%s", res.out, res.err);
	cr_assert(strstr(res.err, fake) != NULL && strstr(res.err, fp) != NULL, "%s", res.err);
	cr_assert(strstr(res.out, "dave") == NULL, "%s", res.out);
	proc_result_free(&res);
	cu_run(&res, &dave, NULL, "--ca", crt, "--server-fingerprint", fp, "who", (char *)NULL);
	cr_assert_eq(res.status, 0, "%s", res.err);
	cr_assert(strstr(res.out, "dave online") != NULL, "%s", res.out);
	proc_result_free(&res);
	cr_assert_neq(access(ks, F_OK), 0, "%s was written", ks);
	/* A CA that did not sign the server's certificate. */
	snprintf(other, sizeof(other), "%s/other", srv.dir);
	cr_assert_eq(proc_runl(&res, NULL, testsrv_program("sotto-keygen"), "-q", "-t", "tls", "-f",
	                     other, "--san", "127.0.0.1", (char *)NULL),
	        0);
	cr_assert_eq(res.status, 0, "%s", res.err);
	proc_result_free(&res);
	strcat(other, ".crt");
	cu_ok(&res, &dave, 3, NULL, "--ca", other, "who", NULL);
	cr_assert(strstr(res.err, "did not verify") != NULL, "%s", res.err);
	proc_result_free(&res);
}

/* register changes server and user in sotto.conf and leaves every other line alone. */
Test(client, register_edits_sotto_conf_in_place)
{
	struct tclient alice = {.name = ""}, bob = {.name = ""};
	struct proc_result res;
	char conf[512], text[1024], want[1024];
	struct stat st;
	mode_t old;

	cu_make(&alice, "alice", 0);
	cu_make(&bob, "bob", 0);
	snprintf(conf, sizeof(conf), "%s/sotto.conf", alice.home);
	snprintf(text, sizeof(text),
	        "# alice's settings\n"
	        "identity = %s\n"
	        "\n"
	        "  trust_new = tofu\n"
	        "user = someone-else\n",
	        alice.identity);
	spit(conf, "w", text);
	old = umask(022);
	cu_ok(&res, &alice, 0, NULL, "register", "alice", NULL, NULL);
	umask(old);
	proc_result_free(&res);
	snprintf(want, sizeof(want),
	        "# alice's settings\n"
	        "identity = %s\n"
	        "\n"
	        "  trust_new = tofu\n"
	        "user = alice\n"
	        "server = 127.0.0.1:%s\n",
	        alice.identity, srv.port4);
	cr_assert_str_eq(slurp(conf), want);
	cr_assert_eq(stat(conf, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600, "mode %o", (unsigned)(st.st_mode & 07777));
	/* A relative --identity is remembered as an absolute path... */
	snprintf(conf, sizeof(conf), "%s/sotto.conf", bob.home);
	cu_cwd = srv.dir;
	cu_run(&res, &bob, NULL, "--identity", "bob/identity", "register", "bob", (char *)NULL);
	cu_cwd = NULL;
	cr_assert_eq(res.status, 0, "%s", res.err);
	proc_result_free(&res);
	snprintf(want, sizeof(want), "identity = %s\n", bob.identity);
	cr_assert(strstr(slurp(conf), want) != NULL, "%s", slurp(conf));
	/* ... so that it works from any directory. */
	cu_ok(&res, &bob, 0, NULL, "fingerprint", NULL, NULL, NULL);
	cr_assert(strstr(res.out, "(your key)") != NULL, "%s", res.out);
	proc_result_free(&res);
}

/* identities writes an IPv6 server as -s takes it: in brackets. */
Test(client, identities_bracket_ipv6_servers)
{
	struct tclient alice = {.name = ""}, bob = {.name = ""};
	struct proc_result res;
	char v6[64], want[128];

	pair(&alice, &bob, 0);
	snprintf(v6, sizeof(v6), "[::1]:%s", srv.port6);
	cu_run(&res, &alice, NULL, "-s", v6, "send", "bob", "-m", "over IPv6", (char *)NULL);
	cr_assert_eq(res.status, 0, "%s", res.err);
	proc_result_free(&res);
	cu_ok(&res, &alice, 0, NULL, "identities", NULL, NULL, NULL);
	snprintf(want, sizeof(want), "%s bob ED25519 SHA256:", v6);
	cr_assert(strstr(res.out, want) != NULL, "%s", res.out);
	proc_result_free(&res);
	cu_ok(&res, &alice, 0, NULL, "--json", "identities", NULL, NULL);
	snprintf(want, sizeof(want), "\"server\":\"%s\",\"user\":\"bob\"", v6);
	cr_assert(strstr(res.out, want) != NULL, "%s", res.out);
	proc_result_free(&res);
}

/*
 * A malformed trust file is the user's to mend: every command says which
 * line and exits 1, and a message that could not be checked stays queued.
 */
Test(client, malformed_trust_files_are_user_errors)
{
	static const char *const cmds[][4] = {
	        {"receive", NULL, NULL, NULL},
	        {"identities", NULL, NULL, NULL},
	        {"fingerprint", "carol", NULL, NULL},
	        {"send", "carol", "-m", "x"},
	        {"trust", "carol", NULL, NULL},
	        {"untrust", "carol", NULL, NULL},
	        {"verify", "carol", "12345", NULL},
	};
	struct tclient alice = {.name = ""}, bob = {.name = ""}, carol = {.name = ""};
	struct proc_result res;
	char kp[512], ks[512], where[600];
	size_t i;

	pair(&alice, &bob, 0);
	cu_make(&carol, "carol", 0);
	cu_register(&carol);
	cu_ok(&res, &carol, 0, NULL, "send", "bob", "-m", "kept for later");
	proc_result_free(&res);
	snprintf(kp, sizeof(kp), "%s/known_peers", bob.home);
	spit(kp, "w", "# edited by hand\nnot an entry\n");
	snprintf(where, sizeof(where), "sotto: %s:2: ", kp);
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		cu_ok(&res, &bob, 1, NULL, cmds[i][0], cmds[i][1], cmds[i][2], cmds[i][3]);
		cr_assert(strstr(res.err, where) != NULL, "sotto %s: %s", cmds[i][0], res.err);
		cr_assert(strstr(res.out, "kept for later") == NULL, "%s", res.out);
		proc_result_free(&res);
	}
	/* Mended, the file lets the message in: it was not dropped. */
	spit(kp, "w", "# edited by hand\n");
	cu_ok(&res, &bob, 0, NULL, "receive", NULL, NULL, NULL);
	cr_assert(strstr(res.out, " carol: kept for later\n") != NULL, "%s\n%s", res.out, res.err);
	proc_result_free(&res);
	/* known_servers likewise. */
	snprintf(ks, sizeof(ks), "%s/known_servers", alice.home);
	spit(ks, "a", "127.0.0.1:7443 not-a-fingerprint\n");
	snprintf(where, sizeof(where), "sotto: %s:2: ", ks);
	cu_ok(&res, &alice, 1, NULL, "who", NULL, NULL, NULL);
	cr_assert(strstr(res.err, where) != NULL, "%s", res.err);
	proc_result_free(&res);
}

#define DAY 86400

/* A Unix time days days from now, as --test-now takes it, in a static buffer (two at a time). */
static const char *
days_on(double days)
{
	static char s[2][32];
	static int which;

	which ^= 1;
	snprintf(s[which], sizeof(s[which]), "%lld",
	        (long long)time(NULL) + (long long)(days * DAY));
	return s[which];
}

/* The id of the signed prekey the server hands out for u, whose signature must check out. */
static uint32_t
bundle_spk_id(struct client_conn *c, const struct tclient *u)
{
	struct identity_pub *pub = NULL;
	Sotto__Frame req, *reply = NULL;
	Sotto__GetBundle gb;
	const Sotto__SignedPrekey *spk;
	char path[512];
	struct buf m;
	uint32_t id;

	sotto__get_bundle__init(&gb);
	gb.username = proto_str(u->name);
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_GET_BUNDLE;
	req.get_bundle = &gb;
	cr_assert_eq(client_conn_request(c, &req, &reply, 0), 0, "%s", client_conn_error(c));
	cr_assert_eq(reply->body_case, SOTTO__FRAME__BODY_BUNDLE);
	cr_assert_not_null(spk = reply->bundle->spk);
	snprintf(path, sizeof(path), "%s.pub", u->identity);
	cr_assert_eq(identity_pub_load(&pub, NULL, path), 0);
	buf_init(&m, 0);
	cr_assert_eq(sigmsg_spk(&m, spk->id, spk->public_key.data, spk->created), 0);
	cr_assert_eq(identity_pub_verify(pub, spk->signature.data, spk->signature.len, buf_ptr(&m),
	                     buf_len(&m)),
	        0, "signed prekey %u does not verify", spk->id);
	id = spk->id;
	buf_free(&m);
	identity_pub_free(pub);
	frame_free(reply);
	return id;
}

/* The signed prekeys in u's client.db, as "1,2,". */
static const char *
client_spk_ids(const struct tclient *u)
{
	static char out[256];
	char path[512];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	size_t n = 0;

	snprintf(path, sizeof(path), "%s/client.db", u->home);
	cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	cr_assert_eq(
	        sqlite3_prepare_v2(db, "SELECT id FROM signed_prekeys ORDER BY id", -1, &st, NULL),
	        SQLITE_OK);
	out[0] = '\0';
	while (sqlite3_step(st) == SQLITE_ROW && n < sizeof(out) - 24)
		n += (size_t)snprintf(
		        out + n, sizeof(out) - n, "%lld,", (long long)sqlite3_column_int64(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return out;
}

/* How many one-time prekeys the server holds for name. */
static int
server_otks(const char *name)
{
	char path[512];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int n;

	snprintf(path, sizeof(path), "%s/sottod.db", srv.state);
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 10000);
	cr_assert_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM one_time_prekeys WHERE name = ?",
	                     -1, &st, NULL),
	        SQLITE_OK);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

/* A throwaway user that fetches bundles. */
static struct client_conn *
probe_login(struct tuser *probe)
{
	struct client_conn *c;
	char err[512];

	cr_assert_eq(tuser_new(probe, "probe", IDENTITY_ED25519), 0);
	cr_assert_eq(tregister(&srv, probe), 0);
	cr_assert_not_null(c = tlogin(&srv, probe, err, sizeof(err)), "%s", err);
	return c;
}

/* Any login a week after the signed prekey was made replaces it; earlier ones do not. */
Test(client, signed_prekey_rotates_weekly)
{
	struct tclient alice = {.name = ""}, bob = {.name = ""};
	struct proc_result res;
	struct tuser probe;
	struct client_conn *c;

	pair(&alice, &bob, 0);
	c = probe_login(&probe);
	cr_assert_eq(bundle_spk_id(c, &bob), 1);
	cu_ok(&res, &bob, 0, NULL, "--test-now", days_on(6.9), "who", NULL);
	proc_result_free(&res);
	cr_assert_eq(bundle_spk_id(c, &bob), 1);
	cr_assert_str_eq(client_spk_ids(&bob), "1,");
	cu_ok(&res, &bob, 0, NULL, "--test-now", days_on(8), "who", NULL);
	cr_assert(strstr(res.out, "bob online") != NULL, "%s", res.out);
	proc_result_free(&res);
	cr_assert_eq(bundle_spk_id(c, &bob), 2);
	cr_assert_str_eq(client_spk_ids(&bob), "1,2,");
	/* Once a week, not at every login. */
	cu_ok(&res, &bob, 0, NULL, "--test-now", days_on(9), "seen", "alice");
	proc_result_free(&res);
	cr_assert_eq(bundle_spk_id(c, &bob), 2);
	cr_assert_str_eq(client_spk_ids(&bob), "1,2,");
	client_conn_close(c);
	tuser_free(&probe);
}

/*
 * alice fetches bob's bundle before bob's signed prekey rotates and sends
 * after it: within the grace period, bob still opens the session.
 */
Test(client, old_signed_prekey_opens_within_grace)
{
	struct tclient alice = {.name = ""}, bob = {.name = ""};
	struct proc_result res;

	pair(&alice, &bob, 0);
	cu_ok(&res, &alice, 0, NULL, "send", "bob", "-m", "before the rotation");
	proc_result_free(&res);
	/* who logs in (and rotates) but leaves the message queued. */
	cu_ok(&res, &bob, 0, NULL, "--test-now", days_on(8), "who", NULL);
	proc_result_free(&res);
	cr_assert_str_eq(client_spk_ids(&bob), "1,2,");
	/* alice has not heard from bob: her session still starts from signed prekey 1. */
	cu_ok(&res, &alice, 0, NULL, "send", "bob", "-m", "after the rotation");
	proc_result_free(&res);
	cu_ok(&res, &bob, 0, NULL, "--test-now", days_on(8 + 13.9), "receive", NULL);
	cr_assert(strstr(res.out, " alice: before the rotation\n") != NULL, "%s\n%s", res.out,
	        res.err);
	cr_assert(strstr(res.out, " alice: after the rotation\n") != NULL, "%s\n%s", res.out,
	        res.err);
	cr_assert(strstr(res.err, "could not be decrypted") == NULL, "%s", res.err);
	proc_result_free(&res);
	cr_assert_str_eq(client_spk_ids(&bob), "1,2,3,");
}

/* Past the grace period the old secret is gone: the row, its bytes, and what it opened. */
Test(client, old_signed_prekey_is_deleted_after_grace)
{
	struct tclient alice = {.name = ""}, bob = {.name = ""};
	struct proc_result res;
	uint8_t sealed[256];
	int sealedlen;
	char path[512];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	FILE *fp;
	static uint8_t file[4 * 1024 * 1024];
	size_t n;

	pair(&alice, &bob, 0);
	cu_ok(&res, &alice, 0, NULL, "send", "bob", "-m", "too late");
	proc_result_free(&res);
	cu_ok(&res, &bob, 0, NULL, "--test-now", days_on(8), "who", NULL);
	proc_result_free(&res);
	/* The sealed secret of signed prekey 1, to look for afterwards. */
	snprintf(path, sizeof(path), "%s/client.db", bob.home);
	cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(
	                     db, "SELECT secret FROM signed_prekeys WHERE id = 1", -1, &st, NULL),
	        SQLITE_OK);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	sealedlen = sqlite3_column_bytes(st, 0);
	cr_assert(sealedlen > 32 && sealedlen <= (int)sizeof(sealed));
	memcpy(sealed, sqlite3_column_blob(st, 0), (size_t)sealedlen);
	sqlite3_finalize(st);
	sqlite3_close(db);
	/* 8 + 14 days: prekey 1 was retired on day 8, so its grace ended on day 22. */
	cu_ok(&res, &bob, 0, NULL, "--test-now", days_on(23), "receive", NULL);
	cr_assert(strstr(res.err, "a message from alice could not be decrypted") != NULL, "%s",
	        res.err);
	cr_assert(strstr(res.out, "too late") == NULL, "%s", res.out);
	proc_result_free(&res);
	cr_assert_str_eq(client_spk_ids(&bob), "2,3,");
	cr_assert_not_null(fp = fopen(path, "rb"));
	n = fread(file, 1, sizeof(file), fp);
	fclose(fp);
	cr_assert(n < sizeof(file));
	cr_assert_null(memmem(file, n, sealed, (size_t)sealedlen),
	        "the deleted secret is still in client.db");
}

/* Every login tops the one-time prekeys up below 20, not only send and receive. */
Test(client, one_time_prekeys_topped_up_at_any_login)
{
	struct tclient alice = {.name = ""}, bob = {.name = ""};
	struct proc_result res;
	struct tuser probe;
	struct client_conn *c;
	int i;

	pair(&alice, &bob, 0);
	c = probe_login(&probe);
	for (i = 0; i < 80; i++)
		cr_assert_eq(bundle_spk_id(c, &bob), 1);
	cr_assert_eq(server_otks("bob"), 20);
	/* At 20 nothing is added. */
	cu_ok(&res, &bob, 0, NULL, "blocked", NULL, NULL, NULL);
	proc_result_free(&res);
	cr_assert_eq(server_otks("bob"), 20);
	cr_assert_eq(bundle_spk_id(c, &bob), 1);
	client_conn_close(c);
	tuser_free(&probe);
	cr_assert_eq(server_otks("bob"), 19);
	cu_ok(&res, &bob, 0, NULL, "blocked", NULL, NULL, NULL);
	proc_result_free(&res);
	cr_assert_eq(server_otks("bob"), 100);
}

/*
 * A message under a key alice refuses (she had verified bob; the server now
 * has another key for him) is not acknowledged: it waits on the server,
 * comes again at each receive, and is read once alice accepts the key.
 */
Test(client, message_under_refused_key_stays_queued)
{
	struct tclient alice = {.name = ""}, bob = {.name = ""}, nb = {.name = ""};
	struct identity *id = NULL;
	struct proc_result res;
	char digits[SAFETY_DIGITS + 1];
	int i;

	pair(&alice, &bob, 0);
	safety_digits(&alice, &bob, digits);
	cu_ok(&res, &alice, 0, NULL, "verify", "bob", digits, NULL);
	proc_result_free(&res);
	/* bob on a new device: a new identity, which the server now hands out. */
	tcheck_client_make(&srv, &nb, "bob-new", "bob", 0);
	cr_assert_eq(identity_load(&id, NULL, nb.identity, "pass of bob in bob-new"), 0);
	swap_bob_key_to(id);
	identity_free(id);
	cu_run(&res, &nb, NULL, "-u", "bob", "send", "alice", "-m", "from the new key",
	        (char *)NULL);
	cr_assert_eq(res.status, 0, "%s", res.err);
	proc_result_free(&res);
	for (i = 0; i < 2; i++) {
		cu_run(&res, &alice, NULL, "--json", "receive", (char *)NULL);
		cr_assert_eq(res.status, 4, "%s\n%s", res.out, res.err);
		cr_assert_null(strstr(res.out, "from the new key"), "%s", res.out);
		cr_assert_not_null(
		        strstr(res.out, "{\"event\":\"held\",\"from\":\"bob\""), "%s", res.out);
		cr_assert_not_null(strstr(res.err, "HAS CHANGED"), "%s", res.err);
		cr_assert_not_null(
		        strstr(res.err, "a message from bob stays on the server, unread"), "%s",
		        res.err);
		cr_assert_not_null(strstr(res.err, "sotto trust bob"), "%s", res.err);
		proc_result_free(&res);
	}
	cu_ok(&res, &alice, 0, NULL, "trust", "bob", NULL, NULL);
	proc_result_free(&res);
	cu_ok(&res, &alice, 0, NULL, "receive", NULL, NULL, NULL);
	cr_assert_not_null(strstr(res.out, " bob: from the new key\n"), "%s\n%s", res.out, res.err);
	proc_result_free(&res);
}

/* One message carries at most 64 KiB of text, from -m or from standard input. */
Test(client, text_over_64k_is_refused)
{
	enum { MAX = 65536 };
	struct tclient alice = {.name = ""}, bob = {.name = ""};
	struct proc_result res;
	char *big, *want;

	pair(&alice, &bob, 0);
	cr_assert_not_null(big = malloc(MAX + 3));
	cr_assert_not_null(want = malloc(MAX + 16));
	memset(big, 'x', MAX + 1);
	big[MAX + 1] = '\0';
	cu_ok(&res, &alice, 1, NULL, "send", "bob", "-m", big);
	cr_assert_not_null(
	        strstr(res.err, "one message carries at most 65536 bytes"), "%s", res.err);
	proc_result_free(&res);
	big[MAX + 1] = '\n';
	big[MAX + 2] = '\0';
	cu_ok(&res, &alice, 1, big, "send", "bob", NULL, NULL);
	cr_assert_not_null(
	        strstr(res.err, "one message carries at most 65536 bytes"), "%s", res.err);
	proc_result_free(&res);
	/* Exactly 64 KiB and a final newline (dropped) is fine. */
	memset(big, 'y', MAX);
	big[MAX] = '\n';
	big[MAX + 1] = '\0';
	cu_ok(&res, &alice, 0, big, "send", "bob", NULL, NULL);
	proc_result_free(&res);
	cu_ok(&res, &bob, 0, NULL, "--json", "receive", NULL, NULL);
	big[MAX] = '\0';
	snprintf(want, MAX + 16, "\"text\":\"%s\"}", big);
	cr_assert_not_null(strstr(res.out, want), "%.200s", res.out);
	cr_assert_null(strstr(res.out, "\"text\":\"x"), "%.200s", res.out);
	proc_result_free(&res);
	free(big);
	free(want);
}

/* Wait until who, run as u, lists name as online. */
static void
wait_online(const struct tclient *u, const char *name)
{
	struct proc_result res;
	char line[64];
	int64_t deadline = tnow_ms() + 15000;
	int found;

	snprintf(line, sizeof(line), "%s online\n", name);
	for (;;) {
		cu_ok(&res, u, 0, NULL, "who", NULL, NULL, NULL);
		found = strstr(res.out, line) != NULL;
		proc_result_free(&res);
		if (found)
			return;
		cr_assert_lt(tnow_ms(), deadline, "%s never came online", name);
		tsleep_ms(100);
	}
}

/* A follower: sotto receive --follow as u, left running. */
static struct proc *
follow(const struct tclient *u)
{
	const char *argv[] = {testsrv_program("sotto"), "-H", u->home, "-s", NULL,
	        "--passphrase-file", u->pass, "receive", "--follow", NULL};
	char server[64];
	struct proc_opts po;
	struct proc *p = NULL;

	snprintf(server, sizeof(server), "127.0.0.1:%s", srv.port4);
	argv[4] = server;
	memset(&po, 0, sizeof(po));
	po.timeout_ms = -1;
	po.env = (const char *const[]){"SOTTO_HOME", NULL};
	cr_assert_eq(proc_start(&p, argv, &po), 0);
	return p;
}

Test(client, broadcast_reaches_everyone_online)
{
	struct tclient alice = {.name = ""}, bob = {.name = ""}, carol = {.name = ""};
	struct proc_result res;
	struct proc *pb, *pc;

	pair(&alice, &bob, 0);
	cu_make(&carol, "carol", 1);
	cu_register(&carol);
	/* Nobody else online: nothing to do, and it says so. */
	cu_ok(&res, &alice, 0, NULL, "send", "--broadcast", "-m", "to nobody");
	cr_assert_not_null(strstr(res.out, "nobody else is online"), "%s", res.out);
	proc_result_free(&res);
	pb = follow(&bob);
	pc = follow(&carol);
	wait_online(&alice, "bob");
	wait_online(&alice, "carol");
	cu_ok(&res, &alice, 0, NULL, "send", "--broadcast", "-m", "hello everyone");
	cr_assert_not_null(strstr(res.out, "sent to bob\n"), "%s\n%s", res.out, res.err);
	cr_assert_not_null(strstr(res.out, "sent to carol\n"), "%s\n%s", res.out, res.err);
	cr_assert_null(strstr(res.out, "sent to alice"), "%s", res.out);
	proc_result_free(&res);
	cr_assert_eq(proc_wait_output(pb, " alice: hello everyone\n", 1, 15000), 0);
	cr_assert_eq(proc_wait_output(pc, " alice: hello everyone\n", 1, 15000), 0);
	proc_kill(pb, SIGTERM);
	proc_kill(pc, SIGTERM);
	cr_assert_eq(proc_wait(pb, &res, 10000), 0);
	proc_result_free(&res);
	cr_assert_eq(proc_wait(pc, &res, 10000), 0);
	proc_result_free(&res);
	cu_ok(&res, &alice, 0, NULL, "history", "carol", NULL, NULL);
	cr_assert_not_null(strstr(res.out, "alice: hello everyone ["), "%s", res.out);
	proc_result_free(&res);
	/* A broadcast needs no recipient, and takes none. */
	cu_ok(&res, &alice, 1, NULL, "send", "bob", "--broadcast", NULL);
	proc_result_free(&res);
}
