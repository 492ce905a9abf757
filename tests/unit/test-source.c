/*
 * What the source steps share that needs no worker (steps/source.c):
 * got_revision merged per codebase as Buildbot's updateSourceProperty
 * does (and rendered as %(prop:got_revision)s shows it), steps with and
 * without a codebase in one build (kept under the key ""), and the
 * revision-number check of svn and bzr.  The checkouts themselves are
 * tested end to end (t079x, t0850).
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/buf.h"
#include "common/interp.h"
#include "common/xalloc.h"
#include "master/steps/step.h"
#include "tap.h"

/* Python's str() of v, as %(prop:got_revision)s renders it (owned). */
static char *py_str(const json_t *v)
{
	struct buf b;
	buf_init(&b, 4096);
	if (interp_py_str(&b, v) < 0) {
		buf_release(&b);
		return xstrdup("(error)");
	}
	return buf_detach(&b, NULL);
}

TEST(no_codebase_sets_a_string)
{
	json_t *v = source_revision_merge(NULL, "", "abc123xyz", 6);
	CHECK(json_is_string(v));
	CHECK_STR(json_string_value(v), "abc123");
	/* a later step without a codebase replaces it */
	json_t *w = source_revision_merge(v, "", "def456", 6);
	CHECK_STR(json_string_value(w), "def456");
	json_decref(v);
	json_decref(w);
}

TEST(codebases_merge_in_step_order)
{
	json_t *a = source_revision_merge(NULL, "app", "a1", 2);
	CHECK(json_is_object(a));
	CHECK_INT(json_object_size(a), 1);
	json_t *b = source_revision_merge(a, "lib", "l1", 2);
	CHECK_INT(json_object_size(b), 2);
	CHECK_STR(json_string_value(json_object_get(b, "app")), "a1");
	CHECK_STR(json_string_value(json_object_get(b, "lib")), "l1");
	/* the old value is not changed: it is a copy that grows */
	CHECK_INT(json_object_size(a), 1);
	char *text = py_str(b);
	CHECK_STR(text, "{'app': 'a1', 'lib': 'l1'}");
	free(text);
	/* the same codebase again (a second step of it): its entry is replaced */
	json_t *c = source_revision_merge(b, "app", "a2", 2);
	text = py_str(c);
	CHECK_STR(text, "{'app': 'a2', 'lib': 'l1'}");
	free(text);
	json_decref(a);
	json_decref(b);
	json_decref(c);
}

/* Buildbot asserts here; Kiln keeps both under the key "" */
TEST(with_and_without_codebase)
{
	json_t *s = json_string("abc");
	json_t *d = source_revision_merge(s, "lib", "l1", 2);
	char *text = py_str(d);
	CHECK_STR(text, "{'': 'abc', 'lib': 'l1'}");
	free(text);
	json_t *e = source_revision_merge(d, "", "x", 1);
	text = py_str(e);
	CHECK_STR(text, "{'': 'x', 'lib': 'l1'}");
	free(text);
	/* a user's property of that name that is neither: replaced */
	json_t *n = json_integer(5);
	json_t *r = source_revision_merge(n, "lib", "l1", 2);
	text = py_str(r);
	CHECK_STR(text, "{'lib': 'l1'}");
	free(text);
	json_decref(r);
	r = source_revision_merge(n, "", "x", 1);
	CHECK_STR(json_string_value(r), "x");
	json_decref(r);
	json_decref(n);
	json_decref(s);
	json_decref(d);
	json_decref(e);
}

TEST(revno)
{
	CHECK(source_revno_ok("1", 1));
	CHECK(source_revno_ok("12345678901234567890", 20));
	CHECK(!source_revno_ok("123456789012345678901", 21));
	CHECK(!source_revno_ok("", 0));
	CHECK(!source_revno_ok("12a", 3));
	CHECK(!source_revno_ok("-1", 2));
	CHECK(!source_revno_ok("1 2", 3));
}

int main(void)
{
	RUN(no_codebase_sets_a_string);
	RUN(codebases_merge_in_step_order);
	RUN(with_and_without_codebase);
	RUN(revno);
	return tap_done();
}
