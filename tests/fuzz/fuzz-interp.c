/*
 * libFuzzer target for the Interpolate renderer (src/master/interp.c): the
 * input is a template rendered against a fixed set of values (every kind,
 * a secret, nested and odd JSON values).  Whatever the template, the result
 * is success with output within KILN_INTERP_MAX_OUT, or a documented error
 * with a message; the syntax check agrees with the renderer on syntax.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/interp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static json_t *fuzz_values;

static int fuzz_get(void *ud, enum interp_kind kind, const char *a, const char *b, json_t **ret)
{
	(void)ud;
	static const char *const kinds[] = {"prop", "src", "kw", "worker", "secret"};
	json_t *v = json_object_get(json_object_get(fuzz_values, kinds[kind]), a);
	if (kind == INTERP_SRC)
		v = b ? json_object_get(v, b) : NULL;
	if (!v)
		return !strcmp(a, "fail") ? -EIO : INTERP_MISSING;
	*ret = json_incref(v);
	return INTERP_FOUND;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536)
		return 0;
	if (!fuzz_values) {
		fuzz_values = json_loads(
			"{\"prop\": {\"a\": \"x\", \"e\": \"\", \"n\": null, \"z\": 0, \"f\": "
			"1.5e300,"
			" \"l\": [1, \"q'\\\"\", null, {\"k\": [true]}], \"big\": \"" /* */
			"0123456789012345678901234567890123456789012345678901234567890123\"},"
			" \"src\": {\"\": {\"revision\": \"abc\"}, \"lib\": {\"branch\": null}},"
			" \"kw\": {\"k\": false}, \"worker\": {\"os\": \"linux\"},"
			" \"secret\": {\"tok\": \"p4ss\"}}",
			0, NULL);
		if (!fuzz_values)
			abort();
	}
	const char *t = (const char *)data;
	struct interp_lookup lk = {fuzz_get, NULL};
	for (unsigned flags = 0; flags <= INTERP_STRICT; flags++) {
		char *out = NULL, *err = NULL;
		size_t len = 0;
		int r = interp_render(t, size, &lk, flags, &out, &len, &err);
		if (r == 0) {
			if (!out || len > KILN_INTERP_MAX_OUT || out[len] != '\0' || err)
				abort();
			free(out);
		} else {
			if (out || !err || !*err)
				abort();
			if (r != KILN_EPARSE && r != KILN_ENOTFOUND && r != KILN_ETOOBIG &&
			    r != -EIO)
				abort();
			free(err);
		}
		/* the check walks every branch: what it accepts has no syntax
		 * error, and it accepts whatever rendered */
		err = NULL;
		int c = interp_check(t, size, &err);
		if ((r == 0 && c != 0) || (c == 0 && r == KILN_EPARSE) || (c < 0) != (err != NULL))
			abort();
		free(err);
	}
	return 0;
}
