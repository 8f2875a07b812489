/* The session loop and the SPDY/3.1 transport; see session.h. */
#include "session.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/macro.h"
#include "spdy.h"

#define READ_CHUNK   16384
#define LINGER_MS    5000 /* after our last byte, for the client to close */
#define POLL_FDS_MAX (2 + SESSION_PF_CHANS_MAX / 2)

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- streams ---- */

static const char *const type_names[ST_N] = {
	[ST_ERROR] = "error",   [ST_STDIN] = "stdin",   [ST_STDOUT] = "stdout",
	[ST_STDERR] = "stderr", [ST_RESIZE] = "resize", [ST_DATA] = "data",
};

static bool type_expected(const struct session *s, enum stream_type t)
{
	switch (t) {
	case ST_ERROR:
		return true;
	case ST_STDIN:
		return s->req->stdin;
	case ST_STDOUT:
		return s->req->stdout;
	case ST_STDERR:
		return s->req->stderr;
	case ST_RESIZE:
		return s->req->tty && s->proto >= PROTO_V3;
	default:
		return false;
	}
}

struct stream_chan *session_chan_add(struct session *s, enum stream_type type, uint32_t handle)
{
	if (s->n_chans >= SESSION_PF_CHANS_MAX)
		return NULL;
	if (s->n_chans == s->cap_chans) {
		size_t cap = s->cap_chans ? s->cap_chans * 2 : 4;
		struct stream_chan **grown = realloc(s->chans, cap * sizeof(*grown));
		if (!grown)
			return NULL;
		s->chans = grown;
		s->cap_chans = cap;
	}
	struct stream_chan *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	*c = (struct stream_chan){ .type = type, .handle = handle };
	s->chans[s->n_chans++] = c;
	return c;
}

struct stream_chan *session_chan_open(struct session *s, const char *type, uint32_t handle)
{
	for (int t = 0; t < ST_N; t++) {
		if (!type || t == ST_DATA || strcasecmp(type, type_names[t]) != 0)
			continue;
		if (s->by_type[t] || s->n_chans >= SESSION_CHANS_MAX || s->started)
			return NULL;
		struct stream_chan *c = session_chan_add(s, (enum stream_type)t, handle);
		if (c)
			s->by_type[t] = c;
		return c;
	}
	return NULL;
}

struct stream_chan *session_stream_open(struct session *s, const struct stream_hdrs *h,
					uint32_t handle)
{
	if (s->be && s->be->open)
		return s->be->open(s, h, handle);
	return session_chan_open(s, h->type, handle);
}

struct stream_chan *session_chan_find(struct session *s, uint32_t handle)
{
	for (size_t i = 0; i < s->n_chans; i++)
		if (s->chans[i]->handle == handle && !s->chans[i]->removed)
			return s->chans[i];
	return NULL;
}

void session_chan_remove(struct session *s, struct stream_chan *c)
{
	if (c->removed)
		return;
	(void)session_chan_end(s, c);
	c->removed = true;
}

void session_chan_cancel(struct session *s, struct stream_chan *c)
{
	if (c->removed)
		return;
	if (s->tr->reset && !(c->local_eof && c->remote_eof)) {
		(void)s->tr->reset(s, c);
		c->local_eof = c->remote_eof = true;
	}
	session_chan_remove(s, c);
}

void session_free_chans(struct session *s)
{
	for (size_t i = 0; i < s->n_chans; i++)
		free(s->chans[i]);
	free(s->chans);
	s->chans = NULL;
	s->n_chans = s->cap_chans = 0;
	memset(s->by_type, 0, sizeof(s->by_type));
}

/* Free the removed channels (at the top of the loop: nobody holds them). */
static void sweep_chans(struct session *s)
{
	size_t k = 0;
	for (size_t i = 0; i < s->n_chans; i++) {
		if (s->chans[i]->removed)
			free(s->chans[i]);
		else
			s->chans[k++] = s->chans[i];
	}
	s->n_chans = k;
}

