#include "listpage.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "macro.h"
#include "pbutil.h"

/* A cursor is an id: longer than this is not one of ours. */
#define CURSOR_MAX 512

static bool same_field(const ProtobufCFieldDescriptor *a, const ProtobufCFieldDescriptor *b)
{
	return a->id == b->id && a->label == b->label && a->type == b->type &&
	       strcmp(a->name, b->name) == 0 && a->descriptor == b->descriptor;
}

/* The repeated message field number 1 of d: the items of a list answer. */
static const ProtobufCFieldDescriptor *items_field(const ProtobufCMessageDescriptor *d)
{
	const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(d, 1);
	if (!f || f->label != PROTOBUF_C_LABEL_REPEATED || f->type != PROTOBUF_C_TYPE_MESSAGE)
		return NULL;
	return f;
}

int listpage_twin_check(struct cric_method_ref stream, struct cric_method_ref list,
			struct cric_err *err)
{
	const ProtobufCMethodDescriptor *s = cric_method_desc(stream), *l = cric_method_desc(list);
	if (!s || !l)
		return err_set(err, -EINVAL, "no such method");
	if (s->input->n_fields != l->input->n_fields)
		return err_set(err, -EINVAL, "%s and %s differ", s->input->name, l->input->name);
	for (unsigned i = 0; i < s->input->n_fields; i++)
		if (!same_field(&s->input->fields[i], &l->input->fields[i]))
			return err_set(err, -EINVAL, "%s and %s differ in field %s", s->input->name,
				       l->input->name, s->input->fields[i].name);
	const ProtobufCFieldDescriptor *si = items_field(s->output), *li = items_field(l->output);
	if (s->output->n_fields != 1 || !si || !li || si->descriptor != li->descriptor)
		return err_set(err, -EINVAL, "%s does not carry the items of %s", s->output->name,
			       l->output->name);
	return 0;
}

static const void *field_at(const ProtobufCMessage *m, const char *name, ProtobufCType type)
{
	const ProtobufCFieldDescriptor *f =
	    protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name);
	if (!f || f->type != type || f->label == PROTOBUF_C_LABEL_REPEATED)
		return NULL;
	return *(const void *const *)((const char *)m + f->offset);
}

const char *listpage_item_key(const ProtobufCMessage *item)
{
	const char *k = field_at(item, "id", PROTOBUF_C_TYPE_STRING);
	if (!k) {
		const ProtobufCMessage *a = field_at(item, "attributes", PROTOBUF_C_TYPE_MESSAGE);
		if (a)
			k = field_at(a, "id", PROTOBUF_C_TYPE_STRING);
	}
	if (!k)
		k = field_at(item, "pod_sandbox_id", PROTOBUF_C_TYPE_STRING);
	return k ? k : "";
}

static int by_key(const void *a, const void *b)
{
	return strcmp(listpage_item_key(*(ProtobufCMessage *const *)a),
		      listpage_item_key(*(ProtobufCMessage *const *)b));
}

/* The packed size of an item inside its answer: the item, its field tag
 * (one byte: field 1) and its length (a varint). */
static size_t item_size(const ProtobufCMessage *item)
{
	size_t n = protobuf_c_message_get_packed_size(item);
	size_t v = 1;
	for (size_t x = n; x >= 0x80; x >>= 7)
		v++;
	return 1 + v + n;
}

static uint32_t clamp(uint32_t v, uint32_t def, uint32_t lo, uint32_t hi)
{
	if (!v)
		return def;
	return v < lo ? lo : v > hi ? hi : v;
}

