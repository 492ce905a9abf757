/*
 * next_worker, next_build and prioritize_builders (src/config/config-dispatch.c):
 * the keys checkconfig reads and rejects, what the functions are handed
 * (capped lists, request and worker fields) and how their results become
 * indexes, nil, "not offered" or a failure the engine falls back from.
 */
#include "tap.h"
#include "config-test.h"
#include "common/err.h"
#include "common/limits.h"
#include "config/config.h"

#include <jansson.h>
#include <stdlib.h>

#define W                                                                                          \
	"worker { name = \"w1\", password = secret(\"pw\") }\n"                                    \
	"worker { name = \"w2\", password = secret(\"pw\"), max_builds = 3, properties = { "       \
	"fast = true, arch = \"arm\" } }\n"
/* builder b with extra keys */
#define B(keys)                                                                                    \
	"builder { name = \"b\", workers = { \"w1\", \"w2\" }, steps = { shell { command = \"x\" " \
	"} }, " keys " }\n"

TEST(keys_are_read)
{
	setenv("KILN_SECRET_PW", "x", 1);
	struct config *cfg = CONFIG_TEST_LOAD_OK(
		W B("next_worker = function(b, w, r) return nil end, next_build = "
		    "function(b, r) return nil end") "builder { name = \"plain\", workers "
						     "= { \"w1\" }, steps = { shell { "
						     "command = \"x\" } } }\n"
						     "prioritize_builders = function(bs) "
						     "return bs end\n");
	if (!cfg)
		return;
	const struct config_builder *b = config_find_builder(cfg, "b");
	CHECK(b->next_worker_fn != 0);
	CHECK(b->next_build_fn != 0);
	CHECK(b->next_worker_fn != b->next_build_fn);
	const struct config_builder *p = config_find_builder(cfg, "plain");
	CHECK_INT(p->next_worker_fn, 0);
	CHECK_INT(p->next_build_fn, 0);
	CHECK(cfg->prioritize_builders_fn != 0);
	config_free(cfg);

	/* none configured: nothing kept, zero cost at dispatch */
	cfg = CONFIG_TEST_LOAD_OK(W B(""));
	if (!cfg)
		return;
	CHECK_INT(cfg->prioritize_builders_fn, 0);
	CHECK_INT(cfg->builder[0].next_worker_fn, 0);
	CHECK_INT(cfg->builder[0].next_build_fn, 0);
	CHECK(cfg->lua == NULL);
	config_free(cfg);
}

TEST(errors)
{
	CHECK_ERR(W B("next_worker = \"w1\""),
		  "master.lua:3: builder 'b': 'next_worker' must be a function (got string)");
	CHECK_ERR(W B("next_build = { 1 }"),
		  "master.lua:3: builder 'b': 'next_build' must be a function (got table)");
	CHECK_ERR(W B("next_build = true"),
		  "master.lua:3: builder 'b': 'next_build' must be a function (got boolean)");
	CHECK_ERR(W "\nprioritize_builders = 3\n",
		  "master.lua:4: 'prioritize_builders' must be a function (got number)");
	CHECK_ERR(W B("next_wroker = function() end"),
		  "master.lua:3: builder 'b': unknown key 'next_wroker' (known: name, workers, "
		  "description, tags, builddir, steps, collapse_requests, cancel_superseded, "
		  "properties, env, regression, locks, next_worker, next_build, retention)");
}

/* A config whose builder b has next_worker = function(builder, workers, request) BODY end */
static struct config *with_next_worker(const char *body)
{
	char *text = NULL;
	if (asprintf(&text, W B("next_worker = function(builder, workers, request) %s end"), body) <
	    0)
		return NULL;
	struct config *cfg = CONFIG_TEST_LOAD_OK(text);
	free(text);
	return cfg;
}

static int call_next_worker(struct config *cfg, const struct config_dispatch_worker *ws, size_t n,
			    size_t *idx, char **err)
{
	json_t *props = json_pack("{s:[s,s],s:[i,s]}", "want", "w2", "Force Build Form", "n", 7,
				  "Scheduler");
	struct config_dispatch_request req = {.buildrequestid = 42,
					      .buildsetid = 9,
					      .priority = 3,
					      .submitted_at = 1700000000.5,
					      .reason = "because",
					      .properties = props};
	*err = NULL;
	int r = config_call_next_worker(cfg, &cfg->builder[0], ws, n, &req, idx, err);
	json_decref(props);
	return r;
}

