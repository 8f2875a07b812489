/* common/ipc.h: a real cric_server and cric_client over ipc:// in a temp dir.
 *
 * Every test runs in a process of its own (see run_isolated(): one that
 * crashes cannot take the others down) and gets its own server ("testd",
 * 4 workers) and a connected client. Synchronisation is by condition
 * variables signalled from handlers and completion callbacks, always with a
 * bounded wait; the only polling is for cric_client_connected(), in a
 * bounded loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "common/ids.h"
#include "common/ipc.h"
#include "common/ipc_listen.h"
#include "common/service.h"
#include "common/pbutil.h"
#include "proto/cric/internal.pb-c.h"
#include "testutil.h"

#define HEALTH_METHOD "cric.Health"
#define SLOW_MS       300
#define WAIT_MS       10000 /* upper bound for anything that should happen */
#define WATCHDOG_S    60

struct fixture {
	char *dir;
	char url[PATH_MAX];
	struct cric_server *srv;
	struct cric_client *cli;
	int64_t started_ns;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	int slow_entered;
	int slow_left;
	int left_at_entry[8]; /* slow_left when the nth slow call entered */
	char seen_request_id[IPC_REQUEST_ID_MAX + 1];
	int64_t seen_deadline;
	char seen_daemon[32];
	int wait_entered;   /* h_wait_cancel started */
	int wait_cancelled; /* h_wait_cancel saw its flag */
	int woken;          /* the server's cancelled hook ran */
};

/* ---- handlers ---- */

static int h_echo(void *userdata, const struct cric_call *call, const ProtobufCMessage *req,
		  ProtobufCMessage **resp, struct cric_err *err)
{
	(void)err;
	struct fixture *f = userdata;
	const Cric__Netd__NetworkStatusResponse *in = (const void *)req;
	pthread_mutex_lock(&f->lock);
	snprintf(f->seen_request_id, sizeof(f->seen_request_id), "%s", call->request_id);
	snprintf(f->seen_daemon, sizeof(f->seen_daemon), "%s", call->daemon);
	f->seen_deadline = call->deadline_ns;
	pthread_mutex_unlock(&f->lock);

	Cric__Netd__NetworkStatusResponse *out =
	    pb_new(&cric__netd__network_status_response__descriptor);
	if (!out)
		return -ENOMEM;
	out->ready = in->ready;
	if (pb_set_str(&out->reason, in->reason) < 0 ||
	    pb_set_str(&out->message, in->message) < 0 ||
	    pb_set_str(&out->conf_file, in->conf_file) < 0 ||
	    pb_set_str(&out->network_name, in->network_name) < 0) {
		protobuf_c_message_free_unpacked(&out->base, NULL);
		return -ENOMEM;
	}
	*resp = &out->base;
	return 0;
}

static int h_fail(void *userdata, const struct cric_call *call, const ProtobufCMessage *req,
		  ProtobufCMessage **resp, struct cric_err *err)
{
	(void)userdata;
	(void)call;
	(void)req;
	(void)resp;
	return err_set(err, -ENOENT, "no such thing \"%s\"", "x");
}

static int h_fail_bare(void *userdata, const struct cric_call *call, const ProtobufCMessage *req,
		       ProtobufCMessage **resp, struct cric_err *err)
{
	(void)userdata;
	(void)call;
	(void)req;
	(void)resp;
	(void)err;
	return -EEXIST;
}

static int h_slow(void *userdata, const struct cric_call *call, const ProtobufCMessage *req,
		  ProtobufCMessage **resp, struct cric_err *err)
{
	(void)call;
	(void)req;
	(void)err;
	struct fixture *f = userdata;
	pthread_mutex_lock(&f->lock);
	if (f->slow_entered < (int)ARRAY_SIZE(f->left_at_entry))
		f->left_at_entry[f->slow_entered] = f->slow_left;
	f->slow_entered++;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);

	sleep_ms(SLOW_MS); /* the handler's work, not synchronisation */

	Cric__HealthResponse *out = pb_new(&cric__health_response__descriptor);
	if (!out)
		return -ENOMEM;
	if (pb_set_str(&out->daemon, "slow") < 0 || pb_set_str(&out->version, "") < 0) {
		protobuf_c_message_free_unpacked(&out->base, NULL);
		return -ENOMEM;
	}
	pthread_mutex_lock(&f->lock);
	f->slow_left++;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	*resp = &out->base;
	return 0;
}

/* Leaves CHURN_BYTES of its heap free but resident, below a block it
 * keeps (churn_pin, freed by the test): glibc alone cannot give it back. */
#define CHURN_BYTES (32u << 20)
#define CHURN_BLOCK (64u << 10)
static void *churn_pin;

static int h_churn(void *userdata, const struct cric_call *call, const ProtobufCMessage *req,
		   ProtobufCMessage **resp, struct cric_err *err)
{
	(void)userdata;
	(void)call;
	(void)req;
	(void)err;
	enum { N = CHURN_BYTES / CHURN_BLOCK };
	static void *blocks[N];
	for (unsigned i = 0; i < N; i++) {
		if (!(blocks[i] = malloc(CHURN_BLOCK - 64)))
			return -ENOMEM;
		memset(blocks[i], 0x5a, CHURN_BLOCK - 64);
	}
	churn_pin = malloc(64);
	for (unsigned i = 0; i < N; i++)
		free(blocks[i]);
	Cric__HealthResponse *out = pb_new(&cric__health_response__descriptor);
	if (!out)
		return -ENOMEM;
	*resp = &out->base;
	return 0;
}

/* Waits (bounded) until its call is cancelled: -ECANCELED, or -ETIME
 * when nobody cancelled it within WAIT_MS. The server's cancelled hook
 * (on_cancelled) wakes it. */
static int h_wait_cancel(void *userdata, const struct cric_call *call, const ProtobufCMessage *req,
			 ProtobufCMessage **resp, struct cric_err *err)
{
	(void)req;
	(void)resp;
	struct fixture *f = userdata;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += WAIT_MS / 1000;
	pthread_mutex_lock(&f->lock);
	f->wait_entered++;
	pthread_cond_broadcast(&f->cond);
	while (!cric_call_cancelled(call) && pthread_cond_timedwait(&f->cond, &f->lock, &ts) == 0)
		;
	bool cancelled = cric_call_cancelled(call);
	f->wait_cancelled += cancelled;
	pthread_mutex_unlock(&f->lock);
	if (!cancelled)
		return err_set(err, -ETIME, "nobody cancelled");
	return err_set(err, -ECANCELED, "cancelled");
}

static void on_cancelled(void *userdata)
{
	struct fixture *f = userdata;
	pthread_mutex_lock(&f->lock);
	f->woken++;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
}

/* A service of the test's own ("cric.test.Echo" ... on the wire), its
 * descriptor written as protoc-c would generate it. */
