/*
 * The retention purge and the artifacts' retention on PostgreSQL (issue
 * 14; db.h "retention", db_artifacts_*_async): a batch of a pass is one
 * statement of the turn's transaction, one phase's window whose checks and
 * deletions are one WITH (what hangs on a build goes by ON DELETE CASCADE,
 * 0001-initial.sql and later), answered after the commit with what it
 * removed, the artifact files it left unused and where the pass goes on.
 * The phases and their rules are db-sqlite-retention.c's.
 */
#include "db/db-pg.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/xalloc.h"
#include "db/pg-batch.h"
#include "db/pg-col.h"
#include "db/pg-conn.h"
#include "db/pg-params.h"

/* --- the retention purge ------------------------------------------------------------------ */

/* The global cut-offs ($1-$6) and the builders' own ($7, JSON matched by
 * name): pol has a row per builder in the database with its own. */
#define RET_POL                                                                                    \
	"WITH g AS (SELECT $1::float8 AS bb, $2::bigint AS k, $3::float8 AS lb, $4::float8 AS "    \
	"sb, $5::float8 AS tb, $6::float8 AS nb), "                                                \
	"pol AS (SELECT bl.id AS builderid, x.bb, x.k, x.lb, x.sb, x.tb, x.nb FROM "               \
	"json_to_recordset($7::json) AS x(n text, bb float8, k bigint, lb float8, sb float8, tb "  \
	"float8, nb float8) JOIN builders bl ON bl.name = x.n), "

/* A window (win) cut before its first row too new for any cut-off (st). */
#define RET_OK                                                                                     \
	"ok AS (SELECT * FROM win WHERE id < COALESCE((SELECT id FROM st), "                       \
	"9223372036854775807)), "

/* The finished builds of cand and all that hangs on them; their build
 * requests when complete and left without builds, then those requests'
 * buildsets when complete and left without requests, and the
 * sourcestamps nothing else uses.  A statement sees the rows as they were
 * before it: what goes in it is left out by hand. */
#define RET_PURGE                                                                                  \
	"c AS (UPDATE buildrequests SET collapsed_into = NULL WHERE collapsed_into IN (SELECT id " \
	"FROM cand)), "                                                                            \
	"d AS (DELETE FROM builds WHERE id IN (SELECT id FROM cand) AND complete = 1 RETURNING "   \
	"id, buildrequestid), "                                                                    \
	"dr AS (DELETE FROM buildrequests r WHERE r.id IN (SELECT buildrequestid FROM d) AND "     \
	"r.complete = 1 AND NOT EXISTS (SELECT 1 FROM builds b WHERE b.buildrequestid = r.id AND " \
	"b.id NOT IN (SELECT id FROM d)) RETURNING r.id, r.buildsetid), "                          \
	"ds AS (DELETE FROM buildsets s WHERE s.id IN (SELECT buildsetid FROM dr) AND s.complete " \
	"= 1 AND NOT EXISTS (SELECT 1 FROM buildrequests r WHERE r.buildsetid = s.id AND r.id "    \
	"NOT IN (SELECT id FROM dr)) RETURNING s.id), "                                            \
	"dss AS (DELETE FROM sourcestamps t WHERE t.id IN (SELECT x.sourcestampid FROM "           \
	"buildset_sourcestamps x WHERE x.buildsetid IN (SELECT id FROM ds)) AND NOT EXISTS "       \
	"(SELECT 1 FROM buildset_sourcestamps x WHERE x.sourcestampid = t.id AND x.buildsetid "    \
	"NOT IN (SELECT id FROM ds)) AND NOT EXISTS (SELECT 1 FROM changes WHERE sourcestampid = " \
	"t.id) RETURNING t.id), "                                                                  \
	"fa AS (SELECT a.path, a.dir FROM artifacts a WHERE a.buildid IN (SELECT id FROM d)) "     \
	"SELECT (SELECT count(*) FROM d), 0, 0, 0, 0, (SELECT count(*) FROM dr), (SELECT "         \
	"count(*) FROM ds), (SELECT count(*) FROM dss), (SELECT count(*) FROM fa), "

/* The answer's last column: the files of the purged artifact rows. */
#define RET_FILES                                                                                  \
	"(SELECT json_agg(json_build_array(f.p, f.d)) FROM (SELECT DISTINCT path AS p, false AS "  \
	"d FROM fa UNION SELECT DISTINCT dir, true FROM fa WHERE dir IS NOT NULL) f)"

