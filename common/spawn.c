#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/macro.h"

struct outbuf {
	char *data;
	size_t len, cap;
	size_t max;
	bool keep_going; /* past max: read and drop (stderr) instead of failing */
	bool overflow;
};

static void outbuf_free(struct outbuf *b)
{
	free(b->data);
	b->data = NULL;
}

/* Make room for at least one more read below max (plus the final NUL). */
static int outbuf_grow(struct outbuf *b)
{
	size_t want = b->len + 4096 < b->max ? b->len + 4096 : b->max;
	if (b->cap >= want + 1)
		return 0;
	size_t ncap = b->cap * 2 > want + 1 ? b->cap * 2 : want + 1;
	if (ncap > b->max + 1)
		ncap = b->max + 1;
	char *n = realloc(b->data, ncap);
	if (!n)
		return -ENOMEM;
	b->data = n;
	b->cap = ncap;
	return 0;
}

/* Read what fd has now. 1: more may come; 0: EOF; <0: error (-EFBIG past max
 * unless keep_going, which reads on and drops the excess). */
static int outbuf_read(int fd, struct outbuf *b)
{
	char sink[4096];
	for (;;) {
		char *dst = sink;
		size_t room = sizeof(sink);
		if (b->len < b->max) {
			int r = outbuf_grow(b);
			if (r < 0)
				return r;
			dst = b->data + b->len;
			room = b->cap - 1 - b->len;
		}
		ssize_t n = read(fd, dst, room);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? 1 : negative_errno();
		}
		if (n == 0)
			return 0;
		if (dst != sink) {
			b->len += (size_t)n;
		} else {
			b->overflow = true;
			if (!b->keep_going)
				return -EFBIG;
		}
	}
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void spawn_file_actions_destroyp(posix_spawn_file_actions_t **fa)
{
	if (*fa)
		posix_spawn_file_actions_destroy(*fa);
}

static void spawnattr_destroyp(posix_spawnattr_t **a)
{
	if (*a)
		posix_spawnattr_destroy(*a);
}

/* Start the plugin with its stdin/stdout/stderr on the given pipe ends. */
static int spawn(const struct spawn_req *x, int in_r, int out_w, int err_w, pid_t *pid,
		 struct cric_err *err)
{
	posix_spawn_file_actions_t fa_storage;
	posix_spawnattr_t attr_storage;
	_cleanup_(spawn_file_actions_destroyp) posix_spawn_file_actions_t *fa = NULL;
	_cleanup_(spawnattr_destroyp) posix_spawnattr_t *attr = NULL;

	int rv = posix_spawn_file_actions_init(&fa_storage);
	if (rv != 0)
		return err_set(err, -rv, "spawn: %s", strerror(rv));
	fa = &fa_storage;
	rv = posix_spawnattr_init(&attr_storage);
	if (rv != 0)
		return err_set(err, -rv, "spawn: %s", strerror(rv));
	attr = &attr_storage;

	/* netd blocks SIGTERM/SIGINT/SIGHUP and ignores SIGPIPE; a plugin gets
	 * neither. Its own process group lets a timeout kill what it started. */
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	if ((rv = posix_spawn_file_actions_adddup2(fa, in_r, 0)) != 0 ||
	    (rv = posix_spawn_file_actions_adddup2(fa, out_w, 1)) != 0 ||
	    (rv = posix_spawn_file_actions_adddup2(fa, err_w, 2)) != 0 ||
	    (rv = posix_spawn_file_actions_addclosefrom_np(fa, 3)) != 0 ||
	    (rv = posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
						     POSIX_SPAWN_SETPGROUP)) != 0 ||
	    (rv = posix_spawnattr_setsigmask(attr, &none)) != 0 ||
	    (rv = posix_spawnattr_setsigdefault(attr, &all)) != 0 ||
	    (rv = posix_spawnattr_setpgroup(attr, 0)) != 0)
		return err_set(err, -rv, "spawn: %s", strerror(rv));

	char *argv0[] = { (char *)x->path, NULL };
	rv = posix_spawn(pid, x->path, fa, attr, x->argv ? x->argv : argv0, x->env);
	if (rv != 0)
		return err_set(err, -rv, "execute \"%s\": %s", x->path, strerror(rv));
	return 0;
}

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? negative_errno() : 0;
}

struct run {
	pid_t pid;
	int pidfd;
	int in_w, out_r, err_r;
	const char *input;
	size_t input_left;
	struct outbuf out, errout;
	bool reaped;
	int status;
};

static void run_kill(struct run *r)
{
	kill(-r->pid, SIGKILL);
	kill(r->pid, SIGKILL);
}

