/*
 * The polling engine shared by the git, hg, svn, bzr, darcs and cvs pollers (poller.h): a
 * timer per poller, each poll a sequence of child processes (common/proc.h:
 * stdout and stderr captured through pipes into capped buffers, a time limit
 * per step) driven by the VCS module, the last-seen revisions kept in the
 * database's object state, and failure streaks (one error, one
 * "recovered", capped exponential backoff).  Nothing here blocks the loop.
 */
#define LOG_SUBSYS "poller"

#include "master/changes/poller.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"
#include "master/changes/change.h"
#include "master/master.h"

extern char **environ;

static const struct poller_vcs *const poller_kinds[] = {
	[CONFIG_POLLER_GIT] = &poller_git,         [CONFIG_POLLER_HG] = &poller_hg,
	[CONFIG_POLLER_SVN] = &poller_svn,         [CONFIG_POLLER_BZR] = &poller_bzr,
	[CONFIG_POLLER_DARCS] = &poller_darcs,     [CONFIG_POLLER_CVS] = &poller_cvs,
	[CONFIG_POLLER_MAILDIR] = &poller_maildir, /* slice "alerts" */
};

struct poller {
	struct pollers *ps;              /* borrowed: the owner */
	const struct config_poller *cfg; /* borrowed: lives in m->cfg */
	const struct poller_vcs *vcs;
	int id;
	char *workdir;   /* owned */
	char *state_key; /* owned: "poller:NAME" */
	json_t *state;   /* owned */
	json_t *stored;  /* owned: the state as last read or stored (a failed poll's edits go) */
	json_t *scratch; /* owned */
	uv_timer_t timer;
	uv_timer_t step_timer;
	/* the running step */
	bool running;       /* a poll is in progress */
	bool again;         /* poll once more when this one ends */
	struct proc *child; /* the running step's tool (it frees itself), or NULL */
	int64_t exit_status;
	int term_signal;
	bool timed_out, gave_up;
	char *cmd;               /* owned: argv[0] argv[1] of the running step, for messages */
	struct proc_capture cap; /* the tool's stdout (whole or over the cap) and stderr head */
	/* results */
	struct change *pending;
	size_t npending, pending_alloc;
	char *error;       /* owned: why the current poll failed */
	char *last_error;  /* owned: the failure streak's first error */
	unsigned failures; /* consecutive failed polls */
	double last_poll;
	int handles; /* open handles: the two timers */
	bool stopping;
	unsigned gen, read_gen; /* bumped when the lease comes or goes; read_gen: the read's */
	bool refs_read;         /* a state read in flight holds the poller */
};

struct pollers {
	struct master *m; /* borrowed */
	struct poller **v;
	size_t n;
	size_t live; /* pollers not yet freed (stop waits for their handles) */
	bool stopping;
	char **env; /* owned: the children's environment */
	/* On PostgreSQL the pollers run on the master holding the services'
	 * lease only (masters.c): they wait, paused, until it comes */
	bool paused;
};

static void poller_run_step(struct poller *p, const struct poller_out *out);
static void poller_schedule(struct poller *p, double seconds);

/* ---- accessors for the VCS modules ----------------------------------------------------- */

const struct config_poller *poller_config(struct poller *p)
{
	return p->cfg;
}

const char *poller_workdir(struct poller *p)
{
	return p->workdir;
}

json_t *poller_state(struct poller *p)
{
	return p->state;
}

json_t *poller_scratch(struct poller *p)
{
	return p->scratch;
}

void poller_emit(struct poller *p, struct change *c)
{
	ARRAY_GROW(p->pending, p->npending + 1, p->pending_alloc);
	if (!c->src) /* the maildir source sets each mail's own (git, hg, svn) */
		c->src = p->vcs->kind;
	p->pending[p->npending++] = *c;
	*c = (struct change){0};
}

void poller_again(struct poller *p)
{
	p->again = true;
}

int poller_fail(struct poller *p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	free(p->error);
	if (vasprintf(&p->error, fmt, ap) < 0)
		abort();
	va_end(ap);
	/* one line: the tool's stderr may hold newlines */
	for (char *c = p->error; *c; c++)
		if (*c == '\n' || *c == '\r')
			*c = ' ';
	return KILN_ESTATE;
}

