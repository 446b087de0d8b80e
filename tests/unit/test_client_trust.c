/* Unit tests for src/client-trust.c: known_servers and known_peers on real files. */
#include "config.h"

#include <sys/file.h>
#include <sys/stat.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "crypto/util.h"
#include "keys/identity.h"
#include "keys/keyfile.h"
#include "src/client-trust.h"
#include "tests/lib/tdir.h"

#ifndef Test
/* cppcheck does not read criterion.h: let it analyse each test as a plain function. */
#define TestSuite(...)         struct test_suite_unused
#define Test(suite, name, ...) void test_##suite##_##name(void)
#endif

#define T0 1700000000

static char dir[64];
static char servers[128];
static char peers[128];
static struct identity *alice1, *alice2, *bob;

static void
setup(void)
{
	cr_assert_eq(sotto_crypto_init(), 0);
	tdir_make(dir, sizeof(dir), "test_client_trust");
	snprintf(servers, sizeof(servers), "%s/known_servers", dir);
	snprintf(peers, sizeof(peers), "%s/known_peers", dir);
	cr_assert_eq(identity_generate(&alice1, IDENTITY_ED25519, 0), 0);
	cr_assert_eq(identity_generate(&alice2, IDENTITY_ED25519, 0), 0);
	cr_assert_eq(identity_generate(&bob, IDENTITY_ED25519, 0), 0);
}

static void
teardown(void)
{
	identity_free(alice1);
	identity_free(alice2);
	identity_free(bob);
	alice1 = alice2 = bob = NULL;
	tdir_remove(dir);
}

TestSuite(client_trust, .init = setup, .fini = teardown);

/* The whole file as a string (free() it). */
static char *
slurp(const char *path)
{
	uint8_t *data = NULL;
	size_t len = 0;
	char *s;

	cr_assert_eq(keyfile_read(path, 0, &data, &len), 0, "reading %s", path);
	s = strdup((const char *)data);
	keyfile_free(data, len);
	cr_assert_not_null(s);
	return s;
}

static void
put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f);
	cr_assert_eq(fputs(text, f) >= 0, 1);
	cr_assert_eq(fclose(f), 0);
}

static void
spki(uint8_t out[CLIENT_TRUST_SPKI_BYTES], int fill)
{
	memset(out, fill, CLIENT_TRUST_SPKI_BYTES);
}

static const struct identity_pub *
pub(const struct identity *id)
{
	return identity_public(id);
}

/* A known_peers line for id, as the module writes it (free() it). */
static char *
peer_line(const char *server, const char *user, const struct identity *id, const char *level)
{
	char fp[FINGERPRINT_LEN], *key = NULL, *line;
	size_t n;

	cr_assert_eq(identity_pub_format_line(&key, pub(id), NULL), 0);
	identity_fingerprint(fp, pub(id));
	n = strlen(server) + strlen(user) + strlen(key) + 200;
	line = malloc(n);
	cr_assert_not_null(line);
	snprintf(line, n, "%s %s ED25519 %s %s %d %s\n", server, user, fp, level, T0, key);
	free(key);
	return line;
}

Test(client_trust, policy_and_level_names)
{
	enum client_trust_policy p;

	cr_assert_eq(client_trust_policy_parse(&p, "tofu"), 0);
	cr_assert_eq(p, CLIENT_TRUST_NEW_TOFU);
	cr_assert_eq(client_trust_policy_parse(&p, "always"), 0);
	cr_assert_eq(p, CLIENT_TRUST_NEW_ALWAYS);
	cr_assert_eq(client_trust_policy_parse(&p, "never"), 0);
	cr_assert_eq(p, CLIENT_TRUST_NEW_NEVER);
	cr_assert_eq(client_trust_policy_parse(&p, "TOFU"), SOTTO_ERR_INVALID);
	cr_assert_eq(client_trust_policy_parse(&p, ""), SOTTO_ERR_INVALID);
	cr_assert_eq(client_trust_policy_parse(&p, NULL), SOTTO_ERR_INVALID);
	cr_assert_str_eq(client_trust_policy_name(CLIENT_TRUST_NEW_ALWAYS), "always");
	cr_assert_str_eq(client_trust_level_name(CLIENT_TRUST_TOFU), "tofu");
	cr_assert_str_eq(client_trust_level_name(CLIENT_TRUST_VERIFIED), "verified");
	cr_assert_str_eq(client_trust_level_name(CLIENT_TRUST_CHANGED), "changed");
}

