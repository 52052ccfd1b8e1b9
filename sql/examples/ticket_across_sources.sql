-- One message followed across the network: every source that logged ticket T, in time order.
SELECT ts, source, actor_kind, actor_org, actor_id, operation, result, channel
FROM events
WHERE ticket = 'T000000079E3779B9'
ORDER BY ts, source;
