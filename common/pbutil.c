#include "pbutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

static size_t varint(uint8_t *buf, uint64_t v)
{
	size_t k = 0;
	for (; v >= 0x80; v >>= 7)
		buf[k++] = (uint8_t)(v | 0x80);
	buf[k++] = (uint8_t)v;
	return k;
}

size_t pb_varint_field(uint8_t *buf, unsigned field, uint64_t v)
{
	size_t k = varint(buf, (uint64_t)field << 3 | PROTOBUF_C_WIRE_TYPE_VARINT);
	return k + varint(buf + k, v);
}

size_t pb_len_prefix(uint8_t *buf, unsigned field, size_t len)
{
	size_t k = varint(buf, (uint64_t)field << 3 | PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED);
	return k + varint(buf + k, len);
}

int pb_packed_item(unsigned field, const uint8_t *item, size_t len, const uint8_t *tail,
		   size_t tail_len, ProtobufCMessageUnknownField *ret)
{
	size_t body = len + tail_len;
	uint8_t *d = malloc(10 + (body ? body : 1));
	if (!d)
		return -ENOMEM;
	size_t k = varint(d, body);
	if (len)
		memcpy(d + k, item, len);
	if (tail_len)
		memcpy(d + k + len, tail, tail_len);
	*ret = (ProtobufCMessageUnknownField){ .tag = field,
					       .wire_type = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED,
					       .len = k + body,
					       .data = d };
	return 0;
}
