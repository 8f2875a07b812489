#include "caps.h"

#include <errno.h>
#include <string.h>
#include <grp.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "cleanup.h"

static bool in_set(cap_value_t c, const cap_value_t *keep, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (keep[i] == c)
			return true;
	return false;
}

int caps_restrict(const cap_value_t *keep, size_t n, bool all, bool no_new_privs,
		  struct cric_err *err)
{
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return err_set(err, -errno, "clear ambient capabilities: %s", strerror(errno));

	_cleanup_cap_ cap_t cur = cap_get_proc();
	if (!cur)
		return err_set(err, -errno, "read capabilities: %s", strerror(errno));
	if (cap_clear_flag(cur, CAP_INHERITABLE) < 0)
		return err_set(err, -errno, "clear inheritable: %s", strerror(errno));

	if (!all) {
		/* The bounding set first: dropping from it needs CAP_SETPCAP,
		 * which the next step may remove from the effective set. */
		for (cap_value_t c = 0; c < (cap_value_t)cap_max_bits(); c++) {
			/* Already gone (e.g. a unit's CapabilityBoundingSet=):
			 * nothing to do, and dropping it again would need
			 * CAP_SETPCAP, which such a unit does not grant. */
			if (in_set(c, keep, n) || cap_get_bound(c) == 0)
				continue;
			if (cap_drop_bound(c) < 0 && errno != EINVAL)
				return err_set(err, -errno, "drop %s from bounding set: %s",
					       cap_to_name(c), strerror(errno));
		}
		if (cap_clear_flag(cur, CAP_EFFECTIVE) < 0 ||
		    cap_clear_flag(cur, CAP_PERMITTED) < 0)
			return err_set(err, -errno, "clear capabilities: %s", strerror(errno));
		if (n > 0 && (cap_set_flag(cur, CAP_PERMITTED, (int)n, keep, CAP_SET) < 0 ||
			      cap_set_flag(cur, CAP_EFFECTIVE, (int)n, keep, CAP_SET) < 0))
			return err_set(err, -errno, "set capabilities: %s", strerror(errno));
	}
	if (cap_set_proc(cur) < 0)
		return err_set(err, -errno, "apply capabilities: %s", strerror(errno));
	if (no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return err_set(err, -errno, "set no_new_privs: %s", strerror(errno));
	return 0;
}

int caps_become_user(uid_t uid, gid_t gid, gid_t group, struct cric_err *err)
{
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		return err_set(err, -errno, "keep capabilities across setuid: %s", strerror(errno));
	gid_t groups[1] = { group };
	if (setgroups(group != (gid_t)-1 ? 1 : 0, groups) < 0)
		return err_set(err, -errno, "set supplementary groups: %s", strerror(errno));
	if (setresgid(gid, gid, gid) < 0)
		return err_set(err, -errno, "set group %ld: %s", (long)gid, strerror(errno));
	if (setresuid(uid, uid, uid) < 0)
		return err_set(err, -errno, "set user %ld: %s", (long)uid, strerror(errno));
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		return err_set(err, -errno, "reset keep-capabilities: %s", strerror(errno));
	/* setresuid() emptied the effective set: raise what is permitted for
	 * long enough for caps_restrict() to drop the bounding set. */
	_cleanup_cap_ cap_t cur = cap_get_proc();
	if (!cur || cap_fill(cur, CAP_EFFECTIVE, CAP_PERMITTED) < 0 || cap_set_proc(cur) < 0)
		return err_set(err, -errno, "raise capabilities: %s", strerror(errno));
	return 0;
}
