/* A protobuf-c message as JSON (jansson), for verbose status "info" maps:
 * field names as in the .proto, enums by name, bytes base64, map fields
 * (repeated *Entry messages with key and value) as JSON objects, unset
 * optional submessages and empty repeated fields left out. */
#pragma once

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

json_t *pb_to_json(const ProtobufCMessage *m);

/* The other way, for tools and tests: a JSON object with the .proto's field
 * names into a new message of type d (*ret, freed by the caller with
 * protobuf_c_message_free_unpacked(), also after a failure, when it may be
 * partly filled). Scalars, strings, enums as numbers, submessages and
 * repeated fields; -EINVAL with why saying which field is wrong. */
int pb_from_json(const json_t *j, const ProtobufCMessageDescriptor *d, ProtobufCMessage **ret,
		 char *why, size_t whylen);
