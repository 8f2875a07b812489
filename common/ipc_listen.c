/* A listener that recovers from nng 1.5.2's bug #1518; see ipc_listen.h. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "ipc.h"
#include "ipc_listen.h"
#include "log.h"

struct ipc_listener {
	nng_socket sock;
	nng_listener nl; /* the guard thread alone replaces it */
	char *path;
	char *daemon;
	mode_t mode;
	gid_t gid;
	uint64_t errors_seen; /* the listener's "other" counter when last read */
	atomic_uint added;    /* pipes that reached the socket, ever */
	atomic_uint recoveries;
	int wake_fd; /* eventfd: stop */
	atomic_bool stopping;
	pthread_t guard;
	bool guard_started;
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* LeakSanitizer's interface, present only in sanitized builds. */
extern void __lsan_disable(void) __attribute__((weak));
extern void __lsan_enable(void) __attribute__((weak));

static int listen_now(struct ipc_listener *l, struct cric_err *err)
{
	char url[sizeof(((struct sockaddr_un *)0)->sun_path) + 8];
	snprintf(url, sizeof(url), "ipc://%s", l->path);
	/* nng 1.5.2 never frees a closed listener's transport endpoint while
	 * it holds negotiated pipes the socket never took, which is what a
	 * wedged listener holds: each recovery leaks it (a few KiB, with the
	 * clients that were stuck in it). Known and bounded: LeakSanitizer is
	 * told to take the listener's allocations, and what hangs off them,
	 * as reachable. */
	if (__lsan_disable)
		__lsan_disable();
	nng_listener nl;
	int rv = nng_listener_create(&nl, l->sock, url);
	if (rv == 0)
		rv = nng_listener_set_int(nl, NNG_OPT_IPC_PERMISSIONS, (int)l->mode);
	if (rv == 0)
		rv = nng_listener_start(nl, 0);
	if (__lsan_enable)
		__lsan_enable();
	if (rv != 0) {
		if (nng_listener_id(nl) > 0)
			nng_listener_close(nl);
		return err_set(err, rv == NNG_EADDRINUSE ? -EADDRINUSE : -EIO,
			       "listen on ipc://%s: %s", l->path, nng_strerror(rv));
	}
	/* The group after the mode: the file is never open to a group it
	 * should not be. The daemons' socket directories are set-group-ID, so
	 * the file has it already (root daemons without CAP_CHOWN could not
	 * give it). */
	struct stat st;
	if (l->gid != (gid_t)-1 && lstat(l->path, &st) == 0 && st.st_gid != l->gid &&
	    lchown(l->path, (uid_t)-1, l->gid) < 0) {
		/* Only a daemon without CAP_CHOWN (netd), in an ipc directory
		 * that was not set-group-ID yet: its socket stays root's. */
		if (errno == EPERM) {
			log_warning("%s: cannot give \"%s\" to group %ld (no CAP_CHOWN): only root "
				    "may call it until it restarts",
				    l->daemon, l->path, (long)l->gid);
		} else {
			int r = -errno;
			nng_listener_close(nl);
			return err_set(err, r,
				       "listen on ipc://%s: give the socket to group %ld: %s",
				       l->path, (long)l->gid, strerror(-r));
		}
	}
	l->nl = nl;
	l->errors_seen = 0; /* a new listener counts from zero */
	return 0;
}

/* The listener's "other" accept-error counter into *ret; false when nng's
 * statistics do not have it. */
static bool accept_errors(struct ipc_listener *l, uint64_t *ret)
{
	nng_stat *all = NULL;
	if (nng_stats_get(&all) != 0)
		return false;
	nng_stat *ls = nng_stat_find_listener(all, l->nl);
	nng_stat *other = ls ? nng_stat_find(ls, "other") : NULL;
	if (other)
		*ret = nng_stat_value(other);
	nng_stats_free(all);
	return other != NULL;
}

/* Connect as a REQ client and send our half of the handshake; the live
 * listener answers and adds the pipe. Returns the descriptor (closed by
 * the caller once the verdict is in) or -errno. */
