/* The devices, CDI, mount propagation and leftover resources of a
 * container: the plan's part (runtimed/ctrdevplan.c through
 * ctr_plan_spec), the mountinfo reading (ctrprop.h), the CDI spec parser
 * and resolver (cdi.h, the resolver over a temp directory and /dev/null),
 * hugepage sizes and merging (ctrres.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "runtimed/cdi.h"
#include "runtimed/container.h"
#include "runtimed/ctrplan.h"
#include "runtimed/ctrprop.h"
#include "runtimed/ctrres.h"
#include "testutil.h"

#define ID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static const struct ctr_pod pod = {
	.id = ID,
	.name = "web",
	.namespace = "default",
	.uid = "u-1",
	.hostname = "web",
	.dir = "/run/cric/pod",
	.pid_mode = RUNTIME__V1__NAMESPACE_MODE__CONTAINER,
	.netns = "/run/netns/x",
	.ipc_pin = "/run/ipc",
	.uts_pin = "/run/uts",
	.cgroup = "/cric/pod-x",
	.cgroup_parent = "",
};

static const struct ctr_user root_user = { .uid = 0, .gid = 0, .home = "/root" };

struct req {
	Runtime__V1__ContainerConfig cfg;
	Runtime__V1__ContainerMetadata md;
	Runtime__V1__ImageSpec img;
	Runtime__V1__LinuxContainerConfig lx;
	Runtime__V1__LinuxContainerResources res;
};

static void req_init(struct req *q)
{
	memset(q, 0, sizeof(*q));
	runtime__v1__container_config__init(&q->cfg);
	runtime__v1__container_metadata__init(&q->md);
	runtime__v1__image_spec__init(&q->img);
	runtime__v1__linux_container_config__init(&q->lx);
	runtime__v1__linux_container_resources__init(&q->res);
	q->md.name = "app";
	q->img.image = "busybox";
	q->cfg.metadata = &q->md;
	q->cfg.image = &q->img;
	q->cfg.linux = &q->lx;
	static char *args[] = { "x" };
	q->cfg.command = args;
	q->cfg.n_command = 1;
}

static int plan(struct req *q, const struct ctr_plan_in *extra, json_t **ret, char *msg)
{
	struct cric_err err = { { 0 } };
	struct ctr_plan_in in = extra ? *extra : (struct ctr_plan_in){ 0 };
	in.id = ID;
	in.cfg = &q->cfg;
	in.pod = &pod;
	in.rootfs = "/rootfs";
	in.user = &root_user;
	in.nofile = 1024;
	int r = ctr_plan_spec(&in, ret, &err);
	snprintf(msg, 1024, "%s", err.msg);
	return r;
}

static json_t *find_path(json_t *a, const char *key, const char *path)
{
	size_t i;
	json_t *v;
	json_array_foreach (a, i, v)
		if (strcmp(json_string_value(json_object_get(v, key)) ?: "", path) == 0)
			return v;
	return NULL;
}

static void test_devices(void **state)
{
	(void)state;
	struct req q;
	req_init(&q);
	Runtime__V1__Device d, *dp = &d;
	runtime__v1__device__init(&d);
	d.host_path = "/dev/null";
	d.container_path = "/dev/xnull";
	d.permissions = "rw";
	q.cfg.devices = &dp;
	q.cfg.n_devices = 1;
	const struct ctr_device host = { "/dev/null", 'c', 1, 3, 0666, 0, 0, 0, 9 };
	const struct ctr_plan_in in = { .req_devices = &host, .n_req_devices = 1 };
	json_t *s = NULL;
	char msg[1024];
	assert_int_equal(plan(&q, &in, &s, msg), 0);
	json_t *lx = json_object_get(s, "linux");
	json_t *dev = find_path(json_object_get(lx, "devices"), "path", "/dev/xnull");
	assert_non_null(dev);
	assert_string_equal(json_string_value(json_object_get(dev, "type")), "c");
	assert_int_equal(json_integer_value(json_object_get(dev, "major")), 1);
	assert_int_equal(json_integer_value(json_object_get(dev, "minor")), 3);
	assert_int_equal(json_integer_value(json_object_get(dev, "fileMode")), 0666);
	json_t *rules = json_object_get(json_object_get(lx, "resources"), "devices");
	assert_int_equal(json_array_size(rules), 1);
	json_t *rule = json_array_get(rules, 0);
	assert_true(json_is_true(json_object_get(rule, "allow")));
	assert_string_equal(json_string_value(json_object_get(rule, "access")), "rw");
	assert_int_equal(json_integer_value(json_object_get(rule, "minor")), 3);
	assert_null(json_object_get(lx, "rootfsPropagation"));
	json_decref(s);
	/* Empty permissions: all three. */
	d.permissions = "";
	assert_int_equal(plan(&q, &in, &s, msg), 0);
	rules =
	    json_object_get(json_object_get(json_object_get(s, "linux"), "resources"), "devices");
	assert_string_equal(json_string_value(json_object_get(json_array_get(rules, 0), "access")),
			    "rwm");
	json_decref(s);
	/* Refusals name the field. */
	d.permissions = "rwx";
	assert_int_equal(plan(&q, &in, &s, msg), -EINVAL);
	assert_non_null(strstr(msg, "devices[0].permissions"));
	d.permissions = "rr";
	assert_int_equal(plan(&q, &in, &s, msg), -EINVAL);
	d.permissions = "r";
	d.container_path = "dev/x";
	assert_int_equal(plan(&q, &in, &s, msg), -EINVAL);
	assert_non_null(strstr(msg, "devices[0].container_path"));
	d.container_path = "/dev/x";
	assert_int_equal(plan(&q, NULL, &s, msg), -EINVAL); /* no host node handed in */
}

