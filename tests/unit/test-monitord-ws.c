/* monitord/ws.h: frames checked against python3-websockets' encoding
 * (ws-vectors.h), reassembly in every chunking, hostile frames, the accept
 * key, the Kubernetes channel protocols. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "monitord/ws.h"
#include "tests/unit/ws-vectors.h"

static uint8_t pattern_byte(size_t i)
{
	return (uint8_t)((i * 7 + 3) & 0xff);
}

/* The whole frame of a vector, payload included (masked for a client's),
 * malloc'd. */
static uint8_t *vector_frame(const struct ws_vector *v, bool masked, size_t *len)
{
	size_t n = v->pattern ? v->frame_len + v->payload_len : v->frame_len;
	uint8_t *f = malloc(n + 1);
	assert_non_null(f);
	memcpy(f, v->frame, v->frame_len);
	if (v->pattern) {
		const uint8_t *mask = v->frame + v->frame_len - 4;
		for (size_t i = 0; i < v->payload_len; i++)
			f[v->frame_len + i] = pattern_byte(i) ^ (masked ? mask[i & 3] : 0);
	}
	*len = n;
	return f;
}

static void check_payload(const struct ws_vector *v, const uint8_t *p, size_t n)
{
	assert_int_equal(n, v->payload_len);
	if (!v->pattern) {
		assert_memory_equal(p, v->payload, n);
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (p[i] != pattern_byte(i))
			fail_msg("%s: byte %zu differs", v->name, i);
}

static void test_parse_client_frames(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(ws_client_vectors); i++) {
		const struct ws_vector *v = &ws_client_vectors[i];
		size_t n;
		uint8_t *f = vector_frame(v, true, &n);
		struct ws_frame fr;
		/* Every strict prefix (a sample of them for the big ones) waits. */
		for (size_t k = 0; k < n; k += v->pattern ? 997 : 1) {
			uint8_t *copy = malloc(n);
			memcpy(copy, f, n);
			if (ws_frame_parse(copy, k, 1 << 20, &fr) != 0)
				fail_msg("%s: %zu of %zu bytes did not wait", v->name, k, n);
			free(copy);
		}
		assert_int_equal(ws_frame_parse(f, n, 1 << 20, &fr), 1);
		assert_int_equal(fr.opcode, v->opcode);
		assert_int_equal(fr.fin, v->fin);
		assert_int_equal(fr.header_len + fr.payload_len, n);
		check_payload(v, f + fr.header_len, fr.payload_len);
		/* One byte under the bound: refused from the header on. */
		if (v->payload_len > 0) {
			f = realloc(f, n);
			memcpy(f, v->frame, fr.header_len);
			assert_int_equal(
			    ws_frame_parse(f, fr.header_len - 4, v->payload_len - 1, &fr),
			    -EMSGSIZE);
		}
		free(f);
	}
}

static void test_build_server_frames(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(ws_server_vectors); i++) {
		const struct ws_vector *v = &ws_server_vectors[i];
		size_t n;
		uint8_t *want = vector_frame(v, false, &n);
		uint8_t *payload = want + (v->pattern ? v->frame_len : n - v->payload_len);
		uint8_t *got = NULL;
		size_t got_len = 0;
		assert_int_equal(ws_frame_build(v->opcode, payload, v->payload_len, &got, &got_len),
				 0);
		assert_int_equal(got_len, n);
		assert_memory_equal(got, want, n);
		free(got);
		free(want);
	}
	/* The close frame from its code and reason, as websockets wrote it. */
	const struct ws_vector *c = &ws_server_vectors[ARRAY_SIZE(ws_server_vectors) - 1];
	uint8_t *got = NULL;
	size_t got_len = 0;
	assert_int_equal(ws_close_build(WS_CLOSE_PROTOCOL, "protocol error", &got, &got_len), 0);
	assert_int_equal(got_len, c->frame_len);
	assert_memory_equal(got, c->frame, got_len);
	free(got);
	/* A control frame holds 125 bytes at most; a reason is cut to fit. */
	char big[300];
	memset(big, 'r', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(ws_frame_build(WS_OP_PING, big, 126, &got, &got_len), -EINVAL);
	assert_int_equal(ws_frame_build(WS_OP_CONT, "x", 1, &got, &got_len), -EINVAL);
	assert_int_equal(ws_frame_build(3, "x", 1, &got, &got_len), -EINVAL);
	assert_int_equal(ws_close_build(WS_CLOSE_NORMAL, big, &got, &got_len), 0);
	assert_int_equal(got_len, 2 + 125);
	free(got);
}

