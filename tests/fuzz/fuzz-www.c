/*
 * libFuzzer target for the web UI's request-header parsers (src/master/www.c):
 * www_accepts_gzip() over the whole input and www_etag_matches() of the
 * input against the ETag of each embedded asset, plus www_asset_find() on
 * the input as a path.  Invariants: an If-None-Match value that is exactly
 * the quoted ETag always matches, and a found asset is index.html or the
 * asset of that exact path.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "master/www.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = 0;

	(void)www_accepts_gzip(s);
	size_t n;
	const struct www_asset *t = www_asset_table(&n);
	for (size_t i = 0; i < n; i++) {
		(void)www_etag_matches(s, t[i].etag);
		if (!www_etag_matches(t[i].etag, t[i].etag))
			abort();
	}
	const struct www_asset *a = www_asset_find(s);
	if (a && a != &t[0] && strcmp(a->path, s))
		abort();
	free(s);
	return 0;
}
