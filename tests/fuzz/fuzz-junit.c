/*
 * libFuzzer target for the JUnit XML (testreport-junit.c, libxml2) test-report parser
 * (fuzz-testreport.h has the checks).
 */
#define FUZZ_TESTREPORT_FORMAT TESTREPORT_JUNIT
#include "fuzz-testreport.h"
