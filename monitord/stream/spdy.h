/* SPDY/3.1 framing for one connection (the server's side): a pure codec,
 * no I/O. Bytes read from the connection go in through spdy_input(), which
 * calls back for what the peer does on its streams; what we send is framed
 * into s->out, which the caller writes to the connection and then drops
 * with spdy_out_consumed().
 *
 * Frames: SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING (answered),
 * GOAWAY, HEADERS, WINDOW_UPDATE and data. Header blocks are zlib streams
 * with the SPDY/3 dictionary, one inflate and one deflate context per
 * connection. Bounds (hostile input): a control frame's payload up to
 * SPDY_CONTROL_MAX, a header block inflated up to SPDY_HEADERS_MAX with up
 * to SPDY_HEADER_PAIRS_MAX pairs, up to SPDY_STREAMS_MAX open streams, and
 * data frames delivered in pieces as they arrive (never buffered whole).
 * Anything malformed is fatal to the connection: spdy_input() queues a
 * GOAWAY (PROTOCOL_ERROR) and answers -EPROTO; the caller flushes s->out
 * and closes. A frame for an unknown stream gets RST_STREAM INVALID_STREAM.
 *
 * Flow control (SPDY/3.1 windows, 64 KiB to start, per stream and per
 * connection): what we receive is acknowledged with WINDOW_UPDATEs as the
 * caller reports it consumed (spdy_consumed()); a peer that sends past the
 * window is tolerated: the clients of this protocol (docker/spdystream, the
 * library of the kubelet, kubectl and crictl) implement no flow control,
 * and the caller bounds what it buffers by not reading the connection.
 * What we send honours the peer's windows once the peer shows it keeps them
 * (it sent a WINDOW_UPDATE or SETTINGS_INITIAL_WINDOW_SIZE); until then only
 * TCP limits us (spdy_send_room() answers SPDY_DATA_MAX).
 *
 * Not thread-safe: one connection, one thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

#define SPDY_CONTROL_MAX      (64 * 1024)
#define SPDY_HEADERS_MAX      (16 * 1024)
#define SPDY_HEADER_PAIRS_MAX 64
#define SPDY_STREAMS_MAX      64
#define SPDY_DATA_MAX         (32 * 1024) /* one data frame we send */
#define SPDY_WINDOW_INITIAL   65536

enum spdy_type {
	SPDY_SYN_STREAM = 1,
	SPDY_SYN_REPLY = 2,
	SPDY_RST_STREAM = 3,
	SPDY_SETTINGS = 4,
	SPDY_PING = 6,
	SPDY_GOAWAY = 7,
	SPDY_HEADERS = 8,
	SPDY_WINDOW_UPDATE = 9,
};

#define SPDY_FLAG_FIN            0x01
#define SPDY_FLAG_UNIDIRECTIONAL 0x02

/* RST_STREAM status codes. */
#define SPDY_RST_PROTOCOL_ERROR    1
#define SPDY_RST_INVALID_STREAM    2
#define SPDY_RST_REFUSED_STREAM    3
#define SPDY_RST_CANCEL            5
#define SPDY_RST_INTERNAL_ERROR    6
#define SPDY_RST_FLOW_CONTROL      7
#define SPDY_RST_STREAM_IN_USE     8
#define SPDY_RST_STREAM_ALREADY_CL 9
/* GOAWAY status codes. */
#define SPDY_GOAWAY_OK             0
#define SPDY_GOAWAY_PROTOCOL_ERROR 1
#define SPDY_GOAWAY_INTERNAL_ERROR 2

#define SPDY_SETTINGS_INITIAL_WINDOW_SIZE 7

/* The SPDY/3 header dictionary (for the tests and the fuzzer). */
extern const char spdy_dictionary[];
extern const size_t spdy_dictionary_len;

struct spdy_header {
	const char *name, *value; /* NUL-terminated copies, valid during the callback */
};

/* What the peer does; each returns 0, or <0 to end the connection (that
 * error is what spdy_input() returns). Optional: NULL ignores. */
struct spdy_callbacks {
	/* A new stream (headers: the names lowercase as SPDY/3 has them). */
	int (*syn_stream)(void *ud, uint32_t sid, const struct spdy_header *h, size_t n_h);
	/* Data on sid, possibly a frame in several pieces. */
	int (*data)(void *ud, uint32_t sid, const uint8_t *p, size_t n);
	/* The peer ended its side of sid (FIN). */
	int (*fin)(void *ud, uint32_t sid);
	/* The peer reset sid; the stream is gone. */
	int (*rst)(void *ud, uint32_t sid, uint32_t status);
	/* The peer goes away. */
	int (*goaway)(void *ud, uint32_t status);
};

struct spdy_stream {
	uint32_t id; /* 0: slot free */
	int64_t send_window;
	uint32_t recv_unacked;
	bool remote_fin, local_fin, replied;
};

struct spdy {
	const struct spdy_callbacks *cb;
	void *ud;
	z_stream inf, def;
	bool inf_ok, def_ok;
	/* the frame being read */
	uint8_t hdr[8];
	size_t hdr_len;
	bool in_data;
	uint32_t data_sid, left; /* bytes of the frame's payload still to come */
	uint8_t data_flags;
	uint8_t *ctl; /* SPDY_CONTROL_MAX */
	size_t ctl_len;
	/* An inflated header block and its NUL-ended pairs (SPDY_HEADERS_MAX
	 * each), at the first block: per connection, not per thread (a
	 * thread-local buffer costs every thread of monitord its pages). */
	uint8_t *hdr_raw;
	char *hdr_store;
	/* what we send */
	uint8_t *out;
	size_t out_len, out_cap;
	/* flow control */
	bool peer_fc;
	int64_t send_window;    /* the connection's */
	int32_t initial_window; /* the peer's for new streams */
	uint32_t recv_unacked;  /* the connection's */
	uint32_t last_peer_sid;
	bool goaway_sent, goaway_received;
	struct spdy_stream streams[SPDY_STREAMS_MAX];
};

int spdy_init(struct spdy *s, const struct spdy_callbacks *cb, void *ud);
/* Accepts a zeroed or done struct. */
void spdy_done(struct spdy *s);

/* Parse what was read; <0 ends the connection (a GOAWAY may be queued). */
int spdy_input(struct spdy *s, const uint8_t *p, size_t n);
/* The first n bytes of s->out were written. */
void spdy_out_consumed(struct spdy *s, size_t n);

/* SYN_REPLY (no headers) to the peer's stream sid. */
int spdy_reply(struct spdy *s, uint32_t sid);
/* How much spdy_data() may send on sid now (0: wait for a WINDOW_UPDATE). */
size_t spdy_send_room(const struct spdy *s, uint32_t sid);
/* Data on sid, in frames of SPDY_DATA_MAX at most; n within
 * spdy_send_room(). fin ends our side (n may be 0). */
int spdy_data(struct spdy *s, uint32_t sid, const void *p, size_t n, bool fin);
int spdy_rst(struct spdy *s, uint32_t sid, uint32_t status);
int spdy_goaway(struct spdy *s, uint32_t status);
/* The caller consumed n bytes of sid's data: the windows open again. */
int spdy_consumed(struct spdy *s, uint32_t sid, size_t n);
/* Whether sid is open (a SYN_STREAM seen, no RST since). */
bool spdy_stream_open(const struct spdy *s, uint32_t sid);
