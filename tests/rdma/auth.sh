#!/bin/bash
# Authentication and permissions: verbusd on host 1 with an authorization
# group (a user with an Argon2id password, a token), libverbus clients on
# hosts 2 and 3 (vb_libtest auth): bad credentials refused at the Hello,
# denied subscriptions and publishes answered with a Notice, and the
# broker's counters agreeing; then private replies with the verbus tool:
# inboxes only their owner reads, a responder with allow_responses; then
# configuration reloads (SIGHUP, verbusd --signal reload).
set -u
. "$(dirname "$0")/lib.sh"
broker_env

pw=$(echo alice-pw | "$VERBUS_BIN/verbusd" --hash-password) || fail "--hash-password"
tok=$(echo bob-token | "$VERBUS_BIN/verbusd" --hash-token) || fail "--hash-token"
case $pw in '$argon2id$'*) ;; *) fail "--hash-password printed '$pw'" ;; esac
[ ${#tok} = 64 ] || fail "--hash-token printed '$tok'"
tls=
[ "$scheme" = tls ] &&
	tls="tls = { cert = \"$work/tls/srv.pem\"; key = \"$work/tls/srv.key\"; };"
cat >"$work/verbusd.conf" <<CONF
listen = "$scheme://$brk:$port";
monitor = { listen = "127.0.0.1:$mport"; };
$tls
authorization = {
  users = (
    { user = "alice"; password = "$pw";
      publish = [ "orders.>" ]; subscribe = [ "orders.>", "_INBOX.>" ]; },
    { name = "bob"; token_sha256 = "$tok"; subscribe = [ "orders.*" ]; },
    { user = "carol"; password = "$pw"; publish = [ "svc.>" ];
      subscribe = [ "orders.>" ]; },
    { user = "dave"; password = "$pw"; publish = [ "status.>" ];
      subscribe = [ "svc.>" ]; allow_responses = true; },
    { user = "eve"; password = "$pw"; }
  );
};
CONF
# A bad entry is refused at start-up, with its line.
sed 's/token_sha256 = "/token_sha256 = "zz/' "$work/verbusd.conf" >"$work/bad.conf"
if "$VERBUS_BIN/verbusd" -c "$work/bad.conf" >"$work/bad.log" 2>&1; then
	fail "verbusd started with a bad token_sha256"
fi
grep -q 'bad.conf:[0-9]*: authorization: token_sha256' "$work/bad.log" ||
	{ cat "$work/bad.log"; fail "no clear error for a bad entry"; }
echo "PASS: a bad authorization entry stops verbusd with file:line"

broker_start -c "$work/verbusd.conf"
timeout 120 "$VERBUS_BIN/vb_libtest" auth "$scheme://$brk:$port" "$a" "$b" >"$work/auth.out" 2>&1
rc=$?
cat "$work/auth.out"
[ "$rc" = 0 ] || { show broker "$work/broker.log"; fail "vb_libtest auth exited $rc"; }

[ "$(metric verbus_auth_failures_total)" = 4 ] || fail "auth failures: $(metric verbus_auth_failures_total)"
# alice's secret.plans and her request to secret.ask.
[ "$(metric verbus_denied_publish_total)" = 2 ] || fail "denied publish: $(metric verbus_denied_publish_total)"
[ "$(metric verbus_denied_subscribe_total)" = 1 ] || fail "denied subscribe: $(metric verbus_denied_subscribe_total)"
echo "PASS: /metrics counts 4 refused clients, 2 denied publishes, 1 denied subscription"

# Private replies (daemon/inbox.h): eve may subscribe to anything, but
# "_INBOX.>" is refused and a ">" subscription sees none of the replies;
# dave answers carol's requests (allow_responses) though he may publish
# on status.> only, and may not publish to an inbox he was not asked from;
# carol needs no _INBOX permission for her own inbox.
as() { local u=$1; shift; "$VERBUS_BIN/verbus" "$@" --user "$u" --password alice-pw; }
# as_bg: as, for a client started with '&' only: the background subshell
# becomes the client (exec), so that $! is the client and killing it ends it.
as_bg() { local u=$1; shift; exec "$VERBUS_BIN/verbus" "$@" --user "$u" --password alice-pw; }
url="$scheme://$brk:$port"
if as eve sub -s "$url" --source "$b" --timeout 3000 '_INBOX.>' >"$work/eve1.out" 2>&1; then
	cat "$work/eve1.out"; fail "eve subscribed to _INBOX.>"
fi
grep -q "inboxes are private" "$work/eve1.out" || { cat "$work/eve1.out"; fail "eve was not told why"; }
as_bg eve sub -s "$url" --source "$b" '>' >"$work/eve.out" 2>&1 &
evepid=$!
as_bg dave reply -s "$url" --source "$b" --count 3 svc.echo >"$work/dave.out" 2>&1 &
davepid=$!
wait_for subscribed "$work/eve.out" 30 || fail "eve never subscribed"
wait_for subscribed "$work/dave.out" 30 || fail "dave never subscribed"
for i in 1 2 3; do
	as carol req -s "$url" --source "$a" --timeout 5000 svc.echo "ask $i" \
		>"$work/carol$i.out" 2>&1 || { cat "$work/carol$i.out"; show broker "$work/broker.log"; fail "carol's request $i was not answered"; }
	grep -q "ask $i" "$work/carol$i.out" || { cat "$work/carol$i.out"; fail "carol's reply $i"; }
done
wait "$davepid" || { cat "$work/dave.out"; fail "dave's responder exited $?"; }
d0=$(metric verbus_denied_publish_total)
as dave pub -s "$url" --source "$b" _INBOX.0123456789abcdef.x "forged" >"$work/dave2.out" 2>&1
for _ in $(seq 50); do
	[ "$(metric verbus_denied_publish_total)" -gt "$d0" ] && break
	sleep 0.1
done
[ "$(metric verbus_denied_publish_total)" = $((d0 + 1)) ] ||
	{ cat "$work/dave2.out"; fail "dave published to an inbox he was not asked from"; }
sleep 0.5
kill "$evepid" 2>/dev/null
wait "$evepid" 2>/dev/null
[ "$(grep -c '^\[#[0-9]*\] svc\.echo' "$work/eve.out")" = 3 ] ||
	{ cat "$work/eve.out"; fail "eve's '>' did not see the 3 requests"; }
if grep -q '^\[#[0-9]*\] _INBOX' "$work/eve.out"; then
	cat "$work/eve.out"; fail "eve saw replies to carol's inbox"
fi
echo "PASS: private replies: 3 requests answered by a responder without publish rights to inboxes (allow_responses); _INBOX.> refused; a '>' subscriber saw the 3 requests and none of the replies; a publish to an inbox not asked from refused"

# Reload (SIGHUP, daemon/reload.h): bob's token entry goes (his client is
# disconnected, told why), carol's subscribe permission narrows to
# orders.big (her orders.> subscription goes with a Notice, her orders.big
# one stays), limits.ring_size changes (it cannot live: reported, kept);
# then a file with a syntax error is refused whole and the broker runs on.
"$VERBUS_BIN/verbus" sub -s "$url" --source "$b" --token bob-token 'orders.*' >"$work/bob.out" 2>&1 &
bobpid=$!
as_bg carol sub -s "$url" --source "$b" 'orders.>' >"$work/carol-all.out" 2>&1 &
callpid=$!
as_bg carol sub -s "$url" --source "$b" orders.big >"$work/carol-big.out" 2>&1 &
cbigpid=$!
for f in bob carol-all carol-big; do
	wait_for subscribed "$work/$f.out" 30 || { cat "$work/$f.out"; fail "$f never subscribed"; }
done
sed -e '/name = "bob"/d' \
	-e 's/^      subscribe = \[ "orders.>" \]; },$/      subscribe = [ "orders.big" ]; },/' \
	"$work/verbusd.conf" >"$work/next.conf"
grep -q '"orders.big" \]; },$' "$work/next.conf" || fail "the reload test's sed missed carol"
echo 'limits = { ring_size = "2M"; };' >>"$work/next.conf"
cp "$work/next.conf" "$work/verbusd.conf"
kill -HUP "$bpid"
wait_for "reload: applied" "$work/broker.log" 10 || { show broker "$work/broker.log"; fail "no reload after SIGHUP"; }
kill -0 "$bpid" 2>/dev/null || fail "SIGHUP ended verbusd"
grep -q "reload: limits.ring_size cannot change live: keeping 1M" "$work/broker.log" ||
	{ show broker "$work/broker.log"; fail "the ring size change was not reported"; }
grep -q "users 5 -> 4; 1 clients disconnected, 1 subscriptions revoked" "$work/broker.log" ||
	{ show broker "$work/broker.log"; fail "the reload's summary"; }
wait_for "credentials removed by a configuration reload" "$work/bob.out" 10 ||
	{ cat "$work/bob.out"; fail "bob was not told why he was disconnected"; }
grep -q "bob: its credentials were removed; disconnected" "$work/broker.log" || fail "bob's disconnection not logged"
kill "$bobpid" 2>/dev/null
wait "$bobpid" 2>/dev/null
wait "$callpid" && fail "carol's orders.> subscriber went on after its permission was revoked"
grep -q "refused the subscription: .*subscribe to orders.> (revoked by a configuration reload)" "$work/carol-all.out" ||
	{ cat "$work/carol-all.out"; fail "carol's orders.> was not told"; }
as alice pub -s "$url" --source "$a" orders.big "after reload" >/dev/null 2>&1 || fail "alice's publish after the reload"
wait_for "after reload" "$work/carol-big.out" 10 || { cat "$work/carol-big.out"; fail "carol's orders.big stopped at the reload"; }
[ "$(metric verbus_reloads_total)" = 1 ] || fail "reloads: $(metric verbus_reloads_total)"
echo "PASS: SIGHUP reload: a removed token's client disconnected with the reason, a narrowed permission's subscription removed with a Notice while the other goes on, ring_size reported and kept"
echo 'limits = { max_conns = ; };' >>"$work/verbusd.conf"
"$VERBUS_BIN/verbusd" --signal "reload=$bpid" || fail "verbusd --signal reload exited $?"
wait_for "reload refused: .*verbusd.conf:[0-9]+: " "$work/broker.log" 10 || { show broker "$work/broker.log"; fail "a bad file was not refused"; }
[ "$(metric verbus_reload_failures_total)" = 1 ] || fail "reload failures: $(metric verbus_reload_failures_total)"
as alice pub -s "$url" --source "$a" orders.big "after refusal" >/dev/null 2>&1 || fail "alice's publish after the refused reload"
wait_for "after refusal" "$work/carol-big.out" 10 || { cat "$work/carol-big.out"; fail "the broker stopped routing after a refused reload"; }
kill "$cbigpid" 2>/dev/null
wait "$cbigpid" 2>/dev/null
echo "PASS: a reload of a file with a syntax error refused whole (file:line), the broker running on"
broker_stop
echo "PASS: auth"
