-- wrk through a forward proxy: wrk connects to the URL on its command line
-- (the proxy), and this script makes every request absolute-form, as a
-- browser configured with a proxy sends it (RFC 9112 section 3.2.2):
--
--   BENCH_URL=http://127.0.0.1:8081/1k BENCH_HOST=127.0.0.1:8081 \
--     wrk -c50 -d5s --latency -s bench/proxy.lua http://127.0.0.1:PROXYPORT
--
-- No request() function: wrk then formats the request once and resends the
-- same bytes, so the script costs nothing per request.
wrk.path = os.getenv("BENCH_URL")
wrk.headers["Host"] = os.getenv("BENCH_HOST")
