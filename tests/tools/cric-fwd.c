/* cric-fwd: a port-forward connection (monitord/portfwd.h) relayed to
 * stdin/stdout, for the integration tests.
 *
 *   cric-fwd <helper> <netns path | -> <port>
 *
 * Writes "connected" on stderr, then relays: stdin to the connection (its
 * end of file shuts the connection's write side), the connection to
 * stdout, until the connection ends. Exits 1 with the error on stderr. */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "monitord/portfwd.h"

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: cric-fwd <helper> <netns path | -> <port>\n");
		return 2;
	}
	char why[600] = "";
	const char *netns = strcmp(argv[2], "-") == 0 ? NULL : argv[2];
	int fd = portfwd_connect(argv[1], netns, (uint16_t)atoi(argv[3]), why, sizeof(why));
	if (fd < 0) {
		fprintf(stderr, "cric-fwd: %s [%s]\n", why, strerrorname_np(-fd));
		return 1;
	}
	fprintf(stderr, "connected\n");
	static char buf[64 * 1024];
	bool in_open = true;
	for (;;) {
		struct pollfd p[2] = { { fd, POLLIN, 0 }, { in_open ? 0 : -1, POLLIN, 0 } };
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			return 1;
		if (p[1].revents) {
			ssize_t n = read(0, buf, sizeof(buf));
			if (n > 0 && write_all(fd, buf, (size_t)n) < 0)
				return 1;
			if (n <= 0) {
				shutdown(fd, SHUT_WR);
				in_open = false;
			}
		}
		if (p[0].revents) {
			ssize_t n = read(fd, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return 1;
			if (n == 0)
				return 0;
			if (write_all(1, buf, (size_t)n) < 0)
				return 1;
		}
	}
}
