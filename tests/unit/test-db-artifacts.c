/*
 * Unit tests for the artifacts table (db-sqlite-artifacts.c) on a real
 * SQLite database: add, get, a build's list in order and its JSON shape,
 * the checks on what is stored, and rows going with their build.
 */
#include "tap.h"

#include "common/err.h"
#include "db/db-internal.h"

#include <errno.h>
#include <string.h>

#define HEX_A "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct fx {
	struct db *db;
	int64_t buildid, stepid;
};

static void fx_open(struct fx *f)
{
	*f = (struct fx){0};
	int64_t masterid, builderid, workerid, bsid, brid, number, sn;
	if (db_open(NULL, "sqlite::memory:", NULL, &f->db) < 0)
		TAP_FAIL("db_open: %s", db_open_errmsg());
	CHECK_INT(db_master_register(f->db, "host:/b", &masterid), 0);
	CHECK_INT(db_builder_ensure(f->db, "b", NULL, NULL, &builderid), 0);
	CHECK_INT(db_worker_ensure(f->db, "w", &workerid), 0);
	struct db_sourcestamp ss = {.branch = "main", .codebase = ""};
	struct db_buildset_new bs = {
		.reason = "t", .sourcestamps = &ss, .nsourcestamps = 1, .submitted_at = 1};
	CHECK_INT(db_buildset_add(f->db, &bs, &builderid, 1, &bsid, &brid), 0);
	CHECK_INT(db_request_claim(f->db, brid, masterid, 2), 0);
	CHECK_INT(db_build_add(f->db, builderid, brid, workerid, masterid, 2, &f->buildid, &number),
		  0);
	CHECK_INT(db_step_add(f->db, f->buildid, "upload", &f->stepid, &sn), 0);
}

static struct db_artifact art(struct fx *f, const char *name, int64_t size)
{
	struct db_artifact a = {.buildid = f->buildid,
				.stepid = f->stepid,
				.name = (char *)name,
				.path = (char *)name,
				.size = size,
				.created_at = 1000.5};
	memcpy(a.sha256, HEX_A, 65);
	return a;
}

TEST(add_get_list)
{
	struct fx f;
	fx_open(&f);
	struct db_artifact a = art(&f, "1/out/a.bin", 300000);
	int64_t id1 = 0, id2 = 0;
	CHECK_INT(db_artifact_add(f.db, &a, &id1), 0);
	a = art(&f, "1/tree/b.txt", 3);
	a.stepid = 0;
	CHECK_INT(db_artifact_add(f.db, &a, &id2), 0);
	CHECK(id2 > id1 && id1 > 0);

	struct db_artifact g = {0};
	CHECK_INT(db_artifact_get(f.db, id1, &g), 0);
	CHECK_INT(g.artifactid, id1);
	CHECK_INT(g.buildid, f.buildid);
	CHECK_INT(g.stepid, f.stepid);
	CHECK_STR(g.name, "1/out/a.bin");
	CHECK_STR(g.path, "1/out/a.bin");
	CHECK_INT(g.size, 300000);
	CHECK_STR(g.sha256, HEX_A);
	CHECK(g.created_at == 1000.5);
	db_artifact_release(&g);
	CHECK_INT(db_artifact_get(f.db, id2 + 10, &g), KILN_ENOTFOUND);

	json_t *items = NULL;
	CHECK_INT(db_artifacts_of_build(f.db, f.buildid, -1, &items), 0);
	CHECK_INT(json_array_size(items), 2);
	json_t *o = json_array_get(items, 0);
	CHECK_INT(json_integer_value(json_object_get(o, "artifactid")), id1);
	CHECK_INT(json_integer_value(json_object_get(o, "size")), 300000);
	CHECK_INT(json_integer_value(json_object_get(o, "created_at")), 1000);
	CHECK_STR(json_string_value(json_object_get(o, "sha256")), HEX_A);
	CHECK(json_is_null(json_object_get(json_array_get(items, 1), "stepid")));
	json_decref(items);
	CHECK_INT(db_artifacts_of_build(f.db, f.buildid, 1, &items), 0);
	CHECK_INT(json_array_size(items), 1);
	json_decref(items);
	CHECK_INT(db_artifacts_of_build(f.db, f.buildid + 1, -1, &items), 0);
	CHECK_INT(json_array_size(items), 0);
	json_decref(items);
	db_close(f.db);
}

