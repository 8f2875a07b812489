/* runtimed/ctrplan.h: CreateContainer's request checked and planned into an
 * OCI spec with no I/O: Kubernetes' command/args rule, env, users from
 * passwd/group text, capabilities, namespaces, mounts, refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "runtimed/ctrplan.h"

#define ID  "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define POD "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

static const struct ctr_pod pod = {
	.id = POD,
	.name = "web",
	.namespace = "default",
	.uid = "u-1",
	.hostname = "web",
	.dir = "/run/cric/pod",
	.log_directory = "/var/log/pods/default_web_u-1",
	.pid_mode = RUNTIME__V1__NAMESPACE_MODE__CONTAINER,
	.netns = "/run/netns/x",
	.ipc_pin = "/run/ipc",
	.uts_pin = "/run/uts",
	.cgroup = "/cric/pod-x",
	.cgroup_parent = "",
};

struct req {
	Runtime__V1__ContainerConfig cfg;
	Runtime__V1__ContainerMetadata md;
	Runtime__V1__ImageSpec img;
	Runtime__V1__LinuxContainerConfig lx;
	Runtime__V1__LinuxContainerSecurityContext sc;
	Runtime__V1__NamespaceOption ns;
	Runtime__V1__Capability caps;
	Runtime__V1__Int64Value uid, gid;
};

static void req_init(struct req *q)
{
	memset(q, 0, sizeof(*q));
	runtime__v1__container_config__init(&q->cfg);
	runtime__v1__container_metadata__init(&q->md);
	runtime__v1__image_spec__init(&q->img);
	runtime__v1__linux_container_config__init(&q->lx);
	runtime__v1__linux_container_security_context__init(&q->sc);
	runtime__v1__namespace_option__init(&q->ns);
	runtime__v1__capability__init(&q->caps);
	runtime__v1__int64_value__init(&q->uid);
	runtime__v1__int64_value__init(&q->gid);
	q->md.name = "app";
	q->md.attempt = 2;
	q->img.image = "busybox";
	q->cfg.metadata = &q->md;
	q->cfg.image = &q->img;
	q->cfg.linux = &q->lx;
	q->lx.security_context = &q->sc;
	q->sc.namespace_options = &q->ns;
	q->ns.pid = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
}

static json_t *image(const char *json)
{
	json_t *j = json_loads(json, 0, NULL);
	assert_non_null(j);
	return j;
}

#define ALL_CAPS ((UINT64_C(1) << 41) - 1)

static uint64_t defaults(void)
{
	uint64_t m = 0;
	assert_int_equal(ctr_caps_mask_from_names(ctr_caps_default_names, ctr_caps_n_default_names,
						  "defaults", &m, NULL),
			 0);
	return m;
}

static const struct ctr_user root_user = { .uid = 0, .gid = 0, .home = "/root" };

static int spec(struct req *q, const json_t *img, const struct ctr_user *u, json_t **ret, char *msg)
{
	struct cric_err err = { { 0 } };
	const struct ctr_plan_in in = { .id = ID,
					.cfg = &q->cfg,
					.pod = &pod,
					.image_config = img,
					.rootfs = "/rootfs",
					.user = u ? u : &root_user,
					.nofile = 1024,
					.oom_score_adj = 0,
					.caps_defaults = defaults(),
					.caps_grantable = ALL_CAPS };
	int r = ctr_plan_spec(&in, ret, &err);
	if (r < 0 && !msg)
		print_message("ctr_plan_spec: %s\n", err.msg);
	if (msg)
		strcpy(msg, err.msg);
	return r;
}

static const char *args_of(struct req *q, const char *img_json)
{
	static char buf[1024];
	json_t *img = image(img_json);
	json_t *a = NULL;
	struct cric_err err = { { 0 } };
	int r = ctr_plan_args(&q->cfg, img, &a, &err);
	json_decref(img);
	if (r < 0) {
		snprintf(buf, sizeof(buf), "error: %s", err.msg);
		return buf;
	}
	char *s = json_dumps(a, JSON_COMPACT);
	snprintf(buf, sizeof(buf), "%s", s);
	free(s);
	json_decref(a);
	return buf;
}

static void test_check(void **state)
{
	(void)state;
	struct req q;
	req_init(&q);
	char name[512], log[4096];
	struct cric_err err;
	q.cfg.log_path = "app/2.log";
	assert_int_equal(ctr_plan_check(&q.cfg, &pod, name, sizeof(name), log, sizeof(log), &err),
			 0);
	assert_string_equal(name, "app_web_default_u-1_2");
	assert_string_equal(log, "/var/log/pods/default_web_u-1/app/2.log");
	const char *bad[] = { "/etc/x.log", "../x.log", "app/../../x", "a//b" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		q.cfg.log_path = (char *)bad[i];
		assert_int_equal(
		    ctr_plan_check(&q.cfg, &pod, name, sizeof(name), log, sizeof(log), &err),
		    -EINVAL);
		assert_non_null(strstr(err.msg, "log_path"));
	}
	q.cfg.log_path = "";
	q.md.name = "";
	assert_int_equal(ctr_plan_check(&q.cfg, &pod, name, sizeof(name), log, sizeof(log), &err),
			 -EINVAL);
	q.md.name = "Bad Name";
	assert_int_equal(ctr_plan_check(&q.cfg, &pod, name, sizeof(name), log, sizeof(log), &err),
			 -EINVAL);
}

static void test_args(void **state)
{
	(void)state;
	struct req q;
	req_init(&q);
	const char *img = "{\"config\":{\"Entrypoint\":[\"/ep\"],\"Cmd\":[\"c1\",\"c2\"]}}";
	assert_string_equal(args_of(&q, img), "[\"/ep\",\"c1\",\"c2\"]");
	char *cmd[] = { "/bin/sh", "-c" }, *args[] = { "echo hi" };
	q.cfg.command = cmd;
	q.cfg.n_command = 2;
	/* command replaces the Entrypoint and drops the Cmd */
	assert_string_equal(args_of(&q, img), "[\"/bin/sh\",\"-c\"]");
	q.cfg.args = args;
	q.cfg.n_args = 1;
	assert_string_equal(args_of(&q, img), "[\"/bin/sh\",\"-c\",\"echo hi\"]");
	/* args alone replace the Cmd */
	q.cfg.n_command = 0;
	assert_string_equal(args_of(&q, img), "[\"/ep\",\"echo hi\"]");
	q.cfg.n_args = 0;
	assert_string_equal(args_of(&q, "{\"config\":{}}"), "error: no command specified");
	assert_string_equal(args_of(&q, "{}"), "error: no command specified");
}

