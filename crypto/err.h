/*
 * Error codes shared by every sotto module.  Functions that can fail return 0
 * or one of these negative values; sotto_strerror() gives a sentence for each.
 * The numeric values are stable: they appear on the wire and in logs.
 */
#ifndef SOTTO_ERR_H
#define SOTTO_ERR_H

#define SOTTO_WUR __attribute__((warn_unused_result))

enum sotto_err {
	SOTTO_OK = 0,
	SOTTO_ERR_NOMEM = -1,        /* out of memory */
	SOTTO_ERR_INVALID = -2,      /* invalid argument */
	SOTTO_ERR_CRYPTO = -3,       /* the crypto library failed */
	SOTTO_ERR_VERIFY = -4,       /* signature, tag or MAC did not verify */
	SOTTO_ERR_SHORT = -5,        /* input truncated or output buffer too small */
	SOTTO_ERR_RANGE = -6,        /* a length or value is out of range */
	SOTTO_ERR_IO = -7,           /* a system call failed; errno says why */
	SOTTO_ERR_EXISTS = -8,       /* the file exists */
	SOTTO_ERR_PASSPHRASE = -9,   /* wrong passphrase */
	SOTTO_ERR_FORMAT = -10,      /* malformed or foreign data */
	SOTTO_ERR_UNSUPPORTED = -11, /* unsupported algorithm, type or size */
	SOTTO_ERR_WEAKKEY = -12,     /* a key agreement produced an all-zero secret */
	SOTTO_ERR_NOTFOUND = -13,    /* no such file, user or object */
	SOTTO_ERR_PERM = -14,        /* permission denied */
	SOTTO_ERR_AGAIN = -15,       /* not yet: try again later */
	SOTTO_ERR_PROTO = -16,       /* protocol violation */
	SOTTO_ERR_CLOSED = -17,      /* the peer closed the connection */
	SOTTO_ERR__MIN = -18
};

/* A sentence (no trailing period) describing err; never NULL. */
const char *sotto_strerror(int err);

#endif
