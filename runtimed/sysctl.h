/* Pod sysctls (PodSandboxConfig.linux.sysctls).
 *
 * Only namespaced sysctls are accepted, as the kubelet defines them: the
 * IPC namespace's kernel.shm*, kernel.msg*, kernel.sem and fs.mqueue.*, and
 * the network namespace's net.*. A name is dotted ("net.ipv4.ip_forward")
 * or, when it contains a '/', slashed ("net/ipv4/conf/eth0.100/forwarding",
 * where dots are part of names). The value is written into the pod's pinned
 * namespace under /proc/sys, resolved beneath /proc/sys (no symlink or ".."
 * may lead elsewhere).
 */
#pragma once

#include <stddef.h>

#include "common/error.h"

enum sysctl_ns {
	SYSCTL_NS_IPC = 1,
	SYSCTL_NS_NET = 2,
};

#define SYSCTL_NAME_MAX  256
#define SYSCTL_VALUE_MAX 4096

/* Check name and value; fill path (relative to /proc/sys, slash-separated)
 * and the namespace it belongs to. -EINVAL with the reason. */
int sysctl_parse(const char *name, const char *value, char *path, size_t size, enum sysctl_ns *ns,
		 struct cric_err *err);

/* Write value to /proc/sys/<path> as seen by the calling thread (which has
 * joined the pod's namespace). */
int sysctl_write(const char *path, const char *value, struct cric_err *err);