static const ProtobufCMethodDescriptor test_methods[] = {
	{ "Echo", &cric__netd__network_status_response__descriptor,
	  &cric__netd__network_status_response__descriptor },
	{ "Fail", &cric__health_request__descriptor, &cric__health_response__descriptor },
	{ "FailBare", &cric__health_request__descriptor, &cric__health_response__descriptor },
	{ "Slow", &cric__health_request__descriptor, &cric__health_response__descriptor },
	{ "Later", &cric__health_request__descriptor, &cric__health_response__descriptor },
	{ "WaitCancel", &cric__health_request__descriptor, &cric__health_response__descriptor },
	{ "Churn", &cric__health_request__descriptor, &cric__health_response__descriptor },
};
static const unsigned test_methods_by_name[] = { 6, 0, 1, 2, 4, 3, 5 };
static const ProtobufCServiceDescriptor test_service = {
	PROTOBUF_C__SERVICE_DESCRIPTOR_MAGIC,
	"cric.test.Test",
	"Test",
	"Cric__Test__Test",
	"cric.test",
	7,
	test_methods,
	test_methods_by_name,
};
static const struct cric_handler test_lines[] = {
	{ { &test_service, 0 }, h_echo, CALLER_ANY },
	{ { &test_service, 1 }, h_fail, CALLER_ANY },
	{ { &test_service, 2 }, h_fail_bare, CALLER_ANY },
	{ { &test_service, 3 }, h_slow, CALLER_ANY },
	{ { &test_service, 4 }, NULL, CALLER_ANY }, /* declared, not implemented */
	{ { &test_service, 5 }, h_wait_cancel, CALLER_ANY },
	{ { &test_service, 6 }, h_churn, CALLER_ANY },
};
static const struct cric_service services[] = {
	{ &test_service, test_lines, sizeof(test_lines) / sizeof(test_lines[0]) },
};

/* ---- fixture ---- */

static int start_server(struct fixture *f, struct cric_server **ret, struct cric_err *err)
{
	struct cric_server_config cfg = {
		.daemon = "testd",
		.version = "1.2.3",
		.url = f->url,
		.ids = { (uid_t)-1, getuid() == 0 ? (uid_t)-1 : getuid(), (gid_t)-1, NULL },
		.workers = 4,
		.services = services,
		.n_services = 1,
		.userdata = f,
		.cancelled = on_cancelled,
	};
	return cric_server_start(&cfg, ret, err);
}

/* Poll (bounded) until the client's connection state is want. */
static bool wait_connected(struct cric_client *c, bool want)
{
	int64_t end = mono_ms() + WAIT_MS;
	while (cric_client_connected(c) != want) {
		if (mono_ms() > end)
			return false;
		sleep_ms(5);
	}
	return true;
}

static int setup(void **state)
{
	/* Watchdog: a hung test (or a hang in cric_server_stop) kills the run
	 * with SIGALRM instead of blocking it forever. */
	alarm(WATCHDOG_S);
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
	f->dir = tmpdir_make("ipc");
	snprintf(f->url, sizeof(f->url), "ipc://%s/testd.sock", f->dir);
	f->started_ns = now_unix_ns();
	struct cric_err err = { { 0 } };
	int r = start_server(f, &f->srv, &err);
	if (r < 0)
		print_message("cric_server_start: %d %s\n", r, err.msg);
	assert_int_equal(r, 0);
	r = cric_client_open("testd", f->url, &f->cli, &err);
	if (r < 0)
		print_message("cric_client_open: %d %s\n", r, err.msg);
	assert_int_equal(r, 0);
	assert_true(wait_connected(f->cli, true));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	cric_client_close(f->cli);
	cric_server_stop(f->srv);
	tmpdir_remove(f->dir);
	pthread_mutex_destroy(&f->lock);
	pthread_cond_destroy(&f->cond);
	free(f);
	alarm(0);
	return 0;
}

/* Wait (bounded) until *counter >= n under f->lock. */
static bool wait_count(struct fixture *f, const int *counter, int n)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += WAIT_MS / 1000;
	bool ok = true;
	pthread_mutex_lock(&f->lock);
	while (*counter < n && ok)
		ok = pthread_cond_timedwait(&f->cond, &f->lock, &ts) == 0 || *counter >= n;
	pthread_mutex_unlock(&f->lock);
	return ok;
}

/* ---- an async call and its completion ---- */

struct async_call {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int done; /* times the callback ran */
	unsigned code;
	char *message;
	uint8_t *payload;
	size_t len;
	int64_t done_ms;
};

static void async_init(struct async_call *a)
{
	memset(a, 0, sizeof(*a));
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->cond, NULL);
}

static void async_cb(void *arg, struct cric_result *res)
{
	struct async_call *a = arg;
	pthread_mutex_lock(&a->lock);
	a->done++;
	a->code = res->code;
	a->message = TAKE_PTR(res->message);
	a->payload = TAKE_PTR(res->payload);
	a->len = res->len;
	a->done_ms = mono_ms();
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->lock);
}

static bool async_wait(struct async_call *a)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += WAIT_MS / 1000;
	pthread_mutex_lock(&a->lock);
	while (!a->done && pthread_cond_timedwait(&a->cond, &a->lock, &ts) == 0)
		;
	bool done = a->done;
	pthread_mutex_unlock(&a->lock);
	return done;
}

static bool async_is_done(struct async_call *a)
{
	pthread_mutex_lock(&a->lock);
	bool done = a->done;
	pthread_mutex_unlock(&a->lock);
	return done;
}

static void async_done(struct async_call *a)
{
	free(a->message);
	free(a->payload);
	pthread_mutex_destroy(&a->lock);
	pthread_cond_destroy(&a->cond);
}

static void start_slow(struct fixture *f, struct async_call *a, int64_t deadline_ms)
{
	async_init(a);
	Cric__HealthRequest req = CRIC__HEALTH_REQUEST__INIT;
	uint8_t buf[16];
	size_t n = cric__health_request__pack(&req, buf);
	assert_int_equal(cric_client_call_async(f->cli, "cric.test.Slow", NULL,
						deadline_in_ms(deadline_ms), buf, n, async_cb, a),
			 0);
}

static unsigned call_echo(struct fixture *f, const char *name, char **message)
{
	Cric__Netd__NetworkStatusResponse req = CRIC__NETD__NETWORK_STATUS_RESPONSE__INIT;
	req.ready = true;
	req.network_name = (char *)name;
	ProtobufCMessage *out = NULL;
	unsigned code =
	    cric_client_call_pb(f->cli, "cric.test.Echo", NULL, deadline_in_ms(5000), &req.base,
				&cric__netd__network_status_response__descriptor, &out, message);
	if (code == CODE_OK) {
		Cric__Netd__NetworkStatusResponse *o = (void *)out;
		assert_true(o->ready);
		assert_string_equal(o->network_name, name);
		protobuf_c_message_free_unpacked(out, NULL);
	} else {
		assert_null(out);
	}
	return code;
}

/* ---- tests ---- */

