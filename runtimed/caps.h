/* A container's capabilities: the CRI `capabilities` / `privileged` fields
 * turned into the OCI `process.capabilities` object. Pure except
 * ctr_caps_host_grantable(), which reads this process's bounding set.
 * (common/caps.h is the other side: the daemons' own capability sets.)
 *
 * Sets are bit masks over capability numbers (bit n = capability n); the
 * kernel has 41 today, 64 bits leave room until libcap and the kernel grow
 * past CAP_LAST_CAP 63.
 *
 * The rules (what CRI-O's setupCapabilities and containerd's WithCapabilities
 * do, in this order):
 *  1. Start from the default set (configured; CRI-O's nine by default), or
 *     from nothing when "ALL" is in either list.
 *  2. "ALL" in add_capabilities: every capability the host can grant.
 *  3. "ALL" in drop_capabilities: nothing (after 2: drop ALL beats add ALL).
 *  4. Each named add, then each named drop: a capability both added and
 *     dropped is dropped. So drop ALL + add NET_BIND_SERVICE is exactly
 *     NET_BIND_SERVICE, and add ALL + drop NET_RAW is all but NET_RAW.
 *  5. add_ambient_capabilities (KEP-2763): each one is also added to the
 *     bounding, permitted, effective and inheritable sets (the kernel only
 *     raises an ambient capability that is permitted and inheritable), unless
 *     the drop list names it (drop still wins). "ALL" is refused there.
 *  privileged: every capability the host can grant; the lists are still
 *     validated (bad input is refused either way) but otherwise ignored, as
 *     both peer runtimes do.
 *
 * Names: "NET_ADMIN" as Kubernetes sends it, or "CAP_NET_ADMIN"; any case
 * (containerd upper-cases them too); "ALL" in any case. Anything else, a
 * number, an empty or overlong name -> -EINVAL naming the list and the name.
 * A capability the host cannot grant (this host lacks CAP_SYS_RESOURCE) that
 * a list or the defaults ask for -> -ENOPKG naming it: runc would fail on it
 * later, less clearly. "ALL" and privileged mean the grantable set, never a
 * fixed list.
 *
 * Which sets (and why):
 *  - bounding: the resolved set.
 *  - root (uid 0): effective = permitted = the resolved set.
 *  - any other uid: effective = permitted = the ambient set only. The kernel
 *    clears the permitted and effective sets of a non-root process at execve
 *    unless they are ambient (or the file has capabilities or is set-user-ID,
 *    which are bounded by the bounding set, not by these), so CRI-O and
 *    containerd, which write the full set there, end with exactly this after
 *    exec; writing it in the spec keeps the spec (and ContainerStatus'
 *    verbose info) true and leaves runc's process no capability between its
 *    setuid and the exec. "Non-root users get no effective capabilities
 *    unless asked", asked meaning add_ambient_capabilities.
 *  - inheritable: the ambient set only (empty otherwise: CVE-2022-24769, a
 *    file with inheritable file capabilities would otherwise gain them).
 *  - ambient: add_ambient_capabilities (empty unless asked, as in both peers).
 * Every list is in capability-number order, names "CAP_..." in upper case.
 *
 * Use: at start-up, grantable = ctr_caps_host_grantable() and defaults =
 * ctr_caps_mask_from_names(configured names or ctr_caps_default_names);
 * per container, ctr_caps_resolve() with the request's
 * linux.security_context.capabilities, privileged and whether the resolved
 * uid is 0, then process.capabilities = ctr_caps_to_oci(&caps), and
 * caps.bounding for the seccomp profile (seccomp-default.h).
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "proto/cri/api.pb-c.h"

/* More names than this in one list is refused (there are 41 capabilities). */
#define CTR_CAPS_MAX_NAMES 256

struct ctr_caps {
	uint64_t bounding, effective, permitted, inheritable, ambient;
};

/* CRI-O's default set: CHOWN, DAC_OVERRIDE, FSETID, FOWNER, SETGID, SETUID,
 * SETPCAP, NET_BIND_SERVICE, KILL (names as Kubernetes writes them). */
extern const char *const ctr_caps_default_names[];
extern const size_t ctr_caps_n_default_names;

/* One capability name (see above; "ALL" is not one) -> its number. */
int ctr_caps_from_name(const char *name, int *cap, struct cric_err *err);

/* A configured list of names (the default set) -> a mask; "ALL" refused.
 * what names the list in errors ("default_capabilities"). */
int ctr_caps_mask_from_names(const char *const *names, size_t n, const char *what, uint64_t *mask,
			     struct cric_err *err);

/* The capabilities this host can grant a container: those in this process's
 * bounding set that libcap can name (runc takes names). Reads the kernel
 * (prctl PR_CAPBSET_READ); call once at start-up. */
uint64_t ctr_caps_host_grantable(void);

struct ctr_caps_input {
	const Runtime__V1__Capability *req; /* NULL: no capabilities message */
	bool privileged;
	bool root;          /* the container process runs as uid 0 */
	uint64_t defaults;  /* ctr_caps_mask_from_names() of the configured set */
	uint64_t grantable; /* ctr_caps_host_grantable() */
};

/* Resolve the sets per the rules above. -EINVAL for a bad name or list,
 * -ENOPKG for a capability the host cannot grant; out is written only on
 * success. */
int ctr_caps_resolve(const struct ctr_caps_input *in, struct ctr_caps *out, struct cric_err *err);

/* The OCI process.capabilities object: {"bounding":[...], "effective":[...],
 * "permitted":[...], "inheritable":[...], "ambient":[...]}, each a (maybe
 * empty) array of "CAP_..." names. NULL only on allocation failure. */
json_t *ctr_caps_to_oci(const struct ctr_caps *c);

/* One set as a JSON array of names (for the above and for seccomp's tests). */
json_t *ctr_caps_names_json(uint64_t mask);
