/* Fuzz imaged's reading of what its transport helper sends (imaged/fetchwire.c):
 * the input as a stream of frames, each FETCH_EV_DONE payload through
 * fetch_done_parse(). A frame never reaches past the input or over
 * FETCH_FRAME_MAX; an accepted result has a bounded errno and status and a
 * printable, terminated message; a refused one leaves the output alone. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imaged/fetchwire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;
	for (;;) {
		struct fetch_frame f;
		size_t used = 0;
		int r = fetch_frame_parse(data + off, size - off, &f, &used);
		if (r < 0) {
			if (r != -EBADMSG)
				abort();
			break;
		}
		if (r == 0)
			break;
		if (used != FETCH_FRAME_HDR + (size_t)f.len || f.len > FETCH_FRAME_MAX ||
		    used > size - off || f.data != data + off + FETCH_FRAME_HDR)
			abort();
		if (f.type == FETCH_EV_DONE) {
			struct fetch_done d = { .err = 7, .status = -1 };
			r = fetch_done_parse(f.data, f.len, &d);
			if (r == 0) {
				if (d.err > 0 || d.err < -4095 || d.status < 0 || d.status > 999 ||
				    !memchr(d.msg, '\0', sizeof(d.msg)))
					abort();
				for (const char *p = d.msg; *p; p++)
					if (*p < ' ' || *p > '~')
						abort();
			} else if (r != -EBADMSG || d.err != 7 || d.status != -1) {
				abort();
			}
		}
		off += used;
	}
	return 0;
}
