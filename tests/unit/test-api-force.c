/*
 * api-sched.c's api_force_error_fields: the form field a refused force
 * call is about, as the error's data ({"<field>": "<message>"}), mapped
 * back from a typed parameter's label to its name.
 */
#include "master/api-int.h"

#include "config/config.h"

#include "tap.h"

#include <string.h>

static struct config_param params[] = {
	{.type = CONFIG_PARAM_INT,
	 .name = "jobs",
	 .label = "Jobs",
	 .def = "4",
	 .min = 1,
	 .max = 64},
	{.type = CONFIG_PARAM_STRING, .name = "note", .def = ""},
	/* a label that is another parameter's name: the name wins */
	{.type = CONFIG_PARAM_STRING, .name = "x", .label = "note", .def = ""},
	{.type = CONFIG_PARAM_STRING, .name = "y", .label = "Why", .def = ""},
};
static const struct config_scheduler sc = {
	.kind = CONFIG_SCHED_FORCE, .name = "force", .params = params, .nparams = 4};

/* the single key of fields, or NULL */
static const char *only_key(json_t *fields)
{
	if (!json_is_object(fields) || json_object_size(fields) != 1)
		return NULL;
	return json_object_iter_key(json_object_iter(fields));
}

static void check_field(const char *err, const char *want)
{
	json_t *f = api_force_error_fields(&sc, err);
	CHECK_STR(only_key(f), want);
	CHECK_STR(json_string_value(json_object_get(f, want)), err);
	json_decref(f);
}

TEST(label_maps_to_name)
{
	check_field("'Jobs' must be between 1 and 64", "jobs");
	check_field("'Why' needs a value", "y");
}

TEST(names_kept)
{
	check_field("'note' needs a value", "note"); /* a name, though also x's label */
	check_field("'jobs' must be an integer", "jobs");
	check_field("'branch' must look like a ref name or revision", "branch");
	check_field("'codebase_revision' contains control characters", "codebase_revision");
}

TEST(no_field)
{
	CHECK(api_force_error_fields(&sc, NULL) == NULL);
	CHECK(api_force_error_fields(&sc, "") == NULL);
	CHECK(api_force_error_fields(&sc, "the properties are larger than 65536 bytes") == NULL);
	CHECK(api_force_error_fields(&sc, "'' is empty") == NULL);
	CHECK(api_force_error_fields(&sc, "'unterminated") == NULL);
	CHECK(api_force_error_fields(&sc, "'\xff\xfe' is not UTF-8") == NULL);
	/* without a scheduler the quoted name is kept as it is */
	json_t *f = api_force_error_fields(NULL, "'Jobs' must be between 1 and 64");
	CHECK_STR(only_key(f), "Jobs");
	json_decref(f);
}

int main(void)
{
	RUN(label_maps_to_name);
	RUN(names_kept);
	RUN(no_field);
	return tap_done();
}
