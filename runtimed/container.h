/* Containers: the CRI container half of runtimed.
 *
 * A container is an image's root filesystem from stored, an OCI bundle
 * (<run_dir>/runtimed/containers/<id>/config.json, ctrplan.h) and a
 * monitor from monitord that runs `runc create` and holds the container's
 * stdio, log and exit record. Its record (<state_dir>/runtimed/containers/
 * <id>.json, records.h) is written before anything is created and after
 * every change: a runtimed killed mid-creation rolls the half-made
 * container back when it starts again; created, running and exited ones
 * are kept.
 *
 * Names: "<name>_<pod name>_<pod ns>_<pod uid>_<attempt>" is held by one
 * container at a time (a second one: -EEXIST naming the holder). A
 * creation that finished after its caller's deadline is handed to the
 * caller's retry by name (the kubelet retries creations that timed out);
 * a retry while the creation runs waits for it.
 *
 * Limits decided here (documented for the operator):
 *  - RLIMIT_NOFILE: soft = hard = min(1048576, runtimed's own hard limit):
 *    what the peers give (containerd, CRI-O through runc's default),
 *    bounded by what runc can set without CAP_SYS_RESOURCE.
 *  - oom_score_adj: the request's, clamped to what the host grants
 *    (oci_oom_score_adj()), logged when clamped.
 *
 * Lifecycle calls on one container are serialised; calls on different
 * containers run in parallel. Every function may be called from any
 * worker thread. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"
#include "common/ipc.h"
#include "ctrplan.h"
#include "oci.h"
#include "proto/cri/api.pb-c.h"
#include "sandbox.h"

struct ctr_mgr;

struct ctr_mgr_config {
	const char *state_dir; /* <state_dir>/runtimed */
	const char *run_dir;   /* <run_dir>/runtimed */
	struct sandbox_mgr *sandboxes;
	struct cric_client *imaged, *stored, *monitord;
	const struct oci_handler *handlers;
	size_t n_handlers;
	const char *default_handler;
	/* CDI spec directories, in rising priority (NULL terminated; copied). */
	char *const *cdi_dirs;
	/* Why cric-default is not loaded (apparmor.h); NULL or "": no reason. */
	const char *apparmor_default_error;
};

/* Opens the records and rolls back half-made creations. */
int ctr_mgr_new(const struct ctr_mgr_config *cfg, struct ctr_mgr **ret, struct cric_err *err);
struct ctr_mgr *ctr_mgr_free(struct ctr_mgr *m);

enum ctr_state { CTR_CREATING, CTR_CREATED, CTR_RUNNING, CTR_EXITED };

/* A copy of what a container is, for status and list (ctr_info_free()). */
struct ctr_info {
	char id[65], pod_id[65];
	enum ctr_state state;
	int64_t created_at, started_at, finished_at; /* unix ns */
	int32_t exit_code;
	char reason[32];
	char message[512];
	char image_id[80];
	char *image_ref;                      /* digest-qualified when known */
	Runtime__V1__ContainerConfig *config; /* as the caller sent it */
	char *log_path;                       /* absolute, "" for none */
	pid_t pid;
	uint32_t uid, gid;
	int stop_signal;
	char *spec; /* config.json, verbose only */
};
void ctr_info_free(struct ctr_info *c);

/* The CRI calls. Ids may be unique prefixes. */
int ctr_create(struct ctr_mgr *m, const struct cric_call *call,
	       const Runtime__V1__CreateContainerRequest *req, char id[65], struct cric_err *err);
int ctr_start(struct ctr_mgr *m, const struct cric_call *call, const char *id,
	      struct cric_err *err);
/* The stop signal, SIGKILL after timeout_s (0: at once); returns once the
 * process is gone. Unknown or stopped: 0. */
int ctr_stop(struct ctr_mgr *m, const struct cric_call *call, const char *id, int64_t timeout_s,
	     struct cric_err *err);
/* Idempotent: unknown is 0. */
int ctr_remove(struct ctr_mgr *m, const struct cric_call *call, const char *id,
	       struct cric_err *err);
int ctr_get(struct ctr_mgr *m, const struct cric_call *call, const char *id, bool verbose,
	    struct ctr_info **ret, struct cric_err *err);
/* Every container (not those being created), NULL-terminated. */
int ctr_list(struct ctr_mgr *m, const struct cric_call *call, struct ctr_info ***ret,
	     struct cric_err *err);
/* The same for the containers of pod pod_id (the full id) only. */
int ctr_list_pod(struct ctr_mgr *m, const struct cric_call *call, const char *pod_id,
		 struct ctr_info ***ret, struct cric_err *err);
void ctr_info_list_free(struct ctr_info **l);

/* ListContainers without unpacking each container's config per call: a
 * container's entry is packed once by fn (from its ctr_info, with the state
 * left at its default, CREATED, which is not on the wire) and kept; a list
 * copies the entries and the current states out. */
typedef int (*ctr_entry_fn)(struct ctr_info *i, uint8_t **ret, size_t *len);
struct ctr_brief {
	char id[65], pod_id[65];
	enum ctr_state state;
	uint8_t *entry; /* malloc'd copy */
	size_t len;
};
/* Every container (not those being created), refreshed like ctr_list's;
 * *ret a malloc'd array of *n (ctr_briefs_free). */
