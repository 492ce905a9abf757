/*
 * Result bags pushed from outside (src/master/push-bag.c, slice "push"):
 * what a well-formed bag becomes, every refusal naming its field, the caps,
 * and the results a status maps to.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "db/db.h"
#include "master/push-bag.h"
#include "tap.h"

static const struct push_limits lim = {.max_steps = 3, .max_log_bytes = 16};

static int parse(const char *text, bool steps_only, struct push_bag *b, char *why, size_t n)
{
	return push_bag_parse(text, strlen(text), &lim, steps_only, b, why, n);
}

/* refused with status and a message containing needle */
static void refused(const char *text, bool steps_only, int status, const char *needle)
{
	struct push_bag b;
	char why[256] = "";
	int r = parse(text, steps_only, &b, why, sizeof(why));
	if (r != status || !strstr(why, needle))
		TAP_FAIL("%s: got %d '%s', want %d '%s'", text, r, why, status, needle);
	if (r == 0)
		push_bag_release(&b);
	json_t *j = json_string(why); /* valid UTF-8, one line */
	CHECK(j != NULL && !strchr(why, '\n'));
	json_decref(j);
	CHECK(b.package == NULL && b.steps == NULL && b.client == NULL); /* nothing kept */
}

TEST(full_bag)
{
	struct push_bag b;
	char why[256] = "";
	CHECK_INT(parse("{\"client\": {\"package\": \"kiln\", \"host\": \"ci-1\", \"arch\": "
			"\"x86_64\","
			" \"tags\": [\"a\", \"b\"], \"cc\": \"gcc\", \"cores\": 4},"
			" \"revision\": \"abc\", \"finished\": false,"
			" \"steps\": [{\"name\": \"build\", \"status\": 0, \"stdout\": \"ok\\n\","
			" \"cmd\": [\"make\", \"-j4\"], \"started_at\": 10, \"finished_at\": 12},"
			" {\"name\": \"test\", \"status\": \"warnings\", \"stderr\": \"w\", "
			"\"cmd\": \"make check\"},"
			" {\"name\": \"lint\", \"status\": 7}]}",
			false, &b, why, sizeof(why)),
		  0);
	CHECK_STR(why, "");
	CHECK_STR(b.package, "kiln");
	CHECK_STR(b.host, "ci-1");
	CHECK_STR(b.arch, "x86_64");
	CHECK_INT(b.ntags, 2);
	CHECK_STR(b.tags[1], "b");
	CHECK_STR(b.revision, "abc");
	CHECK(!b.finished);
	CHECK_STR(json_string_value(json_object_get(b.client, "cc")), "gcc");
	CHECK_INT(b.nsteps, 3);
	CHECK_STR(b.steps[0].cmd, "make -j4");
	CHECK_INT(b.steps[0].results, RESULTS_SUCCESS);
	CHECK_INT(b.steps[0].out_len, 3);
	CHECK(b.steps[0].started_at == 10 && b.steps[0].finished_at == 12);
	CHECK_INT(b.steps[1].results, RESULTS_WARNINGS);
	CHECK_STR(b.steps[1].err, "w");
	CHECK_STR(b.steps[1].cmd, "make check");
	CHECK_INT(b.steps[2].results, RESULTS_FAILURE);
	CHECK_INT(b.log_bytes, 4);
	push_bag_release(&b);
	CHECK(b.package == NULL);
}

TEST(minimal_bag)
{
	struct push_bag b;
	char why[256];
	CHECK_INT(parse("{\"client\": {\"package\": \"p\", \"host\": \"h\"}}", false, &b, why,
			sizeof(why)),
		  0);
	CHECK(b.finished); /* the default */
	CHECK_INT(b.nsteps, 0);
	CHECK(b.arch == NULL && b.revision == NULL && b.ntags == 0);
	push_bag_release(&b);
}

TEST(steps_only)
{
	struct push_bag b;
	char why[256];
	CHECK_INT(parse("{\"update_token\": \"kpu_x\", \"steps\": [{\"name\": \"a\", \"status\": "
			"\"failure\"}]}",
			true, &b, why, sizeof(why)),
		  0);
	CHECK_INT(b.nsteps, 1);
	CHECK_INT(b.steps[0].results, RESULTS_FAILURE);
	CHECK(b.package == NULL);
	push_bag_release(&b);
	refused("{\"update_token\": \"kpu_x\"}", true, PUSH_BAD, "'steps' is missing");
	refused("{\"client\": {}, \"steps\": []}", true, PUSH_BAD, "unknown key 'client'");
}

