/*
 * Reading passphrases: from the terminal with echo off, or from the first
 * line of a file for scripts.  Passphrases live in sodium_malloc'd memory
 * (guarded, never swapped where the system allows) and are wiped and freed
 * with passphrase_free().  The caller owns every passphrase returned.
 *
 * The terminal functions change the terminal's settings and the process's
 * signal handlers while they wait, and restore both before returning (a signal
 * that arrives meanwhile is re-raised after the terminal is restored): they
 * are not thread-safe.  libsodium must be initialised (sotto_crypto_init).
 */
#ifndef SOTTO_KEYS_PASSPHRASE_H
#define SOTTO_KEYS_PASSPHRASE_H

#include <stddef.h>

#include "crypto/err.h"

#define PASSPHRASE_MAX 1023 /* bytes, not counting the NUL */

/*
 * 1 if a person can be asked: standard input is a terminal and /dev/tty opens.
 * Programs must not prompt otherwise.
 */
int passphrase_can_ask(void);

/*
 * Print prompt on /dev/tty, read one line with echo off, and return it without
 * its newline.  SOTTO_ERR_IO if there is no terminal, SOTTO_ERR_RANGE if the
 * line is longer than PASSPHRASE_MAX, SOTTO_ERR_CLOSED if the terminal closed
 * (end of file) before anything was typed, SOTTO_ERR_AGAIN if a signal
 * (such as SIGINT) interrupted and did not end the process.
 */
int passphrase_ask(char **out, const char *prompt) SOTTO_WUR;

/*
 * Ask for a new passphrase twice (prompt, then again_prompt); SOTTO_ERR_VERIFY
 * if the two differ.  An empty passphrase is returned as "".
 */
int passphrase_ask_new(char **out, const char *prompt, const char *again_prompt) SOTTO_WUR;

/*
 * The first line of path without its line ending ("\n" or "\r\n"); an empty
 * file gives "".  SOTTO_ERR_NOTFOUND, SOTTO_ERR_IO (errno says why),
 * SOTTO_ERR_RANGE if the first line is longer than PASSPHRASE_MAX, or
 * SOTTO_ERR_FORMAT if it holds a NUL byte.
 */
int passphrase_read_file(char **out, const char *path) SOTTO_WUR;

/* A copy of s in guarded memory, for passphrases that come from elsewhere. */
int passphrase_dup(char **out, const char *s) SOTTO_WUR;

/* Wipe and free a passphrase; NULL is fine. */
void passphrase_free(char *pass);

#endif
