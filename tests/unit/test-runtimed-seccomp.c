/* runtimed/seccomp-default.h: which profile the CRI fields ask for, and the
 * RuntimeDefault profile: every syscall name resolved by libseccomp, the
 * capability gates, the architectures, and the profile compiled with
 * libseccomp (as runc does) and loaded in a child to see what it blocks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/macro.h"
#include "runtimed/seccomp-default.h"
#include "testutil.h"

#define BIT(c) (UINT64_C(1) << (c))
enum {
	DAC_READ_SEARCH = 2,
	SYS_MODULE_CAP = 16,
	SYS_RAWIO = 17,
	SYS_CHROOT = 18,
	SYS_PTRACE = 19,
	SYS_PACCT = 20,
	SYS_ADMIN = 21,
	SYS_BOOT = 22,
	SYS_NICE = 23,
	SYS_TIME = 25,
	SYS_TTY_CONFIG = 26,
	SYSLOG = 34,
	PERFMON = 38,
	BPF = 39,
};
#define ALL_CAPS (BIT(41) - 1)

static json_t *profile(uint64_t caps, const char *machine)
{
	json_t *p = NULL;
	struct cric_err err = { { 0 } };
	int r = ctr_seccomp_default(caps, machine, &p, &err);
	if (r < 0)
		print_message("%s\n", err.msg);
	assert_int_equal(r, 0);
	assert_non_null(p);
	return p;
}

/* The rules of p naming `name`: how many, and the last one. */
static int rules_for(json_t *p, const char *name, json_t **last)
{
	int n = 0;
	size_t i;
	json_t *rule;
	json_array_foreach (json_object_get(p, "syscalls"), i, rule) {
		size_t j;
		json_t *v;
		json_array_foreach (json_object_get(rule, "names"), j, v) {
			if (strcmp(json_string_value(v), name) == 0) {
				n++;
				if (last)
					*last = rule;
			}
		}
	}
	return n;
}

/* Allowed without conditions by some rule. */
static bool allowed_plain(json_t *p, const char *name)
{
	size_t i;
	json_t *rule;
	json_array_foreach (json_object_get(p, "syscalls"), i, rule) {
		if (json_object_get(rule, "args") ||
		    strcmp(json_string_value(json_object_get(rule, "action")), "SCMP_ACT_ALLOW") !=
			0)
			continue;
		size_t j;
		json_t *v;
		json_array_foreach (json_object_get(rule, "names"), j, v) {
			if (strcmp(json_string_value(v), name) == 0)
				return true;
		}
	}
	return false;
}

