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

int main(void)
{
	RUN(add_get_list);
	RUN(add_refuses_bad_rows);
	return tap_done();
}
