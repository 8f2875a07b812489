#include "exitwatch.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/pidfd.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "oci.h"

#define RETRY_FIRST_MS 100
#define RETRY_MAX_MS   2000

struct watch {
	char key[65];
	int pidfd;      /* -1: the process is gone, the callback is due */
	int64_t due_ns; /* monotonic: when to call back (pidfd == -1) */
	int retry_ms;   /* the wait before the next call back */
	uint64_t
	    version; /* bumped by add and forget: a callback's answer for an older one is stale */
};

struct exit_watch {
	exit_watch_fn fn;
	void *ud;
	pthread_mutex_t lock;
	struct watch *v;
	size_t n, cap;
	uint64_t next_version;
	int wake; /* eventfd: the set changed, or stop */
	/* pidfds that add and forget let go of: the thread may be polling
	 * them, so it closes them itself (their numbers are not reused under
	 * its poll set). */
	int *grave;
	size_t ngrave, capgrave;
	bool stopping;
	/* Started by the first add: a watcher with nothing to watch (no
	 * container ran yet; no pod shares a PID namespace, the kubelet's
	 * default) costs no thread. */
	bool started;
	pthread_t thread;
};

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void kick(struct exit_watch *w)
{
	uint64_t one = 1;
	if (write(w->wake, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warning_errno(-errno, "wake the exit watcher, ignoring");
}

static ssize_t find_locked(struct exit_watch *w, const char *key)
{
	for (size_t i = 0; i < w->n; i++)
		if (strcmp(w->v[i].key, key) == 0)
			return (ssize_t)i;
	return -1;
}

/* Let go of fd, which the thread may be polling. */
static void bury_locked(struct exit_watch *w, int fd)
{
	if (fd < 0)
		return;
	if (w->ngrave == w->capgrave) {
		size_t cap = w->capgrave ? w->capgrave * 2 : 8;
		int *g = realloc(w->grave, cap * sizeof(*g));
		if (!g) {
			close(fd); /* a spurious wake-up of a later watch at worst */
			return;
		}
		w->grave = g;
		w->capgrave = cap;
	}
	w->grave[w->ngrave++] = fd;
}

static void bury_all_locked(struct exit_watch *w)
{
	for (size_t i = 0; i < w->ngrave; i++)
		close(w->grave[i]);
	w->ngrave = 0;
}

static void drop_locked(struct exit_watch *w, size_t i)
{
	bury_locked(w, w->v[i].pidfd);
	w->v[i] = w->v[--w->n];
}

/* The keys due now (copied), and the poll set; with the lock held. */
struct round {
	struct pollfd *fds; /* [0]: the eventfd; then one per watch with a pidfd */
	size_t nfds;
	char (*due)[65];
	uint64_t *due_version;
	size_t ndue;
	int timeout_ms;
};

static int plan_locked(struct exit_watch *w, struct round *x)
{
	x->fds = calloc(w->n + 1, sizeof(*x->fds));
	x->due = calloc(w->n + 1, sizeof(*x->due));
	x->due_version = calloc(w->n + 1, sizeof(*x->due_version));
	if (!x->fds || !x->due || !x->due_version)
		return -ENOMEM;
	x->fds[0] = (struct pollfd){ .fd = w->wake, .events = POLLIN };
	x->nfds = 1;
	x->ndue = 0;
	x->timeout_ms = -1;
	int64_t now = mono_ns();
	for (size_t i = 0; i < w->n; i++) {
		struct watch *e = &w->v[i];
		if (e->pidfd >= 0) {
			x->fds[x->nfds++] = (struct pollfd){ .fd = e->pidfd, .events = POLLIN };
		} else if (e->due_ns <= now) {
			memcpy(x->due[x->ndue], e->key, sizeof(e->key));
			x->due_version[x->ndue++] = e->version;
		} else {
			int64_t ms = (e->due_ns - now) / 1000000 + 1;
			if (x->timeout_ms < 0 || ms < x->timeout_ms)
				x->timeout_ms = (int)ms;
		}
	}
	if (x->ndue)
		x->timeout_ms = 0;
	return 0;
}

static void round_free(struct round *x)
{
	free(x->fds);
	free(x->due);
	free(x->due_version);
}

static void call_back(struct exit_watch *w, const char *key, uint64_t version)
{
	bool done = w->fn(w->ud, key);
	pthread_mutex_lock(&w->lock);
	ssize_t i = find_locked(w, key);
	if (i >= 0 && w->v[i].version == version) {
		struct watch *e = &w->v[i];
		if (done) {
			drop_locked(w, (size_t)i);
		} else {
			e->due_ns = mono_ns() + (int64_t)e->retry_ms * 1000000;
			e->retry_ms =
			    e->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : e->retry_ms * 2;
		}
	}
	pthread_mutex_unlock(&w->lock);
}

static void *run(void *arg)
{
	struct exit_watch *w = arg;
	for (;;) {
		struct round x = { 0 };
		pthread_mutex_lock(&w->lock);
		bury_all_locked(w);
		bool stop = w->stopping;
		int r = stop ? 0 : plan_locked(w, &x);
		pthread_mutex_unlock(&w->lock);
		if (stop) {
			round_free(&x);
			return NULL;
		}
		if (r < 0) {
			round_free(&x);
			log_warning("exit watcher: out of memory, trying again");
			usleep(100 * 1000);
			continue;
		}
		for (size_t k = 0; k < x.ndue; k++)
			call_back(w, x.due[k], x.due_version[k]);
		int n = x.ndue ? 0 : poll(x.fds, x.nfds, x.timeout_ms);
		if (n > 0 && (x.fds[0].revents & POLLIN)) {
			uint64_t v;
			if (read(w->wake, &v, sizeof(v)) < 0 && errno != EAGAIN)
				log_warning_errno(-errno,
						  "exit watcher: read its eventfd, ignoring");
		}
		pthread_mutex_lock(&w->lock);
		int64_t now = mono_ns();
		for (size_t k = 1; n > 0 && k < x.nfds; k++) {
			if (!x.fds[k].revents)
				continue;
			/* By its fd: add and forget may have moved the
			 * watches, but no fd of this round was closed. */
			for (size_t i = 0; i < w->n; i++) {
				struct watch *e = &w->v[i];
				if (e->pidfd != x.fds[k].fd)
					continue;
				close(e->pidfd);
				e->pidfd = -1;
				e->due_ns = now;
				break;
			}
		}
		pthread_mutex_unlock(&w->lock);
		round_free(&x);
	}
}

int exit_watch_new(exit_watch_fn fn, void *ud, struct exit_watch **ret)
{
	_cleanup_free_ struct exit_watch *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->fn = fn;
	w->ud = ud;
	w->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->wake < 0)
		return -errno;
	pthread_mutex_init(&w->lock, NULL);
	*ret = TAKE_PTR(w);
	return 0;
}

struct exit_watch *exit_watch_free(struct exit_watch *w)
{
	if (!w)
		return NULL;
	pthread_mutex_lock(&w->lock);
	w->stopping = true;
	pthread_mutex_unlock(&w->lock);
	kick(w);
	if (w->started)
		pthread_join(w->thread, NULL);
	while (w->n)
		drop_locked(w, w->n - 1);
	bury_all_locked(w);
	free(w->grave);
	free(w->v);
	close(w->wake);
	pthread_mutex_destroy(&w->lock);
	free(w);
	return NULL;
}

int exit_watch_add(struct exit_watch *w, const char *key, pid_t pid, unsigned long long start_time)
{
	if (!key || !*key || strlen(key) >= sizeof(w->v[0].key))
		return -EINVAL;
	int fd = pid > 0 ? pidfd_open(pid, 0) : -1;
	if (fd < 0 && pid > 0 && errno != ESRCH)
		return -errno;
	/* The pidfd names one process from now on: is it still ours? */
	if (fd >= 0 && start_time && !proc_alive(pid, start_time)) {
		close(fd);
		fd = -1;
	}
	pthread_mutex_lock(&w->lock);
	if (!w->started) {
		int rv = pthread_create(&w->thread, NULL, run, w);
		if (rv != 0) {
			pthread_mutex_unlock(&w->lock);
			if (fd >= 0)
				close(fd);
			return -rv;
		}
		w->started = true;
	}
	ssize_t i = find_locked(w, key);
	if (i < 0) {
		if (w->n == w->cap) {
			size_t cap = w->cap ? w->cap * 2 : 16;
			struct watch *v = realloc(w->v, cap * sizeof(*v));
			if (!v) {
				pthread_mutex_unlock(&w->lock);
				if (fd >= 0)
					close(fd);
				return -ENOMEM;
			}
			w->v = v;
			w->cap = cap;
		}
		i = (ssize_t)w->n++;
	} else {
		bury_locked(w, w->v[i].pidfd);
	}
	struct watch *e = &w->v[i];
	snprintf(e->key, sizeof(e->key), "%s", key);
	e->pidfd = fd;
	e->due_ns = mono_ns();
	e->retry_ms = RETRY_FIRST_MS;
	e->version = ++w->next_version;
	pthread_mutex_unlock(&w->lock);
	kick(w);
	return 0;
}

void exit_watch_forget(struct exit_watch *w, const char *key)
{
	pthread_mutex_lock(&w->lock);
	ssize_t i = find_locked(w, key);
	if (i >= 0)
		drop_locked(w, (size_t)i);
	pthread_mutex_unlock(&w->lock);
	kick(w);
}