/* The answer's columns: builds, logs, test results, numbers, changes,
 * build requests, buildsets, sourcestamps, artifacts; the window's last
 * id and time (NULL: none read); 1 when the phase is over; the files. */
enum { RET_COLS = 13 };

static const char *const ret_sql[RET_DONE] = {
	[RET_BUILDS_AGE] = RET_POL
	"win AS (SELECT id, complete, complete_at, started_at, builderid FROM "
	"builds WHERE id > $8::bigint ORDER BY id LIMIT $9::bigint), "
	"st AS (SELECT min(id) AS id FROM win WHERE started_at >= $10::float8), " RET_OK
	"cand AS (SELECT w.id FROM ok w LEFT JOIN pol p ON p.builderid = w.builderid "
	"CROSS JOIN g WHERE w.complete = 1 AND COALESCE(p.bb, g.bb) > 0 AND "
	"w.complete_at < COALESCE(p.bb, g.bb)), " RET_PURGE
	"(SELECT max(id) FROM ok), NULL, ((SELECT id FROM st) IS NOT NULL OR (SELECT "
	"count(*) FROM win) < $9::bigint)::int, " RET_FILES,
	[RET_BUILDS_COUNT] = RET_POL
	"kp AS (SELECT bl.id AS builderid, COALESCE(p.k, g.k) AS k FROM builders bl "
	"LEFT JOIN pol p ON p.builderid = bl.id CROSS JOIN g), "
	"cand AS (SELECT x.id FROM kp CROSS JOIN LATERAL (SELECT b.id FROM builds b "
	"WHERE b.builderid = kp.builderid AND b.complete = 1 AND b.id < (SELECT b2.id "
	"FROM builds b2 WHERE b2.builderid = kp.builderid ORDER BY b2.id DESC LIMIT 1 "
	"OFFSET GREATEST(kp.k - 1, 0)) ORDER BY b.id LIMIT $8::bigint) x WHERE kp.k > 0 "
	"ORDER BY x.id LIMIT $8::bigint), " RET_PURGE
	"NULL, NULL, ((SELECT count(*) FROM cand) < $8::bigint)::int, " RET_FILES,
	[RET_LOGS] = RET_POL
	"win AS (SELECT l.id, b.complete, b.complete_at, b.results, b.started_at, b.builderid "
	"FROM logs l JOIN steps s ON s.id = l.stepid JOIN builds b ON b.id = s.buildid WHERE "
	"l.complete = 1 AND l.content_removed_at IS NULL AND l.id > $8::bigint ORDER BY l.id "
	"LIMIT $9::bigint), "
	"st AS (SELECT min(id) AS id FROM win WHERE started_at >= $10::float8), " RET_OK
	"cand AS (SELECT w.id FROM ok w LEFT JOIN pol p ON p.builderid = w.builderid CROSS JOIN "
	"g WHERE w.complete = 1 AND ((COALESCE(p.lb, g.lb) > 0 AND w.complete_at < "
	"COALESCE(p.lb, g.lb)) OR (w.results = 0 AND COALESCE(p.sb, g.sb) > 0 AND "
	"w.complete_at < COALESCE(p.sb, g.sb)))), "
	"dc AS (DELETE FROM logchunks WHERE logid IN (SELECT id FROM cand)), "
	"m AS (UPDATE logs SET content_removed_at = $11::float8 WHERE id IN (SELECT id FROM "
	"cand) RETURNING id) "
	"SELECT 0, (SELECT count(*) FROM m), 0, 0, 0, 0, 0, 0, 0, (SELECT max(id) FROM ok), "
	"NULL, ((SELECT id FROM st) IS NOT NULL OR (SELECT count(*) FROM win) < "
	"$9::bigint)::int, NULL",
	[RET_TESTS] = RET_POL
	"win AS (SELECT t.id, b.complete, b.complete_at, b.started_at, b.builderid FROM "
	"test_result_sets t JOIN builds b ON b.id = t.buildid WHERE t.id > $8::bigint ORDER "
	"BY t.id LIMIT $9::bigint), "
	"st AS (SELECT min(id) AS id FROM win WHERE started_at >= $10::float8), " RET_OK
	"cand AS (SELECT w.id FROM ok w LEFT JOIN pol p ON p.builderid = w.builderid CROSS JOIN "
	"g WHERE w.complete = 1 AND COALESCE(p.tb, g.tb) > 0 AND w.complete_at < "
	"COALESCE(p.tb, g.tb)), "
	"n AS (SELECT count(*) AS n FROM test_results WHERE test_result_setid IN (SELECT id "
	"FROM cand)), "
	"d AS (DELETE FROM test_result_sets WHERE id IN (SELECT id FROM cand)) "
	"SELECT 0, 0, (SELECT n FROM n), 0, 0, 0, 0, 0, 0, (SELECT max(id) FROM ok), NULL, "
	"((SELECT id FROM st) IS NOT NULL OR (SELECT count(*) FROM win) < $9::bigint)::int, "
	"NULL",
	[RET_NUMBERS] = RET_POL
	"win AS (SELECT id, recorded_at, builderid FROM numbers WHERE id > $8::bigint ORDER BY "
	"id LIMIT $9::bigint), "
	"st AS (SELECT min(id) AS id FROM win WHERE recorded_at >= $10::float8), " RET_OK
	"cand AS (SELECT w.id FROM ok w LEFT JOIN pol p ON p.builderid = w.builderid CROSS JOIN "
	"g WHERE COALESCE(p.nb, g.nb) > 0 AND w.recorded_at < COALESCE(p.nb, g.nb)), "
	"d AS (DELETE FROM numbers WHERE id IN (SELECT id FROM cand) RETURNING id) "
	"SELECT 0, 0, 0, (SELECT count(*) FROM d), 0, 0, 0, 0, 0, (SELECT max(id) FROM ok), "
	"NULL, ((SELECT id FROM st) IS NOT NULL OR (SELECT count(*) FROM win) < "
	"$9::bigint)::int, NULL",
	[RET_CHANGES] =
		"WITH win AS (SELECT id, when_timestamp, sourcestampid FROM changes WHERE "
		"when_timestamp < $1::float8 AND (when_timestamp, id) > ($2::float8, $3::bigint) "
		"ORDER BY when_timestamp, id LIMIT $4::bigint), "
		"d AS (DELETE FROM changes c WHERE c.id IN (SELECT id FROM win) AND NOT EXISTS "
		"(SELECT 1 FROM buildset_changes x WHERE x.changeid = c.id) RETURNING c.id, "
		"c.sourcestampid), "
		"dss AS (DELETE FROM sourcestamps t WHERE t.id IN (SELECT sourcestampid FROM d) "
		"AND "
		"NOT EXISTS (SELECT 1 FROM buildset_sourcestamps x WHERE x.sourcestampid = t.id) "
		"AND "
		"NOT EXISTS (SELECT 1 FROM changes c WHERE c.sourcestampid = t.id AND c.id NOT IN "
		"(SELECT id FROM d)) RETURNING t.id), "
		"lw AS (SELECT id, when_timestamp FROM win ORDER BY when_timestamp DESC, id DESC "
		"LIMIT 1) "
		"SELECT 0, 0, 0, 0, (SELECT count(*) FROM d), 0, 0, (SELECT count(*) FROM dss), 0, "
		"(SELECT id FROM lw), (SELECT when_timestamp FROM lw), ((SELECT count(*) FROM win) "
		"< $4::bigint)::int, NULL",
};

