/*
 * db_list for SQLite: one table of fields per resource (Buildbot name, SQL
 * expression, type) drives the filters, the ordering and the JSON rendering
 * of the REST API's collections.  Field names are checked against the table
 * and values are bound, so no request text ever reaches the SQL.
 *
 * Adding a field: one line in the resource's table below (and the column
 * in a migration if it is new); the API and tests pick it up by name.
 */
#include "db/db-internal.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "common/str.h"
#include "common/xalloc.h"

/* A sourcestamp's patch as Buildbot renders it, or NULL (ss = sourcestamps). */
#define LIST_SS_PATCH                                                                              \
	"json((SELECT json_object('author', p.patch_author, 'body', kiln_text(p.body), "           \
	"'comment', p.patch_comment, 'level', p.patchlevel, 'patchid', p.id, 'subdir', p.subdir) " \
	"FROM patches p WHERE p.id = ss.patchid))"

enum field_type {
	F_INT,  /* integer, may be NULL */
	F_TIME, /* REAL seconds stored, integer seconds rendered */
	F_TEXT,
	F_BOOL,
	F_JSON, /* JSON text, rendered as the value it holds */
};

enum {
	F_FILTER_ONLY = 1 << 0, /* not rendered; expr is a condition with "@@" for the values */
};

struct field {
	const char *name;
	const char *expr;
	enum field_type type;
	unsigned flags;
};

struct resource {
	const char *from;
	const char *id; /* default order and tiebreaker */
	const struct field *fields;
	size_t nfields;
};

#define TABLE(from, id, f)                                                                         \
	{                                                                                          \
		from, id, f, ARRAY_SIZE(f)                                                         \
	}

static const struct field masters_fields[] = {
	{"active", "m.active", F_BOOL, 0},
	{"last_active", "m.last_active", F_TIME, 0},
	{"masterid", "m.id", F_INT, 0},
	{"name", "m.name", F_TEXT, 0},
};

static const struct field builders_fields[] = {
	{"builderid", "b.id", F_INT, 0},
	{"description", "b.description", F_TEXT, 0},
	{"masterids",
	 "(SELECT json_group_array(masterid) FROM (SELECT masterid FROM builder_masters "
	 "WHERE builderid = b.id ORDER BY masterid))",
	 F_JSON, 0},
	{"name", "b.name", F_TEXT, 0},
	{"tags", "b.tags", F_JSON, 0},
	{"masterid", "b.id IN (SELECT builderid FROM builder_masters WHERE masterid IN (@@))",
	 F_INT, F_FILTER_ONLY},
};

static const struct field workers_fields[] = {
	{"configured_on",
	 "(SELECT json_group_array(json_object('builderid', builderid, 'masterid', masterid)) "
	 "FROM (SELECT builderid, masterid FROM configured_workers WHERE workerid = w.id "
	 "ORDER BY builderid, masterid))",
	 F_JSON, 0},
	{"connected_to",
	 "CASE WHEN w.masterid IS NULL THEN '[]' "
	 "ELSE json_array(json_object('masterid', w.masterid)) END",
	 F_JSON, 0},
	{"graceful", "w.graceful", F_BOOL, 0},
	{"last_seen", "w.last_seen", F_TIME, 0}, /* slice "uimisc" */
	{"name", "w.name", F_TEXT, 0},
	{"paused", "w.paused", F_BOOL, 0},
	{"workerid", "w.id", F_INT, 0},
	{"workerinfo", "w.info", F_JSON, 0},
	{"builderid", "w.id IN (SELECT workerid FROM configured_workers WHERE builderid IN (@@))",
	 F_INT, F_FILTER_ONLY},
	{"masterid", "w.id IN (SELECT workerid FROM configured_workers WHERE masterid IN (@@))",
	 F_INT, F_FILTER_ONLY},
};

static const struct field buildsets_fields[] = {
	{"bsid", "bs.id", F_INT, 0},
	{"complete", "bs.complete", F_BOOL, 0},
	{"complete_at", "bs.complete_at", F_TIME, 0},
	{"external_idstring", "bs.external_idstring", F_TEXT, 0},
	{"parent_buildid", "bs.parent_buildid", F_INT, 0},
	{"parent_relationship", "bs.parent_relationship", F_TEXT, 0},
	{"reason", "bs.reason", F_TEXT, 0},
	{"results", "bs.results", F_INT, 0},
	{"sourcestamps",
	 "(SELECT json_group_array(json_object('branch', ss.branch, 'codebase', ss.codebase, "
	 "'created_at', CAST(ss.created_at AS INTEGER), 'patch', " LIST_SS_PATCH ", "
	 "'project', ss.project, "
	 "'repository', ss.repository, 'revision', ss.revision, 'ssid', ss.id)) "
	 "FROM buildset_sourcestamps x JOIN sourcestamps ss ON ss.id = x.sourcestampid "
	 "WHERE x.buildsetid = bs.id)",
	 F_JSON, 0},
	{"submitted_at", "bs.submitted_at", F_TIME, 0},
};

