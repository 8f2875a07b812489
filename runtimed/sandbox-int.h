/* What the files of runtimed's pod half share (sandbox.c: records, the
 * table, run/stop/remove; recover.c: recovery at start-up; infra.c: the
 * infra process; podnet.c: the netd client; sbstatus.c: snapshots): the
 * sandbox and manager structs and the table's reference rules. Internal to
 * runtimed; no CRI types.
 *
 * References: the table holds one per sandbox; lookup() hands out another,
 * dropped by put(). A sandbox's fields are read and written under
 * m->lock; its lifecycle calls are serialised by its own op mutex. */
#pragma once

#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup.h"
#include "common/idmap.h"
#include "common/ids.h"
#include "common/macro.h"
#include "lsm.h"
#include "names.h"
#include "oci.h"
#include "sandbox.h"
#include "seccomp-profile.h"

#define RECORD_MAX_BYTES    (4 * 1024 * 1024)
#define MAX_POD_CIDRS       4
#define INFRA_UID           65535
#define INFRA_OOM_SCORE_ADJ (-998)

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
	/* Its ListPodSandbox entry, packed without its state (the
	 * sandbox_entry_fn of its first sandbox_list_entries): made once, not
	 * per list; NULL until then, and again when its config changes. */
	uint8_t *entry;
	size_t entry_len;
	char handler[64];
	bool host_network, host_ipc;
	int pid_mode;   /* enum pod_ns_mode */
	bool net_setup; /* netd holds state for it */
	/* In memory only: netd made its network or answered that it still has
	 * it, since this runtimed started. Status calls ask netd only until
	 * then (a network namespace goes with a reboot, which restarts
	 * runtimed too): one round trip per pod, not per call. */
	bool net_confirmed;
	char netns[PATH_MAX];
	char *ips[SANDBOX_MAX_IPS + 1];
	char *cni_result;
	char ipc_pin[PATH_MAX], uts_pin[PATH_MAX];
	/* The pod's own user namespace, pinned by netd with its netns, which
	 * it owns (as do the IPC and UTS namespaces); "" for none. */
	char userns[PATH_MAX];
	pid_t infra_pid;
	unsigned long long infra_start;
	char cgroup[CGROUP_PATH_MAX];
	char cgroup_parent[CGROUP_PATH_MAX]; /* as given (systemd slices) */
	char **cgroup_created;
	char dir[PATH_MAX];
	char log_directory[PATH_MAX];

	pthread_mutex_t op; /* one lifecycle call at a time */
	unsigned refs;
	bool removed;
	bool stop_event_taken; /* sandbox_take_stop_event said yes */
};

struct sandbox_mgr {
	pthread_mutex_t lock; /* the table and every sandbox's fields */
	/* Pod cgroups made, shared and removed one pod at a time: a pod made
	 * at once with another under a new parent must see the parent's maker
	 * (share_cgroups), or the parent outlives them both; and a parent is
	 * not removed between another pod's mkdir of it and of its child. */
	pthread_mutex_t cgroups;
	struct sandbox **items;
	size_t n, cap;
	struct record_store *records; /* <state_dir>/sandboxes */
	struct name_table *names;     /* pods' names: names.h */
	char *sandboxes_dir, *pause_rootfs, *network_file, *runtimes_dir;
	uint64_t shm_size; /* bytes of each pod's /dev/shm */
	char cgroup_driver[16];
	char cgroup_root[CGROUP_PATH_MAX];
	bool have_pause;
	struct ctr_lsm lsm;                   /* the host's AppArmor and SELinux (lsm.h) */
	struct ctr_seccomp_host seccomp_host; /* for the infra's filter */
	struct oci_handler *handlers;
	size_t n_handlers;
	char default_handler[64];
	struct cric_client *netd;
	char *pod_cidrs[MAX_POD_CIDRS + 1];
	char *netd_pin_dir;    /* <netd run dir>/netns: where pod netns live */
	char *netd_userns_dir; /* <netd run dir>/userns: pods' user namespaces */
	sandbox_hook_fn on_pod_stop, on_pod_remove;
	void *hooks_userdata;
};

/* sandbox.c */
struct sandbox *sandbox_alloc(void);
void sandbox_free(struct sandbox *sb);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct sandbox *, sandbox_free)
/* A sandbox as its record (what survives a restart) and back: every field
 * but the table's (refs, op, removed). NULL on OOM; -EINVAL for a record
 * that is not one. */
