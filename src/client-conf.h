/*
 * Edits of sotto.conf, the client's "key = value" file (sotto.conf(5)), as
 * sotto register makes them: a few keys are set and every other line,
 * comments and blank lines included, stays as it was.
 *
 * The last line that sets a key is the one that counts when the file is
 * read, so that is the line replaced; a key the file does not set yet is
 * appended.  The new file is written beside the old one and renamed over it
 * (keys/keyfile.h), mode 0600, so that a crash leaves the old file or the
 * new one, never half of one.
 *
 * Functions take err/errlen (err may be NULL) for a sentence on failure.
 * Arguments are borrowed; strings returned are the caller's (free()).
 * Thread-safe: nothing is kept between calls.
 */
#ifndef SOTTO_CLIENT_CONF_H
#define SOTTO_CLIENT_CONF_H

#include <stddef.h>

#include "crypto/err.h"

#define CLIENT_CONF_LINE_MAX 1022        /* bytes per line, newline excluded, that sotto reads */
#define CLIENT_CONF_FILE_MAX (64 * 1024) /* a larger file is not a sotto.conf */
#define CLIENT_CONF_MODE     0600

/*
 * Set keys[i] to values[i] for i < n in file, which need not exist (its
 * directory must).  A value must fit on one line that sotto can read back:
 * no control characters, no blanks at either end, and "key = value" at most
 * CLIENT_CONF_LINE_MAX bytes (SOTTO_ERR_INVALID otherwise, and nothing is
 * written).  SOTTO_ERR_RANGE if the file is larger than CLIENT_CONF_FILE_MAX,
 * SOTTO_ERR_IO (errno set) if it cannot be read or written.
 */
int client_conf_set(const char *file, const char *const *keys, const char *const *values, size_t n,
        char *err, size_t errlen) SOTTO_WUR;

/*
 * path made absolute against the current directory, without resolving
 * links (so that a path through a link keeps working when the link is
 * changed): *out is a new string.  SOTTO_ERR_IO if the current directory
 * cannot be found.
 */
int client_conf_abspath(char **out, const char *path, char *err, size_t errlen) SOTTO_WUR;

#endif
