/*
 * git { }: checks out the build's revision with git on the worker, as
 * Buildbot's Git step does, through a sequence of remote commands:
 *
 *   clobber:   rmdir WORKDIR, then clone
 *   otherwise: stat DIR/.git; a tree there is updated, else DIR is removed
 *              and cloned
 *   update:    [git clean -f -f -d (-x)]  (mode full, method clean/fresh)
 *              git fetch -f -t [--depth N] REPOURL BRANCH  (retry_fetch: once more)
 *              git checkout -f REVISION|FETCH_HEAD
 *   clone:     git clone [--depth N] [--branch BRANCH] REPOURL .
 *              (retry = {delay, repeats}: removed and cloned again)
 *              [git checkout -f REVISION]
 *   then:      [git checkout -B BRANCH]
 *              [git submodule sync; git submodule update --init --recursive;
 *               git submodule foreach --recursive git clean ...]
 *              copy: rmdir WORKDIR; cpdir source WORKDIR
 *              [git update-index --refresh; git apply --index -pN] (a try patch)
 *              git rev-parse HEAD  -> got_revision
 *
 * DIR is the workdir, or "source" beside it for method copy.  The branch
 * and revision come from the build's sourcestamp when it has them, else
 * the step's branch (and the remote's HEAD without one).
 */
#define LOG_SUBSYS "build"

#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "db/db.h"
#include "master/engine-int.h"
#include "master/master.h"
#include "master/steps/step.h"
#include "proto/msg.h"

enum step_git_state {
	GIT_CLOBBER,   /* rmdir before a clone */
	GIT_STAT,      /* is DIR/.git there? */
	GIT_CLEAN,     /* git clean */
	GIT_FETCH,     /* git fetch */
	GIT_CHECKOUT,  /* git checkout -f REV */
	GIT_CLONE,     /* git clone */
	GIT_BRANCH,    /* git checkout -B BRANCH */
	GIT_SUB_SYNC,  /* git submodule sync */
	GIT_SUB_UPD,   /* git submodule update */
	GIT_SUB_CLEAN, /* git submodule foreach git clean */
	GIT_COPY_RM,   /* rmdir WORKDIR (method copy) */
	GIT_COPY,      /* cpdir source WORKDIR */
	GIT_REFRESH,   /* git update-index --refresh */
	GIT_PATCH,     /* git apply */
	GIT_REVPARSE,  /* git rev-parse HEAD */
};

struct step_git {
	enum step_git_state state;
	char *repourl, *branch, *revision; /* rendered / from the sourcestamp; owned */
	const char *dir;                   /* where git runs, relative to the builder's dir */
	bool updatable;                    /* DIR/.git exists */
	bool clobbering;                   /* the rmdir before a clone */
	int fetch_tries, clone_tries;
	struct db_patch_data patch;
	struct buf out; /* rev-parse's stdout */
	uv_timer_t *retry;
};

#define GIT_SOURCE_DIR "source"

static void step_git_next(struct step *st);

static char *step_git_describe(const struct step *st)
{
	(void)st;
	return xstrdup("update");
}

static void step_git_update(struct step *st, const char *key, const msgpack_object *value)
{
	struct step_git *g = st->priv;
	if (g->state != GIT_REVPARSE || strcmp(key, "stdout"))
		return;
	const msgpack_object *t = value;
	if (value->type == MSGPACK_OBJECT_ARRAY && value->via.array.size >= 1)
		t = &value->via.array.ptr[0];
	struct str s;
	if (proto_obj_str(t, &s) && buf_add(&g->out, s.p, s.len) < 0)
		buf_reset(&g->out); /* more than a revision: not one */
}

static void step_git_done(struct step *st, int status, const char *failure);

static const struct step_cmd_ops step_git_ops = {step_git_update, step_git_done};

/* Runs git with argv (after "git") in dir (NULL: the step's workdir). */
static void step_git_run(struct step *st, const char *dir, const char *const *argv,
			 const char *stdin_text, size_t stdin_len)
{
	const char *full[24] = {"git"};
	size_t n = 1;
	for (size_t i = 0; argv[i] && n + 1 < ARRAY_SIZE(full); i++)
		full[n++] = argv[i];
	full[n] = NULL;
	(void)source_shell(st, dir, full, NULL, stdin_text, stdin_len, &step_git_ops);
}