/* A directory as host_path: every node under it (not the skipped
 * directories, symlinks or plain files), at container_path plus its path
 * under the directory, each with its cgroup rule. */
static void test_device_directory(void **state)
{
	(void)state;
	REQUIRE_ROOT("mknod");
	char *dir = tmpdir_make("devdir");
	char p[PATH_MAX], sub[PATH_MAX];
	assert_int_equal(mkdir(tpath(sub, dir, "sub"), 0755), 0);
	assert_int_equal(mkdir(tpath(p, dir, "pts"), 0755), 0);
	assert_int_equal(mknod(tpath(p, dir, "pts/0"), S_IFCHR | 0600, makedev(240, 9)), 0);
	assert_int_equal(mknod(tpath(p, dir, "a"), S_IFCHR | 0640, makedev(240, 1)), 0);
	assert_int_equal(mknod(tpath(p, sub, "b"), S_IFBLK | 0600, makedev(240, 2)), 0);
	write_text(tpath(p, dir, "plain"), "not a device");
	char ln[PATH_MAX];
	assert_int_equal(symlink(tpath(p, dir, "a"), tpath(ln, dir, "link")), 0);

	struct req q;
	req_init(&q);
	Runtime__V1__Device d[2], *dp[2] = { &d[0], &d[1] };
	runtime__v1__device__init(&d[0]);
	runtime__v1__device__init(&d[1]);
	d[0].host_path = dir;
	d[0].container_path = "/dev/grp";
	d[0].permissions = "r";
	d[1].host_path = (char *)tpath(p, dir, "a");
	d[1].container_path = "/dev/one";
	q.cfg.devices = dp;
	q.cfg.n_devices = 2;
	struct cric_err err = { { 0 } };
	struct ctr_device *found = NULL;
	size_t n = 0;
	assert_int_equal(ctr_req_devices(&q.cfg, &found, &n, &err), 0);
	assert_int_equal(n, 3);
	const struct ctr_plan_in in = { .req_devices = found, .n_req_devices = n };
	json_t *s = NULL;
	char msg[1024];
	assert_int_equal(plan(&q, &in, &s, msg), 0);
	json_t *lx = json_object_get(s, "linux");
	json_t *devs = json_object_get(lx, "devices");
	json_t *a = find_path(devs, "path", "/dev/grp/a");
	json_t *b = find_path(devs, "path", "/dev/grp/sub/b");
	json_t *one = find_path(devs, "path", "/dev/one");
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(one);
	assert_null(find_path(devs, "path", "/dev/grp/pts/0"));
	assert_null(find_path(devs, "path", "/dev/grp/plain"));
	assert_null(find_path(devs, "path", "/dev/grp/link"));
	assert_int_equal(json_array_size(devs), 3);
	assert_string_equal(json_string_value(json_object_get(b, "type")), "b");
	assert_int_equal(json_integer_value(json_object_get(b, "minor")), 2);
	assert_int_equal(json_integer_value(json_object_get(a, "fileMode")), 0640);
	json_t *rules = json_object_get(json_object_get(lx, "resources"), "devices");
	assert_int_equal(json_array_size(rules), 3);
	assert_string_equal(json_string_value(json_object_get(json_array_get(rules, 0), "access")),
			    "r");
	assert_string_equal(json_string_value(json_object_get(json_array_get(rules, 2), "access")),
			    "rwm");
	json_decref(s);
	free(found);

	/* An empty directory gives nothing (as containerd); a plain file is
	 * refused naming the field. */
	d[0].host_path = sub;
	assert_int_equal(unlink(tpath(p, sub, "b")), 0);
	q.cfg.n_devices = 1;
	assert_int_equal(ctr_req_devices(&q.cfg, &found, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_non_null(found);
	free(found);
	d[0].host_path = (char *)tpath(p, dir, "plain");
	assert_int_equal(ctr_req_devices(&q.cfg, &found, &n, &err), -EINVAL);
	if (!strstr(err.msg, "devices[0].host_path") || !strstr(err.msg, "directory"))
		fail_msg("%s", err.msg);
	tmpdir_remove(dir);
}

static void test_propagation_and_resources(void **state)
{
	(void)state;
	struct req q;
	req_init(&q);
	Runtime__V1__Mount m[2], *mp[2] = { &m[0], &m[1] };
	for (int i = 0; i < 2; i++)
		runtime__v1__mount__init(&m[i]);
	m[0].container_path = "/a";
	m[1].container_path = "/b";
	char *hp[] = { "/srv/a", "/srv/b", NULL };
	q.cfg.mounts = mp;
	q.cfg.n_mounts = 2;
	const struct ctr_plan_in in = { .host_paths = hp };
	json_t *s = NULL;
	char msg[1024];
	static const struct {
		Runtime__V1__MountPropagation a, b;
		const char *root, *opt_a;
	} cases[] = {
		{ RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_PRIVATE,
		  RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_PRIVATE, NULL, "rprivate" },
		{ RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_HOST_TO_CONTAINER,
		  RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_PRIVATE, "rslave", "rslave" },
		{ RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_HOST_TO_CONTAINER,
		  RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_BIDIRECTIONAL, "rshared", "rslave" },
		{ RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_BIDIRECTIONAL,
		  RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_PRIVATE, "rshared", "rshared" },
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(*cases); c++) {
		m[0].propagation = cases[c].a;
		m[1].propagation = cases[c].b;
		assert_int_equal(plan(&q, &in, &s, msg), 0);
		json_t *rp = json_object_get(json_object_get(s, "linux"), "rootfsPropagation");
		if (cases[c].root)
			assert_string_equal(json_string_value(rp), cases[c].root);
		else
			assert_null(rp);
		json_t *opts = json_object_get(
		    find_path(json_object_get(s, "mounts"), "destination", "/a"), "options");
		assert_string_equal(json_string_value(json_array_get(opts, 1)), cases[c].opt_a);
		json_decref(s);
	}
	q.cfg.n_mounts = 0;

	/* Hugepage limits with a hugetlb controller; unified as given;
	 * swap beside the memory limit. */
	Runtime__V1__HugepageLimit h, *hp2 = &h;
	runtime__v1__hugepage_limit__init(&h);
	h.page_size = "2MB";
	h.limit = 4194304;
	Runtime__V1__LinuxContainerResources__UnifiedEntry u, *up = &u;
	runtime__v1__linux_container_resources__unified_entry__init(&u);
	u.key = "memory.high";
	u.value = "1000000";
	q.res.hugepage_limits = &hp2;
	q.res.n_hugepage_limits = 1;
	q.res.unified = &up;
	q.res.n_unified = 1;
	q.res.memory_limit_in_bytes = 1 << 26;
	q.res.memory_swap_limit_in_bytes = 1 << 27;
	q.lx.resources = &q.res;
	const struct ctr_plan_in with = { .hugetlb = true };
	assert_int_equal(plan(&q, &with, &s, msg), 0);
	json_t *res = json_object_get(json_object_get(s, "linux"), "resources");
	json_t *hl = json_array_get(json_object_get(res, "hugepageLimits"), 0);
	assert_string_equal(json_string_value(json_object_get(hl, "pageSize")), "2MB");
	assert_int_equal(json_integer_value(json_object_get(hl, "limit")), 4194304);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(res, "unified"), "memory.high")),
	    "1000000");
	assert_int_equal(
	    json_integer_value(json_object_get(json_object_get(res, "memory"), "swap")), 1 << 27);
	json_decref(s);
	/* Without one (the caller let only limits that hold by themselves
	 * through): none in the spec. */
	assert_int_equal(plan(&q, NULL, &s, msg), 0);
	res = json_object_get(json_object_get(s, "linux"), "resources");
	assert_null(json_object_get(res, "hugepageLimits"));
	json_decref(s);
}

