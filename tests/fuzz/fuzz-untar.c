/*
 * libFuzzer target for the directory upload's extraction
 * (transfer_untar_memory in src/master/transfer.c): any bytes as a tar
 * stream (plain, gzip or bzip2) extracted into a fresh directory.  Whatever
 * the input, nothing may appear beside that directory, and inside it only
 * regular files, directories and symbolic links whose targets stay inside,
 * with no setuid or setgid bits; a failure always says why.
 */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dirent.h>

#include "common/xalloc.h"
#include "master/transfer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char base[] = "/tmp/kiln-fuzz-untar.XXXXXX";
static char *dest;
static size_t dest_len;

static int fuzz_untar_check(const char *path, const struct stat *st, int type, struct FTW *f)
{
	(void)type;
	(void)f;
	if (strncmp(path, dest, dest_len) != 0)
		abort();
	if (st->st_mode & (S_ISUID | S_ISGID))
		abort();
	if (S_ISLNK(st->st_mode)) {
		/* the target, resolved now, is inside (or dangling inside) */
		char *real = realpath(path, NULL);
		if (real && strncmp(real, dest, dest_len) != 0)
			abort();
		free(real);
	} else if (!S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode)) {
		abort();
	}
	return 0;
}

static int fuzz_untar_remove(const char *path, const struct stat *st, int type, struct FTW *f)
{
	(void)st;
	(void)type;
	(void)f;
	chmod(path, 0700);
	remove(path);
	return 0;
}

static void fuzz_untar_cleanup(void)
{
	rmdir(base);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!dest) {
		if (!mkdtemp(base))
			abort();
		atexit(fuzz_untar_cleanup);
		dest = xasprintf("%s/d", base);
		dest_len = strlen(dest);
	}
	if (mkdir(dest, 0755) < 0)
		abort();
	char *err = NULL;
	int64_t r = transfer_untar_memory(data, size, dest, 1 << 20, &err);
	if (r < 0 && (!err || !*err))
		abort();
	free(err);
	nftw(dest, fuzz_untar_check, 16, FTW_PHYS);
	/* nothing beside dest */
	DIR *d = opendir(base);
	struct dirent *de;
	while (d && (de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && strcmp(de->d_name, "d"))
			abort();
	if (d)
		closedir(d);
	nftw(dest, fuzz_untar_remove, 16, FTW_PHYS | FTW_DEPTH);
	return 0;
}