static void test_echo(void **state)
{
	struct fixture *f = *state;
	assert_string_equal(cric_client_name(f->cli), "testd");

	Cric__Netd__NetworkStatusResponse req = CRIC__NETD__NETWORK_STATUS_RESPONSE__INIT;
	req.ready = true;
	req.reason = "NetworkPluginNotReady";
	req.message = "caf\xc3\xa9 \"quoted\"";
	req.conf_file = "/etc/cni/net.d/10-cric.conflist";
	req.network_name = "cric";
	ProtobufCMessage *out = NULL;
	char *msg = (char *)"untouched";
	int64_t deadline = deadline_in_ms(5000);
	unsigned code =
	    cric_client_call_pb(f->cli, "cric.test.Echo", "my-req.1", deadline, &req.base,
				&cric__netd__network_status_response__descriptor, &out, &msg);
	assert_int_equal(code, CODE_OK);
	assert_null(msg);
	assert_non_null(out);
	Cric__Netd__NetworkStatusResponse *o = (void *)out;
	assert_true(o->ready);
	assert_string_equal(o->reason, req.reason);
	assert_string_equal(o->message, req.message);
	assert_string_equal(o->conf_file, req.conf_file);
	assert_string_equal(o->network_name, req.network_name);
	protobuf_c_message_free_unpacked(out, NULL);

	/* The handler saw the request id, deadline and daemon name. */
	pthread_mutex_lock(&f->lock);
	assert_string_equal(f->seen_request_id, "my-req.1");
	assert_int_equal(f->seen_deadline, deadline);
	assert_string_equal(f->seen_daemon, "testd");
	pthread_mutex_unlock(&f->lock);

	/* Without a request id one is generated; without a deadline one applies. */
	out = NULL;
	code = cric_client_call_pb(f->cli, "cric.test.Echo", NULL, 0, &req.base,
				   &cric__netd__network_status_response__descriptor, &out, NULL);
	assert_int_equal(code, CODE_OK);
	protobuf_c_message_free_unpacked(out, NULL);
	pthread_mutex_lock(&f->lock);
	assert_true(id_is_safe_token(f->seen_request_id, IPC_REQUEST_ID_MAX));
	assert_true(f->seen_deadline > now_unix_ns());
	pthread_mutex_unlock(&f->lock);

	/* An empty message round-trips too. */
	Cric__Netd__NetworkStatusResponse empty = CRIC__NETD__NETWORK_STATUS_RESPONSE__INIT;
	code =
	    cric_client_call_pb(f->cli, "cric.test.Echo", NULL, deadline_in_ms(5000), &empty.base,
				&cric__netd__network_status_response__descriptor, &out, NULL);
	assert_int_equal(code, CODE_OK);
	assert_false(((Cric__Netd__NetworkStatusResponse *)out)->ready);
	protobuf_c_message_free_unpacked(out, NULL);
}

static void test_unknown_method(void **state)
{
	struct fixture *f = *state;
	Cric__HealthRequest req = CRIC__HEALTH_REQUEST__INIT;
	ProtobufCMessage *out = (ProtobufCMessage *)0x1;
	char *msg = NULL;
	unsigned code =
	    cric_client_call_pb(f->cli, "cric.test.Nope", NULL, deadline_in_ms(5000), &req.base,
				&cric__health_response__descriptor, &out, &msg);
	assert_int_equal(code, CODE_UNIMPLEMENTED);
	assert_null(out);
	assert_non_null(msg);
	assert_non_null(strstr(msg, "cric.test.Nope"));
	free(msg);
}

/* A method of the table without a handler answers UNIMPLEMENTED naming the
 * daemon and the method; cric_call() derives the name and both types from
 * the descriptor. */
static void test_typed_calls(void **state)
{
	struct fixture *f = *state;
	Cric__HealthRequest req = CRIC__HEALTH_REQUEST__INIT;
	ProtobufCMessage *out = (ProtobufCMessage *)0x1;
	char *msg = NULL;
	unsigned code = cric_call(f->cli, (struct cric_method_ref){ &test_service, 4 }, NULL,
				  deadline_in_ms(5000), &req.base, &out, &msg);
	assert_int_equal(code, CODE_UNIMPLEMENTED);
	assert_null(out);
	assert_non_null(msg);
	assert_non_null(strstr(msg, "cric.test.Later"));
	assert_non_null(strstr(msg, "cric's testd"));
	free(msg);

	Cric__Netd__NetworkStatusResponse echo = CRIC__NETD__NETWORK_STATUS_RESPONSE__INIT;
	echo.reason = "typed";
	code = cric_call(f->cli, (struct cric_method_ref){ &test_service, 0 }, NULL,
			 deadline_in_ms(5000), &echo.base, &out, &msg);
	assert_int_equal(code, CODE_OK);
	assert_ptr_equal(out->descriptor, &cric__netd__network_status_response__descriptor);
	assert_string_equal(((Cric__Netd__NetworkStatusResponse *)out)->reason, "typed");
	protobuf_c_message_free_unpacked(out, NULL);

	/* The wrong request type is the caller's bug: nothing is sent. */
	code = cric_call(f->cli, (struct cric_method_ref){ &test_service, 0 }, NULL,
			 deadline_in_ms(5000), &req.base, &out, &msg);
	assert_int_equal(code, CODE_INTERNAL);
	assert_null(out);
	assert_non_null(strstr(msg, "cric.netd.NetworkStatusResponse"));
	assert_non_null(strstr(msg, "cric.HealthRequest"));
	free(msg);

	/* cric.Health is served beside the daemon's own services. */
	code = cric_call(f->cli, CRIC_HEALTH(health), NULL, deadline_in_ms(5000), &req.base, &out,
			 &msg);
	assert_int_equal(code, CODE_OK);
	assert_string_equal(((Cric__HealthResponse *)out)->daemon, "testd");
	protobuf_c_message_free_unpacked(out, NULL);
}

static void test_handler_errors(void **state)
{
	struct fixture *f = *state;
	Cric__HealthRequest req = CRIC__HEALTH_REQUEST__INIT;
	ProtobufCMessage *out = NULL;
	char *msg = NULL;
	unsigned code =
	    cric_client_call_pb(f->cli, "cric.test.Fail", NULL, deadline_in_ms(5000), &req.base,
				&cric__health_response__descriptor, &out, &msg);
	assert_int_equal(code, CODE_NOT_FOUND);
	assert_null(out);
	assert_string_equal(msg, "no such thing \"x\"");
	free(msg);

	/* No message from the handler: the errno's text. */
	code = cric_client_call_pb(f->cli, "cric.test.FailBare", NULL, deadline_in_ms(5000),
				   &req.base, &cric__health_response__descriptor, &out, &msg);
	assert_int_equal(code, CODE_ALREADY_EXISTS);
	assert_string_equal(msg, strerror(EEXIST));
	free(msg);
	/* message may be NULL. */
	code = cric_client_call_pb(f->cli, "cric.test.Fail", NULL, deadline_in_ms(5000), &req.base,
				   &cric__health_response__descriptor, &out, NULL);
	assert_int_equal(code, CODE_NOT_FOUND);
}

static void test_undecodable_payload(void **state)
{
	struct fixture *f = *state;
	static const uint8_t junk[] = { 0x0a, 0xff, 0x01, 'x' }; /* string claiming 255 bytes */
	struct cric_result res;
	cric_client_call(f->cli, "cric.test.Echo", NULL, deadline_in_ms(5000), junk, sizeof(junk),
			 &res);
	assert_int_equal(res.code, CODE_INVALID_ARGUMENT);
	assert_non_null(res.message);
	assert_non_null(strstr(res.message, "cric.test.Echo"));
	assert_int_equal(res.len, 0);
	cric_result_clear(&res);

	/* An answer that does not decode as the expected type is INTERNAL: the
	 * echo's field 3 (message) is a string, HealthResponse's (pid) a varint. */
	Cric__Netd__NetworkStatusResponse req = CRIC__NETD__NETWORK_STATUS_RESPONSE__INIT;
	req.message = "x";
	ProtobufCMessage *out = NULL;
	char *msg = NULL;
	unsigned code =
	    cric_client_call_pb(f->cli, "cric.test.Echo", NULL, deadline_in_ms(5000), &req.base,
				&cric__health_response__descriptor, &out, &msg);
	assert_int_equal(code, CODE_INTERNAL);
	assert_null(out);
	assert_non_null(msg);
	free(msg);
}

static void test_health(void **state)
{
	struct fixture *f = *state;
	Cric__HealthRequest req = CRIC__HEALTH_REQUEST__INIT;
	ProtobufCMessage *out = NULL;
	unsigned code =
	    cric_client_call_pb(f->cli, HEALTH_METHOD, NULL, deadline_in_ms(5000), &req.base,
				&cric__health_response__descriptor, &out, NULL);
	assert_int_equal(code, CODE_OK);
	Cric__HealthResponse *h = (void *)out;
	assert_string_equal(h->daemon, "testd");
	assert_string_equal(h->version, "1.2.3");
	assert_int_equal(h->pid, getpid());
	assert_true(h->started_at_unix_ns >= f->started_ns);
	assert_true(h->started_at_unix_ns <= now_unix_ns());
	protobuf_c_message_free_unpacked(out, NULL);
}

