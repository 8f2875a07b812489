/* ExecSync; see execsync.h. */
#include "execsync.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
#include "exec/exec.h"

/* After the helper reported, what the exec wrote is in the pipes: read it
 * until their end, but no longer than this (a daemon the command started
 * may hold them). */
#define DRAIN_MS 500
/* How much longer than the exec's own timeout we wait for the helper's
 * report before killing the helper. */
#define HELPER_GRACE_MS 30000
#define CMDLINE_MAX     (64 * 1024)

/* ---- open ---- */

int execsync_open(const struct cric_config *cfg, struct execsync **ret, struct cric_err *err)
{
	_cleanup_free_ struct execsync *x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	const json_t *sec = json_object_get(cfg->doc, "monitord");
	const json_t *max = json_object_get(sec, "exec_output_max");
	const json_t *helper = json_object_get(sec, "exec_helper");
	x->output_max = EXECSYNC_OUTPUT_MAX_DEFAULT;
	if (max) {
		if (!json_is_integer(max) || json_integer_value(max) < 0 ||
		    json_integer_value(max) > EXECSYNC_ANSWER_MAX)
			return config_bad_key(cfg, "monitord", "exec_output_max",
					      "a byte count up to 16 MiB - 64 KiB", err);
		x->output_max = (size_t)json_integer_value(max);
	}
	if (helper && (!json_is_string(helper) || json_string_value(helper)[0] != '/'))
		return config_bad_key(cfg, "monitord", "exec_helper", "an absolute path", err);
	x->helper = helper ? strdup(json_string_value(helper)) : path_beside_exe("cric-exec");
	if (!x->helper)
		return -ENOMEM;
	if (access(x->helper, X_OK) < 0) {
		int r = err_set(err, -ENOPKG, "exec helper \"%s\": %s", x->helper, strerror(errno));
		free(x->helper);
		return r;
	}
	*ret = TAKE_PTR(x);
	return 0;
}

void execsync_free(struct execsync *x)
{
	if (!x)
		return;
	free(x->helper);
	free(x);
}

void execsync_result_done(struct execsync_result *res)
{
	if (!res)
		return;
	free(res->out);
	free(res->err);
	res->out = res->err = NULL;
}

void execsync_fit(size_t *out_len, size_t *err_len, size_t max)
{
	if (*out_len + *err_len <= max)
		return;
	size_t half_out = max / 2, half_err = max - max / 2;
	if (*out_len <= half_out) {
		*err_len = max - *out_len;
	} else if (*err_len <= half_err) {
		*out_len = max - *err_len;
	} else {
		*out_len = half_out;
		*err_len = half_err;
	}
}

/* ---- the container ---- */

