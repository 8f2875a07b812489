/* The gateway's completion queue tags: what finished (gateway.c's calls,
 * events.c's subscribers, liststream.c's streams). Handled on the
 * completion queue's thread. */
#pragma once

enum tag_kind {
	TAG_NEW,
	TAG_RECV,
	TAG_CLOSE,
	TAG_SEND,
	TAG_SHUTDOWN,
	TAG_EVENT_SENT,
	TAG_LIST_SENT
};

struct gw_call;
struct ev_sub;
struct ls_stream;
struct tag {
	enum tag_kind kind;
	union {
		struct gw_call *call;
		struct ev_sub *sub;
		struct ls_stream *ls;
	};
};