/* All client vectors through a reader, fed in chunks of `chunk` bytes. */
static void read_all(size_t chunk)
{
	struct ws_reader r;
	assert_int_equal(ws_reader_init(&r, 65536), 0);
	size_t total = 0;
	uint8_t *all = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(ws_client_vectors); i++) {
		size_t n;
		uint8_t *f = vector_frame(&ws_client_vectors[i], true, &n);
		all = realloc(all, total + n);
		memcpy(all + total, f, n);
		total += n;
		free(f);
	}
	/* What comes out: the ping before the message it interrupts. */
	static const struct {
		uint8_t op;
		int vector; /* the payload's vector; -1: "Hello" */
	} want[] = {
		{ WS_OP_TEXT, 0 },   { WS_OP_BINARY, 1 }, { WS_OP_BINARY, 2 }, { WS_OP_BINARY, 3 },
		{ WS_OP_BINARY, 4 }, { WS_OP_BINARY, 5 }, { WS_OP_PING, 7 },   { WS_OP_TEXT, -1 },
		{ WS_OP_PONG, 9 },   { WS_OP_CLOSE, 10 }, { WS_OP_CLOSE, 11 },
	};
	size_t got = 0, off = 0;
	while (off < total || got < ARRAY_SIZE(want)) {
		size_t k = total - off < chunk ? total - off : chunk;
		if (k > ws_reader_room(&r))
			k = ws_reader_room(&r);
		assert_int_equal(ws_reader_feed(&r, all + off, k), 0);
		off += k;
		struct ws_message m;
		int e;
		while ((e = ws_reader_next(&r, &m)) == 1) {
			assert_true(got < ARRAY_SIZE(want));
			assert_int_equal(m.opcode, want[got].op);
			if (want[got].vector < 0) {
				assert_int_equal(m.len, 5);
				assert_memory_equal(m.data, "Hello", 5);
			} else {
				check_payload(&ws_client_vectors[want[got].vector], m.data, m.len);
			}
			got++;
		}
		assert_int_equal(e, 0);
		assert_true(k > 0 || got == ARRAY_SIZE(want));
	}
	assert_int_equal(got, ARRAY_SIZE(want));
	uint16_t code;
	const char *reason;
	size_t rl;
	const struct ws_vector *c = &ws_client_vectors[10];
	assert_int_equal(ws_close_parse(c->payload, c->payload_len, &code, &reason, &rl), 0);
	assert_int_equal(code, 1000);
	assert_int_equal(rl, 3);
	assert_memory_equal(reason, "bye", 3);
	assert_int_equal(ws_close_parse(NULL, 0, &code, &reason, &rl), 0);
	assert_int_equal(code, 1005);
	assert_int_equal(ws_close_parse((const uint8_t *)"\x03", 1, &code, &reason, &rl), -EPROTO);
	assert_int_equal(ws_close_parse((const uint8_t *)"\x03\xed", 2, &code, &reason, &rl),
			 -EPROTO); /* 1005 is never sent */
	free(all);
	ws_reader_free(&r);
}

static void test_reader_chunks(void **state)
{
	(void)state;
	static const size_t chunks[] = { 1, 3, 7, 128, 4096, 1 << 20 };
	for (size_t i = 0; i < ARRAY_SIZE(chunks); i++)
		read_all(chunks[i]);
}

/* A masked frame (zero mask) of op/fin with payload, into out: its length. */
static size_t frame(uint8_t *out, uint8_t b0, const char *payload)
{
	size_t n = strlen(payload);
	out[0] = b0;
	out[1] = (uint8_t)(0x80 | n);
	memset(out + 2, 0, 4);
	memcpy(out + 6, payload, n);
	return 6 + n;
}

