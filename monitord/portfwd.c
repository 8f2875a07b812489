/* Port-forward's connection into a pod, through cric-portfwd; see
 * portfwd.h. */
#include "monitord/portfwd.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/spawn.h"
#include "common/cleanup.h"
#include "common/fsutil.h"
#include "monitord/portfwd/portfwd.h"

/* The helper answers within its connect's timeout; this is for a helper
 * that hangs anyway. */
#define ANSWER_TIMEOUT_MS (2 * PORTFWD_CONNECT_TIMEOUT_MS + 1000)

char *portfwd_helper_default(void)
{
	return path_beside_exe("cric-portfwd");
}

static int spawn_helper(const char *helper, const char *netns, uint16_t port, int report_fd,
			pid_t *pid)
{
	char portstr[8];
	snprintf(portstr, sizeof(portstr), "%u", (unsigned)port);
	char *argv[] = { (char *)helper,           "--port",      portstr,
			 netns ? "--netns" : NULL, (char *)netns, NULL };
	char *env[] = { NULL };
	const struct spawn_fd map[] = {
		{ 0, -1, "/dev/null", O_RDONLY },
		{ 1, -1, "/dev/null", O_WRONLY },
		{ PORTFWD_REPORT_FD, report_fd, NULL, 0 },
	};
	return spawn_start(helper, argv, env, map, ARRAY_SIZE(map), false, PORTFWD_REPORT_FD, pid);
}

/* The helper's message: the socket, or -errno with why. */
static int read_answer(int fd, char *why, size_t why_size)
{
	struct pollfd p = { fd, POLLIN, 0 };
	int n = poll(&p, 1, ANSWER_TIMEOUT_MS);
	if (n <= 0) {
		snprintf(why, why_size, "the port-forward helper did not answer");
		return n == 0 ? -ETIMEDOUT : -errno;
	}
	char text[640];
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct iovec iov = { text, sizeof(text) - 1 };
	struct msghdr msg = { .msg_iov = &iov,
			      .msg_iovlen = 1,
			      .msg_control = u.buf,
			      .msg_controllen = sizeof(u.buf) };
	ssize_t got;
	do
		got = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
	while (got < 0 && errno == EINTR);
	if (got < 0) {
		int r = -errno;
		snprintf(why, why_size, "read the port-forward helper's answer: %s", strerror(-r));
		return r;
	}
	text[got] = '\0';
	_cleanup_close_ int sock = -1;
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
	if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
	    cm->cmsg_len == CMSG_LEN(sizeof(int)))
		memcpy(&sock, CMSG_DATA(cm), sizeof(int));
	if (strcmp(text, "ok") == 0 && sock >= 0 && !(msg.msg_flags & MSG_CTRUNC))
		return TAKE_FD(sock);
	int err = 0, off = 0;
	if (sscanf(text, "error %d %n", &err, &off) == 1 && off > 0 && err > 0 && err < 4096) {
		snprintf(why, why_size, "%s", text + off);
		return -err;
	}
	snprintf(why, why_size, "the port-forward helper failed%s",
		 got == 0 ? " without saying why" : "");
	return -EPROTO;
}

int portfwd_connect(const char *helper, const char *netns, uint16_t port, char *why,
		    size_t why_size)
{
	if (port == 0 || (netns && netns[0] != '/')) {
		snprintf(why, why_size, "bad port-forward target: port %u, namespace \"%s\"",
			 (unsigned)port, netns ? netns : "");
		return -EINVAL;
	}
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		int r = -errno;
		snprintf(why, why_size, "socketpair: %s", strerror(-r));
		return r;
	}
	_cleanup_close_ int ours = sv[0];
	pid_t pid;
	int r = spawn_helper(helper, netns, port, sv[1], &pid);
	close(sv[1]);
	if (r < 0) {
		snprintf(why, why_size, "start \"%s\": %s", helper, strerror(-r));
		return r;
	}
	r = read_answer(ours, why, why_size);
	if (r == -ETIMEDOUT && strstr(why, "did not answer"))
		kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	return r;
}
