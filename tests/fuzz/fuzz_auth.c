/* libFuzzer target: the credentials a client's Hello carries, checked by
 * verbusd (daemon/auth.c vbd_auth_check): a packed Credentials from the
 * peer, decoded and matched against a user (password) and a token entry.
 * The stored hash uses Argon2id's minimum cost so that a run checks many
 * inputs; the code path is the same at any cost.  The inbox id the same
 * credentials prove (daemon/inbox.c) is decoded too: empty, or 16 hex
 * digits. */
#include "daemon/auth.h"
#include "daemon/inbox.h"

#include <verbus/verbus.h>

#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct vbd_auth *auth;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char path[] = "/tmp/vb-fuzz-auth-XXXXXX", pw[crypto_pwhash_STRBYTES];
	char tok[65], err[256];
	FILE *f;
	int fd;

	(void)argc;
	(void)argv;
	if (sodium_init() < 0 ||
	    crypto_pwhash_str(pw, "pw", 2, crypto_pwhash_OPSLIMIT_MIN,
			      crypto_pwhash_MEMLIMIT_MIN) != 0)
		abort();
	vbd_auth_hash_token("tok", tok);
	fd = mkstemp(path);
	f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f)
		abort();
	fprintf(f,
		"authorization = { users = (\n"
		"  { user = \"u\"; password = \"%s\"; publish = [ \"a.>\" ]; },\n"
		"  { name = \"t\"; token_sha256 = \"%s\"; }\n"
		"); };\n",
		pw, tok);
	fclose(f);
	if (vbd_auth_load(path, &auth, err, sizeof(err)) != VB_OK || !auth)
		abort();
	unlink(path);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct vbd_user *u = NULL;
	char id[VBD_INBOX_ID_LEN + 1];
	size_t n;

	vbd_inbox_id(data, size, id);
	n = strlen(id);
	if (n != 0 && n != VBD_INBOX_ID_LEN)
		abort();
	for (size_t i = 0; i < n; i++)
		if (!strchr("0123456789abcdef", id[i]))
			abort();

	if (vbd_auth_check(auth, data, size, &u) == VB_OK) {
		/* Admitted: only by one of the two secrets. */
		if (!u)
			abort();
		(void)vbd_user_may_publish(u, "a.b", 3);
	}
	return 0;
}
