/* cric-portfwd: connect to a port inside a pod's network namespace and hand
 * the socket back; see portfwd.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "portfwd.h"

static int report(const char *text, int fd)
{
	struct iovec iov = { (void *)text, strlen(text) };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (fd >= 0) {
		memset(&u, 0, sizeof(u));
		msg.msg_control = u.buf;
		msg.msg_controllen = sizeof(u.buf);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	ssize_t n;
	do
		n = sendmsg(PORTFWD_REPORT_FD, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : 0;
}

/* "error <errno> <what>: <strerror>", exit status 1. */
static int fail(int err, const char *what)
{
	char line[600];
	snprintf(line, sizeof(line), "error %d %s: %s", err, what, strerror(err));
	report(line, -1);
	return 1;
}

/* A connected socket to addr, or -errno; bounded by the timeout. */
static int connect_to(const struct sockaddr *sa, socklen_t len)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	int r = connect(fd, sa, len) < 0 ? -errno : 0;
	if (r == -EINPROGRESS) {
		struct pollfd p = { fd, POLLOUT, 0 };
		int n = poll(&p, 1, PORTFWD_CONNECT_TIMEOUT_MS);
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		if (n == 0)
			r = -ETIMEDOUT;
		else if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
			r = -errno;
		else
			r = -soerr;
	}
	/* The caller gets a blocking socket, as a connect would. */
	if (r == 0 && fcntl(fd, F_SETFL, 0) < 0)
		r = -errno;
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "netns", required_argument, NULL, 'n' },
		{ "port", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	const char *netns = NULL;
	long port = 0;
	char *end = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'n')
			netns = optarg;
		else if (c == 'p')
			port = strtol(optarg, &end, 10);
		else
			return 2;
	}
	if (optind != argc || port < 1 || port > 65535 || !end || *end ||
	    (netns && netns[0] != '/')) {
		fprintf(stderr, "usage: cric-portfwd --port 1-65535 [--netns /path]\n");
		report("error 22 bad arguments", -1);
		return 2;
	}
	char what[512];
	if (netns) {
		int ns = open(netns, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		int err = errno;
		snprintf(what, sizeof(what), "open the network namespace \"%s\"", netns);
		if (ns < 0)
			return fail(err, what);
		/* setns checks it is a network namespace (EINVAL if not). */
		if (setns(ns, CLONE_NEWNET) < 0) {
			err = errno;
			snprintf(what, sizeof(what), "enter the network namespace \"%s\"", netns);
			return fail(err, what);
		}
		close(ns);
	}
	struct sockaddr_in v4 = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in6 v6 = { .sin6_family = AF_INET6,
				   .sin6_port = htons((uint16_t)port),
				   .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	char where[64];
	snprintf(where, sizeof(where), "127.0.0.1:%ld", port);
	int fd = connect_to((struct sockaddr *)&v4, sizeof(v4));
	if (fd == -ECONNREFUSED) {
		int fd6 = connect_to((struct sockaddr *)&v6, sizeof(v6));
		/* No IPv6 in the pod: the IPv4 refusal is the answer. */
		if (fd6 >= 0 ||
		    (fd6 != -EAFNOSUPPORT && fd6 != -EADDRNOTAVAIL && fd6 != -ENETUNREACH)) {
			fd = fd6;
			snprintf(where, sizeof(where), "127.0.0.1:%ld or [::1]:%ld", port, port);
		}
	}
	if (fd < 0) {
		snprintf(what, sizeof(what), "connect to %s in %s", where,
			 netns ? "the pod" : "the host");
		return fail(-fd, what);
	}
	if (report("ok", fd) < 0)
		return 1;
	return 0;
}
