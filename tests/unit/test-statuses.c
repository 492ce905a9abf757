/*
 * Commit statuses (src/master/reporters/statuses.c and the kinds, slice
 * "statuses"): repository URL parsing, each kind's state mapping and exact
 * request (path, key, JSON body), the reply rules (2xx, 4xx, 429 and
 * rate-limit headers, 5xx backoff), the config's errors, and the outbound
 * table's rules (same state not queued twice, the cap drops the oldest,
 * a refused state may be queued again).
 */
#include "tap.h"
#include "config-test.h"
#include "common/buf.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"
#include "master/reporters/statuses.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static struct report_build rb_of(int results)
{
	return (struct report_build){.buildid = 7,
				     .builderid = 2,
				     .number = 4,
				     .builder = "app",
				     .branch = "main",
				     .revision = "0123abcd",
				     .results = results,
				     .prev_results = RESULTS_NONE,
				     .state_string = "failed 'make test'",
				     .url = "http://ci/builders/2/builds/4"};
}

static const char base[] = "worker { name = \"w1\", password = secret(\"w1\") }\n"
			   "builder { name = \"app\", workers = { \"w1\" },\n"
			   "  steps = { shell { command = \"true\" } } }\n";

static struct config *load(const char *reporter)
{
	char text[4096];
	snprintf(text, sizeof(text), "%s%s\n", base, reporter);
	return CONFIG_TEST_LOAD_OK(text);
}

static char *load_err(const char *reporter)
{
	char text[4096];
	snprintf(text, sizeof(text), "%s%s\n", base, reporter);
	return config_test_error(text);
}

