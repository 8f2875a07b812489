/* common/pbutil.h: map fields built and copied through the descriptors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/pbjson.h"
#include "common/pbutil.h"
#include "proto/cric/netd.pb-c.h"
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

/* pb_from_json() reads what pb_to_json() writes (scalars, repeated
 * submessages, strings), and says which field is wrong. */
static void test_json_round_trip(void **state)
{
	(void)state;
	const char *text =
	    "{\"pod_id\": \"abc\", \"name\": \"web\", \"port_mappings\": ["
	    "{\"protocol\": \"tcp\", \"container_port\": 80, \"host_port\": 8080},"
	    "{\"protocol\": \"udp\", \"container_port\": 53, \"host_ip\": \"::1\"}]}";
	json_t *j = json_loads(text, 0, NULL);
	assert_non_null(j);
	ProtobufCMessage *m = NULL;
	char why[256] = "";
	assert_int_equal(pb_from_json(j, &cric__netd__setup_pod_network_request__descriptor, &m,
				      why, sizeof(why)),
			 0);
	Cric__Netd__SetupPodNetworkRequest *r = (void *)m;
	assert_string_equal(r->pod_id, "abc");
	assert_int_equal(r->n_port_mappings, 2);
	assert_int_equal(r->port_mappings[0]->host_port, 8080);
	assert_string_equal(r->port_mappings[1]->host_ip, "::1");
	/* And back again: the same message, byte for byte. */
	json_t *back = pb_to_json(m);
	assert_non_null(back);
	ProtobufCMessage *m2 = NULL;
	assert_int_equal(pb_from_json(back, &cric__netd__setup_pod_network_request__descriptor, &m2,
				      why, sizeof(why)),
			 0);
	size_t n1 = protobuf_c_message_get_packed_size(m),
	       n2 = protobuf_c_message_get_packed_size(m2);
	assert_int_equal(n1, n2);
	uint8_t *b1 = malloc(n1), *b2 = malloc(n2);
	protobuf_c_message_pack(m, b1);
	protobuf_c_message_pack(m2, b2);
	assert_memory_equal(b1, b2, n1);
	free(b1);
	free(b2);
	json_decref(back);
	protobuf_c_message_free_unpacked(m2, NULL);
	protobuf_c_message_free_unpacked(m, NULL);
	json_decref(j);

	static const char *const bad[] = { "{\"nope\": 1}", "{\"pod_id\": 7}",
					   "{\"port_mappings\": {}}", "[]",
					   "{\"port_mappings\": [{\"host_port\": \"x\"}]}" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		j = json_loads(bad[i], 0, NULL);
		assert_non_null(j);
		m = NULL;
		why[0] = '\0';
		assert_int_equal(pb_from_json(j, &cric__netd__setup_pod_network_request__descriptor,
					      &m, why, sizeof(why)),
				 -EINVAL);
		assert_true(why[0] != '\0');
		if (m)
			protobuf_c_message_free_unpacked(m, NULL);
		json_decref(j);
	}
}

/* Items kept packed, appended as unknown fields with a tail field, read
 * back as the real repeated field by an unpack. */
static void test_packed_items(void **state)
{
	(void)state;
	Runtime__V1__ListContainersResponse *resp =
	    pb_new(&runtime__v1__list_containers_response__descriptor);
	assert_non_null(resp);
	resp->base.unknown_fields = calloc(2, sizeof(*resp->base.unknown_fields));
	assert_non_null(resp->base.unknown_fields);
	const unsigned items = pb_field_id(resp->base.descriptor, "containers");
	const unsigned state_id = pb_field_id(&runtime__v1__container__descriptor, "state");
	assert_int_equal(items, 1);
	assert_int_equal(state_id, 6);
	for (int i = 0; i < 2; i++) {
		Runtime__V1__Container c = RUNTIME__V1__CONTAINER__INIT;
		char id[200]; /* the second one's length needs a 2-byte varint */
		memset(id, 'a' + i, sizeof(id) - 1);
		id[i == 0 ? 5 : sizeof(id) - 1] = '\0';
		c.id = id;
		c.created_at = 42 + i;
		uint8_t buf[512];
		size_t n = protobuf_c_message_pack(&c.base, buf);
		uint8_t tail[PB_VARINT_FIELD_MAX];
		size_t t = i ? pb_varint_field(tail, state_id,
					       RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED)
			     : 0;
		assert_int_equal(
		    pb_packed_item(items, buf, n, tail, t, &resp->base.unknown_fields[i]), 0);
		resp->base.n_unknown_fields++;
	}
	size_t n = protobuf_c_message_get_packed_size(&resp->base);
	uint8_t *wire = malloc(n);
	assert_non_null(wire);
	assert_int_equal(protobuf_c_message_pack(&resp->base, wire), n);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	Runtime__V1__ListContainersResponse *back =
	    runtime__v1__list_containers_response__unpack(NULL, n, wire);
	free(wire);
	assert_non_null(back);
	assert_int_equal(back->n_containers, 2);
	assert_int_equal(back->base.n_unknown_fields, 0);
	assert_string_equal(back->containers[0]->id, "aaaaa");
	assert_int_equal(strlen(back->containers[1]->id), 199);
	assert_int_equal(back->containers[0]->state,
			 RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED);
	assert_int_equal(back->containers[1]->state,
			 RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED);
	assert_int_equal(back->containers[1]->created_at, 43);
	protobuf_c_message_free_unpacked(&back->base, NULL);

	uint8_t big[PB_VARINT_FIELD_MAX];
	assert_int_equal(pb_varint_field(big, 1, UINT64_MAX), 11);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_map_add_and_copy),
		cmocka_unit_test(test_json_round_trip),
		cmocka_unit_test(test_packed_items),
	};
	return cmocka_run_group_tests_name("pbutil", tests, NULL, NULL);
}