/* One batch in flight: the pass's position and what the answer needs. */
struct pgr_call {
	db_retention_fn done;
	void *arg;
	struct db_retention_builder newest;
	double changes_before;
	struct db_retention_step s;
	int r;
	char err[256];
};

static double pgr_max(double a, double b)
{
	return a > b ? a : b;
}

/* The newest of each cut-off over the policy's and every builder's:
 * where a walk by age stops, and which phases run at all. */
static void pgr_newest(const struct db_retention_policy *p, struct db_retention_builder *n)
{
	*n = (struct db_retention_builder){
		.builds_before = p->builds_before,
		.keep_per_builder = p->keep_per_builder,
		.logs_before = p->logs_before,
		.success_logs_before = p->success_logs_before,
		.tests_before = p->tests_before,
		.numbers_before = p->numbers_before,
	};
	for (size_t i = 0; i < p->nbuilders; i++) {
		const struct db_retention_builder *b = &p->builders[i];
		n->builds_before = pgr_max(n->builds_before, b->builds_before);
		if (b->keep_per_builder > n->keep_per_builder)
			n->keep_per_builder = b->keep_per_builder;
		n->logs_before = pgr_max(n->logs_before, b->logs_before);
		n->success_logs_before = pgr_max(n->success_logs_before, b->success_logs_before);
		n->tests_before = pgr_max(n->tests_before, b->tests_before);
		n->numbers_before = pgr_max(n->numbers_before, b->numbers_before);
	}
}