Test(client_trust, fingerprint_parse)
{
	uint8_t d[CLIENT_TRUST_SPKI_BYTES], back[CLIENT_TRUST_SPKI_BYTES];
	char fp[FINGERPRINT_LEN];

	sotto_random(d, sizeof(d));
	fingerprint_format(fp, d);
	cr_assert_eq(client_trust_fingerprint_parse(back, fp), 0);
	cr_assert_eq(memcmp(d, back, sizeof(d)), 0);

	cr_assert_eq(client_trust_fingerprint_parse(back, fp + 7), SOTTO_ERR_FORMAT);
	cr_assert_eq(client_trust_fingerprint_parse(back, "SHA256:"), SOTTO_ERR_FORMAT);
	cr_assert_eq(client_trust_fingerprint_parse(back, "MD5:abc"), SOTTO_ERR_FORMAT);
	cr_assert_eq(client_trust_fingerprint_parse(back, NULL), SOTTO_ERR_FORMAT);
	/* Non-canonical: the last character carries two unused bits. */
	memset(d, 0, sizeof(d));
	fingerprint_format(fp, d);
	cr_assert_eq(fp[strlen(fp) - 1], 'A');
	fp[strlen(fp) - 1] = 'B';
	cr_assert_eq(client_trust_fingerprint_parse(back, fp), SOTTO_ERR_FORMAT);
	/* Bad characters, and padding. */
	fingerprint_format(fp, d);
	fp[10] = '*';
	cr_assert_eq(client_trust_fingerprint_parse(back, fp), SOTTO_ERR_FORMAT);
	fingerprint_format(fp, d);
	fp[strlen(fp) - 1] = '=';
	cr_assert_eq(client_trust_fingerprint_parse(back, fp), SOTTO_ERR_FORMAT);
}

Test(client_trust, server_names)
{
	char name[CLIENT_TRUST_HOST_MAX + 9];

	cr_assert_eq(client_trust_server_name(name, sizeof(name), "Chat.Example.ORG", 7443), 0);
	cr_assert_str_eq(name, "chat.example.org:7443");
	cr_assert_eq(client_trust_server_name(name, sizeof(name), "::1", 7443), 0);
	cr_assert_str_eq(name, "[::1]:7443");
	cr_assert_eq(client_trust_server_name(name, sizeof(name), "[0:0::1]", 1), 0);
	cr_assert_str_eq(name, "[::1]:1");
	cr_assert_eq(client_trust_server_name(name, sizeof(name), "127.0.0.1", 65535), 0);
	cr_assert_str_eq(name, "127.0.0.1:65535");
	cr_assert_eq(client_trust_server_name(name, sizeof(name), "a b", 1), SOTTO_ERR_INVALID);
	cr_assert_eq(client_trust_server_name(name, sizeof(name), "host", 0), SOTTO_ERR_INVALID);
	cr_assert_eq(client_trust_server_name(name, sizeof(name), "1:2:3", 1), SOTTO_ERR_INVALID);
	cr_assert_eq(client_trust_server_name(name, sizeof(name), "", 1), SOTTO_ERR_INVALID);
	cr_assert_eq(client_trust_server_name(name, 5, "host", 7443), SOTTO_ERR_RANGE);
}

