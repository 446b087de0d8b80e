/*
 * Peer keys: the known_peers check every session start makes, and sotto
 * fingerprint, verify, trust, untrust and identities.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto/safety.h"
#include "src/client-cmd.h"
#include "src/client-e2e.h"

int
trust_file_fail(int r, const char *err)
{
	switch (r) {
	case SOTTO_ERR_FORMAT: /* a malformed or repeated entry; err names FILE:LINE */
	case SOTTO_ERR_RANGE:  /* a file too large to be a trust file */
	case SOTTO_ERR_AGAIN:  /* another sotto is rewriting it */
		return ctx_fail(SOTTO_EXIT_USAGE, "%s", err);
	default:
		return ctx_fail(SOTTO_EXIT_INTERNAL, "%s", err);
	}
}

/* The user name is printed as it is: upper-casing it would show a name that does not exist. */
static void
key_change_banner(struct sotto_ctx *ctx, const char *peer, const char *oldfp, const char *newfp,
        const struct client_trust_peer *old)
{
	fprintf(stderr,
	        "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
	        "@    WARNING: THE IDENTITY KEY OF %s HAS CHANGED\n"
	        "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
	        "The server now gives a different key for %s on %s.\n"
	        "Someone may be intercepting your messages, or %s made a new key.\n"
	        "  old key (%s): %s\n"
	        "  new key:       %s\n"
	        "Compare safety numbers with %s, then run: sotto verify %s NUMBER\n",
	        peer, peer, ctx->server, peer, client_trust_level_name(old->level), oldfp, newfp,
	        peer, peer);
	if (ctx->json)
		printf("{\"event\":\"key_change\",\"user\":\"%s\",\"old\":\"%s\",\"new\":\"%s\","
		       "\"level\":\"%s\"}\n",
		        peer, oldfp, newfp, client_trust_level_name(old->level));
	fflush(stdout);
}

int
trust_check(struct sotto_ctx *ctx, const char *peer, const struct identity_pub *pub)
{
	struct client_trust_peer *old = NULL;
	enum client_trust_status st;
	char newfp[FINGERPRINT_LEN], err[512];
	const char *file = ctx->paths->known_peers;
	int64_t now = (int64_t)time(NULL);
	int r = 0;

	identity_fingerprint(newfp, pub);
	if (client_paths_mkdirs(ctx->paths, err, sizeof(err)) != 0)
		return ctx_fail(SOTTO_EXIT_INTERNAL, "%s", err);
	if ((r = client_trust_peer_lookup(
	             file, ctx->host, ctx->portnum, peer, pub, &st, &old, err, sizeof(err))) != 0)
		return trust_file_fail(r, err);
	if (st == CLIENT_TRUST_MATCH)
		goto out;
	if (st == CLIENT_TRUST_UNKNOWN) {
		if (ctx->trust_new == CLIENT_TRUST_NEW_NEVER) {
			r = ctx_fail(SOTTO_EXIT_TRUST,
			        "%s's key %s is not in %s, and --trust-new never refuses new keys",
			        peer, newfp, file);
			goto out;
		}
		if ((r = client_trust_peer_add(file, ctx->host, ctx->portnum, peer, pub, now, err,
		             sizeof(err))) != 0) {
			r = trust_file_fail(r, err);
			goto out;
		}
		fprintf(stderr, "sotto: new peer %s with key %s, recorded in %s\n", peer, newfp,
		        file);
		goto out;
	}
	key_change_banner(ctx, peer, old->fingerprint, newfp, old);
	if (old->level == CLIENT_TRUST_VERIFIED) {
		r = ctx_fail(SOTTO_EXIT_TRUST,
		        "you had verified %s's old key; refusing to go on until you run "
		        "sotto verify %s NUMBER or sotto trust %s",
		        peer, peer, peer);
		goto out;
	}
	if (ctx->trust_new == CLIENT_TRUST_NEW_NEVER) {
		r = ctx_fail(SOTTO_EXIT_TRUST, "%s's key changed and --trust-new never refuses it",
		        peer);
		goto out;
	}
	if (ctx->trust_new == CLIENT_TRUST_NEW_ALWAYS)
		r = client_trust_peer_trust(
		        file, ctx->host, ctx->portnum, peer, pub, now, err, sizeof(err));
	else
		r = client_trust_peer_mark_changed(
		        file, ctx->host, ctx->portnum, peer, err, sizeof(err));
	if (r != 0)
		r = trust_file_fail(r, err);
out:
	client_trust_peer_free(old);
	return r;
}

