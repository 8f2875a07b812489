/* runtimed/caps.h and seccomp-default.h end to end with the real runc: a
 * bundle whose rootfs holds only a static probe (built here with
 * gcc -static), its process.capabilities and linux.seccomp made by our
 * modules, run by `runc run`; the probe reports from inside what the
 * kernel says: its capability sets from /proc/self/status and the errno of
 * a few syscalls. Needs root, runc and a static libc: skipped otherwise
 * (a failure under CI=true). No network, no pod. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/macro.h"
#include "runtimed/caps.h"
#include "runtimed/seccomp-default.h"
#include "testutil.h"

#define BIT(c)           (UINT64_C(1) << (c))
#define NET_BIND_SERVICE 10
#define DEFAULT_NINE     UINT64_C(0x5fb)

/* The probe: one "key value" line per fact. */
static const char probe_src[] =
    "#define _GNU_SOURCE\n"
    "#include <errno.h>\n#include <pthread.h>\n#include <sched.h>\n#include <stdio.h>\n"
    "#include <stdlib.h>\n#include <string.h>\n#include <sys/syscall.h>\n#include <sys/wait.h>\n"
    "#include <unistd.h>\n"
    "static void *t(void *a) { return a; }\n"
    "static int e(long r) { return r < 0 ? errno : 0; }\n"
    "int main(void) {\n"
    "  char l[256]; FILE *f = fopen(\"/proc/self/status\", \"r\");\n"
    "  while (f && fgets(l, sizeof l, f))\n"
    "    if (!strncmp(l, \"Cap\", 3)) { char k[16]; unsigned long long v;\n"
    "      if (sscanf(l, \"%15[^:]: %llx\", k, &v) == 2) printf(\"%s %llx\\n\", k, v); }\n"
    "  printf(\"clone3 %d\\n\", e(syscall(SYS_clone3, NULL, 0)));\n"
    "  pthread_t th; int r = pthread_create(&th, NULL, t, NULL);\n"
    "  if (!r) pthread_join(th, NULL);\n"
    "  printf(\"thread %d\\n\", r);\n"
    "  printf(\"keyctl %d\\n\", e(syscall(SYS_keyctl, 0, -3, 0)));\n"
    /* In a child: a new user namespace would change what follows. */
    "  pid_t c = fork(); if (c == 0) _exit(e(unshare(CLONE_NEWUSER)));\n"
    "  int st = 0; waitpid(c, &st, 0);\n"
    "  printf(\"unshare_user %d\\n\", WEXITSTATUS(st));\n"
    "  printf(\"sethostname %d\\n\", e(sethostname(\"probe\", 5)));\n"
    "  printf(\"chown %d\\n\", e(chown(\"/tmp\", 1, 1)));\n"
    "  return 0;\n}\n";

static char *dir;
static char runc[PATH_MAX];

static bool find_runc(void)
{
	static const char *const where[] = { "/usr/sbin/runc", "/usr/bin/runc",
					     "/usr/local/sbin/runc", "/usr/local/bin/runc" };
	for (size_t i = 0; i < ARRAY_SIZE(where); i++)
		if (access(where[i], X_OK) == 0) {
			snprintf(runc, sizeof(runc), "%s", where[i]);
			return true;
		}
	return false;
}

