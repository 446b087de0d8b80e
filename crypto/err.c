/* Error strings for enum sotto_err. */
#include "config.h"

#include "err.h"

static const char *const sotto_errstr[] = {
        [0] = "success",
        [-SOTTO_ERR_NOMEM] = "out of memory",
        [-SOTTO_ERR_INVALID] = "invalid argument",
        [-SOTTO_ERR_CRYPTO] = "cryptographic library failure",
        [-SOTTO_ERR_VERIFY] = "verification failed",
        [-SOTTO_ERR_SHORT] = "data truncated or buffer too small",
        [-SOTTO_ERR_RANGE] = "value out of range",
        [-SOTTO_ERR_IO] = "input/output error",
        [-SOTTO_ERR_EXISTS] = "file exists",
        [-SOTTO_ERR_PASSPHRASE] = "incorrect passphrase",
        [-SOTTO_ERR_FORMAT] = "malformed or unrecognised data",
        [-SOTTO_ERR_UNSUPPORTED] = "unsupported algorithm, type or size",
        [-SOTTO_ERR_WEAKKEY] = "key agreement produced an all-zero secret",
        [-SOTTO_ERR_NOTFOUND] = "not found",
        [-SOTTO_ERR_PERM] = "permission denied",
        [-SOTTO_ERR_AGAIN] = "temporarily unavailable",
        [-SOTTO_ERR_PROTO] = "protocol violation",
        [-SOTTO_ERR_CLOSED] = "connection closed",
};

const char *
sotto_strerror(int err)
{
	if (err > 0 || err <= SOTTO_ERR__MIN)
		return "unknown error";
	return sotto_errstr[-err];
}
