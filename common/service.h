/* Services as the daemons serve and call them, derived from the protobuf-c
 * service descriptors generated from proto/: the method names on the wire,
 * the request and response types, and for each method a daemon serves its
 * handler, its allowed callers and its deadline cap. Nothing here is copied
 * by hand from the .proto files.
 *
 * Names on the wire (the envelope's method): a method of an internal service
 * (package "cric" or "cric.*", one service per package) is
 * "<package>.<Method>" ("cric.Health", "cric.netd.SetupPodNetwork"); a method
 * of a CRI service its gRPC path "/<package>.<Service>/<Method>"
 * ("/runtime.v1.RuntimeService/Version"), as cri-gateway forwards it.
 *
 * In C a method is a struct cric_method_ref: its service descriptor and its
 * index there, written CRIC_NETD(setup_pod_network). The index comes from the
 * position of the method's member in protoc-c's generated <Service>_Service
 * struct (a ProtobufCService, then one function pointer per method in
 * declaration order, the order of the descriptor's methods[]): a misspelt or
 * absent method does not compile. tests/unit/test-service.c checks the
 * layout assumption against every method's name.
 *
 * Server side: a daemon lists the services it serves (struct cric_service),
 * each with one line per method (struct cric_handler). The table is checked
 * when it is built (cric_method_table_build(), at start-up, before the
 * daemon's init): a handler for another service's method, an index out of
 * range, a method listed twice, or (in an internal service) a method with no
 * line is refused, naming the daemon and the method. A line without a
 * handler, and in a CRI service (which several daemons share, cri-gateway's
 * routes.c decides who owns what) a method without a line, answers
 * UNIMPLEMENTED naming the daemon and the method. cric.Health is served by
 * every daemon from ipc_server.c and is never listed.
 */
#pragma once

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "ipc.h"
#include "proto/cri/api.pb-c.h"
#include "proto/cric/health.pb-c.h"
#include "proto/cric/imaged.pb-c.h"
#include "proto/cric/listpage.pb-c.h"
#include "proto/cric/monitord.pb-c.h"
#include "proto/cric/netd.pb-c.h"
#include "proto/cric/runtimed.pb-c.h"
#include "proto/cric/stored.pb-c.h"

struct cric_method_ref {
	const ProtobufCServiceDescriptor *service;
	unsigned index; /* in service->methods */
};

/* Index of `method` (the lower_case member protoc-c generates) in the
 * service whose C type prefix is svc (e.g. Cric__Netd__Netd). */
