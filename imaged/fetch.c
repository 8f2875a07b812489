/* imaged's transport helper pool (see fetch.h). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "imaged/fetch.h"

extern char **environ;

#define HELPER_EXIT_WAIT_MS 5000 /* at fetch_pool_free, then SIGKILL */
#define FETCH_SOCKET_BUFFER (1024 * 1024)

struct helper {
	pid_t pid;
	int ctl;      /* our end of the control socket; closed by the reaper */
	unsigned gen; /* the pool's spawn count when it was started */
	struct fetch_pool *pool;
	struct helper *next;
};

struct fetch_pool {
	char *path;
	unsigned idle_sec;
	pthread_mutex_t lock;
	pthread_cond_t gone; /* a helper was reaped */
	struct helper *cur;  /* the one new transfers go to, NULL: none */
	struct helper *all;  /* every helper not reaped yet */
	unsigned gen;
};

int fetch_pool_new(const char *helper, unsigned idle_sec, struct fetch_pool **ret,
		   struct cric_err *err)
{
	struct fetch_pool *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->path = helper ? strdup(helper) : path_beside_exe("cric-fetch");
	if (!p->path) {
		free(p);
		return -ENOMEM;
	}
	if (access(p->path, X_OK) < 0) {
		int r = err_set(err, -ENOPKG, "fetch helper \"%s\": %s", p->path, strerror(errno));
		free(p->path);
		free(p);
		return r;
	}
	p->idle_sec = idle_sec ?: FETCH_DEFAULT_IDLE_SEC;
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->gone, &ca);
	pthread_condattr_destroy(&ca);
	*ret = p;
	return 0;
}

static void *reaper(void *arg)
{
	struct helper *h = arg;
	struct fetch_pool *p = h->pool;
	int st;
	while (waitpid(h->pid, &st, 0) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&p->lock);
	if (p->cur == h)
		p->cur = NULL;
	for (struct helper **i = &p->all; *i; i = &(*i)->next)
		if (*i == h) {
			*i = h->next;
			break;
		}
	close(h->ctl);
	free(h);
	pthread_cond_broadcast(&p->gone);
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* Start a helper, the pool's current one (also in *ret); p->lock held. */
static int helper_start(struct fetch_pool *p, struct helper **ret, struct cric_err *err)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return err_set(err, -errno, "fetch helper: socketpair: %s", strerror(errno));
	struct helper *h = calloc(1, sizeof(*h));
	if (!h) {
		close(sv[0]);
		close(sv[1]);
		return -ENOMEM;
	}
	char idle[16];
	snprintf(idle, sizeof(idle), "%u", p->idle_sec);
	char *argv[] = { "cric-fetch", idle, NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, sv[1], 3);
	posix_spawnattr_init(&at);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &all);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	int r = posix_spawn(&h->pid, p->path, &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(sv[1]);
	if (r != 0) {
		close(sv[0]);
		free(h);
		return err_set(err, -r, "fetch helper \"%s\": %s", p->path, strerror(r));
	}
	h->ctl = sv[0];
	h->pool = p;
	h->gen = ++p->gen;

	pthread_attr_t attr;
	pthread_t t;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	r = pthread_create(&t, &attr, reaper, h);
	pthread_attr_destroy(&attr);
	if (r != 0) {
		kill(h->pid, SIGKILL);
		while (waitpid(h->pid, NULL, 0) < 0 && errno == EINTR)
			;
		close(h->ctl);
		free(h);
		return err_set(err, -r, "fetch helper: thread: %s", strerror(r));
	}
	h->next = p->all;
	p->all = h;
	p->cur = h;
	*ret = h;
	return 0;
}