TEST(add_refuses_bad_rows)
{
	struct fx f;
	fx_open(&f);
	struct db_artifact a = art(&f, "", 1);
	CHECK_INT(db_artifact_add(f.db, &a, NULL), -EINVAL);
	a = art(&f, "x", -1);
	CHECK_INT(db_artifact_add(f.db, &a, NULL), -EINVAL);
	a = art(&f, "x", 1);
	memcpy(a.sha256, "E3B0", 4); /* upper case is not what is stored */
	CHECK_INT(db_artifact_add(f.db, &a, NULL), -EINVAL);
	a = art(&f, "x", 1);
	a.sha256[10] = 0;
	CHECK_INT(db_artifact_add(f.db, &a, NULL), -EINVAL);
	a = art(&f, "x", 1);
	a.buildid = f.buildid + 100; /* no such build: the foreign key refuses it */
	CHECK(db_artifact_add(f.db, &a, NULL) < 0);
	json_t *items = NULL;
	CHECK_INT(db_artifacts_of_build(f.db, f.buildid, -1, &items), 0);
	CHECK_INT(json_array_size(items), 0);
	json_decref(items);
	db_close(f.db);
}

/* Retention's queries (slice "artcli"): the oldest rows with their build's
 * state, the usage and the keep_builds threshold, and deletions returning
 * only the files and directories no remaining row needs. */
