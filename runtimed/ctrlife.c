/* Containers after creation: start, stop, remove, status, list, and the
 * pod hooks; see container.h and container-int.h. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/metrics.h"
#include "container-int.h"
#include "exitwatch.h"

static const char *const state_words[] = { "being created", "created", "running", "exited" };

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- exit status, from the monitor ---- */

static struct metric_family exits = {
	.name = "cric_container_exits_total",
	.help = "Containers runtimed saw exit, by reason (Completed, Error, OOMKilled: the OOM "
		"kills).",
	.type = METRIC_COUNTER,
	.labels = { "reason" },
};

static void set_exited(struct ctr_mgr *m, struct container *c, int32_t code, int64_t at, bool oom,
		       const char *message)
{
	pthread_mutex_lock(&m->lock);
	if (c->state == CTR_RUNNING || c->state == CTR_CREATED)
		c->stop_due = true;
	c->state = CTR_EXITED;
	c->exit_code = code;
	c->finished_at = at ? at : now_ns();
	snprintf(c->reason, sizeof(c->reason), "%s",
		 oom         ? "OOMKilled"
		 : code == 0 ? "Completed"
			     : "Error");
	snprintf(c->message, sizeof(c->message), "%s", message ? message : "");
	metric_add(&exits, METRIC_VALUES(c->reason), 1);
	pthread_mutex_unlock(&m->lock);
	int r = ctr_record_save(m, c);
	if (r < 0)
		log_warning_errno(r, "save the record of container %s, ignoring", c->id);
}

/* Replace c's pidfd by fd (-1: none), closing the old one. With the op
 * lock held; the change takes the table lock as well, so that a list may
 * poll every pidfd at once under that lock (poll_alive). */
static void pidfd_set(struct ctr_mgr *m, struct container *c, int fd)
{
	pthread_mutex_lock(&m->lock);
	int old = c->pidfd;
	c->pidfd = fd;
	c->pidfd_pid = c->pid;
	pthread_mutex_unlock(&m->lock);
	if (old >= 0)
		close(old);
}

/* Whether c's init still runs (not even a zombie). The first look reads
 * /proc (the pid and its start time) and keeps a pidfd of the process; the
 * next ones poll it, a syscall instead of an open, read and parse of
 * /proc/<pid>/stat (that was three quarters of runtimed's CPU time for a
 * ListContainers of 200 running containers). With the op lock held. */
static bool init_alive(struct ctr_mgr *m, struct container *c)
{
	if (c->pidfd >= 0 && c->pidfd_pid == c->pid) {
		struct pollfd p = { .fd = c->pidfd, .events = POLLIN };
		int r = poll(&p, 1, 0);
		if (r == 0)
			return true;
		if (r > 0 && !(p.revents & POLLNVAL)) {
			pidfd_set(m, c, -1);
			return false; /* it exited */
		}
	}
	pidfd_set(m, c, -1);
	if (!proc_alive(c->pid, c->pid_start))
		return false;
	/* The pidfd names one process from now on: is it still the init? */
	int fd = pidfd_open(c->pid, 0);
	if (fd >= 0 && proc_alive(c->pid, c->pid_start))
		pidfd_set(m, c, fd);
	else if (fd >= 0)
		close(fd);
	return true;
}

void ctr_refresh(struct ctr_mgr *m, const struct cric_call *call, struct container *c)
{
	if (c->state != CTR_RUNNING)
		return;
	/* Its init still runs: running, and the monitor has nothing to tell
	 * yet. A pidfd poll instead of a monitord round trip per running
	 * container keeps the kubelet's relist and status polls cheap. */
	if (init_alive(m, c))
		return;
	Cric__Monitord__MonitorStatusRequest req = CRIC__MONITORD__MONITOR_STATUS_REQUEST__INIT;
	req.container_id = c->id;
	ProtobufCMessage *out = NULL;
	struct cric_err e;
	if (ctr_call(m->monitord, CRIC_MONITORD(monitor_status), MONITORD_CALL_CAP_MS, call,
		     &req.base, &out, &e) < 0) {
		log_warning("status of container %s: %s, ignoring", c->id, e.msg);
		return;
	}
	_cleanup_pb_ Cric__Monitord__MonitorStatusResponse *st = (void *)out;
	if (st->exited)
		set_exited(m, c, st->exit_code, st->finished_at, st->oom_killed, st->message);
	else if (!st->monitor_alive && !proc_alive(c->pid, c->pid_start))
		/* Gone without an exit record: say so, never invent a code. */
		set_exited(m, c, 255, 0, false,
			   *st->message ? st->message : "the container's monitor died");
}

