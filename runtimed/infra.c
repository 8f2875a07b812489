/* The infra process of pods sharing a PID namespace; see sandbox-int.h. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/macro.h"
#include "podplan.h"
#include "sandbox-int.h"

static json_t *bind_ro(const char *dst, const char *src)
{
	return json_pack("{s:s, s:s, s:s, s:[s,s,s,s,s]}", "destination", dst, "type", "bind",
			 "source", src, "options", "rbind", "ro", "nosuid", "nodev", "noexec");
}

/* The pod's seccomp filter and LSM fields (podplan.h) into doc. */
static int infra_security_apply(json_t *doc, const struct pod_infra_security *sec)
{
	json_t *process = json_object_get(doc, "process");
	json_t *lx = json_object_get(doc, "linux");
	if (!sec)
		return 0;
	if ((sec->seccomp && json_object_set(lx, "seccomp", sec->seccomp) < 0) ||
	    (sec->lsm.apparmor[0] &&
	     json_object_set_new(process, "apparmorProfile", json_string(sec->lsm.apparmor)) < 0) ||
	    (sec->lsm.process_label[0] &&
	     json_object_set_new(process, "selinuxLabel", json_string(sec->lsm.process_label)) <
		 0) ||
	    (sec->lsm.mount_label[0] &&
	     json_object_set_new(lx, "mountLabel", json_string(sec->lsm.mount_label)) < 0))
		return -ENOMEM;
	return 0;
}

/* The pod's own user namespace, joined by path with its maps beside (runc
 * 1.1 wants both): the pid and mount namespaces runc then makes are its. */
static int infra_userns(json_t *doc, json_t *ns, const struct sandbox *sb,
			const struct idmap_range *uid, const struct idmap_range *gid)
{
	json_t *lx = json_object_get(doc, "linux");
	if (json_array_append_new(ns, json_pack("{s:s, s:s}", "type", "user", "path", sb->userns)) <
		0 ||
	    json_object_set_new(lx, "uidMappings",
				json_pack("[{s:i, s:I, s:I}]", "containerID", 0, "hostID",
					  (json_int_t)uid->host_id, "size",
					  (json_int_t)uid->length)) < 0 ||
	    json_object_set_new(lx, "gidMappings",
				json_pack("[{s:i, s:I, s:I}]", "containerID", 0, "hostID",
					  (json_int_t)gid->host_id, "size",
					  (json_int_t)gid->length)) < 0)
		return -ENOMEM;
	return 0;
}

static int write_infra_bundle(struct sandbox_mgr *m, struct sandbox *sb, const char *bundle,
			      const struct oci_handler *h, const struct pod_infra_security *sec,
			      const struct idmap_range *uid, const struct idmap_range *gid,
			      struct cric_err *err)
{
	json_t *ns = json_pack("[{s:s}, {s:s}]", "type", "pid", "type", "mount");
	if (!ns)
		return -ENOMEM;
	if (!sb->host_ipc)
		json_array_append_new(ns,
				      json_pack("{s:s, s:s}", "type", "ipc", "path", sb->ipc_pin));
	if (!sb->host_network) {
		json_array_append_new(ns,
				      json_pack("{s:s, s:s}", "type", "uts", "path", sb->uts_pin));
		json_array_append_new(
		    ns, json_pack("{s:s, s:s}", "type", "network", "path", sb->netns));
	}
	char cgpath[CGROUP_PATH_MAX + 128];
	if (h->systemd_cgroup)
		snprintf(cgpath, sizeof(cgpath), "%s:cric:%s", sb->cgroup_parent, sb->id);
	else
		snprintf(cgpath, sizeof(cgpath), "%s/cric-%s", sb->cgroup, sb->id);
	_cleanup_free_ char *hostname = path_join(sb->dir, "hostname");
	_cleanup_free_ char *hosts = path_join(sb->dir, "hosts");
	_cleanup_free_ char *resolv = path_join(sb->dir, "resolv.conf");
	if (!hostname || !hosts || !resolv) {
		json_decref(ns);
		return -ENOMEM;
	}
	_cleanup_json_ json_t *doc = json_pack(
	    "{s:s, s:{s:b, s:{s:i, s:i}, s:[s], s:[s], s:s, s:b, s:{s:[], s:[], s:[], s:[], s:[]}},"
	    " s:{s:s, s:b},"
	    " s:[{s:s, s:s, s:s, s:[s,s,s]}, {s:s, s:s, s:s, s:[s,s,s,s]}, o, o, o],"
	    " s:{s:o, s:s, s:{}, s:[s,s,s,s,s,s,s,s], s:[s,s,s,s,s,s]}}",
	    "ociVersion", "1.0.2", "process", "terminal", 0, "user", "uid", INFRA_UID, "gid",
	    INFRA_UID, "args", "/pause", "env", "PATH=/", "cwd", "/", "noNewPrivileges", 1,
	    "capabilities", "bounding", "effective", "inheritable", "permitted", "ambient", "root",
	    "path", m->pause_rootfs, "readonly", 1, "mounts", "destination", "/proc", "type",
	    "proc", "source", "proc", "options", "nosuid", "noexec", "nodev", "destination", "/dev",
	    "type", "tmpfs", "source", "tmpfs", "options", "nosuid", "strictatime", "mode=755",
	    "size=65536k", bind_ro("/etc/hostname", hostname), bind_ro("/etc/hosts", hosts),
	    bind_ro("/etc/resolv.conf", resolv), "linux", "namespaces", ns, "cgroupsPath", cgpath,
	    "resources", "maskedPaths", "/proc/acpi", "/proc/kcore", "/proc/keys",
	    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
	    "/sys/firmware", "readonlyPaths", "/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq",
	    "/proc/sys", "/proc/sysrq-trigger");
	if (!doc)
		return err_set(err, -ENOMEM, "build the infra's config.json");
	/* As the peers do: the infra is the last thing the OOM killer should
	 * pick (-998), as far as this host lets us. */
	if (json_object_set_new(json_object_get(doc, "process"), "oomScoreAdj",
				json_integer(oci_oom_score_adj(INFRA_OOM_SCORE_ADJ))) < 0 ||
	    infra_security_apply(doc, sec) < 0 ||
	    (uid && sb->userns[0] &&
	     infra_userns(doc, json_object_get(json_object_get(doc, "linux"), "namespaces"), sb,
			  uid, gid) < 0))
		return err_set(err, -ENOMEM, "build the infra's config.json");
	/* No hostname: the UTS namespace is the pinned one (or the node's). */
	if (mkdir(bundle, 0700) < 0 && errno != EEXIST)
		return err_set(err, negative_errno(), "create \"%s\": %s", bundle, strerror(errno));
	_cleanup_free_ char *path = path_join(bundle, "config.json");
	int r = path ? json_save_volatile(path, doc, 0600) : -ENOMEM; /* in the run dir */
	if (r < 0)
		return err_set(err, r, "write \"%s\": %s", path ? path : bundle, strerror(-r));
	return 0;
}

