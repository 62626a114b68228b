# FindZooKeeper.cmake - the ZooKeeper C client, single-threaded flavour
# (libzookeeper_st, Debian's libzookeeper-st-dev), which has no pkg-config
# file.  verbusd drives it from its own epoll loop (daemon/zk.c), so the
# multi-threaded libzookeeper_mt is not looked for: the two -dev packages
# conflict, and only one of them is installed (docs/DEPENDENCIES.md).
#
# Result: ZooKeeper_FOUND, ZooKeeper_INCLUDE_DIR (the directory holding
# zookeeper/zookeeper.h), ZooKeeper_ST_LIBRARY, ZooKeeper_VERSION, and the
# imported target ZooKeeper::zookeeper_st.
find_path(ZooKeeper_INCLUDE_DIR zookeeper/zookeeper.h)
find_library(ZooKeeper_ST_LIBRARY NAMES zookeeper_st)

if(ZooKeeper_INCLUDE_DIR AND
		EXISTS "${ZooKeeper_INCLUDE_DIR}/zookeeper/zookeeper_version.h")
	file(STRINGS "${ZooKeeper_INCLUDE_DIR}/zookeeper/zookeeper_version.h"
		_zk_ver REGEX "^#define ZOO_VERSION ")
	string(REGEX REPLACE "^#define ZOO_VERSION \"([^\"]*)\".*" "\\1"
		ZooKeeper_VERSION "${_zk_ver}")
	unset(_zk_ver)
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(ZooKeeper
	REQUIRED_VARS ZooKeeper_ST_LIBRARY ZooKeeper_INCLUDE_DIR
	VERSION_VAR ZooKeeper_VERSION
	REASON_FAILURE_MESSAGE
	"install libzookeeper-st-dev (scripts/setup.sh, docs/DEPENDENCIES.md)")

if(ZooKeeper_FOUND AND NOT TARGET ZooKeeper::zookeeper_st)
	add_library(ZooKeeper::zookeeper_st UNKNOWN IMPORTED)
	set_target_properties(ZooKeeper::zookeeper_st PROPERTIES
		IMPORTED_LOCATION "${ZooKeeper_ST_LIBRARY}"
		INTERFACE_INCLUDE_DIRECTORIES "${ZooKeeper_INCLUDE_DIR}")
endif()
mark_as_advanced(ZooKeeper_INCLUDE_DIR ZooKeeper_ST_LIBRARY)
