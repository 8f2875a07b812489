/* monitord's pod stats and metrics; see pods.h. */
#include "pods.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/config.h"
#include "common/fsutil.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/pbutil.h"

#define PODS_IFACES_MAX  32
#define PODS_CALL_CAP_MS 5000

struct pod {
	char id[65];
	char cgroup[1024];
	char netns[PATH_MAX]; /* "": the host's network */
	struct stats_cg cur, prev;
	bool net_ok;
	int64_t net_at;
	struct pods_iface ifs[PODS_IFACES_MAX];
	size_t n_ifs;
	bool seen;
};

struct pods {
	struct stats *stats;
	struct cric_client *runtimed;
	pthread_mutex_t lock; /* the table */
	struct pod **items;
	size_t n, cap;
};

/* ---- runtimed ---- */

static int call_runtimed(struct pods *p, const struct cric_call *call, struct cric_method_ref m,
			 const ProtobufCMessage *req, ProtobufCMessage **out, struct cric_err *err)
{
	_cleanup_free_ char *msg = NULL;
	unsigned code = cric_call(p->runtimed, m, call ? call->request_id : NULL,
				  cric_deadline(call ? call->deadline_ns : 0, PODS_CALL_CAP_MS),
				  req, out, &msg);
	if (code == CODE_OK)
		return 0;
	return err_set(err, errno_from_grpc_code(code), "%s", msg ? msg : grpc_code_name(code));
}

/* The pod's cgroup and network namespace from PodSandboxStatus's verbose
 * info. */
static int facts_of(const Runtime__V1__PodSandboxStatusResponse *resp, struct pod *pod,
		    struct cric_err *err)
{
	const char *info = NULL;
	for (size_t i = 0; i < resp->n_info; i++)
		if (strcmp(resp->info[i]->key, "info") == 0)
			info = resp->info[i]->value;
	_cleanup_json_ json_t *doc = info ? json_loads(info, 0, NULL) : NULL;
	const char *cg = json_string_value(json_object_get(doc, "cgroup"));
	const char *netns = json_string_value(json_object_get(doc, "netns"));
	if (!cg || !netns)
		return err_set(err, -EIO, "pod %s: runtimed's status names no cgroup or netns",
			       pod->id);
	snprintf(pod->cgroup, sizeof(pod->cgroup), "%s", cg);
	snprintf(pod->netns, sizeof(pod->netns), "%s", netns);
	return 0;
}

static int pod_status(struct pods *p, const struct cric_call *call, const char *id,
		      Runtime__V1__PodSandboxStatusResponse **ret, struct cric_err *err)
{
	Runtime__V1__PodSandboxStatusRequest req = RUNTIME__V1__POD_SANDBOX_STATUS_REQUEST__INIT;
	req.pod_sandbox_id = (char *)id;
	req.verbose = true;
	ProtobufCMessage *out = NULL;
	int r = call_runtimed(p, call, CRI_RUNTIME(pod_sandbox_status), &req.base, &out, err);
	if (r < 0)
		return r;
	Runtime__V1__PodSandboxStatusResponse *resp = (Runtime__V1__PodSandboxStatusResponse *)out;
	if (!resp || !resp->status || !id_is_valid(resp->status->id)) {
		protobuf_c_message_free_unpacked(out, NULL);
		err_set(err, -EIO, "runtimed's status of pod %s has no valid id", id);
		return -EIO;
	}
	*ret = resp;
	return 0;
}

/* ---- the table ---- */

/* The entry of id, new (without facts) when unknown. Under p->lock. */
static struct pod *pod_get(struct pods *p, const char *id)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->items[i]->id, id) == 0)
			return p->items[i];
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 16;
		struct pod **grown = realloc(p->items, cap * sizeof(*grown));
		if (!grown)
			return NULL;
		p->items = grown;
		p->cap = cap;
	}
	struct pod *pod = calloc(1, sizeof(*pod));
	if (!pod)
		return NULL;
	snprintf(pod->id, sizeof(pod->id), "%s", id);
	p->items[p->n++] = pod;
	return pod;
}

/* ---- the network namespace ---- */

/* /proc/net/dev: two header lines, then "name: rx_bytes rx_packets errs drop
 * fifo frame compressed multicast tx_bytes tx_packets errs drop ...". */
