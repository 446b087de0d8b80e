/*
 * Tests for src/client-file's file-name rules: hostile names from a
 * FileOffer become one safe, visible path component, and variants never
 * collide with the original.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "src/client-file.h"

#ifndef Test
#define TestSuite(...)         struct test_suite_unused
#define Test(suite, name, ...) void test_##suite##_##name(void)
#endif

TestSuite(client_file);

static const char *
sanitize(const char *in)
{
	static char out[CLIENT_FILE_NAME_MAX + 1];

	memset(out, 'X', sizeof(out));
	client_file_sanitize(out, in);
	return out;
}

/* The properties every sanitized name has, whatever went in. */
static void
assert_safe(const char *s)
{
	size_t i, n = strlen(s);

	cr_assert_gt(n, 0);
	cr_assert_leq(n, CLIENT_FILE_NAME_MAX);
	cr_assert_neq(s[0], '.', "\"%s\" is hidden", s);
	cr_assert_neq(s[0], ' ');
	cr_assert_neq(s[n - 1], ' ');
	cr_assert_null(strchr(s, '/'), "\"%s\" has a slash", s);
	cr_assert_null(strchr(s, '\\'), "\"%s\" has a backslash", s);
	cr_assert_null(strstr(s, ".."), "\"%s\" has ..", s);
	for (i = 0; i < n; i++)
		cr_assert((unsigned char)s[i] >= 0x20 && s[i] != 0x7f, "control byte in \"%s\"", s);
}

Test(client_file, path_traversal)
{
	cr_assert_str_eq(sanitize("../../etc/passwd"), "passwd");
	cr_assert_str_eq(sanitize("..\\..\\windows\\win.ini"), "win.ini");
	cr_assert_str_eq(sanitize("/etc/shadow"), "shadow");
	cr_assert_str_eq(sanitize(".."), "file");
	cr_assert_str_eq(sanitize("foo/.."), "file");
	cr_assert_str_eq(sanitize("dir/"), "file");
	cr_assert_str_eq(sanitize(""), "file");
	cr_assert_str_eq(sanitize(NULL), "file");
	assert_safe(sanitize("../../etc/passwd"));
}

Test(client_file, hidden_names)
{
	cr_assert_str_eq(sanitize(".bashrc"), "bashrc");
	cr_assert_str_eq(sanitize("...profile"), "profile");
	cr_assert_str_eq(sanitize(" . .ssh"), "ssh");
	cr_assert_str_eq(sanitize("...."), "file");
	cr_assert_str_eq(sanitize("a..b...c"), "a.b.c");
	cr_assert_str_eq(sanitize("report.pdf "), "report.pdf");
	assert_safe(sanitize(".bashrc"));
}

Test(client_file, control_characters)
{
	cr_assert_str_eq(sanitize("a\nb"), "a_b");
	cr_assert_str_eq(sanitize("a\rb\tc\x1b[31md\x7f"), "a_b_c_[31md_");
	/* C1 controls (U+009B is CSI) and the right-to-left override that hides "exe". */
	cr_assert_str_eq(sanitize("x\xc2\x9b"
	                          "1m"),
	        "x_1m");
	cr_assert_str_eq(sanitize("invoice\xe2\x80\xaegpj.exe"), "invoice_gpj.exe");
	/* Invalid UTF-8 is replaced byte by byte; valid UTF-8 stays. */
	cr_assert_str_eq(sanitize("caf\xc3\xa9.txt"), "caf\xc3\xa9.txt");
	cr_assert_str_eq(sanitize("bad\xff\xfe.txt"), "bad__.txt");
	cr_assert_str_eq(sanitize("\xc0\xaf"), "__");
	assert_safe(sanitize("a\nb"));
}

Test(client_file, long_names)
{
	char *in = malloc(10001), *p;
	const char *out;

	cr_assert_not_null(in);
	memset(in, 'a', 10000);
	in[10000] = '\0';
	out = sanitize(in);
	cr_assert_eq(strlen(out), CLIENT_FILE_NAME_MAX);
	assert_safe(out);
	/* The extension survives the cut. */
	memcpy(in + 10000 - 4, ".pdf", 4);
	out = sanitize(in);
	cr_assert_eq(strlen(out), CLIENT_FILE_NAME_MAX);
	cr_assert_str_eq(out + CLIENT_FILE_NAME_MAX - 4, ".pdf");
	/* A cut never splits a character: 10,000 bytes of two-byte characters. */
	for (p = in; p + 2 <= in + 10000; p += 2)
		memcpy(p, "\xc3\xa9", 2);
	out = sanitize(in);
	cr_assert_eq(strlen(out) % 2, 0);
	cr_assert_leq(strlen(out), CLIENT_FILE_NAME_MAX);
	cr_assert_eq((unsigned char)out[strlen(out) - 1], 0xa9);
	/* Dots at the cut do not run into the extension's dot. */
	memset(in, 'b', 10000);
	in[CLIENT_FILE_NAME_MAX - 5] = '.';
	memcpy(in + 10000 - 4, ".txt", 4);
	out = sanitize(in);
	assert_safe(out);
	cr_assert_eq(strlen(out), CLIENT_FILE_NAME_MAX - 1);
	cr_assert_str_eq(out + CLIENT_FILE_NAME_MAX - 5, ".txt");
	free(in);
}

Test(client_file, variants)
{
	char out[CLIENT_FILE_NAME_MAX + 16];

	client_file_variant(out, sizeof(out), "report.pdf", 0);
	cr_assert_str_eq(out, "report.pdf");
	client_file_variant(out, sizeof(out), "report.pdf", 1);
	cr_assert_str_eq(out, "report (1).pdf");
	client_file_variant(out, sizeof(out), "archive.tar.gz", 12);
	cr_assert_str_eq(out, "archive.tar (12).gz");
	client_file_variant(out, sizeof(out), "README", 3);
	cr_assert_str_eq(out, "README (3)");
	client_file_variant(out, sizeof(out), "x.averyveryverylongextension", 2);
	cr_assert_str_eq(out, "x.averyveryverylongextension (2)");
}

/* The file errors have sentences of their own. */
Test(client_file, error_sentences)
{
	uint32_t codes[] = {SOTTO__ERROR_CODE__ERR_FILE_TOO_LARGE,
	        SOTTO__ERROR_CODE__ERR_QUOTA_EXCEEDED, SOTTO__ERROR_CODE__ERR_NO_SUCH_FILE};
	size_t i;

	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		cr_assert_str_neq(proto_error_string(codes[i]), proto_error_string(100000));
		cr_assert_str_neq(proto_error_name(codes[i]), "ERR_UNKNOWN");
	}
	cr_assert_str_eq(
	        proto_error_name(SOTTO__ERROR_CODE__ERR_QUOTA_EXCEEDED), "ERR_QUOTA_EXCEEDED");
}
