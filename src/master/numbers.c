/*
 * Numbers over time and ETA (numbers.h): recording a build's numbers with
 * the regression check and its event, the built-in durations recorded at a
 * build's end, and the per-builder cache of median durations the ETA of
 * running builds, running steps and queued requests is computed from.
 */
#define LOG_SUBSYS "numbers"

#include "master/numbers.h"

#include "master/engine-int.h"
#include "master/events.h"
#include "master/master.h"

#include "common/clock.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct numbers_step_median {
	char *name; /* owned */
	double median;
};

/* A builder's cached medians: read once, dropped when one of its builds
 * finishes. */
struct numbers_builder {
	bool loaded;                       /* the medians below were read */
	bool loading;                      /* a read in flight */
	bool stale;                        /* a build ended since: read again at the next use */
	bool known;                        /* build_median is set (a successful build exists) */
	double build_median;               /* seconds */
	struct numbers_step_median *steps; /* owned, sorted by name */
	size_t nsteps;
};

/* Queue positions and running builds read for the API (numbers_queue_note):
 * slots by brid and by builderid, each kept NUMBERS_MEMO_MS. */
#define NUMBERS_QMEMO 4096
#define NUMBERS_RMEMO 256
#define NUMBERS_MEMO_MS 10000

struct numbers_qmemo {
	int64_t brid, builderid, pos; /* brid 0: empty */
	uint64_t at;                  /* clock_mono_ms() */
};

struct numbers_rmemo {
	int64_t builderid;
	uint64_t at;
	uint64_t note;  /* the numbers_queue_note call that filled it */
	double *starts; /* owned: its running builds' starts, oldest first */
	size_t n, alloc;
};

struct numbers {
	struct numbers_builder **by_id; /* owned entries (NULL: never asked for), by builderid */
	size_t nby_id;
	struct numbers_qmemo q[NUMBERS_QMEMO];
	struct numbers_rmemo run[NUMBERS_RMEMO];
};

struct numbers *numbers_new(void)
{
	return xcalloc(1, sizeof(struct numbers));
}

static void numbers_builder_free(struct numbers_builder *nb)
{
	if (!nb)
		return;
	for (size_t i = 0; i < nb->nsteps; i++)
		free(nb->steps[i].name);
	free(nb->steps);
	free(nb);
}

void numbers_free(struct numbers *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->nby_id; i++)
		numbers_builder_free(n->by_id[i]);
	free(n->by_id);
	for (size_t i = 0; i < NUMBERS_RMEMO; i++)
		free(n->run[i].starts);
	free(n);
}

static int numbers_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

double numbers_median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), numbers_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double numbers_queue_start(double *slots, size_t nslots, int64_t pos, double median)
{
	qsort(slots, nslots, sizeof(*slots), numbers_cmp_double);
	return slots[(size_t)pos % nslots] + (double)((size_t)pos / nslots) * median;
}

/* --- recording --------------------------------------------------------------------------- */

static const struct config_builder *numbers_builder_cfg(struct master *m, int64_t builderid)
{
	if (!m->engine || !m->cfg)
		return NULL;
	int i = engine_builder_index(m->engine, builderid);
	return i < 0 ? NULL : &m->cfg->builder[i];
}

