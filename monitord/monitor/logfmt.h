/* The kubelet's CRI log format, as cric-monitor writes it (pure: no I/O).
 *
 * Each record is one line:
 *   <timestamp> <stream> <tag> <content>\n
 * timestamp: RFC 3339 in UTC with nanoseconds, always 9 digits
 *            ("2026-12-06T20:10:00.000000123Z"), which the kubelet's parser
 *            (Go's time.RFC3339Nano) reads and which sorts as text;
 * stream:    "stdout" or "stderr";
 * tag:       "F" for the last (or only) part of a line, "P" for a part of a
 *            longer one; a line longer than LOGFMT_PART_MAX is cut into P
 *            parts of exactly LOGFMT_PART_MAX bytes and ends with an F part.
 * content:   the line's bytes without its '\n' (any other byte as is).
 *
 * Each stream keeps its unfinished line in its own buffer, so the two
 * streams never interleave within a line; a record is handed to the emit
 * callback whole, as one iovec array (one writev). A line that never gets
 * its '\n' is written as F by logfmt_flush() (at exit).
 */
#pragma once

#include <stddef.h>
#include <sys/uio.h>
#include <time.h>

#define LOGFMT_PART_MAX (16 * 1024)
/* "2026-12-06T20:10:00.000000123Z" */
#define LOGFMT_TS_LEN 30
/* timestamp, stream, tag and blanks */
#define LOGFMT_HEADER_MAX 48

struct logfmt_stream {
	const char *name; /* "stdout" or "stderr" */
	size_t len;       /* bytes of the unfinished line in buf */
	char buf[LOGFMT_PART_MAX];
};

/* Hands one record (header, content, newline: n <= 3 entries, to write
 * with one writev) to its writer; a negative errno stops the feed. */
typedef int (*logfmt_emit_fn)(void *arg, const struct iovec *iov, int n);

void logfmt_stream_init(struct logfmt_stream *s, const char *name);

/* Write the timestamp of ts (UTC) into buf (size >= LOGFMT_TS_LEN + 1).
 * Returns its length, or 0 for a time gmtime() cannot express. */
size_t logfmt_timestamp(const struct timespec *ts, char *buf, size_t size);

/* Feed n bytes the stream produced at time now: every completed line and
 * every full LOGFMT_PART_MAX part goes to emit; the rest waits in s. Returns
 * 0 or emit's error (what was emitted before stays emitted; the rest of
 * data is dropped). */
int logfmt_feed(struct logfmt_stream *s, const char *data, size_t n, const struct timespec *now,
		logfmt_emit_fn emit, void *arg);

/* Emit the unfinished line, if any, as an F record (the stream ended). */
int logfmt_flush(struct logfmt_stream *s, const struct timespec *now, logfmt_emit_fn emit,
		 void *arg);
