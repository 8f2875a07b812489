/* common/base64.h: RFC 4648 vectors, padding, bounds, garbage. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64.h"
#include "common/macro.h"

static void test_vectors(void **state)
{
	(void)state;
	static const char *const plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
	static const char *const coded[] = { "",         "Zg==",     "Zm8=",    "Zm9v",
					     "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };
	for (size_t i = 0; i < ARRAY_SIZE(plain); i++) {
		char *e = base64_encode(plain[i], strlen(plain[i]));
		assert_non_null(e);
		assert_string_equal(e, coded[i]);
		free(e);
		uint8_t *d = NULL;
		size_t n = 99;
		assert_int_equal(base64_decode(coded[i], 64, &d, &n), 0);
		assert_int_equal(n, strlen(plain[i]));
		assert_memory_equal(d, plain[i], n);
		assert_int_equal(d[n], '\0');
		free(d);
	}
	/* Binary, with NULs. */
	const uint8_t bin[] = { 0, 0xff, 0x10, 0, 0x80 };
	char *e = base64_encode(bin, sizeof(bin));
	uint8_t *d = NULL;
	size_t n = 0;
	assert_int_equal(base64_decode(e, sizeof(bin), &d, &n), 0);
	assert_int_equal(n, sizeof(bin));
	assert_memory_equal(d, bin, n);
	free(d);
	free(e);
}

static void test_refused(void **state)
{
	(void)state;
	static const char *const bad[] = { "Zg=", "Z", "Zm9v!A==", "Zm 9v", "====" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		uint8_t *d = (uint8_t *)0x1;
		size_t n = 7;
		if (base64_decode(bad[i], 64, &d, &n) != -EINVAL)
			fail_msg("\"%s\" accepted", bad[i]);
		assert_ptr_equal(d, (uint8_t *)0x1); /* outputs untouched on failure */
		assert_int_equal(n, 7);
	}
	/* Longer than max. */
	uint8_t *d = NULL;
	size_t n = 0;
	assert_int_equal(base64_decode("Zm9vYmFy", 5, &d, &n), -EINVAL);
	assert_int_equal(base64_decode("Zm9vYmFy", 6, &d, &n), 0);
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_refused),
	};
	return cmocka_run_group_tests_name("base64", tests, NULL, NULL);
}
