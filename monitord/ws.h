/* WebSocket (RFC 6455) for the streaming server: the server's side of the
 * framing, the opening handshake's accept key, and the Kubernetes channel
 * protocols spoken over it (exec, attach, port-forward).
 *
 * Pure code: no I/O, no globals. The HTTP server owns the connection; it
 * reads bytes, feeds them to a ws_reader and takes complete messages out;
 * it writes what ws_frame_build / ws_channel_frame return.
 *
 * Hostile input: every length is checked before use, a message never grows
 * past the reader's max_message, and the reader's own buffer holds at most
 * one frame (max_message + WS_HEADER_MAX bytes). Errors are negative errno:
 *   -EPROTO    a protocol violation (close the connection, code 1002)
 *   -EMSGSIZE  a frame or message past the bound (code 1009)
 *   -ENOBUFS   ws_reader_feed given more than ws_reader_room() allows
 *   -EINVAL    a bad argument, or a channel message that does not decode
 *   -ENOMEM
 *
 * Text messages are not checked for UTF-8: the channel protocols accept
 * text only in their base64 variants, whose decoding refuses anything that
 * is not base64 (so not ASCII).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest frame header: 2 + 8 (64-bit length) + 4 (mask). */
#define WS_HEADER_MAX 14
/* Control frames carry at most 125 bytes (RFC 6455 5.5). */
#define WS_CONTROL_MAX 125

enum ws_opcode {
	WS_OP_CONT = 0x0,
	WS_OP_TEXT = 0x1,
	WS_OP_BINARY = 0x2,
	WS_OP_CLOSE = 0x8,
	WS_OP_PING = 0x9,
	WS_OP_PONG = 0xa,
};

/* Close codes we send (RFC 6455 7.4.1). */
enum ws_close_code {
	WS_CLOSE_NORMAL = 1000,
	WS_CLOSE_GOING_AWAY = 1001,
	WS_CLOSE_PROTOCOL = 1002,
	WS_CLOSE_TOO_BIG = 1009,
	WS_CLOSE_INTERNAL = 1011,
};

/* ---- frames ---- */

struct ws_frame {
	bool fin;
	uint8_t opcode;
	size_t header_len;  /* bytes before the payload */
	size_t payload_len; /* bytes of payload (unmasked in place) */
};

/* Parse one frame a client sent from buf[0..len): 1 with *f filled and the
 * payload (buf + f->header_len) unmasked in place; 0 when buf does not yet
 * hold the whole frame; -EPROTO (unmasked, RSV bits set, a reserved opcode,
 * a fragmented or too long control frame, a 64-bit length with its top bit
 * set) or -EMSGSIZE (payload over max_payload), known as soon as the header
 * is. */
int ws_frame_parse(uint8_t *buf, size_t len, size_t max_payload, struct ws_frame *f);

/* A server frame's header (never masked) into hdr: its length. */
size_t ws_frame_header(uint8_t hdr[WS_HEADER_MAX], bool fin, uint8_t opcode, uint64_t payload_len);

/* A whole server frame (fin set) of len bytes of data, malloc'd in *ret:
 * 0, or -EINVAL (a control frame over 125 bytes, an unknown opcode) or
 * -ENOMEM. */
int ws_frame_build(uint8_t opcode, const void *data, size_t len, uint8_t **ret, size_t *ret_len);

/* A close frame with code and reason (truncated to fit 125 bytes). */
int ws_close_build(uint16_t code, const char *reason, uint8_t **ret, size_t *ret_len);

/* ---- messages ---- */

/* Reassembles a client's frames into messages. Control frames (ping, pong,
 * close) come out as they arrive, also between a data message's fragments. */
struct ws_reader {
	size_t max_message;
	uint8_t *in; /* raw bytes; in[in_off..in_len) not yet parsed */
	size_t in_off, in_len, in_cap;
	uint8_t *msg; /* the data message being assembled */
	size_t msg_len, msg_cap;
	uint8_t msg_op; /* its opcode, 0 when none is open */
	bool have_msg;  /* msg is complete and was handed out */
	uint8_t ctl[WS_CONTROL_MAX];
	int failed; /* the error once failed, else 0 */
};

struct ws_message {
	uint8_t opcode;      /* WS_OP_TEXT/BINARY/CLOSE/PING/PONG */
	const uint8_t *data; /* valid until the next ws_reader_* call */
	size_t len;
};

/* max_message bounds one data message (all its fragments). 0 or -ENOMEM. */
int ws_reader_init(struct ws_reader *r, size_t max_message);
void ws_reader_free(struct ws_reader *r);
/* How many bytes ws_reader_feed takes now (call ws_reader_next until it
 * returns 0 to make room). */
size_t ws_reader_room(const struct ws_reader *r);
/* Append bytes read from the connection: 0 or -ENOBUFS. */
int ws_reader_feed(struct ws_reader *r, const void *data, size_t len);
/* The next complete message: 1 and *m filled, 0 when more bytes are
 * needed, or a negative errno (see above); after an error the reader
 * returns it again and again. */
