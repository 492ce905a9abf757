/*
 * Generations and differences (src/config/config-fp.c; slice "reconfig"):
 * the fingerprints of declarations, config_diff() and the references.
 */
#include "tap.h"
#include "config-test.h"
#include "config/config.h"

#include <stdint.h>
#include <stdlib.h>

#define W1 "worker { name = \"w1\", password = secret(\"pw\") }\n"
#define W2 "worker { name = \"w2\", password = secret(\"pw\") }\n"
#define B(name, cmd)                                                                               \
	"builder { name = \"" name "\", workers = { \"w1\" }, steps = { shell { command = \"" cmd  \
	"\" } } }\n"
#define F "force_scheduler { name = \"force\", builders = { \"a\" } }\n"
#define P(period) "periodic { name = \"nightly\", builders = { \"a\" }, period = " period " }\n"

static struct config *load(const char *text)
{
	setenv("KILN_SECRET_PW", "x", 1);
	return CONFIG_TEST_LOAD_OK(text);
}

TEST(same_text_same_fingerprints)
{
	struct config *a = load(W1 B("a", "make") B("b", "make test") F P("60"));
	struct config *b = load(W1 B("a", "make") B("b", "make test") F P("60"));
	if (!a || !b)
		goto out;
	CHECK(a->builder[0].fp != 0);
	CHECK(a->builder[0].fp != a->builder[1].fp);
	CHECK(a->builder[0].fp == b->builder[0].fp);
	CHECK(a->worker[0].fp == b->worker[0].fp);
	CHECK(a->scheduler[1].fp == b->scheduler[1].fp);
	struct config_diff d;
	config_diff(a, b, &d);
	CHECK_INT(d.builders.total, 2);
	CHECK_INT(d.builders.added + d.builders.removed + d.builders.changed, 0);
	CHECK_INT(d.workers.added + d.workers.removed + d.workers.changed, 0);
	CHECK_INT(d.schedulers.added + d.schedulers.removed + d.schedulers.changed, 0);
	CHECK(!d.locks_changed);
out:
	config_free(a);
	config_free(b);
}

TEST(a_step_change_changes_its_builder_only)
{
	struct config *a = load(W1 B("a", "make") B("b", "make test") F);
	struct config *b = load(W1 B("a", "make") B("b", "make check") F);
	if (!a || !b)
		goto out;
	CHECK(a->builder[0].fp == b->builder[0].fp);
	CHECK(a->builder[1].fp != b->builder[1].fp);
	struct config_diff d;
	config_diff(a, b, &d);
	CHECK_INT(d.builders.changed, 1);
	CHECK_INT(d.builders.added, 0);
	CHECK_INT(d.builders.removed, 0);
out:
	config_free(a);
	config_free(b);
}

TEST(added_removed_and_kinds)
{
	/* table order and blank lines do not matter; the period does */
	struct config *a = load(W1 B("a", "make") B("b", "x") F P("60"));
	struct config *b = load(W1 W2 "\n\n" B("a", "make") B("c", "y") F P("120"));
	if (!a || !b)
		goto out;
	struct config_diff d;
	config_diff(a, b, &d);
	CHECK_INT(d.builders.total, 2);
	CHECK_INT(d.builders.added, 1);
	CHECK_INT(d.builders.removed, 1);
	CHECK_INT(d.workers.added, 1);
	CHECK_INT(d.workers.changed, 0);
	CHECK_INT(d.schedulers.changed, 1);
	/* builder a moved two lines down: the same declaration */
	CHECK_INT(d.builders.changed, 0);
out:
	config_free(a);
	config_free(b);
}

TEST(key_order_is_not_a_change)
{
	struct config *a =
		load(W1 "builder { name = \"a\", workers = { \"w1\" }, tags = { \"t\" }, "
			"steps = { shell { command = \"make\", timeout = 5 } } }\n");
	struct config *b =
		load(W1 "builder { steps = { shell { timeout = 5, command = \"make\" } }, "
			"tags = { \"t\" }, workers = { \"w1\" }, name = \"a\" }\n");
	if (!a || !b)
		goto out;
	CHECK(a->builder[0].fp == b->builder[0].fp);
out:
	config_free(a);
	config_free(b);
}

TEST(match_names)
{
	struct config *a = load(W1 B("a", "1") B("b", "2") B("c", "3"));
	struct config *b = load(W1 B("c", "3") B("d", "4") B("a", "1"));
	if (!a || !b)
		goto out;
	size_t map[3];
	config_match_names(a->builder, a->nbuilders, config_builder_name_at, b->builder,
			   b->nbuilders, config_builder_name_at, map);
	CHECK(map[0] == 2);
	CHECK(map[1] == SIZE_MAX);
	CHECK(map[2] == 0);
out:
	config_free(a);
	config_free(b);
}

TEST(change_sources_and_kinds)
{
	/* a poller's interval is a change; a scheduler under the same name but
	 * of another kind is one removed and one added */
	struct config *a = load(W1 B(
		"a", "make") "git_poller { name = \"p\", repository = \"/r\", interval = 60 }\n"
			     "force_scheduler { name = \"s\", builders = { \"a\" } }\n");
	struct config *b = load(W1 B(
		"a", "make") "git_poller { name = \"p\", repository = \"/r\", interval = 120 }\n"
			     "periodic { name = \"s\", builders = { \"a\" }, period = 60 }\n");
	if (!a || !b)
		goto out;
	struct config_diff d;
	config_diff(a, b, &d);
	CHECK_INT(d.pollers.total, 1);
	CHECK_INT(d.pollers.changed, 1);
	/* s as a periodic, and the default "force" b gets having no force_scheduler */
	CHECK_INT(d.schedulers.added, 2);
	CHECK_INT(d.schedulers.removed, 1);
	CHECK_INT(d.schedulers.changed, 0);
	CHECK_INT(d.builders.changed, 0);
out:
	config_free(a);
	config_free(b);
}

TEST(references)
{
	struct config *a = load(W1 B("a", "make"));
	if (!a)
		return;
	CHECK_INT(a->refs, 1);
	CHECK(config_ref(a) == a);
	CHECK_INT(a->refs, 2);
	config_unref(a);
	CHECK_INT(a->refs, 1);
	config_unref(a); /* freed: ASan would see a leak otherwise */
	config_unref(NULL);
}

int main(void)
{
	RUN(same_text_same_fingerprints);
	RUN(a_step_change_changes_its_builder_only);
	RUN(added_removed_and_kinds);
	RUN(key_order_is_not_a_change);
	RUN(match_names);
	RUN(change_sources_and_kinds);
	RUN(references);
	return tap_done();
}
