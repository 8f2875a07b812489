/* A protobuf-c message as JSON (jansson), for verbose status "info" maps:
 * field names as in the .proto, enums by name, bytes base64, map fields
 * (repeated *Entry messages with key and value) as JSON objects, unset
 * optional submessages and empty repeated fields left out. */
#pragma once

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

json_t *pb_to_json(const ProtobufCMessage *m);
