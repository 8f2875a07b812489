#include "oci.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/spawn.h"

static char *const runc_env[] = {
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	NULL,
};

/* runc's last error from its JSON log (or the tail of its stderr). */
void oci_last_error(const char *log_path, const char *fallback, char *buf, size_t size)
{
	snprintf(buf, size, "%s", fallback ? fallback : "");
	_cleanup_free_ char *data = NULL;
	size_t len;
	if (log_path && read_file(log_path, 1024 * 1024, &data, &len) == 0) {
		/* strtok_r: runc runs for many requests at once. */
		char *save = NULL;
		for (char *line = strtok_r(data, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save)) {
			json_t *j = json_loads(line, 0, NULL);
			const char *lvl = json_string_value(json_object_get(j, "level"));
			const char *msg = json_string_value(json_object_get(j, "msg"));
			if (lvl && msg && (strcmp(lvl, "error") == 0 || strcmp(lvl, "fatal") == 0))
				snprintf(buf, size, "%s", msg);
			json_decref(j);
		}
	}
	for (size_t n = strlen(buf); n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ');)
		buf[--n] = '\0';
}

int oci_oom_score_adj(int want)
{
	if (want < -1000)
		want = -1000;
	if (want > 1000)
		want = 1000;
	/* Below our own value only with CAP_SYS_RESOURCE (the kernel checks
	 * the writer, runc, which has our capabilities). */
	_cleanup_cap_ cap_t caps = cap_get_proc();
	cap_flag_value_t v = CAP_CLEAR;
	if (caps && cap_get_flag(caps, CAP_SYS_RESOURCE, CAP_EFFECTIVE, &v) == 0 && v == CAP_SET)
		return want;
	_cleanup_free_ char *own = NULL;
	size_t len;
	int floor = 0;
	if (read_file("/proc/self/oom_score_adj", 64, &own, &len) == 0)
		floor = atoi(own);
	if (want >= floor)
		return want;
	log_info("oom_score_adj %d clamped to %d: without CAP_SYS_RESOURCE nothing we start may "
		 "go below our own",
		 want, floor);
	return floor;
}

/* Run the runtime with args after "<path> --root <root>" (and its cgroup
 * flag); *status is its exit status; stderr into errbuf. */
static int invoke_for(const struct oci_handler *h, const char *const *args, bool quiet,
		      const char *log_path, unsigned timeout_ms, int *status, char *errbuf,
		      size_t errsize, struct cric_err *err)
{
	const char *argv[24];
	size_t n = 0;
	argv[n++] = h->path;
	argv[n++] = "--root";
	argv[n++] = h->root;
	if (h->systemd_cgroup)
		argv[n++] = "--systemd-cgroup";
	if (log_path) {
		argv[n++] = "--log";
		argv[n++] = log_path;
		argv[n++] = "--log-format";
		argv[n++] = "json";
	}
	for (size_t i = 0; args[i] && n < ARRAY_SIZE(argv) - 1; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	const struct spawn_req x = {
		.path = h->path,
		.argv = (char *const *)argv,
		.env = runc_env,
		.timeout_ms = timeout_ms,
		.quiet = quiet,
	};
	_cleanup_(spawn_result_done) struct spawn_result res = { 0 };
	int r = spawn_run(&x, &res, err);
	if (r < 0)
		return err_prefix(err, r, "%s %s", h->path, args[0]);
	*status = res.status;
	oci_last_error(log_path, res.errout, errbuf, errsize);
	return 0;
}

static int invoke(const struct oci_handler *h, const char *const *args, bool quiet,
		  const char *log_path, int *status, char *errbuf, size_t errsize,
		  struct cric_err *err)
{
	return invoke_for(h, args, quiet, log_path, OCI_TIMEOUT_MS, status, errbuf, errsize, err);
}

static bool exited_ok(int status)
{
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

bool oci_features_idmap(const json_t *features)
{
	const json_t *ext = json_object_get(json_object_get(features, "linux"), "mountExtensions");
	return json_is_true(json_object_get(json_object_get(ext, "idmap"), "enabled"));
}

bool oci_features_userns(const json_t *features)
{
	const json_t *ns = json_object_get(json_object_get(features, "linux"), "namespaces");
	size_t i;
	const json_t *v;
	json_array_foreach (ns, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), "user") == 0)
			return true;
	return false;
}

int oci_detect_features(struct oci_handler *h, struct cric_err *err)
{
	h->idmap_mounts = false;
	h->userns = false;
	char *const argv[] = { h->path, "features", NULL };
	const struct spawn_req x = {
		.path = h->path,
		.argv = argv,
		.env = runc_env,
		.timeout_ms = 10000,
	};
	_cleanup_(spawn_result_done) struct spawn_result res = { 0 };
	int r = spawn_run(&x, &res, err);
	if (r < 0)
		return err_prefix(err, r, "%s features", h->path);
	if (!exited_ok(res.status))
		return err_set(err, -EIO, "%s features: %.200s", h->path, res.errout);
	json_error_t je;
	_cleanup_json_ json_t *doc = json_loadb(res.out, res.out_len, 0, &je);
	if (!doc)
		return err_set(err, -EIO, "%s features: not JSON", h->path);
	h->idmap_mounts = oci_features_idmap(doc);
	h->userns = oci_features_userns(doc);
	return 0;
}

static bool says_not_found(const char *msg)
{
	return strstr(msg, "does not exist") || strstr(msg, "not found") ||
	       strstr(msg, "no such file");
}

int oci_run_detached(const struct oci_handler *h, const char *id, const char *bundle, pid_t *pid,
		     struct cric_err *err)
{
	_cleanup_free_ char *log_path = path_join(bundle, "runc.log");
	_cleanup_free_ char *pid_path = path_join(bundle, "init.pid");
	if (!log_path || !pid_path)
		return -ENOMEM;
	unlink(pid_path);
	const char *args[] = { "run",        "--detach", "--bundle", bundle,
			       "--pid-file", pid_path,   id,         NULL };
	int status = 0;
	char msg[1024];
	int r = invoke(h, args, true, log_path, &status, msg, sizeof(msg), err);
	if (r < 0)
		return r;
	if (!exited_ok(status))
		return err_set(err, -EIO, "%s run: %s", h->name, msg[0] ? msg : "failed");
	_cleanup_free_ char *data = NULL;
	size_t len;
	r = read_file(pid_path, 64, &data, &len);
	long v = r == 0 ? strtol(data, NULL, 10) : 0;
	if (v <= 1)
		return err_set(err, -EIO, "%s run: no pid in \"%s\"", h->name, pid_path);
	*pid = (pid_t)v;
	return 0;
}

int oci_start(const struct oci_handler *h, const char *id, const char *bundle, struct cric_err *err)
{
	_cleanup_free_ char *log_path = path_join(bundle, "runc-start.log");
	if (!log_path)
		return -ENOMEM;
	const char *args[] = { "start", id, NULL };
	int status = 0;
	char msg[1024];
	int r = invoke(h, args, true, log_path, &status, msg, sizeof(msg), err);
	if (r < 0)
		return r;
	if (!exited_ok(status))
		return err_set(err, -EIO, "%s start: %s", h->name, msg[0] ? msg : "failed");
	return 0;
}

int oci_update(const struct oci_handler *h, const char *id, const char *bundle,
	       const json_t *resources, struct cric_err *err)
{
	_cleanup_free_ char *path = path_join(bundle, "update.json");
	_cleanup_free_ char *log_path = path_join(bundle, "runc-update.log");
	_cleanup_free_ char *doc = json_dumps(resources, JSON_COMPACT);
	if (!path || !log_path || !doc)
		return -ENOMEM;
	int r = write_file_volatile(path, doc, strlen(doc), 0600); /* the bundle: run dir */
	if (r < 0)
		return err_set(err, r, "write \"%s\": %s", path, strerror(-r));
	unlink(log_path);
	const char *args[] = { "update", "-r", path, id, NULL };
	int status = 0;
	char msg[1024];
	r = invoke(h, args, false, log_path, &status, msg, sizeof(msg), err);
	unlink(path);
	if (r < 0)
		return r;
	if (exited_ok(status))
		return 0;
	/* The kernel refuses a memory limit below the usage it cannot reclaim
	 * (EBUSY), values it cannot take (EINVAL, ERANGE: CPUs it lacks). */
	r = strstr(msg, "current usage") || strstr(msg, "device or resource busy") ? -EBUSY
	    : strstr(msg, "invalid argument") || strstr(msg, "out of range")       ? -EINVAL
										   : -EIO;
	return err_set(err, r, "%s update: %s", h->name, msg[0] ? msg : "failed");
}

int oci_delete(const struct oci_handler *h, const char *id, struct cric_err *err)
{
	const char *args[] = { "delete", "--force", id, NULL };
	int status = 0;
	char msg[1024];
	int r = invoke(h, args, false, NULL, &status, msg, sizeof(msg), err);
	if (r < 0)
		return r;
	if (exited_ok(status) || says_not_found(msg))
		return 0;
	return err_set(err, -EIO, "%s delete %s: %s", h->name, id, msg);
}

static int proc_stat(pid_t pid, char *state, unsigned long long *start)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	_cleanup_free_ char *data = NULL;
	size_t len;
	int r = read_file(path, 4096, &data, &len);
	if (r < 0)
		return r;
	char *p = strrchr(data, ')');
	/* ") S ppid ..." : field 3 is the state, field 22 the start time */
	if (!p || sscanf(p + 2,
			 "%c %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s "
			 "%*s %*s %*s %*s %llu",
			 state, start) != 2)
		return -EIO;
	return 0;
}

