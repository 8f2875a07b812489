/* The kubelet's CRI log format; see logfmt.h. */
#include "logfmt.h"

#include <stdio.h>
#include <string.h>

void logfmt_stream_init(struct logfmt_stream *s, const char *name)
{
	s->name = name;
	s->len = 0;
}

size_t logfmt_timestamp(const struct timespec *ts, char *buf, size_t size)
{
	struct tm tm;
	if (size < LOGFMT_TS_LEN + 1 || !gmtime_r(&ts->tv_sec, &tm) || tm.tm_year + 1900 > 9999 ||
	    tm.tm_year + 1900 < 0)
		return 0;
	int n = snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			 (long)ts->tv_nsec);
	return n == LOGFMT_TS_LEN ? (size_t)n : 0;
}

/* One record: a's bytes, then b's (the buffered start and the rest). */
static int emit_record(const struct logfmt_stream *s, const struct timespec *now, char tag,
		       const char *a, size_t alen, const char *b, size_t blen, logfmt_emit_fn emit,
		       void *arg)
{
	char head[LOGFMT_HEADER_MAX];
	char ts[LOGFMT_TS_LEN + 1];
	static const struct timespec epoch = { 0, 0 };
	if (logfmt_timestamp(now, ts, sizeof(ts)) == 0)
		logfmt_timestamp(&epoch, ts, sizeof(ts));
	int h = snprintf(head, sizeof(head), "%s %s %c ", ts, s->name, tag);
	if (h < 0 || (size_t)h >= sizeof(head))
		return -22; /* -EINVAL: a stream name too long, a bug */
	struct iovec iov[4];
	int n = 0;
	iov[n++] = (struct iovec){ head, (size_t)h };
	if (alen)
		iov[n++] = (struct iovec){ (void *)a, alen };
	if (blen)
		iov[n++] = (struct iovec){ (void *)b, blen };
	iov[n++] = (struct iovec){ "\n", 1 };
	return emit(arg, iov, n);
}

int logfmt_feed(struct logfmt_stream *s, const char *data, size_t n, const struct timespec *now,
		logfmt_emit_fn emit, void *arg)
{
	while (n > 0) {
		size_t room = LOGFMT_PART_MAX - s->len;
		/* A '\n' right after a full part still ends it as F. */
		const char *nl = memchr(data, '\n', n < room + 1 ? n : room + 1);
		int r;
		if (nl) {
			/* A whole line: the buffered start, then up to the '\n'. */
			size_t k = (size_t)(nl - data);
			r = emit_record(s, now, 'F', s->buf, s->len, data, k, emit, arg);
			s->len = 0;
			data += k + 1;
			n -= k + 1;
		} else if (n > room) {
			/* A full part, and more than it without a '\n'. (A part
			 * that just fills the buffer waits: a '\n' may follow.) */
			r = emit_record(s, now, 'P', s->buf, s->len, data, room, emit, arg);
			s->len = 0;
			data += room;
			n -= room;
		} else {
			memcpy(s->buf + s->len, data, n);
			s->len += n;
			return 0;
		}
		if (r < 0)
			return r;
	}
	return 0;
}

int logfmt_flush(struct logfmt_stream *s, const struct timespec *now, logfmt_emit_fn emit,
		 void *arg)
{
	if (s->len == 0)
		return 0;
	size_t len = s->len;
	s->len = 0;
	return emit_record(s, now, 'F', s->buf, len, NULL, 0, emit, arg);
}
