/*
 * A test report streamed into the database: what the `test` step calls as
 * the report's bytes arrive.  testingest_begin() adds a test result set
 * (Buildbot's test_result_sets row) for the step, testingest_feed() parses
 * (testreport.h) and stores the records in batches of
 * KILN_TESTINGEST_BATCH (each one write, inside the loop turn's db batch),
 * testingest_end() stores the rest and completes the set with its counts.
 *
 * Loop thread only (the db's).  Memory: one batch of records.
 *
 * Errors tell the step which result to take: KILN_EDB (db_errmsg() says)
 * is a storage failure (EXCEPTION); KILN_EPARSE / KILN_ETOOBIG a bad report
 * (FAILURE, with the message in the step's log).
 */
#ifndef KILN_MASTER_TESTINGEST_H
#define KILN_MASTER_TESTINGEST_H

#include <stddef.h>
#include <stdint.h>

#include "master/testreport.h"

struct db;
struct testingest;

/* Adds the set (category "pass_fail", value_unit "boolean"; description
 * borrowed, NULL ok) and returns the ingest in *ret.  Errors: those of
 * db_test_result_set_add (KILN_ENOTFOUND: no such step in that build). */
int testingest_begin(struct db *db, int64_t builderid, int64_t buildid, int64_t stepid,
		     enum testreport_format format, const char *description,
		     struct testingest **ret);
/* Parses and stores len more bytes.  0 or an error; after one, every
 * call returns it again and testingest_end() reports it. */
int testingest_feed(struct testingest *ti, const void *data, size_t len);
/* Ends the report: stores what is left and completes the set with the
 * counts of what was stored, even after a parse error (the set then holds
 * the tests read before it).  *ret_summary (may be NULL) gets the counts;
 * on error *ret_err (may be NULL) a message (malloc'd, caller frees).
 * Frees ti.  Returns 0 or the first error. */
int testingest_end(struct testingest *ti, struct testreport_summary *ret_summary, char **ret_err);
/* The set's id (for the step's URL or number). */
int64_t testingest_setid(const struct testingest *ti);

#endif
