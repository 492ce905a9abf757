/*
 * Unit tests for the schema version check and explicit upgrades
 * (db_open_flags, db_upgrade, db_schema_latest; `kiln upgrade-master`):
 * real SQLite files in a temporary directory.
 */
#include "tap.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/xalloc.h"
#include "db/db-internal.h"
#include "db/db.h"

static char tmpdir[256];

/* A file database with the first `upto` migrations applied by hand, as an
 * older kiln left it; returns its url (owned). */
static char *make_old(const char *name, size_t upto)
{
	char *path = xasprintf("%s/%s", tmpdir, name);
	sqlite3 *h;
	CHECK_INT(sqlite3_open(path, &h), SQLITE_OK);
	size_t n;
	const struct db_migration *m = db_migrations(&n);
	for (size_t i = 0; i < upto && i < n; i++)
		CHECK_INT(sqlite3_exec(h, m[i].sql, NULL, NULL, NULL), SQLITE_OK);
	char *sql = xasprintf("PRAGMA user_version = %d", upto ? m[upto - 1].version : 0);
	CHECK_INT(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
	free(sql);
	sqlite3_close(h);
	free(path);
	return xasprintf("sqlite:%s", name);
}

static void set_version(const char *name, int v)
{
	char *path = xasprintf("%s/%s", tmpdir, name);
	sqlite3 *h;
	CHECK_INT(sqlite3_open(path, &h), SQLITE_OK);
	char *sql = xasprintf("PRAGMA user_version = %d", v);
	CHECK_INT(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
	free(sql);
	sqlite3_close(h);
	free(path);
}

struct applied {
	int n;
	int versions[64];
	char names[64][64];
};

static void on_applied(int version, const char *name, void *userdata)
{
	struct applied *a = userdata;
	if (a->n < 64) {
		a->versions[a->n] = version;
		snprintf(a->names[a->n], sizeof(a->names[0]), "%s", name);
	}
	a->n++;
}

TEST(latest_is_last_migration)
{
	size_t n;
	const struct db_migration *m = db_migrations(&n);
	CHECK(n > 3);
	CHECK_INT(db_schema_latest(), m[n - 1].version);
}

TEST(no_migrate_then_upgrade_applies_each_pending)
{
	size_t n;
	const struct db_migration *m = db_migrations(&n);
	size_t upto = n - 3;
	char *url = make_old("old.sqlite", upto);
	struct db *db = NULL;
	CHECK_INT(db_open_flags(NULL, url, tmpdir, DB_OPEN_NO_MIGRATE, &db), 0);
	CHECK_INT(db_schema_version(db), m[upto - 1].version);
	struct applied a = {0};
	CHECK_INT(db_upgrade(db, on_applied, &a), 3);
	CHECK_INT(a.n, 3);
	for (int i = 0; i < 3 && i < a.n; i++) {
		CHECK_INT(a.versions[i], m[upto + (size_t)i].version);
		CHECK_STR(a.names[i], m[upto + (size_t)i].name);
	}
	CHECK_INT(db_schema_version(db), db_schema_latest());
	/* current: nothing more to do */
	struct applied b = {0};
	CHECK_INT(db_upgrade(db, on_applied, &b), 0);
	CHECK_INT(b.n, 0);
	db_close(db);
	/* and a plain open finds it current */
	CHECK_INT(db_open(NULL, url, tmpdir, &db), 0);
	CHECK_INT(db_schema_version(db), db_schema_latest());
	db_close(db);
	free(url);
}

TEST(plain_open_still_migrates)
{
	char *url = make_old("auto.sqlite", 2);
	struct db *db = NULL;
	CHECK_INT(db_open(NULL, url, tmpdir, &db), 0);
	CHECK_INT(db_schema_version(db), db_schema_latest());
	db_close(db);
	free(url);
}

TEST(newer_schema_refused_with_both_versions)
{
	char *url = make_old("future.sqlite", 0);
	struct db *db = NULL;
	CHECK_INT(db_open(NULL, url, tmpdir, &db), 0); /* to head */
	db_close(db);
	int future = db_schema_latest() + 1;
	set_version("future.sqlite", future);
	char *want_db = xasprintf("schema version %d is newer", future);
	char *want_bin = xasprintf("this kiln %s knows (schema version %d)", KILN_VERSION,
				   db_schema_latest());
	/* the master's open, the tools' open and upgrade-master's open */
	db = NULL;
	CHECK_INT(db_open(NULL, url, tmpdir, &db), KILN_EDB);
	CHECK(db == NULL);
	CHECK(strstr(db_open_errmsg(), want_db) != NULL);
	CHECK(strstr(db_open_errmsg(), want_bin) != NULL);
	CHECK_INT(db_open_flags(NULL, url, tmpdir, DB_OPEN_NO_MIGRATE, &db), KILN_EDB);
	CHECK(db == NULL);
	CHECK(strstr(db_open_errmsg(), want_db) != NULL);
	/* the file is left as it was */
	set_version("future.sqlite", db_schema_latest());
	CHECK_INT(db_open(NULL, url, tmpdir, &db), 0);
	CHECK_INT(db_schema_version(db), db_schema_latest());
	db_close(db);
	free(want_db);
	free(want_bin);
	free(url);
}

TEST(failed_migration_keeps_nothing)
{
	/* a fully migrated file that claims version 0: 0001-initial's CREATE
	 * TABLEs fail on the tables already there, after other statements ran */
	char *url = make_old("broken.sqlite", 0);
	struct db *db = NULL;
	CHECK_INT(db_open(NULL, url, tmpdir, &db), 0);
	CHECK_INT(db_master_register(db, "m", &(int64_t){0}), 0);
	db_close(db);
	set_version("broken.sqlite", 0);
	db = NULL;
	CHECK_INT(db_open_flags(NULL, url, tmpdir, DB_OPEN_NO_MIGRATE, &db), 0);
	struct applied a = {0};
	CHECK_INT(db_upgrade(db, on_applied, &a), KILN_EDB);
	CHECK_INT(a.n, 0);
	CHECK(strstr(db_errmsg(db), "migration 0001-initial") != NULL);
	CHECK_INT(db_schema_version(db), 0);
	db_close(db);
	/* a plain open fails the same way and keeps the rows */
	CHECK_INT(db_open(NULL, url, tmpdir, &db), KILN_EDB);
	CHECK(strstr(db_open_errmsg(), "migration 0001-initial") != NULL);
	sqlite3 *h;
	char *path = xasprintf("%s/broken.sqlite", tmpdir);
	CHECK_INT(sqlite3_open(path, &h), SQLITE_OK);
	sqlite3_stmt *st;
	CHECK_INT(sqlite3_prepare_v2(h, "SELECT count(*) FROM masters", -1, &st, NULL), SQLITE_OK);
	CHECK_INT(sqlite3_step(st), SQLITE_ROW);
	CHECK_INT(sqlite3_column_int(st, 0), 1);
	sqlite3_finalize(st);
	sqlite3_close(h);
	free(path);
	free(url);
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "%s/kiln-test-db-upgrade-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(latest_is_last_migration);
	RUN(no_migrate_then_upgrade_applies_each_pending);
	RUN(plain_open_still_migrates);
	RUN(newer_schema_refused_with_both_versions);
	RUN(failed_migration_keeps_nothing);
	char *cmd = xasprintf("rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", tmpdir);
	free(cmd);
	return tap_done();
}
