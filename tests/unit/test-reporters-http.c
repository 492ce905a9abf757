/*
 * The HTTP reporters (src/master/reporters/http.c, config-reporter-http.c):
 * each kind's body, the HMAC-SHA256 signature against RFC 4231's vector, a
 * matrix message's transaction id (fixed per message: every attempt of it
 * PUTs the same URL), and the config's errors.
 */
#include "tap.h"
#include "config-test.h"
#include "common/buf.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"
#include "master/reporters/http.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char *const tags[] = {"release"};
static const char *const blame[] = {"Ann <ann@example.org>", "bob"};

static struct report_build rb_fail(void)
{
	return (struct report_build){.buildid = 7,
				     .builderid = 2,
				     .number = 4,
				     .builder = "app<1>",
				     .tags = tags,
				     .ntags = 1,
				     .branch = "main",
				     .revision = "abc123",
				     .results = RESULTS_FAILURE,
				     .prev_results = RESULTS_SUCCESS,
				     .state_string = "failed 'make & test'",
				     .url = "http://ci/builders/2/builds/4",
				     .blamelist = blame,
				     .nblamelist = 2};
}

static const char base[] = "worker { name = \"w1\", password = secret(\"w1\") }\n"
			   "builder { name = \"app<1>\", workers = { \"w1\" },\n"
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

static json_t *body_of(const struct config_reporter *rc, const struct report_build *rb, json_t *row)
{
	struct buf out;
	buf_init(&out, HTTP_MAX_BODY);
	CHECK_INT(http_reporter_body(rc, rb, row, &out), 0);
	json_error_t e;
	json_t *o = json_loadb(out.ptr, out.len, 0, &e);
	CHECK(o != NULL);
	CHECK(memchr(out.ptr, '\n', out.len) == NULL); /* compact: one line for the masker */
	buf_release(&out);
	return o;
}

#define JSTR(o, k) json_string_value(json_object_get((o), (k)))

