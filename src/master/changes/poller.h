/*
 * Polling change sources: one poller per git_poller/hg_poller/svn_poller/
 * bzr_poller/darcs_poller/cvs_poller in master.lua.  Each polls on a timer (and on demand) by
 * running the real VCS tool as child processes on the loop (uv_spawn, output read through pipes
 * with a cap), keeps its last-seen revisions in the database's object state, and turns new commits
 * into changes.  A failing poller logs one error per failure streak and retries with capped
 * backoff.
 *
 * Adding a new VCS: a poller-NAME.c exporting a struct poller_vcs (below)
 * and one line in poller.c's table; the parsers are pure and unit-tested.
 */
#ifndef KILN_CHANGES_POLLER_H
#define KILN_CHANGES_POLLER_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "master/changes/change.h"

struct master;
struct config_poller;
struct pollers;
struct poller;

/* Starts one poller per configured change source (first poll at once).
 * Their state directories live under BASEDIR/pollers/NAME. */
int pollers_start(struct master *m, struct pollers **ret);
/* Kills running tools and frees everything (close callbacks run on the
 * loop: keep running it afterwards).  NULL-safe. */
void pollers_stop(struct pollers *ps);
/* slice "reconfig": takes ncfg's change sources, matched by name: one with
 * the same declaration goes on untouched (its state, its timer, a poll in
 * progress); a changed one is stopped and started again, and a new one
 * started, each from its stored state (the revisions it has seen, so no
 * change comes twice); a removed one is stopped.  Negative only when the
 * pollers' directory cannot be made (nothing changed then). */
struct config;
int pollers_reconfig(struct pollers *ps, const struct config *ncfg);
/* Polls NAME now (or every poller when name is NULL).  Returns the number
 * of pollers triggered, KILN_ENOTFOUND if there is no such poller.  A poll
 * already running is not doubled: one more runs right after it.  On a
 * master without the services' lease, the master holding it is asked to
 * (a db_notify line "p NAME", masters.c). */
int pollers_poll(struct pollers *ps, const char *name);
/* On PostgreSQL the pollers start paused and poll only on the master
 * holding the services' lease (masters.c): lead true when it comes (each
 * poller reads its stored state back, the last holder's, then polls), false
 * when it goes (a poll in flight is dropped).  On SQLite they run from the
 * start and this is never called. */
void pollers_lead(struct pollers *ps, bool lead);
/* [{"changesourceid": N, "name": ..., "kind": "git", "repository": ...,
 * "last_poll": t|null, "failing": bool, "failures": consecutive failed polls,
 * "error": the streak's first error or null}] (new ref). */
json_t *pollers_describe(struct pollers *ps);

/* ---- for the VCS modules (poller-{git,hg,svn,bzr,darcs,cvs}.c) ---- */

/* One step's result handed to the VCS module: the tool's exit status and
 * its stdout (capped; truncated = over the cap). */
struct poller_out {
	int status;       /* exit status, or 128+signal */
	const char *text; /* borrowed: stdout, NUL-terminated */
	size_t len;
	bool truncated;
	const char *err; /* borrowed: the last lines of stderr */
};

/* What a VCS module does: a poll is a sequence of steps, each one child
 * process run in poller_workdir().  step() gets the previous step's output
 * (NULL when the poll starts) and either asks for the next command (sets
 * *ret_argv, owned, argv[0] the program; returns 1), finishes the poll
 * (returns 0; the changes it found were queued with poller_emit), or fails
 * (returns < 0 after poller_fail).  Where it is between steps lives in
 * poller_scratch(), which is emptied when a poll starts. */
struct poller_vcs {
	const char *kind; /* "git", "hg", "svn", "bzr", "darcs", "cvs": also the changes' user
			   * identity kind */
	int (*step)(struct poller *p, const struct poller_out *out, char ***ret_argv);
};

extern const struct poller_vcs poller_git, poller_hg, poller_svn, poller_bzr, poller_darcs,
	poller_cvs;
extern const struct poller_vcs poller_maildir; /* poller-maildir.c (slice "alerts") */

/* Accessors for the VCS modules (poller.c). */
const struct config_poller *poller_config(struct poller *p);
const char *poller_workdir(struct poller *p); /* BASEDIR/pollers/NAME (absolute) */
/* The stored state (an object, borrowed; modules edit it in place; saved
 * when the poll ends successfully). */
