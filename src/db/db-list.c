/*
 * The REST collections' queries in either dialect (db-list.h).
 */
#include "db/db-list.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
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
#define LIST_SS_PATCH_PG                                                                           \
	"(SELECT json_build_object('author', p.patch_author, 'body', kiln_text(p.body), "          \
	"'comment', p.patch_comment, 'level', p.patchlevel, 'patchid', p.id, 'subdir', p.subdir) " \
	"FROM patches p WHERE p.id = ss.patchid)"
/* A sourcestamp as Buildbot renders it, in PostgreSQL (ss = sourcestamps). */
#define LIST_SS_OBJECT_PG                                                                          \
	"json_build_object('branch', ss.branch, 'codebase', ss.codebase, 'created_at', "           \
	"TRUNC(ss.created_at)::bigint, 'patch', " LIST_SS_PATCH_PG ", 'project', ss.project, "     \
	"'repository', ss.repository, 'revision', ss.revision, 'ssid', ss.id)"

#define TABLE(from, id, f)                                                                         \
	{                                                                                          \
		from, id, f, ARRAY_SIZE(f)                                                         \
	}

/* the tables name a field's PostgreSQL expression only where it differs */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

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
	 F_JSON, 0,
	 "(SELECT COALESCE(json_agg(masterid ORDER BY masterid), '[]')::text FROM builder_masters "
	 "WHERE builderid = b.id)"},
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
	 F_JSON, 0,
	 "(SELECT COALESCE(json_agg(json_build_object('builderid', builderid, 'masterid', "
	 "masterid) ORDER BY builderid, masterid), '[]')::text FROM configured_workers WHERE "
	 "workerid = w.id)"},
	{"connected_to",
	 "CASE WHEN w.masterid IS NULL THEN '[]' "
	 "ELSE json_array(json_object('masterid', w.masterid)) END",
	 F_JSON, 0,
	 "CASE WHEN w.masterid IS NULL THEN '[]' "
	 "ELSE json_build_array(json_build_object('masterid', w.masterid))::text END"},
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
	 F_JSON, 0,
	 "(SELECT COALESCE(json_agg(" LIST_SS_OBJECT_PG " ORDER BY ss.id), '[]')::text "
	 "FROM buildset_sourcestamps x JOIN sourcestamps ss ON ss.id = x.sourcestampid "
	 "WHERE x.buildsetid = bs.id)"},
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
	{"branch", "ss.branch", F_TEXT, 0},
	{"codebase", "ss.codebase", F_TEXT, 0},
	{"created_at", "ss.created_at", F_TIME, 0},
	{"patch", LIST_SS_PATCH, F_JSON, 0, LIST_SS_PATCH_PG "::text"},
	{"project", "ss.project", F_TEXT, 0},
	{"repository", "ss.repository", F_TEXT, 0},
	{"revision", "ss.revision", F_TEXT, 0},
	{"ssid", "ss.id", F_INT, 0},
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
	 F_JSON, 0,
	 "CASE WHEN c.parent_changeid IS NULL THEN '[]' "
	 "ELSE json_build_array(c.parent_changeid)::text END"},
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
	 F_JSON, 0,
	 "(SELECT " LIST_SS_OBJECT_PG "::text FROM sourcestamps ss WHERE ss.id = c.sourcestampid)"},
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
	 F_JSON, 0,
	 "(SELECT COALESCE(json_agg(json_build_object('attr_type', attr_type, 'attr_data', "
	 "attr_data) ORDER BY attr_type, attr_data), '[]')::text FROM users_info WHERE "
	 "userid = u.id)"},
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

#pragma GCC diagnostic pop

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

const struct resource *list_resource_get(enum db_resource res)
{
	if ((size_t)res >= ARRAY_SIZE(resources) || !resources[res].from)
		return NULL;
	return &resources[res];
}

static const struct field *list_field_find(const struct resource *rs, const char *name)
{
	for (size_t i = 0; i < rs->nfields; i++)
		if (strcmp(rs->fields[i].name, name) == 0)
			return &rs->fields[i];
	return NULL;
}

bool db_field_known(enum db_resource res, const char *field)
{
	const struct resource *rs = list_resource_get(res);
	return rs && field && list_field_find(rs, field);
}

/* --- building the query ----------------------------------------------------------- */

/* SQLite's json_each in PostgreSQL: an object's values, an array's
 * elements, or a scalar itself, as the text SQLite's CAST(value AS TEXT)
 * gives: true and false as 1 and 0, a string's characters, null as NULL,
 * numbers and nested values as their JSON text. */