static void test_deadline_exceeded(void **state)
{
	struct fixture *f = *state;
	Cric__HealthRequest req = CRIC__HEALTH_REQUEST__INIT;
	ProtobufCMessage *out = NULL;
	char *msg = NULL;
	int64_t t0 = mono_ms();
	unsigned code =
	    cric_client_call_pb(f->cli, "cric.test.Slow", NULL, deadline_in_ms(100), &req.base,
				&cric__health_response__descriptor, &out, &msg);
	int64_t took = mono_ms() - t0;
	assert_int_equal(code, CODE_DEADLINE_EXCEEDED);
	assert_null(out);
	assert_non_null(msg);
	free(msg);
	/* At the deadline, not when the handler finally answers. */
	print_message("deadline call took %lld ms\n", (long long)took);
	assert_true(took >= 90);
	assert_true(took < SLOW_MS);

	/* A deadline already in the past: refused without a round trip. */
	struct cric_result res;
	cric_client_call(f->cli, "cric.test.Echo", NULL, now_unix_ns() - 1000000, NULL, 0, &res);
	assert_int_equal(res.code, CODE_DEADLINE_EXCEEDED);
	cric_result_clear(&res);
	struct async_call a;
	async_init(&a);
	assert_int_equal(
	    cric_client_call_async(f->cli, "cric.test.Echo", NULL, 1, NULL, 0, async_cb, &a),
	    -ETIMEDOUT);
	assert_int_equal(a.done, 0);
	async_done(&a);

	/* The slow handler's late answer is dropped; the worker serves again. */
	assert_true(wait_count(f, &f->slow_left, 1));
	assert_int_equal(call_echo(f, "after", NULL), CODE_OK);
}

static void test_fast_while_slow(void **state)
{
	struct fixture *f = *state;
	struct async_call slow;
	start_slow(f, &slow, 5000);
	assert_true(wait_count(f, &f->slow_entered, 1));

	int64_t t0 = mono_ms();
	assert_int_equal(call_echo(f, "fast", NULL), CODE_OK);
	int64_t took = mono_ms() - t0;
	assert_false(async_is_done(&slow));
	assert_true(took < SLOW_MS);

	assert_true(async_wait(&slow));
	assert_int_equal(slow.done, 1);
	assert_int_equal(slow.code, CODE_OK);
	Cric__HealthResponse *h = cric__health_response__unpack(NULL, slow.len, slow.payload);
	assert_non_null(h);
	assert_string_equal(h->daemon, "slow");
	cric__health_response__free_unpacked(h, NULL);
	async_done(&slow);
}

/* ipc.h: workers start as calls overlap, up to cfg.workers (4 here): one
 * call at a time leaves one (each idle thread costs memory: a request
 * that counted its worker as taken twice started one more per call, up to
 * the cap), four slow calls run at once, a fifth waits until one of them is
 * done. */
static void test_workers_start_as_calls_overlap(void **state)
{
	struct fixture *f = *state;
	/* One waits at start. */
	assert_true(cric_server_workers(f->srv) >= 1);
	for (int i = 0; i < 20; i++)
		assert_int_equal(call_echo(f, "one by one", NULL), CODE_OK);
	/* The one serves them all (it counts as free before its reply
	 * leaves). */
	assert_int_equal(cric_server_workers(f->srv), 1);
	struct async_call slow[5];
	for (int i = 0; i < 4; i++)
		start_slow(f, &slow[i], WAIT_MS);
	assert_true(wait_count(f, &f->slow_entered, 4));
	assert_int_equal(cric_server_workers(f->srv), 4);
	start_slow(f, &slow[4], WAIT_MS);
	assert_true(wait_count(f, &f->slow_entered, 5));
	pthread_mutex_lock(&f->lock);
	for (int i = 0; i < 4; i++)
		assert_int_equal(f->left_at_entry[i], 0);
	assert_true(f->left_at_entry[4] >= 1);
	pthread_mutex_unlock(&f->lock);
	assert_int_equal(cric_server_workers(f->srv), 4);
	for (int i = 0; i < 5; i++) {
		assert_true(async_wait(&slow[i]));
		assert_int_equal(slow[i].code, CODE_OK);
		async_done(&slow[i]);
	}
}

