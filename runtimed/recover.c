/* Recovery at start-up: every pod record back into the table; see
 * sandbox-int.h. A creation a killed runtimed left half-made is rolled
 * back; a pod whose network netd no longer has (a reboot unmounted the
 * pins) is NOTREADY, as netd says (runtimed never looks at netd's files). */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "common/log.h"
#include "names.h"
#include "records.h"
#include "sandbox-int.h"

struct recovery {
	struct sandbox_mgr *m;
	size_t kept, rolled;
	bool netd_down; /* asked once, unreachable: ask no more */
};

/* A half-made sandbox: undone (0) or, when that fails, kept NOTREADY. */
static int roll_back_interrupted(struct sandbox_mgr *m, struct sandbox *sb)
{
	struct cric_err e;
	log_set_pod(sb->id);
	int r = release_all(m, NULL, sb, &e);
	log_set_pod(NULL);
	if (r == 0) {
		record_delete(m, sb->id);
		log_notice("sandbox %s: rolled back a creation interrupted by a restart", sb->id);
		return 0;
	}
	log_error("sandbox %s: rollback of an interrupted creation failed, kept as NOTREADY: %s",
		  sb->id, e.msg);
	sb->state = SB_NOTREADY;
	record_save(m, sb);
	return r;
}

/* A READY pod with its own network: still READY only if netd has its
 * network in the namespace it was made in. */
static void check_network(struct recovery *rc, struct sandbox *sb)
{
	if (sb->state != SB_READY || sb->host_network || !sb->net_setup || rc->netd_down)
		return;
	char netns[PATH_MAX];
	struct cric_err e;
	int r = podnet_status(rc->m, NULL, sb->id, netns, sizeof(netns), &e);
	if (r < 0 && r != -ENOENT) {
		log_warning("sandbox %s: cannot ask netd about its network (%s), state kept; "
			    "not asking for the other pods",
			    sb->id, e.msg);
		rc->netd_down = true;
		return;
	}
	const char *why = r == -ENOENT                    ? "netd has no network for it"
			  : !*netns                       ? "its network namespace is gone"
			  : strcmp(netns, sb->netns) != 0 ? "netd moved its network namespace"
							  : NULL;
	if (!why) {
		sb->net_confirmed = true;
		return;
	}
	log_notice("sandbox %s: %s, now NOTREADY", sb->id, why);
	sb->state = SB_NOTREADY;
	record_save(rc->m, sb);
}

static void recover_one(void *userdata, const char *id, json_t *doc)
{
	struct recovery *rc = userdata;
	struct sandbox_mgr *m = rc->m;
	struct sandbox *sb = NULL;
	int r = sandbox_from_record(doc, &sb);
	if (r == 0 && strcmp(sb->id, id) != 0)
		r = -EINVAL;
	if (r < 0) {
		log_error_errno(r, "sandbox record %s unreadable, ignored", id);
		sandbox_free(sb);
		return;
	}
	bool broken = sb->state == SB_CREATING;
	/* Its record is not saved again when its network is asked for:
	 * netd may hold it (tearing down one netd never made is a no-op). */
	if (broken && !sb->host_network)
		sb->net_setup = true;
	if (broken && roll_back_interrupted(m, sb) == 0) {
		sandbox_free(sb);
		rc->rolled++;
		return;
	}
	check_network(rc, sb);
	/* Its name is its own again: a retry is answered with it, or (a
	 * creation that could not be undone) refused until it is removed. */
	char key[NAME_KEY_MAX + 1];
	sandbox_name_key(sb, key, sizeof(key));
	int k = name_hold(m->names, key, sb->id, !broken);
	if (k == 0 && (k = table_add(m, sb)) < 0)
		name_release(m->names, key, sb->id);
	if (k < 0) {
		log_error("sandbox %s: cannot take it back (its name is taken or out of memory), "
			  "ignored",
			  sb->id);
		sandbox_free(sb);
		return;
	}
	sb->refs = 1;
	rc->kept++;
}

void recover(struct sandbox_mgr *m)
{
	struct recovery rc = { .m = m };
	record_store_load_all(m->records, RECORD_MAX_BYTES, recover_one, &rc);
	log_info("%zu pod sandboxes recovered, %zu interrupted creations rolled back", rc.kept,
		 rc.rolled);
}
