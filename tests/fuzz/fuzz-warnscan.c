/*
 * libFuzzer target for warning counting (src/master/warnscan.c): the input
 * is "SUPPRESSION FILE \0 OUTPUT".  The suppression file is parsed (a
 * failure must say why), the output scanned with the default patterns
 * whole and again in pieces cut where the input says: both scans must
 * agree (count and log), and the log holds one line per stored warning.
 * The output's first line is also tried as a set_property_from_command
 * pattern over the rest.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "master/warnscan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_warnscan_cb(void *ud, const char *name, const char *value, size_t len)
{
	if (!value || (name && !*name))
		abort();
	*(size_t *)ud += len;
}

static struct warnscan *fuzz_warnscan_run(const struct warnscan_config *c, const char *out,
					  size_t len, const uint8_t *cuts, size_t ncuts)
{
	struct warnscan *s = warnscan_new(c);
	size_t i = 0, k = 0;
	while (i < len) {
		size_t n = ncuts ? 1 + (size_t)cuts[k++ % ncuts] % 64 : len;
		if (n > len - i)
			n = len - i;
		(void)warnscan_feed(s, 'o', out + i, n);
		i += n;
	}
	(void)warnscan_finish(s);
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	const char *nul = memchr(text, '\0', size);
	size_t slen = nul ? (size_t)(nul - text) : 0;
	const char *out = nul ? nul + 1 : text;
	size_t olen = size - (size_t)(out - text);

	struct warnscan_config *c = NULL;
	char *err = NULL;
	if (warnscan_config_new(NULL, 0, &c, &err) < 0)
		abort();
	if (slen && warnscan_config_parse_suppressions(c, text, slen, &err) < 0) {
		if (!err || !*err)
			abort();
		free(err);
		err = NULL;
	}
	struct warnscan *whole = fuzz_warnscan_run(c, out, olen, NULL, 0);
	struct warnscan *cut = fuzz_warnscan_run(c, out, olen, data, size < 32 ? size : 32);
	size_t l1, l2;
	const char *log1 = warnscan_log(whole, &l1);
	const char *log2 = warnscan_log(cut, &l2);
	if (warnscan_count(whole) != warnscan_count(cut) || l1 != l2 || memcmp(log1, log2, l1))
		abort();
	size_t lines = 0;
	for (size_t i = 0; i < l1; i++)
		lines += log1[i] == '\n';
	if (lines != warnscan_count(whole) && !strstr(log1, "[kiln: warnings log cut"))
		abort();
	warnscan_free(whole);
	warnscan_free(cut);
	warnscan_config_free(c);

	const char *nl = memchr(out, '\n', olen);
	if (nl && (size_t)(nl - out) < 256) {
		char re[256];
		memcpy(re, out, (size_t)(nl - out));
		re[nl - out] = '\0';
		size_t got = 0;
		int r = warnscan_extract(re, nl + 1, olen - (size_t)(nl + 1 - out),
					 fuzz_warnscan_cb, &got, &err);
		if (r < 0 && (!err || !*err))
			abort();
		free(err);
	}
	return 0;
}
