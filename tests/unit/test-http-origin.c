/*
 * http-origin.c: which Host and Origin headers the master answers (DNS
 * rebinding, cross-site requests to /ws, the JSON-RPC and change hooks).
 */
#include "master/http-origin.h"

#include "tap.h"

static const struct http_origin_cfg none = {NULL, NULL};
static const struct http_origin_cfg pub = {"https://ci.example.org/kiln/", "127.0.0.1"};
static const struct http_origin_cfg port = {"http://Build.Example.org:8010", "0.0.0.0"};

TEST(host_ip_literals_and_localhost)
{
	CHECK(http_origin_host_ok(&none, NULL));
	CHECK(http_origin_host_ok(&none, ""));
	CHECK(http_origin_host_ok(&none, "127.0.0.1"));
	CHECK(http_origin_host_ok(&none, "127.0.0.1:8010"));
	CHECK(http_origin_host_ok(&none, "10.1.2.3:80"));
	CHECK(http_origin_host_ok(&none, "[::1]"));
	CHECK(http_origin_host_ok(&none, "[::1]:8010"));
	CHECK(http_origin_host_ok(&none, "::1"));      /* without brackets, as kiln's */
	CHECK(http_origin_host_ok(&none, "::1:8010")); /* client once wrote it */
	CHECK(http_origin_host_ok(&none, "fe80::1:80"));
	CHECK(http_origin_host_ok(&none, "localhost"));
	CHECK(http_origin_host_ok(&none, "LOCALHOST:8010"));
	CHECK(http_origin_host_ok(&none, "localhost.:8010"));
}

TEST(host_rebinding_names_refused)
{
	CHECK(!http_origin_host_ok(&none, "evil.example"));
	CHECK(!http_origin_host_ok(&none, "evil.example:8010"));
	CHECK(!http_origin_host_ok(&none, "127.0.0.1.evil.example"));
	CHECK(!http_origin_host_ok(&none, "localhost.evil.example"));
	CHECK(!http_origin_host_ok(&pub, "evil.example"));
	CHECK(!http_origin_host_ok(&pub, "ci.example.org.evil.example"));
	CHECK(!http_origin_host_ok(&pub, "example.org"));
}

TEST(host_malformed_refused)
{
	CHECK(!http_origin_host_ok(&none, "127.0.0.1:"));
	CHECK(!http_origin_host_ok(&none, "127.0.0.1:99999"));
	CHECK(!http_origin_host_ok(&none, "127.0.0.1:80x"));
	CHECK(!http_origin_host_ok(&none, "[::1"));
	CHECK(!http_origin_host_ok(&none, "[::1]x"));
	CHECK(!http_origin_host_ok(&none, "[evil.example]"));
	CHECK(!http_origin_host_ok(&none, ":8010"));
	CHECK(!http_origin_host_ok(&none, "a b"));
	CHECK(!http_origin_host_ok(&none, "user@127.0.0.1"));
	CHECK(!http_origin_host_ok(&none, "evil.example::1"));
	CHECK(!http_origin_host_ok(&none, "a:b:c"));
}

TEST(host_configured_names)
{
	CHECK(http_origin_host_ok(&pub, "ci.example.org"));
	CHECK(http_origin_host_ok(&pub, "CI.example.org:443"));
	CHECK(http_origin_host_ok(&pub, "ci.example.org."));
	CHECK(http_origin_host_ok(&port, "build.example.org:8010"));
	/* the listen host is numeric or localhost, both allowed anyway */
	struct http_origin_cfg l = {NULL, "localhost"};
	CHECK(http_origin_host_ok(&l, "localhost:1"));
	/* user info in the url is not the host */
	struct http_origin_cfg u = {"http://evil.example@ci.example.org/", NULL};
	CHECK(http_origin_host_ok(&u, "ci.example.org"));
	CHECK(!http_origin_host_ok(&u, "evil.example"));
	/* a url that does not parse allows nothing more */
	struct http_origin_cfg bad = {"ftp://ci.example.org/", NULL};
	CHECK(!http_origin_host_ok(&bad, "ci.example.org"));
}

TEST(origin_same_as_host)
{
	CHECK(http_origin_origin_ok(&none, "127.0.0.1:8010", NULL));
	CHECK(http_origin_origin_ok(&none, "127.0.0.1:8010", ""));
	CHECK(http_origin_origin_ok(&none, "127.0.0.1:8010", "http://127.0.0.1:8010"));
	CHECK(http_origin_origin_ok(&none, "localhost:8010", "http://LocalHost:8010"));
	CHECK(http_origin_origin_ok(&none, "[::1]:8010", "http://[::1]:8010"));
	CHECK(http_origin_origin_ok(&none, "127.0.0.1", "http://127.0.0.1"));
	CHECK(http_origin_origin_ok(&none, "127.0.0.1", "http://127.0.0.1:80"));
	CHECK(!http_origin_origin_ok(&none, "127.0.0.1:8010", "http://127.0.0.1:8011"));
	CHECK(!http_origin_origin_ok(&none, "127.0.0.1:8010", "http://localhost:8010"));
	CHECK(!http_origin_origin_ok(&none, "127.0.0.1:8010", "http://evil.example"));
	CHECK(!http_origin_origin_ok(&none, "127.0.0.1:8010", "http://evil.example:8010"));
	CHECK(!http_origin_origin_ok(&none, NULL, "http://127.0.0.1:8010"));
}