/* The peer's current key as the server gives it (signature checked; not trusted yet). */
static int
fetch_key(struct sotto_ctx *ctx, const char *peer, struct identity_pub **out)
{
	Sotto__Frame req, *reply = NULL;
	Sotto__GetBundle gb;
	char what[128];
	int r;

	*out = NULL;
	if ((r = ctx_login(ctx, NULL)) != 0)
		return r;
	sotto__get_bundle__init(&gb);
	gb.username = proto_str(peer);
	frame_init(&req, 0);
	req.body_case = SOTTO__FRAME__BODY_GET_BUNDLE;
	req.get_bundle = &gb;
	snprintf(what, sizeof(what), "cannot get %s's key", peer);
	if ((r = client_conn_request(ctx->conn, &req, &reply, 0)) != 0)
		r = ctx_request_fail(ctx, what, r);
	else if (reply->body_case != SOTTO__FRAME__BODY_BUNDLE)
		r = ctx_fail(SOTTO_EXIT_NET, "%s: unexpected %s", what, frame_body_name(reply));
	else if ((r = e2e_bundle_check(reply->bundle, out)) != 0)
		r = ctx_fail(SOTTO_EXIT_TRUST, "%s: its signed prekey does not verify", what);
	frame_free(reply);
	return r;
}

/*
 * The key to show for peer, and its level in known_peers: the recorded key,
 * unless it is marked changed or there is none; then the server's key,
 * checked by trust_check (which may record it).  recorded_fp receives the
 * recorded key's fingerprint when known_peers still holds another key than
 * the one shown, and is empty otherwise.
 */
static int
peer_key(struct sotto_ctx *ctx, const char *peer, struct identity_pub **out,
        enum client_trust_level *level, char recorded_fp[FINGERPRINT_LEN])
{
	struct client_trust_peer *p = NULL;
	char err[512];
	int r;

	*out = NULL;
	*level = 0;
	recorded_fp[0] = '\0';
	if ((r = ctx_need_server(ctx)) != 0)
		return r;
	r = client_trust_peer_get(
	        &p, ctx->paths->known_peers, ctx->host, ctx->portnum, peer, err, sizeof(err));
	if (r != 0 && r != SOTTO_ERR_NOTFOUND)
		return trust_file_fail(r, err);
	if (r == 0 && p->level != CLIENT_TRUST_CHANGED) {
		*level = p->level;
		*out = p->pub;
		p->pub = NULL;
		client_trust_peer_free(p);
		return 0;
	}
	client_trust_peer_free(p);
	p = NULL;
	if ((r = fetch_key(ctx, peer, out)) != 0 || (r = trust_check(ctx, peer, *out)) != 0)
		goto out;
	/* What known_peers says now: trust_check may have recorded, replaced or kept the entry. */
	r = client_trust_peer_get(
	        &p, ctx->paths->known_peers, ctx->host, ctx->portnum, peer, err, sizeof(err));
	if (r != 0) {
		r = r == SOTTO_ERR_NOTFOUND ? ctx_fail(SOTTO_EXIT_INTERNAL, "%s", err)
		                            : trust_file_fail(r, err);
		goto out;
	}
	*level = p->level;
	if (!identity_pub_equal(p->pub, *out))
		snprintf(recorded_fp, FINGERPRINT_LEN, "%s", p->fingerprint);
out:
	client_trust_peer_free(p);
	if (r != 0) {
		identity_pub_free(*out);
		*out = NULL;
	}
	return r;
}

static int
safety_of(struct sotto_ctx *ctx, const struct identity_pub *mine, const char *peer,
        const struct identity_pub *theirs, char digits[SAFETY_DIGITS + 1])
{
	if (safety_number(digits, mine->der, mine->derlen, ctx->username, theirs->der,
	            theirs->derlen, peer, SAFETY_ITERATIONS) != 0)
		return ctx_fail(SOTTO_EXIT_INTERNAL, "cannot compute the safety number");
	return 0;
}

