/* The attach backend of a streaming session: the container's own stdio,
 * held by its monitor, through the monitor's attach protocol (monitord/
 * attach.h; its frames in monitord/monitor/monitor.h).
 *
 * The monitor's STDOUT frames (a tty container's terminal too) go to the
 * stdout stream, STDERR frames to the stderr stream; a frame for a stream
 * the client did not open is read and dropped. The client's stdin goes to
 * the monitor as STDIN frames (only when the request asked for stdin: then
 * we are the container's one stdin attacher), its resize messages as
 * RESIZE frames. The end of the client's stdin stream sends nothing more
 * (the monitor detaches a client that shuts down its side, and we still
 * want the output; kubectl ends an attach by closing the connection).
 *
 * The session ends when the monitor closes the connection (the container
 * exited and its output was sent, or the monitor dropped us as a reader
 * too slow): the status is Success, as the kubelet's streaming library
 * reports a finished attach whatever the container's exit code; or when
 * the client goes: we detach, the container runs on. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "monitord/attach.h"
#include "monitord/monitors.h"
#include "session.h"

#define RESIZE_MAX 256
#define CHUNK      (32 * 1024)

struct attach_be {
	int fd;                             /* the monitor's connection */
	uint8_t hdr[MONITOR_ATTACH_HEADER]; /* the frame header being read */
	size_t hdr_len;
	uint8_t type;  /* of the frame whose payload is being read */
	size_t left;   /* of that payload */
	uint8_t *obuf; /* frames for the monitor */
	size_t olen;
	bool eof;
	char resize[RESIZE_MAX];
	size_t resize_len;
};

static struct attach_be *be_of(struct session *s)
{
	return s->be_data;
}

/* Queue one frame for the monitor. */
static int queue_frame(struct attach_be *a, uint8_t type, const uint8_t *p, size_t n)
{
	uint8_t *b = realloc(a->obuf, a->olen + MONITOR_ATTACH_HEADER + n);
	if (!b)
		return -ENOMEM;
	a->obuf = b;
	uint8_t *h = b + a->olen;
	h[0] = type;
	h[1] = (uint8_t)(n >> 24);
	h[2] = (uint8_t)(n >> 16);
	h[3] = (uint8_t)(n >> 8);
	h[4] = (uint8_t)n;
	if (n)
		memcpy(h + MONITOR_ATTACH_HEADER, p, n);
	a->olen += MONITOR_ATTACH_HEADER + n;
	return 0;
}

static int be_data(struct session *s, struct stream_chan *c, const uint8_t *p, size_t n)
{
	struct attach_be *a = be_of(s);
	/* Queued from the first byte: the client may send before the
	 * session starts (its other streams not yet open). */
	if (a->eof)
		return 0;
	if (c->type == ST_RESIZE) {
		if (a->resize_len + n > sizeof(a->resize))
			a->resize_len = 0; /* not JSON we take: start again */
		if (n > sizeof(a->resize))
			return 0;
		memcpy(a->resize + a->resize_len, p, n);
		a->resize_len += n;
		unsigned short w, h;
		if (!session_take_resizes(a->resize, &a->resize_len, &w, &h))
			return 0;
		const uint8_t d[4] = { (uint8_t)(w >> 8), (uint8_t)w, (uint8_t)(h >> 8),
				       (uint8_t)h };
		return queue_frame(a, MONITOR_ATTACH_RESIZE, d, sizeof(d));
	}
	if (!s->req->stdin)
		return 0;
	while (n > 0) {
		size_t k = n < MONITOR_ATTACH_FRAME_MAX ? n : MONITOR_ATTACH_FRAME_MAX;
		int r = queue_frame(a, MONITOR_ATTACH_STDIN, p, k);
		if (r < 0)
			return r;
		p += k;
		n -= k;
	}
	return 0;
}

static void be_eof(struct session *s, struct stream_chan *c)
{
	(void)s;
	(void)c;
}

static bool be_wants_input(struct session *s)
{
	return be_of(s)->olen < SESSION_STDIN_MAX;
}

