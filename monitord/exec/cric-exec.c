/* cric-exec: runs one `runc exec` for monitord's ExecSync as a child
 * subreaper, so that everything the exec starts on the host's side is ours
 * to kill and to reap (monitord is threaded and reaps only the pids it
 * spawned). libc and the kernel only; see monitord/execsync.h for the
 * contract with monitord. Usage:
 *
 *   cric-exec [--detached] [--cgroup-of <pid>] <timeout ms, 0 for none> <pid file>
 *             <runtime> <args...>
 *
 * --cgroup-of names the container's init: the processes of the exec are
 * then looked for among the members of its cgroup and our own descendants
 * (where else could they be: runc puts the exec'd process in the
 * container's cgroup, and what is left of the runtime's side is reparented
 * to us), not among every process of the host (a scan of /proc costs
 * milliseconds per call on a busy node: most of a probe's time). Without
 * it, or when that cgroup or /proc/<pid>/task/<tid>/children cannot be
 * read, every process is looked at.
 *
 * fd 0-2 are the exec's stdio (monitord's pipes); fd 3 (EXEC_REPORT_FD) is
 * the report pipe. The runtime runs in a session of its own; runc makes
 * the exec'd process the leader of another, inside the container, which
 * everything it starts inherits unless it calls setsid() itself. Then:
 *   - the exec'd process exits (its pid is in <pid file>, which the
 *     runtime's args make it write: runc exec --pid-file): what is left of
 *     the session but the runtime is killed (runc waits for every holder of
 *     the exec's stdio, a background child too, before it answers), then
 *     the runtime exits and the report is "exit <its wait status>\n";
 *   - the timeout passes, or monitord closes the report pipe (it gave up or
 *     died): the session is killed and the report is "timeout\n";
 *   - it cannot start the runtime: "error <why>\n".
 * The report is written once every process of the session is gone and
 * every child of ours is reaped, so when monitord reads it nothing of the
 * exec remains but zombies of the container's own init (orphans inside
 * the container's pid namespace are its children, never ours).
 *
 * --detached (the streaming server's tty execs: `runc exec -d -t
 * --console-socket`): the runtime starts the process and exits; a runtime
 * that fails is reported as "exit <its status>"; else the process, now our
 * child (we are the subreaper it is reparented to), is waited for: when it
 * exits what is left of its session is killed and the report is "exit <its
 * wait status>"; the timeout or the report pipe's closing kill its session
 * and report "timeout".
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

#define MAX_PROCS   4096
#define KILL_ROUNDS 200 /* x 5 ms: the session's processes die or we give up */
/* After the exec'd process ended and its session was killed, the runtime
 * gets this long to answer its status before it is killed too. */
#define RUNTIME_GRACE_MS 5000

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

/* The container's cgroup.procs (from --cgroup-of); NULL: scan all of /proc. */
static char *cgroup_procs;

/* cgroup.procs of the cgroup pid is in: the unified hierarchy's, else the
 * first v1 hierarchy's that can be read, under /sys/fs/cgroup. NULL when
 * none can. */
static char *find_cgroup_procs(pid_t pid)
{
	char path[64], line[PATH_MAX];
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	bool v2 = access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0;
	char *found = NULL;
	while (!found && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		/* "<id>:<controllers>:<path>" */
		char *ctl = strchr(line, ':'), *cg = ctl ? strchr(ctl + 1, ':') : NULL;
		if (!cg || cg[1] != '/' || strstr(cg, "/.."))
			continue;
		*cg++ = '\0';
		ctl++;
		if (v2 != (*ctl == '\0'))
			continue;
		const char *dir = strncmp(ctl, "name=", 5) == 0 ? ctl + 5 : ctl;
		char *p = NULL;
		if (asprintf(&p, "/sys/fs/cgroup%s%s%s/cgroup.procs", v2 ? "" : "/", v2 ? "" : dir,
			     cg) < 0)
			break;
		if (access(p, R_OK) == 0)
			found = p;
		else
			free(p);
	}
	fclose(f);
	return found;
}

/* Append the pids in file (whitespace-separated) to pids; false when it
 * cannot be read. */
static bool read_pids(const char *file, pid_t *pids, int *n, int max)
{
	FILE *f = fopen(file, "re");
	if (!f)
		return false;
	long v;
	while (*n < max && fscanf(f, "%ld", &v) == 1)
		if (v > 0 && v < INT_MAX)
			pids[(*n)++] = (pid_t)v;
	fclose(f);
	return true;
}

