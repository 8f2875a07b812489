/* monitord's manager: the per-container monitors; see monitors.h. */
#include "monitors.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/spawn.h"
#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/ids.h"
#include "common/ipc.h"
#include "common/log.h"
#include "common/macro.h"
#include "monitor/monitor.h"
#include "stats.h"

#define STOP_GRACE_MS 10000
#define CTL_TIMEOUT_S 5

static const char *const runc_candidates[] = {
	"/usr/local/sbin/runc", "/usr/local/bin/runc", "/usr/sbin/runc",
	"/usr/bin/runc",        "/sbin/runc",          "/bin/runc",
};

/* ---- per-id serialisation ---- */

static void id_lock(struct monitors *m, const char *id)
{
	pthread_mutex_lock(&m->lock);
	for (;;) {
		int free_slot = -1;
		bool taken = false;
		for (int i = 0; i < MONITORS_BUSY_MAX; i++) {
			if (m->busy[i][0] == '\0' && free_slot < 0)
				free_slot = i;
			taken |= strcmp(m->busy[i], id) == 0;
		}
		if (!taken && free_slot >= 0) {
			snprintf(m->busy[free_slot], sizeof(m->busy[free_slot]), "%s", id);
			break;
		}
		pthread_cond_wait(&m->idle, &m->lock);
	}
	pthread_mutex_unlock(&m->lock);
}

static void id_unlock(struct monitors *m, const char *id)
{
	pthread_mutex_lock(&m->lock);
	for (int i = 0; i < MONITORS_BUSY_MAX; i++)
		if (strcmp(m->busy[i], id) == 0)
			m->busy[i][0] = '\0';
	pthread_cond_broadcast(&m->idle);
	pthread_mutex_unlock(&m->lock);
}

/* ---- files of a monitor ---- */

static char *mon_path(const struct monitors *m, const char *id, const char *name)
{
	char *p = NULL;
	if (asprintf(&p, "%s/%s%s%s", m->dir, id, name ? "/" : "", name ? name : "") < 0)
		return NULL;
	return p;
}

static pid_t read_pid(const struct monitors *m, const char *id, const char *name)
{
	_cleanup_free_ char *path = mon_path(m, id, name);
	_cleanup_free_ char *buf = NULL;
	size_t n;
	if (!path || read_file(path, 64, &buf, &n) < 0)
		return 0;
	long v = strtol(buf, NULL, 10);
	return v > 1 && v < INT_MAX ? (pid_t)v : 0;
}

/* pid runs (a zombie does not: PID 1 here reaps late) the monitor binary. */
static bool is_monitor(const struct monitors *m, pid_t pid)
{
	char path[64], exe[PATH_MAX], stat[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, stat, sizeof(stat) - 1);
	close(fd);
	if (n <= 0)
		return false;
	stat[n] = '\0';
	const char *end = strrchr(stat, ')');
	if (!end || end[1] != ' ' || end[2] == 'Z' || end[2] == 'X')
		return false;
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	ssize_t k = readlink(path, exe, sizeof(exe) - 1);
	if (k <= 0)
		return false;
	exe[k] = '\0';
	/* A rebuilt binary reads "<path> (deleted)" for monitors started
	 * before. */
	size_t bl = strlen(m->monitor_bin);
	return strncmp(exe, m->monitor_bin, bl) == 0 &&
	       (exe[bl] == '\0' || strcmp(exe + bl, " (deleted)") == 0);
}

/* Wait up to ms for pid to end (it is not our child: a pidfd tells). */
static bool wait_gone(const struct monitors *m, pid_t pid, int ms)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0)
		return errno == ESRCH;
	struct pollfd p = { fd, POLLIN, 0 };
	int r;
	do
		r = poll(&p, 1, ms);
	while (r < 0 && errno == EINTR);
	close(fd);
	return r > 0 || !is_monitor(m, pid);
}

/* SIGTERM (the monitor kills the container's init and records its exit),
 * then SIGKILL. */
static void stop_monitor(const struct monitors *m, pid_t pid)
{
	if (!is_monitor(m, pid))
		return;
	kill(pid, SIGTERM);
	if (wait_gone(m, pid, STOP_GRACE_MS))
		return;
	log_warning("monitor %d did not stop within %d ms: killing it", (int)pid, STOP_GRACE_MS);
	kill(pid, SIGKILL);
	wait_gone(m, pid, 2000);
}