TEST(malformed)
{
	refused("", false, PUSH_BAD, "not JSON");
	refused("{\"client\": ", false, PUSH_BAD, "not JSON");
	refused("[1]", false, PUSH_BAD, "must be a JSON object");
	refused("{\"client\": {\"package\": \"p\", \"package\": \"q\", \"host\": \"h\"}}", false,
		PUSH_BAD, "not JSON"); /* duplicate key */
	refused("{\"steps\": []}", false, PUSH_BAD, "'client' must be an object");
	refused("{\"client\": {\"host\": \"h\"}}", false, PUSH_BAD, "client.package");
	refused("{\"client\": {\"package\": \"a/b\", \"host\": \"h\"}}", false, PUSH_BAD,
		"client.package");
	refused("{\"client\": {\"package\": \"p\"}}", false, PUSH_BAD, "client.host");
	refused("{\"client\": {\"package\": \"p\", \"host\": \"a\\nb\"}}", false, PUSH_BAD,
		"client.host");
	refused("{\"client\": {\"package\": \"p\", \"host\": \"h\", \"tags\": \"x\"}}", false,
		PUSH_BAD, "client.tags");
	refused("{\"client\": {\"package\": \"p\", \"host\": \"h\", \"tags\": [\"a,b\"]}}", false,
		PUSH_BAD, "client.tags[0]");
	refused("{\"client\": {\"package\": \"p\", \"host\": \"h\", \"x\": {}}}", false, PUSH_BAD,
		"client.x");
	refused("{\"client\": {\"package\": \"p\", \"host\": \"h\"}, \"finished\": 1}", false,
		PUSH_BAD, "'finished'");
	refused("{\"client\": {\"package\": \"p\", \"host\": \"h\"}, \"revision\": 5}", false,
		PUSH_BAD, "'revision'");
	refused("{\"client\": {\"package\": \"p\", \"host\": \"h\"}, \"extra\": 1}", false,
		PUSH_BAD, "unknown key 'extra'");
	refused("{\"client\": {\"package\": \"p\", \"host\": \"h\"}, \"steps\": {}}", false,
		PUSH_BAD, "'steps' must be a list");
	refused("{\"client\": {\"package\": \"p\", \"host\": \"h\"}, \"steps\": [1]}", false,
		PUSH_BAD, "steps[0] must be an object");
	refused("{\"client\": {\"package\": \"p\", \"host\": \"h\"}, \"steps\": [{\"status\": 0}]}",
		false, PUSH_BAD, "steps[0].name");
	refused("{\"client\": {\"package\": \"p\", \"host\": \"h\"}, \"steps\": [{\"name\": "
		"\"a\"}]}",
		false, PUSH_BAD, "steps[0].status is missing");
	refused("{\"client\": {\"package\": \"p\", \"host\": \"h\"}, \"steps\": [{\"name\": \"a\", "
		"\"status\": 0}, {\"name\": \"b\", \"status\": \"meh\"}]}",
		false, PUSH_BAD, "steps[1].status");
	refused("{\"client\": {\"package\": \"p\", \"host\": \"h\"}, \"steps\": [{\"name\": \"a\", "
		"\"status\": 0, \"stdout\": 3}]}",
		false, PUSH_BAD, "steps[0].stdout must be a string");
	refused("{\"client\": {\"package\": \"p\", \"host\": \"h\"}, \"steps\": [{\"name\": \"a\", "
		"\"status\": 0, \"cmd\": [1]}]}",
		false, PUSH_BAD, "steps[0].cmd");
	refused("{\"client\": {\"package\": \"p\", \"host\": \"h\"}, \"steps\": [{\"name\": \"a\", "
		"\"status\": 0, \"started_at\": \"now\"}]}",
		false, PUSH_BAD, "steps[0].started_at");
	refused("{\"client\": {\"package\": \"p\", \"host\": \"h\"}, \"steps\": [{\"name\": \"a\", "
		"\"status\": 0, \"started_at\": 9, \"finished_at\": 8}]}",
		false, PUSH_BAD, "finished before it started");
	refused("{\"client\": {\"package\": \"p\", \"host\": \"h\"}, \"steps\": [{\"name\": \"a\", "
		"\"status\": 0, \"bogus\": 1}]}",
		false, PUSH_BAD, "unknown key 'bogus'");
}

