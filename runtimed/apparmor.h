/* cric-default: the AppArmor profile of containers (and pod infras) that
 * ask for RuntimeDefault, or say nothing, on a host running AppArmor
 * (lsm.h). Written by cric, in the spirit of the peers' defaults: the
 * container keeps what its capabilities, namespaces and seccomp filter
 * allow, but mounts nothing, signals and traces only processes of this
 * profile (and takes signals from the unconfined runtime), writes no
 * kernel knob under /proc/sys or /sys (but the cgroup tree), and reads
 * none of the node's kernel views (/proc/kcore, kmsg, sysrq-trigger,
 * timer_list; /sys/firmware, /sys/kernel/{debug,security}).
 *
 * At start-up runtimed writes the profile to <run_dir>/apparmor/
 * cric-default and loads it with `apparmor_parser -r` when the module is
 * enabled (ctr_apparmor_should_load: /sys/module/apparmor/parameters/
 * enabled says Y and its securityfs is there, as lsm.h detects it); if the
 * parser is missing or refuses, RuntimeDefault keeps failing with
 * FAILED_PRECONDITION naming that reason (struct ctr_lsm.default_error)
 * rather than running the container unconfined. */
#pragma once

#include <stdbool.h>

#include "common/error.h"
#include "lsm.h"

#define CTR_APPARMOR_PARSER "/usr/sbin/apparmor_parser"

/* The profile's text (static). */
const char *ctr_apparmor_default_profile(void);

/* Whether runtimed loads the profile: AppArmor is enabled. Pure. */
bool ctr_apparmor_should_load(const struct ctr_lsm *lsm);

enum ctr_apparmor_mode {
	CTR_APPARMOR_CHECK, /* parse only (-Q -K): no kernel needed */
	CTR_APPARMOR_LOAD,  /* -r: load or replace it in the kernel */
};

/* Write the profile to <dir>/cric-default (dir created) and run parser
 * on it. -ENOENT when the parser is not there; -EINVAL when it refuses
 * (err quotes its first error line); -ETIMEDOUT. err names the parser. */
int ctr_apparmor_install(const char *parser, const char *dir, enum ctr_apparmor_mode mode,
			 struct cric_err *err);
