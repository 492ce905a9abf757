/*
 * The engine's reads of the queue on PostgreSQL (issue 14): the builders
 * with queued requests (db_request_pending_builders_async), and what a
 * build reads of its buildset as it starts (db_build_inputs_async):
 * SQLite's three reads (db_buildset_get with the properties,
 * db_buildset_sourcestamps, db_buildset_blamelist) sent pipelined, one
 * answer once the last is in.
 */
#include "db/db-pg.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/xalloc.h"
#include "db/pg-batch.h"
#include "db/pg-conn.h"
#include "db/pg-col.h"

struct pg_inputs_call {
	struct db_build_inputs in;
	int pending; /* queries not answered yet */
	int r;       /* the first error */
	char err[256];
	db_build_inputs_fn done;
	void *arg;
};

static void pg_inputs_fail(struct pg_inputs_call *call, int r, const char *err)
{
	if (call->r < 0)
		return;
	call->r = r;
	snprintf(call->err, sizeof(call->err), "%s", err ? err : "failed");
}

static void pg_inputs_answer(struct pg_inputs_call *call)
{
	if (--call->pending > 0)
		return;
	if (call->r < 0)
		call->done(call->arg, call->r, NULL, call->err);
	else
		call->done(call->arg, 0, &call->in, NULL);
	db_build_inputs_release(&call->in);
	free(call);
}

static void pg_inputs_on_buildset(void *arg, int r, const PGresult *res, const char *err)
{
	struct pg_inputs_call *call = arg;
	if (r < 0) {
		pg_inputs_fail(call, r, err);
	} else if (PQntuples(res) != 1) {
		pg_inputs_fail(call, KILN_ENOTFOUND, "no such buildset");
	} else {
		struct db_buildset_info *bi = &call->in.bs;
		bi->scheduler = pg_col_dup(res, 0, 0);
		bi->reason = pg_col_dup(res, 0, 1);
		bi->complete = pg_col_i64(res, 0, 2) != 0;
		bi->results = PQgetisnull(res, 0, 3) ? RESULTS_NONE : (int)pg_col_i64(res, 0, 3);
		bi->parent_buildid = pg_col_i64(res, 0, 4);
		bi->nsourcestamps = (size_t)pg_col_i64(res, 0, 5);
		bi->branch = pg_col_dup(res, 0, 6);
		bi->revision = pg_col_dup(res, 0, 7);
		bi->repository = pg_col_dup(res, 0, 8);
		bi->project = pg_col_dup(res, 0, 9);
		bi->codebase = pg_col_dup(res, 0, 10);
		bi->patchid = pg_col_i64(res, 0, 11);
		bi->npatches = (size_t)pg_col_i64(res, 0, 13);
		json_error_t e;
		call->in.props = json_loads(PQgetvalue(res, 0, 12), 0, &e);
		if (!call->in.props) {
			char why[200];
			snprintf(why, sizeof(why), "buildset %" PRId64 ": stored properties: %s",
				 bi->bsid, e.text);
			pg_inputs_fail(call, KILN_EDB, why);
		}
	}
	pg_inputs_answer(call);
}

enum { PG_SS_BRANCH, PG_SS_REVISION, PG_SS_REPOSITORY, PG_SS_PROJECT, PG_SS_CODEBASE, PG_SS_N };

/* Column col of row i copied into the string area at *pos (NULL stays NULL). */
static const char *pg_ss_copy(const PGresult *res, int i, int col, char **pos)
{
	if (PQgetisnull(res, i, col))
		return NULL;
	size_t len = (size_t)PQgetlength(res, i, col);
	char *out = *pos;
	memcpy(out, PQgetvalue(res, i, col), len);
	out[len] = '\0';
	*pos += len + 1;
	return out;
}

