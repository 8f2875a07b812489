#include "sdproto.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* addr from a socket name: a path, or "@name" for an abstract one. */
static int unix_addr(const char *name, struct sockaddr_un *sa, socklen_t *len)
{
	size_t n = strlen(name);
	if (n == 0 || n >= sizeof(sa->sun_path) || (name[0] != '/' && name[0] != '@'))
		return -EINVAL;
	*sa = (struct sockaddr_un){ .sun_family = AF_UNIX };
	memcpy(sa->sun_path, name, n);
	if (name[0] == '@')
		sa->sun_path[0] = '\0'; /* abstract: the length says where it ends */
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (name[0] == '/'));
	return 0;
}

static int send_to(int fd, const char *name, struct iovec *iov, size_t n)
{
	struct sockaddr_un sa;
	socklen_t len;
	int r = unix_addr(name, &sa, &len);
	if (r < 0)
		return r;
	struct msghdr mh = { .msg_name = &sa, .msg_namelen = len, .msg_iov = iov, .msg_iovlen = n };
	return sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 ? -errno : 0;
}

int sd_proto_notify(const char *state)
{
	const char *name = getenv("NOTIFY_SOCKET");
	if (!name || !*name)
		return 0;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct iovec iov = { (void *)state, strlen(state) };
	int r = send_to(fd, name, &iov, 1);
	close(fd);
	return r;
}

int sd_proto_notifyf(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -EINVAL;
	return sd_proto_notify(buf);
}

/* One socket for every record of the process, made at the first. */
static int journal_fd = -1, journal_errno;
static pthread_once_t journal_once = PTHREAD_ONCE_INIT;

static void journal_open(void)
{
	journal_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	journal_errno = journal_fd < 0 ? errno : 0;
}

int sd_proto_journal_send(const struct iovec *iov, size_t n, const char *socket_path)
{
	char buf[SD_PROTO_JOURNAL_MAX];
	size_t used = 0;
	for (size_t i = 0; i < n; i++) {
		const char *f = iov[i].iov_base;
		size_t len = iov[i].iov_len;
		const char *eq = memchr(f, '=', len);
		if (!eq || eq == f)
			return -EINVAL;
		size_t name = (size_t)(eq - f), vlen = len - name - 1;
		bool binary = memchr(eq + 1, '\n', vlen) != NULL;
		size_t need = binary ? name + 1 + 8 + vlen + 1 : len + 1;
		if (need > sizeof(buf) - used)
			return -E2BIG;
		memcpy(buf + used, f, name);
		used += name;
		if (binary) {
			buf[used++] = '\n';
			uint64_t le = vlen;
			for (int b = 0; b < 8; b++)
				buf[used++] = (char)(le >> (8 * b));
		} else {
			buf[used++] = '=';
		}
		memcpy(buf + used, eq + 1, vlen);
		used += vlen;
		buf[used++] = '\n';
	}
	pthread_once(&journal_once, journal_open);
	if (journal_fd < 0)
		return -journal_errno;
	struct iovec all = { buf, used };
	return send_to(journal_fd, socket_path ? socket_path : "/run/systemd/journal/socket", &all,
		       1);
}
