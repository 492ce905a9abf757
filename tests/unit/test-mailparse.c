/*
 * Unit tests for the commit-mail parser (src/master/changes/mailparse.c;
 * slice "alerts"): real-looking mails of each format (git post-receive-email,
 * git format-patch/send-email, hg notify, svn commit-email.pl, SVN::Notify),
 * which are also the seeds of its fuzz corpus (tests/fuzz/corpus/mailparse/),
 * CRLF lines, folded headers, and what is refused with which reason.
 */
#include "tap.h"
#include "change-test.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "master/changes/change.h"
#include "master/changes/mailparse.h"

/* Parses fixture name into *c; 0 or the parser's error. */
static int parse_fixture(const char *name, struct change *c, enum mailparse_kind *kind)
{
	size_t len = 0;
	_cleanup_free_ char *rel = xasprintf("mailparse/%s", name);
	_cleanup_free_ char *text = change_test_fixture(rel, &len);
	const char *why = NULL;
	if (!text)
		return -ENOENT;
	int r = mailparse_parse(text, len, c, kind, &why);
	if (r < 0)
		TAP_FAIL("%s: %s", name, why ? why : "?");
	return r;
}

TEST(git_post_receive)
{
	struct change c;
	enum mailparse_kind k;
	if (parse_fixture("git-push.eml", &c, &k) < 0)
		return;
	CHECK_INT(k, MAILPARSE_GIT);
	CHECK_STR(c.revision, "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d");
	CHECK_STR(c.branch, "main");
	CHECK_STR(c.repository, "proj");
	CHECK_STR(c.author, "Ann Dev <ann@example.org>");
	CHECK_STR(c.comments, "Fix the frobnicator\n\nIt dropped every other frob.");
	CHECK_INT(c.nfiles, 2);
	CHECK(change_test_has_file(&c, "src/frob.c") &&
	      change_test_has_file(&c, "tests/test-frob.c"));
	CHECK(c.when == 1796291940.0); /* 10:59 +0100 */
	change_release(&c);
}

TEST(git_patch)
{
	struct change c;
	enum mailparse_kind k;
	if (parse_fixture("git-patch.eml", &c, &k) < 0)
		return;
	CHECK_INT(k, MAILPARSE_GIT);
	CHECK_STR(c.revision, "9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c");
	CHECK_STR(c.author, "Bob Builder <bob@example.org>");
	CHECK(c.branch == NULL);
	CHECK_STR(c.comments, "Teach the parser about tabs\n\nTabs in the input were read as "
			      "one space each.\n\nSigned-off-by: Bob Builder <bob@example.org>");
	CHECK_INT(c.nfiles, 2);
	CHECK(change_test_has_file(&c, "src/parse.c") && change_test_has_file(&c, "README"));
	CHECK(c.when == 1796297400.0);
	change_release(&c);
}

TEST(hg_notify)
{
	struct change c;
	enum mailparse_kind k;
	if (parse_fixture("hg-notify.eml", &c, &k) < 0)
		return;
	CHECK_INT(k, MAILPARSE_HG);
	CHECK_STR(c.revision, "3f5a1b2c3d4e");
	CHECK_STR(c.repository, "/srv/hg/proj");
	CHECK_STR(c.branch, "stable");
	CHECK_STR(c.author, "Carol Hg <carol@example.org>");
	CHECK_STR(c.comments, "Make the cache expire\n\nEntries older than a day are dropped.");
	CHECK_INT(c.nfiles, 2);
	CHECK(change_test_has_file(&c, "cache/store.py") &&
	      change_test_has_file(&c, "docs/cache.txt"));
	CHECK(c.when == 1796299200.0);
	change_release(&c);
}

TEST(svn_commit_email)
{
	struct change c;
	enum mailparse_kind k;
	if (parse_fixture("svn-commit-email.eml", &c, &k) < 0)
		return;
	CHECK_INT(k, MAILPARSE_SVN);
	CHECK_STR(c.revision, "1234");
	CHECK_STR(c.author, "dave");
	CHECK_STR(c.branch, "trunk");
	/* quoted-printable decoded */
	CHECK_STR(c.comments, "Rename the option \xe2\x80\x94 old name still read");
	CHECK_INT(c.nfiles, 3);
	CHECK(change_test_has_file(&c, "src/opts.c") && change_test_has_file(&c, "doc/opts.txt") &&
	      change_test_has_file(&c, "doc/old.txt"));
	CHECK(c.when == 1796302800.0);
	change_release(&c);
}

