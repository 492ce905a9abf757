/*
 * libFuzzer target for the master's own WebSocket frame reader
 * (src/master/wsbulk.c): the input, cut into pieces whose sizes come from
 * its first byte, is parsed as a worker's byte stream into a 64 KiB-capped
 * message buffer; every event must leave the parser's state consistent
 * (a control payload within 125 bytes, a message within the cap, parsing
 * stopped after an error); an odd first byte also has the payloads
 * received straight into the message buffer (wsbulk_direct_room), as
 * http-ws.c does.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "master/wsbulk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t step = 1 + data[0] * 97u; /* 1 .. 24736 bytes per read */
	data++;
	size--;
	struct wsbulk p;
	wsbulk_init(&p);
	struct buf msg;
	buf_init(&msg, 64 << 10);
	size_t off = 0;
	while (off < size) {
		size_t k = size - off < step ? size - off : step;
		const unsigned char *in = data + off;
		size_t direct = (data[-1] & 1) ? wsbulk_direct_room(&p, &msg) : 0;
		if (direct) {
			/* an odd first byte: reads as http-ws.c does them, the
			 * payload straight into the message buffer */
			if (direct > k)
				direct = k;
			if (msg.len + direct >= msg.cap)
				abort(); /* no room was made for it */
			memcpy(msg.ptr + msg.len, in, direct);
			enum wsbulk_event ev = wsbulk_direct_done(&p, &msg, direct);
			if (ev != WSBULK_MORE && ev != WSBULK_MESSAGE)
				abort();
			if (ev == WSBULK_MESSAGE)
				buf_reset(&msg);
			in += direct;
			k -= direct;
			off += direct;
		}
		while (k) {
			enum wsbulk_event ev;
			size_t used = wsbulk_parse(&p, in, k, &msg, &ev);
			if (used > k || p.ctl_len > WSBULK_CTL_MAX || msg.len > msg.max)
				abort();
			if (used == 0 && ev == WSBULK_MORE)
				abort(); /* no progress */
			in += used;
			k -= used;
			off += used;
			if (ev == WSBULK_MESSAGE)
				buf_reset(&msg);
			if (ev == WSBULK_ERROR || ev == WSBULK_TOOBIG) {
				if (!p.dead || !p.why)
					abort();
				buf_release(&msg);
				return 0;
			}
		}
	}
	buf_release(&msg);
	return 0;
}
