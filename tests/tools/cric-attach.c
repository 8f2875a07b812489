/* cric-attach: attach to a container's monitor (monitord/attach.h) for
 * the integration tests.
 *
 *   cric-attach [--stdin] [--resize COLSxROWS] <monitor dir>
 *
 * Writes "attached" on stderr once attached, then the container's stdout
 * on stdout and its stderr on stderr as they come; with --stdin, what it
 * reads on stdin goes to the container's stdin and its end of file
 * detaches. Exits 0 when the monitor closes the connection, 1 with the
 * monitor's refusal on stderr. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "monitord/attach.h"

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n > 0) {
		ssize_t w = write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

int main(int argc, char **argv)
{
	bool want_stdin = false;
	unsigned cols = 0, rows = 0;
	int a = 1;
	for (; a < argc - 1; a++) {
		if (strcmp(argv[a], "--stdin") == 0)
			want_stdin = true;
		else if (strcmp(argv[a], "--resize") == 0 && a + 1 < argc - 1 &&
			 sscanf(argv[a + 1], "%ux%u", &cols, &rows) == 2 && cols < 65536 &&
			 rows < 65536)
			a++;
		else
			break;
	}
	if (a != argc - 1) {
		fprintf(stderr,
			"usage: cric-attach [--stdin] [--resize COLSxROWS] <monitor dir>\n");
		return 2;
	}
	char why[512] = "";
	int fd = monitor_attach(argv[a], want_stdin, why, sizeof(why));
	if (fd < 0) {
		fprintf(stderr, "cric-attach: %s (%s)\n", why, strerror(-fd));
		return 1;
	}
	if (cols && monitor_attach_resize(fd, (uint16_t)cols, (uint16_t)rows) < 0)
		return 1;
	fprintf(stderr, "attached\n");
	static uint8_t buf[MONITOR_ATTACH_FRAME_MAX];
	bool in_open = want_stdin;
	for (;;) {
		struct pollfd p[2] = { { fd, POLLIN, 0 }, { in_open ? 0 : -1, POLLIN, 0 } };
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		if (p[1].revents) {
			ssize_t n = read(0, buf, sizeof(buf));
			if (n > 0 &&
			    monitor_attach_send(fd, MONITOR_ATTACH_STDIN, buf, (size_t)n) < 0)
				return 1;
			if (n <= 0) {
				shutdown(fd, SHUT_WR);
				in_open = false;
			}
		}
		if (p[0].revents) {
			uint8_t type;
			size_t len;
			int r = monitor_attach_recv(fd, &type, buf, &len);
			if (r < 0) {
				fprintf(stderr, "cric-attach: %s\n", strerror(-r));
				return 1;
			}
			if (r == 0)
				return 0;
			write_all(type == MONITOR_ATTACH_STDERR ? 2 : 1, buf, len);
		}
	}
}
