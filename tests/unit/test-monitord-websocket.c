/* monitord/stream/websocket.c: the WebSocket transport of a session, fed
 * masked client frames built here and read back through the session's
 * pending/written pair: the channels opened at the handshake and the
 * opening message, stdin in fragments with a ping between them (the pong),
 * messages on channels nobody reads, our data cut into frames, base64 text
 * frames, the client's close answered, our close once, and hostile input
 * (unmasked, oversized, undecodable base64) closing with its code. The real
 * client (python3-websockets) is tests/integration/test_stream_ws.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testutil.h"

#include <errno.h>

#include "monitord/stream/websocket.h"

/* ---- a backend that records what reaches it ---- */

struct rec {
	uint8_t in[256 * 1024];
	size_t n_in;
	char resize[256];
	size_t n_resize;
};

static int rec_data(struct session *s, struct stream_chan *c, const uint8_t *p, size_t n)
{
	struct rec *r = s->be_data;
	if (c->type == ST_RESIZE) {
		assert_true(r->n_resize + n < sizeof(r->resize));
		memcpy(r->resize + r->n_resize, p, n);
		r->n_resize += n;
		return 0;
	}
	assert_int_equal(c->type, ST_STDIN);
	assert_true(r->n_in + n <= sizeof(r->in));
	memcpy(r->in + r->n_in, p, n);
	r->n_in += n;
	return 0;
}

static const struct backend_ops rec_ops = { .data = rec_data };

static struct session *new_session(enum ws_proto p, bool in, bool out, bool err, bool tty,
				   struct rec *r)
{
	struct session *s = calloc(1, sizeof(*s));
	struct stream_request *req = calloc(1, sizeof(*req));
	assert_non_null(s);
	assert_non_null(req);
	*req = (struct stream_request){
		.kind = STREAM_KIND_EXEC, .stdin = in, .stdout = out, .stderr = err, .tty = tty
	};
	memset(r, 0, sizeof(*r));
	s->fd = -1;
	s->req = req;
	s->be = &rec_ops;
	s->be_data = r;
	assert_int_equal(ws_transport_init(s, p), 0);
	return s;
}

static void free_session(struct session *s)
{
	s->tr->free(s);
	session_free_chans(s);
	stream_request_free(s->req);
	free(s);
}

/* ---- client frames (masked) ---- */

static size_t cframe(uint8_t *buf, bool fin, uint8_t op, const void *data, size_t n)
{
	static const uint8_t mask[4] = { 0x37, 0xfa, 0x21, 0x3d };
	size_t h = 0;
	buf[h++] = (uint8_t)((fin ? 0x80 : 0) | op);
	if (n < 126) {
		buf[h++] = (uint8_t)(0x80 | n);
	} else if (n <= 0xffff) {
		buf[h++] = 0x80 | 126;
		buf[h++] = (uint8_t)(n >> 8);
		buf[h++] = (uint8_t)n;
	} else {
		buf[h++] = 0x80 | 127;
		for (int i = 0; i < 8; i++)
			buf[h++] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
	}
	memcpy(buf + h, mask, 4);
	h += 4;
	const uint8_t *d = data;
	for (size_t i = 0; i < n; i++)
		buf[h + i] = d[i] ^ mask[i & 3];
	return h + n;
}

/* ---- server frames, taken from the output ---- */

struct sframe {
	bool fin;
	uint8_t op;
	uint8_t data[40 * 1024];
	size_t n;
};

/* The next whole frame of the output (consumed): true, or false if none. */
static bool next_out(struct session *s, struct sframe *f)
{
	const uint8_t *p;
	size_t n;
	s->tr->pending(s, &p, &n);
	if (n == 0)
		return false;
	assert_true(n >= 2);
	assert_int_equal(p[1] & 0x80, 0); /* never masked */
	size_t h = 2, len = p[1] & 0x7f;
	if (len == 126) {
		len = (size_t)p[2] << 8 | p[3];
		h = 4;
	} else if (len == 127) {
		len = 0;
		for (int i = 0; i < 8; i++)
			len = len << 8 | p[2 + i];
		h = 10;
	}
	assert_true(n >= h + len);
	assert_true(len <= sizeof(f->data));
	f->fin = (p[0] & 0x80) != 0;
	f->op = p[0] & 0x0f;
	memcpy(f->data, p + h, len);
	f->n = len;
	s->tr->written(s, h + len);
	return true;
}