static bool numbers_name_ok(const char *name)
{
	size_t len = name ? strlen(name) : 0;
	if (len == 0 || len > KILN_MAX_NUMBER_NAME)
		return false;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

/* A regression being published: the build's number and blamelist are read
 * first (on the loop: issue 14). */
struct numbers_regress {
	struct master *m;
	int64_t builderid, buildid, old_buildid;
	double old_value, value;
	char name[KILN_MAX_NUMBER_NAME + 1];
};

static void numbers_regress_read(void *arg, int r, const struct db_build_times *bt,
				 json_t *blamelist, const char *err)
{
	struct numbers_regress *g = arg;
	if (r == -ECANCELED) { /* the database closed first: the master is going */
		free(g);
		return;
	}
	int64_t buildid = g->buildid, builderid = g->builderid;
	if (r < 0)
		log_warn("build=%lld regression of '%s': %s", (long long)buildid, g->name,
			 err ? err : "failed");
	json_t *blame = r == 0 && json_is_array(blamelist) ? json_incref(blamelist) : json_array();
	json_t *msg = json_pack("{s:I,s:I,s:I,s:s,s:f,s:f,s:I,s:o}", "builderid",
				(json_int_t)builderid, "buildid", (json_int_t)buildid, "number",
				(json_int_t)(r == 0 ? bt->number : 0), "name", g->name, "old_value",
				g->old_value, "new_value", g->value, "old_buildid",
				(json_int_t)g->old_buildid, "blamelist", blame);
	if (!msg) { /* a name that is not UTF-8 */
		log_warn("build=%lld regression of a number whose name is not UTF-8",
			 (long long)buildid);
		free(g);
		return;
	}
	char key[KILN_MAX_NUMBER_NAME + 64];
	int len = snprintf(key, sizeof(key), "numbers/%lld/", (long long)builderid);
	for (const char *p = g->name; *p && (size_t)len < sizeof(key) - 1; p++)
		key[len++] = *p == '/' ? '_' : *p;
	snprintf(key + len, sizeof(key) - (size_t)len, "/regression");
	log_info("build=%lld builder=%lld number '%s' regressed: %g -> %g", (long long)buildid,
		 (long long)builderid, g->name, g->old_value, g->value);
	events_publish(g->m, key, msg);
	free(g);
}

static void numbers_publish_regression(struct master *m, int64_t builderid, int64_t buildid,
				       const char *name, double old_value, int64_t old_buildid,
				       double value)
{
	struct numbers_regress *g = xcalloc(1, sizeof(*g));
	*g = (struct numbers_regress){.m = m,
				      .builderid = builderid,
				      .buildid = buildid,
				      .old_buildid = old_buildid,
				      .old_value = old_value,
				      .value = value};
	snprintf(g->name, sizeof(g->name), "%s", name);
	if (db_build_times_async(m->db, buildid, true, numbers_regress_read, g) < 0)
		numbers_regress_read(g, KILN_EDB, NULL, NULL, db_errmsg(m->db));
}

/* A number's regression check: its previous value is read (on the loop),
 * then compared under the rule master.lua has for it then. */
struct numbers_check {
	struct master *m;
	int64_t builderid, buildid;
	double value;
	char name[KILN_MAX_NUMBER_NAME + 1];
};

static void numbers_prev_read(void *arg, int r, double old, int64_t old_buildid, const char *err)
{
	struct numbers_check *c = arg;
	struct master *m = c->m;
	if (r == -ECANCELED) {
		free(c);
		return;
	}
	if (r < 0)
		log_warn("build=%lld number '%s': previous value: %s", (long long)c->buildid,
			 c->name, err ? err : "failed");
	const struct config_builder *bc = r == 1 ? numbers_builder_cfg(m, c->builderid) : NULL;
	const struct config_regression *rule =
		r == 1 ? config_regression_find(m->cfg, bc ? bc->name : NULL, c->name) : NULL;
	if (rule && config_regression_exceeded(rule, old, c->value))
		numbers_publish_regression(m, c->builderid, c->buildid, c->name, old, old_buildid,
					   c->value);
	free(c);
}

/* Checks value of name against the value recorded before buildid. */
static void numbers_check_async(struct master *m, int64_t builderid, int64_t buildid,
				const char *name, double value)
{
	struct numbers_check *c = xcalloc(1, sizeof(*c));
	*c = (struct numbers_check){
		.m = m, .builderid = builderid, .buildid = buildid, .value = value};
	snprintf(c->name, sizeof(c->name), "%s", name);
	if (db_number_previous_async(m->db, builderid, name, buildid, numbers_prev_read, c) < 0)
		numbers_prev_read(c, KILN_EDB, 0, 0, db_errmsg(m->db));
}

int numbers_record(struct master *m, int64_t builderid, int64_t buildid, int64_t stepid,
		   const char *name, double value)
{
	if (!numbers_name_ok(name) || !isfinite(value))
		return -EINVAL;
	const struct config_builder *bc = numbers_builder_cfg(m, builderid);
	const struct config_regression *rule =
		config_regression_find(m->cfg, bc ? bc->name : NULL, name);
	int r = db_number_record(m->db, builderid, buildid, stepid, name, value, clock_wall());
	if (r < 0)
		return r;
	/* the previous value is one of an earlier build: this write does not
	 * change it */
	if (rule)
		numbers_check_async(m, builderid, buildid, name, value);
	return 0;
}

/* --- the ETA cache ----------------------------------------------------------------------- */

struct numbers_sample {
	const char *name; /* borrowed from the durations read */
	double duration;
};

static int numbers_sample_cmp(const void *a, const void *b)
{
	const struct numbers_sample *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : numbers_cmp_double(&x->duration, &y->duration);
}

/* nb's medians from the samples read: the builds', and the steps' by name. */
static void numbers_set_medians(struct numbers_builder *nb, const struct db_eta_samples *s)
{
	for (size_t i = 0; i < nb->nsteps; i++)
		free(nb->steps[i].name);
	free(nb->steps);
	nb->steps = NULL;
	nb->nsteps = 0;
	nb->known = s->nbuilds > 0;
	if (!nb->known)
		return;
	double d[KILN_ETA_SAMPLES];
	size_t nd = s->nbuilds < KILN_ETA_SAMPLES ? s->nbuilds : KILN_ETA_SAMPLES;
	memcpy(d, s->durations, nd * sizeof(*d));
	nb->build_median = numbers_median(d, nd);
	struct numbers_sample *all = s->nsteps ? xcalloc(s->nsteps, sizeof(*all)) : NULL;
	for (size_t k = 0; k < s->nsteps; k++)
		all[k] = (struct numbers_sample){s->steps[k].name, s->steps[k].duration};
	if (all)
		qsort(all, s->nsteps, sizeof(*all), numbers_sample_cmp);
	size_t alloc = 0;
	double v[KILN_ETA_SAMPLES * 4];
	for (size_t i = 0; all && i < s->nsteps;) {
		size_t j = i, nv = 0;
		for (; j < s->nsteps && !strcmp(all[j].name, all[i].name); j++)
			if (nv < ARRAY_SIZE(v))
				v[nv++] = all[j].duration;
		ARRAY_GROW(nb->steps, nb->nsteps + 1, alloc);
		nb->steps[nb->nsteps++] = (struct numbers_step_median){
			.name = xstrdup(all[i].name),
			.median = numbers_median(v, nv),
		};
		i = j;
	}
	free(all);
}

/* A builder's medians being read. */
struct numbers_load {
	struct master *m;
	int64_t builderid;
};

static void numbers_load(struct master *m, struct numbers_builder *nb, int64_t builderid);

static void numbers_loaded(void *arg, int r, const struct db_eta_samples *s, const char *err)
{
	struct numbers_load *l = arg;
	struct master *m = l->m;
	int64_t builderid = l->builderid;
	free(l);
	if (r == -ECANCELED) /* the database closed first: the master is going */
		return;
	struct numbers *n = m->numbers;
	struct numbers_builder *nb =
		n && (uint64_t)builderid < n->nby_id ? n->by_id[builderid] : NULL;
	if (!nb)
		return;
	nb->loading = false;
	if (r < 0) /* not cached: the next use reads again */
		log_warn("builder=%lld ETA: %s", (long long)builderid, err ? err : "failed");
	else {
		numbers_set_medians(nb, s);
		nb->loaded = true;
	}
}

/* Reads nb's medians on the loop; the ones it has stay meanwhile. */
static void numbers_load(struct master *m, struct numbers_builder *nb, int64_t builderid)
{
	if (nb->loading)
		return;
	nb->stale = false; /* the read comes after the build that made them stale */
	struct numbers_load *l = xmalloc(sizeof(*l));
	*l = (struct numbers_load){.m = m, .builderid = builderid};
	if (db_eta_samples_async(m->db, builderid, numbers_loaded, l) < 0) {
		log_warn("builder=%lld ETA: %s", (long long)builderid, db_errmsg(m->db));
		free(l);
		return;
	}
	nb->loading = true;
}

/* builderid's cache entry, made if new (NULL: no ETA for such an id). */
static struct numbers_builder *numbers_slot(struct master *m, int64_t builderid)
{
	struct numbers *n = m->numbers;
	if (!n || builderid <= 0 || (uint64_t)builderid >= KILN_ETA_MAX_BUILDERS)
		return NULL;
	if ((uint64_t)builderid >= n->nby_id) {
		size_t want = (size_t)builderid + 1, alloc = n->nby_id;
		ARRAY_GROW(n->by_id, want, alloc);
		memset(n->by_id + n->nby_id, 0, (alloc - n->nby_id) * sizeof(*n->by_id));
		n->nby_id = alloc;
	}
	if (!n->by_id[builderid])
		n->by_id[builderid] = xcalloc(1, sizeof(struct numbers_builder));
	return n->by_id[builderid];
}

/* The builder's medians if they were read; else NULL, and they are being
 * read (issue 14: on the loop), for the next use. */
static struct numbers_builder *numbers_builder_get(struct master *m, int64_t builderid)
{
	struct numbers_builder *nb = numbers_slot(m, builderid);
	if (!nb)
		return NULL;
	if ((!nb->loaded || nb->stale) && !nb->loading)
		numbers_load(m, nb, builderid);
	return nb->loaded ? nb : NULL;
}

void numbers_prefetch(struct master *m, int64_t builderid)
{
	(void)numbers_builder_get(m, builderid);
}

int numbers_build_eta(struct master *m, int64_t builderid, double started_at, double *ret_eta_at)
{
	struct numbers_builder *nb = numbers_builder_get(m, builderid);
	if (!nb || !nb->known)
		return 0;
	*ret_eta_at = started_at + nb->build_median;
	return 1;
}

void numbers_build_eta_fields(struct master *m, json_t *build)
{
	if (!m->numbers || json_is_true(json_object_get(build, "complete")))
		return;
	json_t *started = json_object_get(build, "started_at");
	json_t *builderid = json_object_get(build, "builderid");
	if (!json_is_number(started) || !json_is_integer(builderid))
		return;
	double eta_at = 0;
	int known = numbers_build_eta(m, json_integer_value(builderid), json_number_value(started),
				      &eta_at);
	json_object_set_new(build, "eta",
			    known ? json_real(fmax(0, eta_at - clock_wall())) : json_null());
	json_object_set_new(build, "eta_at", known ? json_real(eta_at) : json_null());
}

static int numbers_step_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct numbers_step_median *)elem)->name);
}