/* Checks what a dispatch function (what, with the Lua body) returned: r is
 * want, the index is want_idx when r == 1, an error starts with want_err,
 * and a result that is not an error leaves no message. */
static void check_call_result(const char *what, const char *body, int r, int want, size_t idx,
			      size_t want_idx, const char *err, const char *want_err)
{
	if (r != want)
		TAP_FAIL("%s '%s': got %d (%s), want %d", what, body, r, err ? err : "", want);
	if (want == 1 && idx != want_idx)
		TAP_FAIL("%s '%s': index %zu, want %zu", what, body, idx, want_idx);
	if (want_err && (!err || strncmp(err, want_err, strlen(want_err))))
		TAP_FAIL("%s '%s': error '%s', want '%s...'", what, body, err ? err : "(none)",
			 want_err);
	if (want >= 0 && err)
		TAP_FAIL("%s '%s': an error message with %d: %s", what, body, r, err);
}

/* Checks next_worker with body over w1 and w2: the result code, the index
 * (r == 1) and, for errors, the start of the message. */
static void check_next_worker(const char *body, int want, size_t want_idx, const char *want_err)
{
	struct config *cfg = with_next_worker(body);
	if (!cfg)
		return;
	struct config_dispatch_worker ws[2] = {{&cfg->worker[0], 0}, {&cfg->worker[1], 1}};
	size_t idx = 99;
	char *err;
	int r = call_next_worker(cfg, ws, 2, &idx, &err);
	check_call_result("next_worker", body, r, want, idx, want_idx, err, want_err);
	free(err);
	config_free(cfg);
}

TEST(next_worker_results)
{
	check_next_worker("return 'w2'", 1, 1, NULL);
	check_next_worker("return workers[1]", 1, 0, NULL);
	check_next_worker("return nil", 0, 0, NULL);
	check_next_worker("", 0, 0, NULL);
	/* what it is handed: the builder's name, the workers and the request */
	check_next_worker("if builder == 'b' then return request.properties.want end", 1, 1, NULL);
	check_next_worker("if request.id == 42 and request.buildrequestid == 42 and "
			  "request.buildsetid == 9 and request.priority == 3 and "
			  "request.submitted_at == 1700000000.5 and request.reason == 'because' "
			  "and request.properties.n == 7 then return 'w2' end",
			  1, 1, NULL);
	check_next_worker("for _, w in ipairs(workers) do if w.properties.fast and "
			  "w.properties.arch == 'arm' and w.max_builds == 3 and w.running == 1 "
			  "then return w.name end end",
			  1, 1, NULL);
	check_next_worker("return #workers == 2 and workers[1].name == 'w1' and 'w1' or nil", 1, 0,
			  NULL);
	/* a name it was not offered: treated as nil by the engine, which logs it */
	check_next_worker("return 'w3'", KILN_ENOTFOUND, 0,
			  "master.lua: next_worker of builder 'b' returned 'w3', which is not one "
			  "of the idle workers it was offered");
	/* failures: the engine falls back to its own choice */
	check_next_worker("return 3", KILN_ECONFIG, 0,
			  "master.lua: next_worker of builder 'b' returned a number");
	check_next_worker("return { 'w1' }", KILN_ECONFIG, 0,
			  "master.lua: next_worker of builder 'b' returned a table (want a "
			  "worker's name, an element of workers or nil)");
	check_next_worker("error('boom')", KILN_ECONFIG, 0, "master.lua:3: boom");
	check_next_worker("return workers.nope.name", KILN_ECONFIG, 0, "master.lua:3: attempt");
	check_next_worker("while true do end", KILN_ECONFIG, 0,
			  "master.lua:3: instruction limit exceeded");
	check_next_worker("local t = {} while true do t[#t + 1] = string.rep('y', 1e6) .. #t end",
			  KILN_ECONFIG, 0, "master.lua: memory limit exceeded");
}

