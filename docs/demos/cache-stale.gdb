# demo: watch a stored response go stale under a frozen, then an advanced, fault clock
# needs: --cache-dir
# needs: --fault
# proxy: --serial --cache-dir {tmp}/cache --fault clock.freeze --fault clock.step=+120s@3
# client: GET http://{origin}/cached
#
# The cache decides in cache_decide (src/cache/decide.c): fresh while its age
# (now - the response's time) is under its lifetime.  The clock is frozen, so
# the first lookups find it fresh; the third clock read jumps two minutes,
# past the 60 s default lifetime, and the same entry is now stale.
# (Written against the cache functions that exist; the proxy glue that calls
# cache_decide lands with the cache integration.)
set pagination off
set confirm off
set disable-randomization off

break cache_decide
run

echo \n== a lookup: the entry, the policy and now\n
bt 4
print now
print e->response_time
finish
echo \n== the decision\n
print $.action
continue
kill
quit