/* Resident KiB of this process. */
static long resident_kib(void)
{
	long size = 0, res = 0;
	FILE *fp = fopen("/proc/self/statm", "re");
	assert_non_null(fp);
	assert_int_equal(fscanf(fp, "%ld %ld", &size, &res), 2);
	fclose(fp);
	return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static unsigned call_cancel(struct fixture *f, const char *request_id, unsigned *n);
static void start_wait_cancel(struct fixture *f, struct async_call *a, const char *request_id);
static bool wait_entered(struct fixture *f, int n);

/* ipc_server.c: a second after calls stopped coming and going the server
 * trims the heap, a long poll in flight or not (the gateway always has one
 * on runtimed): what a handler left free below a block still in use goes
 * back to the kernel. Under AddressSanitizer malloc is ASan's, which
 * malloc_trim() does not reach: there the trim is only seen done. */
static void test_heap_trimmed_when_quiet(void **state)
{
	struct fixture *f = *state;
	struct async_call poll;
	start_wait_cancel(f, &poll, "long-poll");
	assert_true(wait_entered(f, 1));
	unsigned trims = cric_server_trims(f->srv);
	Cric__HealthRequest req = CRIC__HEALTH_REQUEST__INIT;
	uint8_t buf[16];
	size_t n = cric__health_request__pack(&req, buf);
	struct async_call a;
	async_init(&a);
	assert_int_equal(cric_client_call_async(f->cli, "cric.test.Churn", NULL,
						deadline_in_ms(WAIT_MS), buf, n, async_cb, &a),
			 0);
	assert_true(async_wait(&a));
	assert_int_equal(a.code, CODE_OK);
	async_done(&a);
	long churned = resident_kib();
	int64_t end = mono_ms() + WAIT_MS;
	while (cric_server_trims(f->srv) == trims && mono_ms() < end)
		sleep_ms(20);
	assert_true(cric_server_trims(f->srv) > trims);
#ifndef __SANITIZE_ADDRESS__
	assert_true(resident_kib() <= churned - (long)(CHURN_BYTES / 2 / 1024));
#else
	(void)churned;
#endif
	free(churn_pin);
	unsigned cancelled = 0;
	assert_int_equal(call_cancel(f, "long-poll", &cancelled), CODE_OK);
	assert_int_equal(cancelled, 1);
	assert_true(async_wait(&poll));
	async_done(&poll);
}

/* ipc.h: with no connection a call waits up to one second for the
 * (re)connection, then completes UNAVAILABLE - well before its deadline. */
#define GRACE_MS 1000

static void test_no_server(void **state)
{
	struct fixture *f = *state;
	char url[PATH_MAX + 16];
	snprintf(url, sizeof(url), "ipc://%s/nobody.sock", f->dir);
	struct cric_client *c = NULL;
	struct cric_err err = { { 0 } };
	assert_int_equal(cric_client_open("ghostd", url, &c, &err), 0);
	assert_false(cric_client_connected(c));

	int64_t t0 = mono_ms();
	struct cric_result res;
	cric_client_call(c, "cric.test.Echo", NULL, deadline_in_ms(10000), NULL, 0, &res);
	int64_t took = mono_ms() - t0;
	print_message("call without a server took %lld ms\n", (long long)took);
	assert_int_equal(res.code, CODE_UNAVAILABLE);
	assert_non_null(res.message);
	assert_non_null(strstr(res.message, "ghostd"));
	cric_result_clear(&res);
	assert_true(took >= GRACE_MS - 50);
	assert_true(took < GRACE_MS + 1500);

	/* Asynchronously: accepted, then one UNAVAILABLE callback. */
	struct async_call a;
	async_init(&a);
	t0 = mono_ms();
	assert_int_equal(cric_client_call_async(c, "cric.test.Echo", NULL, deadline_in_ms(10000),
						NULL, 0, async_cb, &a),
			 0);
	assert_true(async_wait(&a));
	assert_int_equal(a.done, 1);
	assert_int_equal(a.code, CODE_UNAVAILABLE);
	assert_true(a.done_ms - t0 < GRACE_MS + 1500);
	async_done(&a);
	cric_client_close(c);
}

/* ... and a daemon that comes back within that second is bridged. */
static void test_call_bridges_restart(void **state)
{
	struct fixture *f = *state;
	cric_server_stop(f->srv);
	f->srv = NULL;
	assert_true(wait_connected(f->cli, false));

	struct async_call a;
	async_init(&a);
	Cric__Netd__NetworkStatusResponse req = CRIC__NETD__NETWORK_STATUS_RESPONSE__INIT;
	req.network_name = (char *)"bridged";
	uint8_t buf[64];
	size_t n = cric__netd__network_status_response__pack(&req, buf);
	assert_int_equal(cric_client_call_async(f->cli, "cric.test.Echo", NULL,
						deadline_in_ms(10000), buf, n, async_cb, &a),
			 0);
	struct cric_err err = { { 0 } };
	assert_int_equal(start_server(f, &f->srv, &err), 0);
	assert_true(async_wait(&a));
	if (a.code != CODE_OK)
		print_message("bridged call: %u %s\n", a.code, a.message ? a.message : "");
	assert_int_equal(a.code, CODE_OK);
	Cric__Netd__NetworkStatusResponse *o =
	    cric__netd__network_status_response__unpack(NULL, a.len, a.payload);
	assert_non_null(o);
	assert_string_equal(o->network_name, "bridged");
	cric__netd__network_status_response__free_unpacked(o, NULL);
	async_done(&a);
}

static void test_server_stop_in_flight(void **state)
{
	struct fixture *f = *state;
	struct async_call slow;
	start_slow(f, &slow, 10000);
	assert_true(wait_count(f, &f->slow_entered, 1));

	int64_t t0 = mono_ms();
	cric_server_stop(f->srv); /* waits for the slow handler */
	f->srv = NULL;
	assert_true(async_wait(&slow));
	int64_t took = slow.done_ms - t0;
	print_message("in-flight call ended %lld ms after stop\n", (long long)took);
	assert_int_equal(slow.done, 1);
	assert_int_equal(slow.code, CODE_UNAVAILABLE);
	assert_non_null(slow.message);
	assert_true(took < 2000); /* its deadline was 10 s away */
	async_done(&slow);
	assert_true(wait_connected(f->cli, false));
}

static void test_reconnect(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(call_echo(f, "before", NULL), CODE_OK);

	cric_server_stop(f->srv);
	f->srv = NULL;
	assert_true(wait_connected(f->cli, false));
	char *msg = NULL;
	int64_t t0 = mono_ms();
	assert_int_equal(call_echo(f, "down", &msg), CODE_UNAVAILABLE);
	assert_true(mono_ms() - t0 < GRACE_MS + 1500); /* not the 5 s deadline */
	free(msg);

	struct cric_err err = { { 0 } };
	int r = start_server(f, &f->srv, &err);
	if (r < 0)
		print_message("restart: %s\n", err.msg);
	assert_int_equal(r, 0);
	assert_true(wait_connected(f->cli, true));
	assert_int_equal(call_echo(f, "after", NULL), CODE_OK);

	/* And once more. */
	cric_server_stop(f->srv);
	f->srv = NULL;
	assert_true(wait_connected(f->cli, false));
	assert_int_equal(start_server(f, &f->srv, &err), 0);
	assert_true(wait_connected(f->cli, true));
	assert_int_equal(call_echo(f, "again", NULL), CODE_OK);
}

#define N_ASYNC 64

static void test_concurrent_async(void **state)
{
	struct fixture *f = *state;
	struct async_call calls[N_ASYNC];
	for (int i = 0; i < N_ASYNC; i++) {
		async_init(&calls[i]);
		char name[16];
		snprintf(name, sizeof(name), "n%d", i);
		Cric__Netd__NetworkStatusResponse req = CRIC__NETD__NETWORK_STATUS_RESPONSE__INIT;
		req.network_name = name;
		uint8_t buf[64];
		size_t n = cric__netd__network_status_response__pack(&req, buf);
		assert_int_equal(cric_client_call_async(f->cli, "cric.test.Echo", NULL,
							deadline_in_ms(WAIT_MS), buf, n, async_cb,
							&calls[i]),
				 0);
	}
	for (int i = 0; i < N_ASYNC; i++) {
		assert_true(async_wait(&calls[i]));
		assert_int_equal(calls[i].done, 1);
		assert_int_equal(calls[i].code, CODE_OK);
		Cric__Netd__NetworkStatusResponse *o = cric__netd__network_status_response__unpack(
		    NULL, calls[i].len, calls[i].payload);
		assert_non_null(o);
		char name[16];
		snprintf(name, sizeof(name), "n%d", i);
		/* Each answer went to its own call. */
		assert_string_equal(o->network_name, name);
		cric__netd__network_status_response__free_unpacked(o, NULL);
		async_done(&calls[i]);
	}
}

static void test_client_close_in_flight(void **state)
{
	struct fixture *f = *state;
	struct async_call slow;
	start_slow(f, &slow, 10000);
	assert_true(wait_count(f, &f->slow_entered, 1));
	cric_client_close(f->cli);
	f->cli = NULL;
	/* The callback ran, once, before close returned. */
	assert_int_equal(slow.done, 1);
	assert_int_equal(slow.code, CODE_UNAVAILABLE);
	async_done(&slow);
	cric_client_close(NULL);
}

static void test_socket_file(void **state)
{
	struct fixture *f = *state;
	struct stat st;
	assert_int_equal(stat(f->url + strlen("ipc://"), &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0660);
	assert_false(unix_socket_is_stale(f->url + strlen("ipc://")));

	/* A second server on the same live URL is refused. */
	struct cric_server *s2 = (struct cric_server *)0x1;
	struct cric_err err = { { 0 } };
	assert_int_equal(start_server(f, &s2, &err), -EADDRINUSE);
	assert_ptr_equal(s2, (struct cric_server *)0x1);
	assert_non_null(strstr(err.msg, f->url));
	/* ... and the first one still serves. */
	assert_int_equal(call_echo(f, "still", NULL), CODE_OK);
}

static void test_stale_socket_replaced(void **state)
{
	struct fixture *f = *state;
	cric_server_stop(f->srv);
	f->srv = NULL;
	assert_true(wait_connected(f->cli, false));

	/* Leave a socket file nobody listens on, as a killed daemon would. */
	const char *path = f->url + strlen("ipc://");
	unlink(path);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	assert_true(unix_socket_is_stale(path));

	struct cric_err err = { { 0 } };
	int r = start_server(f, &f->srv, &err);
	if (r < 0)
		print_message("start over stale socket: %s\n", err.msg);
	assert_int_equal(r, 0);
	assert_true(wait_connected(f->cli, true));
	assert_int_equal(call_echo(f, "fresh", NULL), CODE_OK);

	/* Not stale: missing, too long a path. */
	char p[PATH_MAX];
	assert_false(unix_socket_is_stale(tpath(p, f->dir, "missing")));
	char longp[200];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	assert_false(unix_socket_is_stale(longp));
}

/* ipc.h: stale means "a unix socket file exists at path but nothing listens
 * on it". A regular file there is not ours to delete: the server must refuse
 * the path and leave the file alone. */
static void test_regular_file_not_replaced(void **state)
{
	struct fixture *f = *state;
	char p[PATH_MAX];
	write_text(tpath(p, f->dir, "precious.sock"), "not a socket\n");
	bool said_stale = unix_socket_is_stale(p);

	char url[PATH_MAX + 16];
	snprintf(url, sizeof(url), "ipc://%s", p);
	struct cric_server_config cfg = {
		.daemon = "x",
		.version = "0",
		.url = url,
		.ids = { (uid_t)-1, (uid_t)-1, (gid_t)-1, NULL },
		.workers = 1,
	};
	struct cric_server *s = NULL;
	struct cric_err err = { { 0 } };
	int r = cric_server_start(&cfg, &s, &err);
	cric_server_stop(s);
	struct stat st;
	bool kept = lstat(p, &st) == 0 && S_ISREG(st.st_mode);
	if (said_stale || r == 0 || !kept)
		FAIL_REGRESSION("a regular file at the socket path: unix_socket_is_stale() = %d, "
				"cric_server_start() = %d, file %s",
				said_stale, r,
				kept ? "kept" : "deleted and replaced by the socket");
	assert_true(r < 0);
	assert_true(kept);
}

static void test_bad_urls(void **state)
{
	struct fixture *f = *state;
	struct cric_client *c = (struct cric_client *)0x1;
	struct cric_err err = { { 0 } };
	assert_int_equal(cric_client_open("x", "bogus://nowhere", &c, &err), -EINVAL);
	assert_ptr_equal(c, (struct cric_client *)0x1);
	assert_non_null(strstr(err.msg, "bogus://nowhere"));

	char url[PATH_MAX + 32];
	snprintf(url, sizeof(url), "ipc://%s/no/such/dir/s.sock", f->dir);
	struct cric_server_config cfg = {
		.daemon = "x",
		.version = "0",
		.url = url,
		.ids = { (uid_t)-1, (uid_t)-1, (gid_t)-1, NULL },
		.workers = 1,
	};
	struct cric_server *s = (struct cric_server *)0x1;
	assert_true(cric_server_start(&cfg, &s, &err) < 0);
	assert_ptr_equal(s, (struct cric_server *)0x1);
	assert_non_null(strstr(err.msg, url));
}

/* ---- peers that leave mid-handshake (nng bug #1518) ---- */

/* One raw connection that goes away at a given point of the SP handshake:
 * 0 right after connect, 1 after half a header, 2 after a whole header,
 * 3 after reading the server's header without sending one, 4 after a
 * complete exchange. */
static void abort_handshake(const char *path, int how)
{
	static const uint8_t req_header[8] = { 0, 'S', 'P', 0, 0x00, 0x30, 0, 0 };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	if (how == 1 || how == 2 || how == 4)
		assert_int_equal(write(fd, req_header, how == 1 ? 4 : 8), how == 1 ? 4 : 8);
	if (how == 3 || how == 4) {
		/* A live server answers its header at once; a wedged one never
		 * does, so bound the wait. */
		struct timeval tv = { .tv_sec = 0, .tv_usec = 200000 };
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		uint8_t h[8];
		(void)!read(fd, h, sizeof(h));
	}
	close(fd);
}

/* One call on client c, due by end_ms (monotonic). */
static unsigned call_by(struct cric_client *c, const char *name, int64_t end_ms)
{
	Cric__Netd__NetworkStatusResponse req = CRIC__NETD__NETWORK_STATUS_RESPONSE__INIT;
	req.network_name = (char *)name;
	ProtobufCMessage *out = NULL;
	char *msg = NULL;
	int64_t left = end_ms - mono_ms();
	unsigned code = cric_client_call_pb(
	    c, "cric.test.Echo", NULL, deadline_in_ms(left > 1 ? left : 1), &req.base,
	    &cric__netd__network_status_response__descriptor, &out, &msg);
	if (code != CODE_OK)
		print_message("%s: %s: %s\n", name, grpc_code_name(code), msg ? msg : "");
	protobuf_c_message_free_unpacked(out, NULL);
	free(msg);
	return code;
}

/* Soon after the end of a burst (the guard's verdict, IPC_GUARD_PROBE_MS,
 * plus room for a loaded machine), a new client is served. One that
 * connected to the wedged listener is cut when it is replaced (UNAVAILABLE,
 * as after a daemon restart) and calls again, as callers do, on the same
 * client (which redials by itself: closing it mid-redial would be one more
 * aborted handshake); DEADLINE_EXCEEDED means nobody ever answered. */
static void served_soon(struct fixture *f, const char *name)
{
	struct cric_client *c = NULL;
	struct cric_err err = { { 0 } };
	assert_int_equal(cric_client_open("testd", f->url, &c, &err), 0);
	int64_t end = mono_ms() + IPC_GUARD_CHECK_MS + IPC_GUARD_PROBE_MS + 3000;
	unsigned code;
	do
		code = call_by(c, name, end);
	while (code == CODE_UNAVAILABLE && mono_ms() < end);
	assert_int_equal(code, CODE_OK);
	cric_client_close(c);
}

/* Peers that connect and leave at every point of the handshake, in bursts:
 * after each burst a new client's first call succeeds soon, and
 * the client connected all along is never cut off. nng 1.5.2 stops
 * accepting after the first such peer; the listener must recover. */
static void test_aborted_handshakes(void **state)
{
	struct fixture *f = *state;
	const char *path = f->url + strlen("ipc://");
	char name[32];
	for (int round = 0; round < 3; round++) {
		for (int how = 0; how <= 4; how++) {
			for (int i = 0; i < 20; i++)
				abort_handshake(path, how);
			snprintf(name, sizeof(name), "r%d-how%d", round, how);
			served_soon(f, name);
			/* The client connected all along may have been cut
			 * by a recovery; it redials by itself. */
			assert_true(wait_connected(f->cli, true));
			if (call_echo(f, name, NULL) != CODE_OK)
				assert_int_equal(call_echo(f, name, NULL), CODE_OK);
		}
	}
	/* The path stays usable by stat(2) and mode 0660, and the server's
	 * stop leaves nothing in the directory. */
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0660);
	cric_client_close(f->cli);
	f->cli = NULL;
	cric_server_stop(f->srv);
	f->srv = NULL;
	_cleanup_closedir_ DIR *d = opendir(f->dir);
	assert_non_null(d);
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			fail_msg("left behind after stop: %s", e->d_name);
}

/* nng 1.5.2's dialer stops for good when a handshake is cut in a certain
 * way (bug #1518, client side; a race no test can force, hence the fault
 * injection). A client whose dialer is gone dials again at the first call
 * made a second or more after it lost its connection. */
static void test_dead_dialer_is_replaced(void **state)
{
	struct fixture *f = *state;
	cric_server_stop(f->srv);
	f->srv = NULL;
	assert_true(wait_connected(f->cli, false));
	cric_client_kill_dialer(f->cli);
	struct cric_err err = { { 0 } };
	assert_int_equal(start_server(f, &f->srv, &err), 0);
	/* The first call waits its grace second for a connection that the
	 * dead dialer never makes... */
	char *msg = NULL;
	unsigned code = call_echo(f, "first", &msg);
	free(msg);
	assert_true(code == CODE_UNAVAILABLE || code == CODE_OK);
	/* ... after which calls dial again and get through: the watcher
	 * replaces the dead dialer within its quiet time, which a loaded
	 * machine stretches, so allow a few more grace periods (a dialer never
	 * replaced fails every one of them). */
	for (int i = 0; i < 10 && code != CODE_OK; i++)
		code = call_echo(f, "again", NULL);
	assert_int_equal(code, CODE_OK);
	/* Connected, though not necessarily at this very instant: the watcher
	 * may still be closing the dead dialer and a pipe with it (seen once
	 * at load 7); the replacement dials again promptly. */
	assert_true(wait_connected(f->cli, true));
}

/* ---- shutting down right after a call ---- */

static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "HUNG: watchdog fired in a stop/close race\n";
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(99);
	_exit(99); /* see run_isolated() */
}

