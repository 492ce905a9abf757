/*
 * log { }: text (a constant or a renderable of the build's properties)
 * written into a text log of the step, secrets masked, as Buildbot's
 * LogRenderable.
 */
#include <string.h>

#include "common/xalloc.h"
#include "db/db.h"
#include "master/steps/step.h"

static char *step_log_describe(const struct step *st)
{
	(void)st;
	return xstrdup("Logging");
}

static void step_log_start(struct step *st)
{
	const struct config_step *s = st->cfg;
	_cleanup_free_ char *text = NULL;
	if (step_render(st, &s->log_text, "text", &text) < 0) {
		step_finish(st, RESULTS_EXCEPTION);
		return;
	}
	int64_t logid;
	int r = step_add_log(st, s->log_name, 't', &logid);
	if (r >= 0 && text && *text)
		r = step_log_text(st, logid, text, strlen(text));
	if (r >= 0)
		r = step_log_close(st, logid);
	if (r >= 0)
		step_set_description(st, "Log captured.");
	step_finish(st, r < 0 ? RESULTS_EXCEPTION : RESULTS_SUCCESS);
}

const struct step_kind step_kind_log = {
	.kind = CONFIG_STEP_LOG,
	.name = "log",
	.describe = step_log_describe,
	.start = step_log_start,
};
