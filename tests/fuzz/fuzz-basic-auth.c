/*
 * libFuzzer target for the worker listener's Authorization header parser
 * (http_basic_parse in src/master/http.c): whatever the header, the result
 * is one of the three documented ones, and accepted credentials are the
 * NUL-free "name:password" they decode to, inside the output buffer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "master/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_parse(const char *hdr, size_t outlen)
{
	char *out = malloc(outlen ? outlen : 1);
	const char *name = NULL, *pass = NULL;
	int r = http_basic_parse(hdr, out, outlen, &name, &pass);
	if (r != 0 && r != 1 && r != KILN_EPARSE)
		abort();
	if (r == 0) {
		if (name != out || pass < out || pass >= out + outlen)
			abort();
		size_t nl = strlen(name), pl = strlen(pass);
		if (pass != name + nl + 1 || nl + 1 + pl >= outlen || memchr(name, ':', nl))
			abort();
	}
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096)
		return 0;
	char *hdr = malloc(size + 1);
	memcpy(hdr, data, size);
	hdr[size] = '\0';
	fuzz_parse(hdr, 768); /* what the worker listener gives it */
	fuzz_parse(hdr, 4);
	fuzz_parse(hdr, 0);
	free(hdr);
	return 0;
}
