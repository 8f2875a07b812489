/* The RuntimeDefault seccomp profile and the choice of profile: see
 * seccomp-default.h. The syscall lists are data, grouped by what the calls
 * do; a unit test resolves every name with libseccomp. */
#include "seccomp-default.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>

#include "common/cleanup.h"

/* Capability numbers (linux/capability.h), spelled out so that this file
 * does not depend on which capabilities the build's headers know. */
enum {
	C_DAC_READ_SEARCH = 2,
	C_SYS_MODULE = 16,
	C_SYS_RAWIO = 17,
	C_SYS_CHROOT = 18,
	C_SYS_PTRACE = 19,
	C_SYS_PACCT = 20,
	C_SYS_ADMIN = 21,
	C_SYS_BOOT = 22,
	C_SYS_NICE = 23,
	C_SYS_TIME = 25,
	C_SYS_TTY_CONFIG = 26,
	C_SYSLOG = 34,
	C_PERFMON = 38,
	C_BPF = 39,
};

enum { ARCH_ANY = 0, ARCH_X86 = 1, ARCH_ARM = 2 };

/* Namespace flags a process without CAP_SYS_ADMIN may not pass to clone()
 * or unshare(). CLONE_NEWUSER needs no capability at all, which is why the
 * filter matters. CLONE_NEWTIME (0x80) is CSIGNAL's bits for clone(), so
 * only unshare() checks it. */
#define NS_FLAGS                                                                                   \
	((uint64_t)(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |     \
		    CLONE_NEWNET | CLONE_NEWCGROUP))
#define CLONE_NEWTIME_FLAG 0x00000080ULL

struct sc_arg {
	unsigned index;
	uint64_t value, value2;
	const char *op;
};

struct sc_rule {
	const char *names; /* space-separated */
	int with_cap;      /* only when the bounding set has it (-1: always) */
	int without_cap;   /* only when the bounding set lacks it (-1: always) */
	int arches;        /* ARCH_ANY or the family whose machines get it */
	int errno_ret;     /* 0: allow; else SCMP_ACT_ERRNO with this errno */
	struct sc_arg arg;
	bool has_arg;
};

/* The allow list proper, by topic. */
static const char files[] =
    "access faccessat faccessat2 chdir fchdir getcwd chmod fchmod fchmodat fchmodat2 "
    "chown chown32 fchown fchown32 fchownat lchown lchown32 open openat openat2 "
    "creat close close_range name_to_handle_at read readv pread64 preadv preadv2 "
    "write writev pwrite64 pwritev pwritev2 lseek _llseek dup dup2 dup3 fcntl "
    "fcntl64 ioctl flock fsync fdatasync sync syncfs sync_file_range fadvise64 "
    "fadvise64_64 fallocate readahead truncate truncate64 ftruncate ftruncate64 stat "
    "stat64 lstat lstat64 fstat fstat64 fstatat64 newfstatat statx statfs statfs64 "
    "fstatfs fstatfs64 getdents getdents64 mkdir mkdirat mknod mknodat rmdir link "
    "linkat symlink symlinkat unlink unlinkat rename renameat renameat2 readlink "
    "readlinkat umask utime utimes utimensat utimensat_time64 futimesat getxattr "
    "lgetxattr fgetxattr setxattr lsetxattr fsetxattr listxattr llistxattr "
    "flistxattr removexattr lremovexattr fremovexattr copy_file_range sendfile "
    "sendfile64 splice tee vmsplice inotify_init inotify_init1 inotify_add_watch "
    "inotify_rm_watch fanotify_mark cachestat";

static const char waiting[] =
    "io_setup io_destroy io_submit io_cancel io_getevents io_pgetevents "
    "io_pgetevents_time64 epoll_create epoll_create1 epoll_ctl epoll_ctl_old "
    "epoll_wait epoll_wait_old epoll_pwait epoll_pwait2 poll ppoll ppoll_time64 "
    "select _newselect pselect6 pselect6_time64 eventfd eventfd2 signalfd signalfd4 "
    "timerfd_create timerfd_settime timerfd_settime64 timerfd_gettime "
    "timerfd_gettime64 pipe pipe2";

/* ptrace and process_vm_*: safe since Linux 4.8 (seccomp re-checks a
 * syscall a tracer changed); the runtime needs far newer kernels anyway. */