int infra_start(struct sandbox_mgr *m, struct sandbox *sb, const struct oci_handler *h,
		const struct pod_infra_security *sec, const struct idmap_range *uid,
		const struct idmap_range *gid, struct cric_err *err)
{
	_cleanup_free_ char *bundle = path_join(sb->dir, "infra");
	if (!bundle)
		return -ENOMEM;
	int r = write_infra_bundle(m, sb, bundle, h, sec, uid, gid, err);
	if (r < 0)
		return r;
	pid_t pid = 0;
	r = oci_run_detached(h, sb->id, bundle, &pid, err);
	if (r < 0)
		return err_prefix(err, r, "start the infra process");
	unsigned long long start = proc_start_time(pid);
	pthread_mutex_lock(&m->lock);
	sb->infra_pid = pid;
	sb->infra_start = start;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

int infra_stop(struct sandbox_mgr *m, struct sandbox *sb, struct cric_err *err)
{
	/* Already deleted (a sandbox being created may have an infra that runc
	 * started before its pid was recorded: always ask runc then). */
	if (sb->infra_pid == 0 && sb->state != SB_CREATING)
		return 0;
	const struct oci_handler *h = find_handler(m, sb->handler);
	struct oci_handler gone;
	if (!h) {
		/* The handler left the config since: its state root is where
		 * runtimed put it, and any runc can delete from it. */
		const struct oci_handler *def = find_handler(m, NULL);
		memset(&gone, 0, sizeof(gone));
		snprintf(gone.name, sizeof(gone.name), "%s", sb->handler);
		snprintf(gone.path, sizeof(gone.path), "%s", def ? def->path : "/usr/sbin/runc");
		snprintf(gone.root, sizeof(gone.root), "%s/%s", m->runtimes_dir, sb->handler);
		log_warning("runtime handler \"%s\" is no longer configured; deleting the infra "
			    "with %s",
			    sb->handler, gone.path);
		h = &gone;
	}
	/* runc delete --force kills and then looks for the exit every 100 ms:
	 * kill it here and wait on a pidfd instead, so runc finds it stopped. */
	int r = proc_kill_wait(sb->infra_pid, sb->infra_start, 5000);
	if (r < 0)
		log_warning_errno(r, "kill infra process %d", (int)sb->infra_pid);
	r = oci_delete(h, sb->id, err);
	if (r < 0)
		return err_prefix(err, r, "stop the infra process");
	pthread_mutex_lock(&m->lock);
	sb->infra_pid = 0;
	sb->infra_start = 0;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static int copy_file(const char *src, const char *dst, mode_t mode)
{
	_cleanup_free_ char *data = NULL;
	size_t len;
	int r = read_file(src, 16 * 1024 * 1024, &data, &len);
	if (r < 0)
		return r;
	_cleanup_free_ char *cur = NULL;
	size_t curlen;
	if (read_file(dst, 16 * 1024 * 1024, &cur, &curlen) == 0 && curlen == len &&
	    memcmp(cur, data, len) == 0)
		return 0;
	return write_file_atomic(dst, data, len, mode);
}

/* A root filesystem holding only the infra binary and the mount points
 * runc needs, shared read-only by every infra process. */
int infra_prepare_rootfs(struct sandbox_mgr *m, const char *binary, struct cric_err *err)
{
	static const char *const dirs[] = { "", "/proc", "/dev", "/sys", "/etc" };
	static const char *const files[] = { "/etc/hostname", "/etc/hosts", "/etc/resolv.conf" };
	char path[PATH_MAX];
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		snprintf(path, sizeof(path), "%s%s", m->pause_rootfs, dirs[i]);
		int r = mkdir_p(path, 0755);
		if (r < 0)
			return err_set(err, r, "create \"%s\": %s", path, strerror(-r));
	}
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		snprintf(path, sizeof(path), "%s%s", m->pause_rootfs, files[i]);
		int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (fd < 0)
			return err_set(err, negative_errno(), "create \"%s\": %s", path,
				       strerror(errno));
		close(fd);
	}
	snprintf(path, sizeof(path), "%s/pause", m->pause_rootfs);
	int r = copy_file(binary, path, 0755);
	if (r < 0)
		return err_set(err, r, "install the infra binary \"%s\": %s", binary, strerror(-r));
	return 0;
}