static void test_mountinfo(void **state)
{
	(void)state;
	const char *mi = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
			 "30 22 0:25 / /srv rw master:7 - tmpfs t rw\n"
			 "31 30 0:26 / /srv/priv rw - tmpfs t rw\n"
			 "32 30 0:27 / /srv/with\\040space rw shared:9 master:3 - tmpfs t rw\n"
			 "bad line\n"
			 "33 22 0:28 / /srvx rw - tmpfs t rw";
	char mp[256];
	assert_int_equal(mountinfo_propagation(mi, "/home/x", mp, sizeof(mp)), MNT_PROP_SHARED);
	assert_string_equal(mp, "/");
	assert_int_equal(mountinfo_propagation(mi, "/srv/a/b", mp, sizeof(mp)), MNT_PROP_SLAVE);
	assert_string_equal(mp, "/srv");
	assert_int_equal(mountinfo_propagation(mi, "/srv/priv", mp, sizeof(mp)), 0);
	assert_int_equal(mountinfo_propagation(mi, "/srvx/y", mp, sizeof(mp)), 0);
	assert_string_equal(mp, "/srvx");
	assert_int_equal(mountinfo_propagation(mi, "/srv/with space/d", mp, sizeof(mp)),
			 MNT_PROP_SHARED | MNT_PROP_SLAVE);
	assert_string_equal(mp, "/srv/with space");
	assert_int_equal(mountinfo_propagation("", "/x", mp, sizeof(mp)), -ENOENT);
	assert_int_equal(mountinfo_propagation("garbage\n\n", "/x", mp, sizeof(mp)), -ENOENT);
	/* Stacked on the same mount point: the last one counts. */
	assert_int_equal(mountinfo_propagation("1 0 0:1 / /m rw shared:2 - t t rw\n"
					       "2 1 0:2 / /m rw - t t rw\n",
					       "/m", mp, sizeof(mp)),
			 0);
}

