#!/bin/sh
# /cgi-bin/run?COMMAND (URL-encoded): runs COMMAND as root in the test guest and answers its output and
# exit code. The guest is the consumer's own machine; tests drive it from inside with this (probing what
# it can reach, changing its addresses, flooding its console).
cmd=$(httpd -d "$QUERY_STRING")
echo "Content-Type: text/plain"
echo
out=$(timeout 20 sh -c "$cmd" 2>&1)
echo "exit=$?"
echo "$out" | head -c 65536
