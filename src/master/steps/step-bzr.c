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
#include <ctype.h>
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

static void step_bzr_run(struct step *st, enum step_bzr_state state, const char *const *argv)
{
	struct source *s = st->priv;
	const char *full[SOURCE_MAX_ARGV + 1] = {"bzr"};
	size_t n = 1;
	for (size_t i = 0; argv[i] && n < SOURCE_MAX_ARGV; i++)
		full[n++] = argv[i];
	full[n] = NULL;
	s->state = state;
	source_run(st, s->dir, full, NULL, 0);
}

static void step_bzr_clobber(struct step *st)
{
	struct source *s = st->priv;
	s->state = BZR_RMDIR;
	source_rmdir(st, s->dir);
}

static void step_bzr_update(struct step *st)
{
	struct source *s = st->priv;
	const char *argv[] = {"update", s->revision ? "-r" : NULL, s->revision, NULL};
	step_bzr_run(st, BZR_UPDATE, argv);
}

static void step_bzr_next(struct step *st)
{
	struct source *s = st->priv;
	switch ((enum step_bzr_state)s->state) {
	case BZR_START:
		if (s->full && s->method == CONFIG_SOURCE_CLOBBER) {
			step_bzr_clobber(st);
			return;
		}
		s->state = BZR_STAT;
		source_stat(st, s->dir, ".bzr");
		return;
	case BZR_STAT:
		if (st->rc != 0) {
			step_bzr_clobber(st);
			return;
		}
		if (s->full &&
		    (s->method == CONFIG_SOURCE_FRESH || s->method == CONFIG_SOURCE_CLEAN)) {
			const char *argv[] = {"clean-tree", "--unknown", "--force",
					      s->method == CONFIG_SOURCE_FRESH ? "--ignored" : NULL,
					      NULL};
			step_bzr_run(st, BZR_CLEAN, argv);
			return;
		}
		step_bzr_update(st);
		return;
	case BZR_CLEAN:
		if (st->rc != 0) {
			step_finish(st, RESULTS_FAILURE);
			return;
		}
		step_bzr_update(st);
		return;
	case BZR_RMDIR: {
		if (st->rc != 0) {
			step_finish(st, RESULTS_EXCEPTION);
			return;
		}
		const char *argv[] = {"checkout",  s->repourl, ".", s->revision ? "-r" : NULL,
				      s->revision, NULL};
		step_bzr_run(st, BZR_CHECKOUT, argv);
		return;
	}
	case BZR_CHECKOUT:
	case BZR_UPDATE:
		if (st->rc != 0) {
			step_finish(st, RESULTS_FAILURE);
			return;
		}
		source_checked_out(st);
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
	const char *argv[] = {"version-info", "--custom", "--template={revno}", NULL};
	source_collect(st);
	step_bzr_run(st, BZR_START, argv);
}

/* a revision number */
static bool step_bzr_revision_ok(const char *text, size_t len)
{
	if (!len || len > 20)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isdigit((unsigned char)text[i]))
			return false;
	return true;
}

static const struct source_vcs step_bzr_vcs = {
	.tool = "bzr",
	.source = "Bzr",
	.prepare = step_bzr_prepare,
	.next = step_bzr_next,
	.revision = step_bzr_revision,
	.revision_ok = step_bzr_revision_ok,
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