Test(client_trust, server_pin_round_trip)
{
	uint8_t a[CLIENT_TRUST_SPKI_BYTES], b[CLIENT_TRUST_SPKI_BYTES],
	        got[CLIENT_TRUST_SPKI_BYTES];
	enum client_trust_status status;
	char err[512], fp[FINGERPRINT_LEN], *text;
	struct stat sb;

	spki(a, 0x11);
	spki(b, 0x22);
	/* No file yet: unknown, and nothing is created by a look-up. */
	cr_assert_eq(client_trust_server_lookup(
	                     servers, "chat.example.org", 7443, a, &status, got, err, sizeof(err)),
	        0, "%s", err);
	cr_assert_eq(status, CLIENT_TRUST_UNKNOWN);
	cr_assert_eq(access(servers, F_OK), -1);

	cr_assert_eq(
	        client_trust_server_add(servers, "chat.example.org", 7443, a, T0, err, sizeof(err)),
	        0, "%s", err);
	cr_assert_eq(stat(servers, &sb), 0);
	cr_assert_eq(sb.st_mode & 0777, 0600);
	text = slurp(servers);
	fingerprint_format(fp, a);
	cr_assert(strncmp(text, "chat.example.org:7443 ", 22) == 0, "%s", text);
	cr_assert(strstr(text, fp) != NULL, "%s", text);
	cr_assert(strstr(text, " 1700000000\n") != NULL, "%s", text);
	free(text);

	/* Host names compare without regard to case. */
	cr_assert_eq(client_trust_server_lookup(
	                     servers, "CHAT.example.org", 7443, a, &status, got, err, sizeof(err)),
	        0, "%s", err);
	cr_assert_eq(status, CLIENT_TRUST_MATCH);
	cr_assert_eq(memcmp(got, a, sizeof(a)), 0);
	/* Another port is another server. */
	cr_assert_eq(client_trust_server_lookup(
	                     servers, "chat.example.org", 7444, a, &status, got, err, sizeof(err)),
	        0, "%s", err);
	cr_assert_eq(status, CLIENT_TRUST_UNKNOWN);
	/* A changed key: the stored fingerprint comes back for the loud message. */
	cr_assert_eq(client_trust_server_lookup(
	                     servers, "chat.example.org", 7443, b, &status, got, err, sizeof(err)),
	        0, "%s", err);
	cr_assert_eq(status, CLIENT_TRUST_MISMATCH);
	cr_assert_eq(memcmp(got, a, sizeof(a)), 0);

	/* Pinning the same key again is a no-op; a different one needs a removal first. */
	cr_assert_eq(client_trust_server_add(
	                     servers, "chat.example.org", 7443, a, T0 + 5, err, sizeof(err)),
	        0, "%s", err);
	cr_assert_eq(client_trust_server_add(
	                     servers, "chat.example.org", 7443, b, T0 + 5, err, sizeof(err)),
	        SOTTO_ERR_EXISTS);
	cr_assert(strstr(err, ":1:") != NULL, "%s", err);
	cr_assert_eq(
	        client_trust_server_remove(servers, "chat.example.org", 7443, err, sizeof(err)), 0,
	        "%s", err);
	cr_assert_eq(
	        client_trust_server_remove(servers, "chat.example.org", 7443, err, sizeof(err)),
	        SOTTO_ERR_NOTFOUND);
	cr_assert_eq(client_trust_server_add(
	                     servers, "chat.example.org", 7443, b, T0 + 6, err, sizeof(err)),
	        0, "%s", err);
	cr_assert_eq(client_trust_server_lookup(
	                     servers, "chat.example.org", 7443, b, &status, NULL, err, sizeof(err)),
	        0, "%s", err);
	cr_assert_eq(status, CLIENT_TRUST_MATCH);
}

Test(client_trust, server_ipv6_and_hand_written_lines)
{
	uint8_t a[CLIENT_TRUST_SPKI_BYTES], b[CLIENT_TRUST_SPKI_BYTES];
	enum client_trust_status status;
	char err[512], fpa[FINGERPRINT_LEN], fpb[FINGERPRINT_LEN], text[512], *after;

	spki(a, 0x33);
	spki(b, 0x44);
	fingerprint_format(fpa, a);
	fingerprint_format(fpb, b);
	/* Comments, blank lines, tabs, no added time, no final newline. */
	snprintf(text, sizeof(text), "# pinned by hand\n\n[0:0::1]:7443\t%s\nHost.B:99 %s", fpa,
	        fpb);
	put(servers, text);
	cr_assert_eq(client_trust_server_lookup(
	                     servers, "::1", 7443, a, &status, NULL, err, sizeof(err)),
	        0, "%s", err);
	cr_assert_eq(status, CLIENT_TRUST_MATCH);
	cr_assert_eq(client_trust_server_lookup(
	                     servers, "[::1]", 7443, b, &status, NULL, err, sizeof(err)),
	        0, "%s", err);
	cr_assert_eq(status, CLIENT_TRUST_MISMATCH);
	cr_assert_eq(client_trust_server_lookup(
	                     servers, "host.b", 99, b, &status, NULL, err, sizeof(err)),
	        0, "%s", err);
	cr_assert_eq(status, CLIENT_TRUST_MATCH);

	/* An edit keeps the comments and other lines as they were. */
	cr_assert_eq(client_trust_server_add(servers, "example.net", 7443, a, T0, err, sizeof(err)),
	        0, "%s", err);
	after = slurp(servers);
	cr_assert(strncmp(after, text, strlen(text)) == 0, "%s", after);
	cr_assert(strstr(after, "\nexample.net:7443 ") != NULL, "%s", after);
	free(after);
}

