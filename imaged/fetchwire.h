/* The wire between imaged and its transport helper cric-fetch (see
 * imaged/fetch.h): length-prefixed binary frames on one unix stream socket
 * per transfer. A frame is a 5-byte header (type, then the payload's length
 * as a big-endian u32) and at most FETCH_FRAME_MAX bytes of payload.
 *
 * imaged -> cric-fetch: the request, FETCH_REQ_* frames ending with
 * FETCH_REQ_END. cric-fetch -> imaged: FETCH_EV_HEADER (one response
 * header line as received), FETCH_EV_BODY (body bytes), then one
 * FETCH_EV_DONE (fetch_done_encode()) and the end of the stream.
 *
 * Both sides treat the other as hostile: an unknown type, a length over
 * FETCH_FRAME_MAX or a malformed FETCH_EV_DONE is -EBADMSG for that
 * transfer. Pure functions, except the reader and writer, which do I/O on
 * the fd they are given and block at most as said. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FETCH_FRAME_HDR   5
#define FETCH_FRAME_MAX   (64 * 1024)
#define FETCH_MSG_MAX     256 /* FETCH_EV_DONE's message, NUL included */
#define FETCH_MAX_HEADERS 16  /* FETCH_REQ_HEADER frames in one request */

enum fetch_type {
	/* request: strings (no NUL inside, none needed at the end) */
	FETCH_REQ_URL = 1,
	FETCH_REQ_PROTOCOLS,       /* "https" or "http,https"; also for redirects */
	FETCH_REQ_MAX_REDIRS,      /* decimal; absent: redirects are not followed */
	FETCH_REQ_CONNECT_TIMEOUT, /* decimal seconds */
	FETCH_REQ_TIMEOUT,         /* decimal seconds for the whole request; absent: none */
	FETCH_REQ_USER_AGENT,
	FETCH_REQ_HEADER, /* "Name: value" */
	FETCH_REQ_CA_FILE,
	FETCH_REQ_BEARER, /* a bearer token (Authorization, to the URL's host only) */
	FETCH_REQ_USER,   /* basic credentials, with FETCH_REQ_PASS */
	FETCH_REQ_PASS,
	FETCH_REQ_POST, /* a form body: the request is a POST */
	FETCH_REQ_END,
	/* events */
	FETCH_EV_HEADER = 32,
	FETCH_EV_BODY,
	FETCH_EV_DONE,
};

struct fetch_frame {
	uint8_t type;
	uint32_t len;
	const uint8_t *data; /* len bytes, inside the parsed buffer */
};

/* One frame at the start of buf (len bytes): 1 with *f and *used (header +
 * payload) set; 0 when buf holds only part of a frame; -EBADMSG for an
 * unknown type or a length over FETCH_FRAME_MAX. */
int fetch_frame_parse(const uint8_t *buf, size_t len, struct fetch_frame *f, size_t *used);
/* The header of a frame of type and len into hdr. */
void fetch_frame_header(uint8_t hdr[FETCH_FRAME_HDR], uint8_t type, uint32_t len);

/* How a transfer ended: err 0 (the response was received whole) or a
 * negative errno (a transport failure: -ECONNREFUSED, -EHOSTUNREACH,
 * -ETIMEDOUT, -ECONNRESET, -ELOOP, -EPROTO, -EIO...), the last response's
 * HTTP status (0 if none) and a printable message ("" when err is 0). */
struct fetch_done {
	int err;
	int status;
	char msg[FETCH_MSG_MAX];
};
/* Into buf (FETCH_FRAME_MAX bytes at least): the payload's length. */
size_t fetch_done_encode(const struct fetch_done *d, uint8_t *buf);
/* -EBADMSG unless an err in [-4095, 0], a status in [0, 999] and a message
 * of printable ASCII shorter than FETCH_MSG_MAX. */
int fetch_done_parse(const uint8_t *p, size_t n, struct fetch_done *ret);

/* A buffered reader of frames from fd. */
struct fetch_reader {
	int fd;
	size_t start, end;
	uint8_t buf[4 * (FETCH_FRAME_HDR + FETCH_FRAME_MAX)];
};
void fetch_reader_init(struct fetch_reader *r, int fd);
/* The next frame (valid until the next call): 1 with *f; 0 when nothing
 * complete came within timeout_ms (-1: wait); -ECONNRESET when the peer
 * closed or reset; -EBADMSG; another -errno of the
 * socket. */
int fetch_reader_next(struct fetch_reader *r, int timeout_ms, struct fetch_frame *f);

/* Write one whole frame to fd (blocking; MSG_NOSIGNAL: -EPIPE when the peer
 * went). */
int fetch_write_frame(int fd, uint8_t type, const void *data, size_t len);
/* fetch_write_frame() of a string; NULL writes nothing. */
int fetch_write_str(int fd, uint8_t type, const char *s);