TEST(retention_queries)
{
	struct fx f;
	fx_open(&f);
	int64_t b1 = f.buildid, id[6];
	struct db_artifact a = art(&f, "1/a.bin", 100);
	CHECK_INT(db_artifact_add(f.db, &a, &id[0]), 0);
	a = art(&f, "1/a.bin", 50); /* uploaded again to the same place */
	CHECK_INT(db_artifact_add(f.db, &a, &id[1]), 0);
	a = art(&f, "1/tree.tar.gz", 30);
	a.dir = "1/tree";
	CHECK_INT(db_artifact_add(f.db, &a, &id[2]), 0);
	a = art(&f, "1/tree/inner.bin", 7); /* a file inside the directory */
	CHECK_INT(db_artifact_add(f.db, &a, &id[3]), 0);
	CHECK_INT(db_build_finish(f.db, b1, 0, "done", 3), 0);
	/* a second build, still running */
	int64_t masterid, builderid, workerid, bsid, brid, b2, number;
	CHECK_INT(db_master_register(f.db, "host:/b", &masterid), 0);
	CHECK_INT(db_builder_ensure(f.db, "b", NULL, NULL, &builderid), 0);
	CHECK_INT(db_worker_ensure(f.db, "w", &workerid), 0);
	struct db_sourcestamp ss = {.branch = "main", .codebase = ""};
	struct db_buildset_new bs = {
		.reason = "t", .sourcestamps = &ss, .nsourcestamps = 1, .submitted_at = 1};
	CHECK_INT(db_buildset_add(f.db, &bs, &builderid, 1, &bsid, &brid), 0);
	CHECK_INT(db_request_claim(f.db, brid, masterid, 2), 0);
	CHECK_INT(db_build_add(f.db, builderid, brid, workerid, masterid, 2, &b2, &number), 0);
	a = art(&f, "2/c.bin", 1000);
	a.buildid = b2;
	a.stepid = 0;
	CHECK_INT(db_artifact_add(f.db, &a, &id[4]), 0);

	struct db_artifact_age rows[8];
	size_t n = 0;
	CHECK_INT(db_artifacts_oldest(f.db, 0, 8, rows, &n), 0);
	CHECK_INT(n, 5);
	CHECK_INT(rows[0].artifactid, id[0]);
	CHECK_INT(rows[0].size, 100);
	CHECK(rows[0].build_done);
	CHECK_INT(rows[4].buildid, b2);
	CHECK(!rows[4].build_done);
	CHECK_INT(db_artifacts_oldest(f.db, id[2], 8, rows, &n), 0);
	CHECK_INT(n, 2);
	CHECK_INT(rows[0].artifactid, id[3]);
	CHECK_INT(db_artifacts_oldest(f.db, 0, 2, rows, &n), 0);
	CHECK_INT(n, 2);

	int64_t bytes = 0, from = -1, max_id = -1;
	CHECK_INT(db_artifacts_usage(f.db, 0, 1, &bytes, &max_id, &from), 0);
	CHECK_INT(bytes, 1187);
	CHECK_INT(max_id, id[4]);
	CHECK_INT(from, b2);
	CHECK_INT(db_artifacts_usage(f.db, 0, 2, &bytes, &max_id, &from), 0);
	CHECK_INT(from, b1);
	CHECK_INT(db_artifacts_usage(f.db, 0, 3, &bytes, &max_id, &from), 0);
	CHECK_INT(from, 0);
	/* only what is above after_id: the new rows of a kept total */
	CHECK_INT(db_artifacts_usage(f.db, id[2], 0, &bytes, &max_id, &from), 0);
	CHECK_INT(bytes, 1007);
	CHECK_INT(max_id, id[4]);
	CHECK_INT(db_artifacts_usage(f.db, id[4], 0, &bytes, &max_id, &from), 0);
	CHECK_INT(bytes, 0);
	CHECK_INT(max_id, id[4]);

	/* the first a.bin row: its file is still the second's */
	struct db_artifact_file *files = NULL;
	size_t nf = 9;
	CHECK_INT(db_artifacts_delete(f.db, &id[0], 1, &files, &nf), 0);
	CHECK_INT(nf, 0);
	db_artifact_files_free(files, nf);
	struct db_artifact g = {0};
	CHECK_INT(db_artifact_get(f.db, id[0], &g), KILN_ENOTFOUND);
	/* the tar goes, its directory stays while inner.bin's row needs it */
	CHECK_INT(db_artifacts_delete(f.db, &id[1], 2, &files, &nf), 0);
	CHECK_INT(nf, 2);
	if (nf == 2) {
		CHECK_STR(files[0].path, "1/a.bin");
		CHECK(!files[0].dir);
		CHECK_STR(files[1].path, "1/tree.tar.gz");
	}
	db_artifact_files_free(files, nf);
	/* an id deleted twice is skipped */
	int64_t two[2] = {id[3], id[0]};
	CHECK_INT(db_artifacts_delete(f.db, two, 2, &files, &nf), 0);
	CHECK_INT(nf, 1);
	if (nf == 1)
		CHECK_STR(files[0].path, "1/tree/inner.bin");
	db_artifact_files_free(files, nf);
	CHECK_INT(db_artifacts_usage(f.db, 0, 0, &bytes, &max_id, &from), 0);
	CHECK_INT(bytes, 1000);
	CHECK_INT(from, 0);
	db_close(f.db);
}

/* A directory artifact's directory is handed out once no row needs it. */
TEST(retention_dir_freed)
{
	struct fx f;
	fx_open(&f);
	int64_t id;
	struct db_artifact a = art(&f, "1/tree.tar", 30);
	a.dir = "1/tree";
	CHECK_INT(db_artifact_add(f.db, &a, &id), 0);
	struct db_artifact g = {0};
	CHECK_INT(db_artifact_get(f.db, id, &g), 0);
	CHECK_STR(g.dir, "1/tree");
	db_artifact_release(&g);
	struct db_artifact_file *files = NULL;
	size_t nf = 0;
	CHECK_INT(db_artifacts_delete(f.db, &id, 1, &files, &nf), 0);
	CHECK_INT(nf, 2);
	if (nf == 2) {
		CHECK_STR(files[0].path, "1/tree.tar");
		CHECK_STR(files[1].path, "1/tree");
		CHECK(files[1].dir);
	}
	db_artifact_files_free(files, nf);
	db_close(f.db);
}

int main(void)
{
	RUN(add_get_list);
	RUN(add_refuses_bad_rows);
	RUN(retention_queries);
	RUN(retention_dir_freed);
	return tap_done();
}
