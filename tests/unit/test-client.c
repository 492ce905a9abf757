/*
 * Unit tests for src/client: the pure helpers (settings precedence and
 * client.conf, result names, durations, argument parsing, tables, log
 * printing), the HTTP error mapping against a real loopback peer, and the
 * commands' entry points (usage errors, one-shot runs against canned
 * Buildbot-shaped answers).
 */
#include "tap.h"
#include "client/cli.h"
#include "client/cmd.h"
#include "client/http.h"
#include "client/ws.h"
#include "common/err.h"
#include "common/xalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- a real HTTP peer on 127.0.0.1: answers N connections with canned responses ---- */

#define PEER_MAX 8

struct peer {
	int fd;
	int port;
	size_t n;
	const char *responses[PEER_MAX]; /* borrowed: literals */
	char *requests[PEER_MAX];        /* owned: what each client sent */
	pthread_t thread;
	bool joined;
};

static void *peer_main(void *arg)
{
	struct peer *p = arg;

	for (size_t i = 0; i < p->n; i++) {
		char buf[65536];
		size_t len = 0;
		int c = accept(p->fd, NULL, NULL);
		if (c < 0)
			break;
		/* read headers, then Content-Length bytes of body */
		for (;;) {
			ssize_t r = read(c, buf + len, sizeof(buf) - 1 - len);
			if (r <= 0)
				break;
			len += (size_t)r;
			buf[len] = '\0';
			char *eoh = strstr(buf, "\r\n\r\n");
			if (!eoh)
				continue;
			char *cl = strcasestr(buf, "Content-Length:");
			size_t want = cl ? strtoul(cl + 15, NULL, 10) : 0;
			if (len >= (size_t)(eoh + 4 - buf) + want)
				break;
		}
		buf[len] = '\0';
		p->requests[i] = xstrdup(buf);
		const char *resp = p->responses[i];
		(void)!write(c, resp, strlen(resp));
		close(c);
	}
	return NULL;
}

static void peer_start(struct peer *p, size_t n, const char *const *responses)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);

	*p = (struct peer){.n = n};
	for (size_t i = 0; i < n; i++)
		p->responses[i] = responses[i];
	p->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (bind(p->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(p->fd, 8) < 0)
		abort();
	getsockname(p->fd, (struct sockaddr *)&sa, &sl);
	p->port = ntohs(sa.sin_port);
	pthread_create(&p->thread, NULL, peer_main, p);
}

/* Waits until every canned answer went out: requests[] is then complete. */
static void peer_wait(struct peer *p)
{
	if (!p->joined)
		pthread_join(p->thread, NULL);
	p->joined = true;
}

static void peer_stop(struct peer *p)
{
	shutdown(p->fd, SHUT_RDWR); /* wakes accept() if a client never came */
	peer_wait(p);
	close(p->fd);
	for (size_t i = 0; i < PEER_MAX; i++)
		free(p->requests[i]);
}

static char *peer_url(const struct peer *p)
{
	return xasprintf("http://127.0.0.1:%d", p->port);
}

#define HTTP_JSON(status, body)                                                                    \
	"HTTP/1.1 " status "\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n" body

/* A port nobody listens on: bound, then closed. */
static int dead_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	getsockname(fd, (struct sockaddr *)&sa, &sl);
	close(fd);
	return ntohs(sa.sin_port);
}

/* ---- running a command with its output captured ---- */

struct captured {
	int status;
	char *out; /* owned */
	char *err; /* owned */
};

static char *read_all_fd(int fd)
{
	char *s = NULL;
	size_t len = 0;
	char chunk[4096];
	ssize_t n;

	lseek(fd, 0, SEEK_SET);
	while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
		s = xrealloc(s, len + (size_t)n + 1);
		memcpy(s + len, chunk, (size_t)n);
		len += (size_t)n;
	}
	if (!s)
		s = xstrdup("");
	s[len] = '\0';
	return s;
}

static struct captured run_cmd(const struct cmd *cmd, int argc, const char **argv)
{
	char outp[] = "/tmp/kiln-test-client-out.XXXXXX",
	     errp[] = "/tmp/kiln-test-client-err.XXXXXX";
	int ofd = mkstemp(outp), efd = mkstemp(errp);
	int save_out = dup(1), save_err = dup(2);
	char **copy = xcalloc((size_t)argc + 1, sizeof(char *));
	struct captured c;

	unlink(outp);
	unlink(errp);
	for (int i = 0; i < argc; i++)
		copy[i] = xstrdup(argv[i]);
	fflush(stdout);
	fflush(stderr);
	dup2(ofd, 1);
	dup2(efd, 2);
	c.status = cmd_run(cmd, argc, copy);
	fflush(stdout);
	fflush(stderr);
	dup2(save_out, 1);
	dup2(save_err, 2);
	close(save_out);
	close(save_err);
	c.out = read_all_fd(ofd);
	c.err = read_all_fd(efd);
	close(ofd);
	close(efd);
	for (int i = 0; i < argc; i++)
		free(copy[i]);
	free(copy);
	return c;
}

static void captured_release(struct captured *c)
{
	free(c->out);
	free(c->err);
}