static const struct field buildrequests_fields[] = {
	{"builderid", "br.builderid", F_INT, 0},
	{"buildrequestid", "br.id", F_INT, 0},
	{"buildsetid", "br.buildsetid", F_INT, 0},
	{"claimed", "(br.claimed_at IS NOT NULL)", F_BOOL, 0},
	{"claimed_at", "br.claimed_at", F_TIME, 0},
	{"claimed_by_masterid", "br.claimed_by_masterid", F_INT, 0},
	{"complete", "br.complete", F_BOOL, 0},
	{"complete_at", "br.complete_at", F_TIME, 0},
	{"priority", "br.priority", F_INT, 0},
	{"properties", "NULL", F_JSON, 0},
	{"results", "br.results", F_INT, 0},
	{"submitted_at", "br.submitted_at", F_TIME, 0},
	{"waited_for", "br.waited_for", F_BOOL, 0},
};

static const struct field builds_fields[] = {
	{"builderid", "b.builderid", F_INT, 0},
	{"buildid", "b.id", F_INT, 0},
	{"buildrequestid", "b.buildrequestid", F_INT, 0},
	{"complete", "b.complete", F_BOOL, 0},
	{"complete_at", "b.complete_at", F_TIME, 0},
	{"masterid", "b.masterid", F_INT, 0},
	{"number", "b.number", F_INT, 0},
	{"properties", "b.properties", F_JSON, 0},
	{"results", "b.results", F_INT, 0},
	{"started_at", "b.started_at", F_TIME, 0},
	{"state_string", "b.state_string", F_TEXT, 0},
	{"workerid", "b.workerid", F_INT, 0},
	/* the builds made from a change: those of the buildsets it is linked to */
	{"changeid",
	 "b.buildrequestid IN (SELECT br.id FROM buildrequests br JOIN buildset_changes bc ON "
	 "bc.buildsetid = br.buildsetid WHERE bc.changeid IN (@@))",
	 F_INT, F_FILTER_ONLY},
};

static const struct field steps_fields[] = {
	{"buildid", "s.buildid", F_INT, 0},
	{"complete", "s.complete", F_BOOL, 0},
	{"complete_at", "s.complete_at", F_TIME, 0},
	{"hidden", "s.hidden", F_BOOL, 0},
	{"name", "s.name", F_TEXT, 0},
	{"number", "s.number", F_INT, 0},
	{"results", "s.results", F_INT, 0},
	{"started_at", "s.started_at", F_TIME, 0},
	{"state_string", "s.state_string", F_TEXT, 0},
	{"stepid", "s.id", F_INT, 0},
	{"urls", "s.urls", F_JSON, 0},
};

static const struct field logs_fields[] = {
	{"complete", "l.complete", F_BOOL, 0},
	{"content_removed", "(l.content_removed_at IS NOT NULL)", F_BOOL, 0},
	{"logid", "l.id", F_INT, 0},
	{"name", "l.name", F_TEXT, 0},
	{"num_lines", "l.num_lines", F_INT, 0},
	{"slug", "l.slug", F_TEXT, 0},
	{"stepid", "l.stepid", F_INT, 0},
	{"type", "l.type", F_TEXT, 0},
};

static const struct field sourcestamps_fields[] = {
	{"branch", "ss.branch", F_TEXT, 0},         {"codebase", "ss.codebase", F_TEXT, 0},
	{"created_at", "ss.created_at", F_TIME, 0}, {"patch", LIST_SS_PATCH, F_JSON, 0},
	{"project", "ss.project", F_TEXT, 0},       {"repository", "ss.repository", F_TEXT, 0},
	{"revision", "ss.revision", F_TEXT, 0},     {"ssid", "ss.id", F_INT, 0},
};

static const struct field changes_fields[] = {
	{"author", "c.author", F_TEXT, 0},
	{"branch", "c.branch", F_TEXT, 0},
	{"category", "c.category", F_TEXT, 0},
	{"changeid", "c.id", F_INT, 0},
	{"codebase", "c.codebase", F_TEXT, 0},
	{"comments", "c.comments", F_TEXT, 0},
	{"committer", "c.committer", F_TEXT, 0},
	{"files", "c.files", F_JSON, 0},
	{"parent_changeids",
	 "CASE WHEN c.parent_changeid IS NULL THEN '[]' ELSE json_array(c.parent_changeid) END",
	 F_JSON, 0},
	{"project", "c.project", F_TEXT, 0},
	{"properties", "c.properties", F_JSON, 0},
	{"repository", "c.repository", F_TEXT, 0},
	{"revision", "c.revision", F_TEXT, 0},
	{"revlink", "c.revlink", F_TEXT, 0},
	{"sourcestamp",
	 "(SELECT json_object('branch', ss.branch, 'codebase', ss.codebase, "
	 "'created_at', CAST(ss.created_at AS INTEGER), 'patch', " LIST_SS_PATCH ", "
	 "'project', ss.project, "
	 "'repository', ss.repository, 'revision', ss.revision, 'ssid', ss.id) "
	 "FROM sourcestamps ss WHERE ss.id = c.sourcestampid)",
	 F_JSON, 0},
	{"when_timestamp", "c.when_timestamp", F_TIME, 0},
	/* the changes a build builds: those linked to its buildset */
	{"buildid",
	 "c.id IN (SELECT bc.changeid FROM builds b JOIN buildrequests br ON br.id = "
	 "b.buildrequestid JOIN buildset_changes bc ON bc.buildsetid = br.buildsetid "
	 "WHERE b.id IN (@@))",
	 F_INT, F_FILTER_ONLY},
	{"bsid", "c.id IN (SELECT changeid FROM buildset_changes WHERE buildsetid IN (@@))", F_INT,
	 F_FILTER_ONLY},
};

