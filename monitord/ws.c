/* WebSocket framing and the Kubernetes channel protocols; see ws.h. */
#include <errno.h>
#include <nettle/sha1.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64.h"
#include "common/cleanup.h"
#include "monitord/ws.h"

/* The reader's bound on max_message: lengths stay far from overflow. */
#define WS_MESSAGE_LIMIT (1u << 30)

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

static bool opcode_known(uint8_t op)
{
	return op == WS_OP_CONT || op == WS_OP_TEXT || op == WS_OP_BINARY || op == WS_OP_CLOSE ||
	       op == WS_OP_PING || op == WS_OP_PONG;
}

static bool opcode_control(uint8_t op)
{
	return (op & 0x8) != 0;
}

/* ---- frames ---- */

int ws_frame_parse(uint8_t *buf, size_t len, size_t max_payload, struct ws_frame *f)
{
	if (len < 2)
		return 0;
	uint8_t op = buf[0] & 0x0f, len7 = buf[1] & 0x7f;
	bool fin = (buf[0] & 0x80) != 0;
	if ((buf[0] & 0x70) != 0 || !opcode_known(op) || (buf[1] & 0x80) == 0)
		return -EPROTO;
	if (opcode_control(op) && (!fin || len7 > WS_CONTROL_MAX))
		return -EPROTO;
	size_t hl = 2;
	uint64_t plen = len7;
	if (len7 == 126) {
		if (len < 4)
			return 0;
		plen = (uint64_t)buf[2] << 8 | buf[3];
		hl = 4;
	} else if (len7 == 127) {
		if (len < 10)
			return 0;
		plen = 0;
		for (int i = 0; i < 8; i++)
			plen = plen << 8 | buf[2 + i];
		if (plen >> 63)
			return -EPROTO;
		hl = 10;
	}
	if (plen > max_payload)
		return -EMSGSIZE;
	const uint8_t *mask = buf + hl;
	hl += 4;
	if (len < hl || len - hl < plen)
		return 0;
	uint8_t *p = buf + hl;
	for (size_t i = 0; i < plen; i++)
		p[i] ^= mask[i & 3];
	*f = (struct ws_frame){
		.fin = fin, .opcode = op, .header_len = hl, .payload_len = (size_t)plen
	};
	return 1;
}