TEST(repo_urls)
{
	static const struct {
		const char *url, *want;
	} ok[] = {
		{"https://github.com/acme/widget.git", "acme/widget"},
		{"https://github.com/acme/widget", "acme/widget"},
		{"https://github.com/acme/widget/", "acme/widget"},
		{"http://gitea.local:3000/acme/widget.git", "acme/widget"},
		{"git@github.com:acme/widget.git", "acme/widget"},
		{"git@gitlab.com:group/sub/widget.git", "group/sub/widget"},
		{"ssh://git@host:2222/acme/widget.git", "acme/widget"},
		{"git://host/acme/widget", "acme/widget"},
		{"https://user@bitbucket.org/ws/repo.git", "ws/repo"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		char out[256] = "";
		CHECK_INT(statuses_repo_path(ok[i].url, out, sizeof(out)), 0);
		CHECK_STR(out, ok[i].want);
	}
	static const char *const bad[] = {
		"",
		"widget",
		"https://github.com",
		"https://github.com/",
		"/local/path/repo",
		"https://host/a b/c",
		"https://host/../etc",
		"https://host/a//b",
		"git@host:",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		char out[256];
		if (statuses_repo_path(bad[i], out, sizeof(out)) != -EINVAL)
			TAP_FAIL("'%s' was accepted", bad[i]);
	}
	char small[4];
	CHECK_INT(statuses_repo_path("https://h/acme/widget", small, sizeof(small)), -EINVAL);
	CHECK(statuses_repo_path(NULL, small, sizeof(small)) == -EINVAL);
	CHECK(statuses_sha_ok("0123abcd"));
	CHECK(!statuses_sha_ok("xyz"));
	CHECK(!statuses_sha_ok(NULL));
	CHECK(!statuses_sha_ok("0123abcg"));
}

TEST(states)
{
	CHECK_STR(statuses_state(CONFIG_REPORTER_GITHUB, true, RESULTS_NONE), "pending");
	CHECK_STR(statuses_state(CONFIG_REPORTER_GITHUB, false, RESULTS_SUCCESS), "success");
	CHECK_STR(statuses_state(CONFIG_REPORTER_GITHUB, false, RESULTS_WARNINGS), "success");
	CHECK_STR(statuses_state(CONFIG_REPORTER_GITHUB, false, RESULTS_FAILURE), "failure");
	CHECK_STR(statuses_state(CONFIG_REPORTER_GITHUB, false, RESULTS_EXCEPTION), "error");
	CHECK_STR(statuses_state(CONFIG_REPORTER_GITHUB, false, RESULTS_CANCELLED), "error");
	CHECK_STR(statuses_state(CONFIG_REPORTER_GITEA, false, RESULTS_WARNINGS), "warning");
	CHECK_STR(statuses_state(CONFIG_REPORTER_GITLAB, true, RESULTS_NONE), "running");
	CHECK_STR(statuses_state(CONFIG_REPORTER_GITLAB, false, RESULTS_FAILURE), "failed");
	CHECK_STR(statuses_state(CONFIG_REPORTER_GITLAB, false, RESULTS_EXCEPTION), "failed");
	CHECK_STR(statuses_state(CONFIG_REPORTER_GITLAB, false, RESULTS_CANCELLED), "canceled");
	CHECK_STR(statuses_state(CONFIG_REPORTER_BITBUCKET, true, RESULTS_NONE), "INPROGRESS");
	CHECK_STR(statuses_state(CONFIG_REPORTER_BITBUCKET, false, RESULTS_SUCCESS), "SUCCESSFUL");
	CHECK_STR(statuses_state(CONFIG_REPORTER_BITBUCKET, false, RESULTS_FAILURE), "FAILED");
	CHECK_STR(statuses_state(CONFIG_REPORTER_BITBUCKET, false, RESULTS_CANCELLED), "STOPPED");
	CHECK(statuses_state(CONFIG_REPORTER_GERRIT, true, RESULTS_NONE) == NULL);
	CHECK_STR(statuses_state(CONFIG_REPORTER_GERRIT, false, RESULTS_SUCCESS), "+1");
	CHECK_STR(statuses_state(CONFIG_REPORTER_GERRIT, false, RESULTS_FAILURE), "-1");
}

/* kind's request for ev; checks path, key and body (exact). */
static void check_req(const struct config_reporter *rc, const struct statuses_kind *sk,
		      const struct statuses_event *ev, const char *path, const char *key,
		      const char *body)
{
	struct statuses_req q;
	statuses_req_init(&q);
	const char *why = NULL;
	int r = sk->request(rc, ev, &q, &why);
	CHECK_INT(r, 1);
	if (r == 1) {
		CHECK_STR(q.path.ptr, path);
		CHECK_STR(q.key.ptr, key);
		CHECK_STR(q.body.ptr, body);
	} else
		TAP_FAIL("%s: %s", rc->name, why ? why : "?");
	statuses_req_release(&q);
}

TEST(requests)
{
	setenv("KILN_SECRET_TOK", "tok-1", 1);
	setenv("KILN_SECRET_PW", "pw-1", 1);
	struct config *cfg = load(
		"reporter { kind = \"github\", token = secret(\"tok\") }\n"
		"reporter { kind = \"gitlab\", token = secret(\"tok\"), context = \"ci/{builder}\" "
		"}\n"
		"reporter { kind = \"gitea\", url = \"http://g:3000/\", token = secret(\"tok\"),"
		" owner = \"o\", repo = \"r\" }\n"
		"reporter { kind = \"bitbucket\", user = \"u\", password = secret(\"pw\") }\n"
		"reporter { kind = \"bitbucket\", name = \"bbs\", server = true,"
		" url = \"https://bb.example.org\", token = secret(\"tok\") }\n"
		"reporter { kind = \"gerrit\", url = \"https://review.example.org\","
		" user = \"kiln\", password = secret(\"pw\") }");
	if (!cfg)
		return;
	CHECK_INT(cfg->nreporters, 6);
	CHECK_STR(cfg->reporter[0].status.base_url, "https://api.github.com");
	CHECK_INT(cfg->reporter[0].filter.modes, CONFIG_REPORT_ALL);
	CHECK_STR(cfg->reporter[1].status.base_url, "https://gitlab.com");
	CHECK_STR(cfg->reporter[2].status.base_url, "http://g:3000");
	CHECK_STR(cfg->reporter[3].status.base_url, "https://api.bitbucket.org");
	CHECK(cfg->reporter[4].status.server);
	CHECK_STR(cfg->reporter[5].status.label, "Verified");

	struct report_build rb = rb_of(RESULTS_FAILURE);
	struct statuses_event ev = {
		.rb = &rb, .repository = "git@github.com:acme/widget.git", .sha = "0123abcd"};
	check_req(&cfg->reporter[0], &statuses_github, &ev, "/repos/acme/widget/statuses/0123abcd",
		  "acme/widget|0123abcd|kiln/app",
		  "{\"state\":\"failure\",\"target_url\":\"http://ci/builders/2/builds/4\","
		  "\"description\":\"Build done: failure (failed 'make test')\","
		  "\"context\":\"kiln/app\"}");
	struct statuses_event ev_gl = ev;
	ev_gl.repository = "https://gitlab.com/group/sub/widget.git";
	check_req(&cfg->reporter[1], &statuses_gitlab, &ev_gl,
		  "/api/v4/projects/group%2Fsub%2Fwidget/statuses/0123abcd",
		  "group/sub/widget|0123abcd|ci/app",
		  "{\"state\":\"failed\",\"name\":\"ci/app\",\"target_url\":"
		  "\"http://ci/builders/2/builds/4\",\"description\":\"Build done: failure "
		  "(failed 'make test')\",\"ref\":\"main\"}");
	struct statuses_event started = ev;
	started.started = true;
	check_req(&cfg->reporter[2], &statuses_gitea, &started,
		  "/api/v1/repos/o/r/statuses/0123abcd", "o/r|0123abcd|kiln/app",
		  "{\"state\":\"pending\",\"target_url\":\"http://ci/builders/2/builds/4\","
		  "\"description\":\"Build started.\",\"context\":\"kiln/app\"}");
	check_req(&cfg->reporter[3], &statuses_bitbucket, &started,
		  "/2.0/repositories/acme/widget/commit/0123abcd/statuses/build",
		  "acme/widget|0123abcd|kiln/app",
		  "{\"key\":\"kiln/app\",\"state\":\"INPROGRESS\",\"name\":\"app #4\",\"url\":"
		  "\"http://ci/builders/2/builds/4\",\"description\":\"Build started.\"}");
	check_req(&cfg->reporter[4], &statuses_bitbucket, &ev,
		  "/rest/build-status/1.0/commits/0123abcd", "0123abcd|kiln/app",
		  "{\"key\":\"kiln/app\",\"state\":\"FAILED\",\"name\":\"app #4\",\"url\":"
		  "\"http://ci/builders/2/builds/4\",\"description\":\"Build done: failure "
		  "(failed 'make test')\"}");
	struct statuses_event ev_g = ev;
	ev_g.change = "42";
	ev_g.patchset = "feedbeef";
	check_req(&cfg->reporter[5], &statuses_gerrit, &ev_g,
		  "/a/changes/42/revisions/feedbeef/review", "42|feedbeef|Verified",
		  "{\"message\":\"Build app #4: failure (failed 'make test') "
		  "http://ci/builders/2/builds/4\",\"labels\":{\"Verified\":-1}}");

	/* nothing to send: no revision, no gerrit change, gerrit on a start */
	struct statuses_req q;
	const char *why = NULL;
	struct statuses_event none = ev;
	none.sha = NULL;
	statuses_req_init(&q);
	CHECK_INT(statuses_github.request(&cfg->reporter[0], &none, &q, &why), 0);
	statuses_req_release(&q);
	statuses_req_init(&q);
	CHECK_INT(statuses_gerrit.request(&cfg->reporter[5], &ev, &q, &why), 0);
	statuses_req_release(&q);
	statuses_req_init(&q);
	ev_g.started = true;
	CHECK_INT(statuses_gerrit.request(&cfg->reporter[5], &ev_g, &q, &why), 0);
	statuses_req_release(&q);
	/* a repository URL that is not owner/repo: an error */
	struct statuses_event badrepo = ev;
	badrepo.repository = "/srv/git/widget";
	statuses_req_init(&q);
	CHECK(statuses_github.request(&cfg->reporter[0], &badrepo, &q, &why) < 0);
	statuses_req_release(&q);

	/* a long description is cut on a UTF-8 boundary */
	struct report_build lrb = rb;
	char longs[400];
	memset(longs, 'x', sizeof(longs));
	memcpy(longs + 110, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 8);
	longs[sizeof(longs) - 1] = '\0';
	lrb.state_string = longs;
	struct statuses_event lev = {.rb = &lrb};
	char desc[STATUSES_MAX_DESCRIPTION + 1];
	statuses_description(&lev, desc, sizeof(desc));
	CHECK(strlen(desc) <= STATUSES_MAX_DESCRIPTION);
	json_t *js = json_string(desc); /* NULL if not valid UTF-8 */
	CHECK(js != NULL);
	json_decref(js);
	config_free(cfg);
}

TEST(judge)
{
	int64_t now = 1000000, at = -1;
	struct statuses_reply ok = {.code = 201, .retry_after = -1, .remaining = -1, .reset = -1};
	CHECK_INT(statuses_judge(&ok, now, 0, 1000, &at), STATUSES_DONE);
	CHECK(at == 0);
	/* a 2xx with nothing left: hold until the reset */
	struct statuses_reply last = {
		.code = 201, .retry_after = -1, .remaining = 0, .reset = 1010};
	CHECK_INT(statuses_judge(&last, now, 0, 1000, &at), STATUSES_DONE);
	CHECK(at == 1010000);
	struct statuses_reply nf = {.code = 404, .retry_after = -1, .remaining = -1, .reset = -1};
	CHECK_INT(statuses_judge(&nf, now, 0, 1000, &at), STATUSES_REFUSED);
	struct statuses_reply e422 = {.code = 422, .retry_after = -1, .remaining = -1, .reset = -1};
	CHECK_INT(statuses_judge(&e422, now, 0, 1000, &at), STATUSES_REFUSED);
	struct statuses_reply r429 = {.code = 429, .retry_after = 3, .remaining = -1, .reset = -1};
	CHECK_INT(statuses_judge(&r429, now, 0, 1000, &at), STATUSES_LIMITED);
	CHECK(at == now + 3000);
	/* GitHub's secondary limit: 403 with X-RateLimit-Remaining: 0 */
	struct statuses_reply r403 = {
		.code = 403, .retry_after = -1, .remaining = 0, .reset = 1005};
	CHECK_INT(statuses_judge(&r403, now, 0, 1000, &at), STATUSES_LIMITED);
	CHECK(at == 1005000);
	/* a plain 403: refused */
	struct statuses_reply f403 = {.code = 403, .retry_after = -1, .remaining = 10, .reset = -1};
	CHECK_INT(statuses_judge(&f403, now, 0, 1000, &at), STATUSES_REFUSED);
	/* a reset days away: an hour at most */
	struct statuses_reply far = {
		.code = 429, .retry_after = 999999, .remaining = -1, .reset = -1};
	CHECK_INT(statuses_judge(&far, now, 0, 1000, &at), STATUSES_LIMITED);
	CHECK(at == now + 3600 * 1000);
	/* 5xx and no reply: backoff doubling, capped at 64x */
	struct statuses_reply e500 = {.code = 500, .retry_after = -1, .remaining = -1, .reset = -1};
	CHECK_INT(statuses_judge(&e500, now, 0, 1000, &at), STATUSES_RETRY);
	CHECK(at == now + 1000);
	CHECK_INT(statuses_judge(&e500, now, 2, 1000, &at), STATUSES_RETRY);
	CHECK(at == now + 4000);
	CHECK_INT(statuses_judge(&e500, now, 30, 1000, &at), STATUSES_RETRY);
	CHECK(at == now + 64000);
	struct statuses_reply down = {.code = 0, .retry_after = -1, .remaining = -1, .reset = -1};
	CHECK_INT(statuses_judge(&down, now, 1, 1000, &at), STATUSES_RETRY);
	CHECK(at == now + 2000);
}

TEST(config_errors)
{
	static const struct {
		const char *decl, *want;
	} cases[] = {
		{"reporter { kind = \"github\", token = \"plain\" }",
		 "'token' must come from secret(...)"},
		{"reporter { kind = \"github\" }", "'token' is required"},
		{"reporter { kind = \"gitea\", token = secret(\"tok\") }", "'url' is required"},
		{"reporter { kind = \"github\", token = secret(\"tok\"), owner = \"o\" }",
		 "'owner' and 'repo' go together"},
		{"reporter { kind = \"github\", token = secret(\"tok\"), url = \"ftp://x\" }",
		 "'url' must be an http:// or https:// URL"},
		{"reporter { kind = \"github\", token = secret(\"tok\"), url = "
		 "\"https://u:p@x\" }",
		 "without spaces or a login"},
		{"reporter { kind = \"gerrit\", url = \"https://r\" }",
		 "'user' and 'password' are required"},
		{"reporter { kind = \"bitbucket\", user = \"u\" }",
		 "'user' and 'password' go together"},
		{"reporter { kind = \"bitbucket\", server = true, token = secret(\"tok\") }",
		 "'url' is required"},
		{"reporter { kind = \"gitlab\", token = secret(\"tok\"), project = \"a b\" }",
		 "'project' may hold"},
		{"reporter { kind = \"github\", token = secret(\"tok\"), label = \"x\" }", "label"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *err = load_err(cases[i].decl);
		if (!config_test_matches(err, cases[i].want, false))
			TAP_FAIL("%s: got '%s', want '%s'", cases[i].decl, err, cases[i].want);
		free(err);
	}
}

TEST(queue_rules)
{
	struct db *db = NULL;
	if (db_open(NULL, "sqlite::memory:", NULL, &db) < 0) {
		TAP_FAIL("db_open: %s", db_open_errmsg());
		return;
	}
	int64_t dropped = -1, n = -1;
	CHECK_INT(db_outbound_add(db, "gh", "o/r|a1|ctx", "pending", "/p", "{}", 1, 3, &dropped),
		  1);
	CHECK(dropped == 0);
	/* the same state again: nothing queued */
	CHECK_INT(db_outbound_add(db, "gh", "o/r|a1|ctx", "pending", "/p", "{}", 2, 3, &dropped),
		  0);
	/* another reporter has its own memory */
	CHECK_INT(db_outbound_add(db, "gl", "o/r|a1|ctx", "pending", "/p", "{}", 2, 3, &dropped),
		  1);
	CHECK_INT(db_outbound_add(db, "gh", "o/r|a1|ctx", "success", "/p", "{\"s\":1}", 3, 3,
				  &dropped),
		  1);
	CHECK_INT(db_outbound_count(db, "gh", &n), 0);
	CHECK(n == 2);
	struct db_outbound o;
	CHECK_INT(db_outbound_next(db, "gh", &o), 1);
	CHECK_STR(o.state, "pending"); /* oldest first */
	CHECK_INT(o.attempts, 0);
	CHECK_INT(db_outbound_retry(db, o.id, 5000), 0);
	db_outbound_release(&o);
	CHECK_INT(db_outbound_next(db, "gh", &o), 1);
	CHECK_INT(o.attempts, 1);
	CHECK(o.next_at == 5000);
	CHECK_INT(db_outbound_delete(db, o.id), 0);
	db_outbound_release(&o);
	CHECK_INT(db_outbound_next(db, "gh", &o), 1);
	CHECK_STR(o.state, "success");
	CHECK_STR(o.body, "{\"s\":1}");
	/* refused: forgotten, so the same state may be queued again */
	CHECK_INT(db_outbound_delete(db, o.id), 0);
	CHECK_INT(db_outbound_forget(db, "gh", o.skey, o.state), 0);
	db_outbound_release(&o);
	CHECK_INT(db_outbound_add(db, "gh", "o/r|a1|ctx", "success", "/p", "{}", 4, 3, &dropped),
		  1);
	/* the cap: 3 rows; the oldest go */
	for (int i = 0; i < 5; i++) {
		char key[32];
		snprintf(key, sizeof(key), "o/r|b%d|ctx", i);
		CHECK_INT(
			db_outbound_add(db, "gh", key, "pending", "/p", "{}", 10 + i, 3, &dropped),
			1);
	}
	CHECK_INT(db_outbound_count(db, "gh", &n), 0);
	CHECK(n == 3);
	CHECK_INT(db_outbound_next(db, "gh", &o), 1);
	CHECK_STR(o.skey, "o/r|b2|ctx");
	db_outbound_release(&o);
	CHECK_INT(db_outbound_next(db, "none", &o), 0);
	db_close(db);
}

int main(void)
{
	setenv("KILN_SECRET_W1", "w1-pass", 1);
	setenv("KILN_SECRET_TOK", "tok-1", 1);
	RUN(repo_urls);
	RUN(states);
	RUN(requests);
	RUN(judge);
	RUN(config_errors);
	RUN(queue_rules);
	return tap_done();
}
