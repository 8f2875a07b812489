/* The WebSocket transport of a streaming session; see websocket.h. */
#include "websocket.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/macro.h"

#define FRAME_DATA_MAX (32 * 1024) /* bytes of data in one frame we send */

struct ws_tr {
	struct ws_reader rd;
	enum ws_proto proto;
	uint8_t *out; /* out[out_off..out_len) not yet written */
	size_t out_off, out_len, out_cap;
	bool close_sent;
};

static struct ws_tr *tr_of(struct session *s)
{
	return s->tr_data;
}

/* Append a built frame (taken) to the output. */
static int out_take(struct ws_tr *t, uint8_t *frame, size_t n)
{
	_cleanup_free_ uint8_t *f = frame;
	if (t->out_off == t->out_len)
		t->out_off = t->out_len = 0;
	if (t->out_off > 0 && t->out_cap - t->out_len < n) {
		memmove(t->out, t->out + t->out_off, t->out_len - t->out_off);
		t->out_len -= t->out_off;
		t->out_off = 0;
	}
	if (t->out_cap - t->out_len < n) {
		size_t cap = t->out_cap ? t->out_cap : 16384;
		while (cap - t->out_len < n)
			cap *= 2;
		uint8_t *o = realloc(t->out, cap);
		if (!o)
			return -ENOMEM;
		t->out = o;
		t->out_cap = cap;
	}
	memcpy(t->out + t->out_len, f, n);
	t->out_len += n;
	return 0;
}

static int send_close(struct ws_tr *t, uint16_t code)
{
	if (t->close_sent)
		return 0;
	uint8_t *f;
	size_t n;
	int r = ws_close_build(code, NULL, &f, &n);
	if (r < 0)
		return r;
	t->close_sent = true;
	return out_take(t, f, n);
}

static int send_channel(struct ws_tr *t, uint8_t channel, const void *p, size_t n)
{
	uint8_t *f;
	size_t fn;
	int r = ws_channel_frame(t->proto, channel, p, n, &f, &fn);
	if (r < 0)
		return r;
	return out_take(t, f, fn);
}

/* A client's data message: to its channel's stream, if we read that one. */
static int on_data_message(struct session *s, const struct ws_message *m)
{
	struct ws_tr *t = tr_of(s);
	_cleanup_free_ uint8_t *data = NULL;
	size_t n = 0;
	uint8_t ch = 0;
	int r = ws_channel_decode(t->proto, m, WS_STREAM_MESSAGE_MAX, &ch, &data, &n);
	if (r == -ENODATA)
		return 0; /* no channel byte: ignored, as wsstream */
	if (r < 0)
		return r;
	struct stream_chan *c = session_chan_find(s, ch);
	if (!c || n == 0)
		return 0;
	return session_chan_data(s, c, data, n);
}

static int on_message(struct session *s, const struct ws_message *m)
{
	struct ws_tr *t = tr_of(s);
	switch (m->opcode) {
	case WS_OP_PING: {
		if (t->close_sent || t->out_len - t->out_off >= SESSION_OUT_MAX)
			return 0; /* a flood of pings: the latest answered is enough */
		uint8_t *f;
		size_t n;
		int r = ws_frame_build(WS_OP_PONG, m->data, m->len, &f, &n);
		return r < 0 ? r : out_take(t, f, n);
	}
	case WS_OP_PONG:
		return 0;
	case WS_OP_CLOSE: {
		uint16_t code;
		const char *reason;
		size_t rl;
		if (ws_close_parse(m->data, m->len, &code, &reason, &rl) < 0)
			return -EPROTO;
		/* Answered with its code; the client is gone. */
		int r = send_close(t, code == 1005 ? WS_CLOSE_NORMAL : code);
		session_client_gone(s);
		return r;
	}
	default:
		return on_data_message(s, m);
	}
}

static uint16_t close_code_of(int error)
{
	switch (error) {
	case -EMSGSIZE:
		return WS_CLOSE_TOO_BIG;
	case -EINVAL:
		return 1007; /* invalid frame payload data: base64 that is not */
	case -EPROTO:
		return WS_CLOSE_PROTOCOL;
	default:
		return WS_CLOSE_INTERNAL;
	}
}

static int t_input(struct session *s, const uint8_t *p, size_t n)
{
	struct ws_tr *t = tr_of(s);
	while (n > 0 && !s->client_gone) {
		size_t k = ws_reader_room(&t->rd);
		if (k > n)
			k = n;
		int r = ws_reader_feed(&t->rd, p, k);
		p += k;
		n -= k;
		while (r >= 0 && !s->client_gone) {
			struct ws_message m;
			r = ws_reader_next(&t->rd, &m);
			if (r <= 0)
				break;
			r = on_message(s, &m);
		}
		if (r < 0) {
			(void)send_close(t, close_code_of(r));
			return r;
		}
	}
	return 0;
}