TEST(hmac_known_answer)
{
	/* RFC 4231, test case 2 */
	char sig[HTTP_SIGNATURE_SIZE];
	const char *data = "what do ya want for nothing?";
	http_reporter_sign("Jefe", data, strlen(data), sig);
	CHECK_STR(sig, "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	/* RFC 4231, test case 1: key 20 x 0x0b, "Hi There" */
	char key[21];
	memset(key, 0x0b, 20);
	key[20] = '\0';
	http_reporter_sign(key, "Hi There", 8, sig);
	CHECK_STR(sig, "sha256=b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

TEST(http_body_and_signature)
{
	setenv("KILN_SECRET_HOOK_KEY", "Jefe", 1);
	struct config *cfg =
		load("reporter { kind = \"http\", name = \"push\", url = \"http://127.0.0.1:9/h\","
		     " secret = secret(\"hook_key\"), headers = { [\"X-Team\"] = \"ci\" } }");
	if (!cfg)
		return;
	const struct config_reporter *rc = &cfg->reporter[0];
	CHECK_INT(rc->kind, CONFIG_REPORTER_HTTP);
	CHECK_STR(rc->http.url, "http://127.0.0.1:9/h");
	CHECK(!rc->http.url_secret);
	CHECK_STR(rc->http.hmac_key, "Jefe");
	CHECK_INT(rc->http.nheaders, 1);
	CHECK_STR(rc->http.header_names[0], "X-Team");
	CHECK_STR(rc->http.header_values[0], "ci");
	struct report_build rb = rb_fail();
	json_t *row = json_pack("{s:I, s:I, s:I, s:s, s:b, s:{s:[s,s]}}", "buildid", (json_int_t)7,
				"builderid", (json_int_t)2, "number", (json_int_t)4, "state_string",
				"failed 'make & test'", "complete", 1, "properties", "branch",
				"main", "Build");
	json_t *o = body_of(rc, &rb, row);
	CHECK_INT(json_integer_value(json_object_get(o, "buildid")), 7);
	CHECK_INT(json_integer_value(json_object_get(o, "number")), 4);
	CHECK_INT(json_integer_value(json_object_get(o, "results")), RESULTS_FAILURE);
	CHECK_INT(json_integer_value(json_object_get(o, "prev_results")), RESULTS_SUCCESS);
	CHECK_STR(JSTR(o, "results_text"), "failure");
	CHECK_STR(JSTR(o, "url"), "http://ci/builders/2/builds/4");
	CHECK_STR(JSTR(o, "state_string"), "failed 'make & test'");
	CHECK(json_is_true(json_object_get(o, "complete")));
	CHECK_STR(JSTR(json_object_get(o, "builder"), "name"), "app<1>");
	CHECK_STR(json_string_value(json_array_get(
			  json_object_get(json_object_get(o, "builder"), "tags"), 0)),
		  "release");
	CHECK_INT(json_array_size(json_object_get(o, "blamelist")), 2);
	CHECK_STR(json_string_value(json_array_get(json_object_get(o, "blamelist"), 0)),
		  "Ann <ann@example.org>");
	CHECK_STR(json_string_value(json_array_get(
			  json_object_get(json_object_get(o, "properties"), "branch"), 0)),
		  "main");
	json_decref(o);
	json_decref(row);

	/* the message: signed over exactly the body, URL as configured */
	const char *body = "{\"a\":1}";
	struct http_msg *msg = http_reporter_msg_new(rc, 7, body, strlen(body));
	char want[HTTP_SIGNATURE_SIZE];
	http_reporter_sign("Jefe", body, strlen(body), want);
	CHECK_STR(msg->signature, want);
	CHECK_STR(msg->url, "http://127.0.0.1:9/h");
	CHECK_INT(msg->len, strlen(body));
	http_reporter_msg_free(msg);
	config_free(cfg);

	/* without a key: unsigned */
	cfg = load("reporter { kind = \"http\", url = \"https://ci.example.org/hook\" }");
	if (!cfg)
		return;
	msg = http_reporter_msg_new(&cfg->reporter[0], 7, body, strlen(body));
	CHECK_STR(msg->signature, "");
	http_reporter_msg_free(msg);
	config_free(cfg);
}

TEST(slack_mattermost_bodies)
{
	setenv("KILN_SECRET_SLACK", "http://127.0.0.1:9/services/T0/B0/XXXX", 1);
	struct config *cfg = load("reporter { kind = \"slack\", url = secret(\"slack\"),"
				  " username = \"kiln\", channel = \"#ci\" }\n"
				  "reporter { kind = \"mattermost\", url = secret(\"slack\") }");
	if (!cfg)
		return;
	struct report_build rb = rb_fail();
	const struct config_reporter *rc = &cfg->reporter[0];
	CHECK_INT(rc->kind, CONFIG_REPORTER_SLACK);
	CHECK(rc->http.url_secret);
	json_t *o = body_of(rc, &rb, NULL);
	CHECK_STR(JSTR(o, "text"), "Kiln: <http://ci/builders/2/builds/4|app&lt;1&gt; #4> failure "
				   "(main): failed 'make &amp; test'");
	CHECK_STR(JSTR(o, "username"), "kiln");
	CHECK_STR(JSTR(o, "channel"), "#ci");
	json_t *att = json_array_get(json_object_get(o, "attachments"), 0);
	CHECK_STR(JSTR(att, "color"), "#d00000");
	CHECK_STR(JSTR(att, "title"), "app<1> #4");
	CHECK_STR(JSTR(att, "title_link"), "http://ci/builders/2/builds/4");
	CHECK_STR(JSTR(att, "fallback"), "app<1> #4 failure (main): failed 'make & test'");
	json_t *fields = json_object_get(att, "fields");
	CHECK_INT(json_array_size(fields), 4);
	CHECK_STR(JSTR(json_array_get(fields, 3), "value"), "Ann <ann@example.org>, bob");
	json_decref(o);

	rc = &cfg->reporter[1];
	CHECK_INT(rc->kind, CONFIG_REPORTER_MATTERMOST);
	CHECK_STR(rc->name, "mattermost");
	o = body_of(rc, &rb, NULL);
	CHECK_STR(JSTR(o, "text"),
		  "Kiln: [app<1> #4](http://ci/builders/2/builds/4) failure (main): failed "
		  "'make & test'");
	CHECK(json_object_get(o, "username") == NULL);
	CHECK(json_object_get(o, "channel") == NULL);
	json_decref(o);
	config_free(cfg);
}

TEST(matrix_body_and_txnid)
{
	setenv("KILN_SECRET_MATRIX", "syt_token", 1);
	struct config *cfg = load("reporter { kind = \"matrix\", homeserver = "
				  "\"http://127.0.0.1:9/\", room = \"!room:example.org\","
				  " token = secret(\"matrix\") }");
	if (!cfg)
		return;
	const struct config_reporter *rc = &cfg->reporter[0];
	CHECK_STR(rc->http.url, "http://127.0.0.1:9");
	CHECK_STR(rc->http.token, "syt_token");
	struct report_build rb = rb_fail();
	json_t *o = body_of(rc, &rb, NULL);
	CHECK_STR(JSTR(o, "msgtype"), "m.text");
	CHECK_STR(JSTR(o, "format"), "org.matrix.custom.html");
	CHECK_STR(JSTR(o, "body"), "app<1> #4 failure (main): failed 'make & test' "
				   "http://ci/builders/2/builds/4");
	CHECK_STR(JSTR(o, "formatted_body"),
		  "<a href=\"http://ci/builders/2/builds/4\">app&lt;1&gt; #4</a> <b>failure</b> "
		  "(main): failed 'make &amp; test'");
	json_decref(o);

	/* the URL (and its transaction id) is the message's: the queue's setup
	 * uses msg->url on every attempt; another message gets another id */
	struct http_msg *a = http_reporter_msg_new(rc, 7, "{}", 2);
	struct http_msg *b = http_reporter_msg_new(rc, 7, "{}", 2);
	const char *pfx = "http://127.0.0.1:9/_matrix/client/v3/rooms/%21room%3Aexample.org/send/"
			  "m.room.message/kiln-7-";
	CHECK(!strncmp(a->url, pfx, strlen(pfx)));
	CHECK(!strncmp(b->url, pfx, strlen(pfx)));
	CHECK_INT(strlen(a->url), strlen(pfx) + 16);
	CHECK(strcmp(a->url, b->url) != 0);
	CHECK_STR(a->signature, "");
	http_reporter_msg_free(a);
	http_reporter_msg_free(b);
	config_free(cfg);
}

TEST(config_errors)
{
	static const struct {
		const char *decl, *want;
	} cases[] = {
		{"reporter { kind = \"http\" }", "'url' is required"},
		{"reporter { kind = \"http\", url = \"ftp://x/\" }",
		 "must be an http:// or https://"},
		{"reporter { kind = \"http\", url = \"https://u:pw@x/h\" }",
		 "'url' holds a login (user:password@)"},
		{"reporter { kind = \"http\", url = \"http://x/\", secret = \"plain\" }",
		 "'secret' must come from secret(...)"},
		{"reporter { kind = \"http\", url = \"http://x/\", headers = { Authorization = "
		 "\"Bearer x\" } }",
		 "'Authorization' looks like a credential"},
		{"reporter { kind = \"http\", url = \"http://x/\", headers = { [\"Bad Name\"] = "
		 "\"x\" } }",
		 "is not a header name"},
		{"reporter { kind = \"http\", url = \"http://x/\", headers = { [\"X-A\"] = "
		 "\"a\\r\\nB: c\" } }",
		 "must be one line"},
		{"reporter { kind = \"http\", url = \"http://x/\", headers = { [\"Content-Type\"] "
		 "= "
		 "\"x\" } }",
		 "is set by Kiln itself"},
		{"reporter { kind = \"slack\", url = \"https://hooks.slack.com/services/T/B/X\" }",
		 "'url' must come from secret(...)"},
		{"reporter { kind = \"mattermost\" }", "'url' is required"},
		{"reporter { kind = \"slack\", url = secret(\"slack\"), icon = \"x\" }",
		 "unknown key"},
		{"reporter { kind = \"matrix\", room = \"!r:x\", token = secret(\"matrix\") }",
		 "'homeserver' is required"},
		{"reporter { kind = \"matrix\", homeserver = \"http://m\", room = \"#alias:x\", "
		 "token = secret(\"matrix\") }",
		 "'room' must be a room id"},
		{"reporter { kind = \"matrix\", homeserver = \"http://m\", room = \"!r:x\", token "
		 "= "
		 "\"t\" }",
		 "'token' must come from secret(...)"},
		{"reporter { kind = \"pigeon\" }", "unknown kind 'pigeon'"},
	};
	setenv("KILN_SECRET_SLACK", "http://127.0.0.1:9/services/T0/B0/XXXX", 1);
	setenv("KILN_SECRET_MATRIX", "syt_token", 1);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *err = load_err(cases[i].decl);
		if (!config_test_matches(err, cases[i].want, false))
			TAP_FAIL("%s: want '%s', got '%s'", cases[i].decl, cases[i].want, err);
		free(err);
	}
}

int main(void)
{
	setenv("KILN_SECRET_W1", "w1-password", 1);
	RUN(hmac_known_answer);
	RUN(http_body_and_signature);
	RUN(slack_mattermost_bodies);
	RUN(matrix_body_and_txnid);
	RUN(config_errors);
	return tap_done();
}