static int reader_result(const uint8_t *in, size_t n, size_t max)
{
	struct ws_reader r;
	assert_int_equal(ws_reader_init(&r, max), 0);
	struct ws_message m;
	int e = 0;
	for (size_t off = 0; off < n && e == 0;) {
		size_t k = n - off < ws_reader_room(&r) ? n - off : ws_reader_room(&r);
		assert_int_equal(ws_reader_feed(&r, in + off, k), 0);
		off += k;
		while ((e = ws_reader_next(&r, &m)) == 1)
			;
	}
	/* Errors stick. */
	if (e < 0)
		assert_int_equal(ws_reader_next(&r, &m), e);
	ws_reader_free(&r);
	return e;
}

static void test_hostile(void **state)
{
	(void)state;
	uint8_t b[256];
	struct ws_frame f;
	/* Unmasked (a server's frame sent by a client). */
	memcpy(b, "\x82\x01x", 3);
	assert_int_equal(ws_frame_parse(b, 3, 100, &f), -EPROTO);
	/* RSV bits (no extension was negotiated), reserved opcodes. */
	frame(b, 0xc2, "x");
	assert_int_equal(ws_frame_parse(b, 7, 100, &f), -EPROTO);
	frame(b, 0x83, "x");
	assert_int_equal(ws_frame_parse(b, 7, 100, &f), -EPROTO);
	frame(b, 0x8b, "x");
	assert_int_equal(ws_frame_parse(b, 7, 100, &f), -EPROTO);
	/* A fragmented ping; a ping of 126 bytes. */
	frame(b, 0x09, "x");
	assert_int_equal(ws_frame_parse(b, 7, 100, &f), -EPROTO);
	memcpy(b, "\x89\xfe\x00\x7e", 4);
	assert_int_equal(ws_frame_parse(b, 4, 1000, &f), -EPROTO);
	/* A 64-bit length with its top bit set; one past the bound, known
	 * from the header alone. */
	memcpy(b, "\x82\xff\x80\x00\x00\x00\x00\x00\x00\x01", 10);
	assert_int_equal(ws_frame_parse(b, 10, SIZE_MAX, &f), -EPROTO);
	memcpy(b, "\x82\xff\x00\x00\x00\x01\x00\x00\x00\x00", 10);
	assert_int_equal(ws_frame_parse(b, 10, 1 << 30, &f), -EMSGSIZE);
	/* Messages: a continuation with nothing open, a new message inside a
	 * fragmented one, fragments past the bound together. */
	size_t n = frame(b, 0x80, "lo");
	assert_int_equal(reader_result(b, n, 100), -EPROTO);
	n = frame(b, 0x01, "He");
	n += frame(b + n, 0x81, "llo");
	assert_int_equal(reader_result(b, n, 100), -EPROTO);
	n = frame(b, 0x02, "12345");
	n += frame(b + n, 0x00, "12345");
	assert_int_equal(reader_result(b, n, 10), 0);
	n += frame(b + n, 0x80, "1");
	assert_int_equal(reader_result(b, n, 10), -EMSGSIZE);
	/* The reader takes one frame's worth of bytes at most. */
	struct ws_reader r;
	assert_int_equal(ws_reader_init(&r, 10), 0);
	assert_int_equal(ws_reader_room(&r), 10 + WS_HEADER_MAX);
	assert_int_equal(ws_reader_feed(&r, b, 10 + WS_HEADER_MAX + 1), -ENOBUFS);
	ws_reader_free(&r);
	assert_int_equal(ws_reader_init(&r, 0), -EINVAL);
}

static void test_accept_key(void **state)
{
	(void)state;
	char out[WS_ACCEPT_LEN + 1];
	for (size_t i = 0; i < ARRAY_SIZE(ws_accept_vectors); i++) {
		assert_int_equal(ws_accept_key(ws_accept_vectors[i][0], out), 0);
		assert_string_equal(out, ws_accept_vectors[i][1]);
	}
	/* RFC 6455 1.3's example. */
	assert_int_equal(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out), 0);
	assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	static const char *const bad[] = { NULL,
					   "",
					   "dGhlIHNhbXBsZSBub25jZQ=",
					   "dGhlIHNhbXBsZSBub25jZQ==x",
					   "dGhlIHNhbXBsZSBub25jZQ!=",
					   "dGhlIHNhbXBsZSBub25jZQab" /* 18 bytes */ };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(ws_accept_key(bad[i], out), -EINVAL);
}

