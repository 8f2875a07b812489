/* Fuzz the WebSocket reader and the channel protocols (monitord/ws.c): the
 * first byte picks the subprotocol and the feeding chunk size, the rest is
 * what a client sends. Messages must respect the bounds; every data message
 * goes through the channel decoder, every close through the close parser.
 * Then the same bytes go through a session's WebSocket transport
 * (monitord/stream/websocket.c) with a backend that counts what reaches it:
 * an error leaves a close frame queued, and the output stays bounded. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "monitord/stream/websocket.h"
#include "monitord/ws.h"

static int count_data(struct session *s, struct stream_chan *c, const uint8_t *p, size_t n)
{
	(void)c;
	(void)p;
	*(size_t *)s->be_data += n;
	return 0;
}

static const struct backend_ops counting = { .data = count_data };

static void through_transport(enum ws_proto p, size_t chunk, const uint8_t *data, size_t size)
{
	struct stream_request req = {
		.kind = STREAM_KIND_EXEC, .stdin = true, .stdout = true, .tty = (chunk & 1) != 0
	};
	size_t got = 0;
	struct session s = { .fd = -1, .req = &req, .be = &counting, .be_data = &got };
	if (ws_transport_init(&s, p) < 0)
		abort();
	int e = 0;
	for (size_t off = 0; off < size && e >= 0 && !s.client_gone; off += chunk) {
		size_t k = size - off < chunk ? size - off : chunk;
		e = s.tr->input(&s, data + off, k);
		const uint8_t *out;
		size_t n;
		s.tr->pending(&s, &out, &n);
		if (n > SESSION_OUT_MAX + 2 * WS_HEADER_MAX + 2 * WS_CONTROL_MAX + 64)
			abort();
		if (e < 0 && (n < 4 || (out[n - 4] & 0x0f) != WS_OP_CLOSE))
			abort(); /* the close frame (2 bytes of code, no reason) last */
		/* the client reads half of it */
		s.tr->written(&s, n / 2);
	}
	if (got > size)
		abort();
	s.tr->free(&s);
	session_free_chans(&s);
}

#define MAX_MESSAGE 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	enum ws_proto p = (enum ws_proto)(data[0] % 5);
	size_t chunk = (size_t)(data[0] >> 3) * 61 + 1;
	data++;
	size--;
	/* The same bytes as a Sec-WebSocket-Protocol header. */
	char *hdr = strndup((const char *)data, size < 256 ? size : 256);
	enum ws_proto np = WS_PROTO_NONE;
	if (hdr && ws_proto_negotiate(hdr, &np) == 0 && np != WS_PROTO_NONE && !ws_proto_name(np))
		abort();
	/* ... as port-forward's, and as a ?port= value. */
	if (hdr && ws_proto_negotiate_among(hdr, WS_PROTOS_PORTFWD, &np) == 0 &&
	    !(WS_PROTOS_PORTFWD & (1u << np)))
		abort();
	uint16_t ports[4];
	size_t n_ports = 0;
	int pe = hdr ? ws_ports_parse(hdr, ports, 4, &n_ports) : 0;
	if (n_ports > 4 || (pe == 0 && n_ports == 0))
		abort();
	for (size_t i = 0; i < n_ports; i++)
		if (ports[i] == 0)
			abort();
	free(hdr);

	struct ws_reader r;
	if (ws_reader_init(&r, MAX_MESSAGE) < 0)
		abort();
	int e = 0;
	for (size_t off = 0; off < size && e >= 0;) {
		size_t k = size - off < chunk ? size - off : chunk;
		if (k > ws_reader_room(&r))
			k = ws_reader_room(&r);
		if (k == 0 || ws_reader_feed(&r, data + off, k) < 0)
			abort();
		off += k;
		struct ws_message m;
		while ((e = ws_reader_next(&r, &m)) == 1) {
			if (m.opcode & 0x8) {
				if (m.len > WS_CONTROL_MAX)
					abort();
				uint16_t code;
				const char *reason;
				size_t rl;
				if (m.opcode == WS_OP_CLOSE &&
				    ws_close_parse(m.data, m.len, &code, &reason, &rl) == 0 &&
				    rl > m.len)
					abort();
				continue;
			}
			if (m.len > MAX_MESSAGE)
				abort();
			uint8_t ch, *d = NULL;
			size_t n = 0;
			if (ws_channel_decode(p, &m, 1024, &ch, &d, &n) == 0) {
				if (n > 1024 || d[n] != '\0')
					abort();
				/* Our own frame of it carries the same bytes. */
				uint8_t *f = NULL;
				size_t fl = 0;
				if (ws_channel_frame(p, ch, d, n, &f, &fl) < 0)
					abort();
				free(f);
			}
			free(d);
		}
	}
	ws_reader_free(&r);
	through_transport(p, chunk, data, size);
	return 0;
}