static uint16_t close_code(const struct sframe *f)
{
	assert_int_equal(f->op, WS_OP_CLOSE);
	assert_true(f->n >= 2);
	return (uint16_t)(f->data[0] << 8 | f->data[1]);
}

static void feed_bytewise(struct session *s, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		assert_int_equal(s->tr->input(s, p + i, 1), 0);
}

static void test_open_stdin_ping_and_data(void **state)
{
	(void)state;
	static struct rec r;
	static struct sframe f;
	struct session *s = new_session(WS_PROTO_V4, true, true, false, false, &r);
	/* stdin, stdout, error: open at once; no resize without a tty */
	assert_int_equal(s->proto, PROTO_V4);
	assert_int_equal(s->n_chans, 3);
	assert_non_null(s->by_type[ST_STDIN]);
	assert_non_null(s->by_type[ST_STDOUT]);
	assert_non_null(s->by_type[ST_ERROR]);
	assert_null(s->by_type[ST_RESIZE]);
	assert_int_equal(s->by_type[ST_ERROR]->handle, WS_CH_ERROR);
	/* the opening message: empty, on stdout */
	assert_true(next_out(s, &f));
	assert_true(f.fin);
	assert_int_equal(f.op, WS_OP_BINARY);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.data[0], WS_CH_STDOUT);
	assert_false(next_out(s, &f));

	/* stdin in two fragments, a ping between them, fed byte by byte */
	uint8_t buf[256];
	size_t n = cframe(buf, false, WS_OP_BINARY, "\0hel", 4);
	n += cframe(buf + n, true, WS_OP_PING, "p1", 2);
	n += cframe(buf + n, true, WS_OP_CONT, "lo", 2);
	feed_bytewise(s, buf, n);
	assert_int_equal(r.n_in, 5);
	assert_memory_equal(r.in, "hello", 5);
	assert_true(next_out(s, &f));
	assert_int_equal(f.op, WS_OP_PONG);
	assert_int_equal(f.n, 2);
	assert_memory_equal(f.data, "p1", 2);

	/* ignored: channels nobody reads (stdout, 9), an empty message, a
	 * pong; a text message on stdin counts as binary, as wsstream */
	n = cframe(buf, true, WS_OP_BINARY, "\1out", 4);
	n += cframe(buf + n, true, WS_OP_BINARY, "\x09x", 2);
	n += cframe(buf + n, true, WS_OP_BINARY, "", 0);
	n += cframe(buf + n, true, WS_OP_PONG, "", 0);
	n += cframe(buf + n, true, WS_OP_TEXT, "\0!", 2);
	assert_int_equal(s->tr->input(s, buf, n), 0);
	assert_int_equal(r.n_in, 6);
	assert_memory_equal(r.in, "hello!", 6);
	assert_false(next_out(s, &f));

	/* a big stdin message in one frame, in one read */
	static uint8_t big[100 * 1024 + 1], wire[sizeof(big) + 16];
	big[0] = WS_CH_STDIN;
	for (size_t i = 1; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7);
	n = cframe(wire, true, WS_OP_BINARY, big, sizeof(big));
	assert_int_equal(s->tr->input(s, wire, n), 0);
	assert_int_equal(r.n_in, 6 + sizeof(big) - 1);
	assert_memory_equal(r.in + 6, big + 1, sizeof(big) - 1);

	/* our data: cut into frames of at most 32 KiB, each with its channel */
	assert_true(s->tr->room(s, s->by_type[ST_STDOUT]) > 0);
	assert_int_equal(s->tr->send(s, s->by_type[ST_STDOUT], big + 1, 70000), 0);
	size_t got = 0;
	while (next_out(s, &f)) {
		assert_int_equal(f.op, WS_OP_BINARY);
		assert_int_equal(f.data[0], WS_CH_STDOUT);
		assert_true(f.n - 1 <= 32 * 1024);
		assert_memory_equal(f.data + 1, big + 1 + got, f.n - 1);
		got += f.n - 1;
	}
	assert_int_equal(got, 70000);

	/* our close: once, 1000; nothing more after it */
	assert_int_equal(s->tr->close(s, 0), 0);
	assert_int_equal(s->tr->close(s, -EIO), 0);
	assert_int_equal(s->tr->room(s, s->by_type[ST_STDOUT]), 0);
	assert_int_equal(s->tr->send(s, s->by_type[ST_STDOUT], "x", 1), 0);
	assert_true(next_out(s, &f));
	assert_int_equal(close_code(&f), WS_CLOSE_NORMAL);
	assert_false(next_out(s, &f));
	free_session(s);
}

