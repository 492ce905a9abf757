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

static void step_darcs_next(struct step *st)
{
	struct source *s = st->priv;
	switch ((enum step_darcs_state)s->state) {
	case DARCS_START:
		source_look(st, "_darcs", DARCS_STAT, DARCS_RMDIR);
		return;
	case DARCS_STAT: {
		if (st->rc != 0 || s->revision) {
			source_clobber(st, DARCS_RMDIR);
			return;
		}
		const char *argv[] = {"pull", "--all", "--verbose", NULL};
		source_run_vcs(st, DARCS_PULL, s->dir, argv);
		return;
	}
	case DARCS_RMDIR: {
		if (!source_exited_ok(st, RESULTS_EXCEPTION))
			return;
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
		source_run_vcs(st, DARCS_CLONE, "", argv);
		return;
	}
	case DARCS_CLONE:
	case DARCS_PULL:
		source_vcs_done(st);
		return;
	}
}

static void step_darcs_revision(struct step *st)
{
	struct source *s = st->priv;
	const char *argv[] = {"changes", "--max-count=1", NULL};
	source_collect(st);
	source_run_vcs(st, DARCS_START, s->dir, argv);
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
