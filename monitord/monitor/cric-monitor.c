/* cric-monitor: the per-container monitor; see monitor.h for its contract.
 * Single threaded, libc and the kernel only, static-friendly. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cric-monitor.h"
#include "logfmt.h"
#include "monitor.h"

void say(const char *fmt, ...)
{
	char ts[LOGFMT_TS_LEN + 1] = "";
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	logfmt_timestamp(&now, ts, sizeof(ts));
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%s cric-monitor[%d]: ", ts, (int)getpid());
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n > 0) {
		ssize_t w = write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static void sync_say(struct monitor *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sync_say(struct monitor *m, const char *fmt, ...)
{
	if (m->sync_fd < 0)
		return;
	char line[4200];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	/* One line: newlines inside (runc's stderr) become blanks. */
	for (int i = 0; i < n; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[n++] = '\n';
	write_all(m->sync_fd, line, (size_t)n);
}

void path_in_dir(const struct monitor *m, const char *name, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s", m->dir, name);
}

/* ---- arguments ---- */

static void usage(void)
{
	fprintf(stderr,
		"usage: cric-monitor --id ID --bundle DIR --runtime PATH --runtime-root DIR "
		"--log-path FILE --dir DIR --cgroup-parent PATH [--cgroup-path PATH] "
		"[--tty] [--stdin [--stdin-once]] [--log-size-max BYTES] [--restore]\n");
}

static int parse_args(struct monitor *m, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "id", required_argument, NULL, 'i' },
		{ "bundle", required_argument, NULL, 'b' },
		{ "runtime", required_argument, NULL, 'r' },
		{ "runtime-root", required_argument, NULL, 'R' },
		{ "log-path", required_argument, NULL, 'l' },
		{ "dir", required_argument, NULL, 'd' },
		{ "cgroup-parent", required_argument, NULL, 'c' },
		{ "cgroup-path", required_argument, NULL, 'C' },
		{ "tty", no_argument, NULL, 't' },
		{ "stdin", no_argument, NULL, 's' },
		{ "log-size-max", required_argument, NULL, 'm' },
		{ "stdin-once", no_argument, NULL, 'o' },
		{ "restore", no_argument, NULL, 'x' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			m->id = optarg;
			break;
		case 'b':
			m->bundle = optarg;
			break;
		case 'r':
			m->runtime = optarg;
			break;
		case 'R':
			m->runtime_root = optarg;
			break;
		case 'l':
			m->log_path = optarg;
			break;
		case 'd':
			m->dir = optarg;
			break;
		case 'c':
			m->cgroup_parent = optarg;
			break;
		case 'C':
			m->cgroup_path = optarg;
			break;
		case 't':
			m->tty = true;
			break;
		case 's':
			m->open_stdin = true;
			break;
		case 'o':
			m->stdin_once = true;
			break;
		case 'x':
			m->restore = true;
			break;
		case 'm':
			m->log_size_max = strtoull(optarg, NULL, 10);
			break;
		default:
			return -1;
		}
	}
	if (optind != argc || !m->id || !m->bundle || !m->runtime || !m->runtime_root ||
	    !m->log_path || !m->dir || !m->cgroup_parent || m->log_path[0] != '/' ||
	    m->dir[0] != '/')
		return -1;
	return 0;
}

/* ---- detaching, cgroups, oom_score_adj ---- */

/* The process monitord spawned exits at once: the monitor goes on in its
 * child, whose parent is then PID 1 (or the host's subreaper), never
 * monitord. */
static int detach(struct monitor *m)
{
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0)
		_exit(0);
	sync_say(m, "pid %d", (int)getpid());
	return 0;
}