static bool is_hex(const char *s)
{
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

/* The full id of a container id or unique prefix with a monitor. */
static int resolve_id(const struct monitors *m, const char *id, char full[65], struct cric_err *err)
{
	size_t n = strlen(id);
	if (n == 0 || n > 64 || !is_hex(id))
		return err_set(err, -EINVAL, "container_id \"%s\" is not a container id", id);
	if (n == 64) {
		memcpy(full, id, 65);
		return 0;
	}
	_cleanup_closedir_ DIR *d = opendir(m->dir);
	struct dirent *e;
	int found = 0;
	while (d && (e = readdir(d))) {
		if (strncmp(e->d_name, id, n) != 0 || !id_is_valid(e->d_name))
			continue;
		if (found++)
			return err_set(err, -EINVAL, "container id prefix \"%s\" is ambiguous", id);
		memcpy(full, e->d_name, 65);
	}
	if (!found)
		return err_set(err, -ENOENT, "container \"%s\" not found", id);
	return 0;
}

struct runtime_args {
	char *buf; /* the monitor's command line */
	const char *runtime, *root;
	bool tty;
	pid_t init;
};

/* The runtime and root the monitor of id runs with, from its command line;
 * pid must run the monitor binary for id. */
static int monitor_runtime(const struct monitors *m, pid_t pid, const char *id,
			   struct runtime_args *ra)
{
	char path[64], exe[PATH_MAX];
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	size_t n = 0;
	int r = read_file(path, CMDLINE_MAX, &ra->buf, &n);
	if (r < 0)
		return r;
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	ssize_t k = readlink(path, exe, sizeof(exe) - 1);
	if (k <= 0)
		return -ESRCH;
	exe[k] = '\0';
	size_t bl = strlen(m->monitor_bin);
	if (strncmp(exe, m->monitor_bin, bl) != 0 ||
	    (exe[bl] != '\0' && strcmp(exe + bl, " (deleted)") != 0))
		return -ESRCH;
	const char *args[64];
	size_t na = 0;
	for (size_t i = 0; i < n && na < ARRAY_SIZE(args); i += strlen(ra->buf + i) + 1)
		args[na++] = ra->buf + i;
	bool id_ok = false;
	for (size_t i = 1; i < na; i++) {
		const char *next = i + 1 < na ? args[i + 1] : NULL;
		if (strcmp(args[i], "--tty") == 0)
			ra->tty = true;
		else if (!next)
			continue;
		else if (strcmp(args[i], "--runtime") == 0)
			ra->runtime = next;
		else if (strcmp(args[i], "--runtime-root") == 0)
			ra->root = next;
		else if (strcmp(args[i], "--id") == 0)
			id_ok = strcmp(next, id) == 0;
	}
	return id_ok && ra->runtime && ra->root ? 0 : -ESRCH;
}

/* ---- running it ---- */

struct sink {
	char *data;
	size_t len, cap, max;
	int fd;
};

/* Read what fd has; past max read and drop. 0 at EOF (fd closed), 1 for
 * more to come, <0 on error. */
static int sink_read(struct sink *s)
{
	char drop[16384];
	for (;;) {
		char *dst = drop;
		size_t room = sizeof(drop);
		if (s->len < s->max) {
			if (s->cap - s->len < 4096 && s->cap < s->max) {
				size_t ncap = s->cap ? s->cap * 2 : 16384;
				if (ncap > s->max)
					ncap = s->max;
				char *nd = realloc(s->data, ncap);
				if (!nd)
					return -ENOMEM;
				s->data = nd;
				s->cap = ncap;
			}
			dst = s->data + s->len;
			room = s->cap - s->len;
		}
		ssize_t k = read(s->fd, dst, room);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return errno == EAGAIN ? 1 : negative_errno();
		if (k == 0) {
			close(s->fd);
			s->fd = -1;
			return 0;
		}
		if (dst != drop)
			s->len += (size_t)k;
	}
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void close_fdp(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static int spawn_helper(const struct execsync *x, char **argv, const int fds[3], pid_t *pid)
{
	char *env[] = { "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL };
	const struct spawn_fd map[] = {
		{ 0, -1, "/dev/null", O_RDONLY },
		{ 1, fds[0], NULL, 0 },
		{ 2, fds[1], NULL, 0 },
		{ EXEC_REPORT_FD, fds[2], NULL, 0 },
	};
	return spawn_start(x->helper, argv, env, map, ARRAY_SIZE(map), false, EXEC_REPORT_FD, pid);
}

struct run {
	struct sink out, err, rep;
	pid_t helper;
};

/* Read the three pipes until the report has ended and the outputs too (or
 * DRAIN_MS after the report); kill the helper if it has not reported by
 * until_ms (INT64_MAX: never). */
static int pump(struct run *run, int64_t until_ms)
{
	int64_t drain_until = INT64_MAX;
	while (run->out.fd >= 0 || run->err.fd >= 0 || run->rep.fd >= 0) {
		if (run->rep.fd < 0 && drain_until == INT64_MAX)
			drain_until = mono_ms() + DRAIN_MS;
		int64_t now = mono_ms(), end = run->rep.fd >= 0 ? until_ms : drain_until;
		if (end != INT64_MAX && now >= end) {
			if (run->rep.fd < 0)
				return 0; /* the report is in: leave the rest */
			log_warning("the exec helper %d did not report in time: killing it",
				    (int)run->helper);
			kill(run->helper, SIGKILL);
			return -ETIMEDOUT;
		}
		struct pollfd p[3] = { { run->out.fd, POLLIN, 0 },
				       { run->err.fd, POLLIN, 0 },
				       { run->rep.fd, POLLIN, 0 } };
		int64_t left = end == INT64_MAX ? 60000 : end - now;
		if (poll(p, 3, left > 60000 ? 60000 : (int)left) < 0 && errno != EINTR)
			return negative_errno();
		struct sink *s[3] = { &run->out, &run->err, &run->rep };
		for (int i = 0; i < 3; i++) {
			if (s[i]->fd < 0 || !p[i].revents)
				continue;
			int r = sink_read(s[i]);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

static void run_done(struct run *run)
{
	close_fdp(&run->out.fd);
	close_fdp(&run->err.fd);
	close_fdp(&run->rep.fd);
	free(run->out.data);
	free(run->err.data);
	free(run->rep.data);
	if (run->helper > 0) {
		while (waitpid(run->helper, NULL, 0) < 0 && errno == EINTR)
			;
		run->helper = 0;
	}
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? negative_errno() : 0;
}

/* Start the helper with argv, collect its outputs and report. */
static int run_helper(const struct execsync *x, char **argv, int64_t timeout_ms, struct run *run,
		      struct cric_err *err)
{
	int p[3][2] = { { -1, -1 }, { -1, -1 }, { -1, -1 } };
	for (int i = 0; i < 3; i++)
		if (pipe2(p[i], O_CLOEXEC) < 0) {
			int r = negative_errno();
			for (int j = 0; j < i; j++) {
				close(p[j][0]);
				close(p[j][1]);
			}
			return err_set(err, r, "pipe: %s", strerror(-r));
		}
	run->out = (struct sink){ .fd = p[0][0], .max = x->output_max };
	run->err = (struct sink){ .fd = p[1][0], .max = x->output_max };
	run->rep = (struct sink){ .fd = p[2][0], .max = 4096 };
	const int w[3] = { p[0][1], p[1][1], p[2][1] };
	int r = spawn_helper(x, argv, w, &run->helper);
	for (int i = 0; i < 3; i++)
		close(w[i]);
	if (r < 0) {
		run->helper = 0;
		return err_set(err, r, "start \"%s\": %s", x->helper, strerror(-r));
	}
	for (int i = 0; i < 3; i++)
		if ((r = set_nonblock(p[i][0])) < 0) {
			kill(run->helper, SIGKILL);
			return err_set(err, r, "fcntl: %s", strerror(-r));
		}
	int64_t until = timeout_ms > 0 ? mono_ms() + timeout_ms + HELPER_GRACE_MS : INT64_MAX;
	r = pump(run, until);
	if (r < 0)
		return err_set(err, r, "run the exec: %s", strerror(-r));
	return 0;
}

static int exec_run(const struct execsync *x, const struct monitors *m,
		    const struct execsync_req *req, const char *id, const struct runtime_args *ra,
		    int64_t timeout_ms, struct execsync_result *res, struct cric_err *err)
{
	char tmo[32], rnd[17], init[16];
	snprintf(tmo, sizeof(tmo), "%lld", (long long)timeout_ms);
	snprintf(init, sizeof(init), "%d", (int)ra->init);
	int r = id_random_hex(rnd, sizeof(rnd), 8);
	if (r < 0)
		return r;
	/* The exec'd process's pid, for the helper: in the monitor's
	 * directory (removed with it), one per call. */
	_cleanup_free_ char *pid_file = NULL;
	if (asprintf(&pid_file, "%s/%s/exec-%s.pid", m->dir, id, rnd) < 0)
		return -ENOMEM;
	/* at most 16 arguments of the helper and the runtime, the command, NULL */
	_cleanup_free_ char **argv = calloc(req->n_cmd + 20, sizeof(char *));
	if (!argv)
		return -ENOMEM;
	size_t a = 0;
	argv[a++] = x->helper;
	/* The runtime starts the process and exits; cric-exec, the
	 * subreaper it is reparented to, waits for it (as containerd's shim
	 * does): no runtime process lives on beside the exec, whose exit the
	 * helper would wait for too. */
	argv[a++] = "--detached";
	if (ra->init > 1) {
		/* where to look for what the exec leaves: see cric-exec.c */
		argv[a++] = "--cgroup-of";
		argv[a++] = init;
	}
	argv[a++] = tmo;
	argv[a++] = pid_file;
	argv[a++] = (char *)ra->runtime;
	argv[a++] = "--root";
	argv[a++] = (char *)ra->root;
	argv[a++] = "exec";
	argv[a++] = "--detach";
	argv[a++] = "--pid-file";
	argv[a++] = pid_file;
	if (ra->tty) {
		argv[a++] = "--env";
		argv[a++] = "TERM=xterm";
	}
	argv[a++] = (char *)id;
	for (size_t i = 0; i < req->n_cmd; i++)
		argv[a++] = req->cmd[i];
	argv[a] = NULL;

	struct run run = { .out.fd = -1, .err.fd = -1, .rep.fd = -1 };
	r = run_helper(x, argv, timeout_ms, &run, err);
	if (r < 0) {
		run_done(&run);
		unlink(pid_file);
		return r;
	}
	/* The report: "exit <status>", "timeout" or "error <why>". */
	char line[4097] = "";
	if (run.rep.data) {
		memcpy(line, run.rep.data, run.rep.len);
		line[run.rep.len] = '\0';
	}
	line[strcspn(line, "\n")] = '\0';
	int status;
	if (strcmp(line, "timeout") == 0) {
		r = err_set(err, -ETIMEDOUT, "command timed out");
	} else if (sscanf(line, "exit %d", &status) == 1) {
		res->exit_code = WIFEXITED(status)     ? WEXITSTATUS(status)
				 : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
						       : 255;
		size_t ol = run.out.len, el = run.err.len;
		execsync_fit(&ol, &el, EXECSYNC_ANSWER_MAX);
		res->out = run.out.data ? run.out.data : strdup("");
		res->err = run.err.data ? run.err.data : strdup("");
		run.out.data = run.err.data = NULL;
		res->out_len = ol;
		res->err_len = el;
		if (!res->out || !res->err) {
			execsync_result_done(res);
			r = -ENOMEM;
		}
	} else {
		r = err_set(err, -EIO, "the exec helper: %s",
			    strncmp(line, "error ", 6) == 0 ? line + 6
			    : line[0]                       ? line
							    : "ended without a report");
	}
	run_done(&run);
	return r;
}

int execsync_target(struct monitors *m, const char *id_or_prefix, struct exec_target *t,
		    struct cric_err *err)
{
	memset(t, 0, sizeof(*t));
	int r = resolve_id(m, id_or_prefix, t->id, err);
	if (r < 0)
		return r;
	const char *id = t->id;
	struct monitor_status st;
	r = monitors_status(m, id, &st, err);
	if (r == -ENOENT)
		return err_set(err, -ENOENT, "container %s not found", id);
	if (r < 0)
		return r;
	if (!st.alive || st.exited)
		return err_set(err, -EBUSY, "container %s is not running", id);
	struct runtime_args ra = { 0 };
	r = monitor_runtime(m, st.monitor_pid, id, &ra);
	if (r < 0) {
		free(ra.buf);
		return err_set(err, r == -ESRCH || r == -ENOENT ? -EBUSY : r,
			       "container %s is not running (its monitor is gone)", id);
	}
	/* Created but not started: runc would run the command all the same,
	 * the CRI says not running. runc (and crun) keep the start fifo in
	 * the container's state directory until it is started. */
	_cleanup_free_ char *fifo = NULL;
	if (asprintf(&fifo, "%s/%s/exec.fifo", ra.root, id) < 0) {
		free(ra.buf);
		return -ENOMEM;
	}
	if (access(fifo, F_OK) == 0) {
		free(ra.buf);
		return err_set(err, -EBUSY, "container %s is not running (created, not started)",
			       id);
	}
	t->buf = ra.buf;
	t->runtime = ra.runtime;
	t->root = ra.root;
	t->tty = ra.tty;
	t->init = st.pid;
	return 0;
}

void exec_target_done(struct exec_target *t)
{
	if (!t)
		return;
	free(t->buf);
	t->buf = NULL;
}

int execsync_run(const struct execsync *x, struct monitors *m, const struct execsync_req *req,
		 struct execsync_result *res, struct cric_err *err)
{
	if (req->n_cmd == 0 || !req->cmd[0][0]) {
		/* the id first: a malformed one is the first thing to say */
		char id[65];
		int r = resolve_id(m, req->id, id, err);
		if (r < 0)
			return r;
		return err_set(err, -EINVAL, "cmd must name a command");
	}
	if (req->timeout_s < 0) {
		char id[65];
		int r = resolve_id(m, req->id, id, err);
		if (r < 0)
			return r;
		return err_set(err, -EINVAL, "timeout must not be negative");
	}
	struct exec_target t;
	int r = execsync_target(m, req->id, &t, err);
	if (r < 0)
		return r;
	const struct runtime_args ra = {
		.runtime = t.runtime, .root = t.root, .tty = t.tty, .init = t.init
	};
	/* The timeout, bounded by the caller's deadline. */
	int64_t timeout_ms = req->timeout_s > 0 ? req->timeout_s * 1000 : 0;
	if (req->timeout_s > INT32_MAX)
		timeout_ms = (int64_t)INT32_MAX * 1000;
	if (req->deadline_ns > 0 && req->deadline_ns != IPC_NO_DEADLINE) {
		int64_t left = (req->deadline_ns - now_unix_ns()) / 1000000;
		if (left <= 0) {
			exec_target_done(&t);
			return err_set(err, -ETIMEDOUT, "command timed out");
		}
		if (timeout_ms == 0 || left < timeout_ms)
			timeout_ms = left;
	}
	r = exec_run(x, m, req, t.id, &ra, timeout_ms, res, err);
	exec_target_done(&t);
	return r;
}