static void test_kind(void **state)
{
	(void)state;
	enum ctr_seccomp_kind k;
	const char *ref = "x";
	struct cric_err err = { { 0 } };
	Runtime__V1__SecurityProfile p;
	runtime__v1__security_profile__init(&p);

	/* Present but empty: RuntimeDefault (its enum value is 0). */
	assert_int_equal(ctr_seccomp_kind(&p, NULL, false, &k, &ref, &err), 0);
	assert_int_equal(k, CTR_SECCOMP_RUNTIME_DEFAULT);
	assert_null(ref);
	/* ... and the message wins over a deprecated string. */
	assert_int_equal(ctr_seccomp_kind(&p, "unconfined", false, &k, &ref, &err), 0);
	assert_int_equal(k, CTR_SECCOMP_RUNTIME_DEFAULT);
	p.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined;
	assert_int_equal(ctr_seccomp_kind(&p, NULL, false, &k, &ref, &err), 0);
	assert_int_equal(k, CTR_SECCOMP_UNCONFINED);
	p.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost;
	p.localhost_ref = "/var/lib/kubelet/seccomp/a.json";
	assert_int_equal(ctr_seccomp_kind(&p, NULL, false, &k, &ref, &err), 0);
	assert_int_equal(k, CTR_SECCOMP_LOCALHOST);
	assert_string_equal(ref, "/var/lib/kubelet/seccomp/a.json");
	p.localhost_ref = "";
	assert_int_equal(ctr_seccomp_kind(&p, NULL, false, &k, &ref, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "localhost_ref"));
	p.profile_type = 7;
	assert_int_equal(ctr_seccomp_kind(&p, NULL, false, &k, &ref, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "profile_type 7"));
	/* Privileged: no filter, but bad input is still refused. */
	assert_int_equal(ctr_seccomp_kind(&p, NULL, true, &k, &ref, &err), -EINVAL);
	p.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__RuntimeDefault;
	assert_int_equal(ctr_seccomp_kind(&p, NULL, true, &k, &ref, &err), 0);
	assert_int_equal(k, CTR_SECCOMP_UNCONFINED);

	/* No message: the deprecated string; nothing at all is unconfined. */
	static const struct {
		const char *path;
		enum ctr_seccomp_kind kind;
		const char *ref;
	} ok[] = {
		{ NULL, CTR_SECCOMP_UNCONFINED, NULL },
		{ "", CTR_SECCOMP_UNCONFINED, NULL },
		{ "unconfined", CTR_SECCOMP_UNCONFINED, NULL },
		{ "runtime/default", CTR_SECCOMP_RUNTIME_DEFAULT, NULL },
		{ "docker/default", CTR_SECCOMP_RUNTIME_DEFAULT, NULL },
		{ "localhost//etc/p.json", CTR_SECCOMP_LOCALHOST, "/etc/p.json" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		ref = "x";
		assert_int_equal(ctr_seccomp_kind(NULL, ok[i].path, false, &k, &ref, &err), 0);
		assert_int_equal(k, ok[i].kind);
		if (ok[i].ref)
			assert_string_equal(ref, ok[i].ref);
		else
			assert_null(ref);
	}
	static const char *const bad[] = { "localhost/", "runtime/defaultx", "Unconfined",
					   "/etc/p.json" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		assert_int_equal(ctr_seccomp_kind(NULL, bad[i], false, &k, &ref, &err), -EINVAL);
		assert_non_null(strstr(err.msg, "seccomp_profile_path"));
	}
	assert_int_equal(ctr_seccomp_kind(NULL, "runtime/default", true, &k, NULL, &err), 0);
	assert_int_equal(k, CTR_SECCOMP_UNCONFINED);
}

static void test_shape(void **state)
{
	(void)state;
	_cleanup_json_ json_t *x86 = profile(0, "x86_64");
	assert_string_equal(json_string_value(json_object_get(x86, "defaultAction")),
			    "SCMP_ACT_ERRNO");
	assert_int_equal(json_integer_value(json_object_get(x86, "defaultErrnoRet")), EPERM);
	_cleanup_free_ char *a1 = json_dumps(json_object_get(x86, "architectures"), JSON_COMPACT);
	assert_string_equal(a1, "[\"SCMP_ARCH_X86_64\",\"SCMP_ARCH_X86\",\"SCMP_ARCH_X32\"]");
	_cleanup_json_ json_t *arm = profile(0, "aarch64");
	_cleanup_free_ char *a2 = json_dumps(json_object_get(arm, "architectures"), JSON_COMPACT);
	assert_string_equal(a2, "[\"SCMP_ARCH_AARCH64\",\"SCMP_ARCH_ARM\"]");

	/* The build's own machine by default. */
	_cleanup_json_ json_t *native = profile(0, NULL);
#if defined(__x86_64__)
	assert_true(json_equal(native, x86));
#elif defined(__aarch64__)
	assert_true(json_equal(native, arm));
#endif
	json_t *p = NULL;
	struct cric_err err = { { 0 } };
	assert_int_equal(ctr_seccomp_default(0, "riscv64", &p, &err), -EOPNOTSUPP);
	assert_null(p);
	assert_non_null(strstr(err.msg, "riscv64"));

	/* Architecture-only calls go to their family only. */
	assert_true(allowed_plain(x86, "arch_prctl") && allowed_plain(x86, "modify_ldt"));
	assert_false(allowed_plain(arm, "arch_prctl"));
	assert_true(allowed_plain(arm, "cacheflush") && allowed_plain(arm, "set_tls"));
	assert_false(allowed_plain(x86, "cacheflush"));

	/* Every rule is well formed, the same for every capability set. */
	_cleanup_json_ json_t *full = profile(ALL_CAPS, "x86_64");
	json_t *profiles[] = { x86, arm, full };
	for (size_t k = 0; k < ARRAY_SIZE(profiles); k++) {
		size_t i;
		json_t *rule;
		json_array_foreach (json_object_get(profiles[k], "syscalls"), i, rule) {
			assert_true(json_array_size(json_object_get(rule, "names")) > 0);
			const char *act = json_string_value(json_object_get(rule, "action"));
			assert_non_null(act);
			if (strcmp(act, "SCMP_ACT_ERRNO") == 0)
				assert_true(json_integer_value(json_object_get(rule, "errnoRet")) >
					    0);
			else
				assert_string_equal(act, "SCMP_ACT_ALLOW");
		}
	}
}

/* Every name of every rule, for every capability set and machine, is one
 * libseccomp knows or one of the documented newer-kernel names. */
static void test_names_resolve(void **state)
{
	(void)state;
	const char *machines[] = { "x86_64", "aarch64" };
	const uint64_t capsets[] = { 0, ALL_CAPS };
	int checked = 0;
	for (size_t m = 0; m < ARRAY_SIZE(machines); m++)
		for (size_t c = 0; c < ARRAY_SIZE(capsets); c++) {
			_cleanup_json_ json_t *p = profile(capsets[c], machines[m]);
			size_t i;
			json_t *rule;
			json_array_foreach (json_object_get(p, "syscalls"), i, rule) {
				size_t j;
				json_t *v;
				json_array_foreach (json_object_get(rule, "names"), j, v) {
					const char *name = json_string_value(v);
					checked++;
					if (seccomp_syscall_resolve_name(name) != __NR_SCMP_ERROR)
						continue;
					bool newer = false;
					for (const char *const *n = ctr_seccomp_newer_syscalls; *n;
					     n++)
						newer = newer || strcmp(*n, name) == 0;
					if (!newer) {
						print_message(
						    "syscall \"%s\" unknown to libseccomp "
						    "and not in the newer-kernel list\n",
						    name);
						fail();
					}
				}
			}
		}
	assert_true(checked > 4 * 300);

	/* Each newer-kernel name is really in the profile (no stale entries). */
	_cleanup_json_ json_t *p = profile(0, "x86_64");
	for (const char *const *n = ctr_seccomp_newer_syscalls; *n; n++)
		assert_true(allowed_plain(p, *n));

	/* The plain allow list holds no name twice (a typo'd duplicate would
	 * hide a missing call). */
	size_t i;
	json_t *rule;
	json_array_foreach (json_object_get(p, "syscalls"), i, rule) {
		if (json_object_get(rule, "args"))
			continue;
		size_t j;
		json_t *v;
		json_array_foreach (json_object_get(rule, "names"), j, v) {
			if (rules_for(p, json_string_value(v), NULL) != 1) {
				print_message("\"%s\" in more than one rule\n",
					      json_string_value(v));
				fail();
			}
		}
	}
}

static void test_contents(void **state)
{
	(void)state;
	_cleanup_json_ json_t *p = profile(0, "x86_64");
	/* The everyday calls. */
	static const char *const everyday[] = { "read",         "write",         "openat",
						"execve",       "mmap",          "futex",
						"exit_group",   "wait4",         "accept4",
						"rt_sigreturn", "clock_gettime", "getrandom",
						"ptrace",       "statx",         "epoll_pwait" };
	for (size_t i = 0; i < ARRAY_SIZE(everyday); i++)
		assert_true(allowed_plain(p, everyday[i]));
	/* Left out on purpose. */
	static const char *const never[] = {
		"io_uring_setup",    "io_uring_enter", "keyctl",     "add_key",
		"request_key",       "userfaultfd",    "kexec_load", "swapon",
		"open_by_handle_at", "mount",          "setns",      "sethostname"
	};
	for (size_t i = 0; i < ARRAY_SIZE(never); i++)
		assert_int_equal(rules_for(p, never[i], NULL), 0);

	/* socket() except AF_VSOCK. */
	json_t *rule = NULL;
	assert_int_equal(rules_for(p, "socket", &rule), 1);
	_cleanup_free_ char *s = json_dumps(json_object_get(rule, "args"), JSON_COMPACT);
	assert_string_equal(s,
			    "[{\"index\":0,\"value\":40,\"valueTwo\":0,\"op\":\"SCMP_CMP_NE\"}]");
	/* personality(): five exact values. */
	assert_int_equal(rules_for(p, "personality", NULL), 5);
}

/* Capability gates: each call appears with its capability, not without. */
static void test_cap_gates(void **state)
{
	(void)state;
	static const struct {
		int cap;
		const char *call;
	} gates[] = {
		{ SYS_ADMIN, "mount" },
		{ SYS_ADMIN, "umount2" },
		{ SYS_ADMIN, "setns" },
		{ SYS_ADMIN, "sethostname" },
		{ SYS_ADMIN, "fsopen" },
		{ SYS_ADMIN, "bpf" },
		{ BPF, "bpf" },
		{ PERFMON, "perf_event_open" },
		{ SYS_ADMIN, "perf_event_open" },
		{ DAC_READ_SEARCH, "open_by_handle_at" },
		{ SYS_BOOT, "reboot" },
		{ SYS_CHROOT, "chroot" },
		{ SYS_MODULE_CAP, "init_module" },
		{ SYS_MODULE_CAP, "finit_module" },
		{ SYS_MODULE_CAP, "delete_module" },
		{ SYS_PACCT, "acct" },
		{ SYS_PTRACE, "kcmp" },
		{ SYS_PTRACE, "pidfd_getfd" },
		{ SYS_PTRACE, "process_madvise" },
		{ SYS_RAWIO, "iopl" },
		{ SYS_RAWIO, "ioperm" },
		{ SYS_TIME, "settimeofday" },
		{ SYS_TIME, "clock_settime" },
		{ SYS_TTY_CONFIG, "vhangup" },
		{ SYS_NICE, "mbind" },
		{ SYS_NICE, "set_mempolicy" },
		{ SYSLOG, "syslog" },
		{ SYS_ADMIN, "syslog" },
	};
	_cleanup_json_ json_t *none = profile(0, "x86_64");
	for (size_t i = 0; i < ARRAY_SIZE(gates); i++) {
		_cleanup_json_ json_t *with = profile(BIT(gates[i].cap), "x86_64");
		if (!allowed_plain(with, gates[i].call) || allowed_plain(none, gates[i].call)) {
			print_message("%s not gated on capability %d\n", gates[i].call,
				      gates[i].cap);
			fail();
		}
	}
	/* Gated on exactly its capabilities: all others do not open it. */
	_cleanup_json_ json_t *no_mod = profile(ALL_CAPS & ~BIT(SYS_MODULE_CAP), "x86_64");
	assert_false(allowed_plain(no_mod, "init_module"));
	_cleanup_json_ json_t *no_time = profile(ALL_CAPS & ~BIT(SYS_TIME), "x86_64");
	assert_false(allowed_plain(no_time, "clock_settime"));
	assert_true(allowed_plain(no_time, "clock_gettime"));
}

/* Without CAP_SYS_ADMIN clone/unshare are filtered and clone3 is ENOSYS;
 * with it, all three are plain. */
static void test_clone(void **state)
{
	(void)state;
	const uint64_t ns = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |
			    CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP;
	_cleanup_json_ json_t *p = profile(0, "x86_64");
	json_t *rule = NULL;
	assert_int_equal(rules_for(p, "clone", &rule), 1);
	json_t *arg = json_array_get(json_object_get(rule, "args"), 0);
	assert_int_equal(json_integer_value(json_object_get(arg, "index")), 0);
	assert_true((uint64_t)json_integer_value(json_object_get(arg, "value")) == ns);
	assert_int_equal(json_integer_value(json_object_get(arg, "valueTwo")), 0);
	assert_string_equal(json_string_value(json_object_get(arg, "op")), "SCMP_CMP_MASKED_EQ");

	assert_int_equal(rules_for(p, "unshare", &rule), 1);
	arg = json_array_get(json_object_get(rule, "args"), 0);
	assert_true((uint64_t)json_integer_value(json_object_get(arg, "value")) == (ns | 0x80));

	assert_int_equal(rules_for(p, "clone3", &rule), 1);
	assert_string_equal(json_string_value(json_object_get(rule, "action")), "SCMP_ACT_ERRNO");
	assert_int_equal(json_integer_value(json_object_get(rule, "errnoRet")), ENOSYS);

	_cleanup_json_ json_t *admin = profile(BIT(SYS_ADMIN), "x86_64");
	static const char *const calls[] = { "clone", "unshare", "clone3" };
	for (size_t i = 0; i < ARRAY_SIZE(calls); i++) {
		assert_int_equal(rules_for(admin, calls[i], &rule), 1);
		assert_true(allowed_plain(admin, calls[i]));
	}
}

/* --- the profile compiled with libseccomp and applied, as runc does --- */

static int op_of(const char *s)
{
	if (strcmp(s, "SCMP_CMP_NE") == 0)
		return SCMP_CMP_NE;
	if (strcmp(s, "SCMP_CMP_EQ") == 0)
		return SCMP_CMP_EQ;
	if (strcmp(s, "SCMP_CMP_MASKED_EQ") == 0)
		return SCMP_CMP_MASKED_EQ;
	return -1;
}

/* Compile p into a libseccomp filter: the same calls runc makes (names it
 * cannot resolve are skipped, as runc does). NULL on any error. */
static scmp_filter_ctx compile(json_t *p)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
	if (!ctx)
		return NULL;
	size_t i;
	json_t *v;
	json_array_foreach (json_object_get(p, "architectures"), i, v) {
		const char *a = json_string_value(v) + strlen("SCMP_ARCH_");
		char lower[32];
		size_t k = 0;
		for (; a[k] && k + 1 < sizeof(lower); k++)
			lower[k] = (char)((a[k] >= 'A' && a[k] <= 'Z') ? a[k] - 'A' + 'a' : a[k]);
		lower[k] = '\0';
		uint32_t arch = seccomp_arch_resolve_name(lower);
		int r = arch ? seccomp_arch_add(ctx, arch) : -EINVAL;
		if (r < 0 && r != -EEXIST)
			goto fail;
	}
	json_t *rule;
	json_array_foreach (json_object_get(p, "syscalls"), i, rule) {
		const char *act = json_string_value(json_object_get(rule, "action"));
		uint32_t action =
		    strcmp(act, "SCMP_ACT_ALLOW") == 0
			? SCMP_ACT_ALLOW
			: SCMP_ACT_ERRNO(json_integer_value(json_object_get(rule, "errnoRet")));
		struct scmp_arg_cmp cmp[6];
		unsigned n = 0;
		size_t j;
		json_t *a;
		json_array_foreach (json_object_get(rule, "args"), j, a) {
			int op = op_of(json_string_value(json_object_get(a, "op")));
			if (op < 0 || n >= 6)
				goto fail;
			cmp[n++] = (struct scmp_arg_cmp){
				.arg = (unsigned)json_integer_value(json_object_get(a, "index")),
				.op = op,
				.datum_a =
				    (scmp_datum_t)json_integer_value(json_object_get(a, "value")),
				.datum_b = (scmp_datum_t)json_integer_value(
				    json_object_get(a, "valueTwo")),
			};
		}
		json_array_foreach (json_object_get(rule, "names"), j, a) {
			int nr = seccomp_syscall_resolve_name(json_string_value(a));
			if (nr == __NR_SCMP_ERROR)
				continue;
			if (seccomp_rule_add_array(ctx, action, nr, n, cmp) < 0) {
				print_message("rule for %s refused\n", json_string_value(a));
				goto fail;
			}
		}
	}
	return ctx;
fail:
	seccomp_release(ctx);
	return NULL;
}

