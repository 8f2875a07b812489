#include "nspin.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/nsfs.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "idmap.h"
#include "macro.h"

static const char *ns_name(int nstype)
{
	switch (nstype) {
	case CLONE_NEWNET:
		return "net";
	case CLONE_NEWIPC:
		return "ipc";
	case CLONE_NEWUTS:
		return "uts";
	case CLONE_NEWUSER:
		return "user";
	default:
		return NULL;
	}
}

struct job {
	int nstype;
	const char *pin_path;
	nspin_fn fn;
	void *userdata;
	bool join; /* join the pinned namespace instead of creating one */
	int r;
	struct cric_err err;
};

/* Runs on its own thread, whose namespace it replaces. */
static int create_on_this_thread(struct job *j)
{
	const char *name = ns_name(j->nstype);
	int fd = open(j->pin_path, O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_set(&j->err, negative_errno(), "create \"%s\": %s", j->pin_path,
			       strerror(errno));
	close(fd);

	int r = 0;
	if (unshare(j->nstype) < 0)
		r = err_set(&j->err, negative_errno(), "unshare(%s): %s", name, strerror(errno));
	else if (j->fn)
		r = j->fn(j->userdata, &j->err);
	char self[64];
	snprintf(self, sizeof(self), "/proc/thread-self/ns/%s", name);
	if (r == 0 && mount(self, j->pin_path, "none", MS_BIND, NULL) < 0)
		r = err_set(&j->err, negative_errno(), "bind-mount the %s namespace on \"%s\": %s",
			    name, j->pin_path, strerror(errno));
	if (r < 0)
		unlink(j->pin_path);
	return r;
}

static int join_on_this_thread(struct job *j)
{
	_cleanup_close_ int fd = open(j->pin_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return err_set(&j->err, negative_errno(), "open \"%s\": %s", j->pin_path,
			       strerror(errno));
	if (ioctl(fd, NS_GET_NSTYPE) != j->nstype)
		return err_set(&j->err, -EINVAL, "\"%s\" is not a pinned %s namespace", j->pin_path,
			       ns_name(j->nstype));
	if (setns(fd, j->nstype) < 0)
		return err_set(&j->err, negative_errno(), "join \"%s\": %s", j->pin_path,
			       strerror(errno));
	return j->fn(j->userdata, &j->err);
}

static void *job_thread(void *arg)
{
	struct job *j = arg;
	j->r = j->join ? join_on_this_thread(j) : create_on_this_thread(j);
	/* The thread ends here, and its namespace with it unless pinned. */
	return NULL;
}

static int run_job(struct job *j, struct cric_err *err)
{
	if (!ns_name(j->nstype))
		return err_set(err, -EINVAL, "unsupported namespace type %#x", j->nstype);
	pthread_t t;
	int rv = pthread_create(&t, NULL, job_thread, j);
	if (rv != 0)
		return err_set(err, -rv, "create a thread: %s", strerror(rv));
	pthread_join(t, NULL);
	if (j->r < 0)
		return err_set(err, j->r, "%s", j->err.msg);
	return 0;
}

int nspin_create(int nstype, const char *pin_path, nspin_fn setup, void *userdata,
		 struct cric_err *err)
{
	struct job j = {
		.nstype = nstype, .pin_path = pin_path, .fn = setup, .userdata = userdata
	};
	return run_job(&j, err);
}

int nspin_run_in(int nstype, const char *pin_path, nspin_fn fn, void *userdata,
		 struct cric_err *err)
{
	struct job j = {
		.nstype = nstype, .pin_path = pin_path, .fn = fn, .userdata = userdata, .join = true
	};
	return run_job(&j, err);
}

int nspin_remove(const char *pin_path, struct cric_err *err)
{
	/* Bounded: a pin is mounted once, but a crash between two attempts or
	 * someone else may have stacked more. */
	for (int i = 0; i < 16; i++) {
		if (umount2(pin_path, MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
			continue;
		if (errno == EINVAL || errno == ENOENT)
			break; /* not (or no longer) a mount point */
		return err_set(err, negative_errno(), "unmount \"%s\": %s", pin_path,
			       strerror(errno));
	}
	if (unlink(pin_path) < 0 && errno != ENOENT)
		return err_set(err, negative_errno(), "remove \"%s\": %s", pin_path,
			       strerror(errno));
	return 0;
}

bool nspin_is_pinned(const char *pin_path, int nstype)
{
	_cleanup_close_ int fd = open(pin_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return false;
	/* Only nsfs files answer NS_GET_NSTYPE. */
	return ioctl(fd, NS_GET_NSTYPE) == nstype;
}

/* Pin the namespace of type name of process pid at pin (a new file). */
static int pin_of(pid_t pid, const char *name, const char *pin, struct cric_err *err)
{
	int fd = open(pin, O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_set(err, negative_errno(), "create \"%s\": %s", pin, strerror(errno));
	close(fd);
	char src[64];
	snprintf(src, sizeof(src), "/proc/%d/ns/%s", (int)pid, name);
	if (mount(src, pin, "none", MS_BIND, NULL) < 0) {
		int r = err_set(err, negative_errno(), "bind-mount the %s namespace on \"%s\": %s",
				name, pin, strerror(errno));
		unlink(pin);
		return r;
	}
	return 0;
}

/* Run setup in the namespace pinned at pin; on failure, unpin it. */
static int setup_pinned(int nstype, const char *pin, nspin_fn setup, void *userdata,
			struct cric_err *err)
{
	int r = setup ? nspin_run_in(nstype, pin, setup, userdata, err) : 0;
	if (r < 0) {
		struct cric_err ignored;
		nspin_remove(pin, &ignored);
	}
	return r;
}

int nspin_create_userns(const struct idmap_range *uid, const struct idmap_range *gid,
			const char *user_pin, int nstype, const char *pin, nspin_fn setup,
			void *userdata, struct cric_err *err)
{
	const char *name = ns_name(nstype);
	if (!name || nstype == CLONE_NEWUSER)
		return err_set(err, -EINVAL, "unsupported namespace type %#x", nstype);
	pid_t pid = idmap_userns_child(uid, gid, nstype, err);
	if (pid < 0)
		return pid;
	int r = pin_of(pid, "user", user_pin, err);
	if (r == 0 && (r = pin_of(pid, name, pin, err)) < 0) {
		struct cric_err ignored;
		nspin_remove(user_pin, &ignored);
	}
	idmap_child_reap(pid);
	if (r == 0 && (r = setup_pinned(nstype, pin, setup, userdata, err)) < 0) {
		struct cric_err ignored;
		nspin_remove(user_pin, &ignored);
	}
	return r;
}

/* What the child of nspin_create_owned() reports: the step that failed
 * (0: none) and its errno. */
struct owned_report {
	int step, errnum;
};

int nspin_create_owned(int nstype, const char *user_pin, const char *pin, nspin_fn setup,
		       void *userdata, struct cric_err *err)
{
	const char *name = ns_name(nstype);
	if (!name || nstype == CLONE_NEWUSER)
		return err_set(err, -EINVAL, "unsupported namespace type %#x", nstype);
	_cleanup_close_ int ufd = open(user_pin, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (ufd < 0)
		return err_set(err, negative_errno(), "open \"%s\": %s", user_pin, strerror(errno));
	if (ioctl(ufd, NS_GET_NSTYPE) != CLONE_NEWUSER)
		return err_set(err, -EINVAL, "\"%s\" is not a pinned user namespace", user_pin);
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return err_set(err, negative_errno(), "pipe: %s", strerror(errno));
	/* A raw clone, as idmap_userns_child(): the child only makes system
	 * calls. A single-threaded process may join a user namespace; the
	 * namespace it then unshares is that user namespace's. */
	pid_t pid = (pid_t)syscall(SYS_clone, (unsigned long)SIGCHLD, NULL, NULL, NULL, NULL);
	if (pid == 0) {
		struct owned_report rep = { 0, 0 };
		syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		if (syscall(SYS_setns, ufd, CLONE_NEWUSER) < 0)
			rep = (struct owned_report){ 1, errno };
		else if (syscall(SYS_unshare, nstype) < 0)
			rep = (struct owned_report){ 2, errno };
		syscall(SYS_write, p[1], &rep, sizeof(rep));
		if (rep.step)
			syscall(SYS_exit_group, 1);
		for (;;)
			syscall(SYS_pause);
	}
	int clone_errno = errno;
	close(p[1]);
	_cleanup_close_ int rd = p[0];
	if (pid < 0)
		return err_set(err, -clone_errno, "create a process: %s", strerror(clone_errno));
	struct owned_report rep = { 0, 0 };
	ssize_t n;
	while ((n = read(rd, &rep, sizeof(rep))) < 0 && errno == EINTR)
		;
	int r = 0;
	if (n != (ssize_t)sizeof(rep))
		r = err_set(err, -EIO, "the %s namespace's maker died", name);
	else if (rep.step == 1)
		r = err_set(err, -rep.errnum, "join the user namespace \"%s\": %s", user_pin,
			    strerror(rep.errnum));
	else if (rep.step)
		r = err_set(err, -rep.errnum, "unshare(%s) in \"%s\": %s", name, user_pin,
			    strerror(rep.errnum));
	if (r == 0)
		r = pin_of(pid, name, pin, err);
	idmap_child_reap(pid);
	return r < 0 ? r : setup_pinned(nstype, pin, setup, userdata, err);
}

static int nothing(void *userdata, struct cric_err *err)
{
	(void)userdata;
	(void)err;
	return 0;
}

static void probe_clean(const char *base, char pins[][PATH_MAX + 16], size_t n)
{
	struct cric_err ignored;
	for (size_t i = n; i-- > 0;)
		nspin_remove(pins[i], &ignored);
	rmdir(base);
}

int nspin_probe_userns(const char *dir, struct cric_err *err)
{
	char base[PATH_MAX], pins[3][PATH_MAX + 16];
	snprintf(base, sizeof(base), "%s/.userns-probe-%d", dir, (int)getpid());
	static const char *const names[] = { "user", "net", "ipc" };
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		snprintf(pins[i], sizeof(pins[i]), "%s/%s", base, names[i]);
	probe_clean(base, pins, ARRAY_SIZE(names)); /* a crashed probe's */
	if (mkdir(base, 0700) < 0)
		return err_set(err, negative_errno(), "create \"%s\": %s", base, strerror(errno));
	const struct idmap_range m = { .host_id = 1u << 30, .length = 65536 };
	int r = nspin_create_userns(&m, &m, pins[0], CLONE_NEWNET, pins[1], nothing, NULL, err);
	if (r == 0)
		r = nspin_create_owned(CLONE_NEWIPC, pins[0], pins[2], nothing, NULL, err);
	probe_clean(base, pins, ARRAY_SIZE(names));
	if (r == 0 && access(base, F_OK) == 0)
		r = err_set(err, -EBUSY, "remove \"%s\": it stays", base);
	return r;
}