json_t *poller_state(struct poller *p);
/* Per-poll scratch object (borrowed), emptied when a poll starts. */
json_t *poller_scratch(struct poller *p);
/* Queues a change (fields owned by the poller from now on; src set by kind). */
void poller_emit(struct poller *p, struct change *c);
/* Polls once more as soon as this poll ends (at the next loop turn): for a
 * module that left work for later to keep each poll short. */
void poller_again(struct poller *p);
/* Records why the poll failed (formatted); returns KILN_ESTATE. */
int poller_fail(struct poller *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A NULL-terminated argv (owned) from the arguments (copied). */
char **poller_argv(const char *arg0, ...) __attribute__((sentinel));

/* ---- pure parsers (unit-tested, fuzzed) ---- */
/* git: the output of
 *   git log --format=%x1e%H%x1f%an <%ae>%x1f%cn <%ce>%x1f%ct%x1f%B%x1f --name-only -z
 * i.e. records separated by 0x1e, fields by 0x1f, the file list NUL-separated
 * after the last field.  One change per record, in the order given. */
int poller_git_parse_log(const char *text, size_t len, struct change **ret, size_t *ret_n);
/* git for-each-ref --format='%(objectname) %(refname)' lines into an object
 * {"refs/heads/main": "sha", ...} (new ref); -EINVAL on a malformed line. */
int poller_git_parse_refs(const char *text, size_t len, json_t **ret);
/* hg log --template with records split by 0x1e and fields by 0x1f:
 * node, rev, author, date (epoch float + offset "1700000000.0-3600"), branch,
 * desc, files (space separated: hg's {files}, one per line with %x1f... see
 * poller-hg.c). */
int poller_hg_parse_log(const char *text, size_t len, struct change **ret, size_t *ret_n);
/* svn log --xml -v output: one change per logentry (revision, author,
 * date, msg, paths made relative to prefix when they start with it). */
int poller_svn_parse_log(const char *text, size_t len, const char *prefix, struct change **ret,
			 size_t *ret_n);
/* brz log --long -v -n1 output (LC_ALL=C, -Ooutput_encoding=utf-8): one
 * change per revision, in the order given; revision = the revno, author =
 * the first of "author:" or "committer:", files from the added/modified/
 * removed/renamed (both names)/kind changed sections.  -EINVAL when a record
 * has no revno. */
int poller_bzr_parse_log(const char *text, size_t len, struct change **ret, size_t *ret_n);
/* darcs log --xml-output --summary output: one change per <patch>, in the
 * order given (darcs: newest first); revision = the patch hash, comments =
 * name and long comment (darcs' "Ignore-this:" line dropped).  Control
 * characters (darcs writes them raw, which is not XML) are read as '?'.
 * -EINVAL on XML that does not parse or a patch without a hash. */
int poller_darcs_parse_log(const char *text, size_t len, struct change **ret, size_t *ret_n);

/* One file revision from cvs rlog. */
struct poller_cvs_rev {
	char *path;     /* owned: relative to the module */
	char *rev;      /* owned: "1.4" */
	char *author;   /* owned */
	char *log;      /* owned */
	char *commitid; /* owned, NULL when the server did not record one */
	double when;    /* the revision's date (UTC seconds) */
	bool dead;      /* state: dead (the file was removed) */
};
/* cvs rlog -N -S output: every revision listed, files' paths made relative
 * to the module: PREFIX ("CVSROOT-PATH/MODULE/") stripped, else everything up
 * to the first "/MODULE/"; "Attic/" dropped.  A revision starts at a
 * separator line followed by "revision X" and "date: ..." (a log message
 * holding all three is read as a revision: CVS's own format cannot tell).
 * -EINVAL on an unreadable date.  Free with poller_cvs_revs_free(). */
int poller_cvs_parse_rlog(const char *text, size_t len, const char *prefix, const char *module,
			  struct poller_cvs_rev **ret, size_t *ret_n);
void poller_cvs_revs_free(struct poller_cvs_rev *v, size_t n);
/* Groups file revisions into commits (the revs are sorted by date in
 * place): same commitid within KILN_POLLER_CVS_COMMITID_SPAN seconds of the
 * group's first file, or, for revisions without one, same author and log
 * message within KILN_POLLER_CVS_WINDOW seconds of the group's previous
 * file.  One change per commit, oldest first; revision = the
 * commit's newest date as "YYYY-MM-DD HH:MM:SS +0000" (what cvs -D takes). */
int poller_cvs_group(struct poller_cvs_rev *v, size_t n, struct change **ret, size_t *ret_n);

#endif