/* Expect a look-up in file to fail with SOTTO_ERR_FORMAT and an error naming want. */
static void
expect_bad(const char *file, const char *text, const char *want)
{
	uint8_t a[CLIENT_TRUST_SPKI_BYTES];
	struct client_trust_peer *rec = (struct client_trust_peer *)1;
	enum client_trust_status status = CLIENT_TRUST_MATCH;
	char err[512] = "";
	int r;

	put(file, text);
	spki(a, 1);
	if (file == servers)
		r = client_trust_server_lookup(file, "h", 1, a, &status, NULL, err, sizeof(err));
	else
		r = client_trust_peer_lookup(
		        file, "h", 1, "alice", pub(alice1), &status, &rec, err, sizeof(err));
	cr_assert_eq(r, SOTTO_ERR_FORMAT, "%s gave %d", text, r);
	cr_assert_eq(status, CLIENT_TRUST_UNKNOWN);
	if (file != servers)
		cr_assert_null(rec);
	cr_assert(strstr(err, want) != NULL, "error \"%s\" lacks \"%s\"", err, want);
}

Test(client_trust, malformed_server_lines)
{
	char text[1024], fp[FINGERPRINT_LEN], want[256], *big;
	uint8_t a[CLIENT_TRUST_SPKI_BYTES];

	spki(a, 0x55);
	fingerprint_format(fp, a);
#define BAD(fmt, line, why)                                                    \
	do {                                                                   \
		snprintf(text, sizeof(text), "# ok\n" fmt "\n", fp);           \
		snprintf(want, sizeof(want), "%s:%d: %s", servers, line, why); \
		expect_bad(servers, text, want);                               \
	} while (0)
	BAD("h:1 %s 12 extra", 2, "expected");
	BAD("h %s", 2, "bad HOST:PORT");
	BAD("h:0 %s", 2, "bad HOST:PORT");
	BAD("h:65536 %s", 2, "bad HOST:PORT");
	BAD("h:07443 %s", 2, "bad HOST:PORT");
	BAD("h:1:2 %s", 2, "bad HOST:PORT");
	BAD("[h]:1 %s", 2, "bad HOST:PORT");
	BAD("[::1:1 %s", 2, "bad HOST:PORT");
	BAD("h/x:1 %s", 2, "bad HOST:PORT");
	BAD("h:1 %sx", 2, "bad fingerprint");
	BAD("h:1 %s -5", 2, "bad time");
	BAD("h:1 %s 1e9", 2, "bad time");
	BAD("h:1 %s 1234567890123456789", 2, "bad time");
	BAD("h:1%s", 2, "expected");
#undef BAD
	/* A duplicate entry for the server looked up names both lines. */
	snprintf(text, sizeof(text), "h:1 %s\n\nH:1 %s\n", fp, fp);
	snprintf(want, sizeof(want), "%s:3: a second entry for h:1 (the first is line 1)", servers);
	expect_bad(servers, text, want);
	/* A NUL byte, and an overlong line. */
	{
		FILE *f = fopen(servers, "w");

		cr_assert_not_null(f);
		fprintf(f, "# a\n# b\x01\nh:1 %s", fp);
		fputc('\0', f);
		fputs("\n", f);
		fclose(f);
	}
	{
		uint8_t a2[CLIENT_TRUST_SPKI_BYTES];
		enum client_trust_status st;
		char err[256];

		spki(a2, 1);
		cr_assert_eq(client_trust_server_lookup(
		                     servers, "h", 1, a2, &st, NULL, err, sizeof(err)),
		        SOTTO_ERR_FORMAT);
		snprintf(want, sizeof(want), "%s:3: NUL byte", servers);
		cr_assert_str_eq(err, want);
	}
	big = malloc(CLIENT_TRUST_LINE_MAX + 64);
	cr_assert_not_null(big);
	memset(big, '#', CLIENT_TRUST_LINE_MAX + 1);
	strcpy(big + CLIENT_TRUST_LINE_MAX + 1, "\n");
	snprintf(want, sizeof(want), "%s:1: line too long", servers);
	expect_bad(servers, big, want);
	/* Exactly at the limit is fine. */
	big[CLIENT_TRUST_LINE_MAX] = '\n';
	big[CLIENT_TRUST_LINE_MAX + 1] = '\0';
	put(servers, big);
	{
		enum client_trust_status st;
		char err[256];

		cr_assert_eq(
		        client_trust_server_lookup(servers, "h", 1, a, &st, NULL, err, sizeof(err)),
		        0, "%s", err);
	}
	free(big);
	/* A broken file is never rewritten. */
	put(servers, "garbage\n");
	cr_assert_eq(client_trust_server_add(servers, "h", 1, a, T0, NULL, 0), SOTTO_ERR_FORMAT);
	big = slurp(servers);
	cr_assert_str_eq(big, "garbage\n");
	free(big);
}