static int remove_dir(const struct monitors *m, const char *id)
{
	_cleanup_free_ char *dir = mon_path(m, id, NULL);
	if (!dir)
		return -ENOMEM;
	_cleanup_closedir_ DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : negative_errno();
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			unlinkat(dirfd(d), e->d_name, 0);
	return rmdir(dir) < 0 && errno != ENOENT ? negative_errno() : 0;
}

/* ---- the exit record ---- */

static int read_exit(const struct monitors *m, const char *id, struct monitor_status *st)
{
	_cleanup_free_ char *path = mon_path(m, id, MONITOR_EXIT_FILE);
	if (!path)
		return -ENOMEM;
	json_t *doc = NULL;
	char why[256];
	int r = json_load_path(path, 4096, &doc, why, sizeof(why));
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	json_t *code = json_object_get(doc, "exit_code");
	json_t *at = json_object_get(doc, "finished_at");
	json_t *oom = json_object_get(doc, "oom_killed");
	if (!json_is_integer(code) || !json_is_integer(at) || !json_is_boolean(oom)) {
		json_decref(doc);
		return -EBADMSG;
	}
	st->exited = true;
	st->exit_code = (int)json_integer_value(code);
	st->finished_at = json_integer_value(at);
	st->oom_killed = json_is_true(oom);
	json_decref(doc);
	return 0;
}

static int status_locked(struct monitors *m, const char *id, struct monitor_status *st,
			 struct cric_err *err)
{
	_cleanup_free_ char *dir = mon_path(m, id, NULL);
	struct stat s;
	if (!dir)
		return -ENOMEM;
	if (stat(dir, &s) < 0)
		return err_set(err, errno == ENOENT ? -ENOENT : negative_errno(),
			       "container %s has no monitor", id);
	*st = (struct monitor_status){ 0 };
	st->monitor_pid = read_pid(m, id, MONITOR_PID_FILE);
	st->pid = read_pid(m, id, MONITOR_CONTAINER_PID);
	st->alive = st->monitor_pid > 0 && is_monitor(m, st->monitor_pid);
	int r = read_exit(m, id, st);
	if (r < 0)
		return err_set(err, r, "container %s: read its exit record: %s", id, strerror(-r));
	if (!st->alive && !st->exited)
		st->message = "monitor died";
	return 0;
}

int monitors_status(struct monitors *m, const char *id, struct monitor_status *st,
		    struct cric_err *err)
{
	id_lock(m, id);
	int r = status_locked(m, id, st, err);
	id_unlock(m, id);
	return r;
}

/* ---- CreateMonitor ---- */

static bool under(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	return strncmp(path, dir, n) == 0 && path[n] == '/' && path[n + 1] != '\0';
}

static bool cgroup_parent_ok(const char *p)
{
	if (!*p || !path_is_clean(p, p[0] == '/', 1024) || strcmp(p, "/") == 0)
		return false;
	for (const char *c = p + (p[0] == '/'); *c;) {
		size_t n = strcspn(c, "/");
		if (!path_component_ok(c, n))
			return false;
		c += n + (c[n] == '/');
	}
	return true;
}

