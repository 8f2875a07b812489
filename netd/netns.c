#include "netns.h"

#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "common/macro.h"
#include "common/nspin.h"
#include "podspec.h"

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

static int setup(void *userdata, struct cric_err *err)
{
	(void)userdata;
	return loopback_up(err);
}

int netns_create(const char *pin_path, struct cric_err *err)
{
	return nspin_create(CLONE_NEWNET, pin_path, setup, NULL, err);
}

int netns_create_userns(const char *user_pin, const char *pin_path, const struct pod_userns *u,
			struct cric_err *err)
{
	const struct idmap_range uid = { .host_id = u->uid_host_id, .length = u->length };
	const struct idmap_range gid = { .host_id = u->gid_host_id, .length = u->length };
	return nspin_create_userns(&uid, &gid, user_pin, CLONE_NEWNET, pin_path, setup, NULL, err);
}

int netns_remove(const char *pin_path, struct cric_err *err)
{
	return nspin_remove(pin_path, err);
}

bool netns_is_pinned(const char *pin_path)
{
	return nspin_is_pinned(pin_path, CLONE_NEWNET);
}