static void test_negotiate(void **state)
{
	(void)state;
	enum ws_proto p = WS_PROTO_V4;
	assert_int_equal(ws_proto_negotiate(NULL, &p), 0);
	assert_int_equal(p, WS_PROTO_NONE);
	p = WS_PROTO_V4;
	assert_int_equal(ws_proto_negotiate(" , ", &p), 0);
	assert_int_equal(p, WS_PROTO_NONE);
	assert_null(ws_proto_name(WS_PROTO_NONE));
	assert_int_equal(ws_proto_negotiate("v4.channel.k8s.io", &p), 0);
	assert_int_equal(p, WS_PROTO_V4);
	/* The client's order decides. */
	assert_int_equal(ws_proto_negotiate("v5.channel.k8s.io, base64.channel.k8s.io,"
					    "v4.channel.k8s.io",
					    &p),
			 0);
	assert_int_equal(p, WS_PROTO_BASE64);
	assert_int_equal(ws_proto_negotiate("v4.base64.channel.k8s.io", &p), 0);
	assert_string_equal(ws_proto_name(p), "v4.base64.channel.k8s.io");
	assert_true(ws_proto_is_base64(p) && ws_proto_is_v4(p));
	assert_int_equal(ws_proto_negotiate("channel.k8s.io", &p), 0);
	assert_true(p == WS_PROTO_CHANNEL && !ws_proto_is_base64(p) && !ws_proto_is_v4(p));
	p = WS_PROTO_V4;
	assert_int_equal(ws_proto_negotiate("v5.channel.k8s.io", &p), -EPROTONOSUPPORT);
	assert_int_equal(ws_proto_negotiate("channel.k8s.io.evil", &p), -EPROTONOSUPPORT);
	assert_int_equal(ws_proto_negotiate("xchannel.k8s.io", &p), -EPROTONOSUPPORT);
	assert_int_equal(p, WS_PROTO_V4); /* untouched on failure */
}

