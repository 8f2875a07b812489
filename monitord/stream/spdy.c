/* SPDY/3.1 framing; see spdy.h. */
#include "spdy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The SPDY/3 header compression dictionary (SPDY Protocol draft 3,
 * section 2.6.10.1), a protocol constant. */
const char spdy_dictionary[] =
    "\000\000\000\007options\000\000\000\004head\000\000\000\004post\000\000\000\003put"
    "\000\000\000\006delete\000\000\000\005trace\000\000\000\006accept\000\000\000\016acc"
    "ept-charset\000\000\000\017accept-encoding\000\000\000\017accept-language\000\000"
    "\000\015accept-ranges\000\000\000\003age\000\000\000\005allow\000\000\000\015authori"
    "zation\000\000\000\015cache-control\000\000\000\012connection\000\000\000\014content"
    "-base\000\000\000\020content-encoding\000\000\000\020content-language\000\000\000"
    "\016content-length\000\000\000\020content-location\000\000\000\013content-md5\000"
    "\000\000\015content-range\000\000\000\014content-type\000\000\000\004date\000\000"
    "\000\004etag\000\000\000\006expect\000\000\000\007expires\000\000\000\004from\000"
    "\000\000\004host\000\000\000\010if-match\000\000\000\021if-modified-since\000\000"
    "\000\015if-none-match\000\000\000\010if-range\000\000\000\023if-unmodified-since\000"
    "\000\000\015last-modified\000\000\000\010location\000\000\000\014max-forwards\000"
    "\000\000\006pragma\000\000\000\022proxy-authenticate\000\000\000\023proxy-authorizat"
    "ion\000\000\000\005range\000\000\000\007referer\000\000\000\013retry-after\000\000"
    "\000\006server\000\000\000\002te\000\000\000\007trailer\000\000\000\021transfer-enco"
    "ding\000\000\000\007upgrade\000\000\000\012user-agent\000\000\000\004vary\000\000"
    "\000\003via\000\000\000\007warning\000\000\000\020www-authenticate\000\000\000\006me"
    "thod\000\000\000\003get\000\000\000\006status\000\000\000\006200 OK\000\000\000\007v"
    "ersion\000\000\000\010HTTP/1.1\000\000\000\003url\000\000\000\006public\000\000\000"
    "\012set-cookie\000\000\000\012keep-alive\000\000\000\006origin1001012012022052063003"
    "02303304305306307402405406407408409410411412413414415416417502504505203 Non-Authorit"
    "ative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized4"
    "03 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Una"
    "vailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu"
    ", Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,application/xml,"
    "application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=gzip,deflate,s"
    "dchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";
#define DICT_LEN (sizeof(spdy_dictionary) - 1)
const size_t spdy_dictionary_len = DICT_LEN;

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

int spdy_init(struct spdy *s, const struct spdy_callbacks *cb, void *ud)
{
	memset(s, 0, sizeof(*s));
	s->cb = cb;
	s->ud = ud;
	s->send_window = SPDY_WINDOW_INITIAL;
	s->initial_window = SPDY_WINDOW_INITIAL;
	s->ctl = malloc(SPDY_CONTROL_MAX);
	if (!s->ctl)
		return -ENOMEM;
	if (inflateInit(&s->inf) != Z_OK)
		return -ENOMEM;
	s->inf_ok = true;
	if (deflateInit(&s->def, Z_DEFAULT_COMPRESSION) != Z_OK)
		return -ENOMEM;
	s->def_ok = true;
	if (deflateSetDictionary(&s->def, (const Bytef *)spdy_dictionary, DICT_LEN) != Z_OK)
		return -EINVAL;
	return 0;
}

void spdy_done(struct spdy *s)
{
	if (s->inf_ok)
		inflateEnd(&s->inf);
	if (s->def_ok)
		deflateEnd(&s->def);
	s->inf_ok = s->def_ok = false;
	free(s->ctl);
	free(s->out);
	free(s->hdr_raw);
	s->hdr_raw = NULL;
	s->hdr_store = NULL;
	s->ctl = NULL;
	s->out = NULL;
	s->out_len = s->out_cap = 0;
}

/* ---- output ---- */

static uint8_t *out_grow(struct spdy *s, size_t n)
{
	if (s->out_cap - s->out_len < n) {
		size_t cap = s->out_cap ? s->out_cap : 4096;
		while (cap - s->out_len < n)
			cap *= 2;
		uint8_t *p = realloc(s->out, cap);
		if (!p)
			return NULL;
		s->out = p;
		s->out_cap = cap;
	}
	uint8_t *p = s->out + s->out_len;
	s->out_len += n;
	return p;
}

