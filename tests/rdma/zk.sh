# A private ZooKeeper server for a test driver (sourced, like lib.sh): a
# standalone server on 127.0.0.1 (or $ZK_HOST) at a free port, its data in
# a directory of its own under /tmp, stopped and removed at the end.
#
#   zk_start [DIR]     start one, its data in DIR (default: a new
#                      /tmp/zk.XXXXXX, removed by zk_stop), and wait until
#                      it serves; sets ZK_PORT, ZK_PID, ZK_DIR, ZK_CONNECT
#                      (HOST:PORT).  Status 1 (and its log) if it did not.
#   zk_stop            SIGTERM, SIGKILL after 5 s; removes the directory
#                      zk_start made.  Safe to call twice, or in a trap.
#   zk_restart [SECS]  stop it, wait SECS (0), start it again on the same
#                      port with the same data: "ZooKeeper was away SECS".
#   zk_4lw WORD [PORT] a four-letter word (srvr, mntr, stat, cons, dump)
#                      to stdout; gives up after 2 s.
#
# With VERBUS_ZK_CONNECT=HOST:PORT set (a server shared by a whole test
# run, e.g. on the host of the test guest), zk_start uses that server
# instead: it only waits until it serves, zk_stop does nothing and
# zk_restart fails.  Tests sharing a server use base paths of their own.
#
# Needs java (default-jre-headless) and /usr/share/java/zookeeper.jar
# (libzookeeper-java): scripts/setup.sh installs both.  The server is
# waited for with "srvr" until it shows its Mode, not with "ruok", which
# answers before the database is loaded (a client connecting then is
# dropped); every probe is under a timeout, since one sent while the server
# starts can be left unanswered for ever.  The driver must call zk_stop on
# every exit (a trap), or the JVM outlives it.
ZK_JAR=${ZK_JAR:-/usr/share/java/zookeeper.jar}
# slf4j-simple (libslf4j-java, a dependency of libzookeeper-java) sends the
# server's log to stderr, i.e. to $ZK_DIR/log; without it there is none.
ZK_CP=${ZK_CP:-$ZK_JAR:/usr/share/java/slf4j-simple.jar}
ZK_PID=
ZK_OWN_DIR=0
ZK_EXTERNAL=0

zk_4lw() {
	# shellcheck disable=SC2016 # expanded by the inner shell
	timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1" && printf %s "$2" >&3 && cat <&3' \
		"${ZK_HOST:-127.0.0.1}" "${2:-$ZK_PORT}" "$1" 2>/dev/null
}

# _zk_serving PORT SECONDS: until srvr on PORT shows the server's Mode.
_zk_serving() {
	local end=$((SECONDS + $2))
	while [ $SECONDS -lt $end ]; do
		[ -n "$ZK_PID" ] && ! kill -0 "$ZK_PID" 2>/dev/null && return 1
		zk_4lw srvr "$1" | grep -q '^Mode: ' && return 0
		sleep 0.05
	done
	return 1
}

# _zk_launch PORT: run the server of $ZK_DIR on PORT; 0 once it serves.
_zk_launch() {
	local port=$1 host=${ZK_HOST:-127.0.0.1}
	cat >"$ZK_DIR/zoo.cfg" <<-CFG
		tickTime=${ZK_TICK:-500}
		dataDir=$ZK_DIR/data
		clientPort=$port
		clientPortAddress=$host
		admin.enableServer=false
		4lw.commands.whitelist=srvr,mntr,stat,cons,dump,ruok
		maxSessionTimeout=60000
	CFG
	# A small heap, the serial collector and C1 only: fewer threads and
	# less memory for a server that holds a handful of nodes.
	# ZK_JAVA_OPTS is a list of options: split on purpose.
	# shellcheck disable=SC2086
	java -Xmx64m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 ${ZK_JAVA_OPTS:-} \
		-cp "$ZK_CP" org.apache.zookeeper.server.quorum.QuorumPeerMain \
		"$ZK_DIR/zoo.cfg" >>"$ZK_DIR/log" 2>&1 &
	ZK_PID=$!
	if _zk_serving "$port" "${ZK_START_TIMEOUT:-60}"; then
		ZK_PORT=$port
		ZK_CONNECT=$host:$port
		export ZK_PORT ZK_CONNECT
		return 0
	fi
	_zk_kill
	return 1
}

# _zk_kill: stop the server, keep its directory.
_zk_kill() {
	local i
	[ -n "$ZK_PID" ] || return 0
	kill -TERM "$ZK_PID" 2>/dev/null
	for ((i = 0; i < 50; i++)); do
		kill -0 "$ZK_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$ZK_PID" 2>/dev/null
	wait "$ZK_PID" 2>/dev/null
	ZK_PID=
}

zk_start() {
	local try port
	if [ -n "${VERBUS_ZK_CONNECT:-}" ]; then
		ZK_EXTERNAL=1 ZK_CONNECT=$VERBUS_ZK_CONNECT
		ZK_HOST=${VERBUS_ZK_CONNECT%:*} ZK_PORT=${VERBUS_ZK_CONNECT##*:}
		ZK_PID='' ZK_DIR=''
		export ZK_PORT ZK_CONNECT
		_zk_serving "$ZK_PORT" "${ZK_START_TIMEOUT:-60}" && return 0
		echo "zk_start: no ZooKeeper serving at VERBUS_ZK_CONNECT=$VERBUS_ZK_CONNECT" >&2
		return 1
	fi
	command -v java >/dev/null ||
		{ echo "zk_start: no java: install default-jre-headless (scripts/setup.sh)" >&2; return 1; }
	[ -r "$ZK_JAR" ] ||
		{ echo "zk_start: no $ZK_JAR: install libzookeeper-java (scripts/setup.sh)" >&2; return 1; }
	ZK_EXTERNAL=0 ZK_OWN_DIR=0
	if [ -n "${1:-}" ]; then
		ZK_DIR=$1
	else
		ZK_DIR=$(mktemp -d /tmp/zk.XXXXXX) ZK_OWN_DIR=1
	fi
	mkdir -p "$ZK_DIR/data"
	for try in 1 2 3 4 5; do
		# Below the ephemeral range, where no connection of ours can be
		# sitting on the port.
		port=$((20000 + RANDOM % 12000))
		# Something answers there already: another port.
		# shellcheck disable=SC2016 # expanded by the inner shell
		timeout 1 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "${ZK_HOST:-127.0.0.1}" \
			"$port" 2>/dev/null && continue
		_zk_launch "$port" && return 0
		grep -q 'Address already in use' "$ZK_DIR/log" 2>/dev/null || break
		: >"$ZK_DIR/log"
	done
	echo "zk_start: the server did not start (try $try, port $port); its log:" >&2
	tail -n 30 "$ZK_DIR/log" >&2
	return 1
}

zk_stop() {
	[ "$ZK_EXTERNAL" = 1 ] && return 0
	_zk_kill
	if [ "$ZK_OWN_DIR" = 1 ] && [ -n "${ZK_DIR:-}" ]; then
		rm -rf "$ZK_DIR"
		ZK_OWN_DIR=0
	fi
	return 0
}

zk_restart() {
	if [ "$ZK_EXTERNAL" = 1 ] || [ -z "$ZK_PID" ]; then
		echo "zk_restart: no server of this script's to restart" >&2
		return 1
	fi
	_zk_kill
	sleep "${1:-0}"
	_zk_launch "$ZK_PORT" && return 0
	echo "zk_restart: the server did not come back on port $ZK_PORT; its log:" >&2
	tail -n 30 "$ZK_DIR/log" >&2
	return 1
}