static int send_fd(int ctl, int fd)
{
	char byte = 'T';
	struct iovec iov = { &byte, 1 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	memset(&u, 0, sizeof(u));
	struct msghdr m = { .msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *h = CMSG_FIRSTHDR(&m);
	h->cmsg_level = SOL_SOCKET;
	h->cmsg_type = SCM_RIGHTS;
	h->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(h), &fd, sizeof(fd));
	for (;;) {
		if (sendmsg(ctl, &m, MSG_NOSIGNAL) >= 0)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

/* A new transfer's socket to a helper (started if need be); *gen: which. */
static int connect_helper(struct fetch_pool *p, unsigned *gen, struct cric_err *err)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return err_set(err, -errno, "fetch helper: socketpair: %s", strerror(errno));
	/* Room for the helper to run ahead of us (the kernel caps it at
	 * wmem_max): fewer wakeups of either side per blob. */
	int sndbuf = FETCH_SOCKET_BUFFER;
	(void)setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	pthread_mutex_lock(&p->lock);
	int r = 0;
	for (int tries = 0; tries < 2; tries++) {
		struct helper *h = p->cur;
		if (!h && (r = helper_start(p, &h, err)) < 0)
			break;
		if (!h) { /* (helper_start() sets it on success) */
			r = -EIO;
			break;
		}
		r = send_fd(h->ctl, sv[1]);
		if (r == 0) {
			*gen = h->gen;
			break;
		}
		/* It exited (idle) or died: the reaper closes it; start anew. */
		p->cur = NULL;
		r = err_set(err, r, "fetch helper: %s", strerror(-r));
	}
	pthread_mutex_unlock(&p->lock);
	close(sv[1]);
	if (r < 0) {
		close(sv[0]);
		return r;
	}
	return sv[0];
}

/* The helper of generation gen lost a transfer before answering: new
 * transfers go to a new one (it exits when idle, or at fetch_pool_free). */
static void retire(struct fetch_pool *p, unsigned gen)
{
	pthread_mutex_lock(&p->lock);
	if (p->cur && p->cur->gen == gen)
		p->cur = NULL;
	pthread_mutex_unlock(&p->lock);
}

pid_t fetch_pool_helper_pid(struct fetch_pool *p)
{
	pthread_mutex_lock(&p->lock);
	pid_t pid = p->cur ? p->cur->pid : 0;
	pthread_mutex_unlock(&p->lock);
	return pid;
}

static char *fmt_num(char buf[16], unsigned v)
{
	snprintf(buf, 16, "%u", v);
	return buf;
}

static int send_request(int fd, const struct fetch_req *rq)
{
	char redirs[16], conn_to[16], to[16];
	int r = fetch_write_str(fd, FETCH_REQ_URL, rq->url);
	if (r == 0)
		r = fetch_write_str(fd, FETCH_REQ_PROTOCOLS,
				    rq->allow_http ? "http,https" : "https");
	if (r == 0 && rq->max_redirs >= 0)
		r = fetch_write_str(fd, FETCH_REQ_MAX_REDIRS,
				    fmt_num(redirs, (unsigned)rq->max_redirs));
	if (r == 0)
		r = fetch_write_str(fd, FETCH_REQ_CONNECT_TIMEOUT,
				    fmt_num(conn_to, rq->connect_timeout_sec));
	if (r == 0 && rq->timeout_sec)
		r = fetch_write_str(fd, FETCH_REQ_TIMEOUT, fmt_num(to, rq->timeout_sec));
	if (r == 0)
		r = fetch_write_str(fd, FETCH_REQ_USER_AGENT, rq->user_agent);
	for (size_t i = 0; r == 0 && i < 4 && rq->headers[i]; i++)
		r = fetch_write_str(fd, FETCH_REQ_HEADER, rq->headers[i]);
	if (r == 0)
		r = fetch_write_str(fd, FETCH_REQ_CA_FILE, rq->ca_file);
	if (r == 0)
		r = fetch_write_str(fd, FETCH_REQ_BEARER, rq->bearer);
	if (r == 0 && rq->user && rq->pass) {
		r = fetch_write_str(fd, FETCH_REQ_USER, rq->user);
		if (r == 0)
			r = fetch_write_str(fd, FETCH_REQ_PASS, rq->pass);
	}
	if (r == 0)
		r = fetch_write_str(fd, FETCH_REQ_POST, rq->post);
	if (r == 0)
		r = fetch_write_frame(fd, FETCH_REQ_END, NULL, 0);
	return r;
}

static void reader_freep(struct fetch_reader **r)
{
	free(*r);
}

/* One attempt: 0 with *done, -ECANCELED, or -ECONNRESET (*heard: whether
 * anything came back), -EBADMSG (err set). */
static int attempt(int fd, const struct fetch_req *rq, const struct fetch_ops *ops, void *u,
		   struct fetch_done *done, bool *heard, struct cric_err *err)
{
	_cleanup_(reader_freep) struct fetch_reader *rd = malloc(sizeof(*rd));
	if (!rd)
		return -ENOMEM;
	fetch_reader_init(rd, fd);
	*heard = false;
	int r = send_request(fd, rq);
	if (r < 0)
		return -ECONNRESET; /* the helper dropped it unread */
	for (;;) {
		struct fetch_frame f;
		r = fetch_reader_next(rd, FETCH_TICK_MS, &f);
		if (r == -EBADMSG)
			return err_set(err, r, "fetch helper: malformed frame");
		if (r < 0)
			return r == -ECONNRESET ? r
						: err_set(err, r, "fetch helper: %s", strerror(-r));
		if (r > 0) {
			*heard = true;
			switch (f.type) {
			case FETCH_EV_HEADER:
				r = ops->header(u, (const char *)f.data, f.len);
				break;
			case FETCH_EV_BODY:
				r = ops->body(u, (const char *)f.data, f.len);
				break;
			case FETCH_EV_DONE:
				if (fetch_done_parse(f.data, f.len, done) < 0)
					return err_set(err, -EBADMSG,
						       "fetch helper: malformed result");
				return 0;
			default:
				return err_set(err, -EBADMSG,
					       "fetch helper: malformed frame (type %u)", f.type);
			}
			if (r < 0)
				return -ECANCELED;
		}
		if (ops->tick(u))
			return -ECANCELED;
	}
}

int fetch_perform(struct fetch_pool *p, const struct fetch_req *rq, const struct fetch_ops *ops,
		  void *userdata, struct fetch_done *done, struct cric_err *err)
{
	for (int tries = 0;; tries++) {
		unsigned gen = 0;
		int fd = connect_helper(p, &gen, err);
		if (fd < 0)
			return fd;
		bool heard = false;
		int r = attempt(fd, rq, ops, userdata, done, &heard, err);
		close(fd); /* on a stop, the helper's curl sees it and aborts */
		if (r != -ECONNRESET)
			return r;
		retire(p, gen);
		if (heard || tries > 0)
			return err_set(err, r,
				       "the fetch helper (cric-fetch) exited during the transfer");
	}
}

struct fetch_pool *fetch_pool_free(struct fetch_pool *p)
{
	if (!p)
		return NULL;
	pthread_mutex_lock(&p->lock);
	p->cur = NULL;
	for (struct helper *h = p->all; h; h = h->next)
		shutdown(h->ctl, SHUT_RDWR);
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += HELPER_EXIT_WAIT_MS / 1000;
	bool killed = false;
	while (p->all) {
		if (pthread_cond_timedwait(&p->gone, &p->lock, &until) == ETIMEDOUT && !killed) {
			for (struct helper *h = p->all; h; h = h->next)
				kill(h->pid, SIGKILL);
			killed = true;
			until.tv_sec += HELPER_EXIT_WAIT_MS / 1000;
		}
	}
	pthread_mutex_unlock(&p->lock);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->gone);
	free(p->path);
	free(p);
	return NULL;
}
