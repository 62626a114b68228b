/*
 * auth.h - who may connect to verbusd, and what each may publish and
 * subscribe to (the "authorization" group of verbusd.conf).
 *
 *   authorization = {
 *     users = (
 *       { user = "alice"; password = "$argon2id$v=19$...";
 *         publish = [ "orders.>" ]; subscribe = [ "orders.>", "_INBOX.>" ]; },
 *       { name = "billing"; token_sha256 = "9f86d0...";   # 64 hex digits
 *         subscribe = [ "orders.*" ]; allow_responses = true; }
 *     );
 *   };
 *
 * A password is stored as an Argon2id string (libsodium's
 * crypto_pwhash_str; `verbusd --hash-password` makes one), a token as the
 * SHA-256 of the token (tokens are long random secrets: a fast hash is
 * enough, and checking one costs microseconds).  A missing publish or
 * subscribe list allows everything; a present one allows only subjects
 * (patterns) that one of its patterns covers (vbi_pattern_covers).  With
 * no authorization group every client is admitted with every right.
 *
 * Users may also be listed in accounts (daemon/account.h): "accounts =
 * ( { name = "orders"; users = ( ... ); exports ...; imports ...; } )"
 * beside (or instead of) users, whose users are the global account's.  A
 * user name appears once in the whole group.
 *
 * Threading: the broker's thread only.  Ownership: a struct vbd_auth owns
 * its users; a user pointer is valid until vbd_auth_destroy().
 */
#ifndef VERBUS_DAEMON_AUTH_H
#define VERBUS_DAEMON_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vbd_auth;
struct vbd_user;

/*
 * vbd_auth_load() - read the authorization group of the file at @path:
 * *@out is the result, or NULL when the file has none.  Returns VB_OK,
 * VB_EINVAL (a bad entry: @err says "file:line: why"), VB_ESYS (unreadable)
 * or VB_ENOMEM.
 */
int vbd_auth_load(const char *path, struct vbd_auth **out, char *err,
		  size_t errlen);

/* vbd_auth_destroy() - free @a and its users; accepts NULL. */
void vbd_auth_destroy(struct vbd_auth *a);

/* vbd_auth_users() - how many users @a lists. */
size_t vbd_auth_users(const struct vbd_auth *a);

/*
 * vbd_auth_check() - the user the credentials @cred (a packed
 * Verbus__Credentials, @len bytes, from a Hello) prove, in *@who.  Returns
 * VB_OK or VB_EACCES (none, unknown user, wrong password or token: the
 * same answer, on purpose).  A successful password check is remembered (a
 * keyed hash of the password), so a reconnecting client costs one Argon2id
 * verification, not one per connection.
 */
int vbd_auth_check(struct vbd_auth *a, const void *cred, size_t len,
		   const struct vbd_user **who);

struct vbd_acct_def;

/*
 * Accounts (daemon/account.h): vbd_auth_accounts() - how many @a defines;
 * vbd_auth_account() - the @i-th (file order), NULL past the end;
 * vbd_user_account() - @u's account, NULL for the global one ("$G":
 * users of authorization.users, or no authorization at all).
 */
size_t vbd_auth_accounts(const struct vbd_auth *a);
const struct vbd_acct_def *vbd_auth_account(const struct vbd_auth *a, size_t i);
const struct vbd_acct_def *vbd_user_account(const struct vbd_user *u);

/* vbd_user_name() - the user name, or the token entry's name. */
const char *vbd_user_name(const struct vbd_user *u);

/* May @u publish on @subject / subscribe to @pattern?  NULL: anyone. */
bool vbd_user_may_publish(const struct vbd_user *u, const char *subject,
			  size_t len);
bool vbd_user_may_subscribe(const struct vbd_user *u, const char *pattern,
			    size_t len);

/*
 * vbd_user_responses() - whether @u has allow_responses: it may publish to
 * the reply subject of a message delivered to it, *@max times within
 * *@expires_ms (0: no limit) of the delivery, beyond its publish list
 * (daemon/inbox.h).  vbd_auth_responders(): whether any user of @a has.
 */
bool vbd_user_responses(const struct vbd_user *u, uint32_t *max,
			uint32_t *expires_ms);
bool vbd_auth_responders(const struct vbd_auth *a);

/*
 * vbd_auth_rebind() - a configuration reload (daemon/reload.h): the user
 * of @fresh that a connection still is which proved @old (a user of the
 * authorization being replaced; NULL: it was admitted without one) with
 * the credentials @cred (its Hello's, @len bytes), in *@who.  A token
 * entry is rebound by its token (the same SHA-256 in @fresh); a password
 * entry by its name, at no cost when its Argon2id string is unchanged,
 * else by verifying the password again (that of @cred).  Returns VB_OK,
 * or VB_EACCES: @fresh admits those credentials no more.
 */
int vbd_auth_rebind(struct vbd_auth *fresh, const struct vbd_user *old,
		    const void *cred, size_t len, const struct vbd_user **who);

/*
 * vbd_auth_carry() - before @old is freed for @fresh: @fresh keeps @old's
 * cache of passwords that succeeded (its key, and each user whose entry
 * is unchanged), so that clients reconnecting after a reload pay no new
 * Argon2id verification.  Either may be NULL.
 */
void vbd_auth_carry(struct vbd_auth *fresh, const struct vbd_auth *old);

/*
 * vbd_auth_hash_password() - an Argon2id string for @password into @out
 * (at least 128 bytes).  Returns VB_OK, VB_EINVAL or VB_ENOMEM.
 */
int vbd_auth_hash_password(const char *password, char *out, size_t outlen);

/* vbd_auth_hash_token() - the SHA-256 of @token in hex, into @hex[65]. */
void vbd_auth_hash_token(const char *token, char hex[65]);

#endif /* VERBUS_DAEMON_AUTH_H */
