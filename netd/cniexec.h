/* Running one CNI plugin executable (CNI spec, section 2: execution
 * protocol): configuration on stdin, result or error JSON on stdout.
 *
 * The plugin is started with posix_spawn (never fork: netd is threaded) in a
 * process group of its own, with an empty signal mask and default signal
 * dispositions, only fds 0-2 open (pipes), and exactly the environment
 * given. Its stdout is bounded (CNI_EXEC_OUTPUT_MAX: more kills it), its
 * stderr is kept up to CNI_EXEC_STDERR_MAX bytes (the rest is read and
 * dropped), and it gets timeout_ms to finish: then its whole process group is
 * killed. Blocks the calling thread for the plugin's run time.
 */
#pragma once

#include <stddef.h>

#include "common/error.h"

#define CNI_EXEC_OUTPUT_MAX (1024 * 1024)
#define CNI_EXEC_STDERR_MAX (64 * 1024)

struct cni_exec {
	const char *path;  /* the plugin executable */
	char *const *env;  /* NULL-terminated "KEY=value" list, the whole environment */
	const char *input; /* written to its stdin, which is then closed */
	size_t input_len;
	unsigned timeout_ms;
};

struct cni_exec_result {
	int status; /* waitpid() status */
	char *out;  /* stdout, NUL-terminated (malloc'd, may be "") */
	size_t out_len;
	char *errout; /* stderr, NUL-terminated, at most CNI_EXEC_STDERR_MAX bytes */
};

/* Run the plugin to its end. 0: it exited (with any status; *res filled,
 * release with cni_exec_result_done). -ETIMEDOUT: killed at the timeout.
 * -EFBIG: killed for writing more than CNI_EXEC_OUTPUT_MAX to stdout.
 * Other negative errnos: it could not be started. res is untouched unless 0
 * is returned. */
int cni_exec_run(const struct cni_exec *x, struct cni_exec_result *res, struct cric_err *err);

void cni_exec_result_done(struct cni_exec_result *res);