static void pg_inputs_on_sourcestamps(void *arg, int r, const PGresult *res, const char *err)
{
	struct pg_inputs_call *call = arg;
	if (r < 0) {
		pg_inputs_fail(call, r, err);
		pg_inputs_answer(call);
		return;
	}
	/* one block: the array, then its strings (db_buildset_sourcestamps') */
	size_t n = (size_t)PQntuples(res), bytes = 0;
	for (size_t i = 0; i < n; i++)
		for (int c = 0; c < PG_SS_N; c++)
			if (!PQgetisnull(res, (int)i, c))
				bytes += (size_t)PQgetlength(res, (int)i, c) + 1;
	if (n) {
		struct db_sourcestamp *v = xmalloc(n * sizeof(*v) + bytes);
		char *pos = (char *)(v + n);
		for (size_t i = 0; i < n; i++) {
			v[i].branch = pg_ss_copy(res, (int)i, PG_SS_BRANCH, &pos);
			v[i].revision = pg_ss_copy(res, (int)i, PG_SS_REVISION, &pos);
			v[i].repository = pg_ss_copy(res, (int)i, PG_SS_REPOSITORY, &pos);
			v[i].project = pg_ss_copy(res, (int)i, PG_SS_PROJECT, &pos);
			v[i].codebase = pg_ss_copy(res, (int)i, PG_SS_CODEBASE, &pos);
		}
		call->in.ss = v;
		call->in.nss = n;
	}
	pg_inputs_answer(call);
}

static void pg_inputs_on_blamelist(void *arg, int r, const PGresult *res, const char *err)
{
	struct pg_inputs_call *call = arg;
	if (r < 0) {
		pg_inputs_fail(call, r, err);
	} else {
		json_t *list = json_array();
		for (int i = 0, n = PQntuples(res); i < n; i++)
			json_array_append_new(list, json_string(PQgetvalue(res, i, 0)));
		call->in.blamelist = list;
	}
	pg_inputs_answer(call);
}

int db_pg_build_inputs(struct db *db, int64_t bsid, db_build_inputs_fn done, void *arg)
{
	static const char buildset[] =
		"SELECT bs.scheduler, bs.reason, bs.complete, bs.results, bs.parent_buildid, "
		"(SELECT COUNT(*) FROM buildset_sourcestamps WHERE buildsetid = bs.id), "
		"ss.branch, ss.revision, ss.repository, ss.project, ss.codebase, ss.patchid, "
		"bs.properties, (SELECT COUNT(*) FROM buildset_sourcestamps x JOIN sourcestamps p "
		"ON p.id = x.sourcestampid WHERE x.buildsetid = bs.id AND p.patchid IS NOT NULL) "
		"FROM buildsets bs LEFT JOIN sourcestamps ss ON ss.id = "
		"(SELECT MIN(sourcestampid) FROM buildset_sourcestamps WHERE buildsetid = bs.id) "
		"WHERE bs.id = $1::bigint";
	/* codebases and authors in SQLite's order: by bytes */
	static const char sourcestamps[] =
		"SELECT ss.branch, ss.revision, ss.repository, ss.project, ss.codebase "
		"FROM buildset_sourcestamps x JOIN sourcestamps ss ON ss.id = x.sourcestampid "
		"WHERE x.buildsetid = $1::bigint ORDER BY ss.codebase COLLATE \"C\", ss.id";
	static const char blamelist[] =
		"SELECT DISTINCT c.author COLLATE \"C\" FROM buildset_changes bc "
		"JOIN changes c ON c.id = bc.changeid WHERE bc.buildsetid = $1::bigint "
		"ORDER BY 1";
	static const struct {
		const char *sql;
		pg_conn_result_cb cb;
	} reads[] = {
		{buildset, pg_inputs_on_buildset},
		{sourcestamps, pg_inputs_on_sourcestamps},
		{blamelist, pg_inputs_on_blamelist},
	};
	char id[24];
	snprintf(id, sizeof(id), "%" PRId64, bsid);
	const char *values[] = {id};
	struct pg_inputs_call *call = xcalloc(1, sizeof(*call));
	call->in.bs.bsid = bsid;
	call->done = done;
	call->arg = arg;
	/* one more than the reads: none answers before all are sent */
	call->pending = 1;
	for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++) {
		struct pg_query q = {.sql = reads[i].sql, .nparams = 1, .values = values};
		int r = pg_batch_read(db_pg_batch(db), &q, reads[i].cb, call);
		if (r < 0) {
			if (i == 0) {
				free(call);
				return db_failf(db, r, "cannot send the query: %s", err_str(r));
			}
			/* the reads sent answer later; this one failed now */
			pg_inputs_fail(call, r, "cannot send the query");
			break;
		}
		call->pending++;
	}
	pg_inputs_answer(call);
	return 0;
}

