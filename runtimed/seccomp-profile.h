/* Seccomp Localhost profiles: a Docker/OCI-format JSON file on the node
 * (the kubelet's <root-dir>/seccomp/<name>, or any absolute path a direct
 * client names) turned into the OCI `linux.seccomp` object runc applies.
 *
 * The file is hostile input: whoever can create a pod names any path on
 * the node. So:
 *  - ctr_seccomp_profile_read() (I/O) takes a regular file of at most
 *    CTR_SECCOMP_PROFILE_MAX bytes (symlinks are followed: the kubelet's
 *    root-dir may hold some; what they lead to must be a regular file) and
 *    parses it as JSON;
 *  - ctr_seccomp_profile_build() (pure but for libseccomp) checks every
 *    field, applies `includes`/`excludes` (caps: every included one in the
 *    container's bounding set, none of the excluded; arches: the Docker
 *    name of this machine, "amd64"/"arm64"; minKernel: "<major>.<minor>"
 *    against the host kernel), picks `architectures` or the `archMap`
 *    entry of this machine with its sub-architectures, and compiles the
 *    result with libseccomp, as runc will, so a profile that runc would
 *    refuse is refused here first. Syscall names libseccomp does not know
 *    are refused, except the newer ones of ctr_seccomp_newer_syscalls
 *    (copied Docker profiles list them; runc skips what it cannot
 *    resolve).
 * Every error is -EINVAL (-ENOMEM aside), prefixed with the file's path
 * and naming the field ("syscalls[3].action"), never quoting the file's
 * contents: an error message would otherwise read any file on the node.
 *
 * Bounds: CTR_SECCOMP_MAX_RULES syscall rules, CTR_SECCOMP_MAX_NAMES
 * names in all, 6 args a rule, 16 architectures. */
#pragma once

#include <jansson.h>
#include <stdint.h>

#include "common/error.h"

#define CTR_SECCOMP_PROFILE_MAX (1024 * 1024)
#define CTR_SECCOMP_MAX_RULES   4096
#define CTR_SECCOMP_MAX_NAMES   16384

/* The machine a profile is built for. */
struct ctr_seccomp_host {
	const char *machine; /* uname -m: "x86_64", "aarch64"; NULL: this build's */
	int kernel_major, kernel_minor;
};

/* Fill host from uname(2). */
void ctr_seccomp_host_detect(struct ctr_seccomp_host *host);

/* Read and parse the profile at path (absolute). -ENOENT, -EACCES...
 * for a file that cannot be opened, -EINVAL for a non-regular file, one
 * too large or not JSON; err says which, naming path. */
int ctr_seccomp_profile_read(const char *path, json_t **ret, struct cric_err *err);

/* The OCI linux.seccomp object of the parsed profile doc (from the file
 * `path`, for messages) for a container whose bounding set is caps. */
int ctr_seccomp_profile_build(const json_t *doc, const char *path, uint64_t caps,
			      const struct ctr_seccomp_host *host, json_t **out,
			      struct cric_err *err);
