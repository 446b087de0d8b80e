/* Identity keys, their files and signatures; see identity.h. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <sodium.h>

#include "crypto/util.h"

#include "identity.h"
#include "keyfile.h"
#include "pkey.h"

const char *
identity_type_name(enum identity_type type)
{
	return type == IDENTITY_RSA ? "RSA" : "ED25519";
}

/* Release what a struct identity_pub points to, leaving it empty. */
static void
identity_pub_clear(struct identity_pub *pub)
{
	EVP_PKEY_free(pub->rsa);
	free(pub->der);
	memset(pub, 0, sizeof(*pub));
}

void
identity_pub_free(struct identity_pub *pub)
{
	if (pub == NULL)
		return;
	identity_pub_clear(pub);
	free(pub);
}

void
identity_free(struct identity *id)
{
	if (id == NULL)
		return;
	identity_pub_clear(&id->pub);
	if (id->ed25519_sk != NULL) {
		sodium_memzero(id->ed25519_sk, ED25519_SECRETKEYBYTES);
		sodium_free(id->ed25519_sk);
	}
	EVP_PKEY_free(id->rsa);
	free(id);
}

const struct identity_pub *
identity_public(const struct identity *id)
{
	return &id->pub;
}

/* Fill an empty pub from a parsed public key of a supported kind, taking pkey's reference. */
static int
identity_pub_fill(struct identity_pub *pub, EVP_PKEY *pkey)
{
	size_t len = ED25519_PUBLICKEYBYTES;
	int r;

	switch (pkey_kind(pkey)) {
	case PKEY_ED25519:
		if (EVP_PKEY_get_raw_public_key(pkey, pub->ed25519, &len) != 1 ||
		        len != ED25519_PUBLICKEYBYTES) {
			ERR_clear_error();
			return SOTTO_ERR_CRYPTO;
		}
		pub->type = IDENTITY_ED25519;
		pub->bits = 256;
		break;
	case PKEY_RSA:
		if (!rsa_identity_bits_ok(pkey_bits(pkey)))
			return SOTTO_ERR_UNSUPPORTED;
		pub->type = IDENTITY_RSA;
		pub->bits = pkey_bits(pkey);
		break;
	case PKEY_ECDSA_P256:
	case PKEY_UNSUPPORTED:
		return SOTTO_ERR_UNSUPPORTED;
	}
	if ((r = pkey_spki_der(&pub->der, &pub->derlen, pkey)) != 0)
		return r;
	if (pub->type == IDENTITY_RSA)
		pub->rsa = pkey;
	else
		EVP_PKEY_free(pkey);
	return 0;
}

int
identity_pub_from_der(struct identity_pub **out, const uint8_t *der, size_t len)
{
	struct identity_pub *pub = NULL;
	EVP_PKEY *pkey = NULL;
	int r;

	*out = NULL;
	if ((r = pkey_from_spki_der(&pkey, der, len)) != 0)
		goto out;
	if ((pub = calloc(1, sizeof(*pub))) == NULL) {
		r = SOTTO_ERR_NOMEM;
		goto out;
	}
	if ((r = identity_pub_fill(pub, pkey)) != 0)
		goto out;
	pkey = NULL; /* owned by pub now */
	*out = pub;
	pub = NULL;
out:
	EVP_PKEY_free(pkey);
	identity_pub_free(pub);
	return r;
}

int
identity_pub_dup(struct identity_pub **out, const struct identity_pub *pub)
{
	return identity_pub_from_der(out, pub->der, pub->derlen);
}

int
identity_pub_equal(const struct identity_pub *a, const struct identity_pub *b)
{
	return a->derlen == b->derlen && memcmp(a->der, b->der, a->derlen) == 0;
}

/* The public half of a private key, re-parsed from its SPKI so it holds no secret. */
static int
identity_pub_from_private(struct identity_pub *pub, const EVP_PKEY *priv)
{
	struct identity_pub *tmp = NULL;
	uint8_t *der = NULL;
	size_t len = 0;
	int r;

	if ((r = pkey_spki_der(&der, &len, priv)) != 0)
		return r;
	r = identity_pub_from_der(&tmp, der, len);
	free(der);
	if (r != 0)
		return r;
	*pub = *tmp;
	free(tmp);
	return 0;
}

