/*
 * single_branch and any_branch: each change passes the scheduler's filter
 * (config_filter_match), is classified important or not
 * (file_is_important), and waits with the others of its branch line until
 * the tree has been stable for tree_stable_timer seconds; then one buildset
 * builds the newest revision with every waiting change in its blamelist.
 * A new important change restarts the timer.  Nightly schedulers use the
 * same pending list to know whether anything changed (only_if_changed).
 * The waiting branch lines are an array sorted by key (bsearch), at most
 * KILN_MAX_SCHED_BRANCHES of them: a change on a new branch past the cap is
 * stored but not scheduled.
 */
#define LOG_SUBSYS "sched"

#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"
#include "master/changes/change.h"
#include "master/master.h"
#include "master/sched/sched-int.h"

/* Changes kept waiting per branch line; older ones beyond this are built
 * without being listed (the buildset still builds the newest revision). */
#define SCHED_MAX_PENDING_CHANGES 10000

static char *sched_key(const struct sched_one *o, const struct change *c)
{
	if (o->cfg->kind != CONFIG_SCHED_ANY_BRANCH)
		return xstrdup("");
	/* the unit separator cannot appear in these fields' usual values */
	return xasprintf("%s\x1f%s\x1f%s\x1f%s", c->repository ? c->repository : "",
			 c->project ? c->project : "", c->codebase ? c->codebase : "",
			 c->branch ? c->branch : "");
}

