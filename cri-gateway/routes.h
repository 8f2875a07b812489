/* The routing table: every CRI method (from the generated service
 * descriptors, so no method of proto/cri/api.proto can be missing) mapped to
 * the daemon that owns it (DESIGN.md), whether it streams, and its request
 * type (used to reject undecodable requests at the door). */
#pragma once

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/service.h"

enum daemon_id { D_IMAGED, D_STORED, D_NETD, D_RUNTIMED, D_MONITORD, D_COUNT };

extern const char *const daemon_names[D_COUNT];

struct route {
	char path[160]; /* "/runtime.v1.RuntimeService/Version" */
	enum daemon_id daemon;
	bool server_streaming;
	/* Forwarded with the client's deadline, or none without one: never
	 * capped by max_request_seconds (the method bounds itself). */
	bool uncapped;
	const ProtobufCMessageDescriptor *input;
};

struct route_table {
	struct route *routes;
	size_t n;
};

int routes_build(struct route_table *t);
void routes_free(struct route_table *t);
/* Lookup by full gRPC path; NULL if unknown. */
const struct route *route_find(const struct route_table *t, const char *path);
/* How many owner lines name method m (exactly one for every CRI method),
 * and how many lines there are: for the tests. */
size_t routes_owner_count(struct cric_method_ref m);
size_t routes_n_owners(void);