/* test results (db-sqlite-tests.c); tests_skipped, results, message: Kiln's */
static const struct field test_result_sets_fields[] = {
	{"builderid", "t.builderid", F_INT, 0},
	{"buildid", "t.buildid", F_INT, 0},
	{"category", "t.category", F_TEXT, 0},
	{"complete", "t.complete", F_BOOL, 0},
	{"description", "t.description", F_TEXT, 0},
	{"stepid", "t.stepid", F_INT, 0},
	{"test_result_setid", "t.id", F_INT, 0},
	{"tests_failed", "t.tests_failed", F_INT, 0},
	{"tests_passed", "t.tests_passed", F_INT, 0},
	{"tests_skipped", "t.tests_skipped", F_INT, 0},
	{"value_unit", "t.value_unit", F_TEXT, 0},
};

static const struct field test_results_fields[] = {
	{"builderid", "r.builderid", F_INT, 0},
	{"duration_ns", "r.duration_ns", F_INT, 0},
	{"line", "r.line", F_INT, 0},
	{"message", "r.message", F_TEXT, 0},
	{"results", "r.results", F_INT, 0},
	{"test_code_path", "(SELECT path FROM test_code_paths WHERE id = r.test_code_pathid)",
	 F_TEXT, 0},
	{"test_name", "(SELECT name FROM test_names WHERE id = r.test_nameid)", F_TEXT, 0},
	{"test_result_setid", "r.test_result_setid", F_INT, 0},
	{"test_resultid", "r.id", F_INT, 0},
	{"value", "r.value", F_TEXT, 0},
};

/* users (db-sqlite-users.c, slice "users"): bb_password is never rendered,
 * only whether there is one */
static const struct field users_fields[] = {
	{"bb_username", "u.bb_username", F_TEXT, 0},
	{"email", "u.email", F_TEXT, 0},
	{"full_name", "u.full_name", F_TEXT, 0},
	{"has_password", "(u.bb_password IS NOT NULL)", F_BOOL, 0},
	{"identifier", "u.identifier", F_TEXT, 0},
	{"identities",
	 "(SELECT json_group_array(json_object('attr_type', attr_type, 'attr_data', attr_data)) "
	 "FROM (SELECT attr_type, attr_data FROM users_info WHERE userid = u.id "
	 "ORDER BY attr_type, attr_data))",
	 F_JSON, 0},
	{"uid", "u.id", F_INT, 0},
	{"attr_data", "u.id IN (SELECT userid FROM users_info WHERE attr_data IN (@@))", F_TEXT,
	 F_FILTER_ONLY},
	{"attr_type", "u.id IN (SELECT userid FROM users_info WHERE attr_type IN (@@))", F_TEXT,
	 F_FILTER_ONLY},
	/* the authors of a change, of the changes a build builds (its blamelist) */
	{"changeid", "u.id IN (SELECT userid FROM change_users WHERE changeid IN (@@))", F_INT,
	 F_FILTER_ONLY},
	{"buildid",
	 "u.id IN (SELECT cu.userid FROM builds b JOIN buildrequests br ON br.id = "
	 "b.buildrequestid JOIN buildset_changes bc ON bc.buildsetid = br.buildsetid "
	 "JOIN change_users cu ON cu.changeid = bc.changeid WHERE b.id IN (@@))",
	 F_INT, F_FILTER_ONLY},
};

static const struct resource resources[] = {
	[DB_MASTERS] = TABLE("masters m", "m.id", masters_fields),
	[DB_BUILDERS] = TABLE("builders b", "b.id", builders_fields),
	[DB_WORKERS] = TABLE("workers w", "w.id", workers_fields),
	[DB_BUILDSETS] = TABLE("buildsets bs", "bs.id", buildsets_fields),
	[DB_BUILDREQUESTS] = TABLE("buildrequests br", "br.id", buildrequests_fields),
	[DB_BUILDS] = TABLE("builds b", "b.id", builds_fields),
	[DB_STEPS] = TABLE("steps s", "s.id", steps_fields),
	[DB_LOGS] = TABLE("logs l", "l.id", logs_fields),
	[DB_SOURCESTAMPS] = TABLE("sourcestamps ss", "ss.id", sourcestamps_fields),
	[DB_CHANGES] = TABLE("changes c", "c.id", changes_fields),
	[DB_TEST_RESULT_SETS] = TABLE("test_result_sets t", "t.id", test_result_sets_fields),
	[DB_TEST_RESULTS] = TABLE("test_results r", "r.id", test_results_fields),
	[DB_USERS] = TABLE("users u", "u.id", users_fields), /* slice "users" */
};

static const struct resource *sqlite_list_resource_get(enum db_resource res)
{
	if ((size_t)res >= ARRAY_SIZE(resources) || !resources[res].from)
		return NULL;
	return &resources[res];
}

static const struct field *sqlite_list_field_find(const struct resource *rs, const char *name)
{
	for (size_t i = 0; i < rs->nfields; i++)
		if (strcmp(rs->fields[i].name, name) == 0)
			return &rs->fields[i];
	return NULL;
}

bool db_field_known(enum db_resource res, const char *field)
{
	const struct resource *rs = sqlite_list_resource_get(res);
	return rs && field && sqlite_list_field_find(rs, field);
}

/* --- building the query ----------------------------------------------------------- */

struct bindval {
	bool is_text;
	int64_t i;
	const char *s; /* borrowed: lives in the caller's query */
};

