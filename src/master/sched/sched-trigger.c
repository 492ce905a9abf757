/*
 * triggerable schedulers (started by a build's trigger step, which may wait
 * for the buildset and take its results; the triggering build's
 * sourcestamps pass through, a codebases map fills the codebases they
 * lack) and dependent schedulers (a buildset of their upstream scheduler
 * that succeeded starts one of theirs, on the same sourcestamps).
 */
#define LOG_SUBSYS "sched"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"
#include "master/master.h"
#include "master/sched/sched-int.h"

int sched_trigger_all(struct sched *s, const char *name, int64_t parent_buildid,
		      const struct db_sourcestamp *ss, size_t nss, json_t *properties,
		      int64_t *ret_bsid)
{
	struct sched_one *o = sched_find(s, name);
	if (!o || o->cfg->kind != CONFIG_SCHED_TRIGGERABLE)
		return KILN_ENOTFOUND;
	const struct config_scheduler *c = o->cfg;
	_cleanup_free_ char *reason =
		xasprintf("The Triggerable scheduler named '%s' triggered this build", c->name);
	if (c->ncodebases || nss > 1)
		/* the triggering build's sourcestamps win; the map fills the rest (without
		 * a map, branch/repository/project/codebase apply to a lone sourcestamp only) */
		return sched_add_buildset(o, reason, ss, nss, NULL, 0, properties, parent_buildid,
					  c->priority, ret_bsid);
	return sched_trigger(s, name, parent_buildid, nss ? ss : NULL, properties, ret_bsid);
}

int sched_trigger(struct sched *s, const char *name, int64_t parent_buildid,
		  const struct db_sourcestamp *ss, json_t *properties, int64_t *ret_bsid)
{
	struct sched_one *o = sched_find(s, name);
	if (!o || o->cfg->kind != CONFIG_SCHED_TRIGGERABLE)
		return KILN_ENOTFOUND;
	const struct config_scheduler *c = o->cfg;
	if (c->ncodebases)
		return sched_trigger_all(s, name, parent_buildid, ss, ss ? 1 : 0, properties,
					 ret_bsid);
	struct db_sourcestamp src = ss ? *ss : (struct db_sourcestamp){0};
	/* the scheduler's own sourcestamp settings win over the triggering build's */
	if (c->branch)
		src.branch = c->branch;
	if (c->repository)
		src.repository = c->repository;
	if (c->project)
		src.project = c->project;
	if (c->codebase)
		src.codebase = c->codebase;
	_cleanup_free_ char *reason =
		xasprintf("The Triggerable scheduler named '%s' triggered this build", c->name);
	return sched_add_buildset(o, reason, &src, 1, NULL, 0, properties, parent_buildid,
				  c->priority, ret_bsid);
}

/* The upstream buildset's scheduler and sourcestamps, read on the loop */
struct sched_dep_read {
	struct sched *s;
	int64_t bsid;
};

static void sched_dependent_read(void *arg, int r, struct db_build_inputs *in, const char *err)
{
	struct sched_dep_read *rd = arg;
	struct sched *s = rd->s;
	int64_t bsid = rd->bsid;
	free(rd);
	if (!s->closed && r < 0 && r != -ECANCELED)
		log_error("dependent schedulers: cannot read buildset %lld: %s", (long long)bsid,
			  err ? err : "failed");
	for (size_t i = 0; !s->closed && r >= 0 && i < s->n; i++) {
		struct sched_one *o = &s->all[i];
		if (o->cfg->kind != CONFIG_SCHED_DEPENDENT || !in->bs.scheduler ||
		    strcmp(in->bs.scheduler, o->cfg->upstream))
			continue;
		_cleanup_free_ char *reason = xasprintf("The Dependent scheduler named '%s' "
							"triggered this build (upstream buildset "
							"%lld)",
							o->cfg->name, (long long)bsid);
		/* every sourcestamp of the upstream buildset, as Buildbot's Dependent */
		sched_add_buildset(o, reason, in->ss, in->nss, NULL, 0, NULL, 0, o->cfg->priority,
				   NULL);
	}
	if (--s->reads == 0 && s->handle_closed)
		free(s);
}

void sched_dependent_completed(struct sched *s, int64_t bsid, int results)
{
	if (results != RESULTS_SUCCESS && results != RESULTS_WARNINGS)
		return;
	bool any = false;
	for (size_t i = 0; i < s->n && !any; i++)
		any = s->all[i].cfg->kind == CONFIG_SCHED_DEPENDENT;
	if (!any)
		return;
	struct sched_dep_read *rd = xmalloc(sizeof(*rd));
	*rd = (struct sched_dep_read){.s = s, .bsid = bsid};
	if (db_build_inputs_async(s->m->db, bsid, sched_dependent_read, rd) < 0) {
		log_error("dependent schedulers: cannot read buildset %lld: %s", (long long)bsid,
			  db_errmsg(s->m->db));
		free(rd);
		return;
	}
	s->reads++;
}