TEST(svnnotify)
{
	struct change c;
	enum mailparse_kind k;
	if (parse_fixture("svnnotify.eml", &c, &k) < 0)
		return;
	CHECK_INT(k, MAILPARSE_SVN);
	CHECK_STR(c.revision, "1235");
	CHECK_STR(c.author, "erin");
	CHECK_STR(c.branch, "branches/fast");
	CHECK_STR(c.comments, "Speed up the indexer");
	CHECK_INT(c.nfiles, 3);
	CHECK(change_test_has_file(&c, "index/build.c") &&
	      change_test_has_file(&c, "index/build.h") &&
	      change_test_has_file(&c, "index/cache.c"));
	CHECK(c.when == 1796306400.0);
	change_release(&c);
}

TEST(crlf_and_folded_headers)
{
	const char *mail = "From: Ann <ann@example.org>\r\n"
			   "Subject: [proj] branch\r\n main updated\r\n"
			   "X-Git-Refname:\r\n refs/heads/dev\r\n"
			   "X-Git-Newrev: abc123\r\n"
			   "\r\n"
			   "commit abc123\r\n"
			   "Author: Ann <ann@example.org>\r\n"
			   "Date:   Thu Dec 3 10:00:00 2026 +0000\r\n"
			   "\r\n"
			   "    One line\r\n"
			   "\r\n"
			   "Summary of changes:\r\n"
			   " a.c | 1 +\r\n";
	struct change c;
	enum mailparse_kind k;
	const char *why = NULL;
	CHECK_INT(mailparse_parse(mail, strlen(mail), &c, &k, &why), 0);
	CHECK_STR(c.branch, "dev");
	CHECK_STR(c.revision, "abc123");
	CHECK_STR(c.comments, "One line");
	CHECK_INT(c.nfiles, 1);
	CHECK(c.nfiles == 1 && !strcmp(c.files[0], "a.c"));
	change_release(&c);
}

TEST(refused)
{
	static const struct {
		const char *mail, *why;
	} cases[] = {
		{"", "no mail headers"},
		{"just some text\n", "no mail headers"},
		{"From: a@b\nSubject: lunch?\n\nPizza at noon.\n",
		 "not a commit mail (no git, hg or svn markers)"},
		{"From: a@b\nContent-Type: multipart/mixed; boundary=x\n\n--x\n",
		 "a multipart mail (commit mails are text/plain)"},
		{"From: a@b\nSubject: svn commit: rX\n\nLog:\nx\n",
		 "an svn commit mail without a revision number"},
		{"From: a@b\nSubject: [PATCH] x\n\nno diff here\n",
		 "a patch mail without any 'diff --git' section"},
		{"From: a@b\nX-Git-Refname: refs/heads/x\n\nbody\n",
		 "a git push mail without X-Git-Newrev"},
		{"From: a@b\nContent-Transfer-Encoding: base64\nX-Git-Newrev: 1\n\n!!!!\n",
		 "a base64 body that does not decode"},
		{"From: a@b\nContent-Transfer-Encoding: x-uuencode\n\nx\n",
		 "an unknown Content-Transfer-Encoding"},
		{"Subject: [PATCH] x\n\ndiff --git a/x b/x\n", "a patch mail without From:"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct change c;
		enum mailparse_kind k;
		const char *why = NULL;
		int r = mailparse_parse(cases[i].mail, strlen(cases[i].mail), &c, &k, &why);
		if (r != -EINVAL || !why || strcmp(why, cases[i].why))
			TAP_FAIL("case %zu: got %d '%s', want '%s'", i, r, why ? why : "(null)",
				 cases[i].why);
	}
	/* over the cap: refused before reading */
	struct change c;
	enum mailparse_kind k;
	const char *why = NULL;
	CHECK_INT(mailparse_parse("x", MAILPARSE_MAX_MAIL + 1, &c, &k, &why), -EINVAL);
	CHECK_STR(why, "over the size cap");
}

TEST(base64_body)
{
	/* "changeset 0123456789ab in /r\nuser: U <u@x>\ndescription:\n\tHi\n" */
	const char *mail = "From: x@y\nContent-Transfer-Encoding: base64\n\n"
			   "Y2hhbmdlc2V0IDAxMjM0NTY3ODlhYiBpbiAvcgp1c2VyOiBVIDx1QHg+CmRlc2NyaXB0\n"
			   "aW9uOgoJSGkK\n";
	struct change c;
	enum mailparse_kind k;
	const char *why = NULL;
	CHECK_INT(mailparse_parse(mail, strlen(mail), &c, &k, &why), 0);
	CHECK_INT(k, MAILPARSE_HG);
	CHECK_STR(c.revision, "0123456789ab");
	CHECK_STR(c.author, "U <u@x>");
	CHECK_STR(c.comments, "Hi");
	change_release(&c);
}

int main(void)
{
	RUN(git_post_receive);
	RUN(git_patch);
	RUN(hg_notify);
	RUN(svn_commit_email);
	RUN(svnnotify);
	RUN(crlf_and_folded_headers);
	RUN(refused);
	RUN(base64_body);
	return tap_done();
}