static const char processes[] =
    "execve execveat exit exit_group fork vfork wait4 waitid waitpid getpid getppid "
    "gettid getpgid getpgrp setpgid getsid setsid getuid getuid32 geteuid geteuid32 "
    "getgid getgid32 getegid getegid32 getresuid getresuid32 getresgid getresgid32 "
    "getgroups getgroups32 setuid setuid32 setgid setgid32 setreuid setreuid32 "
    "setregid setregid32 setresuid setresuid32 setresgid setresgid32 setfsuid "
    "setfsuid32 setfsgid setfsgid32 setgroups setgroups32 capget capset prctl "
    "set_tid_address set_robust_list get_robust_list rseq get_thread_area "
    "set_thread_area futex futex_time64 futex_waitv futex_wake futex_wait "
    "futex_requeue getpriority setpriority sched_getaffinity sched_setaffinity "
    "sched_getattr sched_setattr sched_getparam sched_setparam sched_getscheduler "
    "sched_setscheduler sched_get_priority_max sched_get_priority_min "
    "sched_rr_get_interval sched_rr_get_interval_time64 sched_yield ioprio_get "
    "ioprio_set getrlimit setrlimit ugetrlimit prlimit64 getrusage times getcpu "
    "pidfd_open pidfd_send_signal process_mrelease seccomp landlock_create_ruleset "
    "landlock_add_rule landlock_restrict_self restart_syscall kill tkill tgkill "
    "membarrier uname sysinfo getrandom ptrace process_vm_readv process_vm_writev";

static const char signals[] =
    "rt_sigaction rt_sigprocmask rt_sigpending rt_sigqueueinfo rt_tgsigqueueinfo "
    "rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 sigaltstack "
    "sigprocmask sigreturn pause alarm getitimer setitimer";

static const char memory[] =
    "brk mmap mmap2 munmap mremap mprotect madvise mincore msync mlock mlock2 "
    "mlockall munlock munlockall memfd_create memfd_secret remap_file_pages "
    "pkey_alloc pkey_free pkey_mprotect map_shadow_stack mseal";

/* Reading clocks and timers; setting the clock needs CAP_SYS_TIME below
 * (adjtimex and clock_adjtime only read without it: the kernel checks). */
static const char timekeeping[] =
    "time gettimeofday clock_gettime clock_gettime64 clock_getres "
    "clock_getres_time64 clock_nanosleep clock_nanosleep_time64 nanosleep adjtimex "
    "clock_adjtime clock_adjtime64 timer_create timer_delete timer_settime "
    "timer_settime64 timer_gettime timer_gettime64 timer_getoverrun";

/* socket() itself is below, with its argument checked. */
static const char sockets[] =
    "accept accept4 bind connect listen getsockname getpeername getsockopt "
    "setsockopt socketpair shutdown send sendto sendmsg sendmmsg recv recvfrom "
    "recvmsg recvmmsg recvmmsg_time64 socketcall";

static const char ipc[] =
    "ipc msgget msgsnd msgrcv msgctl semget semop semtimedop semtimedop_time64 "
    "semctl shmget shmat shmdt shmctl mq_open mq_unlink mq_timedsend "
    "mq_timedsend_time64 mq_timedreceive mq_timedreceive_time64 mq_notify "
    "mq_getsetattr";

/* What CAP_SYS_ADMIN opens: mounts, namespaces, names, tracing, quotas. */
static const char sys_admin[] =
    "bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie "
    "mount mount_setattr move_mount open_tree perf_event_open quotactl quotactl_fd "
    "setdomainname sethostname setns syslog umount umount2 unshare";

#define ALWAYS           .with_cap = -1, .without_cap = -1
#define WITH(c)          .with_cap = (c), .without_cap = -1
#define WITHOUT(c)       .with_cap = -1, .without_cap = (c)
#define ARG(i, v, v2, o) .has_arg = true, .arg = { (i), (v), (v2), (o) }

