/* cricctl's pieces: the CRI call plumbing (cricctl.c) and the image and
 * container commands (cricctl-ctr.c). */
#pragma once

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/config.h"

struct ctl {
	grpc_channel *ch;
	grpc_completion_queue *cq;
	int timeout_s;
	const char *socket; /* the CRI socket path called */
	const struct cric_config *cfg;
};

/* One unary call on the CRI socket (path "/runtime.v1.<Service>/<Method>").
 * Returns the gRPC status; *out set on OK; msg holds the error text. */
unsigned cri_call(struct ctl *c, const char *path, const ProtobufCMessage *req,
		  const ProtobufCMessageDescriptor *out_desc, ProtobufCMessage **out, char *msg,
		  size_t msglen);
/* "cricctl: <what>: <CODE>: <msg>" on stderr (with a hint when nothing
 * answers the socket); returns 1, the exit status. */
int ctl_fail(struct ctl *c, const char *what, unsigned code, const char *msg);

/* cricctl-ctr.c: n arguments after the command's name; the exit status. */
int cmd_pull(struct ctl *c, int n, char **args);
int cmd_images(struct ctl *c, int n, char **args);
int cmd_rmi(struct ctl *c, int n, char **args);
int cmd_ps(struct ctl *c, int n, char **args);
int cmd_create(struct ctl *c, int n, char **args);
int cmd_start(struct ctl *c, int n, char **args);
int cmd_stop(struct ctl *c, int n, char **args);
int cmd_rm(struct ctl *c, int n, char **args);
int cmd_logs(struct ctl *c, int n, char **args);
int cmd_exec(struct ctl *c, int n, char **args);
int cmd_call(struct ctl *c, int n, char **args);
/* cricctl-ops.c */
int cmd_events(struct ctl *c, int n, char **args);
int cmd_inspect(struct ctl *c, int n, char **args);