unsigned long long proc_start_time(pid_t pid)
{
	char state;
	unsigned long long start;
	return pid > 0 && proc_stat(pid, &state, &start) == 0 ? start : 0;
}

bool proc_alive(pid_t pid, unsigned long long start_time)
{
	char state;
	unsigned long long start;
	if (pid <= 0 || proc_stat(pid, &state, &start) < 0)
		return false;
	return state != 'Z' && state != 'X' && start == start_time;
}

int proc_kill_wait(pid_t pid, unsigned long long start_time, int timeout_ms)
{
	return proc_signal_wait(pid, start_time, SIGKILL, timeout_ms);
}

int proc_signal_wait(pid_t pid, unsigned long long start_time, int sig, int timeout_ms)
{
	if (!proc_alive(pid, start_time))
		return 0;
	_cleanup_close_ int fd = pidfd_open(pid, 0);
	if (fd < 0)
		return errno == ESRCH ? 0 : negative_errno();
	/* The pidfd names one process from now on: is it still the one? */
	if (!proc_alive(pid, start_time))
		return 0;
	if (pidfd_send_signal(fd, sig, NULL, 0) < 0 && errno != ESRCH)
		return negative_errno();
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r;
	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return negative_errno();
	return r == 0 ? -ETIMEDOUT : 0;
}

