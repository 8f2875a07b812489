#include "gateway.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include "common/cleanup.h"
#include "common/ids.h"
#include "common/ipc.h"
#include "common/listpage.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/metrics.h"
#include "cq.h"
#include "events.h"
#include "liststream.h"
#include "routes.h"

/* grpc_server_request_call slots kept open: new calls never wait for one. */
#define PENDING_ACCEPTS 32
#define MAX_MESSAGE     (16 * 1024 * 1024)

struct gateway {
	grpc_server *server;
	grpc_completion_queue *cq;
	pthread_t cq_thread;
	bool cq_thread_started;
	struct route_table routes;
	struct cric_client *clients[D_COUNT];
	struct ev_hub *events;
	char events_path[IPC_METHOD_MAX + 1]; /* GetContainerEvents */
	/* The streaming list calls: each owner's ListPage ("" for a daemon
	 * that has none), the chunk limits. */
	char page_methods[D_COUNT][IPC_METHOD_MAX + 1];
	uint32_t stream_items, stream_bytes;
	unsigned max_request_seconds;
	struct tag shutdown_tag;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool shut_down;
};

struct gw_call {
	struct gateway *gw;
	atomic_int refs;
	grpc_call *call;
	grpc_call_details details;
	grpc_metadata_array request_md;
	grpc_byte_buffer *recv;
	int cancelled; /* recv_close_on_server's: the client cancelled or went away */
	/* On the completion queue's thread only: the client's close came
	 * (TAG_CLOSE); the request went to its daemon. */
	bool closed, forwarded;
	atomic_bool answered; /* the daemon answered (set on nng's thread) */
	char path[160];
	char request_id[17];
	const struct route *route;
	gpr_timespec started;
	grpc_byte_buffer *send;
	grpc_slice status_details;
	bool has_status_details;
	unsigned code;
	struct ev_sub *sub;   /* GetContainerEvents: the hub's subscriber */
	struct ls_stream *ls; /* a streaming list call */
	struct tag t_new, t_recv, t_close, t_send;
};

static void call_unref(struct gw_call *c)
{
	if (atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	if (c->call)
		grpc_call_unref(c->call);
	grpc_call_details_destroy(&c->details);
	grpc_metadata_array_destroy(&c->request_md);
	if (c->recv)
		grpc_byte_buffer_destroy(c->recv);
	if (c->send)
		grpc_byte_buffer_destroy(c->send);
	if (c->has_status_details)
		grpc_slice_unref(c->status_details);
	free(c);
}

static int accept_one(struct gateway *gw)
{
	struct gw_call *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->gw = gw;
	atomic_init(&c->refs, 1);
	grpc_call_details_init(&c->details);
	grpc_metadata_array_init(&c->request_md);
	c->t_new = (struct tag){ TAG_NEW, { .call = c } };
	c->t_recv = (struct tag){ TAG_RECV, { .call = c } };
	c->t_close = (struct tag){ TAG_CLOSE, { .call = c } };
	c->t_send = (struct tag){ TAG_SEND, { .call = c } };
	grpc_call_error e = grpc_server_request_call(gw->server, &c->call, &c->details,
						     &c->request_md, gw->cq, gw->cq, &c->t_new);
	if (e != GRPC_CALL_OK) {
		call_unref(c);
		return -EIO;
	}
	return 0;
}

static struct metric_family cri_requests = {
	.name = "cric_cri_requests_total",
	.help = "CRI calls answered, by method and gRPC status code.",
	.type = METRIC_COUNTER,
	.labels = { "method", "code" },
};

static struct metric_family cri_seconds = {
	.name = "cric_cri_request_duration_seconds",
	.help = "Time from a CRI call's arrival to its answer, by method.",
	.type = METRIC_HISTOGRAM,
	.labels = { "method" },
	.bounds = metric_latency_bounds,
	.n_bounds = METRIC_N_LATENCY_BOUNDS,
};

/* Count an answered call: the method as routed ("unknown" for a path no
 * route has: a client cannot grow the label set). */
static void count_call(const struct gw_call *c, unsigned code)
{
	const char *method = "unknown";
	if (c->route) {
		const char *slash = strrchr(c->route->path, '/');
		method = slash ? slash + 1 : c->route->path;
	}
	gpr_timespec took = gpr_time_sub(gpr_now(GPR_CLOCK_MONOTONIC), c->started);
	metric_add(&cri_requests, METRIC_VALUES(method, grpc_code_name(code)), 1);
	metric_observe(&cri_seconds, METRIC_VALUES(method),
		       (double)gpr_timespec_to_micros(took) / 1e6);
}

/* Send the answer and the status; consumes the caller's reference and
 * payload (malloc'd: grpc frees it once sent, so the daemon's answer is
 * not copied again). */
static void finish(struct gw_call *c, unsigned code, const char *message, uint8_t *payload,
		   size_t len)
{
	grpc_op ops[3];
	memset(ops, 0, sizeof(ops));
	size_t n = 0;

	c->code = code;
	count_call(c, code);
	ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
	if (code == CODE_OK) {
		grpc_slice s = payload && len ? grpc_slice_new(TAKE_PTR(payload), len, free)
					      : grpc_empty_slice();
		c->send = grpc_raw_byte_buffer_create(&s, 1);
		grpc_slice_unref(s);
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n++].data.send_message.send_message = c->send;
	}
	c->status_details = grpc_slice_from_copied_string(message ? message : "");
	c->has_status_details = true;
	free(payload); /* an error's: not sent */
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n].data.send_status_from_server.status = (grpc_status_code)code;
	ops[n].data.send_status_from_server.status_details = &c->status_details;
	ops[n++].data.send_status_from_server.trailing_metadata_count = 0;

	if (code != CODE_OK)
		log_info("%s req=%s: %s: %s", c->path, c->request_id, grpc_code_name(code),
			 message ? message : "");
	if (grpc_call_start_batch(c->call, ops, n, &c->t_send, NULL) != GRPC_CALL_OK) {
		log_error("%s req=%s: cannot send the answer", c->path, c->request_id);
		call_unref(c);
	}
}

