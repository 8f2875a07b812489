/* Fuzz the WebSocket reader and the channel protocols (monitord/ws.c): the
 * first byte picks the subprotocol and the feeding chunk size, the rest is
 * what a client sends. Messages must respect the bounds; every data message
 * goes through the channel decoder, every close through the close parser. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "monitord/ws.h"

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
	return 0;
}
