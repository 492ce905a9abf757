/*
 * compile { }: a command whose output's warnings are counted, as
 * Buildbot's Compile (WarningCountingShellCommand): every stdout and stderr
 * piece also goes through a warnscan (master/warnscan.h); at the end the
 * warnings go to a log "warnings (N)", the count to the property
 * "warnings-count" (added to an earlier step's, as Buildbot) and the
 * results are the command's combined with the warnings' (WARNINGS with
 * any, FAILURE past max_warnings).
 */
#define LOG_SUBSYS "build"

#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/xalloc.h"
#include "db/db.h"
#include "master/engine-int.h"
#include "master/steps/step.h"
#include "master/warnscan.h"
#include "proto/msg.h"

struct step_compile {
	struct warnscan_config *wc;
	struct warnscan *scan;
};

static void step_compile_update(struct step *st, const char *key, const msgpack_object *value)
{
	struct step_compile *c = st->priv;
	char stream = !strcmp(key, "stdout") ? 'o' : !strcmp(key, "stderr") ? 'e' : 0;
	if (!stream || !c->scan)
		return;
	const msgpack_object *t = value;
	if (value->type == MSGPACK_OBJECT_ARRAY && value->via.array.size >= 1)
		t = &value->via.array.ptr[0];
	struct str s;
	if (proto_obj_str(t, &s))
		warnscan_feed(c->scan, stream, s.p, s.len);
}

/* The warnings: their log, the property, the results they give. */
static int step_compile_warnings(struct step *st)
{
	struct step_compile *c = st->priv;
	const struct config_warnings *w = st->cfg->warnings;
	warnscan_finish(c->scan);
	uint64_t n = warnscan_count(c->scan);
	if (warnscan_error(c->scan))
		step_log_header(st, "%s", warnscan_error(c->scan));
	if (n) {
		char name[64];
		snprintf(name, sizeof(name), "warnings (%llu)", (unsigned long long)n);
		size_t len;
		const char *text = warnscan_log(c->scan, &len);
		int64_t logid;
		if (step_add_log(st, name, 't', &logid) >= 0) {
			step_log_text(st, logid, text, len);
			step_log_close(st, logid);
		}
	}
	/* as Buildbot: added to what earlier compile steps counted */
	json_t *old = json_array_get(json_object_get(st->b->props, "warnings-count"), 0);
	json_int_t total = (json_int_t)n + (json_is_integer(old) ? json_integer_value(old) : 0);
	step_set_property(st, "warnings-count", json_integer(total), "WarningCountingShellCommand");
	step_record_number(st, "warnings", (double)n);
	return warnscan_result(n, w->max_warnings,
			       w->over_warns ? RESULTS_WARNINGS : RESULTS_FAILURE);
}

static void step_compile_done(struct step *st, int status, const char *failure)
{
	int results = step_command_results(st, status, failure);
	if (results >= 0) {
		step_finish(st, results);
		return;
	}
	int warn = step_compile_warnings(st);
	step_finish(st, db_results_worst(step_rc_results(st), warn));
}

static const struct step_cmd_ops step_compile_ops = {step_compile_update, step_compile_done};

static void step_compile_start(struct step *st)
{
	const struct config_warnings *w = st->cfg->warnings;
	struct step_compile *c = xcalloc(1, sizeof(*c));
	st->priv = c;
	char *err = NULL;
	int r = warnscan_config_new((const char *const *)w->patterns, w->npatterns, &c->wc, &err);
	for (size_t i = 0; r >= 0 && i < w->nsupp; i++)
		r = warnscan_config_suppress(c->wc, w->supp[i].file, w->supp[i].warning,
					     w->supp[i].start, w->supp[i].end, &err);
	if (r < 0) {
		step_log_header(st, "warning patterns: %s", err ? err : "cannot compile");
		free(err);
		step_finish(st, RESULTS_EXCEPTION);
		return;
	}
	c->scan = warnscan_new(c->wc);
	step_shell_run(st, &step_compile_ops);
}

static void step_compile_free(struct step *st)
{
	struct step_compile *c = st->priv;
	if (!c)
		return;
	warnscan_free(c->scan);
	warnscan_config_free(c->wc);
	free(c);
	st->priv = NULL;
}

const struct step_kind step_kind_compile = {
	.kind = CONFIG_STEP_COMPILE,
	.name = "compile",
	.describe = step_shell_describe,
	.start = step_compile_start,
	.free = step_compile_free,
};