static void daemon_answered(void *arg, struct cric_result *res)
{
	struct gw_call *c = arg;
	atomic_store(&c->answered, true);
	finish(c, res->code, res->message, TAKE_PTR(res->payload), res->len);
}

/* The client's deadline, capped by max_request_seconds; for an uncapped
 * route (routes.h) the client's deadline as is, or none. */
static int64_t call_deadline_ns(struct gw_call *c)
{
	gpr_timespec d = gpr_convert_clock_type(c->details.deadline, GPR_CLOCK_REALTIME);
	bool none = gpr_time_cmp(d, gpr_inf_future(GPR_CLOCK_REALTIME)) == 0;
	int64_t ns = none ? IPC_NO_DEADLINE : d.tv_sec * 1000000000LL + d.tv_nsec;
	if (c->route->uncapped)
		return ns;
	int64_t cap = deadline_in_ms((int64_t)c->gw->max_request_seconds * 1000);
	return ns < cap ? ns : cap;
}

static void cancel_answered(void *arg, struct cric_result *res)
{
	(void)arg;
	if (res->code != CODE_OK)
		log_warning("cric.Cancel: %s: %s, ignoring", grpc_code_name(res->code),
			    res->message ? res->message : "");
}

/* Tell the daemon serving c that its client cancelled: the daemon marks
 * the call (by our request id) cancelled, handlers that look stop (ipc.h).
 * The daemon's answer to c still comes and goes nowhere. */
static void send_cancel(struct gw_call *c)
{
	struct cric_client *cl = c->gw->clients[c->route->daemon];
	char method[IPC_METHOD_MAX + 1];
	Cric__CancelRequest req = CRIC__CANCEL_REQUEST__INIT;
	req.request_id = c->request_id;
	uint8_t buf[IPC_REQUEST_ID_MAX + 16];
	size_t len = cric__cancel_request__get_packed_size(&req);
	if (len > sizeof(buf) || cric_method_name(CRIC_HEALTH(cancel), method, sizeof(method)) < 0)
		return;
	cric__cancel_request__pack(&req, buf);
	log_info("%s req=%s: cancelled by the client, telling %s", c->path, c->request_id,
		 cric_client_name(cl));
	int r = cric_client_call_async(cl, method, NULL, deadline_in_ms(HEALTH_CAP_MS), buf, len,
				       cancel_answered, NULL);
	if (r < 0)
		log_warning("%s req=%s: cannot send the cancel to %s: %s, ignoring", c->path,
			    c->request_id, cric_client_name(cl), strerror(-r));
}

