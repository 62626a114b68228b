/*
 * hello.c - libverbus in twenty lines: subscribe, publish, receive.
 *
 *   hello [rdma://HOST:PORT [SOURCE-ADDR]]
 */
#include <verbus/verbus.h>

#include <stdio.h>

static void on_msg(struct vb_conn *c, const struct vb_msg *m, void *arg)
{
	int *left = arg;

	(void)c;
	printf("%.*s: %.*s\n", (int)m->subject_len, m->subject, (int)m->size,
	       (const char *)m->data);
	--*left;
}

int main(int argc, char **argv)
{
	struct vb_opts o = VB_OPTS_INIT;
	struct vb_conn *c;
	int left = 3, rc;

	o.source = argc > 2 ? argv[2] : NULL;
	rc = vb_connect(argc > 1 ? argv[1] : VB_DEFAULT_URL, &o, &c);
	if (rc) {
		fprintf(stderr, "hello: connect: %s\n", vb_strerror(rc));
		return 1;
	}
	vb_subscribe(c, "greet.*", NULL, on_msg, &left, NULL);
	vb_flush(c, 5000); /* the subscription is in force */
	for (int i = 0; i < 3; i++)
		vb_publish(c, "greet.world", "hello", 5);
	while (left > 0 && (rc = vb_poll(c, 5000)) > 0)
		;
	vb_close(c);
	return left == 0 ? 0 : 1;
}
