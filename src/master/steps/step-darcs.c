/*
 * darcs { }: gets the build's tree with Darcs on the worker, after
 * Buildbot's Darcs step (source.c runs the shared parts):
 *
 *   clobber:   rmdir WORKDIR, then in the builder's directory
 *              darcs clone --lazy [--to-hash REV] REPOURL WORKDIR
 *   otherwise: stat WORKDIR/_darcs; without it, or for a given revision
 *              (pull cannot stop at one): clobber; else
 *              darcs pull --all --verbose
 *   then:      [patch -pN]  (a try patch)
 *              darcs changes --max-count=1  -> got_revision (its whole
 *              text, as Buildbot)
 *
 * Modes: incremental, and full with method copy (the default) or clobber.
 * Buildbot's revision is a darcs context file; Kiln's darcs poller gives
 * patch hashes, which `clone --to-hash` takes.
 */
#include <string.h>

#include "common/xalloc.h"
#include "db/db.h"
#include "master/steps/step.h"

enum step_darcs_state {
	DARCS_START,
	DARCS_STAT,  /* stat WORKDIR/_darcs */
	DARCS_RMDIR, /* rmdir before a clone */
	DARCS_CLONE, /* darcs clone */
	DARCS_PULL,  /* darcs pull */
};

static void step_darcs_run(struct step *st, enum step_darcs_state state, const char *dir,
			   const char *const *argv)
{
	struct source *s = st->priv;
	const char *full[SOURCE_MAX_ARGV + 1] = {"darcs"};
	size_t n = 1;
	for (size_t i = 0; argv[i] && n < SOURCE_MAX_ARGV; i++)
		full[n++] = argv[i];
	full[n] = NULL;
	s->state = state;
	source_run(st, dir, full, NULL, 0);
}

static void step_darcs_clobber(struct step *st)
{
	struct source *s = st->priv;
	s->state = DARCS_RMDIR;
	source_rmdir(st, s->dir);
}

static void step_darcs_next(struct step *st)
{
	struct source *s = st->priv;
	switch ((enum step_darcs_state)s->state) {
	case DARCS_START:
		if (s->full && s->method == CONFIG_SOURCE_CLOBBER) {
			step_darcs_clobber(st);
			return;
		}
		s->state = DARCS_STAT;
		source_stat(st, s->dir, "_darcs");
		return;
	case DARCS_STAT: {
		if (st->rc != 0 || s->revision) {
			step_darcs_clobber(st);
			return;
		}
		const char *argv[] = {"pull", "--all", "--verbose", NULL};
		step_darcs_run(st, DARCS_PULL, s->dir, argv);
		return;
	}
	case DARCS_RMDIR: {
		if (st->rc != 0) {
			step_finish(st, RESULTS_EXCEPTION);
			return;
		}
		/* in the builder's directory: darcs makes the tree itself */
		const char *argv[8];
		size_t n = 0;
		argv[n++] = "clone";
		argv[n++] = "--lazy";
		if (s->revision) {
			argv[n++] = "--to-hash";
			argv[n++] = s->revision;
		}
		argv[n++] = s->repourl;
		argv[n++] = s->dir;
		argv[n] = NULL;
		step_darcs_run(st, DARCS_CLONE, "", argv);
		return;
	}
	case DARCS_CLONE:
	case DARCS_PULL:
		if (st->rc != 0) {
			step_finish(st, RESULTS_FAILURE);
			return;
		}
		source_checked_out(st);
		return;
	}
}

static void step_darcs_revision(struct step *st)
{
	struct source *s = st->priv;
	const char *argv[] = {"changes", "--max-count=1", NULL};
	source_collect(st);
	step_darcs_run(st, DARCS_START, s->dir, argv);
}

/* the last patch's header: "patch HASH ..." */
static bool step_darcs_revision_ok(const char *text, size_t len)
{
	return len > 6 && !strncmp(text, "patch ", 6);
}

static const struct source_vcs step_darcs_vcs = {
	.tool = "darcs",
	.source = "Darcs",
	.next = step_darcs_next,
	.revision = step_darcs_revision,
	.revision_ok = step_darcs_revision_ok,
};

static void step_darcs_start(struct step *st)
{
	source_start(st, &step_darcs_vcs);
}

const struct step_kind step_kind_darcs = {
	.kind = CONFIG_STEP_DARCS,
	.name = "darcs",
	.describe = source_describe,
	.start = step_darcs_start,
	.free = source_free,
};