int monitors_check_spec(const struct monitors *m, const struct monitor_spec *s,
			struct cric_err *err)
{
	if (!id_is_valid(s->id))
		return err_set(err, -EINVAL, "container_id must be 64 lowercase hex digits");
	if (!path_is_clean(s->bundle, true, PATH_MAX) || !under(s->bundle, m->runtimed_dir))
		return err_set(err, -EINVAL, "bundle \"%s\" is not a clean path under \"%s\"",
			       s->bundle, m->runtimed_dir);
	bool known = strv_contains(m->runtime_paths, s->runtime_path);
	for (size_t i = 0; i < ARRAY_SIZE(runc_candidates); i++)
		known |= strcmp(s->runtime_path, runc_candidates[i]) == 0;
	if (!known)
		return err_set(err, -EINVAL, "runtime_path \"%s\" is not a configured runtime",
			       s->runtime_path);
	if (!path_is_clean(s->runtime_root, true, PATH_MAX) ||
	    !(strv_contains(m->runtime_roots, s->runtime_root) ||
	      under(s->runtime_root, m->runtimes_dir)))
		return err_set(err, -EINVAL,
			       "runtime_root \"%s\" is neither configured nor a clean path under "
			       "\"%s\"",
			       s->runtime_root, m->runtimes_dir);
	if (!path_is_clean(s->log_path, true, PATH_MAX) || strcmp(s->log_path, "/") == 0)
		return err_set(err, -EINVAL, "log_path \"%s\" must be a clean absolute path",
			       s->log_path);
	const char *upper = json_string_value(json_object_get(s->attrs, "upper_dir"));
	if (upper && upper[0] && !path_is_clean(upper, true, PATH_MAX))
		return err_set(err, -EINVAL, "upper_dir \"%s\" must be a clean absolute path",
			       upper);
	if (s->restore && s->tty)
		return err_set(err, -EOPNOTSUPP, "a container with a tty cannot be restored");
	if (!cgroup_parent_ok(s->cgroup_parent))
		return err_set(err, -EINVAL,
			       "cgroup_parent \"%s\" must be a clean cgroup path (not the root)",
			       s->cgroup_parent);
	return 0;
}

/* The container's cgroup (for the OOM counter), when the bundle names a
 * cgroupfs path; "" otherwise (systemd's "slice:prefix:name": not yet). */
static char *container_cgroup(const char *bundle)
{
	_cleanup_free_ char *path = path_join(bundle, "config.json");
	json_t *doc = NULL;
	char why[256];
	if (!path || json_load_path(path, 4 << 20, &doc, why, sizeof(why)) < 0)
		return strdup("");
	const char *cg =
	    json_string_value(json_object_get(json_object_get(doc, "linux"), "cgroupsPath"));
	char *ret = strdup(cg && cg[0] == '/' && path_is_clean(cg, true, 1024) ? cg : "");
	json_decref(doc);
	return ret;
}

static int spawn_monitor(struct monitors *m, const struct monitor_spec *s, const char *dir,
			 int sync_w, pid_t *ret)
{
	_cleanup_free_ char *cg = container_cgroup(s->bundle);
	_cleanup_free_ char *mlog = path_join(dir, MONITOR_LOG_FILE);
	char size[32];
	snprintf(size, sizeof(size), "%llu", (unsigned long long)s->log_size_max);
	if (!cg || !mlog)
		return -ENOMEM;
	char *argv[24];
	int a = 0;
	const char *const opts[][2] = {
		{ "--id", s->id },
		{ "--bundle", s->bundle },
		{ "--runtime", s->runtime_path },
		{ "--runtime-root", s->runtime_root },
		{ "--log-path", s->log_path },
		{ "--dir", dir },
		{ "--cgroup-parent", s->cgroup_parent },
		{ "--cgroup-path", cg },
		{ "--log-size-max", size },
	};
	argv[a++] = m->monitor_bin;
	for (size_t i = 0; i < ARRAY_SIZE(opts); i++) {
		argv[a++] = (char *)opts[i][0];
		argv[a++] = (char *)opts[i][1];
	}
	if (s->tty)
		argv[a++] = "--tty";
	if (s->open_stdin)
		argv[a++] = "--stdin";
	if (s->open_stdin && s->stdin_once)
		argv[a++] = "--stdin-once";
	if (s->restore)
		argv[a++] = "--restore";
	argv[a] = NULL;
	char *env[] = { "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL };
	const struct spawn_fd fds[] = {
		{ 0, -1, "/dev/null", O_RDONLY },
		{ 1, -1, "/dev/null", O_WRONLY },
		{ 2, -1, mlog, O_WRONLY | O_CREAT | O_APPEND },
		{ MONITOR_SYNC_FD, sync_w, NULL, 0 },
	};
	return spawn_start(m->monitor_bin, argv, env, fds, ARRAY_SIZE(fds), true, -1, ret);
}

/* Read the monitor's report lines until "ok"/"error" or the deadline. */
static int read_report(int fd, int64_t deadline_ns, pid_t *mpid, pid_t *pid, struct cric_err *err)
{
	char buf[8192];
	size_t len = 0;
	for (;;) {
		char *nl;
		while ((nl = memchr(buf, '\n', len))) {
			*nl = '\0';
			long v;
			if (sscanf(buf, "pid %ld", &v) == 1)
				*mpid = (pid_t)v;
			else if (sscanf(buf, "ok %ld", &v) == 1 && v > 1)
				return *pid = (pid_t)v, 0;
			else if (strncmp(buf, "error ", 6) == 0)
				return err_set(err, -EIO, "%s", buf + 6);
			len -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, len);
		}
		int64_t left = (deadline_ns - now_unix_ns()) / 1000000;
		if (left <= 0)
			return err_set(err, -ETIMEDOUT, "the monitor did not report in time");
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left) < 0 && errno != EINTR)
			return negative_errno();
		if (!p.revents)
			continue;
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0 || (len += (size_t)n) >= sizeof(buf) - 1)
			return err_set(err, -EIO, "the monitor ended without a report");
	}
}

