/* The two systemd protocols the daemons speak, written here rather than
 * linked from libsystemd: libsystemd brings libgcrypt, liblz4, liblzma,
 * libzstd and libgpg-error along, whose relocated data and touched text cost
 * each daemon about 300 KiB of PSS for two datagram sends.
 *
 * - sd_notify(3)'s: one datagram of "KEY=VALUE\n..." to the AF_UNIX socket
 *   named by $NOTIFY_SOCKET (a path, or an abstract name written "@...").
 * - journald's native protocol (systemd's JOURNAL_NATIVE_PROTOCOL.md): one
 *   datagram per record to /run/systemd/journal/socket, each field
 *   "NAME=value\n", or, when the value holds a newline, "NAME\n", its length
 *   as a little-endian 64-bit integer, the value and "\n".
 *
 * Both are thread-safe and never block (a full socket drops the message).
 */
#pragma once

#include <stddef.h>
#include <sys/uio.h>

#include "macro.h"

/* Tell the service manager state (e.g. "READY=1"); 0 when there is none
 * ($NOTIFY_SOCKET unset) or it took the message, else a negative errno. */
int sd_proto_notify(const char *state);
int sd_proto_notifyf(const char *fmt, ...) _printf_(1, 2);

/* The largest record journal_send() takes (its fields encoded). */
#define SD_PROTO_JOURNAL_MAX (16 * 1024)

/* One journal record of n fields, each iov "NAME=value" (the value may
 * hold newlines); 0 or a negative errno (-E2BIG over SD_PROTO_JOURNAL_MAX,
 * -EINVAL for a field without '='). socket_path NULL: journald's. */
int sd_proto_journal_send(const struct iovec *iov, size_t n, const char *socket_path);
