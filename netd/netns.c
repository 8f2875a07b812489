#include "netns.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/macro.h"

/* Bring "lo" up in the calling thread's network namespace. */
static int loopback_up(struct cric_err *err)
{
	_cleanup_close_ int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return err_set(err, negative_errno(), "socket: %s", strerror(errno));
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		return err_set(err, negative_errno(), "get flags of lo: %s", strerror(errno));
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		return err_set(err, negative_errno(), "bring lo up: %s", strerror(errno));
	return 0;
}

/* Runs on its own thread, whose network namespace it replaces. */
static int create_on_this_thread(const char *pin_path, struct cric_err *err)
{
	int fd = open(pin_path, O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_set(err, negative_errno(), "create \"%s\": %s", pin_path,
			       strerror(errno));
	close(fd);

	int r;
	if (unshare(CLONE_NEWNET) < 0)
		r = err_set(err, negative_errno(), "unshare(CLONE_NEWNET): %s", strerror(errno));
	else
		r = loopback_up(err);
	if (r == 0 && mount("/proc/thread-self/ns/net", pin_path, NULL, MS_BIND, NULL) < 0)
		r = err_set(err, negative_errno(), "bind-mount the namespace on \"%s\": %s",
			    pin_path, strerror(errno));
	if (r < 0)
		unlink(pin_path);
	return r;
}

struct create_job {
	const char *pin_path;
	int r;
	struct cric_err err;
};

static void *create_thread(void *arg)
{
	struct create_job *job = arg;
	job->r = create_on_this_thread(job->pin_path, &job->err);
	/* The thread ends here, and its namespace with it unless pinned. */
	return NULL;
}

int netns_create(const char *pin_path, struct cric_err *err)
{
	struct create_job job = { .pin_path = pin_path };
	pthread_t t;
	int rv = pthread_create(&t, NULL, create_thread, &job);
	if (rv != 0)
		return err_set(err, -rv, "create a thread: %s", strerror(rv));
	pthread_join(t, NULL);
	if (job.r < 0)
		return err_set(err, job.r, "%s", job.err.msg);
	return 0;
}

int netns_remove(const char *pin_path, struct cric_err *err)
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

bool netns_is_pinned(const char *pin_path)
{
	_cleanup_close_ int fd = open(pin_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return false;
	/* Only nsfs files answer NS_GET_NSTYPE. */
	return ioctl(fd, NS_GET_NSTYPE) == CLONE_NEWNET;
}
