/* Attach to a container's monitor: its output as it comes, its stdin, its
 * terminal's size. The monitor serves it on its control socket
 * (monitor/monitor.h states the protocol and its frames); this is the
 * client the streaming server uses. It needs only the monitor's directory
 * (<monitord run dir>/<container id>): monitord may be down or restarted,
 * the monitor and its attachers are not disturbed.
 *
 * Frames (both ways): one type byte (MONITOR_ATTACH_STDIN/STDOUT/STDERR/
 * RESIZE), the length (4 bytes, big-endian, at most
 * MONITOR_ATTACH_FRAME_MAX), the bytes. The connection closes when the
 * container has exited and its output was sent; closing it detaches.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "monitord/monitor/monitor.h"

/* Connect to <dir>/ctl.sock and attach (with the container's stdin when
 * want_stdin): a blocking stream socket (O_CLOEXEC) carrying frames, or a
 * negative errno with why filled: -ENOENT/-ECONNREFUSED (no monitor: the
 * container is not running), -EBUSY (another attacher holds stdin),
 * -EINVAL (no stdin), -EPIPE (stdin closed by stdin_once), -EMFILE (too
 * many attachers), -ETIMEDOUT (the monitor did not answer in 5 s),
 * -EPROTO. */
int monitor_attach(const char *dir, bool want_stdin, char *why, size_t why_size);

/* Send one frame (len at most MONITOR_ATTACH_FRAME_MAX): 0 or -errno. */
int monitor_attach_send(int fd, uint8_t type, const void *data, size_t len);
/* A resize frame. */
int monitor_attach_resize(int fd, uint16_t cols, uint16_t rows);

/* Read one frame into buf (MONITOR_ATTACH_FRAME_MAX bytes): 1 with *type
 * and *len, 0 at the end (the container exited, or the monitor dropped us),
 * or -errno (-EPROTO for a frame over the limit). Blocks. */
int monitor_attach_recv(int fd, uint8_t *type, uint8_t *buf, size_t *len);
