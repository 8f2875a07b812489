/* The shape every cric daemon shares (systemd's daemons: thin main.c).
 *
 * daemon_main() parses --root/--config/--log-level, loads the config, creates
 * the daemon's directories (<state_dir>/<name>, <run_dir>/<name>, ipc_dir),
 * drops to the declared capability set while the process is still single
 * threaded, checks the table of desc->services (service.h), calls desc->init
 * to build the daemon's manager, serves desc->services on
 * <ipc_dir>/<name>.sock, notifies systemd (READY=1), and then waits for
 * signals: SIGHUP reloads the config (log level, then desc->reload if the
 * daemon has one: without it only the log level changes), SIGTERM
 * and SIGINT stop gracefully (requests in progress finish, desc->done runs).
 * Returns the process exit status.
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>
#include <sys/capability.h>

#include "config.h"
#include "ipc.h"
#include "service.h"

#include "cric_version.h" /* generated: CRIC_VERSION */

struct cric_daemon_desc {
	const char *name; /* "runtimed": unit, socket and directory name */
	const cap_value_t *caps;
	size_t n_caps;
	bool all_caps;                       /* keep what we were given (runtimed, monitord) */
	bool no_new_privs;                   /* for daemons that never exec anything privileged */
	const struct cric_service *services; /* cric.Health is always served */
	size_t n_services;
	/* Build the manager; *userdata goes to every handler. cfg stays valid
	 * until done() returns. May be NULL. */
	int (*init)(const struct cric_config *cfg, void **userdata, struct cric_err *err);
	/* New config after SIGHUP; the daemon copies what it needs (cfg is
	 * freed afterwards). Returning an error keeps the old settings. */
	int (*reload)(void *userdata, const struct cric_config *cfg, struct cric_err *err);
	/* Asked to stop, before the server waits for the handlers in
	 * progress: end long waits (may be NULL). */
	void (*stopping)(void *userdata);
	void (*done)(void *userdata);
	/* A cric.Cancel marked calls cancelled: wake the manager's waits (see
	 * cric_server_config.cancelled). May be NULL. */
	void (*cancelled)(void *userdata);
};

int daemon_main(const struct cric_daemon_desc *desc, int argc, char **argv);

/* How a daemon runs. cri-gateway and imaged run as their own users
 * (config: gateway_user, imaged_user); the others as root. A daemon started
 * as root sets up what its user needs and becomes it; one started as its
 * user (systemd's User=) finds that done by the units and tmpfiles.d. */
struct daemon_identity {
	bool as_user;
	uid_t uid;
	gid_t gid;
	gid_t group; /* group cric, supplementary; (gid_t)-1 none */
	/* Where the daemon listens: for a root daemon public_path; for one
	 * that runs as its user <run_dir>/<name>/<sock_name>, and public_path
	 * (in a directory only root may write) is a root-made symlink to it. */
	char listen_path[108];
};

enum {
	/* Group cric may call the daemon: its socket directory (when it runs
	 * as its user) is 02750 in group cric, else 0700. Not the gateway,
	 * whose CRI socket is root's (the kubelet's) only: group cric holds
	 * imaged. */
	DAEMON_SOCKET_FOR_GROUP = 1 << 0,
	/* It keeps no state: no <state_dir>/<name> (the gateway; its unit has
	 * no StateDirectory= and a read-only /var). */
	DAEMON_NO_STATE = 1 << 1,
};

/* Create the daemon's directories: ipc_dir (02750 root:cric), its state dir
 * (0700) and run dir (0700, or see DAEMON_SOCKET_FOR_GROUP), owned by the
 * daemon's user; put the link at public_path; become the user. Call before
 * any thread exists, then caps_restrict(). */
int daemon_identity_setup(const struct cric_config *cfg, const char *name, const char *sock_name,
			  const char *public_path, unsigned flags, struct daemon_identity *ret,
			  struct cric_err *err);

/* Parsed command line shared with cri-gateway's own main. */
struct daemon_args {
	const char *root;
	const char *config;
	const char *log_level;
};
/* Returns 1 to go on, 0 to exit successfully (--help/--version), <0 on error. */
int daemon_parse_args(const char *name, int argc, char **argv, struct daemon_args *a);
/* What every daemon (and cri-gateway) does first: open the log as ident,
 * parse the arguments, load the config and apply its log level (unless
 * --log-level overrides it). Returns -1 to go on with *ret set, else the exit
 * status to return (0 after --help/--version). */
int daemon_prepare(const char *name, const char *ident, int argc, char **argv,
		   struct daemon_args *a, struct cric_config **ret);
/* SIGHUP's shared part: tell systemd we reload, re-read the config and apply
 * its log level. Returns the new config (the caller frees it, then calls
 * daemon_reload_done()), or NULL after logging why the running one stays. */
struct cric_config *daemon_reload_begin(const struct daemon_args *a);
void daemon_reload_done(void);
/* Block the signals daemon_wait_signals() handles, ignore SIGPIPE. Call
 * before any thread is created. */
void daemon_block_signals(void);
/* Wait for SIGTERM/SIGINT (returns) or SIGHUP (calls on_hup, waits again). */
void daemon_wait_signals(void (*on_hup)(void *arg), void *arg);
