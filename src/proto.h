/*
 * Protocol constants shared by sottod and the client, the sentences for the
 * wire error codes (enum Sotto__ErrorCode in sotto.proto), and the username
 * rule.  This header also brings in the protoc-c generated types; include it
 * rather than sotto.pb-c.h.  Everything here is thread-safe and allocates
 * nothing.
 */
#ifndef SOTTO_PROTO_H
#define SOTTO_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "crypto/err.h"

#ifndef PROTOBUF_C_VERSION_NUMBER
/*
 * Only a checker that skips system headers (cppcheck in make lint) gets
 * here; without this, the version test in the generated header stops it.
 * Include the generated header through this one.
 */
#define PROTOBUF_C_VERSION_NUMBER 1004001
#endif
#include "src/sotto.pb-c.h"

#define PROTO_VERSION_MAJOR 1
#define PROTO_VERSION_MINOR 0

#define PROTO_MSG_ID_BYTES    16 /* Send.msg_id, chosen by the sender */
#define PROTO_CHALLENGE_BYTES 32 /* HelloReply.challenge */
#define PROTO_PREKEY_BYTES    32 /* X25519 public prekeys */
#define PROTO_USERNAME_MAX    32 /* [a-z0-9][a-z0-9._-]{0,31} */

/* Files (issue 6); UploadBegin.recipients is bounded by PROTO_MAX_RECIPIENTS. */
#define PROTO_FILE_ID_BYTES  16             /* UploadBegin.file_id, chosen by the sender */
#define PROTO_FILE_CHUNK_MAX (65536 + 1024) /* UploadChunk.data; DownloadChunk.data <= 64 KiB */

/* Domain separation for the identity signatures of Login and RegisterUser. */
#define PROTO_AUTH_CONTEXT     "sotto-auth-v1"
#define PROTO_REGISTER_CONTEXT "sotto-register-v1"

/*
 * List lengths per frame.  The server answers ERR_BAD_REQUEST to requests
 * beyond them and never sends longer lists itself, which also keeps every
 * frame within frame.h's allocation bound.
 */
#define PROTO_MAX_RECIPIENTS 1024 /* SendMulti.recipients */
#define PROTO_MAX_OTKS       200  /* one-time prekeys per request */
#define PROTO_MAX_ACK_IDS    1024 /* DeliverAck.msg_ids, Delivered.receipts */
#define PROTO_MAX_WHO        1000 /* WhoReply.users, BlockedList.usernames */

/* Groups: users in one request (and GroupInfo.members), the id's size, the signed context. */
#define PROTO_MAX_GROUP_USERS 10000
#define PROTO_GROUP_ID_BYTES  16
#define PROTO_GROUP_CONTEXT   "sotto-group-v1"

/*
 * A sentence a person understands for a wire error code (lower case, no
 * final period, so it reads after "cannot log in: "); never NULL, also for
 * codes this build does not know.
 */
const char *proto_error_string(uint32_t code);

/* The code's name as in sotto.proto ("ERR_LOCKED_OUT"), or "ERR_UNKNOWN". */
const char *proto_error_name(uint32_t code);

/* 1 if s is a valid username as the wire carries it (any case), else 0. */
int proto_username_valid(const char *s);

/*
 * Copy the lower-case form of username in into out; SOTTO_ERR_FORMAT (out
 * set to "") if in does not match the username rule.
 */
int proto_username_normalize(char out[PROTO_USERNAME_MAX + 1], const char *in) SOTTO_WUR;

/*
 * protobuf-c declares string fields as char * even when a message is only
 * packed; this lends a const string to such a field without a cast warning.
 * The field must never be freed or written through.
 */
static inline char *
proto_str(const char *s)
{
	return (char *)(uintptr_t)s;
}

/* The same for bytes fields. */
static inline ProtobufCBinaryData
proto_bytes(const void *p, size_t len)
{
	ProtobufCBinaryData b;

	b.data = (uint8_t *)(uintptr_t)p;
	b.len = len;
	return b;
}

#endif
