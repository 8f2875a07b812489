/* Running a helper program to its end: a CNI plugin (CNI spec, section 2:
 * configuration on stdin, result or error JSON on stdout) or the OCI runtime.
 *
 * The program is started with posix_spawn (never fork: netd is threaded) in a
 * process group of its own, with an empty signal mask and default signal
 * dispositions, only fds 0-2 open (pipes), and exactly the environment
 * given. Its stdout is bounded (SPAWN_OUTPUT_MAX: more kills it), its
 * stderr is kept up to SPAWN_STDERR_MAX bytes (the rest is read and
 * dropped), and it gets timeout_ms to finish: then its whole process group is
 * killed. Blocks the calling thread for the plugin's run time.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/error.h"

#define SPAWN_OUTPUT_MAX (1024 * 1024)
#define SPAWN_STDERR_MAX (64 * 1024)

struct spawn_req {
	const char *path;  /* the executable */
	char *const *argv; /* NULL-terminated; NULL for { path } */
	char *const *env;  /* NULL-terminated "KEY=value" list, the whole environment */
	const char *input; /* written to its stdin, which is then closed */
	size_t input_len;
	unsigned timeout_ms;
	/* stdin, stdout and stderr on /dev/null, nothing captured (out and
	 * errout come back ""): for a program that leaves a process behind
	 * holding its stdio (runc run --detach), which must not keep our
	 * pipes open. input must be empty. */
	bool quiet;
};

struct spawn_result {
	int status; /* waitpid() status */
	char *out;  /* stdout, NUL-terminated (malloc'd, may be "") */
	size_t out_len;
	char *errout; /* stderr, NUL-terminated, at most SPAWN_STDERR_MAX bytes */
};

/* Run the plugin to its end. 0: it exited (with any status; *res filled,
 * release with spawn_result_done). -ETIMEDOUT: killed at the timeout.
 * -EFBIG: killed for writing more than SPAWN_OUTPUT_MAX to stdout.
 * Other negative errnos: it could not be started. res is untouched unless 0
 * is returned. */
int spawn_run(const struct spawn_req *x, struct spawn_result *res, struct cric_err *err);

void spawn_result_done(struct spawn_result *res);

/* A descriptor of a program started by spawn_start(): fd target is a dup of
 * source (>= 0), or else the file path opened with flags (0600 when made). */
struct spawn_fd {
	int target;
	int source;
	const char *path;
	int flags;
};

/* Start path (argv, and env as the whole environment) without waiting for
 * it: an empty signal mask and default dispositions (daemons block and
 * ignore signals their helpers must not inherit), a session of its own
 * when new_session, the n descriptors of map and, when close_above >= 0,
 * none above close_above (else only what is not O_CLOEXEC). *pid; -errno. */
int spawn_start(const char *path, char *const argv[], char *const env[], const struct spawn_fd *map,
		size_t n, bool new_session, int close_above, pid_t *pid);
