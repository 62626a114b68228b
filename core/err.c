/*
 * err.c - the text of the error codes declared in verbus/verbus.h.
 *
 * Both tables come from the same VB_ERRORS X-macro as the enum.  Codes are
 * small negative integers, so the lookup is a switch the compiler turns into
 * a table; anything not in the list is "unknown" rather than an error.
 */
#include <verbus/verbus.h>

#include <stddef.h>

#define ERR_MSG_CASE(name, value, msg) \
	case name:                     \
		return msg;
#define ERR_NAME_CASE(name, value, msg) \
	case name:                      \
		return #name;

const char *vb_strerror(int err)
{
	switch (err) {
		VB_ERRORS(ERR_MSG_CASE)
	default:
		return "unknown error";
	}
}

const char *vb_errname(int err)
{
	switch (err) {
		VB_ERRORS(ERR_NAME_CASE)
	default:
		return "VB_UNKNOWN";
	}
}

#define STR_(x) #x
#define STR(x) STR_(x)

const char *vb_version(void)
{
	return STR(VB_VERSION_MAJOR) "." STR(VB_VERSION_MINOR) "." STR(
		VB_VERSION_PATCH);
}
