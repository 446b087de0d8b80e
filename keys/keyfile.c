/* Crash-safe key files and bounded reads; see keyfile.h. */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/util.h"

#include "keyfile.h"

/* Attempts at a fresh temporary name before giving up (each is 64 random bits). */
#define KEYFILE_TMP_TRIES 8

/* The directory part of path in a new string ("." when there is none). */
static char *
keyfile_dirname(const char *path)
{
	char *copy, *dir;

	if ((copy = strdup(path)) == NULL)
		return NULL;
	dir = strdup(dirname(copy));
	free(copy);
	return dir;
}

/* fsync a directory so that a rename in it survives a crash. */
static int
keyfile_sync_dir(const char *path)
{
	char *dir;
	int fd, r = SOTTO_ERR_IO, saved;

	if ((dir = keyfile_dirname(path)) == NULL)
		return SOTTO_ERR_NOMEM;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	saved = errno;
	free(dir);
	if (fd == -1) {
		errno = saved;
		return SOTTO_ERR_IO;
	}
	/* Some file systems cannot fsync a directory; the rename itself is done. */
	if (fsync(fd) == 0 || errno == EINVAL || errno == EROFS)
		r = 0;
	saved = errno;
	close(fd);
	errno = saved;
	return r;
}

int
keyfile_check(const char *path, int force)
{
	struct stat st;
	char *dir;
	int saved;

	if (path == NULL || *path == '\0') {
		errno = ENOENT;
		return SOTTO_ERR_IO;
	}
	if (lstat(path, &st) == 0) {
		if (S_ISDIR(st.st_mode)) {
			errno = EISDIR;
			return SOTTO_ERR_IO;
		}
		return force ? 0 : SOTTO_ERR_EXISTS;
	}
	if (errno != ENOENT)
		return SOTTO_ERR_IO;
	/* The file is absent; its directory must exist and be a directory. */
	if ((dir = keyfile_dirname(path)) == NULL)
		return SOTTO_ERR_NOMEM;
	if (stat(dir, &st) != 0) {
		saved = errno;
		free(dir);
		errno = saved;
		return SOTTO_ERR_IO;
	}
	free(dir);
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return SOTTO_ERR_IO;
	}
	return 0;
}

/* Write all of data to fd, retrying short writes and EINTR. */
static int
keyfile_write_all(int fd, const uint8_t *data, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, data, len);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return SOTTO_ERR_IO;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Create "DIR/.NAME.tmp-RANDOM" exclusively; *tmp gets its path, the fd is returned. */
static int
keyfile_open_tmp(const char *path, mode_t mode, char **tmp, int *fdp)
{
	char *dir = NULL, *copy = NULL, *name = NULL;
	uint8_t rnd[8];
	char hex[2 * sizeof(rnd) + 1];
	size_t cap;
	int i, fd = -1, r = SOTTO_ERR_NOMEM, saved = 0;

	*tmp = NULL;
	*fdp = -1;
	if ((dir = keyfile_dirname(path)) == NULL || (copy = strdup(path)) == NULL)
		goto out;
	cap = strlen(dir) + strlen(copy) + sizeof(hex) + 16;
	if ((name = malloc(cap)) == NULL)
		goto out;
	for (i = 0; i < KEYFILE_TMP_TRIES; i++) {
		sotto_random(rnd, sizeof(rnd));
		sotto_hex(hex, rnd, sizeof(rnd));
		snprintf(name, cap, "%s/.%s.tmp-%s", dir, basename(copy), hex);
		fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
		if (fd != -1 || errno != EEXIST)
			break;
	}
	if (fd == -1) {
		saved = errno;
		r = SOTTO_ERR_IO;
		goto out;
	}
	*tmp = name;
	*fdp = fd;
	name = NULL;
	r = 0;
out:
	free(dir);
	free(copy);
	free(name);
	if (saved != 0)
		errno = saved;
	return r;
}

