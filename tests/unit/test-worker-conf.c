/*
 * kiln-worker's master addresses and DIR/worker.conf (src/worker/conn.c's
 * conn_parse_master / conn_parse_master_list, src/worker/wconf.c): each
 * accepted form, each refusal, a list of several masters (issue 14) as
 * commas, blanks and repeated "master =" lines, and a save/load round trip.
 */
#include "tap.h"
#include "worker/conn.h"
#include "worker/wconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

TEST(one_master_forms)
{
	char *h = NULL;
	int port = 0;
	CHECK_INT(conn_parse_master("build.example.org:9989", &h, &port), 0);
	CHECK_STR(h, "build.example.org");
	CHECK_INT(port, 9989);
	free(h);
	CHECK_INT(conn_parse_master("ws://127.0.0.1:1/", &h, &port), 0);
	CHECK_STR(h, "127.0.0.1");
	CHECK_INT(port, 1);
	free(h);
	CHECK_INT(conn_parse_master("[::1]:65535", &h, &port), 0);
	CHECK_STR(h, "::1");
	CHECK_INT(port, 65535);
	free(h);
	CHECK_INT(conn_parse_master("host", &h, &port), -EINVAL);
	CHECK_INT(conn_parse_master(":9989", &h, &port), -EINVAL);
	CHECK_INT(conn_parse_master("host:0", &h, &port), -EINVAL);
	CHECK_INT(conn_parse_master("host:65536", &h, &port), -EINVAL);
	CHECK_INT(conn_parse_master("host:99x", &h, &port), -EINVAL);
	CHECK_INT(conn_parse_master("[::1]9989", &h, &port), -EINVAL);
	CHECK_INT(conn_parse_master("wss://host:9989", &h, &port), -EPROTONOSUPPORT);
	CHECK_INT(conn_parse_master(NULL, &h, &port), -EINVAL);
}

TEST(a_list_of_masters)
{
	struct conn_master m[CONN_MAX_MASTERS];
	CHECK_INT(conn_parse_master_list("a:1", m, CONN_MAX_MASTERS, NULL), 1);
	CHECK_STR(m[0].host, "a");
	CHECK_INT(m[0].port, 1);
	conn_masters_release(m, 1);
	CHECK(m[0].host == NULL);
	CHECK_INT(conn_parse_master_list(" a:1,b:2 ,\t ws://[::1]:3/  c:4,", m, CONN_MAX_MASTERS,
					 NULL),
		  4);
	CHECK_STR(m[0].host, "a");
	CHECK_STR(m[1].host, "b");
	CHECK_INT(m[1].port, 2);
	CHECK_STR(m[2].host, "::1");
	CHECK_INT(m[2].port, 3);
	CHECK_STR(m[3].host, "c");
	CHECK_INT(m[3].port, 4);
	conn_masters_release(m, 4);
}

TEST(a_bad_list_names_its_bad_master)
{
	struct conn_master m[3];
	size_t bad = 99;
	CHECK_INT(conn_parse_master_list("a:1, b, c:3", m, 3, &bad), -EINVAL);
	CHECK_INT((int)bad, 1);
	CHECK_INT(conn_parse_master_list("", m, 3, &bad), -EINVAL);
	CHECK_INT((int)bad, 0);
	CHECK_INT(conn_parse_master_list(" , ,", m, 3, NULL), -EINVAL);
	CHECK_INT(conn_parse_master_list(NULL, m, 3, NULL), -EINVAL);
	CHECK_INT(conn_parse_master_list("a:1,b:2,c:3,d:4", m, 3, &bad), -E2BIG);
	CHECK_INT((int)bad, 3);
	CHECK_INT(conn_parse_master_list("a:1,b:2,c:3", m, 3, NULL), 3);
	conn_masters_release(m, 3);
}

static char *make_dir(void)
{
	char tmpl[] = "/tmp/kiln-test-wconf.XXXXXX";
	char *d = mkdtemp(tmpl);
	return d ? strdup(d) : NULL;
}

static void write_conf(const char *dir, const char *text)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/worker.conf", dir);
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
}

static void remove_dir(char *dir)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/worker.conf", dir);
	unlink(path);
	rmdir(dir);
	free(dir);
}

TEST(repeated_master_lines_make_a_list)
{
	char *dir = make_dir();
	CHECK(dir != NULL);
	write_conf(dir, "# two masters\nmaster = a:1\nname = w1\npassword = pw\n"
			"master = ws://b:2/\n");
	struct wconf c;
	char *err = NULL;
	CHECK_INT(wconf_load(dir, &c, &err), 0);
	CHECK_STR(c.master, "a:1, ws://b:2/");
	struct conn_master m[CONN_MAX_MASTERS];
	CHECK_INT(conn_parse_master_list(c.master, m, CONN_MAX_MASTERS, NULL), 2);
	CHECK_STR(m[1].host, "b");
	conn_masters_release(m, 2);
	/* written back as one line, read back the same */
	CHECK_INT(wconf_save(dir, &c), 0);
	wconf_release(&c);
	CHECK_INT(wconf_load(dir, &c, &err), 0);
	CHECK_STR(c.master, "a:1, ws://b:2/");
	CHECK_STR(c.name, "w1");
	CHECK_STR(c.password, "pw");
	wconf_release(&c);
	remove_dir(dir);
}

TEST(a_conf_without_master_is_refused)
{
	char *dir = make_dir();
	CHECK(dir != NULL);
	write_conf(dir, "name = w1\npassword = pw\n");
	struct wconf c;
	char *err = NULL;
	CHECK(wconf_load(dir, &c, &err) < 0);
	CHECK(err && strstr(err, "needs master, name and password"));
	free(err);
	err = NULL;
	write_conf(dir, "master = a:1\nname = w1\npassword = pw\nmasters = b:2\n");
	CHECK(wconf_load(dir, &c, &err) < 0);
	CHECK(err && strstr(err, "unknown key 'masters'"));
	free(err);
	remove_dir(dir);
}

int main(void)
{
	RUN(one_master_forms);
	RUN(a_list_of_masters);
	RUN(a_bad_list_names_its_bad_master);
	RUN(repeated_master_lines_make_a_list);
	RUN(a_conf_without_master_is_refused);
	return tap_done();
}
