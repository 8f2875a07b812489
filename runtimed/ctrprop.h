/* Mount propagation of container mounts: the host side.
 *
 * A HOST_TO_CONTAINER (rslave) mount only sees what the host mounts below
 * host_path later when the host mount holding host_path is shared (or a
 * slave itself, which then passes on what its master gets); a
 * BIDIRECTIONAL (rshared) one also needs it shared for the container's
 * mounts to reach the host. runtimed checks this and refuses otherwise
 * (-EINVAL naming the mount and the host mount point): it never changes
 * the propagation of a host mount it does not own, which would change it
 * for everything else mounted there. The kubelet makes its root directory
 * rshared itself, as it does for CRI-O and containerd, which refuse the
 * same way. runtimed shares the host's mount namespace (its unit has
 * PrivateMounts=no), so its /proc/self/mountinfo is the host's. */
#pragma once

#include <stddef.h>

#include "common/error.h"
#include "proto/cri/api.pb-c.h"

#define MNT_PROP_SHARED 1
#define MNT_PROP_SLAVE  2

/* Pure: in mountinfo (the text of /proc/<pid>/mountinfo), the mount that
 * holds path (absolute, symlinks resolved): the last listed one whose
 * mount point is path or a parent of it. Its propagation as MNT_PROP_*
 * bits (0: private), its mount point into mnt. -ENOENT when no line
 * parses to one. */
int mountinfo_propagation(const char *mountinfo, const char *path, char *mnt, size_t mnt_size);

/* For each of cfg->mounts asking HOST_TO_CONTAINER or BIDIRECTIONAL, the
 * host mount of host_paths[i] (as the plan gets them) must propagate:
 * shared, or (HOST_TO_CONTAINER only) a slave. -EINVAL naming the mount
 * when not. */
int ctr_check_propagation(const Runtime__V1__ContainerConfig *cfg, char *const *host_paths,
			  struct cric_err *err);
