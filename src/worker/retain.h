/*
 * kiln-worker's re-attach buffer (docs/PROTOCOL.md, "Re-attach"): for each
 * command that may outlive a dropped connection, the messages it sent (or
 * could not send) that the master has not acknowledged yet, in order, each
 * numbered from 0 per command.  An update's entry is its packed `args`
 * array; a complete's, its packed failure (str or nil).  The total size of
 * the entries is capped: retain_add() refuses past it.  Pure data: worker.c
 * and cmd.c send and acknowledge.
 */
#ifndef KILN_WORKER_RETAIN_H
#define KILN_WORKER_RETAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RETAIN_MAX_BYTES (16u << 20) /* all commands together */

struct retain_entry {
	struct retain_entry *next;
	uint64_t index;
	bool complete; /* a `complete` (else an `update`) */
	size_t len;
	unsigned char data[]; /* the packed args value */
};

struct cmd;
struct retain_cmd {
	char *id; /* owned: the command_id */
	uint64_t next_index;
	struct retain_entry *head, *tail; /* unacknowledged, in order */
	bool done;                        /* its complete is in the list (or was acknowledged) */
	struct cmd *cmd;                  /* the running command, NULL once finished */
	struct retain_cmd *next;
};

struct retain {
	struct retain_cmd *cmds;
	size_t bytes; /* of every entry's data */
	size_t cap;   /* RETAIN_MAX_BYTES unless a test lowers it */
};

void retain_init(struct retain *r, size_t cap);
/* Frees everything.  NULL-safe. */
void retain_release(struct retain *r);
/* A new command's record (id copied), linked last. */
struct retain_cmd *retain_cmd_new(struct retain *r, const char *id);
struct retain_cmd *retain_cmd_find(struct retain *r, const char *id, size_t len);
/* Appends a copy of data as the command's next entry; returns its index,
 * or -E2BIG (nothing added) if the total would pass the cap. */
int64_t retain_add(struct retain *r, struct retain_cmd *rc, bool complete, const void *data,
		   size_t len);
/* Drops the entries numbered below n (the master has them). */
void retain_drop_below(struct retain *r, struct retain_cmd *rc, uint64_t n);
/* Unlinks and frees one record and its entries. */
void retain_cmd_free(struct retain *r, struct retain_cmd *rc);
/* A finished command with nothing left to deliver: its record can go. */
static inline bool retain_cmd_spent(const struct retain_cmd *rc)
{
	return !rc->cmd && rc->done && !rc->head;
}

#endif
