/*
 * apply_patch { }: applies a try build's patch (the buildset's, if any)
 * with patch(1) or `git apply` in the step's workdir; SKIPPED without one.
 */
#define LOG_SUBSYS "build"

#include <stdio.h>

#include "common/log.h"
#include "common/xalloc.h"
#include "db/db.h"
#include "master/engine-int.h"
#include "master/master.h"
#include "master/steps/step.h"
#include "proto/msg.h"

static char *step_patch_describe(const struct step *st)
{
	(void)st;
	return xstrdup("'patch'");
}

static void step_patch_done(struct step *st, int status, const char *failure)
{
	int results = step_command_results(st, status, failure);
	step_finish(st, results >= 0 ? results : step_rc_results(st));
}

static const struct step_cmd_ops step_patch_ops = {NULL, step_patch_done};

static void step_patch_start(struct step *st)
{
	struct build *b = st->b;
	struct db_patch_data patch = {0};
	int r = build_patch(b, NULL, &patch); /* read as the build started */
	if (r <= 0) {
		step_log_header(st, "no patch to apply");
		step_finish(st, RESULTS_SKIPPED);
		return;
	}
	char level[16];
	snprintf(level, sizeof(level), "-p%d", patch.level);
	char *argv[8] = {0};
	size_t k = 0;
	if (st->cfg->patch_with_git) {
		argv[k++] = "git";
		argv[k++] = "apply";
		argv[k++] = "--verbose";
		argv[k++] = level;
	} else {
		argv[k++] = "patch";
		argv[k++] = level;
		argv[k++] = "--forward";
		argv[k++] = "--batch";
	}
	step_log_header(st, "applying a %zu-byte patch with '%s %s'", patch.len, argv[0], level);
	source_patch_log(st, patch.body, patch.len);
	struct proto_enc args;
	proto_enc_init(&args);
	uint32_t nargs;
	r = step_shell_args(st, argv, NULL, patch.subdir, patch.body, patch.len, &args, &nargs);
	db_patch_data_release(&patch);
	if (r < 0) {
		proto_enc_release(&args);
		step_finish(st, RESULTS_EXCEPTION);
		return;
	}
	r = step_command(st, "shell", &args, nargs, &step_patch_ops);
	proto_enc_release(&args);
	if (r < 0)
		step_finish(st, step_unstarted_results(st));
}

const struct step_kind step_kind_patch = {
	.kind = CONFIG_STEP_PATCH,
	.name = "apply_patch",
	.describe = step_patch_describe,
	.start = step_patch_start,
};