char **poller_argv(const char *arg0, ...)
{
	size_t n = 1;
	va_list ap;
	va_start(ap, arg0);
	while (va_arg(ap, const char *))
		n++;
	va_end(ap);
	char **v = xcalloc(n + 1, sizeof(*v));
	v[0] = xstrdup(arg0);
	va_start(ap, arg0);
	for (size_t i = 1; i < n; i++)
		v[i] = xstrdup(va_arg(ap, const char *));
	va_end(ap);
	return v;
}

static void argv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/* ---- lifetime ------------------------------------------------------------------------- */

static void poller_free(struct poller *p)
{
	struct pollers *ps = p->ps;
	json_decref(p->state);
	json_decref(p->stored);
	json_decref(p->scratch);
	change_list_free(p->pending, p->npending);
	proc_capture_release(&p->cap);
	free(p->cmd);
	free(p->error);
	free(p->last_error);
	free(p->workdir);
	free(p->state_key);
	free(p);
	if (--ps->live == 0 && ps->stopping) {
		for (size_t i = 0; ps->env && ps->env[i]; i++)
			free(ps->env[i]);
		free(ps->env);
		free(ps->v);
		free(ps);
	}
}

static void poller_handle_closed(uv_handle_t *h)
{
	struct poller *p = h->data;
	if (--p->handles == 0 && p->stopping && !p->refs_read)
		poller_free(p);
}

/* ---- one child process ------------------------------------------------------------------ */

static void poller_child_done(struct poller *p)
{
	uv_timer_stop(&p->step_timer);
	struct poller_out out = {
		.status = p->term_signal ? 128 + p->term_signal : (int)p->exit_status,
		.text = p->cap.out.ptr,
		.len = p->cap.out.len,
		.truncated = proc_capture_out_over(&p->cap),
		.err = p->cap.err.ptr,
	};
	if (p->timed_out) {
		poller_fail(p, "'%s' took longer than %d s and was killed", p->cmd,
			    KILN_POLLER_STEP_TIMEOUT_MS / 1000);
		poller_run_step(p, NULL);
		return;
	}
	if (p->gave_up) {
		poller_fail(p, "'%s' did not die after SIGKILL (left to the system)", p->cmd);
		poller_run_step(p, NULL);
		return;
	}
	if (proc_capture_out_over(&p->cap)) {
		poller_fail(p, "'%s' wrote more than %u bytes", p->cmd, KILN_MAX_POLLER_OUTPUT);
		poller_run_step(p, NULL);
		return;
	}
	/* trim the stderr tail for messages; a cut one says so */
	while (p->cap.err.len && (p->cap.err.ptr[p->cap.err.len - 1] == '\n'))
		buf_setlen(&p->cap.err, p->cap.err.len - 1);
	if (p->cap.err_cut) {
		buf_setlen(&p->cap.err, p->cap.err.len > 16 ? p->cap.err.len - 16 : 0);
		if (buf_adds(&p->cap.err, " [stderr cut]") < 0)
			buf_reset(&p->cap.err); /* not reached: 16 bytes were freed */
	}
	poller_run_step(p, &out);
}

static int poller_on_output(void *ud, int stream, const char *data, size_t len)
{
	struct poller *p = ud;
	/* < 0 past the stdout cap: proc kills the tool's group */
	return proc_capture_add(&p->cap, stream, data, len);
}

static void poller_on_done(void *ud, int64_t exit_status, int term_signal, bool gave_up)
{
	struct poller *p = ud;
	p->child = NULL;
	p->exit_status = exit_status;
	p->term_signal = term_signal;
	p->gave_up = gave_up;
	poller_child_done(p);
}

static void poller_on_step_timeout(uv_timer_t *t)
{
	struct poller *p = t->data;
	if (p->child) {
		p->timed_out = true;
		proc_kill(p->child, SIGKILL, 0);
	}
}

