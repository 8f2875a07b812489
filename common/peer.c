/* Callers from peer credentials; see peer.h. */
#include "peer.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "macro.h"

static const struct {
	const char *exe; /* basename in the suite's bin dir */
	unsigned caller;
} root_daemons[] = {
	{ "cric-gateway", CALLER_GATEWAY },   { "cric-imaged", CALLER_IMAGED },
	{ "cric-stored", CALLER_STORED },     { "cric-netd", CALLER_NETD },
	{ "cric-runtimed", CALLER_RUNTIMED }, { "cric-monitord", CALLER_MONITORD },
};

unsigned caller_from_creds(const struct cric_identities *ids, uid_t uid, const char *exe)
{
	if (uid != 0) {
		if (ids->gateway_uid != (uid_t)-1 && uid == ids->gateway_uid)
			return CALLER_GATEWAY;
		if (ids->imaged_uid != (uid_t)-1 && uid == ids->imaged_uid)
			return CALLER_IMAGED;
		return CALLER_MEMBER;
	}
	if (!exe || exe[0] != '/' || !ids->bin_dir || !*ids->bin_dir)
		return CALLER_ADMIN;
	const char *slash = strrchr(exe, '/');
	size_t dlen = (size_t)(slash - exe);
	size_t blen = strlen(ids->bin_dir);
	while (blen > 1 && ids->bin_dir[blen - 1] == '/')
		blen--;
	if (dlen != blen || strncmp(exe, ids->bin_dir, blen) != 0)
		return CALLER_ADMIN;
	for (size_t i = 0; i < ARRAY_SIZE(root_daemons); i++)
		if (strcmp(slash + 1, root_daemons[i].exe) == 0)
			return root_daemons[i].caller;
	return CALLER_ADMIN;
}

const char *caller_name(unsigned caller)
{
	static const char *const names[] = { "gateway",  "imaged",   "stored", "netd",
					     "runtimed", "monitord", "admin",  "member" };
	for (unsigned i = 0; i < ARRAY_SIZE(names); i++)
		if (caller == 1u << i)
			return names[i];
	return "nobody";
}

unsigned long long peer_start_time(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* comm may hold spaces and parentheses: count from the last ')' */
	char *p = strrchr(buf, ')');
	if (!p)
		return 0;
	p++;
	/* p is at the space before field 3 (state); field 22 is 19 on */
	for (int field = 3; field < 22; field++) {
		p = strchr(p + 1, ' ');
		if (!p)
			return 0;
	}
	return strtoull(p + 1, NULL, 10);
}

void peer_identify(const struct cric_identities *ids, uid_t uid, gid_t gid, pid_t pid,
		   struct cric_peer *ret)
{
	memset(ret, 0, sizeof(*ret));
	ret->uid = uid;
	ret->gid = gid;
	ret->pid = pid;
	if (pid > 0) {
		char path[64], exe[sizeof(ret->exe)], comm[sizeof(ret->comm) + 1] = "";
		snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
		unsigned long long before = peer_start_time(pid);
		ssize_t n = before ? readlink(path, exe, sizeof(exe) - 1) : -1;
		snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
		_cleanup_close_ int fd = before ? open(path, O_RDONLY | O_CLOEXEC) : -1;
		ssize_t c = fd >= 0 ? read(fd, comm, sizeof(comm) - 1) : -1;
		if (before && peer_start_time(pid) == before) {
			if (n > 0 && (size_t)n < sizeof(exe) - 1) {
				exe[n] = '\0';
				memcpy(ret->exe, exe, (size_t)n + 1);
			}
			if (c > 0) {
				comm[c] = '\0';
				comm[strcspn(comm, "\n")] = '\0';
				snprintf(ret->comm, sizeof(ret->comm), "%s", comm);
			}
		}
	}
	ret->caller = caller_from_creds(ids, uid, ret->exe);
}

int self_bin_dir(char *buf, size_t size)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return -errno;
	exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	if (!slash)
		return -EINVAL;
	*slash = '\0';
	if ((size_t)snprintf(buf, size, "%s", slash == exe ? "/" : exe) >= size)
		return -ENAMETOOLONG;
	return 0;
}
