/* cric-portfwd: the privileged step of a port-forward, alone in a process.
 *
 * The streaming server needs a TCP connection to a port inside a pod's
 * network namespace. Entering a namespace takes CAP_SYS_ADMIN and, done by
 * a thread of a threaded daemon, leaves that thread in the pod; so a tiny
 * helper does it: monitord (or whoever holds the privilege) spawns
 *
 *   cric-portfwd --port N [--netns PATH]
 *
 * with fd 3 one end of a unix socketpair (SOCK_SEQPACKET). The helper
 * enters PATH (a pinned network namespace; none: the host's, for
 * host-network pods), connects to 127.0.0.1:N, or [::1]:N when that is
 * refused (as the peer runtimes do), and sends one message on fd 3:
 *   "ok"                      with the connected socket (SCM_RIGHTS), or
 *   "error <errno> <text>"    (errno a positive number, text for a human).
 * It exits 0 after "ok", 1 after "error", 2 for bad arguments. It holds
 * nothing afterwards: the socket lives on in the caller. libc only, static.
 */
#pragma once

#define PORTFWD_REPORT_FD 3
/* The longest a connect to the pod's loopback may take. */
#define PORTFWD_CONNECT_TIMEOUT_MS 5000