struct pg_pending_call {
	db_ids_fn done;
	void *arg;
};

static void pg_pending_on_rows(void *arg, int r, const PGresult *res, const char *err)
{
	struct pg_pending_call *call = arg;
	if (r < 0) {
		call->done(call->arg, r, NULL, 0, err ? err : "failed");
		free(call);
		return;
	}
	size_t n = (size_t)PQntuples(res);
	int64_t *ids = xcalloc(n + 1, sizeof(*ids));
	for (size_t i = 0; i < n; i++)
		ids[i] = pg_col_i64(res, (int)i, 0);
	call->done(call->arg, 0, ids, n, NULL);
	free(ids);
	free(call);
}

int db_pg_request_pending_builders(struct db *db, db_ids_fn done, void *arg)
{
	static const char sql[] = "SELECT DISTINCT builderid FROM buildrequests "
				  "WHERE complete = 0 AND claimed_at IS NULL ORDER BY builderid";
	struct pg_pending_call *call = xmalloc(sizeof(*call));
	*call = (struct pg_pending_call){.done = done, .arg = arg};
	struct pg_query q = {.sql = sql};
	int r = pg_batch_read(db_pg_batch(db), &q, pg_pending_on_rows, call);
	if (r < 0) {
		free(call);
		return db_failf(db, r, "cannot send the query: %s", err_str(r));
	}
	return 0;
}

struct pg_counts_call {
	db_counts_fn done;
	void *arg;
};

static void pg_counts_on_rows(void *arg, int r, const PGresult *res, const char *err)
{
	struct pg_counts_call *call = arg;
	if (r < 0) {
		call->done(call->arg, r, NULL, NULL, 0, err ? err : "failed");
		free(call);
		return;
	}
	size_t n = (size_t)PQntuples(res);
	int64_t *ids = xcalloc(n + 1, sizeof(*ids)), *counts = xcalloc(n + 1, sizeof(*counts));
	for (size_t i = 0; i < n; i++) {
		ids[i] = pg_col_i64(res, (int)i, 0);
		counts[i] = pg_col_i64(res, (int)i, 1);
	}
	call->done(call->arg, 0, ids, counts, n, NULL);
	free(ids);
	free(counts);
	free(call);
}

int db_pg_request_queued_counts(struct db *db, int64_t cap, db_counts_fn done, void *arg)
{
	static const char sql[] =
		"SELECT builderid, LEAST(count(*), $1::bigint) FROM buildrequests "
		"WHERE complete = 0 AND claimed_at IS NULL GROUP BY builderid ORDER BY builderid";
	char capv[24];
	snprintf(capv, sizeof(capv), "%lld", (long long)cap);
	const char *v[] = {capv};
	struct pg_counts_call *call = xmalloc(sizeof(*call));
	*call = (struct pg_counts_call){.done = done, .arg = arg};
	struct pg_query q = {.sql = sql, .nparams = 1, .values = v};
	return db_pg_read(db, &q, pg_counts_on_rows, call);
}

struct pg_head_call {
	db_request_head_fn done;
	db_summaries_fn sums;
	void *arg;
};