int ws_reader_next(struct ws_reader *r, struct ws_message *m);

/* A close frame's payload: its code (1005 "no status" when empty) and
 * reason; -EPROTO when one byte long. */
int ws_close_parse(const uint8_t *data, size_t len, uint16_t *code, const char **reason,
		   size_t *reason_len);

/* ---- the opening handshake ---- */

/* Sec-WebSocket-Accept for a client's Sec-WebSocket-Key: base64 of the
 * SHA-1 (OpenSSL's libcrypto) of the key and the RFC's GUID, into out
 * (28 characters and a NUL). -EINVAL when the key is not the base64 of 16
 * bytes. */
#define WS_ACCEPT_LEN 28
int ws_accept_key(const char *key, char out[WS_ACCEPT_LEN + 1]);

/* ---- Kubernetes channel protocols ---- */

/* The subprotocols of k8s.io/apimachinery's wsstream, exec/attach and
 * port-forward alike. The v4 ones differ only in what the error channel
 * carries (a Status JSON); base64 ones send text messages whose first byte
 * is the channel as an ASCII digit and whose rest is base64. */
enum ws_proto {
	WS_PROTO_NONE,      /* no Sec-WebSocket-Protocol: binary channels */
	WS_PROTO_CHANNEL,   /* channel.k8s.io */
	WS_PROTO_BASE64,    /* base64.channel.k8s.io */
	WS_PROTO_V4,        /* v4.channel.k8s.io */
	WS_PROTO_V4_BASE64, /* v4.base64.channel.k8s.io */
};

enum ws_channel {
	WS_CH_STDIN = 0,
	WS_CH_STDOUT = 1,
	WS_CH_STDERR = 2,
	WS_CH_ERROR = 3,
	WS_CH_RESIZE = 4,
};

/* Pick the subprotocol from the Sec-WebSocket-Protocol header (NULL when
 * absent; a comma separated list, the client's order decides, as wsstream
 * does): 0 and *ret, or -EPROTONOSUPPORT when none offered is ours. */
int ws_proto_negotiate(const char *header, enum ws_proto *ret);
/* The same among the protocols of the mask allowed (bit 1 << p for each p;
 * WS_PROTO_NONE's bit for a client that names none): port-forward speaks
 * WS_PROTOS_PORTFWD only, as the kubelet's. */
#define WS_PROTOS_ALL                                                                              \
	((1u << WS_PROTO_NONE) | (1u << WS_PROTO_CHANNEL) | (1u << WS_PROTO_BASE64) |              \
	 (1u << WS_PROTO_V4) | (1u << WS_PROTO_V4_BASE64))
#define WS_PROTOS_PORTFWD ((1u << WS_PROTO_NONE) | (1u << WS_PROTO_V4) | (1u << WS_PROTO_V4_BASE64))
int ws_proto_negotiate_among(const char *header, unsigned allowed, enum ws_proto *ret);
/* The name to answer in Sec-WebSocket-Protocol; NULL for WS_PROTO_NONE
 * (send no header). */
const char *ws_proto_name(enum ws_proto p);
bool ws_proto_is_base64(enum ws_proto p);
bool ws_proto_is_v4(enum ws_proto p);

/* A data message (text or binary alike, as wsstream) received under
 * protocol p: its channel and its bytes (decoded), malloc'd and
 * NUL-terminated beyond *ret_len. An empty message has no channel: -ENODATA
 * (wsstream ignores those). -EINVAL for a control message or one that does
 * not decode (base64 protocols), -EMSGSIZE past max decoded bytes,
 * -ENOMEM. */
int ws_channel_decode(enum ws_proto p, const struct ws_message *m, size_t max, uint8_t *channel,
		      uint8_t **ret, size_t *ret_len);

/* A whole server frame carrying data on channel under protocol p, malloc'd
 * in *ret. 0, -EINVAL (a channel past 9 under a base64 protocol) or
 * -ENOMEM. */
int ws_channel_frame(enum ws_proto p, uint8_t channel, const void *data, size_t len, uint8_t **ret,
		     size_t *ret_len);

/* Port-forward: the channels of the i-th port of ?port= are 2i (data) and
 * 2i+1 (error); the first frame the server sends on each holds the port,
 * two bytes little-endian. Into out: 2. */
size_t ws_portfwd_prefix(uint16_t port, uint8_t out[2]);
/* The port from a ?port= value ("8080"): 0 or -EINVAL (not 1..65535). */
int ws_port_parse(const char *s, uint16_t *ret);
/* One ?port= value: a port or several separated by commas ("80,8080"),
 * appended to ports[*n..max): 0, -EINVAL (empty, or an element that is not
 * a port) or -E2BIG (more than max in all). */
int ws_ports_parse(const char *value, uint16_t *ports, size_t max, size_t *n);
