/* runtimed's manager. For now: runtime identity and readiness (Version,
 * Status with netd's network readiness, RuntimeConfig). Sandboxes and
 * containers will live beside it (sandbox.c, container.c).
 *
 * Thread-safety: every function may be called from any worker thread. */
#pragma once

#include <stdbool.h>

#include "common/config.h"
#include "common/ipc.h"

#define RUNTIME_NAME        "cric"
#define RUNTIME_API_VERSION "v1"
/* The kubelet-facing "version" of VersionResponse (the API's own version). */
#define KUBE_RUNTIME_API_VERSION "0.1.0"

struct runtimed;

struct runtime_status {
	bool runtime_ready;
	bool network_ready;
	char network_reason[64];
	char network_message[512];
	char cni_conf_file[256];
	char cni_network[128];
};

int runtimed_new(const struct cric_config *cfg, struct runtimed **ret, struct cric_err *err);
struct runtimed *runtimed_free(struct runtimed *rt);
int runtimed_reload(struct runtimed *rt, const struct cric_config *cfg, struct cric_err *err);

/* Ask netd (bounded by the call's deadline) and combine with our own state.
 * Never fails: an unreachable netd means the network is not ready. */
void runtimed_status(struct runtimed *rt, const struct cric_call *call, struct runtime_status *st);
/* "cgroupfs" or "systemd" */
void runtimed_cgroup_manager(struct runtimed *rt, char *buf, size_t size);
