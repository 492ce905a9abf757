/*
 * triggerable schedulers (started by a build's trigger step, which may wait
 * for the buildset and take its results; the triggering build's
 * sourcestamps pass through, a codebases map fills the codebases they
 * lack) and dependent schedulers (a buildset of their upstream scheduler
 * that succeeded starts one of theirs, on the same sourcestamps).
 */
#define LOG_SUBSYS "sched"

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

void sched_dependent_completed(struct sched *s, int64_t bsid, int results)
{
	if (results != RESULTS_SUCCESS && results != RESULTS_WARNINGS)
		return;
	struct db_buildset_info bi;
	bool have = false;
	struct db_sourcestamp *ss = NULL; /* the upstream buildset's, read once */
	size_t nss = 0;
	for (size_t i = 0; i < s->n; i++) {
		struct sched_one *o = &s->all[i];
		if (o->cfg->kind != CONFIG_SCHED_DEPENDENT)
			continue;
		if (!have) {
			if (db_buildset_get(s->m->db, bsid, &bi) < 0)
				return;
			have = true;
		}
		if (!bi.scheduler || strcmp(bi.scheduler, o->cfg->upstream))
			continue;
		if (!ss && db_buildset_sourcestamps(s->m->db, bsid, &ss, &nss) < 0) {
			log_error("dependent '%s': cannot read buildset %lld's sourcestamps: %s",
				  o->cfg->name, (long long)bsid, db_errmsg(s->m->db));
			break;
		}
		_cleanup_free_ char *reason = xasprintf("The Dependent scheduler named '%s' "
							"triggered this build (upstream buildset "
							"%lld)",
							o->cfg->name, (long long)bsid);
		/* every sourcestamp of the upstream buildset, as Buildbot's Dependent */
		sched_add_buildset(o, reason, ss, nss, NULL, 0, NULL, 0, o->cfg->priority, NULL);
	}
	free(ss);
	if (have)
		db_buildset_info_release(&bi);
}
