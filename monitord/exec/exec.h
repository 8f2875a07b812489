/* What monitord (execsync.c) and its helper cric-exec (cric-exec.c) share;
 * the protocol is described in cric-exec.c. */
#pragma once

#define EXEC_REPORT_FD 3