/* ipc.h: stop "waits for handlers in progress, frees"; close "aborts calls
 * in flight, waits for their callbacks, frees". Neither may crash or hang
 * because a call has only just completed: rounds of start, open, one call,
 * stop, close. (With nng 1.5.2, nng_close() racing a context call that is
 * still finishing on another thread panics or hangs.) */
static void test_stop_right_after_reply(void **state)
{
	(void)state;
	char *dir = tmpdir_make("ipc-race");
	char url[PATH_MAX + 16];
	snprintf(url, sizeof(url), "ipc://%s/race.sock", dir);
	signal(SIGALRM, on_alarm);
	alarm(60);
	for (int i = 0; i < 1000; i++) {
		struct cric_server_config cfg = {
			.daemon = "raced",
			.version = "0",
			.url = url,
			.ids = { (uid_t)-1, getuid() == 0 ? (uid_t)-1 : getuid(), (gid_t)-1, NULL },
			.workers = 4,
		};
		struct cric_server *s = NULL;
		struct cric_client *c = NULL;
		assert_int_equal(cric_server_start(&cfg, &s, NULL), 0);
		assert_int_equal(cric_client_open("raced", url, &c, NULL), 0);
		assert_true(wait_connected(c, true));
		Cric__HealthRequest req = CRIC__HEALTH_REQUEST__INIT;
		ProtobufCMessage *out = NULL;
		assert_int_equal(cric_client_call_pb(c, HEALTH_METHOD, NULL, deadline_in_ms(5000),
						     &req.base, &cric__health_response__descriptor,
						     &out, NULL),
				 CODE_OK);
		protobuf_c_message_free_unpacked(out, NULL);
		cric_server_stop(s);  /* its worker may still be inside nng_ctx_send() */
		cric_client_close(c); /* nng may still be running the call's cleanup */
	}
	alarm(0);
	signal(SIGALRM, SIG_DFL);
	tmpdir_remove(dir);
}