static void run_reap(struct run *r)
{
	while (!r->reaped) {
		if (waitpid(r->pid, &r->status, 0) == r->pid || errno != EINTR)
			r->reaped = true;
	}
}

/* write() to a pipe whose reader is gone raises SIGPIPE, which would kill
 * a caller that does not ignore it: block it on this thread for the write
 * and consume the one this write raised. */
static ssize_t write_nosignal(int fd, const void *buf, size_t len)
{
	sigset_t pipe_set, old, pending;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	sigpending(&pending);
	bool was_pending = sigismember(&pending, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	ssize_t n = write(fd, buf, len);
	int saved = errno;
	if (n < 0 && errno == EPIPE && !was_pending) {
		const struct timespec zero = { 0, 0 };
		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = saved;
	return n;
}

static int feed_stdin(struct run *r)
{
	while (r->input_left > 0) {
		ssize_t n = write_nosignal(r->in_w, r->input, r->input_left);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			/* EPIPE: the plugin does not read (all of) its input;
			 * its exit status and output will say why. */
			break;
		}
		r->input += n;
		r->input_left -= (size_t)n;
	}
	close_fd(&r->in_w);
	return 0;
}

/* Read stdout/stderr; closes a pipe at EOF. */
static int drain(int *fd, struct outbuf *b)
{
	int k = outbuf_read(*fd, b);
	if (k <= 0)
		close_fd(fd);
	return k < 0 ? k : 0;
}

/* The poll loop: until the plugin exited (and what it wrote was read) or
 * the deadline. */
static int run_loop(struct run *r, unsigned timeout_ms, struct cric_err *err)
{
	int64_t deadline = mono_ms() + timeout_ms;
	for (;;) {
		struct pollfd p[4];
		int np = 0, i_in = -1, i_out = -1, i_err = -1, i_pid = -1;
		if (r->in_w >= 0)
			p[i_in = np++] = (struct pollfd){ .fd = r->in_w, .events = POLLOUT };
		if (r->out_r >= 0)
			p[i_out = np++] = (struct pollfd){ .fd = r->out_r, .events = POLLIN };
		if (r->err_r >= 0)
			p[i_err = np++] = (struct pollfd){ .fd = r->err_r, .events = POLLIN };
		if (r->pidfd >= 0)
			p[i_pid = np++] = (struct pollfd){ .fd = r->pidfd, .events = POLLIN };

		int64_t left = deadline - mono_ms();
		if (left <= 0) {
			run_kill(r);
			return err_set(err, -ETIMEDOUT, "timed out after %u ms, killed",
				       timeout_ms);
		}
		/* Without a pidfd, look for the exit every 10 ms. */
		int wait_ms = r->pidfd >= 0 ? (int)(left > 60000 ? 60000 : left)
					    : (int)(left > 10 ? 10 : left);
		if (np > 0 && poll(p, (nfds_t)np, wait_ms) < 0) {
			if (errno == EINTR)
				continue;
			run_kill(r);
			return err_set(err, negative_errno(), "poll: %s", strerror(errno));
		}
		if (np == 0) {
			struct timespec ts = { 0, (long)wait_ms * 1000000L };
			nanosleep(&ts, NULL);
		}

		int k = 0;
		if (i_in >= 0 && p[i_in].revents)
			k = feed_stdin(r);
		if (k == 0 && i_out >= 0 && p[i_out].revents)
			k = drain(&r->out_r, &r->out);
		if (k == 0 && i_err >= 0 && p[i_err].revents)
			k = drain(&r->err_r, &r->errout);
		if (k == -EFBIG) {
			run_kill(r);
			return err_set(err, -EFBIG, "wrote more than %u bytes to stdout, killed",
				       (unsigned)SPAWN_OUTPUT_MAX);
		}
		if (k < 0) {
			run_kill(r);
			return err_set(err, k, "read its output: %s", strerror(-k));
		}

		bool exited = false;
		if (i_pid >= 0)
			exited = p[i_pid].revents != 0;
		else if (waitpid(r->pid, &r->status, WNOHANG) == r->pid)
			exited = r->reaped = true;
		if (exited) {
			/* Everything it wrote is in the pipes now; what a
			 * process it left behind writes later is not ours. */
			if (r->out_r >= 0)
				k = drain(&r->out_r, &r->out);
			if (k == 0 && r->err_r >= 0)
				k = drain(&r->err_r, &r->errout);
			if (k == -EFBIG)
				return err_set(err, -EFBIG, "wrote more than %u bytes to stdout",
					       (unsigned)SPAWN_OUTPUT_MAX);
			if (k < 0)
				return err_set(err, k, "read its output: %s", strerror(-k));
			return 0;
		}
	}
}

/* Start x's process with its stdio (pipes, or /dev/null when quiet) into
 * r: its pid, our ends of the pipes, its pidfd. */
static int run_start(const struct spawn_req *x, struct run *r, struct cric_err *err)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, errp[2] = { -1, -1 };
	int k = 0;

	if (x->quiet) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null < 0)
			return err_set(err, negative_errno(), "open /dev/null: %s",
				       strerror(errno));
		in[0] = out[1] = errp[1] = null;
		k = spawn(x, null, null, null, &r->pid, err);
		close(null);
		in[0] = out[1] = errp[1] = -1;
		r->input_left = 0;
	} else if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 ||
		   pipe2(errp, O_CLOEXEC) < 0) {
		k = err_set(err, negative_errno(), "pipe: %s", strerror(errno));
		goto close_pipes;
	} else {
		k = spawn(x, in[0], out[1], errp[1], &r->pid, err);
	}
	close_fd(&in[0]);
	close_fd(&out[1]);
	close_fd(&errp[1]);
	if (k < 0)
		goto close_pipes;
	r->in_w = in[1];
	r->out_r = out[0];
	r->err_r = errp[0];
	r->pidfd = pidfd_open(r->pid, 0); /* -1: fall back to polling waitpid */
	return 0;