struct qbuild {
	struct buf where;
	struct bindval *binds;
	size_t nbinds, cap;
};

static void sqlite_list_qb_bind(struct qbuild *qb, struct bindval v)
{
	ARRAY_GROW(qb->binds, qb->nbinds + 1, qb->cap);
	qb->binds[qb->nbinds++] = v;
}

static int sqlite_list_parse_value(struct db *db, const struct field *f,
				   const struct db_filter *flt, const char *v, struct bindval *ret)
{
	long long n;
	switch (f->type) {
	case F_INT:
	case F_TIME:
		if (str_to_i64(v, &n) < 0)
			return db_failf(db, -EINVAL, "invalid filter value for %s", flt->field);
		*ret = (struct bindval){.i = n};
		return 0;
	case F_BOOL:
		if (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0)
			*ret = (struct bindval){.i = 1};
		else if (strcasecmp(v, "false") == 0 || strcmp(v, "0") == 0)
			*ret = (struct bindval){.i = 0};
		else
			return db_failf(db, -EINVAL, "invalid filter value for %s", flt->field);
		return 0;
	case F_TEXT:
	case F_JSON:
		*ret = (struct bindval){.is_text = true, .s = v};
		return 0;
	}
	return -EINVAL;
}

static int sqlite_list_too_long(struct db *db)
{
	return db_failf(db, -E2BIG, "query too long");
}

static int sqlite_list_add_s(struct db *db, struct buf *w, const char *s)
{
	return buf_adds(w, s) < 0 ? sqlite_list_too_long(db) : 0;
}

/* "?, ?, ?" for n values, binding each. */
static int sqlite_list_add_values(struct db *db, struct qbuild *qb, struct buf *sql,
				  const struct field *f, const struct db_filter *flt)
{
	for (size_t i = 0; i < flt->nvalues; i++) {
		struct bindval v;
		int r = sqlite_list_parse_value(db, f, flt, flt->values[i] ? flt->values[i] : "",
						&v);
		if (r < 0)
			return r;
		sqlite_list_qb_bind(qb, v);
		if (buf_adds(sql, i ? ", ?" : "?") < 0)
			return sqlite_list_too_long(db);
	}
	return 0;
}

/* Error texts read as Buildbot's: "unrecognized query parameter 'x'" for a
 * filter, "no such field 'x'" for an order, "invalid filter value for x". */
static int sqlite_list_add_filter(struct db *db, const struct resource *rs, struct qbuild *qb,
				  const struct db_filter *flt)
{
	const struct field *f = flt->field ? sqlite_list_field_find(rs, flt->field) : NULL;
	if (!f)
		return db_failf(db, KILN_EPARSE, "unrecognized query parameter '%s'",
				flt->field ? flt->field : "(null)");
	if (flt->nvalues == 0 || !flt->values)
		return db_failf(db, -EINVAL, "filter on '%s' has no value", f->name);
	enum db_op op = flt->op;
	bool single = flt->nvalues == 1;
	if (op == DB_OP_EQ && !single)
		op = DB_OP_IN;
	if (op == DB_OP_NE && !single)
		op = DB_OP_NOTIN;
	if ((op == DB_OP_LT || op == DB_OP_LE || op == DB_OP_GT || op == DB_OP_GE) && !single)
		return db_failf(db, -EINVAL, "filter on '%s' takes one value", f->name);

	struct buf *w = &qb->where;
	if (buf_adds(w, w->len ? " AND " : " WHERE ") < 0)
		return sqlite_list_too_long(db);
	int r = 0;

	if (f->flags & F_FILTER_ONLY) {
		if (op != DB_OP_EQ && op != DB_OP_IN)
			return db_failf(db, -EINVAL, "field '%s' only supports equality", f->name);
		const char *at = strstr(f->expr, "@@");
		if (buf_add(w, f->expr, (size_t)(at - f->expr)) < 0)
			return sqlite_list_too_long(db);
		r = sqlite_list_add_values(db, qb, w, f, flt);
		return r < 0 ? r : sqlite_list_add_s(db, w, at + 2);
	}
	if (f->type == F_JSON) {
		if (op != DB_OP_CONTAINS)
			return db_failf(db, -EINVAL, "field '%s' only supports contains", f->name);
		if (buf_addf(w,
			     "EXISTS (SELECT 1 FROM json_each(%s) WHERE CAST(value AS TEXT) IN (",
			     f->expr) < 0)
			return sqlite_list_too_long(db);
		r = sqlite_list_add_values(db, qb, w, f, flt);
		return r < 0 ? r : sqlite_list_add_s(db, w, "))");
	}
	if (op == DB_OP_CONTAINS) {
		if (f->type != F_TEXT)
			return db_failf(db, -EINVAL, "field '%s' does not support contains",
					f->name);
		if (buf_adds(w, "(") < 0)
			return sqlite_list_too_long(db);
		for (size_t i = 0; i < flt->nvalues; i++) {
			if (buf_addf(w, "%sinstr(%s, ?) > 0", i ? " OR " : "", f->expr) < 0)
				return sqlite_list_too_long(db);
			sqlite_list_qb_bind(
				qb, (struct bindval){.is_text = true,
						     .s = flt->values[i] ? flt->values[i] : ""});
		}
		return sqlite_list_add_s(db, w, ")");
	}
	/* Times are compared in whole seconds, as they are rendered. */
	const char *e = f->expr;
	_cleanup_free_ char *secs = f->type == F_TIME ? xasprintf("CAST(%s AS INTEGER)", e) : NULL;
	const char *close = NULL;
	int ar; /* the opening text's append */
	switch (op) {
	case DB_OP_EQ:
		ar = buf_addf(w, "%s = ", secs ? secs : e);
		break;
	case DB_OP_NE:
		ar = buf_addf(w, "%s IS NOT ", secs ? secs : e);
		break;
	case DB_OP_IN:
		ar = buf_addf(w, "%s IN (", secs ? secs : e);
		close = ")";
		break;
	case DB_OP_NOTIN:
		ar = buf_addf(w, "(%s IS NULL OR %s NOT IN (", e, secs ? secs : e);
		close = "))";
		break;
	case DB_OP_LT:
		ar = buf_addf(w, "%s < ", e);
		break;
	case DB_OP_GE:
		ar = buf_addf(w, "%s >= ", e);
		break;
	case DB_OP_LE:
		ar = buf_addf(w, secs ? "%s < 1 + " : "%s <= ", e);
		break;
	case DB_OP_GT:
		ar = buf_addf(w, secs ? "%s >= 1 + " : "%s > ", e);
		break;
	default: /* DB_OP_CONTAINS is handled above */
		return db_failf(db, -EINVAL, "unknown filter operator %d", (int)flt->op);
	}
	if (ar < 0)
		return sqlite_list_too_long(db);
	r = sqlite_list_add_values(db, qb, w, f, flt);
	if (r < 0 || !close)
		return r;
	return sqlite_list_add_s(db, w, close);
}

