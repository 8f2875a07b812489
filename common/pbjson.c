#include "pbjson.h"

#include "base64.h"

#include <errno.h>
#include <stdio.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static json_t *bytes_json(const ProtobufCBinaryData *b)
{
	if (b->len > 64 * 1024 * 1024)
		return NULL;
	char *out = base64_encode(b->data, b->len);
	if (!out)
		return NULL;
	json_t *j = json_string(out);
	free(out);
	return j;
}

static json_t *scalar_json(const ProtobufCFieldDescriptor *f, const void *p)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		return json_integer(*(const int32_t *)p);
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return json_integer(*(const uint32_t *)p);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		return json_integer(*(const int64_t *)p);
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		/* JSON integers are int64 here: keep large values exact as text. */
		if (*(const uint64_t *)p > INT64_MAX) {
			char buf[32];
			snprintf(buf, sizeof(buf), "%" PRIu64, *(const uint64_t *)p);
			return json_string(buf);
		}
		return json_integer((json_int_t) * (const uint64_t *)p);
	case PROTOBUF_C_TYPE_FLOAT:
		return json_real(*(const float *)p);
	case PROTOBUF_C_TYPE_DOUBLE:
		return json_real(*(const double *)p);
	case PROTOBUF_C_TYPE_BOOL:
		return json_boolean(*(const protobuf_c_boolean *)p);
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumValue *v =
		    protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int *)p);
		return v ? json_string(v->name) : json_integer(*(const int *)p);
	}
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)p;
		return json_string(s ? s : "");
	}
	case PROTOBUF_C_TYPE_BYTES:
		return bytes_json(p);
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *m = *(ProtobufCMessage *const *)p;
		return m ? pb_to_json(m) : json_null();
	}
	}
	return json_null();
}

static size_t type_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return 8;
	case PROTOBUF_C_TYPE_DOUBLE:
		return sizeof(double);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	default:
		return 4;
	}
}

/* A map field: repeated messages "<Field>Entry" with fields key and value. */
static bool is_map_entry(const ProtobufCFieldDescriptor *f)
{
	if (f->type != PROTOBUF_C_TYPE_MESSAGE)
		return false;
	const ProtobufCMessageDescriptor *d = f->descriptor;
	size_t n = strlen(d->short_name);
	return n > 5 && strcmp(d->short_name + n - 5, "Entry") == 0 && d->n_fields == 2 &&
	       strcmp(d->fields[0].name, "key") == 0 && strcmp(d->fields[1].name, "value") == 0 &&
	       d->fields[0].type == PROTOBUF_C_TYPE_STRING;
}

json_t *pb_to_json(const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	json_t *o = json_object();
	if (!o)
		return NULL;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *base = (const char *)m + f->offset;
		json_t *v = NULL;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
			if (n == 0)
				continue;
			const char *arr = *(char *const *)base;
			if (is_map_entry(f)) {
				v = json_object();
				for (size_t k = 0; v && k < n; k++) {
					const ProtobufCMessage *e =
					    ((ProtobufCMessage *const *)arr)[k];
					const ProtobufCMessageDescriptor *ed = f->descriptor;
					const char *key = *(char *const *)((const char *)e +
									   ed->fields[0].offset);
					json_t *val = scalar_json(
					    &ed->fields[1], (const char *)e + ed->fields[1].offset);
					json_object_set_new(v, key ? key : "",
							    val ? val : json_null());
				}
			} else {
				v = json_array();
				for (size_t k = 0; v && k < n; k++) {
					json_t *e = scalar_json(f, arr + k * type_size(f->type));
					json_array_append_new(v, e ? e : json_null());
				}
			}
		} else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
			if (!*(ProtobufCMessage *const *)base)
				continue;
			v = scalar_json(f, base);
		} else {
			v = scalar_json(f, base);
		}
		if (!v || json_object_set_new(o, f->name, v) < 0) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

/* ---- JSON to protobuf ---- */

/* Set one value of field f at dst from v. */
static int set_value(const ProtobufCFieldDescriptor *f, void *dst, const json_t *v, char *why,
		     size_t whylen)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING:
		if (!json_is_string(v))
			break;
		return (*(char **)dst = strdup(json_string_value(v))) ? 0 : -ENOMEM;
	case PROTOBUF_C_TYPE_BOOL:
		if (!json_is_boolean(v))
			break;
		*(protobuf_c_boolean *)dst = json_is_true(v);
		return 0;
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_ENUM:
		if (!json_is_integer(v))
			break;
		*(int32_t *)dst = (int32_t)json_integer_value(v);
		return 0;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		if (!json_is_integer(v))
			break;
		*(uint32_t *)dst = (uint32_t)json_integer_value(v);
		return 0;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		if (!json_is_integer(v))
			break;
		*(int64_t *)dst = json_integer_value(v);
		return 0;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		if (!json_is_integer(v))
			break;
		*(uint64_t *)dst = (uint64_t)json_integer_value(v);
		return 0;
	case PROTOBUF_C_TYPE_MESSAGE:
		return pb_from_json(v, f->descriptor, (ProtobufCMessage **)dst, why, whylen);
	default:
		break;
	}
	snprintf(why, whylen, "field \"%s\": wrong JSON type or unsupported field type", f->name);
	return -EINVAL;
}

int pb_from_json(const json_t *j, const ProtobufCMessageDescriptor *d, ProtobufCMessage **ret,
		 char *why, size_t whylen)
{
	if (!json_is_object(j)) {
		snprintf(why, whylen, "%s: not a JSON object", d->name);
		return -EINVAL;
	}
	ProtobufCMessage *m = calloc(1, d->sizeof_message);
	if (!m)
		return -ENOMEM;
	d->message_init(m);
	*ret = m; /* freed by the caller, also when partly filled */
	const char *key;
	json_t *v;
	json_object_foreach ((json_t *)j, key, v) {
		const ProtobufCFieldDescriptor *f =
		    protobuf_c_message_descriptor_get_field_by_name(d, key);
		if (!f) {
			snprintf(why, whylen, "%s has no field \"%s\"", d->name, key);
			return -EINVAL;
		}
		char *member = (char *)m + f->offset;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			if (!json_is_array(v)) {
				snprintf(why, whylen, "field \"%s\" must be an array", key);
				return -EINVAL;
			}
			size_t n = json_array_size(v),
			       *count = (size_t *)((char *)m + f->quantifier_offset);
			char *arr = calloc(n ? n : 1, type_size(f->type));
			if (!arr)
				return -ENOMEM;
			*(void **)member = arr;
			for (size_t i = 0; i < n; i++) {
				/* Counted first: a submessage that fails half-way is
				 * still freed with the message. */
				(*count)++;
				int r = set_value(f, arr + i * type_size(f->type),
						  json_array_get(v, i), why, whylen);
				if (r < 0)
					return r;
			}
			continue;
		}
		int r = set_value(f, member, v, why, whylen);
		if (r < 0)
			return r;
		if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
		    f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
			*(protobuf_c_boolean *)((char *)m + f->quantifier_offset) = 1;
	}
	return 0;
}
