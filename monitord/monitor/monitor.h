/* cric-monitor: one small process per container (libc and the kernel only).
 *
 * monitord starts it with posix_spawn (own session, stdin/stdout on
 * /dev/null, stderr on <dir>/monitor.log, fd 3 the sync pipe); it forks once
 * more and the first process exits at once, so monitord is never its parent
 * (monitord reaps that first process). The monitor then:
 *   - writes "pid <its pid>\n" on the sync fd;
 *   - lowers its oom_score_adj as far as the host lets it, becomes a child
 *     subreaper;
 *   - opens the log (mkdir -p of its directory), listens on <dir>/ctl.sock;
 *   - runs `<runtime> --root <root> create --bundle <bundle> --pid-file
 *     <dir>/container.pid [--console-socket <dir>/console.sock] <id>`, and
 *     while it runs joins <hierarchy>/<cgroup parent> in every mounted
 *     cgroup hierarchy (the runtime's process stays in the monitor's first
 *     cgroup; the container's init goes to its own);
 *     with --restore instead `<runtime> --root <root> restore --detach
 *     --image-path <bundle>/restore/checkpoint --work-path <bundle>/restore
 *     --tcp-established --file-locks --ext-unix-sk --bundle ... <id>` (a
 *     container from a checkpoint: running when it returns, its stdio the
 *     monitor's as for create);
 *   - writes <dir>/monitor.pid, then "ok <init pid>\n" on the sync fd, or
 *     "error <runtime's stderr>\n" (and exits, leaving nothing);
 *   - writes the container's stdout and stderr to the log (logfmt.h), answers
 *     the control socket, reaps every orphan, and when the container's init
 *     exits: drains the pipes, reads the OOM kill counter of the container's
 *     cgroup, writes <dir>/exit atomically and exits.
 *
 * The exit file is one JSON line:
 *   {"exit_code":N,"finished_at":NS,"oom_killed":B,"pid":P}
 * exit_code is 128+signal for a signalled init. SIGTERM to the monitor kills
 * the container's init (SIGKILL) and ends as above (exit code 137).
 *
 * Control socket (unix stream, 0600): one command line per connection, one
 * answer line: "reopen\n" -> "ok\n" once the log file is open anew (it
 * exists), or "error <why>\n" (the container is no longer running).
 *
 * "attach\n" or "attach stdin\n" -> "ok\n", then the connection stays and
 * carries frames both ways (the client sends nothing before the answer):
 * one type byte, the length as 4 bytes big-endian, then that many bytes
 * (at most MONITOR_ATTACH_FRAME_MAX).
 *   monitor -> attacher: MONITOR_ATTACH_STDOUT (the pty's stream for a
 *     tty container), MONITOR_ATTACH_STDERR: the container's output as it
 *     comes, the same bytes the log gets. Up to MONITOR_ATTACH_MAX attachers
 *     watch at once; one that does not read gets MONITOR_ATTACH_BUFFER
 *     bytes of backlog, then is dropped (the log never waits for one; its
 *     connection closes, maybe inside a frame). When
 *     the container exits its output is drained to the attachers (a second
 *     at most) and the connections close.
 *   attacher -> monitor: MONITOR_ATTACH_STDIN (from the stdin attacher
 *     only; written to the container's stdin, or its pty; the container's
 *     pace: the monitor stops reading the attacher while the container does
 *     not read), MONITOR_ATTACH_RESIZE (4 bytes: columns, rows, each 16-bit
 *     big-endian; for a tty container, from any attacher).
 * Closing the connection (or shutting down its write side) detaches.
 * "attach stdin" needs a container created with --stdin and no other stdin
 * attacher; with --stdin-once the container's stdin is closed when the
 * first stdin attacher detaches (for a tty, an end-of-file character, ^D,
 * is written to the pty instead), and later stdin attachers are refused.
 * Refusals: "error <why>\n".
 */
#pragma once

#define MONITOR_PID_FILE       "monitor.pid"
#define MONITOR_CONTAINER_PID  "container.pid"
#define MONITOR_EXIT_FILE      "exit"
#define MONITOR_CTL_SOCKET     "ctl.sock"
#define MONITOR_CONSOLE_SOCKET "console.sock"
#define MONITOR_LOG_FILE       "monitor.log"
#define MONITOR_SYNC_FD        3
/* Beneath the bundle: what a restore reads (CRIU's images in checkpoint/). */
#define MONITOR_RESTORE_DIR "restore"

#define MONITOR_ATTACH_STDIN     0
#define MONITOR_ATTACH_STDOUT    1
#define MONITOR_ATTACH_STDERR    2
#define MONITOR_ATTACH_RESIZE    4
#define MONITOR_ATTACH_HEADER    5
#define MONITOR_ATTACH_FRAME_MAX (64 * 1024)
#define MONITOR_ATTACH_MAX       8
#define MONITOR_ATTACH_BUFFER    (1024 * 1024)
/* The longest runc create may take before the monitor gives up. */
#define MONITOR_CREATE_TIMEOUT_MS (4 * 60 * 1000)