size_t ws_frame_header(uint8_t hdr[WS_HEADER_MAX], bool fin, uint8_t opcode, uint64_t payload_len)
{
	hdr[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
	if (payload_len < 126) {
		hdr[1] = (uint8_t)payload_len;
		return 2;
	}
	if (payload_len <= 0xffff) {
		hdr[1] = 126;
		hdr[2] = (uint8_t)(payload_len >> 8);
		hdr[3] = (uint8_t)payload_len;
		return 4;
	}
	hdr[1] = 127;
	for (int i = 0; i < 8; i++)
		hdr[2 + i] = (uint8_t)(payload_len >> (56 - 8 * i));
	return 10;
}

int ws_frame_build(uint8_t opcode, const void *data, size_t len, uint8_t **ret, size_t *ret_len)
{
	if (opcode == WS_OP_CONT || !opcode_known(opcode) ||
	    (opcode_control(opcode) && len > WS_CONTROL_MAX) || len > SIZE_MAX - WS_HEADER_MAX)
		return -EINVAL;
	uint8_t hdr[WS_HEADER_MAX];
	size_t hl = ws_frame_header(hdr, true, opcode, len);
	uint8_t *out = malloc(hl + len);
	if (!out)
		return -ENOMEM;
	memcpy(out, hdr, hl);
	if (len > 0)
		memcpy(out + hl, data, len);
	*ret = out;
	*ret_len = hl + len;
	return 0;
}

int ws_close_build(uint16_t code, const char *reason, uint8_t **ret, size_t *ret_len)
{
	uint8_t p[WS_CONTROL_MAX];
	size_t rl = reason ? strlen(reason) : 0;
	if (rl > sizeof(p) - 2)
		rl = sizeof(p) - 2;
	p[0] = (uint8_t)(code >> 8);
	p[1] = (uint8_t)code;
	if (rl > 0)
		memcpy(p + 2, reason, rl);
	return ws_frame_build(WS_OP_CLOSE, p, 2 + rl, ret, ret_len);
}

int ws_close_parse(const uint8_t *data, size_t len, uint16_t *code, const char **reason,
		   size_t *reason_len)
{
	if (len == 1 || len > WS_CONTROL_MAX)
		return -EPROTO;
	uint16_t c = len == 0 ? 1005 : (uint16_t)(data[0] << 8 | data[1]);
	/* The codes an endpoint may send (RFC 6455 7.4). */
	if (len > 0 &&
	    !((c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999)))
		return -EPROTO;
	*code = c;
	*reason = len > 2 ? (const char *)data + 2 : "";
	*reason_len = len > 2 ? len - 2 : 0;
	return 0;
}

/* ---- messages ---- */

int ws_reader_init(struct ws_reader *r, size_t max_message)
{
	if (max_message == 0 || max_message > WS_MESSAGE_LIMIT)
		return -EINVAL;
	*r = (struct ws_reader){ .max_message = max_message };
	return 0;
}

void ws_reader_free(struct ws_reader *r)
{
	free(r->in);
	free(r->msg);
	r->in = r->msg = NULL;
	r->in_len = r->in_cap = r->msg_len = r->msg_cap = r->in_off = 0;
}

/* *p grown to hold need bytes (doubling, never past limit). */
static int grow(uint8_t **p, size_t *cap, size_t need, size_t limit)
{
	if (need <= *cap)
		return 0;
	if (need > limit)
		return -ENOBUFS;
	size_t n = *cap ? *cap : 4096;
	if (n > limit)
		n = limit;
	while (n < need)
		n = n > limit / 2 ? limit : n * 2;
	uint8_t *q = realloc(*p, n);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = n;
	return 0;
}

static size_t in_limit(const struct ws_reader *r)
{
	return r->max_message + WS_HEADER_MAX;
}

size_t ws_reader_room(const struct ws_reader *r)
{
	return in_limit(r) - (r->in_len - r->in_off);
}

int ws_reader_feed(struct ws_reader *r, const void *data, size_t len)
{
	if (len > ws_reader_room(r))
		return -ENOBUFS;
	if (r->in_off > 0) {
		memmove(r->in, r->in + r->in_off, r->in_len - r->in_off);
		r->in_len -= r->in_off;
		r->in_off = 0;
	}
	int e = grow(&r->in, &r->in_cap, r->in_len + len, in_limit(r));
	if (e < 0)
		return e;
	if (len > 0)
		memcpy(r->in + r->in_len, data, len);
	r->in_len += len;
	return 0;
}

static int reader_fail(struct ws_reader *r, int e)
{
	r->failed = e;
	return e;
}

int ws_reader_next(struct ws_reader *r, struct ws_message *m)
{
	if (r->failed)
		return r->failed;
	if (r->have_msg) {
		r->msg_len = 0;
		r->have_msg = false;
	}
	for (;;) {
		struct ws_frame f;
		uint8_t *at = r->in + r->in_off;
		int e = ws_frame_parse(at, r->in_len - r->in_off, r->max_message, &f);
		if (e <= 0)
			return e < 0 ? reader_fail(r, e) : 0;
		const uint8_t *payload = at + f.header_len;
		r->in_off += f.header_len + f.payload_len;
		if (opcode_control(f.opcode)) {
			memcpy(r->ctl, payload, f.payload_len);
			*m = (struct ws_message){ f.opcode, r->ctl, f.payload_len };
			return 1;
		}
		/* A continuation needs an open message; a new one none. */
		if ((f.opcode == WS_OP_CONT) != (r->msg_op != 0))
			return reader_fail(r, -EPROTO);
		if (f.payload_len > r->max_message - r->msg_len)
			return reader_fail(r, -EMSGSIZE);
		e = grow(&r->msg, &r->msg_cap, r->msg_len + f.payload_len + 1, r->max_message + 1);
		if (e < 0)
			return reader_fail(r, e);
		if (f.payload_len > 0)
			memcpy(r->msg + r->msg_len, payload, f.payload_len);
		r->msg_len += f.payload_len;
		if (f.opcode != WS_OP_CONT)
			r->msg_op = f.opcode;
		if (f.fin) {
			*m = (struct ws_message){ r->msg_op, r->msg, r->msg_len };
			r->msg_op = 0;
			r->have_msg = true;
			return 1;
		}
	}
}

/* ---- the opening handshake ---- */

int ws_accept_key(const char *key, char out[WS_ACCEPT_LEN + 1])
{
	if (!key || strlen(key) != 24)
		return -EINVAL;
	_cleanup_free_ uint8_t *raw = NULL;
	size_t n = 0;
	if (base64_decode(key, 16, &raw, &n) < 0 || n != 16)
		return -EINVAL;
	char buf[24 + sizeof(ws_guid)];
	memcpy(buf, key, 24);
	memcpy(buf + 24, ws_guid, sizeof(ws_guid) - 1);
	uint8_t md[SHA1_DIGEST_SIZE];
	struct sha1_ctx c;
	sha1_init(&c);
	sha1_update(&c, sizeof(buf) - 1, (const uint8_t *)buf);
	sha1_digest(&c, sizeof(md), md);
	_cleanup_free_ char *b = base64_encode(md, sizeof(md));
	if (!b)
		return -ENOMEM;
	if (strlen(b) != WS_ACCEPT_LEN)
		return -EIO;
	memcpy(out, b, WS_ACCEPT_LEN + 1);
	return 0;
}

/* ---- Kubernetes channel protocols ---- */

static const char *const proto_names[] = {
	[WS_PROTO_NONE] = NULL,
	[WS_PROTO_CHANNEL] = "channel.k8s.io",
	[WS_PROTO_BASE64] = "base64.channel.k8s.io",
	[WS_PROTO_V4] = "v4.channel.k8s.io",
	[WS_PROTO_V4_BASE64] = "v4.base64.channel.k8s.io",
};

const char *ws_proto_name(enum ws_proto p)
{
	return (unsigned)p < sizeof(proto_names) / sizeof(proto_names[0]) ? proto_names[p] : NULL;
}

bool ws_proto_is_base64(enum ws_proto p)
{
	return p == WS_PROTO_BASE64 || p == WS_PROTO_V4_BASE64;
}

bool ws_proto_is_v4(enum ws_proto p)
{
	return p == WS_PROTO_V4 || p == WS_PROTO_V4_BASE64;
}

int ws_proto_negotiate_among(const char *header, unsigned allowed, enum ws_proto *ret)
{
	bool offered = false;
	for (const char *s = header; s && *s;) {
		s += strspn(s, " \t,");
		size_t n = strcspn(s, " \t,");
		if (n == 0)
			break;
		offered = true;
		for (enum ws_proto p = WS_PROTO_CHANNEL; p <= WS_PROTO_V4_BASE64; p++)
			if ((allowed & (1u << p)) && strlen(proto_names[p]) == n &&
			    memcmp(proto_names[p], s, n) == 0) {
				*ret = p;
				return 0;
			}
		s += n;
	}
	if (offered || !(allowed & (1u << WS_PROTO_NONE)))
		return -EPROTONOSUPPORT;
	*ret = WS_PROTO_NONE;
	return 0;
}

int ws_proto_negotiate(const char *header, enum ws_proto *ret)
{
	return ws_proto_negotiate_among(header, WS_PROTOS_ALL, ret);
}

int ws_channel_decode(enum ws_proto p, const struct ws_message *m, size_t max, uint8_t *channel,
		      uint8_t **ret, size_t *ret_len)
{
	if (m->opcode != WS_OP_TEXT && m->opcode != WS_OP_BINARY)
		return -EINVAL;
	if (m->len == 0)
		return -ENODATA;
	const uint8_t *d = m->data + 1;
	size_t n = m->len - 1;
	if (!ws_proto_is_base64(p)) {
		if (n > max)
			return -EMSGSIZE;
		uint8_t *out = malloc(n + 1);
		if (!out)
			return -ENOMEM;
		if (n > 0)
			memcpy(out, d, n);
		out[n] = '\0';
		*channel = m->data[0];
		*ret = out;
		*ret_len = n;
		return 0;
	}
	if (m->data[0] < '0' || m->data[0] > '9' || n % 4 != 0 || memchr(d, '\0', n))
		return -EINVAL;
	size_t pad = (n >= 1 && d[n - 1] == '=') + (n >= 2 && d[n - 2] == '=');
	if (n / 4 * 3 - pad > max)
		return -EMSGSIZE;
	_cleanup_free_ char *s = malloc(n + 1);
	if (!s)
		return -ENOMEM;
	memcpy(s, d, n);
	s[n] = '\0';
	uint8_t *out = NULL;
	size_t outn = 0;
	int e = base64_decode(s, max, &out, &outn);
	if (e < 0)
		return e;
	*channel = (uint8_t)(m->data[0] - '0');
	*ret = out;
	*ret_len = outn;
	return 0;
}

int ws_channel_frame(enum ws_proto p, uint8_t channel, const void *data, size_t len, uint8_t **ret,
		     size_t *ret_len)
{
	if (!ws_proto_is_base64(p)) {
		if (len > SIZE_MAX - WS_HEADER_MAX - 1)
			return -EINVAL;
		_cleanup_free_ uint8_t *body = malloc(len + 1);
		if (!body)
			return -ENOMEM;
		body[0] = channel;
		if (len > 0)
			memcpy(body + 1, data, len);
		return ws_frame_build(WS_OP_BINARY, body, len + 1, ret, ret_len);
	}
	if (channel > 9)
		return -EINVAL;
	_cleanup_free_ char *b = base64_encode(len > 0 ? data : "", len);
	if (!b)
		return -ENOMEM;
	size_t bl = strlen(b);
	_cleanup_free_ uint8_t *body = malloc(bl + 1);
	if (!body)
		return -ENOMEM;
	body[0] = (uint8_t)('0' + channel);
	memcpy(body + 1, b, bl);
	return ws_frame_build(WS_OP_TEXT, body, bl + 1, ret, ret_len);
}

size_t ws_portfwd_prefix(uint16_t port, uint8_t out[2])
{
	out[0] = (uint8_t)port;
	out[1] = (uint8_t)(port >> 8);
	return 2;
}

int ws_port_parse(const char *s, uint16_t *ret)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > 5 || strspn(s, "0123456789") != n)
		return -EINVAL;
	unsigned long v = strtoul(s, NULL, 10);
	if (v == 0 || v > 65535)
		return -EINVAL;
	*ret = (uint16_t)v;
	return 0;
}

int ws_ports_parse(const char *value, uint16_t *ports, size_t max, size_t *n)
{
	if (!value || !*value)
		return -EINVAL;
	for (const char *p = value;;) {
		size_t l = strcspn(p, ",");
		char one[8];
		if (l == 0 || l >= sizeof(one))
			return -EINVAL;
		memcpy(one, p, l);
		one[l] = '\0';
		uint16_t port;
		if (ws_port_parse(one, &port) < 0)
			return -EINVAL;
		if (*n >= max)
			return -E2BIG;
		ports[(*n)++] = port;
		if (!p[l])
			return 0;
		p += l + 1;
	}
}