static void pg_head_on_rows(void *arg, int r, const PGresult *res, const char *err)
{
	struct pg_head_call *call = arg;
	if (r < 0) {
		call->done(call->arg, r, NULL, 0, err ? err : "failed");
		free(call);
		return;
	}
	size_t n = (size_t)PQntuples(res);
	struct db_request_head *v = xcalloc(n + 1, sizeof(*v));
	for (size_t k = 0; k < n; k++) {
		int i = (int)k;
		v[k].req = (struct db_request){
			.buildrequestid = pg_col_i64(res, i, 0),
			.buildsetid = pg_col_i64(res, i, 1),
			.builderid = pg_col_i64(res, i, 2),
			.priority = (int)pg_col_i64(res, i, 3),
			.submitted_at = strtod(PQgetvalue(res, i, 4), NULL),
			.results = (int)pg_col_i64(res, i, 5),
		};
		v[k].reason = pg_col_str(res, i, 6);
		const char *props = pg_col_str(res, i, 7);
		v[k].properties = props ? json_loads(props, 0, NULL) : NULL;
	}
	call->done(call->arg, 0, v, n, NULL);
	for (size_t k = 0; k < n; k++)
		json_decref(v[k].properties);
	free(v);
	free(call);
}

int db_pg_request_queue_head(struct db *db, int64_t builderid, size_t max, db_request_head_fn done,
			     void *arg)
{
	static const char sql[] =
		"SELECT br.id, br.buildsetid, br.builderid, br.priority, br.submitted_at, "
		"br.results, bs.reason, bs.properties FROM buildrequests br JOIN buildsets bs ON "
		"bs.id = br.buildsetid WHERE br.builderid = $1::bigint AND br.complete = 0 AND "
		"br.claimed_at IS NULL ORDER BY br.priority DESC, br.submitted_at, br.id LIMIT "
		"$2::bigint";
	char bid[24], lim[24];
	snprintf(bid, sizeof(bid), "%" PRId64, builderid);
	snprintf(lim, sizeof(lim), "%zu", max);
	const char *v[] = {bid, lim};
	struct pg_head_call *call = xcalloc(1, sizeof(*call));
	call->done = done;
	call->arg = arg;
	struct pg_query q = {.sql = sql, .nparams = 2, .values = v};
	return db_pg_read(db, &q, pg_head_on_rows, call);
}

static void pg_sums_on_rows(void *arg, int r, const PGresult *res, const char *err)
{
	struct pg_head_call *call = arg;
	if (r < 0) {
		call->sums(call->arg, r, NULL, NULL, NULL, 0, err ? err : "failed");
		free(call);
		return;
	}
	size_t n = (size_t)PQntuples(res);
	int64_t *ids = xcalloc(n + 1, sizeof(*ids));
	int *prio = xcalloc(n + 1, sizeof(*prio));
	double *oldest = xcalloc(n + 1, sizeof(*oldest));
	for (size_t k = 0; k < n; k++) {
		ids[k] = pg_col_i64(res, (int)k, 0);
		prio[k] = (int)pg_col_i64(res, (int)k, 1);
		oldest[k] = strtod(PQgetvalue(res, (int)k, 2), NULL);
	}
	call->sums(call->arg, 0, ids, prio, oldest, n, NULL);
	free(ids);
	free(prio);
	free(oldest);
	free(call);
}

int db_pg_request_summaries(struct db *db, const int64_t *ids, size_t n, db_summaries_fn done,
			    void *arg)
{
	/* in ids' order: array_position over the array given */
	static const char sql[] =
		"SELECT builderid, max(priority), min(submitted_at) FROM buildrequests WHERE "
		"complete = 0 AND claimed_at IS NULL AND builderid = ANY($1::bigint[]) GROUP BY "
		"builderid ORDER BY array_position($1::bigint[], builderid)";
	struct buf list;
	int r = pgw_id_array(db, &list, ids, n);
	if (r < 0) {
		buf_release(&list);
		return r;
	}
	const char *v[] = {list.ptr};
	struct pg_head_call *call = xcalloc(1, sizeof(*call));
	call->sums = done;
	call->arg = arg;
	struct pg_query q = {.sql = sql, .nparams = 1, .values = v};
	r = db_pg_read(db, &q, pg_sums_on_rows, call);
	buf_release(&list);
	return r;
}

/* --- request lines: collapse_requests' reads and claims ----------------------------- */

