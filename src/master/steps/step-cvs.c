/*
 * cvs { }: checks out the build's tree with CVS on the worker, after
 * Buildbot's CVS step (source.c runs the shared parts):
 *
 *   clobber:   rmdir WORKDIR, then in the builder's directory
 *              cvs -d CVSROOT -z3 checkout -d WORKDIR [-r BRANCH] [-D DATE] MODULE
 *   otherwise: stat WORKDIR/CVS; without it: clobber; else
 *              cvs -z3 update -dP [-r BRANCH] [-D DATE]
 *   then:      [patch -pN]  (a try patch)
 *              got_revision: the master's UTC time (no command), as Buildbot
 *
 * A revision is a date (`-D`): Kiln's cvs poller gives the newest file's.
 * Modes: incremental, and full with clobber (the default) or copy; clean
 * and fresh need cvsutils' cvsdiscard, which Debian's cvs does not have.
 * Buildbot compares CVS/Root and CVS/Repository with the step's; Kiln
 * trusts the CVS directory.
 */
#include <string.h>
#include <time.h>

#include "common/xalloc.h"
#include "db/db.h"
#include "master/steps/step.h"

enum step_cvs_state {
	CVS_START,
	CVS_STAT,     /* stat WORKDIR/CVS */
	CVS_RMDIR,    /* rmdir before a checkout */
	CVS_CHECKOUT, /* cvs checkout */
	CVS_UPDATE,   /* cvs update */
};

/* [-r BRANCH] [-D DATE] into argv from n; the new count */
static size_t step_cvs_rev_args(const struct source *s, const char **argv, size_t n)
{
	/* as Buildbot: no -r HEAD beside a date */
	if (s->branch && !(s->revision && !strcmp(s->branch, "HEAD"))) {
		argv[n++] = "-r";
		argv[n++] = s->branch;
	}
	if (s->revision) {
		argv[n++] = "-D";
		argv[n++] = s->revision;
	}
	return n;
}

static void step_cvs_next(struct step *st)
{
	struct source *s = st->priv;
	const char *argv[16];
	size_t n = 0;
	switch ((enum step_cvs_state)s->state) {
	case CVS_START:
		source_look(st, "CVS", CVS_STAT, CVS_RMDIR);
		return;
	case CVS_STAT:
		if (st->rc != 0) {
			source_clobber(st, CVS_RMDIR);
			return;
		}
		argv[n++] = "-z3";
		argv[n++] = "update";
		argv[n++] = "-dP";
		n = step_cvs_rev_args(s, argv, n);
		argv[n] = NULL;
		source_run_vcs(st, CVS_UPDATE, s->dir, argv);
		return;
	case CVS_RMDIR:
		if (!source_exited_ok(st, RESULTS_EXCEPTION))
			return;
		argv[n++] = "-d";
		argv[n++] = s->repourl;
		argv[n++] = "-z3";
		argv[n++] = "checkout";
		argv[n++] = "-d";
		argv[n++] = s->dir;
		n = step_cvs_rev_args(s, argv, n);
		argv[n++] = st->cfg->source->cvsmodule;
		argv[n] = NULL;
		/* in the builder's directory: cvs makes WORKDIR itself */
		source_run_vcs(st, CVS_CHECKOUT, "", argv);
		return;
	case CVS_CHECKOUT:
	case CVS_UPDATE:
		source_vcs_done(st);
		return;
	}
}

/* the master's time, as Buildbot's CVS step */
static void step_cvs_revision(struct step *st)
{
	time_t now = time(NULL);
	struct tm tm;
	char text[64];
	size_t len = 0;
	if (gmtime_r(&now, &tm))
		len = strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S +0000", &tm);
	source_got(st, text, len);
}

static const struct source_vcs step_cvs_vcs = {
	.tool = "cvs",
	.source = "CVS",
	.next = step_cvs_next,
	.revision = step_cvs_revision,
};

static void step_cvs_start(struct step *st)
{
	source_start(st, &step_cvs_vcs);
}

const struct step_kind step_kind_cvs = {
	.kind = CONFIG_STEP_CVS,
	.name = "cvs",
	.describe = source_describe,
	.start = step_cvs_start,
	.free = source_free,
};
