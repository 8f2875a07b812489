/* netd's manager: the networks of pods (network namespace + CNI attachment)
 * and their on-disk state.
 *
 * State, one file per pod, written atomically (fsutil.h):
 *   <state_dir>/results/<pod id>.json   the record: state ("adding" or
 *       "ready"), the namespace pin path, the pod's CNI_ARGS and
 *       runtimeConfig, the network list used (cni.h), and once ready the
 *       final CNI result. Persistent, so that DEL works with exactly what ADD
 *       was given after netd restarts and after reboots.
 *   <run_dir>/netns/<pod id>            the pinned namespace (netns.h).
 *   <run_dir>/userns/<pod id>           the pod's own user namespace, which
 *       owns the network namespace, for pods that ask for one (the record's
 *       "userns": its path and mapping).
 * Setup writes the record ("adding") before it creates anything, so every
 * namespace and every plugin run has a record to undo it by.
 *
 * Calls for one pod id are serialised here (the CNI rule: no parallel
 * operations on one container); calls for different pods run in parallel.
 * Every call blocks while plugins run (bounded by rt->timeout_ms each).
 * Functions take the CNI settings (conf dir, bin dirs, timeout) per call,
 * so that a config reload applies to the next call.
 */
#pragma once

#include <stdbool.h>

#include "cni.h"
#include "common/error.h"
#include "common/macro.h"
#include "podspec.h"

#define POD_IFNAME "eth0"

struct pods;

/* A pod's network, built for a caller (all malloc'd). */
struct pod_network {
	char pod_id[65];
	char *netns_path;
	char *userns_path; /* "" when the pod has no user namespace of its own */
	bool netns_present;
	char **ips; /* NULL-terminated, primary first; no prefix lengths */
	char *result_json;
	char *network_name;
	char *cni_version;
	char *ifname;
};
struct pod_network *pod_network_free(struct pod_network *n);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct pod_network *, pod_network_free)

/* Open the state under state_dir and run_dir (netd's own directories,
 * created if missing) and reconcile it with what is on disk and mounted:
 *   - a record left "adding" by a crash is rolled back (CNI DEL with rt,
 *     namespace removed, record removed);
 *   - a namespace pin without a record is removed;
 *   - a "ready" record whose namespace is gone (reboot) is kept for
 *     pods_teardown(), which still runs DEL;
 *   - temp files of interrupted atomic writes are removed.
 * Problems with single pods are logged and do not fail the open. */
int pods_open(const char *state_dir, const char *run_dir, const struct cni_runtime *rt,
	      struct pods **ret, struct cric_err *err);
/* No call may be in progress. Accepts NULL. Returns NULL. */
struct pods *pods_free(struct pods *p);

/* Validate spec (podspec.h), create the pinned namespace and run the ADD
 * chain of the network found in conf_dir now. A repeated call for a pod that
 * is set up returns its network (-EEXIST if name/namespace/uid differ). On
 * failure everything done is undone (DEL chain, namespace, record); a DEL
 * failing during that rollback is logged, not returned. Errors: -EINVAL bad
 * spec; -EAGAIN no usable network config (err says why: the CRI's
 * NetworkPluginNotReady); -EIO/-EAGAIN/-ETIMEDOUT a plugin failed (err
 * carries its message). */
int pods_setup(struct pods *p, const struct cni_runtime *rt, const char *conf_dir,
	       const struct pod_net_spec *spec, struct pod_network **ret, struct cric_err *err);

/* Run the DEL chain with the cached result and configuration, then remove
 * the namespace and the record. Idempotent: an unknown pod id succeeds
 * (*was_known false). When DEL fails, the error is returned and everything
 * is kept for a retry. An unreadable record is logged and removed along
 * with the namespace (nothing to run DEL with). -EINVAL for a bad id.
 * was_known may be NULL. */
int pods_teardown(struct pods *p, const struct cni_runtime *rt, const char *pod_id, bool *was_known,
		  struct cric_err *err);

/* The pod's network from its record; -ENOENT if none (or its setup is not
 * complete), -EUCLEAN if its record is unreadable. With check, CHECK runs
 * first when the network supports it (*checked tells; checked may be NULL)
 * and its failure is returned. */
int pods_status(struct pods *p, const struct cni_runtime *rt, const char *pod_id, bool check,
		struct pod_network **ret, bool *checked, struct cric_err *err);