int numbers_step_eta(struct master *m, int64_t buildid, const char *step_name, double started_at,
		     double *ret_eta_at)
{
	if (!m->numbers)
		return 0;
	/* a build running here: its builder from memory; else read at once,
	 * on SQLite only (issue 14: another master's build on PostgreSQL has
	 * no step ETA) */
	int64_t builderid = 0;
	for (struct build *b = m->engine ? m->engine->builds : NULL; b && !builderid; b = b->next)
		if (b->buildid == buildid)
			builderid = b->builderid;
	struct db_build_times bt;
	if (!builderid && !db_is_postgresql(m->db) && db_build_times(m->db, buildid, &bt) == 0)
		builderid = bt.builderid;
	struct numbers_builder *nb = builderid ? numbers_builder_get(m, builderid) : NULL;
	if (!nb || !nb->nsteps)
		return 0;
	const struct numbers_step_median *sm =
		bsearch(step_name, nb->steps, nb->nsteps, sizeof(*nb->steps), numbers_step_cmp);
	if (!sm)
		return 0;
	*ret_eta_at = started_at + sm->median;
	return 1;
}

void numbers_queue_note(struct master *m, const struct db_queue_info *qi)
{
	struct numbers *ns = m->numbers;
	if (!ns)
		return;
	static uint64_t notes;
	uint64_t now = clock_mono_ms(), note = ++notes; /* note: never 0 */
	for (size_t i = 0; i < qi->nreq; i++) {
		ns->q[(uint64_t)qi->brids[i] % NUMBERS_QMEMO] =
			(struct numbers_qmemo){.brid = qi->brids[i],
					       .builderid = qi->builderids[i],
					       .pos = qi->pos[i],
					       .at = now};
		/* the builder's running builds: those read now (none, if none) */
		struct numbers_rmemo *rm = &ns->run[(uint64_t)qi->builderids[i] % NUMBERS_RMEMO];
		if (rm->builderid != qi->builderids[i] || rm->note != note) {
			rm->builderid = qi->builderids[i];
			rm->at = now;
			rm->note = note;
			rm->n = 0;
		}
	}
	for (size_t i = 0; i < qi->nrun; i++) {
		struct numbers_rmemo *rm =
			&ns->run[(uint64_t)qi->run_builderids[i] % NUMBERS_RMEMO];
		if (rm->builderid != qi->run_builderids[i] || rm->note != note)
			continue; /* its slot went to another builder of this read */
		ARRAY_GROW(rm->starts, rm->n + 1, rm->alloc);
		rm->starts[rm->n++] = qi->run_starts[i];
	}
}

