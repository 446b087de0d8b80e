/* Unit tests for src/server-config.c (sottod.conf and its flags). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "src/server-config.h"

#ifndef Test
/* cppcheck does not read criterion.h: let it analyse each test as a plain function. */
#define TestSuite(...)         struct test_suite_unused
#define Test(suite, name, ...) void test_##suite##_##name(void)
#endif

static char test_dir[64];
static struct config cfg;
static char err[1024];

/* Each test runs in a scratch directory, so that files are named plainly: "sottod.conf:3: ...". */
static void
setup(void)
{
	snprintf(test_dir, sizeof(test_dir), "/tmp/sotto-test-config-XXXXXX");
	cr_assert_not_null(mkdtemp(test_dir));
	cr_assert_eq(chdir(test_dir), 0);
	cr_assert_eq(config_init(&cfg), 0);
	err[0] = '\0';
}

static void
teardown(void)
{
	config_free(&cfg);
	unlink("sottod.conf");
	unlink("other.conf");
	unlink("written.conf");
	cr_assert_eq(chdir("/"), 0);
	rmdir(test_dir);
}

TestSuite(config, .init = setup, .fini = teardown);

static void
test_write_file(const char *name, const char *text, size_t len)
{
	FILE *fp = fopen(name, "w");

	cr_assert_not_null(fp);
	cr_assert_eq(fwrite(text, 1, len, fp), len);
	cr_assert_eq(fclose(fp), 0);
}

#define test_file(text) test_write_file("sottod.conf", text, strlen(text))

/* Load a one-file config that must fail with exactly message. */
static void
test_file_error(const char *text, const char *message)
{
	test_file(text);
	cr_assert_neq(config_load(&cfg, "sottod.conf", err, sizeof(err)), 0, "accepted: %s", text);
	cr_assert_str_eq(err, message);
}

/* config_set as a flag must fail with exactly message and change nothing. */
static void
test_flag_error(const char *key, const char *value, const char *message)
{
	struct config before = cfg;

	cr_assert_neq(
	        config_set(&cfg, key, value, err, sizeof(err)), 0, "accepted %s=%s", key, value);
	cr_assert_str_eq(err, message);
	cr_assert(memcmp(&before, &cfg, sizeof(cfg)) == 0, "%s changed the config", key);
}

