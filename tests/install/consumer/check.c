/*
 * check.c - a tiny libverbus user that needs no RDMA device: what
 * tests/install/install-test.sh builds against the installed package and
 * runs.
 *
 * It checks that the library it was linked with agrees with the header it
 * was compiled with, and that the calls that must fail without a broker
 * fail cleanly: an error code, the output parameter untouched, no crash.
 */
#include <verbus/verbus.h>

#include <stdio.h>
#include <string.h>

#define STR_(x) #x
#define STR(x) STR_(x)
#define HDR_VERSION           \
	STR(VB_VERSION_MAJOR) \
	"." STR(VB_VERSION_MINOR) "." STR(VB_VERSION_PATCH)

static int failures;
/* What vb_connect() must leave in its output when it fails. */
static char sentinel;
#define UNTOUCHED ((struct vb_conn *)&sentinel)

static void expect(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "install-check: FAIL: %s\n", what);
		failures++;
	}
}

int main(void)
{
	struct vb_opts o = VB_OPTS_INIT;
	struct vb_conn *c = UNTOUCHED;
	int rc;

	expect(strcmp(vb_version(), HDR_VERSION) == 0,
	       "vb_version() matches the header's VB_VERSION_*");
	expect(strcmp(vb_errname(VB_EAGAIN), "VB_EAGAIN") == 0,
	       "vb_errname(VB_EAGAIN)");
	expect(strcmp(vb_strerror(VB_OK), "success") == 0,
	       "vb_strerror(VB_OK)");
	expect(strcmp(vb_strerror(12345), "unknown error") == 0,
	       "vb_strerror() of an unknown code");

	rc = vb_connect("bogus://127.0.0.1:7700", NULL, &c);
	expect(rc == VB_EINVAL,
	       "vb_connect() refuses a scheme of no transport");
	rc = vb_connect("tcp://127.0.0.1:1", NULL, &c);
	expect(rc == VB_ECONNREFUSED,
	       "vb_connect() over tcp to a closed port is refused");
	expect(c == UNTOUCHED, "no output after a failed connect");

	/* Nothing listens on port 1: with or without an RDMA device this
	 * attempt must end in an error, quickly, once. */
	o.flags = VB_OPT_NO_RECONNECT;
	o.connect_timeout_ms = 2000;
	rc = vb_connect("rdma://127.0.0.1:1", &o, &c);
	printf("install-check: vb_connect(rdma://127.0.0.1:1): %s (%s)\n",
	       vb_errname(rc), vb_strerror(rc));
	expect(rc < 0 && strcmp(vb_errname(rc), "VB_UNKNOWN") != 0,
	       "vb_connect() to nothing fails with a known error");
	expect(c == UNTOUCHED, "no output after a failed connect");

	vb_close(NULL);
	vb_msg_release(NULL);

	if (failures)
		return 1;
	printf("install-check: ok, libverbus %s\n", vb_version());
	return 0;
}
