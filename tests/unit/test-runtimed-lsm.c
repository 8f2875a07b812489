/* runtimed/lsm.h: AppArmor and SELinux fields with the host's modules
 * injected: absent (this host), AppArmor with a list of loaded profiles,
 * SELinux. Refusals name the field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "runtimed/lsm.h"
#include "testutil.h"

static const struct ctr_lsm none = { 0 };
static const struct ctr_lsm apparmor = {
	.apparmor = true,
	.apparmor_profiles = "cric-default (enforce)\nmy-prof (complain)\nmy-prof-x (enforce)\n",
};
static const struct ctr_lsm apparmor_bare = { .apparmor = true }; /* nothing loaded */
static const struct ctr_lsm selinux = { .selinux = true };

struct sc {
	Runtime__V1__LinuxContainerSecurityContext sc;
	Runtime__V1__SecurityProfile aa;
	Runtime__V1__SELinuxOption se;
};

static void sc_init(struct sc *s)
{
	runtime__v1__linux_container_security_context__init(&s->sc);
	runtime__v1__security_profile__init(&s->aa);
	runtime__v1__selinux_option__init(&s->se);
}

static int plan(const struct sc *s, const struct ctr_lsm *lsm, struct ctr_lsm_plan *p, char *msg)
{
	struct cric_err err = { { 0 } };
	int r = ctr_lsm_plan_container(s ? &s->sc : NULL, lsm, p, &err);
	strcpy(msg, err.msg);
	return r;
}

static void aa(struct sc *s, int type, const char *ref)
{
	s->aa.profile_type = type;
	s->aa.localhost_ref = (char *)ref;
	s->sc.apparmor = &s->aa;
}

static void test_absent(void **state)
{
	(void)state;
	struct sc s;
	struct ctr_lsm_plan p;
	char msg[1024];
	sc_init(&s);
	assert_int_equal(plan(NULL, &none, &p, msg), 0);
	assert_string_equal(p.apparmor, "");
	assert_int_equal(plan(&s, &none, &p, msg), 0);
	aa(&s, RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__RuntimeDefault, NULL);
	assert_int_equal(plan(&s, &none, &p, msg), 0);
	assert_string_equal(p.apparmor, "");
	aa(&s, RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined, NULL);
	assert_int_equal(plan(&s, &none, &p, msg), 0);
	aa(&s, RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost, "my-prof");
	assert_int_equal(plan(&s, &none, &p, msg), -EINVAL);
	assert_non_null(strstr(msg, "apparmor: Localhost profile \"my-prof\""));
	assert_non_null(strstr(msg, "no AppArmor"));
	aa(&s, RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost, "");
	assert_int_equal(plan(&s, &none, &p, msg), -EINVAL);
	assert_non_null(strstr(msg, "apparmor"));
	aa(&s, 7, NULL);
	assert_int_equal(plan(&s, &none, &p, msg), -EINVAL);

	/* The deprecated string. */
	s.sc.apparmor = NULL;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	s.sc.apparmor_profile = "runtime/default";
	assert_int_equal(plan(&s, &none, &p, msg), 0);
	s.sc.apparmor_profile = "localhost/my-prof";
	assert_int_equal(plan(&s, &none, &p, msg), -EINVAL);
	assert_non_null(strstr(msg, "apparmor_profile"));
	s.sc.apparmor_profile = "bogus";
	assert_int_equal(plan(&s, &none, &p, msg), -EINVAL);
	assert_non_null(strstr(msg, "apparmor_profile"));
	s.sc.apparmor_profile = NULL;
#pragma GCC diagnostic pop

	/* SELinux: any label is refused, unprivileged or not. */
	s.sc.selinux_options = &s.se;
	assert_int_equal(plan(&s, &none, &p, msg), 0); /* all empty: nothing asked */
	s.se.type = "spc_t";
	assert_int_equal(plan(&s, &none, &p, msg), -EINVAL);
	assert_non_null(strstr(msg, "selinux_options"));
	assert_non_null(strstr(msg, "no SELinux"));
}