static const char *env_value(json_t *s, const char *key)
{
	size_t i;
	json_t *e;
	json_array_foreach (json_object_get(json_object_get(s, "process"), "env"), i, e) {
		const char *v = json_string_value(e);
		if (strncmp(v, key, strlen(key)) == 0 && v[strlen(key)] == '=')
			return v + strlen(key) + 1;
	}
	return NULL;
}

static void test_env(void **state)
{
	(void)state;
	struct req q;
	req_init(&q);
	Runtime__V1__KeyValue kv[2], *kvp[2] = { &kv[0], &kv[1] };
	for (int i = 0; i < 2; i++)
		runtime__v1__key_value__init(&kv[i]);
	kv[0].key = "A";
	kv[0].value = "from-cri";
	kv[1].key = "B";
	kv[1].value = "new";
	q.cfg.envs = kvp;
	q.cfg.n_envs = 2;
	json_t *img = image("{\"config\":{\"Cmd\":[\"x\"],\"Env\":[\"A=img\",\"C=keep\"]}}");
	json_t *s = NULL;
	assert_int_equal(spec(&q, img, NULL, &s, NULL), 0);
	assert_string_equal(env_value(s, "A"), "from-cri");
	assert_string_equal(env_value(s, "B"), "new");
	assert_string_equal(env_value(s, "C"), "keep");
	assert_string_equal(env_value(s, "PATH"), CTR_DEFAULT_PATH);
	assert_string_equal(env_value(s, "HOSTNAME"), "web");
	assert_string_equal(env_value(s, "HOME"), "/root");
	assert_null(env_value(s, "TERM"));
	json_decref(s);
	q.cfg.tty = true;
	kv[1].key = "PATH";
	kv[1].value = "/mine";
	assert_int_equal(spec(&q, img, NULL, &s, NULL), 0);
	assert_string_equal(env_value(s, "TERM"), "xterm");
	assert_string_equal(env_value(s, "PATH"), "/mine");
	json_decref(s);
	kv[1].key = "BAD=NAME";
	char msg[1024];
	assert_int_equal(spec(&q, img, NULL, &s, msg), -EINVAL);
	assert_non_null(strstr(msg, "envs[1]"));
	json_decref(img);
}

static const char passwd[] = "root:x:0:0:root:/root:/bin/sh\n"
			     "# comment\n"
			     "app:x:1000:1001:app:/home/app:/bin/sh\n"
			     "nobody:x:65534:65534::/nonexistent:/bin/false\n";
static const char group[] = "root:x:0:\n"
			    "appgrp:x:1001:\n"
			    "video:x:44:app,other\n"
			    "audio:x:29:other\n"
			    "wheel:x:10:app\n";

