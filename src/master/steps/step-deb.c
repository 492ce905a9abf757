/*
 * The Debian package steps (slice "measure"):
 *  - deb_build { }: dpkg-buildpackage (config-step-measure.c writes the
 *    command); the .changes file it names ("dpkg-genchanges ...
 *    -O../NAME.changes") becomes the property "deb-changes", as Buildbot's
 *    DebPbuilder sets it;
 *  - deb_lintian { }: lintian, as Buildbot's DebLintian: stdout lines
 *    starting "W: " and "E: " are counted (master/warnscan.h) into logs
 *    "N Warnings" / "N Errors", properties and numbers "lintian-warnings" /
 *    "lintian-errors"; FAILURE on errors or a failed lintian, WARNINGS on
 *    warnings.
 */
#include <stdio.h>
#include <string.h>

#include "common/xalloc.h"
#include "db/db.h"
#include "master/numscan.h"
#include "master/steps/step.h"
#include "master/warnscan.h"
#include "proto/msg.h"

/* A piece of stdout ('o') or stderr ('e') of an update, or 0. */
static char step_deb_output(const char *key, const msgpack_object *value, struct str *ret)
{
	char stream = !strcmp(key, "stdout") ? 'o' : !strcmp(key, "stderr") ? 'e' : 0;
	if (!stream)
		return 0;
	const msgpack_object *v = value;
	if (value->type == MSGPACK_OBJECT_ARRAY && value->via.array.size >= 1)
		v = &value->via.array.ptr[0];
	return proto_obj_str(v, ret) ? stream : 0;
}

/* ---- deb_build { } ---------------------------------------------------------- */

/* dpkg-buildpackage runs "dpkg-genchanges ... -O../NAME.changes" */
static const char *const step_deb_changes_re = "dpkg-genchanges .*-O\\.\\./([^ /]+\\.changes)";

static void step_deb_build_update(struct step *st, const char *key, const msgpack_object *value)
{
	struct str s;
	if (st->priv && step_deb_output(key, value, &s))
		numscan_feed(st->priv, s.p, s.len);
}

static void step_deb_build_done(struct step *st, int status, const char *failure)
{
	int results = step_command_results(st, status, failure);
	if (results >= 0) {
		step_finish(st, results);
		return;
	}
	const char *name;
	size_t len;
	if (st->priv) {
		numscan_finish(st->priv);
		if (numscan_value(st->priv, 0, &name, &len) > 0)
			step_set_property(st, "deb-changes", json_stringn(name, len),
					  "DebPbuilder");
	}
	step_finish(st, step_rc_results(st));
}

static const struct step_cmd_ops step_deb_build_ops = {step_deb_build_update, step_deb_build_done};

static void step_deb_build_start(struct step *st)
{
	struct numscan *scan = NULL;
	char *err = NULL;
	if (numscan_new(&step_deb_changes_re, 1, &scan, &err) < 0) {
		/* cannot happen: the regex is ours */
		step_log_header(st, "deb-changes: %s", err ? err : "cannot compile");
		free(err);
		step_finish(st, RESULTS_EXCEPTION);
		return;
	}
	st->priv = scan;
	step_shell_run(st, &step_deb_build_ops);
}

static void step_deb_build_free(struct step *st)
{
	numscan_free(st->priv);
	st->priv = NULL;
}

const struct step_kind step_kind_deb_build = {
	.kind = CONFIG_STEP_DEB_BUILD,
	.name = "deb_build",
	.describe = step_shell_describe,
	.start = step_deb_build_start,
	.free = step_deb_build_free,
};

/* ---- deb_lintian { } -------------------------------------------------------- */

enum { STEP_DEB_WARNINGS, STEP_DEB_ERRORS, STEP_DEB_NKINDS };

struct step_deb_lintian {
	struct warnscan_config *wc[STEP_DEB_NKINDS]; /* owned: "W: ", "E: " */
	struct warnscan *scan[STEP_DEB_NKINDS];      /* owned */
};

