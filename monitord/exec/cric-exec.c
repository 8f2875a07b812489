/* cric-exec: runs one `runc exec` for monitord's ExecSync as a child
 * subreaper, so that everything the exec starts on the host's side is ours
 * to kill and to reap (monitord is threaded and reaps only the pids it
 * spawned). libc and the kernel only; see monitord/execsync.h for the
 * contract with monitord. Usage:
 *
 *   cric-exec <timeout ms, 0 for none> <runtime> <runtime args...>
 *
 * fd 0-2 are the exec's stdio (monitord's pipes); fd 3 (EXEC_REPORT_FD) is
 * the report pipe. The runtime runs in a session of its own (so does
 * everything the exec'd command starts, inside the container's pid
 * namespace too, unless it calls setsid() itself). Then:
 *   - the runtime exits: what is left of its session is killed, and the
 *     report is "exit <wait status>\n";
 *   - the timeout passes, or monitord closes the report pipe (it gave up or
 *     died): the session is killed and the report is "timeout\n";
 *   - it cannot start the runtime: "error <why>\n".
 * The report is written once every process of the session is gone and
 * every child of ours is reaped, so when monitord reads it nothing of the
 * exec remains but zombies of the container's own init (orphans inside
 * the container's pid namespace are its children, never ours).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "exec.h"

#define MAX_PROCS 4096
#define KILL_ROUNDS 200 /* x 5 ms: the session's processes die or we give up */

struct proc {
	pid_t pid, ppid, pgrp, sid;
	char state;
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One line on the report fd (monitord may be gone: then nobody reads). */
static void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void report(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n <= 0)
		return;
	size_t len = (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1;
	if (write(EXEC_REPORT_FD, buf, len) < 0)
		return;
}

static bool read_proc(const char *name, struct proc *p)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%s/stat", name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	const char *end = strrchr(buf, ')');
	int ppid, pgrp, sid;
	if (!end || sscanf(end + 1, " %c %d %d %d", &p->state, &ppid, &pgrp, &sid) != 4)
		return false;
	p->pid = (pid_t)atoi(name);
	p->ppid = ppid;
	p->pgrp = pgrp;
	p->sid = sid;
	return true;
}

/* SIGKILL every live process of the exec: in the runtime's session or
 * process group, or a descendant of one that is (the exec'd process of a
 * tty exec makes a session of its own, its parent is the runtime). Pids as
 * the host sees them (/proc is the host's). Returns how many were live. */
static int kill_session(pid_t leader)
{
	static struct proc ps[MAX_PROCS];
	static bool ours[MAX_PROCS];
	int n = 0;
	DIR *d = opendir("/proc");
	if (!d)
		return 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < MAX_PROCS) {
		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		if (read_proc(e->d_name, &ps[n]))
			n++;
	}
	closedir(d);
	for (int i = 0; i < n; i++)
		ours[i] = ps[i].pid == leader || ps[i].sid == leader || ps[i].pgrp == leader;
	/* Descendants of ours, to a fixed point. */
	for (bool more = true; more;) {
		more = false;
		for (int i = 0; i < n; i++) {
			if (ours[i])
				continue;
			for (int j = 0; j < n; j++)
				if (ours[j] && ps[i].ppid == ps[j].pid) {
					ours[i] = more = true;
					break;
				}
		}
	}
	int live = 0;
	for (int i = 0; i < n; i++) {
		if (!ours[i] || ps[i].pid == getpid() || ps[i].pid <= 1 || ps[i].state == 'Z' ||
		    ps[i].state == 'X')
			continue;
		kill(ps[i].pid, SIGKILL);
		live++;
	}
	return live;
}

/* Kill the session until nothing of it lives, reaping what becomes ours
 * meanwhile (the leader stays unreaped until the end: its pid, the session
 * id, cannot be reused while we look). */
static void kill_all(pid_t leader)
{
	for (int i = 0; i < KILL_ROUNDS && kill_session(leader) > 0; i++) {
		struct timespec ts = { 0, 5 * 1000000L };
		nanosleep(&ts, NULL);
	}
}

static void reap_all(void)
{
	while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
		;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: cric-exec TIMEOUT_MS RUNTIME [ARGS...]\n");
		return 2;
	}
	char *end;
	long long timeout_ms = strtoll(argv[1], &end, 10);
	if (*end || timeout_ms < 0) {
		report("error bad timeout \"%s\"\n", argv[1]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		report("error PR_SET_CHILD_SUBREAPER: %s\n", strerror(errno));
		return 1;
	}
	/* The runtime gets default signals and an empty mask, its own session,
	 * our stdio; not the report fd. */
	posix_spawnattr_t at;
	posix_spawn_file_actions_t fa;
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_init(&at);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
					  POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &all);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addclose(&fa, EXEC_REPORT_FD);
	pid_t runtime;
	char *env[] = { "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL };
	int r = posix_spawn(&runtime, argv[2], &fa, &at, argv + 2, env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (r != 0) {
		report("error start \"%s\": %s\n", argv[2], strerror(r));
		return 1;
	}
	/* Our copies of the exec's stdio: only the exec may hold them, so
	 * monitord sees their end when the exec's processes are gone. */
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (int fd = 0; fd <= 2; fd++)
		if (null >= 0)
			dup2(null, fd);

	int pidfd = (int)syscall(SYS_pidfd_open, runtime, 0);
	int64_t until = timeout_ms > 0 ? mono_ms() + timeout_ms : INT64_MAX;
	int status = 0;
	bool timed_out = false;
	for (;;) {
		struct pollfd p[2] = { { EXEC_REPORT_FD, 0, 0 }, { pidfd, POLLIN, 0 } };
		int64_t left = until == INT64_MAX ? 1000 : until - mono_ms();
		if (left <= 0) {
			timed_out = true;
			break;
		}
		/* Without a pidfd (old kernel) look every 10 ms. */
		int wait_ms = pidfd < 0 ? 10 : left > 1000 ? 1000 : (int)left;
		int k = poll(p, pidfd < 0 ? 1 : 2, wait_ms);
		if (k < 0 && errno != EINTR)
			wait_ms = 10;
		if (p[0].revents & (POLLERR | POLLHUP)) {
			timed_out = true; /* monitord gave up */
			break;
		}
		siginfo_t si = { 0 };
		/* WNOWAIT: the runtime stays a zombie, its pid (the session's
		 * id) taken, until the session is gone. */
		if (waitid(P_PID, (id_t)runtime, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
		    si.si_pid == runtime) {
			break;
		}
	}
	kill_all(runtime);
	while (waitpid(runtime, &status, 0) < 0 && errno == EINTR)
		;
	reap_all();
	if (timed_out)
		report("timeout\n");
	else
		report("exit %d\n", status);
	return 0;
}