static void user_of(struct req *q, const char *img_json, int want_r, struct ctr_user *u)
{
	json_t *img = image(img_json);
	struct ctr_user_spec s;
	struct cric_err err;
	int r = ctr_plan_user(&q->cfg, img, &s, &err);
	if (r == 0)
		r = ctr_user_lookup(&s, passwd, group, u, &err);
	json_decref(img);
	assert_int_equal(r, want_r);
}

static void test_users(void **state)
{
	(void)state;
	struct req q;
	req_init(&q);
	struct ctr_user u;
	user_of(&q, "{}", 0, &u);
	assert_int_equal(u.uid, 0);
	assert_string_equal(u.home, "/root");
	/* The image's User in its four forms. */
	user_of(&q, "{\"config\":{\"User\":\"app\"}}", 0, &u);
	assert_int_equal(u.uid, 1000);
	assert_int_equal(u.gid, 1001);
	assert_int_equal(u.n_groups, 2); /* video, wheel */
	assert_int_equal(u.groups[0], 44);
	assert_int_equal(u.groups[1], 10);
	user_of(&q, "{\"config\":{\"User\":\"1000\"}}", 0, &u);
	assert_int_equal(u.gid, 1001);
	user_of(&q, "{\"config\":{\"User\":\"app:audio\"}}", 0, &u);
	assert_int_equal(u.gid, 29);
	user_of(&q, "{\"config\":{\"User\":\"4242:4343\"}}", 0, &u);
	assert_int_equal(u.uid, 4242);
	assert_int_equal(u.gid, 4343);
	assert_string_equal(u.home, "");
	user_of(&q, "{\"config\":{\"User\":\"ghost\"}}", -EINVAL, &u);
	user_of(&q, "{\"config\":{\"User\":\"app:nogroup\"}}", -EINVAL, &u);
	/* run_as_user beats the image; run_as_group overrides the gid. */
	q.sc.run_as_user = &q.uid;
	q.uid.value = 65534;
	user_of(&q, "{\"config\":{\"User\":\"app\"}}", 0, &u);
	assert_int_equal(u.uid, 65534);
	assert_int_equal(u.gid, 65534);
	q.sc.run_as_group = &q.gid;
	q.gid.value = 7;
	user_of(&q, "{}", 0, &u);
	assert_int_equal(u.gid, 7);
	q.sc.run_as_user = NULL;
	q.sc.run_as_username = "app";
	user_of(&q, "{}", 0, &u);
	assert_int_equal(u.uid, 1000);
	assert_int_equal(u.gid, 7);
	/* run_as_group alone is refused. */
	q.sc.run_as_username = "";
	user_of(&q, "{}", -EINVAL, &u);
	q.sc.run_as_group = NULL;
	q.sc.run_as_user = &q.uid;
	q.uid.value = -1;
	user_of(&q, "{}", -EINVAL, &u);
}

static bool has_cap(json_t *s, const char *set, const char *cap)
{
	json_t *a =
	    json_object_get(json_object_get(json_object_get(s, "process"), "capabilities"), set);
	size_t i;
	json_t *e;
	json_array_foreach (a, i, e)
		if (strcmp(json_string_value(e), cap) == 0)
			return true;
	return false;
}

static size_t n_caps(json_t *s, const char *set)
{
	return json_array_size(
	    json_object_get(json_object_get(json_object_get(s, "process"), "capabilities"), set));
}

static void test_caps(void **state)
{
	(void)state;
	struct req q;
	req_init(&q);
	json_t *img = image("{\"config\":{\"Cmd\":[\"x\"]}}");
	json_t *s = NULL;
	assert_int_equal(spec(&q, img, NULL, &s, NULL), 0);
	assert_int_equal(n_caps(s, "bounding"), 9);
	assert_true(has_cap(s, "effective", "CAP_KILL"));
	assert_false(has_cap(s, "bounding", "CAP_NET_RAW"));
	json_decref(s);
	char *add[] = { "NET_ADMIN", "cap_sys_time" }, *drop[] = { "CAP_KILL" };
	q.sc.capabilities = &q.caps;
	q.caps.add_capabilities = add;
	q.caps.n_add_capabilities = 2;
	q.caps.drop_capabilities = drop;
	q.caps.n_drop_capabilities = 1;
	assert_int_equal(spec(&q, img, NULL, &s, NULL), 0);
	assert_true(has_cap(s, "bounding", "CAP_NET_ADMIN"));
	assert_true(has_cap(s, "permitted", "CAP_SYS_TIME"));
	assert_false(has_cap(s, "bounding", "CAP_KILL"));
	assert_int_equal(n_caps(s, "bounding"), 10);
	json_decref(s);
	/* drop ALL, add one back */
	char *all[] = { "ALL" }, *one[] = { "NET_BIND_SERVICE" };
	q.caps.drop_capabilities = all;
	q.caps.add_capabilities = one;
	q.caps.n_add_capabilities = 1;
	assert_int_equal(spec(&q, img, NULL, &s, NULL), 0);
	assert_int_equal(n_caps(s, "bounding"), 1);
	json_decref(s);
	/* a non-root user: bounding only */
	struct ctr_user app = { .uid = 1000, .gid = 1000 };
	q.caps.n_drop_capabilities = 0;
	assert_int_equal(spec(&q, img, &app, &s, NULL), 0);
	assert_int_equal(n_caps(s, "bounding"), 9);
	assert_int_equal(n_caps(s, "effective"), 0);
	json_decref(s);
	char *unknown[] = { "NET_BOGUS" }, *num[] = { "12" };
	char msg[1024];
	q.caps.add_capabilities = unknown;
	assert_int_equal(spec(&q, img, NULL, &s, msg), -EINVAL);
	assert_non_null(strstr(msg, "NET_BOGUS"));
	q.caps.add_capabilities = num;
	assert_int_equal(spec(&q, img, NULL, &s, msg), -EINVAL);
	json_decref(img);
}