/* Spawns argv in the work directory.  On failure records the error. */
static int poller_spawn(struct poller *p, char **argv)
{
	free(p->cmd);
	p->cmd = argv[1] ? xasprintf("%s %s", argv[0], argv[1]) : xstrdup(argv[0]);
	proc_capture_reset(&p->cap);
	p->timed_out = p->gave_up = false;
	p->exit_status = 0;
	p->term_signal = 0;
	struct proc_opts o = {
		.argv = argv,
		.env = p->ps->env,
		.cwd = p->workdir,
	};
	static const struct proc_ops ops = {poller_on_output, poller_on_done};
	int r = proc_start(p->ps->m->loop, &o, &ops, p, &p->child);
	if (r < 0) {
		p->child = NULL;
		return poller_fail(p, "cannot run '%s': %s", argv[0], uv_strerror(r));
	}
	uv_timer_start(&p->step_timer, poller_on_step_timeout, KILN_POLLER_STEP_TIMEOUT_MS, 0);
	return 0;
}

/* ---- a poll ----------------------------------------------------------------------------- */

static double poller_backoff(const struct poller *p)
{
	double d = p->cfg->interval;
	for (unsigned i = 1; i < p->failures && d < KILN_POLLER_MAX_BACKOFF; i++)
		d *= 2;
	if (d > KILN_POLLER_MAX_BACKOFF)
		d = KILN_POLLER_MAX_BACKOFF > p->cfg->interval ? KILN_POLLER_MAX_BACKOFF
							       : p->cfg->interval;
	return d;
}

static void poller_finish(struct poller *p, bool ok)
{
	struct master *m = p->ps->m;
	p->running = false;
	p->last_poll = clock_wall();
	if (ok) {
		int r = 0;
		size_t stored = 0;
		for (size_t i = 0; i < p->npending; i++) {
			if (!p->pending[i].project && p->cfg->project)
				p->pending[i].project = xstrdup(p->cfg->project);
			if (!p->pending[i].category && p->cfg->category)
				p->pending[i].category = xstrdup(p->cfg->category);
			if (!p->pending[i].codebase && p->cfg->codebase)
				p->pending[i].codebase = xstrdup(p->cfg->codebase);
			if (!p->pending[i].revlink && p->cfg->revlink && p->pending[i].revision)
				p->pending[i].revlink =
					xasprintf(p->cfg->revlink, p->pending[i].revision);
			if (!p->pending[i].repository)
				p->pending[i].repository = xstrdup(p->cfg->repository);
		}
		r = change_add_list(m, p->pending, p->npending, &stored);
		/* the state moves on only with its changes: one batch, one commit */
		if (r >= 0)
			r = db_state_set(m->db, p->state_key, p->state);
		if (r >= 0) {
			json_decref(p->stored);
			p->stored = json_deep_copy(p->state);
		}
		if (r < 0) {
			poller_fail(p, "cannot store changes: %s", db_errmsg(m->db));
			ok = false;
		} else if (stored)
			log_info("poller '%s': %zu new change%s", p->cfg->name, stored,
				 stored == 1 ? "" : "s");
	}
	change_list_free(p->pending, p->npending);
	p->pending = NULL;
	p->npending = 0;
	p->pending_alloc = 0;
	/* a big log must not stay allocated between polls */
	proc_capture_release(&p->cap);
	if (!ok) {
		/* back to the stored state: the failed poll's edits must not stick */
		json_decref(p->state);
		p->state = json_deep_copy(p->stored);
		p->failures++;
		if (p->failures == 1) {
			log_error("poller '%s': %s (retrying with backoff; logged once until it "
				  "recovers)",
				  p->cfg->name, p->error ? p->error : "failed");
			free(p->last_error);
			p->last_error = xstrdup(p->error ? p->error : "failed");
		} else {
			log_debug("poller '%s': still failing: %s", p->cfg->name,
				  p->error ? p->error : "failed");
		}
		poller_schedule(p, p->again ? 0 : poller_backoff(p));
	} else {
		if (p->failures)
			log_info("poller '%s': recovered after %u failed poll%s", p->cfg->name,
				 p->failures, p->failures == 1 ? "" : "s");
		p->failures = 0;
		poller_schedule(p, p->again ? 0 : p->cfg->interval);
	}
	p->again = false;
}

static void poller_run_step(struct poller *p, const struct poller_out *out)
{
	for (;;) {
		if (p->error) {
			poller_finish(p, false);
			return;
		}
		char **argv = NULL;
		int r = p->vcs->step(p, out, &argv);
		if (r < 0) {
			if (!p->error)
				poller_fail(p, "%s", err_str(r));
			argv_free(argv);
			poller_finish(p, false);
			return;
		}
		if (r == 0) {
			argv_free(argv);
			poller_finish(p, true);
			return;
		}
		r = poller_spawn(p, argv);
		argv_free(argv);
		if (r >= 0)
			return; /* continues in poller_child_done */
				/* spawn failed: the error is set; the loop reports it */
	}
}

