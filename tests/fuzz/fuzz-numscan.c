/*
 * libFuzzer target for numbers over a step's stdout (src/master/numscan.c):
 * the input is "REGEX \0 OUTPUT".  A regex that compiles scans the output
 * whole and again in pieces cut where the input says: both scans must find
 * the same value; a value found is at most KILN_NUMSCAN_MAX_VALUE bytes, and
 * numscan_parse() of it (and of the whole output) never gives a NaN or an
 * infinity.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "master/numscan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct numscan *fuzz_numscan_run(const char *re, const char *out, size_t len,
					const uint8_t *cuts, size_t ncuts)
{
	struct numscan *s = NULL;
	char *err = NULL;
	if (numscan_new(&re, 1, &s, &err) < 0) {
		if (!err)
			abort(); /* a failure says why */
		free(err);
		return NULL;
	}
	size_t i = 0, k = 0;
	while (i < len) {
		size_t n = ncuts ? 1 + (size_t)cuts[k++ % ncuts] % 64 : len;
		if (n > len - i)
			n = len - i;
		numscan_feed(s, out + i, n);
		i += n;
	}
	numscan_finish(s);
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	const char *nul = memchr(text, '\0', size);
	if (!nul)
		return 0;
	char *re = strndup(text, (size_t)(nul - text));
	if (!re)
		abort();
	const char *out = nul + 1;
	size_t olen = size - (size_t)(out - text);
	double v;
	if (numscan_parse(out, olen, &v) == 0 && !isfinite(v))
		abort();
	struct numscan *a = fuzz_numscan_run(re, out, olen, NULL, 0);
	struct numscan *b = fuzz_numscan_run(re, out, olen, data, size);
	if (!a != !b)
		abort();
	if (a) {
		const char *va = NULL, *vb = NULL;
		size_t la = 0, lb = 0;
		int ra = numscan_value(a, 0, &va, &la), rb = numscan_value(b, 0, &vb, &lb);
		if (ra != rb || (ra > 0 && (la != lb || memcmp(va, vb, la))))
			abort();
		if (ra > 0 && la > KILN_NUMSCAN_MAX_VALUE)
			abort();
		if (ra > 0 && numscan_parse(va, la, &v) == 0 && !isfinite(v))
			abort();
	}
	numscan_free(a);
	numscan_free(b);
	free(re);
	return 0;
}
