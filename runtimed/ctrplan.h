/* CreateContainer's request checked and turned into an OCI runtime spec
 * (config.json), before anything is created: pure (no I/O, no state), so it
 * is unit-tested alone. What needs the file system (the user's passwd and
 * group entries beneath the rootfs, host paths of mounts, the host's
 * limits) is looked up by the caller and handed in.
 *
 * Every refusal is -EINVAL with err naming the field, or -EOPNOTSUPP for
 * what the request may ask but runtimed does not do yet: an honest
 * refusal, never a silently weaker container. User namespaces
 * (namespace_options.userns_options mode POD) follow the pod's (struct
 * ctr_pod.userns): a container of a pod without one asking POD, or of a
 * pod with one asking NODE, is -EINVAL. The bind sources are id-mapped by
 * the caller (container.c), not here.
 *
 * A privileged container (only in a privileged pod, else -EINVAL) gets
 * every capability the host can grant, every host device node with an
 * allow-all device rule, /sys and the cgroup fs read-write, no masked or
 * read-only paths and no seccomp filter, as runc-based peers give it. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "caps.h"
#include "common/error.h"
#include "common/idmap.h"
#include "lsm.h"
#include "seccomp-default.h"
#include "seccomp-profile.h"
#include "proto/cri/api.pb-c.h"

#define CTR_NAME_MAX       253
#define CTR_MAX_ARGS       4096
#define CTR_MAX_ENV        4096
#define CTR_MAX_MOUNTS     256
#define CTR_MAX_GROUPS     64
#define CTR_MAX_PATHS      256  /* masked / readonly paths */
#define CTR_MAX_DEVICES    4096 /* host devices of a privileged container */
#define CTR_MAX_LABELS     1024
#define CTR_DEFAULT_PATH   "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define CTR_DEFAULT_NOFILE 1048576

/* What of the pod the container needs (a snapshot taken under the pod's
 * lock; the strings must outlive the plan). */
struct ctr_pod {
	const char *id, *name, *namespace, *uid;
	const char *hostname;
	const char *dir; /* holds hostname, hosts, resolv.conf */
	const char *log_directory;
	bool host_network, host_ipc;
	bool privileged; /* linux.security_context.privileged of the pod */
	int pid_mode;    /* Runtime__V1__NamespaceMode of the pod */
	pid_t infra_pid; /* pid_mode POD: the infra, whose pid ns is joined */
	const char *netns, *ipc_pin, *uts_pin;
	const char *cgroup;        /* cgroupfs path of the pod */
	const char *cgroup_parent; /* as given (systemd slice) */
	bool systemd_cgroup;
	/* The pod's seccomp choice (ctr_seccomp_kind of its security
	 * context), for containers that make none. */
	enum ctr_seccomp_kind seccomp_kind;
	const char *seccomp_ref; /* LOCALHOST: the profile's path */
	/* The pod's user namespace mapping (userns_options POD). With
	 * userns_pin (netd's pin of the pod's user namespace, which owns its
	 * network, IPC and UTS namespaces) the container joins it by path
	 * (runc 1.1 wants the mappings beside the path) and gets sysfs and
	 * /dev/mqueue of its own. Without (a pod made before the pod's user
	 * namespace owned the others): a new user namespace of the mapping
	 * that runc makes after joining the pod's host-owned namespaces, /sys
	 * bound from the host (sysfs cannot be mounted for a network
	 * namespace of another user namespace), no /dev/mqueue (likewise for
	 * IPC), and no exec (runc exec joins the user namespace first). */
	bool userns;
	struct idmap_range uid_map, gid_map;
	const char *userns_pin; /* NULL or "": none */
};

/* The checks that need nothing but the request and the pod: metadata,
 * log path. name gets the name reservation key
 * "<name>_<pod name>_<pod ns>_<pod uid>_<attempt>"; log_path the absolute
 * log file ("" when the kubelet asked for none). */
int ctr_plan_check(const Runtime__V1__ContainerConfig *cfg, const struct ctr_pod *pod, char *name,
		   size_t name_size, char *log_path, size_t log_size, struct cric_err *err);

/* The user the process runs as, before it is looked up: from run_as_user /
 * run_as_username / run_as_group, else the image config's User ("name",
 * "uid", "name:group", "uid:gid"; "" is root). */
struct ctr_user_spec {
	bool has_uid;
	uint32_t uid;
	char name[256]; /* when !has_uid */
	bool has_gid;
	uint32_t gid;
	char group[256];   /* when a group was named and !has_gid */
	bool gid_override; /* run_as_group: the gid whatever passwd says */
};
int ctr_plan_user(const Runtime__V1__ContainerConfig *cfg, const json_t *image_config,
		  struct ctr_user_spec *ret, struct cric_err *err);

/* The user as resolved against the container's /etc/passwd and /etc/group
 * (ctruser.c): uid, gid, the additional groups (image groups the user is a
 * member of, not yet the supplemental ones), HOME when passwd has it. */