static int sqlite_list_add_order(struct db *db, const struct resource *rs, const struct db_query *q,
				 struct buf *sql)
{
	bool by_id = false, desc = false;
	for (size_t i = 0; i < q->norder && !by_id; i++) {
		const char *o = q->order[i] ? q->order[i] : "";
		desc = o[0] == '-';
		const struct field *f = sqlite_list_field_find(rs, o + desc);
		if (!f)
			return db_failf(db, KILN_EPARSE, "no such field '%s'", o + desc);
		if (f->type == F_JSON || (f->flags & F_FILTER_ONLY))
			return db_failf(db, -EINVAL, "cannot order by '%s'", f->name);
		if (buf_addf(sql, "%s%s%s", i ? ", " : " ORDER BY ", f->expr, desc ? " DESC" : "") <
		    0)
			return sqlite_list_too_long(db);
		by_id = strcmp(f->expr, rs->id) == 0;
	}
	/* The tiebreaker runs the same way as the last key, so an index on
	 * that key (which ends in the rowid) serves the whole ORDER BY. */
	if (!by_id && buf_addf(sql, "%s%s%s", q->norder ? ", " : " ORDER BY ", rs->id,
			       desc ? " DESC" : "") < 0)
		return sqlite_list_too_long(db);
	return 0;
}

/* Binds the filters' values to parameters first, first + 1, ... */
static int sqlite_list_bind_from(struct db *db, sqlite3_stmt *s, const struct qbuild *qb, int first)
{
	for (size_t i = 0; i < qb->nbinds; i++) {
		int rc = qb->binds[i].is_text
				 ? sqlite3_bind_text(s, (int)i + first, qb->binds[i].s, -1,
						     SQLITE_STATIC)
				 : sqlite3_bind_int64(s, (int)i + first, qb->binds[i].i);
		if (rc != SQLITE_OK)
			return db_fail(db, "bind");
	}
	return 0;
}

static int sqlite_list_bind_all(struct db *db, sqlite3_stmt *s, const struct qbuild *qb)
{
	return sqlite_list_bind_from(db, s, qb, 1);
}

/* --- SQL functions ---------------------------------------------------------------- */

/* kiln_text(x): x (a BLOB, e.g. a try patch as uploaded) as UTF-8 text,
 * each byte that is not part of a valid sequence replaced by U+FFFD, so it
 * can be a JSON string; NULL stays NULL. */
static void sqlite_list_sql_text(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
		sqlite3_result_null(ctx);
		return;
	}
	size_t n = (size_t)sqlite3_value_bytes(argv[0]);
	struct buf out;
	buf_init(&out, xmul(n, 3)); /* any repair fits */
	if (str_utf8_sanitize(&out, sqlite3_value_blob(argv[0]), n) < 0) {
		buf_release(&out);
		sqlite3_result_error_toobig(ctx);
		return;
	}
	size_t len;
	char *text = buf_detach(&out, &len);
	sqlite3_result_text64(ctx, text, len, free, SQLITE_UTF8);
}

int db_list_init_sql(struct db *db)
{
	if (sqlite3_create_function_v2(db->h, "kiln_text", 1,
				       SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL,
				       sqlite_list_sql_text, NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(db, "create function kiln_text");
	return 0;
}

/* --- rendering ------------------------------------------------------------------ */

/* Text columns should be UTF-8 already; anything else is shown with '?' for
 * the bad bytes rather than failing the whole listing. */
static json_t *sqlite_list_text_value(const char *p, size_t n)
{
	json_t *j = json_stringn(p, n);
	if (j)
		return j;
	_cleanup_free_ char *c = xmemdup(p, n);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)c[i] >= 0x80 || c[i] == 0)
			c[i] = '?';
	return json_stringn(c, n);
}

