/* cric-monitor: its sockets, the runtime's `create` and the children it
 * reaps (see cric-monitor.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cric-monitor.h"
#include "monitor.h"

extern char **environ;

/* ---- sockets ---- */

/* name is relative to the monitor's directory, its working directory:
 * sun_path has 108 bytes, a directory under a long root more. */
int listen_unix(const char *name)
{
	const char *path = name;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	unlink(path);
	mode_t old = umask(0177);
	int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || listen(fd, 8) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

/* runc hands the pty master over the console socket (SCM_RIGHTS). */
static int receive_console(struct monitor *m)
{
	int c = accept4(m->console_fd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return errno == EAGAIN ? 0 : -errno;
	char data[256];
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct iovec iov = { data, sizeof(data) };
	struct msghdr msg = { .msg_iov = &iov,
			      .msg_iovlen = 1,
			      .msg_control = u.buf,
			      .msg_controllen = sizeof(u.buf) };
	ssize_t n = recvmsg(c, &msg, MSG_CMSG_CLOEXEC);
	int r = n < 0 ? -errno : -EPROTO;
	struct cmsghdr *cm = n >= 0 ? CMSG_FIRSTHDR(&msg) : NULL;
	if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
	    cm->cmsg_len == CMSG_LEN(sizeof(int))) {
		memcpy(&m->out_fd, CMSG_DATA(cm), sizeof(int));
		r = 0;
	}
	close(c);
	return r;
}

/* ---- runc create ---- */

static int spawn_runtime(struct monitor *m, int in, int out, int err)
{
	char pidfile[PATH_MAX], console[PATH_MAX];
	path_in_dir(m, MONITOR_CONTAINER_PID, pidfile, sizeof(pidfile));
	/* runc resolves it from the bundle: reach our directory through our
	 * working directory, in few bytes. */
	snprintf(console, sizeof(console), "/proc/%d/cwd/%s", (int)getpid(),
		 MONITOR_CONSOLE_SOCKET);
	char images[PATH_MAX], work[PATH_MAX];
	snprintf(work, sizeof(work), "%s/%s", m->bundle, MONITOR_RESTORE_DIR);
	snprintf(images, sizeof(images), "%s/%s/checkpoint", m->bundle, MONITOR_RESTORE_DIR);
	char *argv[32];
	int a = 0;
	argv[a++] = (char *)m->runtime;
	argv[a++] = "--root";
	argv[a++] = (char *)m->runtime_root;
	if (m->restore) {
		/* The container's processes from CRIU's images, running when
		 * runc returns (--detach: reparented to us, the subreaper);
		 * the options CRI-O restores with. runc hands CRIU its own
		 * stdio for the container's (descriptors.json): ours. */
		const char *const r[] = { "restore",           "--detach",
					  "--image-path",      images,
					  "--work-path",       work,
					  "--tcp-established", "--file-locks",
					  "--ext-unix-sk" };
		for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++)
			argv[a++] = (char *)r[i];
	} else {
		argv[a++] = "create";
	}
	argv[a++] = "--bundle";
	argv[a++] = (char *)m->bundle;
	argv[a++] = "--pid-file";
	argv[a++] = pidfile;
	if (m->tty) {
		argv[a++] = "--console-socket";
		argv[a++] = console;
	}
	argv[a++] = (char *)m->id;
	argv[a] = NULL;

	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in, 0);
	posix_spawn_file_actions_adddup2(&fa, out, 1);
	posix_spawn_file_actions_adddup2(&fa, err, 2);
	posix_spawnattr_init(&at);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
					  POSIX_SPAWN_SETPGROUP);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &all);
	posix_spawnattr_setpgroup(&at, 0);
	int r = posix_spawn(&m->runc_pid, m->runtime, &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	return -r;
}

/* Our ends of the container's stdio; the runtime's ends in io[3]. */
static int make_stdio(struct monitor *m, int io[3])
{
	int p[2];
	io[0] = io[1] = io[2] = -1;
	if (m->open_stdin) {
		if (pipe2(p, O_CLOEXEC) < 0)
			return -errno;
		io[0] = p[0];
		m->in_fd = p[1];
	} else if ((io[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
		return -errno;
	}
	if (m->tty) {
		/* The container's stdio is the pty: the runtime's own output
		 * (its errors) still comes on pipes. */
		if ((io[1] = open("/dev/null", O_WRONLY | O_CLOEXEC)) < 0)
			return -errno;
	} else {
		if (pipe2(p, O_CLOEXEC) < 0)
			return -errno;
		m->out_fd = p[0];
		io[1] = p[1];
	}
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	m->err_fd = p[0];
	io[2] = p[1];
	return 0;
}

void reap(struct monitor *m)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid == m->runc_pid) {
			m->runc_done = true;
			m->runc_status = status;
		} else if (m->init_pid > 0 && pid == m->init_pid) {
			m->init_done = true;
			m->init_status = status;
		}
	}
}