/* ---- pure helpers ---- */

TEST(result_names_and_exit_statuses)
{
	static const char *const names[] = {"SUCCESS",   "WARNINGS", "FAILURE",  "SKIPPED",
					    "EXCEPTION", "RETRY",    "CANCELLED"};
	for (int i = 0; i < 7; i++)
		CHECK_STR(cli_result_name(i), names[i]);
	CHECK_STR(cli_result_name(-1), "UNKNOWN");
	CHECK_STR(cli_result_name(7), "UNKNOWN");
	CHECK_INT(cli_result_exit(CLI_SUCCESS), 0);
	CHECK_INT(cli_result_exit(CLI_WARNINGS), 0);
	for (int i = CLI_FAILURE; i <= CLI_CANCELLED; i++)
		CHECK_INT(cli_result_exit(i), 1);
	CHECK_INT(cli_result_exit(-1), 1);
}

TEST(durations)
{
	char b[32];
	struct {
		double s;
		const char *want;
	} cases[] = {
		{0, "0s"},
		{0.44, "0.4s"},
		{9.99, "9.9s"},
		{12, "12s"},
		{12.7, "12s"},
		{59, "59s"},
		{60, "1m00s"},
		{65, "1m05s"},
		{3599, "59m59s"},
		{3600, "1h00m"},
		{4020, "1h07m"},
		{86399, "23h59m"},
		{3 * 86400 + 4 * 3600, "3d04h"},
		{-1, "-"},
		{NAN, "-"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		cli_format_duration(cases[i].s, b, sizeof(b));
		CHECK_STR(b, cases[i].want);
	}
	cli_format_duration(3600, b, 3); /* truncated, still terminated */
	CHECK_STR(b, "1h");
}

TEST(times_are_local)
{
	char b[32];

	setenv("TZ", "UTC", 1);
	tzset();
	cli_format_time(1700000000, b, sizeof(b));
	CHECK_STR(b, "2023-11-14 22:13:20");
	cli_format_time(1700000000.9, b, sizeof(b));
	CHECK_STR(b, "2023-11-14 22:13:20");
	cli_format_time(0, b, sizeof(b));
	CHECK_STR(b, "-");
	setenv("TZ", "Europe/Paris", 1);
	tzset();
	cli_format_time(1700000000, b, sizeof(b));
	CHECK_STR(b, "2023-11-14 23:13:20");
	setenv("TZ", "UTC", 1);
	tzset();
}

TEST(integers_and_seconds)
{
	long long v = -7;
	double d = -1;

	CHECK_INT(cli_parse_int("42", 1, 100, &v), 0);
	CHECK_INT(v, 42);
	CHECK_INT(cli_parse_int("0", 1, 100, &v), -ERANGE);
	CHECK_INT(cli_parse_int("101", 1, 100, &v), -ERANGE);
	CHECK_INT(cli_parse_int("-3", -5, 5, &v), 0);
	CHECK_INT(v, -3);
	CHECK_INT(cli_parse_int("", 0, 9, &v), -EINVAL);
	CHECK_INT(cli_parse_int(" 4", 0, 9, &v), -EINVAL);
	CHECK_INT(cli_parse_int("+4", 0, 9, &v), -EINVAL);
	CHECK_INT(cli_parse_int("4x", 0, 9, &v), -EINVAL);
	CHECK_INT(cli_parse_int("99999999999999999999", 0, 9, &v), -ERANGE);
	CHECK_INT(v, -3); /* untouched on failure */
	CHECK_INT(cli_parse_seconds("2", &d), 0);
	CHECK(d == 2);
	CHECK_INT(cli_parse_seconds("0.25", &d), 0);
	CHECK(d == 0.25);
	CHECK_INT(cli_parse_seconds("-1", &d), -EINVAL);
	CHECK_INT(cli_parse_seconds("1s", &d), -EINVAL);
	CHECK_INT(cli_parse_seconds("inf", &d), -EINVAL);
	CHECK_INT(cli_parse_seconds("", &d), -EINVAL);
}

TEST(properties)
{
	char *k = NULL, *v = NULL;

	CHECK_INT(cli_parse_property("branch=main", &k, &v), 0);
	CHECK_STR(k, "branch");
	CHECK_STR(v, "main");
	free(k);
	free(v);
	CHECK_INT(cli_parse_property("a=b=c", &k, &v), 0);
	CHECK_STR(k, "a");
	CHECK_STR(v, "b=c");
	free(k);
	free(v);
	CHECK_INT(cli_parse_property("empty=", &k, &v), 0);
	CHECK_STR(v, "");
	free(k);
	free(v);
	CHECK_INT(cli_parse_property("=x", &k, &v), -EINVAL);
	CHECK_INT(cli_parse_property("novalue", &k, &v), -EINVAL);
}

TEST(build_references)
{
	char *builder = (char *)"unchanged";
	long long n = 0;

	CHECK_INT(cli_parse_build_ref("17", &builder, &n), 0);
	CHECK(builder == NULL);
	CHECK_INT(n, 17);
	CHECK_INT(cli_parse_build_ref("ok/3", &builder, &n), 0);
	CHECK_STR(builder, "ok");
	CHECK_INT(n, 3);
	free(builder);
	CHECK_INT(cli_parse_build_ref("team/linux/12", &builder, &n), 0);
	CHECK_STR(builder, "team/linux");
	CHECK_INT(n, 12);
	free(builder);
	CHECK_INT(cli_parse_build_ref("0", &builder, &n), -EINVAL);
	CHECK_INT(cli_parse_build_ref("x", &builder, &n), -EINVAL);
	CHECK_INT(cli_parse_build_ref("/3", &builder, &n), -EINVAL);
	CHECK_INT(cli_parse_build_ref("ok/", &builder, &n), -EINVAL);
	CHECK_INT(cli_parse_build_ref("ok/x", &builder, &n), -EINVAL);
}

TEST(conf_file_syntax)
{
	char *v = NULL;
	unsigned line = 0;

	CHECK_INT(cli_conf_get("url = http://a:1\n", "url", &v, NULL), 1);
	CHECK_STR(v, "http://a:1");
	free(v);
	CHECK_INT(cli_conf_get("# comment\n\n  token=  \"s3cret\"  \r\nurl='http://q'", "token", &v,
			       NULL),
		  1);
	CHECK_STR(v, "s3cret");
	free(v);
	CHECK_INT(cli_conf_get("# comment\nurl='http://q'", "url", &v, NULL), 1);
	CHECK_STR(v, "http://q");
	free(v);
	CHECK_INT(cli_conf_get("url = one\nurl = two\n", "url", &v, NULL), 1);
	CHECK_STR(v, "two");
	free(v);
	CHECK_INT(cli_conf_get("urlx = no\n; other\n", "url", &v, NULL), 0);
	CHECK_INT(cli_conf_get("", "url", &v, NULL), 0);
	CHECK_INT(cli_conf_get("url = a\n\njunk line\n", "url", &v, &line), KILN_EPARSE);
	CHECK_INT(line, 3);
}

static char *tmpdir_new(void)
{
	char *d = xstrdup("/tmp/kiln-test-client.XXXXXX");
	if (!mkdtemp(d))
		abort();
	return d;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
}

TEST(settings_precedence)
{
	_cleanup_free_ char *dir = tmpdir_new();
	_cleanup_free_ char *conf = xasprintf("%s/client.conf", dir);
	_cleanup_free_ char *bad = xasprintf("%s/bad.conf", dir);
	_cleanup_free_ char *missing = xasprintf("%s/nope/client.conf", dir);
	char *v = NULL, *err = NULL;

	write_file(conf, "url = http://from-file:1\n");
	write_file(bad, "url http://oops\n");

	CHECK_INT(cli_setting("http://flag", "http://env", conf, "url", "d", &v, &err), 0);
	CHECK_STR(v, "http://flag");
	free(v);
	CHECK_INT(cli_setting(NULL, "http://env", conf, "url", "d", &v, &err), 0);
	CHECK_STR(v, "http://env");
	free(v);
	CHECK_INT(cli_setting(NULL, "", conf, "url", "d", &v, &err), 0); /* empty env: unset */
	CHECK_STR(v, "http://from-file:1");
	free(v);
	CHECK_INT(cli_setting(NULL, NULL, conf, "token", NULL, &v, &err), 0);
	CHECK(v == NULL);
	CHECK_INT(cli_setting(NULL, NULL, missing, "url", "http://default", &v, &err), 0);
	CHECK_STR(v, "http://default");
	free(v);
	CHECK_INT(cli_setting(NULL, NULL, NULL, "url", "http://default", &v, &err), 0);
	CHECK_STR(v, "http://default");
	free(v);

	CHECK_INT(cli_setting(NULL, NULL, bad, "url", "d", &v, &err), KILN_EPARSE);
	_cleanup_free_ char *want = xasprintf("%s:1: expected 'key = value'", bad);
	CHECK_STR(err, want);
	free(err);
	err = NULL;
	CHECK(cli_setting(NULL, NULL, dir, "url", "d", &v, &err) < 0); /* a directory */
	CHECK(err && strstr(err, "cannot read"));
	free(err);

	unlink(conf);
	unlink(bad);
	rmdir(dir);
}

TEST(conf_path_from_environment)
{
	char *p;

	setenv("KILN_CLIENT_CONF", "/x/y.conf", 1);
	p = cli_conf_path();
	CHECK_STR(p, "/x/y.conf");
	free(p);
	unsetenv("KILN_CLIENT_CONF");
	setenv("XDG_CONFIG_HOME", "/xdg", 1);
	p = cli_conf_path();
	CHECK_STR(p, "/xdg/kiln/client.conf");
	free(p);
	unsetenv("XDG_CONFIG_HOME");
	setenv("HOME", "/home/u", 1);
	p = cli_conf_path();
	CHECK_STR(p, "/home/u/.config/kiln/client.conf");
	free(p);
	unsetenv("HOME");
	CHECK(cli_conf_path() == NULL);
}

TEST(tables_pad_all_but_the_last_column)
{
	struct cli_table t;
	char *s = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&s, &n);

	cli_table_init(&t, 3);
	cli_table_add(&t, (const char *const[]){"ID", "NAME", "STATUS"});
	cli_table_add(&t, (const char *const[]){"1234", "x", "multi\nline"});
	cli_table_add(&t, (const char *const[]){"5", NULL, "ok"});
	cli_table_print(&t, f);
	fclose(f);
	CHECK_STR(s, "ID    NAME  STATUS\n"
		     "1234  x     multi line\n"
		     "5           ok\n");
	free(s);
	cli_table_release(&t);
}

