/*
 * bzr { }: checks out the build's revision with Bazaar (Breezy's bzr) on
 * the worker, after Buildbot's Bzr step (source.c runs the shared parts):
 *
 *   clobber:   rmdir WORKDIR, bzr checkout REPOURL . [-r REV]
 *   otherwise: stat WORKDIR/.bzr; without it: clobber
 *              [bzr clean-tree --unknown [--ignored] --force]  (full clean/fresh)
 *              bzr update [-r REV]
 *   then:      [patch -pN]  (a try patch)
 *              bzr version-info --custom --template={revno}  -> got_revision
 *
 * With base_url instead of repourl the branch is joined to it (Buildbot's
 * baseURL + defaultBranch).  Buildbot 3.7 cleans before it knows a tree is
 * there, and its fresh/clean run clean-tree's two options the other way
 * round; Kiln's methods mean what they mean for git.
 */
#include <string.h>

#include "common/xalloc.h"
#include "db/db.h"
#include "master/steps/step.h"

enum step_bzr_state {
	BZR_START,
	BZR_STAT,     /* stat WORKDIR/.bzr */
	BZR_RMDIR,    /* rmdir before a checkout */
	BZR_CHECKOUT, /* bzr checkout */
	BZR_CLEAN,    /* bzr clean-tree */
	BZR_UPDATE,   /* bzr update */
};

static void step_bzr_update(struct step *st)
{
	struct source *s = st->priv;
	const char *argv[] = {"update", s->revision ? "-r" : NULL, s->revision, NULL};
	source_run_vcs(st, BZR_UPDATE, s->dir, argv);
}

static void step_bzr_next(struct step *st)
{
	struct source *s = st->priv;
	switch ((enum step_bzr_state)s->state) {
	case BZR_START:
		source_look(st, ".bzr", BZR_STAT, BZR_RMDIR);
		return;
	case BZR_STAT:
		if (st->rc != 0) {
			source_clobber(st, BZR_RMDIR);
			return;
		}
		if (s->full &&
		    (s->method == CONFIG_SOURCE_FRESH || s->method == CONFIG_SOURCE_CLEAN)) {
			const char *argv[] = {"clean-tree", "--unknown", "--force",
					      s->method == CONFIG_SOURCE_FRESH ? "--ignored" : NULL,
					      NULL};
			source_run_vcs(st, BZR_CLEAN, s->dir, argv);
			return;
		}
		step_bzr_update(st);
		return;
	case BZR_CLEAN:
		if (source_exited_ok(st, RESULTS_FAILURE))
			step_bzr_update(st);
		return;
	case BZR_RMDIR: {
		if (!source_exited_ok(st, RESULTS_EXCEPTION))
			return;
		const char *argv[] = {"checkout",  s->repourl, ".", s->revision ? "-r" : NULL,
				      s->revision, NULL};
		source_run_vcs(st, BZR_CHECKOUT, s->dir, argv);
		return;
	}
	case BZR_CHECKOUT:
	case BZR_UPDATE:
		source_vcs_done(st);
		return;
	}
}

/* base_url: the branch joined to it */
static int step_bzr_prepare(struct step *st)
{
	struct source *s = st->priv;
	if (!st->cfg->source->base_url)
		return 0;
	if (!s->branch) {
		step_log_header(st, "base_url needs a branch: the build and the step have none");
		return -1;
	}
	size_t len = s->repourl ? strlen(s->repourl) : 0;
	char *url = xasprintf("%s%s%s", s->repourl ? s->repourl : "",
			      len && s->repourl[len - 1] == '/' ? "" : "/", s->branch);
	free(s->repourl);
	s->repourl = url;
	return 0;
}

static void step_bzr_revision(struct step *st)
{
	struct source *s = st->priv;
	const char *argv[] = {"version-info", "--custom", "--template={revno}", NULL};
	source_collect(st);
	source_run_vcs(st, BZR_START, s->dir, argv);
}

static const struct source_vcs step_bzr_vcs = {
	.tool = "bzr",
	.source = "Bzr",
	.prepare = step_bzr_prepare,
	.next = step_bzr_next,
	.revision = step_bzr_revision,
	.revision_ok = source_revno_ok,
};

static void step_bzr_start(struct step *st)
{
	source_start(st, &step_bzr_vcs);
}

const struct step_kind step_kind_bzr = {
	.kind = CONFIG_STEP_BZR,
	.name = "bzr",
	.describe = source_describe,
	.start = step_bzr_start,
	.free = source_free,
};
