/*
 * check_main.c - runs every unit-test suite (registered by gen_suites.sh).
 * CK_RUN_SUITE=gguf narrows the run; CK_FORK=no for gdb.  Fixture files are found
 * through APR_TEST_FIXTURES (default tests/fixtures) and APR_SHARED_FIXTURES
 * (default ../shared/fixtures; tests that need it skip when it is missing).
 *
 * Skips: tu_skip (tu.h) appends one line per skipped test to the file named by
 * APR_TEST_SKIPS, which this runner creates; the summary counts them apart:
 *   unit: N passed, N failed, N skipped
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "suites.h"

/* Lines in the skip log (each skipped test wrote one). */
static int count_skips(const char *path)
{
    FILE *f = fopen(path, "r");
    int n = 0, c;

    if (!f)
        return 0;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

int main(void)
{
    char skips[] = "/tmp/apr-unit-skips.XXXXXX";
    int fd = mkstemp(skips), failed, run, skipped = 0;
    SRunner *sr = srunner_create(NULL);

    if (fd >= 0) {
        close(fd);
        setenv("APR_TEST_SKIPS", skips, 1);
    }
#if defined(__SANITIZE_ADDRESS__)
    /* Test timeouts guard against hangs, not speed: AddressSanitizer runs the code 2-5x
     * slower (more on a loaded machine), so its build gives every test 5x the time.
     * Check reads the multiplier when the suites set their timeouts, below. */
    setenv("CK_TIMEOUT_MULTIPLIER", "5", 0);
#endif
    for (size_t i = 0; all_suites[i]; i++)
        srunner_add_suite(sr, all_suites[i]());
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    run = srunner_ntests_run(sr);
    if (fd >= 0) {
        skipped = count_skips(skips);
        unlink(skips);
    }
    if (skipped > run - failed)
        skipped = run - failed;
    printf("unit: %d passed, %d failed, %d skipped\n", run - failed - skipped, failed, skipped);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
