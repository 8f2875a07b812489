/* monitord's manager: the per-container monitors (cric-monitor,
 * monitord/monitor/monitor.h), one directory each under
 * <run_dir>/monitord/<container id>/ holding the monitor's pid file,
 * control socket, the container's pid file, the exit record and the
 * monitor's own log.
 *
 * The manager keeps no table: the directories are the state, read on each
 * call, so a restarted monitord has adopted every running monitor before
 * its first call (monitors_open() logs what it finds). A monitor is alive
 * when the pid in its pid file runs (not a zombie) the cric-monitor binary.
 *
 * Calls on one container id are serialised (a second waits for the first);
 * calls on different ids run in parallel. Every call blocks its thread for
 * at most its deadline (create) or a few seconds (the rest).
 *
 * Config, section "monitord":
 *   "monitor_binary": "<dir of cric-monitord>/cric-monitor"
 * and from runtimed's section, what a caller may name: runtime binaries
 * ("runtimes".*."path", or a runc in the usual places) and their state
 * roots ("runtimes".*."root", or anything under
 * <run_dir>/runtimed/runtimes/); bundles must lie under <run_dir>/runtimed/.
 */
#pragma once

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/config.h"
#include "common/error.h"

#define MONITORS_BUSY_MAX 256

struct monitors {
	char *dir;            /* <run_dir>/monitord */
	char *monitor_bin;    /* cric-monitor */
	char *runtimed_dir;   /* <run_dir>/runtimed: bundles lie under it */
	char *runtimes_dir;   /* <run_dir>/runtimed/runtimes: default roots */
	char **runtime_paths; /* configured runtime binaries */
	char **runtime_roots; /* configured runtime roots */
	struct stats *stats;  /* stats.h */
	struct pods *pods;    /* pods.h; main.c opens it */
	pthread_mutex_t lock; /* guards busy */
	pthread_cond_t idle;
	char busy[MONITORS_BUSY_MAX][65];
	struct execsync *exec;        /* ExecSync's settings (execsync.h) */
	struct stream_server *stream; /* the streaming server (stream/server.h) */
	struct metrics_http *metrics; /* /metrics (metrics-http.h); NULL: none */
};

struct monitor_spec {
	const char *id;
	const char *bundle;
	const char *runtime_path;
	const char *runtime_root;
	const char *log_path;
	const char *cgroup_parent;
	bool tty, open_stdin, stdin_once;
	bool restore; /* runc restore from <bundle>/restore, not create */
	uint64_t log_size_max;
	/* For stats (stats.h): pod_sandbox_id, name, attempt, labels,
	 * annotations, upper_dir; saved as attrs.json with the container's
	 * cgroup. NULL: none. */
	const json_t *attrs;
};

struct monitor_status {
	bool alive;
	bool exited;
	int exit_code;
	int64_t finished_at;
	bool oom_killed;
	pid_t monitor_pid;
	pid_t pid;
	const char *message; /* static */
};

int monitors_open(const struct cric_config *cfg, struct monitors **ret, struct cric_err *err);
/* Accepts NULL; running monitors are left running. */
void monitors_free(struct monitors *m);

/* Start the monitor, which creates the container; answers once it is
 * created (*pid its init, *monitor_pid the monitor) or fails leaving no
 * monitor and no directory. deadline_ns: absolute, CLOCK_REALTIME. A
 * monitor already running the created container answers its pids (a
 * replay); one still creating it (started by a monitord that died before it
 * answered): -EAGAIN (UNAVAILABLE: retry); an exit record: -EEXIST; the
 * files of a monitor that died are replaced. */
int monitors_create(struct monitors *m, const struct monitor_spec *spec, int64_t deadline_ns,
		    pid_t *pid, pid_t *monitor_pid, struct cric_err *err);
/* -ENOENT: no such monitor; -EBUSY (FAILED_PRECONDITION): the container is
 * not running; no file is created then. */
int monitors_reopen_log(struct monitors *m, const char *id, struct cric_err *err);
int monitors_status(struct monitors *m, const char *id, struct monitor_status *st,
		    struct cric_err *err);
/* The container whose monitor's id is prefix or starts with it (the CRI
 * accepts unique prefixes). -EINVAL: not hex, or more than one; -ENOENT:
 * none. */
int monitors_resolve(const struct monitors *m, const char *prefix, char id[65],
		     struct cric_err *err);
/* Stop the monitor (it kills the container's init if it still runs), wait
 * for it, remove its directory. Unknown ids succeed. */
int monitors_remove(struct monitors *m, const char *id, struct cric_err *err);

/* The checks of a CreateMonitor request (pure but for the config). */
int monitors_check_spec(const struct monitors *m, const struct monitor_spec *spec,
			struct cric_err *err);
