/* The pod's own files in its directory: hostname, hosts and resolv.conf
 * (bound into its containers), its /dev/shm, and the directory's removal;
 * see sandbox-int.h. */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "podplan.h"
#include "sandbox-int.h"

static int write_in(const char *dir, const char *name, const char *text)
{
	_cleanup_free_ char *path = path_join(dir, name);
	if (!path)
		return -ENOMEM;
	/* The pod's directory is volatile state (the run dir): no fsync. */
	return write_file_volatile(path, text, strlen(text), 0644);
}

/* "<key> w1 w2...\n" at buf + o when there are words; the new offset
 * (size or more when it did not fit). */
static size_t append_words(char *buf, size_t size, size_t o, const char *key, char *const *words,
			   size_t n)
{
	if (n == 0 || o >= size)
		return o;
	o += (size_t)snprintf(buf + o, size - o, "%s", key);
	for (size_t i = 0; i < n && o < size; i++)
		o += (size_t)snprintf(buf + o, size - o, " %s", words[i]);
	if (o < size)
		o += (size_t)snprintf(buf + o, size - o, "\n");
	return o;
}

int podfiles_write(struct sandbox *sb, const struct pod_plan *p, struct cric_err *err)
{
	char buf[16384];
	int r;
	snprintf(buf, sizeof(buf), "%s\n", p->hostname);
	if ((r = write_in(sb->dir, "hostname", buf)) < 0)
		return err_set(err, r, "write hostname: %s", strerror(-r));

	size_t o = (size_t)snprintf(buf, sizeof(buf),
				    "127.0.0.1\tlocalhost\n"
				    "::1\tlocalhost ip6-localhost ip6-loopback\n"
				    "fe00::0\tip6-localnet\n"
				    "fe00::0\tip6-mcastprefix\n"
				    "fe00::1\tip6-allnodes\n"
				    "fe00::2\tip6-allrouters\n");
	for (size_t i = 0; i < SANDBOX_MAX_IPS && sb->ips[i] && o < sizeof(buf); i++)
		o +=
		    (size_t)snprintf(buf + o, sizeof(buf) - o, "%s\t%s\n", sb->ips[i], p->hostname);
	if ((r = write_in(sb->dir, "hosts", buf)) < 0)
		return err_set(err, r, "write hosts: %s", strerror(-r));

	if (p->has_dns) {
		o = (size_t)snprintf(buf, sizeof(buf), "# written by cric for pod %s\n", sb->id);
		for (size_t i = 0; i < p->n_dns_servers && o < sizeof(buf); i++)
			o += (size_t)snprintf(buf + o, sizeof(buf) - o, "nameserver %s\n",
					      p->dns_servers[i]);
		o = append_words(buf, sizeof(buf), o, "search", p->dns_searches, p->n_dns_searches);
		o = append_words(buf, sizeof(buf), o, "options", p->dns_options, p->n_dns_options);
		if (o >= sizeof(buf))
			return err_set(err, -EINVAL,
				       "dns_config makes a resolv.conf over %zu bytes",
				       sizeof(buf));
		r = write_in(sb->dir, "resolv.conf", buf);
	} else {
		/* No DNS config: the node's resolver, as the kubelet does for
		 * "Default" DNS policy. */
		_cleanup_free_ char *host = NULL;
		size_t len;
		r = read_file("/etc/resolv.conf", 64 * 1024, &host, &len);
		r = write_in(sb->dir, "resolv.conf", r == 0 ? host : "");
	}
	if (r < 0)
		return err_set(err, r, "write resolv.conf: %s", strerror(-r));
	return 0;
}

int podfiles_shm_mount(const char *dir, uint64_t size, struct cric_err *err)
{
	_cleanup_free_ char *path = path_join(dir, "shm");
	if (!path)
		return -ENOMEM;
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return err_set(err, negative_errno(), "create \"%s\": %s", path, strerror(errno));
	char opts[64];
	snprintf(opts, sizeof(opts), "mode=1777,size=%" PRIu64, size);
	if (mount("shm", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) < 0)
		return err_set(err, negative_errno(), "mount the pod's /dev/shm on \"%s\": %s",
			       path, strerror(errno));
	return 0;
}

int podfiles_shm_unmount(const char *dir, struct cric_err *err)
{
	if (!*dir)
		return 0;
	_cleanup_free_ char *path = path_join(dir, "shm");
	if (!path)
		return -ENOMEM;
	/* Every layer (a mount interrupted by a kill could be retried over
	 * an earlier one); EINVAL: not a mount point any more. */
	for (int i = 0; i < 16; i++) {
		if (umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
			continue;
		if (errno == EINVAL || errno == ENOENT)
			return 0;
		return err_set(err, negative_errno(), "unmount the pod's /dev/shm \"%s\": %s", path,
			       strerror(errno));
	}
	return err_set(err, -EBUSY, "unmount the pod's /dev/shm \"%s\": still mounted", path);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		return rmdir(path) < 0 && errno != ENOENT ? -1 : 0;
	return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

/* rm -rf of the pod's own directory; never crosses into a mount (the pins
 * are unmounted first, FTW_MOUNT guards against any left). */
int podfiles_remove(const char *dir, struct cric_err *err)
{
	if (!*dir)
		return 0;
	if (nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0 && errno != ENOENT)
		return err_set(err, negative_errno(), "remove \"%s\": %s", dir, strerror(errno));
	return 0;
}