/* Run argv, stdout into out (NUL-terminated); the exit status. */
static int run(char *const argv[], char *out, size_t size)
{
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(p[1], 1);
		execv(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	size_t n = 0;
	ssize_t k;
	while (n + 1 < size && (k = read(p[0], out + n, size - 1 - n)) > 0)
		n += (size_t)k;
	out[n] = '\0';
	close(p[0]);
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return st;
}

static int setup(void **state)
{
	(void)state;
	if (geteuid() != 0 || !find_runc() || access("/usr/bin/gcc", X_OK) != 0)
		return 0; /* each test says what is missing */
	dir = tmpdir_make("secrunc");
	char path[PATH_MAX], rootfs[PATH_MAX];
	tpath(rootfs, dir, "rootfs");
	assert_int_equal(mkdir(rootfs, 0755), 0);
	static const char *const sub[] = { "proc", "dev", "tmp" };
	for (size_t i = 0; i < ARRAY_SIZE(sub); i++) {
		char d[PATH_MAX];
		assert_int_equal(mkdir(tpath(d, rootfs, sub[i]), 0755), 0);
	}
	write_text(tpath(path, dir, "probe.c"), probe_src);
	char out[PATH_MAX + 16], src[PATH_MAX];
	snprintf(out, sizeof(out), "%s/probe", rootfs);
	tpath(src, dir, "probe.c");
	char buf[4096];
	char *const argv[] = { "/usr/bin/gcc", "-static", "-O1", "-pthread", "-o", out, src, NULL };
	int st = run(argv, buf, sizeof(buf));
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		/* No static libc: the tests skip. */
		tmpdir_remove(dir);
		dir = NULL;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tmpdir_remove(dir);
	dir = NULL;
	return 0;
}

struct result {
	unsigned long long eff, prm, bnd, amb, inh;
	int clone3, thread, keyctl, unshare_user, sethostname, chown;
};

/* Write the bundle with caps (and seccomp unless NULL), run it, parse. */
static void run_probe(const char *id, json_t *caps, json_t *seccomp, unsigned uid,
		      struct result *res)
{
	REQUIRE_ROOT("runc runs containers");
	REQUIRE(runc[0], "runc not found");
	REQUIRE(dir, "gcc -static could not build the probe (no static libc?)");
	char bundle[PATH_MAX], path[PATH_MAX], rootfs[PATH_MAX], state[PATH_MAX];
	tpath(rootfs, dir, "rootfs");
	tpath(state, dir, "state");
	snprintf(bundle, sizeof(bundle), "%s/%s", dir, id);
	assert_int_equal(mkdir(bundle, 0700), 0);
	_cleanup_json_ json_t *doc = json_pack(
	    "{s:s, s:{s:b, s:{s:i, s:i}, s:[s], s:[s], s:s, s:O},"
	    " s:{s:s, s:b}, s:s,"
	    " s:[{s:s, s:s, s:s}, {s:s, s:s, s:s, s:[s,s]}, {s:s, s:s, s:s, s:[s]}],"
	    " s:{s:[{s:s}, {s:s}, {s:s}, {s:s}, {s:s}]}}",
	    "ociVersion", "1.0.2", "process", "terminal", 0, "user", "uid", uid, "gid", uid, "args",
	    "/probe", "env", "PATH=/", "cwd", "/", "capabilities", caps, "root", "path", rootfs,
	    "readonly", 1, "hostname", "secprobe", "mounts", "destination", "/proc", "type", "proc",
	    "source", "proc", "destination", "/dev", "type", "tmpfs", "source", "tmpfs", "options",
	    "nosuid", "mode=755", "destination", "/tmp", "type", "tmpfs", "source", "tmpfs",
	    "options", "mode=1777", "linux", "namespaces", "type", "pid", "type", "mount", "type",
	    "ipc", "type", "uts", "type", "network");
	assert_non_null(doc);
	if (seccomp)
		assert_int_equal(json_object_set(json_object_get(doc, "linux"), "seccomp", seccomp),
				 0);
	assert_int_equal(json_dump_file(doc, tpath(path, bundle, "config.json"), 0), 0);

	char idbuf[64];
	snprintf(idbuf, sizeof(idbuf), "cric-secprobe-%d-%s", (int)getpid(), id);
	char *const argv[] = { runc, "--root", state, "run", "--bundle", bundle, idbuf, NULL };
	char out[4096];
	int st = run(argv, out, sizeof(out));
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		print_message("runc run %s: status %d, output:\n%s\n", id, st, out);
		fail();
	}
	memset(res, 0xff, sizeof(*res));
	int got = 0;
	for (char *save = NULL, *l = strtok_r(out, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		char key[32];
		unsigned long long v;
		if (sscanf(l, "%31s %llx", key, &v) == 2 && strncmp(key, "Cap", 3) == 0) {
			unsigned long long *dst = !strcmp(key, "CapEff")   ? &res->eff
						  : !strcmp(key, "CapPrm") ? &res->prm
						  : !strcmp(key, "CapBnd") ? &res->bnd
						  : !strcmp(key, "CapAmb") ? &res->amb
						  : !strcmp(key, "CapInh") ? &res->inh
									   : NULL;
			if (dst) {
				*dst = v;
				got++;
			}
			continue;
		}
		int e;
		if (sscanf(l, "%31s %d", key, &e) != 2)
			continue;
		int *dst = !strcmp(key, "clone3")         ? &res->clone3
			   : !strcmp(key, "thread")       ? &res->thread
			   : !strcmp(key, "keyctl")       ? &res->keyctl
			   : !strcmp(key, "unshare_user") ? &res->unshare_user
			   : !strcmp(key, "sethostname")  ? &res->sethostname
			   : !strcmp(key, "chown")        ? &res->chown
							  : NULL;
		if (dst) {
			*dst = e;
			got++;
		}
	}
	if (got != 11) {
		print_message("probe output incomplete:\n%s\n", out);
		fail();
	}
}

static json_t *caps_json(const Runtime__V1__Capability *req, bool privileged, bool root,
			 uint64_t *bounding)
{
	uint64_t defaults = 0;
	assert_int_equal(ctr_caps_mask_from_names(ctr_caps_default_names, ctr_caps_n_default_names,
						  "defaults", &defaults, NULL),
			 0);
	const struct ctr_caps_input in = { .req = req,
					   .privileged = privileged,
					   .root = root,
					   .defaults = defaults,
					   .grantable = ctr_caps_host_grantable() };
	struct ctr_caps c;
	struct cric_err err = { { 0 } };
	int r = ctr_caps_resolve(&in, &c, &err);
	if (r < 0)
		print_message("%s\n", err.msg);
	assert_int_equal(r, 0);
	*bounding = c.bounding;
	return ctr_caps_to_oci(&c);
}

static json_t *runtime_default(uint64_t bounding)
{
	json_t *p = NULL;
	assert_int_equal(ctr_seccomp_default(bounding, NULL, &p, NULL), 0);
	return p;
}

/* Root, the default set, RuntimeDefault: the nine exactly; clone3 ENOSYS
 * while threads start; the filtered calls EPERM. */
static void test_default_root(void **state)
{
	(void)state;
	uint64_t bnd = 0;
	_cleanup_json_ json_t *caps = caps_json(NULL, false, true, &bnd);
	_cleanup_json_ json_t *sc = runtime_default(bnd);
	struct result r;
	run_probe("default", caps, sc, 0, &r);
	assert_true(r.eff == DEFAULT_NINE && r.prm == DEFAULT_NINE && r.bnd == DEFAULT_NINE);
	assert_true(r.amb == 0 && r.inh == 0);
	assert_int_equal(r.clone3, ENOSYS);
	assert_int_equal(r.thread, 0);
	assert_int_equal(r.keyctl, EPERM);
	assert_int_equal(r.unshare_user, EPERM);
	assert_int_equal(r.sethostname, EPERM);
	assert_int_equal(r.chown, 0); /* CAP_CHOWN is in the nine */
}

/* add ALL: the host's grantable set (not a fixed list runc would refuse
 * here), and with CAP_SYS_ADMIN the profile lets clone3, sethostname and
 * unshare through to the kernel. */
static void test_add_all(void **state)
{
	(void)state;
	char *add[] = { "ALL" };
	Runtime__V1__Capability req;
	runtime__v1__capability__init(&req);
	req.add_capabilities = add;
	req.n_add_capabilities = 1;
	uint64_t bnd = 0;
	_cleanup_json_ json_t *caps = caps_json(&req, false, true, &bnd);
	_cleanup_json_ json_t *sc = runtime_default(bnd);
	struct result r;
	run_probe("addall", caps, sc, 0, &r);
	assert_true(r.eff == ctr_caps_host_grantable() && r.bnd == r.eff);
	assert_int_equal(r.clone3, EINVAL); /* the kernel's answer to a NULL argument */
	assert_int_equal(r.thread, 0);
	assert_int_equal(r.sethostname, 0); /* the container's own UTS namespace */
	assert_int_equal(r.keyctl, EPERM);  /* never in the profile */
	assert_int_equal(r.unshare_user, 0);
}

/* A non-root user: the bounding set is the container's, nothing effective;
 * asked through ambient, exactly that one. */
static void test_non_root(void **state)
{
	(void)state;
	uint64_t bnd = 0;
	_cleanup_json_ json_t *caps = caps_json(NULL, false, false, &bnd);
	_cleanup_json_ json_t *sc = runtime_default(bnd);
	struct result r;
	run_probe("nonroot", caps, sc, 1000, &r);
	assert_true(r.eff == 0 && r.prm == 0 && r.amb == 0 && r.bnd == DEFAULT_NINE);
	assert_int_equal(r.chown, EPERM);

	char *drop[] = { "ALL" }, *amb[] = { "NET_BIND_SERVICE" };
	Runtime__V1__Capability req;
	runtime__v1__capability__init(&req);
	req.drop_capabilities = drop;
	req.n_drop_capabilities = 1;
	req.add_ambient_capabilities = amb;
	req.n_add_ambient_capabilities = 1;
	_cleanup_json_ json_t *caps2 = caps_json(&req, false, false, &bnd);
	_cleanup_json_ json_t *sc2 = runtime_default(bnd);
	run_probe("ambient", caps2, sc2, 1000, &r);
	assert_true(r.eff == BIT(NET_BIND_SERVICE) && r.prm == r.eff && r.amb == r.eff &&
		    r.bnd == r.eff);
}

/* Unconfined: no filter, the kernel answers for itself. */
static void test_unconfined(void **state)
{
	(void)state;
	uint64_t bnd = 0;
	_cleanup_json_ json_t *caps = caps_json(NULL, false, true, &bnd);
	struct result r;
	run_probe("unconfined", caps, NULL, 0, &r);
	assert_int_equal(r.clone3, EINVAL);
	assert_int_not_equal(r.keyctl, EPERM);
	assert_true(r.eff == DEFAULT_NINE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_root),
		cmocka_unit_test(test_add_all),
		cmocka_unit_test(test_non_root),
		cmocka_unit_test(test_unconfined),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
