/* common/listpage.h: the pages of the CRI streaming list calls, built from
 * their List twins' answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/listpage.h"
#include "common/macro.h"
#include "common/pbutil.h"

static void test_every_stream_call_is_its_lists_twin(void **state)
{
	(void)state;
	const struct {
		struct cric_method_ref stream, list;
	} twins[] = {
		{ CRI_RUNTIME(stream_pod_sandboxes), CRI_RUNTIME(list_pod_sandbox) },
		{ CRI_RUNTIME(stream_containers), CRI_RUNTIME(list_containers) },
		{ CRI_RUNTIME(stream_container_stats), CRI_RUNTIME(list_container_stats) },
		{ CRI_RUNTIME(stream_pod_sandbox_stats), CRI_RUNTIME(list_pod_sandbox_stats) },
		{ CRI_RUNTIME(stream_pod_sandbox_metrics), CRI_RUNTIME(list_pod_sandbox_metrics) },
		{ CRI_IMAGE(stream_images), CRI_IMAGE(list_images) },
	};
	struct cric_err err = { 0 };
	for (size_t i = 0; i < ARRAY_SIZE(twins); i++)
		assert_int_equal(listpage_twin_check(twins[i].stream, twins[i].list, &err), 0);
	/* Not twins: other filters, other items. */
	assert_int_equal(listpage_twin_check(CRI_RUNTIME(stream_containers),
					     CRI_RUNTIME(list_pod_sandbox), &err),
			 -EINVAL);
	assert_int_equal(listpage_twin_check(CRI_RUNTIME(stream_container_stats),
					     CRI_RUNTIME(list_containers), &err),
			 -EINVAL);
	assert_int_equal(listpage_twin_check(CRI_IMAGE(stream_images),
					     CRI_RUNTIME(list_pod_sandbox_metrics), &err),
			 -EINVAL);
}

static void test_item_keys(void **state)
{
	(void)state;
	Runtime__V1__PodSandbox ps = RUNTIME__V1__POD_SANDBOX__INIT;
	ps.id = "pod1";
	assert_string_equal(listpage_item_key(&ps.base), "pod1");
	Runtime__V1__ContainerAttributes a = RUNTIME__V1__CONTAINER_ATTRIBUTES__INIT;
	a.id = "ctr1";
	Runtime__V1__ContainerStats cs = RUNTIME__V1__CONTAINER_STATS__INIT;
	cs.attributes = &a;
	assert_string_equal(listpage_item_key(&cs.base), "ctr1");
	cs.attributes = NULL;
	assert_string_equal(listpage_item_key(&cs.base), "");
	Runtime__V1__PodSandboxMetrics pm = RUNTIME__V1__POD_SANDBOX_METRICS__INIT;
	pm.pod_sandbox_id = "pod2";
	assert_string_equal(listpage_item_key(&pm.base), "pod2");
	Runtime__V1__Image img = RUNTIME__V1__IMAGE__INIT;
	img.id = "sha256:ab";
	assert_string_equal(listpage_item_key(&img.base), "sha256:ab");
}

/* A ListPodSandboxResponse of n pods, ids "p<k>" in a scrambled order,
 * each with an annotation of ann bytes (pod 3 of big bytes when big). */
static Runtime__V1__ListPodSandboxResponse *pods(size_t n, size_t ann, size_t big)
{
	Runtime__V1__ListPodSandboxResponse *r =
	    pb_new(&runtime__v1__list_pod_sandbox_response__descriptor);
	assert_non_null(r);
	r->items = calloc(n ? n : 1, sizeof(*r->items));
	assert_non_null(r->items);
	for (size_t i = 0; i < n; i++) {
		Runtime__V1__PodSandbox *p = pb_new(&runtime__v1__pod_sandbox__descriptor);
		char id[16];
		snprintf(id, sizeof(id), "p%02zu", (i * 7) % n);
		assert_int_equal(pb_set_str(&p->id, id), 0);
		size_t len = (i * 7) % n == 3 && big ? big : ann;
		char *v = malloc(len + 1);
		memset(v, 'x', len);
		v[len] = '\0';
		assert_int_equal(pb_map_add(&p->base, "annotations", "a", v), 0);
		free(v);
		r->items[r->n_items++] = p;
	}
	return r;
}