/* True once the client's own deadline has (about) passed: grpc reports
 * that as a cancellation too, but the daemon has the deadline and stops by
 * it. gRPC carries a timeout, not a time: our deadline is the client's
 * plus the request's transit, so a cancel up to DEADLINE_SKEW_MS before it
 * counts as the deadline's. */
#define DEADLINE_SKEW_MS 1000
static bool client_deadline_passed(struct gw_call *c)
{
	gpr_timespec now = gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
					gpr_time_from_millis(DEADLINE_SKEW_MS, GPR_TIMESPAN));
	return gpr_time_cmp(now, gpr_convert_clock_type(c->details.deadline, GPR_CLOCK_REALTIME)) >=
	       0;
}

/* The client's side of c closed: when it cancelled (or went away) while
 * a daemon still serves the call, tell that daemon. */
static void closed(struct gw_call *c)
{
	c->closed = true;
	if (c->sub)
		ev_hub_unsubscribe(TAKE_PTR(c->sub));
	if (c->ls)
		ls_close(TAKE_PTR(c->ls));
	if (c->cancelled && c->forwarded && !atomic_load(&c->answered) &&
	    !client_deadline_passed(c))
		send_cancel(c);
	call_unref(c);
}

/* GetContainerEvents: the hub streams to c until it closes (closed()). */
static void subscribe(struct gw_call *c)
{
	unsigned code;
	char msg[256];
	if (ev_hub_subscribe(c->gw->events, c->call, c->request_id, &c->sub, &code, msg,
			     sizeof(msg)) < 0)
		finish(c, code, msg, NULL, 0);
	else
		call_unref(c); /* the request's; the close's stays */
}

/* A streaming list call: liststream.c relays its pages until c closes
 * (closed()). */
static void stream_list(struct gw_call *c, const uint8_t *data, size_t len)
{
	struct gateway *gw = c->gw;
	const struct ls_config cfg = {
		.client = gw->clients[c->route->daemon],
		.page_method = gw->page_methods[c->route->daemon],
		.max_items = gw->stream_items,
		.max_bytes = gw->stream_bytes,
	};
	if (ls_start(&cfg, c->call, c->path, c->request_id, call_deadline_ns(c), data, len,
		     &c->ls) < 0)
		finish(c, CODE_RESOURCE_EXHAUSTED, "out of memory", NULL, 0);
	else
		call_unref(c); /* the request's; the close's stays */
}