void db_pg_answer_lines(int r, const PGresult *res, const char *err, db_request_lines_fn done,
			void *arg)
{
	if (r < 0) {
		done(arg, r, NULL, 0, err ? err : "failed");
		return;
	}
	size_t n = (size_t)PQntuples(res);
	bool full = PQnfields(res) >= 7;
	struct db_request_line *v = xcalloc(n + 1, sizeof(*v));
	for (size_t i = 0; i < n; i++) {
		int row = (int)i;
		v[i] = (struct db_request_line){
			.buildrequestid = pg_col_i64(res, row, 0),
			.buildsetid = pg_col_i64(res, row, 1),
		};
		if (full) {
			v[i].branch = pg_col_str(res, row, 2);
			v[i].revision = pg_col_str(res, row, 3);
			v[i].repository = pg_col_str(res, row, 4);
			v[i].project = pg_col_str(res, row, 5);
			v[i].codebase = pg_col_str(res, row, 6);
		}
	}
	done(arg, 0, v, n, NULL);
	free(v);
}

struct pg_lines_call {
	db_request_lines_fn done;
	void *arg;
};

static void pg_lines_on_rows(void *arg, int r, const PGresult *res, const char *err)
{
	struct pg_lines_call *call = arg;
	db_pg_answer_lines(r, res, err, call->done, call->arg);
	free(call);
}

/* sql with two parameters, its rows answered as request lines */
static int pg_lines_read(struct db *db, const char *sql, const char *a, const char *b,
			 db_request_lines_fn done, void *arg)
{
	const char *values[] = {a, b};
	struct pg_lines_call *call = xmalloc(sizeof(*call));
	*call = (struct pg_lines_call){.done = done, .arg = arg};
	struct pg_query q = {.sql = sql, .nparams = 2, .values = values};
	int r = pg_batch_read(db_pg_batch(db), &q, pg_lines_on_rows, call);
	if (r < 0) {
		free(call);
		return db_failf(db, r, "cannot send the query: %s", err_str(r));
	}
	return 0;
}

/* SQLite's two reads in one: brid's line first, then the compatible
 * requests' (the same line, one sourcestamp each, no patch). */
int db_pg_request_compatible(struct db *db, int64_t brid, size_t max, db_request_lines_fn done,
			     void *arg)
{
	static const char sql[] =
		"(SELECT r.id, r.buildsetid, s.branch, s.revision, s.repository, s.project, "
		"s.codebase, 0 AS k FROM buildrequests r LEFT JOIN buildset_sourcestamps x ON "
		"x.buildsetid = r.buildsetid LEFT JOIN sourcestamps s ON s.id = x.sourcestampid "
		"WHERE r.id = $1::bigint ORDER BY s.id LIMIT 1) "
		"UNION ALL (SELECT o.id, o.buildsetid, os.branch, os.revision, os.repository, "
		"os.project, os.codebase, 1 FROM buildrequests r "
		"JOIN buildset_sourcestamps rx ON rx.buildsetid = r.buildsetid "
		"JOIN sourcestamps rs ON rs.id = rx.sourcestampid "
		"JOIN buildrequests o ON o.builderid = r.builderid AND o.complete = 0 AND "
		"o.claimed_at IS NULL "
		"JOIN buildset_sourcestamps ox ON ox.buildsetid = o.buildsetid "
		"JOIN sourcestamps os ON os.id = ox.sourcestampid "
		"WHERE r.id = $1::bigint AND o.id <> r.id AND rs.patchid IS NULL AND os.patchid IS "
		"NULL AND os.codebase = rs.codebase AND os.repository = rs.repository AND "
		"os.project = rs.project AND os.branch IS NOT DISTINCT FROM rs.branch AND "
		"(SELECT COUNT(*) FROM buildset_sourcestamps WHERE buildsetid = r.buildsetid) = 1 "
		"AND (SELECT COUNT(*) FROM buildset_sourcestamps WHERE buildsetid = o.buildsetid) "
		"= 1 ORDER BY o.id LIMIT $2::bigint) ORDER BY k, id";
	char a[24], b[24];
	snprintf(a, sizeof(a), "%" PRId64, brid);
	snprintf(b, sizeof(b), "%zu", max);
	return pg_lines_read(db, sql, a, b, done, arg);
}

