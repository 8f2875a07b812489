/* The daemons' side of the CRI streaming list calls (StreamPodSandboxes,
 * StreamContainers, StreamImages, StreamContainerStats,
 * StreamPodSandboxStats, StreamPodSandboxMetrics): cric.<daemon>.ListPage
 * (proto/cric/listpage.proto) answers one page of one of them.
 *
 * A page runs the List twin of the streaming method, the daemon's own
 * handler for it, on the client's request (each Stream*Request has the
 * fields of its List*Request, each Stream*Response the item field of its
 * List*Response: listpage_twin_check), so the filters and the content are
 * the List's. Its items are ordered by id (listpage_item_key) and those
 * after the cursor answered, up to max_items and max_bytes (one item at
 * least). Nothing is kept between pages.
 *
 * Threads: whatever the daemon's handlers allow; nothing here blocks but
 * the List handler. */
#pragma once

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "service.h"

#define LISTPAGE_ITEMS_DEFAULT 500
#define LISTPAGE_ITEMS_MAX     100000
#define LISTPAGE_BYTES_DEFAULT (4u * 1024 * 1024)
#define LISTPAGE_BYTES_MIN     1024u
#define LISTPAGE_BYTES_MAX     (15u * 1024 * 1024) /* under the 16 MiB message limit */

/* A streaming list method a daemon serves through the handler of its List
 * twin. */
struct listpage_twin {
	struct cric_method_ref stream; /* CRI_RUNTIME(stream_containers) */
	struct cric_method_ref list;   /* CRI_RUNTIME(list_containers) */
	cric_handler_fn list_fn;       /* the daemon's handler of list */
};

/* 0 when stream and list are twins as described above; -EINVAL (with why
 * in err) otherwise. */
int listpage_twin_check(struct cric_method_ref stream, struct cric_method_ref list,
			struct cric_err *err);

/* The id an item is ordered and paged by: its "id", else its
 * "attributes.id", else its "pod_sandbox_id"; "" when it has none. */
const char *listpage_item_key(const ProtobufCMessage *item);

/* From list_resp (a List*Response), the page after cursor `after` as a
 * packed message of type stream_resp (its twin Stream*Response) into
 * *page and *len (malloc'd), and the cursor of the next page into *next
 * (malloc'd; "" when none is left). Limits are clamped to their ranges,
 * 0 meaning the default. -ENOMEM, or -EINVAL when the types are not twins. */
int listpage_build(const ProtobufCMessage *list_resp, const ProtobufCMessageDescriptor *stream_resp,
		   const char *after, uint32_t max_items, uint32_t max_bytes, uint8_t **page,
		   size_t *len, char **next);

/* The handler of cric.<daemon>.ListPage for the twins the daemon serves
 * (ud is passed on to their List handlers). An unknown method is
 * UNIMPLEMENTED, an undecodable request or a bad cursor INVALID_ARGUMENT. */
int listpage_serve(const struct listpage_twin *twins, size_t n, void *ud,
		   const struct cric_call *call, const ProtobufCMessage *in, ProtobufCMessage **out,
		   struct cric_err *err);
