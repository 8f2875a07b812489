/* monitord's container stats: one cached sample per container; see
 * stats.h. */
#include "stats.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/du.h"
#include "common/fsutil.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/pbutil.h"

#define CGROUP_ROOT "/sys/fs/cgroup"

struct entry {
	char id[65];
	json_t *attrs; /* attrs.json; an empty object when absent */
	struct stats_cg cur, prev;
	bool layer_ok;
	int64_t layer_at;   /* unix ns of the last measurement */
	int64_t layer_mono; /* CLOCK_MONOTONIC ns it started; 0: never */
	uint64_t layer_bytes, layer_inodes;
	char *layer_mount;
	bool seen; /* by the last listing */
};

struct stats {
	char *dir;
	bool v2;
	pthread_mutex_t lock; /* everything below */
	pthread_cond_t wake;  /* the layer thread: new containers, or stop */
	struct entry **items;
	size_t n, cap;
	bool stop, thread_started;
	pthread_t thread;
};

int64_t stats_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- the cgroup ---- */

static int read_u64(const char *path, uint64_t *v)
{
	_cleanup_free_ char *buf = NULL;
	size_t n;
	int r = read_file(path, 64, &buf, &n);
	if (r < 0)
		return r;
	char *end;
	errno = 0;
	*v = strtoull(buf, &end, 10);
	return errno || end == buf ? -EBADMSG : 0;
}

/* The value of key in a "key value" file (memory.stat, cpu.stat); 0 when
 * absent. */
static uint64_t stat_key(const char *text, const char *key)
{
	size_t k = strlen(key);
	for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL)
		if (strncmp(l, key, k) == 0 && l[k] == ' ')
			return strtoull(l + k + 1, NULL, 10);
	return 0;
}

void stats_sample_cgroup(const struct stats *s, const char *cg, struct stats_cg *out)
{
	*out = (struct stats_cg){ .at = now_unix_ns(), .mono = stats_mono_ns() };
	char path[PATH_MAX];
	_cleanup_free_ char *mstat = NULL, *cstat = NULL;
	size_t n;
	if (s->v2) {
		snprintf(path, sizeof(path), CGROUP_ROOT "%s/cpu.stat", cg);
		if (read_file(path, 1 << 16, &cstat, &n) < 0)
			return;
		out->cpu_ns = stat_key(cstat, "usage_usec") * 1000;
		snprintf(path, sizeof(path), CGROUP_ROOT "%s/memory.current", cg);
		if (read_u64(path, &out->mem_usage) < 0)
			return;
		snprintf(path, sizeof(path), CGROUP_ROOT "%s/memory.stat", cg);
		if (read_file(path, 1 << 16, &mstat, &n) < 0)
			return;
		uint64_t inactive = stat_key(mstat, "inactive_file");
		out->working_set = out->mem_usage > inactive ? out->mem_usage - inactive : 0;
		out->rss = stat_key(mstat, "anon");
		out->pgfault = stat_key(mstat, "pgfault");
		out->pgmajfault = stat_key(mstat, "pgmajfault");
	} else {
		snprintf(path, sizeof(path), CGROUP_ROOT "/cpuacct%s/cpuacct.usage", cg);
		if (read_u64(path, &out->cpu_ns) < 0)
			return;
		snprintf(path, sizeof(path), CGROUP_ROOT "/memory%s/memory.usage_in_bytes", cg);
		if (read_u64(path, &out->mem_usage) < 0)
			return;
		snprintf(path, sizeof(path), CGROUP_ROOT "/memory%s/memory.stat", cg);
		if (read_file(path, 1 << 16, &mstat, &n) < 0)
			return;
		uint64_t inactive = stat_key(mstat, "total_inactive_file");
		out->working_set = out->mem_usage > inactive ? out->mem_usage - inactive : 0;
		out->rss = stat_key(mstat, "total_rss");
		out->pgfault = stat_key(mstat, "total_pgfault");
		out->pgmajfault = stat_key(mstat, "total_pgmajfault");
	}
	out->ok = true;
	snprintf(path, sizeof(path), CGROUP_ROOT "%s%s/pids.current", s->v2 ? "" : "/pids", cg);
	out->procs_ok = read_u64(path, &out->procs) == 0;
}

static const char *attr_str(const struct entry *e, const char *key)
{
	const char *v = json_string_value(json_object_get(e->attrs, key));
	return v ? v : "";
}

/* Refresh e's sample when older than STATS_FRESH_MS. Under s->lock. */
static void refresh(const struct stats *s, struct entry *e)
{
	int64_t now = stats_mono_ns();
	if (e->cur.mono && now - e->cur.mono < (int64_t)STATS_FRESH_MS * 1000000)
		return;
	const char *cg = attr_str(e, "cgroup");
	struct stats_cg next = { 0 };
	if (cg[0] == '/')
		stats_sample_cgroup(s, cg, &next);
	if (e->cur.ok)
		e->prev = e->cur;
	e->cur = next;
}

