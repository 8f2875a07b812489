/* common/pbutil.h: map fields built and copied through the descriptors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/pbutil.h"
#include "proto/cri/api.pb-c.h"

static void test_map_add_and_copy(void **state)
{
	(void)state;
	Runtime__V1__PodSandboxConfig *cfg = pb_new(&runtime__v1__pod_sandbox_config__descriptor);
	assert_non_null(cfg);
	assert_int_equal(pb_map_add(&cfg->base, "labels", "app", "web"), 0);
	assert_int_equal(pb_map_add(&cfg->base, "labels", "tier", ""), 0);
	assert_int_equal(pb_map_add(&cfg->base, "annotations", "a/b", "c=d"), 0);
	assert_int_equal(cfg->n_labels, 2);
	assert_string_equal(cfg->labels[0]->key, "app");
	assert_string_equal(cfg->labels[1]->value, "");
	assert_string_equal(cfg->annotations[0]->value, "c=d");

	/* Into another message type's map, through a wire round trip. */
	size_t n = protobuf_c_message_get_packed_size(&cfg->base);
	uint8_t *buf = malloc(n);
	assert_non_null(buf);
	protobuf_c_message_pack(&cfg->base, buf);
	Runtime__V1__PodSandboxConfig *back = runtime__v1__pod_sandbox_config__unpack(NULL, n, buf);
	free(buf);
	assert_non_null(back);
	Runtime__V1__PodSandbox *ps = pb_new(&runtime__v1__pod_sandbox__descriptor);
	assert_int_equal(pb_map_copy(&ps->base, "labels", &back->base, "labels"), 0);
	assert_int_equal(pb_map_copy(&ps->base, "annotations", &back->base, "annotations"), 0);
	assert_int_equal(ps->n_labels, 2);
	assert_string_equal(ps->labels[1]->key, "tier");
	assert_int_equal(ps->n_annotations, 1);
	assert_string_equal(ps->annotations[0]->key, "a/b");

	/* Not a map: refused, nothing changed. */
	assert_int_equal(pb_map_add(&ps->base, "id", "k", "v"), -EINVAL);
	assert_int_equal(pb_map_add(&ps->base, "metadata", "k", "v"), -EINVAL);
	assert_int_equal(pb_map_add(&ps->base, "nope", "k", "v"), -EINVAL);
	assert_int_equal(pb_map_copy(&ps->base, "labels", &back->base, "hostname"), -EINVAL);
	assert_int_equal(ps->n_labels, 2);

	/* NULL values become empty strings (proto3 has no absent string). */
	assert_int_equal(pb_map_add(&ps->base, "labels", "x", NULL), 0);
	assert_string_equal(ps->labels[2]->value, "");

	protobuf_c_message_free_unpacked(&ps->base, NULL);
	protobuf_c_message_free_unpacked(&back->base, NULL);
	protobuf_c_message_free_unpacked(&cfg->base, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_map_add_and_copy),
	};
	return cmocka_run_group_tests_name("pbutil", tests, NULL, NULL);
}
