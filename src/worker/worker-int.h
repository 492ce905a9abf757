/*
 * Private glue between worker.c (dispatch and connection state), cmd.c (a
 * command's life) and worker-info.c (get_worker_info).  Nothing outside
 * src/worker/ includes this.
 */
#ifndef KILN_WORKER_WORKER_INT_H
#define KILN_WORKER_WORKER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/str.h"

struct worker;
struct cmd;
struct cmd_type;
struct proto_enc;

/* worker.c */
/* Sends an encoded message if connected (else drops it, logged at debug). */
void worker_send(struct worker *w, struct proto_enc *e);
/* Pauses or resumes every command's output from the send queue and the
 * unanswered-request count. */
void worker_update_pause(struct worker *w);

/* Buffers (and sends, when connected and not resynchronising) one message
 * of a command that has a re-attach record: an update's packed args
 * (complete false) or a complete's packed failure. */
void worker_retain_push(struct worker *w, struct cmd *c, bool complete, const void *data,
			size_t len);

/* cmd.c */
/* A new command in w's list with its batch and flush timer; builder is
 * owned (may be NULL).  It is not started. */
struct cmd *cmd_new(struct worker *w, const struct cmd_type *type, struct str id, char *builder);
/* Unlinks c and frees it once its timer has closed (no `complete` sent). */
void cmd_destroy(struct cmd *c);

/* worker-info.c */
/* Answers get_worker_info with sequence number seq. */
void worker_info_reply(struct worker *w, int64_t seq);

#endif