/* ---- the table ---- */

static void entry_free(struct entry *e)
{
	if (!e)
		return;
	json_decref(e->attrs);
	free(e->layer_mount);
	free(e);
}

static struct entry *entry_load(const struct stats *s, const char *id)
{
	struct entry *e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	snprintf(e->id, sizeof(e->id), "%s", id);
	char path[PATH_MAX], why[256];
	snprintf(path, sizeof(path), "%s/%s/" STATS_ATTRS_FILE, s->dir, id);
	json_t *doc = NULL;
	int r = json_load_path(path, 1 << 20, &doc, why, sizeof(why));
	if (r < 0 && r != -ENOENT)
		log_warning("container %s: \"%s\": %s", id, path, why);
	e->attrs = json_is_object(doc) ? doc : json_object();
	if (doc && e->attrs != doc)
		json_decref(doc);
	if (!e->attrs) {
		free(e);
		return NULL;
	}
	return e;
}

/* The entry of id (a monitor's directory), loaded when new. Under s->lock. */
static void layer_thread_start(struct stats *s);

static struct entry *entry_get(struct stats *s, const char *id)
{
	for (size_t i = 0; i < s->n; i++) {
		struct entry *e = s->items[i];
		if (strcmp(e->id, id) != 0)
			continue;
		/* Listed between CreateMonitor's mkdir and its attrs.json. */
		if (!json_object_get(e->attrs, "cgroup")) {
			struct entry *fresh = entry_load(s, id);
			if (fresh) {
				json_decref(e->attrs);
				e->attrs = TAKE_PTR(fresh->attrs);
				entry_free(fresh);
			}
		}
		return e;
	}
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct entry **grown = realloc(s->items, cap * sizeof(*grown));
		if (!grown)
			return NULL;
		s->items = grown;
		s->cap = cap;
	}
	struct entry *e = entry_load(s, id);
	if (e) {
		s->items[s->n++] = e;
		pthread_cond_signal(&s->wake); /* measure its layer now */
		layer_thread_start(s);
	}
	return e;
}

static bool dir_exists(const struct stats *s, const char *id)
{
	char path[PATH_MAX];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", s->dir, id);
	return stat(path, &st) == 0;
}

/* ---- the writable layer ---- */

/* The mount point of the file system holding path: up while the device
 * stays the same. */
static char *mount_point(const char *path)
{
	char *p = strdup(path);
	struct stat st, up;
	if (!p || stat(p, &st) < 0)
		return p;
	for (;;) {
		char *slash = strrchr(p, '/');
		if (!slash || slash == p) {
			if (slash && stat("/", &up) == 0 && up.st_dev == st.st_dev)
				p[1] = '\0';
			return p;
		}
		*slash = '\0';
		if (stat(p, &up) < 0 || up.st_dev != st.st_dev) {
			*slash = '/';
			return p;
		}
	}
}

static void measure_layer(struct stats *s, const char *id, const char *upper)
{
	struct du_usage u = { 0 };
	bool ok = false;
	_cleanup_free_ char *mp = NULL;
	if (upper[0] == '/') {
		_cleanup_close_ int fd = open(upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		struct cric_err err = { 0 };
		ok = fd >= 0 && du_measure(fd, NULL, &u, &err) == 0;
		if (ok)
			mp = mount_point(upper);
	}
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->n; i++) {
		struct entry *e = s->items[i];
		if (strcmp(e->id, id) != 0)
			continue;
		e->layer_at = now_unix_ns();
		e->layer_ok = ok;
		e->layer_bytes = u.bytes;
		e->layer_inodes = u.inodes;
		if (mp) {
			free(e->layer_mount);
			e->layer_mount = TAKE_PTR(mp);
		}
	}
	pthread_mutex_unlock(&s->lock);
}

/* Measure every layer each period, and a new container's at once (its
 * entry is claimed, layer_mono set, before the walk, so it is not picked
 * twice). */
