/*
 * libFuzzer target for the Bazaar/Breezy poller's parser
 * (poller_bzr_parse_log, src/master/changes/poller-bzr.c): any bytes as
 * `brz log --long -v -n1` output, which carries commit messages and file
 * names an author chose.  Parsing ends in changes or -EINVAL; every change
 * has a revision, an author and comments, and no file is listed twice.
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
	if (poller_bzr_parse_log((const char *)data, size, &v, &n) < 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (!v[i].revision || !*v[i].revision || !v[i].author || !v[i].comments)
			abort();
		for (size_t a = 0; a < v[i].nfiles; a++)
			for (size_t b = a + 1; b < v[i].nfiles && b < a + 64; b++)
				if (!strcmp(v[i].files[a], v[i].files[b]))
					abort();
	}
	change_list_free(v, n);
	return 0;
}
