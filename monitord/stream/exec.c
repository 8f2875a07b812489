/* The exec backend of a streaming session: the command runs as
 * `<runtime> --root <root> exec ...` in the container under cric-exec (the
 * child subreaper of ExecSync, monitord/exec/cric-exec.c), which kills and
 * reaps every process of the exec when the command ends or when we close
 * its report pipe (the client went away).
 *
 * Without a tty the process's stdin, stdout and stderr are pipes of ours
 * (/dev/null for a stream the request did not ask for) and the runtime
 * waits for it (its exit status is the process's). With a tty the runtime
 * runs detached (`exec -d -t --console-socket`): it hands the pty's master
 * to the socket we listen on and exits; the process, reparented to
 * cric-exec, is waited for there; stdin, stdout and resizes go through the
 * master. TERM=xterm with a tty, as the peers do. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "common/spawn.h"
#include "common/cleanup.h"
#include "common/error.h"
#include "common/ids.h"
#include "common/log.h"
#include "monitord/exec/exec.h"
#include "monitord/execsync.h"
#include "monitord/monitors.h"
#include "session.h"

/* After the helper reported, what the exec wrote is read until the pipes'
 * end, but no longer than this (a process that left the exec's session may
 * hold them). */
#define DRAIN_MS   500
#define RESIZE_MAX 256
#define CHUNK      (32 * 1024)

struct exec_be {
	pid_t helper;
	int in_fd, out_fd, err_fd, rep_fd;
	int console_listen, console_conn, pty; /* tty */
	int drain_fd;                          /* a timerfd once reported */
	char *pid_file, *console_path;
	uint8_t *in_buf;
	size_t in_len;
	bool stdin_eof, reported;
	int status;
	char rep[128];
	size_t rep_len;
	char resize[RESIZE_MAX];
	size_t resize_len;
	unsigned short width, height;
	bool size_known;
};

static struct exec_be *be_of(struct session *s)
{
	return s->be_data;
}