/* Found by fuzz-push-json: a key is quoted in the reason, which is one line
 * of valid UTF-8 (it goes into a JSON reply): control characters become
 * '?', a long key is cut before a character, never inside one. */
TEST(keys_quoted_safely)
{
	refused("{\"cli\\nt\": 1}", false, PUSH_BAD, "unknown key 'cli?t'");
	/* jansson's error quotes the bad token raw: a newline, invalid UTF-8 */
	refused("{\"\\n\\\n2\": 1}", false, PUSH_BAD, "not JSON: ");
	refused("{\"\xff\xfe\n\": 1}", false, PUSH_BAD, "not JSON: ");
	refused("{\"steps\": [{\"name\": \"a\", \"status\": 0, \"\\u007fx\\t\": 1}]}", true,
		PUSH_BAD, "unknown key '?x?'");
	/* 31 ASCII bytes then "é" (2 bytes): byte 32 is inside the "é" */
	refused("{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\u00e9z\": 1}", false, PUSH_BAD,
		"unknown key 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...'");
	refused("{\"client\": {\"package\": \"p\", \"host\": \"h\", "
		"\"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\u00e9\": {}}}",
		false, PUSH_BAD, "client.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb... must be");
	refused("{\"exactly32bytes_exactly32bytes_xy\": 1}", false, PUSH_BAD,
		"unknown key 'exactly32bytes_exactly32bytes_xy' (");
}

TEST(caps)
{
	refused("{\"client\": {\"package\": \"p\", \"host\": \"h\"}, \"steps\": [{\"name\": \"a\", "
		"\"status\": 0, \"stdout\": \"0123456789abcdefX\"}]}",
		false, PUSH_TOO_BIG, "steps[0].stdout has 17 bytes");
	refused("{\"client\": {\"package\": \"p\", \"host\": \"h\"}, \"steps\": [{\"name\": \"a\", "
		"\"status\": 0}, {\"name\": \"b\", \"status\": 0}, {\"name\": \"c\", \"status\": "
		"0}, "
		"{\"name\": \"d\", \"status\": 0}]}",
		false, PUSH_TOO_BIG, "4 steps: at most 3");
	struct push_bag b;
	char why[256];
	/* exactly at the caps is accepted */
	CHECK_INT(
		parse("{\"client\": {\"package\": \"p\", \"host\": \"h\"}, \"steps\": [{\"name\": "
		      "\"a\", \"status\": 0, \"stdout\": \"0123456789abcdef\"}]}",
		      false, &b, why, sizeof(why)),
		0);
	push_bag_release(&b);
}

TEST(results)
{
	json_t *v;
#define RES(text, want)                                                                            \
	do {                                                                                       \
		v = json_loads(text, JSON_DECODE_ANY, NULL);                                       \
		CHECK_INT(push_results_from_json(v), want);                                        \
		json_decref(v);                                                                    \
	} while (0)
	RES("0", RESULTS_SUCCESS);
	RES("2", RESULTS_FAILURE);
	RES("-1", RESULTS_FAILURE);
	RES("\"SUCCESS\"", RESULTS_SUCCESS);
	RES("\"skipped\"", RESULTS_SKIPPED);
	RES("\"exception\"", RESULTS_EXCEPTION);
	RES("\"cancelled\"", RESULTS_CANCELLED);
	RES("true", RESULTS_SUCCESS);
	RES("false", RESULTS_FAILURE);
	RES("\"nope\"", -1);
	RES("1.5", -1);
	RES("null", -1);
#undef RES
}

int main(void)
{
	RUN(full_bag);
	RUN(minimal_bag);
	RUN(steps_only);
	RUN(malformed);
	RUN(keys_quoted_safely);
	RUN(caps);
	RUN(results);
	return tap_done();
}
