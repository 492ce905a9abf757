/*
 * `kiln upgrade-master [BASEDIR]`: applies the database migrations this
 * kiln has and the database has not yet, printing each, with no master
 * running on BASEDIR (its pid lock is taken for the duration, so none can
 * start meanwhile).  The database url comes from BASEDIR/master.lua
 * (db_url), as the master would use it.  docs/OPERATING.md, "Upgrades".
 */
#include "client/cmd.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"
#include "kiln/kiln.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

static void upgrade_usage(FILE *f)
{
	fprintf(f, "usage: kiln upgrade-master [BASEDIR]\n"
		   "Applies the database migrations of this kiln that the master's database\n"
		   "(db_url in BASEDIR/master.lua, default . ) does not have yet, in one\n"
		   "transaction, printing each one applied.  Refuses to run while a master\n"
		   "runs on BASEDIR (it holds BASEDIR/pid); no master can start meanwhile.\n"
		   "A database newer than this kiln is refused, as the master refuses it.\n"
		   "Back the database up first (docs/OPERATING.md, \"Upgrades\").\n"
		   "Exit status: 0 upgraded or already current, 1 failed (nothing is\n"
		   "changed), 2 usage.\n");
}

static void upgrade_on_applied(int version, const char *name, void *userdata)
{
	(void)version;
	(void)userdata;
	printf("applied migration %s\n", name);
	fflush(stdout);
}

static int upgrade_db(const char *basedir, const char *url)
{
	struct db *db = NULL;
	int r = db_open_flags(NULL, url, basedir, DB_OPEN_NO_MIGRATE, &db);
	if (r < 0) {
		fprintf(stderr, "kiln upgrade-master: cannot open database '%s': %s\n", url,
			db_open_errmsg());
		return 1;
	}
	int from = db_schema_version(db);
	int latest = db_schema_latest();
	if (from < 0) {
		fprintf(stderr, "kiln upgrade-master: database '%s': %s\n", url, db_errmsg(db));
		db_close(db);
		return 1;
	}
	printf("database %s: schema version %d; kiln %s: schema version %d\n", url, from,
	       KILN_VERSION, latest);
	fflush(stdout);
	r = db_upgrade(db, upgrade_on_applied, NULL);
	if (r < 0) {
		fprintf(stderr,
			"kiln upgrade-master: %s\n"
			"kiln upgrade-master: nothing was changed (the migrations run in one "
			"transaction)\n",
			db_errmsg(db));
		db_close(db);
		return 1;
	}
	if (r == 0)
		printf("already at schema version %d: nothing to do\n", latest);
	else
		printf("upgraded from schema version %d to %d (%d migration%s)\n", from, latest, r,
		       r == 1 ? "" : "s");
	db_close(db);
	return 0;
}

static int upgrade_run(int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		upgrade_usage(stdout);
		return 0;
	}
	if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
		upgrade_usage(stderr);
		return 2;
	}
	const char *arg = argc > 1 ? argv[1] : ".";
	char basedir[PATH_MAX];
	if (!realpath(arg, basedir)) {
		fprintf(stderr, "kiln upgrade-master: cannot open base directory '%s': %s\n", arg,
			strerror(errno));
		return 1;
	}
	_cleanup_free_ char *pidpath = xasprintf("%s/pid", basedir);
	bool created;
	int lock_fd = kiln_lock_basedir("upgrade-master", basedir, true, &created);
	if (lock_fd < 0)
		return 1;
	struct config *cfg = NULL;
	_cleanup_free_ char *err = NULL;
	int status = 1;
	if (config_load(basedir, &cfg, &err) < 0)
		fprintf(stderr, "%s\n", err ? err : "master.lua: cannot load");
	else
		status = upgrade_db(basedir, cfg->db_url);
	config_free(cfg);
	if (created) /* ours (locked): an empty pid file would read as stale */
		unlink(pidpath);
	close(lock_fd);
	return status;
}

const struct cmd cmd_upgrd = {
	.name = "upgrade-master",
	.usage = "[BASEDIR]",
	.summary = "apply the database migrations (no master running)",
	.run = upgrade_run,
	.own_help = true,
};
