/* Wire error sentences and the username rule; see proto.h. */
#include "config.h"

#include <string.h>

#include "src/proto.h"

static const char *const proto_errstr[] = {
        [SOTTO__ERROR_CODE__ERR_NONE] = "no error",
        [SOTTO__ERROR_CODE__ERR_PROTOCOL] = "the other side broke the sotto protocol",
        [SOTTO__ERROR_CODE__ERR_VERSION] =
                "the server does not speak this version of the protocol; "
                "upgrade the program",
        [SOTTO__ERROR_CODE__ERR_TOO_LARGE] = "the request is larger than the server accepts",
        [SOTTO__ERROR_CODE__ERR_NOT_AUTHENTICATED] = "you need to log in first",
        [SOTTO__ERROR_CODE__ERR_BAD_USERNAME] = "a username is 1 to 32 letters, digits, dots, "
                                                "dashes or underscores, starting with a "
                                                "letter or digit",
        [SOTTO__ERROR_CODE__ERR_USER_EXISTS] = "that username is already taken",
        [SOTTO__ERROR_CODE__ERR_NO_SUCH_USER] = "there is no such user on this server",
        [SOTTO__ERROR_CODE__ERR_AUTH_FAILED] = "the server did not accept your identity key "
                                               "for this username",
        [SOTTO__ERROR_CODE__ERR_LOCKED_OUT] = "too many failed logins: the account is locked "
                                              "for a while",
        [SOTTO__ERROR_CODE__ERR_THROTTLED] = "too many failed attempts from your address: "
                                             "wait before trying again",
        [SOTTO__ERROR_CODE__ERR_REGISTRATION_CLOSED] = "this server does not accept new accounts",
        [SOTTO__ERROR_CODE__ERR_BAD_INVITE] = "the invite token is missing, unknown, already "
                                              "used or expired",
        [SOTTO__ERROR_CODE__ERR_RATE_LIMITED] = "you are sending requests too fast: slow down",
        [SOTTO__ERROR_CODE__ERR_BAD_REQUEST] = "the server rejected a malformed request",
        [SOTTO__ERROR_CODE__ERR_INTERNAL] = "the server hit an internal error: try again later",
        [SOTTO__ERROR_CODE__ERR_UNKNOWN_TYPE] = "the server does not support this request",
        [SOTTO__ERROR_CODE__ERR_IDLE_TIMEOUT] = "the server closed the session after a period "
                                                "of inactivity",
        [SOTTO__ERROR_CODE__ERR_NO_PREKEYS] = "that user has no prekeys on the server yet",
        [SOTTO__ERROR_CODE__ERR_QUEUE_FULL] = "the recipient's queue is full: try again later",
        [SOTTO__ERROR_CODE__ERR_BAD_KEY] = "the server rejected the key as malformed or of an "
                                           "unsupported type",
        [SOTTO__ERROR_CODE__ERR_BAD_SIGNATURE] = "a signature in the request did not verify",
        [SOTTO__ERROR_CODE__ERR_ALREADY_AUTHENTICATED] = "this session is already logged in",
        [SOTTO__ERROR_CODE__ERR_TIMEOUT] = "the server closed the connection because the "
                                           "handshake or login took too long",
        [SOTTO__ERROR_CODE__ERR_TOO_MANY_CONNECTIONS] = "too many connections from your address",
        [SOTTO__ERROR_CODE__ERR_SHUTTING_DOWN] = "the server is shutting down",
        [SOTTO__ERROR_CODE__ERR_KICKED] = "an administrator closed your session",
        [SOTTO__ERROR_CODE__ERR_BANNED] = "this account is banned",
        [SOTTO__ERROR_CODE__ERR_ACCOUNT_DELETED] = "this account has been deleted",
        [SOTTO__ERROR_CODE__ERR_PERMISSION_DENIED] = "only an administrator may do that",
        [SOTTO__ERROR_CODE__ERR_REPLACED] = "you logged in again elsewhere, so this session "
                                            "was closed",
        [SOTTO__ERROR_CODE__ERR_FILE_TOO_LARGE] = "the file is larger than the server accepts",
        [SOTTO__ERROR_CODE__ERR_QUOTA_EXCEEDED] = "your files on the server would take more "
                                                  "space than your quota allows",
        [SOTTO__ERROR_CODE__ERR_NO_SUCH_FILE] = "the server has no such file for you: it was "
                                                "withdrawn, expired or already fetched",
        [SOTTO__ERROR_CODE__ERR_NOT_GROUP_OWNER] = "only the group's owner may change its "
                                                   "members",
        [SOTTO__ERROR_CODE__ERR_NO_SUCH_GROUP] = "there is no such group, or you are not a "
                                                 "member of it",
        [SOTTO__ERROR_CODE__ERR_GROUP_CONFLICT] = "the group changed meanwhile: fetch it and "
                                                  "try again",
        [SOTTO__ERROR_CODE__ERR_GROUP_LIMIT] = "the group has as many members, or the user is "
                                               "in as many groups, as the server allows",
        [SOTTO__ERROR_CODE__ERR_GROUP_EXISTS] = "another group already has that id",
};

const char *
proto_error_string(uint32_t code)
{
	if (code >= sizeof(proto_errstr) / sizeof(proto_errstr[0]) || proto_errstr[code] == NULL)
		return "the server reported an error this program does not know";
	return proto_errstr[code];
}

const char *
proto_error_name(uint32_t code)
{
	const ProtobufCEnumValue *v;

	if (code > INT32_MAX)
		return "ERR_UNKNOWN";
	v = protobuf_c_enum_descriptor_get_value(&sotto__error_code__descriptor, (int)code);
	return v == NULL ? "ERR_UNKNOWN" : v->name;
}

/* The byte classes of the username rule, without locale-dependent ctype. */
static int
proto_username_first(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int
proto_username_rest(unsigned char c)
{
	return proto_username_first(c) || c == '.' || c == '_' || c == '-';
}

int
proto_username_valid(const char *s)
{
	size_t i;

	if (s == NULL || !proto_username_first((unsigned char)s[0]))
		return 0;
	for (i = 1; s[i] != '\0'; i++) {
		if (i >= PROTO_USERNAME_MAX || !proto_username_rest((unsigned char)s[i]))
			return 0;
	}
	return 1;
}

int
proto_username_normalize(char out[PROTO_USERNAME_MAX + 1], const char *in)
{
	size_t i;

	out[0] = '\0';
	if (!proto_username_valid(in))
		return SOTTO_ERR_FORMAT;
	for (i = 0; in[i] != '\0'; i++) {
		unsigned char c = (unsigned char)in[i];

		out[i] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
	}
	out[i] = '\0';
	return 0;
}
