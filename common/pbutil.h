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
