/* Pod sandboxes: the pod half of runtimed, in its own terms (no CRI types:
 * runtimed/cri-sandbox.c turns CRI requests into these calls and snapshots
 * into CRI replies).
 *
 * A sandbox is a set of pinned namespaces (network from netd with its CNI
 * setup; IPC and UTS pinned here), a pod cgroup, the pod's hostname, hosts
 * and resolv.conf files, and, when its containers share one PID namespace,
 * an infra process (cric-pause run by the OCI runtime). Its record
 * (<state_dir>/runtimed/sandboxes/<id>.json) is written before anything is
 * created and after every change, so a runtimed killed at any point finds on
 * restart either a sandbox to keep or a half-made one to roll back.
 *
 * Lifecycle calls on one sandbox are serialised; calls on different
 * sandboxes run in parallel. Every function may be called from any worker
 * and may block (runc, netd).
 */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup.h"
#include "common/error.h"
#include "common/ids.h"
#include "common/ipc.h"
#include "oci.h"

#define SANDBOX_MAX_IPS 8

/* How a pod holds a namespace (the CRI's NamespaceMode values). */
enum pod_ns_mode { POD_NS_POD = 0, POD_NS_CONTAINER = 1, POD_NS_NODE = 2 };

struct sandbox_mgr;
struct pod_plan; /* podplan.h */

/* What the pod's containers must be done with before the pod's own
 * resources go: StopPodSandbox calls on_pod_stop (stop every container of
 * pod_id), RemovePodSandbox on_pod_remove (remove them), each with the
 * pod's lifecycle lock held (no other call on the pod runs meanwhile; the
 * hook must not call sandbox_stop/remove itself) and the caller's call (its
 * deadline). A failure fails the pod's call with the hook's err, nothing of
 * the pod touched: the kubelet retries. NULL: nothing to do. */
typedef int (*sandbox_hook_fn)(void *userdata, const char *pod_id, const struct cric_call *call,
			       struct cric_err *err);

#define SANDBOX_SHM_SIZE (UINT64_C(64) << 20) /* the peers' default */

struct sandbox_mgr_config {
	const char *state_dir; /* <state_dir>/runtimed */
	const char *run_dir;   /* <run_dir>/runtimed */
	const char *cgroup_driver;
	const char *cgroup_root;  /* parent of pods without cgroup_parent */
	const char *pause_binary; /* "" when there is none */
	uint64_t shm_size;        /* each pod's /dev/shm, bytes (0: 64 MiB) */
	const struct oci_handler *handlers;
	size_t n_handlers;
	const char *default_handler;
	struct cric_client *netd;
	/* netd's volatile directory (<run_dir>/netd): the network namespaces
	 * it pins lie under <netd_run_dir>/netns, and runtimed takes no other
	 * netns path from netd. */
	const char *netd_run_dir;
	sandbox_hook_fn on_pod_stop, on_pod_remove;
	void *hooks_userdata;
	/* Why cric-default is not loaded (apparmor.h); NULL or "": no reason. */
	const char *apparmor_default_error;
};

int sandbox_mgr_new(const struct sandbox_mgr_config *cfg, struct sandbox_mgr **ret,
		    struct cric_err *err);
struct sandbox_mgr *sandbox_mgr_free(struct sandbox_mgr *m);

/* UpdateRuntimeConfig's pod CIDRs ("a/b[,c/d]"), handed to netd as
 * runtimeConfig.ipRanges for later pods; persisted. */
int sandbox_set_pod_cidr(struct sandbox_mgr *m, const char *cidrs, struct cric_err *err);

/* What a RunPodSandbox's plan is made against (handlers, infra, cgroups);
 * env's strings point into m, which outlives it. */
struct pod_plan_env;
void sandbox_plan_env(struct sandbox_mgr *m, struct pod_plan_env *env);

/* Create the pod p plans (p->id is the new pod's id). config/config_len:
 * the pod's configuration as the caller received it, kept opaque with the
 * pod (snapshots hand it back). On success id is the pod's id. */
int sandbox_run(struct sandbox_mgr *m, const struct cric_call *call, const struct pod_plan *p,
		const void *config, size_t config_len, char id[65], struct cric_err *err);
/* Ids may be unique prefixes (as crictl gives them); an unknown id
 * succeeds (the CRI's idempotence). */
/* Replace the pod's stored config (the bytes sandbox_run was given, which
 * snapshots hand back) by what edit makes of it: edit gets the current
 * bytes and returns new ones in *out (malloc'd; taken over) or an error.
 * Serialised with the pod's other calls; the record is saved before the
 * new config is visible, and on failure the old one stays (sbupdate.c:
 * UpdatePodSandboxResources records the pod's resources this way).
 * Unknown or removed pod: -ENOENT. */
typedef int (*sandbox_config_edit_fn)(void *userdata, const void *config, size_t len, void **out,
				      size_t *out_len, struct cric_err *err);
int sandbox_edit_config(struct sandbox_mgr *m, const char *id, sandbox_config_edit_fn edit,
			void *userdata, struct cric_err *err);
