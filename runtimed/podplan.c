#include "podplan.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fsutil.h"
#include "common/ids.h"
#include "common/macro.h"
#include "sandbox.h"
#include "seccomp-default.h"
#include "seccomp-profile.h"

/* sandbox.h's namespace modes are the CRI's values. */
_Static_assert((int)POD_NS_POD == (int)RUNTIME__V1__NAMESPACE_MODE__POD, "POD");
_Static_assert((int)POD_NS_CONTAINER == (int)RUNTIME__V1__NAMESPACE_MODE__CONTAINER, "CONTAINER");
_Static_assert((int)POD_NS_NODE == (int)RUNTIME__V1__NAMESPACE_MODE__NODE, "NODE");

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

const struct oci_handler *pod_plan_handler(const struct pod_plan_env *env, const char *name)
{
	if (!name || !*name)
		name = env->default_handler;
	for (size_t i = 0; i < env->n_handlers; i++)
		if (strcmp(env->handlers[i].name, name) == 0)
			return &env->handlers[i];
	return NULL;
}

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

static int check_idmap(const char *field, Runtime__V1__IDMapping *const *m, size_t n,
		       struct idmap_range *ret, struct cric_err *err)
{
	if (n != 1)
		return err_set(err, -EINVAL,
			       "namespace_options.userns_options.%s: exactly one mapping, not %zu",
			       field, n);
	const Runtime__V1__IDMapping *x = m[0];
	if (!x)
		return err_set(err, -EINVAL, "namespace_options.userns_options.%s[0] is empty",
			       field);
	if (x->container_id != 0)
		return err_set(err, -EINVAL,
			       "namespace_options.userns_options.%s[0].container_id must be 0, "
			       "not %u",
			       field, x->container_id);
	if (x->host_id == 0)
		return err_set(err, -EINVAL,
			       "namespace_options.userns_options.%s[0].host_id must not be 0 "
			       "(the host's root)",
			       field);
	if (x->length < POD_USERNS_MIN_IDS)
		return err_set(err, -EINVAL,
			       "namespace_options.userns_options.%s[0].length %u is below %u",
			       field, x->length, POD_USERNS_MIN_IDS);
	if (x->host_id > UINT32_MAX - x->length)
		return err_set(err, -EINVAL,
			       "namespace_options.userns_options.%s[0]: host_id %u + length %u "
			       "passes 2^32-1",
			       field, x->host_id, x->length);
	ret->host_id = x->host_id;
	ret->length = x->length;
	return 0;
}

int pod_plan_userns(const Runtime__V1__UserNamespace *u, struct pod_plan *p, struct cric_err *err)
{
	p->userns = false;
	if (!u || u->mode == RUNTIME__V1__NAMESPACE_MODE__NODE)
		return 0;
	if (u->mode != RUNTIME__V1__NAMESPACE_MODE__POD)
		return err_set(err, -EINVAL,
			       "namespace_options.userns_options.mode must be POD or NODE");
	if (p->handler->userns_pods_off)
		return err_set(err, -EINVAL,
			       "namespace_options.userns_options: pods of their own user "
			       "namespace are turned off on this node (runtime handler \"%s\" "
			       "could run them); set \"runtimed\": {\"userns_pods\": true} in "
			       "the cric config to turn them on",
			       p->handler->name);
	if (!p->handler->userns_pods)
		return err_set(err, -EINVAL,
			       "namespace_options.userns_options: a pod user namespace is not "
			       "supported by runtime handler \"%s\" (%s)",
			       p->handler->name,
			       p->handler->userns ? "this kernel cannot id-map cric's mounts"
						  : "it has no user namespaces");
	int r = check_idmap("uids", u->uids, u->n_uids, &p->uid_map, err);
	if (r == 0)
		r = check_idmap("gids", u->gids, u->n_gids, &p->gid_map, err);
	if (r < 0)
		return r;
	if (p->uid_map.length != p->gid_map.length)
		return err_set(err, -EINVAL,
			       "namespace_options.userns_options: uids length %u and gids length "
			       "%u differ",
			       p->uid_map.length, p->gid_map.length);
	if (p->net_mode == RUNTIME__V1__NAMESPACE_MODE__NODE ||
	    p->ipc_mode == RUNTIME__V1__NAMESPACE_MODE__NODE ||
	    p->pid_mode == RUNTIME__V1__NAMESPACE_MODE__NODE)
		return err_set(err, -EINVAL,
			       "namespace_options.userns_options POD cannot go with a host "
			       "network, IPC or PID namespace");
	p->userns = true;
	return 0;
}

/* The namespace modes: network and IPC are the pod's or the node's, PID
 * the pod's (with the infra), each container's or the node's. */
static int plan_namespaces(const struct pod_plan_env *env, const Runtime__V1__PodSandboxConfig *cfg,
			   struct pod_plan *p, struct cric_err *err)
{
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
	int r = pod_plan_userns(nso ? nso->userns_options : NULL, p, err);
	if (r < 0)
		return r;
	if (p->pid_mode == RUNTIME__V1__NAMESPACE_MODE__POD && !env->have_pause)
		return err_set(err, -ENOPKG,
			       "pod shares a PID namespace but the infra binary (cric-pause) is "
			       "not installed");

