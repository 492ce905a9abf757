/*
 * `kiln checkconfig BASEDIR` and `kiln create-master BASEDIR`.
 * (placeholder until the config loader lands)
 */
#include "client/cmd.h"

#include <stdio.h>

static int checkconfig_run(int argc, char **argv)
{
	fprintf(stderr, "kiln checkconfig: not built yet\n");
	return 1;
}

static int create_master_run(int argc, char **argv)
{
	fprintf(stderr, "kiln create-master: not built yet\n");
	return 1;
}

const struct cmd cmd_checkconfig = {"checkconfig", "BASEDIR",
				    "validate BASEDIR/master.lua without starting", checkconfig_run};
const struct cmd cmd_create_master = {"create-master", "BASEDIR",
				      "create BASEDIR with a commented sample master.lua",
				      create_master_run};
