/* Fuzz the SPDY/3.1 codec (monitord/stream/spdy.c) as the server's side of
 * a connection. The input is a list of operations, so that both raw bytes
 * and well-formed frames around mutated header blocks reach it:
 *   0 <len> <bytes>             raw bytes, fed in pieces of the next byte
 *   1 <sid:4> <flags> <len> <header block bytes, compressed here>
 *   2 <sid:4> <flags> <len> <bytes>   a data frame
 *   3 <sid:4> <n:2>             we reply to sid and send n bytes on it
 * Every stream the peer opens is replied to; what the codec queues must be
 * whole frames; after an error nothing more is fed. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "monitord/stream/spdy.h"

static int on_syn(void *ud, uint32_t sid, const struct spdy_header *h, size_t n_h)
{
	for (size_t i = 0; i < n_h; i++)
		if (!h[i].name[0])
			abort(); /* names are never empty */
	spdy_reply(ud, sid);     /* -EINVAL once replied: fine */
	return 0;
}

static int on_data(void *ud, uint32_t sid, const uint8_t *p, size_t n)
{
	(void)p;
	return spdy_consumed(ud, sid, n);
}

static const struct spdy_callbacks cbs = { .syn_stream = on_syn, .data = on_data };

/* s->out must hold whole frames. */
static void check_out(const struct spdy *s)
{
	size_t off = 0;
	while (off < s->out_len) {
		if (s->out_len - off < 8)
			abort();
		uint32_t len = (uint32_t)s->out[off + 5] << 16 | (uint32_t)s->out[off + 6] << 8 |
			       s->out[off + 7];
		if (s->out_len - off - 8 < len)
			abort();
		off += 8 + len;
	}
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n)
{
	struct spdy s;
	z_stream def = { 0 };
	if (spdy_init(&s, &cbs, NULL) < 0) {
		spdy_done(&s);
		return 0;
	}
	s.ud = &s;
	deflateInit(&def, Z_DEFAULT_COMPRESSION);
	deflateSetDictionary(&def, (const Bytef *)spdy_dictionary, (uInt)spdy_dictionary_len);
	static uint8_t frame[70000];
	int r = 0;
	size_t i = 0;
	while (i < n && r >= 0) {
		uint8_t op = in[i++] % 4;
		if (op == 0 && n - i >= 2) {
			size_t len = in[i], step = in[i + 1] ? in[i + 1] : 1;
			i += 2;
			if (len > n - i)
				len = n - i;
			for (size_t off = 0; off < len && r >= 0; off += step)
				r = spdy_input(&s, in + i + off,
					       len - off < step ? len - off : step);
			i += len;
		} else if ((op == 1 || op == 2) && n - i >= 7) {
			uint32_t sid = (uint32_t)in[i] << 24 | (uint32_t)in[i + 1] << 16 |
				       (uint32_t)in[i + 2] << 8 | in[i + 3];
			uint8_t flags = in[i + 4];
			size_t len = (size_t)in[i + 5] << 8 | in[i + 6];
			i += 7;
			if (len > n - i)
				len = n - i;
			size_t fl;
			if (op == 1) {
				put32(frame + 8, sid & 0x7fffffff);
				put32(frame + 12, 0);
				frame[16] = frame[17] = 0;
				def.next_in = (Bytef *)(in + i);
				def.avail_in = (uInt)len;
				def.next_out = frame + 18;
				def.avail_out = sizeof(frame) - 18;
				if (deflate(&def, Z_SYNC_FLUSH) != Z_OK)
					break;
				fl = 10 + (sizeof(frame) - 18 - def.avail_out);
				frame[0] = 0x80;
				frame[1] = 3;
				frame[2] = 0;
				frame[3] = SPDY_SYN_STREAM;
			} else {
				put32(frame, sid & 0x7fffffff);
				memcpy(frame + 8, in + i, len);
				fl = len;
			}
			put32(frame + 4, (uint32_t)fl);
			frame[4] = flags;
			r = spdy_input(&s, frame, 8 + fl);
			i += len;
		} else if (op == 3 && n - i >= 6) {
			uint32_t sid = (uint32_t)in[i] << 24 | (uint32_t)in[i + 1] << 16 |
				       (uint32_t)in[i + 2] << 8 | in[i + 3];
			size_t want = (size_t)in[i + 4] << 8 | in[i + 5];
			i += 6;
			size_t room = spdy_send_room(&s, sid);
			if (want > room)
				want = room;
			if (room && spdy_data(&s, sid, frame, want, want == 0) < 0)
				abort(); /* within the room it must work */
		} else {
			break;
		}
		check_out(&s);
		spdy_out_consumed(&s, s.out_len);
	}
	deflateEnd(&def);
	spdy_done(&s);
	return 0;
}
