/*
 * libFuzzer target for the TAP (testreport-tap.c) test-report parser
 * (fuzz-testreport.h has the checks).
 */
#define FUZZ_TESTREPORT_FORMAT TESTREPORT_TAP
#include "fuzz-testreport.h"
