/*
 * What every source step but git shares (steps/step.h, "source steps"):
 * rendering the repository and the build's branch and revision, running
 * the VCS program and the file-system commands (stat, rmdir, cpdir) on the
 * worker, method copy's "source" tree, the try patch applied after the
 * checkout, and got_revision.  Each VCS (step-hg.c, step-svn.c, ...) is a
 * struct source_vcs whose next() drives its own checkout sequence.
 */
#define LOG_SUBSYS "build"

#include <errno.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "db/db.h"
#include "master/engine-int.h"
#include "master/master.h"
#include "master/steps/step.h"
#include "proto/msg.h"

#define SOURCE_COPY_DIR "source"

static void source_update(struct step *st, const char *key, const msgpack_object *value)
{
	struct source *s = st->priv;
	if (!s->collect || strcmp(key, "stdout"))
		return;
	const msgpack_object *t = value;
	if (value->type == MSGPACK_OBJECT_ARRAY && value->via.array.size >= 1)
		t = &value->via.array.ptr[0];
	struct str txt;
	if (proto_obj_str(t, &txt) && buf_add(&s->out, txt.p, txt.len) < 0)
		s->out_overflow = true;
}

static void source_done(struct step *st, int status, const char *failure);

static const struct step_cmd_ops source_ops = {source_update, source_done};

int source_shell(struct step *st, const char *dir, const char *const *argv, const char *subdir,
		 const char *stdin_text, size_t stdin_len, const struct step_cmd_ops *ops)
{
	char *full[SOURCE_MAX_ARGV + 1];
	size_t n = 0;
	for (size_t i = 0; argv[i] && n < SOURCE_MAX_ARGV; i++)
		full[n++] = (char *)argv[i];
	full[n] = NULL;
	struct proto_enc args;
	proto_enc_init(&args);
	uint32_t nargs;
	int r = step_shell_args_in(st, dir, full, NULL, subdir, stdin_text, stdin_len, &args,
				   &nargs);
	if (r >= 0)
		r = step_command(st, "shell", &args, nargs, ops);
	proto_enc_release(&args);
	if (r < 0)
		step_finish(st,
			    r == -ENAMETOOLONG ? RESULTS_EXCEPTION : step_unstarted_results(st));
	return r;
}

void source_run(struct step *st, const char *dir, const char *const *argv, const char *stdin_text,
		size_t stdin_len)
{
	struct source *s = st->priv;
	const char *subdir = NULL;
	if (s->phase == SOURCE_PATCH && s->patch.subdir && *s->patch.subdir)
		subdir = s->patch.subdir;
	(void)source_shell(st, dir, argv, subdir, stdin_text, stdin_len, &source_ops);
}

void source_collect(struct step *st)
{
	struct source *s = st->priv;
	s->collect = true;
	s->out_overflow = false;
	buf_reset(&s->out);
}

int source_fs_cmd(struct step *st, const char *name, const char *key1, const char *path1,
		  const char *key2, const char *path2, const struct step_cmd_ops *ops)
{
	struct proto_enc args;
	proto_enc_init(&args);
	uint32_t n = 0;
	step_pack_key(&args, key1, &n);
	if (!strcmp(key1, "paths"))
		proto_pack_array(&args, 1);
	proto_pack_str(&args, path1);
	if (key2) {
		step_pack_key(&args, key2, &n);
		proto_pack_str(&args, path2);
	}
	step_pack_key(&args, "logEnviron", &n);
	proto_pack_bool(&args, false);
	if (strcmp(name, "stat")) {
		step_pack_key(&args, "timeout", &n);
		proto_pack_int(&args, 120);
	}
	int r = step_command(st, name, &args, n, ops);
	proto_enc_release(&args);
	if (r < 0)
		step_finish(st, step_unstarted_results(st));
	return r;
}

static void source_fs(struct step *st, const char *name, const char *key1, const char *path1,
		      const char *key2, const char *path2)
{
	(void)source_fs_cmd(st, name, key1, path1, key2, path2, &source_ops);
}

void source_rmdir(struct step *st, const char *dir)
{
	_cleanup_free_ char *path = step_worker_path(st, dir, NULL);
	if (!path) {
		step_finish(st, RESULTS_EXCEPTION);
		return;
	}
	source_fs(st, "rmdir", "paths", path, NULL, NULL);
}

void source_stat(struct step *st, const char *dir, const char *sub)
{
	_cleanup_free_ char *path = step_worker_path(st, dir, sub);
	if (!path) {
		step_finish(st, RESULTS_EXCEPTION);
		return;
	}
	source_fs(st, "stat", "path", path, NULL, NULL);
}

/* got_revision, keyed by codebase when the step names one (Buildbot). */
static void source_set_revision(struct step *st, const char *rev, size_t len)
{
	struct source *s = st->priv;
	const char *cb = st->cfg->source->codebase;
	json_t *v = json_stringn(rev, len);
	step_set_property(st, "got_revision", *cb ? json_pack("{s:o}", cb, v) : v, s->vcs->source);
}

static void source_revision(struct step *st)
{
	struct source *s = st->priv;
	s->phase = SOURCE_REVISION;
	s->state = 0;
	s->vcs->revision(st);
}