static const struct sc_rule rules[] = {
	{ files, ALWAYS },
	{ waiting, ALWAYS },
	{ processes, ALWAYS },
	{ signals, ALWAYS },
	{ memory, ALWAYS },
	{ timekeeping, ALWAYS },
	{ sockets, ALWAYS },
	{ ipc, ALWAYS },
	/* Every socket but vsock (the host's hypervisor channel). */
	{ "socket", ALWAYS, ARG(0, AF_VSOCK, 0, "SCMP_CMP_NE") },
	/* personality(): Linux, 32-bit Linux, the 2.6-uname persona of each,
	 * and the query (0xffffffff); nothing that changes the address space
	 * layout (ADDR_NO_RANDOMIZE...). One rule each: the conditions of one
	 * rule are all required. */
	{ "personality", ALWAYS, ARG(0, 0x0, 0, "SCMP_CMP_EQ") },
	{ "personality", ALWAYS, ARG(0, 0x8, 0, "SCMP_CMP_EQ") },
	{ "personality", ALWAYS, ARG(0, 0x20000, 0, "SCMP_CMP_EQ") },
	{ "personality", ALWAYS, ARG(0, 0x20008, 0, "SCMP_CMP_EQ") },
	{ "personality", ALWAYS, ARG(0, 0xffffffff, 0, "SCMP_CMP_EQ") },
	/* The architecture's own calls. */
	{ "arch_prctl modify_ldt", ALWAYS, .arches = ARCH_X86 },
	{ "arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls",
	  ALWAYS, .arches = ARCH_ARM },
	/* Without CAP_SYS_ADMIN: new processes and threads, no namespaces. */
	{ "clone", WITHOUT(C_SYS_ADMIN), ARG(0, NS_FLAGS, 0, "SCMP_CMP_MASKED_EQ") },
	{ "unshare", WITHOUT(C_SYS_ADMIN),
	  ARG(0, NS_FLAGS | CLONE_NEWTIME_FLAG, 0, "SCMP_CMP_MASKED_EQ") },
	{ "clone3", WITHOUT(C_SYS_ADMIN), .errno_ret = ENOSYS },
	/* Gated on the capability that makes them meaningful. */
	{ sys_admin, WITH(C_SYS_ADMIN) },
	{ "open_by_handle_at", WITH(C_DAC_READ_SEARCH) },
	{ "reboot", WITH(C_SYS_BOOT) },
	{ "chroot", WITH(C_SYS_CHROOT) },
	{ "init_module finit_module delete_module", WITH(C_SYS_MODULE) },
	{ "acct", WITH(C_SYS_PACCT) },
	{ "kcmp pidfd_getfd process_madvise", WITH(C_SYS_PTRACE) },
	{ "iopl ioperm", WITH(C_SYS_RAWIO) },
	{ "settimeofday stime clock_settime clock_settime64", WITH(C_SYS_TIME) },
	{ "vhangup", WITH(C_SYS_TTY_CONFIG) },
	{ "get_mempolicy mbind set_mempolicy set_mempolicy_home_node", WITH(C_SYS_NICE) },
	{ "syslog", WITH(C_SYSLOG) },
	{ "bpf", WITH(C_BPF) },
	{ "perf_event_open", WITH(C_PERFMON) },
};

const char *const ctr_seccomp_newer_syscalls[] = {
	"cachestat",        /* 6.5 */
	"fchmodat2",        /* 6.6 */
	"map_shadow_stack", /* 6.6 */
	"futex_wake",       /* 6.7 */
	"futex_wait",       /* 6.7 */
	"futex_requeue",    /* 6.7 */
	"mseal",            /* 6.10 */
	NULL,
};

static bool has_cap(uint64_t caps, int c)
{
	return c >= 0 && c < 64 && (caps & (UINT64_C(1) << c));
}

static json_t *rule_json(const struct sc_rule *r)
{
	_cleanup_json_ json_t *names = json_array();
	if (!names)
		return NULL;
	for (const char *p = r->names; *p;) {
		size_t len = strcspn(p, " ");
		if (len > 0 && json_array_append_new(names, json_stringn(p, len)) < 0)
			return NULL;
		p += len;
		p += strspn(p, " ");
	}
	_cleanup_json_ json_t *o = json_pack("{s:O, s:s}", "names", names, "action",
					     r->errno_ret ? "SCMP_ACT_ERRNO" : "SCMP_ACT_ALLOW");
	if (!o)
		return NULL;
	if (r->errno_ret && json_object_set_new(o, "errnoRet", json_integer(r->errno_ret)) < 0)
		return NULL;
	if (r->has_arg) {
		json_t *args =
		    json_pack("[{s:I, s:I, s:I, s:s}]", "index", (json_int_t)r->arg.index, "value",
			      (json_int_t)r->arg.value, "valueTwo", (json_int_t)r->arg.value2, "op",
			      r->arg.op);
		if (!args || json_object_set_new(o, "args", args) < 0)
			return NULL;
	}
	return TAKE_PTR(o);
}