int numbers_request_start(struct master *m, int64_t brid, double now, double *ret_start)
{
	struct numbers *ns = m->numbers;
	if (!ns)
		return 0;
	/* what the API's read found (numbers_queue_note); else read at once,
	 * on SQLite only */
	uint64_t mono = clock_mono_ms();
	const struct numbers_qmemo *q = &ns->q[(uint64_t)brid % NUMBERS_QMEMO];
	const struct numbers_rmemo *rm = NULL;
	int64_t builderid = 0, pos = 0;
	/* an age, not a difference that could wrap: at is never after mono */
	if (q->brid == brid && brid > 0 && mono - q->at < NUMBERS_MEMO_MS) {
		builderid = q->builderid;
		pos = q->pos;
		rm = &ns->run[(uint64_t)builderid % NUMBERS_RMEMO];
		if (rm->builderid != builderid || !rm->note || mono - rm->at >= NUMBERS_MEMO_MS)
			return 0;
	} else if (db_is_postgresql(m->db) ||
		   db_request_queue_position(m->db, brid, &builderid, &pos) <= 0) {
		return 0;
	}
	struct numbers_builder *nb = numbers_builder_get(m, builderid);
	const struct config_builder *bc = numbers_builder_cfg(m, builderid);
	if (!nb || !nb->known)
		return 0;
	/* slots: the builder's workers (1 if unknown; bounded by the
	 * configuration); a running build holds one until its ETA */
	size_t nslots = bc && bc->nworkers ? bc->nworkers : 1;
	double *slots = xcalloc(nslots, sizeof(*slots));
	size_t nrun = 0;
	if (rm) {
		nrun = rm->n < nslots ? rm->n : nslots;
		if (nrun)
			memcpy(slots, rm->starts, nrun * sizeof(*slots));
	} else if (db_builds_running_starts(m->db, builderid, nslots, slots, &nrun) < 0) {
		free(slots);
		return 0;
	}
	for (size_t i = 0; i < nslots; i++)
		slots[i] = i < nrun ? fmax(now, slots[i] + nb->build_median) : now;
	*ret_start = numbers_queue_start(slots, nslots, pos, nb->build_median);
	free(slots);
	return 1;
}

