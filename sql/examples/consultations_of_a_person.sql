-- Who consulted the data of one person (NISS) in March 2025, in time order.
-- The day range prunes partitions; the bloom filter on subject_id skips row groups.
SELECT ts, actor_org, actor_id, actor_role, message_type, operation, result, purpose, source, ticket
FROM events
WHERE subject_id = '31050600120'
  AND day BETWEEN '2025-03-01' AND '2025-03-31'
ORDER BY ts, source;
