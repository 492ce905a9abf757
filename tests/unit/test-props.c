/*
 * Unit tests for src/master/props.c: set/get/replace, insertion order,
 * layering, Buildbot's API shape, and the caps.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/xalloc.h"
#include "master/props.h"
#include "tap.h"

static char *dump(json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(v);
	return s;
}

TEST(set_get_replace)
{
	struct props *p = props_new();
	CHECK_INT(props_count(p), 0);
	CHECK(props_get(p, "x", NULL) == NULL);
	CHECK(!props_has(p, "x"));
	CHECK_INT(props_set(p, "buildername", json_string("b1"), "Builder"), 0);
	CHECK_INT(props_set(p, "buildnumber", json_integer(7), "Build"), 0);
	CHECK_INT(props_set(p, "n", json_null(), "Step"), 0);
	const char *src = NULL;
	json_t *v = props_get(p, "buildnumber", &src);
	CHECK(json_integer_value(v) == 7);
	CHECK_STR(src, "Build");
	CHECK(props_has(p, "n"));
	CHECK(json_is_null(props_get(p, "n", NULL)));
	/* a later layer replaces value and source, keeping the first position */
	CHECK_INT(props_set(p, "buildername", json_pack("[i,s]", 1, "a"), "Force Build Form"), 0);
	v = props_get(p, "buildername", &src);
	CHECK_STR(src, "Force Build Form");
	CHECK(json_is_array(v));
	CHECK_INT(props_count(p), 3);
	char *s = dump(props_to_api_json(p));
	CHECK_STR(s, "{\"buildername\":[[1,\"a\"],\"Force Build Form\"],"
		     "\"buildnumber\":[7,\"Build\"],\"n\":[null,\"Step\"]}");
	free(s);
	props_free(p);
	props_free(NULL);
}

TEST(api_json_is_a_copy)
{
	struct props *p = props_new();
	CHECK_INT(props_set(p, "l", json_pack("[s]", "a"), "Step"), 0);
	json_t *api = props_to_api_json(p);
	json_array_append_new(json_array_get(json_object_get(api, "l"), 0), json_integer(1));
	json_object_set_new(api, "x", json_null());
	json_decref(api);
	char *s = dump(props_to_api_json(p));
	CHECK_STR(s, "{\"l\":[[\"a\"],\"Step\"]}");
	free(s);
	props_free(p);
}

static int collect(void *ud, const char *name, json_t *value, const char *source)
{
	char **acc = ud;
	char *v = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
	char *n = xasprintf("%s%s=%s(%s);", *acc, name, v, source);
	free(v);
	free(*acc);
	*acc = n;
	return !strcmp(name, "stop") ? -EINTR : 0;
}

TEST(foreach_and_update)
{
	struct props *base = props_new(), *layer = props_new();
	CHECK_INT(props_set(base, "a", json_integer(1), "Builder"), 0);
	CHECK_INT(props_set(base, "b", json_true(), "Builder"), 0);
	CHECK_INT(props_set(layer, "b", json_false(), "Scheduler"), 0);
	CHECK_INT(props_set(layer, "c", json_real(0.5), "Scheduler"), 0);
	CHECK_INT(props_update(base, layer), 0);
	CHECK_INT(props_update(base, base), 0);
	char *acc = xstrdup("");
	CHECK_INT(props_foreach(base, collect, &acc), 0);
	CHECK_STR(acc, "a=1(Builder);b=false(Scheduler);c=0.5(Scheduler);");
	free(acc);
	/* layer is unchanged, and its values are shared safely */
	CHECK_INT(props_count(layer), 2);
	props_free(layer);
	CHECK(json_is_false(props_get(base, "b", NULL)));
	/* fn's error stops the walk */
	CHECK_INT(props_set(base, "stop", json_null(), "x"), 0);
	CHECK_INT(props_set(base, "after", json_null(), "x"), 0);
	acc = xstrdup("");
	CHECK_INT(props_foreach(base, collect, &acc), -EINTR);
	CHECK(strstr(acc, "after") == NULL);
	free(acc);
	props_free(base);
}

TEST(bad_input_and_caps)
{
	struct props *p = props_new();
	CHECK_INT(props_set(p, "x", NULL, "s"), -EINVAL);
	CHECK_INT(props_set(p, "", json_null(), "s"), -EINVAL);
	CHECK_INT(props_set(p, "x", json_null(), NULL), -EINVAL);
	CHECK_INT(props_set(p, "bad\xff", json_null(), "s"), -EINVAL);
	CHECK_INT(props_set(p, "x", json_null(), "bad\xff"), -EINVAL);
	char *name = xmalloc(KILN_PROPS_MAX_NAME + 2);
	memset(name, 'n', KILN_PROPS_MAX_NAME + 1);
	name[KILN_PROPS_MAX_NAME + 1] = '\0';
	CHECK_INT(props_set(p, name, json_null(), "s"), KILN_ETOOBIG);
	CHECK_INT(props_set(p, "x", json_null(), name), KILN_ETOOBIG);
	name[KILN_PROPS_MAX_NAME] = '\0';
	CHECK_INT(props_set(p, name, json_null(), name), 0);
	free(name);
	/* a value over KILN_PROPS_MAX_VALUE as compact JSON ("..." counts 2) */
	char *big = xmalloc(KILN_PROPS_MAX_VALUE + 1);
	memset(big, 'v', KILN_PROPS_MAX_VALUE);
	big[KILN_PROPS_MAX_VALUE - 2] = '\0';
	CHECK_INT(props_set(p, "big", json_string(big), "s"), 0);
	big[KILN_PROPS_MAX_VALUE - 2] = 'v';
	big[KILN_PROPS_MAX_VALUE - 1] = '\0';
	CHECK_INT(props_set(p, "big", json_string(big), "s"), KILN_ETOOBIG);
	free(big);
	CHECK_INT(props_count(p), 2);
	/* KILN_PROPS_MAX names, then only replacing works */
	for (int i = (int)props_count(p); i < KILN_PROPS_MAX; i++) {
		char n[32];
		snprintf(n, sizeof(n), "p%d", i);
		if (props_set(p, n, json_integer(i), "s") != 0)
			TAP_FAIL("property %d refused", i);
	}
	CHECK_INT(props_set(p, "one-more", json_null(), "s"), KILN_ETOOBIG);
	CHECK_INT(props_set(p, "big", json_null(), "s"), 0);
	CHECK_INT(props_count(p), KILN_PROPS_MAX);
	props_free(p);
}

int main(void)
{
	RUN(set_get_replace);
	RUN(api_json_is_a_copy);
	RUN(foreach_and_update);
	RUN(bad_input_and_caps);
	return tap_done();
}
