/* A container's resources (CRI LinuxContainerResources) for
 * UpdateContainerResources: checking, merging onto what the container has,
 * and the OCI form `runc update -r` reads. Pure: no I/O, unit-tested
 * (tests/unit/test-runtimed-ctrres.c).
 *
 * Merging follows containerd: a field the update leaves at zero (or empty)
 * keeps its current value; unified keys are merged by name. oom_score_adj
 * is checked but keeps its value from creation: `runc update` cannot change
 * it (containerd records it unapplied; we report what is in effect). */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "proto/cri/api.pb-c.h"

/* "0-3,5,7-8": ranges in increasing order, each number below 8192. */
bool ctr_cpuset_valid(const char *s);

/* A hugepage size as the kubelet names it ("2MB", "1GB", "64KB": a power
 * of two) in KiB. */
bool ctr_hugepage_kb(const char *s, uint64_t *kb);

/* -EINVAL with what is wrong: negative or out-of-range numbers, a bad
 * cpuset list, a hugepage size that is not one or given twice, unified keys on a
 * host without cgroup v2 or keys that are not "<controller>.<file>". */
int ctr_res_check(const Runtime__V1__LinuxContainerResources *r, bool cgroup_v2,
		  struct cric_err *err);

/* old (NULL: none) with upd's set fields over it into *ret (a new message,
 * free with protobuf_c_message_free_unpacked). When upd sets a memory
 * limit and no swap limit while old's swap equalled its memory limit (no
 * swap allowed), the swap limit follows the new memory limit. */
int ctr_res_merge(const Runtime__V1__LinuxContainerResources *old,
		  const Runtime__V1__LinuxContainerResources *upd,
		  Runtime__V1__LinuxContainerResources **ret);

/* The OCI runtime spec's linux.resources object for r (only what is set). */
json_t *ctr_res_oci(const Runtime__V1__LinuxContainerResources *r);
