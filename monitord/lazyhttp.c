/* HTTP servers started at their first connection; see lazyhttp.h. */
#include "lazyhttp.h"

#include <errno.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.h"

struct lazy_http {
	int fd;      /* the listening socket; -1 once a server owns it or closed */
	int stop_fd; /* eventfd: lazy_http_free() wakes the thread */
	bool now;
	const char *what;
	lazy_http_start_fn start;
	void *ud;
	pthread_t thread;
	int r; /* start's result (now) */
	struct cric_err err;
};

/* Drop every capability of the calling thread (capabilities are per
 * thread; threads it makes inherit its sets). */
static int drop_thread_caps(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2];
	memset(d, 0, sizeof(d));
	return syscall(SYS_capset, &h, d) < 0 ? -errno : 0;
}

/* Until a connection waits on l->fd (true) or free is called (false). */
static bool first_connection(struct lazy_http *l)
{
	struct pollfd p[2] = { { .fd = l->fd, .events = POLLIN },
			       { .fd = l->stop_fd, .events = POLLIN } };
	for (;;) {
		int n = poll(p, 2, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			log_warning("%s: wait for a connection: %s, ignoring", l->what,
				    strerror(errno));
			return false;
		}
		if (p[1].revents)
			return false;
		if (p[0].revents)
			return true;
	}
}

static void *run(void *arg)
{
	struct lazy_http *l = arg;
	/* Named like libmicrohttpd's own threads, which it starts and which
	 * inherit its empty sets: what faces the network holds nothing. */
	pthread_setname_np(pthread_self(), "MHD-wait");
	int r = drop_thread_caps();
	if (r < 0) {
		l->r = err_set(&l->err, r, "could not drop capabilities for the HTTP thread");
	} else if (l->now || first_connection(l)) {
		if ((l->r = l->start(l->ud, l->fd, &l->err)) == 0)
			l->fd = -1; /* the server's */
	} else {
		return NULL;
	}
	if (l->r < 0 && !l->now) {
		log_warning("%s: %s, refusing its connections", l->what, l->err.msg);
		close(l->fd);
		l->fd = -1;
	}
	return NULL;
}

int lazy_http_open(int fd, const char *what, bool now, lazy_http_start_fn start, void *ud,
		   struct lazy_http **ret, struct cric_err *err)
{
	struct lazy_http *l = calloc(1, sizeof(*l));
	if (!l) {
		close(fd);
		return -ENOMEM;
	}
	*l = (struct lazy_http){ .fd = fd, .now = now, .what = what, .start = start, .ud = ud };
	if ((l->stop_fd = eventfd(0, EFD_CLOEXEC)) < 0) {
		int r = -errno;
		close(fd);
		free(l);
		return err_set(err, r, "%s: eventfd: %s", what, strerror(-r));
	}
	int rv = pthread_create(&l->thread, NULL, run, l);
	if (rv != 0) {
		close(fd);
		close(l->stop_fd);
		free(l);
		return err_set(err, -rv, "%s: start a thread: %s", what, strerror(rv));
	}
	if (now) {
		pthread_join(l->thread, NULL);
		if (l->r < 0) {
			int r = l->r;
			if (err)
				*err = l->err;
			if (l->fd >= 0)
				close(l->fd);
			close(l->stop_fd);
			free(l);
			return r;
		}
	}
	*ret = l;
	return 0;
}

void lazy_http_free(struct lazy_http *l)
{
	if (!l)
		return;
	if (!l->now) {
		uint64_t one = 1;
		if (write(l->stop_fd, &one, sizeof(one)) < 0)
			log_warning("%s: wake the listener's thread: %s", l->what, strerror(errno));
		pthread_join(l->thread, NULL);
	}
	if (l->fd >= 0)
		close(l->fd);
	close(l->stop_fd);
	free(l);
}

int lazy_http_port(int fd)
{
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} u;
	memset(&u, 0, sizeof(u));
	socklen_t len = sizeof(u);
	if (getsockname(fd, &u.sa, &len) < 0)
		return -errno;
	return ntohs(u.sa.sa_family == AF_INET6 ? u.in6.sin6_port : u.in.sin_port);
}
