/*
 * auth.c - credentials and permissions (see auth.h).
 *
 * Passwords: Argon2id at t=2, m=19 MiB (OWASP's recommended floor); the
 * parameters travel in the stored string, so entries made with stronger
 * settings verify as they are.  A check costs tens of milliseconds of the
 * broker's single thread, so the last password that succeeded for a user
 * is remembered as a keyed BLAKE2b (the key random per process): a client
 * that reconnects pays once.  Unknown users still pay one verification
 * (against another user's hash, at its cost), so that timing does not say
 * which names exist.
 */
#include "daemon/auth.h"
#include "daemon/account.h"
#include "core/subject.h"
#include "proto/codec.h"

#include <verbus/verbus.h>

#include <libconfig.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PW_OPSLIMIT 2
#define PW_MEMLIMIT (19u << 20)
#define NAME_MAX_LEN 64

static const char *const resp_keys[] = { "max", "expires_ms", NULL };
static const char *const user_keys[] = {
	"user",	   "password",	"token_sha256",	   "name",
	"publish", "subscribe", "allow_responses", NULL
};
static const char *const group_keys[] = { "users", "accounts", NULL };

struct perms {
	char **pat; /* NULL: everything allowed */
	size_t n;
};

struct vbd_user {
	char name[NAME_MAX_LEN + 1];
	bool is_token;
	char pwhash[crypto_pwhash_STRBYTES]; /* password entries */
	uint8_t token_sha[crypto_hash_sha256_BYTES]; /* token entries */
	uint8_t ok[crypto_generichash_BYTES]; /* last good password, keyed */
	bool ok_valid;
	struct perms pub, sub;
	uint32_t resp_max; /* allow_responses: replies per request; 0: off */
	uint32_t resp_expires_ms; /* and for how long (0: no limit) */
	const struct vbd_acct_def *acct; /* its account; NULL: "$G" */
};

struct vbd_auth {
	struct vbd_user *users;
	size_t n;
	struct vbd_acct_def *accts; /* accounts, in the file's order */
	size_t naccts;
	bool responders; /* some user has allow_responses */
	uint8_t key[crypto_generichash_KEYBYTES];
};

static void perms_free(struct perms *p)
{
	for (size_t i = 0; p->pat && i < p->n; i++)
		free(p->pat[i]);
	free(p->pat);
	p->pat = NULL;
}

static int load_perms(const config_setting_t *entry, const char *key,
		      struct perms *p, const char *path, char *err,
		      size_t errlen)
{
	const config_setting_t *l = config_setting_get_member(entry, key);
	const char *v;
	int n;

	if (!l)
		return VB_OK;
	if (!config_setting_is_array(l) && !config_setting_is_list(l))
		return vbd_conf_bad(
			err, errlen, l, path,
			"%s: expected a list of patterns [ \"a.>\", ... ]",
			key);
	n = config_setting_length(l);
	p->pat = calloc((size_t)n + 1, sizeof(*p->pat));
	if (!p->pat)
		return VB_ENOMEM;
	for (int i = 0; i < n; i++) {
		v = config_setting_get_string_elem(l, i);
		if (!v || vbi_pattern_check(v, strlen(v)))
			return vbd_conf_bad(err, errlen, l, path,
					    "%s: not a valid subject pattern",
					    key);
		p->pat[p->n] = strdup(v);
		if (!p->pat[p->n])
			return VB_ENOMEM;
		p->n++;
	}
	return VB_OK;
}

static int hex_to_bytes(const char *hex, uint8_t *out, size_t n)
{
	size_t got;

	if (strlen(hex) != 2 * n)
		return -1;
	return sodium_hex2bin(out, n, hex, 2 * n, NULL, &got, NULL) ||
			       got != n ?
		       -1 :
		       0;
}

/*
 * allow_responses: true (one reply per request, within a minute), false,
 * or { max = N; expires_ms = MS; } (1-65536 replies; 0: no time limit).
 */