static void received(struct gw_call *c, bool ok)
{
	if (!ok) {
		call_unref(c); /* the client went away before sending */
		return;
	}
	if (c->closed && c->cancelled) {
		finish(c, CODE_CANCELLED, "cancelled by the client", NULL, 0);
		return;
	}
	c->route = route_find(&c->gw->routes, c->path);
	if (!c->route) {
		finish(c, CODE_UNIMPLEMENTED, "unknown method", NULL, 0);
		return;
	}
	if (!c->recv) {
		finish(c, CODE_INVALID_ARGUMENT, "no request message", NULL, 0);
		return;
	}
	grpc_byte_buffer_reader reader;
	if (!grpc_byte_buffer_reader_init(&reader, c->recv)) {
		finish(c, CODE_INVALID_ARGUMENT, "unreadable request message", NULL, 0);
		return;
	}
	grpc_slice body = grpc_byte_buffer_reader_readall(&reader);
	grpc_byte_buffer_reader_destroy(&reader);
	const uint8_t *data = GRPC_SLICE_START_PTR(body);
	size_t len = GRPC_SLICE_LENGTH(body);

	ProtobufCMessage *m = protobuf_c_message_unpack(c->route->input, NULL, len, data);
	bool valid = m != NULL;
	if (m)
		protobuf_c_message_free_unpacked(m, NULL);
	if (!valid) {
		char msg[256];
		snprintf(msg, sizeof(msg), "request is not a valid %s message",
			 c->route->input->name);
		finish(c, CODE_INVALID_ARGUMENT, msg, NULL, 0);
	} else if (strcmp(c->path, c->gw->events_path) == 0) {
		subscribe(c);
	} else if (c->route->server_streaming && c->gw->page_methods[c->route->daemon][0]) {
		stream_list(c, data, len);
	} else if (c->route->server_streaming) {
		finish(c, CODE_UNIMPLEMENTED, "streaming calls are not implemented by cric yet",
		       NULL, 0);
	} else {
		struct cric_client *cl = c->gw->clients[c->route->daemon];
		c->forwarded = true;
		int r = cric_client_call_async(cl, c->path, c->request_id, call_deadline_ns(c),
					       data, len, daemon_answered, c);
		if (r < 0) {
			c->forwarded = false;
			char msg[256];
			unsigned code = CODE_UNAVAILABLE;
			if (r == -ENOTCONN)
				snprintf(msg, sizeof(msg), "cric %s is not running",
					 cric_client_name(cl));
			else if (r == -ETIMEDOUT) {
				code = CODE_DEADLINE_EXCEEDED;
				snprintf(msg, sizeof(msg), "deadline passed before forwarding");
			} else
				snprintf(msg, sizeof(msg), "cannot forward to %s: %s",
					 cric_client_name(cl), strerror(-r));
			finish(c, code, msg, NULL, 0);
		}
	}
	grpc_slice_unref(body);
}

static void new_call(struct gw_call *c, bool ok)
{
	if (!ok) { /* shutting down */
		call_unref(c);
		return;
	}
	accept_one(c->gw);

	size_t n = GRPC_SLICE_LENGTH(c->details.method);
	if (n >= sizeof(c->path))
		n = sizeof(c->path) - 1;
	memcpy(c->path, GRPC_SLICE_START_PTR(c->details.method), n);
	c->path[n] = '\0';
	if (id_random_hex(c->request_id, sizeof(c->request_id), 8) < 0)
		strcpy(c->request_id, "0");
	c->started = gpr_now(GPR_CLOCK_MONOTONIC);

	grpc_op close_op;
	memset(&close_op, 0, sizeof(close_op));
	close_op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	close_op.data.recv_close_on_server.cancelled = &c->cancelled;
	atomic_fetch_add(&c->refs, 1);
	if (grpc_call_start_batch(c->call, &close_op, 1, &c->t_close, NULL) != GRPC_CALL_OK)
		call_unref(c);

	grpc_op recv_op;
	memset(&recv_op, 0, sizeof(recv_op));
	recv_op.op = GRPC_OP_RECV_MESSAGE;
	recv_op.data.recv_message.recv_message = &c->recv;
	if (grpc_call_start_batch(c->call, &recv_op, 1, &c->t_recv, NULL) != GRPC_CALL_OK)
		call_unref(c);
}

static void sent(struct gw_call *c, bool ok)
{
	gpr_timespec took = gpr_time_sub(gpr_now(GPR_CLOCK_MONOTONIC), c->started);
	log_debug("%s req=%s %s in %.3f ms%s", c->path, c->request_id, grpc_code_name(c->code),
		  gpr_timespec_to_micros(took) / 1000.0, ok ? "" : " (client gone)");
	call_unref(c);
}

static void *cq_loop(void *arg)
{
	struct gateway *gw = arg;
	for (;;) {
		grpc_event ev =
		    grpc_completion_queue_next(gw->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.type != GRPC_OP_COMPLETE)
			continue;
		struct tag *t = ev.tag;
		switch (t->kind) {
		case TAG_NEW:
			new_call(t->call, ev.success);
			break;
		case TAG_RECV:
			received(t->call, ev.success);
			break;
		case TAG_CLOSE:
			closed(t->call);
			break;
		case TAG_SEND:
			sent(t->call, ev.success);
			break;
		case TAG_EVENT_SENT:
			ev_hub_sent(t->sub, ev.success);
			break;
		case TAG_LIST_SENT:
			ls_sent(t->ls, ev.success);
			break;
		case TAG_SHUTDOWN:
			pthread_mutex_lock(&gw->lock);
			gw->shut_down = true;
			pthread_cond_broadcast(&gw->cond);
			pthread_mutex_unlock(&gw->lock);
			break;
		}
	}
	return NULL;
}