int listpage_build(const ProtobufCMessage *list_resp, const ProtobufCMessageDescriptor *stream_resp,
		   const char *after, uint32_t max_items, uint32_t max_bytes, uint8_t **page,
		   size_t *len, char **next)
{
	const ProtobufCFieldDescriptor *lf = items_field(list_resp->descriptor);
	const ProtobufCFieldDescriptor *sf = items_field(stream_resp);
	if (!lf || !sf || lf->descriptor != sf->descriptor || stream_resp->n_fields != 1)
		return -EINVAL;
	max_items = clamp(max_items, LISTPAGE_ITEMS_DEFAULT, 1, LISTPAGE_ITEMS_MAX);
	max_bytes =
	    clamp(max_bytes, LISTPAGE_BYTES_DEFAULT, LISTPAGE_BYTES_MIN, LISTPAGE_BYTES_MAX);

	size_t n = *(const size_t *)((const char *)list_resp + lf->quantifier_offset);
	ProtobufCMessage *const *all =
	    *(ProtobufCMessage *const *const *)((const char *)list_resp + lf->offset);
	_cleanup_free_ ProtobufCMessage **v = calloc(n ? n : 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (strcmp(listpage_item_key(all[i]), after) > 0)
			v[m++] = all[i];
	qsort(v, m, sizeof(*v), by_key);

	size_t k = 0, bytes = 0;
	while (k < m && k < max_items) {
		size_t s = item_size(v[k]);
		if (k > 0 && bytes + s > max_bytes)
			break;
		bytes += s;
		k++;
	}
	/* Items sharing an id (none should) never straddle two pages: the
	 * cursor would skip the second. */
	while (k > 0 && k < m && by_key(&v[k - 1], &v[k]) == 0)
		k++;

	_cleanup_free_ ProtobufCMessage *resp = pb_new(stream_resp);
	if (!resp)
		return -ENOMEM;
	/* The items are borrowed from list_resp: resp is freed by hand. */
	*(size_t *)((char *)resp + sf->quantifier_offset) = k;
	*(ProtobufCMessage ***)((char *)resp + sf->offset) = v;
	size_t plen = protobuf_c_message_get_packed_size(resp);
	_cleanup_free_ uint8_t *buf = malloc(plen ? plen : 1);
	_cleanup_free_ char *cursor = strdup(k < m ? listpage_item_key(v[k - 1]) : "");
	if (!buf || !cursor)
		return -ENOMEM;
	protobuf_c_message_pack(resp, buf);
	*page = TAKE_PTR(buf);
	*len = plen;
	*next = TAKE_PTR(cursor);
	return 0;
}

static const struct listpage_twin *find_twin(const struct listpage_twin *twins, size_t n,
					     const char *method)
{
	char name[IPC_METHOD_MAX + 1];
	for (size_t i = 0; i < n; i++)
		if (cric_method_name(twins[i].stream, name, sizeof(name)) == 0 &&
		    strcmp(name, method) == 0)
			return &twins[i];
	return NULL;
}

int listpage_serve(const struct listpage_twin *twins, size_t n, void *ud,
		   const struct cric_call *call, const ProtobufCMessage *in, ProtobufCMessage **out,
		   struct cric_err *err)
{
	const Cric__Listpage__ListPageRequest *req = (const void *)in;
	const struct listpage_twin *t = find_twin(twins, n, req->method);
	if (!t)
		return err_set(err, -EOPNOTSUPP,
			       "\"%.64s\" is not a streaming list call served here", req->method);
	if (strlen(req->after) > CURSOR_MAX)
		return err_set(err, -EINVAL, "cursor longer than %d bytes", CURSOR_MAX);
	int r = listpage_twin_check(t->stream, t->list, err);
	if (r < 0)
		return r;
	const ProtobufCMethodDescriptor *lmd = cric_method_desc(t->list);
	const ProtobufCMethodDescriptor *smd = cric_method_desc(t->stream);
	/* Twins share their fields: the stream request is a list request. */
	_cleanup_pb_ ProtobufCMessage *lreq =
	    protobuf_c_message_unpack(lmd->input, NULL, req->request.len, req->request.data);
	if (!lreq)
		return err_set(err, -EINVAL, "request is not a valid %s message", smd->input->name);
	_cleanup_pb_ ProtobufCMessage *lresp = NULL;
	if ((r = t->list_fn(ud, call, lreq, &lresp, err)) < 0)
		return r;
	_cleanup_pb_ Cric__Listpage__ListPageResponse *resp =
	    pb_new(&cric__listpage__list_page_response__descriptor);
	if (!resp)
		return -ENOMEM;
	r = listpage_build(lresp, smd->output, req->after, req->max_items, req->max_bytes,
			   &resp->page.data, &resp->page.len, &resp->next);
	if (r < 0)
		return err_set(err, r, "%s: cannot build a page", smd->name);
	*out = &TAKE_PTR(resp)->base;
	return 0;
}
