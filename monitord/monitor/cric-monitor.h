/* cric-monitor, inside: the monitor's state and what its files share
 * (cric-monitor.c: arguments, setup, the log and the run loop; create.c:
 * sockets, the runtime's create, reaping). Not for use outside
 * monitord/monitor/; monitor.h states the monitor's contract. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "logfmt.h"

struct monitor {
	/* arguments */
	const char *id, *bundle, *runtime, *runtime_root, *log_path, *dir;
	const char *cgroup_parent, *cgroup_path;
	bool tty, open_stdin;
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
/* Run the runtime's create; fill init_pid, or return a negative errno with
 * errbuf telling why (the runtime's stderr). */
int create_container(struct monitor *m);