/* Index in o->pending of key, or where it would be inserted (lower bound). */
static size_t sched_pending_slot(const struct sched_one *o, const char *key, bool *ret_found)
{
	size_t lo = 0, hi = o->npending;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(o->pending[mid].key, key);
		if (c == 0) {
			*ret_found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*ret_found = false;
	return lo;
}

/* The entry for key, created if missing; NULL when it is new and the
 * scheduler already waits on KILN_MAX_SCHED_BRANCHES branch lines. */
static struct sched_pending *sched_pending_get(struct sched_one *o, const char *key)
{
	bool found;
	size_t i = sched_pending_slot(o, key, &found);
	if (found)
		return &o->pending[i];
	if (o->npending >= KILN_MAX_SCHED_BRANCHES)
		return NULL;
	ARRAY_GROW(o->pending, o->npending + 1, o->pending_alloc);
	memmove(&o->pending[i + 1], &o->pending[i], (o->npending - i) * sizeof(*o->pending));
	o->npending++;
	o->pending[i] = (struct sched_pending){.key = xstrdup(key)};
	return &o->pending[i];
}

static void sched_set(char **field, const char *v)
{
	free(*field);
	*field = v ? xstrdup(v) : NULL;
}

/* The entry of codebase in p->sources, added (in the map's order) if
 * missing; NULL when the codebase is not in o's map. */
static struct sched_source *sched_source_get(const struct sched_one *o, struct sched_pending *p,
					     const char *codebase)
{
	const struct config_codebase *cb = config_scheduler_codebase(o->cfg, codebase);
	if (!cb)
		return NULL;
	if (!p->sources)
		p->sources = xcalloc(o->cfg->ncodebases, sizeof(*p->sources));
	for (size_t i = 0; i < p->nsources; i++)
		if (!strcmp(p->sources[i].codebase, cb->name))
			return &p->sources[i];
	/* p->nsources < ncodebases: each entry is a distinct codebase of the map */
	struct sched_source *src = &p->sources[p->nsources++];
	src->codebase = xstrdup(cb->name);
	return src;
}

static void sched_source_set(struct sched_source *src, const char *branch, const char *revision,
			     const char *repository, const char *project)
{
	sched_set(&src->branch, branch);
	sched_set(&src->revision, revision);
	sched_set(&src->repository, repository);
	sched_set(&src->project, project);
}

static void sched_pending_add(const struct sched_one *o, struct sched_pending *p,
			      const struct change *c)
{
	if (p->nchanges < SCHED_MAX_PENDING_CHANGES) {
		ARRAY_GROW(p->changeids, p->nchanges + 1, p->changeids_alloc);
		p->changeids[p->nchanges++] = c->changeid;
	}
	sched_set(&p->branch, c->branch);
	sched_set(&p->revision, c->revision);
	sched_set(&p->repository, c->repository);
	sched_set(&p->project, c->project);
	sched_set(&p->codebase, c->codebase);
	struct sched_source *src = o->cfg->ncodebases ? sched_source_get(o, p, c->codebase) : NULL;
	if (src)
		sched_source_set(src, c->branch, c->revision, c->repository, c->project);
}

size_t sched_pending_sources(const struct sched_pending *p, struct db_sourcestamp *ret)
{
	if (!p->sources) {
		ret[0] = (struct db_sourcestamp){
			.branch = p->branch,
			.revision = p->revision,
			.repository = p->repository,
			.project = p->project,
			.codebase = p->codebase,
		};
		return 1;
	}
	for (size_t i = 0; i < p->nsources; i++)
		ret[i] = (struct db_sourcestamp){
			.branch = p->sources[i].branch,
			.revision = p->sources[i].revision,
			.repository = p->sources[i].repository,
			.project = p->sources[i].project,
			.codebase = p->sources[i].codebase,
		};
	return p->nsources;
}

static void sched_pending_remove(struct sched_one *o, struct sched_pending *p)
{
	size_t i = (size_t)(p - o->pending);
	sched_pending_release(p);
	o->npending--;
	memmove(&o->pending[i], &o->pending[i + 1], (o->npending - i) * sizeof(*o->pending));
	if (o->npending < KILN_MAX_SCHED_BRANCHES)
		o->pending_full_warned = false;
}

static const char *sched_kind_label(const struct sched_one *o)
{
	return o->cfg->kind == CONFIG_SCHED_ANY_BRANCH ? "AnyBranchScheduler"
						       : "SingleBranchScheduler";
}

/* One buildset for the waiting changes of p, then p is gone. */
static void sched_branch_fire(struct sched_one *o, struct sched_pending *p)
{
	/* the newest change of each codebase; the map fills the others */
	_cleanup_free_ struct db_sourcestamp *ss = xcalloc(p->nsources + 1, sizeof(*ss));
	size_t nss = sched_pending_sources(p, ss);
	_cleanup_free_ char *reason = xasprintf("The %s scheduler named '%s' triggered this build",
						sched_kind_label(o), o->cfg->name);
	sched_add_buildset(o, reason, ss, nss, p->changeids, p->nchanges, NULL, 0, o->cfg->priority,
			   NULL);
	sched_pending_remove(o, p);
}

void sched_branch_change(struct sched_one *o, const struct change *c)
{
	struct master *m = o->s->m;
	struct config_change_view v = {
		.branch = c->branch,
		.project = c->project,
		.repository = c->repository,
		.category = c->category,
		.codebase = c->codebase,
		.revision = c->revision,
		.author = c->author,
		.comments = c->comments,
		.files = (const char *const *)c->files,
		.nfiles = c->nfiles,
	};
	char *err = NULL;
	int r = config_filter_match(m->cfg, &o->cfg->filter, &v, &err);
	if (r < 0) {
		log_warn("scheduler '%s': change %lld: filter failed (ignoring the change): %s",
			 o->cfg->name, (long long)c->changeid, err);
		free(err);
		return;
	}
	if (r == 0)
		return;
	if (o->cfg->ncodebases && !config_scheduler_codebase(o->cfg, c->codebase)) {
		/* as Buildbot: a scheduler with codebases builds only those */
		log_debug("scheduler '%s': change %lld is for codebase '%s', not one of its "
			  "codebases",
			  o->cfg->name, (long long)c->changeid, c->codebase ? c->codebase : "");
		return;
	}
	if (o->cfg->kind == CONFIG_SCHED_NIGHTLY) {
		/* only_if_changed: remember that something passed the filter */
		struct sched_pending *p = sched_pending_get(o, ""); /* the only key: never NULL */
		sched_pending_add(o, p, c);
		p->important = true;
		sched_save(o);
		return;
	}
	bool important = true;
	r = config_change_important(m->cfg, o->cfg, &v, &err);
	if (r < 0) {
		log_warn("scheduler '%s': change %lld: file_is_important failed (taken as "
			 "important): %s",
			 o->cfg->name, (long long)c->changeid, err);
		free(err);
	} else
		important = r > 0;
	log_debug("scheduler '%s': change %lld is %simportant", o->cfg->name,
		  (long long)c->changeid, important ? "" : "not ");

	_cleanup_free_ char *key = sched_key(o, c);
	struct sched_pending *p = sched_pending_get(o, key);
	if (!p) {
		/* once per fill-up: a webhook flood of new branches must not flood the log */
		if (!o->pending_full_warned)
			log_warn("scheduler '%s': already waiting on %u branches; change %lld on "
				 "branch '%s' is stored but this scheduler will not build it "
				 "(nor other new branches until one of the waiting ones builds)",
				 o->cfg->name, KILN_MAX_SCHED_BRANCHES, (long long)c->changeid,
				 c->branch ? c->branch : "");
		else
			log_debug("scheduler '%s': change %lld on branch '%s' not scheduled "
				  "(branch cap)",
				  o->cfg->name, (long long)c->changeid, c->branch ? c->branch : "");
		o->pending_full_warned = true;
		return;
	}
	if (important || !o->cfg->only_important)
		sched_pending_add(o, p, c);
	if (important) {
		p->important = true;
		if (o->cfg->tree_stable <= 0) {
			sched_branch_fire(o, p);
		} else {
			/* the tree is not stable yet: (re)start its timer */
			p->deadline = sched_now(o->s) + o->cfg->tree_stable;
		}
	} else if (p->nchanges == 0 && !p->important) {
		sched_pending_remove(o, p);
	}
	sched_save(o);
}

void sched_branch_tick(struct sched_one *o, double now)
{
	bool changed = false;
	for (size_t i = 0; i < o->npending;) {
		struct sched_pending *p = &o->pending[i];
		if (p->important && p->deadline > 0 && p->deadline <= now) {
			sched_branch_fire(o, p); /* removes p: the same index holds another */
			changed = true;
		} else
			i++;
	}
	if (changed)
		sched_save(o);
}

static void sched_json_str(json_t *obj, const char *key, const char *v)
{
	if (v)
		json_object_set_new(obj, key, json_string(v));
}

json_t *sched_pending_to_json(const struct sched_one *o)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < o->npending; i++) {
		const struct sched_pending *p = &o->pending[i];
		json_t *ids = json_array();
		for (size_t k = 0; k < p->nchanges; k++)
			json_array_append_new(ids, json_integer(p->changeids[k]));
		json_t *j = json_pack("{s:s,s:f,s:b,s:o}", "key", p->key, "deadline", p->deadline,
				      "important", p->important, "changes", ids);
		sched_json_str(j, "branch", p->branch);
		sched_json_str(j, "revision", p->revision);
		sched_json_str(j, "repository", p->repository);
		sched_json_str(j, "project", p->project);
		sched_json_str(j, "codebase", p->codebase);
		if (p->sources) {
			json_t *srcs = json_array();
			for (size_t k = 0; k < p->nsources; k++) {
				const struct sched_source *src = &p->sources[k];
				json_t *e = json_pack("{s:s}", "codebase", src->codebase);
				sched_json_str(e, "branch", src->branch);
				sched_json_str(e, "revision", src->revision);
				sched_json_str(e, "repository", src->repository);
				sched_json_str(e, "project", src->project);
				json_array_append_new(srcs, e);
			}
			json_object_set_new(j, "sources", srcs);
		}
		json_array_append_new(arr, j);
	}
	return arr;
}