/* Page through list with the limits: each item exactly once, in order,
 * within the limits; the number of pages. */
static size_t walk(Runtime__V1__ListPodSandboxResponse *list, uint32_t items, uint32_t bytes)
{
	char *after = strdup("");
	size_t pages = 0, seen = 0;
	char last[16] = "";
	for (;;) {
		uint8_t *page = NULL;
		size_t len = 0;
		char *next = NULL;
		assert_int_equal(
		    listpage_build(&list->base,
				   &runtime__v1__stream_pod_sandboxes_response__descriptor, after,
				   items, bytes, &page, &len, &next),
		    0);
		Runtime__V1__StreamPodSandboxesResponse *r =
		    runtime__v1__stream_pod_sandboxes_response__unpack(NULL, len, page);
		assert_non_null(r);
		if (list->n_items)
			assert_true(r->n_pod_sandboxes >= 1);
		assert_true(r->n_pod_sandboxes <= items);
		assert_true(r->n_pod_sandboxes == 1 ||
			    len <= (bytes ? bytes : LISTPAGE_BYTES_DEFAULT));
		for (size_t i = 0; i < r->n_pod_sandboxes; i++) {
			assert_true(strcmp(r->pod_sandboxes[i]->id, last) > 0);
			snprintf(last, sizeof(last), "%s", r->pod_sandboxes[i]->id);
			seen++;
		}
		protobuf_c_message_free_unpacked(&r->base, NULL);
		free(page);
		pages++;
		free(after);
		after = next;
		if (!*after)
			break;
		assert_string_equal(after, last);
	}
	free(after);
	assert_int_equal(seen, list->n_items);
	return pages;
}

static void test_pages_by_count_and_bytes(void **state)
{
	(void)state;
	Runtime__V1__ListPodSandboxResponse *l = pods(20, 10, 0);
	assert_int_equal(walk(l, 3, 0), 7);
	assert_int_equal(walk(l, 20, 0), 1);
	assert_int_equal(walk(l, 1, 0), 20);
	protobuf_c_message_free_unpacked(&l->base, NULL);
	/* About 540 bytes an item: one a page under 1 KiB, and one item bigger
	 * than the limit goes alone. */
	l = pods(10, 500, 5000);
	assert_int_equal(walk(l, 100, LISTPAGE_BYTES_MIN), 10);
	assert_int_equal(walk(l, 100, 0), 1);
	protobuf_c_message_free_unpacked(&l->base, NULL);
	/* Nothing: one empty page. */
	l = pods(0, 0, 0);
	assert_int_equal(walk(l, 5, 0), 1);
	protobuf_c_message_free_unpacked(&l->base, NULL);
	/* A cursor past the end: an empty last page. */
	l = pods(4, 1, 0);
	uint8_t *page = NULL;
	size_t len = 1;
	char *next = NULL;
	assert_int_equal(listpage_build(&l->base,
					&runtime__v1__stream_pod_sandboxes_response__descriptor,
					"zz", 0, 0, &page, &len, &next),
			 0);
	assert_int_equal(len, 0);
	assert_string_equal(next, "");
	free(page);
	free(next);
	/* Not twins. */
	assert_int_equal(listpage_build(&l->base, &runtime__v1__stream_images_response__descriptor,
					"", 0, 0, &page, &len, &next),
			 -EINVAL);
	protobuf_c_message_free_unpacked(&l->base, NULL);
}

