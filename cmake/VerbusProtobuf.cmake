# protobuf-c code generation at build time.  The generated .pb-c.[ch] live in
# the build tree and are never committed (house style, rule 9).
#
# verbus_protobuf_c(OUT_SRCS OUT_HDRS proto...) sets OUT_SRCS/OUT_HDRS to the
# generated files; the directory holding them is ${CMAKE_CURRENT_BINARY_DIR}.

find_program(PROTOC_C_EXECUTABLE NAMES protoc-c)
if(NOT PROTOC_C_EXECUTABLE)
	# Newer protobuf-c ships only the plugin, driven by protoc.
	find_program(PROTOC_EXECUTABLE NAMES protoc)
	find_program(PROTOC_GEN_C_EXECUTABLE NAMES protoc-gen-c)
	if(NOT PROTOC_EXECUTABLE OR NOT PROTOC_GEN_C_EXECUTABLE)
		message(FATAL_ERROR "protoc-c (or protoc + protoc-gen-c) not "
			"found: install protobuf-c-compiler (scripts/setup.sh)")
	endif()
endif()

function(verbus_protobuf_c out_srcs out_hdrs)
	set(srcs)
	set(hdrs)
	foreach(proto ${ARGN})
		get_filename_component(abs ${proto} ABSOLUTE)
		get_filename_component(dir ${abs} DIRECTORY)
		get_filename_component(base ${abs} NAME_WE)
		set(c ${CMAKE_CURRENT_BINARY_DIR}/${base}.pb-c.c)
		set(h ${CMAKE_CURRENT_BINARY_DIR}/${base}.pb-c.h)
		if(PROTOC_C_EXECUTABLE)
			set(cmd ${PROTOC_C_EXECUTABLE})
		else()
			set(cmd ${PROTOC_EXECUTABLE}
				--plugin=protoc-gen-c=${PROTOC_GEN_C_EXECUTABLE})
		endif()
		add_custom_command(OUTPUT ${c} ${h}
			COMMAND ${cmd} --proto_path=${dir}
				--c_out=${CMAKE_CURRENT_BINARY_DIR} ${abs}
			DEPENDS ${abs}
			COMMENT "protobuf-c: generating ${base}.pb-c.[ch]"
			VERBATIM)
		list(APPEND srcs ${c})
		list(APPEND hdrs ${h})
	endforeach()
	set(${out_srcs} ${srcs} PARENT_SCOPE)
	set(${out_hdrs} ${hdrs} PARENT_SCOPE)
endfunction()