void spdy_out_consumed(struct spdy *s, size_t n)
{
	if (n >= s->out_len) {
		s->out_len = 0;
		return;
	}
	memmove(s->out, s->out + n, s->out_len - n);
	s->out_len -= n;
}

static int control(struct spdy *s, enum spdy_type type, uint8_t flags, const uint8_t *payload,
		   size_t n)
{
	uint8_t *p = out_grow(s, 8 + n);
	if (!p)
		return -ENOMEM;
	p[0] = 0x80;
	p[1] = 3;
	p[2] = 0;
	p[3] = (uint8_t)type;
	put32(p + 4, (uint32_t)n);
	p[4] = flags;
	if (n)
		memcpy(p + 8, payload, n);
	return 0;
}

/* Our header block for no headers: a count of 0, compressed. */
static int header_block(struct spdy *s, uint8_t *buf, size_t cap, size_t *len)
{
	uint8_t zero[4] = { 0 };
	s->def.next_in = zero;
	s->def.avail_in = sizeof(zero);
	s->def.next_out = buf;
	s->def.avail_out = (uInt)cap;
	if (deflate(&s->def, Z_SYNC_FLUSH) != Z_OK || s->def.avail_in)
		return -EIO;
	*len = cap - s->def.avail_out;
	return 0;
}

static struct spdy_stream *find(struct spdy *s, uint32_t sid)
{
	for (size_t i = 0; i < SPDY_STREAMS_MAX; i++)
		if (s->streams[i].id == sid && sid)
			return &s->streams[i];
	return NULL;
}

static void forget(struct spdy *s, struct spdy_stream *st)
{
	(void)s;
	memset(st, 0, sizeof(*st));
}

/* Both sides ended: the slot is free. */
static void maybe_forget(struct spdy *s, struct spdy_stream *st)
{
	if (st->remote_fin && st->local_fin)
		forget(s, st);
}

int spdy_reply(struct spdy *s, uint32_t sid)
{
	struct spdy_stream *st = find(s, sid);
	if (!st || st->replied)
		return -EINVAL;
	uint8_t buf[4 + 64];
	size_t hl;
	put32(buf, sid);
	int r = header_block(s, buf + 4, sizeof(buf) - 4, &hl);
	if (r < 0)
		return r;
	st->replied = true;
	return control(s, SPDY_SYN_REPLY, 0, buf, 4 + hl);
}

size_t spdy_send_room(const struct spdy *s, uint32_t sid)
{
	const struct spdy_stream *st = find((struct spdy *)s, sid);
	if (!st || st->local_fin)
		return 0;
	if (!s->peer_fc)
		return SPDY_DATA_MAX;
	int64_t w = st->send_window < s->send_window ? st->send_window : s->send_window;
	return w <= 0 ? 0 : w > SPDY_DATA_MAX ? SPDY_DATA_MAX : (size_t)w;
}

int spdy_data(struct spdy *s, uint32_t sid, const void *data, size_t n, bool fin)
{
	struct spdy_stream *st = find(s, sid);
	if (!st || st->local_fin || n > SPDY_DATA_MAX)
		return -EINVAL;
	uint8_t *p = out_grow(s, 8 + n);
	if (!p)
		return -ENOMEM;
	put32(p, sid & 0x7fffffff);
	put32(p + 4, (uint32_t)n);
	p[4] = fin ? SPDY_FLAG_FIN : 0;
	if (n)
		memcpy(p + 8, data, n);
	st->send_window -= (int64_t)n;
	s->send_window -= (int64_t)n;
	if (fin) {
		st->local_fin = true;
		maybe_forget(s, st);
	}
	return 0;
}

int spdy_rst(struct spdy *s, uint32_t sid, uint32_t status)
{
	uint8_t b[8];
	put32(b, sid & 0x7fffffff);
	put32(b + 4, status);
	struct spdy_stream *st = find(s, sid);
	if (st)
		forget(s, st);
	return control(s, SPDY_RST_STREAM, 0, b, sizeof(b));
}

int spdy_goaway(struct spdy *s, uint32_t status)
{
	if (s->goaway_sent)
		return 0;
	uint8_t b[8];
	put32(b, s->last_peer_sid);
	put32(b + 4, status);
	s->goaway_sent = true;
	return control(s, SPDY_GOAWAY, 0, b, sizeof(b));
}

