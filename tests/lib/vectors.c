/* Test-vector location, loading and the Wycheproof driver; see vectors.h. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <criterion/criterion.h>

#include "crypto/util.h"
#include "vectors.h"

#define VECTORS_ENV      "SOTTO_VECTORS"
#define VECTORS_DEFAULT  "../shared/vectors"
#define VECTORS_MAX_FILE (64 * 1024 * 1024)

struct vectors_kv {
	char **names;
	char **values;
	size_t n;
};

/* A CI run must not pass by skipping: CI set to anything but "", "0" or "false" means fail. */
static int
vectors_in_ci(void)
{
	const char *ci = getenv("CI");

	return ci != NULL && *ci != '\0' && strcmp(ci, "0") != 0 && strcasecmp(ci, "false") != 0;
}

const char *
vectors_dir(void)
{
	const char *dir = getenv(VECTORS_ENV);
	struct stat st;

	if (dir == NULL || *dir == '\0')
		dir = VECTORS_DEFAULT;
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		if (vectors_in_ci())
			cr_assert_fail("vectors not found at %s; set " VECTORS_ENV
			               " (CI is set, so this fails instead of skipping)",
			        dir);
		/* criterion shows skip reasons only with --verbose; say it on stderr as well. */
		fprintf(stderr, "SKIP %s::%s: vectors not found at %s; set " VECTORS_ENV "\n",
		        criterion_current_suite != NULL ? criterion_current_suite->name : "?",
		        criterion_current_test != NULL ? criterion_current_test->name : "?", dir);
		cr_skip_test("vectors not found at %s; set " VECTORS_ENV, dir);
	}
	return dir;
}

char *
vectors_path(const char *rel)
{
	const char *dir = vectors_dir();
	size_t n = strlen(dir) + 1 + strlen(rel) + 1;
	char *path;

	path = malloc(n);
	cr_assert_not_null(path, "out of memory");
	snprintf(path, n, "%s/%s", dir, rel);
	return path;
}

