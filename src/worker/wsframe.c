/* RFC 6455 client frames (wsframe.h). */
#include "worker/wsframe.h"

#include <string.h>

#define WSFRAME_FIN_BINARY 0x82 /* FIN, opcode 2 */
#define WSFRAME_MASKED 0x80

size_t wsframe_header_len(uint64_t len)
{
	if (len < 126)
		return 2 + 4;
	if (len < 65536)
		return 4 + 4;
	return 10 + 4;
}

size_t wsframe_header(unsigned char *out, uint64_t len, const unsigned char key[4])
{
	size_t n = 2;
	out[0] = WSFRAME_FIN_BINARY;
	if (len < 126) {
		out[1] = (unsigned char)(WSFRAME_MASKED | len);
	} else if (len < 65536) {
		out[1] = WSFRAME_MASKED | 126;
		out[2] = (unsigned char)(len >> 8);
		out[3] = (unsigned char)len;
		n = 4;
	} else {
		out[1] = WSFRAME_MASKED | 127;
		for (int i = 0; i < 8; i++)
			out[2 + i] = (unsigned char)(len >> (56 - 8 * i));
		n = 10;
	}
	memcpy(out + n, key, 4);
	return n + 4;
}

void wsframe_mask(unsigned char *p, size_t len, const unsigned char key[4])
{
	if (!(key[0] | key[1] | key[2] | key[3]))
		return; /* XOR with zeros */
	unsigned char k8[8];
	memcpy(k8, key, 4);
	memcpy(k8 + 4, key, 4);
	uint64_t k;
	memcpy(&k, k8, 8); /* the key twice, in memory order: byte i meets key[i % 4] */
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		uint64_t v;
		memcpy(&v, p + i, 8);
		v ^= k;
		memcpy(p + i, &v, 8);
	}
	for (; i < len; i++)
		p[i] ^= key[i & 3];
}
