#include "sandbox.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup.h"
#include "common/base64.h"
#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/nspin.h"
#include "common/pbjson.h"
#include "common/pbutil.h"
#include "proto/cric/netd.pb-c.h"
#include "sysctl.h"

#define RECORD_MAX_BYTES    (4 * 1024 * 1024)
#define NETD_TIMEOUT_MS     (5 * 60 * 1000) /* a CNI chain is bounded by netd */
#define MAX_SYSCTLS         64
#define MAX_DNS_SERVERS     16
#define MAX_DNS_SEARCHES    32
#define MAX_DNS_OPTIONS     32
#define MAX_POD_CIDRS       4
#define INFRA_UID           65535
#define INFRA_OOM_SCORE_ADJ (-998)
#define HOSTNAME_MAX        63

enum sb_state { SB_CREATING, SB_READY, SB_NOTREADY };

struct sandbox {
	char id[65];
	char name[POD_NAME_MAX + 1];
	char namespace[POD_NAMESPACE_MAX + 1];
	char uid[POD_UID_MAX + 1];
	uint32_t attempt;
	enum sb_state state;
	int64_t created_at;
	uint8_t *config; /* the packed PodSandboxConfig */
	size_t config_len;
	char handler[64];
	bool host_network, host_ipc;
	int pid_mode;   /* Runtime__V1__NamespaceMode */
	bool net_setup; /* netd holds state for it */
	char netns[PATH_MAX];
	char *ips[SANDBOX_MAX_IPS + 1];
	char *cni_result;
	char ipc_pin[PATH_MAX], uts_pin[PATH_MAX];
	pid_t infra_pid;
	unsigned long long infra_start;
	char cgroup[CGROUP_PATH_MAX];
	char cgroup_parent[CGROUP_PATH_MAX]; /* as given (systemd slices) */
	char **cgroup_created;
	char dir[PATH_MAX];

	pthread_mutex_t op; /* one lifecycle call at a time */
	unsigned refs;
	bool removed;
};

struct sandbox_mgr {
	pthread_mutex_t lock; /* the table and every sandbox's fields */
	struct sandbox **items;
	size_t n, cap;
	char *records_dir, *sandboxes_dir, *pause_rootfs, *network_file, *runtimes_dir;
	char cgroup_driver[16];
	char cgroup_root[CGROUP_PATH_MAX];
	bool have_pause;
	struct oci_handler *handlers;
	size_t n_handlers;
	char default_handler[64];
	struct cric_client *netd;
	char *pod_cidrs[MAX_POD_CIDRS + 1];
};

/* ---- small helpers ---- */

static const char *state_name(enum sb_state s)
{
	return s == SB_CREATING ? "creating" : s == SB_READY ? "ready" : "notready";
}

static void strv_clear(char **v, size_t max)
{
	for (size_t i = 0; i < max && v[i]; i++) {
		free(v[i]);
		v[i] = NULL;
	}
}

static void sandbox_free(struct sandbox *sb)
{
	if (!sb)
		return;
	free(sb->config);
	strv_clear(sb->ips, SANDBOX_MAX_IPS);
	free(sb->cni_result);
	strv_free(sb->cgroup_created);
	pthread_mutex_destroy(&sb->op);
	free(sb);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(struct sandbox *, sandbox_free)

static struct sandbox *sandbox_alloc(void)
{
	struct sandbox *sb = calloc(1, sizeof(*sb));
	if (sb)
		pthread_mutex_init(&sb->op, NULL);
	return sb;
}

/* RFC 1123 host name: labels of [a-z0-9-] (any case), dots between. */
static bool hostname_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > HOSTNAME_MAX || s[0] == '.' || s[0] == '-' || s[n - 1] == '.' ||
	    strstr(s, ".."))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.'))
			return false;
	}
	return true;
}

static bool ip_ok(const char *s)
{
	unsigned char buf[16];
	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* A resolv.conf word: printable, no blanks (no line or field injection). */
static bool word_ok(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f || s[i] == '#' ||
		    s[i] == ';')
			return false;
	return true;
}

static struct oci_handler *find_handler(struct sandbox_mgr *m, const char *name)
{
	if (!name || !*name)
		name = m->default_handler;
	for (size_t i = 0; i < m->n_handlers; i++)
		if (strcmp(m->handlers[i].name, name) == 0)
			return &m->handlers[i];
	return NULL;
}

/* ---- records ---- */

static char *record_path(struct sandbox_mgr *m, const char *id)
{
	char name[80];
	snprintf(name, sizeof(name), "%s.json", id);
	return path_join(m->records_dir, name);
}

/* Called with the sandbox's op lock held (fields do not change under us). */
static int record_save(struct sandbox_mgr *m, struct sandbox *sb)
{
	_cleanup_free_ char *cfg = base64_encode(sb->config, sb->config_len);
	if (!cfg)
		return -ENOMEM;
	_cleanup_json_ json_t *doc = json_pack(
	    "{s:s, s:s, s:s, s:s, s:I, s:s, s:I, s:s, s:s, s:b, s:b, s:i, s:b, s:s, s:o, s:s?,"
	    " s:s, s:s, s:I, s:I, s:s, s:s, s:o, s:s}",
	    "id", sb->id, "name", sb->name, "namespace", sb->namespace, "uid", sb->uid, "attempt",
	    (json_int_t)sb->attempt, "state", state_name(sb->state), "created_at",
	    (json_int_t)sb->created_at, "config", cfg, "handler", sb->handler, "host_network",
	    sb->host_network, "host_ipc", sb->host_ipc, "pid_mode", sb->pid_mode, "net_setup",
	    sb->net_setup, "netns", sb->netns, "ips", json_from_strv(sb->ips), "cni_result",
	    sb->cni_result, "ipc_pin", sb->ipc_pin, "uts_pin", sb->uts_pin, "infra_pid",
	    (json_int_t)sb->infra_pid, "infra_start", (json_int_t)sb->infra_start, "cgroup",
	    sb->cgroup, "cgroup_parent", sb->cgroup_parent, "cgroup_created",
	    json_from_strv(sb->cgroup_created), "dir", sb->dir);
	if (!doc)
		return -ENOMEM;
	_cleanup_free_ char *path = record_path(m, sb->id);
	if (!path)
		return -ENOMEM;
	int r = json_save_atomic(path, doc, 0600);
	if (r < 0)
		log_error_errno(r, "sandbox %s: save its record \"%s\"", sb->id, path);
	return r;
}

static int record_delete(struct sandbox_mgr *m, const char *id)
{
	_cleanup_free_ char *path = record_path(m, id);
	if (!path)
		return -ENOMEM;
	if (unlink(path) < 0 && errno != ENOENT)
		return negative_errno();
	return 0;
}