static json_t *find_ns(json_t *s, const char *type)
{
	size_t i;
	json_t *e;
	json_array_foreach (json_object_get(json_object_get(s, "linux"), "namespaces"), i, e)
		if (strcmp(json_string_value(json_object_get(e, "type")), type) == 0)
			return e;
	return NULL;
}

static json_t *find_mount(json_t *s, const char *dst)
{
	size_t i;
	json_t *e;
	json_array_foreach (json_object_get(s, "mounts"), i, e)
		if (strcmp(json_string_value(json_object_get(e, "destination")), dst) == 0)
			return e;
	return NULL;
}

static bool has_opt(const json_t *opts, const char *o)
{
	size_t i;
	json_t *e;
	json_array_foreach (opts, i, e)
		if (strcmp(json_string_value(e), o) == 0)
			return true;
	return false;
}

static void test_spec_shape(void **state)
{
	(void)state;
	struct req q;
	req_init(&q);
	Runtime__V1__Mount m[2], *mp[2] = { &m[0], &m[1] };
	for (int i = 0; i < 2; i++)
		runtime__v1__mount__init(&m[i]);
	m[0].container_path = "/data";
	m[0].readonly = true;
	m[1].container_path = "/etc/hosts";
	char *hp[] = { "/srv/data", "/var/lib/kubelet/hosts", NULL };
	q.cfg.mounts = mp;
	q.cfg.n_mounts = 2;
	q.sc.readonly_rootfs = true;
	char *masked[] = { "/proc/kcore" };
	q.sc.masked_paths = masked;
	q.sc.n_masked_paths = 1;
	json_t *img = image("{\"config\":{\"Cmd\":[\"x\"],\"WorkingDir\":\"/w\"}}");
	struct cric_err err;
	const struct ctr_plan_in in = { .id = ID,
					.cfg = &q.cfg,
					.pod = &pod,
					.image_config = img,
					.rootfs = "/rootfs",
					.user = &root_user,
					.host_paths = hp,
					.nofile = 4096 };
	json_t *s = NULL;
	assert_int_equal(ctr_plan_spec(&in, &s, &err), 0);
	assert_true(json_is_true(json_object_get(json_object_get(s, "root"), "readonly")));
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(s, "process"), "cwd")), "/w");
	json_t *d = find_mount(s, "/data");
	assert_non_null(d);
	assert_string_equal(json_string_value(json_object_get(d, "source")), "/srv/data");
	assert_string_equal(json_string_value(json_array_get(json_object_get(d, "options"), 2)),
			    "ro");
	/* the kubelet's own /etc/hosts replaces the pod's */
	json_t *h = find_mount(s, "/etc/hosts");
	assert_string_equal(json_string_value(json_object_get(h, "source")),
			    "/var/lib/kubelet/hosts");
	assert_string_equal(
	    json_string_value(json_object_get(find_mount(s, "/etc/resolv.conf"), "source")),
	    "/run/cric/pod/resolv.conf");
	assert_string_equal(json_string_value(json_object_get(find_ns(s, "network"), "path")),
			    "/run/netns/x");
	assert_null(json_object_get(find_ns(s, "pid"), "path"));
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(s, "linux"), "cgroupsPath")),
	    "/cric/pod-x/cric-" ID);
	assert_int_equal(
	    json_array_size(json_object_get(json_object_get(s, "linux"), "maskedPaths")), 1);
	/* the pod's /dev/shm, bound */
	assert_string_equal(json_string_value(json_object_get(find_mount(s, "/dev/shm"), "source")),
			    "/run/cric/pod/shm");
	assert_string_equal(json_string_value(json_object_get(find_mount(s, "/dev/shm"), "type")),
			    "bind");
	json_decref(s);
	/* host IPC: the node's /dev/shm */
	struct ctr_pod hpod = pod;
	hpod.host_ipc = true;
	struct ctr_plan_in hin = in;
	hin.pod = &hpod;
	assert_int_equal(ctr_plan_spec(&hin, &s, &err), 0);
	assert_string_equal(json_string_value(json_object_get(find_mount(s, "/dev/shm"), "source")),
			    "/dev/shm");
	json_decref(s);
	/* pid POD joins the infra's namespace; without an infra it is refused */
	q.ns.pid = RUNTIME__V1__NAMESPACE_MODE__POD;
	char msg[1024];
	assert_int_equal(spec(&q, img, NULL, &s, msg), -EINVAL);
	struct ctr_pod p2 = pod;
	p2.infra_pid = 4242;
	const struct ctr_plan_in in2 = { .id = ID,
					 .cfg = &q.cfg,
					 .pod = &p2,
					 .image_config = img,
					 .rootfs = "/rootfs",
					 .user = &root_user,
					 .host_paths = hp };
	assert_int_equal(ctr_plan_spec(&in2, &s, &err), 0);
	assert_string_equal(json_string_value(json_object_get(find_ns(s, "pid"), "path")),
			    "/proc/4242/ns/pid");
	json_decref(s);
	q.ns.pid = RUNTIME__V1__NAMESPACE_MODE__NODE;
	assert_int_equal(ctr_plan_spec(&in2, &s, &err), 0);
	assert_null(find_ns(s, "pid"));
	json_decref(s);
	q.ns.pid = RUNTIME__V1__NAMESPACE_MODE__TARGET;
	struct ctr_plan_in in3 = in2;
	in3.target_pid = 777;
	assert_int_equal(ctr_plan_spec(&in3, &s, &err), 0);
	assert_string_equal(json_string_value(json_object_get(find_ns(s, "pid"), "path")),
			    "/proc/777/ns/pid");
	json_decref(s);
	json_decref(img);
}