/* What stats report of the container (stats.h), with its cgroup. */
static int write_attrs(const struct monitor_spec *s, const char *dir)
{
	_cleanup_json_ json_t *doc = s->attrs ? json_deep_copy(s->attrs) : json_object();
	_cleanup_free_ char *cg = container_cgroup(s->bundle);
	_cleanup_free_ char *path = path_join(dir, STATS_ATTRS_FILE);
	if (!doc || !cg || !path || json_object_set_new(doc, "cgroup", json_string(cg)) < 0)
		return -ENOMEM;
	return json_save_volatile(path, doc, 0600); /* the run dir */
}

static int create_locked(struct monitors *m, const struct monitor_spec *s, int64_t deadline_ns,
			 pid_t *pid, pid_t *mpid, struct cric_err *err)
{
	_cleanup_free_ char *dir = mon_path(m, s->id, NULL);
	if (!dir)
		return -ENOMEM;
	if (mkdir(dir, 0700) < 0)
		return err_set(err, negative_errno(), "create \"%s\": %s", dir, strerror(errno));
	int r = write_attrs(s, dir);
	if (r < 0) {
		remove_dir(m, s->id);
		return err_set(err, r, "write the container's %s: %s", STATS_ATTRS_FILE,
			       strerror(-r));
	}
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return negative_errno();
	_cleanup_close_ int sync_r = p[0];
	pid_t child = 0;
	r = spawn_monitor(m, s, dir, p[1], &child);
	close(p[1]);
	if (r < 0) {
		remove_dir(m, s->id);
		return err_set(err, r, "start \"%s\": %s", m->monitor_bin, strerror(-r));
	}
	/* It forks and exits at once: reap it here. */
	while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
		;
	*mpid = 0;
	r = read_report(sync_r, deadline_ns, mpid, pid, err);
	if (r < 0) {
		if (*mpid > 0) {
			stop_monitor(m, *mpid);
			wait_gone(m, *mpid, 2000);
		}
		remove_dir(m, s->id);
		return r;
	}
	return 0;
}

int monitors_create(struct monitors *m, const struct monitor_spec *s, int64_t deadline_ns,
		    pid_t *pid, pid_t *monitor_pid, struct cric_err *err)
{
	int r = monitors_check_spec(m, s, err);
	if (r < 0)
		return r;
	id_lock(m, s->id);
	struct monitor_status st = { 0 };
	r = status_locked(m, s->id, &st, NULL);
	if (r == 0 && st.alive && !st.exited && st.pid > 0) {
		/* A replay of a create that worked. */
		*pid = st.pid;
		*monitor_pid = st.monitor_pid;
	} else if (r == 0 && st.alive && !st.exited) {
		/* Started by a monitord that died before it answered. */
		r = err_set(err, -EAGAIN, "container %s: its monitor is still creating it, retry",
			    s->id);
	} else if (r == 0 && st.exited) {
		r = err_set(err, -EEXIST, "container %s has exited: remove its monitor first",
			    s->id);
	} else {
		/* None, or the leftover of one that died (runc refuses a
		 * container that still exists). */
		if (r == 0 && (r = remove_dir(m, s->id)) < 0)
			r = err_set(err, r, "container %s: remove its dead monitor's files", s->id);
		else
			r = create_locked(m, s, deadline_ns, pid, monitor_pid, err);
	}
	id_unlock(m, s->id);
	return r;
}

