/* Unit tests for src/client-conf.c: sotto.conf edits that keep the rest of the file. */
#include "config.h"

#include <sys/stat.h>

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "src/client-conf.h"
#include "tests/lib/tdir.h"

#ifndef Test
/* cppcheck does not read criterion.h: let it analyse each test as a plain function. */
#define TestSuite(...)         struct test_suite_unused
#define Test(suite, name, ...) void test_##suite##_##name(void)
#endif

static char dir[64], file[128];

static void
setup(void)
{
	tdir_make(dir, sizeof(dir), "test_client_conf");
	snprintf(file, sizeof(file), "%s/sotto.conf", dir);
}

static void
teardown(void)
{
	tdir_remove(dir);
}

TestSuite(client_conf, .init = setup, .fini = teardown);

static void
put(const char *text)
{
	FILE *fp = fopen(file, "w");

	cr_assert_not_null(fp);
	fputs(text, fp);
	cr_assert_eq(fclose(fp), 0);
}

/* The file's whole text, in a static buffer. */
static const char *
get(void)
{
	static char text[8192];
	FILE *fp = fopen(file, "r");
	size_t n;

	cr_assert_not_null(fp);
	n = fread(text, 1, sizeof(text) - 1, fp);
	text[n] = '\0';
	fclose(fp);
	return text;
}

static void
set2(const char *server, const char *user)
{
	const char *keys[] = {"server", "user"};
	const char *values[] = {server, user};
	char err[256];

	cr_assert_eq(client_conf_set(file, keys, values, 2, err, sizeof(err)), 0, "%s", err);
}

Test(client_conf, new_file_is_0600_whatever_the_umask)
{
	struct stat st;
	mode_t old = umask(0);

	set2("chat.example.org:7443", "alice");
	umask(old);
	cr_assert_str_eq(get(), "server = chat.example.org:7443\nuser = alice\n");
	cr_assert_eq(stat(file, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600, "mode %o", (unsigned)(st.st_mode & 07777));
}

Test(client_conf, other_lines_and_comments_stay)
{
	struct stat st;

	put("# my settings\n"
	    "\n"
	    "identity = /home/alice/keys/id   \n"
	    "  server=old.example.org:7443\n"
	    "trust_new = never\n"
	    "# the end, no newline");
	cr_assert_eq(chmod(file, 0644), 0);
	set2("[::1]:7443", "alice");
	cr_assert_str_eq(get(), "# my settings\n"
	                        "\n"
	                        "identity = /home/alice/keys/id   \n"
	                        "server = [::1]:7443\n"
	                        "trust_new = never\n"
	                        "# the end, no newline\n"
	                        "user = alice\n");
	cr_assert_eq(stat(file, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600);
}

/* The last line for a key is the one sotto reads, so that is the one that changes. */
Test(client_conf, repeated_key_changes_the_last)
{
	put("user = a\nuser = b\n# user = c\nserverx = y\nuser=d\n");
	set2("s:1", "e");
	cr_assert_str_eq(
	        get(), "user = a\nuser = b\n# user = c\nserverx = y\nuser = e\nserver = s:1\n");
}

Test(client_conf, lines_without_equals_are_kept)
{
	put("nonsense\r\nuser = a\r\n");
	set2("s:1", "b");
	cr_assert_str_eq(get(), "nonsense\r\nuser = b\nserver = s:1\n");
}

Test(client_conf, values_that_would_not_read_back_are_refused)
{
	const char *keys[] = {"identity"};
	const char *bad[] = {"a\nserver = evil:1", " lead", "trail\t", "", "tab\tin\x01side"};
	char big[CLIENT_CONF_LINE_MAX + 2], err[256];
	const char *values[1];
	size_t i;

	put("user = a\n");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		values[0] = bad[i];
		cr_assert_eq(client_conf_set(file, keys, values, 1, err, sizeof(err)),
		        SOTTO_ERR_INVALID, "%zu", i);
		cr_assert(strstr(err, file) != NULL, "%s", err);
	}
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[CLIENT_CONF_LINE_MAX - strlen("identity = ")] = '\0';
	values[0] = big;
	cr_assert_eq(client_conf_set(file, keys, values, 1, err, sizeof(err)), 0, "%s", err);
	big[strlen(big)] = 'x';
	cr_assert_eq(client_conf_set(file, keys, values, 1, err, sizeof(err)), SOTTO_ERR_INVALID);
	/* Spaces inside a value are fine: sotto.conf has no quoting. */
	values[0] = "/home/a b/id";
	cr_assert_eq(client_conf_set(file, keys, values, 1, err, sizeof(err)), 0, "%s", err);
	cr_assert(strstr(get(), "identity = /home/a b/id\n") != NULL, "%s", get());
}

Test(client_conf, a_huge_file_is_left_alone)
{
	FILE *fp = fopen(file, "w");
	char err[256];
	const char *keys[] = {"user"}, *values[] = {"a"};
	struct stat st;
	int i;

	cr_assert_not_null(fp);
	for (i = 0; i < CLIENT_CONF_FILE_MAX / 10 + 1; i++)
		fputs("# padding\n", fp);
	fclose(fp);
	cr_assert_eq(client_conf_set(file, keys, values, 1, err, sizeof(err)), SOTTO_ERR_RANGE);
	cr_assert_eq(stat(file, &st), 0);
	cr_assert_eq(st.st_size, (CLIENT_CONF_FILE_MAX / 10 + 1) * 10);
}

Test(client_conf, no_temporary_file_is_left)
{
	struct dirent *de;
	DIR *d;
	int n = 0;

	set2("s:1", "a");
	set2("s:2", "b");
	cr_assert_str_eq(get(), "server = s:2\nuser = b\n");
	cr_assert_not_null(d = opendir(dir));
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		cr_assert_str_eq(de->d_name, "sotto.conf");
		n++;
	}
	closedir(d);
	cr_assert_eq(n, 1);
}

Test(client_conf, abspath)
{
	char cwd[PATH_MAX], want[PATH_MAX + 32], err[256], *p = NULL;

	cr_assert_eq(chdir(dir), 0);
	cr_assert_not_null(getcwd(cwd, sizeof(cwd)));
	cr_assert_eq(client_conf_abspath(&p, "/abs/id", err, sizeof(err)), 0);
	cr_assert_str_eq(p, "/abs/id");
	free(p);
	cr_assert_eq(client_conf_abspath(&p, "keys/id", err, sizeof(err)), 0);
	snprintf(want, sizeof(want), "%s/keys/id", cwd);
	cr_assert_str_eq(p, want);
	free(p);
	cr_assert_eq(client_conf_abspath(&p, ".//./id", err, sizeof(err)), 0);
	snprintf(want, sizeof(want), "%s/id", cwd);
	cr_assert_str_eq(p, want);
	free(p);
	cr_assert_eq(client_conf_abspath(&p, "", err, sizeof(err)), SOTTO_ERR_INVALID);
	cr_assert_null(p);
	cr_assert_eq(chdir("/"), 0);
	cr_assert_eq(client_conf_abspath(&p, "id", err, sizeof(err)), 0);
	cr_assert_str_eq(p, "/id");
	free(p);
}
