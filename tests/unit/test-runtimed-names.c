/* runtimed/names.h: a create retried by name waits for the creation in
 * progress (within its own deadline) and gets its id; a failed creation
 * frees the name for a new one; one that could not be undone holds it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#include "common/ipc.h"
#include "runtimed/names.h"

#define ID1 "1111111111111111111111111111111111111111111111111111111111111111"
#define ID2 "2222222222222222222222222222222222222222222222222222222222222222"
#define MS  1000000LL

struct waiter {
	struct name_table *t;
	int64_t deadline_ns;
	int r;
	enum name_reservation res;
	char holder[65];
	atomic_bool answered;
};

static void *wait_thread(void *arg)
{
	struct waiter *w = arg;
	w->r = name_reserve(w->t, "web/default/u1/0", ID2, w->deadline_ns, &w->res, w->holder);
	atomic_store(&w->answered, true);
	return NULL;
}

/* A retry started while ID1's creation runs: it waits until the creation
 * ends (done_ms later) with ok/kept, and reserve() then answers (never
 * before: the answer depends on how the creation ended). */
static struct waiter retry_during(struct name_table *t, int done_ms, bool ok, bool kept)
{
	enum name_reservation res;
	char holder[65];
	assert_int_equal(name_reserve(t, "web/default/u1/0", ID1, 0, &res, holder), 0);
	assert_int_equal(res, NAME_NEW);
	struct waiter w = { .t = t, .deadline_ns = now_unix_ns() + 10000 * MS };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, wait_thread, &w), 0);
	usleep((useconds_t)done_ms * 1000);
	bool early = atomic_load(&w.answered);
	name_created(t, "web/default/u1/0", ID1, ok, kept);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_false(early);
	return w;
}

static void test_retry_waits_for_the_creation(void **state)
{
	(void)state;
	struct name_table *t = NULL;
	assert_int_equal(name_table_new(&t), 0);
	/* Made: the retry gets the maker's id, and so does any later one. */
	struct waiter w = retry_during(t, 200, true, false);
	assert_int_equal(w.r, 0);
	assert_int_equal(w.res, NAME_DONE);
	assert_string_equal(w.holder, ID1);
	enum name_reservation res;
	char holder[65];
	assert_int_equal(name_reserve(t, "web/default/u1/0", ID2, 0, &res, holder), 0);
	assert_int_equal(res, NAME_DONE);
	assert_string_equal(holder, ID1);
	/* Another attempt is another name. */
	assert_int_equal(name_reserve(t, "web/default/u1/1", ID2, 0, &res, holder), 0);
	assert_int_equal(res, NAME_NEW);
	/* Removed: the name is free; a release by another id changes nothing. */
	name_release(t, "web/default/u1/0", ID2);
	assert_int_equal(name_reserve(t, "web/default/u1/0", ID2, 0, &res, holder), 0);
	assert_int_equal(res, NAME_DONE);
	name_release(t, "web/default/u1/0", ID1);

	/* Failed and rolled back: the waiting retry creates anew. */
	w = retry_during(t, 100, false, false);
	assert_int_equal(w.r, 0);
	assert_int_equal(w.res, NAME_NEW);
	name_created(t, "web/default/u1/0", ID2, false, false);

	/* Failed and kept (not undone): refused, naming the holder. */
	w = retry_during(t, 100, false, true);
	assert_int_equal(w.r, 0);
	assert_int_equal(w.res, NAME_HELD);
	assert_string_equal(w.holder, ID1);
	name_release(t, "web/default/u1/0", ID1);
	name_table_free(t);
}

static void test_retry_deadline(void **state)
{
	(void)state;
	struct name_table *t = NULL;
	assert_int_equal(name_table_new(&t), 0);
	enum name_reservation res;
	char holder[65];
	assert_int_equal(name_reserve(t, "web/default/u1/0", ID1, 0, &res, holder), 0);
	/* The retry's deadline passes while the creation runs. */
	struct waiter w = { .t = t, .deadline_ns = now_unix_ns() + 150 * MS };
	wait_thread(&w);
	int64_t back = now_unix_ns();
	assert_int_equal(w.r, -ETIMEDOUT);
	assert_string_equal(w.holder, ID1);
	/* Not before its deadline; and it did not hang. */
	assert_true(back >= w.deadline_ns - MS && back < w.deadline_ns + 30000 * MS);
	/* A deadline already passed: at once. */
	w.deadline_ns = now_unix_ns() - MS;
	wait_thread(&w);
	assert_int_equal(w.r, -ETIMEDOUT);
	/* The creation still ends well. */
	name_created(t, "web/default/u1/0", ID1, true, false);
	assert_int_equal(name_reserve(t, "web/default/u1/0", ID2, now_unix_ns() - MS, &res, holder),
			 0);
	assert_int_equal(res, NAME_DONE);
	name_table_free(t);
}

static void test_hold_and_limits(void **state)
{
	(void)state;
	struct name_table *t = NULL;
	assert_int_equal(name_table_new(&t), 0);
	assert_int_equal(name_hold(t, "a", ID1, true), 0);
	assert_int_equal(name_hold(t, "a", ID2, true), -EEXIST);
	assert_int_equal(name_hold(t, "b", ID2, false), 0);
	enum name_reservation res;
	char holder[65];
	assert_int_equal(name_reserve(t, "a", ID2, 0, &res, holder), 0);
	assert_int_equal(res, NAME_DONE);
	assert_int_equal(name_reserve(t, "b", ID1, 0, &res, holder), 0);
	assert_int_equal(res, NAME_HELD);
	assert_string_equal(holder, ID2);
	char big[NAME_KEY_MAX + 2];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(name_reserve(t, big, ID1, 0, &res, holder), -ENAMETOOLONG);
	/* Many names: the table grows. */
	for (int i = 0; i < 200; i++) {
		char n[16];
		snprintf(n, sizeof(n), "n%d", i);
		assert_int_equal(name_reserve(t, n, ID1, 0, &res, holder), 0);
		assert_int_equal(res, NAME_NEW);
	}
	name_table_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_retry_waits_for_the_creation),
		cmocka_unit_test(test_retry_deadline),
		cmocka_unit_test(test_hold_and_limits),
	};
	return cmocka_run_group_tests_name("runtimed-names", tests, NULL, NULL);
}