static void poller_start_poll(struct poller *p)
{
	if (p->stopping || p->ps->paused)
		return;
	if (p->running) {
		p->again = true;
		return;
	}
	p->running = true;
	free(p->error);
	p->error = NULL;
	json_object_clear(p->scratch);
	int r = fsutil_mkdir_p(p->workdir, 0755);
	if (r < 0) {
		poller_fail(p, "cannot create '%s': %s", p->workdir, err_str(r));
		poller_finish(p, false);
		return;
	}
	poller_run_step(p, NULL);
}

static void poller_on_timer(uv_timer_t *t)
{
	poller_start_poll(t->data);
}

static void poller_schedule(struct poller *p, double seconds)
{
	if (p->stopping || p->ps->paused)
		return;
	uint64_t ms = (uint64_t)(seconds * 1000);
	/* at least 1 ms: a 0 ms timer started from a timer callback runs in the
	 * same timer phase, so "poll again at once" would starve I/O */
	if (ms == 0)
		ms = 1;
	uv_timer_start(&p->timer, poller_on_timer, ms, 0);
}

/* ---- the set of pollers ------------------------------------------------------------------ */

static char **pollers_env(void)
{
	static const char *const extra[] = {"LC_ALL=C",
					    "LANG=C",
					    "GIT_TERMINAL_PROMPT=0",
					    "GIT_ASKPASS=/bin/true",
					    "HGPLAIN=1",
					    "SVN_EDITOR=/bin/false",
					    "BRZ_LOG=/dev/null", /* no ~/.cache/breezy/brz.log */
					    NULL};
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = xcalloc(n + ARRAY_SIZE(extra) + 1, sizeof(*env));
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		bool replaced = false;
		for (size_t e = 0; extra[e]; e++) {
			size_t l = strchr(extra[e], '=') - extra[e] + 1;
			if (!strncmp(environ[i], extra[e], l))
				replaced = true;
		}
		if (!replaced)
			env[k++] = xstrdup(environ[i]);
	}
	for (size_t e = 0; extra[e]; e++)
		env[k++] = xstrdup(extra[e]);
	return env;
}

/* One poller for cp, its first poll at once. */
static struct poller *poller_create(struct pollers *ps, const struct config_poller *cp, int id,
				    const char *dir)
{
	struct master *m = ps->m;
	struct poller *p = xcalloc(1, sizeof(*p));
	p->ps = ps;
	p->cfg = cp;
	p->vcs = poller_kinds[cp->kind];
	p->id = id;
	p->workdir = xasprintf("%s/%s", dir, cp->name);
	p->state_key = xasprintf("poller:%s", cp->name);
	p->scratch = json_object();
	proc_capture_init(&p->cap, KILN_MAX_POLLER_OUTPUT, KILN_MAX_POLLER_STDERR);
	json_t *st = NULL;
	int r = ps->paused ? 0 : db_state_get(m->db, p->state_key, &st);
	if (r < 0)
		log_warn("poller '%s': cannot read its stored state (starting afresh): %s",
			 cp->name, db_errmsg(m->db));
	p->state = json_is_object(st) ? st : json_object();
	if (st && !json_is_object(st))
		json_decref(st);
	p->stored = json_deep_copy(p->state);
	uv_timer_init(m->loop, &p->timer);
	uv_timer_init(m->loop, &p->step_timer);
	p->timer.data = p->step_timer.data = p;
	p->handles = 2;
	ps->live++;
	poller_schedule(p, 0);
	log_info("poller '%s': %s %s every %g s%s", cp->name, p->vcs->kind, cp->repository,
		 cp->interval, ps->paused ? " (on the master holding the services' lease)" : "");
	return p;
}