/* The same for a client closed as soon as its last callback has run: nng
 * may still be closing that call's context on its own thread. */
static void test_close_right_after_callback(void **state)
{
	(void)state;
	char *dir = tmpdir_make("ipc-close");
	char url[PATH_MAX + 16];
	snprintf(url, sizeof(url), "ipc://%s/nobody.sock", dir);
	signal(SIGALRM, on_alarm);
	alarm(60);
	for (int i = 0; i < 2000; i++) {
		struct cric_client *c = NULL;
		assert_int_equal(cric_client_open("ghostd", url, &c, NULL), 0);
		struct async_call a;
		async_init(&a);
		/* A deadline this short may pass before the call starts (a slow,
		 * sanitized run): then there is no callback, and no race. */
		int r = cric_client_call_async(c, "cric.test.Echo", NULL, deadline_in_ms(3), NULL,
					       0, async_cb, &a);
		assert_true(r == 0 || r == -ETIMEDOUT);
		if (r == 0) {
			assert_true(async_wait(&a));
			assert_true(a.code == CODE_DEADLINE_EXCEEDED || a.code == CODE_UNAVAILABLE);
		}
		cric_client_close(c); /* nng may still be closing the call's context */
		async_done(&a);
	}
	alarm(0);
	signal(SIGALRM, SIG_DFL);
	tmpdir_remove(dir);
}

/* cric.Cancel with request_id: the code; *n how many calls it marked. */
static unsigned call_cancel(struct fixture *f, const char *request_id, unsigned *n)
{
	Cric__CancelRequest req = CRIC__CANCEL_REQUEST__INIT;
	req.request_id = (char *)request_id;
	ProtobufCMessage *out = NULL;
	_cleanup_free_ char *msg = NULL;
	unsigned code =
	    cric_client_call_pb(f->cli, "cric.Cancel", NULL, deadline_in_ms(5000), &req.base,
				&cric__cancel_response__descriptor, &out, &msg);
	*n = out ? ((Cric__CancelResponse *)out)->cancelled : 0;
	if (out)
		protobuf_c_message_free_unpacked(out, NULL);
	return code;
}

static void start_wait_cancel(struct fixture *f, struct async_call *a, const char *request_id)
{
	async_init(a);
	assert_int_equal(cric_client_call_async(f->cli, "cric.test.WaitCancel", request_id,
						deadline_in_ms(WAIT_MS), NULL, 0, async_cb, a),
			 0);
}

/* Wait (bounded) until n WaitCancel handlers have started. */
static bool wait_entered(struct fixture *f, int n)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += WAIT_MS / 1000;
	pthread_mutex_lock(&f->lock);
	while (f->wait_entered < n && pthread_cond_timedwait(&f->cond, &f->lock, &ts) == 0)
		;
	bool ok = f->wait_entered >= n;
	pthread_mutex_unlock(&f->lock);
	return ok;
}

/* The in-flight table: cric.Cancel marks the calls with its request id
 * (all of them, not others), wakes the daemon (its hook), and the handler
 * that looks answers CANCELLED at once; a cancel of an unknown or finished
 * id marks nothing; a cancel without an id is refused. */
static void test_cancel(void **state)
{
	struct fixture *f = *state;
	struct async_call a, b, other;
	start_wait_cancel(f, &a, "cancel-me");
	start_wait_cancel(f, &b, "cancel-me");
	start_wait_cancel(f, &other, "keep-me");
	assert_true(wait_entered(f, 3));

	unsigned n = 99;
	assert_int_equal(call_cancel(f, "nobody", &n), CODE_OK);
	assert_int_equal(n, 0);
	pthread_mutex_lock(&f->lock);
	assert_int_equal(f->woken, 0);
	pthread_mutex_unlock(&f->lock);

	int64_t t0 = mono_ms();
	assert_int_equal(call_cancel(f, "cancel-me", &n), CODE_OK);
	assert_int_equal(n, 2);
	assert_true(async_wait(&a));
	assert_true(async_wait(&b));
	assert_int_equal(a.code, CODE_CANCELLED);
	assert_int_equal(b.code, CODE_CANCELLED);
	assert_true(a.done_ms - t0 < 2000);
	assert_false(async_is_done(&other));
	pthread_mutex_lock(&f->lock);
	assert_int_equal(f->woken, 1);
	assert_int_equal(f->wait_cancelled, 2);
	pthread_mutex_unlock(&f->lock);

	/* Finished: nothing to mark, nothing woken. */
	assert_int_equal(call_cancel(f, "cancel-me", &n), CODE_OK);
	assert_int_equal(n, 0);
	assert_int_equal(call_cancel(f, "", &n), CODE_INVALID_ARGUMENT);

	/* A worker reused for a new call with another id starts uncancelled;
	 * then the other one goes too. */
	assert_int_equal(call_echo(f, "after", NULL), CODE_OK);
	assert_false(async_is_done(&other));
	assert_int_equal(call_cancel(f, "keep-me", &n), CODE_OK);
	assert_int_equal(n, 1);
	assert_true(async_wait(&other));
	assert_int_equal(other.code, CODE_CANCELLED);
	async_done(&a);
	async_done(&b);
	async_done(&other);
}

