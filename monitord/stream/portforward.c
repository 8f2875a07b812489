/* The port-forward backend of a streaming session: the kubelet's
 * portforward protocol (portforward.k8s.io) as its streaming server
 * speaks it (k8s.io/kubelet/pkg/cri/streaming/portforward/httpstream.go).
 *
 * Per forwarded connection the client opens two streams, `error` and
 * `data`, both with the headers `port` (1-65535) and `requestID`; they
 * arrive in either order and are paired by requestID (a client too old to
 * send it: the error stream's id, the data stream's id minus 2, as the
 * kubelet guesses). A stream of another type, without a valid port, for a
 * port the PortForward call did not name (when it named some), or a second
 * one of a type for a requestID is reset. A pair not complete within the
 * session's pair_wait_ms (monitord.stream_pair_timeout_s, 30 s as the
 * kubelet's streamCreationTimeout) gets "timed out waiting for streams" on
 * its error stream, which ends, while a lone data stream is reset; the
 * pair is dropped.
 *
 * A complete pair connects to its port in the pod (cric-portfwd, through
 * the session's run_privileged: the session's thread holds no capability;
 * a host-network pod's port on the host), then bytes go both ways: the
 * client's data is written to the connection (buffered up to PF_BUF_MAX
 * per pair; past it the session stops reading the connection), what the
 * connection gives goes out on the data stream within the SPDY windows.
 * The client's FIN on data shuts the connection's write side once its
 * bytes are written; the connection's EOF ends the data stream and the
 * error stream (the client waits for the latter before it lets its local
 * connection go). A failure (connect refused, a reset) is written as text
 * to the error stream, as the kubelet does, and the pair ends. A pair is
 * done when both directions are: its streams are removed from the session,
 * which carries any number of pairs one after the other, up to
 * PF_PAIRS_MAX at a time.
 *
 * Over WebSocket (portforward/websocket.go): the ports are known from the
 * URL (portforward_backend_init_ws()); at the start one pair per port is
 * made on channels 2i and 2i+1, whose first frames carry the port (two
 * bytes, little-endian), and connected at once. WebSocket has no end of
 * one channel: a pair is done when its connection in the pod ends (or
 * fails: the error on its error channel), and the session ends, closing
 * the connection, when the last pair is done, as the kubelet's does. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "monitord/portfwd.h"
#include "monitord/ws.h"
#include "session.h"

#define PF_PAIRS_MAX   (SESSION_PF_CHANS_MAX / 2)
#define PF_BUF_MAX     (256 * 1024)
#define CHUNK          (32 * 1024)
#define REQUEST_ID_MAX 64

struct pf_pair {
	char request_id[REQUEST_ID_MAX];
	uint16_t port;
	struct stream_chan *data, *error;
	int64_t deadline_ms; /* for both streams to be there */
	int fd;              /* the connection in the pod; -1 */
	bool tried;          /* the connect was made (or failed) */
	uint8_t *buf;        /* the client's bytes for the connection */
	size_t len;
	bool client_eof, shut_wr, target_eof;
	int slot; /* in the poll array; -1: not there */
};

struct pf_be {
	struct pf_pair *pairs[PF_PAIRS_MAX];
	size_t n;
	int timer;
	/* WebSocket: the ports of the connection, one pair each, made at
	 * start; the session ends when the last pair does. */
	bool ws;
	uint16_t ws_ports[PF_PAIRS_MAX];
	size_t n_ws_ports;
};