static void *layer_thread(void *arg)
{
	struct stats *s = arg;
	const int64_t period = (int64_t)STATS_LAYER_PERIOD_S * 1000000000;
	pthread_mutex_lock(&s->lock);
	while (!s->stop) {
		int64_t now = stats_mono_ns();
		struct entry *due = NULL;
		for (size_t i = 0; i < s->n && !due; i++)
			if (!s->items[i]->layer_mono || now - s->items[i]->layer_mono >= period)
				due = s->items[i];
		if (due) {
			char id[65];
			snprintf(id, sizeof(id), "%s", due->id);
			_cleanup_free_ char *upper = strdup(attr_str(due, "upper_dir"));
			due->layer_mono = now;
			pthread_mutex_unlock(&s->lock);
			if (upper)
				measure_layer(s, id, upper);
			pthread_mutex_lock(&s->lock);
			continue;
		}
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		pthread_cond_timedwait(&s->wake, &s->lock, &until);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* The layer thread starts with the first container asked about (on that
 * call's worker: monitord's privileges, which it inherits); a monitord
 * nobody asks for stats wakes no thread every second. Under s->lock. */
static void layer_thread_start(struct stats *s)
{
	if (s->thread_started || s->stop)
		return;
	int r = pthread_create(&s->thread, NULL, layer_thread, s);
	if (r != 0) {
		log_warning("start the stats thread: %s; writable layers not measured yet, "
			    "ignoring",
			    strerror(r));
		return;
	}
	s->thread_started = true;
}

/* ---- the answers ---- */

static Runtime__V1__UInt64Value *u64(uint64_t v)
{
	Runtime__V1__UInt64Value *p = pb_new(&runtime__v1__uint64_value__descriptor);
	if (p)
		p->value = v;
	return p;
}

static int add_map(ProtobufCMessage *msg, const char *field, const json_t *obj)
{
	const char *k;
	const json_t *v;
	json_object_foreach ((json_t *)obj, k, v)
		if (json_is_string(v) && pb_map_add(msg, field, k, json_string_value(v)) < 0)
			return -ENOMEM;
	return 0;
}

/* The stats of e (its sample fresh). Under s->lock. */
static int build(const struct entry *e, Runtime__V1__ContainerStats **ret)
{
	_cleanup_pb_ Runtime__V1__ContainerStats *st =
	    pb_new(&runtime__v1__container_stats__descriptor);
	if (!st || !(st->attributes = pb_new(&runtime__v1__container_attributes__descriptor)) ||
	    !(st->attributes->metadata = pb_new(&runtime__v1__container_metadata__descriptor)))
		return -ENOMEM;
	Runtime__V1__ContainerAttributes *a = st->attributes;
	if (pb_set_str(&a->id, e->id) < 0 ||
	    pb_set_str(&a->metadata->name, attr_str(e, "name")) < 0 ||
	    add_map(&a->base, "labels", json_object_get(e->attrs, "labels")) < 0 ||
	    add_map(&a->base, "annotations", json_object_get(e->attrs, "annotations")) < 0)
		return -ENOMEM;
	a->metadata->attempt = (uint32_t)json_integer_value(json_object_get(e->attrs, "attempt"));
	const struct stats_cg *c = &e->cur;
	if (c->ok) {
		Runtime__V1__CpuUsage *cpu = st->cpu = pb_new(&runtime__v1__cpu_usage__descriptor);
		Runtime__V1__MemoryUsage *mem = st->memory =
		    pb_new(&runtime__v1__memory_usage__descriptor);
		if (!cpu || !mem)
			return -ENOMEM;
		cpu->timestamp = c->at;
		if (!(cpu->usage_core_nano_seconds = u64(c->cpu_ns)))
			return -ENOMEM;
		const struct stats_cg *p = &e->prev;
		if (p->ok && c->mono > p->mono && c->cpu_ns >= p->cpu_ns &&
		    !(cpu->usage_nano_cores = u64((uint64_t)((double)(c->cpu_ns - p->cpu_ns) * 1e9 /
							     (double)(c->mono - p->mono)))))
			return -ENOMEM;
		mem->timestamp = c->at;
		if (!(mem->working_set_bytes = u64(c->working_set)) ||
		    !(mem->usage_bytes = u64(c->mem_usage)) || !(mem->rss_bytes = u64(c->rss)) ||
		    !(mem->page_faults = u64(c->pgfault)) ||
		    !(mem->major_page_faults = u64(c->pgmajfault)))
			return -ENOMEM;
	}
	if (e->layer_ok) {
		Runtime__V1__FilesystemUsage *fs = st->writable_layer =
		    pb_new(&runtime__v1__filesystem_usage__descriptor);
		if (!fs || !(fs->fs_id = pb_new(&runtime__v1__filesystem_identifier__descriptor)) ||
		    pb_set_str(&fs->fs_id->mountpoint, e->layer_mount) < 0 ||
		    !(fs->used_bytes = u64(e->layer_bytes)) ||
		    !(fs->inodes_used = u64(e->layer_inodes)))
			return -ENOMEM;
		fs->timestamp = e->layer_at;
	}
	*ret = TAKE_PTR(st);
	return 0;
}

static void drop(struct stats *s, size_t i)
{
	entry_free(s->items[i]);
	s->items[i] = s->items[--s->n];
}

int stats_container(struct stats *s, const char *id, Runtime__V1__ContainerStats **ret,
		    struct cric_err *err)
{
	pthread_mutex_lock(&s->lock);
	int r = 0;
	struct entry *e = NULL;
	if (!dir_exists(s, id)) {
		for (size_t i = 0; i < s->n; i++)
			if (strcmp(s->items[i]->id, id) == 0)
				drop(s, i);
		r = err_set(err, -ENOENT, "container %s not found", id);
	} else if (!(e = entry_get(s, id))) {
		r = -ENOMEM;
	} else {
		refresh(s, e);
		r = build(e, ret);
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

static bool prefix_of(const char *prefix, const char *id)
{
	return !prefix || !*prefix || strncmp(id, prefix, strlen(prefix)) == 0;
}

static bool matches(const Runtime__V1__ContainerStatsFilter *f, const struct entry *e)
{
	if (!f)
		return true;
	if (!prefix_of(f->id, e->id) ||
	    !prefix_of(f->pod_sandbox_id, attr_str(e, "pod_sandbox_id")))
		return false;
	const json_t *labels = json_object_get(e->attrs, "labels");
	for (size_t i = 0; i < f->n_label_selector; i++) {
		const char *v =
		    json_string_value(json_object_get(labels, f->label_selector[i]->key));
		if (!v || strcmp(v, f->label_selector[i]->value) != 0)
			return false;
	}
	return true;
}

int stats_list_extra(struct stats *s, const Runtime__V1__ContainerStatsFilter *f,
		     Runtime__V1__ListContainerStatsResponse *resp, struct stats_extra **extra,
		     struct cric_err *err)
{
	_cleanup_closedir_ DIR *d = opendir(s->dir);
	if (!d)
		return err_set(err, negative_errno(), "read \"%s\": %s", s->dir, strerror(errno));
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->n; i++)
		s->items[i]->seen = false;
	int r = 0;
	struct dirent *de;
	while (r == 0 && (de = readdir(d))) {
		if (!id_is_valid(de->d_name))
			continue;
		struct entry *e = entry_get(s, de->d_name);
		if (!e) {
			r = -ENOMEM;
			break;
		}
		e->seen = true;
		if (!matches(f, e))
			continue;
		refresh(s, e);
		if (!e->cur.ok) /* its cgroup is gone: not an error */
			continue;
		Runtime__V1__ContainerStats **grown =
		    realloc(resp->stats, (resp->n_stats + 1) * sizeof(*grown));
		if (!grown) {
			r = -ENOMEM;
			break;
		}
		resp->stats = grown;
		if (extra) {
			struct stats_extra *x = realloc(*extra, (resp->n_stats + 1) * sizeof(*x));
			if (!x) {
				r = -ENOMEM;
				break;
			}
			*extra = x;
			x += resp->n_stats;
			snprintf(x->pod_id, sizeof(x->pod_id), "%s", attr_str(e, "pod_sandbox_id"));
			x->procs_ok = e->cur.procs_ok;
			x->procs = e->cur.procs;
		}
		if ((r = build(e, &resp->stats[resp->n_stats])) == 0)
			resp->n_stats++;
	}
	/* Forget the removed ones. */
	for (size_t i = s->n; r == 0 && i-- > 0;)
		if (!s->items[i]->seen)
			drop(s, i);
	pthread_mutex_unlock(&s->lock);
	return r;
}

int stats_list(struct stats *s, const Runtime__V1__ContainerStatsFilter *f,
	       Runtime__V1__ListContainerStatsResponse *resp, struct cric_err *err)
{
	return stats_list_extra(s, f, resp, NULL, err);
}

/* ---- open, free ---- */

void stats_free(struct stats *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->stop = true;
	bool started = s->thread_started;
	pthread_cond_broadcast(&s->wake);
	pthread_mutex_unlock(&s->lock);
	if (started)
		pthread_join(s->thread, NULL);
	for (size_t i = 0; i < s->n; i++)
		entry_free(s->items[i]);
	free(s->items);
	free(s->dir);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->wake);
	free(s);
}

int stats_open(const char *monitors_dir, struct stats **ret, struct cric_err *err)
{
	(void)err; /* (the layer thread starts later: layer_thread_start) */
	struct stats *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->wake, NULL);
	s->v2 = access(CGROUP_ROOT "/cgroup.controllers", F_OK) == 0;
	if (!(s->dir = strdup(monitors_dir))) {
		stats_free(s);
		return -ENOMEM;
	}
	*ret = s;
	return 0;
}