#define SPEC_JSON                                                                                  \
	"{\"cdiVersion\":\"0.6.0\",\"kind\":\"example.com/dev\","                                  \
	"\"containerEdits\":{\"env\":[\"SPEC=1\"]},"                                               \
	"\"devices\":[{\"name\":\"a\",\"containerEdits\":{\"env\":[\"A=1\"],"                      \
	"\"deviceNodes\":[{\"path\":\"/dev/cdi-a\",\"hostPath\":\"/dev/null\"}],"                  \
	"\"mounts\":[{\"hostPath\":\"/srv\",\"containerPath\":\"/mnt\"}],"                         \
	"\"hooks\":[{\"hookName\":\"createContainer\",\"path\":\"/bin/true\"}]}},"                 \
	"{\"name\":\"b\",\"containerEdits\":{\"env\":[\"B=1\"]}}]}"

#define SPEC_YAML                                                                                  \
	"cdiVersion: 0.6.0\n"                                                                      \
	"kind: example.com/yml\n"                                                                  \
	"devices:\n"                                                                               \
	"  - name: y0\n"                                                                           \
	"    containerEdits:\n"                                                                    \
	"      env: [\"Y=yes\"]\n"                                                                 \
	"      deviceNodes:\n"                                                                     \
	"        - path: /dev/cdi-y\n"                                                             \
	"          hostPath: /dev/null\n"                                                          \
	"          type: c\n"                                                                      \
	"          major: 1\n"                                                                     \
	"          minor: 3\n"                                                                     \
	"          fileMode: 0640\n"

