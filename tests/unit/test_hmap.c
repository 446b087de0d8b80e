/* Tests for src/hmap: insert, replace, delete, growth and iteration. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "crypto/util.h"
#include "src/hmap.h"

static void
setup(void)
{
	cr_assert_eq(sotto_crypto_init(), 0);
}

TestSuite(hmap, .init = setup);

Test(hmap, put_get_replace_delete)
{
	struct hmap *m;
	int a = 1, b = 2;
	void *old = &a;

	cr_assert_eq(hmap_new(&m), 0);
	cr_assert_null(hmap_get(m, "alice", 5));
	cr_assert_eq(hmap_put(m, "alice", 5, &a, &old), 0);
	cr_assert_null(old);
	cr_assert_eq(hmap_get(m, "alice", 5), &a);
	cr_assert_null(hmap_get(m, "alic", 4), "a prefix is a different key");
	cr_assert_eq(hmap_put(m, "alice", 5, &b, &old), 0);
	cr_assert_eq(old, &a);
	cr_assert_eq(hmap_count(m), 1);
	cr_assert_eq(hmap_del(m, "alice", 5), &b);
	cr_assert_null(hmap_del(m, "alice", 5));
	cr_assert_eq(hmap_count(m), 0);
	hmap_free(m);
}

static int
count_cb(const void *key, size_t keylen, void *value, void *arg)
{
	size_t *sum = arg;

	*sum += (size_t)(uintptr_t)value;
	return 0;
}

static int
delete_even_cb(const void *key, size_t keylen, void *value, void *arg)
{
	struct hmap *m = arg;

	if ((uintptr_t)value % 2 == 0)
		cr_assert_eq(hmap_del(m, key, keylen), value);
	return 0;
}

Test(hmap, grows_and_iterates_over_many_keys)
{
	struct hmap *m;
	char key[32];
	size_t i, sum = 0;

	cr_assert_eq(hmap_new(&m), 0);
	for (i = 1; i <= 10000; i++) {
		snprintf(key, sizeof(key), "user%zu", i);
		cr_assert_eq(hmap_put(m, key, strlen(key), (void *)(uintptr_t)i, NULL), 0);
	}
	cr_assert_eq(hmap_count(m), 10000);
	for (i = 1; i <= 10000; i++) {
		snprintf(key, sizeof(key), "user%zu", i);
		cr_assert_eq((uintptr_t)hmap_get(m, key, strlen(key)), i);
	}
	cr_assert_eq(hmap_foreach(m, count_cb, &sum), 0);
	cr_assert_eq(sum, 10000 * 10001 / 2);
	cr_assert_eq(hmap_foreach(m, delete_even_cb, m), 0);
	cr_assert_eq(hmap_count(m), 5000);
	cr_assert_null(hmap_get(m, "user2", 5));
	cr_assert_eq((uintptr_t)hmap_get(m, "user3", 5), 3);
	hmap_free(m);
}

Test(hmap, binary_keys_with_nul_bytes)
{
	struct hmap *m;
	static const uint8_t k1[] = {0, 1, 2}, k2[] = {0, 1, 3};
	int a, b;

	cr_assert_eq(hmap_new(&m), 0);
	cr_assert_eq(hmap_put(m, k1, sizeof(k1), &a, NULL), 0);
	cr_assert_eq(hmap_put(m, k2, sizeof(k2), &b, NULL), 0);
	cr_assert_eq(hmap_get(m, k1, sizeof(k1)), &a);
	cr_assert_eq(hmap_get(m, k2, sizeof(k2)), &b);
	cr_assert_eq(hmap_put(m, "", 0, &a, NULL), 0);
	cr_assert_eq(hmap_get(m, "", 0), &a);
	hmap_free(m);
}