static json_t *sqlite_list_column_value(sqlite3_stmt *s, int col, enum field_type type)
{
	if (sqlite3_column_type(s, col) == SQLITE_NULL)
		return json_null();
	switch (type) {
	case F_INT:
		return json_integer(sqlite3_column_int64(s, col));
	case F_TIME:
		return json_integer((json_int_t)floor(sqlite3_column_double(s, col)));
	case F_BOOL:
		return json_boolean(sqlite3_column_int64(s, col) != 0);
	case F_TEXT:
		return sqlite_list_text_value((const char *)sqlite3_column_text(s, col),
					      (size_t)sqlite3_column_bytes(s, col));
	case F_JSON: {
		const char *p = (const char *)sqlite3_column_text(s, col);
		json_t *j =
			json_loadb(p, (size_t)sqlite3_column_bytes(s, col), JSON_DECODE_ANY, NULL);
		return j ? j : json_null();
	}
	}
	return json_null();
}

/* --- db_list ---------------------------------------------------------------------- */

#define DB_MAX_LIST_SQL (64u << 10)

/* Bit i set: field i of rs is rendered as null without being selected. */
static uint64_t sqlite_list_skip_mask(const struct resource *rs, const char *const *skip)
{
	uint64_t m = 0;
	for (size_t k = 0; skip && skip[k]; k++)
		for (size_t i = 0; i < rs->nfields && i < 64; i++)
			if (!(rs->fields[i].flags & F_FILTER_ONLY) &&
			    !strcmp(rs->fields[i].name, skip[k]))
				m |= UINT64_C(1) << i;
	return m;
}

/* The SELECT list: every rendered field of rs not in skipped, or only the id. */
static int sqlite_list_add_columns(struct db *db, const struct resource *rs, uint64_t skipped,
				   bool ids_only, struct buf *sql)
{
	if (ids_only)
		return buf_addf(sql, "SELECT %s", rs->id) < 0 ? sqlite_list_too_long(db) : 0;
	if (buf_adds(sql, "SELECT ") < 0)
		return sqlite_list_too_long(db);
	bool first = true;
	for (size_t i = 0; i < rs->nfields; i++) {
		if ((rs->fields[i].flags & F_FILTER_ONLY) || (i < 64 && (skipped >> i & 1)))
			continue;
		if (buf_addf(sql, "%s%s", first ? "" : ", ", rs->fields[i].expr) < 0)
			return sqlite_list_too_long(db);
		first = false;
	}
	if (first && buf_adds(sql, "NULL") < 0) /* every rendered field skipped */
		return sqlite_list_too_long(db);
	return 0;
}

/* One row of s as a JSON object: the tables list fields in name order, so
 * its keys are inserted sorted and the API can dump them in insertion order. */
static json_t *sqlite_list_render_row(sqlite3_stmt *s, const struct resource *rs, uint64_t skipped)
{
	json_t *o = json_object();
	int col = 0;
	for (size_t i = 0; i < rs->nfields; i++) {
		const struct field *f = &rs->fields[i];
		if (f->flags & F_FILTER_ONLY)
			continue;
		json_t *v = i < 64 && (skipped >> i & 1)
				    ? json_null()
				    : sqlite_list_column_value(s, col++, f->type);
		json_object_set_new_nocheck(o, f->name, v);
	}
	return o;
}

/* Steps s to its end, each row rendered into *ret_items (a new array);
 * what names the query in an error. */
static int sqlite_list_collect(struct db *db, sqlite3_stmt *s, const struct resource *rs,
			       uint64_t skipped, const char *what, json_t **ret_items)
{
	json_t *items = json_array();
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		json_array_append_new(items, sqlite_list_render_row(s, rs, skipped));
	if (rc != SQLITE_DONE) {
		json_decref(items);
		return db_fail(db, what);
	}
	*ret_items = items;
	return 0;
}

static int sqlite_list_build(struct db *db, enum db_resource res, const struct db_query *q,
			     const char *const *skip, bool ids_only, const struct resource **ret_rs,
			     uint64_t *ret_skip, struct qbuild *qb, struct buf *sql)
{
	const struct resource *rs = sqlite_list_resource_get(res);
	if (!rs)
		return db_failf(db, -EINVAL, "unknown resource %d", (int)res);
	uint64_t skipped = sqlite_list_skip_mask(rs, skip);
	if (q && q->offset < 0)
		return db_failf(db, -EINVAL, "invalid offset");
	for (size_t i = 0; q && i < q->nfilters; i++) {
		int r = sqlite_list_add_filter(db, rs, qb, &q->filters[i]);
		if (r < 0)
			return r;
	}
	int r = sqlite_list_add_columns(db, rs, skipped, ids_only, sql);
	if (r < 0)
		return r;
	if (buf_addf(sql, " FROM %s%s", rs->from, qb->where.ptr) < 0)
		return sqlite_list_too_long(db);
	static const struct db_query none = {.limit = -1};
	r = sqlite_list_add_order(db, rs, q ? q : &none, sql);
	if (r < 0)
		return r;
	if (buf_adds(sql, " LIMIT ? OFFSET ?") < 0 || buf_error(&qb->where) < 0)
		return sqlite_list_too_long(db);
	*ret_rs = rs;
	*ret_skip = skipped;
	return 0;
}

static void sqlite_list_qb_release(struct qbuild *qb)
{
	buf_release(&qb->where);
	free(qb->binds);
}

