/* Port-forward's connection into a pod (the streaming server's PortForward):
 * through the cric-portfwd helper (monitord/portfwd/portfwd.h), so that no
 * thread of the caller ever enters a pod's namespace.
 *
 * Thread-safe; blocks the calling thread for the helper's run (the connect
 * is bounded: PORTFWD_CONNECT_TIMEOUT_MS, and the helper is killed if it
 * has not answered within twice that). The caller must be privileged
 * enough for the helper to enter the namespace (root, or CAP_SYS_ADMIN).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* A TCP connection to port on the loopback of the network namespace pinned
 * at netns (NULL: the host's, for host-network pods), made by the helper
 * binary at helper: the connected socket (blocking, O_CLOEXEC), or a
 * negative errno with why filled ("connect to 127.0.0.1:8080 or [::1]:8080
 * in the pod: Connection refused"): -ECONNREFUSED (nothing listens),
 * -ETIMEDOUT, -ENOENT (no such namespace), -EINVAL (bad port, a path that
 * is not absolute or not a network namespace), -EPROTO (the helper failed
 * without saying why). */
int portfwd_connect(const char *helper, const char *netns, uint16_t port, char *why,
		    size_t why_size);

/* cric-portfwd beside the running binary (as the daemons are installed):
 * malloc'd, NULL on OOM. */
char *portfwd_helper_default(void);
