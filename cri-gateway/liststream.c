#include "liststream.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/service.h"
#include "cq.h"

struct ls_stream {
	struct ls_config cfg;
	grpc_call *call;
	/* The gateway's (until ls_close) and the step in flight's (a page
	 * asked for or a batch started). */
	atomic_int refs;
	atomic_bool gone; /* the client's side closed */
	char path[160];
	char request_id[IPC_REQUEST_ID_MAX + 1];
	int64_t deadline_ns;
	uint8_t *req;
	size_t req_len;
	char *after;        /* the cursor: the last item sent's id */
	bool metadata_sent; /* on the step's thread only */
	bool last;          /* the batch in flight carries the status */
	unsigned messages;
	grpc_byte_buffer *send;
	grpc_slice details;
	bool has_details;
	struct tag t_sent;
};

static void unref(struct ls_stream *s)
{
	if (atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	grpc_call_unref(s->call);
	if (s->send)
		grpc_byte_buffer_destroy(s->send);
	if (s->has_details)
		grpc_slice_unref(s->details);
	free(s->req);
	free(s->after);
	free(s);
}

/* Start the batch: initial metadata the first time, the page (if any),
 * the status (if code is not OK or this is the last page). Takes over the
 * step's reference. */
static void send_batch(struct ls_stream *s, const uint8_t *page, size_t len, bool end,
		       unsigned code, const char *message)
{
	grpc_op ops[3];
	memset(ops, 0, sizeof(ops));
	size_t n = 0;
	if (!s->metadata_sent)
		ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
	if (page) {
		grpc_slice sl = grpc_slice_from_copied_buffer((const char *)page, len);
		s->send = grpc_raw_byte_buffer_create(&sl, 1);
		grpc_slice_unref(sl);
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n++].data.send_message.send_message = s->send;
		s->messages++;
	}
	if (end) {
		s->details = grpc_slice_from_copied_string(message ? message : "");
		s->has_details = true;
		ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
		ops[n].data.send_status_from_server.status = (grpc_status_code)code;
		ops[n].data.send_status_from_server.status_details = &s->details;
		ops[n++].data.send_status_from_server.trailing_metadata_count = 0;
		if (code != CODE_OK)
			log_info("%s req=%s: %s: %s (after %u message%s)", s->path, s->request_id,
				 grpc_code_name(code), message ? message : "", s->messages,
				 s->messages == 1 ? "" : "s");
		else
			log_debug("%s req=%s: done in %u message%s", s->path, s->request_id,
				  s->messages, s->messages == 1 ? "" : "s");
	}
	s->metadata_sent = true;
	s->last = end;
	if (grpc_call_start_batch(s->call, ops, n, &s->t_sent, NULL) != GRPC_CALL_OK) {
		log_error("%s req=%s: cannot send", s->path, s->request_id);
		unref(s);
	}
}

/* The client went away (cancelled, disconnected, deadline passed). */
static void gone(struct ls_stream *s)
{
	log_info("%s req=%s: client gone after %u message%s", s->path, s->request_id, s->messages,
		 s->messages == 1 ? "" : "s");
	unref(s);
}

static void page_answered(void *arg, struct cric_result *res)
{
	struct ls_stream *s = arg;
	if (atomic_load(&s->gone)) {
		gone(s);
		return;
	}
	if (res->code != CODE_OK) {
		send_batch(s, NULL, 0, true, res->code, res->message);
		return;
	}
	_cleanup_pb_ Cric__Listpage__ListPageResponse *resp =
	    cric__listpage__list_page_response__unpack(NULL, res->len, res->payload);
	if (!resp) {
		send_batch(s, NULL, 0, true, CODE_INTERNAL, "the daemon's page does not decode");
		return;
	}
	bool end = !resp->next[0];
	if (!end && (!resp->page.len || strcmp(resp->next, s->after) <= 0)) {
		/* A cursor that does not move on would loop for ever. */
		send_batch(s, NULL, 0, true, CODE_INTERNAL, "the daemon's page does not move on");
		return;
	}
	char *next = strdup(resp->next);
	if (!next) {
		send_batch(s, NULL, 0, true, CODE_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	free(s->after);
	s->after = next;
	/* An empty page is only the whole of an empty list: no message. */
	send_batch(s, resp->page.len ? resp->page.data : NULL, resp->page.len, end, CODE_OK, NULL);
}

/* Ask the daemon for the page after the cursor; takes over the step's
 * reference. */
static void ask(struct ls_stream *s)
{
	Cric__Listpage__ListPageRequest req = CRIC__LISTPAGE__LIST_PAGE_REQUEST__INIT;
	req.method = s->path;
	req.request.data = s->req;
	req.request.len = s->req_len;
	req.after = s->after;
	req.max_items = s->cfg.max_items;
	req.max_bytes = s->cfg.max_bytes;
	size_t len = cric__listpage__list_page_request__get_packed_size(&req);
	_cleanup_free_ uint8_t *buf = malloc(len ? len : 1);
	if (!buf) {
		send_batch(s, NULL, 0, true, CODE_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	cric__listpage__list_page_request__pack(&req, buf);
	int r = cric_client_call_async(s->cfg.client, s->cfg.page_method, s->request_id,
				       s->deadline_ns, buf, len, page_answered, s);
	if (r < 0) {
		char msg[256];
		unsigned code = CODE_UNAVAILABLE;
		if (r == -ENOTCONN)
			snprintf(msg, sizeof(msg), "cric %s is not running",
				 cric_client_name(s->cfg.client));
		else if (r == -ETIMEDOUT) {
			code = CODE_DEADLINE_EXCEEDED;
			snprintf(msg, sizeof(msg), "deadline passed before the next page");
		} else
			snprintf(msg, sizeof(msg), "cannot ask %s: %s",
				 cric_client_name(s->cfg.client), strerror(-r));
		send_batch(s, NULL, 0, true, code, msg);
	}
}

int ls_start(const struct ls_config *cfg, grpc_call *call, const char *path, const char *request_id,
	     int64_t deadline_ns, const uint8_t *req, size_t len, struct ls_stream **ret)
{
	struct ls_stream *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->req = malloc(len ? len : 1);
	s->after = strdup("");
	if (!s->req || !s->after) {
		free(s->req);
		free(s->after);
		free(s);
		return -ENOMEM;
	}
	memcpy(s->req, req, len);
	s->req_len = len;
	s->cfg = *cfg;
	s->call = call;
	grpc_call_ref(call);
	atomic_init(&s->refs, 2); /* the gateway's, the first step's */
	atomic_init(&s->gone, false);
	snprintf(s->path, sizeof(s->path), "%s", path);
	snprintf(s->request_id, sizeof(s->request_id), "%s", request_id);
	s->deadline_ns = deadline_ns;
	s->t_sent = (struct tag){ .kind = TAG_LIST_SENT, .ls = s };
	*ret = s;
	ask(s);
	return 0;
}

void ls_close(struct ls_stream *s)
{
	atomic_store(&s->gone, true);
	unref(s);
}

void ls_sent(struct ls_stream *s, bool ok)
{
	if (s->send) {
		grpc_byte_buffer_destroy(s->send);
		s->send = NULL;
	}
	if (s->last && ok) {
		unref(s);
		return;
	}
	if (!ok || atomic_load(&s->gone)) {
		gone(s);
		return;
	}
	ask(s);
}