#define LIST_JSON_EACH_PG                                                                          \
	"EXISTS (SELECT 1 FROM (SELECT (%s)::json AS j) kiln_j, LATERAL ("                         \
	"SELECT value FROM json_each(CASE WHEN json_typeof(kiln_j.j) = 'object' "                  \
	"THEN kiln_j.j END) UNION ALL SELECT value FROM json_array_elements("                      \
	"CASE WHEN json_typeof(kiln_j.j) = 'array' THEN kiln_j.j END) kiln_a(value) "              \
	"UNION ALL SELECT kiln_j.j WHERE json_typeof(kiln_j.j) NOT IN "                            \
	"('object', 'array')) kiln_e WHERE (CASE json_typeof(kiln_e.value) "                       \
	"WHEN 'boolean' THEN CASE WHEN kiln_e.value::text = 'true' THEN '1' ELSE '0' END "         \
	"WHEN 'string' THEN kiln_e.value #>> '{}' WHEN 'null' THEN NULL "                          \
	"ELSE kiln_e.value::text END) IN ("

void list_qb_init(struct qbuild *qb, bool pg, unsigned base)
{
	*qb = (struct qbuild){.pg = pg, .base = base};
	buf_init(&qb->where, DB_MAX_LIST_SQL);
}

void list_qb_release(struct qbuild *qb)
{
	buf_release(&qb->where);
	free(qb->binds);
	qb->binds = NULL;
	qb->nbinds = qb->cap = 0;
}

const char *list_expr(const struct qbuild *qb, const struct field *f)
{
	return qb->pg && f->pg ? f->pg : f->expr;
}

__attribute__((format(printf, 3, 4))) static int list_fail(struct qbuild *qb, int r,
							   const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(qb->errmsg, sizeof(qb->errmsg), fmt, ap);
	va_end(ap);
	qb->err = r;
	return r;
}

static int list_too_long(struct qbuild *qb)
{
	return list_fail(qb, -E2BIG, "query too long");
}

static int list_add_s(struct qbuild *qb, struct buf *w, const char *s)
{
	return buf_adds(w, s) < 0 ? list_too_long(qb) : 0;
}

/* Binds v and appends its placeholder: "?" for SQLite, "$N" for PostgreSQL. */
static int list_bind(struct qbuild *qb, struct buf *w, struct bindval v, const char *sep)
{
	ARRAY_GROW(qb->binds, qb->nbinds + 1, qb->cap);
	qb->binds[qb->nbinds++] = v;
	int r = qb->pg ? buf_addf(w, "%s$%zu", sep, qb->base + qb->nbinds)
		       : buf_addf(w, "%s?", sep);
	return r < 0 ? list_too_long(qb) : 0;
}

static int list_parse_value(struct qbuild *qb, const struct field *f, const struct db_filter *flt,
			    const char *v, struct bindval *ret)
{
	long long n;
	switch (f->type) {
	case F_INT:
	case F_TIME:
		if (str_to_i64(v, &n) < 0)
			return list_fail(qb, -EINVAL, "invalid filter value for %s", flt->field);
		*ret = (struct bindval){.i = n};
		return 0;
	case F_BOOL:
		if (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0)
			*ret = (struct bindval){.i = 1};
		else if (strcasecmp(v, "false") == 0 || strcmp(v, "0") == 0)
			*ret = (struct bindval){.i = 0};
		else
			return list_fail(qb, -EINVAL, "invalid filter value for %s", flt->field);
		return 0;
	case F_TEXT:
	case F_JSON:
		*ret = (struct bindval){.is_text = true, .s = v};
		return 0;
	}
	return -EINVAL;
}

/* "?, ?, ?" for n values, binding each. */
static int list_add_values(struct qbuild *qb, struct buf *sql, const struct field *f,
			   const struct db_filter *flt)
{
	for (size_t i = 0; i < flt->nvalues; i++) {
		struct bindval v;
		int r = list_parse_value(qb, f, flt, flt->values[i] ? flt->values[i] : "", &v);
		if (r < 0 || (r = list_bind(qb, sql, v, i ? ", " : "")) < 0)
			return r;
	}
	return 0;
}

/* A boolean expression compared with 0 or 1: PostgreSQL's IS NOT NULL is a
 * boolean, not an integer. */
static const char *list_cmp_expr(const struct qbuild *qb, const struct field *f, char **tmp)
{
	const char *e = list_expr(qb, f);
	if (f->type == F_TIME)
		return *tmp = xasprintf(qb->pg ? "TRUNC(%s)::bigint" : "CAST(%s AS INTEGER)", e);
	if (f->type == F_BOOL && qb->pg)
		return *tmp = xasprintf("(%s)::int", e);
	if (f->type == F_TEXT && qb->pg) /* bytes, as SQLite compares */
		return *tmp = xasprintf("(%s) COLLATE \"C\"", e);
	return e;
}

/* Error texts read as Buildbot's: "unrecognized query parameter 'x'" for a
 * filter, "no such field 'x'" for an order, "invalid filter value for x". */