/* ---- ReopenLog, RemoveMonitor ---- */

static int ctl_command(const struct monitors *m, const char *id, const char *cmd, char *reply,
		       size_t size)
{
	/* Through an O_PATH fd of the directory: sun_path has 108 bytes, a
	 * run dir under a long root needs more. */
	_cleanup_free_ char *dir = mon_path(m, id, NULL);
	if (!dir)
		return -ENOMEM;
	_cleanup_close_ int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return negative_errno();
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s", dfd, MONITOR_CTL_SOCKET);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return negative_errno();
	struct timeval tv = { CTL_TIMEOUT_S, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return negative_errno();
	if (send(fd, cmd, strlen(cmd), MSG_NOSIGNAL) < 0)
		return negative_errno();
	size_t len = 0;
	ssize_t n;
	while (len < size - 1 && (n = recv(fd, reply + len, size - 1 - len, 0)) > 0)
		len += (size_t)n;
	reply[len] = '\0';
	char *nl = strchr(reply, '\n');
	if (!nl)
		return -EPROTO;
	*nl = '\0';
	return 0;
}

static int reopen_locked(struct monitors *m, const char *id, struct cric_err *err)
{
	struct monitor_status st = { 0 };
	int r = status_locked(m, id, &st, err);
	if (r < 0)
		return r;
	if (!st.alive || st.exited)
		return err_set(err, -EBUSY, "container %s is not running", id);
	char reply[512];
	r = ctl_command(m, id, "reopen\n", reply, sizeof(reply));
	if (r < 0)
		return err_set(err, r == -ECONNREFUSED || r == -ENOENT ? -EBUSY : r,
			       "container %s: ask its monitor to reopen the log: %s", id,
			       strerror(-r));
	if (strcmp(reply, "ok") == 0)
		return 0;
	bool gone = strstr(reply, "not running") != NULL;
	return err_set(err, gone ? -EBUSY : -EIO, "container %s: reopen the log: %s", id,
		       strncmp(reply, "error ", 6) == 0 ? reply + 6 : reply);
}

int monitors_reopen_log(struct monitors *m, const char *id, struct cric_err *err)
{
	if (!id_is_valid(id))
		return err_set(err, -EINVAL, "container_id must be 64 lowercase hex digits");
	id_lock(m, id);
	int r = reopen_locked(m, id, err);
	id_unlock(m, id);
	return r;
}

int monitors_resolve(const struct monitors *m, const char *prefix, char id[65],
		     struct cric_err *err)
{
	size_t n = strlen(prefix);
	if (n == 0 || n > 64 || strspn(prefix, "0123456789abcdef") != n)
		return err_set(err, -EINVAL, "container_id \"%.80s\" is not an id or id prefix",
			       prefix);
	_cleanup_closedir_ DIR *d = opendir(m->dir);
	if (!d)
		return err_set(err, negative_errno(), "read \"%s\": %s", m->dir, strerror(errno));
	unsigned found = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (id_is_valid(e->d_name) && strncmp(e->d_name, prefix, n) == 0 && found++ == 0)
			snprintf(id, 65, "%s", e->d_name);
	if (found == 0)
		return err_set(err, -ENOENT, "container %s not found", prefix);
	if (found > 1)
		return err_set(err, -EINVAL, "container id prefix %s is ambiguous (%u containers)",
			       prefix, found);
	return 0;
}

int monitors_remove(struct monitors *m, const char *id, struct cric_err *err)
{
	if (!id_is_valid(id))
		return err_set(err, -EINVAL, "container_id must be 64 lowercase hex digits");
	id_lock(m, id);
	pid_t mpid = read_pid(m, id, MONITOR_PID_FILE);
	if (mpid > 0)
		stop_monitor(m, mpid);
	int r = remove_dir(m, id);
	id_unlock(m, id);
	if (r < 0)
		return err_set(err, r, "container %s: remove its monitor's files: %s", id,
			       strerror(-r));
	return 0;
}

/* ---- open, adopt ---- */

void monitors_free(struct monitors *m)
{
	if (!m)
		return;
	stats_free(m->stats);
	free(m->dir);
	free(m->monitor_bin);
	free(m->runtimed_dir);
	free(m->runtimes_dir);
	strv_free(m->runtime_paths);
	strv_free(m->runtime_roots);
	pthread_mutex_destroy(&m->lock);
	pthread_cond_destroy(&m->idle);
	free(m);
}

/* What a restarted monitord finds: every monitor keeps running on its own;
 * say which are alive, which containers exited, which monitors died. */
static void adopt(struct monitors *m)
{
	_cleanup_closedir_ DIR *d = opendir(m->dir);
	struct dirent *e;
	unsigned alive = 0, exited = 0, dead = 0;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		struct monitor_status st = { 0 };
		if (!id_is_valid(e->d_name) || status_locked(m, e->d_name, &st, NULL) < 0) {
			log_warning("\"%s/%s\" is not a monitor's directory, ignoring", m->dir,
				    e->d_name);
			continue;
		}
		if (st.alive && !st.exited)
			alive++;
		else if (st.exited)
			exited++;
		else
			dead++;
		if (!st.alive && !st.exited)
			log_warning("container %s: its monitor %d died without an exit record",
				    e->d_name, (int)st.monitor_pid);
	}
	log_info("adopted %u running monitors (%u containers exited, %u monitors died)", alive,
		 exited, dead);
}

