/*
 * The contract between store.c (the generic layer handlers call) and a
 * storage backend.  Only backends include this header.
 *
 * store.c checks arguments before any op is called: names are valid and
 * lower case, NULL-free where required, counts within the STORE_* limits,
 * invite tokens already hashed, outputs zeroed.  An op only stores and
 * fetches.  Each op must be atomic on its own and must join the open batch
 * between begin and commit.  A backend embeds struct store first in its own
 * struct and records a message for store_last_error() with store_set_error().
 */
#ifndef SOTTO_STORE_BACKEND_H
#define SOTTO_STORE_BACKEND_H

#include <stdarg.h>

#include "crypto/hash.h"
#include "src/store.h"

#define STORE_TOKEN_HASH_BYTES HASH_SHA256_BYTES

struct store_ops {
	const char *name;
	void (*close)(struct store *st);
	int (*begin)(struct store *st);
	int (*commit)(struct store *st);
	void (*rollback)(struct store *st);

	int (*user_register)(struct store *st, const struct store_registration *reg,
	        const uint8_t *invite_hash, int64_t now);
	int (*user_get)(struct store *st, const char *name, struct store_user *out);
	int (*user_set_last_seen)(struct store *st, const char *name, int64_t now);
	int (*user_set_admin)(struct store *st, const char *name, int admin);
	int (*user_delete)(struct store *st, const char *name);
	int (*user_list_seen)(
	        struct store *st, int64_t since, size_t limit, store_name_cb cb, void *arg);

	int (*prekey_set_signed)(
	        struct store *st, const char *name, const struct store_spk *spk, int64_t now);
	int (*prekey_get_signed)(struct store *st, const char *name, struct store_spk *out);
	int (*prekey_add_otks)(struct store *st, const char *name, const struct store_otk *otks,
	        size_t n, uint32_t *remaining);
	int (*prekey_count_otks)(struct store *st, const char *name, uint32_t *count);
	int (*prekey_take_bundle)(struct store *st, const char *name, struct store_bundle *out);

	int (*queue_push)(struct store *st, const char *recipient, enum store_kind kind,
	        const char *peer, const uint8_t *msg_id, int64_t timestamp_ms,
	        const uint8_t *sealed, size_t sealed_len, uint64_t *seq, int *duplicate);
	int (*queue_fetch)(struct store *st, const char *recipient, uint64_t after_seq,
	        size_t limit, store_msg_cb cb, void *arg);
	int (*queue_count)(struct store *st, const char *recipient, uint32_t *count);
	int (*queue_has)(struct store *st, const char *recipient, const char *peer,
	        const uint8_t *msg_id, int *found);
	int (*queue_delete)(struct store *st, const char *recipient,
	        const uint8_t (*ids)[STORE_MSG_ID_BYTES], size_t n, uint64_t max_seq, int64_t now,
	        struct store_receipt **receipts, size_t *n_receipts, size_t *n_deleted);
	int (*queue_keys)(struct store *st, store_key_cb cb, void *arg);

	int (*block_add)(struct store *st, const char *blocker, const char *blocked, int64_t now);
	int (*block_remove)(struct store *st, const char *blocker, const char *blocked);
	int (*block_check)(
	        struct store *st, const char *blocker, const char *blocked, int *is_blocked);
	/* reverse: list the users who block name instead of those name blocks. */
	int (*block_list)(struct store *st, const char *name, int reverse, size_t limit,
	        store_name_cb cb, void *arg);

	int (*auth_locked)(struct store *st, const char *name, int64_t now, int64_t *locked_until);
	int (*auth_fail)(struct store *st, const char *name, int64_t now, uint32_t max_failures,
	        uint32_t duration, uint32_t *failures, int64_t *locked_until);
	int (*auth_reset)(struct store *st, const char *name);

	int (*invite_create)(struct store *st, const uint8_t *hash, const char *created_by,
	        int64_t now, int64_t expires);
	int (*invite_use)(struct store *st, const uint8_t *hash, const char *used_by, int64_t now);

	int (*prune)(struct store *st, int64_t now);

	/* Files (issue 6). */
	int (*file_create)(struct store *st, const struct store_file *f,
	        char (*recipients)[STORE_NAME_MAX + 1], size_t n);
	int (*file_get)(struct store *st, const uint8_t *id, struct store_file *out);
	int (*file_role)(
	        struct store *st, const uint8_t *id, const char *name, enum store_file_role *role);
	int (*file_set_complete)(struct store *st, const uint8_t *id);
	int (*file_done)(
	        struct store *st, const uint8_t *id, const char *name, uint32_t *remaining);
	int (*file_delete)(struct store *st, const uint8_t *id);
	int (*file_usage)(struct store *st, const char *uploader, uint64_t *bytes);
	int (*file_list_expired)(
	        struct store *st, int64_t before, size_t limit, store_file_cb cb, void *arg);

	/* Groups: ids are STORE_GROUP_ID_BYTES, changes checked as store.h says. */
	int (*group_create)(struct store *st, const uint8_t *id, const char *owner,
	        const struct store_group_change *ch);
	int (*group_get)(struct store *st, const uint8_t *id, struct store_group *out);
	int (*group_apply)(
	        struct store *st, const uint8_t *id, const struct store_group_change *ch);
	int (*group_delete)(struct store *st, const uint8_t *id);
	int (*group_is_member)(struct store *st, const uint8_t *id, const char *name, int *member);
	int (*group_members)(
	        struct store *st, const uint8_t *id, size_t limit, store_name_cb cb, void *arg);
	int (*group_changes)(struct store *st, const uint8_t *id, uint64_t after, size_t limit,
	        store_group_change_cb cb, void *arg);
	int (*group_count_for)(struct store *st, const char *name, uint32_t *count);
};

struct store {
	const struct store_ops *ops;
	int in_batch;
	char error[256];
};

/* Record a printf-style message for store_last_error(). */
void store_set_error(struct store *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* store_set_error() with a va_list, for backends' own printf-style helpers. */
void store_vset_error(struct store *st, const char *fmt, va_list ap)
        __attribute__((format(printf, 2, 0)));

#endif
