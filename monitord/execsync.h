/* ExecSync: run a command in a running container and answer its output and
 * exit code (CRI RuntimeService.ExecSync).
 *
 * The command runs as `<runtime> --root <root> exec --pid-file <file>
 * [--env TERM=xterm] <id> <cmd...>`, with the runtime and root the container's monitor was started
 * with (read from its command line: /proc/<monitor pid>/cmdline of a
 * process that runs the monitor binary), under cric-exec
 * (monitord/exec/cric-exec.c), a short-lived child of monitord that is a
 * child subreaper: monitord is threaded and reaps only the pid it spawned,
 * the helper reaps everything the runtime leaves on the host's side. The
 * runtime runs in a session of its own; runc makes the exec'd process the
 * leader of another one inside the container, which whatever it starts
 * inherits. When the command ends, or at the timeout, every process of
 * those sessions (and every descendant of one) is killed with
 * SIGKILL and reaped before the call answers: a probe leaves nothing
 * behind, background children included (runc exec itself would wait for
 * a background child holding the exec's stdout: `sh -c 'daemon &'` would
 * otherwise run into the timeout, or forever with timeout 0). A process that left the session
 * on purpose (setsid(), a daemon) is not followed, as with every peer
 * runtime. Processes orphaned inside the container's pid namespace become
 * the children of the container's init, which reaps them (as for any
 * process of the container); nothing becomes a child of the host's PID 1.
 *
 * Timeout: `timeout_s` seconds (0: none), further bounded by the caller's
 * deadline (absolute CLOCK_REALTIME ns; 0 or IPC_NO_DEADLINE: none). At
 * either, the call answers -ETIMEDOUT "command timed out" (the kubelet
 * takes exactly DEADLINE_EXCEEDED for a failed probe).
 *
 * Output: stdout and stderr each up to `output_max` bytes (config
 * "monitord": {"exec_output_max": N}, default 16 MiB, as containerd's
 * cappedWriter and CRI-O do: the rest is read and dropped, the command is
 * not disturbed). Together they are further bounded to what one answer may
 * carry (EXECSYNC_ANSWER_MAX: the CRI answer and our envelope are 16 MiB at
 * most, the kubelet's gRPC client receives 16 MiB at most): past it the
 * larger stream is cut first, neither below half of the room. Truncation is
 * silent, as with the peers (the kubelet keeps a probe's output only for
 * its event message).
 *
 * tty containers: the exec gets TERM=xterm but no terminal (its stdout and
 * stderr stay apart, which is what a probe reads).
 *
 * Errors: unknown id -ENOENT; malformed id or empty command -EINVAL; the
 * container not running (created but not started: runc's exec.fifo still
 * in its state directory; exited; monitor gone) -EBUSY
 * (FAILED_PRECONDITION). A runtime that cannot exec (no such command...)
 * answers its own exit code and stderr, as its CLI does.
 *
 * Blocks the calling thread for the command's run time. Thread-safe.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/error.h"
#include "monitors.h"

#define EXECSYNC_OUTPUT_MAX_DEFAULT (16u * 1024 * 1024)
#define EXECSYNC_ANSWER_MAX         (16u * 1024 * 1024 - 64 * 1024)

struct execsync {
	char *helper; /* cric-exec */
	size_t output_max;
};

struct execsync_req {
	const char *id; /* a container id, or a unique prefix of one */
	char *const *cmd;
	size_t n_cmd;
	int64_t timeout_s;
	int64_t deadline_ns;
};

struct execsync_result {
	int exit_code;
	char *out, *err; /* malloc'd, not NUL-terminated */
	size_t out_len, err_len;
};

int execsync_open(const struct cric_config *cfg, struct execsync **ret, struct cric_err *err);
/* Accepts NULL. */
void execsync_free(struct execsync *x);

/* res is filled only on success; release it with execsync_result_done(). */
int execsync_run(const struct execsync *x, struct monitors *m, const struct execsync_req *req,
		 struct execsync_result *res, struct cric_err *err);
void execsync_result_done(struct execsync_result *res);

/* The container an exec (ExecSync, or the streaming server's Exec) may
 * run in: id_or_prefix resolved to its full id, checked running (the
 * errors above), and the runtime and root its monitor runs with. Release
 * with exec_target_done(). */
struct exec_target {
	char id[65];
	char *buf; /* holds runtime and root */
	const char *runtime, *root;
	bool tty;   /* the container's own */
	pid_t init; /* the container's init (cric-exec --cgroup-of) */
};
int execsync_target(struct monitors *m, const char *id_or_prefix, struct exec_target *t,
		    struct cric_err *err);
void exec_target_done(struct exec_target *t);

/* Cut out_len and err_len so that they add up to at most max: the larger
 * is cut first, neither below max / 2. Pure; for the unit tests. */
void execsync_fit(size_t *out_len, size_t *err_len, size_t max);