static char *log_text(const char *content, char type, bool color, size_t *ret_lines)
{
	char *s = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&s, &n);

	*ret_lines = cli_log_write(f, content, strlen(content), type, color);
	fclose(f);
	return s;
}

TEST(log_lines)
{
	size_t lines;
	char *s;

	s = log_text("hcmd\noout\neerr\no\nhexit 0\n", 's', false, &lines);
	CHECK_STR(s, "cmd\nout\nerr\n\nexit 0\n");
	CHECK_INT(lines, 5);
	free(s);
	s = log_text("hhead\neerr\noout", 's', true, &lines);
	CHECK_STR(s, "\033[2mhead\033[0m\n\033[31merr\033[0m\nout\n");
	CHECK_INT(lines, 3);
	free(s);
	s = log_text("plain text\nsecond\n", 't', false, &lines);
	CHECK_STR(s, "plain text\nsecond\n");
	CHECK_INT(lines, 2);
	free(s);
	s = log_text("\n", 's', false, &lines); /* a line without stream char */
	CHECK_STR(s, "\n");
	CHECK_INT(lines, 1);
	free(s);
	s = log_text("", 's', false, &lines);
	CHECK_STR(s, "");
	CHECK_INT(lines, 0);
	free(s);
}

/* ---- HTTP against a real peer ---- */