/* A file-system command (rmdir, cpdir, stat) on worker paths. */
static void step_git_fs(struct step *st, const char *name, const char *key1, const char *path1,
			const char *key2, const char *path2)
{
	(void)source_fs_cmd(st, name, key1, path1, key2, path2, &step_git_ops);
}

static void step_git_rmdir(struct step *st, const char *dir)
{
	_cleanup_free_ char *path = step_worker_path(st, dir, NULL);
	if (!path) {
		step_finish(st, RESULTS_EXCEPTION);
		return;
	}
	step_git_fs(st, "rmdir", "paths", path, NULL, NULL);
}

static void step_git_depth(const struct step *st, char *buf, size_t size)
{
	snprintf(buf, size, "--depth=%d", st->cfg->source->shallow);
}

static void step_git_clone(struct step *st)
{
	struct step_git *g = st->priv;
	char depth[32];
	const char *argv[10];
	size_t n = 0;
	argv[n++] = "clone";
	if (st->cfg->source->shallow) {
		step_git_depth(st, depth, sizeof(depth));
		argv[n++] = depth;
	}
	if (g->branch) {
		argv[n++] = "--branch";
		argv[n++] = g->branch;
	}
	argv[n++] = "--";
	argv[n++] = g->repourl;
	argv[n++] = ".";
	argv[n] = NULL;
	g->state = GIT_CLONE;
	g->clone_tries++;
	step_git_run(st, g->dir, argv, NULL, 0);
}

static void step_git_fetch(struct step *st)
{
	struct step_git *g = st->priv;
	char depth[32];
	const char *argv[10];
	size_t n = 0;
	argv[n++] = "fetch";
	argv[n++] = "-f";
	argv[n++] = "-t";
	if (st->cfg->source->shallow) {
		step_git_depth(st, depth, sizeof(depth));
		argv[n++] = depth;
	}
	argv[n++] = "--";
	argv[n++] = g->repourl;
	argv[n++] = g->branch ? g->branch : "HEAD";
	argv[n] = NULL;
	g->state = GIT_FETCH;
	g->fetch_tries++;
	step_git_run(st, g->dir, argv, NULL, 0);
}

static void step_git_retry_timer(uv_timer_t *t)
{
	struct step *st = t->data;
	step_git_clone(st);
}

/* A failed clone: removed and tried again after the delay, while repeats
 * are left. true when a retry was started. */
static bool step_git_retry_clone(struct step *st)
{
	struct step_git *g = st->priv;
	const struct config_source *src = st->cfg->source;
	if (g->clone_tries > src->retry_repeats)
		return false;
	step_log_header(st, "clone failed: retrying in %.1f s (%d of %d)", src->retry_delay,
			g->clone_tries, src->retry_repeats);
	g->clobbering = true;
	g->state = GIT_CLOBBER;
	step_git_rmdir(st, g->dir);
	return true;
}

