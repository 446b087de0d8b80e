/* Passphrases from the terminal or a file; see passphrase.h. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "passphrase.h"

/* Signals that would otherwise leave the terminal with echo off. */
static const int passphrase_signals[] = {
        SIGALRM, SIGHUP, SIGINT, SIGPIPE, SIGQUIT, SIGTERM, SIGTSTP, SIGTTIN, SIGTTOU};
#define PASSPHRASE_NSIGNALS (sizeof(passphrase_signals) / sizeof(passphrase_signals[0]))

static volatile sig_atomic_t passphrase_caught[NSIG];

/* Note a signal; passphrase_ask restores the terminal and then re-raises it. */
static void
passphrase_on_signal(int sig)
{
	passphrase_caught[sig] = 1;
}

/* A zeroed guarded buffer of PASSPHRASE_MAX + 3 bytes (room for "\r\n" and a NUL). */
static char *
passphrase_alloc(void)
{
	char *p;

	if ((p = sodium_malloc(PASSPHRASE_MAX + 3)) != NULL)
		sodium_memzero(p, PASSPHRASE_MAX + 3);
	return p;
}

void
passphrase_free(char *pass)
{
	if (pass == NULL)
		return;
	sodium_memzero(pass, PASSPHRASE_MAX + 3);
	sodium_free(pass);
}

int
passphrase_dup(char **out, const char *s)
{
	size_t n = strlen(s);

	*out = NULL;
	if (n > PASSPHRASE_MAX)
		return SOTTO_ERR_RANGE;
	if ((*out = passphrase_alloc()) == NULL)
		return SOTTO_ERR_NOMEM;
	memcpy(*out, s, n);
	return 0;
}

int
passphrase_can_ask(void)
{
	int fd;

	if (!isatty(STDIN_FILENO))
		return 0;
	if ((fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC)) == -1)
		return 0;
	close(fd);
	return 1;
}

/* Write a whole string to the terminal, ignoring failures (the prompt is a courtesy). */
static void
passphrase_say(int fd, const char *s)
{
	size_t len = strlen(s);
	ssize_t n;

	while (len > 0) {
		n = write(fd, s, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		s += n;
		len -= (size_t)n;
	}
}

/*
 * One prompt and one line read with echo off, the terminal and signal handlers
 * restored afterwards; *caught reports the first signal that arrived (or 0).
 */
static int
passphrase_read_tty(int fd, const char *prompt, char *buf, size_t *len, int *caught)
{
	struct sigaction sa, saved[PASSPHRASE_NSIGNALS];
	struct termios old, quiet;
	size_t i;
	ssize_t n;
	char c;
	int r = 0, toolong = 0, eof = 0;

	*len = 0;
	*caught = 0;
	if (tcgetattr(fd, &old) != 0)
		return SOTTO_ERR_IO;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = passphrase_on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: read(2) must return EINTR */
	for (i = 0; i < PASSPHRASE_NSIGNALS; i++) {
		passphrase_caught[passphrase_signals[i]] = 0;
		sigaction(passphrase_signals[i], &sa, &saved[i]);
	}
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
	quiet.c_lflag |= ICANON;
	if (tcsetattr(fd, TCSAFLUSH, &quiet) != 0) {
		r = SOTTO_ERR_IO;
		goto restore;
	}
	passphrase_say(fd, prompt);
	for (;;) {
		for (i = 0; i < PASSPHRASE_NSIGNALS && *caught == 0; i++)
			if (passphrase_caught[passphrase_signals[i]])
				*caught = passphrase_signals[i];
		if (*caught != 0)
			break;
		n = read(fd, &c, 1);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			r = SOTTO_ERR_IO;
			break;
		}
		if (n == 0) {
			eof = 1;
			break;
		}
		if (c == '\n' || c == '\r')
			break;
		if (*len < PASSPHRASE_MAX)
			buf[(*len)++] = c;
		else
			toolong = 1;
	}
	c = 0;
	/* Echo was off, so the newline the person typed was not shown. */
	passphrase_say(fd, "\n");
	if (r == 0 && toolong)
		r = SOTTO_ERR_RANGE;
	else if (r == 0 && eof && *len == 0)
		r = SOTTO_ERR_CLOSED;
restore:
	while (tcsetattr(fd, TCSAFLUSH, &old) != 0 && errno == EINTR)
		;
	for (i = 0; i < PASSPHRASE_NSIGNALS; i++)
		sigaction(passphrase_signals[i], &saved[i], NULL);
	for (i = 0; i < PASSPHRASE_NSIGNALS; i++)
		if (passphrase_caught[passphrase_signals[i]] && *caught == 0)
			*caught = passphrase_signals[i];
	return r;
}