static void test_apparmor(void **state)
{
	(void)state;
	struct sc s;
	struct ctr_lsm_plan p;
	char msg[1024];
	sc_init(&s);
	/* No field: the default for an unprivileged container. */
	assert_int_equal(plan(&s, &apparmor, &p, msg), 0);
	assert_string_equal(p.apparmor, CTR_APPARMOR_DEFAULT);
	s.sc.privileged = true;
	assert_int_equal(plan(&s, &apparmor, &p, msg), 0);
	assert_string_equal(p.apparmor, "");
	aa(&s, RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__RuntimeDefault, NULL);
	assert_int_equal(plan(&s, &apparmor, &p, msg), 0);
	assert_string_equal(p.apparmor, CTR_APPARMOR_DEFAULT);
	s.sc.privileged = false;
	aa(&s, RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined, NULL);
	assert_int_equal(plan(&s, &apparmor, &p, msg), 0);
	assert_string_equal(p.apparmor, "");
	aa(&s, RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost, "my-prof");
	assert_int_equal(plan(&s, &apparmor, &p, msg), 0);
	assert_string_equal(p.apparmor, "my-prof");
	aa(&s, RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost, "localhost/my-prof-x");
	assert_int_equal(plan(&s, &apparmor, &p, msg), 0);
	assert_string_equal(p.apparmor, "my-prof-x");
	aa(&s, RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost, "my");
	assert_int_equal(plan(&s, &apparmor, &p, msg), -EINVAL);
	assert_non_null(strstr(msg, "\"my\" is not loaded"));
	aa(&s, RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost, "has space");
	assert_int_equal(plan(&s, &apparmor, &p, msg), -EINVAL);
	/* The default profile not loaded: refused, not silently unconfined. */
	aa(&s, RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__RuntimeDefault, NULL);
	assert_int_equal(plan(&s, &apparmor_bare, &p, msg), -ENOPKG);
	assert_non_null(strstr(msg, CTR_APPARMOR_DEFAULT));
	/* ... naming why runtimed could not load it at start. */
	struct ctr_lsm failed = { .apparmor = true };
	snprintf(failed.default_error, sizeof(failed.default_error),
		 "loading it at start failed: /usr/sbin/apparmor_parser: not found");
	assert_int_equal(plan(&s, &failed, &p, msg), -ENOPKG);
	if (!strstr(msg, "\"cric-default\" is not loaded (loading it at start failed: "
			 "/usr/sbin/apparmor_parser: not found)"))
		fail_msg("%s", msg);
	/* A Localhost profile's message is not about the default's load. */
	aa(&s, RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost, "mine");
	assert_int_equal(plan(&s, &failed, &p, msg), -EINVAL);
	assert_null(strstr(msg, "start failed"));
}

static void test_selinux(void **state)
{
	(void)state;
	struct sc s;
	struct ctr_lsm_plan p;
	char msg[1024];
	sc_init(&s);
	s.sc.selinux_options = &s.se;
	s.se.type = "spc_t";
	s.se.level = "s0:c1,c2";
	assert_int_equal(plan(&s, &selinux, &p, msg), 0);
	assert_string_equal(p.process_label, "system_u:system_r:spc_t:s0:c1,c2");
	assert_string_equal(p.mount_label, "system_u:object_r:container_file_t:s0:c1,c2");
	assert_string_equal(p.apparmor, "");
	s.se.user = "user_u";
	s.se.role = "user_r";
	s.se.type = NULL;
	s.se.level = NULL;
	assert_int_equal(plan(&s, &selinux, &p, msg), 0);
	assert_string_equal(p.process_label, "user_u:user_r:container_t:s0");
	s.se.type = "x:y";
	assert_int_equal(plan(&s, &selinux, &p, msg), -EINVAL);
	assert_non_null(strstr(msg, "selinux_options"));
}

static void test_pod(void **state)
{
	(void)state;
	Runtime__V1__LinuxSandboxSecurityContext sc;
	Runtime__V1__SecurityProfile a;
	Runtime__V1__SELinuxOption se;
	runtime__v1__linux_sandbox_security_context__init(&sc);
	runtime__v1__security_profile__init(&a);
	runtime__v1__selinux_option__init(&se);
	struct cric_err err = { { 0 } };
	assert_int_equal(ctr_lsm_check_pod(NULL, &none, &err), 0);
	assert_int_equal(ctr_lsm_check_pod(&sc, &none, &err), 0);
	sc.apparmor = &a;
	a.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__RuntimeDefault;
	assert_int_equal(ctr_lsm_check_pod(&sc, &none, &err), 0);
	a.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost;
	a.localhost_ref = "my-prof";
	assert_int_equal(ctr_lsm_check_pod(&sc, &none, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "linux.security_context.apparmor"));
	assert_int_equal(ctr_lsm_check_pod(&sc, &apparmor, &err), 0);
	sc.apparmor = NULL;
	sc.selinux_options = &se;
	se.level = "s0";
	assert_int_equal(ctr_lsm_check_pod(&sc, &none, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "linux.security_context.selinux_options"));
	assert_int_equal(ctr_lsm_check_pod(&sc, &selinux, &err), 0);
}