int session_chan_data(struct session *s, struct stream_chan *c, const uint8_t *p, size_t n)
{
	if (c->type != ST_STDIN && c->type != ST_RESIZE && c->type != ST_DATA)
		return s->tr->consumed(s, c, n); /* nothing reads it: dropped */
	int r = s->be->data(s, c, p, n);
	if (r < 0)
		return r;
	return s->tr->consumed(s, c, n);
}

void session_chan_eof(struct session *s, struct stream_chan *c)
{
	c->remote_eof = true;
	s->be->eof(s, c);
}

void session_client_gone(struct session *s)
{
	s->client_gone = true;
}

void session_chan_reset(struct session *s, struct stream_chan *c)
{
	if (!s->be || !s->be->reset) {
		session_client_gone(s);
		return;
	}
	if (c) {
		c->remote_eof = c->local_eof = true; /* the stream is gone */
		s->be->reset(s, c);
	}
}

size_t session_chan_room(struct session *s, struct stream_chan *c)
{
	if (!c || c->local_eof || c->removed)
		return 0;
	const uint8_t *p;
	size_t n;
	s->tr->pending(s, &p, &n);
	if (n >= SESSION_OUT_MAX)
		return 0;
	return s->tr->room(s, c);
}

int session_chan_send(struct session *s, struct stream_chan *c, const void *p, size_t n)
{
	if (!c || c->local_eof || c->removed)
		return 0;
	return s->tr->send(s, c, p, n);
}

int session_chan_end(struct session *s, struct stream_chan *c)
{
	if (c->local_eof)
		return 0;
	c->local_eof = true;
	return s->tr->end(s, c);
}

size_t session_room(struct session *s, enum stream_type t)
{
	return session_chan_room(s, s->by_type[t]);
}

int session_send(struct session *s, enum stream_type t, const void *p, size_t n)
{
	return session_chan_send(s, s->by_type[t], p, n);
}

/* ---- resize messages ---- */

bool session_take_resizes(char *buf, size_t *len, unsigned short *width, unsigned short *height)
{
	size_t start = 0;
	bool got = false;
	for (;;) {
		json_error_t jerr;
		size_t left = *len - start;
		if (left == 0)
			break;
		json_t *j = json_loadb(buf + start, left, JSON_DISABLE_EOF_CHECK, &jerr);
		if (!j)
			break; /* incomplete (or garbage: dropped when the buffer fills) */
		start += jerr.position;
		json_int_t w = json_integer_value(json_object_get(j, "Width"));
		json_int_t h = json_integer_value(json_object_get(j, "Height"));
		json_decref(j);
		if (w > 0 && h > 0 && w <= 65535 && h <= 65535) {
			*width = (unsigned short)w;
			*height = (unsigned short)h;
			got = true;
		}
	}
	memmove(buf, buf + start, *len - start);
	*len -= start;
	return got;
}

/* ---- the status on the error stream ---- */

/* The v4 status (a metav1.Status as JSON), or for older protocols the
 * message alone, and nothing on success. */
static int send_status(struct session *s, int exit_code, const char *failure)
{
	_cleanup_json_ json_t *st = NULL;
	if (!failure && exit_code == 0) {
		if (s->proto < PROTO_V4)
			return 0;
		st = json_pack("{s:{}, s:s}", "metadata", "status", "Success");
	} else if (!failure) {
		char code[16], cmd[256] = "", msg[384];
		snprintf(code, sizeof(code), "%d", exit_code);
		/* As the kubelet's library words it (the command cut short). */
		for (char **a = s->req->cmd; a && *a; a++) {
			size_t l = strlen(cmd);
			snprintf(cmd + l, sizeof(cmd) - l, "%s%s", l ? " " : "", *a);
		}
		snprintf(msg, sizeof(msg),
			 "command terminated with non-zero exit code: error executing command "
			 "[%s], exit code %d",
			 cmd, exit_code);
		if (s->proto < PROTO_V4)
			return session_send(s, ST_ERROR, msg, strlen(msg));
		st = json_pack("{s:{}, s:s, s:s, s:s, s:{s:[{s:s, s:s}]}}", "metadata", "status",
			       "Failure", "message", msg, "reason", "NonZeroExitCode", "details",
			       "causes", "reason", "ExitCode", "message", code);
	} else {
		if (s->proto < PROTO_V4)
			return session_send(s, ST_ERROR, failure, strlen(failure));
		st = json_pack("{s:{}, s:s, s:s, s:s, s:i}", "metadata", "status", "Failure",
			       "message", failure, "reason", "InternalError", "code", 500);
	}
	if (!st)
		return -ENOMEM;
	_cleanup_free_ char *txt = json_dumps(st, JSON_COMPACT);
	if (!txt)
		return -ENOMEM;
	return session_send(s, ST_ERROR, txt, strlen(txt));
}