static void test_client_close_and_resize(void **state)
{
	(void)state;
	static struct rec r;
	static struct sframe f;
	/* channel.k8s.io with a tty: v3's semantics, resize read */
	struct session *s = new_session(WS_PROTO_CHANNEL, true, true, false, true, &r);
	assert_int_equal(s->proto, PROTO_V3);
	assert_non_null(s->by_type[ST_RESIZE]);
	assert_int_equal(s->by_type[ST_RESIZE]->handle, WS_CH_RESIZE);
	assert_true(next_out(s, &f));
	uint8_t buf[256];
	const char resize[] = "\4{\"Width\":100,\"Height\":40}";
	size_t n = cframe(buf, true, WS_OP_BINARY, resize, sizeof(resize) - 1);
	assert_int_equal(s->tr->input(s, buf, n), 0);
	assert_int_equal(r.n_resize, sizeof(resize) - 2);
	assert_memory_equal(r.resize, resize + 1, r.n_resize);

	/* the client's close (1001): answered with its code, the client gone,
	 * and what follows it not read */
	n = cframe(buf, true, WS_OP_CLOSE,
		   "\x03\xe9"
		   "bye",
		   5);
	n += cframe(buf + n, true, WS_OP_BINARY, "\0late", 5);
	assert_int_equal(s->tr->input(s, buf, n), 0);
	assert_true(s->client_gone);
	assert_int_equal(r.n_in, 0);
	assert_true(next_out(s, &f));
	assert_int_equal(close_code(&f), 1001);
	assert_int_equal(s->tr->close(s, 0), 0); /* no second close */
	assert_false(next_out(s, &f));
	free_session(s);

	/* an empty close: answered 1000 */
	s = new_session(WS_PROTO_V4, false, true, false, false, &r);
	assert_true(next_out(s, &f));
	n = cframe(buf, true, WS_OP_CLOSE, "", 0);
	assert_int_equal(s->tr->input(s, buf, n), 0);
	assert_true(next_out(s, &f));
	assert_int_equal(close_code(&f), WS_CLOSE_NORMAL);
	free_session(s);
}

static void test_base64(void **state)
{
	(void)state;
	static struct rec r;
	static struct sframe f;
	/* stderr only: the opening message on channel 2, as text */
	struct session *s = new_session(WS_PROTO_V4_BASE64, true, false, true, false, &r);
	assert_true(next_out(s, &f));
	assert_int_equal(f.op, WS_OP_TEXT);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.data[0], '2');
	assert_int_equal(s->tr->send(s, s->by_type[ST_STDERR], "hello", 5), 0);
	assert_true(next_out(s, &f));
	assert_int_equal(f.op, WS_OP_TEXT);
	assert_int_equal(f.n, 9);
	assert_memory_equal(f.data, "2aGVsbG8=", 9);
	uint8_t buf[64];
	size_t n = cframe(buf, true, WS_OP_TEXT, "0aGk=", 5);
	assert_int_equal(s->tr->input(s, buf, n), 0);
	assert_int_equal(r.n_in, 2);
	assert_memory_equal(r.in, "hi", 2);
	/* not base64: closed with 1007 */
	n = cframe(buf, true, WS_OP_TEXT, "0a!k=", 5);
	assert_int_equal(s->tr->input(s, buf, n), -EINVAL);
	assert_true(next_out(s, &f));
	assert_int_equal(close_code(&f), 1007);
	free_session(s);
}

