# Man pages rendered from the programs' own --help output by help2man, at
# build time, so that they never disagree with the program.
#
# verbus_man(TARGET NAME SECTION DESCRIPTION): NAME.SECTION in this binary
# dir, built with TARGET, installed to share/man/manSECTION; text from
# cmake/man/NAME.h2m (NAME, SYNOPSIS, FILES, SEE ALSO...) is merged in when
# that file exists.  VERBUS_MAN=OFF leaves the pages out.
option(VERBUS_MAN "Build and install man pages (needs help2man)" ON)
if(VERBUS_MAN)
	find_program(HELP2MAN_EXECUTABLE help2man)
	if(NOT HELP2MAN_EXECUTABLE)
		message(FATAL_ERROR "help2man not found: install it "
			"(scripts/setup.sh) or configure with -DVERBUS_MAN=OFF")
	endif()
endif()
include(GNUInstallDirs)

function(verbus_man target name section description)
	if(NOT VERBUS_MAN)
		return()
	endif()
	set(page ${CMAKE_CURRENT_BINARY_DIR}/${name}.${section})
	set(inc ${PROJECT_SOURCE_DIR}/cmake/man/${name}.h2m)
	# The version is the project's, so that a program need not have a
	# --version; stderr is kept in case its --help writes there.
	set(args --no-info --no-discard-stderr --section=${section}
		--name=${description} --version-string=${PROJECT_VERSION}
		--output=${page})
	set(deps ${target})
	if(EXISTS ${inc})
		list(APPEND args --include=${inc})
		list(APPEND deps ${inc})
	endif()
	add_custom_command(OUTPUT ${page}
		COMMAND ${HELP2MAN_EXECUTABLE} ${args} $<TARGET_FILE:${target}>
		DEPENDS ${deps}
		COMMENT "help2man: ${name}.${section}"
		VERBATIM)
	add_custom_target(${name}_man ALL DEPENDS ${page})
	install(FILES ${page}
		DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
endfunction()
