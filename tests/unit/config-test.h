/*
 * Loading master.lua text in the config unit tests (tests/unit/test-config*.c):
 * one loader that holds every load to config_load_string's contract, and
 * checks that report at the caller's file:line.  Header-only on purpose:
 * tap.h keeps its counters per translation unit, so a helper compiled on its
 * own would record failures where no test reads them.
 *
 *   config_test_basedir = tmpdir;        (once, in main(); NULL by default)
 *   struct config *cfg = CONFIG_TEST_LOAD_OK(W B("..."));
 *   CHECK_ERR(W B("..."), "master.lua:2: builder 'b': ...");
 */
#ifndef KILN_TEST_CONFIG_TEST_H
#define KILN_TEST_CONFIG_TEST_H

#include "tap.h"
#include "common/err.h"
#include "config/config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* The base directory of every load below: secret('x') reads
 * BASEDIR/secrets/x, else KILN_SECRET_X; NULL: the environment only. */
static const char *config_test_basedir;

/* Loads text as master.lua from basedir.  Returns the config (free with
 * config_free), or NULL with *err set (the caller frees it).  The test fails
 * when the load breaks config_load_string's contract: a failure other than
 * KILN_ECONFIG or without a message, or a success that leaves one. */
static inline struct config *config_test_load_in(const char *basedir, const char *text, char **err)
{
	struct config *cfg = NULL;
	*err = NULL;
	int r = config_load_string("master.lua", text, strlen(text), basedir, &cfg, err);
	if (r < 0) {
		CHECK_INT(r, KILN_ECONFIG);
		CHECK(*err != NULL);
		return NULL;
	}
	CHECK(*err == NULL);
	return cfg;
}

/* The same from config_test_basedir. */
static inline struct config *config_test_load(const char *text, char **err)
{
	return config_test_load_in(config_test_basedir, text, err);
}

/* The error of loading text (from config_test_basedir), owned, or
 * "(loaded)" when it loads. */
static inline char *config_test_error(const char *text)
{
	char *err = NULL;
	struct config *cfg = config_test_load(text, &err);
	if (cfg) {
		config_free(cfg);
		return strdup("(loaded)");
	}
	return err;
}

/* The config of text that must load (from basedir), or NULL after failing
 * the test with the error (at the caller's line). */
#define CONFIG_TEST_LOAD_OK_IN(basedir, text)                                                      \
	({                                                                                         \
		char *ctl_err_;                                                                    \
		struct config *ctl_cfg_ = config_test_load_in((basedir), (text), &ctl_err_);       \
		if (!ctl_cfg_)                                                                     \
			TAP_FAIL("config did not load: %s", ctl_err_ ? ctl_err_ : "(no message)"); \
		free(ctl_err_);                                                                    \
		ctl_cfg_;                                                                          \
	})
/* The same from config_test_basedir. */
#define CONFIG_TEST_LOAD_OK(text) CONFIG_TEST_LOAD_OK_IN(config_test_basedir, text)

/* Does err match want: the whole message (whole), or a part of it? */
static inline bool config_test_matches(const char *err, const char *want, bool whole)
{
	return err && (whole ? !strcmp(err, want) : strstr(err, want) != NULL);
}

/* Loading text must fail with an error that matches want. */
#define CONFIG_TEST_CHECK_ERR_(text, want, whole)                                                  \
	do {                                                                                       \
		const char *cte_want_ = (want);                                                    \
		char *cte_err_;                                                                    \
		struct config *cte_cfg_ = config_test_load((text), &cte_err_);                     \
		if (cte_cfg_) {                                                                    \
			TAP_FAIL("config loaded, wanted error '%s'", cte_want_);                   \
			config_free(cte_cfg_);                                                     \
		} else if (!config_test_matches(cte_err_, cte_want_, (whole)))                     \
			TAP_FAIL("error '%s' %s '%s'", cte_err_ ? cte_err_ : "(none)",             \
				 (whole) ? "is not" : "does not contain", cte_want_);              \
		free(cte_err_);                                                                    \
	} while (0)

/* Loading text fails with exactly the error want. */
#define CHECK_ERR(text, want) CONFIG_TEST_CHECK_ERR_(text, want, true)
/* Loading text fails with an error that contains want. */
#define CHECK_ERR_HAS(text, want) CONFIG_TEST_CHECK_ERR_(text, want, false)

#endif
