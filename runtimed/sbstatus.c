/* Snapshots of pods for PodSandboxStatus, ListPodSandbox and containers;
 * see sandbox.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "sandbox-int.h"

/* The state as of now: a READY sandbox whose infra died is NOTREADY (a
 * network namespace gone with a reboot is found by recovery, asking netd,
 * and by sandbox_get). With the lock held. */
static enum sb_state live_state(const struct sandbox *sb)
{
	if (sb->state != SB_READY)
		return sb->state;
	if (sb->pid_mode == POD_NS_POD && !proc_alive(sb->infra_pid, sb->infra_start))
		return SB_NOTREADY;
	return SB_READY;
}

struct sandbox_snapshot *sandbox_snapshot_free(struct sandbox_snapshot *s)
{
	if (!s)
		return NULL;
	for (size_t i = 0; i < SANDBOX_MAX_IPS && s->ips[i]; i++)
		free(s->ips[i]);
	free(s->cni_result);
	free(s->brief.config);
	free(s);
	return NULL;
}

void sandbox_snapshots_free(struct sandbox_snapshot **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		sandbox_snapshot_free(v[i]);
	free(v);
}

/* With the lock held. */
/* With the lock held. */
static int brief_of(const struct sandbox *sb, struct sandbox_brief *b)
{
	memcpy(b->id, sb->id, sizeof(b->id));
	memcpy(b->name, sb->name, sizeof(b->name));
	memcpy(b->namespace, sb->namespace, sizeof(b->namespace));
	memcpy(b->uid, sb->uid, sizeof(b->uid));
	b->attempt = sb->attempt;
	b->state = live_state(sb) == SB_READY ? SANDBOX_READY : SANDBOX_NOTREADY;
	b->created_at = sb->created_at;
	memcpy(b->handler, sb->handler, sizeof(b->handler));
	b->config_len = sb->config_len;
	if (!(b->config = malloc(sb->config_len ? sb->config_len : 1)))
		return -ENOMEM;
	memcpy(b->config, sb->config, sb->config_len);
	return 0;
}

/* With the lock held. */
static struct sandbox_snapshot *snapshot_of(const struct sandbox *sb)
{
	struct sandbox_snapshot *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	bool oom = brief_of(sb, &s->brief) < 0;
	s->net_mode = sb->host_network ? POD_NS_NODE : POD_NS_POD;
	s->ipc_mode = sb->host_ipc ? POD_NS_NODE : POD_NS_POD;
	s->pid_mode = (enum pod_ns_mode)sb->pid_mode;
	memcpy(s->netns, sb->netns, sizeof(s->netns));
	memcpy(s->userns, sb->userns, sizeof(s->userns));
	if (!sb->host_ipc)
		memcpy(s->ipc_ns, sb->ipc_pin, sizeof(s->ipc_ns));
	if (!sb->host_network)
		memcpy(s->uts_ns, sb->uts_pin, sizeof(s->uts_ns));
	s->infra_pid = sb->pid_mode == POD_NS_POD ? sb->infra_pid : 0;
	memcpy(s->cgroup, sb->cgroup, sizeof(s->cgroup));
	memcpy(s->cgroup_parent, sb->cgroup_parent, sizeof(s->cgroup_parent));
	memcpy(s->dir, sb->dir, sizeof(s->dir));
	memcpy(s->log_directory, sb->log_directory, sizeof(s->log_directory));
	for (size_t i = 0; i < SANDBOX_MAX_IPS && sb->ips[i]; i++)
		oom |= !(s->ips[i] = strdup(sb->ips[i]));
	if (sb->cni_result)
		oom |= !(s->cni_result = strdup(sb->cni_result));
	if (oom)
		return sandbox_snapshot_free(s);
	return s;
}

/* A READY pod whose network netd no longer has (its namespace gone) is
 * NOTREADY from now on: netd says so, runtimed does not look at its pins.
 * netd unreachable: the state stays. Asked until netd confirmed it once
 * (net_confirmed). With the op lock held. */
static void check_network(struct sandbox_mgr *m, const struct cric_call *call, struct sandbox *sb)
{
	if (sb->state != SB_READY || sb->host_network || !sb->net_setup || sb->net_confirmed)
		return;
	char netns[PATH_MAX];
	int r = podnet_status(m, call, sb->id, netns, sizeof(netns), NULL);
	if (r < 0 && r != -ENOENT)
		return;
	if (r == 0 && strcmp(netns, sb->netns) == 0) {
		pthread_mutex_lock(&m->lock);
		sb->net_confirmed = true;
		pthread_mutex_unlock(&m->lock);
		return;
	}
	log_set_pod(sb->id);
	log_notice("pod sandbox's network namespace is gone, now NOTREADY");
	log_set_pod(NULL);
	pthread_mutex_lock(&m->lock);
	sb->state = SB_NOTREADY;
	pthread_mutex_unlock(&m->lock);
	record_save(m, sb);
}

int sandbox_get(struct sandbox_mgr *m, const struct cric_call *call, const char *id,
		struct sandbox_snapshot **ret, struct cric_err *err)
{
	struct sandbox *sb;
	int r = lookup(m, id, &sb, err);
	if (r < 0)
		return r;
	/* The op lock: a status never sees a half-done stop. Lifecycle calls
	 * are short; the kubelet's relist waits at most for one of them. */
	pthread_mutex_lock(&sb->op);
	if (!sb->removed)
		check_network(m, call, sb);
	pthread_mutex_lock(&m->lock);
	struct sandbox_snapshot *s = sb->removed ? NULL : snapshot_of(sb);
	bool removed = sb->removed;
	pthread_mutex_unlock(&m->lock);
	pthread_mutex_unlock(&sb->op);
	put(m, sb);
	if (removed)
		return err_set(err, -ENOENT, "pod sandbox \"%s\" not found", id);
	if (!s)
		return -ENOMEM;
	*ret = s;
	return 0;
}

