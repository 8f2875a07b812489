/* common/service.h: method refs from the generated descriptors, names on the
 * wire, typed calls refused before sending, and the checks of the servers'
 * method tables. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "common/service.h"
#include "testutil.h"

static int h_ok(void *userdata, const struct cric_call *call, const ProtobufCMessage *req,
		ProtobufCMessage **resp, struct cric_err *err)
{
	(void)userdata;
	(void)call;
	(void)req;
	(void)resp;
	(void)err;
	return -ENOSYS;
}

/* CRIC_METHOD_INDEX() counts function pointers in protoc-c's generated
 * <Service>_Service struct: it must be a ProtobufCService and then exactly
 * one pointer per method of the descriptor, in its order. */
#define LAYOUT(svc, desc)                                                                          \
	assert_int_equal(sizeof(svc##_Service),                                                    \
			 sizeof(ProtobufCService) + (desc).n_methods * sizeof(void (*)(void)))

static void test_generated_layout(void **state)
{
	(void)state;
	LAYOUT(Cric__Health, cric__health__descriptor);
	LAYOUT(Cric__Netd__Netd, cric__netd__netd__descriptor);
	LAYOUT(Cric__Stored__Stored, cric__stored__stored__descriptor);
	LAYOUT(Runtime__V1__RuntimeService, runtime__v1__runtime_service__descriptor);
	LAYOUT(Runtime__V1__ImageService, runtime__v1__image_service__descriptor);
}

/* Every internal method's ref names that method (the proto's names written
 * out here on purpose: this is the check). */
static void test_refs_name_their_methods(void **state)
{
	(void)state;
	const struct {
		struct cric_method_ref ref;
		const char *name;
	} want[] = {
		{ CRIC_HEALTH(health), "cric.Health" },
		{ CRIC_HEALTH(cancel), "cric.Cancel" },
		{ CRIC_HEALTH(metrics), "cric.Metrics" },
		{ CRIC_NETD(network_status), "cric.netd.NetworkStatus" },
		{ CRIC_NETD(setup_pod_network), "cric.netd.SetupPodNetwork" },
		{ CRIC_NETD(teardown_pod_network), "cric.netd.TeardownPodNetwork" },
		{ CRIC_NETD(pod_network_status), "cric.netd.PodNetworkStatus" },
		{ CRIC_STORED(import_layer), "cric.stored.ImportLayer" },
		{ CRIC_STORED(layer_status), "cric.stored.LayerStatus" },
		{ CRIC_STORED(commit_image), "cric.stored.CommitImage" },
		{ CRIC_STORED(release_image), "cric.stored.ReleaseImage" },
		{ CRIC_STORED(sync_images), "cric.stored.SyncImages" },
		{ CRIC_STORED(drop_lease), "cric.stored.DropLease" },
		{ CRIC_STORED(create_rootfs), "cric.stored.CreateRootfs" },
		{ CRIC_STORED(remove_rootfs), "cric.stored.RemoveRootfs" },
		{ CRIC_IMAGED(resolve_image), "cric.imaged.ResolveImage" },
		{ CRIC_IMAGED(list_page), "cric.imaged.ListPage" },
		{ CRIC_MONITORD(create_monitor), "cric.monitord.CreateMonitor" },
		{ CRIC_MONITORD(reopen_log), "cric.monitord.ReopenLog" },
		{ CRIC_MONITORD(monitor_status), "cric.monitord.MonitorStatus" },
		{ CRIC_MONITORD(remove_monitor), "cric.monitord.RemoveMonitor" },
		{ CRIC_MONITORD(list_page), "cric.monitord.ListPage" },
		{ CRIC_RUNTIMED(watch_events), "cric.runtimed.WatchEvents" },
		{ CRIC_RUNTIMED(list_page), "cric.runtimed.ListPage" },
		{ CRI_RUNTIME(version), "/runtime.v1.RuntimeService/Version" },
		{ CRI_RUNTIME(list_pod_sandbox), "/runtime.v1.RuntimeService/ListPodSandbox" },
		{ CRI_IMAGE(image_fs_info), "/runtime.v1.ImageService/ImageFsInfo" },
	};
	size_t n_internal = 0;
	for (size_t i = 0; i < cric_n_internal_services; i++)
		n_internal += cric_internal_services[i]->n_methods;
	assert_int_equal(n_internal, 24); /* every internal method is listed above */
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		char name[IPC_METHOD_MAX + 1];
		assert_int_equal(cric_method_name(want[i].ref, name, sizeof(name)), 0);
		assert_string_equal(name, want[i].name);
		struct cric_method_ref found;
		assert_int_equal(cric_method_find(want[i].ref.service, want[i].name, &found), 0);
		assert_ptr_equal(found.service, want[i].ref.service);
		assert_int_equal(found.index, want[i].ref.index);
	}
	/* Each method's request and response types are the descriptor's. */
	const ProtobufCMethodDescriptor *md = cric_method_desc(CRIC_NETD(setup_pod_network));
	assert_ptr_equal(md->input, &cric__netd__setup_pod_network_request__descriptor);
	assert_ptr_equal(md->output, &cric__netd__setup_pod_network_response__descriptor);
}

