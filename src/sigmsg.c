/* Signed byte strings of the protocol; see sigmsg.h. */
#include "config.h"

#include <string.h>

#include "src/sigmsg.h"

int
sigmsg_login(struct buf *b, const uint8_t challenge[PROTO_CHALLENGE_BYTES],
        const uint8_t exporter[TLS_EXPORTER_BYTES])
{
	int r;

	if ((r = buf_put(b, PROTO_AUTH_CONTEXT, strlen(PROTO_AUTH_CONTEXT))) != 0 ||
	        (r = buf_put(b, challenge, PROTO_CHALLENGE_BYTES)) != 0 ||
	        (r = buf_put(b, exporter, TLS_EXPORTER_BYTES)) != 0)
		return r;
	return 0;
}

int
sigmsg_register(struct buf *b, const uint8_t challenge[PROTO_CHALLENGE_BYTES],
        const uint8_t exporter[TLS_EXPORTER_BYTES], const char *username)
{
	int r;

	if ((r = buf_put(b, PROTO_REGISTER_CONTEXT, strlen(PROTO_REGISTER_CONTEXT))) != 0 ||
	        (r = buf_put(b, challenge, PROTO_CHALLENGE_BYTES)) != 0 ||
	        (r = buf_put(b, exporter, TLS_EXPORTER_BYTES)) != 0 ||
	        (r = buf_put(b, username, strlen(username))) != 0)
		return r;
	return 0;
}

int
sigmsg_spk(struct buf *b, uint32_t id, const uint8_t pub[PROTO_PREKEY_BYTES], uint64_t created)
{
	int r;

	if ((r = buf_put(b, SIGMSG_SPK_CONTEXT, strlen(SIGMSG_SPK_CONTEXT))) != 0 ||
	        (r = buf_put_u32(b, id)) != 0 || (r = buf_put(b, pub, PROTO_PREKEY_BYTES)) != 0 ||
	        (r = buf_put_u64(b, created)) != 0)
		return r;
	return 0;
}

int
sigmsg_users_canonical(const char *const *users, size_t n)
{
	char norm[PROTO_USERNAME_MAX + 1];
	size_t i;

	if (users == NULL && n > 0)
		return 0;
	for (i = 0; i < n; i++) {
		if (users[i] == NULL || proto_username_normalize(norm, users[i]) != 0 ||
		        strcmp(norm, users[i]) != 0)
			return 0;
		if (i > 0 && strcmp(users[i - 1], users[i]) >= 0)
			return 0;
	}
	return 1;
}

int
sigmsg_group_change(struct buf *b, const uint8_t group_id[PROTO_GROUP_ID_BYTES], uint64_t serial,
        uint32_t op, const char *signer, const char *const *users, size_t n)
{
	size_t i;
	int r;

	if (group_id == NULL || signer == NULL || op > UINT8_MAX || n > UINT32_MAX ||
	        !sigmsg_users_canonical(users, n))
		return SOTTO_ERR_INVALID;
	if ((r = buf_put(b, PROTO_GROUP_CONTEXT, strlen(PROTO_GROUP_CONTEXT))) != 0 ||
	        (r = buf_put(b, group_id, PROTO_GROUP_ID_BYTES)) != 0 ||
	        (r = buf_put_u64(b, serial)) != 0 || (r = buf_put_u8(b, (uint8_t)op)) != 0 ||
	        (r = buf_put_string(b, signer, strlen(signer))) != 0 ||
	        (r = buf_put_u32(b, (uint32_t)n)) != 0)
		return r;
	for (i = 0; i < n; i++)
		if ((r = buf_put_string(b, users[i], strlen(users[i]))) != 0)
			return r;
	return 0;
}