/* Append the children of every thread of pid; false when the kernel has no
 * children files (CONFIG_PROC_CHILDREN) or pid is gone. */
static bool read_children(pid_t pid, pid_t *pids, int *n, int max)
{
	char path[96];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return false;
	bool ok = true;
	struct dirent *e;
	while (ok && (e = readdir(d)))
		if (e->d_name[0] >= '1' && e->d_name[0] <= '9') {
			snprintf(path, sizeof(path), "/proc/%d/task/%s/children", (int)pid,
				 e->d_name);
			ok = read_pids(path, pids, n, max) || errno != ENOENT;
		}
	closedir(d);
	return ok;
}

/* Every process but ours: what /proc lists. */
static int all_procs(struct proc *ps)
{
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
	return n;
}

/* The processes the exec may have left: the container cgroup's members
 * and our descendants (with --cgroup-of), else all. */
static int candidates(struct proc *ps)
{
	static pid_t pids[MAX_PROCS];
	int np = 0, n = 0;
	if (!cgroup_procs || !read_pids(cgroup_procs, pids, &np, MAX_PROCS / 2))
		return all_procs(ps);
	/* Our descendants, breadth first: pids[first..] grows as we go. */
	int first = np;
	if (!read_children(getpid(), pids, &np, MAX_PROCS))
		return all_procs(ps);
	for (int i = first; i < np; i++)
		read_children(pids[i], pids, &np, MAX_PROCS); /* gone: no children */
	for (int i = 0; i < np; i++) {
		char name[16];
		snprintf(name, sizeof(name), "%d", (int)pids[i]);
		if (read_proc(name, &ps[n]))
			n++;
	}
	return n;
}

/* SIGKILL every live process of the exec but spare: in the runtime's
 * session or process group, in the exec'd process's (runc makes it a
 * session leader inside the container), or a descendant of one that is.
 * Pids as the host sees them (/proc is the host's); a session's id cannot
 * be reused while a member lives. Returns how many were live. */
static int kill_session(pid_t leader, pid_t main_pid, pid_t spare)
{
	static struct proc ps[MAX_PROCS];
	static bool ours[MAX_PROCS];
	int n = candidates(ps);
	for (int i = 0; i < n; i++)
		ours[i] = ps[i].pid == leader || ps[i].sid == leader || ps[i].pgrp == leader ||
			  (main_pid > 0 && (ps[i].sid == main_pid || ps[i].pgrp == main_pid));
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
		if (!ours[i] || ps[i].pid == getpid() || ps[i].pid == spare || ps[i].pid <= 1 ||
		    ps[i].state == 'Z' || ps[i].state == 'X')
			continue;
		kill(ps[i].pid, SIGKILL);
		live++;
	}
	return live;
}

/* Kill the session until nothing of it lives, reaping what becomes ours
 * meanwhile (the leader stays unreaped until the end: its pid, the session
 * id, cannot be reused while we look). */
static void kill_all(pid_t leader, pid_t main_pid, pid_t spare)
{
	for (int i = 0; i < KILL_ROUNDS && kill_session(leader, main_pid, spare) > 0; i++) {
		struct timespec ts = { 0, 5 * 1000000L };
		nanosleep(&ts, NULL);
	}
}

/* Reap every child; one that does not end (an orphan that made a session
 * of its own, reparented to us: with runc only the runtime's own processes
 * live on the host's side) is ours to kill. */
static void reap_all(void)
{
	for (;;) {
		pid_t r = waitpid(-1, NULL, WNOHANG);
		if (r > 0 || (r < 0 && errno == EINTR))
			continue;
		if (r < 0)
			return; /* ECHILD: none left */
		static struct proc ps[MAX_PROCS];
		int n = 0;
		DIR *d = opendir("/proc");
		struct dirent *e;
		while (d && (e = readdir(d)) && n < MAX_PROCS)
			if (e->d_name[0] >= '1' && e->d_name[0] <= '9' &&
			    read_proc(e->d_name, &ps[n]))
				n++;
		if (d)
			closedir(d);
		for (int i = 0; i < n; i++)
			if (ps[i].ppid == getpid() && ps[i].state != 'Z')
				kill(ps[i].pid, SIGKILL);
		struct timespec ts = { 0, 5 * 1000000L };
		nanosleep(&ts, NULL);
	}
}

/* The exec'd process's pid (as the host sees it), once the runtime has
 * written it; 0 until then. */
