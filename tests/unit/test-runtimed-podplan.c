/* runtimed/podplan.h: RunPodSandbox's request checked and planned, with no
 * I/O: defaults, every refusal naming its field, both cgroup drivers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "runtimed/podplan.h"
#include "runtimed/seccomp-default.h"

#define ID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static const struct oci_handler handlers[] = { { .name = "runc" }, { .name = "kata" } };

static struct pod_plan_env env(bool pause, const char *driver)
{
	return (struct pod_plan_env){ .handlers = handlers,
				      .n_handlers = ARRAY_SIZE(handlers),
				      .default_handler = "runc",
				      .have_pause = pause,
				      .cgroup_driver = driver,
				      .cgroup_root = "/cric" };
}

/* A request the tests change one field of. */
struct req {
	Runtime__V1__RunPodSandboxRequest r;
	Runtime__V1__PodSandboxConfig cfg;
	Runtime__V1__PodSandboxMetadata md;
	Runtime__V1__LinuxPodSandboxConfig lx;
	Runtime__V1__LinuxSandboxSecurityContext sc;
	Runtime__V1__NamespaceOption ns;
	Runtime__V1__DNSConfig dns;
	Runtime__V1__LinuxContainerResources res;
	Runtime__V1__LinuxPodSandboxConfig__SysctlsEntry sys[2];
	Runtime__V1__LinuxPodSandboxConfig__SysctlsEntry *sysp[2];
};

static void req_init(struct req *q)
{
	memset(q, 0, sizeof(*q));
	runtime__v1__run_pod_sandbox_request__init(&q->r);
	runtime__v1__pod_sandbox_config__init(&q->cfg);
	runtime__v1__pod_sandbox_metadata__init(&q->md);
	runtime__v1__linux_pod_sandbox_config__init(&q->lx);
	runtime__v1__linux_sandbox_security_context__init(&q->sc);
	runtime__v1__namespace_option__init(&q->ns);
	runtime__v1__dnsconfig__init(&q->dns);
	runtime__v1__linux_container_resources__init(&q->res);
	q->md.name = "web";
	q->md.namespace_ = "default";
	q->md.uid = "8a5d-uid";
	q->cfg.metadata = &q->md;
	q->cfg.linux = &q->lx;
	q->lx.security_context = &q->sc;
	q->sc.namespace_options = &q->ns;
	q->ns.pid = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
	q->r.config = &q->cfg;
}

static int plan(struct req *q, const struct pod_plan_env *e, struct pod_plan *p, char *msg)
{
	struct cric_err err = { { 0 } };
	memset(p, 0, sizeof(*p));
	int r = pod_plan_make(e, &q->r, ID, p, &err);
	if (msg)
		strcpy(msg, err.msg);
	return r;
}

static void test_defaults(void **state)
{
	(void)state;
	struct req q;
	req_init(&q);
	struct pod_plan p;
	struct pod_plan_env e = env(false, "cgroupfs");
	assert_int_equal(plan(&q, &e, &p, NULL), 0);
	assert_string_equal(p.handler->name, "runc");
	assert_string_equal(p.hostname, "web"); /* the pod's name */
	assert_string_equal(p.cgroup, "/cric/pod-" ID);
	assert_int_equal(p.net_mode, RUNTIME__V1__NAMESPACE_MODE__POD);
	assert_false(p.has_limits);
	/* A name that is no host name: cut to pod-<id prefix>. */
	q.md.name = "Web_Server.1";
	assert_int_equal(plan(&q, &e, &p, NULL), 0);
	assert_string_equal(p.hostname, "pod-0123456789ab");
	/* Handler by name; the systemd driver maps slices. */
	q.r.runtime_handler = "kata";
	q.lx.cgroup_parent = "kubepods-burstable-pod1.slice";
	e = env(false, "systemd");
	assert_int_equal(plan(&q, &e, &p, NULL), 0);
	assert_string_equal(p.handler->name, "kata");
	assert_string_equal(p.cgroup, "/kubepods.slice/kubepods-burstable.slice/"
				      "kubepods-burstable-pod1.slice");
}

