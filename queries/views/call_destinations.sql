-- materialize
-- (a few rows: kept in memory, so that `calls_without_callee` looks the callee of every call up
-- in a table known to be small, instead of repartitioning the calls to meet it)
-- The callee of each destination (peer service, server address) that a CLIENT or PRODUCER span
-- calls: `peer.service`, else `server.address`, else the first label of `server.address`
-- (`orders.prod.svc` -> `orders`), when that names an instrumented service (`callee_services`).
-- Worked out once per destination, not once per call.
WITH destinations AS (
  SELECT DISTINCT peer_service, server_address FROM spans
  -- (Two null tests, not `coalesce(...) IS NOT NULL`: the coalesce built a value for each of
  -- 10M spans, three times the filter's time.)
  WHERE kind IN ('CLIENT', 'PRODUCER') AND (peer_service IS NOT NULL OR server_address IS NOT NULL)
)
SELECT d.peer_service, d.server_address,
       coalesce(by_peer.service_name, by_address.service_name, by_label.service_name) AS callee
FROM destinations d
LEFT JOIN callee_services by_peer ON by_peer.service_name = d.peer_service
LEFT JOIN callee_services by_address ON by_address.service_name = d.server_address
LEFT JOIN callee_services by_label ON by_label.service_name = split_part(d.server_address, '.', 1)
