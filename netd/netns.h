/* Pinned network namespaces (what CRI-O's pinns does, without a helper
 * process).
 *
 * A pod's network namespace lives as long as a bind mount of it exists: the
 * "pin", a file <run_dir>/netd/netns/<pod id> on which the namespace's nsfs
 * file is mounted. Whoever has the path can setns() into it (runc, plugins,
 * nsenter --net=<pin>).
 *
 * netd is multi-threaded, so a namespace is never made by forking: a
 * dedicated short-lived thread unshares its own network namespace, brings
 * loopback up in it, bind-mounts /proc/thread-self/ns/net onto the pin and
 * exits. No other thread's namespace changes.
 *
 * The mount is made in netd's mount namespace, which must be the host's
 * (cric-netd.service has no private mounts) so that runtimed and runc see it.
 */
#pragma once

#include <stdbool.h>

#include "common/error.h"

/* Create a new network namespace with "lo" up and pin it at pin_path (a new
 * file; its directory must exist). Blocks until done (a few ms). -EEXIST if
 * pin_path exists. On failure nothing is left (no file, no mount). */
int netns_create(const char *pin_path, struct cric_err *err);

/* Unpin: detach every mount stacked on pin_path (MNT_DETACH: a process still
 * inside keeps the namespace alive until it leaves) and unlink the file. A
 * missing pin, or a plain file that is not mounted, is fine: idempotent. */
int netns_remove(const char *pin_path, struct cric_err *err);

/* True when pin_path is a mounted network namespace (an nsfs file). */
bool netns_is_pinned(const char *pin_path);
