/* An HTTP listener whose server starts at its first connection.
 *
 * The socket is bound and listening from the start (with the daemon's
 * privileges; the port is known and logged; connections wait in its
 * backlog). A thread that dropped every capability waits for the first
 * connection, then calls start(ud, fd) and ends: start loads the HTTP
 * library (mhd-dl.h) and starts its server on fd, which then owns fd and
 * whose threads inherit no capability. A monitord nobody streams from or
 * scrapes never maps libmicrohttpd. With now, start runs at once and
 * lazy_http_open() returns its result (a TLS server: a wrong key is
 * reported when monitord starts, not at the first exec).
 *
 * If start fails at a first connection, that is logged and fd closed:
 * clients are refused, monitord goes on. */
#pragma once

#include <stdbool.h>

#include "common/error.h"

/* Runs on the listener's thread (no capabilities): 0 when a server now
 * owns fd; else a negative errno, err filled, fd left to the caller. */
typedef int (*lazy_http_start_fn)(void *ud, int fd, struct cric_err *err);

struct lazy_http;

/* Takes fd (a listening socket) in every case. what names the endpoint in
 * logs ("streaming server"). */
int lazy_http_open(int fd, const char *what, bool now, lazy_http_start_fn start, void *ud,
		   struct lazy_http **ret, struct cric_err *err);
/* Stops the wait: afterwards start has returned or never will run. Closes
 * fd unless a server owns it (stopping that server is the caller's, after
 * this). Accepts NULL. */
void lazy_http_free(struct lazy_http *l);
/* The listening socket's port (bound to port 0: the kernel's choice). */
int lazy_http_port(int fd);
