/* Linux security modules: which of AppArmor and SELinux the host runs,
 * and what a container's or pod's fields ask of them.
 *
 * Where the module is absent, Unconfined and RuntimeDefault ask nothing
 * (there is nothing to apply: both peers run such containers unconfined),
 * but an explicit AppArmor Localhost profile or an SELinux label cannot be
 * enforced: -EINVAL naming the field, never a silently weaker container.
 *
 * Where AppArmor is present:
 *  - RuntimeDefault, or no AppArmor field at all on an unprivileged
 *    container (as containerd and CRI-O do): process.apparmorProfile
 *    CTR_APPARMOR_DEFAULT, which must be loaded (-ENOPKG otherwise: cric
 *    does not generate it yet);
 *  - Localhost: the named profile, which must be loaded (-EINVAL);
 *  - Unconfined, or a privileged container without a field: none.
 * Where SELinux is present: selinux_options become process.selinuxLabel
 * "user:role:type:level" and linux.mountLabel "user:object_r:
 * container_file_t:level", the parts not given from system_u, system_r,
 * container_t, s0.
 *
 * ctr_lsm_detect() and ctr_lsm_apparmor_loaded() do the I/O; the plans
 * are pure (the host's modules are handed in, so tests inject them). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "proto/cri/api.pb-c.h"

#define CTR_APPARMOR_DEFAULT "cric-default"
#define CTR_LSM_LABEL_MAX    256

struct ctr_lsm {
	bool apparmor, selinux;
	/* AppArmor's loaded profiles as the kernel lists them ("name (mode)"
	 * lines of <securityfs>/apparmor/profiles); NULL: none known. */
	const char *apparmor_profiles;
	/* Why CTR_APPARMOR_DEFAULT could not be loaded at start ("": it was,
	 * or was not tried): apparmor.h. */
	char default_error[256];
};

/* The host's modules (apparmor_profiles left NULL, default_error ""). */
void ctr_lsm_detect(struct ctr_lsm *lsm);

/* Read the kernel's list of loaded AppArmor profiles: 0 and *ret (free
 * it), or a negative errno. */
int ctr_lsm_apparmor_loaded(char **ret);

/* What goes into a container's spec ("" where nothing does). */
struct ctr_lsm_plan {
	char apparmor[CTR_LSM_LABEL_MAX];
	char process_label[CTR_LSM_LABEL_MAX];
	char mount_label[CTR_LSM_LABEL_MAX];
};

/* The container's AppArmor (apparmor, or the deprecated apparmor_profile
 * string "runtime/default", "unconfined", "localhost/<name>") and SELinux
 * fields. sc may be NULL. */
int ctr_lsm_plan_container(const Runtime__V1__LinuxContainerSecurityContext *sc,
			   const struct ctr_lsm *lsm, struct ctr_lsm_plan *ret,
			   struct cric_err *err);

/* The pod's fields as its infra process gets them (the same rules, with
 * the field names of linux.security_context; no field on an unprivileged
 * pod is RuntimeDefault where AppArmor is). sc may be NULL. */
int ctr_lsm_plan_pod(const Runtime__V1__LinuxSandboxSecurityContext *sc, const struct ctr_lsm *lsm,
		     struct ctr_lsm_plan *ret, struct cric_err *err);

/* The pod's fields checked without the list of loaded profiles, at
 * RunPodSandbox before anything is made. */
int ctr_lsm_check_pod(const Runtime__V1__LinuxSandboxSecurityContext *sc, const struct ctr_lsm *lsm,
		      struct cric_err *err);

/* selinux_relabel of a container's mounts, as containerd and CRI-O do it:
 * where SELinux is absent, nothing (both peers' relabel is a no-op
 * there); where it is present, the host path and everything under it get
 * the container's mount label (plan->mount_label, or
 * CTR_SELINUX_FILE_DEFAULT when the container asks no label), private to
 * it as with the "Z" volume option. The node's system directories ("/",
 * "/usr", "/etc", ...) are never relabelled: -EINVAL naming the mount.
 * ret has room for cfg->n_mounts; host_paths[i] is mounts[i]'s resolved
 * host path (ctr_plan_in.host_paths). Pure. */
#define CTR_SELINUX_FILE_DEFAULT "system_u:object_r:container_file_t:s0"
struct ctr_relabel {
	const char *path;
	char label[CTR_LSM_LABEL_MAX];
};
int ctr_lsm_plan_relabels(const Runtime__V1__ContainerConfig *cfg, char *const *host_paths,
			  const struct ctr_lsm *lsm, const struct ctr_lsm_plan *plan,
			  struct ctr_relabel *ret, size_t *n, struct cric_err *err);

/* Do one relabel: lsetxattr("security.selinux") on path and every file
 * under it on the same filesystem, symlinks not followed; a filesystem
 * without labels (ENOTSUP) is skipped, as the peers do. I/O. */
int ctr_lsm_relabel(const struct ctr_relabel *rl, struct cric_err *err);