/* service.h's nonblocking: cric.Health and cric.Cancel are answered on the
 * thread that received them, so they get through while every worker is
 * held (here by four calls waiting to be cancelled, which only the cancel
 * ends: queued for a worker, it would wait for ever). */
static void test_nonblocking_while_workers_busy(void **state)
{
	struct fixture *f = *state;
	struct async_call busy[4];
	char id[16];
	for (int i = 0; i < 4; i++) {
		snprintf(id, sizeof(id), "busy-%d", i);
		start_wait_cancel(f, &busy[i], id);
	}
	assert_true(wait_entered(f, 4));
	assert_int_equal(cric_server_workers(f->srv), 4);

	Cric__HealthRequest req = CRIC__HEALTH_REQUEST__INIT;
	ProtobufCMessage *out = NULL;
	char *msg = NULL;
	int64_t t0 = mono_ms();
	unsigned code = cric_call(f->cli, CRIC_HEALTH(health), NULL, deadline_in_ms(5000),
				  &req.base, &out, &msg);
	assert_int_equal(code, CODE_OK);
	protobuf_c_message_free_unpacked(out, NULL);
	free(msg);
	for (int i = 0; i < 4; i++) {
		unsigned n = 0;
		snprintf(id, sizeof(id), "busy-%d", i);
		assert_int_equal(call_cancel(f, id, &n), CODE_OK);
		assert_int_equal(n, 1);
		assert_true(async_wait(&busy[i]));
		assert_int_equal(busy[i].code, CODE_CANCELLED);
		async_done(&busy[i]);
	}
	int64_t took = mono_ms() - t0;
	print_message("health and four cancels with every worker busy: %lld ms\n", (long long)took);
	assert_true(took < 2000);
	/* No thread started for them. */
	assert_int_equal(cric_server_workers(f->srv), 4);
}

/* ---- each test in a process of its own ---- */

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
static const struct CMUnitTest tests[] = {
	T(test_echo),
	T(test_unknown_method),
	T(test_typed_calls),
	T(test_handler_errors),
	T(test_undecodable_payload),
	T(test_health),
	T(test_deadline_exceeded),
	T(test_workers_start_as_calls_overlap),
	T(test_heap_trimmed_when_quiet),
	T(test_fast_while_slow),
	T(test_no_server),
	T(test_call_bridges_restart),
	T(test_server_stop_in_flight),
	T(test_reconnect),
	T(test_concurrent_async),
	T(test_client_close_in_flight),
	T(test_socket_file),
	T(test_stale_socket_replaced),
	T(test_regular_file_not_replaced),
	T(test_bad_urls),
	T(test_aborted_handshakes),
	T(test_dead_dialer_is_replaced),
	T(test_cancel),
	T(test_nonblocking_while_workers_busy),
	cmocka_unit_test(test_stop_right_after_reply),
	cmocka_unit_test(test_close_right_after_callback),
};
#undef T
#define N_TESTS (sizeof(tests) / sizeof(tests[0]))

/* Run tests[idx] in a child (this binary exec'd with --one idx), relay its
 * output indented, and judge how it ended. An nng panic, or a hang in the
 * race test, is the reported stop/close race: the test fails as that
 * regression, named, rather than taking the whole run down. Anything else
 * that is not a clean exit (assertion, sanitizer, leak, watchdog) fails. A
 * test that skipped in its process skips here too. */
static void run_isolated(void **state)
{
	size_t idx = (size_t)(uintptr_t)*state;
	char arg[32];
	snprintf(arg, sizeof(arg), "%zu", idx);
	/* The child makes its temp dirs in ours, so that they go even if it
	 * dies before its teardown. */
	char *base = tmpdir_make("ipc-run");
	char *saved = getenv("CRIC_TEST_TMP") ? strdup(getenv("CRIC_TEST_TMP")) : NULL;
	assert_int_equal(setenv("CRIC_TEST_TMP", base, 1), 0);
	int fds[2];
	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		dup2(fds[1], STDERR_FILENO);
		alarm(WATCHDOG_S + 30); /* survives execl */
		execl("/proc/self/exe", "test-ipc", "--one", arg, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	size_t len = 0, cap = 4096;
	char *out = malloc(cap);
	assert_non_null(out);
	for (;;) {
		if (cap - len < 1024) {
			cap *= 2;
			out = realloc(out, cap);
			assert_non_null(out);
		}
		ssize_t n = read(fds[0], out + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	out[len] = '\0';
	close(fds[0]);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0)
		assert_int_equal(errno, EINTR);
	if (saved)
		setenv("CRIC_TEST_TMP", saved, 1);
	else
		unsetenv("CRIC_TEST_TMP");
	free(saved);
	tmpdir_remove(base);
	/* Relay what the child said, without cmocka's framing of its one test. */
	static const char *const framing[] = { "[==========]", "[ RUN      ]", "[       OK ]",
					       "[  PASSED  ]", "[  SKIPPED ]", " 1 SKIPPED" };
	for (char *line = out, *nl; *line; line = nl + 1) {
		nl = strchrnul(line, '\n');
		int n = (int)(nl - line);
		bool show = n > 0;
		for (size_t i = 0; i < sizeof(framing) / sizeof(framing[0]) && show; i++)
			show = strncmp(line, framing[i], strlen(framing[i])) != 0;
		if (show)
			print_message("    | %.*s\n", n, line);
		if (!*nl)
			break;
	}
	bool nng_panic = strstr(out, "panic: ") && strstr(out, "nng");
	bool hung = strstr(out, "HUNG: ") != NULL;
	bool skipped = strstr(out, "[  SKIPPED ]") != NULL;
	free(out);

	if ((WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT && nng_panic) ||
	    (WIFEXITED(st) && WEXITSTATUS(st) == 99 && hung))
		FAIL_REGRESSION("%s: nng %s while a server stopped or a client closed right after "
				"a call (nng_close() races a context call still finishing)",
				tests[idx].name, nng_panic ? "panicked" : "hung");
	if (WIFSIGNALED(st))
		fail_msg("%s: killed by signal %d%s", tests[idx].name, WTERMSIG(st),
			 WTERMSIG(st) == SIGALRM ? " (watchdog: hung)" : "");
	assert_true(WIFEXITED(st));
	if (WEXITSTATUS(st) != 0)
		fail_msg("%s: exit status %d in its process (see its output above)",
			 tests[idx].name, WEXITSTATUS(st));
	if (skipped)
		SKIP_MISSING("%s skipped in its own process (why: its output above)",
			     tests[idx].name);
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--one") == 0) {
		size_t idx = strtoul(argv[2], NULL, 10);
		if (idx >= N_TESTS)
			return 2;
		return _cmocka_run_group_tests(tests[idx].name, &tests[idx], 1, NULL, NULL);
	}
	struct CMUnitTest isolated[N_TESTS];
	for (size_t i = 0; i < N_TESTS; i++)
		isolated[i] = (struct CMUnitTest){ .name = tests[i].name,
						   .test_func = run_isolated,
						   .initial_state = (void *)(uintptr_t)i };
	return _cmocka_run_group_tests("ipc", isolated, N_TESTS, NULL, NULL);
}
