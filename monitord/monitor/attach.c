/* cric-monitor: attachers on the control socket (monitor.h states the
 * protocol): the container's output fanned out to each, stdin from one,
 * resize for a tty. Nothing here blocks: a slow attacher is dropped, the
 * container's stdin is written at its own pace. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cric-monitor.h"
#include "monitor.h"

#define IN_CAP (MONITOR_ATTACH_HEADER + MONITOR_ATTACH_FRAME_MAX)

void attach_init(struct monitor *m)
{
	for (int i = 0; i < MONITOR_ATTACH_MAX; i++)
		m->att[i] = (struct attacher){ .fd = -1 };
}

/* The fd the container reads its stdin from: the pty for a tty. */
static int stdin_target(const struct monitor *m)
{
	return m->tty ? m->out_fd : m->in_fd;
}

static void close_stdin(struct monitor *m)
{
	m->stdin_closed = true;
	m->stdin_len = 0;
	if (m->tty) {
		if (m->out_fd >= 0 && write(m->out_fd, "\x04", 1) < 0)
			say("write end-of-file to the pty: %s, ignoring", strerror(errno));
	} else if (m->in_fd >= 0) {
		close(m->in_fd);
		m->in_fd = -1;
	}
}

static void drop(struct monitor *m, struct attacher *a, const char *why)
{
	if (a->fd < 0)
		return;
	if (why)
		say("attacher dropped: %s", why);
	close(a->fd);
	free(a->out);
	free(a->in);
	bool owner = a->stdin_owner;
	*a = (struct attacher){ .fd = -1 };
	if (owner) {
		m->stdin_owned = false;
		if (m->stdin_once)
			close_stdin(m);
	}
}

int attach_add(struct monitor *m, int fd, bool want_stdin, const char **why)
{
	if (want_stdin && !m->open_stdin) {
		*why = "the container has no stdin (created without stdin)";
		return -EINVAL;
	}
	if (want_stdin && m->stdin_closed) {
		*why = "the container's stdin is closed (stdin_once)";
		return -EPIPE;
	}
	if (want_stdin && m->stdin_owned) {
		*why = "another attacher holds the container's stdin";
		return -EBUSY;
	}
	struct attacher *a = NULL;
	for (int i = 0; i < MONITOR_ATTACH_MAX && !a; i++)
		if (m->att[i].fd < 0)
			a = &m->att[i];
	if (!a) {
		*why = "too many attachers";
		return -EMFILE;
	}
	uint8_t *in = malloc(IN_CAP);
	if (!in ||
	    (!m->stdin_buf && want_stdin && !(m->stdin_buf = malloc(MONITOR_ATTACH_FRAME_MAX)))) {
		free(in);
		*why = "out of memory";
		return -ENOMEM;
	}
	if (want_stdin && m->in_fd >= 0)
		fcntl(m->in_fd, F_SETFL, O_NONBLOCK);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	*a = (struct attacher){ .fd = fd, .stdin_owner = want_stdin, .in = in };
	m->stdin_owned |= want_stdin;
	return 0;
}