static void test_refusals(void **state)
{
	(void)state;
	struct req q;
	req_init(&q);
	json_t *img = image("{\"config\":{\"Cmd\":[\"x\"]}}");
	json_t *s = NULL;
	char msg[1024];
	q.sc.privileged = true; /* in a pod that is not privileged */
	assert_int_equal(spec(&q, img, NULL, &s, msg), -EINVAL);
	assert_non_null(strstr(msg, "privileged pod"));
	q.sc.privileged = false;
	Runtime__V1__SecurityProfile sp;
	runtime__v1__security_profile__init(&sp);
	q.sc.seccomp = &sp; /* present and empty: RuntimeDefault */
	assert_int_equal(spec(&q, img, NULL, &s, msg), 0);
	json_t *sec = json_object_get(json_object_get(s, "linux"), "seccomp");
	assert_string_equal(json_string_value(json_object_get(sec, "defaultAction")),
			    "SCMP_ACT_ERRNO");
	json_decref(s);
	sp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined;
	assert_int_equal(spec(&q, img, NULL, &s, msg), 0);
	assert_null(json_object_get(json_object_get(s, "linux"), "seccomp"));
	json_decref(s);
	sp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost;
	sp.localhost_ref = "/etc/profile.json";
	assert_int_equal(spec(&q, img, NULL, &s, msg), -EINVAL); /* the caller read none */
	assert_non_null(strstr(msg, "/etc/profile.json"));
	q.sc.seccomp = NULL;
	q.ns.pid = RUNTIME__V1__NAMESPACE_MODE__TARGET; /* no running target */
	assert_int_equal(spec(&q, img, NULL, &s, msg), -EINVAL);
	assert_non_null(strstr(msg, "target_id"));
	q.ns.pid = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
	q.cfg.working_dir = "relative";
	assert_int_equal(spec(&q, img, NULL, &s, msg), -EINVAL);
	q.cfg.working_dir = NULL;
	Runtime__V1__Mount m, *mp = &m;
	runtime__v1__mount__init(&m);
	m.container_path = "/a/../b";
	char *hp[] = { "/srv", NULL };
	q.cfg.mounts = &mp;
	q.cfg.n_mounts = 1;
	struct cric_err err;
	const struct ctr_plan_in in = { .id = ID,
					.cfg = &q.cfg,
					.pod = &pod,
					.image_config = img,
					.rootfs = "/r",
					.user = &root_user,
					.host_paths = hp };
	assert_int_equal(ctr_plan_spec(&in, &s, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "mounts[0].container_path"));
	json_decref(img);
}