TEST(http_urls)
{
	struct http_client c;

	CHECK_INT(http_client_init(&c, "http://h:1///", ""), 0);
	CHECK_STR(c.base, "http://h:1");
	CHECK(c.token == NULL);
	http_client_release(&c);
	CHECK_INT(http_client_init(&c, "https://h/prefix/", "t"), 0);
	CHECK_STR(c.base, "https://h/prefix");
	CHECK_STR(c.token, "t");
	http_client_release(&c);
	CHECK_INT(http_client_init(&c, "h:8010", NULL), -EINVAL);
	CHECK(strstr(http_client_error(&c), "invalid master URL 'h:8010'"));
	http_client_release(&c);
	char *e = http_escape("a b/c&d");
	CHECK_STR(e, "a%20b%2Fc%26d");
	free(e);
}

TEST(http_unreachable_master)
{
	struct http_client c;
	json_t *j = NULL;
	int port = dead_port();
	_cleanup_free_ char *url = xasprintf("http://127.0.0.1:%d", port);
	_cleanup_free_ char *want = xasprintf("cannot reach master at %s: Connection refused", url);

	http_client_init(&c, url, NULL);
	CHECK_INT(http_get_json(&c, "/api/v2/builds", &j), -ECONNREFUSED);
	CHECK_STR(http_client_error(&c), want);
	CHECK(j == NULL);
	http_client_release(&c);
}

TEST(http_maps_answers)
{
	static const char *const resp[] = {
		HTTP_JSON("200 OK", "{\"builds\": [{\"buildid\": 3}], \"meta\": {}}"),
		HTTP_JSON("404 Not Found", "{\"error\": \"Invalid path: nosuch\"}"),
		"HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\n\r\n<html>oops</html>",
		HTTP_JSON("200 OK", "not json"),
		HTTP_JSON("200 OK",
			  "{\"jsonrpc\": \"2.0\", \"id\": 1, \"error\": {\"code\": -32601, "
			  "\"message\": \"action: stop is not supported\"}}"),
		HTTP_JSON("200 OK", "{\"id\":1,\"jsonrpc\":\"2.0\",\"result\":[5,{\"1\":5}]}"),
		HTTP_JSON("401 Unauthorized", "{}"),
		HTTP_JSON("200 OK", "{\"big\": \"0123456789012345678901234567890123456789\"}"),
	};
	struct peer p;
	struct http_client c;
	json_t *j = NULL, *list = NULL;
	_cleanup_free_ char *url = NULL;

	peer_start(&p, ARRAY_SIZE(resp), resp);
	url = peer_url(&p);
	http_client_init(&c, url, "tok123");

	CHECK_INT(http_get_list(&c, "/api/v2/builds?limit=1", "builds", &list), 0);
	CHECK_INT(json_array_size(list), 1);
	json_decref(list);

	CHECK_INT(http_get_json(&c, "/api/v2/nosuch", &j), KILN_ENOTFOUND);
	CHECK_STR(http_client_error(&c), "Invalid path: nosuch (HTTP 404 for '/api/v2/nosuch')");

	CHECK_INT(http_get_json(&c, "/api/v2/x", &j), -EIO);
	CHECK_STR(http_client_error(&c), "master answered HTTP 502 for '/api/v2/x'");

	CHECK_INT(http_get_json(&c, "/api/v2/y", &j), KILN_EPARSE);
	CHECK(strstr(http_client_error(&c), "not a JSON object"));

	json_t *params = json_pack("{s:s}", "reason", "because");
	CHECK_INT(http_rpc(&c, "/api/v2/builds", "stop", params, &j), -EIO);
	CHECK_STR(http_client_error(&c), "action: stop is not supported");

	CHECK_INT(http_rpc(&c, "/api/v2/forceschedulers/force", "force", params, &j), 0);
	CHECK(json_is_array(j));
	CHECK_INT(json_integer_value(json_array_get(j, 0)), 5);
	json_decref(j);
	json_decref(params);

	CHECK_INT(http_get_json(&c, "/api/v2/secret", &j), KILN_EAUTH);
	CHECK(strstr(http_client_error(&c), "HTTP 401"));

	c.max_body = 16;
	CHECK_INT(http_get_json(&c, "/api/v2/big", &j), KILN_ETOOBIG);
	CHECK(strstr(http_client_error(&c), "larger than 16 bytes"));

	http_client_release(&c);
	peer_wait(&p);
	CHECK(strstr(p.requests[0], "GET /api/v2/builds?limit=1 HTTP/1.1\r\n") == p.requests[0]);
	CHECK(strcasestr(p.requests[0], "\r\nAuthorization: Bearer tok123\r\n"));
	peer_stop(&p);
}