struct ctr_user {
	uint32_t uid, gid;
	uint32_t groups[CTR_MAX_GROUPS];
	size_t n_groups;
	char home[256];
};

/* The parts of /etc/passwd and /etc/group that matter, parsed from their
 * text (pure: ctruser.c reads the files). passwd/group may be NULL (no
 * such file). A named user or group that is not there: -EINVAL. */
int ctr_user_lookup(const struct ctr_user_spec *spec, const char *passwd, const char *group,
		    struct ctr_user *ret, struct cric_err *err);

/* A host device node, as a privileged container gets it (ctr_host_devices
 * in container.h finds them), or as one of cfg->devices names it. */
struct ctr_device {
	char path[128];
	char type; /* 'c' or 'b' */
	int64_t major, minor;
	uint32_t mode; /* permission bits */
	uint32_t uid, gid;
	/* ctr_req_devices: the index in cfg->devices, and where in path the
	 * part under that host_path begins (a directory's node goes to
	 * container_path + path + rel; a node named itself has rel at the
	 * end of path). */
	uint32_t req, rel;
};

/* Everything else the spec depends on. */
struct ctr_plan_in {
	const char *id;
	const Runtime__V1__ContainerConfig *cfg;
	const struct ctr_pod *pod;
	const json_t *image_config; /* the image's config blob, parsed */
	const char *rootfs;
	const struct ctr_user *user;
	/* host_paths[i]: cfg->mounts[i]'s host path as it is to be mounted
	 * (symlinks resolved, created if missing): the caller's I/O. */
	char *const *host_paths;
	uint64_t nofile;   /* RLIMIT_NOFILE soft = hard (see container.h) */
	int oom_score_adj; /* already clamped to what the host grants */
	/* namespace_options.pid TARGET: the target container's init (0: the
	 * caller found none running in the pod). */
	pid_t target_pid;
	/* caps.h: the default set and what the host can grant. */
	uint64_t caps_defaults, caps_grantable;
	/* For a privileged container: the host's device nodes. */
	const struct ctr_device *host_devices;
	size_t n_host_devices;
	/* Seccomp Localhost: the file ctr_plan_seccomp() named, read by the
	 * caller (ctr_seccomp_profile_read); the machine to build it for. */
	const json_t *seccomp_profile;
	const struct ctr_seccomp_host *seccomp_host;
	/* The host's AppArmor and SELinux (NULL: neither). */
	const struct ctr_lsm *lsm;
	/* The host nodes of cfg->devices, as the caller found them at each
	 * host_path, a node or a directory of them (ctr_req_devices in
	 * container.h); NULL when cfg has none. */
	const struct ctr_device *req_devices;
	size_t n_req_devices;
	/* CDI_devices resolved from the CDI spec files (cdi.h): the edits to
	 * make, already checked; NULL when cfg names none. */
	const json_t *cdi_edits;
	/* The host has a hugetlb controller: linux.resources hugepage_limits
	 * go into the spec (without one the caller let through only limits
	 * of 0 that hold by themselves: ctr_res_host_check in container.h). */
	bool hugetlb;
};

/* The seccomp profile the container gets: its own choice (the seccomp
 * message, else a non-empty deprecated seccomp_profile_path), else the
 * pod's; none for a privileged container. *ref: the Localhost file. */
int ctr_plan_seccomp(const Runtime__V1__ContainerConfig *cfg, const struct ctr_pod *pod,
		     enum ctr_seccomp_kind *kind, const char **ref, struct cric_err *err);

/* The OCI runtime spec of the container. */
int ctr_plan_spec(const struct ctr_plan_in *in, json_t **ret, struct cric_err *err);

/* The process args by Kubernetes' rule over the image's Entrypoint/Cmd,
 * as a JSON array (for tests and the spec). */
int ctr_plan_args(const Runtime__V1__ContainerConfig *cfg, const json_t *image_config, json_t **ret,
		  struct cric_err *err);

/* The stop signal: the request's, else the image's StopSignal, else
 * SIGTERM. -EINVAL for one that is not a signal here. */
int ctr_plan_stop_signal(const Runtime__V1__ContainerConfig *cfg, const json_t *image_config);

/* ctrdevplan.c: what ctr_plan_spec adds to the spec it built: the
 * requested devices (linux.devices and a device cgroup allow rule each),
 * the CDI edits, and linux.rootfsPropagation matching the mounts (rshared
 * with a BIDIRECTIONAL mount, else rslave with a HOST_TO_CONTAINER one). */
int ctr_plan_devices_and_cdi(const struct ctr_plan_in *in, json_t *spec, struct cric_err *err);

/* ctrdevplan.c: linux.resources.hugepageLimits (when in->hugetlb) and
 * unified of res into oci; checked before (ctr_res_host_check). */
int ctr_plan_hugepages_unified(const struct ctr_plan_in *in,
			       const Runtime__V1__LinuxContainerResources *res, json_t *oci);