static int load_responses(const config_setting_t *e, struct vbd_user *u,
			  const char *path, char *err, size_t errlen)
{
	const config_setting_t *r =
		config_setting_get_member(e, "allow_responses");
	int max = 1, ms = 60000;

	if (!r)
		return VB_OK;
	if (config_setting_type(r) == CONFIG_TYPE_BOOL) {
		if (config_setting_get_bool(r)) {
			u->resp_max = (uint32_t)max;
			u->resp_expires_ms = (uint32_t)ms;
		}
		return VB_OK;
	}
	if (!config_setting_is_group(r))
		return vbd_conf_bad(err, errlen, r, path, "%s",
				    "allow_responses: true, false or "
				    "{ max = N; expires_ms = MS; }");
	if (vbd_conf_keys(r, resp_keys, "allow_responses", path, err, errlen))
		return VB_EINVAL;
	config_setting_lookup_int(r, "max", &max);
	config_setting_lookup_int(r, "expires_ms", &ms);
	if (max < 1 || max > 65536 || ms < 0 || ms > 86400000)
		return vbd_conf_bad(err, errlen, r, path, "%s",
				    "allow_responses: max 1-65536, expires_ms "
				    "0-86400000");
	u->resp_max = (uint32_t)max;
	u->resp_expires_ms = (uint32_t)ms;
	return VB_OK;
}

static int load_user(const config_setting_t *e, struct vbd_user *u,
		     const char *path, char *err, size_t errlen)
{
	const char *user = NULL, *pw = NULL, *tok = NULL, *name = NULL;
	int rc;

	if (!config_setting_is_group(e))
		return vbd_conf_bad(
			err, errlen, e, path, "%s",
			"users: each entry is a group { user = ...; }");
	config_setting_lookup_string(e, "user", &user);
	config_setting_lookup_string(e, "password", &pw);
	config_setting_lookup_string(e, "token_sha256", &tok);
	config_setting_lookup_string(e, "name", &name);
	if (vbd_conf_keys(e, user_keys, "", path, err, errlen))
		return VB_EINVAL;
	if (tok) {
		if (user || pw)
			return vbd_conf_bad(
				err, errlen, e, path, "%s",
				"an entry has either user and password, or "
				"token_sha256");
		if (hex_to_bytes(tok, u->token_sha, sizeof(u->token_sha)))
			return vbd_conf_bad(
				err, errlen, e, path, "%s",
				"token_sha256: expected 64 hex digits "
				"(verbusd --hash-token)");
		u->is_token = true;
		snprintf(u->name, sizeof(u->name), "%s", name ? name : "token");
	} else {
		if (!user || !pw || name)
			return vbd_conf_bad(
				err, errlen, e, path, "%s",
				"an entry has either user and password, or "
				"token_sha256 (and an optional name)");
		if (!*user || strlen(user) > NAME_MAX_LEN)
			return vbd_conf_bad(err, errlen, e, path, "%s",
					    "user: 1 to 64 bytes");
		if (strncmp(pw, "$argon2id$", 10) ||
		    strlen(pw) >= sizeof(u->pwhash))
			return vbd_conf_bad(
				err, errlen, e, path, "%s",
				"password: expected an Argon2id string "
				"(verbusd --hash-password)");
		snprintf(u->name, sizeof(u->name), "%s", user);
		snprintf(u->pwhash, sizeof(u->pwhash), "%s", pw);
	}
	rc = load_perms(e, "publish", &u->pub, path, err, errlen);
	if (!rc)
		rc = load_perms(e, "subscribe", &u->sub, path, err, errlen);
	if (!rc)
		rc = load_responses(e, u, path, err, errlen);
	return rc;
}

void vbd_auth_destroy(struct vbd_auth *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->n; i++) {
		perms_free(&a->users[i].pub);
		perms_free(&a->users[i].sub);
		sodium_memzero(&a->users[i], sizeof(a->users[i]));
	}
	free(a->users);
	for (size_t i = 0; a->accts && i < a->naccts; i++)
		vbd_acct_free(&a->accts[i]);
	free(a->accts);
	sodium_memzero(a, sizeof(*a));
	free(a);
}

