/*
 * Unit tests for the bzr, darcs and cvs pollers' parsers
 * (src/master/changes/poller-{bzr,darcs,cvs}.c) and their master.lua
 * declarations.  The first input of each parser is real output captured
 * from a real repository (brz 3.3, darcs 2.16, cvs 1.12 on Debian 12); it is
 * also the seed of the parser's fuzz corpus (tests/fuzz/corpus/poller-VCS/).
 */
#include "tap.h"
#include "change-test.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "master/changes/change.h"
#include "master/changes/poller.h"

TEST(bzr_real_log)
{
	size_t len;
	_cleanup_free_ char *text = change_test_fixture("poller-bzr/01-brz-log-long", &len);
	struct change *v = NULL;
	size_t n = 0;
	CHECK_INT(text ? poller_bzr_parse_log(text, len, &v, &n) : -1, 0);
	CHECK_INT(n, 7);
	if (n != 7) {
		change_list_free(v, n);
		return;
	}
	CHECK_STR(v[0].revision, "1");
	CHECK_STR(v[0].author, "Alice Example <alice@example.org>");
	/* a message line of dashes and "revno:" is the message's, not a record */
	CHECK_STR(v[0].comments, "first commit\n\nwith a second paragraph\n"
				 "------------------------------------------------------------\n"
				 "revno: 99");
	CHECK_INT(v[0].nfiles, 3);
	CHECK(change_test_has_file(&v[0], "d") && change_test_has_file(&v[0], "d/sp ace.txt"));
	CHECK_INT((long long)v[0].when, 1796226189);
	/* --author: the apparent author, the committer kept apart */
	CHECK_STR(v[1].author, "Bob <bob@example.org>");
	CHECK_STR(v[1].committer, "Alice Example <alice@example.org>");
	CHECK_INT((long long)v[1].when, 1796226190);
	/* a rename names both paths; a file in two sections once */
	CHECK_INT(v[1].nfiles, 3);
	CHECK(change_test_has_file(&v[1], "d/sp ace.txt") &&
	      change_test_has_file(&v[1], "d/moved.txt") && change_test_has_file(&v[1], "a.txt"));
	CHECK_STR(v[2].comments, "third: remove");
	CHECK_STR(v[3].comments, "ünïcode message ✓");
	CHECK_STR(v[3].files[0], "ü.txt");
	/* kind markers (symlink @, executable *) and "(symlink => directory)" dropped */
	CHECK(change_test_has_file(&v[4], "sym") && change_test_has_file(&v[4], "ex.sh"));
	CHECK(change_test_has_file(&v[5], "sym") && change_test_has_file(&v[5], "ex.sh"));
	CHECK_STR(v[6].revision, "7");
	CHECK_STR(v[6].comments, ""); /* brz's "(no message)" */
	CHECK_INT(v[6].nfiles, 0);
	change_list_free(v, n);
}

TEST(bzr_edge_cases)
{
	struct change *v;
	size_t n;
	static const char tz[] = "------------------------------------------------------------\n"
				 "revno: 12 [merge]\n"
				 "committer: c\n"
				 "timestamp: Mon 2009-10-12 08:30:00 +0130\n"
				 "message:\n  m\n";
	CHECK_INT(poller_bzr_parse_log(tz, sizeof(tz) - 1, &v, &n), 0);
	CHECK_INT(n, 1);
	if (n == 1) {
		CHECK_STR(v[0].revision, "12");
		CHECK_INT((long long)v[0].when, 1255336200 - 5400); /* 07:00 UTC */
		CHECK_STR(v[0].author, "c"); /* no author line: the committer */
	}
	change_list_free(v, n);

	CHECK_INT(poller_bzr_parse_log("", 0, &v, &n), 0);
	CHECK_INT(n, 0);
	free(v);

	static const char norev[] = "------------------------------------------------------------\n"
				    "committer: c\nmessage:\n  m\n";
	CHECK_INT(poller_bzr_parse_log(norev, sizeof(norev) - 1, &v, &n), -EINVAL);
	static const char norev2[] =
		"------------------------------------------------------------\n"
		"committer: c\n"
		"------------------------------------------------------------\n"
		"revno: 2\n";
	CHECK_INT(poller_bzr_parse_log(norev2, sizeof(norev2) - 1, &v, &n), -EINVAL);

	/* fields out of range (INT_MIN as the month was a signed overflow):
	 * an unreadable time, 0 */
	static const char badtime[] =
		"------------------------------------------------------------\n"
		"revno: 3\n"
		"committer: c\n"
		"timestamp: Mon 2009--2147483648-12 08:30:00 +0130\n"
		"message:\n  m\n";
	CHECK_INT(poller_bzr_parse_log(badtime, sizeof(badtime) - 1, &v, &n), 0);
	CHECK_INT(n, 1);
	if (n == 1)
		CHECK_INT((long long)v[0].when, 0);
	change_list_free(v, n);
}

