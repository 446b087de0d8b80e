/* Tests for keys/keyfile: staged, atomic, no-clobber writes and bounded reads. */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "crypto/util.h"
#include "keys/keyfile.h"
#include "tests/lib/tdir.h"

#ifndef Test
/* cppcheck does not read criterion.h: let it analyse each test as a plain function. */
#define TestSuite(...)         struct test_suite_unused
#define Test(suite, name, ...) void test_##suite##_##name(void)
#endif

static char dir[64];

static void
setup(void)
{
	cr_assert_eq(sotto_crypto_init(), 0);
	umask(022);
	tdir_make(dir, sizeof(dir), "test_keyfile");
}

static void
teardown(void)
{
	tdir_remove(dir);
}

TestSuite(keyfile, .init = setup, .fini = teardown);

/* dir/name in a static buffer (one at a time). */
static const char *
at(const char *name)
{
	return tdir_at(dir, name);
}

static char *
slurp(const char *path)
{
	uint8_t *data = NULL;
	size_t len = 0;

	cr_assert_eq(keyfile_read(path, 0, &data, &len), 0, "reading %s", path);
	return (char *)data;
}

static void
put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f);
	fputs(text, f);
	cr_assert_eq(fclose(f), 0);
}

static mode_t
mode_of(const char *path)
{
	struct stat st;

	cr_assert_eq(lstat(path, &st), 0, "stat %s", path);
	return st.st_mode & 07777;
}

Test(keyfile, write_creates_with_mode_and_content)
{
	char *text;

	cr_assert_eq(keyfile_write(at("k"), "secret\n", 7, KEYFILE_MODE_PRIVATE, 0), 0);
	cr_assert_eq(mode_of(at("k")), 0600);
	text = slurp(at("k"));
	cr_assert_str_eq(text, "secret\n");
	keyfile_free((uint8_t *)text, 7);
	cr_assert_eq(keyfile_write(at("k.pub"), "pub\n", 4, KEYFILE_MODE_PUBLIC, 0), 0);
	cr_assert_eq(mode_of(at("k.pub")), 0644);
	cr_assert_eq(tdir_count(dir), 2, "no temporary file may be left behind");
}

Test(keyfile, stage_is_invisible_until_commit)
{
	struct keyfile_stage st;

	cr_assert_eq(keyfile_stage(&st, at("k"), "abc", 3, 0600), 0);
	cr_assert_eq(access(at("k"), F_OK), -1);
	cr_assert_eq(tdir_count(dir), 1);
	cr_assert_eq(keyfile_commit(&st, 0), 0);
	keyfile_discard(&st);
	cr_assert_eq(access(at("k"), F_OK), 0);
	cr_assert_eq(tdir_count(dir), 1);
}

Test(keyfile, discard_removes_the_staged_file)
{
	struct keyfile_stage st;

	cr_assert_eq(keyfile_stage(&st, at("k"), "abc", 3, 0600), 0);
	keyfile_discard(&st);
	keyfile_discard(&st); /* twice is harmless */
	cr_assert_eq(tdir_count(dir), 0);
}

Test(keyfile, never_overwrites_without_force)
{
	struct keyfile_stage st;
	char *text;

	put(at("k"), "old");
	cr_assert_eq(keyfile_check(at("k"), 0), SOTTO_ERR_EXISTS);
	cr_assert_eq(keyfile_check(at("k"), 1), 0);
	cr_assert_eq(keyfile_write(at("k"), "new", 3, 0600, 0), SOTTO_ERR_EXISTS);
	/* A race: the file appears between stage and commit. */
	cr_assert_eq(keyfile_stage(&st, at("k2"), "new", 3, 0600), 0);
	put(at("k2"), "other");
	cr_assert_eq(keyfile_commit(&st, 0), SOTTO_ERR_EXISTS);
	keyfile_discard(&st);
	text = slurp(at("k"));
	cr_assert_str_eq(text, "old");
	keyfile_free((uint8_t *)text, 3);
	text = slurp(at("k2"));
	cr_assert_str_eq(text, "other");
	keyfile_free((uint8_t *)text, 5);
	cr_assert_eq(tdir_count(dir), 2);
}