static bool pgr_phase_on(const struct pgr_call *c, int phase)
{
	const struct db_retention_builder *n = &c->newest;
	switch (phase) {
	case RET_BUILDS_AGE:
		return n->builds_before > 0;
	case RET_BUILDS_COUNT:
		return n->keep_per_builder > 0;
	case RET_LOGS:
		return n->logs_before > 0 || n->success_logs_before > 0;
	case RET_TESTS:
		return n->tests_before > 0;
	case RET_NUMBERS:
		return n->numbers_before > 0;
	case RET_CHANGES:
		return c->changes_before > 0;
	}
	return false;
}

/* The position moves to the next phase that runs (or RET_DONE). */
static void pgr_next_phase(struct pgr_call *c)
{
	struct db_retention_pass *st = &c->s.st;
	do {
		st->phase++;
	} while (st->phase < RET_DONE && !pgr_phase_on(c, st->phase));
	st->after_id = st->builderid = 0;
	st->after_ts = 0;
}

static void pgr_free(void *x)
{
	struct pgr_call *c = x;
	db_artifact_files_free(c->s.files, c->s.nfiles);
	free(c);
}

/* The answer: c->r, or -ECANCELED (db_close). */
static void pgr_answer(void *x, int r)
{
	struct pgr_call *c = x;
	if (r >= 0)
		r = c->r;
	const char *err = r >= 0 ? NULL : c->err[0] ? c->err : "the database was closed";
	c->done(c->arg, r, r >= 0 ? &c->s : NULL, err);
	pgr_free(c);
}

/* The files column: [[path, dir], ...] (NULL: none). */
static int pgr_files(struct pgr_call *c, const char *text)
{
	if (!text)
		return 0;
	json_t *a = json_loads(text, 0, NULL);
	if (!json_is_array(a)) {
		json_decref(a);
		return KILN_EDB;
	}
	size_t n = json_array_size(a);
	c->s.files = xcalloc(n ? n : 1, sizeof(*c->s.files));
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(a, i);
		const char *path = json_string_value(json_array_get(e, 0));
		if (!path)
			continue; /* an artifact row without a dir gives no directory */
		c->s.files[c->s.nfiles++] = (struct db_artifact_file){
			.path = xstrdup(path), .dir = json_is_true(json_array_get(e, 1))};
	}
	json_decref(a);
	return 0;
}

/* Takes a batch's answer into c->s (its counts, files and the position
 * after it): 1 while the pass has more to do, 0 when it is over, or an
 * error (*err says why). */
static int pgr_take(struct pgr_call *c, int r, const PGresult *res, const char **err)
{
	if (r >= 0 && (PQntuples(res) != 1 || PQnfields(res) != RET_COLS)) {
		r = KILN_EDB;
		*err = "no answer to a retention batch";
	}
	if (r >= 0 && (r = pgr_files(c, pg_col_str(res, 0, 12))) < 0)
		*err = "a retention batch's files are not JSON";
	if (r < 0) {
		if (!*err)
			*err = "failed";
		return r;
	}
	struct db_retention_counts *k = &c->s.counts;
	int64_t *col[] = {&k->builds,    &k->logs,         &k->test_results,
			  &k->numbers,   &k->changes,      &k->buildrequests,
			  &k->buildsets, &k->sourcestamps, &k->artifacts};
	for (int i = 0; i < 9; i++)
		*col[i] = pg_col_i64(res, 0, i);
	k->rows = k->builds + k->logs + k->test_results + k->numbers + k->changes;
	struct db_retention_pass *st = &c->s.st;
	if (pg_col_i64(res, 0, 11)) {
		pgr_next_phase(c);
	} else {
		if (!PQgetisnull(res, 0, 9))
			st->after_id = pg_col_i64(res, 0, 9);
		if (!PQgetisnull(res, 0, 10))
			st->after_ts = strtod(pg_col_str(res, 0, 10), NULL);
	}
	return st->phase < RET_DONE ? 1 : 0;
}

static void pgr_batch_read(void *arg, int r, const PGresult *res, const char *err)
{
	struct pgr_call *c = arg;
	r = pgr_take(c, r, res, &err);
	c->done(c->arg, r, r >= 0 ? &c->s : NULL, r >= 0 ? NULL : err);
	pgr_free(c);
}