static int bind_socket(struct gateway *gw, const char *path, struct cric_err *err)
{
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return err_set(err, -EEXIST, "\"%s\" exists and is not a socket", path);
		if (!unix_socket_is_stale(path))
			return err_set(err, -EADDRINUSE,
				       "\"%s\" is in use: another cri-gateway is running", path);
		unlink(path);
	}
	char addr[256];
	snprintf(addr, sizeof(addr), "unix:%s", path);
	grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
	int port = grpc_server_add_http2_port(gw->server, addr, creds);
	grpc_server_credentials_release(creds);
	if (port == 0)
		return err_set(err, -EADDRNOTAVAIL, "cannot listen on \"%s\"", path);
	return 0;
}

/* An optional "gateway" integer key within [lo, hi] into *v (left alone
 * when absent). */
static int gateway_uint(const struct cric_config *cfg, const char *key, uint32_t lo, uint32_t hi,
			uint32_t *v, struct cric_err *err)
{
	const json_t *j = json_object_get(json_object_get(cfg->doc, "gateway"), key);
	if (!j)
		return 0;
	if (!json_is_integer(j) || json_integer_value(j) < lo || json_integer_value(j) > hi) {
		char what[80];
		snprintf(what, sizeof(what), "an integer from %u to %u", lo, hi);
		return config_bad_key(cfg, "gateway", key, what, err);
	}
	*v = (uint32_t)json_integer_value(j);
	return 0;
}

/* The streaming list calls: which daemons page them, in chunks of at most
 * "gateway": {"stream_items": N, "stream_bytes": N} (one item at least). */
static int stream_setup(struct gateway *gw, const struct cric_config *cfg, struct cric_err *err)
{
	const struct {
		enum daemon_id d;
		struct cric_method_ref m;
	} pagers[] = {
		{ D_RUNTIMED, CRIC_RUNTIMED(list_page) },
		{ D_MONITORD, CRIC_MONITORD(list_page) },
		{ D_IMAGED, CRIC_IMAGED(list_page) },
	};
	for (size_t i = 0; i < ARRAY_SIZE(pagers); i++) {
		int r = cric_method_name(pagers[i].m, gw->page_methods[pagers[i].d],
					 sizeof(gw->page_methods[0]));
		if (r < 0)
			return err_set(err, r, "streaming lists: %s", strerror(-r));
	}
	gw->stream_items = LISTPAGE_ITEMS_DEFAULT;
	gw->stream_bytes = LISTPAGE_BYTES_DEFAULT;
	int r = gateway_uint(cfg, "stream_items", 1, LISTPAGE_ITEMS_MAX, &gw->stream_items, err);
	if (r == 0)
		r = gateway_uint(cfg, "stream_bytes", LISTPAGE_BYTES_MIN, LISTPAGE_BYTES_MAX,
				 &gw->stream_bytes, err);
	return r;
}

/* The peers' clients, the grpc server and its completion queue thread, the
 * socket, the first pending accepts. On failure the caller stops gw. */
static int gateway_setup(struct gateway *gw, const struct cric_config *cfg, const char *listen_path,
			 struct cric_err *err)
{
	int r = routes_build(&gw->routes);
	for (int d = 0; r == 0 && d < D_COUNT; d++) {
		_cleanup_free_ char *url = config_ipc_url(cfg, daemon_names[d]);
		r = url ? cric_client_open_peer(daemon_names[d], url,
						config_daemon_peer_uid(cfg, daemon_names[d]),
						&gw->clients[d], err)
			: -ENOMEM;
	}
	if (r < 0)
		return r;
	/* "gateway": {"events_buffer": N}: events kept for the subscribers. */
	const json_t *eb = json_object_get(json_object_get(cfg->doc, "gateway"), "events_buffer");
	if (eb && (!json_is_integer(eb) || json_integer_value(eb) < 1 ||
		   json_integer_value(eb) > 1000000))
		return config_bad_key(cfg, "gateway", "events_buffer",
				      "an integer from 1 to 1000000", err);
	const struct ev_hub_config ec = {
		.runtimed = gw->clients[D_RUNTIMED],
		.capacity = eb ? (size_t)json_integer_value(eb) : EVENTS_BUFFER_DEFAULT,
		.max_bytes = 64u * 1024 * 1024,
		.keep_ns = EVENTS_KEEP_SECONDS * 1000000000LL,
	};
	if ((r = cric_method_name(CRI_RUNTIME(get_container_events), gw->events_path,
				  sizeof(gw->events_path))) < 0 ||
	    (r = ev_hub_start(&ec, &gw->events)) < 0)
		return err_set(err, r, "container events: %s", strerror(-r));

