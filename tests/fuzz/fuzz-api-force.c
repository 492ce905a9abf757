/*
 * libFuzzer target for api_force_error_fields (src/master/api-sched.c):
 * the field a force validation message names, read from the message (which
 * quotes values a caller sent).  Invariants: the answer is NULL or an
 * object of exactly one key whose value is the whole message, and the key
 * is a quoted prefix of the message or a typed parameter's name.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "master/api-int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct config_param fuzz_params[] = {
	{.type = CONFIG_PARAM_INT, .name = "jobs", .label = "Jobs", .def = "1", .min = 1, .max = 9},
	{.type = CONFIG_PARAM_STRING, .name = "note", .def = ""},
};
static const struct config_scheduler fuzz_sc = {
	.kind = CONFIG_SCHED_FORCE, .name = "f", .params = fuzz_params, .nparams = 2};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = 0;
	json_t *f = api_force_error_fields(&fuzz_sc, s);
	if (f) {
		if (!json_is_object(f) || json_object_size(f) != 1)
			abort();
		const char *key = json_object_iter_key(json_object_iter(f));
		json_t *v = json_object_iter_value(json_object_iter(f));
		if (strcmp(json_string_value(v), s))
			abort();
		size_t n = strlen(key);
		bool quoted = s[0] == '\'' && !strncmp(s + 1, key, n) && s[1 + n] == '\'';
		if (!quoted && strcmp(key, "jobs"))
			abort();
		json_decref(f);
	}
	free(s);
	return 0;
}