/* The builders' own cut-offs as JSON for json_to_recordset; NULL when a
 * name is not UTF-8. */
static char *pgr_builders_json(const struct db_retention_policy *p)
{
	json_t *a = json_array();
	for (size_t i = 0; i < p->nbuilders; i++) {
		const struct db_retention_builder *b = &p->builders[i];
		json_t *n = json_string(b->name);
		if (!n) {
			json_decref(a);
			return NULL;
		}
		json_array_append_new(a, json_pack("{s:o,s:f,s:I,s:f,s:f,s:f,s:f}", "n", n, "bb",
						   b->builds_before, "k",
						   (json_int_t)b->keep_per_builder, "lb",
						   b->logs_before, "sb", b->success_logs_before,
						   "tb", b->tests_before, "nb", b->numbers_before));
	}
	char *s = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	return s;
}

/* A batch's statement with its parameters (q points into it). */
struct pgr_query {
	struct pgw w;
	char *builders; /* owned */
	struct pg_query q;
};

static void pgr_query_release(struct pgr_query *x)
{
	pgw_release(&x->w);
	free(x->builders);
}

/* Sets c to start from st (moved to the first phase that runs): true when
 * there is a batch to send, false when the pass is over. */
static bool pgr_start(struct pgr_call *c, const struct db_retention_policy *p,
		      const struct db_retention_pass *st)
{
	c->s.st = *st;
	c->changes_before = p->changes_before;
	pgr_newest(p, &c->newest);
	if (c->s.st.phase < RET_DONE && !pgr_phase_on(c, c->s.st.phase))
		pgr_next_phase(c);
	if (c->s.st.phase < 0 || c->s.st.phase >= RET_DONE) {
		c->s.st.phase = RET_DONE;
		return false;
	}
	return true;
}

/* The statement of c's batch (c->s.st at a phase that runs) in *x
 * (release it once sent): 0, or -EINVAL when a builder's name is not
 * UTF-8 (db_errmsg says so). */
static int pgr_query(struct db *db, const struct db_retention_policy *p, const struct pgr_call *c,
		     size_t max_rows, struct pgr_query *x)
{
	int phase = c->s.st.phase;
	int64_t window = max_rows ? (int64_t)max_rows : 1;
	struct pgw *w = &x->w;
	*x = (struct pgr_query){0};
	if (phase == RET_CHANGES) {
		pgw_f64(w, p->changes_before);
		pgw_f64(w, c->s.st.after_ts);
		pgw_i64(w, c->s.st.after_id);
		pgw_i64(w, window);
	} else {
		x->builders = pgr_builders_json(p);
		if (!x->builders)
			return db_failf(db, -EINVAL, "a builder's name is not UTF-8");
		pgw_f64(w, p->builds_before);
		pgw_i64(w, p->keep_per_builder);
		pgw_f64(w, p->logs_before);
		pgw_f64(w, p->success_logs_before);
		pgw_f64(w, p->tests_before);
		pgw_f64(w, p->numbers_before);
		pgw_text(w, x->builders);
		if (phase == RET_BUILDS_COUNT) {
			pgw_i64(w, window);
		} else {
			const struct db_retention_builder *n = &c->newest;
			double newest = phase == RET_BUILDS_AGE ? n->builds_before
					: phase == RET_LOGS
						? pgr_max(n->logs_before, n->success_logs_before)
					: phase == RET_TESTS ? n->tests_before
							     : n->numbers_before;
			pgw_i64(w, c->s.st.after_id);
			pgw_i64(w, window);
			pgw_f64(w, newest);
			if (phase == RET_LOGS)
				pgw_f64(w, clock_wall());
		}
	}
	x->q = (struct pg_query){.sql = ret_sql[phase],
				 .nparams = w->n,
				 .values = w->v,
				 .lengths = w->len,
				 .formats = w->fmt};
	return 0;
}

int db_pg_retention_batch(struct db *db, const struct db_retention_policy *p,
			  const struct db_retention_pass *st, size_t max_rows, db_retention_fn done,
			  void *arg)
{
	struct pgr_call *c = xcalloc(1, sizeof(*c));
	c->done = done;
	c->arg = arg;
	if (!pgr_start(c, p, st)) {
		/* nothing to send: the answer on a later turn all the same */
		c->r = 0;
		return db_async_later(db, pgr_answer, c, pgr_free);
	}
	struct pgr_query x;
	int r = pgr_query(db, p, c, max_rows, &x);
	if (r < 0) {
		pgr_query_release(&x);
		free(c);
		return r;
	}
	r = db_pg_write_returning(db, &x.q, pgr_batch_read, c); /* frees c on failure */
	pgr_query_release(&x);
	return r;
}

