# Compiler flags every Verbus target gets: warnings (errors with
# VERBUS_WERROR) and the optional sanitizers.  Applied per target through
# verbus_target_defaults() so that generated code can be treated apart.

set(VERBUS_WARNINGS
	-Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
	-Wpointer-arith -Wcast-align -Wwrite-strings -Wformat=2
	-Wundef -Wvla -Wimplicit-fallthrough)
if(VERBUS_WERROR)
	list(APPEND VERBUS_WARNINGS -Werror)
endif()

if(VERBUS_SANITIZE)
	set(VERBUS_SANITIZE_FLAGS -fsanitize=${VERBUS_SANITIZE}
		-fno-omit-frame-pointer -fno-sanitize-recover=all)
	add_compile_options(${VERBUS_SANITIZE_FLAGS})
	add_link_options(${VERBUS_SANITIZE_FLAGS})
endif()

# verbus_target_defaults(TARGET): our own sources, so all warnings apply.
function(verbus_target_defaults target)
	target_compile_options(${target} PRIVATE ${VERBUS_WARNINGS})
	target_compile_definitions(${target} PRIVATE _GNU_SOURCE)
endfunction()