int pollers_start(struct master *m, struct pollers **ret)
{
	struct pollers *ps = xcalloc(1, sizeof(*ps));
	ps->m = m;
	ps->paused = db_is_postgresql(m->db); /* until pollers_lead */
	*ret = ps;
	if (m->cfg->npollers == 0)
		return 0;
	_cleanup_free_ char *dir = xasprintf("%s/pollers", m->basedir);
	int mr = fsutil_mkdir_p(dir, 0755);
	if (mr < 0)
		return log_error_errno(mr, "cannot create '%s'", dir);
	ps->env = pollers_env();
	ps->v = xcalloc(m->cfg->npollers, sizeof(*ps->v));
	for (size_t i = 0; i < m->cfg->npollers; i++)
		ps->v[ps->n++] = poller_create(ps, &m->cfg->poller[i], (int)i + 1, dir);
	return 0;
}

/* slice "reconfig": stops one poller (its running tool killed, what it
 * found in this poll dropped: its stored state has what it had seen). */
static void poller_stop_one(struct poller *p)
{
	p->stopping = true;
	if (p->child) {
		proc_abandon(p->child);
		p->child = NULL;
	}
	uv_close((uv_handle_t *)&p->timer, poller_handle_closed);
	uv_close((uv_handle_t *)&p->step_timer, poller_handle_closed);
}

static const char *poller_name_at(const void *v, size_t i)
{
	return ((struct poller *const *)v)[i]->cfg->name;
}

int pollers_reconfig(struct pollers *ps, const struct config *ncfg)
{
	struct master *m = ps->m;
	size_t n = ncfg->npollers;
	_cleanup_free_ char *dir = xasprintf("%s/pollers", m->basedir);
	if (n > 0) {
		int mr = fsutil_mkdir_p(dir, 0755);
		if (mr < 0)
			return log_error_errno(mr, "cannot create '%s'", dir);
	}
	if (n > 0 && !ps->env)
		ps->env = pollers_env();
	size_t *map = xcalloc(n + 1, sizeof(*map));
	bool *kept = xcalloc(ps->n + 1, sizeof(*kept));
	config_match_names(ps->v, ps->n, poller_name_at, ncfg->poller, n, config_poller_name_at,
			   map);
	struct poller **v = xcalloc(n + 1, sizeof(*v));
	int next_id = 0;
	for (size_t i = 0; i < ps->n; i++)
		if (ps->v[i]->id > next_id)
			next_id = ps->v[i]->id;
	for (size_t j = 0; j < n; j++) {
		const struct config_poller *cp = &ncfg->poller[j];
		size_t i = map[j];
		if (i != SIZE_MAX && ps->v[i]->cfg->kind == cp->kind &&
		    ps->v[i]->cfg->fp == cp->fp) {
			/* the same change source: its state and timer go on */
			v[j] = ps->v[i];
			v[j]->cfg = cp;
			kept[i] = true;
			continue;
		}
		/* new or changed: started afresh from its stored state */
		v[j] = poller_create(ps, cp, i != SIZE_MAX ? ps->v[i]->id : ++next_id, dir);
	}
	for (size_t i = 0; i < ps->n; i++)
		if (!kept[i]) {
			log_info("poller '%s': stopped by the reconfig", ps->v[i]->cfg->name);
			poller_stop_one(ps->v[i]);
		}
	free(ps->v);
	ps->v = v;
	ps->n = n;
	free(map);
	free(kept);
	return 0;
}

void pollers_stop(struct pollers *ps)
{
	if (!ps)
		return;
	ps->stopping = true;
	if (ps->live == 0) {
		for (size_t i = 0; ps->env && ps->env[i]; i++)
			free(ps->env[i]);
		free(ps->env);
		free(ps->v);
		free(ps);
		return;
	}
	for (size_t i = 0; i < ps->n; i++) {
		struct poller *p = ps->v[i];
		p->stopping = true;
		if (p->child) {
			/* the tool's whole process group (git runs helpers of its own) is
			 * SIGKILLed; no callbacks: it frees itself once reaped */
			proc_abandon(p->child);
			p->child = NULL;
		}
		uv_close((uv_handle_t *)&p->timer, poller_handle_closed);
		uv_close((uv_handle_t *)&p->step_timer, poller_handle_closed);
	}
}

static void poller_read_state(struct poller *p);

