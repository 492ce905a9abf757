/*
 * tree_size { }: `du -s -k DIR` on the worker, as Buildbot's TreeSize: the
 * leading number of its stdout becomes the property "tree-size-KiB", the
 * state string "treesize N KiB" and the number "tree-size-KiB"; no number
 * is WARNINGS ("treesize unknown"), a failed du FAILURE.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "common/limits.h"
#include "common/xalloc.h"
#include "db/db.h"
#include "master/steps/step.h"
#include "proto/msg.h"

struct step_treesize {
	struct buf out; /* du's stdout, its first KILN_TREESIZE_MAX_OUTPUT bytes */
};

static void step_treesize_update(struct step *st, const char *key, const msgpack_object *value)
{
	struct step_treesize *t = st->priv;
	if (strcmp(key, "stdout"))
		return;
	const msgpack_object *v = value;
	if (value->type == MSGPACK_OBJECT_ARRAY && value->via.array.size >= 1)
		v = &value->via.array.ptr[0];
	struct str s;
	if (!proto_obj_str(v, &s))
		return;
	size_t room = t->out.max - t->out.len;
	/* only the start matters: what does not fit is dropped */
	if (buf_add(&t->out, s.p, s.len < room ? s.len : room) < 0)
		buf_reset(&t->out);
}

/* du's KiB: the digits starting its output (Buildbot's ^(\d+)); -1 if none
 * or past what a long long holds. */
static long long step_treesize_kib(const struct buf *out)
{
	long long kib = 0;
	size_t i = 0;
	for (; i < out->len && out->ptr[i] >= '0' && out->ptr[i] <= '9'; i++) {
		int d = out->ptr[i] - '0';
		if (kib > (LLONG_MAX - d) / 10)
			return -1;
		kib = kib * 10 + d;
	}
	return i ? kib : -1;
}

static void step_treesize_done(struct step *st, int status, const char *failure)
{
	struct step_treesize *t = st->priv;
	int results = step_command_results(st, status, failure);
	if (results >= 0) {
		step_finish(st, results);
		return;
	}
	long long kib = step_treesize_kib(&t->out);
	if (kib >= 0) {
		char desc[64];
		snprintf(desc, sizeof(desc), "treesize %lld KiB", kib);
		step_set_description(st, desc);
		step_set_property(st, "tree-size-KiB", json_integer(kib), "treesize");
		step_record_number(st, "tree-size-KiB", (double)kib);
	} else {
		step_set_description(st, "treesize unknown");
	}
	results = step_rc_results(st);
	if (results == RESULTS_SUCCESS && kib < 0)
		results = RESULTS_WARNINGS;
	step_finish(st, results);
}

static const struct step_cmd_ops step_treesize_ops = {step_treesize_update, step_treesize_done};

static void step_treesize_start(struct step *st)
{
	struct step_treesize *t = xcalloc(1, sizeof(*t));
	buf_init(&t->out, KILN_TREESIZE_MAX_OUTPUT);
	st->priv = t;
	step_shell_run(st, &step_treesize_ops);
}

static void step_treesize_free(struct step *st)
{
	struct step_treesize *t = st->priv;
	if (!t)
		return;
	buf_release(&t->out);
	free(t);
	st->priv = NULL;
}

static char *step_treesize_describe(const struct step *st)
{
	(void)st;
	return xstrdup("measuring tree size"); /* Buildbot's description */
}

const struct step_kind step_kind_tree_size = {
	.kind = CONFIG_STEP_TREE_SIZE,
	.name = "tree_size",
	.describe = step_treesize_describe,
	.start = step_treesize_start,
	.free = step_treesize_free,
};