/* ---- Start ---- */

/* The kubelet links /var/log/containers/ to the log file right after
 * StartContainer, only if it exists. */
static int ensure_log_file(const char *path, struct cric_err *err)
{
	if (!*path || access(path, F_OK) == 0)
		return 0;
	_cleanup_free_ char *dir = strdup(path);
	if (!dir)
		return -ENOMEM;
	*strrchr(dir, '/') = '\0';
	int r = mkdir_p(dir, 0755);
	_cleanup_close_ int fd =
	    r < 0 ? -1 : open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0)
		return err_set(err, r < 0 ? r : negative_errno(), "create the log file \"%s\": %s",
			       path, strerror(r < 0 ? -r : errno));
	return 0;
}

int ctr_start(struct ctr_mgr *m, const struct cric_call *call, const char *id, struct cric_err *err)
{
	struct container *c = NULL;
	int r = ctr_lookup(m, id, &c, err);
	if (r < 0 || !c)
		return r < 0 ? r : -EIO;
	pthread_mutex_lock(&c->op);
	const struct oci_handler *h = ctr_handler(m, c->handler);
	if (c->removed || c->state != CTR_CREATED) {
		r = err_set(err, -EBUSY, "container %s is %s, not created", c->id,
			    c->removed ? "removed" : state_words[c->state]);
	} else if (!h) {
		r = err_set(err, -ENOPKG, "runtime handler \"%s\" is not configured", c->handler);
	} else {
		int64_t t0 = now_ns();
		int k;
		r = c->restore ? ctr_restore_start(m, call, c, err)
			       : oci_start(h, c->id, c->bundle, err);
		if (r == 0) {
			pthread_mutex_lock(&m->lock);
			c->state = CTR_RUNNING;
			c->started_at = t0;
			c->start_pending = true;
			pthread_mutex_unlock(&m->lock);
			if (m->exits &&
			    (k = exit_watch_add(m->exits, c->id, c->pid, c->pid_start)) < 0)
				log_warning_errno(k,
						  "watch the exit of container %s: its STOPPED "
						  "event waits for a status call, ignoring",
						  c->id);
			k = ctr_record_save(m, c);
			if (k < 0)
				r = err_set(err, k, "save the container's record: %s",
					    strerror(-k));
		}
		if (r == 0)
			r = ensure_log_file(c->log_path, err);
		if (r == 0)
			log_info("container %s started", c->id);
	}
	pthread_mutex_unlock(&c->op);
	ctr_put(m, c);
	return r;
}

/* ---- Stop ---- */

/* With the op lock held. */
static int stop_locked(struct ctr_mgr *m, const struct cric_call *call, struct container *c,
		       int64_t timeout_s, struct cric_err *err)
{
	ctr_refresh(m, call, c);
	if (c->state != CTR_RUNNING && c->state != CTR_CREATED)
		return 0;
	int r = -ETIMEDOUT;
	if (timeout_s > 0) {
		int ms = timeout_s > 24 * 3600 ? 24 * 3600 * 1000 : (int)timeout_s * 1000;
		r = proc_signal_wait(c->pid, c->pid_start, c->stop_signal, ms);
	}
	if (r == -ETIMEDOUT)
		r = proc_kill_wait(c->pid, c->pid_start, 10000);
	if (r < 0)
		return err_set(err, r, "stop container %s: %s", c->id, strerror(-r));
	/* The monitor reaps it and writes the exit record: wait for it
	 * (briefly: it is the monitor's next step, a millisecond or two
	 * after the exit; a fixed 20 ms nap made every stop 20 ms slower
	 * than runc's kill). 1, 2, 4 ... 20 ms apart, 2 s in all. */
	for (int waited = 0, nap = 1; waited < 2000 && c->state == CTR_RUNNING;) {
		ctr_refresh(m, call, c);
		if (c->state != CTR_RUNNING)
			break;
		usleep((useconds_t)nap * 1000);
		waited += nap;
		nap = nap * 2 > 20 ? 20 : nap * 2;
	}
	if (c->state == CTR_CREATED || c->state == CTR_RUNNING)
		set_exited(m, c, 128 + SIGKILL, 0, false,
			   "stopped; the monitor left no exit record");
	return 0;
}

