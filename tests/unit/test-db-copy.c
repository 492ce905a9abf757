/*
 * kiln copy-db's engine (src/db/db-copy.c): a master's database with real
 * rows (made through db.h, then values no escaping may spoil: tabs,
 * newlines, backslashes, quotes, UTF-8, every byte value in a blob, NULLs,
 * fractions and huge doubles, a reference cycle) copied SQLite -> SQLite
 * and SQLite -> PostgreSQL -> SQLite, each result compared with the source
 * independently of db-copy's own check (SQLite's EXCEPT over ATTACHed
 * files); refusals: a target holding rows, another schema version, a URL
 * of another kind.  PostgreSQL is a real server (pg-test.h).
 */
#include "tap.h"
#include "pg-test.h"

#include <errno.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "db/db-copy.h"
#include "db/db.h"

static char dir[] = "/tmp/kiln-test-copy.XXXXXX";

#define diag(...) (printf("# "), printf(__VA_ARGS__), printf("\n"))

static char *path_of(const char *name)
{
	char *p = NULL;
	if (asprintf(&p, "%s/%s", dir, name) < 0)
		abort();
	return p;
}

static char *url_of(const char *name)
{
	char *p = NULL;
	if (asprintf(&p, "sqlite:%s/%s", dir, name) < 0)
		abort();
	return p;
}

static void exec_on(const char *file, const char *sql)
{
	char *p = path_of(file);
	sqlite3 *h = NULL;
	char *err = NULL;
	if (sqlite3_open(p, &h) != SQLITE_OK || sqlite3_exec(h, sql, NULL, NULL, &err) != SQLITE_OK)
		TAP_FAIL("%s: %s", sql, err ? err : sqlite3_errmsg(h));
	sqlite3_free(err);
	sqlite3_close(h);
	free(p);
}

/* A source database: two builds with their rows, then the hard values. */
static void make_source(const char *file)
{
	char *url = url_of(file);
	struct db *db = NULL;
	if (db_open(NULL, url, NULL, &db) < 0)
		TAP_FAIL("db_open: %s", db_open_errmsg());
	int64_t masterid, builderid, workerid;
	CHECK_INT(db_master_register(db, "host:/b", &masterid), 0);
	CHECK_INT(db_builder_ensure(db, "b", NULL, NULL, &builderid), 0);
	CHECK_INT(db_worker_ensure(db, "w", &workerid), 0);
	for (int i = 0; i < 2; i++) {
		int64_t bsid, brid, buildid, number, stepid, sn, logid;
		struct db_sourcestamp ss = {.branch = "main", .codebase = ""};
		struct db_buildset_new bs = {.reason = "t",
					     .sourcestamps = &ss,
					     .nsourcestamps = 1,
					     .submitted_at = 1e9};
		CHECK_INT(db_buildset_add(db, &bs, &builderid, 1, &bsid, &brid), 0);
		CHECK_INT(db_request_claim(db, brid, masterid, 1e9 + 0.25), 0);
		CHECK_INT(db_build_add(db, builderid, brid, workerid, masterid, 1e9 + 0.5, &buildid,
				       &number),
			  0);
		CHECK_INT(db_step_add(db, buildid, "shell", &stepid, &sn), 0);
		CHECK_INT(db_log_add(db, stepid, "stdio", 's', &logid), 0);
		CHECK_INT(db_log_append(db, logid, "a\tb\\c\n\"q\" \xc3\xbc\n", 14), 0);
		CHECK_INT(db_log_finish(db, logid), 0);
		CHECK_INT(db_number_record(db, builderid, buildid, 0, "size", 0.1 + i, 1e9), 0);
	}
	db_close(db);
	free(url);
	/* values escaping could spoil, a blob of every byte, a reference cycle */
	exec_on(file, "UPDATE builds SET state_string = 'tab\there' || char(10) || 'nl \\ bs "
		      "''sq'' \"dq\" \xe2\x82\xac' WHERE id = 1;"
		      "UPDATE buildsets SET parent_buildid = 2 WHERE id = 1;"
		      "UPDATE numbers SET value = 1.7976931348623157e308 WHERE id = 2;");
	char sql[700] = "UPDATE logchunks SET content = X'";
	for (int i = 0; i < 256; i++)
		snprintf(sql + strlen(sql), sizeof(sql) - strlen(sql), "%02x", i);
	snprintf(sql + strlen(sql), sizeof(sql) - strlen(sql), "' WHERE rowid = 1");
	exec_on(file, sql);
}

