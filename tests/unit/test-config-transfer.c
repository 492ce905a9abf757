/*
 * Unit tests for the transfer steps' declarations (config-step-transfer.c):
 * what each kind reads into struct config_transfer, the defaults, modes in
 * both forms, renderable paths, and the errors checkconfig shows.
 */
#include "tap.h"
#include "config-test.h"

#include "common/err.h"
#include "config/config.h"

#include <stdlib.h>
#include <string.h>

/* a builder b on worker w1 with these steps */
#define B(steps)                                                                                   \
	"worker { name = 'w1', password = secret('w1') }\n"                                        \
	"builder { name = 'b', workers = { 'w1' }, steps = { " steps " } }\n"

TEST(kinds_and_defaults)
{
	struct config *cfg = CONFIG_TEST_LOAD_OK(
		B("file_upload { workersrc = 'a.bin', masterdest = 'out/a.bin', mode = '0640', "
		  "  keepstamp = true, maxsize = 1000, url = 'http://x/a' },"
		  "directory_upload { workersrc = 'tree', masterdest = 'tree', compress = 'bz2' },"
		  "file_download { mastersrc = 'm.bin', workerdest = 'w.bin', mode = 384 },"
		  "string_download { s = interpolate('%(prop:buildername)s'), workerdest = 's' },"
		  "json_properties_download { workerdest = 'p.json', name = 'props' }"));
	if (!cfg)
		return;
	const struct config_builder *b = &cfg->builder[0];
	CHECK_INT(b->nsteps, 5);
	const struct config_step *s = b->steps;
	CHECK_INT(s[0].kind, CONFIG_STEP_FILE_UPLOAD);
	CHECK_STR(s[0].name, "file_upload");
	CHECK_STR(s[0].workdir, "build");
	CHECK_STR(s[0].transfer->src.text, "a.bin");
	CHECK_STR(s[0].transfer->dest.text, "out/a.bin");
	CHECK_STR(s[0].transfer->url.text, "http://x/a");
	CHECK_INT(s[0].transfer->mode, 0640);
	CHECK_INT(s[0].transfer->maxsize, 1000);
	CHECK(s[0].transfer->keepstamp);
	CHECK_INT(s[1].kind, CONFIG_STEP_DIRECTORY_UPLOAD);
	CHECK_STR(s[1].transfer->compress, "bz2");
	CHECK_INT(s[1].transfer->mode, -1);
	CHECK_INT(s[1].transfer->maxsize, 0);
	CHECK_INT(s[2].kind, CONFIG_STEP_FILE_DOWNLOAD);
	CHECK_INT(s[2].transfer->mode, 0600);
	CHECK_INT(s[3].kind, CONFIG_STEP_STRING_DOWNLOAD);
	CHECK(s[3].transfer->src.interp);
	CHECK_STR(s[3].transfer->src.text, "%(prop:buildername)s");
	CHECK_INT(s[4].kind, CONFIG_STEP_JSON_PROPERTIES_DOWNLOAD);
	CHECK_STR(s[4].name, "props");
	CHECK(!s[4].transfer->src.text);
	CHECK_STR(s[4].transfer->dest.text, "p.json");
	config_free(cfg);
}

TEST(errors)
{
	CHECK_ERR_HAS(B("file_upload { masterdest = 'x' }"), "'workersrc' is required");
	CHECK_ERR_HAS(B("file_upload { workersrc = 'x' }"), "'masterdest' is required");
	CHECK_ERR_HAS(B("file_upload { workersrc = 'x', masterdest = '/etc/x' }"),
		      "'masterdest' must be a relative path");
	CHECK_ERR_HAS(B("directory_upload { workersrc = 'x', masterdest = 'a/../../x' }"),
		      "'masterdest' must not contain '..'");
	CHECK_ERR_HAS(B("file_upload { workersrc = 'x', masterdest = 'y', mode = '0999' }"),
		      "'mode' must be permission bits");
	CHECK_ERR_HAS(B("file_upload { workersrc = 'x', masterdest = 'y', mode = 5000 }"),
		      "'mode' must be permission bits");
	CHECK_ERR_HAS(B("directory_upload { workersrc = 'x', masterdest = 'y', compress = 'xz' }"),
		      "'compress' must be \"gz\" or \"bz2\"");
	CHECK_ERR_HAS(B("string_download { s = 'x', workerdest = 'y', maxsize = 5 }"), "maxsize");
	CHECK_ERR_HAS(B("file_download { mastersrc = 'x', workerdest = 'y', keepstamp = true }"),
		      "keepstamp");
	CHECK_ERR_HAS(B("file_upload { workersrc = 'x', masterdest = 'y', maxsize = 0 }"),
		      "maxsize");
}

int main(void)
{
	config_test_basedir = "/tmp";
	setenv("KILN_SECRET_W1", "pw", 1);
	RUN(kinds_and_defaults);
	RUN(errors);
	return tap_done();
}
