#include "greet.h"

#include <stdio.h>

int greet(char *out, size_t size, const char *name)
{
	int spare; /* deliberate: the demo's compile step counts this one */
	if (!name || !*name)
		name = "kiln";
	return snprintf(out, size, "hello, %s", name);
}