int
identity_from_pkey(struct identity **out, EVP_PKEY *pkey)
{
	struct identity *id = NULL;
	uint8_t seed[ED25519_SEEDBYTES], pk[ED25519_PUBLICKEYBYTES];
	size_t len = sizeof(seed);
	int r = SOTTO_ERR_NOMEM;

	*out = NULL;
	if ((id = calloc(1, sizeof(*id))) == NULL)
		goto out;
	if ((r = identity_pub_from_private(&id->pub, pkey)) != 0)
		goto out;
	if (id->pub.type == IDENTITY_RSA) {
		if (EVP_PKEY_up_ref(pkey) != 1) {
			r = SOTTO_ERR_CRYPTO;
			goto out;
		}
		id->rsa = pkey;
	} else {
		r = SOTTO_ERR_CRYPTO;
		if (EVP_PKEY_get_raw_private_key(pkey, seed, &len) != 1 || len != sizeof(seed))
			goto out;
		r = SOTTO_ERR_NOMEM;
		if ((id->ed25519_sk = sodium_malloc(ED25519_SECRETKEYBYTES)) == NULL)
			goto out;
		ed25519_seed_keypair(pk, id->ed25519_sk, seed);
		/* A key whose stored public half disagrees with its seed is damaged. */
		if (memcmp(pk, id->pub.ed25519, sizeof(pk)) != 0) {
			r = SOTTO_ERR_FORMAT;
			goto out;
		}
	}
	*out = id;
	id = NULL;
	r = 0;
out:
	sotto_wipe(seed, sizeof(seed));
	identity_free(id);
	ERR_clear_error();
	return r;
}

int
identity_to_pkey(EVP_PKEY **out, const struct identity *id)
{
	*out = NULL;
	if (id->pub.type == IDENTITY_RSA) {
		if (EVP_PKEY_up_ref(id->rsa) != 1)
			return SOTTO_ERR_CRYPTO;
		*out = id->rsa;
		return 0;
	}
	/* libsodium's secret key starts with the 32-byte seed, which is RFC 8032's private key. */
	*out = EVP_PKEY_new_raw_private_key(
	        EVP_PKEY_ED25519, NULL, id->ed25519_sk, ED25519_SEEDBYTES);
	if (*out == NULL) {
		ERR_clear_error();
		return SOTTO_ERR_CRYPTO;
	}
	return 0;
}

int
identity_generate(struct identity **out, enum identity_type type, int bits)
{
	EVP_PKEY *pkey = NULL;
	uint8_t seed[ED25519_SEEDBYTES];
	int r;

	*out = NULL;
	if (type == IDENTITY_RSA) {
		if (!rsa_identity_bits_ok(bits))
			return SOTTO_ERR_UNSUPPORTED;
		if ((r = rsa_generate(&pkey, bits)) != 0)
			return r;
	} else if (type == IDENTITY_ED25519) {
		sotto_random(seed, sizeof(seed));
		pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof(seed));
		sotto_wipe(seed, sizeof(seed));
		if (pkey == NULL) {
			ERR_clear_error();
			return SOTTO_ERR_CRYPTO;
		}
	} else
		return SOTTO_ERR_INVALID;
	r = identity_from_pkey(out, pkey);
	EVP_PKEY_free(pkey);
	return r;
}

