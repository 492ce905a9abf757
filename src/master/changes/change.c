/*
 * change_add(): the one door every change source goes through.  It gives a
 * change without a codebase the one codebase_generator names, stores it
 * (with its sourcestamp and its author as a user object) in the current
 * database batch and hands it to the schedulers.
 */
#define LOG_SUBSYS "changes"

#include "master/changes/change.h"

#include "common/clock.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"
#include "master/changes/users.h"
#include "master/events.h"
#include "master/master.h"
#include "master/sched/sched.h"

/* The codebase codebase_generator gives c (owned), or NULL: none configured,
 * c has a codebase already, or the generator gave none or failed (logged). */
static char *change_codebase(struct master *m, const struct change *c)
{
	if (!m->cfg || !m->cfg->codebase_gen || (c->codebase && *c->codebase))
		return NULL;
	struct config_change_view v = {
		.branch = c->branch,
		.project = c->project,
		.repository = c->repository,
		.category = c->category,
		.revision = c->revision,
		.author = c->author,
		.comments = c->comments,
		.files = (const char *const *)c->files,
		.nfiles = c->nfiles,
	};
	char *cb = NULL, *err = NULL;
	if (config_codebase_generate(m->cfg, &v, &cb, &err) < 0) {
		log_warn("codebase_generator failed for a change of '%s' (its codebase stays "
			 "empty): %s",
			 c->repository ? c->repository : "", err);
		free(err);
		return NULL;
	}
	return cb;
}

static int change_add_one(struct master *m, struct change *c)
{
	struct users_who w;
	users_parse_who(c->author, &w);
	struct db_user_ident ident = {
		.attr_type = c->src ? c->src : "who",
		.who = c->author,
		.full_name = w.full_name,
		.email = w.email,
	};
	if (c->when <= 0)
		c->when = clock_wall();
	struct db_change_new dc = {
		.author = c->author,
		.committer = c->committer,
		.comments = c->comments,
		.branch = c->branch,
		.revision = c->revision,
		.revlink = c->revlink,
		.category = c->category,
		.repository = c->repository,
		.codebase = c->codebase,
		.project = c->project,
		.files = (const char *const *)c->files,
		.nfiles = c->nfiles,
		.properties = c->properties,
		.when_timestamp = c->when,
		.user = c->author && *c->author ? &ident : NULL,
	};
	int r = db_change_add(m->db, &dc, &c->changeid, &c->sourcestampid);
	users_who_release(&w);
	if (r < 0)
		return r;
	log_debug("change %lld stored: %s %s on '%s' by '%s'", (long long)c->changeid,
		  c->src ? c->src : "change", c->revision ? c->revision : "(no revision)",
		  c->branch ? c->branch : "", c->author ? c->author : "");
	/* "changes/ID/new", rendered like GET /api/v2/changes/ID */
	events_publish_row(m, DB_CHANGES, "changes", "changeid", c->changeid, "new");
	if (m->sched)
		sched_change_added(m->sched, c);
	return 0;
}

int change_add(struct master *m, struct change *c)
{
	/* the caller's fields are borrowed: a generated codebase is ours, and
	 * the caller's pointer comes back before returning */
	_cleanup_free_ char *gen = change_codebase(m, c);
	char *given = c->codebase;
	if (gen)
		c->codebase = gen;
	int r = change_add_one(m, c);
	c->codebase = given;
	return r;
}

int change_add_list(struct master *m, struct change *v, size_t n, size_t *ret_stored)
{
	int r = 0;
	size_t stored = 0;
	sched_changes_begin(m->sched);
	for (size_t i = 0; i < n && r >= 0; i++) {
		r = change_add(m, &v[i]);
		if (r >= 0)
			stored++;
	}
	sched_changes_end(m->sched);
	*ret_stored = stored;
	return r < 0 ? r : 0;
}

void change_add_file(struct change *c, const char *path, size_t len)
{
	ARRAY_GROW(c->files, c->nfiles + 1, c->files_alloc);
	c->files[c->nfiles++] = xstrndup(path, len);
}

void change_set_property(struct change *c, const char *name, json_t *value)
{
	if (!c->properties)
		c->properties = json_object();
	json_object_set_new(c->properties, name, json_pack("[o,s]", value, "Change"));
}

void change_release(struct change *c)
{
	if (!c)
		return;
	free(c->author);
	free(c->committer);
	free(c->comments);
	for (size_t i = 0; i < c->nfiles; i++)
		free(c->files[i]);
	free(c->files);
	free(c->project);
	free(c->repository);
	free(c->codebase);
	free(c->revision);
	free(c->branch);
	free(c->category);
	free(c->revlink);
	json_decref(c->properties);
	*c = (struct change){0};
}

void change_list_free(struct change *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		change_release(&v[i]);
	free(v);
}