TEST(http_sends_token_and_rpc_body)
{
	static const char *const resp[] = {
		HTTP_JSON("200 OK", "{\"id\":1,\"jsonrpc\":\"2.0\",\"result\":null}"),
	};
	struct peer p;
	struct http_client c;
	json_t *j = NULL;
	_cleanup_free_ char *url = NULL;

	peer_start(&p, 1, resp);
	url = peer_url(&p);
	http_client_init(&c, url, "tok123");
	CHECK_INT(http_rpc(&c, "/api/v2/builds/4", "stop", NULL, &j), 0);
	CHECK(json_is_null(j));
	json_decref(j);
	http_client_release(&c);
	peer_wait(&p);
	CHECK(strstr(p.requests[0], "POST /api/v2/builds/4 HTTP/1.1\r\n") == p.requests[0]);
	CHECK(strcasestr(p.requests[0], "\r\nAuthorization: Bearer tok123\r\n"));
	CHECK(strcasestr(p.requests[0], "\r\nContent-Type: application/json\r\n"));
	CHECK(strstr(p.requests[0],
		     "\r\n\r\n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"stop\",\"params\":{}}"));
	peer_stop(&p);
}

/* ---- commands ---- */

TEST(commands_reject_bad_usage)
{
	struct {
		const struct cmd *cmd;
		int argc;
		const char *argv[6];
		const char *err;
	} cases[] = {
		{&cmd_force, 1, {"force"}, "kiln force: missing BUILDER\nusage: kiln force "},
		{&cmd_force, 3, {"force", "a", "b"}, "kiln force: unexpected argument 'b'\n"},
		{&cmd_force, 3, {"force", "a", "--nope"}, "kiln force: unknown option '--nope'\n"},
		{&cmd_force, 3, {"force", "a", "--reason"}, "kiln force: option '--reason' needs"},
		{&cmd_force, 3, {"force", "a", "-x"}, "kiln force: unknown option '-x'\n"},
		{&cmd_force, 4, {"force", "a", "-p", "noeq"}, "kiln force: bad property 'noeq'"},
		{&cmd_force, 4, {"force", "a", "--timeout", "soon"}, "kiln force: bad timeout"},
		{&cmd_builds, 3, {"builds", "--limit", "0"}, "kiln builds: bad limit '0'"},
		{&cmd_builds, 3, {"builds", "a", "b"}, "kiln builds: unexpected argument 'b'"},
		{&cmd_logs, 1, {"logs"}, "kiln logs: missing BUILD\n"},
		{&cmd_logs, 2, {"logs", "abc"}, "kiln logs: bad build 'abc'"},
		{&cmd_logs, 3, {"logs", "1", "--step"}, "kiln logs: option '--step' needs a value"},
		{&cmd_workers, 2, {"workers", "x"}, "kiln workers: unexpected argument 'x'"},
		{&cmd_stop_build, 1, {"stop-build"}, "kiln stop-build: missing BUILD"},
		{&cmd_stop_build, 2, {"stop-build", "ok/x"}, "kiln stop-build: bad build 'ok/x'"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct captured c = run_cmd(cases[i].cmd, cases[i].argc, cases[i].argv);
		CHECK_INT(c.status, 2);
		if (strncmp(c.err, cases[i].err, strlen(cases[i].err)))
			TAP_FAIL("case %zu: stderr '%s', want prefix '%s'", i, c.err, cases[i].err);
		CHECK_STR(c.out, "");
		captured_release(&c);
	}
}

TEST(commands_help)
{
	const struct cmd *cmds[] = {&cmd_force, &cmd_builds, &cmd_logs, &cmd_workers,
				    &cmd_stop_build};
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++) {
		const char *argv[] = {cmds[i]->name, "--help"};
		struct captured c = run_cmd(cmds[i], 2, argv);
		_cleanup_free_ char *want = xasprintf("usage: kiln %s ", cmds[i]->name);
		CHECK_INT(c.status, 0);
		CHECK(strncmp(c.out, want, strlen(want)) == 0);
		CHECK(strstr(c.out, "--url URL"));
		CHECK_STR(c.err, "");
		captured_release(&c);
	}
}

