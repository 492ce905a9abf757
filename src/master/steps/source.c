/*
 * What the source steps share (steps/step.h, "source steps"): rendering
 * the repository and taking the branch and revision of the sourcestamp of
 * the step's codebase, that sourcestamp's try patch, got_revision merged
 * per codebase, and running commands on the worker (git's included).
 * Every step but git also shares its sequence's frame: each VCS
 * (step-hg.c, step-svn.c, ...) is a struct source_vcs whose next() drives
 * its own checkout, and source.c runs method copy's "source" tree, the
 * patch and the revision command around it.
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

void source_run_vcs(struct step *st, int state, const char *dir, const char *const *argv)
{
	struct source *s = st->priv;
	const char *full[SOURCE_MAX_ARGV + 1] = {s->vcs->tool};
	size_t n = 1;
	if (s->vcs->option)
		full[n++] = s->vcs->option;
	for (size_t i = 0; argv[i] && n < SOURCE_MAX_ARGV; i++)
		full[n++] = argv[i];
	full[n] = NULL;
	s->state = state;
	source_run(st, dir, full, NULL, 0);
}

void source_clobber(struct step *st, int rmdir_state)
{
	struct source *s = st->priv;
	s->state = rmdir_state;
	source_rmdir(st, s->dir);
}

void source_look(struct step *st, const char *marker, int stat_state, int rmdir_state)
{
	struct source *s = st->priv;
	if (s->full && s->method == CONFIG_SOURCE_CLOBBER) {
		source_clobber(st, rmdir_state);
		return;
	}
	s->state = stat_state;
	source_stat(st, s->dir, marker);
}

bool source_exited_ok(struct step *st, int results)
{
	if (st->rc == 0)
		return true;
	step_finish(st, results);
	return false;
}

void source_vcs_done(struct step *st)
{
	if (source_exited_ok(st, RESULTS_FAILURE))
		source_checked_out(st);
}

bool source_revno_ok(const char *text, size_t len)
{
	if (!len || len > 20)
		return false;
	for (size_t i = 0; i < len; i++)
		if (text[i] < '0' || text[i] > '9')
			return false;
	return true;
}

json_t *source_revision_merge(json_t *old, const char *codebase, const char *rev, size_t len)
{
	if (json_is_object(old)) {
		json_t *v = json_copy(old);
		json_object_set_new(v, codebase, json_stringn(rev, len));
		return v;
	}
	if (!*codebase)
		return json_stringn(rev, len);
	json_t *v = json_object();
	if (json_is_string(old)) /* a step without a codebase set it */
		json_object_set(v, "", old);
	json_object_set_new(v, codebase, json_stringn(rev, len));
	return v;
}

void source_finish_revision(struct step *st, const char *source, const char *rev, size_t len)
{
	json_t *old = json_array_get(json_object_get(st->b->props, "got_revision"), 0);
	step_set_property(st, "got_revision",
			  source_revision_merge(old, st->cfg->source->codebase, rev, len), source);
	step_finish(st, RESULTS_SUCCESS);
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
	source_patch_log(st, s->patch.body, s->patch.len);
	s->phase = SOURCE_PATCH;
	source_run(st, NULL, argv, s->patch.body, s->patch.len);
}

void source_got(struct step *st, const char *rev, size_t len)
{
	struct source *s = st->priv;
	source_finish_revision(st, s->vcs->source, rev, len);
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

/* The build's sourcestamp of the step's codebase, or NULL. */
static const struct db_sourcestamp *source_sourcestamp(const struct step *st)
{
	const struct build *b = st->b;
	return db_sourcestamp_find(b->ss_all, b->nss_all, st->cfg->source->codebase);
}

int source_render(struct step *st, char **ret_repourl, char **ret_branch, char **ret_default,
		  char **ret_revision)
{
	const struct config_source *src = st->cfg->source;
	_cleanup_free_ char *repourl = NULL, *branch = NULL, *def = NULL, *revision = NULL;
	if (step_render(st, &src->repourl, "repourl", &repourl) < 0 ||
	    step_render(st, &src->branch, "branch", &branch) < 0)
		return -1;
	def = branch ? xstrdup(branch) : NULL;
	const struct db_sourcestamp *ss = source_sourcestamp(st);
	if (!ss && src->codebase && *src->codebase)
		step_log_header(st,
				"the build has no sourcestamp of codebase '%s': checking out the "
				"step's own branch at its head",
				src->codebase);
	if (ss && ss->branch && *ss->branch) {
		free(branch);
		branch = xstrdup(ss->branch);
	}
	if (ss && ss->revision && *ss->revision)
		revision = xstrdup(ss->revision);
	if (branch && !*branch) {
		free(branch);
		branch = NULL;
	}
	/* a name the tool would take for an option is refused */
	if ((branch && branch[0] == '-') || (revision && revision[0] == '-')) {
		step_log_header(st, "refusing a branch or revision that starts with '-'");
		return -1;
	}
	*ret_repourl = TAKE_PTR(repourl);
	*ret_branch = TAKE_PTR(branch);
	if (ret_default)
		*ret_default = TAKE_PTR(def);
	*ret_revision = TAKE_PTR(revision);
	return 0;
}

void source_patch_log(struct step *st, const char *body, size_t len)
{
	int64_t logid;
	if (step_add_log(st, "patch", 't', &logid) < 0)
		return;
	if (step_log_text(st, logid, body, len) >= 0)
		step_log_close(st, logid);
}

int source_patch(struct step *st, struct db_patch_data *ret)
{
	struct build *b = st->b;
	if (!b->has_patch) /* known as the build started: nothing to read */
		return 0;
	return build_patch(b, st->cfg->source->codebase, ret);
}

void source_start(struct step *st, const struct source_vcs *vcs)
{
	const struct config_source *src = st->cfg->source;
	struct source *s = xcalloc(1, sizeof(*s));
	st->priv = s;
	s->vcs = vcs;
	buf_init(&s->out, KILN_MAX_SOURCE_OUTPUT);
	step_set_state(st, "updating");
	if (source_render(st, &s->repourl, &s->branch, &s->default_branch, &s->revision) < 0) {
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
	if (source_patch(st, &s->patch) < 0) {
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
	free(s->user);
	free(s->password);
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