Test(config, defaults)
{
	cr_assert_eq(config_finish(&cfg, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(cfg.n_listen, 1);
	cr_assert_str_eq(cfg.listen[0].host, "::");
	cr_assert_str_eq(cfg.listen[0].port, "7443");
	cr_assert_str_eq(cfg.state_dir, "./sotto-state");
	cr_assert_str_eq(cfg.cert, "./sotto-state/server.crt");
	cr_assert_str_eq(cfg.key, "./sotto-state/server.key");
	cr_assert_eq(cfg.registration, CONFIG_REGISTRATION_OPEN);
	cr_assert_eq(cfg.max_auth_failures, 3);
	cr_assert_eq(cfg.block_duration, 60);
	cr_assert_eq(cfg.idle_timeout, 0);
	cr_assert_eq(cfg.handshake_timeout, 10);
	cr_assert_eq(cfg.auth_timeout, 30);
	cr_assert_eq(cfg.max_frame_preauth, 65536);
	cr_assert_eq(cfg.max_frame, 1048576);
	cr_assert_eq(cfg.max_conns_per_addr, 64);
	cr_assert_eq(cfg.rate_limit, 200);
	cr_assert_eq(cfg.rate_burst, 400);
	cr_assert_eq(cfg.auth_throttle, 20);
	cr_assert_eq(cfg.output_high_water, 1048576);
	cr_assert_eq(cfg.commit_window_ms, 1);
	cr_assert_eq(cfg.live_wait_ms, 200);
	cr_assert_eq(cfg.n_admins, 0);
	cr_assert_eq(cfg.log_level, LOG_LEVEL_INFO);
	cr_assert_eq(cfg.syslog, 0);
	cr_assert_eq(cfg.openssl_records, 0);
	cr_assert_str_eq(config_key_name(0), "listen");
	cr_assert_null(config_key_name(1000));
}

Test(config, file_parse)
{
	test_file("# sottod.conf for tests\n"
	          "\n"
	          "   # an indented comment\n"
	          "listen = 127.0.0.1:7000\n"
	          "listen=[::1]:7001\n"
	          "\tlisten = :7002   \n"
	          "listen = *:7003\n"
	          "listen = 7004\n"
	          "listen = chat.example.org:7005\n"
	          "state_dir = /var/lib/sotto with space\n"
	          "key = /etc/sotto/server.key\n"
	          "registration = invite\n"
	          "max_auth_failures = 5\n"
	          "block_duration = 5m\n"
	          "idle_timeout = 2h\n"
	          "handshake_timeout = 15s\n"
	          "auth_timeout = 45\n"
	          "max_frame_preauth = 32K\n"
	          "max_frame = 2M\n"
	          "max_conns_per_addr = 0\n"
	          "rate_limit = 50\n"
	          "rate_burst = 100\n"
	          "auth_throttle = 7\n"
	          "output_high_water = 4m\n"
	          "commit_window_ms = 0\n"
	          "live_wait_ms = 250\n"
	          "admins = Alice, bob ,carol.x\n"
	          "admins = dave\n"
	          "log_level = debug\n"
	          "syslog = yes\n");
	cr_assert_eq(config_load(&cfg, "sottod.conf", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(config_finish(&cfg, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(cfg.n_listen, 6);
	cr_assert_str_eq(cfg.listen[0].host, "127.0.0.1");
	cr_assert_str_eq(cfg.listen[0].port, "7000");
	cr_assert_str_eq(cfg.listen[1].host, "::1");
	cr_assert_str_eq(cfg.listen[1].port, "7001");
	cr_assert_str_eq(cfg.listen[2].host, "");
	cr_assert_str_eq(cfg.listen[2].port, "7002");
	cr_assert_str_eq(cfg.listen[3].host, "");
	cr_assert_str_eq(cfg.listen[4].host, "");
	cr_assert_str_eq(cfg.listen[4].port, "7004");
	cr_assert_str_eq(cfg.listen[5].host, "chat.example.org");
	cr_assert_str_eq(cfg.state_dir, "/var/lib/sotto with space");
	cr_assert_str_eq(cfg.cert, "/var/lib/sotto with space/server.crt");
	cr_assert_str_eq(cfg.key, "/etc/sotto/server.key");
	cr_assert_eq(cfg.registration, CONFIG_REGISTRATION_INVITE);
	cr_assert_eq(cfg.max_auth_failures, 5);
	cr_assert_eq(cfg.block_duration, 300);
	cr_assert_eq(cfg.idle_timeout, 7200);
	cr_assert_eq(cfg.handshake_timeout, 15);
	cr_assert_eq(cfg.auth_timeout, 45);
	cr_assert_eq(cfg.max_frame_preauth, 32768);
	cr_assert_eq(cfg.max_frame, 2097152);
	cr_assert_eq(cfg.max_conns_per_addr, 0);
	cr_assert_eq(cfg.rate_limit, 50);
	cr_assert_eq(cfg.rate_burst, 100);
	cr_assert_eq(cfg.auth_throttle, 7);
	cr_assert_eq(cfg.output_high_water, 4194304);
	cr_assert_eq(cfg.commit_window_ms, 0);
	cr_assert_eq(cfg.live_wait_ms, 250);
	cr_assert_eq(cfg.n_admins, 4);
	cr_assert_str_eq(cfg.admins[0], "alice");
	cr_assert_str_eq(cfg.admins[1], "bob");
	cr_assert_str_eq(cfg.admins[2], "carol.x");
	cr_assert_str_eq(cfg.admins[3], "dave");
	cr_assert_eq(cfg.log_level, LOG_LEVEL_DEBUG);
	cr_assert_eq(cfg.syslog, 1);
}

Test(config, crlf_bom_and_no_final_newline)
{
	test_file("\xef\xbb\xbfmax_frame = 4096\r\n"
	          "syslog = no\r\n"
	          "log_level = warning");
	cr_assert_eq(config_load(&cfg, "sottod.conf", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(cfg.max_frame, 4096);
	cr_assert_eq(cfg.syslog, 0);
	cr_assert_eq(cfg.log_level, LOG_LEVEL_WARN);
}

Test(config, flags_override_file_in_any_order)
{
	test_file("max_frame = 65536\n"
	          "listen = 127.0.0.1:7000\n"
	          "listen = 127.0.0.1:7001\n"
	          "admins = alice\n"
	          "idle_timeout = 60\n");
	/* Flags before the file. */
	cr_assert_eq(config_set(&cfg, "max-frame", "2097152", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(config_set(&cfg, "listen", "[::]:9000", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(config_load(&cfg, "sottod.conf", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(cfg.max_frame, 2097152, "the flag wins");
	cr_assert_eq(cfg.idle_timeout, 60, "the file fills what flags leave");
	cr_assert_eq(cfg.n_listen, 1, "the flag's list replaces the file's");
	cr_assert_str_eq(cfg.listen[0].port, "9000");
	cr_assert_eq(cfg.n_admins, 1);
	/* Flags after the file. */
	cr_assert_eq(config_set(&cfg, "admins", "bob", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(config_set(&cfg, "admins", "carol", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(cfg.n_admins, 2);
	cr_assert_str_eq(cfg.admins[0], "bob");
	cr_assert_str_eq(cfg.admins[1], "carol");
	cr_assert_eq(config_set(&cfg, "idle_timeout", "0", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(cfg.idle_timeout, 0);
	/* A repeated scalar flag keeps the last value. */
	cr_assert_eq(config_set(&cfg, "idle_timeout", "5", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(cfg.idle_timeout, 5);
	/* A flag-set key still has its file value checked. */
	config_free(&cfg);
	cr_assert_eq(config_init(&cfg), 0);
	cr_assert_eq(config_set(&cfg, "max_frame", "4096", err, sizeof(err)), 0);
	test_file_error("max_frame = lots\n",
	        "sottod.conf:1: max_frame: expected a size such as 65536 or 64K, got \"lots\"");
}

Test(config, state_dir_flag_moves_derived_paths)
{
	test_file("state_dir = /from/file\n");
	cr_assert_eq(config_set(&cfg, "state_dir", "/from/flag", err, sizeof(err)), 0);
	cr_assert_eq(config_load(&cfg, "sottod.conf", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(config_finish(&cfg, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(cfg.cert, "/from/flag/server.crt");
	cr_assert_str_eq(cfg.key, "/from/flag/server.key");
}

Test(config, file_errors)
{
	test_file_error("listen = :7443\nmax_frame = 512\n",
	        "sottod.conf:2: max_frame: must be between 1024 and 16777216");
}

Test(config, unknown_key)
{
	test_file_error("# comment\n\nfrobnicate = 1\n", "sottod.conf:3: frobnicate: unknown key");
}

Test(config, syntax_errors)
{
	test_file_error("just words\n", "sottod.conf:1: expected \"key = value\"");
	test_file_error("= value\n", "sottod.conf:1: expected \"key = value\"");
	test_file_error("max frame = 1\n", "sottod.conf:1: expected \"key = value\"");
	test_file_error("[server]\n", "sottod.conf:1: expected \"key = value\"");
	test_file_error("state_dir =\n", "sottod.conf:1: state_dir: missing value");
}

Test(config, duplicate_scalar_in_file)
{
	test_file_error("max_frame = 4096\n# again\nmax_frame = 8192\n",
	        "sottod.conf:3: max_frame: already set on line 1");
}

Test(config, long_line_and_nul)
{
	static const char nul[] = "syslog = no\nlog_level = in\0fo\n";
	char *text = malloc(CONFIG_LINE_MAX + 100);

	cr_assert_not_null(text);
	memset(text, 'x', CONFIG_LINE_MAX + 50);
	memcpy(text, "state_dir = ", 12);
	text[CONFIG_LINE_MAX + 50] = '\n';
	test_write_file("sottod.conf", text, CONFIG_LINE_MAX + 51);
	cr_assert_neq(config_load(&cfg, "sottod.conf", err, sizeof(err)), 0);
	cr_assert_str_eq(err, "sottod.conf:1: line too long (at most 4096 bytes)");
	free(text);
	test_write_file("sottod.conf", nul, sizeof(nul) - 1);
	cr_assert_neq(config_load(&cfg, "sottod.conf", err, sizeof(err)), 0);
	cr_assert_str_eq(err, "sottod.conf:2: line contains a NUL byte");
}

Test(config, missing_file)
{
	cr_assert_eq(config_load(&cfg, "nonexistent.conf", err, sizeof(err)), SOTTO_ERR_NOTFOUND);
	cr_assert_str_eq(err, "nonexistent.conf: No such file or directory");
}

Test(config, error_messages_for_every_kind_of_value)
{
	test_flag_error("frobnicate", "1", "frobnicate: unknown key");
	test_flag_error("max_frame", "", "max_frame: missing value");
	test_flag_error("max_frame", NULL, "max_frame: missing value");
	test_flag_error("max_frame", "16777217", "max_frame: must be between 1024 and 16777216");
	test_flag_error("max_frame", "17M", "max_frame: must be between 1024 and 16777216");
	test_flag_error("max_frame", "1.5M",
	        "max_frame: expected a size such as 65536 or 64K, got \"1.5M\"");
	test_flag_error(
	        "max_frame", "-1", "max_frame: expected a size such as 65536 or 64K, got \"-1\"");
	test_flag_error("max_frame", "99999999999999999999999",
	        "max_frame: expected a size such as 65536 or 64K, got \"99999999999999999999999\"");
	test_flag_error(
	        "max_frame_preauth", "100", "max_frame_preauth: must be between 1024 and 16777216");
	test_flag_error("output_high_water", "2G",
	        "output_high_water: must be between 65536 and 1073741824");
	test_flag_error("max_auth_failures", "0", "max_auth_failures: must be between 1 and 100");
	test_flag_error(
	        "max_auth_failures", "3x", "max_auth_failures: expected a number, got \"3x\"");
	test_flag_error(
	        "max_auth_failures", " 3", "max_auth_failures: expected a number, got \" 3\"");
	test_flag_error("block_duration", "0", "block_duration: must be between 1 and 2592000");
	test_flag_error("block_duration", "31d", "block_duration: must be between 1 and 2592000");
	test_flag_error("block_duration", "1w",
	        "block_duration: expected seconds, or a duration such as 5m or 2h, got \"1w\"");
	test_flag_error("idle_timeout", "8d", "idle_timeout: must be between 0 and 604800");
	test_flag_error("handshake_timeout", "0", "handshake_timeout: must be between 1 and 300");
	test_flag_error("auth_timeout", "2h", "auth_timeout: must be between 1 and 3600");
	test_flag_error("max_conns_per_addr", "1000001",
	        "max_conns_per_addr: must be between 0 and 1000000");
	test_flag_error("rate_limit", "0", "rate_limit: must be between 1 and 1000000");
	test_flag_error("rate_burst", "0", "rate_burst: must be between 1 and 1000000");
	test_flag_error("auth_throttle", "100001", "auth_throttle: must be between 0 and 100000");
	test_flag_error("commit_window_ms", "1001", "commit_window_ms: must be between 0 and 1000");
	test_flag_error("live_wait_ms", "60001", "live_wait_ms: must be between 0 and 60000");
	test_flag_error("registration", "maybe", "registration: must be open, invite or closed");
	test_flag_error("registration", "Open", "registration: must be open, invite or closed");
	test_flag_error("log_level", "loud", "log_level: must be error, warning, info or debug");
	test_flag_error("syslog", "perhaps", "syslog: must be yes or no");
	test_flag_error(
	        "listen", "::1:7443", "listen: put IPv6 addresses in brackets, as in [::1]:7443");
	test_flag_error("listen", "[::1]7443",
	        "listen: expected host:port, [IPv6]:port or :port, got \"[::1]7443\"");
	test_flag_error(
	        "listen", "[::1", "listen: expected host:port, [IPv6]:port or :port, got \"[::1\"");
	test_flag_error("listen", "[nothex]:7443", "listen: \"nothex\" is not a valid address");
	test_flag_error("listen", "[]:7443",
	        "listen: expected host:port, [IPv6]:port or :port, got \"[]:7443\"");
	test_flag_error("listen", "host_name:7443", "listen: \"host_name\" is not a valid address");
	test_flag_error("listen", "localhost:65536",
	        "listen: the port must be a number between 0 and 65535 (0: any free port)");
	test_flag_error("listen", "localhost:https",
	        "listen: the port must be a number between 0 and 65535 (0: any free port)");
	test_flag_error("listen", "localhost:",
	        "listen: the port must be a number between 0 and 65535 (0: any free port)");
	test_flag_error("admins", "alice,bad name", "admins: \"bad name\" is not a valid username");
	test_flag_error("admins", " , ,", "admins: expected one or more usernames");
	/* Paths take anything non-empty. */
	cr_assert_eq(config_set(&cfg, "cert", "/x/y z.crt", err, sizeof(err)), 0);
}

Test(config, listen_variants)
{
	cr_assert_eq(
	        config_set(&cfg, "listen", "[fe80::1%eth0]:7443", err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(cfg.listen[0].host, "fe80::1%eth0");
	cr_assert_eq(config_set(&cfg, "listen", "0.0.0.0:07443", err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(cfg.listen[1].port, "7443");
	test_flag_error("listen", "0.0.0.0:7443", "listen: the same address is given twice");
}

Test(config, too_many_listen_addresses)
{
	char v[32];
	int i;

	for (i = 0; i < CONFIG_LIST_MAX; i++) {
		snprintf(v, sizeof(v), ":%d", 7000 + i);
		cr_assert_eq(config_set(&cfg, "listen", v, err, sizeof(err)), 0, "%s", err);
	}
	test_flag_error("listen", ":9999", "listen: too many addresses (at most 64)");
}

Test(config, check_cross_key_rules)
{
	cr_assert_eq(config_set(&cfg, "max_frame", "8192", err, sizeof(err)), 0);
	cr_assert_eq(config_finish(&cfg, err, sizeof(err)), SOTTO_ERR_INVALID);
	cr_assert_str_eq(err, "max_frame_preauth: must not exceed max_frame (8192)");
	cr_assert_eq(config_set(&cfg, "max_frame_preauth", "8K", err, sizeof(err)), 0);
	cr_assert_eq(config_check(&cfg, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(config_set(&cfg, "rate_burst", "10", err, sizeof(err)), 0);
	cr_assert_eq(config_check(&cfg, err, sizeof(err)), SOTTO_ERR_INVALID);
	cr_assert_str_eq(err, "rate_burst: must be at least rate_limit (200)");
}

Test(config, write_then_reload)
{
	struct config again;
	FILE *fp;

	cr_assert_eq(config_set(&cfg, "listen", "[::1]:7001", err, sizeof(err)), 0);
	cr_assert_eq(config_set(&cfg, "listen", "127.0.0.1:7002", err, sizeof(err)), 0);
	cr_assert_eq(config_set(&cfg, "listen", ":7003", err, sizeof(err)), 0);
	cr_assert_eq(config_set(&cfg, "admins", "alice,bob", err, sizeof(err)), 0);
	cr_assert_eq(config_set(&cfg, "registration", "closed", err, sizeof(err)), 0);
	cr_assert_eq(config_set(&cfg, "syslog", "on", err, sizeof(err)), 0);
	cr_assert_eq(config_set(&cfg, "openssl_records", "yes", err, sizeof(err)), 0);
	cr_assert_eq(cfg.syslog, 1);
	cr_assert_eq(config_finish(&cfg, err, sizeof(err)), 0, "%s", err);
	cr_assert_not_null(fp = fopen("written.conf", "w"));
	config_write(&cfg, fp);
	cr_assert_eq(fclose(fp), 0);
	cr_assert_eq(config_init(&again), 0);
	cr_assert_eq(config_load(&again, "written.conf", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(config_finish(&again, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(again.n_listen, 3);
	cr_assert_str_eq(again.listen[0].host, "::1");
	cr_assert_str_eq(again.listen[1].host, "127.0.0.1");
	cr_assert_str_eq(again.listen[2].host, "");
	cr_assert_str_eq(again.listen[2].port, "7003");
	cr_assert_eq(again.n_admins, 2);
	cr_assert_eq(again.registration, CONFIG_REGISTRATION_CLOSED);
	cr_assert_eq(again.syslog, 1);
	cr_assert_eq(again.openssl_records, 1);
	cr_assert_str_eq(again.cert, cfg.cert);
	cr_assert_eq(again.max_frame, cfg.max_frame);
	cr_assert_eq(again.output_high_water, cfg.output_high_water);
	config_free(&again);
}

/* Files (issue 6): 64-bit sizes with a T suffix, the ttl, and a round trip through the file. */
Test(config, file_limits)
{
	struct config again;
	FILE *fp;

	cr_assert_eq(cfg.max_file_size, UINT64_C(1) << 30);
	cr_assert_eq(cfg.user_quota, UINT64_C(4) << 30);
	cr_assert_eq(cfg.file_ttl, 7 * 86400);
	test_file("max_file_size = 3G\n"
	          "user_quota = 2T\n"
	          "file_ttl = 2h\n");
	cr_assert_eq(config_load(&cfg, "sottod.conf", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(cfg.max_file_size, UINT64_C(3) << 30);
	cr_assert_eq(cfg.user_quota, UINT64_C(2) << 40);
	cr_assert_eq(cfg.file_ttl, 7200);
	cr_assert_eq(config_set(&cfg, "user-quota", "5000000000", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(cfg.user_quota, UINT64_C(5000000000));
	test_flag_error(
	        "max_file_size", "1025T", "max_file_size: must be between 0 and 1125899906842624");
	test_flag_error(
	        "user_quota", "4X", "user_quota: expected a size such as 65536 or 64K, got \"4X\"");
	test_flag_error("file_ttl", "0", "file_ttl: must be between 1 and 31536000");
	/* T is for the 64-bit sizes only. */
	test_flag_error(
	        "max_frame", "1T", "max_frame: expected a size such as 65536 or 64K, got \"1T\"");
	cr_assert_eq(config_finish(&cfg, err, sizeof(err)), 0, "%s", err);
	cr_assert_not_null(fp = fopen("written.conf", "w"));
	config_write(&cfg, fp);
	cr_assert_eq(fclose(fp), 0);
	cr_assert_eq(config_init(&again), 0);
	cr_assert_eq(config_load(&again, "written.conf", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(again.max_file_size, cfg.max_file_size);
	cr_assert_eq(again.user_quota, UINT64_C(5000000000));
	cr_assert_eq(again.file_ttl, 7200);
	config_free(&again);
}