TEST(darcs_real_log)
{
	size_t len;
	_cleanup_free_ char *text = change_test_fixture("poller-darcs/01-darcs-log-xml", &len);
	struct change *v = NULL;
	size_t n = 0;
	CHECK_INT(text ? poller_darcs_parse_log(text, len, &v, &n) : -1, 0);
	CHECK_INT(n, 4);
	if (n != 4) {
		change_list_free(v, n);
		return;
	}
	/* newest first, as darcs lists them */
	CHECK_STR(v[0].revision, "535dec0b10c021f59cb116974e54c8a48c142ab1");
	CHECK_STR(v[0].author, "D'Arcy \"Q\" <d@x>");
	CHECK_STR(v[0].comments, "fourth"); /* the Ignore-this line dropped */
	CHECK_INT((long long)v[0].when, 1796226278);
	CHECK_INT(v[0].nfiles, 3);
	CHECK(change_test_has_file(&v[0], "b.txt") &&
	      change_test_has_file(&v[0], "q\"u<o>t&e'.txt") &&
	      change_test_has_file(&v[0], "n<e>w&.txt"));
	CHECK_STR(v[1].comments, "third");
	CHECK_INT(v[1].nfiles, 2);
	CHECK(change_test_has_file(&v[1], "a.txt") && change_test_has_file(&v[1], "b.txt"));
	/* the raw control characters darcs writes are read as '?' */
	CHECK_STR(v[2].author, "Bob Ü <bob@example.org>");
	CHECK_STR(v[2].comments, "second ✓ ?\nbody line\n?ctrl");
	CHECK_INT(v[2].nfiles, 1);
	CHECK_STR(v[2].files[0], "a.txt");
	CHECK_STR(v[3].comments, "first <patch> & stuff");
	change_list_free(v, n);
}

TEST(darcs_edge_cases)
{
	struct change *v;
	size_t n;
	CHECK_INT(poller_darcs_parse_log("<changelog>\n</changelog>\n", 25, &v, &n), 0);
	CHECK_INT(n, 0);
	free(v);
	static const char cut[] = "<changelog><patch author='a' hash='0123456789abcdef0123456789'>"
				  "<name>x</name>";
	CHECK_INT(poller_darcs_parse_log(cut, sizeof(cut) - 1, &v, &n), -EINVAL);
	static const char nohash[] = "<changelog><patch author='a'><name>x</name></patch>"
				     "</changelog>";
	CHECK_INT(poller_darcs_parse_log(nohash, sizeof(nohash) - 1, &v, &n), -EINVAL);
	static const char badhash[] = "<changelog><patch hash='not a hash'></patch></changelog>";
	CHECK_INT(poller_darcs_parse_log(badhash, sizeof(badhash) - 1, &v, &n), -EINVAL);
	/* invalid UTF-8 and U+FFFE do not stop the parser; no comment element */
	static const char latin1[] =
		"<changelog><patch author='J\xe9r\xf4me' date='20000101000000' "
		"hash='0123456789abcdef0123456789abcdef01234567'><name>caf\xe9 \xef\xbf\xbe</name>"
		"<summary><remove_directory>\n  ./old\n</remove_directory></summary>"
		"</patch></changelog>";
	CHECK_INT(poller_darcs_parse_log(latin1, sizeof(latin1) - 1, &v, &n), 0);
	CHECK_INT(n, 1);
	if (n == 1) {
		CHECK_STR(v[0].author, "J\xef\xbf\xbdr\xef\xbf\xbdme");
		CHECK_STR(v[0].comments, "caf\xef\xbf\xbd ???");
		CHECK_INT((long long)v[0].when, 946684800);
		CHECK_INT(v[0].nfiles, 1);
		CHECK_STR(v[0].files[0], "old");
	}
	change_list_free(v, n);
}

