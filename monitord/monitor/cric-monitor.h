/* cric-monitor, inside: the monitor's state and what its files share
 * (cric-monitor.c: arguments, setup, the log and the run loop; create.c:
 * sockets, the runtime's create, reaping). Not for use outside
 * monitord/monitor/; monitor.h states the monitor's contract. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "logfmt.h"
#include "monitor.h"

struct pollfd;

/* One attacher (attach.c): a connection of the control socket. */
struct attacher {
	int fd; /* -1: a free slot */
	bool stdin_owner;
	uint8_t *out; /* frames not yet sent: out[out_off..out_len) */
	size_t out_off, out_len, out_cap;
	uint8_t *in; /* frames it sent, not yet acted on (a frame and a header) */
	size_t in_len;
};

struct monitor {
	/* arguments */
	const char *id, *bundle, *runtime, *runtime_root, *log_path, *dir;
	const char *cgroup_parent, *cgroup_path;
	bool tty, open_stdin, stdin_once;
	bool restore; /* runc restore from <bundle>/MONITOR_RESTORE_DIR, not create */
	unsigned long long log_size_max;
	/* state */
	int sync_fd, log_fd, sig_fd, ctl_fd, console_fd;
	int out_fd, err_fd, in_fd; /* our ends; out_fd is the pty master for tty */
	unsigned long long log_bytes;
	bool log_failed;
	pid_t runc_pid, init_pid;
	int runc_status, init_status;
	bool runc_done, init_done;
	char errbuf[4096]; /* runc's stderr while it creates */
	size_t errlen;
	struct logfmt_stream out, err;
	/* attachers */
	struct attacher att[MONITOR_ATTACH_MAX];
	bool stdin_owned, stdin_closed;
	uint8_t *stdin_buf; /* stdin not yet taken by the container */
	size_t stdin_len;
};

/* A line on stderr (monitor.log), timestamped. */
void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* <the monitor's directory>/name into buf. */
void path_in_dir(const struct monitor *m, const char *name, char *buf, size_t size);

/* A listening unix socket at name (relative to the monitor's directory,
 * its working directory), 0600: its fd or a negative errno. */
int listen_unix(const char *name);
/* Reap every child that exited, noting the runtime's and the init's status. */
void reap(struct monitor *m);
/* Drain what signalfd holds and reap; true when asked to stop. */
bool read_signals(struct monitor *m);
/* Join <hierarchy>/<cgroup parent> in every mounted cgroup hierarchy: 0 or
 * a negative errno (said on stderr). */
int join_cgroups(struct monitor *m);
/* Run the runtime's create, joining the cgroups (join_cgroups) while it
 * runs; fill init_pid, or return a negative errno with errbuf telling why
 * (the runtime's stderr, or the join's failure). */
int create_container(struct monitor *m);

/* attach.c: attachers (monitor.h states the protocol). */
void attach_init(struct monitor *m);
/* Take fd (a control connection that asked to attach): 0, or a negative
 * errno with why (the fd stays the caller's). */
int attach_add(struct monitor *m, int fd, bool want_stdin, const char **why);
/* Output of the container (stream: MONITOR_ATTACH_STDOUT/STDERR) to every
 * attacher; drops those past their backlog. */
void attach_output(struct monitor *m, int stream, const void *data, size_t n);
/* Fill ATTACH_POLLFDS entries of p; after poll, attach_poll_done acts on
 * them. */
#define ATTACH_POLLFDS (MONITOR_ATTACH_MAX + 1)
int attach_pollfds(struct monitor *m, struct pollfd *p);
void attach_poll_done(struct monitor *m, const struct pollfd *p);
/* The container exited and its output is drained: send the attachers what
 * is pending (a second at most), close them. */
void attach_finish(struct monitor *m);