/* selinux_relabel: nothing without SELinux; with it, each asked host path
 * with the container's mount label (or the default one), never the
 * node's system directories. */
static void test_relabel_plan(void **state)
{
	(void)state;
	struct cric_err err = { { 0 } };
	Runtime__V1__ContainerConfig cfg;
	runtime__v1__container_config__init(&cfg);
	Runtime__V1__Mount m[3], *mp[3] = { &m[0], &m[1], &m[2] };
	for (int i = 0; i < 3; i++)
		runtime__v1__mount__init(&m[i]);
	m[0].selinux_relabel = true;
	m[2].selinux_relabel = true;
	cfg.mounts = mp;
	cfg.n_mounts = 3;
	char *paths[] = { "/var/lib/kubelet/pods/u/volumes/a", "/srv/b", "/srv/c" };
	struct ctr_relabel rl[3];
	size_t n = 9;
	struct ctr_lsm_plan lp = { .mount_label = "system_u:object_r:container_file_t:s0:c1,c2" };
	assert_int_equal(ctr_lsm_plan_relabels(&cfg, paths, &none, &lp, rl, &n, &err), 0);
	assert_int_equal(n, 0); /* no SELinux: a no-op, as the peers */
	assert_int_equal(ctr_lsm_plan_relabels(&cfg, paths, &selinux, &lp, rl, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(rl[0].path, paths[0]);
	assert_string_equal(rl[0].label, "system_u:object_r:container_file_t:s0:c1,c2");
	assert_string_equal(rl[1].path, "/srv/c");
	struct ctr_lsm_plan bare = { { 0 } };
	assert_int_equal(ctr_lsm_plan_relabels(&cfg, paths, &selinux, &bare, rl, &n, &err), 0);
	assert_string_equal(rl[1].label, CTR_SELINUX_FILE_DEFAULT);
	paths[2] = "/usr";
	assert_int_equal(ctr_lsm_plan_relabels(&cfg, paths, &selinux, &lp, rl, &n, &err), -EINVAL);
	if (!strstr(err.msg, "mounts[2].selinux_relabel") || !strstr(err.msg, "\"/usr\""))
		fail_msg("%s", err.msg);
	paths[2] = "/";
	assert_int_equal(ctr_lsm_plan_relabels(&cfg, paths, &selinux, &lp, rl, &n, &err), -EINVAL);
	/* Without SELinux even a system path is left alone (nothing is done). */
	assert_int_equal(ctr_lsm_plan_relabels(&cfg, paths, &none, &lp, rl, &n, &err), 0);
}

/* The relabel itself over a temp tree: every file gets the label where
 * the filesystem keeps security.* attributes (root can set them without
 * SELinux on ext4/tmpfs); where it keeps none, ENOTSUP is skipped. */
static void test_relabel_tree(void **state)
{
	(void)state;
	char *dir = tmpdir_make("relabel");
	char p[PATH_MAX];
	assert_int_equal(mkdir(tpath(p, dir, "sub"), 0755), 0);
	write_text(tpath(p, dir, "sub/f"), "x");
	assert_int_equal(symlink("/etc/passwd", tpath(p, dir, "link")), 0);
	struct ctr_relabel rl = { .path = dir, .label = "system_u:object_r:container_file_t:s0" };
	struct cric_err err = { { 0 } };
	assert_int_equal(ctr_lsm_relabel(&rl, &err), 0);
	char got[256];
	ssize_t n = getxattr(tpath(p, dir, "sub/f"), "security.selinux", got, sizeof(got));
	if (n >= 0) {
		assert_string_equal(got, rl.label);
		assert_true(getxattr(dir, "security.selinux", got, sizeof(got)) > 0);
		/* The symlink's target is not touched. */
		assert_true(getxattr("/etc/passwd", "security.selinux", got, sizeof(got)) < 0 ||
			    strcmp(got, rl.label) != 0);
	} else {
		assert_true(errno == ENOTSUP || errno == ENODATA);
	}
	rl.path = "/nonexistent/cric-relabel";
	assert_int_equal(ctr_lsm_relabel(&rl, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "/nonexistent/cric-relabel"));
	tmpdir_remove(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_absent),       cmocka_unit_test(test_apparmor),
		cmocka_unit_test(test_selinux),      cmocka_unit_test(test_pod),
		cmocka_unit_test(test_relabel_plan), cmocka_unit_test(test_relabel_tree),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