size_t podstats_parse_net_dev(const char *text, struct pods_iface *ifs, size_t max)
{
	size_t n = 0;
	const char *l = text;
	for (int skip = 0; l && skip < 2; skip++)
		if ((l = strchr(l, '\n')))
			l++;
	for (; l && *l && n < max; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
		const char *colon = strchr(l, ':');
		const char *eol = strchrnul(l, '\n');
		if (!colon || colon > eol)
			continue;
		while (*l == ' ')
			l++;
		size_t len = (size_t)(colon - l);
		if (len == 0 || len >= sizeof(ifs[n].name) ||
		    (len == 2 && strncmp(l, "lo", 2) == 0))
			continue;
		struct pods_iface *f = &ifs[n];
		*f = (struct pods_iface){ 0 };
		memcpy(f->name, l, len);
		unsigned long long v[12];
		if (sscanf(colon + 1, "%llu %llu %llu %llu %*u %*u %*u %*u %llu %llu %llu %llu",
			   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) != 8)
			continue;
		f->rx_bytes = v[0];
		f->rx_packets = v[1];
		f->rx_errors = v[2];
		f->rx_dropped = v[3];
		f->tx_bytes = v[4];
		f->tx_packets = v[5];
		f->tx_errors = v[6];
		f->tx_dropped = v[7];
		n++;
	}
	return n;
}

struct net_read {
	const char *netns;
	char *text;
	int r;
};

/* A thread of its own enters the namespace (setns changes the calling
 * thread's) and reads its own view of /proc/net/dev; it ends there. */