TEST(commands_unreachable_master_one_line)
{
	_cleanup_free_ char *url = xasprintf("http://127.0.0.1:%d", dead_port());
	_cleanup_free_ char *want =
		xasprintf("kiln: cannot reach master at %s: Connection refused\n", url);
	const char *argv[] = {"builds", "--url", url};
	struct captured c = run_cmd(&cmd_builds, 3, argv);

	CHECK_INT(c.status, 1);
	CHECK_STR(c.err, want);
	CHECK_STR(c.out, "");
	captured_release(&c);

	/* the same from $KILN_URL, and the flag wins over it */
	setenv("KILN_URL", url, 1);
	const char *argv2[] = {"workers"};
	c = run_cmd(&cmd_workers, 1, argv2);
	CHECK_INT(c.status, 1);
	CHECK_STR(c.err, want);
	captured_release(&c);
	const char *argv3[] = {"workers", "--url", "nonsense"};
	c = run_cmd(&cmd_workers, 3, argv3);
	CHECK_INT(c.status, 2);
	CHECK_STR(c.err, "kiln: invalid master URL 'nonsense': expected http://HOST:PORT\n");
	captured_release(&c);
	unsetenv("KILN_URL");
}

TEST(force_sends_the_rpc)
{
	static const char *const resp[] = {
		HTTP_JSON("200 OK",
			  "{\"builders\": [{\"builderid\": 7, \"name\": \"b0\"}], \"meta\": {}}"),
		HTTP_JSON("200 OK",
			  "{\"forceschedulers\": [{\"name\": \"other\", \"builder_names\": "
			  "[\"x\"]}, {\"name\": \"mine\", \"builder_names\": [\"b0\"]}]}"),
		HTTP_JSON("200 OK", "{\"id\":1,\"jsonrpc\":\"2.0\",\"result\":[12,{\"7\":31}]}"),
	};
	struct peer p;
	_cleanup_free_ char *url = NULL;

	peer_start(&p, ARRAY_SIZE(resp), resp);
	url = peer_url(&p);
	const char *argv[] = {"force",   "b0", "--url",       url,          "-r",
			      "why not", "-p", "builderid=9", "--property", "branch=dev"};
	struct captured c = run_cmd(&cmd_force, ARRAY_SIZE(argv), argv);
	peer_wait(&p);
	CHECK_INT(c.status, 0);
	CHECK_STR(c.out, "buildset 12, request 31\n");
	CHECK_STR(c.err, "");
	CHECK(strstr(p.requests[0], "GET /api/v2/builders?name=b0 "));
	CHECK(strstr(p.requests[1], "GET /api/v2/forceschedulers "));
	CHECK(strstr(p.requests[2], "POST /api/v2/forceschedulers/mine "));
	json_t *body = json_loads(strstr(p.requests[2], "\r\n\r\n") + 4, 0, NULL);
	CHECK_STR(json_string_value(json_object_get(body, "method")), "force");
	CHECK_STR(json_string_value(json_object_get(body, "jsonrpc")), "2.0");
	json_t *params = json_object_get(body, "params");
	CHECK_STR(json_string_value(json_object_get(params, "builderid")), "7"); /* not the -p */
	CHECK_STR(json_string_value(json_object_get(params, "reason")), "why not");
	CHECK_STR(json_string_value(json_object_get(params, "branch")), "dev");
	/* an owner is always sent, as Buildbot's force form field 'username' */
	const char *owner = json_string_value(json_object_get(params, "username"));
	CHECK(owner && strchr(owner, '@') && strchr(strchr(owner, '@'), '.'));
	json_decref(body);
	captured_release(&c);
	peer_stop(&p);
}

TEST(force_owner)
{
	static const char *const resp[] = {
		HTTP_JSON("200 OK", "{\"builders\": [{\"builderid\": 7, \"name\": \"b0\"}]}"),
		HTTP_JSON("200 OK", "{\"id\":1,\"jsonrpc\":\"2.0\",\"result\":[1,{\"7\":2}]}"),
	};
	struct peer p;
	_cleanup_free_ char *url = NULL;

	peer_start(&p, ARRAY_SIZE(resp), resp);
	url = peer_url(&p);
	const char *argv[] = {"force",       "b0",        "--url",   url,
			      "--scheduler", "s",         "--owner", "Ann <ann@example.org>",
			      "-p",          "username=x"};
	struct captured c = run_cmd(&cmd_force, ARRAY_SIZE(argv), argv);
	peer_wait(&p);
	CHECK_INT(c.status, 0);
	json_t *body = json_loads(strstr(p.requests[1], "\r\n\r\n") + 4, 0, NULL);
	json_t *params = json_object_get(body, "params");
	CHECK_STR(json_string_value(json_object_get(params, "username")), "Ann <ann@example.org>");
	json_decref(body);
	captured_release(&c);
	peer_stop(&p);

	char *o = cli_owner_default("ann", "build1.example.org");
	CHECK_STR(o, "ann@build1.example.org");
	free(o);
	o = cli_owner_default("ann", "vm");
	CHECK_STR(o, "ann@vm.localdomain");
	free(o);
	o = cli_owner_default(NULL, "");
	CHECK_STR(o, "kiln@localhost.localdomain");
	free(o);
	o = cli_owner_default("a b", "h<x>");
	CHECK_STR(o, "kiln@localhost.localdomain");
	free(o);
}