static int fake_list(void *ud, const struct cric_call *call, const ProtobufCMessage *in,
		     ProtobufCMessage **out, struct cric_err *err)
{
	(void)call, (void)err;
	const Runtime__V1__ListPodSandboxRequest *req = (const void *)in;
	assert_ptr_equal(in->descriptor, &runtime__v1__list_pod_sandbox_request__descriptor);
	(*(int *)ud)++;
	/* The filter got through: its id picks how many pods. */
	size_t n = req->filter ? strtoul(req->filter->id, NULL, 10) : 0;
	*out = &pods(n, 1, 0)->base;
	return 0;
}

static void test_serve(void **state)
{
	(void)state;
	const struct listpage_twin twins[] = {
		{ CRI_RUNTIME(stream_pod_sandboxes), CRI_RUNTIME(list_pod_sandbox), fake_list },
	};
	int calls = 0;
	struct cric_call call = { .daemon = "test", .method = "x" };
	struct cric_err err = { 0 };
	char method[IPC_METHOD_MAX + 1];
	assert_int_equal(
	    cric_method_name(CRI_RUNTIME(stream_pod_sandboxes), method, sizeof(method)), 0);

	Runtime__V1__PodSandboxFilter f = RUNTIME__V1__POD_SANDBOX_FILTER__INIT;
	f.id = "6";
	Runtime__V1__StreamPodSandboxesRequest sreq =
	    RUNTIME__V1__STREAM_POD_SANDBOXES_REQUEST__INIT;
	sreq.filter = &f;
	uint8_t buf[64];
	size_t blen = runtime__v1__stream_pod_sandboxes_request__pack(&sreq, buf);

	Cric__Listpage__ListPageRequest req = CRIC__LISTPAGE__LIST_PAGE_REQUEST__INIT;
	req.method = method;
	req.request.data = buf;
	req.request.len = blen;
	req.max_items = 4;
	ProtobufCMessage *out = NULL;
	assert_int_equal(listpage_serve(twins, 1, &calls, &call, &req.base, &out, &err), 0);
	Cric__Listpage__ListPageResponse *resp = (void *)out;
	assert_string_equal(resp->next, "p03");
	Runtime__V1__StreamPodSandboxesResponse *page =
	    runtime__v1__stream_pod_sandboxes_response__unpack(NULL, resp->page.len,
							       resp->page.data);
	assert_int_equal(page->n_pod_sandboxes, 4);
	protobuf_c_message_free_unpacked(&page->base, NULL);
	req.after = "p03";
	protobuf_c_message_free_unpacked(out, NULL);
	assert_int_equal(listpage_serve(twins, 1, &calls, &call, &req.base, &out, &err), 0);
	resp = (void *)out;
	assert_string_equal(resp->next, "");
	protobuf_c_message_free_unpacked(out, NULL);
	assert_int_equal(calls, 2);

	/* Another stream method, garbage, a cursor too long: refused before
	 * the List runs. */
	req.method = "/runtime.v1.RuntimeService/StreamContainers";
	assert_int_equal(listpage_serve(twins, 1, &calls, &call, &req.base, &out, &err),
			 -EOPNOTSUPP);
	req.method = method;
	uint8_t garbage[] = { 0xff, 0xff, 0xff, 0xff, 0x0f };
	req.request.data = garbage;
	req.request.len = sizeof(garbage);
	assert_int_equal(listpage_serve(twins, 1, &calls, &call, &req.base, &out, &err), -EINVAL);
	req.request.data = buf;
	req.request.len = blen;
	char longc[600];
	memset(longc, 'a', sizeof(longc) - 1);
	longc[sizeof(longc) - 1] = '\0';
	req.after = longc;
	assert_int_equal(listpage_serve(twins, 1, &calls, &call, &req.base, &out, &err), -EINVAL);
	assert_int_equal(calls, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_stream_call_is_its_lists_twin),
		cmocka_unit_test(test_item_keys),
		cmocka_unit_test(test_pages_by_count_and_bytes),
		cmocka_unit_test(test_serve),
	};
	return cmocka_run_group_tests_name("listpage", tests, NULL, NULL);
}