char *
vectors_read(const char *path, size_t *len)
{
	FILE *f;
	char *buf = NULL, *nbuf;
	size_t n = 0, cap = 0, got;

	*len = 0;
	/* Paths come from vectors_path, whose directory exists: a missing file fails, never skips. */
	f = fopen(path, "rb");
	if (f == NULL)
		cr_assert_fail("cannot open %s: %s (check " VECTORS_ENV ")", path, strerror(errno));
	for (;;) {
		if (cap - n < 4096) {
			cap = cap == 0 ? 65536 : cap * 2;
			cr_assert_leq(
			        cap, (size_t)VECTORS_MAX_FILE + 65536, "%s is too large", path);
			nbuf = realloc(buf, cap + 1);
			cr_assert_not_null(nbuf, "out of memory");
			buf = nbuf;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	cr_assert_eq(ferror(f), 0, "error reading %s", path);
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

uint8_t *
vectors_unhex(const char *hex, size_t *len)
{
	uint8_t *out = NULL;
	int r;

	*len = 0;
	cr_assert_not_null(hex, "missing hex string");
	r = sotto_unhex(&out, len, hex);
	cr_assert_eq(r, 0, "bad hex \"%.40s\": %s", hex, sotto_strerror(r));
	cr_assert_not_null(out);
	return out;
}

void
vectors_unhex_fixed(uint8_t *out, size_t outlen, const char *hex)
{
	uint8_t *bin;
	size_t len;

	bin = vectors_unhex(hex, &len);
	cr_assert_eq(len, outlen, "hex \"%.40s\" is %zu bytes, expected %zu", hex, len, outlen);
	memcpy(out, bin, len);
	free(bin);
}

/* Trim leading and trailing blanks of the string at s in place. */
static char *
vectors_trim(char *s)
{
	size_t n;

	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

struct vectors_kv *
vectors_kv_load(const char *rel)
{
	struct vectors_kv *kv;
	char *path, *text, *line, *next, *eq, *name, *value, **nn, **nv;
	size_t len, lineno = 0;

	path = vectors_path(rel);
	text = vectors_read(path, &len);
	cr_assert_eq(strlen(text), len, "%s contains a NUL byte", path);
	kv = calloc(1, sizeof(*kv));
	cr_assert_not_null(kv, "out of memory");
	for (line = text; line != NULL; line = next) {
		lineno++;
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		line = vectors_trim(line);
		if (*line == '\0' || *line == '#')
			continue;
		eq = strchr(line, '=');
		cr_assert_not_null(eq, "%s:%zu: expected `name = value`", path, lineno);
		*eq = '\0';
		name = vectors_trim(line);
		value = vectors_trim(eq + 1);
		cr_assert(*name != '\0', "%s:%zu: empty name", path, lineno);
		for (size_t i = 0; i < kv->n; i++)
			cr_assert_str_neq(kv->names[i], name, "%s:%zu: duplicate name %s", path,
			        lineno, name);
		nn = realloc(kv->names, (kv->n + 1) * sizeof(*nn));
		cr_assert_not_null(nn, "out of memory");
		kv->names = nn;
		nv = realloc(kv->values, (kv->n + 1) * sizeof(*nv));
		cr_assert_not_null(nv, "out of memory");
		kv->values = nv;
		kv->names[kv->n] = strdup(name);
		kv->values[kv->n] = strdup(value);
		cr_assert(kv->names[kv->n] != NULL && kv->values[kv->n] != NULL, "out of memory");
		kv->n++;
	}
	free(text);
	free(path);
	return kv;
}

const char *
vectors_kv_get(const struct vectors_kv *kv, const char *name)
{
	size_t i;

	for (i = 0; i < kv->n; i++)
		if (strcmp(kv->names[i], name) == 0)
			return kv->values[i];
	cr_assert_fail("vector value `%s` is missing", name);
	return NULL;
}

void
vectors_kv_free(struct vectors_kv *kv)
{
	size_t i;

	if (kv == NULL)
		return;
	for (i = 0; i < kv->n; i++) {
		free(kv->names[i]);
		free(kv->values[i]);
	}
	free(kv->names);
	free(kv->values);
	free(kv);
}

/* Look a member up in the test first and its group second, as Wycheproof puts keys in either. */
static const struct json *
wp_lookup(const struct wp_case *c, const char *key)
{
	const struct json *v;

	if ((v = json_get(c->test, key)) != NULL)
		return v;
	return json_get(c->group, key);
}

const uint8_t *
wp_hex_in(struct wp_case *c, const struct json *obj, const char *key, size_t *len)
{
	const char *hex;
	uint8_t *bin;

	hex = json_get_string(obj, key);
	cr_assert_not_null(hex, "tcId %lld: no string member `%s`", c->tcid, key);
	cr_assert_lt(c->nallocs, (size_t)WP_MAX_ALLOCS, "tcId %lld: too many hex values", c->tcid);
	bin = vectors_unhex(hex, len);
	c->allocs[c->nallocs++] = bin;
	return bin;
}

const uint8_t *
wp_hex(struct wp_case *c, const char *key, size_t *len)
{
	return wp_hex_in(c, json_get(c->test, key) != NULL ? c->test : c->group, key, len);
}

long long
wp_int(struct wp_case *c, const char *key)
{
	long long v = 0;

	cr_assert_eq(json_int(wp_lookup(c, key), &v), 0, "tcId %lld: no integer member `%s`",
	        c->tcid, key);
	return v;
}

int
wp_has_flag(const struct wp_case *c, const char *flag)
{
	const struct json *flags = json_get(c->test, "flags");
	const char *s;
	size_t i;

	for (i = 0; i < json_count(flags); i++)
		if ((s = json_string(json_at(flags, i), NULL)) != NULL && strcmp(s, flag) == 0)
			return 1;
	return 0;
}

static const char *
wp_outcome_name(enum wp_outcome o)
{
	switch (o) {
	case WP_ACCEPTED:
		return "accepted";
	case WP_REJECTED:
		return "rejected";
	case WP_WRONG:
		return "a wrong result or error code";
	}
	return "an unknown outcome";
}

/* Count one case's outcome and report it if it breaks the expectation for its result. */
static void
wp_tally(const char *file, const struct wp_case *c, enum wp_outcome o, struct wp_stats *st)
{
	int ok;

	if (strcmp(c->result, "valid") == 0) {
		ok = o == WP_ACCEPTED;
		if (ok)
			st->valid_passed++;
		else
			st->valid_failed++;
	} else if (strcmp(c->result, "invalid") == 0) {
		ok = o == WP_REJECTED;
		if (ok)
			st->invalid_rejected++;
		else
			st->invalid_accepted++;
	} else {
		/* The callback applies the documented decision and says WP_WRONG when it is broken. */
		ok = o == WP_ACCEPTED || o == WP_REJECTED;
		if (o == WP_ACCEPTED)
			st->acceptable_passed++;
		else if (o == WP_REJECTED)
			st->acceptable_rejected++;
	}
	if (!ok) {
		st->failed++;
		cr_expect_fail("%s tcId %lld (%s, \"%s\"): got %s", file, c->tcid, c->result,
		        c->comment, wp_outcome_name(o));
	}
}

void
wp_run(const char *file, wp_group_fn group_ok, wp_case_fn fn, void *arg, struct wp_stats *st)
{
	struct wp_stats local;
	struct wp_case c;
	struct json *root = NULL;
	const struct json *groups, *group, *tests, *test;
	char *rel, *path, *text;
	size_t len, erroff = 0, gi, ti, i, rellen;
	long long ntests = -1;
	int r, run;
	enum wp_outcome o;

	if (st == NULL)
		st = &local;
	memset(st, 0, sizeof(*st));
	rellen = strlen("wycheproof/") + strlen(file) + 1;
	rel = malloc(rellen);
	cr_assert_not_null(rel, "out of memory");
	snprintf(rel, rellen, "wycheproof/%s", file);
	path = vectors_path(rel);
	text = vectors_read(path, &len);
	r = json_parse(&root, text, len, &erroff);
	cr_assert_eq(r, 0, "%s: %s at byte %zu", path, sotto_strerror(r), erroff);
	cr_assert_eq(json_int(json_get(root, "numberOfTests"), &ntests), 0, "%s: no numberOfTests",
	        path);
	groups = json_get(root, "testGroups");
	cr_assert_eq(json_type(groups), JSON_ARRAY, "%s: no testGroups[]", path);

	for (gi = 0; gi < json_count(groups); gi++) {
		group = json_at(groups, gi);
		tests = json_get(group, "tests");
		cr_assert_eq(
		        json_type(tests), JSON_ARRAY, "%s: group %zu has no tests[]", path, gi);
		run = group_ok == NULL || group_ok(group, arg);
		for (ti = 0; ti < json_count(tests); ti++) {
			st->total++;
			if (!run) {
				st->skipped++;
				continue;
			}
			test = json_at(tests, ti);
			memset(&c, 0, sizeof(c));
			c.group = group;
			c.test = test;
			cr_assert_eq(json_int(json_get(test, "tcId"), &c.tcid), 0,
			        "%s: group %zu test %zu has no tcId", path, gi, ti);
			c.result = json_get_string(test, "result");
			cr_assert(c.result != NULL && (strcmp(c.result, "valid") == 0 ||
			                                      strcmp(c.result, "invalid") == 0 ||
			                                      strcmp(c.result, "acceptable") == 0),
			        "%s tcId %lld: bad result", path, c.tcid);
			c.comment = json_get_string(test, "comment");
			if (c.comment == NULL)
				c.comment = "";
			o = fn(&c, arg);
			for (i = 0; i < c.nallocs; i++)
				free(c.allocs[i]);
			st->run++;
			wp_tally(file, &c, o, st);
		}
	}

	fprintf(stderr,
	        "wycheproof %s: %ld run, %ld valid passed, %ld invalid rejected, "
	        "%ld acceptable passed, %ld acceptable rejected, %ld failed, "
	        "%ld invalid accepted, %ld skipped\n",
	        file, st->run, st->valid_passed, st->invalid_rejected, st->acceptable_passed,
	        st->acceptable_rejected, st->failed, st->invalid_accepted, st->skipped);
	cr_assert_eq(st->total, ntests, "%s: found %ld tests, numberOfTests says %lld", file,
	        st->total, ntests);
	cr_assert_gt(st->run, 0, "%s: no test ran", file);
	cr_assert_eq(st->run, ntests - st->skipped, "%s: %ld run, expected %lld", file, st->run,
	        ntests - st->skipped);
	cr_assert_eq(st->valid_passed + st->invalid_rejected + st->acceptable_passed +
	                     st->acceptable_rejected + st->failed,
	        st->run, "%s: tally does not add up", file);
	cr_assert_eq(st->failed, 0, "%s: %ld of %ld cases failed", file, st->failed, st->run);
	json_free(root);
	free(text);
	free(path);
	free(rel);
}