/* Drain what signalfd holds; true when asked to stop. */
bool read_signals(struct monitor *m)
{
	struct signalfd_siginfo si;
	bool stop = false;
	while (read(m->sig_fd, &si, sizeof(si)) == sizeof(si))
		stop |= si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT;
	reap(m);
	return stop;
}

static void collect_runtime_stderr(struct monitor *m)
{
	char buf[4096];
	ssize_t n = read(m->err_fd, buf, sizeof(buf));
	if (n <= 0)
		return;
	size_t k = (size_t)n;
	if (k > sizeof(m->errbuf) - 1 - m->errlen)
		k = sizeof(m->errbuf) - 1 - m->errlen;
	memcpy(m->errbuf + m->errlen, buf, k);
	m->errlen += k;
	m->errbuf[m->errlen] = '\0';
}

static long long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for runc create to end (collecting its stderr, taking the pty).
 * -ETIMEDOUT or -EINTR (SIGTERM) kill it. */
static int wait_runtime(struct monitor *m)
{
	fcntl(m->err_fd, F_SETFL, O_NONBLOCK);
	long long end = mono_ms() + MONITOR_CREATE_TIMEOUT_MS;
	int r = 0;
	while (!m->runc_done) {
		struct pollfd p[3] = { { m->sig_fd, POLLIN, 0 },
				       { m->err_fd, POLLIN, 0 },
				       { m->console_fd, POLLIN, 0 } };
		long long left = end - mono_ms();
		if (left <= 0) {
			r = -ETIMEDOUT;
			break;
		}
		if (poll(p, m->console_fd >= 0 ? 3 : 2, (int)left) < 0 && errno != EINTR)
			return -errno;
		if (p[1].revents)
			collect_runtime_stderr(m);
		if (p[2].revents && receive_console(m) < 0)
			say("receive the console from the runtime failed");
		if (p[0].revents && read_signals(m)) {
			r = -EINTR;
			break;
		}
	}
	if (r < 0) {
		kill(-m->runc_pid, SIGKILL);
		waitpid(m->runc_pid, NULL, 0);
		return r;
	}
	collect_runtime_stderr(m);
	return 0;
}

static int read_init_pid(struct monitor *m)
{
	char path[PATH_MAX], buf[32] = "";
	path_in_dir(m, MONITOR_CONTAINER_PID, path, sizeof(path));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	long v = n > 0 ? strtol(buf, NULL, 10) : 0;
	if (v <= 1 || v > INT_MAX)
		return -EPROTO;
	m->init_pid = (pid_t)v;
	return 0;
}

/* Run runc create; fill init_pid, or return an error with errbuf telling
 * why (the runtime's stderr). */
int create_container(struct monitor *m)
{
	int io[3];
	int r = make_stdio(m, io);
	if (r == 0 && m->tty) {
		m->console_fd = listen_unix(MONITOR_CONSOLE_SOCKET);
		r = m->console_fd < 0 ? m->console_fd : 0;
	}
	if (r == 0)
		r = spawn_runtime(m, io[0], io[1], io[2]);
	for (int i = 0; i < 3; i++)
		if (io[i] >= 0)
			close(io[i]);
	if (r < 0) {
		snprintf(m->errbuf, sizeof(m->errbuf), "start %s: %s", m->runtime, strerror(-r));
		return r;
	}
	/* The pod's cgroup, now: the first migration in a cgroup v1 hierarchy
	 * waits for an RCU grace period (the kernel's cgroup_threadgroup_rwsem),
	 * which then overlaps the runtime's start instead of preceding it. The
	 * runtime's own process stays where the monitor was (its init joins the
	 * container's cgroup); the monitor joins before it reports "ok" and
	 * runs the container's life in the pod's cgroup, as before. */
	if ((r = join_cgroups(m)) < 0) {
		kill(-m->runc_pid, SIGKILL);
		waitpid(m->runc_pid, NULL, 0);
		snprintf(m->errbuf, sizeof(m->errbuf), "join the pod's cgroup: %s", strerror(-r));
		return r;
	}
	r = wait_runtime(m);
	if (r < 0) {
		snprintf(m->errbuf, sizeof(m->errbuf), "%s %s: %s", m->runtime,
			 m->restore ? "restore" : "create",
			 r == -ETIMEDOUT ? "timed out" : "interrupted");
		return r;
	}
	if (!WIFEXITED(m->runc_status) || WEXITSTATUS(m->runc_status) != 0)
		return -EIO; /* errbuf has what it said */
	if (m->tty && m->out_fd < 0) {
		snprintf(m->errbuf, sizeof(m->errbuf), "the runtime sent no console");
		return -EPROTO;
	}
	if ((r = read_init_pid(m)) < 0)
		snprintf(m->errbuf, sizeof(m->errbuf), "read the container's pid file: %s",
			 strerror(-r));
	return r;
}
