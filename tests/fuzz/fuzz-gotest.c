/*
 * libFuzzer target for the go test -json (testreport-gotest.c) test-report parser
 * (fuzz-testreport.h has the checks).
 */
#define FUZZ_TESTREPORT_FORMAT TESTREPORT_GOTEST
#include "fuzz-testreport.h"
