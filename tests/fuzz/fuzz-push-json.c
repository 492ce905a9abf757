/*
 * libFuzzer target for pushed result bags (src/master/push-bag.c, slice
 * "push"): the input as a whole bag and as the body of an append.  A bag
 * is either refused with 400 or 413 and a one-line UTF-8 reason, with nothing
 * kept, or accepted within the caps with every field checked.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "db/db.h"
#include "master/push-bag.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_bag(const char *text, size_t size, bool steps_only)
{
	static const struct push_limits lim = {.max_steps = 8, .max_log_bytes = 256};
	struct push_bag b;
	char why[256];
	why[0] = '\0';
	int r = push_bag_parse(text, size, &lim, steps_only, &b, why, sizeof(why));
	if (r) {
		if ((r != PUSH_BAD && r != PUSH_TOO_BIG) || !why[0] || strchr(why, '\n') ||
		    b.package || b.steps || b.client)
			abort();
		/* the reason goes into a JSON reply: valid UTF-8 */
		json_t *j = json_string(why);
		if (!j)
			abort();
		json_decref(j);
		return;
	}
	if (b.nsteps > lim.max_steps || (!steps_only && (!b.package || !b.host || !b.client)))
		abort();
	for (size_t i = 0; i < b.nsteps; i++) {
		const struct push_step *s = &b.steps[i];
		if (!s->name || !*s->name || s->results < RESULTS_SUCCESS ||
		    s->results > RESULTS_CANCELLED || s->out_len > lim.max_log_bytes ||
		    s->err_len > lim.max_log_bytes)
			abort();
	}
	push_bag_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_bag((const char *)data, size, false);
	fuzz_bag((const char *)data, size, true);
	return 0;
}