int ctr_seccomp_default(uint64_t caps, const char *machine, json_t **out, struct cric_err *err)
{
	if (!machine) {
#if defined(__x86_64__)
		machine = "x86_64";
#elif defined(__aarch64__)
		machine = "aarch64";
#else
		machine = "unknown";
#endif
	}
	int family;
	const char *arches_json;
	if (strcmp(machine, "x86_64") == 0) {
		family = ARCH_X86;
		arches_json = "[\"SCMP_ARCH_X86_64\", \"SCMP_ARCH_X86\", \"SCMP_ARCH_X32\"]";
	} else if (strcmp(machine, "aarch64") == 0) {
		family = ARCH_ARM;
		arches_json = "[\"SCMP_ARCH_AARCH64\", \"SCMP_ARCH_ARM\"]";
	} else {
		return err_set(err, -EOPNOTSUPP,
			       "seccomp RuntimeDefault: no built-in profile for machine \"%.32s\"",
			       machine);
	}

	_cleanup_json_ json_t *syscalls = json_array();
	_cleanup_json_ json_t *arches = json_loads(arches_json, 0, NULL);
	if (!syscalls || !arches)
		return err_set(err, -ENOMEM, "seccomp RuntimeDefault: out of memory");
	for (size_t i = 0; i < ARRAY_SIZE(rules); i++) {
		const struct sc_rule *r = &rules[i];
		if (r->with_cap >= 0 && !has_cap(caps, r->with_cap))
			continue;
		if (r->without_cap >= 0 && has_cap(caps, r->without_cap))
			continue;
		if (r->arches != ARCH_ANY && r->arches != family)
			continue;
		if (json_array_append_new(syscalls, rule_json(r)) < 0)
			return err_set(err, -ENOMEM, "seccomp RuntimeDefault: out of memory");
	}
	json_t *o =
	    json_pack("{s:s, s:i, s:O, s:O}", "defaultAction", "SCMP_ACT_ERRNO", "defaultErrnoRet",
		      EPERM, "architectures", arches, "syscalls", syscalls);
	if (!o)
		return err_set(err, -ENOMEM, "seccomp RuntimeDefault: out of memory");
	*out = o;
	return 0;
}

int ctr_seccomp_kind(const Runtime__V1__SecurityProfile *profile, const char *deprecated_path,
		     bool privileged, enum ctr_seccomp_kind *kind, const char **localhost_ref,
		     struct cric_err *err)
{
	enum ctr_seccomp_kind k;
	const char *ref = NULL;
	if (profile) {
		switch (profile->profile_type) {
		case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__RuntimeDefault:
			k = CTR_SECCOMP_RUNTIME_DEFAULT;
			break;
		case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined:
			k = CTR_SECCOMP_UNCONFINED;
			break;
		case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost:
			if (!profile->localhost_ref || !*profile->localhost_ref)
				return err_set(err, -EINVAL,
					       "seccomp: profile_type Localhost without a "
					       "localhost_ref");
			k = CTR_SECCOMP_LOCALHOST;
			ref = profile->localhost_ref;
			break;
		default:
			return err_set(err, -EINVAL, "seccomp: unknown profile_type %d",
				       (int)profile->profile_type);
		}
	} else if (!deprecated_path || !*deprecated_path ||
		   strcmp(deprecated_path, "unconfined") == 0) {
		k = CTR_SECCOMP_UNCONFINED;
	} else if (strcmp(deprecated_path, "runtime/default") == 0 ||
		   strcmp(deprecated_path, "docker/default") == 0) {
		k = CTR_SECCOMP_RUNTIME_DEFAULT;
	} else if (strncmp(deprecated_path, "localhost/", 10) == 0 && deprecated_path[10]) {
		k = CTR_SECCOMP_LOCALHOST;
		ref = deprecated_path + 10;
	} else {
		return err_set(err, -EINVAL,
			       "seccomp_profile_path: not one of runtime/default, docker/default, "
			       "unconfined, localhost/<path>");
	}
	if (privileged) {
		k = CTR_SECCOMP_UNCONFINED;
		ref = NULL;
	}
	*kind = k;
	if (localhost_ref)
		*localhost_ref = ref;
	return 0;
}
