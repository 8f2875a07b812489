#include "nspin.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <unistd.h>

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