static int copy_str(char *dst, size_t size, json_t *doc, const char *key)
{
	const char *v = json_string_value(json_object_get(doc, key));
	if (!v || strlen(v) >= size)
		return -EINVAL;
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

static int record_load(const char *path, struct sandbox **ret)
{
	char perr[256];
	_cleanup_json_ json_t *doc = NULL;
	int r = json_load_path(path, RECORD_MAX_BYTES, &doc, perr, sizeof(perr));
	if (r < 0)
		return r;
	_cleanup_(sandbox_freep) struct sandbox *sb = sandbox_alloc();
	if (!sb)
		return -ENOMEM;
	const char *state = json_string_value(json_object_get(doc, "state"));
	const char *cfg = json_string_value(json_object_get(doc, "config"));
	if (copy_str(sb->id, sizeof(sb->id), doc, "id") < 0 || !id_is_valid(sb->id) ||
	    copy_str(sb->name, sizeof(sb->name), doc, "name") < 0 ||
	    copy_str(sb->namespace, sizeof(sb->namespace), doc, "namespace") < 0 ||
	    copy_str(sb->uid, sizeof(sb->uid), doc, "uid") < 0 ||
	    copy_str(sb->handler, sizeof(sb->handler), doc, "handler") < 0 ||
	    copy_str(sb->netns, sizeof(sb->netns), doc, "netns") < 0 ||
	    copy_str(sb->ipc_pin, sizeof(sb->ipc_pin), doc, "ipc_pin") < 0 ||
	    copy_str(sb->uts_pin, sizeof(sb->uts_pin), doc, "uts_pin") < 0 ||
	    copy_str(sb->cgroup, sizeof(sb->cgroup), doc, "cgroup") < 0 ||
	    copy_str(sb->cgroup_parent, sizeof(sb->cgroup_parent), doc, "cgroup_parent") < 0 ||
	    copy_str(sb->dir, sizeof(sb->dir), doc, "dir") < 0 || !state || !cfg ||
	    base64_decode(cfg, RECORD_MAX_BYTES, &sb->config, &sb->config_len) < 0)
		return -EINVAL;
	sb->state = strcmp(state, "ready") == 0      ? SB_READY
		    : strcmp(state, "creating") == 0 ? SB_CREATING
						     : SB_NOTREADY;
	sb->attempt = (uint32_t)json_integer_value(json_object_get(doc, "attempt"));
	sb->created_at = json_integer_value(json_object_get(doc, "created_at"));
	sb->host_network = json_is_true(json_object_get(doc, "host_network"));
	sb->host_ipc = json_is_true(json_object_get(doc, "host_ipc"));
	sb->pid_mode = (int)json_integer_value(json_object_get(doc, "pid_mode"));
	sb->net_setup = json_is_true(json_object_get(doc, "net_setup"));
	sb->infra_pid = (pid_t)json_integer_value(json_object_get(doc, "infra_pid"));
	sb->infra_start =
	    (unsigned long long)json_integer_value(json_object_get(doc, "infra_start"));
	const char *res = json_string_value(json_object_get(doc, "cni_result"));
	if (res && !(sb->cni_result = strdup(res)))
		return -ENOMEM;
	json_t *ips = json_object_get(doc, "ips");
	for (size_t i = 0; i < json_array_size(ips) && i < SANDBOX_MAX_IPS; i++)
		if (json_is_string(json_array_get(ips, i)) &&
		    !(sb->ips[i] = strdup(json_string_value(json_array_get(ips, i)))))
			return -ENOMEM;
	if (!(sb->cgroup_created = strv_from_json(json_object_get(doc, "cgroup_created"))))
		return -ENOMEM;
	*ret = TAKE_PTR(sb);
	return 0;
}

/* ---- the table ---- */

static int table_add(struct sandbox_mgr *m, struct sandbox *sb)
{
	if (m->n == m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 64;
		struct sandbox **n = realloc(m->items, ncap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		m->items = n;
		m->cap = ncap;
	}
	m->items[m->n++] = sb;
	sb->refs++;
	return 0;
}

/* With the lock held. */
static void unref_locked(struct sandbox *sb)
{
	if (--sb->refs == 0)
		sandbox_free(sb);
}

static void table_remove_locked(struct sandbox_mgr *m, struct sandbox *sb)
{
	for (size_t i = 0; i < m->n; i++) {
		if (m->items[i] == sb) {
			m->items[i] = m->items[--m->n];
			sb->removed = true;
			unref_locked(sb);
			return;
		}
	}
}

/* Find by id or unique prefix, with a reference. -ENOENT, or -EINVAL when
 * the prefix is ambiguous. Sandboxes being created are not visible. */
static int lookup(struct sandbox_mgr *m, const char *id, struct sandbox **ret, struct cric_err *err)
{
	if (!id || !*id)
		return err_set(err, -EINVAL, "pod sandbox id is empty");
	if (!id_is_safe_token(id, 64))
		return err_set(err, -EINVAL, "invalid pod sandbox id \"%.80s\"", id);
	size_t len = strlen(id);
	struct sandbox *found = NULL;
	int matches = 0;
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->n; i++) {
		struct sandbox *sb = m->items[i];
		if (sb->state == SB_CREATING || strncmp(sb->id, id, len) != 0)
			continue;
		if (len == 64) {
			found = sb;
			matches = 1;
			break;
		}
		found = sb;
		matches++;
	}
	if (matches == 1)
		found->refs++;
	pthread_mutex_unlock(&m->lock);
	if (matches == 0)
		return err_set(err, -ENOENT, "pod sandbox \"%s\" not found", id);
	if (matches > 1)
		return err_set(err, -EINVAL, "pod sandbox id prefix \"%s\" is ambiguous", id);
	*ret = found;
	return 0;
}

static void put(struct sandbox_mgr *m, struct sandbox *sb)
{
	pthread_mutex_lock(&m->lock);
	unref_locked(sb);
	pthread_mutex_unlock(&m->lock);
}

/* ---- validation ---- */

struct pod_plan {
	const Runtime__V1__PodSandboxConfig *cfg;
	struct oci_handler *handler;
	char hostname[HOSTNAME_MAX + 1];
	int net_mode, ipc_mode, pid_mode;
	struct {
		char path[SYSCTL_NAME_MAX];
		const char *value;
		enum sysctl_ns ns;
	} sysctls[MAX_SYSCTLS];
	size_t n_sysctls;
	char cgroup[CGROUP_PATH_MAX];
	struct cgroup_limits limits;
	bool has_limits;
};

static void add_limits(struct cgroup_limits *l, const Runtime__V1__LinuxContainerResources *r,
		       bool *any)
{
	if (!r)
		return;
	*any = true;
	l->cpu_shares += r->cpu_shares;
	if (r->cpu_period > 0)
		l->cpu_period = r->cpu_period;
	if (r->cpu_quota > 0)
		l->cpu_quota += r->cpu_quota;
	if (r->memory_limit_in_bytes > 0)
		l->memory_limit += r->memory_limit_in_bytes;
	if (r->cpuset_cpus && *r->cpuset_cpus)
		snprintf(l->cpuset_cpus, sizeof(l->cpuset_cpus), "%s", r->cpuset_cpus);
	if (r->cpuset_mems && *r->cpuset_mems)
		snprintf(l->cpuset_mems, sizeof(l->cpuset_mems), "%s", r->cpuset_mems);
}

static bool cpuset_ok(const char *s)
{
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || *s == ',' || *s == '-'))
			return false;
	return true;
}

static int validate(struct sandbox_mgr *m, const Runtime__V1__RunPodSandboxRequest *req,
		    const char *id, struct pod_plan *p, struct cric_err *err)
{
	const Runtime__V1__PodSandboxConfig *cfg = req->config;
	if (!cfg)
		return err_set(err, -EINVAL, "config is required");
	p->cfg = cfg;
	const Runtime__V1__PodSandboxMetadata *md = cfg->metadata;
	if (!md)
		return err_set(err, -EINVAL, "config.metadata is required");
	int r = pod_metadata_validate(md->name, md->namespace_, md->uid, "config.metadata.", err);
	if (r < 0)
		return r;

	if (!(p->handler = find_handler(m, req->runtime_handler)))
		return err_set(err, -EINVAL, "unknown runtime handler \"%.100s\"",
			       req->runtime_handler);

	const Runtime__V1__LinuxPodSandboxConfig *lx = cfg->linux;
	const Runtime__V1__NamespaceOption *nso =
	    lx && lx->security_context ? lx->security_context->namespace_options : NULL;
	p->net_mode = nso ? nso->network : RUNTIME__V1__NAMESPACE_MODE__POD;
	p->ipc_mode = nso ? nso->ipc : RUNTIME__V1__NAMESPACE_MODE__POD;
	p->pid_mode = nso ? nso->pid : RUNTIME__V1__NAMESPACE_MODE__POD;
	if (p->net_mode != RUNTIME__V1__NAMESPACE_MODE__POD &&
	    p->net_mode != RUNTIME__V1__NAMESPACE_MODE__NODE)
		return err_set(err, -EINVAL, "namespace_options.network must be POD or NODE");
	if (p->ipc_mode != RUNTIME__V1__NAMESPACE_MODE__POD &&
	    p->ipc_mode != RUNTIME__V1__NAMESPACE_MODE__NODE)
		return err_set(err, -EINVAL, "namespace_options.ipc must be POD or NODE");
	if (p->pid_mode == RUNTIME__V1__NAMESPACE_MODE__TARGET || p->pid_mode < 0 ||
	    p->pid_mode > 3)
		return err_set(err, -EINVAL,
			       "namespace_options.pid must be POD, CONTAINER or NODE");
	if (p->pid_mode == RUNTIME__V1__NAMESPACE_MODE__POD && !m->have_pause)
		return err_set(err, -ENOPKG,
			       "pod shares a PID namespace but the infra binary (cric-pause) is "
			       "not installed");

	const char *hn = cfg->hostname && *cfg->hostname ? cfg->hostname : md->name;
	if (cfg->hostname && *cfg->hostname && !hostname_ok(cfg->hostname))
		return err_set(err, -EINVAL, "invalid hostname \"%.100s\"", cfg->hostname);
	snprintf(p->hostname, sizeof(p->hostname), "%s", hn);
	if (!hostname_ok(p->hostname)) /* a long or odd pod name: cut */
		snprintf(p->hostname, sizeof(p->hostname), "pod-%.12s", id);

	/* It becomes the root of every container log path: a clean absolute
	 * path ("/var/log/pods/x/.." would point elsewhere). */
	if (cfg->log_directory && *cfg->log_directory &&
	    !path_is_clean(cfg->log_directory, true, PATH_MAX - 256))
		return err_set(err, -EINVAL,
			       "log_directory \"%.200s\" must be a clean absolute path (no \".\", "
			       "\"..\" or empty components)",
			       cfg->log_directory);

	const Runtime__V1__DNSConfig *dns = cfg->dns_config;
	if (dns) {
		if (dns->n_servers > MAX_DNS_SERVERS || dns->n_searches > MAX_DNS_SEARCHES ||
		    dns->n_options > MAX_DNS_OPTIONS)
			return err_set(err, -EINVAL,
				       "dns_config: at most %d servers, %d searches, %d options",
				       MAX_DNS_SERVERS, MAX_DNS_SEARCHES, MAX_DNS_OPTIONS);
		for (size_t i = 0; i < dns->n_servers; i++)
			if (!ip_ok(dns->servers[i]))
				return err_set(err, -EINVAL,
					       "dns_config.servers: \"%.80s\" is not an IP address",
					       dns->servers[i]);
		for (size_t i = 0; i < dns->n_searches; i++)
			if (!word_ok(dns->searches[i], 253))
				return err_set(err, -EINVAL,
					       "dns_config.searches: invalid domain \"%.80s\"",
					       dns->searches[i]);
		for (size_t i = 0; i < dns->n_options; i++)
			if (!word_ok(dns->options[i], 256))
				return err_set(err, -EINVAL,
					       "dns_config.options: invalid option \"%.80s\"",
					       dns->options[i]);
	}

	if (lx && lx->n_sysctls > MAX_SYSCTLS)
		return err_set(err, -EINVAL, "more than %d sysctls", MAX_SYSCTLS);
	for (size_t i = 0; lx && i < lx->n_sysctls; i++) {
		const char *k = lx->sysctls[i]->key, *v = lx->sysctls[i]->value;
		r = sysctl_parse(k, v, p->sysctls[i].path, sizeof(p->sysctls[i].path),
				 &p->sysctls[i].ns, err);
		if (r < 0)
			return r;
		if (p->sysctls[i].ns == SYSCTL_NS_NET &&
		    p->net_mode == RUNTIME__V1__NAMESPACE_MODE__NODE)
			return err_set(err, -EINVAL,
				       "sysctl \"%s\" needs the pod's own network namespace (the "
				       "pod uses the node's)",
				       k);
		if (p->sysctls[i].ns == SYSCTL_NS_IPC &&
		    p->ipc_mode == RUNTIME__V1__NAMESPACE_MODE__NODE)
			return err_set(err, -EINVAL,
				       "sysctl \"%s\" needs the pod's own IPC namespace (the pod "
				       "uses the node's)",
				       k);
		p->sysctls[i].value = v;
		p->n_sysctls++;
	}

	if (lx && lx->cgroup_parent && *lx->cgroup_parent) {
		r = cgroup_resolve_parent(m->cgroup_driver, lx->cgroup_parent, p->cgroup,
					  sizeof(p->cgroup), err);
		if (r < 0)
			return r;
	} else {
		snprintf(p->cgroup, sizeof(p->cgroup), "%s/pod-%s", m->cgroup_root, id);
	}
	if (lx) {
		add_limits(&p->limits, lx->overhead, &p->has_limits);
		add_limits(&p->limits, lx->resources, &p->has_limits);
		if (!cpuset_ok(p->limits.cpuset_cpus) || !cpuset_ok(p->limits.cpuset_mems))
			return err_set(err, -EINVAL, "resources: invalid cpuset");
		if (p->limits.memory_limit < 0 || p->limits.cpu_shares < 0)
			return err_set(err, -EINVAL, "resources: negative limit");
	}
	return 0;
}