	if ((r = stream_setup(gw, cfg, err)) < 0)
		return r;

	grpc_arg args[] = {
		{ .type = GRPC_ARG_INTEGER,
		  .key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
		  .value.integer = MAX_MESSAGE },
		{ .type = GRPC_ARG_INTEGER,
		  .key = (char *)GRPC_ARG_MAX_SEND_MESSAGE_LENGTH,
		  .value.integer = MAX_MESSAGE },
	};
	grpc_channel_args chargs = { .num_args = 2, .args = args };
	gw->server = grpc_server_create(&chargs, NULL);
	gw->cq = grpc_completion_queue_create_for_next(NULL);
	grpc_server_register_completion_queue(gw->server, gw->cq, NULL);
	if (pthread_create(&gw->cq_thread, NULL, cq_loop, gw) != 0)
		return err_set(err, -EAGAIN, "cannot start the completion queue thread");
	gw->cq_thread_started = true;
	if ((r = bind_socket(gw, listen_path, err)) < 0)
		return r;
	grpc_server_start(gw->server);
	if (chmod(listen_path, 0660) < 0)
		return err_set(err, -errno, "chmod \"%s\": %s", listen_path, strerror(errno));
	for (int i = 0; i < PENDING_ACCEPTS; i++)
		if ((r = accept_one(gw)) < 0)
			return err_set(err, r, "cannot accept calls");
	return 0;
}

int gateway_start(const struct cric_config *cfg, const char *listen_path, struct gateway **ret,
		  struct cric_err *err)
{
	struct gateway *gw = calloc(1, sizeof(*gw));
	if (!gw)
		return -ENOMEM;
	pthread_mutex_init(&gw->lock, NULL);
	pthread_cond_init(&gw->cond, NULL);
	gw->max_request_seconds = cfg->max_request_seconds;
	gw->shutdown_tag.kind = TAG_SHUTDOWN;
	int r = gateway_setup(gw, cfg, listen_path, err);
	if (r < 0) {
		gateway_stop(gw);
		return r;
	}
	*ret = gw;
	return 0;
}

void gateway_stop(struct gateway *gw)
{
	if (!gw)
		return;
	if (gw->server) {
		grpc_server_shutdown_and_notify(gw->server, gw->cq, &gw->shutdown_tag);
		grpc_server_cancel_all_calls(gw->server);
		if (gw->cq_thread_started) {
			pthread_mutex_lock(&gw->lock);
			while (!gw->shut_down)
				pthread_cond_wait(&gw->cond, &gw->lock);
			pthread_mutex_unlock(&gw->lock);
		}
	}
	/* The events' long poll ends before runtimed's client goes. */
	ev_hub_stop(gw->events);
	/* Calls still waiting for a daemon complete (UNAVAILABLE) here; their
	 * answers go to cancelled calls and drain through the queue. */
	for (int d = 0; d < D_COUNT; d++)
		cric_client_close(gw->clients[d]);
	if (gw->server) {
		grpc_server_destroy(gw->server);
		grpc_completion_queue_shutdown(gw->cq);
		if (gw->cq_thread_started)
			pthread_join(gw->cq_thread, NULL);
		grpc_completion_queue_destroy(gw->cq);
	}
	ev_hub_free(gw->events);
	routes_free(&gw->routes);
	pthread_mutex_destroy(&gw->lock);
	pthread_cond_destroy(&gw->cond);
	free(gw);
}