static int runtime_settings(struct monitors *m, const struct cric_config *cfg)
{
	const json_t *rts = json_object_get(json_object_get(cfg->doc, "runtimed"), "runtimes");
	size_t n = json_is_object(rts) ? json_object_size(rts) : 0, np = 0, nr = 0;
	m->runtime_paths = calloc(n + 1, sizeof(char *));
	m->runtime_roots = calloc(n + 1, sizeof(char *));
	if (!m->runtime_paths || !m->runtime_roots)
		return -ENOMEM;
	const char *name;
	const json_t *h;
	json_object_foreach ((json_t *)rts, name, h) {
		const char *p = json_string_value(json_object_get(h, "path"));
		const char *root = json_string_value(json_object_get(h, "root"));
		if (p && p[0] == '/' && !(m->runtime_paths[np++] = strdup(p)))
			return -ENOMEM;
		if (root && root[0] == '/' && !(m->runtime_roots[nr++] = strdup(root)))
			return -ENOMEM;
	}
	return 0;
}

int monitors_open(const struct cric_config *cfg, struct monitors **ret, struct cric_err *err)
{
	struct monitors *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->idle, NULL);
	const json_t *bin =
	    json_object_get(json_object_get(cfg->doc, "monitord"), "monitor_binary");
	int r = 0;
	if (bin && (!json_is_string(bin) || json_string_value(bin)[0] != '/'))
		r = config_bad_key(cfg, "monitord", "monitor_binary", "an absolute path", err);
	m->dir = path_join(cfg->run_dir, "monitord");
	m->runtimed_dir = path_join(cfg->run_dir, "runtimed");
	m->runtimes_dir = path_join(cfg->run_dir, "runtimed/runtimes");
	m->monitor_bin =
	    bin && r == 0 ? strdup(json_string_value(bin)) : path_beside_exe("cric-monitor");
	if (r == 0 && (!m->dir || !m->runtimed_dir || !m->runtimes_dir || !m->monitor_bin))
		r = -ENOMEM;
	if (r == 0)
		r = runtime_settings(m, cfg);
	if (r == 0 && access(m->monitor_bin, X_OK) < 0)
		r = err_set(err, -ENOPKG, "monitor binary \"%s\": %s", m->monitor_bin,
			    strerror(errno));
	if (r == 0 && (r = mkdir_p(m->dir, 0700)) < 0)
		r = err_set(err, r, "create \"%s\": %s", m->dir, strerror(-r));
	if (r == 0)
		r = stats_open(m->dir, &m->stats, err);
	if (r < 0) {
		monitors_free(m);
		return r;
	}
	adopt(m);
	*ret = m;
	return 0;
}