void sched_pending_from_json(struct sched_one *o, json_t *arr)
{
	size_t i;
	json_t *j;
	if (!json_is_array(arr))
		return;
	json_array_foreach(arr, i, j)
	{
		const char *key = json_string_value(json_object_get(j, "key"));
		if (!key)
			continue;
		struct sched_pending *p = sched_pending_get(o, key);
		if (!p)
			continue; /* over the cap (stored by an older build): not restored */
		p->deadline = json_number_value(json_object_get(j, "deadline"));
		p->important = json_is_true(json_object_get(j, "important"));
		json_t *ids = json_object_get(j, "changes");
		size_t k;
		json_t *id;
		json_array_foreach(ids, k, id)
		{
			if (!json_is_integer(id) || p->nchanges >= SCHED_MAX_PENDING_CHANGES)
				continue;
			ARRAY_GROW(p->changeids, p->nchanges + 1, p->changeids_alloc);
			p->changeids[p->nchanges++] = json_integer_value(id);
		}
		/* a key stored twice: the later fields win */
		sched_set(&p->branch, json_string_value(json_object_get(j, "branch")));
		sched_set(&p->revision, json_string_value(json_object_get(j, "revision")));
		sched_set(&p->repository, json_string_value(json_object_get(j, "repository")));
		sched_set(&p->project, json_string_value(json_object_get(j, "project")));
		sched_set(&p->codebase, json_string_value(json_object_get(j, "codebase")));
		/* per codebase: only those still in the map (it may have changed) */
		size_t n;
		json_t *e;
		json_array_foreach(json_object_get(j, "sources"), n, e)
		{
			const char *cb = json_string_value(json_object_get(e, "codebase"));
			struct sched_source *src =
				cb && o->cfg->ncodebases ? sched_source_get(o, p, cb) : NULL;
			if (src)
				sched_source_set(
					src, json_string_value(json_object_get(e, "branch")),
					json_string_value(json_object_get(e, "revision")),
					json_string_value(json_object_get(e, "repository")),
					json_string_value(json_object_get(e, "project")));
		}
	}
}
