/* The client of a monitor's attach; see attach.h. */
#include "monitord/attach.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/cleanup.h"

#define ANSWER_TIMEOUT_S 5

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n > 0) {
		ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* n bytes exactly: 1, 0 at EOF before the first byte, -errno (-EPROTO at
 * EOF inside). */
static int read_exact(int fd, void *p, size_t n)
{
	char *c = p;
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, c + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		if (r == 0)
			return got == 0 ? 0 : -EPROTO;
		got += (size_t)r;
	}
	return 1;
}

static int set_timeouts(int fd, int seconds)
{
	struct timeval tv = { seconds, 0 };
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
		return -errno;
	return 0;
}

/* The monitor's refusals, as errno. */
static int refusal(const char *why)
{
	static const struct {
		const char *prefix;
		int err;
	} map[] = {
		{ "another attacher", -EBUSY },
		{ "the container has no stdin", -EINVAL },
		{ "the container's stdin is closed", -EPIPE },
		{ "too many attachers", -EMFILE },
		{ "out of memory", -ENOMEM },
	};
	for (size_t i = 0; i < ARRAY_SIZE(map); i++)
		if (strncmp(why, map[i].prefix, strlen(map[i].prefix)) == 0)
			return map[i].err;
	return -EPROTO;
}

int monitor_attach(const char *dir, bool want_stdin, char *why, size_t why_size)
{
	_cleanup_close_ int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		int r = -errno;
		snprintf(why, why_size, "open \"%s\": %s", dir, strerror(-r));
		return r;
	}
	/* sun_path has 108 bytes; the directory may take more. */
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s", dfd, MONITOR_CTL_SOCKET);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;
		snprintf(why, why_size, "connect to the monitor of \"%s\": %s", dir, strerror(-r));
		return r;
	}
	int r = set_timeouts(fd, ANSWER_TIMEOUT_S);
	const char *cmd = want_stdin ? "attach stdin\n" : "attach\n";
	if (r == 0)
		r = write_all(fd, cmd, strlen(cmd));
	/* The answer line, byte by byte: frames may follow it at once. */
	char line[256];
	size_t n = 0;
	while (r == 0) {
		if (n == sizeof(line) - 1) {
			r = -EPROTO;
			break;
		}
		int e = read_exact(fd, line + n, 1);
		if (e <= 0) {
			r = e == 0 ? -EPROTO : e;
			break;
		}
		if (line[n] == '\n')
			break;
		n++;
	}
	if (r < 0) {
		snprintf(why, why_size, "attach to the monitor of \"%s\": %s", dir, strerror(-r));
		return r;
	}
	line[n] = '\0';
	if (strcmp(line, "ok") != 0) {
		const char *w = strncmp(line, "error ", 6) == 0 ? line + 6 : line;
		snprintf(why, why_size, "%s", w);
		return refusal(w);
	}
	r = set_timeouts(fd, 0);
	if (r < 0)
		return r;
	return TAKE_FD(fd);
}

int monitor_attach_send(int fd, uint8_t type, const void *data, size_t len)
{
	if (len > MONITOR_ATTACH_FRAME_MAX)
		return -EMSGSIZE;
	uint8_t h[MONITOR_ATTACH_HEADER] = { type, (uint8_t)(len >> 24), (uint8_t)(len >> 16),
					     (uint8_t)(len >> 8), (uint8_t)len };
	int r = write_all(fd, h, sizeof(h));
	return r < 0 || len == 0 ? r : write_all(fd, data, len);
}

int monitor_attach_resize(int fd, uint16_t cols, uint16_t rows)
{
	uint8_t d[4] = { (uint8_t)(cols >> 8), (uint8_t)cols, (uint8_t)(rows >> 8), (uint8_t)rows };
	return monitor_attach_send(fd, MONITOR_ATTACH_RESIZE, d, sizeof(d));
}

int monitor_attach_recv(int fd, uint8_t *type, uint8_t *buf, size_t *len)
{
	uint8_t h[MONITOR_ATTACH_HEADER];
	int r = read_exact(fd, h, sizeof(h));
	if (r <= 0)
		return r;
	uint32_t n = (uint32_t)h[1] << 24 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 8 | h[4];
	if (n > MONITOR_ATTACH_FRAME_MAX)
		return -EPROTO;
	if (n > 0 && (r = read_exact(fd, buf, n)) <= 0)
		return r == 0 ? -EPROTO : r;
	*type = h[0];
	*len = n;
	return 1;
}
