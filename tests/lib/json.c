/* A strict JSON DOM parser for the tests; see json.h. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

struct json {
	enum json_type type;
	double num;          /* JSON_NUMBER */
	long long ival;      /* JSON_NUMBER with int_state == INT_OK */
	int int_state;       /* INT_NO, INT_OK or INT_OVERFLOW */
	char *str;           /* JSON_STRING: decoded, NUL-terminated */
	size_t len;          /* JSON_STRING: bytes in str without the NUL */
	struct json **items; /* JSON_ARRAY, JSON_OBJECT: values */
	char **keys;         /* JSON_OBJECT: decoded, NUL-terminated names */
	size_t *keylens;     /* JSON_OBJECT: bytes in each name */
	size_t n;            /* elements or members */
	size_t cap;          /* allocated slots */
};

enum { INT_NO, INT_OK, INT_OVERFLOW };

struct parser {
	const unsigned char *s;
	size_t len;
	size_t pos;
};

static int json_parse_value(struct parser *p, unsigned depth, struct json **out);

void
json_free(struct json *v)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < v->n; i++) {
		json_free(v->items[i]);
		if (v->keys != NULL)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->keylens);
	free(v->str);
	free(v);
}

static struct json *
json_new(enum json_type type)
{
	struct json *v;

	if ((v = calloc(1, sizeof(*v))) == NULL)
		return NULL;
	v->type = type;
	return v;
}

static void
json_skip_ws(struct parser *p)
{
	while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
	                                  p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
		p->pos++;
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629 table), or 0 if it is malformed. */
static size_t
json_utf8_seqlen(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0; /* no overlong forms */
		else if (c == 0xed)
			hi = 0x9f; /* no surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f; /* nothing above U+10FFFF */
	} else
		return 0;
	if (avail < n)
		return 0;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