/* A poller's state read back when the lease came: the last holder's. */
static void poller_state_read(void *arg, int r, json_t *value, const char *err)
{
	struct poller *p = arg;
	p->refs_read = false;
	if (p->stopping) {
		if (p->handles == 0)
			poller_free(p);
		return;
	}
	if (p->ps->paused || r == -ECANCELED)
		return;
	if (p->read_gen != p->gen) { /* the lease went and came back meanwhile */
		poller_read_state(p);
		return;
	}
	if (r < 0) {
		/* polling from a state older than the last holder's would add its
		 * changes again: no poll until the lease comes again */
		log_error("poller '%s': cannot read its stored state: %s (polling waits)",
			  p->cfg->name, err ? err : "failed");
		return;
	}
	json_decref(p->state);
	json_decref(p->stored);
	p->state = json_is_object(value) ? json_deep_copy(value) : json_object();
	p->stored = json_deep_copy(p->state);
	poller_schedule(p, 0);
}

static void poller_read_state(struct poller *p)
{
	struct master *m = p->ps->m;
	if (p->refs_read)
		return; /* its answer is seen as stale (read_gen) and read again */
	if (db_state_get_async(m->db, p->state_key, poller_state_read, p) < 0) {
		log_error("poller '%s': cannot read its stored state: %s (polling waits)",
			  p->cfg->name, db_errmsg(m->db));
		return;
	}
	p->refs_read = true;
	p->read_gen = p->gen;
}

/* Drops the poll in flight (its tool killed, what it found forgotten): the
 * next holder of the lease polls again from the stored state. */
static void poller_drop_poll(struct poller *p)
{
	if (p->child) {
		proc_abandon(p->child);
		p->child = NULL;
	}
	uv_timer_stop(&p->timer);
	uv_timer_stop(&p->step_timer);
	change_list_free(p->pending, p->npending);
	p->pending = NULL;
	p->npending = 0;
	p->pending_alloc = 0;
	proc_capture_release(&p->cap);
	json_decref(p->state);
	p->state = json_deep_copy(p->stored);
	p->running = p->again = false;
	p->failures = 0;
}

void pollers_lead(struct pollers *ps, bool lead)
{
	if (!ps || ps->stopping || ps->paused == !lead)
		return;
	ps->paused = !lead;
	for (size_t i = 0; i < ps->n; i++) {
		struct poller *p = ps->v[i];
		p->gen++;
		if (lead)
			poller_read_state(p);
		else
			poller_drop_poll(p);
	}
	if (ps->n)
		log_info("%s the services' lease: %zu poller%s %s here", lead ? "holding" : "lost",
			 ps->n, ps->n == 1 ? "" : "s", lead ? "poll" : "stopped");
}

int pollers_poll(struct pollers *ps, const char *name)
{
	if (ps && ps->paused) {
		/* another master holds the lease: it polls (masters.c) */
		int n = 0;
		for (size_t i = 0; i < ps->n; i++)
			n += !name || !strcmp(ps->v[i]->cfg->name, name);
		if (name && n == 0)
			return KILN_ENOTFOUND;
		char line[DB_NOTIFY_MAX_LINE + 1];
		if (n &&
		    (size_t)snprintf(line, sizeof(line), "p %s", name ? name : "") < sizeof(line) &&
		    db_notify(ps->m->db, line) < 0)
			log_warn("cannot ask the lease's holder to poll: %s", db_errmsg(ps->m->db));
		return n;
	}
	int n = 0;
	for (size_t i = 0; ps && i < ps->n; i++) {
		struct poller *p = ps->v[i];
		if (name && strcmp(p->cfg->name, name))
			continue;
		if (p->running)
			p->again = true;
		else
			poller_schedule(p, 0);
		n++;
	}
	return n || !name ? n : KILN_ENOTFOUND;
}

json_t *pollers_describe(struct pollers *ps)
{
	json_t *list = json_array();
	for (size_t i = 0; ps && i < ps->n; i++) {
		struct poller *p = ps->v[i];
		json_array_append_new(
			list,
			json_pack("{s:i,s:s,s:s,s:s,s:o,s:b,s:i,s:o}", "changesourceid", p->id,
				  "name", p->cfg->name, "kind", p->vcs->kind, "repository",
				  p->cfg->repository, "last_poll",
				  p->last_poll ? json_integer((json_int_t)p->last_poll)
					       : json_null(),
				  "failing", p->failures > 0, "failures", (int)p->failures, "error",
				  p->failures && p->last_error ? json_string(p->last_error)
							       : json_null()));
	}
	return list;
}
