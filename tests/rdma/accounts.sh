#!/bin/bash
# Accounts (tenants, issue 18): verbusd on host 1 with an authorization
# group of accounts, the verbus tool on hosts 2 and 3.  Accounts "orders"
# (alice, carol; exports the stream orders.shipped.> to anyone and the
# service orders.status to billing only), "billing" (bob, dan; imports
# both, the stream twice over), "tiny" (tina; max_conns 1, max_subs 2),
# "tiny2" (tina2; max_subs 2) and the global account "$G" (eve, of
# authorization.users).  a. bad accounts refused at start with file:line;
# b. subjects isolated per account but for imported streams; c. an
# imported service answered into the importer, its replies private, a
# request from "$G" meeting no responders; d. the accounts' limits; e.
# /connz?acc=, /accountz and the per-account series of /metrics; f. a
# reload that moves a user to another account disconnects its client.
set -u
. "$(dirname "$0")/lib.sh"
# The background clients, by name (bgsub), ended at exit whatever happens:
# a subscriber would otherwise try to reconnect to a killed broker forever.
declare -A pids
kill_clients() {
	local p
	for p in "${pids[@]}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done
}
broker_env kill_clients

pw=$(echo acct-pw | "$VERBUS_BIN/verbusd" --hash-password) || fail "--hash-password"
tls=
[ "$scheme" = tls ] &&
	tls="tls = { cert = \"$work/tls/srv.pem\"; key = \"$work/tls/srv.key\"; };"
url="$scheme://$brk:$port"

# conf FILE: the configuration, with these variables (empty by default)
# spliced in, each on the line of the entry it belongs to (so that an
# error about it names that line): G_USERS (more users of "$G"),
# O_USERS, O_EXPORTS, B_IMPORTS (more entries of orders' users and
# exports, billing's imports; each starts with a comma), ACCTS (more
# accounts, each starting with a comma); BOB_IN: the account bob is a
# user of (billing unless it says orders).
conf() {
	local bob="{ user = \"bob\"; password = \"$pw\"; }" ob= bb=
	if [ "${BOB_IN:-billing}" = orders ]; then ob=", $bob"; else bb="$bob,"; fi
	cat >"$1" <<CONF
listen = "$url";
monitor = { listen = "127.0.0.1:$mport"; };
$tls
authorization = {
  users = ( { user = "eve"; password = "$pw"; } ${G_USERS:-} );
  accounts = (
    { name = "orders";
      users = (
        { user = "alice"; password = "$pw"; },
        { user = "carol"; password = "$pw"; } ${O_USERS:-}
        $ob
      );
      exports = (
        { stream = "orders.shipped.>"; },
        { service = "orders.status"; accounts = [ "billing" ]; } ${O_EXPORTS:-}
      );
    },
    { name = "billing";
      users = (
        $bb
        { user = "dan"; password = "$pw"; }
      );
      imports = (
        { stream = "orders.shipped.>"; account = "orders"; },
        { stream = "orders.shipped.*"; account = "orders"; },
        { service = "orders.status"; account = "orders"; } ${B_IMPORTS:-}
      );
    },
    { name = "tiny";
      users = ( { user = "tina"; password = "$pw"; } );
      limits = { max_conns = 1; max_subs = 2; };
    },
    { name = "tiny2";
      users = ( { user = "tina2"; password = "$pw"; } );
      limits = { max_subs = 2; };
    } ${ACCTS:-}
  );
};
CONF
}

# refused NAME WHAT PATTERN: verbusd -c $work/NAME.conf must stop at start
# with "NAME.conf:LINE: authorization: " and PATTERN (grep -E) after it.
refused() {
	local rc
	timeout 20 "$VERBUS_BIN/verbusd" -c "$work/$1.conf" >"$work/$1.log" 2>&1
	rc=$?
	[ "$rc" = 0 ] || [ "$rc" = 124 ] && { cat "$work/$1.log"; fail "verbusd started with $2 (exit $rc)"; }
	grep -qE "$1\.conf:[1-9][0-9]*: authorization: .*($3)" "$work/$1.log" ||
		{ cat "$work/$1.log"; fail "$2: no 'file:line: authorization: ...$3'"; }
	bad_msgs+=("$(grep -oE "$1\.conf:[0-9]+: authorization: .*" "$work/$1.log" | head -n1)")
}