/* --- the whole purge in one transaction (`kiln cleanupdb --dry-run`) ---------------------- */

/* Rows per batch of db_retention_run: the master's batches' (retention.h
 * RETENTION_BATCH_ROWS), so that the statements are the ones it sends. */
#define PGR_RUN_ROWS 500

/* One statement of the transaction awaited: its answer taken at once. */
struct pgr_wait {
	struct pgr_call *c; /* a batch's, or NULL: BEGIN, COMMIT, ROLLBACK */
	bool done;
	int r;
	char err[512];
};

static void pgr_waited(void *arg, int r, const PGresult *res, const char *err)
{
	struct pgr_wait *w = arg;
	w->done = true;
	if (w->c && r >= 0)
		r = pgr_take(w->c, r, res, &err);
	w->r = r;
	if (r < 0)
		snprintf(w->err, sizeof(w->err), "%s", err ? err : err_str(r));
}

/* Sends q on the connection the transaction began on (pid: its server
 * process) and runs the loop until it is answered (as db_pg_spin).  A
 * connection lost meanwhile is refused rather than reused: a statement
 * sent on a new one would run outside the transaction. */
static int pgr_send_wait(struct db *db, int pid, const struct pg_query *q, struct pgr_call *c,
			 const char *what)
{
	struct pg_conn *conn = db_pg_conn(db);
	if (pid && pg_conn_backend_pid(conn) != pid)
		return db_failf(db, -ECONNRESET, "%s: the connection to PostgreSQL was lost", what);
	struct pgr_wait w = {.c = c};
	int r = pg_conn_send(conn, q, pgr_waited, &w);
	if (r < 0)
		return db_failf(db, r, "%s: cannot send the query: %s", what, err_str(r));
	r = db_pg_spin(db, &w.done, what);
	if (r < 0)
		return r;
	if (w.r < 0)
		return db_failf(db, w.r, "%s: %s", what, w.err);
	return c ? w.r : 0;
}

static void pgr_counts_add(struct db_retention_counts *t, const struct db_retention_counts *k)
{
	t->builds += k->builds;
	t->logs += k->logs;
	t->test_results += k->test_results;
	t->numbers += k->numbers;
	t->changes += k->changes;
	t->buildrequests += k->buildrequests;
	t->buildsets += k->buildsets;
	t->sourcestamps += k->sourcestamps;
	t->artifacts += k->artifacts;
	t->rows += k->rows;
}

/* The batches of a pass, from the start, each sent once the one before is
 * answered, in the open transaction; their files go to *files. */
static int pgr_run_batches(struct db *db, int pid, const struct db_retention_policy *p,
			   struct db_retention_counts *counts, struct db_artifact_file **files,
			   size_t *nfiles, size_t *cap)
{
	struct db_retention_pass st = {0};
	for (;;) {
		struct pgr_call c = {0};
		if (!pgr_start(&c, p, &st))
			return 0;
		struct pgr_query x;
		int r = pgr_query(db, p, &c, PGR_RUN_ROWS, &x);
		if (r >= 0)
			r = pgr_send_wait(db, pid, &x.q, &c, "db_retention_run");
		pgr_query_release(&x);
		if (r >= 0) {
			pgr_counts_add(counts, &c.s.counts);
			for (size_t i = 0; i < c.s.nfiles; i++) {
				ARRAY_GROW(*files, *nfiles + 1, *cap);
				(*files)[(*nfiles)++] = c.s.files[i];
			}
			free(c.s.files);
			st = c.s.st;
		} else {
			db_artifact_files_free(c.s.files, c.s.nfiles);
		}
		if (r <= 0)
			return r;
	}
}