/* --- the built-in numbers at a build's end ----------------------------------------------- */

/* numbers_record for all of v[0..n) at once: one write records those
 * that are stored (not step_duration:NAME, which the db serves from the
 * steps table: DB_NUMBERS_STEP_DURATION), then those with a rule are
 * checked against their previous values (builds before this one). */
static int numbers_record_end(struct master *m, int64_t builderid, int64_t buildid,
			      struct db_number_rec *v, size_t n)
{
	const struct config_builder *bc = numbers_builder_cfg(m, builderid);
	size_t nstored = 0;
	while (nstored < n &&
	       strncmp(v[nstored].name, DB_NUMBERS_STEP_DURATION, strlen(DB_NUMBERS_STEP_DURATION)))
		nstored++; /* build_duration, first (v's order) */
	int r = db_numbers_record_many(m->db, builderid, buildid, v, nstored, clock_wall());
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		if (config_regression_find(m->cfg, bc ? bc->name : NULL, v[i].name))
			numbers_check_async(m, builderid, buildid, v[i].name, v[i].value);
	return 0;
}

/* Whether a regression rule may apply to a step_duration:NAME of builderid. */
static bool numbers_step_rules(struct master *m, int64_t builderid)
{
	const struct config_numbers *cn = m->cfg ? m->cfg->numbers : NULL;
	const struct config_builder *bc = NULL;
	for (size_t i = 0; cn && i < cn->nrules; i++) {
		const struct config_regression *rule = &cn->rules[i];
		if (strncmp(rule->name, NUMBERS_STEP_DURATION, strlen(NUMBERS_STEP_DURATION)))
			continue;
		if (!rule->builder)
			return true;
		if (!bc)
			bc = numbers_builder_cfg(m, builderid);
		if (bc && !strcmp(rule->builder, bc->name))
			return true;
	}
	return false;
}

static void numbers_finished_read(void *arg, int r, const struct db_build_times *bt,
				  json_t *blamelist, const char *err)
{
	struct numbers_check *c = arg;
	(void)blamelist;
	if (r < 0 && r != -ECANCELED)
		log_warn("build=%lld numbers: %s", (long long)c->buildid, err ? err : "failed");
	if (r == 0)
		numbers_build_ended(c->m, c->buildid, bt);
	free(c);
}