int ctr_stop(struct ctr_mgr *m, const struct cric_call *call, const char *id, int64_t timeout_s,
	     struct cric_err *err)
{
	struct container *c = NULL;
	int r = ctr_lookup(m, id, &c, err);
	if (r == -ENOENT)
		return 0; /* CRI: stopping an unknown container succeeds */
	if (r < 0 || !c)
		return r < 0 ? r : -EIO;
	pthread_mutex_lock(&c->op);
	if (!c->removed)
		r = stop_locked(m, call, c, timeout_s, err);
	if (r == 0)
		log_info("container %s stopped", c->id);
	pthread_mutex_unlock(&c->op);
	ctr_put(m, c);
	return r;
}

/* ---- Remove ---- */

static int remove_locked(struct ctr_mgr *m, const struct cric_call *call, struct container *c,
			 struct cric_err *err)
{
	if (c->removed)
		return 0;
	int r = ctr_teardown(m, call, c, err);
	if (r < 0)
		return r;
	if (m->exits)
		exit_watch_forget(m->exits, c->id);
	ctr_table_remove(m, c);
	log_info("container %s removed", c->id);
	return 0;
}

int ctr_remove(struct ctr_mgr *m, const struct cric_call *call, const char *id,
	       struct cric_err *err)
{
	struct container *c = NULL;
	int r = ctr_lookup(m, id, &c, err);
	if (r == -ENOENT)
		return 0; /* CRI: removing an unknown container succeeds */
	if (r < 0 || !c)
		return r < 0 ? r : -EIO;
	pthread_mutex_lock(&c->op);
	r = remove_locked(m, call, c, err);
	pthread_mutex_unlock(&c->op);
	ctr_put(m, c);
	return r;
}

/* ---- exits ---- */

void ctr_watch_exits(struct ctr_mgr *m, struct exit_watch *w)
{
	pthread_mutex_lock(&m->lock);
	m->exits = w;
	size_t n = m->n;
	struct ctr_ref *v = w ? calloc(n ? n : 1, sizeof(*v)) : NULL;
	pid_t *pid = w ? calloc(n ? n : 1, sizeof(*pid)) : NULL;
	unsigned long long *start = w ? calloc(n ? n : 1, sizeof(*start)) : NULL;
	size_t k = 0;
	for (size_t i = 0; v && pid && start && i < n; i++) {
		struct container *c = m->items[i];
		if (c->state != CTR_RUNNING)
			continue;
		memcpy(v[k].id, c->id, sizeof(c->id));
		pid[k] = c->pid;
		start[k++] = c->pid_start;
	}
	pthread_mutex_unlock(&m->lock);
	if (w && (!v || !pid || !start))
		log_warning("watch the exits of the running containers: out of memory, "
			    "their STOPPED events wait for a status call");
	/* Those that exited while runtimed was down are called back at once:
	 * their STOPPED goes out now, after the restart. */
	for (size_t i = 0; i < k; i++) {
		int r = exit_watch_add(w, v[i].id, pid[i], start[i]);
		if (r < 0)
			log_warning_errno(r, "watch the exit of container %s, ignoring", v[i].id);
	}
	free(v);
	free(pid);
	free(start);
}

bool ctr_exit_check(struct ctr_mgr *m, const char *id)
{
	struct container *c = NULL;
	struct cric_err err;
	int r = ctr_lookup(m, id, &c, &err);
	if (r < 0 || !c)
		return r == -ENOENT;
	pthread_mutex_lock(&c->op);
	if (!c->removed)
		ctr_refresh(m, NULL, c);
	bool done = c->removed || c->state != CTR_RUNNING;
	pthread_mutex_unlock(&c->op);
	ctr_put(m, c);
	return done;
}

void ctr_start_published(struct ctr_mgr *m, const char *id)
{
	struct container *c = NULL;
	if (ctr_lookup(m, id, &c, NULL) < 0 || !c)
		return;
	pthread_mutex_lock(&m->lock);
	c->start_pending = false;
	pthread_mutex_unlock(&m->lock);
	ctr_put(m, c);
}

int ctr_take_stopped(struct ctr_mgr *m, struct ctr_ref **ret, size_t *n)
{
	pthread_mutex_lock(&m->lock);
	size_t k = 0;
	for (size_t i = 0; i < m->n; i++)
		k += m->items[i]->stop_due && !m->items[i]->start_pending;
	struct ctr_ref *v = k ? calloc(k, sizeof(*v)) : NULL;
	if (k && !v) {
		pthread_mutex_unlock(&m->lock);
		return -ENOMEM;
	}
	k = 0;
	for (size_t i = 0; v && i < m->n; i++) {
		struct container *c = m->items[i];
		if (!c->stop_due || c->start_pending)
			continue;
		c->stop_due = false;
		memcpy(v[k].id, c->id, sizeof(c->id));
		memcpy(v[k++].pod_id, c->pod_id, sizeof(c->pod_id));
	}
	pthread_mutex_unlock(&m->lock);
	*ret = v;
	*n = k;
	return 0;
}