TEST(origin_refused_forms)
{
	CHECK(!http_origin_origin_ok(&none, "127.0.0.1:8010", "null"));
	CHECK(!http_origin_origin_ok(&none, "127.0.0.1:8010", "file://"));
	CHECK(!http_origin_origin_ok(&none, "127.0.0.1:8010", "http://127.0.0.1:8010/x"));
	CHECK(!http_origin_origin_ok(&none, "127.0.0.1:8010", "ws://127.0.0.1:8010"));
	CHECK(!http_origin_origin_ok(&none, "127.0.0.1:8010", "http://"));
}

TEST(origin_configured_url)
{
	/* behind a TLS proxy: Host is the backend, Origin the public name */
	CHECK(http_origin_origin_ok(&pub, "127.0.0.1:8010", "https://ci.example.org"));
	CHECK(http_origin_origin_ok(&pub, "127.0.0.1:8010", "https://ci.example.org:443"));
	CHECK(!http_origin_origin_ok(&pub, "127.0.0.1:8010", "http://ci.example.org"));
	CHECK(!http_origin_origin_ok(&pub, "127.0.0.1:8010", "https://ci.example.org:8443"));
	CHECK(http_origin_origin_ok(&port, "10.0.0.1:8010", "http://build.example.org:8010"));
	CHECK(!http_origin_origin_ok(&port, "10.0.0.1:8010", "http://build.example.org"));
}

TEST(host_wildcard_listen)
{
	/* on every address with no url, any name is the master's own; a url
	 * (or a specific listen address) brings the check back */
	const struct http_origin_cfg any4 = {.url = NULL, .listen_host = "0.0.0.0"};
	const struct http_origin_cfg any6 = {.url = NULL, .listen_host = "::"};
	const struct http_origin_cfg anyurl = {.url = "https://ci.example.org/",
					       .listen_host = "0.0.0.0"};
	CHECK(http_origin_host_ok(&any4, "buildhost.lan:8010"));
	CHECK(http_origin_host_ok(&any6, "buildhost.lan"));
	CHECK(!http_origin_host_ok(&anyurl, "evil.example"));
	CHECK(http_origin_host_ok(&anyurl, "ci.example.org"));
	CHECK(!http_origin_host_ok(&none, "buildhost.lan"));
	/* the cross-site rules still hold there */
	CHECK_INT(http_origin_check(&any4, "buildhost.lan:8010", "http://evil.example", NULL, true),
		  HTTP_ORIGIN_BAD_ORIGIN);
}

TEST(check_whole_request)
{
	CHECK_INT(http_origin_check(&none, "evil.example:8010", NULL, NULL, false),
		  HTTP_ORIGIN_BAD_HOST);
	CHECK_INT(http_origin_check(&none, "127.0.0.1:8010", "http://evil.example", NULL, false),
		  HTTP_ORIGIN_OK);
	CHECK_INT(http_origin_check(&none, "127.0.0.1:8010", "http://evil.example", NULL, true),
		  HTTP_ORIGIN_BAD_ORIGIN);
	CHECK_INT(http_origin_check(&none, "127.0.0.1:8010", NULL, "cross-site", true),
		  HTTP_ORIGIN_CROSS_SITE);
	CHECK_INT(http_origin_check(&none, "127.0.0.1:8010", NULL, "same-origin", true),
		  HTTP_ORIGIN_OK);
	CHECK_INT(http_origin_check(&none, "127.0.0.1:8010", "http://127.0.0.1:8010", "same-origin",
				    true),
		  HTTP_ORIGIN_OK);
	CHECK_INT(http_origin_check(&none, "127.0.0.1:8010", NULL, NULL, true), HTTP_ORIGIN_OK);
	CHECK(*http_origin_verdict_str(HTTP_ORIGIN_BAD_HOST));
	CHECK(*http_origin_verdict_str(HTTP_ORIGIN_BAD_ORIGIN));
	CHECK(*http_origin_verdict_str(HTTP_ORIGIN_CROSS_SITE));
}

int main(void)
{
	RUN(host_ip_literals_and_localhost);
	RUN(host_rebinding_names_refused);
	RUN(host_malformed_refused);
	RUN(host_wildcard_listen);
	RUN(host_configured_names);
	RUN(origin_same_as_host);
	RUN(origin_refused_forms);
	RUN(origin_configured_url);
	RUN(check_whole_request);
	return tap_done();
}
