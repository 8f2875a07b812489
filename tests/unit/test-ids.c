/* common/ids.h: random hex ids and validation of ids from other processes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ids.h"

static bool all_lower_hex(const char *s)
{
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

static void test_random_hex_length_and_alphabet(void **state)
{
	(void)state;
	static const size_t sizes[] = { 0, 1, 8, 16, 32, 63, 64 };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char buf[129 + 8];
		memset(buf, 'X', sizeof(buf));
		assert_int_equal(id_random_hex(buf, 2 * sizes[i] + 1, sizes[i]), 0);
		assert_int_equal(strlen(buf), 2 * sizes[i]);
		assert_true(all_lower_hex(buf));
		/* Nothing written past the terminator. */
		assert_int_equal(buf[2 * sizes[i] + 1], 'X');
	}
	char id[65];
	assert_int_equal(id_random_hex(id, sizeof(id), 32), 0);
	assert_true(id_is_valid(id));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_random_hex_unique(void **state)
{
	(void)state;
	enum { N = 10000 };
	char(*ids)[17] = calloc(N, sizeof(*ids));
	char **sorted = calloc(N, sizeof(char *));
	assert_non_null(ids);
	assert_non_null(sorted);
	for (int i = 0; i < N; i++) {
		assert_int_equal(id_random_hex(ids[i], sizeof(ids[i]), 8), 0);
		sorted[i] = ids[i];
	}
	qsort(sorted, N, sizeof(char *), cmp_str);
	for (int i = 1; i < N; i++)
		assert_string_not_equal(sorted[i - 1], sorted[i]);

	/* Every hex digit shows up in every position over many ids (the
	 * generator is not stuck on a few values). */
	for (int pos = 0; pos < 16; pos++) {
		unsigned seen = 0;
		for (int i = 0; i < N; i++) {
			char c = ids[i][pos];
			seen |= 1u << (c <= '9' ? c - '0' : c - 'a' + 10);
		}
		assert_int_equal(seen, 0xffff);
	}
	free(sorted);
	free(ids);
}

static void test_random_hex_bad_sizes(void **state)
{
	(void)state;
	char buf[256];
	memset(buf, 'X', sizeof(buf));
	/* Buffer one short of 2*n+1. */
	assert_int_equal(id_random_hex(buf, 16, 8), -EINVAL);
	assert_int_equal(id_random_hex(buf, 0, 0), -EINVAL);
	assert_int_equal(id_random_hex(buf, 128, 64), -EINVAL);
	/* More than the 64 bytes the generator supports. */
	assert_int_equal(id_random_hex(buf, sizeof(buf), 65), -EINVAL);
	assert_int_equal(id_random_hex(buf, sizeof(buf), SIZE_MAX), -EINVAL);
	assert_int_equal(id_random_hex(buf, SIZE_MAX, SIZE_MAX / 2 + 1), -EINVAL);
	/* Failed calls leave the buffer alone. */
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 'X');
	/* The exact minimum works. */
	assert_int_equal(id_random_hex(buf, 129, 64), 0);
	assert_int_equal(strlen(buf), 128);
}

/* random_bytes: fills the whole buffer (a 4 KiB one: more than one
 * getrandom() page), never the same twice, and 0 bytes is fine. */
static void test_random_bytes(void **state)
{
	(void)state;
	static unsigned char a[4096], b[4096], zero[4096];
	assert_int_equal(random_bytes(a, sizeof(a)), 0);
	assert_int_equal(random_bytes(b, sizeof(b)), 0);
	assert_memory_not_equal(a, b, sizeof(a));
	assert_memory_not_equal(a + sizeof(a) - 32, zero, 32);
	assert_int_equal(random_bytes(a, 0), 0);
}

static void test_id_is_valid(void **state)
{
	(void)state;
	char id[80];
	memset(id, 'a', 64);
	id[64] = '\0';
	assert_true(id_is_valid(id));
	memcpy(id, "0123456789abcdef", 16);
	assert_true(id_is_valid(id));

	assert_false(id_is_valid(NULL));
	assert_false(id_is_valid(""));
	id[63] = '\0'; /* 63 chars */
	assert_false(id_is_valid(id));
	id[63] = 'a';
	id[64] = 'a';
	id[65] = '\0'; /* 65 chars */
	assert_false(id_is_valid(id));
	id[64] = '\0';

	static const char bad[] = { 'A', 'F', 'g',  'z',    '-',    '.',
				    '/', ' ', '\n', '\x7f', '\x80', '\xff' };
	for (size_t i = 0; i < sizeof(bad); i++) {
		char t[65];
		memcpy(t, id, sizeof(t));
		t[i * 5 % 64] = bad[i];
		assert_false(id_is_valid(t));
	}
	memset(id, 'A', 64);
	assert_false(id_is_valid(id));
}

