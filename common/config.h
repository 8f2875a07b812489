/* Suite configuration: one JSON document shared by all daemons.
 *
 * Sources, later ones winning key by key (objects merge recursively):
 *   1. built-in defaults, with every path the suite owns (state, run dir,
 *      sockets, config, CNI conf dir) under --root if one is given; the
 *      CNI plugin bin dirs stay the system's (plugins are installed
 *      binaries, not suite state);
 *   2. the main file (default <root>/etc/cric/cric.json; optional unless
 *      named explicitly with --config);
 *   3. drop-ins <dir of main file>/cric.d/ *.json in lexical order.
 *
 * Known keys are type-checked (a wrong type fails the load with the file and
 * key named); unknown keys log a warning and are ignored. Daemon-specific
 * sections ("imaged", "runtimed", ...) stay available in config->doc.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#include "error.h"
#include "macro.h"

struct cric_config {
	char *root;        /* --root prefix, "" for none */
	char *config_file; /* the main file (may not exist) */
	char *state_dir;   /* persistent: <state_dir>/<daemon>/ */
	char *run_dir;     /* volatile: <run_dir>/<daemon>/ */
	char *ipc_dir;     /* internal nng sockets */
	char *cri_socket;  /* the CRI gRPC socket path */
	char *log_level;
	/* The users the unprivileged daemons run as and the group that may
	 * reach the daemons' sockets (peer.h). "" runs that daemon as root
	 * (development). A user or group that does not exist leaves its id
	 * -1: the daemon that must become it refuses to start. */
	char *gateway_user; /* default "cric-gateway" */
	char *imaged_user;  /* default "cric-imaged" */
	char *group;        /* default "cric" */
	uid_t gateway_uid;  /* -1: none */
	gid_t gateway_gid;  /* its primary group */
	uid_t imaged_uid;
	gid_t imaged_gid;
	gid_t group_gid;
	unsigned workers;             /* request workers per daemon */
	unsigned max_request_seconds; /* cap on a call without deadline */
	char *cgroup_manager;         /* "cgroupfs" or "systemd" */
	char *cni_conf_dir;
	char **cni_bin_dirs; /* NULL-terminated */
	json_t *doc;         /* the merged document */
};

/* root may be NULL or "" (no prefix); config_file NULL for the default. */
int config_load(const char *root, const char *config_file, struct cric_config **ret,
		struct cric_err *err);
struct cric_config *config_free(struct cric_config *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct cric_config *, config_free)

/* The error for a daemon's own config key of the wrong shape:
 * config "<file>": "<section>.<key>" must be <want>. Returns -EINVAL. */
int config_bad_key(const struct cric_config *c, const char *section, const char *key,
		   const char *want, struct cric_err *err);

/* The user a daemon runs as: for "gateway" and "imaged" their configured
 * user (uid and primary gid, (uid_t)-1 when none exists), true; for the others (root)
 * false. */
bool config_daemon_user(const struct cric_config *c, const char *daemon, uid_t *uid, gid_t *gid);
/* The uid a client of daemon accepts as the listener besides root: the
 * daemon's user, or (uid_t)-1 for a root daemon. */
uid_t config_daemon_peer_uid(const struct cric_config *c, const char *daemon);

/* "<ipc_dir>/<daemon>.sock" as an nng URL "ipc:///..."; malloc'd. */
char *config_ipc_url(const struct cric_config *c, const char *daemon);

/* imaged's staging dir, "<state_dir>/imaged/staging", where it downloads
 * blobs for stored to import: imaged creates it, stored finds it here (never
 * from a caller); malloc'd. */
char *config_staging_dir(const struct cric_config *c);
