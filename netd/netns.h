/* Pod network namespaces: pinned namespaces (common/nspin.h) with loopback
 * up, at <run_dir>/netd/netns/<pod id>. */
#pragma once

#include <stdbool.h>

#include "common/error.h"

/* Create a new network namespace with "lo" up and pin it at pin_path (a new
 * file; its directory must exist). Blocks until done (a few ms). -EEXIST if
 * pin_path exists. On failure nothing is left (no file, no mount). */
int netns_create(const char *pin_path, struct cric_err *err);

/* As netns_create, inside a new user namespace of the mapping u, pinned
 * at user_pin (a new file): the network namespace is that user
 * namespace's. On failure nothing is left. */
struct pod_userns;
int netns_create_userns(const char *user_pin, const char *pin_path, const struct pod_userns *u,
			struct cric_err *err);

/* Unpin: detach every mount stacked on pin_path (MNT_DETACH: a process still
 * inside keeps the namespace alive until it leaves) and unlink the file. A
 * missing pin, or a plain file that is not mounted, is fine: idempotent. */
int netns_remove(const char *pin_path, struct cric_err *err);

/* True when pin_path is a mounted network namespace (an nsfs file). */
bool netns_is_pinned(const char *pin_path);
