/*
 * `kiln cleanupdb BASEDIR [--dry-run]` (slice "retention"): applies the
 * retention = { } settings of BASEDIR/master.lua all at once (SQLite: one
 * transaction; PostgreSQL: the master's batches, each committed, on a loop
 * run until each is answered), removes the artifact files of the purged
 * builds, then VACUUMs the database, printing what went and its size
 * before and after.  Refused while a master runs on BASEDIR (it holds the
 * lock on BASEDIR/pid, which this command holds in turn while it works, so
 * no master starts meanwhile).  --dry-run counts and changes nothing (on
 * PostgreSQL: the batches in one transaction rolled back).
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
#include <uv.h>

static void cleanupdb_usage(FILE *f)
{
	fprintf(f, "usage: kiln cleanupdb BASEDIR [--dry-run]\n\n"
		   "Purges what master.lua's retention = { } lets go, all at once, then\n"
		   "VACUUMs the database.  The master must not be running.\n"
		   "  --dry-run  count what would go; change nothing\n");
}

/* One batch's answer awaited (PostgreSQL). */
struct cleanupdb_wait {
	const char *basedir; /* borrowed */
	bool done;
	int r;
	char err[512];
	struct db_retention_pass st;
	struct db_retention_counts *c; /* borrowed: the sums */
	size_t failed;                 /* files that could not be removed */
};

static void cleanupdb_counts_add(struct db_retention_counts *t, const struct db_retention_counts *k)
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

static void cleanupdb_batch_done(void *arg, int r, struct db_retention_step *s, const char *err)
{
	struct cleanupdb_wait *w = arg;
	w->done = true;
	w->r = r;
	if (r < 0) {
		snprintf(w->err, sizeof(w->err), "%s", err ? err : err_str(r));
		return;
	}
	w->st = s->st;
	cleanupdb_counts_add(w->c, &s->counts);
	/* on PostgreSQL the answer comes after the batch's commit */
	if (s->nfiles)
		w->failed += retention_remove_files(w->basedir, s->files, s->nfiles);
}

/* The purge on PostgreSQL as the master runs it (retention.c): batches of
 * db_retention_batch_async, each one started from the last one's answer
 * and committed on its own, so that other masters sharing the server are
 * never held behind one long transaction; the loop runs until each is
 * answered.  The files of each batch's purged artifacts go once it is
 * committed (*failed: those that could not be removed). */
static int cleanupdb_batches(uv_loop_t *loop, struct db *db, const char *basedir,
			     const struct db_retention_policy *p, struct db_retention_counts *c,
			     size_t *failed)
{
	struct cleanupdb_wait w = {.basedir = basedir, .c = c};
	int r;
	do {
		w.done = false;
		r = db_retention_batch_async(db, p, &w.st, RETENTION_BATCH_ROWS, RETENTION_BATCH_MS,
					     cleanupdb_batch_done, &w);
		if (r < 0) {
			fprintf(stderr, "kiln cleanupdb: %s\n", db_errmsg(db));
			break;
		}
		while (!w.done)
			if (uv_run(loop, UV_RUN_ONCE) == 0 && !w.done) {
				fprintf(stderr,
					"kiln cleanupdb: a retention batch got no answer\n");
				*failed = w.failed;
				return KILN_EDB;
			}
		r = w.r;
		if (r < 0)
			fprintf(stderr, "kiln cleanupdb: %s\n", w.err);
	} while (r > 0);
	*failed = w.failed;
	return r;
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
	/* PostgreSQL answers on a loop, run here until each answer is in */
	bool pg = db_url_is_postgresql(cfg->db_url);
	uv_loop_t loop;
	int lr = pg ? uv_loop_init(&loop) : 0;
	if (lr < 0) {
		fprintf(stderr, "kiln cleanupdb: cannot start a loop: %s\n", uv_strerror(lr));
		goto out;
	}
	if (db_open(pg ? &loop : NULL, cfg->db_url, basedir, &db) < 0) {
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
	size_t failed = 0;
	int rr = db_retention_resolve(db, &p);
	bool batches = rr >= 0 && pg && !dry; /* their errors are told as they come */
	if (batches)
		rr = cleanupdb_batches(&loop, db, basedir, &p, &c, &failed);
	else if (rr >= 0)
		rr = db_retention_run(db, &p, dry, &c, &files, &nfiles);
	retention_policy_release(&p);
	if (rr < 0 && batches) {
		/* told already; the batches answered before stay committed */
		if (failed)
			fprintf(stderr, "kiln cleanupdb: %zu artifact files could not be removed\n",
				failed);
		goto out;
	}
	if (rr < 0)
		goto dberr;
	if (nfiles)
		failed = retention_remove_files(basedir, files, nfiles);
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
	if (pg && lr == 0) {
		uv_run(&loop, UV_RUN_DEFAULT); /* the connection's handles close */
		if (uv_loop_close(&loop) != 0)
			fprintf(stderr, "kiln cleanupdb: the loop still had handles at exit\n");
	}
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