/* Append code point cp (already checked to be a scalar value) as UTF-8 at out. */
static size_t
json_utf8_put(unsigned char *out, uint32_t cp)
{
	if (cp < 0x80) {
		out[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (unsigned char)(0xc0 | (cp >> 6));
		out[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (unsigned char)(0xe0 | (cp >> 12));
		out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (unsigned char)(0xf0 | (cp >> 18));
	out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Read the four hex digits of a \u escape at p->pos into *cp. */
static int
json_parse_hex4(struct parser *p, uint32_t *cp)
{
	uint32_t v = 0;
	size_t i;
	unsigned char c;

	if (p->len - p->pos < 4)
		return SOTTO_ERR_FORMAT;
	for (i = 0; i < 4; i++) {
		c = p->s[p->pos];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (uint32_t)(c - 'A' + 10);
		else
			return SOTTO_ERR_FORMAT;
		p->pos++;
	}
	*cp = v;
	return 0;
}

/*
 * Decode the string starting at the opening quote into a new buffer; decoded
 * text is never longer than its source, so one allocation of the remaining
 * length bounds it.
 */
static int
json_parse_string_raw(struct parser *p, char **out, size_t *outlen)
{
	unsigned char *buf = NULL, c;
	size_t n = 0, start, end, seq;
	uint32_t cp, lo;
	int r = SOTTO_ERR_FORMAT;

	*out = NULL;
	*outlen = 0;
	if (p->pos >= p->len || p->s[p->pos] != '"')
		goto out;
	start = ++p->pos;
	/* Find the closing quote first so the buffer size is exact. */
	for (end = start; end < p->len && p->s[end] != '"'; end++)
		if (p->s[end] == '\\' && end + 1 < p->len)
			end++;
	if (end >= p->len)
		goto out;
	if ((buf = malloc(end - start + 1)) == NULL) {
		r = SOTTO_ERR_NOMEM;
		goto out;
	}
	while (p->pos < end) {
		c = p->s[p->pos];
		if (c < 0x20)
			goto out;
		if (c != '\\') {
			if ((seq = json_utf8_seqlen(p->s + p->pos, end - p->pos)) == 0)
				goto out;
			memcpy(buf + n, p->s + p->pos, seq);
			n += seq;
			p->pos += seq;
			continue;
		}
		if (++p->pos >= end)
			goto out;
		c = p->s[p->pos++];
		switch (c) {
		case '"':
		case '\\':
		case '/':
			buf[n++] = c;
			break;
		case 'b':
			buf[n++] = '\b';
			break;
		case 'f':
			buf[n++] = '\f';
			break;
		case 'n':
			buf[n++] = '\n';
			break;
		case 'r':
			buf[n++] = '\r';
			break;
		case 't':
			buf[n++] = '\t';
			break;
		case 'u':
			if (json_parse_hex4(p, &cp) != 0)
				goto out;
			if (cp >= 0xdc00 && cp <= 0xdfff)
				goto out; /* a low surrogate on its own */
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (p->len - p->pos < 6 || p->s[p->pos] != '\\' ||
				        p->s[p->pos + 1] != 'u')
					goto out;
				p->pos += 2;
				if (json_parse_hex4(p, &lo) != 0 || lo < 0xdc00 || lo > 0xdfff)
					goto out;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			n += json_utf8_put(buf + n, cp);
			break;
		default:
			goto out;
		}
	}
	if (p->pos != end)
		goto out;
	p->pos = end + 1;
	buf[n] = '\0';
	*out = (char *)buf;
	*outlen = n;
	buf = NULL;
	r = 0;
out:
	free(buf);
	return r;
}

static size_t
json_digits(struct parser *p)
{
	size_t start = p->pos;

	while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
		p->pos++;
	return p->pos - start;
}

/* Check the RFC 8259 number grammar by hand, then let strtod convert the validated span. */
static int
json_parse_number(struct parser *p, struct json **out)
{
	struct json *v = NULL;
	size_t start = p->pos, intstart, intlen, i;
	int neg = 0, integral = 1, r = SOTTO_ERR_FORMAT;
	unsigned long long mag = 0, limit;
	char *copy = NULL, *end = NULL;

	*out = NULL;
	if (p->pos < p->len && p->s[p->pos] == '-') {
		neg = 1;
		p->pos++;
	}
	intstart = p->pos;
	if ((intlen = json_digits(p)) == 0)
		goto out;
	if (intlen > 1 && p->s[intstart] == '0')
		goto out; /* no leading zeros */
	if (p->pos < p->len && p->s[p->pos] == '.') {
		p->pos++;
		integral = 0;
		if (json_digits(p) == 0)
			goto out;
	}
	if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
		p->pos++;
		integral = 0;
		if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
			p->pos++;
		if (json_digits(p) == 0)
			goto out;
	}
	if ((v = json_new(JSON_NUMBER)) == NULL) {
		r = SOTTO_ERR_NOMEM;
		goto out;
	}
	if ((copy = malloc(p->pos - start + 1)) == NULL) {
		r = SOTTO_ERR_NOMEM;
		goto out;
	}
	memcpy(copy, p->s + start, p->pos - start);
	copy[p->pos - start] = '\0';
	errno = 0;
	v->num = strtod(copy, &end);
	if (end != copy + (p->pos - start) || !isfinite(v->num)) {
		r = SOTTO_ERR_RANGE;
		goto out;
	}
	if (integral) {
		/* The magnitude of LLONG_MIN is one more than LLONG_MAX. */
		limit = neg ? (unsigned long long)LLONG_MAX + 1 : (unsigned long long)LLONG_MAX;
		v->int_state = INT_OK;
		for (i = intstart; i < intstart + intlen; i++) {
			unsigned d = (unsigned)(p->s[i] - '0');

			if (mag > (limit - d) / 10) {
				v->int_state = INT_OVERFLOW;
				break;
			}
			mag = mag * 10 + d;
		}
		if (v->int_state == INT_OK) {
			if (neg)
				v->ival = mag == (unsigned long long)LLONG_MAX + 1
				                  ? LLONG_MIN
				                  : -(long long)mag;
			else
				v->ival = (long long)mag;
		}
	}
	*out = v;
	v = NULL;
	r = 0;
out:
	free(copy);
	json_free(v);
	return r;
}

static int
json_parse_literal(struct parser *p, const char *word, enum json_type type, struct json **out)
{
	size_t n = strlen(word);

	*out = NULL;
	if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
		return SOTTO_ERR_FORMAT;
	if ((*out = json_new(type)) == NULL)
		return SOTTO_ERR_NOMEM;
	p->pos += n;
	return 0;
}

/* Make room for one more element or member of v. */
static int
json_grow(struct json *v)
{
	struct json **items;
	char **keys;
	size_t *keylens, ncap;

	if (v->n < v->cap)
		return 0;
	ncap = v->cap == 0 ? 8 : v->cap * 2;
	if (ncap > SIZE_MAX / sizeof(*items))
		return SOTTO_ERR_NOMEM;
	if ((items = realloc(v->items, ncap * sizeof(*items))) == NULL)
		return SOTTO_ERR_NOMEM;
	v->items = items;
	if (v->type == JSON_OBJECT) {
		if ((keys = realloc(v->keys, ncap * sizeof(*keys))) == NULL)
			return SOTTO_ERR_NOMEM;
		v->keys = keys;
		if ((keylens = realloc(v->keylens, ncap * sizeof(*keylens))) == NULL)
			return SOTTO_ERR_NOMEM;
		v->keylens = keylens;
	}
	v->cap = ncap;
	return 0;
}

static int
json_parse_array(struct parser *p, unsigned depth, struct json **out)
{
	struct json *v = NULL, *item = NULL;
	int r;

	*out = NULL;
	if ((v = json_new(JSON_ARRAY)) == NULL) {
		r = SOTTO_ERR_NOMEM;
		goto out;
	}
	p->pos++; /* '[' */
	json_skip_ws(p);
	if (p->pos < p->len && p->s[p->pos] == ']') {
		p->pos++;
		goto done;
	}
	for (;;) {
		if ((r = json_parse_value(p, depth + 1, &item)) != 0)
			goto out;
		if ((r = json_grow(v)) != 0)
			goto out;
		v->items[v->n++] = item;
		item = NULL;
		json_skip_ws(p);
		r = SOTTO_ERR_FORMAT;
		if (p->pos >= p->len)
			goto out;
		if (p->s[p->pos] == ']') {
			p->pos++;
			break;
		}
		if (p->s[p->pos] != ',')
			goto out;
		p->pos++;
	}
done:
	*out = v;
	v = NULL;
	r = 0;
out:
	json_free(item);
	json_free(v);
	return r;
}

static int
json_parse_object(struct parser *p, unsigned depth, struct json **out)
{
	struct json *v = NULL, *item = NULL;
	char *key = NULL;
	size_t keylen, i;
	int r;

	*out = NULL;
	if ((v = json_new(JSON_OBJECT)) == NULL) {
		r = SOTTO_ERR_NOMEM;
		goto out;
	}
	p->pos++; /* '{' */
	json_skip_ws(p);
	if (p->pos < p->len && p->s[p->pos] == '}') {
		p->pos++;
		goto done;
	}
	for (;;) {
		json_skip_ws(p);
		if ((r = json_parse_string_raw(p, &key, &keylen)) != 0)
			goto out;
		r = SOTTO_ERR_FORMAT;
		for (i = 0; i < v->n; i++)
			if (v->keylens[i] == keylen && memcmp(v->keys[i], key, keylen) == 0)
				goto out; /* duplicate name */
		json_skip_ws(p);
		if (p->pos >= p->len || p->s[p->pos] != ':')
			goto out;
		p->pos++;
		if ((r = json_parse_value(p, depth + 1, &item)) != 0)
			goto out;
		if ((r = json_grow(v)) != 0)
			goto out;
		v->keys[v->n] = key;
		v->keylens[v->n] = keylen;
		v->items[v->n++] = item;
		key = NULL;
		item = NULL;
		json_skip_ws(p);
		r = SOTTO_ERR_FORMAT;
		if (p->pos >= p->len)
			goto out;
		if (p->s[p->pos] == '}') {
			p->pos++;
			break;
		}
		if (p->s[p->pos] != ',')
			goto out;
		p->pos++;
	}
done:
	*out = v;
	v = NULL;
	r = 0;
out:
	free(key);
	json_free(item);
	json_free(v);
	return r;
}

static int
json_parse_value(struct parser *p, unsigned depth, struct json **out)
{
	struct json *v = NULL;
	int r;

	*out = NULL;
	if (depth > JSON_MAX_DEPTH)
		return SOTTO_ERR_RANGE;
	json_skip_ws(p);
	if (p->pos >= p->len)
		return SOTTO_ERR_FORMAT;
	switch (p->s[p->pos]) {
	case '{':
		return json_parse_object(p, depth, out);
	case '[':
		return json_parse_array(p, depth, out);
	case '"':
		if ((v = json_new(JSON_STRING)) == NULL)
			return SOTTO_ERR_NOMEM;
		if ((r = json_parse_string_raw(p, &v->str, &v->len)) != 0) {
			json_free(v);
			return r;
		}
		*out = v;
		return 0;
	case 't':
		return json_parse_literal(p, "true", JSON_TRUE, out);
	case 'f':
		return json_parse_literal(p, "false", JSON_FALSE, out);
	case 'n':
		return json_parse_literal(p, "null", JSON_NULL, out);
	default:
		return json_parse_number(p, out);
	}
}

int
json_parse(struct json **out, const char *text, size_t len, size_t *erroff)
{
	struct parser p;
	struct json *v = NULL;
	int r;

	*out = NULL;
	if (erroff != NULL)
		*erroff = 0;
	if (text == NULL)
		return SOTTO_ERR_INVALID;
	p.s = (const unsigned char *)text;
	p.len = len;
	p.pos = 0;
	if ((r = json_parse_value(&p, 1, &v)) != 0)
		goto out;
	json_skip_ws(&p);
	if (p.pos != p.len) {
		r = SOTTO_ERR_FORMAT; /* trailing garbage */
		goto out;
	}
	*out = v;
	v = NULL;
out:
	if (r != 0 && erroff != NULL)
		*erroff = p.pos;
	json_free(v);
	return r;
}

enum json_type
json_type(const struct json *v)
{
	return v == NULL ? JSON_NONE : v->type;
}

size_t
json_count(const struct json *v)
{
	if (v == NULL || (v->type != JSON_ARRAY && v->type != JSON_OBJECT))
		return 0;
	return v->n;
}

const struct json *
json_at(const struct json *arr, size_t i)
{
	if (arr == NULL || arr->type != JSON_ARRAY || i >= arr->n)
		return NULL;
	return arr->items[i];
}

const struct json *
json_get(const struct json *obj, const char *key)
{
	size_t i, n;

	if (obj == NULL || obj->type != JSON_OBJECT || key == NULL)
		return NULL;
	n = strlen(key);
	for (i = 0; i < obj->n; i++)
		if (obj->keylens[i] == n && memcmp(obj->keys[i], key, n) == 0)
			return obj->items[i];
	return NULL;
}

const char *
json_key_at(const struct json *obj, size_t i)
{
	if (obj == NULL || obj->type != JSON_OBJECT || i >= obj->n)
		return NULL;
	return obj->keys[i];
}

const char *
json_string(const struct json *v, size_t *len)
{
	if (len != NULL)
		*len = 0;
	if (v == NULL || v->type != JSON_STRING)
		return NULL;
	if (len != NULL)
		*len = v->len;
	return v->str;
}

const char *
json_get_string(const struct json *obj, const char *key)
{
	return json_string(json_get(obj, key), NULL);
}

int
json_number(const struct json *v, double *out)
{
	if (v == NULL || v->type != JSON_NUMBER)
		return SOTTO_ERR_INVALID;
	*out = v->num;
	return 0;
}

int
json_int(const struct json *v, long long *out)
{
	if (v == NULL || v->type != JSON_NUMBER || v->int_state == INT_NO)
		return SOTTO_ERR_INVALID;
	if (v->int_state == INT_OVERFLOW)
		return SOTTO_ERR_RANGE;
	*out = v->ival;
	return 0;
}

int
json_bool(const struct json *v, int *out)
{
	if (v == NULL || (v->type != JSON_TRUE && v->type != JSON_FALSE))
		return SOTTO_ERR_INVALID;
	*out = v->type == JSON_TRUE;
	return 0;
}
