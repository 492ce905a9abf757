/*
 * svn { }: checks out the build's revision with Subversion on the worker,
 * after Buildbot's SVN step (source.c runs the shared parts):
 *
 *   clobber:   rmdir WORKDIR, svn checkout REPOURL . [--revision REV]
 *   otherwise: stat WORKDIR/.svn and svn info --show-item url: a working
 *              copy of another URL (or none) is clobbered
 *              [svn revert --recursive .; svn cleanup --remove-unversioned
 *               [--remove-ignored]]  (full clean/fresh)
 *              svn update [--revision REV]
 *   then:      [patch -pN]  (a try patch)
 *              svn info --show-item revision  -> got_revision
 *
 * Every command ends with --non-interactive --no-auth-cache [--username U]
 * [--password P] [extra_args].  Buildbot reads `svn info --xml` and purges
 * what `svn status --xml` lists; svn 1.9's --show-item and cleanup's
 * --remove-* do the same without an XML parser on the master.  %%BRANCH%%
 * in repourl becomes the build's branch.
 */
#include <ctype.h>
#include <string.h>

#include "common/buf.h"
#include "common/xalloc.h"
#include "db/db.h"
#include "master/steps/step.h"

enum step_svn_state {
	SVN_START,
	SVN_STAT,     /* stat WORKDIR/.svn */
	SVN_INFO,     /* svn info --show-item url */
	SVN_RMDIR,    /* rmdir before a checkout */
	SVN_CHECKOUT, /* svn checkout */
	SVN_REVERT,   /* svn revert --recursive . */
	SVN_CLEANUP,  /* svn cleanup --remove-unversioned */
	SVN_UPDATE,   /* svn update */
};

#define SVN_BRANCH_MARK "%%BRANCH%%"

static struct source *step_svn_src(struct step *st)
{
	return st->priv;
}

/* svn ARGS --non-interactive --no-auth-cache [auth] [extra_args] (extra:
 * not for svn info, as Buildbot) */
static void step_svn_run_x(struct step *st, enum step_svn_state state, const char *const *argv,
			   bool extra)
{
	struct source *s = step_svn_src(st);
	const struct config_source *src = st->cfg->source;
	const size_t max = SOURCE_MAX_ARGV - 1; /* and "svn" */
	const char *args[SOURCE_MAX_ARGV] = {NULL};
	size_t n = 0;
	for (size_t i = 0; argv[i] && n < max; i++)
		args[n++] = argv[i];
	const char *tail[] = {"--non-interactive", "--no-auth-cache", s->user ? "--username" : NULL,
			      s->user};
	for (size_t i = 0; i < ARRAY_SIZE(tail) && n < max; i++)
		if (tail[i])
			args[n++] = tail[i];
	if (s->password && n + 2 <= max) {
		args[n++] = "--password";
		args[n++] = s->password;
	}
	for (size_t i = 0; extra && i < src->nextra_args && n < max; i++)
		args[n++] = src->extra_args[i];
	args[n] = NULL;
	source_run_vcs(st, state, s->dir, args);
}

static void step_svn_run(struct step *st, enum step_svn_state state, const char *const *argv)
{
	step_svn_run_x(st, state, argv, true);
}

static void step_svn_update(struct step *st)
{
	struct source *s = step_svn_src(st);
	const char *argv[] = {"update", s->revision ? "--revision" : NULL, s->revision, NULL};
	step_svn_run(st, SVN_UPDATE, argv);
}

/* URLs compared without trailing slashes */
static size_t step_svn_url_len(const char *u, size_t len)
{
	while (len > 1 && (u[len - 1] == '/' || isspace((unsigned char)u[len - 1])))
		len--;
	return len;
}

static bool step_svn_same_url(const struct source *s)
{
	size_t a = step_svn_url_len(s->out.ptr, s->out.len);
	size_t b = step_svn_url_len(s->repourl, strlen(s->repourl));
	return a == b && !memcmp(s->out.ptr, s->repourl, a);
}

static void step_svn_next(struct step *st)
{
	struct source *s = step_svn_src(st);
	switch ((enum step_svn_state)s->state) {
	case SVN_START:
		source_look(st, ".svn", SVN_STAT, SVN_RMDIR);
		return;
	case SVN_STAT: {
		if (st->rc != 0) {
			source_clobber(st, SVN_RMDIR);
			return;
		}
		const char *argv[] = {"info", "--show-item", "url", NULL};
		source_collect(st);
		step_svn_run_x(st, SVN_INFO, argv, false);
		return;
	}
	case SVN_INFO:
		s->collect = false;
		if (st->rc != 0 || s->out_overflow || !step_svn_same_url(s)) {
			step_log_header(st, "no working copy of '%s' there: clobbering",
					s->repourl);
			source_clobber(st, SVN_RMDIR);
			return;
		}
		if (s->full) {
			const char *argv[] = {"revert", "--recursive", ".", NULL};
			step_svn_run(st, SVN_REVERT, argv);
			return;
		}
		step_svn_update(st);
		return;
	case SVN_REVERT: {
		if (!source_exited_ok(st, RESULTS_FAILURE))
			return;
		const char *argv[] = {"cleanup", "--remove-unversioned",
				      s->method == CONFIG_SOURCE_FRESH ? "--remove-ignored" : NULL,
				      NULL};
		step_svn_run(st, SVN_CLEANUP, argv);
		return;
	}
	case SVN_CLEANUP:
		if (source_exited_ok(st, RESULTS_FAILURE))
			step_svn_update(st);
		return;
	case SVN_RMDIR: {
		if (!source_exited_ok(st, RESULTS_EXCEPTION))
			return;
		const char *argv[] = {"checkout",  s->repourl,
				      ".",         s->revision ? "--revision" : NULL,
				      s->revision, NULL};
		step_svn_run(st, SVN_CHECKOUT, argv);
		return;
	}
	case SVN_CHECKOUT:
	case SVN_UPDATE:
		source_vcs_done(st);
		return;
	}
}

/* %%BRANCH%% in repourl, the username and password rendered */
static int step_svn_prepare(struct step *st)
{
	struct source *s = step_svn_src(st);
	const struct config_source *src = st->cfg->source;
	if (step_render(st, &src->username, "username", &s->user) < 0 ||
	    step_render(st, &src->password, "password", &s->password) < 0)
		return -1;
	const char *mark = s->repourl ? strstr(s->repourl, SVN_BRANCH_MARK) : NULL;
	if (!mark)
		return 0;
	if (!s->branch) {
		step_log_header(st, "repourl has %s but the build has no branch", SVN_BRANCH_MARK);
		return -1;
	}
	char *url = xasprintf("%.*s%s%s", (int)(mark - s->repourl), s->repourl, s->branch,
			      mark + strlen(SVN_BRANCH_MARK));
	free(s->repourl);
	s->repourl = url;
	return 0;
}

static void step_svn_revision(struct step *st)
{
	const char *argv[] = {"info", "--show-item", "revision", NULL};
	source_collect(st);
	step_svn_run_x(st, SVN_START, argv, false);
}

static const struct source_vcs step_svn_vcs = {
	.tool = "svn",
	.source = "SVN",
	.prepare = step_svn_prepare,
	.next = step_svn_next,
	.revision = step_svn_revision,
	.revision_ok = source_revno_ok,
};

static void step_svn_start(struct step *st)
{
	source_start(st, &step_svn_vcs);
}

const struct step_kind step_kind_svn = {
	.kind = CONFIG_STEP_SVN,
	.name = "svn",
	.describe = source_describe,
	.start = step_svn_start,
	.free = source_free,
};
