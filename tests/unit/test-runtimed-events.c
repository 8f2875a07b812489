/* runtimed/events.h: the event log keeps the newest events within its count
 * and byte bounds, oldest first, consecutive seqs with visible gaps; its
 * bytes wrap around its arena intact; and its resident memory follows what
 * it holds, not what was ever written through it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"

#include "runtimed/events.h"

/* An event's bytes: its seq's low byte, then a count up from it. */
static size_t fill(uint8_t *buf, uint64_t seq, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seq + i);
	return len;
}

static int64_t past(void)
{
	return 1; /* an absolute deadline long gone: never wait */
}

static void free_copies(struct event_copy *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].data);
	free(v);
}

/* Everything held after `after`: the copies, checked against fill(). */
static size_t read_all(struct event_log *l, uint64_t after, uint64_t *first, uint64_t *last,
		       size_t *bytes)
{
	struct event_copy *v = NULL;
	size_t n = 0;
	assert_int_equal(
	    event_log_read(l, event_log_epoch(l), after, SIZE_MAX, SIZE_MAX, past(), NULL, &v, &n),
	    0);
	size_t total = 0;
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			assert_int_equal(v[i].seq, v[i - 1].seq + 1);
		for (size_t j = 0; j < v[i].len; j++)
			assert_int_equal(v[i].data[j], (uint8_t)(v[i].seq + j));
		total += v[i].len;
	}
	if (n) {
		*first = v[0].seq;
		*last = v[n - 1].seq;
	}
	*bytes = total;
	free_copies(v, n);
	return n;
}

static void test_count_bound_and_gap(void **state)
{
	(void)state;
	struct event_log *l = NULL;
	assert_int_equal(event_log_new(0, 4096, &l), -EINVAL);
	assert_int_equal(event_log_new(4, 0, &l), -EINVAL);
	assert_int_equal(event_log_new(4, 1 << 20, &l), 0);
	uint8_t buf[64];
	uint64_t first = 0, last = 0;
	size_t bytes = 0;
	assert_int_equal(read_all(l, 0, &first, &last, &bytes), 0);
	for (uint64_t seq = 1; seq <= 10; seq++)
		assert_int_equal(event_log_publish(l, buf, fill(buf, seq, seq)), 0);
	/* The newest four; a reader after 2 lost 3 to 6 and sees it. */
	assert_int_equal(read_all(l, 2, &first, &last, &bytes), 4);
	assert_int_equal(first, 7);
	assert_int_equal(last, 10);
	assert_int_equal(bytes, 7 + 8 + 9 + 10);
	assert_int_equal(read_all(l, 8, &first, &last, &bytes), 2);
	assert_int_equal(first, 9);
	assert_int_equal(read_all(l, 10, &first, &last, &bytes), 0);
	/* A zero-length event is one too. */
	assert_int_equal(event_log_publish(l, buf, 0), 0);
	assert_int_equal(read_all(l, 10, &first, &last, &bytes), 1);
	assert_int_equal(first, 11);
	assert_int_equal(bytes, 0);
	/* Another epoch gets all held at once, whatever its seq. */
	struct event_copy *v = NULL;
	size_t n = 0;
	assert_int_equal(event_log_read(l, event_log_epoch(l) + 1, 1000, SIZE_MAX, SIZE_MAX,
					INT64_MAX, NULL, &v, &n),
			 0);
	assert_int_equal(n, 4);
	assert_int_equal(v[0].seq, 8);
	free_copies(v, n);
	/* Reads bounded by count, and by bytes beyond the first. */
	assert_int_equal(
	    event_log_read(l, event_log_epoch(l), 0, 2, SIZE_MAX, past(), NULL, &v, &n), 0);
	assert_int_equal(n, 2);
	free_copies(v, n);
	assert_int_equal(
	    event_log_read(l, event_log_epoch(l), 0, SIZE_MAX, 1, past(), NULL, &v, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(v[0].len, 8);
	free_copies(v, n);
	assert_null(event_log_free(l));
	assert_null(event_log_free(NULL));
}

/* Events of varied sizes through a log of three pages, over many laps:
 * after each, what is held is the newest run, intact, within the bound. */
static void test_bytes_bound_wraps_intact(void **state)
{
	(void)state;
	struct event_log *l = NULL;
	const size_t max = 3 * 4096;
	assert_int_equal(event_log_new(64, max, &l), 0);
	static uint8_t buf[3 * 4096 + 4096];
	/* Longer than the log: refused, and its seq is a gap. */
	assert_int_equal(event_log_publish(l, buf, sizeof(buf)), -EMSGSIZE);
	uint64_t seq = 2;
	srand(7);
	for (int i = 0; i < 20000; i++, seq++) {
		size_t len = (size_t)rand() % (i % 100 == 0 ? max : 1500);
		assert_int_equal(event_log_publish(l, buf, fill(buf, seq, len)), 0);
		uint64_t first = 0, last = 0;
		size_t bytes = 0;
		size_t n = read_all(l, 0, &first, &last, &bytes);
		assert_true(n >= 1 && n <= 64);
		assert_int_equal(last, seq);
		assert_int_equal(last - first + 1, n);
		assert_true(bytes <= max);
	}
	/* Every held event from the start, once the log is emptied by one that
	 * fills it. */
	assert_int_equal(event_log_publish(l, buf, fill(buf, seq, max)), 0);
	uint64_t first = 0, last = 0;
	size_t bytes = 0;
	assert_int_equal(read_all(l, 0, &first, &last, &bytes), 1);
	assert_int_equal(first, seq);
	assert_int_equal(bytes, max);
	event_log_free(l);
}

static long rss_anon_kb(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	assert_non_null(f);
	char line[256];
	long kb = -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "RssAnon: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* runtimed's bounds (1,024 events, 16 MiB): 64 MiB of ~1 KB events through
 * it keep about what the newest 1,024 take, not the 16 MiB they crossed. */
static void test_resident_follows_held(void **state)
{
	(void)state;
	struct event_log *l = NULL;
	assert_int_equal(event_log_new(1024, 16u << 20, &l), 0);
	long before = rss_anon_kb();
	uint8_t buf[1100];
	for (uint64_t seq = 1; seq <= 64 * 1024; seq++)
		assert_int_equal(event_log_publish(l, buf, fill(buf, seq, 900 + seq % 200)), 0);
	long held = rss_anon_kb() - before;
	print_message("resident growth with 1,024 events of ~1 KB held: %ld KiB\n", held);
	assert_true(held < 2048);
	uint64_t first = 0, last = 0;
	size_t bytes = 0;
	assert_int_equal(read_all(l, 0, &first, &last, &bytes), 1024);
	assert_int_equal(last, 64 * 1024);
	event_log_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_count_bound_and_gap),
		cmocka_unit_test(test_bytes_bound_wraps_intact),
		cmocka_unit_test(test_resident_follows_held),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
