-- auth.lua — wrk script for bench/run: POST authenticate requests.
--
-- Environment: FA_BODIES names a file of request bodies, one JSON object a
-- line; FA_TOKEN is the access token. Each wrk thread walks the bodies in
-- turn, starting at its own offset, so concurrent connections send different
-- users. Non-2xx answers are counted per thread (response hook; wrk's own
-- status errors are left out of "errors" so they are not counted twice),
-- and done() prints one JSON line (prefixed "FA_RESULT ") with the figures bench/run
-- keeps.

local threads = {}

function setup(thread)
    thread:set("id", #threads)
    table.insert(threads, thread)
end

function init(args)
    bodies = {}
    for line in io.lines(os.getenv("FA_BODIES")) do
        if #line > 0 then
            table.insert(bodies, line)
        end
    end
    assert(#bodies > 0, "no request bodies in " .. os.getenv("FA_BODIES"))
    token = os.getenv("FA_TOKEN")
    next_body = (id * 7) % #bodies
    non2xx = 0
    statuses = ""
end

function request()
    next_body = next_body % #bodies + 1
    return wrk.format("POST", nil, {
        ["Content-Type"] = "application/json",
        ["Authorization"] = token,
    }, bodies[next_body])
end

function response(status, headers, body)
    if status < 200 or status > 299 then
        non2xx = non2xx + 1
        if #statuses < 200 then
            statuses = statuses .. status .. " " .. (string.sub(body, 1, 120):gsub('"', "'")) .. "; "
        end
    end
end

function done(summary, latency, requests)
    local bad, seen = 0, ""
    for _, t in ipairs(threads) do
        bad = bad + t:get("non2xx")
        seen = seen .. t:get("statuses")
    end
    local e = summary.errors
    io.write(string.format(
        'FA_RESULT {"requests":%d,"duration_s":%.3f,"rps":%.2f,"p50_ms":%.2f,"p95_ms":%.2f,' ..
        '"p99_ms":%.2f,"max_ms":%.2f,"non2xx":%d,"errors":%d,"first_non2xx":"%s"}\n',
        summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
        latency:percentile(50) / 1e3, latency:percentile(95) / 1e3, latency:percentile(99) / 1e3,
        latency.max / 1e3, bad, e.connect + e.read + e.write + e.timeout, (seen:gsub("\\", "/"))))
end