int db_pg_retention_run(struct db *db, const struct db_retention_policy *p, bool dry_run,
			struct db_retention_counts *counts, struct db_artifact_file **files,
			size_t *nfiles)
{
	*files = NULL;
	*nfiles = 0;
	/* the batcher's writes first, so that nothing of theirs can fall
	 * inside this transaction (a tool writes none meanwhile) */
	int r = db_pg_flush(db);
	if (r < 0)
		return r;
	struct pg_query q = {.sql = "BEGIN"};
	r = pgr_send_wait(db, 0, &q, NULL, "db_retention_run: BEGIN");
	if (r < 0)
		return r;
	int pid = pg_conn_backend_pid(db_pg_conn(db));
	struct db_artifact_file *got = NULL;
	size_t ngot = 0, cap = 0;
	int rr = pid ? pgr_run_batches(db, pid, p, counts, &got, &ngot, &cap)
		     : db_failf(db, -ECONNRESET, "db_retention_run: no connection to PostgreSQL");
	/* a dry run counts inside the transaction, then undoes it all; so
	 * does a failure (ROLLBACK ends the aborted transaction) */
	bool undo = rr < 0 || dry_run;
	char why[512];
	snprintf(why, sizeof(why), "%s", rr < 0 ? db_errmsg(db) : "");
	q.sql = undo ? "ROLLBACK" : "COMMIT";
	r = pgr_send_wait(db, pid, &q, NULL,
			  undo ? "db_retention_run: ROLLBACK" : "db_retention_run: COMMIT");
	if (undo || r < 0)
		db_artifact_files_free(got, ngot);
	if (rr < 0) /* the first error is the one to tell */
		return db_failf(db, rr, "%s", why);
	if (undo || r < 0)
		return r;
	*files = got;
	*nfiles = ngot;
	return 0;
}

int db_pg_file_bytes(struct db *db, int64_t *ret)
{
	return db_pg_int_wait(db, "db_file_bytes", "SELECT pg_database_size(current_database())", 0,
			      NULL, ret);
}

int db_pg_vacuum(struct db *db)
{
	int r = db_pg_flush(db);
	if (r < 0)
		return r;
	/* alone, by the simple protocol: VACUUM refuses a transaction block */
	struct pg_query q = {.sql = "VACUUM", .multi = true};
	return pgr_send_wait(db, 0, &q, NULL, "VACUUM");
}

/* --- the artifacts' retention ------------------------------------------------------------- */

struct pga_call {
	db_artifacts_usage_fn usage;
	db_artifacts_oldest_fn oldest;
	db_artifacts_deleted_fn deleted;
	void *arg;
	size_t max;
};

static int pga_read(struct db *db, struct pgw *w, const char *sql, pg_conn_result_cb cb,
		    struct pga_call *c)
{
	struct pg_query q = {
		.sql = sql, .nparams = w->n, .values = w->v, .lengths = w->len, .formats = w->fmt};
	int r = pg_batch_read(db_pg_batch(db), &q, cb, c);
	pgw_release(w);
	if (r < 0) {
		free(c);
		return db_failf(db, r, "cannot send the query: %s", err_str(r));
	}
	return 0;
}

static void pga_usage_read(void *arg, int r, const PGresult *res, const char *err)
{
	struct pga_call *c = arg;
	if (r >= 0 && PQntuples(res) != 1) {
		r = KILN_EDB;
		err = "no answer to the artifacts' usage";
	}
	if (r < 0)
		c->usage(c->arg, r, 0, 0, 0, err ? err : "failed");
	else
		c->usage(c->arg, 0, pg_col_i64(res, 0, 0), pg_col_i64(res, 0, 1),
			 pg_col_i64(res, 0, 2), NULL);
	free(c);
}

int db_pg_artifacts_usage(struct db *db, int64_t after_id, int64_t keep_builds,
			  db_artifacts_usage_fn done, void *arg)
{
	static const char sql[] =
		"SELECT COALESCE(SUM(size), 0)::bigint, COALESCE(MAX(id), $1::bigint), CASE WHEN "
		"$2::bigint > 0 THEN (SELECT x.buildid FROM (SELECT DISTINCT buildid FROM "
		"artifacts) x ORDER BY x.buildid DESC LIMIT 1 OFFSET GREATEST($2::bigint - 1, 0)) "
		"END FROM artifacts WHERE id > $1::bigint";
	struct pgw w = {0};
	pgw_i64(&w, after_id);
	pgw_i64(&w, keep_builds);
	struct pga_call *c = xcalloc(1, sizeof(*c));
	c->usage = done;
	c->arg = arg;
	return pga_read(db, &w, sql, pga_usage_read, c);
}