/* Read the users list @users into @a, each of account @acct. */
static int load_users(struct vbd_auth *a, const config_setting_t *users,
		      const struct vbd_acct_def *acct, const char *path,
		      char *err, size_t errlen)
{
	if (!config_setting_is_list(users))
		return vbd_conf_bad(err, errlen, users, path, "%s",
				    "users: a list ( { user = ...; }, ... )");
	for (int i = 0; i < config_setting_length(users); i++) {
		const config_setting_t *e =
			config_setting_get_elem(users, (unsigned)i);
		struct vbd_user *u = &a->users[a->n];
		int rc = load_user(e, u, path, err, errlen);

		a->n++;
		if (rc)
			return rc;
		u->acct = acct;
		if (u->resp_max)
			a->responders = true;
		/* A name is one user: which account would it log into? */
		for (size_t j = 0; !u->is_token && j + 1 < a->n; j++)
			if (!a->users[j].is_token &&
			    !strcmp(a->users[j].name, u->name))
				return vbd_conf_bad(
					err, errlen, e, path,
					"user '%s' appears twice (in %s and "
					"%s)",
					u->name,
					a->users[j].acct ?
						a->users[j].acct->name :
						VBD_GLOBAL_ACCOUNT,
					acct ? acct->name : VBD_GLOBAL_ACCOUNT);
	}
	return VB_OK;
}

/* How many users the group @grp lists, in users and in every account. */
static int count_users(const config_setting_t *users,
		       const config_setting_t *accts)
{
	int n = users ? config_setting_length(users) : 0;

	for (int i = 0; accts && i < config_setting_length(accts); i++) {
		const config_setting_t *l = config_setting_get_member(
			config_setting_get_elem(accts, (unsigned)i), "users");

		if (l)
			n += config_setting_length(l);
	}
	return n;
}

static int load_accounts(struct vbd_auth *a, const config_setting_t *accts,
			 const char *path, char *err, size_t errlen)
{
	int rc = VB_OK;

	if (!config_setting_is_list(accts))
		return vbd_conf_bad(
			err, errlen, accts, path, "%s",
			"accounts: a list ( { name = ...; }, ... )");
	a->accts = calloc((size_t)config_setting_length(accts) + 1,
			  sizeof(*a->accts));
	if (!a->accts)
		return VB_ENOMEM;
	for (int i = 0; !rc && i < config_setting_length(accts); i++) {
		const config_setting_t *e =
			config_setting_get_elem(accts, (unsigned)i);
		struct vbd_acct_def *d = &a->accts[a->naccts++];
		const config_setting_t *users;

		rc = vbd_acct_load(e, d, path, err, errlen);
		users = config_setting_get_member(e, "users");
		if (!rc && users)
			rc = load_users(a, users, d, path, err, errlen);
	}
	if (!rc)
		rc = vbd_acct_resolve(a->accts, a->naccts, path, err, errlen);
	return rc;
}

