/* Pinned namespaces (what CRI-O's pinns does, without a helper process).
 *
 * A pod's network, IPC or UTS namespace lives as long as a bind mount of it
 * exists: the "pin", a file on which the namespace's nsfs file is mounted.
 * Whoever has the path can setns() into it (runc, CNI plugins,
 * nsenter --net=<pin>).
 *
 * The daemons are multi-threaded, so a namespace is never made by forking:
 * a dedicated short-lived thread unshares its own namespace, runs the
 * caller's setup in it (loopback up, hostname, sysctls), bind-mounts
 * /proc/thread-self/ns/<type> onto the pin and exits. No other thread's
 * namespaces change. The same trick joins a pinned namespace to change
 * something inside it (nspin_run_in).
 *
 * The mount is made in the caller's mount namespace, which must be the
 * host's (the units have no private mounts) so that runc sees it.
 */
#pragma once

#include <stdbool.h>

#include "error.h"
#include "idmap.h"

typedef int (*nspin_fn)(void *userdata, struct cric_err *err);

/* Create a namespace of type nstype (CLONE_NEWNET, CLONE_NEWIPC or
 * CLONE_NEWUTS), run setup (may be NULL) inside it, and pin it at pin_path
 * (a new file; its directory must exist). Blocks until done (a few ms).
 * -EEXIST if pin_path exists. On failure nothing is left (no file, no
 * mount). */
int nspin_create(int nstype, const char *pin_path, nspin_fn setup, void *userdata,
		 struct cric_err *err);

/* Unpin: detach every mount stacked on pin_path (MNT_DETACH: a process still
 * inside keeps the namespace alive until it leaves) and unlink the file. A
 * missing pin, or a plain file that is not mounted, is fine: idempotent. */
int nspin_remove(const char *pin_path, struct cric_err *err);

/* True when pin_path is a mounted namespace of type nstype (an nsfs file). */
bool nspin_is_pinned(const char *pin_path, int nstype);

/* Run fn on a short-lived thread that has joined the namespace pinned at
 * pin_path (of type nstype). -ENOENT/-EINVAL if it is not such a pin. */
int nspin_run_in(int nstype, const char *pin_path, nspin_fn fn, void *userdata,
		 struct cric_err *err);

/* A pod's own user namespace (uid/gid maps of container 0 -> host ids)
 * and, owned by it, a new namespace of type nstype (CLONE_NEWNET, ...):
 * both pinned (user_pin, pin: new files), setup (may be NULL) run inside
 * the second from a thread of the host user namespace (which may: it has
 * every capability over a child user namespace). Made by a short-lived
 * child process (a user namespace cannot be entered or made by a thread
 * of a multi-threaded process). Writing the maps takes CAP_SETUID and
 * CAP_SETGID. On failure nothing is left. */
int nspin_create_userns(const struct idmap_range *uid, const struct idmap_range *gid,
			const char *user_pin, int nstype, const char *pin, nspin_fn setup,
			void *userdata, struct cric_err *err);

/* A new namespace of type nstype owned by the user namespace pinned at
 * user_pin (so that a process of that user namespace may join it), setup
 * run inside, pinned at pin. Made by a short-lived child process that
 * joins the user namespace and unshares. On failure nothing is left. */
int nspin_create_owned(int nstype, const char *user_pin, const char *pin, nspin_fn setup,
		       void *userdata, struct cric_err *err);

/* Whether this kernel lets us make what a user-namespaced pod needs: a
 * user namespace with a network namespace of its own (as netd does), an
 * IPC namespace made inside it (as runtimed does), both joined from this
 * process. Pins under a scratch directory in dir, all removed. 0 or
 * -errno with err saying which step failed. */
int nspin_probe_userns(const char *dir, struct cric_err *err);
