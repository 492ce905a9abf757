/*
 * libFuzzer target for the Darcs poller's parser (poller_darcs_parse_log,
 * src/master/changes/poller-darcs.c): any bytes as `darcs log --xml-output
 * --summary` output, whose patch names, comments, authors and file names
 * an author chose (darcs writes control characters raw).  Parsing ends in
 * changes or -EINVAL; every change has a hexadecimal hash as revision and
 * comments.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "master/changes/change.h"
#include "master/changes/poller.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct change *v = NULL;
	size_t n = 0;
	if (poller_darcs_parse_log((const char *)data, size, &v, &n) < 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (!v[i].revision ||
		    strspn(v[i].revision, "0123456789abcdef") != strlen(v[i].revision))
			abort();
		if (!v[i].comments || !v[i].author)
			abort();
	}
	change_list_free(v, n);
	return 0;
}