static int sqlite_list_count(struct db *db, const struct resource *rs, const struct qbuild *qb,
			     int64_t *ret_total)
{
	_cleanup_free_ char *sql = xasprintf("SELECT COUNT(*) FROM %s%s", rs->from, qb->where.ptr);
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt_dynamic(db, sql);
	if (!s)
		return KILN_EDB;
	int r = sqlite_list_bind_all(db, s, qb);
	if (r < 0)
		return r;
	if (sqlite3_step(s) != SQLITE_ROW)
		return db_fail(db, "count");
	*ret_total = sqlite3_column_int64(s, 0);
	return 0;
}

int db_list(struct db *db, enum db_resource res, const struct db_query *q, json_t **ret_items,
	    int64_t *ret_total)
{
	return db_list_skip(db, res, q, NULL, ret_items, ret_total);
}

int db_list_skip(struct db *db, enum db_resource res, const struct db_query *q,
		 const char *const *skip, json_t **ret_items, int64_t *ret_total)
{
	struct qbuild qb = {0};
	struct buf sql;
	buf_init(&qb.where, DB_MAX_LIST_SQL);
	buf_init(&sql, 2 * DB_MAX_LIST_SQL);
	const struct resource *rs = NULL;
	uint64_t skipped = 0;
	json_t *items = NULL;
	int r = sqlite_list_build(db, res, q, skip, false, &rs, &skipped, &qb, &sql);
	if (r < 0)
		goto out;
	/* Log counters of open logs live in memory until the batch commits. */
	if (res == DB_LOGS && db->in_txn && (r = db_log_sync_all(db)) < 0)
		goto out;

	sqlite3_stmt *s = db_stmt_dynamic(db, sql.ptr);
	if (!s) {
		r = KILN_EDB;
		goto out;
	}
	if ((r = sqlite_list_bind_all(db, s, &qb)) < 0)
		goto reset;
	sqlite3_bind_int64(s, (int)qb.nbinds + 1, q && q->limit >= 0 ? q->limit : -1);
	sqlite3_bind_int64(s, (int)qb.nbinds + 2, q ? q->offset : 0);
	if ((r = sqlite_list_collect(db, s, rs, skipped, "list", &items)) < 0)
		goto reset;
	/* Done with s before the count: preparing the count may evict a
	 * cached statement. */
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (ret_total && (r = sqlite_list_count(db, rs, &qb, ret_total)) < 0)
		goto out;
	*ret_items = items;
	items = NULL;
	r = 0;
	goto out;
reset:
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
out:
	json_decref(items);
	sqlite_list_qb_release(&qb);
	buf_release(&sql);
	return r;
}

/* --- streamed listing: the ids first, then the rows a few at a time ------------ */

int db_list_ids(struct db *db, enum db_resource res, const struct db_query *q, int64_t **ret_ids,
		size_t *ret_n)
{
	struct qbuild qb = {0};
	struct buf sql;
	buf_init(&qb.where, DB_MAX_LIST_SQL);
	buf_init(&sql, 2 * DB_MAX_LIST_SQL);
	const struct resource *rs = NULL;
	uint64_t skipped = 0;
	int64_t *ids = NULL;
	size_t n = 0, alloc = 0;
	sqlite3_stmt *s = NULL;
	int r = -EINVAL;
	if (!q || q->limit < 0) {
		r = db_failf(db, -EINVAL, "listing ids needs a limit");
		goto out;
	}
	r = sqlite_list_build(db, res, q, NULL, true, &rs, &skipped, &qb, &sql);
	if (r < 0)
		goto out;
	s = db_stmt_dynamic(db, sql.ptr);
	if (!s) {
		r = KILN_EDB;
		goto out;
	}
	if ((r = sqlite_list_bind_all(db, s, &qb)) < 0)
		goto out;
	sqlite3_bind_int64(s, (int)qb.nbinds + 1, q->limit);
	sqlite3_bind_int64(s, (int)qb.nbinds + 2, q->offset);
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		ARRAY_GROW(ids, n + 1, alloc);
		ids[n++] = sqlite3_column_int64(s, 0);
	}
	if (rc != SQLITE_DONE) {
		r = db_fail(db, "list ids");
		goto out;
	}
	*ret_ids = TAKE_PTR(ids);
	*ret_n = n;
	r = 0;
out:
	db_stmt_resetp(&s);
	free(ids);
	sqlite_list_qb_release(&qb);
	buf_release(&sql);
	return r;
}

/* --- every builder's last build in one statement (the API's lastbuilds) --------- */