static int window_update(struct spdy *s, uint32_t sid, uint32_t delta)
{
	uint8_t b[8];
	put32(b, sid & 0x7fffffff);
	put32(b + 4, delta & 0x7fffffff);
	return control(s, SPDY_WINDOW_UPDATE, 0, b, sizeof(b));
}

int spdy_consumed(struct spdy *s, uint32_t sid, size_t n)
{
	s->recv_unacked += (uint32_t)n;
	if (s->recv_unacked >= SPDY_WINDOW_INITIAL / 2) {
		int r = window_update(s, 0, s->recv_unacked);
		if (r < 0)
			return r;
		s->recv_unacked = 0;
	}
	struct spdy_stream *st = find(s, sid);
	if (!st || st->remote_fin)
		return 0;
	st->recv_unacked += (uint32_t)n;
	if (st->recv_unacked >= SPDY_WINDOW_INITIAL / 2) {
		int r = window_update(s, sid, st->recv_unacked);
		if (r < 0)
			return r;
		st->recv_unacked = 0;
	}
	return 0;
}

bool spdy_stream_open(const struct spdy *s, uint32_t sid)
{
	return find((struct spdy *)s, sid) != NULL;
}

/* ---- input ---- */

/* A fatal error: GOAWAY and -EPROTO. */
static int protocol_error(struct spdy *s)
{
	spdy_goaway(s, SPDY_GOAWAY_PROTOCOL_ERROR);
	return -EPROTO;
}

/* Inflate a header block into out (cap bytes): its length or <0. */
static int inflate_block(struct spdy *s, const uint8_t *in, size_t n, uint8_t *out, size_t cap,
			 size_t *len)
{
	s->inf.next_in = (Bytef *)in;
	s->inf.avail_in = (uInt)n;
	s->inf.next_out = out;
	s->inf.avail_out = (uInt)cap;
	while (s->inf.avail_in > 0) {
		int z = inflate(&s->inf, Z_SYNC_FLUSH);
		if (z == Z_NEED_DICT) {
			if (inflateSetDictionary(&s->inf, (const Bytef *)spdy_dictionary,
						 DICT_LEN) != Z_OK)
				return -EPROTO;
			continue;
		}
		if (z == Z_BUF_ERROR && s->inf.avail_out == 0)
			return -E2BIG;
		if (z != Z_OK)
			return -EPROTO;
		if (s->inf.avail_out == 0 && s->inf.avail_in > 0)
			return -E2BIG;
	}
	*len = cap - s->inf.avail_out;
	return 0;
}

/* Parse an inflated block into pairs; the strings are copied NUL-terminated
 * into store. */
static int parse_pairs(const uint8_t *b, size_t n, struct spdy_header *h, size_t *n_h, char *store,
		       size_t store_cap)
{
	if (n < 4)
		return -EPROTO;
	uint32_t count = get32(b);
	if (count > SPDY_HEADER_PAIRS_MAX)
		return -E2BIG;
	size_t off = 4, used = 0;
	for (uint32_t i = 0; i < count; i++) {
		const char **dst[2] = { &h[i].name, &h[i].value };
		for (int k = 0; k < 2; k++) {
			if (n - off < 4)
				return -EPROTO;
			uint32_t l = get32(b + off);
			off += 4;
			if (l > n - off || l + 1 > store_cap - used)
				return -EPROTO;
			/* Names are never empty and hold no NUL (values may: it
			 * separates several). */
			if (k == 0 && (l == 0 || memchr(b + off, 0, l)))
				return -EPROTO;
			memcpy(store + used, b + off, l);
			store[used + l] = '\0';
			*dst[k] = store + used;
			used += l + 1;
			off += l;
		}
	}
	if (off != n)
		return -EPROTO;
	*n_h = count;
	return 0;
}

/* The pairs point into s->hdr_store until the next header block. */
static int headers_of(struct spdy *s, const uint8_t *in, size_t n, struct spdy_header *h,
		      size_t *n_h)
{
	if (!s->hdr_raw) {
		s->hdr_raw = malloc(2 * SPDY_HEADERS_MAX);
		if (!s->hdr_raw)
			return -ENOMEM;
		s->hdr_store = (char *)s->hdr_raw + SPDY_HEADERS_MAX;
	}
	size_t len;
	int r = inflate_block(s, in, n, s->hdr_raw, SPDY_HEADERS_MAX, &len);
	if (r < 0)
		return r;
	return parse_pairs(s->hdr_raw, len, h, n_h, s->hdr_store, SPDY_HEADERS_MAX);
}

