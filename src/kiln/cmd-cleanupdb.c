/*
 * `kiln cleanupdb BASEDIR [--dry-run]` (slice "retention"): applies the
 * retention = { } settings of BASEDIR/master.lua all at once (one
 * transaction), removes the artifact files of the purged builds, then
 * VACUUMs the database, printing what went and the file's size before and
 * after.  Refused while a master runs on BASEDIR (it holds the lock on
 * BASEDIR/pid, which this command holds in turn while it works, so no
 * master starts meanwhile).  --dry-run counts and changes nothing.
 * docs/OPERATING.md "Retention".
 */
#include "client/cmd.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"
#include "kiln/kiln.h"
#include "master/retention.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

static void cleanupdb_usage(FILE *f)
{
	fprintf(f, "usage: kiln cleanupdb BASEDIR [--dry-run]\n\n"
		   "Purges what master.lua's retention = { } lets go, all at once, then\n"
		   "VACUUMs the database.  The master must not be running.\n"
		   "  --dry-run  count what would go; change nothing\n");
}

static int cleanupdb_run(int argc, char **argv)
{
	const char *basedir = NULL;
	bool dry = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--dry-run"))
			dry = true;
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			cleanupdb_usage(stdout);
			return 0;
		} else if (argv[i][0] == '-' || basedir) {
			cleanupdb_usage(stderr);
			return 2;
		} else
			basedir = argv[i];
	}
	if (!basedir) {
		cleanupdb_usage(stderr);
		return 2;
	}
	struct config *cfg;
	_cleanup_free_ char *err = NULL;
	if (config_load(basedir, &cfg, &err) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	int lock = kiln_lock_basedir("cleanupdb", basedir, false, NULL);
	if (lock == -1) {
		config_free(cfg);
		return 1;
	}
	int rc = 1;
	struct db *db = NULL;
	struct db_artifact_file *files = NULL;
	size_t nfiles = 0;
	if (db_open(NULL, cfg->db_url, basedir, &db) < 0) {
		fprintf(stderr, "kiln cleanupdb: cannot open the database '%s': %s\n", cfg->db_url,
			db_open_errmsg());
		goto out;
	}
	int64_t before = 0, after = 0;
	if (db_file_bytes(db, &before) < 0)
		goto dberr;
	if (!retention_configured(cfg))
		printf("master.lua sets no retention = { } limit: nothing to purge\n");
	struct db_retention_policy p;
	retention_policy(cfg, clock_wall(), &p);
	struct db_retention_counts c = {0};
	int rr = db_retention_resolve(db, &p);
	if (rr >= 0)
		rr = db_retention_run(db, &p, dry, &c, &files, &nfiles);
	retention_policy_release(&p);
	if (rr < 0)
		goto dberr;
	size_t failed = nfiles ? retention_remove_files(basedir, files, nfiles) : 0;
	printf("%s %" PRId64 " builds (%" PRId64 " build requests, %" PRId64 " buildsets, %" PRId64
	       " sourcestamps, %" PRId64 " artifacts), %" PRId64 " logs' content, %" PRId64
	       " test results, %" PRId64 " numbers, %" PRId64 " changes\n",
	       dry ? "would purge" : "purged", c.builds, c.buildrequests, c.buildsets,
	       c.sourcestamps, c.artifacts, c.logs, c.test_results, c.numbers, c.changes);
	if (failed)
		fprintf(stderr, "kiln cleanupdb: %zu artifact files could not be removed\n",
			failed);
	if (dry) {
		printf("database: %" PRId64 " bytes (dry run: no VACUUM)\n", before);
		rc = 0;
		goto out;
	}
	if (db_vacuum(db) < 0 || db_file_bytes(db, &after) < 0)
		goto dberr;
	printf("database: %" PRId64 " bytes before, %" PRId64 " bytes after VACUUM\n", before,
	       after);
	rc = failed ? 1 : 0;
	goto out;
dberr:
	fprintf(stderr, "kiln cleanupdb: %s\n", db_errmsg(db));
out:
	db_artifact_files_free(files, nfiles);
	db_close(db);
	config_free(cfg);
	if (lock >= 0)
		close(lock);
	return rc;
}

const struct cmd cmd_purge = {
	.name = "cleanupdb",
	.usage = "BASEDIR [--dry-run]",
	.summary = "purge by master.lua's retention settings now, then VACUUM",
	.run = cleanupdb_run,
	.own_help = true,
};
