/* runtimed's manager: runtime identity and readiness (Version, Status with
 * netd's network readiness, RuntimeConfig), the runtime handlers from the
 * config, and the pod sandboxes (sandbox.h). Containers will live beside
 * them.
 *
 * Config, section "runtimed" (all optional):
 *   "default_runtime": "runc"          the handler for runtime_handler ""
 *   "runtimes": {"<name>": {"path": "/usr/sbin/runc",
 *                           "root": "<run_dir>/runtimed/runtimes/<name>",
 *                           "systemd_cgroup": false}}
 *   "pause_binary": "<dir of cric-runtimed>/cric-pause"
 *   "cgroup_root": "/cric"             parent of pods without cgroup_parent
 *
 * Thread-safety: every function may be called from any worker thread. */
#pragma once

#include <pthread.h>
#include <stdbool.h>

#include "common/config.h"
#include "common/ipc.h"
#include "oci.h"
#include "container.h"
#include "sandbox.h"

#define RUNTIME_NAME        "cric"
#define RUNTIME_API_VERSION "v1"
/* The kubelet-facing "version" of VersionResponse (the API's own version). */
#define KUBE_RUNTIME_API_VERSION "0.1.0"
#define RUNTIME_MAX_HANDLERS     16

struct runtimed;

struct runtime_status {
	bool runtime_ready;
	char runtime_reason[64];
	char runtime_message[512];
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
/* The default handler ("" in RunPodSandbox), or NULL. */
const struct oci_handler *runtimed_default_handler(struct runtimed *rt);
/* The configured handlers (names), for StatusResponse.runtime_handlers. */
size_t runtimed_handlers(struct runtimed *rt, const struct oci_handler **ret);
struct sandbox_mgr *runtimed_sandboxes(struct runtimed *rt);
struct ctr_mgr *runtimed_containers(struct runtimed *rt);
/* The container events (events.h, cri-events.h). */
struct event_log *runtimed_events(struct runtimed *rt);
/* Held while STOPPED events are taken and published (cri-container.c), so
 * that a container's DELETED never goes out before its STOPPED. */
pthread_mutex_t *runtimed_stop_events_lock(struct runtimed *rt);
/* Start the exit watchers (exitwatch.h): ctr_fn(rt, container id) on each
 * exit of a running container, pod_fn(rt, pod id) on each death of a ready
 * pod's infra process, from now on and for those running now. */
int runtimed_watch_exits(struct runtimed *rt, bool (*ctr_fn)(void *ud, const char *id),
			 bool (*pod_fn)(void *ud, const char *id), struct cric_err *err);
/* Watch the infra of pod id (full id), just made ready. */
void runtimed_watch_pod(struct runtimed *rt, const char *id);