static void test_misspelt_and_absent_methods(void **state)
{
	(void)state;
	struct cric_method_ref r = { NULL, 0 };
	assert_int_equal(
	    cric_method_find(&cric__netd__netd__descriptor, "cric.netd.SetupPodNetwrok", &r),
	    -ENOENT);
	assert_int_equal(
	    cric_method_find(&cric__netd__netd__descriptor, "cric.stored.ImportLayer", &r),
	    -ENOENT);
	assert_int_equal(cric_method_find(&cric__netd__netd__descriptor, "SetupPodNetwork", &r),
			 -ENOENT);
	assert_null(r.service);
	char name[64];
	const struct cric_method_ref absent = { &cric__netd__netd__descriptor, 4 };
	assert_null(cric_method_desc(absent));
	assert_int_equal(cric_method_name(absent, name, sizeof(name)), -EINVAL);
	assert_int_equal(cric_method_name(CRIC_NETD(setup_pod_network), name, 8), -ENAMETOOLONG);
}

/* A client to nowhere: cric_call() refuses before it sends anything, so the
 * answer comes at once (a call would wait a second for a connection). */
static void test_call_refuses_wrong_types(void **state)
{
	(void)state;
	char *dir = tmpdir_make("service");
	char url[PATH_MAX];
	snprintf(url, sizeof(url), "ipc://%s/nobody.sock", dir);
	struct cric_client *c = NULL;
	struct cric_err err = { { 0 } };
	assert_int_equal(cric_client_open("netd", url, &c, &err), 0);

	Cric__Netd__TeardownPodNetworkRequest wrong =
	    CRIC__NETD__TEARDOWN_POD_NETWORK_REQUEST__INIT;
	ProtobufCMessage *out = (ProtobufCMessage *)0x1;
	char *msg = NULL;
	int64_t t0 = mono_ms();
	unsigned code = cric_call(c, CRIC_NETD(setup_pod_network), NULL, deadline_in_ms(5000),
				  &wrong.base, &out, &msg);
	assert_int_equal(code, CODE_INTERNAL);
	assert_null(out);
	assert_non_null(strstr(msg, "cric.netd.SetupPodNetwork"));
	assert_non_null(strstr(msg, "cric.netd.SetupPodNetworkRequest"));
	assert_non_null(strstr(msg, "cric.netd.TeardownPodNetworkRequest"));
	free(msg);

	code = cric_call(c, (struct cric_method_ref){ &cric__netd__netd__descriptor, 99 }, NULL,
			 deadline_in_ms(5000), &wrong.base, &out, &msg);
	assert_int_equal(code, CODE_INTERNAL);
	assert_non_null(strstr(msg, "no method 99"));
	free(msg);
	code = cric_call(c, CRIC_NETD(teardown_pod_network), NULL, deadline_in_ms(5000), NULL, &out,
			 NULL);
	assert_int_equal(code, CODE_INTERNAL);
	assert_true(mono_ms() - t0 < 500);

	cric_client_close(c);
	tmpdir_remove(dir);
}

/* ---- tables ---- */

static const struct cric_handler netd_all[] = {
	{ CRIC_NETD(network_status), h_ok, .callers = CALLER_RUNTIMED, .cap_ms = 3000 },
	{ CRIC_NETD(setup_pod_network), h_ok, .callers = CALLER_RUNTIMED, .cap_ms = 300000 },
	{ CRIC_NETD(teardown_pod_network), NULL }, /* explicit UNIMPLEMENTED */
	{ CRIC_NETD(pod_network_status), h_ok },
};

static int build(const struct cric_handler *lines, size_t n, bool partial,
		 const ProtobufCServiceDescriptor *desc, struct cric_method_table *t,
		 struct cric_err *err)
{
	const struct cric_service s = { desc, lines, n, partial };
	return cric_method_table_build("testd", &s, 1, t, err);
}

static void test_complete_table(void **state)
{
	(void)state;
	struct cric_method_table t = { 0 };
	struct cric_err err = { { 0 } };
	assert_int_equal(
	    build(netd_all, ARRAY_SIZE(netd_all), false, &cric__netd__netd__descriptor, &t, &err),
	    0);
	assert_int_equal(t.n, 4);
	const struct cric_route_entry *e = cric_method_table_find(&t, "cric.netd.SetupPodNetwork");
	assert_non_null(e);
	assert_ptr_equal(e->handler->fn, h_ok);
	assert_int_equal(e->handler->callers, CALLER_RUNTIMED);
	assert_int_equal(e->handler->cap_ms, 300000);
	assert_ptr_equal(e->md->input, &cric__netd__setup_pod_network_request__descriptor);
	e = cric_method_table_find(&t, "cric.netd.TeardownPodNetwork");
	assert_non_null(e);
	assert_null(e->handler->fn);
	assert_null(cric_method_table_find(&t, "cric.netd.SetupPodNetwrok"));
	assert_null(cric_method_table_find(&t, "cric.Health"));
	cric_method_table_done(&t);
}