	return 0;
}

/* The hostname (the pod's name when none is given, cut to one when that is
 * no host name) and the log directory. */
static int plan_host(const Runtime__V1__PodSandboxConfig *cfg, const char *id, struct pod_plan *p,
		     struct cric_err *err)
{
	const Runtime__V1__PodSandboxMetadata *md = cfg->metadata;
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

	return 0;
}

/* resolv.conf's servers, searches and options: bounded, no injection. */
static int plan_dns(const Runtime__V1__PodSandboxConfig *cfg, struct cric_err *err)
{
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

	return 0;
}

/* Namespaced sysctls, each in a namespace the pod owns. */
static int plan_sysctls(const Runtime__V1__LinuxPodSandboxConfig *lx, struct pod_plan *p,
			struct cric_err *err)
{
	int r;
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
	if (p->net_mode == RUNTIME__V1__NAMESPACE_MODE__NODE)
		return 0;
	/* Ping without NET_RAW and low ports without NET_BIND_SERVICE, in the
	 * pod's own network namespace, as CRI-O and containerd do; the pod's
	 * own values win. */
	static const struct {
		const char *path, *value;
	} defaults[] = {
		{ "net/ipv4/ping_group_range", "0 2147483647" },
		{ "net/ipv4/ip_unprivileged_port_start", "0" },
	};
	for (size_t d = 0; d < ARRAY_SIZE(defaults); d++) {
		bool given = false;
		for (size_t i = 0; i < p->n_sysctls && !given; i++)
			given = strcmp(p->sysctls[i].path, defaults[d].path) == 0;
		if (given)
			continue;
		snprintf(p->sysctls[p->n_sysctls].path, sizeof(p->sysctls[0].path), "%s",
			 defaults[d].path);
		p->sysctls[p->n_sysctls].value = defaults[d].value;
		p->sysctls[p->n_sysctls].ns = SYSCTL_NS_NET;
		p->n_sysctls++;
	}
	return 0;
}

/* The pod's cgroup (its parent's path for the driver, or under the root)
 * and its limits (overhead plus resources). */