static void bad_spec(const char *text, bool yaml, const char *want)
{
	json_t *s = NULL;
	struct cric_err err = { { 0 } };
	assert_int_equal(cdi_spec_parse(text, strlen(text), yaml, &s, &err), -EINVAL);
	if (!strstr(err.msg, want))
		fail_msg("\"%s\" lacks \"%s\"", err.msg, want);
}

static void test_cdi_parse(void **state)
{
	(void)state;
	json_t *s = NULL;
	struct cric_err err = { { 0 } };
	assert_int_equal(cdi_spec_parse(SPEC_JSON, strlen(SPEC_JSON), false, &s, &err), 0);
	json_decref(s);
	assert_int_equal(cdi_spec_parse(SPEC_YAML, strlen(SPEC_YAML), true, &s, &err), 0);
	json_t *n = json_array_get(
	    json_object_get(
		json_object_get(json_array_get(json_object_get(s, "devices"), 0), "containerEdits"),
		"deviceNodes"),
	    0);
	assert_int_equal(json_integer_value(json_object_get(n, "fileMode")), 0640);
	assert_string_equal(json_string_value(json_object_get(n, "type")), "c");
	json_decref(s);

	bad_spec("{}", false, "cdiVersion");
	bad_spec("{\"cdiVersion\":\"0.6.0\",\"kind\":\"nodomain\",\"devices\":[]}", false, "kind");
	bad_spec("{\"cdiVersion\":\"0.6.0\",\"kind\":\"a.com/x\",\"devices\":[]}", false,
		 "devices");
	bad_spec("{\"cdiVersion\":\"0.6.0\",\"kind\":\"a.com/x\",\"devices\":[{\"name\":\"-\"}]}",
		 false, "devices[0].name");
	bad_spec("{\"cdiVersion\":\"0.6.0\",\"kind\":\"a.com/x\",\"devices\":[{\"name\":\"a\"},"
		 "{\"name\":\"a\"}]}",
		 false, "twice");
	bad_spec("{\"cdiVersion\":\"0.6.0\",\"kind\":\"a.com/x\",\"devices\":[{\"name\":\"a\","
		 "\"containerEdits\":{\"deviceNodes\":[{\"path\":\"rel\"}]}}]}",
		 false, "deviceNodes[0].path");
	bad_spec("{\"cdiVersion\":\"0.6.0\",\"kind\":\"a.com/x\",\"devices\":[{\"name\":\"a\","
		 "\"containerEdits\":{\"deviceNodes\":[{\"path\":\"/d\",\"major\":-1}]}}]}",
		 false, "major");
	bad_spec("{\"cdiVersion\":\"0.6.0\",\"kind\":\"a.com/x\",\"devices\":[{\"name\":\"a\","
		 "\"containerEdits\":{\"hooks\":[{\"hookName\":\"x\",\"path\":\"/b\"}]}}]}",
		 false, "hookName");
	bad_spec("{\"cdiVersion\":\"0.6.0\",\"kind\":\"a.com/x\",\"containerEdits\":{\"env\":"
		 "[\"NOEQUALS\"]},\"devices\":[{\"name\":\"a\"}]}",
		 false, "containerEdits.env[0]");
	bad_spec("{\"cdiVersion\":", false, "JSON");
	bad_spec("a: &x [1]\nb: *x\n", true, "aliases");
	bad_spec("a: [1\n", true, "YAML");
	bad_spec("a: 1\na: 2\n", true, "twice");
	bad_spec("? [1]\n: 2\n", true, "key");
	char deep[200] = "";
	for (int i = 0; i < 40; i++)
		strcat(deep, "[");
	bad_spec(deep, true, "YAML");
	char *big = malloc(CDI_SPEC_MAX + 2);
	assert_non_null(big);
	memset(big, ' ', CDI_SPEC_MAX + 1);
	big[CDI_SPEC_MAX + 1] = '\0';
	bad_spec(big, false, "larger");
	free(big);
}