static void pga_oldest_read(void *arg, int r, const PGresult *res, const char *err)
{
	struct pga_call *c = arg;
	if (r < 0) {
		c->oldest(c->arg, r, NULL, 0, err ? err : "failed");
		free(c);
		return;
	}
	size_t n = (size_t)PQntuples(res);
	if (n > c->max)
		n = c->max;
	struct db_artifact_age *rows = xcalloc(n ? n : 1, sizeof(*rows));
	for (size_t i = 0; i < n; i++) {
		int row = (int)i;
		const char *at = pg_col_str(res, row, 3);
		rows[i] = (struct db_artifact_age){
			.artifactid = pg_col_i64(res, row, 0),
			.buildid = pg_col_i64(res, row, 1),
			.size = pg_col_i64(res, row, 2),
			.created_at = at ? strtod(at, NULL) : 0,
			.build_done = pg_col_i64(res, row, 4) != 0,
		};
	}
	c->oldest(c->arg, 0, rows, n, NULL);
	free(rows);
	free(c);
}

int db_pg_artifacts_oldest(struct db *db, int64_t after_id, size_t max, db_artifacts_oldest_fn done,
			   void *arg)
{
	static const char sql[] =
		"SELECT a.id, a.buildid, a.size, a.created_at, COALESCE(b.complete, 1) FROM "
		"artifacts a LEFT JOIN builds b ON b.id = a.buildid WHERE a.id > $1::bigint ORDER "
		"BY "
		"a.id LIMIT $2::bigint";
	struct pgw w = {0};
	pgw_i64(&w, after_id);
	pgw_i64(&w, (int64_t)max);
	struct pga_call *c = xcalloc(1, sizeof(*c));
	c->oldest = done;
	c->arg = arg;
	c->max = max;
	return pga_read(db, &w, sql, pga_oldest_read, c);
}

static void pga_deleted(void *arg, int r, const PGresult *res, const char *err)
{
	struct pga_call *c = arg;
	if (r < 0) {
		c->deleted(c->arg, r, NULL, 0, err ? err : "failed");
		free(c);
		return;
	}
	size_t n = (size_t)PQntuples(res);
	struct db_artifact_file *v = xcalloc(n ? n : 1, sizeof(*v));
	for (size_t i = 0; i < n; i++)
		v[i] = (struct db_artifact_file){.path = pg_col_dup(res, (int)i, 0),
						 .dir = pg_col_i64(res, (int)i, 1) != 0};
	c->deleted(c->arg, 0, v, n, NULL);
	free(c);
}

int db_pg_artifacts_delete(struct db *db, const int64_t *ids, size_t n,
			   db_artifacts_deleted_fn done, void *arg)
{
	/* the files and directories no remaining row of their build names
	 * (db-sqlite-artifacts.c's test, the deleted rows left out by hand) */
	static const char sql[] =
		"WITH d AS (DELETE FROM artifacts WHERE id = ANY($1::bigint[]) RETURNING buildid, "
		"path, dir), "
		"f AS (SELECT DISTINCT buildid, path AS p, false AS isdir FROM d UNION SELECT "
		"DISTINCT buildid, dir, true FROM d WHERE dir IS NOT NULL) "
		"SELECT f.p, f.isdir::int FROM f WHERE NOT EXISTS (SELECT 1 FROM artifacts a WHERE "
		"a.buildid = f.buildid AND a.id <> ALL($1::bigint[]) AND CASE WHEN f.isdir THEN "
		"(a.dir = f.p OR a.path = f.p OR left(a.path, length(f.p) + 1) = f.p || '/' OR "
		"left(a.dir, length(f.p) + 1) = f.p || '/') ELSE a.path = f.p END) ORDER BY f.p, "
		"f.isdir";
	struct buf list;
	buf_init(&list, 32 + n * 24);
	int r = buf_addch(&list, '{');
	for (size_t i = 0; i < n && r >= 0; i++)
		r = buf_addf(&list, "%s%" PRId64, i ? "," : "", ids[i]);
	if (r >= 0)
		r = buf_addch(&list, '}');
	if (r >= 0)
		r = buf_addch(&list, '\0');
	if (r < 0) {
		buf_release(&list);
		return db_failf(db, -ENOBUFS, "id list too long");
	}
	struct pgw w = {0};
	pgw_text(&w, list.ptr);
	struct pga_call *c = xcalloc(1, sizeof(*c));
	c->deleted = done;
	c->arg = arg;
	struct pg_query q = {
		.sql = sql, .nparams = w.n, .values = w.v, .lengths = w.len, .formats = w.fmt};
	r = db_pg_write_returning(db, &q, pga_deleted, c); /* frees c on failure */
	pgw_release(&w);
	buf_release(&list);
	return r;
}