bool sandbox_take_stop_event(struct sandbox_mgr *m, const char *id)
{
	struct sandbox *sb;
	if (lookup(m, id, &sb, NULL) < 0)
		return false;
	pthread_mutex_lock(&m->lock);
	bool take = !sb->stop_event_taken;
	sb->stop_event_taken = true;
	pthread_mutex_unlock(&m->lock);
	put(m, sb);
	return take;
}

bool sandbox_infra_exited(struct sandbox_mgr *m, const char *id)
{
	struct sandbox *sb;
	if (lookup(m, id, &sb, NULL) < 0)
		return false;
	/* A stop in progress killed it: the stop sends the event. */
	pthread_mutex_lock(&sb->op);
	pthread_mutex_lock(&m->lock);
	bool take = !sb->removed && sb->state == SB_READY && live_state(sb) == SB_NOTREADY &&
		    !sb->stop_event_taken;
	if (take) {
		sb->stop_event_taken = true;
		log_notice("pod sandbox %s: its infra process %d exited, now NOTREADY", sb->id,
			   (int)sb->infra_pid);
	}
	pthread_mutex_unlock(&m->lock);
	pthread_mutex_unlock(&sb->op);
	put(m, sb);
	return take;
}

int sandbox_infras(struct sandbox_mgr *m, const char *id, struct sandbox_infra **ret, size_t *n)
{
	pthread_mutex_lock(&m->lock);
	struct sandbox_infra *v = calloc(m->n ? m->n : 1, sizeof(*v));
	size_t k = 0;
	for (size_t i = 0; v && i < m->n; i++) {
		const struct sandbox *sb = m->items[i];
		if (sb->removed || sb->state != SB_READY || sb->pid_mode != POD_NS_POD ||
		    sb->infra_pid <= 0 || (id && strcmp(sb->id, id) != 0))
			continue;
		memcpy(v[k].id, sb->id, sizeof(sb->id));
		v[k].pid = sb->infra_pid;
		v[k++].start = sb->infra_start;
	}
	pthread_mutex_unlock(&m->lock);
	if (!v)
		return -ENOMEM;
	*ret = v;
	*n = k;
	return 0;
}

void sandbox_briefs_free(struct sandbox_brief *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i].config);
	free(v);
}

int sandbox_list(struct sandbox_mgr *m, const char *id_filter, struct sandbox_brief **ret,
		 size_t *ret_n, struct cric_err *err)
{
	(void)err;
	/* An id filter that is a prefix matches only when unique. */
	struct sandbox *only = NULL;
	if (id_filter && *id_filter && lookup(m, id_filter, &only, NULL) < 0) {
		*ret = NULL;
		*ret_n = 0;
		return 0;
	}
	pthread_mutex_lock(&m->lock);
	struct sandbox_brief *v = calloc(m->n ? m->n : 1, sizeof(*v));
	size_t n = 0;
	int r = v ? 0 : -ENOMEM;
	for (size_t i = 0; i < m->n && r == 0; i++) {
		struct sandbox *sb = m->items[i];
		if (sb->state == SB_CREATING || (only && sb != only))
			continue;
		r = brief_of(sb, &v[n++]);
	}
	pthread_mutex_unlock(&m->lock);
	if (only)
		put(m, only);
	if (r < 0) {
		sandbox_briefs_free(v, n);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

void sandbox_entries_free(struct sandbox_entry *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i].entry);
	free(v);
}

/* sb's kept entry, made by fn first if it has none. With the lock held. */
static int entry_of(struct sandbox *sb, sandbox_entry_fn fn)
{
	if (sb->entry)
		return 0;
	struct sandbox_brief b = { 0 };
	int r = brief_of(sb, &b);
	if (r == 0)
		r = fn(&b, &sb->entry, &sb->entry_len);
	free(b.config);
	return r;
}

int sandbox_list_entries(struct sandbox_mgr *m, const char *id_filter, sandbox_entry_fn fn,
			 struct sandbox_entry **ret, size_t *ret_n, struct cric_err *err)
{
	(void)err;
	struct sandbox *only = NULL;
	if (id_filter && *id_filter && lookup(m, id_filter, &only, NULL) < 0) {
		*ret = NULL;
		*ret_n = 0;
		return 0;
	}
	pthread_mutex_lock(&m->lock);
	struct sandbox_entry *v = calloc(m->n ? m->n : 1, sizeof(*v));
	size_t n = 0;
	int r = v ? 0 : -ENOMEM;
	for (size_t i = 0; i < m->n && r == 0; i++) {
		struct sandbox *sb = m->items[i];
		if (sb->state == SB_CREATING || (only && sb != only))
			continue;
		if ((r = entry_of(sb, fn)) == -ENOMEM)
			break;
		if (r < 0) { /* fn cannot list it (its config): left out */
			r = 0;
			continue;
		}
		struct sandbox_entry *e = &v[n];
		e->state = live_state(sb) == SB_READY ? SANDBOX_READY : SANDBOX_NOTREADY;
		e->len = sb->entry_len;
		if (!(e->entry = malloc(sb->entry_len ? sb->entry_len : 1))) {
			r = -ENOMEM;
			break;
		}
		memcpy(e->entry, sb->entry, sb->entry_len);
		n++;
	}
	pthread_mutex_unlock(&m->lock);
	if (only)
		put(m, only);
	if (r < 0) {
		sandbox_entries_free(v, n);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}
