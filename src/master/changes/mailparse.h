/*
 * Commit e-mails into changes (slice "alerts"; the maildir change source,
 * changes/poller-maildir.c).  Pure: text in, changes out; unit-tested
 * (tests/unit/test-mailparse.c) and fuzzed (tests/fuzz/fuzz-mailparse.c).
 *
 * Formats read (the mail's body in 7bit, 8bit or quoted-printable; headers
 * folded or not; LF or CRLF lines):
 * - git post-receive-email (X-Git-Refname, X-Git-Newrev headers; "commit",
 *   "Author:" blocks and the "Summary of changes:" diffstat);
 * - git format-patch / git-send-email ("Subject: [PATCH ...]", the message
 *   up to "---", files from "diff --git a/X b/X", the revision from an
 *   mbox "From SHA ..." first line when present);
 * - hg's notify extension (X-Hg-Notification header or a body starting
 *   "changeset NODE in REPO"; "user:", "branch:", "description:", the
 *   diffstat or "diff -r" lines);
 * - svn commit-email.pl ("Author:", "New Revision:", "Log:", the
 *   Modified:/Added:/Deleted: path lists) and SVN::Notify ("Revision",
 *   "Author", "Log Message", "Modified Paths" ... sections).
 * svn paths under trunk/ or branches/NAME/ give the branch and are made
 * relative to it.
 */
#ifndef KILN_CHANGES_MAILPARSE_H
#define KILN_CHANGES_MAILPARSE_H

#include <stddef.h>

#include "master/changes/change.h"

/* Bytes of one mail read at most (a longer one is refused), files per
 * change, and the bytes of one header after unfolding. */
#define MAILPARSE_MAX_MAIL (4u << 20)
#define MAILPARSE_MAX_FILES 4096
#define MAILPARSE_MAX_HEADER 8192

/* The kind of commit mail (mailparse_parse's *ret_kind). */
enum mailparse_kind {
	MAILPARSE_GIT, /* post-receive-email or format-patch */
	MAILPARSE_HG,
	MAILPARSE_SVN,
};
/* "git", "hg", "svn": also the changes' user identity kind. */
const char *mailparse_kind_name(enum mailparse_kind k);

/* Parses one mail: 0 and *ret a change (its fields owned: change_release),
 * *ret_kind its format; or -EINVAL and *ret_why (static text) saying why
 * it is not a commit mail Kiln reads. */
int mailparse_parse(const char *text, size_t len, struct change *ret, enum mailparse_kind *ret_kind,
		    const char **ret_why);

#endif
