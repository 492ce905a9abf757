#ifndef GREET_H
#define GREET_H
#include <stddef.h>

/* Writes "hello, NAME" (NAME "kiln" when NULL or empty) into out, at most
 * size bytes with the NUL; returns the length it needed, as snprintf. */
int greet(char *out, size_t size, const char *name);

#endif