static void test_channels(void **state)
{
	(void)state;
	uint8_t *f = NULL, *d = NULL, ch = 99;
	size_t n = 0;
	/* Binary: the channel byte, then the bytes. */
	assert_int_equal(ws_channel_frame(WS_PROTO_V4, WS_CH_STDOUT, "hi", 2, &f, &n), 0);
	assert_int_equal(n, 5);
	assert_memory_equal(f, "\x82\x03\x01hi", 5);
	free(f);
	/* base64: text, the channel as a digit; as websockets' vector. */
	const struct ws_vector *v = &ws_server_vectors[0];
	assert_int_equal(ws_channel_frame(WS_PROTO_BASE64, WS_CH_STDOUT, "hello\n", 6, &f, &n), 0);
	assert_int_equal(n, v->frame_len);
	assert_memory_equal(f, v->frame, n);
	free(f);
	assert_int_equal(ws_channel_frame(WS_PROTO_BASE64, 10, "x", 1, &f, &n), -EINVAL);
	assert_int_equal(ws_channel_frame(WS_PROTO_V4_BASE64, WS_CH_ERROR, NULL, 0, &f, &n), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(f,
			    "\x81\x01"
			    "3",
			    3);
	free(f);

	struct ws_message m = { WS_OP_TEXT, (const uint8_t *)"0aGVsbG8K", 9 };
	assert_int_equal(ws_channel_decode(WS_PROTO_V4_BASE64, &m, 100, &ch, &d, &n), 0);
	assert_int_equal(ch, WS_CH_STDIN);
	assert_int_equal(n, 6);
	assert_string_equal((char *)d, "hello\n");
	free(d);
	assert_int_equal(ws_channel_decode(WS_PROTO_V4_BASE64, &m, 5, &ch, &d, &n), -EMSGSIZE);
	assert_int_equal(ws_channel_decode(WS_PROTO_V4_BASE64, &m, 6, &ch, &d, &n), 0);
	free(d);
	m = (struct ws_message){ WS_OP_BINARY, (const uint8_t *)"\x04{\"Width\":80}", 13 };
	assert_int_equal(ws_channel_decode(WS_PROTO_CHANNEL, &m, 100, &ch, &d, &n), 0);
	assert_int_equal(ch, WS_CH_RESIZE);
	assert_string_equal((char *)d, "{\"Width\":80}");
	free(d);
	assert_int_equal(ws_channel_decode(WS_PROTO_CHANNEL, &m, 11, &ch, &d, &n), -EMSGSIZE);
	m.len = 0;
	assert_int_equal(ws_channel_decode(WS_PROTO_NONE, &m, 100, &ch, &d, &n), -ENODATA);
	static const char *const bad64[] = { ":aGk=", "0aGk", "0aG!=", "0aGk=\x00" };
	for (size_t i = 0; i < ARRAY_SIZE(bad64); i++) {
		m = (struct ws_message){ WS_OP_TEXT, (const uint8_t *)bad64[i],
					 strlen(bad64[i]) + (i == 3) };
		d = (uint8_t *)0x1;
		if (ws_channel_decode(WS_PROTO_BASE64, &m, 100, &ch, &d, &n) != -EINVAL)
			fail_msg("\"%s\" accepted", bad64[i]);
		assert_ptr_equal(d, (uint8_t *)0x1);
	}
	m = (struct ws_message){ WS_OP_PING, (const uint8_t *)"0", 1 };
	assert_int_equal(ws_channel_decode(WS_PROTO_BASE64, &m, 100, &ch, &d, &n), -EINVAL);
}

static void test_portfwd(void **state)
{
	(void)state;
	uint8_t p[2];
	assert_int_equal(ws_portfwd_prefix(8080, p), 2);
	assert_memory_equal(p, "\x90\x1f", 2);
	uint16_t port = 0;
	assert_int_equal(ws_port_parse("8080", &port), 0);
	assert_int_equal(port, 8080);
	assert_int_equal(ws_port_parse("65535", &port), 0);
	static const char *const bad[] = { NULL,  "",    "0",      "65536", "-1",
					   "+80", "80a", "123456", " 80" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(ws_port_parse(bad[i], &port), -EINVAL);

	/* ?port= values: one port or several, appended, bounded. */
	uint16_t ports[3];
	size_t n = 0;
	assert_int_equal(ws_ports_parse("80", ports, 3, &n), 0);
	assert_int_equal(ws_ports_parse("8080,443", ports, 3, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(ports[0], 80);
	assert_int_equal(ports[1], 8080);
	assert_int_equal(ports[2], 443);
	assert_int_equal(ws_ports_parse("1", ports, 3, &n), -E2BIG);
	static const char *const badlists[] = { NULL,     "",     ",",     "80,",    ",80",
						"80,,81", "80,0", "80;81", "80, 81", "1234567" };
	for (size_t i = 0; i < ARRAY_SIZE(badlists); i++) {
		n = 0;
		if (ws_ports_parse(badlists[i], ports, 3, &n) != -EINVAL)
			fail_msg("\"%s\" accepted", badlists[i] ? badlists[i] : "(null)");
	}

	/* Port-forward speaks v4 and v4.base64 (or none), not the others. */
	enum ws_proto p4;
	assert_int_equal(ws_proto_negotiate_among(NULL, WS_PROTOS_PORTFWD, &p4), 0);
	assert_int_equal(p4, WS_PROTO_NONE);
	assert_int_equal(ws_proto_negotiate_among("channel.k8s.io, v4.base64.channel.k8s.io",
						  WS_PROTOS_PORTFWD, &p4),
			 0);
	assert_int_equal(p4, WS_PROTO_V4_BASE64);
	assert_int_equal(ws_proto_negotiate_among("channel.k8s.io,base64.channel.k8s.io",
						  WS_PROTOS_PORTFWD, &p4),
			 -EPROTONOSUPPORT);
	assert_int_equal(ws_proto_negotiate_among(NULL, 1u << WS_PROTO_V4, &p4), -EPROTONOSUPPORT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_client_frames),
		cmocka_unit_test(test_build_server_frames),
		cmocka_unit_test(test_reader_chunks),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_accept_key),
		cmocka_unit_test(test_negotiate),
		cmocka_unit_test(test_channels),
		cmocka_unit_test(test_portfwd),
	};
	return cmocka_run_group_tests_name("monitord-ws", tests, NULL, NULL);
}