static void expect_refused(const struct cric_service *s, size_t n, const char *what)
{
	struct cric_method_table t = { 0 };
	struct cric_err err = { { 0 } };
	assert_int_equal(cric_method_table_build("testd", s, n, &t, &err), -EINVAL);
	assert_null(t.entries);
	if (!strstr(err.msg, what) || !strstr(err.msg, "testd"))
		fail_msg("\"%s\" does not say \"%s\"", err.msg, what);
}

static void test_bad_tables_are_refused(void **state)
{
	(void)state;
	/* A method with no line (internal services are whole). */
	const struct cric_service missing = { &cric__netd__netd__descriptor, netd_all, 3 };
	expect_refused(&missing, 1, "Netd.PodNetworkStatus has no line");

	/* A line for another service's method. */
	const struct cric_handler foreign[] = {
		{ CRIC_NETD(network_status), h_ok },       { CRIC_NETD(setup_pod_network), h_ok },
		{ CRIC_NETD(teardown_pod_network), h_ok }, { CRIC_NETD(pod_network_status), h_ok },
		{ CRIC_STORED(import_layer), h_ok },
	};
	const struct cric_service s_foreign = { &cric__netd__netd__descriptor, foreign,
						ARRAY_SIZE(foreign) };
	expect_refused(&s_foreign, 1, "is a method of cric.stored.Stored");

	/* An index the service does not have. */
	const struct cric_handler absent[] = {
		{ { &cric__netd__netd__descriptor, 4 }, h_ok },
	};
	const struct cric_service s_absent = { &cric__netd__netd__descriptor, absent, 1, true };
	expect_refused(&s_absent, 1, "has no method 4");

	/* One method twice. */
	const struct cric_handler twice[] = {
		{ CRIC_NETD(network_status), h_ok },
		{ CRIC_NETD(network_status), h_ok },
	};
	const struct cric_service s_twice = { &cric__netd__netd__descriptor, twice, 2, true };
	expect_refused(&s_twice, 1, "NetworkStatus is listed twice");

	/* One service twice: its names would collide. */
	const struct cric_service both[] = {
		{ &cric__netd__netd__descriptor, netd_all, ARRAY_SIZE(netd_all) },
		{ &cric__netd__netd__descriptor, netd_all, ARRAY_SIZE(netd_all) },
	};
	expect_refused(both, 2, "two methods named cric.netd.NetworkStatus");
}

/* A CRI service is shared: methods without a line are in the table, without
 * a handler (UNIMPLEMENTED naming the daemon). */
static void test_partial_cri_service(void **state)
{
	(void)state;
	const struct cric_handler lines[] = {
		{ CRI_IMAGE(image_fs_info), h_ok, .callers = CALLER_GATEWAY },
	};
	struct cric_method_table t = { 0 };
	struct cric_err err = { { 0 } };
	assert_int_equal(build(lines, 1, true, &runtime__v1__image_service__descriptor, &t, &err),
			 0);
	assert_int_equal(t.n, runtime__v1__image_service__descriptor.n_methods);
	const struct cric_route_entry *e =
	    cric_method_table_find(&t, "/runtime.v1.ImageService/ImageFsInfo");
	assert_non_null(e);
	assert_ptr_equal(e->handler->fn, h_ok);
	e = cric_method_table_find(&t, "/runtime.v1.ImageService/PullImage");
	assert_non_null(e);
	assert_null(e->handler);
	cric_method_table_done(&t);
}

/* An internal call ends at the earlier of the caller's deadline and the
 * method's cap; a creation (no caller's deadline) at the cap alone. */
static void test_deadline(void **state)
{
	(void)state;
	int64_t now = now_unix_ns(), s = 1000000000LL;
	assert_true(cric_deadline(0, 0) == 0);
	int64_t d = cric_deadline(0, 5000);
	assert_true(d >= now + 5 * s && d < now + 6 * s);
	/* The caller's is earlier: it wins. */
	assert_true(cric_deadline(now + 2 * s, 5000) == now + 2 * s);
	/* The cap is earlier: it wins. */
	d = cric_deadline(now + 60 * s, 5000);
	assert_true(d >= now + 5 * s && d < now + 6 * s);
	/* No cap: the caller's. */
	assert_true(cric_deadline(now + 60 * s, 0) == now + 60 * s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_generated_layout),
		cmocka_unit_test(test_refs_name_their_methods),
		cmocka_unit_test(test_misspelt_and_absent_methods),
		cmocka_unit_test(test_call_refuses_wrong_types),
		cmocka_unit_test(test_complete_table),
		cmocka_unit_test(test_bad_tables_are_refused),
		cmocka_unit_test(test_partial_cri_service),
		cmocka_unit_test(test_deadline),
	};
	return cmocka_run_group_tests_name("service", tests, NULL, NULL);
}