static int plan_cgroup(const struct pod_plan_env *env, const Runtime__V1__LinuxPodSandboxConfig *lx,
		       const char *id, struct pod_plan *p, struct cric_err *err)
{
	int r;
	if (lx && lx->cgroup_parent && *lx->cgroup_parent) {
		r = cgroup_resolve_parent(env->cgroup_driver, lx->cgroup_parent, p->cgroup,
					  sizeof(p->cgroup), err);
		if (r < 0)
			return r;
	} else {
		snprintf(p->cgroup, sizeof(p->cgroup), "%s/pod-%s", env->cgroup_root, id);
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

/* "10M", "1Gi", "500k" (the kubelet's bandwidth annotations) -> bits/s. */
static int parse_quantity(const char *s, uint64_t *ret)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
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

/* What netd gets: the port mappings (netd checks each) and the bandwidth
 * annotations. */
static int plan_network(const Runtime__V1__PodSandboxConfig *cfg, struct pod_plan *p,
			struct cric_err *err)
{
	if (cfg->n_port_mappings > MAX_PORT_MAPPINGS)
		return err_set(err, -EINVAL, "more than %d port_mappings", MAX_PORT_MAPPINGS);
	for (size_t i = 0; i < cfg->n_port_mappings; i++) {
		const Runtime__V1__PortMapping *pm = cfg->port_mappings[i];
		p->ports[i].protocol = pm->protocol == RUNTIME__V1__PROTOCOL__UDP    ? "udp"
				       : pm->protocol == RUNTIME__V1__PROTOCOL__SCTP ? "sctp"
										     : "tcp";
		p->ports[i].container_port = pm->container_port;
		p->ports[i].host_port = pm->host_port;
		p->ports[i].host_ip = pm->host_ip;
	}
	p->n_ports = cfg->n_port_mappings;
	for (size_t i = 0; i < cfg->n_annotations; i++) {
		const char *k = cfg->annotations[i]->key, *v = cfg->annotations[i]->value;
		uint64_t *dst = strcmp(k, "kubernetes.io/ingress-bandwidth") == 0 ? &p->ingress_rate
				: strcmp(k, "kubernetes.io/egress-bandwidth") == 0 ? &p->egress_rate
										   : NULL;
		if (!dst)
			continue;
		if (parse_quantity(v, dst) < 0)
			return err_set(err, -EINVAL, "annotation %s: invalid quantity \"%.40s\"", k,
				       v);
		p->shaped = true;
	}
	return 0;
}

/* The request's plain fields, for sandbox.c. */
static void plan_plain(const Runtime__V1__PodSandboxConfig *cfg, const char *id, struct pod_plan *p)
{
	const Runtime__V1__PodSandboxMetadata *md = cfg->metadata;
	snprintf(p->id, sizeof(p->id), "%s", id);
	p->name = md->name;
	p->namespace_ = md->namespace_;
	p->uid = md->uid;
	p->attempt = md->attempt;
	p->log_directory = cfg->log_directory ? cfg->log_directory : "";
	p->cgroup_parent = cfg->linux && cfg->linux->cgroup_parent ? cfg->linux->cgroup_parent : "";
	const Runtime__V1__DNSConfig *dns = cfg->dns_config;
	p->has_dns = dns != NULL;
	if (dns) {
		p->dns_servers = dns->servers;
		p->n_dns_servers = dns->n_servers;
		p->dns_searches = dns->searches;
		p->n_dns_searches = dns->n_searches;
		p->dns_options = dns->options;
		p->n_dns_options = dns->n_options;
	}
}

/* The pod's seccomp choice (its containers' default and its infra's) and
 * its AppArmor and SELinux fields (lsm.h), checked without I/O. */
static int plan_security(const struct pod_plan_env *env, const Runtime__V1__PodSandboxConfig *cfg,
			 struct pod_plan *p, struct cric_err *err)
{
	const Runtime__V1__LinuxSandboxSecurityContext *sc =
	    cfg->linux ? cfg->linux->security_context : NULL;
	p->seccomp_kind = CTR_SECCOMP_UNCONFINED;
	p->seccomp_ref = NULL;
	p->privileged = sc && sc->privileged;
	if (!sc)
		return 0;
	enum ctr_seccomp_kind kind;
	const char *ref;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	int r = ctr_seccomp_kind(sc->seccomp, sc->seccomp_profile_path, false, &kind, &ref, err);
#pragma GCC diagnostic pop
	if (r < 0)
		return err_prefix(err, r, "linux.security_context");
	if (kind == CTR_SECCOMP_LOCALHOST && (ref[0] != '/' || strlen(ref) >= PATH_MAX))
		return err_set(err, -EINVAL,
			       "linux.security_context.seccomp: localhost_ref must be an absolute "
			       "path");
	p->seccomp_kind = kind;
	p->seccomp_ref = kind == CTR_SECCOMP_LOCALHOST ? ref : NULL;
	const struct ctr_lsm none = { 0 };
	return ctr_lsm_check_pod(sc, env->lsm ? env->lsm : &none, err);
}

int pod_plan_infra_security(const struct pod_plan_env *env, const struct pod_plan *p,
			    const json_t *profile, const char *apparmor_loaded,
			    struct pod_infra_security *ret, struct cric_err *err)
{
	const Runtime__V1__LinuxSandboxSecurityContext *sc =
	    p->cfg && p->cfg->linux ? p->cfg->linux->security_context : NULL;
	struct ctr_lsm lsm = env->lsm ? *env->lsm : (struct ctr_lsm){ 0 };
	lsm.apparmor_profiles = apparmor_loaded;
	struct pod_infra_security s = { 0 };
	int r = ctr_lsm_plan_pod(sc, &lsm, &s.lsm, err);
	if (r < 0)
		return r;
	/* A Localhost file is checked even for a privileged pod: its
	 * containers that choose none get it. */
	if (p->seccomp_kind == CTR_SECCOMP_LOCALHOST) {
		if (!profile)
			return err_set(
			    err, -EINVAL,
			    "linux.security_context.seccomp: profile \"%.200s\" not read",
			    p->seccomp_ref);
		r = ctr_seccomp_profile_build(profile, p->seccomp_ref, 0, env->seccomp_host,
					      &s.seccomp, err);
	} else if (p->seccomp_kind == CTR_SECCOMP_RUNTIME_DEFAULT) {
		r = ctr_seccomp_default(0, env->seccomp_host ? env->seccomp_host->machine : NULL,
					&s.seccomp, err);
	}
	if (r < 0)
		return err_prefix(err, r, "linux.security_context.seccomp");
	if (p->privileged) {
		json_decref(s.seccomp);
		s.seccomp = NULL;
	}
	*ret = s;
	return 0;
}

void pod_infra_security_done(struct pod_infra_security *s)
{
	json_decref(s->seccomp);
	s->seccomp = NULL;
}

int pod_plan_make(const struct pod_plan_env *env, const Runtime__V1__RunPodSandboxRequest *req,
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
	if (!(p->handler = pod_plan_handler(env, req->runtime_handler)))
		return err_set(err, -EINVAL, "unknown runtime handler \"%.100s\"",
			       req->runtime_handler);
	if ((r = plan_namespaces(env, cfg, p, err)) < 0 || (r = plan_host(cfg, id, p, err)) < 0 ||
	    (r = plan_dns(cfg, err)) < 0 || (r = plan_sysctls(cfg->linux, p, err)) < 0 ||
	    (r = plan_network(cfg, p, err)) < 0 || (r = plan_security(env, cfg, p, err)) < 0)
		return r;
	plan_plain(cfg, id, p);
	return plan_cgroup(env, cfg->linux, id, p, err);
}
