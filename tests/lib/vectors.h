/*
 * Test-vector helpers for the criterion tests: finding the vector directory
 * ($SOTTO_VECTORS, default ../shared/vectors), reading files, hex decoding,
 * `name = value` files, and a driver that runs every case of a Wycheproof
 * JSON file and prints one summary line per file to stderr.
 *
 * These helpers call criterion's assertion macros, so they may only be used
 * from inside a running test (or a suite's init function): a failed
 * precondition aborts the current test, and a missing vector directory skips
 * it, or fails it when $CI is set (to anything but "", "0" or "false").
 * Not thread-safe (criterion runs each test in its own process).
 */
#ifndef SOTTO_TESTS_VECTORS_H
#define SOTTO_TESTS_VECTORS_H

#include <stddef.h>
#include <stdint.h>

#include "json.h"

/* The vector directory; skips (or, under CI, fails) the current test if it is missing. */
const char *vectors_dir(void);
/* A malloc'd path to rel inside the vector directory (which must exist). */
char *vectors_path(const char *rel);
/* Read a whole file into a malloc'd, NUL-terminated buffer; asserts on failure. */
char *vectors_read(const char *path, size_t *len);

/* Decode hex into a malloc'd buffer (never NULL, even for ""); asserts on bad hex. */
uint8_t *vectors_unhex(const char *hex, size_t *len);
/* Decode hex that must be exactly outlen bytes into out; asserts otherwise. */
void vectors_unhex_fixed(uint8_t *out, size_t outlen, const char *hex);

/* A parsed `name = value` file: # starts a comment line, blank lines are ignored. */
struct vectors_kv;
/* Load rel (inside the vector directory); asserts on a malformed line. */
struct vectors_kv *vectors_kv_load(const char *rel);
/* The value of name; asserts that it is present. */
const char *vectors_kv_get(const struct vectors_kv *kv, const char *name);
void vectors_kv_free(struct vectors_kv *kv);

/* What a Wycheproof case callback observed. */
enum wp_outcome {
	WP_ACCEPTED = 1, /* the operation succeeded and produced the expected output */
	WP_REJECTED,     /* the operation refused the input with the expected error */
	WP_WRONG         /* anything else: wrong output, or an unexpected error code */
};

#define WP_MAX_ALLOCS 16

/* One test case, handed to the callback. */
struct wp_case {
	const struct json *group; /* the element of testGroups[] */
	const struct json *test;  /* the element of tests[] */
	long long tcid;
	const char *result;          /* "valid", "invalid" or "acceptable" */
	const char *comment;         /* never NULL */
	void *allocs[WP_MAX_ALLOCS]; /* freed after the callback returns */
	size_t nallocs;
};

/*
 * Per-file tally.  A case counts as failed when a valid one is not
 * WP_ACCEPTED, an invalid one is not WP_REJECTED, or any case is WP_WRONG;
 * invalid_accepted counts the invalid cases among them.
 */
struct wp_stats {
	long total; /* tests found in the file */
	long run;
	long skipped;
	long valid_passed;
	long invalid_rejected;
	long acceptable_passed;
	long acceptable_rejected;
	long failed;
	long valid_failed;
	long invalid_accepted;
};

/* Return 1 to run a group's tests, 0 to skip them all (decided by group parameters only). */
typedef int (*wp_group_fn)(const struct json *group, void *arg);
typedef enum wp_outcome (*wp_case_fn)(struct wp_case *c, void *arg);

/*
 * Run every case of wycheproof/<file>, print its summary line to stderr, and
 * assert that numberOfTests cases were found, that all cases not in a skipped
 * group ran (at least one), and that none failed.  group_ok may be NULL.  If
 * st is not NULL it receives the tally, for further per-file assertions.
 */
void wp_run(const char *file, wp_group_fn group_ok, wp_case_fn fn, void *arg, struct wp_stats *st);

/*
 * The hex member key of the test, or else of the group, decoded into memory
 * that lives until the callback returns; asserts that it exists and is hex.
 */
const uint8_t *wp_hex(struct wp_case *c, const char *key, size_t *len);
/* The hex member key of obj (for nested values), decoded like wp_hex. */
const uint8_t *wp_hex_in(struct wp_case *c, const struct json *obj, const char *key, size_t *len);
/* The integer member key of the test, or else of the group; asserts that it exists. */
long long wp_int(struct wp_case *c, const char *key);
/* 1 if the test's flags[] contains flag. */
int wp_has_flag(const struct wp_case *c, const char *flag);

#endif