Test(client_trust, peer_lifecycle_tofu_change_trust_verify_remove)
{
	struct client_trust_peer *rec = NULL;
	enum client_trust_status status;
	char err[512], fp1[FINGERPRINT_LEN], fp2[FINGERPRINT_LEN], *text;
	struct stat sb;

	identity_fingerprint(fp1, pub(alice1));
	identity_fingerprint(fp2, pub(alice2));

	/* First contact. */
	cr_assert_eq(client_trust_peer_lookup(peers, "chat.example.org", 7443, "alice", pub(alice1),
	                     &status, &rec, err, sizeof(err)),
	        0, "%s", err);
	cr_assert_eq(status, CLIENT_TRUST_UNKNOWN);
	cr_assert_null(rec);
	cr_assert_eq(client_trust_peer_add(peers, "chat.example.org", 7443, "Alice", pub(alice1),
	                     T0, err, sizeof(err)),
	        0, "%s", err);
	cr_assert_eq(stat(peers, &sb), 0);
	cr_assert_eq(sb.st_mode & 0777, 0600);
	text = slurp(peers);
	cr_assert(strncmp(text, "chat.example.org:7443 alice ED25519 ", 36) == 0, "%s", text);
	cr_assert(strstr(text, fp1) != NULL, "%s", text);
	cr_assert(strstr(text, " tofu 1700000000 sotto-ed25519 ") != NULL, "%s", text);
	free(text);
	cr_assert_eq(client_trust_peer_add(peers, "chat.example.org", 7443, "alice", pub(alice1),
	                     T0, err, sizeof(err)),
	        SOTTO_ERR_EXISTS);

	/* Same key again. */
	cr_assert_eq(client_trust_peer_lookup(peers, "chat.example.org", 7443, "ALICE", pub(alice1),
	                     &status, &rec, err, sizeof(err)),
	        0, "%s", err);
	cr_assert_eq(status, CLIENT_TRUST_MATCH);
	cr_assert_not_null(rec);
	cr_assert_eq(rec->level, CLIENT_TRUST_TOFU);
	cr_assert_eq(rec->added, T0);
	cr_assert_str_eq(rec->username, "alice");
	cr_assert_str_eq(rec->host, "chat.example.org");
	cr_assert_eq(rec->port, 7443);
	client_trust_peer_free(rec);
	rec = NULL;

	/* A new key: the old record comes back with the old key and fingerprint. */
	cr_assert_eq(client_trust_peer_lookup(peers, "chat.example.org", 7443, "alice", pub(alice2),
	                     &status, &rec, err, sizeof(err)),
	        0, "%s", err);
	cr_assert_eq(status, CLIENT_TRUST_MISMATCH);
	cr_assert_str_eq(rec->fingerprint, fp1);
	cr_assert(identity_pub_equal(rec->pub, pub(alice1)));
	client_trust_peer_free(rec);
	rec = NULL;

	/* Marked changed: the old key stays on record until the user decides. */
	cr_assert_eq(client_trust_peer_mark_changed(
	                     peers, "chat.example.org", 7443, "alice", err, sizeof(err)),
	        0, "%s", err);
	cr_assert_eq(client_trust_peer_lookup(peers, "chat.example.org", 7443, "alice", pub(alice2),
	                     &status, &rec, err, sizeof(err)),
	        0, "%s", err);
	cr_assert_eq(status, CLIENT_TRUST_MISMATCH);
	cr_assert_eq(rec->level, CLIENT_TRUST_CHANGED);
	cr_assert_str_eq(rec->fingerprint, fp1);
	client_trust_peer_free(rec);
	rec = NULL;
	cr_assert_eq(client_trust_peer_mark_changed(
	                     peers, "chat.example.org", 7443, "nobody", err, sizeof(err)),
	        SOTTO_ERR_NOTFOUND);

	/* /trust: the new key replaces the old one, at level tofu. */
	cr_assert_eq(client_trust_peer_trust(peers, "chat.example.org", 7443, "alice", pub(alice2),
	                     T0 + 100, err, sizeof(err)),
	        0, "%s", err);
	cr_assert_eq(client_trust_peer_get(
	                     &rec, peers, "chat.example.org", 7443, "alice", err, sizeof(err)),
	        0, "%s", err);
	cr_assert_eq(rec->level, CLIENT_TRUST_TOFU);
	cr_assert_eq(rec->added, T0 + 100);
	cr_assert_str_eq(rec->fingerprint, fp2);
	client_trust_peer_free(rec);
	rec = NULL;

	/* /verify keeps the time the key was recorded; /trust of that key then changes nothing. */
	cr_assert_eq(client_trust_peer_verify(peers, "chat.example.org", 7443, "alice", pub(alice2),
	                     T0 + 200, err, sizeof(err)),
	        0, "%s", err);
	cr_assert_eq(client_trust_peer_trust(peers, "chat.example.org", 7443, "alice", pub(alice2),
	                     T0 + 300, err, sizeof(err)),
	        0, "%s", err);
	cr_assert_eq(client_trust_peer_get(
	                     &rec, peers, "chat.example.org", 7443, "alice", err, sizeof(err)),
	        0, "%s", err);
	cr_assert_eq(rec->level, CLIENT_TRUST_VERIFIED);
	cr_assert_eq(rec->added, T0 + 100);
	client_trust_peer_free(rec);
	rec = NULL;

	/* Verifying a different key replaces it. */
	cr_assert_eq(client_trust_peer_verify(peers, "chat.example.org", 7443, "alice", pub(alice1),
	                     T0 + 400, err, sizeof(err)),
	        0, "%s", err);
	cr_assert_eq(client_trust_peer_get(
	                     &rec, peers, "chat.example.org", 7443, "alice", err, sizeof(err)),
	        0, "%s", err);
	cr_assert_eq(rec->level, CLIENT_TRUST_VERIFIED);
	cr_assert_eq(rec->added, T0 + 400);
	cr_assert_str_eq(rec->fingerprint, fp1);
	client_trust_peer_free(rec);
	rec = NULL;

	/* Untrust. */
	cr_assert_eq(client_trust_peer_remove(
	                     peers, "chat.example.org", 7443, "alice", err, sizeof(err)),
	        0, "%s", err);
	cr_assert_eq(client_trust_peer_get(
	                     &rec, peers, "chat.example.org", 7443, "alice", err, sizeof(err)),
	        SOTTO_ERR_NOTFOUND);
	cr_assert_null(rec);
	cr_assert_eq(client_trust_peer_remove(
	                     peers, "chat.example.org", 7443, "alice", err, sizeof(err)),
	        SOTTO_ERR_NOTFOUND);
	text = slurp(peers);
	cr_assert_str_eq(text, "");
	free(text);
}

