/* The frames between imaged and cric-fetch (see fetchwire.h). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "imaged/fetchwire.h"

static bool type_known(uint8_t t)
{
	return (t >= FETCH_REQ_URL && t <= FETCH_REQ_END) ||
	       (t >= FETCH_EV_HEADER && t <= FETCH_EV_DONE);
}

int fetch_frame_parse(const uint8_t *buf, size_t len, struct fetch_frame *f, size_t *used)
{
	if (len < FETCH_FRAME_HDR)
		return 0;
	uint32_t n = (uint32_t)buf[1] << 24 | (uint32_t)buf[2] << 16 | (uint32_t)buf[3] << 8 |
		     (uint32_t)buf[4];
	if (!type_known(buf[0]) || n > FETCH_FRAME_MAX)
		return -EBADMSG;
	if (len - FETCH_FRAME_HDR < n)
		return 0;
	*f = (struct fetch_frame){ .type = buf[0], .len = n, .data = buf + FETCH_FRAME_HDR };
	*used = FETCH_FRAME_HDR + (size_t)n;
	return 1;
}

void fetch_frame_header(uint8_t hdr[FETCH_FRAME_HDR], uint8_t type, uint32_t len)
{
	hdr[0] = type;
	hdr[1] = (uint8_t)(len >> 24);
	hdr[2] = (uint8_t)(len >> 16);
	hdr[3] = (uint8_t)(len >> 8);
	hdr[4] = (uint8_t)len;
}

/* DONE: err (u16, its magnitude), status (u16), the message. */
size_t fetch_done_encode(const struct fetch_done *d, uint8_t *buf)
{
	unsigned e = d->err < 0 && d->err >= -4095 ? (unsigned)-d->err : d->err ? 5 /* EIO */ : 0;
	unsigned s = d->status >= 0 && d->status <= 999 ? (unsigned)d->status : 0;
	size_t n = 0;
	buf[n++] = (uint8_t)(e >> 8);
	buf[n++] = (uint8_t)e;
	buf[n++] = (uint8_t)(s >> 8);
	buf[n++] = (uint8_t)s;
	for (const char *p = d->msg; *p && n < 4 + FETCH_MSG_MAX - 1; p++)
		buf[n++] = *p >= ' ' && *p <= '~' ? (uint8_t)*p : '?';
	return n;
}

int fetch_done_parse(const uint8_t *p, size_t n, struct fetch_done *ret)
{
	if (n < 4 || n - 4 >= FETCH_MSG_MAX)
		return -EBADMSG;
	unsigned e = (unsigned)p[0] << 8 | p[1], s = (unsigned)p[2] << 8 | p[3];
	if (e > 4095 || s > 999)
		return -EBADMSG;
	struct fetch_done d = { .err = -(int)e, .status = (int)s };
	for (size_t i = 4; i < n; i++) {
		if (p[i] < ' ' || p[i] > '~')
			return -EBADMSG;
		d.msg[i - 4] = (char)p[i];
	}
	*ret = d;
	return 0;
}

void fetch_reader_init(struct fetch_reader *r, int fd)
{
	r->fd = fd;
	r->start = r->end = 0;
}

int fetch_reader_next(struct fetch_reader *r, int timeout_ms, struct fetch_frame *f)
{
	for (;;) {
		size_t used;
		int k = fetch_frame_parse(r->buf + r->start, r->end - r->start, f, &used);
		if (k < 0)
			return k;
		if (k > 0) {
			r->start += used;
			return 1;
		}
		/* Room for a whole frame after what is kept. */
		if (r->start > 0 && sizeof(r->buf) - r->start < FETCH_FRAME_HDR + FETCH_FRAME_MAX) {
			memmove(r->buf, r->buf + r->start, r->end - r->start);
			r->end -= r->start;
			r->start = 0;
		}
		/* Read first, wait only when nothing is there: one syscall a
		 * batch while the peer keeps up. */
		ssize_t got = recv(r->fd, r->buf + r->end, sizeof(r->buf) - r->end, MSG_DONTWAIT);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0 && errno == EAGAIN) {
			struct pollfd pfd = { .fd = r->fd, .events = POLLIN };
			int p = poll(&pfd, 1, timeout_ms);
			if (p < 0 && errno == EINTR)
				continue;
			if (p < 0)
				return -errno;
			if (p == 0)
				return 0;
			continue;
		}
		if (got < 0)
			return errno == ECONNRESET || errno == EPIPE ? -ECONNRESET : -errno;
		if (got == 0)
			return -ECONNRESET;
		r->end += (size_t)got;
	}
}

int fetch_write_frame(int fd, uint8_t type, const void *data, size_t len)
{
	uint8_t hdr[FETCH_FRAME_HDR];
	if (len > FETCH_FRAME_MAX)
		return -E2BIG;
	fetch_frame_header(hdr, type, (uint32_t)len);
	struct iovec iov[2] = { { hdr, sizeof(hdr) }, { (void *)data, len } };
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = len ? 2 : 1 };
	size_t left = sizeof(hdr) + len;
	while (left > 0) {
		ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		left -= (size_t)w;
		/* Skip what went out. */
		while (w > 0 && m.msg_iovlen > 0) {
			size_t k = (size_t)w < m.msg_iov->iov_len ? (size_t)w : m.msg_iov->iov_len;
			m.msg_iov->iov_base = (uint8_t *)m.msg_iov->iov_base + k;
			m.msg_iov->iov_len -= k;
			w -= (ssize_t)k;
			if (m.msg_iov->iov_len == 0) {
				m.msg_iov++;
				m.msg_iovlen--;
			}
		}
	}
	return 0;
}

int fetch_write_str(int fd, uint8_t type, const char *s)
{
	return s ? fetch_write_frame(fd, type, s, strlen(s)) : 0;
}
