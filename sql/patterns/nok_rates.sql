-- Users with the highest share of refused (NOK) exchanges, from 5 exchanges on
SELECT actor_id, COUNT(*) AS events,
       SUM(CASE WHEN result = 'nok' THEN 1 ELSE 0 END) AS nok,
       ROUND(100.0 * SUM(CASE WHEN result = 'nok' THEN 1 ELSE 0 END) / COUNT(*), 1) AS nok_pct
FROM events
WHERE actor_kind = 'person'
GROUP BY actor_id
HAVING COUNT(*) >= 5
ORDER BY nok_pct DESC, actor_id
LIMIT 20