int
cmd_fingerprint(struct sotto_ctx *ctx, int argc, char **argv)
{
	struct identity_pub *mine = NULL, *theirs = NULL;
	enum client_trust_level level;
	char peer[PROTO_USERNAME_MAX + 1], fp[FINGERPRINT_LEN], digits[SAFETY_DIGITS + 1];
	char grouped[SAFETY_GROUPED_LEN], recorded[FINGERPRINT_LEN];
	int r;

	if (argc > 2)
		return ctx_fail(SOTTO_EXIT_USAGE, "usage: sotto fingerprint [USER]");
	if ((r = ctx_own_pub(ctx, &mine)) != 0)
		return r;
	if (argc == 1) {
		identity_fingerprint(fp, mine);
		if (ctx->json)
			printf("{\"event\":\"fingerprint\",\"user\":\"self\",\"type\":\"%s\","
			       "\"fingerprint\":\"%s\"}\n",
			        identity_type_name(mine->type), fp);
		else
			printf("%s %s (your key)\n", fp, identity_type_name(mine->type));
		goto out;
	}
	if (proto_username_normalize(peer, argv[1]) != 0) {
		r = ctx_fail(SOTTO_EXIT_USAGE, "%s: not a valid user name", argv[1]);
		goto out;
	}
	if ((r = ctx_need_user(ctx)) != 0 ||
	        (r = peer_key(ctx, peer, &theirs, &level, recorded)) != 0 ||
	        (r = safety_of(ctx, mine, peer, theirs, digits)) != 0)
		goto out;
	identity_fingerprint(fp, theirs);
	safety_format(grouped, digits);
	if (ctx->json) {
		printf("{\"event\":\"fingerprint\",\"user\":\"%s\",\"type\":\"%s\","
		       "\"fingerprint\":\"%s\",\"level\":\"%s\",",
		        peer, identity_type_name(theirs->type), fp, client_trust_level_name(level));
		if (recorded[0] != '\0')
			printf("\"recorded_fingerprint\":\"%s\",", recorded);
		printf("\"safety_number\":\"%s\"}\n", digits);
	} else {
		printf("%s %s %s (%s)\n", peer, fp, identity_type_name(theirs->type),
		        client_trust_level_name(level));
		/* A changed key: the one known_peers still holds, until verify or trust. */
		if (recorded[0] != '\0')
			printf("recorded key: %s (not accepted yet: sotto verify %s NUMBER, or "
			       "sotto "
			       "trust %s)\n",
			        recorded, peer, peer);
		printf("safety number: %s\n", grouped);
	}
out:
	identity_pub_free(mine);
	identity_pub_free(theirs);
	return r;
}

int
cmd_verify(struct sotto_ctx *ctx, int argc, char **argv)
{
	struct identity_pub *mine = NULL, *theirs = NULL;
	struct client_trust_peer *p = NULL;
	char peer[PROTO_USERNAME_MAX + 1], digits[SAFETY_DIGITS + 1], typed[512], err[512];
	char fp[FINGERPRINT_LEN];
	size_t n = 0;
	int i, r;

	if (argc < 3)
		return ctx_fail(SOTTO_EXIT_USAGE, "usage: sotto verify USER NUMBER");
	if (proto_username_normalize(peer, argv[1]) != 0)
		return ctx_fail(SOTTO_EXIT_USAGE, "%s: not a valid user name", argv[1]);
	typed[0] = '\0';
	for (i = 2; i < argc; i++) {
		if (n + strlen(argv[i]) + 2 > sizeof(typed))
			return ctx_fail(SOTTO_EXIT_USAGE, "the number is too long");
		n += (size_t)snprintf(typed + n, sizeof(typed) - n, "%s ", argv[i]);
	}
	if ((r = ctx_need_user(ctx)) != 0 || (r = ctx_own_pub(ctx, &mine)) != 0 ||
	        (r = ctx_need_server(ctx)) != 0)
		goto out;
	/*
	 * The key recorded in known_peers first, which needs no server.  When the
	 * number is not that key's (a verified peer made a new key, say), it may
	 * be the key the server gives now: the one the user is told to verify.
	 */
	r = client_trust_peer_get(
	        &p, ctx->paths->known_peers, ctx->host, ctx->portnum, peer, err, sizeof(err));
	if (r != 0 && r != SOTTO_ERR_NOTFOUND) {
		r = trust_file_fail(r, err);
		goto out;
	}
	if (r == 0) {
		if ((r = safety_of(ctx, mine, peer, p->pub, digits)) != 0)
			goto out;
		if (safety_matches(typed, digits)) {
			theirs = p->pub;
			p->pub = NULL;
		}
	}
	if (theirs == NULL) {
		if ((r = fetch_key(ctx, peer, &theirs)) != 0 ||
		        (r = safety_of(ctx, mine, peer, theirs, digits)) != 0)
			goto out;
		if (!safety_matches(typed, digits)) {
			r = ctx_fail(SOTTO_EXIT_TRUST,
			        "the number does not match your safety number with %s; do not "
			        "trust this key until you find out why",
			        peer);
			goto out;
		}
		if (p != NULL && !identity_pub_equal(p->pub, theirs)) {
			identity_fingerprint(fp, theirs);
			fprintf(stderr, "sotto: %s's new key %s replaces %s in %s\n", peer, fp,
			        p->fingerprint, ctx->paths->known_peers);
		}
	}
	if ((r = client_trust_peer_verify(ctx->paths->known_peers, ctx->host, ctx->portnum, peer,
	             theirs, (int64_t)time(NULL), err, sizeof(err))) != 0) {
		r = trust_file_fail(r, err);
		goto out;
	}
	if (ctx->json)
		printf("{\"event\":\"verified\",\"user\":\"%s\"}\n", peer);
	else
		printf("%s verified\n", peer);
out:
	client_trust_peer_free(p);
	identity_pub_free(mine);
	identity_pub_free(theirs);
	return r;
}