close_pipes:
	close_fd(&in[0]);
	close_fd(&in[1]);
	close_fd(&out[0]);
	close_fd(&out[1]);
	close_fd(&errp[0]);
	close_fd(&errp[1]);
	return k;
}

/* A finished run's status and output into res (which then owns them). */
static int run_result(struct run *r, struct spawn_result *res)
{
	res->status = r->status;
	res->out = r->out.data ? r->out.data : strdup("");
	res->out_len = r->out.len;
	res->errout = r->errout.data ? r->errout.data : strdup("");
	if (!res->out || !res->errout) {
		free(res->out);
		free(res->errout);
		return -ENOMEM;
	}
	res->out[res->out_len] = '\0';
	res->errout[r->errout.len] = '\0';
	return 0;
}

int spawn_run(const struct spawn_req *x, struct spawn_result *res, struct cric_err *err)
{
	struct run r = {
		.pid = -1,
		.pidfd = -1,
		.in_w = -1,
		.out_r = -1,
		.err_r = -1,
		.input = x->input,
		.input_left = x->input_len,
		.out = { .max = SPAWN_OUTPUT_MAX },
		.errout = { .max = SPAWN_STDERR_MAX, .keep_going = true },
	};
	int k = run_start(x, &r, err);
	if (k < 0)
		return k;
	if (!x->quiet && ((k = set_nonblock(r.in_w)) < 0 || (k = set_nonblock(r.out_r)) < 0 ||
			  (k = set_nonblock(r.err_r)) < 0)) {
		err_set(err, k, "fcntl: %s", strerror(-k));
		run_kill(&r);
	} else {
		if (r.input_left == 0)
			close_fd(&r.in_w);
		k = run_loop(&r, x->timeout_ms, err);
	}
	close_fd(&r.in_w);
	close_fd(&r.out_r);
	close_fd(&r.err_r);
	close_fd(&r.pidfd);
	run_reap(&r);
	if (k < 0) {
		outbuf_free(&r.out);
		outbuf_free(&r.errout);
		return k;
	}
	return run_result(&r, res);
}

void spawn_result_done(struct spawn_result *res)
{
	if (!res)
		return;
	free(res->out);
	free(res->errout);
	res->out = res->errout = NULL;
}

int spawn_start(const char *path, char *const argv[], char *const env[], const struct spawn_fd *map,
		size_t n, bool new_session, int close_above, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	int rv = posix_spawn_file_actions_init(&fa);
	if (rv != 0)
		return -rv;
	if ((rv = posix_spawnattr_init(&at)) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		return -rv;
	}
	for (size_t i = 0; rv == 0 && i < n; i++)
		rv = map[i].source >= 0
			 ? posix_spawn_file_actions_adddup2(&fa, map[i].source, map[i].target)
			 : posix_spawn_file_actions_addopen(&fa, map[i].target, map[i].path,
							    map[i].flags, 0600);
	if (rv == 0 && close_above >= 0)
		rv = posix_spawn_file_actions_addclosefrom_np(&fa, close_above + 1);
	short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
	if (new_session)
		flags |= POSIX_SPAWN_SETSID;
	if (rv == 0)
		rv = posix_spawnattr_setflags(&at, flags);
	if (rv == 0)
		rv = posix_spawnattr_setsigmask(&at, &none);
	if (rv == 0)
		rv = posix_spawnattr_setsigdefault(&at, &all);
	if (rv == 0)
		rv = posix_spawn(pid, path, &fa, &at, argv, env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	return -rv;
}