static void close_fdp(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void apply_size(struct exec_be *e)
{
	if (e->pty < 0 || !e->size_known)
		return;
	struct winsize ws = { .ws_row = e->height, .ws_col = e->width };
	if (ioctl(e->pty, TIOCSWINSZ, &ws) < 0)
		log_warning("streaming: resize the exec's terminal: %m, ignoring");
}

static void take_resizes(struct exec_be *e)
{
	if (session_take_resizes(e->resize, &e->resize_len, &e->width, &e->height)) {
		e->size_known = true;
		apply_size(e);
	}
}

static int be_data(struct session *s, struct stream_chan *c, const uint8_t *p, size_t n)
{
	struct exec_be *e = be_of(s);
	if (c->type == ST_RESIZE) {
		if (e->resize_len + n > sizeof(e->resize))
			e->resize_len = 0; /* not JSON we take: start again */
		if (n > sizeof(e->resize))
			return 0;
		memcpy(e->resize + e->resize_len, p, n);
		e->resize_len += n;
		take_resizes(e);
		return 0;
	}
	if (e->stdin_eof || n == 0)
		return 0;
	uint8_t *b = realloc(e->in_buf, e->in_len + n);
	if (!b)
		return -ENOMEM;
	memcpy(b + e->in_len, p, n);
	e->in_buf = b;
	e->in_len += n;
	return 0;
}

static void be_eof(struct session *s, struct stream_chan *c)
{
	if (c->type == ST_STDIN)
		be_of(s)->stdin_eof = true;
}

static bool be_wants_input(struct session *s)
{
	return be_of(s)->in_len < SESSION_STDIN_MAX;
}

static int spawn_helper(struct session *s, char **argv, const int fds[4], pid_t *pid)
{
	char *env[] = { "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL };
	struct spawn_fd map[4];
	for (int i = 0; i < 4; i++)
		map[i] = (struct spawn_fd){ i, fds[i], NULL, 0 };
	return spawn_start(s->exec_helper, argv, env, map, 4, false, EXEC_REPORT_FD, pid);
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -errno : 0;
}

/* The console socket runc sends the pty's master to (tty only). */
static int listen_console(struct exec_be *e)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(e->console_path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, e->console_path);
	e->console_listen = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (e->console_listen < 0)
		return -errno;
	if (bind(e->console_listen, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(e->console_listen, 1) < 0)
		return -errno;
	return 0;
}

static int be_start(struct session *s)
{
	struct exec_be *e = be_of(s);
	const struct stream_request *req = s->req;
	struct cric_err err = { 0 };
	struct exec_target t;
	int r = execsync_target(s->monitors, req->id, &t, &err);
	if (r < 0)
		return r;
	char rnd[17];
	if ((r = id_random_hex(rnd, sizeof(rnd), 8)) < 0) {
		exec_target_done(&t);
		return r;
	}
	if (asprintf(&e->pid_file, "%s/%s/exec-%s.pid", s->monitors->dir, t.id, rnd) < 0 ||
	    (req->tty &&
	     asprintf(&e->console_path, "%s/console-%s.sock", s->monitors->dir, rnd) < 0)) {
		exec_target_done(&t);
		return -ENOMEM;
	}
	size_t n_cmd = 0;
	while (req->cmd[n_cmd])
		n_cmd++;
	_cleanup_free_ char **argv = calloc(n_cmd + 20, sizeof(char *));
	if (!argv) {
		exec_target_done(&t);
		return -ENOMEM;
	}
	size_t a = 0;
	argv[a++] = (char *)s->exec_helper;
	if (req->tty)
		argv[a++] = "--detached";
	argv[a++] = "0";
	argv[a++] = e->pid_file;
	argv[a++] = (char *)t.runtime;
	argv[a++] = "--root";
	argv[a++] = (char *)t.root;
	argv[a++] = "exec";
	argv[a++] = "--pid-file";
	argv[a++] = e->pid_file;
	if (req->tty) {
		argv[a++] = "-d";
		argv[a++] = "--tty";
		argv[a++] = "--console-socket";
		argv[a++] = e->console_path;
		argv[a++] = "--env";
		argv[a++] = "TERM=xterm";
	}
	argv[a++] = t.id;
	for (size_t i = 0; i < n_cmd; i++)
		argv[a++] = req->cmd[i];
	argv[a] = NULL;

	/* The helper's fds 0-3: stdin, stdout, stderr, report. */
	int child[4] = { -1, -1, -1, -1 }, p[2];
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0)
		r = -errno;
	if (r == 0 && req->tty)
		r = listen_console(e);
	for (int i = 0; i < 4 && r == 0; i++) {
		bool want =
		    i == 3 || (!req->tty && ((i == 0 && req->stdin) || (i == 1 && req->stdout) ||
					     (i == 2 && req->stderr)));
		if (!want) {
			child[i] = dup(null);
			continue;
		}
		if (pipe2(p, O_CLOEXEC) < 0) {
			r = -errno;
			break;
		}
		int *ours = i == 0   ? &e->in_fd
			    : i == 1 ? &e->out_fd
			    : i == 2 ? &e->err_fd
				     : &e->rep_fd;
		*ours = i == 0 ? p[1] : p[0];
		child[i] = i == 0 ? p[0] : p[1];
		if ((r = set_nonblock(*ours)) < 0)
			break;
	}
	if (r == 0)
		r = spawn_helper(s, argv, child, &e->helper);
	for (int i = 0; i < 4; i++)
		if (child[i] >= 0)
			close(child[i]);
	if (null >= 0)
		close(null);
	exec_target_done(&t);
	if (r < 0) {
		e->helper = 0;
		return r;
	}
	log_info("streaming: exec in %.12s started (helper %d)%s", req->id, (int)e->helper,
		 req->tty ? " with a tty" : "");
	return 0;
}

/* A fd of ours to poll, with its slot remembered in order. */
enum { P_IN, P_OUT, P_ERR, P_REP, P_CONSOLE_L, P_CONSOLE_C, P_PTY, P_DRAIN, P_N };

static int be_poll_fds(struct session *s, struct pollfd *p, int max)
{
	struct exec_be *e = be_of(s);
	if (max < P_N)
		return 0;
	bool tty = s->req->tty;
	p[P_IN] = (struct pollfd){ e->in_len ? e->in_fd : -1, POLLOUT, 0 };
	p[P_OUT] = (struct pollfd){ session_room(s, ST_STDOUT) ? e->out_fd : -1, POLLIN, 0 };
	p[P_ERR] = (struct pollfd){ session_room(s, ST_STDERR) ? e->err_fd : -1, POLLIN, 0 };
	p[P_REP] = (struct pollfd){ e->rep_fd, POLLIN, 0 };
	p[P_CONSOLE_L] = (struct pollfd){ e->console_listen, POLLIN, 0 };
	p[P_CONSOLE_C] = (struct pollfd){ e->console_conn, POLLIN, 0 };
	short pty_ev =
	    (short)((tty && session_room(s, ST_STDOUT) ? POLLIN : 0) | (e->in_len ? POLLOUT : 0));
	p[P_PTY] = (struct pollfd){ pty_ev ? e->pty : -1, pty_ev, 0 };
	p[P_DRAIN] = (struct pollfd){ e->drain_fd, POLLIN, 0 };
	return P_N;
}

/* Read what fd has into stream t, within the room; 0 at its end. */
static int pump_out(struct session *s, int *fd, enum stream_type t)
{
	uint8_t buf[CHUNK];
	size_t room = session_room(s, t);
	if (room == 0)
		return 1;
	ssize_t k = read(*fd, buf, room < sizeof(buf) ? room : sizeof(buf));
	if (k < 0 && (errno == EAGAIN || errno == EINTR))
		return 1;
	if (k <= 0) { /* EOF, or EIO on a pty whose other side is gone */
		close_fdp(fd);
		return 0;
	}
	int r = session_send(s, t, buf, (size_t)k);
	return r < 0 ? r : 1;
}

static int pump_in(struct exec_be *e, int fd)
{
	ssize_t k = write(fd, e->in_buf, e->in_len);
	if (k < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (k < 0) {
		/* The process closed its stdin: drop what is left. */
		e->in_len = 0;
		e->stdin_eof = true;
		if (fd == e->in_fd)
			close_fdp(&e->in_fd);
		return 0;
	}
	memmove(e->in_buf, e->in_buf + k, e->in_len - (size_t)k);
	e->in_len -= (size_t)k;
	return 0;
}

/* runc connects to the console socket and sends the master. */
static int take_console(struct exec_be *e)
{
	char name[4096];
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { name, sizeof(name) };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	ssize_t k = recvmsg(e->console_conn, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (k < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len == CMSG_LEN(sizeof(int)) && e->pty < 0)
			memcpy(&e->pty, CMSG_DATA(c), sizeof(int));
	close_fdp(&e->console_conn);
	if (e->pty < 0)
		return -EPROTO;
	int r = set_nonblock(e->pty);
	if (r < 0)
		return r;
	apply_size(e);
	return 0;
}

static void read_report(struct exec_be *e)
{
	ssize_t k = read(e->rep_fd, e->rep + e->rep_len, sizeof(e->rep) - 1 - e->rep_len);
	if (k < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (k > 0) {
		e->rep_len += (size_t)k;
		if (e->rep_len < sizeof(e->rep) - 1)
			return;
	}
	/* The helper wrote its report and exited (or died). */
	e->rep[e->rep_len] = '\0';
	close_fdp(&e->rep_fd);
	int st;
	if (sscanf(e->rep, "exit %d", &st) == 1)
		e->status = WIFEXITED(st)     ? WEXITSTATUS(st)
			    : WIFSIGNALED(st) ? 128 + WTERMSIG(st)
					      : 255;
	else {
		log_warning("streaming: the exec helper: %.100s",
			    e->rep_len ? e->rep : "ended without a report");
		e->status = 255;
	}
	e->reported = true;
	e->drain_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	struct itimerspec its = { .it_value = { 0, DRAIN_MS * 1000000L } };
	if (e->drain_fd >= 0)
		timerfd_settime(e->drain_fd, 0, &its, NULL);
}

static int be_on_poll(struct session *s, const struct pollfd *p, int n)
{
	struct exec_be *e = be_of(s);
	int r;
	if (n < P_N)
		return 0;
	if (p[P_CONSOLE_L].revents) {
		int c = accept4(e->console_listen, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (c >= 0) {
			close_fdp(&e->console_listen);
			unlink(e->console_path);
			e->console_conn = c;
		}
	}
	if (p[P_CONSOLE_C].revents && (r = take_console(e)) < 0)
		return r;
	if (p[P_IN].revents)
		pump_in(e, e->in_fd);
	if (p[P_PTY].revents & POLLOUT)
		pump_in(e, e->pty);
	if (e->stdin_eof && e->in_len == 0) {
		if (e->in_fd >= 0)
			close_fdp(&e->in_fd);
		/* With a tty, the end of stdin is ^D at the terminal. */
	}
	if (p[P_OUT].revents && (r = pump_out(s, &e->out_fd, ST_STDOUT)) < 0)
		return r;
	if (p[P_ERR].revents && (r = pump_out(s, &e->err_fd, ST_STDERR)) < 0)
		return r;
	if ((p[P_PTY].revents & (POLLIN | POLLHUP | POLLERR)) &&
	    (r = pump_out(s, &e->pty, ST_STDOUT)) < 0)
		return r;
	if (p[P_REP].revents)
		read_report(e);
	if (p[P_DRAIN].revents) {
		/* Past the drain: what still holds the outputs is not ours. */
		close_fdp(&e->out_fd);
		close_fdp(&e->err_fd);
		close_fdp(&e->pty);
		close_fdp(&e->drain_fd);
	}
	return 0;
}

static void reap_helper(struct exec_be *e)
{
	if (e->helper <= 0)
		return;
	while (waitpid(e->helper, NULL, 0) < 0 && errno == EINTR)
		;
	e->helper = 0;
}

static bool be_done(struct session *s, int *exit_code)
{
	struct exec_be *e = be_of(s);
	if (!e->reported || e->out_fd >= 0 || e->err_fd >= 0 || e->pty >= 0)
		return false;
	reap_helper(e);
	*exit_code = e->status;
	return true;
}

static void be_stop(struct session *s)
{
	struct exec_be *e = be_of(s);
	/* Closing the report pipe tells the helper to kill the exec's
	 * processes; it reports and exits once they are gone. */
	close_fdp(&e->rep_fd);
	close_fdp(&e->in_fd);
	close_fdp(&e->out_fd);
	close_fdp(&e->err_fd);
	close_fdp(&e->pty);
	if (e->helper > 0)
		log_info("streaming: the client of exec helper %d went away: stopping it",
			 (int)e->helper);
	reap_helper(e);
}

static void be_free(struct session *s)
{
	struct exec_be *e = be_of(s);
	if (!e)
		return;
	be_stop(s);
	close_fdp(&e->console_listen);
	close_fdp(&e->console_conn);
	close_fdp(&e->drain_fd);
	if (e->console_path)
		unlink(e->console_path);
	if (e->pid_file)
		unlink(e->pid_file);
	free(e->console_path);
	free(e->pid_file);
	free(e->in_buf);
	free(e);
	s->be_data = NULL;
}

static const struct backend_ops exec_backend = {
	.start = be_start,
	.poll_fds = be_poll_fds,
	.on_poll = be_on_poll,
	.data = be_data,
	.eof = be_eof,
	.wants_input = be_wants_input,
	.done = be_done,
	.stop = be_stop,
	.free = be_free,
};

int exec_backend_init(struct session *s)
{
	struct exec_be *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->in_fd = e->out_fd = e->err_fd = e->rep_fd = -1;
	e->console_listen = e->console_conn = e->pty = e->drain_fd = -1;
	s->be = &exec_backend;
	s->be_data = e;
	return 0;
}