void source_checked_out(struct step *st)
{
	struct source *s = st->priv;
	if (s->copy) {
		_cleanup_free_ char *from = step_worker_path(st, SOURCE_COPY_DIR, NULL);
		_cleanup_free_ char *to = from ? step_worker_path(st, NULL, NULL) : NULL;
		if (!to) {
			step_finish(st, RESULTS_EXCEPTION);
			return;
		}
		s->phase = SOURCE_COPY;
		source_fs(st, "cpdir", "from_path", from, "to_path", to);
		return;
	}
	if (!s->patch.body) {
		source_revision(st);
		return;
	}
	char level[16];
	snprintf(level, sizeof(level), "-p%d", s->patch.level);
	const char *argv[SOURCE_MAX_ARGV + 1] = {"patch",   level,       "--remove-empty-files",
						 "--force", "--forward", NULL};
	if (s->vcs->patch_argv)
		s->vcs->patch_argv(level, argv);
	step_log_header(st, "applying a %zu-byte patch", s->patch.len);
	s->phase = SOURCE_PATCH;
	source_run(st, NULL, argv, s->patch.body, s->patch.len);
}

void source_got(struct step *st, const char *rev, size_t len)
{
	source_set_revision(st, rev, len);
	step_finish(st, RESULTS_SUCCESS);
}

static void source_done(struct step *st, int status, const char *failure)
{
	struct source *s = st->priv;
	int results = step_command_results(st, status, failure);
	if (results >= 0) {
		step_finish(st, results);
		return;
	}
	switch (s->phase) {
	case SOURCE_COPY_RM: /* not fatal: the tree may not be there */
		s->phase = SOURCE_VCS;
		s->state = 0;
		s->vcs->next(st);
		return;
	case SOURCE_VCS:
		s->vcs->next(st);
		return;
	case SOURCE_COPY:
		if (st->rc != 0) {
			step_finish(st, RESULTS_EXCEPTION);
			return;
		}
		s->copy = false;
		s->dir = st->cfg->workdir;
		source_checked_out(st);
		return;
	case SOURCE_PATCH:
		if (st->rc != 0) {
			step_log_header(st, "the patch did not apply");
			step_finish(st, RESULTS_FAILURE);
			return;
		}
		source_revision(st);
		return;
	case SOURCE_REVISION: {
		if (st->rc != 0 || s->out_overflow) {
			step_finish(st, RESULTS_FAILURE);
			return;
		}
		size_t len = s->out.len;
		while (len && strchr(" \t\r\n", s->out.ptr[len - 1]))
			len--;
		if (!s->vcs->revision_ok(s->out.ptr, len)) {
			step_log_header(st, "%s printed no revision", s->vcs->tool);
			step_finish(st, RESULTS_FAILURE);
			return;
		}
		source_got(st, s->out.ptr, len);
		return;
	}
	}
}

/* s->branch, s->revision from the build's sourcestamp when it is this
 * step's codebase. */
static void source_stamp(struct step *st, struct source *s)
{
	struct build *b = st->b;
	const char *cb = b->ss_codebase ? b->ss_codebase : "";
	if (strcmp(cb, st->cfg->source->codebase))
		return;
	if (b->ss_branch && *b->ss_branch) {
		free(s->branch);
		s->branch = xstrdup(b->ss_branch);
	}
	if (b->ss_revision && *b->ss_revision)
		s->revision = xstrdup(b->ss_revision);
}

void source_start(struct step *st, const struct source_vcs *vcs)
{
	struct build *b = st->b;
	const struct config_source *src = st->cfg->source;
	struct source *s = xcalloc(1, sizeof(*s));
	st->priv = s;
	s->vcs = vcs;
	buf_init(&s->out, KILN_MAX_SOURCE_OUTPUT);
	step_set_state(st, "updating");
	if (step_render(st, &src->repourl, "repourl", &s->repourl) < 0 ||
	    step_render(st, &src->branch, "branch", &s->branch) < 0) {
		step_finish(st, RESULTS_EXCEPTION);
		return;
	}
	s->default_branch = s->branch ? xstrdup(s->branch) : NULL;
	source_stamp(st, s);
	if (s->branch && !*s->branch) {
		free(s->branch);
		s->branch = NULL;
	}
	/* a name the tool would take for an option is refused */
	if ((s->branch && s->branch[0] == '-') || (s->revision && s->revision[0] == '-')) {
		step_log_header(st, "refusing a branch or revision that starts with '-'");
		step_finish(st, RESULTS_EXCEPTION);
		return;
	}
	if (vcs->prepare && vcs->prepare(st) < 0) {
		step_finish(st, RESULTS_EXCEPTION);
		return;
	}
	if (!s->repourl || !*s->repourl) {
		step_log_header(st, "the repository rendered empty");
		step_finish(st, RESULTS_EXCEPTION);
		return;
	}
	int r = db_buildset_patch(b->e->m->db, b->bsid, &s->patch);
	if (r < 0) {
		step_log_header(st, "cannot read the build's patch");
		step_finish(st, RESULTS_EXCEPTION);
		return;
	}
	s->full = src->mode == CONFIG_SOURCE_FULL;
	s->method = src->method;
	s->copy = s->full && src->method == CONFIG_SOURCE_COPY;
	s->dir = s->copy ? SOURCE_COPY_DIR : st->cfg->workdir;
	step_log_header(st, "%s %s of %s%s%s%s%s", vcs->tool, s->full ? "full" : "incremental",
			s->repourl, s->branch ? " branch " : "", s->branch ? s->branch : "",
			s->revision ? " revision " : "", s->revision ? s->revision : "");
	if (s->copy) {
		s->phase = SOURCE_COPY_RM;
		source_rmdir(st, NULL);
		return;
	}
	s->phase = SOURCE_VCS;
	vcs->next(st);
}

void source_free(struct step *st)
{
	struct source *s = st->priv;
	if (!s)
		return;
	free(s->repourl);
	free(s->branch);
	free(s->default_branch);
	free(s->revision);
	free(s->extra);
	db_patch_data_release(&s->patch);
	buf_release(&s->out);
	free(s);
	st->priv = NULL;
}

char *source_describe(const struct step *st)
{
	(void)st;
	return xstrdup("update");
}