static size_t t_room(struct session *s, const struct stream_chan *c)
{
	(void)c;
	return tr_of(s)->close_sent ? 0 : FRAME_DATA_MAX;
}

static int t_send(struct session *s, struct stream_chan *c, const void *p, size_t n)
{
	struct ws_tr *t = tr_of(s);
	const uint8_t *b = p;
	if (t->close_sent)
		return 0;
	while (n > 0) {
		size_t k = n > FRAME_DATA_MAX ? FRAME_DATA_MAX : n;
		int r = send_channel(t, (uint8_t)c->handle, b, k);
		if (r < 0)
			return r;
		b += k;
		n -= k;
	}
	return 0;
}

static int t_end(struct session *s, struct stream_chan *c)
{
	(void)s;
	(void)c;
	return 0; /* channels end with the connection */
}

static int t_consumed(struct session *s, struct stream_chan *c, size_t n)
{
	(void)s;
	(void)c;
	(void)n;
	return 0; /* TCP's flow control: the connection is not read when full */
}

static void t_pending(struct session *s, const uint8_t **p, size_t *n)
{
	struct ws_tr *t = tr_of(s);
	*p = t->out + t->out_off;
	*n = t->out_len - t->out_off;
}

static void t_written(struct session *s, size_t n)
{
	struct ws_tr *t = tr_of(s);
	t->out_off += n;
	if (t->out_off >= t->out_len)
		t->out_off = t->out_len = 0;
}

static int t_close(struct session *s, int error)
{
	return send_close(tr_of(s), error ? WS_CLOSE_INTERNAL : WS_CLOSE_NORMAL);
}

/* After our close: the client's messages are dropped until its close
 * (RFC 6455 7.1.1: then the server closes the connection first). */
static bool t_goodbye(struct session *s, const uint8_t *p, size_t n)
{
	struct ws_tr *t = tr_of(s);
	for (;;) {
		struct ws_message m;
		int r;
		while ((r = ws_reader_next(&t->rd, &m)) > 0)
			if (m.opcode == WS_OP_CLOSE)
				return true;
		if (r < 0)
			return true; /* garbage: nothing more to wait for */
		if (n == 0)
			return false;
		size_t k = ws_reader_room(&t->rd);
		if (k > n)
			k = n;
		if (k == 0 || ws_reader_feed(&t->rd, p, k) < 0)
			return true;
		p += k;
		n -= k;
	}
}

static void t_free(struct session *s)
{
	struct ws_tr *t = tr_of(s);
	if (!t)
		return;
	ws_reader_free(&t->rd);
	free(t->out);
	free(t);
	s->tr_data = NULL;
}

static const struct transport_ops ws_transport = {
	.input = t_input,
	.room = t_room,
	.send = t_send,
	.end = t_end,
	.consumed = t_consumed,
	.pending = t_pending,
	.written = t_written,
	.close = t_close,
	.goodbye = t_goodbye,
	.free = t_free,
};

static const struct {
	const char *type;
	uint8_t channel;
} channels[] = {
	{ "stdin", WS_CH_STDIN }, { "stdout", WS_CH_STDOUT }, { "stderr", WS_CH_STDERR },
	{ "error", WS_CH_ERROR }, { "resize", WS_CH_RESIZE },
};

static bool wanted(const struct stream_request *req, uint8_t channel)
{
	switch (channel) {
	case WS_CH_STDIN:
		return req->stdin;
	case WS_CH_STDOUT:
		return req->stdout;
	case WS_CH_STDERR:
		return req->stderr;
	case WS_CH_RESIZE:
		return req->tty;
	default:
		return true;
	}
}

int ws_transport_init(struct session *s, enum ws_proto p)
{
	struct ws_tr *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->proto = p;
	s->tr = &ws_transport;
	s->tr_data = t;
	int r = ws_reader_init(&t->rd, WS_STREAM_MESSAGE_MAX);
	if (r < 0)
		return r;
	if (s->req->kind == STREAM_KIND_PORTFORWARD)
		return 0; /* the backend opens its channels and says their ports */
	/* v4 sends the status as JSON; the others its message, and have the
	 * resize channel: SPDY's v3. */
	s->proto = ws_proto_is_v4(p) ? PROTO_V4 : PROTO_V3;
	for (size_t i = 0; i < ARRAY_SIZE(channels); i++)
		if (wanted(s->req, channels[i].channel) &&
		    !session_chan_open(s, channels[i].type, channels[i].channel))
			return -EINVAL;
	uint8_t first = s->req->stdout ? WS_CH_STDOUT : s->req->stderr ? WS_CH_STDERR : WS_CH_ERROR;
	return send_channel(t, first, NULL, 0);
}