TEST(cvs_real_rlog)
{
	size_t len;
	_cleanup_free_ char *text = change_test_fixture("poller-cvs/01-cvs-rlog", &len);
	struct poller_cvs_rev *r = NULL;
	size_t n = 0;
	CHECK_INT(
		text ? poller_cvs_parse_rlog(text, len, "/tmp/vcs-exp/cvsroot/mod/", "mod", &r, &n)
		     : -1,
		0);
	CHECK_INT(n, 5);
	if (n != 5) {
		poller_cvs_revs_free(r, n);
		return;
	}
	/* the Attic (a removed file) is not part of the path */
	CHECK_STR(r[0].path, "a.txt");
	CHECK_STR(r[0].rev, "1.3");
	CHECK(r[0].dead);
	CHECK_STR(r[0].log, "remove a");
	CHECK_STR(r[0].commitid, "1006B103D185640A525");
	CHECK_INT((long long)r[0].when, 1796226328);
	/* separator and "revision 9.9" in a message without a date line: the message's */
	CHECK_STR(r[1].log, "two files\n----------------------------\nrevision 9.9\nfake");
	CHECK(!r[1].dead);
	CHECK_STR(r[2].rev, "1.1");
	CHECK_STR(r[2].log, "Initial revision"); /* "branches:" is not part of it */
	CHECK_STR(r[3].path, "sub/sp ace.txt");
	CHECK_STR(r[3].author, "root");

	struct change *c;
	size_t nc;
	CHECK_INT(poller_cvs_group(r, n, &c, &nc), 0);
	CHECK_INT(nc, 3); /* import, "two files", "remove a": by commitid */
	if (nc == 3) {
		CHECK_STR(c[0].comments, "Initial revision");
		CHECK_INT(c[0].nfiles, 2);
		CHECK_STR(c[1].revision, "2026-12-02 15:45:27 +0000");
		CHECK_INT(c[1].nfiles, 2);
		CHECK(change_test_has_file(&c[1], "a.txt") &&
		      change_test_has_file(&c[1], "sub/sp ace.txt"));
		CHECK_STR(c[2].comments, "remove a");
		CHECK_STR(c[2].files[0], "a.txt");
		CHECK_INT((long long)c[2].when, 1796226328);
		CHECK_STR(json_string_value(json_array_get(
				  json_object_get(c[2].properties, "cvs_commitid"), 0)),
			  "1006B103D185640A525");
	}
	change_list_free(c, nc);
	poller_cvs_revs_free(r, n);

	/* the server names its root otherwise (a symbolic link): cut at "/mod/" */
	CHECK_INT(text ? poller_cvs_parse_rlog(text, len, "/elsewhere/mod/", "mod", &r, &n) : -1,
		  0);
	CHECK_INT(n, 5);
	if (n == 5)
		CHECK_STR(r[3].path, "sub/sp ace.txt");
	poller_cvs_revs_free(r, n);
}

static struct poller_cvs_rev rev(const char *path, const char *author, const char *log, double when)
{
	return (struct poller_cvs_rev){.path = xstrdup(path),
				       .rev = xstrdup("1.2"),
				       .author = xstrdup(author),
				       .log = xstrdup(log),
				       .when = when};
}

TEST(cvs_grouping_without_commitid)
{
	struct poller_cvs_rev *r = xcalloc(6, sizeof(*r));
	/* given out of order: grouping sorts by date */
	r[0] = rev("b.c", "ann", "fix", 1000 + KILN_POLLER_CVS_WINDOW);
	r[1] = rev("a.c", "ann", "fix", 1000);
	r[2] = rev("c.c", "bob", "fix", 1001);   /* another author */
	r[3] = rev("d.c", "ann", "other", 1002); /* another message */
	/* the same message again, more than the window after the group's last file */
	r[4] = rev("e.c", "ann", "fix", 1001 + 2 * KILN_POLLER_CVS_WINDOW);
	r[5] = rev("a.c", "ann", "fix", 1005); /* the same file twice: listed once */
	struct change *c;
	size_t nc;
	CHECK_INT(poller_cvs_group(r, 6, &c, &nc), 0);
	CHECK_INT(nc, 4);
	if (nc == 4) {
		CHECK_STR(c[0].author, "ann");
		CHECK_INT(c[0].nfiles, 2);
		CHECK(change_test_has_file(&c[0], "a.c") && change_test_has_file(&c[0], "b.c"));
		CHECK_INT((long long)c[0].when, (long long)(1000 + KILN_POLLER_CVS_WINDOW));
		CHECK_STR(c[1].author, "bob");
		CHECK_STR(c[2].comments, "other");
		CHECK_STR(c[3].files[0], "e.c");
		CHECK(c[0].properties == NULL); /* no commitid to record */
	}
	change_list_free(c, nc);
	poller_cvs_revs_free(r, 6);

	CHECK_INT(poller_cvs_group(NULL, 0, &c, &nc), 0);
	CHECK_INT(nc, 0);
	free(c);
}

