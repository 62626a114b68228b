# VerbusdUnit.cmake - make verbusd.service from its template at install
# time (daemon/CMakeLists.txt's install(CODE) includes this), for the
# prefix being installed to.
#
# In: VERBUSD_UNIT_IN, VERBUSD_UNIT_OUT (template and result),
# VERBUSD_SBINDIR and VERBUSD_SYSCONFDIR (CMAKE_INSTALL_SBINDIR and
# CMAKE_INSTALL_SYSCONFDIR: relative to the prefix, or absolute), and
# CMAKE_INSTALL_PREFIX, which cmake --install --prefix sets.
# Out: VERBUSD_UNIT_OUT with @VERBUSD_BIN@ and @VERBUSD_CONF@ filled in.
foreach(dir SBINDIR SYSCONFDIR)
	if(IS_ABSOLUTE "${VERBUSD_${dir}}")
		set(full_${dir} "${VERBUSD_${dir}}")
	else()
		set(full_${dir} "${CMAKE_INSTALL_PREFIX}/${VERBUSD_${dir}}")
	endif()
endforeach()
set(VERBUSD_BIN "${full_SBINDIR}/verbusd")
set(VERBUSD_CONF "${full_SYSCONFDIR}/verbus/verbusd.conf")
# systemd takes no spaces in an unquoted path; say so rather than write a
# unit that starts something else.
if(VERBUSD_BIN MATCHES "[ \t\"'\\\\]" OR VERBUSD_CONF MATCHES "[ \t\"'\\\\]")
	message(FATAL_ERROR "verbusd.service: the install paths "
		"'${VERBUSD_BIN}' and '${VERBUSD_CONF}' may not contain spaces, "
		"quotes or backslashes")
endif()
configure_file("${VERBUSD_UNIT_IN}" "${VERBUSD_UNIT_OUT}" @ONLY)