int vbd_auth_load(const char *path, struct vbd_auth **out, char *err,
		  size_t errlen)
{
	const config_setting_t *grp, *users, *accts;
	struct vbd_auth *a = NULL;
	config_t cf;
	int rc;

	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium cannot initialise");
		return VB_ESYS;
	}
	config_init(&cf);
	if (!config_read_file(&cf, path)) {
		snprintf(err, errlen, "%s:%d: %s",
			 config_error_file(&cf) ? config_error_file(&cf) : path,
			 config_error_line(&cf), config_error_text(&cf));
		rc = config_error_type(&cf) == CONFIG_ERR_FILE_IO ? VB_ESYS :
								    VB_EINVAL;
		goto out_destroy_cf;
	}
	*out = NULL;
	rc = VB_OK;
	grp = config_lookup(&cf, "authorization");
	if (!grp)
		goto out_destroy_cf;
	rc = VB_EINVAL;
	if (!config_setting_is_group(grp)) {
		vbd_conf_bad(err, errlen, grp, path, "%s",
			     "expected { users = ( { ... }, ... ); accounts = "
			     "( ... ); }");
		goto out_destroy_cf;
	}
	users = config_setting_get_member(grp, "users");
	accts = config_setting_get_member(grp, "accounts");
	if (vbd_conf_keys(grp, group_keys, "", path, err, errlen))
		goto out_destroy_cf;
	if (!users && !accts) {
		vbd_conf_bad(err, errlen, grp, path, "%s",
			     "expected { users = ( { ... }, ... ); } or "
			     "accounts = ( ... )");
		goto out_destroy_cf;
	}
	rc = VB_ENOMEM;
	a = calloc(1, sizeof(*a));
	if (!a || !(a->users = calloc((size_t)count_users(users, accts) + 1,
				      sizeof(*a->users))))
		goto out_free;
	randombytes_buf(a->key, sizeof(a->key));
	rc = users ? load_users(a, users, NULL, path, err, errlen) : VB_OK;
	if (!rc && accts)
		rc = load_accounts(a, accts, path, err, errlen);
	if (rc)
		goto out_free;
	*out = a;
	config_destroy(&cf);
	return VB_OK;
out_free:
	vbd_auth_destroy(a);
out_destroy_cf:
	config_destroy(&cf);
	return rc;
}

size_t vbd_auth_users(const struct vbd_auth *a)
{
	return a ? a->n : 0;
}

size_t vbd_auth_accounts(const struct vbd_auth *a)
{
	return a ? a->naccts : 0;
}

const struct vbd_acct_def *vbd_auth_account(const struct vbd_auth *a, size_t i)
{
	return a && i < a->naccts ? &a->accts[i] : NULL;
}

const struct vbd_acct_def *vbd_user_account(const struct vbd_user *u)
{
	return u ? u->acct : NULL;
}

static int check_password(struct vbd_auth *a, const char *user, const char *pw,
			  const struct vbd_user **who)
{
	uint8_t h[crypto_generichash_BYTES];
	struct vbd_user *u = NULL, *any = NULL;

	for (size_t i = 0; i < a->n && !u; i++) {
		if (a->users[i].is_token)
			continue;
		if (!any)
			any = &a->users[i];
		if (!strcmp(a->users[i].name, user))
			u = &a->users[i];
	}
	crypto_generichash(h, sizeof(h), (const uint8_t *)pw, strlen(pw),
			   a->key, sizeof(a->key));
	if (u && u->ok_valid && !sodium_memcmp(h, u->ok, sizeof(h))) {
		*who = u;
		return VB_OK;
	}
	if (!u) {
		/* The same work as a real check (against some user's hash, at
		 * that hash's cost); the answer is no whatever it says. */
		if (any &&
		    crypto_pwhash_str_verify(any->pwhash, pw, strlen(pw)) != 0)
			return VB_EACCES;
		return VB_EACCES;
	}
	if (crypto_pwhash_str_verify(u->pwhash, pw, strlen(pw)) != 0)
		return VB_EACCES;
	memcpy(u->ok, h, sizeof(h));
	u->ok_valid = true;
	*who = u;
	return VB_OK;
}

int vbd_auth_check(struct vbd_auth *a, const void *cred, size_t len,
		   const struct vbd_user **who)
{
	Verbus__Credentials *c;
	uint8_t sha[crypto_hash_sha256_BYTES];
	int rc = VB_EACCES;

	if (!a || !len || len > VBI_CRED_MAX)
		return VB_EACCES;
	c = verbus__credentials__unpack(NULL, len, cred);
	if (!c)
		return VB_EACCES;
	if (c->token && *c->token && !*c->user && !*c->password) {
		crypto_hash_sha256(sha, (const uint8_t *)c->token,
				   strlen(c->token));
		for (size_t i = 0; i < a->n; i++) {
			if (a->users[i].is_token &&
			    !sodium_memcmp(sha, a->users[i].token_sha,
					   sizeof(sha))) {
				*who = &a->users[i];
				rc = VB_OK;
			}
		}
	} else if (c->user && *c->user && c->password &&
		   !(c->token && *c->token)) {
		rc = check_password(a, c->user, c->password, who);
	}
	verbus__credentials__free_unpacked(c, NULL);
	return rc;
}