static void test_limits_and_sysctls(void **state)
{
	(void)state;
	struct req q;
	req_init(&q);
	q.res.cpu_shares = 512;
	q.res.memory_limit_in_bytes = 64 << 20;
	q.res.cpuset_cpus = "0-1";
	q.lx.resources = &q.res;
	for (int i = 0; i < 2; i++) {
		runtime__v1__linux_pod_sandbox_config__sysctls_entry__init(&q.sys[i]);
		q.sysp[i] = &q.sys[i];
	}
	q.sys[0].key = "net.ipv4.ip_unprivileged_port_start";
	q.sys[0].value = "0";
	q.sys[1].key = "kernel.shm_rmid_forced";
	q.sys[1].value = "1";
	q.lx.sysctls = q.sysp;
	q.lx.n_sysctls = 2;
	struct pod_plan p;
	struct pod_plan_env e = env(true, "cgroupfs");
	assert_int_equal(plan(&q, &e, &p, NULL), 0);
	assert_true(p.has_limits);
	assert_int_equal(p.limits.cpu_shares, 512);
	assert_int_equal(p.limits.memory_limit, 64 << 20);
	assert_string_equal(p.limits.cpuset_cpus, "0-1");
	/* The pod's two, then the ping default it did not set (its own
	 * ip_unprivileged_port_start wins). */
	assert_int_equal(p.n_sysctls, 3);
	assert_string_equal(p.sysctls[0].path, "net/ipv4/ip_unprivileged_port_start");
	assert_int_equal(p.sysctls[0].ns, SYSCTL_NS_NET);
	assert_string_equal(p.sysctls[0].value, "0");
	assert_string_equal(p.sysctls[1].value, "1");
	assert_string_equal(p.sysctls[2].path, "net/ipv4/ping_group_range");
	assert_string_equal(p.sysctls[2].value, "0 2147483647");
	assert_int_equal(p.sysctls[2].ns, SYSCTL_NS_NET);

	/* None given: both defaults; a host-network pod gets none. */
	q.lx.n_sysctls = 0;
	assert_int_equal(plan(&q, &e, &p, NULL), 0);
	assert_int_equal(p.n_sysctls, 2);
	assert_string_equal(p.sysctls[0].path, "net/ipv4/ping_group_range");
	assert_string_equal(p.sysctls[1].path, "net/ipv4/ip_unprivileged_port_start");
	assert_string_equal(p.sysctls[1].value, "0");
	q.ns.network = RUNTIME__V1__NAMESPACE_MODE__NODE;
	assert_int_equal(plan(&q, &e, &p, NULL), 0);
	assert_int_equal(p.n_sysctls, 0);
	q.ns.network = RUNTIME__V1__NAMESPACE_MODE__POD;
	q.lx.n_sysctls = 2;

	/* A net sysctl on a host-network pod is refused, naming it. */
	q.ns.network = RUNTIME__V1__NAMESPACE_MODE__NODE;
	char msg[512];
	assert_int_equal(plan(&q, &e, &p, msg), -EINVAL);
	assert_non_null(strstr(msg, "net.ipv4.ip_unprivileged_port_start"));
}

/* Make request q wrong in the way refusal case i says. */
static void spoil(struct req *q, size_t i)
{
	switch (i) {
	case 0:
		q->r.config = NULL;
		break;
	case 1:
		q->cfg.metadata = NULL;
		break;
	case 2:
		q->md.name = "../x";
		break;
	case 3:
		q->md.namespace_ = "";
		break;
	case 4:
		q->md.uid = "a;b";
		break;
	case 5:
		q->r.runtime_handler = "nope";
		break;
	case 6:
		q->ns.pid = RUNTIME__V1__NAMESPACE_MODE__TARGET;
		break;
	case 7:
		q->ns.network = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
		break;
	case 8:
		q->ns.pid = RUNTIME__V1__NAMESPACE_MODE__POD;
		break;
	case 9:
		q->cfg.hostname = "a..b";
		break;
	case 10:
		q->cfg.log_directory = "/var/log/pods/x/..";
		break;
	case 11:
		q->cfg.log_directory = "pods/x";
		break;
	case 12:
		q->lx.cgroup_parent = "/kubepods/../etc";
		break;
	default:
		fail_msg("no refusal case %zu", i);
	}
}