bool oci_criu_installed(void)
{
	/* runc finds criu on its PATH (runc_env's). */
	const char *path = runc_env[0] + strlen("PATH=");
	for (const char *d = path; *d;) {
		const char *end = strchrnul(d, ':');
		char exe[PATH_MAX];
		snprintf(exe, sizeof(exe), "%.*s/criu", (int)(end - d), d);
		if (access(exe, X_OK) == 0)
			return true;
		d = *end ? end + 1 : end;
	}
	return false;
}

/* CRIU's own error lines from its log (what runc's message points at):
 * the last few "Error" lines, joined; "" when there are none. */
static void criu_errors(const char *log_path, char *buf, size_t size)
{
	buf[0] = '\0';
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	if (read_file(log_path, 8 * 1024 * 1024, &text, &len) < 0)
		return;
	const char *lines[3] = { NULL, NULL, NULL };
	size_t n = 0;
	char *save = NULL;
	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		if (strstr(l, "Error (")) {
			lines[n % 3] = l;
			n++;
		}
	size_t first = n > 3 ? n - 3 : 0;
	for (size_t i = first; i < n; i++) {
		const char *l = strstr(lines[i % 3], "Error (");
		size_t used = strlen(buf);
		snprintf(buf + used, size - used, "%s%s", used ? "; " : "", l);
	}
}

int oci_checkpoint(const struct oci_handler *h, const char *id, const char *work_dir,
		   unsigned timeout_ms, struct cric_err *err)
{
	_cleanup_free_ char *images = path_join(work_dir, "checkpoint");
	_cleanup_free_ char *log_path = path_join(work_dir, "runc-checkpoint.log");
	_cleanup_free_ char *dump_log = path_join(work_dir, "dump.log");
	if (!images || !log_path || !dump_log)
		return -ENOMEM;
	if (!oci_criu_installed())
		return err_set(err, -ENOPKG,
			       "checkpointing needs CRIU: install the \"criu\" package (criu "
			       "not found on %s)",
			       runc_env[0] + strlen("PATH="));
	/* What CRI-O asks of runc for the kubelet's forensic checkpoints:
	 * the container goes on running; its established TCP connections,
	 * file locks and external unix sockets are dumped, not refused. */
	const char *args[] = { "checkpoint",
			       "--leave-running",
			       "--tcp-established",
			       "--file-locks",
			       "--ext-unix-sk",
			       "--image-path",
			       images,
			       "--work-path",
			       work_dir,
			       id,
			       NULL };
	int status = 0;
	char msg[1024];
	int r = invoke_for(h, args, false, log_path, timeout_ms, &status, msg, sizeof(msg), err);
	if (r == -ETIMEDOUT) {
		/* runc and CRIU are killed; CRIU may have left the container
		 * frozen: thaw it (an error says it was not). */
		const char *resume[] = { "resume", id, NULL };
		int st = 0;
		char m2[256];
		invoke(h, resume, false, NULL, &st, m2, sizeof(m2), NULL);
		return err_set(err, -ETIMEDOUT, "%s checkpoint: not done in %u ms; stopped",
			       h->name, timeout_ms);
	}
	if (r < 0)
		return r;
	if (exited_ok(status))
		return 0;
	char criu[640];
	criu_errors(dump_log, criu, sizeof(criu));
	/* runc names the work dir's log, which the caller removes: cut it. */
	char *cut = strstr(msg, "\nlog file:");
	if (cut)
		*cut = '\0';
	r = says_not_found(msg) && !criu[0] ? -ENOENT : -EIO;
	return err_set(err, r, "%s checkpoint: %s%s%s", h->name, msg[0] ? msg : "failed",
		       criu[0] ? "; CRIU: " : "", criu);
}