static int on_syn_stream(struct spdy *s, uint8_t flags, const uint8_t *p, size_t n)
{
	if (n < 10)
		return protocol_error(s);
	uint32_t sid = get32(p) & 0x7fffffff;
	/* The header block must be inflated whatever happens to the stream:
	 * the compression context is the connection's. */
	struct spdy_header h[SPDY_HEADER_PAIRS_MAX];
	size_t n_h = 0;
	if (headers_of(s, p + 10, n - 10, h, &n_h) < 0)
		return protocol_error(s);
	/* Client streams are odd and increase. */
	if (sid == 0 || !(sid & 1) || sid <= s->last_peer_sid)
		return protocol_error(s);
	s->last_peer_sid = sid;
	if (s->goaway_sent)
		return spdy_rst(s, sid, SPDY_RST_REFUSED_STREAM);
	struct spdy_stream *st = find(s, 0);
	for (size_t i = 0; !st && i < SPDY_STREAMS_MAX; i++)
		if (!s->streams[i].id)
			st = &s->streams[i];
	if (!st)
		return spdy_rst(s, sid, SPDY_RST_REFUSED_STREAM);
	*st = (struct spdy_stream){ .id = sid, .send_window = s->initial_window };
	if (flags & SPDY_FLAG_UNIDIRECTIONAL)
		st->local_fin = true;
	int r = s->cb->syn_stream ? s->cb->syn_stream(s->ud, sid, h, n_h) : 0;
	if (r < 0)
		return r;
	if ((flags & SPDY_FLAG_FIN) && (st = find(s, sid))) {
		st->remote_fin = true;
		if (s->cb->fin && (r = s->cb->fin(s->ud, sid)) < 0)
			return r;
		if ((st = find(s, sid)))
			maybe_forget(s, st);
	}
	return 0;
}

static int on_settings(struct spdy *s, const uint8_t *p, size_t n)
{
	if (n < 4)
		return protocol_error(s);
	uint32_t count = get32(p);
	if (count > (n - 4) / 8 || 4 + (size_t)count * 8 != n)
		return protocol_error(s);
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *e = p + 4 + i * 8;
		uint32_t id = get32(e) & 0xffffff;
		uint32_t v = get32(e + 4);
		if (id != SPDY_SETTINGS_INITIAL_WINDOW_SIZE)
			continue;
		if (v > 0x7fffffff)
			return protocol_error(s);
		/* Open streams' windows move by the difference. */
		int64_t d = (int64_t)v - s->initial_window;
		for (size_t k = 0; k < SPDY_STREAMS_MAX; k++)
			if (s->streams[k].id)
				s->streams[k].send_window += d;
		s->initial_window = (int32_t)v;
		s->peer_fc = true;
	}
	return 0;
}

