/* A pod as the container half sees it; see podsnap.h. */
#include "podsnap.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "proto/cri/api.pb-c.h"
#include "seccomp-default.h"

static void copy(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src ? src : "");
}

int pod_snapshot_get(struct sandbox_mgr *m, const struct cric_call *call, const char *id,
		     struct pod_snapshot *ret, struct cric_err *err)
{
	struct sandbox_snapshot *sb = NULL;
	int r = sandbox_get(m, call, id, &sb, err);
	if (r < 0 || !sb)
		return r < 0 ? r : -EIO;
	struct pod_snapshot s = { 0 };
	copy(s.id, sizeof(s.id), sb->brief.id);
	copy(s.name, sizeof(s.name), sb->brief.name);
	copy(s.namespace, sizeof(s.namespace), sb->brief.namespace);
	copy(s.uid, sizeof(s.uid), sb->brief.uid);
	s.ready = sb->brief.state == SANDBOX_READY;
	copy(s.dir, sizeof(s.dir), sb->dir);
	copy(s.log_directory, sizeof(s.log_directory), sb->log_directory);
	s.host_network = sb->net_mode == POD_NS_NODE;
	s.host_ipc = sb->ipc_mode == POD_NS_NODE;
	s.pid_mode = (int)sb->pid_mode;
	s.infra_pid = sb->infra_pid;
	copy(s.netns, sizeof(s.netns), sb->netns);
	copy(s.ipc_pin, sizeof(s.ipc_pin), sb->ipc_ns);
	copy(s.uts_pin, sizeof(s.uts_pin), sb->uts_ns);
	copy(s.userns_pin, sizeof(s.userns_pin), sb->userns);
	copy(s.cgroup, sizeof(s.cgroup), sb->cgroup);
	copy(s.cgroup_parent, sizeof(s.cgroup_parent), sb->cgroup_parent);
	copy(s.handler, sizeof(s.handler), sb->brief.handler);
	/* The config is the CRI adapter's packed PodSandboxConfig. */
	_cleanup_pb_ Runtime__V1__PodSandboxConfig *cfg =
	    runtime__v1__pod_sandbox_config__unpack(NULL, sb->brief.config_len, sb->brief.config);
	s.privileged = cfg && cfg->linux && cfg->linux->security_context &&
		       cfg->linux->security_context->privileged;
	const Runtime__V1__LinuxSandboxSecurityContext *sc =
	    cfg && cfg->linux ? cfg->linux->security_context : NULL;
	enum ctr_seccomp_kind kind = CTR_SECCOMP_UNCONFINED;
	const char *ref = NULL;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	/* Checked at RunPodSandbox (podplan.c). */
	if (sc &&
	    ctr_seccomp_kind(sc->seccomp, sc->seccomp_profile_path, false, &kind, &ref, NULL) < 0)
		kind = CTR_SECCOMP_UNCONFINED;
#pragma GCC diagnostic pop
	s.seccomp_kind = (int)kind;
	const Runtime__V1__UserNamespace *u =
	    sc && sc->namespace_options ? sc->namespace_options->userns_options : NULL;
	if (u && u->mode == RUNTIME__V1__NAMESPACE_MODE__POD && u->n_uids == 1 && u->n_gids == 1 &&
	    u->uids[0] && u->gids[0]) {
		s.userns = true;
		s.uid_map = (struct idmap_range){ u->uids[0]->host_id, u->uids[0]->length };
		s.gid_map = (struct idmap_range){ u->gids[0]->host_id, u->gids[0]->length };
	}
	copy(s.seccomp_ref, sizeof(s.seccomp_ref), kind == CTR_SECCOMP_LOCALHOST ? ref : "");
	sandbox_snapshot_free(sb);
	/* The hostname the pod's UTS namespace got (podplan.c's choice). */
	_cleanup_free_ char *path = path_join(s.dir, "hostname");
	_cleanup_free_ char *hn = NULL;
	size_t len;
	if (path && read_file(path, 256, &hn, &len) == 0) {
		hn[strcspn(hn, "\n")] = '\0';
		copy(s.hostname, sizeof(s.hostname), hn);
	}
	*ret = s;
	return 0;
}