Test(client_trust, peers_are_per_server_and_listed_in_order)
{
	struct client_trust_peer *rec = NULL;
	enum client_trust_status status;
	char err[512];

	cr_assert_eq(client_trust_peer_add(
	                     peers, "a.example", 7443, "alice", pub(alice1), T0, err, sizeof(err)),
	        0, "%s", err);
	cr_assert_eq(client_trust_peer_add(
	                     peers, "b.example", 7443, "alice", pub(alice2), T0, err, sizeof(err)),
	        0, "%s", err);
	cr_assert_eq(
	        client_trust_peer_add(peers, "::1", 7443, "bob", pub(bob), T0, err, sizeof(err)), 0,
	        "%s", err);
	cr_assert_eq(client_trust_peer_lookup(peers, "b.example", 7443, "alice", pub(alice2),
	                     &status, NULL, err, sizeof(err)),
	        0, "%s", err);
	cr_assert_eq(status, CLIENT_TRUST_MATCH);
	cr_assert_eq(client_trust_peer_lookup(peers, "a.example", 7443, "alice", pub(alice2),
	                     &status, NULL, err, sizeof(err)),
	        0, "%s", err);
	cr_assert_eq(status, CLIENT_TRUST_MISMATCH);
	cr_assert_eq(client_trust_peer_get(&rec, peers, "[::1]", 7443, "bob", err, sizeof(err)), 0,
	        "%s", err);
	cr_assert(identity_pub_equal(rec->pub, pub(bob)));
	client_trust_peer_free(rec);
}

static int
count_cb(void *arg, const struct client_trust_peer *p)
{
	int *n = arg;

	cr_assert_not_null(p->pub);
	(*n)++;
	return strcmp(p->username, "stop") == 0 ? 1 : 0;
}