/* After a successful command: the next one. */
static void step_git_next(struct step *st)
{
	struct step_git *g = st->priv;
	const struct config_source *src = st->cfg->source;
	bool full = src->mode == CONFIG_SOURCE_FULL;
	switch (g->state) {
	case GIT_CLOBBER:
		if (g->clobbering && g->clone_tries > 0 && st->cfg->source->retry_delay > 0) {
			/* a retry: wait first */
			if (!g->retry) {
				g->retry = xmalloc(sizeof(*g->retry));
				uv_timer_init(st->b->e->m->loop, g->retry);
				g->retry->data = st;
			}
			uv_timer_start(g->retry, step_git_retry_timer,
				       (uint64_t)(src->retry_delay * 1000), 0);
			return;
		}
		step_git_clone(st);
		return;
	case GIT_STAT:
		if (!g->updatable) {
			g->state = GIT_CLOBBER;
			g->clobbering = true;
			step_git_rmdir(st, g->dir);
			return;
		}
		if (full &&
		    (src->method == CONFIG_SOURCE_FRESH || src->method == CONFIG_SOURCE_CLEAN)) {
			const char *argv[] = {"clean", "-f", "-f", "-d", NULL, NULL};
			if (src->method == CONFIG_SOURCE_FRESH)
				argv[4] = "-x";
			g->state = GIT_CLEAN;
			step_git_run(st, g->dir, argv, NULL, 0);
			return;
		}
		/* fall through */
	case GIT_CLEAN:
		step_git_fetch(st);
		return;
	case GIT_FETCH: {
		const char *argv[] = {"checkout", "-f", g->revision ? g->revision : "FETCH_HEAD",
				      NULL};
		g->state = GIT_CHECKOUT;
		step_git_run(st, g->dir, argv, NULL, 0);
		return;
	}
	case GIT_CLONE:
		if (g->revision) {
			const char *argv[] = {"checkout", "-f", g->revision, NULL};
			g->state = GIT_CHECKOUT;
			step_git_run(st, g->dir, argv, NULL, 0);
			return;
		}
		/* fall through */
	case GIT_CHECKOUT:
		if (g->branch) {
			const char *argv[] = {"checkout", "-B", g->branch, NULL};
			g->state = GIT_BRANCH;
			step_git_run(st, g->dir, argv, NULL, 0);
			return;
		}
		/* fall through */
	case GIT_BRANCH:
		if (src->submodules) {
			const char *argv[] = {"submodule", "sync", NULL};
			g->state = GIT_SUB_SYNC;
			step_git_run(st, g->dir, argv, NULL, 0);
			return;
		}
		goto copy;
	case GIT_SUB_SYNC: {
		const char *argv[] = {"submodule",   "update",  "--init",
				      "--recursive", "--force", NULL};
		g->state = GIT_SUB_UPD;
		step_git_run(st, g->dir, argv, NULL, 0);
		return;
	}
	case GIT_SUB_UPD:
		if (full &&
		    (src->method == CONFIG_SOURCE_FRESH || src->method == CONFIG_SOURCE_CLEAN)) {
			const char *argv[] = {"submodule", "foreach", "--recursive", "git", "clean",
					      "-f",        "-f",      "-d",          NULL,  NULL};
			if (src->method == CONFIG_SOURCE_FRESH)
				argv[8] = "-x";
			g->state = GIT_SUB_CLEAN;
			step_git_run(st, g->dir, argv, NULL, 0);
			return;
		}
		/* fall through */
	case GIT_SUB_CLEAN:
	copy:
		if (full && src->method == CONFIG_SOURCE_COPY) {
			g->state = GIT_COPY_RM;
			step_git_rmdir(st, NULL);
			return;
		}
		goto patch;
	case GIT_COPY_RM: {
		_cleanup_free_ char *from = step_worker_path(st, GIT_SOURCE_DIR, NULL);
		_cleanup_free_ char *to = from ? step_worker_path(st, NULL, NULL) : NULL;
		if (!to) {
			step_finish(st, RESULTS_EXCEPTION);
			return;
		}
		g->state = GIT_COPY;
		step_git_fs(st, "cpdir", "from_path", from, "to_path", to);
		return;
	}
	case GIT_COPY:
	patch:
		if (g->patch.body) {
			const char *argv[] = {"update-index", "--refresh", NULL};
			g->state = GIT_REFRESH;
			step_git_run(st, NULL, argv, NULL, 0);
			return;
		}
		goto revparse;
	case GIT_REFRESH: {
		char level[16];
		snprintf(level, sizeof(level), "-p%d", g->patch.level);
		const char *argv[] = {"apply", "--index", level, NULL, NULL};
		_cleanup_free_ char *dir = NULL;
		if (g->patch.subdir && *g->patch.subdir) {
			dir = xasprintf("--directory=%s", g->patch.subdir);
			argv[3] = dir;
		}
		step_log_header(st, "applying a %zu-byte patch", g->patch.len);
		g->state = GIT_PATCH;
		step_git_run(st, NULL, argv, g->patch.body, g->patch.len);
		return;
	}
	case GIT_PATCH:
	revparse : {
		const char *argv[] = {"rev-parse", "HEAD", NULL};
		g->state = GIT_REVPARSE;
		buf_reset(&g->out);
		step_git_run(st, NULL, argv, NULL, 0);
		return;
	}
	case GIT_REVPARSE: {
		/* a 40 or 64 hex digit revision, alone on its line */
		size_t len = g->out.len;
		while (len && isspace((unsigned char)g->out.ptr[len - 1]))
			len--;
		bool hex = len >= 40;
		for (size_t i = 0; hex && i < len; i++)
			hex = isxdigit((unsigned char)g->out.ptr[i]);
		if (!hex) {
			step_log_header(st, "git rev-parse HEAD printed no revision");
			step_finish(st, RESULTS_FAILURE);
			return;
		}
		source_finish_revision(st, "Git", g->out.ptr, len);
		return;
	}
	}
}