static void test_cdi_resolve(void **state)
{
	(void)state;
	char *dir = tmpdir_make("cdi");
	char *d1 = NULL, *d2 = NULL;
	assert_true(asprintf(&d1, "%s/etc", dir) > 0 && asprintf(&d2, "%s/run", dir) > 0);
	assert_int_equal(mkdir(d1, 0755), 0);
	assert_int_equal(mkdir(d2, 0755), 0);
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/a.json", d1);
	write_text(path, SPEC_JSON);
	snprintf(path, sizeof(path), "%s/y.yaml", d2);
	write_text(path, SPEC_YAML);
	snprintf(path, sizeof(path), "%s/broken.json", d2);
	write_text(path, "{not json");
	snprintf(path, sizeof(path), "%s/ignored.txt", d2);
	write_text(path, "whatever");
	char *dirs[] = { d1, d2, NULL };
	char *names[] = { "example.com/dev=a", "example.com/dev=b", "example.com/yml=y0" };
	json_t *e = NULL;
	struct cric_err err = { { 0 } };
	assert_int_equal(cdi_resolve(dirs, names, NULL, 3, &e, &err), 0);
	/* The spec's env once, then each device's, in order. */
	json_t *env = json_object_get(e, "env");
	assert_int_equal(json_array_size(env), 4);
	assert_string_equal(json_string_value(json_array_get(env, 0)), "SPEC=1");
	assert_string_equal(json_string_value(json_array_get(env, 1)), "A=1");
	assert_string_equal(json_string_value(json_array_get(env, 2)), "B=1");
	assert_string_equal(json_string_value(json_array_get(env, 3)), "Y=yes");
	json_t *nodes = json_object_get(e, "deviceNodes");
	assert_int_equal(json_array_size(nodes), 2);
	json_t *a = json_array_get(nodes, 0);
	struct stat st;
	assert_int_equal(stat("/dev/null", &st), 0);
	assert_string_equal(json_string_value(json_object_get(a, "path")), "/dev/cdi-a");
	assert_string_equal(json_string_value(json_object_get(a, "type")), "c");
	assert_int_equal(json_integer_value(json_object_get(a, "major")), major(st.st_rdev));
	assert_int_equal(json_integer_value(json_object_get(a, "minor")), minor(st.st_rdev));
	assert_string_equal(json_string_value(json_object_get(a, "permissions")), "rwm");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(nodes, 1), "fileMode")),
			 0640);
	json_t *m = json_array_get(json_object_get(e, "mounts"), 0);
	assert_string_equal(json_string_value(json_object_get(m, "type")), "bind");
	assert_int_equal(json_array_size(json_object_get(m, "options")), 2);
	assert_int_equal(json_array_size(json_object_get(e, "hooks")), 1);

	/* Applied by the plan: env, a node with its rule, the mount, the hook. */
	struct req q;
	req_init(&q);
	json_t *s = NULL;
	char msg[1024];
	const struct ctr_plan_in in = { .cdi_edits = e };
	assert_int_equal(plan(&q, &in, &s, msg), 0);
	json_t *penv = json_object_get(json_object_get(s, "process"), "env");
	assert_non_null(find_path(json_object_get(json_object_get(s, "linux"), "devices"), "path",
				  "/dev/cdi-y"));
	bool seen = false;
	size_t i;
	json_t *v;
	json_array_foreach (penv, i, v)
		seen |= strcmp(json_string_value(v), "Y=yes") == 0;
	assert_true(seen);
	assert_int_equal(json_array_size(json_object_get(
			     json_object_get(json_object_get(s, "linux"), "resources"), "devices")),
			 2);
	assert_non_null(find_path(json_object_get(s, "mounts"), "destination", "/mnt"));
	assert_int_equal(
	    json_array_size(json_object_get(json_object_get(s, "hooks"), "createContainer")), 1);
	json_decref(s);
	json_decref(e);

	/* Unknown names, twice the same, a malformed name: refused naming it. */
	char *unknown[] = { "example.com/dev=zzz" };
	assert_int_equal(cdi_resolve(dirs, unknown, NULL, 1, &e, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "CDI_devices[0] \"example.com/dev=zzz\""));
	char *from[] = { "annotation \"cdi.k8s.io/x\"" };
	assert_int_equal(cdi_resolve(dirs, unknown, from, 1, &e, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "annotation \"cdi.k8s.io/x\" \"example.com/dev=zzz\""));
	char *twice[] = { "example.com/dev=b", "example.com/dev=b" };
	assert_int_equal(cdi_resolve(dirs, twice, NULL, 2, &e, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "twice"));
	char *noeq[] = { "example.com/dev" };
	assert_int_equal(cdi_resolve(dirs, noeq, NULL, 1, &e, &err), -EINVAL);
	/* A later directory's device of the same name wins; a missing host
	 * node is an error. */
	snprintf(path, sizeof(path), "%s/z.json", d2);
	write_text(path, "{\"cdiVersion\":\"0.6.0\",\"kind\":\"example.com/dev\",\"devices\":"
			 "[{\"name\":\"a\",\"containerEdits\":{\"deviceNodes\":"
			 "[{\"path\":\"/dev/gone\",\"hostPath\":\"/nonexistent/cdi\"}]}}]}");
	char *a_only[] = { "example.com/dev=a" };
	assert_int_equal(cdi_resolve(dirs, a_only, NULL, 1, &e, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "/nonexistent/cdi"));
	/* Edits cric does not apply: refused, not dropped. */
	write_text(path, "{\"cdiVersion\":\"0.6.0\",\"kind\":\"example.com/dev\",\"devices\":"
			 "[{\"name\":\"a\",\"containerEdits\":{\"additionalGids\":[5]}}]}");
	assert_int_equal(cdi_resolve(dirs, a_only, NULL, 1, &e, &err), -EOPNOTSUPP);
	assert_non_null(strstr(err.msg, "additionalGids"));
	tmpdir_remove(dir);
	free(d1);
	free(d2);
}

