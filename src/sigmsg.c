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