TEST(force_reports_rpc_errors)
{
	static const char *const resp[] = {
		HTTP_JSON("200 OK", "{\"builders\": [{\"builderid\": 7, \"name\": \"b0\"}]}"),
		HTTP_JSON("500 Internal Server Error",
			  "{\"jsonrpc\": \"2.0\", \"id\": 1, \"error\": {\"code\": -32603, "
			  "\"message\": \"KeyError('nope')\"}}"),
	};
	struct peer p;
	_cleanup_free_ char *url = NULL;

	peer_start(&p, ARRAY_SIZE(resp), resp);
	url = peer_url(&p);
	const char *argv[] = {"force", "b0", "--url", url, "--scheduler", "s s"};
	struct captured c = run_cmd(&cmd_force, ARRAY_SIZE(argv), argv);
	peer_wait(&p);
	CHECK_INT(c.status, 1);
	CHECK_STR(c.err, "kiln: cannot force 'b0' with scheduler 's s': KeyError('nope')\n");
	CHECK(strstr(p.requests[1], "POST /api/v2/forceschedulers/s%20s "));
	captured_release(&c);
	peer_stop(&p);
}

TEST(ws_frames_are_bounded_and_strict)
{
	struct ws_frame f;
	const uint8_t text[] = {0x81, 0x03, 'a', 'b', 'c', 0xff};
	CHECK_INT(ws_frame_parse(text, 0, &f), 0);
	CHECK_INT(ws_frame_parse(text, 1, &f), 0);
	CHECK_INT(ws_frame_parse(text, 4, &f), 0); /* payload incomplete */
	CHECK_INT(ws_frame_parse(text, sizeof(text), &f), 5);
	CHECK(f.fin);
	CHECK_INT(f.opcode, 1);
	CHECK_INT(f.len, 3);
	CHECK(!memcmp(f.payload, "abc", 3));

	/* 16-bit and 64-bit lengths */
	uint8_t mid[4 + 300] = {0x01, 126, 0x01, 0x2c};
	CHECK_INT(ws_frame_parse(mid, 3, &f), 0);
	CHECK_INT(ws_frame_parse(mid, sizeof(mid), &f), 304);
	CHECK(!f.fin);
	CHECK_INT(f.len, 300);
	const uint8_t big[10] = {0x81, 127, 0, 0, 0, 0, 0x00, 0x10, 0x00, 0x01}; /* 1 MiB + 1 */
	CHECK_INT(ws_frame_parse(big, sizeof(big), &f), -EMSGSIZE);
	const uint8_t huge[10] = {0x81, 127, 0x80, 0, 0, 0, 0, 0, 0, 0};
	CHECK_INT(ws_frame_parse(huge, sizeof(huge), &f), -EMSGSIZE);

	/* what a server must not send */
	const uint8_t masked[] = {0x81, 0x81, 1, 2, 3, 4, 'x'};
	CHECK_INT(ws_frame_parse(masked, sizeof(masked), &f), -EPROTO);
	const uint8_t rsv[] = {0xc1, 0x00};
	CHECK_INT(ws_frame_parse(rsv, sizeof(rsv), &f), -EPROTO);
	const uint8_t badop[] = {0x83, 0x00};
	CHECK_INT(ws_frame_parse(badop, sizeof(badop), &f), -EPROTO);
	const uint8_t longping[] = {0x89, 126, 0, 200};
	CHECK_INT(ws_frame_parse(longping, sizeof(longping), &f), -EPROTO);
	const uint8_t fragclose[] = {0x08, 0x00};
	CHECK_INT(ws_frame_parse(fragclose, sizeof(fragclose), &f), -EPROTO);
	const uint8_t ping[] = {0x89, 0x01, 'p'};
	CHECK_INT(ws_frame_parse(ping, sizeof(ping), &f), 3);
	CHECK_INT(f.opcode, 9);
}

TEST(ws_open_refuses_what_it_cannot_follow)
{
	struct ws_client *ws = NULL;
	CHECK_INT(ws_open("https://127.0.0.1:1", NULL, 1000, &ws), -ENOTSUP);
	CHECK(ws == NULL);
	/* nothing listens on port 1: the waiter falls back to polling */
	struct ws_waiter w;
	static const char *const paths[] = {"builds/*/*", NULL};
	ws_waiter_open(&w, "http://127.0.0.1:1", NULL, paths, 10);
	CHECK(w.ws == NULL);
	ws_waiter_wait(&w, 0);
	ws_waiter_release(&w);
}