static struct pf_be *be_of(struct session *s)
{
	return s->be_data;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "1".."65535" and nothing else: the port, 0 otherwise. */
static uint16_t parse_port(const char *v)
{
	if (!v || !*v || strlen(v) > 5 || strspn(v, "0123456789") != strlen(v))
		return 0;
	unsigned long p = strtoul(v, NULL, 10);
	return p >= 1 && p <= 65535 ? (uint16_t)p : 0;
}

static bool port_allowed(const struct stream_request *req, uint16_t port)
{
	if (req->n_ports == 0)
		return true;
	for (size_t i = 0; i < req->n_ports; i++)
		if (req->ports[i] == port)
			return true;
	return false;
}

static struct pf_pair *pair_find(struct pf_be *b, const char *request_id)
{
	for (size_t i = 0; i < b->n; i++)
		if (strcmp(b->pairs[i]->request_id, request_id) == 0)
			return b->pairs[i];
	return NULL;
}

/* The pair ends: its connection closed, its streams removed (our side of
 * them ended), its memory freed. */
static void pair_close(struct session *s, struct pf_pair *p)
{
	struct pf_be *b = be_of(s);
	if (p->fd >= 0)
		close(p->fd);
	if (p->data)
		session_chan_remove(s, p->data);
	if (p->error)
		session_chan_remove(s, p->error);
	for (size_t i = 0; i < b->n; i++)
		if (b->pairs[i] == p) {
			memmove(b->pairs + i, b->pairs + i + 1, (b->n - i - 1) * sizeof(*b->pairs));
			b->n--;
			break;
		}
	free(p->buf);
	free(p);
}

/* The pair fails: why on its error stream (as the kubelet words it), then
 * it ends. */
static void pair_fail(struct session *s, struct pf_pair *p, const char *why)
{
	char msg[512];
	snprintf(msg, sizeof(msg), "error forwarding port %u to pod %s: %s", (unsigned)p->port,
		 s->req->id, why);
	log_info("streaming: %s", msg);
	if (p->error)
		(void)session_chan_send(s, p->error, msg, strlen(msg));
	pair_close(s, p);
}

static struct stream_chan *be_open(struct session *s, const struct stream_hdrs *h, uint32_t handle)
{
	struct pf_be *b = be_of(s);
	enum stream_type type;
	if (h->type && strcasecmp(h->type, "data") == 0)
		type = ST_DATA;
	else if (h->type && strcasecmp(h->type, "error") == 0)
		type = ST_ERROR;
	else
		return NULL;
	uint16_t port = parse_port(h->port);
	if (!port) {
		log_info(
		    "streaming: port-forward: a stream without a valid port header (\"%.16s\")",
		    h->port ? h->port : "");
		return NULL;
	}
	if (!port_allowed(s->req, port)) {
		log_info("streaming: port-forward: port %u was not asked for", (unsigned)port);
		return NULL;
	}
	char rid[REQUEST_ID_MAX];
	if (h->request_id && *h->request_id) {
		if (strlen(h->request_id) >= sizeof(rid))
			return NULL;
		snprintf(rid, sizeof(rid), "%s", h->request_id);
	} else {
		/* An old client: the kubelet's guess, good while its
		 * connections do not overlap. */
		snprintf(rid, sizeof(rid), "%u", type == ST_ERROR ? handle : handle - 2);
	}
	struct pf_pair *p = pair_find(b, rid);
	bool fresh = !p;
	if (fresh) {
		if (b->n >= PF_PAIRS_MAX)
			return NULL;
		if (!(p = calloc(1, sizeof(*p))))
			return NULL;
		snprintf(p->request_id, sizeof(p->request_id), "%s", rid);
		p->fd = -1;
		p->slot = -1;
		p->deadline_ms =
		    mono_ms() + (s->pair_wait_ms > 0 ? s->pair_wait_ms : SESSION_STREAMS_WAIT_MS);
	} else if ((type == ST_DATA && p->data) || (type == ST_ERROR && p->error)) {
		log_info("streaming: port-forward: a second %s stream for request \"%s\"",
			 type == ST_DATA ? "data" : "error", rid);
		return NULL;
	}
	struct stream_chan *c = session_chan_add(s, type, handle);
	if (!c) {
		if (fresh)
			free(p);
		return NULL;
	}
	c->ud = p;
	if (type == ST_DATA) {
		p->data = c;
		p->port = port;
	} else {
		p->error = c;
		if (!p->port)
			p->port = port;
	}
	if (fresh)
		b->pairs[b->n++] = p;
	return c;
}

static int be_data(struct session *s, struct stream_chan *c, const uint8_t *d, size_t n)
{
	(void)s;
	struct pf_pair *p = c->ud;
	if (c->type != ST_DATA || !p || p->client_eof || p->shut_wr || n == 0)
		return 0;
	uint8_t *grown = realloc(p->buf, p->len + n);
	if (!grown)
		return -ENOMEM;
	memcpy(grown + p->len, d, n);
	p->buf = grown;
	p->len += n;
	return 0;
}

static void be_eof(struct session *s, struct stream_chan *c)
{
	(void)s;
	struct pf_pair *p = c->ud;
	if (c->type == ST_DATA && p)
		p->client_eof = true;
}

static void be_reset(struct session *s, struct stream_chan *c)
{
	struct pf_pair *p = c->ud;
	if (p)
		pair_close(s, p);
}

static bool be_wants_input(struct session *s)
{
	struct pf_be *b = be_of(s);
	for (size_t i = 0; i < b->n; i++)
		if (b->pairs[i]->len >= PF_BUF_MAX)
			return false;
	return true;
}

/* WebSocket: the pair of the i-th port, its channels 2i (data) and 2i+1
 * (error), the first frame on each the port (two bytes, little-endian). */
static int ws_pair_open(struct session *s, size_t i)
{
	struct pf_be *b = be_of(s);
	struct pf_pair *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	snprintf(p->request_id, sizeof(p->request_id), "%zu", i);
	p->port = b->ws_ports[i];
	p->fd = -1;
	p->slot = -1;
	b->pairs[b->n++] = p;
	p->data = session_chan_add(s, ST_DATA, (uint32_t)(2 * i));
	p->error = session_chan_add(s, ST_ERROR, (uint32_t)(2 * i + 1));
	if (!p->data || !p->error)
		return -ENOMEM; /* the pair is freed with the backend */
	p->data->ud = p->error->ud = p;
	uint8_t prefix[2];
	size_t n = ws_portfwd_prefix(p->port, prefix);
	int r = session_chan_send(s, p->data, prefix, n);
	if (r == 0)
		r = session_chan_send(s, p->error, prefix, n);
	return r;
}

static int be_start(struct session *s)
{
	struct pf_be *b = be_of(s);
	b->timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (b->timer < 0)
		return -errno;
	log_info("streaming: port-forward session for pod %.12s%s%s", s->req->id,
		 s->req->netns ? "" : " (host network)", b->ws ? " over WebSocket" : "");
	for (size_t i = 0; b->ws && i < b->n_ws_ports; i++) {
		int r = ws_pair_open(s, i);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The timer: at once when a pair is to connect, else at the first pair's
 * deadline; off without either. */
static void arm_timer(struct pf_be *b)
{
	int64_t first = INT64_MAX;
	bool now = false;
	for (size_t i = 0; i < b->n; i++) {
		const struct pf_pair *p = b->pairs[i];
		if (p->data && p->error)
			now |= !p->tried;
		else if (p->deadline_ms < first)
			first = p->deadline_ms;
	}
	struct itimerspec its = { 0 };
	int flags = 0;
	if (now) {
		its.it_value.tv_nsec = 1;
	} else if (first != INT64_MAX) {
		its.it_value.tv_sec = first / 1000;
		its.it_value.tv_nsec = (first % 1000) * 1000000L;
		flags = TFD_TIMER_ABSTIME;
	}
	if (timerfd_settime(b->timer, flags, &its, NULL) < 0)
		log_warning("streaming: port-forward: arm a timer: %m, ignoring");
}

static int be_poll_fds(struct session *s, struct pollfd *pfd, int max)
{
	struct pf_be *b = be_of(s);
	if (max < 1)
		return 0;
	arm_timer(b);
	int k = 0;
	pfd[k++] = (struct pollfd){ b->timer, POLLIN, 0 };
	for (size_t i = 0; i < b->n; i++) {
		struct pf_pair *p = b->pairs[i];
		p->slot = -1;
		if (p->fd < 0 || k >= max)
			continue;
		short ev = (short)((!p->target_eof && session_chan_room(s, p->data) ? POLLIN : 0) |
				   (p->len && !p->shut_wr ? POLLOUT : 0));
		p->slot = k;
		pfd[k++] = (struct pollfd){ ev ? p->fd : -1, ev, 0 };
	}
	return k;
}

struct pf_connect {
	const char *helper, *netns;
	uint16_t port;
	char why[320];
};

static int do_connect(void *arg)
{
	struct pf_connect *c = arg;
	return portfwd_connect(c->helper, c->netns, c->port, c->why, sizeof(c->why));
}

/* Connect p to its port in the pod; false when it failed (p is gone). */
static bool pair_connect(struct session *s, struct pf_pair *p)
{
	p->tried = true;
	struct pf_connect c = { .helper = s->portfwd_helper,
				.netns = s->req->netns,
				.port = p->port };
	int fd =
	    s->run_privileged ? s->run_privileged(s->priv_ctx, do_connect, &c) : do_connect(&c);
	if (fd < 0) {
		pair_fail(s, p, c.why[0] ? c.why : strerror(-fd));
		return false;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		close(fd);
		pair_fail(s, p, "could not make the connection non-blocking");
		return false;
	}
	p->fd = fd;
	return true;
}

/* Move bytes of p as poll saw (revents); false when p is gone. */
static bool pair_pump(struct session *s, struct pf_pair *p, short revents)
{
	char why[160];
	if ((revents & (POLLOUT | POLLERR)) && p->len && !p->shut_wr) {
		ssize_t k = send(p->fd, p->buf, p->len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (k < 0 && errno != EAGAIN && errno != EINTR) {
			snprintf(why, sizeof(why), "write to the port: %s", strerror(errno));
			pair_fail(s, p, why);
			return false;
		}
		if (k > 0) {
			memmove(p->buf, p->buf + k, p->len - (size_t)k);
			p->len -= (size_t)k;
		}
	}
	size_t room = session_chan_room(s, p->data);
	if ((revents & (POLLIN | POLLHUP | POLLERR)) && !p->target_eof && room) {
		uint8_t buf[CHUNK];
		ssize_t k = recv(p->fd, buf, room < sizeof(buf) ? room : sizeof(buf), MSG_DONTWAIT);
		if (k < 0 && errno != EAGAIN && errno != EINTR) {
			snprintf(why, sizeof(why), "read from the port: %s", strerror(errno));
			pair_fail(s, p, why);
			return false;
		}
		if (k > 0 && session_chan_send(s, p->data, buf, (size_t)k) < 0) {
			pair_fail(s, p, "out of memory");
			return false;
		}
		if (k == 0) {
			/* The connection's end: the client's too (the error
			 * stream's end lets it go). */
			p->target_eof = true;
			(void)session_chan_end(s, p->data);
			if (p->error)
				(void)session_chan_end(s, p->error);
		}
	}
	return true;
}

/* Its other stream did not come in time (the kubelet's words, on the
 * error stream, which then ends; a lone data stream is reset: the client
 * may never end its side, whose slot would stay taken). */
static void pair_timed_out(struct session *s, struct pf_pair *p)
{
	static const char msg[] = "timed out waiting for streams";
	log_info("streaming: port-forward: request \"%s\" %s", p->request_id, msg);
	if (p->error)
		(void)session_chan_send(s, p->error, msg, strlen(msg));
	if (p->data) {
		session_chan_cancel(s, p->data);
		p->data = NULL;
	}
	pair_close(s, p);
}

static int be_on_poll(struct session *s, const struct pollfd *pfd, int n)
{
	struct pf_be *b = be_of(s);
	if (n >= 1 && pfd[0].revents) {
		uint64_t ticks;
		if (read(b->timer, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
			log_warning("streaming: port-forward: read the timer: %m, ignoring");
	}
	int64_t now = mono_ms();
	/* Backwards: a pair that ends leaves the array. */
	for (size_t i = b->n; i-- > 0;) {
		struct pf_pair *p = b->pairs[i];
		if (!p->data || !p->error) {
			if (now >= p->deadline_ms)
				pair_timed_out(s, p);
			continue;
		}
		if (!p->tried && !pair_connect(s, p))
			continue;
		if (p->fd < 0)
			continue;
		short rev = p->slot >= 0 && p->slot < n ? pfd[p->slot].revents : 0;
		if (rev && !pair_pump(s, p, rev))
			continue;
		if (b->ws && p->target_eof) {
			/* No end of one channel in WebSocket: the pair is done
			 * when the port's connection is (the client's bytes
			 * still buffered for it have nowhere to go). */
			pair_close(s, p);
			continue;
		}
		if (p->client_eof && p->len == 0 && !p->shut_wr) {
			shutdown(p->fd, SHUT_WR);
			p->shut_wr = true;
		}
		if (p->target_eof && p->shut_wr)
			pair_close(s, p); /* both ways done */
	}
	return 0;
}

static bool be_done(struct session *s, int *exit_code)
{
	(void)exit_code;
	/* Over SPDY a port-forward ends with its client; over WebSocket
	 * with its last pair, as the kubelet's (it closes the connection). */
	struct pf_be *b = be_of(s);
	return b->ws && b->n == 0;
}

static void be_stop(struct session *s)
{
	struct pf_be *b = be_of(s);
	while (b->n > 0)
		pair_close(s, b->pairs[b->n - 1]);
}

static void be_free(struct session *s)
{
	struct pf_be *b = be_of(s);
	if (!b)
		return;
	be_stop(s);
	if (b->timer >= 0)
		close(b->timer);
	free(b);
	s->be_data = NULL;
}

static const struct backend_ops portforward_backend = {
	.start = be_start,
	.poll_fds = be_poll_fds,
	.on_poll = be_on_poll,
	.open = be_open,
	.reset = be_reset,
	.data = be_data,
	.eof = be_eof,
	.wants_input = be_wants_input,
	.done = be_done,
	.stop = be_stop,
	.free = be_free,
};

int portforward_backend_init(struct session *s)
{
	struct pf_be *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->timer = -1;
	s->be = &portforward_backend;
	s->be_data = b;
	return 0;
}

int portforward_backend_init_ws(struct session *s, const uint16_t *ports, size_t n)
{
	if (n == 0 || n > PF_PAIRS_MAX)
		return -EINVAL;
	int r = portforward_backend_init(s);
	if (r < 0)
		return r;
	struct pf_be *b = be_of(s);
	b->ws = true;
	memcpy(b->ws_ports, ports, n * sizeof(*ports));
	b->n_ws_ports = n;
	return 0;
}