/* ---- pod files ---- */

static int write_in(const char *dir, const char *name, const char *text)
{
	_cleanup_free_ char *path = path_join(dir, name);
	if (!path)
		return -ENOMEM;
	return write_file_atomic(path, text, strlen(text), 0644);
}

static int write_pod_files(struct sandbox *sb, const struct pod_plan *p, struct cric_err *err)
{
	char buf[16384];
	int r;
	snprintf(buf, sizeof(buf), "%s\n", p->hostname);
	if ((r = write_in(sb->dir, "hostname", buf)) < 0)
		return err_set(err, r, "write hostname: %s", strerror(-r));

	size_t o = (size_t)snprintf(buf, sizeof(buf),
				    "127.0.0.1\tlocalhost\n"
				    "::1\tlocalhost ip6-localhost ip6-loopback\n"
				    "fe00::0\tip6-localnet\n"
				    "fe00::0\tip6-mcastprefix\n"
				    "fe00::1\tip6-allnodes\n"
				    "fe00::2\tip6-allrouters\n");
	for (size_t i = 0; i < SANDBOX_MAX_IPS && sb->ips[i] && o < sizeof(buf); i++)
		o +=
		    (size_t)snprintf(buf + o, sizeof(buf) - o, "%s\t%s\n", sb->ips[i], p->hostname);
	if ((r = write_in(sb->dir, "hosts", buf)) < 0)
		return err_set(err, r, "write hosts: %s", strerror(-r));

	const Runtime__V1__DNSConfig *dns = p->cfg->dns_config;
	if (dns) {
		o = (size_t)snprintf(buf, sizeof(buf), "# written by cric for pod %s\n", sb->id);
		for (size_t i = 0; i < dns->n_servers && o < sizeof(buf); i++)
			o += (size_t)snprintf(buf + o, sizeof(buf) - o, "nameserver %s\n",
					      dns->servers[i]);
		if (dns->n_searches > 0 && o < sizeof(buf)) {
			o += (size_t)snprintf(buf + o, sizeof(buf) - o, "search");
			for (size_t i = 0; i < dns->n_searches && o < sizeof(buf); i++)
				o += (size_t)snprintf(buf + o, sizeof(buf) - o, " %s",
						      dns->searches[i]);
			if (o < sizeof(buf))
				o += (size_t)snprintf(buf + o, sizeof(buf) - o, "\n");
		}
		if (dns->n_options > 0 && o < sizeof(buf)) {
			o += (size_t)snprintf(buf + o, sizeof(buf) - o, "options");
			for (size_t i = 0; i < dns->n_options && o < sizeof(buf); i++)
				o += (size_t)snprintf(buf + o, sizeof(buf) - o, " %s",
						      dns->options[i]);
			if (o < sizeof(buf))
				o += (size_t)snprintf(buf + o, sizeof(buf) - o, "\n");
		}
		if (o >= sizeof(buf))
			return err_set(err, -EINVAL,
				       "dns_config makes a resolv.conf over %zu bytes",
				       sizeof(buf));
		r = write_in(sb->dir, "resolv.conf", buf);
	} else {
		/* No DNS config: the node's resolver, as the kubelet does for
		 * "Default" DNS policy. */
		_cleanup_free_ char *host = NULL;
		size_t len;
		r = read_file("/etc/resolv.conf", 64 * 1024, &host, &len);
		r = write_in(sb->dir, "resolv.conf", r == 0 ? host : "");
	}
	if (r < 0)
		return err_set(err, r, "write resolv.conf: %s", strerror(-r));
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		return rmdir(path) < 0 && errno != ENOENT ? -1 : 0;
	return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

/* rm -rf of the pod's own directory; never crosses into a mount (the pins
 * are unmounted first, FTW_MOUNT guards against any left). */
static int remove_dir(const char *dir, struct cric_err *err)
{
	if (!*dir)
		return 0;
	if (nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0 && errno != ENOENT)
		return err_set(err, negative_errno(), "remove \"%s\": %s", dir, strerror(errno));
	return 0;
}

/* ---- namespaces ---- */

struct ns_setup {
	const struct pod_plan *p;
	enum sysctl_ns ns;
};

static int apply_sysctls(void *ud, struct cric_err *err)
{
	const struct ns_setup *s = ud;
	for (size_t i = 0; i < s->p->n_sysctls; i++) {
		if (s->p->sysctls[i].ns != s->ns)
			continue;
		int r = sysctl_write(s->p->sysctls[i].path, s->p->sysctls[i].value, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static int set_hostname(void *ud, struct cric_err *err)
{
	const char *hn = ud;
	if (sethostname(hn, strlen(hn)) < 0)
		return err_set(err, negative_errno(), "sethostname: %s", strerror(errno));
	return 0;
}

/* ---- netd ---- */

/* "10M", "1Gi", "500k" (the kubelet's bandwidth annotations) -> bits/s. */
static int parse_quantity(const char *s, uint64_t *ret)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	static const struct {
		const char *sfx;
		uint64_t mul;
	} units[] = {
		{ "", 1 },
		{ "k", 1000ULL },
		{ "M", 1000ULL * 1000 },
		{ "G", 1000ULL * 1000 * 1000 },
		{ "T", 1000ULL * 1000 * 1000 * 1000 },
		{ "Ki", 1024ULL },
		{ "Mi", 1024ULL * 1024 },
		{ "Gi", 1024ULL * 1024 * 1024 },
		{ "Ti", 1024ULL * 1024 * 1024 * 1024 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		if (strcmp(end, units[i].sfx) == 0) {
			if (v > UINT64_MAX / units[i].mul)
				return -ERANGE;
			*ret = v * units[i].mul;
			return 0;
		}
	}
	return -EINVAL;
}

static int netd_setup(struct sandbox_mgr *m, const struct cric_call *call, struct sandbox *sb,
		      const struct pod_plan *p, struct cric_err *err)
{
	const Runtime__V1__PodSandboxConfig *cfg = p->cfg;
	Cric__Internal__SetupPodNetworkRequest req =
	    CRIC__INTERNAL__SETUP_POD_NETWORK_REQUEST__INIT;
	req.pod_id = sb->id;
	req.name = sb->name;
	req.namespace_ = sb->namespace;
	req.uid = sb->uid;

	Cric__Internal__NetdPortMapping pms[128], *pmp[128];
	if (cfg->n_port_mappings > ARRAY_SIZE(pms))
		return err_set(err, -EINVAL, "more than %zu port_mappings", ARRAY_SIZE(pms));
	for (size_t i = 0; i < cfg->n_port_mappings; i++) {
		const Runtime__V1__PortMapping *pm = cfg->port_mappings[i];
		cric__internal__netd_port_mapping__init(&pms[i]);
		pms[i].protocol = pm->protocol == RUNTIME__V1__PROTOCOL__UDP    ? "udp"
				  : pm->protocol == RUNTIME__V1__PROTOCOL__SCTP ? "sctp"
										: "tcp";
		pms[i].container_port = pm->container_port;
		pms[i].host_port = pm->host_port;
		pms[i].host_ip = pm->host_ip;
		pmp[i] = &pms[i];
	}
	req.n_port_mappings = cfg->n_port_mappings;
	req.port_mappings = pmp;

	Cric__Internal__NetdDNS dns = CRIC__INTERNAL__NETD_DNS__INIT;
	if (cfg->dns_config) {
		dns.n_servers = cfg->dns_config->n_servers;
		dns.servers = cfg->dns_config->servers;
		dns.n_searches = cfg->dns_config->n_searches;
		dns.searches = cfg->dns_config->searches;
		dns.n_options = cfg->dns_config->n_options;
		dns.options = cfg->dns_config->options;
		req.dns = &dns;
	}

	Cric__Internal__NetdBandwidth bw = CRIC__INTERNAL__NETD_BANDWIDTH__INIT;
	for (size_t i = 0; i < cfg->n_annotations; i++) {
		const char *k = cfg->annotations[i]->key, *v = cfg->annotations[i]->value;
		uint64_t *dst = strcmp(k, "kubernetes.io/ingress-bandwidth") == 0 ? &bw.ingress_rate
				: strcmp(k, "kubernetes.io/egress-bandwidth") == 0 ? &bw.egress_rate
										   : NULL;
		if (!dst)
			continue;
		if (parse_quantity(v, dst) < 0)
			return err_set(err, -EINVAL, "annotation %s: invalid quantity \"%.40s\"", k,
				       v);
		req.bandwidth = &bw;
	}

	Cric__Internal__NetdIPRange ranges[MAX_POD_CIDRS], *rp[MAX_POD_CIDRS];
	pthread_mutex_lock(&m->lock);
	char cidrs[MAX_POD_CIDRS][64];
	size_t nr = 0;
	for (; nr < MAX_POD_CIDRS && m->pod_cidrs[nr]; nr++)
		snprintf(cidrs[nr], sizeof(cidrs[nr]), "%s", m->pod_cidrs[nr]);
	pthread_mutex_unlock(&m->lock);
	for (size_t i = 0; i < nr; i++) {
		cric__internal__netd_iprange__init(&ranges[i]);
		ranges[i].subnet = cidrs[i];
		rp[i] = &ranges[i];
	}
	req.n_ip_ranges = nr;
	req.ip_ranges = rp;

	ProtobufCMessage *out = NULL;
	_cleanup_free_ char *msg = NULL;
	unsigned code = cric_client_call_pb(
	    m->netd, "cric.netd.SetupPodNetwork", call->request_id, deadline_in_ms(NETD_TIMEOUT_MS),
	    &req.base, &cric__internal__setup_pod_network_response__descriptor, &out, &msg);
	if (code != CODE_OK) {
		int r = errno_from_grpc_code(code);
		return err_set(err, r, "pod network: %s", msg ? msg : grpc_code_name(code));
	}
	_cleanup_pb_ Cric__Internal__SetupPodNetworkResponse *resp =
	    (Cric__Internal__SetupPodNetworkResponse *)out;
	const Cric__Internal__NetdPodNetwork *n = resp->network;
	if (!n || strlen(n->netns_path) >= sizeof(sb->netns))
		return err_set(err, -EIO, "netd answered without a network");
	pthread_mutex_lock(&m->lock);
	snprintf(sb->netns, sizeof(sb->netns), "%s", n->netns_path);
	for (size_t i = 0; i < n->n_ips && i < SANDBOX_MAX_IPS; i++)
		sb->ips[i] = strdup(n->ips[i]);
	sb->cni_result = strdup(n->cni_result_json);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static int netd_teardown(struct sandbox_mgr *m, const struct cric_call *call, struct sandbox *sb,
			 struct cric_err *err)
{
	Cric__Internal__TeardownPodNetworkRequest req =
	    CRIC__INTERNAL__TEARDOWN_POD_NETWORK_REQUEST__INIT;
	req.pod_id = sb->id;
	ProtobufCMessage *out = NULL;
	_cleanup_free_ char *msg = NULL;
	unsigned code = cric_client_call_pb(
	    m->netd, "cric.netd.TeardownPodNetwork", call ? call->request_id : NULL,
	    deadline_in_ms(NETD_TIMEOUT_MS), &req.base,
	    &cric__internal__teardown_pod_network_response__descriptor, &out, &msg);
	if (out)
		protobuf_c_message_free_unpacked(out, NULL);
	if (code != CODE_OK)
		return err_set(err, errno_from_grpc_code(code), "tear down the pod network: %s",
			       msg ? msg : grpc_code_name(code));
	return 0;
}

/* ---- the infra process ---- */

static json_t *bind_ro(const char *dst, const char *src)
{
	return json_pack("{s:s, s:s, s:s, s:[s,s,s,s,s]}", "destination", dst, "type", "bind",
			 "source", src, "options", "rbind", "ro", "nosuid", "nodev", "noexec");
}

static int write_infra_bundle(struct sandbox_mgr *m, struct sandbox *sb, const char *bundle,
			      const struct oci_handler *h, struct cric_err *err)
{
	json_t *ns = json_pack("[{s:s}, {s:s}]", "type", "pid", "type", "mount");
	if (!ns)
		return -ENOMEM;
	if (!sb->host_ipc)
		json_array_append_new(ns,
				      json_pack("{s:s, s:s}", "type", "ipc", "path", sb->ipc_pin));
	if (!sb->host_network) {
		json_array_append_new(ns,
				      json_pack("{s:s, s:s}", "type", "uts", "path", sb->uts_pin));
		json_array_append_new(
		    ns, json_pack("{s:s, s:s}", "type", "network", "path", sb->netns));
	}
	char cgpath[CGROUP_PATH_MAX + 128];
	if (h->systemd_cgroup)
		snprintf(cgpath, sizeof(cgpath), "%s:cric:%s", sb->cgroup_parent, sb->id);
	else
		snprintf(cgpath, sizeof(cgpath), "%s/cric-%s", sb->cgroup, sb->id);
	_cleanup_free_ char *hostname = path_join(sb->dir, "hostname");
	_cleanup_free_ char *hosts = path_join(sb->dir, "hosts");
	_cleanup_free_ char *resolv = path_join(sb->dir, "resolv.conf");
	if (!hostname || !hosts || !resolv) {
		json_decref(ns);
		return -ENOMEM;
	}
	_cleanup_json_ json_t *doc = json_pack(
	    "{s:s, s:{s:b, s:{s:i, s:i}, s:[s], s:[s], s:s, s:b, s:{s:[], s:[], s:[], s:[], s:[]}},"
	    " s:{s:s, s:b},"
	    " s:[{s:s, s:s, s:s, s:[s,s,s]}, {s:s, s:s, s:s, s:[s,s,s,s]}, o, o, o],"
	    " s:{s:o, s:s, s:{}, s:[s,s,s,s,s,s,s,s], s:[s,s,s,s,s,s]}}",
	    "ociVersion", "1.0.2", "process", "terminal", 0, "user", "uid", INFRA_UID, "gid",
	    INFRA_UID, "args", "/pause", "env", "PATH=/", "cwd", "/", "noNewPrivileges", 1,
	    "capabilities", "bounding", "effective", "inheritable", "permitted", "ambient", "root",
	    "path", m->pause_rootfs, "readonly", 1, "mounts", "destination", "/proc", "type",
	    "proc", "source", "proc", "options", "nosuid", "noexec", "nodev", "destination", "/dev",
	    "type", "tmpfs", "source", "tmpfs", "options", "nosuid", "strictatime", "mode=755",
	    "size=65536k", bind_ro("/etc/hostname", hostname), bind_ro("/etc/hosts", hosts),
	    bind_ro("/etc/resolv.conf", resolv), "linux", "namespaces", ns, "cgroupsPath", cgpath,
	    "resources", "maskedPaths", "/proc/acpi", "/proc/kcore", "/proc/keys",
	    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
	    "/sys/firmware", "readonlyPaths", "/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq",
	    "/proc/sys", "/proc/sysrq-trigger");
	if (!doc)
		return err_set(err, -ENOMEM, "build the infra's config.json");
	/* As the peers do: the infra is the last thing the OOM killer should
	 * pick (-998), as far as this host lets us. */
	if (json_object_set_new(json_object_get(doc, "process"), "oomScoreAdj",
				json_integer(oci_oom_score_adj(INFRA_OOM_SCORE_ADJ))) < 0)
		return err_set(err, -ENOMEM, "build the infra's config.json");
	/* No hostname: the UTS namespace is the pinned one (or the node's). */
	if (mkdir(bundle, 0700) < 0 && errno != EEXIST)
		return err_set(err, negative_errno(), "create \"%s\": %s", bundle, strerror(errno));
	_cleanup_free_ char *path = path_join(bundle, "config.json");
	int r = path ? json_save_atomic(path, doc, 0600) : -ENOMEM;
	if (r < 0)
		return err_set(err, r, "write \"%s\": %s", path ? path : bundle, strerror(-r));
	return 0;
}

static int infra_start(struct sandbox_mgr *m, struct sandbox *sb, const struct oci_handler *h,
		       struct cric_err *err)
{
	_cleanup_free_ char *bundle = path_join(sb->dir, "infra");
	if (!bundle)
		return -ENOMEM;
	int r = write_infra_bundle(m, sb, bundle, h, err);
	if (r < 0)
		return r;
	pid_t pid = 0;
	r = oci_run_detached(h, sb->id, bundle, &pid, err);
	if (r < 0)
		return err_prefix(err, r, "start the infra process");
	unsigned long long start = proc_start_time(pid);
	pthread_mutex_lock(&m->lock);
	sb->infra_pid = pid;
	sb->infra_start = start;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static int infra_stop(struct sandbox_mgr *m, struct sandbox *sb, struct cric_err *err)
{
	/* Already deleted (a sandbox being created may have an infra that runc
	 * started before its pid was recorded: always ask runc then). */
	if (sb->infra_pid == 0 && sb->state != SB_CREATING)
		return 0;
	const struct oci_handler *h = find_handler(m, sb->handler);
	struct oci_handler gone;
	if (!h) {
		/* The handler left the config since: its state root is where
		 * runtimed put it, and any runc can delete from it. */
		const struct oci_handler *def = find_handler(m, NULL);
		memset(&gone, 0, sizeof(gone));
		snprintf(gone.name, sizeof(gone.name), "%s", sb->handler);
		snprintf(gone.path, sizeof(gone.path), "%s", def ? def->path : "/usr/sbin/runc");
		snprintf(gone.root, sizeof(gone.root), "%s/%s", m->runtimes_dir, sb->handler);
		log_warning("runtime handler \"%s\" is no longer configured; deleting the infra "
			    "with %s",
			    sb->handler, gone.path);
		h = &gone;
	}
	/* runc delete --force kills and then looks for the exit every 100 ms:
	 * kill it here and wait on a pidfd instead, so runc finds it stopped. */
	int r = proc_kill_wait(sb->infra_pid, sb->infra_start, 5000);
	if (r < 0)
		log_warning_errno(r, "kill infra process %d", (int)sb->infra_pid);
	r = oci_delete(h, sb->id, err);
	if (r < 0)
		return err_prefix(err, r, "stop the infra process");
	pthread_mutex_lock(&m->lock);
	sb->infra_pid = 0;
	sb->infra_start = 0;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

/* ---- teardown, shared by stop, remove and rollback ---- */

/* Undo what the sandbox holds at run time: infra, network, IPC/UTS pins.
 * Each step is idempotent; the first failure stops and is returned (the
 * record then says what is still held). */
static int release_runtime(struct sandbox_mgr *m, const struct cric_call *call, struct sandbox *sb,
			   struct cric_err *err)
{
	int r;
	if (sb->pid_mode == RUNTIME__V1__NAMESPACE_MODE__POD && (r = infra_stop(m, sb, err)) < 0)
		return r;
	if (sb->net_setup) {
		if ((r = netd_teardown(m, call, sb, err)) < 0)
			return r;
		pthread_mutex_lock(&m->lock);
		sb->net_setup = false;
		pthread_mutex_unlock(&m->lock);
	}
	if ((r = nspin_remove(sb->ipc_pin, err)) < 0 || (r = nspin_remove(sb->uts_pin, err)) < 0)
		return r;
	return 0;
}

static int release_all(struct sandbox_mgr *m, const struct cric_call *call, struct sandbox *sb,
		       struct cric_err *err)
{
	int r = release_runtime(m, call, sb, err);
	if (r < 0)
		return r;
	if ((r = cgroup_remove_created(sb->cgroup_created, err)) < 0)
		return r;
	return remove_dir(sb->dir, err);
}

/* ---- RunPodSandbox ---- */

/* The cgroups this pod may remove when it goes: those it created, and
 * those another pod created that it lives under (two pods under a parent
 * runtimed made: whichever goes last removes it; rmdir only takes empty
 * ones). Ancestors runtimed did not make (the kubelet's) are never
 * removed. With the lock held. */
static int share_cgroups(struct sandbox_mgr *m, struct sandbox *sb, char *const *created)
{
	char **own = calloc(CGROUP_PATH_MAX / 2 + 1, sizeof(char *));
	if (!own)
		return -ENOMEM;
	size_t n = 0;
	char prefix[CGROUP_PATH_MAX];
	for (const char *p = sb->cgroup + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		size_t len = (size_t)(p - sb->cgroup);
		memcpy(prefix, sb->cgroup, len);
		prefix[len] = '\0';
		bool mine = strv_contains(created, prefix);
		for (size_t i = 0; i < m->n && !mine; i++)
			mine =
			    m->items[i] != sb && strv_contains(m->items[i]->cgroup_created, prefix);
		if (mine && !(own[n++] = strdup(prefix))) {
			strv_free(own);
			return -ENOMEM;
		}
		if (*p == '\0')
			break;
	}
	sb->cgroup_created = own;
	return 0;
}

static int create(struct sandbox_mgr *m, const struct cric_call *call, struct sandbox *sb,
		  const struct pod_plan *p, struct cric_err *err)
{
	int r;
	if (mkdir(sb->dir, 0711) < 0)
		return err_set(err, negative_errno(), "create \"%s\": %s", sb->dir,
			       strerror(errno));

	_cleanup_strv_free_ char **created = NULL;
	if ((r = cgroup_create(sb->cgroup, &created, err)) < 0)
		return r;
	pthread_mutex_lock(&m->lock);
	r = share_cgroups(m, sb, created);
	pthread_mutex_unlock(&m->lock);
	if (r < 0) {
		cgroup_remove_created(created, NULL);
		return r;
	}
	if ((r = record_save(m, sb)) < 0)
		return err_set(err, r, "save the pod's record: %s", strerror(-r));
	if (p->has_limits && (r = cgroup_apply(sb->cgroup, &p->limits, err)) < 0)
		return r;

	if (!sb->host_ipc) {
		struct ns_setup s = { p, SYSCTL_NS_IPC };
		if ((r = nspin_create(CLONE_NEWIPC, sb->ipc_pin, apply_sysctls, &s, err)) < 0)
			return err_prefix(err, r, "IPC namespace");
	}
	if (!sb->host_network) {
		if ((r = nspin_create(CLONE_NEWUTS, sb->uts_pin, set_hostname, (void *)p->hostname,
				      err)) < 0)
			return err_prefix(err, r, "UTS namespace");
		pthread_mutex_lock(&m->lock);
		sb->net_setup = true; /* from here on, netd may hold state */
		pthread_mutex_unlock(&m->lock);
		if ((r = record_save(m, sb)) < 0)
			return err_set(err, r, "save the pod's record: %s", strerror(-r));
		if ((r = netd_setup(m, call, sb, p, err)) < 0)
			return r;
		struct ns_setup s = { p, SYSCTL_NS_NET };
		if ((r = nspin_run_in(CLONE_NEWNET, sb->netns, apply_sysctls, &s, err)) < 0)
			return err_prefix(err, r, "network namespace");
	}
	if ((r = write_pod_files(sb, p, err)) < 0)
		return r;
	if (sb->pid_mode == RUNTIME__V1__NAMESPACE_MODE__POD) {
		const struct oci_handler *h = find_handler(m, sb->handler);
		if ((r = infra_start(m, sb, h, err)) < 0)
			return r;
	}
	return 0;
}

int sandbox_run(struct sandbox_mgr *m, const struct cric_call *call,
		const Runtime__V1__RunPodSandboxRequest *req, char id[65], struct cric_err *err)
{
	char newid[65];
	int r = id_random_hex(newid, sizeof(newid), 32);
	if (r < 0)
		return err_set(err, r, "make an id: %s", strerror(-r));
	_cleanup_free_ struct pod_plan *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	if ((r = validate(m, req, newid, p, err)) < 0)
		return r;

	struct sandbox *sb = sandbox_alloc();
	if (!sb)
		return -ENOMEM;
	const Runtime__V1__PodSandboxMetadata *md = req->config->metadata;
	memcpy(sb->id, newid, sizeof(sb->id));
	snprintf(sb->name, sizeof(sb->name), "%s", md->name);
	snprintf(sb->namespace, sizeof(sb->namespace), "%s", md->namespace_);
	snprintf(sb->uid, sizeof(sb->uid), "%s", md->uid);
	sb->attempt = md->attempt;
	sb->state = SB_CREATING;
	sb->created_at = now_unix_ns();
	snprintf(sb->handler, sizeof(sb->handler), "%s", p->handler->name);
	sb->host_network = p->net_mode == RUNTIME__V1__NAMESPACE_MODE__NODE;
	sb->host_ipc = p->ipc_mode == RUNTIME__V1__NAMESPACE_MODE__NODE;
	sb->pid_mode = p->pid_mode;
	snprintf(sb->cgroup, sizeof(sb->cgroup), "%s", p->cgroup);
	snprintf(sb->cgroup_parent, sizeof(sb->cgroup_parent), "%s",
		 req->config->linux ? req->config->linux->cgroup_parent : "");
	snprintf(sb->dir, sizeof(sb->dir), "%s/%s", m->sandboxes_dir, sb->id);
	snprintf(sb->ipc_pin, sizeof(sb->ipc_pin), "%s/ipc", sb->dir);
	snprintf(sb->uts_pin, sizeof(sb->uts_pin), "%s/uts", sb->dir);
	sb->config_len = protobuf_c_message_get_packed_size(&req->config->base);
	if (!(sb->config = malloc(sb->config_len ? sb->config_len : 1))) {
		sandbox_free(sb);
		return -ENOMEM;
	}
	protobuf_c_message_pack(&req->config->base, sb->config);

	/* Reserve the name: the kubelet relies on a second RunPodSandbox for
	 * the same pod attempt failing while the first one exists. */
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->n; i++) {
		struct sandbox *o = m->items[i];
		if (strcmp(o->name, sb->name) == 0 && strcmp(o->namespace, sb->namespace) == 0 &&
		    strcmp(o->uid, sb->uid) == 0 && o->attempt == sb->attempt) {
			char holder[65];
			memcpy(holder, o->id, sizeof(holder));
			pthread_mutex_unlock(&m->lock);
			sandbox_free(sb);
			return err_set(err, -EEXIST,
				       "pod sandbox name \"%s_%s_%s_%u\" is reserved by sandbox %s",
				       md->name, md->namespace_, md->uid, md->attempt, holder);
		}
	}
	pthread_mutex_lock(&sb->op);
	r = table_add(m, sb);
	if (r == 0)
		sb->refs++; /* ours until the end of this call: a rollback or a
			     * concurrent remove drops only the table's */
	pthread_mutex_unlock(&m->lock);
	if (r < 0) {
		pthread_mutex_unlock(&sb->op);
		sandbox_free(sb);
		return r;
	}

	log_set_pod(sb->id);
	log_info("run pod sandbox %s_%s (uid %s, attempt %u, handler %s)", sb->name, sb->namespace,
		 sb->uid, sb->attempt, sb->handler);
	r = record_save(m, sb);
	if (r < 0)
		err_set(err, r, "save the pod's record: %s", strerror(-r));
	else
		r = create(m, call, sb, p, err);

	if (r == 0) {
		pthread_mutex_lock(&m->lock);
		sb->state = SB_READY;
		pthread_mutex_unlock(&m->lock);
		r = record_save(m, sb);
		if (r < 0)
			err_set(err, r, "save the pod's record: %s", strerror(-r));
	}
	if (r < 0) {
		log_warning("run pod sandbox failed, rolling back: %s", err ? err->msg : "");
		struct cric_err rb;
		int k = release_all(m, call, sb, &rb);
		pthread_mutex_lock(&m->lock);
		if (k == 0) {
			table_remove_locked(m, sb);
		} else {
			/* Keep it visible (NOTREADY) so that stop/remove, or the
			 * kubelet's garbage collection, finish the job. */
			sb->state = SB_NOTREADY;
			log_error("rollback incomplete, sandbox kept as NOTREADY: %s", rb.msg);
		}
		pthread_mutex_unlock(&m->lock);
		if (k == 0)
			record_delete(m, newid);
		else
			record_save(m, sb);
		pthread_mutex_unlock(&sb->op);
		put(m, sb);
		log_set_pod(NULL);
		return r;
	}
	memcpy(id, sb->id, 65);
	log_info("pod sandbox ready%s%s", sb->ips[0] ? ", ip " : "", sb->ips[0] ? sb->ips[0] : "");
	pthread_mutex_unlock(&sb->op);
	put(m, sb);
	log_set_pod(NULL);
	return 0;
}

/* ---- Stop / Remove ---- */

int sandbox_stop(struct sandbox_mgr *m, const struct cric_call *call, const char *id,
		 struct cric_err *err)
{
	struct sandbox *sb;
	int r = lookup(m, id, &sb, err);
	if (r == -ENOENT)
		return 0; /* CRI: stopping an unknown sandbox succeeds */
	if (r < 0)
		return r;
	pthread_mutex_lock(&sb->op);
	if (!sb->removed) {
		log_set_pod(sb->id);
		r = release_runtime(m, call, sb, err);
		pthread_mutex_lock(&m->lock);
		if (r == 0)
			sb->state = SB_NOTREADY;
		pthread_mutex_unlock(&m->lock);
		int k = record_save(m, sb);
		if (r == 0 && k < 0)
			r = err_set(err, k, "save the pod's record: %s", strerror(-k));
		if (r == 0)
			log_info("pod sandbox stopped");
		log_set_pod(NULL);
	}
	pthread_mutex_unlock(&sb->op);
	put(m, sb);
	return r;
}

int sandbox_remove(struct sandbox_mgr *m, const struct cric_call *call, const char *id,
		   struct cric_err *err)
{
	struct sandbox *sb;
	int r = lookup(m, id, &sb, err);
	if (r == -ENOENT)
		return 0; /* CRI: removing an unknown sandbox succeeds */
	if (r < 0)
		return r;
	pthread_mutex_lock(&sb->op);
	if (!sb->removed) {
		log_set_pod(sb->id);
		r = release_all(m, call, sb, err);
		if (r == 0)
			r = record_delete(m, sb->id);
		pthread_mutex_lock(&m->lock);
		if (r == 0)
			table_remove_locked(m, sb);
		else
			sb->state = SB_NOTREADY;
		pthread_mutex_unlock(&m->lock);
		if (r < 0)
			record_save(m, sb);
		else
			log_info("pod sandbox removed");
		log_set_pod(NULL);
	}
	pthread_mutex_unlock(&sb->op);
	put(m, sb);
	return r;
}

/* ---- Status / List ---- */

/* The state as of now: a READY sandbox whose infra died or whose network
 * namespace is gone (a reboot) is NOTREADY. With the lock held. */
static enum sb_state live_state(const struct sandbox *sb)
{
	if (sb->state != SB_READY)
		return sb->state;
	if (sb->pid_mode == RUNTIME__V1__NAMESPACE_MODE__POD &&
	    !proc_alive(sb->infra_pid, sb->infra_start))
		return SB_NOTREADY;
	if (!sb->host_network && !nspin_is_pinned(sb->netns, CLONE_NEWNET))
		return SB_NOTREADY;
	return SB_READY;
}

static Runtime__V1__PodSandboxMetadata *metadata_copy(const struct sandbox *sb)
{
	Runtime__V1__PodSandboxMetadata *md =
	    pb_new(&runtime__v1__pod_sandbox_metadata__descriptor);
	if (!md)
		return NULL;
	md->attempt = sb->attempt;
	if (pb_set_str(&md->name, sb->name) < 0 || pb_set_str(&md->uid, sb->uid) < 0 ||
	    pb_set_str(&md->namespace_, sb->namespace) < 0) {
		protobuf_c_message_free_unpacked(&md->base, NULL);
		return NULL;
	}
	return md;
}

static Runtime__V1__PodSandboxConfig *config_of(const struct sandbox *sb)
{
	return runtime__v1__pod_sandbox_config__unpack(NULL, sb->config_len, sb->config);
}

static int info_json(const struct sandbox *sb, const Runtime__V1__PodSandboxConfig *cfg, char **ret)
{
	json_t *cni = NULL;
	if (sb->cni_result && *sb->cni_result)
		cni = json_loads(sb->cni_result, 0, NULL);
	_cleanup_json_ json_t *doc = json_pack(
	    "{s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:o?, s:o?, s:s}", "id", sb->id, "pid",
	    sb->pid_mode == RUNTIME__V1__NAMESPACE_MODE__POD ? (int)sb->infra_pid : 0, "netns",
	    sb->netns, "ipc_namespace", sb->host_ipc ? "" : sb->ipc_pin, "uts_namespace",
	    sb->host_network ? "" : sb->uts_pin, "cgroup", sb->cgroup, "runtime_handler",
	    sb->handler, "sandbox_dir", sb->dir, "cni_result", cni, "config",
	    cfg ? pb_to_json(&cfg->base) : NULL, "state", state_name(sb->state));
	if (!doc)
		return -ENOMEM;
	*ret = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	return *ret ? 0 : -ENOMEM;
}

static int build_status(const struct sandbox *sb, enum sb_state st, bool verbose,
			Runtime__V1__PodSandboxStatusResponse **ret)
{
	_cleanup_pb_ Runtime__V1__PodSandboxConfig *cfg = config_of(sb);
	if (!cfg)
		return -EIO;
	_cleanup_pb_ Runtime__V1__PodSandboxStatusResponse *resp =
	    pb_new(&runtime__v1__pod_sandbox_status_response__descriptor);
	if (!resp || !(resp->status = pb_new(&runtime__v1__pod_sandbox_status__descriptor)))
		return -ENOMEM;
	Runtime__V1__PodSandboxStatus *s = resp->status;
	resp->timestamp = now_unix_ns();
	if (pb_set_str(&s->id, sb->id) < 0 || !(s->metadata = metadata_copy(sb)) ||
	    pb_set_str(&s->runtime_handler, sb->handler) < 0)
		return -ENOMEM;
	s->state = st == SB_READY ? RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY
				  : RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_NOTREADY;
	s->created_at = sb->created_at;
	if (!(s->network = pb_new(&runtime__v1__pod_sandbox_network_status__descriptor)) ||
	    pb_set_str(&s->network->ip, sb->ips[0] ? sb->ips[0] : "") < 0)
		return -ENOMEM;
	size_t nips = 0;
	while (nips < SANDBOX_MAX_IPS && sb->ips[nips])
		nips++;
	if (nips > 1) {
		if (!(s->network->additional_ips = calloc(nips - 1, sizeof(void *))))
			return -ENOMEM;
		for (size_t i = 1; i < nips; i++) {
			Runtime__V1__PodIP *ip = pb_new(&runtime__v1__pod_ip__descriptor);
			if (!ip)
				return -ENOMEM;
			s->network->additional_ips[s->network->n_additional_ips++] = ip;
			if (pb_set_str(&ip->ip, sb->ips[i]) < 0)
				return -ENOMEM;
		}
	}
	if (!(s->linux = pb_new(&runtime__v1__linux_pod_sandbox_status__descriptor)) ||
	    !(s->linux->namespaces = pb_new(&runtime__v1__namespace__descriptor)) ||
	    !(s->linux->namespaces->options = pb_new(&runtime__v1__namespace_option__descriptor)))
		return -ENOMEM;
	Runtime__V1__NamespaceOption *o = s->linux->namespaces->options;
	o->network =
	    sb->host_network ? RUNTIME__V1__NAMESPACE_MODE__NODE : RUNTIME__V1__NAMESPACE_MODE__POD;
	o->ipc =
	    sb->host_ipc ? RUNTIME__V1__NAMESPACE_MODE__NODE : RUNTIME__V1__NAMESPACE_MODE__POD;
	o->pid = sb->pid_mode;
	if (pb_map_copy(&s->base, "labels", &cfg->base, "labels") < 0 ||
	    pb_map_copy(&s->base, "annotations", &cfg->base, "annotations") < 0)
		return -ENOMEM;
	if (verbose) {
		_cleanup_free_ char *info = NULL;
		if (info_json(sb, cfg, &info) < 0 ||
		    pb_map_add(&resp->base, "info", "info", info) < 0)
			return -ENOMEM;
	}
	*ret = TAKE_PTR(resp);
	return 0;
}

int sandbox_status(struct sandbox_mgr *m, const char *id, bool verbose,
		   Runtime__V1__PodSandboxStatusResponse **ret, struct cric_err *err)
{
	struct sandbox *sb;
	int r = lookup(m, id, &sb, err);
	if (r < 0)
		return r;
	/* The op lock: a status never sees a half-done stop. Lifecycle calls
	 * are short; the kubelet's relist waits at most for one of them. */
	pthread_mutex_lock(&sb->op);
	pthread_mutex_lock(&m->lock);
	enum sb_state st = live_state(sb);
	pthread_mutex_unlock(&m->lock);
	r = sb->removed ? err_set(err, -ENOENT, "pod sandbox \"%s\" not found", id)
			: build_status(sb, st, verbose, ret);
	pthread_mutex_unlock(&sb->op);
	put(m, sb);
	if (r == -EIO)
		return err_set(err, r, "pod sandbox %s: its stored config does not decode", id);
	return r;
}

static bool labels_match(const Runtime__V1__PodSandboxConfig *cfg,
			 Runtime__V1__PodSandboxFilter__LabelSelectorEntry *const *sel, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		bool ok = false;
		for (size_t k = 0; k < cfg->n_labels && !ok; k++)
			ok = strcmp(cfg->labels[k]->key, sel[i]->key) == 0 &&
			     strcmp(cfg->labels[k]->value, sel[i]->value) == 0;
		if (!ok)
			return false;
	}
	return true;
}

int sandbox_list(struct sandbox_mgr *m, const Runtime__V1__PodSandboxFilter *f,
		 Runtime__V1__ListPodSandboxResponse **ret, struct cric_err *err)
{
	(void)err;
	_cleanup_pb_ Runtime__V1__ListPodSandboxResponse *resp =
	    pb_new(&runtime__v1__list_pod_sandbox_response__descriptor);
	if (!resp)
		return -ENOMEM;
	const char *idf = f && f->id && *f->id ? f->id : NULL;
	/* An id filter that is a prefix matches only when unique. */
	struct sandbox *only = NULL;
	if (idf) {
		int r = lookup(m, idf, &only, NULL);
		if (r < 0) {
			*ret = TAKE_PTR(resp);
			return 0;
		}
	}
	pthread_mutex_lock(&m->lock);
	if (m->n > 0 && !(resp->items = calloc(m->n, sizeof(void *)))) {
		pthread_mutex_unlock(&m->lock);
		if (only)
			put(m, only);
		return -ENOMEM;
	}
	int r = 0;
	for (size_t i = 0; i < m->n && r == 0; i++) {
		struct sandbox *sb = m->items[i];
		if (sb->state == SB_CREATING || (only && sb != only))
			continue;
		enum sb_state st = live_state(sb);
		Runtime__V1__PodSandboxState cst =
		    st == SB_READY ? RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY
				   : RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_NOTREADY;
		if (f && f->state && f->state->state != cst)
			continue;
		_cleanup_pb_ Runtime__V1__PodSandboxConfig *cfg = config_of(sb);
		if (!cfg || (f && !labels_match(cfg, f->label_selector, f->n_label_selector)))
			continue;
		Runtime__V1__PodSandbox *ps = pb_new(&runtime__v1__pod_sandbox__descriptor);
		if (!ps) {
			r = -ENOMEM;
			break;
		}
		resp->items[resp->n_items++] = ps;
		ps->state = cst;
		ps->created_at = sb->created_at;
		if (pb_set_str(&ps->id, sb->id) < 0 || !(ps->metadata = metadata_copy(sb)) ||
		    pb_set_str(&ps->runtime_handler, sb->handler) < 0 ||
		    pb_map_copy(&ps->base, "labels", &cfg->base, "labels") < 0 ||
		    pb_map_copy(&ps->base, "annotations", &cfg->base, "annotations") < 0)
			r = -ENOMEM;
	}
	pthread_mutex_unlock(&m->lock);
	if (only)
		put(m, only);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(resp);
	return 0;
}

/* ---- pod CIDR ---- */

static int parse_cidr(const char *s)
{
	char buf[64];
	const char *slash = strchr(s, '/');
	if (!slash || (size_t)(slash - s) >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, (size_t)(slash - s));
	buf[slash - s] = '\0';
	unsigned char a[16];
	int fam = inet_pton(AF_INET, buf, a) == 1 ? 4 : inet_pton(AF_INET6, buf, a) == 1 ? 6 : 0;
	char *end;
	long bits = strtol(slash + 1, &end, 10);
	if (!fam || *end || end == slash + 1 || bits < 0 || bits > (fam == 4 ? 32 : 128))
		return -EINVAL;
	return 0;
}

static int set_cidrs_locked(struct sandbox_mgr *m, const char *cidrs, struct cric_err *err)
{
	char *new[MAX_POD_CIDRS + 1] = { 0 };
	_cleanup_free_ char *copy = strdup(cidrs);
	if (!copy)
		return -ENOMEM;
	size_t n = 0;
	char *save = NULL;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		while (*t == ' ')
			t++;
		if (!*t)
			continue;
		if (n == MAX_POD_CIDRS || parse_cidr(t) < 0 || strlen(t) >= 64) {
			strv_clear(new, MAX_POD_CIDRS);
			return err_set(err, -EINVAL,
				       "pod_cidr \"%.200s\": at most %d CIDRs, like "
				       "198.18.0.0/24",
				       cidrs, MAX_POD_CIDRS);
		}
		if (!(new[n++] = strdup(t))) {
			strv_clear(new, MAX_POD_CIDRS);
			return -ENOMEM;
		}
	}
	strv_clear(m->pod_cidrs, MAX_POD_CIDRS);
	memcpy(m->pod_cidrs, new, sizeof(new));
	return 0;
}

int sandbox_set_pod_cidr(struct sandbox_mgr *m, const char *cidrs, struct cric_err *err)
{
	pthread_mutex_lock(&m->lock);
	int r = set_cidrs_locked(m, cidrs, err);
	if (r == 0) {
		_cleanup_json_ json_t *doc = json_pack("{s:s}", "pod_cidr", cidrs);
		r = doc ? json_save_atomic(m->network_file, doc, 0600) : -ENOMEM;
		if (r < 0)
			err_set(err, r, "save \"%s\": %s", m->network_file, strerror(-r));
	}
	pthread_mutex_unlock(&m->lock);
	if (r == 0)
		log_info("pod CIDR set to \"%s\"", cidrs);
	return r;
}

/* ---- start-up ---- */

static int copy_file(const char *src, const char *dst, mode_t mode)
{
	_cleanup_free_ char *data = NULL;
	size_t len;
	int r = read_file(src, 16 * 1024 * 1024, &data, &len);
	if (r < 0)
		return r;
	_cleanup_free_ char *cur = NULL;
	size_t curlen;
	if (read_file(dst, 16 * 1024 * 1024, &cur, &curlen) == 0 && curlen == len &&
	    memcmp(cur, data, len) == 0)
		return 0;
	return write_file_atomic(dst, data, len, mode);
}

/* A root filesystem holding only the infra binary and the mount points
 * runc needs, shared read-only by every infra process. */
static int prepare_pause_rootfs(struct sandbox_mgr *m, const char *binary, struct cric_err *err)
{
	static const char *const dirs[] = { "", "/proc", "/dev", "/sys", "/etc" };
	static const char *const files[] = { "/etc/hostname", "/etc/hosts", "/etc/resolv.conf" };
	char path[PATH_MAX];
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		snprintf(path, sizeof(path), "%s%s", m->pause_rootfs, dirs[i]);
		int r = mkdir_p(path, 0755);
		if (r < 0)
			return err_set(err, r, "create \"%s\": %s", path, strerror(-r));
	}
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		snprintf(path, sizeof(path), "%s%s", m->pause_rootfs, files[i]);
		int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (fd < 0)
			return err_set(err, negative_errno(), "create \"%s\": %s", path,
				       strerror(errno));
		close(fd);
	}
	snprintf(path, sizeof(path), "%s/pause", m->pause_rootfs);
	int r = copy_file(binary, path, 0755);
	if (r < 0)
		return err_set(err, r, "install the infra binary \"%s\": %s", binary, strerror(-r));
	return 0;
}

/* Roll back sandboxes a killed runtimed left half-made. */
static void recover(struct sandbox_mgr *m)
{
	_cleanup_closedir_ DIR *d = opendir(m->records_dir);
	struct dirent *de;
	size_t kept = 0, rolled = 0;
	while (d && (de = readdir(d))) {
		size_t n = strlen(de->d_name);
		if (n != 69 || strcmp(de->d_name + 64, ".json") != 0)
			continue;
		_cleanup_free_ char *path = path_join(m->records_dir, de->d_name);
		struct sandbox *sb = NULL;
		int r = path ? record_load(path, &sb) : -ENOMEM;
		if (r < 0) {
			log_error_errno(r, "sandbox record \"%s\" unreadable, ignored", de->d_name);
			continue;
		}
		if (sb->state == SB_CREATING) {
			struct cric_err e;
			log_set_pod(sb->id);
			r = release_all(m, NULL, sb, &e);
			log_set_pod(NULL);
			if (r == 0) {
				record_delete(m, sb->id);
				log_notice("sandbox %s: rolled back a creation interrupted by a "
					   "restart",
					   sb->id);
				sandbox_free(sb);
				rolled++;
				continue;
			}
			log_error("sandbox %s: rollback of an interrupted creation failed, kept as "
				  "NOTREADY: %s",
				  sb->id, e.msg);
			sb->state = SB_NOTREADY;
			record_save(m, sb);
		}
		if (table_add(m, sb) < 0) {
			sandbox_free(sb);
			continue;
		}
		sb->refs = 1;
		kept++;
	}
	log_info("%zu pod sandboxes recovered, %zu interrupted creations rolled back", kept,
		 rolled);
}

int sandbox_mgr_new(const struct sandbox_mgr_config *cfg, struct sandbox_mgr **ret,
		    struct cric_err *err)
{
	struct sandbox_mgr *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	pthread_mutex_init(&m->lock, NULL);
	m->netd = cfg->netd;
	snprintf(m->cgroup_driver, sizeof(m->cgroup_driver), "%s", cfg->cgroup_driver);
	snprintf(m->default_handler, sizeof(m->default_handler), "%s", cfg->default_handler);
	int r = cgroup_resolve_parent("cgroupfs", cfg->cgroup_root, m->cgroup_root,
				      sizeof(m->cgroup_root), err);
	if (r < 0) {
		sandbox_mgr_free(m);
		return err_prefix(err, r, "runtimed.cgroup_root");
	}
	m->records_dir = path_join(cfg->state_dir, "sandboxes");
	m->sandboxes_dir = path_join(cfg->run_dir, "sandboxes");
	m->pause_rootfs = path_join(cfg->run_dir, "pause-rootfs");
	m->network_file = path_join(cfg->state_dir, "network.json");
	m->runtimes_dir = path_join(cfg->run_dir, "runtimes");
	m->handlers = calloc(cfg->n_handlers ? cfg->n_handlers : 1, sizeof(*m->handlers));
	if (!m->records_dir || !m->sandboxes_dir || !m->pause_rootfs || !m->network_file ||
	    !m->runtimes_dir || !m->handlers) {
		sandbox_mgr_free(m);
		return -ENOMEM;
	}
	memcpy(m->handlers, cfg->handlers, cfg->n_handlers * sizeof(*m->handlers));
	m->n_handlers = cfg->n_handlers;
	for (size_t i = 0; i < m->n_handlers; i++) {
		if ((r = mkdir_p(m->handlers[i].root, 0700)) < 0) {
			sandbox_mgr_free(m);
			return err_set(err, r, "create \"%s\": %s", m->handlers[i].root,
				       strerror(-r));
		}
	}
	if ((r = mkdir_p(m->records_dir, 0700)) < 0 || (r = mkdir_p(m->sandboxes_dir, 0711)) < 0) {
		sandbox_mgr_free(m);
		return err_set(err, r, "create the sandbox directories: %s", strerror(-r));
	}
	/* What a kill -9 mid-write left, before anything reads a record. */
	(void)sweep_atomic_temps(cfg->state_dir, "runtimed state");
	(void)sweep_atomic_temps(m->records_dir, "pod records");
	if (cfg->pause_binary && *cfg->pause_binary) {
		struct cric_err e;
		if (prepare_pause_rootfs(m, cfg->pause_binary, &e) == 0)
			m->have_pause = true;
		else
			log_warning("no infra process for pods sharing a PID namespace: %s", e.msg);
	}
	char perr[256];
	_cleanup_json_ json_t *net = NULL;
	if (json_load_path(m->network_file, 64 * 1024, &net, perr, sizeof(perr)) == 0) {
		const char *c = json_string_value(json_object_get(net, "pod_cidr"));
		struct cric_err e;
		if (c && set_cidrs_locked(m, c, &e) < 0)
			log_warning("stored pod CIDR ignored: %s", e.msg);
	}
	recover(m);
	*ret = m;
	return 0;
}

struct sandbox_mgr *sandbox_mgr_free(struct sandbox_mgr *m)
{
	if (!m)
		return NULL;
	for (size_t i = 0; i < m->n; i++)
		sandbox_free(m->items[i]);
	free(m->items);
	free(m->records_dir);
	free(m->sandboxes_dir);
	free(m->pause_rootfs);
	free(m->network_file);
	free(m->runtimes_dir);
	free(m->handlers);
	strv_clear(m->pod_cidrs, MAX_POD_CIDRS);
	pthread_mutex_destroy(&m->lock);
	free(m);
	return NULL;
}
