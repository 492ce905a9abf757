/*
 * libFuzzer target for the commit-mail parser (mailparse_parse,
 * src/master/changes/mailparse.c; slice "alerts"): any bytes as a mail
 * dropped into a maildir_source's maildir.  Parsing ends in one change or
 * -EINVAL with a reason; a change has an author and comments, and no file
 * is listed twice.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "master/changes/change.h"
#include "master/changes/mailparse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct change c;
	enum mailparse_kind k;
	const char *why = NULL;
	if (mailparse_parse((const char *)data, size, &c, &k, &why) < 0) {
		if (!why)
			abort();
		return 0;
	}
	if (!c.author || !*c.author || !c.comments)
		abort();
	for (size_t a = 0; a < c.nfiles; a++)
		for (size_t b = a + 1; b < c.nfiles && b < a + 64; b++)
			if (!strcmp(c.files[a], c.files[b]))
				abort();
	change_release(&c);
	return 0;
}
