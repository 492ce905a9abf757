/*
 * triggerable schedulers (started by a build's trigger step, which may wait
 * for the buildset and take its results) and dependent schedulers (a
 * buildset of their upstream scheduler that succeeded starts one of theirs,
 * on the same sourcestamp).
 */
#define LOG_SUBSYS "sched"

#include "common/err.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"
#include "master/master.h"
#include "master/sched/sched-int.h"

int sched_trigger(struct sched *s, const char *name, int64_t parent_buildid,
		  const struct db_sourcestamp *ss, json_t *properties, int64_t *ret_bsid)
{
	struct sched_one *o = sched_find(s, name);
	if (!o || o->cfg->kind != CONFIG_SCHED_TRIGGERABLE)
		return KILN_ENOTFOUND;
	const struct config_scheduler *c = o->cfg;
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
	return sched_add_buildset(o, reason, &src, NULL, 0, properties, parent_buildid, c->priority,
				  ret_bsid);
}

void sched_dependent_completed(struct sched *s, int64_t bsid, int results)
{
	if (results != RESULTS_SUCCESS && results != RESULTS_WARNINGS)
		return;
	struct db_buildset_info bi;
	bool have = false;
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
		struct db_sourcestamp ss = {
			.branch = bi.branch,
			.revision = bi.revision,
			.repository = bi.repository,
			.project = bi.project,
			.codebase = bi.codebase,
		};
		_cleanup_free_ char *reason = xasprintf("The Dependent scheduler named '%s' "
							"triggered this build (upstream buildset "
							"%lld)",
							o->cfg->name, (long long)bsid);
		sched_add_buildset(o, reason, &ss, NULL, 0, NULL, 0, o->cfg->priority, NULL);
	}
	if (have)
		db_buildset_info_release(&bi);
}