/* CDI_devices merged with the cdi.k8s.io/ annotations: each name once,
 * where it came from kept for messages; malformed names refused naming
 * the annotation. */
static void test_cdi_annotations(void **state)
{
	(void)state;
	struct cric_err err = { { 0 } };
	struct cdi_request *r = calloc(1, sizeof(*r));
	assert_non_null(r);
	char *field[] = { "example.com/dev=a" };
	char *keys[] = { "cdi.k8s.io/plugin_dev-1", "io.kubernetes.other", "cdi.k8s.io/z" };
	char *values[] = { "example.com/dev=a,example.com/dev=b", "not=cdi", "example.com/dev=b" };
	assert_int_equal(cdi_request_collect(field, 1, keys, values, 3, r, &err), 0);
	assert_int_equal(r->n, 2);
	assert_string_equal(r->names[0], "example.com/dev=a");
	assert_string_equal(r->sources[0], "CDI_devices[0]");
	assert_string_equal(r->names[1], "example.com/dev=b");
	assert_string_equal(r->sources[1], "annotation \"cdi.k8s.io/plugin_dev-1\"");
	cdi_request_done(r);
	/* No field, no annotation: nothing asked. */
	assert_int_equal(cdi_request_collect(NULL, 0, keys + 1, values + 1, 1, r, &err), 0);
	assert_int_equal(r->n, 0);
	cdi_request_done(r);
	static char *const bad[] = { "dev=a",
				     "example.com/dev=",
				     "example.com/dev=a,,example.com/dev=b",
				     "",
				     "example.com/dev=a,",
				     "EXAMPLE.com/dev=a",
				     "example.com/dev=a b" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		char *v[] = { bad[i] };
		assert_int_equal(cdi_request_collect(NULL, 0, keys, v, 1, r, &err), -EINVAL);
		if (!strstr(err.msg, "annotation \"cdi.k8s.io/plugin_dev-1\""))
			fail_msg("%s: %s", bad[i], err.msg);
		cdi_request_done(r);
	}
	/* Bounded: CDI_MAX_DEVICES names in all. */
	size_t len = (CDI_MAX_DEVICES + 1) * 24;
	char *many = calloc(1, len);
	assert_non_null(many);
	for (int i = 0; i <= CDI_MAX_DEVICES; i++)
		snprintf(many + strlen(many), len - strlen(many), "%sexample.com/dev=d%d",
			 i ? "," : "", i);
	char *v[] = { many };
	assert_int_equal(cdi_request_collect(NULL, 0, keys, v, 1, r, &err), -E2BIG);
	cdi_request_done(r);
	free(many);
	free(r);
}