static int be_start(struct session *s)
{
	struct attach_be *a = be_of(s);
	char *dir = NULL;
	if (asprintf(&dir, "%s/%s", s->monitors->dir, s->req->id) < 0)
		return -ENOMEM;
	char why[256] = "";
	a->fd = monitor_attach(dir, s->req->stdin, why, sizeof(why));
	free(dir);
	if (a->fd < 0) {
		int r = a->fd;
		a->fd = -1;
		log_info("streaming: attach to %.12s refused: %s", s->req->id,
			 why[0] ? why : strerror(-r));
		return r;
	}
	int fl = fcntl(a->fd, F_GETFL);
	if (fl < 0 || fcntl(a->fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	log_info("streaming: attached to %.12s%s", s->req->id, s->req->stdin ? " with stdin" : "");
	return 0;
}

/* The stream a frame of type goes to; ST_N: dropped. */
static enum stream_type stream_of(struct session *s, uint8_t type)
{
	enum stream_type t = type == MONITOR_ATTACH_STDOUT   ? ST_STDOUT
			     : type == MONITOR_ATTACH_STDERR ? ST_STDERR
							     : ST_N;
	return t != ST_N && s->by_type[t] ? t : ST_N;
}

/* Whether there is room for what comes next from the monitor. */
static bool may_read(struct session *s)
{
	struct attach_be *a = be_of(s);
	if (a->left == 0)
		return true; /* a header, or an empty payload */
	enum stream_type t = stream_of(s, a->type);
	return t == ST_N || session_room(s, t) > 0;
}

static int be_poll_fds(struct session *s, struct pollfd *p, int max)
{
	struct attach_be *a = be_of(s);
	if (max < 1 || a->fd < 0)
		return 0;
	short ev = (short)((may_read(s) ? POLLIN : 0) | (a->olen ? POLLOUT : 0));
	p[0] = (struct pollfd){ ev ? a->fd : -1, ev, 0 };
	return 1;
}

static void detach(struct attach_be *a)
{
	if (a->fd >= 0)
		close(a->fd);
	a->fd = -1;
	a->eof = true;
}

/* Read what the monitor sent, within the room: 0, or <0 to end. */
static int pump_out(struct session *s)
{
	struct attach_be *a = be_of(s);
	uint8_t buf[CHUNK];
	for (;;) {
		if (a->fd < 0 || !may_read(s))
			return 0;
		size_t want;
		uint8_t *dst;
		enum stream_type t = ST_N;
		if (a->left == 0) {
			want = sizeof(a->hdr) - a->hdr_len;
			dst = a->hdr + a->hdr_len;
		} else {
			t = stream_of(s, a->type);
			size_t room = t == ST_N ? sizeof(buf) : session_room(s, t);
			want = a->left < room ? a->left : room;
			if (want > sizeof(buf))
				want = sizeof(buf);
			dst = buf;
		}
		ssize_t k = read(a->fd, dst, want);
		if (k < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		if (k <= 0) { /* the container exited, or the monitor dropped us */
			if (k < 0)
				log_info("streaming: the attach to %.12s broke: %m", s->req->id);
			detach(a);
			return 0;
		}
		if (a->left == 0) {
			a->hdr_len += (size_t)k;
			if (a->hdr_len < sizeof(a->hdr))
				continue;
			a->hdr_len = 0;
			a->type = a->hdr[0];
			a->left = (size_t)a->hdr[1] << 24 | (size_t)a->hdr[2] << 16 |
				  (size_t)a->hdr[3] << 8 | a->hdr[4];
			if (a->left > MONITOR_ATTACH_FRAME_MAX) {
				log_warning("streaming: the monitor of %.12s sent a frame of %zu "
					    "bytes: detaching",
					    s->req->id, a->left);
				detach(a);
				return 0;
			}
			continue;
		}
		a->left -= (size_t)k;
		if (t != ST_N) {
			int r = session_send(s, t, buf, (size_t)k);
			if (r < 0)
				return r;
		}
	}
}

static int pump_in(struct attach_be *a)
{
	ssize_t k = send(a->fd, a->obuf, a->olen, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (k < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (k < 0) {
		/* The monitor went: what it sent before is still to read. */
		a->olen = 0;
		return 0;
	}
	memmove(a->obuf, a->obuf + k, a->olen - (size_t)k);
	a->olen -= (size_t)k;
	return 0;
}

static int be_on_poll(struct session *s, const struct pollfd *p, int n)
{
	struct attach_be *a = be_of(s);
	if (n < 1 || a->fd < 0)
		return 0;
	if (p[0].revents & POLLOUT)
		pump_in(a);
	if (p[0].revents & (POLLIN | POLLHUP | POLLERR))
		return pump_out(s);
	return 0;
}

static bool be_done(struct session *s, int *exit_code)
{
	*exit_code = 0;
	return be_of(s)->eof;
}

static void be_stop(struct session *s)
{
	struct attach_be *a = be_of(s);
	if (a->fd >= 0)
		log_info("streaming: the client attached to %.12s went away: detaching",
			 s->req->id);
	detach(a);
}

static void be_free(struct session *s)
{
	struct attach_be *a = be_of(s);
	if (!a)
		return;
	detach(a);
	free(a->obuf);
	free(a);
	s->be_data = NULL;
}

static const struct backend_ops attach_backend = {
	.start = be_start,
	.poll_fds = be_poll_fds,
	.on_poll = be_on_poll,
	.data = be_data,
	.eof = be_eof,
	.wants_input = be_wants_input,
	.done = be_done,
	.stop = be_stop,
	.free = be_free,
};

int attach_backend_init(struct session *s)
{
	struct attach_be *a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->fd = -1;
	s->be = &attach_backend;
	s->be_data = a;
	return 0;
}
