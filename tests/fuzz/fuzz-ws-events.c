/*
 * libFuzzer target for what a browser sends on /ws (src/master/events.c):
 * each input line is one text frame applied to the same subscription, so
 * startConsuming/stopConsuming sequences build real state.  Every frame gets
 * a JSON object reply with an "_id", and the subscriptions stay capped.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/limits.h"
#include "master/events.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_frame(struct events_sub *s, const char *text, size_t len)
{
	char *out = events_sub_reply(s, text, len);
	if (!out)
		abort(); /* every reply must encode */
	json_error_t e;
	json_t *reply = json_loads(out, 0, &e);
	if (!json_is_object(reply) || !json_object_get(reply, "_id"))
		abort();
	json_t *code = json_object_get(reply, "code");
	if (!json_is_integer(code))
		abort();
	if (json_integer_value(code) != 200 && !json_is_string(json_object_get(reply, "error")))
		abort();
	json_decref(reply);
	free(out);
	if (events_sub_npaths(s) > KILN_MAX_WS_SUBSCRIPTIONS)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct events_sub *s = events_sub_new(NULL, NULL);
	const char *p = (const char *)data, *end = p + size;

	fuzz_frame(s, p, size); /* the whole input as one frame */
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;
		fuzz_frame(s, p, (size_t)(eol - p));
		p = nl ? nl + 1 : end;
	}
	events_sub_free(s);
	return 0;
}