int db_list_last_builds(struct db *db, const struct db_query *q, const char *const *skip,
			json_t **ret_items)
{
	const struct resource *rs = sqlite_list_resource_get(DB_BUILDS);
	struct qbuild qb = {0};
	struct buf sql;
	buf_init(&qb.where, DB_MAX_LIST_SQL);
	buf_init(&sql, 2 * DB_MAX_LIST_SQL);
	uint64_t skipped = sqlite_list_skip_mask(rs, skip);
	int r = 0;
	if (q->offset < 0 || q->limit < 0) {
		r = db_failf(db, -EINVAL, "invalid limit or offset");
		goto out;
	}
	for (size_t i = 0; i < q->nfilters && r >= 0; i++)
		r = sqlite_list_add_filter(db, rs, &qb, &q->filters[i]);
	if (r < 0 || (r = sqlite_list_add_columns(db, rs, skipped, false, &sql)) < 0)
		goto out;
	/* The page of builders (?1, ?2) first, then for each the id of its
	 * highest-numbered build matching the filters (their binds are ?3..):
	 * one seek into builds' (builderid, number) index per builder. */
	if (buf_addf(&sql,
		     " FROM (SELECT id FROM builders ORDER BY id LIMIT ?1 OFFSET ?2) x "
		     "JOIN builds b ON b.id = (SELECT b.id FROM builds b%s%s b.builderid = x.id "
		     "ORDER BY b.number DESC, b.id DESC LIMIT 1) ORDER BY x.id",
		     qb.where.ptr ? qb.where.ptr : "", qb.where.len ? " AND" : " WHERE") < 0 ||
	    buf_error(&qb.where) < 0) {
		r = sqlite_list_too_long(db);
		goto out;
	}
	sqlite3_stmt *s = db_stmt_dynamic(db, sql.ptr);
	if (!s) {
		r = KILN_EDB;
		goto out;
	}
	sqlite3_bind_int64(s, 1, q->limit);
	sqlite3_bind_int64(s, 2, q->offset);
	/* the filters' binds follow the page's ?1 and ?2 */
	r = sqlite_list_bind_from(db, s, &qb, 3);
	if (r >= 0)
		r = sqlite_list_collect(db, s, rs, skipped, "last builds", ret_items);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
out:
	sqlite_list_qb_release(&qb);
	buf_release(&sql);
	return r;
}

int db_list_rows(struct db *db, enum db_resource res, const int64_t *ids, size_t n,
		 const char *const *skip, json_t **ret_items)
{
	const struct resource *rs = sqlite_list_resource_get(res);
	if (!rs)
		return db_failf(db, -EINVAL, "unknown resource %d", (int)res);
	if (n == 0) {
		*ret_items = json_array();
		return 0;
	}
	if (n > DB_LIST_ROWS_MAX)
		return db_failf(db, -EINVAL, "%zu rows asked at once (at most %d)", n,
				DB_LIST_ROWS_MAX);
	uint64_t skipped = sqlite_list_skip_mask(rs, skip);
	struct buf sql;
	buf_init(&sql, 2 * DB_MAX_LIST_SQL);
	sqlite3_stmt *s = NULL;
	/* Each id paired with its position: rowid lookups, rows in the ids' order. */
	int r = sqlite_list_add_columns(db, rs, skipped, false, &sql);
	if (r >= 0 && buf_addf(&sql, " FROM %s JOIN (VALUES ", rs->from) < 0)
		r = sqlite_list_too_long(db);
	for (size_t i = 0; r >= 0 && i < n; i++)
		if (buf_addf(&sql, "%s(%zu, ?)", i ? ", " : "", i) < 0)
			r = sqlite_list_too_long(db);
	if (r >= 0 && buf_addf(&sql,
			       ") AS kiln_page ON %s = kiln_page.column2 "
			       "ORDER BY kiln_page.column1",
			       rs->id) < 0)
		r = sqlite_list_too_long(db);
	if (r < 0)
		goto out;
	/* Log counters of open logs live in memory until the batch commits. */
	if (res == DB_LOGS && db->in_txn && (r = db_log_sync_all(db)) < 0)
		goto out;
	s = db_stmt_dynamic(db, sql.ptr);
	if (!s) {
		r = KILN_EDB;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (sqlite3_bind_int64(s, (int)i + 1, ids[i]) != SQLITE_OK) {
			r = db_fail(db, "bind");
			goto out;
		}
	r = sqlite_list_collect(db, s, rs, skipped, "list rows", ret_items);
out:
	db_stmt_resetp(&s);
	buf_release(&sql);
	return r;
}

/* EXPLAIN QUERY PLAN of sql, one detail line per step (tests check index use). */
int db_sql_explain(struct db *db, const char *sql, char **ret_plan)
{
	char *eqp = xasprintf("EXPLAIN QUERY PLAN %s", sql);
	sqlite3_stmt *s;
	int rc = sqlite3_prepare_v2(db->h, eqp, -1, &s, NULL);
	free(eqp);
	if (rc != SQLITE_OK)
		return db_fail(db, "explain");
	struct buf plan;
	buf_init(&plan, 1u << 20);
	int r = 0;
	while (r >= 0 && sqlite3_step(s) == SQLITE_ROW)
		r = buf_addf(&plan, "%s\n", (const char *)sqlite3_column_text(s, 3));
	sqlite3_finalize(s);
	if (r < 0) {
		buf_release(&plan);
		return db_failf(db, r, "query plan too long");
	}
	*ret_plan = buf_detach(&plan, NULL);
	return 0;
}

int db_list_explain(struct db *db, enum db_resource res, const struct db_query *q, char **ret_plan)
{
	struct qbuild qb = {0};
	struct buf sql;
	buf_init(&qb.where, DB_MAX_LIST_SQL);
	buf_init(&sql, 2 * DB_MAX_LIST_SQL);
	const struct resource *rs = NULL;
	uint64_t skipped;
	int r = sqlite_list_build(db, res, q, NULL, false, &rs, &skipped, &qb, &sql);
	if (r >= 0)
		r = db_sql_explain(db, sql.ptr, ret_plan);
	sqlite_list_qb_release(&qb);
	buf_release(&sql);
	return r;
}
