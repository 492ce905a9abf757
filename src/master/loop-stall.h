/*
 * How long the master's loop stays busy without returning to poll: each
 * loop turn's busy time (the turn's wall time minus the time it spent
 * blocked in the kernel waiting for events), the worst one, the number of
 * turns and a coarse histogram for percentiles.  One loop per process.
 *
 *   loop_stall_start(&loop);   ... uv_run ...   loop_stall_finish();
 */
#ifndef KILN_MASTER_LOOP_STALL_H
#define KILN_MASTER_LOOP_STALL_H

#include <stdint.h>
#include <uv.h>

/* histogram bucket 0: busy < 1 µs; bucket i >= 1: 2^(i-1) <= busy < 2^i µs
 * (the last one is open-ended) */
#define LOOP_STALL_BUCKETS 32

struct loop_stall_report {
	uint64_t turns;    /* loop turns measured */
	uint64_t worst_us; /* the longest busy time of one turn, exact */
	uint64_t p50_us;   /* coarse: upper edge of the bucket, at most worst_us */
	uint64_t p99_us;   /* likewise */
	uint64_t busy_us;  /* busy time of all measured turns together */
	/* the most CPU time the loop's thread used in one turn: unlike worst_us
	 * (wall time), it leaves out time the thread was runnable but not running,
	 * so a busy machine does not inflate it */
	uint64_t worst_cpu_us;
	uint64_t hist[LOOP_STALL_BUCKETS];
};

/* Starts measuring LOOP (which must outlive loop_stall_stop); resets earlier
 * results.  The measuring handle is unreferenced: it never keeps LOOP alive.
 * Returns 0 or a negative libuv error (-EBUSY if already started). */
int loop_stall_start(uv_loop_t *loop);
/* The results so far (all zero if never started). */
void loop_stall_report(struct loop_stall_report *ret);
/* Stops measuring and closes the handle (the loop must run once more for
 * the close to finish, as for any libuv handle).  Results stay readable.
 * Safe when not started. */
void loop_stall_stop(void);
/* Writes the results as one JSON object to PATH. 0 or negative errno. */
int loop_stall_write_json(const char *path);
/* At the master's exit: stops, logs "loop: worst stall X ms over N turns
 * (p99 Y ms)" and, when KILN_LOOP_STATS=FILE is set, writes the JSON to FILE
 * (a failure there is logged and returned). */
int loop_stall_finish(void);

#endif