static void test_refusals(void **state)
{
	(void)state;
	struct pod_plan p;
	char msg[512];
	struct pod_plan_env e = env(false, "cgroupfs");
	const struct {
		const char *what;
		int code;
		const char *says;
	} cases[] = {
		{ "no config", -EINVAL, "config is required" },
		{ "no metadata", -EINVAL, "config.metadata" },
		{ "bad name", -EINVAL, "config.metadata.name" },
		{ "empty namespace", -EINVAL, "config.metadata.namespace" },
		{ "bad uid", -EINVAL, "config.metadata.uid" },
		{ "unknown handler", -EINVAL, "\"nope\"" },
		{ "pid TARGET", -EINVAL, "namespace_options.pid" },
		{ "net CONTAINER", -EINVAL, "namespace_options.network" },
		{ "pid POD without the infra", -ENOPKG, "cric-pause" },
		{ "bad hostname", -EINVAL, "hostname" },
		{ "log dir with ..", -EINVAL, "log_directory" },
		{ "relative log dir", -EINVAL, "log_directory" },
		{ "cgroup parent with ..", -EINVAL, "cgroup" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct req q;
		req_init(&q);
		spoil(&q, i);
		int r = plan(&q, &e, &p, msg);
		if (r != cases[i].code || !strstr(msg, cases[i].says))
			fail_msg("%s: %d \"%s\", want %d naming \"%s\"", cases[i].what, r, msg,
				 cases[i].code, cases[i].says);
	}

	/* DNS: bad server, injected search, too many options. */
	struct req q;
	req_init(&q);
	char *servers[] = { "198.18.0.10", "not-an-ip" };
	q.dns.servers = servers;
	q.dns.n_servers = 2;
	q.cfg.dns_config = &q.dns;
	assert_int_equal(plan(&q, &e, &p, msg), -EINVAL);
	assert_non_null(strstr(msg, "not-an-ip"));
	q.dns.n_servers = 1;
	char *searches[] = { "svc.cluster.local\nnameserver 1.2.3.4" };
	q.dns.searches = searches;
	q.dns.n_searches = 1;
	assert_int_equal(plan(&q, &e, &p, msg), -EINVAL);
	assert_non_null(strstr(msg, "dns_config.searches"));
	q.dns.n_searches = 0;
	char *opts[MAX_DNS_OPTIONS + 1];
	for (size_t i = 0; i < ARRAY_SIZE(opts); i++)
		opts[i] = "ndots:5";
	q.dns.options = opts;
	q.dns.n_options = ARRAY_SIZE(opts);
	assert_int_equal(plan(&q, &e, &p, msg), -EINVAL);
	q.dns.n_options = MAX_DNS_OPTIONS;
	assert_int_equal(plan(&q, &e, &p, msg), 0);

	/* Resources: a bad cpuset, a negative limit. */
	req_init(&q);
	q.lx.resources = &q.res;
	q.res.cpuset_cpus = "0-1;rm";
	assert_int_equal(plan(&q, &e, &p, msg), -EINVAL);
	assert_non_null(strstr(msg, "cpuset"));
	q.res.cpuset_cpus = "";
	q.res.memory_limit_in_bytes = -1;
	assert_int_equal(plan(&q, &e, &p, msg), 0); /* not set: <= 0 is "no limit" */
	q.res.cpu_shares = -5;
	assert_int_equal(plan(&q, &e, &p, msg), -EINVAL);
	assert_non_null(strstr(msg, "negative"));
}

/* The pod's security fields: user namespaces refused by a handler that
 * cannot (see test_userns for one that can), the seccomp choice checked, AppArmor Localhost
 * and SELinux labels refused where the host has no such module. */
static void test_security(void **state)
{
	(void)state;
	struct pod_plan p;
	char msg[512];
	struct pod_plan_env e = env(false, "cgroupfs");
	struct req q;
	req_init(&q);
	Runtime__V1__UserNamespace u;
	runtime__v1__user_namespace__init(&u);
	q.ns.userns_options = &u;
	u.mode = RUNTIME__V1__NAMESPACE_MODE__NODE;
	assert_int_equal(plan(&q, &e, &p, msg), 0);
	u.mode = RUNTIME__V1__NAMESPACE_MODE__POD;
	assert_int_equal(plan(&q, &e, &p, msg), -EINVAL);
	assert_non_null(strstr(msg, "namespace_options.userns_options"));
	if (!strstr(msg, "handler \"runc\" (it has no user namespaces)"))
		fail_msg("%s", msg);
	u.mode = RUNTIME__V1__NAMESPACE_MODE__TARGET;
	assert_int_equal(plan(&q, &e, &p, msg), -EINVAL);
	assert_non_null(strstr(msg, "userns_options.mode"));
	q.ns.userns_options = NULL;

	Runtime__V1__SecurityProfile sp;
	runtime__v1__security_profile__init(&sp);
	q.sc.seccomp = &sp;
	sp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost;
	sp.localhost_ref = "seccomp/x.json";
	assert_int_equal(plan(&q, &e, &p, msg), -EINVAL);
	assert_non_null(strstr(msg, "localhost_ref"));
	sp.localhost_ref = "/var/lib/kubelet/seccomp/x.json";
	assert_int_equal(plan(&q, &e, &p, msg), 0);
	q.sc.seccomp = NULL;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	q.sc.seccomp_profile_path = "docker/defaults";
	assert_int_equal(plan(&q, &e, &p, msg), -EINVAL);
	assert_non_null(strstr(msg, "seccomp_profile_path"));
	q.sc.seccomp_profile_path = NULL;
#pragma GCC diagnostic pop

	q.sc.apparmor = &sp;
	sp.localhost_ref = "my-profile";
	assert_int_equal(plan(&q, &e, &p, msg), -EINVAL); /* env has no LSM */
	assert_non_null(strstr(msg, "linux.security_context.apparmor"));
	sp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__RuntimeDefault;
	assert_int_equal(plan(&q, &e, &p, msg), 0);
	Runtime__V1__SELinuxOption se;
	runtime__v1__selinux_option__init(&se);
	se.level = "s0:c1,c2";
	q.sc.selinux_options = &se;
	assert_int_equal(plan(&q, &e, &p, msg), -EINVAL);
	assert_non_null(strstr(msg, "selinux_options"));
	const struct ctr_lsm selinux = { .selinux = true };
	e.lsm = &selinux;
	assert_int_equal(plan(&q, &e, &p, msg), 0);
}

/* The infra's seccomp filter and LSM fields: the pod's choice, none when
 * privileged, a Localhost profile built for an empty bounding set. */
static void test_infra_security(void **state)
{
	(void)state;
	struct pod_plan p;
	char msg[512];
	struct cric_err err = { { 0 } };
	const struct ctr_seccomp_host host = { .machine = "x86_64", 6, 1 };
	struct pod_plan_env e = env(true, "cgroupfs");
	e.seccomp_host = &host;
	struct req q;
	req_init(&q);
	struct pod_infra_security s;

	/* No seccomp message: the deprecated "" is Unconfined, as for
	 * containers; no LSM on the host: nothing at all. */
	assert_int_equal(plan(&q, &e, &p, msg), 0);
	assert_int_equal(pod_plan_infra_security(&e, &p, NULL, NULL, &s, &err), 0);
	assert_null(s.seccomp);
	assert_string_equal(s.lsm.apparmor, "");

	Runtime__V1__SecurityProfile sp;
	runtime__v1__security_profile__init(&sp);
	q.sc.seccomp = &sp; /* RuntimeDefault */
	assert_int_equal(plan(&q, &e, &p, msg), 0);
	assert_int_equal(pod_plan_infra_security(&e, &p, NULL, NULL, &s, &err), 0);
	assert_non_null(s.seccomp);
	assert_string_equal(json_string_value(json_object_get(s.seccomp, "defaultAction")),
			    "SCMP_ACT_ERRNO");
	pod_infra_security_done(&s);
	assert_null(s.seccomp);

	sp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost;
	sp.localhost_ref = "/var/lib/kubelet/seccomp/block.json";
	assert_int_equal(plan(&q, &e, &p, msg), 0);
	assert_int_equal(p.seccomp_kind, CTR_SECCOMP_LOCALHOST);
	/* Not read: refused, never an infra without its filter. */
	assert_int_equal(pod_plan_infra_security(&e, &p, NULL, NULL, &s, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "linux.security_context.seccomp"));
	json_t *doc = json_loads("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": ["
				 "{\"names\": [\"sethostname\"], \"action\": \"SCMP_ACT_ERRNO\"},"
				 "{\"names\": [\"reboot\"], \"action\": \"SCMP_ACT_ERRNO\","
				 " \"includes\": {\"caps\": [\"CAP_SYS_BOOT\"]}}]}",
				 0, NULL);
	assert_non_null(doc);
	assert_int_equal(pod_plan_infra_security(&e, &p, doc, NULL, &s, &err), 0);
	json_t *rules = json_object_get(s.seccomp, "syscalls");
	assert_int_equal(json_array_size(rules), 1); /* no CAP_SYS_BOOT in the infra */
	assert_string_equal(json_string_value(json_array_get(
				json_object_get(json_array_get(rules, 0), "names"), 0)),
			    "sethostname");
	pod_infra_security_done(&s);
	/* A bad profile is refused naming the field and the file. */
	json_t *bad = json_loads("{\"defaultAction\": \"SCMP_ACT_NOPE\"}", 0, NULL);
	assert_int_equal(pod_plan_infra_security(&e, &p, bad, NULL, &s, &err), -EINVAL);
	if (!strstr(err.msg, "linux.security_context.seccomp") ||
	    !strstr(err.msg, "/var/lib/kubelet/seccomp/block.json"))
		fail_msg("%s", err.msg);
	json_decref(bad);
	/* Privileged: checked, but the infra gets no filter. */
	q.sc.privileged = true;
	assert_int_equal(plan(&q, &e, &p, msg), 0);
	assert_int_equal(pod_plan_infra_security(&e, &p, doc, NULL, &s, &err), 0);
	assert_null(s.seccomp);
	q.sc.privileged = false;
	json_decref(doc);

	/* AppArmor: RuntimeDefault (or nothing said) is cric-default, which
	 * must be loaded; Localhost a loaded profile; SELinux labels. */
	q.sc.seccomp = NULL;
	const struct ctr_lsm aa = { .apparmor = true };
	e.lsm = &aa;
	assert_int_equal(plan(&q, &e, &p, msg), 0);
	assert_int_equal(pod_plan_infra_security(&e, &p, NULL, "other (enforce)\n", &s, &err),
			 -ENOPKG);
	assert_non_null(strstr(err.msg, "\"cric-default\" is not loaded"));
	assert_int_equal(
	    pod_plan_infra_security(&e, &p, NULL, "cric-default (enforce)\n", &s, &err), 0);
	assert_string_equal(s.lsm.apparmor, "cric-default");
	q.sc.privileged = true;
	assert_int_equal(plan(&q, &e, &p, msg), 0);
	assert_int_equal(pod_plan_infra_security(&e, &p, NULL, NULL, &s, &err), 0);
	assert_string_equal(s.lsm.apparmor, "");
	q.sc.privileged = false;
	q.sc.apparmor = &sp;
	sp.localhost_ref = "k8s-pause";
	assert_int_equal(plan(&q, &e, &p, msg), 0);
	assert_int_equal(pod_plan_infra_security(&e, &p, NULL, "x (enforce)\n", &s, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "linux.security_context.apparmor"));
	assert_int_equal(pod_plan_infra_security(&e, &p, NULL, "k8s-pause (enforce)\n", &s, &err),
			 0);
	assert_string_equal(s.lsm.apparmor, "k8s-pause");
	q.sc.apparmor = NULL;
	const struct ctr_lsm se_host = { .selinux = true };
	e.lsm = &se_host;
	Runtime__V1__SELinuxOption se;
	runtime__v1__selinux_option__init(&se);
	se.level = "s0:c1,c2";
	q.sc.selinux_options = &se;
	assert_int_equal(plan(&q, &e, &p, msg), 0);
	assert_int_equal(pod_plan_infra_security(&e, &p, NULL, NULL, &s, &err), 0);
	assert_string_equal(s.lsm.process_label, "system_u:system_r:container_t:s0:c1,c2");
	assert_string_equal(s.lsm.mount_label, "system_u:object_r:container_file_t:s0:c1,c2");
}

/* What sandbox.c and netd get from the plan: plain fields, no CRI type. */
static void test_plain_fields(void **state)
{
	(void)state;
	struct req q;
	req_init(&q);
	struct pod_plan p;
	char msg[512];
	struct pod_plan_env e = env(false, "cgroupfs");
	q.md.attempt = 2;
	q.cfg.log_directory = "/var/log/pods/default_web_8a5d-uid";
	q.lx.cgroup_parent = "/kubepods";
	char *servers[] = { "198.18.0.10" };
	q.dns.servers = servers;
	q.dns.n_servers = 1;
	q.cfg.dns_config = &q.dns;
	Runtime__V1__PortMapping pm[2], *pmp[2] = { &pm[0], &pm[1] };
	for (size_t i = 0; i < 2; i++)
		runtime__v1__port_mapping__init(&pm[i]);
	pm[0].container_port = 80;
	pm[0].host_port = 8080;
	pm[1].protocol = RUNTIME__V1__PROTOCOL__UDP;
	pm[1].container_port = 53;
	pm[1].host_ip = "198.18.0.1";
	q.cfg.port_mappings = pmp;
	q.cfg.n_port_mappings = 2;
	Runtime__V1__PodSandboxConfig__AnnotationsEntry an[2], *anp[2] = { &an[0], &an[1] };
	for (size_t i = 0; i < 2; i++)
		runtime__v1__pod_sandbox_config__annotations_entry__init(&an[i]);
	an[0].key = "kubernetes.io/ingress-bandwidth";
	an[0].value = "10M";
	an[1].key = "kubernetes.io/egress-bandwidth";
	an[1].value = "1Ki";
	q.cfg.annotations = anp;
	q.cfg.n_annotations = 2;
	assert_int_equal(plan(&q, &e, &p, msg), 0);
	assert_string_equal(p.id, ID);
	assert_string_equal(p.name, "web");
	assert_string_equal(p.namespace_, "default");
	assert_string_equal(p.uid, "8a5d-uid");
	assert_int_equal(p.attempt, 2);
	assert_string_equal(p.log_directory, "/var/log/pods/default_web_8a5d-uid");
	assert_string_equal(p.cgroup_parent, "/kubepods");
	assert_true(p.has_dns);
	assert_int_equal(p.n_dns_servers, 1);
	assert_string_equal(p.dns_servers[0], "198.18.0.10");
	assert_int_equal(p.n_ports, 2);
	assert_string_equal(p.ports[0].protocol, "tcp");
	assert_int_equal(p.ports[0].host_port, 8080);
	assert_string_equal(p.ports[1].protocol, "udp");
	assert_string_equal(p.ports[1].host_ip, "198.18.0.1");
	assert_true(p.shaped);
	assert_true(p.ingress_rate == 10000000ULL);
	assert_true(p.egress_rate == 1024ULL);

	/* A quantity that is not one is refused before anything is made. */
	an[1].value = "-1";
	assert_int_equal(plan(&q, &e, &p, msg), -EINVAL);
	assert_non_null(strstr(msg, "kubernetes.io/egress-bandwidth"));
	an[1].value = "1Q";
	assert_int_equal(plan(&q, &e, &p, msg), -EINVAL);
	/* No DNS config, no ports, no annotations: the node's resolver. */
	req_init(&q);
	assert_int_equal(plan(&q, &e, &p, msg), 0);
	assert_false(p.has_dns);
	assert_false(p.shaped);
	assert_int_equal(p.n_ports, 0);
	assert_string_equal(p.log_directory, "");
	assert_string_equal(p.cgroup_parent, "");
}

static Runtime__V1__IDMapping *idm(Runtime__V1__IDMapping *m, uint32_t c, uint32_t h, uint32_t n)
{
	runtime__v1__idmapping__init(m);
	m->container_id = c;
	m->host_id = h;
	m->length = n;
	return m;
}

/* pod_plan_userns: the kubelet's one range per kind, checked field by
 * field; host namespaces and a shared PID namespace refused with it. */
static void test_userns(void **state)
{
	(void)state;
	struct oci_handler h = { .name = "runc", .userns = true, .userns_pods = true };
	struct pod_plan p = { .handler = &h,
			      .net_mode = RUNTIME__V1__NAMESPACE_MODE__POD,
			      .ipc_mode = RUNTIME__V1__NAMESPACE_MODE__POD,
			      .pid_mode = RUNTIME__V1__NAMESPACE_MODE__CONTAINER };
	struct cric_err err;
	Runtime__V1__UserNamespace u;
	runtime__v1__user_namespace__init(&u);
	Runtime__V1__IDMapping um, gm, extra;
	Runtime__V1__IDMapping *uids[2] = { idm(&um, 0, 65536, 65536), &extra };
	Runtime__V1__IDMapping *gids[1] = { idm(&gm, 0, 131072, 65536) };
	u.uids = uids;
	u.n_uids = 1;
	u.gids = gids;
	u.n_gids = 1;

	assert_int_equal(pod_plan_userns(NULL, &p, &err), 0);
	assert_false(p.userns);
	u.mode = RUNTIME__V1__NAMESPACE_MODE__NODE;
	assert_int_equal(pod_plan_userns(&u, &p, &err), 0);
	assert_false(p.userns);
	u.mode = RUNTIME__V1__NAMESPACE_MODE__POD;
	assert_int_equal(pod_plan_userns(&u, &p, &err), 0);
	assert_true(p.userns);
	assert_int_equal(p.uid_map.host_id, 65536);
	assert_int_equal(p.uid_map.length, 65536);
	assert_int_equal(p.gid_map.host_id, 131072);

	const struct {
		uint32_t c, h, n;
		const char *want;
	} bad[] = {
		{ 1, 65536, 65536, "uids[0].container_id must be 0" },
		{ 0, 0, 65536, "uids[0].host_id must not be 0" },
		{ 0, 65536, 1000, "uids[0].length 1000 is below 65536" },
		{ 0, UINT32_MAX - 1000, 65536, "passes 2^32-1" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		idm(&um, bad[i].c, bad[i].h, bad[i].n);
		assert_int_equal(pod_plan_userns(&u, &p, &err), -EINVAL);
		assert_false(p.userns);
		if (!strstr(err.msg, bad[i].want))
			fail_msg("case %zu: %s", i, err.msg);
	}
	idm(&um, 0, 65536, 65536);
	/* Two ranges (overlapping or not) are not the kubelet's. */
	idm(&extra, 100, 70000, 65536);
	u.n_uids = 2;
	assert_int_equal(pod_plan_userns(&u, &p, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "userns_options.uids: exactly one mapping, not 2"));
	u.n_uids = 1;
	u.n_gids = 0;
	assert_int_equal(pod_plan_userns(&u, &p, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "userns_options.gids: exactly one mapping, not 0"));
	u.n_gids = 1;
	idm(&gm, 0, 131072, 131072);
	assert_int_equal(pod_plan_userns(&u, &p, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "differ"));
	idm(&gm, 0, 131072, 65536);
	u.mode = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
	assert_int_equal(pod_plan_userns(&u, &p, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "userns_options.mode"));
	u.mode = RUNTIME__V1__NAMESPACE_MODE__POD;

	p.net_mode = RUNTIME__V1__NAMESPACE_MODE__NODE;
	assert_int_equal(pod_plan_userns(&u, &p, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "host network, IPC or PID"));
	p.net_mode = RUNTIME__V1__NAMESPACE_MODE__POD;
	/* A shared PID namespace: the infra's, made in the pod's user
	 * namespace. */
	p.pid_mode = RUNTIME__V1__NAMESPACE_MODE__POD;
	assert_int_equal(pod_plan_userns(&u, &p, &err), 0);
	assert_true(p.userns);
	p.pid_mode = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;

	/* One that could, with runtimed.userns_pods off: refused, saying
	 * so and how to turn it on. */
	h.userns_pods = false;
	h.userns_pods_off = true;
	assert_int_equal(pod_plan_userns(&u, &p, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "turned off"));
	assert_non_null(strstr(err.msg, "\"userns_pods\": true"));
	assert_false(p.userns);
	h.userns_pods_off = false;

	/* A handler (or kernel) that cannot: refused, saying which. */
	assert_int_equal(pod_plan_userns(&u, &p, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "cannot id-map"));
	h.userns = false;
	assert_int_equal(pod_plan_userns(&u, &p, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "no user namespaces"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults), cmocka_unit_test(test_limits_and_sysctls),
		cmocka_unit_test(test_refusals), cmocka_unit_test(test_plain_fields),
		cmocka_unit_test(test_security), cmocka_unit_test(test_infra_security),
		cmocka_unit_test(test_userns),
	};
	return cmocka_run_group_tests_name("runtimed-podplan", tests, NULL, NULL);
}
