/*
 * hash.h - uthash (Debian's uthash-dev, header-only) as every Verbus hash
 * table uses it.  Include this, never <uthash.h> directly.
 *
 * - Out of memory is reported, never exit(): HASH_NONFATAL_OOM.  A file
 *   whose elements carry an oom flag defines uthash_nonfatal_oom(elt)
 *   before including this.
 * - Keys are hashed with FNV-1a (HASH_FNV) instead of uthash's default
 *   Jenkins hash, whose switch falls through with FALLTHROUGH comments
 *   that clang's -Wimplicit-fallthrough does not accept inside a macro:
 *   with warnings as errors, a clang build would not compile.  For
 *   the short keys here (subjects, tokens, ids) the two cost about the same.
 *
 * Ownership and threading: as uthash (no locking).
 */
#ifndef VERBUS_CORE_HASH_H
#define VERBUS_CORE_HASH_H

#define HASH_NONFATAL_OOM 1
#define HASH_FUNCTION(keyptr, keylen, hashv) HASH_FNV(keyptr, keylen, hashv)
#include <uthash.h>

#endif