TEST(workers_table)
{
	static const char *const resp[] = {HTTP_JSON(
		"200 OK",
		"{\"workers\": [{\"name\": \"w0\", \"connected_to\": [{\"masterid\": 1}], "
		"\"paused\": false, \"workerinfo\": {\"version\": \"3.7.0-2\", \"host\": "
		"\"build box\\nsecond line\\n\"}}, {\"name\": \"w-long\", \"connected_to\": [], "
		"\"paused\": true, \"workerinfo\": {}, \"latent_state\": \"stopped\"}]}")};
	struct peer p;
	_cleanup_free_ char *url = NULL;

	peer_start(&p, 1, resp);
	url = peer_url(&p);
	const char *argv[] = {"workers", "--url", url};
	struct captured c = run_cmd(&cmd_workers, 3, argv);
	CHECK_INT(c.status, 0);
	/* LATENT: a worker the master starts (Kiln's latent_state), else '-' */
	CHECK_STR(c.out, "NAME    CONNECTED  PAUSED  VERSION  HOST       LATENT\n"
			 "w0      yes        no      3.7.0-2  build box  -\n"
			 "w-long  no         yes     -        -          stopped\n");
	captured_release(&c);
	peer_stop(&p);
}

/* A master may answer a contents request with fewer lines than asked (Kiln
 * caps the bytes of one reply): the reader must page on to num_lines. */
TEST(logs_page_on_short_replies)
{
	static const char *const resp[] = {
		HTTP_JSON("200 OK", "{\"builds\": [{\"buildid\": 4, \"complete\": true, "
				    "\"results\": 2}]}"),
		HTTP_JSON("200 OK", "{\"steps\": [{\"stepid\": 9, \"number\": 0, \"name\": "
				    "\"sh\", \"complete\": true}]}"),
		HTTP_JSON("200 OK", "{\"logs\": [{\"logid\": 3, \"name\": \"stdio\", \"slug\": "
				    "\"stdio\", \"type\": \"s\", \"num_lines\": 5, \"complete\": "
				    "true}, {\"logid\": 4, \"name\": \"other\"}]}"),
		HTTP_JSON("200 OK", "{\"logchunks\": [{\"firstline\": 0, \"content\": "
				    "\"hcmd\\noone\\n\"}]}"),
		/* overlapping chunk: line 1 again, then line 2 */
		HTTP_JSON("200 OK", "{\"logchunks\": [{\"firstline\": 1, \"content\": "
				    "\"oone\\netwo\\n\"}]}"),
		HTTP_JSON("200 OK", "{\"logchunks\": [{\"firstline\": 3, \"content\": "
				    "\"othree\\nhexit 2\\n\"}]}"),
	};
	struct peer p;
	_cleanup_free_ char *url = NULL;

	peer_start(&p, ARRAY_SIZE(resp), resp);
	url = peer_url(&p);
	const char *argv[] = {"logs", "4", "--follow", "--url", url};
	setenv("KILN_CLIENT_POLL", "1", 1); /* the scripted peer answers REST only, no /ws */
	struct captured c = run_cmd(&cmd_logs, ARRAY_SIZE(argv), argv);
	unsetenv("KILN_CLIENT_POLL");
	peer_wait(&p);
	CHECK_INT(c.status, 1); /* FAILURE */
	CHECK_STR(c.out, "--- sh (step 0)\ncmd\none\ntwo\nthree\nexit 2\n");
	CHECK_STR(c.err, "");
	CHECK(strstr(p.requests[3], "GET /api/v2/logs/3/contents?offset=0&limit=10000 "));
	CHECK(strstr(p.requests[4], "GET /api/v2/logs/3/contents?offset=2&limit=10000 "));
	CHECK(strstr(p.requests[5], "GET /api/v2/logs/3/contents?offset=3&limit=10000 "));
	captured_release(&c);
	peer_stop(&p);
}

int main(void)
{
	unsetenv("KILN_URL");
	unsetenv("KILN_TOKEN");
	setenv("KILN_CLIENT_CONF", "/nonexistent/kiln-test/client.conf", 1);
	setenv("TZ", "UTC", 1);
	tzset();
	RUN(result_names_and_exit_statuses);
	RUN(durations);
	RUN(times_are_local);
	RUN(integers_and_seconds);
	RUN(properties);
	RUN(build_references);
	RUN(conf_file_syntax);
	RUN(settings_precedence);
	RUN(conf_path_from_environment);
	setenv("KILN_CLIENT_CONF", "/nonexistent/kiln-test/client.conf", 1);
	RUN(tables_pad_all_but_the_last_column);
	RUN(log_lines);
	RUN(http_urls);
	RUN(http_unreachable_master);
	RUN(http_maps_answers);
	RUN(http_sends_token_and_rpc_body);
	RUN(commands_reject_bad_usage);
	RUN(commands_help);
	RUN(commands_unreachable_master_one_line);
	RUN(force_sends_the_rpc);
	RUN(force_owner);
	RUN(force_reports_rpc_errors);
	RUN(ws_frames_are_bounded_and_strict);
	RUN(ws_open_refuses_what_it_cannot_follow);
	RUN(workers_table);
	RUN(logs_page_on_short_replies);
	return tap_done();
}