#define CRIC_METHOD_INDEX(svc, method)                                                             \
	((unsigned)((offsetof(svc##_Service, method) - sizeof(ProtobufCService)) /                 \
		    sizeof(void (*)(void))))
#define CRIC_METHOD_REF(desc, svc, method)                                                         \
	((struct cric_method_ref){ &(desc), CRIC_METHOD_INDEX(svc, method) })

/* One per service in proto/. */
#define CRIC_HEALTH(m) CRIC_METHOD_REF(cric__health__descriptor, Cric__Health, m)
#define CRIC_NETD(m)   CRIC_METHOD_REF(cric__netd__netd__descriptor, Cric__Netd__Netd, m)
#define CRIC_STORED(m) CRIC_METHOD_REF(cric__stored__stored__descriptor, Cric__Stored__Stored, m)
#define CRIC_IMAGED(m) CRIC_METHOD_REF(cric__imaged__imaged__descriptor, Cric__Imaged__Imaged, m)
#define CRIC_MONITORD(m)                                                                           \
	CRIC_METHOD_REF(cric__monitord__monitord__descriptor, Cric__Monitord__Monitord, m)
#define CRIC_RUNTIMED(m)                                                                           \
	CRIC_METHOD_REF(cric__runtimed__runtimed__descriptor, Cric__Runtimed__Runtimed, m)
#define CRI_RUNTIME(m)                                                                             \
	CRIC_METHOD_REF(runtime__v1__runtime_service__descriptor, Runtime__V1__RuntimeService, m)
#define CRI_IMAGE(m)                                                                               \
	CRIC_METHOD_REF(runtime__v1__image_service__descriptor, Runtime__V1__ImageService, m)

/* Every internal service of proto/cric (cric-call serves them all; a pytest
 * checks the list against the .proto files). */
extern const ProtobufCServiceDescriptor *const cric_internal_services[];
extern const size_t cric_n_internal_services;

/* The method's descriptor, or NULL when the ref is out of range. */
const ProtobufCMethodDescriptor *cric_method_desc(struct cric_method_ref m);
/* Write the method's name on the wire into buf. -EINVAL for a ref out of
 * range, -ENAMETOOLONG when it does not fit (or exceeds IPC_METHOD_MAX). */
int cric_method_name(struct cric_method_ref m, char *buf, size_t size);
/* Find a method of svc by its name on the wire; -ENOENT if it has none. */
int cric_method_find(const ProtobufCServiceDescriptor *svc, const char *name,
		     struct cric_method_ref *ret);

/* ---- client ---- */

/* Blocking call of method m on the daemon c talks to. req must be a message
 * of the method's input type: anything else is a bug of the caller, answered
 * CODE_INTERNAL without sending anything. On CODE_OK the answer is unpacked
 * with the method's output type into *out (the caller frees it with
 * protobuf_c_message_free_unpacked); on failure *out is NULL and *message
 * (if message is not NULL) the detail, malloc'd. Returns the code. */
unsigned cric_call(struct cric_client *c, struct cric_method_ref m, const char *request_id,
		   int64_t deadline_ns, const ProtobufCMessage *req, ProtobufCMessage **out,
		   char **message);

/* The deadline of an internal call (and of every blocking wait) made while
 * serving a call: the earlier of the caller's deadline caller_deadline_ns
 * (absolute, 0: none) and now + cap_ms (0: no cap); 0 when neither bounds
 * it. A creation, which keeps going past its caller's deadline so that the
 * caller's retry finds it (runtimed/names.h), passes 0 for the caller's:
 * only the cap bounds it. */
int64_t cric_deadline(int64_t caller_deadline_ns, uint32_t cap_ms);

/* Deadline caps of internal methods whose callers have no deadline of their
 * own: the server's table line (.cap_ms) and its callers use the same one. */
#define HEALTH_CAP_MS          5000             /* a probe: cricctl health */
#define NETD_STATUS_CAP_MS     3000             /* NetworkStatus: Status must stay fast */
#define NETD_CNI_CAP_MS        (5 * 60 * 1000)  /* a CNI chain; netd bounds each plugin run */
#define STORED_IMPORT_CAP_MS   (30 * 60 * 1000) /* a pull's calls: unpacking a big layer */
#define STORED_SYNC_CAP_MS     60000            /* SyncImages at imaged's start */
#define MONITORD_CREATE_CAP_MS (2 * 60 * 1000)  /* CreateMonitor: runc create */
#define MONITORD_CALL_CAP_MS   10000            /* ReopenLog, MonitorStatus */
#define MONITORD_REMOVE_CAP_MS 30000            /* RemoveMonitor: stops the container */
#define RUNTIMED_WATCH_CAP_MS  15000            /* WatchEvents: a long poll */

/* ---- server ---- */

/* The daemons (and root's tools) that may call a method, declared per
 * method and checked by the server on every request before any work: the
 * caller comes from the peer credentials of the socket (peer.h). A call
 * from a caller the line does not name is answered PERMISSION_DENIED and
 * logged with the peer's uid, pid and executable. */
enum cric_caller {
	CALLER_GATEWAY = 1u << 0,
	CALLER_IMAGED = 1u << 1,
	CALLER_STORED = 1u << 2,
	CALLER_NETD = 1u << 3,
	CALLER_RUNTIMED = 1u << 4,
	CALLER_MONITORD = 1u << 5,
	CALLER_ADMIN = 1u << 6,  /* root's tools (cricctl, cric-call), root unidentified */
	CALLER_MEMBER = 1u << 7, /* any other member of group cric */
	CALLER_ANY = (1u << 8) - 1,
};

/* One method a daemon serves. */
struct cric_handler {
	struct cric_method_ref method;
	cric_handler_fn fn; /* NULL: answers UNIMPLEMENTED */
	unsigned callers;   /* enum cric_caller bits; 0: nobody may call it */
	/* The longest the method may take: callers that have no deadline of
	 * their own use it (not enforced by the server yet). 0: the server's
	 * max_request_seconds. */
	uint32_t cap_ms;
	/* Answered on the thread that received the request (one of nng's),
	 * not handed to a worker: saves the worker's wake-up per call. Only
	 * for handlers that never block (no wait for a lock a slow call may
	 * hold, no call to another daemon, no I/O but memory), as they hold
	 * one of nng's few threads while they run. */
	bool nonblocking;
};

struct cric_service {
	const ProtobufCServiceDescriptor *desc;
	const struct cric_handler *handlers;
	size_t n_handlers;
	/* A CRI service, whose methods several daemons share: methods without
	 * a line answer UNIMPLEMENTED. Otherwise every method needs a line. */
	bool partial;
};

/* A method as a server routes it. */
struct cric_route_entry {
	char name[IPC_METHOD_MAX + 1];
	struct cric_method_ref method;
	const ProtobufCMethodDescriptor *md;
	const struct cric_handler *handler; /* NULL: no line (partial service) */
};

struct cric_method_table {
	struct cric_route_entry *entries;
	size_t n;
};

/* Check services (see above) and build the table of every method they
 * declare; daemon names the daemon in messages. On failure err says what
 * is wrong and nothing is allocated. */
int cric_method_table_build(const char *daemon, const struct cric_service *services, size_t n,
			    struct cric_method_table *ret, struct cric_err *err);
const struct cric_route_entry *cric_method_table_find(const struct cric_method_table *t,
						      const char *name);
void cric_method_table_done(struct cric_method_table *t);
