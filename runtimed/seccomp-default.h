/* Seccomp for a container: which profile the CRI fields ask for, and the
 * built-in RuntimeDefault profile as an OCI `linux.seccomp` object (runc
 * compiles it with libseccomp). Pure: no I/O.
 *
 * RuntimeDefault is the allow-list profile the other runtimes ship (moby's
 * default profile; containerd and CRI-O ship the same semantics), written
 * here as our own data in seccomp-default.c:
 *  - default action: SCMP_ACT_ERRNO with EPERM (defaultErrnoRet 1);
 *  - an allow list of ordinary syscalls (files, processes, memory, signals,
 *    time, sockets, SysV/POSIX IPC, ...), with arguments checked where the
 *    call is only partly safe: socket() but not AF_VSOCK, personality() only
 *    the harmless personas;
 *  - a container without CAP_SYS_ADMIN: clone() and unshare() only without
 *    namespace flags (CLONE_NEWNS, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET,
 *    NEWCGROUP; NEWTIME for unshare), and clone3() answers ENOSYS, not
 *    EPERM, because seccomp cannot look into clone3's argument structure
 *    and glibc falls back to clone() only on ENOSYS (so threads still start);
 *  - syscalls gated on a capability are allowed only when the container's
 *    bounding set holds it (mount, setns, sethostname... with CAP_SYS_ADMIN;
 *    ptrace's relatives kcmp, pidfd_getfd, process_madvise with
 *    CAP_SYS_PTRACE; the module calls with CAP_SYS_MODULE; settimeofday and
 *    clock_settime with CAP_SYS_TIME; reboot with CAP_SYS_BOOT; ...);
 *  - left out on purpose: io_uring_* (outside seccomp's view of the calls it
 *    performs, and a rich kernel attack surface: moby and containerd removed
 *    it from their defaults too), keyctl/add_key/request_key (keys are not
 *    namespaced), userfaultfd, kexec_*, swapon/swapoff, and everything else
 *    not listed;
 *  - architectures: the native one plus its compat ABIs (x86_64: X86_64,
 *    X86, X32; aarch64: AARCH64, ARM), and the arch-only calls of that
 *    family (arch_prctl, modify_ldt; arm's cacheflush, set_tls, ...).
 * Syscall names this libseccomp may not know yet (newer kernels) are listed
 * in ctr_seccomp_newer_syscalls; runc skips names its libseccomp cannot
 * resolve, so they cost nothing on an older stack.
 *
 * Use (the container spec builder), after ctr_caps_resolve():
 *     r = ctr_seccomp_kind(sc->seccomp, sc->seccomp_profile_path,
 *                          sc->privileged, &kind, &ref, err);
 *     RUNTIME_DEFAULT: ctr_seccomp_default(caps.bounding, NULL, &j, err),
 *                      then set it as linux.seccomp;
 *     UNCONFINED:      no linux.seccomp at all;
 *     LOCALHOST:       the Localhost profile loader (refuse until it exists).
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "proto/cri/api.pb-c.h"

enum ctr_seccomp_kind {
	CTR_SECCOMP_UNCONFINED,
	CTR_SECCOMP_RUNTIME_DEFAULT,
	CTR_SECCOMP_LOCALHOST, /* a profile file: the security issue's part */
};

/* Which profile a container gets:
 *  - privileged: UNCONFINED whatever the fields say;
 *  - `profile` present: its type; a present but empty message is
 *    RuntimeDefault (the enum's value 0); LOCALHOST needs a non-empty
 *    localhost_ref, returned in *localhost_ref (points into the request);
 *  - `profile` absent: the deprecated `seccomp_profile_path` string:
 *    "runtime/default" and "docker/default" -> RUNTIME_DEFAULT,
 *    "localhost/<path>" -> LOCALHOST (<path>), "unconfined" or "" ->
 *    UNCONFINED. So a direct client that sends no seccomp message at all
 *    gets no filter, as with containerd; the kubelet always sends one.
 * Anything else -> -EINVAL naming the field. */
int ctr_seccomp_kind(const Runtime__V1__SecurityProfile *profile, const char *deprecated_path,
		     bool privileged, enum ctr_seccomp_kind *kind, const char **localhost_ref,
		     struct cric_err *err);

/* The RuntimeDefault profile for a container whose bounding set is `caps`
 * (bit n = capability n: struct ctr_caps.bounding), for a machine as
 * uname -m names it ("x86_64", "aarch64"; NULL = the one this was built
 * for). -EOPNOTSUPP for another machine; -ENOMEM. *out written on success. */
int ctr_seccomp_default(uint64_t caps, const char *machine, json_t **out, struct cric_err *err);

/* Syscalls in the profile that a libseccomp older than the kernel may not
 * know (with the kernel version that added each in the source); NULL
 * terminated. For the unit test that resolves every name. */
extern const char *const ctr_seccomp_newer_syscalls[];