TEST(next_worker_cap)
{
	struct config *cfg = with_next_worker("return workers[#workers].name");
	if (!cfg)
		return;
	size_t n = KILN_DISPATCH_MAX_WORKERS + 5;
	struct config_dispatch_worker *ws = calloc(n, sizeof(*ws));
	/* the same two configured workers over and over: the last offered is
	 * index KILN_DISPATCH_MAX_WORKERS - 1 (w2 when that is odd) */
	for (size_t i = 0; i < n; i++)
		ws[i] = (struct config_dispatch_worker){&cfg->worker[i % 2], 0};
	size_t idx = 0;
	char *err;
	int r = call_next_worker(cfg, ws, n, &idx, &err);
	CHECK_INT(r, 1);
	/* the first entry with that name is chosen */
	CHECK_INT(idx, (KILN_DISPATCH_MAX_WORKERS - 1) % 2);
	free(err);
	free(ws);
	config_free(cfg);

	cfg = with_next_worker("return tostring(#workers)");
	if (!cfg)
		return;
	ws = calloc(n, sizeof(*ws));
	for (size_t i = 0; i < n; i++)
		ws[i] = (struct config_dispatch_worker){&cfg->worker[i % 2], 0};
	r = call_next_worker(cfg, ws, n, &idx, &err);
	CHECK_INT(r, KILN_ENOTFOUND);
	char want[64];
	snprintf(want, sizeof(want), "returned '%u'", (unsigned)KILN_DISPATCH_MAX_WORKERS);
	CHECK(err && strstr(err, want));
	free(err);
	free(ws);
	config_free(cfg);
}

static struct config *with_next_build(const char *body)
{
	char *text = NULL;
	if (asprintf(&text, W B("next_build = function(builder, requests) %s end"), body) < 0)
		return NULL;
	struct config *cfg = CONFIG_TEST_LOAD_OK(text);
	free(text);
	return cfg;
}

static void check_next_build(const char *body, size_t n, int want, size_t want_idx,
			     const char *want_err)
{
	struct config *cfg = with_next_build(body);
	if (!cfg)
		return;
	struct config_dispatch_request *reqs = calloc(n + 1, sizeof(*reqs));
	json_t *props = json_pack("{s:[s,s]}", "tag", "x", "Force Build Form");
	for (size_t i = 0; i < n; i++)
		reqs[i] = (struct config_dispatch_request){.buildrequestid = (long long)(10 + i),
							   .buildsetid = (long long)(100 + i),
							   .priority = (int)(i % 3),
							   .submitted_at = 1000.0 + (double)i,
							   .reason = i % 2 ? "odd" : NULL,
							   .properties = i == 1 ? props : NULL};
	size_t idx = 999;
	char *err = NULL;
	int r = config_call_next_build(cfg, &cfg->builder[0], reqs, n, &idx, &err);
	check_call_result("next_build", body, r, want, idx, want_idx, err, want_err);
	free(err);
	json_decref(props);
	free(reqs);
	config_free(cfg);
}

/* the newest request (largest submitted_at) first */
#define NEWEST                                                                                     \
	"local best for _, r in ipairs(requests) do if not best or r.submitted_at > "              \
	"best.submitted_at then best = r end end "

TEST(next_build_results)
{
	check_next_build(NEWEST "return best.id", 5, 1, 4, NULL);
	check_next_build(NEWEST "return best", 5, 1, 4, NULL);
	check_next_build("return requests[2].buildrequestid", 3, 1, 1, NULL);
	check_next_build("return 12.0", 3, 1, 2, NULL);
	check_next_build("return nil", 3, 0, 0, NULL);
	check_next_build("if requests[2].reason == 'odd' and requests[1].reason == nil and "
			 "requests[2].properties.tag == 'x' and requests[3].priority == 2 and "
			 "requests[1].buildsetid == 100 then return requests[3] end",
			 3, 1, 2, NULL);
	check_next_build("return 99", 3, KILN_ENOTFOUND, 0,
			 "master.lua: next_build of builder 'b' returned request 99, which is not "
			 "one of the queued requests it was offered");
	check_next_build("return 'x'", 3, KILN_ECONFIG, 0,
			 "master.lua: next_build of builder 'b' returned a string");
	check_next_build("return 10.5", 3, KILN_ECONFIG, 0,
			 "master.lua: next_build of builder 'b' returned a number");
	check_next_build("error('no')", 3, KILN_ECONFIG, 0, "master.lua:3: no");
	/* capped: the function sees the first KILN_DISPATCH_MAX_REQUESTS */
	check_next_build("return requests[#requests].id", KILN_DISPATCH_MAX_REQUESTS + 50, 1,
			 KILN_DISPATCH_MAX_REQUESTS - 1, NULL);
}

