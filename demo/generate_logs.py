#!/usr/bin/env python3
"""Writes demo/logs/envoy-gateway.log: Envoy Gateway default JSON access logs (keys sorted,
typed values, nulls) for the demo manifests, with a few real problems mixed in.
Deterministic: re-running gives the same file."""
import json, random, datetime, pathlib

random.seed(7)
t0 = datetime.datetime(2026, 11, 20, 9, 58, 0, tzinfo=datetime.timezone.utc)
lines = []

def rec(i, host, path, status, cluster, upstream, route, flags="-", details="via_upstream", port=10080, sni=None, method="GET"):
    ts = t0 + datetime.timedelta(seconds=i * 7)
    return json.dumps({
        ":authority": host, "bytes_received": 0, "bytes_sent": random.randint(100, 9000) if upstream else 0,
        "connection_termination_details": None, "downstream_local_address": f"10.244.0.12:{port}",
        "downstream_remote_address": f"203.0.113.{random.randint(2, 250)}:{random.randint(30000, 60000)}",
        "duration": random.randint(1, 80), "method": method, "protocol": "HTTP/1.1", "requested_server_name": sni,
        "response_code": status, "response_code_details": details, "response_flags": flags, "route_name": route,
        "start_time": ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{random.randint(0, 999):03d}Z",
        "upstream_cluster": cluster, "upstream_host": upstream,
        "upstream_local_address": "10.244.0.12:41236" if upstream else None,
        "upstream_transport_failure_reason": None, "user-agent": "curl/8.5.0", "x-envoy-origin-path": path,
        "x-envoy-upstream-service-time": None, "x-forwarded-for": "203.0.113.7",
        "x-request-id": f"{random.getrandbits(64):016x}-demo-{i:04d}",
    }, sort_keys=True, separators=(",", ":"))

SF = "httproute/shop/storefront"
for i in range(500):
    r = random.random()
    if r < 0.40:
        v2 = random.random() < 0.1
        lines.append(rec(i, "shop.example.com", f"/api/orders?page={i % 7}", 200, f"{SF}/rule/1",
                         "10.244.1.12:9000" if v2 else "10.244.1.11:9000", f"{SF}/rule/1/match/0/shop_example_com"))
    elif r < 0.45:   # canary: the x-canary header is not in the default log, so the decision is ambiguous
        lines.append(rec(i, "shop.example.com", "/api/orders/42", 200, f"{SF}/rule/0", "10.244.1.10:9000",
                         f"{SF}/rule/0/match/0/shop_example_com"))
    elif r < 0.70:
        lines.append(rec(i, "shop.example.com", random.choice(["/", "/products/7", "/cart"]), 200, f"{SF}/rule/2",
                         "10.244.1.20:8080", f"{SF}/rule/2/match/-1/shop_example_com", port=random.choice([10080, 10443]),
                         ))
    elif r < 0.80:
        lines.append(rec(i, "shop.example.com", "/checkout/pay", 200, "httproute/shop/checkout/rule/0",
                         "10.244.2.30:8080", "httproute/shop/checkout/rule/0/match/0/shop_example_com"))
    elif r < 0.85:   # invalid backendRef (no ReferenceGrant): Envoy Gateway answers 500 itself
        lines.append(rec(i, "shop.example.com", "/ledger/entries", 500, None, None,
                         "httproute/shop/checkout/rule/1/match/0/shop_example_com", details="direct_response"))
    elif r < 0.90:
        lines.append(rec(i, "shop.example.com", "/old-shop/item/9", 301, None, None,
                         "httproute/shop/legacy/rule/0/match/0/shop_example_com", details="direct_response"))
    elif r < 0.95:
        lines.append(rec(i, "unknown.example.com", "/", 404, None, None, None, flags="NR", details="route_not_found"))
    else:
        lines.append(rec(i, "shop.example.com", "/api/orders", 503, f"{SF}/rule/1", None,
                         f"{SF}/rule/1/match/0/shop_example_com", flags="UH", details="no_healthy_upstream"))

# The problems routeproof exists to find, at known places:
# 1. a controller drifted: /api/orders served by the catch-all `web` backend (misrouted), a burst of 12
for k in range(12):
    lines.insert(120 + k, rec(120 + k, "shop.example.com", f"/api/orders/{k}", 200, f"{SF}/rule/2", "10.244.1.20:8080",
                              f"{SF}/rule/2/match/-1/shop_example_com"))
# 2. the gateway still serves the ledger although its backendRef is not permitted (served_invalid_backend)
for k in range(3):
    lines.insert(250 + k, rec(250 + k, "shop.example.com", "/ledger/entries", 200, "httproute/shop/checkout/rule/1",
                              "10.244.2.31:8080", "httproute/shop/checkout/rule/1/match/0/shop_example_com"))
# 3. the gateway says "no route" for a path the config routes (unexpected_no_route)
for k in range(4):
    lines.insert(330 + k, rec(330 + k, "shop.example.com", "/checkout/pay", 404, None, None, None, flags="NR",
                              details="route_not_found"))
# 4. a host no route accepts was served anyway (unexpected_route)
lines.insert(400, rec(400, "admin.internal", "/", 200, f"{SF}/rule/2", "10.244.1.20:8080", None))
# Bad input, kept as dead letters with a reason: truncated JSON, a non-log line, invalid UTF-8.
lines.insert(50, lines[50][:120])
lines.insert(200, "kubelet: container restarted")
out = pathlib.Path(__file__).parent / "logs" / "envoy-gateway.log"
data = ("\n".join(lines) + "\n").encode()
data = data.replace(b"kubelet: container restarted", b"kubelet: \xff\xfe container restarted")
out.write_bytes(data)
print(f"wrote {len(lines)} lines to {out}")