static void unescape_octal(char *s)
{
	char *o = s;
	for (char *p = s; *p; p++) {
		if (p[0] == '\\' && p[1] >= '0' && p[1] <= '7' && p[2] >= '0' && p[2] <= '7' &&
		    p[3] >= '0' && p[3] <= '7') {
			*o++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
			p += 3;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
}

/* Call fn for the mount point of every cgroup hierarchy (v1 and v2); stops
 * at fn's first error. */
static int each_hierarchy(int (*fn)(void *arg, const char *mp, bool v2), void *arg)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	char line[4096];
	int r = 0;
	while (r == 0 && fgets(line, sizeof(line), f)) {
		char *sep = strstr(line, " - ");
		char fstype[32], mp[2048];
		if (!sep || sscanf(sep + 3, "%31s", fstype) != 1 ||
		    (strcmp(fstype, "cgroup") != 0 && strcmp(fstype, "cgroup2") != 0) ||
		    sscanf(line, "%*s %*s %*s %*s %2047s", mp) != 1)
			continue;
		unescape_octal(mp);
		r = fn(arg, mp, strcmp(fstype, "cgroup2") == 0);
	}
	fclose(f);
	return r;
}

static int join_one(void *arg, const char *mp, bool v2)
{
	const struct monitor *m = arg;
	char path[PATH_MAX], pid[32];
	snprintf(path, sizeof(path), "%s/%s/cgroup.procs", mp, m->cgroup_parent);
	snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	int r = fd < 0 ? -errno : write_all(fd, pid, strlen(pid));
	if (fd >= 0)
		close(fd);
	/* cgroup v2 keeps processes out of a cgroup whose controllers are
	 * enabled for its children (the pod's, under pure v2). */
	if (r == -EBUSY && v2) {
		say("join \"%s\": %s; staying in the parent's v2 cgroup, ignoring", path,
		    strerror(-r));
		return 0;
	}
	if (r < 0)
		say("join cgroup \"%s\": %s", path, strerror(-r));
	return r;
}

/* As low as the host lets us (-1000, as conmon does, needs
 * CAP_SYS_RESOURCE): a binary search between -1000 and the current value,
 * which is always allowed. */
static void lower_oom_score(void)
{
	int fd = open("/proc/self/oom_score_adj", O_RDWR | O_CLOEXEC);
	char buf[16] = "";
	if (fd < 0 || read(fd, buf, sizeof(buf) - 1) <= 0) {
		if (fd >= 0)
			close(fd);
		return;
	}
	int lo = -1001, hi = atoi(buf), first = hi;
	while (hi - lo > 1) {
		int mid = lo + (hi - lo) / 2;
		snprintf(buf, sizeof(buf), "%d", mid);
		if (pwrite(fd, buf, strlen(buf), 0) >= 0)
			hi = mid;
		else
			lo = mid;
	}
	snprintf(buf, sizeof(buf), "%d", hi);
	if (pwrite(fd, buf, strlen(buf), 0) < 0)
		hi = first;
	close(fd);
	if (hi != -1000)
		say("oom_score_adj -1000 refused (no CAP_SYS_RESOURCE?): %d is the lowest granted "
		    "(was %d)",
		    hi, first);
}

int join_cgroups(struct monitor *m)
{
	return each_hierarchy(join_one, m);
}

static int setup_process(struct monitor *m)
{
	lower_oom_score();
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		return -errno;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	m->sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	return m->sig_fd < 0 ? -errno : 0;
}

/* ---- the log ---- */

static int mkdir_parents(const char *path)
{
	char p[PATH_MAX];
	if (snprintf(p, sizeof(p), "%s", path) >= (int)sizeof(p))
		return -ENAMETOOLONG;
	for (char *s = p + 1; (s = strchr(s, '/')); s++) {
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	return 0;
}

static int log_open(struct monitor *m)
{
	if (!m->log_path)
		return -EINVAL;
	int r = mkdir_parents(m->log_path);
	if (r < 0)
		return r;
	int fd = open(m->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0)
		return -errno;
	struct stat st;
	m->log_bytes = fstat(fd, &st) == 0 ? (unsigned long long)st.st_size : 0;
	if (m->log_fd >= 0)
		close(m->log_fd);
	m->log_fd = fd;
	return 0;
}

/* logfmt's writer: one record, one writev (never split between streams).
 * Past log_size_max the file starts over (the kubelet rotates by itself;
 * the cap only bounds a runaway container when set). */
static int log_emit(void *arg, const struct iovec *iov, int n)
{
	struct monitor *m = arg;
	size_t len = 0;
	for (int i = 0; i < n; i++)
		len += iov[i].iov_len;
	if (m->log_size_max && m->log_bytes + len > m->log_size_max && m->log_bytes > 0) {
		if (ftruncate(m->log_fd, 0) == 0)
			m->log_bytes = 0;
	}
	ssize_t w;
	do
		w = writev(m->log_fd, iov, n);
	while (w < 0 && errno == EINTR);
	if (w >= 0 && (size_t)w < len) {
		/* Short write (a full disk): finish the record byte-wise. */
		size_t done = (size_t)w;
		for (int i = 0; i < n; i++) {
			if (done >= iov[i].iov_len) {
				done -= iov[i].iov_len;
				continue;
			}
			if (write_all(m->log_fd, (const char *)iov[i].iov_base + done,
				      iov[i].iov_len - done) < 0) {
				w = -1;
				break;
			}
			done = 0;
		}
	}
	if (w < 0 && !m->log_failed) {
		say("write \"%s\": %s; dropping records until it works again", m->log_path,
		    strerror(errno));
		m->log_failed = true;
	} else if (w >= 0) {
		m->log_failed = false;
		m->log_bytes += len;
	}
	return 0;
}

/* ---- running ---- */

/* Replace a file of the monitor's directory: temp file, rename. No fsync:
 * the directory is volatile state (monitord's run dir, a tmpfs gone at a
 * reboot, with every container); readers see the old or the new file, and
 * a killed monitor or monitord loses nothing the page cache holds. */
static int write_file_atomic(const struct monitor *m, const char *name, const char *data)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	path_in_dir(m, name, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmpXXXXXX", path);
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = write_all(fd, data, strlen(data));
	if (r == 0 && fchmod(fd, 0644) < 0)
		r = -errno;
	close(fd);
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		return r;
	}
	return 0;
}

/* Read the pipe once (all of it when draining); false at EOF or error. */
static bool pump(struct monitor *m, int fd, struct logfmt_stream *s, bool drain)
{
	static char buf[64 * 1024];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return true;
		if (n <= 0) /* EOF, or EIO from a pty whose other side closed */
			return false;
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		logfmt_feed(s, buf, (size_t)n, &now, log_emit, m);
		attach_output(m, s == &m->err ? MONITOR_ATTACH_STDERR : MONITOR_ATTACH_STDOUT, buf,
			      (size_t)n);
		if (!drain)
			return true;
	}
}