static struct config *with_prioritize(const char *body)
{
	char *text = NULL;
	if (asprintf(&text, W B("") "prioritize_builders = function(builders) %s end", body) < 0)
		return NULL;
	struct config *cfg = CONFIG_TEST_LOAD_OK(text);
	free(text);
	return cfg;
}

/* prioritize_builders over builders a, b, c, d (default order), checking
 * the whole order it gives as a string of names. */
static void check_prioritize(const char *body, int want, const char *want_order)
{
	struct config *cfg = with_prioritize(body);
	if (!cfg)
		return;
	struct config_dispatch_builder bs[4] = {
		{"a", 100.0, 0}, {"b", 50.5, 2}, {"c", 75.0, 1}, {"d", 10.0, 0}};
	size_t order[4] = {9, 9, 9, 9};
	char *err = NULL;
	int r = config_call_prioritize(cfg, bs, 4, order, &err);
	if (r != want)
		TAP_FAIL("prioritize '%s': got %d (%s), want %d", body, r, err ? err : "", want);
	char got[5] = {0};
	for (size_t i = 0; i < 4; i++)
		got[i] = order[i] < 4 ? bs[order[i]].name[0] : '?';
	CHECK_STR(got, want_order);
	free(err);
	config_free(cfg);
}

TEST(prioritize_results)
{
	check_prioritize("return { 'd', 'c', 'b', 'a' }", 0, "dcba");
	/* by oldest request time, as Buildbot's default would after priority */
	check_prioritize("table.sort(builders, function(x, y) return x.oldest_request_time < "
			 "y.oldest_request_time end) return builders",
			 0, "dbca");
	check_prioritize("table.sort(builders, function(x, y) return x.priority > y.priority or "
			 "(x.priority == y.priority and x.name < y.name) end) return builders",
			 0, "bcad");
	/* dropped names keep their default order after those returned */
	check_prioritize("return { 'c' }", 0, "cabd");
	check_prioritize("return { builders[4], 'b' }", 0, "dbac");
	/* unknown names and repeats are skipped */
	check_prioritize("return { 'zz', 'c', 'c', 3, 'a' }", 0, "cabd");
	check_prioritize("return nil", 0, "abcd");
	check_prioritize("return {}", 0, "abcd");
	/* failures: the default order */
	check_prioritize("return 'a'", KILN_ECONFIG, "abcd");
	check_prioritize("error('bad')", KILN_ECONFIG, "abcd");
	check_prioritize("while true do end", KILN_ECONFIG, "abcd");
}

TEST(prioritize_cap)
{
	struct config *cfg = with_prioritize("local out = { } for i = #builders, 1, -1 do out[#out "
					     "+ 1] = builders[i] end return "
					     "out");
	if (!cfg)
		return;
	size_t n = KILN_DISPATCH_MAX_BUILDERS + 3;
	struct config_dispatch_builder *bs = calloc(n, sizeof(*bs));
	char(*names)[16] = calloc(n, sizeof(*names));
	size_t *order = calloc(n, sizeof(*order));
	for (size_t i = 0; i < n; i++) {
		snprintf(names[i], sizeof(names[i]), "b%zu", i);
		bs[i] = (struct config_dispatch_builder){names[i], (double)i, 0};
	}
	char *err = NULL;
	CHECK_INT(config_call_prioritize(cfg, bs, n, order, &err), 0);
	/* the offered ones reversed, the rest after them as they were */
	CHECK_INT(order[0], KILN_DISPATCH_MAX_BUILDERS - 1);
	CHECK_INT(order[KILN_DISPATCH_MAX_BUILDERS - 1], 0);
	CHECK_INT(order[KILN_DISPATCH_MAX_BUILDERS], KILN_DISPATCH_MAX_BUILDERS);
	CHECK_INT(order[n - 1], n - 1);
	free(err);
	free(order);
	free(names);
	free(bs);
	config_free(cfg);
}

int main(void)
{
	RUN(keys_are_read);
	RUN(errors);
	RUN(next_worker_results);
	RUN(next_worker_cap);
	RUN(next_build_results);
	RUN(prioritize_results);
	RUN(prioritize_cap);
	return tap_done();
}