static const char *mount_opt(json_t *s, const char *dst, const char *opt)
{
	json_t *o = json_object_get(find_mount(s, dst), "options");
	for (size_t i = 0; i < json_array_size(o); i++)
		if (strcmp(json_string_value(json_array_get(o, i)), opt) == 0)
			return opt;
	return NULL;
}

static void test_privileged(void **state)
{
	(void)state;
	struct req q;
	req_init(&q);
	json_t *img = image("{\"config\":{\"Cmd\":[\"x\"]}}");
	char *masked[] = { "/proc/kcore" }, *ro[] = { "/proc/sys" };
	q.sc.masked_paths = masked;
	q.sc.n_masked_paths = 1;
	q.sc.readonly_paths = ro;
	q.sc.n_readonly_paths = 1;
	Runtime__V1__SecurityProfile sp;
	runtime__v1__security_profile__init(&sp); /* RuntimeDefault */
	q.sc.seccomp = &sp;
	const struct ctr_device devs[] = {
		{ .path = "/dev/kmsg", .type = 'c', .major = 1, .minor = 11, .mode = 0644 },
		{ .path = "/dev/loop0",
		  .type = 'b',
		  .major = 7,
		  .minor = 0,
		  .mode = 0660,
		  .gid = 6 },
	};
	struct ctr_pod ppod = pod;
	ppod.privileged = true;
	struct cric_err err;
	struct ctr_plan_in in = { .id = ID,
				  .cfg = &q.cfg,
				  .pod = &ppod,
				  .image_config = img,
				  .rootfs = "/r",
				  .user = &root_user,
				  .caps_defaults = defaults(),
				  .caps_grantable = ALL_CAPS & ~(UINT64_C(1) << 24),
				  .host_devices = devs,
				  .n_host_devices = 2 };
	/* Not privileged in a privileged pod: the usual container, no host
	 * devices, read-only /sys, the lists as given, seccomp on. */
	json_t *s = NULL;
	assert_int_equal(ctr_plan_spec(&in, &s, &err), 0);
	json_t *lx = json_object_get(s, "linux");
	assert_int_equal(json_array_size(json_object_get(lx, "devices")), 0);
	assert_null(json_object_get(json_object_get(lx, "resources"), "devices"));
	assert_non_null(mount_opt(s, "/sys", "ro"));
	assert_non_null(mount_opt(s, "/sys/fs/cgroup", "ro"));
	assert_int_equal(json_array_size(json_object_get(lx, "maskedPaths")), 1);
	assert_non_null(json_object_get(lx, "seccomp"));
	json_decref(s);

	q.sc.privileged = true;
	assert_int_equal(ctr_plan_spec(&in, &s, &err), 0);
	lx = json_object_get(s, "linux");
	json_t *dv = json_object_get(lx, "devices");
	assert_int_equal(json_array_size(dv), 2);
	json_t *d = json_array_get(dv, 1);
	assert_string_equal(json_string_value(json_object_get(d, "path")), "/dev/loop0");
	assert_string_equal(json_string_value(json_object_get(d, "type")), "b");
	assert_int_equal(json_integer_value(json_object_get(d, "major")), 7);
	assert_int_equal(json_integer_value(json_object_get(d, "fileMode")), 0660);
	assert_int_equal(json_integer_value(json_object_get(d, "gid")), 6);
	json_t *rule =
	    json_array_get(json_object_get(json_object_get(lx, "resources"), "devices"), 0);
	assert_true(json_is_true(json_object_get(rule, "allow")));
	assert_string_equal(json_string_value(json_object_get(rule, "access")), "rwm");
	assert_null(json_object_get(rule, "type")); /* every device */
	assert_non_null(mount_opt(s, "/sys", "rw"));
	assert_null(mount_opt(s, "/sys", "ro"));
	assert_non_null(mount_opt(s, "/sys/fs/cgroup", "rw"));
	assert_int_equal(json_array_size(json_object_get(lx, "maskedPaths")), 0);
	assert_int_equal(json_array_size(json_object_get(lx, "readonlyPaths")), 0);
	assert_null(json_object_get(lx, "seccomp"));
	/* every capability the host grants, in every set */
	json_t *caps = json_object_get(json_object_get(s, "process"), "capabilities");
	const char *sets[] = { "bounding", "effective", "permitted" };
	for (size_t i = 0; i < 3; i++) {
		json_t *set = json_object_get(caps, sets[i]);
		assert_int_equal(json_array_size(set), 40);
		for (size_t k = 0; k < json_array_size(set); k++)
			assert_string_not_equal(json_string_value(json_array_get(set, k)),
						"CAP_SYS_RESOURCE");
	}
	json_decref(s);
	json_decref(img);
}

