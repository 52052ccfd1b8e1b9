-- Agents who consulted the most distinct persons: the first thing a security adviser looks at.
SELECT actor_org, actor_id, count(DISTINCT subject_id) AS persons, count(*) AS events
FROM events
WHERE actor_kind = 'person' AND operation = 'consult'
GROUP BY actor_org, actor_id
ORDER BY persons DESC, events DESC, actor_id
LIMIT 20;