int list_add_filter(struct qbuild *qb, const struct resource *rs, const struct db_filter *flt)
{
	const struct field *f = flt->field ? list_field_find(rs, flt->field) : NULL;
	if (!f)
		return list_fail(qb, KILN_EPARSE, "unrecognized query parameter '%s'",
				 flt->field ? flt->field : "(null)");
	if (flt->nvalues == 0 || !flt->values)
		return list_fail(qb, -EINVAL, "filter on '%s' has no value", f->name);
	enum db_op op = flt->op;
	bool single = flt->nvalues == 1;
	if (op == DB_OP_EQ && !single)
		op = DB_OP_IN;
	if (op == DB_OP_NE && !single)
		op = DB_OP_NOTIN;
	if ((op == DB_OP_LT || op == DB_OP_LE || op == DB_OP_GT || op == DB_OP_GE) && !single)
		return list_fail(qb, -EINVAL, "filter on '%s' takes one value", f->name);

	struct buf *w = &qb->where;
	if (buf_adds(w, w->len ? " AND " : " WHERE ") < 0)
		return list_too_long(qb);
	int r = 0;
	const char *e = list_expr(qb, f);

	if (f->flags & F_FILTER_ONLY) {
		if (op != DB_OP_EQ && op != DB_OP_IN)
			return list_fail(qb, -EINVAL, "field '%s' only supports equality", f->name);
		const char *at = strstr(e, "@@");
		if (buf_add(w, e, (size_t)(at - e)) < 0)
			return list_too_long(qb);
		r = list_add_values(qb, w, f, flt);
		return r < 0 ? r : list_add_s(qb, w, at + 2);
	}
	if (f->type == F_JSON) {
		if (op != DB_OP_CONTAINS)
			return list_fail(qb, -EINVAL, "field '%s' only supports contains", f->name);
		if (buf_addf(w,
			     qb->pg ? LIST_JSON_EACH_PG
				    : "EXISTS (SELECT 1 FROM json_each(%s) "
				      "WHERE CAST(value AS TEXT) IN (",
			     e) < 0)
			return list_too_long(qb);
		r = list_add_values(qb, w, f, flt);
		return r < 0 ? r : list_add_s(qb, w, "))");
	}
	if (op == DB_OP_CONTAINS) {
		if (f->type != F_TEXT)
			return list_fail(qb, -EINVAL, "field '%s' does not support contains",
					 f->name);
		if (buf_adds(w, "(") < 0)
			return list_too_long(qb);
		for (size_t i = 0; i < flt->nvalues; i++) {
			if (buf_addf(w, qb->pg ? "%sstrpos(%s, " : "%sinstr(%s, ", i ? " OR " : "",
				     e) < 0)
				return list_too_long(qb);
			r = list_bind(qb, w,
				      (struct bindval){.is_text = true,
						       .s = flt->values[i] ? flt->values[i] : ""},
				      "");
			if (r < 0 || (r = list_add_s(qb, w, ") > 0")) < 0)
				return r;
		}
		return list_add_s(qb, w, ")");
	}
	/* Times are compared in whole seconds, as they are rendered. */
	_cleanup_free_ char *tmp = NULL;
	const char *c = list_cmp_expr(qb, f, &tmp);
	bool secs = f->type == F_TIME;
	const char *close = NULL;
	int ar; /* the opening text's append */
	switch (op) {
	case DB_OP_EQ:
		ar = buf_addf(w, "%s = ", c);
		break;
	case DB_OP_NE:
		ar = buf_addf(w, qb->pg ? "%s IS DISTINCT FROM " : "%s IS NOT ", c);
		break;
	case DB_OP_IN:
		ar = buf_addf(w, "%s IN (", c);
		close = ")";
		break;
	case DB_OP_NOTIN:
		ar = buf_addf(w, "(%s IS NULL OR %s NOT IN (", e, c);
		close = "))";
		break;
	case DB_OP_LT:
		ar = buf_addf(w, "%s < ", secs ? e : c);
		break;
	case DB_OP_GE:
		ar = buf_addf(w, "%s >= ", secs ? e : c);
		break;
	case DB_OP_LE:
		ar = buf_addf(w, secs ? "%s < 1 + " : "%s <= ", secs ? e : c);
		break;
	case DB_OP_GT:
		ar = buf_addf(w, secs ? "%s >= 1 + " : "%s > ", secs ? e : c);
		break;
	default: /* DB_OP_CONTAINS is handled above */
		return list_fail(qb, -EINVAL, "unknown filter operator %d", (int)flt->op);
	}
	if (ar < 0)
		return list_too_long(qb);
	r = list_add_values(qb, w, f, flt);
	if (r < 0 || !close)
		return r;
	return list_add_s(qb, w, close);
}

