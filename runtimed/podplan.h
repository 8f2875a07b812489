/* RunPodSandbox's request checked and turned into a plan, before anything
 * is created: pure (no I/O, no state, no allocation), so it is unit-tested
 * and fuzzed alone. Every refusal is -EINVAL with err naming the field.
 *
 * The plan is where CRI types stop: sandbox.c reads only its plain fields
 * (strings point into the request), never cfg. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cgroup.h"
#include "common/error.h"
#include "common/idmap.h"
#include "lsm.h"
#include "oci.h"
#include "proto/cri/api.pb-c.h"
#include "seccomp-profile.h"
#include "sysctl.h"

#define MAX_SYSCTLS       64
#define MAX_DNS_SERVERS   16
#define MAX_DNS_SEARCHES  32
#define MAX_DNS_OPTIONS   32
#define HOSTNAME_MAX      63
#define MAX_PORT_MAPPINGS 128

/* What the plan depends on besides the request. */
struct pod_plan_env {
	const struct oci_handler *handlers;
	size_t n_handlers;
	const char *default_handler;
	bool have_pause;                             /* an infra binary for pid=POD pods */
	const char *cgroup_driver;                   /* "cgroupfs" or "systemd" */
	const char *cgroup_root;                     /* parent of pods that name none */
	const struct ctr_lsm *lsm;                   /* AppArmor, SELinux (NULL: neither) */
	const struct ctr_seccomp_host *seccomp_host; /* NULL: this machine's build */
};

/* The pod's security context as its infra process gets it, as containerd
 * and CRI-O apply it to their sandbox container. */
struct pod_infra_security {
	json_t *seccomp;         /* linux.seccomp (owned), NULL: none */
	struct ctr_lsm_plan lsm; /* apparmorProfile, selinuxLabel, mountLabel */
};

struct pod_port {
	const char *protocol; /* "tcp", "udp" or "sctp" */
	int32_t container_port, host_port;
	const char *host_ip;
};

struct pod_plan {
	const Runtime__V1__PodSandboxConfig *cfg; /* for the adapter only */
	char id[65];
	const char *name, *namespace_, *uid;
	uint32_t attempt;
	const struct oci_handler *handler;
	char hostname[HOSTNAME_MAX + 1];
	const char *log_directory;        /* "" when none */
	const char *cgroup_parent;        /* as given, "" when none */
	int net_mode, ipc_mode, pid_mode; /* enum pod_ns_mode */
	/* namespace_options.userns_options mode POD: the pod's containers
	 * run in user namespaces of this mapping (container ids from 0);
	 * see pod_plan_userns(). */
	bool userns;
	struct idmap_range uid_map, gid_map;
	/* resolv.conf; has_dns false: the node's */
	bool has_dns;
	char *const *dns_servers, *const *dns_searches, *const *dns_options;
	size_t n_dns_servers, n_dns_searches, n_dns_options;
	struct pod_port ports[MAX_PORT_MAPPINGS];
	size_t n_ports;
	/* kubernetes.io/{ingress,egress}-bandwidth, bits/s; shaped when
	 * either is there */
	uint64_t ingress_rate, egress_rate;
	bool shaped;
	struct {
		char path[SYSCTL_NAME_MAX];
		const char *value;
		enum sysctl_ns ns;
	} sysctls[MAX_SYSCTLS + 2]; /* the pod's, then the defaults it leaves */
	size_t n_sysctls;
	char cgroup[CGROUP_PATH_MAX];
	struct cgroup_limits limits;
	bool has_limits;
	/* The pod's seccomp choice (enum ctr_seccomp_kind) and Localhost
	 * file, and whether it is privileged (then its infra gets no filter
	 * and no AppArmor profile). */
	int seccomp_kind;
	const char *seccomp_ref;
	bool privileged;
};

/* The smallest id range a pod of its own user namespace gets (the
 * kubelet's: 65536 ids, container 0 -> host N). */
#define POD_USERNS_MIN_IDS 65536

/* userns_options of a pod (NULL: none) into p->userns, p->uid_map,
 * p->gid_map, against the pod's other namespace modes (already in p) and
 * its handler. Mode NODE: no user namespace. Mode POD: exactly one uid
 * and one gid mapping, each from container id 0 to a host id above 0, of
 * the same length, at least POD_USERNS_MIN_IDS and not past 2^32-1; the
 * network, IPC and PID namespaces must be the pod's (host ones cannot be
 * entered from a user namespace; a shared PID namespace is the infra's,
 * which a container's user namespace cannot mount /proc of); the handler
 * must have userns_pods. -EINVAL naming the field otherwise. */
int pod_plan_userns(const Runtime__V1__UserNamespace *u, struct pod_plan *p, struct cric_err *err);

/* The handler named name ("" or NULL: the default), or NULL. */
const struct oci_handler *pod_plan_handler(const struct pod_plan_env *env, const char *name);

/* Check req for the pod that will get id, and fill p (which points into
 * req: keep req alive as long as p). */
int pod_plan_make(const struct pod_plan_env *env, const Runtime__V1__RunPodSandboxRequest *req,
		  const char *id, struct pod_plan *p, struct cric_err *err);

/* The infra's seccomp filter and LSM fields for the pod of plan p:
 * profile is the parsed Localhost file when p->seccomp_kind is Localhost
 * (ctr_seccomp_profile_read), NULL otherwise; apparmor_loaded the
 * kernel's list of loaded AppArmor profiles (NULL: none read). The infra
 * has no capabilities: a Localhost profile is built for an empty bounding
 * set, RuntimeDefault too. Pure but for libseccomp's compile; every pod
 * gets it checked, with or without an infra process, so a bad pod
 * profile is refused before anything is made. ret->seccomp is the
 * caller's to free (pod_infra_security_done). */
int pod_plan_infra_security(const struct pod_plan_env *env, const struct pod_plan *p,
			    const json_t *profile, const char *apparmor_loaded,
			    struct pod_infra_security *ret, struct cric_err *err);
void pod_infra_security_done(struct pod_infra_security *s);
