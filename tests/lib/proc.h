/*
 * Running real programs from tests: fork and exec a command with an argv,
 * optional bytes on its standard input, environment changes and a working
 * directory, and collect its exit status, standard output and standard error.
 *
 * proc_run() waits for the program (up to a timeout, after which its whole
 * process group is killed); proc_start() leaves it running, for servers, and
 * proc_wait_output(), proc_kill() and proc_wait() follow it.  Output goes to
 * unlinked temporary files rather than pipes, so a chatty program never
 * blocks on a full pipe; at most capture_max bytes of each stream are kept.
 *
 * Every function returns 0, or -1 with errno set when the program could not
 * be started or waited for (a failed exec is reported this way too, with the
 * exec's errno).  The caller owns each struct proc_result and frees it with
 * proc_result_free().  Not thread-safe (it forks); criterion runs each test
 * in its own process.
 */
#ifndef SOTTO_TESTS_PROC_H
#define SOTTO_TESTS_PROC_H

#include <sys/types.h>

#include <stddef.h>

#define PROC_DEFAULT_TIMEOUT_MS 30000
#define PROC_DEFAULT_CAPTURE    (1024 * 1024)

struct proc_opts {
	const void *input; /* bytes for standard input; NULL means /dev/null */
	size_t inputlen;
	const char *const *env; /* NULL-terminated "NAME=value" to set, "NAME" to unset */
	const char *cwd;        /* directory to run in, or NULL for the current one */
	int timeout_ms;         /* 0: PROC_DEFAULT_TIMEOUT_MS; negative: wait forever */
	size_t capture_max;     /* bytes kept per stream; 0: PROC_DEFAULT_CAPTURE */
};

struct proc_result {
	int exited;    /* 1 if the program exited (rather than died of a signal) */
	int status;    /* its exit status when exited, else -1 */
	int signal;    /* the signal that ended it, or 0 */
	int timed_out; /* 1 if it was killed because the timeout passed */
	char *out;     /* standard output, NUL-terminated (never NULL on success) */
	size_t outlen;
	int out_truncated; /* 1 if more than capture_max bytes were written */
	char *err;         /* standard error, likewise */
	size_t errlen;
	int err_truncated;
};

/* A program left running by proc_start(). */
struct proc;

/* Run argv (argv[0] is looked up in PATH unless it has a '/') and wait for it; opts may be NULL. */
int proc_run(struct proc_result *res, const char *const argv[], const struct proc_opts *opts);

/* proc_run() with the arguments listed, ending with (char *)NULL. */
int proc_runl(struct proc_result *res, const struct proc_opts *opts, const char *arg0, ...)
        __attribute__((sentinel));

/* Start argv in its own process group and return at once; opts may be NULL. */
int proc_start(struct proc **out, const char *const argv[], const struct proc_opts *opts);

/* The process id (also its process group id). */
pid_t proc_pid(const struct proc *p);

/* 1 while the program runs, 0 once it has ended (it is then collected), -1 on error. */
int proc_alive(struct proc *p);

/* Send sig to the program's whole process group. */
int proc_kill(struct proc *p, int sig);

/*
 * Wait until the program's standard error (or standard output, if from_stdout)
 * contains needle: 0 when it does, -1 with errno ETIMEDOUT after timeout_ms,
 * or ECHILD if the program exited first.
 */
int proc_wait_output(struct proc *p, const char *needle, int from_stdout, int timeout_ms);

/*
 * Wait for the program to end (killing its group with SIGKILL after
 * timeout_ms: 0 means PROC_DEFAULT_TIMEOUT_MS, negative forever), collect its
 * result, and free p in every case.
 */
int proc_wait(struct proc *p, struct proc_result *res, int timeout_ms);

void proc_result_free(struct proc_result *res);

#endif