/* ---- Status / List ---- */

void ctr_info_free(struct ctr_info *i)
{
	if (!i)
		return;
	if (i->config)
		protobuf_c_message_free_unpacked(&i->config->base, NULL);
	free(i->image_ref);
	free(i->log_path);
	free(i->spec);
	free(i);
}

void ctr_info_list_free(struct ctr_info **l)
{
	for (size_t i = 0; l && l[i]; i++)
		ctr_info_free(l[i]);
	free(l);
}

/* With the op lock held. */
static struct ctr_info *info_of(struct ctr_mgr *m, struct container *c, bool verbose)
{
	struct ctr_info *i = calloc(1, sizeof(*i));
	if (!i)
		return NULL;
	pthread_mutex_lock(&m->lock);
	memcpy(i->id, c->id, sizeof(i->id));
	memcpy(i->pod_id, c->pod_id, sizeof(i->pod_id));
	i->state = c->state;
	i->created_at = c->created_at;
	i->started_at = c->started_at;
	i->finished_at = c->finished_at;
	i->exit_code = c->exit_code;
	snprintf(i->reason, sizeof(i->reason), "%s", c->reason);
	snprintf(i->message, sizeof(i->message), "%s", c->message);
	snprintf(i->image_id, sizeof(i->image_id), "%s", c->image_id);
	/* A pointer, not a PATH_MAX array: a list takes one ctr_info per
	 * container, and 200 of 4.9 KiB each grew and trimmed the heap at
	 * every ListContainers (perf: malloc, page faults). */
	i->log_path = strdup(c->log_path);
	i->image_ref = strdup(c->image_ref ? c->image_ref : "");
	i->pid = c->state == CTR_RUNNING ? c->pid : 0;
	i->uid = c->uid;
	i->gid = c->gid;
	i->stop_signal = c->stop_signal;
	i->config = runtime__v1__container_config__unpack(NULL, c->config_len, c->config);
	pthread_mutex_unlock(&m->lock);
	size_t len;
	_cleanup_free_ char *path = verbose ? path_join(c->bundle, "config.json") : NULL;
	if (path && read_file(path, CTR_RECORD_MAX, &i->spec, &len) < 0)
		i->spec = NULL;
	if (!i->image_ref || !i->log_path || !i->config) {
		ctr_info_free(i);
		return NULL;
	}
	return i;
}

int ctr_get(struct ctr_mgr *m, const struct cric_call *call, const char *id, bool verbose,
	    struct ctr_info **ret, struct cric_err *err)
{
	struct container *c = NULL;
	int r = ctr_lookup(m, id, &c, err);
	if (r < 0 || !c)
		return r < 0 ? r : -EIO;
	pthread_mutex_lock(&c->op);
	ctr_refresh(m, call, c);
	*ret = info_of(m, c, verbose);
	pthread_mutex_unlock(&c->op);
	ctr_put(m, c);
	return *ret ? 0 : -ENOMEM;
}

/* The containers (not being created) matching pod_id (NULL: all), each
 * with a reference; NULL-terminated. */
static struct container **collect(struct ctr_mgr *m, const char *pod_id)
{
	pthread_mutex_lock(&m->lock);
	struct container **v = calloc(m->n + 1, sizeof(*v));
	size_t k = 0;
	for (size_t i = 0; v && i < m->n; i++) {
		struct container *c = m->items[i];
		if (c->state == CTR_CREATING || (pod_id && strcmp(c->pod_id, pod_id) != 0))
			continue;
		c->refs++;
		v[k++] = c;
	}
	pthread_mutex_unlock(&m->lock);
	return v;
}

/* Which of the n containers v were seen running at one instant: one poll
 * of all their pidfds (instead of one per container in ctr_refresh), with
 * the table lock held so none is closed meanwhile. NULL (all to be
 * refreshed one by one) without memory. */
