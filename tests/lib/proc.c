/* Running real programs from tests; see proc.h. */
#include "config.h"

#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"

extern char **environ;

struct proc {
	pid_t pid;
	int outfd;   /* the unlinked file standard output goes to */
	int errfd;   /* and standard error */
	int reaped;  /* waitpid has collected it */
	int wstatus; /* its wait status once reaped */
	int timed_out;
	size_t capture_max;
};

/* Milliseconds on the monotonic clock. */
static int64_t
proc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleep a little, growing from 1 ms to 20 ms as a wait goes on. */
static void
proc_nap(int *ms)
{
	struct timespec ts;

	ts.tv_sec = 0;
	ts.tv_nsec = (long)*ms * 1000000L;
	nanosleep(&ts, NULL);
	if (*ms < 20)
		*ms *= 2;
}

/* An anonymous read-write temporary file (unlinked at once), or -1. */
static int
proc_tmpfile(void)
{
	const char *dir = getenv("TMPDIR");
	char path[4096];
	int fd, saved;

	if (dir == NULL || *dir == '\0')
		dir = "/tmp";
	snprintf(path, sizeof(path), "%s/proc-XXXXXX", dir);
	if ((fd = mkostemp(path, O_CLOEXEC)) == -1)
		return -1;
	saved = errno;
	unlink(path);
	errno = saved;
	return fd;
}

/* Write all of buf to fd. */
static int
proc_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* 1 if entry ("NAME=..." or "NAME") names the same variable as change. */
static int
proc_env_same(const char *entry, const char *change)
{
	size_t n = strcspn(change, "=");

	return strncmp(entry, change, n) == 0 && (entry[n] == '=' || entry[n] == '\0');
}

/* The environment for the child: ours, less every variable changed, plus the settings. */
static char **
proc_build_env(const char *const *changes)
{
	size_t nenv = 0, nchg = 0, i, j, k = 0;
	char **envp;
	int replaced;

	while (environ[nenv] != NULL)
		nenv++;
	while (changes != NULL && changes[nchg] != NULL)
		nchg++;
	if ((envp = calloc(nenv + nchg + 1, sizeof(*envp))) == NULL)
		return NULL;
	for (i = 0; i < nenv; i++) {
		replaced = 0;
		for (j = 0; j < nchg && !replaced; j++)
			replaced = proc_env_same(environ[i], changes[j]);
		if (!replaced)
			envp[k++] = environ[i];
	}
	for (j = 0; j < nchg; j++)
		if (strchr(changes[j], '=') != NULL)
			envp[k++] = (char *)(uintptr_t)changes[j];
	envp[k] = NULL;
	return envp;
}

/* In the child: report errno through the pipe and leave without running atexit handlers. */
static void __attribute__((noreturn)) proc_child_fail(int pipefd)
{
	int e = errno;

	if (write(pipefd, &e, sizeof(e)) < 0) {
		/* Nothing more can be done in a child that failed to exec. */
	}
	_exit(127);
}

