/* cri-gateway/routes.c: every CRI method has exactly one owner, named by
 * its method ref, and is routed by its gRPC path to that owner. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "cri-gateway/routes.h"
#include "testutil.h"

static void test_every_method_has_one_owner(void **state)
{
	(void)state;
	const ProtobufCServiceDescriptor *svcs[] = { &runtime__v1__runtime_service__descriptor,
						     &runtime__v1__image_service__descriptor };
	size_t total = 0;
	for (size_t s = 0; s < 2; s++) {
		for (unsigned m = 0; m < svcs[s]->n_methods; m++) {
			size_t n = routes_owner_count((struct cric_method_ref){ svcs[s], m });
			if (n != 1)
				fail_msg("%s/%s has %zu owners", svcs[s]->name,
					 svcs[s]->methods[m].name, n);
			total++;
		}
	}
	/* No line names anything else (a line out of range would count for
	 * no method). */
	assert_int_equal(routes_n_owners(), total);
}

static void test_routes_by_path(void **state)
{
	(void)state;
	struct route_table t = { 0 };
	assert_int_equal(routes_build(&t), 0);
	const struct {
		const char *path;
		enum daemon_id daemon;
		bool streaming;
	} want[] = {
		{ "/runtime.v1.RuntimeService/RunPodSandbox", D_RUNTIMED, false },
		{ "/runtime.v1.RuntimeService/CreateContainer", D_RUNTIMED, false },
		{ "/runtime.v1.RuntimeService/ExecSync", D_MONITORD, false },
		{ "/runtime.v1.RuntimeService/Attach", D_MONITORD, false },
		{ "/runtime.v1.RuntimeService/GetContainerEvents", D_RUNTIMED, true },
		{ "/runtime.v1.ImageService/PullImage", D_IMAGED, false },
		{ "/runtime.v1.ImageService/ImageFsInfo", D_STORED, false },
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const struct route *r = route_find(&t, want[i].path);
		assert_non_null(r);
		assert_int_equal(r->daemon, want[i].daemon);
		assert_int_equal(r->server_streaming, want[i].streaming);
	}
	assert_null(route_find(&t, "/runtime.v1.RuntimeService/CreateContainers"));
	routes_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_method_has_one_owner),
		cmocka_unit_test(test_routes_by_path),
	};
	return cmocka_run_group_tests_name("gateway-routes", tests, NULL, NULL);
}