static void test_stop_signal(void **state)
{
	(void)state;
	struct req q;
	req_init(&q);
	json_t *img = image("{\"config\":{\"StopSignal\":\"SIGQUIT\"}}");
	assert_int_equal(ctr_plan_stop_signal(&q.cfg, img), SIGQUIT);
	q.cfg.stop_signal = RUNTIME__V1__SIGNAL__SIGUSR1;
	assert_int_equal(ctr_plan_stop_signal(&q.cfg, img), SIGUSR1);
	json_decref(img);
	q.cfg.stop_signal = 0;
	img = image("{}");
	assert_int_equal(ctr_plan_stop_signal(&q.cfg, img), SIGTERM);
	json_decref(img);
}

/* Seccomp Localhost (the pod's choice unless the container makes one),
 * user namespaces, AppArmor and SELinux into the spec. */
static void test_security_fields(void **state)
{
	(void)state;
	struct req q;
	req_init(&q);
	json_t *img = image("{\"config\":{\"Cmd\":[\"x\"]}}");
	json_t *profile =
	    image("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": "
		  "[{\"names\": [\"sethostname\"], \"action\": \"SCMP_ACT_ERRNO\"}]}");
	struct ctr_pod p = pod;
	p.seccomp_kind = CTR_SECCOMP_LOCALHOST;
	p.seccomp_ref = "/var/lib/kubelet/seccomp/pod.json";
	const struct ctr_seccomp_host host = { "x86_64", 5, 10 };
	const struct ctr_lsm lsm = { .apparmor = true,
				     .selinux = true,
				     .apparmor_profiles = "cric-default (enforce)\n" };
	struct ctr_plan_in in = { .id = ID,
				  .cfg = &q.cfg,
				  .pod = &p,
				  .image_config = img,
				  .rootfs = "/rootfs",
				  .user = &root_user,
				  .nofile = 1024,
				  .caps_defaults = defaults(),
				  .caps_grantable = ALL_CAPS,
				  .seccomp_profile = profile,
				  .seccomp_host = &host };
	enum ctr_seccomp_kind kind;
	const char *ref = NULL;
	struct cric_err err = { { 0 } };
	/* The pod's, the container making no choice. */
	assert_int_equal(ctr_plan_seccomp(&q.cfg, &p, &kind, &ref, &err), 0);
	assert_int_equal(kind, CTR_SECCOMP_LOCALHOST);
	assert_string_equal(ref, p.seccomp_ref);
	json_t *s = NULL;
	assert_int_equal(ctr_plan_spec(&in, &s, &err), 0);
	json_t *sec = json_object_get(json_object_get(s, "linux"), "seccomp");
	assert_string_equal(json_string_value(json_object_get(sec, "defaultAction")),
			    "SCMP_ACT_ALLOW");
	assert_null(json_object_get(json_object_get(s, "process"), "apparmorProfile"));
	json_decref(s);
	/* The container's wins, also the deprecated string. */
	Runtime__V1__SecurityProfile sp;
	runtime__v1__security_profile__init(&sp);
	sp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined;
	q.sc.seccomp = &sp;
	assert_int_equal(ctr_plan_seccomp(&q.cfg, &p, &kind, &ref, &err), 0);
	assert_int_equal(kind, CTR_SECCOMP_UNCONFINED);
	q.sc.seccomp = NULL;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	q.sc.seccomp_profile_path = "localhost//etc/ctr.json";
	assert_int_equal(ctr_plan_seccomp(&q.cfg, &p, &kind, &ref, &err), 0);
	assert_int_equal(kind, CTR_SECCOMP_LOCALHOST);
	assert_string_equal(ref, "/etc/ctr.json");
	q.sc.seccomp_profile_path = NULL;
#pragma GCC diagnostic pop
	/* A privileged container: none, whatever the pod says. */
	q.sc.privileged = true;
	assert_int_equal(ctr_plan_seccomp(&q.cfg, &p, &kind, &ref, &err), 0);
	assert_int_equal(kind, CTR_SECCOMP_UNCONFINED);
	q.sc.privileged = false;

	/* A bad profile names the file and the field. */
	json_t *bad = image("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [1]}");
	in.seccomp_profile = bad;
	assert_int_equal(ctr_plan_spec(&in, &s, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "\"/var/lib/kubelet/seccomp/pod.json\": syscalls[0]"));
	in.seccomp_profile = profile;
	json_decref(bad);

	/* User namespaces are the pod's: NODE fine in a pod without one, POD
	 * refused there naming the field. */
	Runtime__V1__UserNamespace u;
	runtime__v1__user_namespace__init(&u);
	q.ns.userns_options = &u;
	u.mode = RUNTIME__V1__NAMESPACE_MODE__NODE;
	assert_int_equal(ctr_plan_spec(&in, &s, &err), 0);
	json_decref(s);
	u.mode = RUNTIME__V1__NAMESPACE_MODE__POD;
	assert_int_equal(ctr_plan_spec(&in, &s, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "namespace_options.userns_options POD: the pod has no"));
	/* A pod with one: a new user namespace of its map, the host's /sys
	 * read-only, no mqueue; NODE then refused, nothing said inherits. */
	p.userns = true;
	p.uid_map = (struct idmap_range){ 1u << 20, 65536 };
	p.gid_map = (struct idmap_range){ 2u << 20, 65536 };
	assert_int_equal(ctr_plan_spec(&in, &s, &err), 0);
	json_t *lx = json_object_get(s, "linux");
	json_t *um = json_array_get(json_object_get(lx, "uidMappings"), 0);
	json_t *gm = json_array_get(json_object_get(lx, "gidMappings"), 0);
	assert_int_equal(json_integer_value(json_object_get(um, "containerID")), 0);
	assert_int_equal(json_integer_value(json_object_get(um, "hostID")), 1 << 20);
	assert_int_equal(json_integer_value(json_object_get(um, "size")), 65536);
	assert_int_equal(json_integer_value(json_object_get(gm, "hostID")), 2 << 20);
	size_t i, users = 0;
	json_t *e;
	json_array_foreach (json_object_get(lx, "namespaces"), i, e)
		if (strcmp(json_string_value(json_object_get(e, "type")), "user") == 0) {
			users++;
			assert_null(json_object_get(e, "path"));
		}
	assert_int_equal(users, 1);
	json_t *sys = find_mount(s, "/sys");
	assert_string_equal(json_string_value(json_object_get(sys, "type")), "bind");
	assert_string_equal(json_string_value(json_object_get(sys, "source")), "/sys");
	assert_true(has_opt(json_object_get(sys, "options"), "ro"));
	assert_null(find_mount(s, "/dev/mqueue"));
	json_decref(s);
	/* A pod whose user namespace owns its others (netd's pin): joined by
	 * path, the mappings beside it, sysfs and mqueue of its own. */
	p.userns_pin = "/run/cric/netd/userns/pod";
	assert_int_equal(ctr_plan_spec(&in, &s, &err), 0);
	lx = json_object_get(s, "linux");
	assert_non_null(json_array_get(json_object_get(lx, "uidMappings"), 0));
	assert_non_null(json_array_get(json_object_get(lx, "gidMappings"), 0));
	users = 0;
	json_array_foreach (json_object_get(lx, "namespaces"), i, e)
		if (strcmp(json_string_value(json_object_get(e, "type")), "user") == 0) {
			users++;
			assert_string_equal(json_string_value(json_object_get(e, "path")),
					    "/run/cric/netd/userns/pod");
		}
	assert_int_equal(users, 1);
	sys = find_mount(s, "/sys");
	assert_string_equal(json_string_value(json_object_get(sys, "type")), "sysfs");
	assert_true(has_opt(json_object_get(sys, "options"), "ro"));
	assert_non_null(find_mount(s, "/dev/mqueue"));
	json_decref(s);
	u.mode = RUNTIME__V1__NAMESPACE_MODE__NODE;
	assert_int_equal(ctr_plan_spec(&in, &s, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "the pod has a user namespace of its own"));
	q.ns.userns_options = NULL;
	assert_int_equal(ctr_plan_spec(&in, &s, &err), 0);
	assert_non_null(json_object_get(json_object_get(s, "linux"), "uidMappings"));
	json_decref(s);
	p.userns = false;
	p.userns_pin = NULL;

	/* With AppArmor and SELinux present. */
	in.lsm = &lsm;
	Runtime__V1__SELinuxOption se;
	runtime__v1__selinux_option__init(&se);
	se.type = "spc_t";
	q.sc.selinux_options = &se;
	assert_int_equal(ctr_plan_spec(&in, &s, &err), 0);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(s, "process"), "apparmorProfile")),
	    CTR_APPARMOR_DEFAULT);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(s, "process"), "selinuxLabel")),
	    "system_u:system_r:spc_t:s0");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(s, "linux"), "mountLabel")),
	    "system_u:object_r:container_file_t:s0");
	json_decref(s);
	/* Without them, the label is refused. */
	in.lsm = NULL;
	assert_int_equal(ctr_plan_spec(&in, &s, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "selinux_options"));
	json_decref(profile);
	json_decref(img);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check),       cmocka_unit_test(test_args),
		cmocka_unit_test(test_env),         cmocka_unit_test(test_users),
		cmocka_unit_test(test_caps),        cmocka_unit_test(test_spec_shape),
		cmocka_unit_test(test_refusals),    cmocka_unit_test(test_privileged),
		cmocka_unit_test(test_stop_signal), cmocka_unit_test(test_security_fields),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
