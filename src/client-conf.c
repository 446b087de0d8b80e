/*
 * sotto.conf edits that keep the rest of the file: one pass finds the line
 * that counts for each key, a second copies the file with those lines
 * replaced, and keys/keyfile.c puts the result in place.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/buf.h"
#include "keys/keyfile.h"
#include "src/client-conf.h"

#define CC_KEYS_MAX 16 /* keys set in one call */

static void cc_error(char *err, size_t errlen, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void
cc_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* 1 if "key = value" can be written on a line that sotto reads back as exactly that. */
static int
cc_value_ok(const char *key, const char *value)
{
	size_t i, len = strlen(value);

	if (len == 0 || value[0] == ' ' || value[0] == '\t' || value[len - 1] == ' ' ||
	        value[len - 1] == '\t')
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)value[i] < 0x20 || value[i] == 0x7f)
			return 0;
	return strlen(key) + 3 + len <= CLIENT_CONF_LINE_MAX;
}

/*
 * The key a line sets (its length in *klen), or NULL for a blank line, a
 * comment or a line without '=' (kept as it is; sotto says what is wrong
 * with it when it reads the file).
 */
static const char *
cc_line_key(const char *line, size_t len, size_t *klen)
{
	const char *eq;
	size_t start = 0, end;

	*klen = 0;
	while (start < len && (line[start] == ' ' || line[start] == '\t'))
		start++;
	if (start == len || line[start] == '#')
		return NULL;
	if ((eq = memchr(line + start, '=', len - start)) == NULL)
		return NULL;
	end = (size_t)(eq - line);
	while (end > start && (line[end - 1] == ' ' || line[end - 1] == '\t'))
		end--;
	*klen = end - start;
	return line + start;
}

/* Index of the key named by (k, klen) in keys, or -1. */
static int
cc_key_index(const char *const *keys, size_t n, const char *k, size_t klen)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strlen(keys[i]) == klen && memcmp(keys[i], k, klen) == 0)
			return (int)i;
	return -1;
}

/* The next line of data at *off, without its newline; 0 at the end. */
static int
cc_next_line(const uint8_t *data, size_t len, size_t *off, const char **line, size_t *linelen)
{
	const uint8_t *nl;

	if (*off >= len)
		return 0;
	*line = (const char *)data + *off;
	nl = memchr(data + *off, '\n', len - *off);
	*linelen = nl != NULL ? (size_t)(nl - (data + *off)) : len - *off;
	*off += *linelen + (nl != NULL ? 1 : 0);
	return 1;
}

static int
cc_put_setting(struct buf *out, const char *key, const char *value)
{
	int r;

	if ((r = buf_put(out, key, strlen(key))) != 0 || (r = buf_put(out, " = ", 3)) != 0 ||
	        (r = buf_put(out, value, strlen(value))) != 0)
		return r;
	return buf_put_u8(out, '\n');
}

int
client_conf_set(const char *file, const char *const *keys, const char *const *values, size_t n,
        char *err, size_t errlen)
{
	unsigned last[CC_KEYS_MAX] = {0}; /* 1-based line that counts for each key; 0: none */
	const char *line, *k;
	uint8_t *data = NULL;
	size_t len = 0, off, linelen, klen, i;
	unsigned lineno;
	struct buf out;
	int r, idx;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	buf_init(&out, CLIENT_CONF_FILE_MAX + CC_KEYS_MAX * (CLIENT_CONF_LINE_MAX + 1));
	if (file == NULL || n > CC_KEYS_MAX) {
		r = SOTTO_ERR_INVALID;
		cc_error(err, errlen, "bad arguments");
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (!cc_value_ok(keys[i], values[i])) {
			r = SOTTO_ERR_INVALID;
			cc_error(err, errlen, "%s: cannot write \"%s = %s\" on one line", file,
			        keys[i], values[i]);
			goto out;
		}
	}
	r = keyfile_read(file, CLIENT_CONF_FILE_MAX, &data, &len);
	if (r == SOTTO_ERR_NOTFOUND) {
		data = NULL;
		len = 0;
	} else if (r != 0) {
		if (r == SOTTO_ERR_RANGE)
			cc_error(err, errlen, "%s: larger than %d bytes", file,
			        CLIENT_CONF_FILE_MAX);
		else
			cc_error(err, errlen, "%s: %s", file,
			        r == SOTTO_ERR_IO ? strerror(errno) : sotto_strerror(r));
		goto out;
	}
	for (off = 0, lineno = 1; cc_next_line(data, len, &off, &line, &linelen); lineno++)
		if ((k = cc_line_key(line, linelen, &klen)) != NULL &&
		        (idx = cc_key_index(keys, n, k, klen)) >= 0)
			last[idx] = lineno;
	for (off = 0, lineno = 1, r = 0; r == 0 && cc_next_line(data, len, &off, &line, &linelen);
	        lineno++) {
		idx = -1;
		if ((k = cc_line_key(line, linelen, &klen)) != NULL)
			idx = cc_key_index(keys, n, k, klen);
		if (idx >= 0 && last[idx] == lineno)
			r = cc_put_setting(&out, keys[idx], values[idx]);
		else if ((r = buf_put(&out, line, linelen)) == 0)
			r = buf_put_u8(&out, '\n');
	}
	for (i = 0; r == 0 && i < n; i++)
		if (last[i] == 0)
			r = cc_put_setting(&out, keys[i], values[i]);
	if (r != 0) {
		cc_error(err, errlen, "%s: %s", file, sotto_strerror(r));
		goto out;
	}
	if ((r = keyfile_write(file, buf_ptr(&out), buf_len(&out), CLIENT_CONF_MODE, 1)) != 0)
		cc_error(err, errlen, "cannot write %s: %s", file,
		        r == SOTTO_ERR_IO ? strerror(errno) : sotto_strerror(r));
out:
	keyfile_free(data, len);
	buf_free(&out);
	return r;
}

int
client_conf_abspath(char **out, const char *path, char *err, size_t errlen)
{
	char cwd[PATH_MAX];
	size_t n;

	*out = NULL;
	if (path == NULL || *path == '\0') {
		cc_error(err, errlen, "an empty path");
		return SOTTO_ERR_INVALID;
	}
	if (path[0] == '/') {
		*out = strdup(path);
	} else {
		if (getcwd(cwd, sizeof(cwd)) == NULL) {
			cc_error(err, errlen, "cannot find the current directory: %s",
			        strerror(errno));
			return SOTTO_ERR_IO;
		}
		/* "./key" becomes "/dir/key", not "/dir/./key". */
		while (path[0] == '.' && path[1] == '/')
			path += 2 + strspn(path + 2, "/");
		n = strlen(cwd) + 1 + strlen(path) + 1;
		if ((*out = malloc(n)) != NULL)
			snprintf(*out, n, "%s%s%s", cwd, strcmp(cwd, "/") == 0 ? "" : "/", path);
	}
	if (*out == NULL) {
		cc_error(err, errlen, "out of memory");
		return SOTTO_ERR_NOMEM;
	}
	return 0;
}
