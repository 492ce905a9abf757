/*
 * `kiln master -d BASEDIR`: runs the master daemon in the foreground.
 * (placeholder until the master lands)
 */
#include "client/cmd.h"

#include <stdio.h>

static int master_run(int argc, char **argv)
{
	fprintf(stderr, "kiln master: not built yet\n");
	return 1;
}

const struct cmd cmd_master = {"master", "-d BASEDIR", "run the master daemon", master_run, false};
