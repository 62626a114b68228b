/*
 * Unit tests for the step timestamps (core/prof.c, built here with
 * VERBUS_PROF whatever the build's option): a child process marks, exits,
 * and the file it leaves must hold every mark, in order.
 */
#include "core/prof.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#define MARKS 1000

/* Run a child that marks MARKS x 5 points, with VERBUS_PROF_DIR=@dir
 * (NULL: unset); returns its pid once it has exited 0. */
static pid_t run_child(const char *dir)
{
	pid_t pid = fork();
	int i, st;

	assert_true(pid >= 0);
	if (pid == 0) {
		if (dir)
			setenv("VERBUS_PROF_DIR", dir, 1);
		else
			unsetenv("VERBUS_PROF_DIR");
		for (i = 0; i < MARKS; i++) {
			VBI_PROF(VBI_PROF_PUBLISH);
			VBI_PROF(VBI_PROF_POST);
			VBI_PROF(VBI_PROF_ARRIVED);
			VBI_PROF(VBI_PROF_DELIVER);
			VBI_PROF(VBI_PROF_DONE);
		}
		exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	return pid;
}

static void test_prof_marks_written_at_exit(void **state)
{
	char dir[] = "/tmp/vb_prof_XXXXXX", path[64];
	unsigned long long t, last = 0;
	unsigned point;
	double rate;
	int pid, n = 0;
	pid_t child;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	child = run_child(dir);
	snprintf(path, sizeof(path), "%s/prof.%d", dir, (int)child);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%d %lf", &pid, &rate), 2);
	assert_int_equal(pid, (int)child);
	assert_true(rate > 0);
	while (fscanf(f, "%llu %u", &t, &point) == 2) {
		assert_int_equal(point, (unsigned)(n % 5) + 1);
		assert_true(t >= last);
		last = t;
		n++;
	}
	fclose(f);
	assert_int_equal(n, MARKS * 5);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

/* Without VERBUS_PROF_DIR nothing is written. */
static void test_prof_nothing_without_dir(void **state)
{
	char dir[] = "/tmp/vb_prof_XXXXXX", path[64];
	pid_t child;

	(void)state;
	assert_non_null(mkdtemp(dir));
	child = run_child(NULL);
	snprintf(path, sizeof(path), "%s/prof.%d", dir, (int)child);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prof_marks_written_at_exit),
		cmocka_unit_test(test_prof_nothing_without_dir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
