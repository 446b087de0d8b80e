/* A scratch directory for unit tests; see tdir.h. */
#include "config.h"

#include <sys/stat.h>

#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/lib/tdir.h"

void
tdir_make(char *dir, size_t size, const char *name)
{
	int n = snprintf(dir, size, "/tmp/%s-XXXXXX", name);

	cr_assert(n > 0 && (size_t)n < size, "directory name too long: %s", name);
	cr_assert_not_null(mkdtemp(dir), "mkdtemp %s", dir);
}

/* nftw callback that removes everything. */
static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void
tdir_remove(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *
tdir_at(const char *dir, const char *name)
{
	static char path[2][256];
	static int which;

	which ^= 1;
	snprintf(path[which], sizeof(path[which]), "%s/%s", dir, name);
	return path[which];
}

int
tdir_count(const char *dir)
{
	DIR *d = opendir(dir);
	const struct dirent *e;
	int n = 0;

	cr_assert_not_null(d, "opendir %s", dir);
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

mode_t
tdir_mode(const char *path)
{
	struct stat st;

	cr_assert_eq(stat(path, &st), 0, "stat %s", path);
	return st.st_mode & 07777;
}