Test(keyfile, force_replaces_atomically)
{
	char *text;

	put(at("k"), "old");
	chmod(at("k"), 0644);
	cr_assert_eq(keyfile_write(at("k"), "new!", 4, 0600, 1), 0);
	text = slurp(at("k"));
	cr_assert_str_eq(text, "new!");
	keyfile_free((uint8_t *)text, 4);
	cr_assert_eq(mode_of(at("k")), 0600);
	cr_assert_eq(tdir_count(dir), 1);
}

Test(keyfile, symlink_is_never_followed)
{
	struct stat st;
	char *text;

	put(at("target"), "keep");
	cr_assert_eq(symlink(at("target"), at("link")), 0);
	cr_assert_eq(keyfile_check(at("link"), 0), SOTTO_ERR_EXISTS);
	cr_assert_eq(keyfile_write(at("link"), "new", 3, 0600, 0), SOTTO_ERR_EXISTS);
	/* With force the link itself is replaced, not the file it points to. */
	cr_assert_eq(keyfile_write(at("link"), "new", 3, 0600, 1), 0);
	cr_assert_eq(lstat(at("link"), &st), 0);
	cr_assert(S_ISREG(st.st_mode));
	text = slurp(at("target"));
	cr_assert_str_eq(text, "keep");
	keyfile_free((uint8_t *)text, 4);
}

Test(keyfile, unusable_directories)
{
	put(at("file"), "x");
	errno = 0;
	cr_assert_eq(keyfile_check(at("file/k"), 0), SOTTO_ERR_IO);
	cr_assert_eq(errno, ENOTDIR);
	cr_assert_eq(keyfile_check(at("missing/k"), 0), SOTTO_ERR_IO);
	cr_assert_eq(errno, ENOENT);
	cr_assert_eq(keyfile_check(dir, 1), SOTTO_ERR_IO);
	cr_assert_eq(errno, EISDIR);
	cr_assert_eq(keyfile_check("", 0), SOTTO_ERR_IO);
	cr_assert_eq(keyfile_write(at("missing/k"), "x", 1, 0600, 0), SOTTO_ERR_IO);
	cr_assert_eq(errno, ENOENT);
	cr_assert_eq(keyfile_write(at("file/k"), "x", 1, 0600, 0), SOTTO_ERR_IO);
	cr_assert_eq(errno, ENOTDIR);
	cr_assert_eq(keyfile_write("/etc/passwd/x", "x", 1, 0600, 0), SOTTO_ERR_IO);
	cr_assert_eq(tdir_count(dir), 1);
}

Test(keyfile, read_is_bounded_and_checks_type)
{
	static uint8_t sentinel[] = "sentinel";
	uint8_t *data = sentinel;
	size_t len = 99;

	put(at("big"), "0123456789");
	cr_assert_eq(keyfile_read(at("big"), 9, &data, &len), SOTTO_ERR_RANGE);
	cr_assert_null(data);
	cr_assert_eq(keyfile_read(at("big"), 10, &data, &len), 0);
	cr_assert_eq(len, 10);
	cr_assert_eq(data[10], '\0');
	keyfile_free(data, len);
	cr_assert_eq(keyfile_read(at("none"), 0, &data, &len), SOTTO_ERR_NOTFOUND);
	cr_assert_eq(keyfile_read(dir, 0, &data, &len), SOTTO_ERR_IO);
	cr_assert_eq(errno, EISDIR);
	cr_assert_eq(keyfile_read("/dev/null", 0, &data, &len), SOTTO_ERR_FORMAT);
	put(at("empty"), "");
	cr_assert_eq(keyfile_read(at("empty"), 0, &data, &len), 0);
	cr_assert_eq(len, 0);
	cr_assert_str_eq((char *)data, "");
	keyfile_free(data, len);
	keyfile_free(NULL, 0);
}
