/* Capability dropping (libcap). Capabilities are per thread: call
 * caps_restrict() before any thread exists (before nng or grpc start),
 * so every thread inherits the reduced sets. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/capability.h>
#include <sys/types.h>

#include "error.h"

/* Keep exactly `keep` (n entries) in the bounding, permitted and effective
 * sets; clear inheritable and ambient. With all=true, keep whatever the
 * process has (only inheritable/ambient are cleared). no_new_privs sets
 * PR_SET_NO_NEW_PRIVS as well. */
int caps_restrict(const cap_value_t *keep, size_t n, bool all, bool no_new_privs,
		  struct cric_err *err);

/* Become uid with primary group gid and the one supplementary group group
 * ((gid_t)-1: none), keeping the capabilities for the caps_restrict() call
 * that must follow (it drops the bounding set, which needs CAP_SETPCAP,
 * and then the rest: a non-root process keeps none). Needs root; call it
 * before any thread exists, like caps_restrict(). */
int caps_become_user(uid_t uid, gid_t gid, gid_t group, struct cric_err *err);