int ctr_list_briefs(struct ctr_mgr *m, const struct cric_call *call, ctr_entry_fn fn,
		    struct ctr_brief **ret, size_t *n, struct cric_err *err);
void ctr_briefs_free(struct ctr_brief *v, size_t n);

/* UpdateContainerResources (ctrupdate.c, ctrres.h): res checked (-EINVAL,
 * nothing changed), merged onto the container's resources, applied with
 * `runc update` to a created or running container, then recorded (what
 * ContainerStatus reports). runc's refusal leaves the record as it was; an
 * exited container's record alone changes. */
int ctr_update_resources(struct ctr_mgr *m, const struct cric_call *call, const char *id,
			 const Runtime__V1__LinuxContainerResources *res, struct cric_err *err);

/* CheckpointContainer (ctrcheckpoint.c, checkpoint.h): the running
 * container id dumped through `runc checkpoint --leave-running` (CRIU)
 * and written with its spec, config, status and writable layer as a 0600
 * checkpoint archive at location; it keeps running. location is checked
 * first (ckpt_location_check(): -EINVAL); unknown: -ENOENT; not running:
 * -EBUSY; no criu: -ENOPKG. runc gets timeout_s (0: a default) within the
 * call's deadline: then CRIU is killed, the container thawed, -ETIMEDOUT.
 * Nothing is left at location on failure. Blocks for the dump and copy;
 * the container's other lifecycle calls wait for it. */
int ctr_checkpoint(struct ctr_mgr *m, const struct cric_call *call, const char *id,
		   const char *location, int64_t timeout_s, struct cric_err *err);

/* The pod's hooks (sandbox.h's on_pod_stop / on_pod_remove): stop what
 * still runs of pod_id's containers (at once: the kubelet gave them their
 * grace period already), or remove them all. */
/* ---- exits and their STOPPED events ----
 *
 * A container's exit is seen by whichever comes first: the exit watcher,
 * a stop, a status or list call. Each exit makes one STOPPED event due,
 * taken once by ctr_take_stopped, which the adapter calls (outside any
 * container's lock: building an event reads the pod's statuses) after each
 * call that may have seen an exit. */
struct exit_watch;
struct ctr_ref {
	char id[65], pod_id[65];
};
/* Watch the exits of the running containers, now and as they start (w
 * outlives m's use of it: set it to NULL before freeing it). */
void ctr_watch_exits(struct ctr_mgr *m, struct exit_watch *w);
/* The watcher's callback: look at container id now; true when it no longer
 * runs (or is gone), false to be asked again. */
bool ctr_exit_check(struct ctr_mgr *m, const char *id);
/* The STARTED event of id went out (or never will): its STOPPED may go. */
void ctr_start_published(struct ctr_mgr *m, const char *id);
/* The containers whose STOPPED is due, their flag cleared: a malloc'd
 * array (NULL when *n == 0). -ENOMEM leaves every flag as it was. */
int ctr_take_stopped(struct ctr_mgr *m, struct ctr_ref **ret, size_t *n);

int ctr_stop_pod(struct ctr_mgr *m, const struct cric_call *call, const char *pod_id,
		 struct cric_err *err);
int ctr_remove_pod(struct ctr_mgr *m, const struct cric_call *call, const char *pod_id,
		   struct cric_err *err);

/* ctruser.c: the user of spec resolved against <rootfs>/etc/passwd and
 * /etc/group, read beneath rootfs (openat2 RESOLVE_IN_ROOT: no link leads
 * out of it). */
int ctr_user_read(const char *rootfs, const struct ctr_user_spec *spec, struct ctr_user *ret,
		  struct cric_err *err);

/* ctrdevices.c: every character and block device under dir ("/dev"),
 * as a privileged container gets them; at most CTR_MAX_DEVICES. *ret is
 * the caller's to free. */
int ctr_host_devices(const char *dir, struct ctr_device **ret, size_t *n, struct cric_err *err);

/* ctrupdate.c: ctr_res_check (ctrres.h) with this host's cgroup version,
 * and the hugepage limits checked against the host: a page size it lacks
 * is -EINVAL; without a hugetlb controller (*hugetlb false) only a limit
 * of 0 for pages the host has none of is taken (it holds by itself), else
 * -ENOPKG. */
int ctr_res_host_check(const Runtime__V1__LinuxContainerResources *res, bool *hugetlb,
		       struct cric_err *err);

/* ctrdevices.c: the host nodes of cfg->devices (host_path, symlinks
 * followed), in order, *n of them; *ret NULL when cfg has none, else the
 * caller's to free. A host_path that is a directory gives every character
 * and block device under it, as runc and containerd walk one (the
 * directories of ctr_host_devices' walk skipped, symlinks and other files
 * inside skipped, at most 8 levels deep, CTR_MAX_DEVICES in all: -E2BIG
 * past it). A host_path that is missing, or neither a device nor a
 * directory: -EINVAL naming it. */
int ctr_req_devices(const Runtime__V1__ContainerConfig *cfg, struct ctr_device **ret, size_t *n,
		    struct cric_err *err);