# a. Bad accounts stop verbusd at start-up, with their line.
bad_msgs=()
B_IMPORTS=', { stream = "x.>"; account = "nosuch"; }' conf "$work/bad-unknown.conf"
refused bad-unknown "an import from an unknown account" \
	"imports: stream x\.> from account nosuch"
ACCTS=", { name = \"audit\"; users = ( { user = \"aud\"; password = \"$pw\"; } );
      imports = ( { service = \"orders.status\"; account = \"orders\"; } ); }" \
	conf "$work/bad-notto.conf"
refused bad-notto "an import its exporter does not export to it" \
	"imports: service orders\.status from account orders: orders does not export it to audit"
O_USERS=", { user = \"dan\"; password = \"$pw\"; }" conf "$work/bad-dup.conf"
refused bad-dup "a user in two accounts" "'?dan'? .*twice|twice.*'?dan'?"
O_USERS=", { user = \"eve\"; password = \"$pw\"; }" conf "$work/bad-dupg.conf"
refused bad-dupg "a user in users and an account" "'?eve'? .*twice|twice.*'?eve'?"
O_EXPORTS=', { stream = "_INBOX.>"; }' conf "$work/bad-inbox.conf"
refused bad-inbox "an export under _INBOX" "_INBOX"
printf '  %s\n' "${bad_msgs[@]}"
echo "PASS: ${#bad_msgs[@]} bad accounts configurations stop verbusd: with file:line an import from an unknown account, one not exported to the importer, a user twice across accounts and with \$G, an export under _INBOX"

conf "$work/verbusd.conf"
broker_start -c "$work/verbusd.conf"
grep -E "authorization|account" "$work/broker.log" | head -n 5

# as USER ARGS...: the verbus tool as USER (everyone's password is acct-pw).
as() { local u=$1; shift; "$VERBUS_BIN/verbus" "$@" --user "$u" --password acct-pw; }
# bgsub NAME USER PATTERN [ARGS...]: `verbus sub` in the background as
# USER, --name NAME (/connz), output in $work/NAME.out, pid in
# ${pids[NAME]}, waited until subscribed.
bgsub() {
	local n=$1 u=$2 p=$3
	shift 3
	: >"$work/$n.out"
	# Not through as(): $! must be verbus itself, not a subshell.
	"$VERBUS_BIN/verbus" sub -s "$url" --source "$b" --name "$n" \
		--user "$u" --password acct-pw "$@" "$p" >"$work/$n.out" 2>&1 &
	pids[$n]=$!
	wait_for "subscribed to" "$work/$n.out" 30 ||
		{ show "$n" "$work/$n.out"; show broker "$work/broker.log"; fail "$n never subscribed"; }
}
# stop NAME: end a bgsub (it may have ended already).
stop() {
	local pid=${pids[$1]:-}
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	pids[$1]=
}
# seen NAME SUBJECT: how many messages on SUBJECT (a regex) NAME printed.
seen() { grep -cE "^\[#[0-9]+\] $2 \(" "$work/$1.out"; }
# wait_seen NAME SUBJECT N: until NAME printed N messages on SUBJECT (10 s
# at most); status 1 if it never did.
wait_seen() {
	local i
	for ((i = 0; i < 100; i++)); do
		[ "$(seen "$1" "$2")" -ge "$3" ] && return 0
		sleep 0.1
	done
	return 1
}
# check WHAT COND...: the condition, else the subscribers' and broker's
# logs and failure.
check() {
	local what=$1 f
	shift
	"$@" && return 0
	for f in "$work"/*.out; do show "$(basename "$f")" "$f"; done
	show broker "$work/broker.log"
	fail "$what"
}
eq() { [ "$1" = "$2" ]; }

# b. Isolation, and streams: orders publishes; billing sees the stream it
# imports (once, though two of its imports cover the subject), nothing
# else; "$G" sees nothing of it; orders sees everything of its own.
bgsub bob-all bob '>'
bgsub dan-all dan '>'
bgsub eve-all eve '>'
bgsub carol-all carol '>'
as alice pub -s "$url" --source "$a" --count 3 orders.new.1 "new" >"$work/alice1.out" 2>&1 ||
	check "alice's orders.new.1" false
as alice pub -s "$url" --source "$a" --count 3 orders.shipped.1 "shipped" >"$work/alice2.out" 2>&1 ||
	check "alice's orders.shipped.1" false
# Markers last: once each subscriber has its own, what it lacks never came.
as alice pub -s "$url" --source "$a" orders.shipped.end "end" >/dev/null 2>&1 || check "alice's marker" false
as eve pub -s "$url" --source "$a" marker.end "end" >/dev/null 2>&1 || check "eve's marker" false
for n in bob-all dan-all carol-all; do
	wait_for '^\[#[0-9]+\] orders\.shipped\.end ' "$work/$n.out" 10 || check "$n never got orders.shipped.end" false
done
wait_for '^\[#[0-9]+\] marker\.end ' "$work/eve-all.out" 10 || check "eve never got her own marker.end" false
sleep 0.3
check "bob ('>' in billing) saw $(seen bob-all 'orders\.shipped\.1') of 3 orders.shipped.1 (the imported stream, twice covered: once each)" \
	eq "$(seen bob-all 'orders\.shipped\.1')" 3
check "bob ('>' in billing) saw $(seen bob-all 'orders\.new\.1') orders.new.1 (not exported)" \
	eq "$(seen bob-all 'orders\.new\.1')" 0
check "dan ('>' in billing) saw $(seen dan-all 'orders\.shipped\.1')/$(seen dan-all 'orders\.new\.1') orders.shipped.1/orders.new.1" \
	eq "$(seen dan-all 'orders\.shipped\.1')/$(seen dan-all 'orders\.new\.1')" 3/0
check "carol ('>' in orders) saw $(seen carol-all 'orders\.shipped\.1')/$(seen carol-all 'orders\.new\.1') orders.shipped.1/orders.new.1, not 3/3" \
	eq "$(seen carol-all 'orders\.shipped\.1')/$(seen carol-all 'orders\.new\.1')" 3/3
check "eve ('>' in \$G) saw $(seen eve-all 'orders\..*') messages of orders" \
	eq "$(seen eve-all 'orders\..*')" 0
check "orders' subscriber saw eve's marker.end of \$G" eq "$(seen carol-all 'marker\.end')" 0
echo "PASS: isolation and streams: of 3 orders.new.1 and 3 orders.shipped.1 published in orders, billing's two '>' subscribers saw 3 and 0 each (the imported stream once, though two imports cover it), \$G's '>' none, orders' '>' 3 and 3; orders saw none of \$G's"

# c. A service: carol answers orders.status in orders; bob's requests
# from billing (which imports it) are answered, into billing, where only
# his connection reads his inbox; eve's from "$G" meet no responders.
"$VERBUS_BIN/verbus" reply -s "$url" --source "$b" --user carol --password acct-pw \
	--count 2 orders.status "status ok" >"$work/carol-reply.out" 2>&1 &
pids[reply]=$!
wait_for "subscribed to" "$work/carol-reply.out" 30 || check "carol's responder never subscribed" false
# eve's own '>' would answer to nothing but still be a subscriber of
# orders.status in $G: it goes for her request, and comes back after it.
stop eve-all
t0=$(date +%s%N)
as eve req -s "$url" --source "$a" --timeout 10000 orders.status "from G" >"$work/eve-req.out" 2>&1
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
cat "$work/eve-req.out"
check "eve's request to orders.status from \$G exited $rc, not 1" eq "$rc" 1
check "eve's request did not fail with no responders" grep -q "no responders" "$work/eve-req.out"
check "eve's no responders took $ms ms (timeout 10 s): not at once" [ "$ms" -lt 8000 ]
bgsub eve-all eve '>'
as bob req -s "$url" --source "$a" --timeout 5000 --count 2 orders.status "from billing" >"$work/bob-req.out" 2>&1
rc=$?
cat "$work/bob-req.out"
check "bob's 2 requests to orders.status (exit $rc)" eq "$rc" 0
check "bob got $(grep -c '^status ok$' "$work/bob-req.out") of 2 answers" eq "$(grep -c '^status ok$' "$work/bob-req.out")" 2
wait "${pids[reply]}" || check "carol's responder (answered 2) exited $?" false
pids[reply]=
check "carol's responder did not answer 2 of 2" grep -q "answered 2 of 2 requests" "$work/carol-reply.out"
check "carol's responder saw eve's request" eq "$(grep -c 'from G' "$work/carol-reply.out")" 0
# Everything of the exchange is in: bob's requester has its answers, dan
# the 2 requests (published in billing, as well as imported into orders).
wait_seen dan-all 'orders\.status' 2 || true
sleep 0.3
for n in bob-all dan-all carol-all eve-all; do
	check "$n ('>') saw a reply in an inbox: $(grep -E '^\[#[0-9]+\] _INBOX' "$work/$n.out" | head -n1)" \
		eq "$(seen "$n" '_INBOX\..*')" 0
done
check "dan ('>' in billing) saw $(seen dan-all 'orders\.status') of bob's 2 requests in billing" \
	eq "$(seen dan-all 'orders\.status')" 2
check "eve ('>' in \$G) saw $(seen eve-all 'orders\.status') requests of billing" \
	eq "$(seen eve-all 'orders\.status')" 0
echo "PASS: service: bob's 2 requests from billing answered by carol in orders (2 of 2); eve's from \$G met no responders in ${ms} ms; no '>' subscriber in billing, orders or \$G saw a reply, billing's other subscriber saw the 2 requests"

# d. Limits: tiny's max_conns 1 refuses a second connection at the Hello,
# tiny2's max_subs 2 a third subscription with a Notice.
bgsub tina1 tina 'tiny.>'
t0=$(date +%s%N)
as tina sub -s "$url" --source "$a" --timeout 3000 'tiny.b' >"$work/tina2nd.out" 2>&1
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
head -n 3 "$work/tina2nd.out"
check "tina's second connection (max_conns 1) exited $rc, not 1" [ "$rc" = 1 ]
# Refused: its connect fails (at the Hello), as the broker's own
# max_conns does; not opened, closed and reconnected over and over.
check "tina's second connection was not refused at connect ('cannot connect'; $(grep -c 'disconnected' "$work/tina2nd.out") disconnections in $ms ms)" \
	grep -q "cannot connect to" "$work/tina2nd.out"
check "tina's second connection not refused with the account's reason" \
	grep -qF "account tiny: too many connections (max_conns 1)" "$work/tina2nd.out"
kill -0 "${pids[tina1]}" 2>/dev/null || check "tina's first connection ended with the refusal of the second" false
bgsub tina2-a tina2 'tiny2.a'
bgsub tina2-b tina2 'tiny2.b'
as tina2 sub -s "$url" --source "$a" --name tina2-c --timeout 3000 'tiny2.c' >"$work/tina2-c.log" 2>&1
rc=$?
cat "$work/tina2-c.log"
check "tina2's third subscription (max_subs 2) exited $rc" [ "$rc" = 1 ]
check "tina2's third subscription not refused with the account's Notice" \
	grep -qF "account tiny2: too many subscriptions (max_subs 2)" "$work/tina2-c.log"
grep -q "subscribed to" "$work/tina2-c.log" && check "tina2's third subscription said subscribed" false
as alice pub -s "$url" --source "$a" tiny.x "x" >/dev/null 2>&1 # orders: tiny's tina1 must not see it
as tina2 pub -s "$url" --source "$a" tiny2.b "still" >/dev/null 2>&1 ||
	check "tina2's publish (a connection of hers, beside 2 subscriptions)" false
wait_for "still" "$work/tina2-b.out" 10 || check "tina2's second subscription stopped at the refusal" false
check "tina (tiny) saw orders' tiny.x" eq "$(seen tina1 'tiny\.x')" 0
echo "PASS: limits: tiny's second connection refused ('account tiny: too many connections (max_conns 1)'), the first one on; tiny2's third subscription refused with the Notice ('account tiny2: too many subscriptions (max_subs 2)'), its 2 on"

# e. Monitoring.  Open now: bob-all and dan-all (billing), carol-all
# (orders), eve-all ($G), tina1 (tiny), tina2-a and tina2-b (tiny2).
mon() { curl -sf "http://127.0.0.1:$mport/$1"; }
mon 'connz?acc=billing' >"$work/connz-billing.json" || check "/connz?acc=billing failed" false
mon 'connz?limit=1000' >"$work/connz.json" || check "/connz failed" false
mon accountz >"$work/accountz.json" || check "/accountz failed" false
mon metrics >"$work/metrics.txt" || check "/metrics failed" false
showmon() { for f in connz-billing.json connz.json accountz.json; do show "$f" "$work/$f"; done; grep '^verbus_account' "$work/metrics.txt"; }
python3 - "$work" <<'PY' || { showmon; show broker "$work/broker.log"; fail "monitoring (above)"; }
import json, sys
w = sys.argv[1]
bad = []
cb = json.load(open(w + "/connz-billing.json"))
names = sorted(c.get("name") for c in cb["connections"])
if names != ["bob-all", "dan-all"]:
    bad.append("/connz?acc=billing lists %s, not bob-all and dan-all" % names)
for c in cb["connections"]:
    if c.get("account") != "billing":
        bad.append("/connz?acc=billing: %s has account %r" % (c.get("name"), c.get("account")))
want = {"bob-all": "billing", "dan-all": "billing", "carol-all": "orders",
        "eve-all": "$G", "tina1": "tiny", "tina2-a": "tiny2", "tina2-b": "tiny2"}
for c in json.load(open(w + "/connz.json"))["connections"]:
    if c.get("name") in want and c.get("account") != want[c["name"]]:
        bad.append("/connz: %s has account %r, not %r" % (c["name"], c.get("account"), want[c["name"]]))
    if "account" not in c:
        bad.append("/connz: %s has no account" % c.get("name"))
# An account's count: the short key, or the long one.
def field(a, *keys):
    for k in keys:
        if k in a:
            return a[k]
    return None
az = json.load(open(w + "/accountz.json"))
accts = az.get("accounts") if isinstance(az, dict) else az
if isinstance(accts, dict):  # keyed by name
    accts = [dict(v, name=k) for k, v in accts.items()]
by = {a.get("name"): a for a in accts or []}
conns = {"orders": 1, "billing": 2, "tiny": 1, "tiny2": 2, "$G": 1}
for n, k in conns.items():
    if n not in by:
        bad.append("/accountz lacks %s (has %s)" % (n, sorted(by)))
    elif field(by[n], "conns", "connections") != k:
        bad.append("/accountz: %s has conns %r, not %d" % (n, field(by[n], "conns", "connections"), k))
for n, k in {"billing": 2, "tiny2": 2, "tiny": 1}.items():
    if n in by and field(by[n], "subs", "subscriptions") != k:
        bad.append("/accountz: %s has subs %r, not %d" % (n, field(by[n], "subs", "subscriptions"), k))
if "tiny" in by and by["tiny"].get("conns_refused", 1) != 1:
    bad.append("/accountz: tiny refused %r connections, not the 1 second one" % by["tiny"].get("conns_refused"))
lim = by.get("tiny", {}).get("limits", {})
if lim.get("max_conns") != 1 or lim.get("max_subs") != 2:
    bad.append("/accountz: tiny's limits %r, not max_conns 1, max_subs 2" % lim)
kinds = sorted(("stream " + x["stream"]) if "stream" in x else ("service %s" % x.get("service"))
               for x in by.get("billing", {}).get("imports", []))
if kinds != ["service orders.status", "stream orders.shipped.*", "stream orders.shipped.>"]:
    bad.append("/accountz: billing's imports %r" % kinds)
m = {}
for line in open(w + "/metrics.txt"):
    p = line.split()
    if len(p) == 2 and not line.startswith("#"):
        m[p[0]] = p[1]
def series(name, acct):
    return m.get('%s{account="%s"}' % (name, acct))
for n, k in conns.items():
    v = series("verbus_account_connections", n)
    if v != str(k):
        bad.append('verbus_account_connections{account="%s"} %s, not %d' % (n, v, k))
for n, k in {"billing": 2, "tiny2": 2}.items():
    v = series("verbus_account_subscriptions", n)
    if v != str(k):
        bad.append('verbus_account_subscriptions{account="%s"} %s, not %d' % (n, v, k))
for s in ("memory_bytes", "messages_in_total", "messages_out_total", "bytes_in_total", "bytes_out_total"):
    for n in ("orders", "billing"):
        v = series("verbus_account_" + s, n)
        if v is None or float(v) <= 0:
            bad.append('verbus_account_%s{account="%s"} %s, not above 0' % (s, n, v))
# orders published 3 + 3 + 1 + 1 (alice) and 2 replies (carol): at least 8.
v = series("verbus_account_messages_in_total", "orders")
if v is not None and float(v) < 8:
    bad.append('verbus_account_messages_in_total{account="orders"} %s, below alice\'s 8' % v)
for b in bad:
    print("FAIL: " + b)
print("monitoring: billing %s; accounts %s; billing conns %s subs %s in %s out %s" % (
    names, sorted(by), series("verbus_account_connections", "billing"),
    series("verbus_account_subscriptions", "billing"),
    series("verbus_account_messages_in_total", "billing"),
    series("verbus_account_messages_out_total", "billing")))
sys.exit(1 if bad else 0)
PY
echo "PASS: monitoring: /connz?acc=billing lists bob-all and dan-all only (account billing), every /connz entry names its account, /accountz counts orders 1, billing 2, tiny 1, tiny2 2, \$G 1 connections, /metrics' verbus_account_* series agree"

# f. Reload: bob moves from billing to orders; his '>' subscriber is
# disconnected, told why; a new one of his is in orders.
BOB_IN=orders conf "$work/next.conf"
cp "$work/next.conf" "$work/verbusd.conf"
kill -HUP "$bpid"
wait_for "reload: applied" "$work/broker.log" 10 || check "no reload after SIGHUP" false
kill -0 "$bpid" 2>/dev/null || fail "SIGHUP ended verbusd"
wait_for "account changed by a configuration reload" "$work/bob-all.out" 10 ||
	check "bob's '>' subscriber was not told 'account changed by a configuration reload'" false
grep "account changed by a configuration reload" "$work/bob-all.out" | head -n1
check "the broker's log does not say bob's account changed (billing -> orders)" \
	grep -qE "user bob: .*account changed \(billing -> orders\)" "$work/broker.log"
check "the reload's summary does not count 1 client disconnected" \
	grep -qE "reload: applied .*1 clients disconnected" "$work/broker.log"
grep -E "account changed|reload: applied" "$work/broker.log" | tail -n 3
stop bob-all
bgsub bob-orders bob 'orders.new.>'
as alice pub -s "$url" --source "$a" orders.new.2 "after reload" >/dev/null 2>&1 || check "alice's publish after the reload" false
wait_for '^\[#[0-9]+\] orders\.new\.2 ' "$work/bob-orders.out" 10 || check "bob, now in orders, never saw orders.new.2" false
as alice pub -s "$url" --source "$a" orders.shipped.end2 "end" >/dev/null 2>&1
wait_for '^\[#[0-9]+\] orders\.shipped\.end2 ' "$work/dan-all.out" 10 || check "dan (billing) lost the stream at the reload" false
check "dan (billing) saw orders.new.2 after the reload" eq "$(seen dan-all 'orders\.new\.2')" 0
kill -0 "${pids[dan-all]}" 2>/dev/null || check "dan's subscriber ended at the reload" false
echo "PASS: reload: bob moved from billing to orders: his subscriber disconnected with 'account changed by a configuration reload', logged; a new one of his sees orders' orders.new.2, billing's dan does not and keeps its stream"

for n in dan-all eve-all carol-all tina1 tina2-a tina2-b bob-orders; do stop "$n"; done
broker_stop
echo "PASS: accounts"
