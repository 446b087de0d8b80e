/* Known-answer files for tests; see kat.h. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "crypto/kdf.h"
#include "crypto/util.h"
#include "tests/lib/kat.h"

char *
kat_path(const char *rel)
{
	const char *dir = getenv("SOTTO_SRCDIR");
	size_t len;
	char *p;

	if (dir == NULL || *dir == '\0')
		dir = ".";
	len = strlen(dir) + 1 + strlen(rel) + 1;
	cr_assert_not_null(p = malloc(len));
	snprintf(p, len, "%s/%s", dir, rel);
	return p;
}

void
kat_free(struct kat *k)
{
	size_t i;

	for (i = 0; i < k->n; i++) {
		free(k->names[i]);
		free(k->values[i]);
	}
	free(k->names);
	free(k->values);
	free(k->file);
	memset(k, 0, sizeof(*k));
}

/* Load rel: "# comment" lines, blank lines and "name = value" lines. */
void
kat_load(struct kat *k, const char *rel)
{
	char *path = kat_path(rel), *line, *eq, *end;
	FILE *f;

	memset(k, 0, sizeof(*k));
	cr_assert_not_null(k->file = strdup(rel));
	f = fopen(path, "r");
	cr_assert_not_null(f, "cannot open %s (set SOTTO_SRCDIR to the source tree)", path);
	cr_assert_not_null(line = malloc(KAT_LINE_MAX));
	while (fgets(line, KAT_LINE_MAX, f) != NULL) {
		cr_assert_not_null(strchr(line, '\n'), "%s: line too long", path);
		*strchr(line, '\n') = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		cr_assert_not_null(eq = strstr(line, " = "), "%s: bad line: %s", path, line);
		*eq = '\0';
		end = eq + 3;
		cr_assert_not_null(k->names = realloc(k->names, (k->n + 1) * sizeof(char *)));
		cr_assert_not_null(k->values = realloc(k->values, (k->n + 1) * sizeof(char *)));
		cr_assert_not_null(k->names[k->n] = strdup(line));
		cr_assert_not_null(k->values[k->n] = strdup(end));
		k->n++;
	}
	fclose(f);
	free(line);
	free(path);
}

const char *
kat_get(const struct kat *k, const char *name)
{
	size_t i;

	for (i = 0; i < k->n; i++)
		if (strcmp(k->names[i], name) == 0)
			return k->values[i];
	cr_assert_fail("%s: no value named %s", k->file, name);
	return NULL;
}

/* The hex value name decoded into a malloc'd buffer. */
uint8_t *
kat_hex(const struct kat *k, const char *name, size_t *len)
{
	uint8_t *out = NULL;

	cr_assert_eq(sotto_unhex(&out, len, kat_get(k, name)), 0, "%s is not hex", name);
	return out;
}

void
kat_hex_fixed(const struct kat *k, const char *name, uint8_t *out, size_t len)
{
	size_t got;
	uint8_t *v = kat_hex(k, name, &got);

	cr_assert_eq(got, len, "%s: %zu bytes, want %zu", name, got, len);
	memcpy(out, v, len);
	free(v);
}

void
kat_check(const struct kat *k, const char *name, const uint8_t *got, size_t len)
{
	size_t wlen;
	uint8_t *want = kat_hex(k, name, &wlen);

	cr_assert_eq(len, wlen, "%s: %zu bytes, want %zu", name, len, wlen);
	cr_assert(memcmp(got, want, len) == 0, "%s differs from %s", name, k->file);
	free(want);
}

void
kat_put_hex(FILE *f, const char *name, const uint8_t *v, size_t len)
{
	char *hex;

	cr_assert_not_null(hex = malloc(2 * len + 1));
	sotto_hex(hex, v, len);
	fprintf(f, "%s = %s\n", name, hex);
	free(hex);
}

/* "msg.I.part" in a static buffer. */
static const char *
kat_msg_name(size_t i, const char *part)
{
	static char name[64];

	snprintf(name, sizeof(name), "msg.%zu.%s", i, part);
	return name;
}

void
kat_put_msg(FILE *f, size_t i, const char *text, const uint8_t *wire, size_t len)
{
	kat_put_hex(f, kat_msg_name(i, "pt"), (const uint8_t *)text, strlen(text));
	kat_put_hex(f, kat_msg_name(i, "wire"), wire, len);
}

void
kat_check_msg(const struct kat *k, size_t i, const char *text, const uint8_t *wire, size_t len)
{
	kat_check(k, kat_msg_name(i, "pt"), (const uint8_t *)text, strlen(text));
	kat_check(k, kat_msg_name(i, "wire"), wire, len);
}

/* Deterministic bytes for label: HKDF-SHA256(no salt, seed, "sotto-kat-v1/" || label). */
void
kat_draw(const char *seed_hex, uint8_t *out, size_t len, const char *label)
{
	uint8_t seed[32];
	char info[128];

	sotto_wipe(seed, sizeof(seed));
	{
		uint8_t *s = NULL;
		size_t slen;

		cr_assert_eq(sotto_unhex(&s, &slen, seed_hex), 0);
		cr_assert_eq(slen, sizeof(seed));
		memcpy(seed, s, sizeof(seed));
		free(s);
	}
	snprintf(info, sizeof(info), "sotto-kat-v1/%s", label);
	cr_assert_eq(kdf_hkdf_sha256(out, len, NULL, 0, seed, sizeof(seed), (const uint8_t *)info,
	                     strlen(info)),
	        0);
}

void
kat_rng_fill(void *arg, uint8_t *out, size_t len)
{
	struct kat_rng *r = arg;
	char label[64];

	snprintf(label, sizeof(label), "%s/%u", r->label, r->ctr++);
	kat_draw(r->seed, out, len, label);
}
