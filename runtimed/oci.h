/* The OCI runtime (runc) as a program: run, kill, delete, state.
 *
 * Every invocation is bounded (OCI_TIMEOUT_MS), gets a fixed small
 * environment (no NOTIFY_SOCKET: runc would speak to systemd for the
 * container), and a state root of its own per handler (runc --root), so
 * suites and other runtimes on the host never see each other's containers.
 * Errors carry runc's own message. */
#pragma once

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#include "common/error.h"

#define OCI_TIMEOUT_MS 60000

/* A runtime handler: RunPodSandboxRequest.runtime_handler names one. */
struct oci_handler {
	char name[64];
	char path[PATH_MAX]; /* the runtime binary */
	char root[PATH_MAX]; /* its --root */
	bool systemd_cgroup; /* --systemd-cgroup */
	/* `features` says it has id-mapped mounts (runc >= 1.2), what a pod
	 * of its own user namespace needs; found by oci_detect_features(). */
	bool idmap_mounts;
	/* `features` lists the user namespace: it runs a container in a new
	 * one with linux.uidMappings/gidMappings (runc 1.1 does). */
	bool userns;
	/* Pods of their own user namespace work end to end: userns, and this
	 * kernel id-maps mounts of cric's file systems (runtimed probes its
	 * own at start; cric makes the id-mapped mounts itself, so the
	 * handler's idmap_mounts is not needed). Set by runtimed, reported as
	 * RuntimeHandlerFeatures.user_namespaces. Only with the config key
	 * runtimed.userns_pods not false. */
	bool userns_pods;
	/* The handler and kernel could (userns_pods but for the config key),
	 * and runtimed.userns_pods is false: said in the refusal. */
	bool userns_pods_off;
};

/* Ask the handler what it supports (`runc features`, which runc 1.1
 * added) and set what is known of it; a handler that cannot say is taken
 * to support none of it. -errno with err when it could not be asked. */
int oci_detect_features(struct oci_handler *h, struct cric_err *err);
/* From `runc features` JSON: linux.mountExtensions.idmap.enabled. */
bool oci_features_idmap(const json_t *features);
/* From `runc features` JSON: "user" in linux.namespaces. */
bool oci_features_userns(const json_t *features);

/* runc run --detach: create and start the container of bundle; its init's
 * pid in *pid. runc's log goes to <bundle>/runc.log. */
int oci_run_detached(const struct oci_handler *h, const char *id, const char *bundle, pid_t *pid,
		     struct cric_err *err);
/* runc start: run the created container's process. runc's log goes to
 * <bundle>/runc-start.log. */
int oci_start(const struct oci_handler *h, const char *id, const char *bundle,
	      struct cric_err *err);
/* runc update -r <bundle>/update.json: set the container's cgroup limits
 * to resources (an OCI linux.resources object). runc's refusal (say, a
 * memory limit below what the container uses: -EBUSY) carries its
 * message. */
int oci_update(const struct oci_handler *h, const char *id, const char *bundle,
	       const json_t *resources, struct cric_err *err);
/* Whether criu, which runc checkpoint runs, is on runc's PATH. */
bool oci_criu_installed(void);
/* runc checkpoint --leave-running of the running container id: CRIU's
 * images into <work_dir>/checkpoint, its log at <work_dir>/dump.log. The
 * container keeps running. Without criu: -ENOPKG naming the package.
 * Bounded by timeout_ms: then runc and CRIU are killed, the container is
 * thawed, -ETIMEDOUT. A refusal carries runc's message and CRIU's errors. */
int oci_checkpoint(const struct oci_handler *h, const char *id, const char *work_dir,
		   unsigned timeout_ms, struct cric_err *err);
/* runc delete --force: idempotent (an unknown id is fine). */
int oci_delete(const struct oci_handler *h, const char *id, struct cric_err *err);

/* The message of the last "error" or "fatal" line of runc's JSON log at
 * log_path into buf, else fallback; thread-safe. */
void oci_last_error(const char *log_path, const char *fallback, char *buf, size_t size);

/* want (clamped to -1000..1000), or the lowest value this host lets us give
 * what we start when that is higher (without CAP_SYS_RESOURCE: our own
 * oom_score_adj; a negative value then makes runc fail), logged. */
int oci_oom_score_adj(int want);

/* A process's start time (clock ticks since boot, /proc/<pid>/stat field
 * 22), 0 if it is gone. Pairs with a pid to survive pid reuse. */
unsigned long long proc_start_time(pid_t pid);
/* True when pid runs (not a zombie) and started at start_time. */
bool proc_alive(pid_t pid, unsigned long long start_time);
/* SIGKILL the process pid that started at start_time and wait up to
 * timeout_ms for it to exit (exited: a zombie counts; it need not be our
 * child). 0 when it is gone, or was already; -ETIMEDOUT; -errno. Through a
 * pidfd, so a reused pid is never signalled. */
int proc_kill_wait(pid_t pid, unsigned long long start_time, int timeout_ms);
/* The same with any signal: sent to the process, then up to timeout_ms for
 * it to exit. */
int proc_signal_wait(pid_t pid, unsigned long long start_time, int sig, int timeout_ms);
