/* monitord/monitor/logfmt.h: the kubelet's CRI log format as cric-monitor
 * writes it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "monitord/monitor/logfmt.h"

/* What the writer got: every record, concatenated. */
struct sink {
	char *buf;
	size_t len, cap;
	unsigned records;
	int fail_at; /* record number whose emit fails (0: none) */
};

static int sink_emit(void *arg, const struct iovec *iov, int n)
{
	struct sink *s = arg;
	s->records++;
	if (s->fail_at && (int)s->records == s->fail_at)
		return -ENOSPC;
	assert_true(n >= 2 && n <= 4);
	for (int i = 0; i < n; i++) {
		if (s->len + iov[i].iov_len + 1 > s->cap) {
			s->cap = (s->len + iov[i].iov_len + 1) * 2;
			s->buf = realloc(s->buf, s->cap);
			assert_non_null(s->buf);
		}
		memcpy(s->buf + s->len, iov[i].iov_base, iov[i].iov_len);
		s->len += iov[i].iov_len;
	}
	s->buf[s->len] = '\0';
	return 0;
}

static const struct timespec T = { 1796587800, 123 }; /* 2026-12-06T20:10:00.000000123Z */

static void test_timestamp(void **state)
{
	(void)state;
	char buf[LOGFMT_TS_LEN + 1];
	assert_int_equal(logfmt_timestamp(&T, buf, sizeof(buf)), LOGFMT_TS_LEN);
	assert_string_equal(buf, "2026-12-06T20:10:00.000000123Z");
	const struct timespec epoch = { 0, 999999999 };
	assert_int_equal(logfmt_timestamp(&epoch, buf, sizeof(buf)), LOGFMT_TS_LEN);
	assert_string_equal(buf, "1970-01-01T00:00:00.999999999Z");
	assert_int_equal(logfmt_timestamp(&T, buf, LOGFMT_TS_LEN), 0); /* too small */
}

static void test_lines_and_streams(void **state)
{
	(void)state;
	struct logfmt_stream out, err;
	struct sink s = { 0 };
	logfmt_stream_init(&out, "stdout");
	logfmt_stream_init(&err, "stderr");
	/* A line cut over two reads, the other stream in between: its own
	 * record, never inside the first line. */
	assert_int_equal(logfmt_feed(&out, "hel", 3, &T, sink_emit, &s), 0);
	assert_int_equal(logfmt_feed(&err, "oops\n", 5, &T, sink_emit, &s), 0);
	assert_int_equal(logfmt_feed(&out, "lo\n\nbye", 7, &T, sink_emit, &s), 0);
	assert_int_equal(logfmt_flush(&err, &T, sink_emit, &s), 0); /* nothing pending */
	assert_int_equal(logfmt_flush(&out, &T, sink_emit, &s), 0);
	assert_string_equal(s.buf, "2026-12-06T20:10:00.000000123Z stderr F oops\n"
				   "2026-12-06T20:10:00.000000123Z stdout F hello\n"
				   "2026-12-06T20:10:00.000000123Z stdout F \n"
				   "2026-12-06T20:10:00.000000123Z stdout F bye\n");
	assert_int_equal(s.records, 4);
	free(s.buf);
}

/* Check the records of s: P parts of exactly LOGFMT_PART_MAX, then F; the
 * contents joined back must be want. */
static void check_split(const struct sink *s, const char *want, size_t want_len, unsigned parts)
{
	const size_t head = LOGFMT_TS_LEN + strlen(" stdout P ");
	size_t off = 0, got = 0;
	for (unsigned i = 0; i < parts; i++) {
		const char *rec = s->buf + off;
		const char *nl = memchr(rec + head, '\n', s->len - off - head);
		assert_non_null(nl);
		size_t clen = (size_t)(nl - rec) - head;
		assert_int_equal(rec[LOGFMT_TS_LEN + 8], i + 1 < parts ? 'P' : 'F');
		if (i + 1 < parts)
			assert_int_equal(clen, LOGFMT_PART_MAX);
		assert_memory_equal(rec + head, want + got, clen);
		got += clen;
		off += head + clen + 1;
	}
	assert_int_equal(got, want_len);
	assert_int_equal(off, s->len);
}

static void test_long_lines_split_at_16k(void **state)
{
	(void)state;
	/* A line of exactly one part, of one part and a byte, and 1 MiB fed in
	 * odd chunks. */
	const size_t sizes[] = { LOGFMT_PART_MAX, LOGFMT_PART_MAX + 1, 1024 * 1024 };
	const unsigned parts[] = { 1, 2, 64 };
	for (size_t k = 0; k < 3; k++) {
		size_t n = sizes[k];
		char *line = malloc(n + 1);
		assert_non_null(line);
		for (size_t i = 0; i < n; i++)
			line[i] = (char)('a' + i % 26);
		line[n] = '\n';
		struct logfmt_stream out;
		struct sink s = { 0 };
		logfmt_stream_init(&out, "stdout");
		for (size_t off = 0; off < n + 1;) {
			size_t c = n + 1 - off < 4093 ? n + 1 - off : 4093;
			assert_int_equal(logfmt_feed(&out, line + off, c, &T, sink_emit, &s), 0);
			off += c;
		}
		assert_int_equal(out.len, 0);
		assert_int_equal(s.records, parts[k]);
		check_split(&s, line, n, parts[k]);
		free(line);
		free(s.buf);
	}
}

static void test_final_line_without_newline(void **state)
{
	(void)state;
	struct logfmt_stream out;
	struct sink s = { 0 };
	logfmt_stream_init(&out, "stdout");
	char big[LOGFMT_PART_MAX + 10];
	memset(big, 'z', sizeof(big));
	assert_int_equal(logfmt_feed(&out, big, sizeof(big), &T, sink_emit, &s), 0);
	assert_int_equal(s.records, 1); /* one P part; 10 bytes wait */
	assert_int_equal(logfmt_flush(&out, &T, sink_emit, &s), 0);
	check_split(&s, big, sizeof(big), 2);
	free(s.buf);
}

static void test_writer_error_stops_the_feed(void **state)
{
	(void)state;
	struct logfmt_stream out;
	struct sink s = { .fail_at = 2 };
	logfmt_stream_init(&out, "stdout");
	assert_int_equal(logfmt_feed(&out, "a\nb\nc\n", 6, &T, sink_emit, &s), -ENOSPC);
	assert_int_equal(s.records, 2);
	assert_int_equal(out.len, 0);
	free(s.buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timestamp),
		cmocka_unit_test(test_lines_and_streams),
		cmocka_unit_test(test_long_lines_split_at_16k),
		cmocka_unit_test(test_final_line_without_newline),
		cmocka_unit_test(test_writer_error_stops_the_feed),
	};
	return cmocka_run_group_tests_name("monitor-logfmt", tests, NULL, NULL);
}