json_t *sandbox_to_record(const struct sandbox *sb);
int sandbox_from_record(const json_t *doc, struct sandbox **ret);
const char *state_name(enum sb_state s);
struct oci_handler *find_handler(struct sandbox_mgr *m, const char *name);
/* Find by id or unique prefix, with a reference. -ENOENT, or -EINVAL when
 * the prefix is ambiguous. Sandboxes being created are not visible. */
int lookup(struct sandbox_mgr *m, const char *id, struct sandbox **ret, struct cric_err *err);
/* Free the first max strings of v (NULL-terminated before), NULLing them. */
void strv_clear(char **v, size_t max);
/* Drop a reference lookup() gave. */
void put(struct sandbox_mgr *m, struct sandbox *sb);
/* The key of sb's name in m->names. */
void sandbox_name_key(const struct sandbox *sb, char *buf, size_t size);
/* Put sb in the table (the table's reference); with the lock held or
 * before any worker runs. */
int table_add(struct sandbox_mgr *m, struct sandbox *sb);
/* sb's record written (-errno); with its op lock held. */
int record_save(struct sandbox_mgr *m, struct sandbox *sb);
int record_delete(struct sandbox_mgr *m, const char *id);
/* Undo everything the sandbox holds (infra, network, pins, cgroups,
 * directory); idempotent; call NULL at start-up. */
int release_all(struct sandbox_mgr *m, const struct cric_call *call, struct sandbox *sb,
		struct cric_err *err);

/* recover.c: at start-up, every record back into the table; creations a
 * killed runtimed left half-made are rolled back, and pods whose network
 * netd no longer has (a reboot) are NOTREADY. */
void recover(struct sandbox_mgr *m);

/* podnet.c: the pod's network namespace and CNI setup from netd (ADD: a
 * creation, bounded by netd's cap only), and their teardown (DEL from
 * netd's cache; idempotent; bounded by call's deadline and the cap; call
 * NULL at start-up). */
struct pod_plan;
int podnet_setup(struct sandbox_mgr *m, const struct cric_call *call, struct sandbox *sb,
		 const struct pod_plan *p, struct cric_err *err);
int podnet_teardown(struct sandbox_mgr *m, const struct cric_call *call, struct sandbox *sb,
		    struct cric_err *err);
/* Whether netd has the pod's network, and in which namespace: 0 with the
 * netns path (checked to lie in netd's pin directory) in netns, -ENOENT
 * when netd knows no network of the pod, another -errno when it could
 * not say (down: err says). */
int podnet_status(struct sandbox_mgr *m, const struct cric_call *call, const char *pod_id,
		  char *netns, size_t size, struct cric_err *err);
/* Parse cidrs ("a/b[,c/d]", at most MAX_POD_CIDRS) into m->pod_cidrs;
 * with m->lock held. */
int pod_cidrs_set_locked(struct sandbox_mgr *m, const char *cidrs, struct cric_err *err);
/* Whether path is a network namespace netd may have pinned: an absolute,
 * clean path of one component directly under pin_dir. Pure. */
bool podnet_netns_path_ok(const char *pin_dir, const char *path);

/* podfiles.c: the pod's hostname, hosts (with its IPs) and resolv.conf
 * (the plan's DNS config, or the node's) written into sb->dir; and rm -rf
 * of a pod directory that never crosses into a mount. */
int podfiles_write(struct sandbox *sb, const struct pod_plan *p, struct cric_err *err);
int podfiles_remove(const char *dir, struct cric_err *err);
/* The pod's /dev/shm: a tmpfs of size bytes at <dir>/shm, bound into every
 * container of a pod with its own IPC namespace; unmounted (every layer,
 * idempotent) before the directory goes. */
int podfiles_shm_mount(const char *dir, uint64_t size, struct cric_err *err);
int podfiles_shm_unmount(const char *dir, struct cric_err *err);

/* infra.c: the static cric-pause infra of pods sharing a PID namespace,
 * run by the OCI runtime from a read-only root holding only it. */
int infra_prepare_rootfs(struct sandbox_mgr *m, const char *binary, struct cric_err *err);
struct pod_infra_security; /* podplan.h: its seccomp filter and LSM fields */
/* uid/gid: the maps of the pod's own user namespace (sb->userns), which
 * the infra joins; NULL for a pod without one. */
int infra_start(struct sandbox_mgr *m, struct sandbox *sb, const struct oci_handler *h,
		const struct pod_infra_security *sec, const struct idmap_range *uid,
		const struct idmap_range *gid, struct cric_err *err);
int infra_stop(struct sandbox_mgr *m, struct sandbox *sb, struct cric_err *err);