static int probe_connect(const char *path)
{
	static const uint8_t req_header[8] = { 0, 'S', 'P', 0, 0x00, 0x30, 0, 0 };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    send(fd, req_header, sizeof(req_header), MSG_NOSIGNAL) != sizeof(req_header)) {
		int r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

/* Wait up to ms on the wake descriptor; true when asked to stop. */
static bool wait_stop(struct ipc_listener *l, int ms)
{
	struct pollfd w = { .fd = l->wake_fd, .events = POLLIN };
	(void)poll(&w, 1, ms);
	return atomic_load(&l->stopping);
}

/* Read nng's 8-byte SP header from the probe within ms; true once read
 * (or when asked to stop). */
static bool probe_answered(struct ipc_listener *l, int fd, int ms)
{
	uint8_t h[8];
	size_t got = 0;
	int64_t end = mono_ms() + ms;
	while (got < sizeof(h)) {
		int64_t left = end - mono_ms();
		if (left <= 0)
			return false;
		struct pollfd p[2] = { { .fd = fd, .events = POLLIN },
				       { .fd = l->wake_fd, .events = POLLIN } };
		if (poll(p, 2, (int)left) < 0 && errno != EINTR)
			return false;
		if (atomic_load(&l->stopping))
			return true;
		if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		ssize_t n = recv(fd, h + got, sizeof(h) - got, MSG_DONTWAIT);
		if (n <= 0 && !(n < 0 && (errno == EAGAIN || errno == EINTR)))
			return false;
		if (n > 0)
			got += (size_t)n;
	}
	return true;
}

/* True unless the listener is wedged: our probe's handshake completes but
 * no pipe reaches the socket within IPC_GUARD_PROBE_MS.
 *
 * The probe never leaves before nng has written its header: a connection
 * closed before nng answers it is exactly the aborted handshake that wedges
 * the listener, so a probe that gave up early would cause what it looks
 * for. A listener that does not answer within IPC_GUARD_ANSWER_MS is not
 * wedged by #1518 (the wedge still accepts and answers; this is a stalled
 * process or machine) and is left alone: listening again cuts every
 * connection, calls in flight included, so it is done only on proof. */
static bool listener_alive(struct ipc_listener *l)
{
	unsigned before = atomic_load(&l->added);
	_cleanup_close_ int fd = probe_connect(l->path);
	if (fd < 0)
		return false; /* nothing listens where it should */
	if (!probe_answered(l, fd, IPC_GUARD_ANSWER_MS)) {
		log_warning("%s: nng did not answer a connection on \"%s\" within %d ms (a "
			    "stalled process, not nng bug #1518): leaving the listener as it is",
			    l->daemon, l->path, IPC_GUARD_ANSWER_MS);
		return true;
	}
	int64_t end = mono_ms() + IPC_GUARD_PROBE_MS;
	while (atomic_load(&l->added) == before) {
		int64_t left = end - mono_ms();
		if (left <= 0)
			return false;
		if (wait_stop(l, left < 10 ? (int)left : 10))
			return true; /* stopping: no verdict needed */
	}
	return true;
}

static void relisten(struct ipc_listener *l)
{
	struct cric_err err = { { 0 } };
	log_warning("%s: nng stopped handing new connections on \"%s\" to the socket (nng bug "
		    "#1518, a peer left mid-handshake): listening again; clients redial",
		    l->daemon, l->path);
	nng_listener_close(l->nl); /* removes the socket file, frees stuck clients */
	if (listen_now(l, &err) < 0) {
		log_error("%s: %s; retrying", l->daemon, err.msg);
		l->nl = (nng_listener)NNG_LISTENER_INITIALIZER;
		return;
	}
	atomic_fetch_add(&l->recoveries, 1);
}

/* Our probe's connection, closed once the verdict is in, counts one
 * "other" accept error of its own a moment later (nng 1.5.2): wait for it
 * (up to IPC_GUARD_SETTLE_MS) and take it as seen, or the next check
 * probes again for it, and so on forever (every listener probed itself
 * about 6 times a second while idle: about 1 s of CPU a minute across the
 * daemons). More than one new error: someone else's came too; it stays
 * unseen and is looked into at the next check. */
static void absorb_probe_error(struct ipc_listener *l)
{
	int64_t end = mono_ms() + IPC_GUARD_SETTLE_MS;
	uint64_t now = l->errors_seen;
	while (accept_errors(l, &now) && now == l->errors_seen && mono_ms() < end)
		if (wait_stop(l, 10))
			return;
	if (now == l->errors_seen + 1)
		l->errors_seen = now;
}

static void *guard(void *arg)
{
	struct ipc_listener *l = arg;
	while (!wait_stop(l, IPC_GUARD_CHECK_MS)) {
		if (nng_listener_id(l->nl) <= 0) {
			struct cric_err err = { { 0 } };
			if (listen_now(l, &err) == 0)
				atomic_fetch_add(&l->recoveries, 1);
			continue;
		}
		uint64_t errors = l->errors_seen;
		if (!accept_errors(l, &errors) || errors == l->errors_seen)
			continue;
		l->errors_seen = errors;
		if (!listener_alive(l)) {
			if (!atomic_load(&l->stopping))
				relisten(l);
		} else {
			absorb_probe_error(l);
		}
	}
	return NULL;
}

void ipc_listener_pipe_added(struct ipc_listener *l)
{
	atomic_fetch_add(&l->added, 1);
}

unsigned ipc_listener_recoveries(const struct ipc_listener *l)
{
	return atomic_load(&l->recoveries);
}

/* True when something accepts connections at path. */
static bool path_is_live(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	return fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
}

struct ipc_listener *ipc_listener_new(nng_socket sock, const char *path, mode_t mode, gid_t gid,
				      const char *daemon)
{
	struct ipc_listener *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->sock = sock;
	l->mode = mode;
	l->gid = gid;
	l->wake_fd = -1;
	l->path = strdup(path);
	l->daemon = strdup(daemon);
	if (!l->path || !l->daemon)
		return ipc_listener_free(l);
	return l;
}

int ipc_listener_start(struct ipc_listener *l, struct cric_err *err)
{
	if (strlen(l->path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return err_set(err, -ENAMETOOLONG, "listen on ipc://%s: path too long", l->path);
	/* nng replaces whatever is at the path: only ever replace a socket,
	 * and only a dead one. */
	struct stat st;
	if (lstat(l->path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return err_set(err, -EEXIST,
				       "listen on ipc://%s: \"%s\" exists and is not a socket",
				       l->path, l->path);
		if (path_is_live(l->path))
			return err_set(err, -EADDRINUSE,
				       "listen on ipc://%s: address in use (another %s running?)",
				       l->path, l->daemon);
		log_info("removing stale socket \"%s\"", l->path);
		(void)unlink(l->path);
	}
	int r = listen_now(l, err);
	if (r < 0)
		return r;
	uint64_t v;
	if (!accept_errors(l, &v))
		log_warning("%s: nng has no statistics for the listener on \"%s\": a peer that "
			    "leaves mid-handshake may cut it off from new clients (nng bug #1518)",
			    l->daemon, l->path);
	l->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->wake_fd < 0)
		r = err_set(err, -errno, "listen on ipc://%s: eventfd: %m", l->path);
	if (r == 0) {
		r = -pthread_create(&l->guard, NULL, guard, l);
		if (r < 0)
			err_set(err, r, "listen on ipc://%s: start the listener's guard", l->path);
		l->guard_started = r == 0;
	}
	if (r < 0) {
		nng_listener_close(l->nl);
		l->nl = (nng_listener)NNG_LISTENER_INITIALIZER;
	}
	return r;
}

void ipc_listener_stop(struct ipc_listener *l)
{
	if (!l || !l->guard_started)
		return;
	atomic_store(&l->stopping, true);
	uint64_t one = 1;
	(void)!write(l->wake_fd, &one, sizeof(one));
	pthread_join(l->guard, NULL);
	l->guard_started = false;
}

struct ipc_listener *ipc_listener_free(struct ipc_listener *l)
{
	if (!l)
		return NULL;
	ipc_listener_stop(l);
	if (l->wake_fd >= 0)
		close(l->wake_fd);
	free(l->path);
	free(l->daemon);
	free(l);
	return NULL;
}
