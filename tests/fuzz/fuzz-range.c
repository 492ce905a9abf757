/*
 * libFuzzer target for the artifact download's Range parser
 * (api_artifact_range_parse, src/master/api-artifacts.c).  The input's first
 * 8 bytes give the file size (little-endian, masked to 40 bits), the rest
 * is the header value.  A satisfiable range always lies inside the file
 * and is never empty; an unsatisfiable one is only said of a range that
 * could not be served.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "master/api-int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 8)
		return 0;
	uint64_t fsz = 0;
	for (int i = 7; i >= 0; i--)
		fsz = (fsz << 8) | data[i];
	int64_t fs = (int64_t)(fsz & ((1ull << 40) - 1));
	char *h = malloc(size - 8 + 1);
	if (!h)
		abort();
	memcpy(h, data + 8, size - 8);
	h[size - 8] = 0;
	int64_t first = -7, last = -7;
	int r = api_artifact_range_parse(h, fs, &first, &last);
	if (r == 1 && !(first >= 0 && first <= last && last < fs))
		abort();
	if (r == 0 && (first != -7 || last != -7))
		abort(); /* nothing written when the whole file is sent */
	if (r < 0 && (r != -ERANGE || strncmp(h, "bytes=", 6)))
		abort();
	if (r > 1)
		abort();
	free(h);
	return 0;
}