int sandbox_stop(struct sandbox_mgr *m, const struct cric_call *call, const char *id,
		 struct cric_err *err);
int sandbox_remove(struct sandbox_mgr *m, const struct cric_call *call, const char *id,
		   struct cric_err *err);

/* A pod's state is live: a READY pod whose infra died is NOTREADY. */
enum sandbox_state { SANDBOX_READY, SANDBOX_NOTREADY };

/* What a list shows of a pod, a few hundred bytes (a whole snapshot is
 * 24 KiB of paths: allocating and copying one per pod was most of a
 * ListPodSandbox's time). A snapshot starts with one. */
struct sandbox_brief {
	char id[65];
	char name[POD_NAME_MAX + 1];
	char namespace[POD_NAMESPACE_MAX + 1];
	char uid[POD_UID_MAX + 1];
	uint32_t attempt;
	enum sandbox_state state;
	int64_t created_at; /* ns since the epoch */
	char handler[64];
	/* The configuration given to sandbox_run (the CRI adapter's packed
	 * PodSandboxConfig: labels, annotations, security context). */
	uint8_t *config;
	size_t config_len;
};

/* A pod as of now, detached from the manager (it stays valid after the pod
 * goes). */
struct sandbox_snapshot {
	struct sandbox_brief brief;
	enum pod_ns_mode net_mode, ipc_mode, pid_mode;
	char *ips[SANDBOX_MAX_IPS + 1]; /* the first is the pod's IP */
	/* The pinned namespaces ("" for the node's). */
	char netns[PATH_MAX], ipc_ns[PATH_MAX], uts_ns[PATH_MAX];
	/* The pod's own user namespace, which owns the three ("" for none). */
	char userns[PATH_MAX];
	pid_t infra_pid; /* 0 without an infra */
	char cgroup[CGROUP_PATH_MAX];
	char cgroup_parent[CGROUP_PATH_MAX]; /* as given (systemd slices) */
	/* The pod's directory: hostname, hosts, resolv.conf for containers. */
	char dir[PATH_MAX];
	char log_directory[PATH_MAX]; /* "" when none */
	char *cni_result;             /* JSON, or NULL */
};

struct sandbox_snapshot *sandbox_snapshot_free(struct sandbox_snapshot *s);
void sandbox_snapshots_free(struct sandbox_snapshot **v, size_t n);

/* The pod id (a unique prefix) names, after any lifecycle call in progress
 * on it; its network as netd has it (asked within call's deadline, until
 * netd made or confirmed it once since runtimed started: a pod whose
 * network namespace is gone is NOTREADY from then on). -ENOENT, or
 * -EINVAL for a bad or ambiguous id. */
int sandbox_get(struct sandbox_mgr *m, const struct cric_call *call, const char *id,
		struct sandbox_snapshot **ret, struct cric_err *err);
/* ---- the pod's STOPPED event ----
 * A pod stops once, by StopPodSandbox or by its infra's death, whichever
 * comes first: the first caller of sandbox_take_stop_event gets true. */
bool sandbox_take_stop_event(struct sandbox_mgr *m, const char *id);
/* After its infra process exited (the exit watcher's word): whether the
 * pod, ready (not stopped) until now, got its STOPPED due by it (true:
 * taken; the caller sends it). Waits for a lifecycle call in progress. */
bool sandbox_infra_exited(struct sandbox_mgr *m, const char *id);
/* The infra processes of the ready pods (all with id NULL, or that one). */
struct sandbox_infra {
	char id[65];
	pid_t pid;
	unsigned long long start;
};
int sandbox_infras(struct sandbox_mgr *m, const char *id, struct sandbox_infra **ret, size_t *n);

/* Every pod (pods being created are not listed), or with id_filter (a
 * unique prefix) only that one; none when it matches none. *ret is one
 * array of *n, freed with sandbox_briefs_free. */
int sandbox_list(struct sandbox_mgr *m, const char *id_filter, struct sandbox_brief **ret,
		 size_t *n, struct cric_err *err);
/* Accepts NULL. */
void sandbox_briefs_free(struct sandbox_brief *v, size_t n);

/* ListPodSandbox without unpacking each pod's config per call: a pod's
 * entry is packed once by fn (from its brief, with the state left at its
 * default, READY, which is not on the wire) and kept; a list copies the
 * entries and the current states out. A pod fn fails for (but
 * -ENOMEM) is left out. As sandbox_list otherwise; *ret is freed with
 * sandbox_entries_free. */
typedef int (*sandbox_entry_fn)(const struct sandbox_brief *b, uint8_t **ret, size_t *len);
struct sandbox_entry {
	enum sandbox_state state;
	uint8_t *entry; /* malloc'd copy */
	size_t len;
};
int sandbox_list_entries(struct sandbox_mgr *m, const char *id_filter, sandbox_entry_fn fn,
			 struct sandbox_entry **ret, size_t *n, struct cric_err *err);
void sandbox_entries_free(struct sandbox_entry *v, size_t n);
