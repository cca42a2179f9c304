/*
 * check_main.c - runs every unit-test suite (registered by gen_suites.sh).
 * CK_RUN_SUITE=gguf narrows the run; CK_FORK=no for gdb.  Fixture files are found
 * through APR_TEST_FIXTURES (default tests/fixtures) and APR_SHARED_FIXTURES
 * (default ../shared/fixtures; tests that need it skip when it is missing).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "suites.h"

int main(void)
{
    SRunner *sr = srunner_create(NULL);
    int failed;

    for (size_t i = 0; all_suites[i]; i++)
        srunner_add_suite(sr, all_suites[i]());
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    printf("unit: %d passed, %d failed\n", srunner_ntests_run(sr) - failed, failed);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