/* Rows in a and not in b or b and not a, over every table: 0 when equal. */
static long differences(const char *a, const char *b)
{
	char *pa = path_of(a), *pb = path_of(b);
	sqlite3 *h = NULL;
	long diff = 0;
	if (sqlite3_open(pa, &h) != SQLITE_OK)
		TAP_FAIL("open %s", pa);
	char *att = sqlite3_mprintf("ATTACH %Q AS o", pb);
	sqlite3_exec(h, att, NULL, NULL, NULL);
	sqlite3_free(att);
	sqlite3_stmt *st = NULL;
	sqlite3_prepare_v2(h,
			   "SELECT name FROM main.sqlite_master WHERE type = 'table' AND name "
			   "NOT LIKE 'sqlite_%'",
			   -1, &st, NULL);
	int tables = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(st, 0);
		char *q = sqlite3_mprintf(
			"SELECT (SELECT count(*) FROM (SELECT * FROM main.%w EXCEPT SELECT * "
			"FROM o.%w)) + (SELECT count(*) FROM (SELECT * FROM o.%w EXCEPT SELECT * "
			"FROM main.%w)) + abs((SELECT count(*) FROM main.%w) - (SELECT count(*) "
			"FROM o.%w))",
			t, t, t, t, t, t);
		sqlite3_stmt *c = NULL;
		if (sqlite3_prepare_v2(h, q, -1, &c, NULL) != SQLITE_OK ||
		    sqlite3_step(c) != SQLITE_ROW) {
			diag("%s: %s", t, sqlite3_errmsg(h));
			diff++;
		} else if (sqlite3_column_int64(c, 0)) {
			diag("table %s differs", t);
			diff += (long)sqlite3_column_int64(c, 0);
		}
		sqlite3_finalize(c);
		sqlite3_free(q);
		tables++;
	}
	sqlite3_finalize(st);
	sqlite3_close(h);
	free(pa);
	free(pb);
	return tables > 20 ? diff : -1;
}

static void no_progress(void *arg, const char *table, int64_t rows, bool checked)
{
	(void)table;
	(void)rows;
	int *n = arg;
	if (checked)
		(*n)++;
}

TEST(sqlite_to_sqlite_is_identical)
{
	make_source("src.sqlite");
	char *from = url_of("src.sqlite"), *to = url_of("copy.sqlite");
	struct db_copy_result res;
	char *err = NULL;
	int checked = 0;
	CHECK_INT(db_copy(from, to, no_progress, &checked, &res, &err), 0);
	if (err)
		diag("%s", err);
	CHECK(res.tables > 20 && (int)res.tables == checked);
	CHECK(res.rows > 15);
	CHECK_INT(differences("src.sqlite", "copy.sqlite"), 0);
	/* the trigger is back on the copy */
	exec_on("copy.sqlite", "SELECT 1 FROM sqlite_master WHERE name = 'builds_blamelist'");
	free(err);
	free(from);
	free(to);
}

TEST(a_target_with_rows_is_refused_unchanged)
{
	char *from = url_of("src.sqlite"), *to = url_of("copy.sqlite");
	struct db_copy_result res;
	char *err = NULL;
	CHECK_INT(db_copy(from, to, NULL, NULL, &res, &err), -EEXIST);
	CHECK(err && strstr(err, "already holds data (table "));
	CHECK_INT(differences("src.sqlite", "copy.sqlite"), 0);
	free(err);
	free(from);
	free(to);
}

TEST(another_version_or_url_is_refused)
{
	char *src = path_of("src.sqlite"), *old = path_of("old.sqlite");
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", src, old);
	CHECK_INT(system(cmd), 0);
	exec_on("old.sqlite", "PRAGMA user_version = 13");
	char *from = url_of("old.sqlite"), *to = url_of("never.sqlite");
	struct db_copy_result res;
	char *err = NULL;
	CHECK_INT(db_copy(from, to, NULL, NULL, &res, &err), -EPROTO);
	CHECK(err && strstr(err, "schema is version 13") && strstr(err, "upgrade-master"));
	free(err);
	err = NULL;
	CHECK_INT(db_copy("mysql://x/y", to, NULL, NULL, &res, &err), KILN_ECONFIG);
	CHECK(err && strstr(err, "'mysql://x/y': expected sqlite:PATH"));
	free(err);
	free(from);
	free(to);
	free(src);
	free(old);
}