static int on_control(struct spdy *s)
{
	uint16_t version = (uint16_t)((s->hdr[0] & 0x7f) << 8 | s->hdr[1]);
	uint16_t type = (uint16_t)(s->hdr[2] << 8 | s->hdr[3]);
	uint8_t flags = s->hdr[4];
	const uint8_t *p = s->ctl;
	size_t n = s->ctl_len;
	if (version != 3)
		return protocol_error(s);
	int r;
	switch (type) {
	case SPDY_SYN_STREAM:
		return on_syn_stream(s, flags, p, n);
	case SPDY_SYN_REPLY:
		return protocol_error(s); /* we open no streams */
	case SPDY_RST_STREAM: {
		if (n != 8)
			return protocol_error(s);
		uint32_t sid = get32(p) & 0x7fffffff;
		struct spdy_stream *st = find(s, sid);
		if (!st)
			return 0;
		forget(s, st);
		return s->cb->rst ? s->cb->rst(s->ud, sid, get32(p + 4)) : 0;
	}
	case SPDY_SETTINGS:
		return on_settings(s, p, n);
	case SPDY_PING:
		if (n != 4)
			return protocol_error(s);
		/* The peer's pings are odd (client-initiated): echo them. */
		return (get32(p) & 1) ? control(s, SPDY_PING, 0, p, 4) : 0;
	case SPDY_GOAWAY:
		if (n != 8)
			return protocol_error(s);
		s->goaway_received = true;
		return s->cb->goaway ? s->cb->goaway(s->ud, get32(p + 4)) : 0;
	case SPDY_HEADERS: {
		if (n < 4)
			return protocol_error(s);
		struct spdy_header h[SPDY_HEADER_PAIRS_MAX];
		size_t n_h = 0;
		if (headers_of(s, p + 4, n - 4, h, &n_h) < 0)
			return protocol_error(s);
		uint32_t sid = get32(p) & 0x7fffffff;
		struct spdy_stream *st = find(s, sid);
		if (!st)
			return spdy_rst(s, sid, SPDY_RST_INVALID_STREAM);
		if ((flags & SPDY_FLAG_FIN) && !st->remote_fin) {
			st->remote_fin = true;
			if (s->cb->fin && (r = s->cb->fin(s->ud, sid)) < 0)
				return r;
			if ((st = find(s, sid)))
				maybe_forget(s, st);
		}
		return 0;
	}
	case SPDY_WINDOW_UPDATE: {
		if (n != 8)
			return protocol_error(s);
		uint32_t sid = get32(p) & 0x7fffffff;
		uint32_t d = get32(p + 4) & 0x7fffffff;
		if (d == 0)
			return protocol_error(s);
		s->peer_fc = true;
		if (sid == 0) {
			s->send_window += d;
			if (s->send_window > 0x7fffffff)
				return protocol_error(s);
			return 0;
		}
		struct spdy_stream *st = find(s, sid);
		if (st && (st->send_window += d) > 0x7fffffff)
			return spdy_rst(s, sid, SPDY_RST_FLOW_CONTROL);
		return 0;
	}
	default:
		return 0; /* unknown control frames are ignored (SPDY/3 2.2.1) */
	}
}

/* A piece of the current data frame's payload. */
static int on_data_piece(struct spdy *s, const uint8_t *p, size_t n, bool last)
{
	struct spdy_stream *st = find(s, s->data_sid);
	if (!st || st->remote_fin) {
		/* Unknown or half-closed stream: reset it once, at the
		 * frame's end. */
		if (last && !st)
			return spdy_rst(s, s->data_sid, SPDY_RST_INVALID_STREAM);
		if (last)
			return spdy_rst(s, s->data_sid, SPDY_RST_STREAM_ALREADY_CL);
		return 0;
	}
	int r;
	if (n && s->cb->data && (r = s->cb->data(s->ud, s->data_sid, p, n)) < 0)
		return r;
	if (last && (s->data_flags & SPDY_FLAG_FIN) && (st = find(s, s->data_sid)) &&
	    !st->remote_fin) {
		st->remote_fin = true;
		if (s->cb->fin && (r = s->cb->fin(s->ud, s->data_sid)) < 0)
			return r;
		if ((st = find(s, s->data_sid)))
			maybe_forget(s, st);
	}
	return 0;
}

int spdy_input(struct spdy *s, const uint8_t *p, size_t n)
{
	while (n > 0 || (s->hdr_len == 8 && s->left == 0)) {
		if (s->hdr_len < 8) {
			size_t k = 8 - s->hdr_len < n ? 8 - s->hdr_len : n;
			memcpy(s->hdr + s->hdr_len, p, k);
			s->hdr_len += k;
			p += k;
			n -= k;
			if (s->hdr_len < 8)
				return 0;
			s->left = get32(s->hdr + 4) & 0xffffff;
			s->in_data = !(s->hdr[0] & 0x80);
			s->ctl_len = 0;
			if (s->in_data) {
				s->data_sid = get32(s->hdr) & 0x7fffffff;
				s->data_flags = s->hdr[4];
				if (s->data_sid == 0)
					return protocol_error(s);
			} else if (s->left > SPDY_CONTROL_MAX) {
				return protocol_error(s);
			}
		}
		size_t k = s->left < n ? s->left : n;
		int r = 0;
		if (s->in_data) {
			s->left -= (uint32_t)k;
			r = on_data_piece(s, p, k, s->left == 0);
		} else {
			memcpy(s->ctl + s->ctl_len, p, k);
			s->ctl_len += k;
			s->left -= (uint32_t)k;
			if (s->left == 0)
				r = on_control(s);
		}
		p += k;
		n -= k;
		if (s->left == 0)
			s->hdr_len = 0;
		if (r < 0)
			return r;
	}
	return 0;
}
