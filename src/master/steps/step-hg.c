/*
 * hg { }: checks out the build's revision with Mercurial on the worker, as
 * Buildbot's Mercurial step does (source.c runs the shared parts):
 *
 *   clobber:     rmdir WORKDIR, hg clone --noupdate REPOURL ., hg update
 *   otherwise:   stat WORKDIR/.hg; without it: clobber
 *                [hg --config extensions.purge= purge [--all]]  (full clean/fresh)
 *                hg pull REPOURL [--rev REV|BRANCH]
 *                branch check: the tree's branch (inrepo: hg identify
 *                --branch; dirname: the step's branch) differs from the
 *                build's and clobber_on_branch_change: clobber
 *                hg update --clean [--rev REV|BRANCH]
 *   then:        [hg import --no-commit -pN -]  (a try patch)
 *                hg parents --template {node}\n  -> got_revision
 *
 * Every command is "hg --verbose ...".  branch_type "dirname" (the
 * default) appends the branch to repourl; "inrepo" updates to it (default
 * "default").
 */
#include <ctype.h>
#include <string.h>

#include "common/xalloc.h"
#include "db/db.h"
#include "master/steps/step.h"

enum step_hg_state {
	HG_START,
	HG_STAT,     /* stat WORKDIR/.hg */
	HG_RMDIR,    /* rmdir before a clone */
	HG_CLONE,    /* hg clone --noupdate */
	HG_PURGE,    /* hg purge */
	HG_PULL,     /* hg pull */
	HG_IDENTIFY, /* hg identify --branch */
	HG_UPDATE,   /* hg update --clean */
};

static struct source *step_hg_src(struct step *st)
{
	return st->priv;
}

/* The branch hg updates to: inrepo's, NULL with dirname branches. */
static const char *step_hg_update_branch(struct step *st)
{
	struct source *s = step_hg_src(st);
	if (!st->cfg->source->hg_inrepo)
		return NULL;
	return s->branch ? s->branch : "default";
}

static void step_hg_run(struct step *st, enum step_hg_state state, const char *const *argv)
{
	source_run_vcs(st, state, step_hg_src(st)->dir, argv);
}

/* pull and update take the revision, else inrepo's branch */
static const char *step_hg_rev(struct step *st)
{
	struct source *s = step_hg_src(st);
	return s->revision ? s->revision : step_hg_update_branch(st);
}

static void step_hg_update(struct step *st)
{
	const char *rev = step_hg_rev(st);
	const char *argv[] = {"update", "--clean", rev ? "--rev" : NULL, rev, NULL};
	step_hg_run(st, HG_UPDATE, argv);
}

static void step_hg_pull(struct step *st)
{
	struct source *s = step_hg_src(st);
	const char *rev = step_hg_rev(st);
	const char *argv[] = {"pull", s->repourl, rev ? "--rev" : NULL, rev, NULL};
	step_hg_run(st, HG_PULL, argv);
}

static bool step_hg_same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

/* The tree's branch is current: clobbered when it differs from the
 * build's (clobber_on_branch_change), else updated. */
static void step_hg_branch_check(struct step *st, const char *current)
{
	struct source *s = step_hg_src(st);
	const char *want = st->cfg->source->hg_inrepo ? step_hg_update_branch(st) : s->branch;
	if (!step_hg_same(current, want) && st->cfg->source->clobber_on_branch_change) {
		step_log_header(st, "the tree is on branch '%s', not '%s': clobbering",
				current ? current : "", want ? want : "");
		source_clobber(st, HG_RMDIR);
		return;
	}
	step_hg_update(st);
}

static void step_hg_next(struct step *st)
{
	struct source *s = step_hg_src(st);
	switch ((enum step_hg_state)s->state) {
	case HG_START:
		source_look(st, ".hg", HG_STAT, HG_RMDIR);
		return;
	case HG_STAT:
		if (st->rc != 0) {
			source_clobber(st, HG_RMDIR);
			return;
		}
		if (s->full) {
			const char *argv[] = {"--config", "extensions.purge=", "purge",
					      s->method == CONFIG_SOURCE_FRESH ? "--all" : NULL,
					      NULL};
			step_hg_run(st, HG_PURGE, argv);
			return;
		}
		step_hg_pull(st);
		return;
	case HG_RMDIR: {
		if (!source_exited_ok(st, RESULTS_EXCEPTION))
			return;
		const char *argv[] = {"clone", "--noupdate", s->repourl, ".", NULL};
		step_hg_run(st, HG_CLONE, argv);
		return;
	}
	case HG_CLONE:
		if (source_exited_ok(st, RESULTS_FAILURE))
			step_hg_update(st);
		return;
	case HG_PURGE:
		if (source_exited_ok(st, RESULTS_FAILURE))
			step_hg_pull(st);
		return;
	case HG_PULL:
		if (!source_exited_ok(st, RESULTS_FAILURE))
			return;
		if (st->cfg->source->hg_inrepo) {
			const char *argv[] = {"identify", "--branch", NULL};
			source_collect(st);
			step_hg_run(st, HG_IDENTIFY, argv);
			return;
		}
		step_hg_branch_check(st, s->default_branch);
		return;
	case HG_IDENTIFY: {
		if (st->rc != 0 || s->out_overflow) {
			step_finish(st, RESULTS_FAILURE);
			return;
		}
		s->collect = false;
		size_t len = s->out.len;
		while (len && isspace((unsigned char)s->out.ptr[len - 1]))
			len--;
		_cleanup_free_ char *current = xstrndup(s->out.ptr, len);
		step_hg_branch_check(st, current);
		return;
	}
	case HG_UPDATE:
		source_vcs_done(st);
		return;
	}
}

static int step_hg_prepare(struct step *st)
{
	struct source *s = step_hg_src(st);
	if (!st->cfg->source->hg_inrepo && s->branch) {
		char *url = xasprintf("%s%s", s->repourl ? s->repourl : "", s->branch);
		free(s->repourl);
		s->repourl = url;
	}
	return 0;
}

static void step_hg_revision(struct step *st)
{
	const char *argv[] = {"parents", "--template", "{node}\\n", NULL};
	source_collect(st);
	step_hg_run(st, HG_START, argv);
}

/* a 40 hex digit node */
static bool step_hg_revision_ok(const char *text, size_t len)
{
	if (len != 40)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isxdigit((unsigned char)text[i]))
			return false;
	return true;
}

static void step_hg_patch_argv(const char *level, const char **argv)
{
	const char *a[] = {"hg", "--verbose", "import", "--no-commit", level, "-", NULL};
	memcpy(argv, a, sizeof(a));
}

static const struct source_vcs step_hg_vcs = {
	.tool = "hg",
	.option = "--verbose",
	.source = "Mercurial",
	.prepare = step_hg_prepare,
	.next = step_hg_next,
	.revision = step_hg_revision,
	.revision_ok = step_hg_revision_ok,
	.patch_argv = step_hg_patch_argv,
};

static void step_hg_start(struct step *st)
{
	source_start(st, &step_hg_vcs);
}

const struct step_kind step_kind_hg = {
	.kind = CONFIG_STEP_HG,
	.name = "hg",
	.describe = source_describe,
	.start = step_hg_start,
	.free = source_free,
};