const char *vbd_user_name(const struct vbd_user *u)
{
	return u ? u->name : "";
}

static bool allowed(const struct perms *p, const char *s, size_t len)
{
	if (!p->pat)
		return true;
	for (size_t i = 0; i < p->n; i++)
		if (vbi_pattern_covers(p->pat[i], strlen(p->pat[i]), s, len))
			return true;
	return false;
}

bool vbd_user_may_publish(const struct vbd_user *u, const char *subject,
			  size_t len)
{
	return !u || allowed(&u->pub, subject, len);
}

bool vbd_user_may_subscribe(const struct vbd_user *u, const char *pattern,
			    size_t len)
{
	return !u || allowed(&u->sub, pattern, len);
}

bool vbd_user_responses(const struct vbd_user *u, uint32_t *max,
			uint32_t *expires_ms)
{
	if (!u || !u->resp_max)
		return false;
	*max = u->resp_max;
	*expires_ms = u->resp_expires_ms;
	return true;
}

bool vbd_auth_responders(const struct vbd_auth *a)
{
	return a && a->responders;
}

/* The entry of @a that stands for @old: its token, or its name. */
static struct vbd_user *same_entry(struct vbd_auth *a,
				   const struct vbd_user *old)
{
	struct vbd_user *found = NULL;

	for (size_t i = 0; i < a->n; i++) {
		struct vbd_user *u = &a->users[i];

		if (u->is_token != old->is_token)
			continue;
		/* Tokens: the last entry that matches, as vbd_auth_check(). */
		if (u->is_token ? !sodium_memcmp(u->token_sha, old->token_sha,
						 sizeof(u->token_sha)) :
				  !strcmp(u->name, old->name))
			found = u;
	}
	return found;
}

int vbd_auth_rebind(struct vbd_auth *fresh, const struct vbd_user *old,
		    const void *cred, size_t len, const struct vbd_user **who)
{
	struct vbd_user *u;

	if (!fresh) {
		*who = NULL;
		return VB_OK;
	}
	if (!old)
		return vbd_auth_check(fresh, cred, len, who);
	u = same_entry(fresh, old);
	if (!u)
		return VB_EACCES;
	if (u->is_token || !strcmp(u->pwhash, old->pwhash)) {
		*who = u;
		return VB_OK;
	}
	/* A new password for the name: the client's must verify against it. */
	if (vbd_auth_check(fresh, cred, len, who) != VB_OK || *who != u)
		return VB_EACCES;
	return VB_OK;
}

void vbd_auth_carry(struct vbd_auth *fresh, const struct vbd_auth *old)
{
	if (!fresh || !old)
		return;
	memcpy(fresh->key, old->key, sizeof(fresh->key));
	for (size_t i = 0; i < old->n; i++) {
		const struct vbd_user *o = &old->users[i];
		struct vbd_user *u;

		if (o->is_token || !o->ok_valid)
			continue;
		u = same_entry(fresh, o);
		if (u && !strcmp(u->pwhash, o->pwhash)) {
			memcpy(u->ok, o->ok, sizeof(u->ok));
			u->ok_valid = true;
		}
	}
}

int vbd_auth_hash_password(const char *password, char *out, size_t outlen)
{
	if (!password || !*password || outlen < crypto_pwhash_STRBYTES)
		return VB_EINVAL;
	if (sodium_init() < 0)
		return VB_ESYS;
	if (crypto_pwhash_str(out, password, strlen(password), PW_OPSLIMIT,
			      PW_MEMLIMIT) != 0)
		return VB_ENOMEM;
	return VB_OK;
}

void vbd_auth_hash_token(const char *token, char hex[65])
{
	uint8_t sha[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(sha, (const uint8_t *)token, strlen(token));
	sodium_bin2hex(hex, 65, sha, sizeof(sha));
}