int
cmd_trust(struct sotto_ctx *ctx, int argc, char **argv)
{
	struct identity_pub *pub = NULL;
	char peer[PROTO_USERNAME_MAX + 1], err[512], fp[FINGERPRINT_LEN];
	int untrust = strcmp(argv[0], "untrust") == 0, r;

	if (argc != 2)
		return ctx_fail(SOTTO_EXIT_USAGE, "usage: sotto %s USER", argv[0]);
	if (proto_username_normalize(peer, argv[1]) != 0)
		return ctx_fail(SOTTO_EXIT_USAGE, "%s: not a valid user name", argv[1]);
	if ((r = ctx_need_server(ctx)) != 0)
		return r;
	if (untrust) {
		r = client_trust_peer_remove(
		        ctx->paths->known_peers, ctx->host, ctx->portnum, peer, err, sizeof(err));
		if (r == SOTTO_ERR_NOTFOUND)
			return ctx_fail(
			        SOTTO_EXIT_USAGE, "%s is not in %s", peer, ctx->paths->known_peers);
		if (r != 0)
			return trust_file_fail(r, err);
		printf(ctx->json ? "{\"event\":\"untrusted\",\"user\":\"%s\"}\n"
		                 : "forgot %s's key\n",
		        peer);
		return 0;
	}
	if ((r = fetch_key(ctx, peer, &pub)) != 0)
		return r;
	if ((r = client_trust_peer_trust(ctx->paths->known_peers, ctx->host, ctx->portnum, peer,
	             pub, (int64_t)time(NULL), err, sizeof(err))) != 0)
		r = trust_file_fail(r, err);
	else {
		identity_fingerprint(fp, pub);
		if (ctx->json)
			printf("{\"event\":\"trusted\",\"user\":\"%s\",\"fingerprint\":\"%s\"}\n",
			        peer, fp);
		else
			printf("trusting %s's key %s\n", peer, fp);
	}
	identity_pub_free(pub);
	return r;
}

static int
identities_cb(void *arg, const struct client_trust_peer *p)
{
	const struct sotto_ctx *ctx = arg;
	char server[CLIENT_TRUST_HOST_MAX + 9];

	/* "[::1]:7443" for an IPv6 server, as -s, sotto.conf and known_peers write it. */
	if (client_trust_server_name(server, sizeof(server), p->host, p->port) != 0)
		snprintf(server, sizeof(server), "%s:%u", p->host, p->port);
	if (ctx->json)
		printf("{\"event\":\"identity\",\"server\":\"%s\",\"user\":\"%s\",\"type\":\"%s\","
		       "\"fingerprint\":\"%s\",\"level\":\"%s\"}\n",
		        server, p->username, identity_type_name(p->pub->type), p->fingerprint,
		        client_trust_level_name(p->level));
	else
		printf("%s %s %s %s %s\n", server, p->username, identity_type_name(p->pub->type),
		        p->fingerprint, client_trust_level_name(p->level));
	return 0;
}

int
cmd_identities(struct sotto_ctx *ctx, int argc, char **argv)
{
	char err[512];
	int r;

	(void)argv;
	if (argc != 1)
		return ctx_fail(SOTTO_EXIT_USAGE, "usage: sotto identities");
	if ((r = client_trust_peer_foreach(
	             ctx->paths->known_peers, identities_cb, ctx, err, sizeof(err))) != 0)
		return trust_file_fail(r, err);
	return 0;
}