static void test_hostile(void **state)
{
	(void)state;
	static struct rec r;
	static struct sframe f;
	struct {
		const uint8_t *bytes;
		size_t n;
		int err;
		uint16_t code;
	} cases[] = {
		/* not masked */
		{ (const uint8_t *)"\x82\x02\x00x", 4, -EPROTO, WS_CLOSE_PROTOCOL },
		/* a continuation without a message */
		{ (const uint8_t *)"\x80\x80mask", 6, -EPROTO, WS_CLOSE_PROTOCOL },
		/* a fragmented ping */
		{ (const uint8_t *)"\x09\x80mask", 6, -EPROTO, WS_CLOSE_PROTOCOL },
		/* RSV bits (no extension was agreed) */
		{ (const uint8_t *)"\xc2\x80mask", 6, -EPROTO, WS_CLOSE_PROTOCOL },
		/* 1 MiB announced: past the bound before any of it comes */
		{ (const uint8_t *)"\x82\xff\0\0\0\0\0\x10\0\0mask", 14, -EMSGSIZE,
		  WS_CLOSE_TOO_BIG },
		/* a close with a code no endpoint may send */
		{ (const uint8_t *)"\x88\x82mask\x03\xed", 8, -EPROTO, WS_CLOSE_PROTOCOL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct session *s = new_session(WS_PROTO_V4, true, true, false, false, &r);
		assert_true(next_out(s, &f));
		assert_int_equal(s->tr->input(s, cases[i].bytes, cases[i].n), cases[i].err);
		assert_true(next_out(s, &f));
		assert_int_equal(close_code(&f), cases[i].code);
		assert_false(next_out(s, &f));
		free_session(s);
	}

	/* a message growing past the bound in fragments */
	struct session *s = new_session(WS_PROTO_V4, true, true, false, false, &r);
	assert_true(next_out(s, &f));
	static uint8_t part[64 * 1024 + 1], wire[sizeof(part) + 16];
	int e = 0;
	for (int i = 0; i < 3 && e == 0; i++) {
		size_t n = cframe(wire, false, i ? WS_OP_CONT : WS_OP_BINARY, part, sizeof(part));
		e = s->tr->input(s, wire, n);
	}
	assert_int_equal(e, -EMSGSIZE);
	assert_true(next_out(s, &f));
	assert_int_equal(close_code(&f), WS_CLOSE_TOO_BIG);
	assert_int_equal(r.n_in, 0);
	free_session(s);

	/* a ping flood past the output bound: the pongs stop, the output
	 * stays bounded */
	s = new_session(WS_PROTO_V4, true, true, false, false, &r);
	uint8_t ping[WS_CONTROL_MAX + 8], payload[WS_CONTROL_MAX] = { 0 };
	size_t pn = cframe(ping, true, WS_OP_PING, payload, sizeof(payload));
	for (size_t i = 0; i < 2 * SESSION_OUT_MAX / WS_CONTROL_MAX; i++)
		assert_int_equal(s->tr->input(s, ping, pn), 0);
	const uint8_t *p;
	size_t n;
	s->tr->pending(s, &p, &n);
	assert_true(n <= SESSION_OUT_MAX + WS_CONTROL_MAX + 4);
	free_session(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_stdin_ping_and_data),
		cmocka_unit_test(test_client_close_and_resize),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_hostile),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
