/*
 * verbus.h - the public API of libverbus.
 *
 * Everything an application may use is declared here (or in a sibling under
 * include/verbus/) with the vb_/VB_ prefix; every other symbol is internal.
 *
 * Errors: every function that can fail returns an enum vb_err, VB_OK (0) on
 * success and a negative code otherwise.  VB_EAGAIN is backpressure ("no
 * resource now, try again"), not a failure.  Output parameters are written
 * only on success.
 */
#ifndef VERBUS_VERBUS_H
#define VERBUS_VERBUS_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(VERBUS_BUILDING) && defined(__GNUC__)
#define VB_EXPORT __attribute__((visibility("default")))
#else
#define VB_EXPORT
#endif

#define VB_VERSION_MAJOR 0
#define VB_VERSION_MINOR 1
#define VB_VERSION_PATCH 0

/*
 * The error list: one X-macro yields the enum, the names and the messages,
 * so that the three can never disagree.  X(name, value, message).
 */
#define VB_ERRORS(X)                                                        \
	X(VB_OK, 0, "success")                                              \
	X(VB_EAGAIN, -1, "resource temporarily unavailable, try again")     \
	X(VB_EINVAL, -2, "invalid argument")                                \
	X(VB_ENOMEM, -3, "out of memory")                                   \
	X(VB_EPROTO, -4, "protocol error: malformed or unexpected message") \
	X(VB_EVERSION, -5, "protocol version mismatch")                     \
	X(VB_EMSGSIZE, -6, "message too large")                             \
	X(VB_ECLOSED, -7, "connection closed")                              \
	X(VB_ETIMEDOUT, -8, "timed out")                                    \
	X(VB_ECONNREFUSED, -9, "connection refused by peer")                \
	X(VB_EUNREACH, -10, "address or route could not be resolved")       \
	X(VB_EACCES, -11, "access denied")                                  \
	X(VB_ENODEV, -12, "no usable RDMA device")                          \
	X(VB_EIO, -13, "RDMA operation failed")                             \
	X(VB_ESTATE, -14, "operation not valid in the current state")       \
	X(VB_ENOSPC, -15, "no space left in a ring or pool")                \
	X(VB_ESYS, -16, "system call failed")

#define VB_ERR_ENUM_(name, value, msg) name = (value),
/* Every error a vb_ function can return. */
enum vb_err { VB_ERRORS(VB_ERR_ENUM_) };
#undef VB_ERR_ENUM_

/*
 * vb_strerror() - a human-readable, lowercase message for an error code.
 * Never returns NULL: an unknown code yields "unknown error".  The string is
 * static.  Thread-safe, never blocks.
 */
VB_EXPORT const char *vb_strerror(int err);

/*
 * vb_errname() - the symbolic name of an error code ("VB_EAGAIN"), or
 * "VB_UNKNOWN".  The string is static.  Thread-safe, never blocks.
 */
VB_EXPORT const char *vb_errname(int err);

/* vb_version() - the library's version as "MAJOR.MINOR.PATCH". */
VB_EXPORT const char *vb_version(void);

#ifdef __cplusplus
}
#endif

#endif /* VERBUS_VERBUS_H */
