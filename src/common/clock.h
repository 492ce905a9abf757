/*
 * Time helpers.  Wall-clock times are double seconds since the epoch
 * (sub-second precision, as stored in the database); monotonic times are
 * for measuring durations only.
 */
#ifndef KILN_CLOCK_H
#define KILN_CLOCK_H

#include <stdint.h>

double clock_wall(void);
uint64_t clock_mono_ms(void);

#endif