static struct poller_cvs_rev rev_id(const char *path, const char *commitid, double when)
{
	struct poller_cvs_rev r = rev(path, "ann", "msg", when);
	r.commitid = xstrdup(commitid);
	return r;
}

/* Found by fuzz-poller-cvs: a commitid seen again long after its first file
 * (reused) made one change spanning decades, listed before the commits in
 * between.  Within KILN_POLLER_CVS_COMMITID_SPAN of the first file it is
 * still one commit, however slowly its files came. */
TEST(cvs_grouping_commitid_reused_later)
{
	const double span = KILN_POLLER_CVS_COMMITID_SPAN;
	struct poller_cvs_rev *r = xcalloc(5, sizeof(*r));
	r[0] = rev_id("a.c", "X", 1000);
	r[1] = rev_id("b.c", "X", 1000 + span - 1); /* a slow commit: still X */
	r[2] = rev_id("c.c", "Y", 2000);
	r[3] = rev_id("d.c", "X", 1000 + span + 1); /* X reused: a new commit */
	r[4] = rev_id("e.c", "X", 1000 + 3 * span); /* and again */
	struct change *c;
	size_t nc;
	CHECK_INT(poller_cvs_group(r, 5, &c, &nc), 0);
	CHECK_INT(nc, 4);
	if (nc == 4) {
		CHECK_INT(c[0].nfiles, 2);
		CHECK(change_test_has_file(&c[0], "a.c") && change_test_has_file(&c[0], "b.c"));
		CHECK_INT((long long)c[0].when, (long long)(1000 + span - 1));
		CHECK_STR(c[1].files[0], "c.c");
		CHECK_INT(c[2].nfiles, 1);
		CHECK_STR(c[2].files[0], "d.c");
		CHECK_INT((long long)c[2].when, (long long)(1000 + span + 1));
		CHECK_STR(c[3].files[0], "e.c");
		CHECK_STR(json_string_value(json_array_get(
				  json_object_get(c[3].properties, "cvs_commitid"), 0)),
			  "X");
	}
	change_list_free(c, nc);
	poller_cvs_revs_free(r, 5);
}

TEST(cvs_old_date_format_and_forged_revisions)
{
	static const char out[] =
		"\nRCS file: /r/m/x.c,v\nhead: 1.2\n"
		"description:\n----------------------------\n"
		"revision 1.2\ndate: 2001/02/03 04:05:06;  author: ann;  state: Exp;\n"
		"msg\n----------------------------\nrevision 8.8\n"
		"date: not a date;\nstill msg\n"
		"=============================================================="
		"===============\nnot the end\n"
		"=============================================================="
		"===============\n";
	struct poller_cvs_rev *r;
	size_t n;
	CHECK_INT(poller_cvs_parse_rlog(out, sizeof(out) - 1, "/r/m/", "m", &r, &n), 0);
	CHECK_INT(n, 1);
	if (n == 1) {
		CHECK_INT((long long)r[0].when, 981173106);
		CHECK(r[0].commitid == NULL);
		CHECK_STR(r[0].log, "msg\n----------------------------\nrevision 8.8\n"
				    "date: not a date;\nstill msg\n"
				    "=============================================================="
				    "===============\nnot the end");
	}
	poller_cvs_revs_free(r, n);

	/* a date whose fields are out of range is no date (INT_MIN as the month
	 * was a signed overflow under UBSan; found reading the parser), so that
	 * "revision" line is part of the message */
	static const char bad[] =
		"\nRCS file: /r/m/x.c,v\nhead: 1.2\n"
		"description:\n----------------------------\n"
		"revision 1.2\ndate: 2001/02/03 04:05:06;  author: ann;  state: Exp;\n"
		"msg\n----------------------------\nrevision 1.1\n"
		"date: 2000--2147483648-01 00:00:00 +0000;  author: ann;  state: Exp;\nold\n"
		"----------------------------\nrevision 1.0\n"
		"date: 2000-02-30 24:00:00 +0000;  author: ann;  state: Exp;\nolder\n"
		"=============================================================="
		"===============\n";
	CHECK_INT(poller_cvs_parse_rlog(bad, sizeof(bad) - 1, "/r/m/", "m", &r, &n), 0);
	CHECK_INT(n, 1);
	if (n == 1)
		CHECK(strstr(r[0].log, "revision 1.1") && strstr(r[0].log, "revision 1.0"));
	poller_cvs_revs_free(r, n);
}

