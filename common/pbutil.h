/* Building heap protobuf-c messages that protobuf_c_message_free_unpacked()
 * can free: every message, string and array comes from malloc. */
#pragma once

#include <protobuf-c/protobuf-c.h>
#include <stdlib.h>
#include <string.h>

/* A zeroed, initialised message of type d; NULL on OOM. */
static inline void *pb_new(const ProtobufCMessageDescriptor *d)
{
	ProtobufCMessage *m = malloc(d->sizeof_message);
	if (m)
		d->message_init(m);
	return m;
}

/* Set a string field to a heap copy; returns -ENOMEM on failure. */
static inline int pb_set_str(char **field, const char *value)
{
	char *s = strdup(value ? value : "");
	if (!s)
		return -12; /* -ENOMEM */
	*field = s;
	return 0;
}

/* Map fields (protobuf's map<string, string>: a repeated entry message with
 * "key" and "value"), reached through the descriptors, never through the
 * layout of the generated structs. */

/* Append key => value to msg's map field named field. 0, -ENOMEM, or
 * -EINVAL when field is not such a map. */
int pb_map_add(ProtobufCMessage *msg, const char *field, const char *key, const char *value);
/* Free the entries of msg's map field (of a message on the stack whose
 * map was filled with pb_map_add/pb_map_copy) and empty it. */
void pb_map_clear(ProtobufCMessage *msg, const char *field);
/* Append every entry of src's map field src_field to dst's dst_field. */
int pb_map_copy(ProtobufCMessage *dst, const char *dst_field, const ProtobufCMessage *src,
		const char *src_field);

/* Items of a repeated message field kept packed (a list answered from
 * entries packed once, not rebuilt per call): *ret becomes an unknown field
 * of the message that protobuf-c packs as it is, the same bytes on the wire
 * as the field's item: field's tag, then item and tail (more fields of the
 * item, after the others: a parser takes fields in any order) as one
 * length-prefixed value. data is malloc'd (freed with the message by
 * protobuf_c_message_free_unpacked). -ENOMEM. */
int pb_packed_item(unsigned field, const uint8_t *item, size_t len, const uint8_t *tail,
		   size_t tail_len, ProtobufCMessageUnknownField *ret);
/* Write field as a varint field of value v into buf (PB_VARINT_FIELD_MAX
 * bytes); its length. */
#define PB_VARINT_FIELD_MAX 15
size_t pb_varint_field(uint8_t *buf, unsigned field, uint64_t v);
/* Write the tag of length-prefixed field and the length len into buf
 * (PB_VARINT_FIELD_MAX bytes): what goes before len bytes of its value. */
size_t pb_len_prefix(uint8_t *buf, unsigned field, size_t len);
/* The number of d's field name (which the caller knows d has). */
static inline unsigned pb_field_id(const ProtobufCMessageDescriptor *d, const char *name)
{
	return protobuf_c_message_descriptor_get_field_by_name(d, name)->id;
}