/* Send the status, end every stream, say goodbye. */
static void finish(struct session *s, int exit_code, const char *failure)
{
	if (s->finished)
		return;
	s->finished = true;
	if (s->by_type[ST_ERROR])
		(void)send_status(s, exit_code, failure);
	for (size_t i = 0; i < s->n_chans; i++)
		(void)session_chan_end(s, s->chans[i]);
	(void)s->tr->close(s, failure ? -EIO : 0);
}

/* ---- the loop ---- */

/* Write what the transport has queued: 1 if something was written, 0 if
 * not, <0 when the connection broke. */
static int flush(struct session *s)
{
	int wrote = 0;
	for (;;) {
		const uint8_t *p;
		size_t n;
		s->tr->pending(s, &p, &n);
		if (n == 0)
			return wrote;
		ssize_t k = send(s->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return errno == EAGAIN ? wrote : -errno;
		s->tr->written(s, (size_t)k);
		wrote = 1;
	}
}

static size_t pending_len(struct session *s)
{
	const uint8_t *p;
	size_t n;
	s->tr->pending(s, &p, &n);
	return n;
}

static bool all_streams_here(const struct session *s)
{
	if (s->be->open)
		return true; /* the backend takes the streams as they come */
	size_t have = 0;
	for (int t = 0; t < ST_N; t++)
		if (s->by_type[t] && type_expected(s, (enum stream_type)t))
			have++;
	return have >= s->expected;
}

static int start_backend(void *arg)
{
	struct session *s = arg;
	return s->be->start(s);
}

static void release(struct session *s)
{
	if (s->be && s->be->free)
		s->be->free(s);
	if (s->tr && s->tr->free)
		s->tr->free(s);
	if (s->fd >= 0)
		close(s->fd);
	session_free_chans(s);
	stream_request_free(s->req);
	void (*on_end)(void *) = s->on_end;
	void *ud = s->on_end_ud;
	free(s);
	if (on_end)
		on_end(ud);
}

void session_run(struct session *s, const uint8_t *extra, size_t n_extra)
{
	if (s->fd < 0) { /* never connected: only released */
		release(s);
		return;
	}
	int fl = fcntl(s->fd, F_GETFL);
	if (fl >= 0)
		fcntl(s->fd, F_SETFL, fl | O_NONBLOCK);
	s->expected = 0;
	for (int t = 0; t < ST_N; t++)
		s->expected += type_expected(s, (enum stream_type)t);
	int64_t streams_until = mono_ms() + SESSION_STREAMS_WAIT_MS;
	int64_t last = mono_ms(), linger_until = 0;
	bool read_eof = false;
	int r = 0;
	if (n_extra && (r = s->tr->input(s, extra, n_extra)) < 0)
		s->client_gone = true;
	while (!s->client_gone) {
		sweep_chans(s);
		if (!s->started && !s->finished && all_streams_here(s)) {
			s->started = true;
			r = s->run_privileged ? s->run_privileged(s->priv_ctx, start_backend, s)
					      : start_backend(s);
			if (r < 0) {
				char msg[160];
				snprintf(msg, sizeof(msg), "%s: %s",
					 s->req->kind == STREAM_KIND_ATTACH
					     ? "could not attach to the container"
					 : s->req->kind == STREAM_KIND_PORTFORWARD
					     ? "could not start the port-forward"
					     : "could not start the command",
					 strerror(-r));
				finish(s, 0, msg);
			}
		}
		int code = 0;
		if (s->started && !s->finished && s->be->done(s, &code))
			finish(s, code, NULL);
		if ((r = flush(s)) < 0)
			break;
		if (r > 0)
			last = mono_ms();
		if (s->finished && pending_len(s) == 0) {
			if (!linger_until) {
				shutdown(s->fd, SHUT_WR);
				linger_until = mono_ms() + LINGER_MS;
			}
			if (read_eof)
				break;
		}
		int64_t now = mono_ms();
		if (!s->started && now >= streams_until) {
			log_warning("streaming: the client did not open its streams in time");
			break;
		}
		if (linger_until && now >= linger_until)
			break;
		if (s->idle_ms > 0 && now - last >= s->idle_ms) {
			log_info("streaming: session idle for %lld ms, ending it",
				 (long long)s->idle_ms);
			break;
		}
		struct pollfd pfd[POLL_FDS_MAX];
		bool want_in = !read_eof && (s->finished || s->be->wants_input(s));
		pfd[0] = (struct pollfd){
			s->fd, (short)((want_in ? POLLIN : 0) | (pending_len(s) ? POLLOUT : 0)), 0
		};
		int nb = 0;
		if (s->started && !s->finished)
			nb = s->be->poll_fds(s, pfd + 1, POLL_FDS_MAX - 1);
		int64_t until = s->started ? INT64_MAX : streams_until;
		if (linger_until && linger_until < until)
			until = linger_until;
		if (s->idle_ms > 0 && last + s->idle_ms < until)
			until = last + s->idle_ms;
		int64_t left = until == INT64_MAX ? 60000 : until - now;
		if (left > 60000)
			left = 60000;
		if (poll(pfd, (nfds_t)(1 + nb), (int)(left < 0 ? 0 : left)) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			uint8_t buf[READ_CHUNK];
			ssize_t k = recv(s->fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (k < 0 && (errno == EAGAIN || errno == EINTR)) {
				/* nothing after all */
			} else if (k <= 0) {
				read_eof = true;
				if (!s->finished)
					s->client_gone = true;
			} else {
				last = mono_ms();
				if (s->finished) {
					/* the client's goodbyes */
					if (s->tr->goodbye && s->tr->goodbye(s, buf, (size_t)k))
						read_eof = true; /* as good as its EOF */
					continue;
				}
				if ((r = s->tr->input(s, buf, (size_t)k)) < 0) {
					log_info("streaming: closing a connection: %s",
						 strerror(-r));
					(void)flush(s);
					s->client_gone = true;
				}
			}
		}
		if (nb > 0 && !s->client_gone && !s->finished) {
			if ((r = s->be->on_poll(s, pfd + 1, nb)) < 0) {
				char msg[160];
				snprintf(msg, sizeof(msg), "the command failed: %s", strerror(-r));
				finish(s, 0, msg);
			}
		}
	}
	if (s->client_gone)
		(void)flush(s); /* what the transport answered last (a close), if it fits */
	if (s->started && !s->finished)
		s->be->stop(s);
	release(s);
}

/* ---- the SPDY/3.1 transport ---- */

static struct spdy *spdy_of(struct session *s)
{
	return s->tr_data;
}

static int on_syn_stream(void *ud, uint32_t sid, const struct spdy_header *h, size_t n_h)
{
	struct session *s = ud;
	struct stream_hdrs sh = { 0 };
	for (size_t i = 0; i < n_h; i++) {
		if (strcasecmp(h[i].name, "streamtype") == 0)
			sh.type = h[i].value;
		else if (strcasecmp(h[i].name, "port") == 0)
			sh.port = h[i].value;
		else if (strcasecmp(h[i].name, "requestid") == 0)
			sh.request_id = h[i].value;
	}
	const char *type = sh.type;
	struct stream_chan *c = session_stream_open(s, &sh, sid);
	if (!c) {
		log_info("streaming: refusing a stream of type \"%.32s\"", type ? type : "");
		return spdy_rst(spdy_of(s), sid, SPDY_RST_REFUSED_STREAM);
	}
	return spdy_reply(spdy_of(s), sid);
}

static int on_data(void *ud, uint32_t sid, const uint8_t *p, size_t n)
{
	struct session *s = ud;
	struct stream_chan *c = session_chan_find(s, sid);
	/* A stream the backend is done with: its data is dropped, the
	 * windows open again. */
	return c ? session_chan_data(s, c, p, n) : spdy_consumed(spdy_of(s), sid, n);
}

static int on_fin(void *ud, uint32_t sid)
{
	struct session *s = ud;
	struct stream_chan *c = session_chan_find(s, sid);
	if (c && !c->remote_eof)
		session_chan_eof(s, c);
	return 0;
}

static int on_rst(void *ud, uint32_t sid, uint32_t status)
{
	(void)status;
	struct session *s = ud;
	session_chan_reset(s, session_chan_find(s, sid));
	return 0;
}

static int on_goaway(void *ud, uint32_t status)
{
	(void)status;
	session_client_gone(ud);
	return 0;
}

static const struct spdy_callbacks spdy_cb = {
	.syn_stream = on_syn_stream,
	.data = on_data,
	.fin = on_fin,
	.rst = on_rst,
	.goaway = on_goaway,
};

static int t_input(struct session *s, const uint8_t *p, size_t n)
{
	return spdy_input(spdy_of(s), p, n);
}

static size_t t_room(struct session *s, const struct stream_chan *c)
{
	return spdy_send_room(spdy_of(s), c->handle);
}

static int t_send(struct session *s, struct stream_chan *c, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n > 0) {
		size_t k = n > SPDY_DATA_MAX ? SPDY_DATA_MAX : n;
		int r = spdy_data(spdy_of(s), c->handle, b, k, false);
		if (r < 0)
			return r;
		b += k;
		n -= k;
	}
	return 0;
}

static int t_end(struct session *s, struct stream_chan *c)
{
	if (!spdy_stream_open(spdy_of(s), c->handle))
		return 0;
	return spdy_data(spdy_of(s), c->handle, NULL, 0, true);
}

static int t_consumed(struct session *s, struct stream_chan *c, size_t n)
{
	return spdy_consumed(spdy_of(s), c->handle, n);
}

static int t_reset(struct session *s, struct stream_chan *c)
{
	if (!spdy_stream_open(spdy_of(s), c->handle))
		return 0;
	return spdy_rst(spdy_of(s), c->handle, SPDY_RST_CANCEL);
}

static void t_pending(struct session *s, const uint8_t **p, size_t *n)
{
	*p = spdy_of(s)->out;
	*n = spdy_of(s)->out_len;
}

static void t_written(struct session *s, size_t n)
{
	spdy_out_consumed(spdy_of(s), n);
}

static int t_close(struct session *s, int error)
{
	return spdy_goaway(spdy_of(s), error ? SPDY_GOAWAY_INTERNAL_ERROR : SPDY_GOAWAY_OK);
}

static void t_free(struct session *s)
{
	if (!s->tr_data)
		return;
	spdy_done(s->tr_data);
	free(s->tr_data);
	s->tr_data = NULL;
}

static const struct transport_ops spdy_transport = {
	.input = t_input,
	.room = t_room,
	.send = t_send,
	.end = t_end,
	.consumed = t_consumed,
	.reset = t_reset,
	.pending = t_pending,
	.written = t_written,
	.close = t_close,
	.free = t_free,
};

int spdy_transport_init(struct session *s)
{
	struct spdy *sp = calloc(1, sizeof(*sp));
	if (!sp)
		return -ENOMEM;
	s->tr = &spdy_transport;
	s->tr_data = sp;
	return spdy_init(sp, &spdy_cb, s);
}