static pid_t read_pid_file(const char *path)
{
	char buf[32];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	long v = strtol(buf, NULL, 10);
	return v > 1 && v < INT_MAX ? (pid_t)v : 0;
}

static int pidfd_open_(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static bool runtime_exited(pid_t runtime)
{
	siginfo_t si = { 0 };
	/* WNOWAIT: the runtime stays a zombie, its pid (the session's id)
	 * taken, until the session is gone. */
	return waitid(P_PID, (id_t)runtime, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
	       si.si_pid == runtime;
}

/* Start the runtime in a session of its own, with default signals, an
 * empty mask, our stdio and not the report fd. */
static int start_runtime(char **argv, pid_t *pid)
{
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
	char *env[] = { "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL };
	int r = posix_spawn(pid, argv[0], &fa, &at, argv, env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	return r;
}

/* Watch the runtime until the exec ends: 1 when timeout_ms passed (0:
 * none) or monitord gave up, 0 when the runtime exited or its grace after
 * the exec'd process ended ran out, -1 when poll failed. *main_pid gets the
 * exec'd process (0 if the runtime never wrote its pid file); *emptied
 * whether its session was emptied after it ended. */
static int watch_exec(pid_t runtime, const char *pid_file, long long timeout_ms, pid_t *main_pid,
		      bool *emptied)
{
	int runtime_fd = pidfd_open_(runtime), main_fd = -1;
	bool main_done = false;
	int64_t until = timeout_ms > 0 ? mono_ms() + timeout_ms : INT64_MAX;
	int64_t rest_until = INT64_MAX;
	int ret;
	*main_pid = 0;
	for (;;) {
		if (!*main_pid && (*main_pid = read_pid_file(pid_file)) > 0) {
			main_fd = pidfd_open_(*main_pid);
			main_done = main_fd < 0;
		}
		/* The exec'd process has ended: what it left in the session
		 * goes (the runtime waits for every holder of its stdio),
		 * then the runtime answers its exit status. */
		if (main_done && rest_until == INT64_MAX) {
			kill_all(runtime, *main_pid, runtime);
			rest_until = mono_ms() + RUNTIME_GRACE_MS;
		}
		int64_t now = mono_ms();
		if (now >= until) {
			ret = 1;
			break;
		}
		if (now >= rest_until) {
			ret = 0;
			break;
		}
		struct pollfd p[3] = { { EXEC_REPORT_FD, 0, 0 },
				       { runtime_fd, POLLIN, 0 },
				       { main_done ? -1 : main_fd, POLLIN, 0 } };
		int64_t end_at = until < rest_until ? until : rest_until;
		int64_t left = end_at == INT64_MAX ? 1000 : end_at - now;
		/* Look for the pid file (and, without pidfds, for the exit)
		 * every 5 ms until the runtime has written it. */
		int wait_ms = (!*main_pid || runtime_fd < 0) && left > 5 ? 5
			      : left > 1000                              ? 1000
									 : (int)left;
		if (poll(p, 3, wait_ms) < 0 && errno != EINTR)
			return -1;
		if (p[0].revents & (POLLERR | POLLHUP)) {
			ret = 1; /* monitord gave up */
			break;
		}
		if (p[2].revents)
			main_done = true;
		if (runtime_exited(runtime)) {
			ret = 0;
			break;
		}
	}
	*emptied = rest_until != INT64_MAX;
	return ret;
}

/* Detached: the runtime has exited 0 after writing the pid file; wait
 * for the process. Returns the report's status. */
static int watch_detached(const char *pid_file, long long timeout_ms, int *status)
{
	pid_t main_pid = read_pid_file(pid_file);
	if (main_pid <= 0) {
		report("error the runtime wrote no pid\n");
		return -1;
	}
	int main_fd = pidfd_open_(main_pid);
	int64_t until = timeout_ms > 0 ? mono_ms() + timeout_ms : INT64_MAX;
	int timed_out = 0;
	for (;;) {
		siginfo_t si = { 0 };
		if (waitid(P_PID, (id_t)main_pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 ||
		    si.si_pid == main_pid)
			break; /* ended (or not ours: ECHILD) */
		int64_t now = mono_ms();
		if (now >= until) {
			timed_out = 1;
			break;
		}
		struct pollfd p[2] = { { EXEC_REPORT_FD, 0, 0 }, { main_fd, POLLIN, 0 } };
		int64_t left = until == INT64_MAX ? 1000 : until - now;
		if (main_fd < 0 && left > 50)
			left = 50;
		if (poll(p, 2, left > 1000 ? 1000 : (int)left) < 0 && errno != EINTR)
			return -1;
		if (p[0].revents & (POLLERR | POLLHUP)) {
			timed_out = 1; /* monitord gave up */
			break;
		}
	}
	kill_all(main_pid, main_pid, 0);
	*status = 255 << 8;
	while (waitpid(main_pid, status, 0) < 0 && errno == EINTR)
		;
	return timed_out;
}

int main(int argc, char **argv)
{
	bool detached = argc > 1 && strcmp(argv[1], "--detached") == 0;
	if (detached) {
		argv++;
		argc--;
	}
	if (argc > 2 && strcmp(argv[1], "--cgroup-of") == 0) {
		long init = strtol(argv[2], NULL, 10);
		if (init > 1 && init < INT_MAX)
			cgroup_procs = find_cgroup_procs((pid_t)init);
		argv += 2;
		argc -= 2;
	}
	if (argc < 4) {
		fprintf(stderr,
			"usage: cric-exec [--detached] [--cgroup-of PID] TIMEOUT_MS PID_FILE "
			"RUNTIME [ARGS...]\n");
		return 2;
	}
	char *end;
	long long timeout_ms = strtoll(argv[1], &end, 10);
	const char *pid_file = argv[2];
	if (*end || timeout_ms < 0) {
		report("error bad timeout \"%s\"\n", argv[1]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		report("error PR_SET_CHILD_SUBREAPER: %s\n", strerror(errno));
		return 1;
	}
	pid_t runtime;
	int r = start_runtime(argv + 3, &runtime);
	if (r != 0) {
		report("error start \"%s\": %s\n", argv[3], strerror(r));
		return 1;
	}
	/* Our copies of the exec's stdio: only the exec may hold them, so
	 * monitord sees their end when the exec's processes are gone. */
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (int fd = 0; fd <= 2; fd++)
		if (null >= 0)
			dup2(null, fd);

	if (detached) {
		int status = 0;
		siginfo_t si = { 0 };
		/* The runtime: it exits once the process runs (or failed).
		 * Its pidfd wakes us at its exit (without one: a look every
		 * 5 ms). */
		int runtime_fd = pidfd_open_(runtime);
		struct pollfd p[2] = { { EXEC_REPORT_FD, 0, 0 }, { runtime_fd, POLLIN, 0 } };
		int64_t until = timeout_ms > 0 ? mono_ms() + timeout_ms : INT64_MAX;
		while (waitid(P_PID, (id_t)runtime, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
		       si.si_pid != runtime) {
			int64_t left = until == INT64_MAX ? 1000 : until - mono_ms();
			int wait_ms = runtime_fd < 0 ? 5
				      : left > 1000  ? 1000
				      : left < 0     ? 0
						     : (int)left;
			if (left <= 0 ||
			    (poll(p, 2, wait_ms) > 0 && (p[0].revents & (POLLERR | POLLHUP)))) {
				kill_all(runtime, read_pid_file(pid_file), 0);
				while (waitpid(runtime, NULL, 0) < 0 && errno == EINTR)
					;
				reap_all();
				unlink(pid_file);
				report("timeout\n");
				return 0;
			}
		}
		while (waitpid(runtime, &status, 0) < 0 && errno == EINTR)
			;
		int timed_out = 0;
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			timed_out = watch_detached(pid_file, timeout_ms, &status);
		reap_all();
		unlink(pid_file);
		if (timed_out < 0)
			return 1;
		if (timed_out)
			report("timeout\n");
		else
			report("exit %d\n", status);
		return 0;
	}

	pid_t main_pid;
	bool emptied;
	int timed_out = watch_exec(runtime, pid_file, timeout_ms, &main_pid, &emptied);
	if (timed_out < 0)
		return 1;
	/* Once the exec'd process had ended and its session was emptied,
	 * nothing in it could start anything more: one scan of /proc saved. */
	if (timed_out || !emptied)
		kill_all(runtime, main_pid, 0);
	else
		kill(runtime, SIGKILL); /* past its grace, or a no-op on its zombie */
	int status = 0;
	while (waitpid(runtime, &status, 0) < 0 && errno == EINTR)
		;
	reap_all();
	unlink(pid_file);
	if (timed_out)
		report("timeout\n");
	else
		report("exit %d\n", status);
	return 0;
}