/* Send what is pending; false when the attacher is gone. */
static bool flush_out(struct monitor *m, struct attacher *a)
{
	while (a->out_off < a->out_len) {
		ssize_t w = send(a->fd, a->out + a->out_off, a->out_len - a->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			return true;
		if (w < 0) {
			drop(m, a, NULL);
			return false;
		}
		a->out_off += (size_t)w;
	}
	a->out_off = a->out_len = 0;
	return true;
}

void attach_output(struct monitor *m, int stream, const void *data, size_t n)
{
	while (n > MONITOR_ATTACH_FRAME_MAX) {
		attach_output(m, stream, data, MONITOR_ATTACH_FRAME_MAX);
		data = (const char *)data + MONITOR_ATTACH_FRAME_MAX;
		n -= MONITOR_ATTACH_FRAME_MAX;
	}
	uint8_t h[MONITOR_ATTACH_HEADER] = { (uint8_t)stream, (uint8_t)(n >> 24),
					     (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n };
	for (int i = 0; i < MONITOR_ATTACH_MAX; i++) {
		struct attacher *a = &m->att[i];
		if (a->fd < 0)
			continue;
		size_t need = a->out_len - a->out_off + sizeof(h) + n;
		if (need > MONITOR_ATTACH_BUFFER) {
			drop(m, a, "it did not read its backlog");
			continue;
		}
		if (a->out_off > 0) {
			memmove(a->out, a->out + a->out_off, a->out_len - a->out_off);
			a->out_len -= a->out_off;
			a->out_off = 0;
		}
		if (need > a->out_cap) {
			size_t cap = a->out_cap ? a->out_cap : 64 * 1024;
			while (cap < need)
				cap *= 2;
			if (cap > MONITOR_ATTACH_BUFFER)
				cap = MONITOR_ATTACH_BUFFER;
			uint8_t *p = realloc(a->out, cap);
			if (!p) {
				drop(m, a, "out of memory");
				continue;
			}
			a->out = p;
			a->out_cap = cap;
		}
		memcpy(a->out + a->out_len, h, sizeof(h));
		memcpy(a->out + a->out_len + sizeof(h), data, n);
		a->out_len += sizeof(h) + n;
		flush_out(m, a);
	}
}

/* Write the pending stdin; the container's pace. */
static void flush_stdin(struct monitor *m)
{
	int fd = stdin_target(m);
	while (m->stdin_len > 0 && fd >= 0) {
		ssize_t w = write(fd, m->stdin_buf, m->stdin_len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			return;
		if (w < 0) {
			/* The container closed its stdin or exited: what it
			 * will never read is dropped. */
			m->stdin_len = 0;
			return;
		}
		memmove(m->stdin_buf, m->stdin_buf + w, m->stdin_len - (size_t)w);
		m->stdin_len -= (size_t)w;
	}
	if (fd < 0)
		m->stdin_len = 0;
}

/* Act on the complete frames in a->in; false when the attacher is
 * dropped. Stops at a stdin frame while earlier stdin is still pending. */
static bool handle_frames(struct monitor *m, struct attacher *a)
{
	size_t off = 0;
	bool ok = true;
	while (ok && a->in_len - off >= MONITOR_ATTACH_HEADER) {
		const uint8_t *h = a->in + off;
		uint32_t n =
		    (uint32_t)h[1] << 24 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 8 | h[4];
		if (n > MONITOR_ATTACH_FRAME_MAX) {
			drop(m, a, "a frame over the limit");
			return false;
		}
		if (a->in_len - off < MONITOR_ATTACH_HEADER + n)
			break;
		const uint8_t *d = h + MONITOR_ATTACH_HEADER;
		switch (h[0]) {
		case MONITOR_ATTACH_STDIN:
			if (!a->stdin_owner || m->stdin_closed)
				break; /* not its stdin: ignored */
			if (m->stdin_len > 0) {
				ok = false; /* later, when the container took it */
				continue;
			}
			memcpy(m->stdin_buf, d, n);
			m->stdin_len = n;
			flush_stdin(m);
			break;
		case MONITOR_ATTACH_RESIZE:
			if (n != 4) {
				drop(m, a, "a bad resize frame");
				return false;
			}
			if (m->tty && m->out_fd >= 0) {
				struct winsize ws = { .ws_col = (unsigned short)(d[0] << 8 | d[1]),
						      .ws_row =
							  (unsigned short)(d[2] << 8 | d[3]) };
				if (ioctl(m->out_fd, TIOCSWINSZ, &ws) < 0)
					say("resize the pty: %s, ignoring", strerror(errno));
			}
			break;
		default:
			drop(m, a, "an unknown frame type");
			return false;
		}
		off += MONITOR_ATTACH_HEADER + n;
	}
	memmove(a->in, a->in + off, a->in_len - off);
	a->in_len -= off;
	return true;
}

static void read_input(struct monitor *m, struct attacher *a)
{
	if (a->in_len == IN_CAP)
		return; /* read again when the held frames are taken */
	ssize_t r;
	do
		r = read(a->fd, a->in + a->in_len, IN_CAP - a->in_len);
	while (r < 0 && errno == EINTR);
	if (r < 0 && errno == EAGAIN)
		return;
	if (r <= 0) {
		/* Detached: send what stdin it gave first (once). */
		if (a->stdin_owner)
			flush_stdin(m);
		drop(m, a, NULL);
		return;
	}
	a->in_len += (size_t)r;
	handle_frames(m, a);
}

/* Reads the owner only when its stdin can be taken. */
static bool wants_input(const struct monitor *m, const struct attacher *a)
{
	return !(a->stdin_owner && m->stdin_len > 0) && a->in_len < IN_CAP;
}

int attach_pollfds(struct monitor *m, struct pollfd *p)
{
	int n = 0;
	for (int i = 0; i < MONITOR_ATTACH_MAX; i++) {
		const struct attacher *a = &m->att[i];
		short ev = (short)((a->out_len > a->out_off ? POLLOUT : 0) |
				   (wants_input(m, a) ? POLLIN : 0));
		/* Nothing wanted: not even its hangup (which would spin);
		 * seen once the container took the stdin it waits behind. */
		p[n++] = (struct pollfd){ ev ? a->fd : -1, ev, 0 };
	}
	int t = stdin_target(m);
	p[n++] = (struct pollfd){ m->stdin_len > 0 ? t : -1, POLLOUT, 0 };
	return n;
}

void attach_poll_done(struct monitor *m, const struct pollfd *p)
{
	if (p[MONITOR_ATTACH_MAX].revents && m->stdin_len > 0)
		flush_stdin(m);
	for (int i = 0; i < MONITOR_ATTACH_MAX; i++) {
		struct attacher *a = &m->att[i];
		if (a->fd < 0)
			continue;
		if (a->fd == p[i].fd && p[i].revents) {
			if ((p[i].revents & POLLOUT) && !flush_out(m, a))
				continue;
			if (p[i].revents & (POLLIN | POLLHUP | POLLERR))
				read_input(m, a);
		}
		/* Frames held back while stdin was full. */
		if (a->fd >= 0 && a->stdin_owner && m->stdin_len == 0 && a->in_len > 0)
			handle_frames(m, a);
	}
}

static long long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void attach_finish(struct monitor *m)
{
	long long end = mono_ms() + 1000;
	for (;;) {
		struct pollfd p[MONITOR_ATTACH_MAX];
		int busy = 0;
		for (int i = 0; i < MONITOR_ATTACH_MAX; i++) {
			struct attacher *a = &m->att[i];
			bool pending = a->fd >= 0 && a->out_len > a->out_off;
			p[i] = (struct pollfd){ pending ? a->fd : -1, POLLOUT, 0 };
			busy += pending;
		}
		long long left = end - mono_ms();
		if (busy == 0 || left <= 0 || poll(p, MONITOR_ATTACH_MAX, (int)left) <= 0)
			break;
		for (int i = 0; i < MONITOR_ATTACH_MAX; i++)
			if (p[i].revents)
				flush_out(m, &m->att[i]);
	}
	for (int i = 0; i < MONITOR_ATTACH_MAX; i++)
		drop(m, &m->att[i], NULL);
	free(m->stdin_buf);
	m->stdin_buf = NULL;
}