int
keyfile_stage(struct keyfile_stage *st, const char *path, const void *data, size_t len, mode_t mode)
{
	char *tmp = NULL;
	int fd = -1, r, saved = 0;

	st->path = NULL;
	st->tmp = NULL;
	if ((st->path = strdup(path)) == NULL) {
		r = SOTTO_ERR_NOMEM;
		goto out;
	}
	if ((r = keyfile_open_tmp(path, mode, &tmp, &fd)) != 0) {
		saved = errno;
		goto out;
	}
	if ((r = keyfile_write_all(fd, data, len)) != 0 ||
	        (r = fsync(fd) == 0 ? 0 : SOTTO_ERR_IO)) {
		saved = errno;
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		saved = errno;
		r = SOTTO_ERR_IO;
		goto out;
	}
	fd = -1;
	st->tmp = tmp;
	tmp = NULL;
	r = 0;
out:
	if (fd != -1)
		close(fd);
	if (tmp != NULL) {
		unlink(tmp);
		free(tmp);
	}
	if (r != 0) {
		free(st->path);
		st->path = NULL;
	}
	if (saved != 0)
		errno = saved;
	return r;
}

int
keyfile_commit(struct keyfile_stage *st, int force)
{
	int saved;

	if (st->tmp == NULL || st->path == NULL)
		return SOTTO_ERR_INVALID;
	if (force) {
		if (rename(st->tmp, st->path) != 0)
			return SOTTO_ERR_IO;
	} else if (renameat2(AT_FDCWD, st->tmp, AT_FDCWD, st->path, RENAME_NOREPLACE) != 0) {
		if (errno == EEXIST)
			return SOTTO_ERR_EXISTS;
		if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
			return SOTTO_ERR_IO;
		/* No RENAME_NOREPLACE here: link(2) refuses to replace as well. */
		if (link(st->tmp, st->path) != 0)
			return errno == EEXIST ? SOTTO_ERR_EXISTS : SOTTO_ERR_IO;
		saved = errno;
		unlink(st->tmp);
		errno = saved;
	}
	free(st->tmp);
	st->tmp = NULL;
	return keyfile_sync_dir(st->path);
}

void
keyfile_discard(struct keyfile_stage *st)
{
	int saved = errno;

	if (st->tmp != NULL) {
		unlink(st->tmp);
		free(st->tmp);
	}
	free(st->path);
	st->tmp = NULL;
	st->path = NULL;
	errno = saved;
}

int
keyfile_write(const char *path, const void *data, size_t len, mode_t mode, int force)
{
	struct keyfile_stage st;
	int r;

	if ((r = keyfile_stage(&st, path, data, len, mode)) != 0)
		return r;
	r = keyfile_commit(&st, force);
	keyfile_discard(&st);
	return r;
}

int
keyfile_read(const char *path, size_t max, uint8_t **out, size_t *len)
{
	struct stat st;
	uint8_t *data = NULL;
	size_t have = 0, cap;
	ssize_t n;
	int fd = -1, r = SOTTO_ERR_IO, saved = 0;

	*out = NULL;
	*len = 0;
	if (max == 0)
		max = KEYFILE_MAX_READ;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
		saved = errno;
		r = errno == ENOENT ? SOTTO_ERR_NOTFOUND : SOTTO_ERR_IO;
		goto out;
	}
	if (fstat(fd, &st) != 0) {
		saved = errno;
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		saved = EISDIR;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = SOTTO_ERR_FORMAT;
		goto out;
	}
	if (st.st_size < 0 || (uintmax_t)st.st_size > max) {
		r = SOTTO_ERR_RANGE;
		goto out;
	}
	cap = (size_t)st.st_size;
	if ((data = malloc(cap + 1)) == NULL) {
		r = SOTTO_ERR_NOMEM;
		goto out;
	}
	/* A file that grows while it is read is read as far as its size at open. */
	while (have < cap) {
		n = read(fd, data + have, cap - have);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			saved = errno;
			goto out;
		}
		if (n == 0)
			break;
		have += (size_t)n;
	}
	data[have] = '\0';
	*out = data;
	*len = have;
	data = NULL;
	r = 0;
out:
	if (data != NULL) {
		sotto_wipe(data, have);
		free(data);
	}
	if (fd != -1)
		close(fd);
	if (saved != 0)
		errno = saved;
	return r;
}

void
keyfile_free(uint8_t *data, size_t len)
{
	if (data == NULL)
		return;
	sotto_wipe(data, len + 1);
	free(data);
}