static void test_compiles(void **state)
{
	(void)state;
	const uint64_t capsets[] = { 0, BIT(SYS_ADMIN), ALL_CAPS };
	for (size_t c = 0; c < ARRAY_SIZE(capsets); c++) {
		_cleanup_json_ json_t *p = profile(capsets[c], NULL);
		scmp_filter_ctx ctx = compile(p);
		assert_non_null(ctx);
		int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
		assert_true(fd >= 0);
		assert_int_equal(seccomp_export_bpf(ctx, fd), 0);
		close(fd);
		seccomp_release(ctx);
	}
}

static void *thread_main(void *arg)
{
	return arg;
}

/* What a container without CAP_SYS_ADMIN sees: run in a child under the
 * filter; each probe reports errno (0 for success) through the exit code
 * of the child, one probe per child. */
enum probe {
	P_GETPID,
	P_CLONE3,
	P_THREAD,
	P_FORK,
	P_UNSHARE_USER,
	P_UNSHARE_FS,
	P_KEYCTL,
	P_PERSONALITY_NORANDOM,
	P_PERSONALITY_QUERY,
	P_VSOCK,
	P_UNIX_SOCKET,
	P_MAX
};

static int run_probe(enum probe pr)
{
	int r = 0;
	switch (pr) {
	case P_GETPID:
		r = getpid() > 0 ? 0 : errno;
		break;
	case P_CLONE3:
		/* A NULL argument: the kernel itself would say EFAULT/EINVAL. */
		r = syscall(SYS_clone3, NULL, 0) < 0 ? errno : 0;
		break;
	case P_THREAD: {
		/* glibc tries clone3 first and falls back to clone on ENOSYS. */
		pthread_t t;
		r = pthread_create(&t, NULL, thread_main, NULL);
		if (r == 0)
			pthread_join(t, NULL);
		break;
	}
	case P_FORK: {
		pid_t pid = fork();
		if (pid == 0)
			_exit(0);
		r = pid < 0 ? errno : 0;
		if (pid > 0)
			waitpid(pid, NULL, 0);
		break;
	}
	case P_UNSHARE_USER:
		r = unshare(CLONE_NEWUSER) < 0 ? errno : 0;
		break;
	case P_UNSHARE_FS:
		r = unshare(CLONE_FS) < 0 ? errno : 0;
		break;
	case P_KEYCTL:
		/* KEYCTL_GET_KEYRING_ID of the session keyring: harmless, and
		 * a kernel answer other than EPERM when not filtered. */
		r = syscall(SYS_keyctl, 0, -3, 0) < 0 ? errno : 0;
		break;
	case P_PERSONALITY_NORANDOM:
		r = personality(ADDR_NO_RANDOMIZE) < 0 ? errno : 0;
		break;
	case P_PERSONALITY_QUERY:
		r = personality(0xffffffff) < 0 ? errno : 0;
		break;
	case P_VSOCK: {
		int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
		r = fd < 0 ? errno : 0;
		if (fd >= 0)
			close(fd);
		break;
	}
	case P_UNIX_SOCKET: {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		r = fd < 0 ? errno : 0;
		if (fd >= 0)
			close(fd);
		break;
	}
	default:
		r = 255;
	}
	return r;
}