int
identity_comment_ok(const char *comment)
{
	const unsigned char *p;

	if (comment == NULL)
		return 1;
	if (strlen(comment) > PKEY_COMMENT_MAX)
		return 0;
	for (p = (const unsigned char *)comment; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			return 0;
	return 1;
}

int
identity_pub_format_line(char **out, const struct identity_pub *pub, const char *comment)
{
	const char *prefix =
	        pub->type == IDENTITY_RSA ? IDENTITY_RSA_PREFIX : IDENTITY_ED25519_PREFIX;
	size_t cap;
	char *s;

	*out = NULL;
	if (!identity_comment_ok(comment))
		return SOTTO_ERR_INVALID;
	if (comment != NULL && *comment == '\0')
		comment = NULL;
	cap = strlen(prefix) + 1 + SOTTO_B64_LEN(pub->derlen) + 1 +
	      (comment != NULL ? strlen(comment) : 0) + 1;
	if ((s = malloc(cap)) == NULL)
		return SOTTO_ERR_NOMEM;
	memcpy(s, prefix, strlen(prefix));
	s[strlen(prefix)] = ' ';
	sotto_b64(s + strlen(prefix) + 1, pub->der, pub->derlen, 1);
	if (comment != NULL) {
		strcat(s, " ");
		strcat(s, comment);
	}
	*out = s;
	return 0;
}

int
identity_pub_parse_line(struct identity_pub **out, char **comment, const char *line)
{
	struct identity_pub *pub = NULL;
	enum identity_type type;
	char *copy = NULL, *b64, *rest, *again = NULL, *c = NULL;
	uint8_t der[PKEY_SPKI_MAX];
	size_t len, derlen = 0;
	int r = SOTTO_ERR_FORMAT;

	*out = NULL;
	if (comment != NULL)
		*comment = NULL;
	len = strlen(line);
	if (len > IDENTITY_LINE_MAX)
		return SOTTO_ERR_FORMAT;
	if ((copy = strdup(line)) == NULL)
		return SOTTO_ERR_NOMEM;
	if (len > 0 && copy[len - 1] == '\n')
		copy[--len] = '\0';
	if (len > 0 && copy[len - 1] == '\r')
		copy[--len] = '\0';
	if ((b64 = strchr(copy, ' ')) == NULL)
		goto out;
	*b64++ = '\0';
	if (strcmp(copy, IDENTITY_ED25519_PREFIX) == 0)
		type = IDENTITY_ED25519;
	else if (strcmp(copy, IDENTITY_RSA_PREFIX) == 0)
		type = IDENTITY_RSA;
	else
		goto out;
	b64 += strspn(b64, " \t");
	rest = b64 + strcspn(b64, " \t");
	if (*rest != '\0') {
		*rest++ = '\0';
		rest += strspn(rest, " \t");
	}
	if (*rest != '\0' && !identity_comment_ok(rest))
		goto out;
	if (sotto_unb64(der, sizeof(der), &derlen, b64) != 0 || derlen == 0)
		goto out;
	/* Only the padded standard form is canonical, so that lines compare as keys do. */
	if ((again = malloc(SOTTO_B64_LEN(derlen))) == NULL) {
		r = SOTTO_ERR_NOMEM;
		goto out;
	}
	sotto_b64(again, der, derlen, 1);
	if (strcmp(again, b64) != 0)
		goto out;
	if ((r = identity_pub_from_der(&pub, der, derlen)) != 0)
		goto out;
	if (pub->type != type) {
		r = SOTTO_ERR_FORMAT;
		goto out;
	}
	if (comment != NULL && *rest != '\0' && (c = strdup(rest)) == NULL) {
		r = SOTTO_ERR_NOMEM;
		goto out;
	}
	if (comment != NULL)
		*comment = c;
	c = NULL;
	*out = pub;
	pub = NULL;
	r = 0;
out:
	free(c);
	free(again);
	free(copy);
	identity_pub_free(pub);
	return r;
}

int
identity_pub_load(struct identity_pub **out, char **comment, const char *path)
{
	uint8_t *data = NULL;
	char *text, *nl;
	size_t len = 0;
	int r;

	*out = NULL;
	if (comment != NULL)
		*comment = NULL;
	if ((r = keyfile_read(path, IDENTITY_LINE_MAX + 2, &data, &len)) != 0) {
		if (r == SOTTO_ERR_RANGE)
			r = SOTTO_ERR_FORMAT;
		return r;
	}
	text = (char *)data;
	if (strlen(text) != len) {
		r = SOTTO_ERR_FORMAT;
		goto out;
	}
	/* One line; anything but blank space after it means this is not a .pub file. */
	if ((nl = strchr(text, '\n')) != NULL) {
		if (nl[1 + strspn(nl + 1, " \t\r\n")] != '\0') {
			r = SOTTO_ERR_FORMAT;
			goto out;
		}
		nl[1] = '\0';
	}
	r = identity_pub_parse_line(out, comment, text);
out:
	keyfile_free(data, len);
	return r;
}

void
identity_fingerprint(char out[FINGERPRINT_LEN], const struct identity_pub *pub)
{
	fingerprint_sha256(out, pub->der, pub->derlen);
}

/* path with ".pub" appended, in a new string. */
static char *
identity_pub_path(const char *path)
{
	size_t n = strlen(path) + sizeof(".pub");
	char *s;

	if ((s = malloc(n)) != NULL)
		snprintf(s, n, "%s.pub", path);
	return s;
}

int
identity_save(const struct identity *id, const char *path, const char *passphrase,
        const char *comment, int force)
{
	struct keyfile_stage priv = {NULL, NULL}, pubst = {NULL, NULL};
	EVP_PKEY *pkey = NULL;
	char *pem = NULL, *line = NULL, *pubpath = NULL;
	size_t pemlen = 0, linelen;
	int r, saved = 0, committed = 0;

	if (!identity_comment_ok(comment))
		return SOTTO_ERR_INVALID;
	if ((pubpath = identity_pub_path(path)) == NULL) {
		r = SOTTO_ERR_NOMEM;
		goto out;
	}
	if (!force && ((r = keyfile_check(path, 0)) != 0 || (r = keyfile_check(pubpath, 0)) != 0))
		goto out;
	if ((r = identity_to_pkey(&pkey, id)) != 0)
		goto out;
	if ((r = pkey_private_to_pem(&pem, &pemlen, pkey, passphrase, comment)) != 0)
		goto out;
	if ((r = identity_pub_format_line(&line, &id->pub, comment)) != 0)
		goto out;
	linelen = strlen(line);
	line[linelen++] = '\n'; /* format_line left room for its NUL, now the newline */
	if ((r = keyfile_stage(&priv, path, pem, pemlen, KEYFILE_MODE_PRIVATE)) != 0 ||
	        (r = keyfile_stage(&pubst, pubpath, line, linelen, KEYFILE_MODE_PUBLIC)) != 0) {
		saved = errno;
		goto out;
	}
	if ((r = keyfile_commit(&priv, force)) != 0) {
		saved = errno;
		goto out;
	}
	committed = 1;
	if ((r = keyfile_commit(&pubst, force)) != 0) {
		saved = errno;
		goto out;
	}
	committed = 0;
	r = 0;
out:
	/* A private key without its .pub would look complete; take it back. */
	if (r != 0 && committed && !force)
		unlink(path);
	keyfile_discard(&priv);
	keyfile_discard(&pubst);
	EVP_PKEY_free(pkey);
	pkey_free_buf(pem, pemlen);
	free(line);
	free(pubpath);
	if (saved != 0)
		errno = saved;
	return r;
}

int
identity_load(struct identity **out, char **comment, const char *path, const char *passphrase)
{
	EVP_PKEY *pkey = NULL;
	uint8_t *data = NULL;
	size_t len = 0;
	int r;

	*out = NULL;
	if (comment != NULL)
		*comment = NULL;
	if ((r = keyfile_read(path, PKEY_PEM_MAX, &data, &len)) != 0) {
		if (r == SOTTO_ERR_RANGE)
			r = SOTTO_ERR_FORMAT;
		return r;
	}
	if ((r = pkey_private_from_pem(&pkey, comment, (const char *)data, len, passphrase)) != 0)
		goto out;
	if ((r = identity_from_pkey(out, pkey)) != 0 && comment != NULL) {
		free(*comment);
		*comment = NULL;
	}
out:
	EVP_PKEY_free(pkey);
	keyfile_free(data, len);
	return r;
}

int
identity_sign(uint8_t *sig, size_t sigcap, size_t *siglen, const struct identity *id,
        const uint8_t *m, size_t mlen)
{
	int r;

	*siglen = 0;
	if (id->pub.type == IDENTITY_RSA)
		return rsa_pss_sign(sig, sigcap, siglen, m, mlen, id->rsa);
	if (sigcap < ED25519_SIGBYTES)
		return SOTTO_ERR_SHORT;
	if ((r = ed25519_sign(sig, m, mlen, id->ed25519_sk)) != 0)
		return r;
	*siglen = ED25519_SIGBYTES;
	return 0;
}

int
identity_pub_verify(const struct identity_pub *pub, const uint8_t *sig, size_t siglen,
        const uint8_t *m, size_t mlen)
{
	if (pub->type == IDENTITY_RSA)
		return rsa_pss_verify(sig, siglen, m, mlen, pub->rsa);
	return ed25519_verify(sig, siglen, m, mlen, pub->ed25519);
}
