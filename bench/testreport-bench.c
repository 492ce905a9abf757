/*
 * Test-report ingestion benchmark (issue 10: "100,000 test cases from one
 * JUnit file ingested in <= 2 s"): writes a pytest-shaped JUnit file of N
 * test cases (default 100,000; 5 % failing with a traceback, 3 % skipped),
 * then (1) parses it alone and (2) ingests it through testingest.c into a
 * fresh SQLite file, fed in 64 KiB pieces as a worker's upload would be.
 * Prints wall and CPU time for each, and one JSON line ("testreport-bench
 * {...}").  Not a test gate; built and run by `bench/run junit`, or by hand
 * against a build dir's static libraries, e.g.
 *   cc -O2 -Isrc -o /tmp/testreport-bench bench/testreport-bench.c \
 *      build/src/master/libkiln-master.a build/src/db/libkiln-db.a \
 *      build/src/common/libkiln-common.a \
 *      $(pkg-config --libs libxml-2.0 sqlite3 jansson libzstd libuv) -lm
 *   /tmp/testreport-bench [N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/xalloc.h"
#include "db/db.h"
#include "master/testingest.h"
#include "master/testreport.h"

#define PIECE (64u << 10)

static double bench_now(int clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void bench_report(struct buf *b, int n)
{
	int bad = buf_adds(b, "<?xml version=\"1.0\" encoding=\"utf-8\"?><testsuites>"
			      "<testsuite name=\"pytest\" errors=\"0\">\n");
	for (int i = 0; i < n && !bad; i++) {
		bad |= buf_addf(b,
				"<testcase classname=\"tests.test_mod%d\" name=\"test_case_%d\" "
				"time=\"0.%03d\">",
				i / 100, i, i % 1000);
		if (i % 20 == 7)
			bad |= buf_addf(b,
					"<failure message=\"AssertionError: assert %d == %d\">"
					"def test_case_%d():\n&gt;       assert f(%d) == %d\n"
					"E       AssertionError\n\ntests/test_mod%d.py:%d: "
					"AssertionError</failure>",
					i, i + 1, i, i, i + 1, i / 100, 10 + i % 90);
		else if (i % 33 == 5)
			bad |= buf_adds(b, "<skipped type=\"pytest.skip\" message=\"needs a GPU\">"
					   "tests/test_gpu.py:3: needs a GPU</skipped>");
		bad |= buf_adds(b, "</testcase>\n");
	}
	bad |= buf_adds(b, "</testsuite></testsuites>\n");
	if (bad) {
		fprintf(stderr, "report too big\n");
		exit(1);
	}
}

static int bench_count(void *ud, const struct testreport_record *rec)
{
	(void)rec;
	(*(long *)ud)++;
	return 0;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 100000;
	struct buf b;
	buf_init(&b, 1u << 30);
	bench_report(&b, n);
	printf("report: %d test cases, %.1f MB of JUnit XML\n", n, b.len / 1e6);

	/* 1. parse only */
	long seen = 0;
	double w0 = bench_now(CLOCK_MONOTONIC), c0 = bench_now(CLOCK_PROCESS_CPUTIME_ID);
	struct testreport *tr = testreport_new(TESTREPORT_AUTO, bench_count, &seen);
	for (size_t off = 0; off < b.len; off += PIECE)
		if (testreport_feed(tr, b.ptr + off, b.len - off < PIECE ? b.len - off : PIECE) < 0)
			break;
	const char *err = NULL;
	if (testreport_finish(tr, &err) < 0 || seen != n) {
		fprintf(stderr, "parse: %s (%ld tests)\n", err ? err : "?", seen);
		return 1;
	}
	testreport_free(tr);
	double parse_wall = bench_now(CLOCK_MONOTONIC) - w0;
	double parse_cpu = bench_now(CLOCK_PROCESS_CPUTIME_ID) - c0;
	printf("parse only:       %.3f s wall, %.3f s CPU\n", parse_wall, parse_cpu);

	/* 2. parse and store in a fresh SQLite file */
	char dir[] = "/tmp/kiln-testreport-bench-XXXXXX";
	if (!mkdtemp(dir))
		return 1;
	struct db *db;
	if (db_open(NULL, "sqlite:bench.sqlite", dir, &db) < 0) {
		fprintf(stderr, "db_open: %s\n", db_open_errmsg());
		return 1;
	}
	int64_t masterid, builderid, bsid, brid, buildid, number, stepid, sn;
	struct db_sourcestamp ss = {"main", "abc", "repo", "", ""};
	struct db_buildset_new bs = {.reason = "bench", .sourcestamps = &ss, .nsourcestamps = 1};
	if (db_master_register(db, "bench", &masterid) < 0 ||
	    db_builder_ensure(db, "b", NULL, "[]", &builderid) < 0 ||
	    db_buildset_add(db, &bs, &builderid, 1, &bsid, &brid) < 0 ||
	    db_build_add(db, builderid, brid, 0, masterid, 1, &buildid, &number) < 0 ||
	    db_step_add(db, buildid, "test", &stepid, &sn) < 0) {
		fprintf(stderr, "db: %s\n", db_errmsg(db));
		return 1;
	}
	w0 = bench_now(CLOCK_MONOTONIC);
	c0 = bench_now(CLOCK_PROCESS_CPUTIME_ID);
	struct testingest *ti;
	if (testingest_begin(db, builderid, buildid, stepid, TESTREPORT_AUTO, "bench", &ti) < 0)
		return 1;
	for (size_t off = 0; off < b.len; off += PIECE)
		if (testingest_feed(ti, b.ptr + off, b.len - off < PIECE ? b.len - off : PIECE) < 0)
			break;
	struct testreport_summary s;
	char *ierr = NULL;
	if (testingest_end(ti, &s, &ierr) < 0) {
		fprintf(stderr, "ingest: %s\n", ierr);
		return 1;
	}
	double wall = bench_now(CLOCK_MONOTONIC) - w0;
	double cpu = bench_now(CLOCK_PROCESS_CPUTIME_ID) - c0;
	char *sum = testreport_summary_text(&s);
	printf("parse and store:  %.3f s wall, %.3f s CPU (%s)\n", wall, cpu, sum);
	printf("testreport-bench {\"n\": %d, \"mb\": %.2f, \"parse_wall_s\": %.4f, "
	       "\"parse_cpu_s\": %.4f, \"ingest_wall_s\": %.4f, \"ingest_cpu_s\": %.4f}\n",
	       n, b.len / 1e6, parse_wall, parse_cpu, wall, cpu);
	free(sum);
	db_close(db);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		return 1;
	buf_release(&b);
	return wall <= 2.0 ? 0 : 2;
}