static void test_safe_token(void **state)
{
	(void)state;
	assert_true(id_is_safe_token("a", 64));
	assert_true(id_is_safe_token("Req-1_x.y", 64));
	assert_true(id_is_safe_token("a..b", 64));
	assert_true(id_is_safe_token("0123456789abcdefABCDEF", 64));

	assert_false(id_is_safe_token(NULL, 64));
	assert_false(id_is_safe_token("", 64));
	assert_false(id_is_safe_token(".", 64));
	assert_false(id_is_safe_token("..", 64));
	assert_false(id_is_safe_token(".hidden", 64));
	assert_false(id_is_safe_token("../etc/passwd", 64));
	assert_false(id_is_safe_token("a/b", 64));
	assert_false(id_is_safe_token("/", 64));
	assert_false(id_is_safe_token("a b", 64));
	assert_false(id_is_safe_token(" a", 64));
	assert_false(id_is_safe_token("a\n", 64));
	assert_false(id_is_safe_token("a\t", 64));
	assert_false(id_is_safe_token("a:b", 64));
	assert_false(id_is_safe_token("a;b", 64));
	assert_false(id_is_safe_token("a%b", 64));
	assert_false(id_is_safe_token("caf\xc3\xa9", 64));
	assert_false(id_is_safe_token("\x7f", 64));

	/* Length: exactly max is fine, max+1 is not. */
	char t[200];
	memset(t, 'x', sizeof(t));
	t[64] = '\0';
	assert_true(id_is_safe_token(t, 64));
	t[64] = 'x';
	t[65] = '\0';
	assert_false(id_is_safe_token(t, 64));
	t[8] = '\0';
	assert_true(id_is_safe_token(t, 8));
	assert_false(id_is_safe_token(t, 7));
	assert_false(id_is_safe_token("a", 0));
	memset(t, 'x', sizeof(t) - 1);
	t[sizeof(t) - 1] = '\0';
	assert_false(id_is_safe_token(t, 64));
}

/* Walk ids as a manager's lookup does; the index of the match or -errno. */
static int find(const char *const *ids, size_t n, const char *want, char *msg, size_t msgsz)
{
	struct cric_err err = { { 0 } };
	struct id_match im;
	int r = id_match_begin(&im, "thing", want, &err);
	for (size_t i = 0; r == 0 && i < n; i++)
		if (id_match_step(&im, ids[i], i))
			break;
	if (r == 0)
		r = id_match_end(&im, &err);
	snprintf(msg, msgsz, "%s", err.msg);
	return r < 0 ? r : (int)im.index;
}

static void test_id_match(void **state)
{
	(void)state;
	char full[65], other[65], msg[256];
	memset(full, 'a', 64);
	full[64] = '\0';
	memcpy(other, full, sizeof(full));
	other[63] = 'b'; /* shares 63 characters with full */
	const char *ids[] = { "abc0", full, other, "ffff" };
	assert_int_equal(find(ids, 4, full, msg, sizeof(msg)), 1);
	assert_int_equal(find(ids, 4, other, msg, sizeof(msg)), 2);
	assert_int_equal(find(ids, 4, "ff", msg, sizeof(msg)), 3);
	assert_int_equal(find(ids, 4, "aaaa", msg, sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "thing id prefix \"aaaa\" is ambiguous"));
	assert_int_equal(find(ids, 4, "abc0", msg, sizeof(msg)), 0);
	assert_int_equal(find(ids, 4, "0123", msg, sizeof(msg)), -ENOENT);
	assert_non_null(strstr(msg, "thing \"0123\" not found"));
	assert_int_equal(find(ids, 4, "", msg, sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "thing id is empty"));
	assert_int_equal(find(ids, 4, "../x", msg, sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "invalid thing id"));
	assert_int_equal(find(ids, 0, "ab", msg, sizeof(msg)), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_hex_length_and_alphabet),
		cmocka_unit_test(test_random_hex_unique),
		cmocka_unit_test(test_random_hex_bad_sizes),
		cmocka_unit_test(test_random_bytes),
		cmocka_unit_test(test_id_is_valid),
		cmocka_unit_test(test_safe_token),
		cmocka_unit_test(test_id_match),
	};
	return cmocka_run_group_tests_name("ids", tests, NULL, NULL);
}
