/* common/error.h: error detail composition and the errno -> gRPC mapping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "testutil.h"

static void test_err_set(void **state)
{
	(void)state;
	struct cric_err e = { { 0 } };
	assert_int_equal(err_set(&e, -ENOENT, "pod \"%s\" not found (%d)", "web", 3), -ENOENT);
	assert_string_equal(e.msg, "pod \"web\" not found (3)");
	/* A second set replaces, it does not append. */
	assert_int_equal(err_set(&e, -EINVAL, "x"), -EINVAL);
	assert_string_equal(e.msg, "x");
	/* The return value is r whatever it is. */
	assert_int_equal(err_set(&e, 0, "ok"), 0);
	assert_int_equal(err_set(&e, -EIO, "%s", ""), -EIO);
	assert_string_equal(e.msg, "");
}

static void test_err_null(void **state)
{
	(void)state;
	assert_int_equal(err_set(NULL, -EEXIST, "ignored %s", "x"), -EEXIST);
	assert_int_equal(err_prefix(NULL, -EPERM, "ctx %d", 1), -EPERM);
}

static void test_err_prefix_compose(void **state)
{
	(void)state;
	struct cric_err e = { { 0 } };
	int r = err_set(&e, -EACCES, "401");
	r = err_prefix(&e, r, "fetch manifest");
	r = err_prefix(&e, r, "pull %s", "docker.io/library/busybox");
	assert_int_equal(r, -EACCES);
	assert_string_equal(e.msg, "pull docker.io/library/busybox: fetch manifest: 401");
}

static void test_err_prefix_empty_uses_strerror(void **state)
{
	(void)state;
	struct cric_err e = { { 0 } };
	assert_int_equal(err_prefix(&e, -ENOENT, "open %s", "x"), -ENOENT);
	char want[256];
	snprintf(want, sizeof(want), "open x: %s", strerror(ENOENT));
	assert_string_equal(e.msg, want);
}

static void test_err_truncation(void **state)
{
	(void)state;
	struct cric_err e;
	char big[4000];
	memset(big, 'm', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';

	/* Too long a message is cut, always terminated. */
	err_set(&e, -EINVAL, "%s", big);
	assert_int_equal(strlen(e.msg), sizeof(e.msg) - 1);

	/* Prefixing a full message keeps the context in front and stays bounded. */
	err_prefix(&e, -EINVAL, "ctx");
	assert_int_equal(strlen(e.msg), sizeof(e.msg) - 1);
	assert_memory_equal(e.msg, "ctx: mmm", 8);

	/* A huge context is bounded too. */
	err_set(&e, -EINVAL, "inner");
	err_prefix(&e, -EINVAL, "%s", big);
	assert_true(strlen(e.msg) < sizeof(e.msg));
	assert_int_equal(e.msg[0], 'm');

	/* A message left unterminated by a caller is not read past its end. */
	memset(e.msg, 'z', sizeof(e.msg));
	err_prefix(&e, -EINVAL, "c");
	assert_int_equal(strlen(e.msg), sizeof(e.msg) - 1);
	assert_memory_equal(e.msg, "c: zz", 5);
}

static void test_grpc_code_from_errno(void **state)
{
	(void)state;
	static const struct {
		int err;
		enum cric_code code;
	} map[] = {
		{ 0, CODE_OK },
		{ EINVAL, CODE_INVALID_ARGUMENT },
		{ E2BIG, CODE_INVALID_ARGUMENT },
		{ ENAMETOOLONG, CODE_INVALID_ARGUMENT },
		{ EBADMSG, CODE_INVALID_ARGUMENT },
		{ ENOENT, CODE_NOT_FOUND },
		{ ESRCH, CODE_NOT_FOUND },
		{ EEXIST, CODE_ALREADY_EXISTS },
		{ EPERM, CODE_PERMISSION_DENIED },
		{ EACCES, CODE_PERMISSION_DENIED },
		{ ENOMEM, CODE_RESOURCE_EXHAUSTED },
		{ ENOSPC, CODE_RESOURCE_EXHAUSTED },
		{ EMFILE, CODE_RESOURCE_EXHAUSTED },
		{ ENFILE, CODE_RESOURCE_EXHAUSTED },
		{ EDQUOT, CODE_RESOURCE_EXHAUSTED },
		{ EBUSY, CODE_FAILED_PRECONDITION },
		{ ENOTEMPTY, CODE_FAILED_PRECONDITION },
		{ ENOEXEC, CODE_FAILED_PRECONDITION },
		{ ENOSYS, CODE_UNIMPLEMENTED },
		{ EOPNOTSUPP, CODE_UNIMPLEMENTED },
		{ ETIMEDOUT, CODE_DEADLINE_EXCEEDED },
		{ ECANCELED, CODE_CANCELLED },
		{ ECONNREFUSED, CODE_UNAVAILABLE },
		{ ECONNRESET, CODE_UNAVAILABLE },
		{ EHOSTDOWN, CODE_UNAVAILABLE },
		{ ENOTCONN, CODE_UNAVAILABLE },
		{ EAGAIN, CODE_UNAVAILABLE },
		{ ERANGE, CODE_OUT_OF_RANGE },
		/* Anything else is INTERNAL. */
		{ EIO, CODE_INTERNAL },
		{ ENOTTY, CODE_INTERNAL },
		{ EXDEV, CODE_INTERNAL },
		{ 4095, CODE_INTERNAL },
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		/* Negative errno is the convention; the positive form maps the same. */
		assert_int_equal(grpc_code_from_errno(-map[i].err), map[i].code);
		assert_int_equal(grpc_code_from_errno(map[i].err), map[i].code);
	}
	assert_int_equal(grpc_code_from_errno(INT_MAX), CODE_INTERNAL);
	assert_int_equal(grpc_code_from_errno(-INT_MAX), CODE_INTERNAL);
}

static int map_int_min(void *arg)
{
	(void)arg;
	return grpc_code_from_errno(INT_MIN) == CODE_INTERNAL ? 0 : 42;
}

/* A handler may return any negative int; INT_MIN has no positive form, so
 * "-r" must not be computed in int. Run in a child: the bug crashes (plain
 * build) or makes UBSan exit. */
static void test_grpc_code_from_errno_int_min(void **state)
{
	(void)state;
	int st = run_in_child(map_int_min, NULL, 10);
	if (WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) != 0 && WEXITSTATUS(st) != 42))
		FAIL_REGRESSION("grpc_code_from_errno(INT_MIN) crashes (status 0x%x): -INT_MIN "
				"overflows and the switch's table is indexed out of bounds",
				(unsigned)st);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* A peer's code turned into an errno maps back to the same code, except
 * the ones no errno stands for, which become INTERNAL. */