static void test_hugepages(void **state)
{
	(void)state;
	uint64_t kb = 0;
	assert_true(ctr_hugepage_kb("2MB", &kb));
	assert_int_equal(kb, 2048);
	assert_true(ctr_hugepage_kb("1GB", &kb));
	assert_int_equal(kb, 1048576);
	assert_true(ctr_hugepage_kb("64KB", &kb));
	assert_int_equal(kb, 64);
	assert_false(ctr_hugepage_kb("3MB", &kb));
	assert_false(ctr_hugepage_kb("2Mi", &kb));
	assert_false(ctr_hugepage_kb("02MB", &kb));
	assert_false(ctr_hugepage_kb("", &kb));
	assert_false(ctr_hugepage_kb(NULL, &kb));

	Runtime__V1__LinuxContainerResources r = RUNTIME__V1__LINUX_CONTAINER_RESOURCES__INIT;
	Runtime__V1__HugepageLimit a = RUNTIME__V1__HUGEPAGE_LIMIT__INIT,
				   b = RUNTIME__V1__HUGEPAGE_LIMIT__INIT;
	Runtime__V1__HugepageLimit *v[] = { &a, &b };
	a.page_size = "2MB";
	b.page_size = "1GB";
	r.hugepage_limits = v;
	r.n_hugepage_limits = 2;
	struct cric_err err = { { 0 } };
	assert_int_equal(ctr_res_check(&r, false, &err), 0);
	b.page_size = "2MB";
	assert_int_equal(ctr_res_check(&r, false, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "twice"));
	b.page_size = "2XB";
	assert_int_equal(ctr_res_check(&r, false, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "hugepage_limits[1].page_size"));

	/* Merged by page size. */
	b.page_size = "1GB";
	a.limit = 1 << 21;
	Runtime__V1__LinuxContainerResources upd = RUNTIME__V1__LINUX_CONTAINER_RESOURCES__INIT;
	Runtime__V1__HugepageLimit c = RUNTIME__V1__HUGEPAGE_LIMIT__INIT;
	Runtime__V1__HugepageLimit *w[] = { &c };
	c.page_size = "2MB";
	c.limit = 1 << 22;
	upd.hugepage_limits = w;
	upd.n_hugepage_limits = 1;
	upd.memory_swap_limit_in_bytes = 1 << 27;
	Runtime__V1__LinuxContainerResources *m = NULL;
	assert_int_equal(ctr_res_merge(&r, &upd, &m), 0);
	assert_int_equal(m->n_hugepage_limits, 2);
	assert_string_equal(m->hugepage_limits[0]->page_size, "2MB");
	assert_int_equal(m->hugepage_limits[0]->limit, 1 << 22);
	assert_int_equal(m->memory_swap_limit_in_bytes, 1 << 27);
	protobuf_c_message_free_unpacked(&m->base, NULL);
	assert_int_equal(ctr_res_merge(NULL, &upd, &m), 0);
	assert_int_equal(m->n_hugepage_limits, 1);
	protobuf_c_message_free_unpacked(&m->base, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_devices),
		cmocka_unit_test(test_device_directory),
		cmocka_unit_test(test_propagation_and_resources),
		cmocka_unit_test(test_mountinfo),
		cmocka_unit_test(test_cdi_parse),
		cmocka_unit_test(test_cdi_resolve),
		cmocka_unit_test(test_cdi_annotations),
		cmocka_unit_test(test_hugepages),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