int
proc_start(struct proc **out, const char *const argv[], const struct proc_opts *opts)
{
	static const struct proc_opts none;
	struct proc *p = NULL;
	char **envp = NULL;
	int infd = -1, report[2] = {-1, -1}, e = 0, saved = 0, r = -1;
	ssize_t n;

	*out = NULL;
	if (opts == NULL)
		opts = &none;
	if (argv == NULL || argv[0] == NULL) {
		errno = EINVAL;
		return -1;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return -1;
	p->outfd = p->errfd = -1;
	p->pid = -1;
	p->capture_max = opts->capture_max != 0 ? opts->capture_max : PROC_DEFAULT_CAPTURE;
	if ((envp = proc_build_env(opts->env)) == NULL)
		goto out;
	if ((p->outfd = proc_tmpfile()) == -1 || (p->errfd = proc_tmpfile()) == -1)
		goto out;
	if (opts->input != NULL) {
		if ((infd = proc_tmpfile()) == -1 ||
		        proc_write_all(infd, opts->input, opts->inputlen) != 0 ||
		        lseek(infd, 0, SEEK_SET) != 0)
			goto out;
	} else if ((infd = open("/dev/null", O_RDONLY | O_CLOEXEC)) == -1)
		goto out;
	if (pipe2(report, O_CLOEXEC) != 0)
		goto out;
	fflush(NULL);
	if ((p->pid = fork()) == -1)
		goto out;
	if (p->pid == 0) {
		/* Only async-signal-safe calls from here to exec. */
		setpgid(0, 0);
		if (dup2(infd, STDIN_FILENO) == -1 || dup2(p->outfd, STDOUT_FILENO) == -1 ||
		        dup2(p->errfd, STDERR_FILENO) == -1)
			proc_child_fail(report[1]);
		if (opts->cwd != NULL && chdir(opts->cwd) != 0)
			proc_child_fail(report[1]);
		signal(SIGPIPE, SIG_DFL);
		if (strchr(argv[0], '/') != NULL)
			execve(argv[0], (char *const *)(uintptr_t)argv, envp);
		else
			execvpe(argv[0], (char *const *)(uintptr_t)argv, envp);
		proc_child_fail(report[1]);
	}
	/* Set the group from this side too, so that proc_kill works at once. */
	setpgid(p->pid, p->pid);
	close(report[1]);
	report[1] = -1;
	do
		n = read(report[0], &e, sizeof(e));
	while (n == -1 && errno == EINTR);
	if (n == (ssize_t)sizeof(e)) {
		/* The exec failed: collect the child and report its errno. */
		waitpid(p->pid, NULL, 0);
		p->pid = -1;
		saved = e;
		goto out;
	}
	*out = p;
	p = NULL;
	r = 0;
out:
	if (r != 0 && saved == 0)
		saved = errno;
	if (infd != -1)
		close(infd);
	if (report[0] != -1)
		close(report[0]);
	if (report[1] != -1)
		close(report[1]);
	if (p != NULL) {
		if (p->outfd != -1)
			close(p->outfd);
		if (p->errfd != -1)
			close(p->errfd);
		free(p);
	}
	free(envp);
	if (r != 0)
		errno = saved;
	return r;
}

pid_t
proc_pid(const struct proc *p)
{
	return p->pid;
}

int
proc_kill(struct proc *p, int sig)
{
	if (p->reaped) {
		errno = ESRCH;
		return -1;
	}
	return kill(-p->pid, sig);
}

/* Collect the child if it has ended; 1 if it has, 0 if not, -1 on error. */
static int
proc_poll(struct proc *p)
{
	pid_t w;

	if (p->reaped)
		return 1;
	do
		w = waitpid(p->pid, &p->wstatus, WNOHANG);
	while (w == -1 && errno == EINTR);
	if (w == -1)
		return -1;
	if (w == 0)
		return 0;
	p->reaped = 1;
	return 1;
}

int
proc_alive(struct proc *p)
{
	int r = proc_poll(p);

	return r < 0 ? -1 : !r;
}

/* Up to max bytes of an output file into a new NUL-terminated string. */
static int
proc_slurp(int fd, size_t max, char **out, size_t *len, int *truncated)
{
	struct stat st;
	size_t size, have = 0;
	ssize_t n;
	char *buf;

	*out = NULL;
	*len = 0;
	*truncated = 0;
	if (fstat(fd, &st) != 0)
		return -1;
	size = (size_t)st.st_size;
	if (size > max) {
		size = max;
		*truncated = 1;
	}
	if ((buf = malloc(size + 1)) == NULL)
		return -1;
	while (have < size) {
		n = pread(fd, buf + have, size - have, (off_t)have);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		have += (size_t)n;
	}
	buf[have] = '\0';
	*out = buf;
	*len = have;
	return 0;
}

int
proc_wait_output(struct proc *p, const char *needle, int from_stdout, int timeout_ms)
{
	int64_t deadline = proc_now_ms() + (timeout_ms > 0 ? timeout_ms : PROC_DEFAULT_TIMEOUT_MS);
	char *text = NULL;
	size_t len = 0;
	int truncated, nap = 1, ended;

	for (;;) {
		ended = proc_poll(p);
		if (proc_slurp(from_stdout ? p->outfd : p->errfd, p->capture_max, &text, &len,
		            &truncated) != 0)
			return -1;
		if (strstr(text, needle) != NULL) {
			free(text);
			return 0;
		}
		free(text);
		if (ended == 1)
			errno = ECHILD;
		if (ended != 0)
			return -1;
		if (proc_now_ms() >= deadline) {
			errno = ETIMEDOUT;
			return -1;
		}
		proc_nap(&nap);
	}
}

int
proc_wait(struct proc *p, struct proc_result *res, int timeout_ms)
{
	int64_t deadline = 0;
	int nap = 1, done, r = -1, saved = 0;
	pid_t w;

	memset(res, 0, sizeof(*res));
	res->status = -1;
	if (timeout_ms == 0)
		timeout_ms = PROC_DEFAULT_TIMEOUT_MS;
	if (timeout_ms > 0)
		deadline = proc_now_ms() + timeout_ms;
	while ((done = proc_poll(p)) == 0) {
		if (timeout_ms > 0 && proc_now_ms() >= deadline) {
			kill(-p->pid, SIGKILL);
			p->timed_out = 1;
			do
				w = waitpid(p->pid, &p->wstatus, 0);
			while (w == -1 && errno == EINTR);
			if (w == -1) {
				saved = errno;
				goto out;
			}
			p->reaped = 1;
			break;
		}
		proc_nap(&nap);
	}
	if (done == -1) {
		saved = errno;
		goto out;
	}
	res->timed_out = p->timed_out;
	if (WIFEXITED(p->wstatus)) {
		res->exited = 1;
		res->status = WEXITSTATUS(p->wstatus);
	} else if (WIFSIGNALED(p->wstatus))
		res->signal = WTERMSIG(p->wstatus);
	if (proc_slurp(p->outfd, p->capture_max, &res->out, &res->outlen, &res->out_truncated) !=
	                0 ||
	        proc_slurp(p->errfd, p->capture_max, &res->err, &res->errlen,
	                &res->err_truncated) != 0) {
		saved = errno;
		goto out;
	}
	r = 0;
out:
	if (r != 0)
		proc_result_free(res);
	close(p->outfd);
	close(p->errfd);
	free(p);
	if (r != 0)
		errno = saved;
	return r;
}

int
proc_run(struct proc_result *res, const char *const argv[], const struct proc_opts *opts)
{
	struct proc *p;

	memset(res, 0, sizeof(*res));
	res->status = -1;
	if (proc_start(&p, argv, opts) != 0)
		return -1;
	return proc_wait(p, res, opts != NULL ? opts->timeout_ms : 0);
}

int
proc_runl(struct proc_result *res, const struct proc_opts *opts, const char *arg0, ...)
{
	const char *argv[64];
	va_list ap;
	size_t n = 0;

	argv[n++] = arg0;
	va_start(ap, arg0);
	while (n < sizeof(argv) / sizeof(argv[0]) - 1 &&
	        (argv[n] = va_arg(ap, const char *)) != NULL)
		n++;
	va_end(ap);
	if (n == sizeof(argv) / sizeof(argv[0]) - 1) {
		errno = E2BIG;
		return -1;
	}
	argv[n] = NULL;
	return proc_run(res, argv, opts);
}

void
proc_result_free(struct proc_result *res)
{
	free(res->out);
	free(res->err);
	res->out = res->err = NULL;
	res->outlen = res->errlen = 0;
}