int list_add_order(struct qbuild *qb, const struct resource *rs, const struct db_query *q,
		   struct buf *sql)
{
	bool by_id = false, desc = false;
	for (size_t i = 0; i < q->norder && !by_id; i++) {
		const char *o = q->order[i] ? q->order[i] : "";
		desc = o[0] == '-';
		const struct field *f = list_field_find(rs, o + desc);
		if (!f)
			return list_fail(qb, KILN_EPARSE, "no such field '%s'", o + desc);
		if (f->type == F_JSON || (f->flags & F_FILTER_ONLY))
			return list_fail(qb, -EINVAL, "cannot order by '%s'", f->name);
		/* SQLite puts NULL first going up, last going down; so must PostgreSQL */
		if (buf_addf(sql, "%s%s%s%s", i ? ", " : " ORDER BY ", list_expr(qb, f),
			     qb->pg && f->type == F_TEXT ? " COLLATE \"C\"" : "",
			     desc ? (qb->pg ? " DESC NULLS LAST" : " DESC")
				  : (qb->pg ? " NULLS FIRST" : "")) < 0)
			return list_too_long(qb);
		by_id = strcmp(f->expr, rs->id) == 0;
	}
	/* The tiebreaker runs the same way as the last key, so an index on
	 * that key (which ends in the rowid) serves the whole ORDER BY. */
	if (!by_id && buf_addf(sql, "%s%s%s", q->norder ? ", " : " ORDER BY ", rs->id,
			       desc ? " DESC" : "") < 0)
		return list_too_long(qb);
	return 0;
}

uint64_t list_skip_mask(const struct resource *rs, const char *const *skip)
{
	uint64_t m = 0;
	for (size_t k = 0; skip && skip[k]; k++)
		for (size_t i = 0; i < rs->nfields && i < 64; i++)
			if (!(rs->fields[i].flags & F_FILTER_ONLY) &&
			    !strcmp(rs->fields[i].name, skip[k]))
				m |= UINT64_C(1) << i;
	return m;
}

int list_add_columns(struct qbuild *qb, const struct resource *rs, uint64_t skipped, bool ids_only,
		     struct buf *sql)
{
	if (ids_only)
		return buf_addf(sql, "SELECT %s", rs->id) < 0 ? list_too_long(qb) : 0;
	if (buf_adds(sql, "SELECT ") < 0)
		return list_too_long(qb);
	bool first = true;
	for (size_t i = 0; i < rs->nfields; i++) {
		if ((rs->fields[i].flags & F_FILTER_ONLY) || (i < 64 && (skipped >> i & 1)))
			continue;
		if (buf_addf(sql, "%s%s", first ? "" : ", ", list_expr(qb, &rs->fields[i])) < 0)
			return list_too_long(qb);
		first = false;
	}
	if (first && buf_adds(sql, "NULL") < 0) /* every rendered field skipped */
		return list_too_long(qb);
	return 0;
}

int list_build(struct qbuild *qb, enum db_resource res, const struct db_query *q,
	       const char *const *skip, bool ids_only, const struct resource **ret_rs,
	       uint64_t *ret_skip, struct buf *sql)
{
	const struct resource *rs = list_resource_get(res);
	if (!rs)
		return list_fail(qb, -EINVAL, "unknown resource %d", (int)res);
	uint64_t skipped = list_skip_mask(rs, skip);
	if (q && q->offset < 0)
		return list_fail(qb, -EINVAL, "invalid offset");
	for (size_t i = 0; q && i < q->nfilters; i++) {
		int r = list_add_filter(qb, rs, &q->filters[i]);
		if (r < 0)
			return r;
	}
	int r = list_add_columns(qb, rs, skipped, ids_only, sql);
	if (r < 0)
		return r;
	if (buf_addf(sql, " FROM %s%s", rs->from, qb->where.ptr ? qb->where.ptr : "") < 0)
		return list_too_long(qb);
	static const struct db_query none = {.limit = -1};
	r = list_add_order(qb, rs, q ? q : &none, sql);
	if (r < 0)
		return r;
	size_t p = qb->base + qb->nbinds + 1;
	if ((qb->pg ? buf_addf(sql, " LIMIT $%zu OFFSET $%zu", p, p + 1)
		    : buf_adds(sql, " LIMIT ? OFFSET ?")) < 0 ||
	    buf_error(&qb->where) < 0)
		return list_too_long(qb);
	*ret_rs = rs;
	*ret_skip = skipped;
	return 0;
}

int db_filter_check(enum db_resource res, const struct db_filter *flt)
{
	const struct resource *rs = list_resource_get(res);
	if (!rs)
		return -EINVAL;
	struct qbuild qb;
	list_qb_init(&qb, false, 0);
	int r = list_add_filter(&qb, rs, flt);
	list_qb_release(&qb);
	return r < 0 ? r : 0;
}
