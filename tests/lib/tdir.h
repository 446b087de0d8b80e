/*
 * A scratch directory for unit tests: made fresh under /tmp by a suite's
 * init function and removed, with everything below it, by its fini function.
 * Failures are criterion assertions, so these run only inside a test (or a
 * suite's init).  Not thread-safe.
 */
#ifndef SOTTO_TESTS_TDIR_H
#define SOTTO_TESTS_TDIR_H

#include <sys/types.h>

#include <stddef.h>

/* Make a new directory /tmp/<name>-XXXXXX and put its path in dir (size bytes). */
void tdir_make(char *dir, size_t size, const char *name);
/* Remove dir and all below it (errors are ignored: for a suite's fini). */
void tdir_remove(const char *dir);
/* dir/name in one of two rotating static buffers (so two may be in use at once). */
const char *tdir_at(const char *dir, const char *name);
/* The number of entries in dir other than . and .. (temporary files included). */
int tdir_count(const char *dir);
/* The permission bits of path, following a symbolic link. */
mode_t tdir_mode(const char *path);

#endif