static void *net_thread(void *arg)
{
	struct net_read *nr = arg;
	/* Non-blocking: the path is runtimed's word, a fifo must not hang us;
	 * and it must be a namespace before we enter it. */
	_cleanup_close_ int fd = open(nr->netns, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	struct statfs sfs;
	if (fd < 0 || fstatfs(fd, &sfs) < 0) {
		nr->r = negative_errno();
		return NULL;
	}
	if ((unsigned long)sfs.f_type != NSFS_MAGIC) {
		nr->r = -EINVAL;
		return NULL;
	}
	if (setns(fd, CLONE_NEWNET) < 0) {
		nr->r = negative_errno();
		return NULL;
	}
	size_t len;
	nr->r = read_file("/proc/thread-self/net/dev", 1 << 20, &nr->text, &len);
	return NULL;
}

static int read_netns(struct pod *pod)
{
	struct net_read nr = { .netns = pod->netns };
	pthread_t t;
	int r = pthread_create(&t, NULL, net_thread, &nr);
	if (r != 0)
		return -r;
	pthread_join(t, NULL);
	if (nr.r < 0)
		return nr.r;
	pod->n_ifs = podstats_parse_net_dev(nr.text, pod->ifs, PODS_IFACES_MAX);
	free(nr.text);
	return 0;
}

/* Refresh pod's sample when older than STATS_FRESH_MS. Under p->lock. */
static void refresh(struct pods *p, struct pod *pod)
{
	int64_t now = stats_mono_ns();
	if (pod->cur.mono && now - pod->cur.mono < (int64_t)STATS_FRESH_MS * 1000000)
		return;
	struct stats_cg next = { 0 };
	if (pod->cgroup[0] == '/')
		stats_sample_cgroup(p->stats, pod->cgroup, &next);
	if (pod->cur.ok)
		pod->prev = pod->cur;
	pod->cur = next;
	pod->cur.mono = now;
	pod->net_ok = false;
	if (pod->netns[0] == '/') {
		int r = read_netns(pod);
		if (r < 0)
			log_warning("pod %s: read the network of \"%s\": %s, ignoring", pod->id,
				    pod->netns, strerror(-r));
		pod->net_ok = r == 0;
		pod->net_at = now_unix_ns();
	}
}

/* ---- the answers ---- */

static Runtime__V1__UInt64Value *u64(uint64_t v)
{
	Runtime__V1__UInt64Value *w = pb_new(&runtime__v1__uint64_value__descriptor);
	if (w)
		w->value = v;
	return w;
}

static Runtime__V1__NetworkInterfaceUsage *iface_usage(const struct pods_iface *f)
{
	_cleanup_pb_ Runtime__V1__NetworkInterfaceUsage *u =
	    pb_new(&runtime__v1__network_interface_usage__descriptor);
	if (!u || pb_set_str(&u->name, f->name) < 0 || !(u->rx_bytes = u64(f->rx_bytes)) ||
	    !(u->rx_errors = u64(f->rx_errors)) || !(u->tx_bytes = u64(f->tx_bytes)) ||
	    !(u->tx_errors = u64(f->tx_errors)))
		return NULL;
	return TAKE_PTR(u);
}

static int build_network(const struct pod *pod, Runtime__V1__LinuxPodSandboxStats *lx)
{
	if (!pod->net_ok || pod->n_ifs == 0)
		return 0;
	Runtime__V1__NetworkUsage *nu = lx->network =
	    pb_new(&runtime__v1__network_usage__descriptor);
	if (!nu || !(nu->interfaces = calloc(pod->n_ifs, sizeof(void *))))
		return -ENOMEM;
	nu->timestamp = pod->net_at;
	/* The kubelet's default interface is eth0; else the first one. */
	size_t def = 0;
	for (size_t i = 0; i < pod->n_ifs; i++)
		if (strcmp(pod->ifs[i].name, "eth0") == 0)
			def = i;
	if (!(nu->default_interface = iface_usage(&pod->ifs[def])))
		return -ENOMEM;
	for (size_t i = 0; i < pod->n_ifs; i++)
		if (!(nu->interfaces[nu->n_interfaces++] = iface_usage(&pod->ifs[i])))
			return -ENOMEM;
	return 0;
}

static int build_cgroup(const struct pod *pod, Runtime__V1__LinuxPodSandboxStats *lx)
{
	const struct stats_cg *c = &pod->cur;
	if (c->ok) {
		Runtime__V1__CpuUsage *cpu = lx->cpu = pb_new(&runtime__v1__cpu_usage__descriptor);
		Runtime__V1__MemoryUsage *mem = lx->memory =
		    pb_new(&runtime__v1__memory_usage__descriptor);
		if (!cpu || !mem || !(cpu->usage_core_nano_seconds = u64(c->cpu_ns)))
			return -ENOMEM;
		/* The rate between the last two samples, as for containers. */
		const struct stats_cg *p = &pod->prev;
		if (p->ok && c->mono > p->mono && c->cpu_ns >= p->cpu_ns &&
		    !(cpu->usage_nano_cores = u64((uint64_t)((double)(c->cpu_ns - p->cpu_ns) * 1e9 /
							     (double)(c->mono - p->mono)))))
			return -ENOMEM;
		cpu->timestamp = mem->timestamp = c->at;
		if (!(mem->working_set_bytes = u64(c->working_set)) ||
		    !(mem->usage_bytes = u64(c->mem_usage)) || !(mem->rss_bytes = u64(c->rss)) ||
		    !(mem->page_faults = u64(c->pgfault)) ||
		    !(mem->major_page_faults = u64(c->pgmajfault)))
			return -ENOMEM;
	}
	if (c->procs_ok) {
		lx->process = pb_new(&runtime__v1__process_usage__descriptor);
		if (!lx->process || !(lx->process->process_count = u64(c->procs)))
			return -ENOMEM;
		lx->process->timestamp = c->at;
	}
	return 0;
}

static Runtime__V1__PodSandboxMetadata *copy_metadata(const Runtime__V1__PodSandboxMetadata *m)
{
	_cleanup_pb_ Runtime__V1__PodSandboxMetadata *c =
	    pb_new(&runtime__v1__pod_sandbox_metadata__descriptor);
	if (!c || (m && (pb_set_str(&c->name, m->name) < 0 || pb_set_str(&c->uid, m->uid) < 0 ||
			 pb_set_str(&c->namespace_, m->namespace_) < 0)))
		return NULL;
	if (m)
		c->attempt = m->attempt;
	return TAKE_PTR(c);
}

/* What the caller knows of one pod: from ListPodSandbox or
 * PodSandboxStatus. */
struct pod_attrs {
	const char *id;
	const Runtime__V1__PodSandboxMetadata *metadata;
	const ProtobufCMessage *maps; /* holds "labels" and "annotations" */
};

/* Build pod's stats, taking its containers from ctrs (those of resp whose
 * extra names the pod; they are moved out). Under p->lock. */
static int build_pod(const struct pod *pod, const struct pod_attrs *a,
		     Runtime__V1__ListContainerStatsResponse *ctrs, const struct stats_extra *extra,
		     Runtime__V1__PodSandboxStats **ret)
{
	_cleanup_pb_ Runtime__V1__PodSandboxStats *st =
	    pb_new(&runtime__v1__pod_sandbox_stats__descriptor);
	if (!st || !(st->attributes = pb_new(&runtime__v1__pod_sandbox_attributes__descriptor)) ||
	    !(st->linux = pb_new(&runtime__v1__linux_pod_sandbox_stats__descriptor)))
		return -ENOMEM;
	Runtime__V1__PodSandboxAttributes *at = st->attributes;
	if (pb_set_str(&at->id, a->id) < 0 || !(at->metadata = copy_metadata(a->metadata)) ||
	    pb_map_copy(&at->base, "labels", a->maps, "labels") < 0 ||
	    pb_map_copy(&at->base, "annotations", a->maps, "annotations") < 0)
		return -ENOMEM;
	Runtime__V1__LinuxPodSandboxStats *lx = st->linux;
	if (build_cgroup(pod, lx) < 0 || build_network(pod, lx) < 0)
		return -ENOMEM;
	size_t mine = 0;
	for (size_t i = 0; i < ctrs->n_stats; i++)
		mine += ctrs->stats[i] && strcmp(extra[i].pod_id, pod->id) == 0;
	if (mine && !(lx->containers = calloc(mine, sizeof(void *))))
		return -ENOMEM;
	for (size_t i = 0; i < ctrs->n_stats; i++)
		if (ctrs->stats[i] && strcmp(extra[i].pod_id, pod->id) == 0)
			lx->containers[lx->n_containers++] = TAKE_PTR(ctrs->stats[i]);
	*ret = TAKE_PTR(st);
	return 0;
}

/* The containers' stats of every pod (or of pod_id), from stats.h. */
static int containers_of(struct pods *p, const char *pod_id,
			 Runtime__V1__ListContainerStatsResponse **resp, struct stats_extra **extra,
			 struct cric_err *err)
{
	*resp = pb_new(&runtime__v1__list_container_stats_response__descriptor);
	if (!*resp)
		return -ENOMEM;
	Runtime__V1__ContainerStatsFilter f = RUNTIME__V1__CONTAINER_STATS_FILTER__INIT;
	f.pod_sandbox_id = (char *)(pod_id ? pod_id : "");
	return stats_list_extra(p->stats, &f, *resp, extra, err);
}

int podstats_stats(struct pods *p, const struct cric_call *call, const char *id,
		   Runtime__V1__PodSandboxStats **ret, struct cric_err *err)
{
	_cleanup_pb_ Runtime__V1__PodSandboxStatusResponse *status = NULL;
	int r = pod_status(p, call, id, &status, err);
	if (r < 0)
		return r;
	const char *full = status->status->id;
	_cleanup_pb_ Runtime__V1__ListContainerStatsResponse *ctrs = NULL;
	_cleanup_free_ struct stats_extra *extra = NULL;
	if ((r = containers_of(p, full, &ctrs, &extra, err)) < 0)
		return r;
	const struct pod_attrs a = { .id = full,
				     .metadata = status->status->metadata,
				     .maps = &status->status->base };
	pthread_mutex_lock(&p->lock);
	struct pod *pod = pod_get(p, full);
	if (!pod)
		r = -ENOMEM;
	else if ((r = facts_of(status, pod, err)) == 0) {
		refresh(p, pod);
		r = build_pod(pod, &a, ctrs, extra, ret);
	}
	pthread_mutex_unlock(&p->lock);
	return r;
}

int podstats_forward_target(struct pods *p, const struct cric_call *call, const char *id,
			    char full[65], char **netns, struct cric_err *err)
{
	_cleanup_pb_ Runtime__V1__PodSandboxStatusResponse *status = NULL;
	int r = pod_status(p, call, id, &status, err);
	if (r < 0)
		return r;
	const Runtime__V1__PodSandboxStatus *st = status->status;
	if (st->state != RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY)
		return err_set(err, -EBUSY, "pod sandbox %s is not ready", st->id);
	const Runtime__V1__NamespaceOption *o =
	    st->linux && st->linux->namespaces ? st->linux->namespaces->options : NULL;
	bool host = o && o->network == RUNTIME__V1__NAMESPACE_MODE__NODE;
	struct pod facts = { 0 };
	snprintf(facts.id, sizeof(facts.id), "%s", st->id);
	if ((r = facts_of(status, &facts, err)) < 0)
		return r;
	if (!host && facts.netns[0] != '/')
		return err_set(err, -EIO, "pod %s: runtimed names no network namespace", st->id);
	char *ns = host ? NULL : strdup(facts.netns);
	if (!host && !ns)
		return -ENOMEM;
	snprintf(full, 65, "%s", st->id);
	*netns = ns;
	return 0;
}

/* Learn the facts of the pods in list that the table has none of (one
 * PodSandboxStatus each, outside the lock). A pod gone meanwhile is left
 * out (its facts stay empty). */
static int learn(struct pods *p, const struct cric_call *call,
		 const Runtime__V1__ListPodSandboxResponse *list, struct cric_err *err)
{
	for (size_t i = 0; i < list->n_items; i++) {
		const char *id = list->items[i]->id;
		pthread_mutex_lock(&p->lock);
		struct pod *pod = pod_get(p, id);
		bool known = pod && pod->cgroup[0];
		pthread_mutex_unlock(&p->lock);
		if (!pod)
			return -ENOMEM;
		if (known)
			continue;
		_cleanup_pb_ Runtime__V1__PodSandboxStatusResponse *status = NULL;
		struct cric_err why = { 0 };
		int r = pod_status(p, call, id, &status, &why);
		if (r == -ENOENT)
			continue;
		if (r < 0)
			return err_set(err, r, "pod %s: %s", id, why.msg);
		pthread_mutex_lock(&p->lock);
		if ((pod = pod_get(p, id)))
			r = facts_of(status, pod, &why);
		pthread_mutex_unlock(&p->lock);
		if (!pod)
			return -ENOMEM;
		if (r < 0)
			log_warning("%s, ignoring", why.msg);
	}
	return 0;
}

static int list_pods(struct pods *p, const struct cric_call *call,
		     const Runtime__V1__PodSandboxStatsFilter *f,
		     Runtime__V1__ListPodSandboxResponse **ret, struct cric_err *err)
{
	_cleanup_pb_ Runtime__V1__PodSandboxFilter *pf =
	    pb_new(&runtime__v1__pod_sandbox_filter__descriptor);
	if (!pf || !(pf->state = pb_new(&runtime__v1__pod_sandbox_state_value__descriptor)))
		return -ENOMEM;
	pf->state->state = RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY;
	if (f && pb_set_str(&pf->id, f->id) < 0)
		return -ENOMEM;
	for (size_t i = 0; f && i < f->n_label_selector; i++)
		if (pb_map_add(&pf->base, "label_selector", f->label_selector[i]->key,
			       f->label_selector[i]->value) < 0)
			return -ENOMEM;
	Runtime__V1__ListPodSandboxRequest req = RUNTIME__V1__LIST_POD_SANDBOX_REQUEST__INIT;
	req.filter = pf;
	ProtobufCMessage *out = NULL;
	int r = call_runtimed(p, call, CRI_RUNTIME(list_pod_sandbox), &req.base, &out, err);
	if (r < 0) {
		err_prefix(err, r, "list the pods");
		return r;
	}
	if (!out) {
		err_set(err, -EIO, "list the pods: no answer");
		return -EIO;
	}
	*ret = (Runtime__V1__ListPodSandboxResponse *)out;
	return 0;
}

/* ---- metrics ---- */

enum {
	L_BASE,   /* id, name */
	L_IFACE,  /* id, name, interface */
	L_DEVICE, /* id, name, device */
};

static const struct metric_desc {
	const char *name, *help;
	Runtime__V1__MetricType type;
	int labels;
} descs[] = {
#define COUNTER RUNTIME__V1__METRIC_TYPE__COUNTER
#define GAUGE   RUNTIME__V1__METRIC_TYPE__GAUGE
	{ "container_cpu_usage_seconds_total", "Cumulative CPU time consumed in seconds.", COUNTER,
	  L_BASE },
	{ "container_memory_usage_bytes",
	  "Current memory usage in bytes, including all memory regardless of when it was "
	  "accessed",
	  GAUGE, L_BASE },
	{ "container_memory_working_set_bytes", "Current working set in bytes.", GAUGE, L_BASE },
	{ "container_memory_rss", "Size of RSS in bytes.", GAUGE, L_BASE },
	{ "container_fs_usage_bytes",
	  "Number of bytes that are consumed by the container on this filesystem.", GAUGE,
	  L_DEVICE },
	{ "container_fs_inodes_usage", "Number of inodes used by the container on this filesystem.",
	  GAUGE, L_DEVICE },
	{ "container_processes", "Number of processes running inside the container.", GAUGE,
	  L_BASE },
	{ "container_network_receive_bytes_total", "Cumulative count of bytes received", COUNTER,
	  L_IFACE },
	{ "container_network_receive_packets_total", "Cumulative count of packets received",
	  COUNTER, L_IFACE },
	{ "container_network_receive_packets_dropped_total",
	  "Cumulative count of packets dropped while receiving", COUNTER, L_IFACE },
	{ "container_network_receive_errors_total",
	  "Cumulative count of errors encountered while receiving", COUNTER, L_IFACE },
	{ "container_network_transmit_bytes_total", "Cumulative count of bytes transmitted",
	  COUNTER, L_IFACE },
	{ "container_network_transmit_packets_total", "Cumulative count of packets transmitted",
	  COUNTER, L_IFACE },
	{ "container_network_transmit_packets_dropped_total",
	  "Cumulative count of packets dropped while transmitting", COUNTER, L_IFACE },
	{ "container_network_transmit_errors_total",
	  "Cumulative count of errors encountered while transmitting", COUNTER, L_IFACE },
#undef COUNTER
#undef GAUGE
};

enum {
	M_CPU,
	M_MEM_USAGE,
	M_MEM_WS,
	M_MEM_RSS,
	M_FS_USAGE,
	M_FS_INODES,
	M_PROCS,
	M_NET_FIRST, /* rx bytes, packets, dropped, errors; tx the same */
};

static const char *const label_keys[][3] = {
	[L_BASE] = { "id", "name", NULL },
	[L_IFACE] = { "id", "name", "interface" },
	[L_DEVICE] = { "id", "name", "device" },
};

int podstats_metric_descriptors(Runtime__V1__ListMetricDescriptorsResponse *resp)
{
	if (!(resp->descriptors = calloc(ARRAY_SIZE(descs), sizeof(void *))))
		return -ENOMEM;
	for (size_t i = 0; i < ARRAY_SIZE(descs); i++) {
		Runtime__V1__MetricDescriptor *d =
		    pb_new(&runtime__v1__metric_descriptor__descriptor);
		if (!d)
			return -ENOMEM;
		resp->descriptors[resp->n_descriptors++] = d;
		const char *const *keys = label_keys[descs[i].labels];
		size_t n = keys[2] ? 3 : 2;
		if (pb_set_str(&d->name, descs[i].name) < 0 ||
		    pb_set_str(&d->help, descs[i].help) < 0 ||
		    !(d->label_keys = calloc(n, sizeof(char *))))
			return -ENOMEM;
		for (size_t k = 0; k < n; k++)
			if (pb_set_str(&d->label_keys[d->n_label_keys++], keys[k]) < 0)
				return -ENOMEM;
	}
	return 0;
}

/* A growing list of metrics. */
struct mlist {
	Runtime__V1__Metric **v;
	size_t n;
};

static int add_metric(struct mlist *l, int which, int64_t at, uint64_t value, const char *id,
		      const char *name, const char *third)
{
	Runtime__V1__Metric **grown = realloc(l->v, (l->n + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	l->v = grown;
	Runtime__V1__Metric *m = pb_new(&runtime__v1__metric__descriptor);
	if (!m)
		return -ENOMEM;
	l->v[l->n++] = m;
	const struct metric_desc *d = &descs[which];
	size_t n = d->labels == L_BASE ? 2 : 3;
	m->timestamp = at;
	m->metric_type = d->type;
	if (pb_set_str(&m->name, d->name) < 0 || !(m->value = u64(value)) ||
	    !(m->label_values = calloc(n, sizeof(char *))) ||
	    pb_set_str(&m->label_values[m->n_label_values++], id) < 0 ||
	    pb_set_str(&m->label_values[m->n_label_values++], name) < 0 ||
	    (n == 3 && pb_set_str(&m->label_values[m->n_label_values++], third) < 0))
		return -ENOMEM;
	return 0;
}

static int container_metrics(const Runtime__V1__ContainerStats *cs, const struct stats_extra *x,
			     Runtime__V1__ContainerMetrics **ret)
{
	_cleanup_pb_ Runtime__V1__ContainerMetrics *cm =
	    pb_new(&runtime__v1__container_metrics__descriptor);
	const Runtime__V1__ContainerAttributes *a = cs->attributes;
	if (!cm || !a || pb_set_str(&cm->container_id, a->id) < 0)
		return -ENOMEM;
	const char *id = a->id, *name = a->metadata ? a->metadata->name : "";
	struct mlist l = { 0 };
	int r = 0;
	const Runtime__V1__CpuUsage *cpu = cs->cpu;
	const Runtime__V1__MemoryUsage *mem = cs->memory;
	const Runtime__V1__FilesystemUsage *fs = cs->writable_layer;
	if (cpu && cpu->usage_core_nano_seconds)
		r = add_metric(&l, M_CPU, cpu->timestamp,
			       cpu->usage_core_nano_seconds->value / 1000000000, id, name, NULL);
	if (r == 0 && mem && mem->usage_bytes && mem->working_set_bytes && mem->rss_bytes) {
		const uint64_t v[] = { mem->usage_bytes->value, mem->working_set_bytes->value,
				       mem->rss_bytes->value };
		for (int k = 0; k < 3 && r == 0; k++)
			r = add_metric(&l, M_MEM_USAGE + k, mem->timestamp, v[k], id, name, NULL);
	}
	const char *dev = fs && fs->fs_id && fs->fs_id->mountpoint ? fs->fs_id->mountpoint : "";
	if (r == 0 && fs && fs->used_bytes && fs->inodes_used &&
	    (r = add_metric(&l, M_FS_USAGE, fs->timestamp, fs->used_bytes->value, id, name, dev)) ==
		0)
		r = add_metric(&l, M_FS_INODES, fs->timestamp, fs->inodes_used->value, id, name,
			       dev);
	if (r == 0 && x->procs_ok)
		r = add_metric(&l, M_PROCS, cpu ? cpu->timestamp : now_unix_ns(), x->procs, id,
			       name, NULL);
	cm->metrics = l.v;
	cm->n_metrics = l.n;
	if (r < 0)
		return r;
	*ret = TAKE_PTR(cm);
	return 0;
}

/* The metrics of pod: its interfaces' counters and its containers' (those
 * of ctrs whose extra names the pod). Under p->lock, its sample fresh. */
static int pod_metrics(const struct pod *pod, const Runtime__V1__ListContainerStatsResponse *ctrs,
		       const struct stats_extra *extra, Runtime__V1__PodSandboxMetrics **ret)
{
	_cleanup_pb_ Runtime__V1__PodSandboxMetrics *pm =
	    pb_new(&runtime__v1__pod_sandbox_metrics__descriptor);
	if (!pm || pb_set_str(&pm->pod_sandbox_id, pod->id) < 0)
		return -ENOMEM;
	struct mlist l = { 0 };
	int r = 0;
	for (size_t i = 0; pod->net_ok && i < pod->n_ifs && r == 0; i++) {
		const struct pods_iface *f = &pod->ifs[i];
		const uint64_t v[] = { f->rx_bytes, f->rx_packets, f->rx_dropped, f->rx_errors,
				       f->tx_bytes, f->tx_packets, f->tx_dropped, f->tx_errors };
		for (size_t k = 0; k < ARRAY_SIZE(v) && r == 0; k++)
			r = add_metric(&l, M_NET_FIRST + (int)k, pod->net_at, v[k], pod->id, "POD",
				       f->name);
	}
	pm->metrics = l.v;
	pm->n_metrics = l.n;
	if (r < 0)
		return r;
	size_t mine = 0;
	for (size_t i = 0; i < ctrs->n_stats; i++)
		mine += ctrs->stats[i] && strcmp(extra[i].pod_id, pod->id) == 0;
	if (mine && !(pm->container_metrics = calloc(mine, sizeof(void *))))
		return -ENOMEM;
	for (size_t i = 0; i < ctrs->n_stats; i++)
		if (ctrs->stats[i] && strcmp(extra[i].pod_id, pod->id) == 0) {
			Runtime__V1__ContainerMetrics *cm = NULL;
			if ((r = container_metrics(ctrs->stats[i], &extra[i], &cm)) < 0)
				return r;
			pm->container_metrics[pm->n_container_metrics++] = cm;
		}
	*ret = TAKE_PTR(pm);
	return 0;
}

/* The pods' stats into resp, or their metrics into mresp. */
static int collect(struct pods *p, const struct cric_call *call,
		   const Runtime__V1__PodSandboxStatsFilter *f,
		   Runtime__V1__ListPodSandboxStatsResponse *resp,
		   Runtime__V1__ListPodSandboxMetricsResponse *mresp, struct cric_err *err)
{
	_cleanup_pb_ Runtime__V1__ListPodSandboxResponse *list = NULL;
	int r = list_pods(p, call, f, &list, err);
	if (r < 0 || (r = learn(p, call, list, err)) < 0)
		return r;
	_cleanup_pb_ Runtime__V1__ListContainerStatsResponse *ctrs = NULL;
	_cleanup_free_ struct stats_extra *extra = NULL;
	if ((r = containers_of(p, NULL, &ctrs, &extra, err)) < 0)
		return r;
	size_t n = list->n_items;
	if (n && resp && !(resp->stats = calloc(n, sizeof(void *))))
		return -ENOMEM;
	if (n && mresp && !(mresp->pod_metrics = calloc(n, sizeof(void *))))
		return -ENOMEM;
	bool all = !f || (!(f->id && *f->id) && f->n_label_selector == 0);
	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < p->n; i++)
		p->items[i]->seen = false;
	for (size_t i = 0; i < n && r == 0; i++) {
		const Runtime__V1__PodSandbox *item = list->items[i];
		struct pod *pod = pod_get(p, item->id);
		if (!pod) {
			r = -ENOMEM;
			break;
		}
		pod->seen = true;
		if (!pod->cgroup[0]) /* removed meanwhile, or no facts */
			continue;
		refresh(p, pod);
		if (!pod->cur.ok) /* its cgroup is gone: not an error */
			continue;
		const struct pod_attrs a = { .id = item->id,
					     .metadata = item->metadata,
					     .maps = &item->base };
		Runtime__V1__PodSandboxMetrics *pm = NULL;
		Runtime__V1__PodSandboxStats *ps = NULL;
		if (mresp && (r = pod_metrics(pod, ctrs, extra, &pm)) == 0)
			mresp->pod_metrics[mresp->n_pod_metrics++] = pm;
		if (r == 0 && resp && (r = build_pod(pod, &a, ctrs, extra, &ps)) == 0)
			resp->stats[resp->n_stats++] = ps;
	}
	/* Forget the pods gone (seen only by an unfiltered list). */
	for (size_t i = p->n; all && r == 0 && i-- > 0;)
		if (!p->items[i]->seen) {
			free(p->items[i]);
			p->items[i] = p->items[--p->n];
		}
	pthread_mutex_unlock(&p->lock);
	return r;
}

int podstats_list(struct pods *p, const struct cric_call *call,
		  const Runtime__V1__PodSandboxStatsFilter *f,
		  Runtime__V1__ListPodSandboxStatsResponse *resp, struct cric_err *err)
{
	return collect(p, call, f, resp, NULL, err);
}

int podstats_metrics(struct pods *p, const struct cric_call *call,
		     Runtime__V1__ListPodSandboxMetricsResponse *resp, struct cric_err *err)
{
	return collect(p, call, NULL, NULL, resp, err);
}

/* ---- open, free ---- */

void podstats_free(struct pods *p)
{
	if (!p)
		return;
	cric_client_close(p->runtimed);
	for (size_t i = 0; i < p->n; i++)
		free(p->items[i]);
	free(p->items);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

int podstats_open(const struct cric_config *cfg, struct stats *stats, struct pods **ret,
		  struct cric_err *err)
{
	struct pods *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	p->stats = stats;
	_cleanup_free_ char *url = config_ipc_url(cfg, "runtimed");
	int r =
	    url ? cric_client_open_peer("runtimed", url, config_daemon_peer_uid(cfg, "runtimed"),
					&p->runtimed, err)
		: -ENOMEM;
	if (r < 0) {
		podstats_free(p);
		return r;
	}
	*ret = p;
	return 0;
}
