/*
 * A small, strict JSON (RFC 8259) DOM parser for the tests: it reads the
 * Wycheproof vector files and nothing that is not well-formed JSON.  Strings
 * are decoded to UTF-8 (escapes included, \u0000 allowed, lone surrogates and
 * malformed UTF-8 refused), duplicate keys and trailing garbage are refused,
 * and nesting is limited to JSON_MAX_DEPTH.  Every accessor accepts NULL and
 * values of the wrong type, and then returns NULL, 0 or an error, so that a
 * lookup chain never dereferences a missing value.  A parsed tree is owned by
 * its caller and is immutable; reading it from several threads is safe.
 */
#ifndef SOTTO_TESTS_JSON_H
#define SOTTO_TESTS_JSON_H

#include <stddef.h>

#include "crypto/err.h"

#define JSON_MAX_DEPTH 64

enum json_type {
	JSON_NONE = 0, /* a missing value (NULL) */
	JSON_NULL,
	JSON_FALSE,
	JSON_TRUE,
	JSON_NUMBER,
	JSON_STRING,
	JSON_ARRAY,
	JSON_OBJECT
};

struct json;

/*
 * Parse len bytes of text into a tree; *out is set to NULL first.
 * SOTTO_ERR_FORMAT for malformed input (*erroff, when not NULL, is then the
 * byte offset where parsing stopped), SOTTO_ERR_RANGE for nesting deeper than
 * JSON_MAX_DEPTH, SOTTO_ERR_NOMEM.
 */
int json_parse(struct json **out, const char *text, size_t len, size_t *erroff) SOTTO_WUR;
/* Free a tree from json_parse; NULL is allowed. */
void json_free(struct json *v);

/* The type of v, or JSON_NONE for NULL. */
enum json_type json_type(const struct json *v);
/* The number of elements of an array or members of an object; 0 for anything else. */
size_t json_count(const struct json *v);
/* The i-th element of an array, or NULL (not an array, or i out of range). */
const struct json *json_at(const struct json *arr, size_t i);
/* The member called key of an object, or NULL (not an object, or no such key). */
const struct json *json_get(const struct json *obj, const char *key);
/* The i-th member's name of an object (NUL-terminated), or NULL. */
const char *json_key_at(const struct json *obj, size_t i);
/* The value of a string (NUL-terminated; *len, if not NULL, excludes the NUL), or NULL. */
const char *json_string(const struct json *v, size_t *len);
/* The string member called key of obj, or NULL if it is missing or not a string. */
const char *json_get_string(const struct json *obj, const char *key);
/* A number: 0 and *out set, or SOTTO_ERR_INVALID if v is not a number. */
int json_number(const struct json *v, double *out) SOTTO_WUR;
/*
 * An integer written without fraction or exponent: 0 and *out set,
 * SOTTO_ERR_INVALID if v is not such a number, SOTTO_ERR_RANGE if it does not
 * fit in a long long.
 */
int json_int(const struct json *v, long long *out) SOTTO_WUR;
/* A boolean: 0 and *out set to 0 or 1, or SOTTO_ERR_INVALID. */
int json_bool(const struct json *v, int *out) SOTTO_WUR;

#endif