static bool *poll_alive(struct ctr_mgr *m, struct container **v, size_t n)
{
	bool *alive = calloc(n ? n : 1, sizeof(*alive));
	struct pollfd *p = calloc(n ? n : 1, sizeof(*p));
	size_t *at = calloc(n ? n : 1, sizeof(*at));
	if (!alive || !p || !at) {
		free(p);
		free(at);
		free(alive);
		return NULL;
	}
	pthread_mutex_lock(&m->lock);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		struct container *c = v[i];
		if (c->state != CTR_RUNNING || c->pidfd < 0 || c->pidfd_pid != c->pid)
			continue;
		p[k] = (struct pollfd){ .fd = c->pidfd, .events = POLLIN };
		at[k++] = i;
	}
	if (k && poll(p, k, 0) >= 0)
		for (size_t j = 0; j < k; j++)
			alive[at[j]] = p[j].revents == 0;
	pthread_mutex_unlock(&m->lock);
	free(p);
	free(at);
	return alive;
}

/* ctr_refresh, but skipped for a container poll_alive saw running then
 * (and still marked running): seen at one instant, as a list is. */
static void refresh_unless_alive(struct ctr_mgr *m, const struct cric_call *call,
				 struct container *c, bool alive)
{
	if (!alive || c->state != CTR_RUNNING)
		ctr_refresh(m, call, c);
}

int ctr_list(struct ctr_mgr *m, const struct cric_call *call, struct ctr_info ***ret,
	     struct cric_err *err)
{
	return ctr_list_pod(m, call, NULL, ret, err);
}

int ctr_list_pod(struct ctr_mgr *m, const struct cric_call *call, const char *pod_id,
		 struct ctr_info ***ret, struct cric_err *err)
{
	(void)err;
	struct container **v = collect(m, pod_id);
	if (!v)
		return -ENOMEM;
	size_t n = 0;
	while (v[n])
		n++;
	_cleanup_free_ bool *alive = poll_alive(m, v, n);
	struct ctr_info **l = calloc(n + 1, sizeof(*l));
	size_t k = 0;
	int r = l ? 0 : -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct container *c = v[i];
		pthread_mutex_lock(&c->op);
		if (r == 0 && !c->removed) {
			refresh_unless_alive(m, call, c, alive && alive[i]);
			if (!(l[k++] = info_of(m, c, false)))
				r = -ENOMEM;
		}
		pthread_mutex_unlock(&c->op);
		ctr_put(m, c);
	}
	free(v);
	if (r < 0) {
		ctr_info_list_free(l);
		return r;
	}
	*ret = l;
	return 0;
}

void ctr_briefs_free(struct ctr_brief *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i].entry);
	free(v);
}

