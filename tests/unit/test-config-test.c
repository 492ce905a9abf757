/*
 * The config tests' own loader and checks (tests/unit/config-test.h): each
 * check passes on what it wants and fails on anything else, so that a config
 * test built on them can fail.  A failure wanted here is caught with
 * test_fails() and cleared; its "# file:line" line still shows in the log.
 */
#include "tap.h"
#include "config-test.h"
#include "common/xalloc.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define W1 "worker { name = 'w1', password = secret('w1') }\n"
#define B1 "builder { name = 'b', workers = { 'w1' }, steps = { shell { command = 'true' } } }\n"

/* Runs the checks in stmt; evaluates to 1 when they failed the test (the
 * mark is cleared: the test itself goes on). */
#define test_fails(stmt)                                                                           \
	({                                                                                         \
		int tf_saved_ = tap_cur_failed;                                                    \
		tap_cur_failed = 0;                                                                \
		printf("# a failure is wanted here:\n");                                           \
		stmt;                                                                              \
		int tf_failed_ = tap_cur_failed;                                                   \
		tap_cur_failed = tf_saved_;                                                        \
		tf_failed_;                                                                        \
	})

/* Runs the checks in stmt; evaluates to 1 when they passed. */
#define test_passes(stmt)                                                                          \
	({                                                                                         \
		int tp_saved_ = tap_cur_failed;                                                    \
		tap_cur_failed = 0;                                                                \
		stmt;                                                                              \
		int tp_passed_ = !tap_cur_failed;                                                  \
		tap_cur_failed = tp_saved_;                                                        \
		tp_passed_;                                                                        \
	})

TEST(load)
{
	char *err = NULL;
	struct config *cfg = NULL;
	CHECK(test_passes(cfg = config_test_load(W1 B1, &err)));
	CHECK(cfg != NULL && err == NULL);
	config_free(cfg);
	CHECK(test_passes(cfg = config_test_load("error('boom', 0)", &err)));
	CHECK(cfg == NULL);
	CHECK_STR(err, "master.lua: boom");
	free(err);
}

TEST(load_ok)
{
	struct config *cfg = NULL;
	CHECK(test_passes(cfg = CONFIG_TEST_LOAD_OK(W1 B1)));
	CHECK(cfg != NULL);
	config_free(cfg);
	CHECK(test_fails(cfg = CONFIG_TEST_LOAD_OK("error('boom', 0)")));
	CHECK(cfg == NULL);
}

TEST(check_err)
{
	CHECK(test_passes(CHECK_ERR("error('boom', 0)", "master.lua: boom")));
	/* the whole message, not a part */
	CHECK(test_fails(CHECK_ERR("error('boom', 0)", "master.lua: boo")));
	CHECK(test_fails(CHECK_ERR("error('boom', 0)", "boom")));
	/* a config that loads is a failure */
	CHECK(test_fails(CHECK_ERR(W1 B1, "master.lua: boom")));
}

TEST(check_err_has)
{
	CHECK(test_passes(CHECK_ERR_HAS("error('a boom here', 0)", "boom")));
	CHECK(test_passes(CHECK_ERR_HAS("error('boom', 0)", "master.lua: boom")));
	CHECK(test_fails(CHECK_ERR_HAS("error('boom', 0)", "bang")));
	CHECK(test_fails(CHECK_ERR_HAS(W1 B1, "boom")));
}

/* config_test_basedir: secrets come from its secrets/ folder; the _IN forms
 * take their own. */
TEST(basedir)
{
	char dir[] = "/tmp/kiln-test-config-test-XXXXXX";
	if (!mkdtemp(dir)) {
		TAP_FAIL("mkdtemp");
		return;
	}
	char *secrets = xasprintf("%s/secrets", dir);
	char *file = xasprintf("%s/w1", secrets);
	CHECK_INT(mkdir(secrets, 0700), 0);
	int fd = open(file, O_WRONLY | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0);
	if (fd >= 0) {
		CHECK_INT(write(fd, "from-file", 9), 9);
		close(fd);
	}
	setenv("KILN_SECRET_W1", "from-env", 1);

	config_test_basedir = dir;
	struct config *cfg = CONFIG_TEST_LOAD_OK(W1);
	if (cfg)
		CHECK_STR(cfg->worker[0].password, "from-file");
	config_free(cfg);
	cfg = CONFIG_TEST_LOAD_OK_IN(NULL, W1);
	if (cfg)
		CHECK_STR(cfg->worker[0].password, "from-env");
	config_free(cfg);
	config_test_basedir = NULL;
	cfg = CONFIG_TEST_LOAD_OK(W1);
	if (cfg)
		CHECK_STR(cfg->worker[0].password, "from-env");
	config_free(cfg);

	unsetenv("KILN_SECRET_W1");
	unlink(file);
	rmdir(secrets);
	rmdir(dir);
	free(file);
	free(secrets);
}

int main(void)
{
	setenv("KILN_SECRET_W1", "pw", 1);
	RUN(load);
	RUN(load_ok);
	RUN(check_err);
	RUN(check_err_has);
	RUN(basedir);
	return tap_done();
}