void numbers_build_finished(struct master *m, int64_t buildid)
{
	struct numbers_check *c = xcalloc(1, sizeof(*c));
	*c = (struct numbers_check){.m = m, .buildid = buildid};
	if (db_build_times_async(m->db, buildid, false, numbers_finished_read, c) < 0)
		numbers_finished_read(c, KILN_EDB, NULL, NULL, db_errmsg(m->db));
}

/* build_duration, then step_duration:NAME of each step in d[0..nd) in
 * order, up to the first invalid one (a name too long is skipped). */
static void numbers_end_record(struct master *m, int64_t buildid, const struct db_build_times *bt,
			       const struct db_step_duration *d, size_t nd)
{
	struct db_number_rec *v = xcalloc(nd + 1, sizeof(*v));
	char(*names)[KILN_MAX_NUMBER_NAME + 1] = xcalloc(nd + 1, sizeof(*names));
	size_t n = 0;
	int bad = 0;
	snprintf(names[0], sizeof(names[0]), "%s", NUMBERS_BUILD_DURATION);
	v[n++] = (struct db_number_rec){0, names[0], fmax(0, bt->complete_at - bt->started_at)};
	if (!isfinite(v[0].value)) {
		bad = -EINVAL;
		n = 0;
	}
	for (size_t i = 0; !bad && i < nd; i++) {
		int len = snprintf(names[n], sizeof(names[n]), "%s%s", NUMBERS_STEP_DURATION,
				   d[i].name);
		if (len < 0 || (size_t)len >= sizeof(names[n]))
			continue; /* a step name too long for a number name */
		double value = fmax(0, d[i].duration);
		if (!numbers_name_ok(names[n]) || !isfinite(value)) {
			bad = -EINVAL;
			break;
		}
		v[n] = (struct db_number_rec){d[i].stepid, names[n], value};
		n++;
	}
	int r = n ? numbers_record_end(m, bt->builderid, buildid, v, n) : 0;
	if (r >= 0)
		r = bad;
	free(v);
	free(names);
	if (r < 0)
		log_warn("build=%lld numbers: %s", (long long)buildid,
			 r == -EINVAL ? "invalid number" : db_errmsg(m->db));
}

/* A build's end whose steps' durations are being read. */
struct numbers_ending {
	struct master *m;
	int64_t buildid;
	struct db_build_times bt;
};

static void numbers_steps_read(void *arg, int r, const struct db_step_duration *d, size_t n,
			       const char *err)
{
	struct numbers_ending *e = arg;
	if (r == -ECANCELED) {
		free(e);
		return;
	}
	if (r < 0) { /* build_duration alone, as before the steps are read */
		log_warn("build=%lld numbers: steps: %s", (long long)e->buildid,
			 err ? err : "failed");
		n = 0;
	}
	numbers_end_record(e->m, e->buildid, &e->bt, r < 0 ? NULL : d, n);
	free(e);
}

void numbers_build_ended(struct master *m, int64_t buildid, const struct db_build_times *times)
{
	struct db_build_times bt = *times;
	struct numbers *ns = m->numbers;
	struct numbers_builder *nb = ns && bt.builderid > 0 && (uint64_t)bt.builderid < ns->nby_id
					     ? ns->by_id[bt.builderid]
					     : NULL;
	if (nb) /* its medians (if ever asked for) are read again, with this build, when next used
		 */
		nb->stale = true;
	if (bt.results == RESULTS_NONE)
		return;
	/* the step durations are not stored (the db serves them from the steps
	 * table): they are read (on the loop) only for a regression rule on
	 * one of them */
	if (!numbers_step_rules(m, bt.builderid)) {
		numbers_end_record(m, buildid, &bt, NULL, 0);
		return;
	}
	struct numbers_ending *e = xcalloc(1, sizeof(*e));
	*e = (struct numbers_ending){.m = m, .buildid = buildid, .bt = bt};
	if (db_steps_durations_async(m->db, buildid, KILN_ETA_MAX_STEPS, numbers_steps_read, e) < 0)
		numbers_steps_read(e, KILN_EDB, NULL, 0, db_errmsg(m->db));
}