/* c's kept entry, made by fn first if it has none. With the op lock held. */
static int entry_of(struct ctr_mgr *m, struct container *c, ctr_entry_fn fn)
{
	pthread_mutex_lock(&m->lock);
	bool made = c->entry != NULL;
	pthread_mutex_unlock(&m->lock);
	if (made)
		return 0;
	struct ctr_info *i = info_of(m, c, false);
	uint8_t *buf = NULL;
	size_t len = 0;
	int r = i ? fn(i, &buf, &len) : -ENOMEM;
	ctr_info_free(i);
	if (r < 0)
		return r;
	pthread_mutex_lock(&m->lock);
	c->entry = buf;
	c->entry_len = len;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

int ctr_list_briefs(struct ctr_mgr *m, const struct cric_call *call, ctr_entry_fn fn,
		    struct ctr_brief **ret, size_t *n, struct cric_err *err)
{
	(void)err;
	struct container **v = collect(m, NULL);
	if (!v)
		return -ENOMEM;
	size_t total = 0;
	while (v[total])
		total++;
	_cleanup_free_ bool *alive = poll_alive(m, v, total);
	struct ctr_brief *l = calloc(total ? total : 1, sizeof(*l));
	size_t k = 0;
	int r = l ? 0 : -ENOMEM;
	for (size_t i = 0; i < total; i++) {
		struct container *c = v[i];
		pthread_mutex_lock(&c->op);
		if (r == 0 && !c->removed) {
			refresh_unless_alive(m, call, c, alive && alive[i]);
			r = entry_of(m, c, fn);
		}
		if (r == 0 && !c->removed) {
			struct ctr_brief *b = &l[k];
			pthread_mutex_lock(&m->lock);
			memcpy(b->id, c->id, sizeof(b->id));
			memcpy(b->pod_id, c->pod_id, sizeof(b->pod_id));
			b->state = c->state;
			b->len = c->entry_len;
			b->entry = malloc(c->entry_len ? c->entry_len : 1);
			if (b->entry)
				memcpy(b->entry, c->entry, c->entry_len);
			pthread_mutex_unlock(&m->lock);
			if (b->entry)
				k++;
			else
				r = -ENOMEM;
		}
		pthread_mutex_unlock(&c->op);
		ctr_put(m, c);
	}
	free(v);
	if (r < 0) {
		ctr_briefs_free(l, k);
		return r;
	}
	*ret = l;
	*n = k;
	return 0;
}

/* ---- the pod's hooks ---- */

/* Stopping or removing a pod's containers runs on this many threads at
 * most (each mostly waits: on runc, on the monitor, on a process to die). */
#define POD_HOOK_THREADS 4
/* A creation of the pod still running is waited for up to this long (it is
 * bounded by CTR_CALL_CAP_MS itself). */
#define POD_HOOK_CREATE_WAIT_MS (CTR_CALL_CAP_MS + 10000)

/* Wait until no container of pod_id is being created: a creation that
 * passed its pod check before the pod stopped ends, then is stopped or
 * removed with the rest. */
static void wait_creations(struct ctr_mgr *m, const char *pod_id)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += POD_HOOK_CREATE_WAIT_MS / 1000;
	pthread_mutex_lock(&m->lock);
	for (;;) {
		bool busy = false;
		for (size_t i = 0; i < m->n && !busy; i++)
			busy = m->items[i]->state == CTR_CREATING &&
			       strcmp(m->items[i]->pod_id, pod_id) == 0;
		if (!busy || pthread_cond_timedwait(&m->created, &m->lock, &until) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&m->lock);
}

struct pod_hook {
	struct ctr_mgr *m;
	const struct cric_call *call;
	struct container **v; /* each with a reference, dropped by its worker */
	bool remove;
	pthread_mutex_t lock; /* next, r, err */
	size_t next;
	int r;
	struct cric_err *err;
};

static void *pod_hook_worker(void *arg)
{
	struct pod_hook *x = arg;
	for (;;) {
		pthread_mutex_lock(&x->lock);
		struct container *c = x->v[x->next];
		if (c)
			x->next++;
		pthread_mutex_unlock(&x->lock);
		if (!c)
			return NULL;
		struct cric_err e = { 0 };
		pthread_mutex_lock(&c->op);
		/* The kubelet stopped them with their grace period already:
		 * what still runs is killed at once. */
		int k = c->removed  ? 0
			: x->remove ? remove_locked(x->m, x->call, c, &e)
				    : stop_locked(x->m, x->call, c, 0, &e);
		pthread_mutex_unlock(&c->op);
		pthread_mutex_lock(&x->lock);
		if (k < 0 && x->r == 0) {
			x->r = k;
			if (x->err)
				err_set(x->err, k, "container %s: %s", c->id, e.msg);
		}
		pthread_mutex_unlock(&x->lock);
		ctr_put(x->m, c);
	}
}

/* Every container of the pod, on up to POD_HOOK_THREADS threads; the first
 * error is returned, the others are still tried. */
static int each_of_pod(struct ctr_mgr *m, const struct cric_call *call, const char *pod_id,
		       bool remove, struct cric_err *err)
{
	wait_creations(m, pod_id);
	struct container **v = collect(m, pod_id);
	if (!v)
		return -ENOMEM;
	struct pod_hook x = { .m = m, .call = call, .v = v, .remove = remove, .err = err };
	pthread_mutex_init(&x.lock, NULL);
	size_t n = 0;
	while (v[n])
		n++;
	pthread_t t[POD_HOOK_THREADS];
	size_t nt = 0;
	/* This thread works too: a failed pthread_create only slows it down. */
	while (nt < n - (n > 0) && nt < ARRAY_SIZE(t) - 1 &&
	       pthread_create(&t[nt], NULL, pod_hook_worker, &x) == 0)
		nt++;
	pod_hook_worker(&x);
	for (size_t i = 0; i < nt; i++)
		pthread_join(t[i], NULL);
	pthread_mutex_destroy(&x.lock);
	free(v);
	return x.r;
}

int ctr_stop_pod(struct ctr_mgr *m, const struct cric_call *call, const char *pod_id,
		 struct cric_err *err)
{
	return each_of_pod(m, call, pod_id, false, err);
}

int ctr_remove_pod(struct ctr_mgr *m, const struct cric_call *call, const char *pod_id,
		   struct cric_err *err)
{
	return each_of_pod(m, call, pod_id, true, err);
}