int
passphrase_ask(char **out, const char *prompt)
{
	char *buf = NULL;
	size_t len = 0;
	int fd = -1, r, caught = 0;

	*out = NULL;
	if ((fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC)) == -1)
		return SOTTO_ERR_IO;
	if ((buf = passphrase_alloc()) == NULL) {
		r = SOTTO_ERR_NOMEM;
		goto out;
	}
	for (;;) {
		sodium_memzero(buf, PASSPHRASE_MAX + 3);
		r = passphrase_read_tty(fd, prompt, buf, &len, &caught);
		if (caught == 0)
			break;
		/* The terminal is back to normal; now let the signal do what it does. */
		raise(caught);
		/* Still here: a stop signal was followed by SIGCONT, or it is ignored. */
		if (caught != SIGTSTP && caught != SIGTTIN && caught != SIGTTOU) {
			r = SOTTO_ERR_AGAIN;
			break;
		}
	}
	if (r != 0)
		goto out;
	buf[len] = '\0';
	*out = buf;
	buf = NULL;
out:
	passphrase_free(buf);
	if (fd != -1)
		close(fd);
	return r;
}

int
passphrase_ask_new(char **out, const char *prompt, const char *again_prompt)
{
	char *first = NULL, *second = NULL;
	int r;

	*out = NULL;
	if ((r = passphrase_ask(&first, prompt)) != 0)
		goto out;
	if ((r = passphrase_ask(&second, again_prompt)) != 0)
		goto out;
	if (strlen(first) != strlen(second) || sodium_memcmp(first, second, strlen(first)) != 0) {
		r = SOTTO_ERR_VERIFY;
		goto out;
	}
	*out = first;
	first = NULL;
out:
	passphrase_free(first);
	passphrase_free(second);
	return r;
}

int
passphrase_read_file(char **out, const char *path)
{
	char *buf = NULL, *nl;
	size_t have = 0, len;
	ssize_t n;
	int fd = -1, r = SOTTO_ERR_IO, saved = 0;

	*out = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
		saved = errno;
		r = errno == ENOENT ? SOTTO_ERR_NOTFOUND : SOTTO_ERR_IO;
		goto out;
	}
	if ((buf = passphrase_alloc()) == NULL) {
		r = SOTTO_ERR_NOMEM;
		goto out;
	}
	/* Read only as far as the longest line allowed, plus "\r\n". */
	while (have < PASSPHRASE_MAX + 2 && memchr(buf, '\n', have) == NULL) {
		n = read(fd, buf + have, PASSPHRASE_MAX + 2 - have);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			saved = errno;
			goto out;
		}
		if (n == 0)
			break;
		have += (size_t)n;
	}
	if ((nl = memchr(buf, '\n', have)) != NULL)
		len = (size_t)(nl - buf);
	else
		len = have;
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	if (len > PASSPHRASE_MAX) {
		r = SOTTO_ERR_RANGE;
		goto out;
	}
	if (memchr(buf, '\0', len) != NULL) {
		r = SOTTO_ERR_FORMAT;
		goto out;
	}
	sodium_memzero(buf + len, PASSPHRASE_MAX + 3 - len);
	*out = buf;
	buf = NULL;
	r = 0;
out:
	passphrase_free(buf);
	if (fd != -1)
		close(fd);
	if (saved != 0)
		errno = saved;
	return r;
}