static void test_errno_from_grpc_code_round_trips(void **state)
{
	(void)state;
	assert_int_equal(errno_from_grpc_code(CODE_OK), 0);
	for (unsigned c = 1; c <= CODE_MAX; c++) {
		int r = errno_from_grpc_code(c);
		assert_true(r < 0);
		bool lossy = c == CODE_UNKNOWN || c == CODE_ABORTED || c == CODE_INTERNAL ||
			     c == CODE_DATA_LOSS || c == CODE_UNAUTHENTICATED;
		assert_int_equal(grpc_code_from_errno(r), lossy ? CODE_INTERNAL : c);
	}
	assert_int_equal(errno_from_grpc_code(CODE_MAX + 1), -EIO);
}

static void test_grpc_code_name(void **state)
{
	(void)state;
	static const char *const names[] = {
		"OK",
		"CANCELLED",
		"UNKNOWN",
		"INVALID_ARGUMENT",
		"DEADLINE_EXCEEDED",
		"NOT_FOUND",
		"ALREADY_EXISTS",
		"PERMISSION_DENIED",
		"RESOURCE_EXHAUSTED",
		"FAILED_PRECONDITION",
		"ABORTED",
		"OUT_OF_RANGE",
		"UNIMPLEMENTED",
		"INTERNAL",
		"UNAVAILABLE",
		"DATA_LOSS",
		"UNAUTHENTICATED",
	};
	assert_int_equal(sizeof(names) / sizeof(names[0]), CODE_MAX + 1);
	for (unsigned c = 0; c <= CODE_MAX; c++)
		assert_string_equal(grpc_code_name(c), names[c]);
	assert_string_equal(grpc_code_name(CODE_UNAUTHENTICATED), "UNAUTHENTICATED");
	assert_string_equal(grpc_code_name(CODE_MAX + 1), "UNKNOWN");
	assert_string_equal(grpc_code_name(1000), "UNKNOWN");
	assert_string_equal(grpc_code_name(UINT_MAX), "UNKNOWN");
	assert_string_equal(grpc_code_name((unsigned)-1), "UNKNOWN");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_err_set),
		cmocka_unit_test(test_errno_from_grpc_code_round_trips),
		cmocka_unit_test(test_err_null),
		cmocka_unit_test(test_err_prefix_compose),
		cmocka_unit_test(test_err_prefix_empty_uses_strerror),
		cmocka_unit_test(test_err_truncation),
		cmocka_unit_test(test_grpc_code_from_errno),
		cmocka_unit_test(test_grpc_code_from_errno_int_min),
		cmocka_unit_test(test_grpc_code_name),
	};
	return cmocka_run_group_tests_name("error", tests, NULL, NULL);
}
