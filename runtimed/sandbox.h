/* Pod sandboxes: the CRI pod half of runtimed.
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
 * sandboxes run in parallel. Every function may be called from any worker.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"
#include "common/ipc.h"
#include "oci.h"
#include "proto/cri/api.pb-c.h"

#define SANDBOX_MAX_IPS 8

struct sandbox_mgr;

struct sandbox_mgr_config {
	const char *state_dir; /* <state_dir>/runtimed */
	const char *run_dir;   /* <run_dir>/runtimed */
	const char *cgroup_driver;
	const char *cgroup_root;  /* parent of pods without cgroup_parent */
	const char *pause_binary; /* "" when there is none */
	const struct oci_handler *handlers;
	size_t n_handlers;
	const char *default_handler;
	struct cric_client *netd;
};

int sandbox_mgr_new(const struct sandbox_mgr_config *cfg, struct sandbox_mgr **ret,
		    struct cric_err *err);
struct sandbox_mgr *sandbox_mgr_free(struct sandbox_mgr *m);

/* UpdateRuntimeConfig's pod CIDRs ("a/b[,c/d]"), handed to netd as
 * runtimeConfig.ipRanges for later pods; persisted. */
int sandbox_set_pod_cidr(struct sandbox_mgr *m, const char *cidrs, struct cric_err *err);

/* The CRI calls. Ids may be unique prefixes (as crictl gives them). */
int sandbox_run(struct sandbox_mgr *m, const struct cric_call *call,
		const Runtime__V1__RunPodSandboxRequest *req, char id[65], struct cric_err *err);
int sandbox_stop(struct sandbox_mgr *m, const struct cric_call *call, const char *id,
		 struct cric_err *err);
int sandbox_remove(struct sandbox_mgr *m, const struct cric_call *call, const char *id,
		   struct cric_err *err);
int sandbox_status(struct sandbox_mgr *m, const char *id, bool verbose,
		   Runtime__V1__PodSandboxStatusResponse **ret, struct cric_err *err);
int sandbox_list(struct sandbox_mgr *m, const Runtime__V1__PodSandboxFilter *filter,
		 Runtime__V1__ListPodSandboxResponse **ret, struct cric_err *err);