static long long lite_value(const char *file, const char *sql)
{
	char *p = path_of(file);
	sqlite3 *h = NULL;
	sqlite3_stmt *st = NULL;
	long long v = -1;
	if (sqlite3_open(p, &h) == SQLITE_OK &&
	    sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(h);
	free(p);
	return v;
}

TEST(a_target_with_rows_keeps_its_schema)
{
	/* old.sqlite: version 13 with rows; refused before its schema is touched */
	char *from = url_of("src.sqlite"), *to = url_of("old.sqlite");
	struct db_copy_result res;
	char *err = NULL;
	CHECK_INT(db_copy(from, to, NULL, NULL, &res, &err), -EEXIST);
	CHECK(err && strstr(err, "already holds data"));
	CHECK_INT(lite_value("old.sqlite", "PRAGMA user_version"), 13);
	free(err);
	free(from);
	free(to);
}

TEST(passwords_never_shown)
{
	char *s = db_copy_url_shown("postgresql://u:secret@h:5432/db?sslpassword=x&password=p2");
	CHECK_STR(s, "postgresql://u:***@h:5432/db?sslpassword=x&password=***");
	free(s);
	s = db_copy_url_shown("host=h password=p3 dbname=kiln");
	CHECK_STR(s, "host=h password=*** dbname=kiln");
	free(s);
	s = db_copy_url_shown("postgresql:///kiln?host=/tmp/x&user=kiln");
	CHECK_STR(s, "postgresql:///kiln?host=/tmp/x&user=kiln");
	free(s);
}

static long long pg_value(const char *url, const char *sql)
{
	PGconn *c = PQconnectdb(url);
	PGresult *r = PQexec(c, sql);
	long long v = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r)
			      ? strtoll(PQgetvalue(r, 0, 0), NULL, 10)
			      : -1;
	if (v < 0)
		diag("%s: %s", sql, PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	return v;
}

TEST(sqlite_to_postgresql_and_back_is_identical)
{
	char *from = url_of("src.sqlite"), *back = url_of("back.sqlite");
	struct db_copy_result res;
	char *err = NULL;
	CHECK_INT(db_copy(from, pg_test.url, NULL, NULL, &res, &err), 0);
	if (err)
		diag("to PostgreSQL: %s", err);
	free(err);
	err = NULL;
	CHECK_INT(pg_value(pg_test.url, "SELECT count(*) FROM builds"), 2);
	CHECK_INT(pg_value(pg_test.url, "SELECT parent_buildid FROM buildsets WHERE id = 1"), 2);
	/* the sequences moved past the copied ids */
	CHECK_INT(pg_value(pg_test.url, "INSERT INTO masters (name, active, last_active) VALUES "
					"('m2', 0, 0) RETURNING id"),
		  2);
	CHECK_INT(pg_value(pg_test.url, "DELETE FROM masters WHERE id = 2 RETURNING id"), 2);
	CHECK_INT(db_copy(pg_test.url, back, NULL, NULL, &res, &err), 0);
	if (err)
		diag("back: %s", err);
	CHECK_INT(differences("src.sqlite", "back.sqlite"), 0);
	free(err);
	err = NULL;
	/* and into PostgreSQL again: refused, it holds rows */
	CHECK_INT(db_copy(from, pg_test.url, NULL, NULL, &res, &err), -EEXIST);
	free(err);
	free(from);
	free(back);
}

int main(int argc, char **argv)
{
	if (!mkdtemp(dir))
		return 1;
	RUN(sqlite_to_sqlite_is_identical);
	RUN(a_target_with_rows_is_refused_unchanged);
	RUN(another_version_or_url_is_refused);
	RUN(a_target_with_rows_keeps_its_schema);
	RUN(passwords_never_shown);
	const char *why = argc > 1 ? pg_test_start(argv[1]) : "no scripts directory given";
	if (why) {
		diag("PostgreSQL: %s", why);
		CHECK(!"a PostgreSQL server for the test");
	} else {
		RUN(sqlite_to_postgresql_and_back_is_identical);
	}
	pg_test_cleanup();
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		diag("cannot remove %s", dir);
	return tap_done();
}