/* SQLite's two reads in one: bsid's line first, then the superseded
 * requests (ids and buildsetids). */
int db_pg_request_superseded(struct db *db, int64_t builderid, int64_t bsid,
			     db_request_lines_fn done, void *arg)
{
	static const char sql[] =
		"(SELECT 0 AS id, $2::bigint AS buildsetid, s.branch, s.revision, s.repository, "
		"s.project, s.codebase, 0 AS k FROM buildset_sourcestamps x JOIN sourcestamps s "
		"ON s.id = x.sourcestampid WHERE x.buildsetid = $2::bigint ORDER BY s.id LIMIT 1) "
		"UNION ALL (SELECT DISTINCT o.id, o.buildsetid, NULL, NULL, NULL, NULL, NULL, 1 "
		"FROM buildset_sourcestamps nx JOIN sourcestamps ns ON ns.id = nx.sourcestampid "
		"JOIN buildrequests o ON o.builderid = $1::bigint AND o.complete = 0 AND "
		"o.claimed_at IS NULL AND o.buildsetid < $2::bigint "
		"JOIN buildset_sourcestamps ox ON ox.buildsetid = o.buildsetid "
		"JOIN sourcestamps os ON os.id = ox.sourcestampid "
		"WHERE nx.buildsetid = $2::bigint AND os.patchid IS NULL AND os.codebase = "
		"ns.codebase AND os.repository = ns.repository AND os.project = ns.project AND "
		"os.branch IS NOT DISTINCT FROM ns.branch) ORDER BY k, id";
	char a[24], b[24];
	snprintf(a, sizeof(a), "%" PRId64, builderid);
	snprintf(b, sizeof(b), "%" PRId64, bsid);
	return pg_lines_read(db, sql, a, b, done, arg);
}

struct pg_patches_call {
	db_patches_fn done;
	void *arg;
};

static void pg_patches_answered(void *arg, int r, const PGresult *res, const char *err)
{
	struct pg_patches_call *c = arg;
	if (r < 0) {
		c->done(c->arg, r, NULL, 0, err ? err : "failed");
		free(c);
		return;
	}
	size_t n = (size_t)PQntuples(res);
	struct db_patch_data *v = xcalloc(n + 1, sizeof(*v));
	for (size_t i = 0; i < n; i++) {
		size_t len = 0;
		unsigned char *raw =
			PQunescapeBytea((const unsigned char *)PQgetvalue(res, (int)i, 2), &len);
		char *body = xmalloc(len + 1);
		if (raw && len)
			memcpy(body, raw, len);
		body[len] = '\0';
		PQfreemem(raw);
		v[i] = (struct db_patch_data){.codebase = pg_col_dup(res, (int)i, 0),
					      .level = (int)pg_col_i64(res, (int)i, 1),
					      .body = body,
					      .len = len,
					      .subdir = pg_col_dup(res, (int)i, 3)};
	}
	c->done(c->arg, 0, v, n, NULL);
	free(c);
}

int db_pg_buildset_patches(struct db *db, int64_t bsid, db_patches_fn done, void *arg)
{
	char id[24];
	snprintf(id, sizeof(id), "%lld", (long long)bsid);
	const char *values[] = {id};
	struct pg_query q = {
		.sql = "SELECT ss.codebase, p.patchlevel, p.body, p.subdir FROM "
		       "buildset_sourcestamps "
		       "x JOIN sourcestamps ss ON ss.id = x.sourcestampid JOIN patches p ON p.id = "
		       "ss.patchid WHERE x.buildsetid = $1::bigint ORDER BY ss.codebase COLLATE "
		       "\"C\", "
		       "ss.id",
		.nparams = 1,
		.values = values};
	struct pg_patches_call *c = xmalloc(sizeof(*c));
	*c = (struct pg_patches_call){.done = done, .arg = arg};
	int r = pg_batch_read(db_pg_batch(db), &q, pg_patches_answered, c);
	if (r < 0) {
		free(c);
		return db_failf(db, r, "cannot send the query: %s", err_str(r));
	}
	return 0;
}