struct probe_arg {
	enum probe pr;
	uint64_t caps;
	bool filter;
};

static int probe_child(void *arg)
{
	const struct probe_arg *a = arg;
	if (a->filter) {
		json_t *p = NULL;
		if (ctr_seccomp_default(a->caps, NULL, &p, NULL) < 0)
			return 254;
		scmp_filter_ctx ctx = compile(p);
		if (!ctx || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || seccomp_load(ctx) < 0)
			return 253;
	}
	return run_probe(a->pr);
}

static int probe(enum probe pr, uint64_t caps, bool filter)
{
	struct probe_arg a = { pr, caps, filter };
	int st = run_in_child(probe_child, &a, 10);
	assert_true(WIFEXITED(st));
	assert_true(WEXITSTATUS(st) < 250);
	return WEXITSTATUS(st);
}

static void test_applied(void **state)
{
	(void)state;
	/* Unfiltered, the kernel's own answers differ from the filter's, or
	 * the probe would prove nothing. */
	int k_clone3 = probe(P_CLONE3, 0, false);
	assert_true(k_clone3 != ENOSYS && k_clone3 != EPERM && k_clone3 != 0);
	assert_int_not_equal(probe(P_KEYCTL, 0, false), EPERM);
	assert_int_equal(probe(P_UNIX_SOCKET, 0, false), 0);

	/* Under the filter, as a container without CAP_SYS_ADMIN. */
	assert_int_equal(probe(P_GETPID, 0, true), 0);
	assert_int_equal(probe(P_CLONE3, 0, true), ENOSYS);
	assert_int_equal(probe(P_THREAD, 0, true), 0);
	assert_int_equal(probe(P_FORK, 0, true), 0);
	assert_int_equal(probe(P_UNSHARE_USER, 0, true), EPERM);
	assert_int_equal(probe(P_UNSHARE_FS, 0, true), 0);
	assert_int_equal(probe(P_KEYCTL, 0, true), EPERM);
	assert_int_equal(probe(P_PERSONALITY_NORANDOM, 0, true), EPERM);
	assert_int_equal(probe(P_PERSONALITY_QUERY, 0, true), 0);
	assert_int_equal(probe(P_VSOCK, 0, true), EPERM);
	assert_int_equal(probe(P_UNIX_SOCKET, 0, true), 0);

	/* With CAP_SYS_ADMIN clone3 reaches the kernel again. */
	assert_int_equal(probe(P_CLONE3, BIT(SYS_ADMIN), true), k_clone3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kind),          cmocka_unit_test(test_shape),
		cmocka_unit_test(test_names_resolve), cmocka_unit_test(test_contents),
		cmocka_unit_test(test_cap_gates),     cmocka_unit_test(test_clone),
		cmocka_unit_test(test_compiles),      cmocka_unit_test(test_applied),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
