/* common/ipc.h envelope and reply codec: round trips and hostile input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/ipc.h"
#include "proto/cric/health.pb-c.h"

/* ---- a tiny protobuf writer, to craft what envelope_pack would refuse ---- */

struct pbw {
	uint8_t buf[4096];
	size_t n;
};

static void pbw_varint(struct pbw *w, uint64_t v)
{
	do {
		assert_true(w->n < sizeof(w->buf));
		w->buf[w->n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
}

static void pbw_bytes(struct pbw *w, unsigned field, const void *data, size_t len)
{
	pbw_varint(w, (uint64_t)field << 3 | 2);
	pbw_varint(w, len);
	assert_true(w->n + len <= sizeof(w->buf));
	memcpy(w->buf + w->n, data, len);
	w->n += len;
}

static void pbw_int(struct pbw *w, unsigned field, uint64_t v)
{
	pbw_varint(w, (uint64_t)field << 3 | 0);
	pbw_varint(w, v);
}

/* An Envelope with exactly these field bytes. */
static void craft_envelope(struct pbw *w, const char *method, size_t mlen, const char *rid,
			   int64_t deadline)
{
	memset(w, 0, sizeof(*w));
	pbw_bytes(w, 1, method, mlen);
	if (rid)
		pbw_bytes(w, 2, rid, strlen(rid));
	if (deadline)
		pbw_int(w, 3, (uint64_t)deadline);
	pbw_bytes(w, 4, "p", 1);
}

/* envelope_unpack must fail with want, leave env alone, and say why. */
static void unpack_fails(const uint8_t *data, size_t len, int want, const char *needle)
{
	struct cric_envelope env;
	memset(&env, 0xa5, sizeof(env));
	struct cric_envelope copy = env;
	struct cric_err err = { { 0 } };
	int r = envelope_unpack(data, len, &env, &err);
	if (r != want)
		print_message("envelope_unpack: r=%d (want %d) msg=%s\n", r, want, err.msg);
	assert_int_equal(r, want);
	assert_memory_equal(&env, &copy, sizeof(env));
	if (needle)
		assert_non_null(strstr(err.msg, needle));
	/* err is optional. */
	assert_int_equal(envelope_unpack(data, len, &env, NULL), want);
}

/* ---- envelope ---- */

static void test_envelope_round_trip(void **state)
{
	(void)state;
	static const uint8_t payload[] = { 0, 1, 2, 0xff, 0, 'x' };
	uint8_t *buf = NULL;
	size_t n = 0;
	assert_int_equal(envelope_pack("/runtime.v1.RuntimeService/Version", "req-1.a_B",
				       1700000000123456789LL, payload, sizeof(payload), &buf, &n),
			 0);
	assert_non_null(buf);
	assert_true(n > sizeof(payload));

	struct cric_envelope env;
	struct cric_err err = { { 0 } };
	assert_int_equal(envelope_unpack(buf, n, &env, &err), 0);
	assert_string_equal(env.method, "/runtime.v1.RuntimeService/Version");
	assert_string_equal(env.request_id, "req-1.a_B");
	assert_int_equal(env.deadline_ns, 1700000000123456789LL);
	assert_int_equal(env.len, sizeof(payload));
	assert_memory_equal(env.payload, payload, sizeof(payload));
	assert_non_null(env.owner);
	free(buf); /* the envelope does not point into the wire buffer */
	assert_memory_equal(env.payload, payload, sizeof(payload));
	envelope_done(&env);
	assert_null(env.owner);
	assert_null(env.payload);
	assert_int_equal(env.len, 0);
	envelope_done(&env); /* twice is harmless */
}

static void test_envelope_minimal_and_limits(void **state)
{
	(void)state;
	uint8_t *buf = NULL;
	size_t n = 0;
	struct cric_envelope env;

	/* Empty request id, no deadline, no payload. */
	assert_int_equal(envelope_pack("m", "", 0, NULL, 0, &buf, &n), 0);
	assert_int_equal(envelope_unpack(buf, n, &env, NULL), 0);
	assert_string_equal(env.method, "m");
	assert_string_equal(env.request_id, "");
	assert_int_equal(env.deadline_ns, 0);
	assert_int_equal(env.len, 0);
	envelope_done(&env);
	free(buf);

	/* Longest method and request id. */
	char method[IPC_METHOD_MAX + 1], rid[IPC_REQUEST_ID_MAX + 1];
	memset(method, 'M', sizeof(method) - 1);
	method[IPC_METHOD_MAX] = '\0';
	memset(rid, 'r', sizeof(rid) - 1);
	rid[IPC_REQUEST_ID_MAX] = '\0';
	assert_int_equal(envelope_pack(method, rid, INT64_MAX, "x", 1, &buf, &n), 0);
	assert_int_equal(envelope_unpack(buf, n, &env, NULL), 0);
	assert_string_equal(env.method, method);
	assert_string_equal(env.request_id, rid);
	assert_int_equal(env.deadline_ns, INT64_MAX);
	envelope_done(&env);
	free(buf);

	/* A large payload. */
	size_t big = 1024 * 1024;
	uint8_t *p = malloc(big);
	assert_non_null(p);
	for (size_t i = 0; i < big; i++)
		p[i] = (uint8_t)(i * 7);
	assert_int_equal(envelope_pack("m", "r", 1, p, big, &buf, &n), 0);
	assert_int_equal(envelope_unpack(buf, n, &env, NULL), 0);
	assert_int_equal(env.len, big);
	assert_memory_equal(env.payload, p, big);
	envelope_done(&env);
	free(buf);
	free(p);
}

static void test_envelope_invalid_methods(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"",     " ",     "a b",     " lead",       "trail ", "tab\there",
		"nl\n", "\x01x", "del\x7f", "caf\xc3\xa9", "\xff",   "cr\r",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct pbw w;
		craft_envelope(&w, bad[i], strlen(bad[i]), "rid", 1);
		unpack_fails(w.buf, w.n, -EINVAL, "method");
		/* envelope_pack does not validate; unpack is the gate. */
		uint8_t *buf = NULL;
		size_t n = 0;
		assert_int_equal(envelope_pack(bad[i], "rid", 1, NULL, 0, &buf, &n), 0);
		unpack_fails(buf, n, -EINVAL, "method");
		free(buf);
	}
	/* One over the maximum length. */
	char m[IPC_METHOD_MAX + 2];
	memset(m, 'm', sizeof(m));
	struct pbw w;
	craft_envelope(&w, m, IPC_METHOD_MAX + 1, "rid", 1);
	unpack_fails(w.buf, w.n, -EINVAL, "method");
	static char longm[2000];
	memset(longm, 'm', sizeof(longm));
	craft_envelope(&w, longm, sizeof(longm), "rid", 1);
	unpack_fails(w.buf, w.n, -EINVAL, "method");
	/* Missing method field entirely. */
	memset(&w, 0, sizeof(w));
	pbw_bytes(&w, 2, "rid", 3);
	unpack_fails(w.buf, w.n, -EINVAL, "method");
	unpack_fails((const uint8_t *)"", 0, -EINVAL, "method");
}

static void test_envelope_invalid_request_ids(void **state)
{
	(void)state;
	static const char *const bad[] = {
		".", ".x", "../x", "a/b", "a b", "x\n", "a:b", "\xff", "caf\xc3\xa9",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct pbw w;
		craft_envelope(&w, "m", 1, bad[i], 1);
		unpack_fails(w.buf, w.n, -EINVAL, "request id");
	}
	char rid[IPC_REQUEST_ID_MAX + 2];
	memset(rid, 'r', sizeof(rid) - 1);
	rid[IPC_REQUEST_ID_MAX + 1] = '\0';
	struct pbw w;
	craft_envelope(&w, "m", 1, rid, 1);
	unpack_fails(w.buf, w.n, -EINVAL, "request id");
}

static void test_envelope_negative_deadline(void **state)
{
	(void)state;
	static const int64_t bad[] = { -1, -1000000000LL, INT64_MIN };
	for (size_t i = 0; i < 3; i++) {
		uint8_t *buf = NULL;
		size_t n = 0;
		assert_int_equal(envelope_pack("m", "r", bad[i], NULL, 0, &buf, &n), 0);
		unpack_fails(buf, n, -EINVAL, "deadline");
		free(buf);
	}
}

static void test_envelope_garbage(void **state)
{
	(void)state;
	/* Bytes that are no protobuf at all. */
	unpack_fails((const uint8_t *)"\xff\xff\xff\xff", 4, -EBADMSG, "undecodable");
	unpack_fails((const uint8_t *)"\x00", 1, -EBADMSG, NULL);     /* field 0 */
	unpack_fails((const uint8_t *)"\x0f", 1, -EBADMSG, NULL);     /* wire type 7 */
	unpack_fails((const uint8_t *)"\x0a", 1, -EBADMSG, NULL);     /* tag, no length */
	unpack_fails((const uint8_t *)"\x18\x80", 2, -EBADMSG, NULL); /* varint cut */
	/* A varint longer than 10 bytes. */
	static const uint8_t longv[] = { 0x18, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
					 0x80, 0x80, 0x80, 0x80, 0x80, 0x01 };
	unpack_fails(longv, sizeof(longv), -EBADMSG, NULL);
	/* The method field is a varint instead of a string. */
	unpack_fails((const uint8_t *)"\x08\x01", 2, -EBADMSG, NULL);

	/* Deterministic random buffers: never crash; anything accepted is valid. */
	uint32_t seed = 12345;
	uint8_t buf[96];
	for (int iter = 0; iter < 50000; iter++) {
		size_t n = (size_t)(iter % (int)sizeof(buf));
		for (size_t i = 0; i < n; i++) {
			seed = seed * 1103515245u + 12345u;
			buf[i] = (uint8_t)(seed >> 16);
		}
		/* Half of them start like an envelope, to get past the first field. */
		if (iter & 1 && n > 4) {
			buf[0] = 0x0a;
			buf[1] = 2;
			buf[2] = 'm';
			buf[3] = 'x';
		}
		uint8_t *copy = malloc(n ? n : 1); /* exact size: ASan sees overreads */
		assert_non_null(copy);
		memcpy(copy, buf, n);
		struct cric_envelope env;
		if (envelope_unpack(copy, n, &env, NULL) == 0) {
			assert_true(strlen(env.method) >= 1 &&
				    strlen(env.method) <= IPC_METHOD_MAX);
			assert_true(env.deadline_ns >= 0);
			envelope_done(&env);
		}
		free(copy);
	}
}

static void test_envelope_truncated_and_flipped(void **state)
{
	(void)state;
	uint8_t *buf = NULL;
	size_t n = 0;
	assert_int_equal(
	    envelope_pack("cric.netd.NetworkStatus", "abc123", 42, "payload-bytes", 13, &buf, &n),
	    0);
	/* Cut inside the last field (the payload): must fail. */
	for (size_t cut = n - 13; cut < n; cut++)
		unpack_fails(buf, cut, -EBADMSG, NULL);
	/* Every prefix: never crash. */
	for (size_t cut = 0; cut <= n; cut++) {
		uint8_t *copy = malloc(cut ? cut : 1);
		memcpy(copy, buf, cut);
		struct cric_envelope env;
		if (envelope_unpack(copy, cut, &env, NULL) == 0)
			envelope_done(&env);
		free(copy);
	}
	/* Every single-bit flip: never crash. */
	for (size_t i = 0; i < n; i++) {
		for (int b = 0; b < 8; b++) {
			uint8_t *copy = malloc(n);
			memcpy(copy, buf, n);
			copy[i] ^= (uint8_t)(1u << b);
			struct cric_envelope env;
			if (envelope_unpack(copy, n, &env, NULL) == 0)
				envelope_done(&env);
			free(copy);
		}
	}
	free(buf);
}

static void test_envelope_oversized_claims(void **state)
{
	(void)state;
	struct pbw w;
	/* A payload claiming 4 GiB with 3 bytes behind it. */
	memset(&w, 0, sizeof(w));
	pbw_bytes(&w, 1, "m", 1);
	pbw_varint(&w, 4 << 3 | 2);
	pbw_varint(&w, 0xffffffffULL);
	memcpy(w.buf + w.n, "abc", 3);
	w.n += 3;
	unpack_fails(w.buf, w.n, -EBADMSG, NULL);
	/* ... claiming 2^63 and 2^64-1. */
	memset(&w, 0, sizeof(w));
	pbw_bytes(&w, 1, "m", 1);
	pbw_varint(&w, 4 << 3 | 2);
	pbw_varint(&w, 1ULL << 63);
	unpack_fails(w.buf, w.n, -EBADMSG, NULL);
	memset(&w, 0, sizeof(w));
	pbw_bytes(&w, 1, "m", 1);
	pbw_varint(&w, 4 << 3 | 2);
	pbw_varint(&w, UINT64_MAX);
	unpack_fails(w.buf, w.n, -EBADMSG, NULL);
	/* The method claiming more than there is. */
	memset(&w, 0, sizeof(w));
	pbw_varint(&w, 1 << 3 | 2);
	pbw_varint(&w, 1000);
	memcpy(w.buf + w.n, "short", 5);
	w.n += 5;
	unpack_fails(w.buf, w.n, -EBADMSG, NULL);

	/* A whole message over IPC_MAX_MESSAGE is refused before decoding. */
	size_t big = IPC_MAX_MESSAGE + 1;
	uint8_t *p = calloc(1, big);
	assert_non_null(p);
	unpack_fails(p, big, -E2BIG, "too large");
	free(p);
}

/* ---- reply ---- */

static void test_reply_round_trip(void **state)
{
	(void)state;
	uint8_t *buf = NULL;
	size_t n = 0;
	static const uint8_t payload[] = { 9, 0, 8 };
	assert_int_equal(
	    reply_pack(CODE_NOT_FOUND, "pod \"x\" not found", payload, sizeof(payload), &buf, &n),
	    0);
	struct cric_result res = { 0 };
	assert_int_equal(reply_unpack(buf, n, &res), 0);
	assert_int_equal(res.code, CODE_NOT_FOUND);
	assert_string_equal(res.message, "pod \"x\" not found");
	assert_int_equal(res.len, sizeof(payload));
	assert_memory_equal(res.payload, payload, sizeof(payload));
	free(buf);
	cric_result_clear(&res);
	assert_null(res.message);
	assert_null(res.payload);
	assert_int_equal(res.len, 0);
	assert_int_equal(res.code, 0);

	/* OK without message or payload: both NULL. */
	assert_int_equal(reply_pack(CODE_OK, NULL, NULL, 0, &buf, &n), 0);
	assert_int_equal(reply_unpack(buf, n, &res), 0);
	assert_int_equal(res.code, CODE_OK);
	assert_null(res.message);
	assert_null(res.payload);
	assert_int_equal(res.len, 0);
	free(buf);
	cric_result_clear(&res);

	/* Every valid code. */
	for (unsigned c = 0; c <= CODE_MAX; c++) {
		assert_int_equal(reply_pack(c, "m", NULL, 0, &buf, &n), 0);
		assert_int_equal(reply_unpack(buf, n, &res), 0);
		assert_int_equal(res.code, c);
		free(buf);
		cric_result_clear(&res);
	}
}

/* A Reply packed with its answer in place is the same bytes as one packed
 * from the answer's packed copy, and decodes to it. */
static void test_reply_pack_into(void **state)
{
	(void)state;
	char big[300]; /* a payload length of two varint bytes */
	memset(big, 'v', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	Cric__HealthResponse h = CRIC__HEALTH_RESPONSE__INIT;
	h.daemon = "runtimed";
	h.version = big;
	h.pid = 42;
	Cric__HealthResponse empty = CRIC__HEALTH_RESPONSE__INIT; /* packs to nothing */
	const struct {
		unsigned code;
		const char *message;
		const ProtobufCMessage *payload;
	} cases[] = {
		{ CODE_OK, NULL, &h.base },
		{ CODE_OK, "", &empty.base },
		{ CODE_OK, NULL, NULL },
		{ CODE_NOT_FOUND, "pod \"x\" not found", NULL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t payload[512];
		size_t plen =
		    cases[i].payload ? protobuf_c_message_pack(cases[i].payload, payload) : 0;
		uint8_t *want = NULL;
		size_t n = 0;
		assert_int_equal(
		    reply_pack(cases[i].code, cases[i].message, payload, plen, &want, &n), 0);
		assert_int_equal(
		    reply_packed_size(cases[i].code, cases[i].message, cases[i].payload), n);
		uint8_t *got = malloc(n ? n : 1);
		assert_non_null(got);
		reply_pack_into(cases[i].code, cases[i].message, cases[i].payload, got);
		assert_memory_equal(got, want, n);
		struct cric_result res = { 0 };
		assert_int_equal(reply_unpack(got, n, &res), 0);
		assert_int_equal(res.code, cases[i].code);
		assert_int_equal(res.len, plen);
		if (plen)
			assert_memory_equal(res.payload, payload, plen);
		cric_result_clear(&res);
		free(got);
		free(want);
	}
}

static void test_reply_rejects(void **state)
{
	(void)state;
	static const unsigned bad_codes[] = { CODE_MAX + 1, 100, 0xffffffffu };
	for (size_t i = 0; i < 3; i++) {
		uint8_t *buf = NULL;
		size_t n = 0;
		assert_int_equal(reply_pack(bad_codes[i], "m", "p", 1, &buf, &n), 0);
		struct cric_result res = { .code = 77 };
		assert_int_equal(reply_unpack(buf, n, &res), -EBADMSG);
		assert_int_equal(res.code, 77);
		assert_null(res.message);
		free(buf);
	}
	/* A code given as a 64-bit varint. */
	struct pbw w = { .n = 0 };
	pbw_int(&w, 1, 1ULL << 32 | 5);
	struct cric_result res = { .code = 77 };
	int r = reply_unpack(w.buf, w.n, &res);
	if (r == 0) {
		/* protobuf truncates uint32 varints; then it must be that value. */
		assert_int_equal(res.code, 5);
		cric_result_clear(&res);
	}
	/* Garbage and truncation. */
	res.code = 77;
	assert_int_equal(reply_unpack((const uint8_t *)"\xff\xff", 2, &res), -EBADMSG);
	assert_int_equal(reply_unpack((const uint8_t *)"\x12\x05"
						       "ab",
				      4, &res),
			 -EBADMSG);
	memset(&w, 0, sizeof(w));
	pbw_varint(&w, 3 << 3 | 2);
	pbw_varint(&w, UINT64_MAX);
	assert_int_equal(reply_unpack(w.buf, w.n, &res), -EBADMSG);
	assert_int_equal(res.code, 77);

	uint32_t seed = 99;
	uint8_t buf[64];
	for (int iter = 0; iter < 30000; iter++) {
		size_t n = (size_t)(iter % (int)sizeof(buf));
		for (size_t i = 0; i < n; i++) {
			seed = seed * 1664525u + 1013904223u;
			buf[i] = (uint8_t)(seed >> 24);
		}
		uint8_t *copy = malloc(n ? n : 1);
		memcpy(copy, buf, n);
		struct cric_result rr = { 0 };
		if (reply_unpack(copy, n, &rr) == 0) {
			assert_true(rr.code <= CODE_MAX);
			cric_result_clear(&rr);
		}
		free(copy);
	}
}

static void test_result_helpers(void **state)
{
	(void)state;
	struct cric_result r = { 0 };
	cric_result_set(&r, CODE_UNAVAILABLE, "%s is %d", "netd", 7);
	assert_int_equal(r.code, CODE_UNAVAILABLE);
	assert_string_equal(r.message, "netd is 7");
	/* Setting again frees the previous content (LeakSanitizer checks). */
	r.payload = malloc(10);
	r.len = 10;
	cric_result_set(&r, CODE_INTERNAL, "x");
	assert_null(r.payload);
	assert_int_equal(r.len, 0);
	assert_string_equal(r.message, "x");
	cric_result_clear(&r);
	cric_result_clear(&r);
	assert_null(r.message);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_envelope_round_trip),
		cmocka_unit_test(test_envelope_minimal_and_limits),
		cmocka_unit_test(test_envelope_invalid_methods),
		cmocka_unit_test(test_envelope_invalid_request_ids),
		cmocka_unit_test(test_envelope_negative_deadline),
		cmocka_unit_test(test_envelope_garbage),
		cmocka_unit_test(test_envelope_truncated_and_flipped),
		cmocka_unit_test(test_envelope_oversized_claims),
		cmocka_unit_test(test_reply_round_trip),
		cmocka_unit_test(test_reply_pack_into),
		cmocka_unit_test(test_reply_rejects),
		cmocka_unit_test(test_result_helpers),
	};
	return cmocka_run_group_tests_name("envelope", tests, NULL, NULL);
}