static void close_stream(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void answer_control(struct monitor *m)
{
	int c = accept4(m->ctl_fd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return;
	/* A slow or silent client costs at most a second. */
	struct timeval tv = { 1, 0 };
	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	char cmd[64] = "";
	ssize_t n = recv(c, cmd, sizeof(cmd) - 1, 0);
	const char *reply = "error unknown command\n";
	char buf[512];
	if (n > 0 && strncmp(cmd, "reopen\n", 7) == 0) {
		int r = m->init_done ? -ESRCH : log_open(m);
		if (r == -ESRCH)
			reply = "error the container is not running\n";
		else if (r < 0) {
			snprintf(buf, sizeof(buf), "error open \"%s\": %s\n", m->log_path,
				 strerror(-r));
			reply = buf;
		} else {
			reply = "ok\n";
		}
	} else if (n > 0 && (strcmp(cmd, "attach\n") == 0 || strcmp(cmd, "attach stdin\n") == 0)) {
		const char *why = NULL;
		if (attach_add(m, c, cmd[6] == ' ', &why) == 0) {
			/* The answer precedes every frame; it fits an empty
			 * socket buffer. */
			if (write_all(c, "ok\n", 3) < 0)
				say("answer an attacher: %s, ignoring", strerror(errno));
			return;
		}
		snprintf(buf, sizeof(buf), "error %s\n", why);
		reply = buf;
	}
	write_all(c, reply, strlen(reply));
	close(c);
}

/* Until the container's init is reaped: log its output, answer the
 * control socket, reap orphans. SIGTERM kills the init. */
static void run(struct monitor *m)
{
	bool killed = false;
	while (!m->init_done) {
		struct pollfd p[4 + ATTACH_POLLFDS] = { { m->sig_fd, POLLIN, 0 },
							{ m->ctl_fd, POLLIN, 0 },
							{ m->out_fd, POLLIN, 0 },
							{ m->err_fd, POLLIN, 0 } };
		int n = 4 + attach_pollfds(m, p + 4);
		if (poll(p, (nfds_t)n, -1) < 0 && errno != EINTR) {
			/* Cannot happen with valid fds; never spin. */
			say("poll: %s", strerror(errno));
			sleep(1);
			continue;
		}
		if (p[2].revents && !pump(m, m->out_fd, &m->out, false))
			close_stream(&m->out_fd);
		if (p[3].revents && !pump(m, m->err_fd, &m->err, false))
			close_stream(&m->err_fd);
		attach_poll_done(m, p + 4);
		if (p[1].revents)
			answer_control(m);
		if (p[0].revents && read_signals(m) && !killed) {
			say("asked to stop: killing the container's init %d", (int)m->init_pid);
			kill(m->init_pid, SIGKILL);
			killed = true;
		}
	}
}

static int read_counter(const char *dir, const char *file, const char *key, long long *ret)
{
	char path[PATH_MAX], buf[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return -EIO;
	buf[n] = '\0';
	size_t kl = strlen(key);
	for (char *l = buf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (strncmp(l, key, kl) == 0 && l[kl] == ' ') {
			*ret = strtoll(l + kl + 1, NULL, 10);
			return 0;
		}
	return -ENOENT;
}

/* The OOM killer's count in the container's cgroup: v2 memory.events, v1
 * memory.oom_control (both name it oom_kill). */
static int oom_one(void *arg, const char *mp, bool v2)
{
	const struct monitor *m = arg;
	char dir[PATH_MAX];
	long long kills = 0;
	snprintf(dir, sizeof(dir), "%s/%s", mp, m->cgroup_path);
	int r = read_counter(dir, v2 ? "memory.events" : "memory.oom_control", "oom_kill", &kills);
	return r == 0 && kills > 0 ? 1 : 0;
}

static bool oom_killed(struct monitor *m)
{
	if (!m->cgroup_path || !*m->cgroup_path)
		return false;
	return each_hierarchy(oom_one, m) == 1;
}

static void finish(struct monitor *m)
{
	bool oom = oom_killed(m);
	char ctl[PATH_MAX];
	path_in_dir(m, MONITOR_CTL_SOCKET, ctl, sizeof(ctl));
	unlink(ctl);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	if (m->out_fd >= 0)
		pump(m, m->out_fd, &m->out, true);
	if (m->err_fd >= 0)
		pump(m, m->err_fd, &m->err, true);
	logfmt_flush(&m->out, &now, log_emit, m);
	logfmt_flush(&m->err, &now, log_emit, m);
	attach_finish(m);
	if (m->log_fd >= 0)
		fsync(m->log_fd);
	int st = m->init_status;
	int code = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : 255;
	char rec[256];
	snprintf(rec, sizeof(rec),
		 "{\"exit_code\":%d,\"finished_at\":%lld,\"oom_killed\":%s,\"pid\":%d}\n", code,
		 (long long)now.tv_sec * 1000000000LL + now.tv_nsec, oom ? "true" : "false",
		 (int)m->init_pid);
	int r = write_file_atomic(m, MONITOR_EXIT_FILE, rec);
	if (r < 0)
		say("write the exit file: %s", strerror(-r));
	say("container %d exited: code %d%s", (int)m->init_pid, code, oom ? " (OOM killed)" : "");
}

/* Undo what a failed start made: sockets, and nothing else of ours. */
static void fail(struct monitor *m, const char *what, int r)
{
	char path[PATH_MAX];
	path_in_dir(m, MONITOR_CTL_SOCKET, path, sizeof(path));
	unlink(path);
	path_in_dir(m, MONITOR_CONSOLE_SOCKET, path, sizeof(path));
	unlink(path);
	if (m->errlen == 0 && m->errbuf[0] == '\0')
		snprintf(m->errbuf, sizeof(m->errbuf), "%s", strerror(-r));
	say("%s: %s", what, m->errbuf);
	sync_say(m, "error %s: %s", what, m->errbuf);
	exit(1);
}

static int start(struct monitor *m)
{
	char path[PATH_MAX];
	int r = setup_process(m);
	if (r < 0)
		fail(m, "set up the monitor", r);
	if ((r = log_open(m)) < 0) {
		snprintf(m->errbuf, sizeof(m->errbuf), "open \"%s\": %s", m->log_path,
			 strerror(-r));
		fail(m, "open the log", r);
	}
	if (chdir(m->dir) < 0)
		fail(m, "enter the monitor's directory", -errno);
	/* First: a monitord restarted meanwhile sees a monitor at work. */
	char pid[32];
	snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if ((r = write_file_atomic(m, MONITOR_PID_FILE, pid)) < 0)
		fail(m, "write the pid file", r);
	if ((m->ctl_fd = listen_unix(MONITOR_CTL_SOCKET)) < 0)
		fail(m, "listen on the control socket", m->ctl_fd);
	if ((r = create_container(m)) < 0)
		fail(m, "create the container", r);
	if (m->errlen > 0)
		say("the runtime said: %s", m->errbuf);
	if (m->console_fd >= 0) {
		close(m->console_fd);
		m->console_fd = -1;
		path_in_dir(m, MONITOR_CONSOLE_SOCKET, path, sizeof(path));
		unlink(path);
	}
	fcntl(m->out_fd, F_SETFL, O_NONBLOCK);
	return 0;
}

/* The lowest address of the main thread's stack as mapped now; 0 unknown.
 * Not inlined: its buffer must not sit in its caller's frame. */
__attribute__((noinline)) static uintptr_t stack_low(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	if (!f)
		return 0;
	char line[512];
	uintptr_t lo = 0, hi = 0;
	bool found = false;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, "[stack]") &&
			sscanf(line, "%" SCNxPTR "-%" SCNxPTR, &lo, &hi) == 2;
	fclose(f);
	return found ? lo : 0;
}

/* Start-up (arguments, cgroups, runc create with its paths on the stack)
 * ran deep; the loop that follows for the container's life runs shallow.
 * Hand the kernel back the pages below this frame, which nothing uses any
 * more: about 28 KiB of each monitor, one per running container. The page
 * below this frame's stays (the red zone, the madvise call). */
static void stack_release_below(void)
{
	char here;
	uintptr_t lo = stack_low();
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t keep = ((uintptr_t)&here & ~(page - 1)) - page;
	if (lo && lo < keep && madvise((void *)lo, keep - lo, MADV_DONTNEED) < 0)
		say("release the start-up's stack: %s, ignoring", strerror(errno));
}

int main(int argc, char **argv)
{
	static struct monitor m = {
		.sync_fd = MONITOR_SYNC_FD,
		.log_fd = -1,
		.sig_fd = -1,
		.ctl_fd = -1,
		.console_fd = -1,
		.out_fd = -1,
		.err_fd = -1,
		.in_fd = -1,
	};
	/* Nothing but stdio and the sync pipe, whatever the spawner leaked. */
	close_range(MONITOR_SYNC_FD + 1, ~0U, 0);
	if (fcntl(MONITOR_SYNC_FD, F_SETFD, FD_CLOEXEC) < 0)
		m.sync_fd = -1;
	if (parse_args(&m, argc, argv) < 0 || !m.dir || !m.log_path) {
		usage();
		sync_say(&m, "error bad arguments");
		return 2;
	}
	attach_init(&m);
	logfmt_stream_init(&m.out, "stdout");
	logfmt_stream_init(&m.err, "stderr");
	if (detach(&m) < 0) {
		sync_say(&m, "error fork: %s", strerror(errno));
		return 1;
	}
	start(&m);
	sync_say(&m, "ok %d", (int)m.init_pid);
	close(m.sync_fd);
	m.sync_fd = -1;
	stack_release_below();
	run(&m);
	finish(&m);
	return 0;
}