Test(client_trust, foreach)
{
	char err[512], *l1, *l2, *text;
	int n = 0;
	size_t len;

	cr_assert_eq(
	        client_trust_peer_foreach(peers, count_cb, &n, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(n, 0);
	cr_assert_eq(
	        client_trust_peer_add(peers, "a", 1, "alice", pub(alice1), T0, err, sizeof(err)), 0,
	        "%s", err);
	cr_assert_eq(client_trust_peer_add(peers, "a", 1, "stop", pub(bob), T0, err, sizeof(err)),
	        0, "%s", err);
	cr_assert_eq(
	        client_trust_peer_add(peers, "a", 1, "carol", pub(alice2), T0, err, sizeof(err)), 0,
	        "%s", err);
	cr_assert_eq(
	        client_trust_peer_foreach(peers, count_cb, &n, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(n, 2);

	/* A broken line anywhere: the callback never runs. */
	l1 = peer_line("a:1", "dave", alice1, "tofu");
	l2 = peer_line("a:1", "eve", bob, "sometimes");
	len = strlen(l1) + strlen(l2) + 1;
	text = malloc(len);
	cr_assert_not_null(text);
	snprintf(text, len, "%s%s", l1, l2);
	put(peers, text);
	n = 0;
	cr_assert_eq(
	        client_trust_peer_foreach(peers, count_cb, &n, err, sizeof(err)), SOTTO_ERR_FORMAT);
	cr_assert_eq(n, 0);
	cr_assert(strstr(err, "known_peers:2: unknown trust level") != NULL, "%s", err);
	free(text);
	free(l1);
	free(l2);
}

Test(client_trust, malformed_peer_lines)
{
	char want[256], *good, *line, *p;
	size_t n;

	good = peer_line("h:1", "alice", alice1, "tofu");
	n = strlen(good) + 256;
	line = malloc(n);
	cr_assert_not_null(line);

#define BAD(why)                                                      \
	do {                                                          \
		snprintf(want, sizeof(want), "%s:1: %s", peers, why); \
		expect_bad(peers, line, want);                        \
	} while (0)
	/* The good line parses. */
	{
		enum client_trust_status st;
		char err[256];

		put(peers, good);
		cr_assert_eq(client_trust_peer_lookup(peers, "h", 1, "alice", pub(alice1), &st,
		                     NULL, err, sizeof(err)),
		        0, "%s", err);
		cr_assert_eq(st, CLIENT_TRUST_MATCH);
	}
	/* Level. */
	snprintf(line, n, "%s", good);
	p = strstr(line, " tofu ");
	memcpy(p, " TOFU ", 6);
	BAD("unknown trust level");
	/* Type. */
	snprintf(line, n, "%s", good);
	p = strstr(line, " ED25519 ");
	memcpy(p, " RSA    ", 8);
	BAD("the key type does not match the key");
	snprintf(line, n, "%s", good);
	p = strstr(line, " ED25519 ");
	memcpy(p, " ED25518 ", 9);
	BAD("the key type does not match the key");
	/* Fingerprint of another key. */
	{
		char fp1[FINGERPRINT_LEN], fpb[FINGERPRINT_LEN];

		identity_fingerprint(fp1, pub(alice1));
		identity_fingerprint(fpb, pub(bob));
		snprintf(line, n, "%s", good);
		p = strstr(line, fp1);
		memcpy(p, fpb, strlen(fpb));
		BAD("the fingerprint does not match the key");
	}
	/* Username. */
	snprintf(line, n, "%s", good);
	p = strstr(line, " alice ");
	memcpy(p, " al!ce ", 7);
	BAD("bad username");
	/* Key bytes. */
	snprintf(line, n, "%s", good);
	p = strstr(line, "sotto-ed25519 ") + 14;
	p[3] ^= 1;
	BAD("bad public key");
	/* Time. */
	snprintf(line, n, "%s", good);
	p = strstr(line, " 1700000000 ");
	p[1] = 'x';
	BAD("bad time");
	/* Missing and extra fields. */
	snprintf(line, n, "%s", good);
	p = strstr(line, " sotto-ed25519");
	strcpy(p, "\n");
	BAD("expected");
	snprintf(line, n, "%.*s comment\n", (int)strlen(good) - 1, good);
	BAD("expected");
	/* Host. */
	snprintf(line, n, "h/x%s", good + 1);
	BAD("bad HOST:PORT");
#undef BAD
	/* Duplicate entries for the peer looked up. */
	n = 2 * strlen(good) + 64;
	free(line);
	line = malloc(n);
	cr_assert_not_null(line);
	snprintf(line, n, "%s# between\n%s", good, good);
	snprintf(want, sizeof(want), "%s:3: a second entry for alice on h:1 (the first is line 1)",
	        peers);
	expect_bad(peers, line, want);
	free(line);
	free(good);
}

Test(client_trust, rsa_peer_round_trip, .timeout = 60)
{
	struct identity *rsa = NULL;
	struct client_trust_peer *rec = NULL;
	enum client_trust_status status;
	char err[512], *text;

	cr_assert_eq(identity_generate(&rsa, IDENTITY_RSA, 3072), 0);
	cr_assert_eq(
	        client_trust_peer_add(peers, "h", 7443, "rsa-user", pub(rsa), T0, err, sizeof(err)),
	        0, "%s", err);
	text = slurp(peers);
	cr_assert(strstr(text, "h:7443 rsa-user RSA SHA256:") == text, "%s", text);
	cr_assert(strstr(text, " sotto-rsa ") != NULL, "%s", text);
	free(text);
	cr_assert_eq(client_trust_peer_lookup(peers, "h", 7443, "rsa-user", pub(rsa), &status, &rec,
	                     err, sizeof(err)),
	        0, "%s", err);
	cr_assert_eq(status, CLIENT_TRUST_MATCH);
	cr_assert_eq(rec->pub->type, IDENTITY_RSA);
	cr_assert_eq(rec->pub->bits, 3072);
	client_trust_peer_free(rec);
	rec = NULL;
	cr_assert_eq(client_trust_peer_lookup(peers, "h", 7443, "rsa-user", pub(alice1), &status,
	                     &rec, err, sizeof(err)),
	        0, "%s", err);
	cr_assert_eq(status, CLIENT_TRUST_MISMATCH);
	cr_assert_eq(rec->pub->type, IDENTITY_RSA);
	client_trust_peer_free(rec);
	identity_free(rsa);
}

Test(client_trust, bad_arguments)
{
	struct client_trust_peer *rec = (struct client_trust_peer *)1;
	enum client_trust_status status;
	uint8_t a[CLIENT_TRUST_SPKI_BYTES];
	char err[256];

	spki(a, 1);
	cr_assert_eq(client_trust_server_lookup(
	                     servers, "bad host", 1, a, &status, NULL, err, sizeof(err)),
	        SOTTO_ERR_INVALID);
	cr_assert(strstr(err, "bad server") != NULL, "%s", err);
	cr_assert_eq(client_trust_server_add(servers, "h", 0, a, T0, err, sizeof(err)),
	        SOTTO_ERR_INVALID);
	cr_assert_eq(client_trust_peer_get(&rec, peers, "h", 1, "Bad Name", err, sizeof(err)),
	        SOTTO_ERR_INVALID);
	cr_assert_null(rec);
	cr_assert_eq(client_trust_peer_add(peers, "h", 1, "alice", NULL, T0, err, sizeof(err)),
	        SOTTO_ERR_INVALID);
	cr_assert_eq(client_trust_peer_add(NULL, "h", 1, "alice", pub(alice1), T0, NULL, 0),
	        SOTTO_ERR_INVALID);
	/* A missing directory is an I/O error that names the path. */
	cr_assert_eq(client_trust_server_add("/nonexistent-sotto-dir/known_servers", "h", 1, a, T0,
	                     err, sizeof(err)),
	        SOTTO_ERR_IO);
	cr_assert(strstr(err, "/nonexistent-sotto-dir") != NULL, "%s", err);
}

Test(client_trust, writers_wait_briefly_then_give_up)
{
	uint8_t a[CLIENT_TRUST_SPKI_BYTES];
	struct timespec t0, t1;
	char err[256];
	double secs;
	int fd;

	spki(a, 1);
	/* Another writer holds the directory lock (a second open file, so it conflicts). */
	fd = open(dir, O_RDONLY | O_DIRECTORY);
	cr_assert_neq(fd, -1);
	cr_assert_eq(flock(fd, LOCK_EX | LOCK_NB), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert_eq(
	        client_trust_server_add(servers, "h", 1, a, T0, err, sizeof(err)), SOTTO_ERR_AGAIN);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	cr_assert_geq(secs, CLIENT_TRUST_LOCK_WAIT_MS / 1000.0 - 0.1);
	cr_assert_lt(secs, CLIENT_TRUST_LOCK_WAIT_MS / 1000.0 + 2.0);
	cr_assert(strstr(err, "being changed by another sotto") != NULL, "%s", err);
	/* Readers do not wait. */
	{
		enum client_trust_status st;

		cr_assert_eq(
		        client_trust_server_lookup(servers, "h", 1, a, &st, NULL, err, sizeof(err)),
		        0, "%s", err);
	}
	close(fd);
	cr_assert_eq(
	        client_trust_server_add(servers, "h", 1, a, T0, err, sizeof(err)), 0, "%s", err);
}