static struct config *load(const char *text, char **ret_err)
{
	struct config *cfg = NULL;
	*ret_err = NULL;
	if (config_load_string(NULL, text, strlen(text), NULL, &cfg, ret_err) < 0)
		return NULL;
	return cfg;
}

static void expect_config_error(const char *text, const char *want)
{
	char *err;
	struct config *cfg = load(text, &err);
	if (cfg || !err || !strstr(err, want))
		TAP_FAIL("config error: got '%s', want '%s'", err ? err : "(none)", want);
	config_free(cfg);
	free(err);
}

TEST(config_declarations)
{
	char *err;
	struct config *cfg =
		load("bzr_poller { repository = 'bzr+ssh://x/b', branch = 'trunk' }\n"
		     "darcs_poller { name = 'd', repository = 'https://x/d', interval = 5 }\n"
		     "cvs_poller { cvsroot = ':pserver:anon@cvs.x:/cvs', module = 'tools/kit',\n"
		     "  branch = 'REL_1-x' }\n",
		     &err);
	CHECK(cfg != NULL);
	if (!cfg) {
		TAP_FAIL("%s", err);
		free(err);
		return;
	}
	CHECK_INT(cfg->npollers, 3);
	CHECK_INT(cfg->poller[0].kind, CONFIG_POLLER_BZR);
	CHECK_STR(cfg->poller[0].name, "bzr_ssh___x_b");
	CHECK_STR(cfg->poller[0].branch, "trunk");
	CHECK_INT(cfg->poller[1].kind, CONFIG_POLLER_DARCS);
	CHECK(cfg->poller[1].interval == 5);
	CHECK(cfg->poller[1].branch == NULL);
	CHECK_INT(cfg->poller[2].kind, CONFIG_POLLER_CVS);
	CHECK_STR(cfg->poller[2].repository, ":pserver:anon@cvs.x:/cvs");
	CHECK_STR(cfg->poller[2].module, "tools/kit");
	CHECK_STR(cfg->poller[2].name, "tools_kit"); /* named after the module */
	CHECK_STR(cfg->poller[2].branch, "REL_1-x");
	config_free(cfg);

	expect_config_error("cvs_poller { cvsroot = '/cvs' }", "'module' is required");
	expect_config_error("cvs_poller { module = 'm' }", "'cvsroot' is required");
	expect_config_error("cvs_poller { cvsroot = '/c', module = 'm', repository = 'r' }",
			    "unknown key 'repository'");
	expect_config_error("cvs_poller { cvsroot = '/c', module = '../etc' }",
			    "'module' must be a path inside the repository");
	expect_config_error("cvs_poller { cvsroot = '/c', module = '-x' }", "must be a path");
	expect_config_error("cvs_poller { cvsroot = '/c', module = 'a/..' }", "must be a path");
	expect_config_error("cvs_poller { cvsroot = '/c', module = 'm', branch = '1.2.2' }",
			    "'branch' must be a CVS branch tag");
	expect_config_error("bzr_poller { repository = 'r', branches = { 'a' } }",
			    "unknown key 'branches'");
	expect_config_error("darcs_poller { branch = 'x' }", "'repository' is required");
}

int main(void)
{
	RUN(bzr_real_log);
	RUN(bzr_edge_cases);
	RUN(darcs_real_log);
	RUN(darcs_edge_cases);
	RUN(cvs_real_rlog);
	RUN(cvs_grouping_without_commitid);
	RUN(cvs_grouping_commitid_reused_later);
	RUN(cvs_old_date_format_and_forged_revisions);
	RUN(config_declarations);
	return tap_done();
}
