#include "pbutil.h"

#include <errno.h>

/* The map field named name of d, with its entry's key and value fields. */
static int map_field(const ProtobufCMessageDescriptor *d, const char *name,
		     const ProtobufCFieldDescriptor **field, const ProtobufCFieldDescriptor **key,
		     const ProtobufCFieldDescriptor **value)
{
	const ProtobufCFieldDescriptor *f =
	    protobuf_c_message_descriptor_get_field_by_name(d, name);
	if (!f || f->label != PROTOBUF_C_LABEL_REPEATED || f->type != PROTOBUF_C_TYPE_MESSAGE)
		return -EINVAL;
	const ProtobufCMessageDescriptor *e = f->descriptor;
	const ProtobufCFieldDescriptor *k =
	    protobuf_c_message_descriptor_get_field_by_name(e, "key");
	const ProtobufCFieldDescriptor *v =
	    protobuf_c_message_descriptor_get_field_by_name(e, "value");
	if (!k || !v || k->type != PROTOBUF_C_TYPE_STRING || v->type != PROTOBUF_C_TYPE_STRING)
		return -EINVAL;
	*field = f;
	*key = k;
	*value = v;
	return 0;
}

#define MEMBER(msg, off, type) ((type *)((char *)(msg) + (off)))

int pb_map_add(ProtobufCMessage *msg, const char *field, const char *key, const char *value)
{
	const ProtobufCFieldDescriptor *f, *k, *v;
	int r = map_field(msg->descriptor, field, &f, &k, &v);
	if (r < 0)
		return r;
	size_t *n = MEMBER(msg, f->quantifier_offset, size_t);
	ProtobufCMessage ***arr = MEMBER(msg, f->offset, ProtobufCMessage **);
	ProtobufCMessage **grown = realloc(*arr, (*n + 1) * sizeof(**arr));
	if (!grown)
		return -ENOMEM;
	*arr = grown;
	ProtobufCMessage *e = pb_new(f->descriptor);
	if (!e)
		return -ENOMEM;
	grown[(*n)++] = e; /* freed with msg from here on */
	if (pb_set_str(MEMBER(e, k->offset, char *), key) < 0 ||
	    pb_set_str(MEMBER(e, v->offset, char *), value) < 0)
		return -ENOMEM;
	return 0;
}

int pb_map_copy(ProtobufCMessage *dst, const char *dst_field, const ProtobufCMessage *src,
		const char *src_field)
{
	const ProtobufCFieldDescriptor *f, *k, *v;
	int r = map_field(src->descriptor, src_field, &f, &k, &v);
	if (r < 0)
		return r;
	size_t n = *MEMBER(src, f->quantifier_offset, size_t);
	ProtobufCMessage *const *arr = *MEMBER(src, f->offset, ProtobufCMessage **);
	for (size_t i = 0; i < n && r == 0; i++)
		r = pb_map_add(dst, dst_field, *MEMBER(arr[i], k->offset, char *),
			       *MEMBER(arr[i], v->offset, char *));
	return r;
}

void pb_map_clear(ProtobufCMessage *msg, const char *field)
{
	const ProtobufCFieldDescriptor *f, *k, *v;
	if (map_field(msg->descriptor, field, &f, &k, &v) < 0)
		return;
	size_t *n = MEMBER(msg, f->quantifier_offset, size_t);
	ProtobufCMessage ***arr = MEMBER(msg, f->offset, ProtobufCMessage **);
	for (size_t i = 0; i < *n; i++)
		protobuf_c_message_free_unpacked((*arr)[i], NULL);
	free(*arr);
	*arr = NULL;
	*n = 0;
}