static void step_deb_lintian_update(struct step *st, const char *key, const msgpack_object *value)
{
	struct step_deb_lintian *l = st->priv;
	struct str s;
	/* lintian's tags come on stdout (Buildbot's observer reads only it) */
	if (step_deb_output(key, value, &s) != 'o')
		return;
	for (int k = 0; k < STEP_DEB_NKINDS; k++)
		warnscan_feed(l->scan[k], 'o', s.p, s.len);
}

/* One kind's count: its log "N Warnings", property and number. */
static uint64_t step_deb_lintian_count(struct step *st, int k)
{
	static const char *const logname[] = {"Warnings", "Errors"};
	static const char *const number[] = {"lintian-warnings", "lintian-errors"};
	struct step_deb_lintian *l = st->priv;
	warnscan_finish(l->scan[k]);
	uint64_t n = warnscan_count(l->scan[k]);
	if (n) {
		char name[64];
		snprintf(name, sizeof(name), "%llu %s", (unsigned long long)n, logname[k]);
		size_t len;
		const char *text = warnscan_log(l->scan[k], &len);
		int64_t logid;
		if (step_add_log(st, name, 't', &logid) >= 0) {
			step_log_text(st, logid, text, len);
			step_log_close(st, logid);
		}
	}
	step_set_property(st, number[k], json_integer((json_int_t)n), "DebLintian");
	step_record_number(st, number[k], (double)n);
	return n;
}

static void step_deb_lintian_done(struct step *st, int status, const char *failure)
{
	int results = step_command_results(st, status, failure);
	if (results >= 0) {
		step_finish(st, results);
		return;
	}
	uint64_t warnings = step_deb_lintian_count(st, STEP_DEB_WARNINGS);
	uint64_t errors = step_deb_lintian_count(st, STEP_DEB_ERRORS);
	char desc[96];
	snprintf(desc, sizeof(desc), "Lintian: %llu warnings, %llu errors",
		 (unsigned long long)warnings, (unsigned long long)errors);
	step_set_description(st, desc);
	results = step_rc_results(st);
	if (errors)
		results = db_results_worst(results, RESULTS_FAILURE);
	else if (warnings)
		results = db_results_worst(results, RESULTS_WARNINGS);
	step_finish(st, results);
}

static const struct step_cmd_ops step_deb_lintian_ops = {step_deb_lintian_update,
							 step_deb_lintian_done};

static void step_deb_lintian_start(struct step *st)
{
	static const char *const pattern[] = {"W: ", "E: "};
	struct step_deb_lintian *l = xcalloc(1, sizeof(*l));
	st->priv = l;
	for (int k = 0; k < STEP_DEB_NKINDS; k++) {
		char *err = NULL;
		if (warnscan_config_new(&pattern[k], 1, &l->wc[k], &err) < 0) {
			/* cannot happen: the patterns are ours */
			step_log_header(st, "lintian patterns: %s", err ? err : "cannot compile");
			free(err);
			step_finish(st, RESULTS_EXCEPTION);
			return;
		}
		l->scan[k] = warnscan_new(l->wc[k]);
	}
	step_shell_run(st, &step_deb_lintian_ops);
}

static void step_deb_lintian_free(struct step *st)
{
	struct step_deb_lintian *l = st->priv;
	if (!l)
		return;
	for (int k = 0; k < STEP_DEB_NKINDS; k++) {
		warnscan_free(l->scan[k]);
		warnscan_config_free(l->wc[k]);
	}
	free(l);
	st->priv = NULL;
}

static char *step_deb_lintian_describe(const struct step *st)
{
	(void)st;
	return xstrdup("Lintian running"); /* Buildbot's description */
}

const struct step_kind step_kind_deb_lintian = {
	.kind = CONFIG_STEP_DEB_LINTIAN,
	.name = "deb_lintian",
	.describe = step_deb_lintian_describe,
	.start = step_deb_lintian_start,
	.free = step_deb_lintian_free,
};