static void step_git_done(struct step *st, int status, const char *failure)
{
	struct step_git *g = st->priv;
	int results = step_command_results(st, status, failure);
	if (results >= 0) {
		step_finish(st, results);
		return;
	}
	if (g->state == GIT_STAT) {
		g->updatable = st->rc == 0;
		step_git_next(st);
		return;
	}
	if (st->rc == 0 || g->state == GIT_REFRESH) {
		/* update-index --refresh fails on a dirty index: git apply decides */
		step_git_next(st);
		return;
	}
	if (g->state == GIT_FETCH && st->cfg->source->retry_fetch && g->fetch_tries < 2) {
		step_log_header(st, "fetch failed: trying once more");
		step_git_fetch(st);
		return;
	}
	if (g->state == GIT_CLONE && step_git_retry_clone(st))
		return;
	step_finish(st, g->state == GIT_CLOBBER || g->state == GIT_COPY_RM || g->state == GIT_COPY
				? RESULTS_EXCEPTION
				: RESULTS_FAILURE);
}

static void step_git_start(struct step *st)
{
	const struct config_source *src = st->cfg->source;
	struct step_git *g = xcalloc(1, sizeof(*g));
	st->priv = g;
	buf_init(&g->out, 4096);
	step_set_state(st, "updating");
	if (source_render(st, &g->repourl, &g->branch, NULL, &g->revision) < 0) {
		step_finish(st, RESULTS_EXCEPTION);
		return;
	}
	if (!g->repourl || !*g->repourl) {
		step_log_header(st, "'repourl' rendered empty");
		step_finish(st, RESULTS_EXCEPTION);
		return;
	}
	if (source_patch(st, &g->patch) < 0) {
		step_finish(st, RESULTS_EXCEPTION);
		return;
	}
	bool full = src->mode == CONFIG_SOURCE_FULL;
	g->dir = full && src->method == CONFIG_SOURCE_COPY ? GIT_SOURCE_DIR : st->cfg->workdir;
	step_log_header(st, "git %s of %s%s%s%s%s", full ? "full" : "incremental", g->repourl,
			g->branch ? " branch " : "", g->branch ? g->branch : "",
			g->revision ? " revision " : "", g->revision ? g->revision : "");
	if (full && src->method == CONFIG_SOURCE_CLOBBER) {
		g->state = GIT_CLOBBER;
		g->clobbering = true;
		step_git_rmdir(st, g->dir);
		return;
	}
	_cleanup_free_ char *dotgit = step_worker_path(st, g->dir, ".git");
	if (!dotgit) {
		step_finish(st, RESULTS_EXCEPTION);
		return;
	}
	g->state = GIT_STAT;
	step_git_fs(st, "stat", "path", dotgit, NULL, NULL);
}

static void step_git_close_cb(uv_handle_t *h)
{
	free(h);
}

static void step_git_free(struct step *st)
{
	struct step_git *g = st->priv;
	if (!g)
		return;
	if (g->retry)
		uv_close((uv_handle_t *)g->retry, step_git_close_cb);
	free(g->repourl);
	free(g->branch);
	free(g->revision);
	db_patch_data_release(&g->patch);
	buf_release(&g->out);
	free(g);
	st->priv = NULL;
}

/* A stop while waiting to retry a clone: nothing runs on the worker. */
static void step_git_interrupt(struct step *st, const char *why)
{
	struct step_git *g = st->priv;
	if (g && g->retry && uv_is_active((uv_handle_t *)g->retry)) {
		uv_timer_stop(g->retry);
		step_finish(st, RESULTS_CANCELLED);
		return;
	}
	step_interrupt(st, why);
}

const struct step_kind step_kind_git = {
	.kind = CONFIG_STEP_GIT,
	.name = "git",
	.describe = step_git_describe,
	.start = step_git_start,
	.interrupt = step_git_interrupt,
	.free = step_git_free,
};
